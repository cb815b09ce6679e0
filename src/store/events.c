/*
 * events.c -- Redis pub/sub for cache invalidation across instances.
 *
 * The subscriber drives hiredis by hand on its own connection: a subscribed
 * connection only receives, so it is polled with a timeout instead of using
 * hiredis's socket timeout (which would mark the context failed on every
 * quiet second). Liveness is checked with PING (allowed while subscribed):
 * a Redis that stops answering for SUB_DEAD_MS is treated as gone, so a
 * SIGSTOPped server cannot make the mirror look current.
 */
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <hiredis/hiredis.h>

#include "core/fastauth.h"
#include "core/xmalloc.h"
#include "store/events.h"
#include "store/redis_pool.h"

#define EVENTS_PING_MS	250	/* send a PING after this much silence */
#define EVENTS_DEAD_MS	1000	/* no reply at all for this long: gone */

struct events_sub {
	struct redis_pool	*pool;		/* one slot: the subscribed connection */
	struct redis_conn	*conn;
	int			 subscribed;
	long long		 last_rx_ms;	/* monotonic: last reply of any kind */
	long long		 last_ping_ms;
	char			 errstr[128];
};

static long long
events_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int
events_publish(struct redis_conn *conn, const char *fmt, ...)
{
	char msg[EVENTS_MSG_MAX];
	redisReply *r;
	va_list ap;
	int rc;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	r = redis_conn_command(conn, "PUBLISH %sevents %s", redis_conn_prefix(conn), msg);
	rc = r != NULL && r->type == REDIS_REPLY_INTEGER ? FA_OK : FA_UNAVAIL;
	if (r != NULL)
		freeReplyObject(r);
	return rc;
}

struct events_sub *
events_sub_new(const struct redis_pool_params *params, char **cause)
{
	struct events_sub *s = xcalloc(1, sizeof *s);
	struct redis_pool_params pp = *params;

	pp.size = 1;
	if ((s->pool = redis_pool_new(&pp, cause)) == NULL) {
		free(s);
		return NULL;
	}
	s->conn = redis_pool_conn(s->pool, 0);
	return s;
}

void
events_sub_free(struct events_sub *s)
{
	if (s == NULL)
		return;
	redis_pool_free(s->pool);
	free(s);
}

const char *
events_sub_errstr(struct events_sub *s)
{
	return s->errstr[0] != '\0' ? s->errstr : redis_conn_errstr(s->conn);
}

static int
events_sub_lost(struct events_sub *s, const char *why)
{
	snprintf(s->errstr, sizeof s->errstr, "%s", why);
	redis_conn_broken(s->conn, why);
	s->subscribed = 0;
	return FA_UNAVAIL;
}

int
events_sub_connect(struct events_sub *s)
{
	redisReply *r;

	s->errstr[0] = '\0';
	s->subscribed = 0;
	/* Through the pool: connect, AUTH, SELECT, then the first reply. */
	r = redis_conn_command(s->conn, "SUBSCRIBE %sevents", redis_conn_prefix(s->conn));
	if (r == NULL)
		return FA_UNAVAIL;
	if (r->type != REDIS_REPLY_ARRAY || r->elements != 3) {
		freeReplyObject(r);
		return events_sub_lost(s, "SUBSCRIBE refused");
	}
	freeReplyObject(r);
	s->subscribed = 1;
	s->last_rx_ms = s->last_ping_ms = events_now_ms();
	return FA_OK;
}

/* One reply: a message (FA_OK), anything else (FA_NOTFOUND), or FA_UNAVAIL. */
static int
events_sub_take(struct events_sub *s, redisReply *r, char *msg, size_t cap)
{
	int rc = FA_NOTFOUND;

	s->last_rx_ms = events_now_ms();
	if (r->type == REDIS_REPLY_ARRAY && r->elements == 3 &&
	    r->element[0]->type == REDIS_REPLY_STRING &&
	    strcmp(r->element[0]->str, "message") == 0 &&
	    r->element[2]->type == REDIS_REPLY_STRING) {
		snprintf(msg, cap, "%.*s", (int)r->element[2]->len, r->element[2]->str);
		rc = FA_OK;
	}
	freeReplyObject(r);
	return rc;
}

int
events_sub_next(struct events_sub *s, int timeout_ms, char *msg, size_t cap)
{
	redisContext *ctx = redis_conn_hiredis(s->conn);
	struct pollfd pfd;
	void *reply = NULL;
	long long now;
	int wdone;

	if (!s->subscribed || ctx == NULL)
		return events_sub_lost(s, "not subscribed");
	/* A reply may already sit in hiredis's buffer. */
	if (redisGetReplyFromReader(ctx, &reply) != REDIS_OK)
		return events_sub_lost(s, "protocol error");
	if (reply != NULL)
		return events_sub_take(s, reply, msg, cap);

	now = events_now_ms();
	if (now - s->last_rx_ms > EVENTS_DEAD_MS)
		return events_sub_lost(s, "no answer from Redis");
	if (now - s->last_ping_ms >= EVENTS_PING_MS) {
		s->last_ping_ms = now;
		if (redisAppendCommand(ctx, "PING") != REDIS_OK)
			return events_sub_lost(s, "PING");
		do {
			if (redisBufferWrite(ctx, &wdone) != REDIS_OK)
				return events_sub_lost(s, "write failed");
		} while (!wdone);
	}
	pfd.fd = ctx->fd;
	pfd.events = POLLIN;
	if (poll(&pfd, 1, timeout_ms) <= 0)
		return FA_NOTFOUND;
	if (redisBufferRead(ctx) != REDIS_OK)
		return events_sub_lost(s, "connection lost");
	if (redisGetReplyFromReader(ctx, &reply) != REDIS_OK)
		return events_sub_lost(s, "protocol error");
	if (reply == NULL)
		return FA_NOTFOUND;
	return events_sub_take(s, reply, msg, cap);
}
