/*
 * store.h - Quire's storage layer: the per-document op log and compressed
 * snapshots in one SQLite database (WAL), schema migrations, group commit,
 * snapshot fallback and log trimming. The public contract of storage/.
 *
 * Model
 *  - A document is named by a doc id. Documents are created (store_append,
 *    store_doc_create) only with ids the protocol accepts
 *    (wire_doc_id_valid: 1..200 bytes of [A-Za-z0-9._~/-]); reading
 *    functions accept any id of 1..STORE_DOC_ID_MAX bytes but NUL, so a
 *    database written by other means can still be inspected. Every accepted change gets the next per-document sequence
 *    number: seq = 1, 2, 3 ... with no gaps. The document's head is the seq
 *    of its newest change (0: no change yet).
 *  - A change's payload is an OpBatch (proto/quire.proto) as produced by
 *    wire_ops_encode. The store keeps the bytes exactly as given, so the
 *    server can forward them without re-encoding; it decodes them only to
 *    rebuild a document (store_load*).
 *  - A snapshot at seq S is the whole document state after changes 1..S: a
 *    wire Snapshot container (wire_snapshot_encode), zstd-compressed, with a
 *    CRC-32C of the compressed bytes and the uncompressed size.
 *  - The log holds the changes [log_start, head]; store_trim removes a prefix
 *    of it once snapshots cover that prefix. log_start == head + 1 means the
 *    log is empty. A resume request for the changes after `last_seq` can be
 *    served from the log iff last_seq + 1 >= log_start; otherwise the caller
 *    sends the newest snapshot and the changes after it.
 *
 * Durability (the rule the server lives by)
 *  - store_append writes one batch of changes, for any number of documents,
 *    in ONE transaction and returns STORE_OK only after that transaction has
 *    committed. The caller acks changes to clients only after store_append
 *    returned STORE_OK for them; never before, and never after a failure.
 *  - STORE_SYNC_NORMAL: a committed batch survives a crash of the process
 *    (the WAL is written before commit returns) but the last commits may be
 *    lost on power loss or an OS crash. STORE_SYNC_FULL: the WAL is fsync'd
 *    at every commit, so a committed batch also survives power loss.
 *  - A failed call leaves the database as it was: the transaction is rolled
 *    back, nothing committed before is lost. (One corner: when the fsync of
 *    a commit fails, STORE_EIO is returned and the batch is not visible, but
 *    if the process dies before the next commit reuses that WAL space, SQLite's
 *    recovery may find the batch after all. It was never acked, so clients
 *    resend its ops and the CRDT recognises them: nothing is lost or doubled.)
 *
 * Conventions
 *  - Functions returning int return STORE_OK (0) or a negative STORE_E*
 *    code (store_strerror names them). After a failure, store_errmsg(db)
 *    says what failed, with SQLite's own message when SQLite failed.
 *  - A store handle is used by one thread at a time. Several handles (in
 *    one process or several) may open the same file: one writer at a time,
 *    readers never block the writer (WAL). A read-only handle (quire-dump)
 *    is safe while the server writes.
 *  - Callbacks must not call functions of the same store handle. A callback
 *    returning non-zero stops the iteration and that value is returned.
 *  - Nothing here aborts on bad data from the disk: it returns an error.
 */
#ifndef QUIRE_STORE_H
#define QUIRE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crdt.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- status codes ------------------------------------------------------- */

#define STORE_STATUS_TABLE(X)                                                                 \
	X(STORE_OK, 0, "ok")                                                                  \
	X(STORE_ENOMEM, -1, "out of memory")                                                  \
	X(STORE_EINVAL, -2, "invalid argument")                                               \
	X(STORE_ENOTFOUND, -3, "no such document or snapshot")                                \
	X(STORE_EEXIST, -4, "document already exists")                                        \
	X(STORE_ESEQ, -5, "change seq is not the document's head + 1")                        \
	X(STORE_ERANGE, -6, "seq is beyond the document's head")                              \
	X(STORE_ETRIMMED, -7, "changes no longer in the log (use the snapshot)")              \
	X(STORE_ENOBASE, -8, "no usable snapshot and the log does not reach back far enough") \
	X(STORE_ECORRUPT, -9, "damaged data in the database")                                 \
	X(STORE_ESNAPSHOT, -10, "damaged snapshot")                                           \
	X(STORE_EVERSION, -11, "database schema is newer than this program")                  \
	X(STORE_ESCHEMA, -12, "not a Quire database, or its schema cannot be used")           \
	X(STORE_EREADONLY, -13, "database is read-only")                                      \
	X(STORE_EFULL, -14, "database or disk is full")                                       \
	X(STORE_EIO, -15, "disk I/O error")                                                   \
	X(STORE_EBUSY, -16, "database is locked by another connection")                       \
	X(STORE_ECANTOPEN, -17, "cannot open the database file")                              \
	X(STORE_ESQLITE, -18, "SQLite error")

