/*
 * ep_authorizer.c -- the FastCGI Authorizer role: is this Bearer token good
 * for this location?
 *
 * The check is local to the host: the token is opened with the keyring's
 * cipher (a forged or expired token is refused before any lookup), the
 * revocation state comes from the shared-memory mirror (lookup.h), and the
 * rate limiter is the shared-memory GCRA. While the mirror is in sync and
 * vouches for a token (it has seen it in the current epoch), a grant costs no
 * Redis round trip. A token the mirror has not vouched for yet costs one
 * pipelined round trip (its jti and its subject's not-before), after which it
 * is vouched for until cache_revocation_ttl or a new epoch. If the mirror is
 * out of sync and Redis cannot answer, the answer is 503: an Authorizer that
 * cannot tell whether a token was revoked must not let it through, and a 401
 * would tell the client to throw a good token away.
 *
 * Grants carry nothing but Variable-* headers: Apache adds any other header
 * of a 200 answer to the protected response.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "config/config.h"
#include "core/buf.h"
#include "core/log.h"
#include "crypto/token.h"
#include "endpoints/ep_authorizer.h"
#include "endpoints/limits.h"
#include "endpoints/lookup.h"
#include "endpoints/oauth.h"
#include "endpoints/service.h"
#include "http/httpauth.h"
#include "http/request.h"

/*
 * Deny with the RFC 6750 §3 challenge. code NULL: no usable token was sent,
 * so no error attribute (§3.1) and no body. scope: the scopes to ask for
 * (insufficient_scope), or NULL.
 */
static void
ep_authorizer_deny(struct response *resp, int status, const char *code,
    const char *desc, const char *scope)
{
	struct buf h = BUF_INIT;

	buf_puts(&h, "Bearer realm=\"fastauth\"");
	if (code != NULL)
		buf_printf(&h, ", error=\"%s\", error_description=\"%s\"", code, desc);
	if (scope != NULL)
		buf_printf(&h, ", scope=\"%s\"", scope);
	response_header(resp, "WWW-Authenticate", h.data);
	buf_free(&h);
	if (code != NULL)
		oauth_error(resp, status, code, desc);
	else {
		oauth_nostore(resp);
		resp->status = status;
	}
}

/* 1 if s can be a header value as it is: printable ASCII only. */
static int
ep_authorizer_printable(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
			return 0;
	return 1;
}

/*
 * The grant. FASTAUTH_SUB is the user for a user's token and, as RFC 9068
 * §2.2 has it, the client itself for a client_credentials token; every
 * variable is always sent, so none can be left over from elsewhere.
 */
static void
ep_authorizer_grant(const struct token_claims *c, struct response *resp)
{
	const char *sub = c->subject[0] != '\0' ? c->subject : c->client;
	char exp[24];

	/* Claims were checked when sealed; a header must never be split anyway. */
	if (!ep_authorizer_printable(sub) || !ep_authorizer_printable(c->client) ||
	    !ep_authorizer_printable(c->scope)) {
		log_warn("authorizer: a token's claims are not printable; denied");
		ep_authorizer_deny(resp, 401, "invalid_token",
		    "the token is invalid or expired", NULL);
		return;
	}
	snprintf(exp, sizeof exp, "%llu", (unsigned long long)c->exp);
	resp->status = 200;
	response_header(resp, "Variable-FASTAUTH_SUB", sub);
	response_header(resp, "Variable-FASTAUTH_CLIENT_ID", c->client);
	response_header(resp, "Variable-FASTAUTH_SCOPE", c->scope);
	response_header(resp, "Variable-FASTAUTH_EXP", exp);
}

/* The token of the header, or FA_ERR after writing the 401. */
static int
ep_authorizer_token(struct request *r, struct response *resp, const char **tok,
    size_t *len)
{
	switch (httpauth_bearer_offered(r->authorization, tok, len)) {
	case HTTPAUTH_BEARER:
		return FA_OK;
	case HTTPAUTH_MALFORMED:
		ep_authorizer_deny(resp, 401, "invalid_token", "malformed bearer token", NULL);
		return FA_ERR;
	default:
		/* None, or another scheme (Basic): no bearer token was offered. */
		ep_authorizer_deny(resp, 401, NULL, NULL, NULL);
		return FA_ERR;
	}
}

void
ep_authorizer_handle(struct service_thread *t, struct request *r, struct response *resp)
{
	struct limits *lim = t->svc->limits;
	const char *required = request_param(r, EP_AUTHORIZER_SCOPE_VAR);
	struct token_claims claims;
	const char *tok;
	size_t len;
	int rc, revoked;

	memset(&claims, 0, sizeof claims);
	/* A response starts as 200: a path that forgot to answer must not grant. */
	resp->status = 500;
	if (required != NULL && required[0] != '\0' && !oauth_scope_valid(required)) {
		/* The server's configuration is wrong: deny everything, loudly. */
		log_err("authorizer: %s of %s is not a scope list; every request "
		    "is denied (500)", EP_AUTHORIZER_SCOPE_VAR, r->uri_path);
		oauth_error(resp, 500, "server_error", "the location's required "
		    "scope is misconfigured");
		goto out;
	}
	if (limits_by(lim, LIMITS_AUTHORIZER) != RATESPEC_BY_CLIENT &&
	    limits_check(t, LIMITS_AUTHORIZER, r->remote_addr, resp) != FA_OK)
		goto out;
	if (ep_authorizer_token(r, resp, &tok, &len) != FA_OK)
		goto out;
	rc = oauth_token_open(t, tok, len, (long long)time(NULL), &claims);
	if (rc == FA_UNAVAIL) {
		oauth_unavailable(t, resp);
		goto out;
	}
	if (rc != FA_OK) {
		ep_authorizer_deny(resp, 401, "invalid_token",
		    "the token is invalid or expired", NULL);
		goto out;
	}
	if (limits_by(lim, LIMITS_AUTHORIZER) == RATESPEC_BY_CLIENT &&
	    limits_check(t, LIMITS_AUTHORIZER, claims.client, resp) != FA_OK)
		goto out;
	if (lookup_token_revoked(t, claims.jti, claims.subject, claims.iat,
	    &revoked) != FA_OK) {
		oauth_unavailable(t, resp);
		goto out;
	}
	if (revoked) {
		ep_authorizer_deny(resp, 401, "invalid_token", "the token was revoked", NULL);
		goto out;
	}
	if (required != NULL && !oauth_scope_subset(required, claims.scope)) {
		ep_authorizer_deny(resp, 403, "insufficient_scope",
		    "the token lacks a scope this location requires", required);
		goto out;
	}
	ep_authorizer_grant(&claims, resp);
out:
	crypto_wipe(&claims, sizeof claims);
}
