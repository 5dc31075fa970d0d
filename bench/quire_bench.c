/*
 * quire_bench.c - the quire-bench program: replays real editing traces
 * through the CRDT engine and prints the numbers of the benchmark tables.
 *
 * `quire-bench trace FILE...` replays each trace as local edits (timed),
 * then feeds the ops those edits made to a fresh replica (timed), encodes a
 * snapshot (plain and zstd sizes), decodes it again (timed) and reports the
 * engine's memory. Concurrent traces are replayed with one replica per agent
 * that receives exactly the transactions its next edit depends on.
 * `quire-bench gc FILE` shows garbage collection at work: one document typed
 * and wholly deleted over and over should stay close to the size of one
 * run's bookkeeping. main() is a subcommand dispatcher so that later
 * benchmarks (store, server load) slot in beside these.
 *
 * Every result is checked against the trace's endContent; a mismatch or an
 * engine error makes the trace fail and the exit status non-zero. Timings are
 * medians over --runs runs; parsing and recording ops happen outside the
 * timed regions.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L /* clock_gettime */
#endif
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <zstd.h>

#include "crdt.h"
#include "trace.h"
#include "wire.h"

#define ZSTD_LEVEL 3
#define ERRLEN 512

/* ---- small helpers ------------------------------------------------------ */

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* Median of n samples (sorts them). */
static double median(double *v, size_t n)
{
	if (n == 0)
		return -1;
	qsort(v, n, sizeof *v, cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* Turn err into "<prefix>: <err>". */
static void prefix_err(char *err, size_t errlen, const char *fmt, ...)
{
	char pre[160], old[ERRLEN];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(pre, sizeof pre, fmt, ap);
	va_end(ap);
	snprintf(old, sizeof old, "%s", err);
	size_t n = (size_t)snprintf(err, errlen, "%s: ", pre);
	if (n + 1 < errlen) {
		size_t k = strlen(old);
		if (k > errlen - n - 1)
			k = errlen - n - 1;
		memcpy(err + n, old, k);
		err[n + k] = '\0';
	}
}

/* "automerge-paper" from ".../automerge-paper.json.gz". */
static void trace_name(const char *path, char *out, size_t cap)
{
	const char *base = strrchr(path, '/');
	base = base ? base + 1 : path;
	size_t n = strlen(base);
	static const char *const suffixes[] = {".json.gz", ".gz", ".json"};
	for (size_t i = 0; i < sizeof suffixes / sizeof *suffixes; i++) {
		size_t k = strlen(suffixes[i]);
		if (n > k && strcmp(base + n - k, suffixes[i]) == 0) {
			n -= k;
			break;
		}
	}
	if (n >= cap)
		n = cap - 1;
	memcpy(out, base, n);
	out[n] = '\0';
}

/* Write s as a JSON string literal. */
static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c == '\n')
			fputs("\\n", f);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

/* 1234567 -> "1,234,567" (buf of at least 32 bytes). */
static const char *grouped(char *buf, uint64_t v)
{
	char tmp[32];
	int n = snprintf(tmp, sizeof tmp, "%" PRIu64, v);
	int o = 0;
	for (int i = 0; i < n; i++) {
		if (i > 0 && (n - i) % 3 == 0)
			buf[o++] = ',';
		buf[o++] = tmp[i];
	}
	buf[o] = '\0';
	return buf;
}

/* Parse a positive count for an option. */
static int parse_count(const char *opt, const char *s, unsigned long max, unsigned long *out)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (errno || end == s || *end || v == 0 || v > max || s[0] == '-') {
		fprintf(stderr, "quire-bench: %s wants a number from 1 to %lu, not '%s'\n", opt,
			max, s);
		return -1;
	}
	*out = v;
	return 0;
}

/* ---- a counting allocator: peak bytes a document held ------------------- */

typedef struct count_alloc {
	size_t cur;
	size_t peak;
} count_alloc;

static void *count_alloc_fn(void *ctx, size_t size)
{
	count_alloc *c = ctx;
	void *p = malloc(size);
	if (p != NULL) {
		c->cur += size;
		if (c->cur > c->peak)
			c->peak = c->cur;
	}
	return p;
}

static void count_release_fn(void *ctx, void *ptr, size_t size)
{
	count_alloc *c = ctx;
	if (ptr != NULL)
		c->cur -= size;
	free(ptr);
}

/* ---- the op log: the ops every transaction made, grouped --------------- */

/*
 * Group 0 holds the ops that inserted startContent (possibly none); group
 * i + 1 holds the ops of trace transaction i. Op text lives in blocks that
 * never move, so ops stay valid while later groups are recorded (the
 * concurrent replay delivers earlier groups while it records new ones).
 */
typedef struct oplog {
	crdt_op *ops;
	size_t n_ops, ops_cap;
	size_t *group_end; /* group g is ops[g ? group_end[g-1] : 0, group_end[g]) */
	size_t n_groups, groups_cap;
	char **blocks;
	size_t *block_cap;
	size_t n_blocks, cur_block, block_used;
} oplog;

#define OPLOG_BLOCK (1u << 20)

static void oplog_reset(oplog *log)
{
	log->n_ops = 0;
	log->n_groups = 0;
	log->cur_block = 0;
	log->block_used = 0;
}

static void oplog_free(oplog *log)
{
	for (size_t i = 0; i < log->n_blocks; i++)
		free(log->blocks[i]);
	free(log->blocks);
	free(log->block_cap);
	free(log->ops);
	free(log->group_end);
	memset(log, 0, sizeof *log);
}

static int grow_array(void **arr, size_t *cap, size_t need, size_t elem)
{
	if (need <= *cap)
		return 0;
	size_t ncap = *cap ? *cap : 256;
	while (ncap < need)
		ncap *= 2;
	void *a = realloc(*arr, ncap * elem);
	if (a == NULL)
		return -1;
	*arr = a;
	*cap = ncap;
	return 0;
}

