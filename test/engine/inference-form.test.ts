import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { toInferenceForm } from '../../src/engine/surgery/inference-form.js';
import { loadModel } from '../../src/engine/io/index.js';
import { loadConfig } from '../../src/engine/config/index.js';
import { executeSession } from '../../src/engine/session/session.js';
import { buildResNet20, randomizeBatchNorms, randomInput } from '../helpers/models.js';
import { nsfwjsAvailable, nsfwjsModel } from '../helpers/real-models.js';
import { makeWorkspace, tinyTrainingConfig } from '../helpers/fixtures.js';

/** Largest difference relative to the largest magnitude of `a`'s output. */
function relativeDiff(a: tf.LayersModel, b: tf.LayersModel, x: tf.Tensor): number {
  return tf.tidy(() => {
    const ya = a.predict(x) as tf.Tensor;
    const yb = b.predict(x) as tf.Tensor;
    return tf.max(tf.abs(tf.sub(ya, yb))).dataSync()[0] / Math.max(1e-12, tf.max(tf.abs(ya)).dataSync()[0]);
  });
}

const classes = (m: tf.LayersModel) => m.layers.map((l) => l.getClassName());

test('ResNet-20 in inference form: every batch norm folded, every ReLU after a conv fused, same outputs', () => {
  const model = buildResNet20({ seed: 3 });
  randomizeBatchNorms(model, 5);
  const bns = classes(model).filter((c) => c === 'BatchNormalization').length;
  const form = toInferenceForm(model);
  assert.equal(form.folded.length, bns, 'each conv → batch norm pair folds');
  assert.ok(!classes(form.model).includes('BatchNormalization'));
  // The ReLUs after a residual add stay: an Add has no activation to take them.
  assert.ok(form.fused.length > 0 && form.fused.every((f) => /→/.test(f)));
  assert.equal(form.model.layers.length, model.layers.length - form.folded.length - form.fused.length);
  const fusedConv = form.model.getLayer(form.fused[0].split(' → ')[1]);
  assert.equal((fusedConv.getConfig() as { activation: string }).activation, 'relu');
  const x = randomInput(model, 4, 11);
  assert.ok(relativeDiff(model, form.model, x) < 1e-5, 'same outputs up to float rounding');
  assert.equal(model.layers.length, 73, 'the source model is untouched');
  form.model.dispose();
  model.dispose();
});

test('a Sequential model folds too; layers that feed two readers or are outputs stay as they are', () => {
  const seq = tf.sequential({ layers: [
    tf.layers.conv2d({ inputShape: [8, 8, 3], filters: 6, kernelSize: 3, useBias: false }),
    tf.layers.batchNormalization(),
    tf.layers.reLU({ maxValue: 6 }),
    tf.layers.depthwiseConv2d({ kernelSize: 3, depthMultiplier: 2 }),
    tf.layers.batchNormalization(),
    tf.layers.activation({ activation: 'relu' }),
    tf.layers.flatten(),
    tf.layers.dense({ units: 4 }),
    tf.layers.batchNormalization(),
  ] });
  randomizeBatchNorms(seq, 9);
  const form = toInferenceForm(seq);
  assert.deepEqual(classes(form.model), ['Conv2D', 'DepthwiseConv2D', 'Flatten', 'Dense', 'BatchNormalization'], 'the model output (the last batch norm) keeps its layer and name');
  assert.equal((form.model.layers[0].getConfig() as { activation: string }).activation, 'relu6');
  assert.ok(relativeDiff(seq, form.model, randomInput(seq, 3, 2)) < 1e-5);
  form.model.dispose();

  // A conv read by a batch norm and by a second branch: folding would change the branch.
  const input = tf.input({ shape: [8, 8, 3] });
  const conv = tf.layers.conv2d({ filters: 4, kernelSize: 1, name: 'shared_conv' }).apply(input) as tf.SymbolicTensor;
  const bn = tf.layers.batchNormalization({ name: 'bn' }).apply(conv) as tf.SymbolicTensor;
  const sum = tf.layers.add().apply([bn, conv]) as tf.SymbolicTensor;
  const branched = tf.model({ inputs: input, outputs: sum });
  randomizeBatchNorms(branched, 4);
  const kept = toInferenceForm(branched);
  assert.deepEqual(kept.folded, []);
  assert.equal(kept.model.layers.length, branched.layers.length);
  assert.ok(relativeDiff(branched, kept.model, randomInput(branched, 2, 5)) < 1e-6);
  kept.model.dispose();
  branched.dispose();
  seq.dispose();
});

