/*
 * cmd_log.c - `log DOC [--since SEQ] [--limit N]`: the changes in the log,
 * one per row (seq, sending replica, author, time, payload size and a
 * summary of the ops), or with --json one object per change holding every
 * op in full. Payloads are decoded with wire_ops_decode; one that does not
 * decode is shown as such and makes the exit status 1.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "dump.h"
#include "wire.h"

#define SUMMARY_WIDTH 72

/* Stored payloads passed the wire limits when the server took them, but an
 * import may hold bigger changes than a client may send: only the shape of
 * the ops is checked here. */
static const wire_limits payload_limits = {
	.max_message_bytes = (size_t)1 << 30,
	.max_ops = UINT32_MAX,
	.max_text_bytes = (size_t)1 << 30,
};

typedef struct log_state {
	dump_ctx *c;
	dump_table *table;
	dump_json j;
	crdt_batch *batch;
	dump_sb line, author;
	uint64_t rows;
	uint64_t bad; /* payloads that did not decode */
	uint64_t first_bad;
	int first_bad_status;
} log_state;

static void json_id(dump_json *j, const char *key, crdt_id id)
{
	dump_str r;
	dump_json_obj(j, key);
	dump_json_cstr(j, "replica", dump_fmt_replica(&r, id.replica));
	dump_json_u64(j, "counter", id.counter);
	dump_json_obj_end(j);
}

static void json_op(dump_json *j, const crdt_op *op)
{
	dump_json_obj(j, NULL);
	dump_json_cstr(j, "kind", op->kind == CRDT_OP_DELETE ? "del" : "ins");
	json_id(j, "id", op->id);
	dump_json_u64(j, "lamport", op->lamport);
	dump_json_u64(j, "len", op->len);
	if (op->kind == CRDT_OP_DELETE) {
		json_id(j, "target", op->target);
	} else {
		json_id(j, "left", op->left);
		json_id(j, "right", op->right);
		if (op->text)
			dump_json_str(j, "text", op->text, op->text_bytes);
		else
			dump_json_null(j, "text");
	}
	dump_json_obj_end(j);
}

static int on_change(void *ctx, const store_change_row *row)
{
	log_state *s = ctx;
	crdt_batch_clear(s->batch);
	int ws = wire_ops_decode(row->payload, row->payload_len, &payload_limits, s->batch);
	if (ws != WIRE_OK && s->bad++ == 0) {
		s->first_bad = row->seq;
		s->first_bad_status = ws;
	}
	dump_str rep, ts;
	dump_fmt_replica(&rep, row->replica);
	dump_fmt_time(&ts, row->time_ms);
	s->rows++;
	if (s->c->json) {
		dump_json *j = &s->j;
		dump_json_obj(j, NULL);
		dump_json_u64(j, "seq", row->seq);
		dump_json_cstr(j, "replica", rep.s);
		dump_json_u64(j, "counter_first", row->counter_first);
		dump_json_u64(j, "counter_count", row->counter_count);
		dump_json_cstr(j, "author", row->author);
		dump_json_i64(j, "time_ms", row->time_ms);
		dump_json_cstr(j, "time", row->time_ms > 0 ? ts.s : NULL);
		dump_json_u64(j, "payload_bytes", row->payload_len);
		if (ws == WIRE_OK) {
			dump_json_arr(j, "ops");
			for (size_t i = 0; i < crdt_batch_count(s->batch); i++)
				json_op(j, crdt_batch_get(s->batch, i));
			dump_json_arr_end(j);
		} else {
			dump_json_null(j, "ops");
			dump_json_cstr(j, "error", wire_strerror(ws));
		}
		dump_json_obj_end(j);
		dump_json_eol(j);
		return 0;
	}
	char seq[24], bytes[24];
	snprintf(seq, sizeof seq, "%" PRIu64, row->seq);
	snprintf(bytes, sizeof bytes, "%zu", row->payload_len);
	dump_sb_clear(&s->line);
	if (ws == WIRE_OK)
		dump_ops_summary(&s->line, s->batch, row->replica, SUMMARY_WIDTH);
	else
		dump_sb_addf(&s->line, "(does not decode: %s)", wire_strerror(ws));
	dump_sb_clear(&s->author);
	if (row->author)
		dump_sb_escape(&s->author, row->author, strlen(row->author), 32, NULL);
	const char *cells[] = {seq,  rep.s, row->author ? dump_sb_str(&s->author) : NULL,
			       ts.s, bytes, dump_sb_str(&s->line)};
	return dump_table_row(s->table, cells) ? 0 : 1;
}

