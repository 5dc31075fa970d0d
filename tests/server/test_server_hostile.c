/*
 * test_server_hostile.c - the hostile-input catalogue (issue 7): one table
 * of malformed or malicious inputs, each played against the real
 * quire-server over 127.0.0.1, each with the outcome docs/PROTOCOL.md
 * promises for it: an Error code, a WebSocket close code, an HTTP status,
 * a harmless reply (the input is legal and must change nothing), or
 * silence.
 *
 * Contract of every row, checked by the runner after the outcome:
 *  - an input answered with an Error or a reply leaves its connection
 *    usable (a Ping on it is still answered: section 6, "an error never
 *    closes the connection");
 *  - the document "cat/doc" is unaffected: GET /v1/docs/cat/doc still
 *    shows the witnesses' text at the same head seq;
 *  - every other client is unaffected: witness W1, joined all along,
 *    received nothing meanwhile, and its next edit is acked with seq
 *    head + 1, which witness W2 receives as the very next message;
 *  - the server exits 0 on SIGTERM at the end of its rows (under ASan:
 *    no leak, no UB) and the database holds exactly the witnesses' text.
 * A row that makes valid changes on purpose says how many (`commits`);
 * the witnesses must receive exactly those.
 *
 * Rows share one server per set of flags (a "profile"): OPEN (small limits
 * so that size rows stay fast), SECURE (tokens and an Origin allow-list),
 * FLOOD (low rate limits) and QUEUE (a small send queue); the rows of a
 * profile are adjacent, so each server starts once. docs/SECURITY.md lists
 * the same table (keep them in step). Everything is bounded in time: T_MS
 * for an expected message, QUIET_MS for "nothing arrives".
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
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

#include "auth.h"
#include "sectest.h"

#define DOC "cat/doc"
#define KEY "hostile-secret-0123456789abcdef"
#define MAX_MSG (64 * 1024) /* --max-message-bytes of OPEN */
#define MAX_DOC (16 * 1024) /* --max-doc-bytes of OPEN */

/* ---- raw protobuf, written by hand so that anything can be sent ------------------ */

typedef struct rb {
	uint8_t *p;
	size_t len, cap;
} rb;

static void rb_put(rb *b, const void *d, size_t n)
{
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		while (cap < b->len + n)
			cap *= 2;
		b->p = realloc(b->p, cap);
		assert_non_null(b->p);
		b->cap = cap;
	}
	if (n > 0)
		memcpy(b->p + b->len, d, n);
	b->len += n;
}

static void rb_free(rb *b)
{
	free(b->p);
	memset(b, 0, sizeof *b);
}

static void pb_varint(rb *b, uint64_t v)
{
	do {
		uint8_t c = (uint8_t)(v & 0x7f);
		v >>= 7;
		if (v)
			c |= 0x80;
		rb_put(b, &c, 1);
	} while (v);
}

static void pb_key(rb *b, unsigned field, unsigned wt) { pb_varint(b, (uint64_t)field << 3 | wt); }

/* proto3: zero is omitted */
static void pb_u64(rb *b, unsigned field, uint64_t v)
{
	if (v) {
		pb_key(b, field, 0);
		pb_varint(b, v);
	}
}

static void pb_bytes(rb *b, unsigned field, const void *d, size_t n)
{
	pb_key(b, field, 2);
	pb_varint(b, n);
	rb_put(b, d, n);
}

/* Append inner as a sub-message and free it. */
static void pb_sub(rb *b, unsigned field, rb *inner)
{
	pb_bytes(b, field, inner->p, inner->len);
	rb_free(inner);
}

/* An Op with every field settable, valid or not. */
typedef struct rop {
	uint64_t replica;
	uint32_t counter, lamport, len;
	bool del, no_kind;
	uint64_t lr, rr, tr; /* left, right, target replica */
	uint32_t lc, rc, tc;
	const char *text; /* NUL-terminated unless text_len */
	size_t text_len;
	bool lnone, rnone;
} rop;

static void enc_op(rb *b, const rop *o)
{
	rb op = {0}, k = {0};
	pb_u64(&op, 1, o->replica);
	pb_u64(&op, 2, o->counter);
	pb_u64(&op, 3, o->lamport);
	pb_u64(&op, 4, o->len);
	if (o->del) {
		pb_u64(&k, 1, o->tr);
		pb_u64(&k, 2, o->tc);
		pb_sub(&op, 6, &k);
	} else if (!o->no_kind) {
		pb_u64(&k, 1, o->lr);
		pb_u64(&k, 2, o->lc);
		pb_u64(&k, 3, o->rr);
		pb_u64(&k, 4, o->rc);
		if (o->text != NULL)
			pb_bytes(&k, 5, o->text, o->text_len ? o->text_len : strlen(o->text));
		pb_u64(&k, 7, o->lnone);
		pb_u64(&k, 8, o->rnone);
		pb_sub(&op, 5, &k);
	}
	pb_sub(b, 2, &op); /* Update.ops */
}

static void msg_update(rb *b, uint32_t handle, uint64_t batch, const rop *ops, size_t n)
{
	rb u = {0};
	pb_u64(&u, 1, batch);
	for (size_t i = 0; i < n; i++)
		enc_op(&u, &ops[i]);
	pb_u64(b, 1, handle);
	pb_sub(b, 3, &u);
}

static void msg_hello(rb *b, uint32_t handle, uint32_t version, const char *id, size_t id_len,
		      uint64_t replica, uint64_t last_seq, const char *token, size_t token_len)
{
	rb h = {0};
	pb_u64(&h, 1, version);
	if (id_len)
		pb_bytes(&h, 2, id, id_len);
	pb_u64(&h, 3, replica);
	pb_u64(&h, 4, last_seq);
	if (token_len)
		pb_bytes(&h, 5, token, token_len);
	pb_u64(b, 1, handle);
	pb_sub(b, 2, &h);
}

static void msg_ping(rb *b, uint32_t handle, uint64_t nonce)
{
	rb p = {0};
	pb_u64(&p, 1, nonce);
	pb_u64(b, 1, handle);
	pb_sub(b, 5, &p);
}

static void msg_presence(rb *b, uint32_t handle, uint64_t replica, const char *name,
			 size_t name_len, uint64_t anchor_replica, uint32_t anchor_counter)
{
	rb p = {0}, a = {0};
	pb_u64(&p, 1, replica);
	pb_u64(&p, 2, 1);
	if (name_len)
		pb_bytes(&p, 3, name, name_len);
	pb_u64(&a, 1, anchor_replica);
	pb_u64(&a, 2, anchor_counter);
	pb_sub(&p, 5, &a);
	pb_u64(b, 1, handle);
	pb_sub(b, 4, &p);
}

/* ---- raw WebSocket frames ------------------------------------------------------ */

/* A frame with first byte b0 (FIN, RSV, opcode as given), masked or not
 * (RFC 6455 5.2). Returns its size. */
static size_t raw_frame(uint8_t *out, uint8_t b0, bool masked, const void *data, size_t len)
{
	size_t h = 0;
	uint8_t m = masked ? 0x80 : 0;
	out[h++] = b0;
	if (len < 126) {
		out[h++] = (uint8_t)(m | len);
	} else if (len < 65536) {
		out[h++] = m | 126;
		out[h++] = (uint8_t)(len >> 8);
		out[h++] = (uint8_t)len;
	} else {
		out[h++] = m | 127;
		for (int i = 7; i >= 0; i--)
			out[h++] = (uint8_t)((uint64_t)len >> (8 * i));
	}
	static const uint8_t key[4] = {0x11, 0x22, 0x33, 0x44};
	if (masked) {
		memcpy(out + h, key, 4);
		h += 4;
	}
	const uint8_t *src = data;
	for (size_t i = 0; i < len; i++)
		out[h + i] = masked ? src[i] ^ key[i & 3] : src[i];
	return h + len;
}

static void send_frame_raw(qclient *q, uint8_t b0, bool masked, const void *data, size_t len)
{
	uint8_t buf[512];
	assert_true(len + 14 <= sizeof buf);
	size_t n = raw_frame(buf, b0, masked, data, len);
	assert_int_equal(qsend_all(q->ws.fd, buf, n), 0);
}

/* ---- raw HTTP ------------------------------------------------------------------- */

/* Send req[0..len) on a fresh connection; the response's status, or -1
 * when the server hung up without one. */
static int raw_http(int port, const char *req, size_t len)
{
	int fd = qtcp_connect(port, 0, T_MS);
	assert_true(fd >= 0);
	(void)qsend_all(fd, req, len); /* the server may hang up half way */
	char resp[1024];
	size_t got = qread_until(fd, resp, sizeof resp, "\r\n", T_MS);
	close(fd);
	return got >= 12 && strncmp(resp, "HTTP/1.", 7) == 0 ? atoi(resp + 9) : -1;
}

static int http_get_status(int port, const char *path)
{
	char req[2048];
	int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", path);
	return raw_http(port, req, (size_t)n);
}

/* ---- profiles: one server per set of flags, two witnesses ----------------------- */

enum profile { P_OPEN, P_SECURE, P_FLOOD, P_QUEUE, P_COUNT };

typedef struct prof {
	qserver srv;
	bool up;
	qclient w1, w2;		      /* the witnesses: W1 edits, W2 watches */
	uint64_t head;		      /* the document's head seq, as the witnesses know it */
	crdt_id del;		      /* the id of a delete op in the document */
	char wtok[SRV_TOKEN_MAX + 1]; /* SECURE: a write token for DOC's folder */
	int edits;
} prof;

static const char *const profile_flags[P_COUNT][16] = {
	[P_OPEN] = {"--max-message-bytes", "64K", "--max-doc-bytes", "16K", "--max-docs-per-conn",
		    "4", "--max-ops", "100", NULL},
	[P_SECURE] = {"--token-secret", KEY, "--allow-origin", "https://good.example", NULL},
	[P_FLOOD] = {"--max-msgs-per-s", "20", "--max-bytes-per-s", "8K", "--rate-burst-s", "1",
		     NULL},
	[P_QUEUE] = {"--send-queue-bytes", "256K", NULL},
};

