/*
 * import_replay.c - an editing trace replayed as the stream of changes a
 * Quire server would have logged, one change per transaction.
 *
 * Sequential trace: one replica applies every patch as a local edit; the
 * ops of transaction k, encoded with wire_ops_encode, are change k + 1,
 * and that replica is also the server's document.
 *
 * Concurrent trace: one replica per agent. Before each transaction, the
 * agent's replica is brought to exactly the merge of the transaction's
 * parents by delivering the changes it lacks (decoded from their stored
 * payloads, in trace order, which is causal); the patches then apply as
 * local edits there. The server's document is a separate replica that
 * receives every change in trace order, as a server would. A version here
 * is a vector of per-agent transaction counts, which names a set of
 * transactions exactly because each agent's transactions are totally
 * ordered and each descends from the agent's previous one (checked).
 *
 * A non-empty startContent is inserted by a setup replica, known to every
 * agent from the start, and its ops go into change 1 ahead of the first
 * transaction's.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "import.h"
#include "wire.h"

/* The stored payloads are our own: decode them with room for any size. */
static const wire_limits own_limits = {
	.max_message_bytes = (size_t)1 << 30,
	.max_ops = UINT32_MAX,
	.max_text_bytes = (size_t)1 << 30,
};

struct imp_replay {
	const trace *t;
	size_t next;  /* the next change to make, 0-based */
	size_t count; /* changes in all */
	uint32_t agents;
	crdt_doc **docs;   /* per agent */
	crdt_replica *ids; /* per agent */
	char **authors;	   /* per agent, concurrent only */
	crdt_doc *server;  /* concurrent: the server's document */
	crdt_batch *batch; /* the current change's ops */
	crdt_batch *start; /* startContent's ops */
	crdt_batch *scratch;
	crdt_op *ops; /* the current change's ops as an array, for encoding */
	size_t ops_cap;
	wire_buf payload;

	/* concurrent bookkeeping */
	uint32_t *index;     /* per txn: its position among its agent's txns */
	uint32_t *by_agent;  /* txn indices of agent b at by_agent + agent_first[b] */
	size_t *agent_first; /* agents + 1 */
	uint32_t *vv_after;  /* per txn x agents: the version once it is applied */
	uint32_t *have;	     /* agents x agents: what each replica has */
	uint32_t *want, *tmp;
	uint8_t *stored; /* every change's payload, back to back */
	size_t stored_len, stored_cap;
	size_t *stored_off; /* per txn: payload at stored + off, length off[i+1] - off[i] */
};

