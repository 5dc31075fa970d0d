/*
 * conn.c - one WebSocket connection (conn.h): incoming messages are
 * reassembled from RECEIVE callbacks (a message may arrive as several
 * frames, each in several chunks of the rx buffer), limited to
 * cfg.max_message_bytes while they grow, decoded with the server's one
 * reusable wire_client_msg and handed to room.c; outgoing messages are
 * written at once when nothing is queued before them (write-through, see
 * srv_conn_send), else wait in a FIFO bounded in bytes and leave at
 * SERVER_WRITEABLE (a lagging member's queued Changes for one handle merged
 * first, see coalesce_head).
 *
 * Memory of an idle connection: nothing but the srv_conn. A message that
 * arrives in one RECEIVE callback (almost all do) is decoded where lws holds
 * it; only a message in several pieces is copied into c->rx, which is freed
 * when it ends. The decoder, the compressor and the write scratch are the
 * server's, shared by all connections (one thread, one message at a time).
 *
 * Frames are built here and written with LWS_WRITE_RAW, so lws's own
 * permessage-deflate never compresses (it would keep ~100 KB of zlib state
 * per connection and compress every tiny message). On a connection that
 * negotiated permessage-deflate, a message of cfg.deflate_min_bytes or more
 * goes out as an RFC 7692 compressed message (RSV1 on its first frame),
 * compressed once per message with a fresh deflate stream however many
 * connections it goes to; smaller ones go out as plain frames, which RFC
 * 7692 allows on a deflate connection. A fresh stream per message never
 * refers to earlier messages, so the client's inflater decodes it whether
 * or not it keeps its context.
 *
 * Heartbeat: a pass over all connections once a second (srv_conns_heartbeat)
 * instead of lws's per-connection timers (a sorted list: every message
 * received re-sorted one, O(connections) each).
 *
 * A message that does not decode is answered with an Error (BAD_MESSAGE,
 * TOO_LARGE, UNSUPPORTED_VERSION, as wire_error_code maps it) and the
 * connection stays usable: the message boundary is intact, so one bad
 * message never costs the others (docs/PROTOCOL.md section 6). A message
 * that grows over cfg.max_message_bytes stops being buffered at once; its
 * remaining bytes are only counted, and when it ends it is answered with
 * TOO_LARGE (addressed to handle 0: its first bytes are gone). Only a
 * message over SRV_HARD_LIMIT_FACTOR times the limit closes the connection
 * (1009), and a text message closes it with 1003.
 */
#define _POSIX_C_SOURCE 200809L

#include "conn.h"

#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "commit.h"
#include "room.h"

struct srv_qent {
	srv_msg *msg;
	srv_qent *next;
};

/* The longest WebSocket frame header (server frames are never masked). */
#define FRAME_HEADER_MAX 10

/* deflate settings for outgoing messages: the full 32 KiB window (unless
 * the client restricted it: then nothing is compressed); level 4 (on a
 * 14 KB snapshot Welcome of automerge-paper: 5,738 bytes in 0.10 ms, where
 * level 6 gives 5,653 in 0.24 ms and level 1 6,155 in 0.07 ms). */
#define Z_OUT_WINDOW_BITS 15
#define Z_OUT_LEVEL 4
#define Z_OUT_MEM_LEVEL 8

struct srv_zout {
	z_stream z;
};

/* Seconds a closing connection gets before it is killed. */
#define CLOSE_GRACE_S 2

/* ---- messages ------------------------------------------------------------------ */

srv_msg *srv_msg_new(size_t len)
{
	if (len > SIZE_MAX - sizeof(srv_msg) - LWS_PRE)
		return NULL;
	srv_msg *m = malloc(sizeof *m + LWS_PRE + len);
	if (m == NULL)
		return NULL;
	m->refs = 1;
	m->len = len;
	m->payload = m->buf + LWS_PRE;
	m->z = NULL;
	m->zlen = 0;
	m->z_tried = false;
	return m;
}

srv_msg *srv_msg_copy(const void *data, size_t len)
{
	srv_msg *m = srv_msg_new(len);
	if (m != NULL && len > 0)
		memcpy(m->payload, data, len);
	return m;
}

void srv_msg_unref(srv_msg *m)
{
	if (m != NULL && --m->refs == 0) {
		free(m->z);
		free(m);
	}
}

/* ---- shared state --------------------------------------------------------------- */

wire_client_msg *srv_decoder(srv *s)
{
	if (s->decoder == NULL)
		s->decoder = wire_client_msg_new(NULL);
	return s->decoder;
}