static const char *const profile_names[P_COUNT] = {"OPEN", "SECURE", "FLOOD", "QUEUE"};

static void mint(const char *key, const char *doc, bool write, int64_t exp, char *out)
{
	srv_token t;
	memset(&t, 0, sizeof t);
	snprintf(t.sub, sizeof t.sub, "%s", "hostile");
	snprintf(t.doc, sizeof t.doc, "%s", doc);
	t.write = write;
	t.exp = exp;
	assert_true(srv_token_mint((const uint8_t *)key, strlen(key), &t, out, SRV_TOKEN_MAX + 1) >
		    0);
}

/* Connect and join DOC as replica r with token (NULL: none), then take the
 * catch-up up to `head`. The Welcome must say read_only as given. */
static void join_doc(qclient *q, int port, crdt_replica r, const char *token, uint64_t head,
		     bool read_only)
{
	assert_int_equal(qc_connect(q, port, r), 0);
	assert_int_equal(hello_token(q, DOC, token), 0);
	assert_int_equal(qc_expect(q, WIRE_SERVER_WELCOME, T_MS), 1);
	assert_int_equal(q->m->welcome.read_only, read_only);
	while (q->last_seq < head)
		assert_int_equal(qc_recv(q, T_MS), 1);
}

#define W1 ((crdt_replica)0x5717e55a)
#define W2 ((crdt_replica)0x5717e55b)

static void profile_start(prof *pf, enum profile p)
{
	memset(pf, 0, sizeof *pf);
	assert_int_equal(qserver_init(&pf->srv), 0);
	assert_int_equal(qserver_start(&pf->srv, profile_flags[p]), 0);
	pf->up = true;
	const char *tok = NULL;
	if (p == P_SECURE) {
		mint(KEY, "cat/*", true, (int64_t)time(NULL) + 3600, pf->wtok);
		tok = pf->wtok;
	}
	join_doc(&pf->w1, pf->srv.port, W1, tok, 0, false);
	join_doc(&pf->w2, pf->srv.port, W2, tok, 0, false);
	/* "witness!" then delete the "!": the document has an insert and a
	 * delete op (counters 0-7 and 8 of W1) */
	uint64_t b = qc_insert(&pf->w1, 0, "witness!");
	assert_int_equal(qc_expect(&pf->w1, WIRE_SERVER_ACK, T_MS), 1);
	assert_int_equal(pf->w1.m->ack.client_batch, b);
	b = qc_delete(&pf->w1, 7, 1);
	assert_int_equal(qc_expect(&pf->w1, WIRE_SERVER_ACK, T_MS), 1);
	assert_int_equal(pf->w1.m->ack.seq, 2);
	while (pf->w2.last_seq < 2)
		assert_int_equal(qc_recv(&pf->w2, T_MS), 1);
	pf->head = 2;
	pf->del = (crdt_id){W1, 8};
}

/* The committed text of DOC seen over HTTP must be W1's, at pf->head. */
static void check_http_doc(prof *pf, const char *row)
{
	char path[SRV_TOKEN_MAX + 64];
	snprintf(path, sizeof path, "/v1/docs/" DOC "%s%s", pf->wtok[0] ? "?token=" : "", pf->wtok);
	static char body[8192];
	int status = 0;
	assert_int_equal(qhttp_get(pf->srv.port, path, &status, body, sizeof body, T_MS), 0);
	char *text = qc_text(&pf->w1);
	char want_seq[64], want_text[1024];
	snprintf(want_seq, sizeof want_seq, "\"seq\":%llu,", (unsigned long long)pf->head);
	snprintf(want_text, sizeof want_text, "\"text\":\"%s\"", text);
	if (status != 200 || strstr(body, want_seq) == NULL || strstr(body, want_text) == NULL)
		fail_msg("%s: the document changed: HTTP %d %s (want seq %llu, text '%s')", row,
			 status, body, (unsigned long long)pf->head, text);
	free(text);
}

/* Every other client is unaffected: W1 got nothing meanwhile and its edit is
 * acked with the next seq; W2's very next message is that change. */
static void check_witnesses(prof *pf, const char *row)
{
	char c[2] = {(char)('a' + pf->edits++ % 26), '\0'};
	char *before = qc_text(&pf->w1);
	uint64_t b = qc_insert(&pf->w1, strlen(before), c);
	free(before);
	assert_int_not_equal(b, 0);
	if (qc_recv(&pf->w1, T_MS) != 1 || pf->w1.m->kind != WIRE_SERVER_ACK ||
	    pf->w1.m->ack.client_batch != b || pf->w1.m->ack.seq != pf->head + 1)
		fail_msg("%s: witness W1 did not get Ack{%llu, seq %llu} next (kind %d, closed %d)",
			 row, (unsigned long long)b, (unsigned long long)pf->head + 1,
			 pf->w1.m->kind, pf->w1.ws.closed);
	if (qc_recv(&pf->w2, T_MS) != 1 || pf->w2.m->kind != WIRE_SERVER_CHANGES ||
	    pf->w2.m->n_changes != 1 || pf->w2.m->seqs[0] != pf->head + 1)
		fail_msg("%s: witness W2 did not get Changes{seq %llu} next (kind %d, closed %d)",
			 row, (unsigned long long)pf->head + 1, pf->w2.m->kind, pf->w2.ws.closed);
	pf->head++;
	char *t1 = qc_text(&pf->w1), *t2 = qc_text(&pf->w2);
	assert_string_equal(t1, t2);
	free(t1);
	free(t2);
}

static void profile_stop(prof *pf)
{
	if (!pf->up)
		return;
	char *text = qc_text(&pf->w1);
	qc_free(&pf->w1);
	qc_free(&pf->w2);
	int st = qserver_stop(&pf->srv, SIGTERM, 10000);
	if (st != 0) {
		qserver_dump_log(&pf->srv);
		fail_msg("the server exited with %d", st);
	}
	/* what is on disk is exactly what the witnesses saw */
	uint64_t head = 0;
	char *disk = qdb_text(pf->srv.db, DOC, &head);
	assert_non_null(disk);
	assert_string_equal(disk, text);
	assert_int_equal(head, pf->head);
	free(disk);
	free(text);
	qserver_cleanup(&pf->srv);
	pf->up = false;
}

/* ---- the catalogue -------------------------------------------------------------- */

enum outcome { O_NONE, O_ERROR, O_CLOSE, O_HTTP, O_REPLY, O_SILENT };
static const char *const outcome_names[] = {"nothing", "Error", "close",
					    "HTTP",    "reply", "silence"};

/* How the attacker is set up before its row runs. */
enum setup {
	S_NONE,	     /* no WebSocket (HTTP rows make their own connections) */
	S_CONN,	     /* connected, nothing sent */
	S_JOIN,	     /* joined DOC on handle 1 as its own replica (write token on SECURE) */
	S_JOIN_READ, /* SECURE: joined DOC with a read-only token */
	S_JOIN_W1,   /* joined DOC as W1's replica: a collision */
};

typedef struct cat {
	prof *pf;
	int port;
	qclient a; /* the attacker */
	bool a_open;
	crdt_replica r;
	enum outcome got;
	int got_code;
	uint32_t err_doc;
	uint64_t err_batch;
} cat;

typedef struct row {
	const char *name;
	enum profile profile;
	enum setup setup;
	void (*input)(cat *x); /* produce the input; may observe the outcome itself */
	enum outcome want;
	int code;	/* ErrorCode, close code, HTTP status or ServerMessage kind */
	bool addressed; /* O_ERROR: check the Error's doc and client_batch */
	uint32_t doc;
	uint64_t batch;
	bool no_ping; /* the connection is rate-limited: skip the usable-after check */
	int commits;  /* valid changes the row makes on purpose (0: none) */
} row;

static void send_rb(cat *x, rb *b)
{
	assert_int_equal(ws_send(&x->a.ws, b->p, b->len), 0);
	rb_free(b);
}

static void send_bytes(cat *x, const void *d, size_t n)
{
	assert_int_equal(ws_send(&x->a.ws, d, n), 0);
}

static void send_update(cat *x, uint32_t handle, uint64_t batch, const rop *ops, size_t n)
{
	rb b = {0};
	msg_update(&b, handle, batch, ops, n);
	send_rb(x, &b);
}

/* A one-op Update on handle 1, batch 7. */
static void send_op(cat *x, const rop *o) { send_update(x, 1, 7, o, 1); }

/* A valid insert of the attacker's next unit at the start. */
static rop good_insert(const cat *x)
{
	return (rop){.replica = x->r,
		     .len = 1,
		     .lamport = 100,
		     .text = "x",
		     .lnone = true,
		     .rr = W1,
		     .rc = 0};
}

static void observe(cat *x, int timeout_ms)
{
	int r = qc_recv(&x->a, timeout_ms);
	if (r == 0) {
		x->got = O_SILENT;
	} else if (r < 0) {
		x->got = O_CLOSE;
		x->got_code = x->a.ws.closed ? x->a.ws.close_code : -1;
	} else if (x->a.m->kind == WIRE_SERVER_ERROR) {
		x->got = O_ERROR;
		x->got_code = x->a.m->error.code;
		x->err_doc = x->a.m->doc;
		x->err_batch = x->a.m->error.client_batch;
	} else {
		x->got = O_REPLY;
		x->got_code = x->a.m->kind;
	}
}

static void http_outcome(cat *x, int status)
{
	x->got = O_HTTP;
	x->got_code = status;
}

/* ---- rows: WebSocket framing ---- */

static void in_text_frame(cat *x)
{
	assert_int_equal(ws_send_frame(&x->a.ws, WS_TEXT, true, "hello", 5), 0);
}

