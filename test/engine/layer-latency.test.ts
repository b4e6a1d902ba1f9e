import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs';
import { clearLayerLatencyCache, measureLayerLatency, type LayerLatencyTable } from '../../src/engine/metrics/layer-latency.js';
import { countCost } from '../../src/engine/metrics/index.js';
import { efficiency, explainSpeed, sessionSpeed, type LayerFacts } from '../../src/engine/session/speed.js';
import { loadConfig } from '../../src/engine/config/index.js';
import { executeSession } from '../../src/engine/session/session.js';
import type { DoneEvent, EngineEvent } from '../../src/protocol/events.js';
import { buildTinyCnn, makeWorkspace, tinyTrainingConfig } from '../helpers/fixtures.js';

/** A residual block with two identical convs (one timing, cached) and a concat: every kind of node a layer table meets. */
function buildBlock(width = 8): tf.LayersModel {
  const input = tf.input({ shape: [8, 8, 4], name: 'input' });
  const stem = tf.layers.conv2d({ name: 'stem', filters: width, kernelSize: 3, padding: 'same' }).apply(input) as tf.SymbolicTensor;
  const a = tf.layers.conv2d({ name: 'a', filters: width, kernelSize: 3, padding: 'same' }).apply(stem) as tf.SymbolicTensor;
  const b = tf.layers.conv2d({ name: 'b', filters: width, kernelSize: 3, padding: 'same' }).apply(a) as tf.SymbolicTensor;
  const bn = tf.layers.batchNormalization({ name: 'bn' }).apply(b) as tf.SymbolicTensor;
  const sum = tf.layers.add({ name: 'sum' }).apply([stem, bn]) as tf.SymbolicTensor;
  const cat = tf.layers.concatenate({ name: 'cat' }).apply([sum, stem]) as tf.SymbolicTensor;
  const pool = tf.layers.globalAveragePooling2d({ name: 'pool' }).apply(cat) as tf.SymbolicTensor;
  const out = tf.layers.dense({ name: 'out', units: 3 }).apply(pool) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: out, name: 'block' });
}

test('every layer but the input is timed alone at its shapes, identical layers once, with a median inside its quartiles', async () => {
  await tf.setBackend('cpu');
  clearLayerLatencyCache();
  const model = buildBlock();
  const result = await measureLayerLatency(model, { batchSize: 2, runs: 3 });
  assert.ok(!('skipped' in result));
  const table = result as LayerLatencyTable;
  assert.equal(table.backend, 'cpu');
  assert.equal(table.batchSize, 2);
  assert.equal(table.runs, 3);
  assert.deepEqual(Object.keys(table.layers).sort(), model.layers.filter((l) => l.getClassName() !== 'InputLayer').map((l) => l.name).sort());
  assert.deepEqual(table.failed, []);
  for (const [name, t] of Object.entries(table.layers)) {
    assert.ok(t.medianMs >= 0 && t.p25Ms <= t.medianMs && t.medianMs <= t.p75Ms, `${name}: ${JSON.stringify(t)}`);
  }
  // Same class, config (but the name) and input shape: one measurement serves both.
  assert.deepEqual(table.layers.a, table.layers.b);
  // The cache holds within the process: a second model of the same layers reads it.
  const again = await measureLayerLatency(buildBlock(), { batchSize: 2, runs: 3 }) as LayerLatencyTable;
  assert.deepEqual(again.layers, table.layers);
  model.dispose();
});

test('a model with more layers than the bound is not timed layer by layer, and says so', async () => {
  const model = buildBlock();
  const result = await measureLayerLatency(model, { batchSize: 1, maxLayers: 5 });
  assert.ok('skipped' in result);
  assert.match(result.skipped, /not measured: the model has 9 layers, more than 5/);
  model.dispose();
});

test('efficiency is the speedup over the FLOPs ratio', () => {
  assert.equal(efficiency(1.2, 1000, 500), 0.6);
  assert.equal(efficiency(2, 1000, 500), 1);
  assert.equal(efficiency(0.7, 1000, 500), 0.35);
  assert.equal(efficiency(1.1, 1000, 1000), 1.1, 'no FLOPs removed: efficiency is the speedup');
});

