/*
 * test_storage_log.c - the op log of storage/: append/load round trips,
 * head and log range, the resume iterator, snapshot + log loads, time
 * travel (load as of a seq), contiguity errors rolling back whole batches,
 * document info and listing, read-only handles, the status table.
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
	store *db;
} fixture;

static int setup(void **state)
{
	fixture *f = calloc(1, sizeof *f);
	f->dir = st_tmpdir();
	f->path = st_join(f->dir, "quire.db");
	char err[256];
	int s = store_open(f->path, NULL, &f->db, err, sizeof err);
	if (s != STORE_OK) {
		fprintf(stderr, "store_open: %s\n", err);
		return -1;
	}
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fixture *f = *state;
	store_close(f->db);
	free(f->path);
	st_rmdir(f->dir);
	free(f);
	return 0;
}

static void reopen(fixture *f, const store_options *o)
{
	store_close(f->db);
	f->db = NULL;
	char err[256];
	int s = store_open(f->path, o, &f->db, err, sizeof err);
	if (s != STORE_OK)
		fail_msg("reopen: %s", err);
}

/* Load doc_id at seq and compare with the writer's text at that seq. */
static void assert_loads_as(store *db, const st_writer *w, uint64_t seq, unsigned flags)
{
	store_load_result r;
	int s = store_load_at(db, w->doc_id, seq, flags, 77, &r);
	if (s != STORE_OK)
		fail_msg("load_at(%s, %llu) = %s: %s", w->doc_id, (unsigned long long)seq,
			 store_strerror(s), store_errmsg(db));
	char *t = st_text(r.doc);
	uint64_t at = seq == STORE_HEAD ? w->seq : seq;
	if (strcmp(t, w->texts[at]) != 0)
		fail_msg("text at %llu differs:\n  got  \"%s\"\n  want \"%s\"",
			 (unsigned long long)at, t, w->texts[at]);
	assert_int_equal(r.seq, at);
	assert_int_equal(crdt_doc_check(r.doc), CRDT_OK);
	free(t);
	crdt_doc_free(r.doc);
}

/* ---- tests ---- */

static void test_storage_strerror(void **state)
{
	(void)state;
#define CHECK(name, value, text) assert_string_equal(store_strerror(value), text);
	STORE_STATUS_TABLE(CHECK)
#undef CHECK
	assert_string_equal(store_strerror(12345), "unknown store status");
	assert_string_equal(store_strerror(-999), "unknown store status");
}

static void test_storage_empty_document(void **state)
{
	fixture *f = *state;
	store_load_result r;
	assert_store(store_load(f->db, "nope", 5, &r), STORE_OK);
	assert_false(r.exists);
	assert_int_equal(r.seq, 0);
	assert_int_equal(r.head_seq, 0);
	assert_non_null(r.doc);
	assert_int_equal(crdt_doc_length(r.doc), 0);
	crdt_doc_free(r.doc);

	uint64_t start = 0, head = 9;
	assert_store(store_log_start(f->db, "nope", &start, &head), STORE_OK);
	assert_int_equal(start, 1);
	assert_int_equal(head, 0);

	store_doc_info info;
	assert_store(store_doc_info_get(f->db, "nope", &info), STORE_ENOTFOUND);
	assert_store(store_load_at(f->db, "nope", 3, 0, 5, &r), STORE_ERANGE);
	assert_null(r.doc);
}

static int collect_seq(void *ctx, const store_change_row *row)
{
	uint64_t *v = ctx;
	v[++v[0]] = row->seq;
	return 0;
}

typedef struct payload_check {
	const st_writer *w;
	uint64_t next;
	int bad;
} payload_check;

static int check_payload(void *ctx, const store_change_row *row)
{
	payload_check *pc = ctx;
	const wire_buf *p = &pc->w->payloads[row->seq];
	if (row->seq != pc->next || row->payload_len != p->len ||
	    memcmp(row->payload, p->data, p->len) != 0 || !row->author ||
	    strcmp(row->author, "tester") != 0 || row->replica != crdt_doc_replica(pc->w->doc) ||
	    row->time_ms <= 0)
		pc->bad++;
	pc->next++;
	return 0;
}

