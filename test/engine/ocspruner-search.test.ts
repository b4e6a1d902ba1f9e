import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { analyzeModel } from '../../src/engine/graph/analyze.js';
import { CostTracker, countCost } from '../../src/engine/metrics/index.js';
import { removeUnits } from '../../src/engine/surgery/index.js';
import { buildDemoCnn } from '../../src/engine/demo/model.js';
import { StabilityTracker, jaccard, structureSimilarity } from '../../src/engine/methods/ocspruner/stability.js';
import { SubnetworkSelector, protectedCount, unitSaliency } from '../../src/engine/methods/ocspruner/subnetwork.js';
import { SelectedChannelShrink } from '../../src/engine/methods/ocspruner/shrink.js';
import { continueSchedule } from '../../src/engine/methods/ocspruner/schedule.js';
import { trainModel } from '../../src/engine/train/index.js';
import { loadDataset } from '../../src/engine/data/index.js';
import { buildResidualChain, randomizeBatchNorms } from '../helpers/models.js';

const structure = (entries: [number, number[]][]) => new Map(entries);

test('Jaccard similarity of retained channel sets', () => {
  assert.equal(jaccard([0, 1, 2], [0, 1, 2]), 1);
  assert.equal(jaccard([0, 1], [2, 3]), 0);
  assert.equal(jaccard([0, 1, 2], [1, 2, 3]), 0.5);
  assert.equal(structureSimilarity(structure([[0, [0, 1]], [1, [0, 1, 2]]]), structure([[0, [0, 1]], [1, [1, 2, 3]]])), 0.75);
});

test('the indicator compares structures two epochs apart and averages three raw values, early zeros included', () => {
  const tracker = new StabilityTracker(3);
  const a = structure([[0, [0, 1, 2]]]);
  const b = structure([[0, [0, 1, 3]]]);
  // Two unmonitored epochs, then the same structure every epoch.
  const values = [tracker.skip(), tracker.skip(), tracker.push(a), tracker.push(a), tracker.push(a), tracker.push(a), tracker.push(a)];
  assert.deepEqual(values.slice(0, 4), [0, 0, 0, 0]);
  assert.ok(Math.abs(values[4] - 1 / 3) < 1e-12, 'first nonzero raw value once three structures exist');
  assert.ok(Math.abs(values[5] - 2 / 3) < 1e-12);
  assert.equal(values[6], 1, 'fully stable only at monitor start + 4');
  // A change two epochs back lowers it again.
  assert.ok(tracker.push(b) < 1);
  assert.equal(tracker.lastRaw(), 0.5);
});

test('protection keeps C − ⌊C·L·(1 − e^(−kC))⌋ channels per group', () => {
  assert.equal(protectedCount(16, 0.75, 1), 5, '16·0.75·(1 − e^−16) is just below 12');
  assert.equal(protectedCount(64, 0.75, 1), 16);
  assert.equal(protectedCount(2, 0.75, 1), 1);
  assert.equal(protectedCount(10, 0.7, 1), 4);
});

test('saliency averages Σw²/√len of kernel slices and γ² over the members of a unit', () => {
  const model = buildDemoCnn({ inputShape: [8, 8, 1], classes: 4, seed: 2 });
  randomizeBatchNorms(model, 4);
  const graph = analyzeModel(model, { exclude: [] });
  const saliency = unitSaliency(model, graph);
  const unit = graph.units[3]; // conv1 channel 3: conv1 filter, bn1 γ, conv2 input slice
  const k1 = model.getLayer('conv1').getWeights()[0].arraySync() as number[][][][];
  const g1 = model.getLayer('bn1').getWeights()[0].dataSync();
  const k2 = model.getLayer('conv2').getWeights()[0].arraySync() as number[][][][];
  let filter = 0, consumer = 0;
  for (let a = 0; a < 3; a++) for (let b = 0; b < 3; b++) {
    filter += k1[a][b][0][3] ** 2;
    for (let o = 0; o < 32; o++) consumer += k2[a][b][3][o] ** 2;
  }
  const expected = (filter / Math.sqrt(9) + g1[3] ** 2 + consumer / Math.sqrt(9 * 32)) / 3;
  assert.equal(unit.index, 3);
  assert.ok(Math.abs(saliency[unit.id] - expected) < 1e-5 * expected, `${saliency[unit.id]} vs ${expected}`);
});

test('the sub-network hits the FLOPs target of the physically pruned model within 2% and respects protection', async () => {
  for (const [name, model] of [
    ['demo CNN', buildDemoCnn({ inputShape: [12, 12, 1], classes: 4, seed: 5 })],
    ['residual chain', buildResidualChain({ width: 16, inner: [12, 12, 12], seed: 3 })],
  ] as const) {
    const graph = analyzeModel(model, { exclude: [] });
    const groups = graph.groups.filter((g) => g.units.length > 1);
    const dense = countCost(model).flops;
    for (const target of [0.3, 0.5]) {
      const selector = new SubnetworkSelector(model, graph, groups, { target, layerPruneLimit: 0.75, layerLimitFactor: 1, flopsAware: true });
      const chosen = selector.select(model);
      for (const g of groups) {
        const kept = chosen.retained.get(g.id)!;
        assert.ok(kept.length >= protectedCount(g.units.length, 0.75, 1), `${name}: group ${g.id} keeps its protected channels`);
      }
      const pruned = await removeUnits(model, graph, chosen.removed);
      const achieved = 1 - countCost(pruned).flops / dense;
      assert.ok(Math.abs(achieved - target) <= 0.02, `${name} target ${target}: achieved ${achieved.toFixed(4)}`);
      assert.ok(Math.abs(chosen.flopsReduction - achieved) < 1e-6, `${name}: analytic ${chosen.flopsReduction} vs counted ${achieved}`);
      pruned.dispose();
    }
  }
});

