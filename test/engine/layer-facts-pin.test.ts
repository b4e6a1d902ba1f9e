// Pins what the engine knows about layer types, on every test model: channel-graph analysis,
// params and FLOPs (counted, tracked, and the cost of removing units), layer statistics, surgery,
// DSP's topology walks and planner inputs, i-SpaSP's blocks, the ReLU fusion plan, the weight
// layout of channel units, weight decay and OCSPruner's saliency. The fixture was written by the
// code before the layer registry existed; a difference is a change of behaviour.
// UPDATE_LAYER_FACTS=1 rewrites the fixture.
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { analyzeModel } from '../../src/engine/graph/analyze.js';
import type { ChannelGraph } from '../../src/engine/graph/types.js';
import { CostTracker, countCost, layerStats } from '../../src/engine/metrics/index.js';
import { removeUnits } from '../../src/engine/surgery/index.js';
import { buildDemoCnn } from '../../src/engine/demo/model.js';
import { loadModel } from '../../src/engine/io/index.js';
import { UnitWeightLayout } from '../../src/engine/methods/group-tensors.js';
import { isDecayed } from '../../src/engine/train/optimizer.js';
import { unitSaliency } from '../../src/engine/methods/ocspruner/subnetwork.js';
import { findBlocks } from '../../src/engine/methods/ispasp/blocks.js';
import { planReluFusion } from '../../src/engine/backend/simd/fusion.js';
import { planLayers } from '../../src/engine/methods/dsp.js';
import type { DspOptions } from '../../src/engine/methods/dsp/options.js';
import {
  channelReader, feedsResidualAdd, followingBatchNorm, isChannelwiseDepthwise, isPerChannel, isPlainConv2D, isShortcutConv, privateProducer, readsModelInput,
} from '../../src/engine/methods/dsp/topology.js';
import { buildResNet20 as buildBenchResNet20 } from '../../bench/resnet20.js';
import {
  buildBlockedModel, buildConcatDepthwise, buildConv1dModel, buildConvFlattenDense, buildDeepModel, buildMlp, buildResNet20, buildResidualChain, buildSequentialCnn,
} from '../helpers/models.js';
import { nsfwjsAvailable, nsfwjsModel } from '../helpers/real-models.js';

const FIXTURE = join(__dirname, 'layer-facts-pin.json');

before(async () => {
  await tf.setBackend('cpu');
});

type ST = tf.SymbolicTensor;
const apply = (layer: tf.layers.Layer, x: ST | ST[]) => layer.apply(x) as ST;
const init = (seed: number) => tf.initializers.glorotNormal({ seed });

