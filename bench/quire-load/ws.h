/*
 * ws.h - one non-blocking RFC 6455 WebSocket client connection driven by an
 * epoll loop the caller owns: TCP connect from a chosen loopback source
 * address, the opening handshake (Sec-WebSocket-Key / Accept checked with
 * SHA-1, subprotocol required), masked binary frames out, unmasked frames
 * in with fragment reassembly, ping answered with pong, close answered and
 * reported.
 *
 * Contract
 *  - The caller owns the ql_ws struct (it may live in an array and be
 *    reused: ql_ws_connect resets it) and calls ql_ws_event for every epoll
 *    event whose data.ptr is the struct. Events for a closed connection are
 *    ignored, so a close during one epoll batch is harmless.
 *  - Callbacks run inside ql_ws_event. `message` receives one whole binary
 *    message; the bytes are valid until the callback returns. `closed` runs
 *    once per connection, after its fd is closed; it must not reconnect the
 *    same struct from inside the callback (do it from the caller's loop).
 *    A callback may send, or abort the connection; buffers are only
 *    released by the next connect or ql_ws_free, so the bytes a callback is
 *    reading stay valid even if it aborts.
 *  - Memory per idle open connection: the struct only (input is read into
 *    the caller's scratch buffer and copied only when a frame is partial).
 */
#ifndef QL_WS_H
#define QL_WS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct ql_ws ql_ws;

typedef struct ql_ws_handler {
	void (*open)(ql_ws *w);
	void (*message)(ql_ws *w, const uint8_t *data, size_t len);
	void (*closed)(ql_ws *w);
} ql_ws_handler;

enum ql_ws_state { QL_WS_IDLE = 0, QL_WS_CONNECTING, QL_WS_HANDSHAKE, QL_WS_OPEN, QL_WS_CLOSED };

/* Everything is private except as noted. */
struct ql_ws {
	int fd, epfd;
	uint8_t state;	/* read-only: enum ql_ws_state */
	bool armed_out; /* EPOLLOUT requested */
	bool in_msg;	/* a fragmented message is being reassembled */
	uint8_t msg_op;
	int close_code; /* read-only: 1000.. from a close frame, 1006 for a
			   dropped socket, the HTTP status of a refused handshake */
	char why[40];	/* read-only: a short reason for the close */
	uint64_t rng;
	const ql_ws_handler *h;
	char accept[32];
	uint8_t *in;
	uint32_t in_len, in_cap;
	uint8_t *msg;
	uint32_t msg_len, msg_cap;
	uint8_t *out;
	uint32_t out_off, out_len, out_cap;
	uint64_t bytes_in, bytes_out; /* read-only: payload bytes of binary messages */
};

typedef struct ql_ws_target {
	uint32_t dst_ip; /* host order, e.g. 0x7f000001 */
	uint16_t port;
	const char *path;     /* "/sync" */
	const char *protocol; /* "quire.v1" */
} ql_ws_target;

/* Start connecting w (reset first) from src_ip (host order; 0: any) to t,
 * registering the socket with epfd. Returns 0, or a negative errno when
 * the socket could not even be created or bound (w is then CLOSED and
 * `closed` is not called). */
int ql_ws_connect(ql_ws *w, int epfd, const ql_ws_handler *h, uint32_t src_ip,
		  const ql_ws_target *t, uint64_t seed);

/* Handle epoll events for w; scratch is a read buffer the loop lends. */
void ql_ws_event(ql_ws *w, uint32_t events, uint8_t *scratch, size_t scratch_cap);

/* Queue one binary message (masked) and write what the socket takes.
 * 0, or -1 when w is not open or out of memory. */
int ql_ws_send(ql_ws *w, const uint8_t *data, size_t len);

/* Close the socket now, without a close frame and without the `closed`
 * callback (a deliberate drop, as a dying client would). */
void ql_ws_abort(ql_ws *w);

/* Bytes queued but not yet written. */
static inline size_t ql_ws_pending(const ql_ws *w) { return w->out_len - w->out_off; }

/* Release the buffers (after a close). */
void ql_ws_free(ql_ws *w);

#endif
