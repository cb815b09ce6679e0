/*
 * bench_shm.c -- how close the shared memory limiter and cache come to the
 * raw memory operations they are built on, measured in the same run, with
 * one JSON object on stdout.
 *
 * Ceilings: "raw_cas" is a GCRA update by compare-and-swap on one 64-bit word
 * per key in a shm segment (load, max, add, compare, CAS); "raw_seqlock" is a
 * seqlock-protected lookup of a 16-byte key and a copy of its 128-byte value
 * from a table laid out as the cache's entries (sequence word, 40-byte
 * header, key, value) in a shm segment, index known in advance, no hashing. They run on a twin segment of the same size, so that the real
 * tables stay intact; "raw_seqlock_put" is the writer's side (sequence made
 * odd by CAS, key and value copied, sequence made even), the ceiling of
 * cache_put. The real calls: ratelimit_check with its result (the
 * numbers for the response headers), cache_get of present keys, cache_put
 * overwriting present keys. Each thread or process has its own 4096 keys
 * (clients), as distinct requests would, so most operations miss the CPU
 * caches; the "1key" figures repeat one key (all cache hits) to separate
 * the cost of computing from the cost of memory. The clock is read once per
 * 64 operations in every loop (a request reads it once anyway).
 *
 * Two diagnostics for the 2-thread figures, which on a shared 2-CPU host
 * mostly measure how much CPU the other tenants left: "oncpu_1t"/"oncpu_2t"
 * give, per measurement, the share of its wall time each thread was actually
 * running (CLOCK_THREAD_CPUTIME_ID / wall, averaged over its threads), and
 * the "*_oncpu" rates divide by it (operations per CPU-second: compare those
 * with the 1-thread rate over its own oncpu to see whether two threads slow
 * each other down). "*_2t_own_segments" repeat the 2-thread limiter and cache
 * runs with the second thread in a third segment of its own, so that no
 * cache line at all is shared: equal to the shared run, the threads do not
 * contend on the tables.
 *
 * usage: bench_shm [--seconds N] [--ratelimit-entries N]
 *   --seconds: per measurement, default 1; --ratelimit-entries: limiter
 *   slots (default 524288, the server's default). Distinct keys share a
 *   line when they share a bucket: with 2 x 4096 keys in 65536 buckets one
 *   thread's bucket holds a key of the other one time in 16 (two in five
 *   with 65536 slots), so the 2-thread limiter figures include moving those
 *   lines between the cores; other sizes tell the two costs apart.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/fastauth.h"
#include "shm/shm.h"
#include "shm/ratelimit.h"
#include "shm/cache.h"

#define BENCH_KEYS	4096	/* per thread */
#define BENCH_MAXT	2	/* threads or processes */
#define BENCH_BATCH	64	/* operations between clock reads */
#define BENCH_VALUE	128	/* bytes of a cached value */
#define BENCH_KEYLEN	16
#define BENCH_HDR	40	/* the cache entry header, before key and value */

struct bench {
	char			 inst[64], twin[64], priv[64], sipn[64];
	struct shm_params	 params;
	struct shm		*seg;		/* the real tables */
	struct shm		*raw;		/* the twin, for the raw loops */
	struct shm		*own;		/* a second thread's private tables */
	struct shm		*sip;		/* the real tables, hashed by SipHash */
	struct ratelimit_policy	 pol;
	char			 keys[BENCH_MAXT][BENCH_KEYS][BENCH_KEYLEN];
	uint32_t		 slot[BENCH_MAXT][BENCH_KEYS];	/* raw seqlock's entry */
	uint32_t		 wslot[BENCH_MAXT][BENCH_KEYS];	/* raw CAS's word */
	_Atomic uint64_t	*words;		/* raw CAS: the twin's limiter region */
	uint64_t		 nwords;
	uint8_t			*entries;	/* raw seqlock: the twin's cache region */
	uint64_t		 nentries, stride;
	uint8_t			 value[BENCH_VALUE];
	double			 seconds;
};

