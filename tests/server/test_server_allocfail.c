/*
 * test_server_allocfail.c - quire-server when its own allocations fail.
 * The program under test is quire-server-allocfail (server/alloc.h): the
 * server linked with malloc/calloc/realloc wrapped, so the allocation
 * number N of the server's code (and of the static storage, proto and crdt
 * libraries; never of libwebsockets or SQLite) fails when
 * QUIRE_FAIL_ALLOC_AFTER=N-1 is set.
 *
 * A scripted session (two editors join, edit, see each other's changes, a
 * third joins and catches up, HTTP GET, Ping, Leave, SIGTERM) runs once
 * without faults to count the allocations M, then once per N in 1..M (a
 * stride of them in CI) with allocation N failing. For every N:
 *  - the server never crashes or dies by a signal, and its log holds no
 *    sanitizer report (run the asan build's binary: leaks count too);
 *  - every request that has a direct answer (Hello, Update, Ping) gets it,
 *    or an Error, or the connection is closed: never silence;
 *  - it either exits 0 after SIGTERM, or it could not start and exited
 *    non-zero with a "quire-server: ..." message;
 *  - every acked change is in the database afterwards and quire-dump
 *    verify passes.
 *
 * QUIRE_ALLOCFAIL_STRIDE=k tests every k-th N (default: the stride that
 * makes about 150 runs, 80 under ASan, so a stage stays under a minute);
 * QUIRE_ALLOCFAIL_STRIDE=1 is the long run; QUIRE_ALLOCFAIL_FIRST=N starts
 * the sweep at N (to replay a failure).
 * QUIRE_ALLOCFAIL_COUNT=K makes K allocations in a row fail from N on;
 * default 1; 0: all of them, which needs QUIRE_ALLOCFAIL_FIRST past the
 * startup (about 12): a server whose memory never comes back cannot answer
 * the /healthz that qserver_start waits for.
 */
#define _POSIX_C_SOURCE 200809L

#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "qtest.h"

#ifndef QUIRE_SERVER_ALLOCFAIL_BIN
#error "QUIRE_SERVER_ALLOCFAIL_BIN must name quire-server-allocfail"
#endif

#if defined(__SANITIZE_ADDRESS__)
#define QT_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define QT_ASAN 1
#endif
#endif
#ifdef QT_ASAN
#define T_MS 3000  /* a direct answer; the run fails on silence, so generous */
#define CI_RUNS 80 /* ~0.5 s each */
#else
#define T_MS 2000
#define CI_RUNS 150 /* ~0.2 s each */
#endif
#define BCAST_MS 300 /* a broadcast (may be missed under OOM: see run_session) */

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

enum answer { ANS_OK, ANS_ERROR, ANS_CLOSED, ANS_SILENT };

/* Wait for a message of `want` (others are processed: Changes applied). */
static enum answer await(qclient *c, enum wire_server_kind want, int ms)
{
	if (c->m == NULL)
		return ANS_CLOSED;
	int64_t deadline = now_ms() + ms;
	for (;;) {
		int left = (int)(deadline - now_ms());
		if (left <= 0)
			return ANS_SILENT;
		int r = qc_recv(c, left);
		if (r < 0)
			return ANS_CLOSED;
		if (r == 0)
			return ANS_SILENT;
		if (c->m->kind == want)
			return ANS_OK;
		if (c->m->kind == WIRE_SERVER_ERROR)
			return ANS_ERROR;
	}
}

typedef struct run {
	long n; /* the failing allocation's number, 0: none */
	qserver srv;
	uint64_t acked_seq; /* highest seq acked to anyone */
	char silent[256];   /* requests that got no answer */
	int exit_status;
	bool started;
} run;

static void note_silence(run *r, const char *what)
{
	size_t l = strlen(r->silent);
	snprintf(r->silent + l, sizeof r->silent - l, "%s%s", l ? ", " : "", what);
}

/* One direct request's answer: anything but silence (on a connection that
 * is still up) is fine. */
static void check(run *r, qclient *c, enum answer a, const char *what)
{
	if (a == ANS_SILENT)
		note_silence(r, what);
	if (a == ANS_CLOSED) {
		qc_free(c); /* the rest of the script skips it */
		c->m = NULL;
	}
}

