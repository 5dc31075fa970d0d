/*
 * log.h - quire-server's log lines: one line per event on stderr,
 * "2026-11-30T12:00:00.123Z info  conn 7 joined 'notes/a' ...", filtered by
 * --log-level. Document text and tokens are never logged; callers pass ids,
 * sizes and codes only.
 *
 * The logger is a plain value inside the server object (no global state);
 * libwebsockets' own messages are routed here too (server.c) at warn level
 * and above.
 */
#ifndef QUIRE_SRV_LOG_H
#define QUIRE_SRV_LOG_H

#include <stdio.h>

#include "config.h"

typedef struct srv_log {
	enum srv_log_level level; /* lines above this level are dropped */
	FILE *out;		  /* stderr */
} srv_log;

#if defined(__GNUC__) || defined(__clang__)
#define SRV_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define SRV_PRINTF(a, b)
#endif

/* Write one line (a newline is added) if `level` is enabled. */
void srv_log_line(const srv_log *lg, enum srv_log_level level, const char *fmt, ...)
	SRV_PRINTF(3, 4);

/* Write one line whatever the level (the startup line tools wait for). */
void srv_log_always(const srv_log *lg, const char *fmt, ...) SRV_PRINTF(2, 3);

/* A warning written whatever the level (the server running open). */
void srv_log_warn_always(const srv_log *lg, const char *fmt, ...) SRV_PRINTF(2, 3);

/* Whether lines of `level` are written (to skip building expensive ones). */
static inline int srv_log_on(const srv_log *lg, enum srv_log_level level)
{
	return lg != NULL && level <= lg->level;
}

#define srv_err(lg, ...) srv_log_line((lg), SRV_LOG_ERROR, __VA_ARGS__)
#define srv_warn(lg, ...) srv_log_line((lg), SRV_LOG_WARN, __VA_ARGS__)
#define srv_info(lg, ...) srv_log_line((lg), SRV_LOG_INFO, __VA_ARGS__)
#define srv_debug(lg, ...) srv_log_line((lg), SRV_LOG_DEBUG, __VA_ARGS__)

#endif /* QUIRE_SRV_LOG_H */
