/*
 * bench_callgrind.c -- the fixed workload whose instruction counts make check
 * compares with bench/callgrind-baseline.json (bench/callgrind.sh runs it
 * under valgrind --tool=callgrind). Wall time on a shared 2-core machine
 * swings by a factor of two; instructions executed by the same binary on the
 * same input repeat exactly, so a regression of a few percent shows.
 *
 * Each operation runs BENCH_WARM times first (one-time work: libgcrypt's
 * lazy set-up, the first insert of a limiter key, malloc growing its arena),
 * then the counters are zeroed (CALLGRIND_ZERO_STATS), it runs BENCH_N
 * times, and the counts are dumped under its name (CALLGRIND_DUMP_STATS_AT
 * "op NAME N"). Inputs are fixed: key, claims, limiter key and clock, cache
 * key and value, form body, batch body. Only the GCM nonce and the shm hash
 * key are random, and neither changes the path taken.
 *
 *  seal            token_seal of a client_credentials claim set
 *  open            token_open of such a token
 *  raw_gcm_open    libgcrypt AES-256-GCM open of the same plaintext length,
 *                  handle and key kept (the ceiling of open; reported, and
 *                  compared like the others since it is what open is built on)
 *  limiter_check   ratelimit_check of one client key, always allowed
 *  cache_get       cache_get of a present client record (130 bytes)
 *  form_parse      form_parse + form_free of a token request body
 *  batch_parse     tokenlist_parse of a 10-token batch body, per token
 *  batch_validate  per token of that batch, what the endpoint does in
 *                  process: parse, key id, open, expiry, L1 revocation
 *                  lookup, its RFC 7662 object written (bench_token's
 *                  batch_validate; Redis and FastCGI aside)
 *
 * Run natively it does the same work and prints only the build line.
 * Prints {"build": "..."}: compiler, flags and library versions, so that
 * counts are compared only with a baseline from the same kind of build.
 *
 * usage: bench_callgrind
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <gcrypt.h>
#include <gnu/libc-version.h>
#ifdef HAVE_VALGRIND_CALLGRIND_H
#include <valgrind/callgrind.h>
#define BENCH_HAVE_CALLGRIND 1
#else
/* No client requests: it runs, but nothing can be attributed (the check says so). */
#define CALLGRIND_ZERO_STATS
#define CALLGRIND_DUMP_STATS_AT(s) ((void)(s))
#define BENCH_HAVE_CALLGRIND 0
#endif

#include "core/buf.h"
#include "core/fastauth.h"
#include "crypto/crypto.h"
#include "crypto/token.h"
#include "endpoints/introspection.h"
#include "http/form.h"
#include "http/tokenlist.h"
#include "shm/cache.h"
#include "shm/ratelimit.h"
#include "shm/shm.h"

#ifndef BENCH_BUILD_FLAGS
#define BENCH_BUILD_FLAGS "unknown"
#endif

#define BENCH_N		1000	/* measured calls per operation */
#define BENCH_WARM	16	/* unmeasured calls before */
#define BENCH_BATCH	10	/* tokens in the batch body */

struct bench {
	struct crypto_ctx	*ctx;
	gcry_cipher_hd_t	 hd;
	uint8_t			 key[CRYPTO_KEYLEN];
	struct token_claims	 claims;
	char			 text[TOKEN_MAX_LEN + 1];
	int			 textlen;
	uint8_t			 sealed[128];	/* raw: nonce | ct | tag */
	size_t			 ptlen;
	struct shm		*seg;
	struct ratelimit_policy	 pol;
	uint64_t		 now;		/* fixed clock, us */
	char			 body[512];	/* a token request */
	struct buf		 batch;		/* the batch body */
	char			*work;
	struct buf		 out;
	volatile unsigned	 sink;
};

static char	bench_inst[64];

static void __attribute__((noreturn))
bench_fail(const char *what)
{
	char *cause = NULL;

	fprintf(stderr, "bench_callgrind: %s failed\n", what);
	if (bench_inst[0] != '\0')
		shm_unlink_segment(bench_inst, &cause);
	exit(1);
}

static void
op_seal(struct bench *b)
{
	if (token_seal(b->ctx, 1, b->key, &b->claims, b->text, sizeof b->text) <= 0)
		bench_fail("token_seal");
}

static void
op_open(struct bench *b)
{
	struct token_claims c;

	if (token_open(b->ctx, b->key, b->text, (size_t)b->textlen, &c) != FA_OK)
		bench_fail("token_open");
	b->sink += (unsigned)c.exp;
}

