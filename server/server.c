/*
 * server.c - quire-server's lifecycle (server.h): the database, the one lws
 * context and vhost, the protocol list and mounts, the WebSocket protocol's
 * callback (which hands each event to conn.c), the housekeeping timer, the
 * event loop and the graceful shutdown.
 *
 * Protocol list (TOOLCHAIN.md, lws gotchas 1-4): "quire.v1" FIRST, because
 * a WebSocket that names no subprotocol binds to protocols[0], and its
 * callback falls through to lws_callback_http_dummy so plain HTTP and the
 * file mount keep working; then "quire-http" (the /healthz and /metrics
 * callback mounts); then the all-zero terminator. The file mount of --web
 * adds .wasm, .mjs and a "*" catch-all to lws's MIME table, which otherwise
 * answers 415 for them.
 *
 * Event loop: lws's libev plugin on an epoll loop owned here (so srv_run
 * turns it once at a time and sees the stop flag), or lws's poll() with
 * --no-libev or when the plugin is missing. lws's per-connection validity
 * timers are off; conn.c's heartbeat replaces them.
 */
#define _POSIX_C_SOURCE 200809L

#include "server.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>

#include <ev.h>

#include "commit.h"
#include "conn.h"
#include "docs.h"
#include "http.h"
#include "api.h"
#include "sse.h"
#include "srv.h"

/* Housekeeping period: idle unloads, and the longest a stop request waits
 * to be noticed when no traffic wakes the loop. */
#define TICK_MS 200
/* How long the shutdown waits for clients to take their last messages. */
#define DRAIN_MS 3000

/* ---- small shared helpers (srv.h) ---------------------------------------------- */

srv *srv_of(struct lws *wsi) { return lws_context_user(lws_get_context(wsi)); }

int64_t srv_wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t srv_mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t srv_mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int srv_check(const srv *s)
{
	size_t n = 0;
	for (const srv_conn *c = s->conns; c; c = c->next) {
		size_t k = 0;
		for (const srv_member *m = c->members; m; m = m->conn_next, k++)
			if (m->conn != c || m->doc == NULL || m->doc->state != SRV_DOC_READY)
				return -1;
		if (k != c->n_members || (c->next && c->next->prev != c))
			return -1;
		n++;
	}
	if (n != s->n_conns)
		return -1;
	size_t docs = 0;
	for (size_t i = 0; i < s->docs.n_buckets; i++)
		for (const srv_doc *d = s->docs.buckets[i]; d; d = d->hnext, docs++) {
			size_t k = 0, w = 0;
			for (const srv_member *m = d->members; m; m = m->doc_next, k++) {
				if (m->doc != d)
					return -1;
				w += m->state == SRV_MEMBER_WAITING;
			}
			if (k != d->n_members || w != d->n_waiting)
				return -1;
			if (s->turn.n_changes == 0 &&
			    (d->turn_first >= 0 || d->touched ||
			     (d->state == SRV_DOC_READY && d->next_seq != d->head + 1)))
				return -1;
		}
	return docs == s->docs.count ? 0 : -1;
}

/* ---- the WebSocket protocol ------------------------------------------------------- */

typedef struct ws_pss {
	srv_conn *conn;
} ws_pss;

