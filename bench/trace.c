/*
 * trace.c - reads editing traces: gunzip with zlib, then a small strict JSON
 * parser that knows the trace shape and fills flat arrays.
 *
 * The parser is a recursive-descent reader over the decompressed bytes. It
 * descends only into the keys it knows (startContent, endContent, kind,
 * numAgents, txns and, per txn, patches, parents, agent) and skips any other
 * value after validating it, so new fields in future traces are harmless but
 * broken JSON never is. Strings are decoded straight into one arena whose
 * capacity is the JSON length: a decoded string is never longer than its
 * quoted source (an escape only shrinks, raw bytes copy one to one, and the
 * two quotes pay for the NUL we append to start/end), so the hot loop needs
 * no bounds checks on output and the arena never moves while parsing.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L /* fileno, fstat */
#endif
#include "trace.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <zlib.h>

/* Decompressed JSON larger than this is refused: offsets into the arena are
 * 32-bit, and no real trace comes close. */
#define TRACE_MAX_JSON ((size_t)1 << 31)
/* Nesting depth allowed inside skipped (unknown) values. */
#define TRACE_MAX_DEPTH 256

/* ---- errors ----------------------------------------------------------- */

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
	if (err == NULL || errlen == 0)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* ---- gunzip ----------------------------------------------------------- */

/* Read the whole file into memory. */
static int read_file(const char *path, unsigned char **data, size_t *len, char *err, size_t errlen)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL) {
		set_err(err, errlen, "%s: cannot open: %s", path, strerror(errno));
		return -1;
	}
	struct stat st;
	if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
		set_err(err, errlen, "%s: not a regular file", path);
		fclose(f);
		return -1;
	}
	size_t size = (size_t)st.st_size;
	unsigned char *buf = malloc(size ? size : 1);
	if (buf == NULL) {
		set_err(err, errlen, "%s: out of memory reading %zu bytes", path, size);
		fclose(f);
		return -1;
	}
	size_t got = fread(buf, 1, size, f);
	int ioerr = ferror(f);
	fclose(f);
	if (got != size || ioerr) {
		set_err(err, errlen, "%s: read error", path);
		free(buf);
		return -1;
	}
	*data = buf;
	*len = size;
	return 0;
}

/*
 * Inflate a gzip file image (one or more members) into a malloc'd buffer.
 * The last member's ISIZE trailer gives the uncompressed size modulo 2^32,
 * which we use as the first guess so that a single-member file is inflated
 * without any reallocation.
 */
static int gunzip(const char *path, const unsigned char *in, size_t in_len, char **out,
		  size_t *out_len, char *err, size_t errlen)
{
	if (in_len < 18 || in[0] != 0x1f || in[1] != 0x8b) {
		set_err(err, errlen, "%s: not a gzip file%s", path, in_len == 0 ? " (empty)" : "");
		return -1;
	}
	size_t cap = (size_t)in[in_len - 4] | (size_t)in[in_len - 3] << 8 |
		     (size_t)in[in_len - 2] << 16 | (size_t)in[in_len - 1] << 24;
	if (cap < in_len || cap / 1100 > in_len)
		cap = in_len * 4; /* not a plausible size (deflate peaks at 1032:1) */
	if (cap > TRACE_MAX_JSON)
		cap = TRACE_MAX_JSON;
	cap += 1;
	char *buf = malloc(cap);
	if (buf == NULL) {
		set_err(err, errlen, "%s: out of memory", path);
		return -1;
	}

	z_stream zs;
	memset(&zs, 0, sizeof zs);
	if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK) { /* 16: gzip only */
		set_err(err, errlen, "%s: zlib init failed", path);
		free(buf);
		return -1;
	}
	size_t used = 0, in_pos = 0;
	int rc = -1;
	for (;;) {
		if (used == cap) {
			if (cap > TRACE_MAX_JSON) {
				set_err(err, errlen, "%s: decompressed JSON larger than %zu bytes",
					path, TRACE_MAX_JSON);
				break;
			}
			size_t ncap = cap * 2 > TRACE_MAX_JSON + 1 ? TRACE_MAX_JSON + 1 : cap * 2;
			char *nbuf = realloc(buf, ncap);
			if (nbuf == NULL) {
				set_err(err, errlen, "%s: out of memory", path);
				break;
			}
			buf = nbuf;
			cap = ncap;
		}
		/* zlib counts in uInt: feed at most 1 GiB per call. */
		size_t in_left = in_len - in_pos, out_left = cap - used;
		zs.next_in = (unsigned char *)(uintptr_t)(in + in_pos);
		zs.avail_in = (uInt)(in_left < (1u << 30) ? in_left : (1u << 30));
		zs.next_out = (unsigned char *)buf + used;
		zs.avail_out = (uInt)(out_left < (1u << 30) ? out_left : (1u << 30));
		uInt ain = zs.avail_in, aout = zs.avail_out;
		int z = inflate(&zs, Z_NO_FLUSH);
		in_pos += ain - zs.avail_in;
		used += aout - zs.avail_out;
		if (z == Z_STREAM_END) {
			/* Another member may follow (as `cat a.gz b.gz` makes). */
			if (in_pos < in_len && in_len - in_pos >= 2 && in[in_pos] == 0x1f &&
			    in[in_pos + 1] == 0x8b) {
				inflateReset(&zs);
				continue;
			}
			if (in_pos != in_len) {
				set_err(err, errlen, "%s: trailing garbage after gzip data", path);
				break;
			}
			rc = 0;
			break;
		}
		if (z == Z_OK)
			continue;
		if (z == Z_BUF_ERROR && in_pos == in_len) {
			set_err(err, errlen, "%s: truncated gzip data", path);
			break;
		}
		if (z == Z_BUF_ERROR) /* no progress with room left: cannot happen */
			continue;
		if (z == Z_MEM_ERROR)
			set_err(err, errlen, "%s: out of memory in zlib", path);
		else
			set_err(err, errlen, "%s: damaged gzip data (%s)", path,
				zs.msg ? zs.msg : "inflate error");
		break;
	}
	inflateEnd(&zs);
	if (rc != 0) {
		free(buf);
		return -1;
	}
	*out = buf;
	*out_len = used;
	return 0;
}