test('the note names the layers whose time fell less than their FLOPs, and the time of added layers', () => {
  const before: LayerFacts[] = [
    { name: 'input', type: 'InputLayer', flops: 0 },
    { name: 'conv1', type: 'Conv2D', flops: 1000 },
    { name: 'bn1', type: 'BatchNormalization', flops: 0 },
    { name: 'conv2', type: 'Conv2D', flops: 2000 },
    { name: 'conv3', type: 'Conv2D', flops: 1000 },
    { name: 'out', type: 'Dense', flops: 100 },
  ];
  // conv2 is rebuilt as two per-group convs with a selection conv and a concatenation (DSP's shape).
  const after: LayerFacts[] = [
    { name: 'input', type: 'InputLayer', flops: 0 },
    { name: 'conv1', type: 'Conv2D', flops: 500 },
    { name: 'bn1', type: 'BatchNormalization', flops: 0 },
    { name: 'conv2_g0_select', type: 'Conv2D', flops: 50 },
    { name: 'conv2_g0', type: 'Conv2D', flops: 400 },
    { name: 'conv2_g1', type: 'Conv2D', flops: 400 },
    { name: 'conv2_dsp_cat', type: 'Concatenate', flops: 0 },
    { name: 'conv3', type: 'Conv2D', flops: 600 },
    { name: 'out', type: 'Dense', flops: 100 },
  ];
  const timesBefore = { conv1: 2, bn1: 0.5, conv2: 4, conv3: 2, out: 0.1 };
  const timesAfter = { conv1: 1.9, bn1: 0.3, conv2_g0_select: 0.8, conv2_g0: 1, conv2_g1: 1, conv2_dsp_cat: 0.5, conv3: 1.2, out: 0.1 };
  const flopsBefore = 4100;
  const flopsAfter = 2050;
  const result = explainSpeed({
    speedup: 1.2, flopsBefore, flopsAfter, layersBefore: before, layersAfter: after, timesBefore, timesAfter,
    layerParts: { conv2: ['conv2_g0', 'conv2_g1'] }, method: 'dsp', timedOn: 'TF.js cpu, batch 2',
  });

  // Every layer with weights, the split layer by its parts, then the added ones; the input is not a row.
  assert.deepEqual(result.layers.map((r) => [r.name, r.change]), [
    ['conv1', 'same'], ['bn1', 'same'], ['conv2', 'split'], ['conv3', 'same'], ['out', 'same'],
    ['conv2_g0_select', 'added'], ['conv2_dsp_cat', 'added'],
  ]);
  const conv2 = result.layers.find((r) => r.name === 'conv2')!;
  assert.deepEqual(conv2.parts, ['conv2_g0', 'conv2_g1']);
  assert.equal(conv2.msAfter, 2);
  assert.equal(conv2.flopsAfter, 800);
  assert.equal(conv2.timeRatio, 0.5);
  assert.equal(conv2.flopsRatio, 0.4);
  const conv1 = result.layers.find((r) => r.name === 'conv1')!;
  assert.equal(conv1.timeRatio, 0.95);
  assert.equal(conv1.flopsRatio, 0.5);

  assert.equal(result.flopsRatio, 2);
  assert.equal(result.efficiency, 0.6);
  assert.ok(Math.abs(result.addedMs - 1.3) < 1e-12);
  // conv1 kept 95% of its time at 50% of its FLOPs; conv3 (60% time at 60% FLOPs) and conv2 (time fell faster) did not.
  assert.deepEqual(result.slowLayers, ['conv1']);
  assert.equal(result.note,
    "FLOPs −50.0% but 1.20× faster (efficiency 0.60): conv1 kept 95% of its time at 50% of its FLOPs; " +
    "dsp's 2 added layers (1 Conv2D: conv2_g0_select; 1 Concatenate: conv2_dsp_cat) add 1.30 ms (layers timed alone on TF.js cpu, batch 2).");
});

