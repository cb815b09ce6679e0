/*
 * cache.h -- the L1 cache in shared memory: client records, user claims and
 * revocation lookups that every process of the host reads without a Redis
 * round trip. Fixed-size, set-associative, TTL and CLOCK eviction; readers
 * never block and never spin without bound; keys are compared in full.
 *
 * Times are microseconds of CLOCK_MONOTONIC (shm_now()).
 */
#ifndef CACHE_H
#define CACHE_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define CACHE_KEY_MAX		64	/* bytes of a key */
#define CACHE_VALUE_LIMIT	65536	/* the largest cache_value_max */

/* What an entry holds; part of its key, so kinds never see each other. */
enum cache_kind {
	CACHE_ALL = 0,		/* cache_flush only: every kind */
	CACHE_CLIENT = 1,	/* client records */
	CACHE_CLAIMS = 2,	/* user claims */
	CACHE_REVOCATION = 3	/* revocation lookups */
};
#define CACHE_KINDS	4	/* valid kinds are 1..CACHE_KINDS-1 */

struct cache;

/*
 * Taken before reading the store (L2), handed to cache_put: the put is refused
 * if the kind was flushed or any key of the kind deleted in between, so a
 * value read before an invalidation is never cached after it.
 */
struct cache_ticket {
	uint64_t	gen;	/* generation of the kind when taken */
	uint64_t	dels;	/* deletions of the kind when taken */
};

struct cache_stats {
	uint64_t	entries;		/* slots in the table */
	uint64_t	used;			/* valid entries (not expired, current generation) */
	uint64_t	claimed;		/* slots a writer holds (dead writers included) */
	uint64_t	value_max;		/* bytes of one value */
	uint64_t	hits[CACHE_KINDS];	/* cache_get found it (index: kind) */
	uint64_t	misses[CACHE_KINDS];
	uint64_t	puts[CACHE_KINDS];	/* cache_put stored it */
	uint64_t	dropped;		/* cache_put refused: stale ticket or busy */
	uint64_t	evicted;		/* valid entries pushed out by a put */
	uint64_t	recovered;		/* claims of dead writers taken over */
};

/* Snapshot the kind's generation and deletion count. */
void	cache_ticket(struct cache *, enum cache_kind, struct cache_ticket *);
/*
 * Look key up. FA_OK: the value (*outlen bytes) is in out. FA_NOTFOUND: miss
 * (absent, expired, flushed, or being written right now). FA_LIMIT: present
 * but longer than outcap; *outlen is its length. out may be scribbled on a miss.
 */
int	cache_get(struct cache *, enum cache_kind, const void *key, size_t keylen,
	    uint64_t now, void *out, size_t outcap, size_t *outlen);
/*
 * Store value under key until now + ttl (us). ticket may be NULL (no check
 * against invalidations before the call). FA_OK stored; FA_LIMIT key longer
 * than CACHE_KEY_MAX, empty, or value longer than the configured maximum;
 * FA_DENIED not stored: the ticket is stale or another writer holds the slot.
 */
int	cache_put(struct cache *, enum cache_kind, const void *key, size_t keylen,
	    const void *value, size_t len, uint64_t ttl, uint64_t now,
	    const struct cache_ticket *ticket);
/* Drop key in every process. FA_OK if an entry was dropped, FA_NOTFOUND if none. */
int	cache_del(struct cache *, enum cache_kind, const void *key, size_t keylen);
/* Make every entry of kind stale at once (CACHE_ALL: every kind). */
void	cache_flush(struct cache *, enum cache_kind);
/*
 * Take over slots whose writer died holding them, leaving them empty. Returns
 * how many; for a periodic timer or fastauthctl, puts do it lazily too.
 */
unsigned cache_sweep(struct cache *);
/* Occupancy (scans the table) and the counters. */
void	cache_stats(struct cache *, uint64_t now, struct cache_stats *);

/* --- for shm.c ------------------------------------------------------------ */

/* Slots after rounding entries up to 8 x 2^k (0 if out of range). */
uint64_t cache_region_entries(uint32_t entries);
/* Bytes the region needs (a multiple of 64); 0 if value_max is out of range. */
size_t	cache_region_size(uint32_t entries, uint32_t value_max);
/* Lay out a zero-filled region; called once by the initialising process. */
void	cache_region_init(void *base, uint32_t entries, uint32_t value_max);
/*
 * A process-local view of an initialised region. generation is the segment's
 * generation word (a full flush). Free with cache_view_free.
 */
struct cache *cache_view_new(void *base, unsigned hashalg,
	    const uint8_t *hashkey, _Atomic uint64_t *generation);
void	cache_view_free(struct cache *);

#endif