enum store_status {
#define STORE__ENUM(name, value, text) name = value,
	STORE_STATUS_TABLE(STORE__ENUM)
#undef STORE__ENUM
};

/* Text for any status code (unknown codes included); never NULL. */
const char *store_strerror(int status);

/* ---- limits and constants ------------------------------------------------ */

#define STORE_DOC_ID_MAX 255		/* bytes of a doc id (the protocol allows 200) */
#define STORE_SCHEMA_VERSION 1		/* PRAGMA user_version written by this build */
#define STORE_APPLICATION_ID 0x51756972 /* PRAGMA application_id: "Quir" */
#define STORE_SNAPSHOT_FORMAT 1		/* snapshots.format: zstd frame of a wire Snapshot */
#define STORE_HEAD UINT64_MAX		/* "the head" for store_load_at */

/* ---- opening ---------------------------------------------------------------- */

typedef struct store store; /* opaque */

typedef enum store_durability {
	STORE_SYNC_NORMAL = 1, /* PRAGMA synchronous=NORMAL: survives a process crash */
	STORE_SYNC_FULL = 2,   /* PRAGMA synchronous=FULL: survives power loss */
} store_durability;

/* Called once for every snapshot a load (or trim) finds unusable and skips:
 * seq of the snapshot, the status (STORE_ESNAPSHOT) and a one-line reason
 * ("checksum mismatch", "zstd: ...", "decode: ..."). doc_id and reason are
 * valid during the call only. Must not call functions of the store. */
typedef void (*store_damage_fn)(void *ctx, const char *doc_id, uint64_t seq, int status,
				const char *reason);

typedef struct store_options {
	/* Open read-only (SQLITE_OPEN_READONLY): no schema change, no write;
	 * every writing function fails with STORE_EREADONLY. The file must
	 * exist and have the current schema. Read-write opens create the file
	 * when it does not exist and migrate older schemas. */
	bool read_only;
	store_durability durability; /* default STORE_SYNC_NORMAL */
	/* How long a call waits for another connection's lock before failing
	 * with STORE_EBUSY. Default 2000 ms. */
	uint32_t busy_timeout_ms;
	/* Snapshot policy (store_snapshot_due): one is due when at least this
	 * many changes or payload bytes were logged since the newest snapshot.
	 * 0 disables that criterion. Defaults 1000 changes, 1 MiB. */
	uint64_t snapshot_every_changes;
	uint64_t snapshot_every_bytes;
	/* Retention (store_trim): a change is only trimmed when it is covered
	 * by the second-newest valid snapshot AND (at least keep_changes newer
	 * changes exist OR the newer changes' payloads add up to at least
	 * keep_log_ratio x the newest valid snapshot's raw size) AND it is
	 * older than keep_ms (by its time_ms; 0: no time criterion). The byte
	 * rule drops only what no catch-up would use: a client that far
	 * behind is sent the smaller snapshot instead (server/room.c); 0
	 * turns it off. Defaults 1000 changes, ratio 2, 0 ms. */
	uint64_t keep_changes;
	uint32_t keep_log_ratio;
	int64_t keep_ms;
	int zstd_level; /* snapshot compression level, default 3 */
	/* Database size quota in bytes (PRAGMA max_page_count), 0: none.
	 * Appends beyond it fail with STORE_EFULL. */
	uint64_t max_db_bytes;
	/* Automatic WAL checkpoint after a commit that leaves the WAL at least
	 * this many pages long (PRAGMA wal_autocheckpoint), default 1000. That
	 * checkpoint runs inside the commit that triggers it (milliseconds with
	 * an fsync) unless checkpoint_thread is set. 0: none (call
	 * store_checkpoint). */
	uint32_t checkpoint_pages;
	/* Run those checkpoints on a thread of the store's own, with its own
	 * connection, so commits never wait for them (storage/checkpointer.c):
	 * the WAL hook only wakes it. Should the thread fall behind, a commit
	 * that leaves the WAL 8 x checkpoint_pages long checkpoints inline.
	 * The handle stays single-threaded for its caller. Default false;
	 * ignored for read-only opens and checkpoint_pages 0. */
	bool checkpoint_thread;
	/* Options of every document a load builds (allocator, pending limits).
	 * Copied at open; NULL: crdt defaults. The allocator must outlive the
	 * store and the documents. */
	const crdt_options *crdt;
	/* Told about every damaged snapshot skipped; NULL: not told (the load
	 * result still counts them). */
	store_damage_fn on_damage;
	void *on_damage_ctx;
	/* SQLite VFS name (tests inject faults with a shim); NULL: default. */
	const char *vfs;
} store_options;

