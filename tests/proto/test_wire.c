/*
 * test_wire.c - unit tests of proto/wire.h: status and error-code tables;
 * round trips of OpBatch (multi-byte UTF-8, collected inserts, applied to a
 * fresh replica), of the Snapshot container and of every ClientMessage and
 * ServerMessage kind (C encode -> C decode, equal), each encoding checked
 * to be byte-identical to protobuf-c's own packing of the same message
 * (canonical proto3); Changes spliced from stored payloads; and a
 * table-driven catalogue of malformed input (empty, truncated at every
 * byte, wrong wire types, overlong varints, lengths past the end, unknown
 * fields, missing oneofs, every op shape error, limits, damaged snapshots),
 * each asserting the exact WIRE_E* code. Allocation failures are injected
 * at every allocation of the decoders (tests/crdt/testutil.h's failing
 * allocator), and the ASan stage of scripts/test.sh checks for leaks.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "crdt.h"
#include "quire.pb-c.h"
#include "testutil.h"
#include "wire.h"

#define MAXC CRDT_MAX_COUNTER

/* ---- helpers ------------------------------------------------------------- */

#define assert_wire(expr, want)                                                   \
	do {                                                                      \
		int w_s_ = (int)(expr), w_w_ = (int)(want);                       \
		if (w_s_ != w_w_)                                                 \
			fail_msg("%s = %d (%s), expected %d (%s)", #expr, w_s_,   \
				 wire_strerror(w_s_), w_w_, wire_strerror(w_w_)); \
	} while (0)

/* A protobuf message written by hand, canonical or not. */
typedef struct pb {
	uint8_t d[16384];
	size_t n;
} pb;

static void pb_raw(pb *b, const void *p, size_t n)
{
	assert_true(b->n + n <= sizeof b->d);
	memcpy(b->d + b->n, p, n);
	b->n += n;
}

static void pb_varint(pb *b, uint64_t v)
{
	uint8_t t[10];
	size_t n = 0;
	do {
		t[n++] = (uint8_t)((v & 0x7f) | (v >= 0x80 ? 0x80 : 0));
		v >>= 7;
	} while (v);
	pb_raw(b, t, n);
}

static void pb_tag(pb *b, uint32_t field, unsigned type)
{
	pb_varint(b, (uint64_t)field << 3 | type);
}

/* varint field; written even when 0 */
static void pb_u(pb *b, uint32_t field, uint64_t v)
{
	pb_tag(b, field, 0);
	pb_varint(b, v);
}

/* varint field, omitted when 0 (canonical) */
static void pb_uc(pb *b, uint32_t field, uint64_t v)
{
	if (v)
		pb_u(b, field, v);
}

static void pb_s(pb *b, uint32_t field, const void *s, size_t n)
{
	pb_tag(b, field, 2);
	pb_varint(b, n);
	pb_raw(b, s, n);
}

static void pb_m(pb *b, uint32_t field, const pb *sub) { pb_s(b, field, sub->d, sub->n); }

/* An Op by fields, for the shape catalogue. kind 5: insert, 6: delete,
 * 0: none. text_n < 0: strlen(text). */
typedef struct op_spec {
	uint64_t replica;
	uint32_t counter, lamport, len;
	int kind;
	uint64_t lr;
	uint32_t lc;
	uint64_t rr;
	uint32_t rc;
	const char *text;
	int text_n;
	int collected; /* bit 0: collected, bit 1: left_none, bit 2: right_none */
	uint64_t tr;
	uint32_t tc;
} op_spec;

static void build_op(pb *out, const op_spec *s)
{
	memset(out, 0, sizeof *out);
	pb_uc(out, 1, s->replica);
	pb_uc(out, 2, s->counter);
	pb_uc(out, 3, s->lamport);
	pb_uc(out, 4, s->len);
	pb k = {.n = 0};
	if (s->kind == 5) {
		pb_uc(&k, 1, s->lr);
		pb_uc(&k, 2, s->lc);
		pb_uc(&k, 3, s->rr);
		pb_uc(&k, 4, s->rc);
		if (s->text)
			pb_s(&k, 5, s->text, s->text_n < 0 ? strlen(s->text) : (size_t)s->text_n);
		pb_uc(&k, 6, (uint64_t)s->collected & 1);
		pb_uc(&k, 7, ((uint64_t)s->collected >> 1) & 1);
		pb_uc(&k, 8, ((uint64_t)s->collected >> 2) & 1);
		pb_m(out, 5, &k);
	} else if (s->kind == 6) {
		pb_uc(&k, 1, s->tr);
		pb_uc(&k, 2, s->tc);
		pb_m(out, 6, &k);
	}
}

/* ClientMessage{doc, Update{client_batch, ops: the given Op bodies}} */
static void build_update(pb *out, uint32_t doc, uint64_t batch, const pb *ops, size_t n)
{
	static pb u;
	memset(&u, 0, sizeof u);
	pb_uc(&u, 1, batch);
	for (size_t i = 0; i < n; i++)
		pb_m(&u, 2, &ops[i]);
	memset(out, 0, sizeof *out);
	pb_uc(out, 1, doc);
	pb_m(out, 3, &u);
}

static crdt_op ins(crdt_replica r, uint32_t c, uint32_t lam, const char *text, crdt_id left,
		   crdt_id right)
{
	crdt_op o;
	memset(&o, 0, sizeof o);
	o.kind = CRDT_OP_INSERT;
	o.id = (crdt_id){r, c};
	o.lamport = lam;
	o.text = text;
	o.text_bytes = text ? (uint32_t)strlen(text) : 0;
	o.len = text ? (uint32_t)crdt_utf8_count(text, o.text_bytes) : 1;
	o.left = left;
	o.right = right;
	return o;
}

static crdt_op del(crdt_replica r, uint32_t c, uint32_t lam, uint32_t len, crdt_id target)
{
	crdt_op o;
	memset(&o, 0, sizeof o);
	o.kind = CRDT_OP_DELETE;
	o.id = (crdt_id){r, c};
	o.lamport = lam;
	o.len = len;
	o.target = target;
	return o;
}

static void assert_op_equal(const crdt_op *a, const crdt_op *b)
{
	assert_int_equal(a->kind, b->kind);
	assert_true(a->id.replica == b->id.replica);
	assert_int_equal(a->id.counter, b->id.counter);
	assert_int_equal(a->lamport, b->lamport);
	assert_int_equal(a->len, b->len);
	if (a->kind == CRDT_OP_DELETE) {
		assert_true(a->target.replica == b->target.replica);
		assert_int_equal(a->target.counter, b->target.counter);
		return;
	}
	assert_true(a->left.replica == b->left.replica);
	assert_int_equal(a->left.counter, b->left.counter);
	assert_true(a->right.replica == b->right.replica);
	assert_int_equal(a->right.counter, b->right.counter);
	assert_true((a->text == NULL) == (b->text == NULL));
	if (a->text) {
		assert_int_equal(a->text_bytes, b->text_bytes);
		assert_memory_equal(a->text, b->text, a->text_bytes);
	}
}

/* The bytes are exactly what protobuf-c packs for the message they decode
 * to: canonical proto3, readable by any conforming implementation. */
static void assert_canonical(const ProtobufCMessageDescriptor *desc, const uint8_t *data,
			     size_t len)
{
	ProtobufCMessage *m = protobuf_c_message_unpack(desc, NULL, len, data);
	assert_non_null(m);
	size_t n = protobuf_c_message_get_packed_size(m);
	uint8_t *buf = malloc(n ? n : 1);
	assert_non_null(buf);
	assert_int_equal(protobuf_c_message_pack(m, buf), n);
	assert_int_equal(n, len);
	assert_memory_equal(buf, data, n);
	free(buf);
	protobuf_c_message_free_unpacked(m, NULL);
}

static char *doc_text(const crdt_doc *d)
{
	char one;
	size_t n = crdt_doc_text(d, &one, 0);
	char *s = malloc(n + 1);
	assert_non_null(s);
	crdt_doc_text(d, s, n);
	s[n] = '\0';
	return s;
}

static void assert_same_text(const crdt_doc *a, const crdt_doc *b)
{
	char *x = doc_text(a), *y = doc_text(b);
	assert_string_equal(x, y);
	free(x);
	free(y);
}

/* A document edited by two replicas with multi-byte text, deletes, and
 * deleted (collected) content; its ops from scratch go into `out`. */
static crdt_doc *sample_doc(crdt_batch *out)
{
	crdt_doc *a = crdt_doc_new(0x1234567890abcdefULL, NULL);
	crdt_doc *b = crdt_doc_new(2, NULL);
	crdt_batch *tmp = crdt_batch_new(NULL);
	assert_non_null(a);
	assert_non_null(b);
	assert_non_null(tmp);
	const char *t1 = "Grüße, 世界! 😀 ok";
	assert_int_equal(crdt_doc_insert(a, 0, t1, strlen(t1), tmp), CRDT_OK);
	assert_int_equal(crdt_doc_delete(a, 3, 4, tmp), CRDT_OK);
	for (size_t i = 0; i < crdt_batch_count(tmp); i++)
		assert_int_equal(crdt_doc_apply(b, crdt_batch_get(tmp, i), NULL, NULL), CRDT_OK);
	assert_int_equal(crdt_doc_insert(b, 2, "ñ", strlen("ñ"), NULL), CRDT_OK);
	assert_int_equal(crdt_doc_insert(a, 1, "xyz", 3, NULL), CRDT_OK);
	assert_int_equal(crdt_doc_delete(a, 1, 2, NULL), CRDT_OK);
	crdt_batch_clear(tmp);
	assert_int_equal(crdt_doc_ops_since(b, NULL, 0, tmp), CRDT_OK);
	for (size_t i = 0; i < crdt_batch_count(tmp); i++) {
		int r = crdt_doc_apply(a, crdt_batch_get(tmp, i), NULL, NULL);
		assert_true(r == CRDT_OK || r == CRDT_DUPLICATE);
	}
	assert_int_equal(crdt_doc_ops_since(a, NULL, 0, out), CRDT_OK);
	crdt_batch_free(tmp);
	crdt_doc_free(b);
	return a;
}

static crdt_op *batch_ops(const crdt_batch *b, size_t *n)
{
	*n = crdt_batch_count(b);
	crdt_op *ops = calloc(*n ? *n : 1, sizeof *ops);
	assert_non_null(ops);
	for (size_t i = 0; i < *n; i++)
		ops[i] = *crdt_batch_get(b, i);
	return ops;
}

/* ---- tables ------------------------------------------------------------- */

static void test_wire_strerror(void **state)
{
	(void)state;
	static const int codes[] = {WIRE_OK,	WIRE_ENOMEM,  WIRE_EPARSE,  WIRE_EFIELD,
				    WIRE_EUTF8, WIRE_ETOOBIG, WIRE_EVERSION};
	for (size_t i = 0; i < sizeof codes / sizeof *codes; i++) {
		const char *s = wire_strerror(codes[i]);
		assert_non_null(s);
		for (size_t j = 0; j < i; j++)
			assert_string_not_equal(s, wire_strerror(codes[j]));
	}
	assert_string_equal(wire_strerror(-1000), "unknown wire status");
	assert_string_equal(wire_strerror(7), "unknown wire status");
}

