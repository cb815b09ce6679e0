/*
 * bench_password.c -- what the per-thread pool of pre-faulted Argon2 memory
 * buys, and whether an unknown user costs what a wrong password costs. One
 * JSON object on stdout.
 *
 * Hashing, at m=19456 t=2 p=1 (the default) and m=47104 t=1 p=1 (46 MiB, above
 * glibc's largest mmap threshold of 32 MiB, so libargon2's malloc maps and
 * faults fresh memory on every hash): raw argon2id_hash_raw, the library
 * allocating each time, against password_hash, which adds a getrandom salt
 * and the PHC encoding but takes its memory from the pool. The two run
 * alternately in slices of about half a second, so that load from elsewhere
 * on the machine falls on both. Minor page faults per hash are those of the
 * hashing threads in the timed loops. wipe_ms is the time to zero the pool once: libargon2 does that
 * after every hash, raw or pooled, and it cannot be turned off from outside.
 *
 * Verification at the default parameters: password_verify with a wrong
 * password against a stored hash, and password_verify_dummy (unknown user),
 * called alternately; the mean and median wall time of each, and their
 * ratios (target: within 5%).
 *
 * The first hashing figure is at the configured parameters: argon2_memory_kib,
 * argon2_iterations and argon2_parallelism as fastauth would read them
 * (the file given by --config, else SYSCONFDIR/fastauth/fastauth.conf when
 * it exists, then FASTAUTH_* variables, else the defaults); "configured"
 * says where they came from. The 46 MiB set follows.
 *
 * usage: bench_password [--seconds N] [--threads N] [--config FILE]
 *   --seconds N   per measurement (default 2)
 *   --threads N   threads hashing at once (default 1)
 *   --config FILE fastauth.conf to take the Argon2id parameters from
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <argon2.h>

#include "core/fastauth.h"
#include "config/config.h"
#include "core/xmalloc.h"
#include "crypto/password.h"

#define BENCH_DEFAULT_CONF SYSCONFDIR "/fastauth/fastauth.conf"

#define BENCH_MAX_THREADS	64
#define BENCH_MAX_SAMPLES	100000	/* per thread and kind, verify timing */
#define BENCH_SLICE		0.5	/* s: one run of one kind, hashing */

enum bench_kind { BENCH_RAW, BENCH_POOLED, BENCH_VERIFY };

struct bench_thread {
	pthread_t		 tid;
	enum bench_kind		 kind;
	struct password_params	 pp;
	double			 seconds;
	const char		*stored;	/* BENCH_VERIFY: a real user's hash */
	pthread_barrier_t	*start;
	uint64_t		 count;		/* hashes done (RAW, POOLED) */
	long			 minflt;	/* minor faults in the timed loop */
	double			 elapsed;	/* s */
	double			*wrong, *dummy;	/* BENCH_VERIFY: ms per call */
	size_t			 nwrong, ndummy;
	int			 failed;
};

static const char bench_pw[] = "Tr0ub4dor&3 but longer";

