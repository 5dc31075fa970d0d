/*
 * ws.c - the non-blocking WebSocket client connection (ws.h).
 *
 * Input path: one recv into the loop's scratch buffer per readable event
 * (level-triggered, so a busy connection cannot starve the others); frames
 * that are complete in the scratch buffer are delivered from it, only a
 * trailing partial frame is copied into the connection's own buffer.
 * Output path: frames are appended to an output buffer and written at once;
 * EPOLLOUT is armed only while something is left.
 */
#define _GNU_SOURCE
#include "ws.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sha1.h"

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

#define MAX_MESSAGE (32u << 20) /* above the server's 16 MiB snapshot limit */
#define MAX_HEADER 8192

static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

static uint64_t next_rand(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*s = x;
	return x;
}

static int reserve(uint8_t **p, uint32_t *cap, size_t need)
{
	if (need <= *cap)
		return 0;
	if (need > MAX_MESSAGE + 64)
		return -1;
	size_t n = *cap ? *cap : 512;
	while (n < need)
		n *= 2;
	uint8_t *q = realloc(*p, n);
	if (q == NULL)
		return -1;
	*p = q;
	*cap = (uint32_t)n;
	return 0;
}

static void arm(ql_ws *w, bool out)
{
	if (w->armed_out == out)
		return;
	struct epoll_event ev = {.events = EPOLLIN | (out ? EPOLLOUT : 0), .data.ptr = w};
	epoll_ctl(w->epfd, EPOLL_CTL_MOD, w->fd, &ev);
	w->armed_out = out;
}

static void shut(ql_ws *w, int code, const char *why)
{
	if (w->state == QL_WS_CLOSED || w->state == QL_WS_IDLE)
		return;
	if (w->fd >= 0) {
		epoll_ctl(w->epfd, EPOLL_CTL_DEL, w->fd, NULL);
		close(w->fd);
	}
	w->fd = -1;
	w->state = QL_WS_CLOSED;
	w->close_code = code;
	snprintf(w->why, sizeof w->why, "%s", why);
}

static void fail(ql_ws *w, int code, const char *why)
{
	if (w->state == QL_WS_CLOSED)
		return;
	shut(w, code, why);
	if (w->h->closed)
		w->h->closed(w);
}

void ql_ws_abort(ql_ws *w) { shut(w, 1000, "aborted by us"); }

void ql_ws_free(ql_ws *w)
{
	ql_ws_abort(w);
	free(w->in);
	free(w->msg);
	free(w->out);
	w->in = w->msg = w->out = NULL;
	w->in_cap = w->msg_cap = w->out_cap = 0;
	w->in_len = w->msg_len = w->out_len = w->out_off = 0;
}

static void flush(ql_ws *w)
{
	while (w->out_off < w->out_len) {
		ssize_t r = send(w->fd, w->out + w->out_off, w->out_len - w->out_off, MSG_NOSIGNAL);
		if (r > 0) {
			w->out_off += (uint32_t)r;
			continue;
		}
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			arm(w, true);
			return;
		}
		if (r < 0 && errno == EINTR)
			continue;
		fail(w, 1006, "send failed");
		return;
	}
	w->out_off = w->out_len = 0;
	if (w->state != QL_WS_CONNECTING)
		arm(w, false);
}

/* Append one masked frame. */
static int frame(ql_ws *w, int opcode, const uint8_t *data, size_t len)
{
	if (w->out_off > 0 && w->out_off == w->out_len)
		w->out_off = w->out_len = 0;
	if (w->out_off > 65536 && w->out_off * 2 > w->out_len) {
		memmove(w->out, w->out + w->out_off, w->out_len - w->out_off);
		w->out_len -= w->out_off;
		w->out_off = 0;
	}
	if (reserve(&w->out, &w->out_cap, (size_t)w->out_len + len + 14) != 0)
		return -1;
	uint8_t *p = w->out + w->out_len;
	size_t h = 0;
	p[h++] = (uint8_t)(0x80 | opcode);
	if (len < 126) {
		p[h++] = (uint8_t)(0x80 | len);
	} else if (len < 65536) {
		p[h++] = 0x80 | 126;
		p[h++] = (uint8_t)(len >> 8);
		p[h++] = (uint8_t)len;
	} else {
		p[h++] = 0x80 | 127;
		for (int i = 7; i >= 0; i--)
			p[h++] = (uint8_t)((uint64_t)len >> (8 * i));
	}
	uint32_t key = (uint32_t)next_rand(&w->rng);
	uint8_t k[4] = {(uint8_t)(key >> 24), (uint8_t)(key >> 16), (uint8_t)(key >> 8),
			(uint8_t)key};
	memcpy(p + h, k, 4);
	h += 4;
	for (size_t i = 0; i < len; i++)
		p[h + i] = data[i] ^ k[i & 3];
	w->out_len += (uint32_t)(h + len);
	return 0;
}

