/*
 * test_store.c -- redis_pool, store and keyring against a real redis-server.
 *
 * One shared server (started in main) serves the store and keyring cases,
 * flushed before each test; the pool cases that stop, pause or restart a
 * server get a private one per test (a checked fixture, so in fork mode the
 * test's own process owns and stops it). redis_fixture stops every server at
 * exit, and a server dies with its parent, so none outlives a failed run.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <check.h>

#include "core/b64.h"
#include "core/fastauth.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "crypto/crypto.h"
#include "crypto/keyring.h"
#include "store/redis_pool.h"
#include "store/store.h"
#include "redis_fixture.h"

static struct redis_fixture *shared;	/* main's server, never stopped by a test */
static struct redis_fixture *private;	/* the checked fixture's server */
static struct redis_pool *pool;		/* the checked fixture's pool on shared */
static char kekdir[256];		/* the checked fixture's temp dir for KEK files */

/* ------------------------------------------------------------------ helpers */

static long long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

static struct redis_pool *
pool_open(const char *url, long command_ms, long backoff_min, long backoff_max, int size)
{
	struct redis_pool_params p = {
		.url = url, .prefix = "t:", .connect_timeout_ms = 1000,
		.command_timeout_ms = command_ms, .backoff_min_ms = backoff_min,
		.backoff_max_ms = backoff_max, .size = size,
	};
	struct redis_pool *rp;
	char *cause = NULL;

	rp = redis_pool_new(&p, &cause);
	ck_assert_msg(rp != NULL, "redis_pool_new %s: %s", url, cause);
	return rp;
}

/* Run a command (no % formats) that must succeed with the given reply type; free the reply. */
static long long
must(struct redis_conn *c, int type, const char *cmd)
{
	redisReply *r;
	long long v;
	int i, argc = 0;
	char *copy = xstrdup(cmd), *save = NULL, *argv[16];

	for (argv[argc] = strtok_r(copy, " ", &save); argv[argc] != NULL && argc < 15;
	    argv[++argc] = strtok_r(NULL, " ", &save))
		;
	r = redis_conn_commandargv(c, argc, (const char **)argv, NULL);
	for (i = 0; i < argc; i++)
		argv[i] = NULL;
	free(copy);

	ck_assert_msg(r != NULL, "%s: %s", cmd, redis_conn_errstr(c));
	ck_assert_msg(r->type == type, "%s: reply type %d, want %d (%s)", cmd, r->type,
	    type, r->type == REDIS_REPLY_ERROR ? r->str : "");
	v = r->type == REDIS_REPLY_INTEGER ? r->integer : 0;
	freeReplyObject(r);
	return v;
}

/* Wait (up to ms) until PING answers on c, past any backoff. */
static int
wait_ping(struct redis_conn *c, long ms)
{
	long long deadline = now_ms() + ms;
	redisReply *r;

	while (now_ms() < deadline) {
		if ((r = redis_conn_command(c, "PING")) != NULL) {
			int ok = r->type == REDIS_REPLY_STATUS;

			freeReplyObject(r);
			if (ok)
				return 1;
		}
		sleep_ms(20);
	}
	return 0;
}

static void
private_setup(void)
{
	private = redis_fixture_start(NULL);
	ck_assert_msg(private != NULL, "cannot start redis-server");
}

static void
private_teardown(void)
{
	redis_fixture_free(private);
	private = NULL;
}

static void
auth_setup(void)
{
	private = redis_fixture_start("s3cr@t:pw");
	ck_assert_msg(private != NULL, "cannot start redis-server");
}

static void
shared_setup(void)
{
	ck_assert(shared != NULL);
	pool = pool_open(redis_fixture_url(shared), 2000, 50, 400, 4);
	must(redis_pool_conn(pool, 0), REDIS_REPLY_STATUS, "FLUSHALL");
	snprintf(kekdir, sizeof kekdir, "%s/kek.XXXXXX", getenv("TMPDIR"));
	ck_assert(mkdtemp(kekdir) != NULL);
}

static int
rmtree_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	if (remove(path) == -1)
		fprintf(stderr, "cannot remove %s: %s\n", path, strerror(errno));
	return 0;
}

