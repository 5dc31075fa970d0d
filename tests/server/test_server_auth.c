/*
 * test_server_auth.c - access tokens and the Origin allow-list.
 *
 * Unit tests of auth.h (mint, verify, grants: good, expired, forged,
 * truncated, bad base64, non-canonical base64, missing or bad claims,
 * prefix and exact documents, read and write), then the real quire-server
 * over 127.0.0.1: the loud "open" warning and /healthz "auth"; with a
 * secret, Hello without a token, with a forged, tampered or expired one
 * (UNAUTHORIZED) or one for other documents (FORBIDDEN), each leaving the
 * connection usable; a read-only member that is welcomed read_only,
 * receives a writer's change and has its own Update refused (FORBIDDEN,
 * not applied, not acked); the token's subject stored as the change's
 * author; tokens minted by `quire-server token`; --token-secret-file; and
 * WebSocket upgrades refused (403) for an Origin off the allow-list.
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
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "auth.h"
#include "quota.h"
#include "sectest.h"
#include "store.h"

#define KEY_TEXT "test-secret-0123456789abcdef"
static const char KEY[] = KEY_TEXT;
#define KEYLEN (sizeof KEY - 1)

static int64_t now_s(void) { return (int64_t)time(NULL); }

/* Mint a token with KEY (or key) or fail. */
static void mint_with(const char *key, const char *sub, const char *doc, bool write, int64_t exp,
		      char *out, size_t cap)
{
	srv_token t;
	memset(&t, 0, sizeof t);
	snprintf(t.sub, sizeof t.sub, "%s", sub);
	snprintf(t.doc, sizeof t.doc, "%s", doc);
	t.write = write;
	t.exp = exp;
	int n = srv_token_mint((const uint8_t *)key, strlen(key), &t, out, cap);
	assert_true(n > 0);
	assert_int_equal((size_t)n, strlen(out));
}

static void mint(const char *sub, const char *doc, bool write, int64_t exp, char *out, size_t cap)
{
	mint_with(KEY, sub, doc, write, exp, out, cap);
}

static int verify(const char *tok, srv_token *t)
{
	return srv_token_verify((const uint8_t *)KEY, KEYLEN, tok, strlen(tok), now_s(), t);
}

/* base64url without padding, for hand-made tokens */
static void b64url(const uint8_t *in, size_t n, char *out)
{
	static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	size_t o = 0;
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16;
		if (i + 1 < n)
			v |= (uint32_t)in[i + 1] << 8;
		if (i + 2 < n)
			v |= in[i + 2];
		out[o++] = a[v >> 18 & 63];
		out[o++] = a[v >> 12 & 63];
		if (i + 1 < n)
			out[o++] = a[v >> 6 & 63];
		if (i + 2 < n)
			out[o++] = a[v & 63];
	}
	out[o] = '\0';
}

/* A token over an arbitrary payload, signed with KEY (independently of
 * auth.c: the format of auth.h by hand). */
static void handmade(const char *payload, char *out)
{
	char p64[1024];
	b64url((const uint8_t *)payload, strlen(payload), p64);
	sprintf(out, "v1.%s", p64);
	uint8_t mac[32];
	unsigned int len = 0;
	HMAC(EVP_sha256(), KEY, (int)KEYLEN, (const unsigned char *)out, strlen(out), mac, &len);
	assert_int_equal(len, 32);
	char s64[64];
	b64url(mac, 32, s64);
	strcat(out, ".");
	strcat(out, s64);
}

/* ---- unit tests ----------------------------------------------------------------- */

