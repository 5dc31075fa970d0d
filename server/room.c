/*
 * room.c - joining, leaving and editing documents (room.h).
 *
 * Validation of an Update, in this order, so that nothing is ever half
 * applied (srv.h invariant 1):
 *  1. the handle is joined (UNKNOWN_DOCUMENT), the server is not
 *     stopping (SHUTTING_DOWN) and the token lets it write (FORBIDDEN);
 *  2. every op belongs to the member's replica (INVALID_OP): a client may
 *     only send its own edits, so it cannot take over another replica's
 *     counters;
 *  3. counters continue where the replica left off, without gaps, and every
 *     reference (insert origins, delete targets) is to a unit the document
 *     already has or an earlier op of the same Update creates
 *     (MISSING_DEPENDENCY). The server keeps no pending ops;
 *  4. if every op is already known, the Update is a retransmission: it is
 *     acked with the seq its change got the first time, and no change is
 *     made;
 *  5. the document stays within --max-doc-bytes (TOO_LARGE, quota.h); the
 *     payload is encoded and the change slot reserved (the only steps
 *     that can fail for lack of memory) before anything is applied;
 *  6. the ops are applied in order. The engine leaves the document
 *     unchanged when an op fails, but ops before it are in; so if op k > 0
 *     fails (a Lamport time not after its dependencies, a reference to a
 *     unit of the wrong kind: what step 3 cannot see), the document is
 *     rebuilt from storage plus this turn's other changes. The sender gets
 *     the op's error (INVALID_OP, ...), nothing else changes.
 */
#define _POSIX_C_SOURCE 200809L

#include "room.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "commit.h"
#include "conn.h"
#include "docs.h"
#include "sse.h"

/* ---- memberships ----------------------------------------------------------------- */

srv_member *srv_room_member(srv_conn *c, uint32_t handle)
{
	for (srv_member *m = c->members; m; m = m->conn_next)
		if (m->handle == handle)
			return m;
	return NULL;
}

/* Send presence p to every welcomed member of d but `except`. */
static void relay_presence(srv *s, srv_doc *d, const srv_member *except, const wire_presence *p)
{
	(void)s;
	for (srv_member *o = d->members; o; o = o->doc_next) {
		if (o == except || o->state != SRV_MEMBER_LIVE || o->conn->state != SRV_CONN_OPEN)
			continue;
		wire_buf b = {0};
		if (wire_server_encode_presence(&b, o->handle, p) == WIRE_OK)
			srv_conn_send_buf(o->conn, &b, SRV_SEND_BOUNDED);
		wire_buf_free(&b);
	}
}

void srv_room_remove_member(srv *s, srv_member *m)
{
	srv_doc *d = m->doc;
	srv_conn *c = m->conn;
	if (m->doc_prev)
		m->doc_prev->doc_next = m->doc_next;
	else
		d->members = m->doc_next;
	if (m->doc_next)
		m->doc_next->doc_prev = m->doc_prev;
	d->n_members--;
	if (m->state == SRV_MEMBER_WAITING)
		d->n_waiting--;
	if (m->conn_prev)
		m->conn_prev->conn_next = m->conn_next;
	else
		c->members = m->conn_next;
	if (m->conn_next)
		m->conn_next->conn_prev = m->conn_prev;
	c->n_members--;
	if (m->has_presence) {
		wire_presence gone = m->presence->p;
		gone.clock++;
		gone.gone = true;
		gone.has_anchor = gone.has_head = false;
		relay_presence(s, d, m, &gone);
	}
	if (d->n_members == 0) {
		int64_t now = srv_mono_ms();
		d->idle_since_ms = now > 0 ? now : 1;
	}
	srv_debug(&s->log, "conn %llu: handle %u left '%s'", (unsigned long long)c->id, m->handle,
		  d->id);
	free(m->presence);
	free(m->author);
	free(m);
}

void srv_room_conn_gone(srv *s, srv_conn *c)
{
	while (c->members)
		srv_room_remove_member(s, c->members);
}

void srv_room_leave(srv *s, srv_conn *c, uint32_t handle)
{
	srv_member *m = srv_room_member(c, handle);
	if (m == NULL) {
		srv_conn_error(c, handle, WIRE_ERR_UNKNOWN_DOCUMENT, 0, "handle %u is not joined",
			       handle);
		return;
	}
	srv_info(&s->log, "conn %llu: handle %u leaves '%s'", (unsigned long long)c->id, handle,
		 m->doc->id);
	srv_room_remove_member(s, m);
}