static void join(run *r, qclient *c, crdt_replica rep, uint64_t last_seq, const char *what)
{
	if (qc_connect(c, r->srv.port, rep) != 0) {
		c->m = NULL; /* refused (the upgrade failed): a close */
		return;
	}
	if (qc_hello(c, "doc", last_seq, 0) != 0) {
		check(r, c, ANS_CLOSED, what);
		return;
	}
	check(r, c, await(c, WIRE_SERVER_WELCOME, T_MS), what);
}

static void edit(run *r, qclient *c, qclient *other, size_t pos, const char *text, const char *what)
{
	if (c->m == NULL)
		return;
	uint64_t k = qc_insert(c, pos, text);
	assert_true(k > 0);
	enum answer a = await(c, WIRE_SERVER_ACK, T_MS);
	if (a == ANS_OK) {
		assert_int_equal(c->m->ack.client_batch, k);
		if (c->m->ack.seq > r->acked_seq)
			r->acked_seq = c->m->ack.seq;
		/* the other member sees it, unless this turn's broadcast to it
		 * failed; then it catches up by seq on its next join */
		if (other->m != NULL && await(other, WIRE_SERVER_CHANGES, BCAST_MS) == ANS_CLOSED)
			check(r, other, ANS_CLOSED, "");
	}
	check(r, c, a, what);
}

static void ping(run *r, qclient *c, const char *what)
{
	if (c->m == NULL)
		return;
	wire_buf b = {0};
	assert_int_equal(wire_client_encode_ping(&b, 0, 7), WIRE_OK);
	int s = ws_send(&c->ws, b.data, b.len);
	wire_buf_free(&b);
	check(r, c, s != 0 ? ANS_CLOSED : await(c, WIRE_SERVER_PONG, T_MS), what);
}

static unsigned long long log_number_after(const qserver *q, const char *prefix)
{
	FILE *f = fopen(q->log, "r");
	if (f == NULL)
		return 0;
	char line[2048];
	unsigned long long v = 0;
	while (fgets(line, sizeof line, f)) {
		const char *p = strstr(line, prefix);
		if (p != NULL)
			v = strtoull(p + strlen(prefix), NULL, 10);
	}
	fclose(f);
	return v;
}

/* The session, with allocation n failing (0: none). */
static void run_session(run *r)
{
	char after[32], count[32];
	if (r->n > 0) {
		snprintf(after, sizeof after, "%ld", r->n - 1);
		setenv("QUIRE_FAIL_ALLOC_AFTER", after, 1);
	} else {
		unsetenv("QUIRE_FAIL_ALLOC_AFTER");
	}
	const char *k = getenv("QUIRE_ALLOCFAIL_COUNT");
	snprintf(count, sizeof count, "%s", k && *k ? k : "1");
	setenv("QUIRE_FAIL_ALLOC_COUNT", count, 1);
	setenv("QUIRE_FAIL_ALLOC_REPORT", "1", 1);
	setenv("QTEST_QUIET_START_FAILURE", "1", 1);
	assert_int_equal(qserver_init(&r->srv), 0);
	r->srv.bin = QUIRE_SERVER_ALLOCFAIL_BIN;
	const char *const extra[] = {"--snapshot-every", "3", "--keep-changes", "1", NULL};
	r->started = qserver_start(&r->srv, extra) == 0;
	if (!r->started) {
		r->exit_status = r->srv.start_status;
		return;
	}
	qclient a, b, c;
	memset(&c, 0, sizeof c);
	join(r, &a, 0xa1, 0, "hello a");
	join(r, &b, 0xb2, 0, "hello b");
	edit(r, &a, &b, 0, "hello", "update a1");
	edit(r, &b, &a, 0, "> ", "update b1");
	edit(r, &a, &b, 0, "[a]", "update a2");
	ping(r, &a, "ping a");
	/* a third joins beyond the head: the Welcome carries a snapshot */
	join(r, &c, 0xc3, 99, "hello c");
	edit(r, &c, &a, 0, "c", "update c1");
	char body[4096];
	int status = 0;
	int64_t t_get = now_ms();
	if (qhttp_get(r->srv.port, "/v1/docs/doc?format=text", &status, body, sizeof body, T_MS) !=
	    0) {
		if (now_ms() - t_get >= T_MS) /* a closed connection is an answer */
			note_silence(r, "GET /v1/docs/doc");
	} else if (status != 200 && status != 503 && status != 500 &&
		   !(status == 404 && r->acked_seq == 0)) /* 404: never written */
		fail_msg("N=%ld: GET /v1/docs/doc answered %d", r->n, status);
	if (a.m != NULL) {
		wire_buf lb = {0};
		assert_int_equal(wire_client_encode_leave(&lb, 1), WIRE_OK);
		if (ws_send(&a.ws, lb.data, lb.len) == 0)
			ping(r, &a, "ping after leave");
		wire_buf_free(&lb);
	}
	qc_free(&a);
	qc_free(&b);
	qc_free(&c);
	r->exit_status = qserver_stop(&r->srv, SIGTERM, 10000);
}