/* ---- JSON parser state ------------------------------------------------- */

typedef struct jp {
	const unsigned char *begin, *p, *end;
	char *err;
	size_t errlen;

	/* Where we are, for error messages: e.g. txns[12].patches[0][1]. */
	const char *key;     /* top-level key being parsed, or NULL */
	long txn;	     /* index in txns, or -1 */
	const char *txn_key; /* key inside the txn, or NULL */
	long sub;	     /* index in that array, or -1 */
	long elem;	     /* index inside a patch, or -1 */

	trace *t;
	size_t patch_cap, txn_cap, parent_cap;
	bool have_agents_key;
} jp;

static int jp_fail(jp *j, bool syntax, const char *fmt, ...)
{
	if (j->err == NULL || j->errlen == 0)
		return -1;
	char where[160] = "";
	size_t n = 0;
	if (j->key != NULL)
		n += (size_t)snprintf(where + n, sizeof where - n, "%s", j->key);
	if (j->txn >= 0 && n < sizeof where)
		n += (size_t)snprintf(where + n, sizeof where - n, "[%ld]", j->txn);
	if (j->txn_key != NULL && n < sizeof where)
		n += (size_t)snprintf(where + n, sizeof where - n, ".%s", j->txn_key);
	if (j->sub >= 0 && n < sizeof where)
		n += (size_t)snprintf(where + n, sizeof where - n, "[%ld]", j->sub);
	if (j->elem >= 0 && n < sizeof where)
		snprintf(where + n, sizeof where - n, "[%ld]", j->elem);

	char msg[200];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);

	size_t line = 1;
	for (const unsigned char *q = j->begin; q < j->p; q++)
		line += *q == '\n';
	snprintf(j->err, j->errlen, "%s%s%s%s (byte %zu, line %zu)",
		 syntax ? "invalid JSON: " : "bad trace: ", where, where[0] ? ": " : "", msg,
		 (size_t)(j->p - j->begin), line);
	return -1;
}

/* The value at j->p is not what the trace format wants there: a shape
 * error if it is some JSON value, a syntax error if it is not even that. */
static int want(jp *j, const char *what)
{
	if (j->p >= j->end)
		return jp_fail(j, true, "unexpected end of input, expected %s", what);
	unsigned c = *j->p;
	if (c == '{' || c == '[' || c == '"' || c == '-' || c == 't' || c == 'f' || c == 'n' ||
	    (c >= '0' && c <= '9'))
		return jp_fail(j, false, "expected %s", what);
	return jp_fail(j, true, "unexpected character, expected %s", what);
}

static inline void skip_ws(jp *j)
{
	while (j->p < j->end && (*j->p == ' ' || *j->p == '\n' || *j->p == '\r' || *j->p == '\t'))
		j->p++;
}

