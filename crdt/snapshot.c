/*
 * snapshot.c - encode the whole state of a document and load it back.
 *
 * Layout (all integers LEB128 varints unless noted; see INTERNALS.md):
 *
 *   u8      format version (CRDT_SNAPSHOT_VERSION)
 *   reps    count, then per replica: id, next counter
 *   clock
 *   runs    count, then five columns (each: byte length, then one value
 *           per id-map run in lv order; delete-only columns skip inserts):
 *             kind | reversed << 1 | replica << 2;  len;
 *             zigzag(lamport - end of the previous run's lamports);
 *             target replica;  zigzag(target - where the previous delete
 *             run's targets would continue)
 *           (lvs and counters are implied: runs are contiguous in lv and
 *           each replica's runs continue its counters)
 *   items   count, then six columns, per item in document order:
 *             zigzag(lv - end of the previous item);  len;  flags;
 *             left as lv - 1 - left (unless a flag implies it);
 *             right as lv - 1 - right (unless a flag implies it);
 *             UTF-8 bytes (live items that are not all ASCII)
 *   text    the live items' UTF-8, concatenated
 * Columns keep values of one kind together, which zstd (in storage/)
 * compresses far better than interleaved records.
 *   u64     hash of everything before it (little endian)
 *
 * Decoding trusts nothing: every count is bounded by the input size, every
 * reference is range-checked, and the result must pass crdt_doc_check.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

enum { F_LIVE = 1, F_LEFT_PREV = 2, F_LEFT_NONE = 4, F_RIGHT_NONE = 8, F_RIGHT_NEXT = 16, F_ASCII = 32 };
enum { RUN_COLS = 5, ITEM_COLS = 6 };

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

static uint64_t hash64(const uint8_t *p, size_t n)
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

/* ---- encode -------------------------------------------------------------------- */

static size_t count_items(const crdt_doc *d)
{
	size_t n = 0;
	for (const leaf *l = d->first; l; l = l->next)
		n += l->n;
	return n;
}

size_t crdt_doc_encode_bound(const crdt_doc *d)
{
	return 1 + 10 + (size_t)d->n_reps * 15 + 5 + 5 + (size_t)d->n_runs * 40 + 5 +
	       count_items(d) * 31 + (RUN_COLS + ITEM_COLS) * 10 + d->bytes + 8;
}

static void put_run_col(const crdt_doc *d, wbuf *w, int col)
{
	int64_t lamport_end = 0, target_next = 0;
	for (uint32_t i = 0; i < d->n_runs; i++) {
		const idrun *r = &d->runs[i];
		bool del = r->kind == CRDT_OP_DELETE;
		if (col == 0)
			put_u64(w, (uint64_t)del | (uint64_t)r->reversed << 1 | (uint64_t)r->rep << 2);
		else if (col == 1)
			put_u64(w, r->len);
		else if (col == 2)
			put_u64(w, zigzag((int64_t)r->lamport - lamport_end));
		else if (col == 3 && del)
			put_u64(w, r->trep);
		else if (col == 4 && del)
			put_u64(w, zigzag((int64_t)r->tcounter - target_next));
		lamport_end = (int64_t)r->lamport + r->len;
		if (del)
			target_next = r->reversed ? (int64_t)r->tcounter - r->len : (int64_t)r->tcounter + r->len;
	}
}

static unsigned item_flags(const item *it, const item *next, int64_t lv_end)
{
	unsigned flags = ITEM_LIVE(it) ? F_LIVE : 0;
	if (it->left == LV_NONE)
		flags |= F_LEFT_NONE;
	else if (lv_end > 0 && it->left == (uint32_t)(lv_end - 1))
		flags |= F_LEFT_PREV;
	if (it->right == LV_NONE)
		flags |= F_RIGHT_NONE;
	else if (next && it->right == next->lv)
		flags |= F_RIGHT_NEXT;
	if (it->bytes == it->len)
		flags |= F_ASCII; /* one byte per code point: bytes implied */
	return flags;
}

