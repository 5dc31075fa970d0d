/*
 * sim.c - the seeded convergence simulation described in sim.h.
 *
 * A failed check formats a message (seed, step, replica, what) and
 * longjmps back to sim_run, which frees everything and returns -1, so the
 * caller can print the seed and go on with the next one.
 */
#include "sim.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crdt.h"
#include "testutil.h"

#define SIM_MAX 5

typedef struct sim_mirror {
	tu_text t;
	int bad;
} sim_mirror;

typedef struct sim {
	jmp_buf fail;
	char *err;
	size_t errcap;
	uint64_t seed;
	unsigned step;
	tu_rng rng;
	unsigned n;
	crdt_options opts;
	crdt_doc *doc[SIM_MAX];
	sim_mirror mirror[SIM_MAX];
	int lost[SIM_MAX];		/* held ops dropped by a snapshot reload */
	tu_oplog q[SIM_MAX][SIM_MAX];	/* q[i][j]: ops from i waiting for j */
	unsigned cut[SIM_MAX][SIM_MAX]; /* link down until this step (0: up) */
	tu_oplog all;			/* every local op, in generation order */
	crdt_batch *b;
	sim_stats st;
} sim;

static void sim_fail(sim *s, const char *fmt, ...)
{
	char msg[768];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (s->err && s->errcap)
		snprintf(s->err, s->errcap, "seed %llu, step %u: %s", (unsigned long long)s->seed,
			 s->step, msg);
	longjmp(s->fail, 1);
}

static void mirror_fn(void *ctx, const crdt_patch *p)
{
	sim_mirror *m = ctx;
	if (tu_text_apply_patch(&m->t, p) != 0)
		m->bad++;
}

static void check_replica(sim *s, unsigned i, const char *when)
{
	int c = crdt_doc_check(s->doc[i]);
	if (c != CRDT_OK)
		sim_fail(s, "%s: crdt_doc_check(replica %u) = %d (%s)", when, i, c,
			 crdt_strerror(c));
	if (s->mirror[i].bad)
		sim_fail(s,
			 "%s: replica %u reported a patch that does not fit its "
			 "text",
			 when, i);
	if (!tu_doc_equals_text(s->doc[i], &s->mirror[i].t))
		sim_fail(s,
			 "%s: replica %u's text differs from the text rebuilt "
			 "from its edits and patches",
			 when, i);
}

/* ---- local edits ------------------------------------------------------------ */

static void enqueue_batch(sim *s, unsigned from)
{
	size_t n = crdt_batch_count(s->b);
	for (size_t k = 0; k < n; k++) {
		const crdt_op *op = crdt_batch_get(s->b, k);
		for (unsigned j = 0; j < s->n; j++)
			if (j != from)
				tu_oplog_push(&s->q[from][j], op);
		tu_oplog_push(&s->all, op);
		s->st.local_ops++;
	}
}

static void do_insert(sim *s, unsigned i, size_t pos, const char *text, size_t nbytes)
{
	crdt_batch_clear(s->b);
	int st = crdt_doc_insert(s->doc[i], pos, text, nbytes, s->b);
	if (st != CRDT_OK)
		sim_fail(s, "replica %u: insert at %zu of %zu bytes: %d (%s)", i, pos, nbytes, st,
			 crdt_strerror(st));
	tu_text_insert_utf8(&s->mirror[i].t, pos, text, nbytes);
	enqueue_batch(s, i);
}

static void do_delete(sim *s, unsigned i, size_t pos, size_t n)
{
	crdt_batch_clear(s->b);
	int st = crdt_doc_delete(s->doc[i], pos, n, s->b);
	if (st != CRDT_OK)
		sim_fail(s, "replica %u: delete %zu at %zu: %d (%s)", i, n, pos, st,
			 crdt_strerror(st));
	tu_text_delete(&s->mirror[i].t, pos, n);
	enqueue_batch(s, i);
}

static size_t random_text(sim *s, char *buf, unsigned maxcp)
{
	unsigned n = 1 + (unsigned)tu_rng_below(&s->rng, maxcp);
	size_t off = 0;
	for (unsigned k = 0; k < n; k++)
		off += tu_utf8_put(tu_random_cp(&s->rng), buf + off);
	return off;
}

