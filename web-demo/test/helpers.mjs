// helpers.mjs - shared by the web demo's node and browser tests: start a real
// quire-server on a free loopback port with a fresh database, find the built
// wasm module, wait for conditions.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, existsSync, statSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const webDemoDir = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const repo = resolve(webDemoDir, '..');

// The newest build/*/<rel> (ctest passes the exact one in the environment).
function newestBuilt(rel) {
	const dir = join(repo, 'build');
	if (!existsSync(dir)) return null;
	const found = readdirSync(dir).map((d) => join(dir, d, rel)).filter((p) => existsSync(p));
	found.sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs);
	return found[0] ?? null;
}

export function serverBin() {
	const bin = process.env.QUIRE_SERVER_BIN || newestBuilt('server/quire-server');
	if (!bin) throw new Error('quire-server not found: build it (scripts/build.sh) or set QUIRE_SERVER_BIN');
	return bin;
}

export function wasmFile() {
	const f = process.env.QUIRE_WASM_FILE || newestBuilt('web-demo/quire.wasm') || join(webDemoDir, 'dist', 'quire.wasm');
	if (!existsSync(f)) throw new Error('quire.wasm not found: build the web demo or set QUIRE_WASM_FILE');
	return f;
}

// Start quire-server; resolves to { port, url, wsUrl, log(), stop(), restart() }.
// The database lives in a fresh temp dir removed by stop().
// opts.db: use that database instead (it is not removed).
export async function startServer(extraArgs = [], opts = {}) {
	const dir = mkdtempSync(join(tmpdir(), 'quire-web-test-'));
	const db = opts.db ?? join(dir, 'quire.db');
	let proc, out = '', port = 0;
	const launch = (listenPort) => new Promise((resolveStarted, reject) => {
		const timer = setTimeout(() => reject(new Error(`quire-server did not start:\n${out}`)), 10000);
		const resolveP = () => {
			clearTimeout(timer);
			resolveStarted();
		};
		proc = spawn(serverBin(), ['--listen', `127.0.0.1:${listenPort}`, '--db', db, ...extraArgs],
			{ stdio: ['ignore', 'pipe', 'pipe'] });
		const onData = (d) => {
			out += d;
			const m = /listening on 127\.0\.0\.1:(\d+)/.exec(out);
			if (m && !port) {
				port = Number(m[1]);
				resolveP();
			} else if (m && listenPort) {
				resolveP();
			}
		};
		proc.stdout.on('data', onData);
		proc.stderr.on('data', onData);
		proc.on('exit', (code) => reject(new Error(`quire-server exited (${code}) before listening:\n${out}`)));
	});
	await launch(0);
	const stopProc = () => new Promise((r) => {
		if (proc.exitCode !== null) return r();
		proc.removeAllListeners('exit');
		proc.on('exit', () => r());
		proc.kill('SIGTERM');
	});
	return {
		port,
		url: `http://127.0.0.1:${port}`,
		wsUrl: `ws://127.0.0.1:${port}/sync`,
		log: () => out,
		async restart() {
			await stopProc();
			out = '';
			await launch(port);
		},
		async stop() {
			await stopProc();
			rmSync(dir, { recursive: true, force: true });
		},
	};
}

export async function until(cond, what, timeoutMs = 10000) {
	const end = Date.now() + timeoutMs;
	while (!(await cond())) {
		if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
		await new Promise((r) => setTimeout(r, 10));
	}
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// A seeded PRNG (mulberry32) so failures reproduce.
export function prng(seed) {
	let a = seed >>> 0;
	return () => {
		a = (a + 0x6d2b79f5) >>> 0;
		let t = a;
		t = Math.imul(t ^ (t >>> 15), t | 1);
		t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
		return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
	};
}
