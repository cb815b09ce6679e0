/*
 * httpauth.c -- the Authorization request header: client authentication with
 * HTTP Basic (RFC 7617, with the RFC 6749 §2.3.1 form-urlencoding of id and
 * secret) and Bearer tokens (RFC 6750 §2.1).
 *
 * Parsing is strict and owns no memory beyond the call: the decoded credential
 * passes through a temporary buffer (on the stack for ordinary sizes) that is
 * wiped before returning, whatever the outcome.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/b64.h"
#include "core/fastauth.h"
#include "core/xmalloc.h"
#include "http/form.h"
#include "http/httpauth.h"

/* Temporaries up to this size live on the stack: ids and secrets are short. */
#define HTTPAUTH_STACK 1024

/*
 * If h starts with scheme (case-insensitive) followed by a space or the end,
 * set *cred past the spaces (RFC 7235: 1*SP) and return 1; else 0.
 */
static int
httpauth_match(const char *h, const char *scheme, const char **cred)
{
	size_t n = strlen(scheme);

	if (strncasecmp(h, scheme, n) != 0 || (h[n] != ' ' && h[n] != '\0'))
		return 0;
	for (h += n; *h == ' '; h++)
		;
	*cred = h;
	return 1;
}

/* Length of s without trailing spaces and tabs (the header's OWS). */
static size_t
httpauth_trimlen(const char *s)
{
	size_t n = strlen(s);

	while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
		n--;
	return n;
}

/*
 * Decode and split a Basic credential of n characters. With id == NULL only
 * check it; otherwise copy id and secret out if they fit their caps. The
 * temporary holds the base64-decoded text, then the url-decoded id and secret
 * after it, and is wiped on every path.
 */
static int
httpauth_basic_decode(const char *cred, size_t n, char *id, size_t idcap,
    char *secret, size_t secretcap)
{
	char stk[HTTPAUTH_STACK], *tmp = stk, *raw, *dec, *colon;
	size_t rawcap, rawlen = 0, tmpsize = 0;
	int idlen, seclen, rc = FA_ERR;

	if (n == 0 || n % 4 != 0)
		goto out;
	rawcap = n / 4 * 3;
	/* Refuse what cannot fit even if every byte were a %-escape. */
	if (id != NULL && rawcap / 3 > idcap + secretcap)
		goto out;
	tmpsize = 2 * rawcap + 1;
	if (tmpsize > sizeof stk)
		tmp = xmalloc(tmpsize);
	raw = tmp;
	if (b64_decode(cred, n, (uint8_t *)raw, rawcap, &rawlen) != FA_OK)
		goto out;
	if ((colon = memchr(raw, ':', rawlen)) == NULL)
		goto out;
	/* id at dec, secret right after its NUL: rawlen + 1 bytes in all. */
	dec = raw + rawlen;
	if ((idlen = form_urldecode(raw, (size_t)(colon - raw), dec)) <= 0)
		goto out;	/* empty id, bad escape or NUL */
	seclen = form_urldecode(colon + 1, rawlen - (size_t)(colon - raw) - 1,
	    dec + idlen + 1);
	if (seclen < 0)
		goto out;
	if (id != NULL) {
		if ((size_t)idlen >= idcap || (size_t)seclen >= secretcap)
			goto out;
		memcpy(id, dec, (size_t)idlen + 1);
		memcpy(secret, dec + idlen + 1, (size_t)seclen + 1);
	}
	rc = FA_OK;
out:
	if (tmpsize > 0)
		explicit_bzero(tmp, tmpsize);
	if (tmp != stk)
		free(tmp);
	return rc;
}

int
httpauth_basic(const char *header, char *id, size_t idcap, char *secret,
    size_t secretcap)
{
	const char *cred;

	if (header != NULL && idcap > 0 && secretcap > 0 &&
	    httpauth_match(header, "Basic", &cred) &&
	    httpauth_basic_decode(cred, httpauth_trimlen(cred), id, idcap,
	    secret, secretcap) == FA_OK)
		return FA_OK;
	if (id != NULL && idcap > 0)
		explicit_bzero(id, idcap);
	if (secret != NULL && secretcap > 0)
		explicit_bzero(secret, secretcap);
	return FA_ERR;
}

/* RFC 6750 b64token characters, before the trailing '='s. */
static int
httpauth_b64token_char(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	    (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
	    c == '~' || c == '+' || c == '/';
}

int
httpauth_bearer(const char *header, const char **tok, size_t *len)
{
	const char *cred, *p;

	*tok = NULL;
	*len = 0;
	if (header == NULL || !httpauth_match(header, "Bearer", &cred))
		return FA_ERR;
	for (p = cred; httpauth_b64token_char((unsigned char)*p); p++)
		;
	if (p == cred)
		return FA_ERR;
	while (*p == '=')
		p++;
	if (httpauth_trimlen(p) != 0)
		return FA_ERR;	/* anything but OWS after the token */
	*tok = cred;
	*len = (size_t)(p - cred);
	return FA_OK;
}

enum httpauth_scheme
httpauth_scheme(const char *header)
{
	const char *cred, *tok;
	size_t len;

	if (header == NULL || header[strspn(header, " \t")] == '\0')
		return HTTPAUTH_NONE;
	if (httpauth_match(header, "Basic", &cred))
		return httpauth_basic_decode(cred, httpauth_trimlen(cred), NULL,
		    0, NULL, 0) == FA_OK ? HTTPAUTH_BASIC : HTTPAUTH_MALFORMED;
	if (httpauth_match(header, "Bearer", &cred))
		return httpauth_bearer(header, &tok, &len) == FA_OK ?
		    HTTPAUTH_BEARER : HTTPAUTH_MALFORMED;
	return HTTPAUTH_OTHER;
}

enum httpauth_scheme
httpauth_bearer_offered(const char *header, const char **tok, size_t *len)
{
	const char *cred;

	*tok = NULL;
	*len = 0;
	if (header == NULL || !httpauth_match(header, "Bearer", &cred))
		return HTTPAUTH_NONE;
	return httpauth_bearer(header, tok, len) == FA_OK ? HTTPAUTH_BEARER :
	    HTTPAUTH_MALFORMED;
}
