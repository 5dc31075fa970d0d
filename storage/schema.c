/*
 * schema.c - the database schema and its migrations (PRAGMA user_version).
 *
 * The schema version is PRAGMA user_version; PRAGMA application_id marks
 * the file as Quire's. On a read-write open, migrations[v] brings a
 * database from version v - 1 to v, all pending ones in one write
 * transaction together with the new user_version, so a crash mid-migration
 * leaves the old version intact. Adding version 2 later is one function
 * (migrate_to_2) plus one line in the table and STORE_SCHEMA_VERSION.
 *
 * A database whose version is newer than STORE_SCHEMA_VERSION is never
 * touched (STORE_EVERSION). A file with another application id, or with
 * tables but version 0, is not ours (STORE_ESCHEMA). A read-only open
 * cannot migrate, so it requires the current version exactly.
 *
 * Version 1 (keys and layout):
 *  - documents(id INTEGER PRIMARY KEY, name TEXT UNIQUE, ...): the protocol's
 *    doc id (up to 200 bytes) is stored once; changes and snapshots refer to
 *    the integer rowid. Repeating the name in the key of every change row
 *    (and of its b-tree interior cells) would cost up to 200 bytes per
 *    change, more than a keystroke's payload.
 *  - changes(... PRIMARY KEY (doc, seq)) WITHOUT ROWID: the table IS the
 *    (doc, seq) b-tree, so a document's changes sit contiguously in seq
 *    order: a resume (seq > n), a load (seq > snapshot) and a trim (seq <=
 *    n) are range scans of one index with no second lookup, and appends go
 *    to the end of a document's range. A rowid table would need a separate
 *    UNIQUE(doc, seq) index, written on every append. Typical payloads (a
 *    few ops, tens of bytes) are far below the size where WITHOUT ROWID
 *    rows become costly; a rare big paste spills to overflow pages.
 *  - snapshots(... PRIMARY KEY (doc, seq)) as an ordinary rowid table:
 *    its rows are big blobs, few per document, where a rowid table is the
 *    better fit.
 *  - Unsigned 64-bit values (replica ids) are stored as their int64 bit
 *    pattern; seqs and times are below 2^63.
 */
#include <stdio.h>
#include <string.h>

#include "internal.h"

static int exec(store *db, const char *sql, const char *what)
{
	char *msg = NULL;
	int rc = sqlite3_exec(db->sql, sql, NULL, NULL, &msg);
	sqlite3_free(msg);
	if (rc != SQLITE_OK)
		return store__sqlfail(db, rc, "%s", what);
	return STORE_OK;
}

/* One integer from a query (a pragma or a count). */
static int query_int(store *db, const char *sql, int64_t *out)
{
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(db->sql, sql, -1, &st, NULL);
	if (rc == SQLITE_OK) {
		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW) {
			*out = sqlite3_column_int64(st, 0);
			rc = SQLITE_OK;
		}
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_OK)
		return store__sqlfail(db, rc, "%s", sql);
	return STORE_OK;
}

/* ---- migrations ---------------------------------------------------------- */

/* 0 -> 1: the first schema, into an empty database. */
static int migrate_to_1(store *db)
{
	return exec(db,
		    "CREATE TABLE documents ("
		    " id INTEGER PRIMARY KEY,"
		    " name TEXT NOT NULL UNIQUE,"
		    " created_ms INTEGER NOT NULL,"
		    " updated_ms INTEGER NOT NULL DEFAULT 0,"
		    " head_seq INTEGER NOT NULL DEFAULT 0,"
		    " log_bytes INTEGER NOT NULL DEFAULT 0,"
		    " since_snap_bytes INTEGER NOT NULL DEFAULT 0"
		    ");"
		    "CREATE TABLE changes ("
		    " doc INTEGER NOT NULL REFERENCES documents(id),"
		    " seq INTEGER NOT NULL,"
		    " replica INTEGER NOT NULL,"
		    " counter_first INTEGER NOT NULL,"
		    " counter_count INTEGER NOT NULL,"
		    " author TEXT,"
		    " time_ms INTEGER NOT NULL,"
		    " payload BLOB NOT NULL,"
		    " PRIMARY KEY (doc, seq)"
		    ") WITHOUT ROWID;"
		    "CREATE TABLE snapshots ("
		    " doc INTEGER NOT NULL REFERENCES documents(id),"
		    " seq INTEGER NOT NULL,"
		    " format INTEGER NOT NULL,"
		    " raw_size INTEGER NOT NULL,"
		    " checksum INTEGER NOT NULL,"
		    " created_ms INTEGER NOT NULL,"
		    " zstd BLOB NOT NULL,"
		    " PRIMARY KEY (doc, seq)"
		    ");",
		    "create schema version 1");
}

