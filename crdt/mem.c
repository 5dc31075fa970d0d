/*
 * mem.c - every allocation of a document goes through here, so that the
 * bytes a document holds can be counted (crdt_doc_memory) and a test can
 * make allocations fail on purpose (crdt_allocator).
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

void *mem_alloc(mem *m, size_t size)
{
	void *p = m->a ? m->a->alloc(m->a->ctx, size) : malloc(size);
	if (p)
		m->held += size;
	return p;
}

void *mem_calloc(mem *m, size_t size)
{
	void *p = mem_alloc(m, size);
	if (p)
		memset(p, 0, size);
	return p;
}

void mem_free(mem *m, void *p, size_t size)
{
	if (!p)
		return;
	m->held -= size;
	if (m->a)
		m->a->release(m->a->ctx, p, size);
	else
		free(p);
}

int mem_grow(mem *m, void **arr, uint32_t *cap, uint32_t need, size_t elem)
{
	if (need <= *cap)
		return 0;
	/* double small arrays, grow big ones by half: less slack to carry */
	uint64_t ncap = *cap ? (uint64_t)*cap * 2 : 4;
	if ((uint64_t)*cap * elem > 65536)
		ncap = (uint64_t)*cap + *cap / 2;
	while (ncap < need)
		ncap += ncap / 2 + 1;
	if (ncap > UINT32_MAX || ncap * elem > SIZE_MAX / 2)
		return -1;
	void *n = mem_alloc(m, (size_t)ncap * elem);
	if (!n)
		return -1;
	if (*cap)
		memcpy(n, *arr, (size_t)*cap * elem);
	mem_free(m, *arr, (size_t)*cap * elem);
	*arr = n;
	*cap = (uint32_t)ncap;
	return 0;
}
