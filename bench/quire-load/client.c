/*
 * client.c - the Quire protocol session over a ql_ws connection (client.h).
 */
#include "client.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void on_open(ql_ws *w);
static void on_message(ql_ws *w, const uint8_t *data, size_t len);
static void on_closed(ql_ws *w);

static const ql_ws_handler handler = {on_open, on_message, on_closed};

int ql_client_init(ql_client *c, ql_net *net, const ql_client_ops *ops, const char *doc_id,
		   crdt_replica replica, bool engine)
{
	memset(c, 0, sizeof *c);
	c->ws.fd = -1;
	c->net = net;
	c->ops = ops;
	c->doc_id = doc_id;
	c->replica = replica;
	c->next_batch = 1;
	if (engine) {
		c->doc = crdt_doc_new(replica, NULL);
		if (c->doc == NULL)
			return -1;
	}
	return 0;
}

void ql_client_free(ql_client *c)
{
	ql_ws_free(&c->ws);
	for (size_t i = 0; i < c->n_pend; i++)
		crdt_batch_free(c->pend[i].ops);
	free(c->pend);
	c->pend = NULL;
	c->n_pend = c->cap_pend = 0;
	if (c->doc)
		crdt_doc_free(c->doc);
	c->doc = NULL;
}

int ql_client_connect(ql_client *c)
{
	c->welcomed = false;
	c->live = false;
	c->t_connect = ql_now_ns();
	c->connects++;
	return ql_net_connect(c->net, &c->ws, &handler);
}

void ql_client_drop(ql_client *c)
{
	ql_ws_abort(&c->ws);
	c->welcomed = false;
	c->live = false;
}

static int send_update(ql_client *c, ql_pending *p)
{
	ql_net *n = c->net;
	p->batch = c->next_batch++;
	n->enc.len = 0;
	size_t cnt = crdt_batch_count(p->ops);
	/* crdt_batch keeps its ops in one array today; crdt.h does not promise
	 * it, so fall back to a copy if that ever changes. */
	const crdt_op *first = crdt_batch_get(p->ops, 0);
	crdt_op *copy = NULL;
	if ((uintptr_t)crdt_batch_get(p->ops, cnt - 1) !=
	    (uintptr_t)first + (cnt - 1) * sizeof *first) {
		copy = malloc(cnt * sizeof *copy);
		if (copy == NULL)
			return -1;
		for (size_t i = 0; i < cnt; i++)
			copy[i] = *crdt_batch_get(p->ops, i);
		first = copy;
	}
	int rc = wire_client_encode_update(&n->enc, 1, p->batch, first, cnt);
	free(copy);
	if (rc != WIRE_OK)
		return -1;
	return ql_ws_send(&c->ws, n->enc.data, n->enc.len);
}

uint64_t ql_client_edit(ql_client *c, crdt_batch *ops)
{
	if (crdt_batch_count(ops) == 0) {
		crdt_batch_free(ops);
		return 0;
	}
	if (c->n_pend == c->cap_pend) {
		size_t nc = c->cap_pend ? c->cap_pend * 2 : 8;
		ql_pending *np = realloc(c->pend, nc * sizeof *np);
		if (np == NULL) {
			crdt_batch_free(ops);
			return 0;
		}
		c->pend = np;
		c->cap_pend = nc;
	}
	ql_pending *p = &c->pend[c->n_pend++];
	p->ops = ops;
	p->batch = 0;
	if (ql_client_ready(c)) {
		if (send_update(c, p) != 0)
			return 0;
		return p->batch;
	}
	return c->next_batch; /* sent after the next Welcome */
}

int ql_client_ping(ql_client *c, uint64_t nonce)
{
	ql_net *n = c->net;
	n->enc.len = 0;
	if (wire_client_encode_ping(&n->enc, 0, nonce) != WIRE_OK)
		return -1;
	return ql_ws_send(&c->ws, n->enc.data, n->enc.len);
}

static void on_open(ql_ws *w)
{
	ql_client *c = (ql_client *)w;
	ql_net *n = c->net;
	wire_hello h = {.protocol_version = WIRE_PROTOCOL_VERSION,
			.doc_id = c->doc_id,
			.doc_id_len = strlen(c->doc_id),
			.replica = c->replica,
			.last_seq = c->last_seq};
	n->enc.len = 0;
	if (wire_client_encode_hello(&n->enc, 1, &h) != WIRE_OK ||
	    ql_ws_send(w, n->enc.data, n->enc.len) != 0)
		ql_ws_abort(w);
}

/* A Welcome with a snapshot: replace the replica's state and put our own
 * unacknowledged ops back on top (section 5.4). */
