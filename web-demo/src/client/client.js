// client.js - QuireClient: one document kept in sync with a quire-server.
//
// Speaks docs/PROTOCOL.md (subprotocol quire.v1, one protobuf message per
// binary WebSocket message, generated from proto/quire.proto) over any
// WebSocket implementation with the browser API (the browser's, or the `ws`
// package in node). The CRDT is crdt/ in WebAssembly (engine.js), and so is
// the hot path: a Changes message goes into wasm as its raw bytes and is
// decoded and applied there in one call (no per-op JS objects), and so is a
// Welcome: its snapshot is decoded from those bytes and loaded, our
// unacknowledged ops re-applied, in one call; the text is read from the
// engine only when someone asks for it (a 'change' listener gets the reset
// patch, diffed against the text before); the engine
// keeps our unacknowledged ops (the outbox) and encodes Updates from them;
// it tracks where the characters outside the BMP are, so code point <->
// UTF-16 offsets cost a binary search, and the progress sum of the version
// vector. `text` is read from the engine when asked for after a change.
//
// Sending (Nagle-style): a local edit goes out at once when no Update is
// waiting for its Ack (at most maxInflight, default 1, may wait). While
// one does, further edits accumulate in the outbox, where consecutive
// typing merges into a few ops, and go out as one Update when the Ack
// arrives, or as soon as MAX_OPS_PER_UPDATE ops piled up. So a single edit
// has no added latency at low rates and high rates make big batches. With
// flushMs > 0 (the demo page: 20) the first edit also waits that long, to
// gather a burst of keystrokes, then the same rule applies. Ops are
// unchanged by this: it is not a protocol change (PROTOCOL 5.5).
//
// Lifecycle: connect() -> Hello{last_seq} -> Welcome (+ snapshot) -> catch-up
// Changes up to head_seq -> live: unacknowledged ops are retransmitted
// unchanged, presence is sent. On any close the client reconnects with
// exponential backoff and jitter and resumes from last_seq with the same
// replica id; nothing is applied twice (own ops are recognised by counter)
// and nothing is lost (unacked ops stay until the server has them).
//
// Events (on(name, fn)):
//   change   {patches:[{pos, deleted, text, from16, to16}], origin:'remote'|'reset'}
//            each patch relative to the text left by the previous one;
//            pos/deleted in code points, from16/to16 in UTF-16 units
//   status   {state:'connecting'|'connected'|'reconnecting'|'offline'|'refused',
//            seq, headSeq, peers, unacked, readOnly, retryInMs}
//   presence [{replica, name, color, anchor, head, anchor16, head16}]
//   error    {code, codeName, message, fatal}: server Error or local failure
//   ack      {clientBatch, seq}
//   remote   {seq, changes, progress}: after each Changes message that applied
//            changes, visible or not (progress: the sum of the version
//            vector). The object is reused for the next event.
//
// One 'change' event carries the patches of a whole Changes message (one or
// more changes); patch text is only decoded when someone listens.
//
// Persistence (opts.storage, see storage.js): restore() loads the saved
// record (engine snapshot, last seq, replica, unacknowledged ops) before
// connect(); afterwards the record is rewritten persistMs after changes and
// by persistNow(). A record with unacknowledged ops continues its replica
// (they are resent with the same op ids); one without starts a new replica
// from the saved state. If ops were sent after the record was written (the
// storage's sent mark is past the record's counters) the client holds
// (status.holding) until the server's catch-up has brought them back:
// editors should not make local edits until then.

import { create, toBinary, fromBinary } from '@bufbuild/protobuf';
import {
	ClientMessageSchema,
	ServerMessageSchema,
	OpSchema,
	ErrorCode,
} from '../gen/quire_pb.js';
import { cpLength } from './text.js';
import { opToRecord, opFromRecord } from './storage.js';

export const PROTOCOL_VERSION = 1;
export const SUBPROTOCOL = 'quire.v1';
const HANDLE = 1;
const MAX_OPS_PER_UPDATE = 1000;
const MAX_TEXT_PER_UPDATE = 256 * 1024;

export function randomReplica() {
	const b = new BigUint64Array(1);
	do globalThis.crypto.getRandomValues(b);
	while (b[0] === 0n);
	return b[0];
}

