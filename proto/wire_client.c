/*
 * wire_client.c - ClientMessage: the server's decoder (wire_client_decode)
 * and the encoders a C client uses (wire_client_encode_*).
 *
 * Decoding order:
 *  1. the size limit, the pre-scan (ops, text, UTF-8) and protobuf-c's
 *     unpack into the message object's arena (wire__unpack);
 *  2. the checks of each kind, then the conversion into the plain fields;
 *  3. only when 1 or 2 failed: a peek at the raw bytes for the handle, the
 *     kind, Update.client_batch and Hello.protocol_version, so the error
 *     can be addressed to the right document and batch, and a Hello of an
 *     unknown protocol version is answered UNSUPPORTED_VERSION however the
 *     rest of it looks (a future version may change other fields).
 */
#include <stddef.h>
#include <string.h>

#include "wire_internal.h"

typedef struct client_obj {
	wire_client_msg pub; /* first: a wire_client_msg * is a client_obj * */
	wire__arena arena;
} client_obj;

#define CLIENT_OBJ_LAYOUT \
	sizeof(client_obj), offsetof(client_obj, arena), offsetof(client_obj, pub.ops)

wire_client_msg *wire_client_msg_new(const crdt_allocator *al)
{
	return wire__decoder_new(al, CLIENT_OBJ_LAYOUT);
}

void wire_client_msg_free(wire_client_msg *m) { wire__decoder_free(m, CLIENT_OBJ_LAYOUT); }

static void clear(wire_client_msg *m)
{
	crdt_batch *ops = m->ops;
	crdt_batch_clear(ops);
	memset(m, 0, sizeof *m);
	m->ops = ops;
}

static int hello_from_pb(const Quire__V1__Hello *h, wire_hello *out)
{
	out->protocol_version = h->protocol_version;
	if (h->protocol_version != WIRE_PROTOCOL_VERSION)
		return WIRE_EVERSION;
	out->doc_id = h->doc_id;
	out->doc_id_len = strlen(h->doc_id);
	out->replica = h->replica;
	out->last_seq = h->last_seq;
	out->token = h->token;
	out->token_len = strlen(h->token);
	if (!wire_doc_id_valid(out->doc_id, out->doc_id_len) || out->replica == CRDT_NO_REPLICA)
		return WIRE_EFIELD;
	return out->token_len > WIRE_MAX_TOKEN ? WIRE_ETOOBIG : WIRE_OK;
}

static int convert(wire_client_msg *m, const Quire__V1__ClientMessage *cm, const wire_limits *lim)
{
	m->doc = cm->doc;
	m->kind = (enum wire_client_kind)cm->msg_case;
	if (cm->doc == 0 && cm->msg_case != QUIRE__V1__CLIENT_MESSAGE__MSG_PING)
		return WIRE_EFIELD;
	switch (cm->msg_case) {
	case QUIRE__V1__CLIENT_MESSAGE__MSG_HELLO:
		return hello_from_pb(cm->hello, &m->hello);
	case QUIRE__V1__CLIENT_MESSAGE__MSG_UPDATE: {
		const Quire__V1__Update *u = cm->update;
		m->client_batch = u->client_batch;
		m->n_ops = u->n_ops;
		if (u->client_batch == 0 || u->n_ops == 0)
			return WIRE_EFIELD;
		return wire__ops_from_pb(u->ops, u->n_ops, lim, m->ops);
	}
	case QUIRE__V1__CLIENT_MESSAGE__MSG_PRESENCE:
		return wire__presence_from_pb(cm->presence, &m->presence);
	case QUIRE__V1__CLIENT_MESSAGE__MSG_PING:
		m->nonce = cm->ping->nonce;
		return WIRE_OK;
	case QUIRE__V1__CLIENT_MESSAGE__MSG_LEAVE:
		return WIRE_OK;
	default:
		m->kind = WIRE_CLIENT_NONE;
		return WIRE_EFIELD; /* no kind, or one this version does not know */
	}
}

