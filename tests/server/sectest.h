/*
 * sectest.h - CMocka helpers shared by the server tests
 * (test_server_auth.c, test_server_limits.c, test_server_integration.c,
 * test_server_coalesce.c, test_server_storage_faults.c): start a server
 * with flags, join a document, expect an Ack, a given Error or silence,
 * compare a client's text, read a metric, join with a token, and a raw
 * WebSocket upgrade that can send an Origin header and report the HTTP
 * status (qtest.h's ws_connect cannot). Static functions, CMocka asserts,
 * every wait bounded by T_MS (or QUIET_MS for silence).
 */
#ifndef QUIRE_SECTEST_H
#define QUIRE_SECTEST_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "qtest.h"

#define T_MS 5000    /* the longest any single expected message may take */
#define QUIET_MS 300 /* "nothing else arrives" */

/* Start the server with these extra flags (NULL-terminated) or fail. */
#define START(f, ...)                                                  \
	do {                                                           \
		const char *const extra_[] = {__VA_ARGS__, NULL};      \
		assert_int_equal(qserver_init(&(f)->srv), 0);          \
		assert_int_equal(qserver_start(&(f)->srv, extra_), 0); \
	} while (0)

/* Connect as replica r, Hello for doc at last_seq, wait for the Welcome. */
static inline void join_at(qclient *c, int port, crdt_replica r, const char *doc, uint64_t last_seq)
{
	assert_int_equal(qc_connect(c, port, r), 0);
	assert_int_equal(qc_hello(c, doc, last_seq, 0), 0);
	assert_int_equal(qc_expect(c, WIRE_SERVER_WELCOME, T_MS), 1);
}

/* The client's document text is exactly want. */
static inline void assert_text(const qclient *c, const char *want)
{
	char *t = qc_text(c);
	assert_non_null(t);
	assert_string_equal(t, want);
	free(t);
}

/* The next message is Ack{batch, seq}. */
static inline void expect_ack(qclient *c, uint64_t batch, uint64_t seq)
{
	assert_int_equal(qc_recv(c, T_MS), 1);
	assert_int_equal(c->m->kind, WIRE_SERVER_ACK);
	assert_int_equal(c->m->ack.client_batch, batch);
	assert_int_equal(c->m->ack.seq, seq);
}

/* Hello for doc_id on q's handle with a token. 0 or -1. */
static inline int hello_token(qclient *q, const char *doc_id, const char *token)
{
	wire_hello h;
	memset(&h, 0, sizeof h);
	h.doc_id = doc_id;
	h.doc_id_len = strlen(doc_id);
	h.replica = q->replica;
	h.token = token ? token : "";
	h.token_len = token ? strlen(token) : 0;
	q->out.len = 0;
	if (wire_client_encode_hello(&q->out, q->handle, &h) != WIRE_OK)
		return -1;
	return ws_send(&q->ws, q->out.data, q->out.len);
}

/* The next message is Error `code`. */
static inline void expect_error(qclient *c, int code)
{
	assert_int_equal(qc_recv(c, T_MS), 1);
	if (c->m->kind != WIRE_SERVER_ERROR || c->m->error.code != code)
		fail_msg("wanted Error %s, got kind %d code %d (%.*s)", wire_error_code_name(code),
			 c->m->kind, c->m->error.code, (int)c->m->error.message_len,
			 c->m->error.message ? c->m->error.message : "");
}

/* Nothing arrives within QUIET_MS. */
static inline void expect_quiet(qclient *c)
{
	int r = qc_recv(c, QUIET_MS);
	if (r != 0)
		fail_msg("expected silence, got %s (kind %d)", r > 0 ? "a message" : "a close",
			 r > 0 ? (int)c->m->kind : -1);
}

/* The value of a metric line "name value" (name with its labels), or
 * UINT64_MAX. */
static inline uint64_t metric(int port, const char *name)
{
	return qserver_metric(port, name, T_MS);
}

/*
 * A WebSocket upgrade at /sync with subprotocol quire.v1 and, when origin
 * is not NULL, an Origin header. Returns the HTTP status (101, 403, 429...)
 * or -1 (no answer: the server hung up). On 101 with q != NULL, q becomes a
 * protocol client (as qc_connect makes) for replica r on that socket;
 * otherwise the socket is closed.
 */
static inline int raw_upgrade(int port, const char *origin, qclient *q, crdt_replica r)
{
	int fd = qtcp_connect(port, 0, T_MS);
	if (fd < 0)
		return -1;
	char req[1024];
	int n = snprintf(req, sizeof req,
			 "GET /sync HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
			 "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
			 "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: quire.v1\r\n"
			 "%s%s%s\r\n",
			 port, origin ? "Origin: " : "", origin ? origin : "",
			 origin ? "\r\n" : "");
	if (write(fd, req, (size_t)n) != n) {
		close(fd);
		return -1;
	}
	char resp[4096];
	size_t got = qread_until(fd, resp, sizeof resp, "\r\n\r\n", T_MS);
	int status = -1;
	if (got >= 12 && strncmp(resp, "HTTP/1.", 7) == 0) /* lws refuses with 1.0 */
		status = atoi(resp + 9);
	if (status != 101 || q == NULL) {
		close(fd);
		return status;
	}
	memset(q, 0, sizeof *q);
	q->replica = r;
	q->handle = 1;
	q->next_batch = 1;
	q->doc = crdt_doc_new(r, NULL);
	q->m = wire_server_msg_new(NULL);
	q->ws.fd = fd;
	char *end = strstr(resp, "\r\n\r\n") + 4;
	size_t extra = got - (size_t)(end - resp);
	if (extra > 0) { /* the server spoke first (it does not): keep the bytes */
		q->ws.in = malloc(extra);
		memcpy(q->ws.in, end, extra);
		q->ws.in_len = q->ws.in_cap = extra;
	}
	return status;
}

#endif /* QUIRE_SECTEST_H */
