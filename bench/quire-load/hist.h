/*
 * hist.h - a latency histogram of fixed size: exact below 1,024 us, then
 * 64 sub-buckets per power of two (under 1.6% error), up to ~2^40 us.
 * Millions of samples (edits x observers) cost no memory; percentiles are
 * read from the buckets and reported as the bucket's upper bound.
 */
#ifndef QL_HIST_H
#define QL_HIST_H

#include <stdint.h>

#define QL_HIST_BUCKETS (1024 + 31 * 64)

typedef struct ql_hist {
	uint64_t count;
	uint64_t max_us;
	double sum_us;
	uint64_t b[QL_HIST_BUCKETS];
} ql_hist;

void ql_hist_add(ql_hist *h, uint64_t us);
/* The value (us) at quantile q (0..1); 0 when empty. */
uint64_t ql_hist_quantile(const ql_hist *h, double q);

#endif
