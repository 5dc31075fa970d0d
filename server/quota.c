/*
 * quota.c - the limits of quota.h: the upgrade gate (Origin, connections
 * per address), the per-connection token buckets and the document size
 * check, plus the start-up line that says how open the server is.
 *
 * Connections per address are counted by walking s->conns (one strcmp per
 * open connection, once per upgrade): simple and exact, and cheap next to
 * the TLS-less handshake itself up to tens of thousands of connections.
 */
#define _POSIX_C_SOURCE 200809L

#include "quota.h"

#include <ctype.h>
#include <string.h>

#include "conn.h"
#include "srv.h"

/* ---- token buckets ------------------------------------------------------------- */

static void refill(const srv_config *cfg, srv_quota_conn *q, int64_t now)
{
	double msg_cap = (double)cfg->max_msgs_per_s * (double)cfg->rate_burst_s;
	double byte_cap = (double)cfg->max_bytes_per_s * (double)cfg->rate_burst_s;
	if (!q->started) {
		q->started = true;
		q->msg_tokens = msg_cap;
		q->byte_tokens = byte_cap;
		q->last_ms = now;
		q->window_ms = now;
		return;
	}
	double dt = (double)(now - q->last_ms) / 1000.0;
	q->last_ms = now;
	if (dt <= 0)
		return;
	q->msg_tokens += dt * (double)cfg->max_msgs_per_s;
	if (q->msg_tokens > msg_cap)
		q->msg_tokens = msg_cap;
	q->byte_tokens += dt * (double)cfg->max_bytes_per_s;
	if (q->byte_tokens > byte_cap)
		q->byte_tokens = byte_cap;
}

int srv_quota_message(srv_conn *c, uint64_t bytes)
{
	srv *s = c->srv;
	const srv_config *cfg = &s->cfg;
	if (cfg->max_msgs_per_s == 0 && cfg->max_bytes_per_s == 0)
		return SRV_QUOTA_PASS;
	srv_quota_conn *q = &c->quota;
	int64_t now = srv_mono_ms();
	refill(cfg, q, now);
	enum srv_refusal kind;
	if (cfg->max_msgs_per_s > 0 && q->msg_tokens < 1.0) {
		kind = SRV_REFUSED_RATE_MSGS;
	} else if (cfg->max_bytes_per_s > 0 && q->byte_tokens < 0.0) {
		kind = SRV_REFUSED_RATE_BYTES;
	} else {
		if (cfg->max_msgs_per_s > 0)
			q->msg_tokens -= 1.0;
		if (cfg->max_bytes_per_s > 0)
			q->byte_tokens -= (double)bytes;
		return SRV_QUOTA_PASS;
	}
	s->metrics.refusals[kind]++;
	if (now - q->window_ms >= 1000) {
		q->window_ms = now;
		q->window_msgs = q->window_bytes = 0;
	}
	q->window_msgs++;
	q->window_bytes += bytes;
	if ((cfg->max_msgs_per_s > 0 &&
	     q->window_msgs > SRV_QUOTA_FLOOD_FACTOR * cfg->max_msgs_per_s) ||
	    (cfg->max_bytes_per_s > 0 &&
	     q->window_bytes > SRV_QUOTA_FLOOD_FACTOR * cfg->max_bytes_per_s)) {
		srv_warn(&s->log, "conn %llu: flooding far over the rate limits, closing (1008)",
			 (unsigned long long)c->id);
		return SRV_QUOTA_CLOSE;
	}
	if (q->window_msgs == 1)
		srv_info(&s->log, "conn %llu: over the %s rate limit", (unsigned long long)c->id,
			 kind == SRV_REFUSED_RATE_MSGS ? "message" : "byte");
	return SRV_QUOTA_REFUSE;
}

void srv_quota_refuse(srv_conn *c, const uint8_t *data, size_t len)
{
	srv *s = c->srv;
	uint32_t doc = 0;
	uint64_t batch = 0;
	if (data != NULL) {
		wire_client_msg *m = srv_decoder(s); /* shared (conn.h) */
		if (m != NULL && wire_client_decode(m, data, len, &s->limits) == WIRE_OK) {
			doc = m->doc;
			batch = m->kind == WIRE_CLIENT_UPDATE ? m->client_batch : 0;
		}
	}
	srv_conn_error(c, doc, WIRE_ERR_RATE_LIMITED, batch,
		       "rate limit: at most %llu messages and %llu bytes per second; "
		       "wait, then send again",
		       (unsigned long long)s->cfg.max_msgs_per_s,
		       (unsigned long long)s->cfg.max_bytes_per_s);
}

/* ---- upgrades ----------------------------------------------------------------------- */

