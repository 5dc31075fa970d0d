/*
 * buf.h - a growable text/byte buffer for the HTTP bodies quire-server
 * builds (/metrics, /healthz). Appending never truncates: on allocation
 * failure the buffer is marked failed, later appends are no-ops, and the
 * caller checks `failed` once at the end.
 */
#ifndef QUIRE_SRV_BUF_H
#define QUIRE_SRV_BUF_H

#include <stdbool.h>
#include <stddef.h>

#include "log.h" /* SRV_PRINTF */

typedef struct srv_buf {
	char *data; /* NUL-terminated when len > 0 */
	size_t len, cap;
	bool failed;
} srv_buf;

void srv_buf_append(srv_buf *b, const void *data, size_t len);
void srv_buf_printf(srv_buf *b, const char *fmt, ...) SRV_PRINTF(2, 3);
void srv_buf_free(srv_buf *b);

#endif /* QUIRE_SRV_BUF_H */
