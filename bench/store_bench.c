/*
 * store_bench.c - `quire-bench store`: what storage/ costs. Two tables:
 *
 *  1. Group commit: changes/s that store_append makes durable, for batches
 *     of 1, 10, 100 and 1000 changes per transaction (spread round-robin
 *     over --docs documents, as the server's one-transaction-per-loop-turn
 *     does), with synchronous=NORMAL and FULL, on a fresh temporary
 *     database each; plus the latency of one commit (p50, p99), which is
 *     the floor of the server's ack latency.
 *  2. Load: store_load of one document built from the trace's keystrokes
 *     (one change per transaction), with the newest snapshot N changes
 *     before the head, for several N, and from the log alone.
 *
 * Payloads are real: each change is the wire_ops_encode'd ops of one trace
 * transaction replayed as local edits (automerge-paper: one keystroke per
 * change), or of synthetic typing when no trace is given. Everything is
 * checked: appends must return STORE_OK and loads must reproduce the text.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L /* clock_gettime, mkdtemp, unlink, rmdir */
#endif
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "crdt.h"
#include "store.h"
#include "trace.h"
#include "wire.h"

int cmd_store(int argc, char **argv);

/* ---- helpers --------------------------------------------------------------- */

static double sb_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int sb_cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* The q-quantile (0..1) of n samples (sorts them). */
static double quantile(double *v, size_t n, double q)
{
	if (n == 0)
		return 0;
	qsort(v, n, sizeof *v, sb_cmp_double);
	size_t i = (size_t)(q * (double)(n - 1) + 0.5);
	return v[i < n ? i : n - 1];
}

static int parse_u64(const char *opt, const char *s, uint64_t max, uint64_t *out)
{
	char *end = NULL;
	unsigned long long v = strtoull(s ? s : "", &end, 10);
	if (!s || !*s || *end || v == 0 || v > max) {
		fprintf(stderr, "quire-bench store: %s wants a count from 1 to %" PRIu64 "\n", opt,
			max);
		return -1;
	}
	*out = v;
	return 0;
}

/* A temporary database: dir/bench.db (and its -wal, -shm). */
typedef struct tmpdb {
	char dir[512];
	char path[600];
} tmpdb;

static int tmpdb_make(tmpdb *t, const char *base)
{
	snprintf(t->dir, sizeof t->dir, "%s/quire-store-bench-XXXXXX", base);
	if (!mkdtemp(t->dir)) {
		fprintf(stderr, "quire-bench store: cannot create a directory under %s\n", base);
		return -1;
	}
	snprintf(t->path, sizeof t->path, "%s/bench.db", t->dir);
	return 0;
}

static void tmpdb_remove(tmpdb *t)
{
	static const char *const suffix[] = {"", "-wal", "-shm", "-journal"};
	char p[640];
	for (size_t i = 0; i < sizeof suffix / sizeof *suffix; i++) {
		snprintf(p, sizeof p, "%s%s", t->path, suffix[i]);
		unlink(p);
	}
	rmdir(t->dir);
}

/* checkpoint_pages for the group-commit databases (--checkpoint). */
static uint32_t bench_checkpoint_pages = 1000;
/* store_options.checkpoint_thread (--checkpoint-thread), as the server. */
static bool bench_checkpoint_thread = false;

static int open_db(const tmpdb *t, store_durability d, store **db)
{
	store_options o;
	store_options_init(&o);
	o.durability = d;
	o.checkpoint_pages = bench_checkpoint_pages;
	o.checkpoint_thread = bench_checkpoint_thread;
	char err[256];
	int s = store_open(t->path, &o, db, err, sizeof err);
	if (s != STORE_OK)
		fprintf(stderr, "quire-bench store: open %s: %s\n", t->path, err);
	return s;
}

/* ---- payloads: one change per trace transaction ------------------------------ */

typedef struct payloads {
	uint8_t *data; /* all payloads back to back */
	size_t *off;   /* payload i is data[off[i] .. off[i+1]) */
	size_t n, cap;
	size_t bytes, data_cap;
	char *final_text; /* the text after all of them */
	size_t final_bytes;
	char source[64];
} payloads;

static void payloads_free(payloads *p)
{
	free(p->data);
	free(p->off);
	free(p->final_text);
	memset(p, 0, sizeof *p);
}