/* ---- Hello ---------------------------------------------------------------------------- */

void srv_room_hello(srv *s, srv_conn *c, const wire_client_msg *msg)
{
	const wire_hello *h = &msg->hello;
	uint32_t handle = msg->doc;
	if (s->stopping) {
		srv_conn_error(c, handle, WIRE_ERR_SHUTTING_DOWN, 0, "the server is stopping");
		return;
	}
	bool read_only;
	char author[SRV_TOKEN_SUB_MAX + 1];
	if (srv_auth_hello(s, c, handle, h, &read_only, author, sizeof author) != 0)
		return; /* UNAUTHORIZED or FORBIDDEN sent (auth.c) */
	if (srv_room_member(c, handle) != NULL) {
		srv_conn_error(c, handle, WIRE_ERR_BAD_MESSAGE, 0,
			       "handle %u is already open: Leave it first", handle);
		return;
	}
	for (const srv_member *o = c->members; o; o = o->conn_next)
		if (strlen(o->doc->id) == h->doc_id_len &&
		    memcmp(o->doc->id, h->doc_id, h->doc_id_len) == 0) {
			srv_conn_error(
				c, handle, WIRE_ERR_BAD_MESSAGE, 0,
				"the document is already open on this connection as handle %u",
				o->handle);
			return;
		}
	if (c->q_bytes > s->cfg.send_queue_bytes) {
		/* A Welcome and its catch-up may pass the send-queue bound, but
		 * only onto a queue within it: else a client that never reads
		 * could have one snapshot queued per Hello (Leave, Hello, ...). */
		srv_warn(&s->log,
			 "conn %llu: Hello with %zu bytes still queued, disconnecting as a slow "
			 "consumer",
			 (unsigned long long)c->id, c->q_bytes);
		srv_conn_close(c, SRV_CLOSE_SLOW_CONSUMER, "slow consumer; resume by seq", false,
			       SRV_CLOSED_SLOW_CONSUMER);
		return;
	}
	if (c->n_members >= s->cfg.max_docs_per_conn) {
		srv_conn_error(c, handle, WIRE_ERR_TOO_MANY_DOCUMENTS, 0,
			       "at most %llu documents per connection",
			       (unsigned long long)s->cfg.max_docs_per_conn);
		return;
	}
	srv_doc *d = srv_docs_open(s, h->doc_id, h->doc_id_len);
	if (d == NULL) {
		srv_conn_error(c, handle, WIRE_ERR_INTERNAL, 0, "out of memory");
		return;
	}
	if (d->state != SRV_DOC_READY) {
		srv_conn_error(c, handle, WIRE_ERR_DOCUMENT_UNAVAILABLE, 0,
			       "the document could not be loaded; try again later");
		return;
	}
	srv_member *m = calloc(1, sizeof *m);
	if (m == NULL) {
		srv_conn_error(c, handle, WIRE_ERR_INTERNAL, 0, "out of memory");
		return;
	}
	m->conn = c;
	m->doc = d;
	m->handle = handle;
	m->replica = h->replica;
	m->last_seq = h->last_seq;
	m->read_only = read_only;
	size_t author_len = strlen(author);
	if (author_len > 0) {
		if ((m->author = malloc(author_len + 1)) == NULL) {
			free(m);
			srv_conn_error(c, handle, WIRE_ERR_INTERNAL, 0, "out of memory");
			return;
		}
		memcpy(m->author, author, author_len + 1);
	}
	m->state = SRV_MEMBER_WAITING;
	m->doc_next = d->members;
	if (d->members)
		d->members->doc_prev = m;
	d->members = m;
	d->n_members++;
	d->n_waiting++;
	d->idle_since_ms = 0;
	m->conn_next = c->members;
	if (c->members)
		c->members->conn_prev = m;
	c->members = m;
	c->n_members++;
	if (srv_turn_touch(s, d) != 0) {
		srv_room_remove_member(s, m);
		srv_conn_error(c, handle, WIRE_ERR_INTERNAL, 0, "out of memory");
		return;
	}
	srv_info(&s->log,
		 "conn %llu: handle %u joins '%s' (replica %016" PRIx64 ", last_seq %" PRIu64
		 ", head %" PRIu64 ")",
		 (unsigned long long)c->id, handle, d->id, (uint64_t)h->replica, h->last_seq,
		 d->head);
}