static const dump_col cols[] = {
	{"seq", DUMP_RIGHT}, {"replica", DUMP_LEFT}, {"author", DUMP_LEFT},
	{"time", DUMP_LEFT}, {"bytes", DUMP_RIGHT},  {"ops", DUMP_LEFT},
};

/* The exit status for how the listing went; frees q. */
static int report(dump_ctx *c, int status, dump_sb *q, uint64_t after, const store_doc_info *info,
		  uint64_t bad, uint64_t first_bad, int bad_status)
{
	const char *doc_id = c->args->pos[0];
	int rc = DUMP_FAIL;
	if (status == STORE_ETRIMMED) {
		uint64_t start;
		if (store_log_start(c->db, doc_id, &start, NULL) != STORE_OK)
			start = info->log_start;
		dump_error("the log of '%s' starts at seq %" PRIu64
			   " (older changes were trimmed; their state is in snapshots): use "
			   "--since %" PRIu64 " or later",
			   dump_sb_str(q), start, start - 1);
	} else if (status == STORE_ERANGE) {
		dump_error("--since %" PRIu64 " is beyond the head of '%s' (%" PRIu64 ")", after,
			   dump_sb_str(q), info->head_seq);
	} else if (status == 1) {
		dump_error("out of memory");
	} else if (status != STORE_OK) {
		dump_error("cannot read the log of '%s': %s", dump_sb_str(q), store_errmsg(c->db));
	} else if (bad > 0) {
		dump_error("%" PRIu64 " change(s) of '%s' do not decode, the first at seq %" PRIu64
			   ": %s",
			   bad, dump_sb_str(q), first_bad, wire_strerror(bad_status));
	} else {
		rc = DUMP_OK;
	}
	dump_sb_free(q);
	return rc;
}

int dump_cmd_log(dump_ctx *c)
{
	const char *doc_id = c->args->pos[0];
	store_doc_info info;
	if (dump_doc_info(c, doc_id, &info) != DUMP_OK)
		return DUMP_FAIL;
	uint64_t after = c->args->has_since ? c->args->since : info.log_start - 1;
	uint64_t limit = c->args->has_limit ? c->args->limit : 0;
	if (c->args->has_limit && limit == 0)
		return DUMP_OK; /* --limit 0: nothing asked for */
	dump_sb q = {0};
	dump_sb_escape(&q, doc_id, strlen(doc_id), 80, NULL);
	int status = STORE_OK;
	/* Refuse before printing anything; store_changes checks again. */
	if (after > info.head_seq)
		status = STORE_ERANGE;
	else if (after + 1 < info.log_start)
		status = STORE_ETRIMMED;
	if (status != STORE_OK)
		return report(c, status, &q, after, &info, 0, 0, 0);

	log_state s = {.c = c};
	dump_json_init(&s.j, c->out);
	s.batch = crdt_batch_new(NULL);
	if (!s.batch || (!c->json && !(s.table = dump_table_new(c->out, cols, 6)))) {
		crdt_batch_free(s.batch);
		dump_sb_free(&q);
		dump_error("out of memory");
		return DUMP_FAIL;
	}
	status = store_changes(c->db, doc_id, after, limit, on_change, &s);
	dump_table_end(s.table);
	crdt_batch_free(s.batch);
	dump_sb_free(&s.line);
	dump_sb_free(&s.author);
	return report(c, status, &q, after, &info, s.bad, s.first_bad, s.first_bad_status);
}
