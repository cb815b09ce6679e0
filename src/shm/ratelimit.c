/*
 * ratelimit.c -- GCRA rate limiting shared by every process of the host, in
 * the limiter region of the shm segment. It owns that region's layout:
 *
 *	struct ratelimit_region	geometry, last sweep time, counters (shared
 *				stripes and per-CPU blocks, see shm_count)
 *	buckets			nbuckets (a power of two) x 8 slot words; a
 *				bucket is one 64-byte cache line
 *
 * GCRA keeps one number per key, the theoretical arrival time (TAT): a request
 * at now is allowed if max(TAT, now) + interval - now <= burst x interval, and
 * then TAT becomes max(TAT, now) + interval. A TAT in the past means the whole
 * burst is available, exactly as if there were no state: so an expired entry
 * can be dropped or evicted without losing anything.
 *
 * A slot is one 64-bit word: the top 24 bits are a fingerprint of the key
 * (bits of its keyed hash that did not choose the bucket), the low 40 bits
 * the TAT in microseconds modulo 2^40 (12.7 days), read relative to now as a
 * signed 39-bit difference. 0 is an empty slot (a fingerprint is never 0).
 * Identity and state change together in one CAS, so a process killed at any
 * instruction leaves every slot either as it was or fully updated: nothing
 * is ever half-claimed, and there is nothing to recover.
 *
 * Keys are hashed with the segment's keyed hash (shm.h: AES4 or SipHash-1-3)
 * under its random key, so no client can choose keys that share a bucket or
 * a fingerprint. Two distinct keys share a state only if their 64-bit hashes
 * agree on the bucket and the fingerprint: about 8 / 2^24 per new key in a
 * full bucket, and then the costlier of the two states applies to both.
 *
 * When a new key finds its bucket full, it takes the slot whose state ends
 * soonest: an expired one if any (losing nothing), else the one closest to
 * expiry. Under a flood of distinct keys larger than the table, live states
 * are evicted (counted in evicted_live) and an evicted key starts again with
 * its whole burst: the limiter fails open for those keys, never blocks and
 * never fails. Size the table above the number of keys active within a
 * policy's horizon.
 *
 * Two processes inserting the same new key at the same moment into a full
 * bucket may pick different victims; whoever sees two slots for one key
 * merges the later slot's debt into the first, so the key's requests still
 * add up (a process killed in the middle of a merge can lose that one debt).
 *
 * Every hour a check sweeps expired states to empty; after four days without
 * any check, all states are necessarily expired and the sweep empties the
 * table. Both keep every stored TAT within 6.4 days of now, where the 40-bit
 * difference reads correctly (the only gap: the milliseconds of that clear,
 * after four idle days, where a state older than 6.4 days may read as one
 * that is still running -- at worst one spurious limit).
 */
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#if defined(__x86_64__) && defined(__GNUC__)
#include <cpuid.h>
#endif

#include "core/fastauth.h"
#include "core/xmalloc.h"
#include "shm/shm.h"
#include "shm/ratelimit.h"

#define RL_WAYS		8
#define RL_FP_SHIFT	40
#define RL_TAT_MASK	((1ULL << RL_FP_SHIFT) - 1)
#define RL_TAT_SIGN	(1ULL << (RL_FP_SHIFT - 1))
#define RL_SWEEP_EVERY	(3600ULL * 1000000)		/* us */
#define RL_CLEAR_AFTER	(4ULL * 86400 * 1000000)	/* us without a sweep */
#define RL_TRIES	64	/* CAS attempts before giving up on one check */
#define RL_DOMAIN	0x524c000000000000ULL	/* "RL": hash domain | policy id */
#define RL_ENTRIES_MAX	(1U << 26)

_Static_assert(RL_CLEAR_AFTER + RL_SWEEP_EVERY + RATELIMIT_HORIZON_MAX <
    RL_TAT_SIGN, "TAT field too narrow for the sweep intervals");

/* One stripe of counters: a thread increments only its own. */
struct rl_stripe {
	_Atomic uint64_t allowed[RATELIMIT_POLICIES];
	_Atomic uint64_t limited[RATELIMIT_POLICIES];
	_Atomic uint64_t evicted_live;
} __attribute__((aligned(64)));

