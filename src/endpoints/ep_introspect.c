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
 *
 * Batch introspection (POST .../oauth2/introspect/batch, an extension) takes
 * a JSON array of tokens and answers an array of RFC 7662 objects in the same
 * order. Every access token is opened first; the revocation state of those
 * the cache cannot vouch for comes in ONE Redis round trip (a single MGET);
 * only then does the answer start, streamed one object at a time, so a store
 * failure is still a clean 503 and never a truncated array.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "config/config.h"
#include "core/buf.h"
#include "core/json.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "crypto/token.h"
#include "endpoints/ep_introspect.h"
#include "endpoints/introspection.h"
#include "endpoints/limits.h"
#include "endpoints/lookup.h"
#include "endpoints/oauth.h"
#include "endpoints/service.h"
#include "http/request.h"
#include "shm/metrics.h"
#include "http/tokenlist.h"
#include "store/refresh.h"
#include "store/store.h"
#include "store/users.h"

static const char ep_introspect_inactive[] = "{\"active\":false}";

/* The RFC 7662 object of an active access token, into b (reset first). */
static void
ep_introspect_active_json(struct service_thread *t, const struct token_claims *c,
    struct buf *b)
{
	buf_reset(b);
	introspection_active_json(b, c, t->svc->cfg->issuer);
}

static void
ep_introspect_active(struct service_thread *t, const struct token_claims *c,
    struct response *resp)
{
	ep_introspect_active_json(t, c, &t->scratch);
	oauth_nostore(resp);
	response_json(resp, 200, t->scratch.data, t->scratch.len);
}

/*
 * A refresh token: its RFC 7662 object into b (reset first), active with its
 * grant, or inactive. It is active only if the refresh grant would honour it:
 * the family is live and its user still exists, is not locked, and has no
 * not-before after the login. FA_OK or FA_UNAVAIL (b then undefined).
 */
static int
ep_introspect_refresh_json(struct service_thread *t, const char *tok, struct buf *b)
{
	struct users_ctx uc = { t->redis, t->crypto, t->svc->user_key };
	struct users_user user;
	struct refresh_grant g;
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
	buf_reset(b);
	if (rc != FA_OK || !active) {
		metrics_count(METRICS_INTROSPECT_INACTIVE, 1);
		buf_append(b, ep_introspect_inactive, sizeof ep_introspect_inactive - 1);
		return FA_OK;
	}
	buf_putc(b, '{');
	json_kv_bool(b, &first, "active", 1);
	if (g.scope[0] != '\0')
		json_kv_str(b, &first, "scope", g.scope);
	json_kv_str(b, &first, "client_id", g.client);
	json_kv_str(b, &first, "token_type", "refresh_token");
	json_kv_int(b, &first, "exp", (long long)g.exp);
	json_kv_int(b, &first, "iat", (long long)g.iat);
	json_kv_str(b, &first, "sub", g.sub);
	json_kv_str(b, &first, "iss", t->svc->cfg->issuer);
	buf_putc(b, '}');
	metrics_count(METRICS_INTROSPECT_ACTIVE, 1);
	return FA_OK;
}

