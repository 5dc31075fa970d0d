/*
 * storetest.c - helpers of the storage tests (see storetest.h).
 */
#define _POSIX_C_SOURCE 200809L /* mkdtemp, opendir */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "storetest.h"

static void die(const char *what)
{
	fprintf(stderr, "storetest: %s\n", what);
	abort();
}

static void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p)
		die("out of memory");
	return p;
}

static char *xstrdup(const char *s)
{
	size_t n = strlen(s);
	char *p = xmalloc(n + 1);
	memcpy(p, s, n + 1);
	return p;
}

/* ---- files ---- */

char *st_tmpdir(void)
{
	char *dir = xstrdup("/tmp/quire-storage-XXXXXX");
	if (!mkdtemp(dir))
		die("mkdtemp failed");
	return dir;
}

char *st_join(const char *dir, const char *name)
{
	size_t n = strlen(dir) + strlen(name) + 2;
	char *p = xmalloc(n);
	snprintf(p, n, "%s/%s", dir, name);
	return p;
}

void st_rmdir(char *dir)
{
	if (!dir)
		return;
	DIR *d = opendir(dir);
	if (d) {
		struct dirent *e;
		while ((e = readdir(d)) != NULL) {
			if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
				continue;
			char *p = st_join(dir, e->d_name);
			unlink(p);
			free(p);
		}
		closedir(d);
	}
	rmdir(dir);
	free(dir);
}

/* ---- writer ---- */