/* Skip whitespace and consume character c. */
static int expect(jp *j, char c)
{
	skip_ws(j);
	if (j->p >= j->end)
		return jp_fail(j, true, "unexpected end of input, expected '%c'", c);
	if (*j->p != (unsigned char)c)
		return jp_fail(j, true, "expected '%c'", c);
	j->p++;
	return 0;
}

static inline bool is_digit(unsigned c)
{
	return c - '0' < 10u;
}

static inline int hexval(unsigned c)
{
	if (c - '0' < 10)
		return (int)(c - '0');
	c |= 0x20;
	if (c - 'a' < 6)
		return (int)(c - 'a' + 10);
	return -1;
}

/* Read the 4 hex digits after "\u". */
static int read_hex4(jp *j, const unsigned char *s, unsigned *out)
{
	if (j->end - s < 4) {
		j->p = s;
		return jp_fail(j, true, "truncated \\u escape");
	}
	unsigned v = 0;
	for (int i = 0; i < 4; i++) {
		int h = hexval(s[i]);
		if (h < 0) {
			j->p = s + i;
			return jp_fail(j, true, "bad hex digit in \\u escape");
		}
		v = v << 4 | (unsigned)h;
	}
	*out = v;
	return 0;
}

/* Length of the valid UTF-8 sequence at s (lead byte >= 0x80), or 0. */
static size_t utf8_seq(const unsigned char *s, const unsigned char *end)
{
	unsigned c = s[0];
	size_t n;
	unsigned lo = 0x80, hi = 0xbf; /* range of the second byte */
	if (c >= 0xc2 && c <= 0xdf)
		n = 2;
	else if (c >= 0xe0 && c <= 0xef) {
		n = 3;
		if (c == 0xe0)
			lo = 0xa0; /* no overlongs */
		if (c == 0xed)
			hi = 0x9f; /* no surrogates */
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4;
		if (c == 0xf0)
			lo = 0x90;
		if (c == 0xf4)
			hi = 0x8f; /* <= U+10FFFF */
	} else
		return 0;
	if ((size_t)(end - s) < n || s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < n; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	return n;
}

static inline char *put_utf8(char *o, unsigned cp)
{
	if (cp < 0x80) {
		*o++ = (char)cp;
	} else if (cp < 0x800) {
		*o++ = (char)(0xc0 | cp >> 6);
		*o++ = (char)(0x80 | (cp & 0x3f));
	} else if (cp < 0x10000) {
		*o++ = (char)(0xe0 | cp >> 12);
		*o++ = (char)(0x80 | (cp >> 6 & 0x3f));
		*o++ = (char)(0x80 | (cp & 0x3f));
	} else {
		*o++ = (char)(0xf0 | cp >> 18);
		*o++ = (char)(0x80 | (cp >> 12 & 0x3f));
		*o++ = (char)(0x80 | (cp >> 6 & 0x3f));
		*o++ = (char)(0x80 | (cp & 0x3f));
	}
	return o;
}

/*
 * Decode the string at j->p (after optional whitespace) into the arena at
 * t->text + t->text_bytes, which advances. Returns its offset, byte length
 * and code-point count.
 */
static int parse_string(jp *j, size_t *off, size_t *bytes, size_t *cps)
{
	skip_ws(j);
	if (j->p >= j->end || *j->p != '"')
		return want(j, "a string");
	const unsigned char *s = j->p + 1, *end = j->end;
	char *const o0 = j->t->text + j->t->text_bytes;
	char *o = o0;
	size_t n = 0;
	for (;;) {
		if (s >= end) {
			j->p = s;
			return jp_fail(j, true, "unterminated string");
		}
		unsigned c = *s;
		if (c == '"')
			break;
		if (c >= 0x20 && c < 0x80 && c != '\\') {
			*o++ = (char)c;
			s++;
		} else if (c >= 0x80) {
			size_t k = utf8_seq(s, end);
			if (k == 0) {
				j->p = s;
				return jp_fail(j, true, "invalid UTF-8 in string");
			}
			memcpy(o, s, k);
			o += k;
			s += k;
		} else if (c < 0x20) {
			j->p = s;
			return jp_fail(j, true, "control character in string");
		} else { /* backslash */
			if (end - s < 2) {
				j->p = s;
				return jp_fail(j, true, "unterminated string");
			}
			unsigned e = s[1];
			s += 2;
			switch (e) {
			case '"':
				*o++ = '"';
				break;
			case '\\':
				*o++ = '\\';
				break;
			case '/':
				*o++ = '/';
				break;
			case 'b':
				*o++ = '\b';
				break;
			case 'f':
				*o++ = '\f';
				break;
			case 'n':
				*o++ = '\n';
				break;
			case 'r':
				*o++ = '\r';
				break;
			case 't':
				*o++ = '\t';
				break;
			case 'u': {
				unsigned cp = 0;
				if (read_hex4(j, s, &cp) != 0)
					return -1;
				s += 4;
				if (cp >= 0xdc00 && cp <= 0xdfff) {
					j->p = s - 6;
					return jp_fail(j, true, "unpaired low surrogate \\u%04X",
						       cp);
				}
				if (cp >= 0xd800 && cp <= 0xdbff) {
					unsigned lo = 0;
					if (end - s < 2 || s[0] != '\\' || s[1] != 'u') {
						j->p = s - 6;
						return jp_fail(j, true,
							       "unpaired high surrogate \\u%04X",
							       cp);
					}
					if (read_hex4(j, s + 2, &lo) != 0)
						return -1;
					if (lo < 0xdc00 || lo > 0xdfff) {
						j->p = s - 6;
						return jp_fail(j, true,
							       "unpaired high surrogate \\u%04X",
							       cp);
					}
					s += 6;
					cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
				}
				o = put_utf8(o, cp);
				break;
			}
			default:
				j->p = s - 2;
				return jp_fail(j, true, "bad escape '\\%c'",
					       e >= 0x20 && e < 0x7f ? (char)e : '?');
			}
			n++;
			continue;
		}
		n++;
	}
	j->p = s + 1;
	*off = j->t->text_bytes;
	*bytes = (size_t)(o - o0);
	*cps = n;
	j->t->text_bytes += *bytes;
	return 0;
}

/* First byte at or after s that is not printable ASCII other than '"' and
 * '\\': where a string's plain run ends. */
static inline const unsigned char *plain_ascii(const unsigned char *s, const unsigned char *end)
{
	while (s < end && *s >= 0x20 && *s < 0x7f && *s != '"' && *s != '\\')
		s++;
	return s;
}

/* Validate and skip a JSON number. */
static int skip_number(jp *j)
{
	const unsigned char *s = j->p, *end = j->end;
	if (s < end && *s == '-')
		s++;
	if (s >= end || !is_digit(*s))
		return jp_fail(j, true, "bad number");
	if (*s == '0')
		s++;
	else
		while (s < end && is_digit(*s))
			s++;
	if (s < end && *s == '.') {
		s++;
		if (s >= end || !is_digit(*s)) {
			j->p = s;
			return jp_fail(j, true, "bad number: digit expected after '.'");
		}
		while (s < end && is_digit(*s))
			s++;
	}
	if (s < end && (*s == 'e' || *s == 'E')) {
		s++;
		if (s < end && (*s == '+' || *s == '-'))
			s++;
		if (s >= end || !is_digit(*s)) {
			j->p = s;
			return jp_fail(j, true, "bad number: digit expected in exponent");
		}
		while (s < end && is_digit(*s))
			s++;
	}
	j->p = s;
	return 0;
}

/* A non-negative integer no larger than max. */
static int parse_uint(jp *j, uint32_t max, uint32_t *out)
{
	skip_ws(j);
	const unsigned char *s = j->p, *end = j->end;
	if (s >= end || !is_digit(*s))
		return want(j, "a non-negative integer");
	uint64_t v = 0;
	if (*s == '0') {
		s++;
	} else {
		while (s < end && is_digit(*s)) {
			v = v * 10 + (unsigned)(*s - '0');
			if (v > max)
				return jp_fail(j, false, "integer larger than %lu",
					       (unsigned long)max);
			s++;
		}
	}
	if (s < end && (*s == '.' || *s == 'e' || *s == 'E' || is_digit(*s))) {
		if (skip_number(j) != 0)
			return -1;
		j->p = s;
		return jp_fail(j, false, "expected an integer");
	}
	j->p = s;
	*out = (uint32_t)v;
	return 0;
}

static int skip_value(jp *j, int depth);

static int skip_literal(jp *j, const char *lit)
{
	size_t n = strlen(lit);
	if ((size_t)(j->end - j->p) < n || memcmp(j->p, lit, n) != 0)
		return jp_fail(j, true, "unexpected character");
	j->p += n;
	return 0;
}

/*
 * Iterate over an object: call with *first = true right after '{' was
 * consumed. Returns 1 with the key in key[] (truncated to keycap-1 bytes,
 * *long_key set if it did not fit) and the ':' consumed, 0 at '}', -1 on
 * error.
 */
static int obj_next(jp *j, bool *first, char *key, size_t keycap, bool *long_key)
{
	skip_ws(j);
	if (j->p >= j->end)
		return jp_fail(j, true, "unexpected end of input in object");
	if (*j->p == '}') {
		j->p++;
		return 0;
	}
	if (!*first) {
		if (*j->p != ',')
			return jp_fail(j, true, "expected ',' or '}'");
		j->p++;
		skip_ws(j);
		if (j->p < j->end && *j->p == '}')
			return jp_fail(j, true, "trailing comma in object");
	}
	*first = false;
	if (j->p >= j->end || *j->p != '"')
		return jp_fail(j, true, "expected a string key");
	const char *kp;
	size_t bytes;
	const unsigned char *q = plain_ascii(j->p + 1, j->end);
	if (q < j->end && *q == '"') {
		/* Fast path: plain ASCII, the source bytes are the key. */
		kp = (const char *)j->p + 1;
		bytes = (size_t)(q - j->p - 1);
		j->p = q + 1;
	} else {
		/* Decode into the arena and roll it back: it is scratch. */
		size_t save = j->t->text_bytes, off, cps;
		if (parse_string(j, &off, &bytes, &cps) != 0)
			return -1;
		j->t->text_bytes = save;
		kp = j->t->text + off;
	}
	*long_key = bytes >= keycap;
	size_t k = *long_key ? keycap - 1 : bytes;
	memcpy(key, kp, k);
	key[k] = '\0';
	if (expect(j, ':') != 0)
		return -1;
	return 1;
}

/* Same for arrays: 1 when an element follows, 0 at ']'. */
static int arr_next(jp *j, bool *first)
{
	skip_ws(j);
	if (j->p >= j->end)
		return jp_fail(j, true, "unexpected end of input in array");
	if (*j->p == ']') {
		j->p++;
		return 0;
	}
	if (!*first) {
		if (*j->p != ',')
			return jp_fail(j, true, "expected ',' or ']'");
		j->p++;
		skip_ws(j);
		if (j->p < j->end && *j->p == ']')
			return jp_fail(j, true, "trailing comma in array");
	}
	*first = false;
	return 1;
}

static int skip_value(jp *j, int depth)
{
	skip_ws(j);
	if (j->p >= j->end)
		return jp_fail(j, true, "unexpected end of input, expected a value");
	if (depth > TRACE_MAX_DEPTH)
		return jp_fail(j, true, "nesting deeper than %d", TRACE_MAX_DEPTH);
	switch (*j->p) {
	case '{': {
		j->p++;
		bool first = true, long_key;
		char key[8];
		int r;
		while ((r = obj_next(j, &first, key, sizeof key, &long_key)) == 1)
			if (skip_value(j, depth + 1) != 0)
				return -1;
		return r;
	}
	case '[': {
		j->p++;
		bool first = true;
		int r;
		while ((r = arr_next(j, &first)) == 1)
			if (skip_value(j, depth + 1) != 0)
				return -1;
		return r;
	}
	case '"': {
		const unsigned char *q = plain_ascii(j->p + 1, j->end);
		if (q < j->end && *q == '"') {
			j->p = q + 1;
			return 0;
		}
		size_t save = j->t->text_bytes, off, bytes, cps;
		int r = parse_string(j, &off, &bytes, &cps);
		j->t->text_bytes = save;
		return r;
	}
	case 't':
		return skip_literal(j, "true");
	case 'f':
		return skip_literal(j, "false");
	case 'n':
		return skip_literal(j, "null");
	default:
		if (*j->p == '-' || is_digit(*j->p))
			return skip_number(j);
		return jp_fail(j, true, "unexpected character");
	}
}

/* Ensure room for one more element in a growable array. */
static int grow(jp *j, void **arr, size_t *cap, size_t n, size_t elem)
{
	if (n < *cap)
		return 0;
	if (n >= UINT32_MAX)
		return jp_fail(j, false, "more than 2^32 elements");
	size_t ncap = *cap ? *cap * 2 : 1024;
	void *na = realloc(*arr, ncap * elem);
	if (na == NULL)
		return jp_fail(j, false, "out of memory");
	*arr = na;
	*cap = ncap;
	return 0;
}

/* [pos, numDeleted, "inserted"] */
static int parse_patch(jp *j)
{
	trace *t = j->t;
	skip_ws(j);
	if (j->p >= j->end || *j->p != '[')
		return want(j, "a patch [pos, numDeleted, \"text\"]");
	j->p++;
	if (grow(j, (void **)&t->patches, &j->patch_cap, t->n_patches, sizeof *t->patches) != 0)
		return -1;
	trace_patch *pa = &t->patches[t->n_patches];
	bool first = true;
	int r;
	for (j->elem = 0; (r = arr_next(j, &first)) == 1; j->elem++) {
		if (j->elem == 0) {
			if (parse_uint(j, UINT32_MAX, &pa->pos) != 0)
				return -1;
		} else if (j->elem == 1) {
			if (parse_uint(j, UINT32_MAX, &pa->del) != 0)
				return -1;
		} else if (j->elem == 2) {
			size_t off, bytes, cps;
			if (parse_string(j, &off, &bytes, &cps) != 0)
				return -1;
			pa->ins_off = (uint32_t)off;
			pa->ins_bytes = (uint32_t)bytes;
			pa->ins_len = (uint32_t)cps;
		} else {
			return jp_fail(j, false,
				       "a patch has 3 elements [pos, numDeleted, \"text\"]");
		}
	}
	if (r < 0)
		return -1;
	if (j->elem != 3) {
		long n = j->elem;
		j->elem = -1;
		return jp_fail(j, false,
			       "a patch has 3 elements [pos, numDeleted, \"text\"], "
			       "this one has %ld",
			       n);
	}
	j->elem = -1;
	t->inserted_len += pa->ins_len;
	t->deleted_len += pa->del;
	t->n_patches++;
	return 0;
}

static int parse_txn(jp *j)
{
	trace *t = j->t;
	skip_ws(j);
	if (j->p >= j->end || *j->p != '{')
		return want(j, "a transaction object");
	j->p++;
	if (grow(j, (void **)&t->txns, &j->txn_cap, t->n_txns, sizeof *t->txns) != 0)
		return -1;
	trace_txn *tx = &t->txns[t->n_txns];
	memset(tx, 0, sizeof *tx);
	tx->first_patch = (uint32_t)t->n_patches;
	tx->first_parent = (uint32_t)t->n_parents;
	bool first = true, long_key, have_patches = false, have_parents = false, have_agent = false;
	char key[16];
	int r;
	while ((r = obj_next(j, &first, key, sizeof key, &long_key)) == 1) {
		if (!long_key && strcmp(key, "patches") == 0) {
			j->txn_key = "patches";
			if (have_patches)
				return jp_fail(j, false, "duplicate key");
			have_patches = true;
			skip_ws(j);
			if (j->p >= j->end || *j->p != '[')
				return want(j, "an array of patches");
			j->p++;
			bool f2 = true;
			for (j->sub = 0; (r = arr_next(j, &f2)) == 1; j->sub++)
				if (parse_patch(j) != 0)
					return -1;
			if (r < 0)
				return -1;
			j->sub = -1;
		} else if (!long_key && strcmp(key, "parents") == 0) {
			j->txn_key = "parents";
			if (have_parents)
				return jp_fail(j, false, "duplicate key");
			have_parents = true;
			skip_ws(j);
			if (j->p >= j->end || *j->p != '[')
				return want(j, "an array of txn indices");
			j->p++;
			bool f2 = true;
			for (j->sub = 0; (r = arr_next(j, &f2)) == 1; j->sub++) {
				if (grow(j, (void **)&t->parents, &j->parent_cap, t->n_parents,
					 sizeof *t->parents) != 0)
					return -1;
				if (parse_uint(j, UINT32_MAX - 1, &t->parents[t->n_parents]) != 0)
					return -1;
				t->n_parents++;
			}
			if (r < 0)
				return -1;
			j->sub = -1;
		} else if (!long_key && strcmp(key, "agent") == 0) {
			j->txn_key = "agent";
			if (have_agent)
				return jp_fail(j, false, "duplicate key");
			have_agent = true;
			uint32_t a;
			if (parse_uint(j, INT32_MAX - 1, &a) != 0)
				return -1;
			tx->agent = (int32_t)a;
		} else {
			j->txn_key = NULL;
			if (skip_value(j, 1) != 0)
				return -1;
		}
		j->txn_key = NULL;
	}
	if (r < 0)
		return -1;
	if (!have_patches)
		return jp_fail(j, false, "transaction without \"patches\"");
	tx->n_patches = (uint32_t)(t->n_patches - tx->first_patch);
	tx->n_parents = (uint32_t)(t->n_parents - tx->first_parent);
	t->n_txns++;
	return 0;
}

static int parse_text_field(jp *j, size_t *off, size_t *bytes, size_t *cps)
{
	if (parse_string(j, off, bytes, cps) != 0)
		return -1;
	/* A NUL after start/end so callers may print them; the closing quote
	 * of the source string paid for this byte. */
	j->t->text[j->t->text_bytes++] = '\0';
	return 0;
}

static int parse_top(jp *j)
{
	trace *t = j->t;
	if (expect(j, '{') != 0)
		return -1;
	bool first = true, long_key;
	bool have_start = false, have_end = false, have_kind = false, have_txns = false;
	size_t start_off = 0, end_off = 0;
	uint32_t num_agents = 0;
	char key[16];
	int r;
	while ((r = obj_next(j, &first, key, sizeof key, &long_key)) == 1) {
		const char *k = long_key ? "" : key;
		if (strcmp(k, "startContent") == 0) {
			j->key = "startContent";
			if (have_start)
				return jp_fail(j, false, "duplicate key");
			have_start = true;
			if (parse_text_field(j, &start_off, &t->start_bytes, &t->start_len) != 0)
				return -1;
		} else if (strcmp(k, "endContent") == 0) {
			j->key = "endContent";
			if (have_end)
				return jp_fail(j, false, "duplicate key");
			have_end = true;
			if (parse_text_field(j, &end_off, &t->end_bytes, &t->end_len) != 0)
				return -1;
		} else if (strcmp(k, "kind") == 0) {
			j->key = "kind";
			if (have_kind)
				return jp_fail(j, false, "duplicate key");
			have_kind = true;
			size_t save = t->text_bytes, off, bytes, cps;
			if (parse_string(j, &off, &bytes, &cps) != 0)
				return -1;
			t->text_bytes = save;
			const char *v = t->text + off;
			if (bytes == 10 && memcmp(v, "concurrent", 10) == 0)
				t->concurrent = true;
			else if (bytes == 10 && memcmp(v, "sequential", 10) == 0)
				t->concurrent = false;
			else
				return jp_fail(j, false,
					       "unknown kind (expected \"concurrent\" "
					       "or \"sequential\")");
		} else if (strcmp(k, "numAgents") == 0) {
			j->key = "numAgents";
			if (j->have_agents_key)
				return jp_fail(j, false, "duplicate key");
			j->have_agents_key = true;
			if (parse_uint(j, INT32_MAX, &num_agents) != 0)
				return -1;
		} else if (strcmp(k, "txns") == 0) {
			j->key = "txns";
			if (have_txns)
				return jp_fail(j, false, "duplicate key");
			have_txns = true;
			skip_ws(j);
			if (j->p >= j->end || *j->p != '[')
				return want(j, "an array of transactions");
			j->p++;
			bool f2 = true;
			for (j->txn = 0; (r = arr_next(j, &f2)) == 1; j->txn++)
				if (parse_txn(j) != 0)
					return -1;
			if (r < 0)
				return -1;
			j->txn = -1;
		} else {
			j->key = NULL;
			if (skip_value(j, 1) != 0)
				return -1;
		}
		j->key = NULL;
	}
	if (r < 0)
		return -1;
	skip_ws(j);
	if (j->p != j->end)
		return jp_fail(j, true, "trailing data after the JSON value");
	if (!have_end)
		return jp_fail(j, false, "missing key \"endContent\"");
	if (!have_txns)
		return jp_fail(j, false, "missing key \"txns\"");
	if (!have_start) {
		start_off = t->text_bytes;
		t->text[t->text_bytes++] = '\0';
	}
	t->start = t->text + start_off;
	t->end = t->text + end_off;
	t->num_agents = num_agents;
	return 0;
}

/* Checks that need the whole file: parents point backwards, agents fit. */
static int check_graph(jp *j)
{
	trace *t = j->t;
	uint32_t max_agent = 0;
	for (size_t i = 0; i < t->n_txns; i++)
		if ((uint32_t)t->txns[i].agent > max_agent)
			max_agent = (uint32_t)t->txns[i].agent;
	if (!j->have_agents_key || t->num_agents == 0) {
		if (t->n_txns && j->have_agents_key && t->num_agents == 0) {
			j->key = "numAgents";
			return jp_fail(j, false, "0 agents but %zu transactions", t->n_txns);
		}
		t->num_agents = t->n_txns ? max_agent + 1 : 1;
	} else if (t->n_txns && max_agent >= t->num_agents) {
		j->key = "numAgents";
		return jp_fail(j, false, "a transaction has agent %lu but numAgents is %lu",
			       (unsigned long)max_agent, (unsigned long)t->num_agents);
	}
	if (!t->concurrent)
		return 0;
	j->key = "txns";
	for (size_t i = 0; i < t->n_txns; i++) {
		const trace_txn *tx = &t->txns[i];
		for (uint32_t k = 0; k < tx->n_parents; k++)
			if (t->parents[tx->first_parent + k] >= i) {
				j->txn = (long)i;
				j->txn_key = "parents";
				j->sub = (long)k;
				return jp_fail(j, false, "parent %lu is not an earlier transaction",
					       (unsigned long)t->parents[tx->first_parent + k]);
			}
	}
	j->key = NULL;
	return 0;
}

static size_t count_byte(const char *s, size_t len, char c)
{
	size_t n = 0;
	for (const char *e = s + len; (s = memchr(s, c, (size_t)(e - s))) != NULL; s++)
		n++;
	return n;
}

/* Best effort: on failure the arrays simply grow while parsing. */
static void reserve(jp *j, void **arr, size_t *cap, size_t n, size_t elem)
{
	(void)j;
	if (n == 0 || n > SIZE_MAX / elem)
		return;
	void *a = malloc(n * elem);
	if (a != NULL) {
		*arr = a;
		*cap = n;
	}
}

static void shrink(void **arr, size_t n, size_t elem)
{
	if (*arr == NULL || n == 0)
		return;
	void *a = realloc(*arr, n * elem);
	if (a != NULL)
		*arr = a;
}

int trace_parse(const char *json, size_t len, trace *out, char *err, size_t errlen)
{
	memset(out, 0, sizeof *out);
	if (len >= TRACE_MAX_JSON) {
		set_err(err, errlen, "JSON larger than %zu bytes", TRACE_MAX_JSON);
		return -1;
	}
	/* +2: room for the NUL of an absent startContent in an empty string. */
	out->text = malloc(len + 2);
	if (out->text == NULL) {
		set_err(err, errlen, "out of memory");
		return -1;
	}
	jp j = {
		.begin = (const unsigned char *)json,
		.p = (const unsigned char *)json,
		.end = (const unsigned char *)json + len,
		.err = err,
		.errlen = errlen,
		.txn = -1,
		.sub = -1,
		.elem = -1,
		.t = out,
	};
	/* Every patch is an array and every txn an object, so counting the
	 * brackets bounds both arrays: reserving that much up front costs only
	 * address space (pages are touched as they fill, and the arrays are
	 * shrunk below) and saves the copies of growing by doubling. */
	size_t n_open_sq = count_byte(json, len, '['), n_open_br = count_byte(json, len, '{');
	reserve(&j, (void **)&out->patches, &j.patch_cap, n_open_sq, sizeof *out->patches);
	reserve(&j, (void **)&out->txns, &j.txn_cap, n_open_br, sizeof *out->txns);
	if (parse_top(&j) != 0 || check_graph(&j) != 0) {
		trace_free(out);
		return -1;
	}
	shrink((void **)&out->patches, out->n_patches, sizeof *out->patches);
	shrink((void **)&out->txns, out->n_txns, sizeof *out->txns);
	shrink((void **)&out->parents, out->n_parents, sizeof *out->parents);
	/* Give back what the arena reserved beyond the strings. */
	ptrdiff_t start_off = out->start - out->text, end_off = out->end - out->text;
	char *shrunk = realloc(out->text, out->text_bytes ? out->text_bytes : 1);
	if (shrunk != NULL) {
		out->text = shrunk;
		out->start = shrunk + start_off;
		out->end = shrunk + end_off;
	}
	return 0;
}

int trace_load(const char *path, trace *out, char *err, size_t errlen)
{
	memset(out, 0, sizeof *out);
	unsigned char *gz;
	size_t gz_len;
	if (read_file(path, &gz, &gz_len, err, errlen) != 0)
		return -1;
	char *json;
	size_t json_len;
	int r = gunzip(path, gz, gz_len, &json, &json_len, err, errlen);
	free(gz);
	if (r != 0)
		return -1;
	char perr[384];
	r = trace_parse(json, json_len, out, perr, sizeof perr);
	free(json);
	if (r != 0) {
		set_err(err, errlen, "%s: %s", path, perr);
		return -1;
	}
	return 0;
}

void trace_free(trace *t)
{
	if (t == NULL)
		return;
	free(t->text);
	free(t->patches);
	free(t->txns);
	free(t->parents);
	memset(t, 0, sizeof *t);
}
