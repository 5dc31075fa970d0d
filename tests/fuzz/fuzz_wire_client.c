/*
 * fuzz_wire_client.c - libFuzzer target: one WebSocket frame from a client.
 *
 * The input is a ClientMessage. It is decoded with wire_client_decode under
 * tight limits (as the server does); an Update's ops are then applied to a
 * live document with history (fz_base_doc), once with no pending room (ops
 * with unknown dependencies refused) and once with a small pending list.
 * After every op crdt_doc_check must pass, a refused op must leave the
 * document as it was, the text mirrored from the patches must equal the
 * document's, and a fresh replica fed the document's ops_since must reach
 * the same state. Any failure aborts; leaks are reported by LeakSanitizer.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const wire_limits limits = {64 * 1024, 256, 16 * 1024};

static void apply_update(const crdt_batch *ops, const crdt_options *opts)
{
	crdt_doc *doc = fz_base_doc(FZ_SELF, opts);
	fz_mirror m;
	fz_mirror_init(&m, doc);
	fz_apply_batch(doc, ops, &m);
	/* whatever was refused or held, what applied is a consistent state */
	fz_check_replay(doc);
	/* and the document stays editable */
	int rc = crdt_doc_insert(doc, 0, "z", 1, NULL);
	FZ_CHECK(rc == CRDT_OK || rc == CRDT_ELIMIT);
	FZ_CHECK(crdt_doc_check(doc) == CRDT_OK);
	fz_mirror_free(&m);
	crdt_doc_free(doc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	wire_client_msg *m = wire_client_msg_new(NULL);
	FZ_CHECK(m);
	int rc = wire_client_decode(m, data, size, &limits);
	FZ_CHECK(rc == WIRE_OK || rc == WIRE_EPARSE || rc == WIRE_EFIELD || rc == WIRE_EUTF8 ||
		 rc == WIRE_ETOOBIG || rc == WIRE_EVERSION);
	if (rc == WIRE_OK && m->kind == WIRE_CLIENT_UPDATE) {
		FZ_CHECK(m->client_batch >= 1 && m->ops && crdt_batch_count(m->ops) >= 1);
		FZ_CHECK(crdt_batch_count(m->ops) <= m->n_ops && m->n_ops <= limits.max_ops);
		apply_update(m->ops, &fz_opts_strict);
		apply_update(m->ops, &fz_opts_pending);

		/* what decodes re-encodes (the encoder checks the same shape) and
		 * decodes to the same ops */
		wire_buf out = {0};
		size_t n = crdt_batch_count(m->ops);
		crdt_op *ops = malloc(n * sizeof *ops);
		FZ_CHECK(ops);
		for (size_t i = 0; i < n; i++)
			ops[i] = *crdt_batch_get(m->ops, i);
		FZ_CHECK(wire_client_encode_update(&out, m->doc, m->client_batch, ops, n) ==
			 WIRE_OK);
		free(ops);
		wire_client_msg *m2 = wire_client_msg_new(NULL);
		FZ_CHECK(m2);
		FZ_CHECK(wire_client_decode(m2, out.data, out.len, &limits) == WIRE_OK);
		FZ_CHECK(m2->kind == WIRE_CLIENT_UPDATE && m2->doc == m->doc &&
			 m2->client_batch == m->client_batch);
		FZ_CHECK(crdt_batch_count(m2->ops) == n);
		for (size_t i = 0; i < n; i++) {
			const crdt_op *a = crdt_batch_get(m->ops, i),
				      *b = crdt_batch_get(m2->ops, i);
			FZ_CHECK(a->kind == b->kind && a->len == b->len &&
				 a->lamport == b->lamport && a->id.replica == b->id.replica &&
				 a->id.counter == b->id.counter && a->text_bytes == b->text_bytes &&
				 (a->text == NULL) == (b->text == NULL));
			FZ_CHECK(!a->text || memcmp(a->text, b->text, a->text_bytes) == 0);
		}
		wire_client_msg_free(m2);
		wire_buf_free(&out);
	}
	wire_client_msg_free(m);
	return 0;
}
