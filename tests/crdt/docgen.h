/*
 * docgen.h - builds non-trivial documents for tests: several replicas make
 * seeded random edits (multi-byte text, deletes, concurrent inserts) and
 * exchange their ops, so the result has many runs, tombstones, origins
 * from several replicas and a multi-level tree. Test infrastructure only.
 */
#ifndef QUIRE_DOCGEN_H
#define QUIRE_DOCGEN_H

#include <stddef.h>
#include <stdint.h>

#include "crdt.h"
#include "testutil.h"

/* One random local edit on doc (insert 1..maxins code points or delete up to
 * maxdel); ops appended to out. Returns the crdt status. */
int dg_random_edit(crdt_doc *doc, tu_rng *rng, unsigned maxins, unsigned maxdel, crdt_batch *out);

/* A document edited by `nrep` replicas (ids 1..nrep; the returned doc is
 * replica 1) for `rounds` random edits, all merged. If `log` is not NULL it
 * receives every op in a causal order (generation order). Aborts on any
 * unexpected status (the caller's asserts then see a crash, not a pass). */
crdt_doc *dg_build(uint64_t seed, unsigned nrep, unsigned rounds, const crdt_options *opts,
		   tu_oplog *log);

#endif
