// storage.js - where a QuireClient keeps its document between page loads.
//
// The client persists, per document, one record (written on a debounce and
// on demand, see QuireClient.persistNow):
//   { v: 1, docId, replica: '<decimal>', lastSeq, state: Uint8Array (the
//     engine's crdt_doc_encode snapshot), unacked: [op, …] (wire-shaped ops
//     with absolute ids, BigInts as decimal strings), savedAt }
// and, synchronously before each Update goes out, the end of the counters it
// has sent (noteSent): if a page dies after sending ops but before the next
// record write, the restored record is older than what the server has, and
// the client must catch up before it makes new ops with that replica.
//
// A storage is any object with
//   load(docId) -> Promise<record|null>      save(docId, record) -> Promise
//   remove(docId) -> Promise                 noteSent(docId, replica, end)   (sync)
//   sentMark(docId, replica) -> number       (sync; 0 when unknown)
// MemoryStorage (node, tests) and IndexedDBStorage (the browser) are here.

export class MemoryStorage {
	constructor() {
		this.records = new Map();
		this.marks = new Map();
	}
	async load(docId) {
		const r = this.records.get(docId);
		return r ? structuredClone(r) : null;
	}
	async save(docId, record) {
		this.records.set(docId, structuredClone(record));
	}
	async remove(docId) {
		this.records.delete(docId);
		this.marks.delete(docId);
	}
	noteSent(docId, replica, end) {
		this.marks.set(docId, { replica: String(replica), end });
	}
	sentMark(docId, replica) {
		const m = this.marks.get(docId);
		return m && m.replica === String(replica) ? m.end : 0;
	}
}

const DB_NAME = 'quire';
const STORE = 'docs';

function req(r) {
	return new Promise((resolve, reject) => {
		r.onsuccess = () => resolve(r.result);
		r.onerror = () => reject(r.error);
	});
}

// IndexedDB database "quire", object store "docs" keyed by document id; the
// sent marks live in localStorage (synchronous, so they are written before
// the socket send returns).
export class IndexedDBStorage {
	constructor(idb = globalThis.indexedDB, local = safeLocalStorage()) {
		this.idb = idb;
		this.local = local;
		this.db = null;
	}
	async open() {
		if (this.db) return this.db;
		const r = this.idb.open(DB_NAME, 1);
		r.onupgradeneeded = () => r.result.createObjectStore(STORE);
		this.db = await req(r);
		return this.db;
	}
	async tx(mode, fn) {
		const db = await this.open();
		const t = db.transaction(STORE, mode, { durability: 'strict' });
		const result = await req(fn(t.objectStore(STORE)));
		await new Promise((resolve, reject) => {
			t.oncomplete = resolve;
			t.onerror = t.onabort = () => reject(t.error);
		});
		return result;
	}
	async load(docId) {
		return (await this.tx('readonly', (s) => s.get(docId))) ?? null;
	}
	async save(docId, record) {
		await this.tx('readwrite', (s) => s.put(record, docId));
	}
	async remove(docId) {
		await this.tx('readwrite', (s) => s.delete(docId));
		this.local?.removeItem(`quire.sent.${docId}`);
	}
	noteSent(docId, replica, end) {
		try {
			this.local?.setItem(`quire.sent.${docId}`, `${replica}:${end}`);
		} catch {
			/* quota: the record write still narrows the window */
		}
	}
	sentMark(docId, replica) {
		const v = this.local?.getItem(`quire.sent.${docId}`);
		if (!v) return 0;
		const [r, end] = v.split(':');
		return r === String(replica) ? Number(end) : 0;
	}
}

function safeLocalStorage() {
	try {
		return globalThis.localStorage ?? null;
	} catch {
		return null;
	}
}

// ---- ops <-> storable records ---------------------------------------------------

const idOut = (id) => (id ? { replica: String(id.replica), counter: id.counter } : null);
const idIn = (id) => (id ? { replica: BigInt(id.replica), counter: id.counter } : null);

export function opToRecord(op) {
	const r = { kind: op.kind, replica: String(op.replica), counter: op.counter, lamport: op.lamport, len: op.len };
	if (op.sent) r.sent = true;
	if (op.kind === 'insert') {
		r.left = idOut(op.left);
		r.right = idOut(op.right);
		r.text = op.text;
		r.collected = !!op.collected;
	} else {
		r.target = idOut(op.target);
	}
	return r;
}

export function opFromRecord(r) {
	const op = { kind: r.kind, replica: BigInt(r.replica), counter: r.counter, lamport: r.lamport, len: r.len };
	if (r.sent) op.sent = true;
	if (r.kind === 'insert') {
		op.left = idIn(r.left);
		op.right = idIn(r.right);
		op.text = r.text;
		op.collected = r.collected;
	} else {
		op.target = idIn(r.target);
	}
	return op;
}
