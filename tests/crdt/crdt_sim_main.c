/*
 * crdt_sim_main.c - the crdt-sim program: runs the convergence simulation
 * of sim.c for many seeds, for long soak runs outside CTest.
 *
 *   crdt-sim [--seeds N] [--steps M] [--start S] [--replicas R]
 *            [--max-pending P] [--verbose] [--keep-going]
 *
 * Seeds S .. S+N-1 are run in order. A failing seed is printed with the
 * command that reproduces it; the exit status is 1 if any seed failed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sim.h"

static void usage(void)
{
	fprintf(stderr, "usage: crdt-sim [--seeds N] [--steps M] [--start S] [--replicas R]\n"
			"                [--max-pending P] [--verbose] [--keep-going]\n"
			"  defaults: --seeds 100 --steps 5000 --start 1, 3-5 replicas\n");
}

static int num(const char *s, unsigned long long *out)
{
	char *end;
	if (!s || !*s)
		return -1;
	*out = strtoull(s, &end, 0);
	return *end ? -1 : 0;
}

int main(int argc, char **argv)
{
	unsigned long long seeds = 100, steps = 5000, start = 1, replicas = 0, pending = 0;
	int verbose = 0, keep_going = 0;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		unsigned long long *dst = NULL;
		if (!strcmp(a, "--seeds"))
			dst = &seeds;
		else if (!strcmp(a, "--steps"))
			dst = &steps;
		else if (!strcmp(a, "--start"))
			dst = &start;
		else if (!strcmp(a, "--replicas"))
			dst = &replicas;
		else if (!strcmp(a, "--max-pending"))
			dst = &pending;
		else if (!strcmp(a, "--verbose") || !strcmp(a, "-v"))
			verbose = 1;
		else if (!strcmp(a, "--keep-going"))
			keep_going = 1;
		else {
			usage();
			return !strcmp(a, "--help") || !strcmp(a, "-h") ? 0 : 2;
		}
		if (dst && (i + 1 >= argc || num(argv[++i], dst) != 0)) {
			usage();
			return 2;
		}
	}
	if (replicas > 5 || steps > 0xFFFFFFFFull || pending > 0xFFFFFFFFull) {
		usage();
		return 2;
	}
	unsigned long long failed = 0;
	clock_t t0 = clock();
	char err[1024];
	for (unsigned long long k = 0; k < seeds; k++) {
		sim_options o;
		memset(&o, 0, sizeof o);
		o.seed = start + k;
		o.steps = (unsigned)steps;
		o.replicas = (unsigned)replicas;
		o.max_pending = (uint32_t)pending;
		o.verbose = verbose;
		if (sim_run(&o, NULL, err, sizeof err) != 0) {
			failed++;
			printf("FAIL %s\n  reproduce: crdt-sim --seeds 1 --start %llu "
			       "--steps %llu%s\n",
			       err, start + k, steps, verbose ? "" : " --verbose");
			fflush(stdout);
			if (!keep_going)
				break;
		} else if (!verbose && (k + 1) % 100 == 0) {
			printf("%llu seeds done\n", k + 1);
			fflush(stdout);
		}
	}
	double secs = (double)(clock() - t0) / CLOCKS_PER_SEC;
	printf("crdt-sim: seeds %llu..%llu, %llu steps each: %s (%.1f s)\n", start,
	       start + seeds - 1, steps, failed ? "FAILED" : "all converged", secs);
	return failed ? 1 : 0;
}
