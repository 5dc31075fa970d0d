/*
 * commit.c - the group commit of commit.h: the turn's bookkeeping (changes
 * waiting for durability, Acks owed for retransmissions, the documents
 * touched), the end-of-turn timer, and the flush that commits, welcomes,
 * broadcasts, acks and snapshots.
 *
 * The waiting changes live in one array in integration order; each
 * document chains its own through next_in_doc (indexes, since the array
 * grows), so a document's changes of the turn are consecutive seqs from
 * head + 1 in chain order (srv.h invariant 1).
 */
#define _POSIX_C_SOURCE 200809L

#include "commit.h"

#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "conn.h"
#include "docs.h"
#include "room.h"
#include "sse.h"

void srv_turn_init(srv_turn *t) { memset(t, 0, sizeof *t); }

void srv_turn_free(srv_turn *t)
{
	for (size_t i = 0; i < t->n_changes; i++)
		wire_buf_free(&t->changes[i].payload);
	free(t->changes);
	free(t->acks);
	free(t->docs);
	memset(t, 0, sizeof *t);
}

static void flush_cb(lws_sorted_usec_list_t *sul)
{
	srv *s = lws_container_of(sul, srv, turn.sul);
	srv_turn_flush(s);
}

static void schedule(srv *s)
{
	if (s->turn.scheduled || s->ctx == NULL)
		return;
	s->turn.scheduled = true;
	lws_sul_schedule(s->ctx, 0, &s->turn.sul, flush_cb, 0);
}

static int grow(void **p, size_t *cap, size_t need, size_t size)
{
	if (need <= *cap)
		return 0;
	size_t n = *cap ? *cap * 2 : 16;
	while (n < need)
		n *= 2;
	void *q = realloc(*p, n * size);
	if (q == NULL)
		return -1;
	*p = q;
	*cap = n;
	return 0;
}

int srv_turn_touch(srv *s, srv_doc *d)
{
	srv_turn *t = &s->turn;
	if (!d->touched) {
		if (grow((void **)&t->docs, &t->cap_docs, t->n_docs + 1, sizeof *t->docs) != 0)
			return -1;
		t->docs[t->n_docs++] = d;
		d->touched = true;
	}
	schedule(s);
	return 0;
}

srv_change *srv_turn_add_change(srv *s, srv_doc *d)
{
	srv_turn *t = &s->turn;
	if (srv_turn_touch(s, d) != 0 ||
	    grow((void **)&t->changes, &t->cap_changes, t->n_changes + 1, sizeof *t->changes) != 0)
		return NULL;
	long idx = (long)t->n_changes++;
	srv_change *ch = &t->changes[idx];
	memset(ch, 0, sizeof *ch);
	ch->doc = d;
	ch->next_in_doc = -1;
	if (d->turn_last >= 0)
		t->changes[d->turn_last].next_in_doc = idx;
	else
		d->turn_first = idx;
	d->turn_last = idx;
	return ch;
}

void srv_turn_pop_change(srv *s, srv_doc *d)
{
	srv_turn *t = &s->turn;
	assert(t->n_changes > 0 && d->turn_last == (long)t->n_changes - 1);
	long idx = d->turn_last;
	if (d->turn_first == idx) {
		d->turn_first = d->turn_last = -1;
	} else {
		long i = d->turn_first;
		while (t->changes[i].next_in_doc != idx)
			i = t->changes[i].next_in_doc;
		t->changes[i].next_in_doc = -1;
		d->turn_last = i;
	}
	wire_buf_free(&t->changes[idx].payload);
	t->n_changes--;
}

int srv_turn_add_dup_ack(srv *s, srv_conn *c, srv_doc *d, uint32_t handle, uint64_t client_batch,
			 uint64_t seq)
{
	srv_turn *t = &s->turn;
	if (srv_turn_touch(s, d) != 0 ||
	    grow((void **)&t->acks, &t->cap_acks, t->n_acks + 1, sizeof *t->acks) != 0)
		return -1;
	t->acks[t->n_acks++] = (srv_dup_ack){c, d, handle, client_batch, seq};
	return 0;
}

