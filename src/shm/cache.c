/*
 * cache.c -- the L1 cache shared by every process of the host, in the cache
 * region of the shm segment. It owns that region's layout:
 *
 *	struct cache_region	geometry, generations and deletion counts per
 *				kind, counters (shared stripes and per-CPU
 *				blocks, see shm_count)
 *	hands			one CLOCK hand (a byte) per bucket
 *	tags			nbuckets x 8 keyed hashes, one 64-byte line per
 *				bucket: a lookup reads one line, then one entry
 *	claims			nbuckets x 8 writer claims, one line per bucket,
 *				apart so that claiming never dirties what
 *				readers read
 *	entries			nbuckets x 8 entries of stride bytes: a 40-byte
 *				header, then key and value back to back, so a
 *				short key and its value share the header's lines
 *
 * Readers never block: an entry is read under its sequence counter (odd while
 * a writer is inside), and a reader that finds it odd, or changed by the end
 * of its copy, tries again a bounded number of times and then reports a miss
 * -- so a writer killed in the middle costs a miss, never a hang. Hits set the
 * entry's reference bit (only if clear, to keep hot lines shared).
 *
 * Writers take an entry by CAS on its claim word (an owner word: pid and
 * time). A claim is taken over only when its holder is certainly dead
 * (shm_owner_dead: gone, a zombie, or the pid reused since): a writer that is
 * merely slow keeps its claim, because a stalled writer resuming into an
 * entry someone else took over would corrupt it behind a valid sequence. The
 * recovering writer wipes the key hash before ending the sequence, so a
 * half-written value is never read as valid.
 *
 * Keys are (kind, bytes up to 64), hashed with the segment's keyed hash
 * (shm.h) under its random key and compared in full under the sequence: no
 * false hits, and no client can aim keys at one bucket. A put goes to the
 * key's own slot, else an empty or invalid one, else the first entry the
 * CLOCK hand finds without its reference bit (new entries start without it,
 * so a flood of one-time keys evicts itself first).
 *
 * An entry is valid while now < expires and its generation is the current
 * generation of its kind: the segment's generation (a full flush) plus the
 * kind's own (a flush of one kind). A put takes its generation from the
 * ticket the caller took before asking the store, and is refused if a
 * deletion of the kind happened since, so a value read before an
 * invalidation never outlives it in the cache.
 */
#include <stddef.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "core/fastauth.h"
#include "core/xmalloc.h"
#include "shm/shm.h"
#include "shm/cache.h"

#define CACHE_WAYS		8
#define CACHE_READ_TRIES	64	/* seqlock attempts before a miss: ~1 us */
#define CACHE_CLAIM_GRACE_MS	100	/* younger claims are live writers */
#define CACHE_CLAIM_TAG		1
#define CACHE_DOMAIN		0x4341000000000000ULL	/* "CA" | kind */
#define CACHE_ENTRIES_MAX	(1U << 24)
#define CACHE_ENTRY_HDR		40

struct cache_stripe {
	_Atomic uint64_t hits[CACHE_KINDS];
	_Atomic uint64_t misses[CACHE_KINDS];
	_Atomic uint64_t puts[CACHE_KINDS];
	_Atomic uint64_t dropped;
	_Atomic uint64_t evicted;
	_Atomic uint64_t recovered;
} __attribute__((aligned(64)));

struct cache_region {
	uint64_t		nbuckets;	/* power of two; fixed at init */
	uint64_t		value_max;	/* bytes */
	uint64_t		stride;		/* bytes of one entry, multiple of 64 */
	/* Read by every lookup, bumped by a flush of one kind. */
	_Atomic uint64_t	kind_gen[CACHE_KINDS] __attribute__((aligned(64)));
	/* Deletions per kind, compared with tickets by puts. */
	_Atomic uint64_t	dels[CACHE_KINDS] __attribute__((aligned(64)));
	struct cache_stripe	stripes[SHM_STRIPES];	/* atomic adds */
	struct cache_stripe	cpus[SHM_CPUS];		/* per-CPU adds (shm_count) */
} __attribute__((aligned(64)));

