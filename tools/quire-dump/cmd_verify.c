/*
 * cmd_verify.c - `verify [DOC]`: check that every document (or DOC) can be
 * rebuilt and that all the ways of rebuilding it agree. One line per check:
 *
 *   load      store_load: the newest valid snapshot + the log to the head
 *   crdt      crdt_doc_check of that document, and no ops left pending
 *   log-only  STORE_LOAD_LOG_ONLY from seq 1 (when the log reaches back):
 *             same text and version vector as `load`, crdt_doc_check
 *   snapshot  per snapshot, oldest first: store_snapshot_check (checksum,
 *             zstd, container, engine decode), crdt_doc_check, and equality
 *             with our own replay of the log at its seq
 *   replay    our replay reached the head, every change decoded and
 *             applied, and it equals `load`
 *
 * Our replay walks the log once, in segments between snapshots (the store
 * forbids calling it from inside its own callbacks, and holding every
 * snapshot's document at once would cost too much memory): it starts empty
 * when the log reaches back to seq 1, otherwise from the oldest valid
 * snapshot the log continues from, and after a change that fails it
 * resumes from the next valid snapshot. So each snapshot is compared with
 * the log wherever the log can say anything about it, in linear time.
 *
 * Everything is measured at the head `load` saw; snapshots written after
 * that (the server may be running) are left for the next run.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "dump.h"
#include "wire.h"

static const wire_limits payload_limits = {
	.max_message_bytes = (size_t)1 << 30,
	.max_ops = UINT32_MAX,
	.max_text_bytes = (size_t)1 << 30,
};

typedef struct verifier {
	dump_ctx *c;
	dump_table *table;
	dump_json j;
	dump_sb id, detail;
	const char *doc_id;
	uint64_t checks, problems, docs;
} verifier;

enum verdict { V_OK, V_FAIL, V_SKIP };

static void report(verifier *v, enum verdict verdict, const char *check, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void report(verifier *v, enum verdict verdict, const char *check, const char *fmt, ...)
{
	static const char *const names[] = {"ok", "FAIL", "skip"};
	dump_sb_clear(&v->detail);
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n >= 0) {
		char *s = malloc((size_t)n + 1);
		if (s) {
			va_start(ap, fmt);
			vsnprintf(s, (size_t)n + 1, fmt, ap);
			va_end(ap);
			/* Store messages may quote a doc id: keep the line clean. */
			dump_sb_escape(&v->detail, s, (size_t)n, 0, NULL);
			free(s);
		}
	}
	v->checks++;
	if (verdict == V_FAIL)
		v->problems++;
	if (v->c->json) {
		dump_json_obj(&v->j, NULL);
		dump_json_doc_id(&v->j, v->doc_id);
		dump_json_cstr(&v->j, "check", check);
		dump_json_cstr(&v->j, "status", verdict == V_FAIL ? "fail" : names[verdict]);
		dump_json_bool(&v->j, "ok", verdict != V_FAIL);
		dump_json_cstr(&v->j, "detail", dump_sb_str(&v->detail));
		dump_json_obj_end(&v->j);
		dump_json_eol(&v->j);
		return;
	}
	const char *cells[] = {names[verdict], dump_sb_str(&v->id), check, dump_sb_str(&v->detail)};
	dump_table_row(v->table, cells);
}

/* ---- our own replay of the log ---------------------------------------------- */

typedef struct replay {
	crdt_doc *doc; /* NULL: no replay running */
	uint64_t seq;  /* the doc is the state after change `seq` */
	crdt_batch *batch;
	uint64_t applied;
	char err[200];
} replay;

static int apply_change(void *ctx, const store_change_row *row)
{
	replay *r = ctx;
	if (row->seq != r->seq + 1) {
		snprintf(r->err, sizeof r->err, "change %" PRIu64 " is missing from the log",
			 r->seq + 1);
		return 1;
	}
	crdt_batch_clear(r->batch);
	int ws = wire_ops_decode(row->payload, row->payload_len, &payload_limits, r->batch);
	if (ws != WIRE_OK) {
		snprintf(r->err, sizeof r->err, "change %" PRIu64 " does not decode: %s", row->seq,
			 wire_strerror(ws));
		return 1;
	}
	for (size_t i = 0; i < crdt_batch_count(r->batch); i++) {
		int cs = crdt_doc_apply(r->doc, crdt_batch_get(r->batch, i), NULL, NULL);
		if (cs < 0) {
			snprintf(r->err, sizeof r->err,
				 "change %" PRIu64 " op %zu does not apply: %s", row->seq, i,
				 crdt_strerror(cs));
			return 1;
		}
	}
	r->seq = row->seq;
	r->applied++;
	return 0;
}

