import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadModel, saveModelAtomic } from '../../src/engine/io/index.js';

// tfjs 4.22 leaves depthMultiplier out of SeparableConv's config; a saved model must still reload.
test('a separable convolution with a depth multiplier saves and loads with its weights', async () => {
  const input = tf.input({ shape: [6, 6, 3] });
  const sep = tf.layers.separableConv2d({ name: 'sep', filters: 4, kernelSize: 3, depthMultiplier: 2, padding: 'same' }).apply(input) as tf.SymbolicTensor;
  const model = tf.model({ inputs: input, outputs: sep });
  const dir = join(mkdtempSync(join(tmpdir(), 'prunelens-sep-')), 'model');
  await saveModelAtomic(model, dir);
  const loaded = await loadModel(join(dir, 'model.json'));
  const x = tf.randomNormal([1, 6, 6, 3], 0, 1, 'float32', 2);
  assert.deepEqual((loaded.model.predict(x) as tf.Tensor).arraySync(), (model.predict(x) as tf.Tensor).arraySync());
  loaded.model.dispose();
  model.dispose();
});