static int ws_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
		       size_t len)
{
	ws_pss *pss = user;
	switch (reason) {
	case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION: {
		srv *s = srv_of(wsi);
		char uri[64];
		if (s->stopping) {
			s->metrics.connections_refused++;
			return 1; /* refuse the upgrade */
		}
		if (lws_hdr_copy(wsi, uri, sizeof uri, WSI_TOKEN_GET_URI) <= 0 ||
		    strcmp(uri, SRV_WS_PATH) != 0) {
			srv_debug(&s->log, "WebSocket upgrade refused: not at %s", SRV_WS_PATH);
			return 1;
		}
		return 0;
	}
	case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE: /* Origin, connections per IP (quota.h) */
		return srv_quota_upgrade(srv_of(wsi), wsi);
	case LWS_CALLBACK_ESTABLISHED:
		pss->conn = srv_conn_new(srv_of(wsi), wsi);
		return pss->conn ? 0 : -1;
	case LWS_CALLBACK_RECEIVE:
		if (pss->conn == NULL)
			return -1;
		return srv_conn_receive(pss->conn, in, len, lws_frame_is_binary(wsi) != 0,
					lws_is_final_fragment(wsi) != 0);
	case LWS_CALLBACK_SERVER_WRITEABLE:
		return pss->conn ? srv_conn_writeable(pss->conn) : 0;
	case LWS_CALLBACK_RECEIVE_PONG:
		if (pss->conn != NULL)
			srv_conn_alive(pss->conn);
		return 0;
	case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
		if (pss->conn != NULL) {
			if (pss->conn->state == SRV_CONN_OPEN)
				pss->conn->why = SRV_CLOSED_PEER;
			/* lws answers the Close: nothing of ours goes out after it */
			pss->conn->peer_closed = true;
		}
		return 0;
	case LWS_CALLBACK_CLOSED:
		srv_conn_free(pss->conn);
		pss->conn = NULL;
		return 0;
	case LWS_CALLBACK_HTTP:
		/* an HTTP request that matched no mount */
		return srv_http_not_found(wsi);
	default:
		break;
	}
	return lws_callback_http_dummy(wsi, reason, user, in, len);
}

static const struct lws_protocols protocols[] = {
	/* rx 4 KiB per connection (bigger messages are reassembled in conn.c);
	 * tx: our fragments go out in one send() each */
	{"quire.v1", ws_callback, sizeof(ws_pss), 4096, 0, NULL, SRV_FRAGMENT},
	{"quire-http", srv_http_callback, sizeof(srv_http_pss), 0, 0, NULL, 0},
	{"quire-api", srv_api_callback, sizeof(srv_api_pss), 0, 0, NULL, 0}, /* /v1/docs (api.h) */
	{NULL, NULL, 0, 0, 0, NULL, 0} /* terminator (4.1.6 has no LWS_PROTOCOL_LIST_TERM) */
};

/* permessage-deflate (RFC 7692), offered unless --no-deflate (TOOLCHAIN.md gotcha 8) */
static const struct lws_extension extensions[] = {
	{"permessage-deflate", lws_extension_callback_pm_deflate,
	 "permessage-deflate; client_no_context_takeover; client_max_window_bits"},
	{NULL, NULL, NULL}};

static const struct lws_protocol_vhost_options mime_any = {NULL, NULL, "*",
							   "application/octet-stream"};
static const struct lws_protocol_vhost_options mime_mjs = {&mime_any, NULL, ".mjs",
							   "text/javascript"};
static const struct lws_protocol_vhost_options mime_wasm = {&mime_mjs, NULL, ".wasm",
							    "application/wasm"};

/* ---- logging ------------------------------------------------------------------------- */

static void lws_log_emit(int level, const char *line)
{
	(void)level;
	fprintf(stderr, "lws: %s", line);
	size_t n = strlen(line);
	if (n == 0 || line[n - 1] != '\n')
		fputc('\n', stderr);
}

static void on_damage(void *ctx, const char *doc_id, uint64_t seq, int status, const char *reason)
{
	srv *s = ctx;
	srv_warn(&s->log, "document '%s': damaged snapshot at seq %" PRIu64 " skipped: %s (%s)",
		 doc_id, seq, reason, store_strerror(status));
}

/* ---- creation ------------------------------------------------------------------------- */

/* mkdir -p of the folder holding `path`. */
static int make_parent_dirs(const char *path, char *err, size_t errlen)
{
	char dir[SRV_CONFIG_PATH_MAX + 1];
	snprintf(dir, sizeof dir, "%s", path);
	char *slash = strrchr(dir, '/');
	if (slash == NULL || slash == dir)
		return 0;
	*slash = '\0';
	for (char *p = dir + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
			srv_set_err(err, errlen, "cannot create %s: %s", dir, strerror(errno));
			return -1;
		}
		*p = '/';
	}
	if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
		srv_set_err(err, errlen, "cannot create %s: %s", dir, strerror(errno));
		return -1;
	}
	return 0;
}

