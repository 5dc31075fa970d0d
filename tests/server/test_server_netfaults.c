/*
 * test_server_netfaults.c - quire-server against clients whose network
 * misbehaves, over loopback: each fault is followed by the check that the
 * server keeps serving the others (another client's edit is acked and
 * broadcast, a fresh joiner gets the intact document, SIGTERM exits 0 and
 * the database verifies).
 *  - torn input: half a WebSocket frame, one byte of a frame header, the
 *    first fragment of a message, half an HTTP upgrade, each then closed;
 *  - a client that vanishes while its Welcome catch-up (Changes from the
 *    log) is being sent, and while a Welcome snapshot (the log was trimmed,
 *    or the client is beyond the head) is being sent;
 *  - slowloris: one byte per second during the HTTP upgrade (libwebsockets'
 *    handshake timeout, ~10 s), inside one frame, and as one-byte fragments
 *    of a message while answering pings (both --message-timeout-s, which
 *    counts from the first payload bytes libwebsockets hands over): each is
 *    closed within a bound while an editor keeps editing.
 * A client that never reads is test_server_slow_consumer_disconnected
 * (test_server_integration.c): bounded queue, disconnected, others go on.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <cmocka.h>

#include "qtest.h"

#define T_MS 10000   /* the longest any single expected message may take */

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int setup(void **state)
{
	qfixture *f = calloc(1, sizeof *f);
	*state = f;
	return f != NULL && qserver_init(&f->srv) == 0 ? 0 : -1;
}

#define START(f, ...)                                                  \
	do {                                                           \
		const char *const extra_[] = {__VA_ARGS__, NULL};      \
		assert_int_equal(qserver_start(&(f)->srv, extra_), 0); \
	} while (0)

static void join(qclient *c, int port, crdt_replica r, const char *doc, uint64_t last_seq)
{
	assert_int_equal(qc_connect(c, port, r), 0);
	assert_int_equal(qc_hello(c, doc, last_seq, 0), 0);
	assert_int_equal(qc_expect(c, WIRE_SERVER_WELCOME, T_MS), 1);
}

/* The server still serves: a's edit is acked, b sees it, the texts agree. */
static void still_serving(qclient *a, qclient *b, const char *text)
{
	uint64_t k = qc_insert(a, 0, text);
	assert_true(k > 0);
	assert_int_equal(qc_expect(a, WIRE_SERVER_ACK, T_MS), 1);
	assert_int_equal(a->m->ack.client_batch, k);
	assert_int_equal(qc_expect(b, WIRE_SERVER_CHANGES, T_MS), 1);
	char *ta = qc_text(a), *tb = qc_text(b);
	assert_string_equal(ta, tb);
	free(ta);
	free(tb);
}

/* A fresh client joining from seq 0 gets exactly a's text; then SIGTERM
 * exits 0 and the database verifies. */
static void end_intact(qfixture *f, qclient *a, const char *doc)
{
	qclient n;
	join(&n, f->srv.port, 0x77, doc, 0);
	uint64_t head = n.m->welcome.head_seq;
	while (n.last_seq < head)
		assert_int_equal(qc_recv(&n, T_MS), 1);
	char *ta = qc_text(a), *tn = qc_text(&n);
	assert_string_equal(ta, tn);
	qc_free(&n);
	assert_int_equal(qserver_stop(&f->srv, SIGTERM, 10000), 0);
	uint64_t dbhead = 0;
	char *td = qdb_text(f->srv.db, doc, &dbhead);
	assert_non_null(td);
	assert_int_equal(dbhead, head);
	assert_string_equal(td, ta);
	free(td);
	free(ta);
	free(tn);
#ifdef QUIRE_DUMP_BIN
	char cmd[1024];
	snprintf(cmd, sizeof cmd, "%s --db '%s' verify >/dev/null", QUIRE_DUMP_BIN, f->srv.db);
	assert_int_equal(system(cmd), 0);
#endif
}

/* A plain TCP connection to the server. */
static int tcp_connect(int port)
{
	int fd = qtcp_connect(port, 0, T_MS);
	assert_true(fd >= 0);
	return fd;
}

static void write_all(int fd, const void *p, size_t n)
{
	const uint8_t *b = p;
	while (n > 0) {
		ssize_t w = write(fd, b, n);
		if (w < 0 && errno == EINTR)
			continue;
		assert_true(w > 0);
		b += w;
		n -= (size_t)w;
	}
}

