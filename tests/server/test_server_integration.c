/*
 * test_server_integration.c - quire-server end to end: each test starts the
 * real binary on an ephemeral loopback port with a fresh SQLite file, talks
 * to it with qtest.h's WebSocket and protocol clients, and checks what the
 * protocol promises: Welcome and catch-up by seq (log or snapshot), Acks
 * only after commit with the seq the change got, broadcasts to the other
 * members, retransmissions acked without a second change, whole-Update
 * refusal (with rollback of a half-applied batch), errors that keep the
 * connection usable, 1009 for oversized messages, slow-consumer
 * disconnects that spare the other clients, the catch-up rule (a snapshot
 * Welcome when it is smaller than the log catch-up), idle unload, the HTTP
 * endpoints, and a SIGTERM that drains and leaves every acked change on
 * disk.
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
#include <sys/stat.h>
#include <time.h>

#include <cmocka.h>

#include "qtest.h"
#include "sectest.h"

/* ---- tests ------------------------------------------------------------------------ */

static void test_server_join_empty(void **state)
{
	qfixture *f = *state;
	START(f, "--log-level", "debug");
	qclient a;
	join_at(&a, f->srv.port, 0xa1, "notes/empty", 0);
	assert_int_equal(a.m->welcome.head_seq, 0);
	assert_null(a.m->welcome.snapshot);
	assert_false(a.m->welcome.read_only);
	expect_quiet(&a);
	/* a Ping is answered on the connection */
	wire_buf b = {0};
	assert_int_equal(wire_client_encode_ping(&b, 0, 42), WIRE_OK);
	assert_int_equal(ws_send(&a.ws, b.data, b.len), 0);
	wire_buf_free(&b);
	assert_int_equal(qc_expect(&a, WIRE_SERVER_PONG, T_MS), 1);
	assert_int_equal(a.m->nonce, 42);
	/* without --web, HTTP paths other than the API are 404 */
	static char body[256];
	int status = 0;
	assert_int_equal(qhttp_get(f->srv.port, "/", &status, body, sizeof body, T_MS), 0);
	assert_int_equal(status, 404);
	qc_free(&a);
	assert_int_equal(qserver_stop(&f->srv, SIGTERM, 5000), 0);
}

static void test_server_update_ack_broadcast(void **state)
{
	qfixture *f = *state;
	START(f, "--log-level", "debug");
	qclient a, b;
	join_at(&a, f->srv.port, 0xa1, "doc", 0);
	join_at(&b, f->srv.port, 0xb2, "doc", 0);
	uint64_t batch = qc_insert(&a, 0, "hello");
	assert_int_not_equal(batch, 0);
	expect_ack(&a, batch, 1);
	assert_int_equal(qc_recv(&b, T_MS), 1);
	assert_int_equal(b.m->kind, WIRE_SERVER_CHANGES);
	assert_int_equal(b.m->n_changes, 1);
	assert_int_equal(b.m->seqs[0], 1);
	assert_text(&b, "hello");
	/* the sender does not get its own change back */
	expect_quiet(&a);
	/* B answers; A receives it, B is acked with seq 2 */
	uint64_t bb = qc_insert(&b, 5, " world");
	expect_ack(&b, bb, 2);
	assert_int_equal(qc_expect(&a, WIRE_SERVER_CHANGES, T_MS), 1);
	assert_int_equal(a.m->seqs[0], 2);
	assert_text(&a, "hello world");
	/* concurrent edits in one go converge */
	qc_insert(&a, 0, "A");
	qc_insert(&b, 11, "B");
	assert_int_equal(qc_expect(&a, WIRE_SERVER_CHANGES, T_MS), 1);
	assert_int_equal(qc_expect(&b, WIRE_SERVER_CHANGES, T_MS), 1);
	char *ta = qc_text(&a), *tb = qc_text(&b);
	assert_string_equal(ta, tb);
	assert_string_equal(ta, "Ahello worldB");
	free(ta);
	free(tb);
	qc_free(&a);
	qc_free(&b);
	assert_int_equal(qserver_stop(&f->srv, SIGTERM, 5000), 0);
}

static void test_server_group_commit_one_changes_per_turn(void **state)
{
	qfixture *f = *state;
	START(f, "--log-level", "debug");
	qclient a, b;
	join_at(&a, f->srv.port, 0xa1, "doc", 0);
	join_at(&b, f->srv.port, 0xb2, "doc", 0);
	/* two Updates read in one turn: one transaction, one Changes to B */
	wire_buf u1 = {0}, u2 = {0};
	uint64_t k1 = qc_encode_insert(&a, 0, "one", &u1);
	uint64_t k2 = qc_encode_insert(&a, 3, " two", &u2);
	assert_int_equal(ws_send2(&a.ws, u1.data, u1.len, u2.data, u2.len), 0);
	wire_buf_free(&u1);
	wire_buf_free(&u2);
	expect_ack(&a, k1, 1);
	expect_ack(&a, k2, 2);
	assert_int_equal(qc_recv(&b, T_MS), 1);
	assert_int_equal(b.m->kind, WIRE_SERVER_CHANGES);
	assert_int_equal(b.m->n_changes, 2);
	assert_int_equal(b.m->seqs[0], 1);
	assert_int_equal(b.m->seqs[1], 2);
	assert_text(&b, "one two");
	expect_quiet(&b);
	assert_int_equal(metric(f->srv.port, "quire_commits_total"), 1);
	assert_int_equal(metric(f->srv.port, "quire_changes_committed_total"), 2);
	assert_int_equal(metric(f->srv.port, "quire_commit_seconds_count"), 1);
	qc_free(&a);
	qc_free(&b);
	assert_int_equal(qserver_stop(&f->srv, SIGTERM, 5000), 0);
}

/* Receive what is there for c within wait_ms, checking that Changes and
 * Acks advance last_seq without gaps (docs/PROTOCOL.md section 3). */
static void drain_in_order(qclient *c, int wait_ms)
{
	for (;;) {
		uint64_t prev = c->last_seq;
		int r = qc_recv(c, wait_ms);
		assert_int_not_equal(r, -1);
		if (r == 0)
			return;
		if (c->m->kind == WIRE_SERVER_CHANGES)
			assert_int_equal(c->m->seqs[0], prev + 1);
		else if (c->m->kind == WIRE_SERVER_ACK)
			assert_int_equal(c->m->ack.seq, prev + 1);
		else
			fail_msg("unexpected message kind %d", c->m->kind);
	}
}

