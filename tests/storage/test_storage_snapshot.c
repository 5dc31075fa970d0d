/*
 * test_storage_snapshot.c - snapshots under damage, and trimming: a damaged
 * snapshot (flipped bytes in the database, forged checksums over bad
 * content, a wrong raw size, a foreign or misplaced container, an unknown
 * format) is reported and skipped for the previous one plus the log; with
 * every snapshot damaged and the log trimmed the load fails with
 * STORE_ENOBASE, never an empty document; trimming keeps the two newest
 * valid snapshots' fallback and the retention window; a load asked for
 * the snapshot's wire bytes gets them only when no change was replayed, and
 * store_snapshot_encoded stores a caller's encoding.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <zstd.h>

#include "storeassert.h"
#include "storetest.h"

typedef struct damage_log {
	int n;
	uint64_t seqs[16];
	char last[200];
} damage_log;

static void on_damage(void *ctx, const char *doc_id, uint64_t seq, int status, const char *why)
{
	damage_log *d = ctx;
	(void)doc_id;
	assert_int_equal(status, STORE_ESNAPSHOT);
	if (d->n < 16)
		d->seqs[d->n] = seq;
	d->n++;
	snprintf(d->last, sizeof d->last, "%s", why);
}

typedef struct fixture {
	char *dir;
	char *path;
	store *db;
	store_options opts;
	damage_log damage;
	st_writer w;
	uint64_t rng;
} fixture;

static void open_fixture(fixture *f)
{
	char err[256];
	int s = store_open(f->path, &f->opts, &f->db, err, sizeof err);
	if (s != STORE_OK)
		fail_msg("store_open: %s", err);
}

static int setup(void **state)
{
	fixture *f = calloc(1, sizeof *f);
	f->dir = st_tmpdir();
	f->path = st_join(f->dir, "quire.db");
	store_options_init(&f->opts);
	f->opts.on_damage = on_damage;
	f->opts.on_damage_ctx = &f->damage;
	f->opts.keep_changes = 0;
	f->rng = 42;
	st_writer_init(&f->w, "doc", 0xfeedu);
	open_fixture(f);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fixture *f = *state;
	store_close(f->db);
	st_writer_free(&f->w);
	free(f->path);
	st_rmdir(f->dir);
	free(f);
	return 0;
}

/* Append n random changes, then snapshot at the head. */
static void grow_and_snapshot(fixture *f, size_t n)
{
	assert_store(st_append_random(f->db, &f->w, n, 4, &f->rng), STORE_OK);
	assert_store(store_snapshot(f->db, f->w.doc_id, f->w.seq, f->w.doc), STORE_OK);
}

/* Load at the head; expect the writer's text and the given base. */
static void expect_load(fixture *f, uint64_t base, uint32_t skipped)
{
	store_load_result r;
	int s = store_load(f->db, f->w.doc_id, 99, &r);
	if (s != STORE_OK)
		fail_msg("load: %s: %s", store_strerror(s), store_errmsg(f->db));
	char *t = st_text(r.doc);
	assert_string_equal(t, f->w.texts[f->w.seq]);
	free(t);
	assert_int_equal(r.snapshot_seq, base);
	assert_int_equal(r.snapshots_skipped, skipped);
	assert_int_equal(r.changes_applied, f->w.seq - base);
	assert_int_equal(crdt_doc_check(r.doc), CRDT_OK);
	crdt_doc_free(r.doc);
}

