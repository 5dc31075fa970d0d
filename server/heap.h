/*
 * heap.h - pre-touch the process heap at start (--prefault-bytes).
 *
 * On a virtual machine the first write to a fresh page is a fault that can
 * cost 10+ microseconds (about 13 us on the machines of BENCHMARKS.md, where
 * a second write costs 0.02 us). Loading a large document touches hundreds
 * of fresh pages, so a freshly started server pays most of its first loads
 * in faults. srv_heap_prefault writes `bytes` of heap once at start and
 * keeps the allocator from handing freed memory back to the kernel below a
 * bound, so that the first loads, connections and catch-ups reuse pages
 * that are already mapped: the idea of the JVM's AlwaysPreTouch.
 *
 * Cost: `bytes` of resident memory from the start (it is reused, not
 * added to), and with glibc: blocks up to 2 x bytes (at least 8 MiB) come
 * from the heap instead of their own mmap, and up to 4 x bytes of free heap
 * stay mapped. Without glibc, or with bytes 0, it does nothing.
 */
#ifndef QUIRE_SERVER_HEAP_H
#define QUIRE_SERVER_HEAP_H

#include <stddef.h>

/* Returns the bytes actually touched (0 when off or out of memory). */
size_t srv_heap_prefault(size_t bytes);

#endif
