/*
 * opts.c - parsing quire-load's flags (opts.h). Every flag takes a value;
 * unknown flags are errors, so a typo never silently runs the default.
 */
#include "opts.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

void ql_usage(void)
{
	fprintf(stderr,
		"usage: quire-load MODE [flags]   (all connections go to 127.0.0.1)\n"
		"  idle   --conns N --docs D --batch B --hold S --server-pid PID\n"
		"  fanout --observers N --rate R --edits E [--trace FILE]\n"
		"  rate   --observers N --edits E --window W [--trace FILE]\n"
		"  docs   --docs D --writers-per-doc K --edits E --window W\n"
		"  soak   --conns N --docs D --seconds T --server-pid PID --csv FILE\n"
		"         [--writers-per-doc K] [--edit-rate R] [--drop-every S] [--max-growth F] "
		"[--rss-per-edit B]\n"
		"  catchup --rounds N --pre P --gap G --window W [--pause-ms MS] [--trace FILE]\n"
		"common:  --url ws://127.0.0.1:PORT/sync | --port PORT, --json FILE, --timeout S,\n"
		"         --sources N (loopback source addresses 127.0.0.2..), --seed N, --prefix "
		"P\n");
}

int ql_opts_parse(ql_opts *o, int argc, char **argv)
{
	memset(o, 0, sizeof *o);
	o->port = 8080;
	o->conns = 1000;
	o->docs = 10;
	o->batch = 200;
	o->observers = 100;
	o->edits = 2000;
	o->window = 64;
	o->writers_per_doc = 3;
	o->rounds = 20;
	o->pre = 5000;
	o->gap = 10000;
	o->n_src = 16;
	o->hold = 10;
	o->rate = 200;
	o->seconds = 600;
	o->timeout = 0; /* per mode */
	o->edit_rate = 0.5;
	o->drop_every = 30;
	o->sample_every = 5;
	o->max_growth = 0.5;
	o->rss_per_edit = 512;
	o->trace = "/work/shared/traces/automerge-paper.json.gz";
	o->seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
	if (argc < 2) {
		ql_usage();
		return -1;
	}
	o->mode = argv[1];
	for (int i = 2; i < argc; i += 2) {
		const char *k = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (v == NULL) {
			fprintf(stderr, "quire-load: %s needs a value\n", k);
			return -1;
		}
		char *end = NULL;
		double d = strtod(v, &end);
		bool num = end != v && *end == '\0';
#define NUM(flag, field, cast)                                                       \
	if (strcmp(k, flag) == 0) {                                                  \
		if (!num || d < 0) {                                                 \
			fprintf(stderr, "quire-load: %s: not a number: %s\n", k, v); \
			return -1;                                                   \
		}                                                                    \
		o->field = (cast)d;                                                  \
		continue;                                                            \
	}
		NUM("--conns", conns, long)
		NUM("--docs", docs, long)
		NUM("--batch", batch, long)
		NUM("--observers", observers, long)
		NUM("--edits", edits, long)
		NUM("--window", window, long)
		NUM("--writers-per-doc", writers_per_doc, long)
		NUM("--sources", n_src, long)
		NUM("--rounds", rounds, long)
		NUM("--pre", pre, long)
		NUM("--gap", gap, long)
		NUM("--pause-ms", pause_ms, long)
		NUM("--hold", hold, double)
		NUM("--rate", rate, double)
		NUM("--seconds", seconds, double)
		NUM("--timeout", timeout, double)
		NUM("--edit-rate", edit_rate, double)
		NUM("--drop-every", drop_every, double)
		NUM("--sample-every", sample_every, double)
		NUM("--max-growth", max_growth, double)
		NUM("--rss-per-edit", rss_per_edit, double)
		NUM("--server-pid", server_pid, pid_t)
		NUM("--port", port, uint16_t)
		NUM("--seed", seed, uint64_t)
#undef NUM
		if (strcmp(k, "--trace") == 0)
			o->trace = v;
		else if (strcmp(k, "--json") == 0)
			o->json = v;
		else if (strcmp(k, "--csv") == 0)
			o->csv = v;
		else if (strcmp(k, "--prefix") == 0)
			o->prefix = v;
		else if (strcmp(k, "--url") == 0) {
			unsigned port = 0;
			if (sscanf(v, "ws://127.0.0.1:%u", &port) != 1 || port == 0 ||
			    port > 65535) {
				fprintf(stderr,
					"quire-load: --url must be ws://127.0.0.1:PORT/sync "
					"(loopback only)\n");
				return -1;
			}
			o->port = (uint16_t)port;
		} else {
			fprintf(stderr, "quire-load: unknown flag %s\n", k);
			return -1;
		}
	}
	return 0;
}
