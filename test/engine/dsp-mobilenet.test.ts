import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import type { EngineEvent } from '../../src/protocol/events.js';
import { loadConfig } from '../../src/engine/config/index.js';
import { loadModel, saveModelAtomic } from '../../src/engine/io/index.js';
import { countCost } from '../../src/engine/metrics/index.js';
import { dspLayers, dspMethod, planLayers } from '../../src/engine/methods/dsp.js';
import { DspPlanner, packedOrder } from '../../src/engine/methods/dsp/plan.js';
import { applyPlanMasks, buildPackedModel } from '../../src/engine/methods/dsp/pack.js';
import { executeSession } from '../../src/engine/session/session.js';
import { seededRandom } from '../../src/engine/util/random.js';
import { maxOutputDiff, randomizeBatchNorms } from '../helpers/models.js';
import { nsfwjsAvailable, nsfwjsModel } from '../helpers/real-models.js';

const DSP_DEFAULTS = dspMethod.defaults;

before(async () => {
  await tf.setBackend('cpu');
});

/**
 * A MobileNetV2-style network on 16×16×8 inputs: stem, one residual inverted-residual block
 * (1×1 expand → BN → ReLU6 → depthwise 3×3 → BN → ReLU6 → 1×1 project → BN, + input), one
 * strided block with zero padding and no residual, a 1×1 head conv, global pooling and a classifier.
 */
function mobileNetV2Blocks(seed: number): tf.LayersModel {
  const init = (k: number) => tf.initializers.heNormal({ seed: seed * 10 + k });
  const ap = (l: tf.layers.Layer, x: tf.SymbolicTensor | tf.SymbolicTensor[]) => l.apply(x) as tf.SymbolicTensor;
  const conv = (name: string, filters: number, kernelSize: number, k: number) =>
    tf.layers.conv2d({ name, filters, kernelSize, padding: 'same', useBias: false, kernelInitializer: init(k) });
  const depthwise = (name: string, strides: number, k: number) =>
    tf.layers.depthwiseConv2d({ name, kernelSize: 3, strides, padding: strides === 1 ? 'same' : 'valid', useBias: false, depthwiseInitializer: init(k) });
  const bnRelu6 = (name: string, x: tf.SymbolicTensor) => ap(tf.layers.reLU({ name: `${name}_relu`, maxValue: 6 }), ap(tf.layers.batchNormalization({ name: `${name}_bn` }), x));
  const input = tf.input({ shape: [16, 16, 8], name: 'image' });
  const stem = bnRelu6('stem', ap(conv('stem', 8, 3, 1), input));
  let y = bnRelu6('b1_expand', ap(conv('b1_expand', 24, 1, 2), stem));
  y = bnRelu6('b1_depthwise', ap(depthwise('b1_depthwise', 1, 3), y));
  y = ap(tf.layers.batchNormalization({ name: 'b1_project_bn' }), ap(conv('b1_project', 8, 1, 4), y));
  let x = ap(tf.layers.add({ name: 'b1_add' }), [stem, y]);
  y = bnRelu6('b2_expand', ap(conv('b2_expand', 24, 1, 5), x));
  y = ap(tf.layers.zeroPadding2d({ name: 'b2_pad', padding: [[0, 1], [0, 1]] }), y);
  y = bnRelu6('b2_depthwise', ap(depthwise('b2_depthwise', 2, 6), y));
  x = ap(tf.layers.batchNormalization({ name: 'b2_project_bn' }), ap(conv('b2_project', 12, 1, 7), y));
  x = bnRelu6('head', ap(conv('head', 16, 1, 8), x));
  x = ap(tf.layers.globalAveragePooling2d({ name: 'gap' }), x);
  const model = tf.model({ inputs: input, outputs: ap(tf.layers.dense({ name: 'fc', units: 5, kernelInitializer: init(9) }), x) });
  randomizeBatchNorms(model, seed);
  return model;
}

