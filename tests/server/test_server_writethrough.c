/*
 * test_server_writethrough.c - the send path's write-through (server/conn.c,
 * "Write-through"): a message for a connection with nothing queued is
 * written at once; one for a connection that is behind (its queue, or a
 * partial send lws holds) waits in the queue. Whatever the mix, every
 * member gets every change exactly once and in seq order.
 *
 * One writer, one observer that keeps up and one that stops reading (a 4 KiB
 * receive buffer, so the server's sends soon go partial and then fail with
 * EAGAIN) and resumes, three times over, with small, medium (over
 * --deflate-min-bytes) and large (over one 16 KiB fragment) changes. Plain
 * and on permessage-deflate. Both paths must have been taken: some
 * messages written directly, some queued.
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

/* Connect with a receive buffer of rcvbuf (0: the default), offering
 * permessage-deflate or not, and join "doc". */
static void join(qclient *q, int port, crdt_replica r, bool deflate, int rcvbuf, z_stream *z)
{
	assert_int_equal(qc_connect(q, port, r), 0);
	ws_free(&q->ws);
	assert_int_equal(ws_connect_ext(&q->ws, port, NULL, "quire.v1",
					deflate ? "permessage-deflate; client_max_window_bits" : NULL,
					rcvbuf, T_MS),
			 0);
	if (deflate) {
		assert_non_null(strstr(q->ws.extensions, "permessage-deflate"));
		assert_int_equal(qinflate_attach(&q->ws, z), 0);
	}
	assert_int_equal(qc_hello(q, "doc", 0, 0), 0);
	assert_int_equal(qc_expect(q, WIRE_SERVER_WELCOME, T_MS), 1);
}

/* Read Changes until q has everything up to seq: each starting right after
 * the last one (no gap, no repeat). Returns how many came compressed. */
static size_t catch_up(qclient *q, uint64_t seq)
{
	size_t compressed = 0;
	while (q->last_seq < seq) {
		uint64_t prev = q->last_seq;
		assert_int_equal(qc_recv(q, T_MS), 1);
		assert_int_equal(q->m->kind, WIRE_SERVER_CHANGES);
		assert_int_equal(q->m->seqs[0], prev + 1);
		compressed += q->ws.msg_compressed;
	}
	assert_int_equal(q->last_seq, seq);
	return compressed;
}