/* rm -rf path (no symlinks followed). */
static void
rmtree(const char *path)
{
	nftw(path, rmtree_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void
shared_teardown(void)
{
	redis_pool_free(pool);
	pool = NULL;
	if (kekdir[0] != '\0') {
		rmtree(kekdir);
		kekdir[0] = '\0';
	}
}

/* ------------------------------------------------------------------- pool */

START_TEST(pool_connect_command)
{
	struct redis_pool *rp = pool_open(redis_fixture_url(private), 1000, 50, 400, 2);
	struct redis_conn *c = redis_pool_conn(rp, 0);
	const char *argv[] = { "SET", "bin", "a\0b" };
	const size_t argvlen[] = { 3, 3, 3 };
	redisReply *r;

	ck_assert_int_eq(redis_pool_size(rp), 2);
	ck_assert_ptr_null(redis_pool_conn(rp, 2));
	ck_assert_ptr_null(redis_pool_conn(rp, -1));
	ck_assert_str_eq(redis_conn_prefix(c), "t:");
	ck_assert_int_eq(redis_conn_ensure(c), FA_OK);
	r = redis_conn_command(c, "SET %s %s", "k", "v w");
	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(r->type, REDIS_REPLY_STATUS);
	freeReplyObject(r);
	r = redis_conn_command(c, "GET k");
	ck_assert_int_eq(r->type, REDIS_REPLY_STRING);
	ck_assert_str_eq(r->str, "v w");
	freeReplyObject(r);

	r = redis_conn_commandargv(c, 3, argv, argvlen);
	ck_assert_int_eq(r->type, REDIS_REPLY_STATUS);
	freeReplyObject(r);
	r = redis_conn_command(c, "GET bin");
	ck_assert_int_eq(r->len, 3);
	ck_assert(memcmp(r->str, "a\0b", 3) == 0);
	freeReplyObject(r);

	/* Slot 1 is a connection of its own. */
	ck_assert_int_eq(must(redis_pool_conn(rp, 1), REDIS_REPLY_INTEGER, "EXISTS k"), 1);
	redis_pool_free(rp);
	redis_pool_free(NULL);
}
END_TEST

START_TEST(pool_bad_url)
{
	static const char *bad[] = {
		"http://127.0.0.1", "redis://", "redis://:pw@", "redis://host:", "redis://host:0",
		"redis://host:65536", "redis://host:12x", "redis://host/x", "redis://host/-1",
		"redis://pw@host", "redis://[::1", "redis://[::1]x", "unix:", "unix:relative",
		"unix:/s?db=x", "unix:/s?foo=1", "rediss://host", "redis://:%zz@host", "",
	};
	static const char *good[] = {
		"redis://127.0.0.1", "redis://h:1", "redis://:p%40ss@h:65535/15",
		"redis://user:pw@h/0", "redis://[::1]:6379/2", "redis://[::1]", "unix:/s",
		"unix:/s?db=3", "unix:/s?db=1&password=x", "unix:///run/redis.sock", "redis://h/",
	};
	struct redis_pool_params p = { .size = 1 };
	struct redis_pool *rp;
	char *cause;
	size_t i;

	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		p.url = bad[i];
		cause = NULL;
		rp = redis_pool_new(&p, &cause);
		ck_assert_msg(rp == NULL, "accepted %s", bad[i]);
		ck_assert_msg(cause != NULL && *cause != '\0', "no cause for %s", bad[i]);
		free(cause);
	}
	for (i = 0; i < sizeof good / sizeof good[0]; i++) {
		p.url = good[i];
		cause = NULL;
		rp = redis_pool_new(&p, &cause);
		ck_assert_msg(rp != NULL, "refused %s: %s", good[i], cause);
		redis_pool_free(rp);
	}
	p.url = "redis://h";
	p.size = 0;
	cause = NULL;
	ck_assert_ptr_null(redis_pool_new(&p, &cause));
	ck_assert_ptr_nonnull(cause);
	free(cause);
}
END_TEST

/* The db in the URL is SELECTed, over TCP and over the unix socket. */
START_TEST(pool_url_db)
{
	char url[400];
	struct redis_pool *rp, *raw;
	struct redis_conn *c0;

	snprintf(url, sizeof url, "%s/3", redis_fixture_url(private));
	rp = pool_open(url, 1000, 50, 400, 1);
	must(redis_pool_conn(rp, 0), REDIS_REPLY_STATUS, "SET in3 1");
	redis_pool_free(rp);
	snprintf(url, sizeof url, "unix:%s?db=4", redis_fixture_socket(private));
	rp = pool_open(url, 1000, 50, 400, 1);
	must(redis_pool_conn(rp, 0), REDIS_REPLY_STATUS, "SET in4 1");
	redis_pool_free(rp);

	raw = pool_open(redis_fixture_url(private), 1000, 50, 400, 1);
	c0 = redis_pool_conn(raw, 0);
	ck_assert_int_eq(must(c0, REDIS_REPLY_INTEGER, "EXISTS in3"), 0);
	ck_assert_int_eq(must(c0, REDIS_REPLY_INTEGER, "EXISTS in4"), 0);
	must(c0, REDIS_REPLY_STATUS, "SELECT 3");
	ck_assert_int_eq(must(c0, REDIS_REPLY_INTEGER, "EXISTS in3"), 1);
	must(c0, REDIS_REPLY_STATUS, "SELECT 4");
	ck_assert_int_eq(must(c0, REDIS_REPLY_INTEGER, "EXISTS in4"), 1);
	redis_pool_free(raw);

	/* A db the server does not have: SELECT fails, the call says why. */
	snprintf(url, sizeof url, "%s/999", redis_fixture_url(private));
	rp = pool_open(url, 1000, 50, 400, 1);
	ck_assert_ptr_null(redis_conn_command(redis_pool_conn(rp, 0), "PING"));
	ck_assert_ptr_nonnull(strstr(redis_conn_errstr(redis_pool_conn(rp, 0)), "SELECT"));
	redis_pool_free(rp);
}
END_TEST

START_TEST(pool_command_timeout)
{
	struct redis_pool *rp = pool_open(redis_fixture_url(private), 200, 100, 400, 1);
	struct redis_conn *c = redis_pool_conn(rp, 0);
	long long t0, elapsed;
	redisReply *r;

	ck_assert(wait_ping(c, 1000));
	t0 = now_ms();
	r = redis_conn_command(c, "DEBUG SLEEP 2");
	elapsed = now_ms() - t0;
	ck_assert_ptr_null(r);
	ck_assert_msg(strstr(redis_conn_errstr(c), "timed out") != NULL, "errstr: %s",
	    redis_conn_errstr(c));
	ck_assert_msg(elapsed < 1500, "took %lld ms", elapsed);
	/* Backing off now: the next call fails at once without touching the server. */
	t0 = now_ms();
	ck_assert_ptr_null(redis_conn_command(c, "PING"));
	ck_assert_int_lt(now_ms() - t0, 100);
	ck_assert_ptr_nonnull(strstr(redis_conn_errstr(c), "next attempt"));
	ck_assert_int_eq(redis_conn_ensure(c), FA_UNAVAIL);
	/* Once the server is done sleeping, it works again. */
	ck_assert(wait_ping(c, 5000));
	redis_pool_free(rp);
}
END_TEST

/* Parse "next attempt in N ms" out of errstr; -1 if absent. */
static long
next_attempt_ms(struct redis_conn *c)
{
	const char *s = strstr(redis_conn_errstr(c), "next attempt in ");
	long ms;

	if (s == NULL || sscanf(s, "next attempt in %ld ms", &ms) != 1)
		return -1;
	return ms;
}

START_TEST(pool_backoff_fail_fast)
{
	struct redis_pool *rp = pool_open(redis_fixture_url(private), 500, 1000, 4000, 1);
	struct redis_conn *c = redis_pool_conn(rp, 0);
	long long t0, deadline;
	long wait;

	ck_assert(wait_ping(c, 1000));
	ck_assert_int_eq(redis_fixture_stop(private), 0);
	ck_assert_ptr_null(redis_conn_command(c, "PING"));	/* EOF or reset */

	/* First step: the wait is in [500, 1000] ms, and calls fail at once. */
	t0 = now_ms();
	ck_assert_ptr_null(redis_conn_command(c, "PING"));
	ck_assert_int_lt(now_ms() - t0, 100);
	wait = next_attempt_ms(c);
	ck_assert_msg(wait > 300 && wait <= 1000, "first wait %ld", wait);
	ck_assert_int_eq(redis_conn_append(c, "PING"), FA_UNAVAIL);
	ck_assert_ptr_null(redis_conn_reply(c));

	/* After it, one connect attempt (refused) doubles the step: [1000, 2000]. */
	deadline = now_ms() + 3000;
	while (next_attempt_ms(c) >= 0 && now_ms() < deadline) {
		sleep_ms(20);
		redis_conn_command(c, "PING");
	}
	ck_assert_msg(strstr(redis_conn_errstr(c), "connect") != NULL, "errstr: %s",
	    redis_conn_errstr(c));
	ck_assert_ptr_null(redis_conn_command(c, "PING"));
	wait = next_attempt_ms(c);
	ck_assert_msg(wait > 800 && wait <= 2000, "second wait %ld", wait);
	redis_pool_free(rp);
}
END_TEST

START_TEST(pool_reconnect_after_restart)
{
	struct redis_pool *rp = pool_open(redis_fixture_url(private), 500, 50, 200, 1);
	struct redis_conn *c = redis_pool_conn(rp, 0);

	must(c, REDIS_REPLY_STATUS, "SET before 1");
	ck_assert_int_eq(redis_fixture_stop(private), 0);
	ck_assert_ptr_null(redis_conn_command(c, "GET before"));
	ck_assert_int_eq(redis_fixture_restart(private), 0);
	ck_assert_msg(wait_ping(c, 5000), "no reconnect: %s", redis_conn_errstr(c));
	/* A fresh server (no persistence): the connection is new, not stale. */
	ck_assert_int_eq(must(c, REDIS_REPLY_INTEGER, "EXISTS before"), 0);
	redis_pool_free(rp);
}
END_TEST

START_TEST(pool_paused_server)
{
	struct redis_pool *rp = pool_open(redis_fixture_url(private), 200, 50, 200, 1);
	struct redis_conn *c = redis_pool_conn(rp, 0);
	long long t0;

	ck_assert(wait_ping(c, 1000));
	ck_assert_int_eq(redis_fixture_pause(private), 0);
	t0 = now_ms();
	ck_assert_ptr_null(redis_conn_command(c, "PING"));
	ck_assert_int_lt(now_ms() - t0, 1500);
	ck_assert_ptr_nonnull(strstr(redis_conn_errstr(c), "timed out"));
	ck_assert_int_eq(redis_fixture_resume(private), 0);
	ck_assert(wait_ping(c, 5000));
	redis_pool_free(rp);
}
END_TEST

START_TEST(pool_pipeline)
{
	struct redis_pool *rp = pool_open(redis_fixture_url(private), 1000, 50, 400, 1);
	struct redis_conn *c = redis_pool_conn(rp, 0);
	const char *argv[] = { "ECHO", "argv" };
	redisReply *r;

	ck_assert_int_eq(redis_conn_append(c, "SET a %s", "1"), FA_OK);
	ck_assert_int_eq(redis_conn_append(c, "INCR n"), FA_OK);
	ck_assert_int_eq(redis_conn_appendargv(c, 2, argv, NULL), FA_OK);
	ck_assert_int_eq(redis_conn_append(c, "GET a"), FA_OK);
	r = redis_conn_reply(c);
	ck_assert_int_eq(r->type, REDIS_REPLY_STATUS);
	freeReplyObject(r);
	r = redis_conn_reply(c);
	ck_assert_int_eq(r->type, REDIS_REPLY_INTEGER);
	ck_assert_int_eq(r->integer, 1);
	freeReplyObject(r);
	r = redis_conn_reply(c);
	ck_assert_str_eq(r->str, "argv");
	freeReplyObject(r);
	r = redis_conn_reply(c);
	ck_assert_str_eq(r->str, "1");
	freeReplyObject(r);
	/* Nothing pending: no reply, and the connection is still fine. */
	ck_assert_ptr_null(redis_conn_reply(c));
	ck_assert_ptr_nonnull(strstr(redis_conn_errstr(c), "no reply pending"));
	ck_assert_int_eq(must(c, REDIS_REPLY_INTEGER, "INCR n"), 2);
	redis_pool_free(rp);
}
END_TEST

/* An abandoned batch never lends its replies to the next command. */
START_TEST(pool_stale_replies)
{
	struct redis_pool *rp = pool_open(redis_fixture_url(private), 1000, 50, 400, 1);
	struct redis_conn *c = redis_pool_conn(rp, 0);
	redisReply *r;

	ck_assert_int_eq(redis_conn_append(c, "ECHO x"), FA_OK);
	ck_assert_int_eq(redis_conn_append(c, "ECHO y"), FA_OK);
	r = redis_conn_reply(c);
	ck_assert_str_eq(r->str, "x");
	freeReplyObject(r);
	r = redis_conn_command(c, "ECHO z");	/* "y" is still owed */
	ck_assert_ptr_nonnull(r);
	ck_assert_str_eq(r->str, "z");
	freeReplyObject(r);

	ck_assert_int_eq(redis_conn_append(c, "ECHO never-read"), FA_OK);
	r = redis_conn_command(c, "ECHO w");
	ck_assert_str_eq(r->str, "w");
	freeReplyObject(r);

	/* Reading began, then a new append: a new batch, the old one is dropped. */
	ck_assert_int_eq(redis_conn_append(c, "ECHO a"), FA_OK);
	ck_assert_int_eq(redis_conn_append(c, "ECHO b"), FA_OK);
	r = redis_conn_reply(c);
	ck_assert_str_eq(r->str, "a");
	freeReplyObject(r);
	ck_assert_int_eq(redis_conn_append(c, "ECHO c"), FA_OK);
	r = redis_conn_reply(c);
	ck_assert_str_eq(r->str, "c");
	freeReplyObject(r);
	ck_assert_ptr_null(redis_conn_reply(c));
	redis_pool_free(rp);
}
END_TEST

/* A read that fails mid-batch drops the connection and the rest of the batch. */
START_TEST(pool_batch_failure)
{
	struct redis_pool *rp = pool_open(redis_fixture_url(private), 300, 50, 200, 1);
	struct redis_conn *c = redis_pool_conn(rp, 0);
	redisReply *r;

	ck_assert(wait_ping(c, 1000));
	ck_assert_int_eq(redis_conn_append(c, "DEBUG SLEEP 1"), FA_OK);
	ck_assert_int_eq(redis_conn_append(c, "ECHO late"), FA_OK);
	ck_assert_ptr_null(redis_conn_reply(c));
	ck_assert_ptr_nonnull(strstr(redis_conn_errstr(c), "timed out"));
	ck_assert_ptr_null(redis_conn_reply(c));
	ck_assert(wait_ping(c, 5000));
	r = redis_conn_command(c, "ECHO fresh");
	ck_assert_ptr_nonnull(r);
	ck_assert_str_eq(r->str, "fresh");
	freeReplyObject(r);
	redis_pool_free(rp);
}
END_TEST

/* An error reply is the server speaking: returned, connection kept. */
START_TEST(pool_error_reply)
{
	struct redis_pool *rp = pool_open(redis_fixture_url(private), 1000, 50, 400, 1);
	struct redis_conn *c = redis_pool_conn(rp, 0);
	long long id;
	redisReply *r;

	id = must(c, REDIS_REPLY_INTEGER, "CLIENT ID");
	r = redis_conn_command(c, "NOSUCHCOMMAND x");
	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(r->type, REDIS_REPLY_ERROR);
	freeReplyObject(r);
	ck_assert_int_eq(must(c, REDIS_REPLY_INTEGER, "CLIENT ID"), id);
	redis_pool_free(rp);
}
END_TEST

START_TEST(pool_auth)
{
	char url[400];
	struct redis_pool *rp;
	struct redis_conn *c;
	redisReply *r;

	/* The password "s3cr@t:pw", %-escaped in the URL. */
	snprintf(url, sizeof url, "redis://:s3cr%%40t%%3Apw@127.0.0.1:%d/1",
	    redis_fixture_port(private));
	rp = pool_open(url, 1000, 50, 400, 1);
	c = redis_pool_conn(rp, 0);
	must(c, REDIS_REPLY_STATUS, "PING");
	must(c, REDIS_REPLY_STATUS, "SET authed 1");
	redis_pool_free(rp);

	snprintf(url, sizeof url, "unix:%s?password=s3cr%%40t%%3Apw&db=1",
	    redis_fixture_socket(private));
	rp = pool_open(url, 1000, 50, 400, 1);
	ck_assert_int_eq(must(redis_pool_conn(rp, 0), REDIS_REPLY_INTEGER, "EXISTS authed"), 1);
	redis_pool_free(rp);

	/* Wrong password: no connection, the reason names AUTH, not the password. */
	snprintf(url, sizeof url, "redis://:wrong-secret@127.0.0.1:%d",
	    redis_fixture_port(private));
	rp = pool_open(url, 1000, 50, 400, 1);
	c = redis_pool_conn(rp, 0);
	ck_assert_ptr_null(redis_conn_command(c, "PING"));
	ck_assert_ptr_nonnull(strstr(redis_conn_errstr(c), "AUTH"));
	ck_assert_ptr_null(strstr(redis_conn_errstr(c), "wrong-secret"));
	ck_assert_int_eq(redis_conn_ensure(c), FA_UNAVAIL);
	redis_pool_free(rp);

	/* No password: the server's NOAUTH comes back as an error reply. */
	rp = pool_open(redis_fixture_url(private), 1000, 50, 400, 1);
	r = redis_conn_command(redis_pool_conn(rp, 0), "GET x");
	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(r->type, REDIS_REPLY_ERROR);
	ck_assert_ptr_nonnull(strstr(r->str, "NOAUTH"));
	freeReplyObject(r);
	redis_pool_free(rp);
}
END_TEST

/* ------------------------------------------------------------------ store */

static void
client_fill(struct store_client *c, const char *id)
{
	size_t i;

	memset(c, 0, sizeof *c);
	snprintf(c->id, sizeof c->id, "%s", id);
	for (i = 0; i < sizeof c->secret_mac; i++)
		c->secret_mac[i] = (uint8_t)(i * 7 + 1);
	snprintf(c->scope, sizeof c->scope, "read write");
	c->grants = STORE_GRANT_CLIENT_CREDENTIALS | STORE_GRANT_REFRESH_TOKEN;
	c->introspect = 1;
	c->created = 1700000000;
	snprintf(c->name, sizeof c->name, "Billing service");
}

START_TEST(store_client_crud)
{
	struct redis_conn *c = redis_pool_conn(pool, 0);
	struct store_client in, out;
	char **ids;
	int n;

	client_fill(&in, "svc-a");
	ck_assert_int_eq(store_client_get(c, "svc-a", &out), FA_NOTFOUND);
	ck_assert_int_eq(store_client_put(c, &in, 0), FA_OK);
	ck_assert_int_eq(store_client_get(c, "svc-a", &out), FA_OK);
	ck_assert_str_eq(out.id, "svc-a");
	ck_assert(memcmp(out.secret_mac, in.secret_mac, sizeof in.secret_mac) == 0);
	ck_assert_str_eq(out.scope, "read write");
	ck_assert_uint_eq(out.grants, in.grants);
	ck_assert_int_eq(out.introspect, 1);
	ck_assert_int_eq(out.created, 1700000000);
	ck_assert_str_eq(out.name, "Billing service");

	/* Stored as lower-case hex. */
	{
		redisReply *r = redis_conn_command(c, "HGET t:client:svc-a secret");
		char hex[65];

		crypto_hex(in.secret_mac, sizeof in.secret_mac, hex);
		ck_assert_str_eq(r->str, hex);
		freeReplyObject(r);
	}

	/* Exists: refused without replace, overwritten with it. */
	snprintf(in.scope, sizeof in.scope, "Admin");
	in.introspect = 0;
	in.grants = STORE_GRANT_PASSWORD;
	in.name[0] = '\0';
	ck_assert_int_eq(store_client_put(c, &in, 0), FA_ERR);
	ck_assert_int_eq(store_client_get(c, "svc-a", &out), FA_OK);
	ck_assert_str_eq(out.scope, "read write");
	ck_assert_int_eq(store_client_put(c, &in, 1), FA_OK);
	ck_assert_int_eq(store_client_get(c, "svc-a", &out), FA_OK);
	ck_assert_str_eq(out.scope, "Admin");
	ck_assert_int_eq(out.introspect, 0);
	ck_assert_uint_eq(out.grants, STORE_GRANT_PASSWORD);
	ck_assert_str_eq(out.name, "");

	/* A client with empty scope and no grants is still a valid record. */
	client_fill(&in, "b");
	in.scope[0] = '\0';
	in.grants = 0;
	ck_assert_int_eq(store_client_put(c, &in, 0), FA_OK);
	ck_assert_int_eq(store_client_get(c, "b", &out), FA_OK);
	ck_assert_str_eq(out.scope, "");
	ck_assert_uint_eq(out.grants, 0);

	ck_assert_int_eq(store_client_list(c, &ids, &n), FA_OK);
	ck_assert_int_eq(n, 2);
	ck_assert_str_eq(ids[0], "b");		/* sorted */
	ck_assert_str_eq(ids[1], "svc-a");
	store_ids_free(ids, n);

	ck_assert_int_eq(store_client_del(c, "svc-a"), FA_OK);
	ck_assert_int_eq(store_client_del(c, "svc-a"), FA_NOTFOUND);
	ck_assert_int_eq(store_client_get(c, "svc-a", &out), FA_NOTFOUND);
	ck_assert_int_eq(store_client_list(c, &ids, &n), FA_OK);
	ck_assert_int_eq(n, 1);
	store_ids_free(ids, n);
	store_ids_free(NULL, 0);
}
END_TEST

START_TEST(store_client_validation)
{
	struct redis_conn *c = redis_pool_conn(pool, 0);
	struct store_client in, out;
	char longid[FA_CLIENT_ID_MAX + 2];
	char **ids;
	int n;

	client_fill(&in, "");
	ck_assert_int_eq(store_client_put(c, &in, 0), FA_ERR);
	client_fill(&in, "has space");
	ck_assert_int_eq(store_client_put(c, &in, 0), FA_ERR);
	client_fill(&in, "tab\tid");
	ck_assert_int_eq(store_client_put(c, &in, 0), FA_ERR);
	client_fill(&in, "caf\xc3\xa9");
	ck_assert_int_eq(store_client_put(c, &in, 0), FA_ERR);
	client_fill(&in, "del\x7f");
	ck_assert_int_eq(store_client_put(c, &in, 0), FA_ERR);

	memset(longid, 'x', sizeof longid);
	longid[FA_CLIENT_ID_MAX] = '\0';	/* exactly the maximum */
	client_fill(&in, longid);
	ck_assert_int_eq(store_client_put(c, &in, 0), FA_OK);
	ck_assert_int_eq(store_client_get(c, longid, &out), FA_OK);
	longid[FA_CLIENT_ID_MAX] = 'x';
	longid[FA_CLIENT_ID_MAX + 1] = '\0';	/* one too many */
	ck_assert_int_eq(store_client_get(c, longid, &out), FA_NOTFOUND);
	ck_assert_int_eq(store_client_del(c, "has space"), FA_NOTFOUND);

	client_fill(&in, "ok");
	memset(in.scope, 's', sizeof in.scope);	/* no NUL: longer than FA_SCOPE_MAX */
	ck_assert_int_eq(store_client_put(c, &in, 0), FA_ERR);
	client_fill(&in, "ok");
	memset(in.scope, 's', FA_SCOPE_MAX);
	in.scope[FA_SCOPE_MAX] = '\0';
	ck_assert_int_eq(store_client_put(c, &in, 0), FA_OK);
	ck_assert_int_eq(store_client_get(c, "ok", &out), FA_OK);
	ck_assert_uint_eq(strlen(out.scope), FA_SCOPE_MAX);

	client_fill(&in, "ok2");
	in.grants = 0x100;
	ck_assert_int_eq(store_client_put(c, &in, 0), FA_ERR);
	client_fill(&in, "ok2");
	memset(in.name, 'n', sizeof in.name);
	ck_assert_int_eq(store_client_put(c, &in, 0), FA_ERR);

	ck_assert_int_eq(store_client_list(c, &ids, &n), FA_OK);
	ck_assert_int_eq(n, 2);
	store_ids_free(ids, n);
}
END_TEST

START_TEST(store_client_corrupt)
{
	struct redis_conn *c = redis_pool_conn(pool, 0);
	const char *hex = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
	struct store_client out;
	redisReply *r;

#define HSET_CLIENT(id, secret, grants, introspect, created)			\
	do {									\
		r = redis_conn_command(c, "HSET t:client:%s secret %s scope s "	\
		    "grants %s introspect %s created %s name n", id, secret,	\
		    grants, introspect, created);				\
		ck_assert_int_eq(r->type, REDIS_REPLY_INTEGER);			\
		freeReplyObject(r);						\
	} while (0)

	HSET_CLIENT("good", hex, "password", "1", "12");
	ck_assert_int_eq(store_client_get(c, "good", &out), FA_OK);
	ck_assert_uint_eq(out.grants, STORE_GRANT_PASSWORD);

	HSET_CLIENT("short", "0011", "password", "1", "12");
	ck_assert_int_eq(store_client_get(c, "short", &out), FA_ERR);
	HSET_CLIENT("upper", "00112233445566778899AABBCCDDEEFF00112233445566778899aabbccddeeff",
	    "password", "1", "12");
	ck_assert_int_eq(store_client_get(c, "upper", &out), FA_ERR);
	HSET_CLIENT("grant", hex, "implicit", "1", "12");
	ck_assert_int_eq(store_client_get(c, "grant", &out), FA_ERR);
	HSET_CLIENT("intro", hex, "password", "yes", "12");
	ck_assert_int_eq(store_client_get(c, "intro", &out), FA_ERR);
	HSET_CLIENT("created", hex, "password", "1", "-5");
	ck_assert_int_eq(store_client_get(c, "created", &out), FA_ERR);

	must(c, REDIS_REPLY_INTEGER, "HSET t:client:missing secret 00 scope s");
	ck_assert_int_eq(store_client_get(c, "missing", &out), FA_ERR);

	/* Not a hash at all: the server refuses (WRONGTYPE), so fail closed. */
	must(c, REDIS_REPLY_STATUS, "SET t:client:string x");
	ck_assert_int_eq(store_client_get(c, "string", &out), FA_UNAVAIL);
#undef HSET_CLIENT
}
END_TEST

START_TEST(store_grants)
{
	const char *bad;
	unsigned g;
	char out[128], tiny[20];

	ck_assert_int_eq(store_grants_parse("client_credentials refresh_token", &g, &bad), FA_OK);
	ck_assert_uint_eq(g, STORE_GRANT_CLIENT_CREDENTIALS | STORE_GRANT_REFRESH_TOKEN);
	ck_assert_ptr_null(bad);
	ck_assert_int_eq(store_grants_parse(" password,authorization_code  ", &g, NULL), FA_OK);
	ck_assert_uint_eq(g, STORE_GRANT_PASSWORD | STORE_GRANT_AUTHORIZATION_CODE);
	ck_assert_int_eq(store_grants_parse("", &g, &bad), FA_OK);
	ck_assert_uint_eq(g, 0);
	ck_assert_int_eq(store_grants_parse("password password", &g, &bad), FA_OK);
	ck_assert_uint_eq(g, STORE_GRANT_PASSWORD);

	ck_assert_int_eq(store_grants_parse("client_credentials implicit", &g, &bad), FA_ERR);
	ck_assert_str_eq(bad, "implicit");
	ck_assert_int_eq(store_grants_parse("passwordx", &g, &bad), FA_ERR);
	ck_assert_str_eq(bad, "passwordx");
	ck_assert_int_eq(store_grants_parse("Password", &g, &bad), FA_ERR);

	store_grants_format(STORE_GRANT_CLIENT_CREDENTIALS | STORE_GRANT_PASSWORD |
	    STORE_GRANT_REFRESH_TOKEN | STORE_GRANT_AUTHORIZATION_CODE, out, sizeof out);
	ck_assert_str_eq(out, "client_credentials password refresh_token authorization_code");
	ck_assert_int_eq(store_grants_parse(out, &g, &bad), FA_OK);
	ck_assert_uint_eq(g, 0x0f);
	store_grants_format(0, out, sizeof out);
	ck_assert_str_eq(out, "");
	store_grants_format(STORE_GRANT_REFRESH_TOKEN, out, sizeof out);
	ck_assert_str_eq(out, "refresh_token");
	/* Too small: whole names only, always NUL-terminated. */
	store_grants_format(0x0f, tiny, sizeof tiny);
	ck_assert_str_eq(tiny, "client_credentials");
}
END_TEST

static void
jti_fill(uint8_t jti[TOKEN_JTI_LEN], int seed)
{
	int i;

	for (i = 0; i < TOKEN_JTI_LEN; i++)
		jti[i] = (uint8_t)(seed * 31 + i);
}

START_TEST(store_revocation)
{
	struct redis_conn *c = redis_pool_conn(pool, 0);
	uint8_t jti[TOKEN_JTI_LEN], other[TOKEN_JTI_LEN];
	char hex[2 * TOKEN_JTI_LEN + 1];
	redisReply *r;

	jti_fill(jti, 1);
	jti_fill(other, 2);
	ck_assert_int_eq(store_is_revoked(c, jti), 0);
	ck_assert_int_eq(store_revoke_jti(c, jti, 60), FA_OK);
	ck_assert_int_eq(store_is_revoked(c, jti), 1);
	ck_assert_int_eq(store_is_revoked(c, other), 0);

	crypto_hex(jti, TOKEN_JTI_LEN, hex);
	r = redis_conn_command(c, "TTL t:revoked:%s", hex);
	ck_assert_int_eq(r->type, REDIS_REPLY_INTEGER);
	ck_assert(r->integer > 0 && r->integer <= 60);
	freeReplyObject(r);

	/* A ttl below 1 still denies (for a second), never forever. */
	ck_assert_int_eq(store_revoke_jti(c, other, 0), FA_OK);
	ck_assert_int_eq(store_is_revoked(c, other), 1);
	crypto_hex(other, TOKEN_JTI_LEN, hex);
	r = redis_conn_command(c, "PTTL t:revoked:%s", hex);
	ck_assert(r->integer > 0 && r->integer <= 1000);
	freeReplyObject(r);
}
END_TEST

START_TEST(store_client_and_revoked_combinations)
{
	struct redis_conn *c = redis_pool_conn(pool, 0);
	struct store_client in, out;
	uint8_t live[TOKEN_JTI_LEN], dead[TOKEN_JTI_LEN];
	int crc, revoked;

	client_fill(&in, "intro");
	ck_assert_int_eq(store_client_put(c, &in, 0), FA_OK);
	jti_fill(live, 3);
	jti_fill(dead, 4);
	ck_assert_int_eq(store_revoke_jti(c, dead, 60), FA_OK);

	ck_assert_int_eq(store_client_and_revoked(c, "intro", &out, &crc, live, &revoked, NULL, NULL), FA_OK);
	ck_assert_int_eq(crc, FA_OK);
	ck_assert_int_eq(revoked, 0);
	ck_assert_str_eq(out.scope, "read write");
	ck_assert_int_eq(store_client_and_revoked(c, "intro", &out, &crc, dead, &revoked, NULL, NULL), FA_OK);
	ck_assert_int_eq(crc, FA_OK);
	ck_assert_int_eq(revoked, 1);
	ck_assert_int_eq(store_client_and_revoked(c, "nobody", &out, &crc, live, &revoked, NULL, NULL), FA_OK);
	ck_assert_int_eq(crc, FA_NOTFOUND);
	ck_assert_int_eq(revoked, 0);
	ck_assert_int_eq(store_client_and_revoked(c, "nobody", &out, &crc, dead, &revoked, NULL, NULL), FA_OK);
	ck_assert_int_eq(crc, FA_NOTFOUND);
	ck_assert_int_eq(revoked, 1);
	/* An id that cannot exist still gets the revocation answer. */
	ck_assert_int_eq(store_client_and_revoked(c, "no such", &out, &crc, dead, &revoked, NULL, NULL), FA_OK);
	ck_assert_int_eq(crc, FA_NOTFOUND);
	ck_assert_int_eq(revoked, 1);

	/* A corrupt record fails the call, and leaves nothing pending. */
	must(c, REDIS_REPLY_INTEGER, "HSET t:client:bad secret zz");
	ck_assert_int_eq(store_client_and_revoked(c, "bad", &out, &crc, live, &revoked, NULL, NULL), FA_ERR);
	ck_assert_int_eq(revoked, 1);
	ck_assert_int_eq(store_is_revoked(c, live), 0);

	/* One round trip: two commands, one reply read each, same connection. */
	{
		long long before = must(c, REDIS_REPLY_INTEGER, "CLIENT ID");

		ck_assert_int_eq(store_client_and_revoked(c, "intro", &out, &crc, dead,
		    &revoked, NULL, NULL), FA_OK);
		ck_assert_int_eq(must(c, REDIS_REPLY_INTEGER, "CLIENT ID"), before);
	}

	/* The subject's not-before comes in the same round trip. */
	{
		long long nbf = -1;

		ck_assert_int_eq(store_client_and_revoked(c, "intro", &out, &crc, live,
		    &revoked, "0123456789abcdef0123456789abcdef", &nbf), FA_OK);
		ck_assert_int_eq(nbf, 0);
		ck_assert_int_eq(revoked, 0);
		must(c, REDIS_REPLY_STATUS, "SET t:nbf:0123456789abcdef0123456789abcdef 1700000000");
		ck_assert_int_eq(store_client_and_revoked(c, "intro", &out, &crc, live,
		    &revoked, "0123456789abcdef0123456789abcdef", &nbf), FA_OK);
		ck_assert_int_eq(nbf, 1700000000LL);
		ck_assert_int_eq(crc, FA_OK);
		/* A wrong type there fails closed. */
		must(c, REDIS_REPLY_INTEGER, "HSET t:nbf:ffff x 1");
		ck_assert_int_eq(store_client_and_revoked(c, "intro", &out, &crc, live,
		    &revoked, "ffff", &nbf), FA_UNAVAIL);
		ck_assert_int_eq(revoked, 1);
	}
}
END_TEST

/* Every store call fails closed (FA_UNAVAIL) when Redis cannot be reached. */
START_TEST(store_unavailable)
{
	struct redis_pool *rp;
	struct redis_conn *c;
	struct store_client in, out;
	uint8_t jti[TOKEN_JTI_LEN];
	char url[64], **ids;
	int crc, revoked, n, port;

	/* A port nothing listens on: the private server's, after stopping it. */
	private = redis_fixture_start(NULL);
	ck_assert_ptr_nonnull(private);
	port = redis_fixture_port(private);
	redis_fixture_stop(private);
	snprintf(url, sizeof url, "redis://127.0.0.1:%d", port);
	rp = pool_open(url, 200, 50, 100, 1);
	c = redis_pool_conn(rp, 0);
	client_fill(&in, "x");
	jti_fill(jti, 5);
	ck_assert_int_eq(store_client_get(c, "x", &out), FA_UNAVAIL);
	ck_assert_int_eq(store_client_put(c, &in, 1), FA_UNAVAIL);
	ck_assert_int_eq(store_client_del(c, "x"), FA_UNAVAIL);
	ck_assert_int_eq(store_client_list(c, &ids, &n), FA_UNAVAIL);
	ck_assert_int_eq(store_revoke_jti(c, jti, 10), FA_UNAVAIL);
	ck_assert_int_eq(store_is_revoked(c, jti), FA_UNAVAIL);
	ck_assert_int_eq(store_client_and_revoked(c, "x", &out, &crc, jti, &revoked, NULL, NULL),
	    FA_UNAVAIL);
	ck_assert_int_eq(revoked, 1);
	redis_pool_free(rp);
	redis_fixture_free(private);
	private = NULL;
}
END_TEST

/* ---------------------------------------------------------------- keyring */

static const struct keyring_params kparams_default = {
	.rotate_after_s = 0, .rotate_after_seals = 0,
	.token_lifetime_s = 300, .refresh_s = 30,
};

static void
kek_fill(uint8_t kek[CRYPTO_KEYLEN], int seed)
{
	int i;

	for (i = 0; i < CRYPTO_KEYLEN; i++)
		kek[i] = (uint8_t)(seed + i * 13);
}

static char *
kek_path(const char *name)
{
	return xasprintf("%s/%s", kekdir, name);
}

static void
write_file(const char *path, const char *text, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);

	ck_assert_int_ne(fd, -1);
	ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	ck_assert_int_eq(chmod(path, mode), 0);
}

