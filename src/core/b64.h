/*
 * b64.h -- base64 (RFC 4648 §4, with padding; HTTP Basic) and base64url (§5,
 * no padding; tokens). Decoders are strict: they reject bad characters,
 * misplaced or missing padding, non-zero trailing bits and output overflow.
 */
#ifndef B64_H
#define B64_H

#include <stddef.h>
#include <stdint.h>

/* Encoded length of n bytes, without NUL: base64url unpadded, base64 padded. */
#define B64URL_ENCLEN(n)	(((n) * 4 + 2) / 3)
#define B64_ENCLEN(n)		((((n) + 2) / 3) * 4)
/* Upper bound of decoded length of n characters. */
#define B64_DECLEN(n)		(((n) / 4) * 3 + 3)

/* Encode n bytes into out (B64URL_ENCLEN(n)+1 bytes); NUL-terminates; returns length. */
size_t	b64url_encode(const uint8_t *in, size_t n, char *out);
size_t	b64_encode(const uint8_t *in, size_t n, char *out);
/* Decode n characters into out (outcap bytes). FA_OK and *outlen, or FA_ERR. */
int	b64url_decode(const char *in, size_t n, uint8_t *out, size_t outcap, size_t *outlen);
int	b64_decode(const char *in, size_t n, uint8_t *out, size_t outcap, size_t *outlen);

#endif
