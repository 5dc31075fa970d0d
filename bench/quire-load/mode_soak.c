/*
 * mode_soak.c - `soak`: thousands of sessions on hundreds of documents for
 * T seconds, then a convergence check. Client i joins document i % D;
 * the first K of each document (i < K * D) are writers, the rest
 * observers; every one is a full replica (crdt_doc).
 *
 * While editing:
 *  - each writer makes a random insert (1-8 letters) or delete (1-5 code
 *    points) at a random position about every 1 / edit_rate s, connected
 *    or not (offline edits wait, unacknowledged, for the next Welcome;
 *    at most 64 unacked batches per writer, beyond that it pauses);
 *  - every session drops its connection about every drop_every s (no close
 *    frame, like a lost network) and reconnects 0.1-1 s later resuming with
 *    Hello{last_seq}, resending what is unacknowledged (client.c);
 *    a close by the server also leads to a reconnect, and is counted;
 *  - every sample_every s: server RSS and fds (/proc/PID), ours, and the
 *    session counters, one CSV row (columns in bench/README.md).
 * At the end: no more edits or drops; everyone reconnects; wait until
 * every writer has every batch acked (else: lost acks); read each
 * document's committed text and seq from the HTTP API; wait until every
 * replica has applied up to that seq; compare texts (else: divergence).
 * Stability: from the first sample after the warm-up third to the last
 * editing sample, the server's RSS may grow at most max_growth x its
 * warm-up value + rss_per_edit (512 B) per edit made in that interval
 * (documents keep tombstones: about 180 B per edit in a 10-minute Release
 * run). Its fds beyond our open sockets are compared between the two quiet
 * moments, before the first connection and after the final wait for acks
 * (mid-run, connects and closes in flight make the difference swing by
 * hundreds): at most 32 + 2% of the connections more.
 * Exit status 1 with the reasons printed when any check fails.
 */
#include "modes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "proc.h"
#include "report.h"

typedef struct sk_aux {
	int64_t next_edit, next_drop, reconnect_at, last_ping;
	bool down;
	bool writer;
} sk_aux;

typedef struct sk_sample {
	double t;
	long srv_rss, srv_fds, own_rss, own_fds;
	size_t ready, sockets;
	uint64_t edits;
} sk_sample;

typedef struct soak {
	const ql_opts *o;
	ql_client *cl;
	sk_aux *aux;
	size_t n, d, k;
	uint64_t rng;
	bool editing;
	uint64_t edits, drops, reconnects, closes, close_1001, close_1008, close_other;
	uint64_t errors_seen;
	uint64_t stuck; /* sessions restarted after 15 s without a Welcome */
	char first_close[64];
	sk_sample *samples;
	size_t n_samples, cap_samples;
	FILE *csv;
	int64_t t0;
} soak;

static int64_t jitter(soak *s, double mean_s)
{
	double u = 0.5 + (double)(ql_rand(&s->rng) % 1000000) / 1e6; /* 0.5 .. 1.5 */
	return (int64_t)(mean_s * u * 1e9);
}

static void on_closed(ql_client *c)
{
	soak *s = c->user;
	sk_aux *a = &s->aux[c->idx];
	a->down = true;
	a->reconnect_at = ql_now_ns() + 500000000 + jitter(s, 0.5);
	s->closes++;
	if (c->ws.close_code == 1001)
		s->close_1001++;
	else if (c->ws.close_code == 1008)
		s->close_1008++;
	else
		s->close_other++;
	if (s->first_close[0] == '\0')
		snprintf(s->first_close, sizeof s->first_close, "%s", c->ws.why);
}

static void on_error(ql_client *c, const wire_server_msg *m)
{
	soak *s = c->user;
	if (s->errors_seen++ < 5)
		fprintf(stderr, "quire-load: soak: client %u (%s) got Error %s: %.*s\n", c->idx,
			c->doc_id, wire_error_code_name(m->error.code), (int)m->error.message_len,
			m->error.message ? m->error.message : "");
}

static const ql_client_ops soak_ops = {.error = on_error, .closed = on_closed};

