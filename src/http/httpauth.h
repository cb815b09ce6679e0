/*
 * httpauth.h -- the Authorization request header: HTTP Basic (RFC 7617) with
 * the RFC 6749 §2.3.1 rule that client id and secret are form-urlencoded
 * before base64, and Bearer (RFC 6750 §2.1).
 */
#ifndef HTTPAUTH_H
#define HTTPAUTH_H

#include <stddef.h>

enum httpauth_scheme {
	HTTPAUTH_NONE = 0,	/* header absent or empty */
	HTTPAUTH_BASIC,
	HTTPAUTH_BEARER,
	HTTPAUTH_OTHER,		/* a scheme we do not speak */
	HTTPAUTH_MALFORMED,	/* a known scheme with a broken credential */
};

/* Which scheme the header value uses ("Basic", "Bearer"; case-insensitive). */
enum httpauth_scheme httpauth_scheme(const char *header);

/*
 * Decode a Basic credential into id and secret (NUL-terminated, url-decoded,
 * at most idcap-1 and secretcap-1 bytes). FA_OK or FA_ERR (not Basic, bad
 * base64, no colon, bad encoding, NUL byte, too long). On FA_ERR the outputs
 * are wiped.
 */
int	httpauth_basic(const char *header, char *id, size_t idcap,
	    char *secret, size_t secretcap);
/*
 * Find the b64token of a Bearer header. FA_OK with *tok pointing into header
 * and *len its length, or FA_ERR (not Bearer, empty, bad characters).
 */
int	httpauth_bearer(const char *header, const char **tok, size_t *len);
/*
 * A resource server's reading of the header (RFC 6750 §2.1, §3.1):
 * HTTPAUTH_BEARER with *tok and *len as httpauth_bearer; HTTPAUTH_MALFORMED
 * when the Bearer scheme carries a broken or empty token (answer
 * error="invalid_token"); HTTPAUTH_NONE when no Bearer token was offered at
 * all (no header, Basic, another scheme: a challenge without error).
 */
enum httpauth_scheme httpauth_bearer_offered(const char *header, const char **tok,
	    size_t *len);

#endif
