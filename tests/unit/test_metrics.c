/*
 * test_metrics.c -- Check suite for the shared-memory metrics slots, the
 * anomaly detector and address lists.
 *
 * Slots with real processes: forked children claim slots, record, and are
 * killed with SIGKILL; their slots are reclaimed and folded into the retired
 * slot and the sums never go backwards -- also when the folder itself is
 * killed half-way through a fold, when there are more processes than slots,
 * and while the parent kills and replaces recording processes at random for
 * a couple of seconds, checking every snapshot against the one before.
 *
 * Segments are named "tmet-<pid of main>-<n>" and unlinked at the end of
 * each test and of main, failed tests included.
 */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <sys/mman.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <check.h>

#include "core/cidr.h"
#include "core/fastauth.h"
#include "shm/anomaly.h"
#include "shm/metrics.h"
#include "shm/shm.h"

#define SEC	1000000ULL

static pid_t	main_pid;
static char	inst[SHM_INSTANCE_MAX + 1];
static int	inst_n;

static const char *
inst_new(void)
{
	snprintf(inst, sizeof inst, "tmet-%d-%d", (int)main_pid, ++inst_n);
	return inst;
}

static void
teardown(void)
{
	char *cause = NULL;

	metrics_test_hook = NULL;
	if (inst[0] != '\0')
		shm_unlink_segment(inst, &cause);
	free(cause);
	inst[0] = '\0';
}

static struct shm *
seg_open(uint32_t slots)
{
	struct shm_params p;
	struct shm *seg = NULL;
	char *cause = NULL;

	shm_params_default(&p);
	p.ratelimit_entries = 64;
	p.cache_entries = 64;
	p.cache_value_max = 64;
	p.metrics_slots = slots;
	p.anomaly_entries = 64;
	ck_assert_msg(shm_open_segment(inst, &p, &seg, &cause) == FA_OK,
	    "shm_open_segment: %s", cause ? cause : "?");
	return seg;
}

/* What one recording round adds. */
static void
record_round(void)
{
	metrics_request(METRICS_EP_TOKEN, 200, 700);
	metrics_request(METRICS_EP_INTROSPECT, 401, 30000000);	/* +Inf bucket */
	metrics_count(METRICS_TOKENS_ISSUED + METRICS_GRANT_PASSWORD, 1);
	metrics_count(METRICS_EVENTS + 3, 2);
}

static void
check_rounds(const struct metrics_snapshot *s, uint64_t n)
{
	ck_assert_uint_eq(s->requests[METRICS_EP_TOKEN][0], n);	/* 200 */
	ck_assert_uint_eq(s->buckets[METRICS_EP_TOKEN][1], n);	/* <= 1 ms */
	ck_assert_uint_eq(s->buckets[METRICS_EP_INTROSPECT][METRICS_BUCKETS - 1], n);
	ck_assert_uint_eq(s->dur_sum_us[METRICS_EP_TOKEN], 700 * n);
	ck_assert_uint_eq(s->counters[METRICS_TOKENS_ISSUED + METRICS_GRANT_PASSWORD], n);
	ck_assert_uint_eq(s->counters[METRICS_EVENTS + 3], 2 * n);
}

static void
check_rounds_at_least(const struct metrics_snapshot *s, uint64_t n)
{
	ck_assert_uint_ge(s->requests[METRICS_EP_TOKEN][0], n);
	ck_assert_uint_ge(s->buckets[METRICS_EP_TOKEN][1], n);
	ck_assert_uint_ge(s->buckets[METRICS_EP_INTROSPECT][METRICS_BUCKETS - 1], n);
	ck_assert_uint_ge(s->dur_sum_us[METRICS_EP_TOKEN], 700 * n);
	ck_assert_uint_ge(s->counters[METRICS_TOKENS_ISSUED + METRICS_GRANT_PASSWORD], n);
	ck_assert_uint_ge(s->counters[METRICS_EVENTS + 3], 2 * n);
}

/*
 * Fork a child that attaches to seg, records rounds rounds, writes its
 * metrics_attach result as one byte to fd and sleeps until killed.
 */
