import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { analyzeModel } from '../../src/engine/graph/analyze.js';
import { CostTracker, countCost, layerStats, measureLatency, unitNorms } from '../../src/engine/metrics/index.js';
import { removeUnits, zeroUnits } from '../../src/engine/surgery/index.js';
import { buildConvFlattenDense, buildResNet20 } from '../helpers/models.js';

before(async () => {
  await tf.setBackend('cpu');
});

function handModel(): tf.LayersModel {
  const input = tf.input({ shape: [10, 10, 3] });
  let x = tf.layers.conv2d({ name: 'valid', filters: 5, kernelSize: 3 }).apply(input) as tf.SymbolicTensor; // 8×8×5
  x = tf.layers.batchNormalization({ name: 'bn' }).apply(x) as tf.SymbolicTensor;
  x = tf.layers.depthwiseConv2d({ name: 'dw', kernelSize: 3, depthMultiplier: 2, padding: 'same' }).apply(x) as tf.SymbolicTensor; // 8×8×10
  x = tf.layers.conv2d({ name: 'strided', filters: 6, kernelSize: 3, strides: 2, padding: 'same', useBias: false }).apply(x) as tf.SymbolicTensor; // 4×4×6
  x = tf.layers.separableConv2d({ name: 'sep', filters: 4, kernelSize: 3, padding: 'same' }).apply(x) as tf.SymbolicTensor; // 4×4×4
  x = tf.layers.maxPooling2d({ name: 'pool', poolSize: 2 }).apply(x) as tf.SymbolicTensor; // 2×2×4
  x = tf.layers.flatten({ name: 'flat' }).apply(x) as tf.SymbolicTensor; // 16
  const out = tf.layers.dense({ name: 'fc', units: 7 }).apply(x) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: out });
}

describe('countCost', () => {
  it('counts FLOPs per sample as 2 × multiply-adds, by hand', () => {
    const cost = countCost(handModel());
    assert.equal(cost.layers.valid.flops, 2 * (3 * 3 * 3) * 5 * (8 * 8));
    assert.equal(cost.layers.bn.flops, 0);
    assert.equal(cost.layers.dw.flops, 2 * (3 * 3) * 5 * 2 * (8 * 8));
    assert.equal(cost.layers.strided.flops, 2 * (3 * 3 * 10) * 6 * (4 * 4));
    assert.equal(cost.layers.sep.flops, 2 * (3 * 3) * 6 * (4 * 4) + 2 * 6 * 4 * (4 * 4));
    assert.equal(cost.layers.pool.flops, 0);
    assert.equal(cost.layers.fc.flops, 2 * 16 * 7);
    assert.equal(cost.flops, 17280 + 11520 + 17280 + 1728 + 768 + 224);
  });

  it('counts params like model.countParams, per layer too, with channel counts', () => {
    const model = handModel();
    const cost = countCost(model);
    assert.equal(cost.params, model.countParams());
    assert.equal(cost.layers.bn.params, 4 * 5);
    assert.equal(cost.layers.dw.params, 3 * 3 * 5 * 2 + 10);
    assert.equal(cost.layers.sep.params, 3 * 3 * 6 + 6 * 4 + 4);
    assert.deepEqual([cost.layers.strided.inChannels, cost.layers.strided.outChannels], [10, 6]);
    assert.deepEqual([cost.layers.flat.inChannels, cost.layers.flat.outChannels], [4, 16]);
  });
});

describe('CostTracker', () => {
  it('tracks exact params and FLOPs of removals on ResNet-20 (matches the rebuilt model)', async () => {
    const model = buildResNet20({ inputShape: [16, 16, 3], width: 4 });
    const graph = analyzeModel(model);
    const tracker = new CostTracker(model, graph);
    const dense = countCost(model);
    assert.deepEqual(tracker.baseline, { params: dense.params, flops: dense.flops });

    const remove = graph.groups.flatMap((g) => g.units.filter((_, i) => (i + g.id) % 3 === 0));
    let predicted = 0;
    for (const u of remove) {
      predicted += tracker.removalDelta(u).flops;
      tracker.remove(u);
    }
    const pruned = await removeUnits(model, graph, remove);
    const actual = countCost(pruned);
    assert.deepEqual(tracker.cost(), { params: actual.params, flops: actual.flops });
    assert.equal(dense.flops - predicted, actual.flops, 'sequential deltas add up to the final cost');
    for (const name of ['stem', 's2b0_proj', 's3b1_conva', 'logits']) {
      assert.deepEqual(tracker.layerCost(name), { params: actual.layers[name].params, flops: actual.layers[name].flops }, name);
    }
    for (const u of remove) tracker.restore(u);
    assert.deepEqual(tracker.cost(), tracker.baseline);
    pruned.dispose();
  });
});