struct cache_entry {
	_Atomic uint64_t seq;		/* odd while a writer is inside */
	uint64_t	 hash;		/* keyed hash of (kind, key); 0 = none */
	uint64_t	 expires;	/* us, CLOCK_MONOTONIC: valid while now < expires */
	uint64_t	 gen;		/* generation of its kind at its ticket */
	uint32_t	 vallen;	/* bytes of value */
	uint16_t	 keylen;	/* bytes of key */
	uint8_t		 kind;		/* enum cache_kind */
	_Atomic uint8_t	 ref;		/* CLOCK reference bit: set by hits */
	uint8_t		 data[];	/* keylen bytes of key, then vallen of value */
};
_Static_assert(offsetof(struct cache_entry, data) == CACHE_ENTRY_HDR,
    "cache entry header size");

#define CACHE_HANDS_OFF	((sizeof(struct cache_region) + 63) & ~(size_t)63)

struct cache {
	struct cache_region	*r;
	_Atomic uint8_t		*hands;		/* nbuckets */
	_Atomic uint64_t	*tags;		/* nbuckets x CACHE_WAYS */
	_Atomic uint64_t	*claims;	/* nbuckets x CACHE_WAYS owner words */
	uint8_t			*entries;
	uint64_t		 mask;		/* nbuckets - 1 */
	uint64_t		 stride;
	uint64_t		 value_max;
	_Atomic uint64_t	*generation;	/* the segment's */
	/* The hash state after each kind's domain block. */
	struct shm_hashstate	 pre[CACHE_KINDS];
};

/* Results of reading one entry. */
enum cache_read { CACHE_R_MISS, CACHE_R_HIT, CACHE_R_TOOBIG };

#define CACHE_LOAD(p)		__atomic_load_n((p), __ATOMIC_RELAXED)
#define CACHE_STORE(p, v)	__atomic_store_n((p), (v), __ATOMIC_RELAXED)

static uint64_t
cache_tags_off(uint64_t nbuckets)
{
	return CACHE_HANDS_OFF + ((nbuckets + 63) & ~(uint64_t)63);
}

static uint64_t
cache_stride(uint32_t value_max)
{
	return (CACHE_ENTRY_HDR + CACHE_KEY_MAX + (uint64_t)value_max + 63) &
	    ~(uint64_t)63;
}

uint64_t
cache_region_entries(uint32_t entries)
{
	uint64_t	nb = 1;

	if (entries < CACHE_WAYS || entries > CACHE_ENTRIES_MAX)
		return 0;
	while (nb * CACHE_WAYS < entries)
		nb <<= 1;
	return nb * CACHE_WAYS;
}

size_t
cache_region_size(uint32_t entries, uint32_t value_max)
{
	uint64_t	n = cache_region_entries(entries);

	if (n == 0 || value_max == 0 || value_max > CACHE_VALUE_LIMIT)
		return 0;
	return cache_tags_off(n / CACHE_WAYS) + 2 * n * sizeof(uint64_t) +
	    n * cache_stride(value_max);
}

void
cache_region_init(void *base, uint32_t entries, uint32_t value_max)
{
	struct cache_region	*r = base;

	r->nbuckets = cache_region_entries(entries) / CACHE_WAYS;
	r->value_max = value_max;
	r->stride = cache_stride(value_max);
}

struct cache *
cache_view_new(void *base, unsigned hashalg, const uint8_t *hashkey,
    _Atomic uint64_t *generation)
{
	struct cache	*c = xcalloc(1, sizeof *c);
	uint8_t		*p = base;
	unsigned	 kind;

	c->r = base;
	c->mask = c->r->nbuckets - 1;
	c->stride = c->r->stride;
	c->value_max = c->r->value_max;
	c->hands = (_Atomic uint8_t *)(p + CACHE_HANDS_OFF);
	c->tags = (_Atomic uint64_t *)(p + cache_tags_off(c->r->nbuckets));
	c->claims = c->tags + c->r->nbuckets * CACHE_WAYS;
	c->entries = (uint8_t *)(c->claims + c->r->nbuckets * CACHE_WAYS);
	c->generation = generation;
	for (kind = 0; kind < CACHE_KINDS; kind++)
		shm_hash_prepare(&c->pre[kind], hashalg, hashkey,
		    CACHE_DOMAIN | kind);
	return c;
}

