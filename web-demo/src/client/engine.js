// engine.js - crdt/ in WebAssembly, wrapped for JavaScript.
//
// loadEngine(source) instantiates quire.wasm (built from crdt/*.c and
// web-demo/wasm/binding.c; it imports nothing) and returns an Engine whose
// newDoc(replica) gives a WasmDoc: one CRDT replica with local edits that
// return ops, remote ops that return visible patches, anchors for carets and
// snapshots. Positions are code points; text is a JS string (converted to
// UTF-8 at the boundary). Ops are plain objects in the shape of the wire's
// Op message with absolute ids (see toWireOp / fromWireOp in client.js):
//   { kind: 'insert'|'delete', replica, counter, lamport, len,
//     left: {replica, counter}|null, right: ..., text, collected, target }
// replica ids are BigInt. Errors throw a CrdtError with the engine's code.
//
// The sync client's fast path avoids op objects altogether: insertLocal /
// deleteLocal leave the ops in the document's outbox (enableOutbox), which
// encodeUpdate turns into Update bytes; recv applies a whole Changes message
// given as bytes in one call; cpTo16 / u16ToCp / length16 convert offsets
// with the engine's index of non-BMP characters; progress is the sum of the
// version vector, kept by the engine. recv also reads a Welcome, whose
// snapshot welcomeLoad then decodes in place (no protobuf-es objects, no
// copy of the state).

export const CRDT_OK = 0;
export const CRDT_DUPLICATE = 1;
export const CRDT_PENDING = 2;
const KIND_INSERT = 1;
const KIND_DELETE = 2;

export class CrdtError extends Error {
	constructor(code, what) {
		super(`${what}: ${code}`);
		this.code = code;
	}
}

const enc = new TextEncoder();
const dec = new TextDecoder();

// source: a WebAssembly.Module, bytes (ArrayBuffer / Uint8Array), a URL or
// a Response promise (browser: fetch('quire.wasm')).
// (No warm-up runs at load: making V8 optimise the snapshot path ahead of
// time cost 7-17 ms at every page load to save ~3 ms on the first
// snapshot, a loss for a real user that only a benchmark would see as a gain.)
export async function loadEngine(source) {
	let instance;
	if (source instanceof WebAssembly.Module) {
		instance = await WebAssembly.instantiate(source, {});
	} else if (source instanceof ArrayBuffer || ArrayBuffer.isView(source)) {
		({ instance } = await WebAssembly.instantiate(source, {}));
	} else {
		const resp = await (typeof source === 'string' || source instanceof URL ? fetch(source) : source);
		if (!resp.ok) throw new Error(`cannot load ${resp.url}: HTTP ${resp.status}`);
		({ instance } = await WebAssembly.instantiate(await resp.arrayBuffer(), {}));
	}
	return new Engine(instance);
}

export class Engine {
	constructor(instance) {
		this.x = instance.exports;
		if (typeof this.x._initialize === 'function') this.x._initialize();
		this.views();
	}
	newDoc(replica) {
		const p = this.x.qb_new(BigInt.asUintN(64, replica));
		if (!p) throw new CrdtError(-1, 'qb_new');
		return new WasmDoc(this, p, replica);
	}
	strerror(code) {
		const p = this.x.qb_strerror(code);
		const m = new Uint8Array(this.x.memory.buffer);
		let e = p;
		while (m[e]) e++;
		return dec.decode(m.subarray(p, e));
	}
	// All of the wasm memory as bytes (a new view only after it grew).
	heap() {
		if (this.u8.length === 0) this.views();
		return this.u8;
	}
	// Views of all of the wasm memory. Growing the memory detaches the old
	// buffer, which leaves its views empty: that is the cheap test for stale
	// views (reading memory.buffer costs more, once per message).
	views() {
		const buf = this.x.memory.buffer;
		this.u8 = new Uint8Array(buf);
		this.u32 = new Uint32Array(buf);
		this.i32 = new Int32Array(buf);
		this.f64 = new Float64Array(buf);
	}
	bytes(ptr, n) {
		return new Uint8Array(this.x.memory.buffer, ptr, n);
	}
	// Copy a string / bytes into wasm memory: [ptr, nbytes]; free with x.qb_free.
	put(data) {
		const b = typeof data === 'string' ? enc.encode(data) : data;
		const p = this.x.qb_malloc(b.length);
		if (!p) throw new CrdtError(-1, 'qb_malloc');
		this.bytes(p, b.length).set(b);
		return [p, b.length];
	}
}