/* Advance the replay to `to`. On failure reports it and stops the replay. */
static void replay_to(verifier *v, replay *r, uint64_t to)
{
	if (!r->doc || r->seq >= to)
		return;
	r->err[0] = '\0';
	int status = store_changes(v->c->db, v->doc_id, r->seq, to - r->seq, apply_change, r);
	if (status == STORE_OK && r->seq != to)
		snprintf(r->err, sizeof r->err, "change %" PRIu64 " is missing from the log",
			 r->seq + 1);
	else if (status != STORE_OK && status != 1)
		snprintf(r->err, sizeof r->err, "reading changes after %" PRIu64 ": %s", r->seq,
			 store_errmsg(v->c->db));
	if (r->err[0]) {
		report(v, V_FAIL, "replay", "%s", r->err);
		crdt_doc_free(r->doc);
		r->doc = NULL;
	}
}

/* crdt_doc_check plus "nothing pending"; NULL when fine, else why. */
static const char *doc_problem(const crdt_doc *doc)
{
	if (crdt_doc_check(doc) != CRDT_OK)
		return "crdt_doc_check failed: the document's invariants do not hold";
	if (crdt_doc_pending(doc) > 0)
		return "ops are held for missing dependencies";
	return NULL;
}

/* ---- snapshots --------------------------------------------------------------- */

typedef struct snap_list {
	store_snapshot_info *v;
	size_t n, cap;
	bool oom;
} snap_list;

static int collect_snapshot(void *ctx, const store_snapshot_info *info)
{
	snap_list *l = ctx;
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 32;
		store_snapshot_info *p = realloc(l->v, cap * sizeof *p);
		if (!p) {
			l->oom = true;
			return 1;
		}
		l->v = p;
		l->cap = cap;
	}
	l->v[l->n++] = *info;
	return 0;
}

static void check_snapshot(verifier *v, const store_snapshot_info *si, replay *r,
			   uint64_t log_start)
{
	uint64_t s = si->seq;
	replay_to(v, r, s);
	crdt_doc *doc = NULL;
	int status = store_snapshot_check(v->c->db, v->doc_id, s, DUMP_READER_REPLICA, &doc);
	if (status != STORE_OK) {
		report(v, V_FAIL, "snapshot", "seq %" PRIu64 ": %s: %s", s, store_strerror(status),
		       store_errmsg(v->c->db));
		return;
	}
	const char *bad = doc_problem(doc);
	if (bad) {
		report(v, V_FAIL, "snapshot", "seq %" PRIu64 ": %s", s, bad);
		crdt_doc_free(doc);
		return;
	}
	char why[160];
	if (r->doc && r->seq == s) {
		if (dump_docs_equal(doc, r->doc, why, sizeof why))
			report(v, V_OK, "snapshot",
			       "seq %" PRIu64 ": valid (%" PRIu64 " B zstd, %" PRIu64
			       " B raw), equals the log replayed to it",
			       s, si->stored_bytes, si->raw_bytes);
		else
			report(v, V_FAIL, "snapshot",
			       "seq %" PRIu64 ": valid but differs from the log replayed to it: %s",
			       s, why);
		crdt_doc_free(doc);
		return;
	}
	if (!r->doc && s + 1 >= log_start) {
		report(v, V_OK, "snapshot",
		       "seq %" PRIu64 ": valid (%" PRIu64 " B zstd, %" PRIu64
		       " B raw); the replay of the log continues from it",
		       s, si->stored_bytes, si->raw_bytes);
		r->doc = doc;
		r->seq = s;
		return;
	}
	report(v, V_OK, "snapshot",
	       "seq %" PRIu64 ": valid; not compared with the log (it starts at %" PRIu64 ")", s,
	       log_start);
	crdt_doc_free(doc);
}

/* ---- one document ---------------------------------------------------------------- */

