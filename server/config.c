/*
 * config.c - quire-server's settings, parsed from one table (`options`):
 * each row names a setting's flag, its environment variable, how its value
 * is parsed and checked, and its line of --help. Adding a setting is adding
 * a row (and a field of srv_config); the parsers, the usage text and
 * srv_config_print all follow from the table.
 */
#define _POSIX_C_SOURCE 200809L

#include "config.h"

#include <ctype.h>
#include <stdarg.h>
#include <string.h>

#define KIB 1024ull
#define MIB (1024ull * 1024)
#define GIB (1024ull * 1024 * 1024)

enum opt_kind {
	OPT_LISTEN,
	OPT_PATH,
	OPT_DURABILITY,
	OPT_LOG_LEVEL,
	OPT_SIZE,
	OPT_UINT,
	OPT_SECRET, /* a string of at most `max` bytes, never printed */
	OPT_LIST,   /* a comma list of at most `max` bytes; repeated flags add to it */
	OPT_OFF,    /* a bool, on by default: the flag (no value) turns it off; the
		       variable takes on|off|1|0|true|false|yes|no */
};

typedef struct opt {
	const char *flag; /* without the leading "--" */
	const char *env;
	const char *metavar;
	enum opt_kind kind;
	size_t offset; /* of the field in srv_config */
	uint64_t min, max;
	const char *help;
} opt;

#define FIELD(f) offsetof(srv_config, f)

