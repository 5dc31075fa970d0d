/*
 * opts.h - the command line of quire-load: one struct for every mode's
 * flags (each mode reads the ones it documents; bench/README.md lists
 * them), the parser, and the shared defaults.
 */
#ifndef QL_OPTS_H
#define QL_OPTS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct ql_opts {
	const char *mode;
	uint16_t port; /* from --url ws://127.0.0.1:PORT/sync or --port */
	long conns, docs, batch, observers, edits, window, writers_per_doc, n_src;
	long rounds, pre, gap, pause_ms; /* catchup */
	double hold, rate, seconds, timeout, edit_rate, drop_every, sample_every, max_growth,
		rss_per_edit;
	pid_t server_pid;
	const char *trace, *json, *csv, *prefix;
	uint64_t seed;
} ql_opts;

/* Parse argv[1..] (argv[1] is the mode) into o with defaults; prints the
 * problem and returns -1 on a bad command line. */
int ql_opts_parse(ql_opts *o, int argc, char **argv);

void ql_usage(void);

#endif
