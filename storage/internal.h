/*
 * internal.h - what the files of storage/ share and nothing outside sees:
 * the store handle, the cached statement table, error and transaction
 * helpers. Public contract: store.h.
 *
 * Invariants of the database (checked by tests and quire-dump verify):
 *  1. documents.head_seq is the largest seq ever appended to that document;
 *     the changes rows of a document are exactly the seqs [log_start, head]
 *     with no gap (trimming removes a prefix, appends add head + 1).
 *  2. documents.log_bytes is the sum of length(payload) over the document's
 *     changes rows; since_snap_bytes the sum over the rows after its newest
 *     snapshot's seq (all rows when there is no snapshot).
 *  3. Every snapshot's seq is in [1, head]; a change is removed only when a
 *     valid snapshot at or after it exists that is not the newest one
 *     (store_trim), so any single damaged snapshot still leaves a base.
 *  4. A write (append, snapshot, trim, create) is one transaction: it
 *     commits whole or leaves the database as it was.
 */
#ifndef QUIRE_STORE_INTERNAL_H
#define QUIRE_STORE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>
#include <zstd.h>

#include "crdt.h"
#include "store.h"
#include "wire.h"

#if defined(__GNUC__) || defined(__clang__)
#define STORE__PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define STORE__PRINTF(f, a)
#endif

/* Largest uncompressed snapshot a load accepts (a damaged raw_size must not
 * make us allocate gigabytes). */
#define STORE__MAX_SNAPSHOT_RAW ((uint64_t)1 << 30)

/*
 * Every SQL statement the store runs, prepared once on first use and kept
 * (SQLITE_PREPARE_PERSISTENT) until close. Parameters are numbered.
 */
