/*
 * test_server_limits.c - the limits of quota.h against the real
 * quire-server over 127.0.0.1: a message flood answered with RATE_LIMITED
 * (handle and client_batch kept) while another client of the same
 * document is unaffected, and recovery after the bucket refills; a flood
 * far over the limit closed with 1008; the byte-rate limit; connections per
 * address refused with HTTP 429 until one closes; a document that would
 * grow past --max-doc-bytes refused with TOO_LARGE (deletes still pass).
 * Each checks its quire_refusals_total{kind} counter.
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

#include "sectest.h"

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

static void join(qclient *c, int port, crdt_replica r, const char *doc)
{
	assert_int_equal(qc_connect(c, port, r), 0);
	assert_int_equal(qc_hello(c, doc, 0, 0), 0);
	assert_int_equal(qc_expect(c, WIRE_SERVER_WELCOME, T_MS), 1);
}

/* Send n Pings (nonces 1..n) back to back: the server reads them in a
 * burst. */
static void send_pings(qclient *c, int n)
{
	wire_buf one = {0};
	for (int i = 1; i <= n; i++) {
		one.len = 0;
		assert_int_equal(wire_client_encode_ping(&one, 1, (uint64_t)i), WIRE_OK);
		assert_int_equal(ws_send(&c->ws, one.data, one.len), 0);
	}
	wire_buf_free(&one);
}

static void test_server_limits_message_rate(void **state)
{
	qfixture *f = *state;
	START(f, "--max-msgs-per-s", "10", "--rate-burst-s", "1");
	int port = f->srv.port;
	qclient a, b;
	join(&a, port, 0xa1, "doc"); /* the Hello took one token */
	join(&b, port, 0xb2, "doc");
	send_pings(&a, 30); /* 9 pass, 21 refused: under 4 x 10, no close */
	int pongs = 0, limited = 0;
	while (pongs + limited < 30) {
		int r = qc_recv(&a, T_MS);
		assert_int_equal(r, 1);
		if (a.m->kind == WIRE_SERVER_PONG) {
			pongs++;
		} else {
			assert_int_equal(a.m->kind, WIRE_SERVER_ERROR);
			assert_int_equal(a.m->error.code, WIRE_ERR_RATE_LIMITED);
			assert_int_equal(a.m->doc, 1); /* addressed to the Ping's handle */
			limited++;
		}
	}
	/* 9, plus what refills while the server reads them (a slow machine) */
	assert_true(pongs >= 9 && pongs <= 19);
	assert_true(limited >= 11);
	assert_false(a.ws.closed);
	/* the other client of the same document is unaffected, and A still
	 * receives */
	uint64_t bb = qc_insert(&b, 0, "from b");
	assert_int_equal(qc_expect(&b, WIRE_SERVER_ACK, T_MS), 1);
	assert_int_equal(b.m->ack.client_batch, bb);
	assert_int_equal(qc_expect(&a, WIRE_SERVER_CHANGES, T_MS), 1);
	/* an Update refused for the rate keeps its client_batch */
	send_pings(&a, 12);
	uint64_t ab = qc_insert(&a, 0, "x");
	uint64_t seen_batch = 0;
	for (int i = 0; i < 13 && seen_batch == 0; i++) {
		assert_int_equal(qc_recv(&a, T_MS), 1);
		if (a.m->kind == WIRE_SERVER_ERROR && a.m->error.client_batch != 0)
			seen_batch = a.m->error.client_batch;
	}
	assert_int_equal(seen_batch, ab);
	/* after a second the bucket has refilled */
	sleep_ms(1100);
	while (qc_recv(&a, 100) == 1)
		;
	send_pings(&a, 1);
	assert_int_equal(qc_expect(&a, WIRE_SERVER_PONG, T_MS), 1);
	uint64_t refused = metric(port, "quire_refusals_total{kind=\"rate_messages\"}");
	assert_true(refused >= (uint64_t)limited + 1 && refused != UINT64_MAX);
	assert_int_equal(metric(port, "quire_connections_closed_total{reason=\"rate_limited\"}"),
			 0);
	qc_free(&a);
	qc_free(&b);
	assert_int_equal(qserver_stop(&f->srv, SIGTERM, 5000), 0);
}

