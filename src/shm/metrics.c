/*
 * metrics.c -- per-process counter slots in the shared segment. It owns the
 * metrics region's layout:
 *
 *	struct metrics_region	slot count, fold lock and sequence, totals
 *	retired slot		counters of every process that has died
 *	slots[nslots]		one per live process, 64-byte aligned
 *
 * A slot's owner word (shm.h) is 0 when free, LIVE(pid, start) while a
 * process records into it, FOLD(folder) while its counters are being moved
 * into the retired slot. Claiming is one CAS 0 -> LIVE(me).
 *
 * Folding never loses a count, even with a process still adding to the slot
 * (a thread that loaded the slot pointer just before a detach): each counter
 * is added to the retired slot first and only then subtracted from its own,
 * so a straggler's add stays in one of the two. A folder killed between the
 * add and the subtract counts that one value twice: counters may jump, never
 * go backwards. Free slots may thus hold counts; sums take every slot, free
 * or not, and a claim never zeroes counters (only gauges).
 *
 * Folds run one at a time under the fold lock (an owner word, taken over when
 * its holder is dead); the sequence word is odd while one runs, so a scrape
 * retries instead of seeing a value in both places or neither.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/fastauth.h"
#include "core/xmalloc.h"
#include "shm/metrics.h"
#include "shm/shm.h"

/* Owner word tags of a slot and of the fold lock. */
enum { METRICS_LIVE = 1, METRICS_FOLD = 2, METRICS_LOCK = 3 };

#define METRICS_LOCK_WAIT_US	(500 * 1000)	/* a live folder gets this long */
#define METRICS_READ_WAIT_US	(200 * 1000)	/* a scrape retries this long */

const uint64_t metrics_bucket_us[METRICS_BUCKETS - 1] = {
	500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000,
	1000000, 2500000, 5000000
};

static const int metrics_status_codes[METRICS_STATUS_COUNT - 1] = {
	200, 204, 304, 400, 401, 403, 404, 405, 413, 429, 500, 503
};

static const char *const metrics_endpoint_names[METRICS_EP_COUNT] = {
	"token", "introspect", "revoke", "userinfo", "discovery", "health",
	"ready", "metrics", "authorizer", "other"
};

struct metrics_slot {
	_Atomic uint64_t owner;		/* 0 free, LIVE(pid) or FOLD(folder) */
	_Atomic int32_t	 pid;		/* the LIVE owner's pid, for labels */
	_Atomic int64_t	 gauges[METRICS_GAUGE_COUNT];
	_Atomic uint64_t requests[METRICS_EP_COUNT][METRICS_STATUS_COUNT];
	_Atomic uint64_t buckets[METRICS_EP_COUNT][METRICS_BUCKETS];
	_Atomic uint64_t dur_sum_us[METRICS_EP_COUNT];
	_Atomic uint64_t counters[METRICS_COUNTER_COUNT];
} __attribute__((aligned(64)));

/* The folded part of a slot: every counter, as one array of words. */
#define METRICS_FOLD_OFF	offsetof(struct metrics_slot, requests)
#define METRICS_FOLD_WORDS	((sizeof(struct metrics_slot) - METRICS_FOLD_OFF) / 8)
_Static_assert(offsetof(struct metrics_slot, counters) +
    sizeof(((struct metrics_slot *)0)->counters) <= sizeof(struct metrics_slot),
    "slot layout");

struct metrics_region {
	uint32_t	 nslots;	/* fixed at init */
	_Atomic uint64_t fold_lock;	/* owner word of the folder, 0 = none */
	_Atomic uint64_t fold_seq;	/* odd while a fold runs */
	_Atomic uint64_t retired_count;	/* slots folded */
	_Atomic uint64_t overflow;	/* claims that found no free slot */
	struct metrics_slot retired;
} __attribute__((aligned(64)));

#define METRICS_SLOTS_OFF	((sizeof(struct metrics_region) + 63) & ~(size_t)63)

struct metrics {
	struct metrics_region	*r;
	struct metrics_slot	*slots;
};

void	(*metrics_test_hook)(void);

/*
 * This process's slot: what the recording functions add to. The view and
 * the owner word let metrics_detach fold it. Guarded by metrics_lock except
 * metrics_self, which request threads read with one relaxed load.
 */
static struct metrics_slot *_Atomic metrics_self;
static struct metrics	*metrics_self_view;
static uint64_t		 metrics_self_owner;
static pthread_mutex_t	 metrics_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t	 metrics_once = PTHREAD_ONCE_INIT;

