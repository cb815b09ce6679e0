/*
 * test_breaker.c -- the circuit breaker's state machine (clock driven by the
 * test), and the pool's use of it against a real redis-server (stopped,
 * frozen and restarted by PID through redis_fixture), plus the revocation
 * mirror's bounded-staleness window (revocation_grace).
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <check.h>

#include "core/fastauth.h"
#include "core/log.h"
#include "shm/mirror.h"
#include "store/breaker.h"
#include "store/redis_pool.h"
#include "redis_fixture.h"

static void
sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

static void
init(struct breaker *b, int failures, long window, long cooldown)
{
	struct breaker_params p = { failures, window, cooldown, 1000 };

	breaker_init(b, &p);
}

/* ------------------------------------------------------------ state machine */

START_TEST(closed_until_n_failures_in_window)
{
	struct breaker b;
	struct breaker_stats st;

	init(&b, 3, 1000, 500);
	ck_assert_int_eq(breaker_allow(&b, 10), BREAKER_PASS);
	breaker_failure(&b, 10, 0);
	breaker_failure(&b, 20, 0);
	breaker_stats(&b, 20, &st);
	ck_assert_int_eq(st.state, BREAKER_CLOSED);
	ck_assert_int_eq(breaker_allow(&b, 30), BREAKER_PASS);
	breaker_failure(&b, 30, 0);
	breaker_stats(&b, 30, &st);
	ck_assert_int_eq(st.state, BREAKER_OPEN);
	ck_assert_uint_eq(st.opens, 1);
	ck_assert_int_eq(st.retry_after_ms, 500);
	breaker_free(&b);
}
END_TEST

START_TEST(failures_spread_wider_than_window_do_not_open)
{
	struct breaker b;
	struct breaker_stats st;
	int64_t t;

	init(&b, 3, 100, 500);
	/* One failure every 60 ms: never three within 100 ms. */
	for (t = 0; t < 2000; t += 60)
		breaker_failure(&b, t, 0);
	breaker_stats(&b, 2000, &st);
	ck_assert_int_eq(st.state, BREAKER_CLOSED);
	ck_assert_uint_eq(st.opens, 0);
	ck_assert_uint_eq(st.failures, 34);
	breaker_free(&b);
}
END_TEST

START_TEST(open_rejects_then_one_probe)
{
	struct breaker b;
	struct breaker_stats st;

	init(&b, 1, 1000, 500);
	breaker_failure(&b, 100, 0);
	ck_assert_int_eq(breaker_allow(&b, 200), BREAKER_REJECT);
	ck_assert_int_eq(breaker_allow(&b, 599), BREAKER_REJECT);
	breaker_stats(&b, 599, &st);
	ck_assert_int_eq(st.retry_after_ms, 1);
	ck_assert_uint_eq(st.short_circuits, 2);
	/* Cool-down over: exactly one probe, everyone else still refused. */
	ck_assert_int_eq(breaker_allow(&b, 600), BREAKER_PROBE);
	ck_assert_int_eq(breaker_allow(&b, 601), BREAKER_REJECT);
	ck_assert_int_eq(breaker_allow(&b, 700), BREAKER_REJECT);
	breaker_stats(&b, 700, &st);
	ck_assert_int_eq(st.state, BREAKER_HALF_OPEN);
	ck_assert_uint_eq(st.probes, 1);
	breaker_success(&b, 1);
	breaker_stats(&b, 700, &st);
	ck_assert_int_eq(st.state, BREAKER_CLOSED);
	ck_assert_int_eq(breaker_allow(&b, 701), BREAKER_PASS);
	breaker_free(&b);
}
END_TEST

