/*
 * fuzz_oppayload.c - libFuzzer target: a stored change payload.
 *
 * The input is an OpBatch, the payload storage keeps for each change and
 * the server reads back when it loads a document or serves a catch-up. It
 * is decoded with wire_ops_decode (default limits) and applied to a
 * document that already has content (fz_base_doc), with no pending room
 * and with a small pending list, every op checked as in fuzz_wire_client.
 * A payload that decodes is also spliced into a Changes message the way the
 * server serves catch-ups (wire_server_encode_changes, which does not
 * decode it): a client must decode the very same ops from it.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "fuzz_util.h"
#include "wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void apply_payload(const crdt_batch *ops, const crdt_options *opts)
{
	crdt_doc *doc = fz_base_doc(FZ_SELF, opts);
	fz_mirror m;
	fz_mirror_init(&m, doc);
	fz_apply_batch(doc, ops, &m);
	fz_check_replay(doc);
	fz_mirror_free(&m);
	crdt_doc_free(doc);
}

static int same_op(const crdt_op *a, const crdt_op *b)
{
	if (a->kind != b->kind || a->len != b->len || a->lamport != b->lamport ||
	    a->id.replica != b->id.replica || a->id.counter != b->id.counter)
		return 0;
	if (a->kind == CRDT_OP_DELETE)
		return a->target.replica == b->target.replica &&
		       a->target.counter == b->target.counter;
	return a->left.replica == b->left.replica && a->left.counter == b->left.counter &&
	       a->right.replica == b->right.replica && a->right.counter == b->right.counter &&
	       a->text_bytes == b->text_bytes && (a->text == NULL) == (b->text == NULL) &&
	       (!a->text || memcmp(a->text, b->text, a->text_bytes) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	crdt_batch *b = crdt_batch_new(NULL);
	FZ_CHECK(b);
	int rc = wire_ops_decode(data, size, NULL, b);
	FZ_CHECK(rc == WIRE_OK || rc == WIRE_EPARSE || rc == WIRE_EFIELD || rc == WIRE_EUTF8 ||
		 rc == WIRE_ETOOBIG);
	if (rc != WIRE_OK) {
		FZ_CHECK(crdt_batch_count(b) == 0); /* nothing appended on error */
		crdt_batch_free(b);
		return 0;
	}
	apply_payload(b, &fz_opts_strict);
	apply_payload(b, &fz_opts_pending);

	/* served as a catch-up: the same ops reach the client */
	if (crdt_batch_count(b) > 0) {
		wire_change c = {7, data, size};
		size_t csize = wire_change_size(&c);
		FZ_CHECK(csize > 0);
		wire_buf out = {0};
		FZ_CHECK(wire_server_encode_changes(&out, 1, &c, 1) == WIRE_OK);
		FZ_CHECK(out.len <= csize + 2 + 2 * 10);
		wire_server_msg *sm = wire_server_msg_new(NULL);
		FZ_CHECK(sm);
		wire_limits lim = wire_default_limits;
		lim.max_message_bytes = out.len + 1;
		FZ_CHECK(wire_server_decode(sm, out.data, out.len, &lim) == WIRE_OK);
		FZ_CHECK(sm->kind == WIRE_SERVER_CHANGES && sm->n_changes == 1 && sm->seqs[0] == 7);
		FZ_CHECK(crdt_batch_count(sm->ops) == crdt_batch_count(b));
		for (size_t i = 0; i < crdt_batch_count(b); i++)
			FZ_CHECK(same_op(crdt_batch_get(b, i), crdt_batch_get(sm->ops, i)));
		wire_server_msg_free(sm);
		wire_buf_free(&out);
	}
	crdt_batch_free(b);
	return 0;
}
