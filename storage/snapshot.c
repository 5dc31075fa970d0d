/*
 * snapshot.c - writing, validating and listing snapshots, the snapshot
 * policy and log trimming.
 *
 * A stored snapshot (format 1) is a zstd frame of a wire Snapshot message
 * (wire_snapshot_encode: doc id, seq, version vector, engine state) with
 * raw_size = the message's size and checksum = CRC-32C of the zstd frame.
 * Validation runs every check there is, cheapest first: known format,
 * checksum, plausible raw size, the frame's declared content size,
 * decompression to exactly raw_size bytes, the container's decoding (which
 * runs crdt_doc_decode, itself robust to damage) and the container's doc id
 * and seq against the row. Only a snapshot that passes all of them is used.
 *
 * Trimming keeps the newest two valid snapshots B1 > B2 and the log from
 * B2 + 1 on (less what the retention window keeps anyway), so if B1 turns
 * out damaged at the next load, B2 plus the log still rebuild the head.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zstd_errors.h>

#include "internal.h"

void store__damage(store *db, const char *doc_id, uint64_t seq, int status, const char *why)
{
	if (db->opts.on_damage)
		db->opts.on_damage(db->opts.on_damage_ctx, doc_id, seq, status, why);
}

/* ---- policy --------------------------------------------------------------------- */

bool store_snapshot_due(const store *db, uint64_t changes_since, uint64_t bytes_since)
{
	if (!db || changes_since == 0)
		return false;
	return (db->opts.snapshot_every_changes > 0 &&
		changes_since >= db->opts.snapshot_every_changes) ||
	       (db->opts.snapshot_every_bytes > 0 && bytes_since >= db->opts.snapshot_every_bytes);
}

/* ---- writing --------------------------------------------------------------------- */

/* Compress the container into *out (malloc'd). */
static int compress(store *db, const uint8_t *raw, size_t raw_len, uint8_t **out, size_t *out_len)
{
	if (!db->cctx && !(db->cctx = ZSTD_createCCtx()))
		return store__fail(db, STORE_ENOMEM, "snapshot: cannot create a zstd context");
	size_t cap = ZSTD_compressBound(raw_len);
	uint8_t *buf = malloc(cap ? cap : 1);
	if (!buf)
		return store__fail(db, STORE_ENOMEM, "snapshot: out of memory (%zu bytes)", cap);
	size_t n = ZSTD_compressCCtx(db->cctx, buf, cap, raw, raw_len, db->opts.zstd_level);
	if (ZSTD_isError(n)) {
		free(buf);
		return store__fail(db,
				   ZSTD_getErrorCode(n) == ZSTD_error_memory_allocation
					   ? STORE_ENOMEM
					   : STORE_EINVAL,
				   "snapshot: zstd: %s", ZSTD_getErrorName(n));
	}
	*out = buf;
	*out_len = n;
	return STORE_OK;
}

/* Newest snapshot seq of a document (0: none). */
static int newest_snapshot(store *db, int64_t id, uint64_t *seq, uint64_t *raw, uint64_t *stored,
			   uint32_t *count)
{
	sqlite3_stmt *st = store__stmt(db, ST_SNAP_NEWEST);
	if (!st)
		return store__map_sqlite(db->sqlite_code);
	sqlite3_bind_int64(st, 1, id);
	int rc = sqlite3_step(st);
	*seq = 0;
	if (raw)
		*raw = 0;
	if (stored)
		*stored = 0;
	if (count)
		*count = 0;
	if (rc == SQLITE_ROW) {
		*seq = (uint64_t)sqlite3_column_int64(st, 0);
		if (raw)
			*raw = (uint64_t)sqlite3_column_int64(st, 1);
		if (stored)
			*stored = (uint64_t)sqlite3_column_int64(st, 2);
		if (count)
			*count = (uint32_t)sqlite3_column_int64(st, 3);
	}
	sqlite3_reset(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return store__sqlfail(db, rc, "newest snapshot");
	return STORE_OK;
}

/* Count and payload bytes of changes (after, upto]. */
static int changes_bytes(store *db, int64_t id, uint64_t after, uint64_t upto, uint64_t *count,
			 uint64_t *bytes)
{
	sqlite3_stmt *st = store__stmt(db, ST_CHANGES_BYTES);
	if (!st)
		return store__map_sqlite(db->sqlite_code);
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, (int64_t)after);
	sqlite3_bind_int64(st, 3,
			   (int64_t)(upto > (uint64_t)INT64_MAX ? (uint64_t)INT64_MAX : upto));
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		if (count)
			*count = (uint64_t)sqlite3_column_int64(st, 0);
		if (bytes)
			*bytes = (uint64_t)sqlite3_column_int64(st, 1);
	}
	sqlite3_reset(st);
	if (rc != SQLITE_ROW)
		return store__sqlfail(db, rc, "sum of payload bytes");
	return STORE_OK;
}

