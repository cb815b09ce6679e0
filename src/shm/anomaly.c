/*
 * anomaly.c -- attack detection state shared by every process of the host,
 * in the anomaly region of the shm segment. It owns that region's layout:
 *
 *	struct anomaly_region	geometry, alarm totals, latency state per endpoint
 *	entries			nbuckets (a power of two) x 4 entries of 64 bytes
 *
 * An entry counts one address's events of each kind in the current fixed
 * window and keeps the previous window's counts; the sliding-window estimate
 * is cur + prev x (the part of the previous window still inside the sliding
 * one), as nginx and Cloudflare approximate sliding windows. The window
 * number in the entry moves by CAS, and whoever moves it shifts the counts:
 * an event counted at the very instant of a shift may be lost, which a
 * detector can afford. Nothing is ever half-claimed in a way that blocks
 * anyone: a process killed anywhere leaves at worst one stale count.
 *
 * Latency: one process per period (anomaly_latency_due, by CAS on the last
 * evaluation time) compares each endpoint's recent p95 with its baseline.
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "core/fastauth.h"
#include "core/xmalloc.h"
#include "shm/anomaly.h"
#include "shm/shm.h"

#define AN_WAYS		4
#define AN_DOMAIN	0x414e000000000000ULL	/* "AN" */
#define AN_ENTRIES_MIN	16
#define AN_ENTRIES_MAX	(1U << 20)
#define AN_LAT_BUCKETS	16

struct an_entry {
	_Atomic uint64_t key;		/* keyed hash of the address | 1; 0 = empty */
	_Atomic uint64_t win;		/* window number cur[] counts */
	_Atomic uint32_t cur[ANOMALY_KINDS];
	_Atomic uint32_t prev[ANOMALY_KINDS];	/* the window before win */
	_Atomic uint32_t raised[ANOMALY_KINDS];	/* (window number + 1) of the last alarm, low 32 bits */
	_Atomic uint64_t flagged;	/* shm_now() of the last alarm, us; 0 = never */
} __attribute__((aligned(64)));

struct an_latency {
	_Atomic uint64_t prev[AN_LAT_BUCKETS];	/* counts at the last evaluation */
	_Atomic uint64_t baseline_us;
	_Atomic uint64_t recent_us;
	_Atomic uint32_t anomalous;
};

struct anomaly_region {
	uint64_t	 nbuckets;	/* power of two; fixed at init */
	_Atomic uint64_t raised[ANOMALY_KINDS];
	_Atomic uint64_t last_eval;	/* shm_now() of the last latency evaluation */
	struct an_latency lat[ANOMALY_ENDPOINTS];
} __attribute__((aligned(64)));

#define AN_SLOTS_OFF	((sizeof(struct anomaly_region) + 63) & ~(size_t)63)

struct anomaly {
	struct anomaly_region	*r;
	struct an_entry		*e;
	uint64_t		 mask;
	struct shm_hashstate	 hash;
};

uint64_t
anomaly_region_entries(uint32_t entries)
{
	uint64_t nb = 1;

	if (entries < AN_ENTRIES_MIN || entries > AN_ENTRIES_MAX)
		return 0;
	while (nb * AN_WAYS < entries)
		nb <<= 1;
	return nb * AN_WAYS;
}

size_t
anomaly_region_size(uint32_t entries)
{
	uint64_t n = anomaly_region_entries(entries);

	return n == 0 ? 0 : AN_SLOTS_OFF + n * sizeof(struct an_entry);
}

void
anomaly_region_init(void *base, uint32_t entries)
{
	struct anomaly_region *r = base;

	r->nbuckets = anomaly_region_entries(entries) / AN_WAYS;
}

struct anomaly *
anomaly_view_new(void *base, unsigned hashalg, const uint8_t *hashkey)
{
	struct anomaly *a = xcalloc(1, sizeof *a);

	a->r = base;
	a->e = (struct an_entry *)((uint8_t *)base + AN_SLOTS_OFF);
	a->mask = a->r->nbuckets - 1;
	shm_hash_prepare(&a->hash, hashalg, hashkey, AN_DOMAIN);
	return a;
}

