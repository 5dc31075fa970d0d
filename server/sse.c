/*
 * sse.c - the event streams of sse.h.
 *
 * State: a document with streams has an srv_sse_doc (d->sse) holding its
 * streams (WAITING and LIVE, one list) and the patches recorded for the
 * current turn's changes, keyed by seq. A stream is the state of one HTTP
 * request of the "quire-api" protocol (api.c keeps the pointer in its
 * per-session data) and owns a FIFO of reference-counted messages
 * (srv_msg, conn.h), so one encoded event is shared by every stream.
 *
 * Writing: one lws_write of at most SSE_FRAGMENT bytes per HTTP_WRITEABLE,
 * copied into the stream's own LWS_PRE scratch (the message is shared).
 * The response has no Content-Length (connection: close), so ending a
 * stream is closing its connection once its queue has drained.
 */
#define _POSIX_C_SOURCE 200809L

#include "sse.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "commit.h"
#include "conn.h"
#include "json.h"

#define SSE_FRAGMENT (16 * 1024)
/* Seconds a closing stream gets to drain before it is killed. */
#define SSE_CLOSE_GRACE_S 3

typedef struct sse_qent {
	srv_msg *msg;
	struct sse_qent *next;
} sse_qent;

struct srv_sse_stream {
	srv *s;
	struct lws *wsi;
	srv_sse_doc *sd;
	bool live;     /* welcomed: receives the turns' changes */
	bool closing;  /* nothing more is queued; close once the queue is empty */
	bool has_last; /* resume after `last` (else: start with a reset) */
	uint64_t last;
	sse_qent *q_head, *q_tail;
	size_t q_bytes, q_sent;
	uint8_t *frag; /* LWS_PRE + SSE_FRAGMENT */
	srv_sse_stream *prev, *next;
};

typedef struct sse_pend {
	uint64_t seq;
	srv_buf json; /* the patch objects, comma-separated */
} sse_pend;

struct srv_sse_doc {
	srv_doc *d;
	srv_sse_stream *streams;
	size_t n_streams;
	uint64_t from_seq; /* patches are recorded for changes with seq >= this */
	sse_pend *pend;
	size_t n_pend, cap_pend;
};

/* Ops of stored changes are decoded with room to spare: they were accepted
 * under limits that may have been larger than today's. */
static const wire_limits replay_limits = {SIZE_MAX, UINT32_MAX, SIZE_MAX};

/* ---- the queue ------------------------------------------------------------------- */

static void queue_free(srv_sse_stream *st)
{
	sse_qent *e = st->q_head;
	while (e) {
		sse_qent *next = e->next;
		srv_msg_unref(e->msg);
		free(e);
		e = next;
	}
	st->q_head = st->q_tail = NULL;
	st->q_bytes = st->q_sent = 0;
}

static void begin_close(srv_sse_stream *st, bool drain)
{
	if (st->closing)
		return;
	st->closing = true;
	if (!drain)
		queue_free(st);
	lws_callback_on_writable(st->wsi);
	lws_set_timeout(st->wsi, PENDING_TIMEOUT_USER_OK, SSE_CLOSE_GRACE_S);
}

/* Queue m (the queue takes a reference). A bounded send that would take the
 * queue over --send-queue-bytes drops the stream instead. 0 or -1. */
static int st_send(srv_sse_stream *st, srv_msg *m, bool bounded)
{
	srv *s = st->s;
	if (st->closing)
		return -1;
	if (bounded && st->q_bytes > 0 && st->q_bytes + m->len > s->cfg.send_queue_bytes) {
		srv_warn(&s->log, "sse '%s': slow reader (%zu bytes queued), disconnecting",
			 st->sd->d->id, st->q_bytes);
		s->metrics.sse_dropped++;
		begin_close(st, false);
		return -1;
	}
	sse_qent *e = malloc(sizeof *e);
	if (e == NULL)
		return -1;
	m->refs++;
	e->msg = m;
	e->next = NULL;
	if (st->q_tail)
		st->q_tail->next = e;
	else
		st->q_head = e;
	st->q_tail = e;
	st->q_bytes += m->len;
	if (st->q_head == e)
		lws_callback_on_writable(st->wsi);
	return 0;
}

static int st_send_text(srv_sse_stream *st, const char *text, size_t len, bool bounded)
{
	srv_msg *m = srv_msg_copy(text, len);
	if (m == NULL)
		return -1;
	int rc = st_send(st, m, bounded);
	srv_msg_unref(m);
	return rc;
}

