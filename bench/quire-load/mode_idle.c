/*
 * mode_idle.c - `idle`: open N sessions (batches of at most B handshakes in
 * flight), each joined to one of D documents (Hello, wait for Welcome),
 * hold them S seconds with a Ping every 20 s (the server drops a silent
 * connection after 60 s), and report the connect rate of every 1,000
 * connections (a slowdown as the count grows shows there), failures, what
 * is still open after the hold, and the server's RSS before / after
 * connecting / after the hold with the RSS per connection.
 */
#include "modes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proc.h"
#include "report.h"

typedef struct idle {
	int64_t t0, t_last;
	size_t last_k;
	double *rates; /* connections/s of each 1,000 */
	size_t n_rates;
	size_t closed;
} idle;

static void progress(void *ctx, size_t ok, int64_t now)
{
	idle *s = ctx;
	while ((ok / 1000) > s->last_k) {
		s->last_k++;
		double dt = (double)(now - s->t_last) / 1e9;
		s->rates[s->n_rates++] = dt > 0 ? 1000.0 / dt : 0;
		s->t_last = now;
	}
}

static void on_closed(ql_client *c)
{
	idle *s = c->user;
	if (c->welcomed || c->t_welcome)
		s->closed++;
}

static const ql_client_ops idle_ops = {.closed = on_closed};

