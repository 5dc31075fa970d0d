/*
 * qtest.h - helpers for the server integration tests: start and stop a real
 * quire-server process on an ephemeral loopback port with its own SQLite
 * file, a small blocking WebSocket client (RFC 6455 framing written out by
 * hand, so tests can also send what a library would refuse to: text frames,
 * fragments, oversized messages, garbage, and stop reading), a one-shot
 * HTTP GET, and a Quire protocol client on top (a local crdt_doc per
 * client, Hello/Update/Ping encoders, decoded server messages).
 *
 * Every wait is bounded (timeouts in ms); nothing here uses CMocka, so the
 * helpers return status codes and the tests assert.
 */
#ifndef QUIRE_QTEST_H
#define QUIRE_QTEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "crdt.h"
#include "wire.h"

/* ---- the server process ------------------------------------------------------ */

typedef struct qserver {
	pid_t pid;
	int port;
	char dir[256]; /* a fresh temporary folder: the database and the log */
	char db[320];
	char log[320];
	const char *bin;  /* the program to start; NULL: QUIRE_SERVER_BIN */
	int start_status; /* a server that exited during qserver_start: its status
			     as qserver_stop returns it; -1 otherwise */
} qserver;

/* Make a fresh temporary folder for a server (qserver_start uses it).
 * 0 or -1. */
int qserver_init(qserver *q);

/* Start quire-server (again, on the same database, after a stop) (QUIRE_SERVER_BIN, optionally
 * prefixed by the words of $QUIRE_SERVER_WRAPPER, e.g. "valgrind --error-exitcode=99") with
 * --listen 127.0.0.1:0, --db q->db and the extra args (NULL-terminated),
 * read the port it listens on from its log and wait for /healthz. 0, or -1
 * (the log is printed to stderr, unless $QTEST_QUIET_START_FAILURE is set
 * and the server exited: then q->start_status says how). */
int qserver_start(qserver *q, const char *const *extra);

/* Send `sig` and wait up to timeout_ms for the exit. Returns the exit status
 * (0..255), 128+signal if killed by one, or -1 on timeout (then SIGKILLed). */
int qserver_stop(qserver *q, int sig, int timeout_ms);

/* Print the server's log to stderr (for a failing test). */
void qserver_dump_log(const qserver *q);

/* Remove the temporary folder. */
void qserver_cleanup(qserver *q);

/* Whether a line of the server's log contains needle. */
bool qserver_log_has(const qserver *q, const char *needle);

/* The value of the metric line "name value" (name with its labels) in GET
 * /metrics, or UINT64_MAX (no answer within timeout_ms, not 200, absent). */
uint64_t qserver_metric(int port, const char *name, int timeout_ms);

/* The fixture of a test with one server (CMocka state). */
typedef struct qfixture {
	qserver srv;
} qfixture;

/* CMocka setup: a zeroed qfixture in *state. */
int qfixture_setup(void **state);

/* CMocka teardown: remove the server's folder and free the qfixture. */
int qfixture_teardown(void **state);

/* ---- HTTP -------------------------------------------------------------------------- */

/* GET path; *status and the body (NUL-terminated, cut at cap) filled.
 * 0 or -1. */
int qhttp_get(int port, const char *path, int *status, char *body, size_t cap, int timeout_ms);

/* The same, also returning the Content-Type header's value. */
int qhttp_get_type(int port, const char *path, int *status, char *type, size_t type_cap, char *body,
		   size_t cap, int timeout_ms);

/* ---- WebSocket ------------------------------------------------------------------------ */

enum { WS_CONT = 0, WS_TEXT = 1, WS_BINARY = 2, WS_CLOSE = 8, WS_PING = 9, WS_PONG = 10 };

typedef struct ws_client {
	int fd;
	uint8_t *in; /* bytes read, not yet parsed */
	size_t in_len, in_cap;
	uint8_t *msg; /* the message being reassembled / last returned */
	size_t msg_len, msg_cap;
	int msg_opcode;
	bool in_msg;
	bool closed;	/* a close frame arrived or the socket ended */
	int close_code; /* from the close frame; 1006 when the socket just ended */
	char close_reason[128];
	/* permessage-deflate (ws_connect_ext): the server's answer, whether the
	 * last message came compressed (RSV1), and the test's inflater, called
	 * on such a message to replace msg/msg_len with the inflated bytes
	 * (0, or -1: ws_recv fails). qtest itself links no zlib. */
	char extensions[160];
	bool msg_compressed;
	int (*inflate)(struct ws_client *c);
	void *inflate_ctx;
} ws_client;

/* Connect to 127.0.0.1:port and upgrade at `path` (NULL: "/sync"),
 * offering `protocol` (NULL: no Sec-WebSocket-Protocol). rcvbuf > 0 sets
 * SO_RCVBUF before connecting (a small one makes a non-reading client back
 * up fast). 0, or -1 (refused upgrades included). */
