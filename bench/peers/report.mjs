// report.mjs - markdown tables from the JSONL of bench/peers/run.sh, the
// three servers side by side per scenario, with whole-machine CPU.
//   node bench/peers/report.mjs build/peers-results/run-*.jsonl
import { readFileSync } from 'node:fs';

// each row remembers its file (_file): a run's side records (CPU, QuireBytes)
// belong to the results of the same run
const rows = process.argv.slice(2).flatMap((f, i) => readFileSync(f, 'utf8').trim().split('\n')
	.filter(Boolean).map((l) => ({ ...JSON.parse(l), _file: i })));
const order = { hocuspocus: 0, 'y-websocket': 1, ywebsocket: 1, quire: 2, floor: 3 };
const kind = (s) => (s === 'y-websocket' ? 'ywebsocket' : s);
// results, and error records (the load generator's own, or run.sh's when a run
// gave no result) by their scenario option or run.sh's label
const scen = (r) => {
	if (!r.error) return r.scenario;
	const l = r.args?.label ?? '', sc = (r.args?.scenario ?? '').toLowerCase();
	if (sc === 's5replay' || l === 's5replay') return 'S5replay';
	if (sc === 's5verify' || l === 's5verify') return 'S5verify';
	return (sc || l.slice(0, 2)).toUpperCase();
};
const by = (s) => rows.filter((r) => r.scenario !== 'CPU' && scen(r) === s)
	.sort((a, b) => (order[a.server] ?? 9) - (order[b.server] ?? 9));
const cpu = (r) => rows.find((c) => c.scenario === 'CPU' && c._file === r._file && c.server === kind(r.server) &&
	c.label === (r.args?.label ?? r.label));
const mcpu = (r) => { const c = cpu(r); return c ? `${c.machineBusyPct}` : ''; };
const la = (r) => { const c = cpu(r); return c ? c.loadavgBefore.split(' ')[0] : ''; };
const table = (hdr, rs) => {
	console.log('| ' + hdr.join(' | ') + ' |');
	console.log('|' + hdr.map(() => '---').join('|') + '|');
	for (const r of rs) console.log('| ' + r.join(' | ') + ' |');
	console.log();
};
const err = (r) => (r.error ? `ERROR ${String(r.error).split('\n')[0].slice(0, 100)}` : null);
// run.sh's quire-load rows (the C load generator against quire-server in the
// same run; bench/README.md for the fields), by mode: fanout (S1), catchup (S4)
const ql = (mode) => rows.filter((r) => r.server === 'quire-load' && r.mode === mode);
const qlOk = (mode) => ql(mode).filter((r) => !r.error);
const C_CLIENTS = 'quire (C clients)';

for (const m of rows.filter((r) => r.scenario === 'machine')) {
	console.log(`Machine: ${m.cpus} × ${m.cpuModel}, ${m.memGB} GB, Linux ${m.kernel}, node ${m.node}; ` +
		`quire ${m.commit}${m.dirty ? ' (uncommitted changes)' : ''}; started ${m.started}, load average ${m.loadavg.map((x) => x.toFixed(2)).join(' ')}.\n`);
}

console.log('### S1 fan-out latency (writer local apply → observer change event), ms');
if (rows.some((r) => r.server === 'floor')) {
	console.log('"floor": quire-server with observers that do no work (bench/peers/floor.mjs: a bare `ws` that adds up');
	console.log("each Changes message's op lengths; no engine, no text): the load generator's own limit. Also in S4.\n");
}
const convergedCell = (r) => (r.server === 'floor' ? '— (no text kept)'
	: r.observersConverged + (r.writerTextMatchesTrace ? '' : ' (writer ≠ trace)'));
table(['server', 'observers', 'rate', 'edits', 'p50', 'p95', 'p99', 'max', 'delivered edits/s', 'server CPU %', 'server RSS max MB',
	'loadgen CPU %', 'machine CPU % (200 = 2 cores)', 'others %', 'load avg', 'converged', 'bytes in/observer'],
by('S1').map((r) => err(r) ? [r.server, r.args.label, '', err(r)] : [r.server, r.observers, r.rateTarget,
	`${r.editsApplied}/${r.editsPlanned}`, r.latencyMs.p50, r.latencyMs.p95, r.latencyMs.p99, r.latencyMs.max,
	r.deliveredEditsPerSec, r.serverCpuPct, r.serverRssMaxMB, r.loadgenCpuPct, r.machineBusyCpuPct, r.otherProcsCpuPct, la(r),
	convergedCell(r), r.observerBytesInAvg]).concat(ql('fanout').map((r) => err(r) ? [C_CLIENTS, r.label, '', err(r)] : [
	C_CLIENTS, r.observers, r.rate, `${r.edits_acked}/${r.edits}`, r.latency_p50_ms, r.latency_p95_ms, r.latency_p99_ms,
	r.latency_max_ms, r.deliveries_per_s, '', '', '', mcpu(r), '', la(r), `${r.observers_complete}/${r.observers}`, ''])));
