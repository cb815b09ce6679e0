/*
 * test_users.c -- users (records, claims sealing, not-before, brute-force
 * counters) and refresh (issue, rotation, reuse, grace, revocation) against a
 * real redis-server.
 *
 * One shared server (started in main) serves every case, flushed before each
 * test; the outage case gets a private server of its own that it stops. The
 * tests pass their own "now" wherever the API takes one, so lifetimes are
 * checked without waiting; the few real TTLs (idle expiry, lock expiry) are
 * one second.
 */
#include <errno.h>
#include <ftw.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <check.h>
#include <jansson.h>

#include "core/fastauth.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "crypto/crypto.h"
#include "crypto/password.h"
#include "store/redis_pool.h"
#include "store/refresh.h"
#include "store/store.h"
#include "store/users.h"
#include "redis_fixture.h"

#define NTHREADS	6

static struct redis_fixture *shared;	/* main's server */
static struct redis_fixture *private;	/* the outage test's own server */
static struct redis_pool *pool;		/* the checked fixture's pool on shared */
static struct redis_conn *conn;		/* slot 0 of pool */
static struct crypto_ctx *cctx;
static uint8_t data_key[CRYPTO_KEYLEN];
static struct users_ctx uctx;
static char phc1[PASSWORD_PHC_MAX], phc2[PASSWORD_PHC_MAX];	/* made once in main */

/* ------------------------------------------------------------------ helpers */

static void
sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

static struct redis_pool *
pool_open(const char *url, int size)
{
	struct redis_pool_params p = {
		.url = url, .prefix = "t:", .connect_timeout_ms = 1000,
		.command_timeout_ms = 3000, .backoff_min_ms = 50,
		.backoff_max_ms = 200, .size = size,
	};
	struct redis_pool *rp;
	char *cause = NULL;

	rp = redis_pool_new(&p, &cause);
	ck_assert_msg(rp != NULL, "redis_pool_new %s: %s", url, cause);
	return rp;
}

/* Run a command given as argv (NULL-terminated); the reply, which must not be NULL. */
static redisReply *
cmd(const char *first, ...)
{
	const char *argv[16];
	va_list ap;
	redisReply *r;
	int argc = 0;

	argv[argc++] = first;
	va_start(ap, first);
	while (argc < 16 && (argv[argc] = va_arg(ap, const char *)) != NULL)
		argc++;
	va_end(ap);
	r = redis_conn_commandargv(conn, argc, argv, NULL);
	ck_assert_msg(r != NULL, "%s: %s", first, redis_conn_errstr(conn));
	ck_assert_msg(r->type != REDIS_REPLY_ERROR, "%s: %s", first, r->str);
	return r;
}

/* An integer reply. */
static long long
cmd_int(const char *first, ...)
{
	const char *argv[16];
	va_list ap;
	redisReply *r;
	long long v;
	int argc = 0;

	argv[argc++] = first;
	va_start(ap, first);
	while (argc < 16 && (argv[argc] = va_arg(ap, const char *)) != NULL)
		argc++;
	va_end(ap);
	r = redis_conn_commandargv(conn, argc, argv, NULL);
	ck_assert_msg(r != NULL && r->type == REDIS_REPLY_INTEGER, "%s: bad reply", first);
	v = r->integer;
	freeReplyObject(r);
	return v;
}

/* A string reply as a fresh string, NULL for nil. */
static char *
cmd_str(const char *first, ...)
{
	const char *argv[16];
	va_list ap;
	redisReply *r;
	char *s = NULL;
	int argc = 0;

	argv[argc++] = first;
	va_start(ap, first);
	while (argc < 16 && (argv[argc] = va_arg(ap, const char *)) != NULL)
		argc++;
	va_end(ap);
	r = redis_conn_commandargv(conn, argc, argv, NULL);
	ck_assert_msg(r != NULL, "%s: %s", first, redis_conn_errstr(conn));
	ck_assert_msg(r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_NIL,
	    "%s: reply type %d", first, r->type);
	if (r->type == REDIS_REPLY_STRING)
		s = xstrndup(r->str, r->len);
	freeReplyObject(r);
	return s;
}

/* "t:rt:" + hex SHA-256 of a token. */
static void
rt_key(const char *token, char *out, size_t cap)
{
	uint8_t h[CRYPTO_HASHLEN];
	char hex[2 * CRYPTO_HASHLEN + 1];

	crypto_sha256(token, strlen(token), h);
	crypto_hex(h, sizeof h, hex);
	snprintf(out, cap, "t:rt:%s", hex);
}

static void
shared_setup(void)
{
	redisReply *r;

	ck_assert(shared != NULL);
	pool = pool_open(redis_fixture_url(shared), NTHREADS + 1);
	conn = redis_pool_conn(pool, 0);
	r = cmd("FLUSHALL", NULL);
	freeReplyObject(r);
	cctx = crypto_ctx_new();
	ck_assert_int_eq(crypto_random(data_key, sizeof data_key), FA_OK);
	uctx.conn = conn;
	uctx.crypto = cctx;
	uctx.data_key = data_key;
}

static void
shared_teardown(void)
{
	redis_pool_free(pool);
	pool = NULL;
	conn = NULL;
	crypto_ctx_free(cctx);
	cctx = NULL;
}

static void
private_setup(void)
{
	private = redis_fixture_start(NULL);
	ck_assert_msg(private != NULL, "cannot start redis-server");
	cctx = crypto_ctx_new();
	ck_assert_int_eq(crypto_random(data_key, sizeof data_key), FA_OK);
}

static void
private_teardown(void)
{
	redis_fixture_free(private);
	private = NULL;
	crypto_ctx_free(cctx);
	cctx = NULL;
}

/* ------------------------------------------------------------- user records */

START_TEST(user_crud)
{
	struct users_user u, v;
	char id[USERS_ID_LEN + 1], id2[USERS_ID_LEN + 1], key[64], **names;
	time_t before = time(NULL), nbf;
	int n;

	ck_assert_int_eq(users_create(&uctx, "alice", phc1, id), FA_OK);
	ck_assert_uint_eq(strlen(id), USERS_ID_LEN);
	ck_assert_uint_eq(strspn(id, "0123456789abcdef"), USERS_ID_LEN);
	ck_assert_int_eq(users_create(&uctx, "bob", phc2, id2), FA_OK);
	ck_assert_str_ne(id, id2);

	ck_assert_int_eq(users_get(&uctx, "alice", &u), FA_OK);
	ck_assert_str_eq(u.username, "alice");
	ck_assert_str_eq(u.id, id);
	ck_assert_str_eq(u.pw, phc1);
	ck_assert_int_eq(u.locked, 0);
	ck_assert_ptr_null(u.claims_json);
	ck_assert(u.created >= before && u.created <= time(NULL));
	ck_assert(u.updated == u.created);
	ck_assert_int_eq(u.not_before, 0);

	ck_assert_int_eq(users_get_by_id(&uctx, id, &v), FA_OK);
	ck_assert_str_eq(v.username, "alice");
	ck_assert_str_eq(v.id, id);
	ck_assert_str_eq(v.pw, phc1);
	users_user_clear(&v);
	ck_assert_str_eq(v.username, "");
	users_user_clear(&v);	/* twice is harmless */

	ck_assert_int_eq(users_list(&uctx, &names, &n), FA_OK);
	ck_assert_int_eq(n, 2);
	ck_assert_str_eq(names[0], "alice");
	ck_assert_str_eq(names[1], "bob");
	store_ids_free(names, n);

	/* Remove: record, index and set entry go; the not-before is set past now. */
	before = time(NULL);
	ck_assert_int_eq(users_remove(&uctx, "alice"), FA_OK);
	ck_assert_int_eq(users_get(&uctx, "alice", &v), FA_NOTFOUND);
	ck_assert_int_eq(users_get_by_id(&uctx, id, &v), FA_NOTFOUND);
	snprintf(key, sizeof key, "t:uid:%s", id);
	ck_assert_int_eq(cmd_int("EXISTS", key, NULL), 0);
	ck_assert_int_eq(users_get_not_before(conn, id, &nbf), FA_OK);
	ck_assert(nbf >= before + 1 && nbf <= time(NULL) + 1);
	ck_assert_int_eq(users_remove(&uctx, "alice"), FA_NOTFOUND);
	ck_assert_int_eq(users_list(&uctx, &names, &n), FA_OK);
	ck_assert_int_eq(n, 1);
	ck_assert_str_eq(names[0], "bob");
	store_ids_free(names, n);
	ck_assert_int_eq(users_get_by_id(&uctx, id2, &v), FA_OK);
	ck_assert_str_eq(v.username, "bob");
	users_user_clear(&v);

	/* The same name again is a new subject. */
	ck_assert_int_eq(users_create(&uctx, "alice", phc1, id2), FA_OK);
	ck_assert_str_ne(id, id2);
	users_user_clear(&u);
	ck_assert_int_eq(users_get(&uctx, "alice", &u), FA_OK);
	ck_assert_int_eq(u.not_before, 0);
	users_user_clear(&u);

	/* Ids that could never exist. */
	ck_assert_int_eq(users_get_by_id(&uctx, "ABC", &v), FA_NOTFOUND);
	ck_assert_int_eq(users_get_by_id(&uctx, "0123456789ABCDEF0123456789ABCDEF", &v),
	    FA_NOTFOUND);
	ck_assert_int_eq(users_get_by_id(&uctx, "00000000000000000000000000000000", &v),
	    FA_NOTFOUND);
}
END_TEST

START_TEST(user_duplicate)
{
	struct users_user u;
	char id[USERS_ID_LEN + 1], id2[USERS_ID_LEN + 1];
	char **names;
	int n;

	ck_assert_int_eq(users_create(&uctx, "carol", phc1, id), FA_OK);
	ck_assert_int_eq(users_create(&uctx, "carol", phc2, id2), FA_DENIED);
	ck_assert_str_eq(id2, "");
	ck_assert_int_eq(users_get(&uctx, "carol", &u), FA_OK);
	ck_assert_str_eq(u.id, id);
	ck_assert_str_eq(u.pw, phc1);
	users_user_clear(&u);
	ck_assert_int_eq(users_list(&uctx, &names, &n), FA_OK);
	ck_assert_int_eq(n, 1);
	store_ids_free(names, n);
	/* Usernames are case-sensitive. */
	ck_assert_int_eq(users_create(&uctx, "Carol", phc1, id2), FA_OK);
}
END_TEST

