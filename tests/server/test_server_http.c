/*
 * test_server_http.c - quire-server's read API over HTTP, end to end: the
 * real binary on an ephemeral loopback port, documents written over
 * WebSocket (qtest.h's protocol client) and read back with
 * GET /v1/docs/{id} (JSON and text/plain, escaping, a body over 1 MiB,
 * 404/400) and followed with the Server-Sent Events stream
 * GET /v1/docs/{id}/events (live change events with their seqs as ids,
 * patches a bot can follow, resume with Last-Event-ID or ?last_seq=, a
 * reset when the log was trimmed, the stream ended cleanly by SIGTERM).
 * Also permessage-deflate on the WebSocket: negotiated when offered (and
 * the compressed messages inflate, with zlib, to the protocol's), absent
 * when not offered or with --no-deflate.
 * The HTTP and SSE clients here are small blocking ones with deadlines.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <cmocka.h>
#include <zlib.h>

#include "auth.h"
#include "qtest.h"

#define T_MS 5000
#define QUIET_MS 300

#define START(f, ...)                                                  \
	do {                                                           \
		const char *const extra_[] = {__VA_ARGS__, NULL};      \
		assert_int_equal(qserver_init(&(f)->srv), 0);          \
		assert_int_equal(qserver_start(&(f)->srv, extra_), 0); \
	} while (0)

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
	nanosleep(&ts, NULL);
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- a blocking HTTP/1.1 client ------------------------------------------------ */

/* Read what is there within the deadline: >0 bytes, 0 EOF, -1 timeout/error. */
static ssize_t recv_until(int fd, char *buf, size_t cap, int64_t deadline)
{
	int64_t left = deadline - now_ms();
	if (left <= 0)
		return -1;
	struct pollfd p = {fd, POLLIN, 0};
	int r = poll(&p, 1, (int)left);
	if (r <= 0)
		return -1;
	return recv(fd, buf, cap, 0);
}

typedef struct hresp {
	int status;
	char headers[4096]; /* lower-cased */
	char *body;	    /* malloc'd, NUL-terminated */
	size_t body_len;
} hresp;

static void hresp_free(hresp *r)
{
	free(r->body);
	r->body = NULL;
}

/* The value of header `name` (lower case, without the colon) or "". */
static const char *hdr(const hresp *r, const char *name, char *out, size_t cap)
{
	char key[128];
	snprintf(key, sizeof key, "\n%s:", name);
	out[0] = '\0';
	const char *p = strstr(r->headers, key);
	if (p == NULL)
		return out;
	p += strlen(key);
	while (*p == ' ')
		p++;
	size_t n = strcspn(p, "\r\n");
	snprintf(out, cap, "%.*s", (int)n, p);
	return out;
}

/* GET path with extra header lines ("Name: value\r\n"...; NULL: none). */
static int http_get(int port, const char *path, const char *extra, hresp *r)
{
	memset(r, 0, sizeof *r);
	int fd = qtcp_connect(port, 0, T_MS);
	if (fd < 0)
		return -1;
	char req[2048];
	int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%s\r\n", path,
			 extra ? extra : "");
	if (qsend_all(fd, req, (size_t)n) != 0) {
		close(fd);
		return -1;
	}
	size_t cap = 1 << 16, len = 0;
	char *buf = malloc(cap + 1);
	int64_t deadline = now_ms() + 10000;
	int rc = -1;
	size_t hlen = 0, want = SIZE_MAX;
	while (buf != NULL) {
		if (len == cap) {
			char *b = realloc(buf, cap * 2 + 1);
			if (b == NULL)
				break;
			buf = b;
			cap *= 2;
		}
		ssize_t got = recv_until(fd, buf + len, cap - len, deadline);
		if (got < 0)
			break;
		if (got == 0) {
			rc = hlen ? 0 : -1;
			break;
		}
		len += (size_t)got;
		buf[len] = '\0';
		if (hlen == 0) {
			char *e = strstr(buf, "\r\n\r\n");
			if (e == NULL)
				continue;
			hlen = (size_t)(e + 4 - buf);
			size_t hl = hlen < sizeof r->headers ? hlen : sizeof r->headers - 1;
			for (size_t i = 0; i < hl; i++)
				r->headers[i] = (char)(buf[i] >= 'A' && buf[i] <= 'Z' ? buf[i] + 32
										      : buf[i]);
			r->headers[hl] = '\0';
			char v[32];
			if (*hdr(r, "content-length", v, sizeof v))
				want = (size_t)strtoull(v, NULL, 10);
		}
		if (hlen && want != SIZE_MAX && len - hlen >= want) {
			rc = 0;
			break;
		}
	}
	close(fd);
	if (rc != 0 || buf == NULL) {
		free(buf);
		return -1;
	}
	r->status = atoi(buf + 9);
	r->body_len = len - hlen;
	r->body = malloc(r->body_len + 1);
	memcpy(r->body, buf + hlen, r->body_len);
	r->body[r->body_len] = '\0';
	free(buf);
	return 0;
}

/* ---- JSON bits ------------------------------------------------------------------- */

static void put_utf8(char **w, uint32_t c)
{
	unsigned char *o = (unsigned char *)*w;
	if (c < 0x80) {
		*o++ = (unsigned char)c;
	} else if (c < 0x800) {
		*o++ = (unsigned char)(0xc0 | c >> 6);
		*o++ = (unsigned char)(0x80 | (c & 63));
	} else if (c < 0x10000) {
		*o++ = (unsigned char)(0xe0 | c >> 12);
		*o++ = (unsigned char)(0x80 | ((c >> 6) & 63));
		*o++ = (unsigned char)(0x80 | (c & 63));
	} else {
		*o++ = (unsigned char)(0xf0 | c >> 18);
		*o++ = (unsigned char)(0x80 | ((c >> 12) & 63));
		*o++ = (unsigned char)(0x80 | ((c >> 6) & 63));
		*o++ = (unsigned char)(0x80 | (c & 63));
	}
	*w = (char *)o;
}

