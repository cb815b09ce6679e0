/*
 * bench_token.c -- how close token_seal and token_open come to raw libgcrypt
 * AES-256-GCM on the same plaintext, single thread, one JSON object on stdout.
 *
 * The raw loops reuse one handle and one key and take the nonce from a counter:
 * that is the ceiling. The token loops add what a real token costs: a
 * getrandom(2) nonce, claim encoding and base64url. getrandom alone is
 * measured too, so the gap can be read off. Claims are a typical
 * client_credentials set (client "bench-client", no subject, scope
 * "read write").
 *
 * usage: bench_token [--seconds N]   (per measurement, default 1)
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <gcrypt.h>

#include "core/fastauth.h"
#include "crypto/crypto.h"
#include "crypto/token.h"

/* Iterations between clock reads: keeps clock_gettime out of the figure. */
#define BENCH_BATCH	1024

struct bench {
	struct crypto_ctx	*ctx;
	gcry_cipher_hd_t	 hd;		/* raw GCM handle, key set once */
	uint8_t			 key[CRYPTO_KEYLEN];
	uint8_t			 aad[7];
	uint8_t			 pt[64];
	size_t			 ptlen;		/* bytes of pt in use */
	uint8_t			 sealed[64 + CRYPTO_OVERHEAD];
	uint64_t		 counter;	/* raw nonce counter */
	struct token_claims	 claims;
	char			 text[TOKEN_MAX_LEN + 1];
	int			 textlen;
	volatile unsigned	 sink;
};

static void __attribute__((noreturn))
bench_fail(const char *what)
{
	fprintf(stderr, "bench_token: %s failed\n", what);
	exit(1);
}

static double
bench_now(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Call fn for about seconds; operations per second. */
static double
bench_run(double seconds, void (*fn)(struct bench *), struct bench *b)
{
	double		start = bench_now(), elapsed;
	uint64_t	n = 0;
	int		i;

	do {
		for (i = 0; i < BENCH_BATCH; i++)
			fn(b);
		n += BENCH_BATCH;
		elapsed = bench_now() - start;
	} while (elapsed < seconds);
	return (double)n / elapsed;
}

static void
bench_raw_nonce(struct bench *b, uint8_t nonce[CRYPTO_NONCELEN])
{
	memset(nonce, 0, CRYPTO_NONCELEN);
	memcpy(nonce, &b->counter, sizeof b->counter);
	b->counter++;
}

static void
bench_raw_seal(struct bench *b)
{
	uint8_t	*nonce = b->sealed, *ct = b->sealed + CRYPTO_NONCELEN;

	bench_raw_nonce(b, nonce);
	if (gcry_cipher_setiv(b->hd, nonce, CRYPTO_NONCELEN) != 0 ||
	    gcry_cipher_authenticate(b->hd, b->aad, sizeof b->aad) != 0 ||
	    gcry_cipher_encrypt(b->hd, ct, b->ptlen, b->pt, b->ptlen) != 0 ||
	    gcry_cipher_gettag(b->hd, ct + b->ptlen, CRYPTO_TAGLEN) != 0)
		bench_fail("raw seal");
}

static void
bench_raw_open(struct bench *b)
{
	uint8_t	*ct = b->sealed + CRYPTO_NONCELEN, pt[64];

	if (gcry_cipher_setiv(b->hd, b->sealed, CRYPTO_NONCELEN) != 0 ||
	    gcry_cipher_authenticate(b->hd, b->aad, sizeof b->aad) != 0 ||
	    gcry_cipher_decrypt(b->hd, pt, b->ptlen, ct, b->ptlen) != 0 ||
	    gcry_cipher_checktag(b->hd, ct + b->ptlen, CRYPTO_TAGLEN) != 0)
		bench_fail("raw open");
	b->sink += pt[0];
}

static void
bench_random(struct bench *b)
{
	uint8_t	nonce[CRYPTO_NONCELEN];

	if (crypto_random(nonce, sizeof nonce) != FA_OK)
		bench_fail("crypto_random");
	b->sink += nonce[0];
}

static void
bench_token_seal(struct bench *b)
{
	if ((b->textlen = token_seal(b->ctx, 1, b->key, &b->claims, b->text,
	    sizeof b->text)) <= 0)
		bench_fail("token_seal");
}

static void
bench_token_open(struct bench *b)
{
	struct token_claims	c;

	if (token_open(b->ctx, b->key, b->text, (size_t)b->textlen, &c) != FA_OK)
		bench_fail("token_open");
	b->sink += (unsigned)c.exp;
}

int
main(int argc, char **argv)
{
	static struct bench	 b;
	double			 seconds = 1, raw_seal, raw_open, rnd, tseal, topen;
	char			*end, *cause = NULL;
	int			 i;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc) {
			seconds = strtod(argv[++i], &end);
			if (*end != '\0' || seconds <= 0)
				goto usage;
		} else
			goto usage;
	}
	if (crypto_init(&cause) != FA_OK) {
		fprintf(stderr, "bench_token: %s\n", cause);
		free(cause);
		return 1;
	}

	b.ctx = crypto_ctx_new();
	for (i = 0; i < CRYPTO_KEYLEN; i++)
		b.key[i] = (uint8_t)(i * 7);
	token_new_jti(b.claims.jti);
	b.claims.iat = (uint64_t)time(NULL);
	b.claims.exp = b.claims.iat + 3600;
	strcpy(b.claims.client, "bench-client");
	strcpy(b.claims.scope, "read write");
	/* The raw plaintext is as long as these claims encode to. */
	b.ptlen = TOKEN_JTI_LEN + 8 + 8 + 1 + strlen(b.claims.client) + 2 +
	    strlen(b.claims.subject) + 2 + strlen(b.claims.scope);
	memset(b.pt, 0x5a, sizeof b.pt);
	memcpy(b.aad, "fa1\0\0\0\1", sizeof b.aad);
	if (gcry_cipher_open(&b.hd, GCRY_CIPHER_AES256, GCRY_CIPHER_MODE_GCM,
	    0) != 0 || gcry_cipher_setkey(b.hd, b.key, sizeof b.key) != 0)
		bench_fail("gcry_cipher_open");

	raw_seal = bench_run(seconds, bench_raw_seal, &b);
	raw_open = bench_run(seconds, bench_raw_open, &b);
	rnd = bench_run(seconds, bench_random, &b);
	tseal = bench_run(seconds, bench_token_seal, &b);
	topen = bench_run(seconds, bench_token_open, &b);

	printf("{\"seconds\": %g, \"plaintext_len\": %zu, \"token_len\": %d, "
	    "\"raw_gcm_seal_per_s\": %.0f, \"raw_gcm_open_per_s\": %.0f, "
	    "\"getrandom12_per_s\": %.0f, "
	    "\"token_seal_per_s\": %.0f, \"token_open_per_s\": %.0f, "
	    "\"seal_ratio\": %.3f, \"open_ratio\": %.3f}\n",
	    seconds, b.ptlen, b.textlen, raw_seal, raw_open, rnd, tseal, topen,
	    tseal / raw_seal, topen / raw_open);

	gcry_cipher_close(b.hd);
	crypto_ctx_free(b.ctx);
	return 0;

usage:
	fprintf(stderr, "usage: bench_token [--seconds N]\n");
	return 2;
}
