/*
 * doc.c - the document object and local editing.
 *
 * A local insert becomes one insert op whose origins are the units around
 * the cursor; a local delete becomes one delete op per run of target ids.
 * Both first reserve everything they may need (id map, lv map, tree nodes,
 * the output batch), then mutate, so they either fully happen or fail with
 * the document untouched.
 */
#include <string.h>

#include "internal.h"

const char *crdt_strerror(int status)
{
	switch (status) {
#define CRDT__CASE(name, value, text)                                                              \
	case value:                                                                                \
		return text;
		CRDT_STATUS_TABLE(CRDT__CASE)
#undef CRDT__CASE
	}
	return "unknown status";
}

crdt_doc *crdt_doc_new(crdt_replica replica, const crdt_options *opts)
{
	if (replica == CRDT_NO_REPLICA)
		return NULL;
	mem m = {opts ? opts->allocator : NULL, 0};
	crdt_doc *d = mem_calloc(&m, sizeof *d);
	if (!d)
		return NULL;
	d->mem = m;
	d->self = replica;
	if (opts) {
		d->max_pending = opts->max_pending_ops;
		d->max_pending_bytes = opts->max_pending_bytes;
	}
	if (tree_init(d) || lvmap_init(d) || idmap_rep_get(d, replica, &d->self_rep)) {
		crdt_doc_free(d);
		return NULL;
	}
	return d;
}

void crdt_doc_free(crdt_doc *d)
{
	if (!d)
		return;
	pending_free(d);
	tree_free(d);
	lvmap_free(d);
	idmap_free(d);
	mem m = d->mem;
	mem_free(&m, d, sizeof *d);
}

crdt_replica crdt_doc_replica(const crdt_doc *d) { return d->self; }
size_t crdt_doc_length(const crdt_doc *d) { return d->vis_len; }
size_t crdt_doc_utf8_bytes(const crdt_doc *d) { return d->bytes; }
uint32_t crdt_doc_clock(const crdt_doc *d) { return d->clock; }
size_t crdt_doc_memory(const crdt_doc *d) { return d->mem.held; }

size_t crdt_doc_text(const crdt_doc *d, char *buf, size_t cap)
{
	if (buf && cap >= d->bytes) {
		size_t at = 0;
		for (const leaf *l = d->first; l; l = l->next) {
			if (l->text_len)
				memcpy(buf + at, l->text, l->text_len);
			at += l->text_len;
		}
	}
	return d->bytes;
}

uint32_t crdt_doc_seen(const crdt_doc *d, crdt_replica replica)
{
	int r = idmap_rep_find(d, replica);
	return r < 0 ? 0 : d->reps[r].next;
}

size_t crdt_doc_version(const crdt_doc *d, crdt_vv_entry *out, size_t cap)
{
	size_t n = 0;
	for (uint32_t i = 0; i < d->n_reps; i++) {
		const replica *r = &d->reps[d->rep_order[i]];
		if (r->next == 0)
			continue; /* ourselves before our first edit */
		if (out && n < cap)
			out[n] = (crdt_vv_entry){r->id, r->next};
		n++;
	}
	return n;
}

/* Room for an op of `len` units from us: counters and clock. */
static int local_limits(const crdt_doc *d, size_t len)
{
	if (len > CRDT_MAX_OP_LEN || (uint64_t)d->reps[d->self_rep].next + len > CRDT_MAX_COUNTER ||
	    (uint64_t)d->clock + len > CRDT_MAX_COUNTER || (uint64_t)d->next_lv + len >= LV_NONE ||
	    (uint64_t)d->all_len + len > CRDT_MAX_COUNTER)
		return CRDT_ELIMIT;
	return CRDT_OK;
}

int crdt_doc_insert(crdt_doc *d, size_t pos, const char *utf8, size_t nbytes, crdt_batch *out)
{
	if (nbytes == 0)
		return CRDT_OK;
	if (!utf8)
		return CRDT_EINVAL;
	long n = crdt_utf8_count(utf8, nbytes);
	if (n < 0)
		return CRDT_EUTF8;
	if (pos > d->vis_len)
		return CRDT_ERANGE;
	int rc = local_limits(d, (size_t)n);
	if (rc)
		return rc;

	/* the new run goes right after visible unit pos-1 */
	cursor c = {d->first, 0, 0};
	uint32_t left = LV_NONE, right = LV_NONE;
	if (pos > 0) {
		c = tree_find_vis(d, (uint32_t)pos - 1);
		left = c.leaf->items[c.idx].lv + c.off;
		c.off++;
	}
	if (c.idx < c.leaf->n && c.off < c.leaf->items[c.idx].len) {
		right = c.leaf->items[c.idx].lv + c.off;
	} else {
		cursor nx = c;
		if (c.idx >= c.leaf->n || cursor_next_item(&nx))
			if (nx.idx < nx.leaf->n)
				right = nx.leaf->items[nx.idx].lv;
	}

	replica *self = &d->reps[d->self_rep];
	if ((rc = idmap_reserve(d, d->self_rep, 1)) || (rc = lvmap_reserve(d)) ||
	    (rc = tree_reserve_insert(d, &c, (uint32_t)nbytes)) ||
	    (out && (rc = batch_reserve(out, 1, (uint32_t)nbytes))))
		return rc;

	item it = {d->next_lv, (uint32_t)n, left, right, (uint32_t)nbytes};
	tree_insert(d, c, &it, utf8);
	idrun run = {.lv = d->next_lv, .len = (uint32_t)n, .rep = d->self_rep, .counter = self->next,
		     .lamport = d->clock, .kind = CRDT_OP_INSERT};
	idmap_push(d, &run);
	d->clock += (uint32_t)n;
	if (out) {
		crdt_op op = {.kind = CRDT_OP_INSERT,
			      .id = {d->self, run.counter},
			      .lamport = run.lamport,
			      .len = (uint32_t)n,
			      .left = idmap_id(d, left),
			      .right = idmap_id(d, right),
			      .text = utf8,
			      .text_bytes = (uint32_t)nbytes};
		crdt_batch_push(out, &op); /* reserved: cannot fail */
	}
	return CRDT_OK;
}

