/*
 * heap.c - pre-touching the heap at start (see heap.h).
 */
#include "heap.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifdef __GLIBC__
#include <malloc.h>
#endif

#define PAGE 4096
#define MIB ((size_t)1 << 20)

size_t srv_heap_prefault(size_t bytes)
{
#ifdef __GLIBC__
	if (bytes == 0)
		return 0;
	/* Fixed thresholds (glibc's are dynamic): a block below the mmap
	 * threshold comes from the heap, where the touched pages are; free
	 * memory at the top of the heap is given back only beyond the trim
	 * threshold, so the touched pages stay. */
	size_t mmap_at = bytes * 2 > 8 * MIB ? bytes * 2 : 8 * MIB;
	if (mmap_at > (size_t)INT32_MAX / 2)
		mmap_at = (size_t)INT32_MAX / 2;
	mallopt(M_MMAP_THRESHOLD, (int)mmap_at);
	mallopt(M_TRIM_THRESHOLD, (int)(mmap_at * 2));
	char *p = malloc(bytes);
	if (p == NULL)
		return 0;
	for (size_t i = 0; i < bytes; i += PAGE)
		p[i] = 1;
	/* the writes must happen although the block is freed unread */
	__asm__ volatile("" : : "r"(p) : "memory");
	free(p);
	return bytes;
#else
	(void)bytes;
	return 0;
#endif
}