/* Fill *opts with the defaults above. Passing NULL options to store_open
 * means exactly these; set fields after calling this, never start from {0}
 * (a zero field means zero, e.g. keep_changes 0 keeps no extra changes). */
void store_options_init(store_options *opts);

/*
 * Open (read-write: create if missing) the database at `path` and bring its
 * schema to STORE_SCHEMA_VERSION: WAL mode, the durability chosen, cached
 * statements. opts may be NULL (defaults).
 *
 * On success returns STORE_OK and *out owns the handle (store_close). On
 * failure *out is NULL and, if err is not NULL, a one-line reason is written
 * to err (errlen bytes, NUL-terminated). Errors: STORE_ECANTOPEN (missing
 * file for read-only, directory not writable), STORE_EVERSION (the schema is
 * newer than this program: never touched), STORE_ESCHEMA (not a Quire
 * database: another application_id, or tables but no version; or a
 * read-only open of an older schema, which needs one read-write open to be
 * migrated), STORE_ECORRUPT, STORE_EBUSY, STORE_EIO, STORE_EFULL,
 * STORE_ENOMEM, STORE_EINVAL (bad option).
 */
int store_open(const char *path, const store_options *opts, store **out, char *err, size_t errlen);

/* Finalize the statements and close the database (SQLite checkpoints the
 * WAL when it is the last connection). NULL is a no-op. Every committed
 * change is already on disk; closing adds nothing to durability. */
void store_close(store *db);

/* The reason for the last failure on this handle: context plus SQLite's
 * message where SQLite failed, e.g. "append doc 'a' seq 7: head is 5".
 * "" when the last call succeeded. Valid until the next call on db. */
const char *store_errmsg(const store *db);

/* The extended SQLite result code of the last failure (0 when the last
 * failure was not SQLite's, or the last call succeeded). */
int store_sqlite_code(const store *db);

/* ---- appending (group commit) --------------------------------------------- */

/* One change to append. Everything is copied; the caller keeps ownership. */
typedef struct store_change {
	const char *doc_id;	/* NUL-terminated, 1..STORE_DOC_ID_MAX bytes */
	uint64_t seq;		/* must be the document's head + 1 (see store_append) */
	crdt_replica replica;	/* the replica that sent it (0: unknown) */
	uint32_t counter_first; /* that replica's counters in this change: */
	uint32_t counter_count; /* [first, first + count); count 0: none/unknown.
				 * store_snapshot checks a document has them. */
	const char *author;	/* user name from the token, or NULL */
	int64_t time_ms;	/* wall-clock ms since the epoch; 0: now */
	const uint8_t *payload; /* wire_ops_encode output (OpBatch) */
	size_t payload_len;	/* may be 0 (an empty batch) */
} store_change;

/*
 * Append changes[0..n) in ONE transaction (group commit) and return when it
 * has committed, durable in the mode chosen at open. The changes may belong
 * to any number of documents, in any interleaving; a document that does not
 * exist yet is created by its change with seq 1.
 *
 * Contiguity: each change's seq must be exactly its document's head + 1,
 * where the head counts the changes earlier in this same array. Otherwise
 * nothing is written and STORE_ESEQ is returned (store_errmsg names the
 * document, the seq and the head).
 *
 * Returns STORE_OK: every change is committed; now, and only now, may the
 * caller ack them. Any error: nothing of the batch was written (rolled
 * back), the database is as before. Errors: STORE_EINVAL (bad doc id,
 * seq 0, NULL payload with a length), STORE_ESEQ, STORE_EFULL (disk full or
 * max_db_bytes), STORE_EIO, STORE_EBUSY, STORE_EREADONLY, STORE_ECORRUPT,
 * STORE_ENOMEM. n == 0 is a no-op returning STORE_OK.
 */
int store_append(store *db, const store_change *changes, size_t n);

