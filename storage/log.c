/*
 * log.c - the op log: group-commit appends with per-document contiguity
 * checks, document creation, the log range and the change iterator used for
 * resume and by quire-dump.
 *
 * store_append runs one BEGIN IMMEDIATE ... COMMIT for the whole batch. Each
 * distinct document of the batch is looked up (or created, for seq 1) once,
 * found again through a small hash table keyed by doc id, and its head is
 * kept in memory while its changes are checked and inserted; the new heads
 * and byte counters are written back once per document before the commit.
 * So a batch costs one INSERT per change plus two statements per document,
 * however the documents interleave. Any failure rolls the whole batch back.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "wire.h"

/* One document of the batch being appended, with its counters so far. */
typedef struct batch_doc {
	const char *name; /* the caller's doc_id string */
	int64_t id;
	uint64_t head;
	uint64_t bytes;	    /* payload bytes added by this batch */
	int64_t updated_ms; /* time of its last change in the batch */
} batch_doc;

/* The batch's documents: docs[0..n) and an open-addressing index into it
 * (slot value i + 1; 0 = empty), mask + 1 slots, at least twice n. */
typedef struct batch_docs {
	batch_doc *docs;
	uint32_t *slots;
	size_t n, mask;
} batch_docs;

static uint64_t name_hash(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 0x100000001b3ull;
	return h;
}

/* The slot of doc_id: holding it, or the empty one where it goes. */
static uint32_t *batch_slot(batch_docs *b, const char *doc_id)
{
	size_t i = (size_t)name_hash(doc_id) & b->mask;
	while (b->slots[i] != 0 && strcmp(b->docs[b->slots[i] - 1].name, doc_id) != 0)
		i = (i + 1) & b->mask;
	return &b->slots[i];
}

static int doc_insert(store *db, const char *name, int64_t created_ms, int64_t *id)
{
	sqlite3_stmt *st = store__stmt(db, ST_DOC_INSERT);
	if (!st)
		return store__map_sqlite(db->sqlite_code);
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, created_ms);
	int status = store__exec(db, st, "create document");
	if (status == STORE_OK)
		*id = sqlite3_last_insert_rowid(db->sql);
	return status;
}

/* The batch document of change c: found, or looked up in the database (and
 * created there when c has seq 1). */
static int batch_enter(store *db, batch_docs *b, const store_change *c, int64_t now,
		       batch_doc **out)
{
	uint32_t *slot = batch_slot(b, c->doc_id);
	if (*slot != 0) {
		*out = &b->docs[*slot - 1];
		return STORE_OK;
	}
	batch_doc *d = &b->docs[b->n];
	*d = (batch_doc){.name = c->doc_id};
	int status = store__doc_find(db, c->doc_id, &d->id, &d->head);
	if (status == STORE_ENOTFOUND) {
		if (c->seq != 1)
			return store__fail(db, STORE_ESEQ,
					   "append doc '%s' seq %llu: no such document (its first "
					   "change must have seq 1)",
					   c->doc_id, (unsigned long long)c->seq);
		d->head = 0;
		status = doc_insert(db, c->doc_id, c->time_ms ? c->time_ms : now, &d->id);
	}
	if (status != STORE_OK)
		return status;
	*slot = (uint32_t)++b->n;
	*out = d;
	return STORE_OK;
}

/* Write every batch document's head and counters back. */
static int batch_flush(store *db, const batch_docs *b)
{
	for (size_t i = 0; i < b->n; i++) {
		/* (only called when every change went in: each document here
		 * received at least one) */
		const batch_doc *d = &b->docs[i];
		sqlite3_stmt *st = store__stmt(db, ST_DOC_APPENDED);
		if (!st)
			return store__map_sqlite(db->sqlite_code);
		sqlite3_bind_int64(st, 1, d->id);
		sqlite3_bind_int64(st, 2, (int64_t)d->head);
		sqlite3_bind_int64(st, 3, (int64_t)d->bytes);
		sqlite3_bind_int64(st, 4, d->updated_ms);
		int status = store__exec(db, st, "update document head");
		if (status != STORE_OK)
			return status;
	}
	return STORE_OK;
}