int srv_sse_writeable(srv_sse_stream *st)
{
	sse_qent *e = st->q_head;
	if (e == NULL)
		return st->closing ? -1 : 0;
	srv_msg *m = e->msg;
	size_t left = m->len - st->q_sent;
	size_t n = left < SSE_FRAGMENT ? left : SSE_FRAGMENT;
	if (st->frag == NULL && (st->frag = malloc(LWS_PRE + SSE_FRAGMENT)) == NULL)
		return -1;
	memcpy(st->frag + LWS_PRE, m->payload + st->q_sent, n);
	if (lws_write(st->wsi, st->frag + LWS_PRE, n, LWS_WRITE_HTTP) < (int)n)
		return -1;
	st->q_sent += n;
	if (st->q_sent == m->len) {
		st->q_head = e->next;
		if (st->q_head == NULL)
			st->q_tail = NULL;
		st->q_bytes -= m->len;
		st->q_sent = 0;
		srv_msg_unref(m);
		free(e);
	}
	if (st->q_head != NULL || st->closing)
		lws_callback_on_writable(st->wsi);
	return 0;
}

void srv_sse_heartbeat(srv_sse_stream *st)
{
	static const char ping[] = ": ping\n\n";
	if (!st->closing && st->q_head == NULL)
		st_send_text(st, ping, sizeof ping - 1, true);
	lws_set_timer_usecs(st->wsi, (lws_usec_t)SRV_SSE_PING_S * LWS_USEC_PER_SEC);
}

/* ---- events ---------------------------------------------------------------------- */

static void json_id(srv_buf *b, crdt_id id)
{
	if (id.replica == CRDT_NO_REPLICA)
		srv_buf_append(b, "null", 4);
	else
		srv_buf_printf(b, "{\"replica\":\"%016" PRIx64 "\",\"counter\":%" PRIu32 "}",
			       (uint64_t)id.replica, id.counter);
}

static void json_ops(srv_buf *b, const crdt_batch *ops)
{
	srv_buf_append(b, "[", 1);
	for (size_t i = 0; i < crdt_batch_count(ops); i++) {
		const crdt_op *op = crdt_batch_get(ops, i);
		bool ins = op->kind == CRDT_OP_INSERT;
		srv_buf_printf(b,
			       "%s{\"kind\":\"%s\",\"replica\":\"%016" PRIx64
			       "\",\"counter\":%" PRIu32 ",\"lamport\":%" PRIu32 ",\"len\":%" PRIu32
			       ",",
			       i ? "," : "", ins ? "insert" : "delete", (uint64_t)op->id.replica,
			       op->id.counter, op->lamport, op->len);
		if (ins) {
			srv_buf_append(b, "\"left\":", 7);
			json_id(b, op->left);
			srv_buf_append(b, ",\"right\":", 9);
			json_id(b, op->right);
			srv_buf_append(b, ",\"text\":", 8);
			if (op->text)
				srv_json_str(b, op->text, op->text_bytes);
			else
				srv_buf_append(b, "null", 4);
		} else {
			srv_buf_append(b, "\"target\":", 9);
			json_id(b, op->target);
		}
		srv_buf_append(b, "}", 1);
	}
	srv_buf_append(b, "]", 1);
}

static void patch_json(srv_buf *b, const crdt_patch *p)
{
	srv_buf_printf(b, "%s{\"pos\":%zu,\"delete\":%zu,\"insert\":", b->len ? "," : "", p->pos,
		       p->deleted);
	srv_json_str(b, p->text ? p->text : "", p->text ? p->text_bytes : 0);
	srv_buf_append(b, "}", 1);
}

/* Append the change event of seq to out. patches: the patch objects
 * (NULL: not known, "patches":null); ops decoded from payload into scratch. */
static void change_event(srv_buf *out, uint64_t seq, int64_t time_ms, crdt_replica author,
			 const uint8_t *payload, size_t plen, const srv_buf *patches,
			 crdt_batch *scratch)
{
	srv_buf_printf(out,
		       "id: %" PRIu64 "\nevent: change\ndata: {\"seq\":%" PRIu64
		       ",\"time_ms\":%" PRId64 ",\"replica\":\"%016" PRIx64 "\",\"patches\":",
		       seq, seq, time_ms, (uint64_t)author);
	if (patches == NULL) {
		srv_buf_append(out, "null", 4);
	} else {
		srv_buf_append(out, "[", 1);
		if (patches->len)
			srv_buf_append(out, patches->data, patches->len);
		srv_buf_append(out, "]", 1);
	}
	srv_buf_append(out, ",\"ops\":", 7);
	crdt_batch_clear(scratch);
	if (wire_ops_decode(payload, plen, &replay_limits, scratch) == WIRE_OK)
		json_ops(out, scratch);
	else
		srv_buf_append(out, "null", 4);
	srv_buf_append(out, "}\n\n", 3);
}

