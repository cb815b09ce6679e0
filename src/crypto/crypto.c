/*
 * crypto.c -- the only file that talks to libgcrypt: AES-256-GCM sealing,
 * HMAC-SHA256, SHA-256, random bytes, constant-time compare, wiping, hex.
 *
 * A struct crypto_ctx owns one AES-256-GCM cipher handle and one HMAC-SHA256
 * MAC handle for its whole life, because opening a handle per call measured 3x
 * slower (DESIGN.md). Each handle remembers the key last set on it so that the
 * common case -- every request of a thread sealing under the same current key
 * -- skips the key schedule. A context belongs to one thread.
 *
 * Secure memory is disabled: per-thread handles would exhaust libgcrypt's small
 * secmem pool, and the context wipes its own key copies (crypto_ctx_free).
 * Random bytes come from getrandom(2), never GCRY_STRONG_RANDOM per request
 * (measured 30x slower for no gain on a modern kernel).
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <gcrypt.h>

#include "core/fastauth.h"
#include "core/xmalloc.h"
#include "crypto/crypto.h"

/* Oldest libgcrypt with the GCM and MAC APIs as we use them. */
#define CRYPTO_GCRYPT_MIN	"1.8.0"
/*
 * HMAC keys up to the SHA-256 block size are cached on the handle; a longer
 * key is hashed by HMAC anyway and is rare enough to set every time.
 */
#define CRYPTO_MACKEY_CACHE	64

struct crypto_ctx {
	gcry_cipher_hd_t aead;			/* AES-256-GCM, open for the ctx's life */
	gcry_mac_hd_t	 mac;			/* HMAC-SHA256, open for the ctx's life */
	uint8_t		 aeadkey[CRYPTO_KEYLEN];/* key set on aead, valid if aeadkeyset */
	int		 aeadkeyset;
	uint8_t		 mackey[CRYPTO_MACKEY_CACHE];	/* key set on mac ... */
	size_t		 mackeylen;		/* ... its length; 0 = nothing cached */
};

static pthread_once_t	 crypto_once = PTHREAD_ONCE_INIT;
static const char	*crypto_init_error;	/* set once by crypto_init_once */

/*
 * Nonces and jtis are public, so they may come from a per-thread pool of
 * getrandom output: one syscall per CRYPTO_POOL bytes instead of one per
 * value (the syscall was half of a token seal). Served bytes are wiped. A
 * fork copies the pool into the child, so a fork generation, bumped in the
 * child by pthread_atfork, makes a copied pool unusable. Keys and secrets
 * never come from the pool: crypto_random reads getrandom directly.
 */
#define CRYPTO_POOL 512
static __thread uint8_t	 crypto_pool[CRYPTO_POOL];
static __thread size_t	 crypto_pool_left;	/* unserved bytes at the end */
static __thread unsigned crypto_pool_gen;	/* fork generation it was filled in */
static atomic_uint	 crypto_fork_gen = 1;

static void
crypto_atfork_child(void)
{
	atomic_fetch_add(&crypto_fork_gen, 1);
}

static void
crypto_init_once(void)
{
	static char version_error[128];

	if (gcry_check_version(CRYPTO_GCRYPT_MIN) == NULL) {
		snprintf(version_error, sizeof version_error,
		    "libgcrypt %s is older than %s", gcry_check_version(NULL),
		    CRYPTO_GCRYPT_MIN);
		crypto_init_error = version_error;
		return;
	}
	/*
	 * Another library in the process may have finished initialisation
	 * already; settings can no longer change then, and need not.
	 */
	if (gcry_control(GCRYCTL_INITIALIZATION_FINISHED_P))
		return;
	gcry_control(GCRYCTL_DISABLE_SECMEM, 0);
	gcry_control(GCRYCTL_INITIALIZATION_FINISHED, 0);
}

static void
crypto_init_fork(void)
{
	pthread_atfork(NULL, NULL, crypto_atfork_child);
}

int
crypto_nonce(void *buf, size_t n)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	unsigned gen;

	pthread_once(&once, crypto_init_fork);
	if (n > CRYPTO_POOL / 4)
		return crypto_random(buf, n);
	gen = atomic_load_explicit(&crypto_fork_gen, memory_order_relaxed);
	if (crypto_pool_gen != gen) {
		crypto_wipe(crypto_pool, sizeof crypto_pool);
		crypto_pool_left = 0;
		crypto_pool_gen = gen;
	}
	if (crypto_pool_left < n) {
		if (crypto_random(crypto_pool, sizeof crypto_pool) != FA_OK)
			return FA_ERR;
		crypto_pool_left = sizeof crypto_pool;
	}
	memcpy(buf, crypto_pool + CRYPTO_POOL - crypto_pool_left, n);
	crypto_wipe(crypto_pool + CRYPTO_POOL - crypto_pool_left, n);
	crypto_pool_left -= n;
	return FA_OK;
}

