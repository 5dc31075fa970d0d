// client.test.mjs - the JS client (src/client/) against a real quire-server.
//
//   node --test test/client.test.mjs      (ctest: web_demo_client)
//
// Each test starts quire-server on a free loopback port with a fresh database
// and drives QuireClients over the `ws` package with the wasm engine.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import WebSocket from 'ws';
import { create, toBinary } from '@bufbuild/protobuf';
import { loadEngine, QuireClient, MemoryStorage, toWireOp, fromWireOp } from '../src/client/index.js';
import { ServerMessageSchema } from '../src/gen/quire_pb.js';
import { startServer, wasmFile, until, sleep, prng } from './helpers.mjs';
import { afterEach } from 'node:test';

const engine = await loadEngine(readFileSync(wasmFile()));
afterEach(() => {
	for (const c of open) if (c.doc.p) c.close();
	open.clear();
});
const fast = { backoff: { minMs: 20, maxMs: 200 } };

const open = new Set(); // closed after each test, even a failed one
function client(srv, docId, opts = {}) {
	const c = new QuireClient({ url: srv.wsUrl, docId, engine, WebSocket, ...fast, ...opts });
	open.add(c);
	c.errors = [];
	c.on('error', (e) => c.errors.push(e));
	return c;
}

// Everyone live, nothing unacked, same seq and text; the mirror matches the engine.
async function converged(clients, what) {
	await until(() => clients.every((c) => c.live && c.unacked.length === 0 && c.lastSeq === clients[0].lastSeq
		&& c.text === clients[0].text), what);
	for (const c of clients) {
		assert.equal(c.doc.text(), c.text, 'mirror == engine text');
		assert.equal(c.doc.pending, 0);
	}
}

const ALPHABET = ['a', 'b', 'c', ' ', '\n', 'é', '日', '本', '😀', '👍🏽', 'x'];
function randomEdit(c, rnd) {
	const len = c.doc.length;
	if (len > 0 && rnd() < 0.3) {
		const pos = Math.floor(rnd() * len);
		c.delete(pos, Math.min(len - pos, 1 + Math.floor(rnd() * 3)));
	} else {
		let s = '';
		for (let n = 1 + Math.floor(rnd() * 3); n > 0; n--) s += ALPHABET[Math.floor(rnd() * ALPHABET.length)];
		c.insert(Math.floor(rnd() * (len + 1)), s);
	}
}

test('two clients editing concurrently converge (emoji, CJK, deletes)', async () => {
	const srv = await startServer();
	try {
		const a = client(srv, 'conv'), b = client(srv, 'conv');
		a.connect();
		b.connect();
		await until(() => a.live && b.live, 'both live');
		const rnd = prng(42);
		for (let i = 0; i < 300; i++) {
			randomEdit(rnd() < 0.5 ? a : b, rnd);
			if (i % 25 === 0) await sleep(5);
		}
		await converged([a, b], 'convergence');
		assert.ok(a.text.length > 0);
		// A third client joining later gets the same text from the server.
		const c = client(srv, 'conv');
		c.connect();
		await converged([a, b, c], 'late joiner');
		for (const x of [a, b, c]) assert.deepEqual(x.errors, []);
		for (const x of [a, b, c]) x.close();
	} finally {
		await srv.stop();
	}
});

test('offline edits merge on reconnect, nothing lost or duplicated', async () => {
	const srv = await startServer();
	try {
		const a = client(srv, 'resume'), b = client(srv, 'resume');
		a.connect();
		b.connect();
		await until(() => a.live && b.live, 'both live');
		a.insert(0, 'start ');
		await converged([a, b], 'first edit');
		b.disconnect();
		assert.equal(b.state, 'offline');
		a.insert(a.doc.length, 'online-A ');
		b.insert(b.doc.length, 'offline-B 😀 ');
		b.insert(0, '日本 ');
		await sleep(50);
		assert.ok(!a.text.includes('offline-B'));
		b.connect();
		await converged([a, b], 'after reconnect');
		for (const part of ['start ', 'online-A ', 'offline-B 😀 ', '日本 '])
			assert.equal(a.text.split(part).length - 1, 1, `"${part}" exactly once in ${JSON.stringify(a.text)}`);
		assert.deepEqual(a.errors, []);
		assert.deepEqual(b.errors, []);
		a.close();
		b.close();
	} finally {
		await srv.stop();
	}
});

