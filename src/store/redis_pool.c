/*
 * redis_pool.c -- the per-process pool of hiredis connections.
 *
 * The pool owns the parsed URL (host/port or socket path, credentials, db),
 * the timeouts and one struct redis_conn per slot; each slot owns its
 * redisContext, its backoff state and its error string.
 *
 * There are no locks: a slot is only ever used by one thread at a time (the
 * server gives each request thread its own slot and the housekeeping thread
 * another), so a connection and its state are never shared. Only
 * redis_pool_new and redis_pool_free touch every slot, before the threads
 * start and after they stop.
 *
 * Failure policy: any I/O error, timeout or EOF frees the context and
 * schedules the next connect attempt after an exponential backoff with
 * jitter; until then calls fail at once, so a Redis outage costs a request
 * thread nothing but the first timeout. A REDIS_REPLY_ERROR is the server
 * speaking, not a broken connection: it is handed back as a reply.
 *
 * Pipelining: the slot counts replies still owed by the server. A command
 * started while replies are pending (a caller abandoned a batch), or an
 * append after the caller began reading a batch it did not finish, drops the
 * connection first: a reply is never handed to the wrong command.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/fastauth.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "shm/metrics.h"
#include "store/redis_pool.h"

/* Used when a parameter is <= 0. */
#define REDIS_POOL_DEFAULT_CONNECT_MS	1000
#define REDIS_POOL_DEFAULT_COMMAND_MS	1000
#define REDIS_POOL_DEFAULT_BACKOFF_MIN	100
#define REDIS_POOL_DEFAULT_BACKOFF_MAX	5000

struct redis_conn {
	struct redis_pool *pool;
	int		 slot;
	redisContext	*ctx;		/* NULL while not connected */
	int		 pending;	/* replies appended but not yet read */
	int		 reading;	/* a reply of the current batch was read */
	long		 delay_ms;	/* current backoff step; 0 = not backing off */
	int64_t		 retry_at_ms;	/* monotonic ms; no connect attempt before */
	uint64_t	 rng;		/* xorshift state for the jitter */
	char		 cause[192];	/* why the connection last failed */
	char		 errstr[256];	/* why the last call failed */
};

struct redis_pool {
	char		*host;		/* TCP host, or NULL for a unix socket */
	int		 port;
	char		*path;		/* unix socket path, or NULL */
	char		*user;		/* AUTH user (Redis 6 ACL), or NULL */
	char		*password;	/* AUTH password, or NULL; wiped on free */
	int		 db;		/* SELECTed when != 0 */
	char		*prefix;
	long		 connect_timeout_ms;
	long		 command_timeout_ms;
	long		 backoff_min_ms;
	long		 backoff_max_ms;
	int		 size;
	struct redis_conn *conns;	/* size slots */
};

static int64_t
redis_pool_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static struct timeval
redis_pool_tv(long ms)
{
	struct timeval tv;

	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	return tv;
}

/* Decode %XX escapes in place; -1 on a malformed escape. */
static int
redis_pool_unescape(char *s)
{
	char *in, *out, hex[3] = { 0, 0, 0 };

	for (in = out = s; *in != '\0'; in++) {
		if (*in != '%') {
			*out++ = *in;
			continue;
		}
		if (!isxdigit((unsigned char)in[1]) || !isxdigit((unsigned char)in[2]))
			return -1;
		hex[0] = in[1];
		hex[1] = in[2];
		*out++ = (char)strtol(hex, NULL, 16);
		in += 2;
	}
	*out = '\0';
	return 0;
}

/* A decimal in [min, max], the whole string; -1 otherwise. */
static long
redis_pool_number(const char *s, long min, long max)
{
	char *end;
	long v;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return -1;
	return v;
}