START_TEST(user_bad_names)
{
	static const char *bad[] = {
		"", "a b", "a:b", "a/b", "a*b", "caf\xc3\xa9", "a\tb", "a,b", "#x", "a\"b",
		"x\n",
	};
	char id[USERS_ID_LEN + 1], name[USERS_NAME_MAX + 2];
	struct users_user u;
	size_t i;

	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		ck_assert_msg(users_create(&uctx, bad[i], phc1, id) == FA_ERR, "%s", bad[i]);
		ck_assert_int_eq(users_get(&uctx, bad[i], &u), FA_NOTFOUND);
		ck_assert_int_eq(users_set_locked(&uctx, bad[i], 1), FA_NOTFOUND);
		ck_assert_int_eq(users_remove(&uctx, bad[i]), FA_NOTFOUND);
	}
	ck_assert_int_eq(users_create(&uctx, NULL, phc1, id), FA_ERR);
	memset(name, 'a', USERS_NAME_MAX + 1);
	name[USERS_NAME_MAX + 1] = '\0';
	ck_assert_int_eq(users_create(&uctx, name, phc1, id), FA_ERR);
	name[USERS_NAME_MAX] = '\0';
	ck_assert_int_eq(users_create(&uctx, name, phc1, id), FA_OK);
	ck_assert_int_eq(users_create(&uctx, "A.z_@+-9", phc1, id), FA_OK);
	ck_assert_int_eq(users_get(&uctx, "A.z_@+-9", &u), FA_OK);
	users_user_clear(&u);

	/* The password must be a PHC string: never a plaintext by mistake. */
	ck_assert_int_eq(users_create(&uctx, "dave", "hunter2", id), FA_ERR);
	ck_assert_int_eq(users_create(&uctx, "dave", "", id), FA_ERR);
	ck_assert_int_eq(users_create(&uctx, "dave", NULL, id), FA_ERR);
	ck_assert_int_eq(users_create(&uctx, "dave", "$argon2id$v=19$m=64,t=1,p=1$x$y", id),
	    FA_ERR);
	ck_assert_int_eq(users_get(&uctx, "dave", &u), FA_NOTFOUND);
	ck_assert_int_eq(cmd_int("EXISTS", "t:user:dave", NULL), 0);
}
END_TEST

START_TEST(user_password)
{
	struct users_user u;
	char id[USERS_ID_LEN + 1];

	ck_assert_int_eq(users_create(&uctx, "erin", phc1, id), FA_OK);
	ck_assert_int_eq(users_set_claims(&uctx, "erin", "{\"name\":\"Erin\"}",
	    &(char *){ NULL }), FA_OK);
	ck_assert_int_eq(users_set_locked(&uctx, "erin", 1), FA_OK);
	ck_assert_int_eq(users_set_password(&uctx, "erin", phc2), FA_OK);
	ck_assert_int_eq(users_get(&uctx, "erin", &u), FA_OK);
	ck_assert_str_eq(u.pw, phc2);
	ck_assert_str_eq(u.id, id);
	ck_assert_int_eq(u.locked, 1);			/* other fields untouched */
	ck_assert_str_eq(u.claims_json, "{\"name\":\"Erin\"}");
	users_user_clear(&u);
	ck_assert_int_eq(users_set_password(&uctx, "erin", "plain"), FA_ERR);
	ck_assert_int_eq(users_set_password(&uctx, "nobody", phc2), FA_NOTFOUND);
	ck_assert_int_eq(cmd_int("EXISTS", "t:user:nobody", NULL), 0);

	/* Rehash on login: only over the hash that was verified. */
	ck_assert_int_eq(users_rehash_password(&uctx, "erin", phc1, phc1), FA_DENIED);
	ck_assert_int_eq(users_get(&uctx, "erin", &u), FA_OK);
	ck_assert_str_eq(u.pw, phc2);
	users_user_clear(&u);
	ck_assert_int_eq(users_rehash_password(&uctx, "erin", phc2, phc1), FA_OK);
	ck_assert_int_eq(users_get(&uctx, "erin", &u), FA_OK);
	ck_assert_str_eq(u.pw, phc1);
	users_user_clear(&u);
	ck_assert_int_eq(users_rehash_password(&uctx, "nobody", phc2, phc1), FA_NOTFOUND);
	ck_assert_int_eq(users_rehash_password(&uctx, "erin", phc1, "x"), FA_ERR);
}
END_TEST

START_TEST(user_lock_flag)
{
	struct users_user u;
	char id[USERS_ID_LEN + 1];

	ck_assert_int_eq(users_create(&uctx, "frank", phc1, id), FA_OK);
	ck_assert_int_eq(users_set_locked(&uctx, "frank", 1), FA_OK);
	ck_assert_int_eq(users_get(&uctx, "frank", &u), FA_OK);
	ck_assert_int_eq(u.locked, 1);
	ck_assert_str_eq(u.pw, phc1);
	users_user_clear(&u);
	ck_assert_int_eq(users_set_locked(&uctx, "frank", 0), FA_OK);
	ck_assert_int_eq(users_get(&uctx, "frank", &u), FA_OK);
	ck_assert_int_eq(u.locked, 0);
	users_user_clear(&u);
	ck_assert_int_eq(users_set_locked(&uctx, "ghost", 1), FA_NOTFOUND);
	ck_assert_int_eq(cmd_int("EXISTS", "t:user:ghost", NULL), 0);
}
END_TEST

/* ------------------------------------------------------------------ claims */

START_TEST(claims_roundtrip)
{
	const char *in = "{ \"name\": \"Zo\xc3\xab \xc3\x91" "and\xc3\xba \xe6\x97\xa5\xe6\x9c\xac\","
	    " \"given_name\": \"Zo\\u00eb\", \"email\": \"zoe@example.org\","
	    " \"email_verified\": true, \"department\": \"R&D \\\"x\\\"\", \"level\": 3,"
	    " \"ratio\": 1.1, \"on_call\": false }";
	const char *want = "{\"name\":\"Zo\xc3\xab \xc3\x91" "and\xc3\xba \xe6\x97\xa5\xe6\x9c\xac\","
	    "\"given_name\":\"Zo\xc3\xab\",\"email\":\"zoe@example.org\","
	    "\"email_verified\":true,\"department\":\"R&D \\\"x\\\"\",\"level\":3,"
	    "\"ratio\":1.1,\"on_call\":false}";
	struct users_user u;
	char id[USERS_ID_LEN + 1], *cause = NULL, *field;
	json_error_t jerr;
	json_t *j;

	ck_assert_int_eq(users_create(&uctx, "zoe", phc1, id), FA_OK);
	ck_assert_int_eq(users_set_claims(&uctx, "zoe", in, &cause), FA_OK);
	ck_assert_ptr_null(cause);
	ck_assert_int_eq(users_get(&uctx, "zoe", &u), FA_OK);
	ck_assert_ptr_nonnull(u.claims_json);
	ck_assert_str_eq(u.claims_json, want);
	j = json_loads(u.claims_json, 0, &jerr);
	ck_assert_ptr_nonnull(j);
	ck_assert_str_eq(json_string_value(json_object_get(j, "given_name")), "Zo\xc3\xab");
	ck_assert(json_is_true(json_object_get(j, "email_verified")));
	ck_assert_int_eq(json_integer_value(json_object_get(j, "level")), 3);
	json_decref(j);
	users_user_clear(&u);
	ck_assert_ptr_null(u.claims_json);

	/* At rest the claims are not readable. */
	field = cmd_str("HGET", "t:user:zoe", "claims", NULL);
	ck_assert_ptr_nonnull(field);
	ck_assert_ptr_null(strstr(field, "zoe@example.org"));
	ck_assert_ptr_null(strstr(field, "department"));
	free(field);

	/* By id too. */
	ck_assert_int_eq(users_get_by_id(&uctx, id, &u), FA_OK);
	ck_assert_str_eq(u.claims_json, want);
	users_user_clear(&u);

	/* Replace, then remove with {} and with NULL. */
	ck_assert_int_eq(users_set_claims(&uctx, "zoe", "{\"name\":\"Z\"}", &cause), FA_OK);
	ck_assert_int_eq(users_get(&uctx, "zoe", &u), FA_OK);
	ck_assert_str_eq(u.claims_json, "{\"name\":\"Z\"}");
	ck_assert_str_eq(u.pw, phc1);
	users_user_clear(&u);
	ck_assert_int_eq(users_set_claims(&uctx, "zoe", " { } ", &cause), FA_OK);
	ck_assert_int_eq(users_get(&uctx, "zoe", &u), FA_OK);
	ck_assert_ptr_null(u.claims_json);
	users_user_clear(&u);
	ck_assert_int_eq(cmd_int("HEXISTS", "t:user:zoe", "claims", NULL), 0);
	ck_assert_int_eq(users_set_claims(&uctx, "zoe", "{\"name\":\"Z\"}", &cause), FA_OK);
	ck_assert_int_eq(users_set_claims(&uctx, "zoe", NULL, &cause), FA_OK);
	ck_assert_int_eq(cmd_int("HEXISTS", "t:user:zoe", "claims", NULL), 0);

	ck_assert_int_eq(users_set_claims(&uctx, "nobody", "{}", &cause), FA_NOTFOUND);
	ck_assert_int_eq(cmd_int("EXISTS", "t:user:nobody", NULL), 0);
}
END_TEST