void
cache_view_free(struct cache *c)
{
	free(c);
}

static inline struct cache_entry *
cache_entry(struct cache *c, uint64_t slot)
{
	return (struct cache_entry *)(c->entries + slot * c->stride);
}

/* Count one event: off is the counter's offset in struct cache_stripe. */
static inline void
cache_count(struct cache *c, size_t off)
{
	shm_count(c->r->cpus, c->r->stripes, sizeof(struct cache_stripe), off);
}

#define CACHE_CTR(field)	offsetof(struct cache_stripe, field)
#define CACHE_CTR_KIND(field, kind) \
	(offsetof(struct cache_stripe, field) + (size_t)(kind) * sizeof(uint64_t))

static inline uint64_t
cache_gen(struct cache *c, unsigned kind)
{
	return atomic_load_explicit(c->generation, memory_order_acquire) +
	    atomic_load_explicit(&c->r->kind_gen[kind], memory_order_acquire);
}

static inline int
cache_kind_ok(unsigned kind)
{
	return kind >= 1 && kind < CACHE_KINDS;
}

static inline uint64_t
cache_hash(struct cache *c, unsigned kind, const void *key, size_t keylen)
{
	uint64_t	h = shm_hash_prepared(&c->pre[kind], key, keylen);

	return h != 0 ? h : 1;	/* 0 marks an empty slot */
}

/*
 * Are the n (1..CACHE_KEY_MAX) bytes at a and b equal? Word loads, the last
 * one overlapping, instead of a call into memcmp for keys of a few dozen
 * bytes whose equality is all we need (not secret: a key is a lookup name,
 * and a hit already needed its keyed 64-bit hash to match).
 */
static inline int
cache_keyeq(const uint8_t *a, const uint8_t *b, size_t n)
{
	uint64_t	x, y, d = 0;
	uint32_t	u, v;
	size_t		i;

	if (n >= 8) {
		for (i = 0; i + 8 < n; i += 8) {
			memcpy(&x, a + i, 8);
			memcpy(&y, b + i, 8);
			d |= x ^ y;
		}
		memcpy(&x, a + n - 8, 8);
		memcpy(&y, b + n - 8, 8);
		return (d | (x ^ y)) == 0;
	}
	if (n >= 4) {
		memcpy(&u, a, 4);
		memcpy(&v, b, 4);
		d = u ^ v;
		memcpy(&u, a + n - 4, 4);
		memcpy(&v, b + n - 4, 4);
		return (d | (u ^ v)) == 0;
	}
	for (i = 0; i < n; i++)
		d |= (uint64_t)(a[i] ^ b[i]);
	return d == 0;
}

/*
 * Read entry e under its sequence counter: a hit needs the whole key equal,
 * the current generation and now < expires. Bounded: CACHE_READ_TRIES.
 */
static enum cache_read
cache_read(struct cache *c, struct cache_entry *e, uint64_t h, unsigned kind,
    const void *key, size_t keylen, uint64_t gen, uint64_t now, void *out,
    size_t outcap, size_t *outlen)
{
	enum cache_read	status;
	uint64_t	s1, s2;
	uint32_t	vallen;
	int		tries, match;

	for (tries = 0; tries < CACHE_READ_TRIES; tries++) {
		s1 = atomic_load_explicit(&e->seq, memory_order_acquire);
		if (s1 & 1) {
			shm_cpu_relax();
			continue;
		}
		vallen = CACHE_LOAD(&e->vallen);
		match = CACHE_LOAD(&e->hash) == h &&
		    CACHE_LOAD(&e->kind) == kind &&
		    CACHE_LOAD(&e->keylen) == keylen &&
		    cache_keyeq(e->data, key, keylen);
		status = CACHE_R_MISS;
		if (match && CACHE_LOAD(&e->gen) == gen &&
		    now < CACHE_LOAD(&e->expires) && vallen <= c->value_max) {
			if (vallen > outcap)
				status = CACHE_R_TOOBIG;
			else {
				memcpy(out, e->data + keylen, vallen);
				status = CACHE_R_HIT;
			}
		}
		atomic_thread_fence(memory_order_acquire);
		s2 = atomic_load_explicit(&e->seq, memory_order_relaxed);
		if (s1 == s2) {
			if (status != CACHE_R_MISS)
				*outlen = vallen;
			return status;
		}
	}
	return CACHE_R_MISS;
}

