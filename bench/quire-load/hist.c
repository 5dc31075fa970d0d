/*
 * hist.c - the log-linear latency histogram (hist.h).
 */
#include "hist.h"

static unsigned idx(uint64_t us)
{
	if (us < 1024)
		return (unsigned)us;
	unsigned e = 63u - (unsigned)__builtin_clzll(us); /* >= 10 */
	unsigned sub = (unsigned)((us >> (e - 6)) & 63);
	unsigned i = 1024 + (e - 10) * 64 + sub;
	return i < QL_HIST_BUCKETS ? i : QL_HIST_BUCKETS - 1;
}

static uint64_t upper(unsigned i)
{
	if (i < 1024)
		return i;
	unsigned e = 10 + (i - 1024) / 64, sub = (i - 1024) % 64;
	return ((uint64_t)(64 + sub + 1) << (e - 6)) - 1;
}

void ql_hist_add(ql_hist *h, uint64_t us)
{
	h->b[idx(us)]++;
	h->count++;
	h->sum_us += (double)us;
	if (us > h->max_us)
		h->max_us = us;
}

uint64_t ql_hist_quantile(const ql_hist *h, double q)
{
	if (h->count == 0)
		return 0;
	uint64_t want = (uint64_t)(q * (double)h->count);
	if (want >= h->count)
		want = h->count - 1;
	uint64_t seen = 0;
	for (unsigned i = 0; i < QL_HIST_BUCKETS; i++) {
		seen += h->b[i];
		if (seen > want) {
			uint64_t u = upper(i);
			return u < h->max_us ? u : h->max_us;
		}
	}
	return h->max_us;
}