START_TEST(claims_validation)
{
	static const char *bad[] = {
		"", "nope", "[]", "\"x\"", "1", "null", "{\"name\":\"a\"} x",
		"{\"Name\":\"a\"}", "{\"a-b\":\"a\"}", "{\"\":\"a\"}", "{\"a b\":1}",
		"{\"caf\xc3\xa9\":1}",
		"{\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\":1}",
		"{\"address\":{\"street\":\"x\"}}", "{\"groups\":[\"a\"]}", "{\"x\":null}",
		"{\"email_verified\":\"yes\"}", "{\"name\":42}", "{\"email\":true}",
		"{\"sub\":\"someone-else\"}", "{\"iss\":\"x\"}", "{\"scope\":\"admin\"}",
		"{\"a\":1,\"a\":2}", "{\"bad\":\"\xff\xfe\"}", "{\"nul\":\"a\\u0000b\"}",
		"{\"big\":123456789012345678901234567890}",
	};
	char id[USERS_ID_LEN + 1], *cause, *compact, *big, key[16];
	struct users_user u;
	json_t *obj;
	size_t i;

	ck_assert_int_eq(users_create(&uctx, "vic", phc1, id), FA_OK);
	ck_assert_int_eq(users_set_claims(&uctx, "vic", "{\"name\":\"Vic\"}", &(char *){ NULL }),
	    FA_OK);
	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		cause = NULL;
		ck_assert_msg(users_set_claims(&uctx, "vic", bad[i], &cause) == FA_ERR,
		    "accepted %s", bad[i]);
		ck_assert_msg(cause != NULL && *cause != '\0', "no cause for %s", bad[i]);
		free(cause);
	}
	/* Nothing was written. */
	ck_assert_int_eq(users_get(&uctx, "vic", &u), FA_OK);
	ck_assert_str_eq(u.claims_json, "{\"name\":\"Vic\"}");
	users_user_clear(&u);

	/* 32 claims pass, 33 do not. */
	obj = json_object();
	for (i = 0; i < USERS_CLAIMS_COUNT; i++) {
		snprintf(key, sizeof key, "c%zu", i);
		json_object_set_new(obj, key, json_integer((json_int_t)i));
	}
	big = json_dumps(obj, JSON_COMPACT);
	cause = NULL;
	ck_assert_int_eq(users_set_claims(&uctx, "vic", big, &cause), FA_OK);
	free(big);
	json_object_set_new(obj, "one_more", json_true());
	big = json_dumps(obj, JSON_COMPACT);
	ck_assert_int_eq(users_set_claims(&uctx, "vic", big, &cause), FA_ERR);
	ck_assert_ptr_nonnull(strstr(cause, "33"));
	free(cause);
	free(big);
	json_decref(obj);

	/* USERS_CLAIMS_MAX bytes in compact form pass, one more does not. */
	big = xmalloc(USERS_CLAIMS_MAX + 64);
	memcpy(big, "{\"blob\":\"", 9);
	memset(big + 9, 'x', USERS_CLAIMS_MAX - 11);
	memcpy(big + USERS_CLAIMS_MAX - 2, "\"}", 3);
	ck_assert_uint_eq(strlen(big), USERS_CLAIMS_MAX);
	ck_assert_int_eq(users_claims_validate(big, &compact, &cause), FA_OK);
	ck_assert_str_eq(compact, big);
	free(compact);
	ck_assert_int_eq(users_set_claims(&uctx, "vic", big, &cause), FA_OK);
	ck_assert_int_eq(users_get(&uctx, "vic", &u), FA_OK);
	ck_assert_str_eq(u.claims_json, big);
	users_user_clear(&u);
	memcpy(big + USERS_CLAIMS_MAX - 2, "x\"}", 4);
	cause = NULL;
	ck_assert_int_eq(users_set_claims(&uctx, "vic", big, &cause), FA_ERR);
	ck_assert_ptr_nonnull(cause);
	free(cause);
	free(big);
	/* Whitespace does not count; an absurd input is refused unparsed. */
	big = xmalloc(8 * USERS_CLAIMS_MAX);
	memset(big, ' ', 8 * USERS_CLAIMS_MAX - 1);
	big[0] = '{';
	big[8 * USERS_CLAIMS_MAX - 2] = '}';
	big[8 * USERS_CLAIMS_MAX - 1] = '\0';
	cause = NULL;
	ck_assert_int_eq(users_claims_validate(big, NULL, &cause), FA_ERR);
	free(cause);
	big[2 * USERS_CLAIMS_MAX] = '}';
	big[2 * USERS_CLAIMS_MAX + 1] = '\0';
	ck_assert_int_eq(users_claims_validate(big, &compact, &cause), FA_OK);
	ck_assert_str_eq(compact, "{}");
	free(compact);
	free(big);
}
END_TEST

/* The claims of one user under another's record do not open. */
START_TEST(claims_bound_to_user)
{
	char ida[USERS_ID_LEN + 1], idb[USERS_ID_LEN + 1], *fa, *cause = NULL;
	struct users_user u;
	redisReply *r;
	size_t i;

	ck_assert_int_eq(users_create(&uctx, "usera", phc1, ida), FA_OK);
	ck_assert_int_eq(users_create(&uctx, "userb", phc2, idb), FA_OK);
	ck_assert_int_eq(users_set_claims(&uctx, "usera",
	    "{\"email\":\"a@example.org\"}", &cause), FA_OK);
	ck_assert_int_eq(users_set_claims(&uctx, "userb",
	    "{\"email\":\"b@example.org\"}", &cause), FA_OK);

	/* Only the claims field copied. */
	fa = cmd_str("HGET", "t:user:usera", "claims", NULL);
	r = cmd("HSET", "t:user:userb", "claims", fa, NULL);
	freeReplyObject(r);
	ck_assert_int_eq(users_get(&uctx, "userb", &u), FA_ERR);
	ck_assert_ptr_null(u.claims_json);
	ck_assert_str_eq(u.pw, "");
	ck_assert_int_eq(users_get_by_id(&uctx, idb, &u), FA_ERR);
	ck_assert_int_eq(users_get(&uctx, "usera", &u), FA_OK);
	ck_assert_str_eq(u.claims_json, "{\"email\":\"a@example.org\"}");
	users_user_clear(&u);

	/* The whole record copied (id included) under B's name. */
	r = cmd("HGETALL", "t:user:usera", NULL);
	ck_assert_int_eq(r->type, REDIS_REPLY_ARRAY);
	for (i = 0; i < r->elements; i += 2) {
		redisReply *s = cmd("HSET", "t:user:userb", r->element[i]->str,
		    r->element[i + 1]->str, NULL);

		freeReplyObject(s);
	}
	freeReplyObject(r);
	ck_assert_int_eq(users_get(&uctx, "userb", &u), FA_ERR);

	/* Claims of a removed user put back into a new user of the same name. */
	ck_assert_int_eq(users_remove(&uctx, "usera"), FA_OK);
	ck_assert_int_eq(users_create(&uctx, "usera", phc1, ida), FA_OK);
	r = cmd("HSET", "t:user:usera", "claims", fa, NULL);
	freeReplyObject(r);
	ck_assert_int_eq(users_get(&uctx, "usera", &u), FA_ERR);
	free(fa);

	/* A flipped bit anywhere in the field. */
	ck_assert_int_eq(users_set_claims(&uctx, "usera", "{\"name\":\"A\"}", &cause), FA_OK);
	fa = cmd_str("HGET", "t:user:usera", "claims", NULL);
	fa[20] = fa[20] == 'A' ? 'B' : 'A';
	r = cmd("HSET", "t:user:usera", "claims", fa, NULL);
	freeReplyObject(r);
	ck_assert_int_eq(users_get(&uctx, "usera", &u), FA_ERR);
	free(fa);
	r = cmd("HSET", "t:user:usera", "claims", "!!!", NULL);
	freeReplyObject(r);
	ck_assert_int_eq(users_get(&uctx, "usera", &u), FA_ERR);
}
END_TEST

START_TEST(claims_wrong_key)
{
	struct users_ctx other = uctx;
	uint8_t key2[CRYPTO_KEYLEN];
	char id[USERS_ID_LEN + 1], *cause = NULL;
	struct users_user u;

	ck_assert_int_eq(users_create(&uctx, "kim", phc1, id), FA_OK);
	ck_assert_int_eq(users_set_claims(&uctx, "kim", "{\"name\":\"Kim\"}", &cause), FA_OK);
	memcpy(key2, data_key, sizeof key2);
	key2[31] ^= 1;
	other.data_key = key2;
	ck_assert_int_eq(users_get(&other, "kim", &u), FA_ERR);
	ck_assert_int_eq(users_get_by_id(&other, id, &u), FA_ERR);
	ck_assert_int_eq(users_get(&uctx, "kim", &u), FA_OK);
	users_user_clear(&u);
}
END_TEST

START_TEST(user_corrupt)
{
	char id[USERS_ID_LEN + 1];
	struct users_user u;
	redisReply *r;

	ck_assert_int_eq(users_create(&uctx, "lee", phc1, id), FA_OK);
	r = cmd("HSET", "t:user:lee", "locked", "maybe", NULL);
	freeReplyObject(r);
	ck_assert_int_eq(users_get(&uctx, "lee", &u), FA_ERR);
	r = cmd("HSET", "t:user:lee", "locked", "0", NULL);
	freeReplyObject(r);
	r = cmd("HDEL", "t:user:lee", "pw", NULL);
	freeReplyObject(r);
	ck_assert_int_eq(users_get(&uctx, "lee", &u), FA_ERR);
	r = cmd("SET", "t:user:lee", "x", NULL);
	freeReplyObject(r);
	ck_assert_int_eq(users_get(&uctx, "lee", &u), FA_UNAVAIL);	/* WRONGTYPE */
}
END_TEST