/* unix:/path[?db=N[&password=P]] */
static int
redis_pool_parse_unix(struct redis_pool *p, const char *rest, char **cause)
{
	char *copy, *query, *item, *save = NULL;
	int rc = FA_ERR;

	copy = xstrdup(rest);
	if ((query = strchr(copy, '?')) != NULL)
		*query++ = '\0';
	if (strncmp(copy, "//", 2) == 0 && copy[2] == '/')	/* unix:///path */
		memmove(copy, copy + 2, strlen(copy + 2) + 1);
	if (copy[0] != '/') {
		*cause = xstrdup("unix: URL needs an absolute socket path");
		goto out;
	}
	p->path = xstrdup(copy);
	for (item = query ? strtok_r(query, "&", &save) : NULL; item != NULL;
	    item = strtok_r(NULL, "&", &save)) {
		if (strncmp(item, "db=", 3) == 0) {
			if ((p->db = (int)redis_pool_number(item + 3, 0, INT_MAX)) < 0) {
				*cause = xstrdup("unix: URL has a bad db number");
				goto out;
			}
		} else if (strncmp(item, "password=", 9) == 0) {
			if (redis_pool_unescape(item + 9) != 0) {
				*cause = xstrdup("unix: URL has a bad %-escape in the password");
				goto out;
			}
			free(p->password);
			p->password = xstrdup(item + 9);
		} else {
			*cause = xstrdup("unix: URL has an unknown parameter (db, password)");
			goto out;
		}
	}
	rc = FA_OK;
out:
	explicit_bzero(copy, strlen(rest));
	free(copy);
	return rc;
}

/* redis://[[user]:password@]host[:port][/db]; host may be [v6]. */
static int
redis_pool_parse_tcp(struct redis_pool *p, const char *rest, char **cause)
{
	char *copy, *auth, *host, *slash, *colon, *port = NULL;
	int rc = FA_ERR;

	copy = xstrdup(rest);
	if ((slash = strchr(copy, '/')) != NULL) {
		*slash++ = '\0';
		if (*slash != '\0' &&
		    (p->db = (int)redis_pool_number(slash, 0, INT_MAX)) < 0) {
			*cause = xstrdup("redis: URL has a bad db number");
			goto out;
		}
	}
	/* The last '@': a password may contain one only %-escaped, but be lenient. */
	if ((host = strrchr(copy, '@')) != NULL) {
		*host++ = '\0';
		auth = copy;
		if ((colon = strchr(auth, ':')) == NULL) {
			*cause = xstrdup("redis: URL userinfo must be [user]:password");
			goto out;
		}
		*colon++ = '\0';
		if (redis_pool_unescape(auth) != 0 || redis_pool_unescape(colon) != 0) {
			*cause = xstrdup("redis: URL has a bad %-escape in the userinfo");
			goto out;
		}
		if (*auth != '\0')
			p->user = xstrdup(auth);
		p->password = xstrdup(colon);
	} else
		host = copy;

	if (*host == '[') {
		char *close = strchr(host, ']');

		if (close == NULL || (close[1] != '\0' && close[1] != ':')) {
			*cause = xstrdup("redis: URL has a bad [IPv6] host");
			goto out;
		}
		*close = '\0';
		if (close[1] == ':')
			port = close + 2;
		host++;
	} else if ((colon = strchr(host, ':')) != NULL) {
		*colon = '\0';
		port = colon + 1;
	}
	if (*host == '\0') {
		*cause = xstrdup("redis: URL has no host");
		goto out;
	}
	p->host = xstrdup(host);
	p->port = 6379;
	if (port != NULL && (p->port = (int)redis_pool_number(port, 1, 65535)) < 0) {
		*cause = xstrdup("redis: URL has a bad port");
		goto out;
	}
	rc = FA_OK;
out:
	explicit_bzero(copy, strlen(rest));
	free(copy);
	return rc;
}

