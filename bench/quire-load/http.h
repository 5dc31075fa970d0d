/*
 * http.h - a blocking one-shot HTTP/1.1 GET over loopback, for the soak's
 * final check against the server's document API (PROTOCOL.md section 12):
 * GET /v1/docs/{id}?format=text gives the committed text and its seq in
 * X-Quire-Seq.
 */
#ifndef QL_HTTP_H
#define QL_HTTP_H

#include <stddef.h>
#include <stdint.h>

/* GET the document's text. *status is the HTTP status (404: never written);
 * on 200 *text (malloc'd, NUL-terminated, the caller frees) and *seq are
 * set. 0, or -1 when the request failed (no status). */
int ql_http_doc(uint16_t port, const char *doc_id, int timeout_ms, int *status, uint64_t *seq,
		char **text, size_t *len);

#endif