struct ratelimit_region {
	uint64_t		nbuckets;	/* power of two; fixed at init */
	_Atomic uint64_t	last_sweep;	/* us, shm_now() of the last sweep */
	struct rl_stripe	stripes[SHM_STRIPES];	/* atomic adds */
	struct rl_stripe	cpus[SHM_CPUS];		/* per-CPU adds (shm_count) */
} __attribute__((aligned(64)));

#define RL_SLOTS_OFF	((sizeof(struct ratelimit_region) + 63) & ~(size_t)63)

/* This process's view: the region plus what the hot path needs at hand. */
struct ratelimit {
	struct ratelimit_region	*r;
	_Atomic uint64_t	*slots;		/* nbuckets x RL_WAYS */
	uint64_t		 mask;		/* nbuckets - 1 */
	int			 prefetchw;	/* the CPU has PREFETCHW */
	/* The hash prepared for each policy's domain. */
	struct shm_hashstate	 pre[RATELIMIT_POLICIES];
};

static inline uint64_t
rl_fp(uint64_t h)
{
	uint64_t	fp = h >> RL_FP_SHIFT;

	return fp != 0 ? fp : 1;
}

static inline uint64_t
rl_word(uint64_t fp, uint64_t tat)
{
	return (fp << RL_FP_SHIFT) | (tat & RL_TAT_MASK);
}

/* us from now until the slot's TAT; 0 if it has expired. */
static inline uint64_t
rl_ahead(uint64_t w, uint64_t now)
{
	uint64_t	d = ((w & RL_TAT_MASK) - (now & RL_TAT_MASK)) & RL_TAT_MASK;

	return (d & RL_TAT_SIGN) ? 0 : d;
}

/*
 * The TAT a slot stands for, at least now. More than horizon ahead happens
 * when the policy was made stricter since: the key is then fully limited.
 */
static inline uint64_t
rl_tat(uint64_t w, uint64_t now, uint64_t horizon)
{
	uint64_t	d = rl_ahead(w, now);

	return now + (d > horizon ? horizon : d);
}

/* Count one event: off is the counter's offset in struct rl_stripe. */
static inline void
rl_count(struct ratelimit *rl, size_t off)
{
	shm_count(rl->r->cpus, rl->r->stripes, sizeof(struct rl_stripe), off);
}

#define RL_ALLOWED(id)	(offsetof(struct rl_stripe, allowed) + \
			    (size_t)(id) * sizeof(uint64_t))
#define RL_LIMITED(id)	(offsetof(struct rl_stripe, limited) + \
			    (size_t)(id) * sizeof(uint64_t))
#define RL_EVICTED	offsetof(struct rl_stripe, evicted_live)

uint64_t
ratelimit_region_entries(uint32_t entries)
{
	uint64_t	nb = 1;

	if (entries < RL_WAYS || entries > RL_ENTRIES_MAX)
		return 0;
	while (nb * RL_WAYS < entries)
		nb <<= 1;
	return nb * RL_WAYS;
}

size_t
ratelimit_region_size(uint32_t entries)
{
	return RL_SLOTS_OFF + ratelimit_region_entries(entries) * sizeof(uint64_t);
}

void
ratelimit_region_init(void *base, uint32_t entries)
{
	struct ratelimit_region	*r = base;

	r->nbuckets = ratelimit_region_entries(entries) / RL_WAYS;
	atomic_store(&r->last_sweep, shm_now());
}

/* CPUID.80000001H:ECX.PRFCHW[bit 8]: PREFETCHW is not in baseline x86-64. */
static int
rl_cpu_prefetchw(void)
{
#if defined(__x86_64__) && defined(__GNUC__)
	unsigned	a, b, c, d;

	return __get_cpuid(0x80000001, &a, &b, &c, &d) && (c & (1U << 8)) != 0;
#else
	return 0;
#endif
}

/*
 * Ask for bucket b's line in exclusive state. A check reads the bucket, then
 * writes it by CAS: when another core wrote the line last, the read fetches
 * it shared and the CAS must fetch it again to own it -- two transfers
 * between cores where one will do (distinct keys share a line when they
 * share a bucket: with 2 x 4096 keys in 8192 buckets, two in five of one
 * thread's buckets also hold a key of the other; bench_shm).
 */