struct redis_pool *
redis_pool_new(const struct redis_pool_params *params, char **cause)
{
	struct redis_pool *p;
	int i, rc;

	*cause = NULL;
	if (params->url == NULL) {
		*cause = xstrdup("no Redis URL");
		return NULL;
	}
	if (params->size < 1) {
		*cause = xasprintf("Redis pool size %d, need at least 1", params->size);
		return NULL;
	}
	p = xcalloc(1, sizeof *p);
	if (strncmp(params->url, "redis://", 8) == 0)
		rc = redis_pool_parse_tcp(p, params->url + 8, cause);
	else if (strncmp(params->url, "unix:", 5) == 0)
		rc = redis_pool_parse_unix(p, params->url + 5, cause);
	else if (strncmp(params->url, "rediss://", 9) == 0) {
		*cause = xstrdup("rediss:// (TLS) is not supported; use a local "
		    "TLS tunnel or a unix: socket");
		rc = FA_ERR;
	} else {
		*cause = xstrdup("Redis URL must start with redis:// or unix:");
		rc = FA_ERR;
	}
	if (rc != FA_OK) {
		redis_pool_free(p);
		return NULL;
	}

	p->prefix = xstrdup(params->prefix != NULL ? params->prefix : "");
	p->connect_timeout_ms = params->connect_timeout_ms > 0 ?
	    params->connect_timeout_ms : REDIS_POOL_DEFAULT_CONNECT_MS;
	p->command_timeout_ms = params->command_timeout_ms > 0 ?
	    params->command_timeout_ms : REDIS_POOL_DEFAULT_COMMAND_MS;
	p->backoff_min_ms = params->backoff_min_ms > 0 ?
	    params->backoff_min_ms : REDIS_POOL_DEFAULT_BACKOFF_MIN;
	p->backoff_max_ms = params->backoff_max_ms > 0 ?
	    params->backoff_max_ms : REDIS_POOL_DEFAULT_BACKOFF_MAX;
	if (p->backoff_max_ms < p->backoff_min_ms)
		p->backoff_max_ms = p->backoff_min_ms;

	p->size = params->size;
	p->conns = xcalloc((size_t)p->size, sizeof *p->conns);
	for (i = 0; i < p->size; i++) {
		struct redis_conn *c = &p->conns[i];

		c->pool = p;
		c->slot = i;
		/* Jitter only has to decorrelate slots and processes, not be secret. */
		c->rng = ((uint64_t)redis_pool_now_ms() << 20) ^
		    ((uint64_t)getpid() << 8) ^ (uint64_t)(i + 1) * 0x9e3779b97f4a7c15ULL;
		if (c->rng == 0)
			c->rng = 1;
	}
	return p;
}

void
redis_pool_free(struct redis_pool *p)
{
	int i;

	if (p == NULL)
		return;
	for (i = 0; p->conns != NULL && i < p->size; i++)
		if (p->conns[i].ctx != NULL)
			redisFree(p->conns[i].ctx);
	free(p->conns);
	free(p->host);
	free(p->path);
	free(p->user);
	if (p->password != NULL) {
		explicit_bzero(p->password, strlen(p->password));
		free(p->password);
	}
	free(p->prefix);
	free(p);
}

struct redis_conn *
redis_pool_conn(struct redis_pool *p, int slot)
{
	if (slot < 0 || slot >= p->size)
		return NULL;
	return &p->conns[slot];
}

int
redis_pool_size(const struct redis_pool *p)
{
	return p->size;
}

const char *
redis_conn_prefix(const struct redis_conn *c)
{
	return c->pool->prefix;
}

const char *
redis_conn_errstr(const struct redis_conn *c)
{
	return c->errstr[0] != '\0' ? c->errstr : "no error";
}

static uint64_t
redis_conn_random(struct redis_conn *c)
{
	c->rng ^= c->rng << 13;
	c->rng ^= c->rng >> 7;
	c->rng ^= c->rng << 17;
	return c->rng;
}

/* Close the connection without blaming the server (no backoff). */
static void
redis_conn_drop(struct redis_conn *c)
{
	if (c->ctx != NULL)
		metrics_redis_closed();
	if (c->ctx != NULL)
		redisFree(c->ctx);
	c->ctx = NULL;
	c->pending = 0;
	c->reading = 0;
}

