/*
 * tree.c - the content tree: a B+ tree of items in document order.
 *
 * Leaves hold up to LEAF_CAP items and the UTF-8 of their live items in one
 * buffer; inner nodes hold, for each child, the number of visible code
 * points and of all code points (tombstones included) below it. So a
 * visible position is found by one descent (O(log n)), and the position of
 * a known leaf by one ascent. Leaves are chained for in-order walks. Nodes
 * are never merged: tombstones are kept (their content is freed), so the
 * tree never shrinks, and items only ever move right (see lvmap.c). The
 * one exception is a snapshot load, which packs the replayed tree once
 * (tree_pack) and rebuilds the lv map after it.
 *
 * Mutations must not fail half-way: callers first reserve what a split can
 * need (tree_reserve, tree_reserve_text), then mutate.
 *
 * While a snapshot replays (d->text_deferred) leaves hold no text at all:
 * live items count one placeholder byte per unit (so byte offsets are unit
 * offsets and the text is never read), only text_len is kept, and the
 * loader gives each leaf its final text once at the end. That saves the
 * replay every text move and buffer growth.
 *
 * Invariants (checked by crdt_doc_check):
 *  1. every inner count equals the sum below it; the root's equal
 *     vis_len and all_len;
 *  2. a leaf's text is the concatenation of its live items' bytes;
 *  3. no item is empty; tombstones have bytes == 0, live items bytes >= len;
 *  4. parent/slot back-pointers and the leaf chain match the tree.
 */
#include <assert.h>
#include <string.h>

#include "internal.h"

static uint32_t item_byte_off(const char *text, const item *it, uint32_t off)
{
	if (it->bytes == it->len) /* ASCII, or placeholders */
		return off;
	return (uint32_t)utf8_offset(text, it->bytes, off);
}

/* The leaf's text from byte at on; NULL while the text is deferred (then
 * every item is one byte per unit and item_byte_off does not read it). */
static const char *text_at(const leaf *l, uint32_t at) { return l->text ? l->text + at : NULL; }

uint32_t leaf_byte_offset(const leaf *l, uint32_t idx, uint32_t off)
{
	/* sum the bytes before idx, or take those from idx on off the leaf's
	 * text length, whichever is fewer items (invariant 2) */
	uint32_t b = 0;
	if (idx > l->n / 2) {
		b = l->text_len;
		for (uint32_t i = idx; i < l->n; i++)
			b -= l->items[i].bytes;
	} else {
		for (uint32_t i = 0; i < idx; i++)
			b += l->items[i].bytes;
	}
	if (off > 0 && idx < l->n && ITEM_LIVE(&l->items[idx]))
		b += item_byte_off(text_at(l, b), &l->items[idx], off);
	return b;
}

static leaf *leaf_alloc(crdt_doc *d, uint32_t text_cap)
{
	leaf *l = mem_calloc(&d->mem, sizeof *l);
	if (!l)
		return NULL;
	if (text_cap) {
		l->text = mem_alloc(&d->mem, text_cap);
		if (!l->text) {
			mem_free(&d->mem, l, sizeof *l);
			return NULL;
		}
		l->text_cap = text_cap;
	}
	return l;
}

static void leaf_release(crdt_doc *d, leaf *l)
{
	mem_free(&d->mem, l->text, l->text_cap);
	mem_free(&d->mem, l, sizeof *l);
}

int tree_init(crdt_doc *d)
{
	if (mem_grow(&d->mem, (void **)&d->leaves, &d->cap_leaves, 1, sizeof *d->leaves))
		return CRDT_ENOMEM;
	leaf *l = leaf_alloc(d, 0);
	if (!l)
		return CRDT_ENOMEM;
	l->id = 0;
	d->leaves[0] = l;
	d->n_leaves = 1;
	d->root = l;
	d->first = l;
	d->height = 0;
	return CRDT_OK;
}

static void free_node(crdt_doc *d, void *n, uint32_t height)
{
	if (height == 0)
		return; /* leaves are freed through d->leaves */
	inode *in = n;
	for (uint32_t i = 0; i < in->n; i++)
		free_node(d, in->child[i], height - 1);
	mem_free(&d->mem, in, sizeof *in);
}

