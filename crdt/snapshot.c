/*
 * snapshot.c - encode the whole state of a document and load it back.
 *
 * A snapshot is the document's history without its deleted content: the
 * ops in the order this document integrated them (lv order), each placed
 * the cheapest way that reproduces it exactly, plus the final text. Loading
 * replays them. Most ops are "positional": an insert whose origins are the
 * visible unit before position p and the unit right after it, or a delete
 * of the visible units from p on (or, for a backspace run, down from p) --
 * exactly what a local edit at p makes, and replayed as one. Positions are
 * stored relative to where the previous edit left the caret, so a person's
 * typing costs about a byte per op. Other ops (concurrent inserts placed by
 * the ordering rule, deletes of scattered units) are "explicit" and carry
 * their origins or targets; they are replayed through crdt_doc_apply, with
 * all its checks. The replay keeps no text (inserted units count one
 * placeholder byte each); then the tree is packed into full leaves
 * (tree_pack) and the live units receive the final text, in document order.
 *
 * Layout (integers are LEB128 varints; zz() is zigzag):
 *
 *   u8      format version (CRDT_SNAPSHOT_VERSION)
 *   reps    count, then per replica: id, next counter
 *   clock
 *   runs    count, then 3 columns (byte length, then one value per id-map
 *           run in lv order): kind | reversed << 1 | replica << 2;  len;
 *           zz(lamport - end of the previous run's Lamport times)
 *           (lvs and counters are implied: runs tile the lvs and each
 *           replica's runs continue its counters)
 *   places  count, then 4 columns, one entry per placement in lv order (an
 *           insert run is cut into ops, a delete run is one placement):
 *             explicit? (0/1);  insert: op length;
 *             positional: zz(p - caret) (a backspace run: p - (caret - 1));
 *             explicit insert: lv - left, lv - right (0 = none);
 *             explicit delete: target replica, target counter
 *   text    byte length, then the visible text
 *   u64     hash of everything before it (little endian)
 *
 * Columns keep values of one kind together, which zstd (in storage/)
 * compresses far better than interleaved records. Decoding trusts nothing:
 * every count is bounded by the input, every reference is range-checked,
 * explicit ops go through crdt_doc_apply, and the result must pass
 * crdt_doc_check.
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

enum { RUN_COLS = 3, PLACE_COLS = 4 };
enum { C_EXPLICIT, C_LEN, C_POS, C_DATA };

/* ---- encoding primitives ------------------------------------------------- */

typedef struct wbuf {
	uint8_t *p;
	size_t len, cap;
} wbuf;

static void put_u64(wbuf *w, uint64_t v)
{
	while (v >= 0x80) {
		if (w->len < w->cap)
			w->p[w->len] = (uint8_t)(v | 0x80);
		w->len++;
		v >>= 7;
	}
	if (w->len < w->cap)
		w->p[w->len] = (uint8_t)v;
	w->len++;
}

static uint64_t zigzag(int64_t v) { return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63); }
static int64_t unzigzag(uint64_t v) { return (int64_t)(v >> 1) ^ -(int64_t)(v & 1); }

static void put_bytes(wbuf *w, const void *src, size_t n)
{
	if (n && w->len + n <= w->cap)
		memcpy(w->p + w->len, src, n);
	w->len += n;
}

/* The snapshot's trailing hash (declared in internal.h for the snapshot fuzz
 * target, which must fix it up to reach the structural checks). */
uint64_t crdt__snapshot_hash(const uint8_t *p, size_t n)
{
	uint64_t h = 0x9E3779B97F4A7C15ull ^ n;
	size_t i = 0;
	for (; i + 8 <= n; i += 8) {
		uint64_t v;
		memcpy(&v, p + i, 8);
		h = (h ^ v) * 0x100000001B3ull;
		h ^= h >> 29;
	}
	for (; i < n; i++)
		h = (h ^ p[i]) * 0x100000001B3ull;
	h ^= h >> 32;
	h *= 0xD6E8FEB86659FD93ull;
	return h ^ (h >> 32);
}

/* ---- replay: shared by encode (into a scratch doc) and decode ---------- */

/* One placement: how the op at the current lv is reproduced. */
typedef struct place {
	bool explicit_;
	uint32_t len;		 /* insert: op length */
	uint32_t pos;		 /* positional */
	uint32_t left, right;	 /* explicit insert (lvs or LV_NONE) */
	uint32_t trep, tcounter; /* explicit delete */
} place;

typedef struct run_info {
	uint8_t kind, reversed;
	uint32_t rep, len, lamport;
} run_info;

/* Placeholder text for explicit inserts replayed through crdt_doc_apply. */
typedef struct filler {
	mem *m;
	char *buf;
	uint32_t cap;
} filler;

