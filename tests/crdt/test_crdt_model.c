/*
 * test_crdt_model.c - reference-model test. One replica is driven by a
 * seeded stream of edits that looks like a person typing: runs of 1-8 code
 * points (ASCII mixed with 2-, 3- and 4-byte UTF-8) at a moving cursor,
 * backspaces, forward deletes, selections deleted, cursor jumps. After
 * every edit the document must equal a plain array of code points edited
 * the same way. A shadow replica applies the ops and mirrors its text from
 * the reported patches; it must equal the model too. Midway the document
 * (and later the shadow) is replaced by its decoded snapshot. Fixed seeds.
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

typedef struct model_run {
	uint64_t seed;
	unsigned steps;
	unsigned compare_every; /* compare text every k steps (1: always) */
	unsigned check_every;	/* crdt_doc_check every k steps */
	size_t max_len;		/* delete more when the text grows past this */
	int scatter;		/* single code points at random positions */
} model_run;

typedef struct shadow {
	tu_text t;
	int bad;
} shadow;

static void shadow_fn(void *ctx, const crdt_patch *p)
{
	shadow *s = ctx;
	if (tu_text_apply_patch(&s->t, p) != 0)
		s->bad++;
}

static void fail_diff(uint64_t seed, unsigned step, const char *who, const crdt_doc *d,
		      const tu_text *model)
{
	size_t na, nb;
	char *a = tu_doc_text(d, &na);
	char *b = tu_text_utf8(model, &nb);
	size_t i = 0;
	while (i < na && i < nb && a[i] == b[i])
		i++;
	fprintf(stderr,
		"seed %llu step %u: %s differs from the model at byte %zu "
		"(doc %zu bytes / %zu cps, model %zu bytes / %zu cps)\n"
		"  doc:   ...%.40s\n  model: ...%.40s\n",
		(unsigned long long)seed, step, who, i, na, crdt_doc_length(d), nb, model->len,
		a + (i > 10 ? i - 10 : 0), b + (i > 10 ? i - 10 : 0));
	free(a);
	free(b);
	fail_msg("seed %llu step %u: %s != model", (unsigned long long)seed, step, who);
}

static crdt_doc *reload(crdt_doc *d)
{
	size_t bound = crdt_doc_encode_bound(d), len = 0;
	uint8_t *buf = malloc(bound);
	assert_non_null(buf);
	assert_ok(crdt_doc_encode(d, buf, bound, &len));
	crdt_options o;
	memset(&o, 0, sizeof o);
	int st = 0;
	crdt_doc *e = crdt_doc_decode(buf, len, crdt_doc_replica(d), &o, &st);
	if (!e)
		fail_msg("decode of a fresh snapshot failed: %d (%s)", st, crdt_strerror(st));
	assert_check(e);
	assert_same_text(d, e);
	assert_same_version(d, e);
	assert_int_equal(crdt_doc_clock(d), crdt_doc_clock(e));
	free(buf);
	crdt_doc_free(d);
	return e;
}