static pid_t
spawn_recorder(struct shm *seg, int rounds, int fd)
{
	pid_t pid = fork();
	char rc;
	int i;

	ck_assert_int_ge(pid, 0);
	if (pid != 0)
		return pid;
	rc = (char)metrics_attach(shm_metrics(seg));
	for (i = 0; i < rounds; i++)
		record_round();
	if (write(fd, &rc, 1) != 1)
		_exit(2);
	for (;;)
		pause();
}

static char
read_byte(int fd)
{
	char c = 0x7f;

	ck_assert_int_eq(read(fd, &c, 1), 1);
	return c;
}

static void
kill_wait(pid_t pid)
{
	int st;

	kill(pid, SIGKILL);
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
}

START_TEST(test_claim_record_sum)
{
	struct metrics_snapshot s;
	struct shm *seg;

	inst_new();
	seg = seg_open(8);
	ck_assert_int_eq(metrics_attach(shm_metrics(seg)), FA_OK);
	record_round();
	record_round();
	metrics_snapshot(shm_metrics(seg), &s);
	check_rounds(&s, 2);
	ck_assert_uint_eq(s.live, 1);
	ck_assert_uint_eq(s.slots, 8);
	ck_assert_uint_eq(s.retired, 0);
	/* Detaching folds our slot: the sums stay, the slot is free. */
	metrics_detach();
	record_round();		/* not attached: not counted */
	metrics_snapshot(shm_metrics(seg), &s);
	check_rounds(&s, 2);
	ck_assert_uint_eq(s.live, 0);
	ck_assert_uint_eq(s.retired, 1);
	shm_close(seg);
}
END_TEST

START_TEST(test_sigkill_reclaim_fold)
{
	struct metrics_snapshot s;
	struct shm *seg;
	pid_t kids[3];
	int pfd[2], i;

	inst_new();
	seg = seg_open(4);
	ck_assert_int_eq(pipe(pfd), 0);
	for (i = 0; i < 3; i++)
		kids[i] = spawn_recorder(seg, 10 * (i + 1), pfd[1]);
	for (i = 0; i < 3; i++)
		ck_assert_int_eq(read_byte(pfd[0]), FA_OK);
	metrics_snapshot(shm_metrics(seg), &s);
	ck_assert_uint_eq(s.live, 3);
	check_rounds(&s, 60);
	/* Nobody is dead yet: nothing to reap. */
	ck_assert_uint_eq(metrics_reap(shm_metrics(seg)), 0);

	for (i = 0; i < 3; i++)
		kill_wait(kids[i]);
	/* Dead but not reaped: still counted (as slots of dead owners). */
	metrics_snapshot(shm_metrics(seg), &s);
	check_rounds(&s, 60);
	ck_assert_uint_eq(metrics_reap(shm_metrics(seg)), 3);
	metrics_snapshot(shm_metrics(seg), &s);
	check_rounds(&s, 60);
	ck_assert_uint_eq(s.live, 0);
	ck_assert_uint_eq(s.retired, 3);
	ck_assert_uint_eq(metrics_reap(shm_metrics(seg)), 0);

	/* The slots are free again: four new processes fit, and add up. */
	for (i = 0; i < 3; i++)
		kids[i] = spawn_recorder(seg, 5, pfd[1]);
	for (i = 0; i < 3; i++)
		ck_assert_int_eq(read_byte(pfd[0]), FA_OK);
	ck_assert_int_eq(metrics_attach(shm_metrics(seg)), FA_OK);
	metrics_snapshot(shm_metrics(seg), &s);
	ck_assert_uint_eq(s.live, 4);
	check_rounds(&s, 75);
	for (i = 0; i < 3; i++)
		kill_wait(kids[i]);
	ck_assert_uint_eq(metrics_reap(shm_metrics(seg)), 3);
	metrics_snapshot(shm_metrics(seg), &s);
	check_rounds(&s, 75);
	ck_assert_uint_eq(s.live, 1);
	close(pfd[0]);
	close(pfd[1]);
	metrics_detach();
	shm_close(seg);
}
END_TEST

static void
die_now(void)
{
	raise(SIGKILL);
}