/* ---- Welcome ------------------------------------------------------------------------------ */

/* What a change costs in a Changes message beyond its payload: the tags
 * and length prefixes of Change and its fields, and the seq varint (an
 * estimate on the high side for the seqs of real documents). */
#define CHANGE_OVERHEAD 8

typedef struct catchup {
	wire_change *v;
	size_t n, cap;
	size_t bytes, budget; /* payloads + CHANGE_OVERHEAD each, read so far */
	size_t crossing;      /* over: the cost of the change that crossed the budget */
	bool over;
} catchup;

static int catchup_row(void *ctx, const store_change_row *row)
{
	catchup *cu = ctx;
	size_t cost = row->payload_len + CHANGE_OVERHEAD;
	if (cu->bytes + cost > cu->budget) {
		cu->over = true;
		cu->crossing = cost;
		return 1;
	}
	if (cu->n == cu->cap) {
		size_t cap = cu->cap ? cu->cap * 2 : 64;
		wire_change *v = realloc(cu->v, cap * sizeof *v);
		if (v == NULL)
			return STORE_ENOMEM;
		cu->v = v;
		cu->cap = cap;
	}
	uint8_t *copy = malloc(row->payload_len ? row->payload_len : 1);
	if (copy == NULL)
		return STORE_ENOMEM;
	if (row->payload_len)
		memcpy(copy, row->payload, row->payload_len);
	cu->v[cu->n++] = (wire_change){row->seq, copy, row->payload_len};
	cu->bytes += cost;
	return 0;
}

static void catchup_free(catchup *cu)
{
	for (size_t i = 0; i < cu->n; i++)
		free((void *)cu->v[i].ops);
	free(cu->v);
}

/* The catch-up rule: read the log after L into cu unless a snapshot Welcome
 * is smaller (or the log no longer reaches back, or the catch-up would pass
 * the send-queue bound). The log is read only as far as the snapshot's size:
 * the cached Snapshot's when it is at the head, else a lower bound (the
 * snapshot holds at least the visible text, one byte or more per code
 * point), so a small catch-up never pays for encoding a snapshot. Only when
 * the log passes that bound is the snapshot encoded (and cached) and the
 * two compared; the log read then goes on with the real size as budget.
 * When the catch-up is the whole log (last_seq 0), its size is known
 * without reading it (store_doc_info.log_bytes) and decides at once. Returns STORE_OK with
 * *snapshot set, or the error of the log read or the encoding (*why says
 * which). */
static int choose_catchup(srv *s, srv_doc *d, uint64_t L, catchup *cu, bool *snapshot,
			  const char **why)
{
	size_t cap = s->cfg.send_queue_bytes;
	bool lower = false; /* the budget is the lower bound, not the snapshot's size */
	cu->budget = cap;
	if (srv_doc_snap_fresh(d)) {
		if (d->snap.len < cap)
			cu->budget = d->snap.len;
	} else if (crdt_doc_length(d->crdt) < cap) {
		cu->budget = crdt_doc_length(d->crdt);
		lower = true;
	}
	*snapshot = false;
	*why = "";
	/* A first join of an untrimmed document: the catch-up is the whole
	 * log, whose size the store keeps (store_doc_info.log_bytes), so a long
	 * history needs no read to lose to the snapshot. */
	store_doc_info info;
	if (L == 0 && store_doc_info_get(s->db, d->id, &info) == STORE_OK &&
	    info.head_seq == d->head && info.log_start == 1) {
		size_t whole = info.log_bytes + (size_t)(d->head - L) * CHANGE_OVERHEAD;
		cu->crossing = whole; /* for the debug line */
		if (whole > cap) {
			*why = "the log passes the send-queue bound";
			*snapshot = true;
			return STORE_OK;
		}
		if (whole > cu->budget) {
			if (lower && srv_doc_snap_at_head(d) != WIRE_OK) {
				*why = "encode";
				return STORE_ENOMEM;
			}
			if (d->snap.len < whole) {
				*why = "smaller than the log";
				*snapshot = true;
				return STORE_OK;
			}
			lower = false; /* the log is smaller: read it, bounded as ever */
			cu->budget = d->snap.len < cap ? d->snap.len : cap;
		}
		cu->crossing = 0;
	}
	for (;;) {
		int rc = store_changes(s->db, d->id, L + cu->n, 0, catchup_row, cu);
		if (rc == STORE_ETRIMMED) {
			*why = "the log no longer reaches back";
			break;
		}
		if (rc != STORE_OK && !(rc == 1 && cu->over)) {
			*why = "log";
			return rc;
		}
		if (!cu->over)
			return STORE_OK; /* the whole log catch-up, within budget */
		if (!lower) {
			*why = cu->budget == cap ? "the log passes the send-queue bound"
						 : "smaller than the log";
			break;
		}
		/* past the lower bound: what does the snapshot really weigh? */
		int wrc = srv_doc_snap_at_head(d);
		if (wrc != WIRE_OK) {
			*why = "encode";
			return wrc == WIRE_ENOMEM ? STORE_ENOMEM : STORE_EINVAL;
		}
		if (d->snap.len < cu->bytes + cu->crossing) {
			*why = "smaller than the log";
			break;
		}
		lower = false; /* rare: go on reading, up to the snapshot's size */
		cu->over = false;
		cu->budget = d->snap.len < cap ? d->snap.len : cap;
	}
	*snapshot = true;
	return STORE_OK;
}