static void in_frame_cut_short(cat *x)
{
	/* a header announcing 256 bytes, then only 10 of them: the server
	 * waits for the rest and answers nothing */
	uint8_t payload[256] = {0}, buf[300];
	size_t n = raw_frame(buf, 0x82, true, payload, sizeof payload);
	assert_int_equal(n, 4 + 4 + sizeof payload); /* 2 + 2 length bytes, mask */
	assert_int_equal(qsend_all(x->a.ws.fd, buf, 4 + 4 + 10), 0);
}

static void in_fragments_with_ping(cat *x)
{
	rb b = {0};
	msg_ping(&b, 0, 0x1234);
	size_t half = b.len / 2;
	assert_int_equal(ws_send_frame(&x->a.ws, WS_BINARY, false, b.p, half), 0);
	assert_int_equal(ws_send_frame(&x->a.ws, WS_PING, true, "in between", 10), 0);
	assert_int_equal(ws_send_frame(&x->a.ws, WS_CONT, true, b.p + half, b.len - half), 0);
	rb_free(&b);
	observe(x, T_MS);
	if (x->got == O_REPLY)
		assert_int_equal(x->a.m->nonce, 0x1234);
}

static void in_new_message_inside_fragmented(cat *x)
{
	static const uint8_t part[] = {0x2a, 0x00};
	assert_int_equal(ws_send_frame(&x->a.ws, WS_BINARY, false, part, 1), 0);
	assert_int_equal(ws_send_frame(&x->a.ws, WS_BINARY, true, part, 2), 0);
}

static void in_continuation_without_start(cat *x)
{
	static const uint8_t ping[] = {0x2a, 0x00};
	assert_int_equal(ws_send_frame(&x->a.ws, WS_CONT, true, ping, 2), 0);
}

static void in_unmasked_frame(cat *x)
{
	static const uint8_t ping[] = {0x2a, 0x00};
	send_frame_raw(&x->a, 0x82, false, ping, 2);
}

static void in_reserved_opcode(cat *x) { send_frame_raw(&x->a, 0x83, true, "ab", 2); }

static void in_rsv_bits(cat *x)
{
	static const uint8_t ping[] = {0x2a, 0x00};
	send_frame_raw(&x->a, 0x80 | 0x40 | 0x02, true, ping, 2); /* RSV1, no extension */
}

static void in_big_control_frame(cat *x)
{
	uint8_t big[200];
	memset(big, 'p', sizeof big);
	send_frame_raw(&x->a, 0x89, true, big, sizeof big);
}

static void in_fragmented_control_frame(cat *x) { send_frame_raw(&x->a, 0x09, true, "ab", 2); }

static void in_close_one_byte(cat *x) { send_frame_raw(&x->a, 0x88, true, "\x03", 1); }

static void in_close_bad_code(cat *x)
{
	static const uint8_t code[] = {0x03, 0xe7}; /* 999: not a valid close code */
	send_frame_raw(&x->a, 0x88, true, code, 2);
}

static void in_ws_ping_flood(cat *x)
{
	/* 2000 WebSocket pings written at once, then a protocol Ping: the
	 * connection keeps working (ws_recv swallows the pongs; lws holds at
	 * most one pending pong, so the flood costs no memory) */
	enum { N = 2000 };
	size_t one = 2 + 4 + 8;
	uint8_t *buf = malloc(N * one);
	assert_non_null(buf);
	for (size_t i = 0; i < N; i++)
		raw_frame(buf + i * one, 0x89, true, "pingpong", 8);
	assert_int_equal(qsend_all(x->a.ws.fd, buf, N * one), 0);
	free(buf);
	rb b = {0};
	msg_ping(&b, 0, 77);
	send_rb(x, &b);
}

/* ---- rows: protobuf ---- */

static void in_protobuf_cut_short(cat *x)
{
	rop o = good_insert(x);
	rb b = {0};
	msg_update(&b, 1, 7, &o, 1);
	b.len -= 3;
	send_rb(x, &b);
}

static void in_length_past_end(cat *x)
{
	static const uint8_t m[] = {0x08, 0x01, 0x1a, 0x7f, 0x08, 0x01};
	send_bytes(x, m, sizeof m);
}

static void in_empty_message(cat *x) { send_bytes(x, "", 0); }

static void in_garbage(cat *x)
{
	static const uint8_t junk[] = {0xff, 0xff, 0xff, 0x01, 0x02};
	send_bytes(x, junk, sizeof junk);
}

static void in_over_limit(cat *x)
{
	/* 64 KiB + 1, in fragments: dropped while reassembling */
	static uint8_t big[MAX_MSG + 1];
	memset(big, 0x2a, sizeof big);
	assert_int_equal(ws_send_frame(&x->a.ws, WS_BINARY, false, big, MAX_MSG / 2), 0);
	assert_int_equal(
		ws_send_frame(&x->a.ws, WS_CONT, true, big + MAX_MSG / 2, sizeof big - MAX_MSG / 2),
		0);
}

static void in_over_hard_limit(cat *x)
{
	/* 16 x 64 KiB + 1: the server closes (1009) while it arrives, so
	 * late writes may fail */
	static uint8_t big[MAX_MSG];
	memset(big, 0x2a, sizeof big);
	bool ok = ws_send_frame(&x->a.ws, WS_BINARY, false, big, sizeof big) == 0;
	for (int i = 1; ok && i < 16; i++)
		ok = ws_send_frame(&x->a.ws, WS_CONT, false, big, sizeof big) == 0;
	if (ok)
		(void)ws_send_frame(&x->a.ws, WS_CONT, true, big, 1);
}

static void in_wire_type_doc(cat *x)
{
	static const uint8_t m[] = {0x0a, 0x01, 0x01, 0x2a, 0x00}; /* doc as bytes */
	send_bytes(x, m, sizeof m);
}

static void in_wire_type_hello(cat *x)
{
	static const uint8_t m[] = {0x08, 0x01, 0x10, 0x05}; /* Hello as a varint */
	send_bytes(x, m, sizeof m);
}

static void in_wire_type_op_field(cat *x)
{
	/* an Op whose counter (field 2) comes as fixed64 */
	rb op = {0}, u = {0}, b = {0};
	pb_u64(&op, 1, x->r);
	pb_key(&op, 2, 1);
	rb_put(&op, "\x01\0\0\0\0\0\0\0", 8);
	pb_u64(&op, 4, 1);
	pb_u64(&u, 1, 7);
	pb_sub(&u, 2, &op);
	pb_u64(&b, 1, 1);
	pb_sub(&b, 3, &u);
	send_rb(x, &b);
}

static void in_overlong_varint(cat *x)
{
	static const uint8_t m[] = {0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
				    0xff, 0xff, 0xff, 0xff, 0x01, 0x2a, 0x00};
	send_bytes(x, m, sizeof m);
}

static void in_huge_length(cat *x)
{
	static const uint8_t m[] = {0x08, 0x01, 0x12, 0xff, 0xff, 0xff,
				    0xff, 0xff, 0xff, 0xff, 0xff, 0x7f};
	send_bytes(x, m, sizeof m);
}

static void in_huge_handle(cat *x)
{
	/* doc = 2^64 - 1 for a uint32 field: read as 0xffffffff, never joined */
	rop o = good_insert(x);
	rb b = {0}, u = {0};
	pb_key(&b, 1, 0);
	pb_varint(&b, UINT64_MAX);
	pb_u64(&u, 1, 7);
	enc_op(&u, &o);
	pb_sub(&b, 3, &u);
	send_rb(x, &b);
}

static void in_unknown_fields(cat *x)
{
	rb p = {0}, b = {0};
	pb_u64(&p, 1, 99);
	pb_u64(&p, 77, 5);	       /* unknown varint in Ping */
	pb_bytes(&p, 78, "future", 6); /* unknown bytes in Ping */
	pb_u64(&b, 1, 0);
	pb_u64(&b, 100, 1); /* unknown in the envelope */
	pb_sub(&b, 5, &p);
	send_rb(x, &b);
	observe(x, T_MS);
	if (x->got == O_REPLY)
		assert_int_equal(x->a.m->nonce, 99);
}

static void in_unknown_kind(cat *x)
{
	static const uint8_t m[] = {0x08, 0x01, 0x4a, 0x00}; /* ClientMessage field 9 */
	send_bytes(x, m, sizeof m);
}

static void in_too_many_unknown_fields(cat *x)
{
	rb p = {0}, b = {0};
	for (int i = 0; i < 12000; i++) {
		pb_key(&p, 31, 0);
		pb_varint(&p, 1);
	}
	pb_sub(&b, 5, &p);
	send_rb(x, &b);
}

/* ---- rows: Hello and handles ---- */

static void hello(cat *x, uint32_t handle, uint32_t version, const char *id, size_t id_len,
		  uint64_t replica, uint64_t last_seq)
{
	rb b = {0};
	msg_hello(&b, handle, version, id, id_len, replica, last_seq, NULL, 0);
	send_rb(x, &b);
}

static void in_hello_version_2(cat *x)
{
	hello(x, 1, 2, DOC, strlen(DOC), x->r, 0);
	observe(x, T_MS);
	if (x->got == O_ERROR)
		assert_string_equal(x->a.m->error.message, "supported protocol versions: 1");
}

static void in_hello_version_0(cat *x) { hello(x, 1, 0, DOC, strlen(DOC), x->r, 0); }
static void in_hello_handle_0(cat *x) { hello(x, 0, 1, DOC, strlen(DOC), x->r, 0); }
static void in_hello_replica_0(cat *x) { hello(x, 1, 1, DOC, strlen(DOC), 0, 0); }
static void in_doc_id_empty(cat *x) { hello(x, 1, 1, "", 0, x->r, 0); }

