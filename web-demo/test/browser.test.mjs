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
//
// Then, each with its own server and windows: a window set offline
// (context.setOffline) keeps typing and converges when back; the server is
// restarted (SIGTERM, started again on the same port and database) while
// both type; a window reloaded while its connection is cut keeps its offline
// edits (IndexedDB) and merges them once it can connect; a read-only token
// cannot change the document (typing is blocked with a message, an Update
// forced past that is refused by the server, the other window never sees it).
// QUIRE_BROWSER_ONLY=regex runs the tests whose names match.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, mkdirSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { spawnSync } from 'node:child_process';
import { startServer, webDemoDir, serverBin, until, sleep } from './helpers.mjs';

const CHROMIUM = process.env.QUIRE_CHROMIUM || '/usr/bin/chromium';
const WEB = process.env.QUIRE_WEB_DIR || join(webDemoDir, 'dist');
const SHOTS = process.env.QUIRE_SCREENSHOT_DIR || null;
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
	'--disable-background-networking', '--disable-component-update', '--disable-sync'];

async function window(url, dirs, { live = true, setup } = {}) {
	const dir = mkdtempSync(join(tmpdir(), 'quire-chromium-'));
	dirs.push(dir);
	const ctx = await chromium.launchPersistentContext(dir, {
		executablePath: CHROMIUM, headless: true, args: ARGS, viewport: { width: 560, height: 420 },
	});
	const page = ctx.pages()[0] ?? (await ctx.newPage());
	page.on('pageerror', (e) => console.error('page error:', e));
	if (setup) await setup(ctx, page);
	await page.goto(url);
	if (live) await page.waitForFunction(() => window.quire?.client?.live === true);
	return { ctx, page };
}

// One server and any number of windows, all closed at the end.
async function session(serverArgs, fn) {
	assert.ok(existsSync(join(WEB, 'quire.wasm')), `${WEB} is built`);
	const srv = await startServer(['--web', WEB, ...serverArgs]);
	const dirs = [], ctxs = [];
	const open = async (url, opts) => {
		const w = await window(url, dirs, opts);
		ctxs.push(w.ctx);
		return w;
	};
	try {
		await fn(srv, open);
	} finally {
		for (const c of ctxs) await c.close().catch(() => {});
		await srv.stop();
		for (const d of dirs) rmSync(d, { recursive: true, force: true });
	}
}

const only = process.env.QUIRE_BROWSER_ONLY ? new RegExp(process.env.QUIRE_BROWSER_ONLY) : null;
const btest = (name, opts, fn) => test(name, { ...opts, skip: only ? !only.test(name) : false }, fn);

const live = (page) => page.evaluate(() => window.quire.client.live);
const settled = (page) => page.waitForFunction(() => window.quire.client.live && window.quire.client.unacked.length === 0,
	null, { timeout: 20000 });
// Both editors equal and each part exactly once; returns the text.
async function convergedWith(pages, parts) {
	await Promise.all(pages.map(settled));
	let texts = [];
	await until(async () => {
		texts = await Promise.all(pages.map(editorText));
		return texts.every((t) => t === texts[0]) && parts.every((p) => texts[0].includes(p));
	}, 'editors converge', 10000).catch(() => {});
	for (const t of texts) assert.equal(t, texts[0], 'every window shows the same text');
	for (const part of parts)
		assert.equal(texts[0].split(part).length - 1, 1, `"${part}" exactly once in ${JSON.stringify(texts[0])}`);
	for (const p of pages) assert.equal(await p.evaluate(() => window.quire.client.text), texts[0], 'client mirror == editor');
	return texts[0];
}
async function typeAtEnd(page, text) {
	await page.click('.cm-content');
	await page.keyboard.press('Control+End');
	await page.keyboard.type(text, { delay: 5 });
}

const editorText = (page) => page.evaluate(() => window.quire.view.state.doc.toString());