static void test_storage_append_load_round_trip(void **state)
{
	fixture *f = *state;
	uint64_t rng = 1;
	st_writer w;
	st_writer_init(&w, "doc/one", 0x1234567890abcdefull);
	/* batches of 1, 7 and 50 changes */
	assert_store(st_append_random(f->db, &w, 1, 1, &rng), STORE_OK);
	assert_store(st_append_random(f->db, &w, 14, 7, &rng), STORE_OK);
	assert_store(st_append_random(f->db, &w, 150, 50, &rng), STORE_OK);
	assert_int_equal(w.seq, 165);

	uint64_t start, head;
	assert_store(store_log_start(f->db, "doc/one", &start, &head), STORE_OK);
	assert_int_equal(start, 1);
	assert_int_equal(head, 165);

	assert_loads_as(f->db, &w, STORE_HEAD, 0);
	store_load_result r;
	assert_store(store_load(f->db, "doc/one", 9, &r), STORE_OK);
	assert_true(r.exists);
	assert_int_equal(r.head_seq, 165);
	assert_int_equal(r.snapshot_seq, 0);
	assert_int_equal(r.changes_applied, 165);
	assert_int_equal(r.snapshots_skipped, 0);
	crdt_doc_free(r.doc);

	/* payloads come back byte for byte, with their metadata */
	payload_check pc = {&w, 1, 0};
	assert_store(store_changes(f->db, "doc/one", 0, 0, check_payload, &pc), STORE_OK);
	assert_int_equal(pc.bad, 0);
	assert_int_equal(pc.next, 166);

	/* survives close and reopen */
	reopen(f, NULL);
	assert_loads_as(f->db, &w, STORE_HEAD, 0);
	for (uint64_t s = 0; s <= 165; s += 11)
		assert_loads_as(f->db, &w, s, 0);
	st_writer_free(&w);
}

static void test_storage_changes_since(void **state)
{
	fixture *f = *state;
	uint64_t rng = 2;
	st_writer w;
	st_writer_init(&w, "d", 3);
	assert_store(st_append_random(f->db, &w, 40, 10, &rng), STORE_OK);

	uint64_t seqs[64] = {0};
	assert_store(store_changes(f->db, "d", 30, 0, collect_seq, seqs), STORE_OK);
	assert_int_equal(seqs[0], 10);
	for (int i = 1; i <= 10; i++)
		assert_int_equal(seqs[i], 30 + (uint64_t)i);

	memset(seqs, 0, sizeof seqs);
	assert_store(store_changes(f->db, "d", 5, 3, collect_seq, seqs), STORE_OK);
	assert_int_equal(seqs[0], 3);
	assert_int_equal(seqs[1], 6);
	assert_int_equal(seqs[3], 8);

	memset(seqs, 0, sizeof seqs);
	assert_store(store_changes(f->db, "d", 40, 0, collect_seq, seqs), STORE_OK);
	assert_int_equal(seqs[0], 0);
	assert_store(store_changes(f->db, "d", 41, 0, collect_seq, seqs), STORE_ERANGE);
	assert_store(store_changes(f->db, "missing", 0, 0, collect_seq, seqs), STORE_OK);
	assert_store(store_changes(f->db, "missing", 1, 0, collect_seq, seqs), STORE_ERANGE);
	assert_store(store_changes(f->db, "", 0, 0, collect_seq, seqs), STORE_EINVAL);
	st_writer_free(&w);
}

static int stop_at_3(void *ctx, const store_change_row *row)
{
	(void)ctx;
	return row->seq == 3 ? 42 : 0;
}