/** Every 2-D layer kind the engine names, in one functional model (transposed convs have their own hazard test). */
function buildKitchen2d(): tf.LayersModel {
  const image = tf.input({ shape: [10, 10, 3], name: 'image' });
  const scaled = apply(tf.layers.rescaling({ name: 'rescale', scale: 1 / 255 }), image);
  let a = apply(tf.layers.conv2d({ name: 'stem', filters: 6, kernelSize: 3, padding: 'same', activation: 'relu', kernelInitializer: init(1) }), scaled);
  a = apply(tf.layers.batchNormalization({ name: 'bn' }), a);
  a = apply(tf.layers.prelu({ name: 'prelu', alphaInitializer: tf.initializers.randomUniform({ minval: 0.1, maxval: 0.3, seed: 2 }) }), a);
  a = apply(tf.layers.depthwiseConv2d({ name: 'dw', kernelSize: 3, padding: 'same', useBias: false, depthwiseInitializer: init(3) }), a);
  a = apply(tf.layers.activation({ name: 'elu_act', activation: 'elu' }), a);
  a = apply(tf.layers.separableConv2d({ name: 'sep', filters: 8, kernelSize: 3, padding: 'same', depthwiseInitializer: init(4), pointwiseInitializer: init(5) }), a);
  a = apply(tf.layers.leakyReLU({ name: 'leaky' }), a);
  a = apply(tf.layers.zeroPadding2d({ name: 'pad', padding: 1 }), a);
  a = apply(tf.layers.cropping2D({ name: 'crop', cropping: [[1, 1], [1, 1]] }), a);
  a = apply(tf.layers.upSampling2d({ name: 'up', size: [2, 2] }), a);
  a = apply(tf.layers.averagePooling2d({ name: 'avg', poolSize: 2 }), a);
  a = apply(tf.layers.dropout({ name: 'drop', rate: 0.1 }), a);
  a = apply(tf.layers.gaussianNoise({ name: 'noise', stddev: 0.1 }), a);
  a = apply(tf.layers.gaussianDropout({ name: 'gdrop', rate: 0.1 }), a);
  a = apply(tf.layers.alphaDropout({ name: 'adrop', rate: 0.1 }), a);
  a = apply(tf.layers.thresholdedReLU({ name: 'thresh', theta: 0.01 }), a);
  a = apply(tf.layers.conv2d({ name: 'conv_a', filters: 8, kernelSize: 3, padding: 'same', kernelInitializer: init(6) }), a);
  const b = apply(tf.layers.conv2d({ name: 'conv_b', filters: 8, kernelSize: 1, activation: 'relu', kernelInitializer: init(7) }), scaled);
  const added = apply(tf.layers.add({ name: 'add' }), [a, b]);
  const sub = apply(tf.layers.multiply({ name: 'gate' }), [a, b]);
  const max = apply(tf.layers.maximum({ name: 'max' }), [added, sub]);
  const min = apply(tf.layers.minimum({ name: 'min' }), [added, sub]);
  const avg = apply(tf.layers.average({ name: 'mean' }), [max, min]);
  const mul = apply(tf.layers.multiply({ name: 'mul' }), [avg, b]);
  let t = apply(tf.layers.conv2d({ name: 'conv_t', filters: 4, kernelSize: 3, padding: 'same', kernelInitializer: init(8) }), mul);
  t = apply(tf.layers.maxPooling2d({ name: 'mp', poolSize: 1 }), t);
  const c = apply(tf.layers.conv2d({ name: 'conv_c', filters: 5, kernelSize: 3, padding: 'same', kernelInitializer: init(9) }), mul);
  let x = apply(tf.layers.concatenate({ name: 'cat' }), [t, c]);
  x = apply(tf.layers.reLU({ name: 'relu6', maxValue: 6 }), x);
  const normed = apply(tf.layers.layerNormalization({ name: 'ln' }), apply(tf.layers.conv2d({ name: 'before_ln', filters: 4, kernelSize: 1, kernelInitializer: init(10) }), x));
  const soft = apply(tf.layers.softmax({ name: 'soft' }), apply(tf.layers.conv2d({ name: 'before_soft', filters: 4, kernelSize: 1, kernelInitializer: init(11) }), x));
  const permuted = apply(tf.layers.permute({ name: 'perm', dims: [2, 1, 3] }), apply(tf.layers.conv2d({ name: 'before_perm', filters: 4, kernelSize: 1, kernelInitializer: init(12) }), x));
  const relu = apply(tf.layers.reLU({ name: 'relu' }), apply(tf.layers.conv2d({ name: 'conv_d', filters: 6, kernelSize: 3, padding: 'same', kernelInitializer: init(13) }), x));
  const bnd = apply(tf.layers.batchNormalization({ name: 'bn_d' }), apply(tf.layers.conv2d({ name: 'conv_e', filters: 6, kernelSize: 1, kernelInitializer: init(14) }), relu));
  const actRelu = apply(tf.layers.activation({ name: 'act_relu', activation: 'relu' }), bnd);
  const branches = [normed, soft, permuted, actRelu].map((branch, i) => apply(tf.layers.globalMaxPooling2d({ name: `gmp${i}` }), branch));
  const flat = apply(tf.layers.flatten({ name: 'flat' }), apply(tf.layers.conv2d({ name: 'conv_f', filters: 3, kernelSize: 3, strides: 2, kernelInitializer: init(15) }), relu));
  const pooled = apply(tf.layers.globalAveragePooling2d({ name: 'gap' }), relu);
  let h = apply(tf.layers.concatenate({ name: 'heads' }), [...branches, flat, pooled]);
  h = apply(tf.layers.dense({ name: 'fc', units: 7, activation: 'relu', kernelInitializer: init(16) }), h);
  const out = apply(tf.layers.dense({ name: 'logits', units: 3, activation: 'softmax', kernelInitializer: init(17) }), h);
  return tf.model({ inputs: image, outputs: out, name: 'kitchen_2d' });
}

