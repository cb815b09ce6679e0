/*
 * events.h -- invalidation messages between instances, over Redis pub/sub on
 * the channel <prefix>events. Each message is one line:
 *   revoke <jti hex> <exp>   an access token was revoked until exp (s)
 *   client <id>              a client record changed or was removed
 *   subject <id>             a user changed, or all its tokens were revoked
 *   flush                    drop every cached entry
 * A publisher writes Redis first and publishes after, so a subscriber that
 * misses a message (disconnected) can always fall back to Redis.
 */
#ifndef EVENTS_H
#define EVENTS_H

#include <stddef.h>

struct redis_conn;
struct redis_pool_params;

#define EVENTS_MSG_MAX	256

/* PUBLISH one message (printf format). FA_OK or FA_UNAVAIL. */
int	events_publish(struct redis_conn *, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));

struct events_sub;

/* A subscriber with its own connection (params as the pool's; size ignored). NULL + cause on a bad URL. */
struct events_sub *events_sub_new(const struct redis_pool_params *, char **cause);
void	events_sub_free(struct events_sub *);
/* Connect and SUBSCRIBE (respects the reconnect backoff). FA_OK or FA_UNAVAIL. */
int	events_sub_connect(struct events_sub *);
/*
 * Wait up to timeout_ms for a message. FA_OK with the message in msg (NUL-
 * terminated, cap bytes), FA_NOTFOUND when none came (the connection is
 * fine: it answered a PING within the last few seconds), FA_UNAVAIL when the
 * connection is lost (call events_sub_connect again).
 */
int	events_sub_next(struct events_sub *, int timeout_ms, char *msg, size_t cap);
/* Why the subscriber last failed. */
const char *events_sub_errstr(struct events_sub *);

#endif