/* The reset event: the whole text of d (READY, committed) at its head. */
static srv_msg *reset_event(srv_doc *d)
{
	size_t nbytes = crdt_doc_utf8_bytes(d->crdt);
	char *text = malloc(nbytes + 1);
	if (text == NULL)
		return NULL;
	crdt_doc_text(d->crdt, text, nbytes + 1);
	char head[128];
	int hn = snprintf(head, sizeof head,
			  "id: %" PRIu64 "\nevent: reset\ndata: {\"seq\":%" PRIu64
			  ",\"length\":%zu,\"text\":",
			  d->head, d->head, crdt_doc_length(d->crdt));
	size_t len = (size_t)hn + srv_json_str_len(text, nbytes) + 3;
	srv_msg *m = srv_msg_new(len);
	if (m != NULL) {
		char *w = (char *)m->payload;
		memcpy(w, head, (size_t)hn);
		w = srv_json_str_put(w + hn, text, nbytes);
		memcpy(w, "}\n\n", 3);
	}
	free(text);
	return m;
}

/* ---- opening and closing ------------------------------------------------------------ */

srv_sse_stream *srv_sse_open(srv *s, srv_doc *d, struct lws *wsi, bool has_last, uint64_t last)
{
	srv_sse_stream *st = calloc(1, sizeof *st);
	if (st == NULL)
		return NULL;
	srv_sse_doc *sd = d->sse;
	if (sd == NULL) {
		sd = calloc(1, sizeof *sd);
		if (sd == NULL) {
			free(st);
			return NULL;
		}
		sd->d = d;
		sd->from_seq = d->next_seq;
	}
	unsigned char hdr[LWS_PRE + 512];
	unsigned char *start = hdr + LWS_PRE, *p = start, *end = hdr + sizeof hdr - 1;
	if (lws_add_http_common_headers(wsi, HTTP_STATUS_OK, "text/event-stream",
					LWS_ILLEGAL_HTTP_CONTENT_LEN, &p, end) ||
	    lws_add_http_header_by_name(wsi, (const unsigned char *)"cache-control:",
					(const unsigned char *)"no-store", 8, &p, end) ||
	    lws_add_http_header_by_name(wsi, (const unsigned char *)"x-accel-buffering:",
					(const unsigned char *)"no", 2, &p, end) ||
	    lws_finalize_write_http_header(wsi, start, &p, end) || srv_turn_touch(s, d) != 0) {
		if (d->sse == NULL)
			free(sd);
		free(st);
		return NULL;
	}
	lws_http_mark_sse(wsi);
	st->s = s;
	st->wsi = wsi;
	st->sd = sd;
	st->has_last = has_last;
	st->last = last;
	st->next = sd->streams;
	if (sd->streams)
		sd->streams->prev = st;
	sd->streams = st;
	sd->n_streams++;
	d->sse = sd;
	d->idle_since_ms = 0; /* a reader: not idle */
	static const char hello[] = "retry: 1000\n\n";
	st_send_text(st, hello, sizeof hello - 1, false);
	lws_set_timer_usecs(wsi, (lws_usec_t)SRV_SSE_PING_S * LWS_USEC_PER_SEC);
	srv_info(&s->log, "sse: stream opened on '%s' (%s %" PRIu64 ")", d->id,
		 has_last ? "after" : "reset at head", has_last ? last : d->head);
	return st;
}

static void pend_clear(srv_sse_doc *sd)
{
	for (size_t i = 0; i < sd->n_pend; i++)
		srv_buf_free(&sd->pend[i].json);
	sd->n_pend = 0;
}

void srv_sse_close(srv_sse_stream *st)
{
	srv_sse_doc *sd = st->sd;
	srv_doc *d = sd->d;
	srv *s = st->s;
	if (st->prev)
		st->prev->next = st->next;
	else
		sd->streams = st->next;
	if (st->next)
		st->next->prev = st->prev;
	sd->n_streams--;
	queue_free(st);
	free(st->frag);
	free(st);
	srv_info(&s->log, "sse: stream on '%s' closed", d->id);
	if (sd->n_streams > 0)
		return;
	pend_clear(sd);
	free(sd->pend);
	free(sd);
	d->sse = NULL;
	if (d->n_members == 0) {
		int64_t now = srv_mono_ms();
		d->idle_since_ms = now > 0 ? now : 1;
	}
}