/*
 * The server failed us: close, remember why, and wait before the next
 * attempt. The step doubles up to backoff_max_ms and the wait is uniform in
 * [step/2, step], so the slots of many processes do not reconnect in step.
 */
static void
redis_conn_fail(struct redis_conn *c, const char *fmt, ...)
{
	struct redis_pool *p = c->pool;
	va_list ap;
	long wait;

	/* Format first: the arguments may point into the context (its errstr). */
	va_start(ap, fmt);
	vsnprintf(c->cause, sizeof c->cause, fmt, ap);
	va_end(ap);
	snprintf(c->errstr, sizeof c->errstr, "%s", c->cause);
	metrics_redis_error();
	redis_conn_drop(c);

	if (c->delay_ms == 0)
		c->delay_ms = p->backoff_min_ms;
	else if (c->delay_ms < p->backoff_max_ms / 2)
		c->delay_ms *= 2;
	else
		c->delay_ms = p->backoff_max_ms;
	wait = c->delay_ms / 2 +
	    (long)(redis_conn_random(c) % (uint64_t)(c->delay_ms - c->delay_ms / 2 + 1));
	c->retry_at_ms = redis_pool_now_ms() + wait;
	log_warn("redis slot %d: %s; next attempt in %ld ms", c->slot, c->cause, wait);
}

/* Describe a hiredis error; errno is the one saved right after the call. */
static void
redis_conn_fail_ctx(struct redis_conn *c, const char *what, int saved_errno)
{
	if (c->ctx->err == REDIS_ERR_IO &&
	    (saved_errno == EAGAIN || saved_errno == EWOULDBLOCK))
		redis_conn_fail(c, "%s: timed out after %ld ms", what,
		    c->pool->command_timeout_ms);
	else if (c->ctx->err == REDIS_ERR_EOF)
		redis_conn_fail(c, "%s: server closed the connection", what);
	else
		redis_conn_fail(c, "%s: %s", what, c->ctx->errstr);
}

/* A successful exchange: the server is healthy again. */
static void
redis_conn_healthy(struct redis_conn *c)
{
	c->delay_ms = 0;
	c->retry_at_ms = 0;
}

/* AUTH or SELECT on a fresh connection; FA_OK, or FA_UNAVAIL after redis_conn_fail. */
static int
redis_conn_handshake(struct redis_conn *c, int argc, const char **argv, const char *what)
{
	redisReply *r;
	int saved;

	r = redisCommandArgv(c->ctx, argc, argv, NULL);
	saved = errno;
	if (r == NULL) {
		redis_conn_fail_ctx(c, what, saved);
		return FA_UNAVAIL;
	}
	if (r->type == REDIS_REPLY_ERROR) {
		/* The server's message never contains the password. */
		redis_conn_fail(c, "%s failed: %.*s", what, (int)r->len, r->str);
		freeReplyObject(r);
		return FA_UNAVAIL;
	}
	freeReplyObject(r);
	return FA_OK;
}