/* Stable storage for n bytes of op text. */
static char *oplog_text(oplog *log, size_t n)
{
	while (log->cur_block < log->n_blocks) {
		if (log->block_cap[log->cur_block] - log->block_used >= n) {
			char *p = log->blocks[log->cur_block] + log->block_used;
			log->block_used += n;
			return p;
		}
		log->cur_block++;
		log->block_used = 0;
	}
	size_t cap = n > OPLOG_BLOCK ? n : OPLOG_BLOCK;
	size_t nb = log->n_blocks + 1;
	char **blocks = realloc(log->blocks, nb * sizeof *blocks);
	if (blocks == NULL)
		return NULL;
	log->blocks = blocks;
	size_t *caps = realloc(log->block_cap, nb * sizeof *caps);
	if (caps == NULL)
		return NULL;
	log->block_cap = caps;
	char *b = malloc(cap);
	if (b == NULL)
		return NULL;
	log->blocks[log->n_blocks] = b;
	log->block_cap[log->n_blocks] = cap;
	log->cur_block = log->n_blocks++;
	log->block_used = n;
	return b;
}

/* Append the ops of `batch` as the next group. */
static int oplog_add_group(oplog *log, const crdt_batch *batch)
{
	size_t n = batch ? crdt_batch_count(batch) : 0;
	if (grow_array((void **)&log->ops, &log->ops_cap, log->n_ops + n, sizeof *log->ops) != 0 ||
	    grow_array((void **)&log->group_end, &log->groups_cap, log->n_groups + 1,
		       sizeof *log->group_end) != 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		crdt_op op = *crdt_batch_get(batch, i);
		if (op.text != NULL && op.text_bytes > 0) {
			char *copy = oplog_text(log, op.text_bytes);
			if (copy == NULL)
				return -1;
			memcpy(copy, op.text, op.text_bytes);
			op.text = copy;
		}
		log->ops[log->n_ops++] = op;
	}
	log->group_end[log->n_groups++] = log->n_ops;
	return 0;
}

static size_t oplog_group_first(const oplog *log, size_t g)
{
	return g ? log->group_end[g - 1] : 0;
}

/*
 * Deliver one recorded group to a replica: the single place where ops cross
 * from one replica to another, and they cross as the server will receive
 * them: encoded as an Update ClientMessage (proto/wire.h), decoded with the
 * default limits (size, op count, text bytes, UTF-8 and shape checks), and
 * the decoded ops applied. Every op must apply cleanly (CRDT_OK).
 *
 * The encode buffer and the decoder (its protobuf-c arena and op batch) are
 * reused from call to call, as a server reuses one per connection, so the
 * steady state allocates nothing. They live in function-scope statics to
 * keep this change inside this function; they stay reachable until exit.
 */
static int deliver_group(crdt_doc *doc, const oplog *log, size_t g, char *err, size_t errlen)
{
	static wire_buf frame;
	static wire_client_msg *msg;
	size_t first = oplog_group_first(log, g), n = log->group_end[g] - first;
	char from[48] = "startContent";
	if (n == 0)
		return 0; /* nothing to send (e.g. an empty startContent) */
	if (msg == NULL && (msg = wire_client_msg_new(NULL)) == NULL) {
		set_err(err, errlen, "out of memory for the wire decoder");
		return -1;
	}
	frame.len = 0;
	int w = wire_client_encode_update(&frame, 1, (uint64_t)g + 1, &log->ops[first], n);
	if (w == WIRE_OK)
		w = wire_client_decode(msg, frame.data, frame.len, &wire_default_limits);
	if (w != WIRE_OK) {
		if (g > 0)
			snprintf(from, sizeof from, "txn %zu", g - 1);
		set_err(err, errlen, "%s: %zu op%s through the wire (Update, %zu bytes): %s", from,
			n, n == 1 ? "" : "s", frame.len, wire_strerror(w));
		return -1;
	}
	for (size_t i = 0; i < crdt_batch_count(msg->ops); i++) {
		const crdt_op *op = crdt_batch_get(msg->ops, i);
		int r = crdt_doc_apply(doc, op, NULL, NULL);
		if (r != CRDT_OK) {
			if (g > 0)
				snprintf(from, sizeof from, "txn %zu", g - 1);
			set_err(err, errlen,
				"%s of %" PRIu32 " at (%" PRIu64 ",%" PRIu32
				") from %s, op %zu of its decoded group: crdt_doc_apply "
				"returned %d (%s)",
				op->kind == CRDT_OP_INSERT ? "insert" : "delete", op->len,
				(uint64_t)op->id.replica, op->id.counter, from, i, r,
				crdt_strerror(r));
			return -1;
		}
	}
	return 0;
}

/* ---- replay of patches as local edits ------------------------------------ */

static int apply_patch(crdt_doc *doc, const trace *t, size_t txn, uint32_t k, crdt_batch *out,
		       char *err, size_t errlen)
{
	const trace_patch *p = &t->patches[t->txns[txn].first_patch + k];
	if (p->del) {
		int r = crdt_doc_delete(doc, p->pos, p->del, out);
		if (r < 0) {
			set_err(err, errlen,
				"txn %zu patch %" PRIu32 ": delete %" PRIu32 " at %" PRIu32
				" (document length %zu): %s",
				txn, k, p->del, p->pos, crdt_doc_length(doc), crdt_strerror(r));
			return -1;
		}
	}
	if (p->ins_bytes) {
		int r = crdt_doc_insert(doc, p->pos, trace_patch_text(t, p), p->ins_bytes, out);
		if (r < 0) {
			set_err(err, errlen,
				"txn %zu patch %" PRIu32 ": insert %" PRIu32
				" code point%s at %" PRIu32 " (document length %zu): %s",
				txn, k, p->ins_len, p->ins_len == 1 ? "" : "s", p->pos,
				crdt_doc_length(doc), crdt_strerror(r));
			return -1;
		}
	}
	return 0;
}

static int insert_start(crdt_doc *doc, const trace *t, crdt_batch *out, char *err, size_t errlen)
{
	if (t->start_bytes == 0)
		return 0;
	int r = crdt_doc_insert(doc, 0, t->start, t->start_bytes, out);
	if (r < 0) {
		set_err(err, errlen, "inserting startContent: %s", crdt_strerror(r));
		return -1;
	}
	return 0;
}