START_TEST(not_before)
{
	char id[USERS_ID_LEN + 1];
	struct users_user u;
	time_t t;

	ck_assert_int_eq(users_create(&uctx, "nina", phc1, id), FA_OK);
	ck_assert_int_eq(users_get_not_before(conn, id, &t), FA_OK);
	ck_assert_int_eq(t, 0);
	ck_assert_int_eq(users_set_not_before(conn, id, 1000), FA_OK);
	ck_assert_int_eq(users_get_not_before(conn, id, &t), FA_OK);
	ck_assert_int_eq(t, 1000);
	ck_assert_int_eq(users_set_not_before(conn, id, 500), FA_OK);	/* never lowered */
	ck_assert_int_eq(users_get_not_before(conn, id, &t), FA_OK);
	ck_assert_int_eq(t, 1000);
	ck_assert_int_eq(users_set_not_before(conn, id, 2000), FA_OK);
	ck_assert_int_eq(users_get_not_before(conn, id, &t), FA_OK);
	ck_assert_int_eq(t, 2000);
	ck_assert_int_eq(users_get(&uctx, "nina", &u), FA_OK);
	ck_assert_int_eq(u.not_before, 2000);
	users_user_clear(&u);
	ck_assert_int_eq(users_get_by_id(&uctx, id, &u), FA_OK);
	ck_assert_int_eq(u.not_before, 2000);
	users_user_clear(&u);
	/* Other subjects (e.g. a client id) are independent. */
	ck_assert_int_eq(users_set_not_before(conn, "client-1", 7), FA_OK);
	ck_assert_int_eq(users_get_not_before(conn, "client-1", &t), FA_OK);
	ck_assert_int_eq(t, 7);
	ck_assert_int_eq(users_set_not_before(conn, "a b", 7), FA_ERR);
	ck_assert_int_eq(users_set_not_before(conn, "", 7), FA_ERR);
	ck_assert_int_eq(users_get_not_before(conn, "zzz", &t), FA_OK);
	ck_assert_int_eq(t, 0);
}
END_TEST

/* ---------------------------------------------------------------- throttle */

static const struct users_throttle_params tp = {
	.max_failures = 5, .window_s = 60, .lock_s = 2, .delay_base_ms = 100,
	.delay_max_ms = 400, .max_failures_addr = 0,
};

START_TEST(throttle_delay)
{
	int locked, nl;
	long d;
	long t = 1700000000000L;

	ck_assert_int_eq(users_login_check(conn, &tp, "olga", "10.0.0.1", t, &locked, &d), FA_OK);
	ck_assert_int_eq(locked, 0);
	ck_assert_int_eq(d, 0);

	/* 1st failure: 100 ms, counted down from the failure's time. */
	ck_assert_int_eq(users_login_failed(conn, &tp, "olga", "10.0.0.1", t, &nl), FA_OK);
	ck_assert_int_eq(nl, 0);
	ck_assert_int_eq(users_login_check(conn, &tp, "olga", "10.0.0.1", t, &locked, &d), FA_OK);
	ck_assert_int_eq(locked, 0);
	ck_assert_int_eq(d, 100);
	ck_assert_int_eq(users_login_check(conn, &tp, "olga", NULL, t + 60, &locked, &d), FA_OK);
	ck_assert_int_eq(d, 40);
	ck_assert_int_eq(users_login_check(conn, &tp, "olga", NULL, t + 100, &locked, &d), FA_OK);
	ck_assert_int_eq(d, 0);
	/* A clock behind the failure's never waits longer than the delay. */
	ck_assert_int_eq(users_login_check(conn, &tp, "olga", NULL, t - 5000, &locked, &d), FA_OK);
	ck_assert_int_eq(d, 100);

	/* Doubling, then the cap. */
	t += 1000;
	ck_assert_int_eq(users_login_failed(conn, &tp, "olga", "10.0.0.1", t, &nl), FA_OK);
	ck_assert_int_eq(users_login_check(conn, &tp, "olga", NULL, t, &locked, &d), FA_OK);
	ck_assert_int_eq(d, 200);
	t += 1000;
	ck_assert_int_eq(users_login_failed(conn, &tp, "olga", "10.0.0.1", t, &nl), FA_OK);
	ck_assert_int_eq(users_login_check(conn, &tp, "olga", NULL, t, &locked, &d), FA_OK);
	ck_assert_int_eq(d, 400);
	t += 1000;
	ck_assert_int_eq(users_login_failed(conn, &tp, "olga", "10.0.0.1", t, &nl), FA_OK);
	ck_assert_int_eq(nl, 0);
	ck_assert_int_eq(users_login_check(conn, &tp, "olga", NULL, t + 1, &locked, &d), FA_OK);
	ck_assert_int_eq(d, 399);
	ck_assert_int_eq(locked, 0);

	/* The window is a TTL from the first failure. */
	ck_assert(cmd_int("PTTL", "t:fail:u:olga", NULL) > 50000);
	ck_assert(cmd_int("PTTL", "t:fail:u:olga", NULL) <= 60000);

	/* Another user is unaffected. */
	ck_assert_int_eq(users_login_check(conn, &tp, "pat", "10.0.0.1", t, &locked, &d), FA_OK);
	ck_assert_int_eq(d, 0);
	ck_assert_int_eq(locked, 0);

	/* No delay configured: never a wait. */
	{
		struct users_throttle_params p0 = tp;

		p0.delay_base_ms = 0;
		ck_assert_int_eq(users_login_check(conn, &p0, "olga", NULL, t, &locked, &d), FA_OK);
		ck_assert_int_eq(d, 0);
	}
	/* Bad parameters. */
	{
		struct users_throttle_params pb = tp;

		pb.window_s = 0;
		ck_assert_int_eq(users_login_check(conn, &pb, "olga", NULL, t, &locked, &d), FA_ERR);
		ck_assert_int_eq(locked, 1);
		ck_assert_int_eq(users_login_failed(conn, &pb, "olga", NULL, t, &nl), FA_ERR);
		pb = tp;
		pb.lock_s = 0;
		ck_assert_int_eq(users_login_failed(conn, &pb, "olga", NULL, t, &nl), FA_ERR);
	}
}
END_TEST

START_TEST(throttle_lock)
{
	struct users_throttle_params p = tp;
	const char *names[] = { "quinn", "nobody-at-all", "a name with spaces \xff" };
	int locked, nl, i, k;
	long d, t = 1700000000000L;
	long long pttl;

	p.max_failures = 3;
	for (k = 0; k < 3; k++) {
		for (i = 1; i <= 2; i++) {
			ck_assert_int_eq(users_login_failed(conn, &p, names[k], NULL, t, &nl), FA_OK);
			ck_assert_int_eq(nl, 0);
		}
		ck_assert_int_eq(users_login_check(conn, &p, names[k], NULL, t + 10000, &locked, &d),
		    FA_OK);
		ck_assert_int_eq(locked, 0);
		ck_assert_int_eq(users_login_failed(conn, &p, names[k], NULL, t, &nl), FA_OK);
		ck_assert_msg(nl == USERS_LOCKED_USER, "%s: now_locked %d", names[k], nl);
		ck_assert_int_eq(users_login_check(conn, &p, names[k], NULL, t + 10000, &locked, &d),
		    FA_OK);
		ck_assert_int_eq(locked, 1);
		/* Failures while locked neither count nor raise another event. */
		ck_assert_int_eq(users_login_failed(conn, &p, names[k], NULL, t, &nl), FA_OK);
		ck_assert_int_eq(nl, 0);
	}
	pttl = cmd_int("PTTL", "t:lock:u:quinn", NULL);
	ck_assert(pttl > 0 && pttl <= 2000);
	ck_assert_int_eq(cmd_int("EXISTS", "t:fail:u:quinn", NULL), 0);

	/* Unlock clears the lock and the count. */
	ck_assert_int_eq(users_unlock(conn, "quinn"), FA_OK);
	ck_assert_int_eq(users_login_check(conn, &p, "quinn", NULL, t, &locked, &d), FA_OK);
	ck_assert_int_eq(locked, 0);
	ck_assert_int_eq(d, 0);
	ck_assert_int_eq(users_unlock(conn, "a name with spaces \xff"), FA_OK);
	ck_assert_int_eq(users_login_check(conn, &p, "a name with spaces \xff", NULL, t, &locked,
	    &d), FA_OK);
	ck_assert_int_eq(locked, 0);

	/* The lock ends by itself (a real 1 s TTL). */
	p.lock_s = 1;
	for (i = 0; i < 3; i++)
		ck_assert_int_eq(users_login_failed(conn, &p, "rita", NULL, t, &nl), FA_OK);
	ck_assert_int_eq(nl, USERS_LOCKED_USER);
	ck_assert_int_eq(users_login_check(conn, &p, "rita", NULL, t, &locked, &d), FA_OK);
	ck_assert_int_eq(locked, 1);
	sleep_ms(1100);
	ck_assert_int_eq(users_login_check(conn, &p, "rita", NULL, t, &locked, &d), FA_OK);
	ck_assert_int_eq(locked, 0);
	ck_assert_int_eq(d, 0);	/* the count restarted at the lock */

	/* max_failures 0: never locked. */
	p.max_failures = 0;
	for (i = 0; i < 10; i++)
		ck_assert_int_eq(users_login_failed(conn, &p, "sam", NULL, t, &nl), FA_OK);
	ck_assert_int_eq(users_login_check(conn, &p, "sam", NULL, t, &locked, &d), FA_OK);
	ck_assert_int_eq(locked, 0);
	ck_assert_int_eq(d, 400);
}
END_TEST

START_TEST(throttle_success_clears)
{
	struct users_throttle_params p = tp;
	int locked, nl;
	long d, t = 1700000000000L;

	p.max_failures_addr = 100;
	ck_assert_int_eq(users_login_failed(conn, &p, "tina", "192.0.2.7", t, &nl), FA_OK);
	ck_assert_int_eq(users_login_failed(conn, &p, "tina", "192.0.2.7", t, &nl), FA_OK);
	ck_assert_int_eq(users_login_check(conn, &p, "tina", "192.0.2.7", t, &locked, &d), FA_OK);
	ck_assert_int_eq(d, 200);
	ck_assert_int_eq(users_login_succeeded(conn, "tina"), FA_OK);
	ck_assert_int_eq(users_login_check(conn, &p, "tina", "192.0.2.7", t, &locked, &d), FA_OK);
	ck_assert_int_eq(d, 0);
	ck_assert_int_eq(locked, 0);
	ck_assert_int_eq(cmd_int("EXISTS", "t:fail:u:tina", NULL), 0);
	/* The address keeps its count: one good password does not excuse a spray. */
	{
		char *n = cmd_str("HGET", "t:fail:a:192.0.2.7", "n", NULL);

		ck_assert_str_eq(n, "2");
		free(n);
	}
}
END_TEST

