/*
 * log.c - formatting of quire-server's log lines (see log.h): a UTC
 * timestamp with milliseconds, the level, the message, one write per line so
 * lines from one process never interleave mid-line.
 */
#define _POSIX_C_SOURCE 200809L

#include "log.h"

#include <stdarg.h>
#include <string.h>
#include <time.h>

static void vline(const srv_log *lg, enum srv_log_level level, const char *fmt, va_list ap)
{
	static const char *const names[] = {"error", "warn ", "info ", "debug"};
	char line[1024];
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	size_t n = strftime(line, sizeof line, "%Y-%m-%dT%H:%M:%S", &tm);
	n += (size_t)snprintf(line + n, sizeof line - n, ".%03ldZ %s ", ts.tv_nsec / 1000000L,
			      names[level]);
	int m = vsnprintf(line + n, sizeof line - n, fmt, ap);
	if (m < 0)
		m = 0;
	n += (size_t)m;
	if (n > sizeof line - 2)
		n = sizeof line - 2; /* cut long lines */
	line[n++] = '\n';
	fwrite(line, 1, n, lg->out ? lg->out : stderr);
	fflush(lg->out ? lg->out : stderr);
}

void srv_log_line(const srv_log *lg, enum srv_log_level level, const char *fmt, ...)
{
	if (!srv_log_on(lg, level))
		return;
	va_list ap;
	va_start(ap, fmt);
	vline(lg, level, fmt, ap);
	va_end(ap);
}

void srv_log_always(const srv_log *lg, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vline(lg, SRV_LOG_INFO, fmt, ap);
	va_end(ap);
}

void srv_log_warn_always(const srv_log *lg, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vline(lg, SRV_LOG_WARN, fmt, ap);
	va_end(ap);
}