void tree_free(crdt_doc *d)
{
	if (d->root)
		free_node(d, d->root, d->height);
	for (uint32_t i = 0; i < d->n_leaves; i++)
		leaf_release(d, d->leaves[i]);
	for (uint32_t i = 0; i < d->n_spare_leaves; i++)
		leaf_release(d, d->spare_leaves[i]);
	for (uint32_t i = 0; i < d->n_spare_inodes; i++)
		mem_free(&d->mem, d->spare_inodes[i], sizeof(inode));
	mem_free(&d->mem, d->leaves, (size_t)d->cap_leaves * sizeof *d->leaves);
	mem_free(&d->mem, d->spare_leaves, (size_t)d->cap_spare_leaves * sizeof(leaf *));
	mem_free(&d->mem, d->spare_inodes, (size_t)d->cap_spare_inodes * sizeof(inode *));
}

/* ---- reservations -------------------------------------------------------- */

static int text_fit(crdt_doc *d, leaf *l, uint32_t need)
{
	if (need <= l->text_cap || d->text_deferred)
		return CRDT_OK;
	uint32_t cap = l->text_cap ? l->text_cap : 32;
	while (cap < need)
		cap = cap > (1u << 30) ? need : cap * 2;
	char *t = mem_alloc(&d->mem, cap);
	if (!t)
		return CRDT_ENOMEM;
	if (l->text_len)
		memcpy(t, l->text, l->text_len);
	mem_free(&d->mem, l->text, l->text_cap);
	l->text = t;
	l->text_cap = cap;
	return CRDT_OK;
}

/* Give back most of a leaf's text buffer once deletes have emptied it
 * (garbage collection of deleted content). Best effort: without memory the
 * buffer simply stays as it is. */
static void text_shrink(crdt_doc *d, leaf *l)
{
	if (d->text_deferred || l->text_cap <= 64 || l->text_len >= l->text_cap / 4)
		return;
	uint32_t cap = l->text_len * 2 > 32 ? l->text_len * 2 : 32;
	char *t = mem_alloc(&d->mem, cap);
	if (!t)
		return;
	memcpy(t, l->text, l->text_len);
	mem_free(&d->mem, l->text, l->text_cap);
	l->text = t;
	l->text_cap = cap;
}

int tree_reserve(crdt_doc *d, uint32_t splits, uint32_t text)
{
	if (splits == 0)
		return CRDT_OK;
	if (d->text_deferred)
		text = 0;
	/* the common case: spares left over from earlier reservations (a
	 * split uses one leaf and at most height + 2 inner nodes) */
	uint32_t inodes = splits * (d->height + 2); /* a root split adds a level */
	bool ready = d->n_leaves + splits <= d->cap_leaves && d->n_spare_leaves >= splits &&
		     d->n_spare_inodes >= inodes;
	for (uint32_t i = 0; ready && i < d->n_spare_leaves; i++)
		ready = d->spare_leaves[i]->text_cap >= text;
	if (ready)
		return CRDT_OK;
	if (mem_grow(&d->mem, (void **)&d->leaves, &d->cap_leaves, d->n_leaves + splits,
		     sizeof *d->leaves))
		return CRDT_ENOMEM;
	if (mem_grow(&d->mem, (void **)&d->spare_leaves, &d->cap_spare_leaves, splits,
		     sizeof(leaf *)))
		return CRDT_ENOMEM;
	while (d->n_spare_leaves < splits) {
		leaf *l = leaf_alloc(d, text);
		if (!l)
			return CRDT_ENOMEM;
		d->spare_leaves[d->n_spare_leaves++] = l;
	}
	for (uint32_t i = 0; i < d->n_spare_leaves; i++)
		if (text_fit(d, d->spare_leaves[i], text))
			return CRDT_ENOMEM;
	if (mem_grow(&d->mem, (void **)&d->spare_inodes, &d->cap_spare_inodes, inodes,
		     sizeof(inode *)))
		return CRDT_ENOMEM;
	while (d->n_spare_inodes < inodes) {
		inode *n = mem_calloc(&d->mem, sizeof *n);
		if (!n)
			return CRDT_ENOMEM;
		d->spare_inodes[d->n_spare_inodes++] = n;
	}
	return CRDT_OK;
}

