/*
 * store.c - the store handle: opening (pragmas, schema, durability mode),
 * closing, the status table, error recording with SQLite's messages, the
 * cached prepared statements and the transaction helpers every other file
 * of storage/ uses.
 *
 * Error model: each public function starts with store__clear(); the first
 * failure records a status, a message and (for SQLite failures) the
 * extended result code; the function returns that status. A failure inside
 * a transaction ends it with ROLLBACK (store__end), so the database is as
 * it was before the call.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"
#ifdef QUIRE_FAULT_INJECTION
#include "fault_vfs.h" /* test builds: storage faults on demand */
#endif

/* ---- status codes ------------------------------------------------------- */

const char *store_strerror(int status)
{
	switch (status) {
#define STORE__CASE(name, value, text) \
	case value:                    \
		return text;
		STORE_STATUS_TABLE(STORE__CASE)
#undef STORE__CASE
	}
	return "unknown store status";
}

int store__map_sqlite(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_OK:
	case SQLITE_DONE:
	case SQLITE_ROW:
		return STORE_OK;
	case SQLITE_NOMEM:
		return STORE_ENOMEM;
	case SQLITE_FULL:
		return STORE_EFULL;
	case SQLITE_IOERR:
		return rc == SQLITE_IOERR_NOMEM ? STORE_ENOMEM : STORE_EIO;
	case SQLITE_READONLY:
		return STORE_EREADONLY;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return STORE_EBUSY;
	case SQLITE_CORRUPT:
	case SQLITE_CONSTRAINT: /* a key that must be unique is not: inconsistent */
		return STORE_ECORRUPT;
	case SQLITE_NOTADB:
		return STORE_ESCHEMA;
	case SQLITE_CANTOPEN:
	case SQLITE_PERM:
	case SQLITE_AUTH:
		return STORE_ECANTOPEN;
	case SQLITE_TOOBIG:
	case SQLITE_RANGE:
	case SQLITE_MISUSE:
		return STORE_EINVAL;
	default:
		return STORE_ESQLITE;
	}
}

/* ---- errors --------------------------------------------------------------- */

void store__clear(store *db)
{
	db->err[0] = '\0';
	db->sqlite_code = 0;
}

static void vrecord(store *db, const char *fmt, va_list ap)
{
	vsnprintf(db->err, sizeof db->err, fmt, ap);
}

int store__fail(store *db, int status, const char *fmt, ...)
{
	if (db->err[0] == '\0') { /* keep the first (root) cause */
		va_list ap;
		va_start(ap, fmt);
		vrecord(db, fmt, ap);
		va_end(ap);
	}
	return status;
}

int store__sqlfail(store *db, int rc, const char *fmt, ...)
{
	int status = store__map_sqlite(rc);
	if (status == STORE_OK)
		status = STORE_ESQLITE;
	if (db->err[0] == '\0') {
		va_list ap;
		va_start(ap, fmt);
		vrecord(db, fmt, ap);
		va_end(ap);
		size_t used = strlen(db->err);
		snprintf(db->err + used, sizeof db->err - used, ": %s (sqlite %d)",
			 db->sql ? sqlite3_errmsg(db->sql) : sqlite3_errstr(rc), rc);
		db->sqlite_code = rc;
	}
	return status;
}

const char *store_errmsg(const store *db) { return db ? db->err : "no store"; }

int store_sqlite_code(const store *db) { return db ? db->sqlite_code : 0; }

/* ---- statements and transactions ------------------------------------------ */

static const char *const stmt_sql[ST__COUNT] = {
#define STORE__STMT_SQL(name, sql) [name] = sql,
	STORE__STMT_TABLE(STORE__STMT_SQL)
#undef STORE__STMT_SQL
};

sqlite3_stmt *store__stmt(store *db, enum store__stmt_id id)
{
	sqlite3_stmt *st = db->stmt[id];
	if (st) {
		sqlite3_reset(st);
		sqlite3_clear_bindings(st);
		return st;
	}
	int rc =
		sqlite3_prepare_v3(db->sql, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT, &st, NULL);
	if (rc != SQLITE_OK) {
		store__sqlfail(db, rc, "prepare \"%.60s\"", stmt_sql[id]);
		return NULL;
	}
	db->stmt[id] = st;
	return st;
}