static void test_wire_error_codes(void **state)
{
	(void)state;
	assert_int_equal(wire_error_code(WIRE_OK), WIRE_ERR_UNSPECIFIED);
	assert_int_equal(wire_error_code(WIRE_EPARSE), WIRE_ERR_BAD_MESSAGE);
	assert_int_equal(wire_error_code(WIRE_EFIELD), WIRE_ERR_BAD_MESSAGE);
	assert_int_equal(wire_error_code(WIRE_EUTF8), WIRE_ERR_BAD_MESSAGE);
	assert_int_equal(wire_error_code(WIRE_ETOOBIG), WIRE_ERR_TOO_LARGE);
	assert_int_equal(wire_error_code(WIRE_EVERSION), WIRE_ERR_UNSUPPORTED_VERSION);
	assert_int_equal(wire_error_code(WIRE_ENOMEM), WIRE_ERR_INTERNAL);
	assert_int_equal(wire_error_code(-99), WIRE_ERR_INTERNAL);

	assert_int_equal(wire_crdt_error_code(CRDT_OK), 0);
	assert_int_equal(wire_crdt_error_code(CRDT_DUPLICATE), 0);
	assert_int_equal(wire_crdt_error_code(CRDT_PENDING), 0);
	assert_int_equal(wire_crdt_error_code(CRDT_EINVAL), WIRE_ERR_INVALID_OP);
	assert_int_equal(wire_crdt_error_code(CRDT_EUTF8), WIRE_ERR_INVALID_OP);
	assert_int_equal(wire_crdt_error_code(CRDT_ERANGE), WIRE_ERR_INVALID_OP);
	assert_int_equal(wire_crdt_error_code(CRDT_EMISSING), WIRE_ERR_MISSING_DEPENDENCY);
	assert_int_equal(wire_crdt_error_code(CRDT_EPENDING_FULL), WIRE_ERR_MISSING_DEPENDENCY);
	assert_int_equal(wire_crdt_error_code(CRDT_ELIMIT), WIRE_ERR_TOO_LARGE);
	assert_int_equal(wire_crdt_error_code(CRDT_ECORRUPT), WIRE_ERR_DOCUMENT_UNAVAILABLE);
	assert_int_equal(wire_crdt_error_code(CRDT_ENOMEM), WIRE_ERR_INTERNAL);

	/* the C names are quire.proto's names, in the generated enum's order */
	assert_string_equal(wire_error_code_name(WIRE_ERR_BAD_MESSAGE), "BAD_MESSAGE");
	assert_string_equal(wire_error_code_name(QUIRE__V1__ERROR_CODE__SHUTTING_DOWN),
			    "SHUTTING_DOWN");
	const ProtobufCEnumDescriptor *ed = &quire__v1__error_code__descriptor;
	for (unsigned i = 0; i < ed->n_values; i++)
		assert_string_equal(wire_error_code_name(ed->values[i].value), ed->values[i].name);
	assert_string_equal(wire_error_code_name(15), "UNKNOWN");
	assert_string_equal(wire_error_code_name(-1), "UNKNOWN");
}

/* ---- OpBatch -------------------------------------------------------------- */

static void test_wire_ops_roundtrip(void **state)
{
	(void)state;
	crdt_batch *src = crdt_batch_new(NULL), *got = crdt_batch_new(NULL);
	crdt_doc *a = sample_doc(src);
	size_t n;
	crdt_op *ops = batch_ops(src, &n);
	int collected = 0, multibyte = 0, deletes = 0;
	for (size_t i = 0; i < n; i++) {
		collected += ops[i].kind == CRDT_OP_INSERT && ops[i].text == NULL;
		multibyte += ops[i].text && ops[i].text_bytes > ops[i].len;
		deletes += ops[i].kind == CRDT_OP_DELETE;
	}
	assert_true(collected > 0 && multibyte > 0 && deletes > 0);

	wire_buf buf = {0};
	assert_wire(wire_ops_encode(ops, n, &buf), WIRE_OK);
	assert_canonical(&quire__v1__op_batch__descriptor, buf.data, buf.len);
	assert_wire(wire_ops_decode(buf.data, buf.len, NULL, got), WIRE_OK);
	assert_int_equal(crdt_batch_count(got), n);
	for (size_t i = 0; i < n; i++)
		assert_op_equal(crdt_batch_get(got, i), &ops[i]);

	/* the decoded ops rebuild the document on a fresh replica */
	crdt_doc *c = crdt_doc_new(77, NULL);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(crdt_doc_apply(c, crdt_batch_get(got, i), NULL, NULL), CRDT_OK);
	assert_same_text(a, c);
	assert_int_equal(crdt_doc_check(c), CRDT_OK);

	/* appending: a second decode adds to what is there */
	assert_wire(wire_ops_decode(buf.data, buf.len, NULL, got), WIRE_OK);
	assert_true(crdt_batch_count(got) >= n);

	/* an empty OpBatch is zero bytes and zero ops */
	size_t before = buf.len;
	assert_wire(wire_ops_encode(NULL, 0, &buf), WIRE_OK);
	assert_int_equal(buf.len, before);
	crdt_batch_clear(got);
	assert_wire(wire_ops_decode(NULL, 0, NULL, got), WIRE_OK);
	assert_int_equal(crdt_batch_count(got), 0);

	wire_buf_free(&buf);
	free(ops);
	crdt_doc_free(a);
	crdt_doc_free(c);
	crdt_batch_free(src);
	crdt_batch_free(got);
}

static void test_wire_ops_collected_inserts(void **state)
{
	(void)state;
	/* type, delete it all: ops_since sends the insert without its text */
	crdt_doc *a = crdt_doc_new(5, NULL);
	assert_int_equal(crdt_doc_insert(a, 0, "hello wörld", strlen("hello wörld"), NULL), 0);
	assert_int_equal(crdt_doc_delete(a, 0, 6, NULL), CRDT_OK);
	crdt_batch *src = crdt_batch_new(NULL), *got = crdt_batch_new(NULL);
	assert_int_equal(crdt_doc_ops_since(a, NULL, 0, src), CRDT_OK);
	size_t n;
	crdt_op *ops = batch_ops(src, &n);
	size_t collected = 0;
	for (size_t i = 0; i < n; i++)
		collected += ops[i].kind == CRDT_OP_INSERT && ops[i].text == NULL;
	assert_int_equal(collected, 1);

	wire_buf buf = {0};
	assert_wire(wire_ops_encode(ops, n, &buf), WIRE_OK);
	/* on the wire: collected = true, no text field */
	Quire__V1__OpBatch *pbm = quire__v1__op_batch__unpack(NULL, buf.len, buf.data);
	assert_non_null(pbm);
	size_t seen = 0;
	for (size_t i = 0; i < pbm->n_ops; i++) {
		if (pbm->ops[i]->kind_case != QUIRE__V1__OP__KIND_INSERT ||
		    !pbm->ops[i]->insert->collected)
			continue;
		assert_string_equal(pbm->ops[i]->insert->text, "");
		assert_int_equal(pbm->ops[i]->len, 6);
		seen++;
	}
	assert_int_equal(seen, 1);
	quire__v1__op_batch__free_unpacked(pbm, NULL);

	assert_wire(wire_ops_decode(buf.data, buf.len, NULL, got), WIRE_OK);
	crdt_doc *c = crdt_doc_new(6, NULL);
	for (size_t i = 0; i < crdt_batch_count(got); i++) {
		assert_op_equal(crdt_batch_get(got, i), &ops[i]);
		assert_int_equal(crdt_doc_apply(c, crdt_batch_get(got, i), NULL, NULL), CRDT_OK);
	}
	assert_same_text(a, c);
	crdt_stats st;
	crdt_doc_stats(c, &st);
	assert_int_equal(st.deleted_units, 6);

	wire_buf_free(&buf);
	free(ops);
	crdt_doc_free(a);
	crdt_doc_free(c);
	crdt_batch_free(src);
	crdt_batch_free(got);
}

static void test_wire_ops_encode_checks(void **state)
{
	(void)state;
	wire_buf buf = {0};
	crdt_op ok = ins(1, 0, 0, "ab", CRDT_NO_ID, CRDT_NO_ID);
	crdt_op bad[] = {
		ins(0, 0, 0, "a", CRDT_NO_ID, CRDT_NO_ID),	   /* replica 0 */
		ins(1, MAXC, 0, "a", CRDT_NO_ID, CRDT_NO_ID),	   /* counter */
		ins(1, 0, MAXC, "a", CRDT_NO_ID, CRDT_NO_ID),	   /* lamport */
		ins(1, 0, 0, "a", (crdt_id){0, 3}, CRDT_NO_ID),	   /* origin none, counter 3 */
		ins(1, 0, 0, "a", CRDT_NO_ID, (crdt_id){2, MAXC}), /* origin counter */
		del(1, 0, 0, 0, (crdt_id){2, 0}),		   /* len 0 */
		del(1, 0, 0, 1, (crdt_id){0, 0}),		   /* target replica 0 */
		del(1, 0, 0, 2, (crdt_id){2, MAXC - 1}),	   /* target range */
	};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		crdt_op two[2] = {ok, bad[i]};
		assert_wire(wire_ops_encode(two, 2, &buf), WIRE_EFIELD);
		assert_int_equal(buf.len, 0); /* nothing appended */
	}
	crdt_op t = ins(1, 0, 0, "abc", CRDT_NO_ID, CRDT_NO_ID);
	t.len = 2; /* text does not match */
	assert_wire(wire_ops_encode(&t, 1, &buf), WIRE_EFIELD);
	t = ins(1, 0, 0, "a", CRDT_NO_ID, CRDT_NO_ID);
	t.text = "\xff";
	assert_wire(wire_ops_encode(&t, 1, &buf), WIRE_EUTF8);
	t.text = "a\0b";
	t.text_bytes = 3;
	t.len = 3;
	assert_wire(wire_ops_encode(&t, 1, &buf), WIRE_EUTF8); /* NUL is refused */
	t = del(1, 0, 0, CRDT_MAX_OP_LEN + 1, (crdt_id){2, 0});
	assert_wire(wire_ops_encode(&t, 1, &buf), WIRE_ETOOBIG);
	t.kind = 3;
	assert_wire(wire_ops_encode(&t, 1, &buf), WIRE_EFIELD);
	assert_int_equal(buf.len, 0);
	wire_buf_free(&buf);
}

/* ---- Snapshot ---------------------------------------------------------------- */

static void test_wire_snapshot_roundtrip(void **state)
{
	(void)state;
	crdt_batch *src = crdt_batch_new(NULL);
	crdt_doc *a = sample_doc(src);
	wire_buf buf = {0};
	assert_wire(wire_snapshot_encode(a, "team/notes-1.md", 4242, &buf), WIRE_OK);
	assert_canonical(&quire__v1__snapshot__descriptor, buf.data, buf.len);

	crdt_doc *b = NULL;
	uint64_t seq = 0;
	int st = -1;
	assert_wire(
		wire_snapshot_decode(buf.data, buf.len, "team/notes-1.md", 9, NULL, &b, &seq, &st),
		WIRE_OK);
	assert_non_null(b);
	assert_int_equal(st, CRDT_OK);
	assert_int_equal(seq, 4242);
	assert_same_text(a, b);
	assert_int_equal(crdt_doc_check(b), CRDT_OK);
	assert_int_equal(crdt_doc_clock(b), crdt_doc_clock(a));
	crdt_doc_free(b);

	/* doc_id NULL: any id accepted; seq may be NULL */
	assert_wire(wire_snapshot_decode(buf.data, buf.len, NULL, 9, NULL, &b, NULL, NULL),
		    WIRE_OK);
	crdt_doc_free(b);

	/* the container says what it holds */
	Quire__V1__Snapshot *s = quire__v1__snapshot__unpack(NULL, buf.len, buf.data);
	assert_non_null(s);
	assert_int_equal(s->format, CRDT_SNAPSHOT_VERSION);
	assert_string_equal(s->doc_id, "team/notes-1.md");
	assert_int_equal(s->n_version, crdt_doc_version(a, NULL, 0));
	assert_int_equal(s->state.data[0], CRDT_SNAPSHOT_VERSION);
	quire__v1__snapshot__free_unpacked(s, NULL);

	/* invalid ids are refused when encoding */
	size_t len = buf.len;
	assert_wire(wire_snapshot_encode(a, "", 1, &buf), WIRE_EFIELD);
	assert_wire(wire_snapshot_encode(a, "has space", 1, &buf), WIRE_EFIELD);
	assert_wire(wire_snapshot_encode(a, NULL, 1, &buf), WIRE_EFIELD);
	assert_int_equal(buf.len, len);

	/* an empty document */
	crdt_doc *e = crdt_doc_new(3, NULL);
	buf.len = 0;
	assert_wire(wire_snapshot_encode(e, "e", 0, &buf), WIRE_OK);
	assert_wire(wire_snapshot_decode(buf.data, buf.len, "e", 4, NULL, &b, &seq, NULL), WIRE_OK);
	assert_int_equal(crdt_doc_length(b), 0);
	assert_int_equal(seq, 0);
	crdt_doc_free(b);
	crdt_doc_free(e);

	wire_buf_free(&buf);
	crdt_doc_free(a);
	crdt_batch_free(src);
}