/* Decode the JSON string starting at p (at its quote) into a malloc'd
 * string; *end after the closing quote. Fails the test on bad JSON, and on
 * raw control characters (which JSON forbids). */
static char *json_string(const char *p, const char **end)
{
	assert_int_equal(*p, '"');
	p++;
	char *out = malloc(strlen(p) + 1), *w = out;
	while (*p != '"') {
		assert_true(*p != '\0');
		assert_true((unsigned char)*p >= 0x20);
		if (*p != '\\') {
			*w++ = *p++;
			continue;
		}
		p++;
		switch (*p) {
		case '"':
		case '\\':
		case '/':
			*w++ = *p;
			break;
		case 'b':
			*w++ = '\b';
			break;
		case 'f':
			*w++ = '\f';
			break;
		case 'n':
			*w++ = '\n';
			break;
		case 'r':
			*w++ = '\r';
			break;
		case 't':
			*w++ = '\t';
			break;
		case 'u': {
			uint32_t c =
				(uint32_t)strtoul((char[5]){p[1], p[2], p[3], p[4], 0}, NULL, 16);
			p += 4;
			if (c >= 0xd800 && c < 0xdc00 && p[1] == '\\' && p[2] == 'u') {
				uint32_t lo = (uint32_t)strtoul(
					(char[5]){p[3], p[4], p[5], p[6], 0}, NULL, 16);
				c = 0x10000 + ((c - 0xd800) << 10) + (lo - 0xdc00);
				p += 6;
			}
			put_utf8(&w, c);
			break;
		}
		default:
			fail_msg("bad JSON escape \\%c", *p);
		}
		p++;
	}
	*w = '\0';
	if (end)
		*end = p + 1;
	return out;
}

/* The string member `key` of a flat JSON object, decoded (malloc'd). */
static char *json_get_str(const char *json, const char *key)
{
	char k[64];
	snprintf(k, sizeof k, "\"%s\":", key);
	const char *p = strstr(json, k);
	assert_non_null(p);
	return json_string(p + strlen(k), NULL);
}

static uint64_t json_get_u64(const char *json, const char *key)
{
	char k[64];
	snprintf(k, sizeof k, "\"%s\":", key);
	const char *p = strstr(json, k);
	assert_non_null(p);
	return strtoull(p + strlen(k), NULL, 10);
}

/* ---- text following (what a bot does with the patches) ---------------------------- */

/* Byte offset of code point cp in s. */
static size_t cp_off(const char *s, size_t cp)
{
	size_t i = 0;
	while (cp > 0 && s[i]) {
		i++;
		while (((unsigned char)s[i] & 0xc0) == 0x80)
			i++;
		cp--;
	}
	return i;
}

/* Apply the "patches" list of a change event's data to *text. */
static void apply_patches(char **text, const char *data)
{
	const char *p = strstr(data, "\"patches\":[");
	assert_non_null(p);
	p += 11;
	while (*p == '{' || *p == ',') {
		if (*p == ',')
			p++;
		const char *q = strstr(p, "\"pos\":");
		size_t pos = strtoull(q + 6, NULL, 10);
		q = strstr(p, "\"delete\":");
		size_t del = strtoull(q + 9, NULL, 10);
		q = strstr(p, "\"insert\":");
		const char *end;
		char *ins = json_string(q + 9, &end);
		assert_int_equal(*end, '}');
		p = end + 1;
		char *t = *text;
		size_t a = cp_off(t, pos), b = a + cp_off(t + a, del);
		size_t n = strlen(t), il = strlen(ins);
		char *nt = malloc(n - (b - a) + il + 1);
		memcpy(nt, t, a);
		memcpy(nt + a, ins, il);
		memcpy(nt + a + il, t + b, n - b + 1);
		free(t);
		free(ins);
		*text = nt;
	}
	assert_int_equal(*p, ']');
}

/* ---- an SSE client ---------------------------------------------------------------------- */

typedef struct sse {
	int fd;
	char *buf;
	size_t len, cap;
	int status;
	bool eof;
	/* the last event */
	char id[32];
	char event[32];
	char *data;
	bool comment_seen; /* a ": ..." line was skipped */
} sse;

static int sse_open(sse *s, int port, const char *path, const char *extra)
{
	memset(s, 0, sizeof *s);
	s->fd = qtcp_connect(port, 0, T_MS);
	if (s->fd < 0)
		return -1;
	char req[1024];
	int n = snprintf(
		req, sizeof req,
		"GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n%s\r\n", path,
		extra ? extra : "");
	if (qsend_all(s->fd, req, (size_t)n) != 0)
		return -1;
	s->cap = 1 << 16;
	s->buf = malloc(s->cap + 1);
	int64_t deadline = now_ms() + T_MS;
	for (;;) {
		s->buf[s->len] = '\0';
		char *e = strstr(s->buf, "\r\n\r\n");
		if (e != NULL) {
			s->status = atoi(s->buf + 9);
			size_t h = (size_t)(e + 4 - s->buf);
			for (size_t i = 0; i < h; i++)
				if (s->buf[i] >= 'A' && s->buf[i] <= 'Z')
					s->buf[i] = (char)(s->buf[i] + 32);
			if (s->status == 200 &&
			    strstr(s->buf, "content-type: text/event-stream") == NULL)
				return -1;
			memmove(s->buf, s->buf + h, s->len - h);
			s->len -= h;
			return 0;
		}
		ssize_t got = recv_until(s->fd, s->buf + s->len, s->cap - s->len, deadline);
		if (got <= 0)
			return -1;
		s->len += (size_t)got;
	}
}

