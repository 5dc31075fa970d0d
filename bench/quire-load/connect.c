/*
 * connect.c - opening many sessions at a bounded pace (modes.h): a window
 * of at most `batch` handshakes in flight, so the server's accept queue and
 * the first Welcomes are not all due in the same millisecond, and the
 * connect rate measured is the server's, not a burst's.
 */
#include "modes.h"

#include <stdio.h>
#include <stdlib.h>

uint64_t ql_replica_id(uint64_t *rng)
{
	uint64_t r;
	do
		r = ql_rand(rng);
	while (r == 0);
	return r;
}

size_t ql_connect_all(ql_net *net, ql_client **cs, size_t n, size_t batch, int64_t deadline_ns,
		      ql_progress_fn fn, void *ctx, size_t *failed)
{
	if (batch == 0)
		batch = 1;
	size_t *fly = malloc(batch * sizeof *fly);
	size_t nfly = 0, next = 0, ok = 0, bad = 0;
	bool told = false;
	if (fly == NULL)
		return 0;
	while ((next < n || nfly > 0) && ql_now_ns() < deadline_ns) {
		while (nfly < batch && next < n) {
			ql_client *c = cs[next];
			if (ql_client_connect(c) != 0) {
				if (!told)
					fprintf(stderr, "quire-load: connect %zu failed: %s\n",
						next, c->ws.why);
				told = true;
				bad++;
				next++;
				continue;
			}
			fly[nfly++] = next++;
		}
		ql_net_poll(net, 5);
		size_t before = ok;
		for (size_t i = 0; i < nfly;) {
			ql_client *c = cs[fly[i]];
			if (c->welcomed || c->ws.state == QL_WS_CLOSED) {
				if (c->welcomed)
					ok++;
				else {
					if (!told)
						fprintf(stderr,
							"quire-load: connection %zu closed before "
							"its "
							"Welcome: %s\n",
							fly[i], c->ws.why);
					told = true;
					bad++;
				}
				fly[i] = fly[--nfly];
				continue;
			}
			i++;
		}
		if (fn && ok != before)
			fn(ctx, ok, ql_now_ns());
	}
	bad += nfly + (n - next); /* timed out */
	free(fly);
	if (failed)
		*failed = bad;
	return ok;
}
