/*
 * wire_server.c - ServerMessage: the encoders the server answers with
 * (wire_server_encode_*) and the decoder a C client uses
 * (wire_server_decode).
 *
 * The Changes encoder is the server's hot path during catch-up: it builds
 * the message from stored OpBatch payloads by re-tagging their entries
 * (wire.h, wire_server_encode_changes, explains why that is valid) and
 * never decodes an op. The Welcome encoder likewise embeds a stored
 * Snapshot message as it is.
 */
#include <stddef.h>
#include <string.h>

#include "wire_internal.h"

/* ---- encoders ------------------------------------------------------------------ */

int wire_server_encode_welcome(wire_buf *out, uint32_t doc, uint64_t head_seq, bool read_only,
			       const uint8_t *snapshot, size_t snapshot_len)
{
	size_t body = wire__u64_field_size(1, WIRE_PROTOCOL_VERSION) +
		      wire__u64_field_size(2, head_seq) +
		      (snapshot ? wire__len_field_size(3, snapshot_len) : 0) + (read_only ? 2 : 0);
	uint8_t *p;
	if (wire__begin_msg(out, doc, WIRE_SERVER_WELCOME, body, &p) != WIRE_OK)
		return WIRE_ENOMEM;
	p = wire__put_u64_field(p, 1, WIRE_PROTOCOL_VERSION);
	p = wire__put_u64_field(p, 2, head_seq);
	if (snapshot)
		p = wire__put_len_field(p, 3, snapshot, snapshot_len);
	p = wire__put_u64_field(p, 4, read_only ? 1 : 0);
	wire__end_msg(out, p);
	return WIRE_OK;
}

/* The Change body of a stored change (seq and re-tagged op entries), or
 * WIRE_EPARSE when the payload's outer structure is broken. */
static int change_body(const wire_change *c, size_t *body)
{
	size_t n = wire__u64_field_size(1, c->seq);
	wire__reader r = {c->ops, c->ops + c->ops_len};
	wire__field f;
	int rc;
	if (c->ops == NULL && c->ops_len)
		return WIRE_EPARSE;
	if (c->ops == NULL)
		r.p = r.end = (const uint8_t *)"";
	while ((rc = wire__next_field(&r, &f)) > 0) {
		if (f.number != 1)
			continue; /* not an op: dropped */
		if (f.type != WIRE__LEN)
			return WIRE_EPARSE;
		n += wire__len_field_size(2, f.len);
	}
	if (rc < 0)
		return WIRE_EPARSE;
	*body = n;
	return WIRE_OK;
}

size_t wire_change_size(const wire_change *c)
{
	size_t body;
	if (change_body(c, &body) != WIRE_OK)
		return 0;
	return wire__len_field_size(1, body);
}

int wire_server_encode_changes(wire_buf *out, uint32_t doc, const wire_change *changes, size_t n)
{
	if (n == 0)
		return WIRE_EFIELD;
	size_t total = 0;
	for (size_t i = 0; i < n; i++) {
		size_t body;
		if (changes[i].seq == 0)
			return WIRE_EFIELD;
		int rc = change_body(&changes[i], &body);
		if (rc != WIRE_OK)
			return rc;
		total += wire__len_field_size(1, body);
	}
	uint8_t *p;
	if (wire__begin_msg(out, doc, WIRE_SERVER_CHANGES, total, &p) != WIRE_OK)
		return WIRE_ENOMEM;
	for (size_t i = 0; i < n; i++) {
		const wire_change *c = &changes[i];
		size_t body;
		change_body(c, &body);
		p = wire__put_len_header(p, 1, body);
		p = wire__put_u64_field(p, 1, c->seq);
		wire__reader r = {c->ops, c->ops + c->ops_len};
		wire__field f;
		while (c->ops && wire__next_field(&r, &f) > 0)
			if (f.number == 1) /* OpBatch.ops (0x0A) -> Change.ops (0x12) */
				p = wire__put_len_field(p, 2, f.data, f.len);
	}
	wire__end_msg(out, p);
	return WIRE_OK;
}