static void local_edit(sim *s)
{
	unsigned i = (unsigned)tu_rng_below(&s->rng, s->n);
	size_t len = crdt_doc_length(s->doc[i]);
	if (len == 0 || (len < 4000 && tu_rng_chance(&s->rng, 62))) {
		char buf[4 * 8];
		size_t nb = random_text(s, buf, 6);
		size_t pos;
		uint64_t k = tu_rng_below(&s->rng, 100);
		if (k < 15)
			pos = 0;
		else if (k < 30)
			pos = len;
		else
			pos = tu_rng_below(&s->rng, len + 1);
		do_insert(s, i, pos, buf, nb);
	} else {
		size_t pos = tu_rng_below(&s->rng, len);
		size_t n = 1 + tu_rng_below(&s->rng, len > 4000 ? 200 : 8);
		if (n > len - pos)
			n = len - pos;
		do_delete(s, i, pos, n);
	}
}

/* Every replica types a word at the same code-point offset, forward or
 * backward, one keystroke at a time, before anything is delivered. When the
 * replicas are in sync this is the same spot everywhere. */
static void burst(sim *s)
{
	size_t minlen = (size_t)-1;
	for (unsigned i = 0; i < s->n; i++) {
		size_t l = crdt_doc_length(s->doc[i]);
		if (l < minlen)
			minlen = l;
	}
	size_t pos = tu_rng_below(&s->rng, minlen + 1);
	for (unsigned i = 0; i < s->n; i++) {
		if (tu_rng_chance(&s->rng, 20))
			continue;
		int backward = tu_rng_chance(&s->rng, 40);
		unsigned keys = 1 + (unsigned)tu_rng_below(&s->rng, 6);
		for (unsigned k = 0; k < keys; k++) {
			char buf[4];
			size_t nb = tu_utf8_put(tu_random_cp(&s->rng), buf);
			do_insert(s, i, backward ? pos : pos + k, buf, nb);
		}
		/* sometimes delete a neighbour of the word just typed */
		if (tu_rng_chance(&s->rng, 20)) {
			if (pos > 0 && tu_rng_chance(&s->rng, 50))
				do_delete(s, i, pos - 1, 1);
			else if (crdt_doc_length(s->doc[i]) > pos + keys)
				do_delete(s, i, pos + keys, 1);
		}
	}
}

/* ---- delivery ---------------------------------------------------------------- */

static int link_up(const sim *s, unsigned i, unsigned j)
{
	return s->cut[i][j] == 0 || s->cut[i][j] <= s->step;
}

static void apply_remote(sim *s, unsigned j, const crdt_op *op, int *keep)
{
	int st = crdt_doc_apply(s->doc[j], op, mirror_fn, &s->mirror[j]);
	*keep = 0;
	switch (st) {
	case CRDT_OK:
		break;
	case CRDT_DUPLICATE:
		s->st.duplicates++;
		break;
	case CRDT_PENDING:
		s->st.held++;
		break;
	case CRDT_EPENDING_FULL:
		s->st.full++;
		*keep = 1; /* retry later, like a client would */
		break;
	default:
		sim_fail(s, "replica %u: apply of op (%llu,%u) kind %u len %u: %d (%s)", j,
			 (unsigned long long)op->id.replica, op->id.counter, op->kind, op->len, st,
			 crdt_strerror(st));
	}
	if (s->mirror[j].bad)
		sim_fail(s, "replica %u: a patch of op (%llu,%u) does not fit", j,
			 (unsigned long long)op->id.replica, op->id.counter);
	s->st.deliveries++;
}

/* Deliver one queued op over an open link; 0 if there was none. */
static int deliver_one(sim *s, int allow_dups)
{
	unsigned pairs[SIM_MAX * SIM_MAX][2], np = 0;
	for (unsigned i = 0; i < s->n; i++)
		for (unsigned j = 0; j < s->n; j++)
			if (i != j && s->q[i][j].len && link_up(s, i, j)) {
				pairs[np][0] = i;
				pairs[np][1] = j;
				np++;
			}
	if (!np)
		return 0;
	unsigned p = (unsigned)tu_rng_below(&s->rng, np);
	unsigned i = pairs[p][0], j = pairs[p][1];
	tu_oplog *q = &s->q[i][j];
	/* mostly in order, often out of order */
	size_t k = tu_rng_chance(&s->rng, 55) ? 0 : tu_rng_below(&s->rng, q->len);
	int keep;
	apply_remote(s, j, &q->ops[k], &keep);
	if (allow_dups && tu_rng_chance(&s->rng, 8))
		keep = 1; /* delivered again later */
	if (!keep)
		tu_oplog_remove(q, k);
	return 1;
}

