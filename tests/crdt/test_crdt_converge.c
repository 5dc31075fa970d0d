/*
 * test_crdt_converge.c - the convergence simulation of sim.c on fixed
 * seeds: 3-5 replicas, random edits, reordered/duplicated/delayed delivery,
 * partitions, anti-entropy and snapshot reloads; at the end all replicas
 * must be identical (see sim.h for every check). A failing seed is printed
 * with the crdt-sim command that reproduces it. Long runs: crdt-sim.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "sim.h"

static void run_seeds(uint64_t first, unsigned nseeds, unsigned steps, unsigned replicas,
		      uint32_t max_pending)
{
	char err[1024];
	unsigned failed = 0;
	for (uint64_t seed = first; seed < first + nseeds; seed++) {
		sim_options o;
		memset(&o, 0, sizeof o);
		o.seed = seed;
		o.steps = steps;
		o.replicas = replicas;
		o.max_pending = max_pending;
		if (sim_run(&o, NULL, err, sizeof err) != 0) {
			print_error("FAILED %s\n  reproduce: crdt-sim --seeds 1 --start "
				    "%llu --steps %u --verbose%s\n",
				    err, (unsigned long long)seed, steps,
				    replicas == 2 ? " --replicas 2" : "");
			failed++;
		}
	}
	if (failed)
		fail_msg("%u of %u seeds failed (see above)", failed, nseeds);
}

static void test_crdt_converge_short_runs(void **state)
{
	(void)state;
	run_seeds(1, 40, 400, 0, 0);
}

static void test_crdt_converge_long_runs(void **state)
{
	(void)state;
	run_seeds(1001, 4, 3000, 0, 0);
}

static void test_crdt_converge_two_replicas(void **state)
{
	(void)state;
	run_seeds(2001, 20, 600, 2, 0);
}

static void test_crdt_converge_five_replicas(void **state)
{
	(void)state;
	run_seeds(3001, 6, 1200, 5, 0);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crdt_converge_short_runs),
		cmocka_unit_test(test_crdt_converge_long_runs),
		cmocka_unit_test(test_crdt_converge_two_replicas),
		cmocka_unit_test(test_crdt_converge_five_replicas),
	};
	if (argc > 1)
		cmocka_set_test_filter(argv[1]);
	return cmocka_run_group_tests_name("crdt_converge", tests, NULL, NULL);
}
