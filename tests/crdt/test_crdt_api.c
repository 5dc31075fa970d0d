/*
 * test_crdt_api.c - unit tests for every public function and every error
 * path of crdt/crdt.h: status strings, UTF-8 validation, batches, local
 * edits, remote apply (duplicates, pending, malformed ops, patches),
 * versions and deltas, snapshots (round trip, truncation, damage) and the
 * allocator hook (exact accounting, failure after N allocations, no leaks).
 * Every test works only through the header; crdt_doc_check runs after each
 * operation.
 */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "crdt.h"
#include "docgen.h"
#include "testutil.h"
#include "tu_assert.h"

#define ID(r, c) ((crdt_id){(r), (c)})
#define NOID CRDT_NO_ID

/* ---- helpers ------------------------------------------------------------- */

static crdt_op mk_ins(crdt_replica r, uint32_t c, uint32_t lam, const char *text, crdt_id left,
		      crdt_id right)
{
	crdt_op o;
	memset(&o, 0, sizeof o);
	o.kind = CRDT_OP_INSERT;
	o.id = ID(r, c);
	o.lamport = lam;
	o.text = text;
	o.text_bytes = text ? (uint32_t)strlen(text) : 0;
	o.len = text ? (uint32_t)crdt_utf8_count(text, strlen(text)) : 0;
	o.left = left;
	o.right = right;
	return o;
}

static crdt_op mk_del(crdt_replica r, uint32_t c, uint32_t lam, crdt_id target, uint32_t len)
{
	crdt_op o;
	memset(&o, 0, sizeof o);
	o.kind = CRDT_OP_DELETE;
	o.id = ID(r, c);
	o.lamport = lam;
	o.len = len;
	o.target = target;
	return o;
}

static int id_eq(crdt_id a, crdt_id b)
{
	return a.replica == b.replica && a.counter == b.counter;
}

#define assert_id(got, r, c)                                                        \
	do {                                                                        \
		crdt_id g_ = (got);                                                 \
		if (g_.replica != (crdt_replica)(r) || g_.counter != (uint32_t)(c)) \
			fail_msg("%s = (%llu,%u), expected (%llu,%u)", #got,        \
				 (unsigned long long)g_.replica, g_.counter,        \
				 (unsigned long long)(r), (unsigned)(c));           \
	} while (0)

static void assert_op_text(const crdt_op *op, const char *want)
{
	if (!op->text)
		fail_msg("op text is NULL, expected \"%s\"", want);
	if (op->text_bytes != strlen(want) || memcmp(op->text, want, op->text_bytes))
		fail_msg("op text is \"%.*s\", expected \"%s\"", (int)op->text_bytes, op->text,
			 want);
}

static void assert_same_op(const crdt_op *a, const crdt_op *b)
{
	assert_int_equal(a->kind, b->kind);
	assert_true(id_eq(a->id, b->id));
	assert_int_equal(a->lamport, b->lamport);
	assert_int_equal(a->len, b->len);
	if (a->kind == CRDT_OP_INSERT) {
		assert_true(id_eq(a->left, b->left));
		assert_true(id_eq(a->right, b->right));
		assert_int_equal(a->text == NULL, b->text == NULL);
		if (a->text) {
			assert_int_equal(a->text_bytes, b->text_bytes);
			assert_memory_equal(a->text, b->text, a->text_bytes);
		}
	} else {
		assert_true(id_eq(a->target, b->target));
	}
}

static crdt_doc *new_doc(crdt_replica r)
{
	crdt_doc *d = crdt_doc_new(r, NULL);
	assert_non_null(d);
	assert_check(d);
	return d;
}

static crdt_doc *new_doc_pending(crdt_replica r, uint32_t max_ops, size_t max_bytes)
{
	crdt_options o;
	memset(&o, 0, sizeof o);
	o.max_pending_ops = max_ops;
	o.max_pending_bytes = max_bytes;
	crdt_doc *d = crdt_doc_new(r, &o);
	assert_non_null(d);
	return d;
}

static crdt_batch *new_batch(void)
{
	crdt_batch *b = crdt_batch_new(NULL);
	assert_non_null(b);
	return b;
}

static void ins(crdt_doc *d, size_t pos, const char *s, crdt_batch *out)
{
	assert_ok(crdt_doc_insert(d, pos, s, strlen(s), out));
	assert_check(d);
}

static void del(crdt_doc *d, size_t pos, size_t n, crdt_batch *out)
{
	assert_ok(crdt_doc_delete(d, pos, n, out));
	assert_check(d);
}

/* Apply every op of b to d, each must return `want`. */
static void apply_batch(crdt_doc *d, const crdt_batch *b, int want)
{
	for (size_t i = 0; i < crdt_batch_count(b); i++) {
		assert_status(crdt_doc_apply(d, crdt_batch_get(b, i), NULL, NULL), want);
		assert_check(d);
	}
}

/* Semantic state of a document, to prove "unchanged on error". */
typedef struct doc_state {
	char *text;
	size_t nbytes;
	crdt_vv_entry vv[64];
	size_t nvv;
	uint32_t clock;
	size_t pending, length, utf8;
	crdt_stats st;
} doc_state;

static void state_take(const crdt_doc *d, doc_state *s)
{
	s->text = tu_doc_text(d, &s->nbytes);
	s->nvv = crdt_doc_version(d, s->vv, 64);
	assert_true(s->nvv <= 64);
	s->clock = crdt_doc_clock(d);
	s->pending = crdt_doc_pending(d);
	s->length = crdt_doc_length(d);
	s->utf8 = crdt_doc_utf8_bytes(d);
	crdt_doc_stats(d, &s->st);
}

static void state_assert_same(const crdt_doc *d, doc_state *s)
{
	doc_state now;
	assert_check(d);
	state_take(d, &now);
	if (now.nbytes != s->nbytes || memcmp(now.text, s->text, s->nbytes))
		fail_msg("text changed: \"%s\" -> \"%s\"", s->text, now.text);
	assert_int_equal(now.nvv, s->nvv);
	for (size_t i = 0; i < s->nvv; i++) {
		assert_int_equal(now.vv[i].replica, s->vv[i].replica);
		assert_int_equal(now.vv[i].next, s->vv[i].next);
	}
	assert_int_equal(now.clock, s->clock);
	assert_int_equal(now.pending, s->pending);
	assert_int_equal(now.length, s->length);
	assert_int_equal(now.utf8, s->utf8);
	assert_int_equal(now.st.length, s->st.length);
	assert_int_equal(now.st.utf8_bytes, s->st.utf8_bytes);
	assert_int_equal(now.st.units, s->st.units);
	assert_int_equal(now.st.deleted_units, s->st.deleted_units);
	free(now.text);
	free(s->text);
	s->text = NULL;
}

/* Patch collector: mirrors a document's text from its patches. */
typedef struct mirror {
	tu_text t;
	int bad;
	size_t patches;
} mirror;

static void mirror_fn(void *ctx, const crdt_patch *p)
{
	mirror *m = ctx;
	m->patches++;
	if (tu_text_apply_patch(&m->t, p) != 0)
		m->bad++;
}

/* Local edits that keep the mirror in step. */
static void mins(crdt_doc *d, mirror *m, size_t pos, const char *s, crdt_batch *out)
{
	ins(d, pos, s, out);
	tu_text_insert_utf8(&m->t, pos, s, strlen(s));
}

static void mdel(crdt_doc *d, mirror *m, size_t pos, size_t n, crdt_batch *out)
{
	del(d, pos, n, out);
	tu_text_delete(&m->t, pos, n);
}

static void mapply(crdt_doc *d, mirror *m, const crdt_op *op, int want)
{
	assert_status(crdt_doc_apply(d, op, mirror_fn, m), want);
	assert_int_equal(m->bad, 0);
	assert_check(d);
	if (!tu_doc_equals_text(d, &m->t)) {
		char *a = tu_doc_text(d, NULL);
		char *b = tu_text_utf8(&m->t, NULL);
		fail_msg("patches do not reproduce the text: doc \"%s\", patched \"%s\"", a, b);
	}
}

static void assert_stats_plausible(const crdt_doc *d)
{
	crdt_stats s;
	crdt_doc_stats(d, &s);
	assert_int_equal(s.length, crdt_doc_length(d));
	assert_int_equal(s.utf8_bytes, crdt_doc_utf8_bytes(d));
	assert_int_equal(s.units, s.length + s.deleted_units);
	assert_true(s.items <= s.units);
	assert_true(s.tombstone_items <= s.items);
	assert_true(s.tombstone_items <= s.deleted_units);
	assert_true(s.items - s.tombstone_items <= s.length);
	if (s.units > 0) {
		assert_true(s.items >= 1);
		assert_true(s.leaves >= 1);
		assert_true(s.depth >= 1);
		assert_true(s.replicas >= 1);
		assert_true(s.id_runs >= 1);
	}
	if (s.length > 0)
		assert_true(s.items > s.tombstone_items);
	if (s.deleted_units > 0) {
		assert_true(s.tombstone_items >= 1);
		assert_true(s.delete_runs >= 1);
	}
	assert_true(s.leaves <= s.items + 1);
	assert_int_equal(s.memory_bytes, crdt_doc_memory(d));
	assert_true(s.memory_bytes > 0);
	size_t nvv;
	crdt_vv_entry *vv = tu_doc_version(d, &nvv);
	assert_true(s.replicas >= nvv);
	free(vv);
}

/* ---- status strings ------------------------------------------------------- */

static const struct {
	int code;
	const char *name, *text;
} codes[] = {
#define X(name, value, text) {value, #name, text},
	CRDT_STATUS_TABLE(X)
#undef X
};
#define NCODES (sizeof codes / sizeof codes[0])

static void test_crdt_strerror_known_codes(void **state)
{
	(void)state;
	assert_int_equal(NCODES, 13);
	for (size_t i = 0; i < NCODES; i++) {
		const char *s = crdt_strerror(codes[i].code);
		assert_non_null(s);
		if (strcmp(s, codes[i].text) != 0)
			fail_msg("crdt_strerror(%s) = \"%s\", expected \"%s\"", codes[i].name, s,
				 codes[i].text);
		for (size_t j = 0; j < i; j++)
			assert_true(codes[i].code != codes[j].code);
	}
	assert_int_equal(CRDT_OK, 0);
	assert_true(CRDT_DUPLICATE > 0 && CRDT_PENDING > 0);
	assert_true(CRDT_ENOMEM < 0 && CRDT_ESPACE < 0);
}

static void test_crdt_strerror_unknown_codes(void **state)
{
	(void)state;
	const int unknown[] = {3, 4, 100, -11, -12, -100, 12345, INT_MAX, INT_MIN, INT_MIN + 1};
	for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
		const char *s = crdt_strerror(unknown[i]);
		assert_non_null(s);
		assert_true(strlen(s) > 0);
		/* an unknown code must not read as success */
		assert_true(strcmp(s, "ok") != 0);
	}
}

/* ---- UTF-8 ------------------------------------------------------------------ */

static const struct {
	const char *s;
	size_t n;
	long count;
} utf8_cases[] = {
	{"", 0, 0},
	{"a", 1, 1},
	{"hello", 5, 5},
	{"a\0b", 3, 3},
	{"\xC3\xA9", 2, 1},		    /* é */
	{"\xC2\x80", 2, 1},		    /* U+0080 */
	{"\xDF\xBF", 2, 1},		    /* U+07FF */
	{"\xE0\xA0\x80", 3, 1},		    /* U+0800 */
	{"\xE2\x82\xAC", 3, 1},		    /* € */
	{"\xE4\xB8\xAD\xE6\x96\x87", 6, 2}, /* 中文 */
	{"\xED\x9F\xBF", 3, 1},		    /* U+D7FF */
	{"\xEE\x80\x80", 3, 1},		    /* U+E000 */
	{"\xEF\xBB\xBF", 3, 1},		    /* BOM */
	{"\xEF\xBF\xBF", 3, 1},		    /* U+FFFF */
	{"\xF0\x90\x80\x80", 4, 1},	    /* U+10000 */
	{"\xF0\x9F\x98\x80", 4, 1},	    /* 😀 */
	{"\xF4\x8F\xBF\xBF", 4, 1},	    /* U+10FFFF */
	{"a\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80z", 11, 5},
	/* invalid */
	{"\x80", 1, -1}, /* lone continuation */
	{"\xBF", 1, -1},
	{"a\x80z", 3, -1},
	{"\xC0\x80", 2, -1},		     /* overlong NUL */
	{"\xC1\xBF", 2, -1},		     /* overlong */
	{"\xE0\x80\x80", 3, -1},	     /* overlong */
	{"\xE0\x9F\xBF", 3, -1},	     /* overlong U+07FF */
	{"\xF0\x80\x80\x80", 4, -1},	     /* overlong */
	{"\xF0\x8F\xBF\xBF", 4, -1},	     /* overlong U+FFFF */
	{"\xED\xA0\x80", 3, -1},	     /* U+D800 */
	{"\xED\xBF\xBF", 3, -1},	     /* U+DFFF */
	{"\xED\xA0\xBD\xED\xB8\x80", 6, -1}, /* CESU-8 surrogate pair */
	{"\xF4\x90\x80\x80", 4, -1},	     /* U+110000 */
	{"\xF5\x80\x80\x80", 4, -1},
	{"\xF7\xBF\xBF\xBF", 4, -1},
	{"\xF8\x88\x80\x80\x80", 5, -1},     /* 5-byte form */
	{"\xFC\x84\x80\x80\x80\x80", 6, -1}, /* 6-byte form */
	{"\xFE", 1, -1},
	{"\xFF", 1, -1},
	{"\xC3", 1, -1},     /* truncated */
	{"\xC3\xA9", 1, -1}, /* cut by nbytes */
	{"\xE2\x82", 2, -1},
	{"\xE2\x82\xAC", 2, -1},
	{"\xF0\x9F\x98", 3, -1},
	{"a\xC3", 2, -1},
	{"\xE2\x82z", 3, -1}, /* bad continuation */
	{"\xC3\xC3\xA9", 3, -1},
	{"\xF0\x9F\x98\x80\x80", 5, -1}, /* extra continuation */
};

static void test_crdt_utf8_count(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof utf8_cases / sizeof utf8_cases[0]; i++) {
		long got = crdt_utf8_count(utf8_cases[i].s, utf8_cases[i].n);
		if (got != utf8_cases[i].count)
			fail_msg("crdt_utf8_count(case %zu) = %ld, expected %ld", i, got,
				 utf8_cases[i].count);
	}
	/* Every code point round-trips through our encoder. */
	char buf[8];
	for (uint32_t cp = 0; cp <= 0x10FFFF; cp += (cp < 0x11000 ? 1 : 97)) {
		if (cp >= 0xD800 && cp <= 0xDFFF)
			continue;
		size_t n = tu_utf8_put(cp, buf);
		assert_int_equal(crdt_utf8_count(buf, n), 1);
	}
	for (uint32_t cp = 0xD800; cp <= 0xDFFF; cp++) {
		size_t n = tu_utf8_put(cp, buf);
		assert_int_equal(crdt_utf8_count(buf, n), -1);
	}
}

/* ---- batches ------------------------------------------------------------------ */

