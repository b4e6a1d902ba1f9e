import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { EngineEvent } from '../../src/protocol/events.js';
import { METHOD_NAMES } from '../../src/protocol/methods.js';
import { loadConfig } from '../../src/engine/config/index.js';
import { executeSession } from '../../src/engine/session/session.js';
import { onnxRuntime, runOnnx } from '../../src/engine/io/onnx/runtime.js';
import { decodeModel } from '../../src/engine/io/onnx/proto.js';
import { readNpy } from '../../src/engine/data/npy.js';

// Every method end to end on a real PyTorch export: it trains the imported ResNet (BatchNormalization
// kept), removes channels, fine-tunes and writes an .onnx that ONNX Runtime runs.
for (const method of METHOD_NAMES) test(`${method} on an ONNX ResNet writes a smaller .onnx that ONNX Runtime runs`, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), `prunelens-onnx-${method}-`));
  const fixture = 'test/fixtures/onnx/resnet_tiny_bn.onnx';
  copyFileSync(fixture, join(dir, 'resnet.onnx'));
  const config = {
    model: 'resnet.onnx', method, target: { flopsReduction: 0.3 }, output: 'pruned',
    data: { format: 'synthetic', samples: 48, classes: 10, validationSplit: 0.25 },
    train: { epochs: 1, batchSize: 12, learningRate: 0.01 }, finetune: { epochs: 1, batchSize: 12, learningRate: 0.01 },
    latency: { runs: 3, batchSize: 1 }, backend: 'cpu',
  };
  const configPath = join(dir, 'resnet.prune.json');
  writeFileSync(configPath, JSON.stringify(config));
  const events: EngineEvent[] = [];
  const done = await executeSession(await loadConfig(configPath), (e) => events.push(e));
  assert.equal(done.type, 'done', done.type === 'error' ? done.message : '');
  if (method === 'dsp') {
    // DSP rebuilds each split layer as per-group layers the ONNX graph has no nodes for: TF.js, with a note.
    const report = JSON.parse(readFileSync(join(dir, 'pruned', 'pruning-report.json'), 'utf8')) as { notes: string[] };
    assert.ok(report.notes.some((n) => /Saved as a TF\.js layers model \(model\.json\), not as resnet\.onnx/.test(n)), report.notes.join('\n'));
    assert.deepEqual(readdirSync(join(dir, 'pruned')).sort(), ['group1-shard1of1.bin', 'model.json', 'pruning-report.json']);
    return;
  }
  const out = join(dir, 'pruned', 'resnet.onnx');
  assert.ok(statSync(out).size < statSync(fixture).size, 'the pruned file is smaller');
  const written = decodeModel(readFileSync(out), out);
  const original = decodeModel(readFileSync(fixture), fixture);
  assert.deepEqual(written.graph!.node.map((n) => n.name), original.graph!.node.map((n) => n.name), 'the graph keeps its nodes and names');
  assert.deepEqual(readdirSync(join(dir, 'pruned')).filter((f) => f.endsWith('.onnx')), ['resnet.onnx']);
  if (!(await onnxRuntime())) return t.skip('onnxruntime-node is not installed');
  const x = readNpy('test/fixtures/onnx/resnet_tiny_bn.input.npy');
  const [result] = await runOnnx(out, { data: Float32Array.from(x.data as Float32Array), shape: x.shape });
  assert.deepEqual(result.shape, [4, 10]);
  assert.ok(Array.from(result.data).every(Number.isFinite));
});