static void test_storage_snapshot_corrupt_falls_back(void **state)
{
	fixture *f = *state;
	grow_and_snapshot(f, 10);
	grow_and_snapshot(f, 10);
	grow_and_snapshot(f, 10);
	assert_store(st_append_random(f->db, &f->w, 5, 5, &f->rng), STORE_OK);
	expect_load(f, 30, 0);

	/* flip one byte of the newest snapshot's zstd blob */
	assert_int_equal(st_flip_snapshot(f->path, "doc", 30, 17, 0x40), 0);
	store_load_result r;
	assert_store(store_load(f->db, "doc", 99, &r), STORE_OK);
	assert_int_equal(r.snapshot_seq, 20);
	assert_int_equal(r.snapshots_skipped, 1);
	assert_int_equal(r.skipped_seq, 30);
	assert_non_null(strstr(r.skipped_reason, "checksum"));
	assert_int_equal(r.changes_applied, 15);
	char *t = st_text(r.doc);
	assert_string_equal(t, f->w.texts[35]);
	free(t);
	crdt_doc_free(r.doc);
	assert_int_equal(f->damage.n, 1);
	assert_int_equal(f->damage.seqs[0], 30);
	assert_non_null(strstr(f->damage.last, "checksum"));

	assert_store(store_snapshot_check(f->db, "doc", 30, 1, NULL), STORE_ESNAPSHOT);
	assert_non_null(strstr(store_errmsg(f->db), "checksum"));
	assert_store(store_snapshot_check(f->db, "doc", 20, 1, NULL), STORE_OK);

	/* two damaged, then all three: the log reaches seq 1, so it still loads */
	assert_int_equal(st_flip_snapshot(f->path, "doc", 20, 3, 0x01), 0);
	expect_load(f, 10, 2);
	assert_int_equal(st_flip_snapshot(f->path, "doc", 10, 1000, 0xff), 0);
	expect_load(f, 0, 3);

	/* a new good snapshot is used again */
	assert_store(store_snapshot(f->db, "doc", 35, f->w.doc), STORE_OK);
	expect_load(f, 35, 0);
}

/* Forge a snapshot whose checksum holds but whose content is wrong. */
static void forge(fixture *f, uint64_t seq, const void *raw, size_t raw_len, int64_t raw_size)
{
	size_t cap = ZSTD_compressBound(raw_len);
	uint8_t *z = malloc(cap);
	size_t n = ZSTD_compress(z, cap, raw, raw_len, 1);
	assert_false(ZSTD_isError(n));
	assert_int_equal(st_set_snapshot(f->path, "doc", seq, z, n, raw_size, st_crc32c(z, n)), 0);
	free(z);
}

static void expect_damaged(fixture *f, uint64_t seq, const char *why)
{
	assert_store(store_snapshot_check(f->db, "doc", seq, 1, NULL), STORE_ESNAPSHOT);
	if (!strstr(store_errmsg(f->db), why))
		fail_msg("snapshot %llu: reason \"%s\" lacks \"%s\"", (unsigned long long)seq,
			 store_errmsg(f->db), why);
}

static void test_storage_snapshot_damage_kinds(void **state)
{
	fixture *f = *state;
	grow_and_snapshot(f, 8); /* 8 */
	grow_and_snapshot(f, 8); /* 16 */
	assert_store(st_append_random(f->db, &f->w, 3, 3, &f->rng), STORE_OK);
	uint8_t *good8 = NULL, *good16 = NULL;
	size_t len8 = 0, len16 = 0;
	int64_t raw8 = 0, raw16 = 0;
	assert_int_equal(st_get_snapshot(f->path, "doc", 8, &good8, &len8, &raw8), 0);
	assert_int_equal(st_get_snapshot(f->path, "doc", 16, &good16, &len16, &raw16), 0);

	/* garbage content under a valid checksum and frame */
	uint8_t junk[300];
	for (size_t i = 0; i < sizeof junk; i++)
		junk[i] = (uint8_t)(i * 37 + 11);
	forge(f, 16, junk, sizeof junk, (int64_t)sizeof junk);
	expect_damaged(f, 16, "decode");
	expect_load(f, 8, 1);

	/* the raw size disagrees with the frame */
	assert_int_equal(st_set_snapshot(f->path, "doc", 16, good16, len16, raw16 + 1,
					 st_crc32c(good16, len16)),
			 0);
	expect_damaged(f, 16, "raw size");
	expect_load(f, 8, 1);
	assert_int_equal(st_set_snapshot(f->path, "doc", 16, good16, len16, (int64_t)1 << 40,
					 st_crc32c(good16, len16)),
			 0);
	expect_damaged(f, 16, "raw size");

	/* truncated frame with a matching checksum */
	assert_int_equal(st_set_snapshot(f->path, "doc", 16, good16, len16 / 2, raw16,
					 st_crc32c(good16, len16 / 2)),
			 0);
	expect_damaged(f, 16, "zstd");
	expect_load(f, 8, 1);

	/* not a zstd frame at all */
	assert_int_equal(st_set_snapshot(f->path, "doc", 16, junk, 40, raw16, st_crc32c(junk, 40)),
			 0);
	expect_damaged(f, 16, "zstd");

	/* the snapshot of seq 8 stored in the row of seq 16 */
	assert_int_equal(
		st_set_snapshot(f->path, "doc", 16, good8, len8, raw8, st_crc32c(good8, len8)), 0);
	expect_damaged(f, 16, "seq");
	expect_load(f, 8, 1);

	/* another document's snapshot */
	st_writer other;
	st_writer_init(&other, "other", 0xabc);
	assert_store(st_append_random(f->db, &other, 4, 4, &f->rng), STORE_OK);
	assert_store(store_snapshot(f->db, "other", 4, other.doc), STORE_OK);
	uint8_t *o4 = NULL;
	size_t olen = 0;
	int64_t oraw = 0;
	assert_int_equal(st_get_snapshot(f->path, "other", 4, &o4, &olen, &oraw), 0);
	assert_int_equal(st_set_snapshot(f->path, "doc", 16, o4, olen, oraw, st_crc32c(o4, olen)),
			 0);
	expect_damaged(f, 16, "decode");
	expect_load(f, 8, 1);
	free(o4);
	st_writer_free(&other);

	/* an unknown format */
	assert_int_equal(
		st_set_snapshot(f->path, "doc", 16, good16, len16, raw16, st_crc32c(good16, len16)),
		0);
	expect_load(f, 16, 0);
	assert_int_equal(st_sql(f->path, "UPDATE snapshots SET format = 9 WHERE seq = 16"), 0);
	expect_damaged(f, 16, "format");
	expect_load(f, 8, 1);

	/* a checksum out of range */
	assert_int_equal(
		st_sql(f->path, "UPDATE snapshots SET format = 1, checksum = -5 WHERE seq = 16"),
		0);
	expect_damaged(f, 16, "checksum");
	free(good8);
	free(good16);
}