void
anomaly_view_free(struct anomaly *a)
{
	free(a);
}

static uint64_t
an_hash(struct anomaly *a, const char *addr)
{
	return shm_hash_prepared(&a->hash, addr, strlen(addr)) | 1;
}

/* The entry of h, or NULL; with create, claim one (empty, or the stalest). */
static struct an_entry *
an_find(struct anomaly *a, uint64_t h, uint64_t w, int create)
{
	struct an_entry *b = &a->e[((h >> 32) & a->mask) * AN_WAYS], *victim = NULL;
	uint64_t cur, oldest = UINT64_MAX, ew;
	int i, k;

	for (i = 0; i < AN_WAYS; i++)
		if (atomic_load_explicit(&b[i].key, memory_order_acquire) == h)
			return &b[i];
	if (!create)
		return NULL;
	for (i = 0; i < AN_WAYS; i++) {
		cur = atomic_load(&b[i].key);
		ew = atomic_load(&b[i].win);
		if (cur == 0) {
			victim = &b[i];
			break;
		}
		if (ew < oldest) {
			oldest = ew;
			victim = &b[i];
		}
	}
	cur = atomic_load(&victim->key);
	if (!atomic_compare_exchange_strong(&victim->key, &cur, h))
		return atomic_load(&victim->key) == h ? victim : NULL;
	/* Ours now; a concurrent writer of the old key may add a stray count. */
	atomic_store(&victim->win, w);
	for (k = 0; k < ANOMALY_KINDS; k++) {
		atomic_store(&victim->cur[k], 0);
		atomic_store(&victim->prev[k], 0);
		atomic_store(&victim->raised[k], 0);
	}
	atomic_store(&victim->flagged, 0);
	return victim;
}

/* Bring the entry's window up to w, shifting its counts. */
static void
an_rotate(struct an_entry *e, uint64_t w)
{
	uint64_t ew = atomic_load(&e->win);
	uint32_t c;
	int k;

	if (ew >= w || !atomic_compare_exchange_strong(&e->win, &ew, w))
		return;
	for (k = 0; k < ANOMALY_KINDS; k++) {
		c = atomic_exchange(&e->cur[k], 0);
		atomic_store(&e->prev[k], ew + 1 == w ? c : 0);
	}
}

int
anomaly_note(struct anomaly *a, const struct anomaly_params *p,
    enum anomaly_kind kind, const char *addr, uint64_t now)
{
	struct an_entry *e;
	uint64_t h, w, est, into;
	uint32_t r, mark, count;

	if (a == NULL || (unsigned)kind >= ANOMALY_KINDS || addr == NULL ||
	    p->window_us == 0 || p->threshold[kind] == 0)
		return 0;
	h = an_hash(a, addr);
	w = now / p->window_us;
	if ((e = an_find(a, h, w, 1)) == NULL)
		return 0;
	an_rotate(e, w);
	count = atomic_fetch_add_explicit(&e->cur[kind], 1, memory_order_relaxed) + 1;
	/* The previous window's share still inside the sliding window. */
	into = now % p->window_us;
	est = count + (uint64_t)atomic_load_explicit(&e->prev[kind],
	    memory_order_relaxed) * (p->window_us - into) / p->window_us;
	if (est < p->threshold[kind])
		return 0;
	mark = (uint32_t)(w + 1);
	r = atomic_load(&e->raised[kind]);
	if (r == mark || !atomic_compare_exchange_strong(&e->raised[kind], &r, mark))
		return 0;
	atomic_store(&e->flagged, now != 0 ? now : 1);
	atomic_fetch_add(&a->r->raised[kind], 1);
	return 1;
}

int
anomaly_suspect(struct anomaly *a, const struct anomaly_params *p, const char *addr,
    uint64_t now)
{
	struct an_entry *e;
	uint64_t f;

	if (a == NULL || addr == NULL)
		return 0;
	if ((e = an_find(a, an_hash(a, addr), 0, 0)) == NULL)
		return 0;
	f = atomic_load_explicit(&e->flagged, memory_order_relaxed);
	return f != 0 && now >= f && now - f < p->suspect_us;
}

