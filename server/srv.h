/*
 * srv.h - the objects every module of server/ shares: the server (one per
 * process, reached from any lws callback through the context's user
 * pointer), its connections, its loaded documents and the memberships that
 * tie them together. Each module's functions are declared in its own header
 * (conn.h, docs.h, room.h, commit.h, http.h, metrics.h, log.h); this file
 * holds only the types and the invariants that span modules.
 *
 * Threads: one. Everything here is touched only from the lws service
 * thread (LWS_MAX_SMP is 1); nothing is locked.
 *
 * Lifetimes
 *  - srv: from srv_new to srv_free (server.h).
 *  - srv_conn: from LWS_CALLBACK_ESTABLISHED to LWS_CALLBACK_CLOSED of one
 *    WebSocket; the lws per-session data holds only a pointer to it.
 *  - srv_doc: from the first Hello for its id until it is unloaded (idle,
 *    failed, or shutdown); never while it has members, changes waiting for
 *    the group commit, or members waiting for their Welcome.
 *  - srv_member: from an accepted Hello to Leave, a re-Hello on the same
 *    handle, the connection's close, or the document's failure.
 *
 * Invariants (checked by srv_check under assert in debug builds)
 *  1. doc->crdt is exactly the committed log (changes 1..doc->head) plus
 *     the changes of the current turn (doc->head + 1 .. doc->next_seq - 1),
 *     which are all in srv->turn, in seq order. Nothing else is ever
 *     applied to it: an Update is refused whole or integrated whole.
 *  2. A member receives the changes of its document exactly once and in
 *     seq order: first its Welcome's catch-up (up to doc->head at the time of
 *     the Welcome), then, per turn, Changes for the others' changes and Acks
 *     for its own, interleaved in seq order.
 *  3. A connection's queued bytes never exceed cfg.send_queue_bytes except
 *     for Welcome/catch-up messages (bounded by the catch-up rule of
 *     room.c: a log catch-up stays within the bound, else the snapshot is
 *     sent); crossing the bound disconnects it.
 */
#ifndef QUIRE_SRV_H
#define QUIRE_SRV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libwebsockets.h>

#include "auth.h"
#include "config.h"
#include "crdt.h"
#include "log.h"
#include "metrics.h"
#include "quota.h"
#include "store.h"
#include "wire.h"

typedef struct srv srv;
typedef struct srv_conn srv_conn;
typedef struct srv_doc srv_doc;
typedef struct srv_member srv_member;
typedef struct srv_qent srv_qent;

/* A member's latest Presence, strings pointing into the arrays (room.c). */
typedef struct srv_presence {
	wire_presence p;
	char name[WIRE_MAX_NAME + 1];
	char color[WIRE_MAX_COLOR + 1];
} srv_presence;

/* The replica id of the server's own copy of every document. The server
 * never edits, so the id only has to be non-zero. */
#define SRV_REPLICA ((crdt_replica)0x5155495245535256ull) /* "QUIRESRV" */

/* Close codes (docs/PROTOCOL.md section 1; RFC 6455 numbers). */
#define SRV_CLOSE_GOING_AWAY 1001    /* shutdown: reconnect (elsewhere) and resume by seq */
#define SRV_CLOSE_UNSUPPORTED 1003   /* a text message: binary messages only */
#define SRV_CLOSE_SLOW_CONSUMER 1008 /* policy: send queue over --send-queue-bytes */
#define SRV_CLOSE_TOO_LARGE 1009     /* a message over SRV_HARD_LIMIT_FACTOR x the limit */

/* A message over cfg.max_message_bytes is dropped (never buffered) and
 * answered with TOO_LARGE; one over this many times the limit closes the
 * connection with 1009 instead (16 MiB with the default 1 MiB). */
#define SRV_HARD_LIMIT_FACTOR 16

/* The path of the WebSocket endpoint (docs/PROTOCOL.md section 1). */
#define SRV_WS_PATH "/sync"

/* ---- documents ------------------------------------------------------------- */

enum srv_doc_state {
	SRV_DOC_LOADING = 0, /* store_load in progress: joiners wait */
	SRV_DOC_READY = 1,   /* crdt holds the document */
	SRV_DOC_FAILED = 2,  /* the load failed: joiners get DOCUMENT_UNAVAILABLE
				until retry_at_ms, then the load is tried again */
};

/* Where a committed change came from, to ack a retransmission with the seq
 * it got the first time (room.c). */
typedef struct srv_recent {
	crdt_replica replica;
	uint32_t counter_first, counter_count;
	uint64_t seq;
} srv_recent;

#define SRV_RECENT_MAX 256

