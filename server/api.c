/*
 * api.c - GET /v1/docs/{id} and the routing of GET /v1/docs/{id}/events to
 * sse.c (api.h).
 *
 * A response body is built whole (the text is needed whole anyway) in one
 * buffer with LWS_PRE bytes of headroom, its headers written at once, and
 * the body written API_CHUNK bytes per HTTP_WRITEABLE (TOOLCHAIN.md: one
 * lws_write per WRITEABLE), the last with LWS_WRITE_HTTP_FINAL; then the
 * transaction completes and keep-alive is lws's business.
 *
 * Committed state only: the document in memory also holds the changes of
 * the current turn, which are not durable yet (srv.h invariant 1). When it
 * has some, the answer waits for the group commit at the end of the turn
 * (the request asks for WRITEABLE, which lws delivers after the flush
 * timer ran) and looks the document up again by id then.
 */
#define _POSIX_C_SOURCE 200809L

#include "api.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "commit.h"
#include "docs.h"
#include "json.h"
#include "sse.h"

/* Body bytes written per HTTP_WRITEABLE. */
#define API_CHUNK (32 * 1024)
/* WRITEABLE rounds a request waits for the group commit before 503. */
#define API_MAX_WAITS 1000

/* ---- access control: the one hook --------------------------------------------- */

/* The request's token: `Authorization: Bearer <token>`, else ?token=.
 * Returns its length (0: none); out holds it NUL-terminated. */
static size_t request_token(struct lws *wsi, char *out, size_t cap)
{
	out[0] = '\0';
	int n = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_AUTHORIZATION);
	if (n > 0 && (size_t)n < cap &&
	    lws_hdr_copy(wsi, out, (int)cap, WSI_TOKEN_HTTP_AUTHORIZATION) > 0) {
		const char *p = out;
		if (strncasecmp(p, "Bearer ", 7) == 0) {
			p += 7;
			while (*p == ' ')
				p++;
			memmove(out, p, strlen(p) + 1);
			return strlen(out);
		}
		out[0] = '\0';
		return 0;
	}
	const char *v = lws_get_urlarg_by_name(wsi, "token=", out, (int)cap);
	if (v == NULL) {
		out[0] = '\0';
		return 0;
	}
	memmove(out, v, strlen(v) + 1);
	return strlen(out);
}

int srv_http_authorize(srv *s, struct lws *wsi, const char *doc_id, size_t len,
		       enum srv_http_access access, const char **why)
{
	(void)access; /* every HTTP access reads: a read or write token will do */
	*why = NULL;
	if (s->auth.key_len == 0)
		return 0; /* the server is open (said loudly at start) */
	char token[SRV_TOKEN_MAX + 16];
	size_t n = request_token(wsi, token, sizeof token);
	srv_token t;
	int rc = srv_token_verify(s->auth.key, s->auth.key_len, token, n, srv_wall_ms() / 1000, &t);
	if (rc != SRV_TOKEN_OK) {
		s->metrics.refusals[SRV_REFUSED_UNAUTHORIZED]++;
		*why = srv_token_strerror(rc);
		return 401;
	}
	if (!srv_token_grants(&t, doc_id, len)) {
		s->metrics.refusals[SRV_REFUSED_FORBIDDEN]++;
		*why = "the token does not grant this document";
		return 403;
	}
	return 0;
}

/* ---- Accept ----------------------------------------------------------------------- */

/* The q-value the Accept header gives type/sub: that of the most specific
 * matching range (exact > type/ * > * / *); -1 when none matches. */
