/*
 * test_server_crashkill.c - issue 7's crash-kill loop: the real quire-server
 * is killed with SIGKILL at random moments while two writers stream
 * Updates at it, then restarted on the same database, again and again.
 *
 * Each round, two fresh writers (new replica ids) join the document, catch
 * up, and send Updates without waiting for their Acks: each inserts a
 * unique marker "[round.writer.batch]" between two markers (never inside
 * one), recording every Ack (batch -> seq) as it arrives. After a random
 * number of Updates and a random pause the server is SIGKILLed; the Acks
 * already in the sockets are read (they were acked), then with the server
 * down:
 *  - `quire-dump verify` passes on the database (when quire-dump is built);
 *  - the stored text holds every acked marker exactly once and no other
 *    marker twice, and the head is at least every acked seq;
 * then the server restarts, and the next round's writers must see that
 * text. At the end two clients write until all is acked, the server is
 * killed once more, and both resume (Hello with their last_seq, keeping
 * their replicas): they converge with each other and the database.
 *
 *   QUIRE_CRASHKILL_KILLS=N   kills (default 4: the CI version)
 *   QUIRE_CRASHKILL_SEED=S    PRNG seed (default: time; printed)
 *   build/debug/tests/test_server_crashkill                     # 4 kills
 *   QUIRE_CRASHKILL_KILLS=60 build/debug/tests/test_server_crashkill   # long
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
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "qtest.h"

#define T_MS 10000
#define DOC "crash/doc"

static const char *const server_args[] = {"--log-level",
					  "warn",
					  "--snapshot-every",
					  "25",
					  "--keep-changes",
					  "40",
					  "--max-msgs-per-s",
					  "0",
					  "--max-bytes-per-s",
					  "0",
					  NULL};

typedef struct sent {
	char marker[48];
	uint64_t batch;
	uint64_t seq; /* 0: not acked */
	uint64_t round;
	int writer;
} sent;

typedef struct run run;
struct run {
	qserver srv;
	uint64_t rng;
	sent *sent;
	size_t n_sent, cap_sent;
	uint64_t max_acked;
	uint64_t round;
	size_t acked, unacked, unacked_present;
};

