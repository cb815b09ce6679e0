/*
 * b64.c -- base64 (RFC 4648 §4, padded: HTTP Basic credentials) and base64url
 * (§5, unpadded: tokens and key ids).
 *
 * Decoding is table-driven and strict: one canonical encoding per byte string,
 * so a token cannot be altered in its last character, padding, or alphabet
 * and still decode to the same bytes (which would make two different strings
 * name the same token in logs, rate limits and revocation lists). The module
 * owns nothing; callers provide every buffer.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/b64.h"
#include "core/fastauth.h"

static const char b64_enc_std[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char b64_enc_url[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/*
 * Character to 6-bit value; XX (high bit set) marks a character outside the
 * alphabet, '=' included, so one OR over a quad finds any bad character.
 */
#define XX 0xff
static const uint8_t b64_dec_std[256] = {
	XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX,
	XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX,
	XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, 62, XX, XX, XX, 63,
	52, 53, 54, 55, 56, 57, 58, 59, 60, 61, XX, XX, XX, XX, XX, XX,
	XX,  0,  1,  2,  3,  4,  5,  6,  7,  8,  9, 10, 11, 12, 13, 14,
	15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, XX, XX, XX, XX, XX,
	XX, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40,
	41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, XX, XX, XX, XX, XX,
	XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX,
	XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX,
	XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX,
	XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX,
	XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX,
	XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX,
	XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX,
	XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX,
};
static const uint8_t b64_dec_url[256] = {
	XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX,
	XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX,
	XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, 62, XX, XX,
	52, 53, 54, 55, 56, 57, 58, 59, 60, 61, XX, XX, XX, XX, XX, XX,
	XX,  0,  1,  2,  3,  4,  5,  6,  7,  8,  9, 10, 11, 12, 13, 14,
	15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, XX, XX, XX, XX, 63,
	XX, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40,
	41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, XX, XX, XX, XX, XX,
	XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX,
	XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX,
	XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX,
	XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX,
	XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX,
	XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX,
	XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX,
	XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX,
};
#undef XX

/* Encode with alphabet abc; pad with '=' to a multiple of 4 when pad is set. */
static size_t
b64_encode_with(const char *abc, int pad, const uint8_t *in, size_t n,
    char *out)
{
	char *o = out;
	size_t i;

	for (i = 0; i + 3 <= n; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 |
		    in[i + 2];

		*o++ = abc[v >> 18];
		*o++ = abc[(v >> 12) & 0x3f];
		*o++ = abc[(v >> 6) & 0x3f];
		*o++ = abc[v & 0x3f];
	}
	if (n - i == 1) {
		*o++ = abc[in[i] >> 2];
		*o++ = abc[(in[i] & 0x03) << 4];
		if (pad) {
			*o++ = '=';
			*o++ = '=';
		}
	} else if (n - i == 2) {
		*o++ = abc[in[i] >> 2];
		*o++ = abc[(in[i] & 0x03) << 4 | in[i + 1] >> 4];
		*o++ = abc[(in[i + 1] & 0x0f) << 2];
		if (pad)
			*o++ = '=';
	}
	*o = '\0';
	return (size_t)(o - out);
}

size_t
b64url_encode(const uint8_t *in, size_t n, char *out)
{
	return b64_encode_with(b64_enc_url, 0, in, n, out);
}

size_t
b64_encode(const uint8_t *in, size_t n, char *out)
{
	return b64_encode_with(b64_enc_std, 1, in, n, out);
}

/*
 * Decode m data characters (padding already removed) with table tab. The
 * output length is computed and checked against outcap before anything is
 * written; on a bad character the bytes written so far are wiped, since the
 * input may have been a credential.
 */
static int
b64_decode_with(const uint8_t *tab, const char *in, size_t m, uint8_t *out,
    size_t outcap, size_t *outlen)
{
	const unsigned char *p = (const unsigned char *)in;
	size_t full = m / 4, rem = m % 4, need, i;
	uint8_t *o = out;
	uint8_t a, b, c, d;

	if (rem == 1)
		return FA_ERR;	/* 6 bits cannot make a byte */
	need = full * 3 + (rem == 0 ? 0 : rem - 1);
	if (need > outcap)
		return FA_ERR;

	for (i = 0; i < full; i++, p += 4) {
		a = tab[p[0]];
		b = tab[p[1]];
		c = tab[p[2]];
		d = tab[p[3]];
		if ((a | b | c | d) & 0x80)
			goto bad;
		*o++ = (uint8_t)(a << 2 | b >> 4);
		*o++ = (uint8_t)(b << 4 | c >> 2);
		*o++ = (uint8_t)(c << 6 | d);
	}
	if (rem == 2) {
		a = tab[p[0]];
		b = tab[p[1]];
		/* Non-zero unused bits would give a second encoding of the same bytes. */
		if (((a | b) & 0x80) || (b & 0x0f) != 0)
			goto bad;
		*o++ = (uint8_t)(a << 2 | b >> 4);
	} else if (rem == 3) {
		a = tab[p[0]];
		b = tab[p[1]];
		c = tab[p[2]];
		if (((a | b | c) & 0x80) || (c & 0x03) != 0)
			goto bad;
		*o++ = (uint8_t)(a << 2 | b >> 4);
		*o++ = (uint8_t)(b << 4 | c >> 2);
	}
	if (outlen != NULL)
		*outlen = need;
	return FA_OK;

bad:
	if (o > out)
		explicit_bzero(out, (size_t)(o - out));
	return FA_ERR;
}

int
b64url_decode(const char *in, size_t n, uint8_t *out, size_t outcap,
    size_t *outlen)
{
	/* No padding in base64url: '=' is outside the table and is rejected there. */
	return b64_decode_with(b64_dec_url, in, n, out, outcap, outlen);
}

int
b64_decode(const char *in, size_t n, uint8_t *out, size_t outcap,
    size_t *outlen)
{
	size_t pad = 0;

	/* Padding is mandatory: the length is always a multiple of four. */
	if (n % 4 != 0)
		return FA_ERR;
	if (n > 0 && in[n - 1] == '=') {
		pad++;
		if (in[n - 2] == '=')
			pad++;
	}
	/* Any '=' left in the data is rejected by the table. */
	return b64_decode_with(b64_dec_std, in, n - pad, out, outcap, outlen);
}