START_TEST(throttle_address)
{
	struct users_throttle_params p = tp;
	char name[32], longaddr[200];
	int locked, nl, i;
	long d, t = 1700000000000L;

	p.max_failures_addr = 4;
	/* A spray: a different username each time, from one address. */
	for (i = 0; i < 3; i++) {
		snprintf(name, sizeof name, "spray%d", i);
		ck_assert_int_eq(users_login_failed(conn, &p, name, "2001:db8::1", t, &nl), FA_OK);
		ck_assert_int_eq(nl, 0);
	}
	ck_assert_int_eq(users_login_check(conn, &p, "victim", "2001:db8::1", t, &locked, &d),
	    FA_OK);
	ck_assert_int_eq(locked, 0);
	ck_assert_int_eq(users_login_failed(conn, &p, "spray3", "2001:db8::1", t, &nl), FA_OK);
	ck_assert_int_eq(nl, USERS_LOCKED_ADDR);
	ck_assert_int_eq(users_login_check(conn, &p, "victim", "2001:db8::1", t, &locked, &d),
	    FA_OK);
	ck_assert_int_eq(locked, 1);
	ck_assert_int_eq(d, 0);
	/* The same user from elsewhere is fine. */
	ck_assert_int_eq(users_login_check(conn, &p, "victim", "2001:db8::2", t, &locked, &d),
	    FA_OK);
	ck_assert_int_eq(locked, 0);
	ck_assert(cmd_int("PTTL", "t:lock:a:2001:db8::1", NULL) > 0);
	ck_assert_int_eq(users_unlock_addr(conn, "2001:db8::1"), FA_OK);
	ck_assert_int_eq(users_login_check(conn, &p, "victim", "2001:db8::1", t, &locked, &d),
	    FA_OK);
	ck_assert_int_eq(locked, 0);

	/* Both locks at once. */
	p.max_failures = 2;
	p.max_failures_addr = 2;
	ck_assert_int_eq(users_login_failed(conn, &p, "uma", "198.51.100.1", t, &nl), FA_OK);
	ck_assert_int_eq(nl, 0);
	ck_assert_int_eq(users_login_failed(conn, &p, "uma", "198.51.100.1", t, &nl), FA_OK);
	ck_assert_int_eq(nl, USERS_LOCKED_USER | USERS_LOCKED_ADDR);

	/* An absurd address is still counted (hashed into the key). */
	memset(longaddr, 'z', sizeof longaddr - 1);
	longaddr[sizeof longaddr - 1] = '\0';
	p.max_failures_addr = 1;
	ck_assert_int_eq(users_login_failed(conn, &p, "walt", longaddr, t, &nl), FA_OK);
	ck_assert_int_eq(nl, USERS_LOCKED_ADDR);
	ck_assert_int_eq(users_login_check(conn, &p, "xena", longaddr, t, &locked, &d), FA_OK);
	ck_assert_int_eq(locked, 1);
	ck_assert_int_eq(users_login_check(conn, &p, "xena", "", t, &locked, &d), FA_OK);
	ck_assert_int_eq(locked, 0);
}
END_TEST

struct fail_arg {
	struct redis_conn	*conn;
	pthread_barrier_t	*barrier;
	int			 now_locked;
	int			 rc;
};

static void *
fail_thread(void *p)
{
	struct users_throttle_params tp3 = tp;
	struct fail_arg *a = p;

	tp3.max_failures = 3;
	pthread_barrier_wait(a->barrier);
	a->rc = users_login_failed(a->conn, &tp3, "yann", NULL, 1700000000000L, &a->now_locked);
	return NULL;
}

/* Concurrent failures from several processes: exactly one raises the lock event. */
START_TEST(throttle_concurrent)
{
	struct fail_arg args[NTHREADS];
	pthread_t th[NTHREADS];
	pthread_barrier_t barrier;
	int i, events = 0;

	pthread_barrier_init(&barrier, NULL, NTHREADS);
	for (i = 0; i < NTHREADS; i++) {
		args[i].conn = redis_pool_conn(pool, i + 1);
		args[i].barrier = &barrier;
		pthread_create(&th[i], NULL, fail_thread, &args[i]);
	}
	for (i = 0; i < NTHREADS; i++) {
		pthread_join(th[i], NULL);
		ck_assert_int_eq(args[i].rc, FA_OK);
		events += args[i].now_locked == USERS_LOCKED_USER;
	}
	pthread_barrier_destroy(&barrier);
	ck_assert_int_eq(events, 1);
}
END_TEST

/* ----------------------------------------------------------------- refresh */

static const struct refresh_params rp = { .idle_s = 3600, .absolute_s = 86400, .grace_s = 0 };

static void
issue(const struct refresh_params *p, const char *client, const char *sub, time_t now,
    char tok[REFRESH_TOKEN_SIZE], char fam[REFRESH_FAM_LEN + 1])
{
	ck_assert_int_eq(refresh_issue(conn, p, client, sub, "openid profile", now, tok,
	    REFRESH_TOKEN_SIZE, fam), FA_OK);
}

static int
rotate(const struct refresh_params *p, const char *tok, const char *client, time_t now,
    char out_tok[REFRESH_TOKEN_SIZE], struct refresh_grant *g, int *reuse)
{
	return refresh_rotate(conn, p, tok, client, now, out_tok, REFRESH_TOKEN_SIZE, g, reuse);
}

START_TEST(refresh_chain)
{
	char t1[REFRESH_TOKEN_SIZE], t2[REFRESH_TOKEN_SIZE], t3[REFRESH_TOKEN_SIZE];
	char fam[REFRESH_FAM_LEN + 1], key[128], *s;
	struct refresh_grant g;
	time_t now = time(NULL);
	redisReply *r;
	size_t i;
	int reuse, active;

	issue(&rp, "app", "sub-1", now, t1, fam);
	ck_assert_uint_eq(strlen(t1), REFRESH_TOKEN_LEN);
	ck_assert(strncmp(t1, "far1.", 5) == 0);
	ck_assert_uint_eq(strlen(fam), REFRESH_FAM_LEN);

	ck_assert_int_eq(refresh_lookup(conn, t1, &g, &active), FA_OK);
	ck_assert_int_eq(active, 1);
	ck_assert_str_eq(g.fam, fam);
	ck_assert_str_eq(g.client, "app");
	ck_assert_str_eq(g.sub, "sub-1");
	ck_assert_str_eq(g.scope, "openid profile");
	ck_assert_int_eq(g.abs, now + 86400);
	ck_assert_int_eq(g.auth_time, now);
	ck_assert_int_eq(g.iat, now);
	ck_assert(g.exp > time(NULL) + 3500 && g.exp <= time(NULL) + 3600);

	ck_assert_int_eq(rotate(&rp, t1, "app", now + 10, t2, &g, &reuse), FA_OK);
	ck_assert_int_eq(reuse, 0);
	ck_assert_str_ne(t2, t1);
	ck_assert_str_eq(g.fam, fam);
	ck_assert_str_eq(g.client, "app");
	ck_assert_str_eq(g.sub, "sub-1");
	ck_assert_str_eq(g.scope, "openid profile");
	ck_assert_int_eq(g.abs, now + 86400);
	ck_assert_int_eq(g.auth_time, now);
	ck_assert_int_eq(g.iat, now + 10);
	ck_assert_int_eq(g.exp, now + 10 + 3600);

	ck_assert_int_eq(rotate(&rp, t2, "app", now + 20, t3, &g, &reuse), FA_OK);
	ck_assert_int_eq(g.abs, now + 86400);	/* the absolute end never moves */
	ck_assert_int_eq(refresh_lookup(conn, t1, &g, &active), FA_OK);
	ck_assert_int_eq(active, 0);
	ck_assert_int_eq(refresh_lookup(conn, t2, &g, &active), FA_OK);
	ck_assert_int_eq(active, 0);
	ck_assert_int_eq(refresh_lookup(conn, t3, &g, &active), FA_OK);
	ck_assert_int_eq(active, 1);
	ck_assert_str_eq(g.sub, "sub-1");

	/* The rotated record: kept until abs, linked to its successor, slimmed. */
	rt_key(t1, key, sizeof key);
	s = cmd_str("HGET", key, "state", NULL);
	ck_assert_str_eq(s, "rotated");
	free(s);
	ck_assert_int_eq(cmd_int("HEXISTS", key, "scope", NULL), 0);
	ck_assert(cmd_int("TTL", key, NULL) > 3600);
	rt_key(t2, key, sizeof key);
	s = cmd_str("HGET", key, "succ", NULL);
	rt_key(t3, key, sizeof key);
	ck_assert_str_eq(s, key + strlen("t:rt:"));
	free(s);
	ck_assert(cmd_int("TTL", key, NULL) <= 3600);

	/* No key or value holds a token's text. */
	r = cmd("KEYS", "*", NULL);
	for (i = 0; i < r->elements; i++) {
		redisReply *h;
		size_t j;

		ck_assert_ptr_null(strstr(r->element[i]->str, t1 + 5));
		ck_assert_ptr_null(strstr(r->element[i]->str, t3 + 5));
		if (strncmp(r->element[i]->str, "t:rt:", 5) != 0)
			continue;
		h = cmd("HGETALL", r->element[i]->str, NULL);
		for (j = 0; j < h->elements; j++) {
			ck_assert_ptr_null(strstr(h->element[j]->str, t1 + 5));
			ck_assert_ptr_null(strstr(h->element[j]->str, t2 + 5));
			ck_assert_ptr_null(strstr(h->element[j]->str, t3 + 5));
		}
		freeReplyObject(h);
	}
	freeReplyObject(r);

	/* Junk never reaches Redis and is simply invalid. */
	ck_assert_int_eq(rotate(&rp, "far1.short", "app", now, t2, &g, &reuse), FA_DENIED);
	ck_assert_int_eq(rotate(&rp, "", "app", now, t2, &g, &reuse), FA_DENIED);
	ck_assert_int_eq(rotate(&rp, NULL, "app", now, t2, &g, &reuse), FA_DENIED);
	memcpy(t2, t3, sizeof t2);
	t2[0] = 'g';
	ck_assert_int_eq(rotate(&rp, t2, "app", now, t2, &g, &reuse), FA_DENIED);
	ck_assert_int_eq(refresh_lookup(conn, "nope", &g, &active), FA_NOTFOUND);
	/* A well-formed token we never issued. */
	memcpy(t2, t3, sizeof t2);
	t2[10] = t2[10] == 'A' ? 'B' : 'A';
	ck_assert_int_eq(rotate(&rp, t2, "app", now, t1, &g, &reuse), FA_DENIED);
	ck_assert_int_eq(reuse, 0);
	ck_assert_str_eq(t1, "");
	ck_assert_int_eq(refresh_lookup(conn, t2, &g, &active), FA_NOTFOUND);
	/* t3 still works after all that. */
	ck_assert_int_eq(rotate(&rp, t3, "app", now + 30, t1, &g, &reuse), FA_OK);

	/* Bad arguments. */
	ck_assert_int_eq(refresh_issue(conn, &rp, "a b", "s", "", now, t1, sizeof t1, fam),
	    FA_ERR);
	ck_assert_int_eq(refresh_issue(conn, &rp, "app", "", "", now, t1, sizeof t1, fam),
	    FA_ERR);
	ck_assert_int_eq(refresh_issue(conn, &rp, "app", "s", "", now, t1, 10, fam), FA_ERR);
	{
		struct refresh_params bad = rp;

		bad.absolute_s = 0;
		ck_assert_int_eq(refresh_issue(conn, &bad, "app", "s", "", now, t1, sizeof t1,
		    fam), FA_ERR);
	}
	ck_assert_int_eq(refresh_issue(conn, &rp, "app", "s", "", now, t1, sizeof t1, fam),
	    FA_OK);
}
END_TEST

