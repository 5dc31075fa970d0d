/*
 * fuzz_util.c - shared checks of the fuzz targets (see fuzz_util.h).
 */
#include "fuzz_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const crdt_options fz_opts_strict = {NULL, 0, 0};
const crdt_options fz_opts_pending = {NULL, 64, 64 * 1024};

void fz_fail(const char *file, int line, const char *what)
{
	fprintf(stderr, "%s:%d: fuzz check failed: %s\n", file, line, what);
	abort();
}

static void must(int rc) { FZ_CHECK(rc >= 0); }

static void send_all(const crdt_batch *b, crdt_doc *const *to, size_t n_to)
{
	for (size_t i = 0; i < crdt_batch_count(b); i++)
		for (size_t k = 0; k < n_to; k++)
			FZ_CHECK(crdt_doc_apply(to[k], crdt_batch_get(b, i), NULL, NULL) ==
				 CRDT_OK);
}

crdt_doc *fz_base_doc(crdt_replica self, const crdt_options *opts)
{
	crdt_doc *d = crdt_doc_new(self, opts);
	crdt_doc *a = crdt_doc_new(FZ_R1, NULL);
	crdt_doc *b = crdt_doc_new(FZ_R2, NULL);
	crdt_batch *ba = crdt_batch_new(NULL), *bb = crdt_batch_new(NULL);
	FZ_CHECK(d && a && b && ba && bb);

	static const char t1[] = "Hello, world! Gr\xc3\xbc\xc3\x9f"
				 "e \xe2\x82\xac \xf0\x9f\x98\x80 end";
	must(crdt_doc_insert(a, 0, t1, sizeof t1 - 1, ba));
	crdt_doc *to_b[] = {b, d};
	send_all(ba, to_b, 2);
	crdt_batch_clear(ba);

	/* concurrent: A types in the middle, B inserts at the same place and
	 * deletes a word */
	must(crdt_doc_insert(a, 5, " there", 6, ba));
	must(crdt_doc_insert(b, 5, "XY", 2, bb));
	must(crdt_doc_delete(b, 7, 6, bb));
	crdt_doc *to_a[] = {a, d};
	send_all(bb, to_a, 2);
	crdt_doc *to_b2[] = {b, d};
	send_all(ba, to_b2, 2);
	crdt_batch_clear(ba);
	crdt_batch_clear(bb);

	/* A deletes across both replicas' units, B backspaces at the end */
	must(crdt_doc_delete(a, 3, 6, ba));
	size_t n = crdt_doc_length(b);
	must(crdt_doc_delete(b, n - 1, 1, bb));
	must(crdt_doc_delete(b, n - 2, 1, bb));
	send_all(ba, to_b2, 2);
	send_all(bb, to_a, 2);

	FZ_CHECK(crdt_doc_check(d) == CRDT_OK);
	FZ_CHECK(fz_same_state(a, d) && fz_same_state(b, d));
	crdt_batch_free(ba);
	crdt_batch_free(bb);
	crdt_doc_free(a);
	crdt_doc_free(b);
	return d;
}

void fz_mirror_init(fz_mirror *m, const crdt_doc *doc)
{
	tu_text_init(&m->text);
	m->bad_patch = 0;
	size_t nb;
	char *s = tu_doc_text(doc, &nb);
	tu_text_insert_utf8(&m->text, 0, s, nb);
	free(s);
}

void fz_mirror_free(fz_mirror *m) { tu_text_free(&m->text); }

static void on_patch(void *ctx, const crdt_patch *p)
{
	fz_mirror *m = ctx;
	if (tu_text_apply_patch(&m->text, p) != 0)
		m->bad_patch = 1;
}

typedef struct snap {
	char *text;
	size_t nbytes;
	crdt_vv_entry *vv;
	size_t n_vv;
	uint32_t clock;
	size_t pending;
} snap;

static void snap_take(snap *s, const crdt_doc *d)
{
	s->text = tu_doc_text(d, &s->nbytes);
	s->vv = tu_doc_version(d, &s->n_vv);
	s->clock = crdt_doc_clock(d);
	s->pending = crdt_doc_pending(d);
}

