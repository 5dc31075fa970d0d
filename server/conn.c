/*
 * conn.c - one WebSocket connection (conn.h): incoming messages are
 * reassembled from RECEIVE callbacks (a message may arrive as several
 * frames, each in several chunks of the rx buffer), limited to
 * cfg.max_message_bytes while they grow, decoded with the connection's
 * reusable wire_client_msg and handed to room.c; outgoing messages wait in
 * a FIFO bounded in bytes and leave one fragment per SERVER_WRITEABLE.
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

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commit.h"
#include "room.h"

struct srv_qent {
	srv_msg *msg;
	srv_qent *next;
};

/* Incoming buffers above this are freed after each message instead of kept
 * for the next one. */
#define RX_KEEP (64 * 1024)

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
	if (m != NULL && --m->refs == 0)
		free(m);
}

/* ---- lifecycle ---------------------------------------------------------------------- */

srv_conn *srv_conn_new(srv *s, struct lws *wsi)
{
	srv_conn *c = calloc(1, sizeof *c);
	if (c == NULL)
		return NULL;
	c->msg = wire_client_msg_new(NULL);
	if (c->msg == NULL) {
		free(c);
		return NULL;
	}
	c->srv = s;
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
	free(c->frag);
	c->frag = NULL;
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
	wire_client_msg_free(c->msg);
	free(c->rx);
	free(c);
}

/* ---- sending ------------------------------------------------------------------------ */

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
	if (e == NULL)
		return -1;
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
	if (c->q_head == e)
		lws_callback_on_writable(c->wsi);
	return 0;
}

int srv_conn_send_buf(srv_conn *c, const wire_buf *b, unsigned flags)
{
	srv_msg *m = srv_msg_copy(b->data, b->len);
	if (m == NULL)
		return -1;
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
	wire_buf_free(&b);
}

void srv_conn_close(srv_conn *c, int code, const char *reason, bool drain,
		    enum srv_close_reason why)
{
	if (c->state != SRV_CONN_OPEN)
		return;
	c->state = SRV_CONN_CLOSING;
	c->close_code = code;
	c->why = why;
	snprintf(c->close_reason, sizeof c->close_reason, "%s", reason);
	if (!drain)
		queue_drop(c);
	/* Its memberships stay until LWS_CALLBACK_CLOSED (srv_conn_free): this
	 * may run in the middle of a broadcast walking a member list. Nothing
	 * more is queued for it meanwhile (srv_conn_send refuses). */
	lws_callback_on_writable(c->wsi);
	lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, CLOSE_GRACE_S);
}

/* The payload pointer to hand lws_write for the next fragment of the head
 * message: it needs LWS_PRE writable bytes before it. */
static uint8_t *fragment_ptr(srv_conn *c, srv_msg *m, size_t n)
{
	if (c->q_sent == 0 || m->refs == 1)
		/* the headroom, or bytes of ours already sent */
		return m->payload + c->q_sent;
	/* shared and past the first fragment: the bytes before it are still
	 * needed by the other connections, so copy the fragment */
	if (c->frag == NULL) {
		c->frag = malloc(LWS_PRE + SRV_FRAGMENT);
		if (c->frag == NULL)
			return NULL;
	}
	memcpy(c->frag + LWS_PRE, m->payload + c->q_sent, n);
	return c->frag + LWS_PRE;
}

int srv_conn_writeable(srv_conn *c)
{
	srv *s = c->srv;
	srv_qent *e = c->q_head;
	if (e == NULL) {
		if (c->state == SRV_CONN_CLOSING) {
			lws_close_reason(c->wsi, (enum lws_close_status)c->close_code,
					 (unsigned char *)c->close_reason, strlen(c->close_reason));
			return -1;
		}
		return 0;
	}
	srv_msg *m = e->msg;
	size_t left = m->len - c->q_sent;
	size_t n = left < SRV_FRAGMENT ? left : SRV_FRAGMENT;
	int start = c->q_sent == 0, end = n == left;
	uint8_t *p = fragment_ptr(c, m, n);
	if (p == NULL) {
		c->why = SRV_CLOSED_ERROR;
		return -1;
	}
	int flags = lws_write_ws_flags(LWS_WRITE_BINARY, start, end);
	if (lws_write(c->wsi, p, n, (enum lws_write_protocol)flags) < 0) {
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
		free(c->frag);
		c->frag = NULL;
	}
	if (c->q_head != NULL || c->state == SRV_CONN_CLOSING)
		lws_callback_on_writable(c->wsi);
	return 0;
}

/* ---- receiving ----------------------------------------------------------------------- */

static void dispatch(srv_conn *c, const uint8_t *data, size_t len)
{
	srv *s = c->srv;
	wire_client_msg *m = c->msg;
	int rc = wire_client_decode(m, data, len, &s->limits);
	if (rc != WIRE_OK) {
		uint64_t batch = m->kind == WIRE_CLIENT_UPDATE ? m->client_batch : 0;
		if (rc == WIRE_EVERSION)
			srv_conn_error(c, m->doc, WIRE_ERR_UNSUPPORTED_VERSION, 0,
				       "supported protocol versions: %d", WIRE_PROTOCOL_VERSION);
		else
			srv_conn_error(c, m->doc, wire_error_code(rc), batch, "%s",
				       wire_strerror(rc));
		return;
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
		wire_buf_free(&b);
		break;
	}
	case WIRE_CLIENT_NONE:
		break;
	}
}

/* Close from inside the connection's RECEIVE: set the reason, return -1. */
static int close_now(srv_conn *c, int code, const char *reason, enum srv_close_reason why)
{
	c->state = SRV_CONN_CLOSING;
	c->close_code = code;
	c->why = why;
	snprintf(c->close_reason, sizeof c->close_reason, "%s", reason);
	lws_close_reason(c->wsi, (enum lws_close_status)code, (unsigned char *)c->close_reason,
			 strlen(c->close_reason));
	return -1;
}

int srv_conn_receive(srv_conn *c, const void *in, size_t len, bool binary, bool final)
{
	srv *s = c->srv;
	s->metrics.bytes_in += len;
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
		if (c->rx_cap > RX_KEEP) {
			free(c->rx);
			c->rx = NULL;
			c->rx_cap = 0;
		}
	}
	if (!c->rx_discarding && len > 0) {
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
	s->metrics.messages_in++;
	int verdict = srv_quota_message(c, c->rx_total);
	if (verdict == SRV_QUOTA_CLOSE)
		return close_now(c, SRV_CLOSE_POLICY, "rate limit exceeded",
				 SRV_CLOSED_RATE_LIMITED);
	if (verdict == SRV_QUOTA_REFUSE) {
		srv_quota_refuse(c, c->rx_discarding ? NULL : c->rx, c->rx_len);
	} else if (c->rx_discarding) {
		srv_conn_error(c, 0, WIRE_ERR_TOO_LARGE, 0,
			       "a message of %llu bytes was dropped: the limit is %llu bytes",
			       (unsigned long long)c->rx_total, (unsigned long long)limit);
	} else {
		dispatch(c, c->rx, c->rx_len);
	}
	c->rx_len = 0;
	if (c->rx_cap > RX_KEEP) {
		free(c->rx);
		c->rx = NULL;
		c->rx_cap = 0;
	}
	return 0;
}
