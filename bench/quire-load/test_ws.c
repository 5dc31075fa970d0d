/*
 * test_ws.c - CMocka unit tests of quire-load's own protocol pieces:
 * SHA-1 and base64 against FIPS / RFC vectors (including RFC 6455's
 * handshake example), the latency histogram's percentiles, and the
 * WebSocket client (ws.c) against a scripted loopback peer: accept check,
 * a message split into fragments and delivered in pieces, an unfragmented
 * message with a 16-bit length, a ping answered by a pong with the same
 * payload, masking of what the client sends, and the close handshake.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "hist.h"
#include "sha1.h"
#include "ws.h"

static void hex(const uint8_t *d, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", d[i]);
}

static void test_quire_load_sha1_vectors(void **state)
{
	(void)state;
	uint8_t d[20];
	char h[41];
	ql_sha1("abc", 3, d);
	hex(d, 20, h);
	assert_string_equal(h, "a9993e364706816aba3e25717850c26c9cd0d89d");
	ql_sha1("", 0, d);
	hex(d, 20, h);
	assert_string_equal(h, "da39a3ee5e6b4b0d3255bfef95601890afd80709");
	const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"; /* 56 bytes */
	ql_sha1(two, strlen(two), d);
	hex(d, 20, h);
	assert_string_equal(h, "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
	char b[64];
	ql_base64((const uint8_t *)"foobar", 6, b);
	assert_string_equal(b, "Zm9vYmFy");
	ql_base64((const uint8_t *)"fooba", 5, b);
	assert_string_equal(b, "Zm9vYmE=");
	ql_base64((const uint8_t *)"f", 1, b);
	assert_string_equal(b, "Zg==");
	/* RFC 6455 section 1.3 */
	const char *k = "dGhlIHNhbXBsZSBub25jZQ==258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
	ql_sha1(k, strlen(k), d);
	ql_base64(d, 20, b);
	assert_string_equal(b, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

static void test_quire_load_hist_quantiles(void **state)
{
	(void)state;
	ql_hist *h = calloc(1, sizeof *h);
	assert_non_null(h);
	for (uint64_t i = 1; i <= 1000; i++)
		ql_hist_add(h, i); /* exact range */
	assert_int_equal(ql_hist_quantile(h, 0.5), 501);
	assert_int_equal(ql_hist_quantile(h, 0.99), 991);
	ql_hist_add(h, 123456789);
	assert_int_equal(h->max_us, 123456789);
	assert_int_equal(ql_hist_quantile(h, 1.0), 123456789);
	memset(h, 0, sizeof *h);
	for (int i = 0; i < 100; i++)
		ql_hist_add(h, 50000); /* 50 ms */
	uint64_t q = ql_hist_quantile(h, 0.5);
	assert_true(q >= 50000 && q <= 50000 * 1016 / 1000);
	free(h);
}

/* ---- the WebSocket client against a scripted peer ---------------------- */

typedef struct got {
	int opened, closed;
	uint8_t msg[4][70000];
	size_t len[4];
	int n;
} got;

static got *G;

static void on_open(ql_ws *w)
{
	(void)w;
	G->opened++;
	assert_int_equal(ql_ws_send(w, (const uint8_t *)"hello", 5), 0);
}

static void on_message(ql_ws *w, const uint8_t *d, size_t n)
{
	(void)w;
	assert_true(G->n < 4 && n <= sizeof G->msg[0]);
	memcpy(G->msg[G->n], d, n);
	G->len[G->n++] = n;
}

static void on_closed(ql_ws *w)
{
	(void)w;
	G->closed++;
}

static const ql_ws_handler handler = {on_open, on_message, on_closed};

static void pump(ql_ws *w, int ep, int ms)
{
	uint8_t scratch[4096]; /* small, so frames straddle reads */
	struct epoll_event ev[4];
	int n = epoll_wait(ep, ev, 4, ms);
	for (int i = 0; i < n; i++)
		ql_ws_event(ev[i].data.ptr, ev[i].events, scratch, sizeof scratch);
	(void)w;
}

static size_t read_some(int fd, uint8_t *buf, size_t cap, size_t want)
{
	size_t got_n = 0;
	while (got_n < want) {
		ssize_t r = recv(fd, buf + got_n, cap - got_n, 0);
		if (r <= 0)
			break;
		got_n += (size_t)r;
	}
	return got_n;
}

/* One client frame from the peer's side: unmask it. */
static size_t client_frame(const uint8_t *b, size_t n, int *op, uint8_t *out)
{
	assert_true(n >= 6);
	*op = b[0] & 0x0f;
	assert_true(b[1] & 0x80); /* masked */
	size_t len = b[1] & 0x7f, h = 2;
	assert_true(len < 126);
	const uint8_t *k = b + h;
	h += 4;
	assert_true(n >= h + len);
	for (size_t i = 0; i < len; i++)
		out[i] = b[h + i] ^ k[i & 3];
	return len;
}

static void test_quire_load_ws_session(void **state)
{
	(void)state;
	G = calloc(1, sizeof *G);
	assert_non_null(G);
	int ls = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000001)};
	assert_int_equal(bind(ls, (struct sockaddr *)&a, sizeof a), 0);
	assert_int_equal(listen(ls, 1), 0);
	socklen_t al = sizeof a;
	getsockname(ls, (struct sockaddr *)&a, &al);
	int ep = epoll_create1(0);
	ql_ws w;
	memset(&w, 0, sizeof w);
	ql_ws_target t = {0x7f000001, ntohs(a.sin_port), "/sync", "quire.v1"};
	assert_int_equal(ql_ws_connect(&w, ep, &handler, 0, &t, 42), 0);
	int peer = accept(ls, NULL, NULL);
	assert_true(peer >= 0);
	for (int i = 0; i < 10 && w.state == QL_WS_CONNECTING; i++)
		pump(&w, ep, 100);
	uint8_t req[2048];
	size_t n = 0;
	while (n < 4 || memcmp(req + n - 4, "\r\n\r\n", 4) != 0) {
		ssize_t r = recv(peer, req + n, sizeof req - 1 - n, 0);
		assert_true(r > 0);
		n += (size_t)r;
	}
	req[n] = '\0';
	assert_non_null(strstr((char *)req, "GET /sync HTTP/1.1\r\n"));
	assert_non_null(strstr((char *)req, "Sec-WebSocket-Protocol: quire.v1\r\n"));
	char *kp = strstr((char *)req, "Sec-WebSocket-Key: ");
	assert_non_null(kp);
	kp += strlen("Sec-WebSocket-Key: ");
	char cat[128];
	snprintf(cat, sizeof cat, "%.*s258EAFA5-E914-47DA-95CA-C5AB0DC85B11",
		 (int)strcspn(kp, "\r"), kp);
	uint8_t dig[20];
	char acc[32];
	ql_sha1(cat, strlen(cat), dig);
	ql_base64(dig, 20, acc);
	char resp[512];
	int rl = snprintf(resp, sizeof resp,
			  "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
			  "Connection: Upgrade\r\nsec-websocket-accept: %s\r\n"
			  "Sec-WebSocket-Protocol: quire.v1\r\n\r\n",
			  acc);
	/* The answer, then a fragmented message: "ab" + ping + "cd" (final). */
	uint8_t out[80000];
	size_t o = 0;
	memcpy(out, resp, (size_t)rl);
	o += (size_t)rl;
	const uint8_t f1[] = {0x02, 2, 'a', 'b'}, ping[] = {0x89, 3, 'p', 'i', 'n'},
		      f2[] = {0x80, 2, 'c', 'd'};
	memcpy(out + o, f1, sizeof f1);
	o += sizeof f1;
	memcpy(out + o, ping, sizeof ping);
	o += sizeof ping;
	memcpy(out + o, f2, sizeof f2);
	o += sizeof f2;
	/* A 60,000-byte binary message (16-bit length), split across reads. */
	out[o++] = 0x82;
	out[o++] = 126;
	out[o++] = 60000 >> 8;
	out[o++] = 60000 & 255;
	for (int i = 0; i < 60000; i++)
		out[o++] = (uint8_t)(i * 7);
	/* Send in three uneven pieces, pumping between them. */
	size_t cut1 = (size_t)rl + 3, cut2 = o - 30000;
	assert_int_equal(send(peer, out, cut1, 0), (ssize_t)cut1);
	pump(&w, ep, 200);
	assert_int_equal(send(peer, out + cut1, cut2 - cut1, 0), (ssize_t)(cut2 - cut1));
	for (int i = 0; i < 20; i++)
		pump(&w, ep, 20);
	assert_int_equal(send(peer, out + cut2, o - cut2, 0), (ssize_t)(o - cut2));
	for (int i = 0; i < 40 && G->n < 2; i++)
		pump(&w, ep, 20);
	assert_int_equal(G->opened, 1);
	assert_int_equal(G->n, 2);
	assert_int_equal(G->len[0], 4);
	assert_memory_equal(G->msg[0], "abcd", 4);
	assert_int_equal(G->len[1], 60000);
	for (int i = 0; i < 60000; i++)
		assert_int_equal(G->msg[1][i], (uint8_t)(i * 7));
	/* What the client sent: "hello" (binary), then the pong. */
	uint8_t in[256], pl[128];
	size_t got_n = read_some(peer, in, sizeof in, 11 + 9);
	assert_int_equal(got_n, 20);
	int op = 0;
	assert_int_equal(client_frame(in, got_n, &op, pl), 5);
	assert_int_equal(op, 2);
	assert_memory_equal(pl, "hello", 5);
	assert_int_equal(client_frame(in + 11, got_n - 11, &op, pl), 3);
	assert_int_equal(op, 10);
	assert_memory_equal(pl, "pin", 3);
	/* Close 1001: answered with a close frame and reported. */
	const uint8_t cl[] = {0x88, 2, 0x03, 0xe9};
	assert_int_equal(send(peer, cl, sizeof cl, 0), 4);
	for (int i = 0; i < 20 && !G->closed; i++)
		pump(&w, ep, 20);
	assert_int_equal(G->closed, 1);
	assert_int_equal(w.close_code, 1001);
	assert_int_equal(w.state, QL_WS_CLOSED);
	got_n = read_some(peer, in, sizeof in, 8);
	assert_int_equal(got_n, 8);
	assert_int_equal(client_frame(in, got_n, &op, pl), 2);
	assert_int_equal(op, 8);
	assert_int_equal(pl[0] << 8 | pl[1], 1001);
	ql_ws_free(&w);
	close(peer);
	close(ls);
	close(ep);
	free(G);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_quire_load_sha1_vectors),
		cmocka_unit_test(test_quire_load_hist_quantiles),
		cmocka_unit_test(test_quire_load_ws_session),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