static double accept_q(const char *accept, const char *type, const char *sub)
{
	double best_q = -1;
	int best_spec = -1;
	const char *p = accept;
	while (*p) {
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		if (*p == '\0')
			break;
		const char *end = p + strcspn(p, ",");
		const char *semi = memchr(p, ';', (size_t)(end - p));
		const char *rend = semi ? semi : end;
		while (rend > p && (rend[-1] == ' ' || rend[-1] == '\t'))
			rend--;
		const char *slash = memchr(p, '/', (size_t)(rend - p));
		double q = 1;
		for (const char *a = semi; a && a < end;) {
			a++;
			while (*a == ' ' || *a == '\t')
				a++;
			if ((a[0] == 'q' || a[0] == 'Q') && a[1] == '=')
				q = strtod(a + 2, NULL);
			a = memchr(a, ';', (size_t)(end - a));
		}
		if (slash != NULL) {
			size_t tl = (size_t)(slash - p), sl = (size_t)(rend - slash - 1);
			bool t_any = tl == 1 && p[0] == '*', s_any = sl == 1 && slash[1] == '*';
			bool t_eq = tl == strlen(type) && strncasecmp(p, type, tl) == 0;
			bool s_eq = sl == strlen(sub) && strncasecmp(slash + 1, sub, sl) == 0;
			int spec = -1;
			if (t_eq && s_eq)
				spec = 2;
			else if (t_eq && s_any)
				spec = 1;
			else if (t_any && s_any)
				spec = 0;
			if (spec > best_spec) {
				best_spec = spec;
				best_q = q;
			}
		}
		p = end;
	}
	return best_q;
}

bool srv_api_prefers_text(const char *accept)
{
	if (accept == NULL || *accept == '\0')
		return false;
	double t = accept_q(accept, "text", "plain"), j = accept_q(accept, "application", "json");
	return t > 0 && t > j;
}

/* ---- responses ---------------------------------------------------------------------- */

static int add_header(struct lws *wsi, const char *name, const char *value, unsigned char **p,
		      unsigned char *end)
{
	return lws_add_http_header_by_name(wsi, (const unsigned char *)name,
					   (const unsigned char *)value, (int)strlen(value), p,
					   end);
}

/* Write the headers now and queue body (LWS_PRE + len bytes, taken over;
 * NULL with len 0: none). seq_hdr: the X-Quire-Seq value, or NULL. */
static int respond_owned(struct lws *wsi, srv_api_pss *pss, unsigned status, const char *type,
			 unsigned char *body, size_t len, const char *seq_hdr)
{
	unsigned char hdr[LWS_PRE + 1024];
	unsigned char *start = hdr + LWS_PRE, *p = start, *end = hdr + sizeof hdr - 1;
	if (lws_add_http_common_headers(wsi, status, type, len, &p, end) ||
	    add_header(wsi, "cache-control:", "no-store", &p, end) ||
	    (seq_hdr && add_header(wsi, "x-quire-seq:", seq_hdr, &p, end)) ||
	    lws_finalize_write_http_header(wsi, start, &p, end)) {
		free(body);
		return -1;
	}
	free(pss->body);
	pss->body = body;
	pss->len = len;
	pss->sent = 0;
	if (len == 0) {
		free(pss->body);
		pss->body = NULL;
		return lws_http_transaction_completed(wsi) ? -1 : 0;
	}
	lws_callback_on_writable(wsi);
	return 0;
}

/* A JSON error {"error":code,"message":msg}. */
static int respond_error(struct lws *wsi, srv_api_pss *pss, unsigned status, const char *code,
			 const char *msg)
{
	srv_buf b = {0};
	srv_buf_printf(&b, "{\"error\":\"%s\",\"message\":", code);
	srv_json_str(&b, msg, strlen(msg));
	srv_buf_append(&b, "}\n", 2);
	unsigned char *body = b.failed ? NULL : malloc(LWS_PRE + b.len);
	if (body == NULL) {
		srv_buf_free(&b);
		return -1;
	}
	memcpy(body + LWS_PRE, b.data, b.len);
	size_t len = b.len;
	srv_buf_free(&b);
	return respond_owned(wsi, pss, status, "application/json", body, len, NULL);
}

/* ---- finding the document ------------------------------------------------------------ */

