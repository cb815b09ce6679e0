/*
 * redis_pool.h -- a per-process pool of hiredis connections.
 *
 * One slot per request thread (plus one for housekeeping), so a thread never
 * waits for another's connection. Connections are made lazily with a connect
 * timeout, every command has a command timeout, and a broken connection is
 * dropped and re-made after an exponential backoff with jitter; while backing
 * off, commands fail at once (FA_UNAVAIL) instead of waiting.
 *
 * Above the slots, one circuit breaker per pool (breaker.h) shared by every
 * thread of the process: after redis_breaker_failures failures within the
 * window, every call fails at once for the cool-down, then one probe decides.
 * With Sentinel (sentinels != NULL) the pool asks the sentinels for the
 * master's address, checks ROLE on every new connection and asks again after
 * a connection error or a READONLY/MASTERDOWN reply, so it follows failovers.
 *
 * Classification of the pool's call sites (who may retry what):
 *
 *   idempotent reads -- retried by the caller through redis_conn_retry
 *   (a lost reply changes nothing on the server):
 *     store.c      store_client_get (HGETALL), store_client_and_revoked
 *                  (pipelined HGETALL/EXISTS/GET), store_is_revoked,
 *                  store_client_list (SMEMBERS)
 *     refresh.c    refresh_lookup (read-only Lua: HMGET/TTL)
 *     users.c      users_get, users_get_by_id (read-only Lua: HGETALL/GET)
 *     keyring.c    keyring_fetch (GET/ZRANGE/HGETALL batch; keyring_load,
 *                  keyring_reload_for)
 *     ep_health.c  PING (/ready)
 *
 *   writes -- never retried: a request whose reply was lost may have run.
 *   Those that must survive a failover call redis_conn_durable (WAIT):
 *     refresh.c    refresh_issue, refresh_rotate (a rotation run twice looks
 *                  like a reuse and revokes the family), refresh_revoke*,
 *                  refresh_revoke_subject            [durable]
 *     store.c      store_revoke_jti (SET revoked:)   [durable],
 *                  store_client_put / store_client_del (Lua; fastauthctl)
 *     users.c      users_* writers: create, set password/claims, lock,
 *                  not-before, login counters (users_login_check/failed/
 *                  succeeded: counters, lost updates tolerated)
 *     keyring.c    rotation (SET NX lock, WATCH/MULTI/EXEC, INCR key:next_id),
 *                  seal counters and retirement (Lua)
 *     limits.c     cluster rate limit (Lua GCRA update; not retried: a retry
 *                  would charge the client twice; Redis away = allowed)
 *
 *   protocol drivers -- own error handling:
 *     events.c     pub/sub subscriber (SUBSCRIBE, PING), reconnects itself
 *     fastauthctl  one connection, no breaker, fails with a message
 */
#ifndef REDIS_POOL_H
#define REDIS_POOL_H

#include <stdint.h>

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
	/* Sentinel: both set, or both NULL (then url names the server). */
	const char	*sentinels;	/* "host:port,host:port,..." */
	const char	*master_name;	/* SENTINEL get-master-addr-by-name */
	/* circuit breaker (breaker.h); failures 0 = no breaker */
	int		 breaker_failures;
	long		 breaker_window_ms;
	long		 breaker_cooldown_ms;
	int		 read_retries;	/* extra attempts redis_conn_retry grants a read */
	int		 wait_replicas;	/* redis_conn_durable: WAIT for this many; 0 = off */
	long		 wait_timeout_ms;	/* WAIT's timeout; < command_timeout_ms */
};

/* Bound on commands queued in one pipelined batch (redis_conn_append). */
#define REDIS_POOL_PIPELINE_MAX	1024
/* Bound on the number of sentinels in redis_sentinels. */
#define REDIS_POOL_SENTINELS_MAX	16

/*
 * What the pool has seen since it was made. Counters only go up. For
 * /metrics and "fastauthctl shm stats" (one pool per process).
 */
struct redis_pool_stats {
	int		 breaker;		/* enum breaker_state */
	uint64_t	 breaker_opens;		/* times the breaker opened */
	uint64_t	 short_circuits;	/* calls refused by the open breaker */
	uint64_t	 failures;		/* I/O errors, timeouts, refused connects */
	uint64_t	 probes;		/* half-open probes granted */
	uint64_t	 retries;		/* read retries granted (redis_conn_retry) */
	uint64_t	 wait_shortfalls;	/* WAIT acknowledged by fewer replicas */
	uint64_t	 master_changes;	/* Sentinel reported a new master address */
	long		 retry_after_ms;	/* open: cool-down left; else 0 */
};

/* Parse the URL and set up size slots (no connection yet). NULL with *cause on a bad URL. */
struct redis_pool *redis_pool_new(const struct redis_pool_params *, char **cause);
/* Close every connection. Accepts NULL. */
void	redis_pool_free(struct redis_pool *);
/* The connection of slot i (0 <= i < size); owned by the pool. */
struct redis_conn *redis_pool_conn(struct redis_pool *, int slot);
int	redis_pool_size(const struct redis_pool *);

/*
 * The breaker's state (enum breaker_state in breaker.h: 0 closed, 1 open,
 * 2 half-open), and everything at once. Lock-free; any thread.
 */
int	redis_pool_breaker_state(struct redis_pool *);
void	redis_pool_stats(struct redis_pool *, struct redis_pool_stats *);
/*
 * Seconds a client should wait before trying again (Retry-After): the
 * breaker's remaining cool-down rounded up while it is open, else 1.
 */
long	redis_pool_retry_after(struct redis_pool *);

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
/*
 * After a read returned no reply: 1 when the caller should send the same
 * idempotent read again (the pool has waited an exponential backoff with
 * jitter, attempt 0, 1, ...), 0 when not: the retries are used up, the
 * breaker refused the call, or it timed out (a timeout has spent the
 * request's budget already). Never use it for writes.
 */
int	redis_conn_retry(struct redis_conn *, int attempt);
/*
 * After a write that must survive a failover succeeded: WAIT for the
 * configured number of replicas. FA_OK when they acknowledged (or none are
 * configured), FA_LIMIT when fewer did in time or WAIT failed -- logged and
 * counted; the write stands on the master, so callers do not turn it into
 * an error (see fastauth(8), "Running Redis").
 */
int	redis_conn_durable(struct redis_conn *, const char *what);
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