if (ql('fanout').length) {
	console.log(`"${C_CLIENTS}": bench/quire-load fanout in the same run (observers that count op units; latency from`);
	console.log("the writer's send): the server's own figures; its CPU is part of the machine's.\n");
}

console.log('### S2 many documents (2 clients per document, each appends its edits)');
table(['server', 'documents', 'edits per client', 'connect ms', 'failed', 'typing loop ms', 'time to complete ms', 'converged',
	'server RSS after connect / max MB', 'server CPU %', 'loadgen CPU %', 'machine CPU %', 'load avg'],
by('S2').map((r) => err(r) ? [r.server, r.args.label, err(r)] : [r.server, r.docs, r.editsPerClient, r.connect.ms, r.connect.failed,
	r.typingLoopMs, r.timeToCompleteMs, `${r.allConverged} (${r.pairsConverged})`,
	`${r.serverRssAfterConnectMB} / ${r.serverRssMaxMB}`, r.serverCpuPct, r.loadgenCpuPct, mcpu(r), la(r)]));

console.log('### S3 idle connections (100 documents, fresh server per count)');
table(['server', 'conns', 'connect ms', 'failed', 'open after hold', 'close events', 'RSS before / after connect / after hold MB',
	'RSS per conn KB', 'server CPU % connect / idle', 'machine CPU %', 'load avg'],
by('S3').map((r) => err(r) ? [r.server, r.args.label, err(r)] : [r.server, r.conns, r.connectMs, r.connectFailed, r.openAfterHold,
	r.closeEventsDuringRun, `${r.serverRssBeforeMB} / ${r.serverRssAfterConnectMB} / ${r.serverRssAfterHoldGcMB}`,
	r.serverRssPerConnKB, `${r.serverCpuPctConnectPhase} / ${r.serverCpuPctIdleHold}`, mcpu(r), la(r)]));

console.log('### S4 reconnect catch-up (5,000 edits seen, 10,000 missed)');
// The Quire adapter logs each client's connections (QuireBytes): the
// observer's second one is the reconnect, and what its socket read after
// the HTTP upgrade is the catch-up on the wire (frame headers included,
// compressed when deflate was negotiated). The Yjs adapters count payloads
// only; their servers send plain frames (payload + 2-10 B a message).
const s4label = (r) => r.args?.label ?? 's4';
const s4server = (r) => (s4label(r) === 's4' ? r.server : `${r.server} (${s4label(r).replace(/^s4-/, '')})`);
const s4wire = (r) => {
	const b = rows.filter((q) => q.scenario === 'QuireBytes' && q._file === r._file && q.server === kind(r.server) && q.label === s4label(r) &&
		q.connections.length >= 2);
	if (b.length !== 1) return null;
	const cn = b[0].connections[b[0].connections.length - 1];
	return { bytes: cn.wireIn - cn.handshakeIn, ext: cn.extensions };
};
const s4wireCell = (r) => {
	const w = s4wire(r);
	return w ? `${w.bytes}${w.ext ? ` (${w.ext.split(';')[0]})` : ''}` : 'n/a';
};
table(['server', 'reconnect → synced ms', 'reconnect → converged ms', 'converged', 'payload bytes received',
	'bytes on the wire', 'messages received', 'bytes sent', 'doc chars', 'machine CPU %', 'load avg'],
by('S4').map((r) => err(r) ? [s4server(r), err(r)] : [s4server(r), r.reconnectToSyncedEventMs, r.reconnectToConvergedMs,
	r.server === 'floor' ? '— (no text kept)' : r.converged, r.bytesReceivedOnReconnect, s4wireCell(r), r.msgsReceivedOnReconnect, r.bytesSentOnReconnect, r.textChars,
	mcpu(r), la(r)]).concat(ql('catchup').map((r) => err(r) ? [C_CLIENTS, err(r)] : [
	`${C_CLIENTS}: p50 of ${r.rounds_done} rounds`, `${+r.catchup_p50_ms.toFixed(2)} (p90 ${+r.catchup_p90_ms.toFixed(2)})`, '',
	`${r.converged}/${r.rounds}`, r.bytes_p50, '', r.messages_p50, '', '', mcpu(r), la(r)])));