struct srv_doc {
	char id[WIRE_MAX_DOC_ID + 1];
	uint64_t hash;
	srv_doc *hnext; /* registry bucket chain */
	enum srv_doc_state state;
	crdt_doc *crdt;	   /* READY: the state after next_seq - 1 */
	uint64_t head;	   /* newest committed seq */
	uint64_t next_seq; /* seq the next accepted change gets */
	uint64_t changes_since_snapshot, bytes_since_snapshot;
	int64_t retry_at_ms;   /* FAILED: when a Hello may try to load again */
	int64_t idle_since_ms; /* when the last member left; 0 while it has members */
	srv_member *members;   /* doubly linked through doc_prev/doc_next */
	size_t n_members;
	size_t n_waiting; /* members waiting for their Welcome */
	struct srv_sse_doc *sse; /* its SSE streams (sse.h), NULL: none; they keep it loaded */
	/* the current turn's changes of this document: indexes into
	 * srv->turn.changes, chained by srv_change.next_in_doc; -1: none */
	long turn_first, turn_last;
	bool touched;			   /* in srv->turn.docs (changes or Welcomes due) */
	srv_recent recent[SRV_RECENT_MAX]; /* ring of the newest committed changes */
	size_t recent_next, recent_count;
	/* The wire Snapshot at seq snap_seq: kept from the load when it came
	 * from a snapshot at the head (docs.c), from the last periodic snapshot
	 * (docs.c), or encoded by a Welcome (room.c); reused while the head
	 * stays there (encoding a large document takes tens of ms; a reconnect
	 * storm asks for it once per client). Its size decides between a
	 * snapshot Welcome and the log catch-up (room.c). */
	wire_buf snap;
	uint64_t snap_seq;
	/* Keeping snap fresh when the document goes quiet (docs.c):
	 * payload bytes committed since the load, their count when snap was
	 * last encoded, and the quiet list (srv.quiet). */
	uint64_t bytes_total, snap_bytes_mark;
	int64_t quiet_due_ms; /* encode then, unless another change comes */
	srv_doc *quiet_next;
	bool quiet_listed;
};

/* ---- memberships ------------------------------------------------------------- */

enum srv_member_state {
	SRV_MEMBER_WAITING = 0, /* Hello accepted; Welcome sent at the end of the turn */
	SRV_MEMBER_LIVE = 1,	/* welcomed: receives the turns' Changes and Acks */
};

struct srv_member {
	srv_conn *conn;
	srv_doc *doc;
	uint32_t handle;      /* ClientMessage.doc chosen in Hello */
	crdt_replica replica; /* the only replica whose ops it may send */
	uint64_t last_seq;    /* Hello.last_seq: where its catch-up starts */
	enum srv_member_state state;
	bool read_only;		 /* its token grants reading only (auth.h) */
	char *author;		 /* the token's subject (its own copy); NULL when open: an
				    idle member of an open server carries no 129 bytes */
	bool welcomed_this_turn; /* its catch-up already covers this turn */
	bool has_presence;	/* it sent Presence: shown to joiners, "gone" when it leaves */
	srv_presence *presence; /* its latest; allocated at its first Presence (most
				   idle members never send one), NULL before */
	srv_member *doc_prev, *doc_next;
	srv_member *conn_prev, *conn_next;
};

/* ---- connections --------------------------------------------------------------- */

enum srv_conn_state {
	SRV_CONN_OPEN = 0,
	SRV_CONN_CLOSING = 1, /* close decided; the queue drains (or is dropped), then close */
};

struct srv_conn {
	srv *srv;
	struct lws *wsi;
	uint64_t id; /* for logs */
	char peer[64];
	enum srv_conn_state state;
	int close_code;		   /* ours, when we close it */
	const char *close_reason;  /* with it: a literal (srv_conn_close) */
	enum srv_close_reason why; /* for quire_connections_closed_total */
	/* heartbeat (conn.c, srv_conns_heartbeat): not lws's per-connection
	 * validity timers, whose sorted list costs O(connections) per message */
	int64_t last_rx_ms; /* when it last sent anything, a pong included */
	bool ping_due;	    /* write a WebSocket ping at the next WRITEABLE */
	bool ping_sent;	    /* a ping went out since last_rx_ms */
	/* incoming message being reassembled from fragments */
	uint8_t *rx;
	size_t rx_len, rx_cap;
	bool rx_in_msg;	    /* a message has begun and its final fragment not come */
	bool rx_timed;	    /* its cfg.message_timeout_s deadline is set (conn.c) */
	bool rx_discarding; /* it went over the limit: its bytes are dropped */
	uint64_t rx_total;  /* bytes of the current message so far, dropped or not */
	/* outgoing: a FIFO of messages, bounded by cfg.send_queue_bytes */
	srv_qent *q_head, *q_tail;
	size_t q_bytes; /* payload bytes queued (the head counted whole) */
	size_t q_count;
	size_t q_sent;	      /* bytes of the head message already written */
	bool deflate;	      /* permessage-deflate negotiated and usable: messages of
				 cfg.deflate_min_bytes and more go out compressed */
	bool peer_closed;     /* the peer sent its Close: no write-through (conn.c) */
	srv_quota_conn quota; /* rate limit buckets (quota.h) */
	srv_member *members;  /* doubly linked through conn_prev/conn_next */
	size_t n_members;
	srv_conn *prev, *next; /* srv->conns */
};

