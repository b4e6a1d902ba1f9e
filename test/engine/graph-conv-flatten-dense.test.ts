import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { analyzeModel } from '../../src/engine/graph/analyze.js';
import { countCost } from '../../src/engine/metrics/index.js';
import { removeUnits } from '../../src/engine/surgery/index.js';
import { buildConvFlattenDense, maskThenRemove } from '../helpers/models.js';

before(async () => {
  await tf.setBackend('cpu');
});

describe('conv → BN → pool → conv → flatten → dense', () => {
  it('forms one private group per conv/dense output with BN and consumer slices', () => {
    const model = buildConvFlattenDense();
    const graph = analyzeModel(model);
    assert.equal(graph.groups.length, 3);
    const [g1, g2, g3] = graph.groups;
    assert.deepEqual(g1.producers, ['conv1']);
    assert.deepEqual(g1.members, ['conv1', 'bn1', 'conv2']);
    assert.equal(g1.channels, 6);
    assert.equal(g1.coupled, false);
    assert.deepEqual(g2.members, ['conv2', 'fc1']);
    assert.deepEqual(g3.members, ['fc1', 'logits']);

    const unit = graph.units[g1.units[2]];
    const slice = (layer: string, weight: string) => unit.slices.find((s) => s.layer === layer && s.weight === weight);
    assert.deepEqual(slice('conv1', 'kernel'), { layer: 'conv1', weight: 'kernel', axis: 3, role: 'producer', indices: [2] });
    assert.deepEqual(slice('conv1', 'bias')?.indices, [2]);
    for (const w of ['gamma', 'beta', 'moving_mean', 'moving_variance']) assert.deepEqual(slice('bn1', w)?.indices, [2], w);
    assert.deepEqual(slice('conv2', 'kernel'), { layer: 'conv2', weight: 'kernel', axis: 2, role: 'consumer', indices: [2] });
  });

  it('maps a channel through flatten to every spatial position (h·W + w)·C + c of the dense input', () => {
    const model = buildConvFlattenDense();
    const graph = analyzeModel(model);
    const conv2Group = graph.groups[1];
    const c = 3;
    const unit = graph.units[conv2Group.units[c]];
    const dense = unit.slices.find((s) => s.layer === 'fc1' && s.weight === 'kernel');
    // conv2 output is 4×4×8 after the 2×2 pool of an 8×8 input.
    const expected = Array.from({ length: 16 }, (_, p) => p * 8 + c);
    assert.deepEqual(dense, { layer: 'fc1', weight: 'kernel', axis: 0, role: 'consumer', indices: expected });
  });

  it('reports statuses: convs and hidden dense prunable, input and output layer blocked with reasons', () => {
    const graph = analyzeModel(buildConvFlattenDense());
    const byName = new Map(graph.layers.map((l) => [l.name, l]));
    assert.equal(byName.get('image')?.status, 'blocked');
    assert.equal(byName.get('image')?.reason, 'model input');
    for (const name of ['conv1', 'bn1', 'relu1', 'pool1', 'conv2', 'flatten', 'fc1']) assert.equal(byName.get(name)?.status, 'prunable', name);
    assert.equal(byName.get('conv1')?.group, 0);
    assert.equal(byName.get('flatten')?.group, 1);
    assert.equal(byName.get('logits')?.status, 'blocked');
    assert.equal(byName.get('logits')?.reason, 'model outputs are never narrowed');
    assert.equal(byName.get('conv1')?.ownsChannels, true);
    assert.equal(byName.get('bn1')?.ownsChannels, false);
    assert.equal(byName.get('fc1')?.inChannels, 128);
    assert.equal(byName.get('fc1')?.params, 128 * 10 + 10);
  });

  it('removing all-zero units leaves outputs unchanged (max abs diff ≤ 1e-5)', async () => {
    const model = buildConvFlattenDense();
    const graph = analyzeModel(model);
    const remove = [graph.groups[0].units[0], graph.groups[0].units[4], graph.groups[1].units[1], graph.groups[1].units[7], graph.groups[2].units[5]];
    const { pruned, masking, removal } = await maskThenRemove(model, graph, remove);
    assert.ok(masking > 1e-3, `masking the units should change the outputs (moved ${masking})`);
    assert.ok(removal <= 1e-5, `pruned outputs differ by ${removal}`);
    assert.deepEqual(pruned.layers.map((l) => l.name), model.layers.map((l) => l.name));
    pruned.dispose();
  });

  it('pruned params and FLOPs equal the same architecture built narrower', async () => {
    const model = buildConvFlattenDense();
    const graph = analyzeModel(model);
    const [g1, g2, g3] = graph.groups;
    const remove = [...g1.units.slice(0, 2), ...g2.units.slice(5, 8), ...g3.units.slice(1, 5)];
    const pruned = await removeUnits(model, graph, remove);
    const narrow = buildConvFlattenDense({ widths: [4, 5, 6] });
    assert.equal(pruned.countParams(), narrow.countParams());
    const a = countCost(pruned);
    const b = countCost(narrow);
    assert.equal(a.flops, b.flops);
    for (const name of Object.keys(b.layers)) assert.deepEqual(a.layers[name], b.layers[name], name);
    assert.equal(model.countParams(), buildConvFlattenDense().countParams(), 'the input model keeps its size');
    pruned.dispose();
    narrow.dispose();
  });

  it('leaves the input model untouched', async () => {
    const model = buildConvFlattenDense();
    const graph = analyzeModel(model);
    const snapshot = model.getWeights().map((w) => w.arraySync());
    const pruned = await removeUnits(model, graph, [graph.groups[0].units[1]]);
    assert.deepEqual(model.getWeights().map((w) => w.arraySync()), snapshot);
    pruned.dispose();
  });
});