static void test_server_concurrent_editors_converge(void **state)
{
	qfixture *f = *state;
	START(f, "--log-level", "info");
	enum { N = 3, ROUNDS = 40 };
	qclient c[N];
	for (int i = 0; i < N; i++)
		join_at(&c[i], f->srv.port, 0x100 + (crdt_replica)i, "shared", 0);
	uint64_t rng = 12345;
	static const char *const words[] = {"a", "bc", "def", "é", "日本", "🙂x", "  "};
	for (int r = 0; r < ROUNDS; r++) {
		for (int i = 0; i < N; i++) {
			rng = rng * 6364136223846793005ull + 1442695040888963407ull;
			size_t len = crdt_doc_length(c[i].doc);
			uint64_t x = rng >> 33;
			if (len > 4 && x % 3 == 0)
				assert_int_not_equal(qc_delete(&c[i], (x >> 2) % (len - 2), 2), 0);
			else
				assert_int_not_equal(
					qc_insert(&c[i], (x >> 2) % (len + 1), words[(x >> 8) % 7]),
					0);
		}
		for (int i = 0; i < N; i++)
			drain_in_order(&c[i], 1);
	}
	/* every client ends at the last seq with the same text */
	for (int i = 0; i < N; i++) {
		for (int tries = 0; c[i].last_seq < N * ROUNDS && tries < 100; tries++)
			drain_in_order(&c[i], 50);
		assert_int_equal(c[i].last_seq, N * ROUNDS);
	}
	char *t0 = qc_text(&c[0]);
	for (int i = 1; i < N; i++)
		assert_text(&c[i], t0);
	qclient late;
	join_at(&late, f->srv.port, 0x999, "shared", 0);
	while (late.last_seq < N * ROUNDS)
		assert_int_equal(qc_recv(&late, T_MS), 1);
	assert_text(&late, t0);
	free(t0);
	qc_free(&late);
	for (int i = 0; i < N; i++)
		qc_free(&c[i]);
	assert_int_equal(qserver_stop(&f->srv, SIGTERM, 5000), 0);
}

static void test_server_resume_by_seq(void **state)
{
	qfixture *f = *state;
	START(f, "--log-level", "debug");
	qclient a, b;
	join_at(&a, f->srv.port, 0xa1, "doc", 0);
	join_at(&b, f->srv.port, 0xb2, "doc", 0);
	/* a document much larger than the few changes B will miss, so their
	 * catch-up is smaller than a snapshot */
	char text[4 + 400 + 1] = "one ";
	memset(text + 4, '.', 400);
	text[404] = '\0';
	uint64_t k = qc_insert(&a, 0, text);
	expect_ack(&a, k, 1);
	assert_int_equal(qc_expect(&b, WIRE_SERVER_CHANGES, T_MS), 1);
	assert_int_equal(b.last_seq, 1);
	ws_free(&b.ws); /* B goes away at seq 1, keeping its document */
	const char *words[] = {"two ", "three ", "four ", "five"};
	size_t pos = 4;
	for (size_t i = 0; i < 4; i++) {
		k = qc_insert(&a, pos, words[i]);
		pos += strlen(words[i]);
		expect_ack(&a, k, 2 + i);
	}
	/* B comes back with its last seq: exactly the changes 2..5, once */
	assert_int_equal(ws_connect(&b.ws, f->srv.port, NULL, "quire.v1", 0, T_MS), 0);
	assert_int_equal(qc_hello(&b, "doc", b.last_seq, 0), 0);
	assert_int_equal(qc_expect(&b, WIRE_SERVER_WELCOME, T_MS), 1);
	assert_int_equal(b.m->welcome.head_seq, 5);
	assert_null(b.m->welcome.snapshot);
	assert_int_equal(qc_recv(&b, T_MS), 1);
	assert_int_equal(b.m->kind, WIRE_SERVER_CHANGES);
	assert_int_equal(b.m->n_changes, 4);
	assert_int_equal(b.m->seqs[0], 2);
	assert_int_equal(b.m->seqs[3], 5);
	expect_quiet(&b);
	char *ta = qc_text(&a);
	assert_non_null(ta);
	assert_int_equal(strncmp(ta, "one two three four five.", 24), 0);
	assert_text(&b, ta);
	free(ta);
	qc_free(&a);
	qc_free(&b);
	assert_int_equal(qserver_stop(&f->srv, SIGTERM, 5000), 0);
}

static void test_server_retransmit_acked_once(void **state)
{
	qfixture *f = *state;
	START(f, "--log-level", "debug");
	qclient a, obs;
	join_at(&a, f->srv.port, 0xa1, "doc", 0);
	join_at(&obs, f->srv.port, 0x0b, "doc", 0);
	uint64_t k = qc_insert(&a, 0, "abc");
	expect_ack(&a, k, 1);
	assert_int_equal(qc_expect(&obs, WIRE_SERVER_CHANGES, T_MS), 1);
	/* the same Update again (its ack "lost"): acked with seq 1, no change */
	assert_int_equal(ws_send(&a.ws, a.out.data, a.out.len), 0);
	expect_ack(&a, k, 1);
	expect_quiet(&obs);
	/* after a reconnect with the same replica, under a new batch number */
	wire_buf saved = {0};
	qc_insert(&a, 3, "def");
	saved = a.out;
	a.out = (wire_buf){0};
	uint64_t k2 = a.next_batch - 1;
	expect_ack(&a, k2, 2);
	assert_int_equal(qc_expect(&obs, WIRE_SERVER_CHANGES, T_MS), 1);
	ws_free(&a.ws);
	assert_int_equal(ws_connect(&a.ws, f->srv.port, NULL, "quire.v1", 0, T_MS), 0);
	assert_int_equal(qc_hello(&a, "doc", 1, 0), 0);
	assert_int_equal(qc_expect(&a, WIRE_SERVER_WELCOME, T_MS), 1);
	assert_int_equal(a.m->welcome.head_seq, 2);
	assert_int_equal(qc_recv(&a, T_MS), 1); /* catch-up: its own change 2 */
	assert_int_equal(a.m->kind, WIRE_SERVER_CHANGES);
	assert_int_equal(a.m->seqs[0], 2);
	/* resent anyway (a client that cannot tell): acked, not applied twice */
	assert_int_equal(ws_send(&a.ws, saved.data, saved.len), 0);
	wire_buf_free(&saved);
	expect_ack(&a, k2, 2);
	expect_quiet(&obs);
	assert_int_equal(metric(f->srv.port, "quire_changes_committed_total"), 2);
	assert_int_equal(metric(f->srv.port, "quire_updates_duplicate_total"), 2);
	qc_free(&a);
	qc_free(&obs);
	assert_int_equal(qserver_stop(&f->srv, SIGTERM, 5000), 0);
}