static void test_server_auth_token_roundtrip(void **state)
{
	(void)state;
	char tok[SRV_TOKEN_MAX + 1];
	srv_token t;
	mint("alice", "notes/todo", true, now_s() + 60, tok, sizeof tok);
	assert_memory_equal(tok, "v1.", 3);
	assert_int_equal(verify(tok, &t), SRV_TOKEN_OK);
	assert_string_equal(t.sub, "alice");
	assert_string_equal(t.doc, "notes/todo");
	assert_true(t.write);
	assert_true(srv_token_grants(&t, "notes/todo", 10));
	assert_false(srv_token_grants(&t, "notes/todo2", 11));
	assert_false(srv_token_grants(&t, "notes/tod", 9));
	/* read right; a subject with spaces and UTF-8 */
	mint("Zoë Example", "d", false, now_s() + 60, tok, sizeof tok);
	assert_int_equal(verify(tok, &t), SRV_TOKEN_OK);
	assert_false(t.write);
	assert_string_equal(t.sub, "Zoë Example");
	/* the same token signed by a hand-written HMAC verifies */
	char hand[2048];
	char payload[256];
	snprintf(payload, sizeof payload, "sub=bob\ndoc=x\nright=write\nexp=%lld",
		 (long long)(now_s() + 60));
	handmade(payload, hand);
	assert_int_equal(verify(hand, &t), SRV_TOKEN_OK);
	assert_string_equal(t.sub, "bob");
	/* unknown keys are ignored, order does not matter */
	snprintf(payload, sizeof payload, "iss=me\nexp=%lld\nright=read\ndoc=x*\nsub=carol",
		 (long long)(now_s() + 60));
	handmade(payload, hand);
	assert_int_equal(verify(hand, &t), SRV_TOKEN_OK);
	assert_false(t.write);
}

static void test_server_auth_token_prefix(void **state)
{
	(void)state;
	char tok[SRV_TOKEN_MAX + 1];
	srv_token t;
	mint("alice", "notes/*", true, now_s() + 60, tok, sizeof tok);
	assert_int_equal(verify(tok, &t), SRV_TOKEN_OK);
	assert_true(srv_token_grants(&t, "notes/a", 7));
	assert_true(srv_token_grants(&t, "notes/deep/b", 12));
	assert_false(srv_token_grants(&t, "notes", 5));
	assert_false(srv_token_grants(&t, "other/a", 7));
	assert_false(srv_token_grants(&t, "Notes/a", 7));
	mint("root", "*", false, now_s() + 60, tok, sizeof tok);
	assert_int_equal(verify(tok, &t), SRV_TOKEN_OK);
	assert_true(srv_token_grants(&t, "anything", 8));
	/* '*' only at the end; no other wildcard */
	srv_token bad;
	memset(&bad, 0, sizeof bad);
	strcpy(bad.sub, "x");
	strcpy(bad.doc, "a*b");
	bad.exp = now_s() + 60;
	assert_int_equal(srv_token_mint((const uint8_t *)KEY, KEYLEN, &bad, tok, sizeof tok),
			 SRV_TOKEN_EPAYLOAD);
	strcpy(bad.doc, "bad id*");
	assert_int_equal(srv_token_mint((const uint8_t *)KEY, KEYLEN, &bad, tok, sizeof tok),
			 SRV_TOKEN_EPAYLOAD);
}