/** 1-D and 3-D layers and a reused layer. */
function buildKitchen1d3d(): tf.LayersModel {
  const seq = tf.input({ shape: [16, 4], name: 'sequence' });
  let s = apply(tf.layers.conv1d({ name: 'c1d', filters: 6, kernelSize: 3, padding: 'same', kernelInitializer: init(21) }), seq);
  s = apply(tf.layers.maxPooling1d({ name: 'mp1d', poolSize: 2 }), s);
  s = apply(tf.layers.averagePooling1d({ name: 'ap1d', poolSize: 2 }), s);
  s = apply(tf.layers.spatialDropout1d({ name: 'sd1d', rate: 0.1 }), s);
  const shared = tf.layers.conv1d({ name: 'shared', filters: 5, kernelSize: 1, kernelInitializer: init(22) });
  const s1 = apply(shared, s);
  const s2 = apply(shared, apply(tf.layers.conv1d({ name: 'c1d_b', filters: 6, kernelSize: 1, kernelInitializer: init(23) }), s));
  const seqOut = apply(tf.layers.globalMaxPooling1d({ name: 'gmp1d' }), apply(tf.layers.add({ name: 'add1d' }), [s1, s2]));
  const seqAvg = apply(tf.layers.globalAveragePooling1d({ name: 'gap1d' }), s1);
  const vol = tf.input({ shape: [6, 6, 6, 2], name: 'volume' });
  let v = apply(tf.layers.conv3d({ name: 'c3d', filters: 4, kernelSize: 3, padding: 'same', kernelInitializer: init(24) }), vol);
  v = apply(tf.layers.maxPooling3d({ name: 'mp3d', poolSize: 2 }), v);
  v = apply(tf.layers.averagePooling3d({ name: 'ap3d', poolSize: 1 }), v);
  v = apply(tf.layers.conv3d({ name: 'c3d_b', filters: 3, kernelSize: 2, padding: 'same', kernelInitializer: init(25) }), v);
  const volOut = apply(tf.layers.flatten({ name: 'flat3d' }), v);
  const h = apply(tf.layers.concatenate({ name: 'join' }), [seqOut, seqAvg, volOut]);
  const out = apply(tf.layers.dense({ name: 'logits', units: 2, kernelInitializer: init(26) }), h);
  return tf.model({ inputs: [seq, vol], outputs: out, name: 'kitchen_1d_3d' });
}

/** Embedding and LSTM: weights named kernel that no FLOPs rule counts. */
function buildRecurrent(): tf.LayersModel {
  const tokens = tf.input({ shape: [5], name: 'tokens' });
  let x = apply(tf.layers.embedding({ name: 'embed', inputDim: 20, outputDim: 4, embeddingsInitializer: init(31) }), tokens);
  x = apply(tf.layers.lstm({ name: 'lstm', units: 6, kernelInitializer: init(32), recurrentInitializer: init(33) }), x);
  x = apply(tf.layers.dense({ name: 'fc', units: 5, activation: 'relu', kernelInitializer: init(34) }), x);
  const out = apply(tf.layers.dense({ name: 'logits', units: 2, kernelInitializer: init(35) }), x);
  return tf.model({ inputs: tokens, outputs: out, name: 'recurrent' });
}

const MODELS: Record<string, () => tf.LayersModel | Promise<tf.LayersModel>> = {
  mlp: buildMlp,
  convFlattenDense: () => buildConvFlattenDense(),
  sequentialCnn: () => buildSequentialCnn(),
  conv1d: () => buildConv1dModel(),
  residualChain: () => buildResidualChain(),
  concatDepthwise: () => buildConcatDepthwise(),
  blocked: () => buildBlockedModel(),
  resnet20: () => buildResNet20({ inputShape: [16, 16, 3], width: 4 }),
  deep: () => buildDeepModel(30),
  demoCnn: () => buildDemoCnn(),
  benchResnet20: () => buildBenchResNet20(),
  kitchen2d: buildKitchen2d,
  kitchen1d3d: buildKitchen1d3d,
  recurrent: buildRecurrent,
};
if (nsfwjsAvailable()) MODELS.mobilenetV2 = async () => (await loadModel(nsfwjsModel('mobilenet_v2'))).model;

