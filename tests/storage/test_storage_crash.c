/*
 * test_storage_crash.c - durability under SIGKILL. A child process appends
 * batches of changes to three documents (every batch touches all three),
 * snapshots and trims now and then, and after each store_append that
 * returned STORE_OK writes the new head to a pipe: that is the moment the
 * server would ack. The parent kills it with SIGKILL at a random moment,
 * reads every head it reported, reopens the database and checks:
 *  - every reported head is there (nothing acked is lost),
 *  - all three documents have the same head, and it is a batch boundary
 *    (no partial batch, within a document or across documents),
 *  - the log is contiguous and each document loads to exactly the text its
 *    changes wrote ("1,2,3,...,head,").
 * Then the next child continues on the same database. Runs with
 * synchronous=NORMAL and FULL. QUIRE_CRASH_ITERS (default 4 per mode) and
 * QUIRE_CRASH_SEED select the number of kills and the timing seed.
 */
#define _POSIX_C_SOURCE 200809L /* fork, kill, pipe, poll, nanosleep */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "storetest.h"

#define DOCS 3
static const char *const doc_ids[DOCS] = {"crash-a", "crash-b", "crash-c"};

/* Batch boundaries: h(0) = 0, h(k+1) = h(k) + step(h(k)): batches of 1..4
 * changes per document. */
static uint64_t step(uint64_t h) { return 1 + h % 4; }

static int is_boundary(uint64_t h)
{
	uint64_t b = 0;
	while (b < h)
		b += step(b);
	return b == h;
}

/* "1,2,...,s," */
static char *expected_text(uint64_t s)
{
	size_t cap = 32, len = 0;
	char *t = malloc(cap);
	if (!t)
		abort();
	t[0] = '\0';
	for (uint64_t i = 1; i <= s; i++) {
		char num[32];
		int n = snprintf(num, sizeof num, "%llu,", (unsigned long long)i);
		if (len + (size_t)n + 1 > cap) {
			cap = 2 * (len + (size_t)n + 1);
			char *nt = realloc(t, cap);
			if (!nt)
				abort();
			t = nt;
		}
		memcpy(t + len, num, (size_t)n + 1);
		len += (size_t)n;
	}
	return t;
}

/* ---- the child: never returns ---- */

static void child(const char *path, store_durability mode, int fd, int incarnation)
{
	store_options o;
	store_options_init(&o);
	o.durability = mode;
	o.snapshot_every_changes = 25;
	o.keep_changes = 10;
	store *db = NULL;
	if (store_open(path, &o, &db, NULL, 0) != STORE_OK)
		_exit(10);
	crdt_doc *docs[DOCS];
	uint64_t head = 0;
	for (int d = 0; d < DOCS; d++) {
		store_load_result r;
		crdt_replica rep = (crdt_replica)(1000 * (incarnation + 1) + d);
		if (store_load(db, doc_ids[d], rep, &r) != STORE_OK)
			_exit(11);
		if (d > 0 && r.seq != head)
			_exit(12);
		head = r.seq;
		docs[d] = r.doc;
	}
	crdt_batch *batch = crdt_batch_new(NULL);
	wire_buf bufs[4 * DOCS];
	memset(bufs, 0, sizeof bufs);
	store_change cs[4 * DOCS];
	crdt_op ops[16];
	for (;;) {
		uint64_t m = step(head);
		size_t n = 0;
		for (uint64_t j = 1; j <= m; j++) {
			char text[32];
			int len = snprintf(text, sizeof text, "%llu,",
					   (unsigned long long)(head + j));
			for (int d = 0; d < DOCS; d++) {
				crdt_batch_clear(batch);
				if (crdt_doc_insert(docs[d], crdt_doc_length(docs[d]), text,
						    (size_t)len, batch) != CRDT_OK)
					_exit(13);
				size_t k = crdt_batch_count(batch);
				if (k > 16)
					_exit(14);
				for (size_t i = 0; i < k; i++)
					ops[i] = *crdt_batch_get(batch, i);
				bufs[n].len = 0;
				if (wire_ops_encode(ops, k, &bufs[n]) != WIRE_OK)
					_exit(15);
				cs[n] = (store_change){.doc_id = doc_ids[d],
						       .seq = head + j,
						       .replica = crdt_doc_replica(docs[d]),
						       .payload = bufs[n].data,
						       .payload_len = bufs[n].len};
				n++;
			}
		}
		if (store_append(db, cs, n) != STORE_OK)
			_exit(16);
		head += m;
		/* durable: report (the server's ack) */
		if (write(fd, &head, sizeof head) != (ssize_t)sizeof head)
			_exit(17);
		if (head % 25 < m) {
			for (int d = 0; d < DOCS; d++)
				if (store_snapshot(db, doc_ids[d], head, docs[d]) != STORE_OK)
					_exit(18);
			if (store_trim(db, NULL, NULL) != STORE_OK)
				_exit(19);
		}
	}
}

/* ---- the parent ---- */

static uint64_t rng_state;

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* Read reports until EOF, or timeout_ms passes with nothing, or (first_only)
 * at least one report arrived; track the largest head seen and the count. */