export function errorName(code) {
	return ErrorCode[code] ?? `ERROR_${code}`;
}

// ---- wire <-> engine ops ---------------------------------------------------

// Engine ops have absolute ids; on the wire an origin/target replica 0 means
// the op's own replica and the document's ends are left_none / right_none.
export function toWireOp(op) {
	const rel = (r) => (r === op.replica ? 0n : r);
	if (op.kind === 'insert') {
		return create(OpSchema, {
			replica: op.replica, counter: op.counter, lamport: op.lamport, len: op.len,
			kind: {
				case: 'insert',
				value: {
					leftReplica: op.left ? rel(op.left.replica) : 0n,
					leftCounter: op.left ? op.left.counter : 0,
					leftNone: !op.left,
					rightReplica: op.right ? rel(op.right.replica) : 0n,
					rightCounter: op.right ? op.right.counter : 0,
					rightNone: !op.right,
					text: op.collected ? '' : op.text,
					collected: !!op.collected,
				},
			},
		});
	}
	return create(OpSchema, {
		replica: op.replica, counter: op.counter, lamport: op.lamport, len: op.len,
		kind: { case: 'delete', value: { targetReplica: rel(op.target.replica), targetCounter: op.target.counter } },
	});
}

export function fromWireOp(w) {
	const abs = (r) => (r === 0n ? w.replica : r);
	const base = { replica: w.replica, counter: w.counter, lamport: w.lamport, len: w.len };
	if (w.kind.case === 'insert') {
		const i = w.kind.value;
		return {
			...base, kind: 'insert',
			left: i.leftNone ? null : { replica: abs(i.leftReplica), counter: i.leftCounter },
			right: i.rightNone ? null : { replica: abs(i.rightReplica), counter: i.rightCounter },
			text: i.text, collected: i.collected,
		};
	}
	if (w.kind.case === 'delete') {
		const d = w.kind.value;
		return { ...base, kind: 'delete', target: { replica: abs(d.targetReplica), counter: d.targetCounter } };
	}
	throw new Error('op without a kind');
}

// ---- the client --------------------------------------------------------------

export class QuireClient {
	// opts: url (ws://host/sync), docId, engine (loadEngine()), WebSocket
	// (default globalThis.WebSocket), token, replica (BigInt, default random),
	// name, color, backoff {minMs 500, maxMs 30000}, heartbeat {idleMs 25000,
	// deadMs 10000}, flushMs (0: send each edit at once), presenceMs (50),
	// storage (storage.js; none: nothing persists), persistMs (300).
	constructor(opts) {
		this.url = opts.url;
		this.docId = opts.docId;
		this.engine = opts.engine;
		this.WS = opts.WebSocket ?? globalThis.WebSocket;
		this.token = opts.token ?? '';
		this.replica = opts.replica ?? randomReplica();
		this.user = { name: opts.name ?? '', color: opts.color ?? '#888888' };
		this.backoff = { minMs: 500, maxMs: 30000, ...opts.backoff };
		this.heartbeat = { idleMs: 25000, deadMs: 10000, ...opts.heartbeat };
		this.flushMs = opts.flushMs ?? 0;
		this.maxInflight = Math.max(1, opts.maxInflight ?? 1);
		this.presenceMs = opts.presenceMs ?? 50;
		this.handlers = new Map();
		this.storage = opts.storage ?? null;
		this.persistMs = opts.persistMs ?? 300;
		this.dirty = false;
		this.holding = false;

		this.doc = this.newDoc(this.replica);
		this.mirror = ''; // the text as of the last read (see get text)
		this.stale = false; // the engine has changed since
		this.lastSeq = 0;
		this.headSeq = 0;
		this.inflight = new Map(); // client_batch -> counter end it covers
		this.resendEnd = 0; // counters below this were sent on a lost connection
		this.remoteEvent = { seq: 0, changes: 0, progress: 0 }; // reused per 'remote' event
		this.batch = 0;
		this.peers = new Map(); // replica -> presence
		this.cursor = null; // {anchor, head} ids
		this.presenceClock = 0;
		this.state = 'offline';
		this.live = false;
		this.readOnly = false;
		this.refused = false;
		this.ws = null;
		this.unwire = () => {}; // detaches our handlers from this.ws
		this.wanted = false;
		this.attempt = 0;
		this.timers = { reconnect: 0, flush: 0, presence: 0, heartbeat: 0, persist: 0 };
		this.pingNonce = 0n;
		this.pingAt = 0;
		this.lastSent = 0;
		this.lastRecv = 0;
		// counters for tests and the status bar: snapshots loaded, ops sent
		// again after a reconnect, own ops recognised in Changes
		this.stats = { snapshots: 0, resent: 0, ownEchoes: 0, reconnects: 0, restored: 0, saves: 0, saved: 0 };
	}

