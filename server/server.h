/*
 * server.h - quire-server's lifecycle, what main() uses: create the server
 * (open the database, create the lws context, listen), run its one event
 * loop until asked to stop, shut down gracefully, free everything.
 */
#ifndef QUIRE_SRV_SERVER_H
#define QUIRE_SRV_SERVER_H

#include <signal.h>
#include <stddef.h>

#include "config.h"

typedef struct srv srv;

/*
 * Create the server for `cfg` (copied): create the database's folder if
 * missing, open the database, create the lws context with the protocols
 * and mounts, and listen. On failure returns NULL with a one-line reason
 * in err.
 */
srv *srv_new(const srv_config *cfg, char *err, size_t errlen);

/* The TCP port listened on (useful with --listen HOST:0). */
int srv_port(const srv *s);

/*
 * Serve until *stop becomes non-zero (a signal handler sets it; a 200 ms
 * housekeeping timer makes sure it is seen), then shut down gracefully:
 * refuse new WebSocket connections and joins, commit what is pending,
 * snapshot the loaded documents, close every client with 1001 after its
 * queue drained (3 s at most), and return. Returns 0, or 1 if the event
 * loop failed.
 */
int srv_run(srv *s, volatile sig_atomic_t *stop);

/* Destroy the lws context (closing what is left), free the documents and
 * close the database. NULL is a no-op. */
void srv_free(srv *s);

#endif /* QUIRE_SRV_SERVER_H */