START_TEST(test_folder_killed_mid_fold)
{
	struct metrics_snapshot s;
	struct shm *seg;
	pid_t victim, folder;
	int pfd[2], st;

	inst_new();
	seg = seg_open(4);
	ck_assert_int_eq(pipe(pfd), 0);
	victim = spawn_recorder(seg, 10, pfd[1]);
	ck_assert_int_eq(read_byte(pfd[0]), FA_OK);
	kill_wait(victim);
	/* Another process starts folding the dead slot and is killed half-way. */
	if ((folder = fork()) == 0) {
		metrics_test_hook = die_now;
		metrics_reap(shm_metrics(seg));
		_exit(3);	/* the hook should have killed us */
	}
	ck_assert_int_eq(waitpid(folder, &st, 0), folder);
	ck_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
	/* A scrape now waits for the fold, then gives up: never less than sent. */
	metrics_snapshot(shm_metrics(seg), &s);
	check_rounds_at_least(&s, 10);
	/* The next reaper takes the dead folder's lock over and finishes. */
	ck_assert_uint_ge(metrics_reap(shm_metrics(seg)), 1);
	metrics_snapshot(shm_metrics(seg), &s);
	check_rounds_at_least(&s, 10);
	ck_assert_uint_eq(s.live, 0);
	ck_assert_uint_eq(s.retired, 1);
	/* At most the one word being moved was counted twice. */
	ck_assert_uint_le(s.requests[METRICS_EP_TOKEN][0] +
	    s.buckets[METRICS_EP_TOKEN][1] +
	    s.buckets[METRICS_EP_INTROSPECT][METRICS_BUCKETS - 1] +
	    s.counters[METRICS_TOKENS_ISSUED + METRICS_GRANT_PASSWORD] +
	    s.counters[METRICS_EVENTS + 3], 10 + 10 + 10 + 10 + 20 + 20);
	/* And the region works: a new process claims a slot and counts. */
	victim = spawn_recorder(seg, 1, pfd[1]);
	ck_assert_int_eq(read_byte(pfd[0]), FA_OK);
	kill_wait(victim);
	close(pfd[0]);
	close(pfd[1]);
	shm_close(seg);
}
END_TEST

START_TEST(test_more_processes_than_slots)
{
	struct metrics_snapshot s;
	struct shm *seg;
	pid_t a, b;
	int pfd[2];

	inst_new();
	seg = seg_open(2);
	ck_assert_int_eq(pipe(pfd), 0);
	ck_assert_int_eq(metrics_attach(shm_metrics(seg)), FA_OK);
	a = spawn_recorder(seg, 4, pfd[1]);
	ck_assert_int_eq(read_byte(pfd[0]), FA_OK);
	/* No slot left: it counts in the retired slot, nothing is lost. */
	b = spawn_recorder(seg, 6, pfd[1]);
	ck_assert_int_eq(read_byte(pfd[0]), FA_LIMIT);
	metrics_snapshot(shm_metrics(seg), &s);
	check_rounds(&s, 10);
	ck_assert_uint_eq(s.live, 2);
	ck_assert_uint_eq(s.overflow, 1);
	kill_wait(a);
	kill_wait(b);
	ck_assert_uint_eq(metrics_reap(shm_metrics(seg)), 1);
	metrics_snapshot(shm_metrics(seg), &s);
	check_rounds(&s, 10);
	ck_assert_uint_eq(s.live, 1);
	close(pfd[0]);
	close(pfd[1]);
	metrics_detach();
	shm_close(seg);
}
END_TEST

/* A recorder that never stops, and reaps now and then (so folders die too). */
static pid_t
spawn_busy(struct shm *seg)
{
	pid_t pid = fork();
	unsigned long n = 0;

	ck_assert_int_ge(pid, 0);
	if (pid != 0)
		return pid;
	metrics_attach(shm_metrics(seg));
	for (;;) {
		record_round();
		if (++n % 5000 == 0)
			metrics_reap(shm_metrics(seg));
	}
}

static void
snap_not_less(const struct metrics_snapshot *a, const struct metrics_snapshot *b)
{
	int e, i;

	for (e = 0; e < METRICS_EP_COUNT; e++) {
		for (i = 0; i < METRICS_STATUS_COUNT; i++)
			ck_assert_uint_ge(b->requests[e][i], a->requests[e][i]);
		for (i = 0; i < METRICS_BUCKETS; i++)
			ck_assert_uint_ge(b->buckets[e][i], a->buckets[e][i]);
		ck_assert_uint_ge(b->dur_sum_us[e], a->dur_sum_us[e]);
	}
	for (i = 0; i < METRICS_COUNTER_COUNT; i++)
		ck_assert_uint_ge(b->counters[i], a->counters[i]);
}