START_TEST(failed_probe_reopens_for_a_new_cooldown)
{
	struct breaker b;
	struct breaker_stats st;

	init(&b, 2, 1000, 300);
	breaker_failure(&b, 0, 0);
	breaker_failure(&b, 1, 0);
	ck_assert_int_eq(breaker_allow(&b, 301), BREAKER_PROBE);
	breaker_failure(&b, 350, 1);
	breaker_stats(&b, 350, &st);
	ck_assert_int_eq(st.state, BREAKER_OPEN);
	ck_assert_uint_eq(st.opens, 2);
	ck_assert_int_eq(st.retry_after_ms, 300);
	ck_assert_int_eq(breaker_allow(&b, 649), BREAKER_REJECT);
	ck_assert_int_eq(breaker_allow(&b, 650), BREAKER_PROBE);
	breaker_free(&b);
}
END_TEST

START_TEST(non_probe_success_does_not_close)
{
	struct breaker b;
	struct breaker_stats st;

	init(&b, 1, 1000, 300);
	breaker_failure(&b, 0, 0);
	/* A call that started before it opened and then succeeded. */
	breaker_success(&b, 0);
	breaker_stats(&b, 10, &st);
	ck_assert_int_eq(st.state, BREAKER_OPEN);
	breaker_free(&b);
}
END_TEST

START_TEST(silent_probe_is_replaced_after_its_lease)
{
	struct breaker b;

	init(&b, 1, 1000, 100);		/* lease 1000 ms */
	breaker_failure(&b, 0, 0);
	ck_assert_int_eq(breaker_allow(&b, 100), BREAKER_PROBE);
	ck_assert_int_eq(breaker_allow(&b, 1099), BREAKER_REJECT);
	ck_assert_int_eq(breaker_allow(&b, 1100), BREAKER_PROBE);
	breaker_free(&b);
}
END_TEST

START_TEST(closing_forgets_old_failures)
{
	struct breaker b;
	struct breaker_stats st;

	init(&b, 3, 1000, 100);
	breaker_failure(&b, 0, 0);
	breaker_failure(&b, 1, 0);
	breaker_failure(&b, 2, 0);
	ck_assert_int_eq(breaker_allow(&b, 200), BREAKER_PROBE);
	breaker_success(&b, 1);
	/* One new failure must not open it with the two from before. */
	breaker_failure(&b, 210, 0);
	breaker_stats(&b, 210, &st);
	ck_assert_int_eq(st.state, BREAKER_CLOSED);
	breaker_free(&b);
}
END_TEST

START_TEST(disabled_never_opens)
{
	struct breaker b;
	int i;

	init(&b, 0, 1000, 100);
	for (i = 0; i < 100; i++)
		breaker_failure(&b, i, 0);
	ck_assert_int_eq(breaker_allow(&b, 100), BREAKER_PASS);
	breaker_free(&b);
}
END_TEST

/* Many threads at the cool-down's end: exactly one probe among them. */
static struct breaker race_b;
static atomic_int race_probes;

static void *
race_main(void *arg)
{
	int i;

	(void)arg;
	for (i = 0; i < 1000; i++)
		if (breaker_allow(&race_b, 1000 + i % 3) == BREAKER_PROBE)
			atomic_fetch_add(&race_probes, 1);
	return NULL;
}

START_TEST(one_probe_among_threads)
{
	pthread_t th[8];
	int i;

	init(&race_b, 1, 1000, 1000);	/* lease 1000 ms: no second probe before 2000 */
	breaker_failure(&race_b, 0, 0);
	atomic_store(&race_probes, 0);
	for (i = 0; i < 8; i++)
		pthread_create(&th[i], NULL, race_main, NULL);
	for (i = 0; i < 8; i++)
		pthread_join(th[i], NULL);
	ck_assert_int_eq(atomic_load(&race_probes), 1);
	breaker_free(&race_b);
}
END_TEST

/* ------------------------------------------------- the pool, real Redis */

static struct redis_pool *
pool_for(struct redis_fixture *f, int failures, long cooldown_ms, int retries)
{
	struct redis_pool_params pp;
	struct redis_pool *p;
	char *cause = NULL;

	memset(&pp, 0, sizeof pp);
	pp.url = redis_fixture_url(f);
	pp.prefix = "tb:";
	pp.connect_timeout_ms = 200;
	pp.command_timeout_ms = 200;
	pp.backoff_min_ms = 1;
	pp.backoff_max_ms = 1;
	pp.size = 2;
	pp.breaker_failures = failures;
	pp.breaker_window_ms = 10000;
	pp.breaker_cooldown_ms = cooldown_ms;
	pp.read_retries = retries;
	p = redis_pool_new(&pp, &cause);
	ck_assert_msg(p != NULL, "pool: %s", cause ? cause : "?");
	return p;
}