int
crypto_init(char **cause)
{
	pthread_once(&crypto_once, crypto_init_once);
	if (crypto_init_error != NULL) {
		if (cause != NULL)
			*cause = xasprintf("crypto: %s", crypto_init_error);
		return FA_ERR;
	}
	return FA_OK;
}

static void __attribute__((noreturn))
crypto_fatal(const char *what, gcry_error_t error)
{
	fprintf(stderr, "fastauth: crypto: %s: %s\n", what, gcry_strerror(error));
	abort();
}

struct crypto_ctx *
crypto_ctx_new(void)
{
	struct crypto_ctx	*ctx;
	gcry_error_t		 error;
	char			*cause = NULL;

	/* Opening a handle before initialisation makes libgcrypt complain. */
	if (crypto_init(&cause) != FA_OK) {
		fprintf(stderr, "fastauth: %s\n", cause);
		abort();
	}
	ctx = xcalloc(1, sizeof *ctx);
	error = gcry_cipher_open(&ctx->aead, GCRY_CIPHER_AES256,
	    GCRY_CIPHER_MODE_GCM, 0);
	if (error != 0)
		crypto_fatal("gcry_cipher_open", error);
	error = gcry_mac_open(&ctx->mac, GCRY_MAC_HMAC_SHA256, 0, NULL);
	if (error != 0)
		crypto_fatal("gcry_mac_open", error);
	return ctx;
}

void
crypto_ctx_free(struct crypto_ctx *ctx)
{
	if (ctx == NULL)
		return;
	/* gcry_*_close wipe the key schedules; we wipe our copies. */
	gcry_cipher_close(ctx->aead);
	gcry_mac_close(ctx->mac);
	crypto_wipe(ctx, sizeof *ctx);
	free(ctx);
}

/* Set key on the AEAD handle unless it is already the one set. */
static int
crypto_aead_key(struct crypto_ctx *ctx, const uint8_t key[CRYPTO_KEYLEN])
{
	if (ctx->aeadkeyset && crypto_memeq(ctx->aeadkey, key, CRYPTO_KEYLEN))
		return FA_OK;
	ctx->aeadkeyset = 0;
	if (gcry_cipher_setkey(ctx->aead, key, CRYPTO_KEYLEN) != 0)
		return FA_ERR;
	memcpy(ctx->aeadkey, key, CRYPTO_KEYLEN);
	ctx->aeadkeyset = 1;
	return FA_OK;
}

/*
 * Start a GCM message: nonce and AAD. setiv also resets the handle's tag and
 * length state left by the previous message, successful or not.
 */
static int
crypto_aead_start(struct crypto_ctx *ctx, const uint8_t key[CRYPTO_KEYLEN],
    const uint8_t nonce[CRYPTO_NONCELEN], const void *aad, size_t aadlen)
{
	if (crypto_aead_key(ctx, key) != FA_OK)
		return FA_ERR;
	if (gcry_cipher_setiv(ctx->aead, nonce, CRYPTO_NONCELEN) != 0)
		return FA_ERR;
	/* libgcrypt accepts an empty AAD, but NULL with 0 is not worth a call. */
	if (aadlen != 0 && gcry_cipher_authenticate(ctx->aead, aad, aadlen) != 0)
		return FA_ERR;
	return FA_OK;
}

int
crypto_seal(struct crypto_ctx *ctx, const uint8_t key[CRYPTO_KEYLEN],
    const void *aad, size_t aadlen, const void *pt, size_t n, uint8_t *out)
{
	uint8_t	*nonce = out, *ct = out + CRYPTO_NONCELEN;

	if (crypto_nonce(nonce, CRYPTO_NONCELEN) != FA_OK)
		return FA_ERR;
	if (crypto_aead_start(ctx, key, nonce, aad, aadlen) != FA_OK)
		return FA_ERR;
	if (n != 0 && gcry_cipher_encrypt(ctx->aead, ct, n, pt, n) != 0)
		goto fail;
	if (gcry_cipher_gettag(ctx->aead, ct + n, CRYPTO_TAGLEN) != 0)
		goto fail;
	return FA_OK;

fail:
	/* Never leave a partial ciphertext a careless caller might send. */
	crypto_wipe(out, n + CRYPTO_OVERHEAD);
	return FA_ERR;
}

int
crypto_open(struct crypto_ctx *ctx, const uint8_t key[CRYPTO_KEYLEN],
    const void *aad, size_t aadlen, const uint8_t *in, size_t inlen, void *pt)
{
	const uint8_t	*ct = in + CRYPTO_NONCELEN;
	size_t		 n;

	if (inlen < CRYPTO_OVERHEAD)
		return FA_ERR;
	n = inlen - CRYPTO_OVERHEAD;
	if (crypto_aead_start(ctx, key, in, aad, aadlen) != FA_OK)
		goto fail;
	if (n != 0 && gcry_cipher_decrypt(ctx->aead, pt, n, ct, n) != 0)
		goto fail;
	/* checktag compares in constant time. */
	if (gcry_cipher_checktag(ctx->aead, ct + n, CRYPTO_TAGLEN) != 0)
		goto fail;
	return FA_OK;

fail:
	/* Unauthenticated plaintext must not reach the caller. */
	crypto_wipe(pt, n);
	return FA_ERR;
}

