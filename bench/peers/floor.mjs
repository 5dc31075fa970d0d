// floor.mjs - the load generator's own floor: what its node process allows
// a client of quire-server, with clients that do no work.
//
// The side-by-side runs put every client in one node process. At 500
// observers and 200 edits/s that process reads 100,000 WebSocket messages a
// second, and what reading them costs (the kernel, libuv, `ws`) bounds the
// latency any client can show there; a reconnect pays node's WebSocket
// connect. This adapter measures those bounds:
// - the writer (the load generator's first client) is the real Quire client
//   (quire.mjs), so the server gets the same Updates as in the "quire" rows;
// - every other client is a bare `ws` WebSocket that sends a Hello (resuming
//   from the last seq it saw) and walks each Changes message's protobuf just
//   far enough to add up its ops' `len`, and a Welcome's snapshot just far
//   enough to add up its version vector: the load generator's opsApplied
//   (docs/PROTOCOL.md section 3: every inserted or deleted character
//   consumes one counter). No engine, no text, no Acks.
// It keeps no text, so the load generator reports its observers as not
// converged (report.mjs shows "—"); the "missing" count still checks that
// every observer reached every edit. Scenarios: S1, S1 max and S4 (its
// clients cannot edit or be a replica: not S2, S3's documents or S5).
// Run by run.sh as the server kind "floor".
import { createClient as createQuireClient, WebSocketClass, endpoint } from './quire.mjs';

export const name = 'floor';

const PROTOCOL_VERSION = 1;
const SUBPROTOCOL = 'quire.v1';

// ---- the little protobuf this needs (proto/quire.proto) ----

function varint(out, v) {
	// v < 2^53 (a JS number)
	while (v >= 128) {
		out.push((v % 128) | 128);
		v = Math.floor(v / 128);
	}
	out.push(v);
}

function field(out, num, bytes) {
	varint(out, (num << 3) | 2);
	varint(out, bytes.length);
	for (const b of bytes) out.push(b);
}

// ClientMessage{doc: 1, hello: Hello{protocol_version, doc_id, replica, last_seq}}
function helloBytes(docId, replica, lastSeq) {
	const hello = [];
	varint(hello, (1 << 3) | 0);
	varint(hello, PROTOCOL_VERSION);
	field(hello, 2, new TextEncoder().encode(docId));
	varint(hello, (3 << 3) | 0);
	varint(hello, replica);
	varint(hello, (4 << 3) | 0);
	varint(hello, lastSeq);
	const msg = [];
	varint(msg, (1 << 3) | 0);
	varint(msg, 1);
	field(msg, 2, hello);
	return Uint8Array.from(msg);
}

// A reader over one message: `pos` moves through b[.. end].
function readVarint(r) {
	let x = 0;
	let scale = 1;
	for (;;) {
		if (r.pos >= r.b.length) throw new Error('truncated varint');
		const c = r.b[r.pos++];
		x += (c & 127) * scale;
		if (c < 128) return x;
		scale *= 128;
	}
}

// Calls visit(fieldNumber, wireType, value) for each field of b[start, end);
// value: the number (varint) or the end of the bytes (length-delimited,
// which then start at r.pos). Other wire types are skipped.
function eachField(r, end, visit) {
	while (r.pos < end) {
		const key = readVarint(r);
		const wt = key & 7;
		if (wt === 0) visit(key >>> 3, 0, readVarint(r));
		else if (wt === 2) {
			const n = readVarint(r);
			const stop = r.pos + n;
			if (stop > end) throw new Error('length past the end');
			visit(key >>> 3, 2, stop);
			r.pos = stop;
		} else if (wt === 1) r.pos += 8;
		else if (wt === 5) r.pos += 4;
		else throw new Error(`wire type ${wt}`);
	}
}

