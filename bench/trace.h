/*
 * trace.h - loader for the editing-traces format (gzipped JSON) used by the
 * benchmarks in bench/.
 *
 * A trace is a recorded editing history: a list of transactions, each a list
 * of patches [pos, numDeleted, "inserted"] whose positions are Unicode
 * code-point offsets. A sequential trace applies every patch in order to one
 * document, starting from startContent. A concurrent trace ("kind":
 * "concurrent") gives each transaction an agent and the indices of its parent
 * transactions; its patches apply to the merge of the parents' states. In
 * both kinds the final text must equal endContent. The loader only checks
 * the shape of the file (and that parents point backwards and agents are in
 * range); whether positions are in range is for the replay to find out.
 *
 * Everything trace_load returns lives in a few heap blocks owned by the
 * trace: all strings (startContent, endContent, every inserted text) are in
 * one arena, patches, transactions and parent indices in flat arrays.
 */
#ifndef QUIRE_BENCH_TRACE_H
#define QUIRE_BENCH_TRACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One patch: at code point `pos`, delete `del` code points, then insert
 * the UTF-8 text at trace.text + ins_off (ins_bytes bytes, ins_len code
 * points; 0 and 0 when nothing is inserted). */
typedef struct trace_patch {
	uint32_t pos;
	uint32_t del;
	uint32_t ins_off;
	uint32_t ins_bytes;
	uint32_t ins_len;
} trace_patch;

/* One transaction: patches[first_patch .. first_patch + n_patches) and, for
 * concurrent traces, parents[first_parent .. first_parent + n_parents),
 * indices of earlier transactions. `agent` is 0 when the file has none. */
typedef struct trace_txn {
	int32_t agent;
	uint32_t first_patch;
	uint32_t n_patches;
	uint32_t first_parent;
	uint32_t n_parents;
} trace_txn;

/* A loaded trace. All fields are read-only for callers. */
typedef struct trace {
	bool concurrent;     /* "kind": "concurrent" */
	uint32_t num_agents; /* numAgents, or 1 + the largest agent; >= 1 */

	/* startContent ("" when absent) and endContent, UTF-8, each followed
	 * by a NUL that is not counted; both point into `text`. */
	const char *start;
	size_t start_bytes;
	size_t start_len; /* code points */
	const char *end;
	size_t end_bytes;
	size_t end_len; /* code points */

	char *text; /* the arena holding every string */
	size_t text_bytes;

	trace_patch *patches;
	size_t n_patches;
	trace_txn *txns;
	size_t n_txns;
	uint32_t *parents;
	size_t n_parents;

	/* Sums over all patches, handy for reports. */
	uint64_t inserted_len; /* code points inserted */
	uint64_t deleted_len;  /* code points deleted */
} trace;

/*
 * Read and parse the gzipped JSON trace at `path` into *out.
 *
 * Returns 0 on success: *out holds the trace and must be released with
 * trace_free. Returns -1 on failure with *out zeroed (trace_free on it is
 * harmless) and a one-line message in err (if errlen > 0) naming the
 * problem: the file cannot be read, is not gzip or is damaged or truncated,
 * is not valid JSON (with the byte offset), or is JSON of the wrong shape
 * (with the path of the offending value, e.g. "txns[12].patches[0][1]").
 *
 * Accepted: strict RFC 8259 JSON (string escapes including \uXXXX and
 * surrogate pairs, raw UTF-8 which must be valid); keys other than
 * startContent, endContent, kind, numAgents, txns and, inside a txn,
 * patches, parents and agent are skipped whatever their value. Counts and
 * offsets must fit in 32 bits.
 */
int trace_load(const char *path, trace *out, char *err, size_t errlen);

/*
 * Parse an already decompressed JSON document (len bytes, need not be NUL
 * terminated) into *out, with the same contract as trace_load. Exposed for
 * tests and for tools that have the JSON in memory.
 */
int trace_parse(const char *json, size_t len, trace *out, char *err, size_t errlen);

/* Release everything a trace holds and zero it. NULL is allowed. */
void trace_free(trace *t);

/* The inserted text of patch p of trace t (not NUL-terminated). */
static inline const char *trace_patch_text(const trace *t, const trace_patch *p)
{
	return t->text + p->ins_off;
}

#endif /* QUIRE_BENCH_TRACE_H */
