/*
 * mode_fanout.c - `fanout` and `rate`: one writer replica types the first
 * E edits of an editing trace into one document, N observers of the same
 * document count what reaches them.
 *
 *   fanout: edit i is sent at t0 + i / R (one Update per edit), so latency
 *           is measured at a fixed offered load.
 *   rate:   the writer sends as fast as it can with at most W edits not yet
 *           acked, so the figure is the server's ceiling in edit-deliveries
 *           per second (edits x observers reached).
 *
 * Latency of edit i at one observer = the time the observer decoded the
 * Changes that completed edit i - the time the writer handed edit i's
 * Update to the socket; one process, one CLOCK_MONOTONIC. Observers need no
 * engine: the writer's edit i ends at op unit cum[i] (every inserted or
 * deleted unit consumes one counter, PROTOCOL.md section 3) and ops reach
 * an observer in seq order, so edit i is complete there once the op units
 * it has counted reach cum[i]. The server sends the changes of one event
 * loop turn as one Changes message per member, so one message may complete
 * several edits; each is counted with its own send time.
 */
#include "modes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hist.h"
#include "proc.h"
#include "report.h"
#include "trace.h"

typedef struct fan {
	size_t n_obs, edits;
	uint64_t *cum;	  /* op units through edit i */
	int64_t *sent_ns; /* when edit i left */
	size_t sent, acked;
	size_t *next;  /* per observer: first edit not yet complete */
	uint64_t base; /* op units of the untimed start content */
	ql_hist lat, ack;
	int64_t first_send, last_send, last_delivery;
	uint64_t deliveries;
	uint32_t *per100ms; /* deliveries per 100 ms since first_send */
	size_t n_slots;
	size_t closed_obs;
	ql_client *writer;
} fan;

static void obs_changes(ql_client *c, const wire_server_msg *m, uint64_t units)
{
	(void)m;
	(void)units;
	fan *f = c->user;
	int64_t now = ql_now_ns();
	size_t *nx = &f->next[c->idx];
	uint64_t have = c->units_in;
	while (*nx < f->sent && have >= f->base + f->cum[*nx]) {
		int64_t d = now - f->sent_ns[*nx];
		ql_hist_add(&f->lat, d > 0 ? (uint64_t)d / 1000 : 0);
		(*nx)++;
		f->deliveries++;
		size_t slot = (size_t)((now - f->first_send) / 100000000);
		if (slot < f->n_slots)
			f->per100ms[slot]++;
	}
	f->last_delivery = now;
}

static void obs_closed(ql_client *c)
{
	fan *f = c->user;
	f->closed_obs++;
}

static void writer_ack(ql_client *c, uint64_t batch, uint64_t seq)
{
	(void)seq;
	fan *f = c->user;
	/* Batch k + 1 is edit k (batch 1 is the start content when there is
	 * one, which shifts nothing: acked counts timed edits). */
	size_t k = (size_t)batch;
	if (f->base > 0)
		k--;
	if (k >= 1 && k <= f->sent && k > f->acked) {
		int64_t d = ql_now_ns() - f->sent_ns[k - 1];
		ql_hist_add(&f->ack, d > 0 ? (uint64_t)d / 1000 : 0);
		f->acked = k;
	}
}

static void writer_error(ql_client *c, const wire_server_msg *m)
{
	(void)c;
	fprintf(stderr, "quire-load: writer got Error %s: %.*s\n",
		wire_error_code_name(m->error.code), (int)m->error.message_len,
		m->error.message ? m->error.message : "");
}

static const ql_client_ops obs_ops = {.changes = obs_changes, .closed = obs_closed};
static const ql_client_ops writer_ops = {.ack = writer_ack, .error = writer_error};

