/*
 * test_storage_faults.c - SQLite failing under the store: a full database
 * (max_db_bytes, i.e. PRAGMA max_page_count) and disk I/O errors (a VFS
 * shim that fails writes on demand). Every failure is a typed error with
 * SQLite's message, the failed batch is not there, and everything committed
 * before is still there after reopening.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "storeassert.h"
#include "storetest.h"

/* ---- synthetic changes: payload bytes derived from (doc, seq) ---- */

#define PAYLOAD 600

static void fill_payload(uint8_t *p, uint64_t seq)
{
	uint64_t s = seq * 7919;
	for (size_t i = 0; i < PAYLOAD; i++)
		p[i] = (uint8_t)(st_rand(&s) >> 56);
}

/* Append changes (head, head + n] of "bulk" in one batch. */
static int append_bulk(store *db, uint64_t head, size_t n)
{
	uint8_t(*bufs)[PAYLOAD] = malloc(n * sizeof *bufs);
	store_change *cs = calloc(n, sizeof *cs);
	for (size_t i = 0; i < n; i++) {
		fill_payload(bufs[i], head + 1 + i);
		cs[i] = (store_change){.doc_id = "bulk",
				       .seq = head + 1 + i,
				       .replica = 9,
				       .payload = bufs[i],
				       .payload_len = PAYLOAD};
	}
	int s = store_append(db, cs, n);
	free(cs);
	free(bufs);
	return s;
}

typedef struct verify {
	uint64_t next;
	int bad;
} verify;

static int verify_row(void *ctx, const store_change_row *row)
{
	verify *v = ctx;
	uint8_t want[PAYLOAD];
	fill_payload(want, row->seq);
	if (row->seq != v->next || row->payload_len != PAYLOAD ||
	    memcmp(row->payload, want, PAYLOAD))
		v->bad++;
	v->next++;
	return 0;
}

/* Every change 1..head of "bulk" is there, intact, and nothing after. */
static void assert_bulk(store *db, uint64_t head)
{
	uint64_t start = 0, h = 0;
	assert_store(store_log_start(db, "bulk", &start, &h), STORE_OK);
	assert_int_equal(h, head);
	assert_int_equal(start, 1);
	verify v = {1, 0};
	assert_store(store_changes(db, "bulk", 0, 0, verify_row, &v), STORE_OK);
	assert_int_equal(v.bad, 0);
	assert_int_equal(v.next, head + 1);
}

static void test_storage_fault_disk_full(void **state)
{
	(void)state;
	char *dir = st_tmpdir();
	char *path = st_join(dir, "full.db");
	store_options o;
	store_options_init(&o);
	o.max_db_bytes = 256 * 1024;
	store *db = NULL;
	char err[256];
	assert_store(store_open(path, &o, &db, err, sizeof err), STORE_OK);

	/* a real document first, with a snapshot */
	uint64_t rng = 3;
	st_writer w;
	st_writer_init(&w, "text", 77);
	assert_store(st_append_random(db, &w, 30, 10, &rng), STORE_OK);
	assert_store(store_snapshot(db, "text", 30, w.doc), STORE_OK);

	uint64_t head = 0;
	int s = STORE_OK;
	for (int i = 0; i < 1000 && s == STORE_OK; i++) {
		s = append_bulk(db, head, 10);
		if (s == STORE_OK)
			head += 10;
	}
	assert_store(s, STORE_EFULL);
	assert_int_equal(store_sqlite_code(db) & 0xff, SQLITE_FULL);
	assert_non_null(strstr(store_errmsg(db), "full"));
	assert_true(head > 0);
	/* still full, still usable for reading, nothing half-written */
	assert_store(append_bulk(db, head, 10), STORE_EFULL);
	assert_bulk(db, head);
	store_load_result r;
	assert_store(store_load(db, "text", 5, &r), STORE_OK);
	crdt_doc_free(r.doc);
	/* a smaller batch may still fit; then the next fails again */
	while ((s = append_bulk(db, head, 1)) == STORE_OK)
		head++;
	assert_store(s, STORE_EFULL);
	store_close(db);

	/* reopen without the quota: everything committed is there */
	assert_store(store_open(path, NULL, &db, err, sizeof err), STORE_OK);
	assert_bulk(db, head);
	assert_store(store_load(db, "text", 5, &r), STORE_OK);
	char *t = st_text(r.doc);
	assert_string_equal(t, w.texts[30]);
	free(t);
	crdt_doc_free(r.doc);
	assert_store(append_bulk(db, head, 10), STORE_OK);
	assert_bulk(db, head + 10);
	store_close(db);
	assert_int_equal(st_sql_int(path, "SELECT count(*) FROM pragma_integrity_check"
					  " WHERE integrity_check = 'ok'"),
			 1);
	st_writer_free(&w);
	free(path);
	st_rmdir(dir);
}