void srv_room_welcome(srv *s, srv_member *m)
{
	int64_t t0 = srv_mono_us(); /* for the debug line */
	srv_doc *d = m->doc;
	srv_conn *c = m->conn;
	uint64_t H = d->head, L = m->last_seq;
	m->state = SRV_MEMBER_LIVE;
	m->welcomed_this_turn = true;
	d->n_waiting--;
	if (c->state != SRV_CONN_OPEN)
		return;
	bool snapshot = L > H;
	const char *why = "the client is beyond the head";
	if (L > H)
		srv_warn(&s->log,
			 "conn %llu: handle %u: last_seq %" PRIu64 " is beyond the head %" PRIu64
			 " of '%s': sending the whole document",
			 (unsigned long long)c->id, m->handle, L, H, d->id);
	catchup cu = {0};
	size_t log_bytes = 0; /* the log catch-up, or as much of it as was read */
	if (!snapshot && L < H) {
		int rc = choose_catchup(s, d, L, &cu, &snapshot, &why);
		log_bytes = cu.bytes + cu.crossing;
		if (rc != STORE_OK) {
			srv_err(&s->log,
				"document '%s': catch-up from %" PRIu64 " failed (%s): %s (%s)",
				d->id, L, why, store_strerror(rc),
				strcmp(why, "log") == 0 ? store_errmsg(s->db) : "");
			catchup_free(&cu);
			srv_conn_error(c, m->handle, WIRE_ERR_INTERNAL, 0,
				       "could not read the document's log");
			srv_room_remove_member(s, m);
			return;
		} else if (!snapshot && cu.n != H - L) {
			srv_err(&s->log,
				"document '%s': catch-up from %" PRIu64 " got %zu changes, "
				"expected %" PRIu64,
				d->id, L, cu.n, H - L);
			catchup_free(&cu);
			srv_conn_error(c, m->handle, WIRE_ERR_INTERNAL, 0, "inconsistent log");
			srv_room_remove_member(s, m);
			return;
		}
	}
	if (snapshot) {
		catchup_free(&cu);
		cu = (catchup){0};
	}
	wire_buf b = {0};
	int rc = snapshot ? srv_doc_snap_at_head(d) : WIRE_OK;
	if (rc == WIRE_OK)
		rc = wire_server_encode_welcome(&b, m->handle, H, m->read_only,
						snapshot ? d->snap.data : NULL,
						snapshot ? d->snap.len : 0);
	if (rc == WIRE_OK && srv_conn_send_buf(c, &b, SRV_SEND_UNBOUNDED) != 0)
		rc = WIRE_ENOMEM;
	if (rc == WIRE_OK && cu.n > 0 &&
	    srv_changes_send(s, c, m->handle, cu.v, cu.n, SRV_SEND_UNBOUNDED) != 0)
		rc = WIRE_ENOMEM;
	wire_buf_free(&b);
	if (rc != WIRE_OK) {
		catchup_free(&cu);
		srv_err(&s->log, "document '%s': Welcome failed: %s", d->id, wire_strerror(rc));
		srv_conn_error(c, m->handle, WIRE_ERR_INTERNAL, 0, "could not send the document");
		srv_room_remove_member(s, m);
		return;
	}
	/* then the presence of the others (docs/PROTOCOL.md 5.8) */
	for (const srv_member *o = d->members; o; o = o->doc_next) {
		if (o == m || !o->has_presence)
			continue;
		wire_buf pb = {0};
		if (wire_server_encode_presence(&pb, m->handle, &o->presence->p) == WIRE_OK)
			srv_conn_send_buf(c, &pb, SRV_SEND_UNBOUNDED);
		wire_buf_free(&pb);
	}
	s->metrics.welcomes++;
	s->metrics.welcome_snapshots += snapshot;
	srv_metrics_catchup(&s->metrics, cu.n);
	if (snapshot)
		srv_debug(&s->log,
			  "conn %llu: handle %u welcomed to '%s' at %" PRIu64
			  " (snapshot of %zu B: %s; log catch-up %s%zu B) in %lld us",
			  (unsigned long long)c->id, m->handle, d->id, H, d->snap.len, why,
			  L < H && log_bytes > 0 ? ">= " : "", log_bytes,
			  (long long)(srv_mono_us() - t0));
	else
		srv_debug(&s->log,
			  "conn %llu: handle %u welcomed to '%s' at %" PRIu64
			  " (%s%zu changes, %zu B) in %lld us",
			  (unsigned long long)c->id, m->handle, d->id, H,
			  cu.n ? "changes: " : "up to date: ", cu.n, cu.bytes,
			  (long long)(srv_mono_us() - t0));
	catchup_free(&cu);
}

