/*
 * mirror.c -- leader election and trust for the revocation mirror.
 *
 * The leader is whoever holds the owner word; a dead holder (shm_owner_dead)
 * or one whose heartbeat is older than MIRROR_STALE_US (stopped, stuck) is
 * replaced by CAS. A replaced leader notices at its next mirror_lead call and
 * stops its subscriber. Readers believe the mirror only with a fresh heartbeat,
 * so a SIGSTOPped leader stops vouching within MIRROR_STALE_US.
 */
#include "shm/mirror.h"
#include "shm/shm.h"

void
mirror_region_init(struct mirror_region *m)
{
	atomic_store(&m->owner, 0);
	atomic_store(&m->heartbeat, 0);
	atomic_store(&m->epoch, 1);
	atomic_store(&m->connected, 0);
	atomic_store(&m->messages, 0);
	atomic_store(&m->lost_epoch, 0);
	atomic_store(&m->lost_at, 0);
}

/* Remember that epoch was in sync until at (see mirror.h for the order). */
static void
mirror_note_lost(struct mirror_region *m, uint64_t epoch, uint64_t at)
{
	atomic_store(&m->lost_at, 0);
	atomic_store(&m->lost_epoch, epoch);
	atomic_store(&m->lost_at, at);
}

int
mirror_lead(struct mirror_region *m, uint64_t now, uint64_t *mine)
{
	uint64_t cur = atomic_load(&m->owner), hb, claim;

	if (*mine != 0 && cur == *mine)
		return 1;
	*mine = 0;
	hb = atomic_load(&m->heartbeat);
	if (cur != 0 && !shm_owner_dead(cur) && now - hb < 3 * MIRROR_STALE_US)
		return 0;
	claim = shm_owner_make(1);
	if (!atomic_compare_exchange_strong(&m->owner, &cur, claim))
		return 0;
	/* The old leader's subscription is not ours: nothing is vouched for yet. */
	if (atomic_load(&m->connected))
		mirror_note_lost(m, atomic_load(&m->epoch), hb);	/* its last sign */
	atomic_store(&m->connected, 0);
	atomic_fetch_add(&m->epoch, 1);
	atomic_store(&m->heartbeat, now);
	*mine = claim;
	return 1;
}

void
mirror_beat(struct mirror_region *m, uint64_t now)
{
	atomic_store_explicit(&m->heartbeat, now, memory_order_release);
}

uint64_t
mirror_set_connected(struct mirror_region *m, int connected, uint64_t now)
{
	uint64_t e;

	if (!connected && atomic_load(&m->connected))
		mirror_note_lost(m, atomic_load(&m->epoch), now);
	/* Epoch first: a reader seeing connected=1 must see the new epoch. */
	e = atomic_fetch_add(&m->epoch, 1) + 1;
	atomic_store(&m->heartbeat, now);
	atomic_store_explicit(&m->connected, connected ? 1 : 0, memory_order_release);
	return e;
}

int
mirror_trusted(struct mirror_region *m, uint64_t now, uint64_t *epoch)
{
	uint64_t hb;

	if (!atomic_load_explicit(&m->connected, memory_order_acquire))
		return 0;
	hb = atomic_load_explicit(&m->heartbeat, memory_order_acquire);
	if (now > hb && now - hb > MIRROR_STALE_US)
		return 0;
	*epoch = atomic_load_explicit(&m->epoch, memory_order_acquire);
	return 1;
}

int
mirror_recent(struct mirror_region *m, uint64_t now, uint64_t grace_us,
    uint64_t *epoch)
{
	uint64_t hb, at, e;

	if (grace_us == 0)
		return 0;
	if (atomic_load_explicit(&m->connected, memory_order_acquire)) {
		/* Subscribed but the leader went silent: in sync until its last beat. */
		hb = atomic_load_explicit(&m->heartbeat, memory_order_acquire);
		e = atomic_load_explicit(&m->epoch, memory_order_acquire);
		if (now >= hb && now - hb <= grace_us &&
		    atomic_load(&m->connected) && atomic_load(&m->epoch) == e) {
			*epoch = e;
			return 1;
		}
		return 0;
	}
	at = atomic_load_explicit(&m->lost_at, memory_order_acquire);
	e = atomic_load_explicit(&m->lost_epoch, memory_order_acquire);
	if (at == 0 || at != atomic_load_explicit(&m->lost_at, memory_order_acquire))
		return 0;
	if (now < at || now - at > grace_us)
		return 0;
	*epoch = e;
	return 1;
}