/* All transactions of a sequential trace, in order. With `log`, each txn's
 * ops are recorded as a group through the scratch batch. */
static int replay_sequential(crdt_doc *doc, const trace *t, crdt_batch *scratch, oplog *log,
			     char *err, size_t errlen)
{
	for (size_t i = 0; i < t->n_txns; i++) {
		const trace_txn *tx = &t->txns[i];
		crdt_batch *out = NULL;
		if (log != NULL) {
			crdt_batch_clear(scratch);
			out = scratch;
		}
		for (uint32_t k = 0; k < tx->n_patches; k++)
			if (apply_patch(doc, t, i, k, out, err, errlen) != 0)
				return -1;
		if (log != NULL && oplog_add_group(log, scratch) != 0) {
			set_err(err, errlen, "out of memory recording ops");
			return -1;
		}
	}
	return 0;
}

/* Compare a replica's text with endContent. */
static int check_text(const crdt_doc *doc, const trace *t, const char *who, char *err,
		      size_t errlen)
{
	char one;
	size_t need = crdt_doc_text(doc, &one, 0);
	char *buf = malloc(need ? need : 1);
	if (buf == NULL) {
		set_err(err, errlen, "%s: out of memory reading text", who);
		return -1;
	}
	crdt_doc_text(doc, buf, need);
	int r = 0;
	if (need != t->end_bytes || memcmp(buf, t->end, need) != 0) {
		size_t n = need < t->end_bytes ? need : t->end_bytes, i = 0, cp = 0;
		while (i < n && buf[i] == t->end[i])
			cp += ((unsigned char)buf[i++] & 0xc0) != 0x80;
		set_err(err, errlen,
			"%s: text differs from endContent (%zu code points / %zu "
			"bytes, expected %zu / %zu); first difference at code point "
			"%zu",
			who, crdt_doc_length(doc), need, t->end_len, t->end_bytes, cp);
		r = -1;
	}
	free(buf);
	return r;
}

static int check_doc(const crdt_doc *doc, const char *who, char *err, size_t errlen)
{
	int r = crdt_doc_check(doc);
	if (r != CRDT_OK) {
		set_err(err, errlen, "%s: crdt_doc_check failed: %s", who, crdt_strerror(r));
		return -1;
	}
	return 0;
}

/* ---- snapshots ------------------------------------------------------------- */

typedef struct snapshot {
	uint8_t *data;
	size_t len;
	size_t zstd_len;
} snapshot;

static int snapshot_make(const crdt_doc *doc, snapshot *s, char *err, size_t errlen)
{
	memset(s, 0, sizeof *s);
	size_t cap = crdt_doc_encode_bound(doc);
	s->data = malloc(cap ? cap : 1);
	if (s->data == NULL) {
		set_err(err, errlen, "out of memory for a %zu byte snapshot", cap);
		return -1;
	}
	int r = crdt_doc_encode(doc, s->data, cap, &s->len);
	if (r != CRDT_OK) {
		set_err(err, errlen, "crdt_doc_encode: %s", crdt_strerror(r));
		return -1;
	}
	size_t zcap = ZSTD_compressBound(s->len);
	void *z = malloc(zcap);
	if (z == NULL) {
		set_err(err, errlen, "out of memory compressing the snapshot");
		return -1;
	}
	size_t zr = ZSTD_compress(z, zcap, s->data, s->len, ZSTD_LEVEL);
	free(z);
	if (ZSTD_isError(zr)) {
		set_err(err, errlen, "zstd: %s", ZSTD_getErrorName(zr));
		return -1;
	}
	s->zstd_len = zr;
	return 0;
}

/* ---- `trace`: one trace's figures --------------------------------------- */

typedef struct result {
	char name[128];
	bool loaded; /* the trace parsed: kind, agents and counts are known */
	bool ok;
	char err[ERRLEN];
	bool concurrent;
	uint32_t agents;
	size_t txns, edits, final_chars, ops;
	double parse_ms; /* once, not a median */
	double local_ms; /* medians; < 0 means not measured */
	double remote_ms;
	double load_ms;
	long long snapshot_bytes, snapshot_zstd_bytes; /* < 0: not measured */
	long long doc_bytes, doc_peak_bytes, items, tombstone_items;
} result;

static void result_init(result *res, const char *path)
{
	memset(res, 0, sizeof *res);
	trace_name(path, res->name, sizeof res->name);
	res->local_ms = res->remote_ms = res->load_ms = res->parse_ms = -1;
	res->snapshot_bytes = res->snapshot_zstd_bytes = -1;
	res->doc_bytes = res->doc_peak_bytes = res->items = res->tombstone_items = -1;
}

/* Stats of the final document, its snapshot sizes and decode time. */
static int measure_final(const crdt_doc *doc, const trace *t, unsigned runs, crdt_replica decode_as,
			 result *res)
{
	crdt_stats st;
	crdt_doc_stats(doc, &st);
	res->doc_bytes = (long long)crdt_doc_memory(doc);
	res->items = (long long)st.items;
	res->tombstone_items = (long long)st.tombstone_items;

	snapshot s;
	if (snapshot_make(doc, &s, res->err, sizeof res->err) != 0) {
		free(s.data);
		return -1;
	}
	res->snapshot_bytes = (long long)s.len;
	res->snapshot_zstd_bytes = (long long)s.zstd_len;

	double *times = calloc(runs, sizeof *times);
	int rc = times ? 0 : -1;
	if (times == NULL)
		set_err(res->err, sizeof res->err, "out of memory");
	for (unsigned r = 0; rc == 0 && r < runs; r++) {
		int status = CRDT_OK;
		double t0 = now_ms();
		crdt_doc *d = crdt_doc_decode(s.data, s.len, decode_as, NULL, &status);
		times[r] = now_ms() - t0;
		if (d == NULL) {
			set_err(res->err, sizeof res->err,
				"crdt_doc_decode of our own %zu byte snapshot: %s", s.len,
				crdt_strerror(status));
			rc = -1;
			break;
		}
		if (check_text(d, t, "decoded snapshot", res->err, sizeof res->err) != 0 ||
		    check_doc(d, "decoded snapshot", res->err, sizeof res->err) != 0)
			rc = -1;
		crdt_doc_free(d);
	}
	if (rc == 0)
		res->load_ms = median(times, runs);
	free(times);
	/* untimed: loaded as the document's own replica, it encodes to the
	 * very same snapshot (the loader packs the tree its own way) */
	crdt_doc *same =
		rc == 0 ? crdt_doc_decode(s.data, s.len, crdt_doc_replica(doc), NULL, NULL) : NULL;
	if (rc == 0) {
		size_t cap = same ? crdt_doc_encode_bound(same) : 0, len = 0;
		uint8_t *again = cap ? malloc(cap) : NULL;
		if (!again || crdt_doc_encode(same, again, cap, &len) != CRDT_OK || len != s.len ||
		    memcmp(again, s.data, len) != 0) {
			set_err(res->err, sizeof res->err,
				"the decoded snapshot does not encode to the same bytes");
			rc = -1;
		}
		free(again);
	}
	crdt_doc_free(same);
	free(s.data);
	return rc;
}