/* Recompute documents.since_snap_bytes after the snapshots changed. */
static int update_since_bytes(store *db, int64_t id)
{
	uint64_t newest = 0, bytes = 0;
	int status = newest_snapshot(db, id, &newest, NULL, NULL, NULL);
	if (status == STORE_OK)
		status = changes_bytes(db, id, newest, UINT64_MAX, NULL, &bytes);
	if (status != STORE_OK)
		return status;
	sqlite3_stmt *st = store__stmt(db, ST_DOC_SET_SINCE);
	if (!st)
		return store__map_sqlite(db->sqlite_code);
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, (int64_t)bytes);
	return store__exec(db, st, "update bytes since snapshot");
}

/* A snapshot at seq must hold change seq's own ops: when that change is
 * still in the log and says which counters of its replica it carries, the
 * document must have seen them. Catches a stale or wrong document (e.g. a
 * failed load) before it is written over the history. */
static int check_has_change(store *db, int64_t id, const char *doc_id, uint64_t seq,
			    const crdt_doc *doc)
{
	sqlite3_stmt *st = store__stmt(db, ST_CHANGE_META);
	if (!st)
		return store__map_sqlite(db->sqlite_code);
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, (int64_t)seq);
	int rc = sqlite3_step(st);
	int status = STORE_OK;
	if (rc == SQLITE_ROW) {
		crdt_replica r = store__u64(sqlite3_column_int64(st, 0));
		uint64_t first = (uint64_t)sqlite3_column_int64(st, 1);
		uint64_t count = (uint64_t)sqlite3_column_int64(st, 2);
		if (r != CRDT_NO_REPLICA && count > 0 && crdt_doc_seen(doc, r) < first + count)
			status = store__fail(
				db, STORE_EINVAL,
				"snapshot of '%s' at seq %llu: the document lacks that "
				"change's ops (replica %016llx counters %llu..%llu, it "
				"has seen %u)",
				doc_id, (unsigned long long)seq, (unsigned long long)r,
				(unsigned long long)first, (unsigned long long)(first + count - 1),
				(unsigned)crdt_doc_seen(doc, r));
	} else if (rc != SQLITE_DONE) {
		status = store__sqlfail(db, rc, "snapshot: read change %llu",
					(unsigned long long)seq);
	}
	sqlite3_reset(st);
	return status;
}

/* The checks both entry points run before encoding or compressing. */
static int snapshot_args(store *db, const char *doc_id, uint64_t seq, const crdt_doc *doc)
{
	int status = store__check_doc_id(db, doc_id);
	if (status != STORE_OK)
		return status;
	if (!doc)
		return store__fail(db, STORE_EINVAL, "snapshot: doc is NULL");
	if (db->opts.read_only)
		return store__fail(db, STORE_EREADONLY, "snapshot: the store is open read-only");
	if (seq == 0 || seq > (uint64_t)INT64_MAX)
		return store__fail(db, STORE_ERANGE, "snapshot of '%s': seq %llu out of range",
				   doc_id, (unsigned long long)seq);
	/* A document that never saw an op cannot be the state after seq >= 1
	 * changes: most likely a failed load about to overwrite history. */
	if (crdt_doc_version(doc, NULL, 0) == 0)
		return store__fail(db, STORE_EINVAL,
				   "snapshot of '%s' at seq %llu: the document has no ops at all",
				   doc_id, (unsigned long long)seq);
	return STORE_OK;
}