static const char *filler_get(filler *f, uint32_t n)
{
	if (n > f->cap) {
		char *b = mem_alloc(f->m, n);
		if (!b)
			return NULL;
		memset(b, 'x', n);
		mem_free(f->m, f->buf, f->cap);
		f->buf = b;
		f->cap = n;
	}
	return f->buf;
}

/* Replay an insert op of `p->len` units at lv d->next_lv. */
static int replay_insert(crdt_doc *d, const run_info *r, uint32_t lamport, const place *p,
			 filler *f)
{
	if (!p->explicit_)
		return edit_insert(d, p->pos, NULL, p->len, p->len, r->rep, lamport, NULL);
	uint32_t lv = d->next_lv;
	if ((p->left != LV_NONE && p->left >= lv) || (p->right != LV_NONE && p->right >= lv))
		return CRDT_ECORRUPT;
	const char *text = filler_get(f, p->len);
	if (!text)
		return CRDT_ENOMEM;
	crdt_op op = {.kind = CRDT_OP_INSERT,
		      .id = {d->reps[r->rep].id, d->reps[r->rep].next},
		      .lamport = lamport,
		      .len = p->len,
		      .left = idmap_id(d, p->left),
		      .right = idmap_id(d, p->right),
		      .text = text,
		      .text_bytes = p->len};
	int rc = crdt_doc_apply(d, &op, NULL, NULL);
	return rc == CRDT_OK ? CRDT_OK : rc < 0 ? rc : CRDT_ECORRUPT;
}

static int replay_delete(crdt_doc *d, const run_info *r, const place *p)
{
	uint32_t n = r->len;
	if (!p->explicit_) {
		if (!r->reversed)
			return edit_delete(d, p->pos, n, r->rep, r->lamport, false, NULL);
		if (p->pos + 1u < n)
			return CRDT_ECORRUPT;
		/* a backspace run: units p, p-1, ... p-n+1 */
		return edit_delete(d, p->pos + 1 - n, n, r->rep, r->lamport, true, NULL);
	}
	if (p->trep >= d->n_reps)
		return CRDT_ECORRUPT;
	crdt_op op = {.kind = CRDT_OP_DELETE,
		      .id = {d->reps[r->rep].id, d->reps[r->rep].next},
		      .lamport = r->lamport,
		      .len = r->reversed ? 1 : n,
		      .target = {d->reps[p->trep].id, p->tcounter}};
	for (uint32_t k = 0; k < (r->reversed ? n : 1); k++) {
		if (r->reversed) {
			if (p->tcounter < k)
				return CRDT_ECORRUPT;
			op.id.counter = d->reps[r->rep].next;
			op.lamport = r->lamport + k;
			op.target.counter = p->tcounter - k;
		}
		int rc = crdt_doc_apply(d, &op, NULL, NULL);
		if (rc != CRDT_OK)
			return rc < 0 ? rc : CRDT_ECORRUPT;
	}
	return CRDT_OK;
}

/* ---- encode ------------------------------------------------------------ */

static size_t count_items(const crdt_doc *d)
{
	size_t n = 0;
	for (const leaf *l = d->first; l; l = l->next)
		n += l->n;
	return n;
}

size_t crdt_doc_encode_bound(const crdt_doc *d)
{
	return 64 + (size_t)d->n_reps * 15 + (size_t)d->n_runs * 25 +
	       (count_items(d) + d->n_runs) * 40 + d->bytes;
}

/* The origins of the insert op that starts at unit u of document d, and
 * how far it reaches (not past `end`). */
static uint32_t insert_op_at(const crdt_doc *d, uint32_t u, uint32_t end, uint32_t *left,
			     uint32_t *right)
{
	cursor c = tree_find_lv(d, u);
	const item *it = &c.leaf->items[c.idx];
	*left = c.off > 0 ? u - 1 : it->left;
	*right = it->right;
	uint32_t to = u + (it->len - c.off);
	while (to < end) { /* the next item may continue the same op */
		cursor n = tree_find_lv(d, to);
		const item *nx = &n.leaf->items[n.idx];
		uint32_t nleft = n.off > 0 ? to - 1 : nx->left;
		if (nleft != to - 1 || nx->right != *right)
			break;
		to += nx->len - n.off;
	}
	return (to < end ? to : end) - u;
}

/* Is inserting n units with origins (L, R) into s a local edit at some
 * visible position? */
static bool insert_positional(crdt_doc *s, uint32_t L, uint32_t R, uint32_t *pos)
{
	uint32_t p = 0, l2, r2;
	cursor c;
	if (L != LV_NONE) {
		c = tree_find_lv(s, L);
		if (!ITEM_LIVE(&c.leaf->items[c.idx]))
			return false;
		p = tree_pos_vis(s, c) + 1;
	}
	edit_place(s, p, &c, &l2, &r2);
	*pos = p;
	return l2 == L && r2 == R;
}

