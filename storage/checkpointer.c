/*
 * checkpointer.c - WAL checkpoints off the writer's thread
 * (store_options.checkpoint_thread).
 *
 * SQLite's automatic checkpoint runs inside the commit that crosses
 * wal_autocheckpoint: the WAL's pages are copied into the database file and
 * both files are fsync'd, 5-25 ms on our disks, and a server's event loop
 * sends nothing meanwhile. Here the writer's connection only notices, in
 * its WAL hook, that the WAL has grown past checkpoint_pages, and wakes a
 * thread that runs a PASSIVE checkpoint on a connection of its own. PASSIVE
 * takes no lock a writer needs: commits go on appending to the WAL, and
 * SQLite starts the WAL over at the first commit after a checkpoint that
 * copied everything. Durability does not change: a commit is durable in
 * the WAL before any checkpoint copies it.
 *
 * Bounded: should the thread fall behind (a slow or failing disk), a commit
 * that leaves the WAL CKPT_INLINE_FACTOR times longer than checkpoint_pages
 * checkpoints inline, as SQLite would have, so the WAL cannot grow without
 * limit.
 */
#define _POSIX_C_SOURCE 200809L /* clock_gettime */

#include "internal.h"

#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <time.h>

/* WAL length, in multiples of checkpoint_pages, at which a commit stops
 * waiting for the thread and checkpoints itself. */
#define CKPT_INLINE_FACTOR 8

struct store_ckpt {
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	sqlite3 *sql; /* the thread's connection */
	uint32_t pages, inline_pages;
	/* under mu */
	bool wake, stop, busy;
	uint64_t runs, busy_runs, failures;
	int last_rc;
	/* the writer's thread only */
	uint64_t inline_runs;
};

static void *ckpt_main(void *arg)
{
	store_ckpt *ck = arg;
	pthread_mutex_lock(&ck->mu);
	for (;;) {
		while (!ck->wake && !ck->stop)
			pthread_cond_wait(&ck->cv, &ck->mu);
		if (ck->stop)
			break;
		ck->wake = false;
		ck->busy = true;
		pthread_mutex_unlock(&ck->mu);
		int rc = sqlite3_wal_checkpoint_v2(ck->sql, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL,
						   NULL);
		pthread_mutex_lock(&ck->mu);
		ck->busy = false;
		ck->runs++;
		if ((rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED) {
			ck->busy_runs++; /* another checkpoint (an inline one) was running */
		} else if (rc != SQLITE_OK) {
			ck->failures++;
			ck->last_rc = rc;
		}
		pthread_cond_broadcast(&ck->cv); /* store_checkpoint_idle waits on it */
	}
	pthread_mutex_unlock(&ck->mu);
	return NULL;
}

/* After every commit of the writer's connection, with the WAL's length. */
static int ckpt_wal_hook(void *arg, sqlite3 *sql, const char *schema, int pages)
{
	store_ckpt *ck = arg;
	if (pages < 0 || (uint32_t)pages < ck->pages)
		return SQLITE_OK;
	if ((uint32_t)pages >= ck->inline_pages) {
		/* as SQLite's own hook: a failure here is not the commit's */
		sqlite3_wal_checkpoint_v2(sql, schema, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
		ck->inline_runs++;
		return SQLITE_OK;
	}
	pthread_mutex_lock(&ck->mu);
	if (!ck->wake) {
		ck->wake = true;
		pthread_cond_signal(&ck->cv);
	}
	pthread_mutex_unlock(&ck->mu);
	return SQLITE_OK;
}

int store__ckpt_start(store *db, const char *path, const char *vfs)
{
	store_ckpt *ck = calloc(1, sizeof *ck);
	if (ck == NULL)
		return store__fail(db, STORE_ENOMEM, "checkpoint thread: out of memory");
	ck->pages = db->opts.checkpoint_pages;
	ck->inline_pages = ck->pages > UINT32_MAX / CKPT_INLINE_FACTOR
				   ? UINT32_MAX
				   : ck->pages * CKPT_INLINE_FACTOR;
	int rc = sqlite3_open_v2(path, &ck->sql, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, vfs);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(ck->sql,
				  db->opts.durability == STORE_SYNC_FULL ? "PRAGMA synchronous=FULL"
									 : "PRAGMA synchronous=NORMAL",
				  NULL, NULL, NULL);
	if (rc != SQLITE_OK) {
		int status = store__fail(db, store__map_sqlite(rc),
					 "checkpoint thread: cannot open the database: %s",
					 ck->sql ? sqlite3_errmsg(ck->sql) : sqlite3_errstr(rc));
		sqlite3_close(ck->sql);
		free(ck);
		return status;
	}
	pthread_mutex_init(&ck->mu, NULL);
	pthread_cond_init(&ck->cv, NULL);
	/* The thread takes no signals: a process that waits for SIGTERM in its
	 * own thread's poll() (quire-server) must be the one interrupted. */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	int started = pthread_create(&ck->thread, NULL, ckpt_main, ck);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (started != 0) {
		pthread_cond_destroy(&ck->cv);
		pthread_mutex_destroy(&ck->mu);
		sqlite3_close(ck->sql);
		free(ck);
		return store__fail(db, STORE_ENOMEM, "checkpoint thread: cannot start it");
	}
	/* replaces wal_autocheckpoint's hook (the pragma installs one too) */
	sqlite3_wal_hook(db->sql, ckpt_wal_hook, ck);
	db->ckpt = ck;
	return STORE_OK;
}

void store__ckpt_stop(store *db)
{
	store_ckpt *ck = db->ckpt;
	if (ck == NULL)
		return;
	sqlite3_wal_hook(db->sql, NULL, NULL);
	pthread_mutex_lock(&ck->mu);
	ck->stop = true;
	pthread_cond_signal(&ck->cv);
	pthread_mutex_unlock(&ck->mu);
	pthread_join(ck->thread, NULL);
	/* closed before the writer's connection, so that one is the last and
	 * its close checkpoints and removes the WAL as before */
	sqlite3_close(ck->sql);
	pthread_cond_destroy(&ck->cv);
	pthread_mutex_destroy(&ck->mu);
	free(ck);
	db->ckpt = NULL;
}

void store_checkpoint_stats(store *db, store_checkpoint_counts *out)
{
	*out = (store_checkpoint_counts){0};
	store_ckpt *ck = db->ckpt;
	if (ck == NULL)
		return;
	pthread_mutex_lock(&ck->mu);
	out->background = ck->runs;
	out->background_busy = ck->busy_runs;
	out->background_failures = ck->failures;
	out->last_failure = ck->last_rc ? store__map_sqlite(ck->last_rc) : STORE_OK;
	pthread_mutex_unlock(&ck->mu);
	out->inline_runs = ck->inline_runs;
}

bool store_checkpoint_idle(store *db, uint32_t wait_ms)
{
	store_ckpt *ck = db->ckpt;
	if (ck == NULL)
		return true;
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += wait_ms / 1000;
	until.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&ck->mu);
	int rc = 0;
	while ((ck->wake || ck->busy) && rc == 0)
		rc = pthread_cond_timedwait(&ck->cv, &ck->mu, &until);
	bool idle = !ck->wake && !ck->busy;
	pthread_mutex_unlock(&ck->mu);
	return idle;
}