static void check_log_only(verifier *v, const store_load_result *a, uint64_t log_start)
{
	if (log_start > 1) {
		report(v, V_SKIP, "log-only",
		       "the log starts at seq %" PRIu64 " (trimmed): it cannot rebuild alone",
		       log_start);
		return;
	}
	store_load_result b;
	int status = store_load_at(v->c->db, v->doc_id, a->seq, STORE_LOAD_LOG_ONLY,
				   DUMP_READER_REPLICA, &b);
	if (status != STORE_OK) {
		report(v, V_FAIL, "log-only", "%s: %s", store_strerror(status),
		       store_errmsg(v->c->db));
		return;
	}
	char why[160];
	const char *bad = doc_problem(b.doc);
	if (bad)
		report(v, V_FAIL, "log-only", "%s", bad);
	else if (!dump_docs_equal(a->doc, b.doc, why, sizeof why))
		report(v, V_FAIL, "log-only", "the log alone and the snapshot + log disagree: %s",
		       why);
	else
		report(v, V_OK, "log-only",
		       "%" PRIu64 " changes from seq 1 rebuild the same text and version vector",
		       b.changes_applied);
	crdt_doc_free(b.doc);
}

static int cmp_seq(const void *x, const void *y)
{
	uint64_t a = ((const store_snapshot_info *)x)->seq,
		 b = ((const store_snapshot_info *)y)->seq;
	return (a > b) - (a < b);
}

static void check_snapshots_and_replay(verifier *v, const store_load_result *a, uint64_t log_start)
{
	snap_list l = {0};
	int status = store_snapshots(v->c->db, v->doc_id, collect_snapshot, &l);
	if (l.oom || status != STORE_OK) {
		report(v, V_FAIL, "snapshot", "cannot list the snapshots: %s",
		       l.oom ? "out of memory" : store_errmsg(v->c->db));
		free(l.v);
		return;
	}
	if (l.n > 1) /* qsort must not get NULL, even for 0 elements */
		qsort(l.v, l.n, sizeof *l.v, cmp_seq);

	replay r = {0};
	r.batch = crdt_batch_new(NULL);
	if (log_start == 1)
		r.doc = crdt_doc_new(DUMP_READER_REPLICA, NULL);
	if (!r.batch || (log_start == 1 && !r.doc)) {
		report(v, V_FAIL, "replay", "out of memory");
		goto done;
	}
	uint64_t from = 0; /* where the replay (re)started: 0 or a snapshot */
	bool started = r.doc != NULL;
	for (size_t i = 0; i < l.n; i++) {
		if (l.v[i].seq > a->seq)
			break; /* written after the load: the next run checks it */
		bool had = r.doc != NULL;
		check_snapshot(v, &l.v[i], &r, log_start);
		if (!had && r.doc) {
			from = r.seq;
			started = true;
		}
	}
	if (!started) {
		report(v, V_FAIL, "replay",
		       "no valid snapshot to start from and the log starts at seq %" PRIu64,
		       log_start);
		goto done;
	}
	replay_to(v, &r, a->seq);
	if (!r.doc)
		goto done; /* replay_to reported the failure */
	char why[160];
	const char *bad = doc_problem(r.doc);
	if (bad)
		report(v, V_FAIL, "replay", "%s", bad);
	else if (!dump_docs_equal(r.doc, a->doc, why, sizeof why))
		report(v, V_FAIL, "replay",
		       "the log replayed to seq %" PRIu64 " and the load disagree: %s", a->seq,
		       why);
	else if (from == 0)
		report(v, V_OK, "replay",
		       "changes 1..%" PRIu64 " decode and apply; the result equals the load",
		       a->seq);
	else
		report(v, V_OK, "replay",
		       "snapshot %" PRIu64 " + changes %" PRIu64 "..%" PRIu64
		       " decode and apply; the result equals the load",
		       from, from + 1, a->seq);
done:
	crdt_doc_free(r.doc);
	crdt_batch_free(r.batch);
	free(l.v);
}