/* Where tree_insert will really insert: between items, preferring the end
 * of the left leaf so that runs can grow. */
static cursor insert_point(cursor c)
{
	if (c.idx < c.leaf->n && c.off == c.leaf->items[c.idx].len) {
		c.idx++;
		c.off = 0;
	}
	if (c.off == 0 && c.idx == 0 && c.leaf->prev) {
		c.leaf = c.leaf->prev;
		c.idx = c.leaf->n;
	}
	return c;
}

int tree_reserve_insert(crdt_doc *d, const cursor *c, uint32_t bytes)
{
	cursor at = insert_point(*c);
	leaf *l = at.leaf;
	if ((uint64_t)l->text_len + bytes > (1u << 31))
		return CRDT_ELIMIT;
	/* tree_insert splits l only if the new item (and, inside an item,
	 * the item's second half) does not fit */
	uint32_t splits = l->n + (at.off > 0 ? 2u : 1u) > LEAF_CAP;
	int rc = tree_reserve(d, splits, l->text_len + bytes);
	return rc ? rc : text_fit(d, l, l->text_len + bytes);
}

/* ---- structure ------------------------------------------------------------ */

static inode *take_inode(crdt_doc *d)
{
	inode *n = d->spare_inodes[--d->n_spare_inodes];
	memset(n, 0, sizeof *n);
	return n;
}

static void set_parent(inode *p, uint32_t slot)
{
	void *c = p->child[slot];
	if (p->leaf_children) {
		((leaf *)c)->parent = p;
		((leaf *)c)->slot = (uint16_t)slot;
	} else {
		((inode *)c)->parent = p;
		((inode *)c)->slot = (uint16_t)slot;
	}
}

static void add_up(inode *p, uint32_t slot, int64_t dvis, int64_t dall);

static void propagate(crdt_doc *d, leaf *l, int64_t dvis, int64_t dall)
{
	if (l != d->cache_leaf)
		d->cache_leaf = NULL;
	add_up(l->parent, l->slot, dvis, dall);
	d->vis_len = (uint32_t)(d->vis_len + dvis);
	d->all_len = (uint32_t)(d->all_len + dall);
}

static void add_up(inode *p, uint32_t slot, int64_t dvis, int64_t dall)
{
	for (; p; slot = p->slot, p = p->parent) {
		p->vis[slot] = (uint32_t)(p->vis[slot] + dvis);
		p->all[slot] = (uint32_t)(p->all[slot] + dall);
	}
}

static void node_sums(const void *n, bool is_leaf, uint32_t *vis, uint32_t *all)
{
	*vis = *all = 0;
	if (is_leaf) {
		const leaf *l = n;
		for (uint32_t i = 0; i < l->n; i++) {
			*all += l->items[i].len;
			if (ITEM_LIVE(&l->items[i]))
				*vis += l->items[i].len;
		}
	} else {
		const inode *in = n;
		for (uint32_t i = 0; i < in->n; i++) {
			*vis += in->vis[i];
			*all += in->all[i];
		}
	}
}

/* A new root above the old root `a` and its new right sibling `b`. */
static void grow_root(crdt_doc *d, void *a, void *b)
{
	inode *r = take_inode(d);
	r->leaf_children = d->height == 0;
	r->n = 2;
	r->child[0] = a;
	r->child[1] = b;
	node_sums(a, r->leaf_children, &r->vis[0], &r->all[0]);
	node_sums(b, r->leaf_children, &r->vis[1], &r->all[1]);
	set_parent(r, 0);
	set_parent(r, 1);
	d->root = r;
	d->height++;
}

/* Insert `child` at `slot` of p, splitting p (and above) when full. The
 * child's units are not counted anywhere yet; afterwards every ancestor
 * counts them. */