/* ---- Update -------------------------------------------------------------------------------- */

/* Whether unit `id` exists in d or is made by an earlier op of the Update
 * being checked (replica r, whose counters below `expected` are known). */
static bool known(const srv_doc *d, crdt_replica r, uint64_t expected, crdt_id id)
{
	if (id.replica == r)
		return id.counter < expected;
	return id.counter < crdt_doc_seen(d->crdt, id.replica);
}

typedef struct find_seq {
	crdt_replica replica;
	uint32_t counter;
	uint64_t seq;
} find_seq;

static int find_seq_row(void *ctx, const store_change_row *row)
{
	find_seq *f = ctx;
	if (row->replica == f->replica && row->counter_count > 0 &&
	    f->counter >= row->counter_first &&
	    f->counter - row->counter_first < row->counter_count) {
		f->seq = row->seq;
		return 1;
	}
	return 0;
}

/* The seq of the change that brought unit (r, counter): this turn's
 * changes, the recent ring, then the stored log; the head when the change
 * has been trimmed away (it is durable by then in any case). */
static uint64_t original_seq(srv *s, srv_doc *d, crdt_replica r, uint32_t counter)
{
	for (long i = d->turn_first; i >= 0; i = s->turn.changes[i].next_in_doc) {
		const srv_change *ch = &s->turn.changes[i];
		if (ch->replica == r && counter >= ch->counter_first &&
		    counter - ch->counter_first < ch->counter_count)
			return ch->seq;
	}
	for (size_t k = 0; k < d->recent_count; k++) {
		size_t j = (d->recent_next + SRV_RECENT_MAX - 1 - k) % SRV_RECENT_MAX;
		const srv_recent *rc = &d->recent[j];
		if (rc->replica == r && counter >= rc->counter_first &&
		    counter - rc->counter_first < rc->counter_count)
			return rc->seq;
	}
	uint64_t start = 1, head = 0;
	find_seq f = {r, counter, 0};
	if (store_log_start(s->db, d->id, &start, &head) == STORE_OK && start <= head)
		store_changes(s->db, d->id, start - 1, 0, find_seq_row, &f);
	return f.seq ? f.seq : d->head;
}

/* A contiguous copy of the batch's ops for wire_ops_encode (the text
 * pointers stay the batch's). */