/* Are the targets of delete run r (first target trep/tcounter) visible
 * and consecutive in s, forwards (or backwards for a backspace run)? */
static bool delete_positional(crdt_doc *s, const run_info *r, uint32_t trep, uint32_t tcounter,
			      uint32_t *pos)
{
	for (uint32_t k = 0; k < r->len; k++) {
		uint32_t lv = idmap_lv(s, trep, r->reversed ? tcounter - k : tcounter + k);
		cursor c = tree_find_lv(s, lv);
		if (!ITEM_LIVE(&c.leaf->items[c.idx]))
			return false;
		uint32_t p = tree_pos_vis(s, c);
		if (k == 0)
			*pos = p;
		else if (p != (r->reversed ? *pos - k : *pos + k))
			return false;
	}
	return true;
}

/* A growable column buffer for encoding. */
typedef struct column {
	wbuf w;
	size_t cap;
} column;

static void put_place(column *col, const place *p, bool insert, bool reversed, uint32_t run_len,
		      uint32_t lv, uint32_t *caret)
{
	put_u64(&col[C_EXPLICIT].w, p->explicit_);
	if (insert)
		put_u64(&col[C_LEN].w, p->len);
	if (!p->explicit_) {
		int64_t base = insert || !reversed ? *caret : (int64_t)*caret - 1;
		put_u64(&col[C_POS].w, zigzag((int64_t)p->pos - base));
		/* where the edit leaves the caret; the decoder does the same */
		*caret = insert ? p->pos + p->len : reversed ? p->pos + 1 - run_len : p->pos;
	} else if (insert) {
		put_u64(&col[C_DATA].w, p->left == LV_NONE ? 0 : lv - p->left);
		put_u64(&col[C_DATA].w, p->right == LV_NONE ? 0 : lv - p->right);
	} else {
		put_u64(&col[C_DATA].w, p->trep);
		put_u64(&col[C_DATA].w, p->tcounter);
	}
}

static int encode_places(const crdt_doc *d, crdt_doc *s, column *col, size_t *count)
{
	filler f = {&s->mem, NULL, 0};
	uint32_t caret = 0;
	int rc = CRDT_OK;
	*count = 0;
	for (uint32_t i = 0; i < d->n_runs && rc == CRDT_OK; i++) {
		const idrun *run = &d->runs[i];
		run_info r = {run->kind, run->reversed, run->rep, run->len, run->lamport};
		place p = {0};
		if (run->kind == CRDT_OP_DELETE) {
			p.trep = run->trep;
			p.tcounter = run->tcounter;
			p.explicit_ = !delete_positional(s, &r, run->trep, run->tcounter, &p.pos);
			put_place(col, &p, false, run->reversed, run->len, run->lv, &caret);
			rc = replay_delete(s, &r, &p);
			(*count)++;
			continue;
		}
		for (uint32_t u = run->lv; u < run->lv + run->len && rc == CRDT_OK;) {
			p = (place){0};
			p.len = insert_op_at(d, u, run->lv + run->len, &p.left, &p.right);
			p.explicit_ = !insert_positional(s, p.left, p.right, &p.pos);
			put_place(col, &p, true, false, 0, u, &caret);
			rc = replay_insert(s, &r, run->lamport + (u - run->lv), &p, &f);
			u += p.len;
			(*count)++;
		}
	}
	mem_free(&s->mem, f.buf, f.cap);
	return rc;
}

