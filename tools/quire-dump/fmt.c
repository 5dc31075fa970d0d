/*
 * fmt.c - formatting values for people: ISO 8601 times, replica ids, byte
 * counts, and strings escaped so that a document id or a piece of text can
 * never break a table line or the terminal (control characters, invalid
 * UTF-8). Also the small growable string the other files build lines in.
 */
#define _POSIX_C_SOURCE 200809L

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dump.h"

/* ---- values ---------------------------------------------------------------- */

const char *dump_fmt_time(dump_str *b, int64_t ms)
{
	if (ms <= 0) {
		snprintf(b->s, sizeof b->s, "-");
		return b->s;
	}
	time_t secs = (time_t)(ms / 1000);
	struct tm tm;
	if (gmtime_r(&secs, &tm) == NULL) {
		snprintf(b->s, sizeof b->s, "%" PRId64 "ms", ms);
		return b->s;
	}
	snprintf(b->s, sizeof b->s, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
	return b->s;
}

const char *dump_fmt_replica(dump_str *b, crdt_replica r)
{
	snprintf(b->s, sizeof b->s, "%016" PRIx64, (uint64_t)r);
	return b->s;
}

const char *dump_fmt_bytes(dump_str *b, uint64_t n)
{
	static const char *const units[] = {"KiB", "MiB", "GiB", "TiB"};
	if (n < 1024) {
		snprintf(b->s, sizeof b->s, "%" PRIu64, n);
		return b->s;
	}
	double v = (double)n / 1024.0;
	size_t u = 0;
	while (v >= 1024.0 && u + 1 < sizeof units / sizeof units[0]) {
		v /= 1024.0;
		u++;
	}
	snprintf(b->s, sizeof b->s, "%" PRIu64 " (%.1f %s)", n, v, units[u]);
	return b->s;
}

/* ---- growable strings ---------------------------------------------------------- */

void dump_sb_free(dump_sb *b)
{
	free(b->s);
	memset(b, 0, sizeof *b);
}

void dump_sb_clear(dump_sb *b)
{
	b->len = 0;
	if (b->s)
		b->s[0] = '\0';
}

static bool sb_reserve(dump_sb *b, size_t more)
{
	if (b->oom)
		return false;
	if (b->len + more + 1 <= b->cap)
		return true;
	size_t cap = b->cap ? b->cap : 64;
	while (cap < b->len + more + 1)
		cap *= 2;
	char *s = realloc(b->s, cap);
	if (!s) {
		b->oom = true;
		return false;
	}
	b->s = s;
	b->cap = cap;
	return true;
}

void dump_sb_add(dump_sb *b, const char *s, size_t n)
{
	if (!sb_reserve(b, n))
		return;
	if (n)
		memcpy(b->s + b->len, s, n);
	b->len += n;
	b->s[b->len] = '\0';
}

void dump_sb_addf(dump_sb *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || !sb_reserve(b, (size_t)n))
		return;
	va_start(ap, fmt);
	vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

const char *dump_sb_str(dump_sb *b) { return b->s && !b->oom ? b->s : ""; }

/* ---- UTF-8 -------------------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at s[0..n), 0 if it is not one. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
	unsigned char c = s[0];
	if (c < 0x80)
		return 1;
	size_t len;
	uint32_t cp;
	if (c >= 0xc2 && c <= 0xdf) {
		len = 2;
		cp = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		cp = c & 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		cp = c & 0x07;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

bool dump_utf8_valid(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	for (size_t i = 0; i < n;) {
		size_t k = utf8_seq(p + i, n - i);
		if (k == 0)
			return false;
		i += k;
	}
	return true;
}

size_t dump_display_width(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t w = 0;
	for (size_t i = 0; i < n; w++) {
		size_t k = utf8_seq(p + i, n - i);
		i += k ? k : 1;
	}
	return w;
}

size_t dump_sb_escape(dump_sb *b, const char *s, size_t n, size_t max_cp, bool *cut)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t width = 0, cps = 0;
	if (cut)
		*cut = false;
	for (size_t i = 0; i < n; cps++) {
		if (max_cp && cps == max_cp) {
			dump_sb_add(b, "\xe2\x80\xa6", 3); /* … */
			if (cut)
				*cut = true;
			return width + 1;
		}
		size_t k = utf8_seq(p + i, n - i);
		unsigned char c = p[i];
		char esc[8];
		if (k == 0 || c < 0x20 || c == 0x7f || c == '\\') {
			const char *e = NULL;
			switch (c) {
			case '\n':
				e = "\\n";
				break;
			case '\t':
				e = "\\t";
				break;
			case '\r':
				e = "\\r";
				break;
			case '\\':
				e = "\\\\";
				break;
			default:
				snprintf(esc, sizeof esc, "\\x%02x", c);
				e = esc;
			}
			size_t el = strlen(e);
			dump_sb_add(b, e, el);
			width += el;
			i++;
			continue;
		}
		dump_sb_add(b, s + i, k);
		width++;
		i += k;
	}
	return width;
}
