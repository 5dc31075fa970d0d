/*
 * info.c - what quire-dump's `list` and `stats` show about a document:
 * head, log range and bytes, newest snapshot, counters for the snapshot
 * policy. Each answer comes from one consistent read.
 */
#include <stdio.h>
#include <string.h>

#include "internal.h"

/* Fill *out from the current row of a ST_DOC_ROW / ST_DOC_ALL statement. */
static int fill(store *db, sqlite3_stmt *row, store_doc_info *out)
{
	memset(out, 0, sizeof *out);
	int64_t id = sqlite3_column_int64(row, 0);
	const char *name = (const char *)sqlite3_column_text(row, 1);
	snprintf(out->doc_id, sizeof out->doc_id, "%s", name ? name : "");
	out->created_ms = sqlite3_column_int64(row, 2);
	out->updated_ms = sqlite3_column_int64(row, 3);
	out->head_seq = (uint64_t)sqlite3_column_int64(row, 4);
	out->log_bytes = (uint64_t)sqlite3_column_int64(row, 5);
	out->bytes_since_snapshot = (uint64_t)sqlite3_column_int64(row, 6);

	int status = store__log_start(db, id, out->head_seq, &out->log_start);
	if (status != STORE_OK)
		return status;
	out->log_changes = out->head_seq + 1 - out->log_start;

	sqlite3_stmt *st = store__stmt(db, ST_SNAP_NEWEST);
	if (!st)
		return store__map_sqlite(db->sqlite_code);
	sqlite3_bind_int64(st, 1, id);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		out->snapshot_seq = (uint64_t)sqlite3_column_int64(st, 0);
		out->snapshot_raw_bytes = (uint64_t)sqlite3_column_int64(st, 1);
		out->snapshot_bytes = (uint64_t)sqlite3_column_int64(st, 2);
		out->snapshots = (uint32_t)sqlite3_column_int64(st, 3);
	}
	sqlite3_reset(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return store__sqlfail(db, rc, "newest snapshot of '%s'", out->doc_id);
	out->changes_since_snapshot =
		out->head_seq > out->snapshot_seq ? out->head_seq - out->snapshot_seq : 0;
	return STORE_OK;
}

int store_doc_info_get(store *db, const char *doc_id, store_doc_info *out)
{
	store__clear(db);
	int status = store__check_doc_id(db, doc_id);
	if (status != STORE_OK)
		return status;
	if (!out)
		return store__fail(db, STORE_EINVAL, "doc info: out is NULL");
	if ((status = store__begin(db, false)) != STORE_OK)
		return status;
	sqlite3_stmt *st = store__stmt(db, ST_DOC_ROW);
	if (!st)
		return store__end(db, store__map_sqlite(db->sqlite_code));
	sqlite3_bind_text(st, 1, doc_id, -1, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		status = fill(db, st, out);
	else if (rc == SQLITE_DONE)
		status = store__fail(db, STORE_ENOTFOUND, "no document '%s'", doc_id);
	else
		status = store__sqlfail(db, rc, "read document '%s'", doc_id);
	sqlite3_reset(st);
	return store__end(db, status);
}

int store_docs(store *db, store_doc_fn fn, void *ctx)
{
	store__clear(db);
	if (!fn)
		return store__fail(db, STORE_EINVAL, "docs: callback is NULL");
	int status = store__begin(db, false);
	if (status != STORE_OK)
		return status;
	sqlite3_stmt *st = store__stmt(db, ST_DOC_ALL);
	if (!st)
		return store__end(db, store__map_sqlite(db->sqlite_code));
	int rc, stopped = 0;
	store_doc_info info;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if ((status = fill(db, st, &info)) != STORE_OK)
			break;
		if ((stopped = fn(ctx, &info)) != 0)
			break;
	}
	if (status == STORE_OK && !stopped && rc != SQLITE_DONE)
		status = store__sqlfail(db, rc, "list documents");
	sqlite3_reset(st);
	status = store__end(db, status);
	return status == STORE_OK && stopped ? stopped : status;
}
