import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import type { ChannelGraph, ChannelUnit, WeightSlice } from '../../src/engine/graph/types.js';
import {
  PRODUCING_ROLES,
  UnitWeightLayout,
  disposeWeightSet,
  proximityPenalty,
  squaredDistance,
} from '../../src/engine/methods/group-tensors.js';

/** conv(3×3, 2→4) → BN → flatten (2×2×4) → dense(16→3): one group of 4 units. */
function buildModel(): tf.LayersModel {
  const input = tf.input({ shape: [2, 2, 2] });
  let x = tf.layers.conv2d({ name: 'conv', filters: 4, kernelSize: 3, padding: 'same', kernelInitializer: tf.initializers.randomNormal({ seed: 3 }), biasInitializer: tf.initializers.randomNormal({ seed: 4 }) }).apply(input) as tf.SymbolicTensor;
  x = tf.layers.batchNormalization({ name: 'bn', gammaInitializer: tf.initializers.randomUniform({ minval: 0.5, maxval: 1.5, seed: 5 }), betaInitializer: tf.initializers.randomNormal({ seed: 6 }) }).apply(x) as tf.SymbolicTensor;
  x = tf.layers.flatten({ name: 'flatten' }).apply(x) as tf.SymbolicTensor;
  const out = tf.layers.dense({ name: 'fc', units: 3, kernelInitializer: tf.initializers.randomNormal({ seed: 7 }) }).apply(x) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: out });
}

/** The channel graph the analyser gives this model, written out by hand. */
function buildGraph(): ChannelGraph {
  const channels = 4;
  const units: ChannelUnit[] = [];
  for (let c = 0; c < channels; c++) {
    const slices: WeightSlice[] = [
      { layer: 'conv', weight: 'kernel', axis: 3, indices: [c], role: 'producer' },
      { layer: 'conv', weight: 'bias', axis: 0, indices: [c], role: 'producer' },
      ...['gamma', 'beta', 'moving_mean', 'moving_variance'].map((weight) => ({ layer: 'bn', weight, axis: 0, indices: [c], role: 'norm' as const })),
      { layer: 'fc', weight: 'kernel', axis: 0, indices: [0, 1, 2, 3].map((hw) => hw * channels + c), role: 'consumer' },
    ];
    units.push({ id: c, group: 0, index: c, slices });
  }
  return {
    layers: [],
    groups: [{ id: 0, members: ['conv', 'bn', 'fc'], producers: ['conv'], consumers: ['fc'], channels, units: [0, 1, 2, 3], coupled: false }],
    units,
  };
}

function weightArrays(model: tf.LayersModel) {
  const get = (layer: string, index: number) => Array.from(model.getLayer(layer).getWeights()[index].dataSync());
  return { kernel: get('conv', 0), bias: get('conv', 1), gamma: get('bn', 0), beta: get('bn', 1), fc: get('fc', 0) };
}

/** Squared norm of unit c computed element by element from the weight arrays. */
function manualSquaredNorm(w: ReturnType<typeof weightArrays>, c: number, withConsumers: boolean): number {
  let sum = 0;
  for (let i = 0; i < w.kernel.length; i++) if (i % 4 === c) sum += w.kernel[i] ** 2;
  sum += w.bias[c] ** 2 + w.gamma[c] ** 2 + w.beta[c] ** 2;
  if (withConsumers) for (let row = 0; row < 16; row++) if (row % 4 === c) for (let k = 0; k < 3; k++) sum += w.fc[row * 3 + k] ** 2;
  return sum;
}

test('per-unit squared norms cover every trainable member slice and skip moving statistics', async () => {
  await tf.setBackend('cpu');
  const model = buildModel();
  const graph = buildGraph();
  const w = weightArrays(model);
  for (const withConsumers of [true, false]) {
    const layout = UnitWeightLayout.build(model, graph, withConsumers ? {} : { roles: PRODUCING_ROLES });
    assert.equal(layout.variables.has('bn/moving_mean'), false);
    assert.equal(layout.variables.has('fc/kernel'), withConsumers);
    const norms = layout.norms();
    for (let c = 0; c < 4; c++) {
      const expected = Math.sqrt(manualSquaredNorm(w, c, withConsumers));
      assert.ok(Math.abs(norms[c] - expected) < 1e-5 * expected, `unit ${c}: ${norms[c]} vs ${expected}`);
    }
    layout.dispose();
  }
  model.dispose();
});