int crdt_doc_encode(const crdt_doc *d, uint8_t *buf, size_t cap, size_t *len)
{
	size_t bound = crdt_doc_encode_bound(d);
	if (!buf || cap < bound) {
		*len = bound;
		return CRDT_ESPACE;
	}
	/* replay into a scratch document whose replicas have d's indices */
	crdt_options o = {.allocator = d->mem.a};
	crdt_doc *s = crdt_doc_new(d->reps[0].id, &o);
	if (!s)
		return CRDT_ENOMEM;
	s->text_deferred = true; /* its text is never read */
	int rc = CRDT_OK;
	for (uint32_t i = 1; i < d->n_reps && rc == CRDT_OK; i++) {
		uint32_t rep;
		rc = idmap_rep_get(s, d->reps[i].id, &rep);
	}
	column col[PLACE_COLS] = {{{0}, 0}};
	/* a placement writes at most two 10-byte varints to one column */
	size_t per = (count_items(d) + d->n_runs) * 20 + 16;
	for (int i = 0; i < PLACE_COLS && rc == CRDT_OK; i++) {
		col[i].w.p = mem_alloc(&s->mem, per);
		col[i].w.cap = col[i].cap = col[i].w.p ? per : 0;
		if (!col[i].w.p)
			rc = CRDT_ENOMEM;
	}
	size_t places = 0;
	if (rc == CRDT_OK)
		rc = encode_places(d, s, col, &places);

	if (rc == CRDT_OK) {
		wbuf w = {buf, 0, cap};
		put_u64(&w, CRDT_SNAPSHOT_VERSION);
		put_u64(&w, d->n_reps);
		for (uint32_t i = 0; i < d->n_reps; i++) {
			put_u64(&w, d->reps[i].id);
			put_u64(&w, d->reps[i].next);
		}
		put_u64(&w, d->clock);
		put_u64(&w, d->n_runs);
		for (int c = 0; c < RUN_COLS; c++) {
			wbuf dry = {NULL, 0, 0};
			for (int pass = 0; pass < 2; pass++) {
				wbuf *o2 = pass ? &w : &dry;
				if (pass)
					put_u64(&w, dry.len);
				int64_t lamport_end = 0;
				for (uint32_t i = 0; i < d->n_runs; i++) {
					const idrun *r = &d->runs[i];
					if (c == 0)
						put_u64(o2, (uint64_t)(r->kind == CRDT_OP_DELETE) |
								    (uint64_t)r->reversed << 1 |
								    (uint64_t)r->rep << 2);
					else if (c == 1)
						put_u64(o2, r->len);
					else
						put_u64(o2,
							zigzag((int64_t)r->lamport - lamport_end));
					lamport_end = (int64_t)r->lamport + r->len;
				}
			}
		}
		put_u64(&w, places);
		for (int c = 0; c < PLACE_COLS; c++)
			if (col[c].w.len > col[c].cap)
				rc = CRDT_ESPACE; /* cannot happen: sized for the worst case */
		for (int c = 0; c < PLACE_COLS && rc == CRDT_OK; c++) {
			put_u64(&w, col[c].w.len);
			put_bytes(&w, col[c].w.p, col[c].w.len);
		}
		put_u64(&w, d->bytes);
		for (const leaf *l = d->first; l; l = l->next)
			put_bytes(&w, l->text, l->text_len);
		uint64_t h = crdt__snapshot_hash(buf, w.len);
		uint8_t hb[8];
		for (int i = 0; i < 8; i++)
			hb[i] = (uint8_t)(h >> (8 * i));
		put_bytes(&w, hb, 8);
		*len = w.len;
		if (w.len > cap)
			rc = CRDT_ESPACE; /* cannot happen: the bound is generous */
	}
	for (int i = 0; i < PLACE_COLS; i++)
		mem_free(&s->mem, col[i].w.p, col[i].cap);
	crdt_doc_free(s);
	return rc;
}

/* ---- decode -------------------------------------------------------------------- */

typedef struct rbuf {
	const uint8_t *p;
	size_t len, at;
	bool bad;
} rbuf;

static uint64_t get_u64(rbuf *r)
{
	uint64_t v = 0;
	for (int shift = 0; shift < 64; shift += 7) {
		if (r->at >= r->len) {
			r->bad = true;
			return 0;
		}
		uint8_t b = r->p[r->at++];
		v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80))
			return v;
	}
	r->bad = true;
	return 0;
}

/* A varint that must be <= max. */
static uint32_t get_u32(rbuf *r, uint64_t max)
{
	uint64_t v = get_u64(r);
	if (v > max)
		r->bad = true;
	return r->bad ? 0 : (uint32_t)v;
}

/* Split off `n` columns (each: byte length, bytes). */
static bool get_columns(rbuf *r, rbuf *cols, int n)
{
	for (int i = 0; i < n; i++) {
		uint64_t len = get_u64(r);
		if (r->bad || len > r->len - r->at)
			return false;
		cols[i] = (rbuf){r->p + r->at, (size_t)len, 0, false};
		r->at += (size_t)len;
	}
	return true;
}

static bool columns_done(const rbuf *cols, int n)
{
	for (int i = 0; i < n; i++)
		if (cols[i].bad || cols[i].at != cols[i].len)
			return false;
	return true;
}

/* Give the live items their real text: the replay counted one placeholder
 * byte per unit and kept no text (text_deferred), so each leaf gets its
 * buffer here, once and of the exact size. */
static int fill_text(crdt_doc *d, const char *text, size_t nbytes)
{
	long cps = crdt_utf8_count(text, nbytes);
	if (cps < 0 || (size_t)cps != d->vis_len)
		return CRDT_ECORRUPT;
	bool ascii = (size_t)cps == nbytes; /* then every unit is one byte */
	size_t at = 0;
	for (leaf *l = d->first; l; l = l->next) {
		size_t start = at;
		for (uint32_t i = 0; i < l->n; i++) {
			item *it = &l->items[i];
			if (!ITEM_LIVE(it))
				continue;
			size_t b = ascii ? it->len : utf8_offset(text + at, nbytes - at, it->len);
			it->bytes = (uint32_t)b;
			at += b;
		}
		uint32_t tb = (uint32_t)(at - start);
		if (tb > l->text_cap) {
			char *t = mem_alloc(&d->mem, tb);
			if (!t)
				return CRDT_ENOMEM;
			mem_free(&d->mem, l->text, l->text_cap);
			l->text = t;
			l->text_cap = tb;
		}
		if (tb)
			memcpy(l->text, text + start, tb);
		l->text_len = tb;
	}
	d->bytes = at;
	return at == nbytes ? CRDT_OK : CRDT_ECORRUPT;
}

