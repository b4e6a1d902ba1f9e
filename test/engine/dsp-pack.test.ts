import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { buildDemoCnn } from '../../src/engine/demo/model.js';
import { applyPlanMasks, buildPackedModel } from '../../src/engine/methods/dsp/pack.js';
import { DspPlanner, mergeGroups, keepsFilterOrder, packedOrder, realiseGroups, realisedGroupFlops, type GroupedConvPlan } from '../../src/engine/methods/dsp/plan.js';
import { dspLayers, dspMethod, planLayers } from '../../src/engine/methods/dsp.js';
import { spatialShapes } from '../../src/engine/methods/dsp/topology.js';
import { countCost } from '../../src/engine/metrics/index.js';

const modelFlops = (model: tf.LayersModel) => countCost(model).flops;
import { seededRandom } from '../../src/engine/util/random.js';

const DSP_DEFAULTS = dspMethod.defaults;

before(async () => {
  await tf.setBackend('cpu');
});

/** A two-block residual network with BN, a strided 1×1 shortcut and a fused-activation conv. */
function tinyResNet(seed: number): tf.LayersModel {
  const init = (k: number) => tf.initializers.heNormal({ seed: seed * 10 + k });
  const input = tf.input({ shape: [8, 8, 3], name: 'image' });
  const conv = (name: string, filters: number, kernelSize: number, strides: number, k: number, activation: 'linear' | 'relu' = 'linear') =>
    tf.layers.conv2d({ name, filters, kernelSize, strides, padding: 'same', kernelInitializer: init(k), activation, useBias: activation !== 'linear' });
  const bn = (name: string) => tf.layers.batchNormalization({ name, betaInitializer: tf.initializers.randomNormal({ stddev: 0.3, seed: seed + name.length }), gammaInitializer: tf.initializers.randomUniform({ minval: 0.5, maxval: 1.5, seed }) });
  const relu = (name: string) => tf.layers.reLU({ name });
  const ap = (l: tf.layers.Layer, x: tf.SymbolicTensor | tf.SymbolicTensor[]) => l.apply(x) as tf.SymbolicTensor;
  let x = ap(relu('stem_relu'), ap(bn('stem_bn'), ap(conv('stem', 8, 3, 1, 1), input)));
  let y = ap(relu('b1_relu_a'), ap(bn('b1_bn_a'), ap(conv('b1_conv_a', 8, 3, 1, 2), x)));
  y = ap(bn('b1_bn_b'), ap(conv('b1_conv_b', 8, 3, 1, 3), y));
  x = ap(relu('b1_relu'), ap(tf.layers.add({ name: 'b1_add' }), [x, y]));
  const shortcut = ap(bn('b2_bn_sc'), ap(conv('b2_sc', 12, 1, 2, 4), x));
  y = ap(conv('b2_conv_a', 12, 3, 2, 5, 'relu'), x);
  y = ap(bn('b2_bn_b'), ap(conv('b2_conv_b', 12, 3, 1, 6), y));
  x = ap(relu('b2_relu'), ap(tf.layers.add({ name: 'b2_add' }), [shortcut, y]));
  x = ap(tf.layers.globalAveragePooling2d({ name: 'gap' }), x);
  const output = ap(tf.layers.dense({ name: 'fc', units: 5, kernelInitializer: init(7) }), x);
  return tf.model({ inputs: input, outputs: output });
}

/** A random plan: random groups, random kept inputs per group, some removed filters. */
function randomPlan(model: tf.LayersModel, name: string, groups: number, random: () => number, removeFilters: boolean): GroupedConvPlan {
  const [, , inChannels, filters] = model.getLayer(name).getWeights()[0].shape;
  const groupOfFilter = Array.from({ length: filters }, () => Math.floor(random() * groups));
  if (removeFilters) for (let j = 0; j < filters; j++) if (random() < 0.25) groupOfFilter[j] = -1;
  if (groupOfFilter.every((g) => g < 0)) groupOfFilter[0] = 0;
  const inputsOfGroup = Array.from({ length: groups }, () => {
    const kept = Array.from({ length: inChannels }, (_, c) => c).filter(() => random() < 0.55);
    return kept.length ? kept : [Math.floor(random() * inChannels)];
  });
  return { layer: name, groupOfFilter, inputsOfGroup };
}

function maxAbsDiff(a: tf.LayersModel, b: tf.LayersModel, x: tf.Tensor): number {
  return tf.tidy(() => tf.max(tf.abs(tf.sub(a.predict(x) as tf.Tensor, b.predict(x) as tf.Tensor))).dataSync()[0]);
}

