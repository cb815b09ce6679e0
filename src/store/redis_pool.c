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
 * Circuit breaker (breaker.h): one per pool, checked when a command or a
 * batch starts; a failure is reported by redis_conn_fail, a success by a
 * complete reply. The half-open probe is an ordinary request's command: it
 * skips its slot's backoff, since the breaker has decided it may try.
 * Error replies that mean "this server cannot serve us now" -- LOADING,
 * READONLY (a demoted master), MASTERDOWN -- count as failures too, and the
 * connection is replaced before its next use.
 *
 * Sentinel: the master's address is pool-wide, under addr_lock, with a
 * generation number; a slot connected to an older generation reconnects.
 * Any connection failure (and READONLY/MASTERDOWN) asks for a new discovery;
 * only one thread at a time asks the sentinels, the others use its answer.
 * Every new connection is checked with ROLE: a replica is never used.
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
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/fastauth.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "store/breaker.h"
#include "shm/metrics.h"
#include "store/redis_pool.h"

/* Used when a parameter is <= 0. */
#define REDIS_POOL_DEFAULT_CONNECT_MS	1000
#define REDIS_POOL_DEFAULT_COMMAND_MS	1000
#define REDIS_POOL_DEFAULT_BACKOFF_MIN	100
#define REDIS_POOL_DEFAULT_BACKOFF_MAX	5000
/* First read-retry wait; doubles per attempt, uniform jitter in [w/2, w]. */
#define REDIS_POOL_RETRY_BASE_MS	20
#define REDIS_POOL_HOST_MAX		256

