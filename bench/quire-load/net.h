/*
 * net.h - the load generator's event loop and what all its connections
 * share: one epoll set, the server address, the loopback source addresses
 * connections are spread over (127.0.0.2, 127.0.0.3, ...: each has its own
 * ephemeral port range, so one process can hold more connections to one
 * server port than one address allows), a read scratch buffer, and one
 * reusable ServerMessage decoder and encode buffer (single-threaded).
 */
#ifndef QL_NET_H
#define QL_NET_H

#include <stdint.h>

#include "wire.h"
#include "ws.h"

typedef struct ql_net {
	int epfd;
	ql_ws_target target;
	int n_src; /* source addresses 127.0.0.2 .. 127.0.0.(1 + n_src); 0: kernel's choice */
	uint64_t next_conn; /* connections started (picks the source, seeds the mask PRNG) */
	uint64_t seed;
	uint8_t *scratch;
	size_t scratch_cap;
	wire_server_msg *dec;
	wire_limits lim; /* for decoding: big enough for a Welcome snapshot */
	wire_buf enc;
	void *evs;
	int max_evs;
} ql_net;

/* 0, or -1 (out of memory / epoll). */
int ql_net_init(ql_net *n, uint16_t port, int n_src, uint64_t seed);
void ql_net_free(ql_net *n);

/* Wait up to timeout_ms for events and dispatch them; returns the number
 * handled (or -1 on an epoll error other than EINTR). */
int ql_net_poll(ql_net *n, int timeout_ms);

/* Start connecting w, choosing the next source address. */
int ql_net_connect(ql_net *n, ql_ws *w, const ql_ws_handler *h);

/* CLOCK_MONOTONIC in ns: every latency is measured on this one clock. */
int64_t ql_now_ns(void);

/* A splitmix64 step: the generator's random numbers (not for security). */
uint64_t ql_rand(uint64_t *state);

#endif
