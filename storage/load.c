/*
 * load.c - rebuilding a document: the newest valid snapshot at or before the
 * wanted seq, then the changes after it replayed in seq order.
 *
 * Everything is read inside one read transaction, so a load sees one
 * consistent state of the database even while the server appends (WAL).
 * Snapshots are tried newest first; a damaged one is reported and the next
 * older one tried, as long as the log still reaches back to just after it.
 * When no snapshot serves, the log alone must start at seq 1; otherwise the
 * load fails with STORE_ENOBASE. A change that is missing, does not decode
 * or does not apply fails the load with STORE_ECORRUPT: a load never
 * returns a document that is not exactly the state at the seq it reports.
 * With STORE_LOAD_WIRE_SNAPSHOT, a load whose base snapshot is at the target
 * itself (no change replayed) also hands out that snapshot's decompressed
 * bytes, which are the wire Snapshot message of the loaded state, so the
 * server can send it without encoding the document again.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* Stored payloads were checked against the wire limits when the server
 * accepted them; here the decoder only guards against damage, and an
 * import may hold bigger changes than a client may send. */
static const wire_limits payload_limits = {
	.max_message_bytes = (size_t)1 << 30,
	.max_ops = UINT32_MAX,
	.max_text_bytes = (size_t)1 << 30,
};

/* Replay the changes (from, to] onto doc. */
static int replay(store *db, const char *doc_id, int64_t id, uint64_t from, uint64_t to,
		  crdt_doc *doc, store_load_result *res)
{
	if (from >= to)
		return STORE_OK;
	crdt_batch *batch = crdt_batch_new(db->has_crdt ? db->crdt.allocator : NULL);
	if (!batch)
		return store__fail(db, STORE_ENOMEM, "load: out of memory");
	sqlite3_stmt *st = store__stmt(db, ST_CHANGES_RANGE);
	if (!st) {
		crdt_batch_free(batch);
		return store__map_sqlite(db->sqlite_code);
	}
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, (int64_t)from);
	sqlite3_bind_int64(st, 3, (int64_t)to);
	uint64_t expect = from + 1;
	int rc, status = STORE_OK;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		uint64_t seq = (uint64_t)sqlite3_column_int64(st, 0);
		if (seq != expect) {
			status = store__fail(db, STORE_ECORRUPT,
					     "load '%s': change %llu is missing from the log",
					     doc_id, (unsigned long long)expect);
			break;
		}
		const uint8_t *p = sqlite3_column_blob(st, 6);
		size_t len = (size_t)sqlite3_column_bytes(st, 6);
		crdt_batch_clear(batch);
		int ws = wire_ops_decode(p, len, &payload_limits, batch);
		if (ws != WIRE_OK) {
			status = store__fail(db, ws == WIRE_ENOMEM ? STORE_ENOMEM : STORE_ECORRUPT,
					     "load '%s': change %llu does not decode: %s", doc_id,
					     (unsigned long long)seq, wire_strerror(ws));
			break;
		}
		size_t n = crdt_batch_count(batch);
		for (size_t i = 0; i < n && status == STORE_OK; i++) {
			int cs = crdt_doc_apply(doc, crdt_batch_get(batch, i), NULL, NULL);
			if (cs < 0)
				status = store__fail(
					db, cs == CRDT_ENOMEM ? STORE_ENOMEM : STORE_ECORRUPT,
					"load '%s': change %llu op %zu does not apply: %s", doc_id,
					(unsigned long long)seq, i, crdt_strerror(cs));
		}
		if (status != STORE_OK)
			break;
		res->changes_applied++;
		expect++;
	}
	if (status == STORE_OK && rc != SQLITE_DONE)
		status = store__sqlfail(db, rc, "load '%s': read changes", doc_id);
	if (status == STORE_OK && expect != to + 1)
		status = store__fail(db, STORE_ECORRUPT,
				     "load '%s': change %llu is missing from the log", doc_id,
				     (unsigned long long)expect);
	sqlite3_reset(st);
	crdt_batch_free(batch);
	return status;
}

/* Find the base: the newest valid snapshot in seqs[] usable for target, or
 * none (*base NULL, *base_seq 0). */
static int find_base(store *db, const char *doc_id, int64_t id, uint64_t target, uint64_t log_start,
		     crdt_replica replica, const uint64_t *seqs, size_t n, bool want_wire,
		     crdt_doc **base, uint64_t *base_seq, store_load_result *res)
{
	*base = NULL;
	*base_seq = 0;
	for (size_t i = 0; i < n; i++) {
		uint64_t s = seqs[i];
		/* The log must hold (s, target]; older snapshots need even more. */
		if (s < target && s + 1 < log_start)
			break;
		/* The wire bytes only of a snapshot at the target: with changes
		 * replayed on top they would not be the state loaded. */
		bool wire = want_wire && s == target;
		int status = store__snapshot_read(db, id, doc_id, s, replica, base,
						  wire ? &res->snapshot_wire : NULL,
						  wire ? &res->snapshot_wire_len : NULL);
		if (status == STORE_OK) {
			*base_seq = s;
			return STORE_OK;
		}
		if (status != STORE_ESNAPSHOT)
			return status;
		/* Damaged: report, remember, try the previous one. */
		store__damage(db, doc_id, s, status, db->err);
		if (res->snapshots_skipped++ == 0) {
			res->skipped_seq = s;
			size_t len = strlen(db->err);
			if (len >= sizeof res->skipped_reason)
				len = sizeof res->skipped_reason - 1;
			memcpy(res->skipped_reason, db->err, len);
			res->skipped_reason[len] = '\0';
		}
		db->err[0] = '\0';
		*base = NULL;
	}
	return STORE_OK;
}

