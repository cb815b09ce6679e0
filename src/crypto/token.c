/*
 * token.c -- sealed access tokens: encode claims, seal them with AES-256-GCM
 * under a keyring key, and the reverse.
 *
 * Text:   "fa1." base64url( kid[4] | nonce[12] | ciphertext | tag[16] )
 * AAD:    "fa1" | kid[4]   (7 bytes), so neither the version nor the key id can
 *         be changed without failing the tag.
 * Claims: the plaintext, integers big-endian, strings without NUL:
 *           jti[16] | iat u64 | exp u64 |
 *           client len u8 (1..FA_CLIENT_ID_MAX) | client bytes |
 *           subject len u16 (0..FA_SUBJECT_MAX) | subject bytes |
 *           scope len u16 (0..FA_SCOPE_MAX) | scope bytes
 *         Decoding is strict -- a length past the end, trailing bytes, a NUL
 *         inside a string, an empty client or a field over its limit are all
 *         rejected -- so one claim set has exactly one encoding. Only a holder
 *         of the key can make the tag verify, but a malformed set must still
 *         not become a token.
 *
 * Validation allocates nothing: every buffer is on the stack, sized from the
 * field limits, and the plaintext is wiped before returning.
 */
#include <string.h>

#include "core/b64.h"
#include "core/fastauth.h"
#include "crypto/crypto.h"
#include "crypto/token.h"

#define TOKEN_PREFIX		"fa1."
#define TOKEN_PREFIX_LEN	4
#define TOKEN_AAD_TAG		"fa1"	/* the prefix without its dot */
#define TOKEN_AAD_TAG_LEN	3
#define TOKEN_KID_LEN		4
#define TOKEN_AAD_LEN		(TOKEN_AAD_TAG_LEN + TOKEN_KID_LEN)

/* Fixed part of the claims: jti, iat, exp and the three length fields. */
#define TOKEN_CLAIMS_FIXED	(TOKEN_JTI_LEN + 8 + 8 + 1 + 2 + 2)
/* Smallest claim set: a one-byte client, empty subject and scope. */
#define TOKEN_CLAIMS_MIN	(TOKEN_CLAIMS_FIXED + 1)
#define TOKEN_CLAIMS_MAX	(TOKEN_CLAIMS_FIXED + FA_CLIENT_ID_MAX + \
				    FA_SUBJECT_MAX + FA_SCOPE_MAX)
/* Decoded (binary) token: kid | nonce | ciphertext | tag. */
#define TOKEN_BLOB_MIN		(TOKEN_KID_LEN + CRYPTO_OVERHEAD + TOKEN_CLAIMS_MIN)
#define TOKEN_BLOB_MAX		(TOKEN_KID_LEN + CRYPTO_OVERHEAD + TOKEN_CLAIMS_MAX)
#define TOKEN_TEXT_MIN		(TOKEN_PREFIX_LEN + B64URL_ENCLEN(TOKEN_BLOB_MIN))
/*
 * Characters token_peek_kid decodes: the kid takes 6 (36 bits), but the strict
 * decoder refuses the 4 leftover bits, which belong to the random nonce; 8
 * characters are exactly 6 bytes.
 */
#define TOKEN_PEEK_CHARS	8

_Static_assert(TOKEN_PREFIX_LEN + B64URL_ENCLEN(TOKEN_BLOB_MAX) <= TOKEN_MAX_LEN,
    "TOKEN_MAX_LEN too small for maximal claims");
_Static_assert(FA_CLIENT_ID_MAX <= 0xff && FA_SUBJECT_MAX <= 0xffff &&
    FA_SCOPE_MAX <= 0xffff, "claim length fields too narrow for FA_*_MAX");

static void
token_put_be(uint8_t *p, uint64_t v, size_t n)
{
	while (n-- > 0) {
		p[n] = v & 0xff;
		v >>= 8;
	}
}

