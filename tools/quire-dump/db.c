/*
 * db.c - the database as the commands use it: opening it with clear
 * messages, finding a document, loading a document (reporting damaged
 * snapshots that were passed over), and comparing two documents.
 *
 * Every failure here prints ONE line on stderr (dump_error) that names the
 * document, the seq and the store's own reason, so the commands only
 * return DUMP_FAIL.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "dump.h"

/* A doc id quoted for a message: escaped, cut at 80 code points. */
typedef struct quoted {
	dump_sb sb;
} quoted;

static const char *quote(quoted *q, const char *doc_id)
{
	memset(q, 0, sizeof *q);
	dump_sb_escape(&q->sb, doc_id, strlen(doc_id), 80, NULL);
	return dump_sb_str(&q->sb);
}

/* Create the parent directory of path if it is missing (one level). */
static void make_parent(const char *path)
{
	const char *slash = strrchr(path, '/');
	if (!slash || slash == path)
		return;
	size_t n = (size_t)(slash - path);
	char *dir = malloc(n + 1);
	if (!dir)
		return;
	memcpy(dir, path, n);
	dir[n] = '\0';
	struct stat st;
	if (stat(dir, &st) != 0 && errno == ENOENT)
		(void)mkdir(dir, 0777); /* store_open reports what still fails */
	free(dir);
}

store *dump_db_open(const char *path, bool read_only)
{
	struct stat st;
	if (read_only) {
		if (stat(path, &st) != 0) {
			if (errno == ENOENT)
				dump_error("no database at '%s' (give --db PATH or set %s)", path,
					   DUMP_DB_ENV);
			else
				dump_error("cannot open database '%s': %s", path, strerror(errno));
			return NULL;
		}
		if (S_ISDIR(st.st_mode)) {
			dump_error("'%s' is a directory, not a database", path);
			return NULL;
		}
	} else if (stat(path, &st) != 0) {
		make_parent(path);
	}
	store_options opts;
	store_options_init(&opts);
	opts.read_only = read_only;
	store *db = NULL;
	char err[256];
	int status = store_open(path, &opts, &db, err, sizeof err);
	if (status != STORE_OK) {
		dump_error("cannot open database '%s': %s", path, err);
		return NULL;
	}
	return db;
}

int dump_doc_info(dump_ctx *c, const char *doc_id, store_doc_info *info)
{
	int status = store_doc_info_get(c->db, doc_id, info);
	if (status == STORE_OK)
		return DUMP_OK;
	quoted q;
	if (status == STORE_ENOTFOUND)
		dump_error("no document '%s' in %s", quote(&q, doc_id), c->args->db_path);
	else
		dump_error("cannot read document '%s': %s", quote(&q, doc_id),
			   store_errmsg(c->db)[0] ? store_errmsg(c->db) : store_strerror(status));
	dump_sb_free(&q.sb);
	return DUMP_FAIL;
}

int dump_load(dump_ctx *c, const char *doc_id, uint64_t seq, unsigned flags, bool quiet,
	      store_load_result *res)
{
	int status = store_load_at(c->db, doc_id, seq, flags, DUMP_READER_REPLICA, res);
	quoted q;
	const char *id = quote(&q, doc_id);
	int rc = DUMP_OK;
	if ((status == STORE_OK || status == STORE_ERANGE) && !res->exists) {
		crdt_doc_free(res->doc);
		res->doc = NULL;
		dump_error("no document '%s' in %s", id, c->args->db_path);
		rc = DUMP_FAIL;
	} else if (status != STORE_OK) {
		const char *why =
			store_errmsg(c->db)[0] ? store_errmsg(c->db) : store_strerror(status);
		if (status == STORE_ERANGE)
			dump_error("seq %" PRIu64 " is beyond the head of '%s' (%" PRIu64 ")", seq,
				   id, res->head_seq);
		else if (status == STORE_ENOBASE)
			dump_error("%s", why); /* names the seq, the damage, the log start */
		else if (status == STORE_ECORRUPT)
			dump_error("'%s' is damaged: %s", id, why);
		else
			dump_error("cannot load '%s': %s", id, why);
		rc = DUMP_FAIL;
	} else if (res->snapshots_skipped > 0 && !quiet) {
		dump_warn("snapshot %" PRIu64 " of '%s' is damaged (%s)%s; loaded from %s%" PRIu64
			  " + %" PRIu64 " changes of the log",
			  res->skipped_seq, id, res->skipped_reason,
			  res->snapshots_skipped > 1 ? " and older ones too" : "",
			  res->snapshot_seq ? "snapshot " : "seq ", res->snapshot_seq,
			  res->changes_applied);
	}
	dump_sb_free(&q.sb);
	return rc;
}

char *dump_doc_text(const crdt_doc *doc, size_t *len)
{
	size_t n = crdt_doc_utf8_bytes(doc);
	char *s = malloc(n + 1);
	if (!s)
		return NULL;
	size_t got = crdt_doc_text(doc, s, n + 1);
	if (got > n) { /* cannot happen: utf8_bytes is the text's size */
		free(s);
		return NULL;
	}
	s[got] = '\0';
	*len = got;
	return s;
}

bool dump_doc_vv(const crdt_doc *doc, crdt_vv_entry **vv, size_t *n)
{
	*vv = NULL;
	*n = crdt_doc_version(doc, NULL, 0);
	if (*n == 0)
		return true;
	if (!(*vv = malloc(*n * sizeof **vv)))
		return false;
	*n = crdt_doc_version(doc, *vv, *n);
	return true;
}

bool dump_docs_equal(const crdt_doc *a, const crdt_doc *b, char *why, size_t whylen)
{
	char ignored[8];
	if (!why) {
		why = ignored;
		whylen = sizeof ignored;
	}
	bool equal = false;
	size_t la = 0, lb = 0, na = 0, nb = 0;
	char *ta = dump_doc_text(a, &la), *tb = dump_doc_text(b, &lb);
	crdt_vv_entry *va = NULL, *vb = NULL;
	if (!ta || !tb || !dump_doc_vv(a, &va, &na) || !dump_doc_vv(b, &vb, &nb)) {
		snprintf(why, whylen, "out of memory comparing");
		goto done;
	}
	if (la != lb || memcmp(ta, tb, la) != 0) {
		size_t i = 0;
		while (i < la && i < lb && ta[i] == tb[i])
			i++;
		snprintf(why, whylen,
			 "texts differ (%zu and %zu bytes, first difference at byte %zu)", la, lb,
			 i);
		goto done;
	}
	if (na != nb) {
		snprintf(why, whylen, "version vectors differ (%zu and %zu replicas)", na, nb);
		goto done;
	}
	for (size_t i = 0; i < na; i++)
		if (va[i].replica != vb[i].replica || va[i].next != vb[i].next) {
			snprintf(why, whylen, "version vectors differ (entry %zu)", i);
			goto done;
		}
	equal = true;
done:
	free(ta);
	free(tb);
	free(va);
	free(vb);
	return equal;
}
