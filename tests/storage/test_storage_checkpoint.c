/*
 * test_storage_checkpoint.c - WAL checkpoints on the store's own thread
 * (store_options.checkpoint_thread, storage/checkpointer.c): the thread
 * keeps the WAL as short as SQLite's automatic checkpoint would, commits
 * never checkpoint while it keeps up, a commit checkpoints inline when the
 * WAL gets far too long, closing with a checkpoint asked for or running
 * loses nothing, read-only handles have no thread, and the thread takes
 * no signals.
 */
#define _POSIX_C_SOURCE 200809L

#include <dirent.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "storeassert.h"
#include "storetest.h"

static long long file_size(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 ? (long long)st.st_size : -1;
}

/* The document loads with the text the writer had after its last change. */
static void assert_text(store *db, const st_writer *w)
{
	store_load_result r;
	assert_store(store_load(db, w->doc_id, 1, &r), STORE_OK);
	assert_int_equal(r.seq, w->seq);
	char *t = st_text(r.doc);
	assert_string_equal(t, w->texts[w->seq]);
	free(t);
	crdt_doc_free(r.doc);
}

/* Options without snapshots (only the log's pages fill the WAL), WAL
 * checkpoints at `pages`, on the store's thread or not. */
static store_options ckpt_options(uint32_t pages, bool thread)
{
	store_options o;
	store_options_init(&o);
	o.snapshot_every_changes = 0;
	o.snapshot_every_bytes = 0;
	o.checkpoint_pages = pages;
	o.checkpoint_thread = thread;
	return o;
}

/* 30 rounds of 200 small changes (4 commits each) into a WAL checkpointed
 * at 20 pages: returns the WAL file's size at the end. thread: on the
 * store's thread (waiting for it between rounds); else no checkpoint. */
static long long wal_after_rounds(const char *dir, bool thread, store_checkpoint_counts *out)
{
	char *path = st_join(dir, thread ? "thread.db" : "none.db");
	char *wal = st_join(dir, thread ? "thread.db-wal" : "none.db-wal");
	store_options o = ckpt_options(thread ? 20 : 0, thread);
	store *db = st_open_or_fail(path, &o);
	st_writer w;
	st_writer_init(&w, "doc", 7);
	uint64_t rng = 11;
	for (int round = 0; round < 30; round++) {
		assert_store(st_append_random(db, &w, 200, 50, &rng), STORE_OK);
		assert_true(store_checkpoint_idle(db, 10000));
	}
	long long size = file_size(wal);
	store_checkpoint_stats(db, out);
	assert_text(db, &w);
	store_close(db);
	st_writer_free(&w);
	free(wal);
	free(path);
	return size;
}

static void test_storage_checkpoint_thread_keeps_wal_short(void **state)
{
	(void)state;
	char *dir = st_tmpdir();
	store_checkpoint_counts none, bg;
	long long unchecked = wal_after_rounds(dir, false, &none);
	long long threaded = wal_after_rounds(dir, true, &bg);
	print_message("WAL bytes: %lld without checkpoints, %lld with the thread "
		      "(%llu checkpoints, %llu inline)\n",
		      unchecked, threaded, (unsigned long long)bg.background,
		      (unsigned long long)bg.inline_runs);
	/* no thread: nothing counted */
	assert_int_equal(none.background, 0);
	assert_int_equal(none.inline_runs, 0);
	/* the thread checkpointed, the commits never had to */
	assert_true(bg.background >= 5);
	assert_int_equal(bg.background_failures, 0);
	assert_int_equal(bg.last_failure, STORE_OK);
	assert_int_equal(bg.inline_runs, 0);
	/* and the WAL started over instead of growing */
	assert_true(unchecked > 0);
	assert_true(threaded > 0);
	assert_true(threaded * 4 < unchecked);
	st_rmdir(dir);
}

/* One commit that leaves the WAL 8 x checkpoint_pages long checkpoints
 * inline: the thread cannot be the only bound on the WAL. */