static int payloads_push(payloads *p, crdt_batch *batch, wire_buf *scratch)
{
	size_t k = crdt_batch_count(batch);
	crdt_op *ops = malloc((k ? k : 1) * sizeof *ops);
	if (!ops)
		return -1;
	for (size_t i = 0; i < k; i++)
		ops[i] = *crdt_batch_get(batch, i);
	scratch->len = 0;
	int w = wire_ops_encode(ops, k, scratch);
	free(ops);
	if (w != WIRE_OK) {
		fprintf(stderr, "quire-bench store: wire_ops_encode: %s\n", wire_strerror(w));
		return -1;
	}
	if (p->n + 2 > p->cap) {
		size_t ncap = p->cap ? p->cap * 2 : 4096;
		size_t *o = realloc(p->off, ncap * sizeof *o);
		if (!o)
			return -1;
		p->off = o;
		p->cap = ncap;
	}
	if (p->bytes + scratch->len > p->data_cap) {
		size_t ncap = p->data_cap ? p->data_cap * 2 : 1 << 20;
		while (ncap < p->bytes + scratch->len)
			ncap *= 2;
		uint8_t *d = realloc(p->data, ncap);
		if (!d)
			return -1;
		p->data = d;
		p->data_cap = ncap;
	}
	p->off[p->n] = p->bytes;
	memcpy(p->data + p->bytes, scratch->data, scratch->len);
	p->bytes += scratch->len;
	p->n++;
	p->off[p->n] = p->bytes;
	return 0;
}

static int finish_text(payloads *p, const crdt_doc *doc)
{
	p->final_bytes = crdt_doc_text(doc, NULL, 0);
	p->final_text = malloc(p->final_bytes + 1);
	if (!p->final_text)
		return -1;
	crdt_doc_text(doc, p->final_text, p->final_bytes + 1);
	p->final_text[p->final_bytes] = '\0';
	return 0;
}

/* Replay a sequential trace as local edits; one payload per transaction. */
static int payloads_from_trace(payloads *p, const char *path)
{
	trace t;
	char err[512];
	if (trace_load(path, &t, err, sizeof err) != 0) {
		fprintf(stderr, "quire-bench store: %s\n", err);
		return -1;
	}
	if (t.concurrent) {
		fprintf(stderr,
			"quire-bench store: %s is a concurrent trace; use a sequential one\n",
			path);
		trace_free(&t);
		return -1;
	}
	crdt_doc *doc = crdt_doc_new(1, NULL);
	crdt_batch *batch = crdt_batch_new(NULL);
	wire_buf scratch = {0};
	int rc = doc && batch ? 0 : -1;
	if (rc == 0 && t.start_bytes) {
		rc = crdt_doc_insert(doc, 0, t.start, t.start_bytes, batch) == CRDT_OK ? 0 : -1;
		if (rc == 0)
			rc = payloads_push(p, batch, &scratch);
		crdt_batch_clear(batch);
	}
	for (size_t i = 0; rc == 0 && i < t.n_txns; i++) {
		const trace_txn *x = &t.txns[i];
		for (uint32_t k = 0; rc == 0 && k < x->n_patches; k++) {
			const trace_patch *pa = &t.patches[x->first_patch + k];
			if (pa->del && crdt_doc_delete(doc, pa->pos, pa->del, batch) != CRDT_OK)
				rc = -1;
			if (rc == 0 && pa->ins_bytes &&
			    crdt_doc_insert(doc, pa->pos, trace_patch_text(&t, pa), pa->ins_bytes,
					    batch) != CRDT_OK)
				rc = -1;
		}
		if (rc == 0 && crdt_batch_count(batch) > 0)
			rc = payloads_push(p, batch, &scratch);
		crdt_batch_clear(batch);
	}
	if (rc == 0)
		rc = finish_text(p, doc);
	if (rc == 0 &&
	    (p->final_bytes != t.end_bytes || memcmp(p->final_text, t.end, t.end_bytes))) {
		fprintf(stderr, "quire-bench store: %s does not reproduce its endContent\n", path);
		rc = -1;
	}
	if (rc != 0)
		fprintf(stderr, "quire-bench store: replaying %s failed\n", path);
	const char *base = strrchr(path, '/');
	snprintf(p->source, sizeof p->source, "%s", base ? base + 1 : path);
	char *dot = strstr(p->source, ".json");
	if (dot)
		*dot = '\0';
	wire_buf_free(&scratch);
	crdt_batch_free(batch);
	crdt_doc_free(doc);
	trace_free(&t);
	return rc;
}