btest('two windows typing concurrently end identical with every keystroke', { timeout: 150000 }, async () => {
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

btest('a window set offline keeps typing and converges when back', { timeout: 60000 }, async () => {
	await session([], async (srv, open) => {
		const doc = `offline-${Date.now().toString(36)}`;
		const A = await open(`${srv.url}/?doc=${doc}`), B = await open(`${srv.url}/?doc=${doc}`);
		await typeAtEnd(A.page, 'shared start. ');
		await convergedWith([A.page, B.page], ['shared start. ']);

		await A.ctx.setOffline(true);
		await A.page.waitForFunction(() => window.quire.client.live === false && !navigator.onLine);
		await typeAtEnd(A.page, 'typed offline by A 日本 😀. ');
		await typeAtEnd(B.page, 'typed online by B. ');
		await sleep(1500); // reconnect attempts while offline must fail
		assert.equal(await live(A.page), false, 'A stays disconnected while offline');
		assert.ok(!(await editorText(B.page)).includes('typed offline'), 'B does not see A while A is offline');
		assert.ok((await editorText(A.page)).includes('typed offline by A'), 'A keeps its offline edits on screen');
		assert.match(await A.page.textContent('#status'), /reconnecting|offline/);

		await A.ctx.setOffline(false);
		await convergedWith([A.page, B.page], ['shared start. ', 'typed offline by A 日本 😀. ', 'typed online by B. ']);
	});
});

btest('the server restarted mid-session: both windows resume, nothing lost or doubled', { timeout: 60000 }, async () => {
	await session([], async (srv, open) => {
		const doc = `restart-${Date.now().toString(36)}`;
		const A = await open(`${srv.url}/?doc=${doc}`), B = await open(`${srv.url}/?doc=${doc}`);
		await typeAtEnd(A.page, 'before restart A. ');
		await typeAtEnd(B.page, 'before restart B. ');
		await convergedWith([A.page, B.page], ['before restart A. ', 'before restart B. ']);

		// Both keep typing while the server stops and starts again.
		const typing = Promise.all([
			(async () => { await A.page.keyboard.type('during restart A. ', { delay: 40 }); })(),
			(async () => { await B.page.keyboard.type('during restart B. ', { delay: 40 }); })(),
		]);
		await sleep(150);
		await srv.restart();
		await typing;
		await typeAtEnd(A.page, 'after restart A. ');
		await typeAtEnd(B.page, 'after restart B. ');
		const text = await convergedWith([A.page, B.page], ['before restart A. ', 'before restart B. ',
			'after restart A. ', 'after restart B. ']);
		// The "during" keystrokes were typed at each window's caret while the
		// other also typed: compare each window's letters in order.
		for (const [page, mark] of [[A.page, 'A'], [B.page, 'B']]) {
			const reconnects = await page.evaluate(() => window.quire.client.stats.reconnects);
			assert.ok(reconnects >= 1, `window ${mark} reconnected`);
		}
		assert.equal([...text].length, [...'before restart A. before restart B. during restart A. during restart B. after restart A. after restart B. '].length,
			'no keystroke lost or doubled');
	});
});

btest('a window reloaded while its connection is cut keeps offline edits (IndexedDB) and merges them', { timeout: 60000 }, async () => {
	await session([], async (srv, open) => {
		const doc = `reload-${Date.now().toString(36)}`;
		// The test cuts A's sync connection (the page itself still loads over
		// HTTP): each WebSocket is closed at once while `cut`, else proxied.
		let cut = false;
		const setup = (ctx) => ctx.routeWebSocket(/\/sync$/, (ws) => {
			if (cut) ws.close({ code: 1006 });
			else ws.connectToServer();
		});
		const A = await open(`${srv.url}/?doc=${doc}`, { setup }), B = await open(`${srv.url}/?doc=${doc}`);
		await typeAtEnd(A.page, 'seen by both. ');
		await convergedWith([A.page, B.page], ['seen by both. ']);

		cut = true;
		await A.page.evaluate(() => window.quire.client.dropConnection());
		await typeAtEnd(A.page, 'offline before reload 한국어. ');
		await typeAtEnd(B.page, 'B meanwhile. ');
		// The debounced IndexedDB write (300 ms after the last change) is done.
		await A.page.waitForFunction(() => {
			const c = window.quire.client;
			return !c.dirty && c.stats.saved === c.stats.saves && c.stats.saves > 0;
		}, null, { timeout: 5000 });
		const before = await editorText(A.page);
		await A.page.reload();
		await A.page.waitForFunction(() => window.quire?.view !== undefined);
		assert.equal(await editorText(A.page), before, 'the reloaded page shows the offline edits at once');
		assert.equal(await A.page.evaluate(() => window.quire.client.stats.restored), 1);
		assert.equal(await live(A.page), false);
		await typeAtEnd(A.page, 'after reload, still offline. ');
		assert.ok(!(await editorText(B.page)).includes('offline before reload'));

		cut = false;
		await A.page.evaluate(() => window.dispatchEvent(new Event('online')));
		await convergedWith([A.page, B.page], ['seen by both. ', 'offline before reload 한국어. ',
			'B meanwhile. ', 'after reload, still offline. ']);
	});
});

btest('a read-only token cannot change the document', { timeout: 60000 }, async () => {
	const secret = 'browser-test-secret-0123456789';
	const doc = `ro-${Date.now().toString(36)}`;
	const token = (sub, right) => {
		const r = spawnSync(serverBin(), ['token', '--secret', secret, '--sub', sub, '--doc', doc, '--right', right, '--ttl', '600'],
			{ encoding: 'utf8' });
		assert.equal(r.status, 0, r.stderr);
		return r.stdout.trim();
	};
	await session(['--token-secret', secret], async (srv, open) => {
		const W = await open(`${srv.url}/?doc=${doc}&token=${encodeURIComponent(token('writer', 'write'))}`);
		await typeAtEnd(W.page, 'written by the writer. ');
		await settled(W.page);
		const R = await open(`${srv.url}/?doc=${doc}&token=${encodeURIComponent(token('reader', 'read'))}`);
		await until(async () => (await editorText(R.page)) === 'written by the writer. ', 'reader sees the text');
		assert.equal(await R.page.evaluate(() => window.quire.client.readOnly), true);
		assert.match(await R.page.textContent('#banner'), /read-only/);
		assert.match(await R.page.textContent('#status'), /read-only/);
		assert.equal(await R.page.getAttribute('.cm-content', 'contenteditable'), 'false');

		// Typing is blocked in the editor.
		await R.page.click('.cm-content');
		await R.page.keyboard.type('XYZZY');
		await R.page.keyboard.press('Backspace');
		assert.equal(await editorText(R.page), 'written by the writer. ');

		// An edit forced past the page's check is refused by the server.
		await R.page.evaluate(() => {
			const c = window.quire.client;
			window.errors = [];
			c.on('error', (e) => window.errors.push(e.codeName));
			c.readOnly = false; // as a page without the check would
			window.quire.view.dispatch({ changes: { from: 0, insert: 'FORCED ' } });
			c.flush();
		});
		await R.page.waitForFunction(() => window.errors.includes('FORBIDDEN') && window.quire.client.readOnly === true);
		assert.match(await R.page.textContent('#banner'), /read-only/);
		// The writer keeps working and never sees the reader's text.
		await typeAtEnd(W.page, 'more by the writer. ');
		await settled(W.page);
		await until(async () => (await editorText(R.page)).includes('more by the writer. '), 'reader follows');
		await sleep(300);
		const w = await editorText(W.page);
		assert.equal(w, 'written by the writer. more by the writer. ');
		assert.ok(!w.includes('XYZZY') && !w.includes('FORCED'));
	});
});