static int
ping(struct redis_conn *c)
{
	redisReply *r = redis_conn_command(c, "PING");
	int ok = r != NULL && r->type == REDIS_REPLY_STATUS;

	redis_pool_reply_free(r);
	return ok;
}

START_TEST(pool_opens_short_circuits_and_recovers)
{
	struct redis_fixture *f = redis_fixture_start(NULL);
	struct redis_pool *p;
	struct redis_pool_stats st;
	struct redis_conn *c;
	int i;

	ck_assert_ptr_nonnull(f);
	p = pool_for(f, 3, 400, 0);
	c = redis_pool_conn(p, 0);
	ck_assert(ping(c));
	ck_assert_int_eq(redis_pool_breaker_state(p), BREAKER_CLOSED);
	ck_assert_int_eq(redis_fixture_stop(f), 0);
	/* Three refused connections open it (past the slot's 1 ms backoff)... */
	for (i = 0; i < 3; i++) {
		ck_assert(!ping(c));
		sleep_ms(3);
	}
	ck_assert_int_eq(redis_pool_breaker_state(p), BREAKER_OPEN);
	/* ...then calls on every slot are refused without I/O. */
	ck_assert(!ping(redis_pool_conn(p, 1)));
	ck_assert_ptr_nonnull(strstr(redis_conn_errstr(redis_pool_conn(p, 1)), "breaker"));
	redis_pool_stats(p, &st);
	ck_assert_uint_eq(st.breaker_opens, 1);
	ck_assert_uint_ge(st.short_circuits, 1);
	ck_assert_int_ge(redis_pool_retry_after(p), 1);
	/* Still down after the cool-down: the probe fails and it opens again. */
	sleep_ms(450);
	ck_assert(!ping(c));
	redis_pool_stats(p, &st);
	ck_assert_int_eq(st.breaker, BREAKER_OPEN);
	ck_assert_uint_eq(st.breaker_opens, 2);
	ck_assert_uint_eq(st.probes, 1);
	/* Back: the next probe closes it. */
	ck_assert_int_eq(redis_fixture_restart(f), 0);
	sleep_ms(450);
	ck_assert(ping(c));
	ck_assert_int_eq(redis_pool_breaker_state(p), BREAKER_CLOSED);
	ck_assert(ping(redis_pool_conn(p, 1)));
	redis_pool_free(p);
	redis_fixture_free(f);
}
END_TEST

START_TEST(pool_timeouts_open_it_and_calls_fail_fast)
{
	struct redis_fixture *f = redis_fixture_start(NULL);
	struct redis_pool *p;
	struct redis_pool_stats st;
	uint64_t before;
	int i;

	ck_assert_ptr_nonnull(f);
	p = pool_for(f, 2, 5000, 2);
	ck_assert(ping(redis_pool_conn(p, 0)));
	ck_assert(ping(redis_pool_conn(p, 1)));
	ck_assert_int_eq(redis_fixture_pause(f), 0);
	/* Timeouts are not retried (they spent the budget): two calls, two failures. */
	ck_assert(!ping(redis_pool_conn(p, 0)));
	ck_assert(!redis_conn_retry(redis_pool_conn(p, 0), 0));
	ck_assert(!ping(redis_pool_conn(p, 1)));
	ck_assert_int_eq(redis_pool_breaker_state(p), BREAKER_OPEN);
	/* Open: a hundred calls are refused without touching the server. */
	redis_pool_stats(p, &st);
	before = st.short_circuits;
	for (i = 0; i < 100; i++)
		ck_assert(!ping(redis_pool_conn(p, i % 2)));
	redis_pool_stats(p, &st);
	ck_assert_uint_eq(st.short_circuits - before, 100);
	ck_assert_uint_eq(st.failures, 2);
	ck_assert_int_eq(redis_fixture_resume(f), 0);
	redis_pool_free(p);
	redis_fixture_free(f);
}
END_TEST