/* Create an empty document (head 0) so it exists before its first change
 * (quire-dump import). created_ms 0: now. STORE_EEXIST if it exists. */
int store_doc_create(store *db, const char *doc_id, int64_t created_ms);

/* ---- reading the log (resume) ---------------------------------------------- */

/* The log range of a document: *log_start = oldest seq still in the log
 * (head + 1 when the log is empty), *head = newest seq (head may be NULL).
 * A document that does not exist reports start 1, head 0 and STORE_OK. */
int store_log_start(store *db, const char *doc_id, uint64_t *log_start, uint64_t *head);

/* A change read back. Pointers are valid during the callback only. */
typedef struct store_change_row {
	uint64_t seq;
	crdt_replica replica;
	uint32_t counter_first;
	uint32_t counter_count;
	const char *author; /* NULL when none was given */
	int64_t time_ms;
	const uint8_t *payload; /* the OpBatch bytes exactly as appended */
	size_t payload_len;
} store_change_row;

typedef int (*store_change_fn)(void *ctx, const store_change_row *row);

/*
 * Call fn for the changes of doc_id with seq > after_seq, in seq order, at
 * most `limit` of them (0: no limit), all from one consistent read. The
 * payloads are the stored bytes (forward them as they are).
 *
 * Returns STORE_OK when done (also when there is nothing after after_seq,
 * and for a document that does not exist with after_seq 0), the callback's
 * non-zero value if it stopped early, STORE_ETRIMMED when after_seq + 1 <
 * log_start (the log no longer reaches back: send the snapshot instead),
 * STORE_ERANGE when after_seq > head, or an SQLite error.
 */
int store_changes(store *db, const char *doc_id, uint64_t after_seq, uint64_t limit,
		  store_change_fn fn, void *ctx);

/* ---- loading documents -------------------------------------------------------- */

/* How a load went. doc is owned by the caller (crdt_doc_free) on STORE_OK
 * and NULL on failure; so is snapshot_wire (free), filled only when asked
 * (STORE_LOAD_WIRE_SNAPSHOT). */
typedef struct store_load_result {
	crdt_doc *doc;
	bool exists;		    /* false: no such document, doc is empty, head 0 */
	uint64_t seq;		    /* the seq the document is at */
	uint64_t head_seq;	    /* the document's head in the database */
	uint64_t snapshot_seq;	    /* the snapshot it started from; 0: the log alone */
	uint64_t changes_applied;   /* changes replayed on top of it */
	uint32_t snapshots_skipped; /* damaged snapshots passed over (on_damage told) */
	uint64_t skipped_seq;	    /* the newest skipped one, and why */
	char skipped_reason[160];
	/* STORE_LOAD_WIRE_SNAPSHOT only: when the document was loaded from a
	 * snapshot at exactly seq (changes_applied 0), that snapshot's
	 * decompressed bytes: the wire Snapshot message (wire_snapshot_encode
	 * output) of the loaded state, validated. malloc'd, the caller frees
	 * it; NULL (len 0) otherwise and on failure. */
	uint8_t *snapshot_wire;
	size_t snapshot_wire_len;
} store_load_result;

/*
 * Rebuild doc_id at its head: the newest valid snapshot plus the changes
 * after it (decoded with wire_ops_decode, applied with crdt_doc_apply in
 * seq order), as a document edited locally as `replica` (non-zero).
 *
 * A snapshot that fails its checksum, decompression, decoding or whose seq
 * or doc id disagree with its row is reported (on_damage, result counters)
 * and skipped for the previous one plus a longer stretch of log. If no
 * snapshot is usable and the log does not reach back to seq 1, the load
 * FAILS with STORE_ENOBASE: it never yields an empty or partial document
 * for a document that has history. A document that does not exist loads as
 * an empty document with exists = false, seq 0 (STORE_OK).
 *
 * Errors: STORE_ENOBASE, STORE_ECORRUPT (a change in the log is missing, or
 * does not decode or apply: errmsg names its seq), STORE_EINVAL (replica
 * 0), STORE_ENOMEM, SQLite errors. *out is filled in either case (doc NULL
 * on failure) so the skipped snapshots can be reported.
 */
int store_load(store *db, const char *doc_id, crdt_replica replica, store_load_result *out);

enum store_load_flags {
	STORE_LOAD_LOG_ONLY = 1,      /* ignore snapshots: replay the log from seq 1
				       * (STORE_ENOBASE if it was trimmed) */
	STORE_LOAD_WIRE_SNAPSHOT = 2, /* also return the base snapshot's wire bytes
				       * when no change is replayed on top of it
				       * (store_load_result.snapshot_wire) */
};

