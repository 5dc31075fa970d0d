// app.js - the Quire web demo: CodeMirror 6 bound to a QuireClient.
//
// The document is /?doc=NAME (a random name is chosen and put in the URL when
// absent; ?token=T passes an access token). Local transactions become CRDT
// ops (UTF-16 editor offsets -> code points, in the client); remote patches
// become editor changes annotated as remote (not in the undo history; the
// local selection is mapped through them by CodeMirror). Other members'
// carets and selections are decorations in their colour with their name.
//
// Offline: the document (engine snapshot, seq, replica, unacknowledged ops)
// is kept in IndexedDB and restored before connecting, so edits made while
// disconnected survive a reload and merge when the server is back. One page
// per document owns the saved copy (a Web Lock): a second tab of the same
// document works from the server only.
import { EditorState, StateField, StateEffect, Annotation, Transaction, Compartment } from '@codemirror/state';
import { EditorView, Decoration, WidgetType, keymap, drawSelection, lineNumbers, highlightActiveLine } from '@codemirror/view';
import { defaultKeymap, history, historyKeymap } from '@codemirror/commands';
import { loadEngine, QuireClient, randomReplica, IndexedDBStorage } from './client/index.js';

const PALETTE = ['#e91e63', '#3f51b5', '#009688', '#ff9800', '#9c27b0', '#4caf50', '#f44336', '#2196f3', '#795548', '#607d8b'];
const $ = (id) => document.getElementById(id);

// ---- document name, user ----------------------------------------------------

const params = new URLSearchParams(location.search);
let docId = params.get('doc');
if (!docId || !/^[A-Za-z0-9._~/-]{1,200}$/.test(docId)) {
	docId = `doc-${randomReplica().toString(36).slice(0, 8)}`;
	params.set('doc', docId);
	history.replaceState(null, '', `${location.pathname}?${params}`);
}
const token = params.get('token') ?? '';
const store = (() => {
	try {
		return window.localStorage;
	} catch {
		return null;
	}
})();
let name = store?.getItem('quire.name') || `User ${Math.floor(100 + Math.random() * 900)}`;
let color = store?.getItem('quire.color') || PALETTE[Math.floor(Math.random() * PALETTE.length)];
store?.setItem('quire.name', name);
store?.setItem('quire.color', color);

$('doc-link').textContent = docId;
$('doc-link').href = location.href;
$('name').value = name;
$('swatch').style.background = color;

// ---- remote carets -------------------------------------------------------------

const remote = Annotation.define();
const setPeers = StateEffect.define();

class CaretWidget extends WidgetType {
	constructor(name, color) {
		super();
		this.name = name;
		this.color = color;
	}
	eq(o) {
		return o.name === this.name && o.color === this.color;
	}
	toDOM() {
		const el = document.createElement('span');
		el.className = 'cm-remote-caret';
		el.style.borderColor = this.color;
		const label = document.createElement('span');
		label.textContent = this.name || 'anonymous';
		label.style.background = this.color;
		el.appendChild(label);
		return el;
	}
	ignoreEvent() {
		return true;
	}
}

function peerDecorations(peers, len) {
	const ranges = [];
	for (const p of peers) {
		if (p.head16 === null) continue;
		const head = Math.min(p.head16, len);
		const anchor = Math.min(p.anchor16 ?? head, len);
		if (anchor !== head) {
			const style = `background-color: ${p.color}33`;
			ranges.push(Decoration.mark({ attributes: { style }, class: 'cm-remote-selection' })
				.range(Math.min(anchor, head), Math.max(anchor, head)));
		}
		ranges.push(Decoration.widget({ widget: new CaretWidget(p.name, p.color), side: 1 }).range(head));
	}
	return Decoration.set(ranges, true);
}

const peersField = StateField.define({
	create: () => Decoration.none,
	update(deco, tr) {
		deco = deco.map(tr.changes);
		for (const e of tr.effects) if (e.is(setPeers)) deco = peerDecorations(e.value, tr.state.doc.length);
		return deco;
	},
	provide: (f) => EditorView.decorations.from(f),
});

// ---- status and messages ---------------------------------------------------------

function banner(text, kind = 'error') {
	const b = $('banner');
	b.hidden = !text;
	b.textContent = text ?? '';
	b.className = `banner ${kind}`;
}

function explain(e, live) {
	switch (e.codeName) {
		case 'UNAUTHORIZED': return 'Access denied: the access token is missing, invalid or expired. Ask for a new link.';
		case 'FORBIDDEN': return live
			? 'This document is read-only for you: your edits are not saved.'
			: 'You have no access to this document.';
		case 'TOO_LARGE': return 'The document is too large: the server refuses further edits.';
		case 'UNSUPPORTED_VERSION': return 'This page speaks a protocol version the server does not support: reload the page.';
		case 'RATE_LIMITED': return 'Typing faster than the server allows: edits will be resent in a moment.';
		case 'SHUTTING_DOWN': return 'The server is restarting: reconnecting…';
		case 'DOCUMENT_UNAVAILABLE': return 'The server cannot load this document right now: retrying…';
		case 'STORAGE_FAILURE': return 'The server could not save the last edits: retrying…';
		case 'INVALID_OP': case 'MISSING_DEPENDENCY':
			return 'The server refused edits from this page (they diverged); the page rejoined with the saved document.';
		default: return `${e.codeName}: ${e.message}`;
	}
}

