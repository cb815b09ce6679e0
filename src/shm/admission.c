/*
 * admission.c -- counting semaphore in shared memory that survives SIGKILL.
 *
 * A POSIX semaphore would lose a slot forever when its holder is killed, and
 * our processes have no common parent to clean up after them. Here each slot
 * records who holds it; a thread that finds every slot taken checks whether a
 * holder is dead (shm_owner_dead, /proc) and takes its slot back by CAS.
 * Waiting polls with a short sleep: Argon2 runs take tens of milliseconds, so
 * a 1 ms poll costs nothing and needs no futex across processes.
 */
#include <errno.h>
#include <stdlib.h>
#include <time.h>

#include "core/fastauth.h"
#include "core/xmalloc.h"
#include "shm/admission.h"
#include "shm/shm.h"

struct admission {
	struct admission_region	*r;	/* in the segment */
	int			 limit;
};

void
admission_region_init(struct admission_region *r)
{
	int i;

	for (i = 0; i < ADMISSION_SLOTS_MAX; i++)
		atomic_store(&r->owner[i], 0);
	atomic_store(&r->waiting, 0);
	atomic_store(&r->admitted, 0);
	atomic_store(&r->rejected, 0);
	atomic_store(&r->reclaimed, 0);
}

struct admission *
admission_new(struct admission_region *r, int limit)
{
	struct admission *a = xcalloc(1, sizeof *a);

	if (limit < 1)
		limit = 1;
	if (limit > ADMISSION_SLOTS_MAX)
		limit = ADMISSION_SLOTS_MAX;
	a->r = r;
	a->limit = limit;
	return a;
}

void
admission_free(struct admission *a)
{
	free(a);
}

/* One pass over the slots: take a free one, or one whose holder is dead. */
static int
admission_try(struct admission *a, int reclaim)
{
	uint64_t me = shm_owner_make(1), cur;
	int i;

	for (i = 0; i < a->limit; i++) {
		cur = atomic_load_explicit(&a->r->owner[i], memory_order_relaxed);
		if (cur == 0) {
			if (atomic_compare_exchange_strong(&a->r->owner[i], &cur, me))
				return i;
		} else if (reclaim && shm_owner_dead(cur)) {
			if (atomic_compare_exchange_strong(&a->r->owner[i], &cur, me)) {
				atomic_fetch_add(&a->r->reclaimed, 1);
				return i;
			}
		}
	}
	return -1;
}

int
admission_acquire(struct admission *a, long wait_ms, int *slotp)
{
	struct timespec nap = { 0, 1000 * 1000 };
	long waited = 0;
	int slot, rounds = 0;

	*slotp = -1;
	if (a == NULL)
		return FA_OK;
	if ((slot = admission_try(a, 0)) < 0) {
		atomic_fetch_add(&a->r->waiting, 1);
		for (;;) {
			/* Every 50 ms, look for slots held by dead processes too. */
			slot = admission_try(a, rounds++ % 50 == 0);
			if (slot >= 0 || waited >= wait_ms)
				break;
			nanosleep(&nap, NULL);
			waited += 1;
		}
		atomic_fetch_sub(&a->r->waiting, 1);
	}
	if (slot < 0) {
		atomic_fetch_add(&a->r->rejected, 1);
		return FA_LIMIT;
	}
	atomic_fetch_add(&a->r->admitted, 1);
	*slotp = slot;
	return FA_OK;
}

void
admission_release(struct admission *a, int slot)
{
	if (a == NULL || slot < 0 || slot >= ADMISSION_SLOTS_MAX)
		return;
	atomic_store(&a->r->owner[slot], 0);
}

void
admission_stats(struct admission *a, struct admission_stats *st)
{
	int i;

	st->limit = a->limit;
	st->in_flight = 0;
	for (i = 0; i < ADMISSION_SLOTS_MAX; i++)
		if (atomic_load(&a->r->owner[i]) != 0)
			st->in_flight++;
	st->waiting = atomic_load(&a->r->waiting);
	st->admitted = atomic_load(&a->r->admitted);
	st->rejected = atomic_load(&a->r->rejected);
	st->reclaimed = atomic_load(&a->r->reclaimed);
}