static void random_edit(soak *s, ql_client *c)
{
	size_t len = crdt_doc_length(c->doc);
	crdt_batch *b = crdt_batch_new(NULL);
	if (b == NULL)
		return;
	uint64_t r = ql_rand(&s->rng);
	bool del = len > 0 && (len > 2000 ? r % 10 < 7 : r % 10 < 3);
	r >>= 8;
	if (del) {
		size_t pos = (size_t)(r % len);
		size_t most = len - pos < 5 ? len - pos : 5;
		crdt_doc_delete(c->doc, pos, 1 + (size_t)((r >> 20) % most), b);
	} else {
		char text[8];
		size_t n = 1 + (size_t)(r % 8);
		for (size_t i = 0; i < n; i++)
			text[i] = (char)('a' + (r >> (8 + 3 * i)) % 26);
		crdt_doc_insert(c->doc, (size_t)((r >> 40) % (len + 1)), text, n, b);
	}
	s->edits++;
	ql_client_edit(c, b);
}

static void sample(soak *s, const char *phase)
{
	const ql_opts *o = s->o;
	sk_sample x = {.t = (double)(ql_now_ns() - s->t0) / 1e9, .edits = s->edits};
	x.srv_rss = o->server_pid ? ql_proc_rss_kb(o->server_pid) : -1;
	x.srv_fds = o->server_pid ? ql_proc_fds(o->server_pid) : -1;
	x.own_rss = ql_proc_rss_kb(0);
	x.own_fds = ql_proc_fds(0);
	uint64_t pend = 0, acks = 0, changes = 0, errs = 0;
	for (size_t i = 0; i < s->n; i++) {
		ql_client *c = &s->cl[i];
		x.ready += ql_client_ready(c);
		x.sockets += c->ws.state >= QL_WS_CONNECTING && c->ws.state <= QL_WS_OPEN;
		pend += c->n_pend;
		acks += c->acks_in;
		changes += c->changes_in;
		errs += c->errors + c->gaps + c->apply_errors;
	}
	if (s->csv) {
		fprintf(s->csv,
			"%.1f,%s,%ld,%ld,%ld,%ld,%zu,%zu,%llu,%llu,%llu,%llu,%llu,%llu,%llu,%llu,%."
			"2f\n",
			x.t, phase, x.srv_rss, x.srv_fds, x.own_rss, x.own_fds, x.ready, x.sockets,
			(unsigned long long)s->edits, (unsigned long long)acks,
			(unsigned long long)changes, (unsigned long long)pend,
			(unsigned long long)s->drops, (unsigned long long)s->reconnects,
			(unsigned long long)s->closes, (unsigned long long)errs, ql_loadavg());
		fflush(s->csv);
	}
	if (strcmp(phase, "edit") == 0) {
		if (s->n_samples == s->cap_samples) {
			size_t nc = s->cap_samples ? s->cap_samples * 2 : 256;
			sk_sample *ns = realloc(s->samples, nc * sizeof *ns);
			if (ns == NULL)
				return;
			s->samples = ns;
			s->cap_samples = nc;
		}
		s->samples[s->n_samples++] = x;
	}
	printf("  t=%5.0fs %s: server RSS %.1f MiB, fds %ld; ours %.1f MiB, fds %ld; %zu ready, "
	       "%llu edits, %llu unacked\n",
	       x.t, phase, x.srv_rss / 1024.0, x.srv_fds, x.own_rss / 1024.0, x.own_fds, x.ready,
	       (unsigned long long)s->edits, (unsigned long long)pend);
}

/* One turn of the loop: reconnects, edits, drops, pings. */
static void step(soak *s)
{
	int64_t now = ql_now_ns();
	const ql_opts *o = s->o;
	for (size_t i = 0; i < s->n; i++) {
		ql_client *c = &s->cl[i];
		sk_aux *a = &s->aux[i];
		if (a->down) {
			if (now < a->reconnect_at && s->editing)
				continue;
			a->down = false;
			s->reconnects++;
			if (ql_client_connect(c) != 0) {
				a->down = true;
				a->reconnect_at = now + 1000000000;
			}
			continue;
		}
		if (s->editing && a->writer && now >= a->next_edit) {
			if (c->n_pend < 64)
				random_edit(s, c);
			a->next_edit = now + jitter(s, 1.0 / o->edit_rate);
		}
		if (!ql_client_ready(c)) {
			/* A handshake or Hello that never finishes: start over. */
			if (c->ws.state != QL_WS_CLOSED && now - c->t_connect > 15000000000LL) {
				ql_client_drop(c);
				s->stuck++;
				a->down = true;
				a->reconnect_at = now;
			}
			continue;
		}
		if (s->editing && o->drop_every > 0 && now >= a->next_drop) {
			ql_client_drop(c);
			s->drops++;
			a->down = true;
			a->reconnect_at = now + 100000000 + (int64_t)(ql_rand(&s->rng) % 900000000);
			a->next_drop = now + jitter(s, o->drop_every);
			continue;
		}
		if (now - a->last_ping > 20000000000LL) {
			ql_client_ping(c, (uint64_t)now);
			a->last_ping = now;
		}
	}
}

