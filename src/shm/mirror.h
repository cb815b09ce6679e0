/*
 * mirror.h -- whether the L1 cache may vouch for revocation state.
 *
 * One process per instance (the leader, elected through this region) keeps a
 * Redis pub/sub subscription and applies invalidations to the cache. Cached
 * "not revoked" answers carry the epoch in which they were written; they are
 * believed only while the leader is subscribed, alive (heartbeat) and in that
 * same epoch. Every (re)subscription or loss starts a new epoch, so anything
 * cached while a message could have been missed is never believed again.
 */
#ifndef MIRROR_H
#define MIRROR_H

#include <stdatomic.h>
#include <stdint.h>

/* Shared state, in the segment header; no pointers. */
struct mirror_region {
	_Atomic uint64_t	owner;		/* leader's owner word (shm.h), 0 = none */
	_Atomic uint64_t	heartbeat;	/* shm_now() (us) of the leader's last sign */
	_Atomic uint64_t	epoch;		/* bumped on every subscribe and loss */
	_Atomic uint32_t	connected;	/* 1 while the leader is subscribed */
	_Atomic uint64_t	messages;	/* invalidations applied */
	/*
	 * The last loss of sync (revocation_grace): the epoch that was trusted
	 * until lost_at (shm_now() us). Zero in a segment made before these
	 * fields existed, which reads as "never in sync": no grace, fail closed.
	 * Written lost_at = 0, lost_epoch, lost_at, so a reader that sees the
	 * same non-zero lost_at before and after reading lost_epoch has a pair.
	 */
	_Atomic uint64_t	lost_epoch;
	_Atomic uint64_t	lost_at;
};

/* A leader silent for this long (us) is replaced, and not believed. */
#define MIRROR_STALE_US	(300 * 1000)

void	mirror_region_init(struct mirror_region *);
/*
 * Become the leader if there is none, it died, or it went silent. *mine keeps
 * this process's claim between calls (0 at first). 1 if we lead now, else 0.
 */
int	mirror_lead(struct mirror_region *, uint64_t now, uint64_t *mine);
/* The leader's sign of life. */
void	mirror_beat(struct mirror_region *, uint64_t now);
/* The leader (un)subscribed: a new epoch either way. Returns it. */
uint64_t mirror_set_connected(struct mirror_region *, int connected, uint64_t now);
/* 1 and *epoch when cached revocation state may be believed now, else 0. */
int	mirror_trusted(struct mirror_region *, uint64_t now, uint64_t *epoch);
/*
 * revocation_grace: 1 and *epoch when the mirror is not trusted now but was
 * in sync at most grace_us ago -- then entries of that epoch may be believed
 * (bounded staleness). 0 when grace_us is 0 or sync was lost longer ago.
 */
int	mirror_recent(struct mirror_region *, uint64_t now, uint64_t grace_us,
	    uint64_t *epoch);

#endif
