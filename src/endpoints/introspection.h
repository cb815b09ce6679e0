/*
 * introspection.h -- the RFC 7662 answer for an open access token, shared by
 * /oauth2/introspect, its batch form, and the benchmarks that measure them.
 */
#ifndef INTROSPECTION_H
#define INTROSPECTION_H

struct buf;
struct token_claims;

/*
 * Append the RFC 7662 object of an active access token (active, scope if
 * any, client_id, token_type, exp, iat, sub if any, iss, jti) to b.
 */
void	introspection_active_json(struct buf *b, const struct token_claims *,
	    const char *issuer);

#endif