/* The next event (comments skipped): 1, 0 on timeout, -1 at EOF. */
static int sse_next(sse *s, int timeout_ms)
{
	int64_t deadline = now_ms() + timeout_ms;
	for (;;) {
		s->buf[s->len] = '\0';
		char *e = strstr(s->buf, "\n\n");
		if (e != NULL) {
			size_t blk = (size_t)(e + 2 - s->buf);
			*e = '\0';
			s->id[0] = s->event[0] = '\0';
			free(s->data);
			s->data = NULL;
			bool any = false;
			for (char *line = s->buf; line && *line;) {
				char *nl = strchr(line, '\n');
				if (nl)
					*nl = '\0';
				if (line[0] == ':') {
					s->comment_seen = true;
				} else if (strncmp(line, "id: ", 4) == 0) {
					snprintf(s->id, sizeof s->id, "%s", line + 4);
					any = true;
				} else if (strncmp(line, "event: ", 7) == 0) {
					snprintf(s->event, sizeof s->event, "%s", line + 7);
					any = true;
				} else if (strncmp(line, "data: ", 6) == 0) {
					s->data = strdup(line + 6);
					any = true;
				}
				line = nl ? nl + 1 : NULL;
			}
			memmove(s->buf, s->buf + blk, s->len - blk);
			s->len -= blk;
			if (any && (s->event[0] || s->data))
				return 1;
			continue;
		}
		if (s->eof)
			return -1;
		if (s->len == s->cap) {
			s->cap *= 2;
			s->buf = realloc(s->buf, s->cap + 1);
		}
		ssize_t got = recv_until(s->fd, s->buf + s->len, s->cap - s->len, deadline);
		if (got < 0)
			return 0;
		if (got == 0)
			s->eof = true;
		s->len += (size_t)(got > 0 ? got : 0);
	}
}

static void sse_close(sse *s)
{
	if (s->fd >= 0)
		close(s->fd);
	free(s->buf);
	free(s->data);
	memset(s, 0, sizeof *s);
	s->fd = -1;
}

/* Expect a change event with this id. */
static void expect_change(sse *s, uint64_t seq)
{
	int r = sse_next(s, T_MS);
	if (r != 1)
		fail_msg("wanted change %llu, got %s", (unsigned long long)seq,
			 r == 0 ? "nothing" : "EOF");
	assert_string_equal(s->event, "change");
	assert_int_equal(strtoull(s->id, NULL, 10), seq);
	assert_non_null(s->data);
	assert_int_equal(json_get_u64(s->data, "seq"), seq);
}

/* ---- helpers over WebSocket -------------------------------------------------------------- */

static void join(qclient *c, int port, crdt_replica r, const char *doc)
{
	assert_int_equal(qc_connect(c, port, r), 0);
	assert_int_equal(qc_hello(c, doc, 0, 0), 0);
	assert_int_equal(qc_expect(c, WIRE_SERVER_WELCOME, T_MS), 1);
}

/* Insert and wait for the Ack with this seq. */
static void insert_acked(qclient *c, size_t pos, const char *text, uint64_t seq)
{
	uint64_t k = qc_insert(c, pos, text);
	assert_true(k != 0);
	assert_int_equal(qc_expect(c, WIRE_SERVER_ACK, T_MS), 1);
	assert_int_equal(c->m->ack.client_batch, k);
	assert_int_equal(c->m->ack.seq, seq);
}

static void delete_acked(qclient *c, size_t pos, size_t len, uint64_t seq)
{
	uint64_t k = qc_delete(c, pos, len);
	assert_true(k != 0);
	assert_int_equal(qc_expect(c, WIRE_SERVER_ACK, T_MS), 1);
	assert_int_equal(c->m->ack.client_batch, k);
	assert_int_equal(c->m->ack.seq, seq);
}

static uint64_t metric(int port, const char *name)
{
	hresp r;
	if (http_get(port, "/metrics", NULL, &r) != 0 || r.status != 200) {
		hresp_free(&r);
		return UINT64_MAX;
	}
	char key[128];
	snprintf(key, sizeof key, "\n%s ", name);
	const char *p = strstr(r.body, key);
	uint64_t v = p ? strtoull(p + strlen(key), NULL, 10) : UINT64_MAX;
	hresp_free(&r);
	return v;
}

/* ---- GET /v1/docs/{id} ---------------------------------------------------------------------- */