static void test_crdt_batch_basic(void **state)
{
	(void)state;
	crdt_batch *b = new_batch();
	assert_int_equal(crdt_batch_count(b), 0);

	char text[16];
	strcpy(text, "h\xC3\xA9llo");
	crdt_op a = mk_ins(7, 0, 3, text, NOID, NOID);
	assert_ok(crdt_batch_push(b, &a));
	assert_int_equal(crdt_batch_count(b), 1);
	memset(text, 'X', sizeof text); /* the batch owns a copy */
	const crdt_op *g = crdt_batch_get(b, 0);
	assert_non_null(g);
	assert_int_equal(g->kind, CRDT_OP_INSERT);
	assert_id(g->id, 7, 0);
	assert_int_equal(g->lamport, 3);
	assert_int_equal(g->len, 5);
	assert_op_text(g, "h\xC3\xA9llo");
	assert_true(id_eq(g->left, NOID) && id_eq(g->right, NOID));

	crdt_op d = mk_del(7, 9, 20, ID(3, 4), 2);
	assert_ok(crdt_batch_push(b, &d));
	assert_int_equal(crdt_batch_count(b), 2);
	assert_same_op(crdt_batch_get(b, 1), &d);

	crdt_op n = mk_ins(8, 0, 1, NULL, ID(7, 0), NOID);
	n.len = 4; /* collected insert */
	assert_ok(crdt_batch_push(b, &n));
	assert_int_equal(crdt_batch_count(b), 3);
	assert_null(crdt_batch_get(b, 2)->text);
	assert_int_equal(crdt_batch_get(b, 2)->len, 4);

	crdt_batch_clear(b);
	assert_int_equal(crdt_batch_count(b), 0);
	assert_ok(crdt_batch_push(b, &d));
	assert_int_equal(crdt_batch_count(b), 1);
	assert_same_op(crdt_batch_get(b, 0), &d);
	crdt_batch_clear(b);
	crdt_batch_clear(b);
	assert_int_equal(crdt_batch_count(b), 0);
	crdt_batch_free(b);
	crdt_batch_free(NULL);

	/* Many ops: the batch grows. */
	b = new_batch();
	for (uint32_t i = 0; i < 1000; i++) {
		crdt_op o = mk_ins(1 + (i % 2), i, 2 * i, "ab", NOID, NOID);
		assert_ok(crdt_batch_push(b, &o));
	}
	assert_int_equal(crdt_batch_count(b), 1000);
	for (uint32_t i = 0; i < 1000; i++) {
		const crdt_op *o = crdt_batch_get(b, i);
		assert_id(o->id, 1 + (i % 2), i);
		assert_op_text(o, "ab");
	}
	crdt_batch_free(b);
}

static void test_crdt_batch_merge_contiguous(void **state)
{
	(void)state;
	crdt_batch *b = new_batch();
	/* inserts: a run typed forward */
	crdt_op a = mk_ins(1, 0, 10, "abc", NOID, NOID);
	crdt_op c = mk_ins(1, 3, 13, "d\xC3\xA9", ID(1, 2), NOID);
	crdt_op e = mk_ins(1, 5, 15, "\xF0\x9F\x98\x80", ID(1, 4), NOID);
	assert_ok(crdt_batch_push(b, &a));
	assert_ok(crdt_batch_push(b, &c));
	assert_ok(crdt_batch_push(b, &e));
	assert_int_equal(crdt_batch_count(b), 1);
	const crdt_op *g = crdt_batch_get(b, 0);
	assert_id(g->id, 1, 0);
	assert_int_equal(g->lamport, 10);
	assert_int_equal(g->len, 6);
	assert_op_text(g, "abcd\xC3\xA9\xF0\x9F\x98\x80");
	assert_true(id_eq(g->left, NOID) && id_eq(g->right, NOID));

	/* with non-null origins, the right origin shared */
	crdt_batch_clear(b);
	a = mk_ins(2, 7, 40, "xy", ID(9, 3), ID(9, 4));
	c = mk_ins(2, 9, 42, "z", ID(2, 8), ID(9, 4));
	assert_ok(crdt_batch_push(b, &a));
	assert_ok(crdt_batch_push(b, &c));
	assert_int_equal(crdt_batch_count(b), 1);
	g = crdt_batch_get(b, 0);
	assert_id(g->id, 2, 7);
	assert_int_equal(g->len, 3);
	assert_id(g->left, 9, 3);
	assert_id(g->right, 9, 4);
	assert_op_text(g, "xyz");

	/* deletes: forward delete key, contiguous targets */
	crdt_batch_clear(b);
	crdt_op d1 = mk_del(1, 20, 50, ID(4, 10), 3);
	crdt_op d2 = mk_del(1, 23, 53, ID(4, 13), 2);
	assert_ok(crdt_batch_push(b, &d1));
	assert_ok(crdt_batch_push(b, &d2));
	assert_int_equal(crdt_batch_count(b), 1);
	g = crdt_batch_get(b, 0);
	assert_int_equal(g->kind, CRDT_OP_DELETE);
	assert_id(g->id, 1, 20);
	assert_int_equal(g->lamport, 50);
	assert_int_equal(g->len, 5);
	assert_id(g->target, 4, 10);

	/* collected inserts merge with collected inserts */
	crdt_batch_clear(b);
	crdt_op n1 = mk_ins(3, 0, 5, NULL, NOID, NOID);
	n1.len = 3;
	crdt_op n2 = mk_ins(3, 3, 8, NULL, ID(3, 2), NOID);
	n2.len = 2;
	assert_ok(crdt_batch_push(b, &n1));
	assert_ok(crdt_batch_push(b, &n2));
	assert_int_equal(crdt_batch_count(b), 1);
	g = crdt_batch_get(b, 0);
	assert_null(g->text);
	assert_int_equal(g->len, 5);
	crdt_batch_free(b);
}

/* Each candidate follows `first` in some way that is not a continuation. */
static void test_crdt_batch_no_merge_noncontiguous(void **state)
{
	(void)state;
	crdt_op first = mk_ins(1, 0, 10, "abc", NOID, NOID);
	crdt_op cand[] = {
		mk_ins(1, 4, 13, "d", ID(1, 2), NOID),	   /* counter gap */
		mk_ins(1, 2, 13, "d", ID(1, 2), NOID),	   /* counter overlap */
		mk_ins(1, 3, 14, "d", ID(1, 2), NOID),	   /* Lamport gap */
		mk_ins(1, 3, 12, "d", ID(1, 2), NOID),	   /* Lamport overlap */
		mk_ins(2, 3, 13, "d", ID(1, 2), NOID),	   /* other replica */
		mk_ins(1, 3, 13, "d", ID(1, 1), NOID),	   /* left not the last unit */
		mk_ins(1, 3, 13, "d", NOID, NOID),	   /* left at start */
		mk_ins(1, 3, 13, "d", ID(1, 2), ID(5, 0)), /* other right origin */
		mk_ins(1, 3, 13, NULL, ID(1, 2), NOID),	   /* collected after text */
		mk_del(1, 3, 13, ID(1, 0), 1),		   /* other kind */
	};
	cand[8].len = 2;
	for (size_t i = 0; i < sizeof cand / sizeof cand[0]; i++) {
		crdt_batch *b = new_batch();
		assert_ok(crdt_batch_push(b, &first));
		assert_ok(crdt_batch_push(b, &cand[i]));
		if (crdt_batch_count(b) != 2)
			fail_msg("candidate %zu was merged", i);
		assert_same_op(crdt_batch_get(b, 0), &first);
		assert_same_op(crdt_batch_get(b, 1), &cand[i]);
		crdt_batch_free(b);
	}

	crdt_op dfirst = mk_del(1, 20, 50, ID(4, 10), 3);
	crdt_op dcand[] = {
		mk_del(1, 23, 53, ID(4, 14), 1), /* target gap */
		mk_del(1, 23, 53, ID(4, 9), 1),	 /* backspace: target before */
		mk_del(1, 23, 53, ID(5, 13), 1), /* other target replica */
		mk_del(1, 24, 54, ID(4, 13), 1), /* counter gap */
		mk_del(1, 23, 55, ID(4, 13), 1), /* Lamport gap */
		mk_del(2, 23, 53, ID(4, 13), 1), /* other replica */
	};
	for (size_t i = 0; i < sizeof dcand / sizeof dcand[0]; i++) {
		crdt_batch *b = new_batch();
		assert_ok(crdt_batch_push(b, &dfirst));
		assert_ok(crdt_batch_push(b, &dcand[i]));
		if (crdt_batch_count(b) != 2)
			fail_msg("delete candidate %zu was merged", i);
		assert_same_op(crdt_batch_get(b, 0), &dfirst);
		assert_same_op(crdt_batch_get(b, 1), &dcand[i]);
		crdt_batch_free(b);
	}

	/* Only the last op is a merge candidate. */
	crdt_batch *b = new_batch();
	crdt_op other = mk_ins(2, 0, 1, "q", NOID, NOID);
	crdt_op cont = mk_ins(1, 3, 13, "d", ID(1, 2), NOID);
	assert_ok(crdt_batch_push(b, &first));
	assert_ok(crdt_batch_push(b, &other));
	assert_ok(crdt_batch_push(b, &cont));
	assert_int_equal(crdt_batch_count(b), 3);
	assert_same_op(crdt_batch_get(b, 0), &first);
	crdt_batch_free(b);
}

static void test_crdt_batch_enomem(void **state)
{
	(void)state;
	int done = 0;
	for (long n = 0; !done && n < 10000; n++) {
		tu_fault f;
		tu_alloc al;
		tu_fault_init(&f, n, 1);
		tu_alloc_init(&al, &f);
		crdt_batch *b = crdt_batch_new(&al.a);
		if (!b) {
			assert_int_equal(al.held, 0);
			continue;
		}
		uint32_t counter = 0;
		for (int i = 0; i < 60; i++) {
			/* alternate mergeable continuations and new ops */
			crdt_op op;
			char text[64];
			int k = 1 + i % 7;
			memset(text, 'a' + i % 26, (size_t)k);
			text[k] = 0;
			if (i % 3 == 2 && crdt_batch_count(b) > 0) {
				const crdt_op *last = crdt_batch_get(b, crdt_batch_count(b) - 1);
				op = mk_ins(last->id.replica, last->id.counter + last->len,
					    last->lamport + last->len, text,
					    ID(last->id.replica, last->id.counter + last->len - 1),
					    last->right);
			} else {
				op = mk_ins(1 + (uint64_t)i, counter, counter, text, NOID, NOID);
			}
			counter += 100;
			size_t before = crdt_batch_count(b);
			crdt_op last_before;
			char last_text[4096];
			if (before) {
				last_before = *crdt_batch_get(b, before - 1);
				memcpy(last_text, last_before.text, last_before.text_bytes);
				last_before.text = last_text;
			}
			int st = crdt_batch_push(b, &op);
			if (st == CRDT_ENOMEM) {
				assert_int_equal(crdt_batch_count(b), before);
				if (before)
					assert_same_op(crdt_batch_get(b, before - 1), &last_before);
				break;
			}
			assert_ok(st);
		}
		if (f.failures == 0)
			done = 1;
		crdt_batch_free(b);
		assert_int_equal(al.held, 0);
		assert_int_equal(al.blocks, 0);
		assert_int_equal(al.bad_release, 0);
	}
	assert_true(done);
}

/* ---- documents: local edits ----------------------------------------------------- */

static void test_crdt_doc_new_free(void **state)
{
	(void)state;
	assert_null(crdt_doc_new(CRDT_NO_REPLICA, NULL));
	crdt_options o;
	memset(&o, 0, sizeof o);
	assert_null(crdt_doc_new(0, &o));

	crdt_doc *d = crdt_doc_new(1, NULL);
	assert_non_null(d);
	assert_int_equal(crdt_doc_replica(d), 1);
	assert_int_equal(crdt_doc_length(d), 0);
	assert_int_equal(crdt_doc_utf8_bytes(d), 0);
	assert_int_equal(crdt_doc_text(d, NULL, 0), 0);
	assert_int_equal(crdt_doc_pending(d), 0);
	assert_int_equal(crdt_doc_seen(d, 1), 0);
	assert_int_equal(crdt_doc_seen(d, 2), 0);
	size_t nvv;
	crdt_vv_entry *vv = tu_doc_version(d, &nvv);
	assert_int_equal(nvv, 0);
	free(vv);
	assert_check(d);
	assert_stats_plausible(d);
	crdt_doc_free(d);
	crdt_doc_free(NULL);

	d = crdt_doc_new(UINT64_MAX, &o);
	assert_non_null(d);
	assert_int_equal(crdt_doc_replica(d), UINT64_MAX);
	ins(d, 0, "x", NULL);
	assert_int_equal(crdt_doc_seen(d, UINT64_MAX), 1);
	crdt_doc_free(d);
}

static void test_crdt_insert_start_middle_end(void **state)
{
	(void)state;
	crdt_doc *d = new_doc(1);
	crdt_batch *b = new_batch();
	uint32_t c0 = crdt_doc_clock(d);

	ins(d, 0, "hello", b);
	assert_doc_text(d, "hello");
	assert_int_equal(crdt_batch_count(b), 1);
	const crdt_op *op = crdt_batch_get(b, 0);
	assert_int_equal(op->kind, CRDT_OP_INSERT);
	assert_id(op->id, 1, 0);
	assert_int_equal(op->lamport, c0);
	assert_int_equal(op->len, 5);
	assert_op_text(op, "hello");
	assert_id(op->left, 0, 0);
	assert_id(op->right, 0, 0);
	assert_int_equal(crdt_doc_clock(d), c0 + 5);
	assert_int_equal(crdt_doc_seen(d, 1), 5);

	crdt_batch_clear(b);
	ins(d, 5, " world", b); /* end */
	assert_doc_text(d, "hello world");
	op = crdt_batch_get(b, 0);
	assert_id(op->id, 1, 5);
	assert_int_equal(op->lamport, c0 + 5);
	assert_id(op->left, 1, 4);
	assert_id(op->right, 0, 0);

	crdt_batch_clear(b);
	ins(d, 0, "X", b); /* start */
	assert_doc_text(d, "Xhello world");
	op = crdt_batch_get(b, 0);
	assert_id(op->id, 1, 11);
	assert_id(op->left, 0, 0);
	assert_id(op->right, 1, 0);

	crdt_batch_clear(b);
	ins(d, 3, "Y", b); /* middle of a run: between 'e' (1,1) and 'l' (1,2) */
	assert_doc_text(d, "XheYllo world");
	op = crdt_batch_get(b, 0);
	assert_id(op->id, 1, 12);
	assert_id(op->left, 1, 1);
	assert_id(op->right, 1, 2);

	crdt_batch_clear(b);
	ins(d, 13, "!", b);
	ins(d, 7, "__", b);
	assert_doc_text(d, "XheYllo__ world!");
	assert_int_equal(crdt_doc_length(d), 16);
	assert_int_equal(crdt_doc_utf8_bytes(d), 16);
	assert_int_equal(crdt_doc_seen(d, 1), 16);
	assert_int_equal(crdt_doc_clock(d), c0 + 16);
	assert_stats_plausible(d);

	/* typing forward in one batch merges into one op */
	crdt_batch_clear(b);
	for (size_t i = 0; i < 10; i++)
		ins(d, 16 + i, "z", b);
	assert_int_equal(crdt_batch_count(b), 1);
	assert_int_equal(crdt_batch_get(b, 0)->len, 10);
	assert_op_text(crdt_batch_get(b, 0), "zzzzzzzzzz");

	/* out may be NULL */
	ins(d, 0, ">", NULL);
	assert_doc_text(d, ">XheYllo__ world!zzzzzzzzzz");
	crdt_batch_free(b);
	crdt_doc_free(d);
}