test('several slow layers are named by the time they kept beyond their FLOPs; an efficient model says so plainly', () => {
  const layers = ['a', 'b', 'c', 'd', 'e'].map((name) => ({ name, type: 'Conv2D', flops: 100 }));
  const halved = layers.map((l) => ({ ...l, flops: 50 }));
  // Excess ms = after − before × 0.5: e 4.75, d 3.8, c 2.85, b 1.9, a 0 (a's time halved).
  const timesBefore = { a: 2, b: 2, c: 3, d: 4, e: 5 };
  const timesAfter = { a: 1, b: 2.9, c: 4.35, d: 5.8, e: 7.25 };
  const slow = explainSpeed({ speedup: 0.8, flopsBefore: 500, flopsAfter: 250, layersBefore: layers, layersAfter: halved, timesBefore, timesAfter });
  assert.deepEqual(slow.slowLayers, ['e', 'd', 'c', 'b']);
  assert.match(slow.note, /^FLOPs −50\.0% but 0\.80× the speed \(slower\) \(efficiency 0\.40\): e took 145% of its time at 50% of its FLOPs, d took 145%.*, c took 145%.* \(1 more such layers in the report\)\.$/);

  // A layer under 1% of the dense layer time is noise when timed alone: not named, however its ratio reads.
  const tiny = explainSpeed({ speedup: 1, flopsBefore: 500, flopsAfter: 250, layersBefore: layers, layersAfter: halved, timesBefore: { ...timesBefore, a: 0.1 }, timesAfter: { ...timesAfter, a: 0.2 } });
  assert.deepEqual(tiny.slowLayers, ['e', 'd', 'c', 'b']);
  assert.equal(tiny.layers.find((r) => r.name === 'a')!.timeRatio, 2);

  const fast = explainSpeed({ speedup: 1.9, flopsBefore: 500, flopsAfter: 250, layersBefore: layers, layersAfter: halved, timesBefore, timesAfter: { a: 1, b: 1, c: 1.5, d: 2, e: 2.5 } });
  assert.deepEqual(fast.slowLayers, []);
  assert.equal(fast.note, 'FLOPs −50.0% and 1.90× faster (efficiency 0.95).');
});

