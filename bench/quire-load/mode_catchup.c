/*
 * mode_catchup.c - `catchup`: reconnect catch-up (scenario S4 of the
 * side-by-side benchmark, BENCHMARKS.md) with C clients, so the figure is
 * the server's part plus a raw loopback connect, without the node
 * harness's own WebSocket setup.
 *
 * Each round uses a fresh document and three sessions: a writer (a
 * replica), a sentinel (a counter of op units) and an observer (a replica,
 * so it really applies the snapshot or the Changes it is sent). The writer
 * types trace edits [0, P), one Update per edit, at most W not yet acked
 * (as `rate` does); once the observer and the sentinel have all of them,
 * the observer drops its connection (keeping replica and last_seq) and the
 * writer types edits [P, P + G), until the sentinel has them all (so the
 * server has committed them) and every one is acked (so the server is
 * quiet), and --pause-ms more pass (a client rarely comes back the instant
 * the last change lands; the node harness polls every 20 ms). Then the
 * observer reconnects and is timed on one CLOCK_MONOTONIC:
 *
 *   t0        before ql_client_connect (TCP connect + WebSocket handshake)
 *   open      the handshake answered (seen after the epoll turn that
 *             handled it; Hello{last_seq} is sent in that turn)
 *   Welcome   the Welcome decoded (its snapshot not yet loaded)
 *   live      the replica has applied everything up to the Welcome's
 *             head_seq and holds every op unit the writer made
 *
 * Recorded per round: live - t0 and the phases, the payload bytes and the
 * messages the observer received on that connection, and whether the
 * Welcome carried a snapshot. The observer's text must then equal the
 * writer's; a mismatch, a protocol anomaly or a step that does not finish
 * before --timeout fails the run (exit 1).
 */
#include "modes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proc.h"
#include "report.h"

typedef struct cu_run {
	ql_net *net;
	const trace *t;
	ql_client w, s, ob; /* writer, sentinel, observer */
	size_t patch;	    /* next trace patch */
	size_t typed;	    /* edits typed this round */
	size_t window;
	/* the timed reconnect */
	bool timing;
	uint64_t want;	/* the writer's op units */
	uint64_t msgs;	/* messages the observer decoded since t0 */
	int64_t t_open; /* 0 until the handshake was seen done */
	int64_t t_live;
	uint64_t rate_limited;
} cu_run;

/* One round's figures, in ms from t0. */
typedef struct cu_round {
	double open_ms, welcome_ms, live_ms;
	uint64_t bytes, msgs;
	bool snapshot, converged;
} cu_round;

static bool caught_up(const ql_client *c, crdt_replica writer, uint64_t want)
{
	return c->welcomed && c->live && crdt_doc_seen(c->doc, writer) >= want;
}

static void ob_message(ql_client *c)
{
	cu_run *x = c->user;
	if (!x->timing)
		return;
	x->msgs++;
	if (x->t_open == 0 && c->welcomed)
		x->t_open = c->t_welcome; /* the handshake was never seen apart */
	if (x->t_live == 0 && caught_up(c, x->w.replica, x->want))
		x->t_live = ql_now_ns();
}

static void ob_welcome(ql_client *c) { ob_message(c); }

static void ob_changes(ql_client *c, const wire_server_msg *m, uint64_t units)
{
	(void)m;
	(void)units;
	ob_message(c);
}

static void any_error(ql_client *c, const wire_server_msg *m)
{
	cu_run *x = c->user;
	if (m->error.code == WIRE_ERR_RATE_LIMITED && x->rate_limited++ > 0)
		return;
	fprintf(stderr, "quire-load: catchup: %s got Error %s: %.*s\n",
		c == &x->w   ? "the writer"
		: c == &x->s ? "the sentinel"
			     : "the observer",
		wire_error_code_name(m->error.code), (int)m->error.message_len,
		m->error.message ? m->error.message : "");
}

static const ql_client_ops writer_ops = {.error = any_error};
static const ql_client_ops sentinel_ops = {.error = any_error};
static const ql_client_ops observer_ops = {
	.welcome = ob_welcome, .changes = ob_changes, .error = any_error};

/* Type trace edits until `upto` are typed, one Update each, with at most
 * `window` unacknowledged: the writer's pending list is exactly those.
 * -1 when a patch does not apply. */
static int type_until(cu_run *x, size_t upto)
{
	ql_client *w = &x->w;
	while (x->typed < upto && w->n_pend < x->window && ql_client_ready(w) &&
	       x->patch < x->t->n_patches) {
		const trace_patch *p = &x->t->patches[x->patch++];
		if (p->del == 0 && p->ins_bytes == 0)
			continue;
		uint64_t u = 0;
		crdt_batch *b = ql_trace_edit(w->doc, x->t, p, &u);
		if (b == NULL) {
			fprintf(stderr, "quire-load: trace patch %zu does not apply\n",
				x->patch - 1);
			return -1;
		}
		ql_client_edit(w, b);
		x->typed++;
	}
	return 0;
}