static const opt options[] = {
	{"listen", "QUIRE_LISTEN", "HOST:PORT", OPT_LISTEN, 0, 0, 0,
	 "address to listen on (HTTP and WebSocket); port 0 picks a free port"},
	{"db", "QUIRE_DB", "PATH", OPT_PATH, FIELD(db_path), 1, 0,
	 "SQLite database file; its folder is created if missing"},
	{"web", "QUIRE_WEB", "DIR", OPT_PATH, FIELD(web_dir), 0, 0,
	 "serve the static files of DIR at / (the built web demo); none by default"},
	{"durability", "QUIRE_DURABILITY", "normal|full", OPT_DURABILITY, FIELD(durability), 0, 0,
	 "normal: acked changes survive a crash of the server; full: also power loss"},
	{"log-level", "QUIRE_LOG_LEVEL", "LEVEL", OPT_LOG_LEVEL, FIELD(log_level), 0, 0,
	 "error, warn, info or debug"},
	{"max-message-bytes", "QUIRE_MAX_MESSAGE_BYTES", "SIZE", OPT_SIZE, FIELD(max_message_bytes),
	 1 * KIB, 64 * MIB,
	 "largest message accepted (TOO_LARGE beyond; 16x this closes with 1009)"},
	{"max-ops", "QUIRE_MAX_OPS", "N", OPT_UINT, FIELD(max_ops), 1, 1000000,
	 "most ops in one Update (TOO_LARGE beyond)"},
	{"max-docs-per-conn", "QUIRE_MAX_DOCS_PER_CONN", "N", OPT_UINT, FIELD(max_docs_per_conn), 1,
	 100000, "documents one connection may have joined at once (TOO_MANY_DOCUMENTS)"},
	{"send-queue-bytes", "QUIRE_SEND_QUEUE_BYTES", "SIZE", OPT_SIZE, FIELD(send_queue_bytes),
	 4 * KIB, 4 * GIB,
	 "bytes waiting to be sent to one client before it is disconnected (1008)"},
	{"idle-unload-ms", "QUIRE_IDLE_UNLOAD_MS", "MS", OPT_UINT, FIELD(idle_unload_ms), 0,
	 UINT64_C(86400000) * 365, "unload (after a snapshot) documents without members this long"},
	{"snapshot-every", "QUIRE_SNAPSHOT_EVERY", "N", OPT_UINT, FIELD(snapshot_every), 0,
	 UINT64_C(1) << 40,
	 "snapshot a document every N changes (0: by size, 1 MiB of log, and at unload only)"},
	{"keep-changes", "QUIRE_KEEP_CHANGES", "N", OPT_UINT, FIELD(keep_changes), 0,
	 UINT64_C(1) << 40, "newest changes kept in the log when it is trimmed (but see --keep-log-ratio)"},
	{"keep-log-ratio", "QUIRE_KEEP_LOG_RATIO", "N", OPT_UINT, FIELD(keep_log_ratio), 0, 1000,
	 "also trim changes behind N x the snapshot's size of newer log: no catch-up uses them (0: off)"},
	{"checkpoint-pages", "QUIRE_CHECKPOINT_PAGES", "N", OPT_UINT, FIELD(checkpoint_pages), 1,
	 1u << 30,
	 "checkpoint the database's WAL (on a thread of its own) when it reaches N pages of 4 KiB"},
	{"quiet-snapshot-ms", "QUIRE_QUIET_SNAPSHOT_MS", "MS", OPT_UINT, FIELD(quiet_snapshot_ms),
	 0, 3600000,
	 "encode the catch-up Snapshot once a document is quiet this long after a burst (0: off)"},
	{"prefault-bytes", "QUIRE_PREFAULT_BYTES", "SIZE", OPT_SIZE, FIELD(prefault_bytes), 0, 1 * GIB,
	 "heap touched at start and kept, so first document loads skip page faults (0: off)"},
	{"heartbeat-timeout-s", "QUIRE_HEARTBEAT_TIMEOUT_S", "S", OPT_UINT,
	 FIELD(heartbeat_timeout_s), 2, 3600,
	 "close a WebSocket silent this long; WebSocket pings go out at half of it"},
	{"message-timeout-s", "QUIRE_MESSAGE_TIMEOUT_S", "S", OPT_UINT, FIELD(message_timeout_s), 0,
	 3600, "close a WebSocket whose message, once begun, is not complete this long after (0: never)"},
	{"token-secret", "QUIRE_TOKEN_SECRET", "SECRET", OPT_SECRET, FIELD(token_secret), 0,
	 SRV_CONFIG_SECRET_MAX,
	 "HMAC-SHA256 key of the access tokens (>= 16 bytes); none: the server is open"},
	{"token-secret-file", "QUIRE_TOKEN_SECRET_FILE", "PATH", OPT_PATH, FIELD(token_secret_file),
	 0, 0, "read the token key from PATH (one trailing newline is ignored)"},
	{"allow-origin", "QUIRE_ALLOW_ORIGINS", "ORIGIN", OPT_LIST, FIELD(allow_origins), 0,
	 SRV_CONFIG_LIST_MAX,
	 "accept WebSocket upgrades only from these Origins (repeat or comma list); none: any"},
	{"max-msgs-per-s", "QUIRE_MAX_MSGS_PER_S", "N", OPT_UINT, FIELD(max_msgs_per_s), 0, 1000000,
	 "messages per second per connection (RATE_LIMITED beyond; 0: no limit)"},
	{"max-bytes-per-s", "QUIRE_MAX_BYTES_PER_S", "SIZE", OPT_SIZE, FIELD(max_bytes_per_s), 0,
	 64 * GIB, "bytes per second per connection (RATE_LIMITED beyond; 0: no limit)"},
	{"rate-burst-s", "QUIRE_RATE_BURST_S", "S", OPT_UINT, FIELD(rate_burst_s), 1, 3600,
	 "the rate limits allow bursts of this many seconds' worth"},
	{"max-conns-per-ip", "QUIRE_MAX_CONNS_PER_IP", "N", OPT_UINT, FIELD(max_conns_per_ip), 0,
	 1000000, "WebSocket connections from one address (HTTP 429 beyond; 0: no limit)"},
	{"no-deflate", "QUIRE_DEFLATE", "", OPT_OFF, FIELD(deflate), 0, 0,
	 "do not offer permessage-deflate (RFC 7692) to WebSocket clients"},
	{"deflate-min-bytes", "QUIRE_DEFLATE_MIN_BYTES", "SIZE", OPT_SIZE, FIELD(deflate_min_bytes),
	 0, 64 * MIB,
	 "with permessage-deflate, compress only messages of at least this size; smaller go plain"},
	{"no-libev", "QUIRE_LIBEV", "", OPT_OFF, FIELD(libev), 0, 0,
	 "use libwebsockets' poll() loop, not its libev (epoll) plugin"},
	{"max-doc-bytes", "QUIRE_MAX_DOC_BYTES", "SIZE", OPT_SIZE, FIELD(max_doc_bytes), 1 * KIB,
	 4 * GIB, "largest document text, UTF-8 bytes (TOO_LARGE for Updates beyond)"},
};

#define N_OPTIONS (sizeof options / sizeof options[0])

/* ---- small helpers ------------------------------------------------------------ */