/* Re-pack a valid snapshot with one field changed. */
typedef void (*snap_edit)(Quire__V1__Snapshot *s);

static void edit_doc_id(Quire__V1__Snapshot *s) { s->doc_id = "other"; }
static void edit_bad_doc_id(Quire__V1__Snapshot *s) { s->doc_id = "a b"; }
static void edit_format2(Quire__V1__Snapshot *s) { s->format = 2; }
static void edit_format0(Quire__V1__Snapshot *s) { s->format = 0; }
static void edit_state_hash(Quire__V1__Snapshot *s) { s->state.data[s->state.len - 1] ^= 0x40; }
static void edit_state_body(Quire__V1__Snapshot *s) { s->state.data[s->state.len / 2] ^= 0x01; }
static void edit_state_short(Quire__V1__Snapshot *s) { s->state.len /= 2; }
static void edit_state_empty(Quire__V1__Snapshot *s) { s->state.len = 0; }
static void edit_state_version(Quire__V1__Snapshot *s) { s->state.data[0] = 2; }
static void edit_vv_next(Quire__V1__Snapshot *s) { s->version[0]->next++; }
static void edit_vv_missing(Quire__V1__Snapshot *s) { s->n_version--; }
static void edit_vv_replica(Quire__V1__Snapshot *s) { s->version[0]->replica = 99; }

/* The state is decoded where it lies in the message (not copied out by
 * protobuf-c): the last state field counts, as protobuf has it, and other
 * fields around it, known or not, are read as before. */
static int decode_bytes(const uint8_t *p, size_t n, crdt_doc **d)
{
	*d = NULL;
	return wire_snapshot_decode(p, n, "doc", 3, NULL, d, NULL, NULL);
}

static void test_wire_snapshot_state_fields(void **state)
{
	(void)state;
	crdt_batch *src = crdt_batch_new(NULL);
	crdt_doc *a = sample_doc(src);
	wire_buf good = {0};
	assert_wire(wire_snapshot_encode(a, "doc", 7, &good), WIRE_OK);
	size_t n = good.len;
	uint8_t *buf = malloc(n + 64);
	assert_non_null(buf);
	crdt_doc *d;
	/* field 5 (state, LEN) with junk, then the real message: last wins */
	static const uint8_t junk_state[] = {0x2a, 3, 'x', 'y', 'z'};
	memcpy(buf, junk_state, sizeof junk_state);
	memcpy(buf + sizeof junk_state, good.data, n);
	assert_wire(decode_bytes(buf, n + sizeof junk_state, &d), WIRE_OK);
	assert_same_text(a, d);
	crdt_doc_free(d);
	/* the real message, then an unknown varint field and a LEN field */
	static const uint8_t unknown[] = {0x48, 0x05, 0x52, 2, 'o', 'k'};
	memcpy(buf, good.data, n);
	memcpy(buf + n, unknown, sizeof unknown);
	assert_wire(decode_bytes(buf, n + sizeof unknown, &d), WIRE_OK);
	assert_same_text(a, d);
	crdt_doc_free(d);
	/* the real message, then a junk state: the junk counts and fails */
	memcpy(buf + n, junk_state, sizeof junk_state);
	assert_wire(decode_bytes(buf, n + sizeof junk_state, &d), WIRE_EFIELD);
	assert_null(d);
	/* truncated inside the state; a message with no state at all */
	assert_true(decode_bytes(good.data, n - 1, &d) != WIRE_OK);
	assert_null(d);
	assert_true(decode_bytes(unknown, sizeof unknown, &d) != WIRE_OK);
	assert_null(d);
	free(buf);
	wire_buf_free(&good);
	crdt_doc_free(a);
	crdt_batch_free(src);
}

static void test_wire_snapshot_damaged(void **state)
{
	(void)state;
	crdt_batch *src = crdt_batch_new(NULL);
	crdt_doc *a = sample_doc(src);
	wire_buf good = {0};
	assert_wire(wire_snapshot_encode(a, "doc", 7, &good), WIRE_OK);
	static const struct {
		const char *name;
		snap_edit edit;
		int want;
		int crdt; /* expected *crdt_status, or 1: any engine error */
	} cases[] = {
		{"wrong doc_id", edit_doc_id, WIRE_EFIELD, CRDT_OK},
		{"invalid doc_id", edit_bad_doc_id, WIRE_EFIELD, CRDT_OK},
		{"unknown format", edit_format2, WIRE_EVERSION, CRDT_OK},
		{"format missing", edit_format0, WIRE_EFIELD, CRDT_OK},
		{"state hash damaged", edit_state_hash, WIRE_EFIELD, CRDT_ECORRUPT},
		{"state body damaged", edit_state_body, WIRE_EFIELD, 1},
		{"state truncated", edit_state_short, WIRE_EFIELD, CRDT_ECORRUPT},
		{"state missing", edit_state_empty, WIRE_EFIELD, CRDT_OK},
		{"state version byte != format", edit_state_version, WIRE_EFIELD, CRDT_OK},
		{"version vector: wrong next", edit_vv_next, WIRE_EFIELD, CRDT_ECORRUPT},
		{"version vector: entry missing", edit_vv_missing, WIRE_EFIELD, CRDT_ECORRUPT},
		{"version vector: wrong replica", edit_vv_replica, WIRE_EFIELD, CRDT_ECORRUPT},
	};
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		Quire__V1__Snapshot *s = quire__v1__snapshot__unpack(NULL, good.len, good.data);
		assert_non_null(s);
		char *saved_id = s->doc_id;
		size_t saved_nv = s->n_version;
		cases[i].edit(s);
		size_t n = quire__v1__snapshot__get_packed_size(s);
		uint8_t *bytes = malloc(n + 1);
		quire__v1__snapshot__pack(s, bytes);
		s->doc_id = saved_id; /* free_unpacked frees what unpack made */
		s->n_version = saved_nv;
		quire__v1__snapshot__free_unpacked(s, NULL);

		crdt_doc *d = (crdt_doc *)&d; /* must become NULL */
		int st = 12345;
		int rc = wire_snapshot_decode(bytes, n, "doc", 3, NULL, &d, NULL, &st);
		if (rc != cases[i].want)
			fail_msg("%s: %d (%s), expected %d", cases[i].name, rc, wire_strerror(rc),
				 cases[i].want);
		assert_null(d);
		if (cases[i].crdt == 1)
			assert_true(st < 0);
		else if (st != cases[i].crdt)
			fail_msg("%s: crdt status %d, expected %d", cases[i].name, st,
				 cases[i].crdt);
		free(bytes);
	}

	/* truncated at every byte: a container error, never a document */
	for (size_t k = 0; k < good.len; k++) {
		crdt_doc *d = NULL;
		int rc = wire_snapshot_decode(good.data, k, "doc", 3, NULL, &d, NULL, NULL);
		if (rc != WIRE_EPARSE && rc != WIRE_EFIELD)
			fail_msg("snapshot truncated to %zu of %zu bytes: %d (%s)", k, good.len, rc,
				 wire_strerror(rc));
		assert_null(d);
	}
	/* every single-bit flip: an error or (if the flip hit a harmless
	 * place, e.g. the seq) a sound document */
	for (size_t k = 0; k < good.len * 8; k++) {
		good.data[k / 8] ^= (uint8_t)(1u << (k % 8));
		crdt_doc *d = NULL;
		int rc = wire_snapshot_decode(good.data, good.len, "doc", 3, NULL, &d, NULL, NULL);
		if (rc == WIRE_OK) {
			assert_int_equal(crdt_doc_check(d), CRDT_OK);
			crdt_doc_free(d);
		} else {
			assert_null(d);
			assert_true(rc == WIRE_EPARSE || rc == WIRE_EFIELD || rc == WIRE_EVERSION ||
				    rc == WIRE_EUTF8);
		}
		good.data[k / 8] ^= (uint8_t)(1u << (k % 8));
	}
	wire_buf_free(&good);
	crdt_doc_free(a);
	crdt_batch_free(src);
}

/* ---- ClientMessage ------------------------------------------------------------- */

static void test_wire_client_roundtrip(void **state)
{
	(void)state;
	wire_client_msg *m = wire_client_msg_new(NULL);
	assert_non_null(m);
	wire_buf buf = {0};

	/* Hello */
	wire_hello h = {WIRE_PROTOCOL_VERSION,
			"notes/2024-05.md",
			16,
			0xfedcba9876543210ULL,
			41,
			"tok.en-x",
			8};
	assert_wire(wire_client_encode_hello(&buf, 3, &h), WIRE_OK);
	assert_canonical(&quire__v1__client_message__descriptor, buf.data, buf.len);
	assert_wire(wire_client_decode(m, buf.data, buf.len, NULL), WIRE_OK);
	assert_int_equal(m->doc, 3);
	assert_int_equal(m->kind, WIRE_CLIENT_HELLO);
	assert_int_equal(m->hello.protocol_version, WIRE_PROTOCOL_VERSION);
	assert_string_equal(m->hello.doc_id, "notes/2024-05.md");
	assert_int_equal(m->hello.doc_id_len, 16);
	assert_true(m->hello.replica == 0xfedcba9876543210ULL);
	assert_int_equal(m->hello.last_seq, 41);
	assert_string_equal(m->hello.token, "tok.en-x");
	assert_int_equal(m->hello.token_len, 8);

	/* Hello with defaults: version 0 means the current one, no token */
	wire_hello h0 = {0, "d", 1, 1, 0, NULL, 0};
	buf.len = 0;
	assert_wire(wire_client_encode_hello(&buf, 1, &h0), WIRE_OK);
	assert_wire(wire_client_decode(m, buf.data, buf.len, NULL), WIRE_OK);
	assert_int_equal(m->hello.protocol_version, WIRE_PROTOCOL_VERSION);
	assert_int_equal(m->hello.last_seq, 0);
	assert_string_equal(m->hello.token, "");

	/* Update, with every kind of op */
	crdt_batch *src = crdt_batch_new(NULL);
	crdt_doc *a = sample_doc(src);
	size_t n;
	crdt_op *ops = batch_ops(src, &n);
	buf.len = 0;
	assert_wire(wire_client_encode_update(&buf, 0xffffffffu, 1ULL << 40, ops, n), WIRE_OK);
	assert_canonical(&quire__v1__client_message__descriptor, buf.data, buf.len);
	assert_wire(wire_client_decode(m, buf.data, buf.len, NULL), WIRE_OK);
	assert_int_equal(m->doc, 0xffffffffu);
	assert_int_equal(m->kind, WIRE_CLIENT_UPDATE);
	assert_true(m->client_batch == 1ULL << 40);
	assert_int_equal(m->n_ops, n);
	assert_int_equal(crdt_batch_count(m->ops), n); /* ops_since output: nothing to merge */
	for (size_t i = 0; i < n; i++)
		assert_op_equal(crdt_batch_get(m->ops, i), &ops[i]);

	/* Presence with and without anchors */
	wire_presence p = {0x42, 7,    "Zoë",	strlen("Zoë"), "#e91e63", 7,
			   true, true, {2, 10}, {0, 0},	       false};
	buf.len = 0;
	assert_wire(wire_client_encode_presence(&buf, 3, &p), WIRE_OK);
	assert_canonical(&quire__v1__client_message__descriptor, buf.data, buf.len);
	assert_wire(wire_client_decode(m, buf.data, buf.len, NULL), WIRE_OK);
	assert_int_equal(m->kind, WIRE_CLIENT_PRESENCE);
	assert_true(m->presence.replica == 0x42);
	assert_int_equal(m->presence.clock, 7);
	assert_string_equal(m->presence.name, "Zoë");
	assert_int_equal(m->presence.name_len, strlen("Zoë"));
	assert_string_equal(m->presence.color, "#e91e63");
	assert_true(m->presence.has_anchor && m->presence.has_head);
	assert_true(m->presence.anchor.replica == 2 && m->presence.anchor.counter == 10);
	assert_true(m->presence.head.replica == 0 && m->presence.head.counter == 0);
	assert_false(m->presence.gone);
	wire_presence q = {0x43, 0, NULL, 0, NULL, 0, false, false, {0, 0}, {0, 0}, true};
	buf.len = 0;
	assert_wire(wire_client_encode_presence(&buf, 3, &q), WIRE_OK);
	assert_wire(wire_client_decode(m, buf.data, buf.len, NULL), WIRE_OK);
	assert_false(m->presence.has_anchor || m->presence.has_head);
	assert_true(m->presence.gone);
	assert_int_equal(m->presence.name_len, 0);

	/* Ping (connection-wide, doc 0) and Leave */
	buf.len = 0;
	assert_wire(wire_client_encode_ping(&buf, 0, 0xdeadbeefULL), WIRE_OK);
	assert_canonical(&quire__v1__client_message__descriptor, buf.data, buf.len);
	assert_wire(wire_client_decode(m, buf.data, buf.len, NULL), WIRE_OK);
	assert_int_equal(m->kind, WIRE_CLIENT_PING);
	assert_int_equal(m->doc, 0);
	assert_int_equal(m->nonce, 0xdeadbeefULL);
	buf.len = 0;
	assert_wire(wire_client_encode_ping(&buf, 5, 0), WIRE_OK);
	assert_wire(wire_client_decode(m, buf.data, buf.len, NULL), WIRE_OK);
	assert_int_equal(m->kind, WIRE_CLIENT_PING);
	assert_int_equal(m->nonce, 0);
	buf.len = 0;
	assert_wire(wire_client_encode_leave(&buf, 5), WIRE_OK);
	assert_canonical(&quire__v1__client_message__descriptor, buf.data, buf.len);
	assert_wire(wire_client_decode(m, buf.data, buf.len, NULL), WIRE_OK);
	assert_int_equal(m->kind, WIRE_CLIENT_LEAVE);
	assert_int_equal(m->doc, 5);

	/* encoders refuse what the decoder would refuse; nothing appended */
	buf.len = 0;
	wire_hello bad = h;
	bad.doc_id = "a b";
	bad.doc_id_len = 3;
	assert_wire(wire_client_encode_hello(&buf, 3, &bad), WIRE_EFIELD);
	bad = h;
	bad.replica = 0;
	assert_wire(wire_client_encode_hello(&buf, 3, &bad), WIRE_EFIELD);
	assert_wire(wire_client_encode_hello(&buf, 0, &h), WIRE_EFIELD);
	bad = h;
	bad.token_len = WIRE_MAX_TOKEN + 1;
	assert_wire(wire_client_encode_hello(&buf, 3, &bad), WIRE_ETOOBIG);
	assert_wire(wire_client_encode_update(&buf, 1, 0, ops, n), WIRE_EFIELD);
	assert_wire(wire_client_encode_update(&buf, 1, 1, ops, 0), WIRE_EFIELD);
	assert_wire(wire_client_encode_update(&buf, 0, 1, ops, n), WIRE_EFIELD);
	wire_presence bp = p;
	bp.name = "\xc3";
	bp.name_len = 1;
	assert_wire(wire_client_encode_presence(&buf, 3, &bp), WIRE_EUTF8);
	bp = p;
	bp.replica = 0;
	assert_wire(wire_client_encode_presence(&buf, 3, &bp), WIRE_EFIELD);
	bp = p;
	bp.color_len = WIRE_MAX_COLOR + 1;
	assert_wire(wire_client_encode_presence(&buf, 3, &bp), WIRE_ETOOBIG);
	assert_wire(wire_client_encode_leave(&buf, 0), WIRE_EFIELD);
	assert_int_equal(buf.len, 0);

	wire_buf_free(&buf);
	free(ops);
	crdt_doc_free(a);
	crdt_batch_free(src);
	wire_client_msg_free(m);
}

