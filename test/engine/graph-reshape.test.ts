// Hazard: squeeze-and-excite (GlobalAveragePooling2D → Reshape((1, 1, C)) → 1×1 squeeze conv → 1×1 sigmoid gate
// conv → Multiply with the tensor). The Reshape only adds unit axes before the channel axis, so it keeps
// channel c as channel c; its target_shape records the width and must narrow with the channels. The gate's
// channels are the scaled tensor's; the squeeze conv's channels are their own group. Keras 3.15.1 fixture.
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { loadModel } from '../../src/engine/io/index.js';
import { analyzeModel } from '../../src/engine/graph/analyze.js';
import { CostTracker, countCost, unitNorms } from '../../src/engine/metrics/index.js';
import { maxReachable, selectUnits } from '../../src/engine/prune/select.js';
import { readNpy } from '../../src/engine/data/npy.js';
import { maskThenRemove } from '../helpers/models.js';

before(async () => {
  await tf.setBackend('cpu');
});

const FIXTURE = 'test/fixtures/keras/squeeze_excite.keras';
const groupOf = (graph: ReturnType<typeof analyzeModel>, layer: string) => graph.groups[graph.layers.find((l) => l.name === layer)!.group!];

describe('Reshape to (1, 1, C) in squeeze-and-excite (squeeze_excite.keras)', () => {
  it('passes channels through: the gate is coupled to the tensor it scales, the squeeze conv is its own group', async () => {
    const { model } = await loadModel(FIXTURE);
    const graph = analyzeModel(model);
    const reshape = graph.layers.find((l) => l.name === 'reshape')!;
    assert.notEqual(reshape.status, 'blocked', reshape.reason);
    const body = groupOf(graph, 'conv2d');
    assert.equal(body.channels, 16);
    assert.equal(groupOf(graph, 'reshape').id, body.id);
    assert.equal(groupOf(graph, 'conv2d_2').id, body.id, 'the gate scales the body channel by channel');
    assert.equal(groupOf(graph, 'multiply').id, body.id);
    assert.ok(body.producers.includes('conv2d') && body.producers.includes('conv2d_2'));
    const squeeze = groupOf(graph, 'conv2d_1');
    assert.notEqual(squeeze.id, body.id);
    assert.equal(squeeze.channels, 4);
    assert.deepEqual([...squeeze.members].sort(), ['conv2d_1', 'conv2d_2']);
    assert.ok(maxReachable(graph, model, 'flopsReduction') > 0.5, 'the main body is prunable');
    model.dispose();
  });

  it('a reshape that moves values between positions and channels stays blocked', () => {
    const input = tf.input({ shape: [4, 4, 2] });
    const x = tf.layers.conv2d({ name: 'conv', filters: 8, kernelSize: 1 }).apply(input) as tf.SymbolicTensor;
    const r = tf.layers.reshape({ name: 'fold', targetShape: [4, 4, 4, 2] }).apply(x) as tf.SymbolicTensor;
    const model = tf.model({ inputs: input, outputs: tf.layers.flatten().apply(r) as tf.SymbolicTensor });
    const fold = analyzeModel(model).layers.find((l) => l.name === 'fold')!;
    assert.equal(fold.status, 'blocked');
    assert.match(fold.reason!, /fold \(Reshape\) is not supported/);
    model.dispose();
  });

  it('removing masked channels of both groups is exact, narrows target_shape, and costs what was predicted', async () => {
    const { model } = await loadModel(FIXTURE);
    const graph = analyzeModel(model);
    const body = groupOf(graph, 'conv2d');
    const squeeze = groupOf(graph, 'conv2d_1');
    const remove = [body.units[1], body.units[5], body.units[9], body.units[12], squeeze.units[2]];
    const predicted = new CostTracker(model, graph).costWithout(remove);
    const { pruned, masking, removal } = await maskThenRemove(model, graph, remove);
    assert.ok(masking > 1e-3, `masking should move the outputs (moved ${masking})`);
    assert.ok(removal <= 1e-5, `pruned outputs differ by ${removal}`);
    assert.deepEqual((pruned.getLayer('reshape').getConfig() as { targetShape: number[] }).targetShape, [1, 1, 12]);
    assert.equal((pruned.getLayer('conv2d_1').getConfig() as { filters: number }).filters, 3);
    assert.equal((pruned.getLayer('conv2d_2').getConfig() as { filters: number }).filters, 12);
    const counted = countCost(pruned);
    assert.deepEqual(predicted, { params: counted.params, flops: counted.flops });
    const inputs = readNpy('test/fixtures/keras/squeeze_excite.inputs.npy');
    const x = tf.tensor(inputs.data as Float32Array, inputs.shape);
    const diff = tf.tidy(() => tf.max(tf.abs(tf.sub(model.predict(x) as tf.Tensor, pruned.predict(x) as tf.Tensor))).dataSync()[0]);
    assert.ok(diff <= 1e-5, `on the fixture inputs the pruned outputs differ by ${diff}`);
    tf.dispose([x]);
    pruned.dispose();
    model.dispose();
  });

  it('l1 at −30% FLOPs lands within 2 points', async () => {
    const { model } = await loadModel(FIXTURE);
    const graph = analyzeModel(model);
    const removed = selectUnits(graph, model, unitNorms(model, graph, 'l1'), { flopsReduction: 0.3 }, { scope: 'global' });
    const tracker = new CostTracker(model, graph);
    const before = tracker.costWithout([]).flops;
    const reduction = 1 - tracker.costWithout(removed).flops / before;
    assert.ok(Math.abs(reduction - 0.3) <= 0.02, `l1 reached ${(reduction * 100).toFixed(2)}% of a 30% FLOPs target`);
    model.dispose();
  });
});

describe('Reshape after a concat (DenseNet\'s head: concat → pool → (1, 1, C) → flatten → dense)', () => {
  it('narrows target_shape by the removed units of every concatenated group, not only the first', async () => {
    const input = tf.input({ shape: [4, 4, 2] });
    const a = tf.layers.conv2d({ name: 'a', filters: 3, kernelSize: 1 }).apply(input) as tf.SymbolicTensor;
    const b = tf.layers.conv2d({ name: 'b', filters: 5, kernelSize: 1 }).apply(input) as tf.SymbolicTensor;
    const joined = tf.layers.concatenate({ name: 'join' }).apply([a, b]) as tf.SymbolicTensor;
    const pooled = tf.layers.globalAveragePooling2d({ name: 'pool' }).apply(joined) as tf.SymbolicTensor;
    const kept = tf.layers.reshape({ name: 'keepdims', targetShape: [1, 1, 8] }).apply(pooled) as tf.SymbolicTensor;
    const flat = tf.layers.flatten({ name: 'flat' }).apply(kept) as tf.SymbolicTensor;
    const model = tf.model({ inputs: input, outputs: tf.layers.dense({ name: 'head', units: 2 }).apply(flat) as tf.SymbolicTensor });
    const graph = analyzeModel(model);
    const groupA = groupOf(graph, 'a');
    const groupB = graph.groups.find((g) => g.producers.includes('b'))!;
    assert.notEqual(groupA.id, groupB.id);
    const { pruned, removal } = await maskThenRemove(model, graph, [groupA.units[0], groupB.units[1], groupB.units[3]]);
    assert.ok(removal < 1e-5, `removal changed the outputs by ${removal}`);
    assert.deepEqual(pruned.getLayer('keepdims').getConfig().targetShape, [1, 1, 5]);
    assert.deepEqual(pruned.getLayer('head').getWeights()[0].shape, [5, 2]);
    pruned.dispose();
    model.dispose();
  });
});