void store__reset_all(store *db)
{
	for (int i = 0; i < ST__COUNT; i++)
		if (db->stmt[i])
			sqlite3_reset(db->stmt[i]);
}

int store__exec(store *db, sqlite3_stmt *st, const char *what)
{
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		return store__sqlfail(db, rc, "%s", what);
	return STORE_OK;
}

int store__begin(store *db, bool write)
{
	sqlite3_stmt *st = store__stmt(db, write ? ST_BEGIN_WRITE : ST_BEGIN_READ);
	if (!st)
		return store__map_sqlite(db->sqlite_code);
	int status = store__exec(db, st, write ? "begin write transaction" : "begin read");
	if (status == STORE_OK)
		db->in_txn = true;
	return status;
}

int store__end(store *db, int status)
{
	if (!db->in_txn)
		return status;
	/* Statements still mid-step would keep the read snapshot (and make
	 * COMMIT fail with SQLITE_BUSY); release them all first. */
	store__reset_all(db);
	if (status == STORE_OK) {
		sqlite3_stmt *st = store__stmt(db, ST_COMMIT);
		status = st ? store__exec(db, st, "commit") : store__map_sqlite(db->sqlite_code);
		if (status == STORE_OK) {
			db->in_txn = false;
			return STORE_OK;
		}
	}
	/* Failed, or the commit failed: roll back unless SQLite already did
	 * (it does on some errors, e.g. SQLITE_FULL or I/O errors). */
	if (!sqlite3_get_autocommit(db->sql)) {
		sqlite3_stmt *st = store__stmt(db, ST_ROLLBACK);
		if (st) {
			sqlite3_step(st);
			sqlite3_reset(st);
		}
		if (!sqlite3_get_autocommit(db->sql)) /* last resort */
			sqlite3_exec(db->sql, "ROLLBACK", NULL, NULL, NULL);
	}
	db->in_txn = false;
	return status;
}

/* ---- helpers ------------------------------------------------------------- */

int64_t store__now_ms(void)
{
	struct timespec ts;
	if (timespec_get(&ts, TIME_UTC) != TIME_UTC)
		return 0;
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int store__check_doc_id(store *db, const char *doc_id)
{
	if (!doc_id)
		return store__fail(db, STORE_EINVAL, "doc id is NULL");
	size_t n = 0;
	while (n <= STORE_DOC_ID_MAX && doc_id[n] != '\0')
		n++;
	if (n == 0 || n > STORE_DOC_ID_MAX)
		return store__fail(db, STORE_EINVAL, "doc id must be 1..%d bytes",
				   STORE_DOC_ID_MAX);
	return STORE_OK;
}

int store__doc_find(store *db, const char *doc_id, int64_t *id, uint64_t *head)
{
	sqlite3_stmt *st = store__stmt(db, ST_DOC_FIND);
	if (!st)
		return store__map_sqlite(db->sqlite_code);
	sqlite3_bind_text(st, 1, doc_id, -1, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*id = sqlite3_column_int64(st, 0);
		int64_t h = sqlite3_column_int64(st, 1);
		*head = h > 0 ? (uint64_t)h : 0;
		sqlite3_reset(st);
		return STORE_OK;
	}
	sqlite3_reset(st);
	if (rc == SQLITE_DONE)
		return STORE_ENOTFOUND; /* no message: callers decide whether it is an error */
	return store__sqlfail(db, rc, "find document '%s'", doc_id);
}

int store__log_start(store *db, int64_t id, uint64_t head, uint64_t *start)
{
	sqlite3_stmt *st = store__stmt(db, ST_LOG_START);
	if (!st)
		return store__map_sqlite(db->sqlite_code);
	sqlite3_bind_int64(st, 1, id);
	int rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		sqlite3_reset(st);
		return store__sqlfail(db, rc, "log start");
	}
	if (sqlite3_column_type(st, 0) == SQLITE_NULL)
		*start = head + 1;
	else
		*start = (uint64_t)sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	return STORE_OK;
}

/* ---- options, open, close ------------------------------------------------------ */

