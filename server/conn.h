/*
 * conn.h - one WebSocket connection: reassembly of incoming messages from
 * fragments (with the size limit enforced while reassembling), decoding and
 * dispatch to room.c, and the bounded send queue.
 *
 * Frames: built by conn.c and written raw. On a connection that negotiated
 * permessage-deflate, a message of at least cfg.deflate_min_bytes is sent
 * compressed (one fresh deflate stream per message, compressed once for all
 * connections); smaller messages are sent as plain frames (RSV1 clear).
 *
 * Send queue contract
 *  - Messages are srv_msg objects: reference-counted, allocated with
 *    LWS_PRE bytes of headroom, so one encoded message can be queued on
 *    many connections without copies.
 *  - Write-through: a message queued while the queue is empty is written
 *    at once when lws holds nothing back (no partial send buffered), no
 *    ping is due, the peer has not closed and it is not a reply from the
 *    connection's own RECEIVE; what the socket does not
 *    take stays queued. Otherwise, and for the rest, every SERVER_WRITEABLE
 *    writes fragments (at most SRV_FRAGMENT bytes each, one lws_write
 *    each) of the head messages until 64 KiB went out or lws buffers a
 *    partial send, then asks for another WRITEABLE if anything is left.
 *  - Coalescing: before the head message starts to go out, it and the
 *    Changes for the same handle queued right behind it (consecutive
 *    entries only: never across an Ack or anything else) are replaced by
 *    one Changes message holding all their changes in order, up to 64 KiB
 *    (and cfg.max_message_bytes) and 1,024 messages. A connection that
 *    fell behind thus catches up in a few large frames instead of one
 *    frame per turn. Compression is unchanged: on a permessage-deflate
 *    connection only messages that would go plain are merged, and the
 *    merged message goes plain.
 *    q_bytes and q_count follow the merge (both only shrink).
 *  - The queue is bounded by cfg.send_queue_bytes. A bounded send that
 *    would go over it (while the queue is not empty) drops the connection
 *    as a slow consumer: its queue is freed at once, nothing more is queued
 *    for it, and it is closed with SRV_CLOSE_SLOW_CONSUMER (1008, "slow
 *    consumer; resume by seq"), or killed after 2 s if it never becomes
 *    writable again. It leaves its documents when lws reports it closed
 *    (never in the middle of a broadcast that caused the drop). Welcome and catch-up messages are
 * queued unbounded (room.c bounds a catch-up by the same number, then uses a snapshot).
 */
#ifndef QUIRE_SRV_CONN_H
#define QUIRE_SRV_CONN_H

#include "srv.h"

/* ---- messages ---------------------------------------------------------------- */

typedef struct srv_msg {
	size_t refs;
	size_t len;
	uint8_t *payload; /* == buf + LWS_PRE */
	/* its permessage-deflate form (conn.c), made when a deflate connection
	 * first sends it: LWS_PRE + zlen bytes, or NULL (not tried, not worth
	 * it, or no memory: sent plain) */
	uint8_t *z;
	size_t zlen;
	bool z_tried;
	uint8_t buf[]; /* LWS_PRE + len */
} srv_msg;

/* A message of len bytes (payload uninitialised) with one reference, or
 * NULL when out of memory. */
srv_msg *srv_msg_new(size_t len);

/* A message holding a copy of data[0..len), or NULL. */
srv_msg *srv_msg_copy(const void *data, size_t len);

void srv_msg_unref(srv_msg *m); /* NULL is a no-op */

/* ---- state shared by all connections ---------------------------------------------- */

/* The server's one client-message decoder, created on first use (NULL when
 * out of memory). Its contents are valid until the next decode anywhere. */
wire_client_msg *srv_decoder(srv *s);

/* Free the decoder, the compressor and the write scratch (srv_free, after
 * every connection is gone). */
void srv_conns_free_shared(srv *s);

/* ---- connections ---------------------------------------------------------------- */

/* Create the connection object for a freshly established WebSocket and
 * link it into s->conns. NULL when out of memory (the caller refuses the
 * connection). */
srv_conn *srv_conn_new(srv *s, struct lws *wsi);

/* Leave every document, forget the connection in the pending turn, free
 * everything. Called from LWS_CALLBACK_CLOSED. NULL is a no-op. */
void srv_conn_free(srv_conn *c);

/* Feed one RECEIVE callback's bytes. `final` is lws_is_final_fragment.
 * Returns 0, or -1 when the connection must close (the close reason is set:
 * 1009 for a message over cfg.max_message_bytes). */
int srv_conn_receive(srv_conn *c, const void *in, size_t len, bool binary, bool final);

/* The peer showed it is alive (a pong; srv_conn_receive counts itself). */
void srv_conn_alive(srv_conn *c);

/* The heartbeat, from the housekeeping timer: a connection silent for half
 * of cfg.heartbeat_timeout_s gets a WebSocket ping, one silent for all of
 * it is dropped. One pass over the connections, no timer per connection
 * (lws's are kept in a sorted list: O(n) per reschedule, i.e. per message,
 * which made the connect and message rates fall with the connection count). */
void srv_conns_heartbeat(srv *s, int64_t now_ms);

/* SERVER_WRITEABLE: write the next fragment. 0, or -1 to close now. */
int srv_conn_writeable(srv_conn *c);

enum srv_send_flags {
	SRV_SEND_BOUNDED = 0,
	SRV_SEND_UNBOUNDED = 1, /* Welcome and catch-up: not checked against the bound */
};

/*
 * Queue a message (the queue takes its own reference), and write it at
 * once when nothing waits before it (write-through, above). Returns 0 when
 * queued or written; -1 when it was not: the connection is closing, this
 * send crossed the bound and the connection was just dropped as a slow
 * consumer, or the write failed (the socket is gone: the connection is
 * closed at lws's next timer pass).
 * Never changes any membership or document list, so it is safe inside a
 * loop over members.
 */
int srv_conn_send(srv_conn *c, srv_msg *m, unsigned flags);

/* Queue a copy of an encoded message. Same returns; -1 also on ENOMEM. */
int srv_conn_send_buf(srv_conn *c, const wire_buf *b, unsigned flags);

/* Queue Error{code, message, client_batch} for handle `doc` (0: about the
 * connection) and count it in the metrics. */
void srv_conn_error(srv_conn *c, uint32_t doc, int code, uint64_t client_batch, const char *fmt,
		    ...) SRV_PRINTF(5, 6);

/*
 * Close the connection with `code` and `reason` (<= 123 bytes, the most a
 * Close frame carries; kept by pointer, so a string literal). With drain,
 * what is queued is sent first (shutdown: the last Acks); without, the queue
 * is dropped (slow consumer). Either way the connection stops reading, and
 * it is killed if it does not close within 2 s. `why` is for the metrics.
 * Must not be called from the connection's own RECEIVE before returning -1
 * (use the return value there); any other time is fine.
 */
void srv_conn_close(srv_conn *c, int code, const char *reason, bool drain,
		    enum srv_close_reason why);

/* Close code for a connection that missed a message it was owed. */
#define SRV_CLOSE_INTERNAL 1011

/*
 * A message owed to c (an Ack, Changes, an Error) could not be built or
 * queued: out of memory. Rather than let it silently miss one (srv.h
 * invariant 2), close it with SRV_CLOSE_INTERNAL ("server out of memory;
 * resume by seq"), dropping its queue; the client reconnects and resumes.
 * Safe wherever srv_conn_close is; a no-op when c is already closing.
 */
void srv_conn_fail(srv_conn *c, const char *what);

#endif /* QUIRE_SRV_CONN_H */