test('scaling multiplies exactly the selected units\u2019 slices and leaves the rest untouched', async () => {
  await tf.setBackend('cpu');
  const model = buildModel();
  const before = weightArrays(model);
  const movingVariance = Array.from(model.getLayer('bn').getWeights()[3].dataSync());
  // Only units 1 and 3 are in the layout; unit 1 is zeroed, unit 3 halved.
  const layout = UnitWeightLayout.build(model, buildGraph(), { units: [1, 3] });
  const tensorsBefore = tf.memory().numTensors;
  layout.scaleWeights([0, 0.5]);
  assert.equal(tf.memory().numTensors, tensorsBefore);
  const after = weightArrays(model);
  const factorOf = (c: number) => (c === 1 ? 0 : c === 3 ? 0.5 : 1);
  after.kernel.forEach((v, i) => assert.ok(Math.abs(v - before.kernel[i] * factorOf(i % 4)) < 1e-6));
  for (const name of ['bias', 'gamma', 'beta'] as const) after[name].forEach((v, c) => assert.ok(Math.abs(v - before[name][c] * factorOf(c)) < 1e-6));
  after.fc.forEach((v, i) => assert.ok(Math.abs(v - before.fc[i] * factorOf(Math.floor(i / 3) % 4)) < 1e-6));
  assert.deepEqual(Array.from(model.getLayer('bn').getWeights()[3].dataSync()), movingVariance);
  const norms = layout.norms();
  assert.equal(norms[0], 0);
  assert.ok(norms[1] > 0);
  layout.dispose();
  model.dispose();
});

test('select takes each unit from one of two weight sets; weight-set helpers do not leak', async () => {
  await tf.setBackend('cpu');
  const model = buildModel();
  const layout = UnitWeightLayout.build(model, buildGraph(), { roles: PRODUCING_ROLES });
  const start = tf.memory().numTensors;
  const original = layout.read();
  const zeros = layout.mapKeys((key) => tf.zerosLike(original.get(key) as tf.Tensor));
  const mixed = layout.select(original, zeros, [0, 1, 0, 1]);
  const mixedNorms = layout.norms(mixed);
  const originalNorms = layout.norms(original);
  assert.equal(mixedNorms[1], 0);
  assert.equal(mixedNorms[3], 0);
  assert.ok(Math.abs(mixedNorms[0] - originalNorms[0]) < 1e-6);
  assert.ok(Math.abs(mixedNorms[2] - originalNorms[2]) < 1e-6);

  const distance = squaredDistance(original, mixed);
  const expected = originalNorms[1] ** 2 + originalNorms[3] ** 2;
  assert.ok(Math.abs(distance.dataSync()[0] - expected) < 1e-4 * expected);
  distance.dispose();

  // The proximity penalty is (c/2)‖W − centre‖² and differentiates to c (W − centre).
  const { value, grads } = tf.variableGrads(() => proximityPenalty(layout, zeros, 3));
  const gammaVar = layout.variables.get('bn/gamma') as tf.LayerVariable;
  const gammaGrad = grads[(gammaVar.read() as tf.Variable).name];
  const gamma = gammaVar.read().dataSync();
  gammaGrad.dataSync().forEach((g, i) => assert.ok(Math.abs(g - 3 * gamma[i]) < 1e-5));
  const total = originalNorms.reduce((s, n) => s + n * n, 0);
  assert.ok(Math.abs(value.dataSync()[0] - 1.5 * total) < 1e-4 * total);
  value.dispose();
  tf.dispose(Object.values(grads));

  for (const set of [original, zeros, mixed]) disposeWeightSet(set);
  assert.equal(tf.memory().numTensors, start);
  layout.dispose();
  model.dispose();
});

test('a wrong number of factors is refused', async () => {
  await tf.setBackend('cpu');
  const model = buildModel();
  const layout = UnitWeightLayout.build(model, buildGraph());
  assert.throws(() => layout.scaleWeights([1, 2]));
  layout.dispose();
  model.dispose();
});
