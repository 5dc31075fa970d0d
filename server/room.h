/*
 * room.h - the document protocol of one connection: joining (Hello),
 * leaving, Updates (validated, integrated, queued for the group commit),
 * presence relay, and the Welcome with its catch-up that the group commit
 * sends at the end of the turn (commit.c calls srv_room_welcome).
 *
 * The rules a client can rely on are written in server/README.md; in
 * short: an Update is refused whole or accepted whole; it is acked with its
 * seq only after the transaction holding it committed; a retransmitted
 * Update (every op already known) is acked with the seq it got the first
 * time and creates no change; a member receives every change exactly once
 * and in seq order (its catch-up, then Changes and Acks per turn).
 */
#ifndef QUIRE_SRV_ROOM_H
#define QUIRE_SRV_ROOM_H

#include "srv.h"

/* Hello: validate, load the document if needed, add a WAITING member (its
 * Welcome goes out at the end of the turn), or answer with an Error: a
 * handle already open, or a document already open on the connection under
 * another handle, is BAD_MESSAGE (docs/PROTOCOL.md 5.2). */
void srv_room_hello(srv *s, srv_conn *c, const wire_client_msg *m);

/* Update: see the file comment of room.c for the validation order. Only a
 * welcomed (LIVE) handle may send Updates and Presence; before its Welcome
 * they are UNKNOWN_DOCUMENT (docs/PROTOCOL.md 5.2). */
void srv_room_update(srv *s, srv_conn *c, const wire_client_msg *m);

/* Presence: its replica must be the Hello's (BAD_MESSAGE); relayed to the
 * other welcomed members, kept in memory (never stored) for those who join
 * later, and followed by "gone" when the member leaves. */
void srv_room_presence(srv *s, srv_conn *c, const wire_client_msg *m);

/* Leave the document joined at `handle` (UNKNOWN_DOCUMENT if none). */
void srv_room_leave(srv *s, srv_conn *c, uint32_t handle);

/* The connection is going away: remove all its memberships. */
void srv_room_conn_gone(srv *s, srv_conn *c);

/* The membership of handle on c, or NULL. */
srv_member *srv_room_member(srv_conn *c, uint32_t handle);

/* Unlink and free a membership (tells the others it is gone if it had
 * sent presence); the document becomes idle when it was the last. */
void srv_room_remove_member(srv *s, srv_member *m);

/*
 * Send a WAITING member its Welcome and catch-up and make it LIVE (group
 * commit, after the turn's changes committed, so doc->crdt is exactly the
 * log up to doc->head). The catch-up is the stored changes after its
 * last_seq, unless the log no longer reaches back that far, or last_seq is
 * beyond the head, or the changes would exceed cfg.send_queue_bytes: then
 * the Welcome carries a snapshot of the document at the head instead, and
 * no Changes follow. On a storage error the member gets INTERNAL and is
 * removed.
 */
void srv_room_welcome(srv *s, srv_member *m);

#endif /* QUIRE_SRV_ROOM_H */
