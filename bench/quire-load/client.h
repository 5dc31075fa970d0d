/*
 * client.h - one Quire protocol session (docs/PROTOCOL.md) on a ql_ws
 * connection: one document handle (1), Hello / Welcome, Changes applied in
 * seq order, Acks, and the state a client keeps across reconnects: replica
 * id, last_seq, unacknowledged batches (resent unchanged after every
 * Welcome, section 5.7) and, for replicas, a crdt_doc.
 *
 * Two kinds: a replica (engine = true) integrates every Change into its own
 * crdt_doc and may edit; a counter (engine = false) only sums the op units
 * of the Changes it receives (every op unit consumes one counter, section
 * 3), which is all a fan-out observer needs and keeps 5,000 of them cheap.
 *
 * The caller owns the struct (arrays of them are fine), drives the shared
 * ql_net loop and reconnects from its own loop after `closed`. Protocol
 * anomalies (a seq gap, an op the engine refuses, an Error) are counted in
 * the struct and reported through the callbacks; they never abort.
 */
#ifndef QL_CLIENT_H
#define QL_CLIENT_H

#include <stdbool.h>
#include <stdint.h>

#include "crdt.h"
#include "net.h"
#include "wire.h"
#include "ws.h"

typedef struct ql_client ql_client;

typedef struct ql_client_ops {
	void (*welcome)(ql_client *c);
	/* After the Changes were applied / counted; `units` is their op units. */
	void (*changes)(ql_client *c, const wire_server_msg *m, uint64_t units);
	void (*ack)(ql_client *c, uint64_t client_batch, uint64_t seq);
	void (*error)(ql_client *c, const wire_server_msg *m);
	void (*closed)(ql_client *c);
} ql_client_ops;

typedef struct ql_pending {
	uint64_t batch; /* client_batch of its last send */
	crdt_batch *ops;
} ql_pending;

struct ql_client {
	ql_ws ws; /* first member: the ws callbacks cast back to the client */
	ql_net *net;
	const ql_client_ops *ops;
	void *user;
	uint32_t idx;
	const char *doc_id; /* not owned; outlives the client */
	crdt_replica replica;
	crdt_doc *doc; /* NULL for a counter */
	uint64_t last_seq, head_seq;
	uint64_t next_batch;
	bool welcomed;
	bool live; /* has applied up to the Welcome's head_seq */
	ql_pending *pend;
	size_t n_pend, cap_pend;
	uint64_t units_in, changes_in, acks_in;
	uint32_t connects;
	uint32_t gaps;	       /* Changes not starting at last_seq + 1 */
	uint32_t apply_errors; /* ops the engine refused */
	uint32_t errors;       /* Error messages */
	int last_error;	       /* its code */
	uint32_t snapshots;    /* Welcomes that carried a snapshot */
	int64_t t_connect, t_welcome;
};

/* Set up c (zeroed first). engine: keep a crdt_doc. 0 or -1 (memory). */
int ql_client_init(ql_client *c, ql_net *net, const ql_client_ops *ops, const char *doc_id,
		   crdt_replica replica, bool engine);
void ql_client_free(ql_client *c);

/* Connect (or reconnect); Hello{last_seq} is sent when the WebSocket opens.
 * 0, or a negative errno (c->ws.why says why). */
int ql_client_connect(ql_client *c);

/* Drop the connection now (no close frame), keeping the session state. */
void ql_client_drop(ql_client *c);

/* Take ownership of a batch of local ops made on c->doc (or made by the
 * caller for a counter-less writer): it is sent as one Update now if
 * welcomed, else after the next Welcome, and kept until acked. Returns its
 * client_batch, or 0 when out of memory / encoding failed. */
uint64_t ql_client_edit(ql_client *c, crdt_batch *ops);

/* Ping{nonce} on handle 0 (keep-alive). */
int ql_client_ping(ql_client *c, uint64_t nonce);

static inline bool ql_client_ready(const ql_client *c)
{
	return c->ws.state == QL_WS_OPEN && c->welcomed;
}

#endif
