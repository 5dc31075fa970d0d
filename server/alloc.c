/*
 * alloc.c - the --wrap'ed malloc/calloc/realloc of alloc.h: count every
 * allocation, fail the ones the environment asks for, forward the rest to
 * the real allocator (__real_*, libc's or the sanitizer's).
 */
#define _POSIX_C_SOURCE 200809L

#include "alloc.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t n);

static struct {
	bool configured;
	bool armed;		       /* QUIRE_FAIL_ALLOC_AFTER was given */
	unsigned long long after;      /* N */
	unsigned long long fail_count; /* K; 0: unlimited */
	unsigned long long count;      /* allocations so far */
	unsigned long long failed;     /* failures injected */
} fa;

static void say(const char *what, unsigned long long n)
{
	/* no stdio: it may allocate, and this runs inside malloc */
	char buf[96], digits[24];
	size_t d = 0;
	do
		digits[d++] = (char)('0' + n % 10);
	while ((n /= 10) > 0 && d < sizeof digits);
	size_t len = 0;
	const char *pre = "quire-alloc: ";
	for (const char *p = pre; *p; p++)
		buf[len++] = *p;
	const char *w = what;
	while (*w && *w != '#' && len < 40)
		buf[len++] = *w++;
	while (d > 0)
		buf[len++] = digits[--d];
	if (*w == '#')
		w++;
	while (*w && len < sizeof buf - 1)
		buf[len++] = *w++;
	buf[len++] = '\n';
	ssize_t r = write(2, buf, len);
	(void)r;
}

static void report(void) { say("# allocations", fa.count); }

static void configure(void)
{
	fa.configured = true;
	const char *a = getenv("QUIRE_FAIL_ALLOC_AFTER");
	if (a != NULL && *a != '\0') {
		fa.armed = true;
		fa.after = strtoull(a, NULL, 10);
		fa.fail_count = 1;
		const char *k = getenv("QUIRE_FAIL_ALLOC_COUNT");
		if (k != NULL && *k != '\0')
			fa.fail_count = strtoull(k, NULL, 10);
	}
	const char *r = getenv("QUIRE_FAIL_ALLOC_REPORT");
	if (r != NULL && *r != '\0')
		atexit(report);
}

/* Count one allocation; true when it must fail. */
static bool fail_now(void)
{
	if (!fa.configured)
		configure();
	unsigned long long i = ++fa.count;
	if (!fa.armed || i <= fa.after)
		return false;
	if (fa.fail_count != 0 && i > fa.after + fa.fail_count)
		return false;
	if (fa.failed++ == 0)
		say("allocation # failed (injected)", i);
	return true;
}

void *__wrap_malloc(size_t n) { return fail_now() ? NULL : __real_malloc(n); }

void *__wrap_calloc(size_t n, size_t size) { return fail_now() ? NULL : __real_calloc(n, size); }

void *__wrap_realloc(void *p, size_t n)
{
	/* realloc(p, 0) frees: never failed */
	if (n == 0)
		return __real_realloc(p, n);
	return fail_now() ? NULL : __real_realloc(p, n);
}

unsigned long long srv_alloc_count(void) { return fa.count; }

unsigned long long srv_alloc_failed(void) { return fa.failed; }
