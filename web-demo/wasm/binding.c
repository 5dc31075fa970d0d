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
 * buffer), so the module holds no global mutable state and JS never has to
 * lay out C structs. Ops cross the boundary as scalars: JS reads the ops of a
 * local edit field by field (qb_op_*) and builds protobuf Op messages with the
 * generated @bufbuild code; a remote op is handed in as arguments of
 * qb_apply. Protobuf itself never enters the module (protobuf-c is not
 * available for wasm, and the JS side decodes messages anyway).
 *
 * Conventions: pointers and sizes are i32, replica ids are i64 (BigInt in
 * JS), statuses are the crdt_status codes (0 ok, negative errors). An origin
 * or target of CRDT_NO_ID is reported as replica 0; real replicas are never
 * 0. Patches are packed little-endian as records of four u32 (pos, deleted,
 * inserted, text_bytes) followed by text_bytes of UTF-8, padded to 4 bytes.
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
	if (q->doc == NULL || q->ops == NULL) {
		crdt_doc_free(q->doc);
		crdt_batch_free(q->ops);
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
	free(q->patches);
	free(q->out);
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
	return CRDT_OK;
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

/* Insert nbytes of UTF-8 at code point pos; the ops made replace the op list
 * (qb_op_*). */
QB_EXPORT("qb_insert") int qb_insert(qb_doc *q, uint32_t pos, const char *utf8, uint32_t nbytes)
{
	crdt_batch_clear(q->ops);
	return crdt_doc_insert(q->doc, pos, utf8, nbytes, q->ops);
}

/* Delete len code points from pos; the ops made replace the op list. */
QB_EXPORT("qb_remove") int qb_remove(qb_doc *q, uint32_t pos, uint32_t len)
{
	crdt_batch_clear(q->ops);
	return crdt_doc_delete(q->doc, pos, len, q->ops);
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
	size_t rec = 16 + ((p->text_bytes + 3) & ~(size_t)3);
	if (q->patch_status < 0 ||
	    qb__reserve(&q->patches, &q->patches_cap, q->patches_len + rec) != CRDT_OK) {
		q->patch_status = CRDT_ENOMEM;
		return;
	}
	uint32_t head[4] = {(uint32_t)p->pos, (uint32_t)p->deleted, (uint32_t)p->inserted,
			    (uint32_t)p->text_bytes};
	uint8_t *w = q->patches + q->patches_len;
	memcpy(w, head, sizeof head);
	if (p->text_bytes)
		memcpy(w + 16, p->text, p->text_bytes);
	memset(w + 16 + p->text_bytes, 0, rec - 16 - p->text_bytes);
	q->patches_len += rec;
	q->patch_count++;
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
	crdt_op op = {0};
	op.kind = (uint8_t)kind;
	op.id = (crdt_id){replica, counter};
	op.lamport = lamport;
	op.len = len;
	if (kind == CRDT_OP_INSERT) {
		op.left = left_replica ? (crdt_id){left_replica, left_counter} : CRDT_NO_ID;
		op.right = right_replica ? (crdt_id){right_replica, right_counter} : CRDT_NO_ID;
		if (collected) {
			op.text = NULL;
			op.text_bytes = 0;
		} else {
			op.text = text ? text : "";
			op.text_bytes = text_bytes;
		}
	} else {
		op.target = (crdt_id){target_replica, target_counter};
	}
	q->patch_status = CRDT_OK;
	int rc = crdt_doc_apply(q->doc, &op, qb__patch, q);
	if (rc >= 0 && q->patch_status < 0)
		return q->patch_status;
	return rc;
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
