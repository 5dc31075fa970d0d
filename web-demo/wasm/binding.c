/*
 * binding.c - the JavaScript face of crdt/ in WebAssembly (web-demo).
 *
 * Compiled together with the crdt/ sources by clang-14 --target=wasm32-wasi into a
 * reactor module (web-demo/dist/quire.wasm) that imports nothing. Every
 * function JS may call is marked export_name("qb_*"); nothing else is
 * exported except the memory.
 *
 * Design: one qb_doc wraps a crdt_doc plus the scratch space the calls need
 * (the ops a local edit made, the patches an apply reported, an output
 * buffer, an input buffer), so the module holds no global mutable state and
 * JS never has to lay out C structs.
 *
 * The sync client's hot path stays in here (issue 6: per-op JS objects,
 * BigInts and a full-text scan per patch cost ~26 us per edit per observer):
 *  - qb_recv takes a whole ServerMessage as bytes; a Changes message is
 *    decoded by the small protobuf reader below (just the fields of
 *    Changes / Change / Op / Insert / Delete; protobuf-c is not available
 *    for wasm32-wasi) and every change after last_seq is applied in that one
 *    call. Other message kinds are left to JS (@bufbuild).
 *  - the outbox: local edits push their ops into `unsent` (consecutive
 *    typing merges, crdt_batch_push); qb_update_encode writes the next
 *    Update's bytes from it and moves those ops to `sent`; acks (and our own
 *    ops met in Changes) drop them; a new connection rewinds `sent`.
 *  - the astral index: sorted code point positions of the visible
 *    characters outside the BMP (usually none), kept by every patch and local
 *    edit, so code point <-> UTF-16 offsets are a binary search and patches
 *    carry their UTF-16 offsets.
 *  - progress: the sum of the version vector, kept per edit and apply (the
 *    documents have no pending room, so an apply only advances the op's own
 *    replica).
 * Ops can still cross the boundary as scalars (qb_op_* to read a local
 * edit's or the outbox's ops, qb_apply / qb_outbox_push to hand one in).
 *
 * Conventions: pointers and sizes are i32, replica ids are i64 (BigInt in
 * JS), seqs and client batches are f64 (exact below 2^53), statuses are the
 * crdt_status codes (0 ok, negative errors). An origin or target of
 * CRDT_NO_ID is reported as replica 0; real replicas are never 0. Patches
 * are packed little-endian as records of six u32 (pos, deleted, inserted,
 * text_bytes, from16, to16: the UTF-16 offsets of pos and pos + deleted)
 * followed by text_bytes of UTF-8, padded to 4 bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "crdt.h"

#define QB_EXPORT(name) __attribute__((export_name(name)))

typedef struct qb_doc {
	crdt_doc *doc;
	crdt_batch *ops;  /* ops made by the last local edit */
	uint8_t *patches; /* packed patches reported since qb_patches_clear */
	size_t patches_len, patches_cap;
	uint32_t patch_count;
	int patch_status; /* CRDT_ENOMEM if a patch could not be recorded */
	uint8_t *out;	  /* qb_text / qb_encode / qb_version output */
	size_t out_len, out_cap;
	crdt_id anchor;	     /* result of qb_anchor_at */
	uint32_t anchor_pos; /* result of qb_anchor_pos */
	/* astral index: the sorted code point positions of the visible code
	 * points outside the BMP (two UTF-16 units each); usually empty */
	uint32_t *astral;
	size_t astral_n, astral_cap;
	double progress; /* sum of the version vector's next counters */
	/* the outbox (qb_outbox_enable): our ops not acknowledged yet; `sent`
	 * went out on this connection, `unsent` did not (merged as made) */
	int outbox;
	crdt_batch *sent, *unsent;
	/* qb_recv: its input buffer and results */
	uint8_t *in;
	size_t in_cap;
	crdt_op *opv; /* the ops of one Change, text pointing into `in` */
	size_t opv_cap;
	/* qb_recv's results, laid out for JS to read in place (qb_res): one
	 * typed-array read per field instead of a call each per message */
	struct qb_res {
		double seq, progress;
		uint32_t changes, echoes, errors, gap, patch_count;
		int32_t error;
	} res;
	/* qb_recv of a Welcome: its fields; the snapshot's state stays in `in`
	 * (at wel_state, wel_state_len) for qb_welcome_load */
	uint32_t wel_version, wel_read_only, wel_snapshot, wel_mine;
	double wel_head_seq, wel_seq;
	size_t wel_state, wel_state_len;
} qb_doc;

static int qb__reserve(uint8_t **buf, size_t *cap, size_t need)
{
	if (need <= *cap)
		return CRDT_OK;
	size_t n = *cap ? *cap : 256;
	while (n < need)
		n *= 2;
	uint8_t *p = realloc(*buf, n);
	if (p == NULL)
		return CRDT_ENOMEM;
	*buf = p;
	*cap = n;
	return CRDT_OK;
}

/* ---- the astral index (code points <-> UTF-16 units) -------------------- */