/** Multiply-adds a convolution performs: with all-ones input and kernel, each one adds exactly 1 to the output ('valid': none is cropped). */
function multiplyAdds(run: (x: tf.Tensor4D, k: tf.Tensor4D) => tf.Tensor4D, input: [number, number, number, number], kernel: [number, number, number, number]): number {
  return tf.tidy(() => tf.sum(run(tf.ones(input), tf.ones(kernel))).dataSync()[0]);
}

describe('FLOPs of a transposed convolution', () => {
  it('count every kernel element once per input position, as running the op on ones shows (a conv: once per output position)', () => {
    const input = tf.input({ shape: [5, 6, 3] });
    const up = tf.layers.conv2dTranspose({ name: 'up', filters: 4, kernelSize: 3, strides: 2, padding: 'valid' }).apply(input) as tf.SymbolicTensor; // 11×13×4
    const down = tf.layers.conv2d({ name: 'down', filters: 2, kernelSize: 3, strides: 2, padding: 'valid' }).apply(up) as tf.SymbolicTensor; // 5×6×2
    const cost = countCost(tf.model({ inputs: input, outputs: down }));
    const upMacs = multiplyAdds((x, k) => tf.conv2dTranspose(x, k, [1, 11, 13, 4], 2, 'valid'), [1, 5, 6, 3], [3, 3, 4, 3]);
    const downMacs = multiplyAdds((x, k) => tf.conv2d(x, k, 2, 'valid'), [1, 11, 13, 4], [3, 3, 4, 2]);
    assert.equal(upMacs, 5 * 6 * 3 * 3 * 3 * 4, 'input positions × kernel elements');
    assert.equal(cost.layers.up.flops, 2 * upMacs);
    assert.equal(cost.layers.down.flops, 2 * downMacs);
  });

  it('the cost of removing units next to one equals the counted cost of the pruned model', async () => {
    const input = tf.input({ shape: [6, 6, 3] });
    let x = tf.layers.conv2d({ name: 'a', filters: 6, kernelSize: 3, padding: 'same', activation: 'relu' }).apply(input) as tf.SymbolicTensor;
    x = tf.layers.conv2d({ name: 'b', filters: 5, kernelSize: 3, padding: 'same' }).apply(x) as tf.SymbolicTensor;
    x = tf.layers.conv2dTranspose({ name: 'up', filters: 4, kernelSize: 3, strides: 2, padding: 'same' }).apply(x) as tf.SymbolicTensor;
    x = tf.layers.globalAveragePooling2d({}).apply(x) as tf.SymbolicTensor;
    const model = tf.model({ inputs: input, outputs: tf.layers.dense({ name: 'out', units: 2 }).apply(x) as tf.SymbolicTensor });
    const graph = analyzeModel(model);
    const tracker = new CostTracker(model, graph);
    const dense = countCost(model);
    assert.deepEqual(tracker.baseline, { params: dense.params, flops: dense.flops });
    const removed = graph.groups[0].units.filter((_, i) => i % 2 === 0);
    const pruned = await removeUnits(model, graph, removed);
    const counted = countCost(pruned);
    assert.deepEqual(tracker.costWithout(removed), { params: counted.params, flops: counted.flops });
    assert.equal(tracker.reductionWithout(removed).flops, 1 - counted.flops / dense.flops);
    assert.deepEqual(tracker.cost(), tracker.baseline, 'asking does not remove');
    tracker.remove(removed[0]);
    assert.deepEqual(tracker.costWithout(removed), { params: counted.params, flops: counted.flops }, 'units already removed count once');
    pruned.dispose();
  });
});

