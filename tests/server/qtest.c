/*
 * qtest.c - the server integration tests' helpers (qtest.h): a child
 * quire-server process, a hand-written blocking WebSocket client and HTTP
 * GET over loopback TCP, and the Quire protocol client built on them.
 */
#define _POSIX_C_SOURCE 200809L

#include "qtest.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <sqlite3.h>

#include "store.h"

#ifndef QUIRE_SERVER_BIN
#error "QUIRE_SERVER_BIN must name the quire-server binary"
#endif

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

/* ---- the server process ------------------------------------------------------ */

int qserver_init(qserver *q)
{
	memset(q, 0, sizeof *q);
	q->pid = -1;
	const char *tmp = getenv("TMPDIR");
	snprintf(q->dir, sizeof q->dir, "%s/quire-test-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (mkdtemp(q->dir) == NULL)
		return -1;
	snprintf(q->db, sizeof q->db, "%s/q.db", q->dir);
	snprintf(q->log, sizeof q->log, "%s/server.log", q->dir);
	return 0;
}

static bool wrapped(void)
{
	const char *w = getenv("QUIRE_SERVER_WRAPPER");
	return w != NULL && *w != '\0';
}

static int read_port(const char *log)
{
	FILE *f = fopen(log, "r");
	if (f == NULL)
		return 0;
	char line[1024];
	int port = 0;
	while (port == 0 && fgets(line, sizeof line, f)) {
		const char *p = strstr(line, "listening on 127.0.0.1:");
		if (p != NULL)
			port = atoi(p + strlen("listening on 127.0.0.1:"));
	}
	fclose(f);
	return port;
}

int qserver_start(qserver *q, const char *const *extra)
{
	const char *argv[64];
	int argc = 0;
	char wrapper[512] = "";
	if (wrapped()) {
		snprintf(wrapper, sizeof wrapper, "%s", getenv("QUIRE_SERVER_WRAPPER"));
		for (char *tok = strtok(wrapper, " "); tok && argc < 16; tok = strtok(NULL, " "))
			argv[argc++] = tok;
	}
	argv[argc++] = q->bin ? q->bin : QUIRE_SERVER_BIN;
	argv[argc++] = "--listen";
	argv[argc++] = "127.0.0.1:0";
	argv[argc++] = "--db";
	argv[argc++] = q->db;
	for (size_t i = 0; extra && extra[i] && argc < 62; i++)
		argv[argc++] = extra[i];
	argv[argc] = NULL;

	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		int fd = open(q->log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
			close(fd);
		}
		execvp(argv[0], (char *const *)argv);
		_exit(127);
	}
	q->pid = pid;
	q->start_status = -1;
	int64_t deadline = now_ms() + (wrapped() ? 60000 : 10000);
	q->port = 0;
	while (now_ms() < deadline) {
		int st;
		if (waitpid(pid, &st, WNOHANG) == pid) {
			q->pid = -1;
			q->start_status = WIFEXITED(st)	    ? WEXITSTATUS(st)
					  : WIFSIGNALED(st) ? 128 + WTERMSIG(st)
							    : -1;
			if (getenv("QTEST_QUIET_START_FAILURE") != NULL)
				return -1; /* the test expects it and reads the log */
			fprintf(stderr, "quire-server exited during start:\n");
			qserver_dump_log(q);
			return -1;
		}
		q->port = read_port(q->log);
		if (q->port > 0) {
			int status = 0;
			char body[256];
			if (qhttp_get(q->port, "/healthz", &status, body, sizeof body, 2000) == 0 &&
			    status == 200)
				return 0;
		}
		sleep_ms(20);
	}
	fprintf(stderr, "quire-server did not come up in time:\n");
	qserver_dump_log(q);
	qserver_stop(q, SIGKILL, 2000);
	return -1;
}

