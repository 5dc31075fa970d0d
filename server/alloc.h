/*
 * alloc.h - the failing allocator of quire-server-allocfail, a test-only
 * build of quire-server (CMake option QUIRE_FAULT_INJECTION). That binary is
 * linked with -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc, so every
 * malloc/calloc/realloc call compiled into it (server/, and the static
 * storage/, proto/ and crdt/ libraries) goes through alloc.c, while the
 * shared libraries (libwebsockets, SQLite, protobuf-c, libc itself) keep
 * their own untouched allocations. The production quire-server does not
 * link it.
 *
 * Environment (read at the first allocation):
 *   QUIRE_FAIL_ALLOC_AFTER=N   the first N allocations succeed; the next
 *                              ones fail (return NULL), see _COUNT. Unset or
 *                              empty: nothing fails (allocations are still
 *                              counted, see below).
 *   QUIRE_FAIL_ALLOC_COUNT=K   how many allocations fail from N + 1 on:
 *                              K >= 1 (default 1: one failure, then memory
 *                              comes back, which tests the recovery paths),
 *                              0: every one after N (memory never comes
 *                              back, which tests the give-up paths).
 *
 * At the first injected failure one line goes to stderr (write(2), no
 * allocation): "quire-alloc: allocation N failed (injected)"; at exit,
 * "quire-alloc: M allocations" when QUIRE_FAIL_ALLOC_REPORT is set, so a
 * test knows how far a sweep over N has to go.
 *
 * Threads: one (the server's); the counters are plain globals of this
 * test-only file.
 */
#ifndef QUIRE_SRV_ALLOC_H
#define QUIRE_SRV_ALLOC_H

#include <stddef.h>

/* Allocations counted so far (successful or failed) and failures injected. */
unsigned long long srv_alloc_count(void);
unsigned long long srv_alloc_failed(void);

#endif /* QUIRE_SRV_ALLOC_H */