test('the cost of removing units agrees with the counted cost of the physically pruned model', async () => {
  const model = buildResidualChain({ seed: 4 });
  const graph = analyzeModel(model, { exclude: [] });
  const cost = new CostTracker(model, graph);
  const dense = countCost(model);
  assert.deepEqual(cost.baseline, { params: dense.params, flops: dense.flops });
  const removed = graph.units.filter((u, i) => i % 3 === 1).map((u) => u.id);
  const pruned = await removeUnits(model, graph, removed);
  const counted = countCost(pruned);
  const predicted = cost.costWithout(removed);
  assert.equal(predicted.flops, counted.flops);
  assert.equal(predicted.params, counted.params);
  pruned.dispose();
});

test('the shrink scales the selected channels’ kernel slices and γ, and nothing else', () => {
  const model = buildDemoCnn({ inputShape: [8, 8, 1], classes: 4, seed: 6 });
  randomizeBatchNorms(model, 2);
  const graph = analyzeModel(model, { exclude: [] });
  const removed = [graph.groups[0].units[2], graph.groups[0].units[5]];
  const read = () => new Map(model.layers.flatMap((l) => l.weights.map((w, i) => [`${l.name}/${['kernel', 'bias', 'gamma', 'beta', 'moving_mean', 'moving_variance'].find((n) => w.name.includes(`/${n}`)) ?? i}`, w.read().arraySync()] as const)));
  const before = read();
  const shrink = new SelectedChannelShrink(model, graph, removed);
  shrink.apply(0.5);
  shrink.dispose();
  const after = read();
  const k1b = before.get('conv1/kernel') as number[][][][], k1a = after.get('conv1/kernel') as number[][][][];
  const k2b = before.get('conv2/kernel') as number[][][][], k2a = after.get('conv2/kernel') as number[][][][];
  for (let o = 0; o < 16; o++) {
    const f = o === 2 || o === 5 ? 0.5 : 1;
    assert.ok(Math.abs(k1a[1][1][0][o] - f * k1b[1][1][0][o]) < 1e-6);
    assert.ok(Math.abs(k2a[0][2][o][7] - f * k2b[0][2][o][7]) < 1e-6);
    assert.ok(Math.abs((after.get('bn1/gamma') as number[])[o] - f * (before.get('bn1/gamma') as number[])[o]) < 1e-6);
    assert.equal((after.get('bn1/beta') as number[])[o], (before.get('bn1/beta') as number[])[o]);
    assert.equal((after.get('conv1/bias') as number[])[o], (before.get('conv1/bias') as number[])[o]);
    assert.equal((after.get('bn1/moving_mean') as number[])[o], (before.get('bn1/moving_mean') as number[])[o]);
  }
  assert.deepEqual(after.get('conv3/kernel'), before.get('conv3/kernel'));
});

test('the schedule carries on after pruning exactly where it was: one cycle', async () => {
  const data = await loadDataset({ format: 'synthetic', samples: 40, classes: 3, validationSplit: 0 }, process.cwd(), { inputShape: [4], classes: 3 }, 1);
  const build = () => {
    const input = tf.input({ shape: [4] });
    return tf.model({ inputs: input, outputs: tf.layers.dense({ units: 3, activation: 'softmax' }).apply(input) as tf.SymbolicTensor });
  };
  for (const schedule of ['step', 'cosine', 'constant'] as const) {
    const settings = { epochs: 6, batchSize: 8, learningRate: 0.1, momentum: 0.9, weightDecay: 0, optimizer: 'sgd' as const, schedule, stepEpochs: 2, gamma: 0.5 };
    const full: number[] = [];
    const resumed: { epoch: number; rate: number }[] = [];
    const whole = build();
    await trainModel(whole, data, settings, {}, { seed: 1, onStep: (s) => full.push(s.learningRate) });
    const tail = build();
    await trainModel(tail, data, continueSchedule(settings, 4), {}, { seed: 1, onStep: (s) => resumed.push({ epoch: s.epoch, rate: s.learningRate }) });
    assert.deepEqual(resumed.map((r) => r.rate), full.slice(full.length - resumed.length), `${schedule}: the tail's rates are the full run's`);
    assert.equal(resumed.length, full.length / 3, 'two of six epochs remain');
    assert.equal(resumed[0].epoch, 4, 'epochs are numbered within the cycle');
    whole.dispose();
    tail.dispose();
  }
});