void srv_conns_free_shared(srv *s)
{
	wire_client_msg_free(s->decoder);
	s->decoder = NULL;
	if (s->zout != NULL) {
		deflateEnd(&s->zout->z);
		free(s->zout);
		s->zout = NULL;
	}
	free(s->frame);
	s->frame = NULL;
}

/* Compress m once (RFC 7692 7.2.1: raw deflate, flushed, the final
 * 00 00 ff ff removed) into m->z, with LWS_PRE bytes of headroom for the
 * frame header. Leaves m->z NULL when it does not pay or memory is short:
 * the message then goes out plain, which is always allowed. */
static void msg_compress(srv *s, srv_msg *m)
{
	int64_t t0 = srv_mono_us();
	m->z_tried = true;
	if (s->zout == NULL) {
		struct srv_zout *zo = calloc(1, sizeof *zo);
		if (zo == NULL)
			return;
		if (deflateInit2(&zo->z, Z_OUT_LEVEL, Z_DEFLATED, -Z_OUT_WINDOW_BITS,
				 Z_OUT_MEM_LEVEL, Z_DEFAULT_STRATEGY) != Z_OK) {
			free(zo);
			return;
		}
		s->zout = zo;
	} else if (deflateReset(&s->zout->z) != Z_OK) {
		return;
	}
	z_stream *z = &s->zout->z;
	/* deflateBound is for a finished stream; a sync flush adds a few bytes */
	size_t cap = deflateBound(z, (uLong)m->len) + 16;
	uint8_t *out = malloc(LWS_PRE + cap);
	if (out == NULL)
		return;
	z->next_in = m->payload;
	z->avail_in = (uInt)m->len;
	z->next_out = out + LWS_PRE;
	z->avail_out = (uInt)cap;
	int rc = deflate(z, Z_SYNC_FLUSH);
	size_t n = cap - z->avail_out;
	if (rc != Z_OK || z->avail_in != 0 || n < 4 || n - 4 >= m->len) {
		free(out); /* an error, or no smaller: plain */
		return;
	}
	m->z = out;
	m->zlen = n - 4;    /* the sync flush's empty stored block tail, per RFC 7692 */
	if (m->len >= 4096) /* catch-ups and snapshots; not every small change */
		srv_debug(&s->log, "message of %zu bytes deflated to %zu in %lld us", m->len,
			  m->zlen, (long long)(srv_mono_us() - t0));
}

/* ---- lifecycle ---------------------------------------------------------------------- */

/* Whether permessage-deflate is active on wsi and we may compress with our
 * window. Setting an option only lws reads succeeds only where the
 * extension is active (lws_set_extension_option returns -1 elsewhere);
 * the value is lws's own default. A client that limited the server's
 * window (server_max_window_bits) gets plain frames only. */
static bool deflate_usable(struct lws *wsi)
{
	if (lws_set_extension_option(wsi, "permessage-deflate", "compression_level", "1") != 0)
		return false;
	char ext[256];
	int n = lws_hdr_copy(wsi, ext, sizeof ext, WSI_TOKEN_EXTENSIONS);
	if (n < 0 || n >= (int)sizeof ext - 1)
		return false; /* unreadable or too long to judge: stay plain */
	return strstr(ext, "server_max_window_bits") == NULL;
}

srv_conn *srv_conn_new(srv *s, struct lws *wsi)
{
	srv_conn *c = calloc(1, sizeof *c);
	if (c == NULL)
		return NULL;
	c->srv = s;
	c->deflate = s->cfg.deflate && deflate_usable(wsi);
	c->last_rx_ms = srv_mono_ms();
	c->wsi = wsi;
	c->id = ++s->next_conn_id;
	c->why = SRV_CLOSED_DROPPED; /* until we know better */
	char name[64];
	lws_get_peer_simple(wsi, name, sizeof name);
	snprintf(c->peer, sizeof c->peer, "%s", name);
	c->next = s->conns;
	if (s->conns)
		s->conns->prev = c;
	s->conns = c;
	s->n_conns++;
	s->metrics.connections_opened++;
	srv_info(&s->log, "conn %llu: connected from %s", (unsigned long long)c->id, c->peer);
	return c;
}

static void queue_drop(srv_conn *c)
{
	srv_qent *e = c->q_head;
	while (e) {
		srv_qent *next = e->next;
		srv_msg_unref(e->msg);
		free(e);
		e = next;
	}
	c->q_head = c->q_tail = NULL;
	c->q_bytes = c->q_count = c->q_sent = 0;
}