struct bench_thread {
	struct bench	*b;
	unsigned	 id;
	unsigned	 nkeys;		/* keys it cycles through */
	struct shm	*seg;		/* this thread's attachment */
	uint64_t	 ops;
	double		 elapsed;
	double		 cpu;		/* seconds this thread was on a CPU */
	volatile uint64_t sink;
	pthread_barrier_t *start;
	void		(*loop)(struct bench_thread *);
} __attribute__((aligned(128)));	/* no false sharing between threads */

typedef void (*bench_loop)(struct bench_thread *);

#define BENCH_ROUNDS	6	/* 2-thread limiter rounds, each between ceilings */

struct bench_rounds {
	double		lim[BENCH_ROUNDS];	/* limiter, per thread */
	double		cas[BENCH_ROUNDS];	/* ceiling around it, per thread */
	int		two_cpus[BENCH_ROUNDS];
	double		cas_median, lim_median;	/* per thread */
	double		lim_two_cpus;		/* median of the two-CPU rounds */
	unsigned	n_two_cpus;
	double		oncpu_cas, oncpu_lim;
};

static char	bench_names[4][64];	/* segments to unlink on failure */

static void __attribute__((noreturn))
bench_fail(const char *what)
{
	char	*cause = NULL;
	int	 i;

	fprintf(stderr, "bench_shm: %s failed\n", what);
	for (i = 0; i < 4; i++)
		if (bench_names[i][0] != '\0')
			shm_unlink_segment(bench_names[i], &cause);
	exit(1);
}