static int check_change(store *db, const store_change *c, size_t i)
{
	int status = store__check_doc_id(db, c->doc_id);
	if (status != STORE_OK)
		return store__fail(db, status, "append: change %zu: bad doc id", i);
	if (!wire_doc_id_valid(c->doc_id, strlen(c->doc_id)))
		return store__fail(db, STORE_EINVAL,
				   "append: change %zu: doc id is not a protocol id ([A-Za-z0-9._~/-]{1,%d})",
				   i, WIRE_MAX_DOC_ID);
	if (c->seq == 0 || c->seq > (uint64_t)INT64_MAX)
		return store__fail(db, STORE_EINVAL, "append: change %zu: seq %llu out of range", i,
				   (unsigned long long)c->seq);
	if (!c->payload && c->payload_len > 0)
		return store__fail(db, STORE_EINVAL, "append: change %zu: NULL payload", i);
	if (c->payload_len > (size_t)INT32_MAX)
		return store__fail(db, STORE_EINVAL, "append: change %zu: payload too big", i);
	return STORE_OK;
}

static int insert_change(store *db, int64_t doc, const store_change *c, int64_t time_ms)
{
	static const uint8_t empty[1] = {0};
	sqlite3_stmt *st = store__stmt(db, ST_CHANGE_INSERT);
	if (!st)
		return store__map_sqlite(db->sqlite_code);
	sqlite3_bind_int64(st, 1, doc);
	sqlite3_bind_int64(st, 2, (int64_t)c->seq);
	sqlite3_bind_int64(st, 3, store__i64(c->replica));
	sqlite3_bind_int64(st, 4, c->counter_first);
	sqlite3_bind_int64(st, 5, c->counter_count);
	if (c->author)
		sqlite3_bind_text(st, 6, c->author, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, 6);
	sqlite3_bind_int64(st, 7, time_ms);
	/* A zero-length blob, never NULL (the column is NOT NULL). */
	sqlite3_bind_blob(st, 8, c->payload_len ? c->payload : empty, (int)c->payload_len,
			  SQLITE_STATIC);
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return store__sqlfail(db, rc, "append doc '%s' seq %llu", c->doc_id,
				      (unsigned long long)c->seq);
	return STORE_OK;
}

int store_append(store *db, const store_change *changes, size_t n)
{
	store__clear(db);
	if (n == 0)
		return STORE_OK;
	if (!changes)
		return store__fail(db, STORE_EINVAL, "append: changes is NULL");
	if (db->opts.read_only)
		return store__fail(db, STORE_EREADONLY, "append: the store is open read-only");
	if (n > UINT32_MAX / 4)
		return store__fail(db, STORE_EINVAL, "append: %zu changes in one batch", n);
	for (size_t i = 0; i < n; i++) {
		int status = check_change(db, &changes[i], i);
		if (status != STORE_OK)
			return status;
	}

	batch_docs b = {0};
	size_t slots = 4;
	while (slots < 2 * n)
		slots *= 2;
	b.mask = slots - 1;
	b.docs = malloc(n * sizeof *b.docs);
	b.slots = calloc(slots, sizeof *b.slots);
	if (!b.docs || !b.slots) {
		free(b.docs);
		free(b.slots);
		return store__fail(db, STORE_ENOMEM, "append: out of memory");
	}

	int64_t now = store__now_ms();
	int status = store__begin(db, true);
	for (size_t i = 0; i < n && status == STORE_OK; i++) {
		const store_change *c = &changes[i];
		batch_doc *d = NULL;
		if ((status = batch_enter(db, &b, c, now, &d)) != STORE_OK)
			break;
		if (c->seq != d->head + 1) {
			status = store__fail(db, STORE_ESEQ,
					     "append doc '%s' seq %llu: head is %llu (expected seq "
					     "%llu); batch rolled back",
					     c->doc_id, (unsigned long long)c->seq,
					     (unsigned long long)d->head,
					     (unsigned long long)d->head + 1);
			break;
		}
		int64_t t = c->time_ms ? c->time_ms : now;
		if ((status = insert_change(db, d->id, c, t)) != STORE_OK)
			break;
		d->head = c->seq;
		d->bytes += c->payload_len;
		d->updated_ms = t;
	}
	if (status == STORE_OK)
		status = batch_flush(db, &b);
	status = store__end(db, status);
	free(b.docs);
	free(b.slots);
	return status;
}

