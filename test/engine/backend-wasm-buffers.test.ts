import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/engine/backend/index.js';

// The wasm backend records one shape per buffer, and reshape shares buffers; a weight written
// from a reshaped tensor must still work as a bias of the fused kernels, with or without a clone.
test('a bias written from a reshaped tensor runs through the fused wasm kernels', async () => {
  assert.equal(await initBackend('wasm'), 'wasm');
  const input = tf.input({ shape: [4, 4, 2] });
  const conv = tf.layers.conv2d({ filters: 3, kernelSize: 3, padding: 'same', activation: 'relu' });
  const depthwise = tf.layers.depthwiseConv2d({ kernelSize: 3, padding: 'same', activation: 'relu' });
  const dense = tf.layers.dense({ units: 2, activation: 'relu' });
  const flat = tf.layers.flatten().apply(depthwise.apply(conv.apply(input))) as tf.SymbolicTensor;
  const model = tf.model({ inputs: input, outputs: dense.apply(flat) as tf.SymbolicTensor });
  const x = tf.randomNormal([2, 4, 4, 2], 0, 1, 'float32', 3);
  const expected = (model.predict(x) as tf.Tensor).arraySync();

  for (const layer of [conv, depthwise, dense]) {
    const [kernel, bias] = layer.getWeights();
    // Buffers born rank 4 / rank 2 (as reductions with keepDims make them), then reshaped to rank 1.
    const reshapedBias = tf.reshape(tf.tensor4d(bias.dataSync(), [1, 1, 1, bias.size]), [-1]);
    const clonedBias = tf.clone(tf.reshape(tf.tensor2d(bias.dataSync(), [1, bias.size]), [-1]));
    layer.setWeights([kernel, reshapedBias]);
    assert.deepEqual((model.predict(x) as tf.Tensor).arraySync(), expected);
    layer.setWeights([kernel, clonedBias]);
    assert.deepEqual((model.predict(x) as tf.Tensor).arraySync(), expected);
  }
  const grads = tf.variableGrads(() => tf.sum(model.apply(x, { training: true }) as tf.Tensor) as tf.Scalar);
  assert.ok(Object.keys(grads.grads).length >= 6, 'gradients flow through every fused layer');
  tf.dispose(grads.grads);
  await initBackend('cpu');
});

// Identity's gradient casts to the same dtype; on wasm that must share the buffer, not copy it,
// and outlive the tensor it came from. Other casts still convert.
test('a cast to the same dtype shares the buffer on wasm; other casts convert', async () => {
  assert.equal(await initBackend('wasm'), 'wasm');
  const x = tf.tensor1d([1.5, -2, 3.25, 0]);
  const buffers = tf.memory().numDataBuffers;
  const same = tf.cast(x, 'float32');
  assert.equal(tf.memory().numDataBuffers, buffers, 'no new buffer for a float32 → float32 cast');
  x.dispose();
  assert.deepEqual(Array.from(same.dataSync()), [1.5, -2, 3.25, 0]);
  const ints = tf.cast(same, 'int32');
  assert.equal(ints.dtype, 'int32');
  assert.deepEqual(Array.from(ints.dataSync()), [1, -2, 3, 0]);
  tf.dispose([same, ints]);
  await initBackend('cpu');
});