int ql_trace_load_sequential(const char *path, trace *t)
{
	char err[256];
	if (trace_load(path, t, err, sizeof err) != 0) {
		fprintf(stderr, "quire-load: %s\n", err);
		return -1;
	}
	if (t->concurrent) {
		fprintf(stderr, "quire-load: %s: a sequential trace is needed\n", path);
		trace_free(t);
		return -1;
	}
	return 0;
}

crdt_batch *ql_trace_edit(crdt_doc *doc, const trace *t, const trace_patch *p, uint64_t *units)
{
	crdt_batch *b = crdt_batch_new(NULL);
	if (b == NULL)
		return NULL;
	if (p->del > 0 && crdt_doc_delete(doc, p->pos, p->del, b) < 0)
		goto bad;
	if (p->ins_bytes > 0 &&
	    crdt_doc_insert(doc, p->pos, trace_patch_text(t, p), p->ins_bytes, b) < 0)
		goto bad;
	*units = 0;
	for (size_t i = 0; i < crdt_batch_count(b); i++)
		*units += crdt_batch_get(b, i)->len;
	return b;
bad:
	crdt_batch_free(b);
	return NULL;
}

static double peak_per_s(const fan *f)
{
	/* The best 1 s window (10 consecutive 100 ms slots). */
	double best = 0;
	for (size_t i = 0; i + 10 <= f->n_slots; i++) {
		uint64_t s = 0;
		for (size_t k = 0; k < 10; k++)
			s += f->per100ms[i + k];
		if ((double)s > best)
			best = (double)s;
	}
	return best;
}

