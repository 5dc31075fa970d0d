/*
 * delta.c - crdt_doc_ops_since: the ops a replica at a given version lacks.
 *
 * The missing counters of each replica map to lv ranges; taken in lv order
 * (the order this document integrated them, hence a causal order) they are
 * turned back into ops. Inserts are rebuilt from the items that hold their
 * units: live units carry their text, collected ones go out as collected
 * inserts (text NULL), always followed by the deletes that removed them.
 */
#include <stdlib.h>

#include "internal.h"

typedef struct span {
	uint32_t lv, len;
} span;

static int span_cmp(const void *a, const void *b)
{
	const span *x = a, *y = b;
	return x->lv < y->lv ? -1 : x->lv > y->lv;
}

static uint32_t vv_get(const crdt_vv_entry *vv, size_t n, crdt_replica r)
{
	for (size_t i = 0; i < n; i++)
		if (vv[i].replica == r)
			return vv[i].next;
	return 0;
}

static int emit_inserts(const crdt_doc *d, const idrun *run, uint32_t lv, uint32_t n,
			crdt_batch *out)
{
	for (uint32_t k = 0; k < n;) {
		cursor c = tree_find_lv(d, lv + k);
		const item *it = &c.leaf->items[c.idx];
		uint32_t take = u32_min(n - k, it->len - c.off);
		uint32_t unit = lv + k;
		crdt_op op = {.kind = CRDT_OP_INSERT,
			      .id = {d->reps[run->rep].id, run->counter + (unit - run->lv)},
			      .lamport = run->lamport + (unit - run->lv),
			      .len = take,
			      .left = idmap_id(d, c.off > 0 ? unit - 1 : it->left),
			      .right = idmap_id(d, it->right)};
		if (ITEM_LIVE(it)) {
			uint32_t base = leaf_byte_offset(c.leaf, c.idx, 0);
			const char *t = c.leaf->text + base;
			uint32_t b0 = (uint32_t)utf8_offset(t, it->bytes, c.off);
			uint32_t b1 = (uint32_t)utf8_offset(t, it->bytes, c.off + take);
			op.text = t + b0;
			op.text_bytes = b1 - b0;
		}
		int rc = crdt_batch_push(out, &op);
		if (rc)
			return rc;
		k += take;
	}
	return CRDT_OK;
}

static int emit_deletes(const crdt_doc *d, const idrun *run, uint32_t lv, uint32_t n,
			crdt_batch *out)
{
	uint32_t skip = lv - run->lv;
	crdt_op op = {.kind = CRDT_OP_DELETE,
		      .id = {d->reps[run->rep].id, run->counter + skip},
		      .lamport = run->lamport + skip,
		      .len = n,
		      .target = {d->reps[run->trep].id, run->tcounter + skip}};
	if (!run->reversed)
		return crdt_batch_push(out, &op);
	op.len = 1;
	for (uint32_t k = 0; k < n; k++) { /* a backspace run: one unit each */
		op.id.counter = run->counter + skip + k;
		op.lamport = run->lamport + skip + k;
		op.target.counter = run->tcounter - skip - k;
		int rc = crdt_batch_push(out, &op);
		if (rc)
			return rc;
	}
	return CRDT_OK;
}

int crdt_doc_ops_since(const crdt_doc *d, const crdt_vv_entry *vv, size_t n, crdt_batch *out)
{
	/* one span per id-map run that is (partly) missing */
	size_t cap = 0;
	for (uint32_t r = 0; r < d->n_reps; r++)
		cap += d->reps[r].n_runs;
	mem scratch = {d->mem.a, 0};
	size_t spans_size = (cap ? cap : 1) * sizeof(span);
	span *spans = mem_alloc(&scratch, spans_size);
	if (!spans)
		return CRDT_ENOMEM;
	size_t ns = 0;
	for (uint32_t r = 0; r < d->n_reps; r++) {
		const replica *rep = &d->reps[r];
		uint32_t from = vv_get(vv, n, rep->id);
		for (uint32_t k = 0; k < rep->n_runs; k++) {
			const idrun *run = &d->runs[rep->runs[k]];
			if (run->counter + run->len <= from)
				continue;
			uint32_t skip = from > run->counter ? from - run->counter : 0;
			spans[ns++] = (span){run->lv + skip, run->len - skip};
		}
	}
	qsort(spans, ns, sizeof *spans, span_cmp);
	int rc = CRDT_OK;
	for (size_t i = 0; i < ns && rc == CRDT_OK; i++) {
		const idrun *run = idmap_run(d, spans[i].lv);
		rc = run->kind == CRDT_OP_INSERT
			     ? emit_inserts(d, run, spans[i].lv, spans[i].len, out)
			     : emit_deletes(d, run, spans[i].lv, spans[i].len, out);
	}
	mem_free(&scratch, spans, spans_size);
	return rc;
}
