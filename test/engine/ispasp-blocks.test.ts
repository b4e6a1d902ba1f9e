import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { analyzeModel } from '../../src/engine/graph/analyze.js';
import { buildDemoCnn } from '../../src/engine/demo/model.js';
import { findBlocks, hiddenActivations, secondLayerOf, zeroSlices } from '../../src/engine/methods/ispasp/blocks.js';
import { searchSupport, blockResidual } from '../../src/engine/methods/ispasp/support.js';
import { randomizeBatchNorms } from '../helpers/models.js';

function demo() {
  const model = buildDemoCnn({ inputShape: [8, 8, 1], classes: 4, seed: 3 });
  randomizeBatchNorms(model, 5);
  const graph = analyzeModel(model, { exclude: [] });
  const x = tf.randomUniform([48, 8, 8, 1], 0, 1, 'float32', 9);
  return { model, graph, x };
}

function weightsOf(model: tf.LayersModel): Map<string, Float32Array> {
  return new Map(model.weights.map((w) => [w.name, Float32Array.from(w.read().dataSync() as Float32Array)]));
}

test('every private producer→consumer group of the demo CNN is a block, in network order, with the norm after its consumer', () => {
  const { model, graph, x } = demo();
  const { blocks, skipped } = findBlocks(model, graph);
  assert.deepEqual(blocks.map((b) => b.producer), ['conv1', 'conv2', 'conv3', 'fc1']);
  assert.deepEqual(skipped, []);
  assert.deepEqual(blocks.map((b) => b.consumers.map((c) => c.name)), [['conv2'], ['conv3'], ['fc1'], ['logits']]);
  assert.deepEqual(blocks.map((b) => b.norms.map((n) => n?.name ?? null)), [['bn2'], ['bn3'], [null], [null]]);
  assert.deepEqual(blocks.map((b) => b.flattened), [false, false, true, false]);
  assert.deepEqual(findBlocks(model, graph, ['conv2']).blocks.map((b) => b.producer), ['conv1', 'conv3', 'fc1']);
  x.dispose();
});

test('the block residual is the real network difference, with both paths through batch norm in inference mode', () => {
  for (const producer of ['conv1', 'conv2']) {
    const { model, graph, x } = demo();
    const block = findBlocks(model, graph).blocks.find((b) => b.producer === producer)!;
    const hidden = hiddenActivations(model, block, x, 16);
    const second = secondLayerOf(block);
    const all = Array.from({ length: block.group.channels }, (_, i) => i);
    assert.equal(blockResidual(hidden, second, all), 0, 'the full support reproduces the dense output exactly');

    const support = all.filter((c) => c % 3 !== 0);
    const predicted = blockResidual(hidden, second, support);

    // The same quantity measured on the network: the consumer's batch-norm output before and after masking.
    const consumer = block.consumers[0];
    const outputLayer = block.norms[0]!;
    const probe = tf.model({ inputs: model.inputs, outputs: outputLayer.output as tf.SymbolicTensor });
    const before = probe.predict(x) as tf.Tensor;
    const removedSlices = block.group.units.filter((_, i) => i % 3 === 0).flatMap((id) => graph.units[id].slices.filter((s) => s.role === 'consumer'));
    zeroSlices(model, removedSlices);
    const after = probe.predict(x) as tf.Tensor;
    const measured = tf.sum(tf.square(tf.sub(before, after))).dataSync()[0];
    assert.ok(Math.abs(predicted - measured) <= 1e-4 * measured, `${producer}: predicted ${predicted}, measured ${measured}`);

    {
      // What the official code computes: the pruned copy's batch norm in training mode. It differs even at full support.
      const mismatched = tf.tidy(() => {
        const h = tf.concat(hidden);
        const dense = second(h);
        const conv = consumer.apply(h, { training: false }) as tf.Tensor;
        const prunedTraining = outputLayer.apply(conv, { training: true }) as tf.Tensor;
        return tf.sum(tf.square(tf.sub(dense, tf.reshape(prunedTraining, dense.shape)))).dataSync()[0];
      });
      assert.ok(mismatched > 1e-2 * predicted, `a training-mode pruned path would leave ${mismatched} at full support`);
    }
    tf.dispose([...hidden, before, after, x]);
  }
});

test('searching a block leaves every weight and batch-norm statistic untouched', () => {
  const { model, graph, x } = demo();
  const block = findBlocks(model, graph).blocks[0];
  const before = weightsOf(model);
  const hidden = hiddenActivations(model, block, x, 16);
  const result = searchSupport(hidden, secondLayerOf(block), { size: 6, iterations: 20, candidateFactor: 2, importance: 'signed' });
  assert.equal(result.support.length, 6);
  assert.ok(result.residual < result.denseEnergy);
  const after = weightsOf(model);
  for (const [name, values] of before) assert.deepEqual(after.get(name), values, `${name} changed`);
  tf.dispose([...hidden, x]);
});