/* Compress the encoded container and write it (arguments checked). */
static int snapshot_write(store *db, const char *doc_id, uint64_t seq, const crdt_doc *doc,
			  const uint8_t *raw, size_t raw_len)
{
	/* Compress outside the write lock. */
	uint8_t *z = NULL;
	size_t zlen = 0;
	int status = compress(db, raw, raw_len, &z, &zlen);
	if (status != STORE_OK)
		return status;
	uint32_t crc = store__crc32c(0, z, zlen);

	if ((status = store__begin(db, true)) != STORE_OK) {
		free(z);
		return status;
	}
	int64_t id;
	uint64_t head;
	status = store__doc_find(db, doc_id, &id, &head);
	if (status == STORE_ENOTFOUND)
		status = store__fail(db, STORE_ENOTFOUND, "snapshot: no document '%s'", doc_id);
	else if (status == STORE_OK && seq > head)
		status = store__fail(db, STORE_ERANGE, "snapshot of '%s' at seq %llu: head is %llu",
				     doc_id, (unsigned long long)seq, (unsigned long long)head);
	if (status == STORE_OK)
		status = check_has_change(db, id, doc_id, seq, doc);
	if (status == STORE_OK) {
		sqlite3_stmt *st = store__stmt(db, ST_SNAP_INSERT);
		if (!st) {
			status = store__map_sqlite(db->sqlite_code);
		} else {
			sqlite3_bind_int64(st, 1, id);
			sqlite3_bind_int64(st, 2, (int64_t)seq);
			sqlite3_bind_int(st, 3, STORE_SNAPSHOT_FORMAT);
			sqlite3_bind_int64(st, 4, (int64_t)raw_len);
			sqlite3_bind_int64(st, 5, (int64_t)crc);
			sqlite3_bind_int64(st, 6, store__now_ms());
			sqlite3_bind_blob64(st, 7, z, zlen, SQLITE_STATIC);
			status = store__exec(db, st, "write snapshot");
		}
	}
	if (status == STORE_OK)
		status = update_since_bytes(db, id);
	status = store__end(db, status);
	free(z);
	return status;
}

int store_snapshot(store *db, const char *doc_id, uint64_t seq, const crdt_doc *doc)
{
	store__clear(db);
	int status = snapshot_args(db, doc_id, seq, doc);
	if (status != STORE_OK)
		return status;
	wire_buf raw = {0};
	int ws = wire_snapshot_encode(doc, doc_id, seq, &raw);
	if (ws != WIRE_OK) {
		wire_buf_free(&raw);
		return store__fail(db, ws == WIRE_ENOMEM ? STORE_ENOMEM : STORE_EINVAL,
				   "snapshot of '%s': encode: %s", doc_id, wire_strerror(ws));
	}
	status = snapshot_write(db, doc_id, seq, doc, raw.data, raw.len);
	wire_buf_free(&raw);
	return status;
}

int store_snapshot_encoded(store *db, const char *doc_id, uint64_t seq, const crdt_doc *doc,
			   const uint8_t *raw, size_t raw_len)
{
	store__clear(db);
	int status = snapshot_args(db, doc_id, seq, doc);
	if (status != STORE_OK)
		return status;
	if (!raw || raw_len == 0 || raw_len > STORE__MAX_SNAPSHOT_RAW)
		return store__fail(db, STORE_EINVAL, "snapshot of '%s': %zu encoded bytes", doc_id,
				   raw_len);
	return snapshot_write(db, doc_id, seq, doc, raw, raw_len);
}

/* ---- reading and validating --------------------------------------------------------- */

