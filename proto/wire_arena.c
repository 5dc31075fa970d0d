/*
 * wire_arena.c - the bump allocator protobuf-c unpacks into.
 *
 * protobuf-c allocates every message, repeated-field array and string of an
 * unpacked message separately, and on a parse error frees what it built so
 * far. Routing all of it through an arena makes decoding cheap (no malloc
 * per op once the arena's chunks exist) and leak-proof: protobuf-c's free
 * does nothing, and the whole unpacked tree goes away with one reset. The
 * arena also bounds how much an input may make protobuf-c allocate
 * (wire__arena_cap_for), so a small message cannot claim much memory.
 */
#include <stdalign.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "wire_internal.h"

struct wire__chunk {
	wire__chunk *next;
	size_t cap; /* bytes in data */
	alignas(max_align_t) unsigned char data[];
};

#define CHUNK_MIN 4096u
#define CHUNK_MAX (1u << 20)
#define ALIGN (alignof(max_align_t))

void *wire__alloc(const crdt_allocator *al, size_t size)
{
	return al ? al->alloc(al->ctx, size) : malloc(size);
}

void wire__free(const crdt_allocator *al, void *ptr, size_t size)
{
	if (ptr == NULL)
		return;
	if (al)
		al->release(al->ctx, ptr, size);
	else
		free(ptr);
}

static void *pb_alloc(void *ctx, size_t size)
{
	wire__arena *a = ctx;
	size_t need = (size + ALIGN - 1) & ~(size_t)(ALIGN - 1);
	if (need < size || (a->cap && (need > a->cap || a->total > a->cap - need))) {
		a->over = true;
		return NULL;
	}
	while (a->cur == NULL || a->cur->cap - a->used < need) {
		wire__chunk *next = a->cur ? a->cur->next : a->chunks;
		if (next == NULL)
			break;
		a->cur = next; /* a kept chunk; too small ones are skipped */
		a->used = 0;
	}
	if (a->cur == NULL || a->cur->cap - a->used < need) {
		size_t cap = a->cur && a->cur->cap < CHUNK_MAX ? a->cur->cap * 2 : CHUNK_MIN;
		if (cap < need)
			cap = need;
		if (cap > SIZE_MAX - sizeof(wire__chunk)) {
			a->nomem = true;
			return NULL;
		}
		wire__chunk *c = wire__alloc(a->al, sizeof *c + cap);
		if (c == NULL) {
			a->nomem = true;
			return NULL;
		}
		c->cap = cap;
		/* insert after cur so kept chunks stay in order */
		if (a->cur) {
			c->next = a->cur->next;
			a->cur->next = c;
		} else {
			c->next = a->chunks;
			a->chunks = c;
		}
		a->cur = c;
		a->used = 0;
	}
	void *p = a->cur->data + a->used;
	a->used += need;
	a->total += need;
	return p;
}

static void pb_free(void *ctx, void *ptr)
{
	(void)ctx;
	(void)ptr; /* everything goes with the next reset */
}

void wire__arena_init(wire__arena *a, const crdt_allocator *al)
{
	memset(a, 0, sizeof *a);
	a->al = al;
	a->pb.alloc = pb_alloc;
	a->pb.free = pb_free;
	a->pb.allocator_data = a;
}

void wire__arena_reset(wire__arena *a, size_t cap)
{
	/* keep the first chunks up to WIRE__ARENA_KEEP bytes, free the rest */
	size_t kept = 0;
	wire__chunk **link = &a->chunks;
	while (*link) {
		wire__chunk *c = *link;
		if (kept + c->cap <= WIRE__ARENA_KEEP) {
			kept += c->cap;
			link = &c->next;
		} else {
			*link = c->next;
			wire__free(a->al, c, sizeof *c + c->cap);
		}
	}
	a->cur = NULL;
	a->used = 0;
	a->total = 0;
	a->cap = cap;
	a->over = a->nomem = false;
}

void wire__arena_release(wire__arena *a)
{
	wire__chunk *c = a->chunks;
	while (c) {
		wire__chunk *next = c->next;
		wire__free(a->al, c, sizeof *c + c->cap);
		c = next;
	}
	a->chunks = a->cur = NULL;
	a->used = a->total = 0;
}

size_t wire__arena_cap_for(size_t len)
{
	/* An Op of a few bytes unpacks into ~200 bytes of structs and scan
	 * slabs; 64x plus a floor covers every valid message, while a message
	 * made of tiny unknown fields cannot claim much more. */
	if (len > (SIZE_MAX - (1u << 20)) / 64)
		return SIZE_MAX;
	return 64 * len + (1u << 20);
}

int wire__arena_status(const wire__arena *a)
{
	if (a->nomem)
		return WIRE_ENOMEM;
	if (a->over)
		return WIRE_ETOOBIG;
	return WIRE_EPARSE;
}

void *wire__decoder_new(const crdt_allocator *al, size_t size, size_t arena_off, size_t ops_off)
{
	unsigned char *o = wire__alloc(al, size);
	if (o == NULL)
		return NULL;
	memset(o, 0, size);
	wire__arena_init((wire__arena *)(o + arena_off), al);
	crdt_batch *ops = crdt_batch_new(al);
	if (ops == NULL) {
		wire__free(al, o, size);
		return NULL;
	}
	memcpy(o + ops_off, &ops, sizeof ops);
	return o;
}

void wire__decoder_free(void *obj, size_t size, size_t arena_off, size_t ops_off)
{
	if (obj == NULL)
		return;
	unsigned char *o = obj;
	wire__arena *arena = (wire__arena *)(o + arena_off);
	const crdt_allocator *al = arena->al;
	crdt_batch *ops;
	memcpy(&ops, o + ops_off, sizeof ops);
	crdt_batch_free(ops);
	wire__arena_release(arena);
	wire__free(al, o, size);
}