START_TEST(keyring_kek_file)
{
	uint8_t kek[CRYPTO_KEYLEN], kek2[CRYPTO_KEYLEN];
	char *path = kek_path("kek"), *path2 = kek_path("kek2"), *bad = kek_path("bad");
	char *link = kek_path("link"), *cause = NULL;
	struct stat st;
	char text[80];
	int fd;

	ck_assert_int_eq(keyring_kek_create(path, &cause), FA_OK);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_int_eq(st.st_mode & 07777, 0600);
	ck_assert_int_eq(st.st_size, 65);
	fd = open(path, O_RDONLY);
	ck_assert_int_eq(read(fd, text, sizeof text), 65);
	close(fd);
	ck_assert_int_eq(text[64], '\n');
	ck_assert_uint_eq(strspn(text, "0123456789abcdef"), 64);

	/* Never overwrite. */
	ck_assert_int_eq(keyring_kek_create(path, &cause), FA_ERR);
	ck_assert_ptr_nonnull(strstr(cause, "exists"));
	free(cause);
	ck_assert_int_eq(keyring_kek_load(path, kek, &cause), FA_OK);
	ck_assert_int_eq(keyring_kek_create(path2, &cause), FA_OK);
	ck_assert_int_eq(keyring_kek_load(path2, kek2, &cause), FA_OK);
	ck_assert(memcmp(kek, kek2, sizeof kek) != 0);

	/* Readable by others: refused. */
	ck_assert_int_eq(chmod(path, 0644), 0);
	ck_assert_int_eq(keyring_kek_load(path, kek, &cause), FA_ERR);
	ck_assert_ptr_nonnull(strstr(cause, "0644"));
	free(cause);
	ck_assert_int_eq(chmod(path, 0640), 0);
	ck_assert_int_eq(keyring_kek_load(path, kek, &cause), FA_ERR);
	free(cause);

	/* Malformed contents. */
	write_file(bad, "00112233", 0600);
	ck_assert_int_eq(keyring_kek_load(bad, kek, &cause), FA_ERR);
	free(cause);
	write_file(bad, "00112233445566778899AABBCCDDEEFF00112233445566778899aabbccddeeff\n", 0600);
	ck_assert_int_eq(keyring_kek_load(bad, kek, &cause), FA_ERR);
	free(cause);
	write_file(bad, "0011223344556677889gaabbccddeeff00112233445566778899aabbccddeeff\n", 0600);
	ck_assert_int_eq(keyring_kek_load(bad, kek, &cause), FA_ERR);
	free(cause);
	write_file(bad, "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n\n", 0600);
	ck_assert_int_eq(keyring_kek_load(bad, kek, &cause), FA_ERR);
	free(cause);
	write_file(bad, "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n", 0600);
	ck_assert_int_eq(keyring_kek_load(bad, kek, &cause), FA_OK);
	ck_assert_int_eq(kek[0], 0x00);
	ck_assert_int_eq(kek[31], 0xff);

	/* Loading follows a symlink (the target's mode counts); creating does not. */
	ck_assert_int_eq(symlink(path2, link), 0);
	ck_assert_int_eq(keyring_kek_load(link, kek, &cause), FA_OK);
	ck_assert(memcmp(kek, kek2, sizeof kek) == 0);
	ck_assert_int_eq(chmod(path2, 0604), 0);
	ck_assert_int_eq(keyring_kek_load(link, kek, &cause), FA_ERR);
	free(cause);
	ck_assert_int_eq(keyring_kek_create(link, &cause), FA_ERR);
	free(cause);
	unlink(path2);
	ck_assert_int_eq(keyring_kek_create(link, &cause), FA_ERR);	/* dangling */
	free(cause);
	ck_assert_int_eq(access(path2, F_OK), -1);
	free(link);
	link = kek_path("nonexistent");
	ck_assert_int_eq(keyring_kek_load(link, kek, &cause), FA_ERR);
	free(cause);

	free(path);
	free(path2);
	free(bad);
	free(link);
}
END_TEST