static void inode_insert(crdt_doc *d, inode *p, uint32_t slot, void *child, uint32_t vis,
			 uint32_t all)
{
	if (p->n == NODE_CAP) {
		inode *q = take_inode(d);
		uint32_t half = NODE_CAP / 2, qvis, qall;
		q->leaf_children = p->leaf_children;
		q->n = (uint16_t)(p->n - half);
		for (uint32_t i = 0; i < q->n; i++) {
			q->child[i] = p->child[half + i];
			q->vis[i] = p->vis[half + i];
			q->all[i] = p->all[half + i];
			set_parent(q, i);
		}
		p->n = (uint16_t)half;
		node_sums(q, false, &qvis, &qall);
		if (!p->parent) {
			grow_root(d, p, q);
		} else {
			add_up(p->parent, p->slot, -(int64_t)qvis, -(int64_t)qall);
			inode_insert(d, p->parent, p->slot + 1u, q, qvis, qall);
		}
		if (slot > half) {
			p = q;
			slot -= half;
		}
	}
	for (uint32_t i = p->n; i > slot; i--) {
		p->child[i] = p->child[i - 1];
		p->vis[i] = p->vis[i - 1];
		p->all[i] = p->all[i - 1];
		set_parent(p, i);
	}
	p->child[slot] = child;
	p->vis[slot] = vis;
	p->all[slot] = all;
	p->n++;
	set_parent(p, slot);
	add_up(p->parent, p->slot, vis, all);
}

/* Move the upper half of full leaf l into a new right sibling. */
static leaf *leaf_split(crdt_doc *d, leaf *l)
{
	leaf *r = d->spare_leaves[--d->n_spare_leaves];
	char *text = r->text;
	uint32_t cap = r->text_cap;
	memset(r, 0, sizeof *r);
	r->text = text;
	r->text_cap = cap;
	r->id = d->n_leaves;
	d->leaves[d->n_leaves++] = r;

	uint32_t half = l->n / 2, rvis, rall;
	uint32_t boff = leaf_byte_offset(l, half, 0);
	r->n = (uint16_t)(l->n - half);
	memcpy(r->items, l->items + half, (size_t)r->n * sizeof(item));
	r->text_len = l->text_len - boff;
	if (r->text_len && !d->text_deferred)
		memcpy(r->text, l->text + boff, r->text_len);
	l->n = (uint16_t)half;
	l->text_len = boff;
	node_sums(r, true, &rvis, &rall);
	r->prev = l;
	r->next = l->next;
	if (l->next)
		l->next->prev = r;
	l->next = r;

	if (!l->parent) {
		grow_root(d, l, r);
	} else {
		add_up(l->parent, l->slot, -(int64_t)rvis, -(int64_t)rall);
		inode_insert(d, l->parent, l->slot + 1u, r, rvis, rall);
	}
	/* the map may keep pointing at l ("points left"); keep it exact
	 * except during a bulk load, which rebuilds it at the end */
	for (uint32_t i = 0; i < r->n && !d->lvmap_stale;) {
		/* one update per lv range: neighbours that continue each other's
		 * lvs (a run split by later inserts or deletes) go together */
		uint32_t lo = r->items[i].lv, hi = lo + r->items[i].len;
		while (++i < r->n && r->items[i].lv == hi)
			hi += r->items[i].len;
		lvmap_set(d, lo, hi - lo, r->id);
	}
	d->cache_leaf = NULL;
	return r;
}

/* Make room for `need` more items at cursor c, splitting its leaf. The
 * cursor names an item (at_item) or the gap before item c->idx. */
static void make_room(crdt_doc *d, cursor *c, uint32_t need, bool at_item)
{
	leaf *l = c->leaf;
	if (l->n + need <= LEAF_CAP)
		return;
	leaf *r = leaf_split(d, l);
	if (c->idx > l->n || (c->idx == l->n && at_item)) {
		c->leaf = r;
		c->idx -= l->n;
	}
}

/* ---- lookups ---------------------------------------------------------------- */

/* Remember the item at c for the next tree_find_lv. A cache, not state
 * (as run_hint in idmap_run): it is checked before use, and leaves live as
 * long as the document. */
