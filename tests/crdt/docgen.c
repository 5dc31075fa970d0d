/*
 * docgen.c - see docgen.h.
 */
#include "docgen.h"

#include <stdio.h>
#include <stdlib.h>

int dg_random_edit(crdt_doc *doc, tu_rng *rng, unsigned maxins, unsigned maxdel, crdt_batch *out)
{
	size_t len = crdt_doc_length(doc);
	if (len == 0 || tu_rng_chance(rng, 65)) {
		char buf[4 * 64];
		unsigned n = 1 + (unsigned)tu_rng_below(rng, maxins ? maxins : 1);
		size_t off = 0;
		for (unsigned i = 0; i < n && i < 64; i++)
			off += tu_utf8_put(tu_random_cp(rng), buf + off);
		size_t pos = tu_rng_below(rng, len + 1);
		return crdt_doc_insert(doc, pos, buf, off, out);
	}
	size_t pos = tu_rng_below(rng, len);
	size_t n = 1 + tu_rng_below(rng, maxdel ? maxdel : 1);
	if (n > len - pos)
		n = len - pos;
	return crdt_doc_delete(doc, pos, n, out);
}

static void dg_die(const char *what, int st)
{
	fprintf(stderr, "docgen: %s failed: %d (%s)\n", what, st, crdt_strerror(st));
	abort();
}

crdt_doc *dg_build(uint64_t seed, unsigned nrep, unsigned rounds, const crdt_options *opts,
		   tu_oplog *log)
{
	tu_rng rng;
	tu_rng_seed(&rng, seed);
	crdt_doc *docs[8];
	size_t seen[8];
	if (nrep < 1 || nrep > 8)
		abort();
	tu_oplog all;
	tu_oplog_init(&all);
	for (unsigned i = 0; i < nrep; i++) {
		docs[i] = crdt_doc_new(i + 1, i == 0 ? opts : NULL);
		if (!docs[i])
			dg_die("crdt_doc_new", CRDT_ENOMEM);
		seen[i] = 0;
	}
	crdt_batch *b = crdt_batch_new(NULL);
	if (!b)
		dg_die("crdt_batch_new", CRDT_ENOMEM);
	for (unsigned r = 0; r <= rounds; r++) {
		int sync = r == rounds || tu_rng_chance(&rng, 15);
		if (!sync) {
			unsigned i = (unsigned)tu_rng_below(&rng, nrep);
			crdt_batch_clear(b);
			int st = dg_random_edit(docs[i], &rng, 8, 12, b);
			if (st != CRDT_OK)
				dg_die("local edit", st);
			tu_oplog_push_batch(&all, b);
			continue;
		}
		for (unsigned i = 0; i < nrep; i++) {
			for (; seen[i] < all.len; seen[i]++) {
				const crdt_op *op = &all.ops[seen[i]];
				int st = crdt_doc_apply(docs[i], op, NULL, NULL);
				if (st != CRDT_OK && st != CRDT_DUPLICATE)
					dg_die("crdt_doc_apply", st);
				if (op->id.replica != i + 1 && st != CRDT_OK)
					dg_die("crdt_doc_apply (remote op)", st);
			}
		}
	}
	crdt_batch_free(b);
	for (unsigned i = 1; i < nrep; i++)
		crdt_doc_free(docs[i]);
	if (log) {
		for (size_t i = 0; i < all.len; i++)
			tu_oplog_push(log, &all.ops[i]);
	}
	tu_oplog_free(&all);
	return docs[0];
}