/* Grow an array to exactly `need` elements (mem_grow leaves slack for
 * further growth, which a presized array does not need). */
static int grow_exact(mem *m, void **arr, uint32_t *cap, uint32_t used, uint32_t need, size_t elem)
{
	if (need <= *cap)
		return 0;
	void *n = mem_alloc(m, (size_t)need * elem);
	if (!n)
		return -1;
	if (used)
		memcpy(n, *arr, (size_t)used * elem);
	mem_free(m, *arr, (size_t)*cap * elem);
	*arr = n;
	*cap = need;
	return 0;
}

/* Room for `runs` runs plus the slack idmap_reserve asks for: a delete
 * reserves a run per piece before its pushes merge into one. */
static uint32_t with_slack(uint32_t runs)
{
	return runs > UINT32_MAX / 2 ? runs : runs + runs / 16 + 16;
}

/* Size the id map once for the snapshot's runs (the header column says
 * whose each one is) rather than growing it op by op while replaying:
 * the replay merges its pushes into those same runs. A hint only: damaged
 * columns are caught by the replay, and more runs still grow the arrays. */
static int presize(crdt_doc *d, const rbuf *hdr_col, uint32_t runs, uint32_t n_reps)
{
	if (grow_exact(&d->mem, (void **)&d->runs, &d->cap_runs, d->n_runs, with_slack(runs),
		       sizeof *d->runs))
		return CRDT_ENOMEM;
	size_t size = (n_reps ? n_reps : 1) * sizeof(uint32_t);
	uint32_t *count = mem_calloc(&d->mem, size);
	if (!count)
		return CRDT_ENOMEM;
	rbuf c = *hdr_col;
	for (uint32_t i = 0; i < runs; i++) {
		uint64_t hdr = get_u64(&c);
		if (c.bad || (hdr >> 2) >= n_reps)
			break;
		count[hdr >> 2]++;
	}
	int rc = CRDT_OK;
	for (uint32_t i = 0; i < n_reps && rc == CRDT_OK; i++) {
		replica *rp = &d->reps[i];
		if (count[i] && grow_exact(&d->mem, (void **)&rp->runs, &rp->cap_runs, rp->n_runs,
					   with_slack(count[i]), sizeof *rp->runs))
			rc = CRDT_ENOMEM;
	}
	mem_free(&d->mem, count, size);
	return rc;
}