void
anomaly_stats(struct anomaly *a, const struct anomaly_params *p, uint64_t now,
    struct anomaly_stats *st)
{
	uint64_t n = (a->mask + 1) * AN_WAYS, i, w, ew;
	uint32_t r;
	int k;

	memset(st, 0, sizeof *st);
	st->entries = n;
	w = p->window_us != 0 ? now / p->window_us : 0;
	for (i = 0; i < n; i++) {
		struct an_entry *e = &a->e[i];

		if (atomic_load_explicit(&e->key, memory_order_relaxed) == 0)
			continue;
		ew = atomic_load_explicit(&e->win, memory_order_relaxed);
		if (ew + 1 >= w)
			st->tracked++;
		for (k = 0; k < ANOMALY_KINDS; k++) {
			r = atomic_load_explicit(&e->raised[k], memory_order_relaxed);
			/* Raised in this window or the one before. */
			if (r != 0 && (r == (uint32_t)(w + 1) || r == (uint32_t)w))
				st->suspected[k]++;
		}
	}
	for (k = 0; k < ANOMALY_KINDS; k++)
		st->raised[k] = atomic_load(&a->r->raised[k]);
}

/* --- latency ------------------------------------------------------------ */

int
anomaly_latency_due(struct anomaly *a, uint64_t now, uint64_t period_us)
{
	uint64_t last = atomic_load(&a->r->last_eval);

	if (last != 0 && now - last < period_us)
		return 0;
	return atomic_compare_exchange_strong(&a->r->last_eval, &last, now);
}

int
anomaly_latency_feed(struct anomaly *a, unsigned ep, const uint64_t *counts,
    const uint64_t *bounds_us, unsigned nb, uint64_t min_count, double factor,
    uint64_t floor_us, uint64_t *p95_us)
{
	struct an_latency *l;
	uint64_t delta[AN_LAT_BUCKETS], total = 0, run = 0, p95 = 0, base, prev;
	unsigned i;
	int anomalous, was;

	*p95_us = 0;
	if (ep >= ANOMALY_ENDPOINTS || nb == 0 || nb > AN_LAT_BUCKETS)
		return 0;
	l = &a->r->lat[ep];
	for (i = 0; i < nb; i++) {
		prev = atomic_load(&l->prev[i]);
		delta[i] = counts[i] >= prev ? counts[i] - prev : 0;
		total += delta[i];
	}
	/* Too few requests: let the window grow until there are enough. */
	if (total == 0 || total < min_count)
		return 0;
	for (i = 0; i < nb; i++)
		atomic_store(&l->prev[i], counts[i]);
	for (i = 0; i < nb; i++) {
		run += delta[i];
		if (run * 100 >= total * 95) {
			/* The +Inf bucket reads as twice the last bound. */
			p95 = i < nb - 1 ? bounds_us[i] : 2 * bounds_us[nb - 2];
			break;
		}
	}
	*p95_us = p95;
	atomic_store(&l->recent_us, p95);
	base = atomic_load(&l->baseline_us);
	if (base == 0) {
		atomic_store(&l->baseline_us, p95);
		return 0;
	}
	anomalous = factor > 0 && (double)p95 > factor * (double)base && p95 > floor_us;
	was = (int)atomic_exchange(&l->anomalous, (uint32_t)anomalous);
	/* An attack must not become the baseline it is measured against. */
	if (!anomalous)
		atomic_store(&l->baseline_us, (base * 4 + p95) / 5);
	return anomalous && !was;
}

void
anomaly_latency_get(struct anomaly *a, unsigned ep, struct anomaly_latency *out)
{
	memset(out, 0, sizeof *out);
	if (ep >= ANOMALY_ENDPOINTS)
		return;
	out->baseline_us = atomic_load(&a->r->lat[ep].baseline_us);
	out->recent_us = atomic_load(&a->r->lat[ep].recent_us);
	out->anomalous = (int)atomic_load(&a->r->lat[ep].anomalous);
}
