/*
 * qinflate.c - see qinflate.h.
 */
#include "qinflate.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ws_client.inflate: append the empty stored block's tail the sender
 * dropped and inflate with the connection's stream, replacing msg. */
static int inflate_msg(ws_client *c)
{
	z_stream *z = c->inflate_ctx;
	size_t in_len = c->msg_len + 4, cap = 4 * in_len + 1024, len = 0;
	uint8_t *in = malloc(in_len), *out = malloc(cap);
	if (in == NULL || out == NULL) {
		free(in);
		free(out);
		return -1;
	}
	memcpy(in, c->msg, c->msg_len);
	memcpy(in + c->msg_len, "\x00\x00\xff\xff", 4);
	z->next_in = in;
	z->avail_in = (uInt)in_len;
	int rc;
	do {
		if (len == cap) {
			uint8_t *p = realloc(out, cap *= 2);
			if (p == NULL) {
				rc = Z_MEM_ERROR;
				break;
			}
			out = p;
		}
		z->next_out = out + len;
		z->avail_out = (uInt)(cap - len);
		rc = inflate(z, Z_SYNC_FLUSH);
		len = cap - z->avail_out;
	} while (rc == Z_OK && (z->avail_in > 0 || z->avail_out == 0));
	free(in);
	if (rc != Z_OK && rc != Z_BUF_ERROR) {
		free(out);
		return -1;
	}
	free(c->msg);
	c->msg = out;
	c->msg_cap = cap;
	c->msg_len = len;
	return 0;
}

int qinflate_attach(ws_client *ws, z_stream *z)
{
	memset(z, 0, sizeof *z);
	if (inflateInit2(z, -15) != Z_OK)
		return -1;
	ws->inflate = inflate_msg;
	ws->inflate_ctx = z;
	return 0;
}
