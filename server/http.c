/*
 * http.c - the HTTP endpoints of http.h. A response is built whole in
 * memory (both are small), its headers written from the LWS_CALLBACK_HTTP
 * callback, its body from the next HTTP_WRITEABLE with one lws_write, then
 * the transaction completes (keep-alive is lws's business).
 */
#define _POSIX_C_SOURCE 200809L

#include "http.h"

#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "conn.h"
#include "srv.h"
#include "sse.h"

static int respond(struct lws *wsi, srv_http_pss *pss, unsigned status, const char *type,
		   const char *body, size_t len)
{
	unsigned char hdr[LWS_PRE + 1024];
	unsigned char *start = hdr + LWS_PRE, *p = start, *end = hdr + sizeof hdr - 1;
	if (lws_add_http_common_headers(wsi, status, type, len, &p, end) ||
	    lws_add_http_header_by_name(wsi, (const unsigned char *)"cache-control:",
					(const unsigned char *)"no-store", 8, &p, end) ||
	    lws_finalize_write_http_header(wsi, start, &p, end))
		return -1;
	if (len == 0)
		return lws_http_transaction_completed(wsi) ? -1 : 0;
	free(pss->body);
	pss->body = malloc(LWS_PRE + len);
	if (pss->body == NULL)
		return -1;
	memcpy(pss->body + LWS_PRE, body, len);
	pss->len = len;
	lws_callback_on_writable(wsi);
	return 0;
}

static void gauges(const srv *s, srv_gauges *g)
{
	memset(g, 0, sizeof *g);
	g->connections = s->n_conns;
	for (const srv_conn *c = s->conns; c; c = c->next) {
		g->members += c->n_members;
		g->send_queue_bytes += c->q_bytes;
	}
	for (size_t i = 0; i < s->docs.n_buckets; i++)
		for (const srv_doc *d = s->docs.buckets[i]; d; d = d->hnext)
			g->documents_loaded += d->state == SRV_DOC_READY;
	g->sse_streams = srv_sse_count(s);
	store_checkpoint_counts ck;
	store_checkpoint_stats(s->db, &ck);
	g->checkpoints_background = ck.background;
	g->checkpoints_inline = ck.inline_runs;
	g->checkpoint_failures = ck.background_failures;
}

static int healthz(struct lws *wsi, srv *s, srv_http_pss *pss)
{
	srv_gauges g;
	gauges(s, &g);
	srv_buf b = {0};
	srv_buf_printf(&b,
		       "{\"status\":\"%s\",\"connections\":%llu,\"documents\":%llu,"
		       "\"members\":%llu,\"auth\":\"%s\"}\n",
		       s->stopping ? "stopping" : "ok", (unsigned long long)g.connections,
		       (unsigned long long)g.documents_loaded, (unsigned long long)g.members,
		       s->auth.key_len ? "token" : "open");
	int rc = b.failed ? -1
			  : respond(wsi, pss, s->stopping ? HTTP_STATUS_SERVICE_UNAVAILABLE : 200,
				    "application/json", b.data, b.len);
	srv_buf_free(&b);
	return rc;
}

static int metrics(struct lws *wsi, srv *s, srv_http_pss *pss)
{
	srv_gauges g;
	gauges(s, &g);
	srv_buf b = {0};
	srv_metrics_render(&s->metrics, &g, &b);
	int rc = b.failed ? -1
			  : respond(wsi, pss, 200, "text/plain; version=0.0.4; charset=utf-8",
				    b.data, b.len);
	srv_buf_free(&b);
	return rc;
}

int srv_http_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
		      size_t len)
{
	srv_http_pss *pss = user;
	switch (reason) {
	case LWS_CALLBACK_HTTP: {
		srv *s = srv_of(wsi);
		char uri[128];
		s->metrics.http_requests++;
		int n = lws_hdr_copy(wsi, uri, sizeof uri, WSI_TOKEN_GET_URI);
		if (n <= 0 && lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI) > 0) {
			uri[0] = '\0'; /* a GET too long for uri: none of ours, 404 below */
		} else if (n <= 0) {
			static const char msg[] = "only GET\n";
			return respond(wsi, pss, HTTP_STATUS_METHOD_NOT_ALLOWED, "text/plain", msg,
				       sizeof msg - 1);
		}
		if (strcmp(uri, "/healthz") == 0)
			return healthz(wsi, s, pss);
		if (strcmp(uri, "/metrics") == 0)
			return metrics(wsi, s, pss);
		static const char nf[] = "not found\n";
		return respond(wsi, pss, HTTP_STATUS_NOT_FOUND, "text/plain", nf, sizeof nf - 1);
	}
	case LWS_CALLBACK_HTTP_WRITEABLE: {
		if (pss->body == NULL)
			return 0;
		int n = lws_write(wsi, pss->body + LWS_PRE, pss->len, LWS_WRITE_HTTP_FINAL);
		free(pss->body);
		pss->body = NULL;
		if (n < 0)
			return -1;
		return lws_http_transaction_completed(wsi) ? -1 : 0;
	}
	case LWS_CALLBACK_CLOSED_HTTP:
		free(pss->body);
		pss->body = NULL;
		return 0;
	default:
		break;
	}
	return lws_callback_http_dummy(wsi, reason, user, in, len);
}

int srv_http_not_found(struct lws *wsi)
{
	static const char nf[] = "not found\n";
	unsigned char hdr[LWS_PRE + 512];
	unsigned char *start = hdr + LWS_PRE, *p = start, *end = hdr + sizeof hdr - 1;
	if (lws_add_http_common_headers(wsi, HTTP_STATUS_NOT_FOUND, "text/plain", sizeof nf - 1, &p,
					end) ||
	    lws_finalize_write_http_header(wsi, start, &p, end))
		return -1;
	unsigned char body[LWS_PRE + sizeof nf];
	memcpy(body + LWS_PRE, nf, sizeof nf - 1);
	if (lws_write(wsi, body + LWS_PRE, sizeof nf - 1, LWS_WRITE_HTTP_FINAL) < 0)
		return -1;
	return lws_http_transaction_completed(wsi) ? -1 : 0;
}