static void take_snapshot(ql_client *c, const wire_server_msg *m)
{
	c->snapshots++;
	if (c->doc == NULL) {
		c->apply_errors++; /* a counter cannot count units in a snapshot */
		return;
	}
	crdt_doc *nd = NULL;
	uint64_t seq = 0;
	int st = 0;
	if (wire_snapshot_decode(m->welcome.snapshot, m->welcome.snapshot_len, c->doc_id,
				 c->replica, NULL, &nd, &seq, &st) != WIRE_OK) {
		c->apply_errors++;
		return;
	}
	for (size_t i = 0; i < c->n_pend; i++)
		for (size_t k = 0; k < crdt_batch_count(c->pend[i].ops); k++)
			if (crdt_doc_apply(nd, crdt_batch_get(c->pend[i].ops, k), NULL, NULL) < 0)
				c->apply_errors++;
	crdt_doc_free(c->doc);
	c->doc = nd;
	c->last_seq = seq;
}

static void on_welcome(ql_client *c, const wire_server_msg *m)
{
	c->welcomed = true;
	c->t_welcome = ql_now_ns();
	c->head_seq = m->welcome.head_seq;
	if (m->welcome.snapshot != NULL)
		take_snapshot(c, m);
	c->live = c->last_seq >= c->head_seq;
	/* Retransmit everything unacknowledged, unchanged, with new batch
	 * numbers: the server skips what it already has (section 5.7). */
	for (size_t i = 0; i < c->n_pend && c->ws.state == QL_WS_OPEN; i++)
		send_update(c, &c->pend[i]);
	if (c->ops->welcome)
		c->ops->welcome(c);
}

static void on_changes(ql_client *c, const wire_server_msg *m)
{
	if (m->n_changes == 0)
		return;
	if (m->seqs[0] != c->last_seq + 1)
		c->gaps++;
	uint64_t units = 0;
	size_t nops = crdt_batch_count(m->ops);
	for (size_t i = 0; i < nops; i++) {
		const crdt_op *op = crdt_batch_get(m->ops, i);
		units += op->len;
		if (c->doc != NULL && crdt_doc_apply(c->doc, op, NULL, NULL) < 0)
			c->apply_errors++;
	}
	c->units_in += units;
	c->changes_in += m->n_changes;
	uint64_t last = m->seqs[m->n_changes - 1];
	if (last > c->last_seq)
		c->last_seq = last;
	if (c->last_seq >= c->head_seq)
		c->live = true;
	if (c->ops->changes)
		c->ops->changes(c, m, units);
}

static void on_ack(ql_client *c, const wire_server_msg *m)
{
	c->acks_in++;
	if (m->ack.seq > c->last_seq)
		c->last_seq = m->ack.seq;
	if (c->last_seq >= c->head_seq)
		c->live = true;
	size_t k = 0;
	while (k < c->n_pend && c->pend[k].batch != 0 && c->pend[k].batch <= m->ack.client_batch) {
		crdt_batch_free(c->pend[k].ops);
		k++;
	}
	if (k > 0) {
		memmove(c->pend, c->pend + k, (c->n_pend - k) * sizeof *c->pend);
		c->n_pend -= k;
	}
	if (c->ops->ack)
		c->ops->ack(c, m->ack.client_batch, m->ack.seq);
}

static void on_message(ql_ws *w, const uint8_t *data, size_t len)
{
	ql_client *c = (ql_client *)w;
	wire_server_msg *m = c->net->dec;
	if (wire_server_decode(m, data, len, &c->net->lim) != WIRE_OK) {
		c->errors++; /* an unknown kind is ignored; count it anyway */
		return;
	}
	if (m->doc != 1 && m->kind != WIRE_SERVER_PONG && m->kind != WIRE_SERVER_ERROR)
		return;
	switch (m->kind) {
	case WIRE_SERVER_WELCOME:
		on_welcome(c, m);
		break;
	case WIRE_SERVER_CHANGES:
		on_changes(c, m);
		break;
	case WIRE_SERVER_ACK:
		on_ack(c, m);
		break;
	case WIRE_SERVER_ERROR:
		/* SHUTTING_DOWN is followed by a close; count the rest. */
		if (m->error.code != WIRE_ERR_SHUTTING_DOWN) {
			c->errors++;
			c->last_error = m->error.code;
		}
		if (c->ops->error)
			c->ops->error(c, m);
		break;
	default:
		break;
	}
}

static void on_closed(ql_ws *w)
{
	ql_client *c = (ql_client *)w;
	c->welcomed = false;
	c->live = false;
	if (c->ops->closed)
		c->ops->closed(c);
}
