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
import { loadEngine, QuireClient, MemoryStorage } from '../src/client/index.js';
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
	set onmessage(fn) {
		super.onmessage = fn && ((ev) => {
			if (!this.deaf) fn(ev);
		});
	}
	get onmessage() {
		return super.onmessage;
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
