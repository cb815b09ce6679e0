/*
 * anomaly.h -- host-wide attack detection in the shared segment (shm.h):
 * per-address counts of invalid tokens, failed client authentications and
 * failed logins over a sliding window, and per-endpoint latency against its
 * own baseline.
 *
 * Addresses live in a small set-associative table of CAS-updated entries;
 * under a flood of distinct addresses larger than the table, the stalest
 * entries are replaced (a detector, not a limiter: counts are approximate).
 */
#ifndef ANOMALY_H
#define ANOMALY_H

#include <stddef.h>
#include <stdint.h>

#define ANOMALY_DEFAULT_ENTRIES	4096
#define ANOMALY_ENDPOINTS	16	/* latency state slots (metrics endpoints) */

enum anomaly_kind {
	ANOMALY_INVALID_TOKEN,		/* -> token_guessing_suspected */
	ANOMALY_CLIENT_AUTH,		/* -> credential_stuffing_suspected */
	ANOMALY_LOGIN,			/* -> credential_stuffing_suspected */
	ANOMALY_KINDS
};

struct anomaly;

struct anomaly_params {
	uint64_t	window_us;		/* sliding window */
	uint32_t	threshold[ANOMALY_KINDS];	/* per window; 0 = off */
	uint64_t	suspect_us;		/* how long a flagged address stays flagged */
};

/*
 * Count one event of kind from addr at now. 1 when this event takes the
 * address over the threshold for the first time in the current window (raise
 * the alarm once), else 0.
 */
int	anomaly_note(struct anomaly *, const struct anomaly_params *,
	    enum anomaly_kind, const char *addr, uint64_t now);
/* 1 if addr raised an alarm within p->suspect_us of now, else 0. No write. */
int	anomaly_suspect(struct anomaly *, const struct anomaly_params *,
	    const char *addr, uint64_t now);

struct anomaly_stats {
	uint64_t	entries;		/* slots in the table */
	uint64_t	tracked;		/* addresses seen within two windows */
	uint64_t	suspected[ANOMALY_KINDS];	/* flagged now, by kind */
	uint64_t	raised[ANOMALY_KINDS];		/* alarms raised so far */
};
/* Scans the table: for scrapes and fastauthctl. */
void	anomaly_stats(struct anomaly *, const struct anomaly_params *, uint64_t now,
	    struct anomaly_stats *);

/* --- latency -------------------------------------------------------------- */

/*
 * Take the latency evaluation due every period_us: 1 for the one caller in
 * the host that should evaluate now, else 0.
 */
int	anomaly_latency_due(struct anomaly *, uint64_t now, uint64_t period_us);
/*
 * Feed endpoint ep's cumulative histogram (nb buckets, bounds in us, the last
 * +Inf). The recent p95 is taken from the growth since the previous call;
 * with at least min_count requests, it is compared with the endpoint's
 * baseline (an EWMA of earlier windows' p95): above factor x baseline and
 * floor_us it is anomalous. 1 when the endpoint has just become anomalous
 * (raise an event), else 0.
 */
int	anomaly_latency_feed(struct anomaly *, unsigned ep, const uint64_t *cum,
	    const uint64_t *bounds_us, unsigned nb, uint64_t min_count,
	    double factor, uint64_t floor_us, uint64_t *p95_us);
struct anomaly_latency {
	uint64_t	baseline_us;	/* EWMA of p95, 0 = none yet */
	uint64_t	recent_us;	/* p95 of the last window with enough requests */
	int		anomalous;	/* 1 while recent is far above baseline */
};
void	anomaly_latency_get(struct anomaly *, unsigned ep, struct anomaly_latency *);

/* --- for shm.c ------------------------------------------------------------ */

/* Entries after rounding up to 4 x 2^k (0 if out of range: 16..2^20). */
uint64_t anomaly_region_entries(uint32_t entries);
size_t	anomaly_region_size(uint32_t entries);
void	anomaly_region_init(void *base, uint32_t entries);
struct anomaly *anomaly_view_new(void *base, unsigned hashalg,
	    const uint8_t *hashkey);
void	anomaly_view_free(struct anomaly *);

#endif
