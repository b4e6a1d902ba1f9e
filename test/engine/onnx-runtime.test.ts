/**
 * An ONNX model measured where it runs: sessions time the original and the written .onnx in ONNX
 * Runtime and check the imported graph against it; `analyze --verify` compares in the ONNX layout;
 * npy data for an ONNX model is NCHW, transposed once at load. Real onnxruntime-node, real files.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { ONNX_RUNTIME } from '../../src/protocol/events.js';
import type { PruningReport } from '../../src/engine/session/report.js';
import { onnxRuntime, runOnnx } from '../../src/engine/io/onnx/runtime.js';
import { encodeNpy, loadDataset, readNpy } from '../../src/engine/data/index.js';
import { nchwToNhwc, nhwcToNchw } from '../../src/engine/data/layout.js';
import { initBackend } from '../../src/engine/backend/index.js';
import { loadModel } from '../../src/engine/io/index.js';
import { UserError } from '../../src/engine/errors.js';

const FIXTURE = resolve('test/fixtures/onnx/resnet_tiny.onnx');
const FIXTURE_INPUT = resolve('test/fixtures/onnx/resnet_tiny.input.npy');
const FIXTURE_OUTPUT = resolve('test/fixtures/onnx/resnet_tiny.output.npy');

const NO_RUNTIME = 'onnxruntime-node does not load here (npm install onnxruntime-node, with its binaries for this platform)';

function prunelens(args: string[]) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], { encoding: 'utf8', timeout: 180_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** A workspace with the fixture and `count` NCHW samples of noise with labels 0..9. */
function workspace(count: number): string {
  const dir = mkdtempSync(join(tmpdir(), 'prunelens-onnx-runtime-'));
  copyFileSync(FIXTURE, join(dir, 'resnet.onnx'));
  const x = Float32Array.from({ length: count * 3 * 32 * 32 }, (_, i) => Math.sin(i * 12.9898) * 0.8);
  writeFileSync(join(dir, 'x.npy'), encodeNpy(x, [count, 3, 32, 32]));
  writeFileSync(join(dir, 'y.npy'), encodeNpy(Int32Array.from({ length: count }, (_, i) => i % 10), [count]));
  return dir;
}

test('a session on an ONNX ResNet with NCHW npy data reports ONNX Runtime latencies and the import check, and writes an .onnx ONNX Runtime runs', async (t) => {
  if (!(await onnxRuntime())) return t.skip(NO_RUNTIME);
  const dir = workspace(24);
  writeFileSync(join(dir, 'resnet.prune.json'), JSON.stringify({
    model: 'resnet.onnx', method: 'l1', target: { flopsReduction: 0.3 }, output: 'pruned',
    data: { format: 'npy', x: 'x.npy', y: 'y.npy', validationSplit: 0.25 },
    finetune: { epochs: 1, batchSize: 8, learningRate: 0.001 },
    latency: { runs: 3, batchSize: 2 }, backend: 'wasm',
  }));
  const r = prunelens(['prune', join(dir, 'resnet.prune.json')]);
  assert.equal(r.code, 0, r.stderr + r.stdout);
  assert.match(r.stdout, /latency \(onnxruntime \(cpu\), batch 2\)/);
  assert.match(r.stdout, /latency \(TF\.js wasm, batch 2\)/);
  assert.match(r.stdout, /Checked in onnxruntime \(cpu\) on 6 validation samples: imported graph vs original file max diff/);

  const report = JSON.parse(readFileSync(join(dir, 'pruned', 'pruning-report.json'), 'utf8')) as PruningReport;
  const latency = report.latency!;
  assert.equal(latency.runtime, ONNX_RUNTIME);
  assert.equal(latency.before.backend, ONNX_RUNTIME);
  assert.equal(latency.after.backend, ONNX_RUNTIME);
  assert.deepEqual([latency.before.batchSize, latency.before.runs, latency.after.batchSize, latency.after.runs], [2, 3, 2, 3]);
  assert.ok(latency.before.medianMs > 0 && latency.after.medianMs > 0);
  assert.equal(report.before.latencyMs, latency.before.medianMs);
  assert.equal(latency.tfjs?.before.backend, 'wasm', 'TF.js timing is kept beside');
  const onnx = report.onnx!;
  assert.equal(onnx.runtime, ONNX_RUNTIME);
  assert.equal(onnx.samples, 6);
  assert.ok(onnx.maxRelDifference < 1e-4, `imported graph vs ONNX Runtime: relative ${onnx.maxRelDifference}`);
  assert.ok(onnx.pruned && onnx.pruned.maxRelDifference < 1e-4, `pruned model vs written file: ${JSON.stringify(onnx.pruned)}`);
  assert.match(report.data!, /NCHW, transposed to NHWC at load/);
  console.log(`resnet_tiny ORT ${latency.before.medianMs.toFixed(3)} → ${latency.after.medianMs.toFixed(3)} ms, TF.js ${latency.tfjs!.before.medianMs.toFixed(2)} → ${latency.tfjs!.after.medianMs.toFixed(2)} ms; import rel ${onnx.maxRelDifference.toExponential(1)}, written rel ${onnx.pruned.maxRelDifference.toExponential(1)}`);

  const written = join(dir, 'pruned', 'resnet.onnx');
  assert.ok(statSync(written).size < statSync(FIXTURE).size, 'the pruned file is smaller');
  const x = readNpy(FIXTURE_INPUT);
  const [out] = await runOnnx(written, { data: x.data as Float32Array, shape: x.shape });
  assert.deepEqual(out.shape, [4, 10]);
  assert.ok(Array.from(out.data).every(Number.isFinite));
});