static void put_item_col(const crdt_doc *d, wbuf *w, int col)
{
	int64_t lv_end = 0;
	for (const leaf *l = d->first; l; l = l->next)
		for (uint32_t i = 0; i < l->n; i++) {
			const item *it = &l->items[i];
			const item *next = i + 1 < l->n ? &l->items[i + 1]
					   : l->next && l->next->n ? &l->next->items[0] : NULL;
			unsigned flags = item_flags(it, next, lv_end);
			if (col == 0)
				put_u64(w, zigzag((int64_t)it->lv - lv_end));
			else if (col == 1)
				put_u64(w, it->len);
			else if (col == 2)
				put_u64(w, flags);
			else if (col == 3 && !(flags & (F_LEFT_NONE | F_LEFT_PREV)))
				put_u64(w, it->lv - 1 - it->left);
			else if (col == 4 && !(flags & (F_RIGHT_NONE | F_RIGHT_NEXT)))
				put_u64(w, it->lv - 1 - it->right);
			else if (col == 5 && (flags & F_LIVE) && !(flags & F_ASCII))
				put_u64(w, it->bytes);
			lv_end = (int64_t)it->lv + it->len;
		}
}

/* A column: its byte length (measured by a dry run), then its values. */
static void put_column(const crdt_doc *d, wbuf *w, bool items, int col)
{
	wbuf dry = {NULL, 0, 0};
	if (items)
		put_item_col(d, &dry, col);
	else
		put_run_col(d, &dry, col);
	put_u64(w, dry.len);
	if (items)
		put_item_col(d, w, col);
	else
		put_run_col(d, w, col);
}

int crdt_doc_encode(const crdt_doc *d, uint8_t *buf, size_t cap, size_t *len)
{
	size_t bound = crdt_doc_encode_bound(d);
	if (!buf || cap < bound) {
		*len = bound;
		return CRDT_ESPACE;
	}
	wbuf w = {buf, 0, cap};
	put_u64(&w, CRDT_SNAPSHOT_VERSION);
	put_u64(&w, d->n_reps);
	for (uint32_t i = 0; i < d->n_reps; i++) {
		put_u64(&w, d->reps[i].id);
		put_u64(&w, d->reps[i].next);
	}
	put_u64(&w, d->clock);
	put_u64(&w, d->n_runs);
	for (int col = 0; col < RUN_COLS; col++)
		put_column(d, &w, false, col);
	put_u64(&w, count_items(d));
	for (int col = 0; col < ITEM_COLS; col++)
		put_column(d, &w, true, col);
	for (const leaf *l = d->first; l; l = l->next)
		put_bytes(&w, l->text, l->text_len);
	uint64_t h = hash64(buf, w.len);
	uint8_t hb[8];
	for (int i = 0; i < 8; i++)
		hb[i] = (uint8_t)(h >> (8 * i));
	put_bytes(&w, hb, 8);
	*len = w.len;
	return CRDT_OK;
}

typedef struct span {
	uint32_t lv, len;
} span;

