/*
 * fuzz_crdt_ops.c - libFuzzer target: the CRDT across three replicas.
 *
 * The input is a program. Each step is one command read from the bytes:
 * a local insert (1-8 code points mixing 1- to 4-byte UTF-8) or delete at a
 * replica, the delivery of any op made so far to any replica (duplicates,
 * reordering and ops whose dependencies are missing included: the replicas
 * hold up to 64 ops pending), the delivery of a slice of an op (a partly
 * known op), a replica replaced by its decoded snapshot, anti-entropy
 * through ops_since, or a full in-order delivery. Each replica keeps a
 * code-point model, updated by its local edits and by the patches of what
 * it applies. After every step every replica passes crdt_doc_check and
 * equals its model. At the end every op is delivered everywhere in the
 * order it was made: the three replicas must hold the same text and
 * version vector, nothing pending. Any divergence aborts.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum { NREP = 3, MAX_STEPS = 128 };

typedef struct reader {
	const uint8_t *p;
	size_t n, at;
} reader;

static unsigned get(reader *r) { return r->at < r->n ? r->p[r->at++] : 0; }

/* Two bytes, little endian (two calls in one expression would be read in
 * an order the compiler picks). */
static unsigned get16(reader *r)
{
	unsigned lo = get(r);
	return lo | get(r) << 8;
}

typedef struct replica {
	crdt_doc *doc;
	fz_mirror m; /* the model: local edits and patches */
} replica;

static const uint32_t pool[] = {'a',	'b',	'c',	 ' ',	   0xe9, 0x3b1,
				0x20ac, 0x4e2d, 0x1f600, 0x10ffff, 0x7f, 0x80};

static void local_insert(replica *r, reader *in, tu_oplog *log, crdt_batch *out)
{
	size_t len = crdt_doc_length(r->doc);
	size_t pos = get(in) % (len + 1);
	unsigned n = 1 + get(in) % 8;
	uint32_t cps[8];
	char utf8[32];
	size_t nb = 0;
	for (unsigned i = 0; i < n; i++) {
		cps[i] = pool[get(in) % (sizeof pool / sizeof pool[0])];
		nb += tu_utf8_put(cps[i], utf8 + nb);
	}
	crdt_batch_clear(out);
	FZ_CHECK(crdt_doc_insert(r->doc, pos, utf8, nb, out) == CRDT_OK);
	tu_text_insert(&r->m.text, pos, cps, n);
	tu_oplog_push_batch(log, out);
}

static void local_delete(replica *r, reader *in, tu_oplog *log, crdt_batch *out)
{
	size_t len = crdt_doc_length(r->doc);
	size_t pos = get(in) % (len + 1);
	size_t n = 1 + get(in) % 8;
	if (pos + n > len)
		n = len - pos;
	crdt_batch_clear(out);
	FZ_CHECK(crdt_doc_delete(r->doc, pos, n, out) == CRDT_OK);
	tu_text_delete(&r->m.text, pos, n);
	tu_oplog_push_batch(log, out);
}

static void deliver_all(replica *r, const tu_oplog *log)
{
	for (size_t i = 0; i < log->len; i++) {
		int rc = fz_apply_fast(r->doc, &log->ops[i], &r->m);
		FZ_CHECK(rc == CRDT_OK || rc == CRDT_DUPLICATE);
	}
}

static void reload(replica *r)
{
	size_t cap = crdt_doc_encode_bound(r->doc), len = 0;
	uint8_t *buf = malloc(cap);
	FZ_CHECK(buf);
	FZ_CHECK(crdt_doc_encode(r->doc, buf, cap, &len) == CRDT_OK);
	int st = 0;
	crdt_doc *d = crdt_doc_decode(buf, len, crdt_doc_replica(r->doc), &fz_opts_pending, &st);
	FZ_CHECK(d && st == CRDT_OK);
	FZ_CHECK(crdt_doc_check(d) == CRDT_OK);
	FZ_CHECK(fz_same_state(d, r->doc));
	FZ_CHECK(crdt_doc_clock(d) == crdt_doc_clock(r->doc));
	free(buf);
	crdt_doc_free(r->doc); /* its pending ops are lost, as on a restart */
	r->doc = d;
}

