/*
 * mode_docs.c - `docs`: many-document throughput. D documents with K
 * writers each (full replicas); every writer makes E random edits (inserts
 * of 1-4 letters, one in five a delete of 1-3 code points, at random
 * positions) as fast as it can with at most W edits not yet acked, one
 * Update per edit. Reported: edits acked per second in total, edit
 * deliveries per second (each edit reaches the K - 1 other writers of its
 * document), and the latency percentiles of both (send -> Ack, send ->
 * receipt by another writer).
 *
 * A receiver maps an op to its edit through the op's id: writer w's
 * replica id carries w + 1 in its low 32 bits, and writer w's edit i ends
 * at counter cum[i], so an op (counter c, len l) completes every edit of w
 * with cum[i] <= c + l (ops of one replica arrive in counter order).
 */
#include "modes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hist.h"
#include "proc.h"
#include "report.h"

typedef struct dw {
	uint64_t *cum;
	int64_t *sent_ns;
	size_t sent, acked;
	size_t *prog; /* per writer of the same document: next edit not yet received */
	uint64_t units;
} dw;

typedef struct dctx {
	dw *w;
	size_t n, k, edits;
	ql_hist ack, lat;
	uint64_t deliveries, acks, rate_limited, errors;
	int64_t last_event;
} dctx;

static void d_changes(ql_client *c, const wire_server_msg *m, uint64_t units)
{
	(void)units;
	dctx *x = c->user;
	int64_t now = ql_now_ns();
	size_t base = (c->idx / x->k) * x->k;
	dw *me = &x->w[c->idx];
	for (size_t i = 0; i < crdt_batch_count(m->ops); i++) {
		const crdt_op *op = crdt_batch_get(m->ops, i);
		uint64_t s = (op->id.replica & 0xffffffffu) - 1;
		if (s < base || s >= base + x->k || s >= x->n)
			continue;
		dw *from = &x->w[s];
		size_t *p = &me->prog[s - base];
		uint64_t end = (uint64_t)op->id.counter + op->len;
		while (*p < from->sent && from->cum[*p] <= end) {
			int64_t d = now - from->sent_ns[*p];
			ql_hist_add(&x->lat, d > 0 ? (uint64_t)d / 1000 : 0);
			(*p)++;
			x->deliveries++;
		}
	}
	x->last_event = now;
}

static void d_ack(ql_client *c, uint64_t batch, uint64_t seq)
{
	(void)seq;
	dctx *x = c->user;
	dw *me = &x->w[c->idx];
	if (batch >= 1 && batch <= me->sent && batch > me->acked) {
		int64_t now = ql_now_ns(), d = now - me->sent_ns[batch - 1];
		ql_hist_add(&x->ack, d > 0 ? (uint64_t)d / 1000 : 0);
		me->acked = (size_t)batch;
		x->acks++;
		x->last_event = now;
	}
}

static void d_error(ql_client *c, const wire_server_msg *m)
{
	dctx *x = c->user;
	if (m->error.code == WIRE_ERR_RATE_LIMITED)
		x->rate_limited++;
	if (x->errors++ < 3)
		fprintf(stderr, "quire-load: docs: writer %u got Error %s: %.*s\n", c->idx,
			wire_error_code_name(m->error.code), (int)m->error.message_len,
			m->error.message ? m->error.message : "");
}

static const ql_client_ops docs_ops = {.changes = d_changes, .ack = d_ack, .error = d_error};

static uint64_t random_edit(ql_client *c, uint64_t *rng)
{
	size_t len = crdt_doc_length(c->doc);
	crdt_batch *b = crdt_batch_new(NULL);
	if (b == NULL)
		return 0;
	uint64_t r = ql_rand(rng);
	if (len > 0 && r % 5 == 0) {
		size_t pos = (size_t)((r >> 8) % len), most = len - pos < 3 ? len - pos : 3;
		crdt_doc_delete(c->doc, pos, 1 + (size_t)((r >> 40) % most), b);
	} else {
		char text[4];
		size_t n = 1 + (size_t)((r >> 4) % 4);
		for (size_t i = 0; i < n; i++)
			text[i] = (char)('a' + (r >> (10 + 5 * i)) % 26);
		crdt_doc_insert(c->doc, (size_t)((r >> 32) % (len + 1)), text, n, b);
	}
	uint64_t units = 0;
	for (size_t i = 0; i < crdt_batch_count(b); i++)
		units += crdt_batch_get(b, i)->len;
	ql_client_edit(c, b);
	return units;
}