/* ---- a VFS that fails writes on demand ---- */

static struct {
	sqlite3_vfs vfs;
	sqlite3_vfs *root;
	sqlite3_io_methods methods;
	int fail_writes; /* fail every write while set */
	int failed;	 /* writes failed so far */
} faulty;

typedef struct faulty_file {
	sqlite3_file base;
	sqlite3_file *real; /* follows this struct */
} faulty_file;

#define REAL(f) (((faulty_file *)(f))->real)

static int ff_close(sqlite3_file *f)
{
	int rc = REAL(f)->pMethods->xClose(REAL(f));
	return rc;
}
static int ff_read(sqlite3_file *f, void *b, int n, sqlite3_int64 off)
{
	return REAL(f)->pMethods->xRead(REAL(f), b, n, off);
}
static int ff_write(sqlite3_file *f, const void *b, int n, sqlite3_int64 off)
{
	if (faulty.fail_writes) {
		faulty.failed++;
		return SQLITE_IOERR_WRITE;
	}
	return REAL(f)->pMethods->xWrite(REAL(f), b, n, off);
}
static int ff_truncate(sqlite3_file *f, sqlite3_int64 size)
{
	return REAL(f)->pMethods->xTruncate(REAL(f), size);
}
static int ff_sync(sqlite3_file *f, int flags) { return REAL(f)->pMethods->xSync(REAL(f), flags); }
static int ff_size(sqlite3_file *f, sqlite3_int64 *size)
{
	return REAL(f)->pMethods->xFileSize(REAL(f), size);
}
static int ff_lock(sqlite3_file *f, int l) { return REAL(f)->pMethods->xLock(REAL(f), l); }
static int ff_unlock(sqlite3_file *f, int l) { return REAL(f)->pMethods->xUnlock(REAL(f), l); }
static int ff_check(sqlite3_file *f, int *out)
{
	return REAL(f)->pMethods->xCheckReservedLock(REAL(f), out);
}
static int ff_control(sqlite3_file *f, int op, void *arg)
{
	return REAL(f)->pMethods->xFileControl(REAL(f), op, arg);
}
static int ff_sector(sqlite3_file *f) { return REAL(f)->pMethods->xSectorSize(REAL(f)); }
static int ff_chars(sqlite3_file *f) { return REAL(f)->pMethods->xDeviceCharacteristics(REAL(f)); }
static int ff_shm_map(sqlite3_file *f, int i, int sz, int extend, void volatile **pp)
{
	return REAL(f)->pMethods->xShmMap(REAL(f), i, sz, extend, pp);
}
static int ff_shm_lock(sqlite3_file *f, int off, int n, int flags)
{
	return REAL(f)->pMethods->xShmLock(REAL(f), off, n, flags);
}
static void ff_shm_barrier(sqlite3_file *f) { REAL(f)->pMethods->xShmBarrier(REAL(f)); }
static int ff_shm_unmap(sqlite3_file *f, int del)
{
	return REAL(f)->pMethods->xShmUnmap(REAL(f), del);
}

static int ff_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *file, int flags, int *out)
{
	(void)vfs;
	faulty_file *p = (faulty_file *)file;
	p->real = (sqlite3_file *)(p + 1);
	int rc = faulty.root->xOpen(faulty.root, name, p->real, flags, out);
	/* Only the mandatory methods and the WAL ones (version 2); no mmap. */
	p->base.pMethods = p->real->pMethods ? &faulty.methods : NULL;
	return rc;
}
static int ff_delete(sqlite3_vfs *vfs, const char *name, int sync)
{
	(void)vfs;
	return faulty.root->xDelete(faulty.root, name, sync);
}
static int ff_access(sqlite3_vfs *vfs, const char *name, int flags, int *out)
{
	(void)vfs;
	return faulty.root->xAccess(faulty.root, name, flags, out);
}
static int ff_fullpath(sqlite3_vfs *vfs, const char *name, int n, char *out)
{
	(void)vfs;
	return faulty.root->xFullPathname(faulty.root, name, n, out);
}