function renderStatus(s) {
	const el = $('status');
	el.replaceChildren();
	const add = (text, cls) => {
		const span = document.createElement('span');
		span.textContent = text;
		if (cls) span.className = cls;
		el.appendChild(span);
	};
	const label = s.state === 'reconnecting' && s.retryInMs
		? `reconnecting (retry in ${(s.retryInMs / 1000).toFixed(1)} s)` : s.state;
	add(label, `state-${s.state}`);
	add(`seq ${s.seq}`);
	add(`${s.peers} other${s.peers === 1 ? '' : 's'} here`);
	if (s.unacked) add(`${s.unacked} edit${s.unacked === 1 ? '' : 's'} not yet saved`);
	if (s.readOnly) add('read-only');
}

// ---- start -------------------------------------------------------------------------

// The saved copy of this document, if this page can own it: IndexedDB is
// there and no other page of this browser holds the document's lock (a
// reloading page releases it as it unloads; wait a moment for that).
async function ownStorage() {
	if (!globalThis.indexedDB) return null;
	if (!navigator.locks) return new IndexedDBStorage();
	return new Promise((resolve) => {
		const signal = AbortSignal.timeout ? AbortSignal.timeout(1500) : undefined;
		navigator.locks.request(`quire:doc:${docId}`, { signal }, () => {
			resolve(new IndexedDBStorage());
			return new Promise(() => {}); // held while the page lives
		}).catch(() => resolve(null));
	});
}

const [engine, storage] = await Promise.all([
	loadEngine(fetch(new URL('quire.wasm', import.meta.url))),
	ownStorage(),
]);
const wsUrl = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/sync`;
const client = new QuireClient({ url: wsUrl, docId, engine, token, name, color, flushMs: 20, storage });
if (storage) await client.restore();
const canEdit = (s) => !s.readOnly && !s.holding;

const editable = new Compartment();
let view;
let peersQueued = false;
function refreshPeers() {
	if (peersQueued) return;
	peersQueued = true;
	queueMicrotask(() => {
		peersQueued = false;
		view.dispatch({ effects: setPeers.of(client.peerList()) });
	});
}

const toClient = EditorView.updateListener.of((u) => {
	let local = false;
	for (const tr of u.transactions) {
		if (!tr.docChanged || tr.annotation(remote)) continue;
		local = true;
		const edits = [];
		tr.changes.iterChanges((fromA, toA, _fromB, _toB, ins) => edits.push([fromA, toA, ins.toString()]));
		// Positions are in the document before the transaction: apply from the end.
		for (let i = edits.length - 1; i >= 0; i--) {
			const [from, to, text] = edits[i];
			if (to > from) client.delete16(from, to);
			if (text) client.insert16(from, text);
		}
	}
	if (local || (u.selectionSet && !u.transactions.every((t) => t.annotation(remote)))) {
		const sel = u.state.selection.main;
		client.setCursor16(sel.anchor, sel.head);
	}
	if (local) refreshPeers();
});

view = new EditorView({
	parent: $('editor'),
	state: EditorState.create({
		doc: client.text,
		extensions: [
			EditorState.lineSeparator.of('\n'),
			lineNumbers(), highlightActiveLine(), drawSelection(), history(),
			keymap.of([...defaultKeymap, ...historyKeymap]),
			EditorView.lineWrapping,
			editable.of(EditorView.editable.of(canEdit(client.status()))),
			peersField, toClient,
		],
	}),
});

client.on('change', ({ patches }) => {
	for (const p of patches) {
		view.dispatch({
			changes: { from: p.from16, to: p.to16, insert: p.text },
			annotations: [remote.of(true), Transaction.addToHistory.of(false)],
		});
	}
	refreshPeers();
});
client.on('presence', refreshPeers);
let lastStatus = null;
client.on('status', (s) => {
	renderStatus(s);
	if (s.state === 'connected' && lastStatus?.state !== 'connected' && $('banner').classList.contains('info')) banner(null);
	if (s.holding && !lastStatus?.holding)
		banner('Restoring this page: waiting for the server before editing (edits sent just before the page closed)…', 'info');
	if (!lastStatus || canEdit(s) !== canEdit(lastStatus))
		view.dispatch({ effects: editable.reconfigure(EditorView.editable.of(canEdit(s))) });
	if (s.readOnly && !lastStatus?.readOnly && !$('banner').textContent.startsWith('This document is read-only'))
		banner('This document is read-only for you (your link gives read access): you can follow the edits of others but not type.');
	lastStatus = s;
});
client.on('error', (e) => {
	console.warn('quire:', e);
	const transient = ['RATE_LIMITED', 'SHUTTING_DOWN', 'DOCUMENT_UNAVAILABLE', 'STORAGE_FAILURE'].includes(e.codeName);
	banner(explain(e, client.live), transient ? 'info' : 'error');
});

$('name').addEventListener('input', () => {
	name = $('name').value.trim();
	store?.setItem('quire.name', name);
	client.setUser({ name });
});

window.addEventListener('offline', () => client.dropConnection());
// Save at once when the page may go away (the debounced write may not come).
addEventListener('pagehide', () => client.persistNow());
document.addEventListener('visibilitychange', () => {
	if (document.visibilityState === 'hidden') client.persistNow();
});
window.addEventListener('online', () => {
	if (client.state === 'reconnecting') {
		client.attempt = 0;
		client.connect();
	}
});

client.connect();
view.focus();
// For tests and the console.
window.quire = { client, view, docId, storage };