// ServerMessage -> {kind: 'changes', units, seq} (seq: the last Change's)
// | {kind: 'welcome', head, snapshot: null | {seq, units}} | {kind: 'error'}
// | {kind: 'other'}.
// A snapshot's units are the sum of its version vector (VersionEntry.next).
function readServerMessage(b) {
	const r = { b, pos: 0 };
	let out = { kind: 'other' };
	eachField(r, b.length, (f, wt, v) => {
		if (f === 3 && wt === 2) {
			const c = { kind: 'changes', units: 0, seq: 0 };
			eachField(r, v, (f1, wt1, e1) => { // Changes.changes
				if (f1 !== 1 || wt1 !== 2) return;
				eachField(r, e1, (f2, wt2, x) => { // Change
					if (f2 === 1 && wt2 === 0) c.seq = x;
					if (f2 !== 2 || wt2 !== 2) return;
					eachField(r, x, (f3, wt3, len) => { // Op.len
						if (f3 === 4 && wt3 === 0) c.units += len;
					});
				});
			});
			out = c;
		} else if (f === 2 && wt === 2) {
			const w = { kind: 'welcome', head: 0, snapshot: null };
			eachField(r, v, (f1, wt1, x) => {
				if (f1 === 2 && wt1 === 0) w.head = x;
				if (f1 !== 3 || wt1 !== 2) return;
				w.snapshot = { seq: 0, units: 0 };
				eachField(r, x, (f2, wt2, y) => { // Snapshot
					if (f2 === 3 && wt2 === 0) w.snapshot.seq = y;
					if (f2 !== 4 || wt2 !== 2) return;
					eachField(r, y, (f3, wt3, next) => { // VersionEntry.next
						if (f3 === 2 && wt3 === 0) w.snapshot.units += next;
					});
				});
			});
			out = w;
		} else if (f === 6) {
			out = { kind: 'error' };
		}
	});
	return out;
}

// ---- the adapter ----

let clients = 0;

export function createClient({ url }) {
	// The load generator's first client is its writer (S1, S4).
	if (clients++ === 0) return createQuireClient({ url });
	const counter = { bytesIn: 0, bytesOut: 0, msgsIn: 0, msgsOut: 0 };
	const cbs = [];
	let ws = null;
	const replicaId = 1 + Math.floor(Math.random() * 2 ** 52);
	let units = 0; // of the changes up to seq
	let seq = 0;
	return {
		counter,
		replica: { text: { length: 0 } },
		// Resolves when the observer has every change up to the Welcome's head.
		connect(docId) {
			return new Promise((resolve, reject) => {
				const sock = new WebSocketClass(endpoint(url), SUBPROTOCOL, { perMessageDeflate: false });
				ws = sock;
				let head = -1; // until the Welcome
				const settle = () => {
					if (head >= 0 && seq >= head) {
						head = -2; // live
						resolve();
					}
				};
				sock.on('open', () => {
					const hello = helloBytes(docId, replicaId, seq);
					counter.bytesOut += hello.length;
					counter.msgsOut++;
					sock.send(hello);
				});
				sock.on('message', (data) => {
					counter.bytesIn += data.length;
					counter.msgsIn++;
					const m = readServerMessage(data);
					if (m.kind === 'changes') {
						units += m.units;
						seq = m.seq;
						for (const cb of cbs) cb(units);
					} else if (m.kind === 'error' && head !== -2) {
						reject(new Error('floor: the server answered with an Error'));
						sock.terminate();
						return;
					} else if (m.kind === 'welcome' && head === -1) {
						head = m.head;
						if (m.snapshot) {
							units = m.snapshot.units;
							seq = m.snapshot.seq;
							for (const cb of cbs) cb(units);
						}
					}
					settle();
				});
				sock.on('error', (err) => { if (head !== -2) reject(err); });
				sock.on('close', () => { if (head !== -2) reject(new Error('closed before the catch-up')); });
			});
		},
		disconnect() { ws?.terminate(); },
		applyLocalEdit() { throw new Error('floor: observers do not edit'); },
		onRemoteChange(cb) { cbs.push(cb); },
		progress: () => units,
		getText: () => null, // no text kept: not comparable
		isOpen: () => !!(ws && ws.readyState === 1),
		close() {
			ws?.close();
			return Promise.resolve();
		},
	};
}