static int decode_body(crdt_doc *d, rbuf *r, uint32_t **declared, size_t *declared_size)
{
	/* replicas: every one takes at least 2 bytes */
	uint32_t n = get_u32(r, r->len / 2);
	if (r->bad)
		return CRDT_ECORRUPT;
	*declared_size = (n ? n : 1) * sizeof(uint32_t);
	*declared = mem_alloc(&d->mem, *declared_size);
	if (!*declared)
		return CRDT_ENOMEM;
	for (uint32_t i = 0; i < n; i++) {
		crdt_replica id = get_u64(r);
		(*declared)[i] = get_u32(r, CRDT_MAX_COUNTER);
		uint32_t rep;
		if (r->bad || id == CRDT_NO_REPLICA || idmap_rep_find(d, id) >= 0)
			return CRDT_ECORRUPT;
		int rc = idmap_rep_get(d, id, &rep);
		if (rc)
			return rc;
	}
	uint32_t clock = get_u32(r, CRDT_MAX_COUNTER);
	uint32_t runs = get_u32(r, r->len / 3);
	rbuf rc_[RUN_COLS];
	if (r->bad || !get_columns(r, rc_, RUN_COLS))
		return CRDT_ECORRUPT;
	uint32_t places = get_u32(r, r->len);
	rbuf pc[PLACE_COLS];
	if (r->bad || !get_columns(r, pc, PLACE_COLS) || places > pc[C_EXPLICIT].len)
		return CRDT_ECORRUPT;

	int rc = presize(d, &rc_[0], runs, n);
	if (rc)
		return rc;

	filler f = {&d->mem, NULL, 0};
	uint32_t caret = 0, done_places = 0;
	int64_t lamport_end = 0;
	for (uint32_t i = 0; i < runs && rc == CRDT_OK; i++) {
		uint64_t hdr = get_u64(&rc_[0]);
		run_info ri = {(hdr & 1) ? CRDT_OP_DELETE : CRDT_OP_INSERT,
			       (uint8_t)((hdr >> 1) & 1), 0, 0, 0};
		ri.len = get_u32(&rc_[1], CRDT_MAX_COUNTER);
		int64_t lam = lamport_end + unzigzag(get_u64(&rc_[2]));
		if (rc_[0].bad || rc_[1].bad || rc_[2].bad || (hdr >> 2) >= n || ri.len == 0 ||
		    lam < 0 || lam + ri.len > clock || (ri.reversed && ri.kind != CRDT_OP_DELETE)) {
			rc = CRDT_ECORRUPT;
			break;
		}
		ri.rep = (uint32_t)(hdr >> 2);
		ri.lamport = (uint32_t)lam;
		lamport_end = lam + ri.len;
		for (uint32_t u = 0; u < ri.len && rc == CRDT_OK;) {
			place p = {0};
			if (++done_places > places) {
				rc = CRDT_ECORRUPT;
				break;
			}
			p.explicit_ = get_u32(&pc[C_EXPLICIT], 1) != 0;
			bool ins = ri.kind == CRDT_OP_INSERT;
			p.len = ins ? get_u32(&pc[C_LEN], ri.len - u) : ri.len;
			if (!p.explicit_) {
				int64_t base = ins || !ri.reversed ? caret : (int64_t)caret - 1;
				int64_t pos = base + unzigzag(get_u64(&pc[C_POS]));
				if (pos < 0 || pos > CRDT_MAX_COUNTER) {
					rc = CRDT_ECORRUPT;
					break;
				}
				p.pos = (uint32_t)pos;
				caret = ins	      ? p.pos + p.len
					: ri.reversed ? p.pos + 1 - ri.len
						      : p.pos;
			} else if (ins) {
				uint32_t lv = d->next_lv;
				uint32_t dl = get_u32(&pc[C_DATA], lv),
					 dr = get_u32(&pc[C_DATA], lv);
				p.left = dl ? lv - dl : LV_NONE;
				p.right = dr ? lv - dr : LV_NONE;
			} else {
				p.trep = get_u32(&pc[C_DATA], n);
				p.tcounter = get_u32(&pc[C_DATA], CRDT_MAX_COUNTER);
			}
			if (pc[0].bad || pc[1].bad || pc[2].bad || pc[3].bad || p.len == 0) {
				rc = CRDT_ECORRUPT;
				break;
			}
			rc = ins ? replay_insert(d, &ri, ri.lamport + u, &p, &f)
				 : replay_delete(d, &ri, &p);
			if (rc == CRDT_ERANGE || rc == CRDT_EINVAL || rc == CRDT_EMISSING ||
			    rc == CRDT_ELIMIT)
				rc = CRDT_ECORRUPT;
			u += p.len;
		}
	}
	mem_free(&d->mem, f.buf, f.cap);
	if (rc)
		return rc;
	if (done_places != places || !columns_done(rc_, RUN_COLS) || !columns_done(pc, PLACE_COLS))
		return CRDT_ECORRUPT;
	for (uint32_t i = 0; i < n; i++)
		if (d->reps[i].next != (*declared)[i])
			return CRDT_ECORRUPT;
	if (clock < d->clock)
		return CRDT_ECORRUPT;
	d->clock = clock;
	uint64_t tlen = get_u64(r);
	if (r->bad || tlen != r->len - r->at)
		return CRDT_ECORRUPT;
	/* the replay left leaves half full, as edits do: pack them (fewer
	 * leaves, and those it frees make room for the text below) */
	if ((rc = tree_pack(d)))
		return rc;
	rc = fill_text(d, (const char *)r->p + r->at, (size_t)tlen);
	r->at += (size_t)tlen;
	return rc;
}

/* lv -> id-map run for check_lamport: the run holding the first lv of
 * every bucket of 1 << LVIX_SHIFT lvs, then a short walk (runs tile the
 * lvs in order, so the walk only goes forward). A flat table instead of
 * idmap_run's binary search: the check looks up every item and origin. */
#define LVIX_SHIFT 5

typedef struct lvindex {
	const idrun *runs;
	uint32_t n;
	uint32_t *first; /* by bucket lv >> LVIX_SHIFT */
	size_t size;
} lvindex;

static int lvindex_init(crdt_doc *d, lvindex *x)
{
	uint32_t nb = (d->next_lv >> LVIX_SHIFT) + 1;
	x->runs = d->runs;
	x->n = d->n_runs;
	x->size = (size_t)nb * sizeof(uint32_t);
	x->first = mem_alloc(&d->mem, x->size);
	if (!x->first)
		return CRDT_ENOMEM;
	x->first[nb - 1] = 0; /* a bucket starting at next_lv: never looked up */
	for (uint32_t i = 0; i < d->n_runs; i++) {
		const idrun *r = &d->runs[i];
		uint64_t end = (uint64_t)r->lv + r->len;
		for (uint64_t b = ((uint64_t)r->lv + (1u << LVIX_SHIFT) - 1) >> LVIX_SHIFT;
		     b < nb && (b << LVIX_SHIFT) < end; b++)
			x->first[b] = i;
	}
	return CRDT_OK;
}