int
crypto_hmac_sha256(struct crypto_ctx *ctx, const void *key, size_t keylen,
    const void *msg, size_t n, uint8_t out[CRYPTO_HASHLEN])
{
	size_t	outlen = CRYPTO_HASHLEN;

	if (keylen != 0 && keylen == ctx->mackeylen &&
	    crypto_memeq(ctx->mackey, key, keylen)) {
		/* Same key: back to the keyed initial state, no key schedule. */
		if (gcry_mac_reset(ctx->mac) != 0)
			return FA_ERR;
	} else {
		ctx->mackeylen = 0;
		if (gcry_mac_setkey(ctx->mac, key, keylen) != 0)
			return FA_ERR;
		if (keylen <= CRYPTO_MACKEY_CACHE) {
			memcpy(ctx->mackey, key, keylen);
			ctx->mackeylen = keylen;
		}
	}
	if (n != 0 && gcry_mac_write(ctx->mac, msg, n) != 0)
		return FA_ERR;
	if (gcry_mac_read(ctx->mac, out, &outlen) != 0 || outlen != CRYPTO_HASHLEN)
		return FA_ERR;
	return FA_OK;
}

void
crypto_sha256(const void *data, size_t n, uint8_t out[CRYPTO_HASHLEN])
{
	/* No handle to keep: gcry_md_hash_buffer is one call on the stack. */
	gcry_md_hash_buffer(GCRY_MD_SHA256, out, data, n);
}

int
crypto_random(void *buf, size_t n)
{
	uint8_t	*p = buf;
	ssize_t	 got;

	/* getrandom may return short for large requests or when interrupted. */
	while (n > 0) {
		got = getrandom(p, n, 0);
		if (got < 0) {
			if (errno == EINTR)
				continue;
			return FA_ERR;
		}
		p += got;
		n -= (size_t)got;
	}
	return FA_OK;
}

int
crypto_memeq(const void *a, const void *b, size_t n)
{
	const uint8_t	*pa = a, *pb = b;
	uint64_t	 diff = 0, x, y;
	size_t		 i = 0;

	/*
	 * Eight bytes at a time (every token open compares its key with the
	 * handle's: a volatile byte loop was 8% of a batch's time). The empty
	 * asm makes diff opaque on every round, so the compiler cannot turn
	 * the loop into one that stops at the first difference.
	 */
	for (; n - i >= 8; i += 8) {
		memcpy(&x, pa + i, 8);
		memcpy(&y, pb + i, 8);
		diff |= x ^ y;
		__asm__ volatile("" : "+r"(diff));
	}
	for (; i < n; i++) {
		diff |= (uint64_t)(pa[i] ^ pb[i]);
		__asm__ volatile("" : "+r"(diff));
	}
	return diff == 0;
}

void
crypto_wipe(void *p, size_t n)
{
	if (p != NULL)
		explicit_bzero(p, n);
}

void
crypto_hex(const uint8_t *in, size_t n, char *out)
{
	static const char	 digits[] = "0123456789abcdef";
	size_t			 i;

	for (i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 0xf];
	}
	out[2 * n] = '\0';
}

int
crypto_unhex(const char *s, size_t len, uint8_t *out, size_t n)
{
	size_t i;
	int hi, lo;

	if (len != 2 * n)
		return FA_ERR;
	for (i = 0; i < n; i++) {
		hi = s[2 * i];
		lo = s[2 * i + 1];
		hi = hi >= '0' && hi <= '9' ? hi - '0' : hi >= 'a' && hi <= 'f' ? hi - 'a' + 10 : -1;
		lo = lo >= '0' && lo <= '9' ? lo - '0' : lo >= 'a' && lo <= 'f' ? lo - 'a' + 10 : -1;
		if (hi < 0 || lo < 0)
			return FA_ERR;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return FA_OK;
}

const char *
crypto_library_version(void)
{
	return gcry_check_version(NULL);
}

char *
crypto_hw_features(void)
{
	char *text = NULL, *line, *save = NULL, *out;
	size_t len = 0, n;
	FILE *f;

	/* libgcrypt prints "hwflist:intel-aesni:intel-pclmul:...:" among others. */
	if ((f = open_memstream(&text, &len)) == NULL)
		return xstrdup("");
	gcry_control(GCRYCTL_PRINT_CONFIG, f);
	fclose(f);
	out = xcalloc(1, len + 1);
	for (line = strtok_r(text, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		if (strncmp(line, "hwflist:", 8) != 0)
			continue;
		snprintf(out, len + 1, "%s", line + 8);
		break;
	}
	free(text);
	/* ':' separated with a trailing ':' -> ',' separated. */
	n = strlen(out);
	if (n > 0 && out[n - 1] == ':')
		out[--n] = '\0';
	for (line = out; *line != '\0'; line++)
		if (*line == ':')
			*line = ',';
	return out;
}
