/*
 * opsum.c - one-line summaries of the ops of a stored change, for `log`.
 *
 *   ins 3 @17 'abc'                 insert of 3 code points, id (sender, 17)
 *   ins 1 @a1b2c3d4e5f60718:3 'x'   the same for another replica's op
 *   ins 5 @40 (collected)           content deleted before it was sent
 *   del 2 of @5                     delete of counters 5..6 of the sender
 *   ins 1 @17 'a'; del 1 of @3      several ops, "; "-separated
 *
 * Inserted text is escaped (dump_sb_escape) and cut at TEXT_CP code points;
 * ops that would take the summary past max_width columns are counted
 * instead: "ins 1 @17 'a'; +41 ops". The first op is always shown.
 */
#include <inttypes.h>
#include <string.h>

#include "dump.h"

#define TEXT_CP 16 /* code points of inserted text shown per op */

static void add_id(dump_sb *b, crdt_id id, crdt_replica sender)
{
	if (id.replica == sender)
		dump_sb_addf(b, "@%" PRIu32, id.counter);
	else
		dump_sb_addf(b, "@%016" PRIx64 ":%" PRIu32, (uint64_t)id.replica, id.counter);
}

static void add_op(dump_sb *b, const crdt_op *op, crdt_replica sender)
{
	if (op->kind == CRDT_OP_DELETE) {
		dump_sb_addf(b, "del %" PRIu32 " of ", op->len);
		add_id(b, op->target, sender);
		return;
	}
	dump_sb_addf(b, "ins %" PRIu32 " ", op->len);
	add_id(b, op->id, sender);
	if (!op->text) {
		dump_sb_add(b, " (collected)", 12);
		return;
	}
	dump_sb_add(b, " '", 2);
	dump_sb_escape(b, op->text, op->text_bytes, TEXT_CP, NULL);
	dump_sb_add(b, "'", 1);
}

void dump_ops_summary(dump_sb *b, const crdt_batch *ops, crdt_replica sender, size_t max_width)
{
	size_t n = crdt_batch_count(ops);
	if (n == 0) {
		dump_sb_add(b, "(no ops)", 8);
		return;
	}
	dump_sb one = {0};
	size_t width = 0;
	for (size_t i = 0; i < n; i++) {
		dump_sb_clear(&one);
		if (i > 0)
			dump_sb_add(&one, "; ", 2);
		add_op(&one, crdt_batch_get(ops, i), sender);
		const char *s = dump_sb_str(&one);
		size_t w = dump_display_width(s, strlen(s));
		/* Room for this op, or for the "(+N ops)" tail if others follow. */
		size_t tail = i + 1 < n ? 16 : 0;
		if (i > 0 && width + w + tail > max_width) {
			dump_sb_addf(b, "; +%zu ops", n - i);
			break;
		}
		dump_sb_add(b, s, strlen(s));
		width += w;
	}
	dump_sb_free(&one);
}