START_TEST(keyring_first_and_second_rotation)
{
	struct redis_conn *c = redis_pool_conn(pool, 0);
	uint8_t kek[CRYPTO_KEYLEN], k1[CRYPTO_KEYLEN], k2[CRYPTO_KEYLEN], k[CRYPTO_KEYLEN];
	struct keyring_info *info;
	struct keyring *kr;
	char *cause = NULL;
	uint32_t kid;
	int n;

	kek_fill(kek, 1);
	kr = keyring_new(kek, &kparams_default);
	ck_assert_int_eq(keyring_load(kr, c, &cause), FA_OK);
	ck_assert_int_eq(keyring_count(kr), 0);
	ck_assert_int_eq(keyring_current(kr, &kid, k), FA_NOTFOUND);

	ck_assert_int_eq(keyring_rotate(kr, c, &kid, &cause), FA_OK);
	ck_assert_uint_eq(kid, 1);
	ck_assert_int_eq(keyring_count(kr), 1);
	ck_assert_int_eq(keyring_current(kr, &kid, k1), FA_OK);
	ck_assert_uint_eq(kid, 1);
	ck_assert_int_eq(keyring_lookup(kr, 1, k), FA_OK);
	ck_assert(memcmp(k, k1, sizeof k) == 0);
	ck_assert_int_eq(keyring_lookup(kr, 2, k), FA_NOTFOUND);

	ck_assert_int_eq(keyring_list(kr, c, &info, &n, &cause), FA_OK);
	ck_assert_int_eq(n, 1);
	ck_assert_uint_eq(info[0].kid, 1);
	ck_assert_int_eq(info[0].current, 1);
	ck_assert_int_eq(info[0].retired_at, 0);
	ck_assert(info[0].created > 0);
	free(info);

	ck_assert_int_eq(keyring_rotate(kr, c, &kid, &cause), FA_OK);
	ck_assert_uint_eq(kid, 2);
	ck_assert_int_eq(keyring_count(kr), 2);
	ck_assert_int_eq(keyring_current(kr, &kid, k2), FA_OK);
	ck_assert_uint_eq(kid, 2);
	ck_assert(memcmp(k1, k2, sizeof k1) != 0);
	ck_assert_int_eq(keyring_lookup(kr, 1, k), FA_OK);
	ck_assert(memcmp(k, k1, sizeof k) == 0);
	ck_assert_int_eq(keyring_lookup(kr, 2, k), FA_OK);
	ck_assert(memcmp(k, k2, sizeof k) == 0);

	ck_assert_int_eq(keyring_list(kr, c, &info, &n, &cause), FA_OK);
	ck_assert_int_eq(n, 2);
	ck_assert_int_eq(info[0].current, 0);
	ck_assert(info[0].retired_at > 0);
	ck_assert_int_eq(info[1].current, 1);
	ck_assert_int_eq(info[1].retired_at, 0);
	free(info);

	/* Wrapped, not clear: the key bytes are nowhere in Redis. */
	{
		redisReply *r = redis_conn_command(c, "HGET t:key:2 wrapped");

		ck_assert_int_eq(r->type, REDIS_REPLY_STRING);
		ck_assert_uint_eq(r->len, B64URL_ENCLEN(CRYPTO_KEYLEN + CRYPTO_OVERHEAD));
		freeReplyObject(r);
	}

	/* A second process with the same KEK sees the same keys. */
	{
		struct keyring *other = keyring_new(kek, &kparams_default);

		ck_assert_int_eq(keyring_load(other, c, &cause), FA_OK);
		ck_assert_int_eq(keyring_current(other, &kid, k), FA_OK);
		ck_assert_uint_eq(kid, 2);
		ck_assert(memcmp(k, k2, sizeof k) == 0);
		keyring_free(other);
	}
	keyring_free(kr);
	keyring_free(NULL);
}
END_TEST