static inline void
rl_prefetch_write(const struct ratelimit *rl, const _Atomic uint64_t *b)
{
#if defined(__x86_64__) && defined(__GNUC__)
	if (rl->prefetchw)
		__asm__ volatile("prefetchw %0" : : "m"(*(const char *)b));
#else
	(void)rl;
	(void)b;
#endif
}

struct ratelimit *
ratelimit_view_new(void *base, unsigned hashalg, const uint8_t *hashkey)
{
	struct ratelimit	*rl = xcalloc(1, sizeof *rl);
	unsigned		 id;

	rl->r = base;
	rl->slots = (_Atomic uint64_t *)((uint8_t *)base + RL_SLOTS_OFF);
	rl->mask = rl->r->nbuckets - 1;
	rl->prefetchw = rl_cpu_prefetchw();
	for (id = 0; id < RATELIMIT_POLICIES; id++)
		shm_hash_prepare(&rl->pre[id], hashalg, hashkey,
		    RL_DOMAIN | id);
	return rl;
}

void
ratelimit_view_free(struct ratelimit *rl)
{
	free(rl);
}

int
ratelimit_policy_init(struct ratelimit_policy *p, unsigned id, uint64_t rate,
    uint64_t period_us, uint32_t burst, char **cause)
{
	memset(p, 0, sizeof *p);
	if (id >= RATELIMIT_POLICIES) {
		*cause = xasprintf("rate limit policy id %u out of range (0 to %d)",
		    id, RATELIMIT_POLICIES - 1);
		return FA_ERR;
	}
	if (rate == 0 || period_us == 0 || burst == 0) {
		*cause = xstrdup("rate limit: rate, period and burst must be "
		    "at least 1");
		return FA_ERR;
	}
	if (period_us / rate == 0) {
		*cause = xstrdup("rate limit: more than one request per "
		    "microsecond");
		return FA_ERR;
	}
	if (period_us / rate > RATELIMIT_HORIZON_MAX / burst) {
		*cause = xasprintf("rate limit: burst x period / rate is over "
		    "%llu seconds", RATELIMIT_HORIZON_MAX / 1000000);
		return FA_ERR;
	}
	p->id = id;
	p->burst = burst;
	p->rate = rate;
	p->period = period_us;
	p->interval = period_us / rate;
	p->horizon = (uint64_t)burst * p->interval;
	p->recip = UINT64_MAX / p->interval;
	return FA_OK;
}

/* The slot to give a new key: an empty one, else the one expiring first. */
static int
rl_victim(const uint64_t *w, uint64_t now)
{
	uint64_t	best = UINT64_MAX, ahead;
	int		i, v = 0;

	for (i = 0; i < RL_WAYS; i++) {
		if (w[i] == 0)
			return i;
		if ((ahead = rl_ahead(w[i], now)) < best) {
			best = ahead;
			v = i;
		}
	}
	return v;
}

/*
 * Add debt us to key fp's state in bucket b (its first slot, or a new one),
 * at most up to horizon ahead of now.
 */
static void
rl_add_debt(struct ratelimit *rl, _Atomic uint64_t *b, uint64_t fp,
    uint64_t debt, uint64_t now, uint64_t horizon)
{
	uint64_t	w[RL_WAYS], old, tat;
	int		i, tries, slot;

	for (tries = 0; debt != 0 && tries < RL_TRIES; tries++) {
		slot = -1;
		for (i = 0; i < RL_WAYS; i++) {
			w[i] = atomic_load_explicit(&b[i], memory_order_relaxed);
			if (slot < 0 && (w[i] >> RL_FP_SHIFT) == fp)
				slot = i;
		}
		if (slot < 0) {
			slot = rl_victim(w, now);
			tat = now;
		} else
			tat = rl_tat(w[slot], now, horizon);
		old = w[slot];
		tat += debt;
		if (tat > now + horizon)
			tat = now + horizon;
		if (atomic_compare_exchange_strong_explicit(&b[slot], &old,
		    rl_word(fp, tat), memory_order_relaxed,
		    memory_order_relaxed)) {
			if ((old >> RL_FP_SHIFT) != fp && rl_ahead(old, now) != 0)
				rl_count(rl, RL_EVICTED);
			return;
		}
	}
}

