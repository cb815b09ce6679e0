/*
 * lookup.h -- reads that go through the host's L1 cache (shared memory)
 * before Redis (L2): client records, revocation state of a token (its jti and
 * its subject's not-before), user records. Entries are written only from what
 * Redis returned, keyed by the record's own id, so no request can choose what
 * another request reads; invalidations arrive over pub/sub (events.h) and
 * "not revoked" is believed only while the mirror is trusted (mirror.h).
 */
#ifndef LOOKUP_H
#define LOOKUP_H

#include <stdint.h>

#include "crypto/token.h"
#include "store/store.h"

struct cache;
struct service_thread;

/* A client record: FA_OK, FA_NOTFOUND, FA_UNAVAIL, FA_ERR (as store_client_get). */
int	lookup_client(struct service_thread *, const char *id, struct store_client *out);
/*
 * Is the access token with this jti (and, if subject is not "", issued at iat
 * to that subject) still valid? *revoked = 1 when its jti is deny-listed or
 * iat is before the subject's not-before. FA_OK, or FA_UNAVAIL (fail closed).
 */
int	lookup_token_revoked(struct service_thread *, const uint8_t jti[TOKEN_JTI_LEN],
	    const char *subject, uint64_t iat, int *revoked);
/*
 * Introspection's reads in one go: the calling client and the token state,
 * with a single pipelined Redis round trip for whatever the cache did not
 * answer. *client_rc as lookup_client. FA_OK, FA_UNAVAIL, FA_ERR.
 */
int	lookup_introspect(struct service_thread *, const char *client_id,
	    struct store_client *client, int *client_rc,
	    const struct token_claims *, int *revoked);
/*
 * The revocation state of n opened access tokens (a batch introspection):
 * each from the cache where it can vouch, the rest from Redis in a single
 * round trip (store_revoked_many), whose answers are cached as one lookup's
 * would be. revoked[i] 0/1. FA_OK, or FA_UNAVAIL with every revoked[i] = 1.
 */
int	lookup_revoked_batch(struct service_thread *, int n,
	    const struct token_claims *const *cl, int *revoked);
/* Remember locally that jti is revoked (its announcement follows). */
void	lookup_note_revoked(struct service_thread *, const uint8_t jti[TOKEN_JTI_LEN]);
/*
 * Apply one invalidation message (events.h) to the cache: the subscriber's
 * work. FA_OK, FA_ERR for a message it does not understand.
 */
int	lookup_apply_event(struct cache *, const char *msg, uint64_t now);

#endif