static void test_crdt_delete_start_middle_end(void **state)
{
	(void)state;
	crdt_doc *d = new_doc(1);
	crdt_batch *b = new_batch();
	ins(d, 0, "hello", NULL);
	ins(d, 5, " world", NULL);
	ins(d, 0, "X", NULL); /* (1,11) */
	ins(d, 3, "Y", NULL); /* (1,12) */
	assert_doc_text(d, "XheYllo world");
	uint32_t seen = crdt_doc_seen(d, 1);
	assert_int_equal(seen, 13);
	uint32_t clock = crdt_doc_clock(d);

	del(d, 0, 1, b); /* start */
	assert_doc_text(d, "heYllo world");
	assert_int_equal(crdt_batch_count(b), 1);
	const crdt_op *op = crdt_batch_get(b, 0);
	assert_int_equal(op->kind, CRDT_OP_DELETE);
	assert_id(op->id, 1, 13);
	assert_int_equal(op->lamport, clock);
	assert_int_equal(op->len, 1);
	assert_id(op->target, 1, 11);
	assert_int_equal(crdt_doc_seen(d, 1), 14); /* deletes consume counters */
	assert_int_equal(crdt_doc_clock(d), clock + 1);

	crdt_batch_clear(b);
	del(d, 2, 1, b); /* middle */
	assert_doc_text(d, "hello world");
	op = crdt_batch_get(b, 0);
	assert_id(op->id, 1, 14);
	assert_id(op->target, 1, 12);

	crdt_batch_clear(b);
	del(d, 10, 1, b); /* end */
	assert_doc_text(d, "hello worl");
	op = crdt_batch_get(b, 0);
	assert_id(op->target, 1, 10);

	crdt_batch_clear(b);
	del(d, 5, 5, b);
	assert_doc_text(d, "hello");
	assert_int_equal(crdt_batch_count(b), 1);
	op = crdt_batch_get(b, 0);
	assert_id(op->id, 1, 16);
	assert_int_equal(op->len, 5);
	assert_id(op->target, 1, 5);
	assert_int_equal(crdt_doc_seen(d, 1), 21);

	crdt_batch_clear(b);
	del(d, 1, 3, b);
	assert_doc_text(d, "ho");
	del(d, 0, 2, b);
	assert_doc_text(d, "");
	assert_int_equal(crdt_doc_length(d), 0);
	assert_int_equal(crdt_doc_utf8_bytes(d), 0);
	assert_stats_plausible(d);

	/* zero-length edits are no-ops that make no op */
	crdt_batch_clear(b);
	seen = crdt_doc_seen(d, 1);
	clock = crdt_doc_clock(d);
	assert_ok(crdt_doc_delete(d, 0, 0, b));
	assert_ok(crdt_doc_insert(d, 0, "", 0, b));
	ins(d, 0, "ab", NULL);
	seen = crdt_doc_seen(d, 1);
	clock = crdt_doc_clock(d);
	assert_ok(crdt_doc_delete(d, 1, 0, b));
	assert_ok(crdt_doc_delete(d, 2, 0, b));
	assert_ok(crdt_doc_insert(d, 1, "xyz", 0, b));
	assert_int_equal(crdt_batch_count(b), 0);
	assert_int_equal(crdt_doc_seen(d, 1), seen);
	assert_int_equal(crdt_doc_clock(d), clock);
	assert_doc_text(d, "ab");
	assert_check(d);
	crdt_batch_free(b);
	crdt_doc_free(d);
}

static void test_crdt_delete_spanning_replicas(void **state)
{
	(void)state;
	crdt_doc *a = new_doc(1), *b = new_doc(2);
	crdt_batch *ba = new_batch(), *bb = new_batch(), *out = new_batch();
	ins(a, 0, "abc", ba);
	apply_batch(b, ba, CRDT_OK);
	ins(b, 3, "xyz", bb);
	apply_batch(a, bb, CRDT_OK);
	assert_doc_text(a, "abcxyz");
	/* delete "cxy": (1,2) and (2,0..1) */
	del(a, 2, 3, out);
	assert_doc_text(a, "abz");
	int seen_c = 0, seen_x = 0, seen_y = 0;
	uint32_t total = 0, next = 3;
	for (size_t i = 0; i < crdt_batch_count(out); i++) {
		const crdt_op *op = crdt_batch_get(out, i);
		assert_int_equal(op->kind, CRDT_OP_DELETE);
		assert_int_equal(op->id.replica, 1);
		assert_int_equal(op->id.counter, next); /* contiguous counters */
		next += op->len;
		total += op->len;
		for (uint32_t k = 0; k < op->len; k++) {
			crdt_id t = ID(op->target.replica, op->target.counter + k);
			if (id_eq(t, ID(1, 2)))
				seen_c++;
			else if (id_eq(t, ID(2, 0)))
				seen_x++;
			else if (id_eq(t, ID(2, 1)))
				seen_y++;
			else
				fail_msg("unexpected delete target (%llu,%u)",
					 (unsigned long long)t.replica, t.counter);
		}
	}
	assert_int_equal(total, 3);
	assert_true(seen_c == 1 && seen_x == 1 && seen_y == 1);
	assert_true(crdt_batch_count(out) >= 2);
	assert_int_equal(crdt_doc_seen(a, 1), 6);
	apply_batch(b, out, CRDT_OK);
	assert_same_text(a, b);
	assert_same_version(a, b);
	crdt_batch_free(ba);
	crdt_batch_free(bb);
	crdt_batch_free(out);
	crdt_doc_free(a);
	crdt_doc_free(b);
}

static void test_crdt_edit_out_of_range(void **state)
{
	(void)state;
	crdt_doc *d = new_doc(1);
	crdt_batch *b = new_batch();
	ins(d, 0, "abc", NULL);
	doc_state s;

	struct {
		int is_insert;
		size_t pos, len;
	} cases[] = {
		{1, 4, 0}, {1, 100, 0}, {1, SIZE_MAX, 0}, {0, 0, 4},	    {0, 2, 2},
		{0, 3, 1}, {0, 4, 1},	{0, 1, SIZE_MAX}, {0, SIZE_MAX, 2}, {0, SIZE_MAX, SIZE_MAX},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		state_take(d, &s);
		int st = cases[i].is_insert ? crdt_doc_insert(d, cases[i].pos, "x", 1, b)
					    : crdt_doc_delete(d, cases[i].pos, cases[i].len, b);
		if (st != CRDT_ERANGE)
			fail_msg("case %zu: status %d (%s), expected CRDT_ERANGE", i, st,
				 crdt_strerror(st));
		state_assert_same(d, &s);
		assert_int_equal(crdt_batch_count(b), 0);
	}
	/* empty doc */
	crdt_doc *e = new_doc(2);
	assert_status(crdt_doc_insert(e, 1, "x", 1, b), CRDT_ERANGE);
	assert_status(crdt_doc_delete(e, 0, 1, b), CRDT_ERANGE);
	assert_int_equal(crdt_doc_length(e), 0);
	assert_int_equal(crdt_doc_seen(e, 2), 0);
	assert_check(e);
	crdt_doc_free(e);
	crdt_batch_free(b);
	crdt_doc_free(d);
}

static void test_crdt_insert_invalid_utf8(void **state)
{
	(void)state;
	crdt_doc *d = new_doc(1);
	crdt_batch *b = new_batch();
	ins(d, 0, "ab\xC3\xA9", NULL);
	doc_state s;
	size_t ninvalid = 0;
	for (size_t i = 0; i < sizeof utf8_cases / sizeof utf8_cases[0]; i++) {
		if (utf8_cases[i].count >= 0)
			continue;
		ninvalid++;
		for (size_t pos = 0; pos <= 3; pos++) {
			state_take(d, &s);
			assert_status(crdt_doc_insert(d, pos, utf8_cases[i].s, utf8_cases[i].n, b),
				      CRDT_EUTF8);
			state_assert_same(d, &s);
			assert_int_equal(crdt_batch_count(b), 0);
		}
	}
	assert_true(ninvalid > 20);
	/* valid prefix, invalid tail: nothing is inserted */
	state_take(d, &s);
	assert_status(crdt_doc_insert(d, 1, "okay\xF0\x9F\x98", 7, b), CRDT_EUTF8);
	state_assert_same(d, &s);
	state_take(d, &s);
	assert_status(crdt_doc_insert(d, 1, "ok\xED\xA0\x80ok", 7, b), CRDT_EUTF8);
	state_assert_same(d, &s);
	assert_int_equal(crdt_batch_count(b), 0);
	assert_doc_text(d, "ab\xC3\xA9");
	crdt_batch_free(b);
	crdt_doc_free(d);
}

static void test_crdt_multibyte_positions(void **state)
{
	(void)state;
	crdt_doc *d = new_doc(1);
	crdt_batch *b = new_batch();
	ins(d, 0, "\xC3\xA9\xE4\xB8\xAD\xF0\x9F\x98\x80", b); /* é中😀 */
	assert_int_equal(crdt_doc_length(d), 3);
	assert_int_equal(crdt_doc_utf8_bytes(d), 9);
	assert_int_equal(crdt_batch_get(b, 0)->len, 3);
	assert_int_equal(crdt_batch_get(b, 0)->text_bytes, 9);
	assert_int_equal(crdt_doc_seen(d, 1), 3);

	ins(d, 1, "ab", NULL);
	assert_doc_text(d, "\xC3\xA9"
			   "ab\xE4\xB8\xAD\xF0\x9F\x98\x80");
	ins(d, 5, "\xC3\x9F", NULL);	     /* ß at end */
	ins(d, 4, "\xF0\x9F\x8E\x89", NULL); /* 🎉 between 中 and 😀 */
	assert_doc_text(d, "\xC3\xA9"
			   "ab\xE4\xB8\xAD\xF0\x9F\x8E\x89\xF0\x9F\x98\x80\xC3\x9F");
	assert_int_equal(crdt_doc_length(d), 7);
	assert_int_equal(crdt_doc_utf8_bytes(d), 2 + 2 + 3 + 4 + 4 + 2);

	del(d, 3, 1, NULL); /* 中 */
	assert_doc_text(d, "\xC3\xA9"
			   "ab\xF0\x9F\x8E\x89\xF0\x9F\x98\x80\xC3\x9F");
	del(d, 0, 1, NULL); /* é */
	assert_doc_text(d, "ab\xF0\x9F\x8E\x89\xF0\x9F\x98\x80\xC3\x9F");
	del(d, 2, 2, NULL); /* both emoji */
	assert_doc_text(d, "ab\xC3\x9F");
	assert_int_equal(crdt_doc_length(d), 3);
	assert_int_equal(crdt_doc_utf8_bytes(d), 4);

	/* boundary code points */
	ins(d, 3, "\x7F\xC2\x80\xDF\xBF\xE0\xA0\x80\xEF\xBF\xBF\xF0\x90\x80\x80\xF4\x8F\xBF\xBF",
	    NULL);
	assert_int_equal(crdt_doc_length(d), 10);
	del(d, 4, 5, NULL);
	assert_doc_text(d, "ab\xC3\x9F\x7F\xF4\x8F\xBF\xBF");
	assert_stats_plausible(d);
	crdt_batch_free(b);
	crdt_doc_free(d);
}

static void test_crdt_text_buffer(void **state)
{
	(void)state;
	crdt_doc *d = new_doc(1);
	ins(d, 0, "h\xC3\xA9llo", NULL);
	char buf[16];
	assert_int_equal(crdt_doc_text(d, NULL, 0), 6);
	memset(buf, '#', sizeof buf);
	assert_int_equal(crdt_doc_text(d, buf, 5), 6);
	for (size_t i = 0; i < sizeof buf; i++)
		assert_int_equal(buf[i], '#');
	assert_int_equal(crdt_doc_text(d, buf, 0), 6);
	assert_int_equal(buf[0], '#');
	assert_int_equal(crdt_doc_text(d, buf, 6), 6);
	assert_memory_equal(buf, "h\xC3\xA9llo", 6);
	assert_int_equal(buf[6], '#');
	memset(buf, '#', sizeof buf);
	assert_int_equal(crdt_doc_text(d, buf, sizeof buf), 6);
	assert_memory_equal(buf, "h\xC3\xA9llo", 6);
	crdt_doc_free(d);
}

/* ---- apply ---------------------------------------------------------------------- */

static void test_crdt_apply_converges(void **state)
{
	(void)state;
	crdt_doc *a = new_doc(1), *b = new_doc(2);
	crdt_batch *ba = new_batch(), *bb = new_batch();
	ins(a, 0, "hello world", ba);
	del(a, 5, 1, ba);
	ins(a, 5, " \xF0\x9F\x98\x80 ", ba);
	ins(a, 0, "\xE4\xB8\xAD", ba);
	del(a, 9, 3, ba);
	apply_batch(b, ba, CRDT_OK);
	assert_same_text(a, b);
	assert_same_version(a, b);
	assert_int_equal(crdt_doc_clock(b), crdt_doc_clock(a));

	/* b edits, a follows */
	ins(b, 2, "XYZ", bb);
	del(b, 0, 1, bb);
	apply_batch(a, bb, CRDT_OK);
	assert_same_text(a, b);

	/* concurrent edits on both sides */
	crdt_batch_clear(ba);
	crdt_batch_clear(bb);
	ins(a, 1, "[a]", ba);
	del(a, 4, 2, ba);
	ins(b, 1, "[b]", bb);
	del(b, 6, 1, bb);
	ins(b, crdt_doc_length(b), "$", bb);
	apply_batch(a, bb, CRDT_OK);
	apply_batch(b, ba, CRDT_OK);
	assert_same_text(a, b);
	assert_same_version(a, b);
	assert_stats_plausible(a);
	assert_stats_plausible(b);
	crdt_batch_free(ba);
	crdt_batch_free(bb);
	crdt_doc_free(a);
	crdt_doc_free(b);
}

static void test_crdt_apply_duplicate(void **state)
{
	(void)state;
	crdt_doc *a = new_doc(1), *b = new_doc(2);
	crdt_batch *ba = new_batch();
	ins(a, 0, "abcdef", ba);
	const crdt_op *op = crdt_batch_get(ba, 0);
	doc_state s;

	/* own op echoed back */
	state_take(a, &s);
	assert_status(crdt_doc_apply(a, op, NULL, NULL), CRDT_DUPLICATE);
	state_assert_same(a, &s);

	/* a prefix first, then the whole op: applied for its new part */
	crdt_op pre = tu_op_slice(op, 0, 2);
	assert_ok(crdt_doc_apply(b, &pre, NULL, NULL));
	assert_doc_text(b, "ab");
	assert_int_equal(crdt_doc_seen(b, 1), 2);
	assert_ok(crdt_doc_apply(b, op, NULL, NULL));
	assert_doc_text(b, "abcdef");
	assert_int_equal(crdt_doc_seen(b, 1), 6);
	assert_check(b);
	state_take(b, &s);
	assert_status(crdt_doc_apply(b, op, NULL, NULL), CRDT_DUPLICATE);
	crdt_op mid = tu_op_slice(op, 2, 3);
	assert_status(crdt_doc_apply(b, &mid, NULL, NULL), CRDT_DUPLICATE);
	assert_status(crdt_doc_apply(b, &pre, NULL, NULL), CRDT_DUPLICATE);
	state_assert_same(b, &s);

	/* deletes: duplicate and idempotent */
	crdt_batch_clear(ba);
	del(a, 1, 3, ba); /* "bcd" */
	assert_doc_text(a, "aef");
	crdt_batch *bb = new_batch();
	del(b, 2, 2, bb); /* b concurrently deletes "cd" */
	assert_doc_text(b, "abef");
	apply_batch(b, ba, CRDT_OK);
	assert_doc_text(b, "aef");
	assert_int_equal(crdt_doc_seen(b, 1), 9);
	state_take(b, &s);
	apply_batch(b, ba, CRDT_DUPLICATE);
	state_assert_same(b, &s);
	apply_batch(a, bb, CRDT_OK);
	assert_same_text(a, b);
	assert_same_version(a, b);
	state_take(a, &s);
	apply_batch(a, bb, CRDT_DUPLICATE);
	apply_batch(a, ba, CRDT_DUPLICATE);
	state_assert_same(a, &s);
	crdt_batch_free(ba);
	crdt_batch_free(bb);
	crdt_doc_free(a);
	crdt_doc_free(b);
}

