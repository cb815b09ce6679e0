/*
 * admission.h -- a host-wide limit on concurrent Argon2 computations, shared
 * by every responder process through the segment (shm.h), so a login storm
 * cannot take the host's memory or every core.
 *
 * A slot is an owner word (shm_owner_make: pid and claim time); a process
 * killed while it holds one is recognised as dead and its slot taken back, so
 * no slot stays claimed by a dead pid.
 */
#ifndef ADMISSION_H
#define ADMISSION_H

#include <stdatomic.h>
#include <stdint.h>

#define ADMISSION_SLOTS_MAX	256

/* The shared region (inside the segment header): no pointers. */
struct admission_region {
	_Atomic uint64_t	owner[ADMISSION_SLOTS_MAX];	/* 0 = free */
	_Atomic int64_t		waiting;	/* requests waiting for a slot now */
	_Atomic uint64_t	admitted;	/* total slots granted */
	_Atomic uint64_t	rejected;	/* total waits that timed out */
	_Atomic uint64_t	reclaimed;	/* slots taken back from dead processes */
};

struct admission;

/* Zero a region (segment initialisation). */
void	admission_region_init(struct admission_region *);
/* A process-local view using slots [0, limit) (1..ADMISSION_SLOTS_MAX). */
struct admission *admission_new(struct admission_region *, int limit);
void	admission_free(struct admission *);
/*
 * Take a slot, waiting at most wait_ms. FA_OK and *slot (give it back with
 * admission_release), or FA_LIMIT when none came free in time. A NULL
 * admission admits at once (no segment: tools), with *slot = -1.
 */
int	admission_acquire(struct admission *, long wait_ms, int *slot);
/* Give back a slot from admission_acquire; -1 is ignored. */
void	admission_release(struct admission *, int slot);

struct admission_stats {
	int		limit;		/* this process's limit */
	int		in_flight;	/* slots held now (any process) */
	int64_t		waiting;
	uint64_t	admitted, rejected, reclaimed;
};
void	admission_stats(struct admission *, struct admission_stats *);

#endif