/* migrations[v] upgrades version v - 1 to v. */
static int (*const migrations[STORE_SCHEMA_VERSION + 1])(store *db) = {
	[1] = migrate_to_1,
};

/* ---- open ------------------------------------------------------------------- */

/* Version, application id and whether there are tables at all. */
static int read_header(store *db, int64_t *version, int64_t *app_id, int64_t *tables)
{
	int status = query_int(db, "PRAGMA user_version", version);
	if (status == STORE_OK)
		status = query_int(db, "PRAGMA application_id", app_id);
	if (status == STORE_OK)
		status = query_int(db, "SELECT count(*) FROM sqlite_master", tables);
	return status;
}

/* Refusals that do not depend on read-only or not. */
static int check_header(store *db, int64_t version, int64_t app_id, int64_t tables)
{
	if (app_id != 0 && app_id != STORE_APPLICATION_ID)
		return store__fail(db, STORE_ESCHEMA,
				   "not a Quire database (application_id 0x%08llx)",
				   (unsigned long long)(uint32_t)app_id);
	if (version > STORE_SCHEMA_VERSION)
		return store__fail(db, STORE_EVERSION,
				   "database schema version %lld is newer than this program "
				   "supports (%d): upgrade Quire",
				   (long long)version, STORE_SCHEMA_VERSION);
	if (version < 0)
		return store__fail(db, STORE_ESCHEMA, "bad schema version %lld",
				   (long long)version);
	if (version == 0 && tables > 0)
		return store__fail(db, STORE_ESCHEMA,
				   "not a Quire database (it has tables but no schema version)");
	if (version > 0 && app_id == 0)
		return store__fail(
			db, STORE_ESCHEMA,
			"not a Quire database (schema version %lld but no application_id)",
			(long long)version);
	return STORE_OK;
}

int store__schema_open(store *db)
{
	int64_t version = 0, app_id = 0, tables = 0;
	int status = read_header(db, &version, &app_id, &tables);
	if (status == STORE_OK)
		status = check_header(db, version, app_id, tables);
	if (status != STORE_OK)
		return status;

	if (db->opts.read_only) {
		if (version == 0)
			return store__fail(db, STORE_ESCHEMA,
					   "empty database (no Quire schema yet)");
		if (version < STORE_SCHEMA_VERSION)
			return store__fail(db, STORE_ESCHEMA,
					   "database schema version %lld is older than %d: open it "
					   "read-write once to migrate it",
					   (long long)version, STORE_SCHEMA_VERSION);
		return STORE_OK;
	}
	if (version == STORE_SCHEMA_VERSION)
		return STORE_OK;

	/* A new file: trims give freed pages back (store_trim runs an
	 * incremental vacuum). Only possible before the first table exists;
	 * older files keep auto_vacuum off and their free pages for reuse. */
	if (version == 0 && tables == 0 &&
	    (status = exec(db, "PRAGMA auto_vacuum = INCREMENTAL", "set auto_vacuum")) != STORE_OK)
		return status;

	/* Migrate under the write lock; re-read the header there, another
	 * connection may have migrated in the meantime. */
	if ((status = exec(db, "BEGIN IMMEDIATE", "begin migration")) != STORE_OK)
		return status;
	db->in_txn = true;
	status = read_header(db, &version, &app_id, &tables);
	if (status == STORE_OK)
		status = check_header(db, version, app_id, tables);
	for (int64_t v = version + 1; status == STORE_OK && v <= STORE_SCHEMA_VERSION; v++) {
		status = migrations[v](db);
		if (status != STORE_OK)
			store__fail(db, status, "migration to schema version %lld failed",
				    (long long)v);
	}
	if (status == STORE_OK) {
		char sql[96];
		snprintf(sql, sizeof sql, "PRAGMA application_id=%d; PRAGMA user_version=%d",
			 STORE_APPLICATION_ID, STORE_SCHEMA_VERSION);
		status = exec(db, sql, "set schema version");
	}
	return store__end(db, status);
}
