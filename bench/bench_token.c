/*
 * bench_token.c -- how close token_seal, token_open, batch validation and the
 * client-secret check come to raw libgcrypt on the same input, single thread
 * (one core), one JSON object on stdout.
 *
 * Every rate is per second of this thread's CPU time (one core), not of wall
 * time; "clock" in the output says so.
 *
 * The raw loops reuse one handle and one key and take the nonce from a counter:
 * that is the ceiling. Each figure and its ceiling run in alternating slices
 * of 50 ms (bench_pair), so that a load elsewhere on the machine weighs on
 * both alike. The token loops add what a real token costs: a
 * getrandom(2) nonce, claim encoding and base64url. getrandom alone is
 * measured too, so the gap can be read off. Claims are a typical
 * client_credentials set (client "bench-client", no subject, scope
 * "read write").
 *
 * Batch validation is the in-process work of POST .../introspect/batch per
 * token, Redis and FastCGI aside: a JSON body of BENCH_NBATCH distinct tokens
 * is copied (the parser decodes in place) and parsed (tokenlist), and each
 * token has its key id read, is opened, has its expiry checked, its jti looked
 * up in the shared-memory L1 cache (a "not revoked" entry, as the cache holds
 * while the mirror is trusted) and its RFC 7662 object written. Its ceiling
 * is the raw GCM open of the same plaintext length; batch_open is the token
 * loop without the cache and the JSON, to show where the time goes.
 *
 * The client-secret check is HMAC-SHA256(pepper, secret) of a 43-character
 * secret through crypto_hmac_sha256 (the handle and key kept per thread, as
 * in the server) and a constant-time compare; its ceiling is gcry_mac with
 * the key set once (reset, write, read).
 *
 * With --loop NAME it runs one loop alone for the given time and prints how
 * many operations it did, for a profiler or a cycle counter:
 * "perf stat -e cycles:u,instructions:u bench_token --loop batch_validate"
 * gives cycles per token, which a machine shared with other work disturbs
 * far less than it does tokens per second. NAME: raw_open, open, raw_seal,
 * seal, batch_open, batch_validate, raw_hmac, secret_check.
 *
 * usage: bench_token [--seconds N] [--loop NAME]   (per measurement, default 1)
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <gcrypt.h>

#include <unistd.h>

#include "core/buf.h"
#include "core/fastauth.h"
#include "crypto/crypto.h"
#include "crypto/token.h"
#include "endpoints/introspection.h"
#include "http/tokenlist.h"
#include "shm/cache.h"
#include "shm/shm.h"

#define BENCH_NBATCH	100	/* tokens per batch (introspect_batch_max default) */
#define BENCH_SECRET	"0123456789abcdefghijklmnopqrstuvwxyzABCDEFG"	/* 43 chars, as generated */

/* Iterations between clock reads: keeps clock_gettime out of the figure. */
#define BENCH_BATCH	1024

static char	bench_inst[64];	/* segment to unlink on failure */

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
	/* batch validation */
	struct buf		 body;		/* the request body: a JSON array */
	char			*work;		/* what the parser decodes in place */
	struct tokenlist_item	 items[BENCH_NBATCH];
	struct shm		*seg;
	char			 inst[64];
	struct buf		 out;		/* the answer being written */
	/* client-secret check */
	gcry_mac_hd_t		 mac;		/* raw HMAC handle, key set once */
	uint8_t			 pepper[CRYPTO_HASHLEN];
	uint8_t			 stored[CRYPTO_HASHLEN];
};

static void __attribute__((noreturn))
bench_fail(const char *what)
{
	char	*cause = NULL;

	fprintf(stderr, "bench_token: %s failed\n", what);
	if (bench_inst[0] != '\0')
		shm_unlink_segment(bench_inst, &cause);
	exit(1);
}

/*
 * Seconds of CPU time this thread has used: rates are per core-second, and a
 * machine busy with other work (which takes the core away now and then)
 * changes them much less than it changes rates per wall-clock second.
 */