static void test_server_limits_flood_closes(void **state)
{
	qfixture *f = *state;
	START(f, "--max-msgs-per-s", "10", "--rate-burst-s", "1");
	int port = f->srv.port;
	qclient a, b;
	join(&a, port, 0xa1, "doc");
	join(&b, port, 0xb2, "doc");
	/* > 4 x 10 refused within a second; the server may close before the
	 * last ones are written */
	wire_buf ping = {0};
	assert_int_equal(wire_client_encode_ping(&ping, 1, 7), WIRE_OK);
	int sent = 0;
	while (sent < 200 && ws_send(&a.ws, ping.data, ping.len) == 0)
		sent++;
	wire_buf_free(&ping);
	assert_true(sent > 50);
	int r;
	do
		r = qc_recv(&a, T_MS);
	while (r == 1);
	assert_int_equal(r, -1);
	assert_true(a.ws.closed);
	assert_int_equal(a.ws.close_code, 1008);
	assert_string_equal(a.ws.close_reason, "rate limit exceeded");
	/* B goes on */
	uint64_t bb = qc_insert(&b, 0, "still here");
	assert_int_equal(qc_expect(&b, WIRE_SERVER_ACK, T_MS), 1);
	assert_int_equal(b.m->ack.client_batch, bb);
	qc_free(&a);
	/* counted once lws has finished the close */
	uint64_t closed = 0;
	for (int i = 0; i < 100 && closed != 1; i++) {
		closed = metric(port, "quire_connections_closed_total{reason=\"rate_limited\"}");
		if (closed != 1)
			sleep_ms(50);
	}
	assert_int_equal(closed, 1);
	qc_free(&b);
	assert_int_equal(qserver_stop(&f->srv, SIGTERM, 5000), 0);
}

static void test_server_limits_byte_rate(void **state)
{
	qfixture *f = *state;
	START(f, "--max-bytes-per-s", "4K", "--rate-burst-s", "1", "--max-msgs-per-s", "0");
	int port = f->srv.port;
	qclient a;
	join(&a, port, 0xa1, "doc");
	static char text[3001];
	memset(text, 'x', 3000);
	/* 4096 bytes of allowance: the first 3000-byte Update passes, the
	 * second too (it borrows), the third is refused */
	uint64_t b1 = qc_insert(&a, 0, text);
	assert_int_equal(qc_expect(&a, WIRE_SERVER_ACK, T_MS), 1);
	assert_int_equal(a.m->ack.client_batch, b1);
	uint64_t b2 = qc_insert(&a, 0, text);
	assert_int_equal(qc_expect(&a, WIRE_SERVER_ACK, T_MS), 1);
	assert_int_equal(a.m->ack.client_batch, b2);
	uint64_t b3 = qc_insert(&a, 0, text);
	expect_error(&a, WIRE_ERR_RATE_LIMITED);
	assert_int_equal(a.m->error.client_batch, b3);
	assert_int_equal(metric(port, "quire_refusals_total{kind=\"rate_bytes\"}"), 1);
	/* resent unchanged after the allowance recovers: accepted */
	sleep_ms(1500);
	assert_int_equal(ws_send(&a.ws, a.out.data, a.out.len), 0);
	assert_int_equal(qc_expect(&a, WIRE_SERVER_ACK, T_MS), 1);
	assert_int_equal(a.m->ack.client_batch, b3);
	qc_free(&a);
	assert_int_equal(qserver_stop(&f->srv, SIGTERM, 5000), 0);
}