/* ---- patches -------------------------------------------------------------------------- */

void srv_sse_on_patch(void *ctx, const crdt_patch *p)
{
	srv_sse_doc *sd = ctx;
	uint64_t seq = sd->d->next_seq;
	if (sd->n_pend == 0 || sd->pend[sd->n_pend - 1].seq != seq) {
		if (sd->n_pend == sd->cap_pend) {
			size_t cap = sd->cap_pend ? sd->cap_pend * 2 : 8;
			sse_pend *v = realloc(sd->pend, cap * sizeof *v);
			if (v == NULL)
				return; /* the event goes out with "patches":null */
			sd->pend = v;
			sd->cap_pend = cap;
		}
		sd->pend[sd->n_pend++] = (sse_pend){.seq = seq};
	}
	patch_json(&sd->pend[sd->n_pend - 1].json, p);
}

void srv_sse_discard(srv_doc *d, uint64_t seq)
{
	srv_sse_doc *sd = d->sse;
	if (sd != NULL && sd->n_pend > 0 && sd->pend[sd->n_pend - 1].seq == seq) {
		srv_buf_free(&sd->pend[sd->n_pend - 1].json);
		sd->n_pend--;
	}
}

/* The recorded patches of seq: an empty list when the change made no
 * visible edit, NULL when they are unknown (not recorded, or ENOMEM). */
static const srv_buf *pend_find(const srv_sse_doc *sd, uint64_t seq)
{
	static const srv_buf none = {0};
	if (seq < sd->from_seq)
		return NULL;
	for (size_t i = 0; i < sd->n_pend; i++)
		if (sd->pend[i].seq == seq)
			return sd->pend[i].json.failed ? NULL : &sd->pend[i].json;
	return &none;
}

/* ---- the flush --------------------------------------------------------------------------- */

static void broadcast_turn(srv *s, srv_sse_doc *sd)
{
	srv_doc *d = sd->d;
	bool any_live = false;
	for (srv_sse_stream *st = sd->streams; st; st = st->next)
		any_live |= st->live && !st->closing;
	if (!any_live || d->turn_first < 0)
		return;
	crdt_batch *scratch = crdt_batch_new(NULL);
	srv_buf b = {0};
	uint64_t n_ev = 0;
	if (scratch == NULL)
		return;
	for (long i = d->turn_first; i >= 0; i = s->turn.changes[i].next_in_doc) {
		const srv_change *ch = &s->turn.changes[i];
		if (ch->doc != d || ch->seq > d->head)
			continue;
		change_event(&b, ch->seq, ch->time_ms, ch->replica, ch->payload.data,
			     ch->payload.len, pend_find(sd, ch->seq), scratch);
		n_ev++;
	}
	crdt_batch_free(scratch);
	srv_msg *m = b.failed || b.len == 0 ? NULL : srv_msg_copy(b.data, b.len);
	srv_buf_free(&b);
	for (srv_sse_stream *st = sd->streams; st; st = st->next) {
		if (!st->live || st->closing)
			continue;
		if (m == NULL || st_send(st, m, true) != 0)
			begin_close(st, false); /* it resumes by Last-Event-ID */
		else
			s->metrics.sse_events += n_ev;
	}
	srv_msg_unref(m);
}

typedef struct replay {
	crdt_doc *doc;
	crdt_batch *ops;
	srv_buf out;
	srv_buf patches;
	size_t budget;
	size_t events;
	uint64_t next; /* the seq expected next */
	bool bad;
} replay;

static void replay_patch(void *ctx, const crdt_patch *p) { patch_json(ctx, p); }

