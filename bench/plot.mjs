// plot.mjs - the plots of BENCHMARKS.md, regenerated from raw results.
//
//   node bench/plot.mjs [--out docs/img/bench] FILE...
//
// FILEs are any mix of
//   *.jsonl  from bench/peers/run.sh (the node load generator, three servers)
//            and from `quire-load --json` (C load generator, Quire alone);
//   *.csv    from `quire-load soak --csv` (the soak's samples over time).
// Where several runs measured the same thing (same server, scenario and
// size), the plots show their median, so pass every run's file.
// Writes s1-latency.svg, idle-rss.svg, throughput.svg and soak.svg (the last
// only when a CSV is given) into --out.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { barChart, lineChart } from './svgplot.mjs';

const args = process.argv.slice(2);
let out = 'docs/img/bench';
const files = [];
for (let i = 0; i < args.length; i++) {
	if (args[i] === '--out') out = args[++i];
	else files.push(args[i]);
}
if (files.length === 0) {
	console.error('usage: node bench/plot.mjs [--out DIR] RESULTS.jsonl... [SOAK.csv]');
	process.exit(2);
}

const rows = files.filter((f) => f.endsWith('.jsonl') || f.endsWith('.json')).flatMap((f) =>
	readFileSync(f, 'utf8').split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l)));
const csvs = files.filter((f) => f.endsWith('.csv'));

const median = (xs) => {
	const s = xs.filter((x) => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b);
	if (s.length === 0) return null;
	const m = s.length >> 1;
	return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
// (floor: bench/peers/floor.mjs, quire-server with node clients that do no work)
const serverName = (s) => ({ ywebsocket: 'y-websocket', floor: 'harness floor' })[s] ?? s;
const ok = (r) => !r.error;

// Median of f(row) over rows grouped by key(row): [[key, median], ...] sorted by key.
function medianBy(rs, key, f) {
	const g = new Map();
	for (const r of rs) {
		const k = key(r), v = f(r);
		if (k == null || v == null) continue;
		if (!g.has(k)) g.set(k, []);
		g.get(k).push(v);
	}
	return [...g].map(([k, vs]) => [k, median(vs)]).sort((a, b) => a[0] - b[0]);
}

// (the node harness's servers: CPU records and run.sh's quire-load rows name a server too)
const servers = [...new Set(rows.filter((r) => r.server && r.scenario && r.scenario !== 'CPU' && ok(r)).map((r) => serverName(r.server)))];
const written = [];
function save(name, svg) {
	mkdirSync(out, { recursive: true });
	writeFileSync(join(out, name), svg);
	written.push(join(out, name));
}

// quire-load rows: {mode, ...} without a `scenario` (bench/README.md, quire-load JSON)
const ql = (mode) => rows.filter((r) => r.mode === mode && r.scenario === undefined && ok(r));

// (S1 rows: rateTarget is the edits/s, or a string 'max(window W)' for the max-rate run)
// 1. S1 fan-out latency at a fixed rate vs observers: p50 and p99 per server
{
	const series = [];
	for (const s of servers) {
		const rs = rows.filter((r) => r.scenario === 'S1' && serverName(r.server) === s && ok(r) && typeof r.rateTarget === 'number' && r.latencyMs);
		if (rs.length === 0) continue;
		series.push({ name: `${s} p99`, points: medianBy(rs, (r) => r.observers, (r) => r.latencyMs.p99) });
		series.push({ name: `${s} p50`, points: medianBy(rs, (r) => r.observers, (r) => r.latencyMs.p50), dashed: true });
	}
	const fan = ql('fanout').filter((r) => r.rate === 200 && r.latency_p99_ms != null);
	if (fan.length) {
		series.push({ name: 'quire (C clients) p99', points: medianBy(fan, (r) => r.observers, (r) => r.latency_p99_ms) });
		series.push({ name: 'quire (C clients) p50', points: medianBy(fan, (r) => r.observers, (r) => r.latency_p50_ms), dashed: true });
	}
	save('s1-latency.svg', lineChart({
		title: 'S1 fan-out latency, 200 edits/s (median of runs)', xLabel: 'observers on one document',
		yLabel: 'writer apply → observer, ms (log)', logX: true, logY: true, series,
	}));
}

// 2. server RSS per idle connection vs connections
{
	const series = [];
	for (const s of servers) {
		const rs = rows.filter((r) => r.scenario === 'S3' && serverName(r.server) === s && ok(r) && r.serverRssPerConnKB != null);
		if (rs.length) series.push({ name: `${s} (node clients)`, points: medianBy(rs, (r) => r.conns, (r) => r.serverRssPerConnKB) });
	}
	const idle = ql('idle').filter((r) => r.server_rss_bytes_per_conn != null);
	if (idle.length) series.push({ name: 'quire (C clients)', points: medianBy(idle, (r) => r.conns, (r) => r.server_rss_bytes_per_conn / 1024) });
	save('idle-rss.svg', lineChart({
		title: 'Server memory per idle connection (median of runs)', xLabel: 'idle connections',
		yLabel: 'server RSS per connection, KB', logX: true, series,
	}));
}

// 3. throughput: S1 max edit-deliveries/s (100 observers) and S5 edits/s
{
	const groups = ['S1 max, 100 observers: edit-deliveries/s', 'S5 one client: edits/s acked'];
	const series = servers.map((s) => ({
		name: s,
		values: [
			median(rows.filter((r) => r.scenario === 'S1' && serverName(r.server) === s && ok(r) && typeof r.rateTarget === 'string' &&
				r.observers === 100).map((r) => r.deliveredEditsPerSec)),
			median(rows.filter((r) => r.scenario === 'S5replay' && serverName(r.server) === s && ok(r)).map((r) => r.editsPerSec)),
		],
	}));
	const rate = ql('rate').filter((r) => r.observers === 100);
	if (rate.length) series.push({ name: 'quire (C clients)', values: [median(rate.map((r) => r.deliveries_per_s)), null] });
	save('throughput.svg', barChart({ title: 'Throughput (median of runs, log scale)', yLabel: 'per second (log)', logY: true, groups, series }));
}

// 4. soak: server RSS and open fds over time
for (const f of csvs) {
	const lines = readFileSync(f, 'utf8').trim().split('\n');
	const head = lines[0].split(',').map((h) => h.trim());
	const col = (...names) => head.findIndex((h) => names.includes(h));
	const t = col('t_s', 'elapsed_s', 'time_s'), rss = col('server_rss_kb'), fds = col('server_fds'), conns = col('ready'), edits = col('edits');
	if (t < 0 || rss < 0) {
		console.error(`${f}: no t_s/server_rss_kb columns, skipped`);
		continue;
	}
	const data = lines.slice(1).map((l) => l.split(',').map(Number));
	const series = [{ name: 'server RSS, MB', points: data.map((d) => [d[t], d[rss] / 1024]) }];
	if (fds >= 0) series.push({ name: 'server fds / 100', points: data.map((d) => [d[t], d[fds] / 100]) });
	if (conns >= 0) series.push({ name: 'sessions live / 100', points: data.map((d) => [d[t], d[conns] / 100]), dashed: true });
	if (edits >= 0) series.push({ name: 'edits made / 10k', points: data.map((d) => [d[t], d[edits] / 1e4]), dashed: true });
	save('soak.svg', lineChart({ title: 'Soak: server memory and fds over time', xLabel: 'seconds', yLabel: 'MB, or count (scaled)', series }));
}

console.log(written.join('\n'));
