/*
 * sha1.h - SHA-1 (FIPS 180-4) and base64 (RFC 4648), just enough for the
 * WebSocket handshake (RFC 6455 section 4: Sec-WebSocket-Accept is
 * base64(SHA-1(key + GUID))). Not for anything that needs security.
 */
#ifndef QL_SHA1_H
#define QL_SHA1_H

#include <stddef.h>
#include <stdint.h>

/* The 20-byte digest of data[0..len). */
void ql_sha1(const void *data, size_t len, uint8_t out[20]);

/* Base64 of in[0..n) into out (NUL-terminated); out needs 4*((n+2)/3)+1
 * bytes. Returns the length written (without the NUL). */
size_t ql_base64(const uint8_t *in, size_t n, char *out);

#endif
