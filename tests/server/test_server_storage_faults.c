/*
 * test_server_storage_faults.c - storage failing under a running
 * quire-server. The server runs with QUIRE_FAULT_CONTROL naming a control
 * file (storage/fault_vfs.h: the fault VFS built with
 * QUIRE_FAULT_INJECTION); the test writes "full", "ioerr", "readonly" or
 * "ok" into it. For each fault it checks what the protocol promises:
 *  - an Update whose commit fails is answered with Error STORAGE_FAILURE
 *    for its batch, never acked, and the other members never see it;
 *  - the document in memory is rolled back to the committed log (srv.h
 *    invariant 1): a Welcome snapshot, and the HTTP text, show only the
 *    committed changes;
 *  - reads keep working during the fault: a new join with its catch-up,
 *    GET /v1/docs/{id}, also of a document unloaded during the fault (its
 *    unload snapshot failed) and loaded again by the GET;
 *  - once the fault clears, the retransmitted Update and new ones are acked
 *    and broadcast, the clients converge;
 *  - after SIGTERM, quire-dump verify passes and the stored text is what
 *    every client has: nothing committed was lost, nothing refused was kept.
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

#include "qtest.h"
#include "sectest.h"

typedef struct fixture {
	qserver srv;
	char control[400]; /* the fault VFS's control file */
} fixture;

static int setup(void **state)
{
	fixture *f = calloc(1, sizeof *f);
	*state = f;
	if (f == NULL || qserver_init(&f->srv) != 0)
		return -1;
	snprintf(f->control, sizeof f->control, "%s/fault", f->srv.dir);
	return 0;
}

static int teardown(void **state)
{
	fixture *f = *state;
	if (f != NULL) {
		unsetenv("QUIRE_FAULT_CONTROL");
		qserver_cleanup(&f->srv);
		free(f);
	}
	return 0;
}

/* Replace the control file atomically (a new inode: fault_vfs.h). */
static void set_fault(fixture *f, const char *word)
{
	char tmp[420];
	snprintf(tmp, sizeof tmp, "%s.tmp", f->control);
	FILE *fp = fopen(tmp, "w");
	assert_non_null(fp);
	fprintf(fp, "%s\n", word);
	assert_int_equal(fclose(fp), 0);
	assert_int_equal(rename(tmp, f->control), 0);
}

static void start(fixture *f)
{
	set_fault(f, "ok");
	setenv("QUIRE_FAULT_CONTROL", f->control, 1);
	/* idle documents unload fast: one unloads (its snapshot failing)
	 * during the fault and is loaded again by a read */
	const char *const extra[] = {"--log-level", "debug", "--idle-unload-ms", "200", NULL};
	assert_int_equal(qserver_start(&f->srv, extra), 0);
}

static void expect_storage_error(qclient *c, uint64_t batch);

/* Error STORAGE_FAILURE for batch, its message naming the cause (NULL:
 * any). */
static void expect_storage_error_why(qclient *c, uint64_t batch, const char *cause)
{
	expect_storage_error(c, batch);
	char text[256];
	snprintf(text, sizeof text, "%.*s", (int)c->m->error.message_len,
		 c->m->error.message ? c->m->error.message : "");
	if (cause != NULL && strstr(text, cause) == NULL)
		fail_msg("the error says \"%s\", not \"%s\"", text, cause);
}

static void expect_storage_error(qclient *c, uint64_t batch)
{
	assert_int_equal(qc_recv(c, T_MS), 1);
	if (c->m->kind != WIRE_SERVER_ERROR || c->m->error.code != WIRE_ERR_STORAGE_FAILURE)
		fail_msg("wanted Error STORAGE_FAILURE, got kind %d code %d", c->m->kind,
			 c->m->kind == WIRE_SERVER_ERROR ? c->m->error.code : -1);
	assert_int_equal(c->m->error.client_batch, batch);
}

/* GET /v1/docs/{doc}?format=text is 200 with exactly `want`. */
static void assert_http_text(int port, const char *doc, const char *want)
{
	char path[128], body[4096];
	int status = 0;
	snprintf(path, sizeof path, "/v1/docs/%s?format=text", doc);
	assert_int_equal(qhttp_get(port, path, &status, body, sizeof body, T_MS), 0);
	assert_int_equal(status, 200);
	assert_string_equal(body, want);
}

/* A sent message kept for a retransmission. */
typedef struct saved {
	uint8_t *data;
	size_t len;
} saved;

