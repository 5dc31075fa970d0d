/*
 * main.c - the quire-server program: read the settings (flags over QUIRE_*
 * environment variables over defaults), install the SIGTERM/SIGINT handler
 * that asks the server to stop, raise the soft descriptor limit to the hard
 * one (a connection is a descriptor), pre-touch the heap (heap.h), run the
 * server, exit 0 after a graceful shutdown. The stop flag is the only mutable global of the program.
 */
#define _POSIX_C_SOURCE 200809L

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

#include "auth.h"
#include "config.h"
#include "heap.h"
#include "server.h"

extern char **environ;

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

int main(int argc, char **argv)
{
	srv_config cfg;
	char err[512] = "";
	if (argc > 1 && strcmp(argv[1], "token") == 0) /* quire-server token ... (auth.h) */
		return srv_auth_token_main(argc - 1, argv + 1, environ);
	int rc = srv_config_load(&cfg, argc, argv, environ, err, sizeof err);
	if (rc == SRV_CONFIG_HELP) {
		srv_config_usage(stdout, "quire-server");
		return 0;
	}
	if (rc == SRV_CONFIG_VERSION) {
		printf("quire-server %s (protocol quire.v1)\n", QUIRE_VERSION);
		return 0;
	}
	if (rc != SRV_CONFIG_OK) {
		fprintf(stderr, "quire-server: %s\n", err);
		return 2;
	}

	/* one descriptor per connection: take all the hard limit allows (the
	 * soft default, often 1024, would cap connections far below it) */
	struct rlimit nofile;
	if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
		nofile.rlim_cur = nofile.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &nofile) != 0)
			fprintf(stderr, "quire-server: cannot raise the descriptor limit to %llu\n",
				(unsigned long long)nofile.rlim_max);
	}

	/* before anything is allocated: the first loads reuse these pages */
	srv_heap_prefault((size_t)cfg.prefault_bytes);

	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal; /* no SA_RESTART: poll() returns EINTR */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);

	srv *s = srv_new(&cfg, err, sizeof err);
	if (s == NULL) {
		fprintf(stderr, "quire-server: %s\n", err);
		return 1;
	}
	rc = srv_run(s, &stop_requested);
	srv_free(s);
	return rc;
}
