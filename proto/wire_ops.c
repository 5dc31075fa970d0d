/*
 * wire_ops.c - Op messages <-> crdt_op, and OpBatch (a stored change).
 *
 * Encoding is done by hand, straight from crdt_op to canonical proto3
 * bytes: no intermediate protobuf-c structs, one pass to size and one to
 * write. The bytes are exactly what protobuf-c's packer (and any other
 * conforming encoder, e.g. @bufbuild/protobuf) produces for the same
 * message; tests/proto/test_wire.c checks that against protobuf-c.
 *
 * Decoding goes through protobuf-c (wire__unpack) and then checks every op
 * for shape before anything reaches the caller: a kind, a non-zero replica,
 * 1 <= len <= CRDT_MAX_OP_LEN, counters and Lamport times that stay within
 * CRDT_MAX_COUNTER over the op's length, origins that are "none" (a flag
 * on the wire) or a real unit, and text that is valid UTF-8 of
 * exactly len code points, or empty for a collected insert. Whether the op
 * fits a document is the engine's business (crdt_doc_apply).
 */
#include <string.h>

#include "wire_internal.h"

/* ---- checks ------------------------------------------------------------------ */

static bool origin_ok(crdt_id id)
{
	return id.replica == CRDT_NO_REPLICA ? id.counter == 0 : id.counter < CRDT_MAX_COUNTER;
}

int wire__op_check(const crdt_op *op)
{
	if (op->kind != CRDT_OP_INSERT && op->kind != CRDT_OP_DELETE)
		return WIRE_EFIELD;
	if (op->id.replica == CRDT_NO_REPLICA || op->len == 0)
		return WIRE_EFIELD;
	if (op->len > CRDT_MAX_OP_LEN)
		return WIRE_ETOOBIG;
	if ((uint64_t)op->id.counter + op->len > CRDT_MAX_COUNTER ||
	    (uint64_t)op->lamport + op->len > CRDT_MAX_COUNTER)
		return WIRE_EFIELD;
	if (op->kind == CRDT_OP_DELETE) {
		if (op->target.replica == CRDT_NO_REPLICA ||
		    (uint64_t)op->target.counter + op->len > CRDT_MAX_COUNTER)
			return WIRE_EFIELD;
		return WIRE_OK;
	}
	if (!origin_ok(op->left) || !origin_ok(op->right))
		return WIRE_EFIELD;
	if (op->text == NULL)
		return WIRE_OK; /* collected insert */
	if (op->text_bytes == 0)
		return WIRE_EFIELD;
	if (memchr(op->text, 0, op->text_bytes) != NULL)
		return WIRE_EUTF8;
	long n = crdt_utf8_count(op->text, op->text_bytes);
	if (n < 0)
		return WIRE_EUTF8;
	return (uint64_t)n == op->len ? WIRE_OK : WIRE_EFIELD;
}

/* ---- encoding ------------------------------------------------------------------ */

/* On the wire an origin or target of the op's own replica leaves the
 * replica out (0), and "none" is a flag of its own (quire.proto). */
static uint64_t wire_replica(const crdt_op *op, crdt_id id)
{
	return id.replica == op->id.replica ? 0 : id.replica;
}

static size_t kind_size(const crdt_op *op)
{
	if (op->kind == CRDT_OP_DELETE)
		return wire__u64_field_size(1, wire_replica(op, op->target)) +
		       wire__u64_field_size(2, op->target.counter);
	bool lnone = op->left.replica == CRDT_NO_REPLICA, rnone = op->right.replica == CRDT_NO_REPLICA;
	return (lnone ? 2 : wire__u64_field_size(1, wire_replica(op, op->left)) +
				    wire__u64_field_size(2, op->left.counter)) +
	       (rnone ? 2 : wire__u64_field_size(3, wire_replica(op, op->right)) +
				    wire__u64_field_size(4, op->right.counter)) +
	       wire__str_field_size(5, op->text ? op->text_bytes : 0) + (op->text ? 0 : 2);
}

static size_t body_size(const crdt_op *op, size_t kind)
{
	return wire__u64_field_size(1, op->id.replica) + wire__u64_field_size(2, op->id.counter) +
	       wire__u64_field_size(3, op->lamport) + wire__u64_field_size(4, op->len) +
	       wire__len_field_size(op->kind == CRDT_OP_DELETE ? 6 : 5, kind);
}

size_t wire__op_size(const crdt_op *op) { return body_size(op, kind_size(op)); }

size_t wire__ops_size(const crdt_op *ops, size_t n, uint32_t field)
{
	size_t total = 0;
	for (size_t i = 0; i < n; i++)
		total += wire__len_field_size(field, wire__op_size(&ops[i]));
	return total;
}

