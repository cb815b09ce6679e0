/*
 * crypto.h -- the libgcrypt primitives fastauth uses: AES-256-GCM, HMAC-SHA256,
 * SHA-256, random bytes, constant-time compare and wiping.
 *
 * A struct crypto_ctx keeps cipher and MAC handles open so the hot path never
 * opens a handle (measured 3x slower); one context per thread, never shared.
 */
#ifndef CRYPTO_H
#define CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#define CRYPTO_KEYLEN	32	/* AES-256 */
#define CRYPTO_NONCELEN	12	/* GCM 96-bit nonce */
#define CRYPTO_TAGLEN	16
#define CRYPTO_OVERHEAD	(CRYPTO_NONCELEN + CRYPTO_TAGLEN)
#define CRYPTO_HASHLEN	32	/* SHA-256 and HMAC-SHA256 */

struct crypto_ctx;

/* Initialise libgcrypt once per process (version check, no secure-memory warnings). */
int	crypto_init(char **cause);
/* A per-thread context; aborts if libgcrypt cannot open a handle. Free with crypto_ctx_free. */
struct crypto_ctx *crypto_ctx_new(void);
void	crypto_ctx_free(struct crypto_ctx *);

/*
 * Seal n bytes of pt with key under a fresh random nonce, binding aad. Writes
 * nonce | ciphertext | tag (n + CRYPTO_OVERHEAD bytes) to out. FA_OK or FA_ERR.
 */
int	crypto_seal(struct crypto_ctx *, const uint8_t key[CRYPTO_KEYLEN],
	    const void *aad, size_t aadlen, const void *pt, size_t n, uint8_t *out);
/*
 * Open what crypto_seal wrote (inlen bytes) into pt (inlen - CRYPTO_OVERHEAD
 * bytes). FA_OK, or FA_ERR when too short or the tag does not verify (pt is
 * then wiped).
 */
int	crypto_open(struct crypto_ctx *, const uint8_t key[CRYPTO_KEYLEN],
	    const void *aad, size_t aadlen, const uint8_t *in, size_t inlen, void *pt);
int	crypto_hmac_sha256(struct crypto_ctx *, const void *key, size_t keylen,
	    const void *msg, size_t n, uint8_t out[CRYPTO_HASHLEN]);
void	crypto_sha256(const void *, size_t, uint8_t out[CRYPTO_HASHLEN]);
/* n bytes from getrandom(2) (never GCRY_STRONG_RANDOM per request). FA_OK or FA_ERR. */
int	crypto_random(void *, size_t n);
/*
 * n random bytes for public values (nonces, token ids), from a per-thread
 * pool refilled by getrandom; fork-safe. Never for keys or secrets.
 */
int	crypto_nonce(void *, size_t n);
/* 1 if the n bytes are equal, 0 otherwise, in time independent of the contents. */
int	crypto_memeq(const void *, const void *, size_t n);
void	crypto_wipe(void *, size_t n);
/* Lower-case hex of n bytes into out (2n+1 bytes). */
void	crypto_hex(const uint8_t *, size_t n, char *out);
/* Decode exactly 2n lower-case hex characters (len) into n bytes. FA_OK or FA_ERR. */
int	crypto_unhex(const char *s, size_t len, uint8_t *out, size_t n);
/* libgcrypt's version text (static). */
const char *crypto_library_version(void);
/*
 * The hardware features libgcrypt uses on this CPU ("intel-aesni,
 * intel-pclmul,..."), from GCRYCTL_PRINT_CONFIG's hwflist; "" if none.
 * Caller frees.
 */
char	*crypto_hw_features(void);

#endif