export class WasmDoc {
	constructor(engine, ptr, replica) {
		this.e = engine;
		this.x = engine.x;
		this.p = ptr;
		this.replica = replica;
		this.res = {
			kind: 0, seq: 0, changes: 0, echoes: 0, errors: 0, error: 0, gap: 0, patchCount: 0, progress: 0,
			version: 0, headSeq: 0, readOnly: false, snapshot: false, snapshotSeq: 0,
		};
		this.resAt = engine.x.qb_res(ptr); // qb_recv's results (see recv)
		this.inAt = 0; // the engine's input buffer and the size it has at least
		this.inCap = 0;
	}
	// The engine's input buffer, at least n bytes (kept: one call less per
	// message; qb_in may move it when it has to grow).
	inBuf(n) {
		if (n <= this.inCap) return this.inAt;
		const cap = Math.max(n, 2 * this.inCap, 4096);
		const p = this.x.qb_in(this.p, cap);
		if (!p) throw new CrdtError(-1, 'out of memory');
		this.inAt = p;
		this.inCap = cap;
		return p;
	}
	free() {
		if (this.p) this.x.qb_delete_doc(this.p);
		this.p = 0;
	}
	check(rc, what) {
		if (rc < 0) throw new CrdtError(rc, `${what}: ${this.e.strerror(rc)}`);
		return rc;
	}
	get length() {
		return this.x.qb_length(this.p) >>> 0;
	}
	get clock() {
		return this.x.qb_clock(this.p) >>> 0;
	}
	get pending() {
		return this.x.qb_pending(this.p) >>> 0;
	}
	seen(replica) {
		return this.x.qb_seen(this.p, replica) >>> 0;
	}
	text() {
		this.check(this.x.qb_text(this.p), 'text');
		return dec.decode(this.e.bytes(this.x.qb_out(this.p), this.x.qb_out_len(this.p)));
	}
	encode() {
		this.check(this.x.qb_encode(this.p), 'encode');
		return this.e.bytes(this.x.qb_out(this.p), this.x.qb_out_len(this.p)).slice();
	}
	// Replace the state by a snapshot (crdt_doc_encode bytes).
	load(state) {
		const [p, n] = this.e.put(state);
		try {
			this.check(this.x.qb_load(this.p, p, n), 'load snapshot');
		} finally {
			this.x.qb_free(p);
		}
	}
	version() {
		const n = this.check(this.x.qb_version(this.p), 'version');
		const dv = new DataView(this.x.memory.buffer, this.x.qb_out(this.p), n * 12);
		const out = [];
		for (let i = 0; i < n; i++)
			out.push({ replica: dv.getBigUint64(i * 12, true), next: dv.getUint32(i * 12 + 8, true) });
		return out;
	}

	// Local edits at code point positions; return the ops made.
	insert(pos, text) {
		if (text.length === 0) return [];
		this.insertLocal(pos, text);
		return this.readOps();
	}
	delete(pos, len) {
		if (len === 0) return [];
		this.deleteLocal(pos, len);
		return this.readOps();
	}
	// The same without reading the ops back (they go to the outbox when it
	// is on: enableOutbox). A single code point needs no text buffer.
	insertLocal(pos, text) {
		const x = this.x;
		let rc;
		const c = text.length === 1 ? text.charCodeAt(0)
			: text.length === 2 ? text.codePointAt(0) : -1;
		if (c >= 0 && (text.length === 1 ? c < 0xd800 || c > 0xdfff : c > 0xffff)) {
			rc = x.qb_insert_cp(this.p, pos, c);
		} else {
			const max = text.length * 3;
			const p = this.inBuf(max);
			const { written } = enc.encodeInto(text, this.e.heap().subarray(p, p + max));
			rc = x.qb_insert(this.p, pos, p, written);
		}
		this.check(rc, 'insert');
	}
	deleteLocal(pos, len) {
		this.check(this.x.qb_remove(this.p, pos, len), 'delete');
	}

	// UTF-16 offsets <-> code points of the visible text (the engine keeps
	// the positions of the characters outside the BMP).
	cpTo16(cp) {
		return this.x.qb_cp_to_u16(this.p, cp) >>> 0;
	}
	u16ToCp(u) {
		return this.x.qb_u16_to_cp(this.p, u) >>> 0;
	}
	get length16() {
		return this.x.qb_u16_length(this.p) >>> 0;
	}
	// Inserted + deleted units reflected here: the sum of the version vector.
	get progress() {
		return this.x.qb_progress(this.p);
	}