static void lv_hint(const crdt_doc *d, leaf *l, uint32_t idx)
{
	((crdt_doc *)d)->lv_hint_leaf = l;
	((crdt_doc *)d)->lv_hint_idx = idx;
}

cursor tree_find_lv(const crdt_doc *d, uint32_t lv)
{
	/* most lookups are of a unit next to the last one: a writer's left
	 * origin is the unit it typed last, a backspace deletes it */
	leaf *l = d->lv_hint_leaf;
	if (l) {
		uint32_t h = d->lv_hint_idx, lo = h ? h - 1 : 0, hi = u32_min(h + 2, l->n);
		for (uint32_t i = lo; i < hi; i++) {
			const item *it = &l->items[i];
			if (lv - it->lv < it->len) {
				lv_hint(d, l, i);
				return (cursor){l, i, lv - it->lv};
			}
		}
	}
	l = d->leaves[lvmap_get(d, lv)];
	for (;;) { /* the map points at the leaf or one to its left */
		for (uint32_t i = 0; i < l->n; i++) {
			const item *it = &l->items[i];
			if (lv - it->lv < it->len) {
				lv_hint(d, l, i);
				return (cursor){l, i, lv - it->lv};
			}
		}
		l = l->next;
	}
}

static uint32_t leaf_vis(const crdt_doc *d, const leaf *l)
{
	return l->parent ? l->parent->vis[l->slot] : d->vis_len;
}

/* The leaf holding visible unit pos, and the position where it starts. */
static leaf *descend_vis(const crdt_doc *d, uint32_t pos, uint32_t *start)
{
	void *n = d->root;
	*start = 0;
	for (uint32_t h = d->height; h > 0; h--) {
		inode *in = n;
		uint32_t i = 0;
		while (i + 1 < in->n && pos - *start >= in->vis[i])
			*start += in->vis[i++];
		n = in->child[i];
	}
	return n;
}

static cursor in_leaf_vis(leaf *l, uint32_t rel)
{
	for (uint32_t i = 0; i < l->n; i++) {
		const item *it = &l->items[i];
		if (!ITEM_LIVE(it))
			continue;
		if (rel < it->len)
			return (cursor){l, i, rel};
		rel -= it->len;
	}
	return (cursor){l, l->n, 0}; /* not reached for pos < vis_len */
}

cursor tree_find_vis(crdt_doc *d, uint32_t pos)
{
	if (!d->cache_leaf || pos < d->cache_vis ||
	    pos - d->cache_vis >= leaf_vis(d, d->cache_leaf)) {
		d->cache_leaf = descend_vis(d, pos, &d->cache_vis);
	}
	return in_leaf_vis(d->cache_leaf, pos - d->cache_vis);
}

cursor tree_find_vis_const(const crdt_doc *d, uint32_t pos)
{
	uint32_t start;
	leaf *l = descend_vis(d, pos, &start);
	return in_leaf_vis(l, pos - start);
}

static uint32_t ascend(const crdt_doc *d, const leaf *l, uint32_t pos, bool vis)
{
	(void)d;
	uint32_t slot = l->slot;
	for (const inode *p = l->parent; p; slot = p->slot, p = p->parent)
		for (uint32_t i = 0; i < slot; i++)
			pos += vis ? p->vis[i] : p->all[i];
	return pos;
}

uint32_t tree_pos_all(const crdt_doc *d, cursor c)
{
	uint32_t pos = c.off;
	for (uint32_t i = 0; i < c.idx; i++)
		pos += c.leaf->items[i].len;
	return ascend(d, c.leaf, pos, false);
}

uint32_t tree_pos_vis(const crdt_doc *d, cursor c)
{
	uint32_t pos = 0;
	for (uint32_t i = 0; i < c.idx; i++)
		if (ITEM_LIVE(&c.leaf->items[i]))
			pos += c.leaf->items[i].len;
	if (c.idx < c.leaf->n && ITEM_LIVE(&c.leaf->items[c.idx]))
		pos += c.off;
	return ascend(d, c.leaf, pos, true);
}

