/*
 * import.h - between `import`'s two halves: import_replay.c turns an
 * editing trace into the changes a server would have logged (one per
 * transaction, ops encoded as OpBatch payloads), cmd_import.c writes them
 * to the store with snapshots. Kept apart from dump.h so only these two
 * files see bench/trace.h.
 */
#ifndef QUIRE_DUMP_IMPORT_H
#define QUIRE_DUMP_IMPORT_H

#include <stddef.h>
#include <stdint.h>

#include "crdt.h"
#include "trace.h"

/* One change: everything store_change needs but the doc id and seq. */
typedef struct imp_change {
	const uint8_t *payload; /* wire_ops_encode output; valid until the next call */
	size_t payload_len;
	crdt_replica replica;	/* the replica whose transaction this is */
	uint32_t counter_first; /* its counters used by the transaction */
	uint32_t counter_count;
	const char *author; /* "agent N" for concurrent traces, else NULL; lives
			       as long as the replay */
} imp_change;

typedef struct imp_replay imp_replay;

/*
 * A replay of trace t (which must outlive it) as document doc_id: the
 * replica ids are derived from doc_id, so importing the same trace under
 * the same id twice gives identical histories. NULL with a message in err
 * on failure (out of memory, a concurrent trace whose txns no replica can
 * make).
 */
imp_replay *imp_replay_new(const trace *t, const char *doc_id, char *err, size_t errlen);
void imp_replay_free(imp_replay *r);

/* The number of changes the trace makes: its transactions, or 1 for a
 * trace with only a startContent. */
size_t imp_replay_count(const imp_replay *r);

/*
 * Make the next change (the k-th call makes change k + 1 = transaction k;
 * change 1 also inserts startContent). Returns 0, or -1 with a message in
 * err naming the transaction and patch (e.g. a position out of range).
 */
int imp_replay_next(imp_replay *r, imp_change *out, char *err, size_t errlen);

/* The document as a server holds it after the changes made so far. */
const crdt_doc *imp_replay_doc(const imp_replay *r);

#endif /* QUIRE_DUMP_IMPORT_H */
