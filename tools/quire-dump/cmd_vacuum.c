/*
 * cmd_vacuum.c - `vacuum`: rewrite the database without its free pages and
 * switch it to incremental auto-vacuum (store_vacuum). Files made before
 * that became the default keep every page a trim frees, for reuse; after
 * this, trims give them back to the file system as new files do. It writes,
 * so main.c opens the database read-write for it; run it with the server
 * stopped (it needs the write lock for the whole rewrite).
 */
#include <inttypes.h>

#include "dump.h"

static const char *auto_vacuum_name(int v)
{
	return v == 0 ? "none" : v == 1 ? "full" : v == 2 ? "incremental" : "unknown";
}

int dump_cmd_vacuum(dump_ctx *c)
{
	store_vacuum_result r;
	int status = store_vacuum(c->db, &r);
	if (status != STORE_OK) {
		dump_error("vacuum of '%s' failed: %s%s", c->args->db_path, store_errmsg(c->db),
			   status == STORE_EBUSY ? " (is the server running? stop it first)" : "");
		return DUMP_FAIL;
	}
	if (c->json) {
		dump_json j;
		dump_json_init(&j, c->out);
		dump_json_obj(&j, NULL);
		dump_json_cstr(&j, "db", c->args->db_path);
		dump_json_u64(&j, "bytes_before", r.bytes_before);
		dump_json_u64(&j, "bytes_after", r.bytes_after);
		dump_json_cstr(&j, "auto_vacuum_was", auto_vacuum_name(r.auto_vacuum_was));
		dump_json_cstr(&j, "auto_vacuum", "incremental");
		dump_json_obj_end(&j);
		dump_json_eol(&j);
		return DUMP_OK;
	}
	fprintf(c->out,
		"vacuumed %s: %" PRIu64 " -> %" PRIu64 " bytes; auto_vacuum %s -> incremental\n",
		c->args->db_path, r.bytes_before, r.bytes_after,
		auto_vacuum_name(r.auto_vacuum_was));
	return DUMP_OK;
}