static void test_storage_all_damaged_and_trimmed_fails(void **state)
{
	fixture *f = *state;
	grow_and_snapshot(f, 10);
	grow_and_snapshot(f, 10);
	grow_and_snapshot(f, 10);
	assert_store(st_append_random(f->db, &f->w, 10, 5, &f->rng), STORE_OK);
	store_trim_result tr;
	assert_store(store_trim(f->db, "doc", &tr), STORE_OK);
	/* base = second-newest valid snapshot (20): changes 1..20 and the
	 * snapshot at 10 go */
	assert_int_equal(tr.changes_removed, 20);
	assert_int_equal(tr.snapshots_removed, 1);
	assert_int_equal(tr.log_start, 21);
	uint64_t start, head;
	assert_store(store_log_start(f->db, "doc", &start, &head), STORE_OK);
	assert_int_equal(start, 21);
	assert_int_equal(head, 40);
	expect_load(f, 30, 0);

	/* the newest damaged: the fallback the trim kept still works */
	assert_int_equal(st_flip_snapshot(f->path, "doc", 30, 5, 0x10), 0);
	expect_load(f, 20, 1);

	/* both damaged and the log trimmed: a typed error, never an empty doc */
	assert_int_equal(st_flip_snapshot(f->path, "doc", 20, 5, 0x10), 0);
	store_load_result r;
	assert_store(store_load(f->db, "doc", 99, &r), STORE_ENOBASE);
	assert_null(r.doc);
	assert_int_equal(r.snapshots_skipped, 2);
	assert_int_equal(r.skipped_seq, 30);
	assert_true(r.exists);
	assert_non_null(strstr(store_errmsg(f->db), "log starts at 21"));
	assert_store(store_load_at(f->db, "doc", 25, 0, 99, &r), STORE_ENOBASE);
	assert_null(r.doc);
	assert_store(store_load_at(f->db, "doc", 40, STORE_LOAD_LOG_ONLY, 99, &r), STORE_ENOBASE);
	assert_store(store_load_at(f->db, "doc", 15, 0, 99, &r), STORE_ENOBASE);
	assert_null(r.doc);

	/* a trim with fewer than two valid snapshots removes nothing more */
	assert_store(store_trim(f->db, "doc", &tr), STORE_OK);
	assert_int_equal(tr.changes_removed, 0);
	assert_int_equal(tr.snapshots_removed, 0);
	assert_int_equal(tr.log_start, 21);
}

static int count_rows(void *ctx, const store_change_row *row)
{
	(void)row;
	++*(uint64_t *)ctx;
	return 0;
}

