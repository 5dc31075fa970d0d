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

#include <stdbool.h>
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
 * against any document. On error nothing is appended (WIRE_ENOMEM
 * included). `lim` NULL means wire_default_limits.
 * wire_ops_encode checks every op the same way first (WIRE_EFIELD,
 * WIRE_EUTF8, WIRE_ETOOBIG for len > CRDT_MAX_OP_LEN) and appends nothing
 * on error; text containing U+0000 is refused both ways (WIRE_EUTF8). */
int wire_ops_decode(const uint8_t *data, size_t len, const wire_limits *lim, crdt_batch *out);

/* ---- snapshot container (Snapshot) -------------------------------------- */

/* Encode doc (crdt_doc_encode inside a Snapshot message) at `seq`.
 * doc_id must be a valid document id (WIRE_EFIELD otherwise); WIRE_ENOMEM
 * when the engine or the buffer cannot get memory. Appends to out; nothing
 * on error. */
int wire_snapshot_encode(const crdt_doc *doc, const char *doc_id, uint64_t seq, wire_buf *out);

/* Decode a Snapshot message into a new document edited as `replica`.
 * *seq receives its seq; doc_id (if not NULL) must match the stored id.
 * Errors: WIRE_EPARSE / WIRE_EFIELD (container), WIRE_EVERSION (engine
 * format), WIRE_EFIELD with *crdt_status set (engine refused the state). */
int wire_snapshot_decode(const uint8_t *data, size_t len, const char *doc_id, crdt_replica replica,
			 const crdt_options *opts, crdt_doc **doc, uint64_t *seq, int *crdt_status);
/* (continued) On success *doc is the caller's and *crdt_status (if not NULL)
 * is CRDT_OK; on error *doc is NULL. The container's format must equal the
 * state's first byte and the decoded document's version vector must equal
 * the container's (else WIRE_EFIELD, *crdt_status CRDT_ECORRUPT). The
 * size is not limited here: storage bounds what it stores. Memory comes
 * from opts->allocator when given. */

/* ---- message-level API (ClientMessage / ServerMessage) --------------------
 *
 * The server decodes every frame with wire_client_decode and answers with
 * the wire_server_encode_* functions; a C client (tests, bots) does the
 * reverse with wire_client_encode_* and wire_server_decode. Every encoder
 * appends one whole message to `out` and appends nothing on error.
 * docs/PROTOCOL.md describes the flows these messages make up.
 */

/* Limits on the strings of messages, in bytes, checked while decoding
 * (WIRE_ETOOBIG) and before encoding. Strings are UTF-8 without U+0000. */
#define WIRE_MAX_DOC_ID 200         /* Hello.doc_id, Snapshot.doc_id (>= 1) */
#define WIRE_MAX_TOKEN 4096         /* Hello.token */
#define WIRE_MAX_NAME 128           /* Presence.name */
#define WIRE_MAX_COLOR 32           /* Presence.color */
#define WIRE_MAX_ERROR_MESSAGE 1024 /* Error.message */

/* quire.v1.ErrorCode: the numbers on the wire (quire.proto is the
 * authority; wire.c checks at compile time that these agree). The third
 * column is the name in quire.proto. */
#define WIRE_ERROR_CODE_TABLE(X)                                                                   \
	X(WIRE_ERR_UNSPECIFIED, 0, ERROR_UNSPECIFIED)                                            \
	X(WIRE_ERR_BAD_MESSAGE, 1, BAD_MESSAGE)                                                  \
	X(WIRE_ERR_UNSUPPORTED_VERSION, 2, UNSUPPORTED_VERSION)                                  \
	X(WIRE_ERR_UNAUTHORIZED, 3, UNAUTHORIZED)                                                \
	X(WIRE_ERR_FORBIDDEN, 4, FORBIDDEN)                                                      \
	X(WIRE_ERR_UNKNOWN_DOCUMENT, 5, UNKNOWN_DOCUMENT)                                        \
	X(WIRE_ERR_TOO_LARGE, 6, TOO_LARGE)                                                      \
	X(WIRE_ERR_RATE_LIMITED, 7, RATE_LIMITED)                                                \
	X(WIRE_ERR_INVALID_OP, 8, INVALID_OP)                                                    \
	X(WIRE_ERR_MISSING_DEPENDENCY, 9, MISSING_DEPENDENCY)                                    \
	X(WIRE_ERR_STORAGE_FAILURE, 10, STORAGE_FAILURE)                                         \
	X(WIRE_ERR_DOCUMENT_UNAVAILABLE, 11, DOCUMENT_UNAVAILABLE)                               \
	X(WIRE_ERR_TOO_MANY_DOCUMENTS, 12, TOO_MANY_DOCUMENTS)                                   \
	X(WIRE_ERR_SHUTTING_DOWN, 13, SHUTTING_DOWN)                                             \
	X(WIRE_ERR_INTERNAL, 14, INTERNAL)