START_TEST(test_chaos_never_backwards)
{
	struct metrics_snapshot *prev = calloc(1, sizeof *prev);
	struct metrics_snapshot *cur = calloc(1, sizeof *cur);
	struct shm *seg;
	pid_t kids[4];
	uint64_t start;
	unsigned kills = 0, snaps = 0, r = 12345;
	int i;

	inst_new();
	seg = seg_open(6);
	for (i = 0; i < 4; i++)
		kids[i] = spawn_busy(seg);
	start = shm_now();
	while (shm_now() - start < 2 * SEC) {
		metrics_snapshot(shm_metrics(seg), cur);
		snap_not_less(prev, cur);
		memcpy(prev, cur, sizeof *cur);
		snaps++;
		r = r * 1103515245 + 12345;
		if ((r >> 16) % 8 == 0) {
			i = (int)((r >> 8) % 4);
			kill_wait(kids[i]);
			kids[i] = spawn_busy(seg);
			kills++;
		}
		if ((r >> 20) % 4 == 0)
			metrics_reap(shm_metrics(seg));
		usleep(2000);
	}
	for (i = 0; i < 4; i++)
		kill_wait(kids[i]);
	metrics_reap(shm_metrics(seg));
	metrics_snapshot(shm_metrics(seg), cur);
	snap_not_less(prev, cur);
	ck_assert_uint_eq(cur->live, 0);
	ck_assert_uint_ge(cur->retired, kills);
	ck_assert_uint_gt(kills, 5);
	ck_assert_uint_gt(cur->requests[METRICS_EP_TOKEN][0], 0);
	fprintf(stderr, "chaos: %u snapshots, %u kills, %llu rounds counted\n", snaps,
	    kills, (unsigned long long)cur->requests[METRICS_EP_TOKEN][0]);
	free(prev);
	free(cur);
	shm_close(seg);
}
END_TEST

/* --- anomaly detector ------------------------------------------------------- */

START_TEST(test_anomaly_once_per_window)
{
	struct anomaly_params p;
	struct anomaly_stats st;
	struct anomaly *a;
	struct shm *seg;
	uint64_t t0 = 1000 * 60 * SEC;	/* the start of a window */
	int i, raised = 0;

	inst_new();
	seg = seg_open(4);
	a = shm_anomaly(seg);
	memset(&p, 0, sizeof p);
	p.window_us = 60 * SEC;
	p.threshold[ANOMALY_INVALID_TOKEN] = 20;
	p.threshold[ANOMALY_LOGIN] = 5;
	p.suspect_us = 120 * SEC;
	/* Below the threshold, from many addresses: nothing. */
	for (i = 0; i < 200; i++) {
		char addr[32];

		snprintf(addr, sizeof addr, "10.0.%d.%d", i / 10, i % 10);
		raised += anomaly_note(a, &p, ANOMALY_INVALID_TOKEN, addr, t0 + (uint64_t)i);
		raised += anomaly_note(a, &p, ANOMALY_INVALID_TOKEN, addr, t0 + (uint64_t)i);
	}
	ck_assert_int_eq(raised, 0);
	ck_assert_int_eq(anomaly_suspect(a, &p, "10.0.0.1", t0 + SEC), 0);
	/* One address over it: raised exactly once in the window. */
	for (i = 0; i < 100; i++)
		raised += anomaly_note(a, &p, ANOMALY_INVALID_TOKEN, "192.0.2.7",
		    t0 + SEC + (uint64_t)i);
	ck_assert_int_eq(raised, 1);
	ck_assert_int_eq(anomaly_suspect(a, &p, "192.0.2.7", t0 + 2 * SEC), 1);
	ck_assert_int_eq(anomaly_suspect(a, &p, "192.0.2.8", t0 + 2 * SEC), 0);
	/* Other kinds have their own threshold and alarm. */
	for (i = 0; i < 4; i++)
		raised += anomaly_note(a, &p, ANOMALY_LOGIN, "192.0.2.7", t0 + 3 * SEC);
	ck_assert_int_eq(raised, 1);
	raised += anomaly_note(a, &p, ANOMALY_LOGIN, "192.0.2.7", t0 + 3 * SEC);
	ck_assert_int_eq(raised, 2);
	anomaly_stats(a, &p, t0 + 4 * SEC, &st);
	ck_assert_uint_eq(st.suspected[ANOMALY_INVALID_TOKEN], 1);
	ck_assert_uint_eq(st.suspected[ANOMALY_LOGIN], 1);
	ck_assert_uint_eq(st.suspected[ANOMALY_CLIENT_AUTH], 0);
	ck_assert_uint_eq(st.raised[ANOMALY_INVALID_TOKEN], 1);
	/*
	 * Next window: the previous window's count still weighs in (sliding),
	 * so the attack goes on being noticed, once more for this window.
	 */
	raised = anomaly_note(a, &p, ANOMALY_INVALID_TOKEN, "192.0.2.7", t0 + 61 * SEC);
	ck_assert_int_eq(raised, 1);
	ck_assert_int_eq(anomaly_note(a, &p, ANOMALY_INVALID_TOKEN, "192.0.2.7",
	    t0 + 62 * SEC), 0);
	/* Long after: forgotten, not suspect. */
	ck_assert_int_eq(anomaly_suspect(a, &p, "192.0.2.7", t0 + 400 * SEC), 0);
	ck_assert_int_eq(anomaly_note(a, &p, ANOMALY_INVALID_TOKEN, "192.0.2.7",
	    t0 + 400 * SEC), 0);
	/* Threshold 0 is off. */
	for (i = 0; i < 1000; i++)
		ck_assert_int_eq(anomaly_note(a, &p, ANOMALY_CLIENT_AUTH, "192.0.2.9",
		    t0 + 500 * SEC), 0);
	shm_close(seg);
}
END_TEST