/* Index of the first astral position >= cp. */
static size_t qb__astral_lower(const qb_doc *q, uint32_t cp)
{
	size_t lo = 0, hi = q->astral_n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (q->astral[mid] < cp)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Code points [pos, pos + len) were deleted. */
static void qb__astral_delete(qb_doc *q, uint32_t pos, uint32_t len)
{
	if (q->astral_n == 0 || len == 0)
		return;
	size_t a = qb__astral_lower(q, pos), b = qb__astral_lower(q, pos + len);
	memmove(q->astral + a, q->astral + b, (q->astral_n - b) * sizeof *q->astral);
	q->astral_n -= b - a;
	for (size_t i = a; i < q->astral_n; i++)
		q->astral[i] -= len;
}

/* `ncp` code points of UTF-8 `text` were inserted at pos. */
static int qb__astral_insert(qb_doc *q, uint32_t pos, const char *text, size_t nbytes, uint32_t ncp)
{
	const uint8_t *t = (const uint8_t *)text;
	size_t add = 0;
	for (size_t i = 0; i < nbytes; i++)
		add += t[i] >= 0xf0;
	if (q->astral_n == 0 && add == 0)
		return CRDT_OK;
	size_t at = qb__astral_lower(q, pos);
	for (size_t i = at; i < q->astral_n; i++)
		q->astral[i] += ncp;
	if (add == 0)
		return CRDT_OK;
	size_t need = (q->astral_n + add) * sizeof *q->astral,
	       cap = q->astral_cap * sizeof *q->astral;
	uint8_t *buf = (uint8_t *)q->astral;
	if (qb__reserve(&buf, &cap, need) != CRDT_OK)
		return CRDT_ENOMEM;
	q->astral = (uint32_t *)buf;
	q->astral_cap = cap / sizeof *q->astral;
	memmove(q->astral + at + add, q->astral + at, (q->astral_n - at) * sizeof *q->astral);
	uint32_t cp = pos;
	size_t k = at;
	for (size_t i = 0; i < nbytes; i++) {
		if ((t[i] & 0xc0) == 0x80)
			continue; /* continuation byte */
		if (t[i] >= 0xf0)
			q->astral[k++] = cp;
		cp++;
	}
	q->astral_n += add;
	return CRDT_OK;
}

/* Rebuild the index and the progress sum from the whole document. */
static int qb__reindex(qb_doc *q)
{
	q->astral_n = 0;
	size_t n = crdt_doc_version(q->doc, NULL, 0);
	crdt_vv_entry *vv = malloc((n ? n : 1) * sizeof *vv);
	if (vv == NULL)
		return CRDT_ENOMEM;
	crdt_doc_version(q->doc, vv, n);
	q->progress = 0;
	for (size_t i = 0; i < n; i++)
		q->progress += vv[i].next;
	free(vv);
	size_t bytes = crdt_doc_utf8_bytes(q->doc);
	char *text = malloc(bytes ? bytes : 1);
	if (text == NULL)
		return CRDT_ENOMEM;
	crdt_doc_text(q->doc, text, bytes);
	int rc = qb__astral_insert(q, 0, text, bytes, (uint32_t)crdt_doc_length(q->doc));
	free(text);
	return rc;
}

/* ---- the heap's growth ---------------------------------------------------- */

/*
 * dlmalloc (wasi-libc) gets memory from sbrk, which grows the wasm memory
 * by the amount asked for: a page or a few at a time. Every memory.grow is
 * costly in V8 (a new ArrayBuffer, external-memory accounting that starts
 * garbage collections): 100 replicas applying the automerge-paper trace
 * grew it about 1,600 times, which took 85 % of the time. This sbrk, which
 * replaces wasi-libc's, grows the memory by at least a quarter (and 1 MiB)
 * and hands that out as the break moves: 18 grows for the same run. Pages
 * grown but not used yet are not touched, so they cost address space, not
 * resident memory.
 */
#define QB_PAGE 65536u

/* the break; 0 until the first call (allocator state, like dlmalloc's) */
static uintptr_t qb_brk;

void *sbrk(intptr_t increment)
{
	uintptr_t end = __builtin_wasm_memory_size(0) * QB_PAGE;
	if (qb_brk == 0)
		qb_brk = end;
	if (increment < 0) /* dlmalloc never shrinks here (MORECORE_CANNOT_TRIM) */
		return (void *)-1;
	uintptr_t need = (uintptr_t)increment;
	if (need > end - qb_brk) {
		uintptr_t pages = (need - (end - qb_brk) + QB_PAGE - 1) / QB_PAGE;
		uintptr_t more = end / QB_PAGE / 4;
		if (more < 16)
			more = 16;
		if (more < pages || __builtin_wasm_memory_grow(0, more) == SIZE_MAX) {
			/* no room for the generous step: just what is needed */
			if (__builtin_wasm_memory_grow(0, pages) == SIZE_MAX)
				return (void *)-1;
		}
	}
	void *old = (void *)qb_brk;
	qb_brk += need;
	return old;
}

/* ---- memory for JS ------------------------------------------------------ */

QB_EXPORT("qb_malloc") void *qb_malloc(size_t n) { return malloc(n ? n : 1); }
QB_EXPORT("qb_free") void qb_free(void *p) { free(p); }
QB_EXPORT("qb_strerror") const char *qb_strerror(int status) { return crdt_strerror(status); }

/* ---- documents ---------------------------------------------------------- */

/* A new empty document for `replica` (non-zero); NULL when out of memory. */
QB_EXPORT("qb_new") qb_doc *qb_new(uint64_t replica)
{
	qb_doc *q = calloc(1, sizeof *q);
	if (q == NULL)
		return NULL;
	q->doc = crdt_doc_new(replica, NULL);
	q->ops = crdt_batch_new(NULL);
	q->sent = crdt_batch_new(NULL);
	q->unsent = crdt_batch_new(NULL);
	if (q->doc == NULL || q->ops == NULL || q->sent == NULL || q->unsent == NULL) {
		crdt_doc_free(q->doc);
		crdt_batch_free(q->ops);
		crdt_batch_free(q->sent);
		crdt_batch_free(q->unsent);
		free(q);
		return NULL;
	}
	return q;
}

QB_EXPORT("qb_delete_doc") void qb_delete_doc(qb_doc *q)
{
	if (q == NULL)
		return;
	crdt_doc_free(q->doc);
	crdt_batch_free(q->ops);
	crdt_batch_free(q->sent);
	crdt_batch_free(q->unsent);
	free(q->patches);
	free(q->out);
	free(q->astral);
	free(q->in);
	free(q->opv);
	free(q);
}

/* Replace the document by the snapshot `data` (crdt_doc_encode output), kept
 * for the same replica. On error the old document stays. */
QB_EXPORT("qb_load") int qb_load(qb_doc *q, const uint8_t *data, size_t len)
{
	int status = CRDT_OK;
	crdt_doc *d = crdt_doc_decode(data, len, crdt_doc_replica(q->doc), NULL, &status);
	if (d == NULL)
		return status < 0 ? status : CRDT_ECORRUPT;
	crdt_doc_free(q->doc);
	q->doc = d;
	return qb__reindex(q);
}

QB_EXPORT("qb_length") uint32_t qb_length(const qb_doc *q)
{
	return (uint32_t)crdt_doc_length(q->doc);
}
QB_EXPORT("qb_clock") uint32_t qb_clock(const qb_doc *q) { return crdt_doc_clock(q->doc); }
QB_EXPORT("qb_seen") uint32_t qb_seen(const qb_doc *q, uint64_t replica)
{
	return crdt_doc_seen(q->doc, replica);
}
QB_EXPORT("qb_pending") uint32_t qb_pending(const qb_doc *q)
{
	return (uint32_t)crdt_doc_pending(q->doc);
}
QB_EXPORT("qb_check") int qb_check(const qb_doc *q) { return crdt_doc_check(q->doc); }

/* The output buffer filled by qb_text, qb_encode and qb_version. */
QB_EXPORT("qb_out") const uint8_t *qb_out(const qb_doc *q) { return q->out; }
QB_EXPORT("qb_out_len") uint32_t qb_out_len(const qb_doc *q) { return (uint32_t)q->out_len; }

/* The visible text into the output buffer (UTF-8). */
QB_EXPORT("qb_text") int qb_text(qb_doc *q)
{
	size_t need = crdt_doc_utf8_bytes(q->doc);
	if (qb__reserve(&q->out, &q->out_cap, need + 1) != CRDT_OK)
		return CRDT_ENOMEM;
	q->out_len = crdt_doc_text(q->doc, (char *)q->out, q->out_cap);
	return CRDT_OK;
}

/* A snapshot of the whole state into the output buffer. */
QB_EXPORT("qb_encode") int qb_encode(qb_doc *q)
{
	size_t bound = crdt_doc_encode_bound(q->doc);
	if (qb__reserve(&q->out, &q->out_cap, bound) != CRDT_OK)
		return CRDT_ENOMEM;
	int rc = crdt_doc_encode(q->doc, q->out, q->out_cap, &q->out_len);
	if (rc < 0)
		q->out_len = 0;
	return rc;
}

/* The version vector into the output buffer as records of (u64 replica,
 * u32 next); returns the number of entries or CRDT_ENOMEM. */
QB_EXPORT("qb_version") int qb_version(qb_doc *q)
{
	size_t n = crdt_doc_version(q->doc, NULL, 0);
	crdt_vv_entry *vv = malloc((n ? n : 1) * sizeof *vv);
	if (vv == NULL || qb__reserve(&q->out, &q->out_cap, n * 12 + 1) != CRDT_OK) {
		free(vv);
		return CRDT_ENOMEM;
	}
	crdt_doc_version(q->doc, vv, n);
	for (size_t i = 0; i < n; i++) {
		memcpy(q->out + i * 12, &vv[i].replica, 8);
		memcpy(q->out + i * 12 + 8, &vv[i].next, 4);
	}
	q->out_len = n * 12;
	free(vv);
	return (int)n;
}

/* ---- local edits -------------------------------------------------------- */

/* The ops of a local edit (in q->ops) go to the outbox when it is on. An
 * outbox that cannot take them is a lost edit for the peers: CRDT_ENOMEM
 * (the document has the edit; JS should treat the replica as broken). */
static int qb__local_done(qb_doc *q, uint32_t seen_before)
{
	q->progress += crdt_doc_seen(q->doc, crdt_doc_replica(q->doc)) - seen_before;
	if (!q->outbox)
		return CRDT_OK;
	for (size_t i = 0; i < crdt_batch_count(q->ops); i++)
		if (crdt_batch_push(q->unsent, crdt_batch_get(q->ops, i)) != CRDT_OK)
			return CRDT_ENOMEM;
	return CRDT_OK;
}

/* Insert nbytes of UTF-8 at code point pos; the ops made replace the op list
 * (qb_op_*) and go to the outbox. */
QB_EXPORT("qb_insert") int qb_insert(qb_doc *q, uint32_t pos, const char *utf8, uint32_t nbytes)
{
	crdt_batch_clear(q->ops);
	uint32_t seen = crdt_doc_seen(q->doc, crdt_doc_replica(q->doc));
	int rc = crdt_doc_insert(q->doc, pos, utf8, nbytes, q->ops);
	if (rc < 0)
		return rc;
	uint32_t ncp = 0;
	for (size_t i = 0; i < crdt_batch_count(q->ops); i++)
		ncp += crdt_batch_get(q->ops, i)->len;
	if (qb__astral_insert(q, pos, utf8, nbytes, ncp) != CRDT_OK)
		return CRDT_ENOMEM;
	return qb__local_done(q, seen);
}

/* Insert the single code point cp at pos (no text buffer needed). */
QB_EXPORT("qb_insert_cp") int qb_insert_cp(qb_doc *q, uint32_t pos, uint32_t cp)
{
	char b[4];
	uint32_t n;
	if (cp < 0x80) {
		b[0] = (char)cp;
		n = 1;
	} else if (cp < 0x800) {
		b[0] = (char)(0xc0 | (cp >> 6));
		b[1] = (char)(0x80 | (cp & 0x3f));
		n = 2;
	} else if (cp < 0x10000) {
		b[0] = (char)(0xe0 | (cp >> 12));
		b[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		b[2] = (char)(0x80 | (cp & 0x3f));
		n = 3;
	} else {
		b[0] = (char)(0xf0 | (cp >> 18));
		b[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
		b[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
		b[3] = (char)(0x80 | (cp & 0x3f));
		n = 4;
	}
	return qb_insert(q, pos, b, n);
}

/* Delete len code points from pos; the ops made replace the op list and go
 * to the outbox. */
QB_EXPORT("qb_remove") int qb_remove(qb_doc *q, uint32_t pos, uint32_t len)
{
	crdt_batch_clear(q->ops);
	uint32_t seen = crdt_doc_seen(q->doc, crdt_doc_replica(q->doc));
	int rc = crdt_doc_delete(q->doc, pos, len, q->ops);
	if (rc < 0)
		return rc;
	qb__astral_delete(q, pos, len);
	return qb__local_done(q, seen);
}

static const crdt_op *qb__op(const qb_doc *q, uint32_t i)
{
	static const crdt_op none; /* read-only: returned for a bad index */
	return i < crdt_batch_count(q->ops) ? crdt_batch_get(q->ops, i) : &none;
}

QB_EXPORT("qb_op_count") uint32_t qb_op_count(const qb_doc *q)
{
	return (uint32_t)crdt_batch_count(q->ops);
}
QB_EXPORT("qb_op_kind") uint32_t qb_op_kind(const qb_doc *q, uint32_t i)
{
	return qb__op(q, i)->kind;
}
QB_EXPORT("qb_op_replica") uint64_t qb_op_replica(const qb_doc *q, uint32_t i)
{
	return qb__op(q, i)->id.replica;
}
QB_EXPORT("qb_op_counter") uint32_t qb_op_counter(const qb_doc *q, uint32_t i)
{
	return qb__op(q, i)->id.counter;
}
QB_EXPORT("qb_op_lamport") uint32_t qb_op_lamport(const qb_doc *q, uint32_t i)
{
	return qb__op(q, i)->lamport;
}
QB_EXPORT("qb_op_len") uint32_t qb_op_len(const qb_doc *q, uint32_t i) { return qb__op(q, i)->len; }
QB_EXPORT("qb_op_left_replica") uint64_t qb_op_left_replica(const qb_doc *q, uint32_t i)
{
	return qb__op(q, i)->left.replica;
}
QB_EXPORT("qb_op_left_counter") uint32_t qb_op_left_counter(const qb_doc *q, uint32_t i)
{
	return qb__op(q, i)->left.counter;
}
QB_EXPORT("qb_op_right_replica") uint64_t qb_op_right_replica(const qb_doc *q, uint32_t i)
{
	return qb__op(q, i)->right.replica;
}
QB_EXPORT("qb_op_right_counter") uint32_t qb_op_right_counter(const qb_doc *q, uint32_t i)
{
	return qb__op(q, i)->right.counter;
}
QB_EXPORT("qb_op_target_replica") uint64_t qb_op_target_replica(const qb_doc *q, uint32_t i)
{
	return qb__op(q, i)->target.replica;
}
QB_EXPORT("qb_op_target_counter") uint32_t qb_op_target_counter(const qb_doc *q, uint32_t i)
{
	return qb__op(q, i)->target.counter;
}
QB_EXPORT("qb_op_text") const char *qb_op_text(const qb_doc *q, uint32_t i)
{
	return qb__op(q, i)->text;
}
QB_EXPORT("qb_op_text_bytes") uint32_t qb_op_text_bytes(const qb_doc *q, uint32_t i)
{
	return qb__op(q, i)->text_bytes;
}

/* ---- remote ops ----------------------------------------------------------- */

static void qb__patch(void *ctx, const crdt_patch *p)
{
	qb_doc *q = ctx;
	uint32_t pos = (uint32_t)p->pos, del = (uint32_t)p->deleted;
	uint32_t from16 = pos + (uint32_t)qb__astral_lower(q, pos);
	uint32_t to16 = pos + del + (uint32_t)qb__astral_lower(q, pos + del);
	qb__astral_delete(q, pos, del);
	if (qb__astral_insert(q, pos, p->text, p->text_bytes, (uint32_t)p->inserted) != CRDT_OK)
		q->patch_status = CRDT_ENOMEM;
	size_t rec = 24 + ((p->text_bytes + 3) & ~(size_t)3);
	if (q->patch_status < 0 ||
	    qb__reserve(&q->patches, &q->patches_cap, q->patches_len + rec) != CRDT_OK) {
		q->patch_status = CRDT_ENOMEM;
		return;
	}
	uint32_t head[6] = {pos, del, (uint32_t)p->inserted, (uint32_t)p->text_bytes, from16, to16};
	uint8_t *w = q->patches + q->patches_len;
	memcpy(w, head, sizeof head);
	if (p->text_bytes)
		memcpy(w + 24, p->text, p->text_bytes);
	memset(w + 24 + p->text_bytes, 0, rec - 24 - p->text_bytes);
	q->patches_len += rec;
	q->patch_count++;
}

/* Apply one op, keeping the progress sum (no ops are held: the document
 * has no pending room, so only the op's own replica can advance). */
static int qb__apply(qb_doc *q, const crdt_op *op)
{
	uint32_t seen = crdt_doc_seen(q->doc, op->id.replica);
	q->patch_status = CRDT_OK;
	int rc = crdt_doc_apply(q->doc, op, qb__patch, q);
	q->progress += crdt_doc_seen(q->doc, op->id.replica) - seen;
	if (rc >= 0 && q->patch_status < 0)
		return q->patch_status;
	return rc;
}

/* An op from the flat arguments JS passes (qb_apply, qb_outbox_push): ids
 * as replica/counter pairs, replica 0 for "none"; collected inserts carry
 * no text. */
static crdt_op qb__op_from(uint32_t kind, uint64_t replica, uint32_t counter, uint32_t lamport,
			   uint32_t len, uint64_t left_replica, uint32_t left_counter,
			   uint64_t right_replica, uint32_t right_counter, const char *text,
			   uint32_t text_bytes, uint32_t collected, uint64_t target_replica,
			   uint32_t target_counter)
{
	crdt_op op = {0};
	op.kind = (uint8_t)kind;
	op.id = (crdt_id){replica, counter};
	op.lamport = lamport;
	op.len = len;
	if (kind == CRDT_OP_INSERT) {
		op.left = left_replica ? (crdt_id){left_replica, left_counter} : CRDT_NO_ID;
		op.right = right_replica ? (crdt_id){right_replica, right_counter} : CRDT_NO_ID;
		op.text = collected ? NULL : text ? text : "";
		op.text_bytes = collected ? 0 : text_bytes;
	} else {
		op.target = (crdt_id){target_replica, target_counter};
	}
	return op;
}

/*
 * Integrate one op; its visible changes are appended to the patch list.
 * Origins and targets are absolute (JS resolves the wire's "replica 0 =
 * the op's own"); replica 0 means CRDT_NO_ID. text NULL with `collected`
 * set is a collected insert. Returns crdt_doc_apply's status, or CRDT_ENOMEM
 * if the patches could not all be recorded (the op is applied then: JS must
 * resynchronise its text from qb_text).
 */
QB_EXPORT("qb_apply")
int qb_apply(qb_doc *q, uint32_t kind, uint64_t replica, uint32_t counter, uint32_t lamport,
	     uint32_t len, uint64_t left_replica, uint32_t left_counter, uint64_t right_replica,
	     uint32_t right_counter, const char *text, uint32_t text_bytes, uint32_t collected,
	     uint64_t target_replica, uint32_t target_counter)
{
	crdt_op op = qb__op_from(kind, replica, counter, lamport, len, left_replica, left_counter,
				 right_replica, right_counter, text, text_bytes, collected,
				 target_replica, target_counter);
	return qb__apply(q, &op);
}

QB_EXPORT("qb_patches") const uint8_t *qb_patches(const qb_doc *q) { return q->patches; }
QB_EXPORT("qb_patches_len") uint32_t qb_patches_len(const qb_doc *q)
{
	return (uint32_t)q->patches_len;
}
QB_EXPORT("qb_patch_count") uint32_t qb_patch_count(const qb_doc *q) { return q->patch_count; }
QB_EXPORT("qb_patches_clear") void qb_patches_clear(qb_doc *q)
{
	q->patches_len = 0;
	q->patch_count = 0;
}

/* ---- anchors (carets) ------------------------------------------------------ */

/* The anchor of code point position pos; read it with qb_anchor_replica /
 * qb_anchor_counter (replica 0: the start of the document). */
QB_EXPORT("qb_anchor_at") int qb_anchor_at(qb_doc *q, uint32_t pos)
{
	return crdt_doc_anchor_at(q->doc, pos, &q->anchor);
}
QB_EXPORT("qb_anchor_replica") uint64_t qb_anchor_replica(const qb_doc *q)
{
	return q->anchor.replica;
}
QB_EXPORT("qb_anchor_counter") uint32_t qb_anchor_counter(const qb_doc *q)
{
	return q->anchor.counter;
}

/* The position of a caret anchored after (replica, counter); read it with
 * qb_anchor_result. */
QB_EXPORT("qb_anchor_pos") int qb_anchor_pos(qb_doc *q, uint64_t replica, uint32_t counter)
{
	size_t pos = 0;
	crdt_id id = replica ? (crdt_id){replica, counter} : CRDT_NO_ID;
	int rc = crdt_doc_anchor_pos(q->doc, id, &pos);
	q->anchor_pos = (uint32_t)pos;
	return rc;
}
QB_EXPORT("qb_anchor_result") uint32_t qb_anchor_result(const qb_doc *q) { return q->anchor_pos; }

/* ---- positions in UTF-16 units and progress ----------------------------- */

/* The UTF-16 offset of code point offset cp (clamped to the end). */
QB_EXPORT("qb_cp_to_u16") uint32_t qb_cp_to_u16(const qb_doc *q, uint32_t cp)
{
	uint32_t len = (uint32_t)crdt_doc_length(q->doc);
	if (cp > len)
		cp = len;
	return cp + (uint32_t)qb__astral_lower(q, cp);
}

/* The code point offset of UTF-16 offset u (clamped to the end); an offset
 * inside a surrogate pair counts the pair as before it. */
QB_EXPORT("qb_u16_to_cp") uint32_t qb_u16_to_cp(const qb_doc *q, uint32_t u)
{
	size_t lo = 0, hi = q->astral_n; /* j = #astral chars starting before u */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (q->astral[mid] + mid < u)
			lo = mid + 1;
		else
			hi = mid;
	}
	uint32_t j = (uint32_t)lo;
	uint32_t cp = u - j + (j > 0 && q->astral[j - 1] + (j - 1) + 1 == u);
	uint32_t len = (uint32_t)crdt_doc_length(q->doc);
	return cp > len ? len : cp;
}

/* The visible text's length in UTF-16 units. */
QB_EXPORT("qb_u16_length") uint32_t qb_u16_length(const qb_doc *q)
{
	return (uint32_t)(crdt_doc_length(q->doc) + q->astral_n);
}

/* Sum of the version vector: every inserted and deleted unit reflected in
 * this replica, kept up to date by every edit, apply and load. */
QB_EXPORT("qb_progress") double qb_progress(const qb_doc *q) { return q->progress; }

/* ---- the outbox: unacknowledged local ops ---------------------------------- */

/* Turn the outbox on (the sync client does; plain engine users need not). */
QB_EXPORT("qb_outbox_enable") void qb_outbox_enable(qb_doc *q) { q->outbox = 1; }

QB_EXPORT("qb_outbox_count") uint32_t qb_outbox_count(const qb_doc *q)
{
	return (uint32_t)(crdt_batch_count(q->sent) + crdt_batch_count(q->unsent));
}
QB_EXPORT("qb_outbox_unsent") uint32_t qb_outbox_unsent(const qb_doc *q)
{
	return (uint32_t)crdt_batch_count(q->unsent);
}

/* The first counter not acknowledged yet (the next counter when none). */
QB_EXPORT("qb_outbox_first") uint32_t qb_outbox_first(const qb_doc *q)
{
	if (crdt_batch_count(q->sent))
		return crdt_batch_get(q->sent, 0)->id.counter;
	if (crdt_batch_count(q->unsent))
		return crdt_batch_get(q->unsent, 0)->id.counter;
	return crdt_doc_seen(q->doc, crdt_doc_replica(q->doc));
}

/* Replace *b by its ops from index `from` on (q->ops is the scratch). */
static int qb__drop_front(qb_doc *q, crdt_batch **b, size_t from)
{
	if (from == 0)
		return CRDT_OK;
	size_t n = crdt_batch_count(*b);
	if (from >= n) {
		crdt_batch_clear(*b);
		return CRDT_OK;
	}
	crdt_batch_clear(q->ops);
	for (size_t i = from; i < n; i++)
		if (crdt_batch_push(q->ops, crdt_batch_get(*b, i)) != CRDT_OK)
			return CRDT_ENOMEM;
	crdt_batch *t = *b;
	*b = q->ops;
	q->ops = t;
	crdt_batch_clear(q->ops);
	return CRDT_OK;
}

/* The server has our counters below `end`: drop the ops it covers. */
static int qb__acked(qb_doc *q, uint32_t end)
{
	crdt_batch **lists[2] = {&q->sent, &q->unsent};
	for (int l = 0; l < 2; l++) {
		crdt_batch **b = lists[l];
		size_t n = crdt_batch_count(*b), k = 0;
		while (k < n &&
		       crdt_batch_get(*b, k)->id.counter + crdt_batch_get(*b, k)->len <= end)
			k++;
		int rc = qb__drop_front(q, b, k);
		if (rc != CRDT_OK || k < n)
			return rc;
	}
	return CRDT_OK;
}
QB_EXPORT("qb_outbox_acked") int qb_outbox_acked(qb_doc *q, uint32_t end)
{
	return qb__acked(q, end);
}

/* A new connection: everything unacknowledged goes out again, in order. */
QB_EXPORT("qb_outbox_rewind") int qb_outbox_rewind(qb_doc *q)
{
	if (crdt_batch_count(q->sent) == 0)
		return CRDT_OK;
	crdt_batch_clear(q->ops);
	crdt_batch *lists[2] = {q->sent, q->unsent};
	for (int l = 0; l < 2; l++)
		for (size_t i = 0; i < crdt_batch_count(lists[l]); i++)
			if (crdt_batch_push(q->ops, crdt_batch_get(lists[l], i)) != CRDT_OK)
				return CRDT_ENOMEM;
	crdt_batch *t = q->unsent;
	q->unsent = q->ops;
	q->ops = t;
	crdt_batch_clear(q->ops);
	crdt_batch_clear(q->sent);
	return CRDT_OK;
}

/* Copy the whole outbox into the op list (qb_op_*), e.g. to persist it. */
QB_EXPORT("qb_outbox_select") int qb_outbox_select(qb_doc *q)
{
	crdt_batch_clear(q->ops);
	crdt_batch *lists[2] = {q->sent, q->unsent};
	for (int l = 0; l < 2; l++)
		for (size_t i = 0; i < crdt_batch_count(lists[l]); i++)
			if (crdt_batch_push(q->ops, crdt_batch_get(lists[l], i)) != CRDT_OK)
				return CRDT_ENOMEM;
	return CRDT_OK;
}

/* Put a saved unacknowledged op back (restore); fields as qb_apply. */
QB_EXPORT("qb_outbox_push")
int qb_outbox_push(qb_doc *q, uint32_t kind, uint64_t replica, uint32_t counter, uint32_t lamport,
		   uint32_t len, uint64_t left_replica, uint32_t left_counter,
		   uint64_t right_replica, uint32_t right_counter, const char *text,
		   uint32_t text_bytes, uint32_t collected, uint64_t target_replica,
		   uint32_t target_counter)
{
	crdt_op op = qb__op_from(kind, replica, counter, lamport, len, left_replica, left_counter,
				 right_replica, right_counter, text, text_bytes, collected,
				 target_replica, target_counter);
	return crdt_batch_push(q->unsent, &op);
}

/* Apply every outbox op to the document again (after loading a snapshot
 * that may lack them: PROTOCOL 5.4). Returns how many failed; the first
 * failure's status is qb_res_error. Patches are not kept. */
QB_EXPORT("qb_outbox_reapply") uint32_t qb_outbox_reapply(qb_doc *q)
{
	uint32_t failed = 0;
	q->res.error = CRDT_OK;
	crdt_batch *lists[2] = {q->sent, q->unsent};
	for (int l = 0; l < 2; l++)
		for (size_t i = 0; i < crdt_batch_count(lists[l]); i++) {
			int rc = qb__apply(q, crdt_batch_get(lists[l], i));
			if (rc < 0 && failed++ == 0)
				q->res.error = rc;
		}
	qb_patches_clear(q);
	return failed;
}

/* ---- protobuf: writing an Update ------------------------------------------- */

static size_t qb__vsize(uint64_t v)
{
	size_t n = 1;
	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return n;
}
static uint8_t *qb__vput(uint8_t *w, uint64_t v)
{
	while (v >= 0x80) {
		*w++ = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	*w++ = (uint8_t)v;
	return w;
}
/* field `f` as a varint, left out when 0 (proto3) */
static size_t qb__fsize(uint64_t v) { return v ? 1 + qb__vsize(v) : 0; }
static uint8_t *qb__fput(uint8_t *w, unsigned f, uint64_t v)
{
	if (v == 0)
		return w;
	*w++ = (uint8_t)(f << 3);
	return qb__vput(w, v);
}

/* origins and targets are relative on the wire: 0 = the op's own replica */
static uint64_t qb__rel(const crdt_op *op, crdt_replica r) { return r == op->id.replica ? 0 : r; }

static size_t qb__sub_size(const crdt_op *op)
{
	if (op->kind == CRDT_OP_DELETE)
		return qb__fsize(qb__rel(op, op->target.replica)) + qb__fsize(op->target.counter);
	size_t n = 0;
	int lnone = op->left.replica == CRDT_NO_REPLICA,
	    rnone = op->right.replica == CRDT_NO_REPLICA;
	if (!lnone)
		n += qb__fsize(qb__rel(op, op->left.replica)) + qb__fsize(op->left.counter);
	if (!rnone)
		n += qb__fsize(qb__rel(op, op->right.replica)) + qb__fsize(op->right.counter);
	if (op->text && op->text_bytes)
		n += 1 + qb__vsize(op->text_bytes) + op->text_bytes;
	n += (op->text ? 0 : 2) + (lnone ? 2 : 0) + (rnone ? 2 : 0);
	return n;
}
static size_t qb__op_size(const crdt_op *op)
{
	size_t sub = qb__sub_size(op);
	return qb__fsize(op->id.replica) + qb__fsize(op->id.counter) + qb__fsize(op->lamport) +
	       qb__fsize(op->len) + 1 + qb__vsize(sub) + sub;
}
static uint8_t *qb__op_put(uint8_t *w, const crdt_op *op)
{
	w = qb__fput(w, 1, op->id.replica);
	w = qb__fput(w, 2, op->id.counter);
	w = qb__fput(w, 3, op->lamport);
	w = qb__fput(w, 4, op->len);
	size_t sub = qb__sub_size(op);
	if (op->kind == CRDT_OP_DELETE) {
		*w++ = 6 << 3 | 2;
		w = qb__vput(w, sub);
		w = qb__fput(w, 1, qb__rel(op, op->target.replica));
		return qb__fput(w, 2, op->target.counter);
	}
	*w++ = 5 << 3 | 2;
	w = qb__vput(w, sub);
	int lnone = op->left.replica == CRDT_NO_REPLICA,
	    rnone = op->right.replica == CRDT_NO_REPLICA;
	if (!lnone) {
		w = qb__fput(w, 1, qb__rel(op, op->left.replica));
		w = qb__fput(w, 2, op->left.counter);
	}
	if (!rnone) {
		w = qb__fput(w, 3, qb__rel(op, op->right.replica));
		w = qb__fput(w, 4, op->right.counter);
	}
	if (op->text && op->text_bytes) {
		*w++ = 5 << 3 | 2;
		w = qb__vput(w, op->text_bytes);
		memcpy(w, op->text, op->text_bytes);
		w += op->text_bytes;
	}
	if (!op->text)
		w = qb__fput(w, 6, 1);
	if (lnone)
		w = qb__fput(w, 7, 1);
	if (rnone)
		w = qb__fput(w, 8, 1);
	return w;
}

/*
 * Encode ClientMessage{doc, update{client_batch, ops}} into the output buffer
 * from the front of the unsent ops: at most max_ops ops and max_text bytes
 * of text (at least one op). Those ops move to the sent list. Returns the
 * counter end of the last op encoded, 0 when nothing is unsent, or
 * CRDT_ENOMEM (nothing moved).
 */
QB_EXPORT("qb_update_encode")
double qb_update_encode(qb_doc *q, uint32_t doc, double client_batch, uint32_t max_ops,
			uint32_t max_text)
{
	size_t n = crdt_batch_count(q->unsent), k = 0, text = 0, body = 0;
	uint64_t cb = (uint64_t)client_batch;
	for (; k < n && k < max_ops; k++) {
		const crdt_op *op = crdt_batch_get(q->unsent, k);
		if (k > 0 && text + op->text_bytes > max_text)
			break;
		text += op->text_bytes;
		size_t os = qb__op_size(op);
		body += 1 + qb__vsize(os) + os;
	}
	if (k == 0)
		return 0;
	body += qb__fsize(cb);
	size_t total = qb__fsize(doc) + 1 + qb__vsize(body) + body;
	if (qb__reserve(&q->out, &q->out_cap, total) != CRDT_OK)
		return CRDT_ENOMEM;
	uint8_t *w = qb__fput(q->out, 1, doc);
	*w++ = 3 << 3 | 2;
	w = qb__vput(w, body);
	w = qb__fput(w, 1, cb);
	for (size_t i = 0; i < k; i++) {
		const crdt_op *op = crdt_batch_get(q->unsent, i);
		*w++ = 2 << 3 | 2;
		w = qb__vput(w, qb__op_size(op));
		w = qb__op_put(w, op);
	}
	q->out_len = (size_t)(w - q->out);
	const crdt_op *last = crdt_batch_get(q->unsent, k - 1);
	double end = (double)last->id.counter + last->len;
	for (size_t i = 0; i < k; i++)
		if (crdt_batch_push(q->sent, crdt_batch_get(q->unsent, i)) != CRDT_OK)
			return CRDT_ENOMEM;
	if (qb__drop_front(q, &q->unsent, k) != CRDT_OK)
		return CRDT_ENOMEM;
	return end;
}

/* ---- protobuf: reading Changes ----------------------------------------------- */

typedef struct qb_rd {
	const uint8_t *p, *end;
} qb_rd;

static int qb__varint(qb_rd *r, uint64_t *v)
{
	uint64_t x = 0;
	for (unsigned shift = 0; shift < 64 && r->p < r->end; shift += 7) {
		uint8_t b = *r->p++;
		x |= (uint64_t)(b & 0x7f) << shift;
		if (b < 0x80) {
			*v = x;
			return 0;
		}
	}
	return -1;
}

/* Read a field key and, for length-delimited fields, the sub-reader. */
static int qb__field(qb_rd *r, unsigned *field, unsigned *wt, uint64_t *v, qb_rd *sub)
{
	uint64_t key;
	if (qb__varint(r, &key) < 0 || (key >> 3) == 0 || (key >> 3) > 0x1fffffff)
		return -1;
	*field = (unsigned)(key >> 3);
	*wt = (unsigned)(key & 7);
	switch (*wt) {
	case 0:
		return qb__varint(r, v);
	case 1:
	case 5: {
		size_t n = *wt == 1 ? 8 : 4;
		if ((size_t)(r->end - r->p) < n)
			return -1;
		r->p += n;
		*v = 0;
		return 0;
	}
	case 2:
		if (qb__varint(r, v) < 0 || *v > (uint64_t)(r->end - r->p))
			return -1;
		sub->p = r->p;
		sub->end = r->p + *v;
		r->p += *v;
		return 0;
	default:
		return -1; /* groups are not used by quire.proto */
	}
}

/* One Op into *op (absolute ids); CRDT_EINVAL for an op without a kind,
 * -100 for bad protobuf. */
static int qb__read_op(qb_rd r, crdt_op *op)
{
	uint64_t lrep = 0, rrep = 0, trep = 0, v;
	uint32_t lcnt = 0, rcnt = 0, tcnt = 0;
	int lnone = 0, rnone = 0, collected = 0;
	const char *text = "";
	uint32_t text_bytes = 0;
	unsigned f, wt;
	qb_rd sub, s2;
	memset(op, 0, sizeof *op);
	while (r.p < r.end) {
		if (qb__field(&r, &f, &wt, &v, &sub) < 0)
			return -100;
		if (wt == 0 && f <= 4) {
			if (f == 1)
				op->id.replica = v;
			else if (f == 2)
				op->id.counter = (uint32_t)v;
			else if (f == 3)
				op->lamport = (uint32_t)v;
			else
				op->len = (uint32_t)v;
		} else if (wt == 2 && (f == 5 || f == 6)) {
			op->kind = f == 5 ? CRDT_OP_INSERT : CRDT_OP_DELETE;
			while (sub.p < sub.end) {
				if (qb__field(&sub, &f, &wt, &v, &s2) < 0)
					return -100;
				if (op->kind == CRDT_OP_DELETE && wt == 0) {
					if (f == 1)
						trep = v;
					else if (f == 2)
						tcnt = (uint32_t)v;
				} else if (op->kind == CRDT_OP_INSERT && wt == 0) {
					if (f == 1)
						lrep = v;
					else if (f == 2)
						lcnt = (uint32_t)v;
					else if (f == 3)
						rrep = v;
					else if (f == 4)
						rcnt = (uint32_t)v;
					else if (f == 6)
						collected = v != 0;
					else if (f == 7)
						lnone = v != 0;
					else if (f == 8)
						rnone = v != 0;
				} else if (op->kind == CRDT_OP_INSERT && wt == 2 && f == 5) {
					text = (const char *)s2.p;
					text_bytes = (uint32_t)(s2.end - s2.p);
				}
			}
		}
	}
	crdt_replica own = op->id.replica;
	if (op->kind == CRDT_OP_INSERT) {
		op->left = lnone ? CRDT_NO_ID : (crdt_id){lrep ? lrep : own, lcnt};
		op->right = rnone ? CRDT_NO_ID : (crdt_id){rrep ? rrep : own, rcnt};
		op->text = collected ? NULL : text;
		op->text_bytes = collected ? 0 : text_bytes;
	} else if (op->kind == CRDT_OP_DELETE) {
		op->target = (crdt_id){trep ? trep : own, tcnt};
	} else {
		return CRDT_EINVAL;
	}
	if (op->id.replica == CRDT_NO_REPLICA)
		return CRDT_EINVAL;
	return CRDT_OK;
}

/* A buffer of n bytes for the next qb_recv message (valid until the next
 * call; JS writes the message there). NULL when out of memory. */
QB_EXPORT("qb_in") uint8_t *qb_in(qb_doc *q, uint32_t n)
{
	if (qb__reserve(&q->in, &q->in_cap, n ? n : 1) != CRDT_OK)
		return NULL;
	return q->in;
}

/* Apply one Change (seq already checked). */
static int qb__change(qb_doc *q, qb_rd ops)
{
	size_t n = 0;
	unsigned f, wt;
	uint64_t v;
	qb_rd sub;
	qb_rd scan = ops;
	while (scan.p < scan.end) { /* parse every op first: bad protobuf applies nothing */
		if (qb__field(&scan, &f, &wt, &v, &sub) < 0)
			return -100;
		if (f != 2 || wt != 2)
			continue;
		if (n == q->opv_cap) {
			size_t cap = q->opv_cap ? q->opv_cap * 2 : 64;
			crdt_op *p = realloc(q->opv, cap * sizeof *p);
			if (p == NULL)
				return CRDT_ENOMEM;
			q->opv = p;
			q->opv_cap = cap;
		}
		int rc = qb__read_op(sub, &q->opv[n]);
		if (rc == -100)
			return rc;
		if (rc < 0)
			q->opv[n].kind = 0; /* applying it reports the error */
		n++;
	}
	crdt_replica own = crdt_doc_replica(q->doc);
	for (size_t i = 0; i < n; i++) {
		const crdt_op *op = &q->opv[i];
		if (op->kind && op->id.replica == own) {
			q->res.echoes++;
			if (qb__acked(q, op->id.counter + op->len) != CRDT_OK)
				return CRDT_ENOMEM;
		}
		int rc = op->kind ? qb__apply(q, op) : CRDT_EINVAL;
		if (rc < 0 && q->res.errors++ == 0)
			q->res.error = rc;
	}
	return CRDT_OK;
}

/* ---- protobuf: reading a Welcome ---------------------------------------------- */

/* Read Snapshot fields: seq, our replica's next counter in the version, the
 * state (left in the input buffer). -1 for bad protobuf. */
static int qb__snapshot(qb_doc *q, qb_rd r)
{
	unsigned f, wt;
	uint64_t v;
	qb_rd sub, x;
	crdt_replica own = crdt_doc_replica(q->doc);
	while (r.p < r.end) {
		if (qb__field(&r, &f, &wt, &v, &sub) < 0)
			return -1;
		if (f == 3 && wt == 0) {
			q->wel_seq = (double)v;
		} else if (f == 4 && wt == 2) { /* VersionEntry {replica, next} */
			uint64_t rep = 0, next = 0;
			while (sub.p < sub.end) {
				if (qb__field(&sub, &f, &wt, &v, &x) < 0)
					return -1;
				if (f == 1 && wt == 0)
					rep = v;
				else if (f == 2 && wt == 0)
					next = v;
			}
			if (rep == own)
				q->wel_mine = (uint32_t)next;
		} else if (f == 5 && wt == 2) {
			q->wel_state = (size_t)(sub.p - q->in);
			q->wel_state_len = (size_t)(sub.end - sub.p);
		}
	}
	return 0;
}

/* Read the Welcome of the ServerMessage in `in` into the wel_* fields.
 * Returns 2, or -200 when the Welcome is not valid protobuf (the caller
 * decodes it itself and reports the error). */
static int qb__welcome(qb_doc *q, uint32_t len)
{
	qb_rd r = {q->in, q->in + len}, sub, w;
	unsigned f, wt;
	uint64_t v;
	q->wel_version = q->wel_read_only = q->wel_snapshot = q->wel_mine = 0;
	q->wel_head_seq = q->wel_seq = 0;
	q->wel_state = q->wel_state_len = 0;
	while (r.p < r.end) {
		if (qb__field(&r, &f, &wt, &v, &sub) < 0)
			return -200;
		if (f != 2 || wt != 2)
			continue;
		/* a repeated message field merges: read every occurrence */
		while (sub.p < sub.end) {
			if (qb__field(&sub, &f, &wt, &v, &w) < 0)
				return -200;
			if (f == 1 && wt == 0) {
				q->wel_version = (uint32_t)v;
			} else if (f == 2 && wt == 0) {
				q->wel_head_seq = (double)v;
			} else if (f == 4 && wt == 0) {
				q->wel_read_only = v != 0;
			} else if (f == 3 && wt == 2) {
				q->wel_snapshot = 1;
				if (qb__snapshot(q, w) < 0)
					return -200;
			}
		}
	}
	return 2;
}

QB_EXPORT("qb_wel_version") uint32_t qb_wel_version(const qb_doc *q) { return q->wel_version; }
QB_EXPORT("qb_wel_head_seq") double qb_wel_head_seq(const qb_doc *q) { return q->wel_head_seq; }
QB_EXPORT("qb_wel_read_only") uint32_t qb_wel_read_only(const qb_doc *q) { return q->wel_read_only; }
QB_EXPORT("qb_wel_snapshot") uint32_t qb_wel_snapshot(const qb_doc *q) { return q->wel_snapshot; }
QB_EXPORT("qb_wel_seq") double qb_wel_seq(const qb_doc *q) { return q->wel_seq; }

/*
 * Load the snapshot of the Welcome read by the last qb_recv (its bytes are
 * still in the input buffer) in place of the document, in one call: the
 * outbox counts as acknowledged up to our replica's next counter in the
 * snapshot's version, and what is left of it is applied again (PROTOCOL
 * 5.4). Returns how many outbox ops failed (the first status: qb_res_error),
 * or a negative status when the state is unusable (nothing changed).
 */
QB_EXPORT("qb_welcome_load") int qb_welcome_load(qb_doc *q)
{
	if (!q->wel_snapshot)
		return CRDT_EINVAL;
	int rc = qb_load(q, q->in + q->wel_state, q->wel_state_len);
	if (rc < 0)
		return rc;
	rc = qb__acked(q, q->wel_mine);
	if (rc < 0)
		return rc;
	return (int)qb_outbox_reapply(q);
}

/* Apply the changes of the Changes message in `in` (see qb_recv). */
static int qb__changes(qb_doc *q, uint32_t len)
{
	qb_rd r = {q->in, q->in + len}, sub;
	unsigned f, wt;
	uint64_t v;
	while (r.p < r.end) {
		if (qb__field(&r, &f, &wt, &v, &sub) < 0)
			return -1;
		if (f != 3 || wt != 2)
			continue;
		qb_rd ch;
		while (sub.p < sub.end) { /* Changes.changes */
			if (qb__field(&sub, &f, &wt, &v, &ch) < 0)
				return -1;
			if (f != 1 || wt != 2)
				continue;
			uint64_t seq = 0;
			qb_rd scan = ch, x;
			while (scan.p < scan.end) {
				if (qb__field(&scan, &f, &wt, &v, &x) < 0)
					return -1;
				if (f == 1 && wt == 0)
					seq = v;
			}
			if ((double)seq <= q->res.seq)
				continue;
			if ((double)seq != q->res.seq + 1) {
				q->res.gap = (uint32_t)seq;
				return 3;
			}
			int rc = qb__change(q, ch);
			if (rc == -100)
				return -1;
			if (rc < 0)
				return rc;
			q->res.seq = (double)seq;
			q->res.changes++;
		}
	}
	return 3;
}

/*
 * Handle the ServerMessage of `len` bytes in the qb_in buffer if it is a
 * Changes: apply every change after last_seq in order, in one call, with
 * their patches in the patch list. Returns the message's kind (its oneof
 * field number: 3 for Changes, which are handled here; 2 for a Welcome,
 * read into qb_wel_* and qb_welcome_load, -200 if its protobuf is bad; any
 * other kind is left to the caller) or -1 for bad protobuf. Results, in
 * the block at qb_res (also qb_res_*): seq (the new last seq), progress
 * (qb_progress after the message), changes (applied), echoes (our own ops
 * met: they count as acknowledged), errors / error (ops the engine refused
 * and the first status), gap (a change after a gap: its seq; nothing from
 * it on was applied), patch_count (qb_patch_count).
 */
QB_EXPORT("qb_recv") int qb_recv(qb_doc *q, uint32_t len, double last_seq)
{
	qb_rd r = {q->in, q->in + len}, sub;
	unsigned f, wt, kind = 0;
	uint64_t v;
	qb_patches_clear(q);
	q->res.seq = last_seq;
	q->res.changes = q->res.echoes = q->res.errors = 0;
	q->res.error = CRDT_OK;
	q->res.gap = 0;
	q->patch_status = CRDT_OK;
	int rc = -1;
	while (r.p < r.end) {
		if (qb__field(&r, &f, &wt, &v, &sub) < 0)
			goto done;
		if (f >= 2 && f <= 7 && wt == 2)
			kind = f;
	}
	if (kind == 2)
		return qb__welcome(q, len);
	if (kind != 3)
		return (int)kind;
	rc = qb__changes(q, len);
done:
	q->res.progress = q->progress;
	q->res.patch_count = q->patch_count;
	return rc;
}

/* The address of qb_recv's results: f64 seq, f64 progress, then u32
 * changes, echoes, errors, gap, patch_count and i32 error. */
QB_EXPORT("qb_res") const struct qb_res *qb_res(const qb_doc *q) { return &q->res; }
QB_EXPORT("qb_res_seq") double qb_res_seq(const qb_doc *q) { return q->res.seq; }
QB_EXPORT("qb_res_changes") uint32_t qb_res_changes(const qb_doc *q) { return q->res.changes; }
QB_EXPORT("qb_res_echoes") uint32_t qb_res_echoes(const qb_doc *q) { return q->res.echoes; }
QB_EXPORT("qb_res_errors") uint32_t qb_res_errors(const qb_doc *q) { return q->res.errors; }
QB_EXPORT("qb_res_error") int qb_res_error(const qb_doc *q) { return q->res.error; }
QB_EXPORT("qb_res_gap") uint32_t qb_res_gap(const qb_doc *q) { return q->res.gap; }