/* One message object decodes many messages; fields never leak across. */
static void test_wire_client_reuse(void **state)
{
	(void)state;
	wire_client_msg *m = wire_client_msg_new(NULL);
	wire_buf buf = {0};
	char text[64];
	for (unsigned i = 0; i < 2000; i++) {
		buf.len = 0;
		snprintf(text, sizeof text, "edit %u é", i);
		crdt_op op = ins(9, i * 20, i * 20, text, CRDT_NO_ID, CRDT_NO_ID);
		assert_wire(wire_client_encode_update(&buf, 1 + i % 3, i + 1, &op, 1), WIRE_OK);
		assert_wire(wire_client_decode(m, buf.data, buf.len, NULL), WIRE_OK);
		assert_int_equal(crdt_batch_count(m->ops), 1);
		assert_op_equal(crdt_batch_get(m->ops, 0), &op);
		if (i % 100 == 0) {
			/* an error in between leaves nothing behind */
			assert_wire(wire_client_decode(m, buf.data, buf.len - 1, NULL),
				    WIRE_EPARSE);
			assert_int_equal(crdt_batch_count(m->ops), 0);
			assert_int_equal(m->doc, 1 + i % 3); /* read before the cut */
		}
	}
	wire_buf_free(&buf);
	wire_client_msg_free(m);
}

/* ---- ServerMessage --------------------------------------------------------------- */

static void test_wire_server_roundtrip(void **state)
{
	(void)state;
	wire_server_msg *m = wire_server_msg_new(NULL);
	assert_non_null(m);
	wire_buf buf = {0};
	crdt_batch *src = crdt_batch_new(NULL);
	crdt_doc *a = sample_doc(src);

	/* Welcome without and with a snapshot */
	assert_wire(wire_server_encode_welcome(&buf, 4, 99, true, NULL, 0), WIRE_OK);
	assert_canonical(&quire__v1__server_message__descriptor, buf.data, buf.len);
	assert_wire(wire_server_decode(m, buf.data, buf.len, NULL), WIRE_OK);
	assert_int_equal(m->kind, WIRE_SERVER_WELCOME);
	assert_int_equal(m->doc, 4);
	assert_int_equal(m->welcome.protocol_version, WIRE_PROTOCOL_VERSION);
	assert_int_equal(m->welcome.head_seq, 99);
	assert_true(m->welcome.read_only);
	assert_null(m->welcome.snapshot);

	wire_buf snap = {0};
	assert_wire(wire_snapshot_encode(a, "doc-a", 90, &snap), WIRE_OK);
	buf.len = 0;
	assert_wire(wire_server_encode_welcome(&buf, 4, 99, false, snap.data, snap.len), WIRE_OK);
	assert_canonical(&quire__v1__server_message__descriptor, buf.data, buf.len);
	assert_wire(wire_server_decode(m, buf.data, buf.len, NULL), WIRE_OK);
	assert_false(m->welcome.read_only);
	assert_non_null(m->welcome.snapshot);
	assert_int_equal(m->welcome.snapshot_len, snap.len);
	assert_memory_equal(m->welcome.snapshot, snap.data, snap.len);
	crdt_doc *b = NULL;
	uint64_t seq = 0;
	assert_wire(wire_snapshot_decode(m->welcome.snapshot, m->welcome.snapshot_len, "doc-a", 8,
					 NULL, &b, &seq, NULL),
		    WIRE_OK);
	assert_int_equal(seq, 90);
	assert_same_text(a, b);
	crdt_doc_free(b);

	/* Changes from stored payloads */
	size_t n;
	crdt_op *ops = batch_ops(src, &n);
	assert_true(n >= 3);
	wire_buf p1 = {0}, p2 = {0}, p3 = {0};
	assert_wire(wire_ops_encode(ops, 1, &p1), WIRE_OK);
	assert_wire(wire_ops_encode(ops + 1, n - 2, &p2), WIRE_OK);
	assert_wire(wire_ops_encode(ops + n - 1, 1, &p3), WIRE_OK);
	wire_change ch[3] = {{91, p1.data, p1.len}, {92, p2.data, p2.len}, {93, p3.data, p3.len}};
	buf.len = 0;
	assert_wire(wire_server_encode_changes(&buf, 4, ch, 3), WIRE_OK);
	assert_canonical(&quire__v1__server_message__descriptor, buf.data, buf.len);
	size_t sum = 0;
	for (int i = 0; i < 3; i++)
		sum += wire_change_size(&ch[i]);
	assert_true(buf.len >= sum && buf.len <= sum + 22);
	assert_wire(wire_server_decode(m, buf.data, buf.len, NULL), WIRE_OK);
	assert_int_equal(m->kind, WIRE_SERVER_CHANGES);
	assert_int_equal(m->n_changes, 3);
	assert_int_equal(m->seqs[0], 91);
	assert_int_equal(m->seqs[2], 93);
	crdt_doc *c = crdt_doc_new(50, NULL);
	for (size_t i = 0; i < crdt_batch_count(m->ops); i++)
		assert_int_equal(crdt_doc_apply(c, crdt_batch_get(m->ops, i), NULL, NULL), CRDT_OK);
	assert_same_text(a, c);
	crdt_doc_free(c);

	/* Ack, Presence, Error, Pong */
	buf.len = 0;
	assert_wire(wire_server_encode_ack(&buf, 4, 17, 93), WIRE_OK);
	assert_canonical(&quire__v1__server_message__descriptor, buf.data, buf.len);
	assert_wire(wire_server_decode(m, buf.data, buf.len, NULL), WIRE_OK);
	assert_int_equal(m->kind, WIRE_SERVER_ACK);
	assert_int_equal(m->ack.client_batch, 17);
	assert_int_equal(m->ack.seq, 93);

	wire_presence p = {0x42, 9, "Ana", 3, "#00ff00", 7, true, true, {2, 3}, {2, 5}, true};
	buf.len = 0;
	assert_wire(wire_server_encode_presence(&buf, 4, &p), WIRE_OK);
	assert_canonical(&quire__v1__server_message__descriptor, buf.data, buf.len);
	assert_wire(wire_server_decode(m, buf.data, buf.len, NULL), WIRE_OK);
	assert_int_equal(m->kind, WIRE_SERVER_PRESENCE);
	assert_true(m->presence.gone);
	assert_string_equal(m->presence.name, "Ana");
	assert_int_equal(m->presence.head.counter, 5);

	buf.len = 0;
	assert_wire(
		wire_server_encode_error(&buf, 4, WIRE_ERR_INVALID_OP, "origin (7, 3) unknown", 17),
		WIRE_OK);
	assert_canonical(&quire__v1__server_message__descriptor, buf.data, buf.len);
	assert_wire(wire_server_decode(m, buf.data, buf.len, NULL), WIRE_OK);
	assert_int_equal(m->kind, WIRE_SERVER_ERROR);
	assert_int_equal(m->error.code, WIRE_ERR_INVALID_OP);
	assert_string_equal(m->error.message, "origin (7, 3) unknown");
	assert_int_equal(m->error.client_batch, 17);
	/* connection-wide, no message, a code from the future */
	buf.len = 0;
	assert_wire(wire_server_encode_error(&buf, 0, 77, NULL, 0), WIRE_OK);
	assert_wire(wire_server_decode(m, buf.data, buf.len, NULL), WIRE_OK);
	assert_int_equal(m->doc, 0);
	assert_int_equal(m->error.code, 77);
	assert_int_equal(m->error.message_len, 0);
	/* long messages are cut at a code point boundary */
	char *longmsg = malloc(WIRE_MAX_ERROR_MESSAGE + 64);
	size_t k = 0;
	while (k + 2 <= WIRE_MAX_ERROR_MESSAGE + 60) {
		longmsg[k++] = '\xc3';
		longmsg[k++] = '\xa9'; /* é */
	}
	longmsg[k++] = 'x'; /* odd length: the cut falls inside an é */
	longmsg[k] = '\0';
	buf.len = 0;
	assert_wire(wire_server_encode_error(&buf, 1, WIRE_ERR_INTERNAL, longmsg + 1, 0),
		    WIRE_EUTF8);
	assert_wire(wire_server_encode_error(&buf, 1, WIRE_ERR_INTERNAL, longmsg, 0), WIRE_OK);
	assert_wire(wire_server_decode(m, buf.data, buf.len, NULL), WIRE_OK);
	assert_true(m->error.message_len <= WIRE_MAX_ERROR_MESSAGE);
	assert_true(m->error.message_len >= WIRE_MAX_ERROR_MESSAGE - 1);
	assert_true(crdt_utf8_count(m->error.message, m->error.message_len) >= 0);
	free(longmsg);

	buf.len = 0;
	assert_wire(wire_server_encode_pong(&buf, 0, 12345), WIRE_OK);
	assert_canonical(&quire__v1__server_message__descriptor, buf.data, buf.len);
	assert_wire(wire_server_decode(m, buf.data, buf.len, NULL), WIRE_OK);
	assert_int_equal(m->kind, WIRE_SERVER_PONG);
	assert_int_equal(m->nonce, 12345);

	wire_buf_free(&p1);
	wire_buf_free(&p2);
	wire_buf_free(&p3);
	wire_buf_free(&snap);
	wire_buf_free(&buf);
	free(ops);
	crdt_doc_free(a);
	crdt_batch_free(src);
	wire_server_msg_free(m);
}