static crdt_op *ops_array(srv *s, const crdt_batch *b, size_t n)
{
	if (n > s->ops_cap) {
		crdt_op *p = realloc(s->ops_scratch, n * sizeof *p);
		if (p == NULL)
			return NULL;
		s->ops_scratch = p;
		s->ops_cap = n;
	}
	for (size_t i = 0; i < n; i++)
		s->ops_scratch[i] = *crdt_batch_get(b, i);
	return s->ops_scratch;
}

void srv_room_update(srv *s, srv_conn *c, const wire_client_msg *msg)
{
	uint64_t batch = msg->client_batch;
	srv_member *mb = srv_room_member(c, msg->doc);
	if (mb == NULL || mb->state != SRV_MEMBER_LIVE) {
		srv_conn_error(c, msg->doc, WIRE_ERR_UNKNOWN_DOCUMENT, batch,
			       mb ? "wait for the Welcome of handle %u" : "handle %u is not open",
			       msg->doc);
		return;
	}
	if (s->stopping) {
		srv_conn_error(c, msg->doc, WIRE_ERR_SHUTTING_DOWN, batch,
			       "the server is stopping");
		return;
	}
	if (mb->read_only) {
		s->metrics.refusals[SRV_REFUSED_READ_ONLY]++;
		srv_conn_error(c, msg->doc, WIRE_ERR_FORBIDDEN, batch,
			       "read only: the token grants reading this document");
		return;
	}
	srv_doc *d = mb->doc;
	crdt_replica r = mb->replica;
	size_t n = crdt_batch_count(msg->ops);
	uint32_t seen0 = crdt_doc_seen(d->crdt, r);
	uint64_t expected = seen0, last_end = 0;
	bool all_known = true;

	/* steps 2 and 3: ownership, contiguity, references */
	for (size_t i = 0; i < n; i++) {
		const crdt_op *op = crdt_batch_get(msg->ops, i);
		if (op->id.replica != r) {
			srv_conn_error(c, msg->doc, WIRE_ERR_INVALID_OP, batch,
				       "op %zu is replica %016" PRIx64
				       "'s; this member is %016" PRIx64,
				       i, (uint64_t)op->id.replica, (uint64_t)r);
			return;
		}
		uint64_t end = (uint64_t)op->id.counter + op->len;
		if (op->id.counter > expected) {
			srv_conn_error(c, msg->doc, WIRE_ERR_MISSING_DEPENDENCY, batch,
				       "op %zu starts at counter %" PRIu32
				       " but the replica's next "
				       "counter is %" PRIu64,
				       i, op->id.counter, expected);
			return;
		}
		if (end > seen0)
			all_known = false;
		bool refs_ok;
		if (op->kind == CRDT_OP_INSERT) {
			refs_ok = (op->left.replica == CRDT_NO_REPLICA ||
				   known(d, r, op->id.counter, op->left)) &&
				  (op->right.replica == CRDT_NO_REPLICA ||
				   known(d, r, op->id.counter, op->right));
		} else {
			crdt_id last = {op->target.replica, op->target.counter + op->len - 1};
			refs_ok = op->target.replica != CRDT_NO_REPLICA &&
				  (uint64_t)op->target.counter + op->len - 1 <= UINT32_MAX &&
				  known(d, r, op->id.counter, last);
		}
		if (!refs_ok && end > seen0) {
			srv_conn_error(c, msg->doc, WIRE_ERR_MISSING_DEPENDENCY, batch,
				       "op %zu refers to units the document does not have", i);
			return;
		}
		if (end > expected)
			expected = end;
		if (end > last_end)
			last_end = end;
	}

	/* step 4: a retransmission */
	if (all_known) {
		uint64_t seq = original_seq(s, d, r, (uint32_t)(last_end - 1));
		s->metrics.updates_duplicate++;
		srv_debug(&s->log,
			  "conn %llu: handle %u batch %" PRIu64 " already applied (seq %" PRIu64
			  ")",
			  (unsigned long long)c->id, msg->doc, batch, seq);
		if (srv_turn_add_dup_ack(s, c, d, msg->doc, batch, seq) != 0)
			srv_conn_error(c, msg->doc, WIRE_ERR_INTERNAL, batch, "out of memory");
		return;
	}

	/* step 5: everything that can fail for memory, before applying */
	crdt_op *ops = ops_array(s, msg->ops, n);
	if (ops != NULL && !srv_quota_doc_fits(s, d, ops, n)) {
		srv_conn_error(c, msg->doc, WIRE_ERR_TOO_LARGE, batch,
			       "the document would grow past %llu bytes",
			       (unsigned long long)s->cfg.max_doc_bytes);
		return;
	}
	srv_change *ch = ops ? srv_turn_add_change(s, d) : NULL;
	if (ch == NULL) {
		srv_conn_error(c, msg->doc, WIRE_ERR_INTERNAL, batch, "out of memory");
		return;
	}
	int rc = wire_ops_encode(ops, n, &ch->payload);
	if (rc != WIRE_OK) {
		srv_turn_pop_change(s, d);
		srv_conn_error(c, msg->doc, wire_error_code(rc), batch, "%s", wire_strerror(rc));
		return;
	}

	/* step 6: apply */
	for (size_t k = 0; k < n; k++) {
		/* visible edits are recorded for the SSE streams, if any (sse.h) */
		int st = crdt_doc_apply(d->crdt, &ops[k], d->sse ? srv_sse_on_patch : NULL, d->sse);
		if (st >= 0 && st != CRDT_PENDING)
			continue;
		int code =
			st == CRDT_PENDING ? WIRE_ERR_MISSING_DEPENDENCY : wire_crdt_error_code(st);
		if (code == 0)
			code = WIRE_ERR_INTERNAL;
		srv_turn_pop_change(s, d);
		srv_sse_discard(d, d->next_seq);
		srv_conn_error(c, msg->doc, code, batch, "op %zu: %s", k,
			       st == CRDT_PENDING ? "depends on ops not seen" : crdt_strerror(st));
		if (k > 0 || st == CRDT_PENDING) {
			/* ops 0..k-1 are in: back to log + turn */
			if (srv_doc_reload(s, d, true) != 0)
				srv_doc_fail(s, d, "could not roll back a refused Update");
		}
		return;
	}
	uint32_t seen1 = crdt_doc_seen(d->crdt, r);
	ch->seq = d->next_seq++;
	ch->sender = c;
	ch->handle = msg->doc;
	ch->client_batch = batch;
	ch->replica = r;
	ch->counter_first = seen0;
	ch->counter_count = seen1 - seen0;
	ch->time_ms = srv_wall_ms();
	if (mb->author != NULL) /* at most SRV_TOKEN_SUB_MAX bytes (auth.c) */
		memcpy(ch->author, mb->author, strlen(mb->author) + 1);
	else
		ch->author[0] = '\0';
	s->metrics.updates_accepted++;
	s->metrics.ops_applied += msg->n_ops;
}