uint64_t st_rand(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

char *st_text(const crdt_doc *doc)
{
	size_t n = crdt_doc_text(doc, NULL, 0);
	char *s = xmalloc(n + 1);
	crdt_doc_text(doc, s, n + 1);
	s[n] = '\0';
	return s;
}

void st_writer_init(st_writer *w, const char *doc_id, crdt_replica replica)
{
	memset(w, 0, sizeof *w);
	snprintf(w->doc_id, sizeof w->doc_id, "%s", doc_id);
	w->doc = crdt_doc_new(replica, NULL);
	w->batch = crdt_batch_new(NULL);
	if (!w->doc || !w->batch)
		die("writer: out of memory");
	w->cap = 16;
	w->texts = calloc(w->cap, sizeof *w->texts);
	w->payloads = calloc(w->cap, sizeof *w->payloads);
	if (!w->texts || !w->payloads)
		die("writer: out of memory");
	w->texts[0] = xstrdup("");
}

void st_writer_free(st_writer *w)
{
	for (size_t i = 0; i <= w->seq && i < w->cap; i++) {
		free(w->texts[i]);
		wire_buf_free(&w->payloads[i]);
	}
	free(w->texts);
	free(w->payloads);
	crdt_batch_free(w->batch);
	crdt_doc_free(w->doc);
	memset(w, 0, sizeof *w);
}

/* Turn the ops in w->batch into change seq + 1. */
static store_change finish(st_writer *w)
{
	uint64_t seq = ++w->seq;
	if (seq >= w->cap) {
		size_t ncap = w->cap * 2;
		w->texts = realloc(w->texts, ncap * sizeof *w->texts);
		w->payloads = realloc(w->payloads, ncap * sizeof *w->payloads);
		if (!w->texts || !w->payloads)
			die("writer: out of memory");
		memset(w->texts + w->cap, 0, (ncap - w->cap) * sizeof *w->texts);
		memset(w->payloads + w->cap, 0, (ncap - w->cap) * sizeof *w->payloads);
		w->cap = ncap;
	}
	size_t n = crdt_batch_count(w->batch);
	crdt_op *ops = xmalloc(n * sizeof *ops);
	for (size_t i = 0; i < n; i++)
		ops[i] = *crdt_batch_get(w->batch, i);
	wire_buf *p = &w->payloads[seq];
	if (wire_ops_encode(ops, n, p) != WIRE_OK)
		die("writer: wire_ops_encode failed");
	free(ops);
	crdt_batch_clear(w->batch);
	w->texts[seq] = st_text(w->doc);
	crdt_replica r = crdt_doc_replica(w->doc);
	return (store_change){
		.doc_id = w->doc_id,
		.seq = seq,
		.replica = r,
		.counter_first = 0,
		.counter_count = 0,
		.author = "tester",
		.time_ms = 0,
		.payload = p->data,
		.payload_len = p->len,
	};
}

store_change st_insert(st_writer *w, size_t pos, const char *text)
{
	size_t len = crdt_doc_length(w->doc);
	if (pos > len)
		pos = len;
	uint32_t first = crdt_doc_seen(w->doc, crdt_doc_replica(w->doc));
	if (crdt_doc_insert(w->doc, pos, text, strlen(text), w->batch) != CRDT_OK)
		die("writer: insert failed");
	store_change c = finish(w);
	c.counter_first = first;
	c.counter_count = crdt_doc_seen(w->doc, crdt_doc_replica(w->doc)) - first;
	return c;
}

store_change st_delete(st_writer *w, size_t pos, size_t len)
{
	uint32_t first = crdt_doc_seen(w->doc, crdt_doc_replica(w->doc));
	if (crdt_doc_delete(w->doc, pos, len, w->batch) != CRDT_OK)
		die("writer: delete failed");
	store_change c = finish(w);
	c.counter_first = first;
	c.counter_count = crdt_doc_seen(w->doc, crdt_doc_replica(w->doc)) - first;
	return c;
}

store_change st_random_edit(st_writer *w, uint64_t *rng)
{
	static const char *const words[] = {"a",  "the ", "quire ", "é",   "日本",
					    "😀 ", "\n",	  "sync ",  "xyz", "ok."};
	size_t len = crdt_doc_length(w->doc);
	uint64_t r = st_rand(rng);
	if (len > 8 && r % 4 == 0) {
		size_t n = 1 + (size_t)(st_rand(rng) % 3);
		size_t pos = (size_t)(st_rand(rng) % (len - n + 1));
		return st_delete(w, pos, n);
	}
	size_t pos = (size_t)(st_rand(rng) % (len + 1));
	return st_insert(w, pos, words[st_rand(rng) % (sizeof words / sizeof *words)]);
}

int st_append_random(store *db, st_writer *w, size_t n, size_t per_batch, uint64_t *rng)
{
	store_change *cs = xmalloc(per_batch * sizeof *cs);
	int status = STORE_OK;
	size_t done = 0;
	while (done < n && status == STORE_OK) {
		size_t k = n - done < per_batch ? n - done : per_batch;
		for (size_t i = 0; i < k; i++)
			cs[i] = st_random_edit(w, rng);
		status = store_append(db, cs, k);
		done += k;
	}
	free(cs);
	return status;
}

/* ---- raw database access ---- */

static sqlite3 *raw_open(const char *path)
{
	sqlite3 *h = NULL;
	if (sqlite3_open_v2(path, &h, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
	    SQLITE_OK) {
		sqlite3_close(h);
		return NULL;
	}
	sqlite3_busy_timeout(h, 5000);
	return h;
}

int st_sql(const char *path, const char *sql)
{
	sqlite3 *h = raw_open(path);
	if (!h)
		return SQLITE_CANTOPEN;
	char *msg = NULL;
	int rc = sqlite3_exec(h, sql, NULL, NULL, &msg);
	if (rc != SQLITE_OK)
		fprintf(stderr, "st_sql(%s): %s\n", sql, msg ? msg : "?");
	sqlite3_free(msg);
	sqlite3_close(h);
	return rc;
}

int64_t st_sql_int(const char *path, const char *sql)
{
	sqlite3 *h = raw_open(path);
	if (!h)
		return INT64_MIN;
	sqlite3_stmt *st = NULL;
	int64_t v = INT64_MIN;
	if (sqlite3_prepare_v2(h, sql, -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(h);
	return v;
}

int st_get_snapshot(const char *path, const char *doc_id, uint64_t seq, uint8_t **data, size_t *len,
		    int64_t *raw_size)
{
	sqlite3 *h = raw_open(path);
	if (!h)
		return SQLITE_CANTOPEN;
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(h,
				    "SELECT zstd, raw_size FROM snapshots WHERE seq = ?2 AND doc = "
				    "(SELECT id FROM documents WHERE name = ?1)",
				    -1, &st, NULL);
	if (rc == SQLITE_OK) {
		sqlite3_bind_text(st, 1, doc_id, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, (int64_t)seq);
		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW) {
			*len = (size_t)sqlite3_column_bytes(st, 0);
			*data = xmalloc(*len);
			memcpy(*data, sqlite3_column_blob(st, 0), *len);
			if (raw_size)
				*raw_size = sqlite3_column_int64(st, 1);
			rc = SQLITE_OK;
		} else if (rc == SQLITE_DONE) {
			rc = SQLITE_NOTFOUND;
		}
	}
	sqlite3_finalize(st);
	sqlite3_close(h);
	return rc;
}

int st_set_snapshot(const char *path, const char *doc_id, uint64_t seq, const void *data,
		    size_t len, int64_t raw_size, int64_t checksum)
{
	sqlite3 *h = raw_open(path);
	if (!h)
		return SQLITE_CANTOPEN;
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(
		h,
		"UPDATE snapshots SET zstd = ?3, raw_size = ?4, checksum = ?5"
		" WHERE seq = ?2 AND doc = (SELECT id FROM documents WHERE name = ?1)",
		-1, &st, NULL);
	if (rc == SQLITE_OK) {
		sqlite3_bind_text(st, 1, doc_id, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, (int64_t)seq);
		sqlite3_bind_blob(st, 3, data, (int)len, SQLITE_STATIC);
		sqlite3_bind_int64(st, 4, raw_size);
		sqlite3_bind_int64(st, 5, checksum);
		rc = sqlite3_step(st);
		rc = rc == SQLITE_DONE && sqlite3_changes(h) == 1 ? SQLITE_OK : SQLITE_NOTFOUND;
	}
	sqlite3_finalize(st);
	sqlite3_close(h);
	return rc;
}

int st_flip_snapshot(const char *path, const char *doc_id, uint64_t seq, size_t off, uint8_t mask)
{
	uint8_t *data = NULL;
	size_t len = 0;
	int64_t raw = 0;
	int rc = st_get_snapshot(path, doc_id, seq, &data, &len, &raw);
	if (rc != SQLITE_OK)
		return rc;
	if (len > 0)
		data[off % len] ^= mask;
	/* keep the stored checksum: the damage must be detected */
	sqlite3 *h = raw_open(path);
	sqlite3_stmt *st = NULL;
	rc = h ? sqlite3_prepare_v2(h,
				    "UPDATE snapshots SET zstd = ?3 WHERE seq = ?2 AND doc = "
				    "(SELECT id FROM documents WHERE name = ?1)",
				    -1, &st, NULL)
	       : SQLITE_CANTOPEN;
	if (rc == SQLITE_OK) {
		sqlite3_bind_text(st, 1, doc_id, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, (int64_t)seq);
		sqlite3_bind_blob(st, 3, data, (int)len, SQLITE_STATIC);
		rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
	}
	sqlite3_finalize(st);
	sqlite3_close(h);
	free(data);
	return rc;
}

uint32_t st_crc32c(const void *data, size_t len)
{
	const uint8_t *p = data;
	uint32_t crc = 0xffffffffu;
	for (size_t i = 0; i < len; i++) {
		crc ^= p[i];
		for (int k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (0x82f63b78u & (0u - (crc & 1u)));
	}
	return ~crc;
}