START_TEST(pool_read_retry_survives_a_restart)
{
	struct redis_fixture *f = redis_fixture_start(NULL);
	struct redis_pool *p;
	struct redis_pool_stats st;
	struct redis_conn *c;
	redisReply *r;
	int attempt;

	ck_assert_ptr_nonnull(f);
	p = pool_for(f, 5, 1000, 2);
	c = redis_pool_conn(p, 0);
	ck_assert(ping(c));
	/* The server restarts under a connection: the read is retried, not lost. */
	ck_assert_int_eq(redis_fixture_restart(f), 0);
	for (attempt = 0;; attempt++) {
		r = redis_conn_command(c, "DBSIZE");
		if (r != NULL || !redis_conn_retry(c, attempt))
			break;
	}
	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(r->type, REDIS_REPLY_INTEGER);
	redis_pool_reply_free(r);
	redis_pool_stats(p, &st);
	ck_assert_int_eq(st.breaker, BREAKER_CLOSED);
	redis_pool_free(p);
	redis_fixture_free(f);
}
END_TEST

START_TEST(pool_pipeline_depth_is_bounded)
{
	struct redis_fixture *f = redis_fixture_start(NULL);
	struct redis_pool *p;
	struct redis_conn *c;
	redisReply *r;
	int i;

	ck_assert_ptr_nonnull(f);
	p = pool_for(f, 5, 1000, 0);
	c = redis_pool_conn(p, 0);
	for (i = 0; i < REDIS_POOL_PIPELINE_MAX; i++)
		ck_assert_int_eq(redis_conn_append(c, "PING"), FA_OK);
	ck_assert_int_eq(redis_conn_append(c, "PING"), FA_LIMIT);
	for (i = 0; i < REDIS_POOL_PIPELINE_MAX; i++) {
		r = redis_conn_reply(c);
		ck_assert_ptr_nonnull(r);
		redis_pool_reply_free(r);
	}
	ck_assert(ping(c));
	redis_pool_free(p);
	redis_fixture_free(f);
}
END_TEST

START_TEST(pool_wait_without_replicas_is_a_counted_shortfall)
{
	struct redis_fixture *f = redis_fixture_start(NULL);
	struct redis_pool_params pp;
	struct redis_pool *p;
	struct redis_pool_stats st;
	char *cause = NULL;

	ck_assert_ptr_nonnull(f);
	memset(&pp, 0, sizeof pp);
	pp.url = redis_fixture_url(f);
	pp.prefix = "tb:";
	pp.command_timeout_ms = 1000;
	pp.size = 1;
	pp.wait_replicas = 1;
	pp.wait_timeout_ms = 50;
	p = redis_pool_new(&pp, &cause);
	ck_assert_ptr_nonnull(p);
	ck_assert_int_eq(redis_conn_durable(redis_pool_conn(p, 0), "test"), FA_LIMIT);
	redis_pool_stats(p, &st);
	ck_assert_uint_eq(st.wait_shortfalls, 1);
	ck_assert_int_eq(st.breaker, BREAKER_CLOSED);
	redis_pool_free(p);
	redis_fixture_free(f);
}
END_TEST

START_TEST(pool_sentinel_params_checked)
{
	struct redis_pool_params pp;
	char *cause = NULL;

	memset(&pp, 0, sizeof pp);
	pp.url = "redis://127.0.0.1:1/0";
	pp.size = 1;
	pp.sentinels = "127.0.0.1:26379";
	ck_assert_ptr_null(redis_pool_new(&pp, &cause));
	free(cause);
	cause = NULL;
	pp.master_name = "m";
	pp.sentinels = "127.0.0.1";
	ck_assert_ptr_null(redis_pool_new(&pp, &cause));
	ck_assert_ptr_nonnull(strstr(cause, "host:port"));
	free(cause);
}
END_TEST