enum wire_error_code {
#define WIRE__ERR_ENUM(name, value, text) name = value,
	WIRE_ERROR_CODE_TABLE(WIRE__ERR_ENUM)
#undef WIRE__ERR_ENUM
};

/* Whether s[0..n) is a document id the protocol accepts: 1..WIRE_MAX_DOC_ID
 * bytes of [A-Za-z0-9._~/-]. Storage creates documents only with such ids. */
bool wire_doc_id_valid(const char *s, size_t n);

/* The ErrorCode name ("BAD_MESSAGE"); "UNKNOWN" for numbers not in the
 * table (a newer server's codes). Never NULL. */
const char *wire_error_code_name(int code);

/* The ErrorCode to answer a message that failed to decode with `status`
 * (a WIRE_* code): EPARSE, EFIELD, EUTF8 -> BAD_MESSAGE; ETOOBIG ->
 * TOO_LARGE; EVERSION -> UNSUPPORTED_VERSION; ENOMEM and anything else ->
 * INTERNAL; WIRE_OK -> ERROR_UNSPECIFIED (0, not an error). */
int wire_error_code(int status);

/* The ErrorCode for an op the document refused (`crdt_status` from
 * crdt_doc_apply, a CRDT_* code): EINVAL, EUTF8, ERANGE -> INVALID_OP;
 * EMISSING, EPENDING_FULL -> MISSING_DEPENDENCY; ELIMIT -> TOO_LARGE;
 * ECORRUPT, EVERSION -> DOCUMENT_UNAVAILABLE; ENOMEM and anything else ->
 * INTERNAL; CRDT_OK, DUPLICATE, PENDING -> 0 (not errors). */
int wire_crdt_error_code(int crdt_status);

/* Which message a ClientMessage carries (its `msg` field number). */
enum wire_client_kind {
	WIRE_CLIENT_NONE = 0,
	WIRE_CLIENT_HELLO = 2,
	WIRE_CLIENT_UPDATE = 3,
	WIRE_CLIENT_PRESENCE = 4,
	WIRE_CLIENT_PING = 5,
	WIRE_CLIENT_LEAVE = 6
};

/* Which message a ServerMessage carries (its `msg` field number). */
enum wire_server_kind {
	WIRE_SERVER_NONE = 0,
	WIRE_SERVER_WELCOME = 2,
	WIRE_SERVER_CHANGES = 3,
	WIRE_SERVER_ACK = 4,
	WIRE_SERVER_PRESENCE = 5,
	WIRE_SERVER_ERROR = 6,
	WIRE_SERVER_PONG = 7
};

/* Hello. Decoded strings are NUL-terminated and valid until the next
 * decode into the same message object; for encoding, the lengths count. */
typedef struct wire_hello {
	uint32_t protocol_version; /* WIRE_PROTOCOL_VERSION */
	const char *doc_id;        /* 1..WIRE_MAX_DOC_ID bytes of [A-Za-z0-9._~/-] */
	size_t doc_id_len;
	crdt_replica replica; /* non-zero */
	uint64_t last_seq;    /* 0: none */
	const char *token;    /* may be empty ("" or NULL with token_len 0) */
	size_t token_len;
} wire_hello;

/* Presence (both directions). An anchor or head is "just after unit
 * (replica, counter)", CRDT_NO_ID for the document's start. */
typedef struct wire_presence {
	crdt_replica replica; /* non-zero */
	uint32_t clock;
	const char *name; /* UTF-8, name_len <= WIRE_MAX_NAME */
	size_t name_len;
	const char *color; /* CSS color, color_len <= WIRE_MAX_COLOR */
	size_t color_len;
	bool has_anchor, has_head;
	crdt_id anchor, head;
	bool gone; /* set by the server when the member left */
} wire_presence;

