/*
 * ratelimit.h -- the host-wide rate limiter in shared memory: GCRA (generic
 * cell rate algorithm) per (policy, key), one 64-bit word per key updated by
 * compare-and-swap. No lock, no system call on the hot path.
 *
 * Times are microseconds of CLOCK_MONOTONIC (shm_now()); the caller reads the
 * clock once per request and passes it in.
 */
#ifndef RATELIMIT_H
#define RATELIMIT_H

#include <stddef.h>
#include <stdint.h>

#define RATELIMIT_POLICIES	16	/* policy ids 0..15 (endpoint classes) */
/* The longest a key's state may run ahead of now: burst x period / rate. */
#define RATELIMIT_HORIZON_MAX	(2ULL * 86400 * 1000000)	/* us: two days */

struct ratelimit;

/*
 * A policy: rate requests per period sustained, burst at once. Fill it with
 * ratelimit_policy_init (it precomputes the GCRA intervals), once per
 * configuration load, not per request.
 */
struct ratelimit_policy {
	uint32_t	id;		/* 0..RATELIMIT_POLICIES-1: stats and key separation */
	uint32_t	burst;		/* requests allowed at once, >= 1 */
	uint64_t	rate;		/* requests ... */
	uint64_t	period;		/* ... per this many us */
	uint64_t	interval;	/* us between requests at the rate: period / rate */
	uint64_t	horizon;	/* us, burst x interval: the most state may run ahead */
	uint64_t	recip;		/* floor((2^64 - 1) / interval): see ratelimit_div */
};

/*
 * x / p->interval, exactly, without a division instruction (a 64-bit div
 * costs as much as the rest of an allowed check's arithmetic): recip lies
 * within 1 below 2^64 / interval, so the high half of x x recip lies within 1
 * below x / interval (x < 2^64): it is the quotient or one less, and one
 * compare of the remainder corrects it.
 */
static inline uint64_t
ratelimit_div(const struct ratelimit_policy *p, uint64_t x)
{
#ifdef __SIZEOF_INT128__
	uint64_t	q = (uint64_t)(((unsigned __int128)x * p->recip) >> 64);

	return x - q * p->interval >= p->interval ? q + 1 : q;
#else
	return x / p->interval;
#endif
}

/* What a decision means for the response headers (429 Retry-After, RateLimit). */
struct ratelimit_result {
	uint64_t	retry_after;	/* us until a request would be allowed; 0 if allowed */
	uint64_t	reset;		/* us until the whole burst is available again */
	uint32_t	remaining;	/* requests still allowed now, after this one */
	uint32_t	limit;		/* the policy's burst (RateLimit-Policy q=) */
};

struct ratelimit_stats {
	uint64_t	entries;	/* slots in the table */
	uint64_t	used;		/* slots whose state has not expired */
	uint64_t	allowed[RATELIMIT_POLICIES];	/* decisions since creation */
	uint64_t	limited[RATELIMIT_POLICIES];
	uint64_t	evicted_live;	/* unexpired states evicted: table too small */
};

/*
 * Check a policy's arguments and precompute it. rate requests per period_us,
 * burst >= 1; the interval period/rate must be >= 1 us and burst x interval
 * <= RATELIMIT_HORIZON_MAX. FA_OK, or FA_ERR and *cause (caller frees).
 */
int	ratelimit_policy_init(struct ratelimit_policy *, unsigned id,
	    uint64_t rate, uint64_t period_us, uint32_t burst, char **cause);
/*
 * Count one request of key under policy at time now. FA_OK if allowed, FA_LIMIT
 * if limited (the state is then left as it was). result may be NULL. Read now
 * just before the call: a now older than another process's latest update of
 * the key is judged stricter by the difference, never laxer.
 */
int	ratelimit_check(struct ratelimit *, const struct ratelimit_policy *,
	    const void *key, size_t keylen, uint64_t now,
	    struct ratelimit_result *);
/* As ratelimit_check, but only tells whether a request would be allowed. */
int	ratelimit_peek(struct ratelimit *, const struct ratelimit_policy *,
	    const void *key, size_t keylen, uint64_t now,
	    struct ratelimit_result *);
/*
 * Give back one request a ratelimit_check of key counted (charge first,
 * refund when the request turned out not to count, e.g. a login that
 * succeeded): concurrent requests can then never overrun the budget.
 */
void	ratelimit_refund(struct ratelimit *, const struct ratelimit_policy *,
	    const void *key, size_t keylen, uint64_t now);
/* Forget key's state under policy (e.g. login failures after a success). */
void	ratelimit_reset(struct ratelimit *, const struct ratelimit_policy *,
	    const void *key, size_t keylen);
/* Occupancy (scans the table) and the decision counters. */
void	ratelimit_stats(struct ratelimit *, uint64_t now, struct ratelimit_stats *);

/* --- for shm.c ------------------------------------------------------------ */

/* Slots after rounding entries up to 8 x 2^k (0 if entries is out of range). */
uint64_t ratelimit_region_entries(uint32_t entries);
/* Bytes the region needs for that many slots (a multiple of 64). */
size_t	ratelimit_region_size(uint32_t entries);
/* Lay out a zero-filled region; called once by the initialising process. */
void	ratelimit_region_init(void *base, uint32_t entries);
/* A process-local view of an initialised region; free with ratelimit_view_free. */
struct ratelimit *ratelimit_view_new(void *base, unsigned hashalg,
	    const uint8_t *hashkey);
void	ratelimit_view_free(struct ratelimit *);

#endif
