/*
 * tu_assert.h - CMocka assertion macros for crdt status codes and texts.
 * Include after <cmocka.h>. Status mismatches print both codes with their
 * crdt_strerror text, which CMocka's integer asserts would show as huge
 * unsigned numbers.
 */
#ifndef QUIRE_TU_ASSERT_H
#define QUIRE_TU_ASSERT_H

#include <stdlib.h>
#include <string.h>

#include "crdt.h"
#include "testutil.h"

#define assert_status(expr, want)                                                    \
	do {                                                                         \
		int tu_s_ = (int)(expr);                                             \
		int tu_w_ = (int)(want);                                             \
		if (tu_s_ != tu_w_)                                                  \
			fail_msg("%s = %d (%s), expected %d (%s)", #expr, tu_s_,     \
				 crdt_strerror(tu_s_), tu_w_, crdt_strerror(tu_w_)); \
	} while (0)

#define assert_ok(expr) assert_status((expr), CRDT_OK)

#define assert_check(doc)                                                     \
	do {                                                                  \
		int tu_c_ = crdt_doc_check(doc);                              \
		if (tu_c_ != CRDT_OK)                                         \
			fail_msg("crdt_doc_check(%s) = %d (%s)", #doc, tu_c_, \
				 crdt_strerror(tu_c_));                       \
	} while (0)

/* The document's visible text equals the C string `want`. */
#define assert_doc_text(doc, want)                                                             \
	do {                                                                                   \
		size_t tu_n_;                                                                  \
		char *tu_t_ = tu_doc_text((doc), &tu_n_);                                      \
		const char *tu_w_ = (want);                                                    \
		if (tu_n_ != strlen(tu_w_) || memcmp(tu_t_, tu_w_, tu_n_))                     \
			fail_msg("text of %s is \"%s\", expected \"%s\"", #doc, tu_t_, tu_w_); \
		free(tu_t_);                                                                   \
	} while (0)

/* Two documents show the same text. */
#define assert_same_text(a, b)                                                                \
	do {                                                                                  \
		size_t tu_na_, tu_nb_;                                                        \
		char *tu_ta_ = tu_doc_text((a), &tu_na_);                                     \
		char *tu_tb_ = tu_doc_text((b), &tu_nb_);                                     \
		if (tu_na_ != tu_nb_ || memcmp(tu_ta_, tu_tb_, tu_na_))                       \
			fail_msg("texts differ:\n  %s: \"%s\"\n  %s: \"%s\"", #a, tu_ta_, #b, \
				 tu_tb_);                                                     \
		free(tu_ta_);                                                                 \
		free(tu_tb_);                                                                 \
	} while (0)

#define assert_same_version(a, b)                                                \
	do {                                                                     \
		if (!tu_doc_same_version((a), (b)))                              \
			fail_msg("version vectors of %s and %s differ", #a, #b); \
	} while (0)

#endif /* QUIRE_TU_ASSERT_H */