int qserver_stop(qserver *q, int sig, int timeout_ms)
{
	if (q->pid <= 0)
		return -1;
	kill(q->pid, sig);
	int64_t deadline = now_ms() + (wrapped() ? timeout_ms * 10 : timeout_ms);
	int st = 0;
	for (;;) {
		pid_t r = waitpid(q->pid, &st, WNOHANG);
		if (r == q->pid)
			break;
		if (now_ms() >= deadline) {
			kill(q->pid, SIGKILL);
			waitpid(q->pid, &st, 0);
			q->pid = -1;
			return -1;
		}
		sleep_ms(10);
	}
	q->pid = -1;
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	if (WIFSIGNALED(st))
		return 128 + WTERMSIG(st);
	return -1;
}

void qserver_dump_log(const qserver *q)
{
	FILE *f = fopen(q->log, "r");
	if (f == NULL)
		return;
	char line[1024];
	while (fgets(line, sizeof line, f))
		fprintf(stderr, "  | %s", line);
	fclose(f);
}

static void remove_tree(const char *path)
{
	struct stat st;
	if (lstat(path, &st) != 0)
		return;
	if (S_ISDIR(st.st_mode)) {
		DIR *d = opendir(path);
		if (d != NULL) {
			struct dirent *e;
			while ((e = readdir(d)) != NULL) {
				if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
					continue;
				char p[1024];
				snprintf(p, sizeof p, "%s/%s", path, e->d_name);
				remove_tree(p);
			}
			closedir(d);
		}
		rmdir(path);
	} else {
		unlink(path);
	}
}

void qserver_cleanup(qserver *q)
{
	if (q->pid > 0)
		qserver_stop(q, SIGKILL, 2000);
	if (getenv("QUIRE_TEST_KEEP") != NULL) {
		fprintf(stderr, "kept %s\n", q->dir);
		return;
	}
	remove_tree(q->dir);
}

bool qserver_log_has(const qserver *q, const char *needle)
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

uint64_t qserver_metric(int port, const char *name, int timeout_ms)
{
	static char body[65536];
	int status = 0;
	if (qhttp_get(port, "/metrics", &status, body, sizeof body, timeout_ms) != 0 ||
	    status != 200)
		return UINT64_MAX;
	char key[160];
	snprintf(key, sizeof key, "\n%s ", name);
	const char *p = strstr(body, key);
	return p ? strtoull(p + strlen(key), NULL, 10) : UINT64_MAX;
}

int qfixture_setup(void **state)
{
	qfixture *f = calloc(1, sizeof *f);
	*state = f;
	return f ? 0 : -1;
}

int qfixture_teardown(void **state)
{
	qfixture *f = *state;
	if (f != NULL) {
		qserver_cleanup(&f->srv);
		free(f);
	}
	return 0;
}

/* ---- sockets ------------------------------------------------------------------------ */

