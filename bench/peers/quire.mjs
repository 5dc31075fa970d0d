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
//   QUIRE_BENCH_FLUSH_MS  the client's flushMs (default 0: one Update per edit,
//                      like the Yjs providers' one update per transaction;
//                      the demo page uses 20)
//   QUIRE_BENCH_DEFLATE   0 (default): the WebSocket does not offer
//                      permessage-deflate, so every server is measured with
//                      plain frames (the Yjs servers of the load generator do
//                      not accept it); 1: it offers it, as browsers do
//
// Notes on the interface:
// - connect(docId, lastSeq): lastSeq is ignored; the client resumes from the
//   last seq it has itself seen (Hello{last_seq}), as a real client does.
//   Resolves when the client is live (Welcome + catch-up to head_seq applied).
// - opsApplied (progress): the sum of the replica's version vector. Every unit
//   of every op consumes one counter of its replica, deletes included
//   (docs/PROTOCOL.md section 3), and the server holds each replica's counters
//   without gaps, so sum(next counter) = inserted + deleted units reflected in
//   this replica, own edits included. Exact at every change boundary.
// - bytes/messages are counted at the WebSocket message layer (payloads after
//   any permessage-deflate decompression, as the Yjs adapters count them).
// - All clients of one process share one instantiated engine (one wasm
//   memory); each has its own document in it.
import { readFileSync, existsSync, readdirSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

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

function wasmFile() {
	if (process.env.QUIRE_WASM_FILE) return process.env.QUIRE_WASM_FILE;
	const dir = join(repo, 'build');
	const found = existsSync(dir)
		? readdirSync(dir).map((d) => join(dir, d, 'web-demo', 'quire.wasm')).filter((p) => existsSync(p))
		: [];
	found.sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs);
	return found[0] ?? join(repo, 'web-demo', 'dist', 'quire.wasm');
}
const engine = await loadEngine(readFileSync(wasmFile()));
const FLUSH_MS = Number(process.env.QUIRE_BENCH_FLUSH_MS ?? 0);
const DEFLATE = (process.env.QUIRE_BENCH_DEFLATE ?? '0') !== '0';

export const name = 'quire';

// A `ws` WebSocket that counts message payload bytes into `counter` and
// close events into `replica.closed`.
function countingWebSocket(counter, replica) {
	return class CountingWS extends WS {
		constructor(url, protocols) {
			super(url, protocols, { perMessageDeflate: DEFLATE });
			this.on('message', (data) => {
				counter.bytesIn += data.byteLength ?? data.length;
				counter.msgsIn++;
			});
			this.on('close', () => { replica.closed = (replica.closed || 0) + 1; });
		}
		send(data, ...rest) {
			counter.bytesOut += data.byteLength ?? data.length;
			counter.msgsOut++;
			return super.send(data, ...rest);
		}
	};
}

export function createClient({ url }) {
	// the load generator passes ws://host:port (the Yjs servers' form); Quire's
	// endpoint is /sync
	const wsUrl = /^wss?:\/\/[^/]+\/?$/.test(url) ? url.replace(/\/?$/, '/sync') : url;
	const counter = { bytesIn: 0, bytesOut: 0, msgsIn: 0, msgsOut: 0 };
	let c = null;
	const cbs = [];
	const replica = {
		closed: 0,
		text: { get length() { return c ? c.doc.length : 0; } },
	};
	const progress = () => {
		if (!c || !c.doc.p) return 0;
		let n = 0;
		for (const e of c.doc.version()) n += e.next;
		return n;
	};
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
					url: wsUrl, docId, engine, WebSocket: countingWebSocket(counter, replica),
					flushMs: FLUSH_MS,
				});
				c.on('change', () => {
					if (cbs.length === 0) return;
					const p = progress();
					for (const cb of cbs) cb(p);
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
		},
	};
}
