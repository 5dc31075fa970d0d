/*
 * test_crdt_load.c - snapshot loading builds the same document as the one
 * encoded. crdt_doc_decode replays the snapshot without text and then packs
 * the tree (tree_pack: items folded, full leaves in document order, inner
 * nodes rebuilt), so the loaded tree is shaped differently from the one the
 * edits built. Here it must not matter: on random documents with
 * tombstones and concurrent inserts from several replicas, the loaded one
 * passes crdt_doc_check, encodes to the same bytes, sends the same ops, and
 * the same local edits made on both produce the same ops and texts.
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
#include "docgen.h"
#include "testutil.h"
#include "tu_assert.h"

static uint8_t *encode(const crdt_doc *d, size_t *len)
{
	size_t bound = crdt_doc_encode_bound(d);
	uint8_t *buf = malloc(bound);
	assert_non_null(buf);
	assert_ok(crdt_doc_encode(d, buf, bound, len));
	return buf;
}

static void assert_same_op(const crdt_op *a, const crdt_op *b)
{
	assert_int_equal(a->kind, b->kind);
	assert_int_equal(a->id.replica, b->id.replica);
	assert_int_equal(a->id.counter, b->id.counter);
	assert_int_equal(a->lamport, b->lamport);
	assert_int_equal(a->len, b->len);
	assert_int_equal(a->left.replica, b->left.replica);
	assert_int_equal(a->left.counter, b->left.counter);
	assert_int_equal(a->right.replica, b->right.replica);
	assert_int_equal(a->right.counter, b->right.counter);
	assert_int_equal(a->target.replica, b->target.replica);
	assert_int_equal(a->target.counter, b->target.counter);
	assert_int_equal(a->text_bytes, b->text_bytes);
	assert_int_equal(a->text == NULL, b->text == NULL);
	if (a->text)
		assert_memory_equal(a->text, b->text, a->text_bytes);
}

static void assert_same_batch(const crdt_batch *a, const crdt_batch *b)
{
	assert_int_equal(crdt_batch_count(a), crdt_batch_count(b));
	for (size_t i = 0; i < crdt_batch_count(a); i++)
		assert_same_op(crdt_batch_get(a, i), crdt_batch_get(b, i));
}

/* Everything the document has, as ops_since(nothing) sends it. */
static crdt_batch *all_ops(const crdt_doc *d)
{
	crdt_batch *b = crdt_batch_new(NULL);
	assert_non_null(b);
	assert_ok(crdt_doc_ops_since(d, NULL, 0, b));
	return b;
}

/* Load the snapshot of a as the same replica and compare the two. */
static void check_load(crdt_doc *a, uint64_t seed)
{
	size_t len, len2;
	uint8_t *snap = encode(a, &len);
	int st = -1;
	crdt_doc *d = crdt_doc_decode(snap, len, crdt_doc_replica(a), NULL, &st);
	if (!d)
		fail_msg("seed %llu: decode: %s", (unsigned long long)seed, crdt_strerror(st));
	assert_check(d);
	assert_same_text(a, d);
	assert_same_version(a, d);
	assert_int_equal(crdt_doc_clock(a), crdt_doc_clock(d));

	/* packed: every leaf but the last full, runs folded */
	crdt_stats sa, sd;
	crdt_doc_stats(a, &sa);
	crdt_doc_stats(d, &sd);
	assert_int_equal(sa.units, sd.units);
	assert_int_equal(sa.deleted_units, sd.deleted_units);
	assert_int_equal(sa.id_runs, sd.id_runs);
	assert_true(sd.items <= sa.items);
	assert_int_equal(sd.leaves, sd.items ? (sd.items + 31) / 32 : 1);

	/* the same state: the same snapshot and the same ops to send */
	uint8_t *again = encode(d, &len2);
	assert_int_equal(len, len2);
	assert_memory_equal(snap, again, len);
	crdt_batch *oa = all_ops(a), *od = all_ops(d);
	assert_same_batch(oa, od);

	/* and the same ops for the same edits, whose places depend on the
	 * tree's origins and tombstones; the loaded tree's full leaves split */
	tu_rng ra, rd;
	tu_rng_seed(&ra, seed * 7 + 1);
	tu_rng_seed(&rd, seed * 7 + 1);
	crdt_batch *ea = crdt_batch_new(NULL), *ed = crdt_batch_new(NULL);
	assert_true(ea && ed);
	for (int i = 0; i < 300; i++) {
		crdt_batch_clear(ea);
		crdt_batch_clear(ed);
		assert_ok(dg_random_edit(a, &ra, 6, 6, ea));
		assert_ok(dg_random_edit(d, &rd, 6, 6, ed));
		assert_same_batch(ea, ed);
		if (i % 50 == 0)
			assert_check(d);
	}
	assert_check(d);
	assert_same_text(a, d);

	crdt_batch_free(ea);
	crdt_batch_free(ed);
	crdt_batch_free(oa);
	crdt_batch_free(od);
	free(again);
	free(snap);
	crdt_doc_free(d);
}

static void test_load_random_docs(void **state)
{
	(void)state;
	static const struct {
		unsigned nrep, rounds;
	} shapes[] = {{1, 1}, {1, 40}, {1, 3000}, {2, 300}, {3, 1500}, {4, 800}};
	for (uint64_t seed = 1; seed <= 6; seed++)
		for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
			crdt_doc *a = dg_build(seed * 100 + s, shapes[s].nrep, shapes[s].rounds,
					       NULL, NULL);
			assert_non_null(a);
			check_load(a, seed * 100 + s);
			crdt_doc_free(a);
		}
}

/* A deep tree (several inner levels) made of many small items: single
 * code points typed at random places, some deleted. */
static void test_load_deep_tree(void **state)
{
	(void)state;
	crdt_doc *a = crdt_doc_new(5, NULL);
	assert_non_null(a);
	tu_rng r;
	tu_rng_seed(&r, 99);
	for (int i = 0; i < 20000; i++) {
		size_t len = crdt_doc_length(a);
		if (len > 0 && tu_rng_chance(&r, 30))
			assert_ok(crdt_doc_delete(a, tu_rng_below(&r, len), 1, NULL));
		else
			assert_ok(crdt_doc_insert(a, tu_rng_below(&r, len + 1), "q", 1, NULL));
	}
	crdt_stats s;
	crdt_doc_stats(a, &s);
	assert_true(s.depth >= 3);
	check_load(a, 99);
	crdt_doc_free(a);
}

/* Empty documents and documents whose every unit is deleted. */
static void test_load_empty_and_all_deleted(void **state)
{
	(void)state;
	crdt_doc *a = crdt_doc_new(3, NULL);
	assert_non_null(a);
	check_load(a, 1);
	crdt_doc_free(a);

	a = crdt_doc_new(3, NULL);
	assert_non_null(a);
	assert_ok(crdt_doc_insert(a, 0, "gone \xc3\xa9\xe2\x82\xac", 10, NULL));
	assert_ok(crdt_doc_delete(a, 0, crdt_doc_length(a), NULL));
	check_load(a, 2);
	crdt_doc_free(a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_load_random_docs),
		cmocka_unit_test(test_load_deep_tree),
		cmocka_unit_test(test_load_empty_and_all_deleted),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