/* The spliced Changes message is the one protobuf-c would build from the
 * decoded ops; payload fields that are not ops are dropped. */
static void test_wire_changes_splice(void **state)
{
	(void)state;
	crdt_batch *src = crdt_batch_new(NULL);
	crdt_doc *a = sample_doc(src);
	size_t n;
	crdt_op *ops = batch_ops(src, &n);
	wire_buf pay = {0}, buf = {0};
	assert_wire(wire_ops_encode(ops, n, &pay), WIRE_OK);

	/* OpBatch field 1 (tag 0x0A) and Change field 2 (tag 0x12) are both
	 * `repeated Op`: the schema this splice relies on */
	const ProtobufCFieldDescriptor *fb =
		protobuf_c_message_descriptor_get_field(&quire__v1__op_batch__descriptor, 1);
	const ProtobufCFieldDescriptor *fc =
		protobuf_c_message_descriptor_get_field(&quire__v1__change__descriptor, 2);
	assert_non_null(fb);
	assert_non_null(fc);
	assert_int_equal(fb->label, PROTOBUF_C_LABEL_REPEATED);
	assert_int_equal(fc->label, PROTOBUF_C_LABEL_REPEATED);
	assert_ptr_equal(fb->descriptor, &quire__v1__op__descriptor);
	assert_ptr_equal(fc->descriptor, &quire__v1__op__descriptor);
	assert_int_equal(pay.data[0], 0x0a);

	wire_change c = {1000, pay.data, pay.len};
	assert_wire(wire_server_encode_changes(&buf, 2, &c, 1), WIRE_OK);

	/* build the same message with protobuf-c from decoded ops */
	Quire__V1__OpBatch *ob = quire__v1__op_batch__unpack(NULL, pay.len, pay.data);
	assert_non_null(ob);
	Quire__V1__Change change = QUIRE__V1__CHANGE__INIT;
	change.seq = 1000;
	change.n_ops = ob->n_ops;
	change.ops = ob->ops;
	Quire__V1__Change *list[1] = {&change};
	Quire__V1__Changes changes = QUIRE__V1__CHANGES__INIT;
	changes.n_changes = 1;
	changes.changes = list;
	Quire__V1__ServerMessage sm = QUIRE__V1__SERVER_MESSAGE__INIT;
	sm.doc = 2;
	sm.msg_case = QUIRE__V1__SERVER_MESSAGE__MSG_CHANGES;
	sm.changes = &changes;
	size_t len = quire__v1__server_message__get_packed_size(&sm);
	uint8_t *ref = malloc(len);
	quire__v1__server_message__pack(&sm, ref);
	assert_int_equal(len, buf.len);
	assert_memory_equal(ref, buf.data, len);
	free(ref);
	quire__v1__op_batch__free_unpacked(ob, NULL);

	/* a payload with a field that is not an op: dropped, not copied */
	wire_buf odd = {0};
	assert_wire(wire_ops_encode(ops, 2, &odd), WIRE_OK);
	static const uint8_t extra[] = {0x10, 0x07, 0x1a, 0x01, 'z'}; /* 2: 7, 3: "z" */
	uint8_t *withx = malloc(odd.len + sizeof extra);
	memcpy(withx, extra, sizeof extra);
	memcpy(withx + sizeof extra, odd.data, odd.len);
	wire_change cx = {5, withx, odd.len + sizeof extra}, cy = {5, odd.data, odd.len};
	wire_buf bx = {0}, by = {0};
	assert_wire(wire_server_encode_changes(&bx, 1, &cx, 1), WIRE_OK);
	assert_wire(wire_server_encode_changes(&by, 1, &cy, 1), WIRE_OK);
	assert_int_equal(bx.len, by.len);
	assert_memory_equal(bx.data, by.data, by.len);
	assert_int_equal(wire_change_size(&cx), wire_change_size(&cy));
	free(withx);

	/* malformed payloads and arguments; nothing appended */
	size_t before = buf.len;
	wire_change bad = {6, pay.data, pay.len - 1};
	assert_wire(wire_server_encode_changes(&buf, 1, &bad, 1), WIRE_EPARSE);
	assert_int_equal(wire_change_size(&bad), 0);
	static const uint8_t wrongtype[] = {0x08, 0x01}; /* field 1 as a varint */
	wire_change bad2 = {6, wrongtype, sizeof wrongtype};
	assert_wire(wire_server_encode_changes(&buf, 1, &bad2, 1), WIRE_EPARSE);
	wire_change zero = {0, pay.data, pay.len};
	assert_wire(wire_server_encode_changes(&buf, 1, &zero, 1), WIRE_EFIELD);
	assert_wire(wire_server_encode_changes(&buf, 1, &c, 0), WIRE_EFIELD);
	assert_int_equal(buf.len, before);

	wire_buf_free(&odd);
	wire_buf_free(&bx);
	wire_buf_free(&by);
	wire_buf_free(&pay);
	wire_buf_free(&buf);
	free(ops);
	crdt_doc_free(a);
	crdt_batch_free(src);
}

/* ---- the malformed-input catalogue ------------------------------------------- */

/* Op shapes: each is tried as an OpBatch of one op and as an Update. */
static const struct {
	const char *name;
	op_spec op;
	int want;
} op_cases[] = {
	{"valid insert", {1, 0, 0, 1, 5, 0, 0, 0, 0, "a", -1, 0, 0, 0}, WIRE_OK},
	{"valid multi-byte insert", {1, 4, 9, 3, 5, 1, 3, 2, 0, "é世😀", -1, 0, 0, 0}, WIRE_OK},
	{"valid collected insert", {1, 0, 0, 5, 5, 0, 0, 0, 0, NULL, 0, 1, 0, 0}, WIRE_OK},
	{"valid delete", {1, 0, 0, 2, 6, 0, 0, 0, 0, NULL, 0, 0, 2, 7}, WIRE_OK},
	{"counter + len at the limit",
	 {1, MAXC - 1, MAXC - 1, 1, 6, 0, 0, 0, 0, NULL, 0, 0, 2, MAXC - 1},
	 WIRE_OK},
	{"no kind (oneof missing)", {1, 0, 0, 1, 0, 0, 0, 0, 0, NULL, 0, 0, 0, 0}, WIRE_EFIELD},
	{"len 0 insert", {1, 0, 0, 0, 5, 0, 0, 0, 0, "", 0, 0, 0, 0}, WIRE_EFIELD},
	{"len 0 delete", {1, 0, 0, 0, 6, 0, 0, 0, 0, NULL, 0, 0, 2, 0}, WIRE_EFIELD},
	{"len 0 collected", {1, 0, 0, 0, 5, 0, 0, 0, 0, NULL, 0, 1, 0, 0}, WIRE_EFIELD},
	{"replica 0", {0, 0, 0, 1, 5, 0, 0, 0, 0, "a", -1, 0, 0, 0}, WIRE_EFIELD},
	{"text shorter than len", {1, 0, 0, 2, 5, 0, 0, 0, 0, "a", -1, 0, 0, 0}, WIRE_EFIELD},
	{"text longer than len", {1, 0, 0, 1, 5, 0, 0, 0, 0, "ab", -1, 0, 0, 0}, WIRE_EFIELD},
	{"len counts bytes, not code points",
	 {1, 0, 0, 2, 5, 0, 0, 0, 0, "é", -1, 0, 0, 0},
	 WIRE_EFIELD},
	{"empty text, not collected", {1, 0, 0, 1, 5, 0, 0, 0, 0, NULL, 0, 0, 0, 0}, WIRE_EFIELD},
	{"collected insert with text", {1, 0, 0, 1, 5, 0, 0, 0, 0, "a", -1, 1, 0, 0}, WIRE_EFIELD},
	{"invalid UTF-8", {1, 0, 0, 1, 5, 0, 0, 0, 0, "\xff", -1, 0, 0, 0}, WIRE_EUTF8},
	{"overlong UTF-8", {1, 0, 0, 1, 5, 0, 0, 0, 0, "\xc0\x80", -1, 0, 0, 0}, WIRE_EUTF8},
	{"UTF-16 surrogate", {1, 0, 0, 1, 5, 0, 0, 0, 0, "\xed\xa0\x80", -1, 0, 0, 0}, WIRE_EUTF8},
	{"beyond U+10FFFF",
	 {1, 0, 0, 1, 5, 0, 0, 0, 0, "\xf4\x90\x80\x80", -1, 0, 0, 0},
	 WIRE_EUTF8},
	{"truncated UTF-8", {1, 0, 0, 1, 5, 0, 0, 0, 0, "\xe2\x82", -1, 0, 0, 0}, WIRE_EUTF8},
	{"NUL in text", {1, 0, 0, 3, 5, 0, 0, 0, 0, "a\0b", 3, 0, 0, 0}, WIRE_EUTF8},
	{"NUL at the end of text", {1, 0, 0, 2, 5, 0, 0, 0, 0, "ab\0", 3, 0, 0, 0}, WIRE_EUTF8},
	{"counter beyond CRDT_MAX_COUNTER",
	 {1, MAXC, 0, 1, 5, 0, 0, 0, 0, "a", -1, 0, 0, 0},
	 WIRE_EFIELD},
	{"counter + len beyond",
	 {1, MAXC - 1, 0, 2, 5, 0, 0, 0, 0, "ab", -1, 0, 0, 0},
	 WIRE_EFIELD},
	{"counter 2^32 - 1", {1, 0xffffffffu, 0, 1, 6, 0, 0, 0, 0, NULL, 0, 0, 2, 0}, WIRE_EFIELD},
	{"lamport beyond", {1, 0, MAXC, 1, 5, 0, 0, 0, 0, "a", -1, 0, 0, 0}, WIRE_EFIELD},
	{"left origin counter beyond",
	 {1, 0, 0, 1, 5, 2, MAXC, 0, 0, "a", -1, 0, 0, 0},
	 WIRE_EFIELD},
	{"right origin counter beyond",
	 {1, 0, 0, 1, 5, 0, 0, 2, MAXC, "a", -1, 0, 0, 0},
	 WIRE_EFIELD},
	{"origin replica 0 is the op's own", {1, 0, 0, 1, 5, 0, 4, 0, 0, "a", -1, 0, 0, 0}, WIRE_OK},
	{"left_none with a counter",
	 {1, 0, 0, 1, 5, 0, 4, 0, 0, "a", -1, 2, 0, 0},
	 WIRE_EFIELD},
	{"left_none with a replica",
	 {1, 0, 0, 1, 5, 2, 0, 0, 0, "a", -1, 2, 0, 0},
	 WIRE_EFIELD},
	{"right_none with a counter",
	 {1, 0, 0, 1, 5, 0, 0, 0, 4, "a", -1, 4, 0, 0},
	 WIRE_EFIELD},
	{"right_none with a replica",
	 {1, 0, 0, 1, 5, 0, 0, 2, 0, "a", -1, 4, 0, 0},
	 WIRE_EFIELD},
	{"both origins none", {1, 0, 0, 1, 5, 0, 0, 0, 0, "a", -1, 6, 0, 0}, WIRE_OK},
	{"delete target replica 0 is the op's own",
	 {1, 0, 0, 1, 6, 0, 0, 0, 0, NULL, 0, 0, 0, 3},
	 WIRE_OK},
	{"delete target beyond", {1, 0, 0, 2, 6, 0, 0, 0, 0, NULL, 0, 0, 2, MAXC - 1}, WIRE_EFIELD},
	{"len over CRDT_MAX_OP_LEN",
	 {1, 0, 0, CRDT_MAX_OP_LEN + 1, 6, 0, 0, 0, 0, NULL, 0, 0, 2, 0},
	 WIRE_ETOOBIG},
};