int wire_client_decode(wire_client_msg *m, const uint8_t *data, size_t len, const wire_limits *lim)
{
	client_obj *o = (client_obj *)m;
	if (lim == NULL)
		lim = &wire_default_limits;
	clear(m);
	ProtobufCMessage *msg = NULL;
	int rc = wire__unpack(&quire__v1__client_message__descriptor, data, len, lim, &o->arena,
			      &msg);
	if (rc == WIRE_OK)
		rc = convert(m, (const Quire__V1__ClientMessage *)msg, lim);
	if (rc == WIRE_OK)
		return WIRE_OK;
	/* Address the answer: what the raw bytes say about handle, kind and
	 * batch. A Hello of another protocol version is answered as such
	 * even when the rest of it did not parse as version 1. */
	wire__peek pk;
	int bad = wire__peek_envelope(data, len, WIRE_CLIENT_LEAVE, &pk);
	if (pk.kind == WIRE_CLIENT_HELLO && pk.first != WIRE_PROTOCOL_VERSION && bad == 0 &&
	    len <= lim->max_message_bytes)
		rc = WIRE_EVERSION;
	clear(m);
	m->doc = pk.doc;
	m->kind = (enum wire_client_kind)pk.kind;
	if (pk.kind == WIRE_CLIENT_UPDATE)
		m->client_batch = pk.first;
	if (pk.kind == WIRE_CLIENT_HELLO)
		m->hello.protocol_version = (uint32_t)pk.first;
	return rc;
}

/* ---- encoders ------------------------------------------------------------------ */

int wire_client_encode_hello(wire_buf *out, uint32_t doc, const wire_hello *h)
{
	uint32_t version = h->protocol_version ? h->protocol_version : WIRE_PROTOCOL_VERSION;
	if (doc == 0 || h->replica == CRDT_NO_REPLICA ||
	    !wire_doc_id_valid(h->doc_id, h->doc_id_len))
		return WIRE_EFIELD;
	if (h->token_len > WIRE_MAX_TOKEN)
		return WIRE_ETOOBIG;
	if (!wire__text_ok(h->token, h->token_len))
		return WIRE_EUTF8;
	size_t body = wire__u64_field_size(1, version) + wire__str_field_size(2, h->doc_id_len) +
		      wire__u64_field_size(3, h->replica) + wire__u64_field_size(4, h->last_seq) +
		      wire__str_field_size(5, h->token_len);
	uint8_t *p;
	if (wire__begin_msg(out, doc, WIRE_CLIENT_HELLO, body, &p) != WIRE_OK)
		return WIRE_ENOMEM;
	p = wire__put_u64_field(p, 1, version);
	p = wire__put_str_field(p, 2, h->doc_id, h->doc_id_len);
	p = wire__put_u64_field(p, 3, h->replica);
	p = wire__put_u64_field(p, 4, h->last_seq);
	p = wire__put_str_field(p, 5, h->token, h->token_len);
	wire__end_msg(out, p);
	return WIRE_OK;
}

int wire_client_encode_update(wire_buf *out, uint32_t doc, uint64_t client_batch,
			      const crdt_op *ops, size_t n)
{
	if (doc == 0 || client_batch == 0 || n == 0)
		return WIRE_EFIELD;
	for (size_t i = 0; i < n; i++) {
		int rc = wire__op_check(&ops[i]);
		if (rc != WIRE_OK)
			return rc;
	}
	size_t body = wire__u64_field_size(1, client_batch) + wire__ops_size(ops, n, 2);
	uint8_t *p;
	if (wire__begin_msg(out, doc, WIRE_CLIENT_UPDATE, body, &p) != WIRE_OK)
		return WIRE_ENOMEM;
	p = wire__put_u64_field(p, 1, client_batch);
	wire__end_msg(out, wire__ops_write(p, ops, n, 2));
	return WIRE_OK;
}

int wire_client_encode_presence(wire_buf *out, uint32_t doc, const wire_presence *p)
{
	if (doc == 0)
		return WIRE_EFIELD;
	return wire__encode_presence(out, doc, WIRE_CLIENT_PRESENCE, p);
}

int wire_client_encode_ping(wire_buf *out, uint32_t doc, uint64_t nonce)
{
	uint8_t *p;
	if (wire__begin_msg(out, doc, WIRE_CLIENT_PING, wire__u64_field_size(1, nonce), &p) !=
	    WIRE_OK)
		return WIRE_ENOMEM;
	wire__end_msg(out, wire__put_u64_field(p, 1, nonce));
	return WIRE_OK;
}

int wire_client_encode_leave(wire_buf *out, uint32_t doc)
{
	if (doc == 0)
		return WIRE_EFIELD;
	uint8_t *p;
	if (wire__begin_msg(out, doc, WIRE_CLIENT_LEAVE, 0, &p) != WIRE_OK)
		return WIRE_ENOMEM;
	wire__end_msg(out, p);
	return WIRE_OK;
}
