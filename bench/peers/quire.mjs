// quire.mjs - the Quire adapter for the side-by-side load generator
// (../shared/peers/loadgen.mjs, `--adapter /path/to/bench/peers/quire.mjs`).
//
// Each client is the web demo's QuireClient (web-demo/src/client/) with the
// CRDT engine in WebAssembly (quire.wasm), over its own `ws` WebSocket, as a
// browser client would be. Interface: ../shared/peers/README.md.
//
// Environment:
//   QUIRE_CLIENT_DIR   the client library (default web-demo/src/client of this
//                      checkout; run.sh passes a copy of the committed one)
//   QUIRE_WASM_FILE    the engine (default: newest build/*/web-demo/quire.wasm,
//                      else web-demo/dist/quire.wasm)
//   QUIRE_BENCH_FLUSH_MS  the client's flushMs (default 0: an edit goes out at
//                      once when no Update is waiting for its Ack, else it
//                      joins the next Update, sent when the Ack arrives; the
//                      demo page uses 20)
//   QUIRE_BENCH_MAX_INFLIGHT  the client's maxInflight (default 1: Updates
//                      waiting for their Ack at a time)
//   QUIRE_BENCH_DEFLATE   0 (default): the WebSocket does not offer
//                      permessage-deflate, so every server is measured with
//                      plain frames (the Yjs servers of the load generator do
//                      not accept it); 1: it offers it, as browsers do
//   QUIRE_BENCH_LIFTOFF   1 (default): V8's default, a baseline compile of
//                      the engine tiered up while running, as in a browser;
//                      0: the optimizing tier up front (--no-liftoff), which
//                      saves ~20 % CPU in the first second of a short
//                      scenario: a tuning no browser applies, so off
//   QUIRE_BENCH_BYTES_LOG a JSONL file: when a client closes, one line
//                      {scenario: 'QuireBytes', ...} with, per connection it
//                      made, the payload bytes and messages received and the
//                      bytes read from the TCP socket (wire: compressed,
//                      frame headers included; handshake: the HTTP 101
//                      answer, part of wire)
//
// Notes on the interface:
// - connect(docId, lastSeq): lastSeq is ignored; the client resumes from the
//   last seq it has itself seen (Hello{last_seq}), as a real client does.
//   Resolves when the client is live (Welcome + catch-up to head_seq applied).
// - opsApplied (progress): the sum of the replica's version vector (the engine
//   keeps it, O(1)), reported on the client's 'remote' event, which fires after
//   every Changes message applied (one wasm call per message). Every unit
//   of every op consumes one counter of its replica, deletes included
//   (docs/PROTOCOL.md section 3), and the server holds each replica's counters
//   without gaps, so sum(next counter) = inserted + deleted units reflected in
//   this replica, own edits included. Exact at every change boundary.
// - bytes/messages are counted at the WebSocket message layer (payloads after
//   any permessage-deflate decompression, as the Yjs adapters count them);
//   counter.wireBytesIn adds what the socket really read (see
//   QUIRE_BENCH_BYTES_LOG).
// - All clients of one process share one instantiated engine (one wasm
//   memory); each has its own document in it.
import { readFileSync, existsSync, readdirSync, statSync, appendFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import v8 from 'node:v8';

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, '..', '..');
const clientDir = process.env.QUIRE_CLIENT_DIR || join(repo, 'web-demo', 'src', 'client');
const { loadEngine, QuireClient } = await import(pathToFileURL(join(clientDir, 'index.js')).href);

// The same `ws` the Yjs adapters use (the load generator's node_modules), else
// the web demo's.
async function loadWs() {
	for (const from of [process.argv[1], join(repo, 'web-demo', 'package.json')]) {
		try {
			const p = createRequire(from).resolve('ws');
			const m = await import(pathToFileURL(p).href);
			return m.default ?? m.WebSocket;
		} catch { /* next */ }
	}
	throw new Error('quire adapter: package `ws` not found');
}
const WS = await loadWs();
// (floor.mjs makes its bare observers with the same `ws`)
export const WebSocketClass = WS;

function wasmFile() {
	if (process.env.QUIRE_WASM_FILE) return process.env.QUIRE_WASM_FILE;
	const dir = join(repo, 'build');
	const found = existsSync(dir)
		? readdirSync(dir).map((d) => join(dir, d, 'web-demo', 'quire.wasm')).filter((p) => existsSync(p))
		: [];
	found.sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs);
	return found[0] ?? join(repo, 'web-demo', 'dist', 'quire.wasm');
}
if ((process.env.QUIRE_BENCH_LIFTOFF ?? '1') === '0') v8.setFlagsFromString('--no-liftoff');
const engine = await loadEngine(readFileSync(wasmFile()));
const FLUSH_MS = Number(process.env.QUIRE_BENCH_FLUSH_MS ?? 0);
const DEFLATE = (process.env.QUIRE_BENCH_DEFLATE ?? '0') !== '0';
const MAX_INFLIGHT = Number(process.env.QUIRE_BENCH_MAX_INFLIGHT ?? 1);
const BYTES_LOG = process.env.QUIRE_BENCH_BYTES_LOG || '';
const LABEL = process.argv[process.argv.indexOf('--label') + 1] ?? '';
let clientCount = 0;