/* Remote replay: a fresh replica receives every group in order. */
static int measure_remote(const trace *t, const oplog *log, crdt_replica replica, unsigned runs,
			  double *times, result *res)
{
	for (unsigned r = 0; r < runs; r++) {
		crdt_doc *doc = crdt_doc_new(replica, NULL);
		if (doc == NULL) {
			set_err(res->err, sizeof res->err, "out of memory");
			return -1;
		}
		int rc = deliver_group(doc, log, 0, res->err, sizeof res->err);
		double t0 = now_ms();
		for (size_t g = 1; rc == 0 && g < log->n_groups; g++)
			rc = deliver_group(doc, log, g, res->err, sizeof res->err);
		times[r] = now_ms() - t0;
		if (rc != 0)
			prefix_err(res->err, sizeof res->err, "remote replay");
		if (rc == 0)
			rc = check_text(doc, t, "remote replica", res->err, sizeof res->err);
		if (rc == 0 && r == 0)
			rc = check_doc(doc, "remote replica", res->err, sizeof res->err);
		crdt_doc_free(doc);
		if (rc != 0)
			return -1;
	}
	res->remote_ms = median(times, runs);
	return 0;
}

static int bench_sequential(const trace *t, unsigned runs, result *res)
{
	char *err = res->err;
	size_t errlen = sizeof res->err;
	double *times = calloc(runs, sizeof *times);
	crdt_batch *scratch = crdt_batch_new(NULL);
	oplog log = {0};
	crdt_doc *final = NULL, *doc = NULL;
	int rc = -1;
	if (times == NULL || scratch == NULL) {
		set_err(err, errlen, "out of memory");
		goto out;
	}

	/* Untimed: record every txn's ops, and the peak memory of the doc. */
	count_alloc counter = {0, 0};
	crdt_allocator alloc = {count_alloc_fn, count_release_fn, &counter};
	crdt_options opts = {.allocator = &alloc};
	doc = crdt_doc_new(1, &opts);
	if (doc == NULL) {
		set_err(err, errlen, "crdt_doc_new failed");
		goto out;
	}
	crdt_batch_clear(scratch);
	if (insert_start(doc, t, scratch, err, errlen) != 0)
		goto out;
	if (oplog_add_group(&log, scratch) != 0) {
		set_err(err, errlen, "out of memory recording ops");
		goto out;
	}
	if (replay_sequential(doc, t, scratch, &log, err, errlen) != 0 ||
	    check_text(doc, t, "local replica", err, errlen) != 0 ||
	    check_doc(doc, "local replica", err, errlen) != 0)
		goto out;
	res->doc_peak_bytes = (long long)counter.peak;
	res->ops = log.n_ops;
	crdt_doc_free(doc);
	doc = NULL;

	/* Timed local replays, no ops recorded; the last doc is kept. */
	for (unsigned r = 0; r < runs; r++) {
		doc = crdt_doc_new(1, NULL);
		if (doc == NULL) {
			set_err(err, errlen, "crdt_doc_new failed");
			goto out;
		}
		if (insert_start(doc, t, NULL, err, errlen) != 0)
			goto out;
		double t0 = now_ms();
		int ok = replay_sequential(doc, t, NULL, NULL, err, errlen);
		times[r] = now_ms() - t0;
		if (ok != 0 || check_text(doc, t, "local replica", err, errlen) != 0)
			goto out;
		crdt_doc_free(final);
		final = doc;
		doc = NULL;
	}
	res->local_ms = median(times, runs);

	if (measure_remote(t, &log, 2, runs, times, res) != 0)
		goto out;
	if (measure_final(final, t, runs, 3, res) != 0)
		goto out;
	rc = 0;
out:
	crdt_doc_free(doc);
	crdt_doc_free(final);
	crdt_batch_free(scratch);
	oplog_free(&log);
	free(times);
	return rc;
}

/*
 * Causal bookkeeping of a concurrent trace, computed once. A version is a
 * vector of per-agent transaction counts: "the first n txns of agent b".
 * That describes a set of txns exactly because each agent's txns are
 * totally ordered and each one descends from its predecessor (checked).
 */
typedef struct causal {
	uint32_t agents;
	uint32_t *index;     /* per txn: its position among its agent's txns */
	uint32_t *by_agent;  /* txn indices of agent b at by_agent + agent_first[b] */
	size_t *agent_first; /* agents + 1 entries */
	uint32_t *vv_after;  /* per txn: the version once it is applied (agents wide) */
} causal;

static void causal_free(causal *c)
{
	free(c->index);
	free(c->by_agent);
	free(c->agent_first);
	free(c->vv_after);
	memset(c, 0, sizeof *c);
}

