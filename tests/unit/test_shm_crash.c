/*
 * test_shm_crash.c -- Check suite that kills processes using the shared
 * memory segment with SIGKILL at random instants and checks that the others
 * carry on: six workers hammer the limiter and the cache while the parent
 * kills and replaces them for about ten seconds; afterwards every operation
 * completes promptly, no slot stays claimed, no value read was torn, the
 * decision counters add up, and the limiter still allows exactly the burst
 * across processes. Also: a cache writer stopped or killed while it holds a
 * claim (readers miss, a later writer recovers the entry), and processes
 * killed while attaching.
 *
 * Segments are named "tshmc-<pid of main>-<pid>-<n>" and unlinked at the end
 * of main, failed tests included.
 */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <check.h>

#include "core/fastauth.h"
#include "shm/shm.h"
#include "shm/ratelimit.h"
#include "shm/cache.h"

#define SEC		1000000ULL
#define WORKERS		6
#define CHAOS_US	(10 * SEC)
#define RL_KEYS		2000
#define CACHE_KEYS	300
#define VALUE_MAX	200

static pid_t	main_pid;
static char	inst[SHM_INSTANCE_MAX + 1];
static int	inst_n;

static const char *
inst_new(void)
{
	snprintf(inst, sizeof inst, "tshmc-%d-%d-%d", (int)main_pid,
	    (int)getpid(), ++inst_n);
	return inst;
}

static void
teardown(void)
{
	char	*cause = NULL;

	if (inst[0] != '\0')
		shm_unlink_segment(inst, &cause);
	free(cause);
	inst[0] = '\0';
	shm_test_hook = NULL;
}

static struct shm *
seg_open(const struct shm_params *p)
{
	struct shm	*seg = NULL;
	char		*cause = NULL;

	ck_assert_msg(shm_open_segment(inst, p, &seg, &cause) == FA_OK,
	    "shm_open_segment: %s", cause ? cause : "?");
	return seg;
}

static void
params(struct shm_params *p, uint32_t rl, uint32_t ce, uint32_t vmax)
{
	shm_params_default(p);	/* the regions these tests do not size */
	p->ratelimit_entries = rl;
	p->cache_entries = ce;
	p->cache_value_max = vmax;
}

static uint64_t
ms_since(uint64_t start)
{
	return (shm_now() - start) / 1000;
}

static void
barrier_wait(int fd)
{
	char	c;

	while (read(fd, &c, 1) == -1 && errno == EINTR)
		;
}

static int
wait_ok(pid_t pid)
{
	int	status;

	return waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
	    WEXITSTATUS(status) == 0;
}

/* Stop or die inside a cache write: claim held, entry half-written. */
static void
hook_kill(enum shm_test_point point)
{
	if (point == SHM_TEST_CACHE_WRITE)
		raise(SIGKILL);
}

static void
hook_stop(enum shm_test_point point)
{
	if (point == SHM_TEST_CACHE_WRITE)
		raise(SIGSTOP);
}

/* --- values that check themselves ---------------------------------------- */

static uint64_t
fnv64(const uint8_t *p, size_t n)
{
	uint64_t	h = 0xcbf29ce484222325ULL;

	while (n-- > 0)
		h = (h ^ *p++) * 0x100000001b3ULL;
	return h;
}

static size_t
val_make(uint8_t *buf, size_t cap, uint32_t keyid, uint32_t seq, unsigned rnd)
{
	uint32_t	len = 20 + rnd % (uint32_t)(cap - 19), i;
	uint64_t	sum;

	memcpy(buf, &keyid, 4);
	memcpy(buf + 4, &seq, 4);
	memcpy(buf + 8, &len, 4);
	for (i = 12; i < len - 8; i++)
		buf[i] = (uint8_t)(keyid * 31 + seq * 7 + i);
	sum = fnv64(buf, len - 8);
	memcpy(buf + len - 8, &sum, 8);
	return len;
}

