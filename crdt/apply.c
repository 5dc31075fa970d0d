/*
 * apply.c - integrating remote operations.
 *
 * An op is checked in full before anything changes: its shape, that it is
 * the next op of its replica (or a duplicate), that everything it refers to
 * is known and of the right kind, and that its Lamport time is after its
 * dependencies'. Then inserts are placed by the ordering rule (FugueMax, as
 * in INTERNALS.md), or, when they continue the item the last op made with
 * nothing to order (a writer typing), extend it in place; deletes mark
 * their targets. An op whose dependencies are missing is held in a bounded
 * pending list, if the document has one, and retried after every op that
 * applies.
 */
#include <string.h>

#include "internal.h"

static int check_shape(const crdt_op *op)
{
	if (op->kind != CRDT_OP_INSERT && op->kind != CRDT_OP_DELETE)
		return CRDT_EINVAL;
	if (op->len == 0 || op->len > CRDT_MAX_OP_LEN || op->id.replica == CRDT_NO_REPLICA)
		return CRDT_EINVAL;
	if ((uint64_t)op->id.counter + op->len > CRDT_MAX_COUNTER ||
	    (uint64_t)op->lamport + op->len > CRDT_MAX_COUNTER)
		return CRDT_EINVAL;
	if (op->kind == CRDT_OP_DELETE)
		return op->target.replica == CRDT_NO_REPLICA ||
				       (uint64_t)op->target.counter + op->len > CRDT_MAX_COUNTER
			       ? CRDT_EINVAL
			       : CRDT_OK;
	if (op->text) {
		long n = crdt_utf8_count(op->text, op->text_bytes);
		if (n < 0)
			return CRDT_EUTF8;
		if ((uint32_t)n != op->len)
			return CRDT_EINVAL;
	}
	return CRDT_OK;
}

/* lv of an origin id (LV_NONE for "none") and its Lamport time; *missing
 * when not known yet, *bad when it is not an inserted unit. */
static uint32_t origin_lv(const crdt_doc *d, crdt_id id, uint32_t *lamport, bool *missing,
			  bool *bad)
{
	if (id.replica == CRDT_NO_REPLICA)
		return LV_NONE;
	int rep = idmap_rep_find(d, id.replica);
	uint32_t lv = LV_NONE;
	const idrun *run = rep < 0 ? NULL : idmap_find(d, (uint32_t)rep, id.counter, &lv);
	if (!run) {
		*missing = true;
		return LV_NONE;
	}
	if (run->kind != CRDT_OP_INSERT)
		*bad = true;
	*lamport = run->lamport + (lv - run->lv);
	return lv;
}

static uint32_t pos_of(const crdt_doc *d, uint32_t lv)
{
	return tree_pos_all(d, tree_find_lv(d, lv));
}

/*
 * Where a new run with origins (left, right) from replica `rid` goes:
 * FugueMax / YjsMod. Scan the units between the origins; stop before a unit
 * whose left origin is left of ours; among units with the same left origin,
 * units with a right origin further left come first (they sit inside our
 * range), equal origins are ordered by replica id. Only the first unit of
 * each item needs a decision: the others have their predecessor as left
 * origin, which lies inside the scanned range, so they are skipped.
 * Returns -1 if the origins are out of order.
 */
