/*
 * crdt.h - Quire's text CRDT: the public contract of crdt/.
 *
 * A crdt_doc is one replica of a collaboratively edited text. Local edits
 * (insert/delete at a code-point position) produce operations; operations
 * from other replicas are integrated in any causal order and every replica
 * that has seen the same set of operations holds the same text. The model,
 * the ordering rule and the invariants are explained in crdt/INTERNALS.md.
 *
 * The library is pure C11: no I/O, no threads, no global mutable state. All
 * memory a document uses goes through its allocator (crdt_allocator), so a
 * caller can count it or make it fail on purpose.
 *
 * Conventions
 *  - Positions and lengths in the editing API are Unicode code points.
 *  - Text crosses the API as UTF-8; invalid UTF-8 is rejected (CRDT_EUTF8).
 *  - Functions returning int return CRDT_OK (0) or a positive status on
 *    success and a negative CRDT_E* code on failure. Unless a function says
 *    otherwise, on failure the document is unchanged.
 *  - Bad input (remote ops, snapshots) never aborts the process.
 *  - A document belongs to one thread at a time: even the functions that
 *    take a const crdt_doc * may update its internal lookup caches.
 */
#ifndef QUIRE_CRDT_H
#define QUIRE_CRDT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- status codes --------------------------------------------------- */

#define CRDT_STATUS_TABLE(X)                                                      \
	X(CRDT_OK, 0, "ok")                                                       \
	X(CRDT_DUPLICATE, 1, "operation already applied")                         \
	X(CRDT_PENDING, 2, "operation held until its dependencies arrive")        \
	X(CRDT_ENOMEM, -1, "out of memory")                                       \
	X(CRDT_EINVAL, -2, "invalid argument or malformed operation")             \
	X(CRDT_EUTF8, -3, "invalid UTF-8")                                        \
	X(CRDT_ERANGE, -4, "position or length out of range")                     \
	X(CRDT_EMISSING, -5, "operation depends on operations not seen")          \
	X(CRDT_EPENDING_FULL, -6, "too many operations waiting for dependencies") \
	X(CRDT_ECORRUPT, -7, "damaged or inconsistent data")                      \
	X(CRDT_EVERSION, -8, "unsupported snapshot format version")               \
	X(CRDT_ELIMIT, -9, "document, counter or clock limit exceeded")           \
	X(CRDT_ESPACE, -10, "output buffer too small")

enum crdt_status {
#define CRDT__ENUM(name, value, text) name = value,
	CRDT_STATUS_TABLE(CRDT__ENUM)
#undef CRDT__ENUM
};

/* Human-readable text for any status code; never NULL. */
const char *crdt_strerror(int status);

/* ---- identifiers ---------------------------------------------------- */

/* A replica (one editing session of one client) is named by a 64-bit id the
 * client chooses at random. CRDT_NO_REPLICA is reserved. */
typedef uint64_t crdt_replica;
#define CRDT_NO_REPLICA ((crdt_replica)0)

/* Every inserted code point and every deleted code point consumes one
 * counter of the replica that made the op; counters start at 0 and are
 * contiguous per replica. An op of length n covers counters
 * [id.counter, id.counter + n) and Lamport times [lamport, lamport + n). */
typedef struct crdt_id {
	crdt_replica replica;
	uint32_t counter;
} crdt_id;

/* "No origin": the start (left) or end (right) of the document. */
#define CRDT_NO_ID ((crdt_id){CRDT_NO_REPLICA, 0})

/* Limits that keep counters, Lamport times and positions in 32 bits: an
 * op's counters and Lamport times must stay within CRDT_MAX_COUNTER. */
#define CRDT_MAX_COUNTER 0x7fffffffu
#define CRDT_MAX_OP_LEN (1u << 24) /* code points in one op */

/* ---- operations ------------------------------------------------------ */

enum crdt_op_kind { CRDT_OP_INSERT = 1, CRDT_OP_DELETE = 2 };

/*
 * One operation. Inserts carry the run's origins: `left` is the unit that
 * was immediately before the first inserted code point when it was made,
 * `right` the unit immediately after it (CRDT_NO_ID for the document's start
 * and end). Inside a run, code point k (k > 0) has code point k-1 as its left
 * origin and shares the run's right origin.
 *
 * An insert whose text is NULL is a collected insert: its content was
 * deleted and garbage-collected before it was sent, so it integrates as a
 * tombstone of `len` code points (ops_since produces these).
 *
 * A delete removes the code points [target.counter, target.counter + len)
 * of replica target.replica; deleting what is already deleted is a no-op.
 */
typedef struct crdt_op {
	uint8_t kind;	  /* enum crdt_op_kind */
	crdt_id id;	  /* first counter of this op */
	uint32_t lamport; /* Lamport time of the first unit */
	uint32_t len;	  /* code points inserted or deleted, >= 1 */
	crdt_id left;	  /* insert: left origin */
	crdt_id right;	  /* insert: right origin */
	const char *text; /* insert: UTF-8 of exactly len code points, or NULL */
	uint32_t text_bytes;
	crdt_id target; /* delete: first deleted unit */
} crdt_op;