int ql_mode_fanout(const ql_opts *o, int rate_mode)
{
	const char *mode = rate_mode ? "rate" : "fanout";
	ql_raise_nofile();
	trace t;
	if (ql_trace_load_sequential(o->trace, &t) != 0)
		return 1;
	fan f;
	memset(&f, 0, sizeof f);
	f.n_obs = (size_t)o->observers;
	f.edits = (size_t)o->edits;
	if (f.edits > t.n_patches)
		f.edits = t.n_patches;
	double limit = o->timeout > 0 ? o->timeout
		       : rate_mode    ? 120.0
				      : (double)f.edits / (o->rate > 0 ? o->rate : 1) + 60.0;
	f.cum = calloc(f.edits + 1, sizeof *f.cum);
	f.sent_ns = calloc(f.edits + 1, sizeof *f.sent_ns);
	f.next = calloc(f.n_obs + 1, sizeof *f.next);
	f.n_slots = (size_t)(limit * 10) + 20;
	f.per100ms = calloc(f.n_slots, sizeof *f.per100ms);
	ql_client *cl = calloc(f.n_obs + 1, sizeof *cl);
	ql_client **ptr = calloc(f.n_obs + 1, sizeof *ptr);
	ql_net net;
	uint64_t rng = o->seed;
	int rc = 1;
	if (!f.cum || !f.sent_ns || !f.next || !f.per100ms || !cl || !ptr ||
	    ql_net_init(&net, o->port, (int)o->n_src, o->seed) != 0) {
		fprintf(stderr, "quire-load: out of memory\n");
		goto out_nonet;
	}
	char doc_id[96];
	snprintf(doc_id, sizeof doc_id, "%s%s-%016llx", o->prefix ? o->prefix : "", mode,
		 (unsigned long long)ql_rand(&rng));
	double load0 = ql_loadavg();
	for (size_t i = 0; i < f.n_obs; i++) {
		ql_client_init(&cl[i], &net, &obs_ops, doc_id, ql_replica_id(&rng), false);
		cl[i].user = &f;
		cl[i].idx = (uint32_t)i;
		ptr[i] = &cl[i];
	}
	ql_client *w = &cl[f.n_obs];
	if (ql_client_init(w, &net, &writer_ops, doc_id, ql_replica_id(&rng), true) != 0)
		goto out;
	w->user = &f;
	f.writer = w;
	ptr[f.n_obs] = w;
	int64_t t_conn = ql_now_ns();
	size_t failed = 0;
	size_t ok = ql_connect_all(&net, ptr, f.n_obs + 1, (size_t)o->batch,
				   t_conn + (int64_t)(60 + f.n_obs / 50) * 1000000000, NULL, NULL,
				   &failed);
	double conn_s = (double)(ql_now_ns() - t_conn) / 1e9;
	printf("%s: %s, %zu observers + 1 writer connected in %.2f s (%zu failed), doc %s\n", mode,
	       o->trace, ok - (w->welcomed ? 1 : 0), conn_s, failed, doc_id);
	if (!w->welcomed) {
		fprintf(stderr, "quire-load: the writer could not join\n");
		goto out;
	}
	/* Untimed: the trace's start content, and wait until every observer has it. */
	if (t.start_bytes > 0) {
		crdt_batch *b = crdt_batch_new(NULL);
		crdt_doc_insert(w->doc, 0, t.start, t.start_bytes, b);
		for (size_t i = 0; i < crdt_batch_count(b); i++)
			f.base += crdt_batch_get(b, i)->len;
		ql_client_edit(w, b);
		int64_t until = ql_now_ns() + 30 * 1000000000LL;
		for (;;) {
			size_t behind = 0;
			for (size_t i = 0; i < f.n_obs; i++)
				behind += cl[i].welcomed && cl[i].units_in < f.base;
			if (behind == 0 || ql_now_ns() > until)
				break;
			ql_net_poll(&net, 5);
		}
	}
	size_t obs_live = 0;
	for (size_t i = 0; i < f.n_obs; i++)
		obs_live += cl[i].welcomed;
	/* Timed part. */
	int64_t t0 = ql_now_ns(), deadline = t0 + (int64_t)(limit * 1e9);
	int64_t interval = !rate_mode && o->rate > 0 ? (int64_t)(1e9 / o->rate) : 0;
	size_t window = o->window > 0 ? (size_t)o->window : 1;
	f.first_send = t0;
	uint64_t units_sent = 0;
	size_t done_obs = 0;
	size_t edit_i = 0; /* next trace patch */
	while (ql_now_ns() < deadline) {
		int64_t now = ql_now_ns();
		/* Send what is due. */
		while (f.sent < f.edits && ql_client_ready(w) && edit_i < t.n_patches) {
			if (rate_mode ? f.sent - f.acked >= window
				      : now < t0 + (int64_t)f.sent * interval)
				break;
			const trace_patch *p = &t.patches[edit_i++];
			if (p->del == 0 && p->ins_bytes == 0)
				continue;
			uint64_t u = 0;
			crdt_batch *b = ql_trace_edit(w->doc, &t, p, &u);
			if (b == NULL) {
				fprintf(stderr, "quire-load: trace patch %zu does not apply\n",
					edit_i - 1);
				goto out;
			}
			units_sent += u;
			f.cum[f.sent] = units_sent;
			f.sent_ns[f.sent] = ql_now_ns();
			f.sent++;
			ql_client_edit(w, b);
			f.last_send = ql_now_ns();
		}
		if (f.sent == f.edits && f.acked == f.edits) {
			done_obs = 0;
			for (size_t i = 0; i < f.n_obs; i++)
				done_obs += f.next[i] == f.edits || !cl[i].welcomed;
			if (done_obs == f.n_obs)
				break;
		}
		if (!ql_client_ready(w)) {
			fprintf(stderr, "quire-load: the writer's connection closed: %s\n",
				w->ws.why);
			break;
		}
		int wait_ms = 5;
		if (!rate_mode && f.sent < f.edits) {
			int64_t due = t0 + (int64_t)f.sent * interval - ql_now_ns();
			wait_ms = due <= 0 ? 0 : (int)(due / 1000000);
		} else if (rate_mode && f.sent < f.edits && f.sent - f.acked < window)
			wait_ms = 0;
		ql_net_poll(&net, wait_ms);
	}
	int64_t t_end = f.last_delivery > f.first_send ? f.last_delivery : ql_now_ns();
	double dur = (double)(t_end - f.first_send) / 1e9;
	double send_dur = (double)(f.last_send - f.first_send) / 1e9;
	uint64_t bytes_in = 0;
	size_t complete = 0;
	for (size_t i = 0; i < f.n_obs; i++) {
		bytes_in += cl[i].ws.bytes_in;
		complete += f.next[i] == f.edits;
	}
	double load1 = ql_loadavg();
	double dps = dur > 0 ? (double)f.deliveries / dur : 0;
	double peak = peak_per_s(&f);
	printf("%s: %zu edits sent in %.2f s (%.1f edits/s offered%s), %zu acked\n", mode, f.sent,
	       send_dur, send_dur > 0 ? (double)f.sent / send_dur : 0, rate_mode ? ", window" : "",
	       f.acked);
	printf("%s: %llu of %llu edit deliveries in %.2f s: %.0f deliveries/s (best 1 s: %.0f/s); "
	       "%zu/%zu observers complete, %zu closed\n",
	       mode, (unsigned long long)f.deliveries, (unsigned long long)f.sent * obs_live, dur,
	       dps, peak, complete, f.n_obs, f.closed_obs);
	ql_print_hist("  latency (writer send -> observer receipt)", &f.lat);
	ql_print_hist("  ack latency (writer send -> Ack)", &f.ack);
	printf("  bytes received by observers: %llu (%.0f per observer), sent by the writer: "
	       "%llu\n",
	       (unsigned long long)bytes_in, f.n_obs ? (double)bytes_in / (double)f.n_obs : 0,
	       (unsigned long long)w->ws.bytes_out);
	printf("  load average: %.2f before, %.2f after\n", load0, load1);
	ql_json j;
	ql_json_begin(&j, mode);
	ql_json_str(&j, "trace", o->trace);
	ql_json_int(&j, "observers", (int64_t)f.n_obs);
	ql_json_int(&j, "observers_joined", (int64_t)obs_live);
	ql_json_int(&j, "observers_complete", (int64_t)complete);
	ql_json_int(&j, "observers_closed", (int64_t)f.closed_obs);
	ql_json_num(&j, "rate", rate_mode ? 0 : o->rate);
	ql_json_int(&j, "window", rate_mode ? (int64_t)window : 0);
	ql_json_int(&j, "edits", (int64_t)f.edits);
	ql_json_int(&j, "edits_sent", (int64_t)f.sent);
	ql_json_int(&j, "edits_acked", (int64_t)f.acked);
	ql_json_num(&j, "send_s", send_dur);
	ql_json_num(&j, "duration_s", dur);
	ql_json_int(&j, "deliveries", (int64_t)f.deliveries);
	ql_json_num(&j, "deliveries_per_s", dps);
	ql_json_num(&j, "peak_deliveries_per_s", peak);
	ql_json_hist(&j, "latency", &f.lat);
	ql_json_hist(&j, "ack", &f.ack);
	ql_json_int(&j, "bytes_in", (int64_t)bytes_in);
	ql_json_int(&j, "bytes_out", (int64_t)w->ws.bytes_out);
	ql_json_num(&j, "connect_s", conn_s);
	ql_json_int(&j, "connect_failed", (int64_t)failed);
	ql_json_num(&j, "loadavg_before", load0);
	ql_json_num(&j, "loadavg_after", load1);
	ql_json_end(&j, o->json);
	rc = (f.acked == f.edits && complete == f.n_obs) ? 0 : 1;
out:
	for (size_t i = 0; i <= f.n_obs; i++)
		ql_client_free(&cl[i]);
	ql_net_free(&net);
out_nonet:
	free(cl);
	free(ptr);
	free(f.cum);
	free(f.sent_ns);
	free(f.next);
	free(f.per100ms);
	trace_free(&t);
	return rc;
}
