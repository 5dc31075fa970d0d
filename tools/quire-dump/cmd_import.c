/*
 * cmd_import.c - `import FILE.json.gz DOC`: an editing trace written into
 * the database as DOC's history, as if a server had received it: change k
 * is the k-th transaction (import_replay.c makes the changes), so
 * `show DOC --at k` is the text after k transactions.
 *
 * Changes are appended IMPORT_GROUP per store_append (one transaction
 * each). After every change the store's own policy (store_snapshot_due,
 * fed the changes and payload bytes since the last snapshot) decides
 * whether a snapshot is due; if so, the pending group is appended first
 * and the document, which is then exactly at that seq, is snapshotted. A
 * last snapshot is written at the head. Finally the document is loaded
 * back from the database and compared with the trace's endContent and
 * with the replay's own document.
 *
 * The whole trace is first replayed without writing (a dry run, ~10% of
 * the time): a trace that fails to replay or does not reach its endContent
 * writes nothing. DOC must not exist (checked first, and atomically by
 * store_doc_create); the store has no way to delete a document, so there is
 * no --force. A write failure half way (disk full) leaves the changes
 * committed so far, and the message says how many.
 */
#define _POSIX_C_SOURCE 200809L

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dump.h"
#include "import.h"
#include "wire.h"

#define IMPORT_GROUP 1000	      /* changes per store_append */
#define IMPORT_GROUP_BYTES (8u << 20) /* or payload bytes per store_append */

typedef struct importer {
	store *db;
	const char *doc_id;
	store_change *group;
	size_t n;
	uint8_t *bytes; /* the group's payloads, back to back */
	size_t *off;	/* per change: offset into bytes */
	size_t len, cap;
	uint64_t head; /* committed */
	uint64_t log_bytes;
	uint64_t snapshots, last_snapshot;
	uint64_t snap_bytes, snap_raw;
} importer;

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int add(importer *im, const imp_change *ch)
{
	if (im->len + ch->payload_len > im->cap) {
		size_t cap = im->cap ? im->cap : 1 << 16;
		while (cap < im->len + ch->payload_len)
			cap *= 2;
		uint8_t *p = realloc(im->bytes, cap);
		if (!p)
			return -1;
		im->bytes = p;
		im->cap = cap;
	}
	if (ch->payload_len)
		memcpy(im->bytes + im->len, ch->payload, ch->payload_len);
	uint64_t seq = im->head + im->n + 1;
	im->off[im->n] = im->len;
	im->len += ch->payload_len;
	im->group[im->n++] = (store_change){
		.doc_id = im->doc_id,
		.seq = seq,
		.replica = ch->replica,
		.counter_first = ch->counter_first,
		.counter_count = ch->counter_count,
		.author = ch->author,
		.time_ms = 0, /* now */
		.payload_len = ch->payload_len,
	};
	im->log_bytes += ch->payload_len;
	return 0;
}

/* Append the pending group in one transaction. */
static int flush(importer *im)
{
	if (im->n == 0)
		return STORE_OK;
	for (size_t i = 0; i < im->n; i++)
		im->group[i].payload = im->group[i].payload_len ? im->bytes + im->off[i] : NULL;
	int status = store_append(im->db, im->group, im->n);
	if (status != STORE_OK)
		return status;
	im->head += im->n;
	im->n = 0;
	im->len = 0;
	return STORE_OK;
}

static int take_snapshot(importer *im, const crdt_doc *doc)
{
	int status = store_snapshot(im->db, im->doc_id, im->head, doc);
	if (status == STORE_OK) {
		im->snapshots++;
		im->last_snapshot = im->head;
	}
	return status;
}