static void
op_raw_gcm_open(struct bench *b)
{
	static const uint8_t aad[7] = { 'f', 'a', '1', 0, 0, 0, 1 };
	uint8_t pt[128], *ct = b->sealed + CRYPTO_NONCELEN;

	if (gcry_cipher_setiv(b->hd, b->sealed, CRYPTO_NONCELEN) != 0 ||
	    gcry_cipher_authenticate(b->hd, aad, sizeof aad) != 0 ||
	    gcry_cipher_decrypt(b->hd, pt, b->ptlen, ct, b->ptlen) != 0 ||
	    gcry_cipher_checktag(b->hd, ct + b->ptlen, CRYPTO_TAGLEN) != 0)
		bench_fail("raw open");
	b->sink += pt[0];
}

static void
op_limiter(struct bench *b)
{
	struct ratelimit_result r;

	/* A millisecond apart at a million a second: always allowed. */
	b->now += 1000;
	if (ratelimit_check(shm_ratelimit(b->seg), &b->pol, "client-0000042", 14,
	    b->now, &r) != FA_OK)
		bench_fail("ratelimit_check");
	b->sink += (unsigned)r.remaining;
}

static void
op_cache_get(struct bench *b)
{
	uint8_t v[256];
	size_t len;

	if (cache_get(shm_cache(b->seg), CACHE_CLIENT, "client-0000042", 14, b->now, v,
	    sizeof v, &len) != FA_OK)
		bench_fail("cache_get");
	b->sink += (unsigned)len;
}

static void
op_form(struct bench *b)
{
	enum form_error err;
	struct form *f = form_parse(b->body, strlen(b->body), 32, &err, NULL);

	if (f == NULL || form_get(f, "grant_type") == NULL)
		bench_fail("form_parse");
	form_free(f);
}

static void
op_batch_parse(struct bench *b)
{
	struct tokenlist_item items[BENCH_BATCH];
	enum tokenlist_error err;
	int n;

	memcpy(b->work, b->batch.data, b->batch.len);
	if (tokenlist_parse(b->work, b->batch.len, items, BENCH_BATCH, &n, &err,
	    NULL) != FA_OK || n != BENCH_BATCH)
		bench_fail("tokenlist_parse");
}

static void
op_batch_validate(struct bench *b)
{
	struct tokenlist_item items[BENCH_BATCH];
	enum tokenlist_error err;
	struct token_claims c;
	uint8_t v[32];
	uint32_t kid;
	size_t vlen;
	int n, i;

	memcpy(b->work, b->batch.data, b->batch.len);
	if (tokenlist_parse(b->work, b->batch.len, items, BENCH_BATCH, &n, &err,
	    NULL) != FA_OK || n != BENCH_BATCH)
		bench_fail("tokenlist_parse");
	buf_reset(&b->out);
	buf_putc(&b->out, '[');
	for (i = 0; i < n; i++) {
		if (token_peek_kid(items[i].s, items[i].len, &kid) != FA_OK ||
		    token_open(b->ctx, b->key, items[i].s, items[i].len, &c) != FA_OK ||
		    c.exp <= 1800000001)
			bench_fail("batch open");
		if (cache_get(shm_cache(b->seg), CACHE_REVOCATION, c.jti, TOKEN_JTI_LEN,
		    b->now, v, sizeof v, &vlen) != FA_OK)
			bench_fail("batch cache_get");
		if (i > 0)
			buf_putc(&b->out, ',');
		introspection_active_json(&b->out, &c, "https://auth.example.com");
	}
	buf_putc(&b->out, ']');
	b->sink += (unsigned)b->out.len;
}

static void
bench_measure(struct bench *b, const char *name, void (*op)(struct bench *), int per)
{
	char label[64];
	int i;

	for (i = 0; i < BENCH_WARM; i++)
		op(b);
	/* "per" operations per call: the dump names how many ran in all. */
	snprintf(label, sizeof label, "op %s %d", name, BENCH_N * per);
	CALLGRIND_ZERO_STATS;
	for (i = 0; i < BENCH_N; i++)
		op(b);
	CALLGRIND_DUMP_STATS_AT(label);
}