static void in_doc_id_long(cat *x)
{
	char id[202];
	memset(id, 'a', 201);
	id[201] = '\0';
	hello(x, 1, 1, id, 201, x->r, 0);
}

static void in_doc_id_control(cat *x) { hello(x, 1, 1, "cat/\x01x", 6, x->r, 0); }
static void in_doc_id_utf8(cat *x) { hello(x, 1, 1, "cat/\xff\xfe", 6, x->r, 0); }
static void in_doc_id_nul(cat *x) { hello(x, 1, 1, "cat\0doc", 7, x->r, 0); }
static void in_doc_id_backslash(cat *x) { hello(x, 1, 1, "..\\..\\x", 7, x->r, 0); }

static void in_doc_id_traversal(cat *x)
{
	/* every byte is allowed: it is a key, never a path */
	hello(x, 1, 1, "../../etc/passwd", 16, x->r, 0);
	observe(x, T_MS);
	if (x->got == O_REPLY)
		assert_int_equal(x->a.m->welcome.head_seq, 0);
}

static void in_token_too_long(cat *x)
{
	static char tok[WIRE_MAX_TOKEN + 2];
	memset(tok, 'A', WIRE_MAX_TOKEN + 1);
	rb b = {0};
	msg_hello(&b, 1, 1, DOC, strlen(DOC), x->r, 0, tok, WIRE_MAX_TOKEN + 1);
	send_rb(x, &b);
}

static void in_hello_twice(cat *x) { hello(x, 1, 1, "cat/other", 9, x->r, 0); }
static void in_same_doc_two_handles(cat *x) { hello(x, 2, 1, DOC, strlen(DOC), x->r, 0); }

static void in_future_last_seq(cat *x)
{
	hello(x, 1, 1, DOC, strlen(DOC), x->r, UINT64_MAX);
	observe(x, T_MS);
	if (x->got == O_REPLY) {
		/* the whole document instead of a catch-up (section 5.4) */
		assert_int_equal(x->a.m->kind, WIRE_SERVER_WELCOME);
		assert_int_equal(x->a.m->welcome.head_seq, x->pf->head);
		assert_non_null(x->a.m->welcome.snapshot);
	}
}

static void in_too_many_documents(cat *x)
{
	/* handle 1 is open; 3 more reach the limit of 4 */
	for (uint32_t h = 2; h <= 4; h++) {
		char id[16];
		snprintf(id, sizeof id, "cat/x%u", h);
		hello(x, h, 1, id, strlen(id), x->r, 0);
		assert_int_equal(qc_expect(&x->a, WIRE_SERVER_WELCOME, T_MS), 1);
	}
	hello(x, 5, 1, "cat/x5", 6, x->r, 0);
}

static void in_update_before_hello(cat *x)
{
	rop o = good_insert(x);
	send_update(x, 1, 5, &o, 1);
}

static void in_update_unjoined_handle(cat *x)
{
	rop o = good_insert(x);
	send_update(x, 9, 5, &o, 1);
}

static void in_update_handle_0(cat *x)
{
	rop o = good_insert(x);
	send_update(x, 0, 5, &o, 1);
}

static void in_update_before_welcome(cat *x)
{
	/* Hello and Update in one write: the Update is read before the
	 * Welcome (which leaves at the end of the turn) */
	rop o = good_insert(x);
	rb h = {0}, u = {0};
	msg_hello(&h, 1, 1, DOC, strlen(DOC), x->r, 0, NULL, 0);
	msg_update(&u, 1, 77, &o, 1);
	assert_int_equal(ws_send2(&x->a.ws, h.p, h.len, u.p, u.len), 0);
	rb_free(&h);
	rb_free(&u);
	observe(x, T_MS);
	/* then the Welcome still comes */
	assert_int_equal(qc_expect(&x->a, WIRE_SERVER_WELCOME, T_MS), 1);
	while (x->a.last_seq < x->pf->head)
		assert_int_equal(qc_recv(&x->a, T_MS), 1);
}

static void in_presence_before_hello(cat *x)
{
	rb b = {0};
	msg_presence(&b, 1, x->r, "eve", 3, 0, 0);
	send_rb(x, &b);
}

static void in_update_after_leave(cat *x)
{
	static const uint8_t leave[] = {0x08, 0x01, 0x32, 0x00}; /* Leave{doc 1} */
	send_bytes(x, leave, sizeof leave);
	rop o = good_insert(x);
	send_update(x, 1, 7, &o, 1);
}

static void in_leave_unjoined(cat *x)
{
	static const uint8_t m[] = {0x08, 0x03, 0x32, 0x00}; /* Leave{doc 3} */
	send_bytes(x, m, sizeof m);
}

/* ---- rows: Updates ---- */

static void in_batch_0(cat *x)
{
	rop o = good_insert(x);
	send_update(x, 1, 0, &o, 1);
}

static void in_no_ops(cat *x) { send_update(x, 1, 7, NULL, 0); }

static void in_op_replica_0(cat *x)
{
	rop o = good_insert(x);
	o.replica = 0;
	send_op(x, &o);
}

static void in_op_no_kind(cat *x)
{
	rop o = {.replica = x->r, .len = 1, .no_kind = true};
	send_op(x, &o);
}

static void in_empty_insert(cat *x)
{
	rop o = good_insert(x);
	o.len = 0;
	o.text = "";
	send_op(x, &o);
}

static void in_len_mismatch(cat *x)
{
	rop o = good_insert(x);
	o.len = 2;
	send_op(x, &o);
}

static void text_op(cat *x, const char *text, size_t n)
{
	rop o = good_insert(x);
	o.text = text;
	o.text_len = n;
	send_op(x, &o);
}

static void in_utf8_truncated(cat *x) { text_op(x, "\xc3", 1); }
static void in_utf8_overlong(cat *x) { text_op(x, "\xc0\xaf", 2); }
static void in_utf8_surrogate(cat *x) { text_op(x, "\xed\xa0\x80", 3); }
static void in_text_nul(cat *x) { text_op(x, "\0", 1); }

static void in_counter_overflow(cat *x)
{
	rop o = good_insert(x);
	o.counter = 0x7fffffff;
	send_op(x, &o);
}

static void in_lamport_overflow(cat *x)
{
	rop o = good_insert(x);
	o.lamport = 0x7fffffff;
	send_op(x, &o);
}

static void in_op_len_over(cat *x)
{
	rop o = {.replica = x->r,
		 .len = CRDT_MAX_OP_LEN + 1,
		 .lamport = 100,
		 .del = true,
		 .tr = W1,
		 .tc = 0};
	send_op(x, &o);
}

static void in_too_many_ops(cat *x)
{
	rop ops[101];
	for (uint32_t i = 0; i < 101; i++)
		ops[i] = (rop){.replica = x->r,
			       .counter = i,
			       .lamport = 100 + i,
			       .len = 1,
			       .del = true,
			       .tr = W1,
			       .tc = i % 7};
	send_update(x, 1, 7, ops, 101);
}

static void big_insert(cat *x, size_t n)
{
	char *text = malloc(n + 1);
	assert_non_null(text);
	memset(text, 'B', n);
	text[n] = '\0';
	rop o = good_insert(x);
	o.len = (uint32_t)n;
	o.text = text;
	send_op(x, &o);
	free(text);
}

static void in_text_over_update_limit(cat *x) { big_insert(x, MAX_MSG / 2 + 1000); }
static void in_insert_over_doc_limit(cat *x) { big_insert(x, MAX_DOC + 1000); }

static void in_other_replica(cat *x)
{
	rop o = good_insert(x);
	o.replica = W2; /* another member's replica, at its next counter */
	send_op(x, &o);
}

static void in_counter_gap(cat *x)
{
	rop o = good_insert(x);
	o.counter = 5;
	send_op(x, &o);
}

static void in_origin_unknown(cat *x)
{
	rop o = good_insert(x);
	o.lnone = false;
	o.lr = 0xdeadbeef;
	o.lc = 3;
	send_op(x, &o);
}

static void in_origin_future(cat *x)
{
	rop o = good_insert(x);
	o.lnone = false;
	o.lr = W1;
	o.lc = crdt_doc_seen(x->pf->w1.doc, W1) + 100;
	send_op(x, &o);
}

static void in_delete_unknown(cat *x)
{
	rop o = {.replica = x->r, .len = 3, .lamport = 100, .del = true, .tr = 0xdeadbeef};
	send_op(x, &o);
}

static void in_delete_unseen(cat *x)
{
	/* starts inside W1's units, runs past the last one */
	rop o = {.replica = x->r, .len = 500, .lamport = 100, .del = true, .tr = W1, .tc = 2};
	send_op(x, &o);
}

static void in_delete_of_delete(cat *x)
{
	rop o = {.replica = x->r,
		 .len = 1,
		 .lamport = 100,
		 .del = true,
		 .tr = x->pf->del.replica,
		 .tc = x->pf->del.counter};
	send_op(x, &o);
}

static void in_origin_is_delete(cat *x)
{
	rop o = good_insert(x);
	o.lnone = false;
	o.lr = x->pf->del.replica;
	o.lc = x->pf->del.counter;
	send_op(x, &o);
}

static void in_lamport_past(cat *x)
{
	/* after W1's unit 6 (Lamport 6) but at Lamport 0 */
	rop o = good_insert(x);
	o.lamport = 0;
	o.lnone = false;
	o.lr = W1;
	o.lc = 6;
	send_op(x, &o);
}

static void in_half_good_batch(cat *x)
{
	/* op 0 is fine, op 1 fails only when applied: refused whole */
	rop ops[2] = {
		{.replica = x->r, .lamport = 100, .len = 2, .text = "ab", .lnone = true, .rr = W1},
		{.replica = x->r,
		 .counter = 2,
		 .lamport = 3,
		 .len = 1,
		 .text = "c",
		 .lr = x->r,
		 .lc = 1,
		 .rr = W1},
	};
	send_update(x, 1, 7, ops, 2);
}