int ws_connect(ws_client *c, int port, const char *path, const char *protocol, int rcvbuf,
	       int timeout_ms);

/* ws_connect also offering Sec-WebSocket-Extensions: `extensions` (NULL:
 * none); the answer lands in c->extensions. */
int ws_connect_ext(ws_client *c, int port, const char *path, const char *protocol,
		   const char *extensions, int rcvbuf, int timeout_ms);

/* A TCP connection to 127.0.0.1:port (TCP_NODELAY; SO_RCVBUF when
 * rcvbuf > 0; sends time out after timeout_ms): the fd, or -1. */
int qtcp_connect(int port, int rcvbuf, int timeout_ms);

/* send() all of data (no SIGPIPE; EINTR retried). 0, or -1 when the peer
 * is gone. */
int qsend_all(int fd, const void *data, size_t len);

/* Read from fd into buf (kept NUL-terminated, cap >= 1) until `end` is in
 * it, the peer hangs up, buf is full or timeout_ms passed. Returns the bytes
 * read. */
size_t qread_until(int fd, char *buf, size_t cap, const char *end, int timeout_ms);

/* Send one frame (masked, as a client must). 0 or -1. */
int ws_send_frame(ws_client *c, int opcode, bool fin, const void *data, size_t len);

/* Send a whole binary message in one frame. 0 or -1. */
int ws_send(ws_client *c, const void *data, size_t len);

/* Send two binary messages with one write(), so the server reads them in
 * the same event-loop turn. 0 or -1. */
int ws_send2(ws_client *c, const void *a, size_t alen, const void *b, size_t blen);

/* Wait for the next data message (pings are answered). Returns 1 with
 * data, len and opcode set (valid until the next call), 0 on timeout, -1 when
 * the connection closed (close_code set). */
int ws_recv(ws_client *c, int timeout_ms, const uint8_t **data, size_t *len, int *opcode);

/* Close the socket (no close handshake) and free the buffers. */
void ws_free(ws_client *c);

/* ---- Quire protocol client ----------------------------------------------------------------- */

typedef struct qclient {
	ws_client ws;
	crdt_replica replica;
	crdt_doc *doc;	     /* the client's replica of the document */
	uint32_t handle;     /* the handle used in Hello */
	uint64_t last_seq;   /* highest seq applied from Changes or acked */
	uint64_t next_batch; /* client_batch of the next Update */
	wire_server_msg *m;  /* the last message received */
	wire_buf out;	     /* the last message sent */
} qclient;

/* Connect (protocol "quire.v1") as replica `replica`. 0 or -1. */
int qc_connect(qclient *q, int port, crdt_replica replica);

/* Send Hello for doc_id at handle 1 with last_seq (and protocol version
 * `version`, 0: the current one). 0 or -1. */
int qc_hello(qclient *q, const char *doc_id, uint64_t last_seq, uint32_t version);

/* Receive and decode the next message: 1 (q->m), 0 timeout, -1 closed or
 * undecodable. Changes are applied to q->doc and advance last_seq; an Ack
 * advances last_seq. */
int qc_recv(qclient *q, int timeout_ms);

/* Receive until a message of `kind` arrives (others are processed as by
 * qc_recv). 1, 0 on timeout, -1 closed. */
int qc_expect(qclient *q, enum wire_server_kind kind, int timeout_ms);

/* Insert text at pos in q->doc and send the ops as Update (next batch).
 * The encoded message stays in q->out. Returns the batch number, or 0. */
uint64_t qc_insert(qclient *q, size_t pos, const char *text);

/* Make the insert in q->doc and encode it as the next Update into out,
 * without sending. Returns the batch number, or 0. */
uint64_t qc_encode_insert(qclient *q, size_t pos, const char *text, wire_buf *out);

/* Delete len code points at pos likewise. */
uint64_t qc_delete(qclient *q, size_t pos, size_t len);

/* Send Update{batch, ops[0..n)} as given. 0 or -1. */
int qc_send_ops(qclient *q, uint64_t batch, const crdt_op *ops, size_t n);

/* The client document's text (malloc'd, NUL-terminated). */
char *qc_text(const qclient *q);

void qc_free(qclient *q);

/* The text of a document loaded from a database file (store_load), or NULL.
 * *head receives its head seq. */
char *qdb_text(const char *db_path, const char *doc_id, uint64_t *head);

/* Run SQL on a database file (to damage it on purpose). 0 or -1. */
int qdb_exec(const char *db_path, const char *sql);

/* The seq of a document's newest snapshot, 0 if none. */
uint64_t qdb_snapshot_seq(const char *db_path, const char *doc_id);

#endif /* QUIRE_QTEST_H */