/* Synthetic typing: words typed key by key at a wandering cursor, with
 * some backspacing. */
static int payloads_synthetic(payloads *p, size_t n)
{
	static const char words[] = "the quick brown fox jumps over the lazy dog while "
				    "collaborative editors merge every keystroke ";
	crdt_doc *doc = crdt_doc_new(1, NULL);
	crdt_batch *batch = crdt_batch_new(NULL);
	wire_buf scratch = {0};
	uint64_t x = 88172645463325252ull;
	size_t cursor = 0, w = 0;
	int rc = doc && batch ? 0 : -1;
	for (size_t i = 0; rc == 0 && i < n; i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		size_t len = crdt_doc_length(doc);
		if (x % 97 == 0)
			cursor = (size_t)(x >> 8) % (len + 1);
		if (len > 0 && cursor > 0 && x % 11 == 0) {
			rc = crdt_doc_delete(doc, cursor - 1, 1, batch) == CRDT_OK ? 0 : -1;
			cursor--;
		} else {
			rc = crdt_doc_insert(doc, cursor, &words[w], 1, batch) == CRDT_OK ? 0 : -1;
			cursor++;
			w = (w + 1) % (sizeof words - 1);
		}
		if (rc == 0)
			rc = payloads_push(p, batch, &scratch);
		crdt_batch_clear(batch);
	}
	if (rc == 0)
		rc = finish_text(p, doc);
	snprintf(p->source, sizeof p->source, "synthetic typing");
	wire_buf_free(&scratch);
	crdt_batch_free(batch);
	crdt_doc_free(doc);
	return rc;
}

/* ---- 1. group commit ---------------------------------------------------------- */

typedef struct commit_row {
	const char *mode;
	size_t batch;
	uint64_t changes;
	double seconds;
	double p50_us, p99_us;
} commit_row;

static int bench_commit(const payloads *p, const char *base, store_durability mode, size_t batch,
			uint64_t max_changes, double max_seconds, size_t docs, commit_row *row)
{
	tmpdb t;
	if (tmpdb_make(&t, base) != 0)
		return -1;
	store *db = NULL;
	int rc = open_db(&t, mode, &db) == STORE_OK ? 0 : -1;
	char(*ids)[32] = calloc(docs, sizeof *ids);
	uint64_t *seq = calloc(docs, sizeof *seq);
	store_change *cs = calloc(batch, sizeof *cs);
	size_t max_commits = (size_t)(max_changes / batch) + 1;
	double *lat = calloc(max_commits, sizeof *lat);
	if (!ids || !seq || !cs || !lat)
		rc = -1;
	for (size_t d = 0; rc == 0 && d < docs; d++)
		snprintf(ids[d], sizeof ids[d], "doc-%zu", d);

	uint64_t done = 0, i = 0;
	size_t commits = 0;
	double t0 = sb_now_ms(), elapsed = 0;
	while (rc == 0 && done + batch <= max_changes && elapsed < max_seconds * 1e3) {
		for (size_t k = 0; k < batch; k++, i++) {
			size_t d = (size_t)(i % docs);
			size_t pi = (size_t)(i % p->n);
			cs[k] = (store_change){.doc_id = ids[d],
					       .seq = ++seq[d],
					       .replica = 1 + d,
					       .counter_first = (uint32_t)i,
					       .counter_count = 1,
					       .author = "bench",
					       .payload = p->data + p->off[pi],
					       .payload_len = p->off[pi + 1] - p->off[pi]};
		}
		double c0 = sb_now_ms();
		int s = store_append(db, cs, batch);
		double c1 = sb_now_ms();
		if (s != STORE_OK) {
			fprintf(stderr, "quire-bench store: append: %s: %s\n", store_strerror(s),
				store_errmsg(db));
			rc = -1;
			break;
		}
		lat[commits++] = (c1 - c0) * 1e3;
		done += batch;
		elapsed = c1 - t0;
	}
	row->mode = mode == STORE_SYNC_FULL ? "FULL" : "NORMAL";
	row->batch = batch;
	row->changes = done;
	row->seconds = elapsed / 1e3;
	row->p50_us = quantile(lat, commits, 0.50);
	row->p99_us = quantile(lat, commits, 0.99);
	store_close(db);
	tmpdb_remove(&t);
	free(ids);
	free(seq);
	free(cs);
	free(lat);
	return rc;
}