static void tick_cb(lws_sorted_usec_list_t *sul)
{
	srv *s = lws_container_of(sul, srv, tick_sul);
	if (!s->stopping) {
		int64_t now = srv_mono_ms();
		srv_docs_tick(s, now);
		if (now >= s->next_heartbeat_ms) { /* O(connections): not every tick */
			srv_conns_heartbeat(s, now);
			s->next_heartbeat_ms = now + 1000;
		}
	}
	lws_sul_schedule(s->ctx, 0, &s->tick_sul, tick_cb, TICK_MS * LWS_US_PER_MS);
}

static int lws_levels(enum srv_log_level l)
{
	switch (l) {
	case SRV_LOG_ERROR:
		return LLL_ERR;
	case SRV_LOG_WARN:
	case SRV_LOG_INFO:
		return LLL_ERR | LLL_WARN;
	case SRV_LOG_DEBUG:
		return LLL_ERR | LLL_WARN | LLL_NOTICE;
	}
	return LLL_ERR;
}

srv *srv_new(const srv_config *cfg, char *err, size_t errlen)
{
	srv *s = calloc(1, sizeof *s);
	if (s == NULL) {
		srv_set_err(err, errlen, "out of memory");
		return NULL;
	}
	s->cfg = *cfg;
	s->log.level = cfg->log_level;
	s->log.out = stderr;
	srv_metrics_init(&s->metrics);
	s->limits.max_message_bytes = (size_t)cfg->max_message_bytes;
	s->limits.max_ops = (uint32_t)cfg->max_ops;
	/* 512 KiB of text per Update with the default 1 MiB (docs/PROTOCOL.md 8) */
	s->limits.max_text_bytes = (size_t)cfg->max_message_bytes / 2;
	s->crdt_opts.allocator = NULL;
	s->crdt_opts.max_pending_ops = 0; /* refuse ops with missing dependencies */
	srv_docs_init(&s->docs);
	srv_turn_init(&s->turn);
	if (srv_auth_init(&s->auth, cfg, err, errlen) != 0)
		goto fail;

	if (cfg->web_dir[0] != '\0') {
		struct stat st;
		if (stat(cfg->web_dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
			srv_set_err(err, errlen, "--web %s: not a directory", cfg->web_dir);
			goto fail;
		}
	}
	if (make_parent_dirs(cfg->db_path, err, errlen) != 0)
		goto fail;
	store_options so;
	store_options_init(&so);
	so.durability =
		cfg->durability == SRV_DURABILITY_FULL ? STORE_SYNC_FULL : STORE_SYNC_NORMAL;
	so.snapshot_every_changes = cfg->snapshot_every;
	so.keep_changes = cfg->keep_changes;
	so.keep_log_ratio = (uint32_t)cfg->keep_log_ratio;
	/* a checkpoint's fsyncs would stall every connection's traffic */
	so.checkpoint_pages = (uint32_t)cfg->checkpoint_pages;
	so.checkpoint_thread = true;
	so.crdt = &s->crdt_opts;
	so.on_damage = on_damage;
	so.on_damage_ctx = s;
	char serr[256] = "";
	int rc = store_open(cfg->db_path, &so, &s->db, serr, sizeof serr);
	if (rc != STORE_OK) {
		srv_set_err(err, errlen, "cannot open the database %s: %s (%s)", cfg->db_path,
			    store_strerror(rc), serr);
		goto fail;
	}

	lws_set_log_level(lws_levels(cfg->log_level), lws_log_emit);
	struct lws_context_creation_info info;
	memset(&info, 0, sizeof info);
	info.options = LWS_SERVER_OPTION_EXPLICIT_VHOSTS;
	info.port = CONTEXT_PORT_NO_LISTEN;
	info.user = s;
	/* lws's fd table: every descriptor the process may open (main.c raised
	 * the soft limit to the hard one), so no accept is refused for room */
	struct rlimit nofile;
	unsigned int fds = 0; /* 0: lws's own guess */
	if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur != RLIM_INFINITY &&
	    nofile.rlim_cur <= 1000000)
		fds = (unsigned int)nofile.rlim_cur;
	info.fd_limit_per_thread = fds;
	/* The event loop: lws's libev plugin on our own epoll loop (its connect
	 * rate stays flat as connections grow; poll() walks every descriptor
	 * each turn), else lws's poll(). The loop is ours ("foreign") so that
	 * srv_run can turn it once at a time and see the stop flag. */
	void *foreign[1] = {NULL};
	if (cfg->libev && (s->ev_loop = ev_loop_new(EVBACKEND_EPOLL)) != NULL) {
		foreign[0] = s->ev_loop;
		info.foreign_loops = foreign;
		info.options |= LWS_SERVER_OPTION_LIBEV;
	}
	s->ctx = lws_create_context(&info);
	if (s->ctx == NULL && s->ev_loop != NULL) {
		srv_warn(&s->log, "the libev event loop is not available (package "
				  "libwebsockets-evlib-ev?): using poll()");
		ev_loop_destroy(s->ev_loop);
		s->ev_loop = NULL;
		info.foreign_loops = NULL;
		info.options &= ~(uint64_t)LWS_SERVER_OPTION_LIBEV;
		s->ctx = lws_create_context(&info);
	}
	if (s->ctx == NULL) {
		srv_set_err(err, errlen, "cannot create the libwebsockets context");
		goto fail;
	}

	/* mounts: /healthz and /metrics (callbacks), then the web demo at / */
	struct lws_http_mount *mh = &s->mounts[0], *mm = &s->mounts[1], *mw = &s->mounts[2];
	memset(s->mounts, 0, sizeof s->mounts);
	mh->mountpoint = "/healthz";
	mh->mountpoint_len = 8;
	mh->origin = "quire-http";
	mh->origin_protocol = LWSMPRO_CALLBACK;
	mh->mount_next = mm;
	mm->mountpoint = "/metrics";
	mm->mountpoint_len = 8;
	mm->origin = "quire-http";
	mm->origin_protocol = LWSMPRO_CALLBACK;
	struct lws_http_mount *ma = &s->mounts[3]; /* GET /v1/docs/... (api.h) */
	mm->mount_next = ma;
	ma->mountpoint = SRV_API_MOUNT;
	ma->mountpoint_len = sizeof SRV_API_MOUNT - 1;
	ma->origin = "quire-api";
	ma->origin_protocol = LWSMPRO_CALLBACK;
	if (cfg->web_dir[0] != '\0') {
		ma->mount_next = mw;
		mw->mountpoint = "/";
		mw->mountpoint_len = 1;
		mw->origin = s->cfg.web_dir;
		mw->def = "index.html";
		mw->origin_protocol = LWSMPRO_FILE;
		mw->extra_mimetypes = &mime_wasm;
	}

	const char *host = s->cfg.listen_host;
	bool any =
		strcmp(host, "0.0.0.0") == 0 || strcmp(host, "::") == 0 || strcmp(host, "*") == 0;
	memset(&info, 0, sizeof info);
	info.port = cfg->listen_port;
	info.iface = any ? NULL : host;
	info.protocols = protocols;
	info.mounts = s->mounts;
	info.vhost_name = "quire";
	info.server_string = "quire-server";
	/* lws's validity timers off (hangup 0; without a policy lws applies a
	 * default one): the heartbeat is srv_conns_heartbeat (conn.h) */
	static const lws_retry_bo_t no_validity_timers = {0};
	info.retry_and_idle_policy = &no_validity_timers;
	if (cfg->deflate)
		info.extensions = extensions;
	if (strchr(host, ':') == NULL && !any)
		info.options |= LWS_SERVER_OPTION_DISABLE_IPV6;
	s->vhost = lws_create_vhost(s->ctx, &info);
	if (s->vhost == NULL) {
		srv_set_err(err, errlen, "cannot listen on %s:%d (address in use or not local?)",
			    host, cfg->listen_port);
		goto fail;
	}
	s->port = lws_get_vhost_listen_port(s->vhost);
	lws_sul_schedule(s->ctx, 0, &s->tick_sul, tick_cb, TICK_MS * LWS_US_PER_MS);
	srv_log_always(&s->log, "quire-server listening on %s:%d (ws://%s:%d%s), db %s (%s)%s%s",
		       host, s->port, host, s->port, SRV_WS_PATH, cfg->db_path,
		       srv_durability_name(cfg->durability), cfg->web_dir[0] ? ", web " : "",
		       cfg->web_dir);
	srv_info(&s->log, "event loop: %s; file descriptors: %u",
		 s->ev_loop ? "libev (epoll)" : "poll()", fds);
	srv_quota_announce(s);
	return s;
fail:
	srv_free(s);
	return NULL;
}