static void test_storage_checkpoint_inline_when_far_behind(void **state)
{
	(void)state;
	char *dir = st_tmpdir();
	char *path = st_join(dir, "big.db");
	store_options o = ckpt_options(4, true); /* inline from 32 pages */
	store *db = st_open_or_fail(path, &o);
	st_writer w;
	st_writer_init(&w, "doc", 7);
	uint64_t rng = 3;
	assert_store(st_append_random(db, &w, 6000, 6000, &rng), STORE_OK);
	store_checkpoint_counts c;
	store_checkpoint_stats(db, &c);
	assert_int_equal(c.inline_runs, 1);
	assert_true(store_checkpoint_idle(db, 10000));
	assert_text(db, &w);
	store_close(db);
	st_writer_free(&w);
	free(path);
	st_rmdir(dir);
}

/* Closing right after commits that woke the thread (a checkpoint asked for
 * or running) joins it; every change is there after reopening, and the
 * close still removed the WAL (the writer's connection was the last). A
 * read-only handle has no thread. */
static void test_storage_checkpoint_close_while_busy(void **state)
{
	(void)state;
	char *dir = st_tmpdir();
	char *path = st_join(dir, "busy.db");
	char *wal = st_join(dir, "busy.db-wal");
	store_options o = ckpt_options(2, true);
	st_writer w;
	st_writer_init(&w, "doc", 7);
	uint64_t rng = 9;
	for (int i = 0; i < 5; i++) {
		store *db = st_open_or_fail(path, &o);
		assert_store(st_append_random(db, &w, 300, 30, &rng), STORE_OK);
		store_close(db); /* no wait for the thread */
		assert_int_equal(file_size(wal), -1);
	}
	store_options ro = st_read_only_options();
	ro.checkpoint_thread = true;
	store *db = st_open_or_fail(path, &ro);
	assert_text(db, &w);
	store_checkpoint_counts c;
	store_checkpoint_stats(db, &c);
	assert_int_equal(c.background + c.inline_runs, 0);
	assert_true(store_checkpoint_idle(db, 0));
	store_close(db);
	st_writer_free(&w);
	free(wal);
	free(path);
	st_rmdir(dir);
}

/* The thread blocks every signal: a process that waits for SIGTERM in its
 * main thread's poll() (quire-server) must be the thread interrupted. */
static void test_storage_checkpoint_thread_takes_no_signals(void **state)
{
	(void)state;
	char *dir = st_tmpdir();
	char *path = st_join(dir, "sig.db");
	store_options o = ckpt_options(1000, true);
	store *db = st_open_or_fail(path, &o);
	int threads = 0, blocking = 0;
	DIR *tasks = opendir("/proc/self/task");
	assert_non_null(tasks);
	char self[32];
	snprintf(self, sizeof self, "%ld", (long)getpid());
	for (struct dirent *e; (e = readdir(tasks)) != NULL;) {
		if (e->d_name[0] == '.' || strcmp(e->d_name, self) == 0)
			continue; /* the main thread */
		char file[300], line[256];
		snprintf(file, sizeof file, "/proc/self/task/%s/status", e->d_name);
		FILE *f = fopen(file, "r");
		if (f == NULL)
			continue;
		threads++;
		while (fgets(line, sizeof line, f) != NULL) {
			unsigned long long blk;
			if (sscanf(line, "SigBlk: %llx", &blk) == 1 &&
			    (blk >> (SIGTERM - 1) & 1) && (blk >> (SIGINT - 1) & 1))
				blocking++;
		}
		fclose(f);
	}
	closedir(tasks);
	/* ours, at least (a sanitizer may run threads of its own) */
	assert_true(threads >= 1);
	assert_true(blocking >= 1);
	store_close(db);
	free(path);
	st_rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_storage_checkpoint_thread_keeps_wal_short),
		cmocka_unit_test(test_storage_checkpoint_inline_when_far_behind),
		cmocka_unit_test(test_storage_checkpoint_close_while_busy),
		cmocka_unit_test(test_storage_checkpoint_thread_takes_no_signals),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
