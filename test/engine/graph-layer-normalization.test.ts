// Hazard: LayerNormalization normalises each position across its channels, so every output channel depends on
// all input channels: the channels it touches are kept, and the reason says why (Keras 3.15.1 two_heads fixture).
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { loadModel } from '../../src/engine/io/index.js';
import { analyzeModel } from '../../src/engine/graph/analyze.js';

before(async () => {
  await tf.setBackend('cpu');
});

describe('LayerNormalization', () => {
  it('blocks the channels it touches because it normalises across them', async () => {
    const { model } = await loadModel('test/fixtures/keras/two_heads.keras');
    const graph = analyzeModel(model);
    const norms = graph.layers.filter((l) => l.type === 'LayerNormalization');
    assert.ok(norms.length >= 1);
    for (const norm of norms) {
      assert.equal(norm.status, 'blocked');
      assert.equal(norm.reason, `${norm.name} (LayerNormalization) normalises across channels (every output channel depends on all input channels), so the channels it touches are kept`);
    }
    model.dispose();
  });
});