void srv_conn_free(srv_conn *c)
{
	if (c == NULL)
		return;
	srv *s = c->srv;
	srv_room_conn_gone(s, c);
	srv_turn_forget_conn(s, c);
	queue_drop(c);
	if (c->prev)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	s->n_conns--;
	s->metrics.connections_closed[c->why]++;
	if (c->close_code)
		srv_info(&s->log, "conn %llu: closed (%d %s)", (unsigned long long)c->id,
			 c->close_code, c->close_reason);
	else if (c->why == SRV_CLOSED_PEER)
		srv_info(&s->log, "conn %llu: closed by the client", (unsigned long long)c->id);
	else
		srv_info(&s->log, "conn %llu: connection lost (socket closed or heartbeat timeout)",
			 (unsigned long long)c->id);
	free(c->rx);
	free(c);
}

/* ---- sending ------------------------------------------------------------------------ */

/*
 * Write-through. A message queued to a connection whose queue was empty is
 * written at once (drain), not at the next SERVER_WRITEABLE: waiting for it
 * cost two epoll_ctl (POLLOUT on, then off) and a loop turn per delivered
 * message, about a quarter of the server's CPU in a fan-out. It is only
 * done when nothing can be overtaken or broken:
 *  - the queue was empty (so no message of ours is half written, and a
 *    lagging member still queues and gets its Changes merged);
 *  - lws holds no bytes of an earlier partial send (lws_partial_buffered:
 *    lws_write would append behind them, unbounded);
 *  - no ping is due (WRITEABLE is armed for it and it goes first);
 *  - the connection is open and the peer has not sent its Close;
 *  - it is not the connection's own RECEIVE that queues it (see
 *    srv_conn_receive).
 * The write is the same lws_write(LWS_WRITE_RAW) as WRITEABLE's: in lws
 * 4.1.6 it is lws_issue_raw, which sends, and on EAGAIN or a partial send
 * keeps the rest (of that one fragment) and asks for WRITEABLE itself,
 * which sends it before anything else. So bytes never reorder, a frame is
 * never split by our next one, and a TLS connection (which lws would
 * encrypt in lws_issue_raw) would be as safe as a plain one.
 */
static bool write_through_ok(const srv_conn *c);
static int drain(srv_conn *c);
static void write_failed(srv_conn *c);

int srv_conn_send(srv_conn *c, srv_msg *m, unsigned flags)
{
	srv *s = c->srv;
	if (c->state != SRV_CONN_OPEN)
		return -1;
	if (!(flags & SRV_SEND_UNBOUNDED) && c->q_bytes > 0 &&
	    c->q_bytes + m->len > s->cfg.send_queue_bytes) {
		srv_warn(&s->log,
			 "conn %llu: slow consumer (%zu bytes in %zu messages queued), "
			 "disconnecting",
			 (unsigned long long)c->id, c->q_bytes, c->q_count);
		srv_conn_close(c, SRV_CLOSE_SLOW_CONSUMER, "slow consumer; resume by seq", false,
			       SRV_CLOSED_SLOW_CONSUMER);
		return -1;
	}
	srv_qent *e = malloc(sizeof *e);
	if (e == NULL) {
		srv_conn_fail(c, "queueing a message");
		return -1;
	}
	m->refs++;
	e->msg = m;
	e->next = NULL;
	if (c->q_tail)
		c->q_tail->next = e;
	else
		c->q_head = e;
	c->q_tail = e;
	c->q_bytes += m->len;
	c->q_count++;
	s->metrics.messages_out++;
	if (c->q_head != e)
		return 0; /* behind others: it leaves at WRITEABLE, merged if it can be */
	if (write_through_ok(c)) {
		if (drain(c) != 0) {
			write_failed(c);
			return -1;
		}
		if (c->q_head == NULL) {
			s->metrics.messages_direct++;
			return 0;
		}
	}
	lws_callback_on_writable(c->wsi);
	return 0;
}

int srv_conn_send_buf(srv_conn *c, const wire_buf *b, unsigned flags)
{
	srv_msg *m = srv_msg_copy(b->data, b->len);
	if (m == NULL) {
		srv_conn_fail(c, "copying a message");
		return -1;
	}
	int rc = srv_conn_send(c, m, flags);
	srv_msg_unref(m);
	return rc;
}