static void test_server_auth_token_refused(void **state)
{
	(void)state;
	char tok[SRV_TOKEN_MAX + 1], bad[SRV_TOKEN_MAX + 16];
	srv_token t;
	/* missing */
	assert_int_equal(srv_token_verify((const uint8_t *)KEY, KEYLEN, "", 0, now_s(), &t),
			 SRV_TOKEN_EMISSING);
	/* expired: exp is the first second it is no longer valid */
	mint("alice", "d", true, now_s() - 1, tok, sizeof tok);
	assert_int_equal(verify(tok, &t), SRV_TOKEN_EEXPIRED);
	assert_int_equal(
		srv_token_verify((const uint8_t *)KEY, KEYLEN, tok, strlen(tok), t.exp - 1, &t),
		SRV_TOKEN_OK);
	/* forged: another key */
	mint_with("another-secret-0123456789", "alice", "d", true, now_s() + 60, tok, sizeof tok);
	assert_int_equal(verify(tok, &t), SRV_TOKEN_ESIGNATURE);
	/* tampered: one payload character changed */
	mint("alice", "d", false, now_s() + 60, tok, sizeof tok);
	strcpy(bad, tok);
	bad[5] = bad[5] == 'A' ? 'B' : 'A';
	int rc = verify(bad, &t);
	assert_true(rc == SRV_TOKEN_ESIGNATURE || rc == SRV_TOKEN_EBASE64);
	/* a payload from another token with this one's signature */
	char other[SRV_TOKEN_MAX + 1];
	mint("alice", "d", true, now_s() + 60, other, sizeof other);
	char *dot_tok = strrchr(tok, '.'), *dot_other = strrchr(other, '.');
	snprintf(bad, sizeof bad, "%.*s%s", (int)(dot_other - other), other, dot_tok);
	assert_int_equal(verify(bad, &t), SRV_TOKEN_ESIGNATURE);
	/* truncated: signature shortened, signature gone, payload only */
	strcpy(bad, tok);
	bad[strlen(bad) - 4] = '\0'; /* 39 chars: 29 bytes, or bad trailing bits */
	rc = verify(bad, &t);
	assert_true(rc == SRV_TOKEN_ESIGNATURE || rc == SRV_TOKEN_EBASE64);
	strcpy(bad, tok);
	*strrchr(bad, '.') = '\0';
	assert_int_equal(verify(bad, &t), SRV_TOKEN_EFORMAT);
	strcpy(bad, tok);
	strrchr(bad, '.')[1] = '\0';
	assert_int_equal(verify(bad, &t), SRV_TOKEN_EFORMAT);
	assert_int_equal(verify("v1.", &t), SRV_TOKEN_EFORMAT);
	assert_int_equal(verify("v1..", &t), SRV_TOKEN_EFORMAT);
	/* wrong version, extra part */
	strcpy(bad, tok);
	bad[1] = '2';
	assert_int_equal(verify(bad, &t), SRV_TOKEN_EFORMAT);
	snprintf(bad, sizeof bad, "%s.x", tok);
	assert_int_equal(verify(bad, &t), SRV_TOKEN_EFORMAT);
	/* bad base64: a character outside the alphabet, padding, 1 mod 4 */
	strcpy(bad, tok);
	strrchr(bad, '.')[3] = '+';
	assert_int_equal(verify(bad, &t), SRV_TOKEN_EBASE64);
	snprintf(bad, sizeof bad, "%s=", tok);
	assert_int_equal(verify(bad, &t), SRV_TOKEN_EBASE64);
	snprintf(bad, sizeof bad, "%sA", tok); /* 43 + 1 = 44 chars: 33 bytes */
	rc = verify(bad, &t);
	assert_true(rc == SRV_TOKEN_ESIGNATURE || rc == SRV_TOKEN_EBASE64);
	/* non-canonical: the last signature character with trailing bits set */
	strcpy(bad, tok);
	char *last = bad + strlen(bad) - 1; /* 43 chars: 2 spare bits */
	const char *alpha = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	int v = (int)(strchr(alpha, *last) - alpha);
	*last = alpha[v | 1];
	if (*last != tok[strlen(tok) - 1])
		assert_int_equal(verify(bad, &t), SRV_TOKEN_EBASE64);
	/* too long */
	char *huge = malloc(SRV_TOKEN_MAX + 16);
	memset(huge, 'A', SRV_TOKEN_MAX + 15);
	memcpy(huge, "v1.", 3);
	huge[SRV_TOKEN_MAX + 15] = '\0';
	assert_int_equal(verify(huge, &t), SRV_TOKEN_EFORMAT);
	free(huge);
	/* good signature, bad claims */
	char hand[2048];
	const char *payloads[] = {
		"sub=a\ndoc=d\nright=write",			      /* no exp */
		"sub=a\ndoc=d\nexp=99999999999",		      /* no right */
		"sub=a\nright=read\nexp=99999999999",		      /* no doc */
		"doc=d\nright=read\nexp=99999999999",		      /* no sub */
		"sub=\ndoc=d\nright=read\nexp=99999999999",	      /* empty sub */
		"sub=a\ndoc=d\nright=admin\nexp=99999999999",	      /* bad right */
		"sub=a\ndoc=d d\nright=read\nexp=99999999999",	      /* bad doc */
		"sub=a\ndoc=d\nright=read\nexp=-5",		      /* bad exp */
		"sub=a\ndoc=d\nright=read\nexp=12x",		      /* bad exp */
		"sub=a\nsub=b\ndoc=d\nright=read\nexp=99999999999",   /* twice */
		"sub=a\ndoc=d\nright=read\nexp=99999999999\ngarbage", /* no '=' */
		"sub=a\tb\ndoc=d\nright=read\nexp=99999999999",	      /* control char */
	};
	for (size_t i = 0; i < sizeof payloads / sizeof payloads[0]; i++) {
		handmade(payloads[i], hand);
		if (verify(hand, &t) != SRV_TOKEN_EPAYLOAD)
			fail_msg("payload %zu accepted or wrong status %d", i, verify(hand, &t));
	}
	/* every status has a text */
	for (int s = 0; s >= -8; s--)
		assert_non_null(srv_token_strerror(s));
}