/* Largest WebSocket fragment written in one lws_write. */
#define SRV_FRAGMENT (16 * 1024)

/* ---- the turn: what the group commit at the end of an event-loop turn does -- */

/* A change integrated into its document during this turn, waiting for the
 * group commit. */
typedef struct srv_change {
	srv_doc *doc;
	uint64_t seq;
	srv_conn *sender; /* NULL once that connection closed */
	uint32_t handle;  /* the sender's handle, for the Ack */
	uint64_t client_batch;
	crdt_replica replica;
	uint32_t counter_first, counter_count;
	int64_t time_ms;
	char author[SRV_TOKEN_SUB_MAX + 1]; /* the sender's token subject, "" if none */
	wire_buf payload; /* OpBatch (wire_ops_encode) */
	long next_in_doc;
	bool acked; /* Ack queued in this flush */
} srv_change;

/* An Ack owed for a retransmitted Update (all its ops known already). */
typedef struct srv_dup_ack {
	srv_conn *conn; /* NULL once that connection closed */
	srv_doc *doc;
	uint32_t handle;
	uint64_t client_batch;
	uint64_t seq;
} srv_dup_ack;

typedef struct srv_turn {
	srv_change *changes;
	size_t n_changes, cap_changes;
	srv_dup_ack *acks;
	size_t n_acks, cap_acks;
	srv_doc **docs; /* documents with changes or Welcomes due, each once */
	size_t n_docs, cap_docs;
	bool scheduled;
	lws_sorted_usec_list_t sul;
} srv_turn;

/* ---- the server ------------------------------------------------------------------- */

typedef struct srv_registry {
	srv_doc **buckets;
	size_t n_buckets; /* power of two */
	size_t count;
} srv_registry;

struct srv {
	srv_config cfg;
	srv_log log;
	srv_metrics metrics;
	wire_limits limits; /* for decoding client messages */
	srv_auth auth;	    /* the token key; none: open (auth.h) */
	store *db;
	crdt_options crdt_opts; /* no pending ops: missing dependencies are refused */
	struct lws_context *ctx;
	void *ev_loop; /* server.c: the libev (epoll) loop lws runs on; NULL: lws's poll() */
	struct lws_vhost *vhost;
	int port; /* the port actually listened on */
	srv_registry docs;
	srv_turn turn;
	srv_conn *conns;
	size_t n_conns;
	uint64_t next_conn_id;
	crdt_op *ops_scratch; /* room.c: an Update's ops, contiguous */
	/* conn.c, shared by every connection (one thread, one message at a
	 * time; allocated when first needed): */
	wire_client_msg *decoder; /* decodes each client message; valid until the next */
	struct srv_zout *zout;	  /* the permessage-deflate compressor */
	uint8_t *frame;		  /* LWS_PRE + header + SRV_FRAGMENT: one framed write */
	srv_conn *rx_conn;	  /* the connection whose RECEIVE is running, else NULL */
	size_t ops_cap;
	struct lws_http_mount mounts[4]; /* /healthz, /metrics, /v1/docs, --web */
	lws_sorted_usec_list_t tick_sul; /* housekeeping: idle unload, stop signal */
	lws_sorted_usec_list_t quiet_sul; /* docs.c: Snapshots encoded when documents go quiet */
	void *quiet_timer;		  /* ...the same on libev: its ev_timer (docs.c says why) */
	srv_doc *quiet;			  /* documents waiting for that, chained by quiet_next */
	bool quiet_scheduled;		  /* quiet_sul is pending */
	int64_t next_heartbeat_ms;	 /* server.c: the heartbeat pass runs once a second */
	bool stopping;			 /* shutdown began: no new connections or joins */
};

/* The server of any wsi (the context's user pointer). */
srv *srv_of(struct lws *wsi);

/* Milliseconds of wall-clock time (change timestamps) and of a monotonic
 * clock (timeouts). */
int64_t srv_wall_ms(void);
int64_t srv_mono_ms(void);
int64_t srv_mono_us(void); /* microseconds, for debug timings */

/* Deep consistency check of the invariants above that can be checked
 * cheaply (lists, counts, turn bookkeeping). 0 when they hold. */
int srv_check(const srv *s);

#endif /* QUIRE_SRV_H */