START_TEST(refresh_reuse)
{
	char t1[REFRESH_TOKEN_SIZE], t2[REFRESH_TOKEN_SIZE], t3[REFRESH_TOKEN_SIZE];
	char tx[REFRESH_TOKEN_SIZE], fam[REFRESH_FAM_LEN + 1], famkey[64], *s;
	struct refresh_grant g;
	time_t now = time(NULL);
	int reuse, active;

	issue(&rp, "app", "sub-2", now, t1, fam);
	ck_assert_int_eq(rotate(&rp, t1, "app", now + 1, t2, &g, &reuse), FA_OK);
	ck_assert_int_eq(rotate(&rp, t2, "app", now + 2, t3, &g, &reuse), FA_OK);

	/* The old token comes back: the family dies, and the event says whose. */
	ck_assert_int_eq(rotate(&rp, t1, "app", now + 3, tx, &g, &reuse), FA_DENIED);
	ck_assert_int_eq(reuse, 1);
	ck_assert_str_eq(g.fam, fam);
	ck_assert_str_eq(g.sub, "sub-2");
	ck_assert_str_eq(g.client, "app");
	ck_assert_str_eq(tx, "");
	snprintf(famkey, sizeof famkey, "t:rtfam:%s", fam);
	s = cmd_str("HGET", famkey, "revoked", NULL);
	ck_assert_str_eq(s, "1");
	free(s);

	/* The newest token of the family fails too, without a second event. */
	ck_assert_int_eq(rotate(&rp, t3, "app", now + 4, tx, &g, &reuse), FA_DENIED);
	ck_assert_int_eq(reuse, 0);
	ck_assert_int_eq(rotate(&rp, t1, "app", now + 5, tx, &g, &reuse), FA_DENIED);
	ck_assert_int_eq(reuse, 0);
	ck_assert_int_eq(refresh_lookup(conn, t3, &g, &active), FA_OK);
	ck_assert_int_eq(active, 0);

	/* Replaying the middle token revokes likewise (another family). */
	issue(&rp, "app", "sub-2", now, t1, fam);
	ck_assert_int_eq(rotate(&rp, t1, "app", now + 1, t2, &g, &reuse), FA_OK);
	ck_assert_int_eq(rotate(&rp, t2, "app", now + 2, t3, &g, &reuse), FA_OK);
	ck_assert_int_eq(rotate(&rp, t2, "app", now + 3, tx, &g, &reuse), FA_DENIED);
	ck_assert_int_eq(reuse, 1);
	ck_assert_int_eq(rotate(&rp, t3, "app", now + 4, tx, &g, &reuse), FA_DENIED);
}
END_TEST

START_TEST(refresh_grace)
{
	struct refresh_params p = rp;
	char t1[REFRESH_TOKEN_SIZE], t2[REFRESH_TOKEN_SIZE], t2b[REFRESH_TOKEN_SIZE];
	char t3[REFRESH_TOKEN_SIZE], tx[REFRESH_TOKEN_SIZE], fam[REFRESH_FAM_LEN + 1];
	struct refresh_grant g;
	time_t now = time(NULL);
	int reuse;

	p.grace_s = 5;

	/* One repeat within grace: a second successor, the family intact. */
	issue(&p, "app", "sub-3", now, t1, fam);
	ck_assert_int_eq(rotate(&p, t1, "app", now, t2, &g, &reuse), FA_OK);
	ck_assert_int_eq(g.graced, 0);
	ck_assert_int_eq(rotate(&p, t1, "app", now + 5, t2b, &g, &reuse), FA_OK);
	ck_assert_int_eq(reuse, 0);
	ck_assert_int_eq(g.graced, 1);
	ck_assert_str_ne(t2, t2b);
	ck_assert_str_eq(g.fam, fam);
	ck_assert_str_eq(g.scope, "openid profile");
	/* A second repeat revokes, and takes both branches with it. */
	ck_assert_int_eq(rotate(&p, t1, "app", now + 5, tx, &g, &reuse), FA_DENIED);
	ck_assert_int_eq(reuse, 1);
	ck_assert_int_eq(rotate(&p, t2, "app", now + 6, tx, &g, &reuse), FA_DENIED);
	ck_assert_int_eq(rotate(&p, t2b, "app", now + 6, tx, &g, &reuse), FA_DENIED);
	ck_assert_int_eq(reuse, 0);

	/* Both branches live on when nobody repeats again. */
	issue(&p, "app", "sub-3", now, t1, fam);
	ck_assert_int_eq(rotate(&p, t1, "app", now, t2, &g, &reuse), FA_OK);
	ck_assert_int_eq(rotate(&p, t1, "app", now + 1, t2b, &g, &reuse), FA_OK);
	ck_assert_int_eq(rotate(&p, t2b, "app", now + 2, t3, &g, &reuse), FA_OK);
	ck_assert_int_eq(rotate(&p, t2, "app", now + 2, tx, &g, &reuse), FA_OK);

	/* A repeat after the grace period revokes. */
	issue(&p, "app", "sub-3", now, t1, fam);
	ck_assert_int_eq(rotate(&p, t1, "app", now, t2, &g, &reuse), FA_OK);
	ck_assert_int_eq(rotate(&p, t1, "app", now + 6, tx, &g, &reuse), FA_DENIED);
	ck_assert_int_eq(reuse, 1);
	ck_assert_int_eq(rotate(&p, t2, "app", now + 7, tx, &g, &reuse), FA_DENIED);

	/* A repeat within grace after the successor was used is a reuse. */
	issue(&p, "app", "sub-3", now, t1, fam);
	ck_assert_int_eq(rotate(&p, t1, "app", now, t2, &g, &reuse), FA_OK);
	ck_assert_int_eq(rotate(&p, t2, "app", now + 1, t3, &g, &reuse), FA_OK);
	ck_assert_int_eq(rotate(&p, t1, "app", now + 2, tx, &g, &reuse), FA_DENIED);
	ck_assert_int_eq(reuse, 1);
	ck_assert_int_eq(rotate(&p, t3, "app", now + 3, tx, &g, &reuse), FA_DENIED);
}
END_TEST

START_TEST(refresh_wrong_client)
{
	char t1[REFRESH_TOKEN_SIZE], t2[REFRESH_TOKEN_SIZE], t3[REFRESH_TOKEN_SIZE];
	char tx[REFRESH_TOKEN_SIZE], fam[REFRESH_FAM_LEN + 1];
	struct refresh_grant g;
	time_t now = time(NULL);
	int reuse, active;

	issue(&rp, "app", "sub-4", now, t1, fam);
	ck_assert_int_eq(rotate(&rp, t1, "evil", now, tx, &g, &reuse), FA_DENIED);
	ck_assert_int_eq(reuse, 0);
	ck_assert_str_eq(g.fam, "");
	ck_assert_int_eq(refresh_lookup(conn, t1, &g, &active), FA_OK);
	ck_assert_int_eq(active, 1);
	ck_assert_int_eq(rotate(&rp, t1, "app", now, t2, &g, &reuse), FA_OK);
	/* A rotated token shown by another client is not a reuse either. */
	ck_assert_int_eq(rotate(&rp, t1, "evil", now, tx, &g, &reuse), FA_DENIED);
	ck_assert_int_eq(reuse, 0);
	ck_assert_int_eq(rotate(&rp, t2, "app", now, t3, &g, &reuse), FA_OK);
	ck_assert_int_eq(rotate(&rp, t3, "app2", now, tx, &g, &reuse), FA_DENIED);
	ck_assert_int_eq(rotate(&rp, t3, "", now, tx, &g, &reuse), FA_DENIED);
	ck_assert_int_eq(rotate(&rp, t3, "app", now, tx, &g, &reuse), FA_OK);
}
END_TEST