static void print_summary(const dump_args *a, const importer *im, const trace *t,
			  const store_doc_info *info, uint64_t db_bytes, size_t length,
			  const double secs[5])
{
	const char *file = a->pos[0], *doc_id = a->pos[1];
	if (a->json) {
		dump_json j;
		dump_json_init(&j, stdout);
		dump_json_obj(&j, NULL);
		dump_json_doc_id(&j, doc_id);
		dump_json_cstr(&j, "trace", file);
		dump_json_cstr(&j, "kind", t->concurrent ? "concurrent" : "sequential");
		dump_json_u64(&j, "agents", t->concurrent ? t->num_agents : 1);
		dump_json_u64(&j, "transactions", t->n_txns);
		dump_json_u64(&j, "patches", t->n_patches);
		dump_json_u64(&j, "changes", im->head);
		dump_json_u64(&j, "head_seq", info->head_seq);
		dump_json_u64(&j, "length", length);
		dump_json_u64(&j, "log_bytes", info->log_bytes);
		dump_json_u64(&j, "snapshots", im->snapshots);
		dump_json_u64(&j, "snapshot_seq", info->snapshot_seq);
		dump_json_u64(&j, "snapshot_bytes", info->snapshot_bytes);
		dump_json_u64(&j, "snapshot_raw_bytes", info->snapshot_raw_bytes);
		dump_json_u64(&j, "database_bytes", db_bytes);
		dump_json_bool(&j, "verified", true);
		dump_json_obj(&j, "seconds");
		fprintf(stdout,
			"\"load\":%.3f,\"check\":%.3f,\"write\":%.3f,\"verify\":%.3f,"
			"\"total\":%.3f",
			secs[0], secs[1], secs[2], secs[3], secs[4]);
		dump_json_obj_end(&j);
		dump_json_obj_end(&j);
		dump_json_eol(&j);
		return;
	}
	dump_str x, y, z;
	printf("imported %s as '%s': %s trace, %zu transactions, %zu patches\n", file, doc_id,
	       t->concurrent ? "concurrent" : "sequential", t->n_txns, t->n_patches);
	if (im->head)
		printf("  changes    %" PRIu64 " (seq 1..%" PRIu64 "), log %s\n", im->head,
		       info->head_seq, dump_fmt_bytes(&x, info->log_bytes));
	else
		printf("  changes    none: the document is empty\n");
	if (im->snapshots)
		printf("  snapshots  %" PRIu64 "; newest at seq %" PRIu64 ": %s zstd, %s raw\n",
		       im->snapshots, info->snapshot_seq, dump_fmt_bytes(&y, info->snapshot_bytes),
		       dump_fmt_bytes(&z, info->snapshot_raw_bytes));
	printf("  database   %s\n", dump_fmt_bytes(&x, db_bytes));
	printf("  verified   the text at the head (%zu code points) equals endContent\n", length);
	printf("  time       %.2f s (trace %.2f s, dry run %.2f s, replay + write %.2f s, "
	       "verify %.2f s)\n",
	       secs[4], secs[0], secs[1], secs[2], secs[3]);
}

static void refuse_existing(const dump_args *a, uint64_t head)
{
	dump_error("document '%s' already exists in %s (head %" PRIu64
		   "); import into a fresh database or under another id",
		   a->pos[1], a->db_path, head);
}

/* Replay the whole trace without writing: it must make every change and end
 * at endContent. Returns 0, or -1 after a message. */
static int dry_run(const trace *t, const char *doc_id, const char *file)
{
	char err[512];
	imp_replay *r = imp_replay_new(t, doc_id, err, sizeof err);
	if (!r) {
		dump_error("cannot replay %s: %s; nothing was written", file, err);
		return -1;
	}
	int rc = 0;
	size_t count = imp_replay_count(r);
	for (size_t k = 0; k < count && rc == 0; k++) {
		imp_change ch;
		if (imp_replay_next(r, &ch, err, sizeof err) != 0) {
			dump_error("%s: %s; nothing was written", file, err);
			rc = -1;
		}
	}
	size_t len = 0;
	char *text = rc == 0 ? dump_doc_text(imp_replay_doc(r), &len) : NULL;
	if (rc == 0 && (!text || len != t->end_bytes || memcmp(text, t->end, len) != 0)) {
		dump_error("replaying %s does not give its endContent (%zu bytes, expected %zu); "
			   "nothing was written",
			   file, len, t->end_bytes);
		rc = -1;
	}
	free(text);
	imp_replay_free(r);
	return rc;
}

