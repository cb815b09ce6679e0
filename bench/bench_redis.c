/*
 * bench_redis.c -- revocation lookups against Redis, one at a time,
 * pipelined and as one MGET, through fastauth's pool and store against a raw
 * hiredis loop doing the same commands on its own connection (the ceiling, as
 * redis-benchmark would measure it). One JSON object on stdout.
 *
 * It starts its own redis-server (no persistence) on a free 127.0.0.1 port
 * and stops it by pid at the end. The keys looked up do not exist: a token
 * that is not revoked, the common case.
 *
 *  sequential  EXISTS <p>revoked:<jti>, one round trip each: raw
 *              redisCommand against store_is_revoked;
 *  pipelined   BENCH_N EXISTS per round trip: raw redisAppendCommand and
 *              redisGetReply against redis_conn_append / redis_conn_reply;
 *  mget        one MGET of BENCH_N keys per round trip: raw
 *              redisCommandArgv against store_revoked_many (what batch
 *              introspection sends: the keys of BENCH_N tokens).
 * Rates are lookups (tokens) per second; each figure and its ceiling run in
 * alternating slices of 100 ms so that load elsewhere weighs on both.
 *
 * usage: bench_redis [--seconds N] [--redis-server PATH]
 */
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "core/fastauth.h"
#include "crypto/crypto.h"
#include "crypto/token.h"
#include "store/redis_pool.h"
#include "store/store.h"

#define BENCH_N		100	/* lookups per round trip (introspect_batch_max default) */
#define BENCH_KEYS	4096	/* distinct jtis cycled through */
#define BENCH_SLICE	0.1	/* s */
#define BENCH_PREFIX	"bench:"

struct bench {
	redisContext		*raw;
	struct redis_pool	*pool;
	struct redis_conn	*conn;
	struct token_claims	*claims;	/* BENCH_KEYS of them */
	const struct token_claims **cl;	/* BENCH_N pointers, per MGET */
	char			 keys[BENCH_KEYS][64];
	size_t			 klen[BENCH_KEYS];
	unsigned		 next;
	long long		 sink;
};

static pid_t	bench_redis_pid = -1;

static void
bench_stop_redis(void)
{
	int status;

	if (bench_redis_pid <= 0)
		return;
	kill(bench_redis_pid, SIGTERM);
	while (waitpid(bench_redis_pid, &status, 0) == -1 && errno == EINTR)
		;
	bench_redis_pid = -1;
}

static void __attribute__((noreturn))
bench_fail(const char *what)
{
	fprintf(stderr, "bench_redis: %s failed\n", what);
	bench_stop_redis();
	exit(1);
}

static double
bench_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A port the kernel says is free now. */
static int
bench_free_port(void)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof sa;
	int fd, port;

	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) == -1)
		bench_fail("socket");
	memset(&sa, 0, sizeof sa);
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&sa, sizeof sa) == -1 ||
	    getsockname(fd, (struct sockaddr *)&sa, &len) == -1)
		bench_fail("bind");
	port = ntohs(sa.sin_port);
	close(fd);
	return port;
}

/* Start redis-server on port; returns a connected raw context. */
static redisContext *
bench_start_redis(const char *prog, int port)
{
	struct timeval tv = { 1, 0 };
	redisContext *c = NULL;
	char portstr[16];
	int i;

	snprintf(portstr, sizeof portstr, "%d", port);
	if ((bench_redis_pid = fork()) == -1)
		bench_fail("fork");
	if (bench_redis_pid == 0) {
		FILE *null = freopen("/dev/null", "w", stdout);

		(void)null;
		execlp(prog, prog, "--port", portstr, "--bind", "127.0.0.1",
		    "--save", "", "--appendonly", "no", "--daemonize", "no",
		    "--loglevel", "warning", (char *)NULL);
		fprintf(stderr, "bench_redis: cannot run %s: %s\n", prog, strerror(errno));
		_exit(127);
	}
	for (i = 0; i < 100; i++) {
		redisReply *r;

		usleep(50 * 1000);
		if ((c = redisConnectWithTimeout("127.0.0.1", port, tv)) != NULL &&
		    c->err == 0 && (r = redisCommand(c, "PING")) != NULL) {
			freeReplyObject(r);
			return c;
		}
		if (c != NULL)
			redisFree(c);
		c = NULL;
		if (waitpid(bench_redis_pid, NULL, WNOHANG) == bench_redis_pid) {
			bench_redis_pid = -1;
			bench_fail("redis-server (it exited)");
		}
	}
	bench_fail("redis-server (no PING answer in 5 s)");
}

