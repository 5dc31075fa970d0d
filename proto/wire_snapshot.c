/*
 * wire_snapshot.c - the Snapshot container around the engine's snapshot.
 *
 * A Snapshot message carries the engine's own format (crdt_doc_encode) in
 * `state` plus what is needed to use it without decoding it first: the
 * format version, the document id, the seq it stands for, and the version
 * vector. Decoding cross-checks all of them: the container's format must be
 * one the engine speaks and equal the state's first byte, the doc id must be
 * the one asked for, and the decoded document's version vector must equal
 * the container's, so a snapshot filed under the wrong document or damaged
 * in a way the engine's own hash cannot see is refused.
 */
#include <stdlib.h>
#include <string.h>

#include "wire_internal.h"

int wire_snapshot_encode(const crdt_doc *doc, const char *doc_id, uint64_t seq, wire_buf *out)
{
	size_t id_len = doc_id ? strlen(doc_id) : 0;
	if (doc == NULL || !wire_doc_id_valid(doc_id, id_len))
		return WIRE_EFIELD;
	size_t n_vv = crdt_doc_version(doc, NULL, 0);
	size_t cap = crdt_doc_encode_bound(doc);
	crdt_vv_entry *vv = n_vv ? malloc(n_vv * sizeof *vv) : NULL;
	uint8_t *state = malloc(cap ? cap : 1);
	int rc = WIRE_ENOMEM;
	if ((n_vv && vv == NULL) || state == NULL)
		goto out;
	crdt_doc_version(doc, vv, n_vv);
	size_t state_len = 0;
	int r = crdt_doc_encode(doc, state, cap, &state_len);
	if (r != CRDT_OK) {
		rc = r == CRDT_ENOMEM ? WIRE_ENOMEM : WIRE_EFIELD;
		goto out;
	}

	size_t size = wire__u64_field_size(1, CRDT_SNAPSHOT_VERSION) +
		      wire__str_field_size(2, id_len) + wire__u64_field_size(3, seq) +
		      wire__str_field_size(5, state_len);
	for (size_t i = 0; i < n_vv; i++)
		size += wire__len_field_size(4, wire__u64_field_size(1, vv[i].replica) +
							wire__u64_field_size(2, vv[i].next));
	if (wire__buf_reserve(out, size) != WIRE_OK)
		goto out;
	uint8_t *p = out->data + out->len;
	p = wire__put_u64_field(p, 1, CRDT_SNAPSHOT_VERSION);
	p = wire__put_str_field(p, 2, doc_id, id_len);
	p = wire__put_u64_field(p, 3, seq);
	for (size_t i = 0; i < n_vv; i++) {
		size_t body = wire__u64_field_size(1, vv[i].replica) +
			      wire__u64_field_size(2, vv[i].next);
		p = wire__put_len_header(p, 4, body);
		p = wire__put_u64_field(p, 1, vv[i].replica);
		p = wire__put_u64_field(p, 2, vv[i].next);
	}
	p = wire__put_str_field(p, 5, state, state_len);
	out->len = (size_t)(p - out->data);
	rc = WIRE_OK;
out:
	free(vv);
	free(state);
	return rc;
}

/* Does the decoded document have exactly the container's version vector? */
static int version_matches(const crdt_doc *doc, const Quire__V1__Snapshot *s)
{
	size_t n = crdt_doc_version(doc, NULL, 0);
	if (n != s->n_version)
		return WIRE_EFIELD;
	for (size_t i = 0; i < n; i++) {
		const Quire__V1__VersionEntry *e = s->version[i];
		if (e->replica == CRDT_NO_REPLICA || e->next > CRDT_MAX_COUNTER ||
		    crdt_doc_seen(doc, e->replica) != e->next)
			return WIRE_EFIELD;
		if (i > 0 && e->replica <= s->version[i - 1]->replica)
			return WIRE_EFIELD; /* sorted, no repeats: n entries, n replicas */
	}
	return WIRE_OK;
}

/*
 * The message without its `state` fields, in *rest (allocated, *rest_len
 * bytes), and the last state (the one protobuf keeps) as a slice of data:
 * unpacking copies every bytes field, and the state is nearly all of the
 * message, so it is decoded where it lies instead. 0, or -1 when the input
 * does not parse here (the caller then unpacks it whole, which says why)
 * or when out of memory.
 */