	newDoc(replica) {
		const doc = this.engine.newDoc(replica);
		doc.enableOutbox(); // our unacknowledged ops live in the engine
		return doc;
	}

	// The visible text (UTF-16 JS string), read from the engine when it has
	// changed since the last read: O(text) per read, nothing per edit.
	get text() {
		if (this.stale && this.doc.p) {
			this.mirror = this.doc.text();
			this.stale = false;
		}
		return this.mirror;
	}

	// Our ops the server may not have, in counter order (op objects, built
	// on each read; status().unacked is the cheap count).
	get unacked() {
		return this.doc.p ? this.doc.outboxOps() : [];
	}

	on(ev, fn) {
		if (!this.handlers.has(ev)) this.handlers.set(ev, new Set());
		this.handlers.get(ev).add(fn);
		return () => this.handlers.get(ev).delete(fn);
	}
	emit(ev, data) {
		for (const fn of this.handlers.get(ev) ?? []) fn(data);
	}
	listened(ev) {
		const h = this.handlers.get(ev);
		return h !== undefined && h.size > 0;
	}

	// ---- connection ----------------------------------------------------------

	connect() {
		this.wanted = true;
		this.refused = false;
		if (this.ws) return;
		clearTimeout(this.timers.reconnect);
		this.setState(this.attempt ? 'reconnecting' : 'connecting');
		let ws;
		try {
			ws = new this.WS(this.url, SUBPROTOCOL);
		} catch (err) {
			this.emit('error', { code: 0, codeName: 'CONNECT', message: String(err), fatal: false });
			this.scheduleReconnect(0);
			return;
		}
		this.ws = ws;
		const onOpen = () => {
			if (this.ws !== ws) return;
			this.lastRecv = this.lastSent = Date.now();
			this.send({
				case: 'hello',
				value: {
					protocolVersion: PROTOCOL_VERSION, docId: this.docId, replica: this.replica,
					lastSeq: BigInt(this.lastSeq), token: this.token,
				},
			});
			this.startHeartbeat();
		};
		const onClose = (code) => {
			if (this.ws !== ws) return;
			this.onClosed(code);
		};
		if (typeof ws.on === 'function') {
			// node's `ws`: its own events hand over the payload Buffer as is,
			// without the browser-style MessageEvent made per message for
			// onmessage (a real cost at hundreds of clients per process)
			ws.binaryType = 'nodebuffer';
			const onMessage = (data, isBinary) => {
				// (ws 8 says isBinary; ws 7 gives text as a string and no flag)
				if (this.ws === ws && isBinary !== false && typeof data !== 'string') this.onData(data);
			};
			ws.on('open', onOpen);
			ws.on('message', onMessage);
			ws.on('close', onClose);
			ws.on('error', () => {}); // a close follows
			this.unwire = () => {
				ws.off('open', onOpen);
				ws.off('message', onMessage);
				ws.off('close', onClose);
			};
		} else {
			ws.binaryType = 'arraybuffer';
			ws.onopen = onOpen;
			ws.onmessage = (ev) => {
				const data = ev.data;
				if (this.ws !== ws || typeof data === 'string') return;
				this.onData(ArrayBuffer.isView(data) ? data : new Uint8Array(data));
			};
			ws.onclose = (ev) => onClose(ev.code);
			ws.onerror = () => {};
			this.unwire = () => {
				ws.onopen = ws.onmessage = ws.onclose = null;
			};
		}
	}