static int
ep_introspect_refresh(struct service_thread *t, const char *tok, struct response *resp)
{
	if (ep_introspect_refresh_json(t, tok, &t->scratch) != FA_OK)
		return FA_UNAVAIL;
	oauth_nostore(resp);
	response_json(resp, 200, t->scratch.data, t->scratch.len);
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

/* --- batch introspection (an extension) ------------------------------------ */

/*
 * What is known about one token of a batch before the answer starts: the
 * whole state is settled first, so that if Redis cannot say, the answer is
 * still a proper 503 rather than a half-sent array.
 */
enum ep_introspect_kind {
	EP_INTROSPECT_INACTIVE,		/* garbage, forged, foreign, expired, revoked */
	EP_INTROSPECT_ACCESS,		/* an open access token; claims[i] valid */
	EP_INTROSPECT_REFRESH,		/* a refresh token; json[i] is its answer */
};

static int
ep_introspect_is_json(const char *ct)
{
	static const char want[] = "application/json";
	size_t n = sizeof want - 1;

	if (ct == NULL || strncasecmp(ct, want, n) != 0)
		return 0;
	return ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ';
}

/* Send or (without a stream to write to) gather one piece of the answer. */
static int
ep_introspect_emit(struct response *resp, struct buf *whole, const char *s, size_t n)
{
	if (resp->streamed)
		return response_stream_write(resp, s, n);
	buf_append(whole, s, n);
	return FA_OK;
}

/*
 * Authenticate the caller (client_secret_basic only: the body is JSON) and
 * check that it may introspect. FA_OK, or FA_ERR after writing the answer.
 */
static int
ep_introspect_batch_auth(struct service_thread *t, struct request *r,
    struct response *resp)
{
	struct oauth_client_cred cred;
	struct store_client client;
	struct form *none;
	enum form_error ferr;
	int rc = FA_ERR, crc;

	memset(&client, 0, sizeof client);
	/* No form here: an empty one makes oauth_client_cred accept Basic only. */
	none = form_parse("", 0, 1, &ferr, NULL);
	if (oauth_client_cred(r, none, resp, &cred) != FA_OK)
		goto out;
	if (limits_check(t, LIMITS_INTROSPECT, limits_key(t->svc->limits,
	    LIMITS_INTROSPECT, r, cred.id, NULL), resp) != FA_OK)
		goto out;
	crc = lookup_client(t, cred.id, &client);
	if (oauth_client_verify(t, &cred, crc, &client, resp) != FA_OK)
		goto out;
	if (!client.introspect) {
		oauth_error(resp, 403, "unauthorized_client",
		    "the client may not introspect tokens");
		goto out;
	}
	rc = FA_OK;
out:
	oauth_client_cred_wipe(&cred);
	crypto_wipe(&client, sizeof client);
	form_free(none);
	return rc;
}

void
ep_introspect_batch_handle(struct service_thread *t, struct request *r,
    struct response *resp)
{
	const struct config *cfg = t->svc->cfg;
	struct tokenlist_item *items = NULL;
	struct token_claims *claims = NULL;
	const struct token_claims **open = NULL;
	enum ep_introspect_kind *kind = NULL;
	enum tokenlist_error err;
	struct buf whole = BUF_INIT;
	char **json = NULL, *msg;
	int *revoked = NULL, *openidx = NULL, n = 0, nopen = 0, i, rc;
	long long now = (long long)time(NULL);
	size_t where = 0;

	if (ep_introspect_batch_auth(t, r, resp) != FA_OK)
		return;
	if (!ep_introspect_is_json(r->content_type)) {
		oauth_error(resp, 400, "invalid_request",
		    "the body must be application/json: an array of token strings");
		return;
	}
	items = xcalloc((size_t)cfg->introspect_batch_max, sizeof *items);
	if (tokenlist_parse(r->body.data ? r->body.data : "", r->body.len, items,
	    cfg->introspect_batch_max, &n, &err, &where) != FA_OK) {
		if (err == TOKENLIST_ERR_TOO_MANY) {
			msg = xasprintf("at most %d tokens per batch",
			    cfg->introspect_batch_max);
			oauth_error(resp, 413, "invalid_request", msg);
		} else {
			msg = xasprintf("the body must be a JSON array of token strings "
			    "(error at byte %zu)", where);
			oauth_error(resp, 400, "invalid_request", msg);
		}
		free(msg);
		goto out;
	}

	/* 1. Open every access token: CPU only, no I/O for a known key. */
	if (n > 0) {
		claims = xcalloc((size_t)n, sizeof *claims);
		kind = xcalloc((size_t)n, sizeof *kind);
		json = xcalloc((size_t)n, sizeof *json);
		open = xcalloc((size_t)n, sizeof *open);
		openidx = xcalloc((size_t)n, sizeof *openidx);
		revoked = xcalloc((size_t)n, sizeof *revoked);
	}
	for (i = 0; i < n; i++) {
		kind[i] = EP_INTROSPECT_INACTIVE;
		if (items[i].len >= sizeof REFRESH_TOKEN_PREFIX - 1 &&
		    memcmp(items[i].s, REFRESH_TOKEN_PREFIX,
		    sizeof REFRESH_TOKEN_PREFIX - 1) == 0) {
			kind[i] = EP_INTROSPECT_REFRESH;
			continue;
		}
		rc = oauth_token_open(t, items[i].s, items[i].len, now, &claims[i]);
		if (rc == FA_UNAVAIL) {
			oauth_unavailable(t, resp);
			goto out;
		}
		if (rc == FA_OK) {
			kind[i] = EP_INTROSPECT_ACCESS;
			openidx[nopen] = i;
			open[nopen++] = &claims[i];
		}
	}
	/* 2. Revocation of all of them: L1 cache, then one Redis round trip. */
	if (lookup_revoked_batch(t, nopen, open, revoked) != FA_OK) {
		oauth_unavailable(t, resp);
		goto out;
	}
	for (i = 0; i < nopen; i++)
		if (revoked[i])
			kind[openidx[i]] = EP_INTROSPECT_INACTIVE;
	/* 3. Refresh tokens: looked up one by one (they live in Redis). */
	for (i = 0; i < n; i++) {
		if (kind[i] != EP_INTROSPECT_REFRESH)
			continue;
		if (ep_introspect_refresh_json(t, items[i].s, &t->scratch) != FA_OK) {
			oauth_unavailable(t, resp);
			goto out;
		}
		json[i] = xstrndup(t->scratch.data, t->scratch.len);
	}

	for (i = 0; i < n; i++)
		if (kind[i] != EP_INTROSPECT_REFRESH)	/* those counted as looked up */
			metrics_count(kind[i] == EP_INTROSPECT_ACCESS ?
			    METRICS_INTROSPECT_ACTIVE : METRICS_INTROSPECT_INACTIVE, 1);

	/* 4. The answer, streamed object by object: nothing can fail now but the client. */
	oauth_nostore(resp);
	response_header(resp, "Content-Type", "application/json;charset=UTF-8");
	if (resp->conn != NULL && response_stream_begin(resp, 200) != FA_OK)
		goto gone;
	if (ep_introspect_emit(resp, &whole, "[", 1) != FA_OK)
		goto gone;
	for (i = 0; i < n; i++) {
		const char *s = ep_introspect_inactive;
		size_t len = sizeof ep_introspect_inactive - 1;

		if (i > 0 && ep_introspect_emit(resp, &whole, ",", 1) != FA_OK)
			goto gone;
		if (kind[i] == EP_INTROSPECT_ACCESS) {
			ep_introspect_active_json(t, &claims[i], &t->scratch);
			s = t->scratch.data;
			len = t->scratch.len;
		} else if (kind[i] == EP_INTROSPECT_REFRESH) {
			s = json[i];
			len = strlen(json[i]);
		}
		if (ep_introspect_emit(resp, &whole, s, len) != FA_OK)
			goto gone;
	}
	if (ep_introspect_emit(resp, &whole, "]", 1) != FA_OK)
		goto gone;
	if (!resp->streamed) {
		resp->status = 200;
		buf_reset(&resp->body);
		buf_append(&resp->body, whole.data, whole.len);
	}
	goto out;
gone:
	log_debug("batch introspection: the client went away");
out:
	if (claims != NULL)
		crypto_wipe(claims, (size_t)n * sizeof *claims);
	if (json != NULL)
		for (i = 0; i < n; i++)
			free(json[i]);
	buf_free(&whole);
	free(claims);
	free(kind);
	free(json);
	free(open);
	free(openidx);
	free(revoked);
	free(items);
}