static void test_server_malformed_keeps_connection(void **state)
{
	qfixture *f = *state;
	START(f, "--log-level", "debug");
	qclient a;
	join_at(&a, f->srv.port, 0xa1, "doc", 0);
	static const uint8_t junk[] = {0xff, 0xff, 0xff, 0x01, 0x02};
	assert_int_equal(ws_send(&a.ws, junk, sizeof junk), 0);
	expect_error(&a, WIRE_ERR_BAD_MESSAGE);
	/* an Update for a handle never joined */
	crdt_op op = {.kind = CRDT_OP_INSERT,
		      .id = {0xa1, 0},
		      .lamport = 0,
		      .len = 1,
		      .text = "x",
		      .text_bytes = 1};
	a.handle = 9;
	assert_int_equal(qc_send_ops(&a, 5, &op, 1), 0);
	expect_error(&a, WIRE_ERR_UNKNOWN_DOCUMENT);
	assert_int_equal(a.m->error.client_batch, 5);
	a.handle = 1;
	/* the connection still works */
	uint64_t k = qc_insert(&a, 0, "ok");
	expect_ack(&a, k, 1);
	/* a message in three fragments is one message */
	qc_insert(&a, 2, "!"); /* encoded in a.out, sent; now send it again fragmented */
	expect_ack(&a, a.next_batch - 1, 2);
	size_t n = a.out.len, third = n / 3;
	assert_int_equal(ws_send_frame(&a.ws, WS_BINARY, false, a.out.data, third), 0);
	assert_int_equal(ws_send_frame(&a.ws, WS_CONT, false, a.out.data + third, third), 0);
	assert_int_equal(ws_send_frame(&a.ws, WS_CONT, true, a.out.data + 2 * third, n - 2 * third),
			 0);
	expect_ack(&a, a.next_batch - 1, 2); /* a retransmission, reassembled */
	/* a Hello on a handle already open, or for a document already open */
	assert_int_equal(qc_hello(&a, "other", 0, 0), 0);
	expect_error(&a, WIRE_ERR_BAD_MESSAGE);
	a.handle = 2;
	assert_int_equal(qc_hello(&a, "doc", 0, 0), 0);
	expect_error(&a, WIRE_ERR_BAD_MESSAGE);
	a.handle = 1;
	/* an Update before the Welcome of its handle */
	a.handle = 3;
	{
		wire_buf h = {0}, u = {0};
		wire_hello hello = {.doc_id = "third", .doc_id_len = 5, .replica = 0xa1};
		assert_int_equal(wire_client_encode_hello(&h, 3, &hello), WIRE_OK);
		assert_int_equal(wire_client_encode_update(&u, 3, 77, &op, 1), WIRE_OK);
		assert_int_equal(ws_send2(&a.ws, h.data, h.len, u.data, u.len), 0);
		wire_buf_free(&h);
		wire_buf_free(&u);
	}
	expect_error(&a, WIRE_ERR_UNKNOWN_DOCUMENT);
	assert_int_equal(a.m->error.client_batch, 77);
	assert_int_equal(qc_expect(&a, WIRE_SERVER_WELCOME, T_MS), 1);
	assert_int_equal(a.m->doc, 3);
	a.handle = 1;
	/* a text message is a protocol error: close 1003 */
	assert_int_equal(ws_send_frame(&a.ws, WS_TEXT, true, "hello", 5), 0);
	assert_int_equal(qc_recv(&a, T_MS), -1);
	assert_int_equal(a.ws.close_code, 1003);
	qc_free(&a);
	assert_int_equal(qserver_stop(&f->srv, SIGTERM, 5000), 0);
}

static void test_server_unsupported_version(void **state)
{
	qfixture *f = *state;
	START(f, "--log-level", "debug");
	qclient a;
	assert_int_equal(qc_connect(&a, f->srv.port, 0xa1), 0);
	assert_int_equal(qc_hello(&a, "doc", 0, 2), 0);
	expect_error(&a, WIRE_ERR_UNSUPPORTED_VERSION);
	/* the right version then works on the same connection */
	assert_int_equal(qc_hello(&a, "doc", 0, 0), 0);
	assert_int_equal(qc_expect(&a, WIRE_SERVER_WELCOME, T_MS), 1);
	qc_free(&a);
	assert_int_equal(qserver_stop(&f->srv, SIGTERM, 5000), 0);
}

static void test_server_oversized_messages(void **state)
{
	qfixture *f = *state;
	START(f, "--max-message-bytes", "4K");
	qclient a;
	join_at(&a, f->srv.port, 0xa1, "doc", 0);
	static uint8_t big[80000];
	memset(big, 'x', sizeof big);
	/* over the limit, in fragments: dropped while reassembling, TOO_LARGE */
	assert_int_equal(ws_send_frame(&a.ws, WS_BINARY, false, big, 3000), 0);
	assert_int_equal(ws_send_frame(&a.ws, WS_CONT, true, big + 3000, 3000), 0);
	expect_error(&a, WIRE_ERR_TOO_LARGE);
	/* the connection goes on */
	uint64_t k = qc_insert(&a, 0, "small");
	expect_ack(&a, k, 1);
	/* over 16 times the limit: closed with 1009 */
	assert_int_equal(ws_send_frame(&a.ws, WS_BINARY, false, big, 40000), 0);
	assert_int_equal(ws_send_frame(&a.ws, WS_CONT, true, big + 40000, 40000), 0);
	assert_int_equal(qc_recv(&a, T_MS), -1);
	assert_int_equal(a.ws.close_code, 1009);
	qc_free(&a);
	assert_int_equal(
		metric(f->srv.port, "quire_connections_closed_total{reason=\"too_large\"}"), 1);
	assert_int_equal(qserver_stop(&f->srv, SIGTERM, 5000), 0);
}

