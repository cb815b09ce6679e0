/*
 * ep_userinfo.c -- the UserInfo endpoint (OpenID Connect Core §5.3).
 *
 * The bearer token comes from the Authorization header (RFC 6750 §2.1) or,
 * for POST, the access_token form parameter (§2.2), never both. The token is
 * opened locally; then its revocation state and the user record (with the
 * subject's not-before) are read from Redis. Claims are filtered by the
 * token's scopes: openid gives sub; profile the name claims and the custom
 * ones; email gives email and email_verified.
 */
#include <string.h>
#include <strings.h>
#include <time.h>

#include <jansson.h>

#include "config/config.h"
#include "core/buf.h"
#include "core/json.h"
#include "core/log.h"
#include "crypto/token.h"
#include "endpoints/ep_userinfo.h"
#include "endpoints/limits.h"
#include "endpoints/lookup.h"
#include "endpoints/oauth.h"
#include "endpoints/service.h"
#include "http/httpauth.h"
#include "http/request.h"
#include "store/store.h"
#include "store/users.h"

/* 401 with the RFC 6750 §3 challenge; code NULL when no token was sent. */
static void
ep_userinfo_challenge(struct response *resp, int status, const char *code,
    const char *desc)
{
	struct buf h = BUF_INIT;

	buf_puts(&h, "Bearer realm=\"fastauth\"");
	if (code != NULL)
		buf_printf(&h, ", error=\"%s\", error_description=\"%s\"", code, desc);
	response_header(resp, "WWW-Authenticate", h.data);
	buf_free(&h);
	if (code == NULL)
		code = "invalid_request";
	oauth_error(resp, status, code, desc);
}

static const char *const ep_userinfo_profile[] = {
	"name", "given_name", "family_name", "middle_name", "nickname",
	"preferred_username", "profile", "picture", "website", "gender",
	"birthdate", "zoneinfo", "locale", "updated_at",
};

/* Which scope releases claim key: "profile" for the name claims and custom ones. */
static const char *
ep_userinfo_scope_of(const char *key)
{
	size_t i;

	if (strcmp(key, "email") == 0 || strcmp(key, "email_verified") == 0)
		return "email";
	if (strcmp(key, "phone_number") == 0 || strcmp(key, "phone_number_verified") == 0)
		return "phone";
	if (strcmp(key, "address") == 0)
		return "address";
	for (i = 0; i < sizeof ep_userinfo_profile / sizeof ep_userinfo_profile[0]; i++)
		if (strcmp(key, ep_userinfo_profile[i]) == 0)
			return "profile";
	return "profile";
}

/* Append the claims of claims_json that the scopes release, to b (after "sub"). */
static void
ep_userinfo_claims(struct buf *b, int *first, const char *claims_json, const char *scope)
{
	json_error_t jerr;
	json_t *obj, *v;
	const char *key;
	char *text;

	if (claims_json == NULL || (obj = json_loads(claims_json, 0, &jerr)) == NULL)
		return;
	json_object_foreach(obj, key, v) {
		if (!oauth_scope_subset(ep_userinfo_scope_of(key), scope))
			continue;
		/* Values were validated on write: strings, numbers, booleans. */
		text = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
		if (text != NULL) {
			json_kv_raw(b, first, key, text);
			free(text);
		}
	}
	json_decref(obj);
}

/* The bearer token of the request: header or POST form, not both. */
static int
ep_userinfo_token(struct service_thread *t, struct request *r, struct response *resp,
    struct form **fp, const char **tok, size_t *len)
{
	enum httpauth_scheme scheme = httpauth_scheme(r->authorization);
	const char *ftok = NULL;