static void test_storage_changes_callback_stops(void **state)
{
	fixture *f = *state;
	uint64_t rng = 3;
	st_writer w;
	st_writer_init(&w, "d", 3);
	assert_store(st_append_random(f->db, &w, 10, 10, &rng), STORE_OK);
	assert_int_equal(store_changes(f->db, "d", 0, 0, stop_at_3, NULL), 42);
	/* the handle is usable afterwards (read transaction ended) */
	assert_store(st_append_random(f->db, &w, 1, 1, &rng), STORE_OK);
	assert_loads_as(f->db, &w, STORE_HEAD, 0);
	st_writer_free(&w);
}

static void test_storage_group_commit_many_documents(void **state)
{
	fixture *f = *state;
	uint64_t rng = 4;
	enum { DOCS = 5, ROUNDS = 30 };
	st_writer w[DOCS];
	for (int d = 0; d < DOCS; d++) {
		char id[16];
		snprintf(id, sizeof id, "doc-%d", d);
		st_writer_init(&w[d], id, 100 + (crdt_replica)d);
	}
	/* each batch: one or two changes of every document, interleaved */
	store_change batch[2 * DOCS];
	for (int round = 0; round < ROUNDS; round++) {
		size_t n = 0;
		for (int d = 0; d < DOCS; d++)
			batch[n++] = st_random_edit(&w[d], &rng);
		for (int d = 0; d < DOCS; d += 2)
			batch[n++] = st_random_edit(&w[d], &rng);
		assert_store(store_append(f->db, batch, n), STORE_OK);
	}
	for (int d = 0; d < DOCS; d++) {
		assert_loads_as(f->db, &w[d], STORE_HEAD, 0);
		store_doc_info info;
		assert_store(store_doc_info_get(f->db, w[d].doc_id, &info), STORE_OK);
		assert_int_equal(info.head_seq, w[d].seq);
		assert_int_equal(info.log_start, 1);
		assert_int_equal(info.log_changes, w[d].seq);
		uint64_t bytes = 0;
		for (uint64_t s = 1; s <= w[d].seq; s++)
			bytes += w[d].payloads[s].len;
		assert_int_equal(info.log_bytes, bytes);
		assert_int_equal(info.bytes_since_snapshot, bytes);
		assert_int_equal(info.changes_since_snapshot, w[d].seq);
		assert_true(info.updated_ms > 0);
		st_writer_free(&w[d]);
	}
}

static void test_storage_contiguity_errors_roll_back(void **state)
{
	fixture *f = *state;
	uint64_t rng = 5;
	st_writer a, b;
	st_writer_init(&a, "a", 1);
	st_writer_init(&b, "b", 2);
	assert_store(st_append_random(f->db, &a, 5, 5, &rng), STORE_OK);
	uint64_t db_bytes = store_db_bytes(f->db);
	assert_true(db_bytes > 0);

	/* a gap: seq 7 after head 5 */
	store_change c6 = st_random_edit(&a, &rng);
	store_change c7 = st_random_edit(&a, &rng);
	assert_store(store_append(f->db, &c7, 1), STORE_ESEQ);
	assert_non_null(strstr(store_errmsg(f->db), "head is 5"));
	/* a duplicate: seq 5 again */
	store_change dup = c6;
	dup.seq = 5;
	assert_store(store_append(f->db, &dup, 1), STORE_ESEQ);
	/* a new document must start at 1 */
	store_change b1 = st_random_edit(&b, &rng);
	store_change b2 = st_random_edit(&b, &rng);
	assert_store(store_append(f->db, &b2, 1), STORE_ESEQ);
	/* one bad change fails the whole batch: a's 6 and b's 1 are not kept */
	store_change mixed[3] = {c6, b1, c7};
	mixed[2].seq = 9;
	assert_store(store_append(f->db, mixed, 3), STORE_ESEQ);
	uint64_t start, head;
	assert_store(store_log_start(f->db, "a", &start, &head), STORE_OK);
	assert_int_equal(head, 5);
	assert_store(store_log_start(f->db, "b", &start, &head), STORE_OK);
	assert_int_equal(head, 0);
	store_doc_info info;
	assert_store(store_doc_info_get(f->db, "b", &info), STORE_ENOTFOUND);
	/* a repeated seq inside one batch */
	store_change twice[2] = {c6, c6};
	assert_store(store_append(f->db, twice, 2), STORE_ESEQ);
	/* bad arguments */
	store_change bad = c6;
	bad.seq = 0;
	assert_store(store_append(f->db, &bad, 1), STORE_EINVAL);
	bad = c6;
	bad.doc_id = "";
	assert_store(store_append(f->db, &bad, 1), STORE_EINVAL);
	bad = c6;
	bad.payload = NULL;
	assert_store(store_append(f->db, &bad, 1), STORE_EINVAL);
	char long_id[STORE_DOC_ID_MAX + 2];
	memset(long_id, 'x', sizeof long_id - 1);
	long_id[sizeof long_id - 1] = '\0';
	bad = c6;
	bad.doc_id = long_id;
	assert_store(store_append(f->db, &bad, 1), STORE_EINVAL);
	assert_store(store_append(f->db, NULL, 0), STORE_OK);

	/* and the right batch still goes through */
	store_change good[4] = {c6, b1, c7, b2};
	assert_store(store_append(f->db, good, 4), STORE_OK);
	assert_loads_as(f->db, &a, STORE_HEAD, 0);
	assert_loads_as(f->db, &b, STORE_HEAD, 0);
	st_writer_free(&a);
	st_writer_free(&b);
}