// A WebSocket whose sends can be lost, as on a connection that dies with
// data in flight.
// `lose`: sends vanish; `deaf`: received messages vanish (a lost Ack).
class LossyWebSocket extends WebSocket {
	send(data) {
		if (!this.lose) super.send(data);
	}
	// the client listens with ws's own 'message' event (node)
	emit(ev, ...args) {
		if (ev === 'message' && this.deaf) return false;
		return super.emit(ev, ...args);
	}
}

test('unacked batches are retransmitted after a dropped connection', async () => {
	const srv = await startServer();
	try {
		const a = client(srv, 'retx', { WebSocket: LossyWebSocket }), b = client(srv, 'retx');
		a.connect();
		b.connect();
		await until(() => a.live && b.live, 'both live');
		const expected = [];
		for (let i = 0; i < 24; i++) {
			const word = `w${i}${i % 3 === 0 ? '😀' : ''} `;
			expected.push(word);
			// i % 3 == 0: the Update is lost in flight (the server never sees it);
			// 1: dropped right after sending (committed or not, Ack unseen);
			// 2: committed (B has it) but the Ack is lost.
			if (i % 3 === 0) a.ws.lose = true;
			if (i % 3 === 2) a.ws.deaf = true;
			a.insert(a.doc.length, word);
			assert.equal(a.unacked.length, 1, 'the batch is unacked when the connection drops');
			if (i % 3 === 2) await until(() => b.text.endsWith(word), 'B got the word');
			a.dropConnection();
			await until(() => a.live && a.unacked.length === 0, 'reconnected and acked');
		}
		await converged([a, b], 'after retransmits');
		assert.equal(a.text, expected.join(''));
		const c = client(srv, 'retx');
		c.connect();
		await converged([a, b, c], 'fresh client sees the server copy');
		assert.equal(c.text, expected.join(''));
		assert.ok(a.stats.resent >= 8, 'every lost batch was sent again');
		assert.ok(a.stats.ownEchoes >= 8, 'committed batches whose Ack was lost came back in the catch-up');
		console.log(`retransmit: ${JSON.stringify(a.stats)}`);
		for (const x of [a, b, c]) assert.deepEqual(x.errors, []);
		a.close();
		b.close();
		c.close();
	} finally {
		await srv.stop();
	}
});

test('snapshot Welcome: late joiner and an offline client behind a trimmed log', async () => {
	const srv = await startServer(['--snapshot-every', '5', '--keep-changes', '3']);
	try {
		const a = client(srv, 'snap'), b = client(srv, 'snap');
		a.connect();
		b.connect();
		await until(() => a.live && b.live, 'both live');
		b.disconnect();
		b.insert(0, 'B-offline ');
		for (let i = 0; i < 40; i++) {
			a.insert(a.doc.length, `${i} `);
			await until(() => a.unacked.length === 0, 'ack');
		}
		const late = client(srv, 'snap');
		late.connect();
		await converged([a, late], 'late joiner via snapshot');
		assert.equal(late.stats.snapshots, 1, 'the late joiner got a snapshot');
		b.connect();
		await converged([a, b, late], 'offline client via snapshot');
		assert.equal(b.stats.snapshots, 1, 'the offline client got a snapshot');
		assert.equal(a.text.split('B-offline ').length - 1, 1);
		assert.ok(a.text.includes('39 '));
		for (const x of [a, b, late]) x.close();
	} finally {
		await srv.stop();
	}
});