/*
 * Key fp holds more than one slot of b (two processes inserted it at once):
 * empty every slot after the first, moving its debt to the first.
 */
static void
rl_merge(struct ratelimit *rl, _Atomic uint64_t *b, uint64_t fp, uint64_t now,
    uint64_t horizon)
{
	uint64_t	w;
	int		i, first, extra, tries;

	for (tries = 0; tries < RL_TRIES; tries++) {
		first = extra = -1;
		for (i = 0; i < RL_WAYS && extra < 0; i++) {
			w = atomic_load_explicit(&b[i], memory_order_relaxed);
			if ((w >> RL_FP_SHIFT) != fp)
				continue;
			if (first < 0)
				first = i;
			else
				extra = i;
		}
		if (extra < 0)
			return;
		w = atomic_load_explicit(&b[extra], memory_order_relaxed);
		if ((w >> RL_FP_SHIFT) != fp ||
		    !atomic_compare_exchange_strong_explicit(&b[extra], &w, 0,
		    memory_order_relaxed, memory_order_relaxed))
			continue;
		rl_add_debt(rl, b, fp, rl_tat(w, now, horizon) - now, now,
		    horizon);
	}
}

/*
 * Once an hour, one caller empties expired slots; after RL_CLEAR_AFTER without
 * a sweep every state has expired, and it empties them all. A CAS against the
 * value read never erases a state written meanwhile.
 */
static void __attribute__((noinline, cold))
rl_sweep_run(struct ratelimit *rl, uint64_t last, uint64_t now)
{
	uint64_t	w, i, n;
	int		all;

	if (!atomic_compare_exchange_strong(&rl->r->last_sweep, &last, now))
		return;
	all = now - last >= RL_CLEAR_AFTER;
	n = (rl->mask + 1) * RL_WAYS;
	for (i = 0; i < n; i++) {
		w = atomic_load_explicit(&rl->slots[i], memory_order_relaxed);
		if (w != 0 && (all || rl_ahead(w, now) == 0))
			atomic_compare_exchange_strong_explicit(&rl->slots[i],
			    &w, 0, memory_order_relaxed, memory_order_relaxed);
	}
}

/* Every check asks whether the hour is up: one load of a line nobody writes. */
static inline void
rl_sweep(struct ratelimit *rl, uint64_t now)
{
	uint64_t	last = atomic_load_explicit(&rl->r->last_sweep,
			    memory_order_relaxed);

	if (__builtin_expect((int64_t)(now - last) >= (int64_t)RL_SWEEP_EVERY,
	    0))
		rl_sweep_run(rl, last, now);
}

/*
 * Load bucket b into w and return which of its slots hold fingerprint fp, as
 * a bit mask (bit i: slot i): one compare per slot and no branch.
 */
static inline unsigned
rl_scan(_Atomic uint64_t *b, uint64_t fp, uint64_t *w)
{
	unsigned	m = 0;
	int		i;

#pragma GCC unroll 8
	for (i = 0; i < RL_WAYS; i++) {
		w[i] = atomic_load_explicit(&b[i], memory_order_relaxed);
		m |= (unsigned)((w[i] >> RL_FP_SHIFT) == fp) << i;
	}
	return m;
}

/*
 * Which slots of bucket b seem to hold fingerprint fp: bit 2i + 1 for slot i
 * (so the slot is ctz / 2, and m & (m - 1) says "more than one"). With SSE2,
 * the bucket's line is read by four 16-byte loads and the fingerprints, the
 * top 24 bits of each word's high half, compared four halves at a time: a
 * quarter of the instructions of the scalar scan, which was a third of an
 * allowed check. Those loads are not atomic per word in the C sense (on x86
 * an aligned 8-byte half is read whole), and nothing relies on them: the
 * result is a hint, every decision re-reads its slot atomically and checks
 * the fingerprint again before its CAS.
 */