/* Validate a snapshot row's blob; the reason of a failure goes to db->err. */
static int validate(store *db, const char *doc_id, uint64_t seq, int64_t format, int64_t raw_size,
		    int64_t checksum, const uint8_t *z, size_t zlen, crdt_replica replica,
		    crdt_doc **out, uint8_t **raw_out, size_t *raw_len)
{
	if (format != STORE_SNAPSHOT_FORMAT)
		return store__fail(db, STORE_ESNAPSHOT, "unknown snapshot format %lld",
				   (long long)format);
	uint32_t crc = store__crc32c(0, z, zlen);
	if (checksum < 0 || checksum > (int64_t)UINT32_MAX || crc != (uint32_t)checksum)
		return store__fail(db, STORE_ESNAPSHOT,
				   "checksum mismatch (stored %08llx, computed %08x)",
				   (unsigned long long)checksum, crc);
	if (raw_size <= 0 || (uint64_t)raw_size > STORE__MAX_SNAPSHOT_RAW)
		return store__fail(db, STORE_ESNAPSHOT, "raw size %lld out of range",
				   (long long)raw_size);
	unsigned long long declared = ZSTD_getFrameContentSize(z, zlen);
	if (declared == ZSTD_CONTENTSIZE_ERROR)
		return store__fail(db, STORE_ESNAPSHOT, "not a zstd frame");
	if (declared != ZSTD_CONTENTSIZE_UNKNOWN && declared != (unsigned long long)raw_size)
		return store__fail(db, STORE_ESNAPSHOT,
				   "zstd frame holds %llu bytes, raw size says %lld", declared,
				   (long long)raw_size);
	if (!db->dctx && !(db->dctx = ZSTD_createDCtx()))
		return store__fail(db, STORE_ENOMEM, "cannot create a zstd context");
	uint8_t *raw = malloc((size_t)raw_size);
	if (!raw)
		return store__fail(db, STORE_ENOMEM, "snapshot: out of memory (%lld bytes)",
				   (long long)raw_size);
	size_t n = ZSTD_decompressDCtx(db->dctx, raw, (size_t)raw_size, z, zlen);
	if (ZSTD_isError(n)) {
		free(raw);
		return store__fail(db, STORE_ESNAPSHOT, "zstd: %s", ZSTD_getErrorName(n));
	}
	if (n != (size_t)raw_size) {
		free(raw);
		return store__fail(db, STORE_ESNAPSHOT,
				   "decompressed %zu bytes, raw size says %lld", n,
				   (long long)raw_size);
	}
	crdt_doc *doc = NULL;
	uint64_t got_seq = 0;
	int cst = CRDT_OK;
	int ws = wire_snapshot_decode(raw, n, doc_id, replica, db->has_crdt ? &db->crdt : NULL,
				      &doc, &got_seq, &cst);
	if (ws != WIRE_OK || !doc || got_seq != seq || !raw_out) {
		free(raw);
		raw = NULL;
	}
	if (ws != WIRE_OK) {
		if (ws == WIRE_ENOMEM || cst == CRDT_ENOMEM)
			return store__fail(db, STORE_ENOMEM, "snapshot decode: out of memory");
		if (cst != CRDT_OK)
			return store__fail(db, STORE_ESNAPSHOT, "decode: %s (engine: %s)",
					   wire_strerror(ws), crdt_strerror(cst));
		return store__fail(db, STORE_ESNAPSHOT, "decode: %s", wire_strerror(ws));
	}
	if (!doc)
		return store__fail(db, STORE_ESNAPSHOT, "decode: no document");
	if (got_seq != seq) {
		crdt_doc_free(doc);
		return store__fail(db, STORE_ESNAPSHOT, "container seq %llu, row seq %llu",
				   (unsigned long long)got_seq, (unsigned long long)seq);
	}
	if (out)
		*out = doc;
	else
		crdt_doc_free(doc);
	if (raw_out) {
		*raw_out = raw;
		*raw_len = n;
	}
	return STORE_OK;
}

int store__snapshot_read(store *db, int64_t id, const char *doc_id, uint64_t seq,
			 crdt_replica replica, crdt_doc **out, uint8_t **raw_out, size_t *raw_len)
{
	sqlite3_stmt *st = store__stmt(db, ST_SNAP_GET);
	if (!st)
		return store__map_sqlite(db->sqlite_code);
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, (int64_t)seq);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		sqlite3_reset(st);
		return store__fail(db, STORE_ENOTFOUND, "no snapshot of '%s' at seq %llu", doc_id,
				   (unsigned long long)seq);
	}
	if (rc != SQLITE_ROW) {
		sqlite3_reset(st);
		return store__sqlfail(db, rc, "read snapshot of '%s' at seq %llu", doc_id,
				      (unsigned long long)seq);
	}
	int status;
	if (sqlite3_column_type(st, 3) != SQLITE_BLOB) {
		status = store__fail(db, STORE_ESNAPSHOT, "no blob");
	} else {
		/* The blob stays valid until the statement is reset. */
		const uint8_t *z = sqlite3_column_blob(st, 3);
		size_t zlen = (size_t)sqlite3_column_bytes(st, 3);
		status = validate(db, doc_id, seq, sqlite3_column_int64(st, 0),
				  sqlite3_column_int64(st, 1), sqlite3_column_int64(st, 2), z, zlen,
				  replica, out, raw_out, raw_len);
	}
	sqlite3_reset(st);
	return status;
}