START_TEST(pool_sentinel_unreachable_fails_fast)
{
	struct redis_pool_params pp;
	struct redis_pool *p;
	char *cause = NULL;

	memset(&pp, 0, sizeof pp);
	pp.url = "redis://127.0.0.1:1/0";
	pp.size = 1;
	pp.sentinels = "127.0.0.1:1,[::1]:1";
	pp.master_name = "m";
	pp.connect_timeout_ms = 100;
	p = redis_pool_new(&pp, &cause);
	ck_assert_msg(p != NULL, "%s", cause ? cause : "");
	ck_assert(!ping(redis_pool_conn(p, 0)));
	ck_assert_ptr_nonnull(strstr(redis_conn_errstr(redis_pool_conn(p, 0)), "sentinel"));
	redis_pool_free(p);
}
END_TEST

/* ------------------------------------------------ mirror: revocation_grace */

START_TEST(mirror_grace_window)
{
	struct mirror_region m;
	uint64_t e = 0, e0;

	mirror_region_init(&m);
	ck_assert(!mirror_recent(&m, 1000, 5000000, &e));	/* never in sync */
	e0 = mirror_set_connected(&m, 1, 1000);
	ck_assert(mirror_trusted(&m, 1000, &e));
	ck_assert_uint_eq(e, e0);
	mirror_set_connected(&m, 0, 2000);
	ck_assert(!mirror_trusted(&m, 2001, &e));
	/* The epoch in sync until 2000 us is believed for grace, not longer. */
	ck_assert(mirror_recent(&m, 2000 + 5000000, 5000000, &e));
	ck_assert_uint_eq(e, e0);
	ck_assert(!mirror_recent(&m, 2001 + 5000000, 5000000, &e));
	ck_assert(!mirror_recent(&m, 2001, 0, &e));		/* grace 0: never */
	/* A silent leader that is still "connected": in sync until its last beat. */
	e0 = mirror_set_connected(&m, 1, 3000);
	mirror_beat(&m, 4000);
	ck_assert(!mirror_trusted(&m, 4000 + MIRROR_STALE_US + 1, &e));
	ck_assert(mirror_recent(&m, 4000 + 1000000, 1000000, &e));
	ck_assert_uint_eq(e, e0);
	ck_assert(!mirror_recent(&m, 4001 + 1000000, 1000000, &e));
}
END_TEST

static Suite *
breaker_suite(void)
{
	Suite *s = suite_create("breaker");
	TCase *tc = tcase_create("state machine");
	TCase *tp = tcase_create("pool");

	tcase_add_test(tc, closed_until_n_failures_in_window);
	tcase_add_test(tc, failures_spread_wider_than_window_do_not_open);
	tcase_add_test(tc, open_rejects_then_one_probe);
	tcase_add_test(tc, failed_probe_reopens_for_a_new_cooldown);
	tcase_add_test(tc, non_probe_success_does_not_close);
	tcase_add_test(tc, silent_probe_is_replaced_after_its_lease);
	tcase_add_test(tc, closing_forgets_old_failures);
	tcase_add_test(tc, disabled_never_opens);
	tcase_add_test(tc, one_probe_among_threads);
	tcase_add_test(tc, mirror_grace_window);
	suite_add_tcase(s, tc);
	tcase_set_timeout(tp, 60);
	tcase_add_test(tp, pool_opens_short_circuits_and_recovers);
	tcase_add_test(tp, pool_timeouts_open_it_and_calls_fail_fast);
	tcase_add_test(tp, pool_read_retry_survives_a_restart);
	tcase_add_test(tp, pool_pipeline_depth_is_bounded);
	tcase_add_test(tp, pool_wait_without_replicas_is_a_counted_shortfall);
	tcase_add_test(tp, pool_sentinel_params_checked);
	tcase_add_test(tp, pool_sentinel_unreachable_fails_fast);
	suite_add_tcase(s, tp);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(breaker_suite());
	int failed;

	log_open("test_breaker", 0, LOG_LEVEL_ERR);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