/* Type up to edit `upto` and wait until every edit is acked and the
 * sentinel (and the observer, when it is connected) has all of it. */
static int type_and_settle(cu_run *x, size_t upto, bool observer, int64_t deadline,
			   const char *step)
{
	for (;;) {
		if (type_until(x, upto) != 0)
			return -1;
		uint64_t want = crdt_doc_seen(x->w.doc, x->w.replica);
		if (x->typed == upto && x->w.n_pend == 0 && x->s.units_in >= want &&
		    (!observer || caught_up(&x->ob, x->w.replica, want)))
			return 0;
		const ql_client *gone = !ql_client_ready(&x->w)		       ? &x->w
					: !ql_client_ready(&x->s)	       ? &x->s
					: observer && !ql_client_ready(&x->ob) ? &x->ob
									       : NULL;
		/* An Error (RATE_LIMITED above all) leaves a batch unacked for good. */
		if (x->w.errors + x->s.errors + x->ob.errors > 0) {
			fprintf(stderr, "quire-load: catchup: %s: the server sent an Error\n",
				step);
			return -1;
		}
		if (gone != NULL) {
			fprintf(stderr, "quire-load: catchup: %s: a connection closed: %s\n", step,
				gone->ws.why);
			return -1;
		}
		if (ql_now_ns() > deadline) {
			fprintf(stderr,
				"quire-load: catchup: %s: timed out (%zu typed, %zu unacked, "
				"sentinel %llu of %llu op units)\n",
				step, x->typed, x->w.n_pend, (unsigned long long)x->s.units_in,
				(unsigned long long)want);
			return -1;
		}
		ql_net_poll(x->net, 1); /* returns as soon as an event came */
	}
}

static bool same_text(const crdt_doc *a, const crdt_doc *b)
{
	size_t na = crdt_doc_utf8_bytes(a), nb = crdt_doc_utf8_bytes(b);
	if (na != nb || crdt_doc_length(a) != crdt_doc_length(b))
		return false;
	char *ta = malloc(na + 1), *tb = malloc(nb + 1);
	bool eq = ta != NULL && tb != NULL && crdt_doc_text(a, ta, na + 1) == na &&
		  crdt_doc_text(b, tb, nb + 1) == nb && memcmp(ta, tb, na) == 0;
	free(ta);
	free(tb);
	return eq;
}