/* o1: A types "abc"; o2: B inserts "X" after 'a'; o3: C inserts "Y" after X;
 * d4: A deletes X. Causal order o1 < o2 < o3, o2 < d4. */
typedef struct chain {
	crdt_op o1, o2, o3, d4;
	char *ref_text;
	tu_oplog log;
} chain;

static void chain_make(chain *c)
{
	crdt_doc *a = new_doc(1), *b = new_doc(2), *cc = new_doc(3);
	crdt_batch *t = new_batch();
	tu_oplog_init(&c->log);
	ins(a, 0, "abc", t);
	apply_batch(b, t, CRDT_OK);
	apply_batch(cc, t, CRDT_OK);
	tu_oplog_push_batch(&c->log, t);
	crdt_batch_clear(t);
	ins(b, 1, "X", t);
	apply_batch(a, t, CRDT_OK);
	apply_batch(cc, t, CRDT_OK);
	tu_oplog_push_batch(&c->log, t);
	crdt_batch_clear(t);
	ins(cc, 2, "Y", t);
	tu_oplog_push_batch(&c->log, t);
	crdt_batch_clear(t);
	del(a, 1, 1, t);
	tu_oplog_push_batch(&c->log, t);
	assert_int_equal(c->log.len, 4);
	c->o1 = c->log.ops[0];
	c->o2 = c->log.ops[1];
	c->o3 = c->log.ops[2];
	c->d4 = c->log.ops[3];
	apply_batch(cc, t, CRDT_OK);
	c->ref_text = tu_doc_text(cc, NULL);
	assert_string_equal(c->ref_text, "aYbc");
	crdt_batch_free(t);
	crdt_doc_free(a);
	crdt_doc_free(b);
	crdt_doc_free(cc);
}

static void chain_free(chain *c)
{
	free(c->ref_text);
	tu_oplog_free(&c->log);
}

static void test_crdt_apply_missing_dependency(void **state)
{
	(void)state;
	chain c;
	chain_make(&c);
	crdt_doc *d = new_doc(9); /* max_pending_ops = 0 */
	doc_state s;
	state_take(d, &s);
	assert_status(crdt_doc_apply(d, &c.o2, NULL, NULL), CRDT_EMISSING);
	assert_status(crdt_doc_apply(d, &c.o3, NULL, NULL), CRDT_EMISSING);
	assert_status(crdt_doc_apply(d, &c.d4, NULL, NULL), CRDT_EMISSING);
	state_assert_same(d, &s);
	assert_int_equal(crdt_doc_pending(d), 0);
	assert_ok(crdt_doc_apply(d, &c.o1, NULL, NULL));
	state_take(d, &s);
	assert_status(crdt_doc_apply(d, &c.o3, NULL, NULL), CRDT_EMISSING);
	assert_status(crdt_doc_apply(d, &c.d4, NULL, NULL), CRDT_EMISSING);
	state_assert_same(d, &s);
	assert_ok(crdt_doc_apply(d, &c.o2, NULL, NULL));
	assert_ok(crdt_doc_apply(d, &c.o3, NULL, NULL));
	assert_ok(crdt_doc_apply(d, &c.d4, NULL, NULL));
	assert_doc_text(d, c.ref_text);
	assert_check(d);

	/* A later op of a replica whose earlier counters are unknown. */
	crdt_doc *e = new_doc(10);
	crdt_op late = mk_ins(4, 5, 100, "q", NOID, NOID);
	assert_status(crdt_doc_apply(e, &late, NULL, NULL), CRDT_EMISSING);
	assert_int_equal(crdt_doc_length(e), 0);
	assert_int_equal(crdt_doc_seen(e, 4), 0);
	crdt_doc_free(e);
	crdt_doc_free(d);
	chain_free(&c);
}

static void test_crdt_apply_pending_then_applied(void **state)
{
	(void)state;
	chain c;
	chain_make(&c);
	crdt_doc *d = new_doc_pending(9, 10, 1 << 20);
	mirror m = {0};
	tu_text_init(&m.t);

	/* reverse causal order */
	assert_status(crdt_doc_apply(d, &c.d4, mirror_fn, &m), CRDT_PENDING);
	assert_int_equal(crdt_doc_pending(d), 1);
	assert_status(crdt_doc_apply(d, &c.o3, mirror_fn, &m), CRDT_PENDING);
	assert_int_equal(crdt_doc_pending(d), 2);
	assert_status(crdt_doc_apply(d, &c.o2, mirror_fn, &m), CRDT_PENDING);
	assert_int_equal(crdt_doc_pending(d), 3);
	assert_int_equal(crdt_doc_length(d), 0);
	assert_int_equal(crdt_doc_seen(d, 1), 0);
	assert_int_equal(crdt_doc_seen(d, 2), 0);
	assert_int_equal(crdt_doc_seen(d, 3), 0);
	assert_int_equal(m.patches, 0);
	{
		size_t nvv;
		crdt_vv_entry *vv = tu_doc_version(d, &nvv);
		assert_int_equal(nvv, 0);
		free(vv);
		assert_check(d);
	}

	assert_ok(crdt_doc_apply(d, &c.o1, mirror_fn, &m));
	assert_int_equal(crdt_doc_pending(d), 0);
	assert_check(d);
	assert_doc_text(d, c.ref_text);
	assert_int_equal(m.bad, 0);
	assert_true(tu_doc_equals_text(d, &m.t));
	assert_int_equal(crdt_doc_seen(d, 1), 4);
	assert_int_equal(crdt_doc_seen(d, 2), 1);
	assert_int_equal(crdt_doc_seen(d, 3), 1);
	/* all of them are now duplicates */
	for (size_t i = 0; i < c.log.len; i++)
		assert_status(crdt_doc_apply(d, &c.log.ops[i], NULL, NULL), CRDT_DUPLICATE);

	/* a partial order: o1, then d4 (held until o2), then o2 */
	crdt_doc *e = new_doc_pending(10, 10, 1 << 20);
	assert_ok(crdt_doc_apply(e, &c.o1, NULL, NULL));
	assert_status(crdt_doc_apply(e, &c.d4, NULL, NULL), CRDT_PENDING);
	assert_doc_text(e, "abc");
	assert_ok(crdt_doc_apply(e, &c.o2, NULL, NULL));
	assert_int_equal(crdt_doc_pending(e), 0);
	assert_doc_text(e, "abc");
	assert_ok(crdt_doc_apply(e, &c.o3, NULL, NULL));
	assert_doc_text(e, c.ref_text);
	assert_check(e);

	tu_text_free(&m.t);
	crdt_doc_free(e);
	crdt_doc_free(d);
	chain_free(&c);
}

static void test_crdt_apply_pending_full(void **state)
{
	(void)state;
	chain c;
	chain_make(&c);
	/* bound on ops */
	crdt_doc *d = new_doc_pending(9, 2, 1 << 20);
	assert_status(crdt_doc_apply(d, &c.d4, NULL, NULL), CRDT_PENDING);
	assert_status(crdt_doc_apply(d, &c.o3, NULL, NULL), CRDT_PENDING);
	doc_state s;
	state_take(d, &s);
	assert_status(crdt_doc_apply(d, &c.o2, NULL, NULL), CRDT_EPENDING_FULL);
	state_assert_same(d, &s);
	assert_int_equal(crdt_doc_pending(d), 2);
	assert_ok(crdt_doc_apply(d, &c.o1, NULL, NULL));
	assert_int_equal(crdt_doc_pending(d), 2); /* both still wait for o2 */
	assert_doc_text(d, "abc");
	assert_ok(crdt_doc_apply(d, &c.o2, NULL, NULL));
	assert_int_equal(crdt_doc_pending(d), 0);
	assert_doc_text(d, c.ref_text);
	assert_check(d);
	crdt_doc_free(d);

	/* bound on bytes of held text: 3 + 3 > 5 */
	crdt_doc *a = new_doc(1), *b = new_doc(2);
	crdt_batch *t1 = new_batch(), *t2 = new_batch(), *t3 = new_batch();
	ins(a, 0, "base", t1);
	apply_batch(b, t1, CRDT_OK);
	ins(a, 4, "abc", t2);
	ins(b, 0, "xyz", t3);
	d = new_doc_pending(9, 100, 5);
	assert_status(crdt_doc_apply(d, crdt_batch_get(t2, 0), NULL, NULL), CRDT_PENDING);
	state_take(d, &s);
	assert_status(crdt_doc_apply(d, crdt_batch_get(t3, 0), NULL, NULL), CRDT_EPENDING_FULL);
	state_assert_same(d, &s);
	apply_batch(d, t1, CRDT_OK);
	assert_int_equal(crdt_doc_pending(d), 0);
	apply_batch(d, t3, CRDT_OK);
	assert_doc_text(d, "xyzbaseabc");
	crdt_batch_free(t1);
	crdt_batch_free(t2);
	crdt_batch_free(t3);
	crdt_doc_free(a);
	crdt_doc_free(b);
	crdt_doc_free(d);
	chain_free(&c);
}

/* max_pending_bytes 0 means 1 MiB of held text. */
static void test_crdt_apply_pending_default_bytes(void **state)
{
	(void)state;
	crdt_doc *a = new_doc(1);
	crdt_batch *t1 = new_batch(), *t2 = new_batch(), *t3 = new_batch();
	ins(a, 0, "base", t1);
	size_t big = (size_t)2 << 20; /* 2 MiB of text */
	char *text = malloc(big + 1);
	assert_non_null(text);
	memset(text, 'q', big);
	text[big] = 0;
	assert_ok(crdt_doc_insert(a, 4, text, big, t2));
	ins(a, 2, "small", t3);
	crdt_doc *d = new_doc_pending(9, 100, 0);
	doc_state s;
	state_take(d, &s);
	assert_status(crdt_doc_apply(d, crdt_batch_get(t2, 0), NULL, NULL), CRDT_EPENDING_FULL);
	state_assert_same(d, &s);
	assert_status(crdt_doc_apply(d, crdt_batch_get(t3, 0), NULL, NULL), CRDT_PENDING);
	apply_batch(d, t1, CRDT_OK);
	/* "small" also follows the big op in replica 1's counters */
	assert_int_equal(crdt_doc_pending(d), 1);
	apply_batch(d, t2, CRDT_OK);
	assert_int_equal(crdt_doc_pending(d), 0);
	assert_same_text(a, d);
	free(text);
	crdt_batch_free(t1);
	crdt_batch_free(t2);
	crdt_batch_free(t3);
	crdt_doc_free(a);
	crdt_doc_free(d);
}

/* A clock pushed near its limit by a remote op: local edits that would
 * overflow it fail with CRDT_ELIMIT and change nothing. */
static void test_crdt_edit_clock_limit(void **state)
{
	(void)state;
	crdt_doc *d = new_doc(1);
	crdt_batch *b = new_batch();
	ins(d, 0, "abc", NULL);
	/* crdt.h does not say where Lamport times end: 2^32 or, like counters,
	 * CRDT_MAX_COUNTER. Take the clock to 200 below whichever it is. */
	uint32_t top = UINT32_MAX - 200;
	crdt_op far = mk_ins(2, 0, top, "x", NOID, NOID);
	int st = crdt_doc_apply(d, &far, NULL, NULL);
	if (st == CRDT_EINVAL || st == CRDT_ELIMIT) {
		top = CRDT_MAX_COUNTER - 200;
		far.lamport = top;
		st = crdt_doc_apply(d, &far, NULL, NULL);
	}
	assert_ok(st);
	assert_int_equal(crdt_doc_clock(d), top + 1);
	ins(d, 0, "y", NULL); /* room for a little more */
	char text[512];
	memset(text, 'z', sizeof text);
	doc_state s;
	state_take(d, &s);
	assert_status(crdt_doc_insert(d, 1, text, sizeof text, b), CRDT_ELIMIT);
	state_assert_same(d, &s);
	assert_int_equal(crdt_batch_count(b), 0);
	for (int i = 0; i < 15; i++) /* 150 of the ~198 Lamport times left */
		ins(d, 0, "0123456789", NULL);
	state_take(d, &s);
	assert_status(crdt_doc_delete(d, 0, crdt_doc_length(d), b), CRDT_ELIMIT);
	state_assert_same(d, &s);
	assert_int_equal(crdt_batch_count(b), 0);
	crdt_batch_free(b);
	crdt_doc_free(d);
}

