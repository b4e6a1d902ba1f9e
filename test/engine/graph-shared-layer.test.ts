import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { analyzeModel } from '../../src/engine/graph/analyze.js';
import { maskThenRemove } from '../helpers/models.js';

before(async () => {
  await tf.setBackend('cpu');
});

/** One conv layer called on two tensors: its weights tie both call sites' channels. */
function buildShared(): tf.LayersModel {
  const input = tf.input({ shape: [6, 6, 3] });
  const stem = tf.layers.conv2d({ name: 'stem', filters: 4, kernelSize: 3, padding: 'same', activation: 'relu', kernelInitializer: tf.initializers.glorotNormal({ seed: 1 }) }).apply(input) as tf.SymbolicTensor;
  const other = tf.layers.conv2d({ name: 'other', filters: 4, kernelSize: 1, kernelInitializer: tf.initializers.glorotNormal({ seed: 2 }) }).apply(stem) as tf.SymbolicTensor;
  const shared = tf.layers.conv2d({ name: 'shared', filters: 5, kernelSize: 3, padding: 'same', kernelInitializer: tf.initializers.glorotNormal({ seed: 3 }), biasInitializer: 'glorotNormal' });
  const a = shared.apply(stem) as tf.SymbolicTensor;
  const b = shared.apply(other) as tf.SymbolicTensor;
  const cat = tf.layers.concatenate({ name: 'cat' }).apply([a, b]) as tf.SymbolicTensor;
  const gap = tf.layers.globalAveragePooling2d({ name: 'gap' }).apply(cat) as tf.SymbolicTensor;
  const out = tf.layers.dense({ name: 'out', units: 2, kernelInitializer: tf.initializers.glorotNormal({ seed: 4 }) }).apply(gap) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: out });
}

describe('a layer reused at two call sites', () => {
  it('ties the inputs of both calls and the outputs of both calls', () => {
    const graph = analyzeModel(buildShared());
    assert.deepEqual(graph.groups.map((g) => g.producers), [['stem', 'other'], ['shared']]);
    const outUnit = graph.units[graph.groups[1].units[2]];
    // Channel 2 of both calls lands at concat positions 2 and 5 + 2, both read by the dense head.
    assert.deepEqual(outUnit.slices.find((s) => s.layer === 'out')?.indices, [2, 7]);
    assert.deepEqual(outUnit.slices.find((s) => s.layer === 'shared' && s.weight === 'kernel')?.indices, [2]);
  });

  it('removes all-zero units exactly', async () => {
    const model = buildShared();
    const graph = analyzeModel(model);
    const { pruned, masking, removal } = await maskThenRemove(model, graph, [graph.groups[0].units[1], graph.groups[1].units[2], graph.groups[1].units[4]]);
    assert.ok(masking > 1e-3, `masking should move the outputs (moved ${masking})`);
    assert.ok(removal <= 1e-5, `pruned outputs differ by ${removal}`);
    pruned.dispose();
  });
});
