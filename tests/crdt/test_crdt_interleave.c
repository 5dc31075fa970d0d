/*
 * test_crdt_interleave.c - the non-interleaving property (Fugue, Weidner &
 * Kleppmann): replicas that concurrently type words at the same place end
 * up with each word contiguous, whether the words were typed forward (each
 * character after the previous one) or backward (each character at the same
 * position, right to left). Either order of the words is allowed; a mix is
 * not, and every replica must show the same text. Covers two and three
 * replicas, an empty document, the middle of existing text, multi-byte
 * words, a neighbour deleted concurrently, and a seeded property test with
 * random positions, directions and delivery orders.
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
#include "testutil.h"
#include "tu_assert.h"

enum dir { FWD, BWD };

/* Type `word` at code point `pos`, one keystroke (one op) at a time; every
 * keystroke's ops are appended to `log`. */
static void type_word(crdt_doc *d, size_t pos, const char *word, enum dir dir, tu_oplog *log)
{
	crdt_batch *b = crdt_batch_new(NULL);
	assert_non_null(b);
	size_t n = strlen(word);
	size_t offs[64], lens[64], k = 0;
	for (size_t off = 0; off < n; k++) {
		uint32_t cp;
		assert_true(k < 64);
		offs[k] = off;
		lens[k] = tu_utf8_get(word + off, &cp);
		off += lens[k];
	}
	for (size_t i = 0; i < k; i++) {
		size_t j = dir == FWD ? i : k - 1 - i;
		size_t at = dir == FWD ? pos + i : pos;
		crdt_batch_clear(b);
		assert_ok(crdt_doc_insert(d, at, word + offs[j], lens[j], b));
		tu_oplog_push_batch(log, b);
	}
	assert_check(d);
	crdt_batch_free(b);
}

static void deliver(crdt_doc *to, const tu_oplog *log, size_t from)
{
	for (size_t i = from; i < log->len; i++) {
		assert_ok(crdt_doc_apply(to, &log->ops[i], NULL, NULL));
		assert_check(to);
	}
}

/* Fail unless d's text is prefix + some permutation of words + suffix. */
static void assert_words_whole(const crdt_doc *d, const char *prefix, const char *suffix,
			       const char *const *words, size_t n)
{
	assert_true(n >= 1 && n <= 4);
	char *text = tu_doc_text(d, NULL);
	size_t perm[4] = {0, 1, 2, 3};
	int found = 0;
	/* iterate all permutations of n (Heap's algorithm, iterative) */
	size_t c[4] = {0, 0, 0, 0};
	char want[512];
	for (size_t i = 0;;) {
		size_t off = (size_t)snprintf(want, sizeof want, "%s", prefix);
		for (size_t k = 0; k < n; k++)
			off += (size_t)snprintf(want + off, sizeof want - off, "%s",
						words[perm[k]]);
		snprintf(want + off, sizeof want - off, "%s", suffix);
		if (strcmp(want, text) == 0) {
			found = 1;
			break;
		}
		while (i < n && c[i] >= i) {
			c[i] = 0;
			i++;
		}
		if (i >= n)
			break;
		size_t a = i % 2 == 0 ? 0 : c[i];
		size_t t = perm[a];
		perm[a] = perm[i];
		perm[i] = t;
		c[i]++;
		i = 0;
	}
	if (!found) {
		char list[256];
		size_t off = 0;
		for (size_t k = 0; k < n; k++)
			off += (size_t)snprintf(list + off, sizeof list - off, "%s\"%s\"",
						k ? ", " : "", words[k]);
		fail_msg("text \"%s\" is not \"%s\" + whole words {%s} + \"%s\"", text, prefix,
			 list, suffix);
	}
	free(text);
}

/* Base text shared by all replicas (typed by replica 100, delivered). */
static void share_base(crdt_doc **docs, size_t n, const char *base)
{
	if (!*base)
		return;
	crdt_doc *origin = crdt_doc_new(100, NULL);
	assert_non_null(origin);
	tu_oplog log;
	tu_oplog_init(&log);
	type_word(origin, 0, base, FWD, &log);
	for (size_t i = 0; i < n; i++)
		deliver(docs[i], &log, 0);
	tu_oplog_free(&log);
	crdt_doc_free(origin);
}