/*
 * A decoded ClientMessage. Fields are read-only for the caller and valid
 * until the next wire_client_decode on the same object or its free; only
 * the fields of `kind` are meaningful. The object keeps its memory (an
 * arena for protobuf-c and the ops batch) from one decode to the next, so a
 * server decodes with one object per connection and allocates nothing in
 * the steady state.
 */
typedef struct wire_client_msg {
	uint32_t doc; /* the handle; 0 only for Ping (connection-wide) */
	enum wire_client_kind kind;
	wire_hello hello;      /* WIRE_CLIENT_HELLO */
	uint64_t client_batch; /* WIRE_CLIENT_UPDATE, >= 1 */
	crdt_batch *ops;       /* WIRE_CLIENT_UPDATE: >= 1 op, checked for shape */
	size_t n_ops;          /* Op entries on the wire (the batch may merge runs) */
	wire_presence presence; /* WIRE_CLIENT_PRESENCE */
	uint64_t nonce;         /* WIRE_CLIENT_PING */
} wire_client_msg;

/* A message object drawing its memory from `al` (NULL: malloc). NULL when
 * out of memory. */
wire_client_msg *wire_client_msg_new(const crdt_allocator *al);
void wire_client_msg_free(wire_client_msg *m);

/*
 * Decode one ClientMessage (one WebSocket frame) with limits `lim` (NULL:
 * wire_default_limits): the size is checked before anything else, then the
 * raw bytes are pre-scanned (ops, text bytes, UTF-8) before protobuf-c
 * allocates, then every field is checked:
 *  - exactly one known message kind (else WIRE_EFIELD); doc != 0 except
 *    for Ping (WIRE_EFIELD);
 *  - Hello: protocol_version == WIRE_PROTOCOL_VERSION (else WIRE_EVERSION,
 *    judged from the raw bytes before the rest is parsed, so a future
 *    version's Hello gets this answer however its other fields look),
 *    valid doc_id, non-zero replica (WIRE_EFIELD), token <= WIRE_MAX_TOKEN;
 *  - Update: client_batch >= 1, 1..max_ops ops, each of the shape
 *    wire_ops_decode checks, at most max_text_bytes of text in all;
 *  - Presence: non-zero replica, anchors (0, 0) or a real unit, name and
 *    color within WIRE_MAX_NAME / WIRE_MAX_COLOR.
 * Returns WIRE_OK or a WIRE_E* code (wire_error_code maps it to the
 * ErrorCode to answer with). On error the message's fields are empty except
 * what could be read from the raw bytes to address the answer: doc, kind,
 * client_batch of an Update and hello.protocol_version (all 0 when not
 * found).
 */
int wire_client_decode(wire_client_msg *m, const uint8_t *data, size_t len,
		       const wire_limits *lim);

/* ---- client -> server encoders (for C clients, tests and the bench) ---- */

/* Hello at the given handle (h->protocol_version 0 means
 * WIRE_PROTOCOL_VERSION). WIRE_EFIELD for an invalid doc_id, replica 0 or
 * doc 0; WIRE_ETOOBIG for a token over WIRE_MAX_TOKEN. */
int wire_client_encode_hello(wire_buf *out, uint32_t doc, const wire_hello *h);

/* Update{client_batch, ops}: the ops are checked as by wire_ops_encode.
 * WIRE_EFIELD for doc 0, client_batch 0 or n 0. */
int wire_client_encode_update(wire_buf *out, uint32_t doc, uint64_t client_batch,
			      const crdt_op *ops, size_t n);

/* Presence (checked as wire_client_decode checks it). */
int wire_client_encode_presence(wire_buf *out, uint32_t doc, const wire_presence *p);

/* Ping{nonce} (doc may be 0) and Leave. */
int wire_client_encode_ping(wire_buf *out, uint32_t doc, uint64_t nonce);
int wire_client_encode_leave(wire_buf *out, uint32_t doc);

/* ---- server -> client encoders (the server) ---------------------------- */

/*
 * Welcome{protocol_version = WIRE_PROTOCOL_VERSION, head_seq, read_only,
 * snapshot}. `snapshot` is an encoded Snapshot message (wire_snapshot_encode
 * output, e.g. as storage decompressed it), embedded as it is; NULL for
 * none. Not re-checked: it comes from our own storage.
 */
int wire_server_encode_welcome(wire_buf *out, uint32_t doc, uint64_t head_seq, bool read_only,
			       const uint8_t *snapshot, size_t snapshot_len);

/* One stored change: its seq (>= 1) and its payload, an encoded OpBatch
 * (wire_ops_encode output) exactly as storage keeps it. */
