/*
 * wire_internal.h - what the proto/ files share and nobody else sees: the
 * arena behind protobuf-c's allocator, the raw protobuf wire-format reader
 * and writer, the pre-scan that enforces limits before unpacking, and the
 * conversions between Op messages and crdt_op.
 *
 * Invariants of the glue (every decoder keeps them):
 *  1. Nothing is unpacked before the encoded size has been checked against
 *     max_message_bytes and the raw bytes have been pre-scanned (wire_pb.c):
 *     ops and text bytes are counted and no string holds NUL, so
 *     protobuf-c's NUL-terminated strings are exact and a message cannot
 *     make protobuf-c allocate for more ops than the limit allows. Strings
 *     are valid UTF-8 (the pre-scan checks all but op text, which
 *     wire__op_check validates while counting its code points).
 *  2. protobuf-c allocates only from a wire__arena; its free is a no-op, the
 *     arena is reset or released as a whole, so no error path can leak.
 *  3. Decoded values reach the caller only after every check passed: on an
 *     error nothing half-decoded is visible (a caller's crdt_batch is as it
 *     was, but see wire.h on WIRE_ENOMEM; a message object holds only what
 *     addresses the error: handle, kind, client_batch, version).
 *  4. Encoders write canonical proto3: fields in number order, scalars equal
 *     to zero and empty strings omitted, oneof members always written.
 */
#ifndef QUIRE_WIRE_INTERNAL_H
#define QUIRE_WIRE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <protobuf-c/protobuf-c.h>

#include "quire.pb-c.h"
#include "wire.h"

/* ---- arena (wire_arena.c) ------------------------------------------------ */

typedef struct wire__chunk wire__chunk;

/*
 * A bump allocator for protobuf-c. Chunks come from `al` (NULL: malloc) and
 * are kept across resets up to WIRE__ARENA_KEEP bytes, so a decoder that is
 * reused allocates nothing in the steady state. `cap` bounds the bytes
 * handed out between resets (0: no bound): hitting it sets `over` (the input
 * is too big for its size: WIRE_ETOOBIG); an allocator failure sets `nomem`.
 */
typedef struct wire__arena {
	const crdt_allocator *al;
	wire__chunk *chunks; /* in allocation order */
	wire__chunk *cur;
	size_t used;  /* bytes used in cur */
	size_t total; /* bytes handed out since the last reset */
	size_t cap;
	bool over, nomem;
	ProtobufCAllocator pb; /* .allocator_data == this arena */
} wire__arena;

#define WIRE__ARENA_KEEP (256u * 1024)

void wire__arena_init(wire__arena *a, const crdt_allocator *al);
/* Forget every allocation; keeps chunks up to WIRE__ARENA_KEEP bytes. */
void wire__arena_reset(wire__arena *a, size_t cap);
void wire__arena_release(wire__arena *a);
/* A reusable decoder object (wire_client_msg, wire_server_msg): `size`
 * bytes holding a public message struct, its op batch pointer at ops_off
 * and the arena its protobuf-c messages come from at arena_off. New: zeroed,
 * arena ready, batch made (NULL when out of memory). Free: releases all. */
void *wire__decoder_new(const crdt_allocator *al, size_t size, size_t arena_off, size_t ops_off);
void wire__decoder_free(void *obj, size_t size, size_t arena_off, size_t ops_off);
/* The memory bound for unpacking `len` encoded bytes. */
size_t wire__arena_cap_for(size_t len);
/* After a failed unpack: WIRE_ENOMEM, WIRE_ETOOBIG or WIRE_EPARSE. */
int wire__arena_status(const wire__arena *a);

/* Plain allocation through a crdt_allocator (NULL: malloc/free). */
void *wire__alloc(const crdt_allocator *al, size_t size);
void wire__free(const crdt_allocator *al, void *ptr, size_t size);

/* ---- raw wire format (wire_pb.c) ------------------------------------------- */

enum { WIRE__VARINT = 0, WIRE__I64 = 1, WIRE__LEN = 2, WIRE__I32 = 5 };

#define WIRE__TAG(field, type) ((uint32_t)(field) << 3 | (uint32_t)(type))
#define WIRE__MAX_VARINT 10

/* Canonical proto3 field writers. A varint field equal to 0 and a string
 * or bytes field of length 0 are omitted (they are the default); a
 * length-delimited field (a submessage) is always written, even empty.
 * Writers return the position after what they wrote. Inline: they are the
 * encoders' inner loop. */
static inline size_t wire__varint_size(uint64_t v)
{
	size_t n = 1;
	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return n;
}