static void test_server_refuses_bad_updates_whole(void **state)
{
	qfixture *f = *state;
	START(f, "--log-level", "debug");
	qclient a, obs;
	join_at(&a, f->srv.port, 0xa1, "doc", 0);
	join_at(&obs, f->srv.port, 0x0b, "doc", 0);
	/* another replica's op */
	crdt_op other = {.kind = CRDT_OP_INSERT,
			 .id = {0xee, 0},
			 .lamport = 0,
			 .len = 1,
			 .text = "x",
			 .text_bytes = 1};
	assert_int_equal(qc_send_ops(&a, 1, &other, 1), 0);
	expect_error(&a, WIRE_ERR_INVALID_OP);
	assert_int_equal(a.m->error.client_batch, 1);
	/* a counter gap */
	crdt_op gap = {.kind = CRDT_OP_INSERT,
		       .id = {0xa1, 5},
		       .lamport = 0,
		       .len = 1,
		       .text = "x",
		       .text_bytes = 1};
	assert_int_equal(qc_send_ops(&a, 2, &gap, 1), 0);
	expect_error(&a, WIRE_ERR_MISSING_DEPENDENCY);
	/* a reference to a unit nobody has */
	crdt_op orphan = {.kind = CRDT_OP_INSERT,
			  .id = {0xa1, 0},
			  .lamport = 5,
			  .len = 1,
			  .text = "x",
			  .text_bytes = 1,
			  .left = {0xdd, 3}};
	assert_int_equal(qc_send_ops(&a, 3, &orphan, 1), 0);
	expect_error(&a, WIRE_ERR_MISSING_DEPENDENCY);
	/* op 0 fine, op 1 fails only when applied (its Lamport time is not
	 * after its origin's): nothing of the batch may stay */
	crdt_op two[2] = {
		{.kind = CRDT_OP_INSERT,
		 .id = {0xa1, 0},
		 .lamport = 10,
		 .len = 2,
		 .text = "ab",
		 .text_bytes = 2},
		{.kind = CRDT_OP_INSERT,
		 .id = {0xa1, 2},
		 .lamport = 3,
		 .len = 1,
		 .text = "c",
		 .text_bytes = 1,
		 .left = {0xa1, 1}},
	};
	assert_int_equal(qc_send_ops(&a, 4, two, 2), 0);
	expect_error(&a, WIRE_ERR_INVALID_OP);
	assert_int_equal(a.m->error.client_batch, 4);
	expect_quiet(&obs);
	/* the refused ops left no trace: counter 0 is still free, head still 0 */
	uint64_t k = qc_insert(&a, 0, "fine");
	expect_ack(&a, k, 1);
	assert_int_equal(qc_expect(&obs, WIRE_SERVER_CHANGES, T_MS), 1);
	assert_text(&obs, "fine");
	assert_int_equal(metric(f->srv.port, "quire_document_reloads_total"), 1);
	qc_free(&a);
	qc_free(&obs);
	assert_int_equal(qserver_stop(&f->srv, SIGTERM, 5000), 0);
	uint64_t head = 0;
	char *t = qdb_text(f->srv.db, "doc", &head);
	assert_non_null(t);
	assert_string_equal(t, "fine");
	assert_int_equal(head, 1);
	free(t);
}

static void test_server_slow_consumer_disconnected(void **state)
{
	qfixture *f = *state;
	/* no rate limit: the writer goes at the server's pace, which can pass
	 * the default 200 messages/s */
	START(f, "--send-queue-bytes", "64K", "--log-level", "info", "--max-msgs-per-s", "0",
	      "--max-bytes-per-s", "0");
	qclient a, b, slow;
	join_at(&a, f->srv.port, 0xa1, "doc", 0);
	join_at(&b, f->srv.port, 0xb2, "doc", 0);
	/* the slow one: a tiny receive buffer, and it never reads */
	memset(&slow, 0, sizeof slow);
	assert_int_equal(ws_connect(&slow.ws, f->srv.port, NULL, "quire.v1", 4096, T_MS), 0);
	slow.replica = 0x51;
	slow.handle = 1;
	slow.doc = crdt_doc_new(0x51, NULL);
	slow.m = wire_server_msg_new(NULL);
	assert_int_equal(qc_hello(&slow, "doc", 0, 0), 0);
	/* enough to fill the kernel's socket buffers (megabytes on loopback)
	 * and then the 64 KiB queue */
	static char chunk[16001];
	memset(chunk, 'z', 16000);
	size_t len = 0;
	uint64_t acked = 0;
	bool dropped = false;
	for (int i = 0; i < 1500 && !dropped; i++) {
		uint64_t k = qc_insert(&a, len, chunk);
		len += 16000;
		assert_int_equal(qc_expect(&a, WIRE_SERVER_ACK, T_MS), 1);
		assert_int_equal(a.m->ack.client_batch, k);
		acked = a.m->ack.seq;
		assert_int_equal(qc_expect(&b, WIRE_SERVER_CHANGES, T_MS), 1);
		if (i % 16 == 15)
			dropped = qserver_log_has(&f->srv, "slow consumer (");
	}
	assert_true(dropped);
	/* counted when the connection is gone: it never reads its close, so
	 * that is when the grace of 2 s ends */
	for (int i = 0; i < 100 && metric(f->srv.port, "quire_slow_consumer_disconnects_total") != 1;
	     i++)
		nanosleep(&(struct timespec){0, 50 * 1000 * 1000}, NULL);
	assert_int_equal(metric(f->srv.port, "quire_slow_consumer_disconnects_total"), 1);
	/* the others carry on */
	uint64_t k = qc_insert(&a, 0, "still here");
	expect_ack(&a, k, acked + 1);
	assert_int_equal(qc_expect(&b, WIRE_SERVER_CHANGES, T_MS), 1);
	char *ta = qc_text(&a), *tb = qc_text(&b);
	assert_string_equal(ta, tb);
	free(ta);
	free(tb);
	/* the slow one finds its connection closed (4000) once it reads again */
	int r;
	do
		r = qc_recv(&slow, T_MS);
	while (r == 1);
	assert_int_equal(r, -1);
	assert_true(slow.ws.close_code == 1008 || slow.ws.close_code == 1006);
	/* and resumes by seq */
	qc_free(&slow);
	qclient again;
	join_at(&again, f->srv.port, 0x52, "doc", 0);
	assert_int_equal(again.m->welcome.head_seq, acked + 1);
	while (again.last_seq < acked + 1)
		assert_int_equal(qc_recv(&again, T_MS), 1);
	char *t1 = qc_text(&again), *t2 = qc_text(&a);
	assert_string_equal(t1, t2);
	free(t1);
	free(t2);
	qc_free(&again);
	qc_free(&a);
	qc_free(&b);
	assert_int_equal(qserver_stop(&f->srv, SIGTERM, 5000), 0);
}

