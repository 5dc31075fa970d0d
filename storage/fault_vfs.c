/*
 * fault_vfs.c - the fault-injecting SQLite VFS of fault_vfs.h. Every call is
 * forwarded to the wrapped (previous default) VFS; only xWrite, xTruncate
 * and xSync of the main database, its WAL and its rollback journal consult
 * the control file and may fail instead. The shim's state is global
 * because SQLite's VFS registry is: one shim per process.
 */
#define _POSIX_C_SOURCE 200809L

#include "fault_vfs.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <pthread.h>
#include <string.h>
#include <sys/stat.h>

#include <sqlite3.h>

enum fault_mode { FAULT_OK = 0, FAULT_FULL, FAULT_IOERR, FAULT_READONLY };

static struct {
	sqlite3_vfs vfs;   /* ours */
	sqlite3_vfs *real; /* the one wrapped */
	bool registered;
	char control[4096];
	/* what the control file looked like when last read */
	bool seen;
	ino_t ino;
	off_t size;
	struct timespec mtime;
	enum fault_mode mode;
	unsigned long injected;
} fv;

/* The mode and its cache are shared by every connection, the storage's
 * checkpoint thread's included. */
static pthread_mutex_t fv_lock = PTHREAD_MUTEX_INITIALIZER;

/* The file object: ours first, the wrapped VFS's right after it. */
typedef struct fault_file {
	sqlite3_file base;
	sqlite3_file *real;
	bool faultable; /* main db, WAL or journal: not temp files */
} fault_file;

static enum fault_mode current_mode(void)
{
	struct stat st;
	if (fv.control[0] == '\0' || stat(fv.control, &st) != 0) {
		fv.seen = false;
		fv.mode = FAULT_OK;
		return fv.mode;
	}
	if (fv.seen && st.st_ino == fv.ino && st.st_size == fv.size &&
	    st.st_mtim.tv_sec == fv.mtime.tv_sec && st.st_mtim.tv_nsec == fv.mtime.tv_nsec)
		return fv.mode;
	char word[32] = "";
	FILE *f = fopen(fv.control, "r");
	if (f != NULL) {
		if (fgets(word, sizeof word, f) == NULL)
			word[0] = '\0';
		fclose(f);
	}
	word[strcspn(word, " \t\r\n")] = '\0';
	fv.mode = strcmp(word, "full") == 0	  ? FAULT_FULL
		  : strcmp(word, "ioerr") == 0	  ? FAULT_IOERR
		  : strcmp(word, "readonly") == 0 ? FAULT_READONLY
						  : FAULT_OK;
	fv.seen = true;
	fv.ino = st.st_ino;
	fv.size = st.st_size;
	fv.mtime = st.st_mtim;
	return fv.mode;
}

/* The error a write-class call gets now, or SQLITE_OK to forward it. */
static int fault_for(const fault_file *f, int ioerr)
{
	if (!f->faultable)
		return SQLITE_OK;
	int rc;
	pthread_mutex_lock(&fv_lock);
	switch (current_mode()) {
	case FAULT_FULL:
		rc = ioerr == SQLITE_IOERR_WRITE ? SQLITE_FULL : SQLITE_OK;
		break;
	case FAULT_IOERR:
		rc = ioerr;
		break;
	case FAULT_READONLY:
		rc = SQLITE_READONLY;
		break;
	default:
		rc = SQLITE_OK;
	}
	if (rc != SQLITE_OK)
		fv.injected++;
	pthread_mutex_unlock(&fv_lock);
	return rc;
}

/* ---- io methods: forward, or fail the write-class ones -------------------------- */

#define REAL(p) (((fault_file *)(p))->real)

static int f_close(sqlite3_file *p)
{
	int rc = REAL(p)->pMethods->xClose(REAL(p));
	p->pMethods = NULL;
	return rc;
}

static int f_read(sqlite3_file *p, void *buf, int n, sqlite3_int64 off)
{
	return REAL(p)->pMethods->xRead(REAL(p), buf, n, off);
}

static int f_write(sqlite3_file *p, const void *buf, int n, sqlite3_int64 off)
{
	int rc = fault_for((fault_file *)p, SQLITE_IOERR_WRITE);
	return rc != SQLITE_OK ? rc : REAL(p)->pMethods->xWrite(REAL(p), buf, n, off);
}

static int f_truncate(sqlite3_file *p, sqlite3_int64 size)
{
	int rc = fault_for((fault_file *)p, SQLITE_IOERR_TRUNCATE);
	return rc != SQLITE_OK ? rc : REAL(p)->pMethods->xTruncate(REAL(p), size);
}