	*fp = NULL;
	if (strcmp(r->method, "POST") == 0 && r->content_type != NULL &&
	    strncasecmp(r->content_type, "application/x-www-form-urlencoded", 33) == 0) {
		if ((*fp = oauth_form(t, r, resp)) == NULL)
			return FA_ERR;
		ftok = form_get(*fp, "access_token");
	}
	if (scheme != HTTPAUTH_NONE && ftok != NULL) {
		ep_userinfo_challenge(resp, 400, "invalid_request",
		    "send the token once: header or body");
		return FA_ERR;
	}
	if (ftok != NULL) {
		*tok = ftok;
		*len = strlen(ftok);
		return FA_OK;
	}
	if (scheme == HTTPAUTH_NONE) {
		ep_userinfo_challenge(resp, 401, NULL, "a bearer token is required");
		return FA_ERR;
	}
	if (scheme != HTTPAUTH_BEARER ||
	    httpauth_bearer(r->authorization, tok, len) != FA_OK) {
		ep_userinfo_challenge(resp, 401, "invalid_token", "malformed bearer token");
		return FA_ERR;
	}
	return FA_OK;
}

void
ep_userinfo_handle(struct service_thread *t, struct request *r, struct response *resp)
{
	struct service *svc = t->svc;
	struct users_ctx uc = { t->redis, t->crypto, svc->user_key };
	struct users_user user;
	struct token_claims claims;
	struct form *f = NULL;
	const char *tok;
	size_t len;
	struct buf *b = &t->scratch;
	int rc, first = 1, revoked;

	memset(&user, 0, sizeof user);
	memset(&claims, 0, sizeof claims);
	if (limits_by(svc->limits, LIMITS_USERINFO) != RATESPEC_BY_CLIENT &&
	    limits_check(t, LIMITS_USERINFO, r->remote_addr, resp) != FA_OK)
		goto out;
	if (ep_userinfo_token(t, r, resp, &f, &tok, &len) != FA_OK)
		goto out;
	rc = oauth_token_open(t, tok, len, (long long)time(NULL), &claims);
	if (rc == FA_UNAVAIL) {
		oauth_unavailable(t, resp);
		goto out;
	}
	if (rc != FA_OK) {
		ep_userinfo_challenge(resp, 401, "invalid_token",
		    "the token is invalid or expired");
		goto out;
	}
	if (claims.subject[0] == '\0') {
		ep_userinfo_challenge(resp, 401, "invalid_token",
		    "the token does not represent a user");
		goto out;
	}
	if (limits_by(svc->limits, LIMITS_USERINFO) == RATESPEC_BY_CLIENT &&
	    limits_check(t, LIMITS_USERINFO, claims.client, resp) != FA_OK)
		goto out;
	if (!oauth_scope_subset("openid", claims.scope)) {
		ep_userinfo_challenge(resp, 403, "insufficient_scope",
		    "the openid scope is required");
		goto out;
	}
	/*
	 * The jti only: the subject's not-before comes with the user record
	 * below, in the same round trip, so it is not looked up twice.
	 */
	if (lookup_token_revoked(t, claims.jti, "", claims.iat, &revoked) != FA_OK) {
		oauth_unavailable(t, resp);
		goto out;
	}
	if (revoked) {
		ep_userinfo_challenge(resp, 401, "invalid_token", "the token was revoked");
		goto out;
	}
	rc = users_get_by_id(&uc, claims.subject, &user);
	if (rc == FA_UNAVAIL || rc == FA_ERR) {
		if (rc == FA_ERR)
			log_warn("user record of subject %s unreadable", claims.subject);
		oauth_unavailable(t, resp);
		goto out;
	}
	if (rc != FA_OK || user.locked || (long long)claims.iat < (long long)user.not_before) {
		ep_userinfo_challenge(resp, 401, "invalid_token", "the token was revoked");
		goto out;
	}
	buf_reset(b);
	buf_putc(b, '{');
	json_kv_str(b, &first, "sub", user.id);
	ep_userinfo_claims(b, &first, user.claims_json, claims.scope);
	buf_putc(b, '}');
	oauth_nostore(resp);
	response_json(resp, 200, b->data, b->len);
out:
	users_user_clear(&user);
	crypto_wipe(&claims, sizeof claims);
	form_free(f);
}