static void stall_and_resume(qfixture *f, bool deflate)
{
	START(f, "--max-msgs-per-s", "0", "--max-bytes-per-s", "0", "--max-doc-bytes", "256M",
	      "--deflate-min-bytes", "256");
	int port = f->srv.port;
	qclient a, live, slow;
	z_stream zl, zs;
	assert_int_equal(qc_connect(&a, port, 0xa1), 0);
	assert_int_equal(qc_hello(&a, "doc", 0, 0), 0);
	assert_int_equal(qc_expect(&a, WIRE_SERVER_WELCOME, T_MS), 1);
	join(&live, port, 0x11, deflate, 0, &zl);
	join(&slow, port, 0x51, deflate, 4096, &zs);
	/* letters that barely compress: the sizes stay what they say */
	static char big[20001], medium[301];
	uint64_t rng = 11;
	for (size_t i = 0; i < sizeof big - 1; i++) {
		rng = rng * 6364136223846793005ull + 1442695040888963407ull;
		big[i] = (char)('a' + (rng >> 33) % 26);
	}
	memcpy(medium, big + 7, sizeof medium - 1);
	const char *sizes[] = {"x", medium, big};
	size_t len = 0, compressed = 0;
	uint64_t seq = 0;
	for (int round = 0; round < 3; round++) {
		/* everyone keeps up: each change goes out as it is committed */
		for (int i = 0; i < 30; i++) {
			uint64_t k = qc_insert(&a, len, sizes[i % 3]);
			len += strlen(sizes[i % 3]);
			expect_ack(&a, k, ++seq);
			compressed += catch_up(&live, seq);
			compressed += catch_up(&slow, seq);
		}
		/* the slow one stops reading until the server queues for it */
		bool queued = false;
		for (int i = 0; i < 3000 && !queued; i++) {
			uint64_t k = qc_insert(&a, len, sizes[i % 3]);
			len += strlen(sizes[i % 3]);
			expect_ack(&a, k, ++seq);
			compressed += catch_up(&live, seq);
			if (i % 6 == 5)
				queued = metric(port, "quire_send_queue_bytes") >= 64 * 1024;
		}
		assert_true(queued);
		/* more of every size behind the queue (small ones get merged) */
		for (int i = 0; i < 60; i++) {
			uint64_t k = qc_insert(&a, len, sizes[i % 5 == 4 ? 1 : 0]);
			len += strlen(sizes[i % 5 == 4 ? 1 : 0]);
			expect_ack(&a, k, ++seq);
			compressed += catch_up(&live, seq);
		}
		/* it reads again: all of it, in order, once */
		compressed += catch_up(&slow, seq);
		assert_int_equal(qc_recv(&slow, QUIET_MS), 0);
	}
	uint64_t direct = metric(port, "quire_messages_direct_total");
	uint64_t out = metric(port, "quire_messages_out_total");
	print_message("%llu of %llu messages written directly, %zu compressed\n",
		      (unsigned long long)direct, (unsigned long long)out, compressed);
	assert_true(direct > 0 && direct < out);
	assert_true(deflate ? compressed > 0 : compressed == 0);
	char *ta = qc_text(&a), *tl = qc_text(&live), *ts = qc_text(&slow);
	assert_int_equal(strlen(ta), len);
	assert_string_equal(ta, tl);
	assert_string_equal(ta, ts);
	free(ta);
	free(tl);
	free(ts);
	assert_false(qserver_log_has(&f->srv, "write failed"));
	if (deflate) {
		inflateEnd(&zl);
		inflateEnd(&zs);
	}
	qc_free(&slow);
	qc_free(&live);
	qc_free(&a);
	assert_int_equal(qserver_stop(&f->srv, SIGTERM, 5000), 0);
}

static void test_server_writethrough_plain(void **state) { stall_and_resume(*state, false); }

static void test_server_writethrough_deflate(void **state) { stall_and_resume(*state, true); }

/* Several messages for an idle connection in one turn go out in order:
 * two Updates in one write (one turn) are acked in order, each written at
 * once, and the other member gets them in one Changes. */
static void test_server_writethrough_one_turn(void **state)
{
	qfixture *f = *state;
	START(f, "--max-msgs-per-s", "0", "--max-bytes-per-s", "0");
	int port = f->srv.port;
	qclient a, b;
	join_at(&a, port, 0xa1, "doc", 0);
	join_at(&b, port, 0xb1, "doc", 0);
	for (uint64_t seq = 0; seq < 200; seq += 2) {
		wire_buf u1 = {0}, u2 = {0};
		uint64_t k1 = qc_encode_insert(&a, 0, "ab", &u1);
		uint64_t k2 = qc_encode_insert(&a, 1, "c", &u2);
		assert_int_equal(ws_send2(&a.ws, u1.data, u1.len, u2.data, u2.len), 0);
		wire_buf_free(&u1);
		wire_buf_free(&u2);
		expect_ack(&a, k1, seq + 1);
		expect_ack(&a, k2, seq + 2);
		catch_up(&b, seq + 2);
	}
	expect_quiet(&a);
	char *ta = qc_text(&a), *tb = qc_text(&b);
	assert_string_equal(ta, tb);
	free(ta);
	free(tb);
	assert_true(metric(port, "quire_messages_direct_total") > 0);
	qc_free(&b);
	qc_free(&a);
	assert_int_equal(qserver_stop(&f->srv, SIGTERM, 5000), 0);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_server_writethrough_plain, qfixture_setup,
						qfixture_teardown),
		cmocka_unit_test_setup_teardown(test_server_writethrough_deflate, qfixture_setup,
						qfixture_teardown),
		cmocka_unit_test_setup_teardown(test_server_writethrough_one_turn, qfixture_setup,
						qfixture_teardown),
	};
	if (argc > 1)
		cmocka_set_test_filter(argv[1]);
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
