/*
 * config.h - quire-server's settings: defaults, the QUIRE_* environment
 * variables and the command-line flags, parsed from one table so that every
 * setting has exactly one name in each form and one line of --help.
 *
 * Precedence: built-in defaults < environment < flags. Parsing is pure (no
 * getenv, no exit, no printing): the caller passes the argument vector and
 * the environment, gets a status and a one-line reason, and decides what to
 * print. That keeps it unit-testable (tests/server/test_server_config.c).
 */
#ifndef QUIRE_SRV_CONFIG_H
#define QUIRE_SRV_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define SRV_CONFIG_HOST_MAX 255	 /* bytes of the listen host */
#define SRV_CONFIG_PATH_MAX 4095 /* bytes of --db and --web */
#define SRV_CONFIG_SECRET_MAX 1024 /* bytes of --token-secret */
#define SRV_CONFIG_LIST_MAX 4095 /* bytes of --allow-origin's comma list */

enum srv_durability {
	SRV_DURABILITY_NORMAL = 1, /* survives a process crash (SQLite synchronous=NORMAL) */
	SRV_DURABILITY_FULL = 2,   /* also survives power loss (synchronous=FULL) */
};

enum srv_log_level {
	SRV_LOG_ERROR = 0,
	SRV_LOG_WARN = 1,
	SRV_LOG_INFO = 2,
	SRV_LOG_DEBUG = 3,
};

typedef struct srv_config {
	char listen_host[SRV_CONFIG_HOST_MAX + 1]; /* "127.0.0.1", "::1", "0.0.0.0", "localhost" */
	int listen_port;			   /* 0..65535; 0: the kernel picks one */
	char db_path[SRV_CONFIG_PATH_MAX + 1];	   /* its folder is created if missing */
	char web_dir[SRV_CONFIG_PATH_MAX + 1];	   /* "" when static files are not served */
	enum srv_durability durability;
	enum srv_log_level log_level;
	uint64_t max_message_bytes;   /* one incoming WebSocket message, reassembled */
	uint64_t max_ops;	      /* ops in one Update */
	uint64_t max_docs_per_conn;   /* documents joined at once on one connection */
	uint64_t send_queue_bytes;    /* bytes queued for one connection before it is dropped */
	uint64_t idle_unload_ms;      /* a document without members is unloaded after this */
	uint64_t snapshot_every;      /* changes between snapshots (0: only at unload) */
	uint64_t keep_changes;	      /* newest changes kept when the log is trimmed... */
	uint64_t keep_log_ratio;      /* ...unless heavier than this x the snapshot (store.h) */
	uint64_t checkpoint_pages;    /* WAL length that wakes the checkpoint thread */
	uint64_t quiet_snapshot_ms;   /* quiet time before a burst's Snapshot is encoded (0: off) */
	uint64_t heartbeat_timeout_s; /* close a silent WebSocket after this; ping at half */
	uint64_t message_timeout_s;   /* a message begun must end within this (0: no limit) */
	/* security and limits (auth.h, quota.h) */
	char token_secret[SRV_CONFIG_SECRET_MAX + 1];	 /* "": none (see the file) */
	char token_secret_file[SRV_CONFIG_PATH_MAX + 1]; /* read by srv_auth_init */
	char allow_origins[SRV_CONFIG_LIST_MAX + 1];	 /* comma-separated; "": any */
	bool allow_origins_by_flag; /* config.c: a flag replaced the variable's list */
	uint64_t max_msgs_per_s;    /* messages per second per connection (0: no limit) */
	uint64_t max_bytes_per_s;   /* bytes per second per connection (0: no limit) */
	uint64_t rate_burst_s;	    /* token buckets hold this many seconds of the rates */
	uint64_t max_conns_per_ip;  /* WebSocket connections from one address (0: no limit) */
	uint64_t max_doc_bytes;	    /* UTF-8 bytes of a document's text */
	bool deflate; /* offer permessage-deflate to WebSocket clients (--no-deflate) */
	uint64_t deflate_min_bytes; /* smaller messages go out uncompressed even with deflate */
	bool libev; /* run lws on its libev plugin (epoll), else its poll() loop (--no-libev) */
	uint64_t prefault_bytes; /* heap touched at start and kept (heap.h); 0: off */
} srv_config;

/* Status of the parsing functions. */
enum srv_config_status {
	SRV_CONFIG_OK = 0,
	SRV_CONFIG_HELP = 1,	/* --help was given: print srv_config_usage, exit 0 */
	SRV_CONFIG_VERSION = 2, /* --version was given */
	SRV_CONFIG_EINVAL = -1, /* bad flag, variable or value: err says which */
};

/* Fill *c with the built-in defaults (the values --help shows). */
void srv_config_defaults(srv_config *c);

/*
 * Apply the QUIRE_* variables found in envp (a NULL-terminated array of
 * "NAME=value" strings, e.g. environ; NULL means none). Unknown variables
 * are ignored; an empty value counts as unset. SRV_CONFIG_OK or
 * SRV_CONFIG_EINVAL with err naming the variable (c may then be partly
 * updated).
 */
int srv_config_apply_env(srv_config *c, char *const *envp, char *err, size_t errlen);

/*
 * Apply the flags argv[1..argc) ("--name value" or "--name=value"). Returns
 * SRV_CONFIG_OK, SRV_CONFIG_HELP / SRV_CONFIG_VERSION as soon as --help /
 * --version is seen, or SRV_CONFIG_EINVAL with err naming the flag (unknown
 * flag, missing or bad value, stray positional argument).
 */
int srv_config_apply_args(srv_config *c, int argc, char *const *argv, char *err, size_t errlen);

/* Check the combination of settings (e.g. the send queue holds at least a
 * few messages). SRV_CONFIG_OK or SRV_CONFIG_EINVAL with err. */
int srv_config_validate(const srv_config *c, char *err, size_t errlen);

/* defaults, then envp, then argv, then validate: what main() calls. */
int srv_config_load(srv_config *c, int argc, char *const *argv, char *const *envp, char *err,
		    size_t errlen);

/* The --help text: every flag, its variable, its default. */
void srv_config_usage(FILE *out, const char *prog);

/* Print the effective settings, one "name = value" per line. */
void srv_config_print(FILE *out, const srv_config *c);

/* printf into err[errlen], unless err is NULL or errlen 0: how the server's
 * start-up functions (settings, token key, database folder) say what failed. */
void srv_set_err(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* ---- value parsers (exposed for the tests) ------------------------------------ */

/* "HOST:PORT", "[v6addr]:PORT" or ":PORT" (host 127.0.0.1). 0 or -1. */
int srv_config_parse_listen(const char *s, char *host, size_t hostcap, int *port);

/* A byte count: digits with an optional binary suffix K, M, G (or KiB, MiB,
 * GiB; case-insensitive). 0 or -1 (syntax, overflow). */
int srv_config_parse_size(const char *s, uint64_t *out);

/* A plain decimal unsigned integer. 0 or -1. */
int srv_config_parse_uint(const char *s, uint64_t *out);

const char *srv_durability_name(enum srv_durability d);
const char *srv_log_level_name(enum srv_log_level l);

#endif /* QUIRE_SRV_CONFIG_H */