int
redis_conn_ensure(struct redis_conn *c)
{
	struct redis_pool *p = c->pool;
	struct timeval tv = redis_pool_tv(p->connect_timeout_ms);
	const char *argv[3];
	char dbstr[16];
	int64_t now;

	if (c->ctx != NULL)
		return FA_OK;
	now = redis_pool_now_ms();
	if (now < c->retry_at_ms) {
		snprintf(c->errstr, sizeof c->errstr,
		    "Redis unavailable, next attempt in %ld ms (%s)",
		    (long)(c->retry_at_ms - now), c->cause);
		return FA_UNAVAIL;
	}

	if (p->path != NULL)
		c->ctx = redisConnectUnixWithTimeout(p->path, tv);
	else
		c->ctx = redisConnectWithTimeout(p->host, p->port, tv);
	if (c->ctx != NULL)
		metrics_redis_opened();
	if (c->ctx == NULL) {
		redis_conn_fail(c, "connect: out of memory");
		return FA_UNAVAIL;
	}
	if (c->ctx->err != 0) {
		if (p->path != NULL)
			redis_conn_fail(c, "connect to %s: %s", p->path, c->ctx->errstr);
		else
			redis_conn_fail(c, "connect to %s:%d: %s", p->host, p->port,
			    c->ctx->errstr);
		return FA_UNAVAIL;
	}
	if (redisSetTimeout(c->ctx, redis_pool_tv(p->command_timeout_ms)) != REDIS_OK) {
		redis_conn_fail(c, "setting the command timeout: %s", c->ctx->errstr);
		return FA_UNAVAIL;
	}
	/* Detect a peer that vanished without a FIN (host down) on idle slots. */
	if (p->path == NULL)
		(void)redisEnableKeepAlive(c->ctx);

	if (p->password != NULL) {
		argv[0] = "AUTH";
		if (p->user != NULL) {
			argv[1] = p->user;
			argv[2] = p->password;
		} else
			argv[1] = p->password;
		if (redis_conn_handshake(c, p->user != NULL ? 3 : 2, argv, "AUTH") != FA_OK)
			return FA_UNAVAIL;
	}
	if (p->db != 0) {
		snprintf(dbstr, sizeof dbstr, "%d", p->db);
		argv[0] = "SELECT";
		argv[1] = dbstr;
		if (redis_conn_handshake(c, 2, argv, "SELECT") != FA_OK)
			return FA_UNAVAIL;
	}
	/*
	 * Do not reset the backoff yet: a stopped (SIGSTOP) or overloaded server
	 * still accepts connections, and only a reply proves it is back.
	 */
	if (p->password != NULL || p->db != 0)
		redis_conn_healthy(c);
	metrics_redis_connected(c->cause[0] != '\0');
	c->pending = 0;
	c->reading = 0;
	return FA_OK;
}

/*
 * An idle connection with something to read was closed by the server (a
 * restart, a timeout): Redis never speaks unasked outside pub/sub. One
 * poll(2) with no wait, only when nothing is pending.
 */
static int
redis_conn_stale(const struct redis_conn *c)
{
	struct pollfd pfd = { .fd = c->ctx->fd, .events = POLLIN };

	return poll(&pfd, 1, 0) > 0 &&
	    (pfd.revents & (POLLIN | POLLHUP | POLLERR | POLLRDHUP)) != 0;
}

/*
 * Before a new command or batch: drop the connection if replies of an earlier
 * batch are still owed (they would be read as ours), or if the server closed
 * it while it sat idle -- nothing is sent yet, so reconnecting at once is safe
 * and spares the request a failure -- then connect.
 */
static int
redis_conn_begin(struct redis_conn *c, int continuing)
{
	if (c->pending > 0 && !(continuing && !c->reading)) {
		log_warn("redis slot %d: %d unread replies of an earlier batch; "
		    "reconnecting", c->slot, c->pending);
		redis_conn_drop(c);
	} else if (c->pending == 0 && c->ctx != NULL && redis_conn_stale(c)) {
		log_info("redis slot %d: the server closed the idle connection; "
		    "reconnecting", c->slot);
		redis_conn_drop(c);
		c->retry_at_ms = 0;
	}
	return redis_conn_ensure(c);
}

/* After an append that hiredis refused (out of memory or a bad format). */
static int
redis_conn_append_failed(struct redis_conn *c)
{
	snprintf(c->errstr, sizeof c->errstr, "cannot queue the command: %s",
	    c->ctx->err != 0 ? c->ctx->errstr : "bad format");
	/* The batch is incomplete and the caller will abandon it. */
	redis_conn_drop(c);
	return FA_UNAVAIL;
}

redisReply *
redis_conn_reply(struct redis_conn *c)
{
	void *reply = NULL;
	int saved;

	if (c->ctx == NULL) {
		if (c->errstr[0] == '\0')
			snprintf(c->errstr, sizeof c->errstr, "not connected");
		return NULL;
	}
	if (c->pending == 0) {
		snprintf(c->errstr, sizeof c->errstr, "no reply pending");
		return NULL;
	}
	c->reading = 1;
	if (redisGetReply(c->ctx, &reply) != REDIS_OK || reply == NULL) {
		saved = errno;
		/* The rest of the batch is lost with the connection. */
		redis_conn_fail_ctx(c, "reply", saved);
		return NULL;
	}
	if (--c->pending == 0)
		c->reading = 0;
	redis_conn_healthy(c);
	return reply;
}