static void test_server_snapshot_when_log_trimmed(void **state)
{
	qfixture *f = *state;
	START(f, "--snapshot-every", "2", "--keep-changes", "1", "--log-level", "debug");
	qclient a;
	join_at(&a, f->srv.port, 0xa1, "doc", 0);
	size_t len = 0;
	for (int i = 0; i < 10; i++) {
		uint64_t k = qc_insert(&a, len, "ab");
		len += 2;
		expect_ack(&a, k, (uint64_t)i + 1);
	}
	qc_delete(&a, 0, 4);
	expect_ack(&a, a.next_batch - 1, 11);
	/* a client at seq 1: the log no longer reaches back, so a snapshot */
	qclient b;
	assert_int_equal(qc_connect(&b, f->srv.port, 0xb2), 0);
	assert_int_equal(qc_hello(&b, "doc", 1, 0), 0);
	assert_int_equal(qc_expect(&b, WIRE_SERVER_WELCOME, T_MS), 1);
	assert_int_equal(b.m->welcome.head_seq, 11);
	assert_non_null(b.m->welcome.snapshot);
	assert_int_equal(b.last_seq, 11);
	char *ta = qc_text(&a);
	assert_text(&b, ta);
	free(ta);
	expect_quiet(&b); /* never the document twice */
	/* a client at seq 10: still in the log, so Changes (read raw: this
	 * client has no document at seq 10 to apply them to) */
	qclient c;
	assert_int_equal(qc_connect(&c, f->srv.port, 0xc3), 0);
	assert_int_equal(qc_hello(&c, "doc", 10, 0), 0);
	const uint8_t *data;
	size_t dlen;
	int op;
	assert_int_equal(ws_recv(&c.ws, T_MS, &data, &dlen, &op), 1);
	assert_int_equal(wire_server_decode(c.m, data, dlen, NULL), WIRE_OK);
	assert_int_equal(c.m->kind, WIRE_SERVER_WELCOME);
	assert_null(c.m->welcome.snapshot);
	assert_int_equal(ws_recv(&c.ws, T_MS, &data, &dlen, &op), 1);
	assert_int_equal(wire_server_decode(c.m, data, dlen, NULL), WIRE_OK);
	assert_int_equal(c.m->kind, WIRE_SERVER_CHANGES);
	assert_int_equal(c.m->n_changes, 1);
	assert_int_equal(c.m->seqs[0], 11);
	/* a client beyond the head (a server that lost its tail): the whole
	 * document as a snapshot */
	qclient d;
	assert_int_equal(qc_connect(&d, f->srv.port, 0xd4), 0);
	assert_int_equal(qc_hello(&d, "doc", 99, 0), 0);
	assert_int_equal(qc_expect(&d, WIRE_SERVER_WELCOME, T_MS), 1);
	assert_non_null(d.m->welcome.snapshot);
	assert_int_equal(d.last_seq, 11);
	assert_true(metric(f->srv.port, "quire_snapshots_total") >= 5);
	qc_free(&a);
	qc_free(&b);
	qc_free(&c);
	qc_free(&d);
	assert_int_equal(qserver_stop(&f->srv, SIGTERM, 5000), 0);
}

/* The catch-up rule: whichever is smaller, the log catch-up or a snapshot
 * of the document at the head. */
/* Wait (bounded) until metric `name` reaches want; returns its value. */
static uint64_t metric_reaches(int port, const char *name, uint64_t want)
{
	uint64_t v = metric(port, name);
	for (int i = 0; i < 200 && (v == UINT64_MAX || v < want); i++) {
		nanosleep(&(struct timespec){0, 10000000}, NULL);
		v = metric(port, name);
	}
	return v;
}

/* The test's quiet time: far above a turn's gaps even with the server under
 * valgrind on a loaded machine, so only the end of the burst is quiet. */
#define TEST_QUIET_MS "250"
#define PAST_QUIET_NS 400000000L

/* A burst of n inserts of 8 code points (~30 B each), sent without waiting
 * (one burst for the server), then their Acks awaited. */
static void insert_burst(qclient *a, int n, uint64_t *seq)
{
	uint64_t k[64];
	assert_true(n <= 64);
	for (int i = 0; i < n; i++)
		k[i] = qc_insert(a, (size_t)i * 8, "abcdefgh");
	for (int i = 0; i < n; i++)
		expect_ack(a, k[i], ++*seq);
}

/* A document that goes quiet after changes outweighing a Snapshot gets its
 * Snapshot encoded then, once, for the next reconnect; a quiet document
 * without new changes, or after changes lighter than a Snapshot, does not. */
static void test_server_quiet_snapshot(void **state)
{
	qfixture *f = *state;
	START(f, "--log-level", "debug", "--quiet-snapshot-ms", TEST_QUIET_MS);
	const char *quiet = "quire_quiet_snapshots_total";
	qclient a, b;
	join_at(&a, f->srv.port, 0xa1, "doc", 0);
	assert_int_equal(metric(f->srv.port, quiet), 0);
	uint64_t seq = 0;
	insert_burst(&a, 40, &seq); /* ~1,200 B of changes, 320 code points */
	assert_int_equal(metric_reaches(f->srv.port, quiet, 1), 1);
	assert_true(qserver_log_has(&f->srv, "quiet, its Snapshot encoded at seq 40"));
	/* quiet again, nothing new: no second encoding */
	nanosleep(&(struct timespec){0, PAST_QUIET_NS}, NULL);
	assert_int_equal(metric(f->srv.port, quiet), 1);
	/* a change much lighter than the Snapshot: not worth one */
	uint64_t k = qc_insert(&a, 0, "!");
	expect_ack(&a, k, ++seq);
	nanosleep(&(struct timespec){0, PAST_QUIET_NS}, NULL);
	assert_int_equal(metric(f->srv.port, quiet), 1);
	/* a joiner from scratch gets the document */
	char *want = qc_text(&a);
	join_at(&b, f->srv.port, 0xb2, "doc", 0);
	while (b.last_seq < seq)
		assert_int_equal(qc_recv(&b, T_MS), 1);
	assert_text(&b, want);
	free(want);
	qc_free(&a);
	qc_free(&b);
	assert_int_equal(qserver_stop(&f->srv, SIGTERM, 5000), 0);
}

/* --quiet-snapshot-ms 0: the same burst encodes nothing early. */
static void test_server_quiet_snapshot_off(void **state)
{
	qfixture *f = *state;
	START(f, "--quiet-snapshot-ms", "0");
	qclient a;
	join_at(&a, f->srv.port, 0xa1, "doc", 0);
	uint64_t seq = 0;
	insert_burst(&a, 40, &seq);
	nanosleep(&(struct timespec){0, 100000000}, NULL);
	assert_int_equal(metric(f->srv.port, "quire_quiet_snapshots_total"), 0);
	qc_free(&a);
	assert_int_equal(qserver_stop(&f->srv, SIGTERM, 5000), 0);
}

