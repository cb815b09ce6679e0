/*
 * redis_pool.h -- a per-process pool of hiredis connections.
 *
 * One slot per request thread (plus one for housekeeping), so a thread never
 * waits for another's connection. Connections are made lazily with a connect
 * timeout, every command has a command timeout, and a broken connection is
 * dropped and re-made after an exponential backoff with jitter; while backing
 * off, commands fail at once (FA_UNAVAIL) instead of waiting.
 */
#ifndef REDIS_POOL_H
#define REDIS_POOL_H

#include <hiredis/hiredis.h>

struct redis_pool;
struct redis_conn;

struct redis_pool_params {
	const char	*url;		/* redis://[:pw@]host[:port][/db], unix:/path[?db=N] */
	const char	*prefix;	/* key prefix handed to the store, e.g. "fastauth:" */
	long		 connect_timeout_ms;
	long		 command_timeout_ms;
	long		 backoff_min_ms;
	long		 backoff_max_ms;
	int		 size;		/* number of slots */
};

/* Parse the URL and set up size slots (no connection yet). NULL with *cause on a bad URL. */
struct redis_pool *redis_pool_new(const struct redis_pool_params *, char **cause);
/* Close every connection. Accepts NULL. */
void	redis_pool_free(struct redis_pool *);
/* The connection of slot i (0 <= i < size); owned by the pool. */
struct redis_conn *redis_pool_conn(struct redis_pool *, int slot);
int	redis_pool_size(const struct redis_pool *);

/* The key prefix. */
const char *redis_conn_prefix(const struct redis_conn *);
/*
 * Run one command (hiredis format). Returns the reply (free with
 * freeReplyObject), or NULL when the server cannot be reached, timed out or the
 * connection broke (then redis_conn_errstr says why). A REDIS_REPLY_ERROR reply
 * is returned as a reply, not NULL.
 */
redisReply *redis_conn_command(struct redis_conn *, const char *fmt, ...);
redisReply *redis_conn_commandargv(struct redis_conn *, int argc, const char **argv,
	    const size_t *argvlen);
/*
 * Pipelining: queue commands with redis_conn_append*, then collect exactly as
 * many replies with redis_conn_reply, in order. FA_OK / FA_UNAVAIL for append;
 * reply NULL on failure (the connection is then dropped and the remaining
 * replies are lost: callers treat the batch as failed).
 */
int	redis_conn_append(struct redis_conn *, const char *fmt, ...);
int	redis_conn_appendargv(struct redis_conn *, int argc, const char **argv,
	    const size_t *argvlen);
redisReply *redis_conn_reply(struct redis_conn *);
/* Why the last call failed (static or owned by the connection). */
const char *redis_conn_errstr(const struct redis_conn *);
/* Connect now if not connected (respecting backoff). FA_OK or FA_UNAVAIL. */
int	redis_conn_ensure(struct redis_conn *);
/*
 * The connected hiredis context, for a caller that must drive the protocol
 * itself (a subscriber); NULL when not connected. Owned by the slot.
 */
redisContext *redis_conn_hiredis(struct redis_conn *);
/* Drop the connection after the caller found it broken (backoff applies). */
void	redis_conn_broken(struct redis_conn *, const char *why);
/*
 * EVAL script with nkeys keys followed by the rest of args (argc strings in
 * all, at most 13), sent binary-safe. The reply as redis_conn_command.
 */
redisReply *redis_conn_eval(struct redis_conn *, const char *script, int nkeys,
	    int argc, const char *const *args);

/* freeReplyObject that accepts NULL. */
void	redis_pool_reply_free(redisReply *);
/*
 * A missing reply (unreachable) or an error reply is FA_UNAVAIL, logged with
 * who and what for the error reply: callers fail closed. FA_OK otherwise.
 */
int	redis_pool_reply_ok(const redisReply *, const char *who, const char *what);
/* A non-negative decimal of at most 18 digits (len bytes). FA_OK or FA_ERR. */
int	redis_pool_decimal(const char *s, size_t len, long long *v);

#endif