START_TEST(keyring_wrong_kek)
{
	struct redis_conn *c = redis_pool_conn(pool, 0);
	uint8_t kek[CRYPTO_KEYLEN], kek2[CRYPTO_KEYLEN];
	struct keyring *kr, *other;
	char *cause = NULL;
	uint32_t kid;
	redisReply *r;

	kek_fill(kek, 1);
	kek_fill(kek2, 2);
	kr = keyring_new(kek, &kparams_default);
	ck_assert_int_eq(keyring_rotate(kr, c, &kid, &cause), FA_OK);
	other = keyring_new(kek2, &kparams_default);
	ck_assert_int_eq(keyring_load(other, c, &cause), FA_ERR);
	ck_assert_ptr_nonnull(strstr(cause, "key 1"));
	free(cause);
	ck_assert_int_eq(keyring_count(other), 0);
	/* Nor may it add a key the other hosts could not unwrap. */
	ck_assert_int_eq(keyring_rotate(other, c, &kid, &cause), FA_ERR);
	ck_assert_ptr_nonnull(strstr(cause, "key 1"));
	free(cause);
	ck_assert_int_eq(must(c, REDIS_REPLY_INTEGER, "ZCARD t:keys"), 1);
	ck_assert_int_eq(must(c, REDIS_REPLY_INTEGER, "EXISTS t:lock:rotate"), 0);
	keyring_free(other);

	/* A wrapped key moved to another id does not unwrap (AAD names the id). */
	ck_assert_int_eq(keyring_rotate(kr, c, &kid, &cause), FA_OK);
	r = redis_conn_command(c, "HGET t:key:1 wrapped");
	{
		redisReply *w = redis_conn_command(c, "HSET t:key:2 wrapped %s", r->str);

		freeReplyObject(w);
	}
	freeReplyObject(r);
	ck_assert_int_eq(keyring_load(kr, c, &cause), FA_ERR);
	ck_assert_ptr_nonnull(strstr(cause, "key 2"));
	free(cause);
	/* A failed load keeps what was loaded. */
	ck_assert_int_eq(keyring_count(kr), 2);

	must(c, REDIS_REPLY_INTEGER, "HSET t:key:2 wrapped not-base64!");
	ck_assert_int_eq(keyring_load(kr, c, &cause), FA_ERR);
	free(cause);
	must(c, REDIS_REPLY_INTEGER, "HDEL t:key:2 created");
	ck_assert_int_eq(keyring_load(kr, c, &cause), FA_ERR);
	ck_assert_ptr_nonnull(strstr(cause, "key 2"));
	free(cause);
	keyring_free(kr);
}
END_TEST

