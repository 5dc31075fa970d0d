/*
 * test_trace.c - CMocka unit tests of the editing-traces loader (trace.c):
 * the JSON parser's escapes, surrogate pairs, raw UTF-8, skipping of unknown
 * keys, rejection of malformed JSON and of JSON of the wrong shape, and the
 * gzip layer (missing file, not gzip, truncated and damaged streams). Gzip
 * fixtures are written with zlib into a temporary directory.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L /* mkdtemp */
#endif
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <zlib.h>

#include "trace.h"

/* ---- helpers ------------------------------------------------------------- */

static int parse(const char *json, trace *t, char *err, size_t errlen)
{
	return trace_parse(json, strlen(json), t, err, errlen);
}

/* Parse must succeed; fails the test with the parser's message if not. */
static void parse_ok(const char *json, trace *t)
{
	char err[512] = "";
	int r = parse(json, t, err, sizeof err);
	if (r != 0)
		fail_msg("parse failed: %s\ninput: %s", err, json);
}

/* Parse must fail with a message containing `want`; the trace is zeroed. */
static void parse_fails(const char *json, size_t len, const char *want)
{
	char err[512] = "";
	trace t;
	memset(&t, 0xab, sizeof t);
	int r = trace_parse(json, len, &t, err, sizeof err);
	if (r == 0) {
		trace_free(&t);
		fail_msg("parse succeeded, expected \"%s\"\ninput: %.*s", want, (int)len, json);
	}
	if (strstr(err, want) == NULL)
		fail_msg("error \"%s\" lacks \"%s\"\ninput: %.*s", err, want, (int)len, json);
	assert_null(t.text);
	assert_null(t.patches);
	assert_int_equal(t.n_txns, 0);
	trace_free(&t); /* harmless on a zeroed trace */
}

static void fails(const char *json, const char *want)
{
	parse_fails(json, strlen(json), want);
}

/* A one-patch sequential trace inserting the JSON string literal `lit`. */
static void one_insert(const char *lit, trace *t)
{
	char json[512];
	snprintf(json, sizeof json, "{\"endContent\":\"\",\"txns\":[{\"patches\":[[0,0,%s]]}]}",
		 lit);
	parse_ok(json, t);
	assert_int_equal(t->n_patches, 1);
}

static void assert_patch_text(const trace *t, size_t i, const char *bytes, size_t nbytes,
			      uint32_t cps)
{
	const trace_patch *p = &t->patches[i];
	assert_int_equal(p->ins_bytes, nbytes);
	assert_int_equal(p->ins_len, cps);
	assert_memory_equal(trace_patch_text(t, p), bytes, nbytes);
}

/* ---- JSON ------------------------------------------------------------------ */

static void test_trace_sequential_basic(void **state)
{
	(void)state;
	trace t;
	parse_ok("{\"startContent\":\"\",\"endContent\":\"ab\",\"txns\":["
		 "{\"patches\":[[0,0,\"a\"],[1,0,\"b\"]]},"
		 "{\"patches\":[[1,1,\"\"]]},{\"patches\":[]}]}",
		 &t);
	assert_false(t.concurrent);
	assert_int_equal(t.num_agents, 1);
	assert_int_equal(t.n_txns, 3);
	assert_int_equal(t.n_patches, 3);
	assert_int_equal(t.txns[0].first_patch, 0);
	assert_int_equal(t.txns[0].n_patches, 2);
	assert_int_equal(t.txns[1].first_patch, 2);
	assert_int_equal(t.txns[1].n_patches, 1);
	assert_int_equal(t.txns[2].n_patches, 0);
	assert_int_equal(t.patches[1].pos, 1);
	assert_patch_text(&t, 1, "b", 1, 1);
	assert_int_equal(t.patches[2].pos, 1);
	assert_int_equal(t.patches[2].del, 1);
	assert_int_equal(t.patches[2].ins_bytes, 0);
	assert_int_equal(t.patches[2].ins_len, 0);
	assert_int_equal(t.start_bytes, 0);
	assert_string_equal(t.start, "");
	assert_string_equal(t.end, "ab");
	assert_int_equal(t.end_len, 2);
	assert_int_equal(t.inserted_len, 2);
	assert_int_equal(t.deleted_len, 1);
	trace_free(&t);
	assert_null(t.text);
	assert_int_equal(t.n_patches, 0);
	trace_free(&t);
	trace_free(NULL);
}