int wire_server_encode_ack(wire_buf *out, uint32_t doc, uint64_t client_batch, uint64_t seq)
{
	size_t body = wire__u64_field_size(1, client_batch) + wire__u64_field_size(2, seq);
	uint8_t *p;
	if (wire__begin_msg(out, doc, WIRE_SERVER_ACK, body, &p) != WIRE_OK)
		return WIRE_ENOMEM;
	p = wire__put_u64_field(p, 1, client_batch);
	wire__end_msg(out, wire__put_u64_field(p, 2, seq));
	return WIRE_OK;
}

int wire_server_encode_presence(wire_buf *out, uint32_t doc, const wire_presence *p)
{
	return wire__encode_presence(out, doc, WIRE_SERVER_PRESENCE, p);
}

int wire_server_encode_error(wire_buf *out, uint32_t doc, int code, const char *message,
			     uint64_t client_batch)
{
	size_t mlen = message ? strlen(message) : 0;
	if (!wire__text_ok(message, mlen))
		return WIRE_EUTF8;
	if (mlen > WIRE_MAX_ERROR_MESSAGE) {
		mlen = WIRE_MAX_ERROR_MESSAGE;
		while (mlen > 0 && ((unsigned char)message[mlen] & 0xc0) == 0x80)
			mlen--; /* cut before a continuation byte, never inside a code point */
	}
	/* an enum is an int32: negative numbers are sign-extended to 64 bits */
	uint64_t c = (uint64_t)(int64_t)code;
	size_t body = wire__u64_field_size(1, c) + wire__str_field_size(2, mlen) +
		      wire__u64_field_size(3, client_batch);
	uint8_t *p;
	if (wire__begin_msg(out, doc, WIRE_SERVER_ERROR, body, &p) != WIRE_OK)
		return WIRE_ENOMEM;
	p = wire__put_u64_field(p, 1, c);
	p = wire__put_str_field(p, 2, message, mlen);
	wire__end_msg(out, wire__put_u64_field(p, 3, client_batch));
	return WIRE_OK;
}

int wire_server_encode_pong(wire_buf *out, uint32_t doc, uint64_t nonce)
{
	uint8_t *p;
	if (wire__begin_msg(out, doc, WIRE_SERVER_PONG, wire__u64_field_size(1, nonce), &p) !=
	    WIRE_OK)
		return WIRE_ENOMEM;
	wire__end_msg(out, wire__put_u64_field(p, 1, nonce));
	return WIRE_OK;
}

/* ---- decoder --------------------------------------------------------------------- */

typedef struct server_obj {
	wire_server_msg pub; /* first: a wire_server_msg * is a server_obj * */
	wire__arena arena;
} server_obj;

#define SERVER_OBJ_LAYOUT \
	sizeof(server_obj), offsetof(server_obj, arena), offsetof(server_obj, pub.ops)

wire_server_msg *wire_server_msg_new(const crdt_allocator *al)
{
	return wire__decoder_new(al, SERVER_OBJ_LAYOUT);
}

void wire_server_msg_free(wire_server_msg *m) { wire__decoder_free(m, SERVER_OBJ_LAYOUT); }

static void clear(wire_server_msg *m)
{
	crdt_batch *ops = m->ops;
	crdt_batch_clear(ops);
	memset(m, 0, sizeof *m);
	m->ops = ops;
}

static int welcome_from_pb(wire_server_msg *m, wire__arena *a, const Quire__V1__Welcome *w)
{
	m->welcome.protocol_version = w->protocol_version;
	if (w->protocol_version != WIRE_PROTOCOL_VERSION)
		return WIRE_EVERSION;
	m->welcome.head_seq = w->head_seq;
	m->welcome.read_only = w->read_only != 0;
	if (w->snapshot_opt_case != QUIRE__V1__WELCOME__SNAPSHOT_OPT_SNAPSHOT)
		return WIRE_OK;
	/* hand the Snapshot back encoded, for wire_snapshot_decode */
	const ProtobufCMessage *s = &w->snapshot->base;
	size_t n = protobuf_c_message_get_packed_size(s);
	uint8_t *buf = a->pb.alloc(a, n ? n : 1);
	if (buf == NULL)
		return wire__arena_status(a);
	m->welcome.snapshot = buf;
	m->welcome.snapshot_len = protobuf_c_message_pack(s, buf);
	return WIRE_OK;
}