static void test_storage_trim_window(void **state)
{
	fixture *f = *state;
	store_close(f->db);
	f->opts.keep_changes = 25;
	f->opts.keep_log_ratio = 0; /* the count rule alone (the byte rule: below) */
	open_fixture(f);

	/* one snapshot only: nothing is trimmed (no fallback yet) */
	grow_and_snapshot(f, 20);
	assert_store(st_append_random(f->db, &f->w, 10, 5, &f->rng), STORE_OK);
	store_trim_result tr;
	assert_store(store_trim(f->db, "doc", &tr), STORE_OK);
	assert_int_equal(tr.changes_removed, 0);
	assert_int_equal(tr.log_start, 1);

	/* two snapshots (20, 30), head 40, keep 25: cut at min(20, 15) */
	assert_store(store_snapshot(f->db, "doc", 30, NULL), STORE_EINVAL);
	store_load_result r;
	assert_store(store_load_at(f->db, "doc", 30, 0, 5, &r), STORE_OK);
	assert_store(store_snapshot(f->db, "doc", 30, r.doc), STORE_OK);
	crdt_doc_free(r.doc);
	assert_store(st_append_random(f->db, &f->w, 10, 5, &f->rng), STORE_OK);
	assert_store(store_trim(f->db, NULL, &tr), STORE_OK);
	assert_int_equal(tr.changes_removed, 15);
	assert_int_equal(tr.snapshots_removed, 0);

	store_doc_info info;
	assert_store(store_doc_info_get(f->db, "doc", &info), STORE_OK);
	assert_int_equal(info.log_start, 16);
	assert_int_equal(info.log_changes, 25);
	assert_int_equal(info.snapshots, 2);
	uint64_t bytes = 0;
	for (uint64_t s = 16; s <= 40; s++)
		bytes += f->w.payloads[s].len;
	assert_int_equal(info.log_bytes, bytes);

	/* resume: from the log start on, not before */
	uint64_t count = 0;
	assert_store(store_changes(f->db, "doc", 14, 0, count_rows, &count), STORE_ETRIMMED);
	assert_int_equal(count, 0);
	assert_store(store_changes(f->db, "doc", 15, 0, count_rows, &count), STORE_OK);
	assert_int_equal(count, 25);
	expect_load(f, 30, 0);
	for (uint64_t s = 15; s <= 40; s += 5) {
		assert_store(store_load_at(f->db, "doc", s, 0, 5, &r),
			     s >= 20 ? STORE_OK : STORE_ENOBASE);
		if (r.doc) {
			char *t = st_text(r.doc);
			assert_string_equal(t, f->w.texts[s]);
			free(t);
			crdt_doc_free(r.doc);
		}
	}

	/* a damaged second-newest snapshot is not a base: trim keeps more */
	grow_and_snapshot(f, 10); /* 50 */
	assert_int_equal(st_flip_snapshot(f->path, "doc", 30, 2, 0x04), 0);
	f->damage.n = 0;
	store_close(f->db);
	f->opts.keep_changes = 0;
	open_fixture(f);
	assert_store(store_trim(f->db, "doc", &tr), STORE_OK);
	/* valid: 50, 20 -> base 20: changes 16..20 go, nothing older than 20 */
	assert_int_equal(tr.changes_removed, 5);
	assert_int_equal(tr.snapshots_removed, 0);
	assert_int_equal(tr.log_start, 21);
	assert_int_equal(f->damage.n, 1);
	assert_int_equal(f->damage.seqs[0], 30);
	expect_load(f, 50, 0);

	/* trimming a missing document is fine */
	assert_store(store_trim(f->db, "nope", &tr), STORE_OK);
	assert_int_equal(tr.changes_removed, 0);
}

/* The byte rule: with keep_changes far above the head, changes covered by
 * the second-newest snapshot go when the changes after them weigh at least
 * keep_log_ratio x the newest snapshot's raw size, and only those. */