static void test_server_auth_secret_rules(void **state)
{
	(void)state;
	srv_config c;
	srv_config_defaults(&c);
	srv_auth a;
	char err[256];
	assert_int_equal(srv_auth_init(&a, &c, err, sizeof err), 0);
	assert_int_equal(a.key_len, 0); /* open */
	strcpy(c.token_secret, "short");
	assert_int_equal(srv_auth_init(&a, &c, err, sizeof err), -1);
	assert_non_null(strstr(err, "16 bytes"));
	strcpy(c.token_secret, KEY);
	assert_int_equal(srv_auth_init(&a, &c, err, sizeof err), 0);
	assert_int_equal(a.key_len, KEYLEN);
	srv_auth_clear(&a);
	assert_int_equal(a.key_len, 0);
	/* from a file, one trailing newline dropped */
	char path[] = "/tmp/quire-secret-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, KEY_TEXT "\n", KEYLEN + 1), (ssize_t)KEYLEN + 1);
	close(fd);
	c.token_secret[0] = '\0';
	strcpy(c.token_secret_file, path);
	assert_int_equal(srv_auth_init(&a, &c, err, sizeof err), 0);
	assert_int_equal(a.key_len, KEYLEN);
	assert_memory_equal(a.key, KEY, KEYLEN);
	unlink(path);
	assert_int_equal(srv_auth_init(&a, &c, err, sizeof err), -1);
	/* both given: the settings refuse it */
	strcpy(c.token_secret, KEY);
	assert_int_equal(srv_config_validate(&c, err, sizeof err), SRV_CONFIG_EINVAL);
}

/* ---- the server ------------------------------------------------------------------- */

static void test_server_auth_open_is_loud(void **state)
{
	qfixture *f = *state;
	START(f, "--log-level", "error");
	assert_true(qserver_log_has(&f->srv, "WARNING: no --token-secret: the server is OPEN"));
	assert_true(qserver_log_has(&f->srv, "origins: any Origin"));
	static char body[512];
	int status = 0;
	assert_int_equal(qhttp_get(f->srv.port, "/healthz", &status, body, sizeof body, T_MS), 0);
	assert_int_equal(status, 200);
	assert_non_null(strstr(body, "\"auth\":\"open\""));
	/* anyone joins and writes; a token, even a bad one, is ignored */
	qclient a;
	assert_int_equal(qc_connect(&a, f->srv.port, 0xa1), 0);
	assert_int_equal(hello_token(&a, "doc", "v1.garbage.x"), 0);
	assert_int_equal(qc_expect(&a, WIRE_SERVER_WELCOME, T_MS), 1);
	assert_false(a.m->welcome.read_only);
	uint64_t b = qc_insert(&a, 0, "hi");
	assert_int_equal(qc_expect(&a, WIRE_SERVER_ACK, T_MS), 1);
	assert_int_equal(a.m->ack.client_batch, b);
	qc_free(&a);
	assert_int_equal(qserver_stop(&f->srv, SIGTERM, 5000), 0);
}