/* A masked client frame of a short payload (< 126 bytes) into out; its
 * length. */
static size_t frame(uint8_t *out, int opcode, bool fin, const uint8_t *data, size_t len)
{
	assert_true(len < 126);
	static const uint8_t mask[4] = {0x12, 0x34, 0x56, 0x78};
	out[0] = (uint8_t)((fin ? 0x80 : 0) | opcode);
	out[1] = (uint8_t)(0x80 | len);
	memcpy(out + 2, mask, 4);
	for (size_t i = 0; i < len; i++)
		out[6 + i] = data[i] ^ mask[i % 4];
	return 6 + len;
}

/* Whether the server closed fd: its data (pings, a close frame, an HTTP
 * error) is read and dropped; EOF or a reset is the close. */
static bool peer_closed(int fd)
{
	for (;;) {
		struct pollfd p = {fd, POLLIN, 0};
		if (poll(&p, 1, 0) <= 0)
			return false;
		uint8_t buf[4096];
		ssize_t r = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
		if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR))
			return true;
		if (r < 0)
			return false;
	}
}

static const char upgrade[] = "GET /sync HTTP/1.1\r\n"
			      "Host: 127.0.0.1\r\n"
			      "Upgrade: websocket\r\n"
			      "Connection: Upgrade\r\n"
			      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
			      "Sec-WebSocket-Version: 13\r\n"
			      "Sec-WebSocket-Protocol: quire.v1\r\n\r\n";

/* ---- torn input ---------------------------------------------------------------------- */

static void test_server_netfault_torn_input(void **state)
{
	qfixture *f = *state;
	START(f, "--log-level", "debug");
	int port = f->srv.port;
	qclient a, b;
	join(&a, port, 0xa1, "doc", 0);
	join(&b, port, 0xb2, "doc", 0);
	still_serving(&a, &b, "start ");

	/* a member sends half of a real Update's frame, then closes */
	qclient x;
	join(&x, port, 0xc3, "doc", 0);
	wire_buf u = {0};
	uint64_t k = qc_encode_insert(&x, 0, "torn", &u);
	assert_true(k > 0 && u.len < 126);
	uint8_t buf[256];
	size_t n = frame(buf, WS_BINARY, true, u.data, u.len);
	write_all(x.ws.fd, buf, n / 2);
	wire_buf_free(&u);
	qc_free(&x);
	still_serving(&a, &b, "1 ");

	/* one byte of a frame header */
	assert_int_equal(qc_connect(&x, port, 0xc4), 0);
	write_all(x.ws.fd, "\x82", 1);
	qc_free(&x);
	still_serving(&b, &a, "2 ");

	/* the first fragment of a message, then nothing more */
	join(&x, port, 0xc5, "doc", 0);
	k = qc_encode_insert(&x, 0, "frag", &u);
	assert_true(k > 0);
	assert_int_equal(ws_send_frame(&x.ws, WS_BINARY, false, u.data, u.len / 2), 0);
	wire_buf_free(&u);
	qc_free(&x);
	still_serving(&a, &b, "3 ");

	/* half of the HTTP upgrade */
	int fd = tcp_connect(port);
	write_all(fd, upgrade, sizeof upgrade / 2);
	close(fd);
	still_serving(&b, &a, "4 ");

	/* a whole frame header announcing 64 KiB, a few bytes of it */
	assert_int_equal(qc_connect(&x, port, 0xc6), 0);
	const uint8_t big[] = {0x82, 0x80 | 126, 0xff, 0xff, 1, 2, 3, 4, 9, 9, 9};
	write_all(x.ws.fd, big, sizeof big);
	qc_free(&x);
	still_serving(&a, &b, "5 ");

	char *t = qc_text(&a);
	assert_string_equal(t, "5 4 3 2 1 start ");
	free(t);
	end_intact(f, &a, "doc");
	qc_free(&a);
	qc_free(&b);
}

/* ---- vanishing in the middle of a Welcome ------------------------------------------------- */

