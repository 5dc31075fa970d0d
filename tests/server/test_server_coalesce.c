/*
 * test_server_coalesce.c - a member that fell behind catches up in few
 * messages (server/conn.h, "Coalescing"): while one client does not read,
 * another sends many small Updates in separate turns; once it reads again
 * it must get every change exactly once, in seq order, in fewer Changes
 * messages than changes, none over 64 KiB, and converge. The same on a
 * permessage-deflate connection, where only messages that go plain are
 * merged (the large ones come compressed, one each, as before) and merged
 * ones come plain (RSV1 clear).
 */
#define _POSIX_C_SOURCE 200809L

#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "qinflate.h"
#include "qtest.h"
#include "sectest.h"

static void backlog(qfixture *f, bool deflate)
{
	const char *const extra[] = {"--max-msgs-per-s",
				     "0",
				     "--max-bytes-per-s",
				     "0",
				     "--max-doc-bytes",
				     "256M",
				     "--log-level",
				     "info",
				     NULL};
	assert_int_equal(qserver_init(&f->srv), 0);
	assert_int_equal(qserver_start(&f->srv, extra), 0);
	int port = f->srv.port;
	qclient a, slow;
	assert_int_equal(qc_connect(&a, port, 0xa1), 0);
	assert_int_equal(qc_hello(&a, "doc", 0, 0), 0);
	assert_int_equal(qc_expect(&a, WIRE_SERVER_WELCOME, T_MS), 1);
	/* the slow one: a tiny receive buffer, and it does not read for now */
	assert_int_equal(qc_connect(&slow, port, 0x51), 0);
	ws_free(&slow.ws);
	assert_int_equal(
		ws_connect_ext(&slow.ws, port, NULL, "quire.v1",
			       deflate ? "permessage-deflate; client_max_window_bits" : NULL, 4096,
			       T_MS),
		0);
	z_stream z;
	memset(&z, 0, sizeof z);
	if (deflate) {
		assert_non_null(strstr(slow.ws.extensions, "permessage-deflate"));
		assert_int_equal(qinflate_attach(&slow.ws, &z), 0);
	}
	assert_int_equal(qc_hello(&slow, "doc", 0, 0), 0);
	for (int i = 0; i < 100 && metric(port, "quire_members") != 2; i++)
		nanosleep(&(struct timespec){0, 20 * 1000 * 1000}, NULL);
	assert_int_equal(metric(port, "quire_members"), 2);
	/* fill the kernel's socket buffers with large changes (letters that
	 * barely compress) until the server queues for the slow one */
	static char chunk[16001];
	uint64_t rng = 7;
	for (int i = 0; i < 16000; i++) {
		rng = rng * 6364136223846793005ull + 1442695040888963407ull;
		chunk[i] = (char)('a' + (rng >> 33) % 26);
	}
	size_t len = 0;
	uint64_t seq = 0;
	bool queued = false;
	for (int i = 0; i < 2000 && !queued; i++) {
		uint64_t k = qc_insert(&a, len, chunk);
		len += 16000;
		expect_ack(&a, k, ++seq);
		if (i % 8 == 7)
			queued = metric(port, "quire_send_queue_bytes") >= 64 * 1024;
	}
	assert_true(queued);
	uint64_t big_last = seq;
	/* then small edits, one per turn (each acked before the next) */
	enum { SMALL = 300 };
	for (int i = 0; i < SMALL; i++) {
		uint64_t k = qc_insert(&a, len++, "x");
		expect_ack(&a, k, ++seq);
	}
	/* the slow one reads again */
	assert_int_equal(qc_expect(&slow, WIRE_SERVER_WELCOME, T_MS), 1);
	uint64_t prev = slow.last_seq;
	size_t small_msgs = 0, small_changes = 0, merged = 0, compressed = 0;
	while (slow.last_seq < seq) {
		assert_int_equal(qc_recv(&slow, T_MS), 1);
		assert_int_equal(slow.m->kind, WIRE_SERVER_CHANGES);
		assert_true(slow.ws.msg_len <= 64 * 1024);
		assert_int_equal(slow.m->seqs[0], prev + 1); /* no gap, no repeat */
		prev = slow.last_seq;
		if (slow.last_seq > big_last) /* it holds small ones */
			small_msgs++;
		for (size_t j = 0; j < slow.m->n_changes; j++)
			small_changes += slow.m->seqs[j] > big_last;
		compressed += slow.ws.msg_compressed;
		if (deflate && slow.m->seqs[0] <= big_last) /* compressed: never merged */
			assert_int_equal(slow.m->n_changes, 1);
		if (slow.m->n_changes > 1) { /* a merged message: always plain */
			merged++;
			assert_false(slow.ws.msg_compressed);
		}
	}
	print_message("%d small changes in %zu messages (%zu merged messages)\n", SMALL, small_msgs,
		      merged);
	assert_int_equal(slow.last_seq, seq);
	assert_int_equal(small_changes, SMALL);
	assert_true(merged > 0);
	if (deflate) /* the large ones sent before it fell behind, as before */
		assert_true(compressed > 0);
	assert_true(small_msgs < SMALL / 4);
	assert_int_equal(qc_recv(&slow, QUIET_MS), 0); /* and nothing more */
	char *ta = qc_text(&a), *ts = qc_text(&slow);
	assert_string_equal(ta, ts);
	free(ta);
	free(ts);
	if (deflate)
		inflateEnd(&z);
	qc_free(&slow);
	qc_free(&a);
	assert_int_equal(qserver_stop(&f->srv, SIGTERM, 5000), 0);
}

static void test_server_coalesce_backlog(void **state) { backlog(*state, false); }

static void test_server_coalesce_backlog_deflate(void **state) { backlog(*state, true); }

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_server_coalesce_backlog, qfixture_setup,
						qfixture_teardown),
		cmocka_unit_test_setup_teardown(test_server_coalesce_backlog_deflate,
						qfixture_setup, qfixture_teardown),
	};
	if (argc > 1)
		cmocka_set_test_filter(argv[1]);
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
