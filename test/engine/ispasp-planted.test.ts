import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { searchSupport, blockResidual } from '../../src/engine/methods/ispasp/support.js';
import { permutation } from '../../src/engine/util/random.js';

/**
 * A planted sparse teacher: of 96 hidden ReLU units, all equally active, only 12 reach the
 * output (the others' outgoing weights are ~0). The residual's gradient must single out the
 * planted units, which activation mass alone cannot: it ranks planted and idle units alike.
 */
test('i-SpaSP recovers the hidden units of a planted sparse two-layer teacher', () => {
  const hidden = 96;
  const planted = Array.from(permutation(hidden, 11)).slice(0, 12).sort((a, b) => a - b);
  const isPlanted = new Set(planted);
  const { h, w2 } = tf.tidy(() => {
    const x = tf.randomNormal([400, 20], 0, 1, 'float32', 5);
    const w1 = tf.randomNormal([20, hidden], 0, 1 / Math.sqrt(20), 'float32', 6);
    const h = tf.relu(x.matMul(w1));
    const reach = tf.tensor2d(Array.from({ length: hidden }, (_, j) => (isPlanted.has(j) ? 1 : 1e-4)), [hidden, 1]);
    const w2 = tf.randomNormal([hidden, 8], 0, 1, 'float32', 7).mul(reach);
    return { h, w2 };
  });
  const second = (a: tf.Tensor) => a.matMul(w2);

  const result = searchSupport([h], second, { size: planted.length, iterations: 20, candidateFactor: 2, importance: 'signed' });
  assert.deepEqual([...result.support].sort((a, b) => a - b), planted, 'the support is the planted units');
  const emptyResidual = blockResidual([h], second, []);
  assert.ok(result.residual < 1e-4 * emptyResidual, `residual ${result.residual} of ${emptyResidual} left`);

  // The official code's cut by activation mass keeps idle but active channels instead.
  const byMass = searchSupport([h], second, { size: planted.length, iterations: 20, candidateFactor: 2, importance: 'signed', threshold: 'mass' });
  assert.ok(byMass.support.filter((j) => isPlanted.has(j)).length < planted.length, 'mass thresholding misses planted units');
  assert.ok(byMass.residual > 100 * result.residual);

  // Activation mass alone would miss most of the teacher.
  const mass = tf.tidy(() => Array.from(h.sum(0).dataSync()));
  const loudest = mass.map((m, j) => [m, j]).sort((a, b) => b[0] - a[0]).slice(0, planted.length).map(([, j]) => j);
  assert.ok(loudest.filter((j) => isPlanted.has(j)).length < planted.length / 2, 'the planted units are not simply the most active');
  tf.dispose([h, w2]);
});
