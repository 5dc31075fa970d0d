/*
 * main.c - quire-load: a load generator for quire-server (bench/README.md,
 * "quire-load"). Dispatches to the mode named by the first argument. Exit
 * status: 0 ok, 1 the run failed or found a problem, 2 bad command line.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "modes.h"
#include "opts.h"

int main(int argc, char **argv)
{
	ql_opts o;
	if (ql_opts_parse(&o, argc, argv) != 0)
		return 2;
	signal(SIGPIPE, SIG_IGN);
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (strcmp(o.mode, "idle") == 0)
		return ql_mode_idle(&o);
	if (strcmp(o.mode, "fanout") == 0)
		return ql_mode_fanout(&o, 0);
	if (strcmp(o.mode, "rate") == 0)
		return ql_mode_fanout(&o, 1);
	if (strcmp(o.mode, "docs") == 0)
		return ql_mode_docs(&o);
	if (strcmp(o.mode, "soak") == 0)
		return ql_mode_soak(&o);
	if (strcmp(o.mode, "catchup") == 0)
		return ql_mode_catchup(&o);
	fprintf(stderr, "quire-load: unknown mode %s\n", o.mode);
	ql_usage();
	return 2;
}