#define STORE__STMT_TABLE(X)                                                                       \
	X(ST_BEGIN_READ, "BEGIN")                                                                  \
	X(ST_BEGIN_WRITE, "BEGIN IMMEDIATE")                                                       \
	X(ST_COMMIT, "COMMIT")                                                                     \
	X(ST_ROLLBACK, "ROLLBACK")                                                                 \
	X(ST_DOC_FIND, "SELECT id, head_seq FROM documents WHERE name = ?1")                       \
	X(ST_DOC_INSERT, "INSERT INTO documents(name, created_ms) VALUES (?1, ?2)")                \
	X(ST_DOC_APPENDED,                                                                         \
	  "UPDATE documents SET head_seq = ?2, log_bytes = log_bytes + ?3,"                        \
	  " since_snap_bytes = since_snap_bytes + ?3, updated_ms = ?4 WHERE id = ?1")              \
	X(ST_DOC_ROW,                                                                              \
	  "SELECT id, name, created_ms, updated_ms, head_seq, log_bytes, since_snap_bytes"         \
	  " FROM documents WHERE name = ?1")                                                       \
	X(ST_DOC_ALL,                                                                              \
	  "SELECT id, name, created_ms, updated_ms, head_seq, log_bytes, since_snap_bytes"         \
	  " FROM documents ORDER BY name")                                                         \
	X(ST_DOC_NAMES, "SELECT name FROM documents ORDER BY name")                                \
	X(ST_DOC_SET_SINCE, "UPDATE documents SET since_snap_bytes = ?2 WHERE id = ?1")            \
	X(ST_DOC_SUB_LOG, "UPDATE documents SET log_bytes = log_bytes - ?2 WHERE id = ?1")         \
	X(ST_CHANGE_INSERT,                                                                        \
	  "INSERT INTO changes(doc, seq, replica, counter_first, counter_count, author, time_ms,"  \
	  " payload) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)")                                     \
	X(ST_LOG_START, "SELECT MIN(seq) FROM changes WHERE doc = ?1")                             \
	X(ST_CHANGE_META,                                                                          \
	  "SELECT replica, counter_first, counter_count FROM changes WHERE doc = ?1 AND seq = ?2") \
	X(ST_CHANGES_RANGE,                                                                        \
	  "SELECT seq, replica, counter_first, counter_count, author, time_ms, payload"            \
	  " FROM changes WHERE doc = ?1 AND seq > ?2 AND seq <= ?3 ORDER BY seq")                  \
	X(ST_CHANGES_BYTES, "SELECT count(*), coalesce(sum(length(payload)), 0) FROM changes"      \
			    " WHERE doc = ?1 AND seq > ?2 AND seq <= ?3")                          \
	X(ST_CHANGES_FIRST_RECENT,                                                                 \
	  "SELECT min(seq) FROM changes WHERE doc = ?1 AND seq <= ?2 AND time_ms >= ?3")           \
	X(ST_CHANGES_DELETE, "DELETE FROM changes WHERE doc = ?1 AND seq <= ?2")                   \
	X(ST_CHANGES_TAIL_FROM, /* newest seq whose changes from it on weigh >= ?2 bytes */           \
	  "SELECT seq FROM (SELECT seq, sum(length(payload)) OVER (ORDER BY seq DESC) AS tail"     \
	  " FROM changes WHERE doc = ?1) WHERE tail >= ?2 ORDER BY seq DESC LIMIT 1")             \
	X(ST_SNAP_LIST,                                                                            \
	  "SELECT seq, format, raw_size, length(zstd), checksum, created_ms FROM snapshots"        \
	  " WHERE doc = ?1 ORDER BY seq DESC")                                                     \
	X(ST_SNAP_SEQS, /* the (doc, seq) index alone: no row read */                              \
	  "SELECT seq FROM snapshots WHERE doc = ?1 AND seq <= ?2 ORDER BY seq DESC")              \
	X(ST_SNAP_NEWEST,                                                                          \
	  "SELECT seq, raw_size, length(zstd), (SELECT count(*) FROM snapshots WHERE doc = ?1)"    \
	  " FROM snapshots WHERE doc = ?1 ORDER BY seq DESC LIMIT 1")                              \
	X(ST_SNAP_RAW_SIZE, "SELECT raw_size FROM snapshots WHERE doc = ?1 AND seq = ?2")          \
	X(ST_SNAP_GET,                                                                             \
	  "SELECT format, raw_size, checksum, zstd FROM snapshots WHERE doc = ?1 AND seq = ?2")    \
	X(ST_SNAP_INSERT, "INSERT OR REPLACE INTO snapshots(doc, seq, format, raw_size, "          \
			  "checksum, created_ms, zstd)"                                            \
			  " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)")                                  \
	X(ST_SNAP_DELETE_BEFORE, "DELETE FROM snapshots WHERE doc = ?1 AND seq < ?2")              \
	X(ST_PAGE_BYTES, "SELECT page_count * page_size FROM pragma_page_count, pragma_page_size")

enum store__stmt_id {
#define STORE__STMT_ENUM(name, sql) name,
	STORE__STMT_TABLE(STORE__STMT_ENUM)
#undef STORE__STMT_ENUM
		ST__COUNT
};

typedef struct store_ckpt store_ckpt; /* checkpointer.c */

struct store {
	sqlite3 *sql;
	sqlite3_stmt *stmt[ST__COUNT]; /* NULL until first use */
	store_options opts;
	crdt_options crdt; /* copy of *opts.crdt (or zeros) */
	bool has_crdt;
	bool in_txn;	 /* a transaction of ours is open */
	ZSTD_CCtx *cctx; /* created on first snapshot write */
	ZSTD_DCtx *dctx; /* created on first snapshot read */
	store_ckpt *ckpt; /* the checkpoint thread, or NULL */
	int sqlite_code;  /* extended code of the last SQLite failure */
	char err[512];	  /* store_errmsg */
};

/* ---- errors (store.c) ---- */

/* Clear the last error (every public entry point starts with this). */
void store__clear(store *db);
/* Record a failure: status and formatted message. Returns status. */
int store__fail(store *db, int status, const char *fmt, ...) STORE__PRINTF(3, 4);
/* Record an SQLite failure rc while doing `what` (a printf format):
 * maps rc to a STORE_E* code, appends sqlite3_errmsg. Returns the code. */