static void run_model(const model_run *r)
{
	tu_rng rng;
	tu_rng_seed(&rng, r->seed);
	crdt_doc *d = crdt_doc_new(0x1234567890ull + r->seed, NULL);
	crdt_doc *sh = crdt_doc_new(0x777, NULL);
	assert_true(d && sh);
	crdt_batch *b = crdt_batch_new(NULL);
	assert_non_null(b);
	tu_text model;
	shadow s;
	tu_text_init(&model);
	tu_text_init(&s.t);
	s.bad = 0;
	size_t cursor = 0;
	uint32_t cps[8];
	char buf[64];

	for (unsigned step = 1; step <= r->steps; step++) {
		size_t len = model.len;
		uint64_t k = tu_rng_below(&rng, 100);
		int big = len > r->max_len;
		int st;
		crdt_batch_clear(b);
		if (cursor > len)
			cursor = len;
		if (r->scatter && (k < 95 || len == 0)) {
			/* one code point anywhere: spreads lvs over many leaves */
			size_t pos = tu_rng_below(&rng, len + 1);
			cps[0] = tu_random_cp(&rng);
			size_t off = tu_utf8_put(cps[0], buf);
			st = crdt_doc_insert(d, pos, buf, off, b);
			assert_ok(st);
			tu_text_insert(&model, pos, cps, 1);
			cursor = pos + 1;
		} else if (big && k < 30) {
			/* cut a large selection */
			size_t pos = tu_rng_below(&rng, len);
			size_t n = 1 + tu_rng_below(&rng, len - pos);
			st = crdt_doc_delete(d, pos, n, b);
			assert_ok(st);
			tu_text_delete(&model, pos, n);
			cursor = pos;
		} else if (k < 55 || len == 0) {
			/* type a run at the cursor (sometimes paste elsewhere) */
			size_t pos = k < 50 || len == 0 ? cursor : tu_rng_below(&rng, len + 1);
			size_t n = 1 + tu_rng_below(&rng, 8), off = 0;
			for (size_t i = 0; i < n; i++) {
				cps[i] = tu_random_cp(&rng);
				off += tu_utf8_put(cps[i], buf + off);
			}
			st = crdt_doc_insert(d, pos, buf, off, b);
			assert_ok(st);
			tu_text_insert(&model, pos, cps, n);
			cursor = pos + n;
		} else if (k < 67) {
			/* backspace */
			if (cursor == 0)
				cursor = len;
			size_t n = 1 + tu_rng_below(&rng, 3);
			if (n > cursor)
				n = cursor;
			st = crdt_doc_delete(d, cursor - n, n, b);
			assert_ok(st);
			tu_text_delete(&model, cursor - n, n);
			cursor -= n;
		} else if (k < 72) {
			/* forward delete */
			if (cursor == len)
				cursor = 0;
			size_t n = 1 + tu_rng_below(&rng, 3);
			if (n > len - cursor)
				n = len - cursor;
			st = crdt_doc_delete(d, cursor, n, b);
			assert_ok(st);
			tu_text_delete(&model, cursor, n);
		} else if (k < 80) {
			/* select and delete a range */
			size_t pos = tu_rng_below(&rng, len);
			size_t n = 1 + tu_rng_below(&rng, 30);
			if (n > len - pos)
				n = len - pos;
			st = crdt_doc_delete(d, pos, n, b);
			assert_ok(st);
			tu_text_delete(&model, pos, n);
			cursor = pos;
		} else if (k < 90) {
			/* small cursor move */
			long delta = (long)tu_rng_below(&rng, 11) - 5;
			long c = (long)cursor + delta;
			cursor = c < 0 ? 0 : (size_t)c > len ? len : (size_t)c;
			continue;
		} else {
			/* jump */
			cursor = tu_rng_below(&rng, len + 1);
			continue;
		}

		/* the shadow replica integrates the same ops */
		for (size_t i = 0; i < crdt_batch_count(b); i++) {
			st = crdt_doc_apply(sh, crdt_batch_get(b, i), shadow_fn, &s);
			if (st != CRDT_OK)
				fail_msg("seed %llu step %u: shadow apply %d (%s)",
					 (unsigned long long)r->seed, step, st, crdt_strerror(st));
			if (s.bad)
				fail_msg("seed %llu step %u: a patch did not fit",
					 (unsigned long long)r->seed, step);
		}

		if (step % r->compare_every == 0 || step == r->steps) {
			if (!tu_doc_equals_text(d, &model))
				fail_diff(r->seed, step, "document", d, &model);
			if (!tu_text_equal(&s.t, &model))
				fail_msg("seed %llu step %u: patched shadow text != model",
					 (unsigned long long)r->seed, step);
			if (!tu_doc_equals_text(sh, &model))
				fail_diff(r->seed, step, "shadow replica", sh, &model);
		}
		if (step % r->check_every == 0) {
			assert_check(d);
			assert_check(sh);
			assert_same_version(d, sh);
		}
		if (step == r->steps / 2) {
			d = reload(d);
			if (!tu_doc_equals_text(d, &model))
				fail_diff(r->seed, step, "decoded document", d, &model);
		}
		if (step == 3 * r->steps / 4) {
			sh = reload(sh);
			if (!tu_doc_equals_text(sh, &model))
				fail_diff(r->seed, step, "decoded shadow", sh, &model);
		}
	}
	assert_check(d);
	assert_check(sh);
	assert_same_version(d, sh);
	crdt_stats st;
	crdt_doc_stats(d, &st);
	assert_int_equal(st.length, model.len);
	assert_int_equal(st.utf8_bytes, tu_text_utf8_bytes(&model));
	assert_int_equal(st.units, st.length + st.deleted_units);
	tu_text_free(&model);
	tu_text_free(&s.t);
	crdt_batch_free(b);
	crdt_doc_free(d);
	crdt_doc_free(sh);
}