static void test_server_auth_refusals(void **state)
{
	qfixture *f = *state;
	START(f, "--token-secret", KEY, "--log-level", "debug");
	assert_true(qserver_log_has(&f->srv, "auth: signed tokens required"));
	assert_false(qserver_log_has(&f->srv, "server is OPEN"));
	static char body[512];
	int status = 0;
	assert_int_equal(qhttp_get(f->srv.port, "/healthz", &status, body, sizeof body, T_MS), 0);
	assert_non_null(strstr(body, "\"auth\":\"token\""));

	qclient a;
	char tok[SRV_TOKEN_MAX + 1];
	assert_int_equal(qc_connect(&a, f->srv.port, 0xa1), 0);
	/* no token */
	assert_int_equal(hello_token(&a, "notes/a", NULL), 0);
	expect_error(&a, WIRE_ERR_UNAUTHORIZED);
	assert_int_equal(a.m->doc, 1);
	/* garbage */
	assert_int_equal(hello_token(&a, "notes/a", "not a token"), 0);
	expect_error(&a, WIRE_ERR_UNAUTHORIZED);
	/* forged: signed with another key */
	mint_with("another-secret-0123456789", "mallory", "notes/*", true, now_s() + 60, tok,
		  sizeof tok);
	assert_int_equal(hello_token(&a, "notes/a", tok), 0);
	expect_error(&a, WIRE_ERR_UNAUTHORIZED);
	/* tampered: a read token's payload with a write token's signature */
	char rd[SRV_TOKEN_MAX + 1], wr[SRV_TOKEN_MAX + 1], mix[2 * SRV_TOKEN_MAX];
	mint("eve", "notes/a", false, now_s() + 60, rd, sizeof rd);
	mint("eve", "notes/b", true, now_s() + 60, wr, sizeof wr);
	snprintf(mix, sizeof mix, "%.*s%s", (int)(strrchr(rd, '.') - rd), rd, strrchr(wr, '.'));
	assert_int_equal(hello_token(&a, "notes/a", mix), 0);
	expect_error(&a, WIRE_ERR_UNAUTHORIZED);
	/* expired */
	mint("alice", "notes/*", true, now_s() - 5, tok, sizeof tok);
	assert_int_equal(hello_token(&a, "notes/a", tok), 0);
	expect_error(&a, WIRE_ERR_UNAUTHORIZED);
	/* valid, for other documents */
	mint("alice", "notes/b", true, now_s() + 60, tok, sizeof tok);
	assert_int_equal(hello_token(&a, "notes/a", tok), 0);
	expect_error(&a, WIRE_ERR_FORBIDDEN);
	mint("alice", "other/*", true, now_s() + 60, tok, sizeof tok);
	assert_int_equal(hello_token(&a, "notes/a", tok), 0);
	expect_error(&a, WIRE_ERR_FORBIDDEN);
	/* none of that joined anything: the document was never loaded */
	assert_int_equal(metric(f->srv.port, "quire_document_loads_total"), 0);
	/* the connection and the handle are still usable: a good prefix token */
	mint("alice", "notes/*", true, now_s() + 60, tok, sizeof tok);
	assert_int_equal(hello_token(&a, "notes/a", tok), 0);
	assert_int_equal(qc_expect(&a, WIRE_SERVER_WELCOME, T_MS), 1);
	assert_false(a.m->welcome.read_only);
	uint64_t b = qc_insert(&a, 0, "ok");
	assert_int_equal(qc_expect(&a, WIRE_SERVER_ACK, T_MS), 1);
	assert_int_equal(a.m->ack.client_batch, b);

	assert_int_equal(metric(f->srv.port, "quire_refusals_total{kind=\"unauthorized\"}"), 5);
	assert_int_equal(metric(f->srv.port, "quire_refusals_total{kind=\"forbidden\"}"), 2);
	assert_int_equal(metric(f->srv.port, "quire_errors_sent_total{code=\"UNAUTHORIZED\"}"), 5);
	qc_free(&a);
	assert_int_equal(qserver_stop(&f->srv, SIGTERM, 5000), 0);
	/* tokens never reach the log */
	assert_false(qserver_log_has(&f->srv, tok));
	assert_false(qserver_log_has(&f->srv, strrchr(rd, '.') + 1));
	assert_true(qserver_log_has(&f->srv, "authenticated as 'alice'"));
}