void srv_conn_error(srv_conn *c, uint32_t doc, int code, uint64_t client_batch, const char *fmt,
		    ...)
{
	srv *s = c->srv;
	char text[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	srv_metrics_error(&s->metrics, code);
	srv_debug(&s->log, "conn %llu: error %s to handle %u batch %llu: %s",
		  (unsigned long long)c->id, wire_error_code_name(code), doc,
		  (unsigned long long)client_batch, text);
	wire_buf b = {0};
	if (wire_server_encode_error(&b, doc, code, text, client_batch) == WIRE_OK)
		srv_conn_send_buf(c, &b, SRV_SEND_BOUNDED);
	else
		srv_conn_fail(c, "encoding an Error");
	wire_buf_free(&b);
}

void srv_conn_fail(srv_conn *c, const char *what)
{
	if (c->state != SRV_CONN_OPEN)
		return;
	srv_err(&c->srv->log, "conn %llu: out of memory %s, closing (resume by seq)",
		(unsigned long long)c->id, what);
	srv_conn_close(c, SRV_CLOSE_INTERNAL, "server out of memory; resume by seq", false,
		       SRV_CLOSED_ERROR);
}

void srv_conn_close(srv_conn *c, int code, const char *reason, bool drain,
		    enum srv_close_reason why)
{
	if (c->state != SRV_CONN_OPEN)
		return;
	c->state = SRV_CONN_CLOSING;
	c->close_code = code;
	c->why = why;
	c->close_reason = reason;
	if (!drain)
		queue_drop(c);
	/* Its memberships stay until LWS_CALLBACK_CLOSED (srv_conn_free): this
	 * may run in the middle of a broadcast walking a member list. Nothing
	 * more is queued for it meanwhile (srv_conn_send refuses). */
	lws_callback_on_writable(c->wsi);
	lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, CLOSE_GRACE_S);
}

/* Write the header of a binary frame (or of its continuation) into h;
 * returns its length. rsv1 marks a compressed message (first frame only). */
static size_t frame_header(uint8_t *h, bool first, bool fin, bool rsv1, size_t n)
{
	h[0] = (uint8_t)((fin ? 0x80 : 0) | (first && rsv1 ? 0x40 : 0) | (first ? 0x2 : 0x0));
	if (n < 126) {
		h[1] = (uint8_t)n;
		return 2;
	}
	if (n <= 0xffff) {
		h[1] = 126;
		h[2] = (uint8_t)(n >> 8);
		h[3] = (uint8_t)n;
		return 4;
	}
	h[1] = 127;
	for (int i = 0; i < 8; i++)
		h[2 + i] = (uint8_t)((uint64_t)n >> (56 - 8 * i));
	return 10;
}

/* One frame: bytes data[off .. off+n) of a message body that has LWS_PRE
 * bytes of headroom before data. The first frame's header goes into that
 * headroom; a later one's would overwrite bytes other connections still
 * need, so it is assembled in the server's scratch. Written raw: lws adds
 * no header and no extension touches it; a partial send is buffered by
 * lws, which holds back WRITEABLE until it has gone. */
static int write_frame(srv_conn *c, uint8_t *data, size_t off, size_t n, bool fin, bool rsv1)
{
	srv *s = c->srv;
	uint8_t hdr[FRAME_HEADER_MAX];
	size_t h = frame_header(hdr, off == 0, fin, rsv1, n);
	uint8_t *p;
	if (off == 0) {
		p = data - h;
	} else {
		if (s->frame == NULL &&
		    (s->frame = malloc(LWS_PRE + FRAME_HEADER_MAX + SRV_FRAGMENT)) == NULL)
			return -1;
		p = s->frame + LWS_PRE;
		memcpy(p + h, data + off, n);
	}
	memcpy(p, hdr, h);
	return lws_write(c->wsi, p, h + n, LWS_WRITE_RAW) < (int)(h + n) ? -1 : 0;
}

void srv_conn_alive(srv_conn *c)
{
	c->last_rx_ms = srv_mono_ms();
	c->ping_sent = false;
}

void srv_conns_heartbeat(srv *s, int64_t now_ms)
{
	int64_t timeout = (int64_t)s->cfg.heartbeat_timeout_s * 1000;
	/* ping at half the timeout, and at least one pass (a little over a
	 * second apart) before the drop: with a 2 s timeout, a pong that came
	 * back just after a pass left the next pass at 996 ms of silence (no
	 * ping) and the one after at 2 s (dropped, though it answered) */
	int64_t ping_at = timeout / 2 < timeout - 1100 ? timeout / 2 : timeout - 1100;
	for (srv_conn *c = s->conns; c; c = c->next) {
		int64_t silent = now_ms - c->last_rx_ms;
		if (silent >= timeout) {
			if (c->state == SRV_CONN_OPEN)
				c->why = SRV_CLOSED_DROPPED; /* "connection lost" */
			c->state = SRV_CONN_CLOSING;
			lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
		} else if (silent >= ping_at && !c->ping_sent && !c->ping_due &&
			   c->state == SRV_CONN_OPEN) {
			c->ping_due = true;
			lws_callback_on_writable(c->wsi);
		}
	}
}