void srv_turn_forget_conn(srv *s, srv_conn *c)
{
	srv_turn *t = &s->turn;
	for (size_t i = 0; i < t->n_changes; i++)
		if (t->changes[i].sender == c)
			t->changes[i].sender = NULL;
	for (size_t i = 0; i < t->n_acks; i++)
		if (t->acks[i].conn == c)
			t->acks[i].conn = NULL;
}

void srv_turn_drop_doc(srv *s, srv_doc *d, int code, const char *why)
{
	srv_turn *t = &s->turn;
	for (long i = d->turn_first; i >= 0; i = t->changes[i].next_in_doc) {
		srv_change *ch = &t->changes[i];
		if (ch->sender != NULL)
			srv_conn_error(ch->sender, ch->handle, code, ch->client_batch, "%s", why);
		wire_buf_free(&ch->payload);
		ch->doc = NULL; /* dropped: skipped by the flush */
	}
	d->turn_first = d->turn_last = -1;
	d->next_seq = d->head + 1;
}

/* ---- encoding helpers ----------------------------------------------------------------- */

/* Encode v[0..n) as Changes messages for `handle`, each at most
 * cfg.max_message_bytes (a single bigger change goes alone). On success
 * *out holds *n_out messages (the caller unrefs them and frees *out). */
static int changes_msgs(srv *s, uint32_t handle, const wire_change *v, size_t n, srv_msg ***out,
			size_t *n_out)
{
	srv_msg **msgs = NULL;
	size_t count = 0, i = 0;
	int rc = 0;
	while (rc == 0 && i < n) {
		size_t start = i, size = 24; /* the envelope's bound (wire.h) */
		while (i < n) {
			size_t one = wire_change_size(&v[i]);
			if (i > start && size + one > s->cfg.max_message_bytes)
				break;
			size += one;
			i++;
		}
		wire_buf b = {0};
		srv_msg *m = NULL;
		srv_msg **p = realloc(msgs, (count + 1) * sizeof *p);
		if (p != NULL) {
			msgs = p;
			if (wire_server_encode_changes(&b, handle, &v[start], i - start) == WIRE_OK)
				m = srv_msg_copy(b.data, b.len);
		}
		wire_buf_free(&b);
		if (m == NULL)
			rc = -1;
		else
			msgs[count++] = m;
	}
	if (rc != 0) {
		for (size_t k = 0; k < count; k++)
			srv_msg_unref(msgs[k]);
		free(msgs);
		return -1;
	}
	*out = msgs;
	*n_out = count;
	return 0;
}

int srv_changes_send(srv *s, srv_conn *c, uint32_t handle, const wire_change *v, size_t n,
		     unsigned flags)
{
	srv_msg **msgs;
	size_t count;
	if (changes_msgs(s, handle, v, n, &msgs, &count) != 0) {
		srv_conn_fail(c, "encoding Changes");
		return -1;
	}
	int rc = 0;
	for (size_t k = 0; k < count; k++) {
		if (rc == 0 && srv_conn_send(c, msgs[k], flags) != 0)
			rc = -1;
		srv_msg_unref(msgs[k]);
	}
	free(msgs);
	return rc;
}

static void send_ack(srv *s, srv_conn *c, uint32_t handle, uint64_t batch, uint64_t seq)
{
	(void)s;
	wire_buf b = {0};
	if (wire_server_encode_ack(&b, handle, batch, seq) == WIRE_OK)
		srv_conn_send_buf(c, &b, SRV_SEND_BOUNDED);
	else
		srv_conn_fail(c, "encoding an Ack");
	wire_buf_free(&b);
}