static void test_crdt_apply_malformed(void **state)
{
	(void)state;
	crdt_doc *a = new_doc(1);
	crdt_batch *t = new_batch();
	ins(a, 0, "abc", t); /* (1,0..2) */
	del(a, 2, 1, t);     /* (1,3) deletes 'c' */
	const uint32_t L0 = crdt_batch_get(t, 0)->lamport;
	const uint32_t LD = crdt_batch_get(t, 1)->lamport;
	crdt_doc *x = new_doc(9);
	apply_batch(x, t, CRDT_OK);
	assert_doc_text(x, "ab");

	const crdt_replica Z = 50;
	struct {
		const char *what;
		crdt_op op;
		int want;
	} cases[40];
	size_t n = 0;
#define CASE(w, o, s) (cases[n].what = (w), cases[n].op = (o), cases[n].want = (s), n++)
	crdt_op o;
	o = mk_ins(Z, 0, 100, "q", NOID, NOID);
	o.len = 0;
	o.text = "";
	o.text_bytes = 0;
	CASE("insert of length 0", o, CRDT_EINVAL);
	CASE("delete of length 0", mk_del(Z, 0, 100, ID(1, 0), 0), CRDT_EINVAL);
	o = mk_ins(Z, 0, 100, "q", NOID, NOID);
	o.kind = 0;
	CASE("kind 0", o, CRDT_EINVAL);
	o.kind = 3;
	CASE("kind 3", o, CRDT_EINVAL);
	o.kind = 255;
	CASE("kind 255", o, CRDT_EINVAL);
	o = mk_ins(Z, 0, 100, "ab", NOID, NOID);
	o.len = 3;
	CASE("text shorter than len", o, CRDT_EINVAL);
	o.len = 1;
	CASE("text longer than len", o, CRDT_EINVAL);
	o = mk_ins(Z, 0, 100, "abc", NOID, NOID);
	o.text_bytes = 2;
	CASE("text_bytes cut, len 3", o, CRDT_EINVAL);
	o = mk_ins(Z, 0, 100, "\xC3\xA9", NOID, NOID);
	o.text_bytes = 1;
	CASE("text_bytes cuts a code point", o, CRDT_EUTF8);
	o = mk_ins(Z, 0, 100, "a\xC0\x80", NOID, NOID);
	o.len = 2;
	CASE("overlong in text", o, CRDT_EUTF8);
	o = mk_ins(Z, 0, 100, "\xED\xA0\x80", NOID, NOID);
	o.len = 1;
	CASE("surrogate in text", o, CRDT_EUTF8);
	o = mk_ins(Z, 0, 100, "\xF4\x90\x80\x80", NOID, NOID);
	o.len = 1;
	CASE("> U+10FFFF in text", o, CRDT_EUTF8);
	o = mk_ins(Z, 0, 100, "x\xE2\x82", NOID, NOID);
	o.len = 2;
	CASE("truncated sequence in text", o, CRDT_EUTF8);
	CASE("Lamport equal to left origin's", mk_ins(Z, 0, L0, "q", ID(1, 0), ID(1, 1)),
	     CRDT_EINVAL);
	CASE("Lamport equal to right origin's", mk_ins(Z, 0, L0 + 1, "q", ID(1, 0), ID(1, 1)),
	     CRDT_EINVAL);
	if (L0 > 0)
		CASE("Lamport before left origin's", mk_ins(Z, 0, L0 - 1, "q", ID(1, 0), NOID),
		     CRDT_EINVAL);
	CASE("delete Lamport equal to target's", mk_del(Z, 0, L0 + 1, ID(1, 1), 1), CRDT_EINVAL);
	CASE("Lamport not after the replica's previous op", mk_ins(1, 4, LD, "q", NOID, NOID),
	     CRDT_EINVAL);
	CASE("counter overflow", mk_ins(Z, CRDT_MAX_COUNTER - 1, 100, "abcd", NOID, NOID),
	     CRDT_EINVAL);
	CASE("counter wraps 32 bits", mk_ins(Z, UINT32_MAX, 100, "ab", NOID, NOID), CRDT_EINVAL);
	CASE("delete counter overflow", mk_del(Z, CRDT_MAX_COUNTER, 100, ID(1, 0), 2), CRDT_EINVAL);
	CASE("Lamport overflow", mk_ins(Z, 0, UINT32_MAX, "ab", NOID, NOID), CRDT_EINVAL);
	CASE("delete Lamport overflow", mk_del(Z, 0, UINT32_MAX, ID(1, 0), 2), CRDT_EINVAL);
	CASE("delete longer than CRDT_MAX_OP_LEN", mk_del(Z, 0, 100, ID(1, 0), CRDT_MAX_OP_LEN + 1),
	     CRDT_EINVAL);
	CASE("delete target counter overflow", mk_del(Z, 0, 100, ID(1, UINT32_MAX), 2),
	     CRDT_EINVAL);
	CASE("left origin is a delete op's id", mk_ins(Z, 0, 100, "q", ID(1, 3), NOID),
	     CRDT_EINVAL);
	CASE("right origin is a delete op's id", mk_ins(Z, 0, 100, "q", ID(1, 1), ID(1, 3)),
	     CRDT_EINVAL);
	CASE("delete of a delete op's id", mk_del(Z, 0, 100, ID(1, 3), 1), CRDT_EINVAL);
	CASE("replica 0", mk_ins(CRDT_NO_REPLICA, 0, 100, "q", NOID, NOID), CRDT_EINVAL);
#undef CASE
	assert_true(n <= sizeof cases / sizeof cases[0]);

	for (size_t i = 0; i < n; i++) {
		doc_state s;
		state_take(x, &s);
		int st = crdt_doc_apply(x, &cases[i].op, NULL, NULL);
		if (st != cases[i].want)
			fail_msg("%s: status %d (%s), expected %d (%s)", cases[i].what, st,
				 crdt_strerror(st), cases[i].want, crdt_strerror(cases[i].want));
		state_assert_same(x, &s);
	}
	/* The same malformed ops are rejected, not held, when pending is on. */
	crdt_doc *y = new_doc_pending(10, 100, 1 << 20);
	apply_batch(y, t, CRDT_OK);
	for (size_t i = 0; i < n; i++) {
		doc_state s;
		state_take(y, &s);
		int st = crdt_doc_apply(y, &cases[i].op, NULL, NULL);
		if (st >= 0)
			fail_msg("%s (pending on): status %d (%s), expected an error",
				 cases[i].what, st, crdt_strerror(st));
		state_assert_same(y, &s);
	}
	assert_int_equal(crdt_doc_pending(y), 0);

	/* a well-formed op still applies afterwards */
	crdt_op good = mk_ins(Z, 0, L0 + 2, "q", ID(1, 0), ID(1, 1));
	assert_ok(crdt_doc_apply(x, &good, NULL, NULL));
	assert_doc_text(x, "aqb");
	assert_check(x);
	crdt_doc_free(y);
	crdt_doc_free(x);
	crdt_doc_free(a);
	crdt_batch_free(t);
}

static void test_crdt_apply_patches(void **state)
{
	(void)state;
	/* Three replicas edit concurrently; each mirrors its text from its own
	 * local edits and the patches of remote ops. */
	enum { R = 3 };
	crdt_doc *d[R];
	mirror m[R];
	tu_oplog log;
	size_t seen[R];
	tu_oplog_init(&log);
	tu_rng rng;
	tu_rng_seed(&rng, 42);
	crdt_batch *b = new_batch();
	for (int i = 0; i < R; i++) {
		d[i] = new_doc_pending((crdt_replica)(i + 1), 1000, 1 << 20);
		memset(&m[i], 0, sizeof m[i]);
		tu_text_init(&m[i].t);
		seen[i] = 0;
	}
	for (int round = 0; round < 400; round++) {
		int i = (int)tu_rng_below(&rng, R);
		if (tu_rng_chance(&rng, 70)) {
			size_t len = crdt_doc_length(d[i]);
			crdt_batch_clear(b);
			if (len == 0 || tu_rng_chance(&rng, 60)) {
				char buf[64];
				size_t off = 0;
				unsigned k = 1 + (unsigned)tu_rng_below(&rng, 6);
				for (unsigned j = 0; j < k; j++)
					off += tu_utf8_put(tu_random_cp(&rng), buf + off);
				buf[off] = 0;
				mins(d[i], &m[i], tu_rng_below(&rng, len + 1), buf, b);
			} else {
				size_t pos = tu_rng_below(&rng, len);
				size_t k = 1 + tu_rng_below(&rng, 8);
				if (k > len - pos)
					k = len - pos;
				mdel(d[i], &m[i], pos, k, b);
			}
			tu_oplog_push_batch(&log, b);
		} else {
			/* deliver some of the log to i, possibly out of order */
			size_t n = tu_rng_below(&rng, log.len - seen[i] + 1);
			for (size_t k = 0; k < n; k++) {
				const crdt_op *op = &log.ops[seen[i] + k];
				if (op->id.replica == (crdt_replica)(i + 1))
					continue;
				int st = crdt_doc_apply(d[i], op, mirror_fn, &m[i]);
				assert_true(st == CRDT_OK || st == CRDT_PENDING);
				assert_int_equal(m[i].bad, 0);
				assert_true(tu_doc_equals_text(d[i], &m[i].t));
			}
			seen[i] += n;
		}
	}
	for (int i = 0; i < R; i++) {
		for (; seen[i] < log.len; seen[i]++)
			if (log.ops[seen[i]].id.replica != (crdt_replica)(i + 1))
				mapply(d[i], &m[i], &log.ops[seen[i]], CRDT_OK);
		assert_int_equal(crdt_doc_pending(d[i]), 0);
		assert_true(tu_doc_equals_text(d[i], &m[i].t));
		assert_check(d[i]);
	}
	for (int i = 1; i < R; i++) {
		assert_same_text(d[0], d[i]);
		assert_same_version(d[0], d[i]);
	}
	for (int i = 0; i < R; i++) {
		assert_true(m[i].patches > 0);
		tu_text_free(&m[i].t);
		crdt_doc_free(d[i]);
	}
	tu_oplog_free(&log);
	crdt_batch_free(b);
}

/* Patches of a single remote op that deletes across several runs and
 * replicas, and of a remote insert into the middle of a run. */
static void test_crdt_apply_patches_shape(void **state)
{
	(void)state;
	crdt_doc *a = new_doc(1), *b = new_doc(2);
	crdt_batch *t = new_batch();
	mirror m = {0};
	tu_text_init(&m.t);
	ins(a, 0, "0123456789", t);
	for (size_t i = 0; i < crdt_batch_count(t); i++)
		mapply(b, &m, crdt_batch_get(t, i), CRDT_OK);
	crdt_batch_clear(t);
	mins(b, &m, 5, "\xC3\xA9\xC3\xA9", NULL);
	/* a deletes 3..8 (on its side "34567"), b has é é inside that span */
	del(a, 3, 5, t);
	for (size_t i = 0; i < crdt_batch_count(t); i++)
		mapply(b, &m, crdt_batch_get(t, i), CRDT_OK);
	assert_doc_text(b, "012\xC3\xA9\xC3\xA9"
			   "89");
	crdt_batch_clear(t);
	ins(a, 1, "\xF0\x9F\x98\x80!", t);
	for (size_t i = 0; i < crdt_batch_count(t); i++)
		mapply(b, &m, crdt_batch_get(t, i), CRDT_OK);
	assert_doc_text(b, "0\xF0\x9F\x98\x80!12\xC3\xA9\xC3\xA9"
			   "89");
	tu_text_free(&m.t);
	crdt_batch_free(t);
	crdt_doc_free(a);
	crdt_doc_free(b);
}

/* ---- versions --------------------------------------------------------------------- */

static void test_crdt_version_seen_clock(void **state)
{
	(void)state;
	crdt_doc *a = new_doc(5), *b = new_doc(3);
	crdt_batch *t = new_batch();
	assert_int_equal(crdt_doc_seen(a, 5), 0);
	assert_int_equal(crdt_doc_seen(a, 77), 0);
	uint32_t c = crdt_doc_clock(a);
	ins(a, 0, "abc", NULL);
	assert_int_equal(crdt_doc_seen(a, 5), 3);
	assert_int_equal(crdt_doc_clock(a), c + 3);
	ins(b, 0, "xy", t);
	apply_batch(a, t, CRDT_OK);
	assert_int_equal(crdt_doc_seen(a, 3), 2);

	crdt_vv_entry vv[8];
	memset(vv, 0xAB, sizeof vv);
	size_t n = crdt_doc_version(a, vv, 8);
	assert_true(n >= 2 && n <= 8);
	for (size_t i = 1; i < n; i++)
		assert_true(vv[i - 1].replica < vv[i].replica);
	size_t found = 0;
	for (size_t i = 0; i < n; i++) {
		if (vv[i].replica == 3) {
			assert_int_equal(vv[i].next, 2);
			found++;
		} else if (vv[i].replica == 5) {
			assert_int_equal(vv[i].next, 3);
			found++;
		} else {
			assert_int_equal(vv[i].next, 0);
		}
	}
	assert_int_equal(found, 2);
	/* cap smaller than the count: writes cap entries, returns the count */
	crdt_vv_entry one[3];
	memset(one, 0xAB, sizeof one);
	assert_int_equal(crdt_doc_version(a, one, 1), n);
	assert_int_equal(one[0].replica, vv[0].replica);
	assert_int_equal(one[0].next, vv[0].next);
	{
		crdt_vv_entry pat;
		memset(&pat, 0xAB, sizeof pat);
		assert_memory_equal(&one[1], &pat, sizeof pat);
		assert_memory_equal(&one[2], &pat, sizeof pat);
	}
	assert_int_equal(crdt_doc_version(a, NULL, 0), n);

	/* clock advances past a remote op's Lamport times */
	uint32_t before = crdt_doc_clock(a);
	crdt_op far = mk_ins(9, 0, before + 1000, "pq", NOID, NOID);
	assert_ok(crdt_doc_apply(a, &far, NULL, NULL));
	assert_int_equal(crdt_doc_clock(a), before + 1002);
	crdt_batch_clear(t);
	ins(a, 0, "z", t);
	assert_int_equal(crdt_batch_get(t, 0)->lamport, before + 1002);
	/* an old Lamport time leaves the clock alone */
	before = crdt_doc_clock(a);
	crdt_op old = mk_ins(11, 0, 0, "o", NOID, NOID);
	assert_ok(crdt_doc_apply(a, &old, NULL, NULL));
	assert_int_equal(crdt_doc_clock(a), before);
	/* a delete of remote units also moves the clock */
	crdt_op dl = mk_del(12, 0, before + 50, ID(9, 0), 2);
	assert_ok(crdt_doc_apply(a, &dl, NULL, NULL));
	assert_int_equal(crdt_doc_clock(a), before + 52);
	assert_int_equal(crdt_doc_seen(a, 12), 2);
	assert_check(a);
	crdt_batch_free(t);
	crdt_doc_free(a);
	crdt_doc_free(b);
}

/* ---- ops_since -------------------------------------------------------------------- */

/* Units covered by a batch, checked against [lo[r], hi[r]) for each replica. */
static void assert_batch_covers(const crdt_batch *b, const crdt_vv_entry *lo, size_t nlo,
				const crdt_vv_entry *hi, size_t nhi)
{
	for (size_t h = 0; h < nhi; h++) {
		crdt_replica r = hi[h].replica;
		uint32_t from = 0;
		for (size_t l = 0; l < nlo; l++)
			if (lo[l].replica == r)
				from = lo[l].next;
		if (from >= hi[h].next)
			from = hi[h].next;
		size_t span = hi[h].next - from;
		unsigned char *cov = calloc(span + 1, 1);
		assert_non_null(cov);
		for (size_t i = 0; i < crdt_batch_count(b); i++) {
			const crdt_op *op = crdt_batch_get(b, i);
			if (op->id.replica != r)
				continue;
			for (uint32_t k = 0; k < op->len; k++) {
				uint32_t cnt = op->id.counter + k;
				if (cnt < from || cnt >= hi[h].next)
					fail_msg("ops_since sent (%llu,%u), outside [%u,%u)",
						 (unsigned long long)r, cnt, from, hi[h].next);
				if (cov[cnt - from]++)
					fail_msg("ops_since sent (%llu,%u) twice",
						 (unsigned long long)r, cnt);
			}
		}
		for (size_t k = 0; k < span; k++)
			if (!cov[k])
				fail_msg("ops_since missed (%llu,%zu)", (unsigned long long)r,
					 from + k);
		free(cov);
	}
	/* nothing from replicas the source does not know */
	for (size_t i = 0; i < crdt_batch_count(b); i++) {
		int known = 0;
		for (size_t h = 0; h < nhi; h++)
			known |= crdt_batch_get(b, i)->id.replica == hi[h].replica;
		assert_true(known);
	}
}

static void test_crdt_ops_since_empty_version(void **state)
{
	(void)state;
	crdt_doc *a = dg_build(7, 3, 300, NULL, NULL);
	crdt_batch *out = new_batch();
	assert_ok(crdt_doc_ops_since(a, NULL, 0, out));
	size_t nhi;
	crdt_vv_entry *hi = tu_doc_version(a, &nhi);
	assert_batch_covers(out, NULL, 0, hi, nhi);
	crdt_doc *c = new_doc(99); /* no pending: order must be causal */
	apply_batch(c, out, CRDT_OK);
	assert_same_text(a, c);
	assert_same_version(a, c);
	assert_int_equal(crdt_doc_pending(c), 0);
	assert_stats_plausible(c);
	free(hi);
	crdt_batch_free(out);
	crdt_doc_free(a);
	crdt_doc_free(c);
}