	// One binary message from the server (bytes: a Uint8Array).
	onData(bytes) {
		this.lastRecv = Date.now();
		// Changes (nearly every message) are decoded and applied by the
		// engine in one call, a Welcome is read there; the rest is decoded
		// here (so is a Welcome the engine could not read: kind 0).
		let r;
		try {
			r = this.doc.recv(bytes, this.lastSeq);
		} catch (err) {
			this.emit('error', { code: 0, codeName: 'DECODE', message: String(err), fatal: false });
			return;
		}
		if (r.kind === 3 || r.kind === -1) {
			this.onChanges(r);
			return;
		}
		if (r.kind === 2) {
			this.onWelcome(r);
			return;
		}
		let msg;
		try {
			msg = fromBinary(ServerMessageSchema, bytes);
		} catch (err) {
			this.emit('error', { code: 0, codeName: 'DECODE', message: String(err), fatal: false });
			return;
		}
		this.onMessage(msg);
	}

	// Go offline on purpose (edits keep working locally); connect() resumes.
	disconnect() {
		this.wanted = false;
		clearTimeout(this.timers.reconnect);
		this.dropSocket(1000);
		this.setState('offline');
	}

	// Drop the connection as a network failure would (tests, "go offline").
	dropConnection() {
		const ws = this.ws;
		if (!ws) return;
		if (typeof ws.terminate === 'function') ws.terminate();
		else ws.close();
		this.onClosed(1006);
	}

	close() {
		this.disconnect();
		if (this.dirty) this.persistNow();
		clearTimeout(this.timers.persist);
		clearTimeout(this.timers.flush);
		clearTimeout(this.timers.presence);
		this.doc.free();
	}

	// ---- persistence ------------------------------------------------------------

	// Load the saved state of this document (call before connect() and before
	// any local edit). Resolves to true when a record was restored.
	async restore() {
		if (!this.storage) return false;
		let rec;
		try {
			rec = await this.storage.load(this.docId);
		} catch (err) {
			this.emit('error', { code: 0, codeName: 'STORAGE', message: `cannot read the saved document: ${err}`, fatal: false });
			return false;
		}
		if (!rec || rec.v !== 1 || rec.docId !== this.docId) return false;
		const saved = BigInt(rec.replica);
		const unacked = (rec.unacked ?? []).map(opFromRecord);
		// Unacked ops must go out with their ids: continue that replica. Else a
		// new replica is the safe choice (nothing can collide with it).
		const replica = unacked.length ? saved : randomReplica();
		const doc = this.newDoc(replica);
		try {
			if (rec.state && rec.state.length) doc.load(rec.state);
			for (const op of unacked) doc.outboxPush(op);
		} catch (err) {
			doc.free();
			this.emit('error', { code: 0, codeName: 'STORAGE', message: `the saved document is unusable: ${err}`, fatal: false });
			return false;
		}
		const prev = this.text;
		this.doc.free();
		this.doc = doc;
		this.replica = replica;
		this.inflight.clear();
		this.lastSeq = Number(rec.lastSeq) || 0;
		this.holding = unacked.length > 0 && (this.storage.sentMark?.(this.docId, saved) ?? 0) > doc.seen(saved);
		this.stats.restored++;
		this.resetText(prev, doc.text());
		this.emitStatus();
		return true;
	}

	persistSoon() {
		if (!this.storage) return;
		this.dirty = true;
		if (!this.timers.persist) this.timers.persist = setTimeout(() => this.persistNow(), this.persistMs);
	}

	// Write the record now: the snapshot is taken synchronously (state and
	// unacked ops agree), the write finishes when the promise resolves.
	persistNow() {
		clearTimeout(this.timers.persist);
		this.timers.persist = 0;
		if (!this.storage || !this.doc.p) return Promise.resolve();
		this.dirty = false;
		let rec;
		try {
			rec = {
				v: 1, docId: this.docId, replica: String(this.replica), lastSeq: this.lastSeq,
				state: this.doc.encode(), unacked: this.doc.outboxOps().map(opToRecord), savedAt: Date.now(),
			};
		} catch (err) {
			this.emit('error', { code: 0, codeName: 'STORAGE', message: `cannot encode the document: ${err}`, fatal: false });
			return Promise.resolve();
		}
		this.stats.saves++;
		return this.storage.save(this.docId, rec).then(() => {
			this.stats.saved++;
		}, (err) => {
			this.emit('error', { code: 0, codeName: 'STORAGE', message: `cannot save the document: ${err}`, fatal: false });
		});
	}

