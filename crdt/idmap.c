/*
 * idmap.c - the id map: local versions (lv) <-> (replica, counter, Lamport).
 *
 * Every op a document integrates gets the next lvs, so the map is a list of
 * runs sorted by lv that only ever grows at its end; consecutive ops of one
 * replica that continue each other (a person typing) share one run. Each
 * replica keeps the indices of its runs in counter order, so id -> lv is a
 * binary search, and the replica table is kept sorted by id for lookups.
 */
#include <string.h>

#include "internal.h"

int idmap_rep_find(const crdt_doc *d, crdt_replica id)
{
	/* an op's replica and its origins' are mostly the last one found */
	uint32_t h = d->rep_hint;
	if (h < d->n_reps && d->reps[h].id == id)
		return (int)h;
	uint32_t lo = 0, hi = d->n_reps;
	while (lo < hi) {
		uint32_t mid = (lo + hi) / 2;
		crdt_replica v = d->reps[d->rep_order[mid]].id;
		if (v == id) {
			/* a cache, not state (as run_hint in idmap_run) */
			((crdt_doc *)d)->rep_hint = d->rep_order[mid];
			return (int)d->rep_order[mid];
		}
		if (v < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

int idmap_rep_get(crdt_doc *d, crdt_replica id, uint32_t *rep)
{
	int found = idmap_rep_find(d, id);
	if (found >= 0) {
		*rep = (uint32_t)found;
		return CRDT_OK;
	}
	if (d->n_reps >= (1u << 30))
		return CRDT_ELIMIT;
	if (d->n_reps == d->cap_reps) {
		/* reps and rep_order share one capacity: grow both or neither */
		uint32_t ncap = d->cap_reps ? d->cap_reps * 2 : 4;
		replica *nr = mem_alloc(&d->mem, (size_t)ncap * sizeof *nr);
		uint32_t *no = mem_alloc(&d->mem, (size_t)ncap * sizeof *no);
		if (!nr || !no) {
			mem_free(&d->mem, nr, (size_t)ncap * sizeof *nr);
			mem_free(&d->mem, no, (size_t)ncap * sizeof *no);
			return CRDT_ENOMEM;
		}
		if (d->n_reps) {
			memcpy(nr, d->reps, (size_t)d->n_reps * sizeof *nr);
			memcpy(no, d->rep_order, (size_t)d->n_reps * sizeof *no);
		}
		mem_free(&d->mem, d->reps, (size_t)d->cap_reps * sizeof *nr);
		mem_free(&d->mem, d->rep_order, (size_t)d->cap_reps * sizeof *no);
		d->reps = nr;
		d->rep_order = no;
		d->cap_reps = ncap;
	}
	uint32_t idx = d->n_reps++;
	d->reps[idx] = (replica){.id = id};
	uint32_t pos = 0;
	while (pos < idx && d->reps[d->rep_order[pos]].id < id)
		pos++;
	memmove(&d->rep_order[pos + 1], &d->rep_order[pos], (size_t)(idx - pos) * sizeof(uint32_t));
	d->rep_order[pos] = idx;
	*rep = idx;
	return CRDT_OK;
}

const idrun *idmap_find(const crdt_doc *d, uint32_t rep, uint32_t counter, uint32_t *lv)
{
	const replica *r = &d->reps[rep];
	if (counter >= r->next) {
		*lv = LV_NONE;
		return NULL;
	}
	/* the replica's last run first: most references are recent; then
	 * the run found last (a writer's right origin, repeated op after op) */
	uint32_t lo = 0, hi = r->n_runs;
	const idrun *run = &d->runs[r->runs[hi - 1]];
	if (run->counter <= counter) {
		*lv = run->lv + (counter - run->counter);
		return run;
	}
	uint32_t h = d->find_hint;
	if (h < d->n_runs && d->runs[h].rep == rep &&
	    counter - d->runs[h].counter < d->runs[h].len) {
		run = &d->runs[h];
		*lv = run->lv + (counter - run->counter);
		return run;
	}
	while (hi - lo > 1) { /* last run whose counter <= counter */
		uint32_t mid = (lo + hi) / 2;
		if (d->runs[r->runs[mid]].counter <= counter)
			lo = mid;
		else
			hi = mid;
	}
	((crdt_doc *)d)->find_hint = r->runs[lo]; /* a cache, not state */
	run = &d->runs[r->runs[lo]];
	*lv = run->lv + (counter - run->counter);
	return run;
}

uint32_t idmap_lv(const crdt_doc *d, uint32_t rep, uint32_t counter)
{
	uint32_t lv;
	idmap_find(d, rep, counter, &lv);
	return lv;
}

const idrun *idmap_run(const crdt_doc *d, uint32_t lv)
{
	/* recent units are looked up most (typing, backspacing), and a
	 * lookup is often near the previous one (a delete's pieces) */
	if (d->n_runs && lv >= d->runs[d->n_runs - 1].lv)
		return &d->runs[d->n_runs - 1];
	uint32_t h = d->run_hint;
	if (h < d->n_runs && lv >= d->runs[h].lv && lv - d->runs[h].lv < d->runs[h].len)
		return &d->runs[h];
	uint32_t lo = 0, hi = d->n_runs;
	while (hi - lo > 1) {
		uint32_t mid = (lo + hi) / 2;
		if (d->runs[mid].lv <= lv)
			lo = mid;
		else
			hi = mid;
	}
	/* the hint is a cache, not state: documents are never const objects */
	((crdt_doc *)d)->run_hint = lo;
	return &d->runs[lo];
}

crdt_id idmap_id(const crdt_doc *d, uint32_t lv)
{
	if (lv == LV_NONE)
		return CRDT_NO_ID;
	const idrun *r = idmap_run(d, lv);
	return (crdt_id){d->reps[r->rep].id, r->counter + (lv - r->lv)};
}

uint32_t idmap_lamport(const crdt_doc *d, uint32_t lv)
{
	const idrun *r = idmap_run(d, lv);
	return r->lamport + (lv - r->lv);
}

int idmap_reserve(crdt_doc *d, uint32_t rep, uint32_t runs)
{
	replica *r = &d->reps[rep];
	if (d->n_runs + runs <= d->cap_runs && r->n_runs + runs <= r->cap_runs)
		return CRDT_OK; /* the common case: room from an earlier growth */
	if (mem_grow(&d->mem, (void **)&d->runs, &d->cap_runs, d->n_runs + runs, sizeof *d->runs))
		return CRDT_ENOMEM;
	if (mem_grow(&d->mem, (void **)&r->runs, &r->cap_runs, r->n_runs + runs, sizeof *r->runs))
		return CRDT_ENOMEM;
	return CRDT_OK;
}

/* Does run n continue run p? Inserts: same replica, contiguous lvs,
 * counters and Lamport times. Deletes also need targets that continue,
 * forwards (t, t+1, ...) or backwards (t, t-1, ...: a run of backspaces;
 * a single unit can start either). */
static bool run_continues(const idrun *p, const idrun *n, bool *backwards)
{
	*backwards = false;
	if (p->kind != n->kind || p->rep != n->rep || p->lv + p->len != n->lv ||
	    p->counter + p->len != n->counter || p->lamport + p->len != n->lamport)
		return false;
	if (p->kind == CRDT_OP_INSERT)
		return true;
	if (p->trep != n->trep)
		return false;
	if (!p->reversed && !n->reversed && p->tcounter + p->len == n->tcounter)
		return true;
	bool p_back = p->reversed || p->len == 1, n_back = n->reversed || n->len == 1;
	*backwards =
		p_back && n_back && p->tcounter >= p->len && n->tcounter == p->tcounter - p->len;
	return *backwards;
}

void idmap_push(crdt_doc *d, const idrun *n)
{
	replica *r = &d->reps[n->rep];
	r->next = n->counter + n->len;
	d->next_lv = n->lv + n->len;
	bool backwards;
	if (d->n_runs > 0 && run_continues(&d->runs[d->n_runs - 1], n, &backwards)) {
		idrun *p = &d->runs[d->n_runs - 1];
		if (backwards)
			p->reversed = 1;
		p->len += n->len;
		return;
	}
	r->runs[r->n_runs++] = d->n_runs;
	d->runs[d->n_runs++] = *n;
}

void idmap_free(crdt_doc *d)
{
	for (uint32_t i = 0; i < d->n_reps; i++)
		mem_free(&d->mem, d->reps[i].runs, (size_t)d->reps[i].cap_runs * sizeof(uint32_t));
	mem_free(&d->mem, d->reps, (size_t)d->cap_reps * sizeof *d->reps);
	mem_free(&d->mem, d->rep_order, (size_t)d->cap_reps * sizeof(uint32_t));
	mem_free(&d->mem, d->runs, (size_t)d->cap_runs * sizeof *d->runs);
}