bool cursor_next_item(cursor *c)
{
	c->off = 0;
	if (++c->idx < c->leaf->n)
		return true;
	while (c->leaf->next) {
		c->leaf = c->leaf->next;
		c->idx = 0;
		if (c->leaf->n)
			return true;
	}
	return false;
}

/* ---- mutations ---------------------------------------------------------------- */

/* Insert n bytes at byte offset at of the leaf text (capacity reserved).
 * Tombstone-only leaves may have no buffer at all, hence the guard. */
static void text_insert(const crdt_doc *d, leaf *l, uint32_t at, const char *text, uint32_t n)
{
	if (n == 0)
		return;
	if (d->text_deferred) {
		l->text_len += n;
		return;
	}
	if (at < l->text_len)
		memmove(l->text + at + n, l->text + at, l->text_len - at);
	if (n == 1) /* a keystroke: no call */
		l->text[at] = text ? text[0] : 'x';
	else if (text)
		memcpy(l->text + at, text, n);
	else
		memset(l->text + at, 'x', n); /* placeholder (snapshot replay) */
	l->text_len += n;
}

/* Does new item `it` continue item p: same liveness, next lvs, left origin
 * p's last unit, same right origin? Then it can extend p in place. */
static bool item_continues(const item *p, const item *it)
{
	return ITEM_LIVE(p) == (it->bytes != 0) && p->lv + p->len == it->lv &&
	       it->left == p->lv + p->len - 1 && it->right == p->right;
}

/* Extend item idx of l by `it` (which continues it). Needs the text room.
 * Returns the cursor of the first new unit. */
static cursor extend_item(crdt_doc *d, leaf *l, uint32_t idx, const item *it, const char *text)
{
	item *p = &l->items[idx];
	text_insert(d, l, leaf_byte_offset(l, idx + 1, 0), text, it->bytes);
	cursor res = {l, idx, p->len};
	p->len += it->len;
	p->bytes += it->bytes;
	d->bytes += it->bytes;
	propagate(d, l, it->bytes ? it->len : 0, it->len);
	lvmap_append(d, it->lv, it->len, l->id);
	lv_hint(d, l, idx);
	return res;
}

bool tree_extends(const crdt_doc *d, const item *it, cursor *at)
{
	/* the item must continue the last unit integrated, which must end its
	 * item; right origin there too, so nothing to order */
	if (it->left == LV_NONE || it->left + 1 != it->lv)
		return false;
	cursor c = tree_find_lv(d, it->left);
	const item *p = &c.leaf->items[c.idx];
	if (c.off + 1 != p->len || !item_continues(p, it))
		return false;
	uint32_t next = LV_NONE; /* the unit after p in the document */
	if (c.idx + 1 < c.leaf->n) {
		next = p[1].lv;
	} else {
		for (const leaf *l = c.leaf->next; l; l = l->next)
			if (l->n) {
				next = l->items[0].lv;
				break;
			}
	}
	if (next != it->right)
		return false;
	*at = c;
	return true;
}

int tree_reserve_extend(crdt_doc *d, const cursor *at, uint32_t bytes)
{
	leaf *l = at->leaf;
	if ((uint64_t)l->text_len + bytes > (1u << 31))
		return CRDT_ELIMIT;
	return text_fit(d, l, l->text_len + bytes);
}

cursor tree_extend(crdt_doc *d, cursor at, const item *it, const char *text)
{
	return extend_item(d, at.leaf, at.idx, it, text);
}