int ql_mode_idle(const ql_opts *o)
{
	long lim = ql_raise_nofile();
	size_t n = (size_t)o->conns, d = o->docs > 0 ? (size_t)o->docs : 1;
	if (lim > 0 && (long)n + 64 > lim)
		fprintf(stderr,
			"quire-load: warning: %zu connections need more than the fd limit %ld\n", n,
			lim);
	idle s;
	memset(&s, 0, sizeof s);
	s.rates = calloc(n / 1000 + 2, sizeof *s.rates);
	ql_client *cl = calloc(n, sizeof *cl);
	ql_client **ptr = calloc(n, sizeof *ptr);
	char(*ids)[64] = calloc(d, sizeof *ids);
	ql_net net;
	uint64_t rng = o->seed;
	int rc = 1;
	if (!s.rates || !cl || !ptr || !ids || ql_net_init(&net, o->port, (int)o->n_src, o->seed)) {
		fprintf(stderr, "quire-load: out of memory\n");
		free(s.rates);
		free(cl);
		free(ptr);
		free(ids);
		return 1;
	}
	uint64_t run = ql_rand(&rng);
	for (size_t i = 0; i < d; i++)
		snprintf(ids[i], sizeof ids[i], "%sidle-%08llx-%zu", o->prefix ? o->prefix : "",
			 (unsigned long long)(run & 0xffffffffu), i);
	for (size_t i = 0; i < n; i++) {
		ql_client_init(&cl[i], &net, &idle_ops, ids[i % d], ql_replica_id(&rng), false);
		cl[i].user = &s;
		cl[i].idx = (uint32_t)i;
		ptr[i] = &cl[i];
	}
	pid_t pid = o->server_pid;
	double load0 = ql_loadavg();
	long rss0 = pid ? ql_proc_rss_kb(pid) : -1, fds0 = pid ? ql_proc_fds(pid) : -1;
	double limit = o->timeout > 0 ? o->timeout : 600;
	s.t0 = s.t_last = ql_now_ns();
	size_t failed = 0;
	size_t ok = ql_connect_all(&net, ptr, n, (size_t)o->batch, s.t0 + (int64_t)(limit * 1e9),
				   progress, &s, &failed);
	double conn_s = (double)(ql_now_ns() - s.t0) / 1e9;
	/* Let the server settle (its queues drain) before reading its RSS. */
	for (int64_t until = ql_now_ns() + 1000000000; ql_now_ns() < until;)
		ql_net_poll(&net, 50);
	long rss1 = pid ? ql_proc_rss_kb(pid) : -1, fds1 = pid ? ql_proc_fds(pid) : -1;
	long own1 = ql_proc_rss_kb(0);
	printf("idle: %zu of %zu connections joined %zu documents in %.2f s (%.0f/s), %zu failed\n",
	       ok, n, d, conn_s, conn_s > 0 ? (double)ok / conn_s : 0, failed);
	printf("  connect rate per 1,000 connections (connections/s):");
	for (size_t i = 0; i < s.n_rates; i++)
		printf("%s%zuk %.0f", i % 8 ? ", " : "\n    ", i + 1, s.rates[i]);
	printf("\n");
	size_t closed_before = s.closed;
	int64_t hold_end = ql_now_ns() + (int64_t)(o->hold * 1e9), next_ping = ql_now_ns();
	uint64_t nonce = 1;
	while (ql_now_ns() < hold_end) {
		if (ql_now_ns() >= next_ping) {
			for (size_t i = 0; i < n; i++)
				if (ql_client_ready(&cl[i]))
					ql_client_ping(&cl[i], nonce++);
			next_ping = ql_now_ns() + 20 * 1000000000LL;
		}
		ql_net_poll(&net, 100);
	}
	size_t open = 0;
	for (size_t i = 0; i < n; i++)
		open += ql_client_ready(&cl[i]);
	long rss2 = pid ? ql_proc_rss_kb(pid) : -1, fds2 = pid ? ql_proc_fds(pid) : -1;
	double load1 = ql_loadavg();
	double per1 = ok && rss0 >= 0 ? (double)(rss1 - rss0) * 1024.0 / (double)ok : 0;
	double per2 = open && rss0 >= 0 ? (double)(rss2 - rss0) * 1024.0 / (double)open : 0;
	printf("  after a %.0f s hold: %zu open, %zu closed during the hold\n", o->hold, open,
	       s.closed - closed_before);
	if (pid)
		printf("  server RSS: %.1f MiB before, %.1f after connecting, %.1f after the hold; "
		       "%.0f B/connection (%.0f after the hold); fds %ld / %ld / %ld\n",
		       rss0 / 1024.0, rss1 / 1024.0, rss2 / 1024.0, per1, per2, fds0, fds1, fds2);
	printf("  quire-load RSS %.1f MiB; load average %.2f before, %.2f after\n", own1 / 1024.0,
	       load0, load1);
	ql_json j;
	ql_json_begin(&j, "idle");
	ql_json_int(&j, "conns", (int64_t)n);
	ql_json_int(&j, "docs", (int64_t)d);
	ql_json_int(&j, "batch", o->batch);
	ql_json_int(&j, "joined", (int64_t)ok);
	ql_json_int(&j, "failed", (int64_t)failed);
	ql_json_num(&j, "connect_s", conn_s);
	ql_json_num(&j, "connect_per_s", conn_s > 0 ? (double)ok / conn_s : 0);
	char k[32];
	for (size_t i = 0; i < s.n_rates; i++) {
		snprintf(k, sizeof k, "rate_%zuk", i + 1);
		ql_json_num(&j, k, s.rates[i]);
	}
	ql_json_num(&j, "hold_s", o->hold);
	ql_json_int(&j, "open_after_hold", (int64_t)open);
	ql_json_int(&j, "server_rss_kb_before", rss0);
	ql_json_int(&j, "server_rss_kb_connected", rss1);
	ql_json_int(&j, "server_rss_kb_after_hold", rss2);
	ql_json_num(&j, "server_rss_bytes_per_conn", per1);
	ql_json_num(&j, "server_rss_bytes_per_conn_after_hold", per2);
	ql_json_int(&j, "server_fds_before", fds0);
	ql_json_int(&j, "server_fds_connected", fds1);
	ql_json_int(&j, "server_fds_after_hold", fds2);
	ql_json_int(&j, "own_rss_kb", own1);
	ql_json_num(&j, "loadavg_before", load0);
	ql_json_num(&j, "loadavg_after", load1);
	ql_json_end(&j, o->json);
	rc = (failed == 0 && open == n) ? 0 : 1;
	for (size_t i = 0; i < n; i++)
		ql_client_free(&cl[i]);
	ql_net_free(&net);
	free(s.rates);
	free(cl);
	free(ptr);
	free(ids);
	return rc;
}