static int
val_check(const uint8_t *buf, size_t len, uint32_t keyid)
{
	uint32_t	k, l;
	uint64_t	sum;

	if (len < 20)
		return 0;
	memcpy(&k, buf, 4);
	memcpy(&l, buf + 8, 4);
	memcpy(&sum, buf + len - 8, 8);
	return k == keyid && l == len && sum == fnv64(buf, len - 8);
}

/* --- the chaos ----------------------------------------------------------- */

/* Shared with the workers (anonymous MAP_SHARED): what they saw. */
struct book {
	_Atomic uint64_t decisions;	/* limiter checks returned */
	_Atomic uint64_t hits;		/* cache hits verified */
	_Atomic uint64_t torn;		/* cache hits that failed verification */
	_Atomic uint64_t bad;		/* unexpected return codes */
	_Atomic uint64_t attached;	/* workers that finished attaching */
	_Atomic uint64_t ops;
};

static void __attribute__((noreturn))
worker(const struct shm_params *p, struct book *book, unsigned seed)
{
	struct ratelimit_policy	 pol[4];
	struct shm		*seg = NULL;
	struct ratelimit	*rl;
	struct cache		*c;
	char			*cause = NULL, key[32];
	uint8_t			 buf[VALUE_MAX];
	size_t			 len;
	unsigned		 k, r, seq = 0;
	int			 rc;

	if (shm_open_segment(inst, p, &seg, &cause) != FA_OK) {
		atomic_fetch_add(&book->bad, 1);
		_exit(1);
	}
	atomic_fetch_add(&book->attached, 1);
	rl = shm_ratelimit(seg);
	c = shm_cache(seg);
	for (k = 0; k < 4; k++)
		if (ratelimit_policy_init(&pol[k], k, 5 + k * 10, SEC,
		    3 + k, &cause) != FA_OK)
			_exit(1);
	for (;;) {
		r = (unsigned)rand_r(&seed) % 100;
		if (r < 45) {
			k = (unsigned)rand_r(&seed) % RL_KEYS;
			snprintf(key, sizeof key, "rl-%u", k);
			rc = ratelimit_check(rl, &pol[k % 4], key, strlen(key),
			    shm_now(), NULL);
			if (rc != FA_OK && rc != FA_LIMIT)
				atomic_fetch_add(&book->bad, 1);
			atomic_fetch_add(&book->decisions, 1);
		} else if (r < 90) {
			k = (unsigned)rand_r(&seed) % CACHE_KEYS;
			snprintf(key, sizeof key, "c-%u", k);
			if (r < 65) {
				len = val_make(buf, sizeof buf, k, seq++,
				    (unsigned)rand_r(&seed));
				rc = cache_put(c, CACHE_CLIENT, key, strlen(key),
				    buf, len, 60 * SEC, shm_now(), NULL);
				if (rc != FA_OK && rc != FA_DENIED)
					atomic_fetch_add(&book->bad, 1);
			} else {
				rc = cache_get(c, CACHE_CLIENT, key, strlen(key),
				    shm_now(), buf, sizeof buf, &len);
				if (rc == FA_OK) {
					if (val_check(buf, len, k))
						atomic_fetch_add(&book->hits, 1);
					else
						atomic_fetch_add(&book->torn, 1);
				} else if (rc != FA_NOTFOUND)
					atomic_fetch_add(&book->bad, 1);
			}
		} else if (r < 95) {
			k = (unsigned)rand_r(&seed) % CACHE_KEYS;
			snprintf(key, sizeof key, "c-%u", k);
			cache_del(c, CACHE_CLIENT, key, strlen(key));
		} else {
			k = (unsigned)rand_r(&seed) % RL_KEYS;
			snprintf(key, sizeof key, "rl-%u", k);
			if (r == 99)
				ratelimit_reset(rl, &pol[k % 4], key, strlen(key));
			else
				ratelimit_peek(rl, &pol[k % 4], key, strlen(key),
				    shm_now(), NULL);
		}
		atomic_fetch_add(&book->ops, 1);
	}
}

static pid_t
spawn(const struct shm_params *p, struct book *book, unsigned seed)
{
	pid_t	pid = fork();

	ck_assert_int_ne(pid, -1);
	if (pid == 0)
		worker(p, book, seed);
	return pid;
}

