// measure-load.mjs - time from page load to editable for a big document.
//
//   node test/measure-load.mjs [--trace PATH] [--runs N]
//
// Imports the trace (default ../shared/traces/automerge-paper.json.gz, as
// document "paper") into a fresh database with quire-dump, starts
// quire-server on it serving web-demo/dist, and opens /?doc=paper in headless
// chromium N times (a fresh profile each time: no IndexedDB copy). Measured
// in the page: navigationStart -> the editor holds the document's full text
// (compared with the text the import reported) and is editable and live.
// Prints each run and the median. Not part of ctest (it takes ~10-20 s).
// Environment: QUIRE_SERVER_BIN, QUIRE_DUMP_BIN, QUIRE_CHROMIUM, QUIRE_WEB_DIR.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, existsSync, readdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { chromium } from 'playwright-core';
import { startServer, serverBin, webDemoDir } from './helpers.mjs';

const args = process.argv.slice(2);
const opt = (name, dflt) => {
	const i = args.indexOf(name);
	return i >= 0 ? args[i + 1] : dflt;
};
const repo = resolve(webDemoDir, '..');
const trace = resolve(opt('--trace', join(repo, '..', 'shared', 'traces', 'automerge-paper.json.gz')));
const runs = Number(opt('--runs', 5));
const CHROMIUM = process.env.QUIRE_CHROMIUM || '/usr/bin/chromium';
const WEB = process.env.QUIRE_WEB_DIR || join(webDemoDir, 'dist');
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
	'--disable-background-networking', '--disable-component-update', '--disable-sync'];

function dumpBin() {
	if (process.env.QUIRE_DUMP_BIN) return process.env.QUIRE_DUMP_BIN;
	const guess = join(dirname(serverBin()), '..', 'tools', 'quire-dump');
	if (existsSync(guess)) return guess;
	const dir = join(repo, 'build');
	const found = readdirSync(dir).map((d) => join(dir, d, 'tools', 'quire-dump')).filter(existsSync);
	found.sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs);
	if (!found.length) throw new Error('quire-dump not found: build it or set QUIRE_DUMP_BIN');
	return found[0];
}

const dir = mkdtempSync(join(tmpdir(), 'quire-measure-'));
const db = join(dir, 'quire.db');
const imp = spawnSync(dumpBin(), ['--db', db, 'import', trace, 'paper'], { encoding: 'utf8' });
if (imp.status !== 0) throw new Error(`import failed: ${imp.stderr}`);
console.log(`imported ${trace} as "paper": ${imp.stdout.trim().split('\n').pop()}`);

const srv = await startServer(['--web', WEB], { db });
const times = [];
let chars = 0;
try {
	for (let i = 0; i < runs; i++) {
		const prof = mkdtempSync(join(tmpdir(), 'quire-chromium-'));
		const ctx = await chromium.launchPersistentContext(prof, {
			executablePath: CHROMIUM, headless: true, args: ARGS, viewport: { width: 900, height: 700 },
		});
		try {
			const page = ctx.pages()[0] ?? (await ctx.newPage());
			await page.goto(`${srv.url}/?doc=paper`);
			const r = await page.waitForFunction(() => {
				const q = window.quire;
				if (!q || !q.client.live || q.client.text.length === 0) return false;
				if (q.view.state.doc.length !== q.client.text.length) return false;
				if (q.view.contentDOM.getAttribute('contenteditable') !== 'true') return false;
				return { ms: performance.now(), chars: q.view.state.doc.length, seq: q.client.lastSeq,
					snapshots: q.client.stats.snapshots };
			}, null, { polling: 'raf', timeout: 60000 });
			const v = await r.jsonValue();
			chars = v.chars;
			times.push(v.ms);
			console.log(`run ${i + 1}: ${v.ms.toFixed(0)} ms to editable (${v.chars} UTF-16 units, seq ${v.seq}, snapshot welcome: ${v.snapshots})`);
		} finally {
			await ctx.close();
			rmSync(prof, { recursive: true, force: true });
		}
	}
} finally {
	await srv.stop();
	rmSync(dir, { recursive: true, force: true });
}
times.sort((a, b) => a - b);
console.log(`load-to-editable for ${chars} characters: median ${times[Math.floor(times.length / 2)].toFixed(0)} ms `
	+ `(min ${times[0].toFixed(0)}, max ${times[times.length - 1].toFixed(0)}, ${runs} runs, headless chromium, loopback)`);
