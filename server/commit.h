/*
 * commit.h - the group commit: everything accepted during one turn of the
 * event loop (the callbacks lws runs for one poll) is made durable by ONE
 * store_append at the end of the turn, for all documents; only then are the
 * senders acked and the other members sent the changes, one Changes message
 * per member and document per turn (split only at cfg.max_message_bytes).
 *
 * "End of the turn" is an lws_sul scheduled 0 us ahead the first time
 * something is queued in a turn: lws runs ripe timers at the top of its
 * next service iteration, after the current poll's callbacks and before it
 * polls again.
 *
 * Flush order (srv_turn_flush):
 *  1. store_append of every waiting change. On failure: each sender gets
 *     STORAGE_FAILURE (not acked), each touched document is reloaded from
 *     storage (or fails), so memory equals the disk again.
 *  2. Welcomes of the members that joined this turn (catch-up up to the new
 *     head, so this turn's changes are in it).
 *  3. Per document, per member already live: Changes for the others'
 *     changes and Acks for its own, in seq order. Acks to senders that are
 *     no longer members of the document go straight to their connection.
 *  4. Acks of retransmitted Updates.
 *  5. Snapshots of the documents whose policy says one is due.
 */
#ifndef QUIRE_SRV_COMMIT_H
#define QUIRE_SRV_COMMIT_H

#include "srv.h"

void srv_turn_init(srv_turn *t);
void srv_turn_free(srv_turn *t); /* frees what is still waiting (shutdown) */

/* A new change slot for d at seq d->next_seq (not yet incremented: the
 * caller fills the slot, then increments next_seq), linked into d's chain
 * and the flush scheduled. NULL when out of memory. The slot's payload is
 * empty; the pointer is valid until the next srv_turn_* call. */
srv_change *srv_turn_add_change(srv *s, srv_doc *d);

/* Undo the last srv_turn_add_change (its payload could not be built). */
void srv_turn_pop_change(srv *s, srv_doc *d);

/* Owe an Ack{client_batch, seq} for a retransmitted Update. -1 on ENOMEM. */
int srv_turn_add_dup_ack(srv *s, srv_conn *c, srv_doc *d, uint32_t handle, uint64_t client_batch,
			 uint64_t seq);

/* Mark d as needing the flush (Welcomes due) and schedule it. -1 on ENOMEM. */
int srv_turn_touch(srv *s, srv_doc *d);

/* The connection closed: forget it as a sender and as an ack target. */
void srv_turn_forget_conn(srv *s, srv_conn *c);

/* Drop d's waiting changes (their senders get Error `code` with `why`) and
 * reset d->next_seq to d->head + 1. */
void srv_turn_drop_doc(srv *s, srv_doc *d, int code, const char *why);

/* Send changes v[0..n) to handle on c as Changes messages of at most
 * cfg.max_message_bytes each (one bigger change goes alone). 0, or -1 when
 * encoding failed or the connection did not take them. */
int srv_changes_send(srv *s, srv_conn *c, uint32_t handle, const wire_change *v, size_t n,
		     unsigned flags);

/* Run the flush now (the timer's callback; also called at shutdown). */
void srv_turn_flush(srv *s);

#endif /* QUIRE_SRV_COMMIT_H */