static void test_storage_trim_log_weight(void **state)
{
	fixture *f = *state;
	store_close(f->db);
	f->opts.keep_changes = 1000;
	f->opts.keep_log_ratio = 0;
	open_fixture(f);
	grow_and_snapshot(f, 30);
	grow_and_snapshot(f, 30); /* snapshots 30, 60 */
	assert_store(st_append_random(f->db, &f->w, 10, 4, &f->rng), STORE_OK); /* head 70 */

	/* ratio 0 and 1000 kept: nothing goes */
	store_trim_result tr;
	assert_store(store_trim(f->db, "doc", &tr), STORE_OK);
	assert_int_equal(tr.changes_removed, 0);
	assert_int_equal(tr.log_start, 1);

	/* the expected cut, from the payloads and the snapshot's raw size */
	uint8_t *snap = NULL;
	size_t snap_len = 0;
	int64_t raw = 0;
	assert_int_equal(st_get_snapshot(f->path, "doc", 60, &snap, &snap_len, &raw), 0);
	free(snap);
	bool partial = false; /* a cut between the log start and the base */
	for (uint32_t ratio = 4; ratio >= 1; ratio--) {
		uint64_t tail = 0, floor = 0;
		for (uint64_t q = 70; q >= 1; q--) {
			tail += f->w.payloads[q].len;
			if (tail >= (uint64_t)raw * ratio) {
				floor = q - 1;
				break;
			}
		}
		uint64_t cut = floor < 30 ? floor : 30; /* base: the snapshot at 30 */
		uint64_t start = 0, head = 0;
		assert_store(store_log_start(f->db, "doc", &start, &head), STORE_OK);
		store_close(f->db);
		f->opts.keep_log_ratio = ratio;
		open_fixture(f);
		assert_store(store_trim(f->db, "doc", &tr), STORE_OK);
		print_message("ratio %u: raw snapshot %lld B, cut at %llu (log started at %llu)\n",
			      ratio, (long long)raw, (unsigned long long)cut,
			      (unsigned long long)start);
		assert_int_equal(tr.changes_removed, cut >= start ? cut - start + 1 : 0);
		partial |= cut >= start && cut < 30;
		assert_int_equal(tr.log_start, cut >= start ? cut + 1 : start);
		/* what stays weighs at least ratio x the snapshot, or is all
		 * newer than the base */
		store_doc_info info;
		assert_store(store_doc_info_get(f->db, "doc", &info), STORE_OK);
		assert_true(info.log_bytes >= (uint64_t)raw * ratio || info.log_start <= 31);
		expect_load(f, 60, 0);
	}
	/* the rule cut inside the covered range once, and at the base at last */
	assert_true(partial);

	uint64_t start = 0, head = 0;
	assert_store(store_log_start(f->db, "doc", &start, &head), STORE_OK);
	assert_int_equal(start, 31);
	assert_int_equal(head, 70);
}

/* A new database is made with auto_vacuum = INCREMENTAL and a trim gives
 * the pages it freed back: none left on the free list, fewer pages. */
static void test_storage_trim_vacuums(void **state)
{
	fixture *f = *state;
	assert_int_equal(st_sql_int(f->path, "PRAGMA auto_vacuum"), 2);
	/* 3,000 changes: their log spans many pages */
	assert_store(st_append_random(f->db, &f->w, 3000, 4, &f->rng), STORE_OK);
	assert_store(store_snapshot(f->db, "doc", 3000, f->w.doc), STORE_OK);
	assert_store(st_append_random(f->db, &f->w, 10, 4, &f->rng), STORE_OK);
	assert_store(store_snapshot(f->db, "doc", 3010, f->w.doc), STORE_OK);
	assert_store(store_checkpoint(f->db, false), STORE_OK);
	int64_t pages = st_sql_int(f->path, "PRAGMA page_count");
	store_trim_result tr;
	assert_store(store_trim(f->db, "doc", &tr), STORE_OK);
	assert_int_equal(tr.changes_removed, 3000);
	assert_store(store_checkpoint(f->db, false), STORE_OK);
	int64_t after = st_sql_int(f->path, "PRAGMA page_count");
	print_message("pages: %lld before the trim, %lld after\n", (long long)pages,
		      (long long)after);
	assert_int_equal(st_sql_int(f->path, "PRAGMA freelist_count"), 0);
	assert_true(after < pages - 10);
	expect_load(f, 3010, 0);
}

/* store_vacuum converts a file made with auto_vacuum off (before new files
 * were incremental) whose trims left free pages: the rewrite drops them,
 * the file is incremental from then on, and the document loads the same.
 * A read-only handle refuses. */