int store_doc_create(store *db, const char *doc_id, int64_t created_ms)
{
	store__clear(db);
	int status = store__check_doc_id(db, doc_id);
	if (status != STORE_OK)
		return status;
	if (!wire_doc_id_valid(doc_id, strlen(doc_id)))
		return store__fail(db, STORE_EINVAL, "create: doc id is not a protocol id");
	if (db->opts.read_only)
		return store__fail(db, STORE_EREADONLY, "create: the store is open read-only");
	if ((status = store__begin(db, true)) != STORE_OK)
		return status;
	int64_t id;
	uint64_t head;
	status = store__doc_find(db, doc_id, &id, &head);
	if (status == STORE_OK)
		status = store__fail(db, STORE_EEXIST, "document '%s' already exists", doc_id);
	else if (status == STORE_ENOTFOUND)
		status = doc_insert(db, doc_id, created_ms ? created_ms : store__now_ms(), &id);
	return store__end(db, status);
}

/* ---- reading ------------------------------------------------------------------ */

int store_log_start(store *db, const char *doc_id, uint64_t *log_start, uint64_t *head)
{
	store__clear(db);
	int status = store__check_doc_id(db, doc_id);
	if (status != STORE_OK)
		return status;
	if (!log_start)
		return store__fail(db, STORE_EINVAL, "log_start: out is NULL");
	if ((status = store__begin(db, false)) != STORE_OK)
		return status;
	int64_t id;
	uint64_t h = 0, start = 1;
	status = store__doc_find(db, doc_id, &id, &h);
	if (status == STORE_OK)
		status = store__log_start(db, id, h, &start);
	else if (status == STORE_ENOTFOUND)
		status = STORE_OK; /* an empty document: start 1, head 0 */
	status = store__end(db, status);
	if (status == STORE_OK) {
		*log_start = start;
		if (head)
			*head = h;
	}
	return status;
}

int store_changes(store *db, const char *doc_id, uint64_t after_seq, uint64_t limit,
		  store_change_fn fn, void *ctx)
{
	store__clear(db);
	int status = store__check_doc_id(db, doc_id);
	if (status != STORE_OK)
		return status;
	if (!fn)
		return store__fail(db, STORE_EINVAL, "changes: callback is NULL");
	if ((status = store__begin(db, false)) != STORE_OK)
		return status;

	int64_t id;
	uint64_t head = 0, start = 1;
	status = store__doc_find(db, doc_id, &id, &head);
	if (status == STORE_ENOTFOUND) {
		status = after_seq == 0
				 ? STORE_OK
				 : store__fail(db, STORE_ERANGE,
					       "changes of '%s' after %llu: no such document",
					       doc_id, (unsigned long long)after_seq);
		return store__end(db, status);
	}
	if (status == STORE_OK)
		status = store__log_start(db, id, head, &start);
	if (status != STORE_OK)
		return store__end(db, status);
	if (after_seq > head)
		return store__end(db, store__fail(db, STORE_ERANGE,
						  "changes of '%s' after %llu: head is %llu",
						  doc_id, (unsigned long long)after_seq,
						  (unsigned long long)head));
	if (after_seq + 1 < start)
		return store__end(db,
				  store__fail(db, STORE_ETRIMMED,
					      "changes of '%s' after %llu: the log starts at %llu",
					      doc_id, (unsigned long long)after_seq,
					      (unsigned long long)start));
	uint64_t upper = head;
	if (limit > 0 && head - after_seq > limit)
		upper = after_seq + limit;

	sqlite3_stmt *st = store__stmt(db, ST_CHANGES_RANGE);
	if (!st)
		return store__end(db, store__map_sqlite(db->sqlite_code));
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, (int64_t)after_seq);
	sqlite3_bind_int64(st, 3, (int64_t)upper);
	int rc, stopped = 0;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		store_change_row row = {
			.seq = (uint64_t)sqlite3_column_int64(st, 0),
			.replica = store__u64(sqlite3_column_int64(st, 1)),
			.counter_first = (uint32_t)sqlite3_column_int64(st, 2),
			.counter_count = (uint32_t)sqlite3_column_int64(st, 3),
			.author = (const char *)sqlite3_column_text(st, 4),
			.time_ms = sqlite3_column_int64(st, 5),
			.payload = sqlite3_column_blob(st, 6),
			.payload_len = (size_t)sqlite3_column_bytes(st, 6),
		};
		if ((stopped = fn(ctx, &row)) != 0)
			break;
	}
	if (!stopped && rc != SQLITE_DONE)
		status = store__sqlfail(db, rc, "read changes of '%s'", doc_id);
	sqlite3_reset(st);
	status = store__end(db, status);
	return status == STORE_OK && stopped ? stopped : status;
}