/* A ping, written raw between two frames (control frames may come between
 * the fragments of a message). It carries one byte: lws 4.1 hands the
 * protocol a pong only when it has a payload. */
static int write_ping(srv_conn *c)
{
	uint8_t ping[LWS_PRE + 3];
	ping[LWS_PRE] = 0x89; /* FIN, opcode 9 */
	ping[LWS_PRE + 1] = 1;
	ping[LWS_PRE + 2] = 'q';
	c->ping_due = false;
	c->ping_sent = true;
	return lws_write(c->wsi, ping + LWS_PRE, 3, LWS_WRITE_RAW) < 3 ? -1 : 0;
}

/* ---- coalescing ---------------------------------------------------------------------- */

/* Bounds of one merged Changes message. 64 KiB (four fragments) turns
 * hundreds of one-keystroke messages into one message; the copy that
 * builds it takes a few microseconds, where each frame saved is a send(). */
#define COALESCE_MAX_BYTES (64 * 1024)
#define COALESCE_MAX_MSGS 1024

/* Protobuf tags of ServerMessage.doc, ServerMessage.changes and
 * Changes.changes (proto/quire.proto). */
#define TAG_DOC 0x08
#define TAG_CHANGES ((WIRE_SERVER_CHANGES << 3) | 2)
#define TAG_CHANGE 0x0a

static bool get_varint(const uint8_t *p, size_t len, size_t *i, uint64_t *v)
{
	*v = 0;
	for (unsigned shift = 0; shift < 64 && *i < len; shift += 7) {
		uint8_t b = p[(*i)++];
		*v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80))
			return true;
	}
	return false;
}

static size_t put_varint(uint8_t *p, uint64_t v)
{
	size_t n = 0;
	for (; v >= 0x80; v >>= 7)
		p[n++] = (uint8_t)(v | 0x80);
	p[n++] = (uint8_t)v;
	return n;
}

static size_t varint_size(uint64_t v)
{
	size_t n = 1;
	for (; v >= 0x80; v >>= 7)
		n++;
	return n;
}

/* Where the Changes payload of m begins, when m is laid out as
 * wire_server_encode_changes writes it: [TAG_DOC handle][TAG_CHANGES len]
 * [payload: Change entries], the payload ending exactly at the end of m.
 * 0 for anything else (another kind, handle 0, an unexpected layout): such
 * a message is never merged, only sent as it is. */
static size_t changes_payload(const srv_msg *m, uint32_t *handle)
{
	const uint8_t *p = m->payload;
	size_t i = 1;
	uint64_t h, len;
	if (m->len < 5 || p[0] != TAG_DOC || !get_varint(p, m->len, &i, &h) || h == 0 ||
	    h > UINT32_MAX || i >= m->len || p[i++] != TAG_CHANGES ||
	    !get_varint(p, m->len, &i, &len) || len == 0 || len != m->len - i || p[i] != TAG_CHANGE)
		return 0;
	*handle = (uint32_t)h;
	return i;
}

#ifndef NDEBUG
/* The queue's counters agree with its entries (checked after each merge). */
static bool queue_consistent(const srv_conn *c)
{
	size_t bytes = 0, count = 0;
	const srv_qent *last = NULL;
	for (const srv_qent *e = c->q_head; e; e = e->next) {
		bytes += e->msg->len;
		count++;
		last = e;
	}
	return bytes == c->q_bytes && count == c->q_count && last == c->q_tail;
}
#endif

/* Whether m goes out plain on c (see coalesce_head). */
static bool goes_plain(const srv_conn *c, const srv_msg *m)
{
	return !c->deflate || m->len < c->srv->cfg.deflate_min_bytes || (m->z_tried && !m->z);
}

/*
 * Before the head of c's queue starts to go out: if it and the messages
 * right after it are Changes for the same handle, replace them with one
 * Changes holding all their Change entries in order. Only consecutive
 * entries are merged, so nothing moves across an Ack, a Welcome or anything
 * else (srv.h invariant 2); the result is the canonical encoding of those
 * changes in one message: [doc][changes tag][sum of the payload lengths]
 * [payload 1][payload 2]..., built by copying, without a protobuf encoder.
 * It stays within COALESCE_MAX_BYTES and cfg.max_message_bytes (a client
 * may rely on Changes under 1 MiB) and COALESCE_MAX_MSGS messages.
 *
 * Compression is left as it was: a merged message is this connection's
 * alone, so compressing it would cost deflate CPU per connection exactly
 * when the server is behind (a 64 KiB merge of keystrokes takes 0.8-0.9 ms
 * at level 1 or 4 here, the CPU of some 50 frames, for every lagging
 * connection; the copy that merges takes microseconds). So it goes plain,
 * and on a permessage-deflate connection only messages that would go plain
 * anyway (under cfg.deflate_min_bytes, or not smaller compressed) are
 * merged; the others keep their shared compressed form and their own
 * frame. Either way no more bytes go out than before. When anything is
 * unexpected or memory is short, the queue is left as it was and the
 * messages go one by one.
 */
