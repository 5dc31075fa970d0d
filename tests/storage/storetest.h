/*
 * storetest.h - helpers shared by the storage tests: temporary directories,
 * a "writer" that makes real CRDT edits and turns each into a store_change
 * (wire_ops_encode payload) while remembering the text at every seq, raw
 * SQLite access for damaging a database on purpose, and an independent
 * CRC-32C to forge checksums. No CMocka inside (the crash test's child uses
 * it too).
 */
#ifndef QUIRE_STORETEST_H
#define QUIRE_STORETEST_H

#include <stddef.h>
#include <stdint.h>

#include "crdt.h"
#include "store.h"
#include "wire.h"

/* ---- files ---- */

/* A new directory under /tmp (mkdtemp), malloc'd path; aborts on failure. */
char *st_tmpdir(void);
/* Remove every file in dir, then dir; frees the path. */
void st_rmdir(char *dir);
/* dir + "/" + name, malloc'd. */
char *st_join(const char *dir, const char *name);

/* ---- writer: one replica editing one document ---- */

typedef struct st_writer {
	char doc_id[64];
	crdt_doc *doc;
	crdt_batch *batch;
	uint64_t seq;	    /* seq of the last change made */
	char **texts;	    /* texts[s] = the text after change s (texts[0] = "") */
	wire_buf *payloads; /* payloads[s] for s >= 1 */
	size_t cap;
} st_writer;

void st_writer_init(st_writer *w, const char *doc_id, crdt_replica replica);
void st_writer_free(st_writer *w);
/* Insert text at code point pos (SIZE_MAX: at the end) as change seq + 1;
 * returns that change (payload owned by the writer). */
store_change st_insert(st_writer *w, size_t pos, const char *text);
/* Delete len code points at pos as the next change. */
store_change st_delete(st_writer *w, size_t pos, size_t len);
/* A random edit (seeded PRNG state *rng). */
store_change st_random_edit(st_writer *w, uint64_t *rng);
/* Make n random edits and append them, `per_batch` changes per store_append;
 * returns the first non-OK status. */
int st_append_random(store *db, st_writer *w, size_t n, size_t per_batch, uint64_t *rng);

/* The visible text, malloc'd, NUL-terminated. */
char *st_text(const crdt_doc *doc);

uint64_t st_rand(uint64_t *state); /* splitmix64 */

/* ---- raw database access (tests that damage data) ---- */

/* Run SQL on the file with a separate sqlite3 connection; 0 or SQLite rc. */
int st_sql(const char *path, const char *sql);
/* An integer from a query, or INT64_MIN on error. */
int64_t st_sql_int(const char *path, const char *sql);
/* Replace the snapshot blob of (doc, seq) by a copy with byte `off` XORed
 * with mask (off taken modulo the length). 0 or SQLite rc. */
int st_flip_snapshot(const char *path, const char *doc_id, uint64_t seq, size_t off, uint8_t mask);
/* Replace the snapshot blob with `data` and fix raw_size/checksum as given. */
int st_set_snapshot(const char *path, const char *doc_id, uint64_t seq, const void *data,
		    size_t len, int64_t raw_size, int64_t checksum);
/* Read the snapshot blob (malloc'd) and its raw_size; 0 or SQLite rc. */
int st_get_snapshot(const char *path, const char *doc_id, uint64_t seq, uint8_t **data, size_t *len,
		    int64_t *raw_size);

/* CRC-32C, bit by bit (independent of storage/crc32c.c). */
uint32_t st_crc32c(const void *data, size_t len);

#endif
