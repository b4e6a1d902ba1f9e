// Hazard: a transposed convolution keeps its kernel as [kh, kw, out, in] — output channels on the
// second-to-last axis, input channels on the last, the other way round from Conv2D — and costs
// its FLOPs per input position.
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { analyzeModel } from '../../src/engine/graph/analyze.js';
import { CostTracker, countCost, layerStats } from '../../src/engine/metrics/index.js';
import { maskThenRemove, randomizeBatchNorms } from '../helpers/models.js';

before(async () => {
  await tf.setBackend('cpu');
});

const init = (seed: number) => tf.initializers.glorotNormal({ seed });

/** conv → transposed conv (stride 2) → BN → 1×1 conv → GAP → dense. */
function buildUpsampler([encoder, up]: [number, number]): tf.LayersModel {
  const input = tf.input({ shape: [5, 5, 3] });
  let x = tf.layers.conv2d({ name: 'enc', filters: encoder, kernelSize: 3, padding: 'same', activation: 'relu', kernelInitializer: init(1) }).apply(input) as tf.SymbolicTensor;
  x = tf.layers.conv2dTranspose({ name: 'up', filters: up, kernelSize: 3, strides: 2, padding: 'same', kernelInitializer: init(2), biasInitializer: 'glorotNormal' }).apply(x) as tf.SymbolicTensor;
  x = tf.layers.batchNormalization({ name: 'up_bn' }).apply(x) as tf.SymbolicTensor;
  x = tf.layers.reLU({ name: 'up_relu' }).apply(x) as tf.SymbolicTensor;
  x = tf.layers.conv2d({ name: 'head', filters: 4, kernelSize: 1, kernelInitializer: init(3) }).apply(x) as tf.SymbolicTensor;
  x = tf.layers.globalAveragePooling2d({ name: 'gap' }).apply(x) as tf.SymbolicTensor;
  const out = tf.layers.dense({ name: 'out', units: 3, kernelInitializer: init(4) }).apply(x) as tf.SymbolicTensor;
  const model = tf.model({ inputs: input, outputs: out });
  randomizeBatchNorms(model, 5);
  return model;
}

describe('a transposed convolution (Conv2DTranspose)', () => {
  it('produces its output channels on the kernel\'s third axis and reads its inputs on the fourth', () => {
    const graph = analyzeModel(buildUpsampler([6, 5]));
    const up = graph.layers.find((l) => l.name === 'up')!;
    assert.equal(up.status, 'prunable');
    assert.equal(up.ownsChannels, true);
    const upGroup = graph.groups[up.group!];
    assert.deepEqual(upGroup.members, ['up', 'up_bn', 'head']);
    const unit = graph.units[upGroup.units[2]];
    assert.deepEqual(unit.slices.find((s) => s.layer === 'up' && s.weight === 'kernel'), { layer: 'up', weight: 'kernel', axis: 2, indices: [2], role: 'producer' });
    const encGroup = graph.groups[graph.layers.find((l) => l.name === 'enc')!.group!];
    assert.deepEqual(encGroup.consumers, ['up']);
    assert.deepEqual(graph.units[encGroup.units[4]].slices.find((s) => s.layer === 'up')?.axis, 3);
  });

  it('removing units on both sides of it is exact, and the pruned model is the narrower one', async () => {
    const model = buildUpsampler([6, 5]);
    const graph = analyzeModel(model);
    const group = (layer: string) => graph.groups[graph.layers.find((l) => l.name === layer)!.group!];
    const remove = [group('enc').units[1], group('enc').units[4], group('up').units[0], group('up').units[3]];
    const tracker = new CostTracker(model, graph);
    const predicted = tracker.costWithout(remove);
    const stats = layerStats(model, graph, { removed: remove });
    const { pruned, masking, removal } = await maskThenRemove(model, graph, remove);
    assert.ok(masking > 1e-3, `masking should move the outputs (moved ${masking})`);
    assert.ok(removal <= 1e-5, `pruned outputs differ by ${removal}`);
    const narrow = buildUpsampler([4, 3]);
    const counted = countCost(pruned);
    assert.equal(pruned.countParams(), narrow.countParams());
    assert.equal(counted.flops, countCost(narrow).flops);
    assert.equal(counted.layers.up.flops, 2 * 5 * 5 * (3 * 3 * 3 * 4), 'per input position');
    assert.deepEqual(predicted, { params: counted.params, flops: counted.flops });
    assert.equal(stats.layers.find((l) => l.name === 'up')?.kept, 3);
    pruned.dispose();
    narrow.dispose();
  });
});