static int integrate(const crdt_doc *d, uint32_t left, uint32_t right, crdt_replica rid,
		     cursor *out)
{
	cursor c = {d->first, 0, 0};
	if (left != LV_NONE) {
		c = tree_find_lv(d, left);
		if (++c.off == c.leaf->items[c.idx].len)
			cursor_next_item(&c);
	}
	bool at_end = c.idx >= c.leaf->n;
	if (at_end ? right == LV_NONE : c.leaf->items[c.idx].lv + c.off == right) {
		*out = c; /* no concurrency: right origin follows directly */
		return 0;
	}
	if (at_end)
		return -1; /* right origin must be after left */

	int64_t lpos = left == LV_NONE ? -1 : (int64_t)pos_of(d, left);
	int64_t rpos = right == LV_NONE ? d->all_len : (int64_t)pos_of(d, right);
	int64_t i = lpos + 1;
	if (rpos < i)
		return -1;
	cursor dest = c;
	bool scanning = false;
	for (;;) {
		if (!scanning)
			dest = c;
		if (i == d->all_len || i == rpos)
			break;
		const item *it = &c.leaf->items[c.idx];
		int64_t oleft = c.off > 0	      ? i - 1
				: it->left == LV_NONE ? -1
						      : (int64_t)pos_of(d, it->left);
		if (oleft < lpos)
			break;
		if (oleft == lpos) {
			int64_t oright =
				it->right == LV_NONE ? d->all_len : (int64_t)pos_of(d, it->right);
			if (oright < rpos) {
				scanning = true;
			} else if (oright == rpos) {
				crdt_replica other = d->reps[idmap_run(d, it->lv + c.off)->rep].id;
				if (rid < other)
					break;
				scanning = false;
			} else {
				scanning = false;
			}
		}
		int64_t rem = it->len - c.off;
		if (rpos > i && rpos < i + rem) { /* right origin inside this item */
			c.off += (uint32_t)(rpos - i);
			i = rpos;
			continue;
		}
		i += rem;
		if (!cursor_next_item(&c)) {
			c.idx = c.leaf->n;
			c.off = 0;
		}
	}
	*out = dest;
	return 0;
}

/* Check the Lamport time against the replica's previous unit, which is
 * the last unit of its last run (the op continues its counters). */
static bool after_own_past(const crdt_doc *d, int rep, const crdt_op *op)
{
	const replica *r = &d->reps[rep];
	if (op->id.counter == 0 || r->n_runs == 0)
		return true;
	const idrun *last = &d->runs[r->runs[r->n_runs - 1]];
	return last->lamport + (op->id.counter - 1 - last->counter) < op->lamport;
}

static void bump_clock(crdt_doc *d, const crdt_op *op)
{
	if (op->lamport + op->len > d->clock)
		d->clock = op->lamport + op->len;
}

static int apply_insert(crdt_doc *d, const crdt_op *op, int rep, crdt_patch_fn fn, void *ctx)
{
	bool missing = false, bad = false;
	uint32_t llam = 0, rlam = 0;
	uint32_t left = origin_lv(d, op->left, &llam, &missing, &bad);
	uint32_t right = origin_lv(d, op->right, &rlam, &missing, &bad);
	if (missing)
		return CRDT_EMISSING;
	if (bad || (left != LV_NONE && left == right))
		return CRDT_EINVAL;
	if ((left != LV_NONE && llam >= op->lamport) || (right != LV_NONE && rlam >= op->lamport))
		return CRDT_EINVAL;
	if (rep >= 0 && !after_own_past(d, rep, op))
		return CRDT_EINVAL;
	if ((uint64_t)d->next_lv + op->len >= LV_NONE ||
	    (uint64_t)d->all_len + op->len > CRDT_MAX_COUNTER)
		return CRDT_ELIMIT;

	uint32_t bytes = op->text ? op->text_bytes : 0;
	item it = {d->next_lv, op->len, left, right, bytes};
	const char *text = op->text ? op->text : "";
	/* fast path, a writer typing: the op continues the item of its left
	 * origin, which ends with the last unit integrated, and its right
	 * origin follows; it extends that item in place */
	cursor dest, at;
	bool extend = tree_extends(d, &it, &dest);
	if (!extend && integrate(d, left, right, op->id.replica, &dest))
		return CRDT_EINVAL;
	uint32_t r = (uint32_t)rep;
	int rc;
	if ((rep < 0 && (rc = idmap_rep_get(d, op->id.replica, &r))) ||
	    (rc = idmap_reserve(d, r, 1)) || (rc = lvmap_reserve(d)) ||
	    (rc = extend ? tree_reserve_extend(d, &dest, bytes)
			 : tree_reserve_insert(d, &dest, bytes)))
		return rc;

	at = extend ? tree_extend(d, dest, &it, text) : tree_insert(d, dest, &it, text);
	idrun run = {.lv = d->next_lv,
		     .len = op->len,
		     .rep = r,
		     .counter = op->id.counter,
		     .lamport = op->lamport,
		     .kind = CRDT_OP_INSERT};
	idmap_push(d, &run);
	bump_clock(d, op);
	if (fn && bytes) {
		crdt_patch p = {tree_pos_vis(d, at), 0, op->len, op->text, bytes};
		fn(ctx, &p);
	}
	return CRDT_OK;
}

