/*
 * sim.h - seeded convergence simulation of the crdt engine.
 *
 * 3-5 replicas make random local edits (multi-byte text, deletes, bursts of
 * concurrent typing at one spot, forward and backward). Their ops travel
 * through one queue per ordered pair of replicas and are delivered in random
 * order, sometimes more than once, late, or not at all while a partition
 * cuts a link. Replicas are configured to hold ops whose dependencies are
 * missing. Random pairs also sync by anti-entropy (ops_since from the
 * receiver's version vector), and replicas are now and then replaced by the
 * decode of their own snapshot. Every replica mirrors its text from its own
 * edits and the patches the engine reports. At the end links heal, every
 * queue is drained, anti-entropy runs between all pairs, and the run checks:
 * identical text and version vectors, nothing pending, crdt_doc_check OK,
 * mirrors equal to the texts, and a fresh replica that applies every op in
 * generation order (without pending) reaches the same text.
 *
 * Used by test_crdt_converge (fixed seeds) and by the crdt-sim program
 * (long runs). Depends on crdt.h and testutil only, not on CMocka.
 */
#ifndef QUIRE_SIM_H
#define QUIRE_SIM_H

#include <stddef.h>
#include <stdint.h>

typedef struct sim_options {
	uint64_t seed;
	unsigned steps;	      /* random actions before the final drain */
	unsigned replicas;    /* 0: 3..5, chosen by the seed */
	uint32_t max_pending; /* 0: 10000 */
	int verbose;	      /* print statistics to stderr */
} sim_options;

typedef struct sim_stats {
	unsigned replicas;
	size_t local_ops;  /* ops made by local edits */
	size_t deliveries; /* queue deliveries */
	size_t duplicates; /* ... that returned CRDT_DUPLICATE */
	size_t held;	   /* ... that returned CRDT_PENDING */
	size_t full;	   /* ... that returned CRDT_EPENDING_FULL */
	size_t syncs;	   /* anti-entropy exchanges */
	size_t synced_ops;
	size_t reloads; /* replicas replaced by their decoded snapshot */
	size_t partitions;
	size_t final_length; /* code points of the converged text */
} sim_stats;

/* Run one simulation. Returns 0 if every check passed; otherwise -1 with a
 * message naming the seed and step in err (cap bytes). stats may be NULL. */
int sim_run(const sim_options *opt, sim_stats *stats, char *err, size_t cap);

#endif /* QUIRE_SIM_H */