const hash = (value: unknown) => createHash('sha256').update(JSON.stringify(value)).digest('hex').slice(0, 16);

/** Removal sets: about a third of every group, the first half of every group, and a scattered pick. */
function removalSets(graph: ChannelGraph): number[][] {
  const third = graph.groups.flatMap((g) => (g.units.length > 1 ? g.units.filter((_, i) => (i + g.id) % 3 === 0) : []));
  const half = graph.groups.flatMap((g) => g.units.slice(0, Math.floor(g.units.length / 2)));
  const scattered = graph.groups.flatMap((g) => g.units.filter((u) => (u * 7919) % 5 < 2).slice(0, g.units.length - 1));
  return [third, half, scattered];
}

/** The cost-of-removing query OCSPruner and i-SpaSP search with. */
function costOfRemoving(model: tf.LayersModel, graph: ChannelGraph, removed: number[]): Record<string, number> {
  const cost = new CostTracker(model, graph);
  const reduction = cost.reductionWithout(removed);
  return { ...cost.costWithout(removed), flopsReduction: reduction.flops, paramsReduction: reduction.params };
}

function attempt<T>(fn: () => T): T | string {
  try {
    return fn();
  } catch (err) {
    return `throws: ${(err as Error).message}`;
  }
}

function dspFacts(model: tf.LayersModel): Record<string, unknown> {
  const perLayer: Record<string, string> = {};
  for (const layer of model.layers) {
    const flags = [
      isPerChannel(layer) && 'perChannel', isPlainConv2D(layer) && 'plainConv', isChannelwiseDepthwise(layer) && 'channelwiseDw',
      attempt(() => feedsResidualAdd(layer)) === true && 'residual', attempt(() => isShortcutConv(layer)) === true && 'shortcut',
      attempt(() => readsModelInput(layer)) === true && 'stem',
    ].filter(Boolean);
    const producer = attempt(() => privateProducer(layer)?.name);
    const bn = attempt(() => followingBatchNorm(layer)?.name);
    const reader = attempt(() => channelReader(layer));
    perLayer[layer.name] = [flags.join('+'), producer ?? '', bn ?? '', reader === undefined ? '' : JSON.stringify(reader)].join('|');
  }
  const convs = model.layers.filter((l) => isPlainConv2D(l));
  const plan = attempt(() => planLayers(model, convs, convs.map((l) => new Array<number>(l.getWeights()[0].shape[3] as number).fill(0)),
    { groups: 2, filterPruning: true } as unknown as DspOptions, []).map((l) => ({ ...l, energy: l.energy.length, groupOf: l.groupOf?.length })));
  return { perLayer, plan };
}