START_TEST(test_anomaly_latency)
{
	static const uint64_t bounds[4] = { 1000, 10000, 100000, 0 };
	uint64_t counts[4] = { 0, 0, 0, 0 }, p95;
	struct anomaly_latency l;
	struct anomaly *a;
	struct shm *seg;
	int i;

	inst_new();
	seg = seg_open(4);
	a = shm_anomaly(seg);
	ck_assert_int_eq(anomaly_latency_due(a, 5 * SEC, 10 * SEC), 1);
	ck_assert_int_eq(anomaly_latency_due(a, 6 * SEC, 10 * SEC), 0);
	ck_assert_int_eq(anomaly_latency_due(a, 16 * SEC, 10 * SEC), 1);
	/* Normal windows: everything under 1 ms; the baseline settles there. */
	for (i = 0; i < 5; i++) {
		counts[0] += 100;
		ck_assert_int_eq(anomaly_latency_feed(a, 0, counts, bounds, 4, 50, 4.0,
		    5000, &p95), 0);
		ck_assert_uint_eq(p95, 1000);
	}
	/* Too few requests: no verdict, the window grows. */
	counts[2] += 10;
	ck_assert_int_eq(anomaly_latency_feed(a, 0, counts, bounds, 4, 50, 4.0, 5000,
	    &p95), 0);
	ck_assert_uint_eq(p95, 0);
	/* Then most requests take up to 100 ms: anomalous, raised once. */
	counts[2] += 90;
	ck_assert_int_eq(anomaly_latency_feed(a, 0, counts, bounds, 4, 50, 4.0, 5000,
	    &p95), 1);
	ck_assert_uint_eq(p95, 100000);
	anomaly_latency_get(a, 0, &l);
	ck_assert_int_eq(l.anomalous, 1);
	ck_assert_uint_eq(l.baseline_us, 1000);	/* the attack is not the baseline */
	counts[2] += 100;
	ck_assert_int_eq(anomaly_latency_feed(a, 0, counts, bounds, 4, 50, 4.0, 5000,
	    &p95), 0);
	/* Back to normal. */
	counts[0] += 100;
	ck_assert_int_eq(anomaly_latency_feed(a, 0, counts, bounds, 4, 50, 4.0, 5000,
	    &p95), 0);
	anomaly_latency_get(a, 0, &l);
	ck_assert_int_eq(l.anomalous, 0);
	/* Another endpoint is unaffected. */
	anomaly_latency_get(a, 1, &l);
	ck_assert_uint_eq(l.baseline_us, 0);
	shm_close(seg);
}
END_TEST