int ql_ws_send(ql_ws *w, const uint8_t *data, size_t len)
{
	if (w->state != QL_WS_OPEN)
		return -1;
	if (frame(w, 2, data, len) != 0)
		return -1;
	w->bytes_out += len;
	if (!w->armed_out)
		flush(w);
	return 0;
}

int ql_ws_connect(ql_ws *w, int epfd, const ql_ws_handler *h, uint32_t src_ip,
		  const ql_ws_target *t, uint64_t seed)
{
	w->state = QL_WS_IDLE;
	w->fd = -1;
	w->epfd = epfd;
	w->h = h;
	w->armed_out = true;
	w->in_msg = false;
	w->in_len = w->msg_len = w->out_len = w->out_off = 0;
	w->close_code = 0;
	w->why[0] = '\0';
	w->rng = seed | 1;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		w->state = QL_WS_CLOSED;
		snprintf(w->why, sizeof w->why, "socket: %s", strerror(errno));
		return -errno;
	}
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	if (src_ip != 0) {
		/* The port is picked at connect, per destination, so each source
		 * address has its own ephemeral range. */
		setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
		struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(src_ip)};
		if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
			int e = errno;
			close(fd);
			w->state = QL_WS_CLOSED;
			snprintf(w->why, sizeof w->why, "bind: %s", strerror(e));
			return -e;
		}
	}
	struct sockaddr_in da = {.sin_family = AF_INET,
				 .sin_port = htons(t->port),
				 .sin_addr.s_addr = htonl(t->dst_ip)};
	if (connect(fd, (struct sockaddr *)&da, sizeof da) != 0 && errno != EINPROGRESS) {
		int e = errno;
		close(fd);
		w->state = QL_WS_CLOSED;
		snprintf(w->why, sizeof w->why, "connect: %s", strerror(e));
		return -e;
	}
	w->fd = fd;
	uint8_t key[16];
	for (int i = 0; i < 16; i += 8) {
		uint64_t r = next_rand(&w->rng);
		memcpy(key + i, &r, 8);
	}
	char key64[32];
	ql_base64(key, 16, key64);
	char cat[96];
	int n = snprintf(cat, sizeof cat, "%s%s", key64, guid);
	uint8_t dig[20];
	ql_sha1(cat, (size_t)n, dig);
	ql_base64(dig, 20, w->accept);
	char req[512];
	n = snprintf(req, sizeof req,
		     "GET %s HTTP/1.1\r\nHost: %u.%u.%u.%u:%u\r\nUpgrade: websocket\r\n"
		     "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n"
		     "Sec-WebSocket-Protocol: %s\r\n\r\n",
		     t->path, t->dst_ip >> 24, (t->dst_ip >> 16) & 255, (t->dst_ip >> 8) & 255,
		     t->dst_ip & 255, t->port, key64, t->protocol);
	if (reserve(&w->out, &w->out_cap, (size_t)n) != 0) {
		close(fd);
		w->fd = -1;
		w->state = QL_WS_CLOSED;
		return -ENOMEM;
	}
	memcpy(w->out, req, (size_t)n);
	w->out_len = (uint32_t)n;
	struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = w};
	if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
		int e = errno;
		close(fd);
		w->fd = -1;
		w->state = QL_WS_CLOSED;
		return -e;
	}
	w->state = QL_WS_CONNECTING;
	return 0;
}