int store__sqlfail(store *db, int rc, const char *fmt, ...) STORE__PRINTF(3, 4);
/* The STORE_E* code for an SQLite result code. */
int store__map_sqlite(int rc);

/* ---- statements and transactions (store.c) ---- */

/* The cached statement `id`, reset and unbound, or NULL with the error
 * recorded (prepare failed). */
sqlite3_stmt *store__stmt(store *db, enum store__stmt_id id);
/* Reset every cached statement (releases their read locks). */
void store__reset_all(store *db);
/* Begin a read (deferred) or write (immediate) transaction. */
int store__begin(store *db, bool write);
/* End the transaction: COMMIT when status is STORE_OK (a failing commit
 * turns into its error), ROLLBACK otherwise. Returns the final status. */
int store__end(store *db, int status);
/* Step a statement expected to finish (no rows). */
int store__exec(store *db, sqlite3_stmt *st, const char *what);

/* ---- the checkpoint thread (checkpointer.c) ---- */

/* Start it for the open read-write connection db->sql (whose file is path,
 * opened with VFS vfs or the default): a second connection to the file and
 * a WAL hook on db->sql that wakes the thread. STORE_OK or the error. */
int store__ckpt_start(store *db, const char *path, const char *vfs);
/* Stop and join it and close its connection; no-op without one. Must come
 * before db->sql is closed. */
void store__ckpt_stop(store *db);

/* ---- small helpers ---- */

int64_t store__now_ms(void);
/* Doc id check: 1..STORE_DOC_ID_MAX bytes. */
int store__check_doc_id(store *db, const char *doc_id);
/* uint64 <-> SQLite int64 (bit pattern; replicas use all 64 bits). */
static inline int64_t store__i64(uint64_t v)
{
	return v <= (uint64_t)INT64_MAX ? (int64_t)v
					: (int64_t)(v - (uint64_t)INT64_MAX - 1) + INT64_MIN;
}
static inline uint64_t store__u64(int64_t v)
{
	return v >= 0 ? (uint64_t)v : (uint64_t)(v - INT64_MIN) + (uint64_t)INT64_MAX + 1;
}

/* Find a document: *id and *head, STORE_ENOTFOUND when missing. */
int store__doc_find(store *db, const char *doc_id, int64_t *id, uint64_t *head);
/* The oldest seq in the log, head + 1 when it is empty. */
int store__log_start(store *db, int64_t id, uint64_t head, uint64_t *start);

/* ---- schema (schema.c) ---- */

/* Check the schema version and application id; migrate (read-write) or
 * refuse (read-only, newer, foreign). Called by store_open. */
int store__schema_open(store *db);

/* ---- snapshots (snapshot.c) ---- */

/* Read and fully validate the snapshot (doc, seq). On STORE_OK *out holds
 * the decoded document (if out is not NULL) and, if raw_out is not NULL,
 * *raw_out the decompressed wire Snapshot message (malloc'd, *raw_len
 * bytes, the caller frees it). STORE_ESNAPSHOT: damaged, the reason is in
 * db->err (and the damage callback is NOT called: callers decide).
 * STORE_ENOTFOUND or an SQLite error otherwise; *raw_out is untouched on
 * any failure. */
int store__snapshot_read(store *db, int64_t id, const char *doc_id, uint64_t seq,
			 crdt_replica replica, crdt_doc **out, uint8_t **raw_out, size_t *raw_len);
/* The seqs of a document's snapshots at or before upto, newest first
 * (malloc'd, *n of them; NULL when none). */
int store__snapshot_seqs(store *db, int64_t id, uint64_t upto, uint64_t **seqs, size_t *n);
/* Report a damaged snapshot through on_damage. */
void store__damage(store *db, const char *doc_id, uint64_t seq, int status, const char *why);

/* ---- crc32c.c ---- */

uint32_t store__crc32c(uint32_t crc, const void *data, size_t len);

#endif /* QUIRE_STORE_INTERNAL_H */
