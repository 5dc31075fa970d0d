/*
 * api.h - the document read API of quire-server, served by the
 * "quire-api" protocol through a callback mount at /v1/docs:
 *
 *   GET /v1/docs/{id}          the committed text and head seq of a document:
 *                              JSON {"doc","seq","length","text"} by default,
 *                              text/plain (seq in X-Quire-Seq) when the Accept
 *                              header prefers it or with ?format=text
 *   GET /v1/docs/{id}/events   a Server-Sent Events stream of its changes
 *                              (sse.h), resumable with Last-Event-ID or
 *                              ?last_seq=
 *
 * {id} is the rest of the path (document ids contain '/'), checked with
 * wire_doc_id_valid (400 otherwise). A document nobody ever wrote is 404; a
 * document whose load failed is 503 with a JSON error, never an empty
 * document. Documents are found or loaded through the registry (docs.h),
 * like a Hello does, and a document loaded for a GET is unloaded again by
 * the idle rule. Errors are JSON: {"error":"not_found","message":"..."}.
 *
 * Access control has one hook, srv_http_authorize, called for every
 * request once the doc id is known and before anything is read.
 */
#ifndef QUIRE_SRV_API_H
#define QUIRE_SRV_API_H

#include <stdbool.h>
#include <stddef.h>

#include <libwebsockets.h>

#include "srv.h"

/* The mount point of the API (server.c adds the mount). */
#define SRV_API_MOUNT "/v1/docs"

struct srv_sse_stream;

/* Per-request state of the "quire-api" protocol (its per_session_data). */
typedef struct srv_api_pss {
	unsigned char *body; /* LWS_PRE + len: the response body being written */
	size_t len, sent;
	bool waiting; /* the document had uncommitted changes: answer after the flush */
	int waits;    /* WRITEABLE rounds spent waiting */
	bool want_text;
	char doc[WIRE_MAX_DOC_ID + 1];
	size_t doc_len;
	struct srv_sse_stream *sse; /* this request is an event stream (sse.c) */
} srv_api_pss;

/* The "quire-api" protocol's callback. */
int srv_api_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
		     size_t len);

/* What a request wants to do with a document. */
enum srv_http_access {
	SRV_HTTP_READ = 1, /* GET /v1/docs/{id}, GET /v1/docs/{id}/events */
};

/*
 * THE access-control hook of the HTTP API: may the request on wsi do
 * `access` to document doc_id[0..len)? Returns 0 when allowed, else the
 * HTTP status to answer with (401 without or with a bad credential, 403
 * for a credential without the right) and sets *why to a short reason for
 * the client (never a token). Called before the document is looked up, so
 * a refused request learns nothing about it. The credential is an access
 * token (server/auth.h) in `Authorization: Bearer <token>` or `?token=`;
 * any valid token granting the document will do (read or write). With no
 * token secret configured the server is open and every request passes.
 */
int srv_http_authorize(srv *s, struct lws *wsi, const char *doc_id, size_t len,
		       enum srv_http_access access, const char **why);

/* Whether an Accept header value prefers text/plain over application/json
 * (RFC 9110 media ranges and q-values; exposed for the tests). */
bool srv_api_prefers_text(const char *accept);

#endif /* QUIRE_SRV_API_H */