static void test_wire_malformed_ops(void **state)
{
	(void)state;
	wire_client_msg *m = wire_client_msg_new(NULL);
	crdt_batch *out = crdt_batch_new(NULL);
	static pb op, batch, msg;
	for (size_t i = 0; i < sizeof op_cases / sizeof *op_cases; i++) {
		build_op(&op, &op_cases[i].op);
		memset(&batch, 0, sizeof batch);
		pb_m(&batch, 1, &op);
		crdt_batch_clear(out);
		int rc = wire_ops_decode(batch.d, batch.n, NULL, out);
		if (rc != op_cases[i].want)
			fail_msg("OpBatch, %s: %d (%s), expected %d (%s)", op_cases[i].name, rc,
				 wire_strerror(rc), op_cases[i].want,
				 wire_strerror(op_cases[i].want));
		assert_int_equal(crdt_batch_count(out), rc == WIRE_OK ? 1 : 0);

		/* the same op second in an Update: nothing of the first stays */
		static pb two[2];
		build_op(&two[0], &op_cases[0].op);
		two[1] = op;
		build_update(&msg, 7, 31, two, 2);
		rc = wire_client_decode(m, msg.d, msg.n, NULL);
		if (rc != op_cases[i].want)
			fail_msg("Update, %s: %d (%s), expected %d (%s)", op_cases[i].name, rc,
				 wire_strerror(rc), op_cases[i].want,
				 wire_strerror(op_cases[i].want));
		assert_int_equal(m->doc, 7);
		assert_int_equal(m->kind, WIRE_CLIENT_UPDATE);
		assert_int_equal(m->client_batch, 31);
		assert_int_equal(crdt_batch_count(m->ops), rc == WIRE_OK ? 2 : 0);
	}
	crdt_batch_free(out);
	wire_client_msg_free(m);
}

/* Raw inputs: broken protobuf and messages of the wrong shape. */
enum target { T_OPS, T_CLIENT, T_SERVER };

#define RAW(s) (const uint8_t *)(s), sizeof(s) - 1

static const struct {
	const char *name;
	enum target t;
	const uint8_t *data;
	size_t len;
	int want;
} raw_cases[] = {
	/* protobuf structure */
	{"empty ClientMessage (no kind)", T_CLIENT, RAW(""), WIRE_EFIELD},
	{"empty ServerMessage (no kind)", T_SERVER, RAW(""), WIRE_EFIELD},
	{"doc only", T_CLIENT, RAW("\x08\x01"), WIRE_EFIELD},
	{"length past the end", T_CLIENT, RAW("\x08\x01\x1a\x05\x08\x01"), WIRE_EPARSE},
	{"length past the end (OpBatch)", T_OPS, RAW("\x0a\x7f\x08\x01"), WIRE_EPARSE},
	{"huge length", T_OPS, RAW("\x0a\xff\xff\xff\xff\x0f"), WIRE_EPARSE},
	{"varint of 11 bytes", T_CLIENT, RAW("\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\x80\x01"),
	 WIRE_EPARSE},
	{"varint over 64 bits", T_CLIENT, RAW("\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\x02"),
	 WIRE_EPARSE},
	{"truncated varint", T_CLIENT, RAW("\x08\xff"), WIRE_EPARSE},
	{"truncated tag", T_CLIENT, RAW("\x80"), WIRE_EPARSE},
	{"field number 0", T_CLIENT, RAW("\x00\x01"), WIRE_EPARSE},
	{"group wire type", T_CLIENT, RAW("\x0b\x0c"), WIRE_EPARSE},
	{"wire type 6", T_OPS, RAW("\x0e"), WIRE_EPARSE},
	{"truncated fixed32", T_CLIENT, RAW("\x0d\x01\x02"), WIRE_EPARSE},
	{"doc as bytes (wrong wire type)", T_CLIENT, RAW("\x0a\x01\x00"), WIRE_EPARSE},
	{"doc as fixed32 (wrong wire type)", T_CLIENT, RAW("\x0d\x01\x00\x00\x00"), WIRE_EPARSE},
	{"Update.ops as varint", T_CLIENT, RAW("\x08\x01\x1a\x04\x08\x01\x10\x05"), WIRE_EPARSE},
	{"Update.client_batch as bytes", T_CLIENT, RAW("\x08\x01\x1a\x03\x0a\x01\x00"),
	 WIRE_EPARSE},
	{"Op.replica as bytes", T_OPS, RAW("\x0a\x03\x0a\x01\x01"), WIRE_EPARSE},
	{"Insert.text as varint", T_OPS, RAW("\x0a\x0a\x08\x01\x20\x01\x2a\x04\x28\x61\x30\x00"),
	 WIRE_EPARSE},
	{"Op as varint", T_OPS, RAW("\x08\x01"), WIRE_EPARSE},
	/* kinds */
	{"unknown client kind (field 9)", T_CLIENT, RAW("\x08\x01\x4a\x00"), WIRE_EFIELD},
	{"unknown server kind (field 9)", T_SERVER, RAW("\x08\x01\x4a\x00"), WIRE_EFIELD},
	{"Update without ops", T_CLIENT, RAW("\x08\x01\x1a\x02\x08\x01"), WIRE_EFIELD},
	{"Leave on doc 0", T_CLIENT, RAW("\x32\x00"), WIRE_EFIELD},
	{"Ping on doc 0", T_CLIENT, RAW("\x2a\x02\x08\x05"), WIRE_OK},
	{"Ack with seq 0", T_SERVER, RAW("\x08\x01\x22\x02\x08\x05"), WIRE_EFIELD},
	{"Changes without changes", T_SERVER, RAW("\x08\x01\x1a\x00"), WIRE_EFIELD},
	{"Change without ops", T_SERVER, RAW("\x08\x01\x1a\x04\x0a\x02\x08\x05"), WIRE_EFIELD},
	{"Welcome of version 2", T_SERVER, RAW("\x08\x01\x12\x02\x08\x02"), WIRE_EVERSION},
	{"Welcome without version", T_SERVER, RAW("\x08\x01\x12\x00"), WIRE_EVERSION},
	{"Welcome v2 that v1 cannot parse", T_SERVER, RAW("\x08\x01\x12\x05\x08\x02\x12\x01\x00"),
	 WIRE_EVERSION},
	{"Welcome v1 with a wrong wire type", T_SERVER, RAW("\x08\x01\x12\x05\x08\x01\x12\x01\x00"),
	 WIRE_EPARSE},
	/* strings */
	{"Presence name invalid UTF-8", T_CLIENT, RAW("\x08\x01\x22\x05\x08\x01\x1a\x01\xff"),
	 WIRE_EUTF8},
	{"Presence color with NUL", T_CLIENT, RAW("\x08\x01\x22\x06\x08\x01\x22\x02\x61\x00"),
	 WIRE_EUTF8},
	{"Presence replica 0", T_CLIENT, RAW("\x08\x01\x22\x02\x10\x01"), WIRE_EFIELD},
	{"Presence anchor (0, 3)", T_CLIENT, RAW("\x08\x01\x22\x06\x08\x01\x2a\x02\x10\x03"),
	 WIRE_EFIELD},
	{"Error message invalid UTF-8", T_SERVER, RAW("\x08\x01\x32\x05\x08\x01\x12\x01\xc3"),
	 WIRE_EUTF8},
};

static int decode_target(enum target t, const uint8_t *d, size_t n, const wire_limits *lim)
{
	int rc;
	if (t == T_OPS) {
		crdt_batch *b = crdt_batch_new(NULL);
		rc = wire_ops_decode(d, n, lim, b);
		if (rc != WIRE_OK)
			assert_int_equal(crdt_batch_count(b), 0);
		crdt_batch_free(b);
	} else if (t == T_CLIENT) {
		wire_client_msg *m = wire_client_msg_new(NULL);
		rc = wire_client_decode(m, d, n, lim);
		if (rc != WIRE_OK)
			assert_int_equal(crdt_batch_count(m->ops), 0);
		wire_client_msg_free(m);
	} else {
		wire_server_msg *m = wire_server_msg_new(NULL);
		rc = wire_server_decode(m, d, n, lim);
		if (rc != WIRE_OK)
			assert_int_equal(crdt_batch_count(m->ops), 0);
		wire_server_msg_free(m);
	}
	return rc;
}

static void test_wire_malformed_raw(void **state)
{
	(void)state;
	/* no input at all */
	assert_wire(decode_target(T_OPS, NULL, 0, NULL), WIRE_OK);
	assert_wire(decode_target(T_CLIENT, NULL, 0, NULL), WIRE_EFIELD);
	assert_wire(decode_target(T_SERVER, NULL, 0, NULL), WIRE_EFIELD);
	assert_wire(decode_target(T_OPS, NULL, 3, NULL), WIRE_EPARSE);
	assert_wire(decode_target(T_CLIENT, NULL, 3, NULL), WIRE_EPARSE);
	assert_wire(decode_target(T_SERVER, NULL, 3, NULL), WIRE_EPARSE);
	crdt_doc *d = NULL;
	assert_wire(wire_snapshot_decode(NULL, 0, NULL, 1, NULL, &d, NULL, NULL), WIRE_EFIELD);
	assert_wire(wire_snapshot_decode(NULL, 3, NULL, 1, NULL, &d, NULL, NULL), WIRE_EPARSE);
	assert_null(d);
	for (size_t i = 0; i < sizeof raw_cases / sizeof *raw_cases; i++) {
		int rc = decode_target(raw_cases[i].t, raw_cases[i].data, raw_cases[i].len, NULL);
		if (rc != raw_cases[i].want)
			fail_msg("%s: %d (%s), expected %d (%s)", raw_cases[i].name, rc,
				 wire_strerror(rc), raw_cases[i].want,
				 wire_strerror(raw_cases[i].want));
	}
}

/* Messages of the right structure with one wrong field, built by hand. */
static void test_wire_malformed_messages(void **state)
{
	(void)state;
	static pb op, del_op, u, c1, c2, chs, msg;
	op_spec ins_spec = {1, 0, 0, 1, 5, 0, 0, 0, 0, "a", -1, 0, 0, 0};
	op_spec del_spec = {1, 1, 1, 1, 6, 0, 0, 0, 0, NULL, 0, 0, 1, 0};
	build_op(&op, &ins_spec);
	build_op(&del_op, &del_spec);
	wire_client_msg *m = wire_client_msg_new(NULL);
	wire_server_msg *s = wire_server_msg_new(NULL);

	/* Update without client_batch */
	build_update(&msg, 1, 0, &op, 1);
	assert_wire(wire_client_decode(m, msg.d, msg.n, NULL), WIRE_EFIELD);
	assert_int_equal(m->doc, 1);
	assert_int_equal(m->kind, WIRE_CLIENT_UPDATE);
	/* Update on doc 0 */
	build_update(&msg, 0, 5, &op, 1);
	assert_wire(wire_client_decode(m, msg.d, msg.n, NULL), WIRE_EFIELD);
	assert_int_equal(m->client_batch, 5);
	/* both oneof members: the last one wins (protobuf rule) */
	build_update(&msg, 1, 5, &op, 1);
	pb_s(&msg, 6, "", 0); /* Leave after the Update */
	assert_wire(wire_client_decode(m, msg.d, msg.n, NULL), WIRE_OK);
	assert_int_equal(m->kind, WIRE_CLIENT_LEAVE);
	assert_int_equal(crdt_batch_count(m->ops), 0);

	/* Changes: seq 0, not consecutive, consecutive */
	const pb *ops2[2] = {&op, &del_op};
	uint64_t seqs[][2] = {{0, 1}, {5, 7}, {5, 5}, {5, 6}};
	int want[] = {WIRE_EFIELD, WIRE_EFIELD, WIRE_EFIELD, WIRE_OK};
	for (int i = 0; i < 4; i++) {
		memset(&c1, 0, sizeof c1);
		pb_uc(&c1, 1, seqs[i][0]);
		pb_m(&c1, 2, ops2[0]);
		memset(&c2, 0, sizeof c2);
		pb_uc(&c2, 1, seqs[i][1]);
		pb_m(&c2, 2, ops2[1]);
		memset(&chs, 0, sizeof chs);
		pb_m(&chs, 1, &c1);
		pb_m(&chs, 1, &c2);
		memset(&msg, 0, sizeof msg);
		pb_u(&msg, 1, 3);
		pb_m(&msg, 3, &chs);
		assert_wire(wire_server_decode(s, msg.d, msg.n, NULL), want[i]);
		assert_int_equal(s->doc, 3);
		assert_int_equal(s->kind, WIRE_SERVER_CHANGES);
		assert_int_equal(crdt_batch_count(s->ops), want[i] == WIRE_OK ? 2 : 0);
		assert_int_equal(s->n_changes, want[i] == WIRE_OK ? 2 : 0);
	}
	/* a bad op in the second change: nothing of the first stays */
	op_spec bad = del_spec;
	bad.len = 0;
	build_op(&del_op, &bad);
	memset(&c2, 0, sizeof c2);
	pb_u(&c2, 1, 6);
	pb_m(&c2, 2, &del_op);
	memset(&chs, 0, sizeof chs);
	pb_m(&chs, 1, &c1);
	pb_m(&chs, 1, &c2);
	memset(&msg, 0, sizeof msg);
	pb_u(&msg, 1, 3);
	pb_m(&msg, 3, &chs);
	assert_wire(wire_server_decode(s, msg.d, msg.n, NULL), WIRE_EFIELD);
	assert_int_equal(crdt_batch_count(s->ops), 0);

	(void)u;
	wire_client_msg_free(m);
	wire_server_msg_free(s);
}