	dropSocket(code) {
		const ws = this.ws;
		this.ws = null;
		this.live = false;
		this.stopHeartbeat();
		if (ws) {
			this.unwire();
			try {
				ws.close(code);
			} catch {
				/* already closed */
			}
		}
	}

	onClosed(code) {
		this.dropSocket(1000);
		// everything unacknowledged goes out again on the next connection
		for (const end of this.inflight.values()) this.resendEnd = Math.max(this.resendEnd, end);
		this.inflight.clear();
		if (this.doc.p) this.doc.outboxRewind();
		this.peers.clear();
		this.emit('presence', []);
		if (!this.wanted || this.refused) {
			this.setState(this.refused ? 'refused' : 'offline');
			return;
		}
		this.scheduleReconnect(code === 1001 ? 1000 : 0);
	}

	scheduleReconnect(minMs) {
		const { minMs: lo, maxMs: hi } = this.backoff;
		const base = Math.min(hi, lo * 2 ** Math.min(this.attempt, 16));
		const delay = Math.max(minMs, Math.round(base * (0.5 + Math.random() * 0.5)));
		this.attempt++;
		this.stats.reconnects++;
		this.retryInMs = delay;
		this.setState('reconnecting');
		clearTimeout(this.timers.reconnect);
		this.timers.reconnect = setTimeout(() => this.connect(), delay);
	}

	startHeartbeat() {
		this.stopHeartbeat();
		const tick = Math.max(50, Math.min(1000, this.heartbeat.deadMs / 4));
		this.timers.heartbeat = setInterval(() => {
			const now = Date.now();
			if (this.pingAt && this.lastRecv < this.pingAt && now - this.pingAt > this.heartbeat.deadMs) {
				this.pingAt = 0;
				this.dropConnection(); // half-dead: nothing came back after a Ping
				return;
			}
			if (now - this.lastSent >= this.heartbeat.idleMs && !(this.pingAt > this.lastRecv)) {
				this.pingAt = now;
				this.ping();
			}
		}, tick);
	}
	stopHeartbeat() {
		clearInterval(this.timers.heartbeat);
		this.pingAt = 0;
	}
	ping() {
		this.send({ case: 'ping', value: { nonce: ++this.pingNonce } }, 0);
	}

	send(msg, doc = HANDLE) {
		return this.sendBytes(toBinary(ClientMessageSchema, create(ClientMessageSchema, { doc, msg })));
	}
	sendBytes(bytes) {
		if (!this.ws || this.ws.readyState !== 1) return false;
		this.ws.send(bytes);
		this.lastSent = Date.now();
		return true;
	}

	setState(state) {
		this.state = state;
		this.emitStatus();
	}
	emitStatus() {
		if (this.listened('status')) this.emit('status', this.status());
	}
	status() {
		return {
			state: this.state, seq: this.lastSeq, headSeq: this.headSeq, peers: this.peers.size,
			unacked: this.doc.p ? this.doc.outboxCount : 0, readOnly: this.readOnly, retryInMs: this.retryInMs ?? 0,
			replica: this.replica, holding: this.holding,
		};
	}

	// ---- server messages -------------------------------------------------------

	onMessage(m) {
		const v = m.msg.value;
		switch (m.msg.case) {
			case 'welcome': return this.onWelcome(v);
			case 'changes': return; // handled by the engine (doc.recv)
			case 'ack': return this.onAck(v);
			case 'presence': return this.onPresence(v);
			case 'error': return this.onError(m.doc, v);
			case 'pong': return;
			default: return; // a newer server's message kind: ignored (PROTOCOL 7)
		}
	}

	// w: the engine's reading of the Welcome (doc.recv: {version, headSeq,
	// readOnly, snapshot, snapshotSeq}; its snapshot is loaded from the
	// engine's input buffer) or a decoded protobuf Welcome.
	onWelcome(w) {
		const wasm = w.kind === 2;
		const version = wasm ? w.version : w.protocolVersion;
		if (version !== PROTOCOL_VERSION) {
			this.refused = true;
			this.emit('error', {
				code: ErrorCode.UNSUPPORTED_VERSION, codeName: 'UNSUPPORTED_VERSION',
				message: `server answered protocol version ${version}`, fatal: true,
			});
			this.dropSocket(1000);
			this.setState('refused');
			return;
		}
		this.readOnly = w.readOnly;
		this.headSeq = Number(w.headSeq);
		if (wasm ? w.snapshot : w.snapshotOpt.case === 'snapshot') {
			if (!this.loadSnapshot(wasm ? null : w.snapshotOpt.value, wasm ? w.snapshotSeq : 0)) return;
		}
		if (this.lastSeq >= this.headSeq) this.goLive();
		else this.emitStatus();
	}