static double
bench_clock(clockid_t id)
{
	struct timespec	ts;

	clock_gettime(id, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double
bench_secs(void)
{
	return bench_clock(CLOCK_MONOTONIC);
}

/* Run body BENCH_BATCH times per clock read until seconds have passed. */
#define BENCH_LOOP(t, ...) do {					\
	double		 cpu_ = bench_clock(CLOCK_THREAD_CPUTIME_ID);	\
	double		 start_ = bench_secs(), el_;			\
	uint64_t	 n_ = 0, now, sink = 0;				\
	unsigned	 i_ = 0, k_;					\
	do {								\
		now = shm_now();					\
		for (k_ = 0; k_ < BENCH_BATCH; k_++) {			\
			unsigned i = i_++ % (t)->nkeys;			\
			__VA_ARGS__;					\
		}							\
		(void)now;						\
		n_ += BENCH_BATCH;					\
		el_ = bench_secs() - start_;				\
	} while (el_ < (t)->b->seconds);				\
	(t)->sink = sink;						\
	(t)->ops = n_;							\
	(t)->elapsed = el_;						\
	(t)->cpu = bench_clock(CLOCK_THREAD_CPUTIME_ID) - cpu_;		\
} while (0)

/* GCRA on a bare word: the limiter's ceiling. */
static void
loop_raw_cas(struct bench_thread *t)
{
	struct bench	*b = t->b;
	const uint32_t	*slot = b->wslot[t->id];
	uint64_t	 T = b->pol.interval, horizon = b->pol.horizon;

	BENCH_LOOP(t, {
		_Atomic uint64_t *w = &b->words[slot[i]];
		uint64_t old = atomic_load_explicit(w, memory_order_relaxed);
		uint64_t tat = (old > now ? old : now) + T;
		if (tat - now <= horizon)
			atomic_compare_exchange_strong_explicit(w, &old, tat,
			    memory_order_relaxed, memory_order_relaxed);
		sink += tat;
	});
}

static void
loop_limiter(struct bench_thread *t)
{
	struct ratelimit	*rl = shm_ratelimit(t->seg);
	struct ratelimit_result	 r;
	struct bench		*b = t->b;

	BENCH_LOOP(t, {
		sink += (uint64_t)ratelimit_check(rl, &b->pol,
		    b->keys[t->id][i], BENCH_KEYLEN, now, &r) + r.remaining;
	});
}

/* Seqlock read of a known entry: key compare and value copy. */
static void
loop_raw_seqlock(struct bench_thread *t)
{
	struct bench	*b = t->b;
	const uint32_t	*slot = b->slot[t->id];
	uint8_t		 out[BENCH_VALUE];

	BENCH_LOOP(t, {
		uint8_t *e = b->entries + (uint64_t)slot[i] * b->stride;
		_Atomic uint64_t *seq = (_Atomic uint64_t *)e;
		uint64_t s1, s2;
		int eq;
		do {
			s1 = atomic_load_explicit(seq, memory_order_acquire);
			eq = memcmp(e + BENCH_HDR, b->keys[t->id][i],
			    BENCH_KEYLEN) == 0;
			memcpy(out, e + BENCH_HDR + BENCH_KEYLEN, BENCH_VALUE);
			atomic_thread_fence(memory_order_acquire);
			s2 = atomic_load_explicit(seq, memory_order_relaxed);
		} while (s1 != s2 || (s1 & 1));
		sink += (uint64_t)eq + out[i % BENCH_VALUE];
	});
}

/* Seqlock write of a known entry: the cache_put ceiling (no hashing, no search). */
static void
loop_raw_seqlock_put(struct bench_thread *t)
{
	struct bench	*b = t->b;
	const uint32_t	*slot = b->slot[t->id];

	BENCH_LOOP(t, {
		uint8_t *e = b->entries + (uint64_t)slot[i] * b->stride;
		_Atomic uint64_t *seq = (_Atomic uint64_t *)e;
		uint64_t s0 = atomic_load_explicit(seq, memory_order_relaxed);
		if ((s0 & 1) == 0 && atomic_compare_exchange_strong_explicit(seq,
		    &s0, s0 + 1, memory_order_acquire, memory_order_relaxed)) {
			memcpy(e + BENCH_HDR, b->keys[t->id][i], BENCH_KEYLEN);
			memcpy(e + BENCH_HDR + BENCH_KEYLEN, b->value, BENCH_VALUE);
			atomic_store_explicit(seq, s0 + 2, memory_order_release);
		}
		sink += s0;
	});
}

static void
loop_cache_get(struct bench_thread *t)
{
	struct cache	*c = shm_cache(t->seg);
	struct bench	*b = t->b;
	uint8_t		 out[BENCH_VALUE];
	size_t		 outlen;

	BENCH_LOOP(t, {
		if (cache_get(c, CACHE_CLIENT, b->keys[t->id][i], BENCH_KEYLEN,
		    now, out, sizeof out, &outlen) != FA_OK)
			bench_fail("cache_get hit");
		sink += outlen + out[i % BENCH_VALUE];
	});
}

static void
loop_cache_put(struct bench_thread *t)
{
	struct cache	*c = shm_cache(t->seg);
	struct bench	*b = t->b;

	BENCH_LOOP(t, {
		sink += (uint64_t)cache_put(c, CACHE_CLIENT,
		    b->keys[t->id][i], BENCH_KEYLEN, b->value, BENCH_VALUE,
		    3600ULL * 1000000, now, NULL);
	});
}

/* The keyed hash alone, prepared as the tables prepare it. */
static void
loop_hash(struct bench_thread *t, unsigned alg)
{
	struct bench		*b = t->b;
	struct shm_hashstate	 st;
	uint8_t			 key[SHM_HASHKEY_LEN] = { 1, 2, 3 };

	shm_hash_prepare(&st, alg, key, 0x524c000000000000ULL);
	BENCH_LOOP(t, {
		sink += shm_hash_prepared(&st, b->keys[t->id][i], BENCH_KEYLEN);
	});
}

static void
loop_siphash(struct bench_thread *t)
{
	loop_hash(t, SHM_HASH_SIPHASH);
}

static void
loop_aes4(struct bench_thread *t)
{
	loop_hash(t, SHM_HASH_AES4);
}

static void *
bench_thread_main(void *arg)
{
	struct bench_thread	*t = arg;

	pthread_barrier_wait(t->start);
	t->loop(t);
	return NULL;
}

/*
 * Operations per second, all threads together, each on nkeys keys. *oncpu
 * (if not NULL) is the share of the wall time the threads were running, on
 * average: below 1 when other load on the host took the CPUs, which divides
 * throughput without saying anything about the code. With private, the
 * second thread works in its own segment (b->own): no line is shared.
 */
static double
bench_threads_on(struct bench *b, bench_loop loop, unsigned n, unsigned nkeys,
    int private, double *oncpu)
{
	struct bench_thread	t[BENCH_MAXT];
	pthread_t		tid[BENCH_MAXT];
	pthread_barrier_t	start;
	double			total = 0, cpu = 0, wall = 0;
	unsigned		i;

	pthread_barrier_init(&start, NULL, n);
	for (i = 0; i < n; i++) {
		memset(&t[i], 0, sizeof t[i]);
		t[i].b = b;
		t[i].id = i;
		t[i].nkeys = nkeys;
		t[i].seg = private && i > 0 ? b->own : b->seg;
		t[i].start = &start;
		t[i].loop = loop;
		if (pthread_create(&tid[i], NULL, bench_thread_main, &t[i]) != 0)
			bench_fail("pthread_create");
	}
	for (i = 0; i < n; i++) {
		pthread_join(tid[i], NULL);
		total += (double)t[i].ops / t[i].elapsed;
		cpu += t[i].cpu;
		wall += t[i].elapsed;
	}
	pthread_barrier_destroy(&start);
	if (oncpu != NULL)
		*oncpu = cpu / wall;
	return total;
}

static double
bench_threads(struct bench *b, bench_loop loop, unsigned n, unsigned nkeys)
{
	return bench_threads_on(b, loop, n, nkeys, 0, NULL);
}

/* The same with n processes, each attaching the segment itself. */
static double
bench_processes(struct bench *b, bench_loop loop, unsigned n)
{
	pid_t	pids[BENCH_MAXT];
	int	go[2], res[2];
	double	total = 0, r;
	unsigned i;

	if (pipe(go) == -1 || pipe(res) == -1)
		bench_fail("pipe");
	for (i = 0; i < n; i++) {
		if ((pids[i] = fork()) == -1)
			bench_fail("fork");
		if (pids[i] != 0)
			continue;
		struct bench_thread	 t;
		char			*cause = NULL, c;

		close(go[1]);
		close(res[0]);
		memset(&t, 0, sizeof t);
		t.b = b;
		t.id = i;
		t.nkeys = BENCH_KEYS;
		if (shm_open_segment(b->inst, &b->params, &t.seg, &cause) != FA_OK)
			_exit(1);
		while (read(go[0], &c, 1) == -1 && errno == EINTR)
			;
		loop(&t);
		r = (double)t.ops / t.elapsed;
		_exit(write(res[1], &r, sizeof r) == sizeof r ? 0 : 1);
	}
	close(go[0]);
	close(res[1]);
	close(go[1]);
	for (i = 0; i < n; i++) {
		if (read(res[0], &r, sizeof r) != sizeof r)
			bench_fail("child result");
		total += r;
	}
	close(res[0]);
	for (i = 0; i < n; i++)
		waitpid(pids[i], NULL, 0);
	return total;
}

static int
bench_cmp(const void *a, const void *b)
{
	double	x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double
bench_median(const double *v, unsigned n)
{
	double	s[2 * BENCH_ROUNDS + 1];

	if (n == 0)
		return 0;
	memcpy(s, v, n * sizeof *v);
	qsort(s, n, sizeof *s, bench_cmp);
	return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

/*
 * The 2-thread limiter in rounds of half a measurement, each between two
 * rounds of its ceiling (raw CAS, 2 threads), per thread. A round counts as
 * having had two CPUs when the ceiling on both sides of it ran at least 0.6
 * of the 1-thread ceiling per thread. On this kind of shared host, now and
 * then for seconds, moving a cache line from one virtual CPU to the other
 * costs several times what it usually does (where the host runs them; no
 * steal time shows it): every loop whose threads write shared lines slows
 * -- the raw loop, whose threads' words interleave, to about 0.4 of its
 * 1-thread rate per thread against 0.8 to 0.9 otherwise -- while two threads
 * on segments of their own do not.
 */
static void
bench_rounds_2t(struct bench *b, double cas1, struct bench_rounds *r)
{
	double		 seconds = b->seconds, oncas, onlim, cas[BENCH_ROUNDS + 1];
	double		 ok[BENCH_ROUNDS];
	unsigned	 i, n = 0;

	memset(r, 0, sizeof *r);
	b->seconds = seconds / 2;
	cas[0] = bench_threads_on(b, loop_raw_cas, 2, BENCH_KEYS, 0, &oncas) / 2;
	r->oncpu_cas = oncas;
	for (i = 0; i < BENCH_ROUNDS; i++) {
		r->lim[i] = bench_threads_on(b, loop_limiter, 2, BENCH_KEYS, 0,
		    &onlim) / 2;
		r->oncpu_lim += onlim / BENCH_ROUNDS;
		cas[i + 1] = bench_threads_on(b, loop_raw_cas, 2, BENCH_KEYS, 0,
		    &oncas) / 2;
		r->oncpu_cas += oncas;
		r->cas[i] = (cas[i] + cas[i + 1]) / 2;
		r->two_cpus[i] = cas[i] >= 0.6 * cas1 && cas[i + 1] >= 0.6 * cas1;
		if (r->two_cpus[i])
			ok[n++] = r->lim[i];
	}
	r->oncpu_cas /= BENCH_ROUNDS + 1;
	r->cas_median = bench_median(cas, BENCH_ROUNDS + 1);
	r->lim_median = bench_median(r->lim, BENCH_ROUNDS);
	r->n_two_cpus = n;
	r->lim_two_cpus = bench_median(ok, n);
	b->seconds = seconds;
}

static struct shm *
bench_open(const char *inst, const struct shm_params *p)
{
	struct shm	*seg = NULL;
	char		*cause = NULL;

	if (shm_open_segment(inst, p, &seg, &cause) != FA_OK) {
		fprintf(stderr, "bench_shm: %s\n", cause);
		bench_fail("shm_open_segment");
	}
	return seg;
}

int
main(int argc, char **argv)
{
	static struct bench	 b;
	struct cache_stats	 cst;
	char			*end, *cause = NULL;
	double			 cas1, cas2, cas2p, lim1, lim2, lim2p, seq1, seq2;
	double			 get1, get2, put1, sip1, aes1, limhot, gethot, seqput1;
	double			 lim1sip, lim2sip;
	struct bench_rounds	 rounds;
	struct shm		*seg;
	struct shm_stats	 sst;
	double			 lim2own, get2own, oncpu_cas2, oncpu_lim2;
	double			 oncpu_cas1, oncpu_lim1, oncpu_seq1, oncpu_get1;
	double			 oncpu_lim2own, oncpu_seq2, oncpu_get2, oncpu_get2own;
	size_t			 size;
	unsigned		 seed = 7, t, i;
	unsigned long		 rlentries = 0;
	int			 a;

	b.seconds = 1;
	for (a = 1; a < argc; a++) {
		if (strcmp(argv[a], "--seconds") == 0 && a + 1 < argc) {
			b.seconds = strtod(argv[++a], &end);
			if (*end != '\0' || b.seconds <= 0)
				goto usage;
		} else if (strcmp(argv[a], "--ratelimit-entries") == 0 &&
		    a + 1 < argc) {
			rlentries = strtoul(argv[++a], &end, 10);
			if (*end != '\0' || rlentries < 8 ||
			    rlentries > 1UL << 26)
				goto usage;
		} else
			goto usage;
	}

	shm_params_default(&b.params);
	if (rlentries != 0)
		b.params.ratelimit_entries = (uint32_t)rlentries;
	/*
	 * Room for every key of both threads without overflowing a bucket: 8192
	 * keys in 16384 buckets of 8 (in 8192, about one run in a hundred had a
	 * bucket of 9 under its random segment key, and failed the fill).
	 */
	b.params.cache_entries = 131072;
	snprintf(b.inst, sizeof b.inst, "bench-%d", (int)getpid());
	snprintf(b.twin, sizeof b.twin, "bench-raw-%d", (int)getpid());
	memcpy(bench_names[0], b.inst, sizeof bench_names[0]);
	memcpy(bench_names[1], b.twin, sizeof bench_names[1]);
	snprintf(b.priv, sizeof b.priv, "bench-own-%d", (int)getpid());
	memcpy(bench_names[2], b.priv, sizeof bench_names[2]);
	snprintf(b.sipn, sizeof b.sipn, "bench-sip-%d", (int)getpid());
	memcpy(bench_names[3], b.sipn, sizeof bench_names[3]);
	b.seg = bench_open(b.inst, &b.params);
	b.raw = bench_open(b.twin, &b.params);
	b.own = bench_open(b.priv, &b.params);
	/* The same tables as on a CPU without AES: the hash's share of a check. */
	shm_test_hashalg = SHM_HASH_SIPHASH;
	b.sip = bench_open(b.sipn, &b.params);
	shm_test_hashalg = 0;
	shm_stats(b.seg, shm_now(), &sst);
	/*
	 * A million a second per client, burst a million: a key is hit far
	 * less often than that, so every check is allowed and does its CAS.
	 */
	if (ratelimit_policy_init(&b.pol, 0, 1000000, 1000000, 1000000,
	    &cause) != FA_OK)
		bench_fail(cause);

	b.words = shm_region(b.raw, SHM_REGION_RATELIMIT, &size);
	b.nwords = size / sizeof(uint64_t);
	b.entries = shm_region(b.raw, SHM_REGION_CACHE, &size);
	b.stride = (BENCH_HDR + CACHE_KEY_MAX + b.params.cache_value_max + 63) &
	    ~63U;
	b.nentries = size / b.stride;
	memset(b.value, 0x5a, sizeof b.value);
	for (t = 0; t < BENCH_MAXT; t++) {
		for (i = 0; i < BENCH_KEYS; i++) {
			char	k[BENCH_KEYLEN + 1];
			uint8_t	*e;

			snprintf(k, sizeof k, "client-%u-%07u", t, i);
			memcpy(b.keys[t][i], k, BENCH_KEYLEN);
			/* Random slots, distinct per thread (t in the low bit). */
			b.slot[t][i] = (((uint32_t)rand_r(&seed) %
			    (uint32_t)(b.nentries / 2)) * 2 + t);
			b.wslot[t][i] = (((uint32_t)rand_r(&seed) %
			    (uint32_t)(b.nwords / 2)) * 2 + t);
			e = b.entries + (uint64_t)b.slot[t][i] * b.stride;
			memcpy(e + BENCH_HDR, k, BENCH_KEYLEN);
			memcpy(e + BENCH_HDR + BENCH_KEYLEN, b.value, BENCH_VALUE);
			if (cache_put(shm_cache(b.seg), CACHE_CLIENT, k,
			    BENCH_KEYLEN, b.value, BENCH_VALUE, 3600ULL * 1000000,
			    shm_now(), NULL) != FA_OK)
				bench_fail("cache_put fill");
			if (t == 1 && cache_put(shm_cache(b.own), CACHE_CLIENT, k,
			    BENCH_KEYLEN, b.value, BENCH_VALUE, 3600ULL * 1000000,
			    shm_now(), NULL) != FA_OK)
				bench_fail("cache_put fill (own)");
		}
	}
	cache_stats(shm_cache(b.seg), shm_now(), &cst);
	if (cst.used != BENCH_MAXT * BENCH_KEYS)
		bench_fail("cache fill (buckets overflowed)");

	sip1 = bench_threads(&b, loop_siphash, 1, BENCH_KEYS);
	aes1 = shm_hash_supported(SHM_HASH_AES4) ?
	    bench_threads(&b, loop_aes4, 1, BENCH_KEYS) : 0;
	cas1 = bench_threads_on(&b, loop_raw_cas, 1, BENCH_KEYS, 0, &oncpu_cas1);
	lim1 = bench_threads_on(&b, loop_limiter, 1, BENCH_KEYS, 0, &oncpu_lim1);
	bench_rounds_2t(&b, cas1, &rounds);
	cas2 = rounds.cas_median * 2;
	lim2 = rounds.lim_median * 2;
	oncpu_cas2 = rounds.oncpu_cas;
	oncpu_lim2 = rounds.oncpu_lim;
	lim2own = bench_threads_on(&b, loop_limiter, 2, BENCH_KEYS, 1,
	    &oncpu_lim2own);
	cas2p = bench_processes(&b, loop_raw_cas, 2);
	lim2p = bench_processes(&b, loop_limiter, 2);
	limhot = bench_threads(&b, loop_limiter, 1, 1);
	seg = b.seg;
	b.seg = b.sip;
	lim1sip = bench_threads(&b, loop_limiter, 1, BENCH_KEYS);
	lim2sip = bench_threads(&b, loop_limiter, 2, BENCH_KEYS);
	b.seg = seg;
	seq1 = bench_threads_on(&b, loop_raw_seqlock, 1, BENCH_KEYS, 0,
	    &oncpu_seq1);
	get1 = bench_threads_on(&b, loop_cache_get, 1, BENCH_KEYS, 0, &oncpu_get1);
	seq2 = bench_threads_on(&b, loop_raw_seqlock, 2, BENCH_KEYS, 0,
	    &oncpu_seq2);
	get2 = bench_threads_on(&b, loop_cache_get, 2, BENCH_KEYS, 0,
	    &oncpu_get2);
	get2own = bench_threads_on(&b, loop_cache_get, 2, BENCH_KEYS, 1,
	    &oncpu_get2own);
	gethot = bench_threads(&b, loop_cache_get, 1, 1);
	seqput1 = bench_threads(&b, loop_raw_seqlock_put, 1, BENCH_KEYS);
	put1 = bench_threads(&b, loop_cache_put, 1, BENCH_KEYS);

	printf("{\"seconds\": %g, \"keys_per_thread\": %d, \"key_len\": %d, "
	    "\"value_len\": %d, \"ratelimit_entries\": %u, "
	    "\"cache_entries\": %u, \"cache_value_max\": %u, \"hash\": \"%s\",\n"
	    " \"siphash_1t_per_s\": %.0f, \"aes4_1t_per_s\": %.0f,\n"
	    " \"limiter_siphash_1t_per_s\": %.0f, "
	    "\"limiter_siphash_2t_per_thread\": %.0f,\n"
	    " \"raw_cas_1t_per_s\": %.0f, \"limiter_1t_per_s\": %.0f, "
	    "\"limiter_ratio_1t\": %.3f,\n"
	    " \"raw_cas_2t_per_s\": %.0f, \"limiter_2t_per_s\": %.0f, "
	    "\"limiter_2t_per_thread\": %.0f, \"limiter_ratio_2t\": %.3f,\n"
	    " \"limiter_2t_own_segments_per_s\": %.0f,\n"
	    " \"oncpu_1t\": {\"raw_cas\": %.3f, \"limiter\": %.3f, "
	    "\"raw_seqlock\": %.3f, \"cache_get\": %.3f},\n"
	    " \"oncpu_2t\": {\"raw_cas\": %.3f, \"limiter\": %.3f, "
	    "\"limiter_own_segments\": %.3f, \"raw_seqlock\": %.3f, "
	    "\"cache_get\": %.3f, \"cache_get_own_segments\": %.3f},\n"
	    " \"limiter_2t_per_thread_oncpu\": %.0f, "
	    "\"cache_get_2t_per_thread_oncpu\": %.0f,\n"
	    " \"raw_cas_2p_per_s\": %.0f, \"limiter_2p_per_s\": %.0f, "
	    "\"limiter_2p_per_process\": %.0f, \"limiter_ratio_2p\": %.3f,\n"
	    " \"limiter_1key_1t_per_s\": %.0f,\n"
	    " \"raw_seqlock_1t_per_s\": %.0f, \"cache_get_1t_per_s\": %.0f, "
	    "\"cache_ratio_1t\": %.3f,\n"
	    " \"raw_seqlock_2t_per_s\": %.0f, \"cache_get_2t_per_s\": %.0f, "
	    "\"cache_get_2t_per_thread\": %.0f, \"cache_ratio_2t\": %.3f,\n"
	    " \"cache_get_2t_own_segments_per_s\": %.0f,\n"
	    " \"cache_get_1key_1t_per_s\": %.0f,\n"
	    " \"raw_seqlock_put_1t_per_s\": %.0f, \"cache_put_1t_per_s\": %.0f, "
	    "\"cache_put_ratio_1t\": %.3f,\n",
	    b.seconds, BENCH_KEYS, BENCH_KEYLEN, BENCH_VALUE,
	    b.params.ratelimit_entries, b.params.cache_entries,
	    b.params.cache_value_max, shm_hash_name(sst.hashalg), sip1, aes1,
	    lim1sip, lim2sip / 2,
	    cas1, lim1, lim1 / cas1,
	    cas2, lim2, lim2 / 2, lim2 / cas2,
	    lim2own, oncpu_cas1, oncpu_lim1, oncpu_seq1, oncpu_get1, oncpu_cas2, oncpu_lim2, oncpu_lim2own, oncpu_seq2,
	    oncpu_get2, oncpu_get2own,
	    lim2 / 2 / oncpu_lim2, get2 / 2 / oncpu_get2,
	    cas2p, lim2p, lim2p / 2, lim2p / cas2p,
	    limhot,
	    seq1, get1, get1 / seq1,
	    seq2, get2, get2 / 2, get2 / seq2,
	    get2own,
	    gethot,
	    seqput1, put1, put1 / seqput1);
	printf(" \"limiter_2t_rounds\": [");
	for (i = 0; i < BENCH_ROUNDS; i++)
		printf("%s{\"raw_cas_per_thread\": %.0f, \"limiter_per_thread\": "
		    "%.0f, \"two_cpus\": %s}", i ? ", " : "", rounds.cas[i],
		    rounds.lim[i], rounds.two_cpus[i] ? "true" : "false");
	printf("],\n \"limiter_2t_two_cpu_rounds\": %u, "
	    "\"limiter_2t_per_thread_two_cpus\": %.0f,\n",
	    rounds.n_two_cpus, rounds.lim_two_cpus);
	/* With no round on two CPUs, the 2-thread target cannot be judged. */
	printf(" \"target_limiter_per_thread\": 20000000, "
	    "\"target_cache_get_per_thread\": 10000000, "
	    "\"limiter_meets_target\": %s, \"cache_meets_target\": %s}\n",
	    rounds.n_two_cpus == 0 ? "null" : lim1 >= 20e6 &&
	    rounds.lim_two_cpus >= 20e6 ? "true" : "false",
	    get1 >= 10e6 && get2 / 2 >= 10e6 ? "true" : "false");

	shm_close(b.seg);
	shm_close(b.raw);
	shm_close(b.own);
	shm_close(b.sip);
	shm_unlink_segment(b.sipn, &cause);
	shm_unlink_segment(b.priv, &cause);
	shm_unlink_segment(b.inst, &cause);
	shm_unlink_segment(b.twin, &cause);
	return 0;

usage:
	fprintf(stderr, "usage: bench_shm [--seconds N] [--ratelimit-entries N]\n");
	return 2;
}