static void test_trace_start_content(void **state)
{
	(void)state;
	trace t;
	/* Keys in any order; startContent may come last. */
	parse_ok("{\"txns\":[{\"patches\":[[3,0,\"!\"]]}],\"endContent\":\"x\\u00e9z!\","
		 "\"startContent\":\"x\\u00e9z\"}",
		 &t);
	assert_int_equal(t.start_bytes, 4);
	assert_int_equal(t.start_len, 3);
	assert_string_equal(t.start, "x\xc3\xa9z"); /* NUL terminated */
	assert_string_equal(t.end, "x\xc3\xa9z!");
	assert_int_equal(t.end_len, 4);
	trace_free(&t);

	/* Absent startContent reads as "". */
	parse_ok("{\"endContent\":\"\",\"txns\":[]}", &t);
	assert_non_null(t.start);
	assert_string_equal(t.start, "");
	assert_int_equal(t.start_len, 0);
	assert_int_equal(t.n_txns, 0);
	trace_free(&t);
}

static void test_trace_escapes(void **state)
{
	(void)state;
	trace t;
	one_insert("\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u0041\\u00e9\\u20AC\"", &t);
	assert_patch_text(&t, 0, "\"\\/\b\f\n\r\tA\xc3\xa9\xe2\x82\xac", 14, 11);
	trace_free(&t);

	/* \u0000 is a real NUL code point inside the text. */
	one_insert("\"a\\u0000b\"", &t);
	assert_patch_text(&t, 0, "a\0b", 3, 3);
	trace_free(&t);

	/* Largest BMP code point and a mix of escapes and plain text. */
	one_insert("\"x\\uFFFFy\\n\"", &t);
	assert_patch_text(&t, 0, "x\xef\xbf\xbfy\n", 6, 4);
	trace_free(&t);
}

static void test_trace_surrogate_pairs(void **state)
{
	(void)state;
	trace t;
	one_insert("\"\\ud83d\\ude00x\"", &t); /* U+1F600 */
	assert_patch_text(&t, 0, "\xf0\x9f\x98\x80x", 5, 2);
	trace_free(&t);

	one_insert("\"\\uD800\\uDC00\\uDBFF\\uDFFF\"", &t); /* U+10000, U+10FFFF */
	assert_patch_text(&t, 0, "\xf0\x90\x80\x80\xf4\x8f\xbf\xbf", 8, 2);
	trace_free(&t);

	fails("{\"endContent\":\"\\ud83d\",\"txns\":[]}", "surrogate");
	fails("{\"endContent\":\"\\ud83dx\",\"txns\":[]}", "surrogate");
	fails("{\"endContent\":\"\\ude00\",\"txns\":[]}", "surrogate");
	fails("{\"endContent\":\"\\ud83d\\u0041\",\"txns\":[]}", "surrogate");
	fails("{\"endContent\":\"\\ud83d\\ud83d\",\"txns\":[]}", "surrogate");
	fails("{\"endContent\":\"\\ud83d\\", "surrogate");
	fails("{\"endContent\":\"\\u12\"}", "hex");
	fails("{\"endContent\":\"\\u12", "\\u escape");
}

