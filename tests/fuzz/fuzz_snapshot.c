/*
 * fuzz_snapshot.c - libFuzzer target: snapshots read from disk or a Welcome.
 *
 * The first input byte picks the layer, the rest is its input:
 *   even: an engine snapshot body (crdt_doc_encode output without its
 *         trailing 8-byte hash). The target appends the right hash, so the
 *         mutations reach the decoder's structural checks instead of all
 *         dying at the hash comparison.
 *   odd:  a Snapshot container (proto/) for wire_snapshot_decode, as is.
 * A document that decodes must pass crdt_doc_check, and encoding it again
 * (engine and container) and decoding that must give the same text, version
 * vector and clock; a fresh replica fed its ops_since must agree too.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* crdt/snapshot.c, declared in crdt/internal.h (kept out of crdt.h). */
uint64_t crdt__snapshot_hash(const uint8_t *p, size_t n);

static void check_round_trip(const crdt_doc *doc)
{
	FZ_CHECK(crdt_doc_check(doc) == CRDT_OK);
	FZ_CHECK(crdt_doc_pending(doc) == 0);

	size_t cap = crdt_doc_encode_bound(doc), len = 0;
	uint8_t *buf = malloc(cap ? cap : 1);
	FZ_CHECK(buf);
	FZ_CHECK(crdt_doc_encode(doc, buf, cap, &len) == CRDT_OK);
	int st = 0;
	crdt_doc *again = crdt_doc_decode(buf, len, crdt_doc_replica(doc), NULL, &st);
	FZ_CHECK(again && st == CRDT_OK);
	FZ_CHECK(crdt_doc_check(again) == CRDT_OK);
	FZ_CHECK(fz_same_state(doc, again));
	FZ_CHECK(crdt_doc_clock(doc) == crdt_doc_clock(again));
	/* the re-encoded snapshot is stable */
	size_t cap2 = crdt_doc_encode_bound(again), len2 = 0;
	uint8_t *buf2 = malloc(cap2 ? cap2 : 1);
	FZ_CHECK(buf2);
	FZ_CHECK(crdt_doc_encode(again, buf2, cap2, &len2) == CRDT_OK);
	FZ_CHECK(len2 == len && memcmp(buf, buf2, len) == 0);
	free(buf2);
	crdt_doc_free(again);
	free(buf);

	wire_buf w = {0};
	FZ_CHECK(wire_snapshot_encode(doc, "fuzz/doc", 42, &w) == WIRE_OK);
	crdt_doc *d2 = NULL;
	uint64_t seq = 0;
	FZ_CHECK(wire_snapshot_decode(w.data, w.len, "fuzz/doc", FZ_R3, NULL, &d2, &seq, &st) ==
		 WIRE_OK);
	FZ_CHECK(d2 && seq == 42 && st == CRDT_OK);
	FZ_CHECK(fz_same_state(doc, d2));
	crdt_doc_free(d2);
	wire_buf_free(&w);

	fz_check_replay(doc);
}

static void fuzz_state(const uint8_t *body, size_t n)
{
	uint8_t *buf = malloc(n + 8);
	FZ_CHECK(buf);
	if (n)
		memcpy(buf, body, n);
	uint64_t h = crdt__snapshot_hash(buf, n);
	for (int i = 0; i < 8; i++)
		buf[n + i] = (uint8_t)(h >> (8 * i));

	int st = 0;
	crdt_doc *doc = crdt_doc_decode(buf, n + 8, FZ_SELF, &fz_opts_pending, &st);
	if (!doc) {
		FZ_CHECK(st == CRDT_ECORRUPT || st == CRDT_EVERSION);
	} else {
		FZ_CHECK(st == CRDT_OK);
		check_round_trip(doc);
		/* the loaded document works: a local edit and its echo */
		crdt_batch *b = crdt_batch_new(NULL);
		FZ_CHECK(b);
		int rc = crdt_doc_insert(doc, crdt_doc_length(doc) / 2, "\xc3\xa9!", 3, b);
		FZ_CHECK(rc == CRDT_OK || rc == CRDT_ELIMIT);
		for (size_t i = 0; i < crdt_batch_count(b); i++)
			FZ_CHECK(crdt_doc_apply(doc, crdt_batch_get(b, i), NULL, NULL) ==
				 CRDT_DUPLICATE);
		FZ_CHECK(crdt_doc_check(doc) == CRDT_OK);
		crdt_batch_free(b);
		crdt_doc_free(doc);
	}
	free(buf);
}

static void fuzz_container(const uint8_t *data, size_t n)
{
	crdt_doc *doc = NULL;
	uint64_t seq = 0;
	int st = 0;
	int rc = wire_snapshot_decode(data, n, NULL, FZ_SELF, NULL, &doc, &seq, &st);
	if (rc != WIRE_OK) {
		FZ_CHECK(doc == NULL);
		FZ_CHECK(rc == WIRE_EPARSE || rc == WIRE_EFIELD || rc == WIRE_EVERSION ||
			 rc == WIRE_EUTF8 || rc == WIRE_ETOOBIG);
		return;
	}
	FZ_CHECK(doc && st == CRDT_OK);
	check_round_trip(doc);
	crdt_doc_free(doc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	if ((data[0] & 1) == 0)
		fuzz_state(data + 1, size - 1);
	else
		fuzz_container(data + 1, size - 1);
	return 0;
}