static void in_good_then_half_bad(cat *x)
{
	/* one read: a valid Update (batch 7), then one whose op 1 fails when
	 * applied (batch 8): the document is rebuilt from the log plus the
	 * turn's other changes, so batch 7 stays and batch 8 leaves nothing */
	rop good = {
		.replica = x->r, .lamport = 100, .len = 2, .text = "ok", .lnone = true, .rr = W1};
	rop bad[2] = {
		{.replica = x->r,
		 .counter = 2,
		 .lamport = 102,
		 .len = 1,
		 .text = "c",
		 .lr = x->r,
		 .lc = 1,
		 .rr = W1},
		{.replica = x->r,
		 .counter = 3,
		 .lamport = 1,
		 .len = 1,
		 .text = "d",
		 .lr = x->r,
		 .lc = 2,
		 .rr = W1},
	};
	rb u1 = {0}, u2 = {0};
	msg_update(&u1, 1, 7, &good, 1);
	msg_update(&u2, 1, 8, bad, 2);
	assert_int_equal(ws_send2(&x->a.ws, u1.p, u1.len, u2.p, u2.len), 0);
	rb_free(&u1);
	rb_free(&u2);
	observe(x, T_MS); /* the Error leaves at once, the Ack after the commit */
	assert_int_equal(qc_expect(&x->a, WIRE_SERVER_ACK, T_MS), 1);
	assert_int_equal(x->a.m->ack.client_batch, 7);
}

static void in_hello_then_leave(cat *x)
{
	/* left before its Welcome: nothing is sent for the handle */
	rb h = {0};
	static const uint8_t leave[] = {0x08, 0x01, 0x32, 0x00};
	msg_hello(&h, 1, 1, DOC, strlen(DOC), x->r, 0, NULL, 0);
	assert_int_equal(ws_send2(&x->a.ws, h.p, h.len, leave, sizeof leave), 0);
	rb_free(&h);
}

static void in_update_then_leave(cat *x)
{
	/* the change is kept (and still acked: 5.11, "may still arrive") */
	rop o = good_insert(x);
	rb u = {0};
	static const uint8_t leave[] = {0x08, 0x01, 0x32, 0x00};
	msg_update(&u, 1, 7, &o, 1);
	assert_int_equal(ws_send2(&x->a.ws, u.p, u.len, leave, sizeof leave), 0);
	rb_free(&u);
}

static void in_replica_collision(cat *x)
{
	/* joined as W1's replica; W1's counter 0 with other text: taken for a
	 * retransmission (ids name ops), acked with seq 1, nothing applied */
	rop o = {.replica = W1, .len = 2, .lamport = 0, .text = "EV", .lnone = true, .rnone = true};
	send_op(x, &o);
	observe(x, T_MS);
	if (x->got == O_REPLY)
		assert_int_equal(x->a.m->ack.seq, 1);
}

static void in_counter_backwards(cat *x)
{
	/* as W1's replica again: a counter below its next one, new origins */
	rop o = {.replica = W1,
		 .counter = 3,
		 .len = 1,
		 .lamport = 50,
		 .text = "Z",
		 .lnone = true,
		 .rnone = true};
	send_op(x, &o);
}

/* ---- rows: presence ---- */

static void in_presence_bad_utf8(cat *x)
{
	rb b = {0};
	msg_presence(&b, 1, x->r, "ev\xe2\x28\xa1", 5, 0, 0);
	send_rb(x, &b);
}

static void in_presence_long_name(cat *x)
{
	char name[WIRE_MAX_NAME + 1];
	memset(name, 'n', sizeof name);
	rb b = {0};
	msg_presence(&b, 1, x->r, name, sizeof name, 0, 0);
	send_rb(x, &b);
}

static void in_presence_bad_color(cat *x)
{
	rb b = {0}, p = {0}, a = {0};
	pb_u64(&p, 1, x->r);
	pb_u64(&p, 2, 1);
	pb_bytes(&p, 4, "#\xff\xfe", 3);
	pb_sub(&p, 5, &a);
	pb_u64(&b, 1, 1);
	pb_sub(&b, 4, &p);
	send_rb(x, &b);
}

static void in_presence_other_replica(cat *x)
{
	rb b = {0};
	msg_presence(&b, 1, W1, "eve", 3, 0, 0);
	send_rb(x, &b);
}

static void in_presence_bad_anchor(cat *x)
{
	rb b = {0};
	msg_presence(&b, 1, x->r, "eve", 3, 0, 5); /* replica 0 with a counter */
	send_rb(x, &b);
}

/* ---- rows: HTTP ---- */

static void in_http_dotdot(cat *x) { http_outcome(x, http_get_status(x->port, "/v1/docs/../x")); }

static void in_http_encoded_dotdot(cat *x)
{
	/* decoded to the id "../../etc/passwd": a valid name, never written */
	http_outcome(x, http_get_status(x->port, "/v1/docs/%2e%2e/%2e%2e/etc/passwd"));
}

static void in_http_control(cat *x) { http_outcome(x, http_get_status(x->port, "/v1/docs/a%01b")); }

static void in_http_bad_utf8(cat *x) { http_outcome(x, http_get_status(x->port, "/v1/docs/%ff")); }

static void in_http_huge_header(cat *x)
{
	size_t n = 64 * 1024;
	char *req = malloc(n + 256);
	assert_non_null(req);
	int h = snprintf(req, 256, "GET /v1/docs/" DOC " HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ");
	memset(req + h, 'h', n);
	memcpy(req + h + n, "\r\n\r\n", 4);
	http_outcome(x, raw_http(x->port, req, (size_t)h + n + 4));
	free(req);
}

static void in_http_post(cat *x)
{
	static const char req[] = "POST /v1/docs/" DOC " HTTP/1.1\r\nHost: 127.0.0.1\r\n"
				  "Content-Length: 5\r\n\r\nhello";
	http_outcome(x, raw_http(x->port, req, sizeof req - 1));
}

static void in_upgrade_wrong_path(cat *x)
{
	static const char req[] =
		"GET /v1/docs/" DOC " HTTP/1.1\r\nHost: 127.0.0.1\r\n"
		"Upgrade: websocket\r\nConnection: Upgrade\r\n"
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: quire.v1\r\n\r\n";
	http_outcome(x, raw_http(x->port, req, sizeof req - 1));
}

static int upgrade(int port, const char *path, const char *extra)
{
	char req[1024];
	int n = snprintf(req, sizeof req,
			 "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
			 "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
			 "%s\r\n",
			 path, extra);
	return raw_http(port, req, (size_t)n);
}

static void in_upgrade_wrong_protocol(cat *x)
{
	http_outcome(x,
		     upgrade(x->port, "/sync",
			     "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: evil.v9\r\n"));
}

static void in_http_long_uri(cat *x)
{
	char path[1600] = "/v1/docs/";
	memset(path + 9, 'a', 1500);
	path[1509] = '\0';
	http_outcome(x, http_get_status(x->port, path));
}

static void in_http_long_other_path(cat *x)
{
	/* under the /healthz mount, too long for its buffer: not "only GET" */
	char path[400] = "/healthz/";
	memset(path + 9, 'h', 300);
	path[309] = '\0';
	http_outcome(x, http_get_status(x->port, path));
}

static void in_http_bad_last_seq(cat *x)
{
	http_outcome(x, http_get_status(x->port, "/v1/docs/" DOC "/events?last_seq=abc"));
}

static void in_http_huge_last_event_id(cat *x)
{
	static const char req[] = "GET /v1/docs/" DOC "/events HTTP/1.1\r\nHost: 127.0.0.1\r\n"
				  "Last-Event-ID: 99999999999999999999999\r\n\r\n";
	http_outcome(x, raw_http(x->port, req, sizeof req - 1));
}

static void in_http_bad_format(cat *x)
{
	http_outcome(x, http_get_status(x->port, "/v1/docs/" DOC "?format=evil"));
}

/* ---- rows: tokens and Origin (SECURE) ---- */

static void hello_tok(cat *x, const char *tok)
{
	rb b = {0};
	msg_hello(&b, 1, 1, DOC, strlen(DOC), x->r, 0, tok, strlen(tok));
	send_rb(x, &b);
}

static void in_no_token(cat *x) { hello_tok(x, ""); }
static void in_malformed_token(cat *x) { hello_tok(x, "v1.not-a-token"); }

static void in_forged_token(cat *x)
{
	char tok[SRV_TOKEN_MAX + 1];
	mint("another-secret-0123456789abcdef", "cat/*", true, (int64_t)time(NULL) + 60, tok);
	hello_tok(x, tok);
}

static void in_expired_token(cat *x)
{
	char tok[SRV_TOKEN_MAX + 1];
	mint(KEY, "cat/*", true, (int64_t)time(NULL) - 5, tok);
	hello_tok(x, tok);
}

static void in_wrong_doc_token(cat *x)
{
	char tok[SRV_TOKEN_MAX + 1];
	mint(KEY, "other/*", true, (int64_t)time(NULL) + 60, tok);
	hello_tok(x, tok);
}

static void in_token_with_nul(cat *x)
{
	/* a valid token then U+0000 and junk: never cut at the NUL */
	char tok[SRV_TOKEN_MAX + 16];
	mint(KEY, "cat/*", true, (int64_t)time(NULL) + 60, tok);
	size_t n = strlen(tok);
	memcpy(tok + n, "\0junk", 5);
	rb b = {0};
	msg_hello(&b, 1, 1, DOC, strlen(DOC), x->r, 0, tok, n + 5);
	send_rb(x, &b);
}

static void in_http_wrong_doc_token(cat *x)
{
	char tok[SRV_TOKEN_MAX + 1], path[SRV_TOKEN_MAX + 64];
	mint(KEY, "other/*", false, (int64_t)time(NULL) + 60, tok);
	snprintf(path, sizeof path, "/v1/docs/" DOC "?token=%s", tok);
	http_outcome(x, http_get_status(x->port, path));
}

