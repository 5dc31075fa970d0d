/*
 * fuzz_seedgen.c - writes the seed corpora of the fuzz targets:
 *
 *   fuzz_seedgen DIR      ->  DIR/fuzz_wire_client/..., DIR/fuzz_snapshot/...,
 *                             DIR/fuzz_oppayload/..., DIR/fuzz_crdt_ops/...
 *
 * tests/fuzz/corpus/ was made by it (then minimised with libFuzzer's
 * -merge=1, see tests/fuzz/README.md). Seeds are real encodings of real
 * edits on the same base document the targets use (fz_base_doc), so every
 * decoder and the apply paths are reached from the first execution.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz_util.h"
#include "wire.h"

static const char *root;

static void put(const char *target, const char *name, const uint8_t *p, size_t n, int prefix)
{
	char path[512];
	snprintf(path, sizeof path, "%s/%s", root, target);
	mkdir(path, 0777);
	snprintf(path, sizeof path, "%s/%s/%s", root, target, name);
	FILE *f = fopen(path, "wb");
	FZ_CHECK(f);
	if (prefix >= 0)
		fputc(prefix, f);
	FZ_CHECK(fwrite(p, 1, n, f) == n || n == 0);
	FZ_CHECK(fclose(f) == 0);
}

static crdt_op *ops_of(const crdt_batch *b, size_t *n)
{
	*n = crdt_batch_count(b);
	crdt_op *ops = malloc((*n ? *n : 1) * sizeof *ops);
	FZ_CHECK(ops);
	for (size_t i = 0; i < *n; i++)
		ops[i] = *crdt_batch_get(b, i);
	return ops;
}

/* One Update (fuzz_wire_client) and one OpBatch (fuzz_oppayload) of b. */
static void put_ops(const char *name, const crdt_batch *b, uint64_t client_batch)
{
	size_t n;
	crdt_op *ops = ops_of(b, &n);
	wire_buf w = {0};
	FZ_CHECK(wire_client_encode_update(&w, 1, client_batch, ops, n) == WIRE_OK);
	put("fuzz_wire_client", name, w.data, w.len, -1);
	w.len = 0;
	FZ_CHECK(wire_ops_encode(ops, n, &w) == WIRE_OK);
	put("fuzz_oppayload", name, w.data, w.len, -1);
	wire_buf_free(&w);
	free(ops);
}

static void put_snapshot(const char *name, const crdt_doc *d)
{
	size_t cap = crdt_doc_encode_bound(d), len;
	uint8_t *buf = malloc(cap);
	FZ_CHECK(buf && crdt_doc_encode(d, buf, cap, &len) == CRDT_OK);
	char nm[128];
	snprintf(nm, sizeof nm, "state-%s", name);
	put("fuzz_snapshot", nm, buf, len - 8, 0); /* the target appends the hash */
	free(buf);
	wire_buf w = {0};
	FZ_CHECK(wire_snapshot_encode(d, "notes/fuzz", 9, &w) == WIRE_OK);
	snprintf(nm, sizeof nm, "container-%s", name);
	put("fuzz_snapshot", nm, w.data, w.len, 1);
	wire_buf_free(&w);
}

