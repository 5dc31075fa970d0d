/*
 * testutil.c - the shared test helpers declared in testutil.h. They abort
 * on their own allocation failures (test infrastructure, not code under
 * test) and never call into CMocka.
 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *tu_xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p) {
		fprintf(stderr, "testutil: out of memory\n");
		abort();
	}
	return p;
}

static void *tu_xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (!p) {
		fprintf(stderr, "testutil: out of memory\n");
		abort();
	}
	return p;
}

/* ---- PRNG ---------------------------------------------------------------- */

void tu_rng_seed(tu_rng *r, uint64_t seed)
{
	r->s = seed ^ 0x6a09e667f3bcc909ull;
}

uint64_t tu_rng_next(tu_rng *r)
{
	uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

uint64_t tu_rng_below(tu_rng *r, uint64_t n)
{
	return n ? tu_rng_next(r) % n : 0;
}

int tu_rng_chance(tu_rng *r, unsigned pct)
{
	return tu_rng_below(r, 100) < pct;
}

/* ---- allocator ----------------------------------------------------------- */

/* Each block carries a header with its size and a magic word so that a
 * release with the wrong size or a foreign pointer is counted. */
#define TU_HDR 16
#define TU_MAGIC 0x51756972u /* "Quir" */

void tu_fault_init(tu_fault *f, long countdown, int persistent)
{
	memset(f, 0, sizeof *f);
	f->countdown = countdown;
	f->persistent = persistent;
}

static void *tu_alloc_fn(void *ctx, size_t size)
{
	tu_alloc *al = ctx;
	tu_fault *f = al->fault;
	if (f) {
		f->calls++;
		if (f->tripped) {
			f->failures++;
			return NULL;
		}
		if (f->countdown == 0) {
			f->failures++;
			f->countdown = -1;
			if (f->persistent)
				f->tripped = 1;
			return NULL;
		}
		if (f->countdown > 0)
			f->countdown--;
	}
	if (size > SIZE_MAX - TU_HDR)
		return NULL;
	unsigned char *p = malloc(size + TU_HDR);
	if (!p)
		return NULL;
	uint32_t magic = TU_MAGIC;
	memcpy(p, &size, sizeof size);
	memcpy(p + 8, &magic, sizeof magic);
	al->held += size;
	al->blocks++;
	if (al->held > al->peak)
		al->peak = al->held;
	return p + TU_HDR;
}

static void tu_release_fn(void *ctx, void *ptr, size_t size)
{
	tu_alloc *al = ctx;
	if (!ptr)
		return;
	unsigned char *p = (unsigned char *)ptr - TU_HDR;
	size_t have;
	uint32_t magic;
	memcpy(&have, p, sizeof have);
	memcpy(&magic, p + 8, sizeof magic);
	if (magic != TU_MAGIC || have != size) {
		al->bad_release++;
		if (magic != TU_MAGIC)
			return; /* not ours: do not free */
	}
	memset(p + 8, 0, 4);
	al->held -= have;
	al->blocks--;
	free(p);
}

void tu_alloc_init(tu_alloc *al, tu_fault *fault)
{
	memset(al, 0, sizeof *al);
	al->a.alloc = tu_alloc_fn;
	al->a.release = tu_release_fn;
	al->a.ctx = al;
	al->fault = fault;
}

/* ---- UTF-8 ---------------------------------------------------------------- */

size_t tu_utf8_put(uint32_t cp, char *out)
{
	unsigned char *o = (unsigned char *)out;
	if (cp < 0x80) {
		o[0] = (unsigned char)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (unsigned char)(0xC0 | (cp >> 6));
		o[1] = (unsigned char)(0x80 | (cp & 0x3F));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (unsigned char)(0xE0 | (cp >> 12));
		o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
		o[2] = (unsigned char)(0x80 | (cp & 0x3F));
		return 3;
	}
	o[0] = (unsigned char)(0xF0 | (cp >> 18));
	o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
	o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
	o[3] = (unsigned char)(0x80 | (cp & 0x3F));
	return 4;
}

size_t tu_utf8_get(const char *s, uint32_t *cp)
{
	const unsigned char *u = (const unsigned char *)s;
	if (u[0] < 0x80) {
		*cp = u[0];
		return 1;
	}
	if (u[0] < 0xE0) {
		*cp = ((uint32_t)(u[0] & 0x1F) << 6) | (u[1] & 0x3F);
		return 2;
	}
	if (u[0] < 0xF0) {
		*cp = ((uint32_t)(u[0] & 0x0F) << 12) | ((uint32_t)(u[1] & 0x3F) << 6) |
		      (u[2] & 0x3F);
		return 3;
	}
	*cp = ((uint32_t)(u[0] & 0x07) << 18) | ((uint32_t)(u[1] & 0x3F) << 12) |
	      ((uint32_t)(u[2] & 0x3F) << 6) | (u[3] & 0x3F);
	return 4;
}

size_t tu_utf8_offset(const char *s, size_t nbytes, size_t cps)
{
	size_t off = 0;
	while (cps > 0 && off < nbytes) {
		uint32_t cp;
		off += tu_utf8_get(s + off, &cp);
		cps--;
	}
	return off;
}

uint32_t tu_random_cp(tu_rng *r)
{
	static const uint32_t two[] = {0xE9, 0xDF, 0x3A9, 0x436, 0x80, 0x7FF};
	static const uint32_t three[] = {0x4E2D, 0x20AC, 0x2603, 0x939, 0x800,
					 0xFFFF, 0xD7FF, 0xE000, 0xFFFD};
	static const uint32_t four[] = {0x1F600, 0x1D11E, 0x1F389, 0x10348, 0x10000, 0x10FFFF};
	uint64_t k = tu_rng_below(r, 100);
	if (k < 55)
		return (uint32_t)('a' + tu_rng_below(r, 26));
	if (k < 62)
		return ' ';
	if (k < 65)
		return k == 63 ? '\n' : 0x7F;
	if (k < 77)
		return two[tu_rng_below(r, sizeof two / sizeof two[0])];
	if (k < 89)
		return three[tu_rng_below(r, sizeof three / sizeof three[0])];
	return four[tu_rng_below(r, sizeof four / sizeof four[0])];
}

/* ---- text model ----------------------------------------------------------- */

void tu_text_init(tu_text *t)
{
	memset(t, 0, sizeof *t);
}

void tu_text_free(tu_text *t)
{
	free(t->cp);
	memset(t, 0, sizeof *t);
}

void tu_text_insert(tu_text *t, size_t pos, const uint32_t *cps, size_t n)
{
	if (pos > t->len)
		abort();
	if (n == 0)
		return;
	if (t->len + n > t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 64;
		while (cap < t->len + n)
			cap *= 2;
		t->cp = tu_xrealloc(t->cp, cap * sizeof *t->cp);
		t->cap = cap;
	}
	memmove(t->cp + pos + n, t->cp + pos, (t->len - pos) * sizeof *t->cp);
	memcpy(t->cp + pos, cps, n * sizeof *t->cp);
	t->len += n;
}

void tu_text_delete(tu_text *t, size_t pos, size_t n)
{
	if (pos > t->len || n > t->len - pos)
		abort();
	if (n == 0)
		return;
	memmove(t->cp + pos, t->cp + pos + n, (t->len - pos - n) * sizeof *t->cp);
	t->len -= n;
}

size_t tu_text_insert_utf8(tu_text *t, size_t pos, const char *s, size_t nbytes)
{
	uint32_t *tmp = tu_xmalloc(nbytes * sizeof *tmp);
	size_t n = 0, off = 0;
	while (off < nbytes)
		off += tu_utf8_get(s + off, &tmp[n++]);
	tu_text_insert(t, pos, tmp, n);
	free(tmp);
	return n;
}

size_t tu_text_utf8_bytes(const tu_text *t)
{
	size_t n = 0;
	for (size_t i = 0; i < t->len; i++) {
		uint32_t c = t->cp[i];
		n += c < 0x80 ? 1 : c < 0x800 ? 2 : c < 0x10000 ? 3 : 4;
	}
	return n;
}

int tu_text_equal(const tu_text *a, const tu_text *b)
{
	return a->len == b->len &&
	       (a->len == 0 || memcmp(a->cp, b->cp, a->len * sizeof *a->cp) == 0);
}

char *tu_text_utf8(const tu_text *t, size_t *nbytes)
{
	char *s = tu_xmalloc(t->len * 4 + 1);
	size_t off = 0;
	for (size_t i = 0; i < t->len; i++)
		off += tu_utf8_put(t->cp[i], s + off);
	s[off] = 0;
	if (nbytes)
		*nbytes = off;
	return s;
}

int tu_text_apply_patch(tu_text *t, const crdt_patch *p)
{
	if (p->pos > t->len || p->deleted > t->len - p->pos)
		return -1;
	if (p->inserted > 0 && !p->text)
		return -1;
	if (p->text_bytes > 0 && crdt_utf8_count(p->text, p->text_bytes) != (long)p->inserted)
		return -1;
	if (p->text_bytes == 0 && p->inserted != 0)
		return -1;
	tu_text_delete(t, p->pos, p->deleted);
	if (p->inserted)
		tu_text_insert_utf8(t, p->pos, p->text, p->text_bytes);
	return 0;
}

/* ---- documents ------------------------------------------------------------ */

char *tu_doc_text(const crdt_doc *doc, size_t *nbytes)
{
	size_t need = crdt_doc_text(doc, NULL, 0);
	char *s = tu_xmalloc(need + 1);
	size_t got = crdt_doc_text(doc, s, need + 1);
	if (got != need)
		abort();
	s[need] = 0;
	if (nbytes)
		*nbytes = need;
	return s;
}

int tu_doc_equals_text(const crdt_doc *doc, const tu_text *t)
{
	size_t a, b;
	char *x = tu_doc_text(doc, &a);
	char *y = tu_text_utf8(t, &b);
	int eq = a == b && memcmp(x, y, a) == 0 && crdt_doc_length(doc) == t->len &&
		 crdt_doc_utf8_bytes(doc) == b;
	free(x);
	free(y);
	return eq;
}

crdt_vv_entry *tu_doc_version(const crdt_doc *doc, size_t *n)
{
	size_t total = crdt_doc_version(doc, NULL, 0);
	crdt_vv_entry *v = tu_xmalloc((total + 1) * sizeof *v);
	size_t got = crdt_doc_version(doc, v, total);
	if (got != total)
		abort();
	size_t k = 0;
	for (size_t i = 0; i < total; i++)
		if (v[i].next != 0)
			v[k++] = v[i];
	*n = k;
	return v;
}

int tu_doc_same_version(const crdt_doc *a, const crdt_doc *b)
{
	size_t na, nb;
	crdt_vv_entry *va = tu_doc_version(a, &na);
	crdt_vv_entry *vb = tu_doc_version(b, &nb);
	int eq = na == nb;
	for (size_t i = 0; eq && i < na; i++)
		eq = va[i].replica == vb[i].replica && va[i].next == vb[i].next;
	free(va);
	free(vb);
	return eq;
}

/* ---- op log ---------------------------------------------------------------- */

void tu_oplog_init(tu_oplog *l)
{
	memset(l, 0, sizeof *l);
}

void tu_oplog_free(tu_oplog *l)
{
	for (size_t i = 0; i < l->len; i++)
		free((char *)l->ops[i].text);
	free(l->ops);
	memset(l, 0, sizeof *l);
}

void tu_oplog_push(tu_oplog *l, const crdt_op *op)
{
	if (l->len == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 16;
		l->ops = tu_xrealloc(l->ops, l->cap * sizeof *l->ops);
	}
	crdt_op c = *op;
	if (op->text) {
		char *t = tu_xmalloc(op->text_bytes + 1);
		memcpy(t, op->text, op->text_bytes);
		t[op->text_bytes] = 0;
		c.text = t;
	}
	l->ops[l->len++] = c;
}

void tu_oplog_push_batch(tu_oplog *l, const crdt_batch *b)
{
	size_t n = crdt_batch_count(b);
	for (size_t i = 0; i < n; i++)
		tu_oplog_push(l, crdt_batch_get(b, i));
}

void tu_oplog_remove(tu_oplog *l, size_t i)
{
	free((char *)l->ops[i].text);
	memmove(l->ops + i, l->ops + i + 1, (l->len - i - 1) * sizeof *l->ops);
	l->len--;
}

crdt_op tu_op_slice(const crdt_op *op, uint32_t k, uint32_t m)
{
	crdt_op s = *op;
	s.id.counter = op->id.counter + k;
	s.lamport = op->lamport + k;
	s.len = m;
	if (op->kind == CRDT_OP_DELETE) {
		s.target.counter = op->target.counter + k;
		return s;
	}
	if (k > 0) {
		s.left.replica = op->id.replica;
		s.left.counter = op->id.counter + k - 1;
	}
	if (op->text) {
		size_t a = tu_utf8_offset(op->text, op->text_bytes, k);
		size_t b = tu_utf8_offset(op->text, op->text_bytes, (size_t)k + m);
		s.text = op->text + a;
		s.text_bytes = (uint32_t)(b - a);
	}
	return s;
}
