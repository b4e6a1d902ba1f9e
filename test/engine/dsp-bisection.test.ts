import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { countCost } from '../../src/engine/metrics/index.js';
import { dspLayers, dspMethod, planLayers } from '../../src/engine/methods/dsp.js';
import { DspPlanner, cumulativeShares, droppedByShare } from '../../src/engine/methods/dsp/plan.js';
import { applyPlanMasks, buildPackedModel } from '../../src/engine/methods/dsp/pack.js';
import { seededRandom } from '../../src/engine/util/random.js';

const DSP_DEFAULTS = dspMethod.defaults;

before(async () => {
  await tf.setBackend('cpu');
});

/** Stem + two residual blocks (the second strided with a 1×1 projection), 16 channels, 8×8 inputs. */
function residualNet(seed: number): tf.LayersModel {
  const init = (k: number) => tf.initializers.heNormal({ seed: seed * 10 + k });
  const input = tf.input({ shape: [8, 8, 3] });
  const ap = (l: tf.layers.Layer, x: tf.SymbolicTensor | tf.SymbolicTensor[]) => l.apply(x) as tf.SymbolicTensor;
  const conv = (name: string, filters: number, k: number, strides: number, s: number) =>
    tf.layers.conv2d({ name, filters, kernelSize: k, strides, padding: 'same', useBias: false, kernelInitializer: init(s) });
  const bn = (name: string) => tf.layers.batchNormalization({ name });
  let x = ap(tf.layers.reLU(), ap(bn('stem_bn'), ap(conv('stem', 16, 3, 1, 1), input)));
  let y = ap(tf.layers.reLU(), ap(bn('a_bn1'), ap(conv('a_conv1', 16, 3, 1, 2), x)));
  y = ap(bn('a_bn2'), ap(conv('a_conv2', 16, 3, 1, 3), y));
  x = ap(tf.layers.reLU(), ap(tf.layers.add(), [x, y]));
  const sc = ap(bn('b_bnsc'), ap(conv('b_sc', 24, 1, 2, 4), x));
  y = ap(tf.layers.reLU(), ap(bn('b_bn1'), ap(conv('b_conv1', 24, 3, 2, 5), x)));
  y = ap(bn('b_bn2'), ap(conv('b_conv2', 24, 3, 1, 6), y));
  x = ap(tf.layers.reLU(), ap(tf.layers.add(), [sc, y]));
  x = ap(tf.layers.globalAveragePooling2d({}), x);
  return tf.model({ inputs: input, outputs: ap(tf.layers.dense({ units: 10, kernelInitializer: init(7) }), x) });
}

test('cumulative-share rule drops the smallest prefix below β and never a whole group', () => {
  const shares = cumulativeShares([4, 1, 3, 2]);
  assert.deepEqual(shares.order, [1, 3, 2, 0]);
  assert.deepEqual(shares.cumulative.map((v) => +v.toFixed(2)), [0.1, 0.3, 0.6, 1]);
  assert.deepEqual(droppedByShare(shares, 0.05), []);
  assert.deepEqual(droppedByShare(shares, 0.35), [1, 3]);
  assert.deepEqual(droppedByShare(shares, 2), [1, 3, 2]);
});

test('regrouped layers skip the stem and the shortcut projection; residual convs get filter pruning', () => {
  const model = residualNet(1);
  const layers = dspLayers(model, DSP_DEFAULTS, []);
  assert.deepEqual(layers.map((l) => l.name), ['a_conv1', 'a_conv2', 'b_conv1', 'b_conv2']);
  const plan = planLayers(model, layers, layers.map((l) => new Array(l.getWeights()[0].shape[3]).fill(0)), DSP_DEFAULTS, []);
  const byName = Object.fromEntries(plan.map((p) => [p.name, p]));
  assert.equal(byName.a_conv2.filterPruning, true);
  assert.equal(byName.a_conv1.filterPruning, false);
  assert.equal(byName.a_conv2.privateProducer, 'a_conv1');
  assert.equal(byName.a_conv1.privateProducer, undefined);
  assert.equal(byName.b_conv2.privateProducer, 'b_conv1');
});

for (const reduction of [0.3, 0.55]) {
  test(`bisection on β reaches a ${Math.round(reduction * 100)}% FLOPs reduction within 2%, counted on the packed model`, async () => {
    const model = residualNet(2);
    const random = seededRandom(3);
    const layers = dspLayers(model, DSP_DEFAULTS, []);
    const groupOf = layers.map((l) => Array.from({ length: l.getWeights()[0].shape[3] as number }, () => Math.floor(random() * 4)));
    const planner = new DspPlanner(planLayers(model, layers, groupOf, DSP_DEFAULTS, []));
    const dense = countCost(model).flops;
    const target = dense * (1 - reduction);
    const { plans, flops } = planner.bisect(dense, target);
    applyPlanMasks(model, plans);
    const packed = await buildPackedModel(model, plans);
    const packedFlops = countCost(packed).flops;
    assert.equal(packedFlops, flops);
    assert.ok(Math.abs(packedFlops - target) <= 0.02 * target, `packed FLOPs ${packedFlops}, target ${target}`);
    assert.ok(plans.some((p) => p.groupOfFilter.some((g) => g < 0)), 'some filters were removed');
    const x = tf.randomNormal([2, 8, 8, 3], 0, 1, 'float32', 4);
    const diff = tf.tidy(() => tf.max(tf.abs(tf.sub(model.predict(x) as tf.Tensor, packed.predict(x) as tf.Tensor))).dataSync()[0]);
    assert.ok(diff <= 1e-5, `packed differs from masked by ${diff}`);
    tf.dispose(x);
  });
}