int qtcp_connect(int port, int rcvbuf, int timeout_ms)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		return -1;
	if (rcvbuf > 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
	struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	struct sockaddr_in a;
	memset(&a, 0, sizeof a);
	a.sin_family = AF_INET;
	a.sin_port = htons((uint16_t)port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

int qsend_all(int fd, const void *data, size_t len)
{
	const uint8_t *p = data;
	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Wait for readability up to the deadline. 1 readable, 0 timeout, -1 error. */
static int wait_readable(int fd, int64_t deadline)
{
	for (;;) {
		int64_t left = deadline - now_ms();
		if (left < 0)
			left = 0;
		struct pollfd p = {fd, POLLIN, 0};
		int r = poll(&p, 1, (int)left);
		if (r < 0 && errno == EINTR)
			continue;
		return r < 0 ? -1 : r;
	}
}

size_t qread_until(int fd, char *buf, size_t cap, const char *end, int timeout_ms)
{
	int64_t deadline = now_ms() + timeout_ms;
	size_t got = 0;
	buf[0] = '\0';
	while (got < cap - 1 && strstr(buf, end) == NULL && wait_readable(fd, deadline) > 0) {
		ssize_t k = read(fd, buf + got, cap - 1 - got);
		if (k <= 0)
			break;
		got += (size_t)k;
		buf[got] = '\0';
	}
	return got;
}

int qhttp_get(int port, const char *path, int *status, char *body, size_t cap, int timeout_ms)
{
	return qhttp_get_type(port, path, status, NULL, 0, body, cap, timeout_ms);
}

int qhttp_get_type(int port, const char *path, int *status, char *type, size_t type_cap, char *body,
		   size_t cap, int timeout_ms)
{
	int fd = qtcp_connect(port, 0, timeout_ms);
	if (fd < 0)
		return -1;
	char req[512];
	int n = snprintf(req, sizeof req,
			 "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", path);
	if (qsend_all(fd, req, (size_t)n) != 0) {
		close(fd);
		return -1;
	}
	size_t len = 0, total_cap = 65536;
	char *buf = malloc(total_cap + 1);
	int64_t deadline = now_ms() + timeout_ms;
	int rc = -1;
	while (buf != NULL) {
		int w = wait_readable(fd, deadline);
		if (w <= 0)
			break;
		ssize_t r = recv(fd, buf + len, total_cap - len, 0);
		if (r <= 0) {
			rc = 0;
			break;
		}
		len += (size_t)r;
		buf[len] = '\0';
		/* done when Content-Length bytes of body are in */
		char *hend = strstr(buf, "\r\n\r\n");
		char *cl = strstr(buf, "content-length:");
		if (cl == NULL)
			cl = strstr(buf, "Content-Length:");
		if (hend && cl && cl < hend) {
			size_t want = (size_t)atol(cl + 15);
			if (len >= (size_t)(hend + 4 - buf) + want) {
				rc = 0;
				break;
			}
		}
		if (len == total_cap)
			break;
	}
	close(fd);
	if (rc != 0 || buf == NULL || len < 12) {
		free(buf);
		return -1;
	}
	buf[len] = '\0';
	*status = atoi(buf + 9);
	char *hend = strstr(buf, "\r\n\r\n");
	if (type != NULL && type_cap > 0) {
		type[0] = '\0';
		char *ct = strstr(buf, "content-type: ");
		if (ct == NULL)
			ct = strstr(buf, "Content-Type: ");
		if (ct != NULL && (hend == NULL || ct < hend)) {
			ct += 14;
			size_t n = strcspn(ct, "\r\n");
			snprintf(type, type_cap, "%.*s", (int)n, ct);
		}
	}
	snprintf(body, cap, "%s", hend ? hend + 4 : "");
	free(buf);
	return 0;
}

/* ---- WebSocket client ------------------------------------------------------------------ */

static int grow(uint8_t **p, size_t *cap, size_t need)
{
	if (need <= *cap)
		return 0;
	size_t n = *cap ? *cap : 4096;
	while (n < need)
		n *= 2;
	uint8_t *q = realloc(*p, n);
	if (q == NULL)
		return -1;
	*p = q;
	*cap = n;
	return 0;
}

int ws_connect(ws_client *c, int port, const char *path, const char *protocol, int rcvbuf,
	       int timeout_ms)
{
	return ws_connect_ext(c, port, path, protocol, NULL, rcvbuf, timeout_ms);
}

int ws_connect_ext(ws_client *c, int port, const char *path, const char *protocol,
		   const char *extensions, int rcvbuf, int timeout_ms)
{
	memset(c, 0, sizeof *c);
	c->fd = qtcp_connect(port, rcvbuf, timeout_ms);
	if (c->fd < 0)
		return -1;
	char req[1024];
	int n = snprintf(req, sizeof req,
			 "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
			 "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
			 "Sec-WebSocket-Version: 13\r\n%s%s%s%s%s%s\r\n",
			 path ? path : "/sync", port, protocol ? "Sec-WebSocket-Protocol: " : "",
			 protocol ? protocol : "", protocol ? "\r\n" : "",
			 extensions ? "Sec-WebSocket-Extensions: " : "",
			 extensions ? extensions : "", extensions ? "\r\n" : "");
	if (qsend_all(c->fd, req, (size_t)n) != 0)
		goto fail;
	int64_t deadline = now_ms() + timeout_ms;
	for (;;) {
		if (grow(&c->in, &c->in_cap, c->in_len + 4096) != 0)
			goto fail;
		if (wait_readable(c->fd, deadline) <= 0)
			goto fail;
		ssize_t r = recv(c->fd, c->in + c->in_len, 4096, 0);
		if (r <= 0)
			goto fail;
		c->in_len += (size_t)r;
		uint8_t *end = NULL;
		for (size_t i = 3; i < c->in_len; i++)
			if (memcmp(c->in + i - 3, "\r\n\r\n", 4) == 0) {
				end = c->in + i + 1;
				break;
			}
		if (end == NULL)
			continue;
		if (c->in_len < 12 || memcmp(c->in + 9, "101", 3) != 0)
			goto fail;
		size_t hdr = (size_t)(end - c->in);
		for (size_t i = 0; i + 26 < hdr; i++)
			if (strncasecmp((const char *)c->in + i, "\nsec-websocket-extensions:", 26) == 0) {
				const char *v = (const char *)c->in + i + 26;
				while (*v == ' ')
					v++;
				snprintf(c->extensions, sizeof c->extensions, "%.*s",
					 (int)strcspn(v, "\r\n"), v);
			}
		memmove(c->in, end, c->in_len - hdr);
		c->in_len -= hdr;
		return 0;
	}
fail:
	ws_free(c);
	return -1;
}

/* Encode one masked frame into out (h + len bytes, h <= 14). */
static size_t frame(uint8_t *out, int opcode, bool fin, const void *data, size_t len)
{
	size_t h = 0;
	out[h++] = (uint8_t)((fin ? 0x80 : 0) | (opcode & 0x0f));
	if (len < 126) {
		out[h++] = (uint8_t)(0x80 | len);
	} else if (len < 65536) {
		out[h++] = 0x80 | 126;
		out[h++] = (uint8_t)(len >> 8);
		out[h++] = (uint8_t)len;
	} else {
		out[h++] = 0x80 | 127;
		for (int i = 7; i >= 0; i--)
			out[h++] = (uint8_t)((uint64_t)len >> (8 * i));
	}
	static const uint8_t mask[4] = {0x37, 0xfa, 0x21, 0x3d};
	memcpy(out + h, mask, 4);
	h += 4;
	const uint8_t *src = data;
	for (size_t i = 0; i < len; i++)
		out[h + i] = src[i] ^ mask[i & 3];
	return h + len;
}

int ws_send_frame(ws_client *c, int opcode, bool fin, const void *data, size_t len)
{
	uint8_t *buf = malloc(14 + len);
	if (buf == NULL)
		return -1;
	int rc = qsend_all(c->fd, buf, frame(buf, opcode, fin, data, len));
	free(buf);
	return rc;
}

int ws_send2(ws_client *c, const void *a, size_t alen, const void *b, size_t blen)
{
	uint8_t *buf = malloc(28 + alen + blen);
	if (buf == NULL)
		return -1;
	size_t n = frame(buf, WS_BINARY, true, a, alen);
	n += frame(buf + n, WS_BINARY, true, b, blen);
	int rc = qsend_all(c->fd, buf, n);
	free(buf);
	return rc;
}

int ws_send(ws_client *c, const void *data, size_t len)
{
	return ws_send_frame(c, WS_BINARY, true, data, len);
}

/* Parse one frame from c->in. 1 parsed (fields set, bytes consumed), 0 need
 * more. */
static int parse_frame(ws_client *c, int *opcode, bool *fin, uint8_t **payload, size_t *len)
{
	if (c->in_len < 2)
		return 0;
	const uint8_t *p = c->in;
	size_t h = 2;
	uint64_t n = p[1] & 0x7f;
	bool masked = p[1] & 0x80;
	if (n == 126) {
		if (c->in_len < 4)
			return 0;
		n = ((uint64_t)p[2] << 8) | p[3];
		h = 4;
	} else if (n == 127) {
		if (c->in_len < 10)
			return 0;
		n = 0;
		for (int i = 0; i < 8; i++)
			n = (n << 8) | p[2 + i];
		h = 10;
	}
	uint8_t mask[4] = {0};
	if (masked) {
		if (c->in_len < h + 4)
			return 0;
		memcpy(mask, p + h, 4);
		h += 4;
	}
	if (c->in_len < h + n)
		return 0;
	*opcode = p[0] & 0x0f;
	*fin = p[0] & 0x80;
	*payload = c->in + h;
	*len = (size_t)n;
	if (masked)
		for (size_t i = 0; i < n; i++)
			(*payload)[i] ^= mask[i & 3];
	return 1;
}

static void consume(ws_client *c, uint8_t *payload, size_t len)
{
	size_t used = (size_t)(payload - c->in) + len;
	memmove(c->in, c->in + used, c->in_len - used);
	c->in_len -= used;
}

int ws_recv(ws_client *c, int timeout_ms, const uint8_t **data, size_t *len, int *opcode)
{
	int64_t deadline = now_ms() + timeout_ms;
	if (c->closed)
		return -1;
	for (;;) {
		int op;
		bool fin;
		uint8_t *pl;
		size_t n;
		while (parse_frame(c, &op, &fin, &pl, &n)) {
			if (op == WS_CLOSE) {
				c->closed = true;
				c->close_code = n >= 2 ? (pl[0] << 8 | pl[1]) : 1005;
				if (n > 2)
					snprintf(c->close_reason, sizeof c->close_reason, "%.*s",
						 (int)(n - 2), (const char *)pl + 2);
				consume(c, pl, n);
				return -1;
			}
			if (op == WS_PING) {
				uint8_t tmp[125];
				size_t k = n < sizeof tmp ? n : sizeof tmp;
				memcpy(tmp, pl, k);
				consume(c, pl, n);
				ws_send_frame(c, WS_PONG, true, tmp, k);
				continue;
			}
			if (op == WS_PONG) {
				consume(c, pl, n);
				continue;
			}
			if (op != WS_CONT) {
				c->msg_len = 0;
				c->msg_compressed = (c->in[0] & 0x40) != 0; /* RSV1 */
				c->msg_opcode = op;
				c->in_msg = true;
			}
			if (grow(&c->msg, &c->msg_cap, c->msg_len + n + 1) != 0)
				return -1;
			memcpy(c->msg + c->msg_len, pl, n);
			c->msg_len += n;
			consume(c, pl, n);
			if (fin) {
				c->in_msg = false;
				if (c->msg_compressed && (c->inflate == NULL || c->inflate(c) != 0))
					return -1;
				*data = c->msg;
				*len = c->msg_len;
				*opcode = c->msg_opcode;
				return 1;
			}
		}
		int w = wait_readable(c->fd, deadline);
		if (w == 0)
			return 0;
		if (w < 0)
			return -1;
		if (grow(&c->in, &c->in_cap, c->in_len + 65536) != 0)
			return -1;
		ssize_t r = recv(c->fd, c->in + c->in_len, 65536, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			c->closed = true;
			if (c->close_code == 0)
				c->close_code = 1006;
			return -1;
		}
		c->in_len += (size_t)r;
	}
}

void ws_free(ws_client *c)
{
	if (c->fd > 0)
		close(c->fd);
	c->fd = -1;
	free(c->in);
	free(c->msg);
	c->in = c->msg = NULL;
	c->in_len = c->in_cap = c->msg_len = c->msg_cap = 0;
}

/* ---- Quire protocol client ------------------------------------------------------------------ */

static const wire_limits client_limits = {64u << 20, 1000000, 64u << 20};

int qc_connect(qclient *q, int port, crdt_replica replica)
{
	memset(q, 0, sizeof *q);
	q->replica = replica;
	q->handle = 1;
	q->next_batch = 1;
	q->doc = crdt_doc_new(replica, NULL);
	q->m = wire_server_msg_new(NULL);
	if (q->doc == NULL || q->m == NULL ||
	    ws_connect(&q->ws, port, NULL, "quire.v1", 0, 5000) != 0) {
		crdt_doc_free(q->doc);
		wire_server_msg_free(q->m);
		q->doc = NULL;
		q->m = NULL;
		return -1;
	}
	return 0;
}

int qc_hello(qclient *q, const char *doc_id, uint64_t last_seq, uint32_t version)
{
	wire_hello h;
	memset(&h, 0, sizeof h);
	h.protocol_version = version;
	h.doc_id = doc_id;
	h.doc_id_len = strlen(doc_id);
	h.replica = q->replica;
	h.last_seq = last_seq;
	h.token = "";
	q->out.len = 0;
	if (wire_client_encode_hello(&q->out, q->handle, &h) != WIRE_OK)
		return -1;
	q->last_seq = last_seq;
	return ws_send(&q->ws, q->out.data, q->out.len);
}

int qc_recv(qclient *q, int timeout_ms)
{
	const uint8_t *data;
	size_t len;
	int op;
	int r = ws_recv(&q->ws, timeout_ms, &data, &len, &op);
	if (r <= 0)
		return r;
	if (wire_server_decode(q->m, data, len, &client_limits) != WIRE_OK)
		return -1;
	wire_server_msg *m = q->m;
	if (m->kind == WIRE_SERVER_CHANGES) {
		for (size_t i = 0; i < crdt_batch_count(m->ops); i++) {
			int st = crdt_doc_apply(q->doc, crdt_batch_get(m->ops, i), NULL, NULL);
			if (st < 0) {
				fprintf(stderr, "qc_recv: applying a change failed: %s\n",
					crdt_strerror(st));
				return -1;
			}
		}
		if (m->n_changes > 0)
			q->last_seq = m->seqs[m->n_changes - 1];
	} else if (m->kind == WIRE_SERVER_ACK) {
		if (m->ack.seq > q->last_seq)
			q->last_seq = m->ack.seq;
	} else if (m->kind == WIRE_SERVER_WELCOME && m->welcome.snapshot != NULL) {
		crdt_doc *d = NULL;
		uint64_t seq = 0;
		int cst = 0;
		if (wire_snapshot_decode(m->welcome.snapshot, m->welcome.snapshot_len, NULL,
					 q->replica, NULL, &d, &seq, &cst) != WIRE_OK)
			return -1;
		crdt_doc_free(q->doc);
		q->doc = d;
		q->last_seq = seq;
	}
	return 1;
}

int qc_expect(qclient *q, enum wire_server_kind kind, int timeout_ms)
{
	int64_t deadline = now_ms() + timeout_ms;
	for (;;) {
		int64_t left = deadline - now_ms();
		if (left <= 0)
			return 0;
		int r = qc_recv(q, (int)left);
		if (r <= 0)
			return r;
		if (q->m->kind == kind)
			return 1;
	}
}

int qc_send_ops(qclient *q, uint64_t batch, const crdt_op *ops, size_t n)
{
	q->out.len = 0;
	if (wire_client_encode_update(&q->out, q->handle, batch, ops, n) != WIRE_OK)
		return -1;
	return ws_send(&q->ws, q->out.data, q->out.len);
}

/* Encode batch b as the next Update into out. Returns its client_batch or 0. */
static uint64_t encode_batch(qclient *q, crdt_batch *b, wire_buf *out)
{
	size_t n = crdt_batch_count(b);
	crdt_op *ops = malloc((n ? n : 1) * sizeof *ops);
	if (ops == NULL)
		return 0;
	for (size_t i = 0; i < n; i++)
		ops[i] = *crdt_batch_get(b, i);
	uint64_t batch = q->next_batch++;
	out->len = 0;
	int rc = wire_client_encode_update(out, q->handle, batch, ops, n);
	free(ops);
	return rc == WIRE_OK ? batch : 0;
}

static uint64_t send_batch(qclient *q, crdt_batch *b)
{
	uint64_t batch = encode_batch(q, b, &q->out);
	if (batch == 0 || ws_send(&q->ws, q->out.data, q->out.len) != 0)
		return 0;
	return batch;
}

uint64_t qc_encode_insert(qclient *q, size_t pos, const char *text, wire_buf *out)
{
	crdt_batch *b = crdt_batch_new(NULL);
	uint64_t batch = 0;
	if (b != NULL && crdt_doc_insert(q->doc, pos, text, strlen(text), b) == CRDT_OK)
		batch = encode_batch(q, b, out);
	crdt_batch_free(b);
	return batch;
}

uint64_t qc_insert(qclient *q, size_t pos, const char *text)
{
	crdt_batch *b = crdt_batch_new(NULL);
	uint64_t batch = 0;
	if (b != NULL && crdt_doc_insert(q->doc, pos, text, strlen(text), b) == CRDT_OK)
		batch = send_batch(q, b);
	crdt_batch_free(b);
	return batch;
}

uint64_t qc_delete(qclient *q, size_t pos, size_t len)
{
	crdt_batch *b = crdt_batch_new(NULL);
	uint64_t batch = 0;
	if (b != NULL && crdt_doc_delete(q->doc, pos, len, b) == CRDT_OK)
		batch = send_batch(q, b);
	crdt_batch_free(b);
	return batch;
}

char *qc_text(const qclient *q)
{
	size_t n = crdt_doc_text(q->doc, NULL, 0);
	char *s = malloc(n + 1);
	if (s == NULL)
		return NULL;
	crdt_doc_text(q->doc, s, n);
	s[n] = '\0';
	return s;
}

void qc_free(qclient *q)
{
	ws_free(&q->ws);
	crdt_doc_free(q->doc);
	wire_server_msg_free(q->m);
	wire_buf_free(&q->out);
	q->doc = NULL;
	q->m = NULL;
}

int qdb_exec(const char *db_path, const char *sql)
{
	sqlite3 *db = NULL;
	int rc = sqlite3_open(db_path, &db);
	char *err = NULL;
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(db, sql, NULL, NULL, &err);
	if (rc != SQLITE_OK)
		fprintf(stderr, "qdb_exec: %s\n", err ? err : sqlite3_errmsg(db));
	sqlite3_free(err);
	sqlite3_close(db);
	return rc == SQLITE_OK ? 0 : -1;
}

uint64_t qdb_snapshot_seq(const char *db_path, const char *doc_id)
{
	store *db = NULL;
	char err[256];
	store_doc_info info;
	uint64_t seq = 0;
	if (store_open(db_path, NULL, &db, err, sizeof err) != STORE_OK)
		return 0;
	if (store_doc_info_get(db, doc_id, &info) == STORE_OK)
		seq = info.snapshot_seq;
	store_close(db);
	return seq;
}

char *qdb_text(const char *db_path, const char *doc_id, uint64_t *head)
{
	store *db = NULL;
	char err[256];
	if (store_open(db_path, NULL, &db, err, sizeof err) != STORE_OK) {
		fprintf(stderr, "qdb_text: %s\n", err);
		return NULL;
	}
	store_load_result res;
	char *text = NULL;
	if (store_load(db, doc_id, 7, &res) == STORE_OK) {
		size_t n = crdt_doc_text(res.doc, NULL, 0);
		text = malloc(n + 1);
		if (text != NULL) {
			crdt_doc_text(res.doc, text, n);
			text[n] = '\0';
		}
		if (head)
			*head = res.head_seq;
		crdt_doc_free(res.doc);
	} else {
		fprintf(stderr, "qdb_text: load failed: %s\n", store_errmsg(db));
	}
	store_close(db);
	return text;
}