static void test_storage_doc_create(void **state)
{
	fixture *f = *state;
	assert_store(store_doc_create(f->db, "imported", 1234), STORE_OK);
	assert_store(store_doc_create(f->db, "imported", 0), STORE_EEXIST);
	/* only ids the protocol accepts can be created, by either path */
	assert_store(store_doc_create(f->db, "has space", 0), STORE_EINVAL);
	assert_store(store_doc_create(f->db, "caf\xc3\xa9", 0), STORE_EINVAL);
	uint8_t payload[1] = {0};
	store_change odd = {.doc_id = "a\tb", .seq = 1, .payload = payload, .payload_len = 0};
	assert_store(store_append(f->db, &odd, 1), STORE_EINVAL);
	assert_store(store_doc_info_get(f->db, "a\tb", &(store_doc_info){0}), STORE_ENOTFOUND);
	store_doc_info info;
	assert_store(store_doc_info_get(f->db, "imported", &info), STORE_OK);
	assert_string_equal(info.doc_id, "imported");
	assert_int_equal(info.created_ms, 1234);
	assert_int_equal(info.head_seq, 0);
	assert_int_equal(info.log_start, 1);
	assert_int_equal(info.log_changes, 0);
	store_load_result r;
	assert_store(store_load(f->db, "imported", 3, &r), STORE_OK);
	assert_true(r.exists);
	assert_int_equal(r.seq, 0);
	crdt_doc_free(r.doc);

	uint64_t rng = 6;
	st_writer w;
	st_writer_init(&w, "imported", 8);
	assert_store(st_append_random(f->db, &w, 3, 3, &rng), STORE_OK);
	assert_loads_as(f->db, &w, STORE_HEAD, 0);
	st_writer_free(&w);
}