int store_snapshot_check(store *db, const char *doc_id, uint64_t seq, crdt_replica replica,
			 crdt_doc **doc)
{
	store__clear(db);
	if (doc)
		*doc = NULL;
	int status = store__check_doc_id(db, doc_id);
	if (status != STORE_OK)
		return status;
	if (replica == CRDT_NO_REPLICA)
		return store__fail(db, STORE_EINVAL, "snapshot check: replica 0");
	if ((status = store__begin(db, false)) != STORE_OK)
		return status;
	int64_t id;
	uint64_t head;
	status = store__doc_find(db, doc_id, &id, &head);
	if (status == STORE_ENOTFOUND)
		status = store__fail(db, STORE_ENOTFOUND, "no document '%s'", doc_id);
	if (status == STORE_OK)
		status = store__snapshot_read(db, id, doc_id, seq, replica, doc, NULL, NULL);
	return store__end(db, status);
}

int store_snapshots(store *db, const char *doc_id, store_snapshot_fn fn, void *ctx)
{
	store__clear(db);
	int status = store__check_doc_id(db, doc_id);
	if (status != STORE_OK)
		return status;
	if (!fn)
		return store__fail(db, STORE_EINVAL, "snapshots: callback is NULL");
	if ((status = store__begin(db, false)) != STORE_OK)
		return status;
	int64_t id;
	uint64_t head;
	status = store__doc_find(db, doc_id, &id, &head);
	if (status == STORE_ENOTFOUND)
		return store__end(db, STORE_OK);
	if (status != STORE_OK)
		return store__end(db, status);
	sqlite3_stmt *st = store__stmt(db, ST_SNAP_LIST);
	if (!st)
		return store__end(db, store__map_sqlite(db->sqlite_code));
	sqlite3_bind_int64(st, 1, id);
	int rc, stopped = 0;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		store_snapshot_info info = {
			.seq = (uint64_t)sqlite3_column_int64(st, 0),
			.format = (uint32_t)sqlite3_column_int64(st, 1),
			.raw_bytes = (uint64_t)sqlite3_column_int64(st, 2),
			.stored_bytes = (uint64_t)sqlite3_column_int64(st, 3),
			.checksum = (uint32_t)sqlite3_column_int64(st, 4),
			.created_ms = sqlite3_column_int64(st, 5),
		};
		if ((stopped = fn(ctx, &info)) != 0)
			break;
	}
	if (!stopped && rc != SQLITE_DONE)
		status = store__sqlfail(db, rc, "list snapshots of '%s'", doc_id);
	sqlite3_reset(st);
	status = store__end(db, status);
	return status == STORE_OK && stopped ? stopped : status;
}

/* The seqs of a document's snapshots, newest first (malloc'd). */
int store__snapshot_seqs(store *db, int64_t id, uint64_t upto, uint64_t **seqs, size_t *n)
{
	*seqs = NULL;
	*n = 0;
	sqlite3_stmt *st = store__stmt(db, ST_SNAP_SEQS);
	if (!st)
		return store__map_sqlite(db->sqlite_code);
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, upto > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)upto);
	size_t cap = 0;
	int rc, status = STORE_OK;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		uint64_t seq = (uint64_t)sqlite3_column_int64(st, 0);
		if (*n == cap) {
			size_t ncap = cap ? cap * 2 : 8;
			uint64_t *p = realloc(*seqs, ncap * sizeof *p);
			if (!p) {
				status = store__fail(db, STORE_ENOMEM, "out of memory");
				break;
			}
			*seqs = p;
			cap = ncap;
		}
		(*seqs)[(*n)++] = seq;
	}
	if (status == STORE_OK && rc != SQLITE_DONE)
		status = store__sqlfail(db, rc, "list snapshots");
	sqlite3_reset(st);
	if (status != STORE_OK) {
		free(*seqs);
		*seqs = NULL;
		*n = 0;
	}
	return status;
}

