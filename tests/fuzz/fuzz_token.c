/*
 * fuzz_token.c -- libFuzzer target for token.c under a fixed key.
 *
 * Three things per input:
 *  1. the input as token text, to token_peek_kid and token_open (and again
 *     behind a "fa1." prefix, to reach the decoder sooner): must not crash;
 *  2. the input as a claims plaintext, sealed validly by hand, to token_open:
 *     this is the only way a fuzzer gets past the tag into the claims decoder.
 *     Whatever it accepts must re-encode to exactly the input (one encoding
 *     per claim set);
 *  3. the input as the material of a claim set within the limits: token_seal
 *     then token_open must give back the same claims.
 * A broken property calls abort(), which libFuzzer and the replay driver both
 * report as a crash.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/b64.h"
#include "core/fastauth.h"
#include "crypto/crypto.h"
#include "crypto/token.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

/* The key the seed corpus's valid token is sealed with: bytes 0, 1, ..., 31. */
static uint8_t			 fuzz_key[CRYPTO_KEYLEN];
static struct crypto_ctx	*fuzz_ctx;

#define FUZZ_KID	1
/* Longest plaintext worth sealing for property 2: the largest claim set. */
#define FUZZ_PT_MAX	(16 + 8 + 8 + 1 + 2 + 2 + FA_CLIENT_ID_MAX + \
			    FA_SUBJECT_MAX + FA_SCOPE_MAX)

static void
fuzz_setup(void)
{
	size_t	i;

	if (fuzz_ctx != NULL)
		return;
	if (crypto_init(NULL) != FA_OK)
		abort();
	for (i = 0; i < CRYPTO_KEYLEN; i++)
		fuzz_key[i] = (uint8_t)i;
	fuzz_ctx = crypto_ctx_new();	/* kept for the process's life */
}

static void
fuzz_check(int ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz_token: %s\n", what);
		abort();
	}
}

static int
fuzz_claims_eq(const struct token_claims *a, const struct token_claims *b)
{
	return memcmp(a->jti, b->jti, TOKEN_JTI_LEN) == 0 && a->iat == b->iat &&
	    a->exp == b->exp && strcmp(a->client, b->client) == 0 &&
	    strcmp(a->subject, b->subject) == 0 && strcmp(a->scope, b->scope) == 0;
}

/* Property 1: arbitrary text. */
static void
fuzz_text(const uint8_t *data, size_t size)
{
	static char		 text[TOKEN_MAX_LEN + 8];
	struct token_claims	 c;
	uint32_t		 kid;

	token_peek_kid((const char *)data, size, &kid);
	token_open(fuzz_ctx, fuzz_key, (const char *)data, size, &c);
	if (size > sizeof text - 4)
		return;
	memcpy(text, "fa1.", 4);
	memcpy(text + 4, data, size);
	token_peek_kid(text, size + 4, &kid);
	token_open(fuzz_ctx, fuzz_key, text, size + 4, &c);
}

/* Seal claims and recover their plaintext; its length, or 0. */
static size_t
fuzz_plaintext(const struct token_claims *c, uint8_t *pt)
{
	char	text[TOKEN_MAX_LEN + 1];
	uint8_t	blob[TOKEN_MAX_LEN];
	uint8_t	aad[7] = { 'f', 'a', '1', 0, 0, 0, FUZZ_KID };
	size_t	bloblen;
	int	len;

	len = token_seal(fuzz_ctx, FUZZ_KID, fuzz_key, c, text, sizeof text);
	fuzz_check(len > 0, "token_seal refused decoded claims");
	fuzz_check(b64url_decode(text + 4, (size_t)len - 4, blob, sizeof blob,
	    &bloblen) == FA_OK, "token_seal wrote bad base64url");
	fuzz_check(crypto_open(fuzz_ctx, fuzz_key, aad, sizeof aad, blob + 4,
	    bloblen - 4, pt) == FA_OK, "token_seal output does not open");
	return bloblen - 4 - CRYPTO_OVERHEAD;
}