	// ---- the outbox: unacknowledged local ops, kept in the engine --------
	enableOutbox() {
		this.x.qb_outbox_enable(this.p);
	}
	get outboxCount() {
		return this.x.qb_outbox_count(this.p) >>> 0;
	}
	get outboxUnsent() {
		return this.x.qb_outbox_unsent(this.p) >>> 0;
	}
	get outboxFirst() {
		return this.x.qb_outbox_first(this.p) >>> 0;
	}
	outboxOps() {
		this.check(this.x.qb_outbox_select(this.p), 'outbox');
		return this.readOps();
	}
	outboxAcked(end) {
		this.check(this.x.qb_outbox_acked(this.p, end), 'outbox ack');
	}
	outboxRewind() {
		this.check(this.x.qb_outbox_rewind(this.p), 'outbox rewind');
	}
	outboxPush(op) {
		this.callOp(this.x.qb_outbox_push, op, 'outbox push');
	}
	// Apply the outbox again (after a snapshot); returns the failures' count
	// and the first status.
	outboxReapply() {
		const n = this.x.qb_outbox_reapply(this.p) >>> 0;
		return { failed: n, status: this.x.qb_res_error(this.p) };
	}
	// The next Update from the unsent ops as ClientMessage bytes (a copy),
	// or null when nothing is unsent; `end` is the counter end it covers.
	encodeUpdate(handle, clientBatch, maxOps, maxText) {
		const end = this.x.qb_update_encode(this.p, handle, clientBatch, maxOps, maxText);
		if (end < 0) this.check(end, 'encode update');
		if (end === 0) return null;
		return { bytes: this.e.bytes(this.x.qb_out(this.p), this.x.qb_out_len(this.p)).slice(), end };
	}
	// Hand a ServerMessage to the engine. A Changes message is applied there
	// whole (every change after lastSeq, in order): returns { kind: 3, seq,
	// changes, echoes, errors, error, gap, patchCount, progress }. A Welcome is read
	// there: { kind: 2, version, headSeq, readOnly, snapshot, snapshotSeq }
	// (its snapshot stays in the engine's input buffer: welcomeLoad, before
	// the next recv). Other kinds return { kind } and are left to the caller
	// (0: a Welcome the engine could not read); bad protobuf gives kind -1.
	// The result object is this doc's own, reused by the next call.
	recv(bytes, lastSeq) {
		const x = this.x, d = this.p, r = this.res, e = this.e;
		const p = this.inBuf(bytes.length);
		e.heap().set(bytes, p);
		const kind = x.qb_recv(d, bytes.length, lastSeq);
		if (kind === 2) { // a Welcome, read by the engine (its snapshot: welcomeLoad)
			r.kind = 2;
			r.version = x.qb_wel_version(d);
			r.headSeq = x.qb_wel_head_seq(d);
			r.readOnly = x.qb_wel_read_only(d) !== 0;
			r.snapshot = x.qb_wel_snapshot(d) !== 0;
			r.snapshotSeq = r.snapshot ? x.qb_wel_seq(d) : 0;
			return r;
		}
		if (kind >= 0 && kind !== 3 || kind === -200) {
			r.kind = kind < 0 ? 0 : kind; // -200: a Welcome the engine could not read
			return r;
		}
		// the results block (binding.c struct qb_res), read in place
		if (e.u8.length === 0) e.views(); // the apply grew the memory
		const f = this.resAt >>> 3, w = this.resAt >>> 2, u = e.u32;
		r.kind = kind < 0 ? -1 : 3;
		r.seq = e.f64[f];
		r.progress = e.f64[f + 1];
		r.changes = u[w + 4];
		r.echoes = u[w + 5];
		r.errors = u[w + 6];
		r.gap = u[w + 7];
		r.patchCount = u[w + 8];
		r.error = r.errors ? e.i32[w + 9] : 0;
		return r;
	}
	// Load the snapshot of the Welcome the last recv read, in place of the
	// state (no copy: it is decoded from the engine's input buffer); the
	// outbox is acknowledged up to our counter in the snapshot's version and
	// the rest applied again (PROTOCOL 5.4). Returns { failed, status } as
	// outboxReapply; throws (state unchanged) when the snapshot is unusable.
	welcomeLoad() {
		const n = this.check(this.x.qb_welcome_load(this.p), 'load snapshot');
		return { failed: n, status: n ? this.x.qb_res_error(this.p) : 0 };
	}
	readOps() {
		const x = this.x, d = this.p;
		const n = x.qb_op_count(d);
		const ops = [];
		const id = (r, c) => (r === 0n ? null : { replica: r, counter: c >>> 0 });
		for (let i = 0; i < n; i++) {
			const op = {
				kind: x.qb_op_kind(d, i) === KIND_INSERT ? 'insert' : 'delete',
				replica: BigInt.asUintN(64, x.qb_op_replica(d, i)),
				counter: x.qb_op_counter(d, i) >>> 0,
				lamport: x.qb_op_lamport(d, i) >>> 0,
				len: x.qb_op_len(d, i) >>> 0,
			};
			if (op.kind === 'insert') {
				op.left = id(BigInt.asUintN(64, x.qb_op_left_replica(d, i)), x.qb_op_left_counter(d, i));
				op.right = id(BigInt.asUintN(64, x.qb_op_right_replica(d, i)), x.qb_op_right_counter(d, i));
				const tp = x.qb_op_text(d, i);
				op.collected = tp === 0;
				op.text = tp ? dec.decode(this.e.bytes(tp, x.qb_op_text_bytes(d, i))) : '';
			} else {
				op.target = {
					replica: BigInt.asUintN(64, x.qb_op_target_replica(d, i)),
					counter: x.qb_op_target_counter(d, i) >>> 0,
				};
			}
			ops.push(op);
		}
		return ops;
	}