bool srv_quota_origin_allowed(const char *list, const char *origin, size_t len)
{
	if (list == NULL || *list == '\0')
		return true;
	while (len > 0 && origin[len - 1] == '/')
		len--;
	const char *p = list;
	while (*p) {
		const char *comma = strchr(p, ',');
		size_t n = comma ? (size_t)(comma - p) : strlen(p);
		const char *e = p;
		size_t en = n;
		while (en > 0 && (*e == ' ' || *e == '\t')) { /* "a, b" */
			e++;
			en--;
		}
		while (en > 0 && (e[en - 1] == ' ' || e[en - 1] == '\t' || e[en - 1] == '/'))
			en--;
		if (en == len && en > 0) {
			size_t i = 0;
			while (i < len &&
			       tolower((unsigned char)e[i]) == tolower((unsigned char)origin[i]))
				i++;
			if (i == len)
				return true;
		}
		p += n + (comma != NULL);
	}
	return false;
}

static int refuse(srv *s, struct lws *wsi, unsigned status, enum srv_refusal kind, const char *body)
{
	s->metrics.refusals[kind]++;
	if (lws_return_http_status(wsi, status, body) != 0)
		return -1; /* could not even write it: hang up */
	return 1;
}

int srv_quota_upgrade(srv *s, struct lws *wsi)
{
	const srv_config *cfg = &s->cfg;
	char peer[64] = "";
	lws_get_peer_simple(wsi, peer, sizeof peer);
	if (cfg->allow_origins[0] != '\0') {
		int n = lws_hdr_total_length(wsi, WSI_TOKEN_ORIGIN);
		if (n > 0) {
			char origin[512] = "";
			if (n >= (int)sizeof origin ||
			    lws_hdr_copy(wsi, origin, sizeof origin, WSI_TOKEN_ORIGIN) != n ||
			    !srv_quota_origin_allowed(cfg->allow_origins, origin, (size_t)n)) {
				srv_info(&s->log,
					 "WebSocket upgrade from %s refused: Origin %.200s is not "
					 "allowed",
					 peer, origin);
				return refuse(s, wsi, HTTP_STATUS_FORBIDDEN, SRV_REFUSED_ORIGIN,
					      "Origin not allowed");
			}
		}
	}
	if (cfg->max_conns_per_ip > 0) {
		uint64_t k = 0;
		for (const srv_conn *c = s->conns; c; c = c->next)
			k += strcmp(c->peer, peer) == 0;
		if (k >= cfg->max_conns_per_ip) {
			srv_info(&s->log,
				 "WebSocket upgrade from %s refused: %llu connections already "
				 "(--max-conns-per-ip)",
				 peer, (unsigned long long)k);
			return refuse(s, wsi, 429, SRV_REFUSED_CONNS_PER_IP,
				      "Too many connections from this address");
		}
	}
	return 0;
}

/* ---- documents ------------------------------------------------------------------------ */

bool srv_quota_doc_fits(srv *s, const srv_doc *d, const crdt_op *ops, size_t n)
{
	uint64_t add = 0;
	for (size_t i = 0; i < n; i++)
		if (ops[i].kind == CRDT_OP_INSERT && ops[i].text != NULL)
			add += ops[i].text_bytes;
	if (add == 0)
		return true;
	uint64_t have = crdt_doc_utf8_bytes(d->crdt);
	if (have + add <= s->cfg.max_doc_bytes)
		return true;
	s->metrics.refusals[SRV_REFUSED_DOC_BYTES]++;
	return false;
}

/* ---- start-up ---------------------------------------------------------------------------- */

void srv_quota_announce(srv *s)
{
	const srv_config *cfg = &s->cfg;
	if (s->auth.key_len == 0)
		srv_log_warn_always(&s->log,
				    "WARNING: no --token-secret: the server is OPEN, anyone who can "
				    "reach it can read and write every document");
	else
		srv_log_always(&s->log, "auth: signed tokens required (HMAC-SHA256)");
	if (cfg->allow_origins[0] == '\0')
		srv_log_always(&s->log, "origins: any Origin may open a WebSocket "
					"(no --allow-origin)");
	else
		srv_log_always(&s->log, "origins: WebSocket upgrades only from %s",
			       cfg->allow_origins);
	srv_info(&s->log,
		 "limits: %llu messages/s and %llu bytes/s per connection (burst %llu s), "
		 "%llu connections per address (0: no limit), documents up to %llu bytes",
		 (unsigned long long)cfg->max_msgs_per_s, (unsigned long long)cfg->max_bytes_per_s,
		 (unsigned long long)cfg->rate_burst_s, (unsigned long long)cfg->max_conns_per_ip,
		 (unsigned long long)cfg->max_doc_bytes);
}