/** FLOPs of the model with each planned conv rebuilt at full input width, its output scattered back to the original order. */
function plannedFlops(model: tf.LayersModel, plans: GroupedConvPlan[]): number {
  let flops = modelFlops(model);
  for (const plan of plans) {
    const layer = model.getLayer(plan.layer);
    const [kh, kw, inChannels, filters] = layer.getWeights()[0].shape;
    const { input, output } = spatialShapes(layer);
    const pairFlops = 2 * kh * kw * output[0] * output[1];
    assert.equal(countCost(model).layers[plan.layer].flops, pairFlops * inChannels * filters);
    const selectionPairFlops = 2 * input[0] * input[1];
    const groups = realiseGroups(plan, inChannels, pairFlops, selectionPairFlops);
    flops -= pairFlops * inChannels * filters - realisedGroupFlops(groups, inChannels, pairFlops, selectionPairFlops);
    if (!keepsFilterOrder(plan)) flops += packedOrder(plan).length * filters * 2 * output[0] * output[1];
  }
  return flops;
}

test('packed per-group convolutions equal the masked residual network, and FLOPs shrink as planned', async () => {
  const model = tinyResNet(3);
  const random = seededRandom(11);
  const plans = [
    randomPlan(model, 'b1_conv_a', 2, random, false),
    randomPlan(model, 'b1_conv_b', 3, random, true),
    randomPlan(model, 'b2_conv_a', 2, random, true),
    randomPlan(model, 'b2_conv_b', 4, random, true),
    randomPlan(model, 'stem', 1, random, true),
  ];
  const denseFlops = modelFlops(model);
  const x0 = tf.randomNormal([4, 8, 8, 3], 0, 1, 'float32', 5);
  const denseOut = (model.predict(x0) as tf.Tensor).clone();
  applyPlanMasks(model, plans);
  // The plans are not trivial: masking changes the outputs.
  assert.ok(tf.tidy(() => tf.max(tf.abs(tf.sub(model.predict(x0) as tf.Tensor, denseOut))).dataSync()[0]) > 1e-2);
  assert.ok(plans[1].groupOfFilter.some((g) => g < 0));
  tf.dispose([x0, denseOut]);
  const packed = await buildPackedModel(model, plans);
  const x = tf.randomNormal([4, 8, 8, 3], 0, 1, 'float32', 5);
  const diff = maxAbsDiff(model, packed, x);
  assert.ok(diff <= 1e-5, `packed differs from masked by ${diff}`);
  // Only Conv2D/Dense layers cost FLOPs, the 1×1 selection and scatter convs included.
  const packedFlops = modelFlops(packed);
  assert.equal(packedFlops, plannedFlops(tinyResNet(3), plans));
  assert.ok(packedFlops < denseFlops);
  for (const l of packed.layers) assert.ok(['InputLayer', 'Conv2D', 'BatchNormalization', 'ReLU', 'Add', 'GlobalAveragePooling2D', 'Dense', 'Concatenate'].includes(l.getClassName()), l.getClassName());
  // The removed b1_conv_b filters carry exact zeros into the residual stream.
  const removed = plans[1].groupOfFilter.findIndex((g) => g < 0);
  if (removed >= 0) {
    const probe = tf.model({ inputs: packed.inputs, outputs: packed.getLayer('b1_bn_b').output as tf.SymbolicTensor });
    const values = tf.tidy(() => (probe.predict(x) as tf.Tensor).gather([removed], 3).abs().max().dataSync()[0]);
    assert.equal(values, 0);
  }
  tf.dispose(x);
});

test('packed model round-trips through TF.js layers serialisation (JSON + weights, and memory save/load)', async () => {
  const model = buildDemoCnn({ inputShape: [8, 8, 1], classes: 4, seed: 2 });
  const random = seededRandom(5);
  const plans = [randomPlan(model, 'conv2', 2, random, true), randomPlan(model, 'conv3', 4, random, false)];
  applyPlanMasks(model, plans);
  const packed = await buildPackedModel(model, plans);
  const x = tf.randomNormal([3, 8, 8, 1], 0, 1, 'float32', 9);
  assert.ok(maxAbsDiff(model, packed, x) <= 1e-5);

  const fromJson = (await tf.models.modelFromJSON(packed.toJSON(null, false) as Parameters<typeof tf.models.modelFromJSON>[0])) as tf.LayersModel;
  fromJson.setWeights(packed.getWeights());
  assert.ok(maxAbsDiff(packed, fromJson, x) <= 1e-6);

  let artifacts: tf.io.ModelArtifacts | undefined;
  await packed.save(tf.io.withSaveHandler(async (a) => {
    artifacts = a;
    return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
  }));
  const loaded = await tf.loadLayersModel(tf.io.fromMemory(artifacts!));
  const diff = maxAbsDiff(model, loaded, x);
  assert.ok(diff <= 1e-5, `loaded differs from masked by ${diff}`);
  assert.equal(modelFlops(loaded), modelFlops(packed));
  tf.dispose(x);
});