int dump_cmd_import(const dump_args *a)
{
	const char *file = a->pos[0], *doc_id = a->pos[1];
	if (!wire_doc_id_valid(doc_id, strlen(doc_id)))
		return dump_usage_error("'%s' is not a document id the protocol accepts "
					"(1..%d bytes of A-Z a-z 0-9 . _ ~ / -)",
					doc_id, WIRE_MAX_DOC_ID);
	double t0 = now_s(), secs[5] = {0};
	trace t;
	char err[512];
	if (trace_load(file, &t, err, sizeof err) != 0) {
		dump_error("cannot load trace %s: %s", file, err);
		return DUMP_FAIL;
	}
	double t1 = now_s();
	secs[0] = t1 - t0;

	int rc = DUMP_FAIL;
	importer im = {.doc_id = doc_id};
	imp_replay *r = NULL;
	store *db = dump_db_open(a->db_path, false);
	if (!db)
		goto out;
	im.db = db;
	store_doc_info old;
	if (store_doc_info_get(db, doc_id, &old) == STORE_OK) {
		refuse_existing(a, old.head_seq);
		goto out;
	}
	/* A trace that does not replay to its endContent writes nothing. */
	if (dry_run(&t, doc_id, file) != 0)
		goto out;
	double t2 = now_s();
	secs[1] = t2 - t1;
	int status = store_doc_create(db, doc_id, 0);
	if (status == STORE_EEXIST) { /* created meanwhile */
		refuse_existing(a, store_doc_info_get(db, doc_id, &old) == STORE_OK ? old.head_seq
										    : 0);
		goto out;
	}
	if (status != STORE_OK) {
		dump_error("cannot create document '%s': %s", doc_id, store_errmsg(db));
		goto out;
	}
	if (!(r = imp_replay_new(&t, doc_id, err, sizeof err))) {
		dump_error("cannot replay %s: %s", file, err);
		goto out;
	}
	im.group = malloc(IMPORT_GROUP * sizeof *im.group);
	im.off = malloc(IMPORT_GROUP * sizeof *im.off);
	if (!im.group || !im.off) {
		dump_error("out of memory");
		goto out;
	}

	size_t count = imp_replay_count(r);
	uint64_t since = 0, since_bytes = 0;
	for (size_t k = 0; k < count; k++) {
		imp_change ch;
		if (imp_replay_next(r, &ch, err, sizeof err) != 0) {
			dump_error("%s: %s (%" PRIu64 " changes were committed)", file, err,
				   im.head);
			goto out;
		}
		if (add(&im, &ch) != 0) {
			dump_error("out of memory (%" PRIu64 " changes were committed)", im.head);
			goto out;
		}
		since++;
		since_bytes += ch.payload_len;
		bool due = store_snapshot_due(db, since, since_bytes);
		if (im.n == IMPORT_GROUP || im.len >= IMPORT_GROUP_BYTES || due) {
			if ((status = flush(&im)) != STORE_OK) {
				dump_error("appending changes %" PRIu64 "..: %s (%" PRIu64
					   " changes were committed)",
					   im.head + 1, store_errmsg(db), im.head);
				goto out;
			}
		}
		if (due) {
			if ((status = take_snapshot(&im, imp_replay_doc(r))) != STORE_OK) {
				dump_error("snapshot at seq %" PRIu64 ": %s", im.head,
					   store_errmsg(db));
				goto out;
			}
			since = since_bytes = 0;
		}
	}
	if ((status = flush(&im)) != STORE_OK) {
		dump_error("appending changes %" PRIu64 "..: %s (%" PRIu64
			   " changes were committed)",
			   im.head + 1, store_errmsg(db), im.head);
		goto out;
	}
	if (im.head > 0 && im.last_snapshot != im.head &&
	    (status = take_snapshot(&im, imp_replay_doc(r))) != STORE_OK) {
		dump_error("snapshot at seq %" PRIu64 ": %s", im.head, store_errmsg(db));
		goto out;
	}
	double t3 = now_s();
	secs[2] = t3 - t2;

	/* The replay must have reached endContent again, then the database must. */
	size_t len;
	char *text = dump_doc_text(imp_replay_doc(r), &len);
	if (!text || len != t.end_bytes || memcmp(text, t.end, len) != 0) {
		dump_error("replaying %s does not give its endContent (%zu bytes, expected %zu): "
			   "the trace and the engine disagree",
			   file, text ? len : 0, t.end_bytes);
		free(text);
		goto out;
	}
	free(text);
	store_load_result res;
	dump_args la = *a;
	dump_ctx c = {.args = &la, .db = db, .out = stdout, .json = a->json};
	if (dump_load(&c, doc_id, STORE_HEAD, 0, false, &res) != DUMP_OK)
		goto out;
	char why[160];
	text = dump_doc_text(res.doc, &len);
	bool same = text && len == t.end_bytes && memcmp(text, t.end, len) == 0 &&
		    dump_docs_equal(res.doc, imp_replay_doc(r), why, sizeof why);
	size_t length = crdt_doc_length(res.doc);
	free(text);
	crdt_doc_free(res.doc);
	if (!same) {
		dump_error("'%s' as loaded from the database does not equal the trace's endContent",
			   doc_id);
		goto out;
	}
	store_doc_info info;
	if (store_doc_info_get(db, doc_id, &info) != STORE_OK) {
		dump_error("cannot read document '%s': %s", doc_id, store_errmsg(db));
		goto out;
	}
	uint64_t db_bytes = store_db_bytes(db);
	double t4 = now_s();
	secs[3] = t4 - t3;
	secs[4] = t4 - t0;
	print_summary(a, &im, &t, &info, db_bytes, length, secs);
	rc = DUMP_OK;
out:
	imp_replay_free(r);
	free(im.group);
	free(im.off);
	free(im.bytes);
	store_close(db);
	trace_free(&t);
	return rc;
}