/* a writes `count` inserts of `size` bytes (acked one by one). */
static void grow_doc(qclient *a, int count, size_t size)
{
	char *chunk = malloc(size + 1);
	assert_non_null(chunk);
	for (int i = 0; i < count; i++) {
		memset(chunk, 'a' + i % 26, size);
		chunk[size] = '\0';
		uint64_t k = qc_insert(a, 0, chunk);
		assert_int_equal(qc_expect(a, WIRE_SERVER_ACK, T_MS), 1);
		assert_int_equal(a->m->ack.client_batch, k);
	}
	free(chunk);
}

/* Join with a tiny receive buffer, read a little of the Welcome, wait
 * until the server holds part of it in its send queue (so the close comes
 * in the middle of the server's sending, not after it handed everything
 * to the kernel), close. */
static void vanish_mid_welcome(int port, crdt_replica r, uint64_t last_seq)
{
	qclient x;
	memset(&x, 0, sizeof x);
	assert_int_equal(ws_connect(&x.ws, port, NULL, "quire.v1", 4096, T_MS), 0);
	x.replica = r;
	x.handle = 1;
	x.doc = crdt_doc_new(r, NULL);
	x.m = wire_server_msg_new(NULL);
	assert_int_equal(qc_hello(&x, "doc", last_seq, 0), 0);
	struct pollfd p = {x.ws.fd, POLLIN, 0};
	assert_int_equal(poll(&p, 1, T_MS), 1);
	uint8_t buf[1024];
	assert_true(recv(x.ws.fd, buf, sizeof buf, 0) > 0);
	int64_t deadline = now_ms() + T_MS;
	uint64_t queued = 0;
	while (queued == 0 && now_ms() < deadline) {
		queued = qserver_metric(port, "quire_send_queue_bytes", T_MS);
		assert_true(queued != UINT64_MAX);
	}
	if (queued == 0)
		fprintf(stderr,
			"vanish_mid_welcome: nothing queued (last_seq %llu, bytes_out %llu)\n",
			(unsigned long long)last_seq,
			(unsigned long long)qserver_metric(port, "quire_bytes_out_total", T_MS));
	assert_true(queued > 0);
	qc_free(&x);
}

/* The vanished clients' queues are freed: nothing stays queued. */
static void queues_drain(int port)
{
	int64_t deadline = now_ms() + T_MS;
	uint64_t q;
	while ((q = qserver_metric(port, "quire_send_queue_bytes", T_MS)) != 0 &&
	       now_ms() < deadline) {
		struct timespec ts = {0, 20 * 1000000L};
		nanosleep(&ts, NULL);
	}
	assert_int_equal(q, 0);
}

/* a and b joined to "doc", which a grows to 5 MB of Changes (under the
 * 8 MiB queue: more than the kernel's socket buffers take, so the server
 * is still sending when a newcomer vanishes); b has caught up. */
static void two_members_5mb(int port, qclient *a, qclient *b)
{
	join(a, port, 0xa1, "doc", 0);
	join(b, port, 0xb2, "doc", 0);
	grow_doc(a, 10, 500000);
	while (b->last_seq < a->last_seq)
		assert_int_equal(qc_recv(b, T_MS), 1);
}

/* The end of those cases: queues drained, the document intact, a and b
 * freed. */
static void members_done(qfixture *f, int port, qclient *a, qclient *b)
{
	queues_drain(port);
	end_intact(f, a, "doc");
	qc_free(a);
	qc_free(b);
}

static void test_server_netfault_vanish_mid_catchup(void **state)
{
	qfixture *f = *state;
	START(f, "--log-level", "info");
	int port = f->srv.port;
	qclient a, b;
	two_members_5mb(port, &a, &b);
	for (int i = 0; i < 3; i++) {
		vanish_mid_welcome(port, 0xc0 + (crdt_replica)i, 0);
		still_serving(&a, &b, "x");
	}
	members_done(f, port, &a, &b);
}

static void test_server_netfault_vanish_mid_snapshot(void **state)
{
	qfixture *f = *state;
	START(f, "--snapshot-every", "4", "--keep-changes", "1", "--log-level", "info");
	int port = f->srv.port;
	qclient a, b;
	two_members_5mb(port, &a, &b);
	/* seq 1 is trimmed: the Welcome carries the 5 MB snapshot */
	vanish_mid_welcome(port, 0xc1, 1);
	still_serving(&a, &b, "y");
	/* beyond the head: a snapshot too */
	vanish_mid_welcome(port, 0xc2, 999);
	still_serving(&b, &a, "z");
	vanish_mid_welcome(port, 0xc3, 1);
	still_serving(&a, &b, "w");
	members_done(f, port, &a, &b);
}