/* Sum of the seals Redis holds for every key. */
static long long
redis_seals(struct redis_conn *c, struct keyring *kr)
{
	struct keyring_info *info;
	char *cause = NULL;
	long long sum = 0;
	int i, n;

	ck_assert_int_eq(keyring_list(kr, c, &info, &n, &cause), FA_OK);
	for (i = 0; i < n; i++)
		sum += info[i].seals;
	free(info);
	return sum;
}

START_TEST(keyring_rotate_by_seals)
{
	struct redis_conn *c = redis_pool_conn(pool, 0);
	struct keyring_params p = kparams_default;
	uint8_t kek[CRYPTO_KEYLEN], k[CRYPTO_KEYLEN];
	struct keyring *kr;
	char *cause = NULL;
	uint32_t kid;
	int i;

	p.rotate_after_seals = 5;
	kek_fill(kek, 1);
	kr = keyring_new(kek, &p);
	ck_assert_int_eq(keyring_rotate(kr, c, &kid, &cause), FA_OK);
	for (i = 0; i < 4; i++)
		keyring_current(kr, &kid, k);
	ck_assert_int_eq(keyring_maintain(kr, c, time(NULL), &cause), FA_OK);
	ck_assert_int_eq(keyring_current(kr, &kid, k), FA_OK);	/* the fifth */
	ck_assert_uint_eq(kid, 1);
	ck_assert_int_eq(redis_seals(c, kr), 4);
	ck_assert_int_eq(keyring_maintain(kr, c, time(NULL), &cause), FA_OK);
	ck_assert_int_eq(redis_seals(c, kr), 5);
	ck_assert_int_eq(keyring_current(kr, &kid, k), FA_OK);
	ck_assert_uint_eq(kid, 2);
	ck_assert_int_eq(keyring_count(kr), 2);
	keyring_free(kr);
}
END_TEST

START_TEST(keyring_rotate_by_age)
{
	struct redis_conn *c = redis_pool_conn(pool, 0);
	struct keyring_params p = kparams_default;
	uint8_t kek[CRYPTO_KEYLEN], k[CRYPTO_KEYLEN];
	struct keyring_info *info;
	struct keyring *kr;
	char *cause = NULL;
	time_t now = time(NULL);
	uint32_t kid;
	int n;

	p.rotate_after_s = 3600;
	kek_fill(kek, 1);
	kr = keyring_new(kek, &p);
	ck_assert_int_eq(keyring_rotate(kr, c, &kid, &cause), FA_OK);
	ck_assert_int_eq(keyring_maintain(kr, c, now + 3500, &cause), FA_OK);
	ck_assert_int_eq(keyring_current(kr, &kid, k), FA_OK);
	ck_assert_uint_eq(kid, 1);
	ck_assert_int_eq(keyring_maintain(kr, c, now + 3600, &cause), FA_OK);
	ck_assert_int_eq(keyring_current(kr, &kid, k), FA_OK);
	ck_assert_uint_eq(kid, 2);
	/* The new key is dated by the maintain clock: not due again at once. */
	ck_assert_int_eq(keyring_maintain(kr, c, now + 3600, &cause), FA_OK);
	ck_assert_int_eq(keyring_count(kr), 2);
	ck_assert_int_eq(keyring_list(kr, c, &info, &n, &cause), FA_OK);
	ck_assert_int_eq(n, 2);
	ck_assert_int_ge(info[1].created, now + 3600);
	ck_assert_int_ge(info[0].retired_at, now + 3600);
	free(info);
	keyring_free(kr);
}
END_TEST

START_TEST(keyring_delete_retired)
{
	struct redis_conn *c = redis_pool_conn(pool, 0);
	uint8_t kek[CRYPTO_KEYLEN], k[CRYPTO_KEYLEN];
	struct keyring_info *info;
	struct keyring *kr, *other;
	char *cause = NULL;
	time_t retired, gone;
	uint32_t kid;
	int n;

	kek_fill(kek, 1);
	kr = keyring_new(kek, &kparams_default);
	other = keyring_new(kek, &kparams_default);
	ck_assert_int_eq(keyring_rotate(kr, c, &kid, &cause), FA_OK);
	ck_assert_int_eq(keyring_rotate(kr, c, &kid, &cause), FA_OK);
	ck_assert_int_eq(keyring_load(other, c, &cause), FA_OK);
	ck_assert_int_eq(keyring_list(kr, c, &info, &n, &cause), FA_OK);
	retired = info[0].retired_at;
	free(info);
	gone = retired + kparams_default.token_lifetime_s + kparams_default.refresh_s + 60;

	ck_assert_int_eq(keyring_maintain(kr, c, gone - 1, &cause), FA_OK);
	ck_assert_int_eq(keyring_lookup(kr, 1, k), FA_OK);
	ck_assert_int_eq(keyring_maintain(kr, c, gone, &cause), FA_OK);
	ck_assert_int_eq(keyring_lookup(kr, 1, k), FA_NOTFOUND);
	ck_assert_int_eq(keyring_lookup(kr, 2, k), FA_OK);
	ck_assert_int_eq(keyring_count(kr), 1);
	ck_assert_int_eq(must(c, REDIS_REPLY_INTEGER, "EXISTS t:key:1"), 0);
	ck_assert_int_eq(must(c, REDIS_REPLY_INTEGER, "ZCARD t:keys"), 1);

	/* The other process still has key 1 until it reloads on the generation. */
	ck_assert_int_eq(keyring_lookup(other, 1, k), FA_OK);
	ck_assert_int_eq(keyring_maintain(other, c, gone, &cause), FA_OK);
	ck_assert_int_eq(keyring_lookup(other, 1, k), FA_NOTFOUND);
	ck_assert_int_eq(keyring_current(other, &kid, k), FA_OK);
	ck_assert_uint_eq(kid, 2);
	/* The current key is never deleted, however far the clock goes. */
	ck_assert_int_eq(keyring_maintain(kr, c, gone + 10 * 365 * 86400L, &cause), FA_OK);
	ck_assert_int_eq(keyring_count(kr), 1);
	keyring_free(kr);
	keyring_free(other);
}
END_TEST