static void faulty_register(void)
{
	if (faulty.root)
		return;
	faulty.root = sqlite3_vfs_find(NULL);
	faulty.vfs = *faulty.root;
	faulty.vfs.zName = "quire-faulty";
	faulty.vfs.szOsFile = (int)sizeof(faulty_file) + faulty.root->szOsFile;
	faulty.vfs.xOpen = ff_open;
	faulty.vfs.xDelete = ff_delete;
	faulty.vfs.xAccess = ff_access;
	faulty.vfs.xFullPathname = ff_fullpath;
	faulty.vfs.pNext = NULL;
	faulty.methods = (sqlite3_io_methods){
		.iVersion = 2,
		.xClose = ff_close,
		.xRead = ff_read,
		.xWrite = ff_write,
		.xTruncate = ff_truncate,
		.xSync = ff_sync,
		.xFileSize = ff_size,
		.xLock = ff_lock,
		.xUnlock = ff_unlock,
		.xCheckReservedLock = ff_check,
		.xFileControl = ff_control,
		.xSectorSize = ff_sector,
		.xDeviceCharacteristics = ff_chars,
		.xShmMap = ff_shm_map,
		.xShmLock = ff_shm_lock,
		.xShmBarrier = ff_shm_barrier,
		.xShmUnmap = ff_shm_unmap,
	};
	assert_int_equal(sqlite3_vfs_register(&faulty.vfs, 0), SQLITE_OK);
}

static void test_storage_fault_io_error(void **state)
{
	(void)state;
	faulty_register();
	char *dir = st_tmpdir();
	char *path = st_join(dir, "io.db");
	for (int mode = STORE_SYNC_NORMAL; mode <= STORE_SYNC_FULL; mode++) {
		store_options o;
		store_options_init(&o);
		o.durability = (store_durability)mode;
		o.vfs = "quire-faulty";
		store *db = NULL;
		char err[256];
		assert_store(store_open(path, &o, &db, err, sizeof err), STORE_OK);
		uint64_t head = 0, start = 0;
		store_load_result r;
		assert_store(store_log_start(db, "bulk", &start, &head), STORE_OK);
		for (int round = 0; round < 5; round++) {
			assert_store(append_bulk(db, head, 20), STORE_OK);
			head += 20;
			faulty.fail_writes = 1;
			faulty.failed = 0;
			assert_store(append_bulk(db, head, 20), STORE_EIO);
			assert_int_equal(store_sqlite_code(db) & 0xff, SQLITE_IOERR);
			assert_non_null(strstr(store_errmsg(db), "I/O"));
			assert_true(faulty.failed > 0);
			faulty.fail_writes = 0;
			/* the failed batch is not there; the handle goes on */
			assert_bulk(db, head);
		}
		/* a snapshot write failing the same way */
		st_writer w;
		uint64_t rng = 5;
		char id[16];
		snprintf(id, sizeof id, "text%d", mode);
		st_writer_init(&w, id, 3);
		assert_store(st_append_random(db, &w, 10, 10, &rng), STORE_OK);
		faulty.fail_writes = 1;
		assert_store(store_snapshot(db, id, 10, w.doc), STORE_EIO);
		faulty.fail_writes = 0;
		store_doc_info info;
		assert_store(store_doc_info_get(db, id, &info), STORE_OK);
		assert_int_equal(info.snapshots, 0);
		store_close(db);

		/* reopen with the plain VFS: committed changes only */
		assert_store(store_open(path, NULL, &db, err, sizeof err), STORE_OK);
		assert_bulk(db, head);
		assert_store(store_load(db, id, 1, &r), STORE_OK);
		char *t = st_text(r.doc);
		assert_string_equal(t, w.texts[10]);
		free(t);
		crdt_doc_free(r.doc);
		store_close(db);
		st_writer_free(&w);
	}
	assert_int_equal(st_sql_int(path, "SELECT count(*) FROM pragma_integrity_check"
					  " WHERE integrity_check = 'ok'"),
			 1);
	free(path);
	st_rmdir(dir);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_storage_fault_disk_full),
		cmocka_unit_test(test_storage_fault_io_error),
	};
	if (argc > 1)
		cmocka_set_test_filter(argv[1]);
	return cmocka_run_group_tests_name("storage_faults", tests, NULL, NULL);
}