/* ---- trimming ------------------------------------------------------------------------- */

/* The byte rule of the retention (store.h): *floor is the newest seq whose
 * later changes weigh at least keep_log_ratio x the raw size of the
 * snapshot at seq `newest` (0: no such change). A client behind it would
 * be sent that snapshot rather than the heavier log. */
static int log_floor_by_bytes(store *db, int64_t id, uint64_t newest, uint64_t *floor)
{
	*floor = 0;
	sqlite3_stmt *st = store__stmt(db, ST_SNAP_RAW_SIZE);
	if (!st)
		return store__map_sqlite(db->sqlite_code);
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, (int64_t)newest);
	int rc = sqlite3_step(st);
	int64_t raw = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
	sqlite3_reset(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return store__sqlfail(db, rc, "trim: snapshot size");
	if (rc == SQLITE_DONE)
		return STORE_OK;
	int64_t bound = raw * (int64_t)db->opts.keep_log_ratio;
	if ((st = store__stmt(db, ST_CHANGES_TAIL_FROM)) == NULL)
		return store__map_sqlite(db->sqlite_code);
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, bound > 0 ? bound : 1);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*floor = (uint64_t)sqlite3_column_int64(st, 0) - 1;
	sqlite3_reset(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return store__sqlfail(db, rc, "trim: log weight");
	return STORE_OK;
}