/* Delete `len` units of the item at c (if still live), with its patch. */
static void delete_piece(crdt_doc *d, cursor c, uint32_t len, crdt_patch_fn fn, void *ctx)
{
	if (!ITEM_LIVE(&c.leaf->items[c.idx]))
		return; /* deleting a tombstone again changes nothing */
	crdt_patch p = {0, len, 0, NULL, 0};
	if (fn)
		p.pos = tree_pos_vis(d, c);
	tree_delete(d, c, len);
	if (fn)
		fn(ctx, &p);
}

static int apply_delete(crdt_doc *d, const crdt_op *op, int rep, crdt_patch_fn fn, void *ctx)
{
	int trep = idmap_rep_find(d, op->target.replica);
	if (trep < 0 || (uint64_t)op->target.counter + op->len > d->reps[trep].next)
		return CRDT_EMISSING;
	if (rep >= 0 && !after_own_past(d, rep, op))
		return CRDT_EINVAL;
	if ((uint64_t)d->next_lv + op->len >= LV_NONE)
		return CRDT_ELIMIT;

	/* pass 1: targets must be inserted units older than the op; count
	 * the pieces that may split a leaf. The target ids map to one lv
	 * range per id-map run, and each lv range to one or more items. */
	uint32_t splits = 0, text = 0, pieces = 0;
	cursor first = {0};
	for (uint32_t done = 0; done < op->len;) {
		uint32_t lv;
		const idrun *run = idmap_find(d, (uint32_t)trep, op->target.counter + done, &lv);
		uint32_t n = u32_min(op->len - done, run->lv + run->len - lv);
		/* unit k of the op (Lamport time lamport + k) deletes target unit
		 * k, which must be older; both times grow by one per unit */
		if (run->kind != CRDT_OP_INSERT ||
		    run->lamport + (lv - run->lv) >= (uint64_t)op->lamport + done)
			return CRDT_EINVAL;
		for (uint32_t k = 0; k < n;) {
			cursor c = tree_find_lv(d, lv + k);
			const item *it = &c.leaf->items[c.idx];
			uint32_t take = u32_min(n - k, it->len - c.off);
			if (ITEM_LIVE(it) && (c.off > 0 || take < it->len)) {
				splits++;
				if (c.leaf->text_len > text)
					text = c.leaf->text_len;
			}
			if (pieces++ == 0)
				first = c;
			k += take;
		}
		done += n;
	}
	/* a single piece (a keystroke's delete) splits its leaf only if the
	 * item's one or two remaining parts do not fit: then no spare leaf
	 * (nor text for it) is needed. Several pieces may share a leaf, so
	 * they keep one split each. */
	if (pieces == 1 && splits == 1) {
		const item *it = &first.leaf->items[first.idx];
		uint32_t parts = (first.off > 0) + (first.off + op->len < it->len);
		if (first.leaf->n + parts <= LEAF_CAP)
			splits = 0;
	}
	uint32_t r = (uint32_t)rep;
	int rc;
	if ((rep < 0 && (rc = idmap_rep_get(d, op->id.replica, &r))) ||
	    (rc = idmap_reserve(d, r, 1)) || (rc = tree_reserve(d, splits, text)))
		return rc;

	/* pass 2. The reservations moved no item, so a single piece (a
	 * keystroke's delete) is still where pass 1 found it. */
	if (pieces == 1) {
		delete_piece(d, first, op->len, fn, ctx);
	} else {
		for (uint32_t done = 0; done < op->len;) {
			uint32_t lv;
			const idrun *run =
				idmap_find(d, (uint32_t)trep, op->target.counter + done, &lv);
			uint32_t n = u32_min(op->len - done, run->lv + run->len - lv);
			for (uint32_t k = 0; k < n;) {
				cursor c = tree_find_lv(d, lv + k);
				const item *it = &c.leaf->items[c.idx];
				uint32_t take = u32_min(n - k, it->len - c.off);
				delete_piece(d, c, take, fn, ctx);
				k += take;
			}
			done += n;
		}
	}
	idrun run = {.lv = d->next_lv,
		     .len = op->len,
		     .rep = r,
		     .counter = op->id.counter,
		     .lamport = op->lamport,
		     .kind = CRDT_OP_DELETE,
		     .trep = (uint32_t)trep,
		     .tcounter = op->target.counter};
	idmap_push(d, &run);
	bump_clock(d, op);
	return CRDT_OK;
}