static double
bench_now(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The calling thread's minor page faults so far. */
static long
bench_minflt(void)
{
	struct rusage	ru;

	getrusage(RUSAGE_THREAD, &ru);
	return ru.ru_minflt;
}

static int
bench_raw_once(const struct password_params *pp)
{
	uint8_t	salt[PASSWORD_SALTLEN] = { 1, 2, 3 }, out[PASSWORD_HASHLEN];

	return argon2id_hash_raw(pp->t, pp->m_kib, pp->p, bench_pw,
	    sizeof bench_pw - 1, salt, sizeof salt, out, sizeof out) == ARGON2_OK ?
	    FA_OK : FA_ERR;
}

static int
bench_pooled_once(const struct password_params *pp)
{
	char	phc[PASSWORD_PHC_MAX];

	return password_hash(pp, bench_pw, sizeof bench_pw - 1, phc, sizeof phc);
}

static void *
bench_worker(void *arg)
{
	struct bench_thread	*bt = arg;
	double			 start, t0, t1;
	long			 f0;
	int			 flip = 0;

	/*
	 * Warm up outside the clock: a long-running responder has hashed before,
	 * so glibc's mmap threshold has adapted (raw) and the pool exists (ours).
	 */
	if (bt->kind == BENCH_RAW)
		bt->failed |= bench_raw_once(&bt->pp) != FA_OK;
	else if (password_thread_prepare(&bt->pp) != FA_OK)
		bt->failed = 1;
	pthread_barrier_wait(bt->start);
	f0 = bench_minflt();
	start = bench_now();
	do {
		switch (bt->kind) {
		case BENCH_RAW:
			bt->failed |= bench_raw_once(&bt->pp) != FA_OK;
			break;
		case BENCH_POOLED:
			bt->failed |= bench_pooled_once(&bt->pp) != FA_OK;
			break;
		case BENCH_VERIFY:
			/* Alternate which goes first, so neither always follows the other. */
			flip ^= 1;
			for (int k = 0; k < 2; k++) {
				int dummy = k ^ flip;

				t0 = bench_now();
				if (dummy)
					bt->failed |= password_verify_dummy(&bt->pp,
					    "wrong", 5) != FA_DENIED;
				else
					bt->failed |= password_verify(&bt->pp,
					    bt->stored, "wrong", 5, NULL) != FA_DENIED;
				t1 = bench_now();
				if (dummy && bt->ndummy < BENCH_MAX_SAMPLES)
					bt->dummy[bt->ndummy++] = (t1 - t0) * 1e3;
				else if (!dummy && bt->nwrong < BENCH_MAX_SAMPLES)
					bt->wrong[bt->nwrong++] = (t1 - t0) * 1e3;
			}
			break;
		}
		bt->count++;
		bt->elapsed = bench_now() - start;
	} while (bt->elapsed < bt->seconds);
	bt->minflt = bench_minflt() - f0;
	password_thread_release();
	return NULL;
}

/* Run nthreads workers of kind for seconds; fills bt[]. Exits on failure. */
static void
bench_run(struct bench_thread *bt, int nthreads, enum bench_kind kind,
    const struct password_params *pp, double seconds, const char *stored)
{
	pthread_barrier_t	start;
	int			i;

	pthread_barrier_init(&start, NULL, (unsigned)nthreads);
	for (i = 0; i < nthreads; i++) {
		bt[i].kind = kind;
		bt[i].pp = *pp;
		bt[i].seconds = seconds;
		bt[i].stored = stored;
		bt[i].start = &start;
		if (pthread_create(&bt[i].tid, NULL, bench_worker, &bt[i]) != 0) {
			fprintf(stderr, "bench_password: pthread_create failed\n");
			exit(1);
		}
	}
	for (i = 0; i < nthreads; i++) {
		pthread_join(bt[i].tid, NULL);
		if (bt[i].failed) {
			fprintf(stderr, "bench_password: a hash failed\n");
			exit(1);
		}
	}
	pthread_barrier_destroy(&start);
}

struct bench_rate {
	uint64_t	count;		/* hashes, all threads */
	double		thread_s;	/* sum of the threads' elapsed time, s */
	double		wall_s;		/* sum of the runs' longest elapsed time, s */
	long		minflt;		/* minor page faults in the timed loops */
};

static void
bench_rate_add(struct bench_rate *r, struct bench_thread *bt, int nthreads)
{
	double	wall = 0;
	int	i;

	for (i = 0; i < nthreads; i++) {
		r->count += bt[i].count;
		r->thread_s += bt[i].elapsed;
		r->minflt += bt[i].minflt;
		if (bt[i].elapsed > wall)
			wall = bt[i].elapsed;
		bt[i].count = 0;
		bt[i].elapsed = 0;
	}
	r->wall_s += wall;
}

static void
bench_rate_print(const char *name, const struct bench_rate *r)
{
	printf("\"%s\":{\"hashes\":%llu,\"hashes_per_s\":%.2f,\"ms_per_hash\":%.2f,"
	    "\"minflt_per_hash\":%.1f}", name, (unsigned long long)r->count,
	    (double)r->count / r->wall_s, r->thread_s * 1e3 / (double)r->count,
	    (double)r->minflt / (double)r->count);
}

static int
bench_cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Mean and median of the samples of all threads; sorts them. */
static void
bench_stats(double *v, size_t n, double *mean, double *median)
{
	double	sum = 0;
	size_t	i;

	for (i = 0; i < n; i++)
		sum += v[i];
	qsort(v, n, sizeof *v, bench_cmp);
	*mean = n ? sum / (double)n : 0;
	*median = n ? (n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2) : 0;
}

/* Time to zero a pool of the size pp maps, as libargon2 does after each hash. */
static double
bench_wipe_ms(const struct password_params *pp)
{
	struct password_pool_stats	st;
	uint8_t				*mem;
	double				 t0;
	int				 i, n = 20;

	if (password_thread_prepare(pp) != FA_OK)
		return -1;
	password_pool_stats(&st);
	password_thread_release();
	/* A pre-faulted buffer of the same size stands in for the pool. */
	mem = xmalloc(st.bytes);
	memset(mem, 1, st.bytes);
	t0 = bench_now();
	for (i = 0; i < n; i++)
		explicit_bzero(mem, st.bytes);
	t0 = (bench_now() - t0) * 1e3 / n;
	free(mem);
	return t0;
}

static void
bench_hash(struct bench_thread *bt, int nthreads, const struct password_params *pp,
    double seconds)
{
	struct bench_rate	raw, pooled;
	int			nslices, slice, k;

	memset(&raw, 0, sizeof raw);
	memset(&pooled, 0, sizeof pooled);
	/*
	 * Short slices in ABBA order: load from other processes and any drift
	 * of the clock speed fall on both kinds alike.
	 */
	nslices = (int)(seconds / BENCH_SLICE + 0.5);
	if (nslices < 2)
		nslices = 2;
	nslices += nslices % 2;
	for (slice = 0; slice < nslices; slice++) {
		int pooled_first = (slice % 4 == 1 || slice % 4 == 2);

		for (k = 0; k < 2; k++) {
			if (k == pooled_first) {
				bench_run(bt, nthreads, BENCH_RAW, pp,
				    seconds / nslices, NULL);
				bench_rate_add(&raw, bt, nthreads);
			} else {
				bench_run(bt, nthreads, BENCH_POOLED, pp,
				    seconds / nslices, NULL);
				bench_rate_add(&pooled, bt, nthreads);
			}
		}
	}
	printf("{\"m_kib\":%u,\"t\":%u,\"p\":%u,", pp->m_kib, pp->t, pp->p);
	bench_rate_print("raw_argon2id_hash_raw", &raw);
	putchar(',');
	bench_rate_print("pooled_password_hash", &pooled);
	printf(",\"pooled_vs_raw\":%.3f,\"wipe_ms\":%.2f}",
	    ((double)pooled.count / pooled.wall_s) / ((double)raw.count / raw.wall_s),
	    bench_wipe_ms(pp));
}

static void
bench_verify(struct bench_thread *bt, int nthreads, double seconds)
{
	struct password_params	 pp = PASSWORD_PARAMS_DEFAULT;
	char			 stored[PASSWORD_PHC_MAX];
	double			*wrong, *dummy, wmean, wmed, dmean, dmed;
	size_t			 nw = 0, nd = 0;
	int			 i;

	if (password_hash(&pp, bench_pw, sizeof bench_pw - 1, stored,
	    sizeof stored) != FA_OK) {
		fprintf(stderr, "bench_password: password_hash failed\n");
		exit(1);
	}
	password_thread_release();
	for (i = 0; i < nthreads; i++) {
		bt[i].wrong = xcalloc(BENCH_MAX_SAMPLES, sizeof(double));
		bt[i].dummy = xcalloc(BENCH_MAX_SAMPLES, sizeof(double));
		bt[i].nwrong = bt[i].ndummy = 0;
	}
	/* Both kinds share the time: twice it, as each hashing measurement got. */
	bench_run(bt, nthreads, BENCH_VERIFY, &pp, seconds * 2, stored);
	wrong = xcalloc((size_t)nthreads * BENCH_MAX_SAMPLES, sizeof(double));
	dummy = xcalloc((size_t)nthreads * BENCH_MAX_SAMPLES, sizeof(double));
	for (i = 0; i < nthreads; i++) {
		memcpy(wrong + nw, bt[i].wrong, bt[i].nwrong * sizeof(double));
		nw += bt[i].nwrong;
		memcpy(dummy + nd, bt[i].dummy, bt[i].ndummy * sizeof(double));
		nd += bt[i].ndummy;
		free(bt[i].wrong);
		free(bt[i].dummy);
	}
	bench_stats(wrong, nw, &wmean, &wmed);
	bench_stats(dummy, nd, &dmean, &dmed);
	printf("{\"m_kib\":%u,\"t\":%u,\"p\":%u,"
	    "\"wrong_password\":{\"calls\":%zu,\"mean_ms\":%.3f,\"median_ms\":%.3f},"
	    "\"unknown_user\":{\"calls\":%zu,\"mean_ms\":%.3f,\"median_ms\":%.3f},"
	    "\"unknown_vs_wrong_mean\":%.4f,\"unknown_vs_wrong_median\":%.4f}",
	    pp.m_kib, pp.t, pp.p, nw, wmean, wmed, nd, dmean, dmed,
	    dmean / wmean, dmed / wmed);
	free(wrong);
	free(dummy);
}

static void __attribute__((noreturn))
bench_usage(void)
{
	fprintf(stderr, "usage: bench_password [--seconds N] [--threads N] [--config FILE]\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	struct password_params sizes[] = {
		{ .m_kib = 19456, .t = 2, .p = 1 },	/* replaced by the configured set */
		{ .m_kib = 47104, .t = 1, .p = 1 },
	};
	struct bench_thread	*bt;
	struct config		*cfg;
	double			 seconds = 2;
	int			 nthreads = 1, i, must_exist = 0;
	const char		*conf = BENCH_DEFAULT_CONF;
	char			*end, *cause = NULL;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc) {
			seconds = strtod(argv[++i], &end);
			if (*end != '\0' || seconds <= 0 || seconds > 3600)
				bench_usage();
		} else if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
			conf = argv[++i];
			must_exist = 1;
		} else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc) {
			nthreads = (int)strtol(argv[++i], &end, 10);
			if (*end != '\0' || nthreads < 1 || nthreads > BENCH_MAX_THREADS)
				bench_usage();
		} else
			bench_usage();
	}
	if ((cfg = config_load(conf, must_exist, &cause)) == NULL) {
		fprintf(stderr, "bench_password: %s\n", cause);
		free(cause);
		return 1;
	}
	sizes[0].m_kib = (uint32_t)cfg->argon2_memory_kib;
	sizes[0].t = (uint32_t)cfg->argon2_iterations;
	sizes[0].p = (uint32_t)cfg->argon2_parallelism;
	config_free(cfg);
	bt = xcalloc((size_t)nthreads, sizeof *bt);
	printf("{\"bench\":\"password\",\"seconds\":%g,\"threads\":%d,"
	    "\"configured\":\"%s%s\",\"hash\":[",
	    seconds, nthreads, access(conf, R_OK) == 0 ? "" : "defaults, no ",
	    conf);
	for (i = 0; i < (int)(sizeof sizes / sizeof sizes[0]); i++) {
		if (i > 0)
			putchar(',');
		bench_hash(bt, nthreads, &sizes[i], seconds);
		fflush(stdout);
	}
	printf("],\"verify\":");
	bench_verify(bt, nthreads, seconds);
	printf("}\n");
	free(bt);
	return 0;
}
