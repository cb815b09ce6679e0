/*
 * hist.c -- log-linear histogram (see hist.h).
 *
 * Bucket layout: values below 2 * HIST_SUB land in buckets 0..2*HIST_SUB-1
 * exactly. Above, a value with its top bit at position msb is shifted right
 * by (msb - HIST_SUB_BITS), leaving a sub-bucket number in [HIST_SUB,
 * 2*HIST_SUB); each further power of two adds HIST_SUB buckets. The layout
 * is the same on every thread, so merging is adding arrays.
 */
#include <string.h>

#include "load/hist.h"

void
hist_init(struct hist *h)
{
	memset(h, 0, sizeof *h);
	h->min = UINT64_MAX;
}

unsigned
hist_index(uint64_t v)
{
	unsigned msb, shift;

	if (v >= (uint64_t)1 << HIST_MAX_BITS)
		v = ((uint64_t)1 << HIST_MAX_BITS) - 1;
	if (v < 2 * HIST_SUB)
		return (unsigned)v;
	msb = 63 - (unsigned)__builtin_clzll(v);
	shift = msb - HIST_SUB_BITS;
	return (shift + 1) * HIST_SUB + (unsigned)((v >> shift) - HIST_SUB);
}

uint64_t
hist_bucket_high(unsigned idx)
{
	unsigned shift;
	uint64_t sub;

	if (idx < 2 * HIST_SUB)
		return idx;
	shift = idx / HIST_SUB - 1;
	sub = HIST_SUB + idx % HIST_SUB;
	return ((sub + 1) << shift) - 1;
}

void
hist_record(struct hist *h, uint64_t v)
{
	h->counts[hist_index(v)]++;
	h->total++;
	h->sum += (double)v;
	if (v < h->min)
		h->min = v;
	if (v > h->max)
		h->max = v;
}

void
hist_merge(struct hist *dst, const struct hist *src)
{
	unsigned i;

	if (src->total == 0)
		return;
	for (i = 0; i < HIST_BUCKETS; i++)
		dst->counts[i] += src->counts[i];
	dst->total += src->total;
	dst->sum += src->sum;
	if (src->min < dst->min)
		dst->min = src->min;
	if (src->max > dst->max)
		dst->max = src->max;
}

uint64_t
hist_quantile(const struct hist *h, double q)
{
	uint64_t rank, seen = 0, v;
	unsigned i;

	if (h->total == 0)
		return 0;
	if (q <= 0)
		return h->min;
	if (q >= 1)
		return h->max;
	/* The smallest rank r with r >= q * total (1-based). */
	rank = (uint64_t)((double)h->total * q);
	if ((double)rank < (double)h->total * q)
		rank++;
	if (rank == 0)
		rank = 1;
	for (i = 0; i < HIST_BUCKETS; i++) {
		seen += h->counts[i];
		if (seen >= rank) {
			v = hist_bucket_high(i);
			return v > h->max ? h->max : v;
		}
	}
	return h->max;
}

double
hist_mean(const struct hist *h)
{
	return h->total ? h->sum / (double)h->total : 0;
}
