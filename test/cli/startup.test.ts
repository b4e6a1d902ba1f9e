// `prunelens analyze` loads only what analysis needs: no wasm backend or kernels, methods, training, session, Keras
// or ONNX readers. Checked on real runs: the built CLI, and the engine from source, where every module is a file.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { ensureBuilt, makeWorkspace } from '../helpers/fixtures.js';

const probe = resolve('test/helpers/loaded-probe.cjs');
before(() => ensureBuilt());

interface Loaded { backends: string[]; kernelBackends: string[]; modules: string[] }

function runProbed(args: string[]): Loaded & { stdout: string } {
  const out = join(mkdtempSync(join(tmpdir(), 'prunelens-probe-')), 'loaded.json');
  const r = spawnSync(process.execPath, ['-r', probe, ...args], { encoding: 'utf8', timeout: 120_000, env: { ...process.env, PRUNELENS_PROBE_OUT: out } });
  assert.equal(r.status, 0, r.stderr);
  return { ...(JSON.parse(readFileSync(out, 'utf8')) as Loaded), stdout: r.stdout };
}

test('the built CLI analyses a model on the cpu backend alone: no wasm or webgl backend registered, no wasm kernels', async () => {
  const ws = await makeWorkspace();
  const loaded = runProbed([resolve('dist/cli.js'), 'analyze', ws.modelPath, '--json', '--no-timing']);
  assert.equal(JSON.parse(loaded.stdout).backend, 'cpu');
  assert.deepEqual(loaded.backends, ['cpu']);
  assert.deepEqual(loaded.kernelBackends, ['cpu']);
});

test('analysis from source loads no backend kernels, methods, training, session, Keras or ONNX reader', async () => {
  const ws = await makeWorkspace();
  const script = `require(${JSON.stringify(resolve('src/engine/session/analyze.ts'))}).analyzeModelFile(${JSON.stringify(ws.modelPath)}, 'cpu', [], undefined, { timeLayers: false })
    .then((r) => console.log(r.groups.length))`;
  const loaded = runProbed(['--import', 'tsx', '-e', script]);
  assert.ok(Number(loaded.stdout) > 0, 'the analysis ran');
  const engine = loaded.modules.filter((m) => m.includes('/src/engine/')).map((m) => m.slice(m.indexOf('/src/engine/') + 12));
  assert.ok(engine.includes('graph/analyze.ts') && engine.includes('io/load.ts'), 'the probe sees the engine\'s modules');
  // backend/wasm-kernels.ts may load (the cpu kernels share its convolution geometry); it registers nothing unless asked.
  const unwanted = [/^backend\/simd\//, /^methods\//, /^train\//, /^session\/session\.ts/, /^io\/keras\/load/, /^io\/onnx\/(load|proto|import)/, /^data\//];
  assert.deepEqual(engine.filter((m) => unwanted.some((u) => u.test(m))), []);
  assert.deepEqual(loaded.modules.filter((m) => /node_modules\/(@tensorflow\/tfjs-backend-wasm|h5wasm|protobufjs|ajv)\//.test(m)), []);
});