test('presence: carets follow edits, names relayed, gone on leave', async () => {
	const srv = await startServer();
	try {
		const a = client(srv, 'pres', { name: 'Ana', color: '#e91e63' });
		const b = client(srv, 'pres', { name: 'Bo', color: '#3f51b5' });
		a.connect();
		b.connect();
		await until(() => a.live && b.live, 'both live');
		a.insert(0, 'hello 😀 world');
		await converged([a, b], 'text');
		a.setCursor(8); // after "hello 😀 "
		await until(() => b.peerList().some((p) => p.name === 'Ana' && p.head === 8), 'caret at 8');
		assert.equal(b.peerList()[0].head16, 9, 'UTF-16 offset counts the emoji twice');
		b.insert(0, '>> ');
		await until(() => b.peerList()[0]?.head === 11, 'caret moved by a remote insert before it');
		assert.equal(b.status().peers, 1);
		a.close();
		await until(() => b.peerList().length === 0, 'gone');
		b.close();
	} finally {
		await srv.stop();
	}
});

test('server restart: clients resume without loss or duplication', async () => {
	const srv = await startServer();
	try {
		const a = client(srv, 'restart'), b = client(srv, 'restart');
		a.connect();
		b.connect();
		await until(() => a.live && b.live, 'both live');
		a.insert(0, 'before ');
		await converged([a, b], 'before restart');
		await srv.restart();
		a.insert(a.doc.length, 'A-during ');
		b.insert(0, 'B-during ');
		await converged([a, b], 'after restart');
		for (const part of ['before ', 'A-during ', 'B-during '])
			assert.equal(a.text.split(part).length - 1, 1, part);
		a.close();
		b.close();
	} finally {
		await srv.stop();
	}
});

// Persistence (storage.js): a "page" (client) that goes offline, edits, is
// closed (reload) and restored from its storage keeps the edits, continues
// its replica so the unacked ops go out with their ids, and merges once.
test('persistence: offline edits survive a reload and merge exactly once', async () => {
	const srv = await startServer();
	try {
		const storage = new MemoryStorage();
		const a = client(srv, 'persist', { storage, persistMs: 10 });
		const b = client(srv, 'persist');
		a.connect();
		b.connect();
		await until(() => a.live && b.live, 'both live');
		a.insert(0, 'shared ');
		await converged([a, b], 'first edit');
		a.disconnect();
		a.insert(a.doc.length, 'offline-A 😀 ');
		a.insert(0, '日本 ');
		b.insert(b.doc.length, 'online-B ');
		const replica = a.replica, textA = a.text;
		await a.persistNow();
		a.close(); // the page goes away

		const a2 = client(srv, 'persist', { storage, persistMs: 10 });
		assert.equal(await a2.restore(), true);
		assert.equal(a2.text, textA, 'offline edits restored before connecting');
		assert.equal(a2.replica, replica, 'unacked ops: the same replica continues');
		assert.equal(a2.unacked.length > 0, true);
		assert.equal(a2.holding, false);
		a2.insert(a2.doc.length, 'after-reload ');
		a2.connect();
		await converged([a2, b], 'after reconnect');
		for (const part of ['shared ', 'offline-A 😀 ', '日本 ', 'online-B ', 'after-reload '])
			assert.equal(b.text.split(part).length - 1, 1, `"${part}" exactly once in ${JSON.stringify(b.text)}`);
		await a2.persistNow();
		a2.close();

		// Nothing unacked: the next load starts a new replica from the saved
		// state and resumes from its seq (no snapshot needed).
		const a3 = client(srv, 'persist', { storage });
		assert.equal(await a3.restore(), true);
		assert.notEqual(a3.replica, replica);
		assert.equal(a3.text, b.text);
		a3.connect();
		await converged([a3, b], 'third load');
		assert.equal(a3.stats.snapshots, 0, 'resumed by seq, not by snapshot');
		for (const x of [b, a3]) assert.deepEqual(x.errors, []);
	} finally {
		await srv.stop();
	}
});