static void coalesce_head(srv_conn *c)
{
	srv *s = c->srv;
	srv_qent *e = c->q_head;
	assert(e != NULL && c->q_sent == 0);
	if (e->next == NULL)
		return;
	uint32_t handle, h;
	size_t off = changes_payload(e->msg, &handle);
	if (off == 0 || !goes_plain(c, e->msg))
		return;
	size_t cap = COALESCE_MAX_BYTES;
	if (s->cfg.max_message_bytes < cap)
		cap = (size_t)s->cfg.max_message_bytes;
	size_t hdr_fixed = 1 + varint_size(handle) + 1; /* tags and handle */
	size_t sum = e->msg->len - off, old = e->msg->len, n = 1;
	srv_qent *last = e;
	for (srv_qent *x = e->next; x != NULL && n < COALESCE_MAX_MSGS; x = x->next) {
		size_t o = changes_payload(x->msg, &h);
		if (o == 0 || h != handle || !goes_plain(c, x->msg))
			break;
		size_t add = x->msg->len - o;
		if (hdr_fixed + varint_size(sum + add) + sum + add > cap)
			break;
		sum += add;
		old += x->msg->len;
		n++;
		last = x;
	}
	if (n < 2)
		return;
	size_t len = hdr_fixed + varint_size(sum) + sum;
	srv_msg *m = srv_msg_new(len);
	if (m == NULL)
		return;	   /* one by one, as queued */
	m->z_tried = true; /* plain, as its parts */
	uint8_t *p = m->payload;
	*p++ = TAG_DOC;
	p += put_varint(p, handle);
	*p++ = TAG_CHANGES;
	p += put_varint(p, sum);
	srv_qent *after = last->next;
	for (srv_qent *x = e; x != after; x = x->next) {
		size_t o = changes_payload(x->msg, &h);
		memcpy(p, x->msg->payload + o, x->msg->len - o);
		p += x->msg->len - o;
	}
	assert((size_t)(p - m->payload) == len && len <= old);
	for (srv_qent *x = e->next; x != after;) {
		srv_qent *next = x->next;
		srv_msg_unref(x->msg);
		free(x);
		x = next;
	}
	srv_msg_unref(e->msg);
	e->msg = m;
	e->next = after;
	if (after == NULL)
		c->q_tail = e;
	c->q_bytes -= old - len;
	c->q_count -= n - 1;
	assert(queue_consistent(c));
}

/* Fragments written per drain: 64 KiB (one merged message) before the
 * loop serves the other connections. */
#define DRAIN_FRAGMENTS 4

/* Write the next fragment of the head message. 0, or -1 on a write error. */
static int write_head(srv_conn *c)
{
	srv *s = c->srv;
	srv_qent *e = c->q_head;
	if (c->q_sent == 0)
		coalesce_head(c);
	srv_msg *m = e->msg;
	/* compressed or plain is decided once per message (m->z never changes
	 * after the first try), so every fragment agrees */
	if (c->deflate && !m->z_tried && m->len >= s->cfg.deflate_min_bytes && m->len > 0)
		msg_compress(s, m);
	bool z = c->deflate && m->z != NULL;
	uint8_t *body = z ? m->z + LWS_PRE : m->payload;
	size_t total = z ? m->zlen : m->len;
	size_t left = total - c->q_sent;
	size_t n = left < SRV_FRAGMENT ? left : SRV_FRAGMENT;
	bool end = n == left;
	if (write_frame(c, body, c->q_sent, n, end, z) != 0) {
		srv_debug(&s->log, "conn %llu: write failed", (unsigned long long)c->id);
		if (c->state == SRV_CONN_OPEN) /* else keep the reason of our close */
			c->why = SRV_CLOSED_ERROR;
		return -1;
	}
	s->metrics.bytes_out += n;
	c->q_sent += n;
	if (end) {
		c->q_head = e->next;
		if (c->q_head == NULL)
			c->q_tail = NULL;
		c->q_bytes -= m->len;
		c->q_count--;
		c->q_sent = 0;
		srv_msg_unref(m);
		free(e);
	}
	return 0;
}

