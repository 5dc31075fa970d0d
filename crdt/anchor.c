/*
 * anchor.c - carets as ids: a position becomes "just after unit X", which
 * survives concurrent edits, and back. Presence (remote carets) uses these.
 */
#include "internal.h"

int crdt_doc_anchor_at(const crdt_doc *d, size_t pos, crdt_id *anchor)
{
	if (pos > d->vis_len)
		return CRDT_ERANGE;
	if (pos == 0) {
		*anchor = CRDT_NO_ID;
		return CRDT_OK;
	}
	cursor c = tree_find_vis_const(d, (uint32_t)pos - 1);
	*anchor = idmap_id(d, c.leaf->items[c.idx].lv + c.off);
	return CRDT_OK;
}

int crdt_doc_anchor_pos(const crdt_doc *d, crdt_id anchor, size_t *pos)
{
	if (anchor.replica == CRDT_NO_REPLICA) {
		*pos = 0;
		return CRDT_OK;
	}
	int rep = idmap_rep_find(d, anchor.replica);
	uint32_t lv;
	const idrun *run = rep < 0 ? NULL : idmap_find(d, (uint32_t)rep, anchor.counter, &lv);
	if (!run)
		return CRDT_EMISSING;
	if (run->kind != CRDT_OP_INSERT)
		return CRDT_EINVAL;
	cursor c = tree_find_lv(d, lv);
	/* visible units before the unit, plus the unit itself when live */
	*pos = tree_pos_vis(d, c) + (ITEM_LIVE(&c.leaf->items[c.idx]) ? 1u : 0u);
	return CRDT_OK;
}