void
cache_ticket(struct cache *c, enum cache_kind kind, struct cache_ticket *t)
{
	unsigned	k = cache_kind_ok(kind) ? kind : 0;

	t->gen = cache_gen(c, k);
	t->dels = atomic_load(&c->r->dels[k]);
}

int
cache_get(struct cache *c, enum cache_kind kind, const void *key,
    size_t keylen, uint64_t now, void *out, size_t outcap, size_t *outlen)
{
	struct cache_entry	*e;
	_Atomic uint64_t	*tags;
	enum cache_read		 r;
	uint64_t		 h, b, gen;
	int			 i;

	*outlen = 0;
	if (!cache_kind_ok(kind) || keylen == 0 || keylen > CACHE_KEY_MAX)
		return FA_NOTFOUND;
	h = cache_hash(c, kind, key, keylen);
	b = h & c->mask;
	tags = c->tags + b * CACHE_WAYS;
	gen = cache_gen(c, kind);
	for (i = 0; i < CACHE_WAYS; i++) {
		if (atomic_load_explicit(&tags[i], memory_order_relaxed) != h)
			continue;
		e = cache_entry(c, b * CACHE_WAYS + (uint64_t)i);
		r = cache_read(c, e, h, kind, key, keylen, gen, now, out, outcap,
		    outlen);
		if (r == CACHE_R_MISS)
			continue;
		if (atomic_load_explicit(&e->ref, memory_order_relaxed) == 0)
			atomic_store_explicit(&e->ref, 1, memory_order_relaxed);
		cache_count(c, CACHE_CTR_KIND(hits, kind));
		return r == CACHE_R_HIT ? FA_OK : FA_LIMIT;
	}
	cache_count(c, CACHE_CTR_KIND(misses, kind));
	return FA_NOTFOUND;
}

/*
 * Claim entry slot for writing as me: free, or held by a writer that is
 * certainly dead. 1 claimed, 0 busy.
 */
static int
cache_claim(struct cache *c, uint64_t slot, uint64_t me)
{
	_Atomic uint64_t	*claim = &c->claims[slot];
	uint64_t		 w = atomic_load_explicit(claim,
				    memory_order_relaxed);

	if (w == 0)
		return atomic_compare_exchange_strong(claim, &w, me);
	if (shm_owner_age_ms(w) < CACHE_CLAIM_GRACE_MS || !shm_owner_dead(w))
		return 0;
	if (!atomic_compare_exchange_strong(claim, &w, me))
		return 0;
	cache_count(c, CACHE_CTR(recovered));
	return 1;
}

/* Is e, read without its sequence, a valid entry? A hint for eviction. */
static int
cache_live(struct cache *c, struct cache_entry *e, uint64_t now)
{
	unsigned	kind = CACHE_LOAD(&e->kind);

	return cache_kind_ok(kind) && now < CACHE_LOAD(&e->expires) &&
	    CACHE_LOAD(&e->gen) == cache_gen(c, kind);
}

/*
 * Choose and claim the slot of bucket b for key hash h: the key's own, else an
 * empty one, else an invalid one, else CLOCK. The slot index, or -1 if every
 * candidate is held by a live writer.
 */