test('npy data for an ONNX model is NCHW: transposed once at load, the imported model then gives ONNX Runtime\'s outputs', async () => {
  await initBackend('cpu');
  const { model } = await loadModel(FIXTURE);
  try {
    const expected = readNpy(FIXTURE_OUTPUT).data as Float32Array;
    const data = await loadDataset(
      { format: 'npy', x: FIXTURE_INPUT, y: 'y.npy', xVal: FIXTURE_INPUT, yVal: 'y.npy' },
      workspace(4), { inputShape: [32, 32, 3], classes: 10, channelsFirst: true }, 1,
    );
    assert.match(data.description, /\(NCHW, transposed to NHWC at load\)/);
    let at = 0;
    let maxAbs = 0;
    let scale = 0;
    for await (const batch of data.validationBatches(3)) {
      assert.deepEqual(batch.x.shape.slice(1), [32, 32, 3]);
      const predicted = model.predict(batch.x) as tf.Tensor;
      const values = predicted.dataSync();
      for (let k = 0; k < values.length; k++) {
        maxAbs = Math.max(maxAbs, Math.abs(values[k] - expected[at + k]));
        scale = Math.max(scale, Math.abs(expected[at + k]));
      }
      at += values.length;
      tf.dispose([predicted, batch.x, batch.y]);
    }
    assert.equal(at, expected.length, 'every sample compared, in order');
    assert.ok(maxAbs / scale < 1e-4, `relative difference ${maxAbs / scale}`);

    // The same samples saved channels-last are refused in one line that names the layout.
    const dir = workspace(4);
    const x = readNpy(FIXTURE_INPUT);
    writeFileSync(join(dir, 'nhwc.npy'), encodeNpy(nchwToNhwc(x.data as Float32Array, x.shape), [4, 32, 32, 3]));
    await assert.rejects(
      loadDataset({ format: 'npy', x: 'nhwc.npy', y: 'y.npy' }, dir, { inputShape: [32, 32, 3], classes: 10, channelsFirst: true }, 1),
      (err: unknown) => err instanceof UserError && /samples of \[32, 32, 3\], but the model input is \[3, 32, 32\]/.test(err.message) && /NCHW/.test(err.message) && !err.message.includes('\n'),
    );
  } finally {
    model.dispose();
  }
});

test('NCHW ↔ NHWC transposes are inverse and put channel c of position (h, w) where each layout says', () => {
  const shape = [2, 3, 4, 5];
  const nchw = Float32Array.from({ length: 120 }, (_, i) => i);
  const nhwc = nchwToNhwc(nchw, shape);
  // Sample 1, channel 2, row 3, column 4.
  assert.equal(nhwc[1 * 60 + (3 * 5 + 4) * 3 + 2], nchw[1 * 60 + 2 * 20 + 3 * 5 + 4]);
  assert.deepEqual(nhwcToNchw(nhwc, [2, 4, 5, 3]), nchw);
  assert.ok(nchwToNhwc(Uint8Array.from([1, 2, 3, 4]), [1, 2, 2, 1]) instanceof Uint8Array);
});

test('analyze --verify on an .onnx takes NCHW inputs, compares in ONNX layout and prints the import check against ONNX Runtime', async (t) => {
  if (!(await onnxRuntime())) return t.skip(NO_RUNTIME);
  const r = prunelens(['analyze', FIXTURE, '--verify', `${FIXTURE_INPUT},${FIXTURE_OUTPUT}`]);
  assert.equal(r.code, 0, r.stderr + r.stdout);
  assert.match(r.stdout, /^Import checked in onnxruntime \(cpu\) on 4 random inputs: imported graph vs original file max diff \S+ \(relative \S+\)$/m);
  assert.match(r.stdout, /Outputs match\./);

  const json = prunelens(['analyze', FIXTURE, '--json', '--verify', `${FIXTURE_INPUT},${FIXTURE_OUTPUT}`]);
  assert.equal(json.code, 0, json.stderr);
  const result = JSON.parse(json.stdout) as { verify: { passed: boolean; outputs: { output: string; shape: number[]; maxRel: number }[] }; onnx: { runtime: string; maxRelDifference: number } };
  assert.equal(result.verify.passed, true);
  assert.deepEqual(result.verify.outputs.map((o) => [o.output, o.shape]), [['output', [4, 10]]]);
  assert.ok(result.verify.outputs[0].maxRel < 1e-4);
  assert.equal(result.onnx.runtime, ONNX_RUNTIME);
  assert.ok(result.onnx.maxRelDifference < 1e-4, `import check: relative ${result.onnx.maxRelDifference}`);
  console.log(`analyze resnet_tiny: verify rel ${result.verify.outputs[0].maxRel.toExponential(1)}, import check rel ${result.onnx.maxRelDifference.toExponential(1)}`);
});

test('analyze --verify on an .onnx refuses channels-last inputs in one line naming NCHW', () => {
  const dir = mkdtempSync(join(tmpdir(), 'prunelens-onnx-verify-'));
  const x = readNpy(FIXTURE_INPUT);
  writeFileSync(join(dir, 'nhwc.npy'), encodeNpy(nchwToNhwc(x.data as Float32Array, x.shape), [4, 32, 32, 3]));
  const r = prunelens(['analyze', FIXTURE, '--verify', `${join(dir, 'nhwc.npy')},${FIXTURE_OUTPUT}`]);
  assert.equal(r.code, 1, r.stdout);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, r.stderr);
  assert.match(lines[0], /inputs have shape \[4, 32, 32, 3\], but the model takes \[\?, 3, 32, 32\].*NCHW/);
});