/* Apply one well-formed op, trimming a part already seen. */
static int apply_one(crdt_doc *d, const crdt_op *in, crdt_patch_fn fn, void *ctx)
{
	int rep = idmap_rep_find(d, in->id.replica);
	uint32_t next = rep < 0 ? 0 : d->reps[rep].next;
	if ((uint64_t)in->id.counter + in->len <= next)
		return CRDT_DUPLICATE;
	if (in->id.counter > next)
		return CRDT_EMISSING;
	uint32_t skip = next - in->id.counter;
	const crdt_op *op = in; /* the common case: nothing seen, no copy */
	crdt_op trimmed;
	if (skip > 0) {
		trimmed = *in;
		trimmed.id.counter += skip;
		trimmed.lamport += skip;
		trimmed.len -= skip;
		if (in->kind == CRDT_OP_DELETE) {
			trimmed.target.counter += skip;
		} else {
			trimmed.left = (crdt_id){in->id.replica, trimmed.id.counter - 1};
			if (in->text) {
				size_t b = utf8_offset(in->text, in->text_bytes, skip);
				trimmed.text += b;
				trimmed.text_bytes -= (uint32_t)b;
			}
		}
		op = &trimmed;
	}
	return op->kind == CRDT_OP_INSERT ? apply_insert(d, op, rep, fn, ctx)
					  : apply_delete(d, op, rep, fn, ctx);
}

/* ---- pending ------------------------------------------------------------------ */

static void pending_drop(crdt_doc *d, uint32_t i)
{
	pending_op *p = &d->pending[i];
	if (p->text) {
		mem_free(&d->mem, p->text, p->op.text_bytes ? p->op.text_bytes : 1);
		d->pending_bytes -= p->op.text_bytes;
	}
	d->pending[i] = d->pending[--d->n_pending];
}

void pending_free(crdt_doc *d)
{
	while (d->n_pending)
		pending_drop(d, d->n_pending - 1);
	mem_free(&d->mem, d->pending, (size_t)d->cap_pending * sizeof *d->pending);
}

size_t crdt_doc_pending(const crdt_doc *d) { return d->n_pending; }

static int hold(crdt_doc *d, const crdt_op *op)
{
	uint32_t bytes = op->text ? op->text_bytes : 0;
	size_t max_bytes = d->max_pending_bytes ? d->max_pending_bytes : (size_t)1 << 20;
	if (d->n_pending >= d->max_pending || d->pending_bytes + bytes > max_bytes)
		return CRDT_EPENDING_FULL;
	if (mem_grow(&d->mem, (void **)&d->pending, &d->cap_pending, d->n_pending + 1,
		     sizeof *d->pending))
		return CRDT_ENOMEM;
	pending_op p = {*op, NULL};
	if (op->text) {
		p.text = mem_alloc(&d->mem, bytes ? bytes : 1);
		if (!p.text)
			return CRDT_ENOMEM;
		memcpy(p.text, op->text, bytes);
		p.op.text = p.text;
	}
	d->pending[d->n_pending++] = p;
	d->pending_bytes += bytes;
	return CRDT_PENDING;
}

/* Retry held ops until none applies. */
static void drain(crdt_doc *d, crdt_patch_fn fn, void *ctx)
{
	bool progress = true;
	while (progress && d->n_pending) {
		progress = false;
		for (uint32_t i = 0; i < d->n_pending;) {
			int rc = apply_one(d, &d->pending[i].op, fn, ctx);
			if (rc == CRDT_EMISSING || rc == CRDT_ENOMEM) {
				i++;
				continue;
			}
			/* applied, duplicate or invalid: it leaves the list */
			pending_drop(d, i);
			if (rc == CRDT_OK)
				progress = true;
		}
	}
}

int crdt_doc_apply(crdt_doc *d, const crdt_op *op, crdt_patch_fn fn, void *ctx)
{
	if (!op)
		return CRDT_EINVAL;
	int rc = check_shape(op);
	if (rc)
		return rc;
	rc = apply_one(d, op, fn, ctx);
	if (rc == CRDT_EMISSING && d->max_pending > 0)
		return hold(d, op);
	if (rc == CRDT_OK && d->n_pending)
		drain(d, fn, ctx);
	return rc;
}