static int
cache_claim_slot(struct cache *c, uint64_t b, uint64_t h, uint64_t now,
    uint64_t me)
{
	_Atomic uint64_t	*tags = c->tags + b * CACHE_WAYS;
	struct cache_entry	*e;
	uint64_t		 t[CACHE_WAYS];
	unsigned		 hand, i, step, own = 0;

	for (i = 0; i < CACHE_WAYS; i++) {
		t[i] = atomic_load_explicit(&tags[i], memory_order_relaxed);
		if (t[i] == h) {
			own++;
			if (cache_claim(c, b * CACHE_WAYS + i, me))
				return (int)i;
		}
	}
	/* Another writer is storing this very key: let it. */
	if (own != 0)
		return -1;
	for (i = 0; i < CACHE_WAYS; i++)
		if (t[i] == 0 && cache_claim(c, b * CACHE_WAYS + i, me))
			return (int)i;
	for (i = 0; i < CACHE_WAYS; i++) {
		e = cache_entry(c, b * CACHE_WAYS + i);
		if (!cache_live(c, e, now) && cache_claim(c, b * CACHE_WAYS + i, me))
			return (int)i;
	}
	hand = atomic_load_explicit(&c->hands[b], memory_order_relaxed);
	for (step = 0; step < 2 * CACHE_WAYS; step++) {
		i = (hand + step) % CACHE_WAYS;
		e = cache_entry(c, b * CACHE_WAYS + i);
		if (atomic_load_explicit(&e->ref, memory_order_relaxed) != 0) {
			atomic_store_explicit(&e->ref, 0, memory_order_relaxed);
			continue;
		}
		if (cache_claim(c, b * CACHE_WAYS + i, me)) {
			atomic_store_explicit(&c->hands[b],
			    (uint8_t)((i + 1) % CACHE_WAYS), memory_order_relaxed);
			if (cache_live(c, e, now))
				cache_count(c, CACHE_CTR(evicted));
			return (int)i;
		}
	}
	return -1;
}

/* Start writing e, whose claim we hold: make its sequence odd. Returns it. */
static uint64_t
cache_write_begin(struct cache_entry *e)
{
	uint64_t	s = atomic_load_explicit(&e->seq, memory_order_relaxed);

	/* Odd already: its last writer died inside; carry on from there. */
	if ((s & 1) == 0)
		atomic_store_explicit(&e->seq, ++s, memory_order_relaxed);
	atomic_thread_fence(memory_order_release);
	return s;
}

/* End writing e: publish what was written, then give claim back. */
static void
cache_write_end(struct cache_entry *e, _Atomic uint64_t *claim, uint64_t s)
{
	atomic_store_explicit(&e->seq, s + 1, memory_order_release);
	atomic_store_explicit(claim, 0, memory_order_release);
}

int
cache_put(struct cache *c, enum cache_kind kind, const void *key,
    size_t keylen, const void *value, size_t len, uint64_t ttl, uint64_t now,
    const struct cache_ticket *ticket)
{
	struct cache_entry	*e;
	_Atomic uint64_t	*tags;
	uint64_t		 h, b, gen, dels, s, me, t;
	int			 slot, i, stale = 0;

	if (!cache_kind_ok(kind) || keylen == 0 || keylen > CACHE_KEY_MAX ||
	    len > c->value_max)
		return FA_LIMIT;
	if (ticket != NULL) {
		gen = ticket->gen;
		dels = ticket->dels;
		if (gen != cache_gen(c, kind) ||
		    dels != atomic_load(&c->r->dels[kind]))
			goto dropped;
	} else {
		gen = cache_gen(c, kind);
		dels = atomic_load(&c->r->dels[kind]);
	}
	h = cache_hash(c, kind, key, keylen);
	b = h & c->mask;
	tags = c->tags + b * CACHE_WAYS;
	me = shm_owner_make(CACHE_CLAIM_TAG);
	if ((slot = cache_claim_slot(c, b, h, now, me)) < 0)
		goto dropped;
	e = cache_entry(c, b * CACHE_WAYS + (uint64_t)slot);
	if (shm_test_hook != NULL)
		shm_test_hook(SHM_TEST_CACHE_CLAIMED);

	s = cache_write_begin(e);
	atomic_store(&tags[slot], h);
	CACHE_STORE(&e->hash, h);
	CACHE_STORE(&e->kind, (uint8_t)kind);
	CACHE_STORE(&e->keylen, (uint16_t)keylen);
	CACHE_STORE(&e->vallen, (uint32_t)len);
	CACHE_STORE(&e->gen, gen);
	CACHE_STORE(&e->expires, now + ttl < now ? UINT64_MAX : now + ttl);
	memcpy(e->data, key, keylen);
	if (shm_test_hook != NULL)
		shm_test_hook(SHM_TEST_CACHE_WRITE);
	if (len != 0)
		memcpy(e->data + keylen, value, len);
	atomic_store_explicit(&e->ref, 0, memory_order_relaxed);
	/*
	 * A cache_del of this kind since the ticket: it may have missed our tag
	 * (stored above, before this load, so one of us sees the other).
	 */
	atomic_thread_fence(memory_order_seq_cst);
	if (atomic_load(&c->r->dels[kind]) != dels) {
		t = h;
		atomic_compare_exchange_strong(&tags[slot], &t, 0);
		stale = 1;
	}
	cache_write_end(e, &c->claims[b * CACHE_WAYS + (uint64_t)slot], s);
	if (stale)
		goto dropped;
	/* Older copies of the key (two puts raced once): this one wins. */
	for (i = 0; i < CACHE_WAYS; i++) {
		t = h;
		if (i != slot)
			atomic_compare_exchange_strong(&tags[i], &t, 0);
	}
	cache_count(c, CACHE_CTR_KIND(puts, kind));
	return FA_OK;

dropped:
	cache_count(c, CACHE_CTR(dropped));
	return FA_DENIED;
}

