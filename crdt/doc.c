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
#define CRDT__CASE(name, value, text) \
	case value:                   \
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

/* Room for an op of `len` units from replica rep at Lamport time lamport. */
static int edit_limits(const crdt_doc *d, size_t len, uint32_t rep, uint32_t lamport)
{
	if (len > CRDT_MAX_OP_LEN || (uint64_t)d->reps[rep].next + len > CRDT_MAX_COUNTER ||
	    (uint64_t)lamport + len > CRDT_MAX_COUNTER || (uint64_t)d->next_lv + len >= LV_NONE ||
	    (uint64_t)d->all_len + len > CRDT_MAX_COUNTER)
		return CRDT_ELIMIT;
	return CRDT_OK;
}

static void bump(crdt_doc *d, uint32_t lamport, uint32_t len)
{
	if (lamport + len > d->clock)
		d->clock = lamport + len;
}

void edit_place(crdt_doc *d, uint32_t pos, cursor *at, uint32_t *left, uint32_t *right)
{
	/* a new run goes right after visible unit pos-1 */
	cursor c = {d->first, 0, 0};
	*left = *right = LV_NONE;
	if (pos > 0) {
		c = tree_find_vis(d, pos - 1);
		*left = c.leaf->items[c.idx].lv + c.off;
		c.off++;
	}
	if (c.idx < c.leaf->n && c.off < c.leaf->items[c.idx].len) {
		*right = c.leaf->items[c.idx].lv + c.off;
	} else {
		cursor nx = c;
		if (c.idx >= c.leaf->n || cursor_next_item(&nx))
			if (nx.idx < nx.leaf->n)
				*right = nx.leaf->items[nx.idx].lv;
	}
	*at = c;
}

int edit_insert(crdt_doc *d, uint32_t pos, const char *utf8, uint32_t nbytes, uint32_t n,
		uint32_t rep, uint32_t lamport, crdt_batch *out)
{
	if (pos > d->vis_len)
		return CRDT_ERANGE;
	int rc = edit_limits(d, n, rep, lamport);
	if (rc)
		return rc;
	cursor c;
	uint32_t left, right;
	edit_place(d, pos, &c, &left, &right);
	if ((rc = idmap_reserve(d, rep, 1)) || (rc = lvmap_reserve(d)) ||
	    (rc = tree_reserve_insert(d, &c, nbytes)) ||
	    (out && (rc = batch_reserve(out, 1, nbytes))))
		return rc;

	item it = {d->next_lv, n, left, right, nbytes};
	tree_insert(d, c, &it, utf8);
	idrun run = {.lv = d->next_lv,
		     .len = n,
		     .rep = rep,
		     .counter = d->reps[rep].next,
		     .lamport = lamport,
		     .kind = CRDT_OP_INSERT};
	idmap_push(d, &run);
	bump(d, lamport, n);
	if (out) {
		crdt_op op = {.kind = CRDT_OP_INSERT,
			      .id = {d->reps[rep].id, run.counter},
			      .lamport = run.lamport,
			      .len = n,
			      .left = idmap_id(d, left),
			      .right = idmap_id(d, right),
			      .text = utf8,
			      .text_bytes = nbytes};
		crdt_batch_push(out, &op); /* reserved: cannot fail */
	}
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
	if (nbytes > CRDT_MAX_OP_LEN * 4u)
		return CRDT_ELIMIT;
	return edit_insert(d, (uint32_t)pos, utf8, (uint32_t)nbytes, (uint32_t)n, d->self_rep,
			   d->clock, out);
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

static void push_delete(crdt_doc *d, uint32_t rep, uint32_t lamport, uint32_t target, uint32_t len,
			bool back, crdt_batch *out)
{
	const idrun *tr = idmap_run(d, target);
	idrun run = {.lv = d->next_lv,
		     .len = len,
		     .rep = rep,
		     .counter = d->reps[rep].next,
		     .lamport = lamport,
		     .kind = CRDT_OP_DELETE,
		     .reversed = back && len > 1,
		     .trep = tr->rep,
		     .tcounter = tr->counter + (target - tr->lv)};
	idmap_push(d, &run);
	bump(d, lamport, len);
	if (out) {
		crdt_op op = {.kind = CRDT_OP_DELETE,
			      .id = {d->reps[rep].id, run.counter},
			      .lamport = run.lamport,
			      .len = len,
			      .target = {d->reps[run.trep].id, run.tcounter}};
		crdt_batch_push(out, &op);
	}
}

int edit_delete(crdt_doc *d, uint32_t pos, uint32_t len, uint32_t rep, uint32_t lamport, bool back,
		crdt_batch *out)
{
	if (pos > d->vis_len || len > d->vis_len - pos)
		return CRDT_ERANGE;
	int rc = edit_limits(d, len, rep, lamport);
	if (rc)
		return rc;

	/* pass 1: count the pieces (one op each at most) and the leaves that
	 * may split (those of the first and last piece) */
	cursor start = tree_find_vis(d, pos), c = start;
	uint32_t pieces = 0, text = c.leaf->text_len;
	uint32_t left = len;
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
	/* a backward delete (a run of backspaces, unit k deleting pos+len-1-k)
	 * records its pieces first and gives them ids from the right */
	uint32_t small[16]; /* most runs of backspaces have a piece or two */
	bool heap = back && pieces > sizeof small / sizeof small[0] / 2;
	size_t stack_size = heap ? (size_t)pieces * 2 * sizeof(uint32_t) : 0;
	uint32_t *stack = back && !heap ? small : NULL;
	if (heap && !(stack = mem_alloc(&d->mem, stack_size)))
		return CRDT_ENOMEM;
	if ((rc = idmap_reserve(d, rep, pieces)) || (rc = tree_reserve(d, 2, text)) ||
	    (out && (rc = batch_reserve(out, back ? len : pieces, 0)))) {
		if (heap)
			mem_free(&d->mem, stack, stack_size);
		return rc;
	}

	/* pass 2: delete (pass 1 changed nothing, so its start still holds) */
	c = start;
	left = len;
	for (uint32_t i = 0; left > 0; i++) {
		skip_to_live(&c);
		uint32_t take = delete_piece(d, &c, left);
		uint32_t target = c.leaf->items[c.idx].lv + c.off;
		c = tree_delete(d, c, take);
		if (back) {
			stack[2 * i] = target;
			stack[2 * i + 1] = take;
		} else {
			push_delete(d, rep, lamport, target, take, false, out);
			lamport += take;
		}
		left -= take;
	}
	for (uint32_t i = pieces; back && i-- > 0;) {
		uint32_t target = stack[2 * i], take = stack[2 * i + 1];
		if (out) { /* a backspace at a time: ops cannot say "backwards" */
			for (uint32_t k = take; k-- > 0; lamport++)
				push_delete(d, rep, lamport, target + k, 1, true, out);
		} else {
			push_delete(d, rep, lamport, target + take - 1, take, true, NULL);
			lamport += take;
		}
	}
	if (heap)
		mem_free(&d->mem, stack, stack_size);
	return CRDT_OK;
}

int crdt_doc_delete(crdt_doc *d, size_t pos, size_t len, crdt_batch *out)
{
	if (len == 0)
		return CRDT_OK;
	if (pos > d->vis_len || len > d->vis_len - pos)
		return CRDT_ERANGE;
	return edit_delete(d, (uint32_t)pos, (uint32_t)len, d->self_rep, d->clock, false, out);
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