/* A visible change to the text, reported while applying remote ops so an
 * editor can mirror it: at code point `pos`, `deleted` code points were
 * removed, then `text` (text_bytes of UTF-8, `inserted` code points) was
 * inserted. Positions are in the document as it was just before this patch. */
typedef struct crdt_patch {
	size_t pos;
	size_t deleted;
	size_t inserted;
	const char *text;
	size_t text_bytes;
} crdt_patch;

typedef void (*crdt_patch_fn)(void *ctx, const crdt_patch *patch);

/* ---- allocation ------------------------------------------------------ */

/* Every byte a document (or batch) holds comes from here. `alloc` returns
 * NULL on failure; `release` receives the size that was allocated. */
typedef struct crdt_allocator {
	void *(*alloc)(void *ctx, size_t size);
	void (*release)(void *ctx, void *ptr, size_t size);
	void *ctx;
} crdt_allocator;

/* ---- batches of ops --------------------------------------------------- */

/* A growable list of ops that owns a copy of their text. Local edits append
 * the ops they make to a batch; ops_since fills one. */
typedef struct crdt_batch crdt_batch;

/* NULL allocator means malloc/free. Returns NULL when out of memory. */
crdt_batch *crdt_batch_new(const crdt_allocator *allocator);
void crdt_batch_free(crdt_batch *batch);
/* Forget all ops (keeps the memory for reuse). */
void crdt_batch_clear(crdt_batch *batch);
size_t crdt_batch_count(const crdt_batch *batch);
/* The i-th op; valid until the batch is next modified. */
const crdt_op *crdt_batch_get(const crdt_batch *batch, size_t i);
/* Drop every op from index n on (n >= count: no change). The memory stays
 * for reuse. */
void crdt_batch_truncate(crdt_batch *batch, size_t n);
/* Append a copy of op (and of its text). A new op that continues the last
 * one (same replica and kind, contiguous counters, Lamport times and
 * targets/origins) is merged into it. CRDT_ENOMEM leaves the batch as it was. */
int crdt_batch_push(crdt_batch *batch, const crdt_op *op);

/* ---- documents -------------------------------------------------------- */

typedef struct crdt_doc crdt_doc;

typedef struct crdt_options {
	/* NULL: malloc/free. The allocator must outlive the document. */
	const crdt_allocator *allocator;
	/* Remote ops whose dependencies are unknown are held, at most this many
	 * ops and bytes of text, and applied as soon as they can be. With 0,
	 * such ops are rejected with CRDT_EMISSING. max_pending_bytes 0 means
	 * 1 MiB. */
	uint32_t max_pending_ops;
	size_t max_pending_bytes;
} crdt_options;

/* A new empty document edited locally as `replica` (not CRDT_NO_REPLICA).
 * opts may be NULL. Returns NULL when out of memory or replica is 0. */
crdt_doc *crdt_doc_new(crdt_replica replica, const crdt_options *opts);
void crdt_doc_free(crdt_doc *doc);

crdt_replica crdt_doc_replica(const crdt_doc *doc);

/* Visible text length in code points and in UTF-8 bytes. */
size_t crdt_doc_length(const crdt_doc *doc);
size_t crdt_doc_utf8_bytes(const crdt_doc *doc);

/* Copy the visible text (UTF-8, not NUL-terminated) into buf. Returns the
 * number of bytes the whole text needs; copies only if cap is enough. */
size_t crdt_doc_text(const crdt_doc *doc, char *buf, size_t cap);

/* Local edits. Insert `nbytes` of UTF-8 at code point `pos` (0..length);
 * delete `len` code points from `pos`. The ops made are appended to `out`
 * (which may be NULL) for sending to other replicas. Errors: CRDT_EUTF8,
 * CRDT_ERANGE, CRDT_ELIMIT, CRDT_ENOMEM; on every error the document and
 * `out` are unchanged. Inserting empty text or deleting 0 is a no-op. A
 * delete may produce several ops (one per run of target ids). */
int crdt_doc_insert(crdt_doc *doc, size_t pos, const char *utf8, size_t nbytes, crdt_batch *out);
int crdt_doc_delete(crdt_doc *doc, size_t pos, size_t len, crdt_batch *out);

/*
 * Integrate one op from any replica (including our own, e.g. echoed back).
 * Returns CRDT_OK when applied, CRDT_DUPLICATE when every unit of it was
 * already known (a partly known op is applied for its new part), and
 * CRDT_PENDING when it was held for missing dependencies. Errors:
 * CRDT_EINVAL (malformed: zero length, bad kind, counter/Lamport overflow,
 * text not matching len, Lamport not after its dependencies, a reference to
 * a unit of the wrong kind), CRDT_EUTF8, CRDT_EMISSING (unknown
 * dependencies and no pending room configured), CRDT_EPENDING_FULL,
 * CRDT_ENOMEM; the document is unchanged on every error.
 * Visible changes, including those of held ops applied now, go to `fn`
 * (may be NULL) in order.
 */