static void test_storage_vacuum_converts_old_file(void **state)
{
	fixture *f = *state;
	store_close(f->db);
	f->db = NULL;
	assert_int_equal(st_sql(f->path, "PRAGMA auto_vacuum = NONE; VACUUM"), 0);
	open_fixture(f);
	assert_int_equal(st_sql_int(f->path, "PRAGMA auto_vacuum"), 0);
	assert_store(st_append_random(f->db, &f->w, 3000, 4, &f->rng), STORE_OK);
	assert_store(store_snapshot(f->db, "doc", 3000, f->w.doc), STORE_OK);
	assert_store(st_append_random(f->db, &f->w, 10, 4, &f->rng), STORE_OK);
	assert_store(store_snapshot(f->db, "doc", 3010, f->w.doc), STORE_OK);
	store_trim_result tr;
	assert_store(store_trim(f->db, "doc", &tr), STORE_OK);
	assert_int_equal(tr.changes_removed, 3000);
	assert_store(store_checkpoint(f->db, false), STORE_OK);
	int64_t free0 = st_sql_int(f->path, "PRAGMA freelist_count");
	assert_true(free0 > 10); /* the trim's pages stayed in the file */

	store_vacuum_result r;
	assert_store(store_vacuum(f->db, &r), STORE_OK);
	print_message("vacuum: %llu -> %llu bytes, %lld free pages before\n",
		      (unsigned long long)r.bytes_before, (unsigned long long)r.bytes_after,
		      (long long)free0);
	assert_int_equal(r.auto_vacuum_was, 0);
	assert_true(r.bytes_after + (uint64_t)free0 * 4096 <= r.bytes_before + 4096);
	assert_store(store_checkpoint(f->db, true), STORE_OK);
	assert_int_equal(st_sql_int(f->path, "PRAGMA auto_vacuum"), 2);
	assert_int_equal(st_sql_int(f->path, "PRAGMA freelist_count"), 0);
	expect_load(f, 3010, 0);
	/* and the handle goes on writing */
	assert_store(st_append_random(f->db, &f->w, 5, 5, &f->rng), STORE_OK);
	expect_load(f, 3010, 0);

	store_options ro = st_read_only_options();
	store *rdb = st_open_or_fail(f->path, &ro);
	assert_store(store_vacuum(rdb, &r), STORE_EREADONLY);
	store_close(rdb);
}

static void test_storage_trim_keep_ms(void **state)
{
	fixture *f = *state;
	store_close(f->db);
	f->opts.keep_ms = 60 * 1000;
	open_fixture(f);
	/* 20 old changes (an hour ago), then 20 recent ones */
	int64_t old = 1700000000000;
	store_change c[20];
	for (int i = 0; i < 20; i++) {
		c[i] = st_random_edit(&f->w, &f->rng);
		c[i].time_ms = old + i;
	}
	assert_store(store_append(f->db, c, 20), STORE_OK);
	assert_store(store_snapshot(f->db, "doc", 20, f->w.doc), STORE_OK);
	grow_and_snapshot(f, 10); /* 30, recent */
	grow_and_snapshot(f, 10); /* 40, recent */
	store_trim_result tr;
	assert_store(store_trim(f->db, "doc", &tr), STORE_OK);
	/* base 30, but 21..30 are recent: only the old 1..20 go */
	assert_int_equal(tr.changes_removed, 20);
	assert_int_equal(tr.log_start, 21);
	assert_int_equal(tr.snapshots_removed, 1);
	expect_load(f, 40, 0);
}

static void test_storage_snapshot_replace_same_seq(void **state)
{
	fixture *f = *state;
	grow_and_snapshot(f, 5);
	assert_store(store_snapshot(f->db, "doc", 5, f->w.doc), STORE_OK);
	store_doc_info info;
	assert_store(store_doc_info_get(f->db, "doc", &info), STORE_OK);
	assert_int_equal(info.snapshots, 1);
	assert_int_equal(info.bytes_since_snapshot, 0);
	expect_load(f, 5, 0);
}

/* Load at seq with STORE_LOAD_WIRE_SNAPSHOT; expect the writer's text at
 * seq and, when want is not NULL, exactly those wire bytes (else none). */
