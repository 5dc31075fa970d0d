/*
 * cmd_stats.c - `stats DOC [--at SEQ]`: what a document costs. In memory:
 * the loaded document's crdt_doc_stats (runs, tombstones, replicas, maps,
 * tree shape, bytes from the allocator) and its version vector. On disk:
 * the log (changes, payload bytes), the snapshots (count, newest, bytes
 * compressed and raw, of the newest and of all) and the database file.
 * Tables print "name  value" lines; --json one object.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "dump.h"

#define VV_SHOWN 20 /* version-vector entries listed in the table output */

typedef struct snap_totals {
	uint64_t count, stored, raw;
	uint64_t oldest;
} snap_totals;

static int add_snapshot(void *ctx, const store_snapshot_info *info)
{
	snap_totals *t = ctx;
	t->count++;
	t->stored += info->stored_bytes;
	t->raw += info->raw_bytes;
	t->oldest = info->seq; /* listed newest first */
	return 0;
}

static void kv(FILE *f, const char *name, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void kv(FILE *f, const char *name, const char *fmt, ...)
{
	fprintf(f, "%-22s ", name);
	va_list ap;
	va_start(ap, fmt);
	vfprintf(f, fmt, ap);
	va_end(ap);
	fputc('\n', f);
}

int dump_cmd_stats(dump_ctx *c)
{
	const char *doc_id = c->args->pos[0];
	store_doc_info info;
	if (dump_doc_info(c, doc_id, &info) != DUMP_OK)
		return DUMP_FAIL;
	snap_totals snaps = {0};
	if (store_snapshots(c->db, doc_id, add_snapshot, &snaps) != STORE_OK) {
		dump_error("cannot list the snapshots: %s", store_errmsg(c->db));
		return DUMP_FAIL;
	}
	uint64_t db_bytes = store_db_bytes(c->db);
	store_load_result res;
	uint64_t seq = c->args->has_at ? c->args->at : STORE_HEAD;
	if (dump_load(c, doc_id, seq, 0, false, &res) != DUMP_OK)
		return DUMP_FAIL;
	crdt_stats st;
	crdt_doc_stats(res.doc, &st);
	crdt_vv_entry *vv;
	size_t nvv;
	if (!dump_doc_vv(res.doc, &vv, &nvv)) {
		crdt_doc_free(res.doc);
		dump_error("out of memory");
		return DUMP_FAIL;
	}
	uint32_t clock = crdt_doc_clock(res.doc);
	crdt_doc_free(res.doc);

	FILE *f = c->out;
	dump_str a, b, r;
	if (c->json) {
		dump_json j;
		dump_json_init(&j, f);
		dump_json_obj(&j, NULL);
		dump_json_doc_id(&j, doc_id);
		dump_json_u64(&j, "seq", res.seq);
		dump_json_u64(&j, "head_seq", res.head_seq);
		dump_json_obj(&j, "loaded");
		dump_json_u64(&j, "snapshot_seq", res.snapshot_seq);
		dump_json_u64(&j, "changes_applied", res.changes_applied);
		dump_json_u64(&j, "snapshots_skipped", res.snapshots_skipped);
		dump_json_obj_end(&j);
		dump_json_obj(&j, "crdt");
		dump_json_u64(&j, "length", st.length);
		dump_json_u64(&j, "utf8_bytes", st.utf8_bytes);
		dump_json_u64(&j, "units", st.units);
		dump_json_u64(&j, "deleted_units", st.deleted_units);
		dump_json_u64(&j, "items", st.items);
		dump_json_u64(&j, "tombstone_items", st.tombstone_items);
		dump_json_u64(&j, "replicas", st.replicas);
		dump_json_u64(&j, "id_runs", st.id_runs);
		dump_json_u64(&j, "delete_runs", st.delete_runs);
		dump_json_u64(&j, "leaves", st.leaves);
		dump_json_u64(&j, "depth", st.depth);
		dump_json_u64(&j, "memory_bytes", st.memory_bytes);
		dump_json_u64(&j, "clock", clock);
		dump_json_obj_end(&j);
		dump_json_arr(&j, "version_vector");
		for (size_t i = 0; i < nvv; i++) {
			dump_json_obj(&j, NULL);
			dump_json_cstr(&j, "replica", dump_fmt_replica(&r, vv[i].replica));
			dump_json_u64(&j, "next", vv[i].next);
			dump_json_obj_end(&j);
		}
		dump_json_arr_end(&j);
		dump_json_obj(&j, "disk");
		dump_json_u64(&j, "log_start", info.log_start);
		dump_json_u64(&j, "log_changes", info.log_changes);
		dump_json_u64(&j, "log_bytes", info.log_bytes);
		dump_json_u64(&j, "snapshots", snaps.count);
		dump_json_u64(&j, "snapshot_seq", info.snapshot_seq);
		dump_json_u64(&j, "snapshot_bytes", info.snapshot_bytes);
		dump_json_u64(&j, "snapshot_raw_bytes", info.snapshot_raw_bytes);
		dump_json_u64(&j, "snapshots_bytes", snaps.stored);
		dump_json_u64(&j, "snapshots_raw_bytes", snaps.raw);
		dump_json_u64(&j, "changes_since_snapshot", info.changes_since_snapshot);
		dump_json_u64(&j, "bytes_since_snapshot", info.bytes_since_snapshot);
		dump_json_u64(&j, "database_bytes", db_bytes);
		dump_json_obj_end(&j);
		dump_json_i64(&j, "created_ms", info.created_ms);
		dump_json_i64(&j, "updated_ms", info.updated_ms);
		dump_json_obj_end(&j);
		dump_json_eol(&j);
		free(vv);
		return DUMP_OK;
	}

	dump_sb id = {0};
	dump_sb_escape(&id, doc_id, strlen(doc_id), 0, NULL);
	kv(f, "document", "%s", dump_sb_str(&id));
	dump_sb_free(&id);
	kv(f, "seq", "%" PRIu64 " (head %" PRIu64 ")", res.seq, res.head_seq);
	if (res.snapshot_seq)
		kv(f, "loaded from", "snapshot %" PRIu64 " + %" PRIu64 " changes", res.snapshot_seq,
		   res.changes_applied);
	else
		kv(f, "loaded from", "the log alone, %" PRIu64 " changes", res.changes_applied);
	kv(f, "created", "%s", dump_fmt_time(&a, info.created_ms));
	kv(f, "last change", "%s", dump_fmt_time(&a, info.updated_ms));
	fputs("in memory\n", f);
	kv(f, "  length", "%zu code points, %zu bytes", st.length, st.utf8_bytes);
	kv(f, "  units", "%zu inserted, %zu deleted", st.units, st.deleted_units);
	kv(f, "  runs (items)", "%zu, of which %zu tombstones", st.items, st.tombstone_items);
	kv(f, "  id-map runs", "%zu", st.id_runs);
	kv(f, "  delete-log runs", "%zu", st.delete_runs);
	kv(f, "  tree", "%zu leaves, depth %zu", st.leaves, st.depth);
	kv(f, "  memory", "%s", dump_fmt_bytes(&a, st.memory_bytes));
	kv(f, "  clock", "%" PRIu32, clock);
	kv(f, "  replicas", "%zu known, %zu in the version vector", st.replicas, nvv);
	for (size_t i = 0; i < nvv && i < VV_SHOWN; i++)
		kv(f, i == 0 ? "  version vector" : "", "%s next %" PRIu32,
		   dump_fmt_replica(&r, vv[i].replica), vv[i].next);
	if (nvv > VV_SHOWN)
		kv(f, "", "... and %zu more (--json lists all)", nvv - VV_SHOWN);
	fputs("on disk\n", f);
	if (info.log_changes)
		kv(f, "  log", "%" PRIu64 " changes (seq %" PRIu64 "..%" PRIu64 "), %s",
		   info.log_changes, info.log_start, info.head_seq,
		   dump_fmt_bytes(&a, info.log_bytes));
	else
		kv(f, "  log", "empty (starts at %" PRIu64 ")", info.log_start);
	kv(f, "  snapshots", "%" PRIu64, snaps.count);
	if (snaps.count) {
		kv(f, "  newest snapshot", "seq %" PRIu64 ", %s compressed, %s raw",
		   info.snapshot_seq, dump_fmt_bytes(&a, info.snapshot_bytes),
		   dump_fmt_bytes(&b, info.snapshot_raw_bytes));
		kv(f, "  all snapshots", "seq %" PRIu64 "..%" PRIu64 ", %s compressed, %s raw",
		   snaps.oldest, info.snapshot_seq, dump_fmt_bytes(&a, snaps.stored),
		   dump_fmt_bytes(&b, snaps.raw));
	}
	kv(f, "  since snapshot", "%" PRIu64 " changes, %s", info.changes_since_snapshot,
	   dump_fmt_bytes(&a, info.bytes_since_snapshot));
	kv(f, "  database file", "%s (all documents)", dump_fmt_bytes(&a, db_bytes));
	free(vv);
	return DUMP_OK;
}