/*
 * The READY document id[0..len) through the registry, loading it if needed.
 * Returns 200 with *out set, or the HTTP status to answer with and *msg:
 * 404 (never written), 503 (load failed, storage error, stopping).
 */
static unsigned find_doc(srv *s, const char *id, size_t len, srv_doc **out, const char **msg)
{
	srv_doc *d = srv_docs_find(s, id, len);
	bool loaded_now = d == NULL;
	if (d == NULL || d->head == 0) {
		/* unknown to memory, or never written: ask storage first, so a
		 * read never creates a document */
		char key[WIRE_MAX_DOC_ID + 1];
		memcpy(key, id, len);
		key[len] = '\0';
		store_doc_info info;
		int rc = store_doc_info_get(s->db, key, &info);
		if (rc == STORE_ENOTFOUND) {
			*msg = "no such document";
			return HTTP_STATUS_NOT_FOUND;
		}
		if (rc != STORE_OK) {
			srv_err(&s->log, "document '%s': lookup failed: %s (%s)", key,
				store_strerror(rc), store_errmsg(s->db));
			*msg = "storage unavailable; try again later";
			return HTTP_STATUS_SERVICE_UNAVAILABLE;
		}
	}
	if (d == NULL && s->stopping) {
		*msg = "the server is stopping";
		return HTTP_STATUS_SERVICE_UNAVAILABLE;
	}
	d = srv_docs_open(s, id, len); /* found, retried if FAILED and due, or loaded */
	if (d == NULL) {
		*msg = "out of memory";
		return HTTP_STATUS_SERVICE_UNAVAILABLE;
	}
	if (d->state != SRV_DOC_READY) {
		*msg = "the document could not be loaded; try again later";
		return HTTP_STATUS_SERVICE_UNAVAILABLE;
	}
	/* loaded for a reader only: let the idle rule unload it again */
	if ((loaded_now || d->idle_since_ms == 0) && d->n_members == 0 && d->sse == NULL) {
		int64_t now = srv_mono_ms();
		d->idle_since_ms = now > 0 ? now : 1;
	}
	*out = d;
	return HTTP_STATUS_OK;
}

/* ---- GET /v1/docs/{id} ------------------------------------------------------------------ */

static int doc_response(struct lws *wsi, srv *s, srv_api_pss *pss)
{
	srv_doc *d = NULL;
	const char *msg = NULL;
	unsigned st = find_doc(s, pss->doc, pss->doc_len, &d, &msg);
	if (st != HTTP_STATUS_OK)
		return respond_error(wsi, pss, st, st == 404 ? "not_found" : "unavailable", msg);
	if (d->next_seq != d->head + 1 || d->turn_first >= 0) {
		/* uncommitted changes in memory: answer after the flush */
		if (++pss->waits > API_MAX_WAITS)
			return respond_error(wsi, pss, HTTP_STATUS_SERVICE_UNAVAILABLE,
					     "unavailable", "the document is busy; try again");
		pss->waiting = true;
		lws_callback_on_writable(wsi);
		return 0;
	}
	pss->waiting = false;
	size_t nbytes = crdt_doc_utf8_bytes(d->crdt);
	size_t ncp = crdt_doc_length(d->crdt);
	char seq[24];
	snprintf(seq, sizeof seq, "%" PRIu64, d->head);
	unsigned char *body;
	size_t len;
	if (pss->want_text) {
		len = nbytes;
		body = malloc(LWS_PRE + len + 1);
		if (body == NULL)
			return respond_error(wsi, pss, 503, "unavailable", "out of memory");
		crdt_doc_text(d->crdt, (char *)body + LWS_PRE, len + 1);
	} else {
		char *text = malloc(nbytes + 1);
		if (text == NULL)
			return respond_error(wsi, pss, 503, "unavailable", "out of memory");
		crdt_doc_text(d->crdt, text, nbytes + 1);
		char head[64];
		int hn = snprintf(head, sizeof head,
				  ",\"seq\":%" PRIu64 ",\"length\":%zu,\"text\":", d->head, ncp);
		len = 7 + srv_json_str_len(pss->doc, pss->doc_len) + (size_t)hn +
		      srv_json_str_len(text, nbytes) + 2;
		body = malloc(LWS_PRE + len);
		if (body == NULL) {
			free(text);
			return respond_error(wsi, pss, 503, "unavailable", "out of memory");
		}
		char *w = (char *)body + LWS_PRE;
		memcpy(w, "{\"doc\":", 7);
		w = srv_json_str_put(w + 7, pss->doc, pss->doc_len);
		memcpy(w, head, (size_t)hn);
		w = srv_json_str_put(w + hn, text, nbytes);
		memcpy(w, "}\n", 2);
		free(text);
	}
	srv_debug(&s->log, "http: document '%s' at seq %" PRIu64 " (%zu bytes, %s)", d->id, d->head,
		  len, pss->want_text ? "text" : "json");
	return respond_owned(wsi, pss, HTTP_STATUS_OK,
			     pss->want_text ? "text/plain; charset=utf-8" : "application/json",
			     body, len, seq);
}

