/*
 * docs.c - the document registry of docs.h: an open hash table keyed by doc
 * id (FNV-1a, chained, doubled at load factor 1), loading through
 * store_load, reloading when memory must go back to the committed log,
 * snapshots by the store's policy, and the idle unload of documents nobody
 * has joined for cfg.idle_unload_ms.
 */
#define _POSIX_C_SOURCE 200809L

#include "docs.h"

#include <stdlib.h>
#include <string.h>

#include <ev.h>

#include "commit.h"
#include "conn.h"
#include "room.h"

/* ---- the hash table ---------------------------------------------------------------- */

static uint64_t hash_id(const char *id, size_t len)
{
	uint64_t h = 0xcbf29ce484222325ull;
	for (size_t i = 0; i < len; i++) {
		h ^= (unsigned char)id[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

void srv_docs_init(srv_registry *r) { memset(r, 0, sizeof *r); }

static int grow(srv_registry *r)
{
	size_t n = r->n_buckets ? r->n_buckets * 2 : 64;
	srv_doc **b = calloc(n, sizeof *b);
	if (b == NULL)
		return -1;
	for (size_t i = 0; i < r->n_buckets; i++) {
		srv_doc *d = r->buckets[i];
		while (d) {
			srv_doc *next = d->hnext;
			size_t k = (size_t)(d->hash & (n - 1));
			d->hnext = b[k];
			b[k] = d;
			d = next;
		}
	}
	free(r->buckets);
	r->buckets = b;
	r->n_buckets = n;
	return 0;
}

srv_doc *srv_docs_find(srv *s, const char *id, size_t len)
{
	srv_registry *r = &s->docs;
	if (r->n_buckets == 0)
		return NULL;
	uint64_t h = hash_id(id, len);
	for (srv_doc *d = r->buckets[h & (r->n_buckets - 1)]; d; d = d->hnext)
		if (d->hash == h && strlen(d->id) == len && memcmp(d->id, id, len) == 0)
			return d;
	return NULL;
}

static void unlink_doc(srv *s, srv_doc *d)
{
	if (d->quiet_listed) {
		srv_doc **q = &s->quiet;
		while (*q != d)
			q = &(*q)->quiet_next;
		*q = d->quiet_next;
		d->quiet_listed = false;
	}
	srv_registry *r = &s->docs;
	srv_doc **pp = &r->buckets[d->hash & (r->n_buckets - 1)];
	while (*pp != d)
		pp = &(*pp)->hnext;
	*pp = d->hnext;
	r->count--;
}

static void free_doc(srv_doc *d)
{
	crdt_doc_free(d->crdt);
	wire_buf_free(&d->snap);
	free(d);
}

void srv_docs_free_all(srv *s)
{
	srv_registry *r = &s->docs;
	for (size_t i = 0; i < r->n_buckets; i++) {
		srv_doc *d = r->buckets[i];
		while (d) {
			srv_doc *next = d->hnext;
			free_doc(d);
			d = next;
		}
	}
	free(r->buckets);
	memset(r, 0, sizeof *r);
}

/* ---- loading -------------------------------------------------------------------------- */

static void load(srv *s, srv_doc *d)
{
	int64_t t0 = srv_mono_us();
	d->state = SRV_DOC_LOADING;
	store_load_result res;
	int rc = store_load_at(s->db, d->id, STORE_HEAD, STORE_LOAD_WIRE_SNAPSHOT, SRV_REPLICA,
			       &res);
	if (rc != STORE_OK) {
		d->state = SRV_DOC_FAILED;
		d->retry_at_ms = srv_mono_ms() + SRV_LOAD_RETRY_MS;
		s->metrics.doc_load_failures++;
		srv_err(&s->log, "document '%s': load failed: %s (%s)", d->id, store_strerror(rc),
			store_errmsg(s->db));
		return;
	}
	if (res.snapshots_skipped)
		srv_warn(&s->log,
			 "document '%s': %u damaged snapshot(s) skipped (newest at seq %llu: %s)",
			 d->id, res.snapshots_skipped, (unsigned long long)res.skipped_seq,
			 res.skipped_reason);
	d->crdt = res.doc;
	d->head = res.seq;
	d->next_seq = d->head + 1;
	/* loaded from a snapshot at the head: its bytes are the Snapshot the
	 * first snapshot Welcome sends, no encoding needed (room.c) */
	wire_buf_free(&d->snap);
	if (res.snapshot_wire != NULL) {
		d->snap =
			(wire_buf){res.snapshot_wire, res.snapshot_wire_len, res.snapshot_wire_len};
		d->snap_seq = res.seq;
	}
	d->bytes_total = d->snap_bytes_mark = 0;
	d->changes_since_snapshot = d->bytes_since_snapshot = 0;
	store_doc_info info;
	if (res.exists && store_doc_info_get(s->db, d->id, &info) == STORE_OK) {
		d->changes_since_snapshot = info.changes_since_snapshot;
		d->bytes_since_snapshot = info.bytes_since_snapshot;
	}
	d->state = SRV_DOC_READY;
	s->metrics.doc_loads++;
	srv_info(&s->log,
		 "document '%s': loaded at seq %llu (snapshot %llu + %llu changes%s) in %lld us",
		 d->id, (unsigned long long)d->head, (unsigned long long)res.snapshot_seq,
		 (unsigned long long)res.changes_applied,
		 d->snap.len > 0 ? ", its Snapshot kept" : "", (long long)(srv_mono_us() - t0));
}

srv_doc *srv_docs_open(srv *s, const char *id, size_t len)
{
	srv_doc *d = srv_docs_find(s, id, len);
	if (d != NULL) {
		if (d->state == SRV_DOC_FAILED && srv_mono_ms() >= d->retry_at_ms)
			load(s, d);
		return d;
	}
	if (len > WIRE_MAX_DOC_ID)
		return NULL;
	srv_registry *r = &s->docs;
	if (r->count >= r->n_buckets && grow(r) != 0)
		return NULL;
	d = calloc(1, sizeof *d);
	if (d == NULL)
		return NULL;
	memcpy(d->id, id, len);
	d->id[len] = '\0';
	d->hash = hash_id(id, len);
	d->turn_first = d->turn_last = -1;
	size_t k = (size_t)(d->hash & (r->n_buckets - 1));
	d->hnext = r->buckets[k];
	r->buckets[k] = d;
	r->count++;
	load(s, d);
	return d;
}

static int apply_payload(crdt_doc *doc, crdt_batch *scratch, const wire_buf *payload)
{
	crdt_batch_clear(scratch);
	if (wire_ops_decode(payload->data, payload->len, NULL, scratch) != WIRE_OK)
		return -1;
	for (size_t i = 0; i < crdt_batch_count(scratch); i++)
		if (crdt_doc_apply(doc, crdt_batch_get(scratch, i), NULL, NULL) < 0)
			return -1;
	return 0;
}

int srv_doc_reload(srv *s, srv_doc *d, bool with_turn)
{
	store_load_result res;
	int rc = store_load(s->db, d->id, SRV_REPLICA, &res);
	if (rc != STORE_OK) {
		srv_err(&s->log, "document '%s': reload failed: %s (%s)", d->id, store_strerror(rc),
			store_errmsg(s->db));
		return -1;
	}
	if (with_turn && d->turn_first >= 0) {
		crdt_batch *scratch = crdt_batch_new(NULL);
		int bad = scratch == NULL;
		for (long i = d->turn_first; !bad && i >= 0; i = s->turn.changes[i].next_in_doc)
			bad = apply_payload(res.doc, scratch, &s->turn.changes[i].payload) != 0;
		crdt_batch_free(scratch);
		if (bad) {
			srv_err(&s->log,
				"document '%s': reload could not re-apply this turn's changes",
				d->id);
			crdt_doc_free(res.doc);
			return -1;
		}
	}
	crdt_doc_free(d->crdt);
	d->crdt = res.doc;
	d->head = res.seq;
	if (!with_turn || d->turn_first < 0)
		d->next_seq = d->head + 1;
	s->metrics.doc_reloads++;
	srv_warn(&s->log, "document '%s': reloaded from storage at seq %llu", d->id,
		 (unsigned long long)d->head);
	return 0;
}

void srv_doc_fail(srv *s, srv_doc *d, const char *why)
{
	srv_err(&s->log, "document '%s': unavailable: %s", d->id, why);
	srv_turn_drop_doc(s, d, WIRE_ERR_STORAGE_FAILURE, why);
	while (d->members) {
		srv_member *m = d->members;
		srv_conn_error(m->conn, m->handle, WIRE_ERR_DOCUMENT_UNAVAILABLE, 0,
			       "the document is unavailable; join again later");
		srv_room_remove_member(s, m);
	}
	crdt_doc_free(d->crdt);
	d->crdt = NULL;
	d->state = SRV_DOC_FAILED;
	d->retry_at_ms = srv_mono_ms() + SRV_LOAD_RETRY_MS;
}

/* ---- committed changes, snapshots ------------------------------------------------------ */

void srv_doc_committed(srv_doc *d, const srv_change *c)
{
	if (c->counter_count > 0) {
		srv_recent *r = &d->recent[d->recent_next];
		r->replica = c->replica;
		r->counter_first = c->counter_first;
		r->counter_count = c->counter_count;
		r->seq = c->seq;
		d->recent_next = (d->recent_next + 1) % SRV_RECENT_MAX;
		if (d->recent_count < SRV_RECENT_MAX)
			d->recent_count++;
	}
	d->changes_since_snapshot++;
	d->bytes_since_snapshot += c->payload.len;
	d->bytes_total += c->payload.len;
}

bool srv_doc_snap_fresh(const srv_doc *d) { return d->snap.len > 0 && d->snap_seq == d->head; }

int srv_doc_snap_at_head(srv_doc *d)
{
	if (srv_doc_snap_fresh(d))
		return WIRE_OK;
	d->snap.len = 0;
	d->snap_seq = d->head;
	d->snap_bytes_mark = d->bytes_total;
	int rc = wire_snapshot_encode(d->crdt, d->id, d->head, &d->snap);
	if (rc != WIRE_OK)
		d->snap.len = 0;
	return rc;
}

void srv_doc_snapshot(srv *s, srv_doc *d, bool force)
{
	if (d->state != SRV_DOC_READY || d->head == 0 || d->next_seq != d->head + 1)
		return;
	bool due = force ? d->changes_since_snapshot > 0
			 : store_snapshot_due(s->db, d->changes_since_snapshot,
					      d->bytes_since_snapshot);
	if (!due)
		return;
	int64_t t0 = srv_mono_ms();
	/* Encode once, into d->snap (or reuse it when a Welcome encoded it at
	 * this head already): the store compresses those bytes, and the next
	 * snapshot Welcome at this head sends them (room.c). */
	int rc = STORE_ENOMEM;
	srv_doc_snap_at_head(d);
	if (d->snap.len > 0)
		rc = store_snapshot_encoded(s->db, d->id, d->head, d->crdt, d->snap.data,
					    d->snap.len);
	else /* out of memory for the encoding: let the store try on its own */
		rc = store_snapshot(s->db, d->id, d->head, d->crdt);
	if (rc != STORE_OK) {
		s->metrics.snapshot_failures++;
		srv_warn(&s->log, "document '%s': snapshot at seq %llu failed: %s (%s)", d->id,
			 (unsigned long long)d->head, store_strerror(rc), store_errmsg(s->db));
		return;
	}
	s->metrics.snapshots++;
	d->changes_since_snapshot = d->bytes_since_snapshot = 0;
	store_trim_result tr;
	rc = store_trim(s->db, d->id, &tr);
	if (rc != STORE_OK)
		srv_warn(&s->log, "document '%s': trim failed: %s (%s)", d->id, store_strerror(rc),
			 store_errmsg(s->db));
	srv_debug(&s->log,
		  "document '%s': snapshot at seq %llu in %lld ms; trimmed %llu changes, "
		  "log starts at %llu",
		  d->id, (unsigned long long)d->head, (long long)(srv_mono_ms() - t0),
		  (unsigned long long)(rc == STORE_OK ? tr.changes_removed : 0),
		  (unsigned long long)(rc == STORE_OK ? tr.log_start : 0));
}

/* ---- the Snapshot kept fresh when a document goes quiet ---------------------------------- */

/* Whether the changes since d->snap was encoded weigh at least as much as
 * a Snapshot (its last size, or the text's length in code points as a lower
 * bound before the first): a member that missed them would be sent the
 * snapshot, so it is worth having ready. The same rule bounds the work:
 * the bytes encoded this way never pass the bytes committed. */
static bool snap_worth_encoding(const srv_doc *d)
{
	if (d->state != SRV_DOC_READY || srv_doc_snap_fresh(d))
		return false;
	uint64_t since = d->bytes_total - d->snap_bytes_mark;
	uint64_t weight = d->snap.len > 0 ? d->snap.len : crdt_doc_length(d->crdt);
	return since > 0 && since >= weight;
}

static void quiet_schedule(srv *s, int64_t ms);

/* Encode the Snapshots of the listed documents that have been quiet for
 * cfg.quiet_snapshot_ms; wait again for the others. */
static void quiet_run(srv *s)
{
	s->quiet_scheduled = false;
	int64_t now = srv_mono_ms(), next = INT64_MAX;
	for (srv_doc **pp = &s->quiet; *pp;) {
		srv_doc *d = *pp;
		if (d->state == SRV_DOC_READY && d->quiet_due_ms > now) {
			next = d->quiet_due_ms < next ? d->quiet_due_ms : next;
			pp = &d->quiet_next;
			continue;
		}
		*pp = d->quiet_next;
		d->quiet_listed = false;
		/* no change of this turn still uncommitted (next_seq), else the
		 * commit re-arms it */
		if (!snap_worth_encoding(d) || d->next_seq != d->head + 1)
			continue;
		int64_t t0 = srv_mono_us();
		if (srv_doc_snap_at_head(d) == WIRE_OK) {
			s->metrics.quiet_snapshots++;
			srv_debug(&s->log,
				  "document '%s': quiet, its Snapshot encoded at seq %llu (%zu B) in "
				  "%lld us",
				  d->id, (unsigned long long)d->head, d->snap.len,
				  (long long)(srv_mono_us() - t0));
		}
	}
	if (s->quiet != NULL && !s->stopping)
		quiet_schedule(s, next == INT64_MAX || next <= now ? 1 : next - now);
}

static void quiet_sul_cb(lws_sorted_usec_list_t *sul)
{
	quiet_run(lws_container_of(sul, srv, quiet_sul));
}

static void quiet_ev_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	(void)loop;
	(void)revents;
	quiet_run(t->data);
}

/* lws's libev plugin re-arms its own timer only from its callbacks, after
 * the timers that were due: a sul scheduled from the turn's flush (a sul
 * itself) waited for the next network event. On libev the quiet timer is
 * therefore libev's own; on lws's poll() loop a sul is exact. */
static void quiet_schedule(srv *s, int64_t ms)
{
	if (s->ev_loop == NULL) {
		lws_sul_schedule(s->ctx, 0, &s->quiet_sul, quiet_sul_cb, ms * LWS_US_PER_MS);
		s->quiet_scheduled = true;
		return;
	}
	ev_timer *t = s->quiet_timer;
	if (t == NULL) {
		if ((t = calloc(1, sizeof *t)) == NULL)
			return; /* no early Snapshot: the Welcome encodes it */
		ev_init(t, quiet_ev_cb);
		t->data = s;
		s->quiet_timer = t;
	}
	ev_timer_stop(s->ev_loop, t);
	ev_timer_set(t, (double)ms / 1000.0, 0.);
	ev_timer_start(s->ev_loop, t);
	s->quiet_scheduled = true;
}

void srv_doc_quiet_arm(srv *s, srv_doc *d)
{
	int64_t quiet_ms = (int64_t)s->cfg.quiet_snapshot_ms;
	if (quiet_ms == 0 || s->stopping || s->ctx == NULL || !snap_worth_encoding(d))
		return;
	d->quiet_due_ms = srv_mono_ms() + quiet_ms;
	if (!d->quiet_listed) {
		d->quiet_next = s->quiet;
		s->quiet = d;
		d->quiet_listed = true;
	}
	if (!s->quiet_scheduled)
		quiet_schedule(s, quiet_ms);
}

void srv_docs_quiet_stop(srv *s)
{
	lws_sul_cancel(&s->quiet_sul);
	if (s->quiet_timer != NULL && s->ev_loop != NULL)
		ev_timer_stop(s->ev_loop, s->quiet_timer);
	free(s->quiet_timer);
	s->quiet_timer = NULL;
	s->quiet_scheduled = false;
}

/* ---- idle unload ------------------------------------------------------------------------- */

static bool unloadable(const srv_doc *d)
{
	return d->n_members == 0 && d->n_waiting == 0 && d->turn_first < 0 && !d->touched &&
	       d->sse == NULL; /* SSE streams are readers (sse.h) */
}

void srv_docs_tick(srv *s, int64_t now_ms)
{
	srv_registry *r = &s->docs;
	for (size_t i = 0; i < r->n_buckets; i++) {
		srv_doc *d = r->buckets[i];
		while (d) {
			srv_doc *next = d->hnext;
			bool drop = false;
			if (d->state == SRV_DOC_READY && unloadable(d) && d->idle_since_ms > 0 &&
			    now_ms - d->idle_since_ms >= (int64_t)s->cfg.idle_unload_ms) {
				srv_doc_snapshot(s, d, true);
				srv_info(&s->log, "document '%s': unloaded after %lld ms idle",
					 d->id, (long long)(now_ms - d->idle_since_ms));
				s->metrics.doc_unloads++;
				drop = true;
			} else if (d->state == SRV_DOC_FAILED && unloadable(d) &&
				   now_ms >= d->retry_at_ms) {
				drop = true;
			}
			if (drop) {
				unlink_doc(s, d);
				free_doc(d);
			}
			d = next;
		}
	}
}

void srv_docs_snapshot_all(srv *s)
{
	srv_registry *r = &s->docs;
	for (size_t i = 0; i < r->n_buckets; i++)
		for (srv_doc *d = r->buckets[i]; d; d = d->hnext)
			srv_doc_snapshot(s, d, true);
}