static int causal_build(const trace *t, causal *c, char *err, size_t errlen)
{
	size_t A = t->num_agents, n = t->n_txns;
	memset(c, 0, sizeof *c);
	c->agents = (uint32_t)A;
	if (A == 0 || (n && A > SIZE_MAX / sizeof(uint32_t) / n)) {
		set_err(err, errlen, "too many agents (%zu) for %zu txns", A, n);
		return -1;
	}
	c->index = malloc((n ? n : 1) * sizeof *c->index);
	c->by_agent = malloc((n ? n : 1) * sizeof *c->by_agent);
	c->agent_first = calloc(A + 1, sizeof *c->agent_first);
	c->vv_after = calloc(n * A > 0 ? n * A : 1, sizeof *c->vv_after);
	if (!c->index || !c->by_agent || !c->agent_first || !c->vv_after) {
		set_err(err, errlen, "out of memory for %zu txns x %zu agents", n, A);
		causal_free(c);
		return -1;
	}
	for (size_t i = 0; i < n; i++)
		c->agent_first[t->txns[i].agent + 1]++;
	for (size_t b = 0; b < A; b++)
		c->agent_first[b + 1] += c->agent_first[b];
	size_t *fill = calloc(A, sizeof *fill);
	if (fill == NULL) {
		set_err(err, errlen, "out of memory");
		causal_free(c);
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		uint32_t a = (uint32_t)t->txns[i].agent;
		c->index[i] = (uint32_t)fill[a];
		c->by_agent[c->agent_first[a] + fill[a]++] = (uint32_t)i;
		uint32_t *row = c->vv_after + i * A;
		const trace_txn *tx = &t->txns[i];
		for (uint32_t k = 0; k < tx->n_parents; k++) {
			const uint32_t *prow =
				c->vv_after + (size_t)t->parents[tx->first_parent + k] * A;
			for (size_t b = 0; b < A; b++)
				if (prow[b] > row[b])
					row[b] = prow[b];
		}
		if (row[a] != c->index[i]) {
			set_err(err, errlen,
				"txn %zu (agent %" PRIu32 ") does not descend from that "
				"agent's previous txn, so no replica can make it",
				i, a);
			free(fill);
			causal_free(c);
			return -1;
		}
		row[a] = c->index[i] + 1;
	}
	free(fill);
	return 0;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return (x > y) - (x < y);
}

/*
 * Bring replica `a` (whose version is have[0..A)) up to version `want` by
 * delivering the missing txns' groups in trace order, which is causal order.
 * `tmp` has room for n_txns entries.
 */
static int merge_into(crdt_doc *doc, uint32_t *have, const uint32_t *want, const causal *c,
		      const oplog *log, uint32_t *tmp, char *err, size_t errlen)
{
	size_t m = 0;
	for (uint32_t b = 0; b < c->agents; b++) {
		for (uint32_t k = have[b]; k < want[b]; k++)
			tmp[m++] = c->by_agent[c->agent_first[b] + k];
		if (want[b] > have[b])
			have[b] = want[b];
	}
	if (m > 1)
		qsort(tmp, m, sizeof *tmp, cmp_u32);
	for (size_t i = 0; i < m; i++)
		if (deliver_group(doc, log, (size_t)tmp[i] + 1, err, errlen) != 0)
			return -1;
	return 0;
}

/* Replicas of a concurrent replay and their versions. */
typedef struct replicas {
	crdt_doc **docs;
	uint32_t *have; /* agents x agents */
	uint32_t *want;
	uint32_t *tmp;
} replicas;

static void replicas_free(replicas *rs, uint32_t agents)
{
	if (rs->docs)
		for (uint32_t a = 0; a < agents; a++)
			crdt_doc_free(rs->docs[a]);
	free(rs->docs);
	free(rs->have);
	free(rs->want);
	free(rs->tmp);
	memset(rs, 0, sizeof *rs);
}

/* Fresh replicas for every agent (agent 0's with opts0, which may be NULL);
 * the startContent group is recorded into `log` (reset) by a setup replica
 * and delivered to each. Not timed. */
static int replicas_new(replicas *rs, const trace *t, const crdt_options *opts0, oplog *log,
			crdt_batch *scratch, char *err, size_t errlen)
{
	uint32_t A = t->num_agents;
	memset(rs, 0, sizeof *rs);
	rs->docs = calloc(A, sizeof *rs->docs);
	rs->have = calloc((size_t)A * A, sizeof *rs->have);
	rs->want = calloc(A, sizeof *rs->want);
	rs->tmp = calloc(t->n_txns ? t->n_txns : 1, sizeof *rs->tmp);
	if (!rs->docs || !rs->have || !rs->want || !rs->tmp)
		goto nomem;
	oplog_reset(log);
	crdt_batch_clear(scratch);
	if (t->start_bytes) {
		crdt_doc *setup = crdt_doc_new((crdt_replica)A + 1, NULL);
		if (setup == NULL)
			goto nomem;
		int r = insert_start(setup, t, scratch, err, errlen);
		crdt_doc_free(setup);
		if (r != 0)
			return -1;
	}
	if (oplog_add_group(log, scratch) != 0)
		goto nomem;
	for (uint32_t a = 0; a < A; a++) {
		rs->docs[a] = crdt_doc_new((crdt_replica)a + 1, a == 0 ? opts0 : NULL);
		if (rs->docs[a] == NULL)
			goto nomem;
		if (deliver_group(rs->docs[a], log, 0, err, errlen) != 0)
			return -1;
	}
	return 0;
nomem:
	set_err(err, errlen, "out of memory creating replicas");
	return -1;
}

/*
 * The concurrent replay: for each txn, bring its agent's replica to exactly
 * the merge of the txn's parents, apply the patches as local edits and
 * record the ops; at the end merge everything everywhere.
 */