/* Write from the queue until it is empty, lws holds back a partial send
 * (it has asked for WRITEABLE then), or DRAIN_FRAGMENTS were written.
 * Checking lws_partial_buffered after each write is what lets one
 * callback write more than once (lws-ws-state.h). */
static int drain(srv_conn *c)
{
	for (int i = 0; i < DRAIN_FRAGMENTS && c->q_head != NULL; i++) {
		if (write_head(c) != 0)
			return -1;
		if (lws_partial_buffered(c->wsi))
			break;
	}
	return 0;
}

static bool write_through_ok(const srv_conn *c)
{
	return c->state == SRV_CONN_OPEN && !c->peer_closed && !c->ping_due &&
	       c != c->srv->rx_conn && c->q_sent == 0 && !lws_partial_buffered(c->wsi);
}

/* A write outside WRITEABLE failed (the socket is gone): we cannot return
 * -1 to lws from here, so close as the heartbeat does, at lws's next
 * timer pass. Memberships stay until LWS_CALLBACK_CLOSED. */
static void write_failed(srv_conn *c)
{
	c->state = SRV_CONN_CLOSING;
	queue_drop(c);
	lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
}

int srv_conn_writeable(srv_conn *c)
{
	if (c->ping_due) {
		if (write_ping(c) != 0)
			return -1;
		if (c->q_head != NULL || c->state == SRV_CONN_CLOSING)
			lws_callback_on_writable(c->wsi);
		return 0;
	}
	if (c->q_head == NULL) {
		if (c->state == SRV_CONN_CLOSING) {
			lws_close_reason(c->wsi, (enum lws_close_status)c->close_code,
					 (unsigned char *)c->close_reason, strlen(c->close_reason));
			return -1;
		}
		return 0;
	}
	if (drain(c) != 0)
		return -1;
	if (c->q_head != NULL || c->state == SRV_CONN_CLOSING)
		lws_callback_on_writable(c->wsi);
	return 0;
}

/* ---- receiving ----------------------------------------------------------------------- */

/* Decode with the server's decoder (every field is reset by each decode,
 * so nothing of another connection's message survives) and hand over.
 * -1 when even the decoder cannot be allocated: the connection closes. */
static int dispatch(srv_conn *c, const uint8_t *data, size_t len)
{
	srv *s = c->srv;
	wire_client_msg *m = srv_decoder(s);
	if (m == NULL) {
		c->why = SRV_CLOSED_ERROR;
		return -1;
	}
	int rc = wire_client_decode(m, data, len, &s->limits);
	if (rc != WIRE_OK) {
		uint64_t batch = m->kind == WIRE_CLIENT_UPDATE ? m->client_batch : 0;
		if (rc == WIRE_EVERSION)
			srv_conn_error(c, m->doc, WIRE_ERR_UNSUPPORTED_VERSION, 0,
				       "supported protocol versions: %d", WIRE_PROTOCOL_VERSION);
		else
			srv_conn_error(c, m->doc, wire_error_code(rc), batch, "%s",
				       wire_strerror(rc));
		return 0;
	}
	switch (m->kind) {
	case WIRE_CLIENT_HELLO:
		srv_room_hello(s, c, m);
		break;
	case WIRE_CLIENT_UPDATE:
		srv_room_update(s, c, m);
		break;
	case WIRE_CLIENT_PRESENCE:
		srv_room_presence(s, c, m);
		break;
	case WIRE_CLIENT_LEAVE:
		srv_room_leave(s, c, m->doc);
		break;
	case WIRE_CLIENT_PING: {
		wire_buf b = {0};
		if (wire_server_encode_pong(&b, m->doc, m->nonce) == WIRE_OK)
			srv_conn_send_buf(c, &b, SRV_SEND_BOUNDED);
		else
			srv_conn_fail(c, "encoding a Pong");
		wire_buf_free(&b);
		break;
	}
	case WIRE_CLIENT_NONE:
		break;
	}
	return 0;
}

/* Close from inside the connection's RECEIVE: set the reason, return -1. */
static int close_now(srv_conn *c, int code, const char *reason, enum srv_close_reason why)
{
	c->state = SRV_CONN_CLOSING;
	c->close_code = code;
	c->why = why;
	c->close_reason = reason;
	lws_close_reason(c->wsi, (enum lws_close_status)code, (unsigned char *)reason,
			 strlen(reason));
	return -1;
}