static unsigned
bench_next(struct bench *b)
{
	unsigned i = b->next;

	b->next = (b->next + 1) % BENCH_KEYS;
	return i;
}

static void
raw_sequential(struct bench *b)
{
	unsigned i = bench_next(b);
	redisReply *r = redisCommand(b->raw, "EXISTS %b", b->keys[i], b->klen[i]);

	if (r == NULL || r->type != REDIS_REPLY_INTEGER)
		bench_fail("raw EXISTS");
	b->sink += r->integer;
	freeReplyObject(r);
}

static void
pool_sequential(struct bench *b)
{
	int rc = store_is_revoked(b->conn, b->claims[bench_next(b)].jti);

	if (rc < 0)
		bench_fail("store_is_revoked");
	b->sink += rc;
}

static void
raw_pipelined(struct bench *b)
{
	redisReply *r;
	unsigned i, k[BENCH_N];

	for (i = 0; i < BENCH_N; i++) {
		k[i] = bench_next(b);
		if (redisAppendCommand(b->raw, "EXISTS %b", b->keys[k[i]], b->klen[k[i]]) !=
		    REDIS_OK)
			bench_fail("redisAppendCommand");
	}
	for (i = 0; i < BENCH_N; i++) {
		if (redisGetReply(b->raw, (void **)&r) != REDIS_OK || r == NULL ||
		    r->type != REDIS_REPLY_INTEGER)
			bench_fail("raw pipelined EXISTS");
		b->sink += r->integer;
		freeReplyObject(r);
	}
}

static void
pool_pipelined(struct bench *b)
{
	const char *prefix = redis_conn_prefix(b->conn);
	char hex[2 * TOKEN_JTI_LEN + 1];
	redisReply *r;
	unsigned i;

	for (i = 0; i < BENCH_N; i++) {
		crypto_hex(b->claims[bench_next(b)].jti, TOKEN_JTI_LEN, hex);
		if (redis_conn_append(b->conn, "EXISTS %srevoked:%s", prefix, hex) != FA_OK)
			bench_fail("redis_conn_append");
	}
	for (i = 0; i < BENCH_N; i++) {
		r = redis_conn_reply(b->conn);
		if (redis_pool_reply_ok(r, "bench", "EXISTS") != FA_OK ||
		    r->type != REDIS_REPLY_INTEGER)
			bench_fail("pool pipelined EXISTS");
		b->sink += r->integer;
		redis_pool_reply_free(r);
	}
}

static void
raw_mget(struct bench *b)
{
	const char *argv[1 + BENCH_N];
	size_t lens[1 + BENCH_N];
	redisReply *r;
	unsigned i, k;

	argv[0] = "MGET";
	lens[0] = 4;
	for (i = 0; i < BENCH_N; i++) {
		k = bench_next(b);
		argv[1 + i] = b->keys[k];
		lens[1 + i] = b->klen[k];
	}
	r = redisCommandArgv(b->raw, 1 + BENCH_N, argv, lens);
	if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != BENCH_N)
		bench_fail("raw MGET");
	for (i = 0; i < BENCH_N; i++)
		b->sink += r->element[i]->type == REDIS_REPLY_NIL;
	freeReplyObject(r);
}

static void
pool_mget(struct bench *b)
{
	int revoked[BENCH_N];
	long long nbf[BENCH_N];
	unsigned i;

	for (i = 0; i < BENCH_N; i++)
		b->cl[i] = &b->claims[bench_next(b)];
	if (store_revoked_many(b->conn, BENCH_N, b->cl, revoked, nbf) != FA_OK)
		bench_fail("store_revoked_many");
	for (i = 0; i < BENCH_N; i++)
		b->sink += revoked[i];
}