/* ---- 2. load ---------------------------------------------------------------------- */

typedef struct load_row {
	uint64_t head;
	uint64_t after; /* changes after the snapshot; UINT64_MAX: log only */
	double load_ms;
	uint64_t snapshot_bytes, log_bytes, db_bytes;
} load_row;

/* Append all payloads to one document (batches of 1000), snapshot at
 * head - after (unless log only), then time store_load. */
static int bench_load(const payloads *p, const char *base, uint64_t after, unsigned runs,
		      load_row *row)
{
	tmpdb t;
	if (tmpdb_make(&t, base) != 0)
		return -1;
	store *db = NULL;
	int rc = open_db(&t, STORE_SYNC_NORMAL, &db) == STORE_OK ? 0 : -1;
	uint64_t head = p->n;
	uint64_t snap_at = after == UINT64_MAX || after >= head ? 0 : head - after;
	/* a replica rebuilding the document as it goes, for the snapshot */
	crdt_doc *doc = crdt_doc_new(2, NULL);
	crdt_batch *ops = crdt_batch_new(NULL);
	store_change cs[1000];
	if (!doc || !ops)
		rc = -1;
	for (uint64_t s = 1; rc == 0 && s <= head;) {
		size_t k = 0;
		for (; k < 1000 && s <= head; k++, s++) {
			size_t pi = (size_t)(s - 1);
			cs[k] = (store_change){.doc_id = "paper",
					       .seq = s,
					       .replica = 1,
					       .payload = p->data + p->off[pi],
					       .payload_len = p->off[pi + 1] - p->off[pi]};
			if (s <= snap_at) {
				crdt_batch_clear(ops);
				if (wire_ops_decode(cs[k].payload, cs[k].payload_len, NULL, ops) !=
				    WIRE_OK)
					rc = -1;
				for (size_t j = 0; rc == 0 && j < crdt_batch_count(ops); j++)
					if (crdt_doc_apply(doc, crdt_batch_get(ops, j), NULL,
							   NULL) < 0)
						rc = -1;
			}
			if (s == snap_at) {
				k++, s++;
				break;
			}
		}
		if (rc == 0 && store_append(db, cs, k) != STORE_OK) {
			fprintf(stderr, "quire-bench store: append: %s\n", store_errmsg(db));
			rc = -1;
		}
		if (rc == 0 && snap_at > 0 && s - 1 == snap_at &&
		    store_snapshot(db, "paper", snap_at, doc) != STORE_OK) {
			fprintf(stderr, "quire-bench store: snapshot: %s\n", store_errmsg(db));
			rc = -1;
		}
	}
	crdt_batch_free(ops);
	crdt_doc_free(doc);

	double *ms = calloc(runs, sizeof *ms);
	unsigned flags = after == UINT64_MAX ? STORE_LOAD_LOG_ONLY : 0;
	for (unsigned r = 0; rc == 0 && r < runs; r++) {
		store_load_result res;
		double t0 = sb_now_ms();
		int s = store_load_at(db, "paper", STORE_HEAD, flags, 3, &res);
		ms[r] = sb_now_ms() - t0;
		if (s != STORE_OK) {
			fprintf(stderr, "quire-bench store: load: %s\n", store_errmsg(db));
			rc = -1;
			break;
		}
		size_t n = crdt_doc_text(res.doc, NULL, 0);
		char *text = malloc(n + 1);
		crdt_doc_text(res.doc, text, n + 1);
		if (n != p->final_bytes || memcmp(text, p->final_text, n) != 0 ||
		    res.snapshot_seq != snap_at) {
			fprintf(stderr, "quire-bench store: the loaded document differs\n");
			rc = -1;
		}
		free(text);
		crdt_doc_free(res.doc);
	}
	if (rc == 0) {
		store_doc_info info;
		store_doc_info_get(db, "paper", &info);
		row->head = head;
		row->after = after;
		row->load_ms = quantile(ms, runs, 0.5);
		row->snapshot_bytes = info.snapshot_bytes;
		row->log_bytes = info.log_bytes;
		store_close(db);
		db = NULL;
		/* the file itself, WAL checkpointed by the close */
		FILE *f = fopen(t.path, "rb");
		if (f) {
			fseek(f, 0, SEEK_END);
			row->db_bytes = (uint64_t)ftell(f);
			fclose(f);
		}
	}
	free(ms);
	store_close(db);
	tmpdb_remove(&t);
	return rc;
}

