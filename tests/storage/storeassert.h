/*
 * storeassert.h - the CMocka assertion the storage tests share: a store
 * call's status against the one wanted, both named (store_strerror) when
 * they differ. Include it after <cmocka.h>; storetest.h stays free of
 * CMocka (the crash test's child process uses it).
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

#endif