static void test_storage_snapshot_and_log_load(void **state)
{
	fixture *f = *state;
	uint64_t rng = 7;
	st_writer w;
	st_writer_init(&w, "snap", 11);
	assert_store(st_append_random(f->db, &w, 60, 20, &rng), STORE_OK);
	assert_store(store_snapshot(f->db, "snap", 60, w.doc), STORE_OK);
	assert_store(st_append_random(f->db, &w, 25, 5, &rng), STORE_OK);

	store_load_result r;
	assert_store(store_load(f->db, "snap", 9, &r), STORE_OK);
	assert_int_equal(r.snapshot_seq, 60);
	assert_int_equal(r.changes_applied, 25);
	assert_int_equal(r.seq, 85);
	char *t = st_text(r.doc);
	assert_string_equal(t, w.texts[85]);
	free(t);
	/* the loaded document continues: its edits converge with the writer */
	crdt_doc_free(r.doc);

	store_doc_info info;
	assert_store(store_doc_info_get(f->db, "snap", &info), STORE_OK);
	assert_int_equal(info.snapshots, 1);
	assert_int_equal(info.snapshot_seq, 60);
	assert_true(info.snapshot_bytes > 0);
	assert_true(info.snapshot_raw_bytes > 0);
	assert_int_equal(info.changes_since_snapshot, 25);
	uint64_t bytes = 0;
	for (uint64_t s = 61; s <= 85; s++)
		bytes += w.payloads[s].len;
	assert_int_equal(info.bytes_since_snapshot, bytes);

	/* time travel: before the snapshot (log only), at it, after it */
	for (uint64_t s = 0; s <= 85; s += 5)
		assert_loads_as(f->db, &w, s, 0);
	assert_loads_as(f->db, &w, 60, 0);
	assert_loads_as(f->db, &w, 85, STORE_LOAD_LOG_ONLY);
	assert_store(store_load_at(f->db, "snap", 86, 0, 9, &r), STORE_ERANGE);
	assert_store(store_load_at(f->db, "snap", 5, 0x80, 9, &r), STORE_EINVAL);
	assert_store(store_load(f->db, "snap", 0, &r), STORE_EINVAL);

	/* a snapshot beyond the head, of a missing document, at seq 0 */
	assert_store(store_snapshot(f->db, "snap", 86, w.doc), STORE_ERANGE);
	assert_store(store_snapshot(f->db, "snap", 0, w.doc), STORE_ERANGE);
	assert_store(store_snapshot(f->db, "nope", 1, w.doc), STORE_ENOTFOUND);
	/* an empty document is never written over history */
	crdt_doc *empty = crdt_doc_new(5, NULL);
	assert_store(store_snapshot(f->db, "snap", 85, empty), STORE_EINVAL);
	crdt_doc_free(empty);
	/* nor a stale one: the state at 80 is not the state at 85 */
	assert_store(store_load_at(f->db, "snap", 80, 0, 9, &r), STORE_OK);
	assert_store(store_snapshot(f->db, "snap", 85, r.doc), STORE_EINVAL);
	assert_non_null(strstr(store_errmsg(f->db), "lacks"));
	assert_store(store_snapshot(f->db, "snap", 80, r.doc), STORE_OK);
	crdt_doc_free(r.doc);

	/* the snapshot checks out */
	crdt_doc *sd = NULL;
	assert_store(store_snapshot_check(f->db, "snap", 60, 3, &sd), STORE_OK);
	t = st_text(sd);
	assert_string_equal(t, w.texts[60]);
	free(t);
	crdt_doc_free(sd);
	assert_store(store_snapshot_check(f->db, "snap", 61, 3, NULL), STORE_ENOTFOUND);
	st_writer_free(&w);
}

static int list_snap(void *ctx, const store_snapshot_info *info)
{
	uint64_t *v = ctx;
	v[++v[0]] = info->seq;
	if (info->format != STORE_SNAPSHOT_FORMAT || info->raw_bytes == 0 ||
	    info->stored_bytes == 0 || info->created_ms <= 0)
		v[0] = 1000;
	return 0;
}

typedef struct doc_list {
	int n;
	char ids[8][STORE_DOC_ID_MAX + 1];
	uint64_t heads[8];
} doc_list;

static int list_doc(void *ctx, const store_doc_info *info)
{
	doc_list *l = ctx;
	if (l->n < 8) {
		snprintf(l->ids[l->n], sizeof l->ids[l->n], "%s", info->doc_id);
		l->heads[l->n] = info->head_seq;
	}
	l->n++;
	return 0;
}

