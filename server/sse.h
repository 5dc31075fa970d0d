/*
 * sse.h - GET /v1/docs/{id}/events: a Server-Sent Events stream of a
 * document's committed changes, for dashboards and bots that only read.
 *
 * Events (docs/PROTOCOL.md "HTTP API" has the JSON shapes):
 *   id: <seq> / event: change / data: {"seq","time_ms","replica","patches","ops"}
 *       one per committed change, in seq order, after its group commit.
 *       "patches" are the visible edits the change made, [{pos, delete,
 *       insert}] in code points, each relative to the text after the
 *       previous one (so a bot can follow the text from a reset); "ops" the
 *       raw CRDT ops.
 *   id: <seq> / event: reset / data: {"seq","length","text"}
 *       the whole text at seq: first thing on a stream opened without a
 *       resume point, or whose resume point the log no longer reaches (or
 *       is beyond the head, or whose catch-up would exceed
 *       --send-queue-bytes).
 *   event: shutdown            the server is stopping; reconnect and resume.
 *   event: unavailable         the document failed (storage); reconnect later.
 *   ": ping" comment lines every SRV_SSE_PING_S seconds.
 *
 * Lifecycle of a stream, like a WebSocket member's Welcome (room.h): it is
 * WAITING from the request until the end of the turn (srv_turn_touch), when
 * the group commit's flush calls srv_sse_flush: the LIVE streams get the
 * turn's committed changes, then the WAITING ones their catch-up (stored
 * changes after Last-Event-ID / ?last_seq, with patches computed by
 * replaying them on the document as it was at that seq, or a reset) and
 * become LIVE. So every stream receives every seq once, in order.
 *
 * Patches are captured when room.c applies an Update to the server's
 * document (srv_sse_on_patch as crdt_doc_apply's callback while the
 * document has streams), kept per seq until the flush, and dropped with the
 * change if it is refused (srv_sse_discard) or its commit fails.
 *
 * Streams count as readers: a document with streams is never unloaded
 * (docs.c). Each stream has a send queue bounded by --send-queue-bytes; one
 * that overflows is dropped (quire_sse_dropped_total) and can resume by
 * Last-Event-ID.
 */
#ifndef QUIRE_SRV_SSE_H
#define QUIRE_SRV_SSE_H

#include <stdbool.h>
#include <stdint.h>

#include <libwebsockets.h>

#include "srv.h"

/* Seconds between ": ping" comments on an idle stream. */
#define SRV_SSE_PING_S 15

typedef struct srv_sse_stream srv_sse_stream;
typedef struct srv_sse_doc srv_sse_doc;

/* Answer the request on wsi with the stream's headers and make it a WAITING
 * stream of d (READY) that resumes after `last` when has_last. NULL when out
 * of memory or the headers could not be written (close the request). */
srv_sse_stream *srv_sse_open(srv *s, srv_doc *d, struct lws *wsi, bool has_last, uint64_t last);

/* HTTP_WRITEABLE of a stream: one write. 0, or -1 to close it. */
int srv_sse_writeable(srv_sse_stream *st);

/* The stream's timer: a ": ping" when nothing else is queued. */
void srv_sse_heartbeat(srv_sse_stream *st);

/* The request is gone (CLOSED_HTTP): unlink and free the stream. */
void srv_sse_close(srv_sse_stream *st);

/* crdt_patch_fn for room.c: ctx is d->sse; records the patch for the change
 * being applied (seq d->next_seq). */
void srv_sse_on_patch(void *ctx, const crdt_patch *p);

/* The change with this seq was refused after some of its ops were applied:
 * forget its patches. */
void srv_sse_discard(srv_doc *d, uint64_t seq);

/* The group commit's step 3 for d (commit.c): send the turn's committed
 * changes to the LIVE streams, welcome the WAITING ones, forget the turn's
 * patches; close every stream when d is no longer READY. */
void srv_sse_flush(srv *s, srv_doc *d);

/* Shutdown: every stream gets "event: shutdown" and is closed once that is
 * written. */
void srv_sse_shutdown(srv *s);

/* Open streams, all documents (the quire_sse_streams gauge). */
size_t srv_sse_count(const srv *s);

#endif /* QUIRE_SRV_SSE_H */