static void verify_doc(verifier *v, const char *doc_id)
{
	v->doc_id = doc_id;
	v->docs++;
	dump_sb_clear(&v->id);
	dump_sb_escape(&v->id, doc_id, strlen(doc_id), 60, NULL);
	store *db = v->c->db;

	store_load_result a;
	int status = store_load(db, doc_id, DUMP_READER_REPLICA, &a);
	if (status != STORE_OK) {
		report(v, V_FAIL, "load", "%s: %s", store_strerror(status), store_errmsg(db));
		return;
	}
	if (a.snapshot_seq)
		report(v, V_OK, "load",
		       "seq %" PRIu64 " from snapshot %" PRIu64 " + %" PRIu64 " changes%s", a.seq,
		       a.snapshot_seq, a.changes_applied,
		       a.snapshots_skipped ? ", passing over damaged snapshots" : "");
	else
		report(v, V_OK, "load",
		       "seq %" PRIu64 " from the log alone (%" PRIu64 " changes)%s", a.seq,
		       a.changes_applied,
		       a.snapshots_skipped ? ", every snapshot being damaged" : "");
	const char *bad = doc_problem(a.doc);
	if (bad) {
		report(v, V_FAIL, "crdt", "%s", bad);
	} else {
		crdt_stats st;
		crdt_doc_stats(a.doc, &st);
		report(v, V_OK, "crdt", "consistent: %zu code points, %zu runs, %zu replicas",
		       st.length, st.items, st.replicas);
	}
	uint64_t log_start = 1;
	if (a.seq > 0 && store_log_start(db, doc_id, &log_start, NULL) != STORE_OK) {
		report(v, V_FAIL, "log-only", "cannot read the log range: %s", store_errmsg(db));
	} else if (a.seq > 0) {
		check_log_only(v, &a, log_start);
		check_snapshots_and_replay(v, &a, log_start);
	}
	crdt_doc_free(a.doc);
}

/* ---- the command ------------------------------------------------------------------- */

typedef struct id_list {
	char **v;
	size_t n, cap;
	bool oom;
} id_list;

static int collect_id(void *ctx, const store_doc_info *info)
{
	id_list *l = ctx;
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 16;
		char **p = realloc(l->v, cap * sizeof *p);
		if (!p) {
			l->oom = true;
			return 1;
		}
		l->v = p;
		l->cap = cap;
	}
	size_t n = strlen(info->doc_id) + 1;
	if (!(l->v[l->n] = malloc(n))) {
		l->oom = true;
		return 1;
	}
	memcpy(l->v[l->n++], info->doc_id, n);
	return 0;
}

static const dump_col cols[] = {
	{"status", DUMP_LEFT},
	{"doc", DUMP_LEFT},
	{"check", DUMP_LEFT},
	{"detail", DUMP_LEFT},
};

int dump_cmd_verify(dump_ctx *c)
{
	id_list ids = {0};
	if (c->args->npos == 1) {
		store_doc_info info;
		if (dump_doc_info(c, c->args->pos[0], &info) != DUMP_OK)
			return DUMP_FAIL;
		collect_id(&ids, &info);
	} else {
		int status = store_docs(c->db, collect_id, &ids);
		if (status != STORE_OK && !ids.oom) {
			dump_error("cannot list the documents: %s", store_errmsg(c->db));
			ids.oom = false;
			goto fail;
		}
	}
	if (ids.oom) {
		dump_error("out of memory");
		goto fail;
	}
	verifier v = {.c = c};
	dump_json_init(&v.j, c->out);
	if (!c->json && !(v.table = dump_table_new(c->out, cols, 4))) {
		dump_error("out of memory");
		goto fail;
	}
	for (size_t i = 0; i < ids.n; i++)
		verify_doc(&v, ids.v[i]);
	dump_table_end(v.table);
	if (c->json) {
		dump_json_obj(&v.j, NULL);
		dump_json_obj(&v.j, "summary");
		dump_json_u64(&v.j, "documents", v.docs);
		dump_json_u64(&v.j, "checks", v.checks);
		dump_json_u64(&v.j, "problems", v.problems);
		dump_json_bool(&v.j, "ok", v.problems == 0);
		dump_json_obj_end(&v.j);
		dump_json_obj_end(&v.j);
		dump_json_eol(&v.j);
	} else {
		fprintf(c->out,
			"verify: %" PRIu64 " document%s, %" PRIu64 " checks, %" PRIu64
			" problem%s\n",
			v.docs, v.docs == 1 ? "" : "s", v.checks, v.problems,
			v.problems == 1 ? "" : "s");
	}
	dump_sb_free(&v.id);
	dump_sb_free(&v.detail);
	for (size_t i = 0; i < ids.n; i++)
		free(ids.v[i]);
	free(ids.v);
	return v.problems ? DUMP_FAIL : DUMP_OK;
fail:
	for (size_t i = 0; i < ids.n; i++)
		free(ids.v[i]);
	free(ids.v);
	return DUMP_FAIL;
}