/*
 * Rebuild doc_id as it was at `seq` (time travel; STORE_HEAD: the head):
 * the newest valid snapshot at or before seq plus the changes up to seq.
 * Same rules and errors as store_load, and STORE_ERANGE if seq > head,
 * STORE_ENOBASE if no snapshot at or before seq is usable and the log does
 * not reach back to seq 1. flags: 0 or a combination of store_load_flags.
 */
int store_load_at(store *db, const char *doc_id, uint64_t seq, unsigned flags, crdt_replica replica,
		  store_load_result *out);

/* ---- snapshots ------------------------------------------------------------------- */

/*
 * Store a snapshot of `doc`, which must be the document's state after
 * exactly the changes 1..seq (1 <= seq <= head). The wire Snapshot container
 * is zstd-compressed and stored with its CRC-32C and raw size in its own
 * transaction; an existing snapshot at the same seq is replaced. Durable
 * when it returns STORE_OK. Does not trim (see store_trim).
 * Errors: STORE_ENOTFOUND (no such document), STORE_ERANGE (seq 0 or beyond
 * the head), STORE_EINVAL (a document that cannot be the state at seq: it
 * has no ops at all, or it lacks the counters change seq says it carries
 * (store_change.counter_first/count); a failed or stale load must never be
 * written over the real history), STORE_ENOMEM, STORE_EFULL, STORE_EIO,
 * STORE_EBUSY, STORE_EREADONLY.
 */
int store_snapshot(store *db, const char *doc_id, uint64_t seq, const crdt_doc *doc);

/*
 * store_snapshot for a caller that already has the encoding: raw[0..raw_len)
 * must be wire_snapshot_encode(doc, doc_id, seq) (the server keeps it to
 * send in Welcomes; this saves encoding the document twice). It is
 * compressed and stored as is; doc is still checked as by store_snapshot.
 * Same errors, and STORE_EINVAL for NULL or empty bytes. The caller keeps
 * ownership of raw.
 */
int store_snapshot_encoded(store *db, const char *doc_id, uint64_t seq, const crdt_doc *doc,
			   const uint8_t *raw, size_t raw_len);

/* Whether the policy (snapshot_every_changes / _bytes) wants a snapshot of a
 * document with this many changes and payload bytes logged since its newest
 * snapshot (store_doc_info's changes_since_snapshot, bytes_since_snapshot). */
bool store_snapshot_due(const store *db, uint64_t changes_since, uint64_t bytes_since);

/* A stored snapshot, as listed (not validated). */
typedef struct store_snapshot_info {
	uint64_t seq;
	uint32_t format;       /* STORE_SNAPSHOT_FORMAT */
	uint64_t raw_bytes;    /* the Snapshot container before compression */
	uint64_t stored_bytes; /* the zstd frame */
	uint32_t checksum;     /* stored CRC-32C of the zstd frame */
	int64_t created_ms;
} store_snapshot_info;

typedef int (*store_snapshot_fn)(void *ctx, const store_snapshot_info *info);

/* Call fn for each snapshot of doc_id, newest first. STORE_OK (also when
 * there are none or no such document) or the callback's non-zero value. */
int store_snapshots(store *db, const char *doc_id, store_snapshot_fn fn, void *ctx);

/*
 * Validate the snapshot of doc_id at seq: checksum, decompression, raw size,
 * decoding, doc id and seq. STORE_OK, STORE_ENOTFOUND, or STORE_ESNAPSHOT
 * with the reason in store_errmsg. If doc is not NULL, *doc receives the
 * decoded document (edited as replica, owned by the caller) on STORE_OK.
 */
int store_snapshot_check(store *db, const char *doc_id, uint64_t seq, crdt_replica replica,
			 crdt_doc **doc);

/* ---- trimming ------------------------------------------------------------------------ */

typedef struct store_trim_result {
	uint64_t changes_removed;
	uint64_t snapshots_removed;
	uint64_t log_start; /* the document's log start afterwards */
} store_trim_result;

