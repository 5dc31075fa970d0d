/*
 * wire_pb.c - the protobuf wire format by hand: varints, canonical field
 * writers, a bounds-checked field reader, and the pre-scan that every
 * decoder runs before protobuf-c unpacks anything.
 *
 * Why a pre-scan: protobuf-c allocates for every element of a repeated
 * field and keeps strings NUL-terminated without their length. Walking the
 * raw bytes first (guided by the generated descriptors, so it follows the
 * schema without restating it) lets the decoders refuse too many ops or too
 * much text before a byte is allocated, and guarantees that every string
 * protobuf-c hands back has its true length as strlen (no NUL inside) and,
 * op text aside (validated per op), is valid UTF-8.
 */
#include <stdlib.h>
#include <string.h>

#include "wire_internal.h"

#define MAX_DEPTH 16

/* ---- writing ---------------------------------------------------------------- */

int wire__buf_reserve(wire_buf *b, size_t extra)
{
	if (extra > SIZE_MAX - b->len)
		return WIRE_ENOMEM;
	size_t need = b->len + extra;
	if (need <= b->cap)
		return WIRE_OK;
	size_t cap = b->cap ? b->cap : 256;
	while (cap < need)
		cap = cap > SIZE_MAX / 2 ? need : cap * 2;
	uint8_t *d = realloc(b->data, cap);
	if (d == NULL)
		return WIRE_ENOMEM;
	b->data = d;
	b->cap = cap;
	return WIRE_OK;
}

/* ---- reading ----------------------------------------------------------------- */

int wire__read_varint_slow(wire__reader *r, uint64_t *out)
{
	uint64_t v = 0;
	for (unsigned i = 0; i < WIRE__MAX_VARINT; i++) {
		if (r->p == r->end)
			return -1;
		uint8_t b = *r->p++;
		/* the 10th byte may only carry bit 63 */
		if (i == WIRE__MAX_VARINT - 1 && b > 1)
			return -1;
		v |= (uint64_t)(b & 0x7f) << (7 * i);
		if (b < 0x80) {
			*out = v;
			return 0;
		}
	}
	return -1;
}

/* ---- the pre-scan --------------------------------------------------------------- */

/* The descriptor of field `number`: O(1) when the fields are numbered 1..n
 * in order (every message of quire.proto is), else protobuf-c's search. */
static const ProtobufCFieldDescriptor *field_of(const ProtobufCMessageDescriptor *desc,
						uint32_t number)
{
	if (number - 1 < desc->n_fields && desc->fields[number - 1].id == number)
		return &desc->fields[number - 1];
	return protobuf_c_message_descriptor_get_field(desc, number);
}

static int scan_msg(const ProtobufCMessageDescriptor *desc, const uint8_t *data, size_t len,
		    const wire_limits *lim, wire__scan *s, size_t *batch_text, int depth)
{
	if (depth > MAX_DEPTH)
		return WIRE_EPARSE;
	wire__reader r = {data, data + len};
	wire__field f;
	size_t ops_here = 0, text_here = 0;
	int rc;
	while ((rc = wire__next_field(&r, &f)) > 0) {
		const ProtobufCFieldDescriptor *fd = field_of(desc, f.number);
		if (fd == NULL) {
			/* unknown: ignored, but protobuf-c keeps a copy of each */
			if (++s->unknown > (size_t)lim->max_ops + WIRE__MAX_UNKNOWN)
				return WIRE_ETOOBIG;
			continue;
		}
		if (f.type != WIRE__LEN)
			continue;
		if (fd->type == PROTOBUF_C_TYPE_STRING) {
			if (memchr(f.data, 0, f.len) != NULL)
				return WIRE_EUTF8;
			if (desc == &quire__v1__insert__descriptor) {
				/* op text: validated (and counted) per op after
				 * unpacking, wire__op_check */
				if (batch_text != NULL) {
					*batch_text += f.len;
					if (*batch_text > lim->max_text_bytes)
						return WIRE_ETOOBIG;
				}
			} else if (crdt_utf8_count((const char *)f.data, f.len) < 0) {
				return WIRE_EUTF8;
			}
		} else if (fd->type == PROTOBUF_C_TYPE_MESSAGE) {
			const ProtobufCMessageDescriptor *sub = fd->descriptor;
			size_t *text = batch_text;
			if (sub == &quire__v1__op__descriptor) {
				s->ops++;
				if (++ops_here > lim->max_ops)
					return WIRE_ETOOBIG;
				text = &text_here; /* this message is a batch of ops */
			}
			int r2 = scan_msg(sub, f.data, f.len, lim, s, text, depth + 1);
			if (r2 != WIRE_OK)
				return r2;
		}
	}
	if (rc < 0)
		return WIRE_EPARSE;
	s->text_bytes += text_here;
	return WIRE_OK;
}