/* A figure and its ceiling in alternating slices; lookups per second each. */
static void
bench_pair(struct bench *b, double seconds, void (*ceil)(struct bench *),
    void (*fn)(struct bench *), int per_call, double *ceil_rate, double *fn_rate)
{
	void (*f[2])(struct bench *) = { ceil, fn };
	double t[2] = { 0, 0 }, start, el;
	uint64_t ops[2] = { 0, 0 };
	int k;

	while (t[0] < seconds || t[1] < seconds) {
		for (k = 0; k < 2; k++) {
			start = bench_now();
			do {
				f[k](b);
				ops[k] += (uint64_t)per_call;
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
	static struct bench b;
	struct redis_pool_params pp;
	const char *prog = getenv("REDIS_SERVER");
	char *end, *cause = NULL, url[64];
	double seconds = 1, rseq, pseq, rpipe, ppipe, rmget, pmget;
	int a, port;
	unsigned i;

	if (prog == NULL || *prog == '\0')
		prog = "redis-server";
	for (a = 1; a < argc; a++) {
		if (strcmp(argv[a], "--seconds") == 0 && a + 1 < argc) {
			seconds = strtod(argv[++a], &end);
			if (*end != '\0' || seconds <= 0)
				goto usage;
		} else if (strcmp(argv[a], "--redis-server") == 0 && a + 1 < argc)
			prog = argv[++a];
		else
			goto usage;
	}
	if (crypto_init(&cause) != FA_OK) {
		fprintf(stderr, "bench_redis: %s\n", cause);
		free(cause);
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	port = bench_free_port();
	b.raw = bench_start_redis(prog, port);
	snprintf(url, sizeof url, "redis://127.0.0.1:%d/0", port);
	memset(&pp, 0, sizeof pp);
	pp.url = url;
	pp.prefix = BENCH_PREFIX;
	pp.connect_timeout_ms = 1000;
	pp.command_timeout_ms = 5000;
	pp.backoff_min_ms = 10;
	pp.backoff_max_ms = 100;
	pp.size = 1;
	if ((b.pool = redis_pool_new(&pp, &cause)) == NULL) {
		fprintf(stderr, "bench_redis: %s\n", cause);
		bench_fail("redis_pool_new");
	}
	b.conn = redis_pool_conn(b.pool, 0);
	b.claims = calloc(BENCH_KEYS, sizeof *b.claims);
	b.cl = calloc(BENCH_N, sizeof *b.cl);
	if (b.claims == NULL || b.cl == NULL)
		bench_fail("calloc");
	for (i = 0; i < BENCH_KEYS; i++) {
		char hex[2 * TOKEN_JTI_LEN + 1];

		token_new_jti(b.claims[i].jti);
		crypto_hex(b.claims[i].jti, TOKEN_JTI_LEN, hex);
		b.klen[i] = (size_t)snprintf(b.keys[i], sizeof b.keys[i], "%srevoked:%s",
		    BENCH_PREFIX, hex);
	}
	/* Connect the pool's slot before timing. */
	pool_sequential(&b);

	bench_pair(&b, seconds, raw_sequential, pool_sequential, 1, &rseq, &pseq);
	bench_pair(&b, seconds, raw_pipelined, pool_pipelined, BENCH_N, &rpipe, &ppipe);
	bench_pair(&b, seconds, raw_mget, pool_mget, BENCH_N, &rmget, &pmget);

	printf("{\"seconds\": %g, \"lookups_per_round_trip\": %d,\n"
	    " \"raw_sequential_per_s\": %.0f, \"store_sequential_per_s\": %.0f, "
	    "\"sequential_ratio\": %.3f,\n"
	    " \"raw_pipelined_per_s\": %.0f, \"pool_pipelined_per_s\": %.0f, "
	    "\"pipelined_ratio\": %.3f,\n"
	    " \"raw_mget_per_s\": %.0f, \"store_mget_per_s\": %.0f, "
	    "\"mget_ratio\": %.3f,\n"
	    " \"pipelined_vs_sequential\": %.1f, \"mget_vs_sequential\": %.1f, "
	    "\"mget_vs_pipelined\": %.2f}\n",
	    seconds, BENCH_N,
	    rseq, pseq, pseq / rseq,
	    rpipe, ppipe, ppipe / rpipe,
	    rmget, pmget, pmget / rmget,
	    ppipe / pseq, pmget / pseq, pmget / ppipe);

	redisFree(b.raw);
	redis_pool_free(b.pool);
	free(b.claims);
	free(b.cl);
	bench_stop_redis();
	return (int)(b.sink & 0);

usage:
	fprintf(stderr, "usage: bench_redis [--seconds N] [--redis-server PATH]\n");
	return 2;
}