static uint64_t
token_get_be(const uint8_t *p, size_t n)
{
	uint64_t	v = 0;

	while (n-- > 0)
		v = (v << 8) | *p++;
	return v;
}

/*
 * Append a length-prefixed string field (lenbytes 1 or 2) of at most max
 * bytes. Returns the new position, or 0 if the string is too long (s need not
 * be NUL-terminated within max + 1 bytes: that is the too-long case).
 */
static size_t
token_put_string(uint8_t *pt, size_t pos, const char *s, size_t max,
    size_t lenbytes)
{
	size_t	len = strnlen(s, max + 1);

	if (len > max)
		return 0;
	token_put_be(pt + pos, len, lenbytes);
	memcpy(pt + pos + lenbytes, s, len);
	return pos + lenbytes + len;
}

/* Encode claims into pt (TOKEN_CLAIMS_MAX bytes). Length, or 0 if invalid. */
static size_t
token_encode(const struct token_claims *c, uint8_t *pt)
{
	size_t	pos;

	memcpy(pt, c->jti, TOKEN_JTI_LEN);
	token_put_be(pt + TOKEN_JTI_LEN, c->iat, 8);
	token_put_be(pt + TOKEN_JTI_LEN + 8, c->exp, 8);
	pos = TOKEN_JTI_LEN + 16;
	if (c->client[0] == '\0')
		return 0;
	if ((pos = token_put_string(pt, pos, c->client, FA_CLIENT_ID_MAX, 1)) == 0)
		return 0;
	if ((pos = token_put_string(pt, pos, c->subject, FA_SUBJECT_MAX, 2)) == 0)
		return 0;
	return token_put_string(pt, pos, c->scope, FA_SCOPE_MAX, 2);
}

/*
 * Read a length-prefixed string field into out (max + 1 bytes) and
 * NUL-terminate it. Returns the new position, or 0 if it runs past n, is
 * longer than max, shorter than min or contains a NUL.
 */
static size_t
token_get_string(const uint8_t *pt, size_t n, size_t pos, char *out,
    size_t min, size_t max, size_t lenbytes)
{
	size_t	len;

	if (n - pos < lenbytes)
		return 0;
	len = token_get_be(pt + pos, lenbytes);
	pos += lenbytes;
	if (len < min || len > max || n - pos < len)
		return 0;
	if (memchr(pt + pos, '\0', len) != NULL)
		return 0;
	memcpy(out, pt + pos, len);
	out[len] = '\0';
	return pos + len;
}

/* Decode n bytes of claims into c. FA_OK or FA_ERR (see the module comment). */
static int
token_decode(const uint8_t *pt, size_t n, struct token_claims *c)
{
	size_t	pos;

	if (n < TOKEN_CLAIMS_MIN)
		return FA_ERR;
	memcpy(c->jti, pt, TOKEN_JTI_LEN);
	c->iat = token_get_be(pt + TOKEN_JTI_LEN, 8);
	c->exp = token_get_be(pt + TOKEN_JTI_LEN + 8, 8);
	pos = TOKEN_JTI_LEN + 16;
	if ((pos = token_get_string(pt, n, pos, c->client, 1, FA_CLIENT_ID_MAX,
	    1)) == 0)
		return FA_ERR;
	if ((pos = token_get_string(pt, n, pos, c->subject, 0, FA_SUBJECT_MAX,
	    2)) == 0)
		return FA_ERR;
	if ((pos = token_get_string(pt, n, pos, c->scope, 0, FA_SCOPE_MAX,
	    2)) == 0)
		return FA_ERR;
	if (pos != n)
		return FA_ERR;
	return FA_OK;
}

static void
token_aad(const uint8_t kid[TOKEN_KID_LEN], uint8_t aad[TOKEN_AAD_LEN])
{
	memcpy(aad, TOKEN_AAD_TAG, TOKEN_AAD_TAG_LEN);
	memcpy(aad + TOKEN_AAD_TAG_LEN, kid, TOKEN_KID_LEN);
}