/* A forked child is another process: it must claim a slot of its own. */
static void
metrics_atfork_child(void)
{
	atomic_store_explicit(&metrics_self, NULL, memory_order_relaxed);
	metrics_self_view = NULL;
	metrics_self_owner = 0;
	pthread_mutex_init(&metrics_lock, NULL);
}

static void
metrics_init_once(void)
{
	pthread_atfork(NULL, NULL, metrics_atfork_child);
}

size_t
metrics_region_size(uint32_t slots)
{
	if (slots < 1 || slots > METRICS_SLOTS_MAX)
		return 0;
	return METRICS_SLOTS_OFF + (size_t)slots * sizeof(struct metrics_slot);
}

void
metrics_region_init(void *base, uint32_t slots)
{
	struct metrics_region *r = base;

	r->nslots = slots;
}

struct metrics *
metrics_view_new(void *base)
{
	struct metrics *m = xcalloc(1, sizeof *m);

	m->r = base;
	m->slots = (struct metrics_slot *)((uint8_t *)base + METRICS_SLOTS_OFF);
	return m;
}

void
metrics_view_free(struct metrics *m)
{
	free(m);
}

static void
metrics_nap(void)
{
	struct timespec nap = { 0, 1000 * 1000 };

	nanosleep(&nap, NULL);
}

/* Take the fold lock, or the lock of a dead folder. 1 if held, 0 if timed out. */
static int
metrics_lock_folds(struct metrics_region *r, uint64_t me)
{
	uint64_t start = shm_now(), cur;

	for (;;) {
		cur = 0;
		if (atomic_compare_exchange_strong(&r->fold_lock, &cur, me))
			return 1;
		if (shm_owner_dead(cur) &&
		    atomic_compare_exchange_strong(&r->fold_lock, &cur, me))
			return 1;
		if (shm_now() - start > METRICS_LOCK_WAIT_US)
			return 0;
		metrics_nap();
	}
}

/* Move one slot's counters into the retired slot; we hold the fold lock. */
static void
metrics_move(struct metrics_region *r, struct metrics_slot *s)
{
	_Atomic uint64_t *from = (_Atomic uint64_t *)((uint8_t *)s + METRICS_FOLD_OFF);
	_Atomic uint64_t *to = (_Atomic uint64_t *)((uint8_t *)&r->retired +
	    METRICS_FOLD_OFF);
	uint64_t v;
	size_t i, moved = 0;
	int g;

	for (g = 0; g < METRICS_GAUGE_COUNT; g++)
		atomic_store_explicit(&s->gauges[g], 0, memory_order_relaxed);
	for (i = 0; i < METRICS_FOLD_WORDS; i++) {
		if ((v = atomic_load_explicit(&from[i], memory_order_relaxed)) == 0)
			continue;
		/* Add first: a folder killed here counts v twice, never zero times. */
		atomic_fetch_add_explicit(&to[i], v, memory_order_relaxed);
		if (++moved == 2 && metrics_test_hook != NULL)
			metrics_test_hook();
		atomic_fetch_sub_explicit(&from[i], v, memory_order_relaxed);
	}
}

/*
 * Fold slot s if its owner word is still expect (or every slot left half
 * folded by a dead folder, with expect 0). 1 if a slot was folded.
 */
static int
metrics_fold(struct metrics *m, struct metrics_slot *s, uint64_t expect)
{
	struct metrics_region *r = m->r;
	uint64_t me = shm_owner_make(METRICS_LOCK), fold, seq, w;
	uint32_t i;
	int n = 0;

	if (!metrics_lock_folds(r, me))
		return 0;
	seq = atomic_load(&r->fold_seq);
	if ((seq & 1) == 0)
		atomic_store(&r->fold_seq, seq + 1);	/* else a dead folder's */
	fold = shm_owner_make(METRICS_FOLD);
	/* Slots a dead folder left: we hold the lock, so nobody else folds them. */
	for (i = 0; i < r->nslots; i++) {
		w = atomic_load(&m->slots[i].owner);
		if (SHM_OWNER_TAG(w) == METRICS_FOLD &&
		    atomic_compare_exchange_strong(&m->slots[i].owner, &w, fold)) {
			metrics_move(r, &m->slots[i]);
			atomic_fetch_add(&r->retired_count, 1);
			atomic_store_explicit(&m->slots[i].owner, 0, memory_order_release);
			n++;
		}
	}
	if (s != NULL && atomic_compare_exchange_strong(&s->owner, &expect, fold)) {
		metrics_move(r, s);
		atomic_fetch_add(&r->retired_count, 1);
		atomic_store_explicit(&s->owner, 0, memory_order_release);
		n++;
	}
	atomic_fetch_add_explicit(&r->fold_seq, 1, memory_order_release);
	atomic_store(&r->fold_lock, 0);
	return n > 0;
}

