import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { analyzeModel } from '../../src/engine/graph/analyze.js';
import { countCost, layerStats } from '../../src/engine/metrics/index.js';
import { removeUnits, zeroUnits } from '../../src/engine/surgery/index.js';
import { buildDeepModel, buildResNet20, everyOtherUnit, maskThenRemove } from '../helpers/models.js';

before(async () => {
  await tf.setBackend('cpu');
});

describe('ResNet-20 with 1×1 projection shortcuts', () => {
  it('has one residual group per stage and a private group per block (§2.4)', () => {
    const graph = analyzeModel(buildResNet20({ inputShape: [16, 16, 3], width: 4 }));
    assert.equal(graph.groups.length, 3 + 9);
    const stages = graph.groups.filter((g) => g.coupled);
    assert.deepEqual(stages.map((g) => g.producers), [
      ['stem', 's1b0_convb', 's1b1_convb', 's1b2_convb'],
      ['s2b0_proj', 's2b0_convb', 's2b1_convb', 's2b2_convb'],
      ['s3b0_proj', 's3b0_convb', 's3b1_convb', 's3b2_convb'],
    ]);
    assert.deepEqual(stages.map((g) => g.channels), [4, 8, 16]);
    // Stage 1's stream feeds the next stage's first block and its shortcut.
    assert.ok(stages[0].consumers.includes('s2b0_conva') && stages[0].consumers.includes('s2b0_proj'));
    assert.ok(stages[2].consumers.includes('logits'));
    const privateGroups = graph.groups.filter((g) => !g.coupled);
    assert.ok(privateGroups.every((g) => g.members.length === 3 && g.producers[0].endsWith('_conva')));
  });

  it('removing all-zero units in every group leaves outputs unchanged', async () => {
    const model = buildResNet20({ inputShape: [16, 16, 3], width: 4 });
    const graph = analyzeModel(model);
    const { pruned, masking, removal } = await maskThenRemove(model, graph, everyOtherUnit(graph), 2);
    assert.ok(masking > 1e-4, `masking should move the outputs (moved ${masking})`);
    assert.ok(removal <= 1e-5, `pruned outputs differ by ${removal}`);
    pruned.dispose();
  });

  it('half of every group removed equals ResNet-20 built at half width (params and FLOPs)', async () => {
    const model = buildResNet20({ inputShape: [16, 16, 3], width: 8 });
    const graph = analyzeModel(model);
    const pruned = await removeUnits(model, graph, everyOtherUnit(graph));
    const half = buildResNet20({ inputShape: [16, 16, 3], width: 4 });
    assert.equal(pruned.countParams(), half.countParams());
    const got = countCost(pruned);
    const want = countCost(half);
    assert.equal(got.flops, want.flops);
    for (const name of Object.keys(want.layers)) assert.deepEqual(got.layers[name], want.layers[name], name);
    pruned.dispose();
    half.dispose();
  });
});

describe('surgery housekeeping', () => {
  it('masking zeroes gamma and beta but keeps BN moving statistics', () => {
    const model = buildResNet20({ inputShape: [8, 8, 3], width: 2 });
    const graph = analyzeModel(model);
    const unit = graph.groups[0].units[1];
    const bn = () => model.getLayer('stem_bn').getWeights().map((w) => Array.from(w.dataSync()));
    const before = bn();
    zeroUnits(model, graph, [unit]);
    const after = bn();
    assert.deepEqual([after[0][1], after[1][1]], [0, 0]);
    assert.deepEqual([after[2], after[3]], [before[2], before[3]]);
    assert.equal(layerStats(model, graph).totals.zeroGroups, 1);
  });

  it('rejects unknown unit ids and does not leak tensors', async () => {
    const model = buildResNet20({ inputShape: [8, 8, 3], width: 2 });
    const graph = analyzeModel(model);
    await assert.rejects(removeUnits(model, graph, [graph.units.length]), /does not exist/);
    const before = tf.memory().numTensors;
    const pruned = await removeUnits(model, graph, [graph.groups[1].units[0]]);
    zeroUnits(model, graph, [graph.groups[2].units[0]]);
    pruned.dispose();
    assert.equal(tf.memory().numTensors, before);
  });

  it('analyses a 100-layer model quickly', () => {
    const model = buildDeepModel(100);
    const start = performance.now();
    const graph = analyzeModel(model);
    const ms = performance.now() - start;
    console.log(`analyzeModel on ${model.layers.length} layers: ${ms.toFixed(1)} ms, ${graph.groups.length} groups, ${graph.units.length} units`);
    assert.ok(model.layers.length >= 100);
    assert.equal(graph.groups.filter((g) => g.coupled).length, 1, 'one residual stream');
  });
});
