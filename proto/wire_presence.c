/*
 * wire_presence.c - Presence messages (who is here, where their caret is)
 * in both directions: checks, the canonical encoding, and conversion from
 * the decoded protobuf-c struct. Presence is relayed, never stored, so the
 * checks are only about shape and size: a non-zero replica, anchors that
 * are "start of document" (0, 0) or a real unit, bounded name and color.
 */
#include <string.h>

#include "wire_internal.h"

static bool anchor_ok(crdt_id id)
{
	return id.replica == CRDT_NO_REPLICA ? id.counter == 0 : id.counter < CRDT_MAX_COUNTER;
}

int wire__presence_check(const wire_presence *p, bool strings)
{
	if (p->replica == CRDT_NO_REPLICA)
		return WIRE_EFIELD;
	if ((p->has_anchor && !anchor_ok(p->anchor)) || (p->has_head && !anchor_ok(p->head)))
		return WIRE_EFIELD;
	if (p->name_len > WIRE_MAX_NAME || p->color_len > WIRE_MAX_COLOR)
		return WIRE_ETOOBIG;
	if (strings &&
	    (!wire__text_ok(p->name, p->name_len) || !wire__text_ok(p->color, p->color_len)))
		return WIRE_EUTF8;
	return WIRE_OK;
}

static size_t anchor_size(crdt_id id)
{
	return wire__u64_field_size(1, id.replica) + wire__u64_field_size(2, id.counter);
}

size_t wire__presence_size(const wire_presence *p)
{
	size_t n = wire__u64_field_size(1, p->replica) + wire__u64_field_size(2, p->clock) +
		   wire__str_field_size(3, p->name_len) + wire__str_field_size(4, p->color_len);
	if (p->has_anchor)
		n += wire__len_field_size(5, anchor_size(p->anchor));
	if (p->has_head)
		n += wire__len_field_size(6, anchor_size(p->head));
	return n + (p->gone ? 2 : 0);
}

static uint8_t *anchor_write(uint8_t *out, uint32_t field, crdt_id id)
{
	out = wire__put_len_header(out, field, anchor_size(id));
	out = wire__put_u64_field(out, 1, id.replica);
	return wire__put_u64_field(out, 2, id.counter);
}

uint8_t *wire__presence_write(uint8_t *out, const wire_presence *p)
{
	out = wire__put_u64_field(out, 1, p->replica);
	out = wire__put_u64_field(out, 2, p->clock);
	out = wire__put_str_field(out, 3, p->name, p->name_len);
	out = wire__put_str_field(out, 4, p->color, p->color_len);
	if (p->has_anchor)
		out = anchor_write(out, 5, p->anchor);
	if (p->has_head)
		out = anchor_write(out, 6, p->head);
	return wire__put_u64_field(out, 7, p->gone ? 1 : 0);
}

int wire__presence_from_pb(const Quire__V1__Presence *m, wire_presence *p)
{
	memset(p, 0, sizeof *p);
	p->replica = m->replica;
	p->clock = m->clock;
	p->name = m->name;
	p->name_len = strlen(m->name); /* exact: no NUL (pre-scan) */
	p->color = m->color;
	p->color_len = strlen(m->color);
	if (m->anchor) {
		p->has_anchor = true;
		p->anchor = (crdt_id){m->anchor->replica, m->anchor->counter};
	}
	if (m->head) {
		p->has_head = true;
		p->head = (crdt_id){m->head->replica, m->head->counter};
	}
	p->gone = m->gone != 0;
	return wire__presence_check(p, false); /* UTF-8: pre-scan */
}

int wire__encode_presence(wire_buf *out, uint32_t doc, uint32_t field, const wire_presence *p)
{
	int rc = wire__presence_check(p, true);
	if (rc != WIRE_OK)
		return rc;
	uint8_t *q;
	if (wire__begin_msg(out, doc, field, wire__presence_size(p), &q) != WIRE_OK)
		return WIRE_ENOMEM;
	wire__end_msg(out, wire__presence_write(q, p));
	return WIRE_OK;
}