static void test_trace_raw_utf8(void **state)
{
	(void)state;
	trace t;
	/* é (2 bytes), € (3), 😀 (4): code points, not bytes, are counted. */
	one_insert("\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"", &t);
	assert_patch_text(&t, 0, "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 9, 3);
	trace_free(&t);

	fails("{\"endContent\":\"\xc3\x28\",\"txns\":[]}", "UTF-8");	     /* bad continuation */
	fails("{\"endContent\":\"\xc0\x80\",\"txns\":[]}", "UTF-8");	     /* overlong */
	fails("{\"endContent\":\"\xe0\x80\xaf\",\"txns\":[]}", "UTF-8");     /* overlong */
	fails("{\"endContent\":\"\xed\xa0\x80\",\"txns\":[]}", "UTF-8");     /* surrogate */
	fails("{\"endContent\":\"\xf4\x90\x80\x80\",\"txns\":[]}", "UTF-8"); /* > U+10FFFF */
	fails("{\"endContent\":\"\xf5\x80\x80\x80\",\"txns\":[]}", "UTF-8");
	fails("{\"endContent\":\"\x80\",\"txns\":[]}", "UTF-8");
	fails("{\"endContent\":\"\xe2\x82", "UTF-8"); /* cut short */
	/* Invalid UTF-8 inside a skipped value is rejected too. */
	fails("{\"junk\":\"\xff\",\"endContent\":\"\",\"txns\":[]}", "UTF-8");
}

static void test_trace_unknown_keys(void **state)
{
	(void)state;
	trace t;
	parse_ok(" {\n"
		 "  \"x\": {\"a\": [1, 2, {\"b\": null}], \"c\": true, \"\": []},\n"
		 "  \"y\": [], \"z\": -1.5e+10, \"z2\": 0, \"z3\": -0.0E-3, \"z4\": 1e5,\n"
		 "  \"w\": \"str\\u0041\\ud83d\\ude00\", \"v\": false, \"u\": null,\n"
		 "  \"a long key that is not one of ours at all\": {},\n"
		 "  \"end\\u0043ontent2\": 1,\n"
		 "  \"endContent\": \"\",\n"
		 "  \"txns\": [ { \"time\": \"2021-04-19T06:06:58.232Z\", \"numChildren\": 1,\n"
		 "             \"patches\": [ [ 0 , 0 , \"a\" ] ], \"extra\": [[[]]] } ]\n"
		 "}\r\n\t",
		 &t);
	assert_int_equal(t.n_txns, 1);
	assert_int_equal(t.n_patches, 1);
	assert_patch_text(&t, 0, "a", 1, 1);
	trace_free(&t);

	/* A known key spelled with an escape is still that key. */
	parse_ok("{\"end\\u0043ontent\":\"q\",\"txns\":[]}", &t);
	assert_string_equal(t.end, "q");
	trace_free(&t);
}

static void test_trace_malformed_json(void **state)
{
	(void)state;
	fails("", "unexpected end");
	fails("   ", "unexpected end");
	fails("{", "unexpected end");
	fails("{\"endContent\":\"\",\"txns\":[],}", "trailing comma");
	fails("{\"endContent\":\"\",\"txns\":[{\"patches\":[[0,0,\"a\"],]}]}", "trailing comma");
	fails("{\"endContent\" \"\",\"txns\":[]}", "expected ':'");
	fails("{\"endContent\":\"\" \"txns\":[]}", "expected ','");
	fails("{endContent:\"\",\"txns\":[]}", "expected a string key");
	fails("{'endContent':'',\"txns\":[]}", "expected a string key");
	fails("{\"x\":01,\"endContent\":\"\",\"txns\":[]}", "expected ','");
	fails("{\"x\":1.,\"endContent\":\"\",\"txns\":[]}", "after '.'");
	fails("{\"x\":1e,\"endContent\":\"\",\"txns\":[]}", "exponent");
	fails("{\"x\":-,\"endContent\":\"\",\"txns\":[]}", "bad number");
	fails("{\"x\":+1,\"endContent\":\"\",\"txns\":[]}", "unexpected character");
	fails("{\"x\":.5,\"endContent\":\"\",\"txns\":[]}", "unexpected character");
	fails("{\"x\":tru,\"endContent\":\"\",\"txns\":[]}", "unexpected character");
	fails("{\"x\":NaN,\"endContent\":\"\",\"txns\":[]}", "unexpected character");
	fails("{\"x\":[1 2],\"endContent\":\"\",\"txns\":[]}", "expected ',' or ']'");
	fails("{\"endContent\":\"abc", "unterminated string");
	fails("{\"endContent\":\"a\nb\",\"txns\":[]}", "control character");
	fails("{\"endContent\":\"a\\xb\",\"txns\":[]}", "bad escape");
	fails("{\"endContent\":\"\",\"txns\":[]} x", "trailing data");
	fails("{\"endContent\":\"\",\"txns\":[]}{}", "trailing data");
	fails("{\"endContent\":\"\",\"txns\":[{\"patches\":[[0,0,\"a\"]]}", "unexpected end");

	/* A NUL byte in the input is not whitespace. */
	parse_fails("{\"endContent\":\"\",\"txns\":[]}\0", 28, "trailing data");

	/* Nesting inside skipped values is bounded, not a stack overflow. */
	size_t depth = 100000;
	char *deep = malloc(depth + 64);
	assert_non_null(deep);
	strcpy(deep, "{\"x\":");
	memset(deep + 5, '[', depth);
	deep[5 + depth] = '\0';
	fails(deep, "nesting deeper");
	free(deep);

	/* Error messages give where: byte offset and line. */
	char err[512];
	trace t;
	assert_int_equal(parse("{\n\"endContent\":\"\",\n\"txns\":[}\n", &t, err, sizeof err), -1);
	assert_non_null(strstr(err, "invalid JSON"));
	assert_non_null(strstr(err, "line 3"));
}

static void test_trace_wrong_shape(void **state)
{
	(void)state;
	fails("[]", "expected '{'");
	fails("\"x\"", "expected '{'");
	fails("{\"txns\":[]}", "missing key \"endContent\"");
	fails("{\"endContent\":\"\"}", "missing key \"txns\"");
	fails("{\"endContent\":1,\"txns\":[]}", "endContent: expected a string");
	fails("{\"endContent\":\"\",\"txns\":{}}", "txns: expected an array");
	fails("{\"endContent\":\"\",\"txns\":[[0,0,\"a\"]]}",
	      "txns[0]: expected a transaction object");
	fails("{\"endContent\":\"\",\"txns\":[{}]}", "without \"patches\"");
	fails("{\"endContent\":\"\",\"txns\":[{\"patches\":[[0,0]]}]}",
	      "txns[0].patches[0]: a patch has 3 elements");
	fails("{\"endContent\":\"\",\"txns\":[{\"patches\":[[0,0,\"a\",1]]}]}",
	      "a patch has 3 elements");
	fails("{\"endContent\":\"\",\"txns\":[{\"patches\":[{\"pos\":0}]}]}", "expected a patch");
	fails("{\"endContent\":\"\",\"txns\":[{\"patches\":[[0,0,\"a\"]]},"
	      "{\"patches\":[[0,\"x\",\"b\"]]}]}",
	      "txns[1].patches[0][1]: expected a non-negative integer");
	fails("{\"endContent\":\"\",\"txns\":[{\"patches\":[[-1,0,\"a\"]]}]}",
	      "txns[0].patches[0][0]: expected a non-negative integer");
	fails("{\"endContent\":\"\",\"txns\":[{\"patches\":[[1.5,0,\"a\"]]}]}",
	      "expected an integer");
	fails("{\"endContent\":\"\",\"txns\":[{\"patches\":[[1e3,0,\"a\"]]}]}",
	      "expected an integer");
	fails("{\"endContent\":\"\",\"txns\":[{\"patches\":[[4294967296,0,\"a\"]]}]}",
	      "integer larger than");
	fails("{\"endContent\":\"\",\"txns\":[{\"patches\":[[0,0,7]]}]}",
	      "patches[0][2]: expected a string");
	fails("{\"endContent\":\"\",\"endContent\":\"\",\"txns\":[]}", "duplicate key");
	fails("{\"endContent\":\"\",\"txns\":[{\"patches\":[],\"patches\":[]}]}", "duplicate key");
	fails("{\"kind\":\"weird\",\"endContent\":\"\",\"txns\":[]}", "unknown kind");
	fails("{\"kind\":1,\"endContent\":\"\",\"txns\":[]}", "kind: expected a string");

	/* The largest 32-bit values are fine. */
	trace t;
	parse_ok("{\"endContent\":\"\",\"txns\":[{\"patches\":[[4294967295,4294967295,\"\"]]}]}",
		 &t);
	assert_int_equal(t.patches[0].pos, UINT32_MAX);
	assert_int_equal(t.patches[0].del, UINT32_MAX);
	trace_free(&t);
}

static void test_trace_concurrent(void **state)
{
	(void)state;
	trace t;
	parse_ok("{\"kind\":\"concurrent\",\"endContent\":\"ab\",\"numAgents\":2,\"txns\":["
		 "{\"parents\":[],\"agent\":0,\"patches\":[[0,0,\"a\"]]},"
		 "{\"parents\":[],\"agent\":1,\"patches\":[[0,0,\"b\"]]},"
		 "{\"parents\":[0,1],\"agent\":0,\"patches\":[]}]}",
		 &t);
	assert_true(t.concurrent);
	assert_int_equal(t.num_agents, 2);
	assert_int_equal(t.n_txns, 3);
	assert_int_equal(t.txns[1].agent, 1);
	assert_int_equal(t.txns[1].n_parents, 0);
	assert_int_equal(t.txns[2].n_parents, 2);
	assert_int_equal(t.parents[t.txns[2].first_parent], 0);
	assert_int_equal(t.parents[t.txns[2].first_parent + 1], 1);
	trace_free(&t);

	/* numAgents absent: one more than the largest agent. */
	parse_ok("{\"kind\":\"concurrent\",\"endContent\":\"\",\"txns\":["
		 "{\"parents\":[],\"agent\":3,\"patches\":[]}]}",
		 &t);
	assert_int_equal(t.num_agents, 4);
	trace_free(&t);

	fails("{\"kind\":\"concurrent\",\"endContent\":\"\",\"txns\":["
	      "{\"parents\":[0],\"agent\":0,\"patches\":[]}]}",
	      "txns[0].parents[0]: parent 0 is not an earlier transaction");
	fails("{\"kind\":\"concurrent\",\"endContent\":\"\",\"txns\":["
	      "{\"parents\":[],\"agent\":0,\"patches\":[]},"
	      "{\"parents\":[5],\"agent\":0,\"patches\":[]}]}",
	      "not an earlier transaction");
	fails("{\"kind\":\"concurrent\",\"endContent\":\"\",\"numAgents\":2,\"txns\":["
	      "{\"parents\":[],\"agent\":2,\"patches\":[]}]}",
	      "numAgents is 2");
	fails("{\"kind\":\"concurrent\",\"endContent\":\"\",\"txns\":["
	      "{\"parents\":[],\"agent\":-1,\"patches\":[]}]}",
	      "agent: expected a non-negative integer");
	fails("{\"kind\":\"concurrent\",\"endContent\":\"\",\"txns\":["
	      "{\"parents\":0,\"agent\":0,\"patches\":[]}]}",
	      "parents: expected an array");
}

/* ---- gzip files ---------------------------------------------------------- */

typedef struct fixture {
	char dir[64];
	char path[128];
} fixture;

static int setup_dir(void **state)
{
	fixture *f = calloc(1, sizeof *f);
	if (f == NULL)
		return -1;
	snprintf(f->dir, sizeof f->dir, "%s", "/tmp/quire-test-trace-XXXXXX");
	if (mkdtemp(f->dir) == NULL) {
		free(f);
		return -1;
	}
	snprintf(f->path, sizeof f->path, "%s/t.json.gz", f->dir);
	*state = f;
	return 0;
}

static int teardown_dir(void **state)
{
	fixture *f = *state;
	unlink(f->path);
	rmdir(f->dir);
	free(f);
	return 0;
}

/* Gzip `data` into memory (a single member). */
static unsigned char *gzip_mem(const char *data, size_t len, size_t *out_len)
{
	z_stream zs;
	memset(&zs, 0, sizeof zs);
	assert_int_equal(deflateInit2(&zs, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY),
			 Z_OK);
	size_t cap = deflateBound(&zs, (uLong)len) + 32;
	unsigned char *buf = malloc(cap);
	assert_non_null(buf);
	zs.next_in = (unsigned char *)(uintptr_t)data;
	zs.avail_in = (uInt)len;
	zs.next_out = buf;
	zs.avail_out = (uInt)cap;
	assert_int_equal(deflate(&zs, Z_FINISH), Z_STREAM_END);
	*out_len = cap - zs.avail_out;
	deflateEnd(&zs);
	return buf;
}

static void write_file(const char *path, const void *data, size_t len)
{
	FILE *fp = fopen(path, "wb");
	assert_non_null(fp);
	assert_int_equal(fwrite(data, 1, len, fp), len);
	assert_int_equal(fclose(fp), 0);
}

static const char sample_json[] = "{\"startContent\":\"\",\"endContent\":\"h\\u00e9llo\",\"txns\":["
				  "{\"time\":\"x\",\"patches\":[[0,0,\"h\\u00e9\"]]},"
				  "{\"patches\":[[2,0,\"llo world\"],[5,6,\"\"]]}]}";

static void check_sample(const trace *t)
{
	assert_int_equal(t->n_txns, 2);
	assert_int_equal(t->n_patches, 3);
	assert_string_equal(t->end, "h\xc3\xa9llo");
	assert_int_equal(t->end_len, 5);
	assert_int_equal(t->patches[2].del, 6);
}

static void load_fails(const char *path, const char *want)
{
	char err[512] = "";
	trace t;
	if (trace_load(path, &t, err, sizeof err) == 0) {
		trace_free(&t);
		fail_msg("load of %s succeeded, expected \"%s\"", path, want);
	}
	if (strstr(err, want) == NULL)
		fail_msg("error \"%s\" lacks \"%s\"", err, want);
	if (strstr(err, path) == NULL)
		fail_msg("error \"%s\" does not name the file", err);
	assert_null(t.text);
	trace_free(&t);
}

static void test_trace_load_gzip(void **state)
{
	fixture *f = *state;
	size_t n;
	unsigned char *gz = gzip_mem(sample_json, sizeof sample_json - 1, &n);
	write_file(f->path, gz, n);
	trace t;
	char err[512];
	if (trace_load(f->path, &t, err, sizeof err) != 0)
		fail_msg("%s", err);
	check_sample(&t);
	trace_free(&t);
	free(gz);

	/* Two members back to back (as `cat a.gz b.gz` makes) are one file. */
	size_t half = (sizeof sample_json - 1) / 2, n1, n2;
	unsigned char *g1 = gzip_mem(sample_json, half, &n1);
	unsigned char *g2 = gzip_mem(sample_json + half, sizeof sample_json - 1 - half, &n2);
	unsigned char *both = malloc(n1 + n2);
	assert_non_null(both);
	memcpy(both, g1, n1);
	memcpy(both + n1, g2, n2);
	write_file(f->path, both, n1 + n2);
	if (trace_load(f->path, &t, err, sizeof err) != 0)
		fail_msg("%s", err);
	check_sample(&t);
	trace_free(&t);
	free(g1);
	free(g2);
	free(both);
}

static void test_trace_load_bad_files(void **state)
{
	fixture *f = *state;
	char missing[160];
	snprintf(missing, sizeof missing, "%s/no-such-file.json.gz", f->dir);
	load_fails(missing, "cannot open");
	load_fails(f->dir, "not a regular file");

	write_file(f->path, "", 0);
	load_fails(f->path, "not a gzip file (empty)");
	write_file(f->path, sample_json, sizeof sample_json - 1);
	load_fails(f->path, "not a gzip file");

	/* Valid gzip holding broken JSON: the JSON error, with the file name. */
	size_t n;
	unsigned char *gz = gzip_mem("{\"endContent\":", 14, &n);
	write_file(f->path, gz, n);
	load_fails(f->path, "invalid JSON");
	free(gz);
}

static void test_trace_load_truncated_gzip(void **state)
{
	fixture *f = *state;
	size_t n;
	unsigned char *gz = gzip_mem(sample_json, sizeof sample_json - 1, &n);
	/* Cut in the middle of the deflate data, and just before the trailer
	 * (all data there, CRC and size missing). */
	write_file(f->path, gz, n / 2 + 9);
	load_fails(f->path, "truncated");
	write_file(f->path, gz, n - 8);
	load_fails(f->path, "truncated");
	write_file(f->path, gz, n - 1);
	load_fails(f->path, "truncated");
	/* Garbage after the last member. */
	unsigned char *more = malloc(n + 3);
	assert_non_null(more);
	memcpy(more, gz, n);
	memcpy(more + n, "xyz", 3);
	write_file(f->path, more, n + 3);
	load_fails(f->path, "trailing garbage");
	free(more);
	free(gz);
}

static void test_trace_load_damaged_gzip(void **state)
{
	fixture *f = *state;
	size_t n;
	unsigned char *gz = gzip_mem(sample_json, sizeof sample_json - 1, &n);
	/* A flipped CRC byte: the data inflates but does not check out. */
	gz[n - 6] ^= 0x55;
	write_file(f->path, gz, n);
	load_fails(f->path, "damaged gzip data");
	gz[n - 6] ^= 0x55;
	/* A bad compression method in the header. */
	gz[2] = 7;
	write_file(f->path, gz, n);
	load_fails(f->path, "damaged gzip data");
	free(gz);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_trace_sequential_basic),
		cmocka_unit_test(test_trace_start_content),
		cmocka_unit_test(test_trace_escapes),
		cmocka_unit_test(test_trace_surrogate_pairs),
		cmocka_unit_test(test_trace_raw_utf8),
		cmocka_unit_test(test_trace_unknown_keys),
		cmocka_unit_test(test_trace_malformed_json),
		cmocka_unit_test(test_trace_wrong_shape),
		cmocka_unit_test(test_trace_concurrent),
		cmocka_unit_test_setup_teardown(test_trace_load_gzip, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_trace_load_bad_files, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_trace_load_truncated_gzip, setup_dir,
						teardown_dir),
		cmocka_unit_test_setup_teardown(test_trace_load_damaged_gzip, setup_dir,
						teardown_dir),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