/* ---- routing ------------------------------------------------------------------------------- */

static bool query_arg(struct lws *wsi, const char *name, char *out, size_t cap)
{
	char buf[256];
	const char *v = lws_get_urlarg_by_name(wsi, name, buf, (int)sizeof buf);
	if (v == NULL)
		return false;
	snprintf(out, cap, "%s", v);
	return true;
}

/* A decimal seq; false when s is not one. */
static bool parse_seq(const char *s, uint64_t *out)
{
	while (*s == ' ')
		s++;
	if (*s < '0' || *s > '9')
		return false;
	uint64_t v = 0;
	for (; *s >= '0' && *s <= '9'; s++) {
		if (v > (UINT64_MAX - (uint64_t)(*s - '0')) / 10)
			return false;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	while (*s == ' ')
		s++;
	*out = v;
	return *s == '\0';
}

static int on_http(struct lws *wsi, srv_api_pss *pss)
{
	srv *s = srv_of(wsi);
	s->metrics.http_requests++;
	char uri[1024];
	int n = lws_hdr_copy(wsi, uri, sizeof uri, WSI_TOKEN_GET_URI);
	if (n <= 0) {
		if (lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI) > 0)
			return respond_error(wsi, pss, 414, "bad_request", "URI too long");
		return respond_error(wsi, pss, HTTP_STATUS_METHOD_NOT_ALLOWED, "method_not_allowed",
				     "only GET");
	}
	/* lws has percent-decoded the path already (its URI parser does) */
	const size_t ml = sizeof SRV_API_MOUNT - 1;
	const char *id = uri + ml;
	if (strncmp(uri, SRV_API_MOUNT, ml) != 0 || *id != '/')
		return respond_error(wsi, pss, HTTP_STATUS_NOT_FOUND, "not_found",
				     "GET /v1/docs/{id} or /v1/docs/{id}/events");
	id++;
	size_t len = strlen(id);
	bool events = false;
	static const char suffix[] = "/events";
	if (len >= sizeof suffix - 1 && strcmp(id + len - (sizeof suffix - 1), suffix) == 0) {
		events = true;
		len -= sizeof suffix - 1;
	}
	if (!wire_doc_id_valid(id, len))
		return respond_error(wsi, pss, HTTP_STATUS_BAD_REQUEST, "bad_request",
				     "invalid document id: 1..200 bytes of [A-Za-z0-9._~/-]");
	const char *why = NULL;
	int deny = srv_http_authorize(s, wsi, id, len, SRV_HTTP_READ, &why);
	if (deny != 0)
		return respond_error(wsi, pss, (unsigned)deny,
				     deny == 401 ? "unauthorized" : "forbidden",
				     why ? why : "not allowed");
	memcpy(pss->doc, id, len);
	pss->doc[len] = '\0';
	pss->doc_len = len;

	if (events) {
		char v[64];
		bool has_last = false;
		uint64_t last = 0;
		int hl = lws_hdr_custom_length(wsi, "last-event-id:", 14);
		if (hl > 0 && hl < (int)sizeof v &&
		    lws_hdr_custom_copy(wsi, v, sizeof v, "last-event-id:", 14) > 0) {
			if (!parse_seq(v, &last))
				return respond_error(wsi, pss, HTTP_STATUS_BAD_REQUEST,
						     "bad_request", "Last-Event-ID is not a seq");
			has_last = true;
		} else if (query_arg(wsi, "last_seq=", v, sizeof v)) {
			if (!parse_seq(v, &last))
				return respond_error(wsi, pss, HTTP_STATUS_BAD_REQUEST,
						     "bad_request", "last_seq is not a seq");
			has_last = true;
		}
		srv_doc *d = NULL;
		const char *msg = NULL;
		unsigned st = find_doc(s, id, len, &d, &msg);
		if (st == HTTP_STATUS_OK && s->stopping) {
			st = HTTP_STATUS_SERVICE_UNAVAILABLE;
			msg = "the server is stopping";
		}
		if (st != HTTP_STATUS_OK)
			return respond_error(wsi, pss, st, st == 404 ? "not_found" : "unavailable",
					     msg);
		pss->sse = srv_sse_open(s, d, wsi, has_last, last);
		return pss->sse ? 0 : -1;
	}

	char v[32];
	if (query_arg(wsi, "format=", v, sizeof v)) {
		if (strcmp(v, "text") == 0)
			pss->want_text = true;
		else if (strcmp(v, "json") == 0)
			pss->want_text = false;
		else
			return respond_error(wsi, pss, HTTP_STATUS_BAD_REQUEST, "bad_request",
					     "format is text or json");
	} else {
		char accept[512] = "";
		if (lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_ACCEPT) < (int)sizeof accept)
			lws_hdr_copy(wsi, accept, sizeof accept, WSI_TOKEN_HTTP_ACCEPT);
		pss->want_text = srv_api_prefers_text(accept);
	}
	return doc_response(wsi, s, pss);
}