async function facts(model: tf.LayersModel): Promise<Record<string, unknown>> {
  const cost = countCost(model);
  const graph = analyzeModel(model);
  const sets = removalSets(graph);
  const tracker = new CostTracker(model, graph);
  const deltas = graph.units.slice(0, 6).map((u) => tracker.removalDelta(u.id));
  for (const u of sets[0]) tracker.remove(u);
  const stats = layerStats(model, graph, { removed: sets[0], bins: 3 });
  let pruned: unknown;
  if (sets[0].length > 0) {
    const narrow = await removeUnits(model, graph, sets[0]);
    const widths: Record<string, unknown> = {};
    for (const l of narrow.layers) {
      const config = l.getConfig() as { filters?: number; units?: number };
      if (config.filters !== undefined || config.units !== undefined) widths[l.name] = config.filters ?? config.units;
    }
    const narrowCost = countCost(narrow);
    pruned = { params: narrowCost.params, flops: narrowCost.flops, widths, shapes: hash(narrow.weights.map((w) => [w.name.replace(/_\d+$/, ''), w.shape])) };
    narrow.dispose();
  }
  const layout = attempt(() => {
    const l = UnitWeightLayout.build(model, graph);
    const keys = [...l.variables.keys()];
    l.dispose();
    return keys;
  });
  const saliency = graph.units.length ? unitSaliency(model, graph) : new Float64Array();
  const blocks = attempt(() => {
    const scan = findBlocks(model, graph);
    return {
      blocks: scan.blocks.map((b) => [b.group.id, b.producer, b.consumers.map((c) => c.name).join(','), b.hidden.shape.join('x'), b.flattened, b.norms.map((n) => n?.name ?? '').join(',')].join('|')),
      skipped: scan.skipped.map((s) => `${s.group}:${s.reason}`),
    };
  });
  const fused = attempt(() => [...planReluFusion(model).keys()].map((l) => (l as { name: string }).name).sort());
  return {
    cost: { params: cost.params, flops: cost.flops, layers: Object.fromEntries(Object.entries(cost.layers).map(([k, v]) => [k, [v.params, v.flops, v.inChannels, v.outChannels]])) },
    graph: {
      layers: graph.layers.map((l) => [l.name, l.type, l.status, l.group ?? '', l.reason ?? '', l.outChannels, l.inChannels, l.params, l.flops, l.ownsChannels].join('|')),
      groups: graph.groups.map((g) => [g.producers.join(','), g.consumers.join(','), g.members.join(','), g.channels, g.coupled].join('|')),
      units: hash(graph.units),
    },
    tracker: { baseline: tracker.baseline, afterRemoval: tracker.cost(), deltas },
    costOfRemoving: sets.map((s) => costOfRemoving(model, graph, s)),
    stats: { totals: stats.totals, layers: stats.layers.map((l) => [l.name, l.kept, l.channels, l.params, l.flops, l.sparsity, l.group ?? '', l.zeroGroups ?? ''].join('|')) },
    pruned,
    dsp: dspFacts(model),
    ispasp: blocks,
    fusion: fused,
    layout,
    decayed: model.trainableWeights.filter((w) => isDecayed(w.originalName)).map((w) => w.originalName),
    saliency: { sum: saliency.reduce((a, b) => a + b, 0), weighted: saliency.reduce((a, b, i) => a + b * ((i % 7) + 1), 0) },
  };
}

/** Deep equality where numbers (other than integers) may differ by a relative 1e-9. */
function assertClose(actual: unknown, expected: unknown, path: string): void {
  if (typeof expected === 'number' && typeof actual === 'number') {
    if (Number.isInteger(expected) && Number.isInteger(actual)) assert.equal(actual, expected, path);
    else assert.ok(Math.abs(actual - expected) <= 1e-9 * Math.max(1, Math.abs(expected)), `${path}: ${actual} vs ${expected}`);
    return;
  }
  if (expected && typeof expected === 'object') {
    assert.ok(actual && typeof actual === 'object', `${path}: expected an object, got ${JSON.stringify(actual)}`);
    const keys = new Set([...Object.keys(expected), ...Object.keys(actual as object)]);
    for (const k of keys) assertClose((actual as Record<string, unknown>)[k], (expected as Record<string, unknown>)[k], `${path}.${k}`);
    return;
  }
  assert.deepEqual(actual, expected, path);
}

const update = process.env.UPDATE_LAYER_FACTS === '1';
const pinned: Record<string, unknown> = existsSync(FIXTURE) ? JSON.parse(readFileSync(FIXTURE, 'utf8')) : {};
const written: Record<string, unknown> = {};

for (const [name, build] of Object.entries(MODELS)) {
  test(`layer facts of ${name} are unchanged`, { timeout: 300_000 }, async () => {
    const model = await build();
    const observed = JSON.parse(JSON.stringify(await facts(model)));
    model.dispose();
    if (update) {
      written[name] = observed;
      writeFileSync(FIXTURE, JSON.stringify({ ...pinned, ...written }, null, 1) + '\n');
      return;
    }
    assert.ok(pinned[name], `no pinned facts for ${name}: run with UPDATE_LAYER_FACTS=1`);
    assertClose(observed, pinned[name], name);
  });
}