static void test_http_get_json_and_text(void **state)
{
	qfixture *f = *state;
	START(f, "--log-level", "debug");
	int port = f->srv.port;
	qclient a;
	join(&a, port, 0xa1, "notes/today");
	insert_acked(&a, 0, "hello world", 1);
	delete_acked(&a, 0, 6, 2);
	insert_acked(&a, 5, "!", 3);

	hresp r;
	char v[256];
	assert_int_equal(http_get(port, "/v1/docs/notes/today", NULL, &r), 0);
	assert_int_equal(r.status, 200);
	assert_string_equal(hdr(&r, "content-type", v, sizeof v), "application/json");
	assert_string_equal(hdr(&r, "x-quire-seq", v, sizeof v), "3");
	char *doc = json_get_str(r.body, "doc"), *text = json_get_str(r.body, "text");
	assert_string_equal(doc, "notes/today");
	assert_string_equal(text, "world!");
	assert_int_equal(json_get_u64(r.body, "seq"), 3);
	assert_int_equal(json_get_u64(r.body, "length"), 6);
	free(doc);
	free(text);
	hresp_free(&r);

	/* text/plain: by ?format=text, or when Accept prefers it */
	assert_int_equal(http_get(port, "/v1/docs/notes/today?format=text", NULL, &r), 0);
	assert_int_equal(r.status, 200);
	assert_string_equal(hdr(&r, "content-type", v, sizeof v), "text/plain; charset=utf-8");
	assert_string_equal(hdr(&r, "x-quire-seq", v, sizeof v), "3");
	assert_string_equal(r.body, "world!");
	hresp_free(&r);
	assert_int_equal(http_get(port, "/v1/docs/notes/today",
				  "Accept: text/plain, application/json;q=0.5\r\n", &r),
			 0);
	assert_string_equal(hdr(&r, "content-type", v, sizeof v), "text/plain; charset=utf-8");
	assert_string_equal(r.body, "world!");
	hresp_free(&r);
	assert_int_equal(http_get(port, "/v1/docs/notes/today",
				  "Accept: text/plain;q=0.4, application/json\r\n", &r),
			 0);
	assert_string_equal(hdr(&r, "content-type", v, sizeof v), "application/json");
	hresp_free(&r);
	assert_int_equal(http_get(port, "/v1/docs/notes/today", "Accept: */*\r\n", &r), 0);
	assert_string_equal(hdr(&r, "content-type", v, sizeof v), "application/json");
	hresp_free(&r);
	/* the id percent-encoded */
	assert_int_equal(http_get(port, "/v1/docs/notes%2Ftoday?format=text", NULL, &r), 0);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body, "world!");
	hresp_free(&r);
	assert_int_equal(http_get(port, "/v1/docs/notes/today?format=xml", NULL, &r), 0);
	assert_int_equal(r.status, 400);
	hresp_free(&r);
	qc_free(&a);
}

static void test_http_get_unloaded_document_and_errors(void **state)
{
	qfixture *f = *state;
	START(f, "--idle-unload-ms", "100");
	int port = f->srv.port;
	qclient a;
	join(&a, port, 0xa1, "d1");
	insert_acked(&a, 0, "persisted", 1);
	qc_free(&a);
	/* wait until the document is unloaded, then read it: loaded again */
	int64_t deadline = now_ms() + T_MS;
	while (metric(port, "quire_documents_loaded") != 0 && now_ms() < deadline)
		sleep_ms(50);
	assert_int_equal(metric(port, "quire_documents_loaded"), 0);
	hresp r;
	assert_int_equal(http_get(port, "/v1/docs/d1?format=text", NULL, &r), 0);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body, "persisted");
	hresp_free(&r);
	/* ...and unloaded again by the idle rule: a read does not pin it */
	deadline = now_ms() + T_MS;
	while (metric(port, "quire_documents_loaded") != 0 && now_ms() < deadline)
		sleep_ms(50);
	assert_int_equal(metric(port, "quire_documents_loaded"), 0);

	/* unknown: 404 (and no document is created by reading) */
	assert_int_equal(http_get(port, "/v1/docs/nobody/wrote/this", NULL, &r), 0);
	assert_int_equal(r.status, 404);
	char v[64];
	assert_string_equal(hdr(&r, "content-type", v, sizeof v), "application/json");
	assert_non_null(strstr(r.body, "\"error\":\"not_found\""));
	hresp_free(&r);
	assert_int_equal(http_get(port, "/v1/docs/nobody/wrote/this/events", NULL, &r), 0);
	assert_int_equal(r.status, 404);
	hresp_free(&r);
	/* invalid ids: 400 */
	const char *bad[] = {"/v1/docs/",	   "/v1/docs/a%20b", "/v1/docs/%22quoted%22",
			     "/v1/docs/caf%C3%A9", "/v1/docs/x?y",   NULL};
	for (int i = 0; bad[i]; i++) {
		assert_int_equal(http_get(port, bad[i], NULL, &r), 0);
		if (strcmp(bad[i], "/v1/docs/x?y") == 0)
			assert_int_equal(r.status, 404); /* "x" is valid, unknown */
		else if (r.status != 400)
			fail_msg("%s: status %d", bad[i], r.status);
		hresp_free(&r);
	}
	char longp[300] = "/v1/docs/";
	memset(longp + 9, 'a', 201);
	longp[210] = '\0';
	assert_int_equal(http_get(port, longp, NULL, &r), 0);
	assert_int_equal(r.status, 400);
	hresp_free(&r);
	assert_int_equal(http_get(port, "/v1/docs", NULL, &r), 0);
	assert_int_equal(r.status, 404);
	hresp_free(&r);
}

static void test_http_json_escaping(void **state)
{
	qfixture *f = *state;
	START(f, "--log-level", "info");
	int port = f->srv.port;
	qclient a;
	join(&a, port, 0xa1, "esc");
	const char *tricky = "say \"hi\"\\ \n\tnext line\r\x01\x1f\x7f emoji 😀🎉 "
			     "café ∑ \xe2\x80\xa8 sep \xe2\x80\xa9 end";
	insert_acked(&a, 0, tricky, 1);
	hresp r;
	assert_int_equal(http_get(port, "/v1/docs/esc", NULL, &r), 0);
	assert_int_equal(r.status, 200);
	/* no raw control characters or line separators in the JSON body */
	for (size_t i = 0; i + 1 < r.body_len; i++) {
		unsigned char c = (unsigned char)r.body[i];
		assert_true(c >= 0x20 && c != 0x7f);
	}
	assert_int_equal(r.body[r.body_len - 1], '\n');
	assert_null(strstr(r.body, "\xe2\x80\xa8"));
	assert_non_null(strstr(r.body, "\\u2028"));
	assert_non_null(strstr(r.body, "\\\"hi\\\"\\\\ \\n\\tnext line\\r\\u0001\\u001f\\u007f"));
	char *text = json_get_str(r.body, "text");
	assert_string_equal(text, tricky);
	free(text);
	assert_int_equal(json_get_u64(r.body, "length"), 53);
	hresp_free(&r);
	assert_int_equal(http_get(port, "/v1/docs/esc?format=text", NULL, &r), 0);
	assert_string_equal(r.body, tricky);
	hresp_free(&r);
	qc_free(&a);
}