/* Property 2: arbitrary plaintext behind a valid tag. */
static void
fuzz_decoder(const uint8_t *data, size_t size)
{
	uint8_t			 blob[4 + CRYPTO_OVERHEAD + FUZZ_PT_MAX];
	uint8_t			 aad[7] = { 'f', 'a', '1', 0, 0, 0, FUZZ_KID };
	uint8_t			 pt[FUZZ_PT_MAX];
	char			 text[4 + B64URL_ENCLEN(sizeof blob) + 1];
	struct token_claims	 c;
	size_t			 n, textlen;

	if (size > FUZZ_PT_MAX)
		size = FUZZ_PT_MAX;
	memcpy(blob, aad + 3, 4);
	fuzz_check(crypto_seal(fuzz_ctx, fuzz_key, aad, sizeof aad, data, size,
	    blob + 4) == FA_OK, "crypto_seal failed");
	memcpy(text, "fa1.", 4);
	textlen = 4 + b64url_encode(blob, 4 + CRYPTO_OVERHEAD + size, text + 4);
	if (token_open(fuzz_ctx, fuzz_key, text, textlen, &c) != FA_OK)
		return;
	n = fuzz_plaintext(&c, pt);
	fuzz_check(n == size && memcmp(pt, data, size) == 0,
	    "accepted claims have a second encoding");
}

/* Take the next input byte, cycling; 0 for an empty input. */
static uint8_t
fuzz_byte(const uint8_t *data, size_t size, size_t *pos)
{
	if (size == 0)
		return 0;
	return data[(*pos)++ % size];
}

static void
fuzz_string(char *s, size_t len, const uint8_t *data, size_t size, size_t *pos)
{
	size_t	i;
	uint8_t	b;

	/* NUL would only shorten the string: keep the length asked for. */
	for (i = 0; i < len; i++) {
		b = fuzz_byte(data, size, pos);
		s[i] = b == 0 ? 'z' : (char)b;
	}
	s[len] = '\0';
}

/* Property 3: claims built from the input round-trip. */
static void
fuzz_roundtrip(const uint8_t *data, size_t size)
{
	struct token_claims	 c, got;
	char			 text[TOKEN_MAX_LEN + 1];
	size_t			 pos = 0, i, cl, sl, scl;
	uint32_t		 kid;
	int			 len;

	memset(&c, 0, sizeof c);
	cl = 1 + fuzz_byte(data, size, &pos) % FA_CLIENT_ID_MAX;
	sl = ((size_t)fuzz_byte(data, size, &pos) << 8 |
	    fuzz_byte(data, size, &pos)) % (FA_SUBJECT_MAX + 1);
	scl = ((size_t)fuzz_byte(data, size, &pos) << 8 |
	    fuzz_byte(data, size, &pos)) % (FA_SCOPE_MAX + 1);
	for (i = 0; i < TOKEN_JTI_LEN; i++)
		c.jti[i] = fuzz_byte(data, size, &pos);
	for (i = 0; i < 8; i++) {
		c.iat = c.iat << 8 | fuzz_byte(data, size, &pos);
		c.exp = c.exp << 8 | fuzz_byte(data, size, &pos);
	}
	fuzz_string(c.client, cl, data, size, &pos);
	fuzz_string(c.subject, sl, data, size, &pos);
	fuzz_string(c.scope, scl, data, size, &pos);

	len = token_seal(fuzz_ctx, (uint32_t)size, fuzz_key, &c, text,
	    sizeof text);
	fuzz_check(len > 0 && len <= TOKEN_MAX_LEN, "token_seal failed");
	fuzz_check(token_peek_kid(text, (size_t)len, &kid) == FA_OK &&
	    kid == (uint32_t)size, "token_peek_kid");
	fuzz_check(token_open(fuzz_ctx, fuzz_key, text, (size_t)len, &got) ==
	    FA_OK, "token_open of a fresh token failed");
	fuzz_check(fuzz_claims_eq(&c, &got), "round trip changed the claims");
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_setup();
	fuzz_text(data, size);
	fuzz_decoder(data, size);
	fuzz_roundtrip(data, size);
	return 0;
}
