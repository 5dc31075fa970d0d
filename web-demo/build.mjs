// build.mjs - build the web demo into dist/ (run by CMake's web_demo target).
//
//   node build.mjs [--wasm PATH] [--out DIR] [--no-gen] [--dev]
//
// 1. Generates the protobuf code src/gen/quire_pb.js from ../proto/quire.proto
//    with Debian's protoc and @bufbuild/protoc-gen-es (src/gen is not
//    committed: the .proto file is the source of truth).
// 2. Bundles src/app.js (CodeMirror 6 + the client library) with esbuild into
//    DIR/app.js (minified unless --dev), and copies index.html and style.css.
// 3. Copies the WebAssembly engine (crdt/ + wasm/binding.c, built by CMake
//    with clang-14) to DIR/quire.wasm and checks that it imports nothing.
// Prints the sizes (raw and gzip) of what it wrote.
import { execFileSync } from 'node:child_process';
import { mkdirSync, copyFileSync, readFileSync, writeFileSync, existsSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import * as esbuild from 'esbuild';

const here = dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const opt = (name, def) => {
	const i = args.indexOf(name);
	return i >= 0 ? args[i + 1] : def;
};
const out = resolve(opt('--out', join(here, 'dist')));
const wasm = opt('--wasm', null);
const dev = args.includes('--dev');

if (!args.includes('--no-gen')) {
	const gen = join(here, 'src', 'gen');
	mkdirSync(gen, { recursive: true });
	execFileSync(process.env.PROTOC || 'protoc', [
		`--plugin=protoc-gen-es=${join(here, 'node_modules', '.bin', 'protoc-gen-es')}`,
		`--es_out=${gen}`, '--es_opt=target=js',
		`-I${join(here, '..', 'proto')}`, join(here, '..', 'proto', 'quire.proto'),
	], { stdio: 'inherit' });
}

mkdirSync(out, { recursive: true });
await esbuild.build({
	entryPoints: [join(here, 'src', 'app.js')],
	bundle: true,
	format: 'esm',
	target: ['es2022'],
	minify: !dev,
	sourcemap: dev ? 'inline' : false,
	outfile: join(out, 'app.js'),
	logLevel: 'warning',
	legalComments: 'none',
});
for (const f of ['index.html', 'style.css']) copyFileSync(join(here, 'src', f), join(out, f));

if (wasm) {
	const bytes = readFileSync(wasm);
	const imports = WebAssembly.Module.imports(new WebAssembly.Module(bytes));
	if (imports.length) {
		console.error(`build.mjs: ${wasm} imports ${imports.map((i) => `${i.module}.${i.name}`).join(', ')}; it must import nothing`);
		process.exit(1);
	}
	writeFileSync(join(out, 'quire.wasm'), bytes);
} else if (!existsSync(join(out, 'quire.wasm'))) {
	console.warn('build.mjs: no --wasm given and dist has no quire.wasm yet');
}

const sizes = ['app.js', 'quire.wasm'].filter((f) => existsSync(join(out, f))).map((f) => {
	const raw = statSync(join(out, f)).size;
	const gz = gzipSync(readFileSync(join(out, f)), { level: 9 }).length;
	return `${f} ${(raw / 1024).toFixed(1)} KiB (gzip ${(gz / 1024).toFixed(1)} KiB)`;
});
console.log(`web-demo: built ${out}: ${sizes.join(', ')}`);