/* --- address lists ------------------------------------------------------------ */

START_TEST(test_cidr)
{
	struct cidr_list l;
	char *cause = NULL;
	static const char *bad[] = {
		"127.0.0.1/33", "10.0.0.1/8", "::1/129", "1.2.3", "10.0.0.0/",
		"10.0.0.0/-1", "10.0.0.0/8x", "fe80::1%eth0", "localhost",
		"::ffff:10.0.0.0/104",
	};
	size_t i;

	ck_assert_int_eq(cidr_list_parse("127.0.0.1, 10.0.0.0/8\t::1 2001:db8::/32",
	    &l, &cause), FA_OK);
	ck_assert_uint_eq(l.n, 4);
	ck_assert_int_eq(cidr_list_match(&l, "127.0.0.1"), 1);
	ck_assert_int_eq(cidr_list_match(&l, "127.0.0.2"), 0);
	ck_assert_int_eq(cidr_list_match(&l, "10.255.1.2"), 1);
	ck_assert_int_eq(cidr_list_match(&l, "11.0.0.1"), 0);
	ck_assert_int_eq(cidr_list_match(&l, "::1"), 1);
	ck_assert_int_eq(cidr_list_match(&l, "::2"), 0);
	ck_assert_int_eq(cidr_list_match(&l, "2001:db8:1::5"), 1);
	ck_assert_int_eq(cidr_list_match(&l, "2001:db9::5"), 0);
	/* An IPv4 client on a dual-stack socket. */
	ck_assert_int_eq(cidr_list_match(&l, "::ffff:10.1.2.3"), 1);
	ck_assert_int_eq(cidr_list_match(&l, "::ffff:11.1.2.3"), 0);
	ck_assert_int_eq(cidr_list_match(&l, ""), 0);
	ck_assert_int_eq(cidr_list_match(&l, NULL), 0);
	ck_assert_int_eq(cidr_list_match(&l, "not an address"), 0);
	ck_assert_int_eq(cidr_list_parse("0.0.0.0/0", &l, &cause), FA_OK);
	ck_assert_int_eq(cidr_list_match(&l, "203.0.113.9"), 1);
	ck_assert_int_eq(cidr_list_match(&l, "2001:db8::1"), 0);
	ck_assert_int_eq(cidr_list_parse("", &l, &cause), FA_OK);
	ck_assert_uint_eq(l.n, 0);
	ck_assert_int_eq(cidr_list_match(&l, "127.0.0.1"), 0);
	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		ck_assert_msg(cidr_list_parse(bad[i], &l, &cause) == FA_ERR,
		    "accepted \"%s\"", bad[i]);
		free(cause);
		cause = NULL;
	}
	{
		char many[CIDR_LIST_MAX * 12 + 32] = "";

		for (i = 0; i <= CIDR_LIST_MAX; i++)
			strcat(many, "10.0.0.1 ");
		ck_assert_int_eq(cidr_list_parse(many, &l, &cause), FA_ERR);
		free(cause);
	}
}
END_TEST

static Suite *
metrics_suite(void)
{
	Suite *s = suite_create("metrics");
	TCase *tc = tcase_create("metrics");

	tcase_set_timeout(tc, 60);
	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_add_test(tc, test_claim_record_sum);
	tcase_add_test(tc, test_sigkill_reclaim_fold);
	tcase_add_test(tc, test_folder_killed_mid_fold);
	tcase_add_test(tc, test_more_processes_than_slots);
	tcase_add_test(tc, test_chaos_never_backwards);
	tcase_add_test(tc, test_anomaly_once_per_window);
	tcase_add_test(tc, test_anomaly_latency);
	tcase_add_test(tc, test_cidr);
	suite_add_tcase(s, tc);
	return s;
}

/* Segments a failed or crashed test left behind. */
static void
cleanup_segments(void)
{
	struct dirent *de;
	char prefix[64], name[300];
	DIR *d;

	snprintf(prefix, sizeof prefix, "fastauth.tmet-%d-", (int)main_pid);
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
	SRunner *sr;
	int failed;

	main_pid = getpid();
	sr = srunner_create(metrics_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	if (getpid() == main_pid)
		cleanup_segments();
	return failed == 0 ? 0 : 1;
}