int
token_seal(struct crypto_ctx *ctx, uint32_t kid, const uint8_t key[CRYPTO_KEYLEN],
    const struct token_claims *c, char *out, size_t outcap)
{
	uint8_t	pt[TOKEN_CLAIMS_MAX], blob[TOKEN_BLOB_MAX], aad[TOKEN_AAD_LEN];
	size_t	n, bloblen, textlen;
	int	rv = FA_ERR;

	if ((n = token_encode(c, pt)) == 0)
		goto out;
	bloblen = TOKEN_KID_LEN + CRYPTO_OVERHEAD + n;
	textlen = TOKEN_PREFIX_LEN + B64URL_ENCLEN(bloblen);
	if (outcap < textlen + 1)
		goto out;
	token_put_be(blob, kid, TOKEN_KID_LEN);
	token_aad(blob, aad);
	if (crypto_seal(ctx, key, aad, sizeof aad, pt, n, blob + TOKEN_KID_LEN) !=
	    FA_OK)
		goto out;
	memcpy(out, TOKEN_PREFIX, TOKEN_PREFIX_LEN);
	b64url_encode(blob, bloblen, out + TOKEN_PREFIX_LEN);
	rv = (int)textlen;

out:
	/* The claims (subject, scope) are what the seal keeps confidential. */
	crypto_wipe(pt, sizeof pt);
	return rv;
}

int
token_peek_kid(const char *tok, size_t len, uint32_t *kid)
{
	uint8_t	head[B64_DECLEN(TOKEN_PEEK_CHARS)];
	size_t	headlen;

	if (len < TOKEN_TEXT_MIN || len > TOKEN_MAX_LEN ||
	    memcmp(tok, TOKEN_PREFIX, TOKEN_PREFIX_LEN) != 0)
		return FA_ERR;
	if (b64url_decode(tok + TOKEN_PREFIX_LEN, TOKEN_PEEK_CHARS, head,
	    sizeof head, &headlen) != FA_OK || headlen < TOKEN_KID_LEN)
		return FA_ERR;
	*kid = (uint32_t)token_get_be(head, TOKEN_KID_LEN);
	return FA_OK;
}

int
token_open(struct crypto_ctx *ctx, const uint8_t key[CRYPTO_KEYLEN],
    const char *tok, size_t len, struct token_claims *out)
{
	uint8_t	blob[TOKEN_BLOB_MAX], pt[TOKEN_CLAIMS_MAX], aad[TOKEN_AAD_LEN];
	size_t	bloblen, n = 0;
	int	rv = FA_ERR;

	/* Cheap structural checks first: a forged token costs no AES. */
	if (len < TOKEN_TEXT_MIN || len > TOKEN_MAX_LEN ||
	    memcmp(tok, TOKEN_PREFIX, TOKEN_PREFIX_LEN) != 0)
		goto out;
	/* blob is exactly the largest valid token: anything longer overflows. */
	if (b64url_decode(tok + TOKEN_PREFIX_LEN, len - TOKEN_PREFIX_LEN, blob,
	    sizeof blob, &bloblen) != FA_OK || bloblen < TOKEN_BLOB_MIN)
		goto out;
	n = bloblen - TOKEN_KID_LEN - CRYPTO_OVERHEAD;
	token_aad(blob, aad);
	if (crypto_open(ctx, key, aad, sizeof aad, blob + TOKEN_KID_LEN,
	    bloblen - TOKEN_KID_LEN, pt) != FA_OK)
		goto out;
	rv = token_decode(pt, n, out);

out:
	crypto_wipe(pt, n);
	if (rv != FA_OK)
		memset(out, 0, sizeof *out);	/* nothing half-decoded to trust */
	return rv;
}

int
token_new_jti(uint8_t jti[TOKEN_JTI_LEN])
{
	return crypto_nonce(jti, TOKEN_JTI_LEN);
}