static void test_storage_listing(void **state)
{
	fixture *f = *state;
	uint64_t rng = 8;
	st_writer w[3];
	const char *ids[3] = {"zeta", "alpha", "mid"};
	for (int i = 0; i < 3; i++) {
		st_writer_init(&w[i], ids[i], 20 + (crdt_replica)i);
		assert_store(st_append_random(f->db, &w[i], 10 + 5 * (size_t)i, 4, &rng), STORE_OK);
	}
	assert_store(store_snapshot(f->db, "mid", 8, NULL), STORE_EINVAL);
	/* a document with snapshots at 5 and 10 */
	st_writer s;
	st_writer_init(&s, "snaps", 30);
	assert_store(st_append_random(f->db, &s, 5, 5, &rng), STORE_OK);
	assert_store(store_snapshot(f->db, "snaps", 5, s.doc), STORE_OK);
	assert_store(st_append_random(f->db, &s, 5, 5, &rng), STORE_OK);
	assert_store(store_snapshot(f->db, "snaps", 10, s.doc), STORE_OK);

	uint64_t seqs[8] = {0};
	assert_store(store_snapshots(f->db, "snaps", list_snap, seqs), STORE_OK);
	assert_int_equal(seqs[0], 2);
	assert_int_equal(seqs[1], 10);
	assert_int_equal(seqs[2], 5);
	memset(seqs, 0, sizeof seqs);
	assert_store(store_snapshots(f->db, "zeta", list_snap, seqs), STORE_OK);
	assert_int_equal(seqs[0], 0);
	assert_store(store_snapshots(f->db, "nope", list_snap, seqs), STORE_OK);

	doc_list l = {0};
	assert_store(store_docs(f->db, list_doc, &l), STORE_OK);
	assert_int_equal(l.n, 4);
	assert_string_equal(l.ids[0], "alpha");
	assert_string_equal(l.ids[1], "mid");
	assert_string_equal(l.ids[2], "snaps");
	assert_string_equal(l.ids[3], "zeta");
	assert_int_equal(l.heads[0], 15);
	assert_int_equal(l.heads[3], 10);
	for (int i = 0; i < 3; i++)
		st_writer_free(&w[i]);
	st_writer_free(&s);
}

static void test_storage_read_only(void **state)
{
	fixture *f = *state;
	uint64_t rng = 9;
	st_writer w;
	st_writer_init(&w, "ro", 40);
	assert_store(st_append_random(f->db, &w, 20, 10, &rng), STORE_OK);
	assert_store(store_snapshot(f->db, "ro", 20, w.doc), STORE_OK);

	/* a read-only handle beside the writer (quire-dump while the server runs) */
	store_options o = st_read_only_options();
	store *ro = st_open_or_fail(f->path, &o);
	assert_loads_as(ro, &w, STORE_HEAD, 0);

	store_change c = st_random_edit(&w, &rng);
	assert_store(store_append(ro, &c, 1), STORE_EREADONLY);
	assert_store(store_snapshot(ro, "ro", 20, w.doc), STORE_EREADONLY);
	assert_store(store_trim(ro, NULL, NULL), STORE_EREADONLY);
	assert_store(store_doc_create(ro, "new", 0), STORE_EREADONLY);
	assert_true(strlen(store_errmsg(ro)) > 0);

	/* the writer goes on; the reader sees the new commit on its next read */
	assert_store(store_append(f->db, &c, 1), STORE_OK);
	assert_loads_as(ro, &w, STORE_HEAD, 0);
	store_close(ro);

	/* read-only open of a missing file */
	char *missing = st_join(f->dir, "missing.db");
	char err[256];
	assert_store(store_open(missing, &o, &ro, err, sizeof err), STORE_ECANTOPEN);
	assert_null(ro);
	assert_true(strlen(err) > 0);
	free(missing);
	st_writer_free(&w);
}

static void test_storage_read_only_after_clean_close(void **state)
{
	fixture *f = *state;
	uint64_t rng = 10;
	st_writer w;
	st_writer_init(&w, "ro2", 41);
	assert_store(st_append_random(f->db, &w, 5, 5, &rng), STORE_OK);
	store_close(f->db); /* the WAL is checkpointed and removed */
	f->db = NULL;
	store_options o = st_read_only_options();
	f->db = st_open_or_fail(f->path, &o);
	assert_loads_as(f->db, &w, STORE_HEAD, 0);
	st_writer_free(&w);
}