int
cache_del(struct cache *c, enum cache_kind kind, const void *key, size_t keylen)
{
	_Atomic uint64_t	*tags;
	uint64_t		 h, t;
	int			 i, found = 0;

	if (!cache_kind_ok(kind) || keylen == 0 || keylen > CACHE_KEY_MAX)
		return FA_NOTFOUND;
	h = cache_hash(c, kind, key, keylen);
	tags = c->tags + (h & c->mask) * CACHE_WAYS;
	/* First, so that a put in flight sees it or we see its tag. */
	atomic_fetch_add(&c->r->dels[kind], 1);
	for (i = 0; i < CACHE_WAYS; i++) {
		t = h;
		if (atomic_compare_exchange_strong(&tags[i], &t, 0))
			found = 1;
	}
	return found ? FA_OK : FA_NOTFOUND;
}

void
cache_flush(struct cache *c, enum cache_kind kind)
{
	if (cache_kind_ok(kind))
		atomic_fetch_add(&c->r->kind_gen[kind], 1);
	else
		atomic_fetch_add(c->generation, 1);
}

unsigned
cache_sweep(struct cache *c)
{
	struct cache_entry	*e;
	uint64_t		 i, n = (c->mask + 1) * CACHE_WAYS, w, s, me;
	unsigned		 recovered = 0;

	me = shm_owner_make(CACHE_CLAIM_TAG);
	for (i = 0; i < n; i++) {
		e = cache_entry(c, i);
		w = atomic_load_explicit(&c->claims[i], memory_order_relaxed);
		if (w == 0 || !cache_claim(c, i, me))
			continue;
		/* Its writer died inside: make it empty, never half-read. */
		s = cache_write_begin(e);
		atomic_store(&c->tags[i], 0);
		CACHE_STORE(&e->hash, 0);
		CACHE_STORE(&e->keylen, 0);
		cache_write_end(e, &c->claims[i], s);
		recovered++;
	}
	return recovered;
}

void
cache_stats(struct cache *c, uint64_t now, struct cache_stats *st)
{
	struct cache_stripe	*sp;
	struct cache_entry	*e;
	uint64_t		 i, n = (c->mask + 1) * CACHE_WAYS;
	unsigned		 s, k;

	memset(st, 0, sizeof *st);
	st->entries = n;
	st->value_max = c->value_max;
	for (i = 0; i < n; i++) {
		e = cache_entry(c, i);
		if (atomic_load_explicit(&c->tags[i], memory_order_relaxed) != 0 &&
		    cache_live(c, e, now))
			st->used++;
		if (atomic_load_explicit(&c->claims[i], memory_order_relaxed) != 0)
			st->claimed++;
	}
	for (s = 0; s < SHM_STRIPES + SHM_CPUS; s++) {
		sp = s < SHM_STRIPES ? &c->r->stripes[s] :
		    &c->r->cpus[s - SHM_STRIPES];
		for (k = 0; k < CACHE_KINDS; k++) {
			st->hits[k] += atomic_load(&sp->hits[k]);
			st->misses[k] += atomic_load(&sp->misses[k]);
			st->puts[k] += atomic_load(&sp->puts[k]);
		}
		st->dropped += atomic_load(&sp->dropped);
		st->evicted += atomic_load(&sp->evicted);
		st->recovered += atomic_load(&sp->recovered);
	}
}
