// svgplot.mjs - two small chart kinds rendered to standalone SVG strings, so
// the benchmark plots can be regenerated from raw results with nothing but
// node (no plotting package on these machines).
//
//   lineChart({ title, xLabel, yLabel, logX, logY, series: [{ name, points: [[x, y], ...], dashed }] })
//   barChart({ title, yLabel, logY, groups: ['S1 max', ...], series: [{ name, values: [v|null, ...] }] })
//
// Both return an SVG document (string). Colours are fixed per series name so
// one server has the same colour in every plot.

const W = 760, H = 420, M = { l: 78, r: 210, t: 44, b: 58 };
const PALETTE = { quire: '#1b7f3b', hocuspocus: '#3b5bdb', 'y-websocket': '#e8590c', ywebsocket: '#e8590c' };
const EXTRA = ['#862e9c', '#c92a2a', '#0b7285', '#5f3dc4', '#495057'];

function colour(name, i) {
	if (name.includes('C clients')) return '#0b7285'; // quire-load's figures next to the node harness's
	const key = Object.keys(PALETTE).find((k) => name.toLowerCase().startsWith(k));
	return key ? PALETTE[key] : EXTRA[i % EXTRA.length];
}

const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

function fmt(v) {
	const a = Math.abs(v);
	if (a >= 1e6) return `${+(v / 1e6).toPrecision(3)}M`;
	if (a >= 1e4) return `${+(v / 1e3).toPrecision(3)}k`;
	return `${+v.toPrecision(3)}`;
}

// An axis mapping [lo, hi] onto [a, b] (pixels), linear or log10, with ticks.
function axis(lo, hi, a, b, log) {
	if (log) {
		lo = Math.max(lo, 1e-9);
		const l0 = Math.floor(Math.log10(lo)), l1 = Math.ceil(Math.log10(Math.max(hi, lo * 10)));
		const map = (v) => a + ((Math.log10(Math.max(v, 1e-9)) - l0) / (l1 - l0)) * (b - a);
		const ticks = [];
		for (let e = l0; e <= l1; e++) ticks.push(10 ** e);
		return { map, ticks };
	}
	if (hi <= lo) hi = lo + 1;
	const raw = (hi - lo) / 5, mag = 10 ** Math.floor(Math.log10(raw));
	const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw);
	const t0 = Math.floor(lo / step) * step, t1 = Math.ceil(hi / step) * step;
	const map = (v) => a + ((v - t0) / (t1 - t0)) * (b - a);
	const ticks = [];
	for (let t = t0; t <= t1 + step / 2; t += step) ticks.push(+t.toPrecision(12));
	return { map, ticks };
}

function frame(title, xLabel, yLabel, body) {
	return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">
<rect width="${W}" height="${H}" fill="#fff"/>
<text x="${M.l}" y="24" font-size="15" font-weight="bold">${esc(title)}</text>
<text x="${(M.l + W - M.r) / 2}" y="${H - 14}" text-anchor="middle">${esc(xLabel)}</text>
<text transform="translate(18 ${(M.t + H - M.b) / 2}) rotate(-90)" text-anchor="middle">${esc(yLabel)}</text>
${body}
</svg>
`;
}

function yGrid(y) {
	return y.ticks.map((t) => `<line x1="${M.l}" x2="${W - M.r}" y1="${y.map(t)}" y2="${y.map(t)}" stroke="#e5e5e5"/>` +
		`<text x="${M.l - 6}" y="${y.map(t) + 4}" text-anchor="end">${fmt(t)}</text>`).join('\n');
}

function legend(names) {
	return names.map((n, i) => {
		const y = M.t + 8 + i * 20, c = colour(n.name, i);
		return `<line x1="${W - M.r + 14}" x2="${W - M.r + 36}" y1="${y}" y2="${y}" stroke="${c}" stroke-width="${n.bar ? 10 : 2.5}"${n.dashed ? ' stroke-dasharray="5 3"' : ''}/>` +
			`<text x="${W - M.r + 42}" y="${y + 4}">${esc(n.name)}</text>`;
	}).join('\n');
}

export function lineChart({ title, xLabel, yLabel, logX = false, logY = false, series }) {
	const pts = series.flatMap((s) => s.points);
	if (pts.length === 0) return frame(title, xLabel, yLabel, '<text x="300" y="200">no data</text>');
	const xs = pts.map((p) => p[0]), ys = pts.map((p) => p[1]);
	const x = axis(Math.min(...xs), Math.max(...xs), M.l, W - M.r, logX);
	const y = axis(logY ? Math.min(...ys) : Math.min(0, ...ys), Math.max(...ys), H - M.b, M.t, logY);
	const xt = x.ticks.map((t) => `<text x="${x.map(t)}" y="${H - M.b + 18}" text-anchor="middle">${fmt(t)}</text>`).join('\n');
	const lines = series.map((s, i) => {
		const c = colour(s.name, i), p = [...s.points].sort((a, b) => a[0] - b[0]);
		const path = p.map(([px, py], k) => `${k ? 'L' : 'M'}${x.map(px).toFixed(1)},${y.map(py).toFixed(1)}`).join(' ');
		const dots = p.length <= 40 ? p.map(([px, py]) => `<circle cx="${x.map(px).toFixed(1)}" cy="${y.map(py).toFixed(1)}" r="3" fill="${c}"/>`).join('') : '';
		return `<path d="${path}" fill="none" stroke="${c}" stroke-width="2"${s.dashed ? ' stroke-dasharray="5 3"' : ''}/>${dots}`;
	}).join('\n');
	const axes = `<line x1="${M.l}" x2="${M.l}" y1="${M.t}" y2="${H - M.b}" stroke="#333"/><line x1="${M.l}" x2="${W - M.r}" y1="${H - M.b}" y2="${H - M.b}" stroke="#333"/>`;
	return frame(title, xLabel, yLabel, [yGrid(y), xt, axes, lines, legend(series)].join('\n'));
}

export function barChart({ title, yLabel, logY = false, groups, series }) {
	const vals = series.flatMap((s) => s.values).filter((v) => v != null && v > 0);
	if (vals.length === 0) return frame(title, '', yLabel, '<text x="300" y="200">no data</text>');
	const y = axis(logY ? Math.min(...vals) : 0, Math.max(...vals), H - M.b, M.t, logY);
	const gw = (W - M.l - M.r) / groups.length, bw = (gw * 0.8) / series.length;
	const base = H - M.b;
	const bars = groups.map((g, gi) => {
		const x0 = M.l + gi * gw + gw * 0.1;
		const label = `<text x="${M.l + gi * gw + gw / 2}" y="${H - M.b + 18}" text-anchor="middle">${esc(g)}</text>`;
		return label + series.map((s, si) => {
			const v = s.values[gi];
			if (v == null) return '';
			const top = y.map(Math.max(v, logY ? y.ticks[0] : 0)), c = colour(s.name, si);
			return `<rect x="${(x0 + si * bw).toFixed(1)}" y="${top.toFixed(1)}" width="${(bw - 2).toFixed(1)}" height="${(base - top).toFixed(1)}" fill="${c}"/>` +
				`<text x="${(x0 + si * bw + bw / 2).toFixed(1)}" y="${(top - 4).toFixed(1)}" text-anchor="middle" font-size="10">${fmt(v)}</text>`;
		}).join('');
	}).join('\n');
	const axes = `<line x1="${M.l}" x2="${W - M.r}" y1="${base}" y2="${base}" stroke="#333"/>`;
	return frame(title, '', yLabel, [yGrid(y), axes, bars, legend(series.map((s) => ({ name: s.name, bar: true })))].join('\n'));
}
