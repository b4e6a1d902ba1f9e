import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { analyzeModel } from '../../src/engine/graph/analyze.js';
import { countCost } from '../../src/engine/metrics/index.js';
import { removeUnits } from '../../src/engine/surgery/index.js';
import { buildConcatDepthwise, maskThenRemove } from '../helpers/models.js';

before(async () => {
  await tf.setBackend('cpu');
});

describe('Concatenate → DepthwiseConv2D (multiplier 2) → BN → 1×1 conv', () => {
  it('keeps each concat input its own coupled group, offset through the concat', () => {
    const graph = analyzeModel(buildConcatDepthwise());
    const [a, b, pw] = graph.groups;
    assert.deepEqual(a.producers, ['branch_a']);
    assert.deepEqual(b.producers, ['branch_b']);
    assert.equal(a.channels, 4);
    assert.equal(b.channels, 5);
    assert.ok(a.coupled && b.coupled, 'groups through a concat are coupled');
    assert.deepEqual(a.members, ['branch_a', 'depthwise', 'dw_bn', 'pointwise']);
    assert.deepEqual(pw.producers, ['pointwise']);
    assert.equal(pw.coupled, false);

    // Channel 2 of branch_b is concat channel 4 + 2 = 6; with multiplier 2 it owns depthwise outputs 12 and 13.
    const unit = graph.units[b.units[2]];
    const get = (layer: string, weight: string) => unit.slices.find((s) => s.layer === layer && s.weight === weight);
    assert.deepEqual(get('branch_b', 'kernel')?.indices, [2]);
    assert.deepEqual(get('depthwise', 'depthwise_kernel'), { layer: 'depthwise', weight: 'depthwise_kernel', axis: 2, role: 'depthwise', indices: [6] });
    assert.deepEqual(get('depthwise', 'bias')?.indices, [12, 13]);
    assert.deepEqual(get('dw_bn', 'gamma')?.indices, [12, 13]);
    assert.deepEqual(get('pointwise', 'kernel'), { layer: 'pointwise', weight: 'kernel', axis: 2, role: 'consumer', indices: [12, 13] });

    const status = new Map(graph.layers.map((l) => [l.name, l]));
    assert.equal(status.get('branch_a')?.status, 'coupled');
    assert.equal(status.get('branch_b')?.group, b.id);
    assert.equal(status.get('concat')?.status, 'coupled');
    assert.equal(status.get('pointwise')?.status, 'prunable');
    assert.equal(status.get('depthwise')?.ownsChannels, false);
  });

  it('removing all-zero units from both concat inputs and the 1×1 conv leaves outputs unchanged', async () => {
    const model = buildConcatDepthwise();
    const graph = analyzeModel(model);
    const [a, b, pw] = graph.groups;
    const remove = [a.units[1], b.units[0], b.units[4], pw.units[2]];
    const { pruned, masking, removal } = await maskThenRemove(model, graph, remove);
    assert.ok(masking > 1e-3, `masking should move the outputs (moved ${masking})`);
    assert.ok(removal <= 1e-5, `pruned outputs differ by ${removal}`);
    assert.deepEqual((pruned.getLayer('concat').outputShape as number[])[3], 6);
    assert.deepEqual((pruned.getLayer('depthwise').outputShape as number[])[3], 12);
    pruned.dispose();
  });

  it('pruned params and FLOPs equal the architecture built narrower', async () => {
    const model = buildConcatDepthwise();
    const graph = analyzeModel(model);
    const [a, b, pw] = graph.groups;
    const pruned = await removeUnits(model, graph, [a.units[3], b.units[1], b.units[2], pw.units[0], pw.units[5]]);
    const narrow = buildConcatDepthwise({ widths: [3, 3, 4] });
    assert.equal(pruned.countParams(), narrow.countParams());
    const got = countCost(pruned);
    const want = countCost(narrow);
    assert.equal(got.flops, want.flops);
    assert.deepEqual(got.layers.depthwise, want.layers.depthwise);
    pruned.dispose();
    narrow.dispose();
  });
});

describe('SeparableConv2D and PReLU members', () => {
  function build(widths: [number, number]): tf.LayersModel {
    const input = tf.input({ shape: [6, 6, 2] });
    let x = tf.layers.conv2d({ name: 'conv', filters: widths[0], kernelSize: 3, padding: 'same', kernelInitializer: tf.initializers.glorotNormal({ seed: 1 }) }).apply(input) as tf.SymbolicTensor;
    x = tf.layers.prelu({ name: 'prelu', alphaInitializer: tf.initializers.randomUniform({ minval: 0.1, maxval: 0.5, seed: 2 }) }).apply(x) as tf.SymbolicTensor;
    x = tf.layers.separableConv2d({ name: 'sep', filters: widths[1], kernelSize: 3, depthMultiplier: 2, depthwiseInitializer: tf.initializers.glorotNormal({ seed: 3 }), pointwiseInitializer: tf.initializers.glorotNormal({ seed: 4 }), biasInitializer: 'glorotNormal' }).apply(x) as tf.SymbolicTensor;
    x = tf.layers.flatten({ name: 'flatten' }).apply(x) as tf.SymbolicTensor;
    const out = tf.layers.dense({ name: 'out', units: 2 }).apply(x) as tf.SymbolicTensor;
    return tf.model({ inputs: input, outputs: out });
  }

  it('prunes through PReLU alpha and separable depthwise/pointwise slices exactly', async () => {
    const model = build([5, 4]);
    const graph = analyzeModel(model);
    const [convGroup, sepGroup] = graph.groups;
    assert.deepEqual(convGroup.members, ['conv', 'prelu', 'sep']);
    const unit = graph.units[convGroup.units[3]];
    assert.deepEqual(unit.slices.find((s) => s.weight === 'pointwise_kernel')?.indices, [6, 7]);
    assert.deepEqual(unit.slices.find((s) => s.weight === 'alpha')?.axis, 2);
    assert.deepEqual(sepGroup.producers, ['sep']);

    const { pruned, masking, removal } = await maskThenRemove(model, graph, [convGroup.units[0], convGroup.units[3], sepGroup.units[2]]);
    assert.ok(masking > 1e-3);
    assert.ok(removal <= 1e-5, `pruned outputs differ by ${removal}`);
    const narrow = build([3, 3]);
    assert.equal(pruned.countParams(), narrow.countParams());
    assert.equal(countCost(pruned).flops, countCost(narrow).flops);
    pruned.dispose();
    narrow.dispose();
  });
});