static int load(store *db, const char *doc_id, uint64_t target, unsigned flags,
		crdt_replica replica, store_load_result *res)
{
	const crdt_options *copts = db->has_crdt ? &db->crdt : NULL;
	int64_t id;
	uint64_t head;
	int status = store__doc_find(db, doc_id, &id, &head);
	if (status == STORE_ENOTFOUND) {
		if (target != STORE_HEAD && target != 0)
			return store__fail(db, STORE_ERANGE,
					   "load '%s' at seq %llu: no such document", doc_id,
					   (unsigned long long)target);
		res->doc = crdt_doc_new(replica, copts);
		return res->doc ? STORE_OK : store__fail(db, STORE_ENOMEM, "load: out of memory");
	}
	if (status != STORE_OK)
		return status;
	res->exists = true;
	res->head_seq = head;
	if (target == STORE_HEAD)
		target = head;
	if (target > head)
		return store__fail(db, STORE_ERANGE, "load '%s' at seq %llu: head is %llu", doc_id,
				   (unsigned long long)target, (unsigned long long)head);
	res->seq = target;

	uint64_t log_start;
	if ((status = store__log_start(db, id, head, &log_start)) != STORE_OK)
		return status;

	crdt_doc *doc = NULL;
	uint64_t base_seq = 0;
	if (target > 0 && !(flags & STORE_LOAD_LOG_ONLY)) {
		uint64_t *seqs = NULL;
		size_t n = 0;
		status = store__snapshot_seqs(db, id, target, &seqs, &n);
		if (status == STORE_OK)
			status = find_base(db, doc_id, id, target, log_start, replica, seqs, n,
					   (flags & STORE_LOAD_WIRE_SNAPSHOT) != 0, &doc, &base_seq,
					   res);
		free(seqs);
		if (status != STORE_OK)
			return status;
	}
	if (!doc) {
		if (target > 0 && log_start > 1) {
			if (res->snapshots_skipped > 0)
				return store__fail(
					db, STORE_ENOBASE,
					"load '%s' at seq %llu: %u snapshot(s) damaged "
					"(newest at %llu: %s) and the log starts at %llu",
					doc_id, (unsigned long long)target, res->snapshots_skipped,
					(unsigned long long)res->skipped_seq, res->skipped_reason,
					(unsigned long long)log_start);
			return store__fail(
				db, STORE_ENOBASE,
				"load '%s' at seq %llu: no usable snapshot%s and the log "
				"starts at %llu",
				doc_id, (unsigned long long)target,
				(flags & STORE_LOAD_LOG_ONLY) ? " (log only)" : "",
				(unsigned long long)log_start);
		}
		if (!(doc = crdt_doc_new(replica, copts)))
			return store__fail(db, STORE_ENOMEM, "load: out of memory");
	}
	res->snapshot_seq = base_seq;
	status = replay(db, doc_id, id, base_seq, target, doc, res);
	if (status != STORE_OK) {
		crdt_doc_free(doc);
		return status;
	}
	res->doc = doc;
	return STORE_OK;
}

int store_load_at(store *db, const char *doc_id, uint64_t seq, unsigned flags, crdt_replica replica,
		  store_load_result *out)
{
	store__clear(db);
	if (!out)
		return store__fail(db, STORE_EINVAL, "load: out is NULL");
	memset(out, 0, sizeof *out);
	int status = store__check_doc_id(db, doc_id);
	if (status != STORE_OK)
		return status;
	if (replica == CRDT_NO_REPLICA)
		return store__fail(db, STORE_EINVAL, "load: replica 0");
	if (flags & ~(unsigned)(STORE_LOAD_LOG_ONLY | STORE_LOAD_WIRE_SNAPSHOT))
		return store__fail(db, STORE_EINVAL, "load: unknown flags 0x%x", flags);
	if ((status = store__begin(db, false)) != STORE_OK)
		return status;
	status = load(db, doc_id, seq, flags, replica, out);
	status = store__end(db, status);
	if (status != STORE_OK) {
		crdt_doc_free(out->doc);
		out->doc = NULL;
		free(out->snapshot_wire);
		out->snapshot_wire = NULL;
		out->snapshot_wire_len = 0;
	}
	return status;
}

int store_load(store *db, const char *doc_id, crdt_replica replica, store_load_result *out)
{
	return store_load_at(db, doc_id, STORE_HEAD, 0, replica, out);
}
