/*
 * ep_introspect.c -- token introspection (RFC 7662).
 *
 * The token is opened first, locally: a forged, expired or garbage token never
 * costs a revocation lookup. The caller's client record and the token's
 * revocation state come from the host's L1 cache when it can vouch for them
 * (lookup.h): then introspection costs no Redis round trip at all. Otherwise
 * the caller's client record and the token's
 * revocation state (its jti, and for a user's token the subject's
 * not-before) come back in one pipelined Redis round trip. If Redis cannot
 * say whether the token is revoked, the answer is 503, never a guess.
 * Refresh tokens ("far1.") are looked up in Redis.
 */
#include <string.h>
#include <time.h>

#include "config/config.h"
#include "core/buf.h"
#include "core/json.h"
#include "crypto/token.h"
#include "endpoints/ep_introspect.h"
#include "endpoints/limits.h"
#include "endpoints/lookup.h"
#include "endpoints/oauth.h"
#include "endpoints/service.h"
#include "http/request.h"
#include "shm/metrics.h"
#include "store/refresh.h"
#include "store/store.h"
#include "store/users.h"

static const char ep_introspect_inactive[] = "{\"active\":false}";

static void
ep_introspect_active(struct service_thread *t, const struct token_claims *c,
    struct response *resp)
{
	struct buf *b = &t->scratch;
	char jti[2 * TOKEN_JTI_LEN + 1];
	int first = 1;

	crypto_hex(c->jti, TOKEN_JTI_LEN, jti);
	buf_reset(b);
	buf_putc(b, '{');
	json_kv_bool(b, &first, "active", 1);
	if (c->scope[0] != '\0')
		json_kv_str(b, &first, "scope", c->scope);
	json_kv_str(b, &first, "client_id", c->client);
	json_kv_str(b, &first, "token_type", "Bearer");
	json_kv_int(b, &first, "exp", (long long)c->exp);
	json_kv_int(b, &first, "iat", (long long)c->iat);
	if (c->subject[0] != '\0')
		json_kv_str(b, &first, "sub", c->subject);
	json_kv_str(b, &first, "iss", t->svc->cfg->issuer);
	json_kv_str(b, &first, "jti", jti);
	buf_putc(b, '}');
	oauth_nostore(resp);
	response_json(resp, 200, b->data, b->len);
}

/*
 * A refresh token: active with its grant, or inactive. It is active only if
 * the refresh grant would honour it: the family is live and its user still
 * exists, is not locked, and has no not-before after the login.
 * FA_OK or FA_UNAVAIL.
 */
static int
ep_introspect_refresh(struct service_thread *t, const char *tok, struct response *resp)
{
	struct users_ctx uc = { t->redis, t->crypto, t->svc->user_key };
	struct users_user user;
	struct refresh_grant g;
	struct buf *b = &t->scratch;
	int active = 0, rc, first = 1;

	rc = refresh_lookup(t->redis, tok, &g, &active);
	if (rc == FA_UNAVAIL)
		return FA_UNAVAIL;
	if (rc == FA_OK && active) {
		memset(&user, 0, sizeof user);
		rc = users_get_by_id(&uc, g.sub, &user);
		if (rc == FA_UNAVAIL || rc == FA_ERR) {
			users_user_clear(&user);
			return FA_UNAVAIL;
		}
		active = rc == FA_OK && !user.locked && g.auth_time >= user.not_before;
		users_user_clear(&user);
		rc = FA_OK;
	}
	if (rc != FA_OK || !active) {
		metrics_count(METRICS_INTROSPECT_INACTIVE, 1);
		oauth_nostore(resp);
		response_json(resp, 200, ep_introspect_inactive,
		    sizeof ep_introspect_inactive - 1);
		return FA_OK;
	}
	buf_reset(b);
	buf_putc(b, '{');
	json_kv_bool(b, &first, "active", 1);
	if (g.scope[0] != '\0')
		json_kv_str(b, &first, "scope", g.scope);
	json_kv_str(b, &first, "client_id", g.client);
	json_kv_str(b, &first, "token_type", "refresh_token");
	metrics_count(METRICS_INTROSPECT_ACTIVE, 1);
	json_kv_int(b, &first, "exp", (long long)g.exp);
	json_kv_int(b, &first, "iat", (long long)g.iat);
	json_kv_str(b, &first, "sub", g.sub);
	json_kv_str(b, &first, "iss", t->svc->cfg->issuer);
	buf_putc(b, '}');
	oauth_nostore(resp);
	response_json(resp, 200, b->data, b->len);
	return FA_OK;
}

void
ep_introspect_handle(struct service_thread *t, struct request *r, struct response *resp)
{
	struct oauth_client_cred cred;
	struct store_client client;
	struct token_claims claims;
	const char *tok;
	struct form *f;
	int valid, rc, client_rc = FA_NOTFOUND, revoked = 0, is_refresh;

	memset(&cred, 0, sizeof cred);
	if ((f = oauth_form(t, r, resp)) == NULL)
		return;
	if (oauth_client_cred(r, f, resp, &cred) != FA_OK)
		goto out;
	if (limits_check(t, LIMITS_INTROSPECT, limits_key(t->svc->limits,
	    LIMITS_INTROSPECT, r, cred.id, NULL), resp) != FA_OK)
		goto out;
	if ((tok = form_get(f, "token")) == NULL) {
		oauth_error(resp, 400, "invalid_request", "token is required");
		goto out;
	}
	is_refresh = strncmp(tok, REFRESH_TOKEN_PREFIX, sizeof REFRESH_TOKEN_PREFIX - 1) == 0;
	valid = is_refresh ? FA_DENIED :
	    oauth_token_open(t, tok, strlen(tok), (long long)time(NULL), &claims);
	if (valid == FA_UNAVAIL) {
		oauth_unavailable(t, resp);
		goto out;
	}
	if (valid == FA_OK)
		rc = lookup_introspect(t, cred.id, &client, &client_rc, &claims, &revoked);
	else
		rc = client_rc = lookup_client(t, cred.id, &client);
	if (rc == FA_UNAVAIL) {
		oauth_unavailable(t, resp);
		goto out;
	}
	if (rc == FA_ERR)
		client_rc = FA_ERR;	/* corrupt record: verify answers 503 and logs */
	if (oauth_client_verify(t, &cred, client_rc, &client, resp) != FA_OK)
		goto out;
	if (!client.introspect) {
		oauth_error(resp, 403, "unauthorized_client",
		    "the client may not introspect tokens");
		goto out;
	}
	if (is_refresh) {
		if (ep_introspect_refresh(t, tok, resp) != FA_OK)
			oauth_unavailable(t, resp);
	} else if (valid == FA_OK && !revoked) {
		ep_introspect_active(t, &claims, resp);
		metrics_count(METRICS_INTROSPECT_ACTIVE, 1);
	} else {
		metrics_count(METRICS_INTROSPECT_INACTIVE, 1);
		oauth_nostore(resp);
		response_json(resp, 200, ep_introspect_inactive,
		    sizeof ep_introspect_inactive - 1);
	}
out:
	crypto_wipe(&claims, sizeof claims);
	oauth_client_cred_wipe(&cred);
	form_free(f);
}