static saved save(const qclient *c)
{
	saved v = {malloc(c->out.len), c->out.len};
	assert_non_null(v.data);
	memcpy(v.data, c->out.data, c->out.len);
	return v;
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The whole scenario under one fault word. */
static void run_fault(fixture *f, const char *fault, const char *cause)
{
	start(f);
	int port = f->srv.port;
	qclient a, b;
	join_at(&a, port, 0xa1, "doc", 0);
	join_at(&b, port, 0xb2, "doc", 0);
	uint64_t k = qc_insert(&a, 0, "hello ");
	expect_ack(&a, k, 1);
	assert_int_equal(qc_expect(&b, WIRE_SERVER_CHANGES, T_MS), 1);
	assert_text(&b, "hello ");
	qclient o;
	join_at(&o, port, 0xe5, "other", 0);
	k = qc_insert(&o, 0, "other text");
	expect_ack(&o, k, 1);
	qc_free(&o); /* "other" goes idle */
	uint64_t unloads = metric(port, "quire_document_unloads_total");

	/* the disk fails: a's Update is refused, b sees nothing of it */
	set_fault(f, fault);
	k = qc_insert(&a, 6, "LOST");
	saved refused = save(&a);
	expect_storage_error_why(&a, k, cause);
	expect_quiet(&b);
	expect_quiet(&a);
	/* b's own write fails the same way (the fault is not a one-off) */
	uint64_t kb = qc_insert(&b, 0, ">");
	saved refused_b = save(&b);
	expect_storage_error(&b, kb);
	expect_quiet(&a);

	/* reads keep working: a catch-up from the log, a snapshot of the
	 * document in memory (which must hold only committed changes), and
	 * the HTTP text */
	qclient c, d;
	join_at(&c, port, 0xc3, "doc", 0);
	while (c.last_seq < 1)
		assert_int_equal(qc_recv(&c, T_MS), 1);
	assert_text(&c, "hello ");
	join_at(&d, port, 0xd4, "doc", 99); /* beyond the head: a snapshot of memory */
	assert_non_null(d.m->welcome.snapshot);
	assert_int_equal(d.m->welcome.head_seq, 1);
	assert_text(&d, "hello ");
	assert_http_text(port, "doc", "hello ");
	assert_int_equal(metric(port, "quire_commit_failures_total"), 2);
	/* "other" unloads during the fault (its snapshot fails: the log
	 * keeps everything) and a read loads it again */
	int64_t deadline = now_ms() + T_MS;
	while (metric(port, "quire_document_unloads_total") == unloads && now_ms() < deadline) {
		struct timespec ts = {0, 20 * 1000000L};
		nanosleep(&ts, NULL);
	}
	assert_true(metric(port, "quire_document_unloads_total") > unloads);
	assert_true(metric(port, "quire_snapshot_failures_total") >= 1);
	assert_http_text(port, "other", "other text");

	/* the fault clears: the retransmissions are acked and broadcast */
	set_fault(f, "ok");
	assert_int_equal(ws_send(&a.ws, refused.data, refused.len), 0);
	expect_ack(&a, k, 2);
	assert_int_equal(qc_expect(&b, WIRE_SERVER_CHANGES, T_MS), 1);
	assert_int_equal(qc_expect(&c, WIRE_SERVER_CHANGES, T_MS), 1);
	assert_int_equal(ws_send(&b.ws, refused_b.data, refused_b.len), 0);
	expect_ack(&b, kb, 3);
	assert_int_equal(qc_expect(&a, WIRE_SERVER_CHANGES, T_MS), 1);
	assert_int_equal(qc_expect(&c, WIRE_SERVER_CHANGES, T_MS), 1);
	k = qc_insert(&c, 0, "[c]");
	expect_ack(&c, k, 4);
	assert_int_equal(qc_expect(&a, WIRE_SERVER_CHANGES, T_MS), 1);
	assert_int_equal(qc_expect(&b, WIRE_SERVER_CHANGES, T_MS), 1);
	assert_text(&a, "[c]>hello LOST");
	assert_text(&b, "[c]>hello LOST");
	assert_text(&c, "[c]>hello LOST");
	assert_http_text(port, "doc", "[c]>hello LOST");
	free(refused.data);
	free(refused_b.data);
	qc_free(&a);
	qc_free(&b);
	qc_free(&c);
	qc_free(&d);
	assert_int_equal(qserver_stop(&f->srv, SIGTERM, 5000), 0);

	/* on disk: exactly the acked changes, and a database that verifies */
	uint64_t head = 0;
	char *t = qdb_text(f->srv.db, "doc", &head);
	assert_non_null(t);
	assert_int_equal(head, 4);
	assert_string_equal(t, "[c]>hello LOST");
	free(t);
#ifdef QUIRE_DUMP_BIN
	char cmd[1024];
	snprintf(cmd, sizeof cmd, "%s --db '%s' verify >/dev/null", QUIRE_DUMP_BIN, f->srv.db);
	if (system(cmd) != 0) {
		qserver_dump_log(&f->srv);
		fail_msg("quire-dump verify failed after the '%s' fault", fault);
	}
#endif
}

static void test_server_storage_disk_full(void **state) { run_fault(*state, "full", "full"); }

static void test_server_storage_io_error(void **state) { run_fault(*state, "ioerr", "I/O error"); }

static void test_server_storage_read_only(void **state)
{
	run_fault(*state, "readonly", "read-only");
}

/* A fault that comes and goes while one editor types and another
 * watches: every Update is either acked or refused with STORAGE_FAILURE;
 * a refused one is retransmitted (in order, as PROTOCOL.md section 6 says)
 * once the disk is back; in the end both clients, the HTTP text and the
 * database agree, and the database verifies, also after a shutdown on a
 * full disk (its snapshot and checkpoint fail). */
static void test_server_storage_intermittent(void **state)
{
	fixture *f = *state;
	start(f);
	int port = f->srv.port;
	qclient a, b;
	join_at(&a, port, 0xa1, "doc", 0);
	join_at(&b, port, 0xb2, "doc", 0);
	const char *faults[] = {"ok", "full", "ok", "ioerr", "readonly", "ok"};
	saved pending[16];
	uint64_t pending_batch[16];
	size_t n_pending = 0;
	uint64_t seq = 0;
	for (int round = 0; round < 12; round++) {
		const char *fault = faults[round % 6];
		set_fault(f, fault);
		if (strcmp(fault, "ok") == 0) {
			for (size_t i = 0; i < n_pending; i++) {
				assert_int_equal(ws_send(&a.ws, pending[i].data, pending[i].len),
						 0);
				expect_ack(&a, pending_batch[i], ++seq);
				assert_int_equal(qc_expect(&b, WIRE_SERVER_CHANGES, T_MS), 1);
				free(pending[i].data);
			}
			n_pending = 0;
		}
		if (strcmp(fault, "ok") == 0) {
			uint64_t k = qc_insert(&a, 0, "a");
			expect_ack(&a, k, ++seq);
			assert_int_equal(qc_expect(&b, WIRE_SERVER_CHANGES, T_MS), 1);
		} else if (n_pending == 0) {
			uint64_t k = qc_insert(&a, 0, "a");
			pending[n_pending] = save(&a);
			pending_batch[n_pending++] = k;
			expect_storage_error(&a, k);
			expect_quiet(&b);
		} else {
			/* a client holds new edits while a refused batch is not
			 * yet resent: they depend on it (MISSING_DEPENDENCY) */
			wire_buf out = {0};
			uint64_t k = qc_encode_insert(&a, 0, "a", &out);
			assert_true(k > 0);
			pending[n_pending] = (saved){out.data, out.len};
			pending_batch[n_pending++] = k;
		}
	}
	assert_int_equal(n_pending, 0);
	assert_int_equal(seq, 12);
	assert_text(&b, "aaaaaaaaaaaa");
	assert_text(&a, "aaaaaaaaaaaa");
	assert_http_text(port, "doc", "aaaaaaaaaaaa");
	assert_int_equal(metric(port, "quire_commit_failures_total"), 4);
	qc_free(&a);
	qc_free(&b);
	/* a shutdown on a full disk: its snapshots and the checkpoint fail,
	 * it still exits 0 and loses nothing */
	set_fault(f, "full");
	assert_int_equal(qserver_stop(&f->srv, SIGTERM, 5000), 0);
	set_fault(f, "ok");
	uint64_t head = 0;
	char *t = qdb_text(f->srv.db, "doc", &head);
	assert_non_null(t);
	assert_int_equal(head, 12);
	assert_string_equal(t, "aaaaaaaaaaaa");
	free(t);
#ifdef QUIRE_DUMP_BIN
	char cmd[1024];
	snprintf(cmd, sizeof cmd, "%s --db '%s' verify >/dev/null", QUIRE_DUMP_BIN, f->srv.db);
	assert_int_equal(system(cmd), 0);
#endif
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_server_storage_disk_full, setup, teardown),
		cmocka_unit_test_setup_teardown(test_server_storage_io_error, setup, teardown),
		cmocka_unit_test_setup_teardown(test_server_storage_read_only, setup, teardown),
		cmocka_unit_test_setup_teardown(test_server_storage_intermittent, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