static const idrun *lvindex_run(const lvindex *x, uint32_t lv)
{
	uint32_t i = x->first[lv >> LVIX_SHIFT];
	while (i + 1 < x->n && x->runs[i + 1].lv <= lv)
		i++;
	return &x->runs[i];
}

static uint32_t lvindex_lamport(const lvindex *x, uint32_t lv)
{
	const idrun *r = lvindex_run(x, lv);
	return r->lamport + (lv - r->lv);
}

/* (replica, counter) -> id-map run, the same way: per replica, the index
 * into its run list of the run holding the first counter of every bucket
 * (a replica's counters are dense from 0, its runs ordered by counter). */
typedef struct ctrindex {
	const crdt_doc *d;
	uint32_t *off; /* by replica: its first bucket in `first` */
	uint32_t *first;
	size_t off_size, size;
} ctrindex;

static int ctrindex_init(crdt_doc *d, ctrindex *c)
{
	size_t total = 0;
	for (uint32_t r = 0; r < d->n_reps; r++)
		total += (d->reps[r].next >> LVIX_SHIFT) + 1;
	c->d = d;
	c->off_size = (d->n_reps ? d->n_reps : 1) * sizeof(uint32_t);
	c->size = (total ? total : 1) * sizeof(uint32_t);
	c->off = mem_alloc(&d->mem, c->off_size);
	c->first = mem_alloc(&d->mem, c->size);
	if (!c->off || !c->first) {
		mem_free(&d->mem, c->off, c->off_size);
		mem_free(&d->mem, c->first, c->size);
		return CRDT_ENOMEM;
	}
	uint32_t at = 0;
	for (uint32_t r = 0; r < d->n_reps; r++) {
		const replica *rp = &d->reps[r];
		uint32_t nb = (rp->next >> LVIX_SHIFT) + 1, *first = c->first + at;
		c->off[r] = at;
		at += nb;
		first[nb - 1] = 0; /* a bucket starting at next: never looked up */
		for (uint32_t i = 0; i < rp->n_runs; i++) {
			const idrun *run = &d->runs[rp->runs[i]];
			uint64_t end = (uint64_t)run->counter + run->len;
			for (uint64_t b = ((uint64_t)run->counter + (1u << LVIX_SHIFT) - 1) >>
					  LVIX_SHIFT;
			     b < nb && (b << LVIX_SHIFT) < end; b++)
				first[b] = i;
		}
	}
	return CRDT_OK;
}

/* The run holding (rep, counter), or NULL if that unit does not exist. */
static const idrun *ctrindex_run(const ctrindex *c, uint32_t rep, uint32_t counter)
{
	if (rep >= c->d->n_reps)
		return NULL;
	const replica *rp = &c->d->reps[rep];
	if (counter >= rp->next || rp->n_runs == 0)
		return NULL;
	uint32_t i = c->first[c->off[rep] + (counter >> LVIX_SHIFT)];
	while (i + 1 < rp->n_runs && c->d->runs[rp->runs[i + 1]].counter <= counter)
		i++;
	return &c->d->runs[rp->runs[i]];
}

/*
 * Lamport order, which positional placements are not checked for while
 * they replay (only explicit ones go through crdt_doc_apply): every op
 * after its replica's previous unit, each inserted unit after its left
 * origin (the unit before it in its item, or the item's left) and the
 * item's right origin, each deleting unit after the unit it deletes. A
 * snapshot breaking it would load, but every other replica would refuse
 * its ops_since (CRDT_EINVAL): that replica could never sync again.
 */