static const char *csv_header = "t_s,phase,server_rss_kb,server_fds,own_rss_kb,own_fds,ready,"
				"sockets,edits,acks,changes,unacked,drops,reconnects,"
				"server_closes,errors,loadavg\n";

int ql_mode_soak(const ql_opts *o)
{
	ql_raise_nofile();
	soak s;
	memset(&s, 0, sizeof s);
	s.o = o;
	s.n = (size_t)o->conns;
	s.d = o->docs > 0 ? (size_t)o->docs : 1;
	s.k = (size_t)o->writers_per_doc;
	s.rng = o->seed;
	if (s.n < s.d * s.k || o->edit_rate <= 0) {
		fprintf(stderr, "quire-load: soak: --conns must be at least --docs x "
				"--writers-per-doc, --edit-rate > 0\n");
		return 2;
	}
	s.cl = calloc(s.n, sizeof *s.cl);
	s.aux = calloc(s.n, sizeof *s.aux);
	ql_client **ptr = calloc(s.n, sizeof *ptr);
	char(*ids)[64] = calloc(s.d, sizeof *ids);
	int *status = calloc(s.d, sizeof *status);
	uint64_t *seqs = calloc(s.d, sizeof *seqs);
	char **texts = calloc(s.d, sizeof *texts);
	size_t *tlen = calloc(s.d, sizeof *tlen);
	ql_net net;
	int rc = 1;
	if (!s.cl || !s.aux || !ptr || !ids || !status || !seqs || !texts || !tlen ||
	    ql_net_init(&net, o->port, (int)o->n_src, o->seed) != 0) {
		fprintf(stderr, "quire-load: out of memory\n");
		return 1;
	}
	if (o->csv) {
		s.csv = fopen(o->csv, "w");
		if (s.csv == NULL) {
			fprintf(stderr, "quire-load: cannot write %s\n", o->csv);
			goto out;
		}
		fputs(csv_header, s.csv);
	}
	uint64_t run = ql_rand(&s.rng);
	for (size_t i = 0; i < s.d; i++)
		snprintf(ids[i], sizeof ids[i], "%ssoak-%08llx-%zu", o->prefix ? o->prefix : "",
			 (unsigned long long)(run & 0xffffffffu), i);
	for (size_t i = 0; i < s.n; i++) {
		if (ql_client_init(&s.cl[i], &net, &soak_ops, ids[i % s.d], ql_replica_id(&s.rng),
				   true) != 0) {
			fprintf(stderr, "quire-load: out of memory\n");
			goto out;
		}
		s.cl[i].user = &s;
		s.cl[i].idx = (uint32_t)i;
		s.aux[i].writer = i < s.d * s.k;
		ptr[i] = &s.cl[i];
	}
	double load0 = ql_loadavg();
	s.t0 = ql_now_ns();
	printf("soak: %zu sessions (%zu writers at %.2f edits/s each) on %zu documents, %.0f s, "
	       "drops every ~%.0f s\n",
	       s.n, s.d * s.k, o->edit_rate, s.d, o->seconds, o->drop_every);
	sample(&s, "start");
	size_t failed = 0;
	size_t ok = ql_connect_all(&net, ptr, s.n, (size_t)o->batch, s.t0 + 120 * 1000000000LL,
				   NULL, NULL, &failed);
	printf("soak: %zu joined in %.1f s, %zu failed (retried)\n", ok,
	       (double)(ql_now_ns() - s.t0) / 1e9, failed);
	int64_t now = ql_now_ns();
	for (size_t i = 0; i < s.n; i++) {
		s.aux[i].next_edit = now + jitter(&s, 1.0 / o->edit_rate);
		s.aux[i].next_drop = now + jitter(&s, o->drop_every > 0 ? o->drop_every : 1);
		s.aux[i].last_ping = now;
		if (!s.cl[i].welcomed && !s.aux[i].down) {
			ql_client_drop(&s.cl[i]);
			s.aux[i].down = true;
		}
	}
	s.editing = true;
	int64_t t_edit0 = ql_now_ns(), t_edit_end = t_edit0 + (int64_t)(o->seconds * 1e9);
	int64_t next_sample = t_edit0;
	while ((now = ql_now_ns()) < t_edit_end) {
		step(&s);
		ql_net_poll(&net, 10);
		if (now >= next_sample) {
			sample(&s, "edit");
			next_sample += (int64_t)(o->sample_every * 1e9);
		}
	}
	/* Final phase: everyone back, every batch acked. */
	s.editing = false;
	printf("soak: editing stopped after %.0f s; %llu edits, %llu drops, %llu server closes "
	       "(%llu with 1001, %llu with 1008)\n",
	       (double)(ql_now_ns() - t_edit0) / 1e9, (unsigned long long)s.edits,
	       (unsigned long long)s.drops, (unsigned long long)s.closes,
	       (unsigned long long)s.close_1001, (unsigned long long)s.close_1008);
	int64_t settle = ql_now_ns() + 90 * 1000000000LL;
	size_t unacked = 0, not_ready = 0;
	while (ql_now_ns() < settle) {
		step(&s);
		ql_net_poll(&net, 10);
		unacked = not_ready = 0;
		for (size_t i = 0; i < s.n; i++) {
			unacked += s.cl[i].n_pend;
			not_ready += !ql_client_ready(&s.cl[i]);
		}
		if (unacked == 0 && not_ready == 0)
			break;
	}
	sample(&s, "acked");
	size_t failures = 0;
	if (unacked > 0 || not_ready > 0) {
		printf("FAIL: %zu batches never acked, %zu sessions not connected after 90 s\n",
		       unacked, not_ready);
		failures++;
	}
	/* The server's committed text of every document. */
	for (size_t d = 0; d < s.d; d++) {
		if (ql_http_doc(o->port, ids[d], 10000, &status[d], &seqs[d], &texts[d],
				&tlen[d]) != 0 ||
		    (status[d] != 200 && status[d] != 404)) {
			printf("FAIL: GET /v1/docs/%s: %s %d\n", ids[d],
			       status[d] ? "HTTP" : "request failed", status[d]);
			failures++;
			status[d] = -1;
		}
	}
	/* Every replica up to the server's seq. */
	int64_t catchup = ql_now_ns() + 60 * 1000000000LL;
	size_t behind = 0;
	while (ql_now_ns() < catchup) {
		step(&s);
		ql_net_poll(&net, 10);
		behind = 0;
		for (size_t i = 0; i < s.n; i++) {
			size_t d = i % s.d;
			if (status[d] == 200 &&
			    (s.cl[i].last_seq < seqs[d] || !ql_client_ready(&s.cl[i])))
				behind++;
		}
		if (behind == 0)
			break;
	}
	if (behind > 0) {
		printf("FAIL: %zu replicas did not reach the server's seq within 60 s\n", behind);
		failures++;
	}
	size_t diverged = 0, bad_seq = 0, proto = 0, text_bytes = 0, snaps = 0;
	for (size_t i = 0; i < s.n; i++)
		snaps += s.cl[i].snapshots;
	for (size_t d = 0; d < s.d; d++)
		text_bytes += status[d] == 200 ? tlen[d] : 0;
	size_t cap = 1 << 16;
	char *buf = malloc(cap);
	for (size_t i = 0; i < s.n && buf; i++) {
		ql_client *c = &s.cl[i];
		size_t d = i % s.d;
		proto += c->gaps + c->apply_errors + c->errors;
		if (status[d] < 0)
			continue;
		if (c->last_seq != seqs[d] && status[d] == 200)
			bad_seq++;
		size_t need = crdt_doc_text(c->doc, buf, cap);
		if (need > cap) {
			char *nb = realloc(buf, need);
			if (nb == NULL)
				break;
			buf = nb;
			cap = need;
			crdt_doc_text(c->doc, buf, cap);
		}
		const char *want = status[d] == 200 ? texts[d] : "";
		size_t wl = status[d] == 200 ? tlen[d] : 0;
		if (need != wl || memcmp(buf, want, wl) != 0) {
			if (diverged++ < 5)
				printf("FAIL: %s: replica %zu (%s) has %zu bytes at seq %llu, the "
				       "server "
				       "%zu at seq %llu\n",
				       ids[d], i, s.aux[i].writer ? "writer" : "observer", need,
				       (unsigned long long)c->last_seq, wl,
				       (unsigned long long)seqs[d]);
		}
	}
	free(buf);
	if (diverged) {
		printf("FAIL: %zu replicas differ from the server's text\n", diverged);
		failures++;
	}
	if (proto) {
		printf("FAIL: %zu protocol anomalies (seq gaps, refused ops, Errors)\n", proto);
		failures++;
	}
	printf("soak: %zu Welcomes carried a snapshot; %llu sessions restarted after 15 s without "
	       "a "
	       "Welcome\n",
	       snaps, (unsigned long long)s.stuck);
	if (s.close_other + s.close_1008 > 0)
		printf("note: %llu server-side closes other than 1001 (first: %s)\n",
		       (unsigned long long)(s.close_other + s.close_1008), s.first_close);
	/* Stability of the server's RSS and fds after the warm-up third. */
	sk_sample *w = NULL, *e = s.n_samples ? &s.samples[s.n_samples - 1] : NULL;
	for (size_t i = 0; i < s.n_samples; i++)
		if (s.samples[i].t - s.samples[0].t >= o->seconds / 3) {
			w = &s.samples[i];
			break;
		}
	double rss_growth = 0, rss_bound = 0, fd_growth = 0, fd_bound = 0;
	if (o->server_pid && w && e && w != e && w->srv_rss > 0) {
		rss_growth = (double)(e->srv_rss - w->srv_rss);
		rss_bound = o->max_growth * (double)w->srv_rss +
			    o->rss_per_edit / 1024.0 * (double)(e->edits - w->edits);
		const sk_sample *b = &s.samples[0]; /* before connecting */
		fd_growth = (double)(e->srv_fds - (long)e->sockets) -
			    (double)(b->srv_fds - (long)b->sockets);
		fd_bound = 32 + 0.02 * (double)s.n;
		printf("soak: server RSS %.1f MiB at t=%.0f s -> %.1f MiB at t=%.0f s (%+.1f MiB, "
		       "bound "
		       "%.1f MiB); fds beyond our sockets %+.0f (bound %.0f)\n",
		       w->srv_rss / 1024.0, w->t, e->srv_rss / 1024.0, e->t, rss_growth / 1024.0,
		       rss_bound / 1024.0, fd_growth, fd_bound);
		if (rss_growth > rss_bound) {
			printf("FAIL: server RSS grew past the bound\n");
			failures++;
		}
		if (fd_growth > fd_bound) {
			printf("FAIL: server fds grew past the bound\n");
			failures++;
		}
	} else if (o->server_pid) {
		printf("note: too few samples for the stability check\n");
	}
	double load1 = ql_loadavg();
	printf("soak: %s: %zu replicas on %zu documents (%zu bytes of text in all) checked against "
	       "the server; %zu diverged, %zu off the server's seq; load average %.2f before, %.2f "
	       "after\n",
	       failures ? "FAILED" : "ok", s.n, s.d, text_bytes, diverged, bad_seq, load0, load1);
	ql_json j;
	ql_json_begin(&j, "soak");
	ql_json_int(&j, "conns", (int64_t)s.n);
	ql_json_int(&j, "docs", (int64_t)s.d);
	ql_json_int(&j, "writers", (int64_t)(s.d * s.k));
	ql_json_num(&j, "seconds", o->seconds);
	ql_json_num(&j, "edit_rate", o->edit_rate);
	ql_json_num(&j, "drop_every", o->drop_every);
	ql_json_int(&j, "edits", (int64_t)s.edits);
	ql_json_int(&j, "drops", (int64_t)s.drops);
	ql_json_int(&j, "server_closes", (int64_t)s.closes);
	ql_json_int(&j, "snapshot_welcomes", (int64_t)snaps);
	ql_json_int(&j, "stuck_restarts", (int64_t)s.stuck);
	ql_json_int(&j, "unacked", (int64_t)unacked);
	ql_json_int(&j, "behind", (int64_t)behind);
	ql_json_int(&j, "diverged", (int64_t)diverged);
	ql_json_int(&j, "text_bytes", (int64_t)text_bytes);
	ql_json_int(&j, "protocol_anomalies", (int64_t)proto);
	ql_json_num(&j, "server_rss_growth_kb", rss_growth);
	ql_json_num(&j, "server_rss_bound_kb", rss_bound);
	ql_json_num(&j, "server_fd_growth", fd_growth);
	ql_json_num(&j, "server_fd_bound", fd_bound);
	ql_json_int(&j, "failures", (int64_t)failures);
	ql_json_num(&j, "loadavg_before", load0);
	ql_json_num(&j, "loadavg_after", load1);
	ql_json_end(&j, o->json);
	rc = failures ? 1 : 0;
out:
	if (s.csv)
		fclose(s.csv);
	for (size_t i = 0; i < s.n; i++)
		ql_client_free(&s.cl[i]);
	for (size_t d = 0; d < s.d; d++)
		free(texts[d]);
	ql_net_free(&net);
	free(s.cl);
	free(s.aux);
	free(ptr);
	free(ids);
	free(status);
	free(seqs);
	free(texts);
	free(tlen);
	free(s.samples);
	return rc;
}