/* j pulls what it lacks from i. */
static void sync_pair(sim *s, unsigned i, unsigned j)
{
	size_t n = crdt_doc_version(s->doc[j], NULL, 0);
	crdt_vv_entry *vv = malloc((n + 1) * sizeof *vv);
	if (!vv)
		abort();
	crdt_doc_version(s->doc[j], vv, n);
	crdt_batch_clear(s->b);
	int st = crdt_doc_ops_since(s->doc[i], vv, n, s->b);
	free(vv);
	if (st != CRDT_OK)
		sim_fail(s, "ops_since(replica %u for %u): %d (%s)", i, j, st, crdt_strerror(st));
	size_t cnt = crdt_batch_count(s->b);
	for (size_t k = 0; k < cnt; k++) {
		const crdt_op *op = crdt_batch_get(s->b, k);
		st = crdt_doc_apply(s->doc[j], op, mirror_fn, &s->mirror[j]);
		if (st != CRDT_OK && st != CRDT_DUPLICATE)
			sim_fail(s,
				 "anti-entropy %u->%u: op %zu/%zu (%llu,%u) kind %u "
				 "len %u: %d (%s)",
				 i, j, k, cnt, (unsigned long long)op->id.replica, op->id.counter,
				 op->kind, op->len, st, crdt_strerror(st));
		if (s->mirror[j].bad)
			sim_fail(s, "anti-entropy %u->%u: a patch does not fit", i, j);
	}
	/* j now has everything i had */
	n = crdt_doc_version(s->doc[i], NULL, 0);
	vv = malloc((n + 1) * sizeof *vv);
	if (!vv)
		abort();
	crdt_doc_version(s->doc[i], vv, n);
	for (size_t k = 0; k < n; k++)
		if (crdt_doc_seen(s->doc[j], vv[k].replica) < vv[k].next)
			sim_fail(s,
				 "after anti-entropy %u->%u, replica %u has seen "
				 "%u of %llu, the source %u",
				 i, j, j, crdt_doc_seen(s->doc[j], vv[k].replica),
				 (unsigned long long)vv[k].replica, vv[k].next);
	free(vv);
	s->st.syncs++;
	s->st.synced_ops += cnt;
}

/* ---- snapshots ----------------------------------------------------------------- */

static void reload(sim *s, unsigned i)
{
	crdt_doc *d = s->doc[i];
	size_t bound = crdt_doc_encode_bound(d), len = 0;
	uint8_t *buf = malloc(bound ? bound : 1);
	if (!buf)
		abort();
	int st = crdt_doc_encode(d, buf, bound, &len);
	if (st != CRDT_OK)
		sim_fail(s, "encode(replica %u): %d (%s)", i, st, crdt_strerror(st));
	crdt_doc *e = crdt_doc_decode(buf, len, crdt_doc_replica(d), &s->opts, &st);
	free(buf);
	if (!e)
		sim_fail(s, "decode(replica %u, %zu bytes): %d (%s)", i, len, st,
			 crdt_strerror(st));
	s->doc[i] = e;
	int check = crdt_doc_check(e);
	int same_version = tu_doc_same_version(d, e);
	uint32_t c1 = crdt_doc_clock(d), c2 = crdt_doc_clock(e);
	int same_text = tu_doc_equals_text(e, &s->mirror[i].t);
	if (crdt_doc_pending(d) > 0)
		s->lost[i] = 1; /* held ops are not saved */
	crdt_doc_free(d);
	if (check != CRDT_OK || !same_version || c1 != c2 || crdt_doc_pending(e) != 0 || !same_text)
		sim_fail(s,
			 "replica %u decoded from its %zu-byte snapshot differs "
			 "(check %d, same version %d, clock %u -> %u, pending %zu, "
			 "same text %d)",
			 i, len, check, same_version, c1, c2, crdt_doc_pending(e), same_text);
	s->st.reloads++;
}

