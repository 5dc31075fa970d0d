// smoke.mjs - proves that crdt/ built to WebAssembly is usable from JS.
//
//   node tests/wasm/smoke.mjs build/crdt/quire_crdt.wasm crdt_doc_new ... malloc free
//
// Loads the reactor module with no imports at all (a WASI import means some
// libc I/O crept into the engine), checks that every export named on the
// command line exists, then drives one document through the C API the way the
// web demo will: insert/delete UTF-8 text, read it back, snapshot it and
// decode the snapshot into a second replica. Registered with ctest as
// wasm_smoke by crdt/CMakeLists.txt. Exits 0 on success, 1 with a message.
import { readFile } from 'node:fs/promises';

const [wasmPath, ...expected] = process.argv.slice(2);
if (!wasmPath) {
	console.error('usage: node smoke.mjs MODULE.wasm [EXPORT...]');
	process.exit(2);
}

let failures = 0;
let passes = 0;
function check(ok, what) {
	if (ok) {
		passes++;
	} else {
		failures++;
		console.error(`FAIL: ${what}`);
	}
	return ok;
}

const module = await WebAssembly.compile(await readFile(wasmPath));
const imports = WebAssembly.Module.imports(module);
if (imports.length > 0) {
	const list = imports.map((i) => `${i.module}.${i.name} (${i.kind})`).join(', ');
	console.error(`FAIL: ${wasmPath} imports ${list}; the engine must import nothing`);
	process.exit(1);
}
const { exports: ex } = await WebAssembly.instantiate(module, {});
if (typeof ex._initialize === 'function') ex._initialize();

check(ex.memory instanceof WebAssembly.Memory, 'memory is exported');
// The functions driven below are always required, whatever the caller lists.
const driven = ['crdt_doc_new', 'crdt_doc_free', 'crdt_doc_insert', 'crdt_doc_delete',
	'crdt_doc_length', 'crdt_doc_text', 'crdt_doc_encode', 'crdt_doc_decode',
	'crdt_batch_new', 'crdt_batch_free', 'malloc', 'free'];
for (const name of new Set([...expected, ...driven]))
	check(typeof ex[name] === 'function', `export ${name}`);
if (failures > 0) {
	console.error(`wasm_smoke: ${passes} passed, ${failures} failed`);
	process.exit(1);
}

// ---- drive the engine through its C ABI (wasm32: pointers and size_t are i32,
// crdt_replica is i64 = BigInt) ----------------------------------------------

const CRDT_ESPACE = -10;
const enc = new TextEncoder();
const dec = new TextDecoder('utf-8', { fatal: true });
const bytes = (ptr, n) => new Uint8Array(ex.memory.buffer, ptr, n); // fresh view: memory may grow
const u32 = (ptr) => new DataView(ex.memory.buffer).getUint32(ptr, true);

function cstr(s) {
	const b = enc.encode(s);
	const p = ex.malloc(Math.max(b.length, 1));
	bytes(p, b.length).set(b);
	return [p, b.length];
}
function insert(doc, pos, s, batch = 0) {
	const [p, n] = cstr(s);
	const rc = ex.crdt_doc_insert(doc, pos, p, n, batch);
	ex.free(p);
	return rc;
}
function text(doc) {
	const need = ex.crdt_doc_text(doc, 0, 0) >>> 0;
	const p = ex.malloc(Math.max(need, 1));
	ex.crdt_doc_text(doc, p, need);
	const s = dec.decode(bytes(p, need).slice());
	ex.free(p);
	return s;
}

const doc = ex.crdt_doc_new(1n, 0);
check(doc !== 0, 'crdt_doc_new(1, NULL) returns a document');
const batch = ex.crdt_batch_new(0);
check(batch !== 0, 'crdt_batch_new(NULL) returns a batch');

check(insert(doc, 0, 'héllo wörld', batch) === 0, 'insert at 0');
check(insert(doc, 11, ' 🎉') === 0, 'insert at the end (non-BMP code point)');
check(ex.crdt_doc_length(doc) >>> 0 === 13, 'length counts code points');
check(ex.crdt_doc_delete(doc, 0, 6, batch) === 0, 'delete 6 code points at 0');
check(insert(doc, 5, ',', batch) === 0, 'insert in the middle');
const want = 'wörld, 🎉';
check(text(doc) === want, `text is ${JSON.stringify(want)} (got ${JSON.stringify(text(doc))})`);

// Snapshot round trip into a second replica.
const lenp = ex.malloc(4);
let cap = 256;
let buf = ex.malloc(cap);
let rc = ex.crdt_doc_encode(doc, buf, cap, lenp);
if (rc === CRDT_ESPACE) {
	cap = u32(lenp);
	ex.free(buf);
	buf = ex.malloc(cap);
	rc = ex.crdt_doc_encode(doc, buf, cap, lenp);
}
check(rc === 0, `crdt_doc_encode returns 0 (got ${rc})`);
const statusp = ex.malloc(4);
const doc2 = ex.crdt_doc_decode(buf, u32(lenp), 2n, 0, statusp);
check(doc2 !== 0, 'crdt_doc_decode returns a document');
if (doc2 !== 0) {
	check(text(doc2) === want, 'decoded replica has the same text');
	check(insert(doc2, 0, '¡') === 0, 'decoded replica can be edited');
	check(text(doc2) === '¡' + want, 'edit on the decoded replica');
	ex.crdt_doc_free(doc2);
}
// A damaged snapshot is rejected, not a crash.
bytes(buf, 1)[0] = 0xff;
check(ex.crdt_doc_decode(buf, u32(lenp), 3n, 0, statusp) === 0, 'bad snapshot version is rejected');

ex.free(statusp);
ex.free(buf);
ex.free(lenp);
ex.crdt_batch_free(batch);
ex.crdt_doc_free(doc);

console.log(`wasm_smoke: ${passes} passed, ${failures} failed`);
process.exit(failures > 0 ? 1 : 0);