/* ---- the command -------------------------------------------------------------------------- */

static void usage_store(FILE *f)
{
	fputs("usage: quire-bench store [--json] [--trace FILE.json.gz] [--changes N]\n"
	      "                         [--seconds S] [--docs D] [--runs R] [--dir DIR]\n"
	      "                         [--checkpoint PAGES] [--checkpoint-thread]\n"
	      "  Group commit: changes/s made durable by store_append for batches of\n"
	      "  1, 10, 100, 1000 changes, synchronous NORMAL and FULL, each on a\n"
	      "  fresh database in DIR (default /tmp), at most N changes (default\n"
	      "  50000) or S seconds (default 3) per cell, spread over D documents\n"
	      "  (default 16). Load: store_load of the whole trace as one document\n"
	      "  with its snapshot 0, 1000, 10000, 100000 changes before the head and\n"
	      "  from the log alone (median of R runs, default 5). Payloads: the\n"
	      "  trace's transactions as encoded ops (one keystroke each for\n"
	      "  automerge-paper), or synthetic typing without --trace. --checkpoint:\n"
	      "  store_options.checkpoint_pages (default 1000; 0: no automatic\n"
	      "  checkpoint, the WAL just grows). --checkpoint-thread: those\n"
	      "  checkpoints run on the store's own thread, as in quire-server\n"
	      "  (store_options.checkpoint_thread).\n",
	      f);
}

