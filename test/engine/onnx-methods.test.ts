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
// kept), removes channels, fine-tunes and writes an .onnx that ONNX Runtime runs with the pruned model's outputs.
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
  const out = join(dir, 'pruned', 'resnet.onnx');
  assert.ok(statSync(out).size < statSync(fixture).size, 'the pruned file is smaller');
  const written = decodeModel(readFileSync(out), out);
  const original = decodeModel(readFileSync(fixture), fixture);
  const names = written.graph!.node.map((n) => n.name!);
  if (method === 'dsp') {
    // DSP replaces a regrouped Conv node by its per-group convolutions (named after it) and their Concat.
    const kept = original.graph!.node.map((n) => n.name!).filter((n) => names.includes(n));
    const added = names.filter((n) => !kept.includes(n));
    assert.ok(added.length > 0 && added.every((n) => original.graph!.node.some((o) => o.op_type === 'Conv' && n.startsWith(`${o.name}_`))), added.join(', '));
    assert.ok(kept.length >= original.graph!.node.length - 11, 'only regrouped Conv nodes are replaced');
  } else {
    assert.deepEqual(names, original.graph!.node.map((n) => n.name), 'the graph keeps its nodes and names');
  }
  assert.deepEqual(readdirSync(join(dir, 'pruned')).filter((f) => f.endsWith('.onnx')), ['resnet.onnx']);
  if (!(await onnxRuntime())) return t.skip('onnxruntime-node is not installed');
  const x = readNpy('test/fixtures/onnx/resnet_tiny_bn.input.npy');
  const [result] = await runOnnx(out, { data: Float32Array.from(x.data as Float32Array), shape: x.shape });
  assert.deepEqual(result.shape, [4, 10]);
  assert.ok(Array.from(result.data).every(Number.isFinite));
  // The session ran the written file in ONNX Runtime against the pruned runtime model.
  const check = (done as { onnx?: { pruned?: { maxRelDifference: number } } }).onnx?.pruned;
  assert.ok(check && check.maxRelDifference < 1e-4, `written file vs pruned model: ${JSON.stringify(check)}`);
});
