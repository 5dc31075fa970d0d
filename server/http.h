/*
 * http.h - quire-server's HTTP API, served by the "quire-http" protocol
 * through two callback mounts: GET /healthz (200 with a JSON summary, 503
 * while stopping) and GET /metrics (Prometheus text format 0.0.4). Static
 * files of --web are served by lws itself (file mount at /, server.c);
 * requests that match no mount get 404 from srv_http_not_found.
 */
#ifndef QUIRE_SRV_HTTP_H
#define QUIRE_SRV_HTTP_H

#include <libwebsockets.h>

/* Per-request state of the "quire-http" protocol (its per_session_data). */
typedef struct srv_http_pss {
	unsigned char *body; /* LWS_PRE + len, written at HTTP_WRITEABLE */
	size_t len;
} srv_http_pss;

/* The "quire-http" protocol's callback. */
int srv_http_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
		      size_t len);

/* Answer an HTTP request that matched no mount with 404 (called from the
 * WebSocket protocol's LWS_CALLBACK_HTTP, which lws uses for those). Returns
 * what the callback must return. */
int srv_http_not_found(struct lws *wsi);

#endif /* QUIRE_SRV_HTTP_H */