static void test_http_large_document(void **state)
{
	qfixture *f = *state;
	START(f, "--log-level", "info");
	int port = f->srv.port;
	qclient a;
	join(&a, port, 0xa1, "big");
	/* 5 x 256 KiB = 1.25 MiB, with quotes that grow in JSON */
	size_t chunk = 256 * 1024;
	char *part = malloc(chunk + 1);
	for (size_t i = 0; i < chunk; i++)
		part[i] = (char)(i % 64 == 63 ? '"' : 'a' + (char)(i % 26));
	part[chunk] = '\0';
	for (int i = 0; i < 5; i++)
		insert_acked(&a, (size_t)i * chunk, part, (uint64_t)i + 1);
	char *want = qc_text(&a);
	size_t want_len = strlen(want);
	assert_true(want_len > 1024 * 1024);
	hresp r;
	assert_int_equal(http_get(port, "/v1/docs/big?format=text", NULL, &r), 0);
	assert_int_equal(r.status, 200);
	assert_int_equal(r.body_len, want_len);
	assert_memory_equal(r.body, want, want_len);
	hresp_free(&r);
	assert_int_equal(http_get(port, "/v1/docs/big", NULL, &r), 0);
	assert_int_equal(r.status, 200);
	assert_true(r.body_len > want_len);
	char *text = json_get_str(r.body, "text");
	assert_int_equal(strlen(text), want_len);
	assert_memory_equal(text, want, want_len);
	assert_int_equal(json_get_u64(r.body, "length"), want_len);
	free(text);
	hresp_free(&r);
	free(want);
	free(part);
	qc_free(&a);
}

/* ---- GET /v1/docs/{id}/events ------------------------------------------------------------------
 */

static void test_sse_live_events_follow_the_text(void **state)
{
	qfixture *f = *state;
	START(f, "--log-level", "debug");
	int port = f->srv.port;
	qclient a;
	join(&a, port, 0xa1, "live/doc");
	insert_acked(&a, 0, "héllo", 1);

	sse s;
	assert_int_equal(sse_open(&s, port, "/v1/docs/live/doc/events", NULL), 0);
	assert_int_equal(s.status, 200);
	/* no resume point: a reset with the whole text at the head */
	assert_int_equal(sse_next(&s, T_MS), 1);
	assert_string_equal(s.event, "reset");
	assert_string_equal(s.id, "1");
	char *text = json_get_str(s.data, "text");
	assert_string_equal(text, "héllo");
	assert_int_equal(json_get_u64(s.data, "seq"), 1);

	insert_acked(&a, 5, " wörld", 2);
	delete_acked(&a, 0, 1, 3);
	insert_acked(&a, 0, "H\"\n😀", 4);
	for (uint64_t seq = 2; seq <= 4; seq++) {
		expect_change(&s, seq);
		assert_non_null(strstr(s.data, "\"ops\":[{\"kind\":"));
		assert_non_null(strstr(s.data, "\"replica\":\"00000000000000a1\""));
		apply_patches(&text, s.data);
	}
	char *want = qc_text(&a);
	assert_string_equal(text, want);
	/* a second editor's concurrent change arrives too */
	qclient b;
	join(&b, port, 0xb2, "live/doc");
	while (b.last_seq < 4)
		assert_int_equal(qc_recv(&b, T_MS), 1); /* its catch-up */
	insert_acked(&b, 0, ">> ", 5);
	expect_change(&s, 5);
	apply_patches(&text, s.data);
	assert_string_equal(text, ">> H\"\n😀éllo wörld");
	assert_int_equal(sse_next(&s, QUIET_MS), 0); /* nothing twice */
	assert_int_equal(metric(port, "quire_sse_streams"), 1);
	assert_true(metric(port, "quire_sse_events_total") >= 5);
	/* the stream keeps the document loaded even with no member */
	qc_free(&a);
	qc_free(&b);
	sse_close(&s);
	int64_t deadline = now_ms() + T_MS;
	while (metric(port, "quire_sse_streams") != 0 && now_ms() < deadline)
		sleep_ms(20);
	assert_int_equal(metric(port, "quire_sse_streams"), 0);
	free(text);
	free(want);
}

