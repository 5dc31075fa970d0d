/*
 * fault_vfs.h - a test-only SQLite VFS that makes a running process's
 * storage fail on demand: it wraps the default VFS and, while a control file
 * says so, fails the write-class calls (xWrite, xTruncate, xSync) of the
 * database, its WAL and its journal. Reads are never failed, so a server
 * under a fault keeps serving what is committed.
 *
 * Compiled only when the CMake option QUIRE_FAULT_INJECTION is ON (it is ON
 * with QUIRE_TESTS); production builds do not carry it. store_open calls
 * store_fault_vfs_from_env, so any program linking quire_storage (the
 * server) is under the shim when the environment asks for it.
 *
 * The control file (its path in QUIRE_FAULT_CONTROL) holds one word:
 *
 *   ok        no fault (also: the file is missing or empty)
 *   full      writes fail with SQLITE_FULL (disk full)
 *   ioerr     writes fail with SQLITE_IOERR_WRITE, syncs with
 *             SQLITE_IOERR_FSYNC, truncates with SQLITE_IOERR_TRUNCATE
 *   readonly  writes, syncs and truncates fail with SQLITE_READONLY (the
 *             file became read-only, e.g. a filesystem remounted ro; a
 *             chmod does not work as a fault for root)
 *
 * The file is stat'ed on every write-class call and read again only when
 * its inode, size or mtime changed; writers should replace it atomically
 * (write a temporary file, rename it over the control file) so every change
 * is a new inode and no call sees half a word. Unknown words count as "ok".
 *
 * Threads: the mode is process-wide; reading the control file and counting
 * faults happen under one lock, so the storage's checkpoint thread and the
 * event loop may both write through the shim.
 */
#ifndef QUIRE_STORE_FAULT_VFS_H
#define QUIRE_STORE_FAULT_VFS_H

#ifdef __cplusplus
extern "C" {
#endif

/* The environment variable naming the control file. */
#define STORE_FAULT_CONTROL_ENV "QUIRE_FAULT_CONTROL"

/* The name the shim is registered under. */
#define STORE_FAULT_VFS_NAME "quire-fault"

/* Register the shim, controlled by the file at control_path, as SQLite's
 * default VFS (wrapping the default before it). Idempotent: a second call
 * only changes the control path. 0, or -1 when there is no default VFS to
 * wrap or registration failed. */
int store_fault_vfs_install(const char *control_path);

/* store_fault_vfs_install($QUIRE_FAULT_CONTROL) when the variable is set and
 * not empty; otherwise nothing. 0, or -1 as above. */
int store_fault_vfs_from_env(void);

/* How many write-class calls the shim has failed so far (tests, logs). */
unsigned long store_fault_vfs_injected(void);

#ifdef __cplusplus
}
#endif
#endif /* QUIRE_STORE_FAULT_VFS_H */
