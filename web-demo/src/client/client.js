// client.js - QuireClient: one document kept in sync with a quire-server.
//
// Speaks docs/PROTOCOL.md (subprotocol quire.v1, one protobuf message per
// binary WebSocket message, generated from proto/quire.proto) over any
// WebSocket implementation with the browser API (the browser's, or the `ws`
// package in node). The CRDT is crdt/ in WebAssembly (engine.js); the client
// keeps a JS string mirror of the text so editors get UTF-16 offsets.
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
import { cpToUtf16, utf16ToCp, hasSurrogates, cpLength } from './text.js';
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
		this.presenceMs = opts.presenceMs ?? 50;
		this.handlers = new Map();
		this.storage = opts.storage ?? null;
		this.persistMs = opts.persistMs ?? 300;
		this.dirty = false;
		this.holding = false;

		this.doc = this.engine.newDoc(this.replica);
		this.text = '';
		this.lastSeq = 0;
		this.headSeq = 0;
		this.unacked = []; // our ops the server may not have, in counter order
		this.sentUpTo = 0; // unacked[0..sentUpTo) went out on this connection
		this.inflight = new Map(); // client_batch -> counter end it covers
		this.batch = 0;
		this.peers = new Map(); // replica -> presence
		this.cursor = null; // {anchor, head} ids
		this.presenceClock = 0;
		this.state = 'offline';
		this.live = false;
		this.readOnly = false;
		this.refused = false;
		this.ws = null;
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

	on(ev, fn) {
		if (!this.handlers.has(ev)) this.handlers.set(ev, new Set());
		this.handlers.get(ev).add(fn);
		return () => this.handlers.get(ev).delete(fn);
	}
	emit(ev, data) {
		for (const fn of this.handlers.get(ev) ?? []) fn(data);
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
		ws.binaryType = 'arraybuffer';
		this.ws = ws;
		ws.onopen = () => {
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
		ws.onmessage = (ev) => {
			if (this.ws !== ws) return;
			this.lastRecv = Date.now();
			if (typeof ev.data === 'string') return;
			let msg;
			try {
				msg = fromBinary(ServerMessageSchema, new Uint8Array(ev.data));
			} catch (err) {
				this.emit('error', { code: 0, codeName: 'DECODE', message: String(err), fatal: false });
				return;
			}
			this.onMessage(msg);
		};
		ws.onclose = (ev) => {
			if (this.ws !== ws) return;
			this.onClosed(ev.code);
		};
		ws.onerror = () => {};
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
		const doc = this.engine.newDoc(replica);
		try {
			if (rec.state && rec.state.length) doc.load(rec.state);
		} catch (err) {
			doc.free();
			this.emit('error', { code: 0, codeName: 'STORAGE', message: `the saved document is unusable: ${err}`, fatal: false });
			return false;
		}
		this.doc.free();
		this.doc = doc;
		this.replica = replica;
		this.unacked = unacked;
		this.sentUpTo = 0;
		this.lastSeq = Number(rec.lastSeq) || 0;
		this.holding = unacked.length > 0 && (this.storage.sentMark?.(this.docId, saved) ?? 0) > doc.seen(saved);
		this.stats.restored++;
		this.resetText(doc.text());
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
				state: this.doc.encode(), unacked: this.unacked.map(opToRecord), savedAt: Date.now(),
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
			ws.onopen = ws.onmessage = ws.onclose = null;
			try {
				ws.close(code);
			} catch {
				/* already closed */
			}
		}
	}

	onClosed(code) {
		this.dropSocket(1000);
		this.inflight.clear();
		this.sentUpTo = 0;
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
		if (!this.ws || this.ws.readyState !== 1) return false;
		this.ws.send(toBinary(ClientMessageSchema, create(ClientMessageSchema, { doc, msg })));
		this.lastSent = Date.now();
		return true;
	}

	setState(state) {
		this.state = state;
		this.emitStatus();
	}
	emitStatus() {
		this.emit('status', this.status());
	}
	status() {
		return {
			state: this.state, seq: this.lastSeq, headSeq: this.headSeq, peers: this.peers.size,
			unacked: this.unacked.length, readOnly: this.readOnly, retryInMs: this.retryInMs ?? 0,
			replica: this.replica, holding: this.holding,
		};
	}

	// ---- server messages -------------------------------------------------------

	onMessage(m) {
		const v = m.msg.value;
		switch (m.msg.case) {
			case 'welcome': return this.onWelcome(v);
			case 'changes': return this.onChanges(v);
			case 'ack': return this.onAck(v);
			case 'presence': return this.onPresence(v);
			case 'error': return this.onError(m.doc, v);
			case 'pong': return;
			default: return; // a newer server's message kind: ignored (PROTOCOL 7)
		}
	}

	onWelcome(w) {
		if (w.protocolVersion !== PROTOCOL_VERSION) {
			this.refused = true;
			this.emit('error', {
				code: ErrorCode.UNSUPPORTED_VERSION, codeName: 'UNSUPPORTED_VERSION',
				message: `server answered protocol version ${w.protocolVersion}`, fatal: true,
			});
			this.dropSocket(1000);
			this.setState('refused');
			return;
		}
		this.readOnly = w.readOnly;
		this.headSeq = Number(w.headSeq);
		if (w.snapshotOpt.case === 'snapshot') this.loadSnapshot(w.snapshotOpt.value);
		if (this.lastSeq >= this.headSeq) this.goLive();
		else this.emitStatus();
	}

	loadSnapshot(s) {
		this.doc.load(s.state);
		this.stats.snapshots++;
		// Re-apply our ops the snapshot may lack (PROTOCOL 5.4); known ones are
		// duplicates. Ops that no longer fit (the server lost changes) are dropped.
		const mine = s.version.find((e) => e.replica === this.replica);
		this.serverHas(mine ? mine.next : 0);
		for (const op of this.unacked) {
			try {
				this.doc.apply(op);
			} catch (err) {
				this.emit('error', { code: 0, codeName: 'RESYNC', message: String(err), fatal: false });
			}
		}
		this.lastSeq = Number(s.seq);
		this.resetText(this.doc.text());
		this.persistSoon();
	}

	onChanges(c) {
		for (const ch of c.changes) {
			const seq = Number(ch.seq);
			if (seq <= this.lastSeq) continue;
			if (seq !== this.lastSeq + 1) {
				this.emit('error', { code: 0, codeName: 'SEQ_GAP', message: `seq ${seq} after ${this.lastSeq}`, fatal: false });
				this.dropConnection();
				return;
			}
			const patches = [];
			for (const w of ch.ops) {
				const op = fromWireOp(w);
				if (op.replica === this.replica) {
					this.stats.ownEchoes++;
					this.serverHas(op.counter + op.len);
				}
				let r;
				try {
					r = this.doc.apply(op);
				} catch (err) {
					this.emit('error', { code: err.code ?? 0, codeName: 'APPLY', message: String(err), fatal: false });
					continue;
				}
				for (const p of r.patches) patches.push(this.mirrorPatch(p));
			}
			this.lastSeq = seq;
			if (patches.length) this.emit('change', { patches, origin: 'remote' });
		}
		if (this.peers.size) this.emitPresence();
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
		this.emitStatus();
	}

	onError(doc, e) {
		const code = e.code;
		const name = errorName(code);
		const info = { code, codeName: name, message: e.message, clientBatch: Number(e.clientBatch), fatal: false };
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
		this.doc.free();
		this.replica = randomReplica();
		this.doc = this.engine.newDoc(this.replica);
		this.unacked = [];
		this.lastSeq = 0;
		this.holding = false;
		this.resetText('');
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
		let n = 0;
		while (n < this.unacked.length && this.unacked[n].counter + this.unacked[n].len <= end) n++;
		if (n === 0) return;
		this.unacked.splice(0, n);
		this.sentUpTo = Math.max(0, this.sentUpTo - n);
	}

	flush() {
		clearTimeout(this.timers.flush);
		this.timers.flush = 0;
		if (!this.live || this.readOnly) return;
		while (this.sentUpTo < this.unacked.length) {
			const ops = [];
			let bytes = 0, i = this.sentUpTo;
			for (; i < this.unacked.length && ops.length < MAX_OPS_PER_UPDATE; i++) {
				const op = this.unacked[i];
				const tb = op.kind === 'insert' ? op.text.length * 3 : 0;
				if (ops.length && bytes + tb > MAX_TEXT_PER_UPDATE) break;
				bytes += tb;
				if (op.sent) this.stats.resent++;
				op.sent = true;
				ops.push(toWireOp(op));
			}
			const last = this.unacked[i - 1];
			const clientBatch = ++this.batch;
			this.storage?.noteSent?.(this.docId, this.replica, last.counter + last.len);
			if (!this.send({ case: 'update', value: { clientBatch: BigInt(clientBatch), ops } })) return;
			this.inflight.set(clientBatch, last.counter + last.len);
			this.sentUpTo = i;
		}
		this.emitStatus();
	}

	// ---- local edits ----------------------------------------------------------

	// Insert text at code point pos / delete len code points at pos.
	insert(pos, text) {
		const ops = this.doc.insert(pos, text);
		const from16 = cpToUtf16(this.text, pos);
		this.text = this.text.slice(0, from16) + text + this.text.slice(from16);
		this.queue(ops);
	}
	delete(pos, len) {
		const ops = this.doc.delete(pos, len);
		const plain = !hasSurrogates(this.text);
		const from16 = cpToUtf16(this.text, pos, plain);
		const to16 = cpToUtf16(this.text, pos + len, plain);
		this.text = this.text.slice(0, from16) + this.text.slice(to16);
		this.queue(ops);
	}
	// The same with UTF-16 offsets (editors).
	insert16(from16, text) {
		this.insert(utf16ToCp(this.text, from16), text);
	}
	delete16(from16, to16) {
		const plain = !hasSurrogates(this.text);
		const a = utf16ToCp(this.text, from16, plain);
		const b = utf16ToCp(this.text, to16, plain);
		if (b > a) this.delete(a, b - a);
	}

	queue(ops) {
		if (ops.length === 0) return;
		for (const op of ops) this.unacked.push(op);
		this.persistSoon();
		if (this.flushMs > 0) {
			if (!this.timers.flush) this.timers.flush = setTimeout(() => this.flush(), this.flushMs);
		} else {
			this.flush();
		}
		if (this.cursor) this.sendPresenceSoon();
	}

	// ---- text mirror ----------------------------------------------------------

	mirrorPatch(p) {
		const plain = !hasSurrogates(this.text);
		const from16 = cpToUtf16(this.text, p.pos, plain);
		const to16 = cpToUtf16(this.text, p.pos + p.deleted, plain);
		this.text = this.text.slice(0, from16) + p.text + this.text.slice(to16);
		return { pos: p.pos, deleted: p.deleted, text: p.text, from16, to16 };
	}

	// Replace the mirror by `next`, reported as one minimal patch.
	resetText(next) {
		const prev = this.text;
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
		this.text = next;
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
		const plain = !hasSurrogates(this.text);
		this.setCursor(utf16ToCp(this.text, anchor16, plain), utf16ToCp(this.text, head16, plain));
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
		const plain = !hasSurrogates(this.text);
		const out = [];
		for (const p of this.peers.values()) {
			const head = p.headId ? this.doc.anchorPos(p.headId) : null;
			const anchor = p.anchorId ? this.doc.anchorPos(p.anchorId) : head;
			out.push({
				replica: p.replica, name: p.name, color: p.color, anchor, head,
				anchor16: anchor === null ? null : cpToUtf16(this.text, anchor, plain),
				head16: head === null ? null : cpToUtf16(this.text, head, plain),
			});
		}
		return out;
	}
	emitPresence() {
		this.emit('presence', this.peerList());
	}
}