	// The snapshot of a Welcome replaces the state: s a protobuf Snapshot, or
	// null for the one the engine has just read (doc.welcomeLoad: decoded in
	// place, no copy). Returns false (connection dropped) if it is unusable.
	loadSnapshot(s, seq) {
		// the text before, only when someone listens for the patch
		const prev = this.listened('change') ? this.text : null;
		let r;
		try {
			if (s) {
				this.doc.load(s.state);
				// Re-apply our ops the snapshot may lack (PROTOCOL 5.4); known ones
				// are duplicates. Ops that no longer fit (the server lost changes)
				// are dropped.
				const mine = s.version.find((e) => e.replica === this.replica);
				this.serverHas(mine ? mine.next : 0);
				r = this.doc.outboxReapply();
			} else {
				r = this.doc.welcomeLoad(); // the same, in one engine call
			}
		} catch (err) {
			this.emit('error', { code: err.code ?? 0, codeName: 'SNAPSHOT', message: String(err), fatal: false });
			this.dropConnection();
			return false;
		}
		this.stats.snapshots++;
		if (r.failed) {
			this.emit('error', {
				code: r.status, codeName: 'RESYNC', fatal: false,
				message: `${r.failed} unacknowledged op(s) no longer apply: ${this.engine.strerror(r.status)}`,
			});
		}
		this.lastSeq = Number(s ? s.seq : seq);
		if (prev !== null) {
			this.resetText(prev, this.doc.text());
		} else {
			this.stale = true; // read from the engine when asked for
		}
		this.persistSoon();
		return true;
	}

	// A Changes message, already applied by the engine in one call (doc.recv):
	// r = {kind: 3 | -1 (bad protobuf), seq, changes, echoes, errors, error,
	// gap, patchCount}.
	onChanges(r) {
		if (r.echoes) this.stats.ownEchoes += r.echoes; // acknowledged (PROTOCOL 5.6)
		if (r.errors) {
			this.emit('error', {
				code: r.error, codeName: 'APPLY', fatal: false,
				message: `${r.errors} op(s) refused: ${this.engine.strerror(r.error)}`,
			});
		}
		this.lastSeq = r.seq;
		if (r.patchCount) {
			this.stale = true;
			if (this.listened('change')) this.emit('change', { patches: this.doc.readPatches(), origin: 'remote' });
		}
		if (r.changes && this.listened('remote')) {
			const ev = this.remoteEvent;
			ev.seq = r.seq;
			ev.changes = r.changes;
			ev.progress = r.progress;
			this.emit('remote', ev);
		}
		if (r.kind === -1) {
			this.emit('error', { code: 0, codeName: 'DECODE', message: 'bad Changes message', fatal: false });
		}
		if (r.gap) {
			this.emit('error', { code: 0, codeName: 'SEQ_GAP', message: `seq ${r.gap} after ${this.lastSeq}`, fatal: false });
			this.dropConnection();
			return;
		}
		if (this.peers.size && this.listened('presence')) this.emitPresence();
		this.persistSoon();
		if (!this.live && this.lastSeq >= this.headSeq) this.goLive();
		else this.emitStatus();
	}

	onAck(a) {
		const end = this.inflight.get(Number(a.clientBatch));
		this.inflight.delete(Number(a.clientBatch));
		if (end !== undefined) this.serverHas(end);
		this.lastSeq = Math.max(this.lastSeq, Number(a.seq));
		this.emit('ack', { clientBatch: Number(a.clientBatch), seq: Number(a.seq) });
		this.persistSoon();
		this.flush(); // what was typed while this Update was in flight
		this.emitStatus();
	}