static double
bench_now(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
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

/* Raw HMAC-SHA256 with the key set once: the client-secret check's ceiling. */
static void
bench_raw_hmac(struct bench *b)
{
	uint8_t	out[CRYPTO_HASHLEN];
	size_t	outlen = sizeof out;

	if (gcry_mac_reset(b->mac) != 0 ||
	    gcry_mac_write(b->mac, BENCH_SECRET, sizeof BENCH_SECRET - 1) != 0 ||
	    gcry_mac_read(b->mac, out, &outlen) != 0)
		bench_fail("raw hmac");
	b->sink += out[0];
}

/* What oauth_client_verify does with a presented secret. */
static void
bench_secret_check(struct bench *b)
{
	uint8_t	mac[CRYPTO_HASHLEN];

	if (crypto_hmac_sha256(b->ctx, b->pepper, sizeof b->pepper, BENCH_SECRET,
	    sizeof BENCH_SECRET - 1, mac) != FA_OK ||
	    !crypto_memeq(mac, b->stored, sizeof mac))
		bench_fail("secret check");
	crypto_wipe(mac, sizeof mac);
}

/* Parse the batch body; returns the number of tokens. */
static int
bench_batch_parse(struct bench *b)
{
	enum tokenlist_error err;
	int n;

	memcpy(b->work, b->body.data, b->body.len);
	if (tokenlist_parse(b->work, b->body.len, b->items, BENCH_NBATCH, &n, &err,
	    NULL) != FA_OK || n != BENCH_NBATCH)
		bench_fail("tokenlist_parse");
	return n;
}

/* One batch, open only: parse, key id, open, expiry. */
static void
bench_batch_open(struct bench *b)
{
	struct token_claims c;
	uint32_t kid;
	int i, n = bench_batch_parse(b);

	for (i = 0; i < n; i++) {
		if (token_peek_kid(b->items[i].s, b->items[i].len, &kid) != FA_OK ||
		    token_open(b->ctx, b->key, b->items[i].s, b->items[i].len, &c) != FA_OK ||
		    c.exp <= b->claims.iat)
			bench_fail("batch open");
		b->sink += (unsigned)c.exp;
	}
}

/* One batch as the endpoint validates it: open, L1 revocation, the answer. */
static void
bench_batch_validate(struct bench *b)
{
	struct cache *cache = shm_cache(b->seg);
	struct token_claims c;
	uint8_t v[32];
	uint64_t now = shm_now();
	uint32_t kid;
	size_t vlen;
	int i, n = bench_batch_parse(b);

	buf_reset(&b->out);
	buf_putc(&b->out, '[');
	for (i = 0; i < n; i++) {
		if (token_peek_kid(b->items[i].s, b->items[i].len, &kid) != FA_OK ||
		    token_open(b->ctx, b->key, b->items[i].s, b->items[i].len, &c) != FA_OK ||
		    c.exp <= b->claims.iat)
			bench_fail("batch open");
		if (cache_get(cache, CACHE_REVOCATION, c.jti, TOKEN_JTI_LEN, now, v,
		    sizeof v, &vlen) != FA_OK || vlen != 9 || v[0] != 'V')
			bench_fail("batch cache_get");
		if (i > 0)
			buf_putc(&b->out, ',');
		introspection_active_json(&b->out, &c, "https://auth.example.com");
	}
	buf_putc(&b->out, ']');
	b->sink += (unsigned)b->out.len;
}

/* BENCH_NBATCH distinct tokens in a JSON body, each with a cached "not revoked". */
static void
bench_batch_setup(struct bench *b)
{
	struct shm_params p;
	struct token_claims c = b->claims;
	char text[TOKEN_MAX_LEN + 1], *cause = NULL;
	uint8_t v[9] = { 'V', 1 };
	int i, len;

	shm_params_default(&p);
	snprintf(b->inst, sizeof b->inst, "bench-token-%d", (int)getpid());
	memcpy(bench_inst, b->inst, sizeof bench_inst);
	if (shm_open_segment(b->inst, &p, &b->seg, &cause) != FA_OK) {
		fprintf(stderr, "bench_token: %s\n", cause);
		bench_fail("shm_open_segment");
	}
	buf_init(&b->body);
	buf_init(&b->out);
	buf_putc(&b->body, '[');
	for (i = 0; i < BENCH_NBATCH; i++) {
		token_new_jti(c.jti);
		if ((len = token_seal(b->ctx, 1, b->key, &c, text, sizeof text)) <= 0)
			bench_fail("token_seal (batch)");
		buf_printf(&b->body, "%s\"%s\"", i > 0 ? ", " : "", text);
		if (cache_put(shm_cache(b->seg), CACHE_REVOCATION, c.jti, TOKEN_JTI_LEN,
		    v, sizeof v, 3600ULL * 1000000, shm_now(), NULL) != FA_OK)
			bench_fail("cache_put (batch)");
	}
	buf_putc(&b->body, ']');
	b->work = malloc(b->body.len);
	if (b->work == NULL)
		bench_fail("malloc");
}

/*
 * A figure and its ceiling, measured in alternating slices of BENCH_SLICE s
 * until each has had about seconds: load from elsewhere on the machine (which
 * comes and goes) then falls on both, and their ratio stays meaningful.
 * fn does n operations per call (n tokens for a batch). Rates per second.
 */
#define BENCH_SLICE	0.05
static void
bench_pair(double seconds, void (*ceil)(struct bench *), int nceil,
    void (*fn)(struct bench *), int nfn, struct bench *b, double *ceil_rate,
    double *fn_rate)
{
	double t[2] = { 0, 0 }, start, el;
	uint64_t ops[2] = { 0, 0 };
	void (*f[2])(struct bench *) = { ceil, fn };
	int n[2] = { nceil, nfn }, k, i;

	while (t[0] < seconds || t[1] < seconds) {
		for (k = 0; k < 2; k++) {
			start = bench_now();
			do {
				for (i = 0; i < (n[k] > 1 ? 1 : 64); i++)
					f[k](b);
				ops[k] += (uint64_t)(n[k] > 1 ? n[k] : 64);
				el = bench_now() - start;
			} while (el < BENCH_SLICE);
			t[k] += el;
		}
	}
	*ceil_rate = (double)ops[0] / t[0];
	*fn_rate = (double)ops[1] / t[1];
}

int
main(int argc, char **argv)
{
	static struct bench	 b;
	double			 seconds = 1, raw_seal, raw_open, rnd, tseal, topen;
	double			 raw_hmac, check, bopen, bvalid, raw_open_b, raw_open_v;
	static const struct {
		const char	*name;
		void		(*fn)(struct bench *);
		int		 per_call;
	} loops[] = {
		{ "raw_open", bench_raw_open, 1 }, { "open", bench_token_open, 1 },
		{ "raw_seal", bench_raw_seal, 1 }, { "seal", bench_token_seal, 1 },
		{ "batch_open", bench_batch_open, BENCH_NBATCH },
		{ "batch_validate", bench_batch_validate, BENCH_NBATCH },
		{ "raw_hmac", bench_raw_hmac, 1 }, { "secret_check", bench_secret_check, 1 },
	};
	char			*end, *cause = NULL;
	const char		*loop = NULL;
	int			 i, li = -1;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc) {
			seconds = strtod(argv[++i], &end);
			if (*end != '\0' || seconds <= 0)
				goto usage;
		} else if (strcmp(argv[i], "--loop") == 0 && i + 1 < argc)
			loop = argv[++i];
		else
			goto usage;
	}
	if (loop != NULL) {
		for (i = 0; i < (int)(sizeof loops / sizeof loops[0]); i++)
			if (strcmp(loops[i].name, loop) == 0)
				li = i;
		if (li < 0)
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

	for (i = 0; i < CRYPTO_HASHLEN; i++)
		b.pepper[i] = (uint8_t)(i * 13 + 1);
	if (gcry_mac_open(&b.mac, GCRY_MAC_HMAC_SHA256, 0, NULL) != 0 ||
	    gcry_mac_setkey(b.mac, b.pepper, sizeof b.pepper) != 0)
		bench_fail("gcry_mac_open");
	if (crypto_hmac_sha256(b.ctx, b.pepper, sizeof b.pepper, BENCH_SECRET,
	    sizeof BENCH_SECRET - 1, b.stored) != FA_OK)
		bench_fail("crypto_hmac_sha256");
	bench_batch_setup(&b);

	if (li >= 0) {
		double start = bench_now(), el;
		uint64_t ops = 0;

		bench_token_seal(&b);	/* the token the open loops open */
		bench_raw_seal(&b);	/* and the raw one */
		do {
			/* 64 calls per clock read: reading it is a system call. */
			for (i = 0; i < (loops[li].per_call > 1 ? 1 : 64); i++)
				loops[li].fn(&b);
			ops += (uint64_t)(loops[li].per_call > 1 ? loops[li].per_call : 64);
			el = bench_now() - start;
		} while (el < seconds);
		printf("{\"loop\": \"%s\", \"ops\": %llu, \"seconds\": %.3f, "
		    "\"per_s\": %.0f}\n", loops[li].name, (unsigned long long)ops, el,
		    (double)ops / el);
		goto done;
	}
	rnd = bench_run(seconds, bench_random, &b);
	bench_pair(seconds, bench_raw_seal, 1, bench_token_seal, 1, &b, &raw_seal, &tseal);
	bench_token_seal(&b);	/* the token the open loops open */
	bench_pair(seconds, bench_raw_open, 1, bench_token_open, 1, &b, &raw_open, &topen);
	bench_pair(seconds, bench_raw_open, 1, bench_batch_open, BENCH_NBATCH, &b,
	    &raw_open_b, &bopen);
	bench_pair(seconds, bench_raw_open, 1, bench_batch_validate, BENCH_NBATCH, &b,
	    &raw_open_v, &bvalid);
	bench_pair(seconds, bench_raw_hmac, 1, bench_secret_check, 1, &b, &raw_hmac, &check);

	printf("{\"clock\": \"thread cpu time\", \"seconds\": %g, "
	    "\"plaintext_len\": %zu, \"token_len\": %d, "
	    "\"raw_gcm_seal_per_s\": %.0f, \"raw_gcm_open_per_s\": %.0f, "
	    "\"getrandom12_per_s\": %.0f, "
	    "\"token_seal_per_s\": %.0f, \"token_open_per_s\": %.0f, "
	    "\"seal_ratio\": %.3f, \"open_ratio\": %.3f,\n"
	    " \"batch_size\": %d, \"raw_gcm_open_per_s_beside_batch_open\": %.0f, "
	    "\"batch_open_tokens_per_s\": %.0f, \"batch_open_ratio\": %.3f,\n"
	    " \"raw_gcm_open_per_s_beside_batch_validate\": %.0f, "
	    "\"batch_validate_tokens_per_s\": %.0f, \"batch_validate_ratio\": %.3f, "
	    "\"target_batch_validate_per_core\": 1000000, "
	    "\"batch_validate_meets_target\": %s,\n"
	    " \"raw_hmac_sha256_per_s\": %.0f, \"secret_check_per_s\": %.0f, "
	    "\"secret_check_ratio\": %.3f}\n",
	    seconds, b.ptlen, b.textlen, raw_seal, raw_open, rnd, tseal, topen,
	    tseal / raw_seal, topen / raw_open,
	    BENCH_NBATCH, raw_open_b, bopen, bopen / raw_open_b, raw_open_v, bvalid,
	    bvalid / raw_open_v,
	    bvalid >= 1e6 ? "true" : "false",
	    raw_hmac, check, check / raw_hmac);

done:
	gcry_cipher_close(b.hd);
	gcry_mac_close(b.mac);
	crypto_ctx_free(b.ctx);
	shm_close(b.seg);
	shm_unlink_segment(b.inst, &cause);
	buf_free(&b.body);
	buf_free(&b.out);
	free(b.work);
	return 0;

usage:
	fprintf(stderr, "usage: bench_token [--seconds N] [--loop NAME]\n");
	return 2;
}