int srv_port(const srv *s) { return s->port; }

/* ---- running and stopping ------------------------------------------------------------- */

/* One turn of the event loop: wait for events (or the next timer, at most
 * TICK_MS away), handle them. <0 when the loop failed. */
static int service_once(srv *s)
{
	if (s->ev_loop != NULL) {
		ev_run(s->ev_loop, EVRUN_ONCE); /* a signal ends the wait too */
		return 0;
	}
	return lws_service(s->ctx, 0);
}

static void shutdown_gracefully(srv *s)
{
	s->stopping = true;
	srv_info(&s->log, "stopping: %zu connections, %zu documents", s->n_conns, s->docs.count);
	srv_turn_flush(s);
	srv_docs_snapshot_all(s);
	srv_sse_shutdown(s); /* "event: shutdown", then each stream ends */
	for (srv_conn *c = s->conns; c; c = c->next) {
		srv_conn_error(c, 0, WIRE_ERR_SHUTTING_DOWN, 0,
			       "the server is stopping; reconnect and resume by seq");
		srv_conn_close(c, SRV_CLOSE_GOING_AWAY, "server shutting down", true,
			       SRV_CLOSED_SHUTDOWN);
	}
	int64_t deadline = srv_mono_ms() + DRAIN_MS;
	while ((s->n_conns > 0 || srv_sse_count(s) > 0) && srv_mono_ms() < deadline)
		if (service_once(s) < 0)
			break;
	if (s->turn.n_changes > 0 || s->turn.n_docs > 0)
		srv_turn_flush(s); /* nothing new is accepted; this only settles Welcomes */
	srv_info(&s->log, "stopped (%zu connections left to close)", s->n_conns);
}

int srv_run(srv *s, volatile sig_atomic_t *stop)
{
	int rc = 0;
	while (!*stop) {
		if (service_once(s) < 0) {
			srv_err(&s->log, "event loop failed");
			rc = 1;
			break;
		}
	}
	shutdown_gracefully(s);
	return rc;
}

void srv_free(srv *s)
{
	if (s == NULL)
		return;
	if (s->ctx != NULL) {
		s->stopping = true;
		for (srv_conn *c = s->conns; c; c = c->next)
			c->state =
				SRV_CONN_CLOSING; /* nothing more is queued while lws closes them */
		lws_sul_cancel(&s->tick_sul);
		srv_docs_quiet_stop(s);
		lws_sul_cancel(&s->turn.sul);
		lws_context_destroy(s->ctx); /* closes what is left: srv_conn_free */
		s->ctx = NULL;
	}
	if (s->ev_loop != NULL) {
		ev_loop_destroy(s->ev_loop);
		s->ev_loop = NULL;
	}
	srv_conns_free_shared(s);
	srv_turn_free(&s->turn);
	srv_docs_free_all(s);
	store_close(s->db);
	free(s->ops_scratch);
	srv_auth_clear(&s->auth);
	free(s);
}
