/*
 * test_server_config.c - unit tests of server/config.c: defaults, every
 * value parser (listen addresses, sizes with suffixes, integers, enums),
 * both flag forms, QUIRE_* variables and their precedence below flags,
 * range checks, unknown flags and stray arguments, --help/--version, and
 * that the usage text names every flag and its variable.
 */
#define _POSIX_C_SOURCE 200809L

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config.h"

#define ARGV(...) ((char *const[]){"quire-server", __VA_ARGS__, NULL})
#define ARGC(...) ((int)(sizeof((const char *[]){"quire-server", __VA_ARGS__}) / sizeof(char *)))
#define ENV(...) ((char *const[]){__VA_ARGS__, NULL})

static int load(srv_config *c, int argc, char *const *argv, char *const *envp, char *err)
{
	return srv_config_load(c, argc, argv, envp, err, 256);
}

static void test_server_config_defaults(void **state)
{
	(void)state;
	srv_config c;
	char err[256] = "";
	char *const argv[] = {"quire-server", NULL};
	assert_int_equal(load(&c, 1, argv, NULL, err), SRV_CONFIG_OK);
	assert_string_equal(c.listen_host, "127.0.0.1");
	assert_int_equal(c.listen_port, 8080);
	assert_string_equal(c.db_path, "./data/quire.db");
	assert_string_equal(c.web_dir, "");
	assert_int_equal(c.durability, SRV_DURABILITY_NORMAL);
	assert_int_equal(c.log_level, SRV_LOG_INFO);
	assert_int_equal(c.max_message_bytes, 1024 * 1024);
	assert_int_equal(c.max_ops, 10000);
	assert_int_equal(c.max_docs_per_conn, 64);
	assert_int_equal(c.send_queue_bytes, 8 * 1024 * 1024);
	assert_int_equal(c.idle_unload_ms, 30000);
	assert_int_equal(c.prefault_bytes, 4 * 1024 * 1024);
	assert_int_equal(c.quiet_snapshot_ms, 5);
}

