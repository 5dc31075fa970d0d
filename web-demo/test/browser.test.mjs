// browser.test.mjs - the web demo in a real browser (playwright-core driving
// Debian's chromium) against a real quire-server serving web-demo/dist.
//
//   node --test test/browser.test.mjs     (ctest: web_demo_browser)
//
// Two windows (separate fresh profiles) type concurrently into one document,
// at the same place, with disjoint character sets (ASCII, CJK, emoji, a
// newline); both must end with identical text that holds every keystroke of
// each, in order. Also: the remote caret with the other's name is shown, and
// the keystroke-to-remote-screen latency is measured. The two windows are
// saved side by side as QUIRE_SCREENSHOT_DIR/web-demo.png when that is set
// (ctest: the build tree; `npm run screenshot`: docs/img/, shown in the README).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, mkdirSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { startServer, webDemoDir } from './helpers.mjs';

const CHROMIUM = process.env.QUIRE_CHROMIUM || '/usr/bin/chromium';
const WEB = process.env.QUIRE_WEB_DIR || join(webDemoDir, 'dist');
const SHOTS = process.env.QUIRE_SCREENSHOT_DIR || null;
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
	'--disable-background-networking', '--disable-component-update', '--disable-sync'];

async function window(url, dirs) {
	const dir = mkdtempSync(join(tmpdir(), 'quire-chromium-'));
	dirs.push(dir);
	const ctx = await chromium.launchPersistentContext(dir, {
		executablePath: CHROMIUM, headless: true, args: ARGS, viewport: { width: 560, height: 420 },
	});
	const page = ctx.pages()[0] ?? (await ctx.newPage());
	page.on('pageerror', (e) => console.error('page error:', e));
	await page.goto(url);
	await page.waitForFunction(() => window.quire?.client?.live === true);
	return { ctx, page };
}

const editorText = (page) => page.evaluate(() => window.quire.view.state.doc.toString());

test('two windows typing concurrently end identical with every keystroke', { timeout: 150000 }, async () => {
	assert.ok(existsSync(join(WEB, 'quire.wasm')), `${WEB} is built`);
	const srv = await startServer(['--web', WEB]);
	const dirs = [];
	const ctxs = [];
	try {
		const doc = `browser-${Date.now().toString(36)}`;
		const A = await window(`${srv.url}/?doc=${doc}`, dirs);
		ctxs.push(A.ctx);
		const B = await window(`${srv.url}/?doc=${doc}`, dirs);
		ctxs.push(B.ctx);
		assert.equal(await A.page.evaluate(() => new URL(location.href).searchParams.get('doc')), doc);

		for (const [w, name] of [[A, 'Alice'], [B, 'Bob']]) await w.page.fill('#name', name);
		// Both carets at the start of the empty document: the hardest place.
		for (const w of [A, B]) await w.page.click('.cm-content');

		// Disjoint alphabets, so each window's keystrokes can be picked out of
		// the merged text and compared in order.
		const textA = 'alice types here 日本語 and 😀 fine\nthen more by alice ';
		const textB = 'BOB_WRITES_THERE_한국어_👍_OK_AND_MORE_FROM_BOB_';
		const setA = new Set([...textA]);
		const setB = new Set([...textB]);
		for (const ch of setA) assert.ok(!setB.has(ch), `alphabets overlap on ${ch}`);
		await Promise.all([
			A.page.keyboard.type(textA, { delay: 12 }),
			B.page.keyboard.type(textB, { delay: 15 }),
		]);

		await A.page.waitForFunction(() => window.quire.client.unacked.length === 0);
		await B.page.waitForFunction(() => window.quire.client.unacked.length === 0);
		let a = '', b = '';
		for (let i = 0; i < 200; i++) {
			[a, b] = [await editorText(A.page), await editorText(B.page)];
			if (a === b && [...a].length === [...textA].length + [...textB].length) break;
			await new Promise((r) => setTimeout(r, 25));
		}
		assert.equal(a, b, 'both editors show the same text');
		assert.equal([...a].filter((c) => setA.has(c)).join(''), textA, "every keystroke of A, in order");
		assert.equal([...a].filter((c) => setB.has(c)).join(''), textB, "every keystroke of B, in order");
		for (const w of [A, B])
			assert.equal(await w.page.evaluate(() => window.quire.client.text), a, 'client mirror == editor');

		// Remote carets carry the other's name.
		await A.page.waitForSelector('.cm-remote-caret >> text=Bob');
		await B.page.waitForSelector('.cm-remote-caret >> text=Alice');
		assert.match(await A.page.textContent('#status'), /connected.*1 other here/);

		// Keystroke in A -> text visible in B's editor.
		const lat = [];
		await A.page.keyboard.press('End');
		for (let i = 0; i < 15; i++) {
			const n = await B.page.evaluate(() => window.quire.view.state.doc.length);
			const t0 = performance.now();
			await A.page.keyboard.type('z');
			await B.page.waitForFunction((n) => window.quire.view.state.doc.length > n, n, { polling: 'raf' });
			lat.push(performance.now() - t0);
		}
		lat.sort((x, y) => x - y);
		console.log(`keystroke-to-remote-screen latency: median ${lat[7].toFixed(1)} ms, max ${lat[14].toFixed(1)} ms (15 keys, loopback, headless)`);
		assert.equal(await editorText(A.page), await editorText(B.page));

		if (SHOTS) {
			mkdirSync(SHOTS, { recursive: true });
			const [sa, sb] = [await A.page.screenshot(), await B.page.screenshot()];
			const page = await A.ctx.newPage();
			await page.setViewportSize({ width: 1140, height: 440 });
			const img = (buf, who) => `<figure><img src="data:image/png;base64,${buf.toString('base64')}"><figcaption>${who}</figcaption></figure>`;
			await page.setContent(`<style>body{margin:0;display:flex;gap:8px;padding:0 6px;background:#90a4ae;font:12px system-ui}
				figure{margin:4px 0}img{border:1px solid #455a64;display:block}figcaption{color:#fff}</style>
				${img(sa, 'window 1 (Alice)')}${img(sb, 'window 2 (Bob)')}`);
			await page.screenshot({ path: join(SHOTS, 'web-demo.png') });
			console.log(`screenshot: ${join(SHOTS, 'web-demo.png')}`);
		}
	} finally {
		for (const c of ctxs) await c.close().catch(() => {});
		await srv.stop();
		for (const d of dirs) rmSync(d, { recursive: true, force: true });
	}
});