test('persistence: a record older than what was sent holds edits until caught up', async () => {
	const srv = await startServer();
	try {
		const storage = new MemoryStorage();
		const a = client(srv, 'stale', { storage, persistMs: 60000 });
		a.connect();
		await until(() => a.live, 'live');
		a.insert(0, 'one ');
		await converged([a], 'one');
		a.disconnect();
		a.insert(a.doc.length, 'two ');
		await a.persistNow(); // the record: "two " unacked
		a.connect();
		a.insert(a.doc.length, 'three ');
		await converged([a], 'sent after the record');
		a.dropConnection(); // the page dies before the next write
		for (const t of Object.values(a.timers)) clearTimeout(t); // and never writes again
		a.storage = null;
		a.close();
		open.delete(a);

		const a2 = client(srv, 'stale', { storage });
		await a2.restore();
		assert.equal(a2.text, 'one two ');
		assert.equal(a2.holding, true, 'the server has ops of this replica the record lacks');
		a2.connect();
		await until(() => a2.live && a2.unacked.length === 0, 'caught up');
		assert.equal(a2.holding, false);
		assert.equal(a2.text, 'one two three ');
		a2.insert(a2.doc.length, 'four');
		const b = client(srv, 'stale');
		b.connect();
		await converged([a2, b], 'converged');
		assert.equal(b.text, 'one two three four');
		assert.deepEqual(a2.errors, []);
	} finally {
		await srv.stop();
	}
});

// ---- the engine's hot path (issue 6): one-call apply, UTF-16 offsets,
// progress, coalesced sends ----------------------------------------------------

// The UTF-16 offset of code point cp in s, the slow way.
const cp16 = (s, cp) => [...s].slice(0, cp).join('').length;

// A doc with random local edits (emoji, CJK, deletes); returns [doc, ops].
function randomDoc(replica, seed, edits) {
	const rnd = prng(seed);
	const d = engine.newDoc(replica);
	const ops = [];
	for (let i = 0; i < edits; i++) {
		const len = d.length;
		if (len > 0 && rnd() < 0.3) {
			const pos = Math.floor(rnd() * len);
			ops.push(...d.delete(pos, Math.min(len - pos, 1 + Math.floor(rnd() * 3))));
		} else {
			let s = '';
			for (let n = 1 + Math.floor(rnd() * 3); n > 0; n--) s += ALPHABET[Math.floor(rnd() * ALPHABET.length)];
			ops.push(...d.insert(Math.floor(rnd() * (len + 1)), s));
		}
	}
	return [d, ops];
}

// ServerMessage{changes} bytes holding `ops`, `perChange` ops per change from seq 1.
function changesBytes(ops, perChange, firstSeq = 1) {
	const changes = [];
	for (let i = 0; i < ops.length; i += perChange)
		changes.push({ seq: BigInt(changes.length + firstSeq), ops: ops.slice(i, i + perChange).map(toWireOp) });
	return toBinary(ServerMessageSchema, create(ServerMessageSchema, { doc: 1, msg: { case: 'changes', value: { changes } } }));
}

const vvSum = (d) => d.version().reduce((a, e) => a + e.next, 0);

test('one-call apply of a Changes message = op by op: text, progress, patches, UTF-16 offsets', () => {
	const [src, ops] = randomDoc(11n, 7, 400);
	const one = engine.newDoc(22n), each = engine.newDoc(33n);
	try {
		const r = one.recv(changesBytes(ops, 5), 0);
		assert.equal(r.kind, 3);
		assert.equal(r.seq, Math.ceil(ops.length / 5));
		assert.equal(r.changes, Math.ceil(ops.length / 5));
		assert.equal(r.errors, 0);
		// the patches rebuild the text through their UTF-16 offsets
		let mirror = '';
		for (const p of one.readPatches()) {
			assert.equal(p.from16, cp16(mirror, p.pos));
			assert.equal(p.to16, cp16(mirror, p.pos + p.deleted));
			mirror = mirror.slice(0, p.from16) + p.text + mirror.slice(p.to16);
		}
		for (const op of ops) each.apply(fromWireOp(toWireOp(op)));
		const text = src.text();
		assert.equal(one.text(), text);
		assert.equal(each.text(), text);
		assert.equal(mirror, text);
		assert.equal(one.progress, vvSum(src));
		assert.equal(each.progress, vvSum(each));
		assert.equal(src.progress, vvSum(src));
		assert.equal(one.length16, text.length);
		// a message seen again changes nothing; a gap is reported, not applied
		const again = one.recv(changesBytes(ops, 5), r.seq);
		assert.equal(again.changes, 0);
		assert.equal(one.text(), text);
		const gap = one.recv(changesBytes(ops.slice(0, 10), 5, r.seq + 2), r.seq);
		assert.equal(gap.gap, r.seq + 2);
		assert.equal(gap.changes, 0);
		// other kinds are left to the caller; bad protobuf is refused
		const ack = toBinary(ServerMessageSchema, create(ServerMessageSchema, { doc: 1, msg: { case: 'ack', value: { clientBatch: 1n, seq: 2n } } }));
		assert.equal(one.recv(ack, 0).kind, 4);
		assert.equal(one.recv(new Uint8Array([0x1a, 0x05, 0x0a]), 0).kind, -1);
	} finally {
		src.free();
		one.free();
		each.free();
	}
});