test('DSP regroups the 1×1 expand and project convs of inverted-residual blocks; depthwise convs follow their producer', () => {
  const model = mobileNetV2Blocks(1);
  assert.deepEqual(dspLayers(model, DSP_DEFAULTS, []).map((l) => l.name), ['b1_expand', 'b1_project', 'b2_expand', 'b2_project', 'head']);
  assert.deepEqual(dspLayers(model, DSP_DEFAULTS, ['b1_project']).map((l) => l.name), ['b1_expand', 'b2_expand', 'b2_project', 'head']);
  const layers = dspLayers(model, DSP_DEFAULTS, []);
  const plan = planLayers(model, layers, layers.map((l) => new Array(l.getWeights()[0].shape[3]).fill(0)), DSP_DEFAULTS, []);
  const byName = Object.fromEntries(plan.map((p) => [p.name, p]));
  // The expand conv's channels reach the project conv through the depthwise conv, so they can stay packed.
  assert.equal(byName.b1_expand.reader?.layer, 'b1_project');
  assert.deepEqual(byName.b1_expand.reader?.depthwise, ['b1_depthwise']);
  assert.deepEqual(byName.b2_expand.reader?.depthwise, ['b2_depthwise']);
  assert.equal(byName.b1_project.privateProducer, 'b1_expand');
  assert.equal(byName.b2_project.privateProducer, 'b2_expand');
  // Only the project conv whose output is added into the residual stream loses whole filters.
  assert.equal(byName.b1_project.filterPruning, true);
  assert.equal(byName.b1_expand.filterPruning, false);
  assert.equal(byName.b2_project.filterPruning, false);
  // The stem's output is also the residual stream, so nothing reads it privately.
  assert.equal(byName.b1_expand.privateProducer, undefined);
});

test('a regrouped MobileNetV2-style network packs into per-group convs that compute what the masked one does', async () => {
  const model = mobileNetV2Blocks(2);
  const random = seededRandom(4);
  const layers = dspLayers(model, DSP_DEFAULTS, []);
  const groupOf = layers.map((l) => Array.from({ length: l.getWeights()[0].shape[3] as number }, () => Math.floor(random() * 4)));
  const planner = new DspPlanner(planLayers(model, layers, groupOf, DSP_DEFAULTS, []));
  const dense = countCost(model).flops;
  const target = dense * 0.6;
  const { plans, flops } = planner.bisect(dense, target);
  assert.ok(Math.abs(flops - target) <= 0.02 * target, `planned FLOPs ${flops}, target ${target}`);
  const byName = new Map(plans.map((p) => [p.layer, p]));
  const expand = byName.get('b1_expand')!;
  assert.ok(expand.groupOfFilter.some((g) => g < 0), 'b1_expand loses the filters b1_project no longer reads');
  assert.equal(expand.packedOutput, true, 'b1_expand emits its kept channels straight into the depthwise conv');

  const x = tf.randomNormal([3, 16, 16, 8], 0, 1, 'float32', 6);
  const denseOut = (model.predict(x) as tf.Tensor).clone();
  applyPlanMasks(model, plans);
  const packed = await buildPackedModel(model, plans);
  assert.ok(tf.tidy(() => tf.max(tf.abs(tf.sub(model.predict(x) as tf.Tensor, denseOut))).dataSync()[0]) > 1e-2, 'the plans change the network');
  const diff = maxOutputDiff(model, packed, x);
  assert.ok(diff <= 1e-5, `packed differs from masked by ${diff}`);
  assert.equal(countCost(packed).flops, flops, 'the planner counts the packed model, depthwise convs included');
  // The depthwise conv and its batch norm keep one filter per kept expand channel, in packed order.
  const kept = packedOrder(expand).length;
  assert.equal(packed.getLayer('b1_depthwise').getWeights()[0].shape[2], kept);
  assert.equal(packed.getLayer('b1_depthwise_bn').getWeights()[0].shape[0], kept);
  assert.ok(!packed.layers.some((l) => l.name === 'b1_expand_dsp_scatter'), 'no scatter conv after b1_expand');
  tf.dispose([x, denseOut]);
});