static void test_server_config_parse_listen(void **state)
{
	(void)state;
	char host[64];
	int port = -1;
	assert_int_equal(srv_config_parse_listen("127.0.0.1:8080", host, sizeof host, &port), 0);
	assert_string_equal(host, "127.0.0.1");
	assert_int_equal(port, 8080);
	assert_int_equal(srv_config_parse_listen("0.0.0.0:0", host, sizeof host, &port), 0);
	assert_int_equal(port, 0);
	assert_int_equal(srv_config_parse_listen(":9000", host, sizeof host, &port), 0);
	assert_string_equal(host, "127.0.0.1");
	assert_int_equal(port, 9000);
	assert_int_equal(srv_config_parse_listen("[::1]:443", host, sizeof host, &port), 0);
	assert_string_equal(host, "::1");
	assert_int_equal(port, 443);
	assert_int_equal(srv_config_parse_listen("localhost:65535", host, sizeof host, &port), 0);
	const char *bad[] = {"",
			     "8080",
			     "host:",
			     "host:65536",
			     "host:-1",
			     "host:80x",
			     "::1:80",
			     "[::1]80",
			     "[]:80",
			     "a b:80",
			     "host:99999999999999999999"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		assert_int_equal(srv_config_parse_listen(bad[i], host, sizeof host, &port), -1);
	char tiny[4];
	assert_int_equal(srv_config_parse_listen("example.org:1", tiny, sizeof tiny, &port), -1);
}

static void test_server_config_parse_size(void **state)
{
	(void)state;
	uint64_t v;
	assert_int_equal(srv_config_parse_size("0", &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(srv_config_parse_size("4096", &v), 0);
	assert_int_equal(v, 4096);
	assert_int_equal(srv_config_parse_size("64K", &v), 0);
	assert_int_equal(v, 65536);
	assert_int_equal(srv_config_parse_size("64k", &v), 0);
	assert_int_equal(v, 65536);
	assert_int_equal(srv_config_parse_size("1M", &v), 0);
	assert_int_equal(v, 1 << 20);
	assert_int_equal(srv_config_parse_size("2MiB", &v), 0);
	assert_int_equal(v, 2 << 20);
	assert_int_equal(srv_config_parse_size("3mb", &v), 0);
	assert_int_equal(v, 3 << 20);
	assert_int_equal(srv_config_parse_size("1G", &v), 0);
	assert_int_equal(v, 1ull << 30);
	const char *bad[] = {
		"", "K", "1T", "1KK", "1 K", "-1", "1.5M", "18446744073709551616", "17179869184G"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		assert_int_equal(srv_config_parse_size(bad[i], &v), -1);
}

static void test_server_config_parse_uint(void **state)
{
	(void)state;
	uint64_t v;
	assert_int_equal(srv_config_parse_uint("18446744073709551615", &v), 0);
	assert_true(v == UINT64_MAX);
	assert_int_equal(srv_config_parse_uint("18446744073709551616", &v), -1);
	assert_int_equal(srv_config_parse_uint("", &v), -1);
	assert_int_equal(srv_config_parse_uint("+1", &v), -1);
	assert_int_equal(srv_config_parse_uint("12a", &v), -1);
}

static void test_server_config_flags_both_forms(void **state)
{
	(void)state;
	srv_config c;
	char err[256] = "";
	assert_int_equal(
		load(&c,
		     ARGC("--listen", "0.0.0.0:9001", "--db=/tmp/x/q.db", "--web", "dist",
			  "--durability=full", "--log-level", "debug", "--max-message-bytes",
			  "256K", "--max-ops=50", "--max-docs-per-conn", "3", "--send-queue-bytes",
			  "1M", "--idle-unload-ms", "0", "--snapshot-every", "10", "--keep-changes",
			  "5", "--quiet-snapshot-ms", "0"),
		     ARGV("--listen", "0.0.0.0:9001", "--db=/tmp/x/q.db", "--web", "dist",
			  "--durability=full", "--log-level", "debug", "--max-message-bytes",
			  "256K", "--max-ops=50", "--max-docs-per-conn", "3", "--send-queue-bytes",
			  "1M", "--idle-unload-ms", "0", "--snapshot-every", "10", "--keep-changes",
			  "5", "--quiet-snapshot-ms", "0"),
		     NULL, err),
		SRV_CONFIG_OK);
	assert_string_equal(c.listen_host, "0.0.0.0");
	assert_int_equal(c.listen_port, 9001);
	assert_string_equal(c.db_path, "/tmp/x/q.db");
	assert_string_equal(c.web_dir, "dist");
	assert_int_equal(c.durability, SRV_DURABILITY_FULL);
	assert_int_equal(c.log_level, SRV_LOG_DEBUG);
	assert_int_equal(c.max_message_bytes, 256 * 1024);
	assert_int_equal(c.max_ops, 50);
	assert_int_equal(c.max_docs_per_conn, 3);
	assert_int_equal(c.send_queue_bytes, 1 << 20);
	assert_int_equal(c.idle_unload_ms, 0);
	assert_int_equal(c.snapshot_every, 10);
	assert_int_equal(c.keep_changes, 5);
	assert_int_equal(c.quiet_snapshot_ms, 0);
}

static void test_server_config_env_below_flags(void **state)
{
	(void)state;
	srv_config c;
	char err[256] = "";
	char *const env[] = {"PATH=/bin",
			     "QUIRE_LISTEN=127.0.0.1:7000",
			     "QUIRE_DB=/env/q.db",
			     "QUIRE_LOG_LEVEL=warn",
			     "QUIRE_MAX_OPS=77",
			     "QUIRE_WEB=",
			     "QUIRE_UNKNOWN=1",
			     "QUIRE_DURABILITY=full",
			     NULL};
	assert_int_equal(load(&c, ARGC("--max-ops", "5"), ARGV("--max-ops", "5"), env, err),
			 SRV_CONFIG_OK);
	assert_int_equal(c.listen_port, 7000);
	assert_string_equal(c.db_path, "/env/q.db");
	assert_int_equal(c.log_level, SRV_LOG_WARN);
	assert_int_equal(c.max_ops, 5);	    /* the flag wins */
	assert_string_equal(c.web_dir, ""); /* empty means unset */
	assert_int_equal(c.durability, SRV_DURABILITY_FULL);
	/* a bad variable is named */
	char *const bad[] = {"QUIRE_SEND_QUEUE_BYTES=lots", NULL};
	char *const argv[] = {"quire-server", NULL};
	assert_int_equal(load(&c, 1, argv, bad, err), SRV_CONFIG_EINVAL);
	assert_non_null(strstr(err, "QUIRE_SEND_QUEUE_BYTES"));
}

static void test_server_config_errors(void **state)
{
	(void)state;
	srv_config c;
	char err[256];
	struct {
		int argc;
		char *const *argv;
		const char *mention;
	} cases[] = {
		{ARGC("--bogus"), ARGV("--bogus"), "--bogus"},
		{ARGC("--listen"), ARGV("--listen"), "--listen needs a value"},
		{ARGC("stray"), ARGV("stray"), "stray"},
		{ARGC("--listen", "nowhere"), ARGV("--listen", "nowhere"), "HOST:PORT"},
		{ARGC("--durability", "sometimes"), ARGV("--durability", "sometimes"),
		 "normal or full"},
		{ARGC("--log-level", "loud"), ARGV("--log-level", "loud"), "--log-level"},
		{ARGC("--max-ops", "0"), ARGV("--max-ops", "0"), "out of range"},
		{ARGC("--max-message-bytes", "100"), ARGV("--max-message-bytes", "100"),
		 "out of range"},
		{ARGC("--send-queue-bytes", "1K"), ARGV("--send-queue-bytes", "1K"),
		 "out of range"},
		{ARGC("--db", ""), ARGV("--db", ""), "--db"},
		{ARGC("--max-ops", "-3"), ARGV("--max-ops", "-3"), "--max-ops"},
		{ARGC("--quiet-snapshot-ms", "3600001"), ARGV("--quiet-snapshot-ms", "3600001"),
		 "out of range"},
		{ARGC("--quiet-snapshot-ms", "soon"), ARGV("--quiet-snapshot-ms", "soon"),
		 "--quiet-snapshot-ms"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		err[0] = '\0';
		assert_int_equal(load(&c, cases[i].argc, cases[i].argv, NULL, err),
				 SRV_CONFIG_EINVAL);
		if (strstr(err, cases[i].mention) == NULL)
			fail_msg("case %zu: '%s' does not mention '%s'", i, err, cases[i].mention);
	}
}

static void test_server_config_help_version(void **state)
{
	(void)state;
	srv_config c;
	char err[256];
	assert_int_equal(load(&c, ARGC("--help"), ARGV("--help"), NULL, err), SRV_CONFIG_HELP);
	assert_int_equal(
		load(&c, ARGC("--listen", ":1", "-h"), ARGV("--listen", ":1", "-h"), NULL, err),
		SRV_CONFIG_HELP);
	assert_int_equal(load(&c, ARGC("--version"), ARGV("--version"), NULL, err),
			 SRV_CONFIG_VERSION);
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	assert_non_null(f);
	srv_config_usage(f, "quire-server");
	fclose(f);
	const char *names[] = {"--listen",
			       "QUIRE_LISTEN",
			       "--db",
			       "QUIRE_DB",
			       "--web",
			       "QUIRE_WEB",
			       "--durability",
			       "QUIRE_DURABILITY",
			       "--log-level",
			       "QUIRE_LOG_LEVEL",
			       "--max-message-bytes",
			       "QUIRE_MAX_MESSAGE_BYTES",
			       "--max-ops",
			       "QUIRE_MAX_OPS",
			       "--max-docs-per-conn",
			       "QUIRE_MAX_DOCS_PER_CONN",
			       "--send-queue-bytes",
			       "QUIRE_SEND_QUEUE_BYTES",
			       "--idle-unload-ms",
			       "QUIRE_IDLE_UNLOAD_MS",
			       "--help",
			       "default 127.0.0.1:8080",
			       "default ./data/quire.db"};
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		if (strstr(text, names[i]) == NULL)
			fail_msg("usage lacks %s", names[i]);
	free(text);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_server_config_defaults),
		cmocka_unit_test(test_server_config_parse_listen),
		cmocka_unit_test(test_server_config_parse_size),
		cmocka_unit_test(test_server_config_parse_uint),
		cmocka_unit_test(test_server_config_flags_both_forms),
		cmocka_unit_test(test_server_config_env_below_flags),
		cmocka_unit_test(test_server_config_errors),
		cmocka_unit_test(test_server_config_help_version),
	};
	if (argc > 1)
		cmocka_set_test_filter(argv[1]);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