static void in_read_only_writes(cat *x)
{
	rop o = good_insert(x);
	send_op(x, &o);
}

static void in_wrong_origin(cat *x)
{
	http_outcome(x, raw_upgrade(x->port, "https://evil.example", NULL, 0));
}

static void in_http_no_token(cat *x) { http_outcome(x, http_get_status(x->port, "/v1/docs/" DOC)); }

/* A client that goes on writing after the server closed may get a reset
 * instead of the close frame (1006): then the server's counter `name`
 * (read as `before` ahead of the input) says whether it closed with
 * `code` on purpose. */
static void close_code_from_metric(cat *x, const char *name, uint64_t before, int code)
{
	if (x->got != O_CLOSE || x->got_code != 1006)
		return;
	uint64_t now = before;
	for (int i = 0; i < 100 && now != before + 1; i++) {
		now = metric(x->port, name);
		if (now != before + 1) {
			struct timespec ts = {0, 20 * 1000000L};
			nanosleep(&ts, NULL);
		}
	}
	if (now == before + 1)
		x->got_code = code;
}

#define CLOSED_RATE "quire_connections_closed_total{reason=\"rate_limited\"}"
#define CLOSED_SLOW "quire_slow_consumer_disconnects_total"

/* ---- rows: send queue (QUEUE: --send-queue-bytes 256K) ---- */

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

static void in_welcome_loop(cat *x)
{
	/* a 400 KB document of its own, then Leave + Hello (last_seq in the
	 * future: a snapshot in every Welcome) again and again without
	 * reading: each Welcome may pass the send-queue bound, so without the
	 * check at Hello (room.c) the queue grew by 400 KB per Hello */
	qc_free(&x->a);
	memset(&x->a, 0, sizeof x->a);
	x->a.replica = x->r;
	x->a.handle = 1;
	x->a.next_batch = 1;
	x->a.doc = crdt_doc_new(x->r, NULL);
	x->a.m = wire_server_msg_new(NULL);
	assert_int_equal(ws_connect(&x->a.ws, x->port, NULL, "quire.v1", 4096, T_MS), 0);
	assert_int_equal(qc_hello(&x->a, "cat/big", 0, 0), 0);
	assert_int_equal(qc_expect(&x->a, WIRE_SERVER_WELCOME, T_MS), 1);
	enum { BIG = 400 * 1000 };
	char *text = malloc(BIG + 1);
	assert_non_null(text);
	memset(text, 'q', BIG);
	text[BIG] = '\0';
	uint64_t b = qc_insert(&x->a, 0, text);
	free(text);
	assert_int_equal(qc_expect(&x->a, WIRE_SERVER_ACK, T_MS), 1);
	assert_int_equal(x->a.m->ack.client_batch, b);
	static const uint8_t leave[] = {0x08, 0x01, 0x32, 0x00};
	rb h = {0};
	msg_hello(&h, 1, 1, "cat/big", 7, x->r, UINT64_MAX, NULL, 0);
	for (int i = 0; i < 100; i++) {
		/* the server hangs up on the way: stop sending then */
		if (ws_send2(&x->a.ws, leave, sizeof leave, h.p, h.len) != 0)
			break;
		sleep_ms(3); /* one Hello per event-loop turn, as a paced attacker */
	}
	rb_free(&h);
	/* whatever the kernel did not absorb is queued in the server: bounded */
	uint64_t queued = 0;
	for (int i = 0; i < 20; i++) {
		queued = metric(x->port, "quire_send_queue_bytes");
		sleep_ms(10);
	}
	if (queued > 256 * 1024 + 2 * BIG)
		print_error("send queue at %llu bytes after 100 Welcomes\n",
			    (unsigned long long)queued);
	assert_true(queued <= 256 * 1024 + 2 * BIG);
	/* what the kernel took, then the close */
	for (int i = 0; i < 1000; i++) {
		observe(x, T_MS);
		if (x->got != O_REPLY)
			break;
	}
	close_code_from_metric(x, CLOSED_SLOW, 0, 1008);
}

/* ---- rows: floods (FLOOD: 20 messages, 8 KiB per second, 1 s bursts) ---- */

static void pings(cat *x, int n)
{
	rb b = {0};
	msg_ping(&b, 1, 5);
	for (int i = 0; i < n; i++)
		if (ws_send(&x->a.ws, b.p, b.len) != 0)
			break; /* closed under us: the outcome says why */
	rb_free(&b);
}

/* The first Error among the replies (Pongs skipped), or the close. */
static void observe_skip_pongs(cat *x)
{
	for (int i = 0; i < 1000; i++) {
		observe(x, T_MS);
		if (x->got != O_REPLY || x->a.m->kind != WIRE_SERVER_PONG)
			return;
	}
}

static void in_message_flood(cat *x)
{
	pings(x, 50); /* 19 tokens left after the Hello: many refused, < 4 x 20 */
	observe_skip_pongs(x);
}

static void in_message_flood_far(cat *x)
{
	uint64_t before = metric(x->port, CLOSED_RATE);
	pings(x, 300); /* over 4 x 20 refused within a second */
	x->got = O_NONE;
	while (x->got == O_NONE || x->got == O_REPLY || x->got == O_ERROR)
		observe(x, T_MS);
	close_code_from_metric(x, CLOSED_RATE, before, 1008);
}

static void in_byte_flood(cat *x)
{
	/* Pings padded to 6000 bytes with an unknown field, on an 8 KiB
	 * allowance: the first passes, the second borrows, the third is
	 * refused (addressed to the Ping's handle) */
	static uint8_t pad[6000];
	memset(pad, 'F', sizeof pad);
	rb b = {0}, p = {0};
	pb_u64(&p, 1, 3);
	pb_bytes(&p, 99, pad, sizeof pad);
	pb_u64(&b, 1, 1);
	pb_sub(&b, 5, &p);
	for (int i = 0; i < 10; i++) { /* 3 unless the machine is very slow */
		assert_int_equal(ws_send(&x->a.ws, b.p, b.len), 0);
		observe(x, T_MS);
		if (x->got != O_REPLY)
			break;
	}
	rb_free(&b);
}

static void in_byte_flood_far(cat *x)
{
	/* 40 KiB of garbage messages, refused: over 4 x 8 KiB within a second */
	static uint8_t junk[4000];
	memset(junk, 0xff, sizeof junk);
	uint64_t before = metric(x->port, CLOSED_RATE);
	for (int i = 0; i < 40; i++)
		if (ws_send(&x->a.ws, junk, sizeof junk) != 0)
			break;
	x->got = O_NONE;
	while (x->got == O_NONE || x->got == O_REPLY || x->got == O_ERROR)
		observe(x, T_MS);
	close_code_from_metric(x, CLOSED_RATE, before, 1008);
}

/* Expected outcomes: each expands to the row's `want, code` pair. */
#define ERR(c) O_ERROR, WIRE_ERR_##c
#define REPLY(k) O_REPLY, WIRE_SERVER_##k
#define CLOSE(c) O_CLOSE, c
#define HTTP(st) O_HTTP, st
#define SILENT O_SILENT, 0
/* A row; _A: the Error's doc and client_batch are checked too; _F: the
 * connection is rate-limited afterwards, so no Ping is sent on it. */
/* clang-format off */
#define ROW(n, p, s, f, e) {n, p, s, f, e, false, 0, 0, false, 0}
#define ROW_F(n, p, s, f, e) {n, p, s, f, e, false, 0, 0, true, 0}
#define ROW_A(n, p, s, f, e, d, b) {n, p, s, f, e, true, d, b, false, 0}
#define ROW_AF(n, p, s, f, e, d, b) {n, p, s, f, e, true, d, b, true, 0}
/* _C: the row also makes `c` valid changes, which the witnesses receive */
#define ROW_C(n, p, s, f, e, c) {n, p, s, f, e, false, 0, 0, false, c}
#define ROW_AC(n, p, s, f, e, d, b, c) {n, p, s, f, e, true, d, b, false, c}
/* clang-format on */

