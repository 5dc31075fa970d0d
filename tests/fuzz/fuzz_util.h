/*
 * fuzz_util.h - what the libFuzzer targets in tests/fuzz/ share: a hard
 * check that aborts (so libFuzzer, or the replay driver under CTest, reports
 * it), the fixed "live document" updates are applied to, and a checked apply
 * that mirrors the text from the patches and verifies every step.
 *
 * The seed generator (fuzz_seedgen.c) builds the same base document, so the
 * seeds' ops refer to units that exist in it.
 */
#ifndef QUIRE_FUZZ_UTIL_H
#define QUIRE_FUZZ_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "crdt.h"
#include "testutil.h"

/* abort() with a message when cond is false; never compiled out. */
#define FZ_CHECK(cond)                                      \
	do {                                                \
		if (!(cond))                                \
			fz_fail(__FILE__, __LINE__, #cond); \
	} while (0)

_Noreturn void fz_fail(const char *file, int line, const char *what);

/* The replicas of the base document (FZ_R1, FZ_R2) and the one the seeds'
 * updates come from (FZ_R3). The base document itself edits as FZ_SELF. */
#define FZ_R1 ((crdt_replica)0x1111)
#define FZ_R2 ((crdt_replica)0x2222)
#define FZ_R3 ((crdt_replica)0x3333)
#define FZ_SELF ((crdt_replica)0x5e1f)

/* A document with some history edited as `self`: FZ_R1 types text (ASCII
 * and multi-byte), FZ_R2 inserts concurrently and deletes, FZ_R1 deletes a
 * range. Deterministic. Aborts when out of memory. */
crdt_doc *fz_base_doc(crdt_replica self, const crdt_options *opts);

/* Options for the two kinds of live document: no pending room (unknown
 * dependencies are CRDT_EMISSING) and a small pending list. */
extern const crdt_options fz_opts_strict;
extern const crdt_options fz_opts_pending;

/* A mirror of a document's text kept from its patches. */
typedef struct fz_mirror {
	tu_text text;
	int bad_patch; /* a patch did not fit the text */
} fz_mirror;

/* Start a mirror holding the document's current text. */
void fz_mirror_init(fz_mirror *m, const crdt_doc *doc);
void fz_mirror_free(fz_mirror *m);

/*
 * Apply ops[0..n) of `b` to doc one by one. Each status must be a known one
 * (an error code leaves text, version, clock and pending count unchanged,
 * which is checked), crdt_doc_check must pass after every op, and the
 * mirror kept from the patches must equal the text at the end. Returns the
 * number of ops applied (CRDT_OK).
 */
size_t fz_apply_batch(crdt_doc *doc, const crdt_batch *b, fz_mirror *m);

/* The same for one op. Returns its status. */
int fz_apply_op(crdt_doc *doc, const crdt_op *op, fz_mirror *m);

/* Apply one op, mirroring its patches, and check only that the status is a
 * known one (for bulk deliveries; the caller checks the document after). */
int fz_apply_fast(crdt_doc *doc, const crdt_op *op, fz_mirror *m);

/* Documents a and b have equal text and (zero-filtered) version vectors. */
int fz_same_state(const crdt_doc *a, const crdt_doc *b);

/* A fresh replica fed doc's ops_since({}) reaches doc's text and version:
 * aborts if not. Skipped (returns) when doc holds pending ops that the
 * fresh replica could not know about. */
void fz_check_replay(const crdt_doc *doc);

#endif /* QUIRE_FUZZ_UTIL_H */
