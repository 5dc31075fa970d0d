/*
 * utf8.c - strict UTF-8 validation and code point <-> byte offsets. Text
 * from the network is validated once at the edge (insert/apply); inside the
 * engine it is trusted to be valid.
 */
#include <string.h>

#include "internal.h"

long crdt_utf8_count(const char *str, size_t nbytes)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0;
	long count = 0;
	while (i < nbytes) {
		/* runs of ASCII a word at a time */
		uint64_t w;
		while (i + 8 <= nbytes && (memcpy(&w, s + i, 8), !(w & 0x8080808080808080ull))) {
			i += 8;
			count += 8;
		}
		if (i == nbytes)
			break;
		unsigned char c = s[i];
		if (c < 0x80) {
			i++;
		} else if (c >= 0xC2 && c <= 0xDF) {
			if (i + 1 >= nbytes || (s[i + 1] & 0xC0) != 0x80)
				return -1;
			i += 2;
		} else if (c >= 0xE0 && c <= 0xEF) {
			if (i + 2 >= nbytes || (s[i + 1] & 0xC0) != 0x80 ||
			    (s[i + 2] & 0xC0) != 0x80)
				return -1;
			if (c == 0xE0 && s[i + 1] < 0xA0)
				return -1; /* overlong */
			if (c == 0xED && s[i + 1] >= 0xA0)
				return -1; /* surrogate */
			i += 3;
		} else if (c >= 0xF0 && c <= 0xF4) {
			if (i + 3 >= nbytes || (s[i + 1] & 0xC0) != 0x80 ||
			    (s[i + 2] & 0xC0) != 0x80 || (s[i + 3] & 0xC0) != 0x80)
				return -1;
			if (c == 0xF0 && s[i + 1] < 0x90)
				return -1; /* overlong */
			if (c == 0xF4 && s[i + 1] >= 0x90)
				return -1; /* > U+10FFFF */
			i += 4;
		} else {
			return -1;
		}
		count++;
	}
	return count;
}

size_t utf8_offset(const char *str, size_t nbytes, size_t cp)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0;
	while (cp > 0 && i < nbytes) {
		i++;
		while (i < nbytes && (s[i] & 0xC0) == 0x80)
			i++;
		cp--;
	}
	return i;
}