static int trim_one(store *db, const char *doc_id, store_trim_result *res)
{
	uint64_t removed_before = res->changes_removed, snaps_before = res->snapshots_removed;
	int status = store__begin(db, true);
	if (status != STORE_OK)
		return status;
	int64_t id;
	uint64_t head;
	status = store__doc_find(db, doc_id, &id, &head);
	if (status == STORE_ENOTFOUND) {
		res->log_start = 1;
		return store__end(db, STORE_OK);
	}
	uint64_t *seqs = NULL;
	size_t n = 0;
	if (status == STORE_OK)
		status = store__snapshot_seqs(db, id, UINT64_MAX, &seqs, &n);

	/* The newest and the second-newest valid snapshots. */
	uint64_t base = 0, newest = 0;
	int valid = 0;
	for (size_t i = 0; status == STORE_OK && i < n && valid < 2; i++) {
		int s = store__snapshot_read(db, id, doc_id, seqs[i], 1, NULL, NULL, NULL);
		if (s == STORE_OK) {
			if (++valid == 1)
				newest = seqs[i];
			else
				base = seqs[i];
		} else if (s == STORE_ESNAPSHOT) {
			store__damage(db, doc_id, seqs[i], s, db->err);
			db->err[0] = '\0';
		} else {
			status = s;
		}
	}
	free(seqs);

	uint64_t start = head + 1;
	if (status == STORE_OK)
		status = store__log_start(db, id, head, &start);
	if (status == STORE_OK && base > 0) {
		uint64_t cut = base;
		uint64_t keep_floor =
			head > db->opts.keep_changes ? head - db->opts.keep_changes : 0;
		if (db->opts.keep_log_ratio > 0 && keep_floor < cut) {
			uint64_t byte_floor = 0;
			status = log_floor_by_bytes(db, id, newest, &byte_floor);
			if (byte_floor > keep_floor)
				keep_floor = byte_floor;
		}
		if (status == STORE_OK && cut > keep_floor)
			cut = keep_floor;
		if (status == STORE_OK && db->opts.keep_ms > 0 && cut >= start) {
			sqlite3_stmt *st = store__stmt(db, ST_CHANGES_FIRST_RECENT);
			if (!st) {
				status = store__map_sqlite(db->sqlite_code);
			} else {
				sqlite3_bind_int64(st, 1, id);
				sqlite3_bind_int64(st, 2, (int64_t)cut);
				sqlite3_bind_int64(st, 3, store__now_ms() - db->opts.keep_ms);
				int rc = sqlite3_step(st);
				if (rc == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
					cut = (uint64_t)sqlite3_column_int64(st, 0) - 1;
				else if (rc != SQLITE_ROW)
					status = store__sqlfail(db, rc, "trim: recent changes");
				sqlite3_reset(st);
			}
		}
		if (status == STORE_OK && cut >= start) {
			uint64_t count = 0, bytes = 0;
			status = changes_bytes(db, id, 0, cut, &count, &bytes);
			sqlite3_stmt *st =
				status == STORE_OK ? store__stmt(db, ST_CHANGES_DELETE) : NULL;
			if (status == STORE_OK && !st)
				status = store__map_sqlite(db->sqlite_code);
			if (status == STORE_OK) {
				sqlite3_bind_int64(st, 1, id);
				sqlite3_bind_int64(st, 2, (int64_t)cut);
				status = store__exec(db, st, "trim changes");
			}
			if (status == STORE_OK && (st = store__stmt(db, ST_DOC_SUB_LOG)) == NULL)
				status = store__map_sqlite(db->sqlite_code);
			if (status == STORE_OK) {
				sqlite3_bind_int64(st, 1, id);
				sqlite3_bind_int64(st, 2, (int64_t)bytes);
				status = store__exec(db, st, "trim: log bytes");
			}
			if (status == STORE_OK) {
				res->changes_removed += count;
				start = cut + 1;
			}
		}
		if (status == STORE_OK) {
			sqlite3_stmt *st = store__stmt(db, ST_SNAP_DELETE_BEFORE);
			if (!st)
				status = store__map_sqlite(db->sqlite_code);
			if (status == STORE_OK) {
				sqlite3_bind_int64(st, 1, id);
				sqlite3_bind_int64(st, 2, (int64_t)base);
				status = store__exec(db, st, "trim snapshots");
			}
			if (status == STORE_OK)
				res->snapshots_removed += (uint64_t)sqlite3_changes(db->sql);
		}
		/* give the freed pages back to the file system (databases made
		 * with auto_vacuum = INCREMENTAL, schema.c; a no-op in older ones) */
		if (status == STORE_OK && (res->changes_removed > removed_before ||
					   res->snapshots_removed > snaps_before)) {
			int rc = sqlite3_exec(db->sql, "PRAGMA incremental_vacuum", NULL, NULL, NULL);
			if (rc != SQLITE_OK)
				status = store__sqlfail(db, rc, "trim: incremental vacuum");
		}
	}
	res->log_start = start;
	status = store__end(db, status);
	return status;
}

int store_trim(store *db, const char *doc_id, store_trim_result *out)
{
	store__clear(db);
	store_trim_result res = {0};
	int status = STORE_OK;
	if (db->opts.read_only)
		return store__fail(db, STORE_EREADONLY, "trim: the store is open read-only");
	if (doc_id) {
		if ((status = store__check_doc_id(db, doc_id)) == STORE_OK)
			status = trim_one(db, doc_id, &res);
	} else {
		/* Collect the names first: each document is its own write
		 * transaction. */
		char **names = NULL;
		size_t n = 0, cap = 0;
		sqlite3_stmt *st = store__stmt(db, ST_DOC_NAMES);
		if (!st)
			return store__map_sqlite(db->sqlite_code);
		int rc;
		while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
			if (n == cap) {
				size_t ncap = cap ? cap * 2 : 16;
				char **p = realloc(names, ncap * sizeof *p);
				if (!p) {
					status = store__fail(db, STORE_ENOMEM, "out of memory");
					break;
				}
				names = p;
				cap = ncap;
			}
			const char *s = (const char *)sqlite3_column_text(st, 0);
			size_t len = strlen(s ? s : "");
			if (!(names[n] = malloc(len + 1))) {
				status = store__fail(db, STORE_ENOMEM, "out of memory");
				break;
			}
			memcpy(names[n++], s ? s : "", len + 1);
		}
		if (status == STORE_OK && rc != SQLITE_DONE)
			status = store__sqlfail(db, rc, "list documents");
		sqlite3_reset(st);
		for (size_t i = 0; status == STORE_OK && i < n; i++) {
			store_trim_result one = {0};
			status = trim_one(db, names[i], &one);
			res.changes_removed += one.changes_removed;
			res.snapshots_removed += one.snapshots_removed;
		}
		for (size_t i = 0; i < n; i++)
			free(names[i]);
		free(names);
	}
	if (out)
		*out = res;
	return status;
}