static void test_crdt_ops_since_partial_version(void **state)
{
	(void)state;
	tu_oplog log;
	tu_oplog_init(&log);
	crdt_doc *a = dg_build(11, 3, 200, NULL, &log);
	/* b gets the first half of the history */
	crdt_doc *b = new_doc(50);
	for (size_t i = 0; i < log.len / 2; i++) {
		int st = crdt_doc_apply(b, &log.ops[i], NULL, NULL);
		assert_true(st == CRDT_OK);
	}
	size_t nlo, nhi;
	crdt_vv_entry *lo = tu_doc_version(b, &nlo);
	crdt_vv_entry *hi = tu_doc_version(a, &nhi);
	crdt_batch *out = new_batch();
	assert_ok(crdt_doc_ops_since(a, lo, nlo, out));
	assert_batch_covers(out, lo, nlo, hi, nhi);

	/* the same with the vector reversed and an unknown replica added */
	crdt_vv_entry rev[16];
	assert_true(nlo < 15);
	for (size_t i = 0; i < nlo; i++)
		rev[i] = lo[nlo - 1 - i];
	rev[nlo].replica = 12345;
	rev[nlo].next = 7;
	crdt_batch *out2 = new_batch();
	assert_ok(crdt_doc_ops_since(a, rev, nlo + 1, out2));
	assert_batch_covers(out2, lo, nlo, hi, nhi);

	apply_batch(b, out, CRDT_OK);
	assert_same_text(a, b);
	assert_same_version(a, b);

	/* up to date: nothing to send */
	crdt_batch_clear(out);
	assert_ok(crdt_doc_ops_since(a, hi, nhi, out));
	assert_int_equal(crdt_batch_count(out), 0);

	/* b is ahead: a sends only what b lacks (nothing), b sends its edit */
	crdt_batch *tb = new_batch();
	ins(b, 0, "ahead", tb);
	crdt_vv_entry *vb = tu_doc_version(b, &nlo);
	crdt_batch_clear(out);
	assert_ok(crdt_doc_ops_since(a, vb, nlo, out));
	assert_int_equal(crdt_batch_count(out), 0);
	crdt_batch_clear(out);
	assert_ok(crdt_doc_ops_since(b, hi, nhi, out));
	apply_batch(a, out, CRDT_OK);
	assert_same_text(a, b);
	assert_same_version(a, b);

	free(vb);
	free(lo);
	free(hi);
	crdt_batch_free(tb);
	crdt_batch_free(out);
	crdt_batch_free(out2);
	tu_oplog_free(&log);
	crdt_doc_free(a);
	crdt_doc_free(b);
}

static void test_crdt_ops_since_collected(void **state)
{
	(void)state;
	crdt_doc *a = new_doc(1);
	crdt_doc *early = new_doc(4);
	crdt_batch *t = new_batch();
	ins(a, 0, "hello cruel world", t); /* (1,0..16) */
	apply_batch(early, t, CRDT_OK);	   /* early has the live text */
	size_t nearly;
	crdt_vv_entry *vearly = tu_doc_version(early, &nearly);
	del(a, 6, 6, NULL); /* "cruel " collected */
	ins(a, 0, "temp", NULL);
	del(a, 0, 4, NULL); /* a whole run deleted */
	assert_doc_text(a, "hello world");

	crdt_batch *out = new_batch();
	assert_ok(crdt_doc_ops_since(a, NULL, 0, out));
	size_t null_units = 0, text_units = 0;
	for (size_t i = 0; i < crdt_batch_count(out); i++) {
		const crdt_op *op = crdt_batch_get(out, i);
		if (op->kind != CRDT_OP_INSERT)
			continue;
		if (op->text) {
			text_units += op->len;
		} else {
			null_units += op->len;
			assert_int_equal(op->text_bytes, 0);
		}
	}
	/* the live text is sent with its content; the deleted units are sent
	 * as collected inserts (garbage collection frees deleted content) */
	assert_true(text_units >= 11);
	assert_int_equal(text_units + null_units, 21);
	if (null_units == 0)
		fail_msg("no collected (text NULL) inserts: deleted content was "
			 "not collected");

	crdt_doc *c = new_doc(2);
	mirror m = {0};
	tu_text_init(&m.t);
	for (size_t i = 0; i < crdt_batch_count(out); i++)
		mapply(c, &m, crdt_batch_get(out, i), CRDT_OK);
	assert_same_text(a, c);
	assert_same_version(a, c);
	assert_stats_plausible(c);

	/* early has the content live: it gets the deletes and the rest */
	crdt_batch_clear(out);
	assert_ok(crdt_doc_ops_since(a, vearly, nearly, out));
	for (size_t i = 0; i < crdt_batch_count(out); i++) {
		int st = crdt_doc_apply(early, crdt_batch_get(out, i), NULL, NULL);
		assert_true(st == CRDT_OK);
		assert_check(early);
	}
	assert_same_text(a, early);
	assert_same_version(a, early);

	/* c edits next to the collected tombstones; a and early merge it */
	crdt_batch_clear(t);
	mins(c, &m, 6, "X", t);
	mins(c, &m, 0, "Y", t);
	apply_batch(a, t, CRDT_OK);
	apply_batch(early, t, CRDT_OK);
	assert_same_text(a, c);
	assert_same_text(a, early);
	assert_doc_text(a, "Yhello Xworld");
	/* a concurrent insert at the same place on a */
	crdt_batch_clear(t);
	crdt_batch *tc = new_batch();
	ins(a, 7, "P", t);
	ins(c, 7, "Q", tc);
	apply_batch(c, t, CRDT_OK);
	apply_batch(early, t, CRDT_OK);
	apply_batch(a, tc, CRDT_OK);
	apply_batch(early, tc, CRDT_OK);
	assert_same_text(a, c);
	assert_same_text(a, early);
	tu_text_free(&m.t);
	free(vearly);
	crdt_batch_free(t);
	crdt_batch_free(tc);
	crdt_batch_free(out);
	crdt_doc_free(a);
	crdt_doc_free(c);
	crdt_doc_free(early);
}

/* ---- snapshots ---------------------------------------------------------------------- */

static uint8_t *encode(const crdt_doc *d, size_t *len)
{
	size_t bound = crdt_doc_encode_bound(d);
	uint8_t *buf = malloc(bound + 1);
	assert_non_null(buf);
	*len = 0;
	assert_ok(crdt_doc_encode(d, buf, bound, len));
	assert_true(*len > 0 && *len <= bound);
	assert_int_equal(buf[0], CRDT_SNAPSHOT_VERSION);
	/* exact-size copy so that ASan sees any read past the end */
	uint8_t *exact = malloc(*len);
	assert_non_null(exact);
	memcpy(exact, buf, *len);
	free(buf);
	return exact;
}

static void assert_same_doc(const crdt_doc *a, const crdt_doc *b, int same_replica)
{
	assert_same_text(a, b);
	assert_same_version(a, b);
	assert_int_equal(crdt_doc_clock(a), crdt_doc_clock(b));
	assert_int_equal(crdt_doc_length(a), crdt_doc_length(b));
	assert_int_equal(crdt_doc_utf8_bytes(a), crdt_doc_utf8_bytes(b));
	crdt_stats sa, sb;
	crdt_doc_stats(a, &sa);
	crdt_doc_stats(b, &sb);
	assert_int_equal(sa.length, sb.length);
	assert_int_equal(sa.utf8_bytes, sb.utf8_bytes);
	assert_int_equal(sa.units, sb.units);
	assert_int_equal(sa.deleted_units, sb.deleted_units);
	if (same_replica)
		assert_int_equal(sa.replicas, sb.replicas);
}

static void test_crdt_encode_decode_roundtrip(void **state)
{
	(void)state;
	crdt_doc *a = dg_build(3, 3, 400, NULL, NULL);
	assert_stats_plausible(a);
	size_t len;
	uint8_t *snap = encode(a, &len);
	int st = -999;
	crdt_doc *d = crdt_doc_decode(snap, len, 1, NULL, &st);
	if (!d)
		fail_msg("decode failed: %d (%s)", st, crdt_strerror(st));
	assert_check(d);
	assert_int_equal(crdt_doc_replica(d), 1);
	assert_int_equal(crdt_doc_pending(d), 0);
	assert_same_doc(a, d, 1);
	assert_stats_plausible(d);
	{
		crdt_doc *d2 = crdt_doc_decode(snap, len, 1, NULL, NULL);
		assert_non_null(d2);
		crdt_doc_free(d2);
	}

	/* decoded as the same replica: local counters and clock continue */
	uint32_t seen1 = crdt_doc_seen(a, 1), clock = crdt_doc_clock(a);
	crdt_batch *t = new_batch();
	ins(d, 0, "after", t);
	assert_id(crdt_batch_get(t, 0)->id, 1, seen1);
	assert_int_equal(crdt_batch_get(t, 0)->lamport, clock);
	apply_batch(a, t, CRDT_OK);
	assert_same_text(a, d);
	crdt_doc_free(d);

	/* decoded as another replica: concurrent edits on both converge */
	d = crdt_doc_decode(snap, len, 77, NULL, &st);
	assert_non_null(d);
	assert_int_equal(crdt_doc_replica(d), 77);
	crdt_doc *a2 = crdt_doc_decode(snap, len, 1, NULL, &st);
	assert_non_null(a2);
	crdt_batch *ta = new_batch(), *td = new_batch();
	tu_rng rng;
	tu_rng_seed(&rng, 5);
	for (int i = 0; i < 50; i++) {
		assert_ok(dg_random_edit(a2, &rng, 5, 5, ta));
		assert_ok(dg_random_edit(d, &rng, 5, 5, td));
	}
	apply_batch(a2, td, CRDT_OK);
	apply_batch(d, ta, CRDT_OK);
	assert_same_text(a2, d);
	assert_same_version(a2, d);
	assert_check(d);

	/* an empty document */
	crdt_doc *e = new_doc(8);
	size_t elen;
	uint8_t *esnap = encode(e, &elen);
	crdt_doc *ed = crdt_doc_decode(esnap, elen, 8, NULL, &st);
	assert_non_null(ed);
	assert_same_doc(e, ed, 1);
	assert_check(ed);
	ins(ed, 0, "x", NULL);
	assert_doc_text(ed, "x");
	/* a document whose text is all deleted */
	del(ed, 0, 1, NULL);
	free(esnap);
	esnap = encode(ed, &elen);
	crdt_doc *ed2 = crdt_doc_decode(esnap, elen, 8, NULL, &st);
	assert_non_null(ed2);
	assert_same_doc(ed, ed2, 1);
	assert_check(ed2);

	free(esnap);
	crdt_doc_free(e);
	crdt_doc_free(ed);
	crdt_doc_free(ed2);
	crdt_batch_free(t);
	crdt_batch_free(ta);
	crdt_batch_free(td);
	crdt_doc_free(a2);
	crdt_doc_free(d);
	free(snap);
	crdt_doc_free(a);
}

/* encode(decode(x)) == x: the snapshot is a function of the state. */
static void test_crdt_encode_deterministic(void **state)
{
	(void)state;
	crdt_doc *a = dg_build(4, 2, 200, NULL, NULL);
	size_t l1, l2;
	uint8_t *s1 = encode(a, &l1);
	crdt_doc *d = crdt_doc_decode(s1, l1, 1, NULL, NULL);
	assert_non_null(d);
	uint8_t *s2 = encode(d, &l2);
	assert_int_equal(l1, l2);
	assert_memory_equal(s1, s2, l1);
	free(s1);
	free(s2);
	crdt_doc_free(d);
	crdt_doc_free(a);
}

static void test_crdt_encode_espace(void **state)
{
	(void)state;
	crdt_doc *a = dg_build(5, 2, 100, NULL, NULL);
	size_t len;
	uint8_t *snap = encode(a, &len);
	uint8_t *buf = malloc(len + 64);
	assert_non_null(buf);
	size_t caps[] = {0, 1, len / 2, len - 1};
	for (size_t i = 0; i < sizeof caps / sizeof caps[0]; i++) {
		memset(buf, 0xEE, len + 64);
		size_t need = 0;
		assert_status(crdt_doc_encode(a, buf, caps[i], &need), CRDT_ESPACE);
		assert_true(need >= len);
		for (size_t k = caps[i]; k < len + 64; k++)
			if (buf[k] != 0xEE)
				fail_msg("encode wrote byte %zu with cap %zu", k, caps[i]);
		uint8_t *big = malloc(need);
		assert_non_null(big);
		size_t got = 0;
		assert_ok(crdt_doc_encode(a, big, need, &got));
		assert_int_equal(got, len);
		assert_memory_equal(big, snap, len);
		free(big);
	}
	size_t need = 0;
	assert_status(crdt_doc_encode(a, NULL, 0, &need), CRDT_ESPACE);
	assert_true(need >= len);
	/* A buffer of crdt_doc_encode_bound bytes is always enough. Whether a
	 * buffer of exactly the snapshot's size (smaller than the bound) must be
	 * accepted is not specified by crdt.h, so it is not tested. */
	size_t bound = crdt_doc_encode_bound(a), got = 0;
	uint8_t *b2 = malloc(bound);
	assert_non_null(b2);
	assert_ok(crdt_doc_encode(a, b2, bound, &got));
	assert_int_equal(got, len);
	assert_memory_equal(b2, snap, len);
	free(b2);
	free(buf);
	free(snap);
	crdt_doc_free(a);
}

static void test_crdt_decode_empty_and_version(void **state)
{
	(void)state;
	int st = 0;
	assert_null(crdt_doc_decode(NULL, 0, 1, NULL, &st));
	assert_status(st, CRDT_ECORRUPT);
	uint8_t *z = malloc(1);
	st = 0;
	assert_null(crdt_doc_decode(z, 0, 1, NULL, &st));
	assert_status(st, CRDT_ECORRUPT);
	free(z);

	crdt_doc *a = dg_build(6, 2, 50, NULL, NULL);
	size_t len;
	uint8_t *snap = encode(a, &len);
	const uint8_t bad[] = {0, 2, 3, 0x7F, 0x80, 0xFF};
	for (size_t i = 0; i < sizeof bad; i++) {
		snap[0] = bad[i];
		st = 0;
		assert_null(crdt_doc_decode(snap, len, 1, NULL, &st));
		assert_status(st, CRDT_EVERSION);
		assert_null(crdt_doc_decode(snap, len, 1, NULL, NULL));
		st = 0;
		uint8_t *one = malloc(1);
		one[0] = bad[i];
		assert_null(crdt_doc_decode(one, 1, 1, NULL, &st));
		assert_status(st, CRDT_EVERSION);
		free(one);
	}
	snap[0] = CRDT_SNAPSHOT_VERSION;
	/* replica 0 cannot edit */
	assert_null(crdt_doc_decode(snap, len, CRDT_NO_REPLICA, NULL, &st));
	free(snap);
	crdt_doc_free(a);
}

static void test_crdt_decode_truncated(void **state)
{
	(void)state;
	crdt_doc *a = dg_build(8, 3, 150, NULL, NULL);
	size_t len;
	uint8_t *snap = encode(a, &len);
	tu_alloc al;
	tu_alloc_init(&al, NULL);
	crdt_options o;
	memset(&o, 0, sizeof o);
	o.allocator = &al.a;
	for (size_t k = 0; k < len; k++) {
		uint8_t *p = malloc(k ? k : 1);
		memcpy(p, snap, k);
		int st = 0;
		crdt_doc *d = crdt_doc_decode(p, k, 1, &o, &st);
		if (d) {
			crdt_doc_free(d);
			fail_msg("a snapshot cut to %zu of %zu bytes decoded", k, len);
		}
		if (st != CRDT_ECORRUPT)
			fail_msg("cut to %zu of %zu bytes: status %d (%s)", k, len, st,
				 crdt_strerror(st));
		assert_int_equal(al.held, 0);
		free(p);
	}
	assert_int_equal(al.bad_release, 0);
	free(snap);
	crdt_doc_free(a);
}