int crdt_doc_apply(crdt_doc *doc, const crdt_op *op, crdt_patch_fn fn, void *ctx);

/* ---- anchors (carets that move with edits) ------------------------------ */

/* A caret is anchored "just after unit X", or at the start (CRDT_NO_ID), so
 * that it stays in place while others edit. The anchor of visible position
 * pos (0..length): CRDT_NO_ID for 0, else the id of visible unit pos-1.
 * CRDT_ERANGE if pos > length. */
int crdt_doc_anchor_at(const crdt_doc *doc, size_t pos, crdt_id *anchor);

/* The visible position of a caret anchored after `anchor` (the start for
 * CRDT_NO_ID). If that unit was deleted, the caret sits where it was.
 * CRDT_EMISSING if the unit is not known (yet), CRDT_EINVAL if the id is a
 * delete's. */
int crdt_doc_anchor_pos(const crdt_doc *doc, crdt_id anchor, size_t *pos);

/* Number of ops currently held for missing dependencies. */
size_t crdt_doc_pending(const crdt_doc *doc);

/* ---- versions and deltas --------------------------------------------- */

/* What a replica has: for each replica, the next counter it expects (all
 * counters below it have been applied). */
typedef struct crdt_vv_entry {
	crdt_replica replica;
	uint32_t next;
} crdt_vv_entry;

/* Write up to `cap` entries of the document's version vector, sorted by
 * replica; returns how many entries there are in all. Replicas with
 * nothing applied yet (next == 0, e.g. our own before its first edit) are
 * left out. */
size_t crdt_doc_version(const crdt_doc *doc, crdt_vv_entry *out, size_t cap);

/* Next counter expected from `replica` (0 if never seen). */
uint32_t crdt_doc_seen(const crdt_doc *doc, crdt_replica replica);

/* The next Lamport time this replica will use. */
uint32_t crdt_doc_clock(const crdt_doc *doc);

/* Append to `out` every op this document has that a replica at version
 * `vv` (n entries, any order; missing replicas count as 0) lacks, in an
 * order that respects causality, so applying them in order to such a
 * replica succeeds without pending. Deleted content that was collected is
 * sent as collected inserts (text NULL). CRDT_ENOMEM: `out` may hold part. */
int crdt_doc_ops_since(const crdt_doc *doc, const crdt_vv_entry *vv, size_t n, crdt_batch *out);

/* ---- snapshots -------------------------------------------------------- */

/* Snapshot format version written by this library (first byte). */
#define CRDT_SNAPSHOT_VERSION 1

/* An upper bound of the snapshot size in bytes. */
size_t crdt_doc_encode_bound(const crdt_doc *doc);

/* Encode the whole state (ids, origins, tombstones, deletes, clock, text;
 * deleted content is not kept) into buf. On success *len is the size
 * written. CRDT_ESPACE if cap is smaller than crdt_doc_encode_bound (*len
 * is then that bound); CRDT_ENOMEM if the scratch document the encoder
 * replays into cannot be allocated. Held (pending) ops are not saved. */
int crdt_doc_encode(const crdt_doc *doc, uint8_t *buf, size_t cap, size_t *len);

/* Rebuild a document from a snapshot, to be edited locally as `replica`.
 * Returns NULL and sets *status (if not NULL) to CRDT_ECORRUPT,
 * CRDT_EVERSION or CRDT_ENOMEM on failure. Damaged input never crashes. */
crdt_doc *crdt_doc_decode(const uint8_t *data, size_t len, crdt_replica replica,
			  const crdt_options *opts, int *status);

/* ---- inspection --------------------------------------------------------- */

typedef struct crdt_stats {
	size_t length;		/* visible code points */
	size_t utf8_bytes;	/* visible bytes */
	size_t units;		/* all inserted code points, live and deleted */
	size_t items;		/* runs in the sequence */
	size_t tombstone_items; /* of which deleted */
	size_t deleted_units;	/* deleted code points */
	size_t replicas;
	size_t id_runs;	    /* entries of the id map */
	size_t delete_runs; /* entries of the delete log */
	size_t leaves;
	size_t depth;
	size_t memory_bytes; /* bytes held from the allocator */
} crdt_stats;

void crdt_doc_stats(const crdt_doc *doc, crdt_stats *out);

/* Deep consistency check of every invariant in INTERNALS.md (tree counts,
 * ordering, id map, index, text). O(n). Returns CRDT_OK or CRDT_ECORRUPT. */
int crdt_doc_check(const crdt_doc *doc);

/* Total number of bytes held by a document's allocator (== stats.memory). */
size_t crdt_doc_memory(const crdt_doc *doc);

/* ---- UTF-8 helpers (used by the wire layer and clients) ---------------- */

/* Validate UTF-8 (no overlongs, surrogates or code points > U+10FFFF).
 * Returns the number of code points, or -1 if invalid. */
long crdt_utf8_count(const char *s, size_t nbytes);

#ifdef __cplusplus
}
#endif
#endif /* QUIRE_CRDT_H */
