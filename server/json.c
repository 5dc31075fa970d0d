/*
 * json.c - JSON string escaping (json.h): one length pass and one write
 * pass over the same per-byte rule, so a multi-megabyte text is escaped
 * into a buffer of exactly the right size without growing it.
 */
#include "json.h"

#include <stdlib.h>
#include <string.h>

/* Bytes the escape of the byte at s[i] takes (0: part of a longer escape
 * already counted; only for U+2028/2029's trailing bytes). */
static size_t esc_len(const unsigned char *s, size_t n, size_t i)
{
	unsigned char c = s[i];
	if (c == '"' || c == '\\' || c == '\b' || c == '\f' || c == '\n' || c == '\r' || c == '\t')
		return 2;
	if (c < 0x20 || c == 0x7f)
		return 6;
	if (c == 0xe2 && i + 2 < n && s[i + 1] == 0x80 && (s[i + 2] == 0xa8 || s[i + 2] == 0xa9))
		return 6; /* U+2028 / U+2029: 3 bytes become \u2028 */
	return 1;
}

size_t srv_json_str_len(const char *str, size_t n)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t len = 2;
	for (size_t i = 0; i < n; i++) {
		size_t e = esc_len(s, n, i);
		len += e;
		if (e == 6 && s[i] == 0xe2)
			i += 2;
	}
	return len;
}

char *srv_json_str_put(char *dst, const char *str, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *s = (const unsigned char *)str;
	*dst++ = '"';
	size_t run = 0; /* bytes copied as they are, pending */
	for (size_t i = 0; i < n; i++) {
		size_t e = esc_len(s, n, i);
		if (e == 1) {
			run++;
			continue;
		}
		memcpy(dst, s + i - run, run);
		dst += run;
		run = 0;
		unsigned char c = s[i];
		*dst++ = '\\';
		switch (c) {
		case '"':
		case '\\':
			*dst++ = (char)c;
			break;
		case '\b':
			*dst++ = 'b';
			break;
		case '\f':
			*dst++ = 'f';
			break;
		case '\n':
			*dst++ = 'n';
			break;
		case '\r':
			*dst++ = 'r';
			break;
		case '\t':
			*dst++ = 't';
			break;
		case 0xe2: /* U+2028 / U+2029 */
			memcpy(dst, s[i + 2] == 0xa8 ? "u2028" : "u2029", 5);
			dst += 5;
			i += 2;
			break;
		default:
			*dst++ = 'u';
			*dst++ = '0';
			*dst++ = '0';
			*dst++ = hex[c >> 4];
			*dst++ = hex[c & 15];
			break;
		}
	}
	memcpy(dst, s + n - run, run);
	dst += run;
	*dst++ = '"';
	return dst;
}

void srv_json_str(srv_buf *b, const char *s, size_t n)
{
	size_t len = srv_json_str_len(s, n);
	char stack[256];
	char *tmp = len <= sizeof stack ? stack : malloc(len);
	if (tmp == NULL) {
		b->failed = true;
		return;
	}
	srv_json_str_put(tmp, s, n);
	srv_buf_append(b, tmp, len);
	if (tmp != stack)
		free(tmp);
}