int cmd_store(int argc, char **argv)
{
	bool json = false;
	const char *trace_path = NULL, *dir = "/tmp";
	uint64_t max_changes = 50000, seconds = 3, docs = 16, runs = 5;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(a, "--json") == 0) {
			json = true;
		} else if (strcmp(a, "--trace") == 0 && v) {
			trace_path = v, i++;
		} else if (strcmp(a, "--dir") == 0 && v) {
			dir = v, i++;
		} else if (strcmp(a, "--changes") == 0) {
			if (parse_u64(a, v, 100000000, &max_changes) != 0)
				return 2;
			i++;
		} else if (strcmp(a, "--seconds") == 0) {
			if (parse_u64(a, v, 3600, &seconds) != 0)
				return 2;
			i++;
		} else if (strcmp(a, "--docs") == 0) {
			if (parse_u64(a, v, 100000, &docs) != 0)
				return 2;
			i++;
		} else if (strcmp(a, "--checkpoint") == 0) {
			uint64_t pages = 0;
			if (v && strcmp(v, "0") == 0)
				pages = 0;
			else if (parse_u64(a, v, 0x7fffffff, &pages) != 0)
				return 2;
			bench_checkpoint_pages = (uint32_t)pages;
			i++;
		} else if (strcmp(a, "--checkpoint-thread") == 0) {
			bench_checkpoint_thread = true;
		} else if (strcmp(a, "--runs") == 0) {
			if (parse_u64(a, v, 1000, &runs) != 0)
				return 2;
			i++;
		} else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			usage_store(stdout);
			return 0;
		} else {
			fprintf(stderr, "quire-bench store: unknown or incomplete option '%s'\n",
				a);
			usage_store(stderr);
			return 2;
		}
	}

	payloads p = {0};
	int rc = trace_path ? payloads_from_trace(&p, trace_path) : payloads_synthetic(&p, 100000);
	if (rc != 0 || p.n == 0) {
		payloads_free(&p);
		return 1;
	}
	double avg = (double)p.bytes / (double)p.n;
	if (!json) {
		printf("quire-bench store: payloads: %s, %zu changes, %.1f B average\n", p.source,
		       p.n, avg);
		printf("\ngroup commit (%" PRIu64 " documents, at most %" PRIu64
		       " changes or %" PRIu64 " s per cell, checkpoint_pages %u%s, %s)\n",
		       docs, max_changes, seconds, (unsigned)bench_checkpoint_pages,
		       bench_checkpoint_thread ? " on the store's thread" : "", dir);
		printf("%-7s %6s %12s %11s %12s %12s\n", "sync", "batch", "changes/s", "commits/s",
		       "commit p50", "commit p99");
	}
	static const size_t batches[] = {1, 10, 100, 1000};
	for (int m = 0; rc == 0 && m < 2; m++) {
		store_durability mode = m == 0 ? STORE_SYNC_NORMAL : STORE_SYNC_FULL;
		for (size_t b = 0; rc == 0 && b < sizeof batches / sizeof *batches; b++) {
			commit_row row;
			rc = bench_commit(&p, dir, mode, batches[b], max_changes, (double)seconds,
					  (size_t)docs, &row);
			if (rc != 0)
				break;
			double cps = (double)row.changes / row.seconds;
			if (json)
				printf("{\"bench\":\"store_commit\",\"payloads\":\"%s\","
				       "\"payload_avg_bytes\":%.1f,\"sync\":\"%s\",\"batch\":%zu,"
				       "\"docs\":%" PRIu64
				       ",\"checkpoint_pages\":%u,\"checkpoint_thread\":%s,\"changes\":%" PRIu64
				       ",\"seconds\":%.3f,"
				       "\"changes_per_s\":%.0f,\"commits_per_s\":%.0f,"
				       "\"commit_p50_us\":%.1f,\"commit_p99_us\":%.1f}\n",
				       p.source, avg, row.mode, row.batch, docs,
				       (unsigned)bench_checkpoint_pages,
				       bench_checkpoint_thread ? "true" : "false", row.changes, row.seconds,
				       cps, cps / (double)row.batch, row.p50_us, row.p99_us);
			else
				printf("%-7s %6zu %12.0f %11.0f %9.1f us %9.1f us\n", row.mode,
				       row.batch, cps, cps / (double)row.batch, row.p50_us,
				       row.p99_us);
			fflush(stdout);
		}
	}

	if (rc == 0 && !json)
		printf("\nload one document of %zu changes (median of %" PRIu64 ")\n"
		       "%-22s %10s %12s %12s %12s\n",
		       p.n, runs, "snapshot", "load ms", "snapshot B", "log B", "db file B");
	static const uint64_t afters[] = {0, 1000, 10000, 100000, UINT64_MAX};
	for (size_t a = 0; rc == 0 && a < sizeof afters / sizeof *afters; a++) {
		if (afters[a] != UINT64_MAX && afters[a] >= p.n)
			continue;
		load_row row;
		rc = bench_load(&p, dir, afters[a], (unsigned)runs, &row);
		if (rc != 0)
			break;
		char label[48];
		if (row.after == UINT64_MAX)
			snprintf(label, sizeof label, "none (log only)");
		else
			snprintf(label, sizeof label, "at head - %" PRIu64, row.after);
		char after[24];
		if (row.after == UINT64_MAX)
			snprintf(after, sizeof after, "null");
		else
			snprintf(after, sizeof after, "%" PRIu64, row.after);
		if (json)
			printf("{\"bench\":\"store_load\",\"payloads\":\"%s\",\"head\":%" PRIu64
			       ",\"changes_after_snapshot\":%s,\"load_ms\":%.2f,"
			       "\"snapshot_bytes\":%" PRIu64 ",\"log_bytes\":%" PRIu64
			       ",\"db_bytes\":%" PRIu64 "}\n",
			       p.source, row.head, after, row.load_ms, row.snapshot_bytes,
			       row.log_bytes, row.db_bytes);
		else
			printf("%-22s %10.2f %12" PRIu64 " %12" PRIu64 " %12" PRIu64 "\n", label,
			       row.load_ms, row.snapshot_bytes, row.log_bytes, row.db_bytes);
		fflush(stdout);
	}
	payloads_free(&p);
	return rc == 0 ? 0 : 1;
}
