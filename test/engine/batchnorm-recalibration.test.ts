/**
 * Batch-norm statistics after surgery: the session re-estimates every batch norm's moving mean and
 * variance on training samples before it measures the pruned model, so a cut does not leave the
 * layers after it normalising with the dense model's statistics.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/engine/backend/index.js';
import { encodeNpy, loadDataset } from '../../src/engine/data/index.js';
import { recalibrateBatchNorm } from '../../src/engine/train/index.js';
import { loadModel, saveModelAtomic } from '../../src/engine/io/index.js';
import { loadConfig } from '../../src/engine/config/index.js';
import { executeSession } from '../../src/engine/session/session.js';
import type { Dataset } from '../../src/engine/train/types.js';
import { buildTinyCnn, makeWorkspace, tinyTrainingConfig } from '../helpers/fixtures.js';

before(async () => { await initBackend('cpu'); });

const movingMean = (model: tf.LayersModel) => model.getLayer('bn1').getWeights()[2].dataSync() as Float32Array;
const movingVariance = (model: tf.LayersModel) => model.getLayer('bn1').getWeights()[3].dataSync() as Float32Array;

/** bn1's input over `samples` training samples in the order recalibration reads them, batch by batch. */
async function batchStatistics(model: tf.LayersModel, data: Dataset, batchSize: number, samples: number): Promise<{ mean: Float32Array; variance: Float32Array }[]> {
  const conv = tf.model({ inputs: model.inputs, outputs: model.getLayer('conv1').output as tf.SymbolicTensor });
  const out: { mean: Float32Array; variance: Float32Array }[] = [];
  let seen = 0;
  for await (const batch of data.trainBatches(batchSize, 0)) {
    const { mean, variance } = tf.tidy(() => tf.moments(conv.predict(batch.x) as tf.Tensor, [0, 1, 2]));
    // Keras' moving variance takes the unbiased batch variance.
    const n = batch.x.shape[0] * 8 * 8;
    out.push({ mean: mean.dataSync() as Float32Array, variance: (variance.dataSync() as Float32Array).map((v) => v * n / (n - 1)) });
    tf.dispose([mean, variance, batch.x, ...(batch.y ?? [])]);
    seen += n / 64;
    if (seen >= samples) break;
  }
  return out;
}

test('recalibrateBatchNorm sets the moving statistics to the mean of the batches\' statistics and leaves the momentum as it was', async () => {
  const model = buildTinyCnn(3);
  const data = await loadDataset({ format: 'synthetic', samples: 200, classes: 3, noise: 0.5 }, '/tmp', { inputShape: [8, 8, 1], classes: 3 }, 5);
  const momentum = (model.getLayer('bn1') as unknown as { momentum: number }).momentum;
  const used = await recalibrateBatchNorm(model, data, { samples: 96, batchSize: 32 });
  assert.equal(used, 96);
  const batches = await batchStatistics(model, data, 32, 96);
  assert.equal(batches.length, 3);
  const expectedMean = batches[0].mean.map((_, c) => batches.reduce((a, b) => a + b.mean[c], 0) / batches.length);
  const expectedVariance = batches[0].variance.map((_, c) => batches.reduce((a, b) => a + b.variance[c], 0) / batches.length);
  movingMean(model).forEach((m, c) => assert.ok(Math.abs(m - expectedMean[c]) < 1e-4, `mean ${c}: ${m} vs ${expectedMean[c]}`));
  movingVariance(model).forEach((v, c) => assert.ok(Math.abs(v - expectedVariance[c]) < 1e-3 * Math.max(1, expectedVariance[c]), `variance ${c}: ${v} vs ${expectedVariance[c]}`));
  assert.equal((model.getLayer('bn1') as unknown as { momentum: number }).momentum, momentum);
  model.dispose();
});

/** A tiny workspace whose bn1 statistics are far from what the layer sees, with `samples` real (npy) training samples. */
async function skewedWorkspace(samples: number) {
  const ws = await makeWorkspace('prunelens-bn-recal-');
  // Statistics far from what the layer sees: a pruned model that kept them would normalise everything away.
  const model = buildTinyCnn();
  const bn = model.getLayer('bn1');
  const weights = bn.getWeights();
  bn.setWeights([weights[0], weights[1], tf.fill(weights[2].shape, 100), tf.fill(weights[3].shape, 1e4)]);
  await saveModelAtomic(model, join(ws.dir, 'model'));
  model.dispose();
  const x = new Float32Array(samples * 64);
  for (let i = 0; i < x.length; i++) x[i] = Math.sin(i * 0.37) + (i % 7) / 7;
  writeFileSync(join(ws.dir, 'x.npy'), encodeNpy(x, [samples, 8, 8, 1]));
  writeFileSync(join(ws.dir, 'y.npy'), encodeNpy(Int32Array.from({ length: samples }, (_, i) => i % 3), [samples]));
  return ws;
}

const npyData = { format: 'npy', x: 'x.npy', y: 'y.npy', validationSplit: 0.2 };

test('a session re-estimates the pruned model\'s batch-norm statistics before measuring it (no fine-tuning), and says so', async () => {
  const ws = await skewedWorkspace(200);
  const config = loadConfig(ws.writeConfig({ ...tinyTrainingConfig, data: npyData, finetune: { epochs: 0 } }));
  const result = await executeSession(config, () => undefined);
  assert.equal(result.type, 'done', result.type === 'error' ? result.message : '');
  const pruned = (await loadModel(join(ws.dir, 'pruned', 'model.json'))).model;
  const means = movingMean(pruned);
  assert.ok(means.every((m) => Math.abs(m) < 10), `moving means re-estimated: ${[...means].map((m) => m.toFixed(2))}`);
  assert.ok(movingVariance(pruned).every((v) => v < 100), 'moving variances re-estimated');
  pruned.dispose();
  const report = JSON.parse(readFileSync(join(ws.dir, 'pruned', 'pruning-report.json'), 'utf8'));
  assert.ok(report.notes.some((n: string) => /^Batch-norm statistics re-estimated on 160 training samples/.test(n)));
});

test('the dense model\'s batch-norm statistics stay on synthetic data, on too few samples, and when the config says so', async () => {
  const cases: [string, Record<string, unknown>, RegExp][] = [
    ['synthetic', {}, /the data is synthetic/],
    ['few samples', { data: { ...npyData, validationSplit: 0.5 } }, /\b100 training samples are too few/],
    ['turned off', { data: npyData, recalibrateBatchNorm: false }, /"recalibrateBatchNorm": false/],
  ];
  for (const [name, settings, note] of cases) {
    const ws = await skewedWorkspace(200);
    const result = await executeSession(loadConfig(ws.writeConfig({ ...tinyTrainingConfig, finetune: { epochs: 0 }, ...settings })), () => undefined);
    assert.equal(result.type, 'done', `${name}: ${result.type === 'error' ? result.message : ''}`);
    const pruned = (await loadModel(join(ws.dir, 'pruned', 'model.json'))).model;
    // bn1 belongs to conv1's group: the kept channels keep their statistics (100 and 1e4).
    assert.ok(movingMean(pruned).every((m) => m === 100), `${name}: moving means kept`);
    pruned.dispose();
    const report = JSON.parse(readFileSync(join(ws.dir, 'pruned', 'pruning-report.json'), 'utf8'));
    assert.ok(report.notes.some((n: string) => note.test(n)), `${name}: ${report.notes.join(' | ')}`);
  }
});