/* ---- final checks ------------------------------------------------------------------ */

static void assert_converged(sim *s, const int *subset, const char *when)
{
	unsigned first = SIM_MAX;
	for (unsigned i = 0; i < s->n; i++) {
		if (subset && !subset[i])
			continue;
		if (crdt_doc_pending(s->doc[i]) != 0)
			sim_fail(s, "%s: replica %u still holds %zu ops", when, i,
				 crdt_doc_pending(s->doc[i]));
		check_replica(s, i, when);
		if (first == SIM_MAX) {
			first = i;
			continue;
		}
		if (!tu_doc_same_version(s->doc[first], s->doc[i]))
			sim_fail(s, "%s: replicas %u and %u have different versions", when, first,
				 i);
		if (!tu_text_equal(&s->mirror[first].t, &s->mirror[i].t) ||
		    !tu_doc_equals_text(s->doc[i], &s->mirror[first].t)) {
			size_t na, nb;
			char *a = tu_doc_text(s->doc[first], &na);
			char *b = tu_doc_text(s->doc[i], &nb);
			size_t k = 0;
			while (k < na && k < nb && a[k] == b[k])
				k++;
			char ctx[160];
			snprintf(ctx, sizeof ctx, "\"%.30s\" vs \"%.30s\"",
				 a + (k > 10 ? k - 10 : 0), b + (k > 10 ? k - 10 : 0));
			free(a);
			free(b);
			sim_fail(s,
				 "%s: replicas %u and %u differ at byte %zu "
				 "(%zu vs %zu bytes): %s",
				 when, first, i, k, na, nb, ctx);
		}
	}
}

static void finish(sim *s)
{
	s->step++;
	/* heal, drain every queue */
	memset(s->cut, 0, sizeof s->cut);
	while (deliver_one(s, 0))
		;
	/* replicas that lost nothing converge by delivery alone */
	int intact[SIM_MAX];
	for (unsigned i = 0; i < s->n; i++)
		intact[i] = !s->lost[i];
	assert_converged(s, intact, "after draining the queues");
	/* anti-entropy: everyone pulls from everyone, twice */
	for (int pass = 0; pass < 2; pass++)
		for (unsigned j = 0; j < s->n; j++)
			for (unsigned i = 0; i < s->n; i++)
				if (i != j)
					sync_pair(s, i, j);
	assert_converged(s, NULL, "after anti-entropy");

	/* a fresh replica given every op in generation order, no pending */
	crdt_doc *obs = crdt_doc_new(0xFFFFFFFFFFFFFFFFull, NULL);
	if (!obs)
		sim_fail(s, "crdt_doc_new failed");
	for (size_t k = 0; k < s->all.len; k++) {
		int st = crdt_doc_apply(obs, &s->all.ops[k], NULL, NULL);
		if (st != CRDT_OK) {
			crdt_doc_free(obs);
			sim_fail(s, "observer: op %zu of %zu (%llu,%u): %d (%s)", k, s->all.len,
				 (unsigned long long)s->all.ops[k].id.replica,
				 s->all.ops[k].id.counter, st, crdt_strerror(st));
		}
	}
	int same = tu_doc_equals_text(obs, &s->mirror[0].t) &&
		   tu_doc_same_version(obs, s->doc[0]) && crdt_doc_check(obs) == CRDT_OK;
	crdt_doc_free(obs);
	if (!same)
		sim_fail(s, "a replica built from all ops in generation order differs");
	/* and the final state survives a snapshot */
	reload(s, 0);
	assert_converged(s, NULL, "after the final reload");
	s->st.final_length = crdt_doc_length(s->doc[0]);
}

/* ---- main loop ------------------------------------------------------------------------ */