/* One round on document doc_id: 0, or -1 (the reason is printed). */
static int one_round(cu_run *x, const char *doc_id, uint64_t *rng, size_t pre, size_t gap,
		     long pause_ms, int64_t deadline, cu_round *out)
{
	const trace *t = x->t;
	int rc = -1;
	x->patch = x->typed = 0;
	x->timing = false;
	/* All three initialised before any check, so `out` may free them all. */
	int bad = ql_client_init(&x->w, x->net, &writer_ops, doc_id, ql_replica_id(rng), true);
	bad |= ql_client_init(&x->s, x->net, &sentinel_ops, doc_id, ql_replica_id(rng), false);
	bad |= ql_client_init(&x->ob, x->net, &observer_ops, doc_id, ql_replica_id(rng), true);
	if (bad != 0) {
		fprintf(stderr, "quire-load: out of memory\n");
		goto out;
	}
	x->w.user = x->s.user = x->ob.user = x;
	ql_client *all[3] = {&x->w, &x->s, &x->ob};
	size_t failed = 0;
	if (ql_connect_all(x->net, all, 3, 3, deadline, NULL, NULL, &failed) != 3)
		goto out;
	/* The trace's start content (if any) is the first batch, untimed. */
	if (t->start_bytes > 0) {
		crdt_batch *b = crdt_batch_new(NULL);
		if (b == NULL || crdt_doc_insert(x->w.doc, 0, t->start, t->start_bytes, b) < 0) {
			crdt_batch_free(b);
			fprintf(stderr, "quire-load: the trace's start content does not apply\n");
			goto out;
		}
		ql_client_edit(&x->w, b);
	}
	if (type_and_settle(x, pre, true, deadline, "edits seen") != 0)
		goto out;
	ql_client_drop(&x->ob);
	if (type_and_settle(x, pre + gap, false, deadline, "edits missed") != 0)
		goto out;
	for (int64_t until = ql_now_ns() + pause_ms * 1000000; ql_now_ns() < until;)
		ql_net_poll(x->net, 1);

	x->want = crdt_doc_seen(x->w.doc, x->w.replica);
	x->msgs = 0;
	x->t_open = x->t_live = 0;
	uint64_t bytes0 = x->ob.ws.bytes_in;
	uint32_t snaps0 = x->ob.snapshots;
	x->timing = true;
	int64_t t0 = ql_now_ns();
	if (ql_client_connect(&x->ob) != 0) {
		fprintf(stderr, "quire-load: catchup: reconnect failed: %s\n", x->ob.ws.why);
		goto out;
	}
	while (x->t_live == 0) {
		if (x->ob.ws.state == QL_WS_CLOSED) {
			fprintf(stderr,
				"quire-load: catchup: the observer's reconnect closed: %s\n",
				x->ob.ws.why);
			goto out;
		}
		if (ql_now_ns() > deadline) {
			fprintf(stderr, "quire-load: catchup: the reconnect timed out (%s)\n",
				x->ob.welcomed ? "welcomed, not live" : "no Welcome");
			goto out;
		}
		ql_net_poll(x->net, 1);
		if (x->t_open == 0 && x->ob.ws.state == QL_WS_OPEN)
			x->t_open = ql_now_ns();
	}
	x->timing = false;
	out->open_ms = (double)(x->t_open - t0) / 1e6;
	out->welcome_ms = (double)(x->ob.t_welcome - t0) / 1e6;
	out->live_ms = (double)(x->t_live - t0) / 1e6;
	out->bytes = x->ob.ws.bytes_in - bytes0;
	out->msgs = x->msgs;
	out->snapshot = x->ob.snapshots > snaps0;
	out->converged = same_text(x->ob.doc, x->w.doc);
	uint32_t anomalies = x->ob.gaps + x->ob.apply_errors + x->ob.errors + x->s.gaps +
			     x->s.apply_errors + x->s.errors + x->w.errors;
	if (anomalies > 0) {
		fprintf(stderr,
			"quire-load: catchup: protocol anomalies: observer %u gaps, %u refused "
			"ops, %u errors; sentinel %u/%u/%u; writer %u errors\n",
			x->ob.gaps, x->ob.apply_errors, x->ob.errors, x->s.gaps, x->s.apply_errors,
			x->s.errors, x->w.errors);
		goto out;
	}
	rc = 0;
out:
	x->timing = false;
	ql_client_free(&x->w);
	ql_client_free(&x->s);
	ql_client_free(&x->ob);
	return rc;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* Nearest-rank quantile of v[0..n) (sorted in place); 0 when empty. */
static double quantile(double *v, size_t n, double q)
{
	if (n == 0)
		return 0;
	qsort(v, n, sizeof *v, cmp_double);
	size_t k = (size_t)(q * (double)n + 0.999999);
	return v[k == 0 ? 0 : (k > n ? n : k) - 1];
}

int ql_mode_catchup(const ql_opts *o)
{
	trace t;
	if (ql_trace_load_sequential(o->trace, &t) != 0)
		return 1;
	size_t rounds = o->rounds > 0 ? (size_t)o->rounds : 1;
	size_t pre = (size_t)o->pre, gap = (size_t)o->gap;
	size_t usable = 0;
	for (size_t i = 0; i < t.n_patches; i++)
		usable += t.patches[i].del > 0 || t.patches[i].ins_bytes > 0;
	if (pre + gap > usable) {
		fprintf(stderr, "quire-load: %s has %zu edits, fewer than --pre + --gap\n",
			o->trace, usable);
		trace_free(&t);
		return 2;
	}
	double limit = o->timeout > 0 ? o->timeout : 30.0 + 30.0 * (double)rounds;
	cu_round *res = calloc(rounds, sizeof *res);
	double *v = calloc(rounds, sizeof *v);
	cu_run *x = calloc(1, sizeof *x);
	ql_net net;
	int rc = 1;
	if (res == NULL || v == NULL || x == NULL ||
	    ql_net_init(&net, o->port, (int)o->n_src, o->seed) != 0) {
		fprintf(stderr, "quire-load: out of memory\n");
		free(res);
		free(v);
		free(x);
		trace_free(&t);
		return 1;
	}
	x->net = &net;
	x->t = &t;
	x->window = o->window > 0 ? (size_t)o->window : 1;
	uint64_t rng = o->seed;
	uint64_t run = ql_rand(&rng) & 0xffffffffu;
	const char *prefix = o->prefix ? o->prefix : "";
	printf("catchup: %s, %zu edits seen, %zu missed, window %zu, pause %ld ms, %zu rounds on "
	       "%scatchup-%08llx-<r>\n",
	       o->trace, pre, gap, x->window, o->pause_ms, rounds, prefix,
	       (unsigned long long)run);
	double load0 = ql_loadavg();
	int64_t deadline = ql_now_ns() + (int64_t)(limit * 1e9);
	size_t done = 0, converged = 0, snapshots = 0;
	for (size_t r = 0; r < rounds; r++) {
		char doc_id[96];
		snprintf(doc_id, sizeof doc_id, "%scatchup-%08llx-%zu", prefix,
			 (unsigned long long)run, r);
		cu_round *e = &res[r];
		if (one_round(x, doc_id, &rng, pre, gap, o->pause_ms, deadline, e) != 0) {
			fprintf(stderr, "quire-load: catchup: round %zu did not complete\n", r + 1);
			break;
		}
		done++;
		converged += e->converged;
		snapshots += e->snapshot;
		printf("  round %2zu: reconnect -> live %6.2f ms (handshake %.2f, Welcome %.2f), "
		       "%llu B in %llu message%s, %s%s\n",
		       r + 1, e->live_ms, e->open_ms, e->welcome_ms, (unsigned long long)e->bytes,
		       (unsigned long long)e->msgs, e->msgs == 1 ? "" : "s",
		       e->snapshot ? "snapshot" : "log catch-up",
		       e->converged ? "" : ", TEXT DIFFERS FROM THE WRITER'S");
	}
	double load1 = ql_loadavg();
#define COLLECT(expr)                                \
	do {                                         \
		for (size_t i = 0; i < done; i++) {  \
			const cu_round *e = &res[i]; \
			v[i] = (expr);               \
		}                                    \
	} while (0)
	COLLECT(e->live_ms);
	double p50 = quantile(v, done, 0.5), p90 = quantile(v, done, 0.9),
	       mx = quantile(v, done, 1.0), mn = done ? v[0] : 0;
	COLLECT(e->open_ms);
	double open50 = quantile(v, done, 0.5);
	COLLECT(e->welcome_ms);
	double welcome50 = quantile(v, done, 0.5);
	COLLECT(e->welcome_ms - e->open_ms);
	double hello50 = quantile(v, done, 0.5);
	COLLECT(e->live_ms - e->welcome_ms);
	double apply50 = quantile(v, done, 0.5);
	COLLECT((double)e->bytes);
	double bytes50 = quantile(v, done, 0.5);
	COLLECT((double)e->msgs);
	double msgs50 = quantile(v, done, 0.5);
#undef COLLECT
	printf("catchup: %zu/%zu rounds, %zu converged: reconnect -> live p50 %.2f ms, p90 %.2f "
	       "ms, max %.2f ms (min %.2f)\n",
	       done, rounds, converged, p50, p90, mx, mn);
	printf("  medians: handshake done %.2f ms, Welcome %.2f ms (Hello -> Welcome %.2f), live "
	       "%.2f ms (Welcome -> live %.2f); %.0f B, %.0f message(s); %zu of %zu Welcomes "
	       "carried a snapshot\n",
	       open50, welcome50, hello50, p50, apply50, bytes50, msgs50, snapshots, done);
	if (x->rate_limited)
		printf("  %llu Updates were RATE_LIMITED: run quire-server with --max-msgs-per-s 0 "
		       "--max-bytes-per-s 0 for this mode\n",
		       (unsigned long long)x->rate_limited);
	printf("  load average: %.2f before, %.2f after\n", load0, load1);
	ql_json j;
	ql_json_begin(&j, "catchup");
	ql_json_str(&j, "trace", o->trace);
	ql_json_int(&j, "rounds", (int64_t)rounds);
	ql_json_int(&j, "rounds_done", (int64_t)done);
	ql_json_int(&j, "pre", (int64_t)pre);
	ql_json_int(&j, "gap", (int64_t)gap);
	ql_json_int(&j, "window", (int64_t)x->window);
	ql_json_int(&j, "pause_ms", (int64_t)o->pause_ms);
	ql_json_num(&j, "catchup_p50_ms", p50);
	ql_json_num(&j, "catchup_p90_ms", p90);
	ql_json_num(&j, "catchup_max_ms", mx);
	ql_json_num(&j, "catchup_min_ms", mn);
	ql_json_num(&j, "open_p50_ms", open50);
	ql_json_num(&j, "welcome_p50_ms", welcome50);
	ql_json_num(&j, "hello_to_welcome_p50_ms", hello50);
	ql_json_num(&j, "welcome_to_live_p50_ms", apply50);
	ql_json_num(&j, "bytes_p50", bytes50);
	ql_json_num(&j, "messages_p50", msgs50);
	ql_json_int(&j, "snapshots", (int64_t)snapshots);
	ql_json_int(&j, "converged", (int64_t)converged);
	ql_json_num(&j, "loadavg_before", load0);
	ql_json_num(&j, "loadavg_after", load1);
	ql_json_end(&j, o->json);
	rc = done == rounds && converged == rounds ? 0 : 1;
	ql_net_free(&net);
	free(res);
	free(v);
	free(x);
	trace_free(&t);
	return rc;
}