static int replay_row(void *ctx, const store_change_row *row)
{
	replay *r = ctx;
	if (row->seq != r->next) {
		r->bad = true;
		return 1;
	}
	r->next++;
	crdt_batch_clear(r->ops);
	if (wire_ops_decode(row->payload, row->payload_len, &replay_limits, r->ops) != WIRE_OK) {
		r->bad = true;
		return 1;
	}
	r->patches.len = 0;
	for (size_t i = 0; i < crdt_batch_count(r->ops); i++) {
		int st = crdt_doc_apply(r->doc, crdt_batch_get(r->ops, i), replay_patch,
					&r->patches);
		if (st < 0 || st == CRDT_PENDING) {
			r->bad = true;
			return 1;
		}
	}
	change_event(&r->out, row->seq, row->time_ms, row->replica, row->payload, row->payload_len,
		     r->patches.failed ? NULL : &r->patches, r->ops);
	r->events++;
	if (r->out.failed || r->out.len > r->budget) {
		r->bad = true;
		return 1;
	}
	return 0;
}

/* The events (last, head] from storage into r->out; false when they cannot
 * be had (trimmed log, too many, damaged data): send a reset instead. */
static bool replay_from_log(srv *s, srv_doc *d, uint64_t last, replay *r)
{
	r->budget = s->cfg.send_queue_bytes;
	r->next = last + 1;
	r->ops = crdt_batch_new(NULL);
	if (r->ops == NULL)
		return false;
	uint64_t start = 1, head = 0;
	if (store_log_start(s->db, d->id, &start, &head) != STORE_OK || last + 1 < start)
		return false; /* trimmed: no need to load anything */
	if (last == 0) {
		r->doc = crdt_doc_new(SRV_REPLICA, &s->crdt_opts);
	} else {
		store_load_result res;
		if (store_load_at(s->db, d->id, last, 0, SRV_REPLICA, &res) != STORE_OK)
			return false;
		r->doc = res.doc;
	}
	if (r->doc == NULL)
		return false;
	int rc = store_changes(s->db, d->id, last, 0, replay_row, r);
	return rc == STORE_OK && !r->bad && r->next == d->head + 1;
}

static void welcome(srv *s, srv_sse_doc *sd, srv_sse_stream *st)
{
	srv_doc *d = sd->d;
	st->live = true;
	if (st->closing)
		return;
	uint64_t H = d->head;
	if (st->has_last && st->last == H)
		return; /* up to date */
	if (st->has_last && st->last < H) {
		replay r = {0};
		bool ok = replay_from_log(s, d, st->last, &r);
		if (ok) {
			srv_msg *m = r.out.len ? srv_msg_copy(r.out.data, r.out.len) : NULL;
			if (m != NULL) {
				st_send(st, m, false);
				s->metrics.sse_events += r.events;
			}
			ok = m != NULL;
			srv_msg_unref(m);
		}
		crdt_doc_free(r.doc);
		crdt_batch_free(r.ops);
		srv_buf_free(&r.out);
		srv_buf_free(&r.patches);
		if (ok) {
			srv_debug(&s->log, "sse '%s': replayed %" PRIu64 "..%" PRIu64, d->id,
				  st->last + 1, H);
			return;
		}
	}
	srv_msg *m = reset_event(d);
	if (m == NULL) {
		begin_close(st, false);
		return;
	}
	st_send(st, m, false);
	srv_msg_unref(m);
	s->metrics.sse_events++;
	srv_debug(&s->log, "sse '%s': reset at %" PRIu64, d->id, H);
}

static void close_all(srv_sse_doc *sd, const char *event)
{
	for (srv_sse_stream *st = sd->streams; st; st = st->next) {
		st_send_text(st, event, strlen(event), false);
		begin_close(st, true);
	}
}

void srv_sse_flush(srv *s, srv_doc *d)
{
	srv_sse_doc *sd = d->sse;
	if (sd == NULL)
		return;
	if (d->state != SRV_DOC_READY) {
		pend_clear(sd);
		close_all(sd, "event: unavailable\ndata: {}\n\n");
		return;
	}
	broadcast_turn(s, sd);
	pend_clear(sd);
	sd->from_seq = 0; /* from now on every change is recorded */
	for (srv_sse_stream *st = sd->streams; st; st = st->next)
		if (!st->live)
			welcome(s, sd, st);
}

void srv_sse_shutdown(srv *s)
{
	for (size_t i = 0; i < s->docs.n_buckets; i++)
		for (srv_doc *d = s->docs.buckets[i]; d; d = d->hnext)
			if (d->sse)
				close_all(d->sse, "event: shutdown\ndata: {}\n\n");
}

size_t srv_sse_count(const srv *s)
{
	size_t n = 0;
	for (size_t i = 0; i < s->docs.n_buckets; i++)
		for (const srv_doc *d = s->docs.buckets[i]; d; d = d->hnext)
			if (d->sse)
				n += d->sse->n_streams;
	return n;
}
