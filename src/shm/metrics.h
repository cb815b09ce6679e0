/*
 * metrics.h -- request, token, limiter, Redis and security counters of every
 * responder process of a host, in the shared segment (shm.h), for GET
 * /metrics and fastauthctl.
 *
 * Each process claims a slot of its own (owner word: pid and claim time, by
 * CAS) and records into it with relaxed atomic adds: no lock, no system call.
 * When a process dies, whoever notices first folds its counters into the
 * retired slot, so a sum over all slots never goes backwards. A process that
 * finds no free slot records straight into the retired slot (its counts are
 * kept; only its per-process gauges are lost).
 *
 * The recording functions (metrics_count and friends) act on this process's
 * slot, set by metrics_attach; before that, or in tools, they do nothing.
 */
#ifndef METRICS_H
#define METRICS_H

#include <stddef.h>
#include <stdint.h>

#define METRICS_DEFAULT_SLOTS	64	/* processes per host with a slot */
#define METRICS_SLOTS_MAX	4096

/* Endpoints, as the router knows them; the labels are metrics_endpoint_name. */
enum metrics_endpoint {
	METRICS_EP_TOKEN, METRICS_EP_INTROSPECT, METRICS_EP_REVOKE,
	METRICS_EP_USERINFO, METRICS_EP_DISCOVERY, METRICS_EP_HEALTH,
	METRICS_EP_READY, METRICS_EP_METRICS, METRICS_EP_AUTHORIZER,
	METRICS_EP_OTHER,
	METRICS_EP_COUNT
};

/* Status codes counted under their own label; the rest count as "other". */
#define METRICS_STATUS_COUNT	13

/* Request duration histogram: upper bounds in microseconds, then +Inf. */
#define METRICS_BUCKETS		14	/* 13 bounds + Inf */
extern const uint64_t metrics_bucket_us[METRICS_BUCKETS - 1];

enum metrics_grant {
	METRICS_GRANT_CLIENT_CREDENTIALS, METRICS_GRANT_PASSWORD,
	METRICS_GRANT_REFRESH_TOKEN, METRICS_GRANT_COUNT
};

#define METRICS_POLICIES	8	/* rate-limit policy classes (limits.h) */
#define METRICS_EVENT_TYPES	16	/* audit types (audit.h) */

/* Plain counters: one index each, or a base plus a label index. */
enum metrics_counter {
	METRICS_TOKENS_ISSUED,		/* + enum metrics_grant */
	METRICS_INTROSPECT_ACTIVE = METRICS_TOKENS_ISSUED + METRICS_GRANT_COUNT,
	METRICS_INTROSPECT_INACTIVE,
	METRICS_REVOKED_ACCESS,
	METRICS_REVOKED_REFRESH,
	METRICS_INVALID_TOKENS,		/* access tokens that did not open */
	METRICS_REDIS_ERRORS,		/* connections failed or broken */
	METRICS_REDIS_RECONNECTS,	/* connections re-made after one was lost */
	METRICS_RL_ALLOWED,		/* + policy class */
	METRICS_RL_LIMITED = METRICS_RL_ALLOWED + METRICS_POLICIES,
	METRICS_EVENTS = METRICS_RL_LIMITED + METRICS_POLICIES, /* + audit type */
	METRICS_COUNTER_COUNT = METRICS_EVENTS + METRICS_EVENT_TYPES
};

/* Per-process gauges: not folded when the process dies. */
enum metrics_gauge {
	METRICS_G_REDIS_OPEN,		/* Redis connections open */
	METRICS_G_BUSY,			/* request threads inside a request */
	METRICS_G_THREADS,		/* request threads */
	METRICS_G_CIRCUIT,		/* Redis circuit: 0 closed, 1 open, 2 half-open */
	METRICS_G_TARPIT,		/* refusals held back by the tarpit */
	METRICS_GAUGE_COUNT
};

struct metrics;			/* a process-local view of the region */

/* A sum over every slot (live, dying and retired). */
struct metrics_snapshot {
	uint64_t	requests[METRICS_EP_COUNT][METRICS_STATUS_COUNT];
	uint64_t	buckets[METRICS_EP_COUNT][METRICS_BUCKETS];	/* not cumulative */
	uint64_t	dur_sum_us[METRICS_EP_COUNT];
	uint64_t	counters[METRICS_COUNTER_COUNT];
	int64_t		gauges[METRICS_GAUGE_COUNT];	/* live processes only */
	uint32_t	slots;		/* slots in the region */
	uint32_t	live;		/* processes holding a slot */
	uint64_t	retired;	/* dead processes folded so far */
	uint64_t	overflow;	/* claims that found no free slot */
};

/* One live process's gauges, for per-process series. */
struct metrics_process {
	int32_t		pid;
	int64_t		gauges[METRICS_GAUGE_COUNT];
};

/* Bytes the region needs for slots slots (a multiple of 64); 0 if out of range. */
size_t	metrics_region_size(uint32_t slots);
/* Lay out a zero-filled region; called once by the initialising process. */
void	metrics_region_init(void *base, uint32_t slots);
/* A process-local view of an initialised region. Free with metrics_view_free. */
struct metrics *metrics_view_new(void *base);
void	metrics_view_free(struct metrics *);

/*
 * Claim a slot for this process (reclaiming dead processes' slots if none is
 * free) and make it the one the recording functions use; a slot held from an
 * earlier metrics_attach (another segment) is released first. FA_OK with a
 * slot of its own, FA_LIMIT when recording goes to the retired slot.
 */
int	metrics_attach(struct metrics *);
/*
 * Fold this process's slot into the retired slot and stop recording. Call it
 * before shm_close of the segment it was attached to.
 */
void	metrics_detach(void);
/*
 * Fold the slots of dead processes into the retired slot. Returns how many.
 * Reads /proc: for scrapes and the housekeeper, not per request.
 */
unsigned metrics_reap(struct metrics *);
/*
 * Sum every slot into *out, consistently with folds in progress (retries
 * while one runs; gives up after a bounded wait and sums what is there).
 */
void	metrics_snapshot(struct metrics *, struct metrics_snapshot *out);
/* Up to max live processes' gauges into out; returns how many. */
size_t	metrics_processes(struct metrics *, struct metrics_process *out, size_t max);

/* --- recording (this process's slot; no-ops before metrics_attach) -------- */

void	metrics_count(enum metrics_counter, uint64_t n);
/* One request: endpoint, HTTP status, microseconds from intake to the answer. */
void	metrics_request(enum metrics_endpoint, int status, uint64_t us);
/* Add delta to one of this process's gauges / set it. */
void	metrics_gauge_add(enum metrics_gauge, int64_t delta);
void	metrics_gauge_set(enum metrics_gauge, int64_t value);
/* The Redis pool's hooks (store/redis_pool.c): one call each. */
void	metrics_redis_opened(void);		/* a context exists */
void	metrics_redis_closed(void);		/* ... and is freed */
void	metrics_redis_connected(int after_failure);	/* ready for commands */
void	metrics_redis_error(void);
/*
 * Circuit breaker state of this process's Redis pool (0 closed, 1 open,
 * 2 half-open), exported as fastauth_redis_circuit_state{pid}.
 */
void	metrics_redis_circuit(int state);

/* Labels. */
const char *metrics_endpoint_name(enum metrics_endpoint);
/* The status code counted at index i (0 for "other", the last index). */
int	metrics_status_code(unsigned i);

/* Test hook, NULL in production: called in a fold between adding a word to
 * the retired slot and subtracting it from the folded one. */
extern void	(*metrics_test_hook)(void);

#endif