static int replay_concurrent(replicas *rs, const trace *t, const causal *c, oplog *log,
			     crdt_batch *scratch, char *err, size_t errlen)
{
	uint32_t A = c->agents;
	for (size_t i = 0; i < t->n_txns; i++) {
		const trace_txn *tx = &t->txns[i];
		uint32_t a = (uint32_t)tx->agent;
		crdt_doc *doc = rs->docs[a];
		memcpy(rs->want, c->vv_after + i * A, A * sizeof *rs->want);
		rs->want[a]--; /* the parents' merge: this txn not yet included */
		if (merge_into(doc, rs->have + (size_t)a * A, rs->want, c, log, rs->tmp, err,
			       errlen) != 0) {
			prefix_err(err, errlen, "txn %zu (agent %" PRIu32 "), merging its parents",
				   i, a);
			return -1;
		}
		crdt_batch_clear(scratch);
		for (uint32_t k = 0; k < tx->n_patches; k++)
			if (apply_patch(doc, t, i, k, scratch, err, errlen) != 0)
				return -1;
		if (oplog_add_group(log, scratch) != 0) {
			set_err(err, errlen, "out of memory recording ops");
			return -1;
		}
		rs->have[(size_t)a * A + a]++;
	}
	/* Converge: every replica receives everything it lacks. */
	for (uint32_t b = 0; b < A; b++)
		rs->want[b] = (uint32_t)(c->agent_first[b + 1] - c->agent_first[b]);
	for (uint32_t a = 0; a < A; a++)
		if (merge_into(rs->docs[a], rs->have + (size_t)a * A, rs->want, c, log, rs->tmp,
			       err, errlen) != 0) {
			prefix_err(err, errlen, "final merge into agent %" PRIu32, a);
			return -1;
		}
	return 0;
}

static int check_replicas(const replicas *rs, const trace *t, char *err, size_t errlen)
{
	for (uint32_t a = 0; a < t->num_agents; a++) {
		char who[64];
		snprintf(who, sizeof who, "agent %" PRIu32 " after the final merge", a);
		if (check_text(rs->docs[a], t, who, err, errlen) != 0)
			return -1;
	}
	return 0;
}

static int bench_concurrent(const trace *t, unsigned runs, result *res)
{
	char *err = res->err;
	size_t errlen = sizeof res->err;
	uint32_t A = t->num_agents;
	double *times = calloc(runs, sizeof *times);
	crdt_batch *scratch = crdt_batch_new(NULL);
	oplog log = {0}, run_log = {0};
	causal c = {0};
	replicas rs = {0};
	crdt_doc *final = NULL;
	int rc = -1;
	if (times == NULL || scratch == NULL) {
		set_err(err, errlen, "out of memory");
		goto out;
	}
	if (causal_build(t, &c, err, errlen) != 0)
		goto out;

	/* Untimed first pass: agent 0's replica counts its memory. */
	count_alloc counter = {0, 0};
	crdt_allocator alloc = {count_alloc_fn, count_release_fn, &counter};
	crdt_options opts = {.allocator = &alloc};
	if (replicas_new(&rs, t, &opts, &log, scratch, err, errlen) != 0)
		goto out;
	if (replay_concurrent(&rs, t, &c, &log, scratch, err, errlen) != 0 ||
	    check_replicas(&rs, t, err, errlen) != 0)
		goto out;
	for (uint32_t a = 0; a < A; a++) {
		char who[32];
		snprintf(who, sizeof who, "agent %" PRIu32, a);
		if (check_doc(rs.docs[a], who, err, errlen) != 0)
			goto out;
	}
	res->doc_peak_bytes = (long long)counter.peak;
	res->ops = log.n_ops;
	replicas_free(&rs, A);

	/* Timed: the whole replay, recording included (merges need the ops). */
	for (unsigned r = 0; r < runs; r++) {
		if (replicas_new(&rs, t, NULL, &run_log, scratch, err, errlen) != 0)
			goto out;
		double t0 = now_ms();
		int ok = replay_concurrent(&rs, t, &c, &run_log, scratch, err, errlen);
		times[r] = now_ms() - t0;
		if (ok != 0 || check_replicas(&rs, t, err, errlen) != 0)
			goto out;
		crdt_doc_free(final);
		final = rs.docs[0];
		rs.docs[0] = NULL;
		replicas_free(&rs, A);
	}
	res->local_ms = median(times, runs);

	if (measure_remote(t, &log, (crdt_replica)A + 2, runs, times, res) != 0)
		goto out;
	if (measure_final(final, t, runs, (crdt_replica)A + 3, res) != 0)
		goto out;
	rc = 0;
out:
	replicas_free(&rs, A);
	crdt_doc_free(final);
	crdt_batch_free(scratch);
	oplog_free(&log);
	oplog_free(&run_log);
	causal_free(&c);
	free(times);
	return rc;
}

static void print_ms(FILE *f, const char *key, double v)
{
	if (v < 0)
		fprintf(f, ",\"%s\":null", key);
	else
		fprintf(f, ",\"%s\":%.3f", key, v);
}

static void print_num(FILE *f, const char *key, long long v)
{
	if (v < 0)
		fprintf(f, ",\"%s\":null", key);
	else
		fprintf(f, ",\"%s\":%lld", key, v);
}

static void print_result_json(const result *r, const char *path, unsigned runs)
{
	FILE *f = stdout;
	fputs("{\"trace\":", f);
	json_str(f, r->name);
	fputs(",\"file\":", f);
	json_str(f, path);
	fprintf(f, ",\"ok\":%s,\"runs\":%u", r->ok ? "true" : "false", runs);
	if (r->loaded) {
		fprintf(f, ",\"kind\":\"%s\",\"agents\":%" PRIu32,
			r->concurrent ? "concurrent" : "sequential", r->agents);
		fprintf(f, ",\"txns\":%zu,\"edits\":%zu,\"final_chars\":%zu", r->txns, r->edits,
			r->final_chars);
	} else {
		fputs(",\"kind\":null,\"agents\":null,\"txns\":null,\"edits\":null,"
		      "\"final_chars\":null",
		      f);
	}
	print_num(f, "ops", r->ops ? (long long)r->ops : -1);
	print_ms(f, "parse_ms", r->parse_ms);
	print_ms(f, "local_ms", r->local_ms);
	print_ms(f, "remote_ms", r->remote_ms);
	print_ms(f, "load_ms", r->load_ms);
	print_num(f, "snapshot_bytes", r->snapshot_bytes);
	print_num(f, "snapshot_zstd_bytes", r->snapshot_zstd_bytes);
	print_num(f, "doc_bytes", r->doc_bytes);
	print_num(f, "doc_peak_bytes", r->doc_peak_bytes);
	print_num(f, "items", r->items);
	print_num(f, "tombstone_items", r->tombstone_items);
	if (r->local_ms > 0)
		fprintf(f, ",\"local_edits_per_s\":%.0f", r->edits / r->local_ms * 1e3);
	else
		fputs(",\"local_edits_per_s\":null", f);
	fputs(",\"error\":", f);
	if (r->ok)
		fputs("null", f);
	else
		json_str(f, r->err);
	fputs("}\n", f);
}