test('DSP runs a whole session on a Sequential model and writes a model that reloads', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'prunelens-dsp-sequential-'));
  const init = (k: number) => tf.initializers.glorotUniform({ seed: k });
  const model = tf.sequential({
    layers: [
      tf.layers.conv2d({ inputShape: [10, 10, 1], filters: 12, kernelSize: 3, activation: 'relu', kernelInitializer: init(1) }),
      tf.layers.conv2d({ filters: 16, kernelSize: 3, activation: 'relu', kernelInitializer: init(2) }),
      tf.layers.maxPooling2d({ poolSize: 2 }),
      tf.layers.flatten(),
      tf.layers.dense({ units: 24, activation: 'relu', kernelInitializer: init(3) }),
      tf.layers.dense({ units: 4, activation: 'softmax', kernelInitializer: init(4) }),
    ],
  });
  await saveModelAtomic(model, join(dir, 'model'));
  model.dispose();
  const configPath = join(dir, 'seq.prune.json');
  writeFileSync(configPath, JSON.stringify({
    model: 'model/model.json', method: 'dsp', target: { flopsReduction: 0.3 }, output: 'pruned',
    data: { format: 'synthetic', samples: 48, classes: 4, validationSplit: 0.25 },
    train: { epochs: 1, batchSize: 12, learningRate: 0.01, maxStepsPerEpoch: 2 },
    finetune: { epochs: 1, batchSize: 12, learningRate: 0.01, maxStepsPerEpoch: 2 },
    latency: { runs: 2, batchSize: 1 }, backend: 'cpu', dsp: { groups: 2 },
  }));
  const events: EngineEvent[] = [];
  const result = await executeSession(loadConfig(configPath), (e) => events.push(e));
  assert.equal(result.type, 'done', result.type === 'error' ? result.message : '');
  if (result.type !== 'done') return;
  assert.ok(events.some((e) => e.type === 'signal' && e.method === 'dsp' && e.name === 'keptChannels'));
  assert.ok(result.after.flops < result.before.flops);
  const reloaded = await loadModel(result.output!);
  assert.equal(countCost(reloaded.model).flops, result.after.flops, 'the saved model is the pruned one');
  assert.ok(reloaded.model.layers.some((l) => l.name.includes('_g')), 'with per-group convolutions');
  // The live bars keep a regrouped conv under its own name, with the channels of its per-group convolutions.
  const pruneLayers = events.filter((e) => e.type === 'layers' && e.phase === 'prune').at(-1);
  assert.ok(pruneLayers?.type === 'layers');
  const saved = new Set(reloaded.model.layers.map((l) => l.name));
  const regrouped = pruneLayers.layers.filter((l) => !saved.has(l.name));
  assert.ok(regrouped.length > 0, 'some conv was regrouped');
  for (const layer of regrouped) {
    const groups = reloaded.model.layers.filter((l) => new RegExp(`^${layer.name}_g\\d+$`).test(l.name));
    const channels = groups.reduce((sum, l) => sum + (l.getWeights()[0].shape[3] as number), 0);
    assert.ok(channels > 0 && layer.kept === channels, `${layer.name} keeps ${layer.kept}, its groups have ${channels}`);
  }
  assert.equal(pruneLayers.totals.keptChannels, pruneLayers.layers.filter((l) => l.status !== 'blocked').reduce((sum, l) => sum + Math.min(l.kept, l.channels), 0));
  const y = reloaded.model.predict(tf.randomNormal([2, 10, 10, 1], 0, 1, 'float32', 3)) as tf.Tensor;
  assert.deepEqual(y.shape, [2, 4]);
  y.dispose();
  reloaded.model.dispose();
});

test('DSP plans and packs the real nsfwjs MobileNetV2: every 1×1 expand and project conv is regrouped', { skip: !nsfwjsAvailable() && 'nsfwjs is not installed' }, async () => {
  const { model } = await loadModel(nsfwjsModel('mobilenet_v2'));
  const layers = dspLayers(model, DSP_DEFAULTS, []);
  const names = layers.map((l) => l.name);
  const convs = model.layers.filter((l) => l.getClassName() === 'Conv2D').map((l) => l.name);
  // Every Conv2D but the stem: 16 expand convs, 17 project convs and the 1×1 head conv.
  assert.deepEqual(names, convs.filter((n) => n !== 'Conv1'));
  assert.equal(names.filter((n) => n.endsWith('_expand')).length, 16);
  assert.equal(names.filter((n) => n.endsWith('_project')).length, 17);
  const random = seededRandom(7);
  const groupOf = layers.map((l) => Array.from({ length: l.getWeights()[0].shape[3] as number }, () => Math.floor(random() * 4)));
  const planned = planLayers(model, layers, groupOf, DSP_DEFAULTS, []);
  const expandReaders = planned.filter((p) => p.name.endsWith('_expand') && p.reader?.depthwise.length === 1);
  assert.equal(expandReaders.length, 16, 'each expand conv reaches its project conv through one depthwise conv');
  const planner = new DspPlanner(planned);
  const plans = planner.plan(0.2);
  assert.ok(plans.filter((p) => p.layer.endsWith('_expand')).every((p) => p.packedOutput), 'expand convs stay packed');
  const dense = countCost(model).flops;
  assert.ok(planner.savedFlops(plans) > 0.1 * dense, 'β = 0.2 saves FLOPs across the network');
  applyPlanMasks(model, plans);
  const packed = await buildPackedModel(model, plans);
  assert.equal(countCost(packed).flops, dense - planner.savedFlops(plans));
  // Compare the first dense layer's output (Conv_1's channels are permuted before it; the softmax would hide small errors).
  const features = (m: tf.LayersModel) => tf.model({ inputs: m.inputs, outputs: m.getLayer('dense_1').output as tf.SymbolicTensor });
  const x = tf.randomUniform([1, 224, 224, 3], 0, 1, 'float32', 5);
  const diff = maxOutputDiff(features(model), features(packed), x);
  assert.ok(diff <= 1e-5, `packed differs from masked by ${diff}`);
  tf.dispose(x);
  model.dispose();
  packed.dispose();
});