static inline uint8_t *wire__put_varint(uint8_t *p, uint64_t v)
{
	while (v >= 0x80) {
		*p++ = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	*p++ = (uint8_t)v;
	return p;
}

static inline size_t wire__u64_field_size(uint32_t field, uint64_t v)
{
	return v ? wire__varint_size(WIRE__TAG(field, WIRE__VARINT)) + wire__varint_size(v) : 0;
}

static inline size_t wire__len_field_size(uint32_t field, size_t len)
{
	return wire__varint_size(WIRE__TAG(field, WIRE__LEN)) + wire__varint_size(len) + len;
}

static inline size_t wire__str_field_size(uint32_t field, size_t len)
{
	return len ? wire__len_field_size(field, len) : 0;
}

static inline uint8_t *wire__put_u64_field(uint8_t *p, uint32_t field, uint64_t v)
{
	if (v == 0)
		return p;
	p = wire__put_varint(p, WIRE__TAG(field, WIRE__VARINT));
	return wire__put_varint(p, v);
}

/* Tag and length of a length-delimited field whose body follows. */
static inline uint8_t *wire__put_len_header(uint8_t *p, uint32_t field, size_t len)
{
	p = wire__put_varint(p, WIRE__TAG(field, WIRE__LEN));
	return wire__put_varint(p, len);
}

static inline uint8_t *wire__put_len_field(uint8_t *p, uint32_t field, const void *data, size_t len)
{
	p = wire__put_len_header(p, field, len);
	if (len)
		memcpy(p, data, len);
	return p + len;
}

static inline uint8_t *wire__put_str_field(uint8_t *p, uint32_t field, const void *data, size_t len)
{
	return len ? wire__put_len_field(p, field, data, len) : p;
}

typedef struct wire__reader {
	const uint8_t *p, *end;
} wire__reader;

typedef struct wire__field {
	uint32_t number;
	int type;
	uint64_t value;	     /* VARINT, I64, I32 */
	const uint8_t *data; /* LEN */
	size_t len;
} wire__field;

/* Read the next field; 1 when one was read, 0 at the end, -1 when the
 * input is malformed (truncated, varint over 10 bytes, field number 0,
 * group or unknown wire type, length beyond the input). Inline with a
 * fast path for one-byte varints: the pre-scan calls it for every field. */
int wire__read_varint_slow(wire__reader *r, uint64_t *out);

static inline int wire__read_varint(wire__reader *r, uint64_t *out)
{
	if (r->p < r->end && *r->p < 0x80) {
		*out = *r->p++;
		return 0;
	}
	return wire__read_varint_slow(r, out);
}

static inline int wire__next_field(wire__reader *r, wire__field *f)
{
	if (r->p == r->end)
		return 0;
	uint64_t tag, v;
	if (wire__read_varint(r, &tag) != 0 || tag >> 3 == 0 || tag >> 3 > 0x1fffffff)
		return -1;
	f->number = (uint32_t)(tag >> 3);
	f->type = (int)(tag & 7);
	f->value = 0;
	f->data = NULL;
	f->len = 0;
	switch (f->type) {
	case WIRE__VARINT:
		return wire__read_varint(r, &f->value) == 0 ? 1 : -1;
	case WIRE__LEN:
		if (wire__read_varint(r, &v) != 0 || v > (uint64_t)(r->end - r->p))
			return -1;
		f->data = r->p;
		f->len = (size_t)v;
		r->p += v;
		return 1;
	case WIRE__I64:
	case WIRE__I32: {
		size_t n = f->type == WIRE__I64 ? 8 : 4;
		if ((size_t)(r->end - r->p) < n)
			return -1;
		for (size_t i = 0; i < n; i++)
			f->value |= (uint64_t)r->p[i] << (8 * i);
		r->p += n;
		return 1;
	}
	default: /* groups (3, 4) are not proto3; 6 and 7 do not exist */
		return -1;
	}
}

/* Room for `extra` more bytes in b. WIRE_ENOMEM leaves b as it was. */
int wire__buf_reserve(wire_buf *b, size_t extra);

/* Start an envelope (ClientMessage or ServerMessage) in out: reserve room,
 * write `doc` and the header of oneof member `field` with a body of `body`
 * bytes; *p is where the body goes. wire__end_msg commits it (p must be
 * exactly at the end of the body). Nothing is appended until then. */
int wire__begin_msg(wire_buf *out, uint32_t doc, uint32_t field, size_t body, uint8_t **p);
void wire__end_msg(wire_buf *out, uint8_t *p);

/* What can be read from an envelope's raw bytes without trusting them:
 * the handle, the oneof member (a length-delimited field numbered
 * 2..max_kind; the last one wins) and that member's field 1 if it is a
 * varint (Hello.protocol_version, Update.client_batch,
 * Welcome.protocol_version). Returns 0, or -1 when the bytes are malformed
 * (what was read before stays in *pk). */
typedef struct wire__peek {
	uint32_t doc;
	uint32_t kind;
	uint64_t first;
} wire__peek;

int wire__peek_envelope(const uint8_t *data, size_t len, uint32_t max_kind, wire__peek *pk);

/* What the pre-scan found. */
typedef struct wire__scan {
	size_t ops;	   /* Op messages anywhere in the input */
	size_t text_bytes; /* bytes of Insert.text fields */
	size_t unknown;	   /* fields not in the schema, at any depth */
} wire__scan;

/* Unknown fields are ignored (PROTOCOL.md: newer peers may add fields), but
 * protobuf-c keeps a copy of each, so a message may hold at most
 * max_ops + WIRE__MAX_UNKNOWN of them (one new field per op and then some);
 * more is WIRE_ETOOBIG. */
#define WIRE__MAX_UNKNOWN 1024u

/*
 * Walk the encoded message `desc` recursively (known message fields only)
 * before protobuf-c sees it: count Op messages and Insert text bytes, check
 * that no string field holds NUL and that every string but Insert.text
 * (which wire__op_check validates while counting its code points) is valid
 * UTF-8 (WIRE_EUTF8), and stop with WIRE_ETOOBIG as soon as a count passes
 * `lim` (the ops or text of one batch, the unknown fields of the whole
 * message). WIRE_EPARSE when the raw structure is broken. Type errors of
 * known fields are left to protobuf-c.
 */
int wire__prescan(const ProtobufCMessageDescriptor *desc, const uint8_t *data, size_t len,
		  const wire_limits *lim, wire__scan *out);

/*
 * Check the size, pre-scan, then unpack `data` as `desc` into arena `a`
 * (reset first). On success *msg points into the arena. Returns WIRE_OK,
 * WIRE_ETOOBIG, WIRE_EPARSE, WIRE_EUTF8 or WIRE_ENOMEM.
 */
int wire__unpack(const ProtobufCMessageDescriptor *desc, const uint8_t *data, size_t len,
		 const wire_limits *lim, wire__arena *a, ProtobufCMessage **msg);

/* ---- ops (wire_ops.c) ---------------------------------------------------------- */

/* Shape check of a crdt_op, the rules of wire.h's wire_ops_decode
 * (WIRE_EFIELD, WIRE_EUTF8, WIRE_ETOOBIG). */
int wire__op_check(const crdt_op *op);
/* Encoded size of the Op message body (without tag and length). */
size_t wire__op_size(const crdt_op *op);
/* Size and write the ops as repeated Op field `field` (tag, length, body
 * each); `p` must have room for wire__ops_size(ops, n, field) bytes. */
size_t wire__ops_size(const crdt_op *ops, size_t n, uint32_t field);
uint8_t *wire__ops_write(uint8_t *p, const crdt_op *ops, size_t n, uint32_t field);

/* Convert and check one decoded Op. *op's text points into m. Returns
 * WIRE_OK, WIRE_EFIELD, WIRE_EUTF8 or WIRE_ETOOBIG. */
int wire__op_from_pb(const Quire__V1__Op *m, crdt_op *op);

/* Check ops[0..n) (limits, shapes) and append them to out; on error out is
 * as it was (see wire_ops_decode for WIRE_ENOMEM). */
int wire__ops_from_pb(Quire__V1__Op *const *ops, size_t n, const wire_limits *lim, crdt_batch *out);

/* ---- presence (wire_presence.c) ------------------------------------------------ */

/* Check a presence (WIRE_EFIELD, WIRE_ETOOBIG; with `strings`, also the
 * UTF-8 of name and color: WIRE_EUTF8). */
int wire__presence_check(const wire_presence *p, bool strings);
size_t wire__presence_size(const wire_presence *p);
uint8_t *wire__presence_write(uint8_t *out, const wire_presence *p);
/* Convert and check a decoded Presence (strings point into m). */
int wire__presence_from_pb(const Quire__V1__Presence *m, wire_presence *p);
/* Encode a presence as oneof member `field` of an envelope. */
int wire__encode_presence(wire_buf *out, uint32_t doc, uint32_t field, const wire_presence *p);

/* ---- strings (wire.c) ------------------------------------------------------------ */

/* Is s (n bytes) UTF-8 without U+0000? (n 0: yes, s may be NULL) */
bool wire__text_ok(const char *s, size_t n);

/* Is s (n bytes) a valid document id (1..WIRE_MAX_DOC_ID bytes of
 * [A-Za-z0-9._~/-])? */

#endif /* QUIRE_WIRE_INTERNAL_H */