	onError(doc, e) {
		const code = e.code;
		const name = errorName(code);
		const info = { code, codeName: name, message: e.message, clientBatch: Number(e.clientBatch), fatal: false };
		if (info.clientBatch) this.inflight.delete(info.clientBatch); // refused: never acked
		const retry = () => this.dropConnection(); // resume: acks / retransmits sort it out
		switch (code) {
			case ErrorCode.UNAUTHORIZED:
			case ErrorCode.UNSUPPORTED_VERSION:
				info.fatal = true;
				this.refused = true;
				this.emit('error', info);
				this.dropSocket(1000);
				this.setState('refused');
				return;
			case ErrorCode.FORBIDDEN:
				info.fatal = true;
				if (!this.live) { // the Hello was refused
					this.refused = true;
					this.emit('error', info);
					this.dropSocket(1000);
					this.setState('refused');
					return;
				}
				this.readOnly = true; // an Update on a read-only document
				this.emit('error', info);
				this.emitStatus();
				return;
			case ErrorCode.TOO_LARGE:
				info.fatal = info.clientBatch !== 0; // the document is full
				if (info.fatal) this.readOnly = true;
				this.emit('error', info);
				this.emitStatus();
				return;
			case ErrorCode.INVALID_OP:
			case ErrorCode.MISSING_DEPENDENCY:
			case ErrorCode.BAD_MESSAGE:
				this.emit('error', info);
				if (info.clientBatch) this.restartAsNewReplica();
				return;
			default: // RATE_LIMITED, STORAGE_FAILURE, DOCUMENT_UNAVAILABLE, SHUTTING_DOWN, ...
				this.emit('error', info);
				if (code !== ErrorCode.SHUTTING_DOWN) retry();
		}
	}

	// The server refused our ops for good (PROTOCOL 6, INVALID_OP): start over
	// as a new replica from the server's state.
	restartAsNewReplica() {
		const prev = this.text;
		this.doc.free();
		this.replica = randomReplica();
		this.doc = this.newDoc(this.replica);
		this.inflight.clear();
		this.lastSeq = 0;
		this.holding = false;
		this.resetText(prev, '');
		this.persistSoon();
		this.dropConnection();
	}

	goLive() {
		this.live = true;
		this.holding = false;
		this.attempt = 0;
		this.retryInMs = 0;
		this.setState('connected');
		this.flush();
		if (this.cursor) this.sendPresenceSoon(0);
	}

	// The server has our counters below `end`: those ops are acknowledged.
	serverHas(end) {
		this.doc.outboxAcked(end);
	}

	// Send what is unsent, Nagle-style: at most maxInflight Updates wait for
	// their Ack; while they do, new edits accumulate in the engine's outbox
	// (consecutive typing merges into few ops) and go out as one Update when
	// an Ack arrives (onAck), or at once when MAX_OPS_PER_UPDATE ops piled up.
	flush() {
		clearTimeout(this.timers.flush);
		this.timers.flush = 0;
		if (!this.live || this.readOnly || !this.ws) return;
		const doc = this.doc;
		while (doc.outboxUnsent > 0 &&
			(this.inflight.size < this.maxInflight || doc.outboxUnsent >= MAX_OPS_PER_UPDATE)) {
			if (this.resendEnd) { // ops a lost connection carried go out again
				if (doc.outboxFirst < this.resendEnd) this.stats.resent++;
				this.resendEnd = 0;
			}
			const clientBatch = this.batch + 1;
			const u = doc.encodeUpdate(HANDLE, clientBatch, MAX_OPS_PER_UPDATE, MAX_TEXT_PER_UPDATE);
			if (!u) break;
			this.batch = clientBatch;
			this.storage?.noteSent?.(this.docId, this.replica, u.end);
			this.inflight.set(clientBatch, u.end);
			if (!this.sendBytes(u.bytes)) break; // closing: onClosed rewinds the outbox
		}
		this.emitStatus();
	}

	// ---- local edits ----------------------------------------------------------

	// Insert text at code point pos / delete len code points at pos.
	insert(pos, text) {
		if (text.length === 0) return;
		this.doc.insertLocal(pos, text);
		this.queue();
	}
	delete(pos, len) {
		if (len <= 0) return;
		this.doc.deleteLocal(pos, len);
		this.queue();
	}
	// The same with UTF-16 offsets (editors).
	insert16(from16, text) {
		this.insert(this.doc.u16ToCp(from16), text);
	}
	delete16(from16, to16) {
		const a = this.doc.u16ToCp(from16), b = this.doc.u16ToCp(to16);
		if (b > a) this.delete(a, b - a);
	}