/* Two replicas type w1 / w2 at `pos` of `base`, then exchange. */
static void two_words(crdt_replica ra, crdt_replica rb, const char *base, size_t pos,
		      const char *w1, enum dir d1, const char *w2, enum dir d2)
{
	crdt_doc *docs[3];
	docs[0] = crdt_doc_new(ra, NULL);
	docs[1] = crdt_doc_new(rb, NULL);
	docs[2] = crdt_doc_new(rb + ra + 1000, NULL);
	assert_true(docs[0] && docs[1] && docs[2]);
	share_base(docs, 3, base);
	size_t bpos = tu_utf8_offset(base, strlen(base), pos);
	char prefix[256], suffix[256];
	snprintf(prefix, sizeof prefix, "%.*s", (int)bpos, base);
	snprintf(suffix, sizeof suffix, "%s", base + bpos);

	tu_oplog la, lb;
	tu_oplog_init(&la);
	tu_oplog_init(&lb);
	type_word(docs[0], pos, w1, d1, &la);
	type_word(docs[1], pos, w2, d2, &lb);
	deliver(docs[0], &lb, 0);
	deliver(docs[1], &la, 0);
	/* observer: the other order of delivery */
	deliver(docs[2], &lb, 0);
	deliver(docs[2], &la, 0);
	const char *words[2] = {w1, w2};
	assert_words_whole(docs[0], prefix, suffix, words, 2);
	assert_same_text(docs[0], docs[1]);
	assert_same_text(docs[0], docs[2]);
	assert_same_version(docs[0], docs[1]);
	assert_same_version(docs[0], docs[2]);
	tu_oplog_free(&la);
	tu_oplog_free(&lb);
	for (int i = 0; i < 3; i++)
		crdt_doc_free(docs[i]);
}

static void all_directions(const char *base, size_t pos, const char *w1, const char *w2)
{
	const enum dir dirs[2] = {FWD, BWD};
	for (int i = 0; i < 2; i++)
		for (int j = 0; j < 2; j++) {
			two_words(1, 2, base, pos, w1, dirs[i], w2, dirs[j]);
			two_words(2, 1, base, pos, w1, dirs[i], w2, dirs[j]);
			two_words(0xFFFFFFFFFFFFull, 7, base, pos, w1, dirs[i], w2, dirs[j]);
		}
}

static void test_crdt_interleave_forward_empty(void **state)
{
	(void)state;
	two_words(1, 2, "", 0, "hello", FWD, "WORLD", FWD);
	two_words(2, 1, "", 0, "hello", FWD, "WORLD", FWD);
}

static void test_crdt_interleave_backward_empty(void **state)
{
	(void)state;
	two_words(1, 2, "", 0, "hello", BWD, "WORLD", BWD);
	two_words(2, 1, "", 0, "hello", BWD, "WORLD", BWD);
}

static void test_crdt_interleave_mixed_directions(void **state)
{
	(void)state;
	two_words(1, 2, "", 0, "hello", FWD, "WORLD", BWD);
	two_words(1, 2, "", 0, "hello", BWD, "WORLD", FWD);
	two_words(2, 1, "", 0, "hello", FWD, "WORLD", BWD);
	two_words(2, 1, "", 0, "hello", BWD, "WORLD", FWD);
}

static void test_crdt_interleave_middle_of_text(void **state)
{
	(void)state;
	all_directions("The quick fox", 4, "brown", "LAZY");
	all_directions("The quick fox", 0, "brown", "LAZY");
	all_directions("The quick fox", 13, "brown", "LAZY");
	all_directions("ab", 1, "x", "YZ");
}

static void test_crdt_interleave_multibyte(void **state)
{
	(void)state;
	all_directions("", 0, "\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E", "\xC3\x85\xC3\x84\xC3\x96");
	all_directions("h\xC3\xA9llo w\xC3\xB6rld", 6,
		       "\xF0\x9F\x98\x80\xF0\x9F\x8E\x89\xF0\x9D\x84\x9E",
		       "a\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80");
}

/* Three replicas, every combination of directions and several delivery
 * orders. */
