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
		const [p, n] = this.e.put(text);
		try {
			this.check(this.x.qb_insert(this.p, pos, p, n), 'insert');
		} finally {
			this.x.qb_free(p);
		}
		return this.readOps();
	}
	delete(pos, len) {
		if (len === 0) return [];
		this.check(this.x.qb_remove(this.p, pos, len), 'delete');
		return this.readOps();
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
		const x = this.x;
		x.qb_patches_clear(this.p);
		let tp = 0, tn = 0;
		if (op.kind === 'insert' && !op.collected) [tp, tn] = this.e.put(op.text);
		let rc;
		try {
			const ins = op.kind === 'insert';
			rc = x.qb_apply(this.p, ins ? KIND_INSERT : KIND_DELETE, op.replica, op.counter, op.lamport,
				op.len, ins && op.left ? op.left.replica : 0n, ins && op.left ? op.left.counter : 0,
				ins && op.right ? op.right.replica : 0n, ins && op.right ? op.right.counter : 0,
				tp, tn, ins && op.collected ? 1 : 0, ins ? 0n : op.target.replica, ins ? 0 : op.target.counter);
		} finally {
			if (tp) x.qb_free(tp);
		}
		this.check(rc, 'apply');
		return { status: rc, patches: this.readPatches() };
	}
	readPatches() {
		const x = this.x;
		const n = x.qb_patch_count(this.p);
		if (n === 0) return [];
		const base = x.qb_patches(this.p);
		const dv = new DataView(x.memory.buffer, base, x.qb_patches_len(this.p));
		const out = [];
		let o = 0;
		for (let i = 0; i < n; i++) {
			const pos = dv.getUint32(o, true), deleted = dv.getUint32(o + 4, true);
			const nb = dv.getUint32(o + 12, true);
			const text = dec.decode(this.e.bytes(base + o + 16, nb));
			out.push({ pos, deleted, text });
			o += 16 + ((nb + 3) & ~3);
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
