/*
 * ep_revoke.c -- token revocation (RFC 7009).
 *
 * An access token is revoked by putting its jti in the deny-set until it would
 * have expired anyway. Only the client the token was issued to may revoke it;
 * for any other token (unknown, expired, another client's) the answer is the
 * same 200, as §2.2 asks, and nothing changes. A refresh token ("far1.")
 * revokes its whole family (§2.1: and may revoke the grant's other tokens).
 */
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "crypto/token.h"
#include "endpoints/ep_revoke.h"
#include "endpoints/limits.h"
#include "endpoints/lookup.h"
#include "store/events.h"
#include "endpoints/oauth.h"
#include "endpoints/service.h"
#include "http/request.h"
#include "shm/metrics.h"
#include "store/refresh.h"
#include "store/store.h"

void
ep_revoke_handle(struct service_thread *t, struct request *r, struct response *resp)
{
	struct oauth_client_cred cred;
	struct store_client client;
	struct token_claims claims;
	const char *tok;
	struct form *f;
	long long now = (long long)time(NULL);
	int rc;

	memset(&cred, 0, sizeof cred);
	if ((f = oauth_form(t, r, resp)) == NULL)
		return;
	if (oauth_client_cred(r, f, resp, &cred) != FA_OK)
		goto out;
	if (limits_check(t, LIMITS_REVOKE, limits_key(t->svc->limits, LIMITS_REVOKE, r,
	    cred.id, NULL), resp) != FA_OK)
		goto out;
	rc = lookup_client(t, cred.id, &client);
	if (oauth_client_verify(t, &cred, rc, &client, resp) != FA_OK)
		goto out;
	if ((tok = form_get(f, "token")) == NULL) {
		oauth_error(resp, 400, "invalid_request", "token is required");
		goto out;
	}
	if (strncmp(tok, REFRESH_TOKEN_PREFIX, sizeof REFRESH_TOKEN_PREFIX - 1) == 0) {
		if (refresh_revoke(t->redis, tok, client.id) == FA_UNAVAIL) {
			oauth_unavailable(t, resp);
			goto out;
		}
		metrics_count(METRICS_REVOKED_REFRESH, 1);
		oauth_nostore(resp);
		resp->status = 200;
		goto out;
	}
	rc = oauth_token_open(t, tok, strlen(tok), now, &claims);
	if (rc == FA_UNAVAIL) {
		oauth_unavailable(t, resp);
		goto out;
	}
	if (rc == FA_OK && strcmp(claims.client, client.id) == 0) {
		char hex[2 * TOKEN_JTI_LEN + 1];

		if (store_revoke_jti(t->redis, claims.jti,
		    (long)((long long)claims.exp - now)) != FA_OK) {
			/* The client must know the token still works: say so. */
			oauth_unavailable(t, resp);
			goto out;
		}
		lookup_note_revoked(t, claims.jti);
		/*
		 * Other instances learn it from the message; without it their
		 * caches could vouch for the token until cache_revocation_ttl.
		 */
		crypto_hex(claims.jti, TOKEN_JTI_LEN, hex);
		if (events_publish(t->redis, "revoke %s %llu", hex,
		    (unsigned long long)claims.exp) != FA_OK) {
			log_warn("revocation of %s stored but not announced", hex);
			oauth_unavailable(t, resp);
			goto out;
		}
		metrics_count(METRICS_REVOKED_ACCESS, 1);
	}
	oauth_nostore(resp);
	resp->status = 200;
out:
	crypto_wipe(&claims, sizeof claims);
	oauth_client_cred_wipe(&cred);
	form_free(f);
}