static void test_server_limits_conns_per_ip(void **state)
{
	qfixture *f = *state;
	START(f, "--max-conns-per-ip", "2");
	int port = f->srv.port;
	qclient a, b, c;
	join(&a, port, 0xa1, "doc");
	join(&b, port, 0xb2, "doc");
	assert_int_equal(raw_upgrade(port, NULL, NULL, 0), 429);
	assert_int_equal(qc_connect(&c, port, 0xc3), -1);
	assert_int_equal(metric(port, "quire_refusals_total{kind=\"conns_per_ip\"}"), 2);
	/* HTTP is not counted */
	static char body[256];
	int status = 0;
	assert_int_equal(qhttp_get(port, "/healthz", &status, body, sizeof body, T_MS), 0);
	assert_int_equal(status, 200);
	/* the existing ones work */
	qc_insert(&a, 0, "a");
	assert_int_equal(qc_expect(&b, WIRE_SERVER_CHANGES, T_MS), 1);
	/* one leaves: a new one is accepted (once the server saw the close) */
	qc_free(&a);
	int st = 0;
	for (int i = 0; i < 50 && st != 101; i++) {
		st = raw_upgrade(port, NULL, NULL, 0);
		if (st != 101)
			sleep_ms(50);
	}
	assert_int_equal(st, 101);
	qc_free(&b);
	assert_int_equal(qserver_stop(&f->srv, SIGTERM, 5000), 0);
}

static void test_server_limits_document_size(void **state)
{
	qfixture *f = *state;
	START(f, "--max-doc-bytes", "1K");
	int port = f->srv.port;
	qclient a, b;
	join(&a, port, 0xa1, "big");
	join(&b, port, 0xb2, "big");
	static char text[901];
	memset(text, 'y', 900);
	uint64_t b1 = qc_insert(&a, 0, text);
	assert_int_equal(qc_expect(&a, WIRE_SERVER_ACK, T_MS), 1);
	assert_int_equal(a.m->ack.client_batch, b1);
	assert_int_equal(qc_expect(&b, WIRE_SERVER_CHANGES, T_MS), 1);
	/* 900 + 200 > 1024: refused whole, with its batch; B sees nothing */
	static char more[201];
	memset(more, 'z', 200);
	uint64_t b2 = qc_insert(&a, 900, more);
	expect_error(&a, WIRE_ERR_TOO_LARGE);
	assert_int_equal(a.m->error.client_batch, b2);
	expect_quiet(&b);
	assert_int_equal(metric(port, "quire_refusals_total{kind=\"doc_bytes\"}"), 1);
	/* what still fits passes; deletes always pass */
	uint64_t b3 = qc_insert(&b, 0, "fits");
	assert_int_equal(qc_expect(&b, WIRE_SERVER_ACK, T_MS), 1);
	assert_int_equal(b.m->ack.client_batch, b3);
	uint64_t b4 = qc_delete(&b, 0, 100);
	assert_int_equal(qc_expect(&b, WIRE_SERVER_ACK, T_MS), 1);
	assert_int_equal(b.m->ack.client_batch, b4);
	qc_free(&a);
	qc_free(&b);
	assert_int_equal(qserver_stop(&f->srv, SIGTERM, 5000), 0);
	uint64_t head = 0;
	char *t = qdb_text(f->srv.db, "big", &head);
	assert_non_null(t);
	assert_int_equal(strlen(t), 804);
	assert_int_equal(head, 3);
	free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_server_limits_message_rate, qfixture_setup,
						qfixture_teardown),
		cmocka_unit_test_setup_teardown(test_server_limits_flood_closes, qfixture_setup,
						qfixture_teardown),
		cmocka_unit_test_setup_teardown(test_server_limits_byte_rate, qfixture_setup,
						qfixture_teardown),
		cmocka_unit_test_setup_teardown(test_server_limits_conns_per_ip, qfixture_setup,
						qfixture_teardown),
		cmocka_unit_test_setup_teardown(test_server_limits_document_size, qfixture_setup,
						qfixture_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