test('planned convs hand their kept channels, in group order, straight to the layer that reads them', async () => {
  const model = buildDemoCnn({ inputShape: [12, 12, 1], classes: 4, seed: 4 });
  const random = seededRandom(8);
  const layers = dspLayers(model, DSP_DEFAULTS, []);
  const groupOf = layers.map((l) => Array.from({ length: l.getWeights()[0].shape[3] as number }, () => Math.floor(random() * 4)));
  const planner = new DspPlanner(planLayers(model, layers, groupOf, DSP_DEFAULTS, []));
  const dense = modelFlops(model);
  const { plans, flops } = planner.bisect(dense, dense * 0.5);
  // conv2 feeds conv3 and conv3 feeds fc1 through flatten: neither needs its channel order restored.
  const byName = new Map(plans.map((p) => [p.layer, p]));
  assert.equal(byName.get('conv2')?.packedOutput, true);
  assert.equal(byName.get('conv3')?.packedOutput, true);
  applyPlanMasks(model, plans);
  const packed = await buildPackedModel(model, plans);
  assert.equal(modelFlops(packed), flops);
  assert.ok(!packed.layers.some((l) => l.name.endsWith('_dsp_scatter')), 'no scatter conv');
  for (const l of packed.layers) assert.ok(['InputLayer', 'Conv2D', 'BatchNormalization', 'ReLU', 'MaxPooling2D', 'Flatten', 'Dense', 'Concatenate'].includes(l.getClassName()), l.getClassName());
  // Removed filters vanish: batch norms after packed convs are only as wide as the kept filters.
  const conv2Kept = packedOrder(byName.get('conv2')!).length;
  assert.equal(packed.getLayer('bn2').getWeights()[0].shape[0], conv2Kept);
  const x = tf.randomNormal([3, 12, 12, 1], 0, 1, 'float32', 6);
  const diff = maxAbsDiff(model, packed, x);
  assert.ok(diff <= 1e-5, `packed differs from masked by ${diff}`);
  tf.dispose(x);
});

test('groups merge only when one conv over the union of their inputs costs less than the layers it saves', () => {
  const layer = { name: 'c', inChannels: 8, filters: 4, pairFlops: 1000, energy: new Float64Array(32), groups: 2, filterPruning: false, selectionPairFlops: 100, scatterPairFlops: 100 };
  const disjoint = () => ({ layer: 'c', groupOfFilter: [0, 0, 1, 1], inputsOfGroup: [[0, 1, 2], [5, 6, 7]] });
  const free = disjoint();
  mergeGroups(free, layer, 0);
  assert.deepEqual(free.inputsOfGroup, [[0, 1, 2], [5, 6, 7]]);
  const costly = disjoint();
  mergeGroups(costly, layer, 1e6);
  assert.deepEqual(costly.groupOfFilter, [0, 0, 0, 0]);
  assert.deepEqual(costly.inputsOfGroup, [[0, 1, 2, 5, 6, 7], []]);
  const same = { layer: 'c', groupOfFilter: [0, 1, 0, 1], inputsOfGroup: [[1, 3], [1, 3]] };
  mergeGroups(same, layer, 1);
  assert.deepEqual(same.groupOfFilter, [0, 0, 0, 0]);
});

test('with merged groups the packed model still equals the masked one and meets the FLOPs the planner counts', async () => {
  const model = buildDemoCnn({ inputShape: [12, 12, 1], classes: 4, seed: 4 });
  const random = seededRandom(8);
  const layers = dspLayers(model, DSP_DEFAULTS, []);
  const groupOf = layers.map((l) => Array.from({ length: l.getWeights()[0].shape[3] as number }, () => Math.floor(random() * 4)));
  const planLayersOf = planLayers(model, layers, groupOf, DSP_DEFAULTS, []);
  const separate = new DspPlanner(planLayersOf, { layerCostFlops: 0 }).plan(0.3);
  const merged = new DspPlanner(planLayersOf, { layerCostFlops: 20_000 }).plan(0.3);
  const liveGroups = (plans: GroupedConvPlan[]) => plans.reduce((n, p) => n + new Set(p.groupOfFilter.filter((g) => g >= 0)).size, 0);
  assert.ok(liveGroups(merged) < liveGroups(separate), `${liveGroups(merged)} vs ${liveGroups(separate)} groups`);
  const planner = new DspPlanner(planLayersOf, { layerCostFlops: 20_000 });
  applyPlanMasks(model, merged);
  const packed = await buildPackedModel(model, merged);
  assert.equal(modelFlops(packed), modelFlops(buildDemoCnn({ inputShape: [12, 12, 1], classes: 4, seed: 4 })) - planner.savedFlops(merged));
  const x = tf.randomNormal([3, 12, 12, 1], 0, 1, 'float32', 6);
  const diff = maxAbsDiff(model, packed, x);
  assert.ok(diff <= 1e-5, `packed differs from masked by ${diff}`);
  tf.dispose(x);
});