static void test_server_catchup_smaller_wins(void **state)
{
	qfixture *f = *state;
	START(f, "--log-level", "debug");
	qclient a, b, c;
	join_at(&a, f->srv.port, 0xa1, "doc", 0);
	uint64_t k = qc_insert(&a, 0, "small");
	expect_ack(&a, k, 1);
	join_at(&b, f->srv.port, 0xb2, "doc", 0);
	join_at(&c, f->srv.port, 0xc3, "doc", 0);
	while (b.last_seq < 1) /* Changes or a snapshot, whichever is smaller */
		assert_int_equal(qc_expect(&b, WIRE_SERVER_CHANGES, T_MS), 1);
	while (c.last_seq < 1)
		assert_int_equal(qc_expect(&c, WIRE_SERVER_CHANGES, T_MS), 1);
	ws_free(&b.ws); /* B misses many small changes */
	uint64_t seq = 1;
	for (int i = 0; i < 60; i++) {
		k = qc_insert(&a, 5, "xy");
		expect_ack(&a, k, ++seq);
		k = qc_delete(&a, 5, 2);
		expect_ack(&a, k, ++seq);
	}
	while (c.last_seq < seq)
		assert_int_equal(qc_expect(&c, WIRE_SERVER_CHANGES, T_MS), 1);
	ws_free(&c.ws); /* C misses only a few */
	k = qc_insert(&a, 5, "!");
	expect_ack(&a, k, ++seq);
	k = qc_insert(&a, 0, "a ");
	expect_ack(&a, k, ++seq);
	uint64_t snaps = metric(f->srv.port, "quire_welcome_snapshots_total");
	assert_true(snaps != UINT64_MAX);

	/* B: 122 changes of a few bytes each on a 8-character document: a
	 * snapshot Welcome, and no Changes after it */
	assert_int_equal(ws_connect(&b.ws, f->srv.port, NULL, "quire.v1", 0, T_MS), 0);
	assert_int_equal(qc_hello(&b, "doc", b.last_seq, 0), 0);
	assert_int_equal(qc_expect(&b, WIRE_SERVER_WELCOME, T_MS), 1);
	assert_int_equal(b.m->welcome.head_seq, seq);
	assert_non_null(b.m->welcome.snapshot);
	assert_int_equal(b.last_seq, seq);
	expect_quiet(&b);
	assert_int_equal(metric(f->srv.port, "quire_welcome_snapshots_total"), snaps + 1);

	/* C: two changes, smaller than the snapshot: Changes */
	assert_int_equal(ws_connect(&c.ws, f->srv.port, NULL, "quire.v1", 0, T_MS), 0);
	assert_int_equal(qc_hello(&c, "doc", c.last_seq, 0), 0);
	assert_int_equal(qc_expect(&c, WIRE_SERVER_WELCOME, T_MS), 1);
	assert_null(c.m->welcome.snapshot);
	assert_int_equal(qc_recv(&c, T_MS), 1);
	assert_int_equal(c.m->kind, WIRE_SERVER_CHANGES);
	assert_int_equal(c.m->n_changes, 2);
	assert_int_equal(c.last_seq, seq);
	expect_quiet(&c);
	assert_int_equal(metric(f->srv.port, "quire_welcome_snapshots_total"), snaps + 1);

	/* all three converge */
	assert_text(&a, "a small!");
	assert_text(&b, "a small!");
	assert_text(&c, "a small!");
	qc_free(&a);
	qc_free(&b);
	qc_free(&c);
	assert_int_equal(qserver_stop(&f->srv, SIGTERM, 5000), 0);
	/* the debug line says which was chosen and why */
	assert_true(qserver_log_has(&f->srv, "(snapshot of "));
	assert_true(qserver_log_has(&f->srv, ": smaller than the log; log catch-up >= "));
	assert_true(qserver_log_has(&f->srv, "(changes: 2 changes, "));
}

static void test_server_idle_unload_and_reload(void **state)
{
	qfixture *f = *state;
	START(f, "--idle-unload-ms", "100", "--log-level", "debug");
	qclient a;
	join_at(&a, f->srv.port, 0xa1, "doc", 0);
	uint64_t k = qc_insert(&a, 0, "kept");
	expect_ack(&a, k, 1);
	assert_int_equal(metric(f->srv.port, "quire_documents_loaded"), 1);
	wire_buf b = {0};
	assert_int_equal(wire_client_encode_leave(&b, 1), WIRE_OK);
	assert_int_equal(ws_send(&a.ws, b.data, b.len), 0);
	wire_buf_free(&b);
	int unloaded = 0;
	for (int i = 0; i < 50 && !unloaded; i++) {
		struct timespec ts = {0, 50 * 1000000L};
		nanosleep(&ts, NULL);
		unloaded = metric(f->srv.port, "quire_documents_loaded") == 0;
	}
	assert_true(unloaded);
	assert_int_equal(metric(f->srv.port, "quire_document_unloads_total"), 1);
	assert_int_equal(metric(f->srv.port, "quire_snapshots_total"), 1);
	/* joining again loads it from storage */
	qclient c;
	join_at(&c, f->srv.port, 0xc3, "doc", 0);
	assert_int_equal(c.m->welcome.head_seq, 1);
	assert_int_equal(qc_expect(&c, WIRE_SERVER_CHANGES, T_MS), 1);
	assert_text(&c, "kept");
	qc_free(&a);
	qc_free(&c);
	assert_int_equal(qserver_stop(&f->srv, SIGTERM, 5000), 0);
}

static void write_file(const char *dir, const char *name, const char *content, size_t len)
{
	char path[512];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	FILE *fp = fopen(path, "wb");
	assert_non_null(fp);
	assert_int_equal(fwrite(content, 1, len, fp), len);
	fclose(fp);
}

static void test_server_http_endpoints(void **state)
{
	qfixture *f = *state;
	/* a web folder with the file types lws does not know by itself */
	assert_int_equal(qserver_init(&f->srv), 0);
	char web[400];
	snprintf(web, sizeof web, "%s/web", f->srv.dir);
	assert_int_equal(mkdir(web, 0755), 0);
	write_file(web, "index.html", "<!doctype html><p>quire", 23);
	write_file(web, "engine.wasm", "\0asm\1\0\0\0", 8);
	write_file(web, "app.mjs", "export {};\n", 11);
	write_file(web, "data.bin", "xyz", 3);
	const char *const extra[] = {"--log-level", "warn", "--web", web, NULL};
	assert_int_equal(qserver_start(&f->srv, extra), 0);
	static char body[65536];
	int status = 0;
	char type[128];
	struct {
		const char *path, *type;
	} files[] = {{"/", "text/html"},
		     {"/index.html", "text/html"},
		     {"/engine.wasm", "application/wasm"},
		     {"/app.mjs", "text/javascript"},
		     {"/data.bin", "application/octet-stream"}};
	for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
		assert_int_equal(qhttp_get_type(f->srv.port, files[i].path, &status, type,
						sizeof type, body, sizeof body, T_MS),
				 0);
		assert_int_equal(status, 200);
		if (strncmp(type, files[i].type, strlen(files[i].type)) != 0)
			fail_msg("%s served as '%s', wanted %s", files[i].path, type,
				 files[i].type);
	}
	assert_int_equal(qhttp_get(f->srv.port, "/healthz", &status, body, sizeof body, T_MS), 0);
	assert_int_equal(status, 200);
	assert_non_null(strstr(body, "\"status\":\"ok\""));
	assert_non_null(strstr(body, "\"connections\":0"));
	assert_int_equal(qhttp_get(f->srv.port, "/metrics", &status, body, sizeof body, T_MS), 0);
	assert_int_equal(status, 200);
	/* every sample line belongs to a metric announced by HELP and TYPE */
	char *save = NULL, *line = strtok_r(body, "\n", &save);
	char family[128] = "";
	int samples = 0;
	for (; line; line = strtok_r(NULL, "\n", &save)) {
		if (strncmp(line, "# HELP ", 7) == 0)
			continue;
		if (strncmp(line, "# TYPE ", 7) == 0) {
			sscanf(line + 7, "%127s", family);
			continue;
		}
		assert_int_equal(strncmp(line, "quire_", 6), 0);
		assert_int_equal(strncmp(line, family, strlen(family)), 0);
		const char *sp = strrchr(line, ' ');
		assert_non_null(sp);
		char *end;
		strtod(sp + 1, &end);
		assert_true(*end == '\0');
		samples++;
	}
	assert_true(samples > 30);
	assert_int_equal(qhttp_get(f->srv.port, "/nope.html", &status, body, sizeof body, T_MS), 0);
	assert_int_equal(status, 404);
	/* a WebSocket without a subprotocol still speaks quire.v1 (protocols[0]) */
	ws_client w;
	assert_int_equal(ws_connect(&w, f->srv.port, NULL, NULL, 0, T_MS), 0);
	wire_buf b = {0};
	assert_int_equal(wire_client_encode_ping(&b, 0, 7), WIRE_OK);
	assert_int_equal(ws_send(&w, b.data, b.len), 0);
	wire_buf_free(&b);
	const uint8_t *data;
	size_t len;
	int op;
	assert_int_equal(ws_recv(&w, T_MS, &data, &len, &op), 1);
	wire_server_msg *m = wire_server_msg_new(NULL);
	assert_int_equal(wire_server_decode(m, data, len, NULL), WIRE_OK);
	assert_int_equal(m->kind, WIRE_SERVER_PONG);
	wire_server_msg_free(m);
	ws_free(&w);
	/* the WebSocket endpoint is /sync only */
	assert_int_equal(ws_connect(&w, f->srv.port, "/", "quire.v1", 0, T_MS), -1);
	assert_int_equal(qserver_stop(&f->srv, SIGTERM, 5000), 0);
}