static void test_wire_hello_checks(void **state)
{
	(void)state;
	wire_client_msg *m = wire_client_msg_new(NULL);
	pb h, msg;
	char id[WIRE_MAX_DOC_ID + 2];
	memset(id, 'x', sizeof id);
	static char token[WIRE_MAX_TOKEN + 2];
	memset(token, 't', sizeof token);
	static const struct {
		const char *name;
		uint64_t version;
		size_t id_len; /* of `id`, or SIZE_MAX: "a b" */
		uint64_t replica;
		size_t token_len;
		int want;
	} cases[] = {
		{"valid", 1, 10, 5, 0, WIRE_OK},
		{"longest doc_id and token", 1, WIRE_MAX_DOC_ID, 5, WIRE_MAX_TOKEN, WIRE_OK},
		{"version 2", 2, 10, 5, 0, WIRE_EVERSION},
		{"version 0 (missing)", 0, 10, 5, 0, WIRE_EVERSION},
		{"version 2, otherwise invalid", 2, 0, 0, 0, WIRE_EVERSION},
		{"empty doc_id", 1, 0, 5, 0, WIRE_EFIELD},
		{"doc_id too long", 1, WIRE_MAX_DOC_ID + 1, 5, 0, WIRE_EFIELD},
		{"doc_id with a space", 1, SIZE_MAX, 5, 0, WIRE_EFIELD},
		{"replica 0", 1, 10, 0, 0, WIRE_EFIELD},
		{"token too long", 1, 10, 5, WIRE_MAX_TOKEN + 1, WIRE_ETOOBIG},
	};
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		memset(&h, 0, sizeof h);
		pb_uc(&h, 1, cases[i].version);
		if (cases[i].id_len == SIZE_MAX)
			pb_s(&h, 2, "a b", 3);
		else if (cases[i].id_len)
			pb_s(&h, 2, id, cases[i].id_len);
		pb_uc(&h, 3, cases[i].replica);
		if (cases[i].token_len)
			pb_s(&h, 5, token, cases[i].token_len);
		memset(&msg, 0, sizeof msg);
		pb_u(&msg, 1, 12);
		pb_m(&msg, 2, &h);
		int rc = wire_client_decode(m, msg.d, msg.n, NULL);
		if (rc != cases[i].want)
			fail_msg("Hello, %s: %d (%s), expected %d", cases[i].name, rc,
				 wire_strerror(rc), cases[i].want);
		assert_int_equal(m->doc, 12);
		assert_int_equal(m->kind, WIRE_CLIENT_HELLO);
		assert_int_equal(m->hello.protocol_version, cases[i].version);
	}
	/* a Hello of a future version whose other fields version 1 cannot
	 * parse (doc_id became a number) is still UNSUPPORTED_VERSION */
	memset(&h, 0, sizeof h);
	pb_u(&h, 1, 3);
	pb_u(&h, 2, 77);
	memset(&msg, 0, sizeof msg);
	pb_u(&msg, 1, 4);
	pb_m(&msg, 2, &h);
	assert_wire(wire_client_decode(m, msg.d, msg.n, NULL), WIRE_EVERSION);
	assert_int_equal(m->doc, 4);
	assert_int_equal(m->hello.protocol_version, 3);
	assert_int_equal(wire_error_code(WIRE_EVERSION), WIRE_ERR_UNSUPPORTED_VERSION);
	wire_client_msg_free(m);
}

/* Unknown fields anywhere are skipped and change nothing. */
static void test_wire_unknown_fields(void **state)
{
	(void)state;
	static pb op, opx, ins_body, msg, msgx, u;
	op_spec s = {3, 1, 2, 2, 5, 3, 0, 0, 0, "hé", -1, 0, 0, 0};
	build_op(&op, &s);
	/* the same op with unknown fields in Op and in Insert */
	memset(&opx, 0, sizeof opx);
	pb_u(&opx, 15, 123456);
	pb_u(&opx, 1, 3);
	pb_u(&opx, 2, 1);
	pb_s(&opx, 100, "future", 6);
	pb_u(&opx, 3, 2);
	pb_u(&opx, 4, 2);
	memset(&ins_body, 0, sizeof ins_body);
	pb_u(&ins_body, 1, 3);
	pb_tag(&ins_body, 9, 5); /* fixed32 */
	pb_raw(&ins_body, "\x01\x02\x03\x04", 4);
	pb_s(&ins_body, 5, "hé", strlen("hé"));
	pb_tag(&ins_body, 10, 1); /* fixed64 */
	pb_raw(&ins_body, "\x01\x02\x03\x04\x05\x06\x07\x08", 8);
	pb_m(&opx, 5, &ins_body);

	build_update(&msg, 2, 9, &op, 1);
	memset(&u, 0, sizeof u);
	pb_u(&u, 1, 9);
	pb_m(&u, 2, &opx);
	pb_s(&u, 77, "\x08\x01", 2);
	memset(&msgx, 0, sizeof msgx);
	pb_u(&msgx, 50, 1);
	pb_u(&msgx, 1, 2);
	pb_m(&msgx, 3, &u);
	pb_s(&msgx, 51, "x", 1);

	wire_client_msg *a = wire_client_msg_new(NULL), *b = wire_client_msg_new(NULL);
	assert_wire(wire_client_decode(a, msg.d, msg.n, NULL), WIRE_OK);
	assert_wire(wire_client_decode(b, msgx.d, msgx.n, NULL), WIRE_OK);
	assert_int_equal(a->doc, b->doc);
	assert_int_equal(a->client_batch, b->client_batch);
	assert_int_equal(crdt_batch_count(b->ops), 1);
	assert_op_equal(crdt_batch_get(a->ops, 0), crdt_batch_get(b->ops, 0));

	/* too many unknown fields is too large, before anything is unpacked */
	static pb flood;
	memset(&flood, 0, sizeof flood);
	wire_limits lim = {1u << 20, 10, 1000};
	pb_u(&flood, 1, 2);
	while (flood.n + 3 < sizeof flood.d)
		pb_u(&flood, 31, 0);
	assert_wire(wire_client_decode(a, flood.d, flood.n, &lim), WIRE_ETOOBIG);
	wire_client_msg_free(a);
	wire_client_msg_free(b);
}

/* A valid Update truncated at every byte: EFIELD when the cut leaves a
 * well-formed message without a kind, EPARSE otherwise. A valid OpBatch
 * truncated at an op boundary is a shorter valid batch. */
static void test_wire_truncated(void **state)
{
	(void)state;
	crdt_batch *src = crdt_batch_new(NULL);
	crdt_doc *a = sample_doc(src);
	size_t n;
	crdt_op *ops = batch_ops(src, &n);
	wire_buf buf = {0};
	assert_wire(wire_client_encode_update(&buf, 1, 7, ops, n), WIRE_OK);
	assert_true(buf.data[0] == 0x08 && buf.data[1] == 0x01 && buf.data[2] == 0x1a);
	wire_client_msg *m = wire_client_msg_new(NULL);
	for (size_t k = 0; k < buf.len; k++) {
		int want = k == 0 || k == 2 ? WIRE_EFIELD : WIRE_EPARSE;
		int rc = wire_client_decode(m, buf.data, k, NULL);
		if (rc != want)
			fail_msg("Update truncated to %zu of %zu bytes: %d (%s), expected %d", k,
				 buf.len, rc, wire_strerror(rc), want);
		assert_int_equal(crdt_batch_count(m->ops), 0);
		if (k >= 2)
			assert_int_equal(m->doc, 1);
	}
	assert_wire(wire_client_decode(m, buf.data, buf.len, NULL), WIRE_OK);

	/* OpBatch */
	wire_buf ob = {0};
	size_t *ends = calloc(n + 1, sizeof *ends);
	for (size_t i = 0; i < n; i++) {
		assert_wire(wire_ops_encode(&ops[i], 1, &ob), WIRE_OK);
		ends[i + 1] = ob.len;
	}
	crdt_batch *out = crdt_batch_new(NULL);
	size_t next = 0;
	for (size_t k = 0; k <= ob.len; k++) {
		crdt_batch_clear(out);
		int rc = wire_ops_decode(ob.data, k, NULL, out);
		if (next <= n && k == ends[next]) {
			assert_wire(rc, WIRE_OK);
			assert_int_equal(crdt_batch_count(out), next);
			next++;
		} else {
			assert_wire(rc, WIRE_EPARSE);
			assert_int_equal(crdt_batch_count(out), 0);
		}
	}
	assert_int_equal(next, n + 1);
	crdt_batch_free(out);
	free(ends);
	wire_buf_free(&ob);
	wire_buf_free(&buf);
	wire_client_msg_free(m);
	free(ops);
	crdt_doc_free(a);
	crdt_batch_free(src);
}

/* max_ops, max_text_bytes and max_message_bytes: at the limit passes, one
 * over fails with WIRE_ETOOBIG, and the counts are refused before
 * protobuf-c allocates anything. */