static int snap_equal(const snap *s, const crdt_doc *d)
{
	snap t;
	snap_take(&t, d);
	int eq = s->nbytes == t.nbytes && memcmp(s->text, t.text, s->nbytes) == 0 &&
		 s->n_vv == t.n_vv && s->clock == t.clock && s->pending == t.pending;
	for (size_t i = 0; eq && i < s->n_vv; i++) /* not memcmp: padding */
		eq = s->vv[i].replica == t.vv[i].replica && s->vv[i].next == t.vv[i].next;
	free(t.text);
	free(t.vv);
	return eq;
}

static void snap_free(snap *s)
{
	free(s->text);
	free(s->vv);
}

int fz_apply_op(crdt_doc *doc, const crdt_op *op, fz_mirror *m)
{
	snap before;
	snap_take(&before, doc);
	int rc = crdt_doc_apply(doc, op, on_patch, m);
	switch (rc) {
	case CRDT_OK:
	case CRDT_DUPLICATE:
	case CRDT_PENDING:
		break;
	case CRDT_EINVAL:
	case CRDT_EUTF8:
	case CRDT_EMISSING:
	case CRDT_EPENDING_FULL:
	case CRDT_ELIMIT:
		/* refused: nothing changed */
		FZ_CHECK(snap_equal(&before, doc));
		break;
	default:
		fprintf(stderr, "crdt_doc_apply: unexpected status %d (%s)\n", rc,
			crdt_strerror(rc));
		FZ_CHECK(!"unexpected crdt_doc_apply status");
	}
	if (rc == CRDT_DUPLICATE)
		FZ_CHECK(snap_equal(&before, doc));
	snap_free(&before);
	FZ_CHECK(crdt_doc_check(doc) == CRDT_OK);
	FZ_CHECK(!m->bad_patch);
	return rc;
}

int fz_apply_fast(crdt_doc *doc, const crdt_op *op, fz_mirror *m)
{
	int rc = crdt_doc_apply(doc, op, on_patch, m);
	FZ_CHECK(rc == CRDT_OK || rc == CRDT_DUPLICATE || rc == CRDT_PENDING || rc == CRDT_EINVAL ||
		 rc == CRDT_EUTF8 || rc == CRDT_EMISSING || rc == CRDT_EPENDING_FULL ||
		 rc == CRDT_ELIMIT);
	FZ_CHECK(!m->bad_patch);
	return rc;
}

size_t fz_apply_batch(crdt_doc *doc, const crdt_batch *b, fz_mirror *m)
{
	size_t applied = 0;
	for (size_t i = 0; i < crdt_batch_count(b); i++)
		if (fz_apply_op(doc, crdt_batch_get(b, i), m) == CRDT_OK)
			applied++;
	FZ_CHECK(tu_doc_equals_text(doc, &m->text));
	return applied;
}

int fz_same_state(const crdt_doc *a, const crdt_doc *b)
{
	size_t na, nb;
	char *ta = tu_doc_text(a, &na), *tb = tu_doc_text(b, &nb);
	int eq = na == nb && memcmp(ta, tb, na) == 0 && tu_doc_same_version(a, b);
	free(ta);
	free(tb);
	return eq;
}

void fz_check_replay(const crdt_doc *doc)
{
	crdt_batch *all = crdt_batch_new(NULL);
	crdt_doc *fresh = crdt_doc_new(0x7777777777ull, NULL);
	FZ_CHECK(all && fresh);
	FZ_CHECK(crdt_doc_ops_since(doc, NULL, 0, all) == CRDT_OK);
	for (size_t i = 0; i < crdt_batch_count(all); i++)
		FZ_CHECK(crdt_doc_apply(fresh, crdt_batch_get(all, i), NULL, NULL) == CRDT_OK);
	FZ_CHECK(crdt_doc_check(fresh) == CRDT_OK);
	FZ_CHECK(fz_same_state(doc, fresh));
	crdt_doc_free(fresh);
	crdt_batch_free(all);
}