console.log('### S5 the whole automerge-paper trace through one client (1 writer + 1 observer)');
// the rows of one replay's document (its store size, the restart, the load)
const store = (srv, doc) => rows.find((r) => r.scenario === 'S5store' && r.server === kind(srv) && r.docId === doc);
const verify = (srv, doc) => by('S5verify').find((r) => r.server === srv && (r.docId ?? r.args?.doc) === doc);
const load = (srv, doc) => {
	const q = rows.find((r) => r.scenario === 'S5load' && r.server === kind(srv) && r.docId === doc);
	if (q) {
		const m = /in (\d+) (ms|us)$/.exec(q.logLine);
		return m ? (m[2] === 'us' ? (m[1] / 1000).toFixed(1) : m[1]) : '';
	}
	return verify(srv, doc)?.serverLoadTimes?.map((l) => l.ms.toFixed(1)).join(', ') ?? '';
};
table(['server', 'edits', 'replay ms', 'edits/s', 'converged', 'server CPU %', 'server RSS end MB', 'loadgen CPU %', 'machine CPU %',
	'load avg', 'stored doc bytes', 'first connect → synced ms', 'server load ms', 'text matches after restart'],
by('S5replay').map((r) => {
	if (err(r)) return [r.server, err(r)];
	const st = store(r.server, r.docId), v = verify(r.server, r.docId);
	return [r.server, r.editsApplied, r.replayMs, r.editsPerSec, r.observerCaughtUp && r.observerMatches && r.writerMatchesEndContent,
		r.serverCpuPct, r.serverRssEndMB, r.loadgenCpuPct, mcpu(r), la(r),
		st ? st.storedDocBytes + (st.snapshotZstdBytes !== undefined ? ` (snapshot ${st.snapshotZstdBytes} zstd + log ${st.logBytes} in ${st.logChanges} changes)` : '') : 'n/a (in memory)',
		v ? (v.error ? err(v) : v.firstConnectToSyncedMs) : 'n/a', v ? load(r.server, r.docId) : 'n/a', v ? v.textMatches : 'n/a'];
}));

// Medians over every file given: one row per server and S1 setting or S4,
// with the number of runs it is the median of.
const runs = new Set(rows.filter((r) => r.scenario === 'machine').map((r) => r.started)).size;
if (runs > 1) {
	const med = (xs) => {
		const s = xs.filter((x) => typeof x === 'number').sort((a, b) => a - b);
		if (s.length === 0) return '';
		const m = s.length >> 1;
		return +(s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2).toFixed(2);
	};
	// rows by key(row), in first-seen order
	const groupBy = (rs, key) => {
		const g = new Map();
		for (const r of rs) {
			const k = key(r);
			if (!g.has(k)) g.set(k, []);
			g.get(k).push(r);
		}
		return g;
	};
	const groups = groupBy(by('S1').filter((r) => !r.error), (r) => `${r.server}|${r.observers}|${r.rateTarget}`);
	const fan = groupBy(qlOk('fanout'), (r) => r.observers);
	console.log(`### Medians over ${runs} runs: S1`);
	table(['server', 'observers', 'rate', 'runs', 'p50 ms', 'p99 ms', 'max ms', 'delivered edits/s', 'server CPU %', 'loadgen CPU %'],
		[...groups.values()].map((g) => [g[0].server, g[0].observers, g[0].rateTarget, g.length,
			med(g.map((r) => r.latencyMs.p50)), med(g.map((r) => r.latencyMs.p99)), med(g.map((r) => r.latencyMs.max)),
			med(g.map((r) => r.deliveredEditsPerSec)), med(g.map((r) => r.serverCpuPct)), med(g.map((r) => r.loadgenCpuPct))])
			.concat([...fan.values()].map((g) => [C_CLIENTS, g[0].observers, g[0].rate, g.length,
				med(g.map((r) => r.latency_p50_ms)), med(g.map((r) => r.latency_p99_ms)), med(g.map((r) => r.latency_max_ms)),
				med(g.map((r) => r.deliveries_per_s)), '', ''])));
	const s4 = groupBy(by('S4').filter((r) => !r.error), s4server);
	const catchup = qlOk('catchup');
	console.log(`### Medians over ${runs} runs: S4`);
	table(['server', 'runs', 'reconnect → synced ms', 'payload bytes received', 'bytes on the wire', 'messages'],
		[...s4.entries()].map(([k, g]) => [k, g.length, med(g.map((r) => r.reconnectToSyncedEventMs)),
			med(g.map((r) => r.bytesReceivedOnReconnect)), med(g.map((r) => s4wire(r)?.bytes)) || 'n/a',
			med(g.map((r) => r.msgsReceivedOnReconnect))])
			.concat(catchup.length ? [[`${C_CLIENTS}: each run's p50`, catchup.length,
				med(catchup.map((r) => r.catchup_p50_ms)), med(catchup.map((r) => r.bytes_p50)), '',
				med(catchup.map((r) => r.messages_p50))]] : []));
}
