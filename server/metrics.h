/*
 * metrics.h - quire-server's counters and their rendering in the
 * Prometheus text exposition format (GET /metrics). Every name starts with
 * `quire_` and has HELP and TYPE lines. Counters are plain integers bumped
 * on the service thread; gauges that are really sizes of live structures
 * (connections, loaded documents) are passed in at render time.
 */
#ifndef QUIRE_SRV_METRICS_H
#define QUIRE_SRV_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

/* Why a WebSocket connection ended (quire_connections_closed_total{reason}). */
#define SRV_CLOSE_REASON_TABLE(X)                                                                 \
	X(SRV_CLOSED_PEER, "peer")		     /* the client sent a close frame */          \
	X(SRV_CLOSED_DROPPED, "dropped")	     /* socket ended, or silent past heartbeat */ \
	X(SRV_CLOSED_SLOW_CONSUMER, "slow_consumer") /* send queue over the bound */              \
	X(SRV_CLOSED_TOO_LARGE, "too_large")	     /* message far over --max-message-bytes */   \
	X(SRV_CLOSED_PROTOCOL, "protocol")	     /* a text message (1003) */                  \
	X(SRV_CLOSED_SHUTDOWN, "shutdown")	     /* SIGTERM/SIGINT */                         \
	X(SRV_CLOSED_RATE_LIMITED, "rate_limited")   /* flooding far over the rate limits */      \
	X(SRV_CLOSED_ERROR, "error")		     /* out of memory, write failure */

/* clang-format off */
enum srv_close_reason {
#define SRV__CR_ENUM(name, text) name,
	SRV_CLOSE_REASON_TABLE(SRV__CR_ENUM)
#undef SRV__CR_ENUM
	SRV_CLOSED_N
};
/* clang-format on */

/* What was refused by a security check or a limit (auth.c, quota.c;
 * quire_refusals_total{kind}). */
#define SRV_REFUSAL_TABLE(X)                                                                      \
	X(SRV_REFUSED_UNAUTHORIZED, "unauthorized") /* Hello: token missing, bad, expired */      \
	X(SRV_REFUSED_FORBIDDEN, "forbidden")	    /* Hello: the token is for other docs */      \
	X(SRV_REFUSED_READ_ONLY, "read_only")	    /* Update on a read-only handle */            \
	X(SRV_REFUSED_ORIGIN, "origin")		    /* upgrade from an Origin not allowed */      \
	X(SRV_REFUSED_CONNS_PER_IP, "conns_per_ip") /* upgrade over --max-conns-per-ip */         \
	X(SRV_REFUSED_RATE_MSGS, "rate_messages")   /* message over --max-msgs-per-s */           \
	X(SRV_REFUSED_RATE_BYTES, "rate_bytes")	    /* message over --max-bytes-per-s */          \
	X(SRV_REFUSED_DOC_BYTES, "doc_bytes")	    /* Update over --max-doc-bytes */

/* clang-format off */
enum srv_refusal {
#define SRV__RF_ENUM(name, text) name,
	SRV_REFUSAL_TABLE(SRV__RF_ENUM)
#undef SRV__RF_ENUM
	SRV_REFUSED_N
};
/* clang-format on */

/* Upper bounds (seconds) of the commit latency histogram's buckets. */
#define SRV_COMMIT_BUCKETS 12

/* Buckets of the catch-up size histogram (changes sent after a Welcome). */
#define SRV_CATCHUP_BUCKETS 6

/* Error codes counted (quire.v1.ErrorCode 0..SRV_ERROR_CODES-1). */
#define SRV_ERROR_CODES 15

typedef struct srv_metrics {
	uint64_t connections_opened;
	uint64_t connections_closed[SRV_CLOSED_N];
	uint64_t connections_refused; /* during shutdown */
	uint64_t messages_in, messages_out;
	uint64_t messages_direct; /* of messages_out: written at once (conn.c write-through) */
	uint64_t bytes_in, bytes_out;
	uint64_t http_requests;
	uint64_t doc_loads, doc_load_failures, doc_unloads;
	uint64_t updates_accepted, updates_duplicate;
	uint64_t ops_applied;
	uint64_t changes_committed;
	uint64_t commits, commit_failures;
	uint64_t commit_bucket[SRV_COMMIT_BUCKETS + 1]; /* last: +Inf */
	double commit_seconds_sum;
	uint64_t errors_sent[SRV_ERROR_CODES + 1]; /* last: codes we do not know */
	uint64_t welcomes, welcome_snapshots, catchup_changes;
	uint64_t quiet_snapshots; /* Snapshots encoded when a document went quiet (docs.c) */
	uint64_t catchup_bucket[SRV_CATCHUP_BUCKETS + 1]; /* last: +Inf */
	uint64_t snapshots, snapshot_failures;
	uint64_t doc_reloads;
	uint64_t refusals[SRV_REFUSED_N];
	uint64_t sse_events;  /* SSE change/reset events queued, all streams (sse.c) */
	uint64_t sse_dropped; /* SSE streams dropped as slow readers */
} srv_metrics;

/* The gauges, sampled when rendering. */
typedef struct srv_gauges {
	uint64_t connections;
	uint64_t documents_loaded;
	uint64_t members;
	uint64_t send_queue_bytes; /* all connections */
	uint64_t sse_streams;	   /* open SSE streams (sse.h) */
	/* the storage's WAL checkpoints (store_checkpoint_stats) */
	uint64_t checkpoints_background, checkpoints_inline, checkpoint_failures;
} srv_gauges;

void srv_metrics_init(srv_metrics *m);

/* One group commit of `changes` changes that took `seconds`; ok false when
 * it failed (then only the failure is counted). */
void srv_metrics_commit(srv_metrics *m, double seconds, size_t changes, int ok);

/* One catch-up after a Welcome: the changes it sent (0 for a snapshot or a
 * client already up to date). */
void srv_metrics_catchup(srv_metrics *m, uint64_t changes);

/* An Error message with this code was sent. */
void srv_metrics_error(srv_metrics *m, int code);

/* Render everything in the Prometheus text format (version 0.0.4). */
void srv_metrics_render(const srv_metrics *m, const srv_gauges *g, srv_buf *out);

#endif /* QUIRE_SRV_METRICS_H */