unsigned
metrics_reap(struct metrics *m)
{
	struct metrics_region *r = m->r;
	unsigned n = 0;
	uint64_t w, seq;
	uint32_t i;

	for (i = 0; i < r->nslots; i++) {
		w = atomic_load(&m->slots[i].owner);
		if (w == 0 || SHM_OWNER_TAG(w) == METRICS_FOLD)
			continue;
		if (shm_owner_dead(w))
			n += (unsigned)metrics_fold(m, &m->slots[i], w);
	}
	/* A folder died mid-way: finish its work (its lock is taken over). */
	seq = atomic_load(&r->fold_seq);
	w = atomic_load(&r->fold_lock);
	if (((seq & 1) != 0 && (w == 0 || shm_owner_dead(w))))
		n += (unsigned)metrics_fold(m, NULL, 0);
	return n;
}

/* One pass over the free slots: claim one. NULL if none. */
static struct metrics_slot *
metrics_claim(struct metrics *m, uint64_t me)
{
	uint64_t cur;
	uint32_t i;
	int g;

	for (i = 0; i < m->r->nslots; i++) {
		struct metrics_slot *s = &m->slots[i];

		cur = atomic_load_explicit(&s->owner, memory_order_relaxed);
		if (cur != 0 || !atomic_compare_exchange_strong(&s->owner, &cur, me))
			continue;
		atomic_store(&s->pid, (int32_t)getpid());
		for (g = 0; g < METRICS_GAUGE_COUNT; g++)
			atomic_store(&s->gauges[g], 0);
		return s;
	}
	return NULL;
}

/* Fold our own slot; metrics_lock held. */
static void
metrics_release_locked(void)
{
	struct metrics_slot *s = atomic_load(&metrics_self);

	atomic_store(&metrics_self, NULL);
	if (s != NULL && metrics_self_view != NULL && s != &metrics_self_view->r->retired)
		metrics_fold(metrics_self_view, s, metrics_self_owner);
	metrics_self_view = NULL;
	metrics_self_owner = 0;
}

int
metrics_attach(struct metrics *m)
{
	struct metrics_slot *s;
	uint64_t me;
	int rc = FA_OK;

	pthread_once(&metrics_once, metrics_init_once);
	pthread_mutex_lock(&metrics_lock);
	metrics_release_locked();
	me = shm_owner_make(METRICS_LIVE);
	if ((s = metrics_claim(m, me)) == NULL) {
		metrics_reap(m);
		s = metrics_claim(m, me);
	}
	if (s == NULL) {
		atomic_fetch_add(&m->r->overflow, 1);
		s = &m->r->retired;
		me = 0;
		rc = FA_LIMIT;
	}
	metrics_self_view = m;
	metrics_self_owner = me;
	atomic_store(&metrics_self, s);
	pthread_mutex_unlock(&metrics_lock);
	return rc;
}

void
metrics_detach(void)
{
	pthread_once(&metrics_once, metrics_init_once);
	pthread_mutex_lock(&metrics_lock);
	metrics_release_locked();
	pthread_mutex_unlock(&metrics_lock);
}

static void
metrics_add_slot(struct metrics_snapshot *o, struct metrics_slot *s, int live)
{
	int e, i;

	for (e = 0; e < METRICS_EP_COUNT; e++) {
		for (i = 0; i < METRICS_STATUS_COUNT; i++)
			o->requests[e][i] += atomic_load_explicit(&s->requests[e][i],
			    memory_order_relaxed);
		for (i = 0; i < METRICS_BUCKETS; i++)
			o->buckets[e][i] += atomic_load_explicit(&s->buckets[e][i],
			    memory_order_relaxed);
		o->dur_sum_us[e] += atomic_load_explicit(&s->dur_sum_us[e],
		    memory_order_relaxed);
	}
	for (i = 0; i < METRICS_COUNTER_COUNT; i++)
		o->counters[i] += atomic_load_explicit(&s->counters[i],
		    memory_order_relaxed);
	if (live)
		for (i = 0; i < METRICS_GAUGE_COUNT; i++)
			o->gauges[i] += atomic_load_explicit(&s->gauges[i],
			    memory_order_relaxed);
}