static void run(sim *s, unsigned steps)
{
	for (s->step = 1; s->step <= steps; s->step++) {
		uint64_t k = tu_rng_below(&s->rng, 1000);
		if (k < 380) {
			local_edit(s);
		} else if (k < 390) {
			burst(s);
		} else if (k < 800) {
			deliver_one(s, 1);
		} else if (k < 820) {
			unsigned i = (unsigned)tu_rng_below(&s->rng, s->n);
			unsigned j = (unsigned)tu_rng_below(&s->rng, s->n);
			if (i != j && link_up(s, i, j))
				sync_pair(s, i, j);
		} else if (k < 823) {
			/* bring everyone in sync, then type at one spot */
			for (unsigned j = 0; j < s->n; j++)
				for (unsigned i = 0; i < s->n; i++)
					if (i != j && link_up(s, i, j))
						sync_pair(s, i, j);
			burst(s);
		} else if (k < 843) {
			unsigned i = (unsigned)tu_rng_below(&s->rng, s->n);
			unsigned j = (unsigned)tu_rng_below(&s->rng, s->n);
			if (i != j) {
				unsigned until = s->step + 1 + (unsigned)tu_rng_below(&s->rng, 300);
				s->cut[i][j] = s->cut[j][i] = until;
				s->st.partitions++;
			}
		} else if (k < 853) {
			reload(s, (unsigned)tu_rng_below(&s->rng, s->n));
		} else if (k < 863) {
			check_replica(s, (unsigned)tu_rng_below(&s->rng, s->n), "periodic check");
		} else {
			/* a few deliveries in a row */
			for (int r = 0; r < 5; r++)
				deliver_one(s, 1);
		}
	}
	finish(s);
}

static void sim_free(sim *s)
{
	for (unsigned i = 0; i < SIM_MAX; i++) {
		if (s->doc[i])
			crdt_doc_free(s->doc[i]);
		tu_text_free(&s->mirror[i].t);
		for (unsigned j = 0; j < SIM_MAX; j++)
			tu_oplog_free(&s->q[i][j]);
	}
	tu_oplog_free(&s->all);
	if (s->b)
		crdt_batch_free(s->b);
	free(s);
}

int sim_run(const sim_options *opt, sim_stats *stats, char *err, size_t cap)
{
	sim *s = calloc(1, sizeof *s);
	if (!s)
		abort();
	s->err = err;
	s->errcap = cap;
	if (err && cap)
		err[0] = 0;
	s->seed = opt->seed;
	tu_rng_seed(&s->rng, opt->seed);
	s->n = opt->replicas ? opt->replicas : 3 + (unsigned)tu_rng_below(&s->rng, 3);
	if (s->n < 2)
		s->n = 2;
	if (s->n > SIM_MAX)
		s->n = SIM_MAX;
	s->opts.max_pending_ops = opt->max_pending ? opt->max_pending : 10000;
	s->opts.max_pending_bytes = (size_t)1 << 26;
	s->st.replicas = s->n;
	for (unsigned i = 0; i < SIM_MAX; i++) {
		tu_text_init(&s->mirror[i].t);
		for (unsigned j = 0; j < SIM_MAX; j++)
			tu_oplog_init(&s->q[i][j]);
	}
	tu_oplog_init(&s->all);
	int rc = 0;
	if (setjmp(s->fail) == 0) {
		s->b = crdt_batch_new(NULL);
		if (!s->b)
			sim_fail(s, "crdt_batch_new failed");
		for (unsigned i = 0; i < s->n; i++) {
			/* random 64-bit ids: their order decides ties */
			crdt_replica id = tu_rng_next(&s->rng) | 1;
			s->doc[i] = crdt_doc_new(id, &s->opts);
			if (!s->doc[i])
				sim_fail(s, "crdt_doc_new failed");
		}
		run(s, opt->steps);
	} else {
		rc = -1;
	}
	if (stats)
		*stats = s->st;
	if (opt->verbose)
		fprintf(stderr,
			"seed %llu: %u replicas, %zu local ops, %zu deliveries "
			"(%zu dup, %zu held, %zu full), %zu syncs (%zu ops), %zu "
			"reloads, %zu partitions, final length %zu%s\n",
			(unsigned long long)opt->seed, s->st.replicas, s->st.local_ops,
			s->st.deliveries, s->st.duplicates, s->st.held, s->st.full, s->st.syncs,
			s->st.synced_ops, s->st.reloads, s->st.partitions, s->st.final_length,
			rc ? " FAILED" : "");
	sim_free(s);
	return rc;
}
