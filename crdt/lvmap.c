/*
 * lvmap.c - which leaf holds a given local version.
 *
 * A sorted list of breakpoints {start lv, leaf id}: each covers the lvs up
 * to the next breakpoint, the last one to infinity. It is stored as a list
 * of fixed-size chunks, so an update moves at most one chunk's entries.
 *
 * Invariant (the "points left" rule): for every inserted lv, the leaf the
 * map gives is the leaf that holds the unit or one to its left. Items only
 * ever move right (a leaf split moves its upper half into a new right
 * sibling), so when an update cannot get memory the map is simply left as
 * it was and lookups walk right (tree_find_lv). New lvs are always appended,
 * and lvmap_reserve makes that append unable to fail.
 * Lvs of delete ops are never looked up and are not recorded.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

int lvmap_init(crdt_doc *d)
{
	(void)d;
	return CRDT_OK;
}

void lvmap_free(crdt_doc *d)
{
	lvmap *m = &d->lvmap;
	for (uint32_t i = 0; i < m->n_chunks; i++)
		mem_free(&d->mem, m->chunks[i], sizeof(lv_chunk));
	mem_free(&d->mem, m->spare, sizeof(lv_chunk));
	mem_free(&d->mem, m->chunks, (size_t)m->cap_chunks * sizeof *m->chunks);
	memset(m, 0, sizeof *m);
}

int lvmap_reserve(crdt_doc *d)
{
	lvmap *m = &d->lvmap;
	if (m->spare && m->n_chunks < m->cap_chunks)
		return CRDT_OK; /* the common case: room from an earlier growth */
	if (mem_grow(&d->mem, (void **)&m->chunks, &m->cap_chunks, m->n_chunks + 1,
		     sizeof *m->chunks))
		return CRDT_ENOMEM;
	if (!m->spare) {
		m->spare = mem_alloc(&d->mem, sizeof(lv_chunk));
		if (!m->spare)
			return CRDT_ENOMEM;
		m->spare->n = 0;
	}
	return CRDT_OK;
}

/* Entry holding lv: chunk *ci, entry *ei. Requires a non-empty map. */
static void locate(const lvmap *m, uint32_t lv, uint32_t *ci, uint32_t *ei)
{
	uint32_t lo = 0, hi = m->n_chunks;
	while (hi - lo > 1) {
		uint32_t mid = (lo + hi) / 2;
		if (m->chunks[mid]->e[0].start <= lv)
			lo = mid;
		else
			hi = mid;
	}
	const lv_chunk *c = m->chunks[lo];
	uint32_t a = 0, b = c->n;
	while (b - a > 1) {
		uint32_t mid = (a + b) / 2;
		if (c->e[mid].start <= lv)
			a = mid;
		else
			b = mid;
	}
	*ci = lo;
	*ei = a;
}

uint32_t lvmap_get(const crdt_doc *d, uint32_t lv)
{
	const lvmap *m = &d->lvmap;
	if (m->n_chunks == 0)
		return LV_NONE;
	uint32_t ci, ei;
	locate(m, lv, &ci, &ei);
	return m->chunks[ci]->e[ei].leaf;
}

size_t lvmap_entries(const crdt_doc *d)
{
	size_t n = 0;
	for (uint32_t i = 0; i < d->lvmap.n_chunks; i++)
		n += d->lvmap.chunks[i]->n;
	return n;
}

void lvmap_append(crdt_doc *d, uint32_t lo, uint32_t len, uint32_t leaf_id)
{
	lvmap *m = &d->lvmap;
	(void)len;
	if (m->n_chunks > 0) {
		lv_chunk *last = m->chunks[m->n_chunks - 1];
		if (last->e[last->n - 1].leaf == leaf_id)
			return;
		if (last->n < LVMAP_CHUNK) {
			last->e[last->n++] = (lv_entry){lo, leaf_id};
			return;
		}
	}
	lv_chunk *c = m->spare; /* guaranteed by lvmap_reserve */
	m->spare = NULL;
	c->n = 1;
	c->e[0] = (lv_entry){lo, leaf_id};
	m->chunks[m->n_chunks++] = c;
}

/* Split chunk ci in two halves; -1 when out of memory (nothing changed). */
static int split_chunk(crdt_doc *d, uint32_t ci)
{
	lvmap *m = &d->lvmap;
	/* keep the slot lvmap_reserve set aside for the next append */
	if (mem_grow(&d->mem, (void **)&m->chunks, &m->cap_chunks, m->n_chunks + 2,
		     sizeof *m->chunks))
		return -1;
	lv_chunk *n = mem_alloc(&d->mem, sizeof *n);
	if (!n)
		return -1;
	lv_chunk *c = m->chunks[ci];
	uint32_t half = c->n / 2;
	n->n = c->n - half;
	memcpy(n->e, c->e + half, (size_t)n->n * sizeof(lv_entry));
	c->n = half;
	memmove(&m->chunks[ci + 2], &m->chunks[ci + 1],
		(size_t)(m->n_chunks - ci - 1) * sizeof *m->chunks);
	m->chunks[ci + 1] = n;
	m->n_chunks++;
	return 0;
}

/* Insert a breakpoint right after entry (ci, ei); -1 when out of memory. */
static int insert_after(crdt_doc *d, uint32_t lv, uint32_t leaf_id)
{
	lvmap *m = &d->lvmap;
	uint32_t ci, ei;
	locate(m, lv, &ci, &ei);
	if (m->chunks[ci]->n == LVMAP_CHUNK) {
		if (split_chunk(d, ci))
			return -1;
		locate(m, lv, &ci, &ei);
	}
	lv_chunk *c = m->chunks[ci];
	memmove(&c->e[ei + 2], &c->e[ei + 1], (size_t)(c->n - ei - 1) * sizeof(lv_entry));
	c->e[ei + 1] = (lv_entry){lv, leaf_id};
	c->n++;
	return 0;
}

