/*
 * test_server_heap.c - server/heap.c: after srv_heap_prefault, allocating
 * and writing memory up to the prefaulted size takes (almost) no page
 * faults, where the same work without it faults once per page; 0 is off.
 * Page faults are counted with getrusage (minor faults of this process).
 */
#define _DEFAULT_SOURCE

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <cmocka.h>

#include "heap.h"

#define MIB ((size_t)1 << 20)
#define PAGE 4096

/* ASan and valgrind bring their own allocators: mallopt does nothing there */
#if defined(__SANITIZE_ADDRESS__)
#define OWN_ALLOCATOR 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define OWN_ALLOCATOR 1
#endif
#endif

static long minor_faults(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_minflt;
}

/* Faults taken by allocating `n` blocks of `size` bytes and writing every
 * page of them, then freeing them. */
static long faults_of_work(size_t n, size_t size)
{
	char **blocks = calloc(n, sizeof *blocks);
	assert_non_null(blocks);
	long f0 = minor_faults();
	for (size_t i = 0; i < n; i++) {
		blocks[i] = malloc(size);
		assert_non_null(blocks[i]);
		for (size_t at = 0; at < size; at += PAGE)
			blocks[i][at] = (char)i;
	}
	long f = minor_faults() - f0;
	for (size_t i = 0; i < n; i++)
		free(blocks[i]);
	free(blocks);
	return f;
}

static void test_server_heap_off(void **state)
{
	(void)state;
	assert_int_equal(srv_heap_prefault(0), 0);
}

static void test_server_heap_prefault_spares_faults(void **state)
{
	(void)state;
	/* first, work the heap has never seen: ~one fault per page (2 MiB in
	 * 1,000 blocks of ~2 KB, like a document's leaves, plus a 256 KB one
	 * like a decompressed snapshot) */
	long cold = faults_of_work(1000, 2048) + faults_of_work(1, 256 * 1024);
	assert_int_equal(srv_heap_prefault(8 * MIB), 8 * MIB);
	/* the same amount again, beyond what the first work left behind: the
	 * pages were touched by the prefault and kept */
	long warm = faults_of_work(2000, 2048) + faults_of_work(1, 512 * 1024);
	print_message("page faults: %ld cold, %ld after the prefault\n", cold, warm);
#ifdef OWN_ALLOCATOR
	(void)cold;
	(void)warm;
	skip();
#else
	assert_true(cold >= 256);     /* 2.25 MiB fresh: at least 576 pages, minus slack */
	assert_true(warm < cold / 8); /* 4.5 MiB warm: a handful of faults */
#endif
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_server_heap_off),
		cmocka_unit_test(test_server_heap_prefault_spares_faults),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