static const row catalogue[] = {
	/* WebSocket framing */
	ROW("text (non-binary) frame", P_OPEN, S_JOIN, in_text_frame, CLOSE(1003)),
	ROW("frame cut short (header says 256, 10 sent)", P_OPEN, S_JOIN, in_frame_cut_short,
	    SILENT),
	ROW_A("message over --max-message-bytes, fragmented", P_OPEN, S_JOIN, in_over_limit,
	      ERR(TOO_LARGE), 0, 0),
	ROW("message over 16 x the limit (hard limit)", P_OPEN, S_JOIN, in_over_hard_limit,
	    CLOSE(1009)),
	ROW("fragmented message with a ping frame in between", P_OPEN, S_JOIN,
	    in_fragments_with_ping, REPLY(PONG)),
	ROW("new data frame inside a fragmented message", P_OPEN, S_JOIN,
	    in_new_message_inside_fragmented, CLOSE(1002)),
	ROW("continuation frame without a message", P_OPEN, S_JOIN, in_continuation_without_start,
	    CLOSE(1002)),
	ROW("unmasked client frame (tolerated by lws)", P_OPEN, S_JOIN, in_unmasked_frame,
	    REPLY(PONG)),
	ROW("reserved opcode 0x3", P_OPEN, S_JOIN, in_reserved_opcode, CLOSE(1002)),
	ROW("RSV1 set without an extension", P_OPEN, S_JOIN, in_rsv_bits, CLOSE(1002)),
	ROW("control frame over 125 bytes", P_OPEN, S_JOIN, in_big_control_frame, CLOSE(1006)),
	ROW("fragmented control frame", P_OPEN, S_JOIN, in_fragmented_control_frame, CLOSE(1002)),
	ROW("close frame with a 1-byte payload", P_OPEN, S_JOIN, in_close_one_byte, CLOSE(1005)),
	ROW("close frame with code 999", P_OPEN, S_JOIN, in_close_bad_code, CLOSE(1002)),
	ROW("WebSocket ping flood (2000 pings)", P_OPEN, S_JOIN, in_ws_ping_flood, REPLY(PONG)),
	/* protobuf */
	ROW("protobuf cut short (truncated Update)", P_OPEN, S_JOIN, in_protobuf_cut_short,
	    ERR(BAD_MESSAGE)),
	ROW("length prefix past the end", P_OPEN, S_JOIN, in_length_past_end, ERR(BAD_MESSAGE)),
	ROW("empty message", P_OPEN, S_JOIN, in_empty_message, ERR(BAD_MESSAGE)),
	ROW("garbage bytes", P_OPEN, S_JOIN, in_garbage, ERR(BAD_MESSAGE)),
	ROW("wrong wire type: doc as bytes", P_OPEN, S_JOIN, in_wire_type_doc, ERR(BAD_MESSAGE)),
	ROW("wrong wire type: Hello as a varint", P_OPEN, S_JOIN, in_wire_type_hello,
	    ERR(BAD_MESSAGE)),
	ROW("wrong wire type: Op.counter as fixed64", P_OPEN, S_JOIN, in_wire_type_op_field,
	    ERR(BAD_MESSAGE)),
	ROW("overlong varint (11 bytes)", P_OPEN, S_JOIN, in_overlong_varint, ERR(BAD_MESSAGE)),
	ROW("length prefix of 2^63", P_OPEN, S_JOIN, in_huge_length, ERR(BAD_MESSAGE)),
	ROW_A("64-bit varint in the uint32 handle", P_OPEN, S_JOIN, in_huge_handle,
	      ERR(UNKNOWN_DOCUMENT), 0xffffffffu, 7),
	ROW("unknown fields (envelope and Ping)", P_OPEN, S_JOIN, in_unknown_fields, REPLY(PONG)),
	ROW("unknown message kind (field 9)", P_OPEN, S_JOIN, in_unknown_kind, ERR(BAD_MESSAGE)),
	ROW("12,000 unknown fields", P_OPEN, S_JOIN, in_too_many_unknown_fields, ERR(TOO_LARGE)),
	/* Hello, handles, documents */
	ROW_A("Hello protocol_version 2", P_OPEN, S_CONN, in_hello_version_2,
	      ERR(UNSUPPORTED_VERSION), 1, 0),
	ROW("Hello without protocol_version", P_OPEN, S_CONN, in_hello_version_0,
	    ERR(UNSUPPORTED_VERSION)),
	ROW("Hello on handle 0", P_OPEN, S_CONN, in_hello_handle_0, ERR(BAD_MESSAGE)),
	ROW_A("Hello with replica 0", P_OPEN, S_CONN, in_hello_replica_0, ERR(BAD_MESSAGE), 1, 0),
	ROW("doc_id empty", P_OPEN, S_CONN, in_doc_id_empty, ERR(BAD_MESSAGE)),
	ROW("doc_id of 201 bytes", P_OPEN, S_CONN, in_doc_id_long, ERR(BAD_MESSAGE)),
	ROW("doc_id with a control character", P_OPEN, S_CONN, in_doc_id_control, ERR(BAD_MESSAGE)),
	ROW("doc_id of invalid UTF-8", P_OPEN, S_CONN, in_doc_id_utf8, ERR(BAD_MESSAGE)),
	ROW("doc_id with U+0000 inside", P_OPEN, S_CONN, in_doc_id_nul, ERR(BAD_MESSAGE)),
	ROW("doc_id with backslashes", P_OPEN, S_CONN, in_doc_id_backslash, ERR(BAD_MESSAGE)),
	ROW("doc_id ../../etc/passwd (a name, not a path)", P_OPEN, S_CONN, in_doc_id_traversal,
	    REPLY(WELCOME)),
	ROW("token over 4096 bytes", P_OPEN, S_CONN, in_token_too_long, ERR(TOO_LARGE)),
	ROW_A("second Hello on an open handle", P_OPEN, S_JOIN, in_hello_twice, ERR(BAD_MESSAGE), 1,
	      0),
	ROW_A("same document on a second handle", P_OPEN, S_JOIN, in_same_doc_two_handles,
	      ERR(BAD_MESSAGE), 2, 0),
	ROW("Hello with last_seq 2^64-1 (future)", P_OPEN, S_CONN, in_future_last_seq,
	    REPLY(WELCOME)),
	ROW_A("fifth document on one connection (limit 4)", P_OPEN, S_JOIN, in_too_many_documents,
	      ERR(TOO_MANY_DOCUMENTS), 5, 0),
	ROW_A("Update before any Hello", P_OPEN, S_CONN, in_update_before_hello,
	      ERR(UNKNOWN_DOCUMENT), 1, 5),
	ROW_A("Update for a handle never joined", P_OPEN, S_JOIN, in_update_unjoined_handle,
	      ERR(UNKNOWN_DOCUMENT), 9, 5),
	ROW("Update on handle 0", P_OPEN, S_JOIN, in_update_handle_0, ERR(BAD_MESSAGE)),
	ROW_A("Update between Hello and Welcome", P_OPEN, S_CONN, in_update_before_welcome,
	      ERR(UNKNOWN_DOCUMENT), 1, 77),
	ROW("Presence before Hello", P_OPEN, S_CONN, in_presence_before_hello,
	    ERR(UNKNOWN_DOCUMENT)),
	ROW_A("Update after Leave", P_OPEN, S_JOIN, in_update_after_leave, ERR(UNKNOWN_DOCUMENT), 1,
	      7),
	ROW_A("Leave for a handle never joined", P_OPEN, S_JOIN, in_leave_unjoined,
	      ERR(UNKNOWN_DOCUMENT), 3, 0),
	/* Updates */
	ROW("client_batch 0", P_OPEN, S_JOIN, in_batch_0, ERR(BAD_MESSAGE)),
	ROW_A("Update without ops", P_OPEN, S_JOIN, in_no_ops, ERR(BAD_MESSAGE), 1, 7),
	ROW_A("op with replica 0", P_OPEN, S_JOIN, in_op_replica_0, ERR(BAD_MESSAGE), 1, 7),
	ROW("op without a kind", P_OPEN, S_JOIN, in_op_no_kind, ERR(BAD_MESSAGE)),
	ROW("empty insert (len 0, no text)", P_OPEN, S_JOIN, in_empty_insert, ERR(BAD_MESSAGE)),
	ROW("insert len 2 with 1 code point", P_OPEN, S_JOIN, in_len_mismatch, ERR(BAD_MESSAGE)),
	ROW("insert text: truncated UTF-8", P_OPEN, S_JOIN, in_utf8_truncated, ERR(BAD_MESSAGE)),
	ROW("insert text: overlong UTF-8 (C0 AF)", P_OPEN, S_JOIN, in_utf8_overlong,
	    ERR(BAD_MESSAGE)),
	ROW("insert text: UTF-16 surrogate (ED A0 80)", P_OPEN, S_JOIN, in_utf8_surrogate,
	    ERR(BAD_MESSAGE)),
	ROW("insert text: U+0000", P_OPEN, S_JOIN, in_text_nul, ERR(BAD_MESSAGE)),
	ROW("counter + len over 2^31-1", P_OPEN, S_JOIN, in_counter_overflow, ERR(BAD_MESSAGE)),
	ROW("lamport + len over 2^31-1", P_OPEN, S_JOIN, in_lamport_overflow, ERR(BAD_MESSAGE)),
	ROW("op len 2^24+1", P_OPEN, S_JOIN, in_op_len_over, ERR(TOO_LARGE)),
	ROW("101 ops (limit --max-ops 100)", P_OPEN, S_JOIN, in_too_many_ops, ERR(TOO_LARGE)),
	ROW("insert text over the per-Update limit (33 KiB)", P_OPEN, S_JOIN,
	    in_text_over_update_limit, ERR(TOO_LARGE)),
	ROW_A("enormous insert over the document limit (17 KiB)", P_OPEN, S_JOIN,
	      in_insert_over_doc_limit, ERR(TOO_LARGE), 1, 7),
	ROW_A("op claiming another member's replica", P_OPEN, S_JOIN, in_other_replica,
	      ERR(INVALID_OP), 1, 7),
	ROW_A("counter skipping ahead (5, next is 0)", P_OPEN, S_JOIN, in_counter_gap,
	      ERR(MISSING_DEPENDENCY), 1, 7),
	ROW("origin of an unknown replica", P_OPEN, S_JOIN, in_origin_unknown,
	    ERR(MISSING_DEPENDENCY)),
	ROW("origin counter from the future", P_OPEN, S_JOIN, in_origin_future,
	    ERR(MISSING_DEPENDENCY)),
	ROW("delete of an unknown range", P_OPEN, S_JOIN, in_delete_unknown,
	    ERR(MISSING_DEPENDENCY)),
	ROW("delete running past the units seen", P_OPEN, S_JOIN, in_delete_unseen,
	    ERR(MISSING_DEPENDENCY)),
	ROW("delete targeting a delete op", P_OPEN, S_JOIN, in_delete_of_delete, ERR(INVALID_OP)),
	ROW("insert whose origin is a delete op", P_OPEN, S_JOIN, in_origin_is_delete,
	    ERR(INVALID_OP)),
	ROW("Lamport time not after its origin", P_OPEN, S_JOIN, in_lamport_past, ERR(INVALID_OP)),
	ROW_A("good op then a bad one (refused whole)", P_OPEN, S_JOIN, in_half_good_batch,
	      ERR(INVALID_OP), 1, 7),
	ROW_AC("valid Update then a half-bad one in one read", P_OPEN, S_JOIN,
	       in_good_then_half_bad, ERR(INVALID_OP), 1, 8, 1),
	ROW("Hello and Leave in one read", P_OPEN, S_CONN, in_hello_then_leave, SILENT),
	ROW_C("Update and Leave in one read", P_OPEN, S_JOIN, in_update_then_leave, REPLY(ACK), 1),
	ROW("replica collision: another client's replica, its ids", P_OPEN, S_JOIN_W1,
	    in_replica_collision, REPLY(ACK)),
	ROW("counter going backwards (ids already used)", P_OPEN, S_JOIN_W1, in_counter_backwards,
	    REPLY(ACK)),
	/* presence */
	ROW("presence name of invalid UTF-8", P_OPEN, S_JOIN, in_presence_bad_utf8,
	    ERR(BAD_MESSAGE)),
	ROW("presence name of 129 bytes", P_OPEN, S_JOIN, in_presence_long_name, ERR(TOO_LARGE)),
	ROW("presence color of invalid UTF-8", P_OPEN, S_JOIN, in_presence_bad_color,
	    ERR(BAD_MESSAGE)),
	ROW("presence for another replica", P_OPEN, S_JOIN, in_presence_other_replica,
	    ERR(BAD_MESSAGE)),
	ROW("presence anchor (0, 5)", P_OPEN, S_JOIN, in_presence_bad_anchor, ERR(BAD_MESSAGE)),
	/* HTTP */
	ROW("GET /v1/docs/../x", P_OPEN, S_NONE, in_http_dotdot, HTTP(404)),
	ROW("GET /v1/docs/%2e%2e/%2e%2e/etc/passwd", P_OPEN, S_NONE, in_http_encoded_dotdot,
	    HTTP(404)),
	ROW("GET /v1/docs/a%01b", P_OPEN, S_NONE, in_http_control, HTTP(400)),
	ROW("GET /v1/docs/%ff", P_OPEN, S_NONE, in_http_bad_utf8, HTTP(400)),
	ROW("64 KiB request header", P_OPEN, S_NONE, in_http_huge_header, HTTP(-1)),
	ROW("POST /v1/docs/cat/doc", P_OPEN, S_NONE, in_http_post, HTTP(405)),
	ROW("WebSocket upgrade off /sync", P_OPEN, S_NONE, in_upgrade_wrong_path, HTTP(-1)),
	ROW("WebSocket upgrade with another subprotocol", P_OPEN, S_NONE, in_upgrade_wrong_protocol,
	    HTTP(-1)),
	ROW("GET /v1/docs with a 1500-byte id", P_OPEN, S_NONE, in_http_long_uri, HTTP(414)),
	ROW("GET /healthz/ and 300 bytes", P_OPEN, S_NONE, in_http_long_other_path, HTTP(404)),
	ROW("GET /events?last_seq=abc", P_OPEN, S_NONE, in_http_bad_last_seq, HTTP(400)),
	ROW("GET /events with Last-Event-ID over 2^64", P_OPEN, S_NONE, in_http_huge_last_event_id,
	    HTTP(400)),
	ROW("GET ?format=evil", P_OPEN, S_NONE, in_http_bad_format, HTTP(400)),
	/* tokens, Origin */
	ROW_A("Hello without a token", P_SECURE, S_CONN, in_no_token, ERR(UNAUTHORIZED), 1, 0),
	ROW("malformed token", P_SECURE, S_CONN, in_malformed_token, ERR(UNAUTHORIZED)),
	ROW("forged token (another key)", P_SECURE, S_CONN, in_forged_token, ERR(UNAUTHORIZED)),
	ROW("expired token", P_SECURE, S_CONN, in_expired_token, ERR(UNAUTHORIZED)),
	ROW("token for other documents", P_SECURE, S_CONN, in_wrong_doc_token, ERR(FORBIDDEN)),
	ROW("valid token followed by U+0000 and junk", P_SECURE, S_CONN, in_token_with_nul,
	    ERR(BAD_MESSAGE)),
	ROW("GET /v1/docs with a token for other documents", P_SECURE, S_NONE,
	    in_http_wrong_doc_token, HTTP(403)),
	ROW_A("read-only token used to write", P_SECURE, S_JOIN_READ, in_read_only_writes,
	      ERR(FORBIDDEN), 1, 7),
	ROW("Origin off the allow-list", P_SECURE, S_NONE, in_wrong_origin, HTTP(403)),
	ROW("GET /v1/docs without a token", P_SECURE, S_NONE, in_http_no_token, HTTP(401)),
	/* floods */
	ROW_F("message flood over the rate", P_FLOOD, S_JOIN, in_message_flood, ERR(RATE_LIMITED)),
	ROW("message flood over 4 x the rate", P_FLOOD, S_JOIN, in_message_flood_far, CLOSE(1008)),
	ROW_AF("byte flood over the rate", P_FLOOD, S_JOIN, in_byte_flood, ERR(RATE_LIMITED), 1, 0),
	ROW("byte flood over 4 x the rate", P_FLOOD, S_JOIN, in_byte_flood_far, CLOSE(1008)),
	/* send queue */
	ROW("Leave/Hello loop without reading (snapshots)", P_QUEUE, S_CONN, in_welcome_loop,
	    CLOSE(1008)),
};