cursor tree_insert(crdt_doc *d, cursor c, const item *it, const char *text)
{
	c = insert_point(c);
	leaf *l = c.leaf;
	bool live = it->bytes != 0;

	/* extend the run on the left? */
	if (c.off == 0 && c.idx > 0 && item_continues(&l->items[c.idx - 1], it))
		return extend_item(d, l, c.idx - 1, it, text);
	make_room(d, &c, c.off > 0 ? 2 : 1, c.off > 0);
	l = c.leaf;
	if (c.off > 0) { /* split the item the new one lands in */
		item *s = &l->items[c.idx];
		uint32_t b = ITEM_LIVE(s) ? item_byte_off(text_at(l, leaf_byte_offset(l, c.idx, 0)),
							  s, c.off)
					  : 0;
		memmove(&l->items[c.idx + 2], &l->items[c.idx + 1],
			(size_t)(l->n - c.idx - 1) * sizeof(item));
		l->items[c.idx + 1] = (item){s->lv + c.off, s->len - c.off, s->lv + c.off - 1,
					     s->right, s->bytes - b};
		s->len = c.off;
		s->bytes = b;
		l->n++;
		c.idx++;
		c.off = 0;
	}
	uint32_t at = leaf_byte_offset(l, c.idx, 0);
	memmove(&l->items[c.idx + 1], &l->items[c.idx], (size_t)(l->n - c.idx) * sizeof(item));
	l->items[c.idx] = *it;
	l->n++;
	text_insert(d, l, at, text, it->bytes);
	d->bytes += it->bytes;
	propagate(d, l, live ? it->len : 0, it->len);
	lvmap_append(d, it->lv, it->len, l->id);
	lv_hint(d, l, c.idx);
	return c;
}

static bool tombs_merge(const item *a, const item *b)
{
	return !ITEM_LIVE(a) && !ITEM_LIVE(b) && a->lv + a->len == b->lv &&
	       b->left == a->lv + a->len - 1 && b->right == a->right;
}

static void remove_item(leaf *l, uint32_t idx)
{
	memmove(&l->items[idx], &l->items[idx + 1], (size_t)(l->n - idx - 1) * sizeof(item));
	l->n--;
}

cursor tree_delete(crdt_doc *d, cursor c, uint32_t len)
{
	item old = c.leaf->items[c.idx];
	bool before = c.off > 0, after = c.off + len < old.len;
	make_room(d, &c, (uint32_t)before + (uint32_t)after, true);
	leaf *l = c.leaf;
	uint32_t base = leaf_byte_offset(l, c.idx, 0);
	uint32_t b0 = item_byte_off(text_at(l, base), &old, c.off);
	uint32_t b1 = item_byte_off(text_at(l, base), &old, c.off + len);
	if (!d->text_deferred)
		memmove(l->text + base + b0, l->text + base + b1, l->text_len - base - b1);
	l->text_len -= b1 - b0;
	d->bytes -= b1 - b0;
	text_shrink(d, l);

	item parts[3];
	uint32_t n = 0, mid;
	if (before)
		parts[n++] = (item){old.lv, c.off, old.left, old.right, b0};
	mid = c.idx + n;
	parts[n++] =
		(item){old.lv + c.off, len, before ? old.lv + c.off - 1 : old.left, old.right, 0};
	if (after)
		parts[n++] = (item){old.lv + c.off + len, old.len - c.off - len,
				    old.lv + c.off + len - 1, old.right, old.bytes - b1};
	memmove(&l->items[c.idx + n], &l->items[c.idx + 1],
		(size_t)(l->n - c.idx - 1) * sizeof(item));
	memcpy(&l->items[c.idx], parts, n * sizeof(item));
	l->n = (uint16_t)(l->n + n - 1);
	propagate(d, l, -(int64_t)len, 0);

	/* adjacent tombstones of one run become one item again */
	if (mid + 1 < l->n && tombs_merge(&l->items[mid], &l->items[mid + 1])) {
		l->items[mid].len += l->items[mid + 1].len;
		remove_item(l, mid + 1);
	}
	if (mid > 0 && tombs_merge(&l->items[mid - 1], &l->items[mid])) {
		l->items[mid - 1].len += l->items[mid].len;
		remove_item(l, mid);
		mid--;
	}
	lv_hint(d, l, mid);
	return (cursor){l, mid + 1, 0};
}

/* ---- packing (snapshot load) ------------------------------------------------------ */

/* Can item b be folded into a, the item before it? The rule tree_insert
 * extends by and tombstones merge by: same liveness, next lvs, b's left
 * origin a's last unit, same right origin. */
