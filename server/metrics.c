/*
 * metrics.c - counting and the Prometheus text rendering of metrics.h.
 * The format: for every metric a "# HELP name text" and a "# TYPE name
 * counter|gauge|histogram" line, then its samples; histograms have
 * cumulative _bucket{le="..."} samples ending with le="+Inf", a _sum and a
 * _count.
 */
#include "metrics.h"

#include <string.h>

#include "wire.h"

static const double commit_bounds[SRV_COMMIT_BUCKETS] = {
	0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0};

static const char *const close_reason_names[SRV_CLOSED_N] = {
#define SRV__CR_NAME(name, text) text,
	SRV_CLOSE_REASON_TABLE(SRV__CR_NAME)
#undef SRV__CR_NAME
};

static const char *const refusal_names[SRV_REFUSED_N] = {
#define SRV__RF_NAME(name, text) text,
	SRV_REFUSAL_TABLE(SRV__RF_NAME)
#undef SRV__RF_NAME
};

void srv_metrics_init(srv_metrics *m) { memset(m, 0, sizeof *m); }

void srv_metrics_commit(srv_metrics *m, double seconds, size_t changes, int ok)
{
	if (!ok) {
		m->commit_failures++;
		return;
	}
	m->commits++;
	m->changes_committed += changes;
	m->commit_seconds_sum += seconds;
	size_t i = 0;
	while (i < SRV_COMMIT_BUCKETS && seconds > commit_bounds[i])
		i++;
	m->commit_bucket[i]++;
}

static const double catchup_bounds[SRV_CATCHUP_BUCKETS] = {0, 1, 10, 100, 1000, 10000};

void srv_metrics_catchup(srv_metrics *m, uint64_t changes)
{
	m->catchup_changes += changes;
	size_t i = 0;
	while (i < SRV_CATCHUP_BUCKETS && (double)changes > catchup_bounds[i])
		i++;
	m->catchup_bucket[i]++;
}

void srv_metrics_error(srv_metrics *m, int code)
{
	if (code >= 0 && code < SRV_ERROR_CODES)
		m->errors_sent[code]++;
	else
		m->errors_sent[SRV_ERROR_CODES]++;
}