static void set_err(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* ---- replica ids ------------------------------------------------------------- */

static uint64_t mix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

/* The replica of agent `a` (a == agents: the startContent setup replica):
 * a hash of the doc id and a, never 0 and distinct from the others. */
static crdt_replica replica_for(const char *doc_id, uint32_t a, const crdt_replica *taken,
				uint32_t ntaken)
{
	uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
	for (const unsigned char *p = (const unsigned char *)doc_id; *p; p++)
		h = (h ^ *p) * 0x100000001b3ull;
	uint64_t r = mix64(h + a);
	for (;;) {
		bool clash = r == CRDT_NO_REPLICA;
		for (uint32_t i = 0; i < ntaken && !clash; i++)
			clash = taken[i] == r;
		if (!clash)
			return r;
		r = mix64(r);
	}
}

/* ---- edits ---------------------------------------------------------------------- */

static int apply_patches(crdt_doc *doc, const trace *t, size_t txn, crdt_batch *out, char *err,
			 size_t errlen)
{
	const trace_txn *tx = &t->txns[txn];
	for (uint32_t k = 0; k < tx->n_patches; k++) {
		const trace_patch *p = &t->patches[tx->first_patch + k];
		if (p->del) {
			int rc = crdt_doc_delete(doc, p->pos, p->del, out);
			if (rc < 0) {
				set_err(err, errlen,
					"txn %zu patch %" PRIu32 ": delete %" PRIu32 " at %" PRIu32
					" (length %zu): %s",
					txn, k, p->del, p->pos, crdt_doc_length(doc),
					crdt_strerror(rc));
				return -1;
			}
		}
		if (p->ins_bytes) {
			int rc = crdt_doc_insert(doc, p->pos, trace_patch_text(t, p), p->ins_bytes,
						 out);
			if (rc < 0) {
				set_err(err, errlen,
					"txn %zu patch %" PRIu32 ": insert %" PRIu32 " at %" PRIu32
					" (length %zu): %s",
					txn, k, p->ins_len, p->pos, crdt_doc_length(doc),
					crdt_strerror(rc));
				return -1;
			}
		}
	}
	return 0;
}

/* Apply every op of batch to doc (a delivery between replicas). */
static int apply_batch(crdt_doc *doc, const crdt_batch *b, const char *what, size_t txn, char *err,
		       size_t errlen)
{
	for (size_t i = 0; i < crdt_batch_count(b); i++) {
		int rc = crdt_doc_apply(doc, crdt_batch_get(b, i), NULL, NULL);
		if (rc < 0) {
			set_err(err, errlen, "%s txn %zu, op %zu: %s", what, txn, i,
				crdt_strerror(rc));
			return -1;
		}
	}
	return 0;
}

/* ---- setup ------------------------------------------------------------------------ */

static int causal_build(imp_replay *r, char *err, size_t errlen)
{
	const trace *t = r->t;
	size_t A = r->agents, n = t->n_txns;
	if (n && A > SIZE_MAX / sizeof(uint32_t) / n / 2) {
		set_err(err, errlen, "too many agents (%zu) for %zu transactions", A, n);
		return -1;
	}
	r->index = malloc((n ? n : 1) * sizeof *r->index);
	r->by_agent = malloc((n ? n : 1) * sizeof *r->by_agent);
	r->agent_first = calloc(A + 1, sizeof *r->agent_first);
	r->vv_after = calloc(n * A > 0 ? n * A : 1, sizeof *r->vv_after);
	r->have = calloc(A * A, sizeof *r->have);
	r->want = calloc(A, sizeof *r->want);
	r->tmp = malloc((n ? n : 1) * sizeof *r->tmp);
	r->stored_off = calloc(n + 1, sizeof *r->stored_off);
	size_t *fill = calloc(A, sizeof *fill);
	if (!r->index || !r->by_agent || !r->agent_first || !r->vv_after || !r->have || !r->want ||
	    !r->tmp || !r->stored_off || !fill) {
		free(fill);
		set_err(err, errlen, "out of memory for %zu transactions x %zu agents", n, A);
		return -1;
	}
	for (size_t i = 0; i < n; i++)
		r->agent_first[t->txns[i].agent + 1]++;
	for (size_t b = 0; b < A; b++)
		r->agent_first[b + 1] += r->agent_first[b];
	for (size_t i = 0; i < n; i++) {
		const trace_txn *tx = &t->txns[i];
		uint32_t a = (uint32_t)tx->agent;
		r->index[i] = (uint32_t)fill[a];
		r->by_agent[r->agent_first[a] + fill[a]++] = (uint32_t)i;
		uint32_t *row = r->vv_after + i * A;
		for (uint32_t k = 0; k < tx->n_parents; k++) {
			const uint32_t *p =
				r->vv_after + (size_t)t->parents[tx->first_parent + k] * A;
			for (size_t b = 0; b < A; b++)
				if (p[b] > row[b])
					row[b] = p[b];
		}
		if (row[a] != r->index[i]) {
			free(fill);
			set_err(err, errlen,
				"txn %zu (agent %" PRIu32 ") does not descend from that agent's "
				"previous transaction, so no replica can make it",
				i, a);
			return -1;
		}
		row[a] = r->index[i] + 1;
	}
	free(fill);
	return 0;
}

imp_replay *imp_replay_new(const trace *t, const char *doc_id, char *err, size_t errlen)
{
	imp_replay *r = calloc(1, sizeof *r);
	if (!r) {
		set_err(err, errlen, "out of memory");
		return NULL;
	}
	r->t = t;
	r->agents = t->concurrent ? t->num_agents : 1;
	r->count = t->n_txns ? t->n_txns : (t->start_bytes ? 1 : 0);
	r->docs = calloc(r->agents, sizeof *r->docs);
	r->ids = calloc((size_t)r->agents + 1, sizeof *r->ids);
	r->batch = crdt_batch_new(NULL);
	r->start = crdt_batch_new(NULL);
	r->scratch = crdt_batch_new(NULL);
	if (!r->docs || !r->ids || !r->batch || !r->start || !r->scratch)
		goto nomem;
	for (uint32_t a = 0; a <= r->agents; a++)
		r->ids[a] = replica_for(doc_id, a, r->ids, a);
	for (uint32_t a = 0; a < r->agents; a++)
		if (!(r->docs[a] = crdt_doc_new(r->ids[a], NULL)))
			goto nomem;
	if (!t->concurrent) {
		if (t->start_bytes) {
			int rc = crdt_doc_insert(r->docs[0], 0, t->start, t->start_bytes, r->start);
			if (rc < 0) {
				set_err(err, errlen, "inserting startContent: %s",
					crdt_strerror(rc));
				goto fail;
			}
		}
		return r;
	}

	if (causal_build(r, err, errlen) != 0)
		goto fail;
	if (!(r->authors = calloc(r->agents, sizeof *r->authors)) ||
	    !(r->server = crdt_doc_new(replica_for(doc_id, r->agents + 1, r->ids, r->agents + 1),
				       NULL)))
		goto nomem;
	for (uint32_t a = 0; a < r->agents; a++) {
		if (!(r->authors[a] = malloc(24)))
			goto nomem;
		snprintf(r->authors[a], 24, "agent %" PRIu32, a);
	}
	if (t->start_bytes) {
		crdt_doc *setup = crdt_doc_new(r->ids[r->agents], NULL);
		if (!setup)
			goto nomem;
		int rc = crdt_doc_insert(setup, 0, t->start, t->start_bytes, r->start);
		crdt_doc_free(setup);
		if (rc < 0) {
			set_err(err, errlen, "inserting startContent: %s", crdt_strerror(rc));
			goto fail;
		}
		for (uint32_t a = 0; a < r->agents; a++)
			if (apply_batch(r->docs[a], r->start, "startContent before", 0, err,
					errlen))
				goto fail;
	}
	return r;
nomem:
	set_err(err, errlen, "out of memory");
fail:
	imp_replay_free(r);
	return NULL;
}

void imp_replay_free(imp_replay *r)
{
	if (!r)
		return;
	for (uint32_t a = 0; r->docs && a < r->agents; a++)
		crdt_doc_free(r->docs[a]);
	for (uint32_t a = 0; r->authors && a < r->agents; a++)
		free(r->authors[a]);
	free(r->docs);
	free(r->ids);
	free(r->authors);
	crdt_doc_free(r->server);
	crdt_batch_free(r->batch);
	crdt_batch_free(r->start);
	crdt_batch_free(r->scratch);
	free(r->ops);
	wire_buf_free(&r->payload);
	free(r->index);
	free(r->by_agent);
	free(r->agent_first);
	free(r->vv_after);
	free(r->have);
	free(r->want);
	free(r->tmp);
	free(r->stored);
	free(r->stored_off);
	free(r);
}

size_t imp_replay_count(const imp_replay *r) { return r->count; }

const crdt_doc *imp_replay_doc(const imp_replay *r) { return r->server ? r->server : r->docs[0]; }

/* ---- making a change ---------------------------------------------------------------- */

static int cmp_u32(const void *x, const void *y)
{
	uint32_t a = *(const uint32_t *)x, b = *(const uint32_t *)y;
	return (a > b) - (a < b);
}

/* Bring agent a's replica to the version r->want (concurrent traces). */
static int merge_into(imp_replay *r, uint32_t a, size_t txn, char *err, size_t errlen)
{
	uint32_t A = r->agents, *have = r->have + (size_t)a * A;
	size_t m = 0;
	for (uint32_t b = 0; b < A; b++) {
		for (uint32_t k = have[b]; k < r->want[b]; k++)
			r->tmp[m++] = r->by_agent[r->agent_first[b] + k];
		if (r->want[b] > have[b])
			have[b] = r->want[b];
	}
	if (m > 1)
		qsort(r->tmp, m, sizeof *r->tmp, cmp_u32);
	for (size_t i = 0; i < m; i++) {
		size_t j = r->tmp[i];
		crdt_batch_clear(r->scratch);
		int ws = wire_ops_decode(r->stored + r->stored_off[j],
					 r->stored_off[j + 1] - r->stored_off[j], &own_limits,
					 r->scratch);
		if (ws != WIRE_OK) {
			set_err(err, errlen, "txn %zu: change of txn %zu does not decode: %s", txn,
				j, wire_strerror(ws));
			return -1;
		}
		if (apply_batch(r->docs[a], r->scratch, "merging parents of", txn, err, errlen))
			return -1;
	}
	return 0;
}

/* Encode the current batch (after the startContent ops for change 1). */
static int encode(imp_replay *r, bool with_start, char *err, size_t errlen)
{
	size_t ns = with_start ? crdt_batch_count(r->start) : 0, nb = crdt_batch_count(r->batch);
	if (ns + nb > r->ops_cap) {
		crdt_op *p = realloc(r->ops, (ns + nb) * sizeof *p);
		if (!p) {
			set_err(err, errlen, "out of memory");
			return -1;
		}
		r->ops = p;
		r->ops_cap = ns + nb;
	}
	for (size_t i = 0; i < ns; i++)
		r->ops[i] = *crdt_batch_get(r->start, i);
	for (size_t i = 0; i < nb; i++)
		r->ops[ns + i] = *crdt_batch_get(r->batch, i);
	r->payload.len = 0;
	int ws = wire_ops_encode(r->ops, ns + nb, &r->payload);
	if (ws != WIRE_OK) {
		set_err(err, errlen, "change %zu: wire_ops_encode: %s", r->next + 1,
			wire_strerror(ws));
		return -1;
	}
	return 0;
}

static int keep_payload(imp_replay *r, size_t txn, char *err, size_t errlen)
{
	if (r->stored_len + r->payload.len > r->stored_cap) {
		size_t cap = r->stored_cap ? r->stored_cap : 1 << 16;
		while (cap < r->stored_len + r->payload.len)
			cap *= 2;
		uint8_t *p = realloc(r->stored, cap);
		if (!p) {
			set_err(err, errlen, "out of memory keeping the changes");
			return -1;
		}
		r->stored = p;
		r->stored_cap = cap;
	}
	if (r->payload.len)
		memcpy(r->stored + r->stored_len, r->payload.data, r->payload.len);
	r->stored_off[txn] = r->stored_len;
	r->stored_len += r->payload.len;
	r->stored_off[txn + 1] = r->stored_len;
	return 0;
}

int imp_replay_next(imp_replay *r, imp_change *out, char *err, size_t errlen)
{
	if (r->next >= r->count) {
		set_err(err, errlen, "no more changes");
		return -1;
	}
	const trace *t = r->t;
	size_t i = r->next;
	bool first = i == 0;
	crdt_batch_clear(r->batch);
	uint32_t a = 0;
	if (t->n_txns > 0) {
		a = t->concurrent ? (uint32_t)t->txns[i].agent : 0;
		if (t->concurrent) {
			memcpy(r->want, r->vv_after + i * r->agents, r->agents * sizeof *r->want);
			r->want[a]--; /* the parents' merge: this txn not yet included */
			if (merge_into(r, a, i, err, errlen) != 0)
				return -1;
		}
	}
	crdt_doc *doc = r->docs[a];
	uint32_t before = crdt_doc_seen(doc, r->ids[a]);
	if (t->n_txns > 0 && apply_patches(doc, t, i, r->batch, err, errlen) != 0)
		return -1;
	uint32_t after = crdt_doc_seen(doc, r->ids[a]);
	if (encode(r, first, err, errlen) != 0)
		return -1;
	if (t->concurrent) {
		if (t->n_txns > 0) {
			if (keep_payload(r, i, err, errlen) != 0)
				return -1;
			r->have[(size_t)a * r->agents + a]++;
		}
		if ((first &&
		     apply_batch(r->server, r->start, "startContent of", i, err, errlen)) ||
		    apply_batch(r->server, r->batch, "server applying", i, err, errlen))
			return -1;
	}
	out->payload = r->payload.data;
	out->payload_len = r->payload.len;
	out->replica = r->ids[a];
	out->counter_first = before;
	out->counter_count = after - before;
	out->author = r->authors ? r->authors[a] : NULL;
	r->next++;
	return 0;
}