/* Step over tombstones (and empty leaf ends) to the next live unit. */
static void skip_to_live(cursor *c)
{
	while (c->idx >= c->leaf->n || !ITEM_LIVE(&c->leaf->items[c->idx]))
		cursor_next_item(c);
}

/* How many units from the live unit at c one delete op can take: the rest
 * of the item, but no further than the id-map run of its first unit (an
 * item can continue another replica's run; an op targets one replica). */
static uint32_t delete_piece(const crdt_doc *d, const cursor *c, size_t left)
{
	const item *it = &c->leaf->items[c->idx];
	uint32_t lv = it->lv + c->off;
	const idrun *run = idmap_run(d, lv);
	uint32_t take = u32_min(it->len - c->off, run->lv + run->len - lv);
	return left < take ? (uint32_t)left : take;
}

int crdt_doc_delete(crdt_doc *d, size_t pos, size_t len, crdt_batch *out)
{
	if (len == 0)
		return CRDT_OK;
	if (pos > d->vis_len || len > d->vis_len - pos)
		return CRDT_ERANGE;
	int rc = local_limits(d, len);
	if (rc)
		return rc;

	/* pass 1: count the pieces (one op each at most) and the leaves that
	 * may split (those of the first and last piece) */
	cursor c = tree_find_vis(d, (uint32_t)pos);
	uint32_t pieces = 0, text = c.leaf->text_len;
	size_t left = len;
	for (;;) {
		skip_to_live(&c);
		uint32_t take = delete_piece(d, &c, left);
		pieces++;
		left -= take;
		if (left == 0)
			break;
		if ((c.off += take) == c.leaf->items[c.idx].len)
			cursor_next_item(&c);
	}
	if (c.leaf->text_len > text)
		text = c.leaf->text_len;
	if ((rc = idmap_reserve(d, d->self_rep, pieces)) || (rc = tree_reserve(d, 2, text)) ||
	    (out && (rc = batch_reserve(out, pieces, 0))))
		return rc;

	/* pass 2: delete */
	c = tree_find_vis(d, (uint32_t)pos);
	left = len;
	while (left > 0) {
		skip_to_live(&c);
		uint32_t take = delete_piece(d, &c, left);
		uint32_t target = c.leaf->items[c.idx].lv + c.off;
		c = tree_delete(d, c, take);
		const idrun *tr = idmap_run(d, target);
		idrun run = {.lv = d->next_lv, .len = take, .rep = d->self_rep,
			     .counter = d->reps[d->self_rep].next, .lamport = d->clock,
			     .kind = CRDT_OP_DELETE, .trep = tr->rep,
			     .tcounter = tr->counter + (target - tr->lv)};
		idmap_push(d, &run);
		d->clock += take;
		if (out) {
			crdt_op op = {.kind = CRDT_OP_DELETE,
				      .id = {d->self, run.counter},
				      .lamport = run.lamport,
				      .len = take,
				      .target = {d->reps[run.trep].id, run.tcounter}};
			crdt_batch_push(out, &op);
		}
		left -= take;
	}
	return CRDT_OK;
}

void crdt_doc_stats(const crdt_doc *d, crdt_stats *s)
{
	memset(s, 0, sizeof *s);
	s->length = d->vis_len;
	s->utf8_bytes = d->bytes;
	s->units = d->all_len;
	s->replicas = d->n_reps;
	s->leaves = d->n_leaves;
	s->depth = d->height + 1;
	s->memory_bytes = d->mem.held;
	for (uint32_t i = 0; i < d->n_runs; i++) {
		s->id_runs++;
		if (d->runs[i].kind == CRDT_OP_DELETE)
			s->delete_runs++;
	}
	for (const leaf *l = d->first; l; l = l->next)
		for (uint32_t i = 0; i < l->n; i++) {
			s->items++;
			if (!ITEM_LIVE(&l->items[i])) {
				s->tombstone_items++;
				s->deleted_units += l->items[i].len;
			}
		}
}