static int changes_from_pb(wire_server_msg *m, wire__arena *a, const Quire__V1__Changes *c,
			   const wire_limits *lim)
{
	if (c->n_changes == 0 || c->n_changes > SIZE_MAX / sizeof(uint64_t))
		return WIRE_EFIELD;
	uint64_t *seqs = a->pb.alloc(a, c->n_changes * sizeof *seqs);
	if (seqs == NULL)
		return wire__arena_status(a);
	for (size_t i = 0; i < c->n_changes; i++) {
		const Quire__V1__Change *ch = c->changes[i];
		if (ch->seq == 0 || (i > 0 && ch->seq != seqs[i - 1] + 1) || ch->n_ops == 0)
			return WIRE_EFIELD;
		seqs[i] = ch->seq;
		int rc = wire__ops_from_pb(ch->ops, ch->n_ops, lim, m->ops);
		if (rc != WIRE_OK)
			return rc;
	}
	m->seqs = seqs;
	m->n_changes = c->n_changes;
	return WIRE_OK;
}

static int convert(wire_server_msg *m, wire__arena *a, const Quire__V1__ServerMessage *sm,
		   const wire_limits *lim)
{
	m->doc = sm->doc;
	m->kind = (enum wire_server_kind)sm->msg_case;
	switch (sm->msg_case) {
	case QUIRE__V1__SERVER_MESSAGE__MSG_WELCOME:
		return welcome_from_pb(m, a, sm->welcome);
	case QUIRE__V1__SERVER_MESSAGE__MSG_CHANGES:
		return changes_from_pb(m, a, sm->changes, lim);
	case QUIRE__V1__SERVER_MESSAGE__MSG_ACK:
		m->ack.client_batch = sm->ack->client_batch;
		m->ack.seq = sm->ack->seq;
		return m->ack.seq ? WIRE_OK : WIRE_EFIELD;
	case QUIRE__V1__SERVER_MESSAGE__MSG_PRESENCE:
		return wire__presence_from_pb(sm->presence, &m->presence);
	case QUIRE__V1__SERVER_MESSAGE__MSG_ERROR:
		m->error.code = (int)sm->error->code;
		m->error.message = sm->error->message;
		m->error.message_len = strlen(sm->error->message);
		m->error.client_batch = sm->error->client_batch;
		return WIRE_OK;
	case QUIRE__V1__SERVER_MESSAGE__MSG_PONG:
		m->nonce = sm->pong->nonce;
		return WIRE_OK;
	default:
		m->kind = WIRE_SERVER_NONE;
		return WIRE_EFIELD;
	}
}

int wire_server_decode(wire_server_msg *m, const uint8_t *data, size_t len, const wire_limits *lim)
{
	server_obj *o = (server_obj *)m;
	if (lim == NULL)
		lim = &wire_default_limits;
	clear(m);
	ProtobufCMessage *msg = NULL;
	int rc = wire__unpack(&quire__v1__server_message__descriptor, data, len, lim, &o->arena,
			      &msg);
	if (rc == WIRE_OK)
		rc = convert(m, &o->arena, (const Quire__V1__ServerMessage *)msg, lim);
	if (rc == WIRE_OK)
		return WIRE_OK;
	/* as in wire_client_decode: what the raw bytes say, and a Welcome of
	 * another protocol version is WIRE_EVERSION whatever else it holds */
	wire__peek pk;
	int bad = wire__peek_envelope(data, len, WIRE_SERVER_PONG, &pk);
	if (pk.kind == WIRE_SERVER_WELCOME && pk.first != WIRE_PROTOCOL_VERSION && bad == 0 &&
	    len <= lim->max_message_bytes)
		rc = WIRE_EVERSION;
	clear(m);
	m->doc = pk.doc;
	m->kind = (enum wire_server_kind)pk.kind;
	if (pk.kind == WIRE_SERVER_WELCOME)
		m->welcome.protocol_version = (uint32_t)pk.first;
	return rc;
}