	// Integrate a remote op (absolute ids). Returns { status, patches } where
	// patches are {pos, deleted, text} in code points, each relative to the
	// text left by the previous one.
	apply(op) {
		this.x.qb_patches_clear(this.p);
		const rc = this.callOp(this.x.qb_apply, op, 'apply');
		return { status: rc, patches: this.readPatches() };
	}
	// fn(doc, kind, replica, counter, lamport, len, left..., right..., text,
	// bytes, collected, target...) with an op object's fields
	callOp(fn, op, what) {
		const x = this.x;
		let tp = 0, tn = 0;
		if (op.kind === 'insert' && !op.collected) [tp, tn] = this.e.put(op.text);
		let rc;
		try {
			const ins = op.kind === 'insert';
			rc = fn(this.p, ins ? KIND_INSERT : KIND_DELETE, op.replica, op.counter, op.lamport,
				op.len, ins && op.left ? op.left.replica : 0n, ins && op.left ? op.left.counter : 0,
				ins && op.right ? op.right.replica : 0n, ins && op.right ? op.right.counter : 0,
				tp, tn, ins && op.collected ? 1 : 0, ins ? 0n : op.target.replica, ins ? 0 : op.target.counter);
		} finally {
			if (tp) x.qb_free(tp);
		}
		return this.check(rc, what);
	}
	// The patches of the last apply / recv: {pos, deleted, text, from16,
	// to16}, from16/to16 the UTF-16 offsets in the text before the patch.
	readPatches() {
		const x = this.x, e = this.e;
		const n = x.qb_patch_count(this.p);
		if (n === 0) return [];
		const base = x.qb_patches(this.p); // 4-aligned records
		const u8 = e.heap(), w = e.u32; // (heap() renews the views if stale)
		const out = [];
		let o = base >>> 2;
		for (let i = 0; i < n; i++) {
			const nb = w[o + 3], t = o * 4 + 24;
			const text = nb === 0 ? '' : nb === 1 ? String.fromCharCode(u8[t]) : dec.decode(u8.subarray(t, t + nb));
			out.push({ pos: w[o], deleted: w[o + 1], text, from16: w[o + 4], to16: w[o + 5] });
			o += 6 + ((nb + 3) >>> 2);
		}
		return out;
	}

	// Carets: a code point position <-> an id that moves with edits.
	anchorAt(pos) {
		this.check(this.x.qb_anchor_at(this.p, pos), 'anchor_at');
		const r = BigInt.asUintN(64, this.x.qb_anchor_replica(this.p));
		return { replica: r, counter: r === 0n ? 0 : this.x.qb_anchor_counter(this.p) >>> 0 };
	}
	// null when the anchor's unit is not known (yet).
	anchorPos(anchor) {
		const rc = this.x.qb_anchor_pos(this.p, anchor.replica, anchor.counter);
		if (rc < 0) return null;
		return this.x.qb_anchor_result(this.p) >>> 0;
	}
}