static uint8_t *op_write(uint8_t *p, const crdt_op *op)
{
	p = wire__put_u64_field(p, 1, op->id.replica);
	p = wire__put_u64_field(p, 2, op->id.counter);
	p = wire__put_u64_field(p, 3, op->lamport);
	p = wire__put_u64_field(p, 4, op->len);
	size_t kind = kind_size(op);
	if (op->kind == CRDT_OP_DELETE) {
		p = wire__put_len_header(p, 6, kind);
		p = wire__put_u64_field(p, 1, wire_replica(op, op->target));
		return wire__put_u64_field(p, 2, op->target.counter);
	}
	bool lnone = op->left.replica == CRDT_NO_REPLICA, rnone = op->right.replica == CRDT_NO_REPLICA;
	p = wire__put_len_header(p, 5, kind);
	if (!lnone) {
		p = wire__put_u64_field(p, 1, wire_replica(op, op->left));
		p = wire__put_u64_field(p, 2, op->left.counter);
	}
	if (!rnone) {
		p = wire__put_u64_field(p, 3, wire_replica(op, op->right));
		p = wire__put_u64_field(p, 4, op->right.counter);
	}
	if (op->text == NULL)
		p = wire__put_u64_field(p, 6, 1); /* collected = true */
	else
		p = wire__put_str_field(p, 5, op->text, op->text_bytes);
	if (lnone)
		p = wire__put_u64_field(p, 7, 1); /* left_none = true */
	if (rnone)
		p = wire__put_u64_field(p, 8, 1); /* right_none = true */
	return p;
}

uint8_t *wire__ops_write(uint8_t *p, const crdt_op *ops, size_t n, uint32_t field)
{
	for (size_t i = 0; i < n; i++) {
		p = wire__put_len_header(p, field, wire__op_size(&ops[i]));
		p = op_write(p, &ops[i]);
	}
	return p;
}

int wire_ops_encode(const crdt_op *ops, size_t n, wire_buf *out)
{
	for (size_t i = 0; i < n; i++) {
		int rc = wire__op_check(&ops[i]);
		if (rc != WIRE_OK)
			return rc;
	}
	size_t size = wire__ops_size(ops, n, 1);
	if (wire__buf_reserve(out, size) != WIRE_OK)
		return WIRE_ENOMEM;
	uint8_t *end = wire__ops_write(out->data + out->len, ops, n, 1);
	out->len = (size_t)(end - out->data);
	return WIRE_OK;
}

/* ---- decoding ------------------------------------------------------------------ */

/* The crdt_op a decoded Op stands for, unchecked. */
static int op_convert(const Quire__V1__Op *m, crdt_op *op)
{
	memset(op, 0, sizeof *op);
	op->id.replica = m->replica;
	op->id.counter = m->counter;
	op->lamport = m->lamport;
	op->len = m->len;
	/* replica 0 inside an op is the op's own (quire.proto) */
	if (m->kind_case == QUIRE__V1__OP__KIND_DELETE) {
		op->kind = CRDT_OP_DELETE;
		op->target.replica = m->delete_->target_replica ? m->delete_->target_replica : m->replica;
		op->target.counter = m->delete_->target_counter;
		return WIRE_OK;
	}
	if (m->kind_case != QUIRE__V1__OP__KIND_INSERT)
		return WIRE_EFIELD;
	const Quire__V1__Insert *in = m->insert;
	op->kind = CRDT_OP_INSERT;
	if (in->left_none) { /* the start: the origin's fields must be unset */
		if (in->left_replica || in->left_counter)
			return WIRE_EFIELD;
		op->left = CRDT_NO_ID;
	} else {
		op->left.replica = in->left_replica ? in->left_replica : m->replica;
		op->left.counter = in->left_counter;
	}
	if (in->right_none) {
		if (in->right_replica || in->right_counter)
			return WIRE_EFIELD;
		op->right = CRDT_NO_ID;
	} else {
		op->right.replica = in->right_replica ? in->right_replica : m->replica;
		op->right.counter = in->right_counter;
	}
	/* exact: the pre-scan refused strings holding NUL */
	size_t n = strlen(in->text);
	if (in->collected)
		return n == 0 ? WIRE_OK : WIRE_EFIELD; /* text stays NULL */
	if (n > UINT32_MAX)
		return WIRE_ETOOBIG;
	op->text = in->text;
	op->text_bytes = (uint32_t)n;
	return WIRE_OK;
}

int wire__op_from_pb(const Quire__V1__Op *m, crdt_op *op)
{
	int rc = op_convert(m, op);
	return rc == WIRE_OK ? wire__op_check(op) : rc;
}

int wire__ops_from_pb(Quire__V1__Op *const *ops, size_t n, const wire_limits *lim, crdt_batch *out)
{
	if (n > lim->max_ops)
		return WIRE_ETOOBIG;
	size_t text = 0;
	crdt_op op;
	for (size_t i = 0; i < n; i++) {
		int rc = wire__op_from_pb(ops[i], &op);
		if (rc != WIRE_OK)
			return rc;
		text += op.text_bytes;
		if (text > lim->max_text_bytes)
			return WIRE_ETOOBIG;
	}
	size_t n0 = crdt_batch_count(out);
	for (size_t i = 0; i < n; i++) {
		op_convert(ops[i], &op);
		if (crdt_batch_push(out, &op) != CRDT_OK) {
			crdt_batch_truncate(out, n0); /* all or nothing */
			return WIRE_ENOMEM;
		}
	}
	return WIRE_OK;
}

int wire_ops_decode(const uint8_t *data, size_t len, const wire_limits *lim, crdt_batch *out)
{
	if (lim == NULL)
		lim = &wire_default_limits;
	wire__arena a;
	wire__arena_init(&a, NULL);
	ProtobufCMessage *msg;
	int rc = wire__unpack(&quire__v1__op_batch__descriptor, data, len, lim, &a, &msg);
	if (rc == WIRE_OK) {
		const Quire__V1__OpBatch *b = (const Quire__V1__OpBatch *)msg;
		rc = wire__ops_from_pb(b->ops, b->n_ops, lim, out);
	}
	wire__arena_release(&a);
	return rc;
}