static void test_sse_resume_with_last_event_id(void **state)
{
	qfixture *f = *state;
	START(f, "--log-level", "debug");
	int port = f->srv.port;
	qclient a;
	join(&a, port, 0xa1, "r");
	insert_acked(&a, 0, "one ", 1);
	sse s;
	assert_int_equal(sse_open(&s, port, "/v1/docs/r/events", "Last-Event-ID: 0\r\n"), 0);
	/* from 0: the whole log, as change events, no reset */
	expect_change(&s, 1);
	char *text = strdup("");
	apply_patches(&text, s.data);
	insert_acked(&a, 4, "two ", 2);
	expect_change(&s, 2);
	apply_patches(&text, s.data);
	sse_close(&s);
	/* missed while away */
	insert_acked(&a, 8, "three ", 3);
	delete_acked(&a, 0, 4, 4);
	insert_acked(&a, 0, "zero ", 5);
	assert_int_equal(sse_open(&s, port, "/v1/docs/r/events", "Last-Event-ID: 2\r\n"), 0);
	for (uint64_t seq = 3; seq <= 5; seq++) {
		expect_change(&s, seq);
		apply_patches(&text, s.data);
	}
	assert_int_equal(sse_next(&s, QUIET_MS), 0); /* exactly the missed ones */
	char *want = qc_text(&a);
	assert_string_equal(text, want);
	insert_acked(&a, 0, "live ", 6);
	expect_change(&s, 6);
	sse_close(&s);
	/* ?last_seq= works the same; at the head: nothing until the next change */
	assert_int_equal(sse_open(&s, port, "/v1/docs/r/events?last_seq=4", NULL), 0);
	expect_change(&s, 5);
	expect_change(&s, 6);
	assert_int_equal(sse_next(&s, QUIET_MS), 0);
	sse_close(&s);
	assert_int_equal(sse_open(&s, port, "/v1/docs/r/events?last_seq=6", NULL), 0);
	assert_int_equal(sse_next(&s, QUIET_MS), 0);
	insert_acked(&a, 0, "x", 7);
	expect_change(&s, 7);
	sse_close(&s);
	/* ahead of the head: a reset */
	assert_int_equal(sse_open(&s, port, "/v1/docs/r/events", "Last-Event-ID: 99\r\n"), 0);
	assert_int_equal(sse_next(&s, T_MS), 1);
	assert_string_equal(s.event, "reset");
	assert_string_equal(s.id, "7");
	sse_close(&s);
	/* garbage: 400 */
	hresp r;
	assert_int_equal(http_get(port, "/v1/docs/r/events", "Last-Event-ID: abc\r\n", &r), 0);
	assert_int_equal(r.status, 400);
	hresp_free(&r);
	free(text);
	free(want);
	qc_free(&a);
}

static void test_sse_trimmed_log_gives_reset(void **state)
{
	qfixture *f = *state;
	START(f, "--snapshot-every", "2", "--keep-changes", "1", "--log-level", "debug");
	int port = f->srv.port;
	qclient a;
	join(&a, port, 0xa1, "t");
	size_t len = 0;
	for (int i = 0; i < 10; i++) {
		insert_acked(&a, len, "ab", (uint64_t)i + 1);
		len += 2;
	}
	sse s;
	assert_int_equal(sse_open(&s, port, "/v1/docs/t/events", "Last-Event-ID: 1\r\n"), 0);
	assert_int_equal(sse_next(&s, T_MS), 1);
	assert_string_equal(s.event, "reset");
	assert_string_equal(s.id, "10");
	char *text = json_get_str(s.data, "text");
	char *want = qc_text(&a);
	assert_string_equal(text, want);
	assert_int_equal(sse_next(&s, QUIET_MS), 0);
	/* then live */
	insert_acked(&a, 0, "Z", 11);
	expect_change(&s, 11);
	apply_patches(&text, s.data);
	free(want);
	want = qc_text(&a);
	assert_string_equal(text, want);
	/* a resume point still in the log: changes (with patches from a replay) */
	sse s2;
	assert_int_equal(sse_open(&s2, port, "/v1/docs/t/events", "Last-Event-ID: 10\r\n"), 0);
	expect_change(&s2, 11);
	assert_non_null(strstr(s2.data, "\"patches\":[{\"pos\":0,\"delete\":0,\"insert\":\"Z\"}]"));
	sse_close(&s2);
	sse_close(&s);
	free(text);
	free(want);
	qc_free(&a);
}

static void test_sse_closed_cleanly_on_sigterm(void **state)
{
	qfixture *f = *state;
	START(f, "--log-level", "info");
	int port = f->srv.port;
	qclient a;
	join(&a, port, 0xa1, "bye");
	insert_acked(&a, 0, "x", 1);
	sse s;
	assert_int_equal(sse_open(&s, port, "/v1/docs/bye/events", "Last-Event-ID: 1\r\n"), 0);
	assert_int_equal(sse_next(&s, QUIET_MS), 0);
	assert_int_equal(metric(port, "quire_sse_streams"), 1);
	int64_t t0 = now_ms();
	assert_int_equal(qserver_stop(&f->srv, SIGTERM, 10000), 0);
	assert_true(now_ms() - t0 < 2500); /* not held up by the stream */
	assert_int_equal(sse_next(&s, T_MS), 1);
	assert_string_equal(s.event, "shutdown");
	assert_int_equal(sse_next(&s, T_MS), -1); /* then the end of the stream */
	assert_int_equal(s.len, 0);
	sse_close(&s);
	qc_free(&a);
}

/* ---- permessage-deflate -----------------------------------------------------------------------
 */

typedef struct inflater {
	z_stream z;
	size_t messages, in_bytes, out_bytes;
} inflater;

/* ws_client.inflate: RFC 7692 7.2.2, one raw DEFLATE stream per direction
 * (the server may keep its context between messages). */
static int inflate_msg(ws_client *c)
{
	inflater *inf = c->inflate_ctx;
	size_t in_len = c->msg_len + 4;
	uint8_t *in = malloc(in_len);
	memcpy(in, c->msg, c->msg_len);
	memcpy(in + c->msg_len, "\x00\x00\xff\xff", 4);
	size_t cap = 4 * in_len + 1024, len = 0;
	uint8_t *out = malloc(cap);
	inf->z.next_in = in;
	inf->z.avail_in = (uInt)in_len;
	int rc;
	do {
		if (len == cap) {
			cap *= 2;
			out = realloc(out, cap);
		}
		inf->z.next_out = out + len;
		inf->z.avail_out = (uInt)(cap - len);
		rc = inflate(&inf->z, Z_SYNC_FLUSH);
		len = cap - inf->z.avail_out;
	} while (rc == Z_OK && (inf->z.avail_in > 0 || inf->z.avail_out == 0));
	free(in);
	if (rc != Z_OK && rc != Z_BUF_ERROR) {
		free(out);
		return -1;
	}
	inf->messages++;
	inf->in_bytes += c->msg_len;
	inf->out_bytes += len;
	free(c->msg);
	c->msg = out;
	c->msg_cap = cap;
	c->msg_len = len;
	return 0;
}

