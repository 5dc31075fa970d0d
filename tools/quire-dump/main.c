/*
 * main.c - quire-dump's entry point: the command line and the dispatch.
 *
 *   quire-dump [--db PATH] [--json] COMMAND ARGS
 *
 * Global options may come before or after the command; each command's own
 * options (--at, --since, --limit, --quick) are checked against the command
 * here, so a command only validates its positional arguments. `--` ends the
 * options (a doc id may start with '-'). The database is --db, else
 * $QUIRE_DB, else the server's default ./data/quire.db; every command but
 * import and vacuum gets it opened read-only. Exit statuses: dump.h (0, 1, 2).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "dump.h"

/* Command-specific options. */
enum {
	OPT_AT = 1 << 0,
	OPT_SINCE = 1 << 1,
	OPT_LIMIT = 1 << 2,
	OPT_QUICK = 1 << 3,
};

typedef struct command {
	const char *name;
	int (*run)(dump_ctx *c); /* NULL: import */
	unsigned opts;		 /* the options it accepts */
	int min_pos, max_pos;	 /* positional arguments after the name */
	const char *synopsis;
	bool writes; /* open the (existing) database read-write */
} command;

static const command commands[] = {
	{"list", dump_cmd_list, OPT_QUICK, 0, 0, "list [--quick]", false},
	{"show", dump_cmd_show, OPT_AT, 1, 1, "show DOC [--at SEQ]", false},
	{"log", dump_cmd_log, OPT_SINCE | OPT_LIMIT, 1, 1, "log DOC [--since SEQ] [--limit N]", false},
	{"stats", dump_cmd_stats, OPT_AT, 1, 1, "stats DOC [--at SEQ]", false},
	{"verify", dump_cmd_verify, 0, 0, 1, "verify [DOC]", false},
	{"import", NULL, 0, 2, 2, "import FILE.json.gz DOC", false},
	{"vacuum", dump_cmd_vacuum, 0, 0, 0, "vacuum", true},
};

static const command *find_command(const char *name)
{
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	return NULL;
}

/* A decimal number, all of it, within uint64. */
static bool parse_u64(const char *s, uint64_t *out)
{
	if (!s || *s < '0' || *s > '9')
		return false;
	errno = 0;
	char *end;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || *end)
		return false;
	*out = (uint64_t)v;
	return true;
}

/* The value of an option: "--opt=VALUE" or "--opt VALUE". */
static const char *opt_value(int argc, char **argv, int *i, const char *eq)
{
	if (eq)
		return eq + 1;
	if (*i + 1 >= argc)
		return NULL;
	return argv[++*i];
}

/* Parse argv into *a; *help set for --help. Returns DUMP_OK or DUMP_USAGE
 * (after printing why). */
static int parse(int argc, char **argv, dump_args *a, unsigned *given, bool *help)
{
	bool options = true;
	*given = 0;
	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i];
		if (options && strcmp(arg, "--") == 0) {
			options = false;
			continue;
		}
		if (options && (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0)) {
			*help = true;
			continue;
		}
		if (options && arg[0] == '-' && arg[1] != '\0') {
			const char *eq = strchr(arg, '=');
			size_t nlen = eq ? (size_t)(eq - arg) : strlen(arg);
#define IS(name) (nlen == strlen(name) && strncmp(arg, name, nlen) == 0)
			if (IS("--json") && !eq) {
				a->json = true;
			} else if (IS("--quick") && !eq) {
				a->quick = true;
				*given |= OPT_QUICK;
			} else if (IS("--db")) {
				if (!(a->db_path = opt_value(argc, argv, &i, eq)) || !*a->db_path)
					return dump_usage_error("--db needs a PATH");
			} else if (IS("--at") || IS("--since") || IS("--limit")) {
				const char *v = opt_value(argc, argv, &i, eq);
				uint64_t n;
				if (!parse_u64(v, &n))
					return dump_usage_error("%.*s needs a number, got '%s'",
								(int)nlen, arg, v ? v : "");
				if (IS("--at")) {
					a->has_at = true;
					a->at = n;
					*given |= OPT_AT;
				} else if (IS("--since")) {
					a->has_since = true;
					a->since = n;
					*given |= OPT_SINCE;
				} else {
					a->has_limit = true;
					a->limit = n;
					*given |= OPT_LIMIT;
				}
			} else {
				return dump_usage_error("unknown option '%s'", arg);
			}
#undef IS
			continue;
		}
		if (!a->command)
			a->command = arg;
		else if (a->npos < (int)(sizeof a->pos / sizeof a->pos[0]))
			a->pos[a->npos++] = arg;
		else
			return dump_usage_error("too many arguments");
	}
	return DUMP_OK;
}

static const char *option_name(unsigned opt)
{
	switch (opt) {
	case OPT_AT:
		return "--at";
	case OPT_SINCE:
		return "--since";
	case OPT_LIMIT:
		return "--limit";
	default:
		return "--quick";
	}
}

int main(int argc, char **argv)
{
	dump_args a = {0};
	unsigned given;
	bool help = false;
	int rc = parse(argc, argv, &a, &given, &help);
	if (rc != DUMP_OK)
		return rc;
	if (help || (a.command && strcmp(a.command, "help") == 0)) {
		dump_help(stdout);
		return fflush(stdout) == 0 ? DUMP_OK : DUMP_FAIL;
	}
	if (!a.command)
		return dump_usage_error(
			"no command given (list, show, log, stats, verify, import, vacuum)");
	const command *cmd = find_command(a.command);
	if (!cmd)
		return dump_usage_error("unknown command '%s'", a.command);
	for (unsigned opt = 1; opt <= OPT_QUICK; opt <<= 1)
		if ((given & opt) && !(cmd->opts & opt))
			return dump_usage_error("%s does not apply to '%s' (usage: quire-dump %s)",
						option_name(opt), cmd->name, cmd->synopsis);
	if (a.npos < cmd->min_pos || a.npos > cmd->max_pos)
		return dump_usage_error("usage: quire-dump [--db PATH] [--json] %s", cmd->synopsis);
	for (int i = 0; i < a.npos; i++)
		if (!*a.pos[i])
			return dump_usage_error("empty argument (usage: quire-dump %s)",
						cmd->synopsis);

	if (!a.db_path) {
		const char *env = getenv(DUMP_DB_ENV);
		a.db_path = env && *env ? env : DUMP_DEFAULT_DB;
	}

	if (!cmd->run) {
		rc = dump_cmd_import(&a);
	} else {
		dump_ctx c = {.args = &a, .out = stdout, .json = a.json};
		struct stat st;
		if (cmd->writes && stat(a.db_path, &st) != 0) {
			dump_error("no database at '%s': %s", a.db_path, strerror(errno));
			return DUMP_FAIL;
		}
		if (!(c.db = dump_db_open(a.db_path, !cmd->writes)))
			return DUMP_FAIL;
		rc = cmd->run(&c);
		store_close(c.db);
	}
	if (fflush(stdout) != 0 || ferror(stdout)) {
		dump_error("writing the output failed: %s", strerror(errno));
		return DUMP_FAIL;
	}
	return rc;
}