START_TEST(refresh_idle_expiry)
{
	struct refresh_params p = { .idle_s = 1, .absolute_s = 60, .grace_s = 0 };
	char t1[REFRESH_TOKEN_SIZE], t2[REFRESH_TOKEN_SIZE], tx[REFRESH_TOKEN_SIZE];
	char fam[REFRESH_FAM_LEN + 1], key[128];
	struct refresh_grant g;
	time_t now = time(NULL);
	int reuse, active;

	issue(&p, "app", "sub-5", now, t1, fam);
	ck_assert_int_eq(rotate(&p, t1, "app", now, t2, &g, &reuse), FA_OK);
	ck_assert_int_eq(g.exp, now + 1);
	rt_key(t2, key, sizeof key);
	ck_assert_int_le(cmd_int("TTL", key, NULL), 1);
	/* Unused for longer than idle: gone (a real TTL). */
	sleep_ms(2100);
	ck_assert_int_eq(refresh_lookup(conn, t2, &g, &active), FA_NOTFOUND);
	ck_assert_int_eq(rotate(&p, t2, "app", time(NULL), tx, &g, &reuse), FA_DENIED);
	ck_assert_int_eq(reuse, 0);
	/* The rotated predecessor is still known (kept until abs) and its reuse seen. */
	rt_key(t1, key, sizeof key);
	ck_assert_int_eq(cmd_int("EXISTS", key, NULL), 1);
	ck_assert_int_eq(rotate(&p, t1, "app", time(NULL), tx, &g, &reuse), FA_DENIED);
	ck_assert_int_eq(reuse, 1);
}
END_TEST

START_TEST(refresh_absolute_expiry)
{
	struct refresh_params p = { .idle_s = 3600, .absolute_s = 10, .grace_s = 0 };
	char t1[REFRESH_TOKEN_SIZE], t2[REFRESH_TOKEN_SIZE], tx[REFRESH_TOKEN_SIZE];
	char fam[REFRESH_FAM_LEN + 1], key[128];
	struct refresh_grant g;
	time_t now = time(NULL);
	int reuse;

	issue(&p, "app", "sub-6", now, t1, fam);
	rt_key(t1, key, sizeof key);
	ck_assert_int_le(cmd_int("TTL", key, NULL), 10);	/* min(idle, abs - now) */
	ck_assert_int_eq(rotate(&p, t1, "app", now + 6, t2, &g, &reuse), FA_OK);
	ck_assert_int_eq(g.abs, now + 10);
	ck_assert_int_eq(g.exp, now + 10);
	rt_key(t2, key, sizeof key);
	ck_assert_int_le(cmd_int("TTL", key, NULL), 4);
	ck_assert_int_eq(rotate(&p, t2, "app", now + 10, tx, &g, &reuse), FA_DENIED);
	ck_assert_int_eq(reuse, 0);
	ck_assert_int_eq(rotate(&p, t2, "app", now + 11, tx, &g, &reuse), FA_DENIED);
	ck_assert_int_eq(reuse, 0);
	/* Past abs even a rotated token is only "expired", not a reuse. */
	ck_assert_int_eq(rotate(&p, t1, "app", now + 11, tx, &g, &reuse), FA_DENIED);
	ck_assert_int_eq(reuse, 0);
	ck_assert_int_eq(rotate(&p, t2, "app", now + 9, tx, &g, &reuse), FA_OK);
}
END_TEST

START_TEST(refresh_revoke_token)
{
	char t1[REFRESH_TOKEN_SIZE], t2[REFRESH_TOKEN_SIZE], t3[REFRESH_TOKEN_SIZE];
	char tx[REFRESH_TOKEN_SIZE], fam[REFRESH_FAM_LEN + 1];
	struct refresh_grant g;
	time_t now = time(NULL);
	int reuse, active, newly;

	issue(&rp, "app", "sub-7", now, t1, fam);
	ck_assert_int_eq(rotate(&rp, t1, "app", now, t2, &g, &reuse), FA_OK);
	/* Another client's revocation does nothing. */
	ck_assert_int_eq(refresh_revoke(conn, t2, "evil"), FA_NOTFOUND);
	ck_assert_int_eq(refresh_revoke(conn, t1, "evil"), FA_NOTFOUND);
	ck_assert_int_eq(rotate(&rp, t2, "app", now, t3, &g, &reuse), FA_OK);
	/* Unknown and malformed tokens. */
	ck_assert_int_eq(refresh_revoke(conn, "far1.xyz", "app"), FA_NOTFOUND);
	ck_assert_int_eq(refresh_revoke(conn, "", "app"), FA_NOTFOUND);
	memcpy(tx, t3, sizeof tx);
	tx[7] = tx[7] == 'A' ? 'B' : 'A';
	ck_assert_int_eq(refresh_revoke(conn, tx, "app"), FA_NOTFOUND);

	/* The owner revokes with the current token: the family is gone. */
	ck_assert_int_eq(refresh_revoke_grant(conn, t3, "app", &g, &newly), FA_OK);
	ck_assert_int_eq(newly, 1);
	ck_assert_str_eq(g.fam, fam);
	ck_assert_str_eq(g.sub, "sub-7");
	ck_assert_int_eq(rotate(&rp, t3, "app", now, tx, &g, &reuse), FA_DENIED);
	ck_assert_int_eq(reuse, 0);
	ck_assert_int_eq(rotate(&rp, t1, "app", now, tx, &g, &reuse), FA_DENIED);
	ck_assert_int_eq(reuse, 0);	/* revoked already: no reuse event */
	ck_assert_int_eq(refresh_lookup(conn, t2, &g, &active), FA_OK);
	ck_assert_int_eq(active, 0);
	/* With an old token of the revoked family: still this client's, already revoked. */
	ck_assert_int_eq(refresh_revoke_grant(conn, t1, "app", NULL, &newly), FA_OK);
	ck_assert_int_eq(newly, 0);

	/* The owner revokes with an old (rotated) token: the family goes too. */
	issue(&rp, "app", "sub-7", now, t1, fam);
	ck_assert_int_eq(rotate(&rp, t1, "app", now, t2, &g, &reuse), FA_OK);
	ck_assert_int_eq(refresh_revoke(conn, t1, "app"), FA_OK);
	ck_assert_int_eq(rotate(&rp, t2, "app", now, tx, &g, &reuse), FA_DENIED);
	ck_assert_int_eq(reuse, 0);
}
END_TEST

START_TEST(refresh_revoke_subject_all)
{
	char a1[REFRESH_TOKEN_SIZE], a2[REFRESH_TOKEN_SIZE], b1[REFRESH_TOKEN_SIZE];
	char tx[REFRESH_TOKEN_SIZE], fam[REFRESH_FAM_LEN + 1];
	struct refresh_grant g;
	time_t now = time(NULL);
	int reuse;

	issue(&rp, "app", "subA", now, a1, fam);
	issue(&rp, "app2", "subA", now, a2, fam);
	issue(&rp, "app", "subB", now, b1, fam);
	ck_assert_int_eq(cmd_int("SCARD", "t:rtfams:subA", NULL), 2);
	ck_assert(cmd_int("TTL", "t:rtfams:subA", NULL) > 86000);
	ck_assert_int_eq(refresh_revoke_subject(conn, "subA"), FA_OK);
	ck_assert_int_eq(rotate(&rp, a1, "app", now, tx, &g, &reuse), FA_DENIED);
	ck_assert_int_eq(reuse, 0);
	ck_assert_int_eq(rotate(&rp, a2, "app2", now, tx, &g, &reuse), FA_DENIED);
	ck_assert_int_eq(rotate(&rp, b1, "app", now, tx, &g, &reuse), FA_OK);
	ck_assert_int_eq(refresh_revoke_subject(conn, "nobody"), FA_OK);
	ck_assert_int_eq(refresh_revoke_subject(conn, ""), FA_ERR);
}
END_TEST

/* Families that expired are pruned from the subject's set as new ones come. */
START_TEST(refresh_subject_set_pruned)
{
	struct refresh_params p = { .idle_s = 1, .absolute_s = 1, .grace_s = 0 };
	char t[REFRESH_TOKEN_SIZE], fam[REFRESH_FAM_LEN + 1];
	time_t now = time(NULL);
	int i;

	for (i = 0; i < 4; i++)
		issue(&p, "app", "subP", now, t, fam);
	ck_assert_int_eq(cmd_int("SCARD", "t:rtfams:subP", NULL), 4);
	sleep_ms(2100);
	issue(&rp, "app", "subP", now, t, fam);
	issue(&rp, "app", "subP", now, t, fam);
	ck_assert_int_eq(cmd_int("SCARD", "t:rtfams:subP", NULL), 2);
}
END_TEST

struct rot_arg {
	struct redis_conn	*conn;
	pthread_barrier_t	*barrier;
	const struct refresh_params *p;
	const char		*token;
	time_t			 now;
	char			 out[REFRESH_TOKEN_SIZE];
	int			 rc;
	int			 reuse;
};

static void *
rot_thread(void *v)
{
	struct rot_arg *a = v;
	struct refresh_grant g;

	pthread_barrier_wait(a->barrier);
	a->rc = refresh_rotate(a->conn, a->p, a->token, "app", a->now, a->out,
	    sizeof a->out, &g, &a->reuse);
	return NULL;
}

/* Run n rotations of token at once, each on its own connection; count successes. */
static int
rotate_concurrently(const struct refresh_params *p, const char *token, int n, int *reuses,
    char ok_tokens[][REFRESH_TOKEN_SIZE])
{
	struct rot_arg args[NTHREADS];
	pthread_t th[NTHREADS];
	pthread_barrier_t barrier;
	int i, ok = 0;

	*reuses = 0;
	pthread_barrier_init(&barrier, NULL, (unsigned)n);
	for (i = 0; i < n; i++) {
		args[i].conn = redis_pool_conn(pool, i + 1);
		args[i].barrier = &barrier;
		args[i].p = p;
		args[i].token = token;
		args[i].now = time(NULL);
		pthread_create(&th[i], NULL, rot_thread, &args[i]);
	}
	for (i = 0; i < n; i++) {
		pthread_join(th[i], NULL);
		ck_assert_msg(args[i].rc == FA_OK || args[i].rc == FA_DENIED, "rc %d",
		    args[i].rc);
		if (args[i].rc == FA_OK)
			memcpy(ok_tokens[ok++], args[i].out, REFRESH_TOKEN_SIZE);
		*reuses += args[i].reuse;
	}
	pthread_barrier_destroy(&barrier);
	return ok;
}