static const char pmd_offer[] = "permessage-deflate; client_max_window_bits";

static void test_ws_permessage_deflate(void **state)
{
	qfixture *f = *state;
	START(f, "--log-level", "info");
	int port = f->srv.port;
	/* a client that does not offer it: no extension, plain frames */
	qclient a;
	join(&a, port, 0xa1, "z");
	assert_string_equal(a.ws.extensions, "");
	size_t chunk = 64 * 1024;
	char *part = malloc(chunk + 1);
	for (size_t i = 0; i < chunk; i++)
		part[i] = "the quick brown fox jumps over the lazy dog. "[i % 45];
	part[chunk] = '\0';
	for (int i = 0; i < 5; i++)
		insert_acked(&a, (size_t)i * chunk, part, (uint64_t)i + 1);

	/* a client that offers it gets it, and its catch-up comes compressed */
	qclient b;
	assert_int_equal(qc_connect(&b, port, 0xb2), 0);
	ws_free(&b.ws);
	assert_int_equal(ws_connect_ext(&b.ws, port, NULL, "quire.v1", pmd_offer, 0, T_MS), 0);
	assert_non_null(strstr(b.ws.extensions, "permessage-deflate"));
	inflater inf;
	memset(&inf, 0, sizeof inf);
	assert_int_equal(inflateInit2(&inf.z, -15), Z_OK);
	b.ws.inflate = inflate_msg;
	b.ws.inflate_ctx = &inf;
	assert_int_equal(qc_hello(&b, "z", 0, 0), 0);
	assert_int_equal(qc_expect(&b, WIRE_SERVER_WELCOME, T_MS), 1);
	while (b.last_seq < 5)
		assert_int_equal(qc_recv(&b, T_MS), 1);
	char *ta = qc_text(&a), *tb = qc_text(&b);
	assert_string_equal(ta, tb);
	assert_true(inf.messages >= 1);
	assert_true(inf.in_bytes * 4 < inf.out_bytes); /* it really compressed */
	/* both ways: its own (uncompressed) Update is acked, A's change arrives;
	 * both are under --deflate-min-bytes (256), so they come as plain
	 * frames (RSV1 clear) on the deflate connection */
	size_t compressed = inf.messages;
	insert_acked(&b, 0, "deflated ", 6);
	uint64_t k = qc_insert(&a, 0, "plain ");
	assert_true(k != 0);
	while (b.last_seq < 7)
		assert_int_equal(qc_recv(&b, T_MS), 1);
	assert_int_equal(qc_expect(&a, WIRE_SERVER_ACK, T_MS), 1);
	while (a.last_seq < 7)
		assert_int_equal(qc_recv(&a, T_MS), 1);
	assert_int_equal(inf.messages, compressed);
	assert_false(b.ws.msg_compressed);
	/* a large live change is compressed again, and inflates with the
	 * context the client kept from the catch-up (a fresh stream per message
	 * needs none) */
	k = qc_insert(&a, 0, part + chunk - 4096);
	assert_true(k != 0);
	while (b.last_seq < 8)
		assert_int_equal(qc_recv(&b, T_MS), 1);
	assert_int_equal(inf.messages, compressed + 1);
	assert_true(b.ws.msg_compressed);
	assert_int_equal(qc_expect(&a, WIRE_SERVER_ACK, T_MS), 1);
	while (a.last_seq < 8)
		assert_int_equal(qc_recv(&a, T_MS), 1);
	free(ta);
	free(tb);
	ta = qc_text(&a);
	tb = qc_text(&b);
	assert_string_equal(ta, tb);
	free(ta);
	free(tb);
	inflateEnd(&inf.z);
	qc_free(&a);
	qc_free(&b);

	/* --no-deflate: the offer is ignored */
	qserver q2;
	assert_int_equal(qserver_init(&q2), 0);
	const char *const extra[] = {"--no-deflate", NULL};
	assert_int_equal(qserver_start(&q2, extra), 0);
	ws_client w;
	assert_int_equal(ws_connect_ext(&w, q2.port, NULL, "quire.v1", pmd_offer, 0, T_MS), 0);
	assert_string_equal(w.extensions, "");
	ws_free(&w);
	assert_int_equal(qserver_stop(&q2, SIGTERM, 10000), 0);
	qserver_cleanup(&q2);
	free(part);
}

/* The server decodes every connection's messages with one shared decoder:
 * a broken message is still answered on its own connection, addressed with
 * what its own bytes say (never with a handle or batch left over from
 * another connection's message), and nobody else's state is touched. */