static void read_reports(int fd, int timeout_ms, int first_only, uint64_t *max_head,
			 uint64_t *count)
{
	while (!(first_only && *count > 0)) {
		struct pollfd p = {fd, POLLIN, 0};
		int r = poll(&p, 1, timeout_ms);
		if (r <= 0)
			return;
		uint64_t buf[64];
		ssize_t n = read(fd, buf, sizeof buf);
		if (n <= 0)
			return;
		/* writes of 8 bytes to a pipe are atomic: whole values only */
		for (ssize_t i = 0; i < n / 8; i++) {
			if (buf[i] > *max_head)
				*max_head = buf[i];
			++*count;
		}
	}
}

static int check_changes(void *ctx, const store_change_row *row)
{
	uint64_t *next = ctx;
	if (row->seq != *next)
		return 1;
	++*next;
	return 0;
}

static void verify(const char *path, uint64_t reported)
{
	store *db = NULL;
	char err[256];
	if (store_open(path, NULL, &db, err, sizeof err) != STORE_OK)
		fail_msg("reopen after kill: %s", err);
	uint64_t head0 = 0;
	for (int d = 0; d < DOCS; d++) {
		store_doc_info info;
		int s = store_doc_info_get(db, doc_ids[d], &info);
		if (reported == 0 && s == STORE_ENOTFOUND)
			continue;
		if (s != STORE_OK)
			fail_msg("doc %s: %s", doc_ids[d], store_errmsg(db));
		uint64_t head = info.head_seq;
		if (d > 0 && head != head0)
			fail_msg("partial batch: %s at %llu, %s at %llu", doc_ids[0],
				 (unsigned long long)head0, doc_ids[d], (unsigned long long)head);
		head0 = head;
		if (head < reported)
			fail_msg("lost acked changes: %s head %llu, reported %llu", doc_ids[d],
				 (unsigned long long)head, (unsigned long long)reported);
		if (!is_boundary(head))
			fail_msg("partial batch: %s head %llu is not a batch boundary", doc_ids[d],
				 (unsigned long long)head);
		uint64_t next = info.log_start;
		if (store_changes(db, doc_ids[d], info.log_start - 1, 0, check_changes, &next) !=
			    STORE_OK ||
		    next != head + 1)
			fail_msg("%s: log not contiguous (%s)", doc_ids[d], store_errmsg(db));

		store_load_result r;
		if (store_load(db, doc_ids[d], 1, &r) != STORE_OK)
			fail_msg("%s: load: %s", doc_ids[d], store_errmsg(db));
		char *t = st_text(r.doc);
		char *want = expected_text(head);
		if (strcmp(t, want) != 0)
			fail_msg("%s: text at %llu differs", doc_ids[d], (unsigned long long)head);
		assert_int_equal(crdt_doc_check(r.doc), CRDT_OK);
		free(t);
		free(want);
		crdt_doc_free(r.doc);
	}
	store_close(db);
}

static void run_mode(store_durability mode)
{
	int iters = 4;
	const char *e = getenv("QUIRE_CRASH_ITERS");
	if (e && atoi(e) > 0)
		iters = atoi(e);
	char *dir = st_tmpdir();
	char *path = st_join(dir, "crash.db");
	uint64_t total_reports = 0, last = 0;
	for (int it = 0; it < iters; it++) {
		int fds[2];
		assert_int_equal(pipe(fds), 0);
		fflush(NULL);
		pid_t pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			close(fds[0]);
			child(path, mode, fds[1], it);
			_exit(99);
		}
		close(fds[1]);
		uint64_t max_head = 0, count = 0;
		/* wait for the first durable batch, then kill at a random moment */
		read_reports(fds[0], 5000, 1, &max_head, &count);
		if (count == 0) {
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
			fail_msg("child made no progress in 5 s");
		}
		sleep_ms((long)(st_rand(&rng_state) % 40));
		kill(pid, SIGKILL);
		int status = 0;
		assert_int_equal(waitpid(pid, &status, 0), pid);
		if (!(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL))
			fail_msg("child ended on its own (exit %d)",
				 WIFEXITED(status) ? WEXITSTATUS(status) : -1);
		/* everything it wrote before dying is in the pipe */
		read_reports(fds[0], 0, 0, &max_head, &count);
		close(fds[0]);
		total_reports += count;
		if (max_head < last)
			fail_msg("reports went backwards");
		last = max_head;
		verify(path, max_head);
	}
	printf("  mode %s: %d kills, %llu durable batches reported, last head %llu\n",
	       mode == STORE_SYNC_FULL ? "FULL" : "NORMAL", iters,
	       (unsigned long long)total_reports, (unsigned long long)last);
	assert_int_equal(st_sql_int(path, "SELECT count(*) FROM pragma_integrity_check"
					  " WHERE integrity_check = 'ok'"),
			 1);
	free(path);
	st_rmdir(dir);
}

static void test_storage_crash_normal(void **state)
{
	(void)state;
	run_mode(STORE_SYNC_NORMAL);
}

static void test_storage_crash_full(void **state)
{
	(void)state;
	run_mode(STORE_SYNC_FULL);
}

int main(int argc, char **argv)
{
	const char *e = getenv("QUIRE_CRASH_SEED");
	rng_state = e ? strtoull(e, NULL, 0) : (uint64_t)time(NULL);
	printf("test_storage_crash: QUIRE_CRASH_SEED=%llu\n", (unsigned long long)rng_state);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_storage_crash_normal),
		cmocka_unit_test(test_storage_crash_full),
	};
	if (argc > 1)
		cmocka_set_test_filter(argv[1]);
	return cmocka_run_group_tests_name("storage_crash", tests, NULL, NULL);
}
