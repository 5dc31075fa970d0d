/*
 * quota.h - the limits that protect the server from one client: the gate
 * on WebSocket upgrades (Origin allow-list, connections per address), the
 * per-connection token buckets for messages and bytes per second, and the
 * document size limit. Each refusal is counted in quire_refusals_total{kind}.
 *
 * Rate limits (--max-msgs-per-s, --max-bytes-per-s, --rate-burst-s)
 *  - Two token buckets per connection, refilled continuously at the rates
 *    and holding at most rate x burst seconds; both start full.
 *  - Counted per whole incoming message when its last fragment arrives
 *    (bytes: the message's size, also when it was over the size limit).
 *  - A message is refused when the message bucket has less than one token
 *    or the byte bucket is empty (below zero: an accepted message takes
 *    its whole size, so one large message may borrow from the next
 *    second). A refused message is answered with Error RATE_LIMITED
 *    (handle and client_batch from the message when it decodes) and
 *    nothing else is done with it; it takes no tokens.
 *  - Flood: more than SRV_QUOTA_FLOOD_FACTOR x the per-second rate refused
 *    within one second (messages, or bytes) closes the connection with
 *    1008 "rate limit exceeded".
 */
#ifndef QUIRE_SRV_QUOTA_H
#define QUIRE_SRV_QUOTA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crdt.h"

typedef struct srv srv;
typedef struct srv_conn srv_conn;
typedef struct srv_doc srv_doc;
struct lws;

#define SRV_QUOTA_FLOOD_FACTOR 4
#define SRV_CLOSE_POLICY 1008 /* RFC 6455: policy violation (flood) */

/* A connection's buckets (inside srv_conn; all zero at first). */
typedef struct srv_quota_conn {
	bool started;
	double msg_tokens, byte_tokens;
	int64_t last_ms;
	int64_t window_ms; /* start of the current one-second flood window */
	uint64_t window_msgs, window_bytes;
} srv_quota_conn;

enum srv_quota_verdict {
	SRV_QUOTA_PASS = 0,   /* handle the message */
	SRV_QUOTA_REFUSE = 1, /* answer it with RATE_LIMITED (srv_quota_refuse) */
	SRV_QUOTA_CLOSE = 2,  /* close the connection with SRV_CLOSE_POLICY */
};

/* A whole message of `bytes` bytes has arrived on c: take its tokens.
 * Returns an enum srv_quota_verdict (counted in the metrics). */
int srv_quota_message(srv_conn *c, uint64_t bytes);

/* Answer a refused message with Error RATE_LIMITED, addressed to the handle
 * and client_batch read from data[0..len) (handle 0 when it does not decode;
 * data may be NULL when the message was dropped for its size). */
void srv_quota_refuse(srv_conn *c, const uint8_t *data, size_t len);

/*
 * LWS_CALLBACK_HTTP_CONFIRM_UPGRADE: decide a WebSocket upgrade. An Origin
 * header not on --allow-origin is answered 403, one connection more than
 * --max-conns-per-ip from the peer's address 429 (a request without Origin
 * is not a browser's and passes the allow-list). Returns 0 to let the
 * upgrade go on, or 1 when a refusal was written (lws completes it).
 */
int srv_quota_upgrade(srv *s, struct lws *wsi);

/* Whether `origin` (not NUL-terminated) is on the comma list `list`
 * (exact, ASCII case-insensitive, a trailing '/' ignored). An empty list
 * allows everything. */
bool srv_quota_origin_allowed(const char *list, const char *origin, size_t len);

/*
 * Whether an Update inserting the texts of ops[0..n) keeps document d
 * within --max-doc-bytes (its text plus the inserted text; deletes in the
 * same Update are not subtracted). Counts the refusal when it does not.
 */
bool srv_quota_doc_fits(srv *s, const srv_doc *d, const crdt_op *ops, size_t n);

/* Log the security settings at start: a loud warning when the server is
 * open (no token secret) or accepts any Origin. */
void srv_quota_announce(srv *s);

#endif /* QUIRE_SRV_QUOTA_H */