test('the real nsfwjs MobileNetV2 in inference form: 52 batch norms folded, its ReLU6s fused, same outputs', { skip: !nsfwjsAvailable() && 'nsfwjs is not installed' }, async () => {
  const { model } = await loadModel(nsfwjsModel('mobilenet_v2'));
  const form = toInferenceForm(model);
  assert.equal(form.folded.length, classes(model).filter((c) => c === 'BatchNormalization').length);
  assert.equal(form.folded.length, 52);
  assert.ok(form.fused.length >= 30, `${form.fused.length} ReLU6s fused`);
  assert.ok(classes(form.model).length < 80, `${model.layers.length} → ${form.model.layers.length} layers`);
  const x = tf.randomUniform([2, 224, 224, 3], 0, 1, 'float32', 7);
  assert.ok(relativeDiff(model, form.model, x) < 1e-4);
  x.dispose();
  form.model.dispose();
  model.dispose();
});

test('export ["inference"] writes a folded TF.js copy beside the pruned model and times both models in that form', async () => {
  const ws = await makeWorkspace();
  const result = await executeSession(loadConfig(ws.writeConfig({ ...tinyTrainingConfig, export: ['inference'] })), () => undefined);
  assert.equal(result.type, 'done', result.type === 'error' ? result.message : '');
  if (result.type !== 'done') return;
  const folder = join(ws.dir, 'pruned', 'inference');
  assert.ok(existsSync(join(folder, 'model.json')));
  const pruned = await loadModel(result.output!);
  const inference = await loadModel(join(folder, 'model.json'));
  assert.ok(!classes(inference.model).includes('BatchNormalization'), 'no batch norms left');
  assert.ok(inference.model.layers.length < pruned.model.layers.length);
  assert.ok(relativeDiff(pruned.model, inference.model, randomInput(pruned.model, 2, 4)) < 1e-5, 'the copy computes what the pruned model computes');
  const form = result.latency?.inferenceForm;
  assert.ok(form && form.before.medianMs > 0 && form.after.medianMs > 0 && form.folded > 0);
  const report = JSON.parse(readFileSync(join(ws.dir, 'pruned', 'pruning-report.json'), 'utf8'));
  assert.ok(report.notes.some((n: string) => /^In inference form \(\d+ batch norms folded/.test(n)), 'the report says what folding gave');
  pruned.model.dispose();
  inference.model.dispose();
});

test('a batch norm whose axis is the channel index (Keras 2 writes 3) folds too, and folding leaves no tensors behind', () => {
  const input = tf.input({ shape: [6, 6, 2] });
  const conv = tf.layers.conv2d({ filters: 5, kernelSize: 3, name: 'conv' }).apply(input) as tf.SymbolicTensor;
  const bn = tf.layers.batchNormalization({ axis: 3, name: 'bn' }).apply(conv) as tf.SymbolicTensor;
  const head = tf.layers.dense({ units: 2, name: 'head' }).apply(tf.layers.flatten().apply(bn) as tf.SymbolicTensor) as tf.SymbolicTensor;
  const model = tf.model({ inputs: input, outputs: head });
  randomizeBatchNorms(model, 3);
  const tensors = tf.memory().numTensors;
  const form = toInferenceForm(model);
  assert.deepEqual(form.folded, ['bn → conv']);
  assert.ok(relativeDiff(model, form.model, randomInput(model, 2, 8)) < 1e-5);
  form.model.dispose();
  assert.equal(tf.memory().numTensors, tensors + 1, 'only the test input is left (the model and its form are disposed of)');
  model.dispose();
});