void
metrics_snapshot(struct metrics *m, struct metrics_snapshot *o)
{
	struct metrics_region *r = m->r;
	uint64_t start = shm_now(), s1, s2, w;
	uint32_t i;

	for (;;) {
		memset(o, 0, sizeof *o);
		s1 = atomic_load_explicit(&r->fold_seq, memory_order_acquire);
		if ((s1 & 1) != 0 && shm_now() - start < METRICS_READ_WAIT_US) {
			metrics_nap();
			continue;
		}
		metrics_add_slot(o, &r->retired, 0);
		for (i = 0; i < r->nslots; i++) {
			w = atomic_load_explicit(&m->slots[i].owner,
			    memory_order_relaxed);
			metrics_add_slot(o, &m->slots[i], SHM_OWNER_TAG(w) == METRICS_LIVE);
			if (SHM_OWNER_TAG(w) == METRICS_LIVE)
				o->live++;
		}
		atomic_thread_fence(memory_order_acquire);
		s2 = atomic_load_explicit(&r->fold_seq, memory_order_relaxed);
		if (s1 == s2 || shm_now() - start >= METRICS_READ_WAIT_US)
			break;
	}
	o->slots = r->nslots;
	o->retired = atomic_load(&r->retired_count);
	o->overflow = atomic_load(&r->overflow);
}

size_t
metrics_processes(struct metrics *m, struct metrics_process *out, size_t max)
{
	size_t n = 0;
	uint32_t i;
	int g;

	for (i = 0; i < m->r->nslots && n < max; i++) {
		struct metrics_slot *s = &m->slots[i];

		if (SHM_OWNER_TAG(atomic_load(&s->owner)) != METRICS_LIVE)
			continue;
		out[n].pid = atomic_load(&s->pid);
		for (g = 0; g < METRICS_GAUGE_COUNT; g++)
			out[n].gauges[g] = atomic_load_explicit(&s->gauges[g],
			    memory_order_relaxed);
		n++;
	}
	return n;
}

/* --- recording -------------------------------------------------------------- */

static inline struct metrics_slot *
metrics_slot(void)
{
	return atomic_load_explicit(&metrics_self, memory_order_relaxed);
}

void
metrics_count(enum metrics_counter c, uint64_t n)
{
	struct metrics_slot *s = metrics_slot();

	if (s != NULL && (unsigned)c < METRICS_COUNTER_COUNT)
		atomic_fetch_add_explicit(&s->counters[c], n, memory_order_relaxed);
}

static unsigned
metrics_status_index(int status)
{
	unsigned i;

	for (i = 0; i < METRICS_STATUS_COUNT - 1; i++)
		if (metrics_status_codes[i] == status)
			return i;
	return METRICS_STATUS_COUNT - 1;
}

void
metrics_request(enum metrics_endpoint ep, int status, uint64_t us)
{
	struct metrics_slot *s = metrics_slot();
	unsigned b;

	if (s == NULL)
		return;
	if ((unsigned)ep >= METRICS_EP_COUNT)
		ep = METRICS_EP_OTHER;
	for (b = 0; b < METRICS_BUCKETS - 1 && us > metrics_bucket_us[b]; b++)
		;
	atomic_fetch_add_explicit(&s->requests[ep][metrics_status_index(status)], 1,
	    memory_order_relaxed);
	atomic_fetch_add_explicit(&s->buckets[ep][b], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&s->dur_sum_us[ep], us, memory_order_relaxed);
}

void
metrics_gauge_add(enum metrics_gauge g, int64_t delta)
{
	struct metrics_slot *s = metrics_slot();

	if (s != NULL && (unsigned)g < METRICS_GAUGE_COUNT)
		atomic_fetch_add_explicit(&s->gauges[g], delta, memory_order_relaxed);
}

void
metrics_gauge_set(enum metrics_gauge g, int64_t v)
{
	struct metrics_slot *s = metrics_slot();

	if (s != NULL && (unsigned)g < METRICS_GAUGE_COUNT)
		atomic_store_explicit(&s->gauges[g], v, memory_order_relaxed);
}

void
metrics_redis_opened(void)
{
	metrics_gauge_add(METRICS_G_REDIS_OPEN, 1);
}

void
metrics_redis_connected(int after_failure)
{
	if (after_failure)
		metrics_count(METRICS_REDIS_RECONNECTS, 1);
}

void
metrics_redis_closed(void)
{
	metrics_gauge_add(METRICS_G_REDIS_OPEN, -1);
}

void
metrics_redis_error(void)
{
	metrics_count(METRICS_REDIS_ERRORS, 1);
}

void
metrics_redis_circuit(int state)
{
	metrics_gauge_set(METRICS_G_CIRCUIT, state);
}

const char *
metrics_endpoint_name(enum metrics_endpoint ep)
{
	return (unsigned)ep < METRICS_EP_COUNT ? metrics_endpoint_names[ep] : "other";
}

int
metrics_status_code(unsigned i)
{
	return i < METRICS_STATUS_COUNT - 1 ? metrics_status_codes[i] : 0;
}
