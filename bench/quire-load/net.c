/*
 * net.c - the epoll loop and the shared connection context (net.h).
 */
#define _GNU_SOURCE
#include "net.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

int64_t ql_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

uint64_t ql_rand(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

int ql_net_init(ql_net *n, uint16_t port, int n_src, uint64_t seed)
{
	memset(n, 0, sizeof *n);
	n->epfd = epoll_create1(EPOLL_CLOEXEC);
	n->target = (ql_ws_target){
		.dst_ip = 0x7f000001, .port = port, .path = "/sync", .protocol = "quire.v1"};
	n->n_src = n_src;
	n->seed = seed;
	n->scratch_cap = 256 * 1024;
	n->scratch = malloc(n->scratch_cap);
	n->max_evs = 1024;
	n->evs = calloc((size_t)n->max_evs, sizeof(struct epoll_event));
	n->dec = wire_server_msg_new(NULL);
	n->lim = wire_default_limits;
	n->lim.max_message_bytes = 32u << 20;
	if (n->epfd < 0 || n->scratch == NULL || n->evs == NULL || n->dec == NULL) {
		ql_net_free(n);
		return -1;
	}
	return 0;
}

void ql_net_free(ql_net *n)
{
	if (n->epfd >= 0)
		close(n->epfd);
	n->epfd = -1;
	free(n->scratch);
	free(n->evs);
	if (n->dec)
		wire_server_msg_free(n->dec);
	wire_buf_free(&n->enc);
	n->scratch = NULL;
	n->evs = NULL;
	n->dec = NULL;
}

int ql_net_connect(ql_net *n, ql_ws *w, const ql_ws_handler *h)
{
	uint64_t k = n->next_conn++;
	uint32_t src = n->n_src > 0 ? 0x7f000002u + (uint32_t)(k % (uint64_t)n->n_src) : 0;
	uint64_t s = n->seed ^ (k * 0x9e3779b97f4a7c15ull);
	return ql_ws_connect(w, n->epfd, h, src, &n->target, ql_rand(&s));
}

int ql_net_poll(ql_net *n, int timeout_ms)
{
	struct epoll_event *evs = n->evs;
	int k = epoll_wait(n->epfd, evs, n->max_evs, timeout_ms);
	if (k < 0)
		return errno == EINTR ? 0 : -1;
	for (int i = 0; i < k; i++)
		ql_ws_event(evs[i].data.ptr, evs[i].events, n->scratch, n->scratch_cap);
	return k;
}
