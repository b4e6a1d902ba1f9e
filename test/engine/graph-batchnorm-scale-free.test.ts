// Keras' InceptionV3 has BatchNormalization layers without a scale (`scale: false`); tf.layers
// threw on them in training mode. They train, on every backend, as a scale of ones would.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/engine/backend/index.js';
import { loadDataset } from '../../src/engine/data/index.js';
import { trainModel } from '../../src/engine/train/index.js';

function cnn(scale: boolean, center: boolean): tf.LayersModel {
  const input = tf.input({ shape: [6, 6, 2] });
  let h = tf.layers.conv2d({ name: 'conv', filters: 4, kernelSize: 3, padding: 'same', useBias: false, kernelInitializer: tf.initializers.heNormal({ seed: 4 }) }).apply(input) as tf.SymbolicTensor;
  h = tf.layers.batchNormalization({ name: 'bn', scale, center }).apply(h) as tf.SymbolicTensor;
  h = tf.layers.reLU().apply(h) as tf.SymbolicTensor;
  h = tf.layers.flatten().apply(h) as tf.SymbolicTensor;
  const out = tf.layers.dense({ units: 3, activation: 'softmax', kernelInitializer: tf.initializers.glorotUniform({ seed: 5 }) }).apply(h) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: out });
}

for (const backend of ['cpu', 'wasm'] as const) {
  test(`batch norm without scale or offset trains on ${backend}, as with a scale of ones and an offset of zeros`, async () => {
    await initBackend(backend);
    const data = await loadDataset({ format: 'synthetic', samples: 32, classes: 3, validationSplit: 0 }, '/tmp', { inputShape: [6, 6, 2], classes: 3 }, 3);
    const settings = { epochs: 1, batchSize: 8, learningRate: 0.05, momentum: 0.9, weightDecay: 0, optimizer: 'sgd' as const, schedule: 'constant' as const };
    const trained = async (scale: boolean, center: boolean) => {
      const model = cnn(scale, center);
      // The full layer's gamma stays 1 and beta 0 when they do not train: freeze them to compare.
      if (scale || center) model.getLayer('bn').trainable = false;
      await trainModel(model, data, settings, {}, { seed: 1 });
      const conv = Array.from(model.getLayer('conv').getWeights()[0].dataSync());
      const moving = model.getLayer('bn').getWeights().slice(-2).map((w) => Array.from(w.dataSync()));
      model.dispose();
      return { conv, moving };
    };
    const scaleFree = await trained(false, false);
    const full = await trained(true, true);
    const close = (a: number[], b: number[]) => a.every((v, i) => Math.abs(v - b[i]) < 1e-5);
    assert.ok(close(scaleFree.conv, full.conv), 'conv kernels trained the same');
    assert.ok(close(scaleFree.moving[0], full.moving[0]) && close(scaleFree.moving[1], full.moving[1]), 'moving statistics the same');
  });
}