// recv reads its results (and readPatches the patches) in place through
// typed-array views of the wasm memory, and keeps the input buffer between
// calls: both must follow the memory when it grows, during the copy in or
// during the apply.
test('recv results, patches and the input buffer stay right when the wasm memory grows', () => {
	const src = engine.newDoc(66n), dst = engine.newDoc(77n);
	try {
		const small = [...src.insert(0, 'ab😀'), ...src.delete(1, 1)];
		let r = dst.recv(changesBytes(small, 1), 0);
		assert.deepEqual([r.kind, r.seq, r.changes, r.patchCount], [3, 2, 2, 2]);
		assert.equal(r.progress, vvSum(dst));
		const before = engine.x.memory.buffer.byteLength;
		const big = 'x'.repeat(3 << 20) + '日本😀';
		const ops = src.insert(1, big); // a 3 MiB insert: a bigger input buffer, a bigger document
		r = dst.recv(changesBytes(ops, 1, 3), 2);
		assert.ok(engine.x.memory.buffer.byteLength > before, 'the memory grew');
		assert.deepEqual([r.kind, r.seq, r.changes, r.errors, r.gap, r.patchCount], [3, 3, 1, 0, 0, 1]);
		assert.equal(r.progress, vvSum(dst));
		assert.equal(r.progress, dst.progress);
		const [p] = dst.readPatches();
		assert.deepEqual([p.pos, p.deleted, p.from16, p.to16, p.text.length], [1, 0, 1, 1, big.length]);
		assert.equal(p.text, big);
		// and small messages after it, from the grown buffer
		r = dst.recv(changesBytes(src.insert(0, 'é'), 1, 4), 3);
		assert.deepEqual([r.seq, r.changes, r.patchCount], [4, 1, 1]);
		assert.equal(dst.readPatches()[0].text, 'é');
		assert.equal(dst.text(), src.text());
		assert.equal(r.progress, vvSum(src));
	} finally {
		src.free();
		dst.free();
	}
});

test('surrogate pairs: code point <-> UTF-16 offsets follow local and remote edits', () => {
	const [a, opsA] = randomDoc(44n, 3, 300);
	const [b, opsB] = randomDoc(55n, 4, 300);
	try {
		b.recv(changesBytes(opsA, 7), 0); // concurrent edits of both, merged in b
		for (const d of [a, b]) {
			const text = d.text();
			const cps = [...text];
			assert.ok(text.length > cps.length, 'the text has characters outside the BMP');
			assert.equal(d.length16, text.length);
			let u = 0;
			for (let cp = 0; cp <= cps.length; cp++) {
				assert.equal(d.cpTo16(cp), u, `cpTo16(${cp})`);
				assert.equal(d.u16ToCp(u), cp, `u16ToCp(${u})`);
				if (cp < cps.length && cps[cp].length === 2) assert.equal(d.u16ToCp(u + 1), cp + 1, 'inside a pair: after it');
				if (cp < cps.length) u += cps[cp].length;
			}
		}
		assert.equal(b.progress, vvSum(b));
		assert.ok(opsB.length > 0);
	} finally {
		a.free();
		b.free();
	}
});

// A WebSocket that counts the Updates it sends.
class CountingWebSocket extends WebSocket {
	send(data) {
		this.sent = (this.sent ?? 0) + 1;
		super.send(data);
	}
}