/* A header's value in the response head (case-insensitive name). */
static bool header_is(const char *head, const char *name, const char *want)
{
	size_t nl = strlen(name);
	for (const char *p = strchr(head, '\n'); p != NULL; p = strchr(p + 1, '\n')) {
		if (strncasecmp(p + 1, name, nl) == 0 && p[1 + nl] == ':') {
			const char *v = p + 2 + nl;
			while (*v == ' ' || *v == '\t')
				v++;
			size_t vl = strcspn(v, "\r\n");
			while (vl > 0 && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
				vl--;
			return vl == strlen(want) && memcmp(v, want, vl) == 0;
		}
	}
	return false;
}

/* Parse the handshake answer; returns bytes consumed, 0 if incomplete, -1
 * after failing the connection. */
static long handshake(ql_ws *w, const uint8_t *buf, size_t n)
{
	size_t end = 0;
	for (size_t i = 3; i < n; i++)
		if (buf[i] == '\n' && buf[i - 1] == '\r' && buf[i - 2] == '\n' &&
		    buf[i - 3] == '\r') {
			end = i + 1;
			break;
		}
	if (end == 0) {
		if (n > MAX_HEADER) {
			fail(w, 1002, "handshake answer too long");
			return -1;
		}
		return 0;
	}
	char head[MAX_HEADER + 1];
	size_t hl = end < MAX_HEADER ? end : MAX_HEADER;
	memcpy(head, buf, hl);
	head[hl] = '\0';
	int status = 0;
	if (sscanf(head, "HTTP/1.1 %d", &status) != 1 || status != 101) {
		char why[40];
		snprintf(why, sizeof why, "handshake refused: HTTP %d", status);
		fail(w, status > 0 ? status : 1002, why);
		return -1;
	}
	if (!header_is(head, "Sec-WebSocket-Accept", w->accept)) {
		fail(w, 1002, "bad Sec-WebSocket-Accept");
		return -1;
	}
	if (!header_is(head, "Sec-WebSocket-Protocol", "quire.v1")) {
		fail(w, 1002, "subprotocol not selected");
		return -1;
	}
	w->state = QL_WS_OPEN;
	if (w->h->open)
		w->h->open(w);
	return (long)end;
}

/* Handle one complete frame; false when the connection closed. */
static bool on_frame(ql_ws *w, bool fin, int op, uint8_t *pl, size_t plen)
{
	if (op >= 8) {
		if (!fin || plen > 125) {
			fail(w, 1002, "bad control frame");
			return false;
		}
		if (op == 8) {
			int code = plen >= 2 ? (pl[0] << 8 | pl[1]) : 1005;
			frame(w, 8, pl, plen >= 2 ? 2 : 0);
			if (!w->armed_out)
				flush(w);
			char why[40];
			snprintf(why, sizeof why, "closed by server (%d)", code);
			fail(w, code, why);
			return false;
		}
		if (op == 9) {
			if (frame(w, 10, pl, plen) == 0 && !w->armed_out)
				flush(w);
			return w->state == QL_WS_OPEN;
		}
		return true; /* pong */
	}
	if (op == 0) {
		if (!w->in_msg) {
			fail(w, 1002, "continuation without a message");
			return false;
		}
		if (reserve(&w->msg, &w->msg_cap, (size_t)w->msg_len + plen) != 0) {
			fail(w, 1009, "message too big");
			return false;
		}
		memcpy(w->msg + w->msg_len, pl, plen);
		w->msg_len += (uint32_t)plen;
		if (!fin)
			return true;
		w->in_msg = false;
		pl = w->msg;
		plen = w->msg_len;
		op = w->msg_op;
	} else if (op == 1 || op == 2) {
		if (w->in_msg) {
			fail(w, 1002, "new message inside a fragmented one");
			return false;
		}
		if (!fin) {
			if (reserve(&w->msg, &w->msg_cap, plen) != 0) {
				fail(w, 1009, "message too big");
				return false;
			}
			memcpy(w->msg, pl, plen);
			w->msg_len = (uint32_t)plen;
			w->msg_op = (uint8_t)op;
			w->in_msg = true;
			return true;
		}
	} else {
		fail(w, 1002, "unknown opcode");
		return false;
	}
	if (op == 1) {
		fail(w, 1003, "text message from the server");
		return false;
	}
	w->bytes_in += plen;
	if (w->h->message)
		w->h->message(w, pl, plen);
	return w->state == QL_WS_OPEN;
}

static void on_readable(ql_ws *w, uint8_t *scratch, size_t cap)
{
	ssize_t r = recv(w->fd, scratch, cap, 0);
	if (r == 0) {
		fail(w, 1006, "connection reset (eof)");
		return;
	}
	if (r < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
			return;
		fail(w, 1006, "recv failed");
		return;
	}
	uint8_t *buf = scratch;
	size_t n = (size_t)r;
	if (w->in_len > 0) {
		if (reserve(&w->in, &w->in_cap, (size_t)w->in_len + n) != 0) {
			fail(w, 1009, "input too big");
			return;
		}
		memcpy(w->in + w->in_len, scratch, n);
		w->in_len += (uint32_t)n;
		buf = w->in;
		n = w->in_len;
	}
	size_t p = 0;
	if (w->state == QL_WS_HANDSHAKE || w->state == QL_WS_CONNECTING) {
		long used = handshake(w, buf, n);
		if (used < 0)
			return;
		p = (size_t)used;
		if (used == 0)
			goto keep;
	}
	while (w->state == QL_WS_OPEN && n - p >= 2) {
		uint8_t b0 = buf[p], b1 = buf[p + 1];
		size_t hl = 2;
		uint64_t plen = b1 & 0x7f;
		if (plen == 126) {
			if (n - p < 4)
				break;
			plen = (uint64_t)buf[p + 2] << 8 | buf[p + 3];
			hl = 4;
		} else if (plen == 127) {
			if (n - p < 10)
				break;
			plen = 0;
			for (int i = 0; i < 8; i++)
				plen = plen << 8 | buf[p + 2 + i];
			hl = 10;
		}
		if (plen > MAX_MESSAGE) {
			fail(w, 1009, "frame too big");
			return;
		}
		bool masked = b1 & 0x80;
		if (masked)
			hl += 4;
		if (n - p < hl + plen)
			break;
		uint8_t *pl = buf + p + hl;
		if (masked) /* servers must not mask; tolerate it */
			for (uint64_t i = 0; i < plen; i++)
				pl[i] ^= buf[p + hl - 4 + (i & 3)];
		if (b0 & 0x70) {
			fail(w, 1002, "reserved bits set");
			return;
		}
		if (!on_frame(w, b0 & 0x80, b0 & 0x0f, pl, (size_t)plen))
			return;
		p += hl + (size_t)plen;
	}
	if (w->state != QL_WS_OPEN)
		return;
keep:
	/* Keep the unparsed tail in the connection's own buffer. */
	if (buf == w->in) {
		memmove(w->in, w->in + p, n - p);
		w->in_len = (uint32_t)(n - p);
	} else if (n > p) {
		if (reserve(&w->in, &w->in_cap, n - p) != 0) {
			fail(w, 1009, "input too big");
			return;
		}
		memcpy(w->in, buf + p, n - p);
		w->in_len = (uint32_t)(n - p);
	}
	if (w->in_len == 0 && w->in_cap > 65536) {
		free(w->in); /* a big catch-up passed; give the memory back */
		w->in = NULL;
		w->in_cap = 0;
	}
}

void ql_ws_event(ql_ws *w, uint32_t events, uint8_t *scratch, size_t scratch_cap)
{
	if (w->state == QL_WS_CLOSED || w->state == QL_WS_IDLE || w->fd < 0)
		return;
	if (w->state == QL_WS_CONNECTING && (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
		int err = 0;
		socklen_t el = sizeof err;
		getsockopt(w->fd, SOL_SOCKET, SO_ERROR, &err, &el);
		if (err != 0) {
			char why[40];
			snprintf(why, sizeof why, "connect: %s", strerror(err));
			fail(w, 1006, why);
			return;
		}
		w->state = QL_WS_HANDSHAKE;
	}
	if (events & EPOLLOUT) {
		flush(w);
		if (w->state == QL_WS_CLOSED)
			return;
	}
	if (events & (EPOLLIN | EPOLLERR | EPOLLHUP))
		on_readable(w, scratch, scratch_cap);
}
