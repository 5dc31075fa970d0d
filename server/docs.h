/*
 * docs.h - the registry of loaded documents: lookup by doc id, lazy loading
 * behind a per-document load state, reloading from storage when memory must
 * be brought back to the committed log, snapshots, and unloading of idle
 * documents.
 *
 * Load states (srv.h, enum srv_doc_state):
 *
 *     (absent) --Hello--> LOADING --store_load ok--> READY --idle--> (absent)
 *                            |                         |
 *                            +--store_load fails--> FAILED <--reload fails
 *                                                      |
 *                          (absent) <--retry_at passed, no members
 *
 * store_load is synchronous today, so LOADING lasts for one call; the
 * state exists so a joiner can never see a half-loaded document, and so the
 * load can move to a worker thread without changing the callers. A FAILED
 * document answers every Hello with DOCUMENT_UNAVAILABLE until retry_at_ms
 * (1 s), and is never replaced by an empty document.
 */
#ifndef QUIRE_SRV_DOCS_H
#define QUIRE_SRV_DOCS_H

#include "srv.h"

/* Milliseconds a failed load is remembered before a Hello retries it. */
#define SRV_LOAD_RETRY_MS 1000

void srv_docs_init(srv_registry *r);

/* Free every document (after all connections are gone). */
void srv_docs_free_all(srv *s);

/* The document with this id, in any state, or NULL. */
srv_doc *srv_docs_find(srv *s, const char *id, size_t len);

/*
 * The document for a Hello: found, or created and loaded now. Returns NULL
 * only when out of memory. The caller checks ->state: READY (join it) or
 * FAILED (answer DOCUMENT_UNAVAILABLE). A FAILED document whose retry time
 * has passed is loaded again here.
 */
srv_doc *srv_docs_open(srv *s, const char *id, size_t len);

/*
 * Rebuild d->crdt from storage (its committed state, head = the stored
 * head) and, with with_turn, re-apply the changes of the current turn that
 * are waiting for the group commit, so memory again equals log + turn.
 * 0 on success; -1 when storage or a re-apply fails (d unchanged: the
 * caller then calls srv_doc_fail).
 */
int srv_doc_reload(srv *s, srv_doc *d, bool with_turn);

/*
 * The document cannot be kept: its waiting changes are dropped (their
 * senders get STORAGE_FAILURE), every member is removed with
 * DOCUMENT_UNAVAILABLE, its memory is freed and it becomes FAILED.
 */
void srv_doc_fail(srv *s, srv_doc *d, const char *why);

/* Record a committed change (retransmission lookup) and count it towards
 * the snapshot policy. */
void srv_doc_committed(srv_doc *d, const srv_change *c);

/*
 * Store a snapshot of d at its head if the policy says one is due (or, with
 * force, if any change was logged since the last one), then trim its log.
 * Only for a READY document without uncommitted changes. Failures are
 * logged and counted, never fatal: the log still has everything.
 */
void srv_doc_snapshot(srv *s, srv_doc *d, bool force);

/* Whether d->snap is the Snapshot at d's head. */
bool srv_doc_snap_fresh(const srv_doc *d);

/* Make d->snap the Snapshot at d's head, encoding it unless it is one
 * already (a Welcome, a stored snapshot and the quiet rule share it).
 * WIRE_OK or the encoder's error (d->snap then empty). */
int srv_doc_snap_at_head(srv_doc *d);

/* After a turn committed changes of d: if they make a fresh Snapshot worth
 * having (their bytes since the last encoding reach a Snapshot's size),
 * encode it once d has been quiet, no change committed, for
 * cfg.quiet_snapshot_ms (0: never), so that a reconnect after a burst
 * finds it ready. */
void srv_doc_quiet_arm(srv *s, srv_doc *d);
/* Cancel that timer and free it (shutdown, before the loop goes). */
void srv_docs_quiet_stop(srv *s);

/* Unload READY documents idle for cfg.idle_unload_ms (snapshot first) and
 * forget FAILED ones whose retry time has passed. */
void srv_docs_tick(srv *s, int64_t now_ms);

/* Snapshot every loaded document that has changes since its last snapshot
 * (shutdown). */
void srv_docs_snapshot_all(srv *s);

#endif /* QUIRE_SRV_DOCS_H */
