/*
 * sectest.h - helpers shared by the security and limits tests
 * (test_server_auth.c, test_server_limits.c): start a server with flags,
 * join with a token, expect a given Error, read a metric, and a raw
 * WebSocket upgrade that can send an Origin header and report the HTTP
 * status (qtest.h's ws_connect cannot). Static functions, CMocka asserts.
 */
#ifndef QUIRE_SECTEST_H
#define QUIRE_SECTEST_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "qtest.h"

#define T_MS 5000    /* the longest any single expected message may take */
#define QUIET_MS 300 /* "nothing else arrives" */

typedef struct fixture {
	qserver srv;
} fixture;

static inline int setup(void **state)
{
	fixture *f = calloc(1, sizeof *f);
	*state = f;
	return f ? 0 : -1;
}

static inline int teardown(void **state)
{
	fixture *f = *state;
	if (f != NULL) {
		qserver_cleanup(&f->srv);
		free(f);
	}
	return 0;
}

/* Start the server with these extra flags (NULL-terminated) or fail. */
#define START(f, ...)                                                  \
	do {                                                           \
		const char *const extra_[] = {__VA_ARGS__, NULL};      \
		assert_int_equal(qserver_init(&(f)->srv), 0);          \
		assert_int_equal(qserver_start(&(f)->srv, extra_), 0); \
	} while (0)

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

static inline void expect_error(qclient *c, int code)
{
	assert_int_equal(qc_recv(c, T_MS), 1);
	if (c->m->kind != WIRE_SERVER_ERROR || c->m->error.code != code)
		fail_msg("wanted Error %s, got kind %d code %d (%.*s)", wire_error_code_name(code),
			 c->m->kind, c->m->error.code, (int)c->m->error.message_len,
			 c->m->error.message ? c->m->error.message : "");
}

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
	static char body[65536];
	int status = 0;
	if (qhttp_get(port, "/metrics", &status, body, sizeof body, T_MS) != 0 || status != 200)
		return UINT64_MAX;
	char key[160];
	snprintf(key, sizeof key, "\n%s ", name);
	const char *p = strstr(body, key);
	return p ? strtoull(p + strlen(key), NULL, 10) : UINT64_MAX;
}

/* Whether the server's log contains `needle`. */
static inline bool log_has(const qserver *q, const char *needle)
{
	FILE *fp = fopen(q->log, "r");
	if (fp == NULL)
		return false;
	char line[2048];
	bool found = false;
	while (!found && fgets(line, sizeof line, fp))
		found = strstr(line, needle) != NULL;
	fclose(fp);
	return found;
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
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		return -1;
	struct sockaddr_in sa;
	memset(&sa, 0, sizeof sa);
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
		close(fd);
		return -1;
	}
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
	size_t got = 0;
	for (int waited = 0; waited < T_MS;) {
		struct pollfd p = {fd, POLLIN, 0};
		int pr = poll(&p, 1, 100);
		waited += 100;
		if (pr <= 0)
			continue;
		ssize_t k = read(fd, resp + got, sizeof resp - 1 - got);
		if (k <= 0)
			break;
		got += (size_t)k;
		resp[got] = '\0';
		if (strstr(resp, "\r\n\r\n") != NULL)
			break;
	}
	resp[got] = '\0';
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