static void anti_entropy(replica *to, const replica *from)
{
	size_t n = crdt_doc_version(to->doc, NULL, 0);
	crdt_vv_entry *vv = malloc((n ? n : 1) * sizeof *vv);
	crdt_batch *b = crdt_batch_new(NULL);
	FZ_CHECK(vv && b);
	FZ_CHECK(crdt_doc_version(to->doc, vv, n) == n);
	FZ_CHECK(crdt_doc_ops_since(from->doc, vv, n, b) == CRDT_OK);
	for (size_t i = 0; i < crdt_batch_count(b); i++) {
		int rc = fz_apply_fast(to->doc, crdt_batch_get(b, i), &to->m);
		FZ_CHECK(rc == CRDT_OK || rc == CRDT_DUPLICATE);
	}
	/* `to` now has everything `from` has */
	size_t nf = crdt_doc_version(from->doc, NULL, 0);
	crdt_vv_entry *fv = malloc((nf ? nf : 1) * sizeof *fv);
	FZ_CHECK(fv);
	crdt_doc_version(from->doc, fv, nf);
	for (size_t i = 0; i < nf; i++)
		FZ_CHECK(crdt_doc_seen(to->doc, fv[i].replica) >= fv[i].next);
	free(fv);
	crdt_batch_free(b);
	free(vv);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const crdt_replica ids[] = {0x10, 0x20, 0xffffffffffffff00ull};
	reader in = {data, size, 0};
	unsigned rot = get(&in) % NREP;
	replica reps[NREP];
	for (int i = 0; i < NREP; i++) {
		reps[i].doc = crdt_doc_new(ids[(i + rot) % NREP], &fz_opts_pending);
		FZ_CHECK(reps[i].doc);
		fz_mirror_init(&reps[i].m, reps[i].doc);
	}
	tu_oplog log;
	tu_oplog_init(&log);
	crdt_batch *out = crdt_batch_new(NULL);
	FZ_CHECK(out);

	for (int step = 0; step < MAX_STEPS && in.at < in.n; step++) {
		unsigned c = get(&in);
		replica *r = &reps[(c >> 4) % NREP];
		switch (c & 7) {
		case 0:
		case 1:
			local_insert(r, &in, &log, out);
			break;
		case 2:
			local_delete(r, &in, &log, out);
			break;
		case 3:
		case 4:
			if (log.len) {
				size_t k = get16(&in) % log.len;
				fz_apply_op(r->doc, &log.ops[k], &r->m);
			}
			break;
		case 5:
			if (log.len) {
				const crdt_op *op = &log.ops[get16(&in) % log.len];
				uint32_t k = get(&in) % op->len;
				uint32_t m = 1 + get(&in) % (op->len - k);
				crdt_op s = tu_op_slice(op, k, m);
				fz_apply_op(r->doc, &s, &r->m);
			}
			break;
		case 6:
			reload(r);
			break;
		case 7:
			if (c & 8)
				anti_entropy(r, &reps[(c >> 6) % NREP]);
			else
				deliver_all(r, &log);
			break;
		}
		for (int i = 0; i < NREP; i++) {
			FZ_CHECK(crdt_doc_check(reps[i].doc) == CRDT_OK);
			FZ_CHECK(!reps[i].m.bad_patch);
			FZ_CHECK(tu_doc_equals_text(reps[i].doc, &reps[i].m.text));
		}
	}

	/* deliver everything everywhere: convergence */
	for (int i = 0; i < NREP; i++) {
		deliver_all(&reps[i], &log);
		FZ_CHECK(crdt_doc_check(reps[i].doc) == CRDT_OK);
		FZ_CHECK(crdt_doc_pending(reps[i].doc) == 0);
		FZ_CHECK(tu_doc_equals_text(reps[i].doc, &reps[i].m.text));
	}
	for (int i = 1; i < NREP; i++)
		FZ_CHECK(fz_same_state(reps[0].doc, reps[i].doc));
	fz_check_replay(reps[0].doc);

	for (int i = 0; i < NREP; i++) {
		fz_mirror_free(&reps[i].m);
		crdt_doc_free(reps[i].doc);
	}
	crdt_batch_free(out);
	tu_oplog_free(&log);
	return 0;
}