static void remove_at(crdt_doc *d, uint32_t ci, uint32_t ei)
{
	lvmap *m = &d->lvmap;
	lv_chunk *c = m->chunks[ci];
	memmove(&c->e[ei], &c->e[ei + 1], (size_t)(c->n - ei - 1) * sizeof(lv_entry));
	if (--c->n == 0) {
		if (!m->spare)
			m->spare = c;
		else
			mem_free(&d->mem, c, sizeof *c);
		memmove(&m->chunks[ci], &m->chunks[ci + 1],
			(size_t)(m->n_chunks - ci - 1) * sizeof *m->chunks);
		m->n_chunks--;
	}
}

/* The entry after (ci, ei), if any. */
static bool next_entry(const lvmap *m, uint32_t *ci, uint32_t *ei)
{
	if (*ei + 1 < m->chunks[*ci]->n) {
		(*ei)++;
		return true;
	}
	if (*ci + 1 < m->n_chunks) {
		(*ci)++;
		*ei = 0;
		return true;
	}
	return false;
}

void lvmap_set(crdt_doc *d, uint32_t lo, uint32_t len, uint32_t leaf_id)
{
	lvmap *m = &d->lvmap;
	uint32_t hi = lo + len, ci, ei;
	if (m->n_chunks == 0 || len == 0)
		return;
	/* a breakpoint at hi keeps what follows the range mapped as it was */
	if (hi < d->next_lv) {
		locate(m, hi, &ci, &ei);
		lv_entry e = m->chunks[ci]->e[ei];
		if (e.start != hi && insert_after(d, hi, e.leaf))
			return;
	}
	locate(m, lo, &ci, &ei);
	if (m->chunks[ci]->e[ei].start != lo) {
		if (insert_after(d, lo, leaf_id))
			return;
		locate(m, lo, &ci, &ei);
	}
	m->chunks[ci]->e[ei].leaf = leaf_id;
	/* drop breakpoints inside (lo, hi) */
	for (;;) {
		uint32_t nci = ci, nei = ei;
		if (!next_entry(m, &nci, &nei) || m->chunks[nci]->e[nei].start >= hi)
			break;
		remove_at(d, nci, nei);
		locate(m, lo, &ci, &ei);
	}
	/* merge with equal neighbours */
	uint32_t nci = ci, nei = ei;
	if (next_entry(m, &nci, &nei) && m->chunks[nci]->e[nei].leaf == leaf_id)
		remove_at(d, nci, nei);
	if (lo > 0) {
		uint32_t pci, pei;
		locate(m, lo - 1, &pci, &pei);
		if (m->chunks[pci]->e[pei].leaf == leaf_id && m->chunks[pci]->e[pei].start != lo) {
			locate(m, lo, &ci, &ei);
			remove_at(d, ci, ei);
		}
	}
}

typedef struct owner {
	uint32_t lv, leaf;
} owner;

/* LSD radix sort by lv, 11 bits a pass, as many passes as the largest lv
 * needs (two below 2^22 lvs, which is most documents). */
static void radix_sort(owner *a, owner *tmp, size_t n, uint32_t max_lv)
{
	for (int shift = 0; shift < 33 && (shift == 0 || max_lv >> shift); shift += 11) {
		size_t count[2049] = {0};
		for (size_t i = 0; i < n; i++)
			count[((a[i].lv >> shift) & 2047) + 1]++;
		for (int b = 0; b < 2048; b++)
			count[b + 1] += count[b];
		for (size_t i = 0; i < n; i++)
			tmp[count[(a[i].lv >> shift) & 2047]++] = a[i];
		memcpy(a, tmp, n * sizeof *a);
	}
}

int lvmap_build(crdt_doc *d)
{
	size_t n = 0;
	for (const leaf *l = d->first; l; l = l->next)
		n += l->n;
	mem scratch = {d->mem.a, 0};
	size_t size = (n ? n : 1) * sizeof(owner);
	owner *o = mem_alloc(&scratch, size), *tmp = mem_alloc(&scratch, size);
	int rc = o && tmp ? CRDT_OK : CRDT_ENOMEM;
	size_t k = 0;
	for (const leaf *l = d->first; l && rc == CRDT_OK; l = l->next)
		for (uint32_t i = 0; i < l->n; i++) {
			/* an item continuing the lvs of the one before it in the same
			 * leaf would sort right after it and add no breakpoint */
			const item *it = &l->items[i];
			if (i == 0 || it->lv != it[-1].lv + it[-1].len)
				o[k++] = (owner){it->lv, l->id};
		}
	n = k;
	if (rc == CRDT_OK)
		radix_sort(o, tmp, n, d->next_lv);
	lvmap stale = d->lvmap; /* names leaves tree_pack renumbered */
	memset(&d->lvmap, 0, sizeof d->lvmap);
	for (size_t i = 0; i < n && rc == CRDT_OK; i++) {
		if (i > 0 && o[i].leaf == o[i - 1].leaf)
			continue;
		rc = lvmap_reserve(d);
		if (rc == CRDT_OK)
			lvmap_append(d, o[i].lv, 0, o[i].leaf);
	}
	if (rc == CRDT_OK)
		rc = lvmap_reserve(d);
	if (rc != CRDT_OK)
		lvmap_free(d); /* no fallback: the stale map would be wrong */
	lvmap fresh = d->lvmap;
	d->lvmap = stale;
	lvmap_free(d);
	d->lvmap = fresh;
	mem_free(&scratch, o, size);
	mem_free(&scratch, tmp, size);
	return rc;
}