struct redis_conn {
	struct redis_pool *pool;
	int		 slot;
	redisContext	*ctx;		/* NULL while not connected */
	int		 pending;	/* replies appended but not yet read */
	int		 reading;	/* a reply of the current batch was read */
	long		 delay_ms;	/* current backoff step; 0 = not backing off */
	int64_t		 retry_at_ms;	/* monotonic ms; no connect attempt before */
	uint64_t	 rng;		/* xorshift state for the jitter */
	int		 probe;		/* this batch is the breaker's half-open probe */
	int		 timed_out;	/* the last failure was a timeout */
	int		 rejected;	/* the last call was refused by the breaker */
	int		 doomed;	/* replace the connection before its next use */
	uint64_t	 addr_gen;	/* Sentinel: master generation connected to */
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
	struct breaker	 breaker;
	int		 read_retries;
	int		 wait_replicas;
	long		 wait_timeout_ms;
	_Atomic uint64_t retries;
	_Atomic uint64_t wait_shortfalls;
	_Atomic int64_t	 wait_logged_ms;	/* last shortfall warning (rate limit) */
	/* Sentinel; nsentinels 0 = not used */
	int		 nsentinels;
	char		*sentinel_host[REDIS_POOL_SENTINELS_MAX];
	int		 sentinel_port[REDIS_POOL_SENTINELS_MAX];
	char		*master_name;
	pthread_mutex_t	 addr_lock;	/* guards master_host/port, next_sentinel */
	char		 master_host[REDIS_POOL_HOST_MAX];
	int		 master_port;
	int		 next_sentinel;	/* the one that answered last is asked first */
	_Atomic uint64_t addr_gen;	/* bumped when the address changes; 0 = none yet */
	_Atomic int	 rediscover;	/* ask the sentinels before the next connect */
	_Atomic uint64_t master_changes;
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

/* "host:port,[v6]:port,..." into the pool's sentinel list. */
static int
redis_pool_parse_sentinels(struct redis_pool *p, const char *list, char **cause)
{
	char *copy, *item, *save = NULL, *host, *colon;
	long port;
	int rc = FA_ERR;

	copy = xstrdup(list);
	for (item = strtok_r(copy, ", ", &save); item != NULL;
	    item = strtok_r(NULL, ", ", &save)) {
		if (p->nsentinels == REDIS_POOL_SENTINELS_MAX) {
			*cause = xasprintf("more than %d sentinels", REDIS_POOL_SENTINELS_MAX);
			goto out;
		}
		host = item;
		if (*host == '[') {
			if ((colon = strstr(host, "]:")) == NULL) {
				*cause = xasprintf("sentinel '%.64s': bad [IPv6]:port", item);
				goto out;
			}
			*colon++ = '\0';
			host++;
		} else if ((colon = strrchr(host, ':')) == NULL) {
			*cause = xasprintf("sentinel '%.64s': expected host:port", item);
			goto out;
		}
		*colon++ = '\0';
		if (*host == '\0' || strlen(host) >= REDIS_POOL_HOST_MAX ||
		    (port = redis_pool_number(colon, 1, 65535)) < 0) {
			*cause = xasprintf("sentinel '%.64s': bad host or port", item);
			goto out;
		}
		p->sentinel_host[p->nsentinels] = xstrdup(host);
		p->sentinel_port[p->nsentinels++] = (int)port;
	}
	if (p->nsentinels == 0) {
		*cause = xstrdup("the sentinel list is empty");
		goto out;
	}
	rc = FA_OK;
out:
	free(copy);
	return rc;
}

struct redis_pool *
redis_pool_new(const struct redis_pool_params *params, char **cause)
{
	struct breaker_params bp;
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
	pthread_mutex_init(&p->addr_lock, NULL);
	memset(&bp, 0, sizeof bp);
	breaker_init(&p->breaker, &bp);		/* replaced below once parsed */
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
	if (rc == FA_OK && (params->sentinels != NULL) != (params->master_name != NULL)) {
		*cause = xstrdup("Sentinel needs both the sentinel list and the master name");
		rc = FA_ERR;
	}
	if (rc == FA_OK && params->sentinels != NULL) {
		if (p->path != NULL) {
			*cause = xstrdup("Sentinel needs a redis:// URL (its credentials and "
			    "db are used; its host is replaced by the master's)");
			rc = FA_ERR;
		} else if ((rc = redis_pool_parse_sentinels(p, params->sentinels,
		    cause)) == FA_OK)
			p->master_name = xstrdup(params->master_name);
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

	breaker_free(&p->breaker);
	bp.failures = params->breaker_failures;
	bp.window_ms = params->breaker_window_ms;
	bp.cooldown_ms = params->breaker_cooldown_ms;
	/* A probe reports within a connect and a command, unless its thread is stuck. */
	bp.probe_lease_ms = 2 * (p->connect_timeout_ms + p->command_timeout_ms);
	breaker_init(&p->breaker, &bp);
	p->read_retries = params->read_retries > 0 ? params->read_retries : 0;
	p->wait_replicas = params->wait_replicas > 0 ? params->wait_replicas : 0;
	p->wait_timeout_ms = params->wait_timeout_ms;
	/* WAIT must answer before hiredis gives up on the command. */
	if (p->wait_timeout_ms < 1 || p->wait_timeout_ms >= p->command_timeout_ms)
		p->wait_timeout_ms = p->command_timeout_ms / 2 > 0 ? p->command_timeout_ms / 2 : 1;

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
	for (i = 0; i < p->nsentinels; i++)
		free(p->sentinel_host[i]);
	free(p->master_name);
	breaker_free(&p->breaker);
	pthread_mutex_destroy(&p->addr_lock);
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
	c->timed_out = 0;
	breaker_failure(&p->breaker, redis_pool_now_ms(), c->probe);
	c->probe = 0;
	if (p->nsentinels > 0)
		atomic_store(&p->rediscover, 1);	/* perhaps a failover */

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
	    (saved_errno == EAGAIN || saved_errno == EWOULDBLOCK)) {
		redis_conn_fail(c, "%s: timed out after %ld ms", what,
		    c->pool->command_timeout_ms);
		c->timed_out = 1;
	} else if (c->ctx->err == REDIS_ERR_EOF)
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

/*
 * Ask the sentinels, in turn, where the master is. FA_OK with the pool's
 * address updated (and its generation bumped if it changed), or FA_UNAVAIL
 * with why. Called with addr_lock held.
 */
static int
redis_pool_discover_locked(struct redis_pool *p, char *why, size_t whycap)
{
	struct timeval ctv = redis_pool_tv(p->connect_timeout_ms);
	struct timeval ctmo = redis_pool_tv(p->command_timeout_ms);
	redisContext *ctx;
	redisReply *r;
	long port;
	int i, k;

	snprintf(why, whycap, "no sentinel answered for master '%s'", p->master_name);
	for (k = 0; k < p->nsentinels; k++) {
		i = (p->next_sentinel + k) % p->nsentinels;
		ctx = redisConnectWithTimeout(p->sentinel_host[i], p->sentinel_port[i], ctv);
		if (ctx == NULL || ctx->err != 0 || redisSetTimeout(ctx, ctmo) != REDIS_OK) {
			if (ctx != NULL)
				redisFree(ctx);
			continue;
		}
		r = redisCommand(ctx, "SENTINEL get-master-addr-by-name %s", p->master_name);
		if (r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
		    r->element[0]->type == REDIS_REPLY_STRING &&
		    r->element[1]->type == REDIS_REPLY_STRING &&
		    r->element[0]->len > 0 && r->element[0]->len < REDIS_POOL_HOST_MAX &&
		    (port = redis_pool_number(r->element[1]->str, 1, 65535)) > 0) {
			if (strcmp(p->master_host, r->element[0]->str) != 0 ||
			    p->master_port != (int)port) {
				if (atomic_load(&p->addr_gen) != 0)
					atomic_fetch_add(&p->master_changes, 1);
				log_info("sentinel %s:%d: master '%s' is at %s:%ld",
				    p->sentinel_host[i], p->sentinel_port[i],
				    p->master_name, r->element[0]->str, port);
				snprintf(p->master_host, sizeof p->master_host, "%s",
				    r->element[0]->str);
				p->master_port = (int)port;
				atomic_fetch_add(&p->addr_gen, 1);
			}
			p->next_sentinel = i;
			freeReplyObject(r);
			redisFree(ctx);
			return FA_OK;
		}
		if (r != NULL && r->type == REDIS_REPLY_NIL)
			snprintf(why, whycap, "sentinel %s:%d does not know master '%s'",
			    p->sentinel_host[i], p->sentinel_port[i], p->master_name);
		if (r != NULL)
			freeReplyObject(r);
		redisFree(ctx);
	}
	return FA_UNAVAIL;
}

/*
 * The master's address for a new connection: ask the sentinels first when a
 * failure asked for it or we never did. One thread asks; a thread that
 * waited for it uses the answer it got (the generation moved meanwhile).
 */
static int
redis_conn_master_addr(struct redis_conn *c, char *host, size_t hostcap, int *port)
{
	struct redis_pool *p = c->pool;
	uint64_t gen = atomic_load(&p->addr_gen);
	char why[160];
	int rc = FA_OK;

	pthread_mutex_lock(&p->addr_lock);
	if (atomic_load(&p->addr_gen) == 0 ||
	    (atomic_load(&p->rediscover) && atomic_load(&p->addr_gen) == gen)) {
		atomic_store(&p->rediscover, 0);
		if ((rc = redis_pool_discover_locked(p, why, sizeof why)) != FA_OK)
			atomic_store(&p->rediscover, 1);
	}
	if (rc == FA_OK) {
		snprintf(host, hostcap, "%s", p->master_host);
		*port = p->master_port;
		c->addr_gen = atomic_load(&p->addr_gen);
	}
	pthread_mutex_unlock(&p->addr_lock);
	if (rc != FA_OK)
		redis_conn_fail(c, "sentinel: %s", why);
	return rc;
}

/* Sentinel: the server we reached must say ROLE master. FA_OK or FA_UNAVAIL after fail. */
static int
redis_conn_check_role(struct redis_conn *c, const char *host, int port)
{
	redisReply *r;
	int saved, ok;

	r = redisCommand(c->ctx, "ROLE");
	saved = errno;
	if (r == NULL) {
		redis_conn_fail_ctx(c, "ROLE", saved);
		return FA_UNAVAIL;
	}
	ok = r->type == REDIS_REPLY_ARRAY && r->elements > 0 &&
	    r->element[0]->type == REDIS_REPLY_STRING &&
	    strcmp(r->element[0]->str, "master") == 0;
	if (!ok) {
		redis_conn_fail(c, "%s:%d is not the master (ROLE %s)", host, port,
		    r->type == REDIS_REPLY_ARRAY && r->elements > 0 &&
		    r->element[0]->type == REDIS_REPLY_STRING ? r->element[0]->str :
		    r->type == REDIS_REPLY_ERROR ? r->str : "unreadable");
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
	const char *argv[3], *host = p->host;
	char dbstr[16], mhost[REDIS_POOL_HOST_MAX];
	int64_t now;
	int port = p->port;

	if (c->ctx != NULL)
		return FA_OK;
	now = redis_pool_now_ms();
	if (now < c->retry_at_ms) {
		snprintf(c->errstr, sizeof c->errstr,
		    "Redis unavailable, next attempt in %ld ms (%s)",
		    (long)(c->retry_at_ms - now), c->cause);
		return FA_UNAVAIL;
	}
	if (p->nsentinels > 0) {
		if (redis_conn_master_addr(c, mhost, sizeof mhost, &port) != FA_OK)
			return FA_UNAVAIL;
		host = mhost;
	}

	if (p->path != NULL)
		c->ctx = redisConnectUnixWithTimeout(p->path, tv);
	else
		c->ctx = redisConnectWithTimeout(host, port, tv);
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
			redis_conn_fail(c, "connect to %s:%d: %s", host, port,
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
	if (p->nsentinels > 0 && redis_conn_check_role(c, host, port) != FA_OK)
		return FA_UNAVAIL;
	/*
	 * Do not reset the backoff yet: a stopped (SIGSTOP) or overloaded server
	 * still accepts connections, and only a reply proves it is back.
	 */
	if (p->password != NULL || p->db != 0 || p->nsentinels > 0)
		redis_conn_healthy(c);
	metrics_redis_connected(c->cause[0] != '\0');
	c->pending = 0;
	c->reading = 0;
	c->doomed = 0;
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
 * batch are still owed (they would be read as ours), if the server closed it
 * while it sat idle -- nothing is sent yet, so reconnecting at once is safe
 * and spares the request a failure -- if it was doomed by an error reply, or
 * if Sentinel moved the master since; ask the breaker; then connect.
 */
static int
redis_conn_begin(struct redis_conn *c, int continuing)
{
	struct redis_pool *p = c->pool;
	enum breaker_verdict v;

	c->rejected = 0;
	if (continuing && c->pending > 0 && !c->reading) {
		/* Mid-batch: the breaker was asked when the batch began. */
		if (c->ctx != NULL)
			return FA_OK;
		snprintf(c->errstr, sizeof c->errstr, "connection lost mid-batch");
		return FA_UNAVAIL;
	}
	if (c->pending > 0) {
		log_warn("redis slot %d: %d unread replies of an earlier batch; "
		    "reconnecting", c->slot, c->pending);
		redis_conn_drop(c);
	} else if (c->ctx != NULL && (c->doomed || (p->nsentinels > 0 &&
	    c->addr_gen != atomic_load(&p->addr_gen)))) {
		redis_conn_drop(c);
		c->retry_at_ms = 0;
	} else if (c->ctx != NULL && redis_conn_stale(c)) {
		log_info("redis slot %d: the server closed the idle connection; "
		    "reconnecting", c->slot);
		redis_conn_drop(c);
		c->retry_at_ms = 0;
	}
	/* An abandoned probe never reported; its lease runs out in the breaker. */
	c->probe = 0;
	v = breaker_allow(&p->breaker, redis_pool_now_ms());
	if (v == BREAKER_REJECT) {
		c->rejected = 1;
		snprintf(c->errstr, sizeof c->errstr, "Redis circuit breaker open (%s)",
		    c->cause[0] != '\0' ? c->cause : "too many failures");
		return FA_UNAVAIL;
	}
	if (v == BREAKER_PROBE) {
		c->probe = 1;
		c->retry_at_ms = 0;	/* the breaker decided: try now */
	}
	return redis_conn_ensure(c);
}

/*
 * An error reply that means this server cannot serve us now: loading its
 * data, a replica (demoted master), or a replica that lost its master.
 * Counted as a failure and the connection is replaced before its next use.
 */
static void
redis_conn_check_error(struct redis_conn *c, const redisReply *r)
{
	struct redis_pool *p = c->pool;
	int role;

	if (r->type != REDIS_REPLY_ERROR || r->str == NULL)
		return;
	role = strncmp(r->str, "READONLY", 8) == 0 || strncmp(r->str, "MASTERDOWN", 10) == 0;
	if (!role && strncmp(r->str, "LOADING", 7) != 0)
		return;
	log_warn("redis slot %d: %.80s; reconnecting", c->slot, r->str);
	c->doomed = 1;
	breaker_failure(&p->breaker, redis_pool_now_ms(), c->probe);
	c->probe = 0;
	if (role && p->nsentinels > 0)
		atomic_store(&p->rediscover, 1);
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
	redis_conn_check_error(c, reply);
	if (c->pending == 0 && c->probe) {
		breaker_success(&c->pool->breaker, 1);
		c->probe = 0;
	}
	return reply;
}

int
redis_conn_append(struct redis_conn *c, const char *fmt, ...)
{
	va_list ap;
	int r;

	if (c->pending >= REDIS_POOL_PIPELINE_MAX) {
		snprintf(c->errstr, sizeof c->errstr, "more than %d commands in one batch",
		    REDIS_POOL_PIPELINE_MAX);
		return FA_LIMIT;
	}
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
	if (c->pending >= REDIS_POOL_PIPELINE_MAX) {
		snprintf(c->errstr, sizeof c->errstr, "more than %d commands in one batch",
		    REDIS_POOL_PIPELINE_MAX);
		return FA_LIMIT;
	}
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

int
redis_conn_retry(struct redis_conn *c, int attempt)
{
	struct redis_pool *p = c->pool;
	struct timespec ts;
	long w;

	if (attempt >= p->read_retries || c->rejected || c->timed_out)
		return 0;
	w = REDIS_POOL_RETRY_BASE_MS << (attempt < 8 ? attempt : 8);
	w = w / 2 + (long)(redis_conn_random(c) % (uint64_t)(w - w / 2 + 1));
	ts.tv_sec = w / 1000;
	ts.tv_nsec = (w % 1000) * 1000000L;
	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
	atomic_fetch_add(&p->retries, 1);
	c->retry_at_ms = 0;	/* this wait replaces the slot's backoff */
	log_debug("redis slot %d: retrying a read (attempt %d) after %ld ms: %s",
	    c->slot, attempt + 1, w, c->errstr);
	return 1;
}

int
redis_conn_durable(struct redis_conn *c, const char *what)
{
	struct redis_pool *p = c->pool;
	redisReply *r;
	int64_t now, last;
	long long acked = -1;
	int rc = FA_OK;

	if (p->wait_replicas == 0)
		return FA_OK;
	r = redis_conn_command(c, "WAIT %d %ld", p->wait_replicas, p->wait_timeout_ms);
	if (r != NULL && r->type == REDIS_REPLY_INTEGER)
		acked = r->integer;
	if (acked < p->wait_replicas) {
		rc = FA_LIMIT;
		atomic_fetch_add(&p->wait_shortfalls, 1);
		/* At most one warning a second per process: an outage is one line, not thousands. */
		now = redis_pool_now_ms();
		last = atomic_load(&p->wait_logged_ms);
		if (now - last >= 1000 &&
		    atomic_compare_exchange_strong(&p->wait_logged_ms, &last, now))
			log_warn("%s: WAIT: %lld of %d replicas acknowledged within %ld ms%s%s; "
			    "the write stands on the master but may be lost in a failover",
			    what, acked < 0 ? 0 : acked, p->wait_replicas, p->wait_timeout_ms,
			    r == NULL ? ": " : "", r == NULL ? redis_conn_errstr(c) : "");
	}
	redis_pool_reply_free(r);
	return rc;
}

int
redis_pool_breaker_state(struct redis_pool *p)
{
	struct breaker_stats st;

	breaker_stats(&p->breaker, redis_pool_now_ms(), &st);
	return (int)st.state;
}

void
redis_pool_stats(struct redis_pool *p, struct redis_pool_stats *out)
{
	struct breaker_stats st;

	breaker_stats(&p->breaker, redis_pool_now_ms(), &st);
	memset(out, 0, sizeof *out);
	out->breaker = (int)st.state;
	out->breaker_opens = st.opens;
	out->short_circuits = st.short_circuits;
	out->failures = st.failures;
	out->probes = st.probes;
	out->retry_after_ms = st.retry_after_ms;
	out->retries = atomic_load(&p->retries);
	out->wait_shortfalls = atomic_load(&p->wait_shortfalls);
	out->master_changes = atomic_load(&p->master_changes);
}

long
redis_pool_retry_after(struct redis_pool *p)
{
	struct breaker_stats st;
	long s;

	breaker_stats(&p->breaker, redis_pool_now_ms(), &st);
	if (st.state != BREAKER_OPEN)
		return 1;
	s = (st.retry_after_ms + 999) / 1000;
	return s >= 1 ? s : 1;
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