test('coalesced sends: edits made while an Update waits for its Ack go out as one, converge and are acked', async () => {
	const srv = await startServer();
	try {
		const a = client(srv, 'nagle', { WebSocket: CountingWebSocket }), b = client(srv, 'nagle');
		const acks = [];
		a.on('ack', (x) => acks.push(x));
		let remote = 0, progress = 0;
		b.on('remote', (r) => {
			remote++;
			progress = r.progress;
		});
		a.connect();
		b.connect();
		await until(() => a.live && b.live, 'both live');
		const sent0 = a.ws.sent;
		let expected = '';
		for (let i = 0; i < 300; i++) { // typing, with emoji and a backspace now and then
			const ch = i % 10 === 9 ? '😀' : String.fromCharCode(97 + (i % 26));
			a.insert(a.doc.length, ch);
			expected += ch;
			if (i % 25 === 24) {
				a.delete(a.doc.length - 1, 1);
				expected = [...expected].slice(0, -1).join('');
			}
		}
		assert.equal(a.text, expected);
		assert.equal(a.inflight.size, 1, 'one Update in flight, the rest waits');
		assert.ok(a.status().unacked >= 2);
		await converged([a, b], 'coalesced');
		assert.equal(b.text, expected);
		const updates = a.ws.sent - sent0;
		assert.ok(updates <= 3, `300 edits went out as ${updates} Updates`);
		assert.equal(acks.length, updates, 'every Update acked');
		assert.equal(progress, b.doc.progress);
		assert.equal(progress, vvSum(b.doc));
		assert.ok(remote >= 1 && remote <= updates);
		// at a low rate each edit goes out at once
		for (let i = 0; i < 3; i++) {
			const before = a.ws.sent;
			a.insert(0, 'z');
			assert.equal(a.ws.sent, before + 1, 'sent at once when nothing is in flight');
			await until(() => a.inflight.size === 0, 'acked');
		}
		await converged([a, b], 'single edits');
		assert.deepEqual(a.errors, []);
		assert.deepEqual(b.errors, []);
	} finally {
		await srv.stop();
	}
});

// A fake WebSocket: the test hands the client server messages by hand.
class FakeWS {
	constructor() {
		this.readyState = 1;
		this.sent = [];
		FakeWS.last = this;
	}
	send(b) {
		this.sent.push(b);
	}
	close() {
		this.readyState = 3;
	}
}

test('snapshot Welcome read by the engine = decoded in JS: text, seq, version, outbox re-applied', async () => {
	const { fromBinary } = await import('@bufbuild/protobuf');
	// the server's state: another replica's text plus the first of our ops
	const src = engine.newDoc(11n);
	const mk = (listen) => {
		const c = new QuireClient({ url: 'ws://127.0.0.1:9/sync', docId: 'wel', engine, WebSocket: FakeWS, replica: 22n });
		open.add(c);
		c.errors = [];
		c.on('error', (e) => c.errors.push(e));
		c.patched = null;
		if (listen) c.on('change', (ev) => {
			let t = c.patched ?? '';
			for (const p of ev.patches) t = t.slice(0, p.from16) + p.text + t.slice(p.to16);
			c.patched = t;
		});
		return c;
	};
	try {
		src.insert(0, 'hello 😀 wörld');
		const viaWasm = mk(true), viaJs = mk(true), quiet = mk(false);
		for (const c of [viaWasm, viaJs, quiet]) {
			c.insert(0, 'mine1 ');
			if (c !== quiet) c.patched = c.text;
		}
		for (const op of viaWasm.unacked) src.apply(op); // the server has these
		for (const c of [viaWasm, viaJs, quiet]) {
			c.insert(2, 'Z😀'); // these it lacks
			if (c !== quiet) c.patched = c.text;
		}
		const welcome = (headSeq, extra = {}) => toBinary(ServerMessageSchema, create(ServerMessageSchema, {
			doc: 1,
			msg: {
				case: 'welcome',
				value: {
					protocolVersion: 1, headSeq: BigInt(headSeq), ...extra,
					snapshotOpt: {
						case: 'snapshot',
						value: { format: 1, docId: 'wel', seq: 5n, version: src.version(), state: src.encode() },
					},
				},
			},
		}));
		const bytes = welcome(7);
		for (const c of [viaWasm, quiet]) {
			c.connect();
			FakeWS.last.onopen();
			FakeWS.last.onmessage({ data: bytes });
		}
		viaJs.onWelcome(fromBinary(ServerMessageSchema, bytes).msg.value); // the protobuf-es path
		for (const c of [viaWasm, quiet]) {
			assert.equal(c.text, viaJs.text);
			assert.equal(c.lastSeq, 5);
			assert.equal(c.headSeq, 7);
			assert.equal(c.live, false, 'catching up to head_seq 7');
			assert.equal(c.readOnly, false);
			assert.deepEqual(c.doc.version(), viaJs.doc.version());
			assert.deepEqual(c.unacked, viaJs.unacked);
			assert.equal(c.doc.progress, vvSum(c.doc));
			assert.equal(c.doc.length16, c.text.length);
			assert.equal(c.stats.snapshots, 1);
			assert.deepEqual(c.errors, []);
		}
		assert.equal(viaWasm.unacked.length, viaJs.unacked.length);
		assert.ok(viaJs.unacked.length > 0 && viaJs.unacked.every((op) => op.counter >= 6), 'acked up to the snapshot');
		const t = viaWasm.text;
		assert.ok(t.includes('hello 😀 wörld') && t.includes('Z😀') && t.split('m').length - 1 === 1, t);
		assert.equal(viaWasm.patched, t, 'the reset patch gives the new text');
		assert.equal(viaJs.patched, t);
		assert.equal(quiet.patched, null, 'nobody listened: no diff');
		// head_seq reached: live at once, the re-applied ops go out again
		const live = mk(false);
		live.insert(0, 'mine1 ');
		live.insert(2, 'Z😀');
		live.connect();
		const ws = FakeWS.last;
		ws.onopen();
		ws.onmessage({ data: welcome(5, { readOnly: false }) });
		assert.equal(live.live, true);
		assert.equal(live.text, t);
		assert.ok(ws.sent.length >= 2, 'Hello, then the Update of the unacked ops');
		assert.equal(live.doc.outboxUnsent, 0);
	} finally {
		src.free();
	}
});

