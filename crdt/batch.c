/*
 * batch.c - crdt_batch, a growable list of ops that owns their text.
 *
 * Text lives in an arena of chunks that are never moved, so the `text`
 * pointers of ops already in the batch stay valid while it grows. Pushing an
 * op that continues the previous one (a person typing, a run of forward
 * deletes) extends it instead, which keeps batches of keystrokes small.
 */
#include <string.h>

#include "internal.h"

#define ARENA_MIN 4096

typedef struct chunk {
	struct chunk *next;
	uint32_t used, cap;
	char data[];
} chunk;

struct crdt_batch {
	mem mem;
	crdt_op *ops;
	uint32_t n, cap;
	chunk *chunks; /* newest first */
};

crdt_batch *crdt_batch_new(const crdt_allocator *allocator)
{
	mem m = {allocator, 0};
	crdt_batch *b = mem_calloc(&m, sizeof *b);
	if (!b)
		return NULL;
	b->mem = m;
	return b;
}

static void free_chunks(crdt_batch *b, chunk *keep)
{
	chunk *c = b->chunks;
	while (c) {
		chunk *next = c->next;
		if (c != keep)
			mem_free(&b->mem, c, sizeof *c + c->cap);
		c = next;
	}
	b->chunks = keep;
	if (keep) {
		keep->next = NULL;
		keep->used = 0;
	}
}

void crdt_batch_free(crdt_batch *b)
{
	if (!b)
		return;
	free_chunks(b, NULL);
	mem_free(&b->mem, b->ops, (size_t)b->cap * sizeof *b->ops);
	mem m = b->mem;
	mem_free(&m, b, sizeof *b);
}

void crdt_batch_clear(crdt_batch *b)
{
	b->n = 0;
	/* keep the newest chunk for reuse */
	free_chunks(b, b->chunks);
}

size_t crdt_batch_count(const crdt_batch *b) { return b->n; }

void crdt_batch_truncate(crdt_batch *b, size_t n)
{
	/* text of dropped ops stays in the arena until the next clear */
	if (n < b->n)
		b->n = (uint32_t)n;
}

const crdt_op *crdt_batch_get(const crdt_batch *b, size_t i)
{
	return i < b->n ? &b->ops[i] : NULL;
}

static bool id_eq(crdt_id a, crdt_id b) { return a.replica == b.replica && a.counter == b.counter; }

/* Room for `bytes` at the end of the newest chunk, or NULL. */
static char *arena_take(crdt_batch *b, uint32_t bytes)
{
	chunk *c = b->chunks;
	if (!c || c->cap - c->used < bytes) {
		uint32_t cap = bytes > ARENA_MIN ? bytes : ARENA_MIN;
		if (c && c->cap * 2u > cap && c->cap < (1u << 24))
			cap = c->cap * 2u > bytes ? c->cap * 2u : cap;
		chunk *n = mem_alloc(&b->mem, sizeof *n + cap);
		if (!n)
			return NULL;
		n->next = c;
		n->used = 0;
		n->cap = cap;
		b->chunks = n;
		c = n;
	}
	char *p = c->data + c->used;
	c->used += bytes;
	return p;
}

/* Can `op` extend `prev` in place? */
static bool continues(const crdt_batch *b, const crdt_op *prev, const crdt_op *op)
{
	if (prev->kind != op->kind || prev->id.replica != op->id.replica)
		return false;
	if (prev->id.counter + prev->len != op->id.counter ||
	    prev->lamport + prev->len != op->lamport)
		return false;
	if ((uint64_t)prev->len + op->len > CRDT_MAX_OP_LEN)
		return false;
	if (op->kind == CRDT_OP_DELETE)
		return prev->target.replica == op->target.replica &&
		       prev->target.counter + prev->len == op->target.counter;
	crdt_id last = {prev->id.replica, prev->id.counter + prev->len - 1};
	if (!id_eq(op->left, last) || !id_eq(op->right, prev->right))
		return false;
	if (!prev->text || !op->text)
		return !prev->text && !op->text;
	/* the previous text must end exactly where the arena continues */
	const chunk *c = b->chunks;
	return c && prev->text + prev->text_bytes == c->data + c->used &&
	       c->cap - c->used >= op->text_bytes;
}

int crdt_batch_push(crdt_batch *b, const crdt_op *op)
{
	if (b->n > 0 && continues(b, &b->ops[b->n - 1], op)) {
		crdt_op *prev = &b->ops[b->n - 1];
		if (op->text) {
			char *dst = arena_take(b, op->text_bytes);
			memcpy(dst, op->text, op->text_bytes);
			prev->text_bytes += op->text_bytes;
		}
		prev->len += op->len;
		return CRDT_OK;
	}
	if (mem_grow(&b->mem, (void **)&b->ops, &b->cap, b->n + 1, sizeof *b->ops))
		return CRDT_ENOMEM;
	crdt_op copy = *op;
	if (op->text) {
		char *dst = op->text_bytes ? arena_take(b, op->text_bytes) : NULL;
		if (op->text_bytes && !dst)
			return CRDT_ENOMEM;
		if (dst)
			memcpy(dst, op->text, op->text_bytes);
		copy.text = dst ? dst : "";
	}
	b->ops[b->n++] = copy;
	return CRDT_OK;
}

/* Internal: make sure `ops` more ops with `bytes` of text can be pushed
 * without failing (used by local edits, which must not fail half-way). */
int batch_reserve(crdt_batch *b, uint32_t ops, uint32_t bytes)
{
	if (mem_grow(&b->mem, (void **)&b->ops, &b->cap, b->n + ops, sizeof *b->ops))
		return CRDT_ENOMEM;
	chunk *c = b->chunks;
	if (bytes && (!c || c->cap - c->used < bytes)) {
		if (!arena_take(b, bytes))
			return CRDT_ENOMEM;
		b->chunks->used -= bytes; /* reserved, not used */
	}
	return CRDT_OK;
}