/* ---- presence -------------------------------------------------------------------------------- */

void srv_room_presence(srv *s, srv_conn *c, const wire_client_msg *msg)
{
	srv_member *mb = srv_room_member(c, msg->doc);
	if (mb == NULL || mb->state != SRV_MEMBER_LIVE) {
		srv_conn_error(c, msg->doc, WIRE_ERR_UNKNOWN_DOCUMENT, 0,
			       mb ? "wait for the Welcome of handle %u" : "handle %u is not open",
			       msg->doc);
		return;
	}
	const wire_presence *p = &msg->presence;
	if (p->replica != mb->replica) {
		srv_conn_error(c, msg->doc, WIRE_ERR_BAD_MESSAGE, 0,
			       "presence of replica %016" PRIx64
			       " on a handle joined as %016" PRIx64,
			       (uint64_t)p->replica, (uint64_t)mb->replica);
		return;
	}
	if (mb->has_presence && p->clock <= mb->presence->p.clock)
		return; /* stale: receivers would drop it anyway */
	/* keep a copy (strings included) for members who join later; out of
	 * memory, it is dropped like a lost datagram (presence is ephemeral) */
	if (mb->presence == NULL && (mb->presence = malloc(sizeof *mb->presence)) == NULL)
		return;
	srv_presence *sp = mb->presence;
	sp->p = *p;
	memcpy(sp->name, p->name ? p->name : "", p->name_len);
	sp->name[p->name_len] = '\0';
	memcpy(sp->color, p->color ? p->color : "", p->color_len);
	sp->color[p->color_len] = '\0';
	sp->p.name = sp->name;
	sp->p.color = sp->color;
	mb->has_presence = !p->gone;
	relay_presence(s, mb->doc, mb, &sp->p);
}
