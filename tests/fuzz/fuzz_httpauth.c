/*
 * fuzz_httpauth.c -- libFuzzer target for httpauth.c and b64.c.
 *
 * Per input, taken as an Authorization header (up to its first NUL):
 *  1. httpauth_scheme, httpauth_basic and httpauth_bearer must agree: Basic
 *     decodes iff the scheme is HTTPAUTH_BASIC (given room), Bearer finds a
 *     token iff HTTPAUTH_BEARER; a failed Basic leaves its outputs zeroed;
 *  2. a decoded Basic credential, encoded again (RFC 6749 §2.3.1, then
 *     base64), decodes to the same id and secret;
 *  3. a Bearer token lies inside the header and uses only b64token characters;
 *  4. the Authorizer's reading (httpauth_bearer_offered: token, malformed
 *     Bearer, or none offered) agrees with httpauth_bearer and httpauth_scheme.
 * And, on the raw bytes, the strict base64 decoders: whatever they accept
 * must encode back to exactly the input (one encoding per byte string).
 * A broken property calls abort(), which libFuzzer and the replay driver both
 * report as a crash.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/b64.h"
#include "core/buf.h"
#include "core/fastauth.h"
#include "core/xmalloc.h"
#include "http/httpauth.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static void
fuzz_check(int ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz_httpauth: %s\n", what);
		abort();
	}
}

static int
fuzz_allzero(const char *p, size_t n)
{
	while (n-- > 0)
		if (*p++ != '\0')
			return 0;
	return 1;
}

/* Append s form-urlencoded: unreserved bytes as they are, the rest %XX. */
static void
fuzz_urlencode(struct buf *b, const char *s)
{
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_')
			buf_putc(b, (char)c);
		else
			buf_printf(b, "%%%02X", c);
	}
}

static void
fuzz_basic(const char *h, size_t hlen, enum httpauth_scheme scheme)
{
	char *id, *secret, *id2, *secret2, *hdr;
	struct buf cred = BUF_INIT;
	size_t cap = hlen + 1;
	int rc;

	id = xmalloc(cap);
	secret = xmalloc(cap);
	/* Room for anything: succeeds exactly when the scheme says Basic. */
	rc = httpauth_basic(h, id, cap, secret, cap);
	fuzz_check((rc == FA_OK) == (scheme == HTTPAUTH_BASIC),
	    "httpauth_basic disagrees with httpauth_scheme");
	if (rc != FA_OK) {
		fuzz_check(fuzz_allzero(id, cap) && fuzz_allzero(secret, cap),
		    "outputs not wiped");
		goto out;
	}
	fuzz_check(*id != '\0' && strlen(id) < cap && strlen(secret) < cap,
	    "bad id or secret");

	fuzz_urlencode(&cred, id);
	buf_putc(&cred, ':');
	fuzz_urlencode(&cred, secret);
	hdr = xmalloc(6 + B64_ENCLEN(cred.len) + 1);
	memcpy(hdr, "Basic ", 6);
	b64_encode((const uint8_t *)cred.data, cred.len, hdr + 6);
	id2 = xmalloc(strlen(id) + 1);
	secret2 = xmalloc(strlen(secret) + 1);
	/* Exactly the room needed: the caps are inclusive of the NUL. */
	fuzz_check(httpauth_basic(hdr, id2, strlen(id) + 1, secret2,
	    strlen(secret) + 1) == FA_OK, "re-encoded credential refused");
	fuzz_check(strcmp(id, id2) == 0 && strcmp(secret, secret2) == 0,
	    "re-encoded credential differs");
	/* One byte short of room must fail. */
	fuzz_check(httpauth_basic(hdr, id2, strlen(id), secret2,
	    strlen(secret) + 1) == FA_ERR, "id over its cap accepted");
	free(id2);
	free(secret2);
	free(hdr);
	buf_wipe(&cred);
out:
	free(id);
	free(secret);
}

static void
fuzz_bearer(const char *h, size_t hlen, enum httpauth_scheme scheme)
{
	const char *tok;
	size_t len, i;
	int rc;

	rc = httpauth_bearer(h, &tok, &len);
	fuzz_check((rc == FA_OK) == (scheme == HTTPAUTH_BEARER),
	    "httpauth_bearer disagrees with httpauth_scheme");
	if (rc != FA_OK) {
		fuzz_check(tok == NULL && len == 0, "outputs set on failure");
		return;
	}
	fuzz_check(len > 0 && tok > h && tok + len <= h + hlen,
	    "token outside the header");
	for (i = 0; i < len; i++)
		fuzz_check(strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrst"
		    "uvwxyz0123456789-._~+/=", tok[i]) != NULL,
		    "token character outside b64token");
}

/* The Authorizer's reading (httpauth_bearer_offered) agrees with the rest. */
static void
fuzz_offered(const char *h, enum httpauth_scheme scheme)
{
	const char *tok, *tok2;
	size_t len, len2;
	enum httpauth_scheme r = httpauth_bearer_offered(h, &tok, &len);

	fuzz_check(r == HTTPAUTH_NONE || r == HTTPAUTH_BEARER || r == HTTPAUTH_MALFORMED,
	    "httpauth_bearer_offered out of range");
	fuzz_check((r == HTTPAUTH_BEARER) == (httpauth_bearer(h, &tok2, &len2) == FA_OK),
	    "httpauth_bearer_offered disagrees with httpauth_bearer");
	if (r == HTTPAUTH_BEARER)
		fuzz_check(tok == tok2 && len == len2, "offered token differs");
	else
		fuzz_check(tok == NULL && len == 0, "offered outputs set without a token");
	if (r == HTTPAUTH_MALFORMED)
		fuzz_check(scheme == HTTPAUTH_MALFORMED, "a malformed offer the scheme accepts");
	if (r == HTTPAUTH_NONE)
		fuzz_check(scheme != HTTPAUTH_BEARER, "a Bearer header read as no offer");
}

static void
fuzz_b64(const char *in, size_t n)
{
	uint8_t *dec = xmalloc(B64_DECLEN(n));
	char *enc;
	size_t len;

	if (b64_decode(in, n, dec, B64_DECLEN(n), &len) == FA_OK) {
		enc = xmalloc(B64_ENCLEN(len) + 1);
		fuzz_check(b64_encode(dec, len, enc) == n &&
		    memcmp(enc, in, n) == 0, "b64 not canonical");
		free(enc);
	}
	if (b64url_decode(in, n, dec, B64_DECLEN(n), &len) == FA_OK) {
		enc = xmalloc(B64URL_ENCLEN(len) + 1);
		fuzz_check(b64url_encode(dec, len, enc) == n &&
		    memcmp(enc, in, n) == 0, "b64url not canonical");
		free(enc);
	}
	free(dec);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	enum httpauth_scheme scheme;
	char *h = xmalloc(size + 1);
	size_t hlen;

	memcpy(h, data, size);
	h[size] = '\0';
	hlen = strlen(h);

	scheme = httpauth_scheme(h);
	fuzz_check(scheme >= HTTPAUTH_NONE && scheme <= HTTPAUTH_MALFORMED,
	    "scheme out of range");
	fuzz_basic(h, hlen, scheme);
	fuzz_bearer(h, hlen, scheme);
	fuzz_offered(h, scheme);
	free(h);

	fuzz_b64((const char *)data, size);
	return 0;
}
