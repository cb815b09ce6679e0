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

#endif