describe('unitNorms', () => {
  it('sums every slice of a unit (not BN moving statistics), normalised by element count', () => {
    const model = buildConvFlattenDense();
    const graph = analyzeModel(model);
    const c = 4;
    const unit = graph.groups[0].units[c];
    const w = (layer: string, i: number) => model.getLayer(layer).getWeights()[i];
    const [l1, l2sq] = tf.tidy(() => {
      const parts = [
        tf.slice(w('conv1', 0), [0, 0, 0, c], [3, 3, 3, 1]),
        tf.slice(w('conv1', 1), [c], [1]),
        tf.slice(w('bn1', 0), [c], [1]),
        tf.slice(w('bn1', 1), [c], [1]),
        tf.slice(w('conv2', 0), [0, 0, c, 0], [3, 3, 1, 8]),
      ].map((t) => t.flatten());
      const all = tf.concat(parts);
      return [tf.sum(tf.abs(all)).dataSync()[0], tf.sum(tf.square(all)).dataSync()[0]];
    });
    const count = 27 + 1 + 2 + 72;
    assert.ok(Math.abs(unitNorms(model, graph, 'l1')[unit] - l1) < 1e-4);
    assert.ok(Math.abs(unitNorms(model, graph, 'l1', true)[unit] - l1 / count) < 1e-6);
    assert.ok(Math.abs(unitNorms(model, graph, 'l2')[unit] - Math.sqrt(l2sq)) < 1e-4);
  });
});

describe('layerStats', () => {
  it('reports kept channels, sparsity, cost after removal, norm histograms and zero groups', async () => {
    const model = buildConvFlattenDense();
    const graph = analyzeModel(model);
    const [g1, g2] = graph.groups;
    zeroUnits(model, graph, [g1.units[0], g1.units[1]]);
    const removed = [g1.units[0], g1.units[1], g2.units[3]];
    const stats = layerStats(model, graph, { removed, bins: 4 });
    const conv1 = stats.layers.find((l) => l.name === 'conv1')!;
    const conv2 = stats.layers.find((l) => l.name === 'conv2')!;
    assert.deepEqual(stats.layers.map((l) => l.name), ['conv1', 'conv2', 'fc1', 'logits']);
    assert.equal(conv1.channels, 6);
    assert.equal(conv1.kept, 4);
    assert.equal(conv2.kept, 7);
    assert.ok(Math.abs(conv1.sparsity - 2 / 6) < 1e-9, 'two of six filters are zero');
    assert.ok(conv2.sparsity > 0 && conv2.sparsity < 1, 'consumer input slices of zeroed units are zero too');
    assert.equal(conv1.zeroGroups, 2);
    assert.equal(conv1.normHistogram!.counts.reduce((a, b) => a + b), 6);
    assert.equal(conv1.normHistogram!.edges.length, 5);
    assert.equal(conv1.normHistogram!.counts[0] >= 2, true, 'the zero units fall in the first bin');
    assert.equal(stats.layers.find((l) => l.name === 'logits')?.status, 'blocked');

    const pruned = await removeUnits(model, graph, removed);
    const actual = countCost(pruned);
    assert.equal(stats.totals.params, actual.params);
    assert.equal(stats.totals.flops, actual.flops);
    assert.equal(conv2.params, actual.layers.conv2.params);
    assert.equal(conv2.flops, actual.layers.conv2.flops);
    assert.deepEqual([stats.totals.keptChannels, stats.totals.prunableChannels, stats.totals.zeroGroups], [21, 24, 2]);
    pruned.dispose();
  });
});

describe('measureLatency', () => {
  it('returns the median of timed runs on the current backend without leaking tensors', async () => {
    const model = buildConvFlattenDense();
    const before = tf.memory().numTensors;
    const latency = await measureLatency(model, { runs: 5, batchSize: 4 });
    assert.equal(tf.memory().numTensors, before);
    assert.equal(latency.runs, 5);
    assert.equal(latency.batchSize, 4);
    assert.equal(latency.backend, 'cpu');
    assert.ok(latency.medianMs > 0 && Number.isFinite(latency.medianMs));
  });
});