/* Everything a run must satisfy. */
static void check_run(run *r)
{
	qserver *q = &r->srv;
	static const char *bad[] = {"AddressSanitizer", "LeakSanitizer",
				    "runtime error:", "Assertion", "Segmentation"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		if (qserver_log_has(q, bad[i])) {
			qserver_dump_log(q);
			fail_msg("N=%ld: the server's log has \"%s\"", r->n, bad[i]);
		}
	if (r->exit_status < 0 || r->exit_status >= 128) {
		qserver_dump_log(q);
		fail_msg("N=%ld: the server ended with status %d (a signal or a hang)", r->n,
			 r->exit_status);
	}
	if (!r->started || r->exit_status != 0) {
		if (r->exit_status == 0 || !qserver_log_has(q, "quire-server: ")) {
			qserver_dump_log(q);
			fail_msg("N=%ld: exit status %d without a \"quire-server: \" message", r->n,
				 r->exit_status);
		}
	}
	if (r->silent[0] != '\0') {
		qserver_dump_log(q);
		fail_msg("N=%ld: no answer to: %s", r->n, r->silent);
	}
	if (r->acked_seq > 0) {
		uint64_t head = 0;
		char *t = qdb_text(q->db, "doc", &head);
		if (t == NULL || head < r->acked_seq)
			fail_msg("N=%ld: seq %llu was acked, the database has %llu", r->n,
				 (unsigned long long)r->acked_seq, (unsigned long long)head);
		free(t);
	}
#ifdef QUIRE_DUMP_BIN
	if (r->started) {
		char cmd[1024];
		snprintf(cmd, sizeof cmd, "%s --db '%s' verify >/dev/null 2>&1", QUIRE_DUMP_BIN,
			 q->db);
		if (system(cmd) != 0)
			fail_msg("N=%ld: quire-dump verify failed", r->n);
	}
#endif
}

static void test_server_allocfail_every_n(void **state)
{
	(void)state;
	/* the baseline: no fault, counts the allocations */
	run base;
	memset(&base, 0, sizeof base);
	int64_t t0 = now_ms();
	run_session(&base);
	check_run(&base);
	assert_true(base.started);
	assert_int_equal(base.acked_seq, 4);
	unsigned long long total = log_number_after(&base.srv, "quire-alloc: ");
	assert_true(total > 0);
	int64_t one = now_ms() - t0;
	qserver_cleanup(&base.srv);

	long stride = 0;
	const char *s = getenv("QUIRE_ALLOCFAIL_STRIDE");
	if (s != NULL && *s != '\0')
		stride = atol(s);
	if (stride <= 0) { /* CI: a fixed number of runs, whatever the machine's load */
		unsigned long long runs = CI_RUNS;
		stride = (long)((total + runs - 1) / runs);
		if (stride < 1)
			stride = 1;
	}
	fprintf(stderr, "allocfail: %llu allocations in a clean run of %lld ms; every %ld-th N\n",
		total, (long long)one, stride);
	long runs = 0, hit = 0;
	/* the first few N (startup) and the last one always, a stride between */
	const char *first = getenv("QUIRE_ALLOCFAIL_FIRST"); /* replay from a failing N */
	long n0 = first != NULL && atol(first) > 0 ? atol(first) : 1;
	for (long n = n0; n <= (long)total + 1; n += (n < 8 ? 1 : stride)) {
		run r;
		memset(&r, 0, sizeof r);
		r.n = n;
		run_session(&r);
		check_run(&r);
		bool hit_it = qserver_log_has(&r.srv, "quire-alloc: allocation ");
		runs++;
		hit += hit_it;
		qserver_cleanup(&r.srv);
		if (!hit_it && n > (long)total / 2)
			break; /* past the end of this session's allocations */
	}
	fprintf(stderr, "allocfail: %ld runs (%ld hit their fault) in %lld ms\n", runs, hit,
		(long long)(now_ms() - t0));
	assert_true(hit > 0);
	unsetenv("QUIRE_FAIL_ALLOC_AFTER");
	unsetenv("QTEST_QUIET_START_FAILURE");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_server_allocfail_every_n),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
