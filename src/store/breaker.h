/*
 * breaker.h -- a circuit breaker for one process's Redis pool.
 *
 * closed: every call goes through; failures (I/O errors, timeouts, refused
 *   connections -- never a Redis error reply) are remembered with their time.
 *   When `failures` of them fall within `window_ms` it opens.
 * open: every call is refused at once (the pool answers FA_UNAVAIL without
 *   touching the network) until `cooldown_ms` have passed since it opened.
 * half-open: the first call after the cool-down is the probe; every other
 *   call is still refused. The probe's success closes the breaker, its
 *   failure opens it for another cool-down. A probe that never reports (its
 *   thread stuck) is replaced after `probe_lease_ms`.
 *
 * The state is shared by every thread of the process and kept in atomics: no
 * lock is taken on any path. Times are CLOCK_MONOTONIC milliseconds passed in
 * by the caller (so that tests can drive the clock).
 */
#ifndef BREAKER_H
#define BREAKER_H

#include <stdatomic.h>
#include <stdint.h>

enum breaker_state {
	BREAKER_CLOSED = 0,
	BREAKER_OPEN = 1,
	BREAKER_HALF_OPEN = 2,
};

/* What breaker_allow decided for one call. */
enum breaker_verdict {
	BREAKER_PASS,		/* closed: go ahead */
	BREAKER_PROBE,		/* go ahead as the half-open probe; report the outcome */
	BREAKER_REJECT,		/* fail at once */
};

#define BREAKER_FAILURES_MAX	1000	/* ring size bound (config range) */

struct breaker_params {
	int	failures;	/* failures within window_ms that open it; 0 = never opens */
	long	window_ms;
	long	cooldown_ms;	/* open -> half-open */
	long	probe_lease_ms;	/* a silent probe is replaced after this */
};

/* Counters since breaker_init; monotonic, read without a lock. */
struct breaker_stats {
	enum breaker_state state;
	uint64_t	opens;		/* closed/half-open -> open transitions */
	uint64_t	short_circuits;	/* calls refused while open or half-open */
	uint64_t	failures;	/* failures reported (all states) */
	uint64_t	probes;		/* probes granted */
	long		retry_after_ms;	/* open: cool-down left (>= 0); else 0 */
};

struct breaker {
	struct breaker_params	 p;
	_Atomic int		 state;		/* enum breaker_state */
	_Atomic int64_t		 until_ms;	/* open: cool-down end; half-open: probe lease end */
	_Atomic uint64_t	 head;		/* next ring index (mod p.failures) */
	_Atomic int64_t		*ring;		/* p.failures failure times, INT64_MIN = none */
	_Atomic uint64_t	 opens;
	_Atomic uint64_t	 short_circuits;
	_Atomic uint64_t	 failures;
	_Atomic uint64_t	 probes;
};

/* Set up b (failures clamped to [0, BREAKER_FAILURES_MAX]); free with breaker_free. */
void	breaker_init(struct breaker *, const struct breaker_params *);
void	breaker_free(struct breaker *);
/* May a call go out at now? A REJECT is counted as a short circuit. */
enum breaker_verdict breaker_allow(struct breaker *, int64_t now_ms);
/* The call that was allowed got an answer (probe: it was the probe). */
void	breaker_success(struct breaker *, int probe);
/* The call that was allowed failed at now (I/O error, timeout, refused). */
void	breaker_failure(struct breaker *, int64_t now_ms, int probe);
/* The state and counters at now. */
void	breaker_stats(struct breaker *, int64_t now_ms, struct breaker_stats *);
/* "closed", "open", "half-open". */
const char *breaker_state_name(enum breaker_state);

#endif