static void expect_wire(fixture *f, uint64_t seq, const wire_buf *want)
{
	store_load_result r;
	int s = store_load_at(f->db, "doc", seq, STORE_LOAD_WIRE_SNAPSHOT, 99, &r);
	if (s != STORE_OK)
		fail_msg("load: %s: %s", store_strerror(s), store_errmsg(f->db));
	char *t = st_text(r.doc);
	assert_string_equal(t, f->w.texts[seq == STORE_HEAD ? f->w.seq : seq]);
	free(t);
	if (want == NULL) {
		assert_null(r.snapshot_wire);
		assert_int_equal(r.snapshot_wire_len, 0);
	} else {
		assert_int_equal(r.changes_applied, 0);
		assert_int_equal(r.snapshot_wire_len, want->len);
		assert_memory_equal(r.snapshot_wire, want->data, want->len);
		/* they are the Snapshot message of the loaded state */
		crdt_doc *d = NULL;
		uint64_t got = 0;
		int cst = 0;
		assert_int_equal(wire_snapshot_decode(r.snapshot_wire, r.snapshot_wire_len, "doc",
						      7, NULL, &d, &got, &cst),
				 WIRE_OK);
		assert_int_equal(got, r.seq);
		char *u = st_text(d);
		assert_string_equal(u, f->w.texts[r.seq]);
		free(u);
		crdt_doc_free(d);
	}
	free(r.snapshot_wire);
	crdt_doc_free(r.doc);
}

static void test_storage_load_wire_snapshot(void **state)
{
	fixture *f = *state;
	grow_and_snapshot(f, 10);
	wire_buf at10 = {0};
	assert_int_equal(wire_snapshot_encode(f->w.doc, "doc", 10, &at10), WIRE_OK);
	/* the snapshot is at the head: its bytes come out, only when asked */
	expect_wire(f, STORE_HEAD, &at10);
	store_load_result r;
	assert_store(store_load(f->db, "doc", 99, &r), STORE_OK);
	assert_null(r.snapshot_wire);
	crdt_doc_free(r.doc);
	/* changes on top of it: not the loaded state, none */
	assert_store(st_append_random(f->db, &f->w, 3, 3, &f->rng), STORE_OK);
	expect_wire(f, STORE_HEAD, NULL);
	expect_wire(f, 10, &at10); /* time travel to the snapshot's own seq */
	/* store_snapshot_encoded stores the caller's encoding as it is */
	wire_buf at13 = {0};
	assert_int_equal(wire_snapshot_encode(f->w.doc, "doc", 13, &at13), WIRE_OK);
	assert_store(store_snapshot_encoded(f->db, "doc", 13, f->w.doc, at13.data, at13.len),
		     STORE_OK);
	assert_store(store_snapshot_check(f->db, "doc", 13, 1, NULL), STORE_OK);
	expect_wire(f, STORE_HEAD, &at13);
	assert_store(store_snapshot_encoded(f->db, "doc", 13, f->w.doc, NULL, 0), STORE_EINVAL);
	assert_store(store_snapshot_encoded(f->db, "doc", 14, f->w.doc, at13.data, at13.len),
		     STORE_ERANGE);
	/* the snapshot at the head damaged: the older one plus the log, no bytes */
	assert_int_equal(st_flip_snapshot(f->path, "doc", 13, 5, 0x10), 0);
	expect_wire(f, STORE_HEAD, NULL);
	assert_int_equal(f->damage.n, 1);
	/* unknown flags are refused */
	assert_store(store_load_at(f->db, "doc", STORE_HEAD, 4, 99, &r), STORE_EINVAL);
	assert_null(r.doc);
	assert_null(r.snapshot_wire);
	wire_buf_free(&at10);
	wire_buf_free(&at13);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_storage_snapshot_corrupt_falls_back, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_storage_snapshot_damage_kinds, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_storage_all_damaged_and_trimmed_fails, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_storage_trim_window, setup, teardown),
		cmocka_unit_test_setup_teardown(test_storage_trim_log_weight, setup, teardown),
		cmocka_unit_test_setup_teardown(test_storage_trim_vacuums, setup, teardown),
		cmocka_unit_test_setup_teardown(test_storage_vacuum_converts_old_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_storage_trim_keep_ms, setup, teardown),
		cmocka_unit_test_setup_teardown(test_storage_snapshot_replace_same_seq, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_storage_load_wire_snapshot, setup, teardown),
	};
	if (argc > 1)
		cmocka_set_test_filter(argv[1]);
	return cmocka_run_group_tests_name("storage_snapshot", tests, NULL, NULL);
}