static inline unsigned
rl_match(_Atomic uint64_t *b, uint64_t fp)
{
#if defined(__SSE2__)
	const __m128i	 hi = _mm_set_epi32(-256, 0, -256, 0);
	const __m128i	 want = _mm_set_epi32((int)(uint32_t)(fp << 8), 0,
			    (int)(uint32_t)(fp << 8), 0);
	const __m128i	*v = (const __m128i *)(const void *)b;
	unsigned	 m = 0;
	int		 k;

#pragma GCC unroll 4
	for (k = 0; k < RL_WAYS / 2; k++)
		m |= (unsigned)_mm_movemask_ps(_mm_castsi128_ps(_mm_cmpeq_epi32(
		    _mm_and_si128(_mm_load_si128(v + k), hi), want))) << (4 * k);
	return m & 0xaaaaU;
#else
	uint64_t	w[RL_WAYS];
	unsigned	m = rl_scan(b, fp, w), r = 0;
	int		i;

	for (i = 0; i < RL_WAYS; i++)
		r |= ((m >> i) & 1U) << (2 * i + 1);
	return r;
#endif
}

/*
 * The decision behind ratelimit_check (consume 1) and ratelimit_peek (0);
 * inlined into each, so that consume is a constant there.
 */
static inline __attribute__((always_inline)) int
rl_decide(struct ratelimit *rl, const struct ratelimit_policy *p,
    const void *key, size_t keylen, uint64_t now, int consume,
    struct ratelimit_result *res)
{
	uint64_t	 h, fp, w[RL_WAYS], cur = 0, old, tat, ntat;
	_Atomic uint64_t *b;
	unsigned	 m;
	int		 i, first, tries;

	rl_sweep(rl, now);
	h = shm_hash_prepared(&rl->pre[p->id], key, keylen);
	fp = rl_fp(h);
	b = rl->slots + (h & rl->mask) * RL_WAYS;
	if (consume)
		rl_prefetch_write(rl, b);

	for (tries = 0; tries < RL_TRIES; tries++) {
		m = rl_match(b, fp);
		if (__builtin_expect((m & (m - 1)) != 0, 0)) {
			/* More than one slot: two inserts raced. */
			rl_merge(rl, b, fp, now, p->horizon);
			continue;
		}
		if (__builtin_expect(m != 0, 1)) {
			first = (int)(__builtin_ctz(m) >> 1);
			cur = atomic_load_explicit(&b[first],
			    memory_order_relaxed);
			if ((cur >> RL_FP_SHIFT) != fp)
				continue;	/* changed since: look again */
			tat = rl_tat(cur, now, p->horizon);
		} else {
			/* A new key: the words themselves, for the victim. */
			if (rl_scan(b, fp, w) != 0)
				continue;
			first = -1;
			tat = now;
		}
		ntat = tat + p->interval;

		if (ntat - now > p->horizon) {
			if (consume)
				rl_count(rl, RL_LIMITED(p->id));
			if (res != NULL) {
				res->retry_after = ntat - p->horizon - now;
				res->reset = tat - now;
				res->remaining = 0;
				res->limit = p->burst;
			}
			return FA_LIMIT;
		}
		if (!consume) {
			if (res != NULL) {
				res->retry_after = 0;
				res->reset = tat - now;
				res->remaining = (uint32_t)ratelimit_div(p,
				    p->horizon - (tat - now));
				res->limit = p->burst;
			}
			return FA_OK;
		}

		if (__builtin_expect(first >= 0, 1)) {
			old = cur;
			if (!atomic_compare_exchange_weak_explicit(&b[first],
			    &old, rl_word(fp, ntat), memory_order_relaxed,
			    memory_order_relaxed))
				continue;
		} else {
			i = rl_victim(w, now);
			old = w[i];
			if (shm_test_hook != NULL)
				shm_test_hook(SHM_TEST_RATELIMIT_INSERT);
			if (!atomic_compare_exchange_strong_explicit(&b[i],
			    &old, rl_word(fp, ntat), memory_order_relaxed,
			    memory_order_relaxed))
				continue;
			if (old != 0 && rl_ahead(old, now) != 0)
				rl_count(rl, RL_EVICTED);
			/* Did another process insert it elsewhere meanwhile? */
			m = rl_scan(b, fp, w);
			if ((m & (m - 1)) != 0)
				rl_merge(rl, b, fp, now, p->horizon);
		}
		rl_count(rl, RL_ALLOWED(p->id));
		if (res != NULL) {
			res->retry_after = 0;
			res->reset = ntat - now;
			res->remaining = (uint32_t)ratelimit_div(p,
			    p->horizon - (ntat - now));
			res->limit = p->burst;
		}
		return FA_OK;
	}