static int on_writeable(struct lws *wsi, srv_api_pss *pss)
{
	if (pss->sse != NULL)
		return srv_sse_writeable(pss->sse);
	if (pss->waiting)
		return doc_response(wsi, srv_of(wsi), pss);
	if (pss->body == NULL)
		return 0;
	size_t left = pss->len - pss->sent;
	size_t n = left < API_CHUNK ? left : API_CHUNK;
	bool last = n == left;
	/* the LWS_PRE bytes before this chunk are ours: headroom or bytes sent */
	if (lws_write(wsi, pss->body + LWS_PRE + pss->sent, n,
		      last ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP) < (int)n)
		return -1;
	pss->sent += n;
	if (!last) {
		lws_callback_on_writable(wsi);
		return 0;
	}
	free(pss->body);
	pss->body = NULL;
	return lws_http_transaction_completed(wsi) ? -1 : 0;
}

int srv_api_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
		     size_t len)
{
	srv_api_pss *pss = user;
	switch (reason) {
	case LWS_CALLBACK_HTTP:
		return on_http(wsi, pss);
	case LWS_CALLBACK_HTTP_WRITEABLE:
		return pss ? on_writeable(wsi, pss) : 0;
	case LWS_CALLBACK_TIMER:
		if (pss && pss->sse)
			srv_sse_heartbeat(pss->sse);
		return 0;
	case LWS_CALLBACK_CLOSED_HTTP:
	case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
		if (pss == NULL)
			break;
		free(pss->body);
		pss->body = NULL;
		if (pss->sse) {
			srv_sse_close(pss->sse);
			pss->sse = NULL;
		}
		break;
	default:
		break;
	}
	return lws_callback_http_dummy(wsi, reason, user, in, len);
}