typedef struct author_seen {
	uint64_t seq;
	char author[64];
} author_seen;

static int author_row(void *ctx, const store_change_row *row)
{
	author_seen *a = ctx;
	a->seq = row->seq;
	snprintf(a->author, sizeof a->author, "%s", row->author ? row->author : "(null)");
	return 0;
}

static void test_server_auth_read_only_member(void **state)
{
	qfixture *f = *state;
	START(f, "--token-secret", KEY);
	char wtok[SRV_TOKEN_MAX + 1], rtok[SRV_TOKEN_MAX + 1];
	mint("writer", "team/*", true, now_s() + 60, wtok, sizeof wtok);
	mint("reader", "team/plan", false, now_s() + 60, rtok, sizeof rtok);
	qclient w, r;
	assert_int_equal(qc_connect(&w, f->srv.port, 0xa1), 0);
	assert_int_equal(hello_token(&w, "team/plan", wtok), 0);
	assert_int_equal(qc_expect(&w, WIRE_SERVER_WELCOME, T_MS), 1);
	assert_false(w.m->welcome.read_only);
	assert_int_equal(qc_connect(&r, f->srv.port, 0xb2), 0);
	assert_int_equal(hello_token(&r, "team/plan", rtok), 0);
	assert_int_equal(qc_expect(&r, WIRE_SERVER_WELCOME, T_MS), 1);
	assert_true(r.m->welcome.read_only);

	/* the writer's change reaches the reader */
	uint64_t wb = qc_insert(&w, 0, "plan");
	assert_int_equal(qc_expect(&w, WIRE_SERVER_ACK, T_MS), 1);
	assert_int_equal(w.m->ack.client_batch, wb);
	assert_int_equal(qc_expect(&r, WIRE_SERVER_CHANGES, T_MS), 1);
	char *text = qc_text(&r);
	assert_string_equal(text, "plan");
	free(text);

	/* the reader's Update is refused: FORBIDDEN with its batch, not applied */
	uint64_t rb = qc_insert(&r, 4, " (hacked)");
	expect_error(&r, WIRE_ERR_FORBIDDEN);
	assert_int_equal(r.m->error.client_batch, rb);
	expect_quiet(&r);
	expect_quiet(&w);
	/* its presence is still relayed */
	wire_presence p;
	memset(&p, 0, sizeof p);
	p.replica = r.replica;
	p.clock = 1;
	p.name = "reader";
	p.name_len = 6;
	wire_buf pb = {0};
	assert_int_equal(wire_client_encode_presence(&pb, 1, &p), WIRE_OK);
	assert_int_equal(ws_send(&r.ws, pb.data, pb.len), 0);
	wire_buf_free(&pb);
	assert_int_equal(qc_expect(&w, WIRE_SERVER_PRESENCE, T_MS), 1);
	/* and it keeps receiving */
	qc_insert(&w, 4, "!");
	assert_int_equal(qc_expect(&r, WIRE_SERVER_CHANGES, T_MS), 1);
	assert_int_equal(r.last_seq, 2);
	assert_int_equal(metric(f->srv.port, "quire_refusals_total{kind=\"read_only\"}"), 1);
	assert_int_equal(metric(f->srv.port, "quire_changes_committed_total"), 2);
	qc_free(&w);
	qc_free(&r);
	assert_int_equal(qserver_stop(&f->srv, SIGTERM, 5000), 0);

	/* on disk: the writer's two changes, authored by the token's subject */
	uint64_t head = 0;
	char *t = qdb_text(f->srv.db, "team/plan", &head);
	assert_non_null(t);
	assert_string_equal(t, "plan!");
	assert_int_equal(head, 2);
	free(t);
	store *db = NULL;
	char err[256];
	assert_int_equal(store_open(f->srv.db, NULL, &db, err, sizeof err), STORE_OK);
	author_seen seen = {0, ""};
	assert_int_equal(store_changes(db, "team/plan", 0, 0, author_row, &seen), STORE_OK);
	assert_int_equal(seen.seq, 2);
	assert_string_equal(seen.author, "writer");
	store_close(db);
}