	queue() {
		this.stale = true;
		this.persistSoon();
		if (this.flushMs > 0) {
			if (!this.timers.flush) this.timers.flush = setTimeout(() => this.flush(), this.flushMs);
		} else if (this.inflight.size < this.maxInflight) {
			this.flush();
		} else if (this.doc.outboxUnsent >= MAX_OPS_PER_UPDATE) {
			this.flush();
		} else {
			this.emitStatus(); // waits for the Ack (onAck flushes)
		}
		if (this.cursor) this.sendPresenceSoon();
	}

	// ---- text mirror ----------------------------------------------------------

	// The text went from `prev` to `next` (a snapshot, a restore): reported
	// as one minimal patch.
	resetText(prev, next) {
		this.mirror = next;
		this.stale = false;
		if (prev === next) return;
		let a = 0;
		const max = Math.min(prev.length, next.length);
		while (a < max && prev.charCodeAt(a) === next.charCodeAt(a)) a++;
		let b = 0;
		while (b < max - a && prev.charCodeAt(prev.length - 1 - b) === next.charCodeAt(next.length - 1 - b)) b++;
		// never split a surrogate pair
		if (a > 0 && prev.charCodeAt(a - 1) >= 0xd800 && prev.charCodeAt(a - 1) <= 0xdbff) a--;
		if (b > 0 && prev.charCodeAt(prev.length - b) >= 0xdc00 && prev.charCodeAt(prev.length - b) <= 0xdfff) b--;
		const from16 = a, to16 = prev.length - b;
		const text = next.slice(a, next.length - b);
		const pos = cpLength(prev.slice(0, a));
		const deleted = cpLength(prev.slice(a, to16));
		this.emit('change', { patches: [{ pos, deleted, text, from16, to16 }], origin: 'reset' });
	}

	// ---- presence ---------------------------------------------------------------

	setUser({ name, color }) {
		if (name !== undefined) this.user.name = String(name).slice(0, 60);
		if (color !== undefined) this.user.color = color;
		if (this.cursor) this.sendPresenceSoon();
	}

	// The local selection in code points (head = the caret).
	setCursor(anchor, head = anchor) {
		this.cursor = { anchor: this.doc.anchorAt(anchor), head: this.doc.anchorAt(head) };
		this.sendPresenceSoon();
	}
	setCursor16(anchor16, head16 = anchor16) {
		this.setCursor(this.doc.u16ToCp(anchor16), this.doc.u16ToCp(head16));
	}

	sendPresenceSoon(ms = this.presenceMs) {
		if (this.timers.presence) return;
		this.timers.presence = setTimeout(() => {
			this.timers.presence = 0;
			this.sendPresence();
		}, ms);
	}
	sendPresence() {
		if (!this.live || !this.cursor) return;
		this.send({
			case: 'presence',
			value: {
				replica: this.replica, clock: ++this.presenceClock, name: this.user.name, color: this.user.color,
				anchor: this.cursor.anchor, head: this.cursor.head,
			},
		});
	}

	onPresence(p) {
		if (p.replica === this.replica) return;
		if (p.gone) {
			this.peers.delete(p.replica);
		} else {
			const old = this.peers.get(p.replica);
			if (old && p.clock <= old.clock) return;
			this.peers.set(p.replica, {
				replica: p.replica, clock: p.clock, name: p.name, color: p.color,
				anchorId: p.anchor ? { replica: p.anchor.replica, counter: p.anchor.counter } : null,
				headId: p.head ? { replica: p.head.replica, counter: p.head.counter } : null,
			});
		}
		this.emitPresence();
		this.emitStatus();
	}

	// Other members with their carets resolved against the current text.
	peerList() {
		const out = [];
		for (const p of this.peers.values()) {
			const head = p.headId ? this.doc.anchorPos(p.headId) : null;
			const anchor = p.anchorId ? this.doc.anchorPos(p.anchorId) : head;
			out.push({
				replica: p.replica, name: p.name, color: p.color, anchor, head,
				anchor16: anchor === null ? null : this.doc.cpTo16(anchor),
				head16: head === null ? null : this.doc.cpTo16(head),
			});
		}
		return out;
	}
	emitPresence() {
		this.emit('presence', this.peerList());
	}
}