typedef struct wire_change {
	uint64_t seq;
	const uint8_t *ops;
	size_t ops_len;
} wire_change;

/*
 * Changes{changes: Change{seq, ops}...} built from stored payloads without
 * decoding them. This is valid because OpBatch and Change both hold their
 * ops as `repeated Op`: a length-delimited field's bytes are the embedded
 * message whatever the field's number, so each OpBatch entry (field 1, tag
 * byte 0x0A) becomes a Change entry (field 2, tag byte 0x12) by rewriting
 * the one tag byte and copying its length and Op bytes unchanged. Fields of
 * the payload other than 1 are not ops and are dropped (they would mean
 * something else in a Change: field 1 there is seq). The payload's outer
 * structure is walked with bounds checks (WIRE_EPARSE if broken); the Ops
 * themselves are trusted as storage wrote them. WIRE_EFIELD for seq 0 or
 * n 0. The caller splits long catch-ups into several messages, using
 * wire_change_size to stay under the client's max_message_bytes.
 */
int wire_server_encode_changes(wire_buf *out, uint32_t doc, const wire_change *changes, size_t n);

/* Bytes the change adds to a Changes message (its entry, tag included), or
 * 0 when its payload is malformed. A whole message is the sum plus at most
 * 2 + 2 * 10 bytes of envelope. */
size_t wire_change_size(const wire_change *c);

/* Ack{client_batch, seq}. */
int wire_server_encode_ack(wire_buf *out, uint32_t doc, uint64_t client_batch, uint64_t seq);

/* A member's presence, relayed (checked as for the client). */
int wire_server_encode_presence(wire_buf *out, uint32_t doc, const wire_presence *p);

/* Error{code, message, client_batch}; doc 0 for a connection-wide error,
 * client_batch 0 when no Update is concerned. message may be NULL; it must
 * be UTF-8 (WIRE_EUTF8) of at most WIRE_MAX_ERROR_MESSAGE bytes (longer
 * ones are cut at a code point boundary). Any code number is encoded. */
int wire_server_encode_error(wire_buf *out, uint32_t doc, int code, const char *message,
			     uint64_t client_batch);

/* Pong{nonce}: the nonce of the Ping it answers. */
int wire_server_encode_pong(wire_buf *out, uint32_t doc, uint64_t nonce);

/* ---- server -> client decoder (C clients and tests) --------------------- */

/*
 * A decoded ServerMessage; same lifetime rules as wire_client_msg. For
 * Changes, the ops of all changes are in `ops` in order (adjacent ops may be
 * merged by the batch) and seqs[0..n_changes) are the changes' seqs.
 */
typedef struct wire_server_msg {
	uint32_t doc;
	enum wire_server_kind kind;
	struct {
		uint32_t protocol_version;
		uint64_t head_seq;
		bool read_only;
		const uint8_t *snapshot; /* encoded Snapshot or NULL: see
					    wire_snapshot_decode */
		size_t snapshot_len;
	} welcome;
	size_t n_changes;
	const uint64_t *seqs;
	crdt_batch *ops;
	struct {
		uint64_t client_batch, seq;
	} ack;
	wire_presence presence;
	struct {
		int code; /* any number: a newer server may send new codes */
		const char *message;
		size_t message_len;
		uint64_t client_batch;
	} error;
	uint64_t nonce;
} wire_server_msg;

wire_server_msg *wire_server_msg_new(const crdt_allocator *al);
void wire_server_msg_free(wire_server_msg *m);

/*
 * Decode one ServerMessage with limits `lim` (NULL: defaults; a Welcome
 * carrying a snapshot can be larger than a client's messages, so clients
 * pass a max_message_bytes that fits the documents they open). Checks:
 * a known kind (WIRE_EFIELD otherwise: the caller ignores it), Welcome's
 * protocol_version == WIRE_PROTOCOL_VERSION (WIRE_EVERSION: the client
 * disconnects, PROTOCOL.md), Changes non-empty with consecutive seqs from
 * >= 1 and each change within max_ops / max_text_bytes of well-shaped
 * ops, Ack seq >= 1, Presence as for clients. Unknown fields are ignored.
 */
int wire_server_decode(wire_server_msg *m, const uint8_t *data, size_t len,
		       const wire_limits *lim);

#ifdef __cplusplus
}
#endif
#endif /* QUIRE_WIRE_H */