static int span_cmp(const void *a, const void *b)
{
	const span *x = a, *y = b;
	return x->lv < y->lv ? -1 : x->lv > y->lv;
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

static int decode_ids(crdt_doc *d, rbuf *r)
{
	/* every replica takes at least 2 bytes, every run 3 */
	uint32_t n = get_u32(r, r->len / 2);
	if (r->bad)
		return CRDT_ECORRUPT;
	for (uint32_t i = 0; i < n; i++) {
		crdt_replica id = get_u64(r);
		uint32_t next = get_u32(r, CRDT_MAX_COUNTER);
		uint32_t rep;
		if (r->bad || id == CRDT_NO_REPLICA || idmap_rep_find(d, id) >= 0)
			return CRDT_ECORRUPT;
		int rc = idmap_rep_get(d, id, &rep);
		if (rc)
			return rc;
		d->reps[rep].next = next; /* checked against the runs below */
	}
	d->clock = get_u32(r, CRDT_MAX_COUNTER);
	uint32_t runs = get_u32(r, r->len / 3);
	rbuf c[RUN_COLS];
	if (r->bad || !get_columns(r, c, RUN_COLS))
		return CRDT_ECORRUPT;
	if (mem_grow(&d->mem, (void **)&d->runs, &d->cap_runs, runs, sizeof *d->runs))
		return CRDT_ENOMEM;
	/* counters seen so far per replica */
	size_t seen_size = (n ? n : 1) * sizeof(uint32_t);
	uint32_t *seen = mem_calloc(&d->mem, seen_size);
	if (!seen)
		return CRDT_ENOMEM;
	int64_t lamport_end = 0, target_next = 0;
	uint64_t lv = 0;
	int rc = CRDT_OK;
	for (uint32_t i = 0; i < runs && rc == CRDT_OK; i++) {
		uint64_t hdr = get_u64(&c[0]);
		idrun run = {0};
		run.kind = (hdr & 1) ? CRDT_OP_DELETE : CRDT_OP_INSERT;
		run.reversed = (hdr >> 1) & 1;
		run.len = get_u32(&c[1], CRDT_MAX_OP_LEN * 64u);
		int64_t lam = lamport_end + unzigzag(get_u64(&c[2]));
		if ((hdr >> 2) >= n || run.len == 0 || lam < 0 || lam + run.len > d->clock ||
		    (run.reversed && run.kind != CRDT_OP_DELETE)) {
			rc = CRDT_ECORRUPT;
			break;
		}
		run.rep = (uint32_t)(hdr >> 2);
		run.lamport = (uint32_t)lam;
		lamport_end = lam + run.len;
		if (run.kind == CRDT_OP_DELETE) {
			run.trep = get_u32(&c[3], n ? n - 1 : 0);
			int64_t t = target_next + unzigzag(get_u64(&c[4]));
			if (t < 0 || t > CRDT_MAX_COUNTER) {
				rc = CRDT_ECORRUPT;
				break;
			}
			run.tcounter = (uint32_t)t;
			target_next = run.reversed ? t - run.len : t + run.len;
			uint64_t lo = run.reversed ? (uint64_t)run.tcounter + 1 - run.len : run.tcounter;
			if ((run.reversed && run.tcounter + 1u < run.len) || lo + run.len > d->reps[run.trep].next)
				rc = CRDT_ECORRUPT;
		}
		run.counter = seen[run.rep];
		run.lv = (uint32_t)lv;
		if (c[0].bad || c[1].bad || c[2].bad || c[3].bad || c[4].bad ||
		    (uint64_t)run.counter + run.len > d->reps[run.rep].next || lv + run.len >= LV_NONE)
			rc = CRDT_ECORRUPT;
		if (rc)
			break;
		seen[run.rep] += run.len;
		lv += run.len;
		replica *p = &d->reps[run.rep];
		if (mem_grow(&d->mem, (void **)&p->runs, &p->cap_runs, p->n_runs + 1, sizeof *p->runs)) {
			rc = CRDT_ENOMEM;
			break;
		}
		p->runs[p->n_runs++] = d->n_runs;
		d->runs[d->n_runs++] = run;
	}
	for (uint32_t i = 0; rc == CRDT_OK && i < n; i++)
		if (seen[i] != d->reps[i].next)
			rc = CRDT_ECORRUPT;
	if (rc == CRDT_OK && !columns_done(c, RUN_COLS))
		rc = CRDT_ECORRUPT;
	mem_free(&d->mem, seen, seen_size);
	d->next_lv = (uint32_t)lv;
	return rc;
}

static int decode_items(crdt_doc *d, rbuf *r)
{
	uint32_t n = get_u32(r, r->len - r->at);
	rbuf c[ITEM_COLS];
	if (r->bad || !get_columns(r, c, ITEM_COLS) || n > c[2].len)
		return CRDT_ECORRUPT; /* every item has a flags byte */
	size_t items_size = (n ? n : 1) * sizeof(item);
	item *items = mem_alloc(&d->mem, items_size);
	span *spans = mem_alloc(&d->mem, (n ? n : 1) * sizeof(span));
	if (!items || !spans) {
		mem_free(&d->mem, items, items_size);
		mem_free(&d->mem, spans, (n ? n : 1) * sizeof(span));
		return CRDT_ENOMEM;
	}
	int rc = CRDT_OK;
	int64_t lv_end = 0;
	uint64_t text = 0, units = 0;
	bool right_next = false; /* the previous item's right is this lv */
	for (uint32_t i = 0; i < n && rc == CRDT_OK; i++) {
		item it;
		int64_t lv = lv_end + unzigzag(get_u64(&c[0]));
		it.len = get_u32(&c[1], CRDT_MAX_COUNTER);
		unsigned flags = get_u32(&c[2], 63);
		if (c[0].bad || c[1].bad || c[2].bad || lv < 0 || it.len == 0 || lv + it.len > d->next_lv) {
			rc = CRDT_ECORRUPT;
			break;
		}
		it.lv = (uint32_t)lv;
		if (right_next)
			items[i - 1].right = it.lv;
		if (flags & F_LEFT_NONE)
			it.left = LV_NONE;
		else if (flags & F_LEFT_PREV)
			it.left = lv_end > 0 ? (uint32_t)(lv_end - 1) : LV_NONE;
		else
			it.left = it.lv - 1 - get_u32(&c[3], it.lv ? it.lv - 1 : 0);
		right_next = flags & F_RIGHT_NEXT;
		it.right = (flags & F_RIGHT_NONE) ? LV_NONE
			   : right_next		  ? 0 /* set by the next item */
						  : it.lv - 1 - get_u32(&c[4], it.lv ? it.lv - 1 : 0);
		it.bytes = !(flags & F_LIVE) ? 0 : (flags & F_ASCII) ? it.len : get_u32(&c[5], (uint64_t)it.len * 4);
		if (c[3].bad || c[4].bad || c[5].bad || (!(flags & F_LEFT_NONE) && it.left == LV_NONE) ||
		    (it.lv == 0 && it.left != LV_NONE) || ((flags & F_RIGHT_NONE) && right_next) ||
		    ((flags & F_LIVE) && it.bytes < it.len) || ((flags & F_ASCII) && !(flags & F_LIVE))) {
			rc = CRDT_ECORRUPT;
			break;
		}
		for (const idrun *run = idmap_run(d, it.lv); rc == CRDT_OK && run < d->runs + d->n_runs &&
							     run->lv < it.lv + it.len;
		     run++)
			if (run->kind != CRDT_OP_INSERT)
				rc = CRDT_ECORRUPT;
		spans[i] = (span){it.lv, it.len};
		items[i] = it;
		text += it.bytes;
		units += it.len;
		lv_end = lv + it.len;
	}
	if (rc == CRDT_OK && (right_next || !columns_done(c, ITEM_COLS) || text > r->len - r->at ||
			      units > CRDT_MAX_COUNTER))
		rc = CRDT_ECORRUPT;
	/* items must not overlap; with the unit count checked by
	 * crdt_doc_check, every inserted unit is then in exactly one item */
	if (rc == CRDT_OK) {
		qsort(spans, n, sizeof *spans, span_cmp);
		for (uint32_t i = 1; i < n && rc == CRDT_OK; i++)
			if ((uint64_t)spans[i - 1].lv + spans[i - 1].len > spans[i].lv)
				rc = CRDT_ECORRUPT;
	}
	if (rc == CRDT_OK) {
		rc = tree_build(d, items, n, (const char *)r->p + r->at);
		r->at += text;
	}
	mem_free(&d->mem, items, items_size);
	mem_free(&d->mem, spans, (n ? n : 1) * sizeof(span));
	if (rc == CRDT_OK)
		rc = lvmap_build(d);
	return rc;
}

crdt_doc *crdt_doc_decode(const uint8_t *data, size_t len, crdt_replica replica, const crdt_options *opts,
			  int *status)
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
	if (h != hash64(data, len - 8)) {
		*status = CRDT_ECORRUPT;
		return NULL;
	}
	/* a scratch document; the replica is added after the snapshot's */
	crdt_doc *d = crdt_doc_new(replica, opts);
	if (!d) {
		*status = replica == CRDT_NO_REPLICA ? CRDT_EINVAL : CRDT_ENOMEM;
		return NULL;
	}
	idmap_free(d);
	d->reps = NULL;
	d->rep_order = NULL;
	d->runs = NULL;
	d->n_reps = d->cap_reps = d->n_runs = d->cap_runs = 0;

	rbuf r = {data, len - 8, 1, false};
	int rc = decode_ids(d, &r);
	if (rc == CRDT_OK)
		rc = decode_items(d, &r);
	if (rc == CRDT_OK && r.at != r.len)
		rc = CRDT_ECORRUPT;
	if (rc == CRDT_OK)
		rc = idmap_rep_get(d, replica, &d->self_rep);
	if (rc == CRDT_OK && crdt_doc_check(d) != CRDT_OK)
		rc = CRDT_ECORRUPT;
	if (rc != CRDT_OK) {
		crdt_doc_free(d);
		*status = rc;
		return NULL;
	}
	*status = CRDT_OK;
	return d;
}
