/*
 * cmd_list.c - `list [--quick]`: one row per document with its head, live
 * length, log range, newest snapshot and last change time.
 *
 * The live length needs the document: by default each one is loaded at its
 * head (the newest snapshot plus at most a policy's worth of changes, so
 * the cost is about one snapshot decode per document). --quick decodes the
 * newest snapshot alone and reports the length at that snapshot's seq;
 * the len_seq column always says which seq a length belongs to.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "dump.h"

typedef struct doc_list {
	store_doc_info *v;
	size_t n, cap;
	bool oom;
} doc_list;

static int collect(void *ctx, const store_doc_info *info)
{
	doc_list *l = ctx;
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		store_doc_info *v = realloc(l->v, cap * sizeof *v);
		if (!v) {
			l->oom = true;
			return 1;
		}
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = *info;
	return 0;
}

/* The live length of a document and the seq it is measured at. Returns
 * false (after a message) when the document cannot be loaded. */
static bool live_length(dump_ctx *c, const store_doc_info *info, size_t *len, uint64_t *at)
{
	if (c->args->quick && info->snapshot_seq > 0) {
		crdt_doc *doc = NULL;
		if (store_snapshot_check(c->db, info->doc_id, info->snapshot_seq,
					 DUMP_READER_REPLICA, &doc) == STORE_OK) {
			*len = crdt_doc_length(doc);
			*at = info->snapshot_seq;
			crdt_doc_free(doc);
			return true;
		}
		/* Damaged: the full load below passes over it and says so. */
	}
	store_load_result res;
	if (dump_load(c, info->doc_id, STORE_HEAD, 0, false, &res) != DUMP_OK)
		return false;
	*len = crdt_doc_length(res.doc);
	*at = res.seq;
	crdt_doc_free(res.doc);
	return true;
}

static const dump_col cols[] = {
	{"doc", DUMP_LEFT},	  {"head", DUMP_RIGHT},	      {"length", DUMP_RIGHT},
	{"len_seq", DUMP_RIGHT},  {"log", DUMP_RIGHT},	      {"log_start", DUMP_RIGHT},
	{"snap_seq", DUMP_RIGHT}, {"snap_bytes", DUMP_RIGHT}, {"snap_raw", DUMP_RIGHT},
	{"updated", DUMP_LEFT},
};
#define NCOLS (int)(sizeof cols / sizeof cols[0])

int dump_cmd_list(dump_ctx *c)
{
	doc_list l = {0};
	int status = store_docs(c->db, collect, &l);
	if (l.oom || (status != STORE_OK && status != 1)) {
		dump_error("cannot list the documents: %s",
			   l.oom ? "out of memory" : store_errmsg(c->db));
		free(l.v);
		return DUMP_FAIL;
	}
	int rc = DUMP_OK;
	dump_table *t = NULL;
	if (!c->json && !(t = dump_table_new(c->out, cols, NCOLS))) {
		free(l.v);
		dump_error("out of memory");
		return DUMP_FAIL;
	}
	dump_json j;
	dump_json_init(&j, c->out);
	dump_sb id = {0};
	for (size_t i = 0; i < l.n; i++) {
		const store_doc_info *d = &l.v[i];
		size_t len = 0;
		uint64_t at = 0;
		bool have_len = live_length(c, d, &len, &at);
		if (!have_len)
			rc = DUMP_FAIL;
		dump_str ts;
		dump_fmt_time(&ts, d->updated_ms);
		if (c->json) {
			dump_json_obj(&j, NULL);
			dump_json_doc_id(&j, d->doc_id);
			dump_json_u64(&j, "head_seq", d->head_seq);
			if (have_len) {
				dump_json_u64(&j, "length", len);
				dump_json_u64(&j, "length_seq", at);
			} else {
				dump_json_null(&j, "length");
				dump_json_null(&j, "length_seq");
			}
			dump_json_u64(&j, "log_changes", d->log_changes);
			dump_json_u64(&j, "log_start", d->log_start);
			dump_json_u64(&j, "log_bytes", d->log_bytes);
			dump_json_u64(&j, "snapshots", d->snapshots);
			dump_json_u64(&j, "snapshot_seq", d->snapshot_seq);
			dump_json_u64(&j, "snapshot_bytes", d->snapshot_bytes);
			dump_json_u64(&j, "snapshot_raw_bytes", d->snapshot_raw_bytes);
			dump_json_i64(&j, "created_ms", d->created_ms);
			dump_json_i64(&j, "updated_ms", d->updated_ms);
			if (d->updated_ms > 0)
				dump_json_cstr(&j, "updated", ts.s);
			else
				dump_json_null(&j, "updated");
			dump_json_obj_end(&j);
			dump_json_eol(&j);
			continue;
		}
		char num[8][24];
		snprintf(num[0], sizeof num[0], "%" PRIu64, d->head_seq);
		snprintf(num[1], sizeof num[1], "%zu", len);
		snprintf(num[2], sizeof num[2], "%" PRIu64, at);
		if (!have_len) {
			strcpy(num[1], "?");
			strcpy(num[2], "?");
		}
		snprintf(num[3], sizeof num[3], "%" PRIu64, d->log_changes);
		snprintf(num[4], sizeof num[4], "%" PRIu64, d->log_start);
		snprintf(num[5], sizeof num[5], "%" PRIu64, d->snapshot_seq);
		snprintf(num[6], sizeof num[6], "%" PRIu64, d->snapshot_bytes);
		snprintf(num[7], sizeof num[7], "%" PRIu64, d->snapshot_raw_bytes);
		bool snap = d->snapshot_seq > 0;
		dump_sb_clear(&id);
		dump_sb_escape(&id, d->doc_id, strlen(d->doc_id), 60, NULL);
		const char *row[NCOLS] = {dump_sb_str(&id),
					  num[0],
					  num[1],
					  num[2],
					  num[3],
					  num[4],
					  snap ? num[5] : NULL,
					  snap ? num[6] : NULL,
					  snap ? num[7] : NULL,
					  ts.s};
		if (!dump_table_row(t, row)) {
			dump_error("out of memory");
			rc = DUMP_FAIL;
			break;
		}
	}
	dump_table_end(t);
	dump_sb_free(&id);
	free(l.v);
	return rc;
}