static int f_sync(sqlite3_file *p, int flags)
{
	int rc = fault_for((fault_file *)p, SQLITE_IOERR_FSYNC);
	return rc != SQLITE_OK ? rc : REAL(p)->pMethods->xSync(REAL(p), flags);
}

static int f_size(sqlite3_file *p, sqlite3_int64 *out)
{
	return REAL(p)->pMethods->xFileSize(REAL(p), out);
}

static int f_lock(sqlite3_file *p, int l) { return REAL(p)->pMethods->xLock(REAL(p), l); }

static int f_unlock(sqlite3_file *p, int l) { return REAL(p)->pMethods->xUnlock(REAL(p), l); }

static int f_check_lock(sqlite3_file *p, int *out)
{
	return REAL(p)->pMethods->xCheckReservedLock(REAL(p), out);
}

static int f_fcntl(sqlite3_file *p, int op, void *arg)
{
	return REAL(p)->pMethods->xFileControl(REAL(p), op, arg);
}

static int f_sector(sqlite3_file *p) { return REAL(p)->pMethods->xSectorSize(REAL(p)); }

static int f_devchar(sqlite3_file *p) { return REAL(p)->pMethods->xDeviceCharacteristics(REAL(p)); }

static int f_shm_map(sqlite3_file *p, int pg, int sz, int extend, void volatile **pp)
{
	return REAL(p)->pMethods->xShmMap(REAL(p), pg, sz, extend, pp);
}

static int f_shm_lock(sqlite3_file *p, int off, int n, int flags)
{
	return REAL(p)->pMethods->xShmLock(REAL(p), off, n, flags);
}

static void f_shm_barrier(sqlite3_file *p) { REAL(p)->pMethods->xShmBarrier(REAL(p)); }

static int f_shm_unmap(sqlite3_file *p, int del)
{
	return REAL(p)->pMethods->xShmUnmap(REAL(p), del);
}

static int f_fetch(sqlite3_file *p, sqlite3_int64 off, int n, void **pp)
{
	if (REAL(p)->pMethods->iVersion < 3) {
		*pp = NULL; /* no memory map: SQLite reads with xRead */
		return SQLITE_OK;
	}
	return REAL(p)->pMethods->xFetch(REAL(p), off, n, pp);
}

static int f_unfetch(sqlite3_file *p, sqlite3_int64 off, void *ptr)
{
	if (REAL(p)->pMethods->iVersion < 3)
		return SQLITE_OK;
	return REAL(p)->pMethods->xUnfetch(REAL(p), off, ptr);
}

/* Two tables: WAL needs the shm methods, so a file gets io_v3 when the real
 * one has them (version >= 2; f_fetch copes with a version 2 without
 * xFetch), io_v1 otherwise. Both have the version 1 methods. */
#define IO_V1_METHODS                                                                              \
	.xClose = f_close, .xRead = f_read, .xWrite = f_write, .xTruncate = f_truncate,            \
	.xSync = f_sync, .xFileSize = f_size, .xLock = f_lock, .xUnlock = f_unlock,                \
	.xCheckReservedLock = f_check_lock, .xFileControl = f_fcntl, .xSectorSize = f_sector,      \
	.xDeviceCharacteristics = f_devchar
static const sqlite3_io_methods io_v1 = {.iVersion = 1, IO_V1_METHODS};
static const sqlite3_io_methods io_v3 = {
	.iVersion = 3,
	IO_V1_METHODS,
	.xShmMap = f_shm_map,
	.xShmLock = f_shm_lock,
	.xShmBarrier = f_shm_barrier,
	.xShmUnmap = f_shm_unmap,
	.xFetch = f_fetch,
	.xUnfetch = f_unfetch,
};
#undef IO_V1_METHODS

/* ---- vfs methods ---------------------------------------------------------------- */

static int v_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *p, int flags, int *out_flags)
{
	(void)vfs;
	fault_file *f = (fault_file *)p;
	f->real = (sqlite3_file *)(f + 1);
	f->faultable =
		(flags & (SQLITE_OPEN_MAIN_DB | SQLITE_OPEN_WAL | SQLITE_OPEN_MAIN_JOURNAL)) != 0;
	int rc = fv.real->xOpen(fv.real, name, f->real, flags, out_flags);
	if (f->real->pMethods == NULL) {
		p->pMethods = NULL; /* nothing to close */
		return rc;
	}
	p->pMethods = f->real->pMethods->iVersion >= 2 ? &io_v3 : &io_v1;
	return rc;
}