static void
kill_reap(pid_t pid)
{
	int	status;

	kill(pid, SIGKILL);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
}

/* n processes x per checks on one key, all starting together: allowed. */
static unsigned
rl_hammer(const struct shm_params *p, const struct ratelimit_policy *pol,
    const char *key, int n, int per)
{
	pid_t		pids[WORKERS];
	int		start[2], res[2], i;
	unsigned	total = 0, a;

	ck_assert_int_eq(pipe(start), 0);
	ck_assert_int_eq(pipe(res), 0);
	for (i = 0; i < n; i++) {
		if ((pids[i] = fork()) != 0)
			continue;
		struct shm	*seg = NULL;
		char		*cause = NULL;
		unsigned	 allowed = 0;
		int		 j;

		close(start[1]);
		close(res[0]);
		if (shm_open_segment(inst, p, &seg, &cause) != FA_OK)
			_exit(1);
		barrier_wait(start[0]);
		for (j = 0; j < per; j++)
			allowed += ratelimit_check(shm_ratelimit(seg), pol, key,
			    strlen(key), shm_now(), NULL) == FA_OK;
		_exit(write(res[1], &allowed, sizeof allowed) ==
		    sizeof allowed ? 0 : 2);
	}
	close(start[0]);
	close(res[1]);
	close(start[1]);
	for (i = 0; i < n; i++) {
		ck_assert_int_eq(read(res[0], &a, sizeof a), (ssize_t)sizeof a);
		total += a;
	}
	close(res[0]);
	for (i = 0; i < n; i++)
		ck_assert(wait_ok(pids[i]));
	return total;
}