int
redis_conn_append(struct redis_conn *c, const char *fmt, ...)
{
	va_list ap;
	int r;

	if (redis_conn_begin(c, 1) != FA_OK)
		return FA_UNAVAIL;
	va_start(ap, fmt);
	r = redisvAppendCommand(c->ctx, fmt, ap);
	va_end(ap);
	if (r != REDIS_OK)
		return redis_conn_append_failed(c);
	c->pending++;
	return FA_OK;
}

int
redis_conn_appendargv(struct redis_conn *c, int argc, const char **argv,
    const size_t *argvlen)
{
	if (redis_conn_begin(c, 1) != FA_OK)
		return FA_UNAVAIL;
	if (redisAppendCommandArgv(c->ctx, argc, argv, argvlen) != REDIS_OK)
		return redis_conn_append_failed(c);
	c->pending++;
	return FA_OK;
}

redisReply *
redis_conn_command(struct redis_conn *c, const char *fmt, ...)
{
	va_list ap;
	int r;

	if (redis_conn_begin(c, 0) != FA_OK)
		return NULL;
	va_start(ap, fmt);
	r = redisvAppendCommand(c->ctx, fmt, ap);
	va_end(ap);
	if (r != REDIS_OK) {
		redis_conn_append_failed(c);
		return NULL;
	}
	c->pending = 1;
	return redis_conn_reply(c);
}

redisReply *
redis_conn_commandargv(struct redis_conn *c, int argc, const char **argv,
    const size_t *argvlen)
{
	if (redis_conn_begin(c, 0) != FA_OK)
		return NULL;
	if (redisAppendCommandArgv(c->ctx, argc, argv, argvlen) != REDIS_OK) {
		redis_conn_append_failed(c);
		return NULL;
	}
	c->pending = 1;
	return redis_conn_reply(c);
}

redisContext *
redis_conn_hiredis(struct redis_conn *c)
{
	return c->ctx;
}

void
redis_conn_broken(struct redis_conn *c, const char *why)
{
	if (c->ctx != NULL)
		redis_conn_fail(c, "%s", why);
}

redisReply *
redis_conn_eval(struct redis_conn *c, const char *script, int nkeys, int argc,
    const char *const *args)
{
	const char *argv[16];
	size_t argvlen[16];
	char nk[16];
	int i;

	if (argc < 0 || argc + 3 > (int)(sizeof argv / sizeof argv[0]))
		abort();	/* a programming error, not a runtime condition */
	snprintf(nk, sizeof nk, "%d", nkeys);
	argv[0] = "EVAL";
	argv[1] = script;
	argv[2] = nk;
	for (i = 0; i < argc; i++)
		argv[3 + i] = args[i];
	for (i = 0; i < argc + 3; i++)
		argvlen[i] = strlen(argv[i]);
	return redis_conn_commandargv(c, argc + 3, argv, argvlen);
}

void
redis_pool_reply_free(redisReply *r)
{
	if (r != NULL)
		freeReplyObject(r);
}

int
redis_pool_reply_ok(const redisReply *r, const char *who, const char *what)
{
	if (r == NULL)
		return FA_UNAVAIL;
	if (r->type == REDIS_REPLY_ERROR) {
		log_warn("%s: %s: Redis answered: %.*s", who, what, (int)r->len, r->str);
		return FA_UNAVAIL;
	}
	return FA_OK;
}

int
redis_pool_decimal(const char *s, size_t len, long long *v)
{
	size_t i;

	if (len == 0 || len > 18)
		return FA_ERR;
	*v = 0;
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return FA_ERR;
		*v = *v * 10 + (s[i] - '0');
	}
	return FA_OK;
}
