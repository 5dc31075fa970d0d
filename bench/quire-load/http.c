/*
 * http.c - the blocking HTTP GET of a document's text (http.h). The server
 * sends Content-Length; with "Connection: close" the body also ends at EOF.
 */
#define _GNU_SOURCE
#include "http.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net.h"

int ql_http_doc(uint16_t port, const char *doc_id, int timeout_ms, int *status, uint64_t *seq,
		char **text, size_t *len)
{
	*status = 0;
	*seq = 0;
	*text = NULL;
	*len = 0;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_port = htons(port),
				.sin_addr.s_addr = htonl(0x7f000001)};
	if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
		close(fd);
		return -1;
	}
	char req[512];
	int n = snprintf(req, sizeof req,
			 "GET /v1/docs/%s?format=text HTTP/1.1\r\nHost: 127.0.0.1:%u\r\n"
			 "Connection: close\r\n\r\n",
			 doc_id, port);
	if (send(fd, req, (size_t)n, MSG_NOSIGNAL) != n) {
		close(fd);
		return -1;
	}
	size_t cap = 65536, got = 0;
	char *buf = malloc(cap + 1);
	int64_t deadline = ql_now_ns() + (int64_t)timeout_ms * 1000000;
	int rc = -1;
	while (buf != NULL) {
		int64_t left = (deadline - ql_now_ns()) / 1000000;
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (left <= 0 || poll(&p, 1, (int)left) <= 0)
			break;
		if (got == cap) {
			char *nb = realloc(buf, cap * 2 + 1);
			if (nb == NULL)
				break;
			buf = nb;
			cap *= 2;
		}
		ssize_t r = recv(fd, buf + got, cap - got, 0);
		if (r < 0)
			break;
		if (r == 0) {
			rc = 0;
			break;
		}
		got += (size_t)r;
		buf[got] = '\0';
		char *end = strstr(buf, "\r\n\r\n");
		const char *cl = end ? strcasestr(buf, "\r\ncontent-length:") : NULL;
		if (cl && cl < end &&
		    got - (size_t)(end + 4 - buf) >= strtoull(cl + 17, NULL, 10)) {
			rc = 0;
			break;
		}
	}
	close(fd);
	if (rc != 0 || buf == NULL) {
		free(buf);
		return -1;
	}
	buf[got] = '\0';
	char *end = strstr(buf, "\r\n\r\n");
	if (end == NULL || sscanf(buf, "HTTP/1.%*d %d", status) != 1) {
		free(buf);
		return -1;
	}
	const char *sh = strcasestr(buf, "\r\nx-quire-seq:");
	if (sh && sh < end)
		*seq = strtoull(sh + 14, NULL, 10);
	size_t body = (size_t)(end + 4 - buf);
	size_t blen = got - body;
	const char *cl = strcasestr(buf, "\r\ncontent-length:");
	if (cl && cl < end) {
		size_t want = strtoull(cl + 17, NULL, 10);
		if (want < blen)
			blen = want;
	}
	memmove(buf, buf + body, blen);
	buf[blen] = '\0';
	*text = buf;
	*len = blen;
	return 0;
}