int ql_mode_docs(const ql_opts *o)
{
	ql_raise_nofile();
	dctx x;
	memset(&x, 0, sizeof x);
	size_t d = o->docs > 0 ? (size_t)o->docs : 1;
	x.k = o->writers_per_doc > 0 ? (size_t)o->writers_per_doc : 1;
	x.n = d * x.k;
	x.edits = (size_t)o->edits;
	size_t window = o->window > 0 ? (size_t)o->window : 1;
	double limit = o->timeout > 0 ? o->timeout : 120;
	x.w = calloc(x.n, sizeof *x.w);
	ql_client *cl = calloc(x.n, sizeof *cl);
	ql_client **ptr = calloc(x.n, sizeof *ptr);
	char(*ids)[64] = calloc(d, sizeof *ids);
	ql_net net;
	uint64_t rng = o->seed;
	int rc = 1;
	if (!x.w || !cl || !ptr || !ids || ql_net_init(&net, o->port, (int)o->n_src, o->seed)) {
		fprintf(stderr, "quire-load: out of memory\n");
		return 1;
	}
	uint64_t run = ql_rand(&rng);
	for (size_t i = 0; i < d; i++)
		snprintf(ids[i], sizeof ids[i], "%sdocs-%08llx-%zu", o->prefix ? o->prefix : "",
			 (unsigned long long)(run & 0xffffffffu), i);
	for (size_t i = 0; i < x.n; i++) {
		uint64_t rep = (ql_rand(&rng) & 0xffffffff00000000ull) | (uint64_t)(i + 1);
		x.w[i].cum = calloc(x.edits + 1, sizeof *x.w[i].cum);
		x.w[i].sent_ns = calloc(x.edits + 1, sizeof *x.w[i].sent_ns);
		x.w[i].prog = calloc(x.k, sizeof *x.w[i].prog);
		if (!x.w[i].cum || !x.w[i].sent_ns || !x.w[i].prog ||
		    ql_client_init(&cl[i], &net, &docs_ops, ids[i / x.k], rep, true) != 0) {
			fprintf(stderr, "quire-load: out of memory\n");
			goto out;
		}
		cl[i].user = &x;
		cl[i].idx = (uint32_t)i;
		ptr[i] = &cl[i];
	}
	double load0 = ql_loadavg();
	size_t failed = 0;
	size_t ok = ql_connect_all(&net, ptr, x.n, (size_t)o->batch,
				   ql_now_ns() + 120 * 1000000000LL, NULL, NULL, &failed);
	printf("docs: %zu documents x %zu writers: %zu joined, %zu failed\n", d, x.k, ok, failed);
	int64_t t0 = ql_now_ns(), deadline = t0 + (int64_t)(limit * 1e9);
	uint64_t want_deliveries = (uint64_t)x.n * (x.k - 1) * x.edits;
	while (ql_now_ns() < deadline) {
		bool all_acked = true;
		for (size_t i = 0; i < x.n; i++) {
			dw *w = &x.w[i];
			while (w->sent < x.edits && w->sent - w->acked < window &&
			       ql_client_ready(&cl[i])) {
				w->units += random_edit(&cl[i], &rng);
				w->cum[w->sent] = w->units;
				w->sent_ns[w->sent] = ql_now_ns();
				w->sent++;
			}
			all_acked = all_acked && (w->acked == x.edits || !ql_client_ready(&cl[i]));
		}
		if (all_acked && x.deliveries >= want_deliveries)
			break;
		ql_net_poll(&net, 1);
	}
	int64_t t_end = x.last_event > t0 ? x.last_event : ql_now_ns();
	double dur = (double)(t_end - t0) / 1e9;
	double load1 = ql_loadavg();
	printf("docs: %llu edits acked in %.2f s: %.0f edits/s acked, %llu of %llu deliveries: "
	       "%.0f "
	       "deliveries/s (window %zu)\n",
	       (unsigned long long)x.acks, dur, dur > 0 ? (double)x.acks / dur : 0,
	       (unsigned long long)x.deliveries, (unsigned long long)want_deliveries,
	       dur > 0 ? (double)x.deliveries / dur : 0, window);
	ql_print_hist("  ack latency (send -> Ack)", &x.ack);
	ql_print_hist("  delivery latency (send -> other writers)", &x.lat);
	if (x.rate_limited)
		printf("  %llu Updates were RATE_LIMITED: run quire-server with --max-msgs-per-s 0 "
		       "--max-bytes-per-s 0 for this mode\n",
		       (unsigned long long)x.rate_limited);
	printf("  load average: %.2f before, %.2f after\n", load0, load1);
	ql_json j;
	ql_json_begin(&j, "docs");
	ql_json_int(&j, "docs", (int64_t)d);
	ql_json_int(&j, "writers_per_doc", (int64_t)x.k);
	ql_json_int(&j, "edits_per_writer", (int64_t)x.edits);
	ql_json_int(&j, "window", (int64_t)window);
	ql_json_int(&j, "joined", (int64_t)ok);
	ql_json_int(&j, "edits_acked", (int64_t)x.acks);
	ql_json_num(&j, "duration_s", dur);
	ql_json_num(&j, "edits_acked_per_s", dur > 0 ? (double)x.acks / dur : 0);
	ql_json_int(&j, "deliveries", (int64_t)x.deliveries);
	ql_json_num(&j, "deliveries_per_s", dur > 0 ? (double)x.deliveries / dur : 0);
	ql_json_hist(&j, "ack", &x.ack);
	ql_json_hist(&j, "latency", &x.lat);
	ql_json_int(&j, "errors", (int64_t)x.errors);
	ql_json_num(&j, "loadavg_before", load0);
	ql_json_num(&j, "loadavg_after", load1);
	ql_json_end(&j, o->json);
	rc = (x.acks == (uint64_t)x.n * x.edits && x.deliveries == want_deliveries) ? 0 : 1;
out:
	for (size_t i = 0; i < x.n; i++) {
		ql_client_free(&cl[i]);
		free(x.w[i].cum);
		free(x.w[i].sent_ns);
		free(x.w[i].prog);
	}
	ql_net_free(&net);
	free(x.w);
	free(cl);
	free(ptr);
	free(ids);
	return rc;
}