static void test_server_sigterm_drains_and_persists(void **state)
{
	qfixture *f = *state;
	START(f, "--log-level", "info");
	qclient a, b;
	join_at(&a, f->srv.port, 0xa1, "doc", 0);
	join_at(&b, f->srv.port, 0xb2, "other", 0);
	size_t len = 0;
	for (int i = 0; i < 20; i++) {
		uint64_t k = qc_insert(&a, len, "xy");
		len += 2;
		expect_ack(&a, k, (uint64_t)i + 1);
	}
	qc_delete(&a, 3, 5);
	expect_ack(&a, a.next_batch - 1, 21);
	uint64_t kb = qc_insert(&b, 0, "second document");
	expect_ack(&b, kb, 1);
	/* one more Update races the signal: acked means on disk, and only then */
	uint64_t last = qc_insert(&a, 0, "racing ");
	char *want = qc_text(&a);
	assert_int_equal(qserver_stop(&f->srv, SIGTERM, 10000), 0);
	/* clients are told, then closed with 1001 */
	bool acked = false;
	int r;
	do {
		r = qc_recv(&a, T_MS);
		if (r == 1 && a.m->kind == WIRE_SERVER_ACK && a.m->ack.client_batch == last)
			acked = true;
	} while (r == 1 &&
		 !(a.m->kind == WIRE_SERVER_ERROR && a.m->error.code == WIRE_ERR_SHUTTING_DOWN));
	assert_int_equal(r, 1);
	assert_int_equal(qc_recv(&a, T_MS), -1);
	assert_int_equal(a.ws.close_code, 1001);
	uint64_t head = 0;
	char *got = qdb_text(f->srv.db, "doc", &head);
	assert_non_null(got);
	assert_int_equal(head, acked ? 22 : 21);
	if (acked)
		assert_string_equal(got, want);
	free(got);
	got = qdb_text(f->srv.db, "other", &head);
	assert_non_null(got);
	assert_string_equal(got, "second document");
	free(got);
	/* the shutdown snapshotted both documents at their heads */
	assert_int_equal(qdb_snapshot_seq(f->srv.db, "doc"), acked ? 22 : 21);
	assert_int_equal(qdb_snapshot_seq(f->srv.db, "other"), 1);
	free(want);
	qc_free(&a);
	qc_free(&b);
}

static void test_server_sigkill_keeps_acked_changes(void **state)
{
	qfixture *f = *state;
	/* every commit wakes the WAL checkpoint thread: the kill comes with
	 * checkpoints asked for or running */
	START(f, "--log-level", "info", "--checkpoint-pages", "1");
	qclient a;
	join_at(&a, f->srv.port, 0xa1, "doc", 0);
	size_t len = 0;
	for (int i = 0; i < 200; i++) {
		uint64_t k = qc_insert(&a, len, "k.");
		len += 2;
		expect_ack(&a, k, (uint64_t)i + 1);
	}
	const char *bg = "quire_wal_checkpoints_total{thread=\"background\"}";
	uint64_t ran = 0;
	for (int i = 0; i < 250 && (ran == 0 || ran == UINT64_MAX); i++) {
		ran = qserver_metric(f->srv.port, bg, T_MS);
		if (ran == 0)
			nanosleep(&(struct timespec){0, 20000000}, NULL);
	}
	assert_true(ran > 0 && ran != UINT64_MAX);
	assert_int_equal(qserver_metric(f->srv.port, "quire_wal_checkpoint_failures_total", T_MS), 0);
	for (int i = 0; i < 50; i++) {
		uint64_t k = qc_insert(&a, len, "k.");
		len += 2;
		expect_ack(&a, k, (uint64_t)i + 201);
	}
	char *want = qc_text(&a);
	qc_free(&a);
	assert_int_equal(qserver_stop(&f->srv, SIGKILL, 5000), 128 + SIGKILL);
	/* restarted on the same database: every acked change is served */
	const char *const extra[] = {"--log-level", "info", NULL};
	assert_int_equal(qserver_start(&f->srv, extra), 0);
	qclient b;
	join_at(&b, f->srv.port, 0xb2, "doc", 0);
	assert_int_equal(b.m->welcome.head_seq, 250);
	while (b.last_seq < 250)
		assert_int_equal(qc_recv(&b, T_MS), 1);
	assert_text(&b, want);
	free(want);
	qc_free(&b);
	assert_int_equal(qserver_stop(&f->srv, SIGTERM, 5000), 0);
}