static int receive(srv_conn *c, const void *in, size_t len, bool binary, bool final);

/* Replies to a connection's own messages (Errors, Pongs) wait for
 * WRITEABLE as before write-through: a burst of them written right before
 * a close that RECEIVE decides (a flood over the rate limit) let the Close
 * frame get lost now and then (the client saw 1006, not 1008). */
int srv_conn_receive(srv_conn *c, const void *in, size_t len, bool binary, bool final)
{
	c->srv->rx_conn = c;
	int rc = receive(c, in, len, binary, final);
	c->srv->rx_conn = NULL;
	return rc;
}

static int receive(srv_conn *c, const void *in, size_t len, bool binary, bool final)
{
	srv *s = c->srv;
	s->metrics.bytes_in += len;
	srv_conn_alive(c);
	if (c->state != SRV_CONN_OPEN)
		return 0; /* closing: input is ignored */
	if (!c->rx_in_msg) {
		if (!binary) {
			srv_info(&s->log, "conn %llu: text message, closing (1003)",
				 (unsigned long long)c->id);
			return close_now(c, SRV_CLOSE_UNSUPPORTED, "binary messages only",
					 SRV_CLOSED_PROTOCOL);
		}
		c->rx_in_msg = true;
		c->rx_discarding = false;
		c->rx_total = 0;
		c->rx_len = 0;
		/* a message arriving in pieces must be whole within the limit: a
		 * sender trickling it (slowloris) cannot hold the connection and
		 * its buffer; lws closes the connection when it expires */
		if (!final && s->cfg.message_timeout_s > 0)
			lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_REASON_BASE + 1,
					(int)s->cfg.message_timeout_s);
		c->rx_timed = !final && s->cfg.message_timeout_s > 0;
	}
	c->rx_total += len;
	uint64_t limit = s->cfg.max_message_bytes;
	if (c->rx_total > limit * SRV_HARD_LIMIT_FACTOR) {
		srv_warn(&s->log, "conn %llu: message over %llu bytes, closing (1009)",
			 (unsigned long long)c->id,
			 (unsigned long long)(limit * SRV_HARD_LIMIT_FACTOR));
		return close_now(c, SRV_CLOSE_TOO_LARGE, "message too large", SRV_CLOSED_TOO_LARGE);
	}
	if (c->rx_total > limit && !c->rx_discarding) {
		c->rx_discarding = true; /* from now on its bytes are only counted */
		c->rx_len = 0;
		free(c->rx);
		c->rx = NULL;
		c->rx_cap = 0;
	}
	/* a whole message in this one callback is used where lws holds it */
	bool whole = final && c->rx_len == 0;
	if (!c->rx_discarding && len > 0 && !whole) {
		if (c->rx_len + len > c->rx_cap) {
			size_t cap = c->rx_cap ? c->rx_cap : 4096;
			while (cap < c->rx_len + len)
				cap *= 2;
			if (cap > limit)
				cap = (size_t)limit;
			uint8_t *p = realloc(c->rx, cap);
			if (p == NULL) {
				c->why = SRV_CLOSED_ERROR;
				return -1;
			}
			c->rx = p;
			c->rx_cap = cap;
		}
		memcpy(c->rx + c->rx_len, in, len);
		c->rx_len += len;
	}
	if (!final)
		return 0;
	c->rx_in_msg = false;
	if (c->rx_timed) {
		lws_set_timeout(c->wsi, NO_PENDING_TIMEOUT, 0);
		c->rx_timed = false;
	}
	s->metrics.messages_in++;
	const uint8_t *data = whole ? in : c->rx;
	size_t dlen = whole ? len : c->rx_len;
	int rc = 0;
	int verdict = srv_quota_message(c, c->rx_total);
	if (verdict == SRV_QUOTA_CLOSE) {
		rc = close_now(c, SRV_CLOSE_POLICY, "rate limit exceeded", SRV_CLOSED_RATE_LIMITED);
	} else if (verdict == SRV_QUOTA_REFUSE) {
		srv_quota_refuse(c, c->rx_discarding ? NULL : data, dlen);
	} else if (c->rx_discarding) {
		srv_conn_error(c, 0, WIRE_ERR_TOO_LARGE, 0,
			       "a message of %llu bytes was dropped: the limit is %llu bytes",
			       (unsigned long long)c->rx_total, (unsigned long long)limit);
	} else {
		rc = dispatch(c, data, dlen);
	}
	/* an idle connection keeps no buffer: pieced-together messages are rare */
	c->rx_len = 0;
	free(c->rx);
	c->rx = NULL;
	c->rx_cap = 0;
	return rc;
}