test('sessionSpeed reads real per-layer timings of a model and its rebuilt version: every layer with weights and every added layer is a row', async () => {
  await tf.setBackend('cpu');
  const dense = buildTinyCnn();
  // conv2 rebuilt as DSP does: a 1×1 selection conv per group, the group convs, a concatenation.
  const input = tf.input({ shape: [8, 8, 1], name: 'input' });
  let x = tf.layers.conv2d({ name: 'conv1', filters: 6, kernelSize: 3, padding: 'same' }).apply(input) as tf.SymbolicTensor;
  x = tf.layers.batchNormalization({ name: 'bn1' }).apply(x) as tf.SymbolicTensor;
  x = tf.layers.reLU({ name: 'relu1' }).apply(x) as tf.SymbolicTensor;
  x = tf.layers.maxPooling2d({ name: 'pool1', poolSize: 2 }).apply(x) as tf.SymbolicTensor;
  const groups = [0, 1].map((g) => {
    const selected = tf.layers.conv2d({ name: `conv2_g${g}_select`, filters: 3, kernelSize: 1, useBias: false }).apply(x) as tf.SymbolicTensor;
    return tf.layers.conv2d({ name: `conv2_g${g}`, filters: 4, kernelSize: 3, padding: 'same', activation: 'relu' }).apply(selected) as tf.SymbolicTensor;
  });
  x = tf.layers.concatenate({ name: 'conv2_dsp_cat' }).apply(groups) as tf.SymbolicTensor;
  x = tf.layers.flatten({ name: 'flatten' }).apply(x) as tf.SymbolicTensor;
  x = tf.layers.dense({ name: 'fc1', units: 16, activation: 'relu' }).apply(x) as tf.SymbolicTensor;
  const out = tf.layers.dense({ name: 'out', units: 3, activation: 'softmax' }).apply(x) as tf.SymbolicTensor;
  const rebuilt = tf.model({ inputs: input, outputs: out });

  const costBefore = countCost(dense);
  const costAfter = countCost(rebuilt);
  const speed = sessionSpeed({
    speedup: 1,
    before: { model: dense, cost: costBefore, times: await measureLayerLatency(dense, { batchSize: 2, runs: 2 }) },
    after: { model: rebuilt, cost: costAfter, times: await measureLayerLatency(rebuilt, { batchSize: 2, runs: 2 }) },
    layerParts: { conv2: ['conv2_g0', 'conv2_g1'] },
    method: 'dsp',
  });
  assert.ok(!('skipped' in speed));
  const rows = new Map(speed.explanation.layers.map((r) => [r.name, r]));
  for (const l of dense.layers) if (l.getWeights().length > 0) assert.ok(rows.has(l.name), `${l.name} has a row`);
  assert.equal(rows.get('conv2')!.change, 'split');
  assert.ok(rows.get('conv2')!.msAfter !== undefined, 'a split layer is timed by its parts');
  assert.deepEqual(speed.explanation.layers.filter((r) => r.change === 'added').map((r) => r.name), ['conv2_g0_select', 'conv2_g1_select', 'conv2_dsp_cat']);
  const added = ['conv2_g0_select', 'conv2_g1_select', 'conv2_dsp_cat'].reduce((s, n) => s + rows.get(n)!.msAfter!, 0);
  assert.ok(Math.abs(speed.explanation.addedMs - added) < 1e-9, 'the added layers\' time is counted');
  assert.match(speed.explanation.note, /dsp's 3 added layers \(2 Conv2D: conv2_g0_select, conv2_g1_select; 1 Concatenate: conv2_dsp_cat\) add /);
  assert.equal(speed.explanation.efficiency, 1 / (costBefore.flops / costAfter.flops));
  dense.dispose();
  rebuilt.dispose();
});

test('a session reports per-layer latency before and after, the efficiency, and the note the CLI prints', async () => {
  const ws = await makeWorkspace('prunelens-speed-');
  const config = loadConfig(ws.writeConfig({ ...tinyTrainingConfig, train: { epochs: 0, batchSize: 16, learningRate: 0.01 }, finetune: { epochs: 0, batchSize: 16, learningRate: 0.01 } }));
  const events: EngineEvent[] = [];
  const result = await executeSession(config, (e) => events.push(e));
  assert.equal(result.type, 'done', result.type === 'error' ? result.message : '');
  const done = result as DoneEvent;
  assert.ok(done.speed && done.latency);
  assert.ok(Math.abs(done.speed.efficiency - done.latency.speedup / (done.before.flops / done.after.flops)) < 1e-12);
  assert.match(done.speed.note, /^FLOPs −\d+\.\d% (but|and) \d+\.\d\d× .*\(efficiency \d+\.\d\d\)/);
  const report = JSON.parse(readFileSync(done.report!, 'utf8'));
  assert.equal(report.efficiency, done.speed.efficiency);
  assert.ok(report.notes.includes(done.speed.note));
  assert.equal(report.layerLatency.note, done.speed.note);
  assert.equal(report.layerLatency.batchSize, 1);
  const names = report.layerLatency.layers.map((r: { name: string }) => r.name);
  for (const name of ['conv1', 'bn1', 'conv2', 'fc1', 'out']) assert.ok(names.includes(name), `${name} has a row`);
  for (const row of report.layerLatency.layers) {
    assert.equal(row.change, 'same', 'l1 removes channels, not layers');
    assert.ok(row.msBefore >= 0 && row.msAfter >= 0);
  }
});

test('timing layers alone leaves no tensors behind, a ReLU6 (which leaks one per call outside a model) included', async () => {
  await tf.setBackend('cpu');
  clearLayerLatencyCache();
  const input = tf.input({ shape: [8, 8, 4], name: 'input' });
  const conv = tf.layers.conv2d({ name: 'conv', filters: 8, kernelSize: 3, padding: 'same' }).apply(input) as tf.SymbolicTensor;
  const relu6 = tf.layers.reLU({ name: 'relu6', maxValue: 6 }).apply(conv) as tf.SymbolicTensor;
  const pool = tf.layers.globalAveragePooling2d({ name: 'pool' }).apply(relu6) as tf.SymbolicTensor;
  const model = tf.model({ inputs: input, outputs: tf.layers.dense({ name: 'out', units: 3 }).apply(pool) as tf.SymbolicTensor });
  const before = tf.memory().numTensors;
  const result = await measureLayerLatency(model, { batchSize: 2, runs: 3 });
  assert.ok(!('skipped' in result) && 'relu6' in result.layers);
  assert.equal(tf.memory().numTensors, before);
  model.dispose();
});
