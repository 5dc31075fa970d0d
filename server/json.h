/*
 * json.h - JSON string escaping for the HTTP API (api.c) and the SSE
 * stream (sse.c). The input is UTF-8 the CRDT has already validated, so
 * bytes >= 0x80 are copied as they are (JSON text is UTF-8); what is
 * escaped: the quote, the backslash, every control character (U+0000 ..
 * U+001F and U+007F, the usual short forms where JSON has one, \u00XX
 * otherwise) and U+2028 / U+2029, which JavaScript source cannot hold raw.
 * The output never contains a raw newline, so a JSON value fits on one
 * SSE `data:` line.
 */
#ifndef QUIRE_SRV_JSON_H
#define QUIRE_SRV_JSON_H

#include <stddef.h>

#include "buf.h"

/* Bytes srv_json_str_put writes for s[0..n), the two quotes included. */
size_t srv_json_str_len(const char *s, size_t n);

/* Write s[0..n) as a quoted JSON string at dst (srv_json_str_len bytes,
 * no NUL). Returns the end of what was written. */
char *srv_json_str_put(char *dst, const char *s, size_t n);

/* Append s[0..n) as a quoted JSON string to b (b->failed on ENOMEM). */
void srv_json_str(srv_buf *b, const char *s, size_t n);

#endif /* QUIRE_SRV_JSON_H */
