/*
 * ep_token.c -- the token endpoint (RFC 6749 §3.2), client_credentials grant.
 *
 * Cost per request: one Redis round trip (the client record) and one
 * AES-256-GCM seal; nothing is written to Redis for an access token, since
 * the token carries its own claims.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "config/config.h"
#include "core/buf.h"
#include "core/json.h"
#include "core/log.h"
#include "crypto/keyring.h"
#include "crypto/token.h"
#include "endpoints/ep_token.h"
#include "endpoints/oauth.h"
#include "endpoints/service.h"
#include "http/request.h"
#include "store/store.h"

static const char *const ep_token_known_grants[] = {
	"password", "refresh_token", "authorization_code",
	"urn:ietf:params:oauth:grant-type:device_code",
	"urn:ietf:params:oauth:grant-type:jwt-bearer",
	"urn:ietf:params:oauth:grant-type:token-exchange",
};

/* Issue an access token for claims and write the §5.1 answer. */
static void
ep_token_issue(struct service_thread *t, struct token_claims *claims,
    struct response *resp)
{
	struct service *svc = t->svc;
	char text[TOKEN_MAX_LEN + 1];
	uint8_t key[CRYPTO_KEYLEN];
	uint32_t kid;
	struct buf *b = &t->scratch;
	int first = 1, n;

	if (keyring_current(svc->keyring, &kid, key) != FA_OK) {
		oauth_unavailable(resp);	/* no key loaded yet: Redis never answered */
		return;
	}
	n = token_seal(t->crypto, kid, key, claims, text, sizeof text);
	crypto_wipe(key, sizeof key);
	if (n < 0) {
		oauth_error(resp, 500, "server_error", "could not seal the token");
		return;
	}
	buf_reset(b);
	buf_putc(b, '{');
	json_kv_str(b, &first, "access_token", text);
	json_kv_str(b, &first, "token_type", "Bearer");
	json_kv_int(b, &first, "expires_in", (long long)(claims->exp - claims->iat));
	if (claims->scope[0] != '\0')
		json_kv_str(b, &first, "scope", claims->scope);
	buf_putc(b, '}');
	oauth_nostore(resp);
	response_json(resp, 200, b->data, b->len);
	crypto_wipe(b->data, b->len);
	crypto_wipe(text, sizeof text);
}

/*
 * Decide the granted scope: the client's whole scope when none is asked for,
 * else the requested list, which must be valid and a subset of the client's.
 * Repeated scope tokens are kept once. FA_OK or FA_ERR after writing 400.
 */
static int
ep_token_scope(const char *asked, const char *allowed, char out[FA_SCOPE_MAX + 1],
    struct response *resp)
{
	const char *p;
	size_t o = 0;

	if (asked == NULL) {
		snprintf(out, FA_SCOPE_MAX + 1, "%s", allowed);
		return FA_OK;
	}
	if (!oauth_scope_valid(asked)) {
		oauth_error(resp, 400, "invalid_scope", "malformed scope");
		return FA_ERR;
	}
	if (!oauth_scope_subset(asked, allowed)) {
		oauth_error(resp, 400, "invalid_scope",
		    "requested scope exceeds what the client may have");
		return FA_ERR;
	}
	out[0] = '\0';
	for (p = asked; *p != '\0';) {
		size_t len = strcspn(p, " ");
		char tok[FA_SCOPE_MAX + 1];

		memcpy(tok, p, len);
		tok[len] = '\0';
		if (!oauth_scope_subset(tok, out)) {
			if (o > 0)
				out[o++] = ' ';
			memcpy(out + o, tok, len);
			o += len;
			out[o] = '\0';
		}
		p += len;
		while (*p == ' ')
			p++;
	}
	return FA_OK;
}

void
ep_token_handle(struct service_thread *t, struct request *r, struct response *resp)
{
	struct service *svc = t->svc;
	struct oauth_client_cred cred;
	struct store_client client;
	struct token_claims claims;
	struct form *f;
	const char *grant;
	size_t i;
	int rc;

	memset(&cred, 0, sizeof cred);
	if ((f = oauth_form(t, r, resp)) == NULL)
		return;
	if (oauth_client_cred(r, f, resp, &cred) != FA_OK)
		goto out;
	rc = store_client_get(t->redis, cred.id, &client);
	if (oauth_client_verify(t, &cred, rc, &client, resp) != FA_OK)
		goto out;

	grant = form_get(f, "grant_type");
	if (grant == NULL || *grant == '\0') {
		oauth_error(resp, 400, "invalid_request", "grant_type is required");
		goto out;
	}
	if (strcmp(grant, "client_credentials") != 0) {
		for (i = 0; i < sizeof ep_token_known_grants / sizeof ep_token_known_grants[0]; i++)
			if (strcmp(grant, ep_token_known_grants[i]) == 0)
				break;
		oauth_error(resp, 400, "unsupported_grant_type",
		    i < sizeof ep_token_known_grants / sizeof ep_token_known_grants[0] ?
		    "this grant type is not enabled on this server" :
		    "unknown grant type");
		goto out;
	}
	if ((client.grants & STORE_GRANT_CLIENT_CREDENTIALS) == 0) {
		oauth_error(resp, 400, "unauthorized_client",
		    "the client may not use this grant type");
		goto out;
	}

	memset(&claims, 0, sizeof claims);
	if (ep_token_scope(form_get(f, "scope"), client.scope, claims.scope, resp) != FA_OK)
		goto out;
	if (token_new_jti(claims.jti) != FA_OK) {
		oauth_error(resp, 500, "server_error", "no randomness");
		goto out;
	}
	claims.iat = (uint64_t)time(NULL);
	claims.exp = claims.iat + (uint64_t)svc->cfg->access_token_ttl;
	snprintf(claims.client, sizeof claims.client, "%s", client.id);
	ep_token_issue(t, &claims, resp);
out:
	oauth_client_cred_wipe(&cred);
	form_free(f);
}