int
main(void)
{
	static struct bench b;
	struct shm_params p;
	char *cause = NULL, secret[44];
	uint8_t value[130];
	int i;

	if (crypto_init(&cause) != FA_OK) {
		fprintf(stderr, "bench_callgrind: %s\n", cause);
		return 1;
	}
	b.ctx = crypto_ctx_new();
	for (i = 0; i < CRYPTO_KEYLEN; i++)
		b.key[i] = (uint8_t)(i * 7 + 3);
	for (i = 0; i < TOKEN_JTI_LEN; i++)
		b.claims.jti[i] = (uint8_t)(i * 11);
	b.claims.iat = 1800000000;
	b.claims.exp = 1800003600;
	strcpy(b.claims.client, "bench-client");
	strcpy(b.claims.scope, "read write");
	if ((b.textlen = token_seal(b.ctx, 1, b.key, &b.claims, b.text, sizeof b.text)) <= 0)
		bench_fail("token_seal");
	b.ptlen = TOKEN_JTI_LEN + 8 + 8 + 1 + strlen(b.claims.client) + 2 + 2 +
	    strlen(b.claims.scope);
	memset(b.sealed, 0x5a, sizeof b.sealed);
	if (gcry_cipher_open(&b.hd, GCRY_CIPHER_AES256, GCRY_CIPHER_MODE_GCM, 0) != 0 ||
	    gcry_cipher_setkey(b.hd, b.key, sizeof b.key) != 0 ||
	    gcry_cipher_setiv(b.hd, b.sealed, CRYPTO_NONCELEN) != 0 ||
	    gcry_cipher_authenticate(b.hd, "fa1\0\0\0\1", 7) != 0 ||
	    gcry_cipher_encrypt(b.hd, b.sealed + CRYPTO_NONCELEN, b.ptlen, NULL, 0) != 0 ||
	    gcry_cipher_gettag(b.hd, b.sealed + CRYPTO_NONCELEN + b.ptlen, CRYPTO_TAGLEN) != 0)
		bench_fail("raw seal");

	shm_params_default(&p);
	snprintf(bench_inst, sizeof bench_inst, "bench-cg-%d", (int)getpid());
	if (shm_open_segment(bench_inst, &p, &b.seg, &cause) != FA_OK) {
		fprintf(stderr, "bench_callgrind: %s\n", cause);
		bench_fail("shm_open_segment");
	}
	if (ratelimit_policy_init(&b.pol, 0, 1000000, 1000000, 1000000, &cause) != FA_OK)
		bench_fail("ratelimit_policy_init");
	b.now = 1000000000;
	memset(value, 'C', sizeof value);
	if (cache_put(shm_cache(b.seg), CACHE_CLIENT, "client-0000042", 14, value,
	    sizeof value, 3600ULL * 1000000, b.now, NULL) != FA_OK ||
	    cache_put(shm_cache(b.seg), CACHE_REVOCATION, b.claims.jti, TOKEN_JTI_LEN,
	    "V\1\0\0\0\0\0\0\0", 9, 3600ULL * 1000000, b.now, NULL) != FA_OK)
		bench_fail("cache_put");
	buf_init(&b.out);

	memset(secret, 'S', sizeof secret - 1);
	secret[sizeof secret - 1] = '\0';
	snprintf(b.body, sizeof b.body, "grant_type=client_credentials&scope=read%%20write"
	    "&client_id=bench-client&client_secret=%s", secret);
	buf_init(&b.batch);
	buf_putc(&b.batch, '[');
	for (i = 0; i < BENCH_BATCH; i++)
		buf_printf(&b.batch, "%s\"%s\"", i > 0 ? ", " : "", b.text);
	buf_putc(&b.batch, ']');
	if ((b.work = malloc(b.batch.len)) == NULL)
		bench_fail("malloc");

	bench_measure(&b, "seal", op_seal, 1);
	bench_measure(&b, "open", op_open, 1);
	bench_measure(&b, "raw_gcm_open", op_raw_gcm_open, 1);
	bench_measure(&b, "limiter_check", op_limiter, 1);
	bench_measure(&b, "cache_get", op_cache_get, 1);
	bench_measure(&b, "form_parse", op_form, 1);
	bench_measure(&b, "batch_parse", op_batch_parse, BENCH_BATCH);
	bench_measure(&b, "batch_validate", op_batch_validate, BENCH_BATCH);

	printf("{\"build\": \"cc %s; flags %s; libgcrypt %s; glibc %s\", "
	    "\"client_requests\": %s}\n",
	    __VERSION__, BENCH_BUILD_FLAGS, gcry_check_version(NULL),
	    gnu_get_libc_version(), BENCH_HAVE_CALLGRIND ? "true" : "false");

	gcry_cipher_close(b.hd);
	crypto_ctx_free(b.ctx);
	shm_close(b.seg);
	shm_unlink_segment(bench_inst, &cause);
	buf_free(&b.batch);
	buf_free(&b.out);
	free(b.work);
	return 0;
}