static void wire_client_seeds(void)
{
	crdt_doc *d = fz_base_doc(FZ_R3, NULL);
	crdt_batch *b = crdt_batch_new(NULL);
	FZ_CHECK(d && b);

	FZ_CHECK(crdt_doc_insert(d, 0, "Start ", 6, b) == CRDT_OK);
	put_ops("insert-start", b, 1);
	crdt_batch_clear(b);
	FZ_CHECK(crdt_doc_insert(d, 9, "\xe4\xb8\xad\xf0\x9f\x98\x80", 7, b) == CRDT_OK);
	put_ops("insert-middle-utf8", b, 2);
	crdt_batch *held = crdt_batch_new(NULL);
	FZ_CHECK(held);
	FZ_CHECK(crdt_doc_insert(d, crdt_doc_length(d), "!", 1, held) == CRDT_OK);
	/* alone, this one depends on the two before: held or EMISSING */
	put_ops("insert-end-missing-deps", held, 3);
	crdt_batch_clear(b);
	FZ_CHECK(crdt_doc_delete(d, 2, 12, b) == CRDT_OK); /* spans replicas */
	put_ops("delete-across", b, 4);
	crdt_batch_clear(b);
	/* a whole session in one Update: typing, backspace, concurrent-like */
	crdt_doc *e = fz_base_doc(FZ_R3, NULL);
	FZ_CHECK(e);
	FZ_CHECK(crdt_doc_insert(e, 4, "abc", 3, b) == CRDT_OK);
	FZ_CHECK(crdt_doc_insert(e, 7, "d", 1, b) == CRDT_OK);
	FZ_CHECK(crdt_doc_delete(e, 6, 2, b) == CRDT_OK);
	FZ_CHECK(crdt_doc_insert(e, 0, "\xc3\xa9", 2, b) == CRDT_OK);
	FZ_CHECK(crdt_doc_delete(e, 0, crdt_doc_length(e), b) == CRDT_OK);
	put_ops("session", b, 5);
	crdt_batch_clear(b);
	/* the whole history with collected inserts (deleted text dropped) */
	FZ_CHECK(crdt_doc_ops_since(e, NULL, 0, b) == CRDT_OK);
	put_ops("history-collected", b, 6);

	/* the other client messages */
	wire_buf w = {0};
	wire_hello h = {0, "notes/fuzz", 10, FZ_R3, 4, "tok", 3};
	FZ_CHECK(wire_client_encode_hello(&w, 1, &h) == WIRE_OK);
	put("fuzz_wire_client", "hello", w.data, w.len, -1);
	w.len = 0;
	wire_presence p = {0};
	p.replica = FZ_R3;
	p.clock = 3;
	p.name = "Ann";
	p.name_len = 3;
	p.color = "#ff0000";
	p.color_len = 7;
	p.has_anchor = p.has_head = true;
	p.anchor = (crdt_id){FZ_R1, 2};
	p.head = (crdt_id){FZ_R2, 0};
	FZ_CHECK(wire_client_encode_presence(&w, 1, &p) == WIRE_OK);
	put("fuzz_wire_client", "presence", w.data, w.len, -1);
	w.len = 0;
	FZ_CHECK(wire_client_encode_ping(&w, 0, 77) == WIRE_OK);
	put("fuzz_wire_client", "ping", w.data, w.len, -1);
	w.len = 0;
	FZ_CHECK(wire_client_encode_leave(&w, 1) == WIRE_OK);
	put("fuzz_wire_client", "leave", w.data, w.len, -1);
	wire_buf_free(&w);

	put_snapshot("base", d);
	put_snapshot("deleted-all", e);
	crdt_doc *empty = crdt_doc_new(FZ_R1, NULL);
	FZ_CHECK(empty);
	put_snapshot("empty", empty);
	crdt_doc_free(empty);

	crdt_batch_free(held);
	crdt_batch_free(b);
	crdt_doc_free(d);
	crdt_doc_free(e);
}

/* A snapshot of a document with many explicit placements: three replicas
 * editing concurrently. */
static void concurrent_snapshot(void)
{
	tu_rng rng;
	tu_rng_seed(&rng, 7);
	crdt_doc *r[3];
	for (int i = 0; i < 3; i++)
		FZ_CHECK((r[i] = crdt_doc_new(FZ_R1 + (crdt_replica)i, NULL)));
	crdt_batch *b = crdt_batch_new(NULL);
	FZ_CHECK(b);
	for (int round = 0; round < 6; round++) {
		crdt_batch_clear(b);
		for (int i = 0; i < 3; i++) {
			size_t len = crdt_doc_length(r[i]);
			if (len > 4 && tu_rng_chance(&rng, 30))
				FZ_CHECK(crdt_doc_delete(r[i], tu_rng_below(&rng, len - 2), 2, b) ==
					 CRDT_OK);
			else
				FZ_CHECK(crdt_doc_insert(r[i], tu_rng_below(&rng, len + 1), "xyz",
							 3, b) == CRDT_OK);
		}
		for (size_t k = 0; k < crdt_batch_count(b); k++)
			for (int i = 0; i < 3; i++)
				crdt_doc_apply(r[i], crdt_batch_get(b, k), NULL, NULL);
	}
	put_snapshot("concurrent", r[0]);
	for (int i = 0; i < 3; i++)
		crdt_doc_free(r[i]);
	crdt_batch_free(b);
}

static void crdt_ops_seeds(void)
{
	static const size_t sizes[] = {16, 48, 128, 256, 512, 1024};
	tu_rng rng;
	tu_rng_seed(&rng, 42);
	for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
		uint8_t buf[1024];
		for (size_t i = 0; i < sizes[s]; i++)
			buf[i] = (uint8_t)tu_rng_next(&rng);
		char name[64];
		snprintf(name, sizeof name, "random-%zu", sizes[s]);
		put("fuzz_crdt_ops", name, buf, sizes[s], -1);
	}
	/* concurrent typing at one spot, then deliveries both ways */
	static const uint8_t typing[] = {0, 0x00, 0,	3, 1, 2,    0x10, 0,	3,   5,
					 6, 0x20, 0,	2, 7, 8,    0x03, 1,	0,   0x13,
					 0, 0,	  0x23, 1, 0, 0x06, 0x17, 0x27, 0x0f};
	put("fuzz_crdt_ops", "typing-conflict", typing, sizeof typing, -1);
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s OUTDIR\n", argv[0]);
		return 2;
	}
	root = argv[1];
	mkdir(root, 0777);
	wire_client_seeds();
	concurrent_snapshot();
	crdt_ops_seeds();
	return 0;
}
