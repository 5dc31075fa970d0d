/*
 * report.c - JSON Lines results and percentile printing (report.h). Keys
 * and string values are ours (ASCII), escaped anyway for safety.
 */
#include "report.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void put(ql_json *j, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char tmp[512];
	int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof tmp)
		n = sizeof tmp - 1;
	if (j->len + (size_t)n + 1 > j->cap) {
		size_t c = j->cap ? j->cap * 2 : 1024;
		while (c < j->len + (size_t)n + 1)
			c *= 2;
		char *b = realloc(j->buf, c);
		if (b == NULL)
			return;
		j->buf = b;
		j->cap = c;
	}
	memcpy(j->buf + j->len, tmp, (size_t)n + 1);
	j->len += (size_t)n;
}

static void key(ql_json *j, const char *k) { put(j, "%s\"%s\":", j->n++ ? "," : "", k); }

void ql_json_begin(ql_json *j, const char *mode)
{
	memset(j, 0, sizeof *j);
	put(j, "{");
	ql_json_str(j, "mode", mode);
}

void ql_json_num(ql_json *j, const char *k, double v)
{
	key(j, k);
	if (v != v)
		put(j, "null");
	else
		put(j, "%.6g", v);
}

void ql_json_int(ql_json *j, const char *k, int64_t v)
{
	key(j, k);
	put(j, "%lld", (long long)v);
}

void ql_json_str(ql_json *j, const char *k, const char *v)
{
	key(j, k);
	put(j, "\"");
	for (const char *p = v; *p; p++) {
		unsigned char c = (unsigned char)*p;
		if (c == '"' || c == '\\')
			put(j, "\\%c", c);
		else if (c < 0x20)
			put(j, "\\u%04x", c);
		else
			put(j, "%c", c);
	}
	put(j, "\"");
}

void ql_json_hist(ql_json *j, const char *prefix, const ql_hist *h)
{
	char k[64];
	static const struct {
		const char *name;
		double q;
	} qs[] = {{"p50", 0.50}, {"p95", 0.95}, {"p99", 0.99}};
	for (size_t i = 0; i < sizeof qs / sizeof qs[0]; i++) {
		snprintf(k, sizeof k, "%s_%s_ms", prefix, qs[i].name);
		ql_json_num(j, k, (double)ql_hist_quantile(h, qs[i].q) / 1000.0);
	}
	snprintf(k, sizeof k, "%s_max_ms", prefix);
	ql_json_num(j, k, (double)h->max_us / 1000.0);
	snprintf(k, sizeof k, "%s_mean_ms", prefix);
	ql_json_num(j, k, h->count ? h->sum_us / (double)h->count / 1000.0 : 0);
	snprintf(k, sizeof k, "%s_samples", prefix);
	ql_json_int(j, k, (int64_t)h->count);
}

int ql_json_end(ql_json *j, const char *path)
{
	put(j, "}");
	int rc = 0;
	if (path != NULL && j->buf != NULL) {
		FILE *f = fopen(path, "a");
		if (f == NULL || fprintf(f, "%s\n", j->buf) < 0)
			rc = -1;
		if (f != NULL && fclose(f) != 0)
			rc = -1;
		if (rc != 0)
			fprintf(stderr, "quire-load: cannot append to %s\n", path);
	}
	free(j->buf);
	memset(j, 0, sizeof *j);
	return rc;
}

void ql_print_hist(const char *label, const ql_hist *h)
{
	printf("%s: p50 %.2f ms, p95 %.2f ms, p99 %.2f ms, max %.2f ms, mean %.2f ms (%llu "
	       "samples)\n",
	       label, (double)ql_hist_quantile(h, 0.50) / 1000.0,
	       (double)ql_hist_quantile(h, 0.95) / 1000.0,
	       (double)ql_hist_quantile(h, 0.99) / 1000.0, (double)h->max_us / 1000.0,
	       h->count ? h->sum_us / (double)h->count / 1000.0 : 0, (unsigned long long)h->count);
}