static int v_delete(sqlite3_vfs *vfs, const char *name, int sync)
{
	(void)vfs;
	return fv.real->xDelete(fv.real, name, sync);
}

static int v_access(sqlite3_vfs *vfs, const char *name, int flags, int *out)
{
	(void)vfs;
	return fv.real->xAccess(fv.real, name, flags, out);
}

static int v_fullpath(sqlite3_vfs *vfs, const char *name, int n, char *out)
{
	(void)vfs;
	return fv.real->xFullPathname(fv.real, name, n, out);
}

static void *v_dlopen(sqlite3_vfs *vfs, const char *name)
{
	(void)vfs;
	return fv.real->xDlOpen(fv.real, name);
}

static void v_dlerror(sqlite3_vfs *vfs, int n, char *out)
{
	(void)vfs;
	fv.real->xDlError(fv.real, n, out);
}

static void (*v_dlsym(sqlite3_vfs *vfs, void *h, const char *sym))(void)
{
	(void)vfs;
	return fv.real->xDlSym(fv.real, h, sym);
}

static void v_dlclose(sqlite3_vfs *vfs, void *h)
{
	(void)vfs;
	fv.real->xDlClose(fv.real, h);
}

static int v_random(sqlite3_vfs *vfs, int n, char *out)
{
	(void)vfs;
	return fv.real->xRandomness(fv.real, n, out);
}

static int v_sleep(sqlite3_vfs *vfs, int us)
{
	(void)vfs;
	return fv.real->xSleep(fv.real, us);
}

static int v_time(sqlite3_vfs *vfs, double *out)
{
	(void)vfs;
	return fv.real->xCurrentTime(fv.real, out);
}

static int v_last_error(sqlite3_vfs *vfs, int n, char *out)
{
	(void)vfs;
	return fv.real->xGetLastError ? fv.real->xGetLastError(fv.real, n, out) : 0;
}

static int v_time64(sqlite3_vfs *vfs, sqlite3_int64 *out)
{
	(void)vfs;
	if (fv.real->iVersion >= 2 && fv.real->xCurrentTimeInt64)
		return fv.real->xCurrentTimeInt64(fv.real, out);
	double d = 0;
	int rc = fv.real->xCurrentTime(fv.real, &d);
	*out = (sqlite3_int64)(d * 86400000.0);
	return rc;
}

int store_fault_vfs_install(const char *control_path)
{
	if (control_path == NULL || strlen(control_path) >= sizeof fv.control)
		return -1;
	pthread_mutex_lock(&fv_lock);
	snprintf(fv.control, sizeof fv.control, "%s", control_path);
	fv.seen = false;
	pthread_mutex_unlock(&fv_lock);
	if (fv.registered)
		return 0;
	if (sqlite3_initialize() != SQLITE_OK)
		return -1;
	sqlite3_vfs *real = sqlite3_vfs_find(NULL);
	if (real == NULL)
		return -1;
	fv.real = real;
	fv.vfs = (sqlite3_vfs){
		.iVersion = 2,
		.szOsFile = (int)sizeof(fault_file) + real->szOsFile,
		.mxPathname = real->mxPathname,
		.zName = STORE_FAULT_VFS_NAME,
		.xOpen = v_open,
		.xDelete = v_delete,
		.xAccess = v_access,
		.xFullPathname = v_fullpath,
		.xDlOpen = v_dlopen,
		.xDlError = v_dlerror,
		.xDlSym = v_dlsym,
		.xDlClose = v_dlclose,
		.xRandomness = v_random,
		.xSleep = v_sleep,
		.xCurrentTime = v_time,
		.xGetLastError = v_last_error,
		.xCurrentTimeInt64 = v_time64,
	};
	if (sqlite3_vfs_register(&fv.vfs, 1) != SQLITE_OK)
		return -1;
	fv.registered = true;
	return 0;
}

int store_fault_vfs_from_env(void)
{
	const char *p = getenv(STORE_FAULT_CONTROL_ENV);
	if (p == NULL || *p == '\0')
		return 0;
	return store_fault_vfs_install(p);
}

unsigned long store_fault_vfs_injected(void)
{
	pthread_mutex_lock(&fv_lock);
	unsigned long n = fv.injected;
	pthread_mutex_unlock(&fv_lock);
	return n;
}