#define N_ROWS (sizeof catalogue / sizeof catalogue[0])

/* ---- the runner ------------------------------------------------------------------ */

static void setup_attacker(cat *x, const row *rw, int i)
{
	prof *pf = x->pf;
	x->r = 0xa77ac000u + (crdt_replica)i;
	if (rw->setup == S_NONE)
		return;
	if (rw->setup == S_CONN) {
		assert_int_equal(qc_connect(&x->a, x->port, x->r), 0);
	} else {
		char tok[SRV_TOKEN_MAX + 1] = "";
		if (rw->profile == P_SECURE)
			mint(KEY, "cat/*", rw->setup != S_JOIN_READ, (int64_t)time(NULL) + 60, tok);
		crdt_replica r = rw->setup == S_JOIN_W1 ? W1 : x->r;
		join_doc(&x->a, x->port, r, tok[0] ? tok : NULL, pf->head,
			 rw->setup == S_JOIN_READ);
	}
	x->a_open = true;
}

/* Run one row; false when its outcome was not the expected one (the
 * document and witness checks fail the test at once). */
static bool run_row(prof *pf, const row *rw, int i)
{
	cat x;
	memset(&x, 0, sizeof x);
	x.pf = pf;
	x.port = pf->srv.port;
	setup_attacker(&x, rw, i);
	rw->input(&x);
	if (x.got == O_NONE)
		observe(&x, rw->want == O_SILENT ? QUIET_MS : T_MS);
	bool ok = x.got == rw->want && x.got_code == rw->code;
	if (!ok)
		print_error("row %d '%s': wanted %s %d, got %s %d\n", i, rw->name,
			    outcome_names[rw->want], rw->code, outcome_names[x.got], x.got_code);
	if (ok && rw->want == O_ERROR && rw->addressed &&
	    (x.err_doc != rw->doc || x.err_batch != rw->batch)) {
		print_error("row %d '%s': Error addressed to doc %u batch %llu, wanted %u %llu\n",
			    i, rw->name, x.err_doc, (unsigned long long)x.err_batch, rw->doc,
			    (unsigned long long)rw->batch);
		ok = false;
	}
	/* an Error or a reply never closes the connection: a Ping still works */
	if (ok && x.a_open && (rw->want == O_ERROR || rw->want == O_REPLY) && !rw->no_ping) {
		rb b = {0};
		msg_ping(&b, 0, 4242);
		send_rb(&x, &b);
		int r;
		do
			r = qc_recv(&x.a, T_MS);
		while (r == 1 && x.a.m->kind != WIRE_SERVER_PONG);
		if (r != 1)
			fail_msg("row %d '%s': the connection did not survive", i, rw->name);
		assert_int_equal(x.a.m->nonce, 4242);
	}
	if (x.a_open)
		qc_free(&x.a);
	/* the row's valid changes reach both witnesses, and only those */
	for (uint64_t want = pf->head + (uint64_t)rw->commits; pf->head < want; pf->head++) {
		qclient *w[2] = {&pf->w1, &pf->w2};
		for (int k = 0; k < 2; k++) {
			assert_int_equal(qc_recv(w[k], T_MS), 1);
			assert_int_equal(w[k]->m->kind, WIRE_SERVER_CHANGES);
			assert_int_equal(w[k]->m->seqs[0], pf->head + 1);
		}
	}
	check_http_doc(pf, rw->name);
	check_witnesses(pf, rw->name);
	return ok;
}

static void test_server_hostile_catalogue(void **state)
{
	(void)state;
	static prof profiles[P_COUNT];
	int current = -1, failed = 0;
	for (size_t i = 0; i < N_ROWS; i++) {
		const row *rw = &catalogue[i];
		if ((int)rw->profile != current) {
			if (current >= 0)
				profile_stop(&profiles[current]);
			current = (int)rw->profile;
			profile_start(&profiles[current], rw->profile);
		}
		print_message("[%2zu] %-8s %s\n", i, profile_names[rw->profile], rw->name);
		failed += !run_row(&profiles[current], rw, (int)i);
	}
	if (current >= 0)
		profile_stop(&profiles[current]);
	assert_int_equal(failed, 0);
}

/* The table itself: enough rows, unique names, rows of a profile together
 * (so each server starts once). */
static void test_server_hostile_table(void **state)
{
	(void)state;
	assert_true(N_ROWS >= 40);
	bool seen[P_COUNT] = {false};
	for (size_t i = 0; i < N_ROWS; i++) {
		for (size_t j = 0; j < i; j++)
			assert_string_not_equal(catalogue[i].name, catalogue[j].name);
		if (i == 0 || catalogue[i].profile != catalogue[i - 1].profile) {
			assert_false(seen[catalogue[i].profile]);
			seen[catalogue[i].profile] = true;
		}
	}
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_server_hostile_table),
		cmocka_unit_test(test_server_hostile_catalogue),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