static void test_crdt_decode_trailing_bytes(void **state)
{
	(void)state;
	crdt_doc *a = dg_build(9, 2, 60, NULL, NULL);
	size_t len;
	uint8_t *snap = encode(a, &len);
	uint8_t *p = malloc(len + 1);
	memcpy(p, snap, len);
	p[len] = 0;
	int st = 0;
	crdt_doc *d = crdt_doc_decode(p, len + 1, 1, NULL, &st);
	if (d) {
		crdt_doc_free(d);
		fail_msg("a snapshot with a trailing byte decoded");
	}
	assert_status(st, CRDT_ECORRUPT);
	free(p);
	free(snap);
	crdt_doc_free(a);
}

/* Decode a damaged copy; it must fail cleanly or give a sound document. */
static void decode_damaged(const uint8_t *p, size_t len, int version_damaged, tu_alloc *al,
			   size_t *accepted)
{
	crdt_options o;
	memset(&o, 0, sizeof o);
	o.allocator = &al->a;
	int st = 0;
	crdt_doc *d = crdt_doc_decode(p, len, 3, &o, &st);
	if (!d) {
		if (!(st == CRDT_ECORRUPT || (version_damaged && st == CRDT_EVERSION)))
			fail_msg("damaged snapshot: status %d (%s)", st, crdt_strerror(st));
		assert_int_equal(al->held, 0);
		return;
	}
	(*accepted)++;
	assert_check(d);
	assert_int_equal(crdt_doc_memory(d), al->held);
	size_t n;
	char *text = tu_doc_text(d, &n);
	assert_int_equal(crdt_utf8_count(text, n), (long)crdt_doc_length(d));
	free(text);
	/* still usable (a damaged clock or counter may be at its limit) */
	st = crdt_doc_insert(d, 0, "x", 1, NULL);
	if (st != CRDT_OK && st != CRDT_ELIMIT)
		fail_msg("insert into a decoded damaged doc: %d (%s)", st, crdt_strerror(st));
	if (st == CRDT_OK) {
		st = crdt_doc_delete(d, 0, 1, NULL);
		assert_true(st == CRDT_OK || st == CRDT_ELIMIT);
	}
	assert_check(d);
	crdt_batch *b = crdt_batch_new(NULL);
	assert_ok(crdt_doc_ops_since(d, NULL, 0, b));
	crdt_batch_free(b);
	size_t bound = crdt_doc_encode_bound(d), got;
	uint8_t *buf = malloc(bound ? bound : 1);
	assert_ok(crdt_doc_encode(d, buf, bound, &got));
	free(buf);
	crdt_doc_free(d);
	assert_int_equal(al->held, 0);
}

/* Found by tests/fuzz/fuzz_snapshot (regressions/fuzz_snapshot/
 * lamport-positional-before-own-past): a well-formed snapshot whose
 * positional placements break Lamport order (a delete run of replica
 * 0x3333 at Lamport 45 after its own unit at 50). It used to load and pass
 * crdt_doc_check, but other replicas refused its ops_since (CRDT_EINVAL),
 * so such a document could never sync. Now CRDT_ECORRUPT. */
static void test_crdt_decode_lamport_order(void **state)
{
	(void)state;
	static const uint8_t snap[] = {
	0x01, 0x03, 0xb3, 0x66, 0x1f, 0x91, 0x22, 0x27, 0xa2, 0x44, 0x0a, 0x48,
	0x11, 0x11, 0x04, 0x08, 0x09, 0x04, 0x05, 0x05, 0x0b, 0x00, 0x01, 0x00,
	0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x11, 0x1b, 0x02, 0x06, 0x06,
	0x02, 0x04, 0x02, 0x04, 0x02, 0x01, 0x01, 0x03, 0x01, 0x02, 0x01, 0x02,
	0x0e, 0x11, 0x00, 0x00, 0x00, 0x0f, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x0b, 0x00, 0x08, 0x00, 0x00, 0x00, 0x11, 0x11, 0x00, 0x00, 0x00,
	0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x05, 0x1b, 0x02, 0x06, 0x04, 0x01, 0x10, 0x00, 0x2b, 0x00,
	0x07, 0x00, 0x28, 0x21, 0x03, 0x0b, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x02, 0x1f, 0x1e, 0x00, 0x7c, 0x34, 0x0c, 0xe3, 0xde, 0x33, 0x80,
	0x84,
	};
	int st = 0;
	crdt_doc *d = crdt_doc_decode(snap, sizeof snap, 0x99, NULL, &st);
	assert_null(d);
	assert_int_equal(st, CRDT_ECORRUPT);
}

static void test_crdt_decode_damaged(void **state)
{
	(void)state;
	crdt_doc *a = dg_build(10, 3, 120, NULL, NULL);
	size_t len, accepted = 0, tried = 0;
	uint8_t *snap = encode(a, &len);
	tu_alloc al;
	tu_alloc_init(&al, NULL);
	uint8_t *p = malloc(len);
	/* every single-bit flip */
	for (size_t i = 0; i < len; i++) {
		for (int bit = 0; bit < 8; bit++) {
			memcpy(p, snap, len);
			p[i] ^= (uint8_t)(1u << bit);
			decode_damaged(p, len, i == 0, &al, &accepted);
			tried++;
		}
	}
	/* random multi-byte damage */
	tu_rng rng;
	tu_rng_seed(&rng, 12345);
	for (int it = 0; it < 3000; it++) {
		memcpy(p, snap, len);
		int nflip = 1 + (int)tu_rng_below(&rng, 4);
		for (int k = 0; k < nflip; k++) {
			size_t i = tu_rng_below(&rng, len);
			uint8_t v = (uint8_t)(1 + tu_rng_below(&rng, 255));
			if (tu_rng_chance(&rng, 30))
				p[i] = tu_rng_chance(&rng, 50) ? 0xFF : 0x00;
			else
				p[i] ^= v;
		}
		if (memcmp(p, snap, len) == 0)
			continue; /* the damage cancelled out */
		decode_damaged(p, len, p[0] != snap[0], &al, &accepted);
		tried++;
	}
	print_message("damaged snapshots: %zu tried, %zu decoded to sound docs\n", tried, accepted);
	assert_int_equal(al.bad_release, 0);
	free(p);
	free(snap);
	crdt_doc_free(a);
}

/* ---- stats and check -------------------------------------------------------------- */

static void test_crdt_stats_plausible(void **state)
{
	(void)state;
	crdt_doc *d = new_doc(1);
	assert_stats_plausible(d);
	ins(d, 0, "abc\xC3\xA9", NULL);
	crdt_stats s;
	crdt_doc_stats(d, &s);
	assert_int_equal(s.length, 4);
	assert_int_equal(s.utf8_bytes, 5);
	assert_int_equal(s.units, 4);
	assert_int_equal(s.deleted_units, 0);
	assert_int_equal(s.tombstone_items, 0);
	assert_int_equal(s.items, 1);
	assert_int_equal(s.replicas, 1);
	del(d, 1, 1, NULL);
	crdt_doc_stats(d, &s);
	assert_int_equal(s.units, 4);
	assert_int_equal(s.deleted_units, 1);
	assert_int_equal(s.length, 3);
	assert_int_equal(s.items, 3);
	assert_int_equal(s.tombstone_items, 1);
	assert_true(s.delete_runs >= 1);
	assert_stats_plausible(d);
	crdt_doc_free(d);

	/* big documents: a multi-level tree, many runs */
	crdt_doc *a = dg_build(13, 4, 2000, NULL, NULL);
	assert_stats_plausible(a);
	crdt_doc_stats(a, &s);
	assert_true(s.replicas >= 4);
	assert_true(s.items > 50);
	assert_true(s.leaves > 1);
	assert_true(s.depth > 1);
	crdt_doc_free(a);
}

/* ---- memory ------------------------------------------------------------------------ */

static void test_crdt_memory_accounting(void **state)
{
	(void)state;
	tu_alloc al, bl;
	tu_alloc_init(&al, NULL);
	tu_alloc_init(&bl, NULL);
	crdt_options o;
	memset(&o, 0, sizeof o);
	o.allocator = &al.a;
	o.max_pending_ops = 100;
	o.max_pending_bytes = 1 << 20;
	crdt_doc *d = crdt_doc_new(100, &o);
	assert_non_null(d);
	assert_true(al.held > 0);
	assert_int_equal(crdt_doc_memory(d), al.held);
	crdt_batch *b = crdt_batch_new(&bl.a);
	assert_non_null(b);
	tu_rng rng;
	tu_rng_seed(&rng, 77);
	for (int i = 0; i < 2000; i++) {
		assert_ok(dg_random_edit(d, &rng, 8, 20, b));
		if (i % 50 == 0) {
			assert_check(d);
			crdt_batch_clear(b);
		}
		assert_int_equal(crdt_doc_memory(d), al.held);
	}
	crdt_stats s;
	crdt_doc_stats(d, &s);
	assert_int_equal(s.memory_bytes, al.held);

	/* pending ops are accounted and freed */
	chain c;
	chain_make(&c);
	assert_status(crdt_doc_apply(d, &c.o3, NULL, NULL), CRDT_PENDING);
	assert_status(crdt_doc_apply(d, &c.d4, NULL, NULL), CRDT_PENDING);
	assert_int_equal(crdt_doc_memory(d), al.held);
	chain_free(&c);

	/* a decoded doc on the same allocator */
	size_t len;
	uint8_t *snap = encode(d, &len);
	tu_alloc dl;
	tu_alloc_init(&dl, NULL);
	crdt_options o2 = o;
	o2.allocator = &dl.a;
	crdt_doc *e = crdt_doc_decode(snap, len, 100, &o2, NULL);
	assert_non_null(e);
	assert_int_equal(crdt_doc_memory(e), dl.held);
	crdt_doc_free(e);
	assert_int_equal(dl.held, 0);
	free(snap);

	crdt_doc_free(d);
	crdt_batch_free(b);
	assert_int_equal(al.held, 0);
	assert_int_equal(al.blocks, 0);
	assert_int_equal(bl.held, 0);
	assert_int_equal(bl.blocks, 0);
	assert_int_equal(al.bad_release + bl.bad_release + dl.bad_release, 0);
}

/* The fault scenario: local edits and remote applies on doc L (replica 1). */
enum step_kind { S_INS, S_DEL, S_APPLY };
typedef struct step {
	enum step_kind kind;
	long pos; /* -1: middle, -2: end */
	long len; /* delete: -1 whole text */
	const char *text;
	int op;	  /* S_APPLY: index into the remote ops */
	int want; /* S_APPLY: expected status */
} step;

static const step scenario[] = {
	{S_INS, 0, 0, "hello", 0, 0},
	{S_INS, -2, 0, " w\xC3\xB6rld \xF0\x9F\x98\x80", 0, 0},
	{S_INS, 3, 0, NULL, 0, 0}, /* NULL: a long generated text */
	{S_DEL, 2, 50, NULL, 0, 0},
	{S_APPLY, 0, 0, NULL, 0, CRDT_OK},
	{S_APPLY, 0, 0, NULL, 2, CRDT_PENDING},
	{S_APPLY, 0, 0, NULL, 1, CRDT_OK},
	{S_DEL, 0, 10, NULL, 0, 0},
	{S_INS, -1, 0, "\xE4\xB8\xAD\xE6\x96\x87", 0, 0},
	{S_APPLY, 0, 0, NULL, 3, CRDT_OK},
	{S_INS, -1, 0, NULL, 0, 0},
	{S_DEL, 5, 100, NULL, 0, 0},
	{S_DEL, 0, -1, NULL, 0, 0},
	{S_INS, 0, 0, "fin", 0, 0},
};
#define NSTEPS (sizeof scenario / sizeof scenario[0])

static char long_text[1200];

static tu_oplog remote_ops(void)
{
	tu_oplog l;
	tu_oplog_init(&l);
	crdt_doc *r = new_doc(2);
	crdt_batch *b = new_batch();
	ins(r, 0, "remote", b);
	tu_oplog_push_batch(&l, b);
	crdt_batch_clear(b);
	ins(r, 6, "XY", b);
	tu_oplog_push_batch(&l, b);
	crdt_batch_clear(b);
	ins(r, 8, "Z", b);
	tu_oplog_push_batch(&l, b);
	crdt_batch_clear(b);
	del(r, 0, 2, b);
	tu_oplog_push_batch(&l, b);
	assert_int_equal(l.len, 4);
	crdt_batch_free(b);
	crdt_doc_free(r);
	if (!long_text[0]) {
		for (size_t i = 0; i + 1 < sizeof long_text; i++)
			long_text[i] = (char)('a' + (i * 7) % 26);
	}
	return l;
}

static int run_step(crdt_doc *d, const step *s, const tu_oplog *remote, crdt_batch *out)
{
	size_t len = crdt_doc_length(d);
	size_t pos = s->pos == -1 ? len / 2 : s->pos == -2 ? len : (size_t)s->pos;
	switch (s->kind) {
	case S_INS: {
		const char *t = s->text ? s->text : long_text;
		return crdt_doc_insert(d, pos, t, strlen(t), out);
	}
	case S_DEL: {
		size_t n = s->len < 0 ? len - pos : (size_t)s->len;
		return crdt_doc_delete(d, pos, n, out);
	}
	case S_APPLY:
		return crdt_doc_apply(d, &remote->ops[s->op], NULL, NULL);
	}
	return CRDT_EINVAL;
}

/* Runs the scenario with allocation n failing (once or from then on).
 * Returns the number of refused allocations. */
static long fault_run(long n, int persistent, tu_oplog *remote, char **expect)
{
	tu_fault f;
	tu_alloc al, bl;
	tu_fault_init(&f, n, persistent);
	tu_alloc_init(&al, &f);
	tu_alloc_init(&bl, &f);
	crdt_options o;
	memset(&o, 0, sizeof o);
	o.allocator = &al.a;
	o.max_pending_ops = 8;
	o.max_pending_bytes = 1 << 20;
	crdt_doc *d = crdt_doc_new(1, &o);
	crdt_batch *out = NULL;
	if (!d) {
		assert_int_equal(al.held, 0);
		return f.failures;
	}
	assert_int_equal(crdt_doc_memory(d), al.held);
	out = crdt_batch_new(&bl.a);
	if (!out) {
		crdt_doc_free(d);
		assert_int_equal(al.held + bl.held, 0);
		return f.failures;
	}
	for (size_t i = 0; i < NSTEPS; i++) {
		const step *s = &scenario[i];
		doc_state before;
		state_take(d, &before);
		size_t nout = crdt_batch_count(out);
		crdt_op last;
		char last_text[4096];
		if (nout) {
			last = *crdt_batch_get(out, nout - 1);
			if (last.text) {
				assert_true(last.text_bytes <= sizeof last_text);
				memcpy(last_text, last.text, last.text_bytes);
				last.text = last_text;
			}
		}
		int want = s->kind == S_APPLY ? s->want : CRDT_OK;
		int st = run_step(d, s, remote, out);
		if (st == CRDT_ENOMEM) {
			state_assert_same(d, &before);
			assert_int_equal(crdt_doc_memory(d), al.held);
			if (s->kind != S_APPLY) {
				assert_int_equal(crdt_batch_count(out), nout);
				if (nout)
					assert_same_op(crdt_batch_get(out, nout - 1), &last);
			}
			if (persistent)
				break;
			/* the failure was once: the retry succeeds */
			st = run_step(d, s, remote, out);
		} else {
			free(before.text);
		}
		if (st != want)
			fail_msg("step %zu (fault at %ld, %s): status %d (%s), expected %d", i, n,
				 persistent ? "persistent" : "once", st, crdt_strerror(st), want);
		assert_check(d);
		assert_int_equal(crdt_doc_memory(d), al.held);
		if (expect[i]) {
			size_t tn;
			char *t = tu_doc_text(d, &tn);
			if (strcmp(t, expect[i]) != 0)
				fail_msg("step %zu (fault at %ld): text \"%s\", expected \"%s\"", i,
					 n, t, expect[i]);
			free(t);
		}
	}
	crdt_batch_free(out);
	crdt_doc_free(d);
	if (al.held != 0 || bl.held != 0)
		fail_msg("fault at %ld (%s): %zu doc bytes and %zu batch bytes leaked", n,
			 persistent ? "persistent" : "once", al.held, bl.held);
	assert_int_equal(al.bad_release + bl.bad_release, 0);
	return f.failures;
}