static void test_crdt_model_typing(void **state)
{
	(void)state;
	const uint64_t seeds[] = {1, 2, 3, 0xdeadbeef};
	for (size_t i = 0; i < sizeof seeds / sizeof seeds[0]; i++) {
		model_run r = {seeds[i], 4000, 1, 97, 3000, 0};
		run_model(&r);
	}
}

/* Short documents: many deletes of everything, edits at both ends. */
static void test_crdt_model_small_text(void **state)
{
	(void)state;
	const uint64_t seeds[] = {10, 11, 12, 13, 14, 15};
	for (size_t i = 0; i < sizeof seeds / sizeof seeds[0]; i++) {
		model_run r = {seeds[i], 1500, 1, 13, 40, 0};
		run_model(&r);
	}
}

/* Single code points scattered over the text: many leaves and many
 * breakpoints in the local-version index. */
static void test_crdt_model_scattered(void **state)
{
	(void)state;
	const uint64_t seeds[] = {1, 2, 3, 4, 5, 6, 7, 8};
	for (size_t i = 0; i < sizeof seeds / sizeof seeds[0]; i++) {
		model_run r = {seeds[i], 3000, 50, 500, 100000, 1};
		run_model(&r);
	}
}

/* Regression: 1194 single-character inserts at positions from glibc's
 * srand(69)/rand() made lvmap_append write one pointer past the chunk
 * array (a chunk split in the same insert used the slot lvmap_reserve had
 * made). Only ASan sees the overflow; the text is checked as well. */
static void test_crdt_model_scattered_regression(void **state)
{
	(void)state;
	crdt_doc *d = crdt_doc_new(1, NULL);
	assert_non_null(d);
	tu_text model;
	tu_text_init(&model);
	srand(69);
	for (int i = 0; i < 1500; i++) {
		size_t pos = (size_t)rand() % (crdt_doc_length(d) + 1);
		uint32_t cp = (uint32_t)('a' + i % 26);
		char c = (char)cp;
		assert_ok(crdt_doc_insert(d, pos, &c, 1, NULL));
		tu_text_insert(&model, pos, &cp, 1);
	}
	assert_check(d);
	assert_true(tu_doc_equals_text(d, &model));
	tu_text_free(&model);
	crdt_doc_free(d);
}

/* A long run that grows a deep tree; compared every 25 steps. */
static void test_crdt_model_long(void **state)
{
	(void)state;
	model_run r = {99, 25000, 25, 2000, 20000, 0};
	run_model(&r);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crdt_model_typing),
		cmocka_unit_test(test_crdt_model_small_text),
		cmocka_unit_test(test_crdt_model_scattered),
		cmocka_unit_test(test_crdt_model_scattered_regression),
		cmocka_unit_test(test_crdt_model_long),
	};
	if (argc > 1)
		cmocka_set_test_filter(argv[1]);
	return cmocka_run_group_tests_name("crdt_model", tests, NULL, NULL);
}