static void head(srv_buf *b, const char *name, const char *type, const char *help)
{
	srv_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void one(srv_buf *b, const char *name, const char *type, const char *help, uint64_t v)
{
	head(b, name, type, help);
	srv_buf_printf(b, "%s %llu\n", name, (unsigned long long)v);
}

void srv_metrics_render(const srv_metrics *m, const srv_gauges *g, srv_buf *b)
{
	one(b, "quire_connections", "gauge", "Open WebSocket connections.", g->connections);
	one(b, "quire_connections_opened_total", "counter", "WebSocket connections accepted.",
	    m->connections_opened);
	head(b, "quire_connections_closed_total", "counter",
	     "WebSocket connections ended, by reason.");
	for (int r = 0; r < SRV_CLOSED_N; r++)
		srv_buf_printf(b, "quire_connections_closed_total{reason=\"%s\"} %llu\n",
			       close_reason_names[r], (unsigned long long)m->connections_closed[r]);
	one(b, "quire_connections_refused_total", "counter",
	    "WebSocket upgrades refused because the server is stopping.", m->connections_refused);
	head(b, "quire_refusals_total", "counter",
	     "Requests refused by a security check or a limit, by kind.");
	for (int k = 0; k < SRV_REFUSED_N; k++)
		srv_buf_printf(b, "quire_refusals_total{kind=\"%s\"} %llu\n", refusal_names[k],
			       (unsigned long long)m->refusals[k]);
	one(b, "quire_slow_consumer_disconnects_total", "counter",
	    "Connections dropped because their send queue exceeded --send-queue-bytes.",
	    m->connections_closed[SRV_CLOSED_SLOW_CONSUMER]);
	one(b, "quire_send_queue_bytes", "gauge", "Bytes queued for sending, all connections.",
	    g->send_queue_bytes);
	one(b, "quire_documents_loaded", "gauge", "Documents held in memory.", g->documents_loaded);
	one(b, "quire_members", "gauge", "Document memberships (joined handles).", g->members);
	one(b, "quire_document_loads_total", "counter", "Documents loaded from storage.",
	    m->doc_loads);
	one(b, "quire_document_load_failures_total", "counter",
	    "Document loads that failed (joiners got DOCUMENT_UNAVAILABLE).", m->doc_load_failures);
	one(b, "quire_document_unloads_total", "counter", "Idle documents unloaded.",
	    m->doc_unloads);
	one(b, "quire_document_reloads_total", "counter",
	    "Documents rebuilt from storage after a refused batch or a failed commit.",
	    m->doc_reloads);
	one(b, "quire_messages_in_total", "counter", "WebSocket messages received.",
	    m->messages_in);
	one(b, "quire_messages_out_total", "counter", "WebSocket messages queued for sending.",
	    m->messages_out);
	one(b, "quire_messages_direct_total", "counter",
	    "Messages of messages_out written whole as they were queued, without waiting for "
	    "the socket to be reported writable.",
	    m->messages_direct);
	one(b, "quire_bytes_in_total", "counter", "WebSocket payload bytes received.", m->bytes_in);
	one(b, "quire_bytes_out_total", "counter", "WebSocket payload bytes written.",
	    m->bytes_out);
	one(b, "quire_http_requests_total", "counter", "HTTP API requests (/healthz, /metrics).",
	    m->http_requests);
	one(b, "quire_updates_accepted_total", "counter", "Updates integrated as new changes.",
	    m->updates_accepted);
	one(b, "quire_updates_duplicate_total", "counter",
	    "Retransmitted Updates acked with their original seq.", m->updates_duplicate);
	one(b, "quire_ops_applied_total", "counter", "Ops of accepted Updates.", m->ops_applied);
	one(b, "quire_changes_committed_total", "counter", "Changes made durable.",
	    m->changes_committed);
	one(b, "quire_commits_total", "counter", "Group commits (one transaction each).",
	    m->commits);
	one(b, "quire_commit_failures_total", "counter",
	    "Group commits that failed (senders got STORAGE_FAILURE).", m->commit_failures);

	head(b, "quire_commit_seconds", "histogram", "Latency of group commits.");
	uint64_t cum = 0;
	for (int i = 0; i < SRV_COMMIT_BUCKETS; i++) {
		cum += m->commit_bucket[i];
		srv_buf_printf(b, "quire_commit_seconds_bucket{le=\"%g\"} %llu\n", commit_bounds[i],
			       (unsigned long long)cum);
	}
	cum += m->commit_bucket[SRV_COMMIT_BUCKETS];
	srv_buf_printf(b, "quire_commit_seconds_bucket{le=\"+Inf\"} %llu\n",
		       (unsigned long long)cum);
	srv_buf_printf(b, "quire_commit_seconds_sum %.9f\n", m->commit_seconds_sum);
	srv_buf_printf(b, "quire_commit_seconds_count %llu\n", (unsigned long long)cum);

	head(b, "quire_errors_sent_total", "counter", "Error messages sent to clients, by code.");
	for (int c = 1; c <= SRV_ERROR_CODES; c++) {
		const char *name = c < SRV_ERROR_CODES ? wire_error_code_name(c) : "UNKNOWN";
		srv_buf_printf(b, "quire_errors_sent_total{code=\"%s\"} %llu\n", name,
			       (unsigned long long)m->errors_sent[c]);
	}
	one(b, "quire_welcomes_total", "counter", "Welcome messages sent (joins).", m->welcomes);
	one(b, "quire_welcome_snapshots_total", "counter",
	    "Welcomes that carried a snapshot instead of a log catch-up.", m->welcome_snapshots);
	head(b, "quire_catchup_changes", "histogram",
	     "Changes sent in the catch-up after each Welcome (0: snapshot or up to date).");
	uint64_t ccum = 0;
	for (size_t i = 0; i < SRV_CATCHUP_BUCKETS; i++) {
		ccum += m->catchup_bucket[i];
		srv_buf_printf(b, "quire_catchup_changes_bucket{le=\"%g\"} %llu\n", catchup_bounds[i],
			       (unsigned long long)ccum);
	}
	ccum += m->catchup_bucket[SRV_CATCHUP_BUCKETS];
	srv_buf_printf(b, "quire_catchup_changes_bucket{le=\"+Inf\"} %llu\n", (unsigned long long)ccum);
	srv_buf_printf(b, "quire_catchup_changes_sum %llu\n", (unsigned long long)m->catchup_changes);
	srv_buf_printf(b, "quire_catchup_changes_count %llu\n", (unsigned long long)ccum);
	one(b, "quire_snapshots_total", "counter", "Snapshots stored.", m->snapshots);
	one(b, "quire_quiet_snapshots_total", "counter",
	    "Snapshots encoded for Welcomes when a document went quiet after changes that "
	    "outweigh one.",
	    m->quiet_snapshots);
	one(b, "quire_snapshot_failures_total", "counter", "Snapshots that could not be stored.",
	    m->snapshot_failures);
	one(b, "quire_sse_streams", "gauge", "Open Server-Sent Events streams (/v1/docs/{id}/events).",
	    g->sse_streams);
	one(b, "quire_sse_events_total", "counter",
	    "SSE change and reset events sent, counted once per stream.", m->sse_events);
	one(b, "quire_sse_dropped_total", "counter",
	    "SSE streams dropped because their queue exceeded --send-queue-bytes.", m->sse_dropped);
	head(b, "quire_wal_checkpoints_total", "counter",
	     "WAL checkpoints: on the storage's own thread, or inline in a commit (the thread "
	     "fell behind).");
	srv_buf_printf(b, "quire_wal_checkpoints_total{thread=\"background\"} %llu\n",
		       (unsigned long long)g->checkpoints_background);
	srv_buf_printf(b, "quire_wal_checkpoints_total{thread=\"inline\"} %llu\n",
		       (unsigned long long)g->checkpoints_inline);
	one(b, "quire_wal_checkpoint_failures_total", "counter",
	    "Background WAL checkpoints that failed (retried at the next commit's wake-up).",
	    g->checkpoint_failures);
}