struct maintain_arg {
	struct keyring		*kr;
	struct redis_conn	*conn;
	time_t			 now;
	pthread_barrier_t	*barrier;
	int			 rc;
	char			*cause;
};

static void *
maintain_thread(void *p)
{
	struct maintain_arg *a = p;

	pthread_barrier_wait(a->barrier);
	a->rc = keyring_maintain(a->kr, a->conn, a->now, &a->cause);
	return NULL;
}

/* Two processes find rotation due at the same moment: exactly one key is added. */
START_TEST(keyring_two_processes_maintain)
{
	struct keyring_params p = kparams_default;
	uint8_t kek[CRYPTO_KEYLEN], ka[CRYPTO_KEYLEN], kb[CRYPTO_KEYLEN];
	struct maintain_arg a[2];
	pthread_barrier_t barrier;
	pthread_t t[2];
	struct keyring *kr[2];
	char *cause = NULL;
	time_t now = time(NULL);
	uint32_t kid, kida, kidb;
	int round, i;

	p.rotate_after_s = 100;
	p.token_lifetime_s = 86400;	/* no deletions during the 1000 s this covers */
	kek_fill(kek, 1);
	for (i = 0; i < 2; i++)
		kr[i] = keyring_new(kek, &p);
	ck_assert_int_eq(keyring_rotate(kr[0], redis_pool_conn(pool, 0), &kid, &cause), FA_OK);
	ck_assert_int_eq(keyring_load(kr[1], redis_pool_conn(pool, 1), &cause), FA_OK);
	pthread_barrier_init(&barrier, NULL, 2);
	for (round = 1; round <= 10; round++) {
		now += 100;
		for (i = 0; i < 2; i++) {
			a[i].kr = kr[i];
			a[i].conn = redis_pool_conn(pool, i);
			a[i].now = now;
			a[i].barrier = &barrier;
			a[i].cause = NULL;
			pthread_create(&t[i], NULL, maintain_thread, &a[i]);
		}
		for (i = 0; i < 2; i++) {
			pthread_join(t[i], NULL);
			ck_assert_msg(a[i].rc == FA_OK, "maintain %d: %s", i, a[i].cause);
			free(a[i].cause);
		}
		ck_assert_int_eq(must(redis_pool_conn(pool, 2), REDIS_REPLY_INTEGER,
		    "ZCARD t:keys"), round + 1);
		/* The loser catches up on its next maintain (generation moved). */
		for (i = 0; i < 2; i++) {
			ck_assert_int_eq(keyring_maintain(kr[i], redis_pool_conn(pool, i), now,
			    &cause), FA_OK);
		}
		ck_assert_int_eq(must(redis_pool_conn(pool, 2), REDIS_REPLY_INTEGER,
		    "ZCARD t:keys"), round + 1);
		ck_assert_int_eq(keyring_current(kr[0], &kida, ka), FA_OK);
		ck_assert_int_eq(keyring_current(kr[1], &kidb, kb), FA_OK);
		ck_assert_uint_eq(kida, (uint32_t)round + 1);
		ck_assert_uint_eq(kidb, kida);
		ck_assert(memcmp(ka, kb, sizeof ka) == 0);
	}
	pthread_barrier_destroy(&barrier);
	for (i = 0; i < 2; i++)
		keyring_free(kr[i]);
}
END_TEST

struct rotate_arg {
	struct keyring		*kr;
	struct redis_conn	*conn;
	int			 rc;
	uint32_t		 kid;
	char			*cause;
};

static void *
rotate_thread(void *p)
{
	struct rotate_arg *a = p;

	a->rc = keyring_rotate(a->kr, a->conn, &a->kid, &a->cause);
	return NULL;
}

/*
 * keyring_rotate while another process holds the lock: it waits, and the
 * key the other process adds answers it (one key, not two).
 */
START_TEST(keyring_rotate_waits_for_lock)
{
	struct redis_conn *c = redis_pool_conn(pool, 0);
	uint8_t kek[CRYPTO_KEYLEN];
	struct keyring *ka, *kb;
	struct rotate_arg arg;
	char *cause = NULL;
	uint32_t kid;
	long long t0;
	pthread_t t;

	kek_fill(kek, 1);
	ka = keyring_new(kek, &kparams_default);
	kb = keyring_new(kek, &kparams_default);
	ck_assert_int_eq(keyring_rotate(kb, c, &kid, &cause), FA_OK);

	must(c, REDIS_REPLY_STATUS, "SET t:lock:rotate someone-else PX 10000");
	arg = (struct rotate_arg){ .kr = ka, .conn = redis_pool_conn(pool, 1) };
	pthread_create(&t, NULL, rotate_thread, &arg);
	sleep_ms(200);
	/* "someone-else" finishes: releases, and process B rotates at once. */
	must(c, REDIS_REPLY_INTEGER, "DEL t:lock:rotate");
	ck_assert_int_eq(keyring_rotate(kb, c, &kid, &cause), FA_OK);
	pthread_join(t, NULL);
	ck_assert_msg(arg.rc == FA_OK, "rotate: %s", arg.cause);
	ck_assert_uint_eq(arg.kid, 2);
	ck_assert_uint_eq(kid, 2);
	ck_assert_int_eq(must(c, REDIS_REPLY_INTEGER, "ZCARD t:keys"), 2);
	ck_assert_int_eq(must(c, REDIS_REPLY_INTEGER, "EXISTS t:lock:rotate"), 0);

	/* A lock that is never released: give up after about 2 s. */
	must(c, REDIS_REPLY_STATUS, "SET t:lock:rotate stuck PX 10000");
	t0 = now_ms();
	ck_assert_int_eq(keyring_rotate(ka, c, &kid, &cause), FA_ERR);
	ck_assert_int_ge(now_ms() - t0, 1900);
	ck_assert_ptr_nonnull(strstr(cause, "lock"));
	free(cause);
	/* The stranger's lock is left alone. */
	ck_assert_int_eq(must(c, REDIS_REPLY_INTEGER, "EXISTS t:lock:rotate"), 1);
	/* maintain does not wait for it either, and adds nothing. */
	{
		struct keyring_params p = kparams_default;
		struct keyring *kc;

		p.rotate_after_s = 1;
		kc = keyring_new(kek, &p);
		t0 = now_ms();
		ck_assert_int_eq(keyring_maintain(kc, c, time(NULL) + 10, &cause), FA_OK);
		ck_assert_int_lt(now_ms() - t0, 1000);
		ck_assert_int_eq(must(c, REDIS_REPLY_INTEGER, "ZCARD t:keys"), 2);
		keyring_free(kc);
	}
	keyring_free(ka);
	keyring_free(kb);
}
END_TEST

START_TEST(keyring_reload_for_new_key)
{
	uint8_t kek[CRYPTO_KEYLEN], k[CRYPTO_KEYLEN], kn[CRYPTO_KEYLEN];
	struct redis_conn *c = redis_pool_conn(pool, 0);
	struct keyring *ka, *kb;
	char *cause = NULL;
	uint32_t kid;

	kek_fill(kek, 1);
	ka = keyring_new(kek, &kparams_default);
	kb = keyring_new(kek, &kparams_default);
	ck_assert_int_eq(keyring_rotate(ka, c, &kid, &cause), FA_OK);
	ck_assert_int_eq(keyring_load(kb, c, &cause), FA_OK);
	ck_assert_int_eq(keyring_rotate(ka, c, &kid, &cause), FA_OK);
	ck_assert_uint_eq(kid, 2);
	ck_assert_int_eq(keyring_current(ka, &kid, kn), FA_OK);

	ck_assert_int_eq(keyring_lookup(kb, 2, k), FA_NOTFOUND);
	ck_assert_int_eq(keyring_reload_for(kb, c, 1), FA_OK);	/* known: no I/O */
	/* Loaded less than a second ago: no reload yet. */
	ck_assert_int_eq(keyring_reload_for(kb, c, 2), FA_NOTFOUND);
	sleep_ms(1100);
	ck_assert_int_eq(keyring_reload_for(kb, c, 2), FA_OK);
	ck_assert_int_eq(keyring_lookup(kb, 2, k), FA_OK);
	ck_assert(memcmp(k, kn, sizeof k) == 0);
	ck_assert_int_eq(keyring_current(kb, &kid, k), FA_OK);
	ck_assert_uint_eq(kid, 2);

	/* Made-up ids: one older than the newest costs nothing; a newer one one load/s. */
	ck_assert_int_eq(keyring_reload_for(kb, c, 0), FA_NOTFOUND);
	sleep_ms(1100);
	ck_assert_int_eq(keyring_reload_for(kb, c, 99), FA_NOTFOUND);
	ck_assert_int_eq(keyring_reload_for(kb, c, 100), FA_NOTFOUND);
	keyring_free(ka);
	keyring_free(kb);
}
END_TEST

