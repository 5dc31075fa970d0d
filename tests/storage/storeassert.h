/*
 * storeassert.h - the CMocka assertion the storage tests share: a store
 * call's status against the one wanted, both named (store_strerror) when
 * they differ; and opening a store or failing the test. Include it after
 * <cmocka.h>; storetest.h stays free of CMocka (the crash test's child
 * process uses it).
 */
#ifndef QUIRE_STOREASSERT_H
#define QUIRE_STOREASSERT_H

#include "store.h"

#define assert_store(expr, want)                                                                  \
	do {                                                                                      \
		int s_ = (int)(expr), w_ = (int)(want);                                           \
		if (s_ != w_)                                                                     \
			fail_msg("%s = %d (%s), expected %d (%s)", #expr, s_, store_strerror(s_), \
				 w_, store_strerror(w_));                                         \
	} while (0)

/* The default options with read_only set (quire-dump's handle). */
static inline store_options st_read_only_options(void)
{
	store_options o;
	store_options_init(&o);
	o.read_only = true;
	return o;
}

/* store_open, failing the test with the status and message if it fails. */
static inline store *st_open_or_fail(const char *path, const store_options *o)
{
	store *db = NULL;
	char err[256];
	int status = store_open(path, o, &db, err, sizeof err);
	if (status != STORE_OK)
		fail_msg("open %s: %s (%s)", path, store_strerror(status), err);
	return db;
}

#endif