static void print_result_text(const result *r)
{
	char a[32], b[32], c[32], d[32];
	if (!r->ok) {
		printf("%-16s FAIL  %s\n", r->name, r->err);
		return;
	}
	printf("%-16s ok  %s edits in %zu txns (%s, %" PRIu32 " agent%s)  "
	       "local %.2f ms (%.2f M edits/s)  remote %.2f ms  "
	       "snapshot %s B, zstd %s B  load %.2f ms  doc %s B (peak %.2f MiB)  "
	       "items %lld (tombstones %lld)\n",
	       r->name, grouped(a, r->edits), r->txns, r->concurrent ? "concurrent" : "sequential",
	       r->agents, r->agents == 1 ? "" : "s", r->local_ms, r->edits / r->local_ms / 1e3,
	       r->remote_ms, grouped(b, (uint64_t)r->snapshot_bytes),
	       grouped(c, (uint64_t)r->snapshot_zstd_bytes), r->load_ms,
	       grouped(d, (uint64_t)r->doc_bytes), r->doc_peak_bytes / 1048576.0, r->items,
	       r->tombstone_items);
}

static void usage_trace(FILE *f)
{
	fputs("usage: quire-bench trace [--json] [--runs N] FILE.json.gz ...\n"
	      "  Replay each editing trace: local edits, remote ops on a fresh\n"
	      "  replica, snapshot size (plain and zstd -3) and decode time.\n"
	      "  Times are medians over N runs (default 5). Exit status 1 if any\n"
	      "  trace fails to load or to reproduce its endContent.\n",
	      f);
}

static int cmd_trace(int argc, char **argv)
{
	bool json = false, options = true;
	unsigned long runs = 5;
	int n_files = 0;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!options || a[0] != '-' || a[1] == '\0') {
			argv[1 + n_files++] = argv[i]; /* compact the file names */
		} else if (strcmp(a, "--json") == 0) {
			json = true;
		} else if (strcmp(a, "--runs") == 0 || strncmp(a, "--runs=", 7) == 0) {
			const char *v = a[6] == '=' ? a + 7 : (i + 1 < argc ? argv[++i] : "");
			if (parse_count("--runs", v, 1000, &runs) != 0)
				return 2;
		} else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			usage_trace(stdout);
			return 0;
		} else if (strcmp(a, "--") == 0) {
			options = false;
		} else {
			fprintf(stderr, "quire-bench trace: unknown option '%s'\n", a);
			usage_trace(stderr);
			return 2;
		}
	}
	if (n_files == 0) {
		usage_trace(stderr);
		return 2;
	}
	int status = 0;
	for (int i = 1; i <= n_files; i++) {
		result res;
		result_init(&res, argv[i]);
		trace t;
		double t0 = now_ms();
		if (trace_load(argv[i], &t, res.err, sizeof res.err) == 0) {
			res.parse_ms = now_ms() - t0;
			res.loaded = true;
			res.concurrent = t.concurrent;
			res.agents = t.num_agents;
			res.txns = t.n_txns;
			res.edits = t.n_patches;
			res.final_chars = t.end_len;
			int r = t.concurrent ? bench_concurrent(&t, (unsigned)runs, &res)
					     : bench_sequential(&t, (unsigned)runs, &res);
			res.ok = r == 0;
			trace_free(&t);
		}
		if (!res.ok)
			status = 1;
		if (json)
			print_result_json(&res, argv[i], (unsigned)runs);
		else
			print_result_text(&res);
		fflush(stdout);
	}
	return status;
}

/* ---- `gc`: typing and deleting the same trace over and over ------------- */

typedef struct gc_row {
	size_t live;
	size_t memory;
	size_t snapshot, zstd;
	crdt_stats st;
} gc_row;

static int gc_measure(const crdt_doc *doc, gc_row *row, char *err, size_t errlen)
{
	row->live = crdt_doc_length(doc);
	row->memory = crdt_doc_memory(doc);
	crdt_doc_stats(doc, &row->st);
	snapshot s;
	int r = snapshot_make(doc, &s, err, errlen);
	row->snapshot = s.len;
	row->zstd = s.zstd_len;
	free(s.data);
	return r;
}

static void gc_print(bool json, const char *name, const char *phase, unsigned round, double ms,
		     const gc_row *row)
{
	if (json) {
		fputs("{\"trace\":", stdout);
		json_str(stdout, name);
		printf(",\"phase\":\"%s\",\"round\":%u,\"ms\":%.3f,"
		       "\"live_chars\":%zu,\"memory_bytes\":%zu,"
		       "\"snapshot_bytes\":%zu,\"snapshot_zstd_bytes\":%zu,"
		       "\"items\":%zu,\"tombstone_items\":%zu,\"units\":%zu,"
		       "\"deleted_units\":%zu}\n",
		       phase, round, ms, row->live, row->memory, row->snapshot, row->zstd,
		       row->st.items, row->st.tombstone_items, row->st.units,
		       row->st.deleted_units);
		return;
	}
	char a[32], b[32], c[32], d[32], e[32], f[32];
	printf("%-10s %5u %9.2f %10s %12s %12s %10s %9s %11s\n", phase, round, ms,
	       grouped(a, row->live), grouped(b, row->memory), grouped(c, row->snapshot),
	       grouped(d, row->zstd), grouped(e, row->st.items),
	       grouped(f, row->st.tombstone_items));
}

