/*
 * test_storage_schema.c - schema versions (PRAGMA user_version) and what
 * store_open refuses: a hand-made version-0 database is migrated to the
 * current version (tables, application id, WAL) and then works; a database
 * from a newer version is refused with STORE_EVERSION and left untouched;
 * files that are not Quire databases are refused with STORE_ESCHEMA.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "storeassert.h"
#include "storetest.h"

typedef struct fixture {
	char *dir;
	char *path;
} fixture;

static int setup(void **state)
{
	fixture *f = calloc(1, sizeof *f);
	f->dir = st_tmpdir();
	f->path = st_join(f->dir, "quire.db");
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fixture *f = *state;
	free(f->path);
	st_rmdir(f->dir);
	free(f);
	return 0;
}

/* Write a few changes and check they load back. */
static void use_it(store *db)
{
	uint64_t rng = 1;
	st_writer w;
	st_writer_init(&w, "doc", 5);
	assert_store(st_append_random(db, &w, 12, 4, &rng), STORE_OK);
	store_load_result r;
	assert_store(store_load(db, "doc", 6, &r), STORE_OK);
	char *t = st_text(r.doc);
	assert_string_equal(t, w.texts[12]);
	free(t);
	crdt_doc_free(r.doc);
	st_writer_free(&w);
}

static void test_storage_schema_fresh_file(void **state)
{
	fixture *f = *state;
	store *db = NULL;
	char err[256];
	assert_store(store_open(f->path, NULL, &db, err, sizeof err), STORE_OK);
	use_it(db);
	store_close(db);
	assert_int_equal(st_sql_int(f->path, "PRAGMA user_version"), STORE_SCHEMA_VERSION);
	assert_int_equal(st_sql_int(f->path, "PRAGMA application_id"), STORE_APPLICATION_ID);
	/* opening again changes nothing */
	assert_store(store_open(f->path, NULL, &db, err, sizeof err), STORE_OK);
	store_close(db);
	assert_int_equal(st_sql_int(f->path, "PRAGMA user_version"), STORE_SCHEMA_VERSION);
}

static void test_storage_schema_version0_migrated(void **state)
{
	fixture *f = *state;
	/* version 0: an SQLite file as another tool leaves it: rollback
	 * journal, a non-default page size, no tables, user_version 0 */
	assert_int_equal(st_sql(f->path, "PRAGMA page_size=1024; PRAGMA journal_mode=DELETE;"
					 "CREATE TABLE scratch(x); DROP TABLE scratch;"),
			 0);
	assert_int_equal(st_sql_int(f->path, "PRAGMA user_version"), 0);
	assert_int_equal(st_sql_int(f->path, "SELECT count(*) FROM sqlite_master"), 0);

	/* read-only cannot migrate */
	store *db = NULL;
	char err[256];
	store_options ro = st_read_only_options();
	assert_store(store_open(f->path, &ro, &db, err, sizeof err), STORE_ESCHEMA);
	assert_null(db);
	assert_int_equal(st_sql_int(f->path, "PRAGMA user_version"), 0);

	assert_store(store_open(f->path, NULL, &db, err, sizeof err), STORE_OK);
	assert_int_equal(st_sql_int(f->path, "PRAGMA user_version"), STORE_SCHEMA_VERSION);
	assert_int_equal(st_sql_int(f->path, "PRAGMA application_id"), STORE_APPLICATION_ID);
	assert_int_equal(st_sql_int(f->path, "SELECT count(*) FROM pragma_journal_mode"
					     " WHERE journal_mode = 'wal'"),
			 1);
	assert_int_equal(st_sql_int(f->path, "SELECT count(*) FROM sqlite_master WHERE type = "
					     "'table' AND name IN ('documents', 'changes', "
					     "'snapshots')"),
			 3);
	use_it(db);
	store_close(db);
	assert_store(store_open(f->path, &ro, &db, err, sizeof err), STORE_OK);
	store_close(db);
}

static void test_storage_schema_newer_refused(void **state)
{
	fixture *f = *state;
	store *db = NULL;
	char err[256];
	assert_store(store_open(f->path, NULL, &db, err, sizeof err), STORE_OK);
	use_it(db);
	store_close(db);
	assert_int_equal(st_sql(f->path, "PRAGMA user_version=2"), 0);
	int64_t changes = st_sql_int(f->path, "SELECT count(*) FROM changes");

	assert_store(store_open(f->path, NULL, &db, err, sizeof err), STORE_EVERSION);
	assert_null(db);
	assert_non_null(strstr(err, "newer"));
	store_options ro = st_read_only_options();
	assert_store(store_open(f->path, &ro, &db, err, sizeof err), STORE_EVERSION);
	assert_null(db);
	/* untouched */
	assert_int_equal(st_sql_int(f->path, "PRAGMA user_version"), 2);
	assert_int_equal(st_sql_int(f->path, "SELECT count(*) FROM changes"), changes);
}

static void test_storage_schema_foreign_refused(void **state)
{
	fixture *f = *state;
	store *db = NULL;
	char err[256];

	/* another application's tables, no version */
	assert_int_equal(st_sql(f->path, "CREATE TABLE documents(id, body)"), 0);
	assert_store(store_open(f->path, NULL, &db, err, sizeof err), STORE_ESCHEMA);
	assert_non_null(strstr(err, "not a Quire database"));
	assert_int_equal(st_sql_int(f->path, "PRAGMA user_version"), 0);

	/* another application id */
	char *p2 = st_join(f->dir, "other.db");
	assert_int_equal(st_sql(p2, "PRAGMA application_id=1234; CREATE TABLE t(x)"), 0);
	assert_store(store_open(p2, NULL, &db, err, sizeof err), STORE_ESCHEMA);

	/* a version but no application id */
	char *p3 = st_join(f->dir, "noid.db");
	assert_int_equal(st_sql(p3, "PRAGMA user_version=1; CREATE TABLE t(x)"), 0);
	assert_store(store_open(p3, NULL, &db, err, sizeof err), STORE_ESCHEMA);

	/* not SQLite at all */
	char *p4 = st_join(f->dir, "text.db");
	FILE *fp = fopen(p4, "w");
	for (int i = 0; i < 200; i++)
		fputs("this is not a database, just text. ", fp);
	fclose(fp);
	assert_store(store_open(p4, NULL, &db, err, sizeof err), STORE_ESCHEMA);
	assert_null(db);
	store_options ro = st_read_only_options();
	assert_store(store_open(p4, &ro, &db, err, sizeof err), STORE_ESCHEMA);
	free(p2);
	free(p3);
	free(p4);
}

static void test_storage_schema_cannot_create(void **state)
{
	fixture *f = *state;
	store *db = NULL;
	char err[256];
	char *p = st_join(f->dir, "no/such/dir/quire.db");
	assert_store(store_open(p, NULL, &db, err, sizeof err), STORE_ECANTOPEN);
	assert_null(db);
	assert_true(strlen(err) > 0);
	/* err may be NULL */
	assert_store(store_open(p, NULL, &db, NULL, 0), STORE_ECANTOPEN);
	free(p);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_storage_schema_fresh_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_storage_schema_version0_migrated, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_storage_schema_newer_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_storage_schema_foreign_refused, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_storage_schema_cannot_create, setup, teardown),
	};
	if (argc > 1)
		cmocka_set_test_filter(argv[1]);
	return cmocka_run_group_tests_name("storage_schema", tests, NULL, NULL);
}