/*
 * Trim the log of doc_id (NULL: of every document) in one transaction per
 * document. Let B be the second-newest VALID snapshot (fully checked): the
 * newest one may be damaged and the load then needs B plus the log. Changes
 * with seq <= B are removed when the retention window allows (keep_changes
 * newest changes, changes newer than keep_ms are kept); snapshots older
 * than B are removed. With fewer than two valid snapshots nothing is
 * trimmed. So a load survives any single damaged snapshot, and a change is
 * never removed unless a valid snapshot covers it. Damaged snapshots found
 * are reported through on_damage. out may be NULL (totals for NULL doc_id).
 * Errors: STORE_EREADONLY, STORE_EBUSY, STORE_EIO, STORE_EFULL, SQLite
 * errors; a missing document is STORE_OK with nothing removed.
 */
int store_trim(store *db, const char *doc_id, store_trim_result *out);

/* ---- inspection (quire-dump) ------------------------------------------------------------ */

typedef struct store_doc_info {
	char doc_id[STORE_DOC_ID_MAX + 1];
	int64_t created_ms;
	int64_t updated_ms; /* time_ms of the newest change; 0: none */
	uint64_t head_seq;
	uint64_t log_start;		 /* oldest seq in the log; head + 1: empty */
	uint64_t log_changes;		 /* head - log_start + 1 */
	uint64_t log_bytes;		 /* payload bytes in the log */
	uint32_t snapshots;		 /* stored (valid or not) */
	uint64_t snapshot_seq;		 /* newest snapshot's seq, 0: none */
	uint64_t snapshot_bytes;	 /* its compressed size */
	uint64_t snapshot_raw_bytes;	 /* its uncompressed size */
	uint64_t changes_since_snapshot; /* head - snapshot_seq */
	uint64_t bytes_since_snapshot;	 /* payload bytes of those changes */
} store_doc_info;

/* Fill *out for doc_id. STORE_ENOTFOUND when there is no such document. */
int store_doc_info_get(store *db, const char *doc_id, store_doc_info *out);

typedef int (*store_doc_fn)(void *ctx, const store_doc_info *info);

/* Call fn for every document, ordered by doc id, from one consistent read.
 * STORE_OK or the callback's non-zero value. */
int store_docs(store *db, store_doc_fn fn, void *ctx);

/* Copy the WAL's committed pages into the database file (a PASSIVE
 * checkpoint: never waits for readers; what they still use is left for
 * later) and, with truncate, also wait for readers briefly (busy timeout)
 * and truncate the WAL to zero bytes. Needed only with checkpoint_pages 0,
 * or to shrink the WAL. Durability does not depend on it. Errors:
 * STORE_EREADONLY, STORE_EBUSY (truncate only), STORE_EIO, SQLite errors. */
int store_checkpoint(store *db, bool truncate);

/* Rewrite the database file without its free pages (SQLite's VACUUM) and
 * switch it to auto_vacuum = INCREMENTAL, so that trims give pages back
 * from then on, as in files made since that became the default. For files
 * made before (their free pages after trims stay in the file, for reuse).
 * Needs the write lock for the whole rewrite: run it with the server
 * stopped (else it waits busy_timeout_ms for the lock, then STORE_EBUSY),
 * and room for a temporary copy of the database. Sizes are page_count x
 * page_size before and after; auto_vacuum_was is 0 (none), 1 (full) or 2
 * (incremental). Errors: STORE_EREADONLY, STORE_EBUSY, STORE_EFULL,
 * STORE_EIO, SQLite errors; the file is then as it was. */
typedef struct store_vacuum_result {
	uint64_t bytes_before, bytes_after;
	int auto_vacuum_was;
} store_vacuum_result;

int store_vacuum(store *db, store_vacuum_result *out);

/* What the checkpoint thread has done (all zero without one). */
typedef struct store_checkpoint_counts {
	uint64_t background;	      /* checkpoints the thread ran */
	uint64_t background_busy;     /* of those, found another checkpoint running */
	uint64_t background_failures; /* of those, failed otherwise (I/O errors...) */
	int last_failure;	      /* STORE_E* of the newest failure, STORE_OK if none */
	uint64_t inline_runs;	      /* commits that checkpointed themselves: the thread fell behind */
} store_checkpoint_counts;

void store_checkpoint_stats(store *db, store_checkpoint_counts *out);

/* Wait up to wait_ms for the checkpoint thread to have no checkpoint asked
 * for or running (tests, tools). True when idle (always without a thread). */
bool store_checkpoint_idle(store *db, uint32_t wait_ms);

/* The database's file size in bytes (page_count * page_size; the WAL not
 * included), or 0 on error. */
uint64_t store_db_bytes(store *db);

#ifdef __cplusplus
}
#endif
#endif /* QUIRE_STORE_H */
