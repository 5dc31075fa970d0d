/*
 * wire.h - the C side of the wire contract (proto/quire.proto): converting
 * between protobuf messages and crdt/ types, with hard limits enforced while
 * decoding. Everything that arrives from a socket or from disk passes
 * through here first; a malformed input yields a typed error (WIRE_E*),
 * never a crash and never a partial result.
 *
 * This header is the contract between proto/ (which implements it) and its
 * users (storage/, server/, tools/, bench/). The message-level API for the
 * server (client/server envelopes) is declared further down by proto/.
 *
 * Conventions: functions return WIRE_OK (0) or a negative WIRE_E* code;
 * wire_strerror() names them. Output buffers are wire_buf, owned by the
 * caller and released with wire_buf_free.
 */
#ifndef QUIRE_WIRE_H
#define QUIRE_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "crdt.h"

#ifdef __cplusplus
extern "C" {
#endif

#define WIRE_PROTOCOL_VERSION 1

#define WIRE_STATUS_TABLE(X)                                                                       \
	X(WIRE_OK, 0, "ok")                                                                        \
	X(WIRE_ENOMEM, -1, "out of memory")                                                        \
	X(WIRE_EPARSE, -2, "malformed protobuf")                                                   \
	X(WIRE_EFIELD, -3, "missing or invalid field")                                             \
	X(WIRE_EUTF8, -4, "invalid UTF-8")                                                         \
	X(WIRE_ETOOBIG, -5, "over a size limit")                                                   \
	X(WIRE_EVERSION, -6, "unsupported version")

enum wire_status {
#define WIRE__ENUM(name, value, text) name = value,
	WIRE_STATUS_TABLE(WIRE__ENUM)
#undef WIRE__ENUM
};

const char *wire_strerror(int status);

/* Hard limits applied while decoding (and checked before encoding). */
typedef struct wire_limits {
	size_t max_message_bytes; /* a whole encoded message */
	uint32_t max_ops;         /* ops in one batch / Update / Change */
	size_t max_text_bytes;    /* UTF-8 bytes of all inserts in one batch */
} wire_limits;

/* 1 MiB messages, 10,000 ops, 512 KiB of text. */
extern const wire_limits wire_default_limits;

/* A growable byte buffer (malloc). */
typedef struct wire_buf {
	uint8_t *data;
	size_t len, cap;
} wire_buf;

void wire_buf_free(wire_buf *b);

/* ---- op batches (OpBatch: the payload of a stored change) ---------------- */

/* Append the OpBatch encoding of ops[0..n) to out. */
int wire_ops_encode(const crdt_op *ops, size_t n, wire_buf *out);

/* Decode an OpBatch into `out` (appended; text copied into the batch).
 * Every op is checked for shape (kind, non-zero replica and length, UTF-8
 * text of exactly len code points, counters and clocks in range) but not
 * against any document. On error nothing is appended. */
int wire_ops_decode(const uint8_t *data, size_t len, const wire_limits *lim, crdt_batch *out);

/* ---- snapshot container (Snapshot) -------------------------------------- */

/* Encode doc (crdt_doc_encode inside a Snapshot message) at `seq`. */
int wire_snapshot_encode(const crdt_doc *doc, const char *doc_id, uint64_t seq, wire_buf *out);

/* Decode a Snapshot message into a new document edited as `replica`.
 * *seq receives its seq; doc_id (if not NULL) must match the stored id.
 * Errors: WIRE_EPARSE / WIRE_EFIELD (container), WIRE_EVERSION (engine
 * format), WIRE_EFIELD with *crdt_status set (engine refused the state). */
int wire_snapshot_decode(const uint8_t *data, size_t len, const char *doc_id, crdt_replica replica,
			 const crdt_options *opts, crdt_doc **doc, uint64_t *seq, int *crdt_status);

#ifdef __cplusplus
}
#endif
#endif /* QUIRE_WIRE_H */