	/* Lost RL_TRIES races in a row on this key: it is being hammered. */
	if (consume)
		rl_count(rl, RL_LIMITED(p->id));
	if (res != NULL) {
		res->retry_after = p->interval;
		res->reset = p->horizon;
		res->remaining = 0;
		res->limit = p->burst;
	}
	return FA_LIMIT;
}

int
ratelimit_check(struct ratelimit *rl, const struct ratelimit_policy *p,
    const void *key, size_t keylen, uint64_t now, struct ratelimit_result *res)
{
	return rl_decide(rl, p, key, keylen, now, 1, res);
}

int
ratelimit_peek(struct ratelimit *rl, const struct ratelimit_policy *p,
    const void *key, size_t keylen, uint64_t now, struct ratelimit_result *res)
{
	return rl_decide(rl, p, key, keylen, now, 0, res);
}

void
ratelimit_refund(struct ratelimit *rl, const struct ratelimit_policy *p,
    const void *key, size_t keylen, uint64_t now)
{
	uint64_t	 h = shm_hash_prepared(&rl->pre[p->id], key, keylen);
	uint64_t	 fp = rl_fp(h), w, tat;
	_Atomic uint64_t *b = rl->slots + (h & rl->mask) * RL_WAYS;
	int		 i, tries;

	for (i = 0; i < RL_WAYS; i++) {
		w = atomic_load_explicit(&b[i], memory_order_relaxed);
		for (tries = 0; tries < RL_TRIES && (w >> RL_FP_SHIFT) == fp;
		    tries++) {
			/* An expired state has nothing left to give back. */
			tat = rl_tat(w, now, p->horizon);
			if (tat <= now)
				return;
			tat = tat - now > p->interval ? tat - p->interval : now;
			if (atomic_compare_exchange_weak_explicit(&b[i], &w,
			    rl_word(fp, tat), memory_order_relaxed,
			    memory_order_relaxed))
				return;
		}
	}
}

void
ratelimit_reset(struct ratelimit *rl, const struct ratelimit_policy *p,
    const void *key, size_t keylen)
{
	uint64_t	 h = shm_hash_prepared(&rl->pre[p->id], key, keylen);
	uint64_t	 fp = rl_fp(h), w;
	_Atomic uint64_t *b = rl->slots + (h & rl->mask) * RL_WAYS;
	int		 i;

	for (i = 0; i < RL_WAYS; i++) {
		w = atomic_load_explicit(&b[i], memory_order_relaxed);
		while ((w >> RL_FP_SHIFT) == fp &&
		    !atomic_compare_exchange_weak_explicit(&b[i], &w, 0,
		    memory_order_relaxed, memory_order_relaxed))
			;
	}
}

void
ratelimit_stats(struct ratelimit *rl, uint64_t now, struct ratelimit_stats *st)
{
	uint64_t	i, n = (rl->mask + 1) * RL_WAYS, w;
	unsigned	s, id;

	memset(st, 0, sizeof *st);
	st->entries = n;
	for (i = 0; i < n; i++) {
		w = atomic_load_explicit(&rl->slots[i], memory_order_relaxed);
		if (w != 0 && rl_ahead(w, now) != 0)
			st->used++;
	}
	for (s = 0; s < SHM_STRIPES + SHM_CPUS; s++) {
		struct rl_stripe	*sp = s < SHM_STRIPES ? &rl->r->stripes[s] :
					    &rl->r->cpus[s - SHM_STRIPES];

		for (id = 0; id < RATELIMIT_POLICIES; id++) {
			st->allowed[id] += atomic_load_explicit(&sp->allowed[id],
			    memory_order_relaxed);
			st->limited[id] += atomic_load_explicit(&sp->limited[id],
			    memory_order_relaxed);
		}
		st->evicted_live += atomic_load_explicit(&sp->evicted_live,
		    memory_order_relaxed);
	}
}