static int is_state(const wire__field *f) { return f->number == 5 && f->type == WIRE__LEN; }

static int split_state(const crdt_allocator *al, const uint8_t *data, size_t len, uint8_t **rest,
		       size_t *rest_len, const uint8_t **state, size_t *state_len)
{
	*rest = NULL;
	*rest_len = *state_len = 0;
	*state = NULL;
	if (data == NULL || len == 0)
		return -1;
	wire__reader r = {data, data + len};
	wire__field f;
	size_t keep = len;
	const uint8_t *start = r.p;
	int k;
	while ((k = wire__next_field(&r, &f)) == 1) {
		if (is_state(&f)) {
			*state = f.data;
			*state_len = f.len;
			keep -= (size_t)(r.p - start);
		}
		start = r.p;
	}
	if (k != 0 || *state == NULL)
		return -1;
	uint8_t *out = wire__alloc(al, keep ? keep : 1);
	if (out == NULL)
		return -1;
	/* the same walk again, copying every other field as it is */
	size_t n = 0;
	r = (wire__reader){data, data + len};
	start = r.p;
	while (wire__next_field(&r, &f) == 1) {
		if (!is_state(&f)) {
			memcpy(out + n, start, (size_t)(r.p - start));
			n += (size_t)(r.p - start);
		}
		start = r.p;
	}
	*rest = out;
	*rest_len = n;
	return 0;
}

int wire_snapshot_decode(const uint8_t *data, size_t len, const char *doc_id, crdt_replica replica,
			 const crdt_options *opts, crdt_doc **doc, uint64_t *seq, int *crdt_status)
{
	/* A snapshot is as large as its document: storage bounds it, not us. */
	static const wire_limits lim = {SIZE_MAX, 0, 0};
	*doc = NULL;
	if (crdt_status)
		*crdt_status = CRDT_OK;
	const crdt_allocator *al = opts ? opts->allocator : NULL;
	wire__arena a;
	wire__arena_init(&a, al);
	uint8_t *rest = NULL;
	size_t rest_len = 0;
	const uint8_t *state = NULL;
	size_t state_len = 0;
	ProtobufCMessage *msg;
	int rc;
	if (split_state(al, data, len, &rest, &rest_len, &state, &state_len) != 0) {
		rc = wire__unpack(&quire__v1__snapshot__descriptor, data, len, &lim, &a, &msg);
		if (rc == WIRE_OK) {
			state = ((const Quire__V1__Snapshot *)msg)->state.data;
			state_len = ((const Quire__V1__Snapshot *)msg)->state.len;
		}
	} else {
		rc = wire__unpack(&quire__v1__snapshot__descriptor, rest, rest_len, &lim, &a, &msg);
	}
	if (rc != WIRE_OK)
		goto out;
	const Quire__V1__Snapshot *s = (const Quire__V1__Snapshot *)msg;
	rc = WIRE_EFIELD;
	if (s->format == 0 || state_len == 0 || !wire_doc_id_valid(s->doc_id, strlen(s->doc_id)))
		goto out;
	if (doc_id != NULL && strcmp(doc_id, s->doc_id) != 0)
		goto out;
	if (s->format != CRDT_SNAPSHOT_VERSION) {
		rc = WIRE_EVERSION;
		goto out;
	}
	if (state[0] != s->format)
		goto out; /* the container and the state disagree: damaged */
	int st = CRDT_OK;
	crdt_doc *d = crdt_doc_decode(state, state_len, replica, opts, &st);
	if (d == NULL) {
		if (crdt_status)
			*crdt_status = st;
		rc = st == CRDT_ENOMEM	   ? WIRE_ENOMEM
		     : st == CRDT_EVERSION ? WIRE_EVERSION
					   : WIRE_EFIELD;
		goto out;
	}
	if (version_matches(d, s) != WIRE_OK) {
		crdt_doc_free(d);
		if (crdt_status)
			*crdt_status = CRDT_ECORRUPT;
		goto out;
	}
	*doc = d;
	if (seq)
		*seq = s->seq;
	rc = WIRE_OK;
out:
	wire__arena_release(&a);
	if (rest)
		wire__free(al, rest, rest_len ? rest_len : 1);
	return rc;
}