static void test_crdt_interleave_three_replicas(void **state)
{
	(void)state;
	const char *words[3] = {"alpha", "BETA", "\xCE\xB3\xCE\xB3\xCE\xB3"};
	const char *base = "[ | ]";
	for (int mask = 0; mask < 8; mask++) {
		crdt_doc *d[4];
		for (int i = 0; i < 4; i++) {
			d[i] = crdt_doc_new((crdt_replica)(10 + 7 * i), NULL);
			assert_non_null(d[i]);
		}
		share_base(d, 4, base);
		tu_oplog l[3];
		for (int i = 0; i < 3; i++) {
			tu_oplog_init(&l[i]);
			type_word(d[i], 2, words[i], (mask >> i) & 1 ? BWD : FWD, &l[i]);
		}
		/* replica i receives the others in a rotating order */
		for (int i = 0; i < 3; i++)
			for (int k = 1; k < 3; k++)
				deliver(d[i], &l[(i + (mask % 2 ? k : 3 - k)) % 3], 0);
		/* the observer receives them interleaved op by op */
		size_t at[3] = {0, 0, 0};
		for (int left = 1; left;) {
			left = 0;
			for (int i = 0; i < 3; i++)
				if (at[i] < l[i].len) {
					assert_ok(crdt_doc_apply(d[3], &l[i].ops[at[i]++], NULL,
								 NULL));
					left = 1;
				}
		}
		assert_check(d[3]);
		assert_words_whole(d[0], "[ ", "| ]", words, 3);
		for (int i = 1; i < 4; i++) {
			assert_same_text(d[0], d[i]);
			assert_same_version(d[0], d[i]);
		}
		for (int i = 0; i < 3; i++)
			tu_oplog_free(&l[i]);
		for (int i = 0; i < 4; i++)
			crdt_doc_free(d[i]);
	}
}

/* A deletes a neighbour of the insertion point and types there; B types at
 * the same place, next to the character A deleted. */
static void neighbour_deleted(enum dir da, enum dir db, int which, int swap)
{
	crdt_doc *d[3];
	for (int i = 0; i < 3; i++) {
		d[i] = crdt_doc_new(swap ? (crdt_replica)(3 - i) : (crdt_replica)(i + 1), NULL);
		assert_non_null(d[i]);
	}
	share_base(d, 3, "abcd");
	tu_oplog la, lb;
	tu_oplog_init(&la);
	tu_oplog_init(&lb);
	crdt_batch *b = crdt_batch_new(NULL);
	const char *prefix, *suffix;
	if (which == 0) {
		/* A: delete 'b', type between a and c; B: type between b and c */
		assert_ok(crdt_doc_delete(d[0], 1, 1, b));
		tu_oplog_push_batch(&la, b);
		type_word(d[0], 1, "one", da, &la);
		type_word(d[1], 2, "TWO", db, &lb);
		prefix = "a";
		suffix = "cd";
	} else if (which == 1) {
		/* A: delete 'c', type between b and d; B: type between b and c */
		assert_ok(crdt_doc_delete(d[0], 2, 1, b));
		tu_oplog_push_batch(&la, b);
		type_word(d[0], 2, "one", da, &la);
		type_word(d[1], 2, "TWO", db, &lb);
		prefix = "ab";
		suffix = "d";
	} else {
		/* both delete 'b' and 'c' and type in the gap */
		assert_ok(crdt_doc_delete(d[0], 1, 2, b));
		tu_oplog_push_batch(&la, b);
		crdt_batch_clear(b);
		assert_ok(crdt_doc_delete(d[1], 1, 2, b));
		tu_oplog_push_batch(&lb, b);
		type_word(d[0], 1, "one", da, &la);
		type_word(d[1], 1, "TWO", db, &lb);
		prefix = "a";
		suffix = "d";
	}
	deliver(d[0], &lb, 0);
	deliver(d[1], &la, 0);
	deliver(d[2], &la, 0);
	deliver(d[2], &lb, 0);
	const char *words[2] = {"one", "TWO"};
	assert_words_whole(d[0], prefix, suffix, words, 2);
	assert_same_text(d[0], d[1]);
	assert_same_text(d[0], d[2]);
	assert_same_version(d[0], d[1]);
	tu_oplog_free(&la);
	tu_oplog_free(&lb);
	crdt_batch_free(b);
	for (int i = 0; i < 3; i++)
		crdt_doc_free(d[i]);
}

static void test_crdt_interleave_neighbour_deleted(void **state)
{
	(void)state;
	for (int which = 0; which < 3; which++)
		for (int m = 0; m < 8; m++)
			neighbour_deleted(m & 1 ? BWD : FWD, m & 2 ? BWD : FWD, which,
					  (m >> 2) & 1);
}