export const name = 'quire';

// A `ws` WebSocket that counts message payload bytes into its client's
// `counter`, each connection's payload and socket bytes into `conns`, and
// close events into `replica.closed`. One class for every client: a class
// per client (a closure over its counters) gives each client's sockets their
// own prototype, and with hundreds of them every property access in `ws`
// and the client that touches a socket goes megamorphic (at 500 observers
// `perf` showed ~10 % of the process in megamorphic loads and IC misses):
// a cost of the instrument, not of the client. The per-client part is the
// constructor function below, which hands its counters to the one class.
let nextOwner = null;
class CountingWS extends WS {
	constructor(url, protocols) {
		super(url, protocols, { perMessageDeflate: DEFLATE });
		const { counter, replica, conns } = nextOwner;
		nextOwner = null;
		const conn = { payloadIn: 0, msgsIn: 0, handshakeIn: 0, wireIn: 0, extensions: '', socket: null };
		conns.push(conn);
		this.conn = conn;
		this.counter = counter;
		this.on('open', () => {
			conn.socket = this._socket;
			conn.handshakeIn = conn.socket?.bytesRead ?? 0;
			conn.extensions = this.extensions;
		});
		this.on('close', () => {
			replica.closed = (replica.closed || 0) + 1;
			if (conn.socket) conn.wireIn = conn.socket.bytesRead;
			conn.socket = null;
		});
	}
	// Messages are counted where `ws` emits them rather than by a second
	// 'message' listener: two listeners make every emit copy its
	// listener array, a cost of the instrument, not of the client.
	emit(ev, data, isBinary) {
		if (ev === 'message') {
			const n = data.byteLength ?? data.length;
			this.counter.bytesIn += n;
			this.counter.msgsIn++;
			this.conn.payloadIn += n;
			this.conn.msgsIn++;
		}
		return super.emit(ev, data, isBinary);
	}
	send(data, ...rest) {
		this.counter.bytesOut += data.byteLength ?? data.length;
		this.counter.msgsOut++;
		return super.send(data, ...rest);
	}
}

// The WebSocket "class" one client is given: `new` on it returns a
// CountingWS counting into that client's counters.
function countingWebSocket(counter, replica, conns) {
	return function ClientWebSocket(url, protocols) {
		nextOwner = { counter, replica, conns };
		return new CountingWS(url, protocols);
	};
}

// The load generator passes ws://host:port (the Yjs servers' form); Quire's
// endpoint is /sync.
export function endpoint(url) {
	return /^wss?:\/\/[^/]+\/?$/.test(url) ? url.replace(/\/?$/, '/sync') : url;
}

export function createClient({ url }) {
	const wsUrl = endpoint(url);
	const conns = [];
	const wire = (cn) => (cn.socket ? cn.socket.bytesRead : cn.wireIn);
	const counter = {
		bytesIn: 0, bytesOut: 0, msgsIn: 0, msgsOut: 0,
		get wireBytesIn() { return conns.reduce((a, cn) => a + wire(cn), 0); },
	};
	const index = clientCount++;
	let c = null;
	const cbs = [];
	const replica = {
		closed: 0,
		text: { get length() { return c ? c.doc.length : 0; } },
	};
	const progress = () => (c && c.doc.p ? c.doc.progress : 0);
	const waitLive = () => new Promise((resolveLive, reject) => {
		if (c.live) return resolveLive();
		const off = c.on('status', (s) => {
			if (s.state === 'connected') {
				off();
				resolveLive();
			} else if (s.state === 'refused') {
				off();
				reject(new Error('refused'));
			}
		});
	});
	return {
		replica,
		counter,
		connect(docId, _lastSeq = 0) {
			if (!c) {
				c = new QuireClient({
					url: wsUrl, docId, engine, WebSocket: countingWebSocket(counter, replica, conns),
					flushMs: FLUSH_MS, maxInflight: MAX_INFLIGHT,
				});
				c.on('remote', (r) => {
					for (const cb of cbs) cb(r.progress);
				});
			}
			const p = waitLive();
			c.connect();
			return p;
		},
		disconnect() { c?.disconnect(); },
		applyLocalEdit(pos, del, ins) {
			if (del > 0) c.delete(pos, del);
			if (ins) c.insert(pos, ins);
		},
		onRemoteChange(cb) { cbs.push(cb); },
		progress,
		getText: () => (c ? c.text : ''),
		isOpen: () => !!(c && c.ws && c.ws.readyState === 1),
		async close() {
			if (c && c.doc.p) c.close();
			if (BYTES_LOG && conns.length) {
				appendFileSync(BYTES_LOG, JSON.stringify({
					scenario: 'QuireBytes', server: 'quire', label: LABEL, client: index, deflate: DEFLATE,
					connections: conns.map((cn) => ({
						payloadIn: cn.payloadIn, msgsIn: cn.msgsIn, wireIn: wire(cn),
						handshakeIn: cn.handshakeIn, extensions: cn.extensions,
					})),
				}) + '\n');
			}
		},
	};
}