/* ---- the flush ---------------------------------------------------------------------------- */

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Step 1: one transaction for every waiting change. */
static void commit(srv *s)
{
	srv_turn *t = &s->turn;
	size_t n = 0;
	for (size_t i = 0; i < t->n_changes; i++)
		n += t->changes[i].doc != NULL;
	if (n == 0)
		return;
	store_change *arr = malloc(n * sizeof *arr);
	int rc = STORE_ENOMEM;
	double dt = 0;
	if (arr != NULL) {
		size_t k = 0;
		for (size_t i = 0; i < t->n_changes; i++) {
			const srv_change *ch = &t->changes[i];
			if (ch->doc == NULL)
				continue;
			arr[k++] = (store_change){
				.doc_id = ch->doc->id,
				.seq = ch->seq,
				.replica = ch->replica,
				.counter_first = ch->counter_first,
				.counter_count = ch->counter_count,
				.author = ch->author[0] ? ch->author : NULL,
				.time_ms = ch->time_ms,
				.payload = ch->payload.data,
				.payload_len = ch->payload.len,
			};
		}
		double t0 = now_s();
		rc = store_append(s->db, arr, n);
		dt = now_s() - t0;
		free(arr);
	}
	srv_metrics_commit(&s->metrics, dt, n, rc == STORE_OK);
	if (rc == STORE_OK) {
		for (size_t i = 0; i < t->n_changes; i++) {
			srv_change *ch = &t->changes[i];
			if (ch->doc == NULL)
				continue;
			ch->doc->head = ch->seq;
			srv_doc_committed(ch->doc, ch);
		}
		srv_debug(&s->log, "commit: %zu changes in %.3f ms", n, dt * 1e3);
		return;
	}
	srv_err(&s->log, "commit of %zu changes failed: %s (%s)", n, store_strerror(rc),
		arr ? store_errmsg(s->db) : "out of memory");
	/* the sender learns why (disk full, I/O error, read-only): it tells an
	 * operator's problem from a bug */
	char why[128];
	snprintf(why, sizeof why, "the change could not be made durable (%s); send it again",
		 store_strerror(rc));
	for (size_t i = 0; i < t->n_docs; i++) {
		srv_doc *d = t->docs[i];
		if (d->turn_first < 0)
			continue;
		srv_turn_drop_doc(s, d, WIRE_ERR_STORAGE_FAILURE, why);
		if (srv_doc_reload(s, d, false) != 0)
			srv_doc_fail(s, d, "reload after a failed commit failed");
	}
}

typedef struct msg_cache {
	uint32_t handle;
	srv_msg **msgs;
	size_t n;
} msg_cache;

/* Step 3 for one document: Changes to the live members, Acks to senders. */
static void broadcast(srv *s, srv_doc *d)
{
	srv_turn *t = &s->turn;
	size_t k = 0;
	for (long i = d->turn_first; i >= 0; i = t->changes[i].next_in_doc)
		k++;
	wire_change *v = malloc(k * sizeof *v);
	srv_change **chs = malloc(k * sizeof *chs);
	if (v == NULL || chs == NULL) {
		free(v);
		free(chs);
		srv_err(&s->log, "document '%s': out of memory broadcasting", d->id);
		/* the turn is committed but cannot be sent: everyone owed a
		 * Change or an Ack is closed and resumes by seq, instead of
		 * silently missing it (srv.h invariant 2) */
		for (srv_member *m = d->members; m; m = m->doc_next)
			if (m->state == SRV_MEMBER_LIVE)
				srv_conn_fail(m->conn, "broadcasting");
		for (long i = d->turn_first; i >= 0; i = t->changes[i].next_in_doc)
			if (t->changes[i].sender != NULL)
				srv_conn_fail(t->changes[i].sender, "broadcasting");
		return;
	}
	k = 0;
	for (long i = d->turn_first; i >= 0; i = t->changes[i].next_in_doc) {
		chs[k] = &t->changes[i];
		v[k] = (wire_change){chs[k]->seq, chs[k]->payload.data, chs[k]->payload.len};
		k++;
	}
	/* the whole turn, encoded once per handle number (clients mostly use 1) */
	msg_cache cache[4];
	size_t n_cache = 0;
	for (srv_member *m = d->members; m; m = m->doc_next) {
		srv_conn *c = m->conn;
		if (m->state != SRV_MEMBER_LIVE || c->state != SRV_CONN_OPEN)
			continue;
		bool own_any = false;
		for (size_t i = 0; i < k; i++)
			own_any |= chs[i]->sender == c && chs[i]->handle == m->handle;
		if (m->welcomed_this_turn) {
			/* the catch-up had the changes; only the Acks are owed */
			for (size_t i = 0; i < k; i++)
				if (chs[i]->sender == c && chs[i]->handle == m->handle) {
					send_ack(s, c, m->handle, chs[i]->client_batch,
						 chs[i]->seq);
					chs[i]->acked = true;
				}
			continue;
		}
		if (!own_any) {
			msg_cache *e = NULL;
			for (size_t j = 0; j < n_cache; j++)
				if (cache[j].handle == m->handle)
					e = &cache[j];
			if (e == NULL && n_cache < sizeof cache / sizeof cache[0] &&
			    changes_msgs(s, m->handle, v, k, &cache[n_cache].msgs,
					 &cache[n_cache].n) == 0) {
				e = &cache[n_cache++];
				e->handle = m->handle;
			}
			if (e != NULL) {
				for (size_t j = 0; j < e->n; j++)
					if (srv_conn_send(c, e->msgs[j], SRV_SEND_BOUNDED) != 0)
						break;
			} else {
				srv_changes_send(s, c, m->handle, v, k, SRV_SEND_BOUNDED);
			}
			continue;
		}
		/* runs of the others' changes as Changes, own changes as Acks */
		size_t run = 0;
		for (size_t i = 0; i < k; i++) {
			if (chs[i]->sender != c || chs[i]->handle != m->handle)
				continue;
			if (i > run)
				srv_changes_send(s, c, m->handle, &v[run], i - run,
						 SRV_SEND_BOUNDED);
			send_ack(s, c, m->handle, chs[i]->client_batch, chs[i]->seq);
			chs[i]->acked = true;
			run = i + 1;
		}
		if (run < k)
			srv_changes_send(s, c, m->handle, &v[run], k - run, SRV_SEND_BOUNDED);
	}
	/* senders that are no longer members of the document (Leave, re-Hello) */
	for (size_t i = 0; i < k; i++)
		if (!chs[i]->acked && chs[i]->sender != NULL &&
		    chs[i]->sender->state == SRV_CONN_OPEN)
			send_ack(s, chs[i]->sender, chs[i]->handle, chs[i]->client_batch,
				 chs[i]->seq);
	for (size_t j = 0; j < n_cache; j++) {
		for (size_t i = 0; i < cache[j].n; i++)
			srv_msg_unref(cache[j].msgs[i]);
		free(cache[j].msgs);
	}
	free(v);
	free(chs);
}