int wire__prescan(const ProtobufCMessageDescriptor *desc, const uint8_t *data, size_t len,
		  const wire_limits *lim, wire__scan *out)
{
	memset(out, 0, sizeof *out);
	return scan_msg(desc, data, len, lim, out, NULL, 0);
}

int wire__unpack(const ProtobufCMessageDescriptor *desc, const uint8_t *data, size_t len,
		 const wire_limits *lim, wire__arena *a, ProtobufCMessage **msg)
{
	static const uint8_t empty[1];
	*msg = NULL;
	if (lim == NULL)
		lim = &wire_default_limits;
	if (len > lim->max_message_bytes)
		return WIRE_ETOOBIG;
	if (data == NULL) {
		if (len != 0)
			return WIRE_EPARSE;
		data = empty;
	}
	wire__scan scan;
	int rc = wire__prescan(desc, data, len, lim, &scan);
	if (rc != WIRE_OK)
		return rc;
	wire__arena_reset(a, wire__arena_cap_for(len));
	*msg = protobuf_c_message_unpack(desc, &a->pb, len, data);
	return *msg ? WIRE_OK : wire__arena_status(a);
}

/* ---- envelopes ------------------------------------------------------------------- */

int wire__begin_msg(wire_buf *out, uint32_t doc, uint32_t field, size_t body, uint8_t **p)
{
	size_t size = wire__u64_field_size(1, doc) + wire__len_field_size(field, body);
	if (body > SIZE_MAX / 2 || wire__buf_reserve(out, size) != WIRE_OK)
		return WIRE_ENOMEM;
	uint8_t *q = out->data + out->len;
	q = wire__put_u64_field(q, 1, doc);
	*p = wire__put_len_header(q, field, body);
	return WIRE_OK;
}

void wire__end_msg(wire_buf *out, uint8_t *p) { out->len = (size_t)(p - out->data); }

int wire__peek_envelope(const uint8_t *data, size_t len, uint32_t max_kind, wire__peek *pk)
{
	static const uint8_t empty[1];
	memset(pk, 0, sizeof *pk);
	if (data == NULL) {
		if (len != 0)
			return -1;
		data = empty;
	}
	wire__reader r = {data, data + len};
	wire__field f;
	int rc;
	while ((rc = wire__next_field(&r, &f)) > 0) {
		if (f.number == 1 && f.type == WIRE__VARINT) {
			pk->doc = (uint32_t)f.value;
			continue;
		}
		if (f.number < 2 || f.number > max_kind || f.type != WIRE__LEN)
			continue;
		if (f.number != pk->kind) {
			pk->kind = f.number; /* another oneof member replaces it */
			pk->first = 0;
		}
		wire__reader in = {f.data, f.data + f.len};
		wire__field g;
		int rc2;
		while ((rc2 = wire__next_field(&in, &g)) > 0)
			if (g.number == 1 && g.type == WIRE__VARINT)
				pk->first = g.value;
		if (rc2 < 0)
			return -1;
	}
	return rc < 0 ? -1 : 0;
}