START_TEST(test_chaos)
{
	struct ratelimit_policy	 pol;
	struct shm_params	 p;
	struct shm_stats	 st, st2;
	struct shm		*seg;
	struct book		*book;
	struct cache		*c;
	pid_t			 pids[WORKERS];
	uint8_t			 buf[VALUE_MAX];
	char			 key[32], *cause = NULL;
	size_t			 len;
	uint64_t		 end, t, worst = 0, start, decisions, counted;
	unsigned		 seed = 4242, kills = 0, restarts = 0, k, i;
	int			 rc;

	params(&p, 16384, 512, VALUE_MAX);
	inst_new();
	book = mmap(NULL, sizeof *book, PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ck_assert(book != MAP_FAILED);
	memset(book, 0, sizeof *book);

	for (i = 0; i < WORKERS; i++)
		pids[i] = spawn(&p, book, seed + i);
	end = shm_now() + CHAOS_US;
	while (shm_now() < end) {
		usleep((useconds_t)(rand_r(&seed) % 3000));
		if (++kills % 100 == 0) {
			/* All at once, as when the web server restarts. */
			for (i = 0; i < WORKERS; i++)
				kill_reap(pids[i]);
			for (i = 0; i < WORKERS; i++)
				pids[i] = spawn(&p, book, rand_r(&seed));
			restarts++;
			continue;
		}
		i = (unsigned)rand_r(&seed) % WORKERS;
		kill_reap(pids[i]);
		pids[i] = spawn(&p, book, rand_r(&seed));
	}
	for (i = 0; i < WORKERS; i++)
		kill_reap(pids[i]);
	kills += restarts * (WORKERS - 1) + WORKERS;

	fprintf(stderr, "chaos: %u kills, %llu attaches, %llu ops, %llu "
	    "decisions, %llu verified hits, %llu torn, %llu bad\n", kills,
	    (unsigned long long)book->attached, (unsigned long long)book->ops,
	    (unsigned long long)book->decisions,
	    (unsigned long long)book->hits, (unsigned long long)book->torn,
	    (unsigned long long)book->bad);
	ck_assert_uint_eq(book->torn, 0);
	ck_assert_uint_eq(book->bad, 0);
	/* Floors low enough for valgrind (about 50 times slower). */
	ck_assert_uint_gt(book->hits, 1000);
	ck_assert_uint_gt(book->attached, 100);

	/* Past the claim grace: every dead writer's claim is now recoverable. */
	usleep(150 * 1000);
	seg = seg_open(&p);
	c = shm_cache(seg);

	/* The counters add up: a kill can only lose the worker's own count. */
	shm_stats(seg, shm_now(), &st);
	decisions = book->decisions;
	counted = 0;
	for (i = 0; i < 4; i++)
		counted += st.ratelimit.allowed[i] + st.ratelimit.limited[i];
	ck_assert_uint_ge(counted, decisions);
	ck_assert_uint_le(counted, decisions + kills);

	/* Every cache operation completes promptly; stored keys come back. */
	start = shm_now();
	for (k = 0; k < CACHE_KEYS; k++) {
		snprintf(key, sizeof key, "c-%u", k);
		t = shm_now();
		rc = cache_get(c, CACHE_CLIENT, key, strlen(key), shm_now(), buf,
		    sizeof buf, &len);
		ck_assert(rc == FA_NOTFOUND || (rc == FA_OK &&
		    val_check(buf, len, k)));
		len = val_make(buf, sizeof buf, k, 0, k);
		ck_assert_int_eq(cache_put(c, CACHE_CLIENT, key, strlen(key), buf,
		    len, 60 * SEC, shm_now(), NULL), FA_OK);
		ck_assert_int_eq(cache_get(c, CACHE_CLIENT, key, strlen(key),
		    shm_now(), buf, sizeof buf, &len), FA_OK);
		ck_assert(val_check(buf, len, k));
		if (shm_now() - t > worst)
			worst = shm_now() - t;
	}
	fprintf(stderr, "chaos: %u cache keys in %llu ms, slowest get+put+get "
	    "%llu us, %llu claims recovered by puts\n", CACHE_KEYS,
	    (unsigned long long)ms_since(start), (unsigned long long)worst,
	    (unsigned long long)st.cache.recovered);
	ck_assert_uint_lt(worst, 50 * 1000);
	/* No slot stays claimed by a dead process. */
	k = cache_sweep(c);
	shm_stats(seg, shm_now(), &st2);
	fprintf(stderr, "chaos: sweep recovered %u, %llu claimed after, "
	    "cache %llu/%llu used, limiter %llu/%llu used\n", k,
	    (unsigned long long)st2.cache.claimed,
	    (unsigned long long)st2.cache.used,
	    (unsigned long long)st2.cache.entries,
	    (unsigned long long)st2.ratelimit.used,
	    (unsigned long long)st2.ratelimit.entries);
	ck_assert_uint_eq(st2.cache.claimed, 0);

	/* Every limiter check completes promptly. */
	start = shm_now();
	ck_assert_int_eq(ratelimit_policy_init(&pol, 5, 1, 1000 * SEC, 37,
	    &cause), FA_OK);
	for (i = 0; i < 20000; i++) {
		snprintf(key, sizeof key, "rl-%u", i % RL_KEYS);
		ratelimit_check(shm_ratelimit(seg), &pol, key, strlen(key),
		    shm_now(), NULL);
	}
	ck_assert_uint_lt(ms_since(start), 2000);

	/* Still enforcing: fresh keys allow exactly the burst in total. */
	shm_stats(seg, shm_now(), &st);
	for (i = 0; i < 3; i++) {
		snprintf(key, sizeof key, "after-chaos-%u", i);
		ck_assert_uint_eq(rl_hammer(&p, &pol, key, WORKERS, 100), 37);
	}
	shm_stats(seg, shm_now(), &st2);
	ck_assert_uint_eq(st2.ratelimit.allowed[5] - st.ratelimit.allowed[5],
	    3 * 37);
	ck_assert_uint_eq(st2.ratelimit.limited[5] - st.ratelimit.limited[5],
	    3 * (WORKERS * 100 - 37));
	shm_close(seg);
	munmap(book, sizeof *book);
}
END_TEST

/* --- a writer that stops or dies holding a claim ------------------------- */

START_TEST(test_writer_stopped_then_killed)
{
	struct shm_params	 p;
	struct shm_stats	 st;
	struct shm		*seg;
	struct cache		*c;
	char			 out[64];
	size_t			 outlen;
	uint64_t		 t;
	pid_t			 pid;
	int			 status, reaped;

	params(&p, 64, 64, 64);
	inst_new();
	for (reaped = 0; reaped <= 1; reaped++) {
		seg = seg_open(&p);
		c = shm_cache(seg);
		ck_assert_int_eq(cache_put(c, CACHE_CLIENT, "victim", 6, "v1", 2,
		    60 * SEC, shm_now(), NULL), FA_OK);
		if ((pid = fork()) == 0) {
			struct shm	*s = NULL;
			char		*cause = NULL;

			if (shm_open_segment(inst, &p, &s, &cause) != FA_OK)
				_exit(1);
			shm_test_hook = hook_stop;
			cache_put(shm_cache(s), CACHE_CLIENT, "victim", 6,
			    "v2-from-the-child", 17, 60 * SEC, shm_now(), NULL);
			_exit(0);
		}
		ck_assert_int_eq(waitpid(pid, &status, WUNTRACED), pid);
		ck_assert(WIFSTOPPED(status));

		/* Readers do not wait for it: a prompt miss. */
		t = shm_now();
		ck_assert_int_eq(cache_get(c, CACHE_CLIENT, "victim", 6,
		    shm_now(), out, sizeof out, &outlen), FA_NOTFOUND);
		ck_assert_uint_lt(shm_now() - t, 10000);
		shm_stats(seg, shm_now(), &st);
		ck_assert_uint_eq(st.cache.claimed, 1);
		/* Alive, even stopped, it keeps its claim. */
		usleep(150 * 1000);
		ck_assert_int_eq(cache_put(c, CACHE_CLIENT, "victim", 6, "v3", 2,
		    60 * SEC, shm_now(), NULL), FA_DENIED);
		ck_assert_uint_eq(cache_sweep(c), 0);
		/* Other keys are unaffected. */
		ck_assert_int_eq(cache_put(c, CACHE_CLIENT, "other", 5, "o", 1,
		    60 * SEC, shm_now(), NULL), FA_OK);

		kill(pid, SIGKILL);
		if (reaped)
			ck_assert_int_eq(waitpid(pid, &status, 0), pid);
		else	/* a zombie: dead, though the pid still exists */
			ck_assert_int_eq(waitid(P_PID, (id_t)pid, &(siginfo_t){0},
			    WEXITED | WNOWAIT), 0);
		ck_assert_int_eq(cache_get(c, CACHE_CLIENT, "victim", 6,
		    shm_now(), out, sizeof out, &outlen), FA_NOTFOUND);
		/* A later writer takes the entry over. */
		ck_assert_int_eq(cache_put(c, CACHE_CLIENT, "victim", 6, "v3", 2,
		    60 * SEC, shm_now(), NULL), FA_OK);
		ck_assert_int_eq(cache_get(c, CACHE_CLIENT, "victim", 6,
		    shm_now(), out, sizeof out, &outlen), FA_OK);
		ck_assert(outlen == 2 && memcmp(out, "v3", 2) == 0);
		shm_stats(seg, shm_now(), &st);
		ck_assert_uint_eq(st.cache.claimed, 0);
		ck_assert_uint_eq(st.cache.recovered, 1);
		if (!reaped)
			ck_assert_int_eq(waitpid(pid, &status, 0), pid);
		shm_close(seg);
		teardown();
		inst_new();
	}
}
END_TEST

START_TEST(test_writer_killed_swept)
{
	struct shm_params	 p;
	struct shm_stats	 st;
	struct shm		*seg;
	struct cache		*c;
	char			 out[64];
	size_t			 outlen;
	pid_t			 pid;
	int			 status;

	params(&p, 64, 64, 64);
	inst_new();
	seg = seg_open(&p);
	c = shm_cache(seg);
	if ((pid = fork()) == 0) {
		struct shm	*s = NULL;
		char		*cause = NULL;

		if (shm_open_segment(inst, &p, &s, &cause) != FA_OK)
			_exit(1);
		shm_test_hook = hook_kill;
		cache_put(shm_cache(s), CACHE_REVOCATION, "jti", 3, "half", 4,
		    60 * SEC, shm_now(), NULL);
		_exit(0);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	ck_assert_int_eq(cache_get(c, CACHE_REVOCATION, "jti", 3, shm_now(), out,
	    sizeof out, &outlen), FA_NOTFOUND);
	/* Within the grace a claim counts as live; then it is recovered. */
	ck_assert_uint_eq(cache_sweep(c), 0);
	usleep(150 * 1000);
	ck_assert_uint_eq(cache_sweep(c), 1);
	shm_stats(seg, shm_now(), &st);
	ck_assert_uint_eq(st.cache.claimed, 0);
	ck_assert_uint_eq(st.cache.used, 0);
	/* Emptied, never half-read. */
	ck_assert_int_eq(cache_get(c, CACHE_REVOCATION, "jti", 3, shm_now(), out,
	    sizeof out, &outlen), FA_NOTFOUND);
	ck_assert_int_eq(cache_put(c, CACHE_REVOCATION, "jti", 3, "full", 4,
	    60 * SEC, shm_now(), NULL), FA_OK);
	ck_assert_int_eq(cache_get(c, CACHE_REVOCATION, "jti", 3, shm_now(), out,
	    sizeof out, &outlen), FA_OK);
	ck_assert(outlen == 4 && memcmp(out, "full", 4) == 0);
	shm_close(seg);
}
END_TEST

/* --- processes killed while attaching ------------------------------------ */

START_TEST(test_killed_while_attaching)
{
	struct shm_params	 p1, p2;
	struct shm		*seg;
	pid_t			 pids[4];
	uint64_t		 start, worst = 0;
	unsigned		 seed = 99;
	int			 round, i;

	params(&p1, 4096, 1024, 256);
	params(&p2, 8192, 1024, 256);	/* half of them want another size */
	for (round = 0; round < 40; round++) {
		inst_new();
		for (i = 0; i < 4; i++) {
			if ((pids[i] = fork()) != 0)
				continue;
			for (;;) {
				struct shm	*s = NULL;
				char		*cause = NULL;

				if (shm_open_segment(inst, i % 2 ? &p2 : &p1, &s,
				    &cause) == FA_OK)
					shm_close(s);
				free(cause);
			}
		}
		usleep((useconds_t)(rand_r(&seed) % 4000));
		for (i = 0; i < 4; i++)
			kill_reap(pids[i]);
		start = shm_now();
		seg = seg_open(&p1);
		if (shm_now() - start > worst)
			worst = shm_now() - start;
		ck_assert_int_eq(cache_put(shm_cache(seg), CACHE_CLIENT, "k", 1,
		    "v", 1, SEC, shm_now(), NULL), FA_OK);
		shm_close(seg);
		teardown();
	}
	fprintf(stderr, "attach after kills: slowest %llu us\n",
	    (unsigned long long)worst);
	ck_assert_uint_lt(worst, 1000 * 1000);
}
END_TEST

static Suite *
crash_suite(void)
{
	Suite	*s = suite_create("shm_crash");
	TCase	*tc;

	tc = tcase_create("crash");
	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_chaos);
	tcase_add_test(tc, test_writer_stopped_then_killed);
	tcase_add_test(tc, test_writer_killed_swept);
	tcase_add_test(tc, test_killed_while_attaching);
	suite_add_tcase(s, tc);
	return s;
}

static void
cleanup_segments(void)
{
	DIR		*d;
	struct dirent	*de;
	char		 prefix[64], name[300];

	snprintf(prefix, sizeof prefix, "fastauth.tshmc-%d-", (int)main_pid);
	if ((d = opendir("/dev/shm")) == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if (strncmp(de->d_name, prefix, strlen(prefix)) != 0)
			continue;
		snprintf(name, sizeof name, "/%s", de->d_name);
		shm_unlink(name);
	}
	closedir(d);
}

int
main(void)
{
	SRunner	*sr;
	int	 failed;

	main_pid = getpid();
	sr = srunner_create(crash_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	if (getpid() == main_pid)
		cleanup_segments();
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