static void test_storage_options(void **state)
{
	fixture *f = *state;
	store_options o;
	store_options_init(&o);
	assert_int_equal(o.durability, STORE_SYNC_NORMAL);
	assert_int_equal(o.snapshot_every_changes, 1000);
	o.durability = 7;
	store *db = NULL;
	char err[128];
	assert_store(store_open(f->path, &o, &db, err, sizeof err), STORE_EINVAL);
	assert_null(db);
	assert_store(store_open(NULL, NULL, &db, err, sizeof err), STORE_EINVAL);

	store_options_init(&o);
	o.snapshot_every_changes = 10;
	o.snapshot_every_bytes = 1000;
	reopen(f, &o);
	assert_false(store_snapshot_due(f->db, 0, 0));
	assert_false(store_snapshot_due(f->db, 9, 999));
	assert_true(store_snapshot_due(f->db, 10, 0));
	assert_true(store_snapshot_due(f->db, 1, 1000));
	o.snapshot_every_changes = 0;
	reopen(f, &o);
	assert_false(store_snapshot_due(f->db, 100000, 999));
	assert_true(store_snapshot_due(f->db, 1, 5000));
	store_options_init(&o);
	o.durability = STORE_SYNC_FULL;
	reopen(f, &o);
	assert_int_equal(st_sql_int(f->path, "SELECT count(*) FROM pragma_journal_mode"
					     " WHERE journal_mode = 'wal'"),
			 1);
}

static void test_storage_manual_checkpoint(void **state)
{
	fixture *f = *state;
	store_options o;
	store_options_init(&o);
	o.checkpoint_pages = 0; /* no automatic checkpoints */
	reopen(f, &o);
	uint64_t rng = 11;
	st_writer w;
	st_writer_init(&w, "ckpt", 12);
	assert_store(st_append_random(f->db, &w, 300, 1, &rng), STORE_OK);
	char *wal = st_join(f->dir, "quire.db-wal");
	FILE *fp = fopen(wal, "rb");
	assert_non_null(fp);
	fseek(fp, 0, SEEK_END);
	long before = ftell(fp);
	fclose(fp);
	/* 300 commits of at least two pages each, none checkpointed */
	assert_true(before > 300 * 2 * 4096);
	assert_store(store_checkpoint(f->db, false), STORE_OK);
	assert_store(store_checkpoint(f->db, true), STORE_OK);
	fp = fopen(wal, "rb");
	assert_non_null(fp);
	fseek(fp, 0, SEEK_END);
	assert_int_equal(ftell(fp), 0);
	fclose(fp);
	free(wal);
	assert_loads_as(f->db, &w, STORE_HEAD, 0);
	reopen(f, NULL);
	assert_loads_as(f->db, &w, STORE_HEAD, 0);
	st_writer_free(&w);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_storage_strerror),
		cmocka_unit_test_setup_teardown(test_storage_empty_document, setup, teardown),
		cmocka_unit_test_setup_teardown(test_storage_append_load_round_trip, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_storage_changes_since, setup, teardown),
		cmocka_unit_test_setup_teardown(test_storage_changes_callback_stops, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_storage_group_commit_many_documents, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_storage_contiguity_errors_roll_back, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_storage_doc_create, setup, teardown),
		cmocka_unit_test_setup_teardown(test_storage_snapshot_and_log_load, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_storage_listing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_storage_read_only, setup, teardown),
		cmocka_unit_test_setup_teardown(test_storage_read_only_after_clean_close, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_storage_options, setup, teardown),
		cmocka_unit_test_setup_teardown(test_storage_manual_checkpoint, setup, teardown),
	};
	if (argc > 1)
		cmocka_set_test_filter(argv[1]);
	return cmocka_run_group_tests_name("storage_log", tests, NULL, NULL);
}