void srv_turn_flush(srv *s)
{
	srv_turn *t = &s->turn;
	if (t->scheduled && s->ctx != NULL)
		lws_sul_cancel(&t->sul);
	t->scheduled = false;

	commit(s); /* 1 */

	for (size_t i = 0; i < t->n_docs; i++) { /* 2 */
		srv_doc *d = t->docs[i];
		if (d->state != SRV_DOC_READY || d->n_waiting == 0)
			continue;
		srv_member *m = d->members;
		while (m) {
			srv_member *next = m->doc_next; /* a failed Welcome removes m */
			if (m->state == SRV_MEMBER_WAITING)
				srv_room_welcome(s, m);
			m = next;
		}
	}

	for (size_t i = 0; i < t->n_docs; i++) { /* 3 */
		srv_doc *d = t->docs[i];
		if (d->state == SRV_DOC_READY && d->turn_first >= 0)
			broadcast(s, d);
		srv_sse_flush(s, d); /* the SSE streams: live changes, catch-ups */
	}

	for (size_t i = 0; i < t->n_acks; i++) { /* 4 */
		const srv_dup_ack *a = &t->acks[i];
		if (a->conn != NULL && a->conn->state == SRV_CONN_OPEN &&
		    a->doc->state == SRV_DOC_READY && a->seq > 0 && a->seq <= a->doc->head)
			send_ack(s, a->conn, a->handle, a->client_batch, a->seq);
	}

	for (size_t i = 0; i < t->n_docs; i++) { /* 5, and the reset */
		srv_doc *d = t->docs[i];
		bool committed = d->turn_first >= 0;
		d->turn_first = d->turn_last = -1;
		d->touched = false;
		for (srv_member *m = d->members; m; m = m->doc_next)
			m->welcomed_this_turn = false;
		if (committed) {
			srv_doc_snapshot(s, d, false);
			srv_doc_quiet_arm(s, d);
		}
	}
	for (size_t i = 0; i < t->n_changes; i++)
		wire_buf_free(&t->changes[i].payload);
	t->n_changes = t->n_acks = t->n_docs = 0;
	assert(srv_check(s) == 0);
}
