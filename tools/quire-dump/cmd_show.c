/*
 * cmd_show.c - `show DOC [--at SEQ]`: the text of a document at its head
 * or at any earlier seq that a snapshot plus the log (or the log alone)
 * still covers (store_load_at). The text goes to stdout byte for byte,
 * with nothing added; --json wraps it with where it was loaded from.
 */
#include <stdlib.h>

#include "dump.h"

int dump_cmd_show(dump_ctx *c)
{
	const char *doc_id = c->args->pos[0];
	uint64_t seq = c->args->has_at ? c->args->at : STORE_HEAD;
	store_load_result res;
	if (dump_load(c, doc_id, seq, 0, false, &res) != DUMP_OK)
		return DUMP_FAIL;
	size_t len;
	char *text = dump_doc_text(res.doc, &len);
	if (!text) {
		crdt_doc_free(res.doc);
		dump_error("out of memory for the text");
		return DUMP_FAIL;
	}
	if (c->json) {
		dump_json j;
		dump_json_init(&j, c->out);
		dump_json_obj(&j, NULL);
		dump_json_doc_id(&j, doc_id);
		dump_json_u64(&j, "seq", res.seq);
		dump_json_u64(&j, "head_seq", res.head_seq);
		dump_json_u64(&j, "snapshot_seq", res.snapshot_seq);
		dump_json_u64(&j, "changes_applied", res.changes_applied);
		dump_json_u64(&j, "snapshots_skipped", res.snapshots_skipped);
		dump_json_u64(&j, "length", crdt_doc_length(res.doc));
		dump_json_u64(&j, "bytes", len);
		dump_json_str(&j, "text", text, len);
		dump_json_obj_end(&j);
		dump_json_eol(&j);
	} else {
		fwrite(text, 1, len, c->out);
	}
	free(text);
	crdt_doc_free(res.doc);
	return DUMP_OK;
}
