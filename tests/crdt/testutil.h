/*
 * testutil.h - helpers shared by the crdt tests and the convergence
 * simulator: a seeded PRNG, a counting allocator that can fail on purpose,
 * a plain code-point text model (the reference the CRDT is compared with),
 * an owned op log, and small wrappers that read a document's text and
 * version vector. Nothing here depends on CMocka, so the standalone
 * crdt-sim program can use it too.
 */
#ifndef QUIRE_TESTUTIL_H
#define QUIRE_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>

#include "crdt.h"

/* ---- PRNG: splitmix64, deterministic for a seed --------------------- */

typedef struct tu_rng {
	uint64_t s;
} tu_rng;

void tu_rng_seed(tu_rng *r, uint64_t seed);
uint64_t tu_rng_next(tu_rng *r);
/* Uniform in [0, n); n > 0. */
uint64_t tu_rng_below(tu_rng *r, uint64_t n);
/* True with probability pct/100. */
int tu_rng_chance(tu_rng *r, unsigned pct);

/* ---- counting, failing allocator ------------------------------------ */

/* Failure schedule, shareable between several allocators (a document's and
 * a batch's) so that "the Nth allocation fails" counts them all. */
typedef struct tu_fault {
	long countdown; /* allocations that still succeed; < 0: never fail */
	int persistent; /* after the first failure, fail every later one */
	int tripped;	/* a failure has happened (persistent mode) */
	long failures;	/* allocations refused */
	long calls;	/* allocations requested */
} tu_fault;

typedef struct tu_alloc {
	crdt_allocator a; /* pass &al->a to the library */
	tu_fault *fault;  /* may be NULL: never fails */
	size_t held;	  /* bytes currently allocated */
	size_t blocks;	  /* blocks currently allocated */
	size_t peak;
	size_t bad_release; /* releases whose size or pointer did not match */
} tu_alloc;

void tu_fault_init(tu_fault *f, long countdown, int persistent);
void tu_alloc_init(tu_alloc *al, tu_fault *fault);

/* ---- code-point text model ------------------------------------------- */

typedef struct tu_text {
	uint32_t *cp;
	size_t len, cap;
} tu_text;

void tu_text_init(tu_text *t);
void tu_text_free(tu_text *t);
void tu_text_insert(tu_text *t, size_t pos, const uint32_t *cps, size_t n);
void tu_text_delete(tu_text *t, size_t pos, size_t n);
/* Insert decoded UTF-8 (must be valid). Returns code points inserted. */
size_t tu_text_insert_utf8(tu_text *t, size_t pos, const char *s, size_t nbytes);
/* Encode as UTF-8 into a malloc'd NUL-terminated string; *nbytes = size. */
char *tu_text_utf8(const tu_text *t, size_t *nbytes);
size_t tu_text_utf8_bytes(const tu_text *t);
/* 1 if both hold the same code points. */
int tu_text_equal(const tu_text *a, const tu_text *b);
/* Apply a patch reported by crdt_doc_apply. Returns 0, or -1 if the patch
 * does not fit the text (pos/deleted out of range, text of the wrong size or
 * invalid). */
int tu_text_apply_patch(tu_text *t, const crdt_patch *p);

/* Encode one code point; returns bytes written (1..4). */
size_t tu_utf8_put(uint32_t cp, char *out);
/* Decode valid UTF-8; returns bytes consumed, *cp set. No validation. */
size_t tu_utf8_get(const char *s, uint32_t *cp);
/* Byte offset of code point `cps` in valid UTF-8 s. */
size_t tu_utf8_offset(const char *s, size_t nbytes, size_t cps);

/* A random code point from a pool that mixes ASCII, 2-, 3- and 4-byte
 * sequences and the UTF-8 boundary values. */
uint32_t tu_random_cp(tu_rng *r);

/* ---- documents ---------------------------------------------------------- */

/* The visible text, malloc'd and NUL-terminated; *nbytes (may be NULL) set. */
char *tu_doc_text(const crdt_doc *doc, size_t *nbytes);
/* 1 if the document's text equals the model's. */
int tu_doc_equals_text(const crdt_doc *doc, const tu_text *t);

/* The version vector without zero entries (which carry no information),
 * malloc'd; *n set. */
crdt_vv_entry *tu_doc_version(const crdt_doc *doc, size_t *n);
/* 1 if the two documents have the same (zero-filtered) version vector. */
int tu_doc_same_version(const crdt_doc *a, const crdt_doc *b);

/* ---- owned op copies ---------------------------------------------------- */

typedef struct tu_oplog {
	crdt_op *ops; /* each op's text is a malloc'd copy (or NULL) */
	size_t len, cap;
} tu_oplog;

void tu_oplog_init(tu_oplog *l);
void tu_oplog_free(tu_oplog *l);
void tu_oplog_push(tu_oplog *l, const crdt_op *op);
void tu_oplog_push_batch(tu_oplog *l, const crdt_batch *b);
/* Remove op i (order of the rest kept). */
void tu_oplog_remove(tu_oplog *l, size_t i);

/* Units [k, k+m) of an insert op (or delete op) as an op of their own.
 * For inserts with text, the text points into op->text. */
crdt_op tu_op_slice(const crdt_op *op, uint32_t k, uint32_t m);

#endif /* QUIRE_TESTUTIL_H */