test('Welcome read by the engine: no snapshot, read-only, wrong version, bad snapshot, bad protobuf', async () => {
	const mk = () => {
		const c = new QuireClient({ url: 'ws://127.0.0.1:9/sync', docId: 'w2', engine, WebSocket: FakeWS, replica: 33n });
		open.add(c);
		c.errors = [];
		c.on('error', (e) => c.errors.push(e));
		c.connect();
		FakeWS.last.onopen();
		return c;
	};
	const msg = (value) => toBinary(ServerMessageSchema, create(ServerMessageSchema, { doc: 1, msg: { case: 'welcome', value } }));
	const a = mk();
	a.insert(0, 'keep');
	FakeWS.last.onmessage({ data: msg({ protocolVersion: 1, headSeq: 0n, readOnly: true }) });
	assert.equal(a.live, true);
	assert.equal(a.readOnly, true);
	assert.equal(a.stats.snapshots, 0);
	assert.equal(a.text, 'keep');

	const b = mk();
	FakeWS.last.onmessage({ data: msg({ protocolVersion: 9, headSeq: 3n }) });
	assert.equal(b.state, 'refused');
	assert.equal(b.errors[0].codeName, 'UNSUPPORTED_VERSION');

	const c = mk();
	c.insert(0, 'still here');
	const bad = msg({
		protocolVersion: 1, headSeq: 4n,
		snapshotOpt: { case: 'snapshot', value: { format: 1, docId: 'w2', seq: 4n, version: [], state: new Uint8Array([1, 2, 3, 4, 5]) } },
	});
	FakeWS.last.onmessage({ data: bad });
	assert.equal(c.errors[0]?.codeName, 'SNAPSHOT');
	assert.equal(c.text, 'still here', 'the state is kept');
	assert.equal(c.lastSeq, 0);
	assert.equal(c.live, false);
	c.disconnect();

	const d = mk();
	// ServerMessage{doc 1, welcome: {head_seq: <truncated varint>}}
	FakeWS.last.onmessage({ data: new Uint8Array([0x08, 0x01, 0x12, 0x02, 0x10, 0x80]) });
	assert.equal(d.errors[0]?.codeName, 'DECODE');
	assert.equal(d.live, false);
});
