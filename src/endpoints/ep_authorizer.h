/*
 * ep_authorizer.h -- the FastCGI Authorizer role (FastCGI 1.0 §6.3): the web
 * server asks fastauth whether a request for a protected location may go on,
 * before serving it (lighttpd mod_fastcgi "mode" => "authorizer", Apache
 * mod_authnz_fcgi).
 *
 * The request carries a Bearer access token (RFC 6750 §2.1). The answer is
 *   200  with Variable-FASTAUTH_SUB, _CLIENT_ID, _SCOPE and _EXP, which the
 *        web server hands the protected application as FASTAUTH_SUB, ...;
 *   401  WWW-Authenticate: Bearer (no token; error="invalid_token" for a
 *        malformed, forged, expired or revoked one);
 *   403  error="insufficient_scope" when the token lacks a scope of the
 *        request variable FASTAUTH_REQUIRED_SCOPE (set per location by the
 *        web server configuration; clients cannot set it: a request header
 *        arrives as HTTP_*);
 *   429  the ratelimit_authorizer policy;
 *   503  the revocation state cannot be known (mirror out of sync and Redis
 *        unreachable): never a guess either way;
 *   500  a FASTAUTH_REQUIRED_SCOPE that is not a scope list (misconfiguration).
 */
#ifndef EP_AUTHORIZER_H
#define EP_AUTHORIZER_H

struct request;
struct response;
struct service_thread;

/* The request variable naming the scopes a location requires (space-separated). */
#define EP_AUTHORIZER_SCOPE_VAR	"FASTAUTH_REQUIRED_SCOPE"

/*
 * Decide one Authorizer request and fill resp. A grant (status 200) holds
 * only Variable-* headers and no body: send it with response_send_bare.
 */
void	ep_authorizer_handle(struct service_thread *, struct request *, struct response *);

#endif