START_TEST(keyring_generation_reload)
{
	uint8_t kek[CRYPTO_KEYLEN], k[CRYPTO_KEYLEN], k3[CRYPTO_KEYLEN];
	struct redis_conn *c = redis_pool_conn(pool, 0);
	struct keyring *ka, *kb;
	char *cause = NULL;
	uint32_t kid;
	int i;

	kek_fill(kek, 1);
	ka = keyring_new(kek, &kparams_default);
	kb = keyring_new(kek, &kparams_default);
	ck_assert_int_eq(keyring_rotate(ka, c, &kid, &cause), FA_OK);
	/* maintain on a never-loaded keyring loads it. */
	ck_assert_int_eq(keyring_maintain(kb, c, time(NULL), &cause), FA_OK);
	ck_assert_int_eq(keyring_current(kb, &kid, k), FA_OK);
	ck_assert_uint_eq(kid, 1);

	for (i = 0; i < 3; i++)
		keyring_current(kb, &kid, k);	/* 4 seals with key 1 in B */
	for (i = 0; i < 3; i++)
		keyring_current(ka, &kid, k);	/* 3 in A */
	ck_assert_int_eq(keyring_rotate(ka, c, &kid, &cause), FA_OK);
	ck_assert_int_eq(keyring_rotate(ka, c, &kid, &cause), FA_OK);
	ck_assert_uint_eq(kid, 3);
	ck_assert_int_eq(keyring_current(ka, &kid, k3), FA_OK);	/* 1 with key 3 */
	ck_assert_int_eq(keyring_current(kb, &kid, k), FA_OK);	/* B has not noticed */
	ck_assert_uint_eq(kid, 1);

	ck_assert_int_eq(keyring_maintain(kb, c, time(NULL), &cause), FA_OK);
	ck_assert_int_eq(keyring_current(kb, &kid, k), FA_OK);
	ck_assert_uint_eq(kid, 3);
	ck_assert(memcmp(k, k3, sizeof k) == 0);
	ck_assert_int_eq(keyring_count(kb), 3);
	/* Seals are kept across reloads and land on the key that made them. */
	ck_assert_int_eq(keyring_maintain(ka, c, time(NULL), &cause), FA_OK);
	ck_assert_int_eq(keyring_maintain(kb, c, time(NULL), &cause), FA_OK);
	{
		struct keyring_info *info;
		int n;

		ck_assert_int_eq(keyring_list(ka, c, &info, &n, &cause), FA_OK);
		ck_assert_int_eq(n, 3);
		ck_assert_int_eq(info[0].seals, 8);	/* 5 from B (incl. the last), 3 from A */
		ck_assert_int_eq(info[1].seals, 0);
		ck_assert_int_eq(info[2].seals, 2);	/* 1 from A, 1 from B */
		free(info);
	}
	keyring_free(ka);
	keyring_free(kb);
}
END_TEST

struct hammer_arg {
	struct keyring	*kr;
	int		 n;
	int		 bad;
};

static void *
hammer_thread(void *p)
{
	struct hammer_arg *a = p;
	uint8_t key[CRYPTO_KEYLEN], again[CRYPTO_KEYLEN];
	uint32_t kid;
	int i;

	for (i = 0; i < a->n; i++) {
		if (keyring_current(a->kr, &kid, key) != FA_OK ||
		    keyring_lookup(a->kr, kid, again) != FA_OK ||
		    memcmp(key, again, sizeof key) != 0)
			a->bad++;
	}
	return NULL;
}

/* Request threads seal and open while the housekeeping thread rotates. */
START_TEST(keyring_threads)
{
	struct redis_conn *c = redis_pool_conn(pool, 0);
	uint8_t kek[CRYPTO_KEYLEN];
	struct hammer_arg a[4];
	pthread_t t[4];
	struct keyring *kr;
	char *cause = NULL;
	uint32_t kid;
	int i;

	kek_fill(kek, 1);
	kr = keyring_new(kek, &kparams_default);
	ck_assert_int_eq(keyring_rotate(kr, c, &kid, &cause), FA_OK);
	for (i = 0; i < 4; i++) {
		a[i] = (struct hammer_arg){ .kr = kr, .n = 20000 };
		pthread_create(&t[i], NULL, hammer_thread, &a[i]);
	}
	for (i = 0; i < 5; i++) {
		ck_assert_int_eq(keyring_rotate(kr, c, &kid, &cause), FA_OK);
		ck_assert_int_eq(keyring_maintain(kr, c, time(NULL), &cause), FA_OK);
	}
	for (i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		ck_assert_int_eq(a[i].bad, 0);
	}
	ck_assert_int_eq(keyring_maintain(kr, c, time(NULL), &cause), FA_OK);
	ck_assert_int_eq(redis_seals(c, kr), 4 * 20000);
	keyring_free(kr);
}
END_TEST

START_TEST(keyring_unavailable)
{
	uint8_t kek[CRYPTO_KEYLEN], k[CRYPTO_KEYLEN];
	struct redis_pool *rp;
	struct redis_conn *c;
	struct keyring_info *info;
	struct keyring *kr;
	char url[64], *cause = NULL;
	uint32_t kid;
	int port, n;

	private = redis_fixture_start(NULL);
	ck_assert_ptr_nonnull(private);
	port = redis_fixture_port(private);
	redis_fixture_stop(private);
	snprintf(url, sizeof url, "redis://127.0.0.1:%d", port);
	rp = pool_open(url, 200, 50, 100, 1);
	c = redis_pool_conn(rp, 0);
	kek_fill(kek, 1);
	kr = keyring_new(kek, &kparams_default);
	ck_assert_int_eq(keyring_load(kr, c, &cause), FA_UNAVAIL);
	ck_assert_ptr_nonnull(cause);
	free(cause);
	ck_assert_int_eq(keyring_rotate(kr, c, &kid, &cause), FA_UNAVAIL);
	free(cause);
	ck_assert_int_eq(keyring_maintain(kr, c, time(NULL), &cause), FA_UNAVAIL);
	free(cause);
	ck_assert_int_eq(keyring_list(kr, c, &info, &n, &cause), FA_UNAVAIL);
	free(cause);
	sleep_ms(1100);
	ck_assert_int_eq(keyring_reload_for(kr, c, 5), FA_UNAVAIL);
	ck_assert_int_eq(keyring_current(kr, &kid, k), FA_NOTFOUND);
	keyring_free(kr);
	redis_pool_free(rp);
	redis_fixture_free(private);
	private = NULL;
}
END_TEST

/* ------------------------------------------------------------------ suite */

static Suite *
store_suite(void)
{
	Suite *s = suite_create("store");
	TCase *tc;

	tc = tcase_create("pool");
	tcase_add_checked_fixture(tc, private_setup, private_teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, pool_connect_command);
	tcase_add_test(tc, pool_bad_url);
	tcase_add_test(tc, pool_url_db);
	tcase_add_test(tc, pool_command_timeout);
	tcase_add_test(tc, pool_backoff_fail_fast);
	tcase_add_test(tc, pool_reconnect_after_restart);
	tcase_add_test(tc, pool_paused_server);
	tcase_add_test(tc, pool_pipeline);
	tcase_add_test(tc, pool_stale_replies);
	tcase_add_test(tc, pool_batch_failure);
	tcase_add_test(tc, pool_error_reply);
	suite_add_tcase(s, tc);

	tc = tcase_create("auth");
	tcase_add_checked_fixture(tc, auth_setup, private_teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, pool_auth);
	suite_add_tcase(s, tc);

	tc = tcase_create("store");
	tcase_add_checked_fixture(tc, shared_setup, shared_teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, store_client_crud);
	tcase_add_test(tc, store_client_validation);
	tcase_add_test(tc, store_client_corrupt);
	tcase_add_test(tc, store_grants);
	tcase_add_test(tc, store_revocation);
	tcase_add_test(tc, store_client_and_revoked_combinations);
	tcase_add_test(tc, store_unavailable);
	suite_add_tcase(s, tc);

	tc = tcase_create("keyring");
	tcase_add_checked_fixture(tc, shared_setup, shared_teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, keyring_kek_file);
	tcase_add_test(tc, keyring_first_and_second_rotation);
	tcase_add_test(tc, keyring_wrong_kek);
	tcase_add_test(tc, keyring_rotate_by_seals);
	tcase_add_test(tc, keyring_rotate_by_age);
	tcase_add_test(tc, keyring_delete_retired);
	tcase_add_test(tc, keyring_two_processes_maintain);
	tcase_add_test(tc, keyring_rotate_waits_for_lock);
	tcase_add_test(tc, keyring_reload_for_new_key);
	tcase_add_test(tc, keyring_generation_reload);
	tcase_add_test(tc, keyring_threads);
	tcase_add_test(tc, keyring_unavailable);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	const char *tmp = getenv("TMPDIR");
	char session[256];
	SRunner *sr;
	char *cause = NULL;
	int failed;

	/*
	 * Every temporary directory of this run (servers' and KEK files') lives
	 * under one session directory removed at the end: a test that fails in
	 * fork mode exits at once (no teardown, no atexit), so its own cleanup
	 * cannot be relied on. Its servers die with it (PR_SET_PDEATHSIG).
	 */
	snprintf(session, sizeof session, "%s/fastauth-test_store.XXXXXX",
	    tmp != NULL && *tmp != '\0' ? tmp : "/tmp");
	if (mkdtemp(session) == NULL) {
		fprintf(stderr, "mkdtemp %s: %s\n", session, strerror(errno));
		return 1;
	}
	setenv("TMPDIR", session, 1);

	/* Quiet: the tests provoke every warning on purpose. FA_TEST_LOG=1 shows them. */
	log_open("test_store", 0, getenv("FA_TEST_LOG") != NULL ? LOG_LEVEL_DEBUG :
	    LOG_LEVEL_ERR);
	if (crypto_init(&cause) != FA_OK) {
		fprintf(stderr, "crypto_init: %s\n", cause);
		rmtree(session);
		return 1;
	}
	if ((shared = redis_fixture_start(NULL)) == NULL) {
		fprintf(stderr, "cannot start redis-server (set REDIS_SERVER?)\n");
		rmtree(session);
		return 1;
	}
	sr = srunner_create(store_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	redis_fixture_free(shared);
	rmtree(session);
	return failed == 0 ? 0 : 1;
}