/* Run `quire-server token ARGS` and read the token it prints. */
static int run_token_cmd(const char *args, char *out, size_t cap)
{
	char cmd[1024];
	snprintf(cmd, sizeof cmd, "%s token %s", QUIRE_SERVER_BIN, args);
	FILE *p = popen(cmd, "r");
	if (p == NULL)
		return -1;
	out[0] = '\0';
	if (fgets(out, (int)cap, p) == NULL)
		out[0] = '\0';
	int st = pclose(p);
	out[strcspn(out, "\n")] = '\0';
	return st;
}

static void test_server_auth_token_command_and_file(void **state)
{
	qfixture *f = *state;
	assert_int_equal(qserver_init(&f->srv), 0);
	char path[400];
	snprintf(path, sizeof path, "%s/secret", f->srv.dir);
	FILE *fp = fopen(path, "w");
	assert_non_null(fp);
	fprintf(fp, "%s\n", KEY);
	fclose(fp);
	const char *const extra[] = {"--token-secret-file", path, NULL};
	assert_int_equal(qserver_start(&f->srv, extra), 0);

	char tok[SRV_TOKEN_MAX + 1], args[600];
	snprintf(args, sizeof args,
		 "--secret-file %s --sub cli --doc 'cli/*' --right read --ttl 60", path);
	assert_int_equal(run_token_cmd(args, tok, sizeof tok), 0);
	srv_token t;
	assert_int_equal(verify(tok, &t), SRV_TOKEN_OK);
	assert_string_equal(t.sub, "cli");
	assert_false(t.write);
	assert_true(t.exp > now_s() && t.exp <= now_s() + 61);
	qclient a;
	assert_int_equal(qc_connect(&a, f->srv.port, 0xa1), 0);
	assert_int_equal(hello_token(&a, "cli/x", tok), 0);
	assert_int_equal(qc_expect(&a, WIRE_SERVER_WELCOME, T_MS), 1);
	assert_true(a.m->welcome.read_only);
	qc_free(&a);
	/* bad uses of the command fail with status 2 */
	assert_int_equal(run_token_cmd("--sub x --doc y", tok, sizeof tok) >> 8, 2);
	assert_int_equal(run_token_cmd("--secret short --sub x --doc y", tok, sizeof tok) >> 8, 2);
	snprintf(args, sizeof args, "--secret %s --sub x --doc 'a b'", KEY);
	assert_int_equal(run_token_cmd(args, tok, sizeof tok) >> 8, 2);
	assert_int_equal(qserver_stop(&f->srv, SIGTERM, 5000), 0);
	/* a secret under 16 bytes keeps the server from starting */
	const char *const weak[] = {"--token-secret", "too-short", NULL};
	assert_int_not_equal(qserver_start(&f->srv, weak), 0);
	assert_true(qserver_log_has(&f->srv, "at least 16 bytes"));
}

static void test_server_auth_origin_allow_list(void **state)
{
	qfixture *f = *state;
	START(f, "--allow-origin", "https://good.example", "--allow-origin",
	      "http://localhost:5173");
	assert_true(qserver_log_has(&f->srv, "origins: WebSocket upgrades only from "
					     "https://good.example,http://localhost:5173"));
	int port = f->srv.port;
	assert_int_equal(raw_upgrade(port, "https://evil.example", NULL, 0), 403);
	assert_int_equal(raw_upgrade(port, "https://good.example.evil", NULL, 0), 403);
	assert_int_equal(raw_upgrade(port, "null", NULL, 0), 403);
	assert_int_equal(metric(port, "quire_refusals_total{kind=\"origin\"}"), 3);
	assert_int_equal(metric(port, "quire_connections_opened_total"), 0);
	/* allowed (any case, trailing slash), then a working session */
	assert_int_equal(raw_upgrade(port, "HTTP://LOCALHOST:5173/", NULL, 0), 101);
	qclient a;
	assert_int_equal(raw_upgrade(port, "https://good.example", &a, 0xa1), 101);
	assert_int_equal(qc_hello(&a, "doc", 0, 0), 0);
	assert_int_equal(qc_expect(&a, WIRE_SERVER_WELCOME, T_MS), 1);
	qc_insert(&a, 0, "x");
	assert_int_equal(qc_expect(&a, WIRE_SERVER_ACK, T_MS), 1);
	qc_free(&a);
	/* no Origin header: not a browser, allowed */
	assert_int_equal(raw_upgrade(port, NULL, NULL, 0), 101);
	assert_int_equal(metric(port, "quire_refusals_total{kind=\"origin\"}"), 3);
	/* plain HTTP is not affected */
	static char body[256];
	int status = 0;
	assert_int_equal(qhttp_get(port, "/healthz", &status, body, sizeof body, T_MS), 0);
	assert_int_equal(status, 200);
	assert_int_equal(qserver_stop(&f->srv, SIGTERM, 5000), 0);
	assert_true(qserver_log_has(&f->srv, "Origin https://evil.example is not allowed"));
}

