/*
 * check.c - crdt_doc_check: verify every structural invariant of a
 * document (see tree.c, lvmap.c, idmap.c and INTERNALS.md). O(n); meant
 * for tests, fuzzers and `quire-dump verify`, not for hot paths.
 */
#include "internal.h"

#ifdef CRDT_CHECK_TRACE /* debugging aid: say which invariant failed */
#include <stdio.h>
#define CHECK_FAILED(cond) fprintf(stderr, "crdt_doc_check: %s:%d: %s\n", __FILE__, __LINE__, #cond)
#else
#define CHECK_FAILED(cond) ((void)0)
#endif

#define EXPECT(cond)                          \
	do {                                  \
		if (!(cond)) {                \
			CHECK_FAILED(cond);   \
			return CRDT_ECORRUPT; \
		}                             \
	} while (0)

typedef struct walk {
	const crdt_doc *d;
	const leaf *expect_next; /* leaves must appear in chain order */
	uint32_t order;		 /* in-order index of the leaf being visited */
	uint32_t *leaf_order;	 /* by leaf id */
} walk;

static int check_leaf(walk *w, const leaf *l, uint32_t *vis, uint32_t *all, size_t *bytes)
{
	EXPECT(l == w->expect_next);
	EXPECT(l->id < w->d->n_leaves && w->d->leaves[l->id] == l);
	EXPECT(l->n <= LEAF_CAP && (l->n > 0 || w->d->all_len == 0));
	EXPECT(!l->next || l->next->prev == l);
	w->leaf_order[l->id] = w->order++;
	w->expect_next = l->next;
	uint32_t tb = 0;
	*vis = *all = 0;
	for (uint32_t i = 0; i < l->n; i++) {
		const item *it = &l->items[i];
		EXPECT(it->len > 0 && (uint64_t)it->lv + it->len <= w->d->next_lv);
		if (ITEM_LIVE(it)) {
			EXPECT(it->bytes >= it->len && tb + it->bytes <= l->text_len);
			EXPECT(crdt_utf8_count(l->text + tb, it->bytes) == (long)it->len);
			*vis += it->len;
		}
		*all += it->len;
		tb += it->bytes;
		/* an item may span ops (and replicas), all of them inserts */
		const idrun *end = w->d->runs + w->d->n_runs;
		for (const idrun *r = idmap_run(w->d, it->lv); r < end && r->lv < it->lv + it->len;
		     r++) {
#ifdef CRDT_CHECK_TRACE
			if (r->kind != CRDT_OP_INSERT)
				fprintf(stderr,
					"item lv %u len %u bytes %u; run lv %u len %u kind %d\n",
					it->lv, it->len, it->bytes, r->lv, r->len, r->kind);
#endif
			EXPECT(r->kind == CRDT_OP_INSERT);
		}
		EXPECT(it->left == LV_NONE || it->left < it->lv);
		EXPECT(it->right == LV_NONE || it->right < it->lv);
	}
	EXPECT(tb == l->text_len && l->text_len <= l->text_cap);
	*bytes += tb;
	return CRDT_OK;
}

static int check_node(walk *w, const void *n, uint32_t height, const inode *parent, uint32_t slot,
		      uint32_t *vis, uint32_t *all, size_t *bytes)
{
	if (height == 0) {
		const leaf *l = n;
		EXPECT(l->parent == parent && (!parent || l->slot == slot));
		return check_leaf(w, l, vis, all, bytes);
	}
	const inode *in = n;
	EXPECT(in->parent == parent && (!parent || in->slot == slot));
	EXPECT(in->n >= 1 && in->n <= NODE_CAP && in->leaf_children == (height == 1));
	*vis = *all = 0;
	for (uint32_t i = 0; i < in->n; i++) {
		uint32_t cv, ca;
		int rc = check_node(w, in->child[i], height - 1, in, i, &cv, &ca, bytes);
		if (rc)
			return rc;
		EXPECT(cv == in->vis[i] && ca == in->all[i]);
		*vis += cv;
		*all += ca;
	}
	return CRDT_OK;
}

static int check_ids(const crdt_doc *d)
{
	uint32_t lv = 0, inserted = 0;
	for (uint32_t i = 0; i < d->n_runs; i++) {
		const idrun *r = &d->runs[i];
		EXPECT(r->lv == lv && r->len > 0 && r->rep < d->n_reps);
		EXPECT((uint64_t)r->lamport + r->len <= d->clock);
		if (r->kind == CRDT_OP_INSERT)
			inserted += r->len;
		else
			EXPECT(r->kind == CRDT_OP_DELETE && r->trep < d->n_reps);
		lv += r->len;
	}
	EXPECT(lv == d->next_lv && inserted == d->all_len);
	for (uint32_t i = 0; i < d->n_reps; i++) {
		const replica *p = &d->reps[i];
		uint32_t counter = 0;
		for (uint32_t k = 0; k < p->n_runs; k++) {
			const idrun *r = &d->runs[p->runs[k]];
			EXPECT(p->runs[k] < d->n_runs && r->rep == i && r->counter == counter);
			counter += r->len;
		}
		EXPECT(counter == p->next);
		if (i > 0)
			EXPECT(d->reps[d->rep_order[i - 1]].id < d->reps[d->rep_order[i]].id);
	}
	return CRDT_OK;
}

int crdt_doc_check(const crdt_doc *d)
{
	int rc = check_ids(d);
	if (rc)
		return rc;
	mem scratch = {NULL, 0};
	uint32_t *order = mem_alloc(&scratch, (size_t)d->n_leaves * sizeof *order + 1);
	if (!order)
		return CRDT_ENOMEM;
	walk w = {d, d->first, 0, order};
	uint32_t vis, all;
	size_t bytes = 0;
	rc = check_node(&w, d->root, d->height, NULL, 0, &vis, &all, &bytes);
	if (!rc && (w.expect_next != NULL || w.order != d->n_leaves || vis != d->vis_len ||
		    all != d->all_len || bytes != d->bytes))
		rc = CRDT_ECORRUPT;
	/* the lv map points at the holding leaf or one to its left */
	for (const leaf *l = d->first; !rc && l; l = l->next)
		for (uint32_t i = 0; i < l->n && !rc; i++) {
			const item *it = &l->items[i];
			uint32_t a = lvmap_get(d, it->lv), b = lvmap_get(d, it->lv + it->len - 1);
			if (a >= d->n_leaves || b >= d->n_leaves || order[a] > order[l->id] ||
			    order[b] > order[l->id])
				rc = CRDT_ECORRUPT;
		}
	mem_free(&scratch, order, (size_t)d->n_leaves * sizeof *order + 1);
	return rc;
}
