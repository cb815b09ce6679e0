/*
 * hist.h -- a log-linear latency histogram in the manner of HdrHistogram:
 * exact below 256, then 128 sub-buckets per power of two (relative error
 * under 0.8%), values up to 2^36 (microseconds: 19 hours; larger ones are
 * clamped). Fixed size, no allocation: one per thread and per figure, merged
 * at the end by adding counts.
 */
#ifndef HIST_H
#define HIST_H

#include <stdint.h>

#define HIST_SUB_BITS	7
#define HIST_SUB	(1u << HIST_SUB_BITS)		/* sub-buckets per power of two */
#define HIST_MAX_BITS	36
#define HIST_BUCKETS	((HIST_MAX_BITS - HIST_SUB_BITS + 1) * HIST_SUB)

struct hist {
	uint64_t	counts[HIST_BUCKETS];
	uint64_t	total;		/* values recorded */
	uint64_t	min;		/* smallest value recorded (UINT64_MAX if none) */
	uint64_t	max;		/* largest value recorded, exact (0 if none) */
	double		sum;		/* of the values, for the mean */
};

void		hist_init(struct hist *);
/* Record one value (any unit; fastauth-load uses microseconds). */
void		hist_record(struct hist *, uint64_t v);
/* Add every count of src to dst. */
void		hist_merge(struct hist *dst, const struct hist *src);
/*
 * The value at quantile q (0 < q <= 1): the highest value equivalent to the
 * bucket holding the q-th recorded value, never above the exact maximum;
 * 0 when empty.
 */
uint64_t	hist_quantile(const struct hist *, double q);
double		hist_mean(const struct hist *);
/* Bucket index of v and the highest value that bucket holds (for tests). */
unsigned	hist_index(uint64_t v);
uint64_t	hist_bucket_high(unsigned idx);

#endif