static void test_server_auth_origin_unit(void **state)
{
	(void)state;
	const char *list = "https://a.example, http://b.example:8080/";
	assert_true(srv_quota_origin_allowed("", "https://x", 9));
	assert_true(srv_quota_origin_allowed(list, "https://a.example", 17));
	assert_true(srv_quota_origin_allowed(list, "http://b.example:8080", 21));
	assert_true(srv_quota_origin_allowed(list, "HTTPS://A.EXAMPLE/", 18));
	assert_false(srv_quota_origin_allowed(list, "https://a.example.com", 21));
	assert_false(srv_quota_origin_allowed(list, "http://b.example", 16));
	assert_false(srv_quota_origin_allowed(list, "", 0));
	assert_false(srv_quota_origin_allowed(list, "https://a.exampl", 16));
}

static void test_server_auth_origin_settings(void **state)
{
	(void)state;
	srv_config c;
	char err[256];
	char *const env[] = {"QUIRE_ALLOW_ORIGINS=https://env.example", NULL};
	char *const none[] = {"quire-server", NULL};
	assert_int_equal(srv_config_load(&c, 1, none, env, err, sizeof err), SRV_CONFIG_OK);
	assert_string_equal(c.allow_origins, "https://env.example");
	/* flags replace the variable's list, and add to each other */
	char *const args[] = {"quire-server", "--allow-origin", "https://a",
			      "--allow-origin=https://b,https://c", NULL};
	assert_int_equal(srv_config_load(&c, 4, args, env, err, sizeof err), SRV_CONFIG_OK);
	assert_string_equal(c.allow_origins, "https://a,https://b,https://c");
	/* the secret is never printed */
	char *const sec[] = {"quire-server", "--token-secret", "super-secret-value-123", NULL};
	assert_int_equal(srv_config_load(&c, 3, sec, NULL, err, sizeof err), SRV_CONFIG_OK);
	char buf[8192] = "";
	FILE *fp = fmemopen(buf, sizeof buf - 1, "w");
	assert_non_null(fp);
	srv_config_print(fp, &c);
	fclose(fp);
	assert_null(strstr(buf, "super-secret-value-123"));
	assert_non_null(strstr(buf, "token-secret = (set)"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_server_auth_token_roundtrip),
		cmocka_unit_test(test_server_auth_token_prefix),
		cmocka_unit_test(test_server_auth_token_refused),
		cmocka_unit_test(test_server_auth_secret_rules),
		cmocka_unit_test(test_server_auth_origin_unit),
		cmocka_unit_test(test_server_auth_origin_settings),
		cmocka_unit_test_setup_teardown(test_server_auth_open_is_loud, qfixture_setup,
						qfixture_teardown),
		cmocka_unit_test_setup_teardown(test_server_auth_refusals, qfixture_setup,
						qfixture_teardown),
		cmocka_unit_test_setup_teardown(test_server_auth_read_only_member, qfixture_setup,
						qfixture_teardown),
		cmocka_unit_test_setup_teardown(test_server_auth_token_command_and_file,
						qfixture_setup, qfixture_teardown),
		cmocka_unit_test_setup_teardown(test_server_auth_origin_allow_list, qfixture_setup,
						qfixture_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
