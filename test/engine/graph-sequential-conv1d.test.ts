import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { analyzeModel } from '../../src/engine/graph/analyze.js';
import { countCost } from '../../src/engine/metrics/index.js';
import { removeUnits } from '../../src/engine/surgery/index.js';
import { buildConv1dModel, buildSequentialCnn, maskThenRemove } from '../helpers/models.js';

before(async () => {
  await tf.setBackend('cpu');
});

describe('Sequential model', () => {
  it('is analysed like a functional one: conv group runs through BN and flatten into the dense', () => {
    const graph = analyzeModel(buildSequentialCnn());
    assert.deepEqual(graph.groups.map((g) => g.members), [['conv1', 'bn1', 'fc1'], ['fc1', 'logits']]);
    const flattened = graph.units[graph.groups[0].units[1]].slices.find((s) => s.layer === 'fc1')!;
    // conv1 output is 4×4×5: channel 1 sits at p·5 + 1.
    assert.deepEqual(flattened.indices, Array.from({ length: 16 }, (_, p) => p * 5 + 1));
    assert.deepEqual(graph.layers.map((l) => l.status), ['prunable', 'prunable', 'prunable', 'prunable', 'blocked']);
  });

  it('prunes exactly and matches the narrower Sequential model', async () => {
    const model = buildSequentialCnn();
    const graph = analyzeModel(model);
    const remove = [graph.groups[0].units[0], graph.groups[0].units[3], graph.groups[1].units[6]];
    const { pruned, masking, removal } = await maskThenRemove(model, graph, remove);
    assert.ok(masking > 1e-3);
    assert.ok(removal <= 1e-5, `pruned outputs differ by ${removal}`);
    assert.equal(pruned.getClassName(), 'Sequential');
    const narrow = buildSequentialCnn({ widths: [3, 6] });
    assert.equal(pruned.countParams(), narrow.countParams());
    assert.equal(countCost(pruned).flops, countCost(narrow).flops);
    pruned.dispose();
    narrow.dispose();
  });
});

describe('Conv1D model', () => {
  it('groups Conv1D outputs through BN and 1-D pooling', () => {
    const graph = analyzeModel(buildConv1dModel());
    assert.deepEqual(graph.groups.map((g) => g.members), [['conv1', 'bn1', 'conv2'], ['conv2', 'logits']]);
    const unit = graph.units[graph.groups[0].units[2]];
    assert.deepEqual(unit.slices.map((s) => `${s.layer}/${s.weight}:${s.axis}:${s.indices}`), [
      'conv1/kernel:2:2', 'conv1/bias:0:2', 'bn1/gamma:0:2', 'bn1/beta:0:2', 'bn1/moving_mean:0:2', 'bn1/moving_variance:0:2', 'conv2/kernel:1:2',
    ]);
  });

  it('prunes exactly and matches the narrower Conv1D model', async () => {
    const model = buildConv1dModel();
    const graph = analyzeModel(model);
    const remove = [graph.groups[0].units[1], graph.groups[0].units[5], graph.groups[1].units[0], graph.groups[1].units[2]];
    const { pruned, masking, removal } = await maskThenRemove(model, graph, remove);
    assert.ok(masking > 1e-3);
    assert.ok(removal <= 1e-5, `pruned outputs differ by ${removal}`);
    const narrow = buildConv1dModel({ widths: [4, 3] });
    assert.equal(pruned.countParams(), narrow.countParams());
    assert.equal(countCost(pruned).flops, countCost(narrow).flops);
    const again = await removeUnits(pruned, analyzeModel(pruned), [0]);
    assert.equal(again.countParams(), buildConv1dModel({ widths: [3, 3] }).countParams(), 'a pruned model can be pruned again');
    for (const m of [pruned, narrow, again]) m.dispose();
  });
});
