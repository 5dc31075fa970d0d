/*
 * json.c - a minimal streaming JSON writer for --json output.
 *
 * quire-dump's JSON is JSON Lines: every top-level value is one object on
 * one line (a row of `list`, `log` or `verify`, or the whole answer of
 * `show`, `stats` and `import`). Strings are escaped per RFC 8259; bytes
 * that are not valid UTF-8 (possible in document ids, which storage allows
 * to be any bytes but NUL) become U+FFFD, and dump_json_doc_id adds the
 * exact bytes in hex beside such an id so nothing is lost.
 */
#include <inttypes.h>
#include <string.h>

#include "dump.h"

void dump_json_init(dump_json *j, FILE *f)
{
	memset(j, 0, sizeof *j);
	j->f = f;
	j->first[0] = true;
}

static void put_raw_str(FILE *f, const char *s, size_t n, bool *lossless);

/* The comma before a value and its key, if any. */
static void prefix(dump_json *j, const char *key)
{
	if (j->depth > 0) {
		if (!j->first[j->depth])
			fputc(',', j->f);
		j->first[j->depth] = false;
	}
	if (key) {
		put_raw_str(j->f, key, strlen(key), NULL);
		fputc(':', j->f);
	}
}

static void open_(dump_json *j, const char *key, char c)
{
	prefix(j, key);
	fputc(c, j->f);
	if (j->depth + 1 < DUMP_JSON_DEPTH)
		j->depth++;
	j->first[j->depth] = true;
}

void dump_json_obj(dump_json *j, const char *key) { open_(j, key, '{'); }

void dump_json_obj_end(dump_json *j)
{
	fputc('}', j->f);
	if (j->depth > 0)
		j->depth--;
}

void dump_json_arr(dump_json *j, const char *key) { open_(j, key, '['); }

void dump_json_arr_end(dump_json *j)
{
	fputc(']', j->f);
	if (j->depth > 0)
		j->depth--;
}

/* Length of the valid UTF-8 sequence at p (n bytes left), 0 if invalid. */
static size_t seq_len(const unsigned char *p, size_t n)
{
	size_t k;
	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		k = 2;
	else if (p[0] >= 0xe0 && p[0] <= 0xef)
		k = 3;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		k = 4;
	else
		return 0;
	return k <= n && dump_utf8_valid((const char *)p, k) ? k : 0;
}

static void put_raw_str(FILE *f, const char *s, size_t n, bool *lossless)
{
	const unsigned char *p = (const unsigned char *)s;
	fputc('"', f);
	size_t run = 0; /* bytes [i - run, i) to copy as they are */
	for (size_t i = 0; i < n;) {
		unsigned char c = p[i];
		const char *esc = NULL;
		char u[8];
		size_t k = 1;
		if (c == '"')
			esc = "\\\"";
		else if (c == '\\')
			esc = "\\\\";
		else if (c == '\n')
			esc = "\\n";
		else if (c == '\t')
			esc = "\\t";
		else if (c == '\r')
			esc = "\\r";
		else if (c == '\b')
			esc = "\\b";
		else if (c == '\f')
			esc = "\\f";
		else if (c < 0x20 || c == 0x7f) {
			snprintf(u, sizeof u, "\\u%04x", c);
			esc = u;
		} else if (c >= 0x80) {
			k = seq_len(p + i, n - i);
			if (k == 0) {
				esc = "\\ufffd";
				k = 1;
				if (lossless)
					*lossless = false;
			} else if (k == 3 && c == 0xe2 && p[i + 1] == 0x80 &&
				   (p[i + 2] == 0xa8 || p[i + 2] == 0xa9)) {
				esc = p[i + 2] == 0xa8 ? "\\u2028" : "\\u2029";
			}
		}
		if (esc) {
			if (run)
				fwrite(p + i - run, 1, run, f);
			run = 0;
			fputs(esc, f);
		} else {
			run += k;
		}
		i += k;
	}
	if (run)
		fwrite(p + n - run, 1, run, f);
	fputc('"', f);
}

bool dump_json_str(dump_json *j, const char *key, const char *s, size_t n)
{
	bool lossless = true;
	prefix(j, key);
	put_raw_str(j->f, s ? s : "", s ? n : 0, &lossless);
	return lossless;
}

void dump_json_cstr(dump_json *j, const char *key, const char *s)
{
	if (!s)
		dump_json_null(j, key);
	else
		dump_json_str(j, key, s, strlen(s));
}

void dump_json_u64(dump_json *j, const char *key, uint64_t v)
{
	prefix(j, key);
	fprintf(j->f, "%" PRIu64, v);
}

void dump_json_i64(dump_json *j, const char *key, int64_t v)
{
	prefix(j, key);
	fprintf(j->f, "%" PRId64, v);
}

void dump_json_bool(dump_json *j, const char *key, bool v)
{
	prefix(j, key);
	fputs(v ? "true" : "false", j->f);
}

void dump_json_null(dump_json *j, const char *key)
{
	prefix(j, key);
	fputs("null", j->f);
}

void dump_json_doc_id(dump_json *j, const char *doc_id)
{
	size_t n = strlen(doc_id);
	if (dump_json_str(j, "doc", doc_id, n))
		return;
	prefix(j, "doc_hex");
	fputc('"', j->f);
	for (size_t i = 0; i < n; i++)
		fprintf(j->f, "%02x", (unsigned char)doc_id[i]);
	fputc('"', j->f);
}

void dump_json_eol(dump_json *j)
{
	fputc('\n', j->f);
	j->depth = 0;
	j->first[0] = true;
}