static void test_wire_limits(void **state)
{
	(void)state;
	static crdt_op ops[64];
	for (uint32_t i = 0; i < 64; i++)
		ops[i] = ins(4, i * 2, i * 2, "xy", CRDT_NO_ID, CRDT_NO_ID); /* never merge */
	wire_buf buf = {0};
	assert_wire(wire_client_encode_update(&buf, 1, 1, ops, 10), WIRE_OK);
	wire_buf buf11 = {0};
	assert_wire(wire_client_encode_update(&buf11, 1, 1, ops, 11), WIRE_OK);

	tu_fault f;
	tu_fault_init(&f, -1, 0);
	tu_alloc al;
	tu_alloc_init(&al, &f);
	wire_client_msg *m = wire_client_msg_new(&al.a);
	assert_non_null(m);

	wire_limits lim = {1u << 20, 10, 20};
	assert_wire(wire_client_decode(m, buf.data, buf.len, &lim), WIRE_OK); /* 10 ops, 20 B */
	assert_int_equal(crdt_batch_count(m->ops), 10);
	long calls = f.calls;
	assert_wire(wire_client_decode(m, buf11.data, buf11.len, &lim), WIRE_ETOOBIG);
	assert_int_equal(f.calls, calls);     /* refused before unpacking */
	assert_int_equal(m->client_batch, 1); /* still addressed */
	lim.max_ops = 11;
	assert_wire(wire_client_decode(m, buf11.data, buf11.len, &lim), WIRE_ETOOBIG); /* 22 B */
	lim.max_text_bytes = 22;
	assert_wire(wire_client_decode(m, buf11.data, buf11.len, &lim), WIRE_OK);
	lim.max_message_bytes = buf11.len - 1;
	assert_wire(wire_client_decode(m, buf11.data, buf11.len, &lim), WIRE_ETOOBIG);
	lim.max_message_bytes = buf11.len;
	assert_wire(wire_client_decode(m, buf11.data, buf11.len, &lim), WIRE_OK);

	/* the same limits on OpBatch */
	wire_buf ob = {0};
	assert_wire(wire_ops_encode(ops, 11, &ob), WIRE_OK);
	crdt_batch *out = crdt_batch_new(NULL);
	wire_limits l2 = {1u << 20, 10, 1000};
	assert_wire(wire_ops_decode(ob.data, ob.len, &l2, out), WIRE_ETOOBIG);
	l2.max_ops = 11;
	l2.max_text_bytes = 21;
	assert_wire(wire_ops_decode(ob.data, ob.len, &l2, out), WIRE_ETOOBIG);
	l2.max_message_bytes = 10;
	l2.max_text_bytes = 1000;
	assert_wire(wire_ops_decode(ob.data, ob.len, &l2, out), WIRE_ETOOBIG);
	assert_int_equal(crdt_batch_count(out), 0);
	l2.max_message_bytes = ob.len;
	assert_wire(wire_ops_decode(ob.data, ob.len, &l2, out), WIRE_OK);
	assert_int_equal(crdt_batch_count(out), 11);

	/* the default limits: a message just over 1 MiB */
	size_t big = wire_default_limits.max_message_bytes + 1;
	uint8_t *huge = calloc(big, 1);
	assert_wire(wire_client_decode(m, huge, big, NULL), WIRE_ETOOBIG);
	assert_wire(wire_ops_decode(huge, big, NULL, out), WIRE_ETOOBIG);
	free(huge);

	/* Changes: max_ops per change, not per message */
	wire_server_msg *s = wire_server_msg_new(NULL);
	wire_buf p1 = {0}, p2 = {0}, sm = {0};
	assert_wire(wire_ops_encode(ops, 10, &p1), WIRE_OK);
	assert_wire(wire_ops_encode(ops + 10, 10, &p2), WIRE_OK);
	wire_change ch[2] = {{1, p1.data, p1.len}, {2, p2.data, p2.len}};
	assert_wire(wire_server_encode_changes(&sm, 1, ch, 2), WIRE_OK);
	wire_limits l3 = {1u << 20, 10, 20};
	assert_wire(wire_server_decode(s, sm.data, sm.len, &l3), WIRE_OK);
	assert_int_equal(crdt_batch_count(s->ops), 20);
	l3.max_ops = 9;
	assert_wire(wire_server_decode(s, sm.data, sm.len, &l3), WIRE_ETOOBIG);
	wire_server_msg_free(s);
	wire_buf_free(&p1);
	wire_buf_free(&p2);
	wire_buf_free(&sm);

	crdt_batch_free(out);
	wire_buf_free(&ob);
	wire_buf_free(&buf);
	wire_buf_free(&buf11);
	wire_client_msg_free(m);
	assert_int_equal(al.held, 0);
	assert_int_equal(al.bad_release, 0);
}

/* ---- allocation failures ----------------------------------------------------- */

/* Fail allocation N (once, then from N on) for N = 0, 1, 2, ... in a
 * decoder's life: creating it, decoding, decoding again. Each failure is
 * WIRE_ENOMEM (or NULL from _new), the object stays usable, and after the
 * free every byte is back. */
static void test_wire_decode_alloc_failures(void **state)
{
	(void)state;
	crdt_batch *src = crdt_batch_new(NULL);
	crdt_doc *a = sample_doc(src);
	size_t n;
	crdt_op *ops = batch_ops(src, &n);
	static crdt_op many[600];
	for (uint32_t i = 0; i < 600; i++)
		many[i] = ins(4, i * 2, i * 2, "é", CRDT_NO_ID, CRDT_NO_ID);
	wire_buf u1 = {0}, u2 = {0}, sm = {0}, snap = {0}, p = {0};
	assert_wire(wire_client_encode_update(&u1, 1, 1, ops, n), WIRE_OK);
	assert_wire(wire_client_encode_update(&u2, 1, 2, many, 600), WIRE_OK);
	assert_wire(wire_snapshot_encode(a, "d", 3, &snap), WIRE_OK);
	assert_wire(wire_ops_encode(many, 300, &p), WIRE_OK);
	wire_change ch = {1, p.data, p.len};
	assert_wire(wire_server_encode_changes(&sm, 1, &ch, 1), WIRE_OK);
	wire_buf wel = {0};
	assert_wire(wire_server_encode_welcome(&wel, 1, 3, false, snap.data, snap.len), WIRE_OK);

	for (int persistent = 0; persistent <= 1; persistent++) {
		for (long k = 0;; k++) {
			tu_fault f;
			tu_fault_init(&f, k, persistent);
			tu_alloc al;
			tu_alloc_init(&al, &f);
			wire_client_msg *m = wire_client_msg_new(&al.a);
			wire_server_msg *s = wire_server_msg_new(&al.a);
			if (m && s) {
				int r1 = wire_client_decode(m, u1.data, u1.len, NULL);
				assert_true(r1 == WIRE_OK || r1 == WIRE_ENOMEM);
				int r2 = wire_client_decode(m, u2.data, u2.len, NULL);
				assert_true(r2 == WIRE_OK || r2 == WIRE_ENOMEM);
				assert_int_equal(crdt_batch_count(m->ops), r2 == WIRE_OK ? 600 : 0);
				int r3 = wire_server_decode(s, sm.data, sm.len, NULL);
				assert_true(r3 == WIRE_OK || r3 == WIRE_ENOMEM);
				assert_int_equal(crdt_batch_count(s->ops), r3 == WIRE_OK ? 300 : 0);
				int r4 = wire_server_decode(s, wel.data, wel.len, NULL);
				assert_true(r4 == WIRE_OK || r4 == WIRE_ENOMEM);
				if (r4 == WIRE_OK)
					assert_int_equal(s->welcome.snapshot_len, snap.len);
				/* usable after a failure, once memory is back */
				f.countdown = -1;
				f.tripped = 0;
				assert_wire(wire_client_decode(m, u1.data, u1.len, NULL), WIRE_OK);
				assert_int_equal(crdt_batch_count(m->ops), n);
			}
			wire_client_msg_free(m);
			wire_server_msg_free(s);
			assert_int_equal(al.held, 0);
			assert_int_equal(al.bad_release, 0);
			if (f.failures == 0)
				break;
			assert_true(k < 100000);
		}
	}

	/* the snapshot decoder, with the engine's allocator */
	for (long k = 0;; k++) {
		tu_fault f;
		tu_fault_init(&f, k, 1);
		tu_alloc al;
		tu_alloc_init(&al, &f);
		crdt_options o = {.allocator = &al.a};
		crdt_doc *d = NULL;
		int st = 0;
		int rc = wire_snapshot_decode(snap.data, snap.len, "d", 5, &o, &d, NULL, &st);
		if (rc == WIRE_OK) {
			assert_same_text(a, d);
			crdt_doc_free(d);
		} else {
			assert_wire(rc, WIRE_ENOMEM);
			assert_null(d);
		}
		assert_int_equal(al.held, 0);
		if (f.failures == 0)
			break;
	}

	wire_buf_free(&u1);
	wire_buf_free(&u2);
	wire_buf_free(&sm);
	wire_buf_free(&wel);
	wire_buf_free(&snap);
	wire_buf_free(&p);
	free(ops);
	crdt_doc_free(a);
	crdt_batch_free(src);
}

/* A fixed-seed fuzz of the decoders: random mutations of valid messages
 * never crash, never leak, and a success is always a well-shaped result. */
static void test_wire_decode_mutations(void **state)
{
	(void)state;
	crdt_batch *src = crdt_batch_new(NULL);
	crdt_doc *a = sample_doc(src);
	size_t n;
	crdt_op *ops = batch_ops(src, &n);
	wire_buf seeds[4] = {{0}, {0}, {0}, {0}};
	assert_wire(wire_client_encode_update(&seeds[0], 1, 1, ops, n), WIRE_OK);
	wire_hello h = {1, "doc", 3, 9, 4, "tok", 3};
	assert_wire(wire_client_encode_hello(&seeds[1], 2, &h), WIRE_OK);
	assert_wire(wire_ops_encode(ops, n, &seeds[2]), WIRE_OK);
	wire_change ch = {3, seeds[2].data, seeds[2].len};
	assert_wire(wire_server_encode_changes(&seeds[3], 1, &ch, 1), WIRE_OK);

	wire_client_msg *m = wire_client_msg_new(NULL);
	wire_server_msg *s = wire_server_msg_new(NULL);
	crdt_batch *out = crdt_batch_new(NULL);
	tu_rng rng;
	tu_rng_seed(&rng, 20240611);
	uint8_t buf[4096];
	for (int it = 0; it < 20000; it++) {
		const wire_buf *seed = &seeds[it % 4];
		size_t len = seed->len;
		memcpy(buf, seed->data, len);
		int edits = 1 + (int)tu_rng_below(&rng, 4);
		for (int e = 0; e < edits; e++) {
			size_t at = (size_t)tu_rng_below(&rng, len);
			switch (tu_rng_below(&rng, 4)) {
			case 0:
				buf[at] ^= (uint8_t)(1u << tu_rng_below(&rng, 8));
				break;
			case 1:
				buf[at] = (uint8_t)tu_rng_next(&rng);
				break;
			case 2:
				len = at; /* truncate */
				break;
			default:
				if (len < sizeof buf) { /* insert a byte */
					memmove(buf + at + 1, buf + at, len - at);
					buf[at] = (uint8_t)tu_rng_next(&rng);
					len++;
				}
			}
			if (len == 0)
				break;
		}
		int rc;
		if (it % 4 == 2) {
			crdt_batch_clear(out);
			rc = wire_ops_decode(buf, len, NULL, out);
		} else if (it % 4 == 3) {
			rc = wire_server_decode(s, buf, len, NULL);
		} else {
			rc = wire_client_decode(m, buf, len, NULL);
		}
		assert_true(rc <= 0 && rc >= WIRE_EVERSION);
		if (rc == WIRE_OK && it % 4 == 0 && m->kind == WIRE_CLIENT_UPDATE) {
			/* what passed is well shaped: the encoder takes it back */
			wire_buf again = {0};
			size_t k;
			crdt_op *got = batch_ops(m->ops, &k);
			assert_wire(
				wire_client_encode_update(&again, m->doc, m->client_batch, got, k),
				WIRE_OK);
			wire_buf_free(&again);
			free(got);
		}
	}
	for (int i = 0; i < 4; i++)
		wire_buf_free(&seeds[i]);
	crdt_batch_free(out);
	wire_client_msg_free(m);
	wire_server_msg_free(s);
	free(ops);
	crdt_doc_free(a);
	crdt_batch_free(src);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_wire_strerror),
		cmocka_unit_test(test_wire_error_codes),
		cmocka_unit_test(test_wire_ops_roundtrip),
		cmocka_unit_test(test_wire_ops_collected_inserts),
		cmocka_unit_test(test_wire_ops_encode_checks),
		cmocka_unit_test(test_wire_snapshot_roundtrip),
		cmocka_unit_test(test_wire_snapshot_damaged),
		cmocka_unit_test(test_wire_snapshot_state_fields),
		cmocka_unit_test(test_wire_client_roundtrip),
		cmocka_unit_test(test_wire_client_reuse),
		cmocka_unit_test(test_wire_server_roundtrip),
		cmocka_unit_test(test_wire_changes_splice),
		cmocka_unit_test(test_wire_malformed_ops),
		cmocka_unit_test(test_wire_malformed_raw),
		cmocka_unit_test(test_wire_malformed_messages),
		cmocka_unit_test(test_wire_hello_checks),
		cmocka_unit_test(test_wire_unknown_fields),
		cmocka_unit_test(test_wire_truncated),
		cmocka_unit_test(test_wire_limits),
		cmocka_unit_test(test_wire_decode_alloc_failures),
		cmocka_unit_test(test_wire_decode_mutations),
	};
	if (argc > 1)
		cmocka_set_test_filter(argv[1]);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