static void fault_scenario(int persistent)
{
	tu_oplog remote = remote_ops();
	/* reference run: the text after each step */
	char *expect[NSTEPS];
	memset(expect, 0, sizeof expect);
	crdt_options o;
	memset(&o, 0, sizeof o);
	o.max_pending_ops = 8;
	o.max_pending_bytes = 1 << 20;
	crdt_doc *d = crdt_doc_new(1, &o);
	assert_non_null(d);
	for (size_t i = 0; i < NSTEPS; i++) {
		int want = scenario[i].kind == S_APPLY ? scenario[i].want : CRDT_OK;
		assert_status(run_step(d, &scenario[i], &remote, NULL), want);
		expect[i] = tu_doc_text(d, NULL);
	}
	crdt_doc_free(d);

	long n;
	for (n = 0; n < 1000000; n++)
		if (fault_run(n, persistent, &remote, expect) == 0)
			break;
	assert_true(n > 0 && n < 1000000);
	print_message("fault scenario (%s): %ld allocation points\n",
		      persistent ? "persistent" : "once", n);
	for (size_t i = 0; i < NSTEPS; i++)
		free(expect[i]);
	tu_oplog_free(&remote);
}

static void test_crdt_memory_fault_persistent(void **state)
{
	(void)state;
	fault_scenario(1);
}

static void test_crdt_memory_fault_once(void **state)
{
	(void)state;
	fault_scenario(0);
}

static void test_crdt_memory_fault_decode(void **state)
{
	(void)state;
	crdt_doc *a = dg_build(21, 3, 300, NULL, NULL);
	size_t len;
	uint8_t *snap = encode(a, &len);
	char *want = tu_doc_text(a, NULL);
	long n;
	for (n = 0; n < 1000000; n++) {
		tu_fault f;
		tu_alloc al;
		tu_fault_init(&f, n, 1);
		tu_alloc_init(&al, &f);
		crdt_options o;
		memset(&o, 0, sizeof o);
		o.allocator = &al.a;
		int st = 0;
		crdt_doc *d = crdt_doc_decode(snap, len, 1, &o, &st);
		if (!d) {
			assert_true(f.failures > 0);
			assert_status(st, CRDT_ENOMEM);
		} else {
			assert_check(d);
			assert_int_equal(crdt_doc_memory(d), al.held);
			char *t = tu_doc_text(d, NULL);
			assert_string_equal(t, want);
			free(t);
			crdt_doc_free(d);
		}
		if (al.held)
			fail_msg("decode with allocation %ld failing leaked %zu bytes", n, al.held);
		assert_int_equal(al.bad_release, 0);
		if (f.failures == 0)
			break;
	}
	assert_true(n > 0 && n < 1000000);
	free(want);
	free(snap);
	crdt_doc_free(a);
}

static void test_crdt_memory_fault_ops_since(void **state)
{
	(void)state;
	crdt_doc *a = dg_build(22, 3, 200, NULL, NULL);
	long n;
	for (n = 0; n < 1000000; n++) {
		tu_fault f;
		tu_alloc bl;
		tu_fault_init(&f, n, 1);
		tu_alloc_init(&bl, &f);
		crdt_batch *b = crdt_batch_new(&bl.a);
		if (b) {
			int st = crdt_doc_ops_since(a, NULL, 0, b);
			assert_true(st == CRDT_OK || st == CRDT_ENOMEM);
			if (st == CRDT_OK && f.failures == 0) {
				crdt_doc *c = new_doc(9);
				apply_batch(c, b, CRDT_OK);
				assert_same_text(a, c);
				crdt_doc_free(c);
			}
			crdt_batch_free(b);
		}
		assert_int_equal(bl.held, 0);
		assert_int_equal(bl.bad_release, 0);
		if (f.failures == 0)
			break;
	}
	assert_true(n > 0 && n < 1000000);
	assert_check(a);
	crdt_doc_free(a);
}

static void test_crdt_memory_fault_doc_new(void **state)
{
	(void)state;
	long n;
	for (n = 0; n < 10000; n++) {
		tu_fault f;
		tu_alloc al;
		tu_fault_init(&f, n, 1);
		tu_alloc_init(&al, &f);
		crdt_options o;
		memset(&o, 0, sizeof o);
		o.allocator = &al.a;
		crdt_doc *d = crdt_doc_new(1, &o);
		if (d) {
			assert_int_equal(f.failures, 0);
			assert_int_equal(crdt_doc_memory(d), al.held);
			assert_check(d);
			crdt_doc_free(d);
		}
		assert_int_equal(al.held, 0);
		if (f.failures == 0)
			break;
	}
	assert_true(n > 0);
}

/* Remote deletes of one unit inside an item (one piece): a leaf with room
 * for the item's two halves reserves no split, a full one does. With every
 * allocation from the Nth on failing, each such delete applies whole or
 * returns CRDT_ENOMEM with the document unchanged, and retrying once memory
 * is back applies it. */
static void test_crdt_memory_fault_delete_piece(void **state)
{
	(void)state;
	crdt_doc *a = new_doc(1);
	crdt_batch *ins = crdt_batch_new(NULL), *del = crdt_batch_new(NULL);
	assert_non_null(ins);
	assert_non_null(del);
	/* 60 separate three-letter items (each typed at the start), then the
	 * middle letter of each deleted: leaves fill up and split on the way */
	for (int i = 0; i < 60; i++)
		assert_status(crdt_doc_insert(a, 0, "abc", 3, ins), CRDT_OK);
	for (int i = 0; i < 60; i++)
		assert_status(crdt_doc_delete(a, (size_t)i * 2 + 1, 1, del), CRDT_OK);
	char *want = tu_doc_text(a, NULL);

	long n;
	for (n = 0; n < 100000; n++) {
		tu_fault f;
		tu_alloc al;
		tu_fault_init(&f, -1, 1); /* the inserts get all they need */
		tu_alloc_init(&al, &f);
		crdt_options o;
		memset(&o, 0, sizeof o);
		o.allocator = &al.a;
		crdt_doc *b = crdt_doc_new(2, &o);
		assert_non_null(b);
		apply_batch(b, ins, CRDT_OK);
		f.countdown = n;
		for (size_t i = 0; i < crdt_batch_count(del); i++) {
			doc_state before;
			state_take(b, &before);
			int st = crdt_doc_apply(b, crdt_batch_get(del, i), NULL, NULL);
			if (st == CRDT_ENOMEM) {
				state_assert_same(b, &before);
				assert_int_equal(crdt_doc_memory(b), al.held);
				f.tripped = 0; /* memory is back */
				f.countdown = -1;
				st = crdt_doc_apply(b, crdt_batch_get(del, i), NULL, NULL);
			} else {
				free(before.text);
			}
			assert_status(st, CRDT_OK);
			assert_check(b);
			assert_int_equal(crdt_doc_memory(b), al.held);
		}
		char *t = tu_doc_text(b, NULL);
		assert_string_equal(t, want);
		free(t);
		crdt_doc_free(b);
		assert_int_equal(al.held, 0);
		assert_int_equal(al.bad_release, 0);
		if (f.failures == 0)
			break;
	}
	assert_true(n > 0 && n < 100000);
	free(want);
	crdt_batch_free(ins);
	crdt_batch_free(del);
	crdt_doc_free(a);
}

/* Anchors: a caret stays after its unit while others edit, falls back to
 * where a deleted unit was, and unknown or delete ids are refused. */
static void test_crdt_anchor_at_and_pos(void **state)
{
	(void)state;
	crdt_doc *a = crdt_doc_new(1, NULL), *b = crdt_doc_new(2, NULL);
	crdt_batch *ops = crdt_batch_new(NULL);
	assert_status(crdt_doc_insert(a, 0, "h\xc3\xa9llo", 6, ops), CRDT_OK); /* "héllo" */
	for (size_t i = 0; i < crdt_batch_count(ops); i++)
		assert_status(crdt_doc_apply(b, crdt_batch_get(ops, i), NULL, NULL), CRDT_OK);

	crdt_id at0, at2, at5, bad;
	size_t pos = 99;
	assert_status(crdt_doc_anchor_at(a, 0, &at0), CRDT_OK);
	assert_true(at0.replica == CRDT_NO_REPLICA);
	assert_status(crdt_doc_anchor_pos(a, at0, &pos), CRDT_OK);
	assert_int_equal(pos, 0);
	assert_status(crdt_doc_anchor_at(a, 2, &at2), CRDT_OK); /* after "hé" */
	assert_true(at2.replica == 1 && at2.counter == 1);
	assert_status(crdt_doc_anchor_at(a, 5, &at5), CRDT_OK);
	assert_status(crdt_doc_anchor_at(a, 6, &bad), CRDT_ERANGE);
	assert_status(crdt_doc_anchor_pos(b, at2, &pos), CRDT_OK);
	assert_int_equal(pos, 2);

	/* someone types before the caret: it moves along */
	assert_status(crdt_doc_insert(b, 0, "ab", 2, NULL), CRDT_OK);
	assert_status(crdt_doc_anchor_pos(b, at2, &pos), CRDT_OK);
	assert_int_equal(pos, 4);
	assert_status(crdt_doc_anchor_pos(b, at5, &pos), CRDT_OK);
	assert_int_equal(pos, 7);
	/* the unit it follows is deleted: the caret stays where it was */
	assert_status(crdt_doc_delete(b, 3, 1, NULL), CRDT_OK); /* the é */
	assert_doc_text(b, "abhllo");
	assert_status(crdt_doc_anchor_pos(b, at2, &pos), CRDT_OK);
	assert_int_equal(pos, 3);

	/* an id never seen, and one that names a delete op */
	assert_status(crdt_doc_anchor_pos(a, (crdt_id){7, 0}, &pos), CRDT_EMISSING);
	assert_status(crdt_doc_anchor_pos(a, (crdt_id){1, 5}, &pos), CRDT_EMISSING);
	crdt_id del_id = {2, crdt_doc_seen(b, 2) - 1}; /* b's delete */
	assert_status(crdt_doc_anchor_pos(b, del_id, &pos), CRDT_EINVAL);
	assert_check(a);
	assert_check(b);
	crdt_batch_free(ops);
	crdt_doc_free(a);
	crdt_doc_free(b);
}

static void test_crdt_batch_truncate(void **state)
{
	(void)state;
	crdt_doc *d = crdt_doc_new(1, NULL);
	crdt_batch *ops = crdt_batch_new(NULL);
	assert_status(crdt_doc_insert(d, 0, "ab", 2, ops), CRDT_OK);
	assert_status(crdt_doc_delete(d, 0, 1, ops), CRDT_OK);
	assert_int_equal(crdt_batch_count(ops), 2);
	crdt_batch_truncate(ops, 5); /* beyond: unchanged */
	assert_int_equal(crdt_batch_count(ops), 2);
	crdt_batch_truncate(ops, 1);
	assert_int_equal(crdt_batch_count(ops), 1);
	assert_int_equal(crdt_batch_get(ops, 0)->kind, CRDT_OP_INSERT);
	assert_null(crdt_batch_get(ops, 1));
	/* pushing again works from there */
	assert_status(crdt_doc_delete(d, 0, 1, ops), CRDT_OK);
	assert_int_equal(crdt_batch_count(ops), 2);
	crdt_batch_truncate(ops, 0);
	assert_int_equal(crdt_batch_count(ops), 0);
	crdt_batch_free(ops);
	crdt_doc_free(d);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crdt_strerror_known_codes),
		cmocka_unit_test(test_crdt_strerror_unknown_codes),
		cmocka_unit_test(test_crdt_utf8_count),
		cmocka_unit_test(test_crdt_batch_basic),
		cmocka_unit_test(test_crdt_batch_merge_contiguous),
		cmocka_unit_test(test_crdt_batch_no_merge_noncontiguous),
		cmocka_unit_test(test_crdt_batch_enomem),
		cmocka_unit_test(test_crdt_batch_truncate),
		cmocka_unit_test(test_crdt_anchor_at_and_pos),
		cmocka_unit_test(test_crdt_doc_new_free),
		cmocka_unit_test(test_crdt_insert_start_middle_end),
		cmocka_unit_test(test_crdt_delete_start_middle_end),
		cmocka_unit_test(test_crdt_delete_spanning_replicas),
		cmocka_unit_test(test_crdt_edit_out_of_range),
		cmocka_unit_test(test_crdt_insert_invalid_utf8),
		cmocka_unit_test(test_crdt_multibyte_positions),
		cmocka_unit_test(test_crdt_text_buffer),
		cmocka_unit_test(test_crdt_apply_converges),
		cmocka_unit_test(test_crdt_apply_duplicate),
		cmocka_unit_test(test_crdt_apply_missing_dependency),
		cmocka_unit_test(test_crdt_apply_pending_then_applied),
		cmocka_unit_test(test_crdt_apply_pending_full),
		cmocka_unit_test(test_crdt_apply_pending_default_bytes),
		cmocka_unit_test(test_crdt_edit_clock_limit),
		cmocka_unit_test(test_crdt_apply_malformed),
		cmocka_unit_test(test_crdt_apply_patches),
		cmocka_unit_test(test_crdt_apply_patches_shape),
		cmocka_unit_test(test_crdt_version_seen_clock),
		cmocka_unit_test(test_crdt_ops_since_empty_version),
		cmocka_unit_test(test_crdt_ops_since_partial_version),
		cmocka_unit_test(test_crdt_ops_since_collected),
		cmocka_unit_test(test_crdt_encode_decode_roundtrip),
		cmocka_unit_test(test_crdt_encode_deterministic),
		cmocka_unit_test(test_crdt_encode_espace),
		cmocka_unit_test(test_crdt_decode_empty_and_version),
		cmocka_unit_test(test_crdt_decode_truncated),
		cmocka_unit_test(test_crdt_decode_trailing_bytes),
		cmocka_unit_test(test_crdt_decode_damaged),
		cmocka_unit_test(test_crdt_decode_lamport_order),
		cmocka_unit_test(test_crdt_stats_plausible),
		cmocka_unit_test(test_crdt_memory_accounting),
		cmocka_unit_test(test_crdt_memory_fault_doc_new),
		cmocka_unit_test(test_crdt_memory_fault_delete_piece),
		cmocka_unit_test(test_crdt_memory_fault_persistent),
		cmocka_unit_test(test_crdt_memory_fault_once),
		cmocka_unit_test(test_crdt_memory_fault_decode),
		cmocka_unit_test(test_crdt_memory_fault_ops_since),
	};
	if (argc > 1)
		cmocka_set_test_filter(argv[1]);
	return cmocka_run_group_tests_name("crdt_api", tests, NULL, NULL);
}