static void usage_gc(FILE *f)
{
	fputs("usage: quire-bench gc [--json] [--rounds N] FILE.json.gz\n"
	      "  On one document, N times (default 10): replay the sequential\n"
	      "  trace as local edits, then delete the whole text. Prints memory,\n"
	      "  snapshot sizes and item counts after each step, and for\n"
	      "  comparison a fresh document holding the trace's final text.\n"
	      "  Column ms is the time of that step (the replay or the delete).\n",
	      f);
}

static int cmd_gc(int argc, char **argv)
{
	bool json = false;
	unsigned long rounds = 10;
	const char *path = NULL;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--json") == 0) {
			json = true;
		} else if (strcmp(a, "--rounds") == 0 || strncmp(a, "--rounds=", 9) == 0) {
			const char *v = a[8] == '=' ? a + 9 : (i + 1 < argc ? argv[++i] : "");
			if (parse_count("--rounds", v, 100000, &rounds) != 0)
				return 2;
		} else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			usage_gc(stdout);
			return 0;
		} else if (a[0] == '-' && a[1] != '\0') {
			fprintf(stderr, "quire-bench gc: unknown option '%s'\n", a);
			usage_gc(stderr);
			return 2;
		} else if (path == NULL) {
			path = a;
		} else {
			fprintf(stderr, "quire-bench gc: one trace file only\n");
			return 2;
		}
	}
	if (path == NULL) {
		usage_gc(stderr);
		return 2;
	}
	char name[128], err[ERRLEN];
	trace_name(path, name, sizeof name);
	trace t;
	if (trace_load(path, &t, err, sizeof err) != 0) {
		fprintf(stderr, "quire-bench gc: %s\n", err);
		return 1;
	}
	int status = 1;
	crdt_doc *doc = NULL, *ref = NULL;
	if (t.concurrent) {
		fprintf(stderr,
			"quire-bench gc: %s is a concurrent trace; gc wants a "
			"sequential one\n",
			path);
		goto out;
	}
	doc = crdt_doc_new(1, NULL);
	if (doc == NULL) {
		fprintf(stderr, "quire-bench gc: out of memory\n");
		goto out;
	}
	if (!json) {
		printf("gc %s: %lu rounds of (replay %zu edits, delete all)\n", name, rounds,
		       t.n_patches);
		printf("%-10s %5s %9s %10s %12s %12s %10s %9s %11s\n", "phase", "round", "ms",
		       "live", "memory_B", "snapshot_B", "zstd_B", "items", "tombstones");
	}
	uint64_t inserted = 0;
	gc_row row;
	for (unsigned r = 1; r <= rounds; r++) {
		double t0 = now_ms();
		if (insert_start(doc, &t, NULL, err, sizeof err) != 0 ||
		    replay_sequential(doc, &t, NULL, NULL, err, sizeof err) != 0)
			goto fail;
		double ms = now_ms() - t0;
		inserted += t.start_len + t.inserted_len;
		if (check_text(doc, &t, "after replay", err, sizeof err) != 0 ||
		    gc_measure(doc, &row, err, sizeof err) != 0)
			goto fail;
		gc_print(json, name, "typed", r, ms, &row);
		t0 = now_ms();
		int d = crdt_doc_delete(doc, 0, crdt_doc_length(doc), NULL);
		ms = now_ms() - t0;
		if (d < 0) {
			snprintf(err, sizeof err, "deleting everything: %s", crdt_strerror(d));
			goto fail;
		}
		if (check_doc(doc, "after delete-all", err, sizeof err) != 0 ||
		    gc_measure(doc, &row, err, sizeof err) != 0)
			goto fail;
		gc_print(json, name, "deleted", r, ms, &row);
	}
	gc_row last = row;

	ref = crdt_doc_new(1, NULL);
	if (ref == NULL) {
		snprintf(err, sizeof err, "out of memory");
		goto fail;
	}
	double t0 = now_ms();
	if (insert_start(ref, &t, NULL, err, sizeof err) != 0 ||
	    replay_sequential(ref, &t, NULL, NULL, err, sizeof err) != 0)
		goto fail;
	double ms = now_ms() - t0;
	if (gc_measure(ref, &row, err, sizeof err) != 0)
		goto fail;
	gc_print(json, name, "reference", 1, ms, &row);

	if (json) {
		fputs("{\"trace\":", stdout);
		json_str(stdout, name);
		printf(",\"phase\":\"summary\",\"rounds\":%lu,"
		       "\"inserted_code_points\":%" PRIu64 ",\"live_chars\":%zu,"
		       "\"memory_bytes\":%zu,\"reference_memory_bytes\":%zu}\n",
		       rounds, inserted, last.live, last.memory, row.memory);
	} else {
		char a[32], b[32], c[32];
		printf("code points inserted in all: %s; live now: %zu; memory %s B "
		       "after %lu rounds vs %s B for one copy of the final text\n",
		       grouped(a, inserted), last.live, grouped(b, last.memory), rounds,
		       grouped(c, row.memory));
	}
	status = 0;
	goto out;
fail:
	fprintf(stderr, "quire-bench gc: %s: %s\n", name, err);
out:
	crdt_doc_free(doc);
	crdt_doc_free(ref);
	trace_free(&t);
	return status;
}

/* ---- dispatch ------------------------------------------------------------ */

typedef struct bench_cmd {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
} bench_cmd;

int cmd_store(int argc, char **argv); /* store_bench.c */

static const bench_cmd commands[] = {
	{"trace", cmd_trace, "replay editing traces: local, remote, snapshot, load"},
	{"gc", cmd_gc, "type and delete a trace repeatedly; memory stays bounded"},
	{"store", cmd_store, "storage: group-commit throughput and load time"},
};

static void usage(FILE *f)
{
	fputs("usage: quire-bench COMMAND [OPTIONS] ...\n\ncommands:\n", f);
	for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
		fprintf(f, "  %-8s %s\n", commands[i].name, commands[i].summary);
	fputs("\n'quire-bench COMMAND --help' describes one command.\n", f);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		usage(stdout);
		return 0;
	}
	for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
		if (strcmp(argv[1], commands[i].name) == 0)
			return commands[i].run(argc - 1, argv + 1);
	fprintf(stderr, "quire-bench: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return 2;
}