static bool items_fold(const item *a, const item *b)
{
	return ITEM_LIVE(a) == ITEM_LIVE(b) && a->lv + a->len == b->lv &&
	       b->left == a->lv + a->len - 1 && b->right == a->right;
}

/* Inner nodes above k children, level by level up to the root. */
static uint32_t inodes_above(uint32_t k)
{
	uint32_t total = 0;
	while (k > 1) {
		k = (k + NODE_CAP - 1) / NODE_CAP;
		total += k;
	}
	return total;
}

int tree_pack(crdt_doc *d)
{
	assert(d->text_deferred); /* items move, their text does not */
	/* count first, so that a failed allocation leaves the tree as it was */
	uint32_t items = 0;
	const item *prev = NULL;
	for (const leaf *l = d->first; l; l = l->next)
		for (uint32_t i = 0; i < l->n; i++) {
			if (!prev || !items_fold(prev, &l->items[i]))
				items++;
			prev = &l->items[i];
		}
	uint32_t k = items ? (items + LEAF_CAP - 1) / LEAF_CAP : 1;
	uint32_t need = inodes_above(k);
	size_t size = (need ? need : 1) * sizeof(void *);
	void **nodes = mem_alloc(&d->mem, size);
	if (!nodes)
		return CRDT_ENOMEM;
	for (uint32_t i = 0; i < need; i++)
		if (!(nodes[i] = mem_calloc(&d->mem, sizeof(inode)))) {
			while (i-- > 0)
				mem_free(&d->mem, nodes[i], sizeof(inode));
			mem_free(&d->mem, nodes, size);
			return CRDT_ENOMEM;
		}

	/* slide every item left into the fewest leaves, folding runs; a
	 * reader never overtakes the writer, which only fills leaves it has
	 * passed */
	leaf *w = d->first;
	uint32_t wn = 0;
	item *last = NULL;
	for (leaf *l = d->first; l; l = l->next)
		for (uint32_t i = 0; i < l->n; i++) {
			item it = l->items[i];
			if (last && items_fold(last, &it)) {
				last->len += it.len;
				last->bytes += it.bytes;
				continue;
			}
			if (wn == LEAF_CAP) {
				w->n = (uint16_t)wn;
				w = w->next;
				wn = 0;
			}
			w->items[wn] = it;
			last = &w->items[wn++];
		}
	w->n = (uint16_t)wn;
	for (leaf *l = w->next, *nx; l; l = nx) {
		nx = l->next;
		leaf_release(d, l);
	}
	w->next = NULL;

	/* number the leaves in order, redo their text lengths and the levels
	 * above them */
	free_node(d, d->root, d->height);
	uint32_t n = 0, used = 0;
	for (leaf *l = d->first; l; l = l->next) {
		l->id = n;
		d->leaves[n++] = l;
		l->parent = NULL;
		l->slot = 0;
		l->text_len = 0;
		for (uint32_t i = 0; i < l->n; i++)
			l->text_len += l->items[i].bytes;
	}
	d->n_leaves = n;
	uint32_t width = n, height = 0, base = 0;
	while (width > 1) {
		uint32_t m = (width + NODE_CAP - 1) / NODE_CAP;
		for (uint32_t j = 0; j < m; j++) {
			inode *p = nodes[used + j];
			p->leaf_children = height == 0;
			p->n = (uint16_t)u32_min(NODE_CAP, width - j * NODE_CAP);
			for (uint32_t c = 0; c < p->n; c++) {
				uint32_t at = j * NODE_CAP + c;
				p->child[c] =
					height == 0 ? (void *)d->leaves[at] : nodes[base + at];
				node_sums(p->child[c], height == 0, &p->vis[c], &p->all[c]);
				set_parent(p, c);
			}
		}
		base = used;
		used += m;
		width = m;
		height++;
	}
	d->root = height == 0 ? (void *)d->leaves[0] : nodes[base];
	d->height = height;
	d->cache_leaf = NULL;
	d->lv_hint_leaf = NULL;
	mem_free(&d->mem, nodes, size);
	return CRDT_OK;
}
