/*
 * breaker.c -- the Redis pool's circuit breaker (state machine in breaker.h).
 *
 * "failures within the window" is exact, not a fixed bucket: the ring holds
 * the times of the last `failures` failures, and the breaker opens when the
 * oldest of them is at most window_ms old. Concurrent reporters may overwrite
 * each other's ring entry; that only delays opening by one failure, which is
 * harmless, and it keeps every path free of locks.
 *
 * Transitions are compare-and-swap on `state`, so exactly one thread wins
 * each of them: one opener counts the open, one caller becomes the probe.
 */
#include <stdint.h>
#include <stdlib.h>

#include "core/xmalloc.h"
#include "store/breaker.h"

#define BREAKER_NONE	INT64_MIN	/* an empty ring entry */

void
breaker_init(struct breaker *b, const struct breaker_params *p)
{
	int i;

	b->p = *p;
	if (b->p.failures < 0)
		b->p.failures = 0;
	if (b->p.failures > BREAKER_FAILURES_MAX)
		b->p.failures = BREAKER_FAILURES_MAX;
	if (b->p.window_ms < 1)
		b->p.window_ms = 1;
	if (b->p.cooldown_ms < 1)
		b->p.cooldown_ms = 1;
	if (b->p.probe_lease_ms < 1)
		b->p.probe_lease_ms = 1;
	atomic_init(&b->state, BREAKER_CLOSED);
	atomic_init(&b->until_ms, 0);
	atomic_init(&b->head, 0);
	atomic_init(&b->opens, 0);
	atomic_init(&b->short_circuits, 0);
	atomic_init(&b->failures, 0);
	atomic_init(&b->probes, 0);
	b->ring = NULL;
	if (b->p.failures > 0) {
		b->ring = xcalloc((size_t)b->p.failures, sizeof *b->ring);
		for (i = 0; i < b->p.failures; i++)
			atomic_init(&b->ring[i], BREAKER_NONE);
	}
}

void
breaker_free(struct breaker *b)
{
	if (b == NULL)
		return;
	free((void *)b->ring);
	b->ring = NULL;
}

/* Forget the failures seen so far: a closed breaker starts counting afresh. */
static void
breaker_forget(struct breaker *b)
{
	int i;

	for (i = 0; i < b->p.failures; i++)
		atomic_store(&b->ring[i], BREAKER_NONE);
}

/*
 * from -> open, if we win the swap. The cool-down end is stored first, so a
 * reader that sees "open" never pairs it with an old, past time.
 */
static void
breaker_open(struct breaker *b, int from, int64_t now)
{
	int expect = from;

	atomic_store(&b->until_ms, now + b->p.cooldown_ms);
	if (atomic_compare_exchange_strong(&b->state, &expect, BREAKER_OPEN))
		atomic_fetch_add(&b->opens, 1);
}

enum breaker_verdict
breaker_allow(struct breaker *b, int64_t now)
{
	int64_t until;

	if (b->p.failures == 0 || atomic_load(&b->state) == BREAKER_CLOSED)
		return BREAKER_PASS;
	/*
	 * Cool-down over (open) or the probe's lease run out (half-open): the
	 * one thread that moves until_ms on becomes the probe.
	 */
	until = atomic_load(&b->until_ms);
	if (now >= until && atomic_compare_exchange_strong(&b->until_ms, &until,
	    now + b->p.probe_lease_ms)) {
		atomic_store(&b->state, BREAKER_HALF_OPEN);
		atomic_fetch_add(&b->probes, 1);
		return BREAKER_PROBE;
	}
	atomic_fetch_add(&b->short_circuits, 1);
	return BREAKER_REJECT;
}

void
breaker_success(struct breaker *b, int probe)
{
	int expect = BREAKER_HALF_OPEN;

	if (!probe || b->p.failures == 0)
		return;
	breaker_forget(b);
	atomic_compare_exchange_strong(&b->state, &expect, BREAKER_CLOSED);
}

void
breaker_failure(struct breaker *b, int64_t now, int probe)
{
	uint64_t i;
	int64_t oldest;
	int n = b->p.failures;

	atomic_fetch_add(&b->failures, 1);
	if (n == 0)
		return;
	if (probe) {
		breaker_open(b, BREAKER_HALF_OPEN, now);
		return;
	}
	if (atomic_load(&b->state) != BREAKER_CLOSED)
		return;		/* a call from before it opened: already counted as open */
	i = atomic_fetch_add(&b->head, 1);
	atomic_store(&b->ring[i % (uint64_t)n], now);
	/* The entry after ours is the oldest of the last n. */
	oldest = atomic_load(&b->ring[(i + 1) % (uint64_t)n]);
	if (oldest != BREAKER_NONE && now - oldest <= b->p.window_ms)
		breaker_open(b, BREAKER_CLOSED, now);
}

void
breaker_stats(struct breaker *b, int64_t now, struct breaker_stats *st)
{
	int64_t until;

	st->state = (enum breaker_state)atomic_load(&b->state);
	st->opens = atomic_load(&b->opens);
	st->short_circuits = atomic_load(&b->short_circuits);
	st->failures = atomic_load(&b->failures);
	st->probes = atomic_load(&b->probes);
	st->retry_after_ms = 0;
	if (st->state == BREAKER_OPEN) {
		until = atomic_load(&b->until_ms);
		st->retry_after_ms = until > now ? (long)(until - now) : 0;
	}
}

const char *
breaker_state_name(enum breaker_state s)
{
	switch (s) {
	case BREAKER_CLOSED:	return "closed";
	case BREAKER_OPEN:	return "open";
	case BREAKER_HALF_OPEN:	return "half-open";
	}
	return "unknown";
}
