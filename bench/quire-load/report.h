/*
 * report.h - results as one JSON object per line, appended to the --json
 * file (JSON Lines), plus the figures every mode prints (latency
 * percentiles from a ql_hist, the load average).
 */
#ifndef QL_REPORT_H
#define QL_REPORT_H

#include <stddef.h>
#include <stdint.h>

#include "hist.h"

typedef struct ql_json {
	char *buf;
	size_t len, cap;
	int n;
} ql_json;

void ql_json_begin(ql_json *j, const char *mode);
void ql_json_num(ql_json *j, const char *key, double v);
void ql_json_int(ql_json *j, const char *key, int64_t v);
void ql_json_str(ql_json *j, const char *key, const char *v);
/* "<prefix>_p50_ms", _p95_ms, _p99_ms, _max_ms, _mean_ms, _samples. */
void ql_json_hist(ql_json *j, const char *prefix, const ql_hist *h);
/* Close the object and append it as one line to path (NULL: just free).
 * 0 or -1. */
int ql_json_end(ql_json *j, const char *path);

/* Print "label: p50 X ms, p95 ..., p99 ..., max ... (n samples)". */
void ql_print_hist(const char *label, const ql_hist *h);

#endif