static void test_server_too_many_documents(void **state)
{
	qfixture *f = *state;
	START(f, "--max-docs-per-conn", "2");
	qclient a;
	assert_int_equal(qc_connect(&a, f->srv.port, 0xa1), 0);
	const char *ids[] = {"d1", "d2", "d3"};
	for (uint32_t i = 0; i < 3; i++) {
		a.handle = i + 1;
		assert_int_equal(qc_hello(&a, ids[i], 0, 0), 0);
	}
	/* Errors are immediate, Welcomes come at the end of the turn: any order */
	int welcomes = 0, refused = 0;
	for (int i = 0; i < 3; i++) {
		assert_int_equal(qc_recv(&a, T_MS), 1);
		if (a.m->kind == WIRE_SERVER_WELCOME) {
			welcomes++;
		} else {
			assert_int_equal(a.m->kind, WIRE_SERVER_ERROR);
			assert_int_equal(a.m->error.code, WIRE_ERR_TOO_MANY_DOCUMENTS);
			assert_int_equal(a.m->doc, 3);
			refused++;
		}
	}
	assert_int_equal(welcomes, 2);
	assert_int_equal(refused, 1);
	qc_free(&a);
	assert_int_equal(qserver_stop(&f->srv, SIGTERM, 5000), 0);
}

static void test_server_heartbeat_closes_silent_clients(void **state)
{
	qfixture *f = *state;
	START(f, "--heartbeat-timeout-s", "2", "--log-level", "debug");
	qclient live, dead;
	join_at(&live, f->srv.port, 0xa1, "doc", 0);
	join_at(&dead, f->srv.port, 0xb2, "doc", 0);
	/* live reads (answering WebSocket pings) for 4 s; dead reads nothing */
	for (int i = 0; i < 8; i++)
		assert_int_equal(qc_recv(&live, 500), 0);
	wire_buf b = {0};
	assert_int_equal(wire_client_encode_ping(&b, 0, 5), WIRE_OK);
	assert_int_equal(ws_send(&live.ws, b.data, b.len), 0);
	wire_buf_free(&b);
	assert_int_equal(qc_expect(&live, WIRE_SERVER_PONG, T_MS), 1);
	/* dead was hung up on: what it reads now ends in a close */
	int r;
	do
		r = qc_recv(&dead, T_MS);
	while (r == 1);
	assert_int_equal(r, -1);
	qc_free(&live);
	qc_free(&dead);
	assert_int_equal(qserver_stop(&f->srv, SIGTERM, 5000), 0);
}

static void test_server_failed_load_is_unavailable(void **state)
{
	qfixture *f = *state;
	START(f, "--log-level", "debug");
	qclient a;
	join_at(&a, f->srv.port, 0xa1, "broken", 0);
	uint64_t k = qc_insert(&a, 0, "precious text");
	expect_ack(&a, k, 1);
	qc_free(&a);
	assert_int_equal(qserver_stop(&f->srv, SIGTERM, 5000), 0);
	/* damage the only change and drop the snapshots: the document cannot be
	 * rebuilt, and must not come back empty */
	assert_int_equal(qdb_exec(f->srv.db, "UPDATE changes SET payload = x'0aff' WHERE seq = 1;"
					     "DELETE FROM snapshots;"),
			 0);
	const char *const extra[] = {"--log-level", "debug", NULL};
	assert_int_equal(qserver_start(&f->srv, extra), 0);
	assert_int_equal(qc_connect(&a, f->srv.port, 0xa1), 0);
	assert_int_equal(qc_hello(&a, "broken", 0, 0), 0);
	expect_error(&a, WIRE_ERR_DOCUMENT_UNAVAILABLE);
	assert_int_equal(a.m->doc, 1);
	/* the handle was not opened; other documents work */
	a.handle = 2;
	assert_int_equal(qc_hello(&a, "fine", 0, 0), 0);
	assert_int_equal(qc_expect(&a, WIRE_SERVER_WELCOME, T_MS), 1);
	assert_int_equal(metric(f->srv.port, "quire_document_load_failures_total"), 1);
	qc_free(&a);
	assert_int_equal(qserver_stop(&f->srv, SIGTERM, 5000), 0);
	/* and the stored change is untouched (no empty snapshot over it) */
	assert_int_equal(qdb_snapshot_seq(f->srv.db, "broken"), 0);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_server_join_empty, qfixture_setup,
						qfixture_teardown),
		cmocka_unit_test_setup_teardown(test_server_update_ack_broadcast, qfixture_setup,
						qfixture_teardown),
		cmocka_unit_test_setup_teardown(test_server_group_commit_one_changes_per_turn,
						qfixture_setup, qfixture_teardown),
		cmocka_unit_test_setup_teardown(test_server_concurrent_editors_converge,
						qfixture_setup, qfixture_teardown),
		cmocka_unit_test_setup_teardown(test_server_resume_by_seq, qfixture_setup,
						qfixture_teardown),
		cmocka_unit_test_setup_teardown(test_server_retransmit_acked_once, qfixture_setup,
						qfixture_teardown),
		cmocka_unit_test_setup_teardown(test_server_malformed_keeps_connection,
						qfixture_setup, qfixture_teardown),
		cmocka_unit_test_setup_teardown(test_server_unsupported_version, qfixture_setup,
						qfixture_teardown),
		cmocka_unit_test_setup_teardown(test_server_oversized_messages, qfixture_setup,
						qfixture_teardown),
		cmocka_unit_test_setup_teardown(test_server_refuses_bad_updates_whole,
						qfixture_setup, qfixture_teardown),
		cmocka_unit_test_setup_teardown(test_server_slow_consumer_disconnected,
						qfixture_setup, qfixture_teardown),
		cmocka_unit_test_setup_teardown(test_server_quiet_snapshot, qfixture_setup,
						qfixture_teardown),
		cmocka_unit_test_setup_teardown(test_server_quiet_snapshot_off, qfixture_setup,
						qfixture_teardown),
		cmocka_unit_test_setup_teardown(test_server_catchup_smaller_wins, qfixture_setup,
						qfixture_teardown),
		cmocka_unit_test_setup_teardown(test_server_snapshot_when_log_trimmed,
						qfixture_setup, qfixture_teardown),
		cmocka_unit_test_setup_teardown(test_server_idle_unload_and_reload, qfixture_setup,
						qfixture_teardown),
		cmocka_unit_test_setup_teardown(test_server_http_endpoints, qfixture_setup,
						qfixture_teardown),
		cmocka_unit_test_setup_teardown(test_server_sigterm_drains_and_persists,
						qfixture_setup, qfixture_teardown),
		cmocka_unit_test_setup_teardown(test_server_sigkill_keeps_acked_changes,
						qfixture_setup, qfixture_teardown),
		cmocka_unit_test_setup_teardown(test_server_too_many_documents, qfixture_setup,
						qfixture_teardown),
		cmocka_unit_test_setup_teardown(test_server_heartbeat_closes_silent_clients,
						qfixture_setup, qfixture_teardown),
		cmocka_unit_test_setup_teardown(test_server_failed_load_is_unavailable,
						qfixture_setup, qfixture_teardown),
	};
	if (argc > 1)
		cmocka_set_test_filter(argv[1]);
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