void store_options_init(store_options *opts)
{
	memset(opts, 0, sizeof *opts);
	opts->durability = STORE_SYNC_NORMAL;
	opts->busy_timeout_ms = 2000;
	opts->snapshot_every_changes = 1000;
	opts->snapshot_every_bytes = 1u << 20;
	opts->keep_changes = 1000;
	opts->keep_log_ratio = 2;
	opts->keep_ms = 0;
	opts->zstd_level = 3;
	opts->checkpoint_pages = 1000;
}

static void set_err(char *err, size_t errlen, const char *msg)
{
	if (err && errlen > 0)
		snprintf(err, errlen, "%s", msg);
}

/* Run one pragma (or other statement without parameters) on open. */
static int open_exec(store *db, const char *sql)
{
	char *msg = NULL;
	int rc = sqlite3_exec(db->sql, sql, NULL, NULL, &msg);
	sqlite3_free(msg);
	if (rc != SQLITE_OK)
		return store__sqlfail(db, rc, "%s", sql);
	return STORE_OK;
}

/* Settings of a read-write connection, after the schema check. */
static int open_configure(store *db)
{
	int status;
	char sql[96];
	/* WAL: readers (quire-dump) never block the writer; the journal mode
	 * is persistent, so this is a no-op after the first open. */
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(db->sql, "PRAGMA journal_mode=WAL", -1, &st, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		sqlite3_finalize(st);
		return store__sqlfail(db, rc, "PRAGMA journal_mode=WAL");
	}
	const char *mode = (const char *)sqlite3_column_text(st, 0);
	bool wal = mode && strcmp(mode, "wal") == 0;
	sqlite3_finalize(st);
	if (!wal)
		return store__fail(db, STORE_ESQLITE, "cannot switch the database to WAL mode");

	snprintf(sql, sizeof sql, "PRAGMA synchronous=%s",
		 db->opts.durability == STORE_SYNC_FULL ? "FULL" : "NORMAL");
	if ((status = open_exec(db, sql)) != STORE_OK)
		return status;
	/* Keep the WAL from staying huge after a burst (it is reused, not
	 * shrunk, otherwise). */
	if ((status = open_exec(db, "PRAGMA journal_size_limit=67108864")) != STORE_OK)
		return status;
	snprintf(sql, sizeof sql, "PRAGMA wal_autocheckpoint=%u",
		 (unsigned)(db->opts.checkpoint_pages > 0x7fffffff ? 0x7fffffff
								   : db->opts.checkpoint_pages));
	if ((status = open_exec(db, sql)) != STORE_OK)
		return status;
	if (db->opts.max_db_bytes > 0) {
		int page = 4096;
		rc = sqlite3_prepare_v2(db->sql, "PRAGMA page_size", -1, &st, NULL);
		if (rc == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
			page = sqlite3_column_int(st, 0);
		sqlite3_finalize(st);
		if (page <= 0)
			page = 4096;
		uint64_t pages = db->opts.max_db_bytes / (uint64_t)page;
		if (pages == 0)
			pages = 1;
		snprintf(sql, sizeof sql, "PRAGMA max_page_count=%llu", (unsigned long long)pages);
		if ((status = open_exec(db, sql)) != STORE_OK)
			return status;
	}
	return STORE_OK;
}

int store_open(const char *path, const store_options *opts, store **out, char *err, size_t errlen)
{
	if (out)
		*out = NULL;
	if (!path || !out) {
		set_err(err, errlen, "store_open: path and out are required");
		return STORE_EINVAL;
	}
	store *db = calloc(1, sizeof *db);
	if (!db) {
		set_err(err, errlen, "out of memory");
		return STORE_ENOMEM;
	}
	if (opts)
		db->opts = *opts;
	else
		store_options_init(&db->opts);
	if (db->opts.durability != STORE_SYNC_NORMAL && db->opts.durability != STORE_SYNC_FULL) {
		free(db);
		set_err(err, errlen, "store_open: durability must be STORE_SYNC_NORMAL or _FULL");
		return STORE_EINVAL;
	}
	if (db->opts.crdt) {
		db->crdt = *db->opts.crdt;
		db->has_crdt = true;
		db->opts.crdt = NULL;
	}
	db->opts.vfs = NULL; /* only used below; the caller's string need not outlive open */
#ifdef QUIRE_FAULT_INJECTION
	if (store_fault_vfs_from_env() != 0) {
		free(db);
		set_err(err, errlen, "store_open: cannot install the fault VFS");
		return STORE_EINVAL;
	}
#endif

	int flags = SQLITE_OPEN_NOMUTEX |
		    (db->opts.read_only ? SQLITE_OPEN_READONLY
					: SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
	int rc = sqlite3_open_v2(path, &db->sql, flags, opts ? opts->vfs : NULL);
	int status = STORE_OK;
	if (rc != SQLITE_OK) {
		status = store__sqlfail(db, rc, "open %s", path);
		goto fail;
	}
	sqlite3_extended_result_codes(db->sql, 1);
	sqlite3_busy_timeout(db->sql, (int)(db->opts.busy_timeout_ms > 0x7fffffff
						    ? 0x7fffffff
						    : db->opts.busy_timeout_ms));
	if (db->opts.read_only && (status = open_exec(db, "PRAGMA query_only=1")) != STORE_OK)
		goto fail;
	if ((status = store__schema_open(db)) != STORE_OK)
		goto fail;
	if (!db->opts.read_only && (status = open_configure(db)) != STORE_OK)
		goto fail;
	if (!db->opts.read_only && db->opts.checkpoint_thread && db->opts.checkpoint_pages > 0 &&
	    (status = store__ckpt_start(db, path, opts ? opts->vfs : NULL)) != STORE_OK)
		goto fail;
	store__clear(db);
	*out = db;
	return STORE_OK;

fail:
	set_err(err, errlen, db->err[0] ? db->err : store_strerror(status));
	store_close(db);
	return status;
}

void store_close(store *db)
{
	if (!db)
		return;
	store__ckpt_stop(db);
	for (int i = 0; i < ST__COUNT; i++)
		sqlite3_finalize(db->stmt[i]);
	if (db->sql)
		sqlite3_close(db->sql); /* every statement is finalized: this closes */
	ZSTD_freeCCtx(db->cctx);
	ZSTD_freeDCtx(db->dctx);
	free(db);
}

int store_checkpoint(store *db, bool truncate)
{
	store__clear(db);
	if (db->opts.read_only)
		return store__fail(db, STORE_EREADONLY, "checkpoint: the store is open read-only");
	int rc = sqlite3_wal_checkpoint_v2(
		db->sql, NULL, truncate ? SQLITE_CHECKPOINT_TRUNCATE : SQLITE_CHECKPOINT_PASSIVE,
		NULL, NULL);
	if (rc != SQLITE_OK)
		return store__sqlfail(db, rc, "checkpoint");
	return STORE_OK;
}

int store_vacuum(store *db, store_vacuum_result *out)
{
	*out = (store_vacuum_result){0};
	store__clear(db);
	if (db->opts.read_only)
		return store__fail(db, STORE_EREADONLY, "vacuum: the store is open read-only");
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(db->sql, "PRAGMA auto_vacuum", -1, &st, NULL);
	if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		out->auto_vacuum_was = sqlite3_column_int(st, 0);
		rc = SQLITE_OK;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_OK)
		return store__sqlfail(db, rc, "vacuum: read auto_vacuum");
	out->bytes_before = store_db_bytes(db);
	/* the cached statements hold no lock once reset; VACUUM needs none open */
	store__reset_all(db);
	static const char *const steps[] = {"PRAGMA auto_vacuum = INCREMENTAL", "VACUUM"};
	for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
		rc = sqlite3_exec(db->sql, steps[i], NULL, NULL, NULL);
		if (rc != SQLITE_OK)
			return store__sqlfail(db, rc, "vacuum: %s", steps[i]);
	}
	out->bytes_after = store_db_bytes(db);
	return STORE_OK;
}

uint64_t store_db_bytes(store *db)
{
	store__clear(db);
	sqlite3_stmt *st = store__stmt(db, ST_PAGE_BYTES);
	if (!st)
		return 0;
	uint64_t n = 0;
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		n = (uint64_t)sqlite3_column_int64(st, 0);
	else
		store__sqlfail(db, rc, "page count");
	sqlite3_reset(st);
	return n;
}