static uint64_t rnd(run *r)
{
	uint64_t z = (r->rng += 0x9E3779B97F4A7C15ull);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

static uint64_t below(run *r, uint64_t n) { return rnd(r) % n; }

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Updates of writer w in flight (sent this round, not acked); the rounds
 * before ended with a kill, so only the newest entries can be in flight. */
static size_t unacked_of(const run *r, int w);

static size_t count_of(const char *hay, const char *needle)
{
	size_t n = 0;
	for (const char *p = hay; (p = strstr(p, needle)) != NULL; p++)
		n++;
	return n;
}

static size_t unacked_of(const run *r, int w)
{
	size_t n = 0;
	for (size_t i = r->n_sent; i-- > 0 && n < 64;)
		if (r->sent[i].writer == w && r->sent[i].seq == 0 && r->sent[i].round == r->round)
			n++;
	return n;
}

/* Record an Ack of writer w (the message in c->m). */
static void note_message(run *r, int w, const qclient *c)
{
	if (c->m->kind != WIRE_SERVER_ACK)
		return;
	for (size_t i = r->n_sent; i-- > 0;)
		if (r->sent[i].writer == w && r->sent[i].batch == c->m->ack.client_batch &&
		    r->sent[i].seq == 0) {
			r->sent[i].seq = c->m->ack.seq;
			if (c->m->ack.seq > r->max_acked)
				r->max_acked = c->m->ack.seq;
			return;
		}
}

/* A writer: fresh replica, joined and caught up with the stored head. */
static void writer_join(run *r, qclient *c, int w, uint64_t round)
{
	crdt_replica rep = (rnd(r) | 1) ^ ((uint64_t)round << 40);
	assert_int_equal(qc_connect(c, r->srv.port, rep), 0);
	assert_int_equal(qc_hello(c, DOC, 0, 0), 0);
	assert_int_equal(qc_expect(c, WIRE_SERVER_WELCOME, T_MS), 1);
	uint64_t head = c->m->welcome.head_seq;
	while (c->last_seq < head) {
		assert_int_equal(qc_recv(c, T_MS), 1);
		note_message(r, w, c);
	}
}

/* Insert a new marker at a marker boundary of c's text and send it. */
static void writer_send(run *r, qclient *c, int w, uint64_t round)
{
	char *t = qc_text(c);
	assert_non_null(t);
	size_t len = strlen(t), starts = 0; /* markers are ASCII: bytes = code points */
	for (size_t i = 0; i < len; i++)
		starts += t[i] == '[';
	size_t pos = len;
	if (starts) {
		size_t k = below(r, starts + 1);
		for (size_t i = 0; i < len && k < starts; i++)
			if (t[i] == '[' && k-- == 0) {
				pos = i;
				break;
			}
	}
	free(t);
	if (r->n_sent == r->cap_sent) {
		r->cap_sent = r->cap_sent ? 2 * r->cap_sent : 256;
		r->sent = realloc(r->sent, r->cap_sent * sizeof *r->sent);
		assert_non_null(r->sent);
	}
	sent *s = &r->sent[r->n_sent];
	snprintf(s->marker, sizeof s->marker, "[%llu.%d.%llu]", (unsigned long long)round, w,
		 (unsigned long long)c->next_batch);
	s->writer = w;
	s->seq = 0;
	s->round = round;
	s->batch = qc_insert(c, pos, s->marker);
	assert_true(s->batch != 0);
	r->n_sent++;
}

/* Everything already in the socket: Acks received before the kill count. */
static void drain(run *r, qclient *c, int w)
{
	for (;;) {
		int rc = qc_recv(c, 200);
		if (rc != 1)
			break;
		note_message(r, w, c);
	}
}

/* With the server down: verify the database and the markers. */
static void check_db(run *r, uint64_t kill)
{
#ifdef QUIRE_DUMP_BIN
	char cmd[1024];
	snprintf(cmd, sizeof cmd, "%s --db '%s' verify >/dev/null", QUIRE_DUMP_BIN, r->srv.db);
	int st = system(cmd);
	if (st != 0) {
		fprintf(stderr, "kill %llu: quire-dump verify failed (%d)\n",
			(unsigned long long)kill, st);
		snprintf(cmd, sizeof cmd, "%s --db '%s' verify", QUIRE_DUMP_BIN, r->srv.db);
		(void)!system(cmd);
	}
	assert_int_equal(st, 0);
#endif
	uint64_t head = 0;
	char *text = qdb_text(r->srv.db, DOC, &head);
	if (!text) { /* nothing committed yet */
		text = strdup("");
		head = 0;
	}
	assert_non_null(text);
	r->acked = r->unacked = r->unacked_present = 0;
	for (size_t i = 0; i < r->n_sent; i++) {
		size_t n = count_of(text, r->sent[i].marker);
		if (r->sent[i].seq) {
			if (n != 1)
				fprintf(stderr, "kill %llu: acked %s (seq %llu) found %zu times\n",
					(unsigned long long)kill, r->sent[i].marker,
					(unsigned long long)r->sent[i].seq, n);
			assert_int_equal(n, 1);
			r->acked++;
		} else {
			assert_true(n <= 1);
			r->unacked++;
			r->unacked_present += n;
		}
	}
	assert_true(head >= r->max_acked);
	free(text);
}

static void test_server_crashkill_loop(void **state)
{
	(void)state;
	const char *e = getenv("QUIRE_CRASHKILL_KILLS");
	long kills = e && *e ? strtol(e, NULL, 10) : 4;
	e = getenv("QUIRE_CRASHKILL_SEED");
	run r = {0};
	r.rng = e && *e ? strtoull(e, NULL, 10) : (uint64_t)time(NULL);
	fprintf(stderr, "crashkill: %ld kills, QUIRE_CRASHKILL_SEED=%llu\n", kills,
		(unsigned long long)r.rng);
	assert_int_equal(qserver_init(&r.srv), 0);
	assert_int_equal(qserver_start(&r.srv, server_args), 0);

	for (long k = 1; k <= kills; k++) {
		qclient w[2];
		r.round = (uint64_t)k;
		for (int i = 0; i < 2; i++)
			writer_join(&r, &w[i], i, (uint64_t)k);
		/* both writers saw the stored text */
		char *t0 = qc_text(&w[0]), *t1 = qc_text(&w[1]);
		assert_string_equal(t0, t1);
		free(t0);
		free(t1);

		/* load for a random 20-400 ms: Updates from both writers (at most
		 * 16 unacked each), Acks read as they come; then the kill */
		double until = now_ms() + 20 + (double)below(&r, 380);
		while (now_ms() < until) {
			int x = (int)below(&r, 2);
			if (unacked_of(&r, x) < 16)
				writer_send(&r, &w[x], x, (uint64_t)k);
			for (int j = 0; j < 2; j++)
				while (qc_recv(&w[j], j == x ? 1 : 0) == 1)
					note_message(&r, j, &w[j]);
		}
		assert_int_equal(qserver_stop(&r.srv, SIGKILL, 5000), 128 + SIGKILL);
		for (int i = 0; i < 2; i++) {
			drain(&r, &w[i], i);
			qc_free(&w[i]);
		}
		check_db(&r, (uint64_t)k);
		fprintf(stderr,
			"kill %ld: %zu Updates so far: %zu acked, all stored once; %zu unacked, "
			"%zu of them stored; head >= %llu\n",
			k, r.n_sent, r.acked, r.unacked, r.unacked_present,
			(unsigned long long)r.max_acked);
		assert_int_equal(qserver_start(&r.srv, server_args), 0);
	}

	/* resume: two clients write until everything is acked, the server is
	 * killed once more, both resume with their last_seq and keep their
	 * replicas, and converge with each other and with the database */
	qclient c[2];
	r.round = 0;
	for (int i = 0; i < 2; i++)
		writer_join(&r, &c[i], i, 0);
	for (int i = 0; i < 20; i++)
		writer_send(&r, &c[i % 2], i % 2, 0);
	for (int i = 0; i < 2; i++)
		while (r.sent[r.n_sent - 2 + i].seq == 0 || c[i].last_seq < r.max_acked) {
			assert_int_equal(qc_recv(&c[i], T_MS), 1);
			note_message(&r, i, &c[i]);
		}
	assert_int_equal(qserver_stop(&r.srv, SIGKILL, 5000), 128 + SIGKILL);
	check_db(&r, (uint64_t)kills + 1);
	assert_int_equal(qserver_start(&r.srv, server_args), 0);
	for (int i = 0; i < 2; i++) {
		ws_free(&c[i].ws);
		assert_int_equal(ws_connect(&c[i].ws, r.srv.port, NULL, "quire.v1", 0, T_MS), 0);
		assert_int_equal(qc_hello(&c[i], DOC, c[i].last_seq, 0), 0);
		assert_int_equal(qc_expect(&c[i], WIRE_SERVER_WELCOME, T_MS), 1);
		assert_int_equal(c[i].m->welcome.head_seq, r.max_acked);
	}
	writer_send(&r, &c[0], 0, 0);
	while (r.sent[r.n_sent - 1].seq == 0) {
		assert_int_equal(qc_recv(&c[0], T_MS), 1);
		note_message(&r, 0, &c[0]);
	}
	while (c[1].last_seq < r.max_acked)
		assert_int_equal(qc_recv(&c[1], T_MS), 1);
	char *want = qc_text(&c[0]), *other = qc_text(&c[1]);
	assert_string_equal(other, want);
	free(other);
	for (int i = 0; i < 2; i++)
		qc_free(&c[i]);
	assert_int_equal(qserver_stop(&r.srv, SIGTERM, 10000), 0);
	uint64_t head = 0;
	char *stored = qdb_text(r.srv.db, DOC, &head);
	assert_non_null(stored);
	assert_int_equal(head, r.max_acked);
	assert_string_equal(stored, want);
	free(stored);
	free(want);
	check_db(&r, (uint64_t)kills + 2);
	qserver_cleanup(&r.srv);
	free(r.sent);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_server_crashkill_loop),
	};
	if (argc > 1)
		cmocka_set_test_filter(argv[1]);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