static void test_ws_shared_decoder_keeps_connections_apart(void **state)
{
	qfixture *f = *state;
	START(f, "--log-level", "info");
	int port = f->srv.port;
	qclient a, b;
	assert_int_equal(qc_connect(&a, port, 0xa1), 0);
	a.handle = 7; /* A's messages carry handle 7, B's handle 1 */
	assert_int_equal(qc_hello(&a, "shared", 0, 0), 0);
	assert_int_equal(qc_expect(&a, WIRE_SERVER_WELCOME, T_MS), 1);
	assert_int_equal(a.m->doc, 7);
	join(&b, port, 0xb2, "shared");
	/* A's Update is the last message decoded before B's garbage */
	insert_acked(&a, 0, "abc", 1);
	static const uint8_t garbage[] = {0xff, 0xff, 0xff};
	assert_int_equal(ws_send(&b.ws, garbage, sizeof garbage), 0);
	assert_int_equal(qc_expect(&b, WIRE_SERVER_ERROR, T_MS), 1);
	assert_int_equal(b.m->doc, 0);
	assert_int_equal(b.m->error.code, WIRE_ERR_BAD_MESSAGE);
	assert_int_equal(b.m->error.client_batch, 0);
	/* an empty Update of B (doc 1, client_batch 42, no ops): its own
	 * handle and batch, read from its bytes */
	insert_acked(&a, 3, "def", 2);
	static const uint8_t empty_update[] = {0x08, 0x01, 0x1a, 0x02, 0x08, 42};
	assert_int_equal(ws_send(&b.ws, empty_update, sizeof empty_update), 0);
	assert_int_equal(qc_expect(&b, WIRE_SERVER_ERROR, T_MS), 1);
	assert_int_equal(b.m->doc, 1);
	assert_int_equal(b.m->error.code, WIRE_ERR_BAD_MESSAGE);
	assert_int_equal(b.m->error.client_batch, 42);
	/* both connections still work, and nothing went to A */
	assert_int_equal(qc_expect(&a, WIRE_SERVER_ERROR, QUIET_MS), 0);
	insert_acked(&a, 6, "g", 3);
	while (b.last_seq < 3)
		assert_int_equal(qc_recv(&b, T_MS), 1);
	qc_free(&a);
	qc_free(&b);
}

/* With a token secret the HTTP API needs a token too: Authorization:
 * Bearer or ?token=, granting the document (checked before the document is
 * looked up, so an unknown document answers 404 only to a valid token). */
static void test_http_requires_a_token_when_a_secret_is_set(void **state)
{
	qfixture *f = *state;
	static const char key[] = "an http test secret of 32 bytes!";
	START(f, "--token-secret", key);
	int port = f->srv.port;
	char good[SRV_TOKEN_MAX], other[SRV_TOKEN_MAX], forged[SRV_TOKEN_MAX];
	srv_token t = {.write = false, .exp = (int64_t)time(NULL) + 600};
	snprintf(t.sub, sizeof t.sub, "dashboard");
	snprintf(t.doc, sizeof t.doc, "team/*");
	assert_true(srv_token_mint((const uint8_t *)key, strlen(key), &t, good, sizeof good) > 0);
	snprintf(t.doc, sizeof t.doc, "elsewhere");
	assert_true(srv_token_mint((const uint8_t *)key, strlen(key), &t, other, sizeof other) > 0);
	snprintf(t.doc, sizeof t.doc, "team/*");
	static const char wrong[] = "not the server's secret, 32 byte";
	assert_true(srv_token_mint((const uint8_t *)wrong, strlen(wrong), &t, forged, sizeof forged) > 0);

	hresp r;
	char h[SRV_TOKEN_MAX + 64], path[SRV_TOKEN_MAX + 64];
	assert_int_equal(http_get(port, "/v1/docs/team/plan", NULL, &r), 0);
	assert_int_equal(r.status, 401);
	hresp_free(&r);
	snprintf(h, sizeof h, "Authorization: Bearer %s\r\n", forged);
	assert_int_equal(http_get(port, "/v1/docs/team/plan", h, &r), 0);
	assert_int_equal(r.status, 401);
	hresp_free(&r);
	snprintf(h, sizeof h, "Authorization: Bearer %s\r\n", other);
	assert_int_equal(http_get(port, "/v1/docs/team/plan", h, &r), 0);
	assert_int_equal(r.status, 403);
	hresp_free(&r);
	snprintf(h, sizeof h, "Authorization: Bearer %s\r\n", good);
	assert_int_equal(http_get(port, "/v1/docs/team/plan", h, &r), 0);
	assert_int_equal(r.status, 404); /* allowed; the document does not exist */
	hresp_free(&r);
	snprintf(path, sizeof path, "/v1/docs/team/plan?token=%s", good);
	assert_int_equal(http_get(port, path, NULL, &r), 0);
	assert_int_equal(r.status, 404);
	hresp_free(&r);
	/* the event stream is guarded the same way */
	assert_int_equal(http_get(port, "/v1/docs/team/plan/events", NULL, &r), 0);
	assert_int_equal(r.status, 401);
	hresp_free(&r);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_http_get_json_and_text, qfixture_setup,
						qfixture_teardown),
		cmocka_unit_test_setup_teardown(test_http_requires_a_token_when_a_secret_is_set,
						qfixture_setup, qfixture_teardown),
		cmocka_unit_test_setup_teardown(test_http_get_unloaded_document_and_errors,
						qfixture_setup, qfixture_teardown),
		cmocka_unit_test_setup_teardown(test_http_json_escaping, qfixture_setup,
						qfixture_teardown),
		cmocka_unit_test_setup_teardown(test_http_large_document, qfixture_setup,
						qfixture_teardown),
		cmocka_unit_test_setup_teardown(test_sse_live_events_follow_the_text,
						qfixture_setup, qfixture_teardown),
		cmocka_unit_test_setup_teardown(test_sse_resume_with_last_event_id, qfixture_setup,
						qfixture_teardown),
		cmocka_unit_test_setup_teardown(test_sse_trimmed_log_gives_reset, qfixture_setup,
						qfixture_teardown),
		cmocka_unit_test_setup_teardown(test_sse_closed_cleanly_on_sigterm, qfixture_setup,
						qfixture_teardown),
		cmocka_unit_test_setup_teardown(test_ws_permessage_deflate, qfixture_setup,
						qfixture_teardown),
		cmocka_unit_test_setup_teardown(test_ws_shared_decoder_keeps_connections_apart,
						qfixture_setup, qfixture_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
