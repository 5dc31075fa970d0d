// index.js - the Quire JS client library: import from here.
//   import { loadEngine, QuireClient } from './client/index.js';
//   const engine = await loadEngine(fetch('quire.wasm'));
//   const c = new QuireClient({ url: 'ws://host/sync', docId: 'notes', engine });
//   c.on('change', ...); c.on('status', ...); c.connect(); c.insert(0, 'hi');
export { loadEngine, Engine, WasmDoc, CrdtError } from './engine.js';
export { QuireClient, randomReplica, errorName, toWireOp, fromWireOp, PROTOCOL_VERSION, SUBPROTOCOL } from './client.js';
export { cpToUtf16, utf16ToCp, cpLength } from './text.js';
export { MemoryStorage, IndexedDBStorage } from './storage.js';