void srv_set_err(char *err, size_t errlen, const char *fmt, ...)
{
	if (err == NULL || errlen == 0)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static uint64_t *u64_field(srv_config *c, const opt *o)
{
	return (uint64_t *)(void *)((char *)c + o->offset);
}

static const uint64_t *u64_field_c(const srv_config *c, const opt *o)
{
	return (const uint64_t *)(const void *)((const char *)c + o->offset);
}

const char *srv_durability_name(enum srv_durability d)
{
	return d == SRV_DURABILITY_FULL ? "full" : "normal";
}

static const char *const level_names[] = {"error", "warn", "info", "debug"};

const char *srv_log_level_name(enum srv_log_level l)
{
	if ((unsigned)l < sizeof level_names / sizeof level_names[0])
		return level_names[l];
	return "info";
}

/* ---- value parsers -------------------------------------------------------------- */

int srv_config_parse_uint(const char *s, uint64_t *out)
{
	if (s == NULL || *s == '\0')
		return -1;
	uint64_t v = 0;
	for (const char *p = s; *p; p++) {
		if (*p < '0' || *p > '9')
			return -1;
		unsigned d = (unsigned)(*p - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

int srv_config_parse_size(const char *s, uint64_t *out)
{
	if (s == NULL)
		return -1;
	size_t n = 0;
	while (s[n] >= '0' && s[n] <= '9')
		n++;
	if (n == 0 || n > 20)
		return -1;
	char digits[21];
	memcpy(digits, s, n);
	digits[n] = '\0';
	uint64_t v;
	if (srv_config_parse_uint(digits, &v) != 0)
		return -1;
	const char *suf = s + n;
	uint64_t mul = 1;
	if (*suf != '\0') {
		switch (tolower((unsigned char)*suf)) {
		case 'k':
			mul = KIB;
			break;
		case 'm':
			mul = MIB;
			break;
		case 'g':
			mul = GIB;
			break;
		default:
			return -1;
		}
		suf++;
		if ((tolower((unsigned char)suf[0]) == 'i' &&
		     tolower((unsigned char)suf[1]) == 'b'))
			suf += 2;
		else if (tolower((unsigned char)suf[0]) == 'b')
			suf += 1;
		if (*suf != '\0')
			return -1;
	}
	if (v > UINT64_MAX / mul)
		return -1;
	*out = v * mul;
	return 0;
}

int srv_config_parse_listen(const char *s, char *host, size_t hostcap, int *port)
{
	if (s == NULL || hostcap == 0)
		return -1;
	const char *colon;
	const char *h = s;
	size_t hlen;
	if (s[0] == '[') { /* [v6]:port */
		const char *close = strchr(s, ']');
		if (close == NULL || close[1] != ':')
			return -1;
		h = s + 1;
		hlen = (size_t)(close - h);
		colon = close + 1;
		if (hlen == 0)
			return -1;
	} else {
		colon = strrchr(s, ':');
		if (colon == NULL)
			return -1;
		hlen = (size_t)(colon - s);
		if (memchr(s, ':', hlen) != NULL)
			return -1; /* a bare IPv6 address needs brackets */
	}
	uint64_t p;
	if (srv_config_parse_uint(colon + 1, &p) != 0 || p > 65535)
		return -1;
	if (hlen == 0) {
		h = "127.0.0.1";
		hlen = strlen(h);
	}
	if (hlen >= hostcap)
		return -1;
	for (size_t i = 0; i < hlen; i++)
		if (h[i] == ' ' || h[i] == '/' || (unsigned char)h[i] < 0x21)
			return -1;
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	*port = (int)p;
	return 0;
}

/* ---- the table's parsing ------------------------------------------------------- */

/* Parse `value` into the option's field; `name` is "--flag" or the variable
 * name, for the message. */
static int apply_value(srv_config *c, const opt *o, const char *value, const char *name, char *err,
		       size_t errlen)
{
	uint64_t v;
	switch (o->kind) {
	case OPT_LISTEN:
		if (srv_config_parse_listen(value, c->listen_host, sizeof c->listen_host,
					    &c->listen_port) != 0) {
			srv_set_err(err, errlen, "%s: '%s' is not HOST:PORT (port 0..65535)", name,
				    value);
			return SRV_CONFIG_EINVAL;
		}
		return SRV_CONFIG_OK;
	case OPT_PATH: {
		char *dst = (char *)c + o->offset;
		size_t len = strlen(value);
		if (len > SRV_CONFIG_PATH_MAX) {
			srv_set_err(err, errlen, "%s: path longer than %d bytes", name,
				    SRV_CONFIG_PATH_MAX);
			return SRV_CONFIG_EINVAL;
		}
		if (len == 0 && o->min > 0) {
			srv_set_err(err, errlen, "%s: must not be empty", name);
			return SRV_CONFIG_EINVAL;
		}
		memcpy(dst, value, len + 1);
		return SRV_CONFIG_OK;
	}
	case OPT_SECRET:
	case OPT_LIST: {
		char *dst = (char *)c + o->offset;
		size_t len = strlen(value), have = 0;
		if (o->kind == OPT_LIST && name[0] == '-') {
			/* the first flag replaces the variable's list, later ones add */
			if (c->allow_origins_by_flag)
				have = strlen(dst);
			c->allow_origins_by_flag = true;
		}
		if (have + (have > 0) + len > o->max) {
			srv_set_err(err, errlen, "%s: longer than %llu bytes", name,
				    (unsigned long long)o->max);
			return SRV_CONFIG_EINVAL;
		}
		if (have > 0 && len > 0)
			dst[have++] = ',';
		memcpy(dst + have, value, len + 1);
		return SRV_CONFIG_OK;
	}
	case OPT_DURABILITY:
		if (strcmp(value, "normal") == 0)
			c->durability = SRV_DURABILITY_NORMAL;
		else if (strcmp(value, "full") == 0)
			c->durability = SRV_DURABILITY_FULL;
		else {
			srv_set_err(err, errlen, "%s: '%s' is not normal or full", name, value);
			return SRV_CONFIG_EINVAL;
		}
		return SRV_CONFIG_OK;
	case OPT_LOG_LEVEL:
		for (size_t i = 0; i < sizeof level_names / sizeof level_names[0]; i++)
			if (strcmp(value, level_names[i]) == 0) {
				c->log_level = (enum srv_log_level)i;
				return SRV_CONFIG_OK;
			}
		srv_set_err(err, errlen, "%s: '%s' is not error, warn, info or debug", name, value);
		return SRV_CONFIG_EINVAL;
	case OPT_SIZE:
	case OPT_UINT: {
		int rc = o->kind == OPT_SIZE ? srv_config_parse_size(value, &v)
					     : srv_config_parse_uint(value, &v);
		if (rc != 0) {
			srv_set_err(err, errlen, "%s: '%s' is not %s", name, value,
				    o->kind == OPT_SIZE ? "a size (e.g. 65536, 64K, 1M)"
							: "a non-negative integer");
			return SRV_CONFIG_EINVAL;
		}
		if (v < o->min || v > o->max) {
			srv_set_err(err, errlen, "%s: %s is out of range [%llu, %llu]", name, value,
				    (unsigned long long)o->min, (unsigned long long)o->max);
			return SRV_CONFIG_EINVAL;
		}
		*u64_field(c, o) = v;
		return SRV_CONFIG_OK;
	}
	case OPT_OFF: {
		bool *b = (bool *)(void *)((char *)c + o->offset);
		if (name[0] == '-') {
			srv_set_err(err, errlen, "%s takes no value", name);
			return SRV_CONFIG_EINVAL;
		}
		static const char *const on[] = {"on", "1", "true", "yes"},
					 *const off[] = {"off", "0", "false", "no"};
		for (size_t i = 0; i < 4; i++)
			if (strcmp(value, on[i]) == 0 || strcmp(value, off[i]) == 0) {
				*b = strcmp(value, on[i]) == 0;
				return SRV_CONFIG_OK;
			}
		srv_set_err(err, errlen, "%s: '%s' is not on or off", name, value);
		return SRV_CONFIG_EINVAL;
	}
	}
	return SRV_CONFIG_EINVAL;
}

void srv_config_defaults(srv_config *c)
{
	memset(c, 0, sizeof *c);
	strcpy(c->listen_host, "127.0.0.1");
	c->listen_port = 8080;
	strcpy(c->db_path, "./data/quire.db");
	c->web_dir[0] = '\0';
	c->durability = SRV_DURABILITY_NORMAL;
	c->log_level = SRV_LOG_INFO;
	c->max_message_bytes = 1 * MIB;
	c->max_ops = 10000;
	c->max_docs_per_conn = 64;
	c->send_queue_bytes = 8 * MIB;
	c->idle_unload_ms = 30000;
	c->snapshot_every = 1000;
	c->keep_changes = 1000;
	c->keep_log_ratio = 2;
	c->checkpoint_pages = 1000;
	c->quiet_snapshot_ms = 5; /* after the burst, before a reconnect is likely */
	c->heartbeat_timeout_s = 60;
	c->message_timeout_s = 30; /* a slow sender (slowloris) cannot hold a message open */
	c->max_msgs_per_s = 200;
	c->max_bytes_per_s = 4 * MIB;
	c->rate_burst_s = 2;
	c->max_conns_per_ip = 0;
	c->max_doc_bytes = 16 * MIB;
	c->deflate = true;
	c->deflate_min_bytes = 256; /* below it deflate saves a few bytes and costs the client CPU */
	c->libev = true;
	c->prefault_bytes = 4 * MIB; /* covers loading a ~100 KB-text document and its catch-up */
}

int srv_config_apply_env(srv_config *c, char *const *envp, char *err, size_t errlen)
{
	if (envp == NULL)
		return SRV_CONFIG_OK;
	for (char *const *e = envp; *e; e++) {
		const char *eq = strchr(*e, '=');
		if (eq == NULL || strncmp(*e, "QUIRE_", 6) != 0)
			continue;
		size_t nlen = (size_t)(eq - *e);
		for (size_t i = 0; i < N_OPTIONS; i++) {
			const opt *o = &options[i];
			if (strlen(o->env) != nlen || strncmp(o->env, *e, nlen) != 0)
				continue;
			if (eq[1] == '\0')
				break; /* empty: unset */
			int rc = apply_value(c, o, eq + 1, o->env, err, errlen);
			if (rc != SRV_CONFIG_OK)
				return rc;
			break;
		}
	}
	return SRV_CONFIG_OK;
}

int srv_config_apply_args(srv_config *c, int argc, char *const *argv, char *err, size_t errlen)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0)
			return SRV_CONFIG_HELP;
		if (strcmp(a, "--version") == 0)
			return SRV_CONFIG_VERSION;
		if (strncmp(a, "--", 2) != 0) {
			srv_set_err(err, errlen, "unexpected argument '%s' (see --help)", a);
			return SRV_CONFIG_EINVAL;
		}
		const char *name = a + 2;
		const char *eq = strchr(name, '=');
		size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
		const opt *o = NULL;
		for (size_t k = 0; k < N_OPTIONS; k++)
			if (strlen(options[k].flag) == nlen &&
			    strncmp(options[k].flag, name, nlen) == 0)
				o = &options[k];
		if (o == NULL) {
			srv_set_err(err, errlen, "unknown flag '%.*s' (see --help)",
				    (int)(nlen + 2), a);
			return SRV_CONFIG_EINVAL;
		}
		if (o->kind == OPT_OFF && eq == NULL) {
			*(bool *)(void *)((char *)c + o->offset) = false;
			continue;
		}
		const char *value;
		if (eq != NULL) {
			value = eq + 1;
		} else {
			if (i + 1 >= argc) {
				srv_set_err(err, errlen, "--%s needs a value (%s)", o->flag,
					    o->metavar);
				return SRV_CONFIG_EINVAL;
			}
			value = argv[++i];
		}
		char flagname[64];
		snprintf(flagname, sizeof flagname, "--%s", o->flag);
		int rc = apply_value(c, o, value, flagname, err, errlen);
		if (rc != SRV_CONFIG_OK)
			return rc;
	}
	return SRV_CONFIG_OK;
}

int srv_config_validate(const srv_config *c, char *err, size_t errlen)
{
	if (c->db_path[0] == '\0') {
		srv_set_err(err, errlen, "--db must not be empty");
		return SRV_CONFIG_EINVAL;
	}
	if (c->listen_port < 0 || c->listen_port > 65535) {
		srv_set_err(err, errlen, "--listen: port out of range");
		return SRV_CONFIG_EINVAL;
	}
	if (c->token_secret[0] != '\0' && c->token_secret_file[0] != '\0') {
		srv_set_err(err, errlen, "--token-secret and --token-secret-file: give only one");
		return SRV_CONFIG_EINVAL;
	}
	for (size_t i = 0; i < N_OPTIONS; i++) {
		const opt *o = &options[i];
		if (o->kind != OPT_SIZE && o->kind != OPT_UINT)
			continue;
		uint64_t v = *u64_field_c(c, o);
		if (v < o->min || v > o->max) {
			srv_set_err(err, errlen, "--%s: %llu is out of range [%llu, %llu]", o->flag,
				    (unsigned long long)v, (unsigned long long)o->min,
				    (unsigned long long)o->max);
			return SRV_CONFIG_EINVAL;
		}
	}
	return SRV_CONFIG_OK;
}

int srv_config_load(srv_config *c, int argc, char *const *argv, char *const *envp, char *err,
		    size_t errlen)
{
	srv_config_defaults(c);
	int rc = srv_config_apply_env(c, envp, err, errlen);
	if (rc != SRV_CONFIG_OK)
		return rc;
	rc = srv_config_apply_args(c, argc, argv, err, errlen);
	if (rc != SRV_CONFIG_OK)
		return rc;
	return srv_config_validate(c, err, errlen);
}

/* ---- printing ----------------------------------------------------------------------- */

static void format_value(const srv_config *c, const opt *o, char *buf, size_t cap)
{
	switch (o->kind) {
	case OPT_LISTEN:
		if (strchr(c->listen_host, ':'))
			snprintf(buf, cap, "[%s]:%d", c->listen_host, c->listen_port);
		else
			snprintf(buf, cap, "%s:%d", c->listen_host, c->listen_port);
		return;
	case OPT_PATH: {
		const char *p = (const char *)c + o->offset;
		snprintf(buf, cap, "%s", *p ? p : "(none)");
		return;
	}
	case OPT_DURABILITY:
		snprintf(buf, cap, "%s", srv_durability_name(c->durability));
		return;
	case OPT_LOG_LEVEL:
		snprintf(buf, cap, "%s", srv_log_level_name(c->log_level));
		return;
	case OPT_SIZE: {
		uint64_t v = *u64_field_c(c, o);
		if (v >= MIB && v % MIB == 0)
			snprintf(buf, cap, "%lluM", (unsigned long long)(v / MIB));
		else if (v >= KIB && v % KIB == 0)
			snprintf(buf, cap, "%lluK", (unsigned long long)(v / KIB));
		else
			snprintf(buf, cap, "%llu", (unsigned long long)v);
		return;
	}
	case OPT_UINT:
		snprintf(buf, cap, "%llu", (unsigned long long)*u64_field_c(c, o));
		return;
	case OPT_SECRET: {
		const char *p = (const char *)c + o->offset;
		snprintf(buf, cap, "%s", *p ? "(set)" : "(none)");
		return;
	}
	case OPT_LIST: {
		const char *p = (const char *)c + o->offset;
		snprintf(buf, cap, "%s", *p ? p : "(any)");
		return;
	}
	case OPT_OFF:
		snprintf(buf, cap, "%s",
			 *(const bool *)(const void *)((const char *)c + o->offset) ? "on" : "off");
		return;
	}
}

void srv_config_usage(FILE *out, const char *prog)
{
	srv_config d;
	srv_config_defaults(&d);
	fprintf(out,
		"Usage: %s [FLAGS]\n"
		"\n"
		"Quire's collaborative-editing sync server: WebSocket protocol \"quire.v1\"\n"
		"at ws://HOST:PORT/sync, GET /healthz, GET /metrics (Prometheus), and the static\n"
		"files of --web. Every flag can also be given as the environment variable\n"
		"shown; flags win over the environment. SIZE takes K, M or G (x1024).\n"
		"\n",
		prog);
	for (size_t i = 0; i < N_OPTIONS; i++) {
		const opt *o = &options[i];
		char left[64], def[SRV_CONFIG_PATH_MAX + 32];
		snprintf(left, sizeof left, "--%s %s", o->flag, o->metavar);
		format_value(&d, o, def, sizeof def);
		fprintf(out, "  %-32s %s\n  %-32s [%s, default %s]\n", left, o->help, "", o->env,
			def);
	}
	fprintf(out, "  %-32s %s\n  %-32s %s\n", "--help", "print this help and exit", "--version",
		"print the version and exit");
	fprintf(out, "\nSIGTERM or SIGINT: stop accepting, commit what is pending, snapshot the\n"
		     "loaded documents, close every client with 1001 and exit 0.\n");
}

void srv_config_print(FILE *out, const srv_config *c)
{
	for (size_t i = 0; i < N_OPTIONS; i++) {
		char v[SRV_CONFIG_PATH_MAX + 32];
		format_value(c, &options[i], v, sizeof v);
		fprintf(out, "  %s = %s\n", options[i].flag, v);
	}
}