START_TEST(refresh_concurrent)
{
	struct refresh_params pg = rp;
	char t1[REFRESH_TOKEN_SIZE], tx[REFRESH_TOKEN_SIZE], fam[REFRESH_FAM_LEN + 1];
	char ok_tokens[NTHREADS][REFRESH_TOKEN_SIZE];
	struct refresh_grant g;
	int round, ok, reuses, reuse;

	/* No grace: exactly one wins; the others are a reuse and kill the family. */
	for (round = 0; round < 10; round++) {
		issue(&rp, "app", "sub-c", time(NULL), t1, fam);
		ok = rotate_concurrently(&rp, t1, NTHREADS, &reuses, ok_tokens);
		ck_assert_int_eq(ok, 1);
		ck_assert_int_eq(reuses, 1);	/* one event, not NTHREADS - 1 */
		ck_assert_int_eq(rotate(&rp, ok_tokens[0], "app", time(NULL), tx, &g, &reuse),
		    FA_DENIED);
	}
	/* Grace: one rotation plus one grace repeat, never more. */
	pg.grace_s = 30;
	for (round = 0; round < 10; round++) {
		issue(&pg, "app", "sub-c", time(NULL), t1, fam);
		ok = rotate_concurrently(&pg, t1, NTHREADS, &reuses, ok_tokens);
		ck_assert_int_eq(ok, 2);
		ck_assert_int_eq(reuses, 1);
	}
	/* Two concurrent refreshes of a client within grace: both succeed, family lives. */
	for (round = 0; round < 10; round++) {
		issue(&pg, "app", "sub-c", time(NULL), t1, fam);
		ok = rotate_concurrently(&pg, t1, 2, &reuses, ok_tokens);
		ck_assert_int_eq(ok, 2);
		ck_assert_int_eq(reuses, 0);
		ck_assert_int_eq(rotate(&pg, ok_tokens[0], "app", time(NULL), tx, &g, &reuse),
		    FA_OK);
		ck_assert_int_eq(rotate(&pg, ok_tokens[1], "app", time(NULL), tx, &g, &reuse),
		    FA_OK);
	}
}
END_TEST

/* ------------------------------------------------------------------ outage */

START_TEST(redis_down)
{
	struct redis_pool *rp2 = pool_open(redis_fixture_url(private), 1);
	struct users_ctx c = { redis_pool_conn(rp2, 0), cctx, data_key };
	struct refresh_params p = rp;
	char id[USERS_ID_LEN + 1], t1[REFRESH_TOKEN_SIZE], tx[REFRESH_TOKEN_SIZE];
	char fam[REFRESH_FAM_LEN + 1], *cause = NULL, **names;
	struct users_user u;
	struct refresh_grant g;
	time_t now = time(NULL), t;
	int n, locked, nl, reuse, active;
	long d;

	ck_assert_int_eq(users_create(&c, "amy", phc1, id), FA_OK);
	ck_assert_int_eq(refresh_issue(c.conn, &p, "app", id, "openid", now, t1, sizeof t1, fam),
	    FA_OK);
	ck_assert_int_eq(redis_fixture_stop(private), 0);

	ck_assert_int_eq(users_get(&c, "amy", &u), FA_UNAVAIL);
	ck_assert_int_eq(users_get_by_id(&c, id, &u), FA_UNAVAIL);
	ck_assert_int_eq(users_create(&c, "bea", phc1, tx), FA_UNAVAIL);
	ck_assert_int_eq(users_set_password(&c, "amy", phc2), FA_UNAVAIL);
	ck_assert_int_eq(users_rehash_password(&c, "amy", phc1, phc2), FA_UNAVAIL);
	ck_assert_int_eq(users_set_locked(&c, "amy", 1), FA_UNAVAIL);
	ck_assert_int_eq(users_set_claims(&c, "amy", "{\"name\":\"A\"}", &cause), FA_UNAVAIL);
	free(cause);
	ck_assert_int_eq(users_remove(&c, "amy"), FA_UNAVAIL);
	ck_assert_int_eq(users_list(&c, &names, &n), FA_UNAVAIL);
	ck_assert_ptr_null(names);
	ck_assert_int_eq(users_set_not_before(c.conn, id, now), FA_UNAVAIL);
	ck_assert_int_eq(users_get_not_before(c.conn, id, &t), FA_UNAVAIL);
	ck_assert_int_eq(users_login_check(c.conn, &tp, "amy", "10.1.1.1", 1, &locked, &d),
	    FA_UNAVAIL);
	ck_assert_int_eq(locked, 1);	/* fail closed */
	ck_assert_int_eq(users_login_failed(c.conn, &tp, "amy", "10.1.1.1", 1, &nl), FA_UNAVAIL);
	ck_assert_int_eq(users_login_succeeded(c.conn, "amy"), FA_UNAVAIL);
	ck_assert_int_eq(users_unlock(c.conn, "amy"), FA_UNAVAIL);
	ck_assert_int_eq(users_unlock_addr(c.conn, "10.1.1.1"), FA_UNAVAIL);
	ck_assert_int_eq(refresh_issue(c.conn, &p, "app", id, "openid", now, tx, sizeof tx, fam),
	    FA_UNAVAIL);
	ck_assert_int_eq(refresh_rotate(c.conn, &p, t1, "app", now, tx, sizeof tx, &g, &reuse),
	    FA_UNAVAIL);
	ck_assert_int_eq(refresh_revoke(c.conn, t1, "app"), FA_UNAVAIL);
	ck_assert_int_eq(refresh_revoke_grant(c.conn, t1, "app", &g, NULL), FA_UNAVAIL);
	ck_assert_int_eq(refresh_revoke_subject(c.conn, id), FA_UNAVAIL);
	ck_assert_int_eq(refresh_lookup(c.conn, t1, &g, &active), FA_UNAVAIL);
	ck_assert_int_eq(active, 0);

	/* Back again: everything works, nothing was half done. */
	ck_assert_int_eq(redis_fixture_restart(private), 0);
	sleep_ms(300);	/* past the pool's backoff */
	ck_assert_int_eq(users_list(&c, &names, &n), FA_OK);
	ck_assert_int_eq(n, 0);		/* no persistence: a fresh server */
	store_ids_free(names, n);
	redis_pool_free(rp2);
}
END_TEST

/* -------------------------------------------------------------------- suite */

static Suite *
users_suite(void)
{
	Suite *s = suite_create("users");
	TCase *tc;

	tc = tcase_create("records");
	tcase_add_checked_fixture(tc, shared_setup, shared_teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, user_crud);
	tcase_add_test(tc, user_duplicate);
	tcase_add_test(tc, user_bad_names);
	tcase_add_test(tc, user_password);
	tcase_add_test(tc, user_lock_flag);
	tcase_add_test(tc, user_corrupt);
	tcase_add_test(tc, not_before);
	suite_add_tcase(s, tc);

	tc = tcase_create("claims");
	tcase_add_checked_fixture(tc, shared_setup, shared_teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, claims_roundtrip);
	tcase_add_test(tc, claims_validation);
	tcase_add_test(tc, claims_bound_to_user);
	tcase_add_test(tc, claims_wrong_key);
	suite_add_tcase(s, tc);

	tc = tcase_create("throttle");
	tcase_add_checked_fixture(tc, shared_setup, shared_teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, throttle_delay);
	tcase_add_test(tc, throttle_lock);
	tcase_add_test(tc, throttle_success_clears);
	tcase_add_test(tc, throttle_address);
	tcase_add_test(tc, throttle_concurrent);
	suite_add_tcase(s, tc);

	tc = tcase_create("refresh");
	tcase_add_checked_fixture(tc, shared_setup, shared_teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, refresh_chain);
	tcase_add_test(tc, refresh_reuse);
	tcase_add_test(tc, refresh_grace);
	tcase_add_test(tc, refresh_wrong_client);
	tcase_add_test(tc, refresh_idle_expiry);
	tcase_add_test(tc, refresh_absolute_expiry);
	tcase_add_test(tc, refresh_revoke_token);
	tcase_add_test(tc, refresh_revoke_subject_all);
	tcase_add_test(tc, refresh_subject_set_pruned);
	tcase_add_test(tc, refresh_concurrent);
	suite_add_tcase(s, tc);

	tc = tcase_create("outage");
	tcase_add_checked_fixture(tc, private_setup, private_teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, redis_down);
	suite_add_tcase(s, tc);
	return s;
}

static int
rmtree_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	if (remove(path) == -1)
		fprintf(stderr, "cannot remove %s: %s\n", path, strerror(errno));
	return 0;
}

static void
rmtree(const char *path)
{
	nftw(path, rmtree_one, 16, FTW_DEPTH | FTW_PHYS);
}

int
main(void)
{
	const struct password_params pp = { .m_kib = 64, .t = 1, .p = 1 };
	const char *tmp = getenv("TMPDIR");
	char session[256];
	SRunner *sr;
	char *cause = NULL;
	int failed;

	/* Every temporary directory of this run lives under one removed at the end. */
	snprintf(session, sizeof session, "%s/fastauth-test_users.XXXXXX",
	    tmp != NULL && *tmp != '\0' ? tmp : "/tmp");
	if (mkdtemp(session) == NULL) {
		fprintf(stderr, "mkdtemp %s: %s\n", session, strerror(errno));
		return 1;
	}
	setenv("TMPDIR", session, 1);
	log_open("test_users", 0, getenv("FA_TEST_LOG") != NULL ? LOG_LEVEL_DEBUG :
	    LOG_LEVEL_ERR);
	if (crypto_init(&cause) != FA_OK) {
		fprintf(stderr, "crypto_init: %s\n", cause);
		rmtree(session);
		return 1;
	}
	if (password_hash(&pp, "one", 3, phc1, sizeof phc1) != FA_OK ||
	    password_hash(&pp, "two", 3, phc2, sizeof phc2) != FA_OK) {
		fprintf(stderr, "password_hash failed\n");
		rmtree(session);
		return 1;
	}
	if ((shared = redis_fixture_start(NULL)) == NULL) {
		fprintf(stderr, "cannot start redis-server (set REDIS_SERVER?)\n");
		rmtree(session);
		return 1;
	}
	sr = srunner_create(users_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	redis_fixture_free(shared);
	password_thread_release();
	rmtree(session);
	return failed == 0 ? 0 : 1;
}
