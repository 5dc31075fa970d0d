/*
 * modes.h - quire-load's subcommands, each a function of the parsed
 * options returning the process exit status (0 ok, 1 failure found or the
 * run could not be completed, 2 usage), plus the helpers they share:
 * opening many sessions at a bounded pace, and typing a trace's edits.
 */
#ifndef QL_MODES_H
#define QL_MODES_H

#include <stddef.h>
#include <stdint.h>

#include "client.h"
#include "net.h"
#include "opts.h"
#include "trace.h"

int ql_mode_idle(const ql_opts *o);
int ql_mode_fanout(const ql_opts *o, int rate_mode);
int ql_mode_docs(const ql_opts *o);
int ql_mode_soak(const ql_opts *o);
int ql_mode_catchup(const ql_opts *o);

typedef void (*ql_progress_fn)(void *ctx, size_t welcomed, int64_t now_ns);

/* Connect cs[0..n), keeping at most `batch` connections between connect
 * and Welcome, until every one is welcomed or failed or `deadline_ns`
 * passes. `fn` (may be NULL) is told each time the welcomed count grows.
 * Returns the number welcomed; *failed gets the number that closed before
 * their Welcome (the first reason is printed). */
size_t ql_connect_all(ql_net *net, ql_client **cs, size_t n, size_t batch, int64_t deadline_ns,
		      ql_progress_fn fn, void *ctx, size_t *failed);

/* Load the trace at path (mode_fanout.c), which one writer replays: 0, or
 * -1 when it cannot be read or is concurrent (said on stderr). */
int ql_trace_load_sequential(const char *path, trace *t);

/* Make trace patch p on a writer's document (mode_fanout.c): its ops in a
 * new batch, *units their op units; NULL when it does not apply or out of
 * memory. */
crdt_batch *ql_trace_edit(crdt_doc *doc, const trace *t, const trace_patch *p, uint64_t *units);

/* A random non-zero replica id. */
uint64_t ql_replica_id(uint64_t *rng);

#endif
