/*
 * wire.c - the small shared pieces of proto/: status texts, the default
 * limits, wire_buf, the mapping of failures to quire.v1.ErrorCode, and the
 * document id rule. The conversions live in wire_ops.c (ops, OpBatch),
 * wire_snapshot.c (Snapshot), wire_client.c (ClientMessage) and
 * wire_server.c (ServerMessage); the raw wire format and the pre-scan in
 * wire_pb.c; the arena protobuf-c unpacks into in wire_arena.c.
 */
#include <stdlib.h>
#include <string.h>

#include "wire_internal.h"

const wire_limits wire_default_limits = {
	.max_message_bytes = 1u << 20,
	.max_ops = 10000,
	.max_text_bytes = 512u * 1024,
};

const char *wire_strerror(int status)
{
	switch (status) {
#define WIRE__CASE(name, value, text) \
	case value:                   \
		return text;
		WIRE_STATUS_TABLE(WIRE__CASE)
#undef WIRE__CASE
	}
	return "unknown wire status";
}

void wire_buf_free(wire_buf *b)
{
	if (b == NULL)
		return;
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

/* The C enum and the generated one must never drift apart. */
#define WIRE__SAME(name, value, proto_name)                                   \
	_Static_assert((int)name == (int)QUIRE__V1__ERROR_CODE__##proto_name, \
		       #name " matches quire.proto");
WIRE_ERROR_CODE_TABLE(WIRE__SAME)
#undef WIRE__SAME
_Static_assert((int)WIRE_CLIENT_HELLO == (int)QUIRE__V1__CLIENT_MESSAGE__MSG_HELLO &&
		       (int)WIRE_CLIENT_UPDATE == (int)QUIRE__V1__CLIENT_MESSAGE__MSG_UPDATE &&
		       (int)WIRE_CLIENT_PRESENCE == (int)QUIRE__V1__CLIENT_MESSAGE__MSG_PRESENCE &&
		       (int)WIRE_CLIENT_PING == (int)QUIRE__V1__CLIENT_MESSAGE__MSG_PING &&
		       (int)WIRE_CLIENT_LEAVE == (int)QUIRE__V1__CLIENT_MESSAGE__MSG_LEAVE,
	       "wire_client_kind is ClientMessage.msg's field numbers");
_Static_assert((int)WIRE_SERVER_WELCOME == (int)QUIRE__V1__SERVER_MESSAGE__MSG_WELCOME &&
		       (int)WIRE_SERVER_CHANGES == (int)QUIRE__V1__SERVER_MESSAGE__MSG_CHANGES &&
		       (int)WIRE_SERVER_ACK == (int)QUIRE__V1__SERVER_MESSAGE__MSG_ACK &&
		       (int)WIRE_SERVER_PRESENCE == (int)QUIRE__V1__SERVER_MESSAGE__MSG_PRESENCE &&
		       (int)WIRE_SERVER_ERROR == (int)QUIRE__V1__SERVER_MESSAGE__MSG_ERROR &&
		       (int)WIRE_SERVER_PONG == (int)QUIRE__V1__SERVER_MESSAGE__MSG_PONG,
	       "wire_server_kind is ServerMessage.msg's field numbers");

const char *wire_error_code_name(int code)
{
	switch (code) {
#define WIRE__CASE(name, value, proto_name) \
	case value:                         \
		return #proto_name;
		WIRE_ERROR_CODE_TABLE(WIRE__CASE)
#undef WIRE__CASE
	}
	return "UNKNOWN";
}

int wire_error_code(int status)
{
	switch (status) {
	case WIRE_OK:
		return WIRE_ERR_UNSPECIFIED;
	case WIRE_EPARSE:
	case WIRE_EFIELD:
	case WIRE_EUTF8:
		return WIRE_ERR_BAD_MESSAGE;
	case WIRE_ETOOBIG:
		return WIRE_ERR_TOO_LARGE;
	case WIRE_EVERSION:
		return WIRE_ERR_UNSUPPORTED_VERSION;
	default: /* WIRE_ENOMEM and codes this version does not know */
		return WIRE_ERR_INTERNAL;
	}
}

int wire_crdt_error_code(int crdt_status)
{
	switch (crdt_status) {
	case CRDT_OK:
	case CRDT_DUPLICATE:
	case CRDT_PENDING:
		return WIRE_ERR_UNSPECIFIED;
	case CRDT_EINVAL:
	case CRDT_EUTF8:
	case CRDT_ERANGE:
		return WIRE_ERR_INVALID_OP;
	case CRDT_EMISSING:
	case CRDT_EPENDING_FULL:
		return WIRE_ERR_MISSING_DEPENDENCY;
	case CRDT_ELIMIT:
		return WIRE_ERR_TOO_LARGE;
	case CRDT_ECORRUPT:
	case CRDT_EVERSION:
		return WIRE_ERR_DOCUMENT_UNAVAILABLE;
	default: /* CRDT_ENOMEM, CRDT_ESPACE, unknown */
		return WIRE_ERR_INTERNAL;
	}
}

bool wire_doc_id_valid(const char *s, size_t n)
{
	if (s == NULL || n == 0 || n > WIRE_MAX_DOC_ID)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			  (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '~' || c == '/' ||
			  c == '-';
		if (!ok)
			return false;
	}
	return true;
}

bool wire__text_ok(const char *s, size_t n)
{
	if (n == 0)
		return true;
	return s != NULL && memchr(s, 0, n) == NULL && crdt_utf8_count(s, n) >= 0;
}