/* Property test: random base text, random shared position, random word
 * lengths and directions, random replica ids, and a random interleaving of
 * the two keystroke streams at an observer. */
static void test_crdt_interleave_random(void **state)
{
	(void)state;
	tu_rng rng;
	tu_rng_seed(&rng, 2024);
	for (int it = 0; it < 1000; it++) {
		char base[128], w1[64], w2[64];
		size_t off = 0;
		size_t blen = tu_rng_below(&rng, 20);
		for (size_t i = 0; i < blen; i++)
			off += tu_utf8_put(tu_random_cp(&rng), base + off);
		base[off] = 0;
		/* words drawn from disjoint alphabets so that a mix is visible */
		size_t n1 = 1 + tu_rng_below(&rng, 8), n2 = 1 + tu_rng_below(&rng, 8);
		off = 0;
		for (size_t i = 0; i < n1; i++)
			off += tu_utf8_put(tu_rng_chance(&rng, 50)
						   ? (uint32_t)('A' + tu_rng_below(&rng, 26))
						   : 0x391 + (uint32_t)tu_rng_below(&rng, 17),
					   w1 + off);
		w1[off] = 0;
		off = 0;
		for (size_t i = 0; i < n2; i++)
			off += tu_utf8_put(tu_rng_chance(&rng, 50)
						   ? (uint32_t)('0' + tu_rng_below(&rng, 10))
						   : 0x1F600 + (uint32_t)tu_rng_below(&rng, 40),
					   w2 + off);
		w2[off] = 0;
		size_t pos = tu_rng_below(&rng, blen + 1);
		crdt_replica ra = 1000 + tu_rng_below(&rng, 1000000);
		crdt_replica rb = 1000 + tu_rng_below(&rng, 1000000);
		if (ra == rb)
			rb++;
		crdt_doc *d[3] = {crdt_doc_new(ra, NULL), crdt_doc_new(rb, NULL),
				  crdt_doc_new(ra + rb + 5000000, NULL)};
		assert_true(d[0] && d[1] && d[2]);
		share_base(d, 3, base);
		tu_oplog la, lb;
		tu_oplog_init(&la);
		tu_oplog_init(&lb);
		type_word(d[0], pos, w1, tu_rng_chance(&rng, 50) ? FWD : BWD, &la);
		type_word(d[1], pos, w2, tu_rng_chance(&rng, 50) ? FWD : BWD, &lb);
		deliver(d[0], &lb, 0);
		deliver(d[1], &la, 0);
		size_t ia = 0, ib = 0;
		while (ia < la.len || ib < lb.len) {
			const crdt_op *op;
			if (ib >= lb.len || (ia < la.len && tu_rng_chance(&rng, 50)))
				op = &la.ops[ia++];
			else
				op = &lb.ops[ib++];
			assert_ok(crdt_doc_apply(d[2], op, NULL, NULL));
		}
		assert_check(d[2]);
		size_t bpos = tu_utf8_offset(base, strlen(base), pos);
		char prefix[128];
		snprintf(prefix, sizeof prefix, "%.*s", (int)bpos, base);
		const char *words[2] = {w1, w2};
		assert_words_whole(d[0], prefix, base + bpos, words, 2);
		assert_same_text(d[0], d[1]);
		assert_same_text(d[0], d[2]);
		assert_same_version(d[0], d[2]);
		tu_oplog_free(&la);
		tu_oplog_free(&lb);
		for (int i = 0; i < 3; i++)
			crdt_doc_free(d[i]);
	}
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crdt_interleave_forward_empty),
		cmocka_unit_test(test_crdt_interleave_backward_empty),
		cmocka_unit_test(test_crdt_interleave_mixed_directions),
		cmocka_unit_test(test_crdt_interleave_middle_of_text),
		cmocka_unit_test(test_crdt_interleave_multibyte),
		cmocka_unit_test(test_crdt_interleave_three_replicas),
		cmocka_unit_test(test_crdt_interleave_neighbour_deleted),
		cmocka_unit_test(test_crdt_interleave_random),
	};
	if (argc > 1)
		cmocka_set_test_filter(argv[1]);
	return cmocka_run_group_tests_name("crdt_interleave", tests, NULL, NULL);
}