/* ---- slowloris ------------------------------------------------------------------------------ */

static void test_server_netfault_slowloris(void **state)
{
	qfixture *f = *state;
	/* a message, once its first bytes arrived, must be whole within 2 s;
	 * the heartbeat stays at its 60 s default, so it is not what closes
	 * the slow clients here */
	START(f, "--message-timeout-s", "2", "--log-level", "debug");
	int port = f->srv.port;
	qclient a, b;
	join(&a, port, 0xa1, "doc", 0);
	join(&b, port, 0xb2, "doc", 0);

	/* 1: the upgrade, one byte per second */
	int up = tcp_connect(port);
	size_t up_sent = 0;
	/* 2: inside one frame of 100 bytes, one byte per second */
	qclient fr;
	assert_int_equal(qc_connect(&fr, port, 0xc3), 0);
	const uint8_t hdr[] = {0x82, 0x80 | 100, 1, 2, 3, 4};
	write_all(fr.ws.fd, hdr, sizeof hdr);
	/* 3: one-byte fragments, one per second, answering pings between */
	qclient fg;
	join(&fg, port, 0xc4, "doc", 0);
	assert_int_equal(ws_send_frame(&fg.ws, WS_BINARY, false, "\x0a", 1), 0);

	int64_t t0 = now_ms(), last_byte = t0;
	int64_t up_closed = 0, fr_closed = 0, fg_closed = 0;
	int edits = 0;
	while ((!up_closed || !fr_closed || !fg_closed) && now_ms() - t0 < 20000) {
		int64_t t = now_ms();
		bool tick = t - last_byte >= 1000;
		if (tick)
			last_byte = t;
		if (!up_closed) {
			if (peer_closed(up))
				up_closed = t;
			else if (tick && up_sent < sizeof upgrade - 1)
				write_all(up, upgrade + up_sent++, 1);
		}
		if (!fr_closed) {
			if (peer_closed(fr.ws.fd))
				fr_closed = t;
			else if (tick && write(fr.ws.fd, "x", 1) != 1)
				fr_closed = t;
		}
		if (!fg_closed) {
			const uint8_t *data;
			size_t len;
			int op;
			int r = ws_recv(&fg.ws, 0, &data, &len, &op); /* answers pings */
			if (r < 0)
				fg_closed = t;
			else if (tick && ws_send_frame(&fg.ws, WS_CONT, false, "\x00", 1) != 0)
				fg_closed = t;
		}
		/* meanwhile an editor edits and the other member follows */
		if (tick) {
			still_serving(&a, &b, "e");
			edits++;
		} else {
			struct timespec ts = {0, 50 * 1000000L};
			nanosleep(&ts, NULL);
			assert_true(qc_recv(&a, 0) >= 0); /* answer the server's pings */
			assert_true(qc_recv(&b, 0) >= 0);
		}
	}
	fprintf(stderr,
		"slowloris: upgrade closed after %lld ms, frame after %lld ms, "
		"fragments after %lld ms; %d edits meanwhile\n",
		(long long)(up_closed - t0), (long long)(fr_closed - t0),
		(long long)(fg_closed - t0), edits);
	if (!up_closed || !fr_closed || !fg_closed)
		qserver_dump_log(&f->srv);
	assert_true(up_closed > 0 && up_closed - t0 <= 15000); /* lws: ~10 s */
	/* message timeout: 2 s after the first payload byte (at 1 s) */
	assert_true(fr_closed > 0 && fr_closed - t0 <= 6000);
	assert_true(fg_closed > 0 && fg_closed - t0 <= 5000);
	assert_true(edits >= 3);
	close(up);
	qc_free(&fr);
	qc_free(&fg);
	end_intact(f, &a, "doc");
	qc_free(&a);
	qc_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_server_netfault_torn_input, setup,
						qfixture_teardown),
		cmocka_unit_test_setup_teardown(test_server_netfault_vanish_mid_catchup, setup,
						qfixture_teardown),
		cmocka_unit_test_setup_teardown(test_server_netfault_vanish_mid_snapshot, setup,
						qfixture_teardown),
		cmocka_unit_test_setup_teardown(test_server_netfault_slowloris, setup,
						qfixture_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