static int check_lamport(crdt_doc *d)
{
	for (uint32_t r = 0; r < d->n_reps; r++) {
		const replica *rp = &d->reps[r];
		for (uint32_t i = 1; i < rp->n_runs; i++) {
			const idrun *a = &d->runs[rp->runs[i - 1]], *b = &d->runs[rp->runs[i]];
			if ((uint64_t)a->lamport + a->len > b->lamport)
				return CRDT_ECORRUPT;
		}
	}
	lvindex x;
	int rc = lvindex_init(d, &x);
	if (rc)
		return rc;
	for (const leaf *l = d->first; l && rc == CRDT_OK; l = l->next)
		for (uint32_t i = 0; i < l->n; i++) {
			const item *it = &l->items[i];
			const idrun *run = lvindex_run(&x, it->lv);
			uint32_t lam = run->lamport + (it->lv - run->lv);
			/* a left origin just before it in the same run is older by
			 * construction (a split piece: the common case) */
			bool left_in_run = it->left + 1 == it->lv && it->lv > run->lv;
			if ((it->left != LV_NONE && !left_in_run &&
			     lvindex_lamport(&x, it->left) >= lam) ||
			    (it->right != LV_NONE && lvindex_lamport(&x, it->right) >= lam)) {
				rc = CRDT_ECORRUPT;
				break;
			}
			/* inside an id-map run Lamport times grow by one per unit:
			 * only where the item crosses into the next run can they drop */
			for (;;) {
				uint32_t end = run->lv + run->len;
				if (end >= it->lv + it->len)
					break;
				const idrun *next = run + 1; /* runs tile the lvs */
				if (next->lamport <= run->lamport + run->len - 1) {
					rc = CRDT_ECORRUPT;
					break;
				}
				run = next;
			}
			if (rc)
				break;
		}
	mem_free(&d->mem, x.first, x.size);
	if (rc)
		return rc;
	ctrindex c;
	if ((rc = ctrindex_init(d, &c)))
		return rc;
	for (uint32_t i = 0; i < d->n_runs && rc == CRDT_OK; i++) {
		const idrun *run = &d->runs[i];
		if (run->kind != CRDT_OP_DELETE)
			continue;
		/* per piece of targets inside one insert run, the first unit is
		 * the tightest: both times grow by one (a reversed run's targets
		 * fall while its own times grow) */
		for (uint32_t k = 0; k < run->len;) {
			if (run->reversed && k > run->tcounter) {
				rc = CRDT_ECORRUPT;
				break;
			}
			uint32_t tc = run->reversed ? run->tcounter - k : run->tcounter + k;
			const idrun *t = ctrindex_run(&c, run->trep, tc);
			uint32_t tlv = t ? t->lv + (tc - t->counter) : 0;
			if (!t || t->kind != CRDT_OP_INSERT ||
			    (uint64_t)t->lamport + (tlv - t->lv) >= (uint64_t)run->lamport + k) {
				rc = CRDT_ECORRUPT;
				break;
			}
			k += run->reversed ? tlv - t->lv + 1 : t->lv + t->len - tlv;
		}
	}
	mem_free(&d->mem, c.first, c.size);
	mem_free(&d->mem, c.off, c.off_size);
	return rc;
}

crdt_doc *crdt_doc_decode(const uint8_t *data, size_t len, crdt_replica replica,
			  const crdt_options *opts, int *status)
{
	int dummy;
	if (!status)
		status = &dummy;
	if (!data || len == 0) {
		*status = CRDT_ECORRUPT;
		return NULL;
	}
	if (data[0] != CRDT_SNAPSHOT_VERSION) { /* the version byte decides first */
		*status = CRDT_EVERSION;
		return NULL;
	}
	if (len < 9) {
		*status = CRDT_ECORRUPT;
		return NULL;
	}
	uint64_t h = 0;
	for (int i = 0; i < 8; i++)
		h |= (uint64_t)data[len - 8 + i] << (8 * i);
	if (h != crdt__snapshot_hash(data, len - 8)) {
		*status = CRDT_ECORRUPT;
		return NULL;
	}
	crdt_doc *d = crdt_doc_new(replica, opts);
	if (!d) {
		*status = replica == CRDT_NO_REPLICA ? CRDT_EINVAL : CRDT_ENOMEM;
		return NULL;
	}
	/* the snapshot's replicas come first, in its order */
	idmap_free(d);
	d->reps = NULL;
	d->rep_order = NULL;
	d->runs = NULL;
	d->n_reps = d->cap_reps = d->n_runs = d->cap_runs = 0;

	rbuf r = {data, len - 8, 1, false};
	uint32_t *declared = NULL;
	size_t declared_size = 0;
	d->lvmap_stale = d->text_deferred = true;
	int rc = decode_body(d, &r, &declared, &declared_size);
	mem_free(&d->mem, declared, declared_size);
	d->lvmap_stale = d->text_deferred = false;
	if (rc == CRDT_OK && r.at != r.len)
		rc = CRDT_ECORRUPT;
	if (rc == CRDT_OK)
		rc = check_lamport(d);
	if (rc == CRDT_OK)
		rc = idmap_rep_get(d, replica, &d->self_rep);
	if (rc == CRDT_OK) /* exact again: one entry per run of items in a leaf */
		rc = lvmap_build(d);
	/* the replay only used checked paths, so the result is consistent by
	 * construction; debug builds verify it (the check itself allocates: out
	 * of memory there says nothing about the document) */
#ifndef NDEBUG
	if (rc == CRDT_OK) {
		int ck = crdt_doc_check(d);
		assert(ck == CRDT_OK || ck == CRDT_ENOMEM);
		(void)ck;
	}
#endif
	if (rc != CRDT_OK) {
		crdt_doc_free(d);
		*status = rc;
		return NULL;
	}
	d->cache_leaf = NULL;
	*status = CRDT_OK;
	return d;
}
