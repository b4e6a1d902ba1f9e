import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { searchSupport, blockResidual } from '../../src/engine/methods/ispasp/support.js';
import { seededRandom } from '../../src/engine/util/random.js';

/**
 * A teacher two-layer ReLU block: hidden units with spread-out scales and a bias that
 * controls how sparse the activations are (larger `sparsity` → more zeros).
 */
function teacherBlock(options: { samples: number; inputs: number; hidden: number; outputs: number; sparsity: number; seed: number }) {
  const { samples, inputs, hidden, outputs, sparsity, seed } = options;
  return tf.tidy(() => {
    const x = tf.randomNormal([samples, inputs], 0, 1, 'float32', seed);
    const scales = tf.exp(tf.randomUniform([1, hidden], -2, 1, 'float32', seed + 1));
    const w1 = tf.randomNormal([inputs, hidden], 0, 1 / Math.sqrt(inputs), 'float32', seed + 2).mul(scales);
    // Pre-activations are roughly N(0, scale²); shifting by a quantile of N(0,1) sets the zero fraction.
    const shift = quantileOfStandardNormal(sparsity);
    const b1 = scales.mul(-shift);
    const h = tf.relu(x.matMul(w1).add(b1));
    const w2 = tf.randomNormal([hidden, outputs], 0, 1 / Math.sqrt(hidden), 'float32', seed + 3);
    const b2 = tf.randomNormal([outputs], 0, 0.1, 'float32', seed + 4);
    return { h, w2, b2 };
  });
}

function quantileOfStandardNormal(p: number): number {
  // Bisection on the error function is plenty for a test fixture.
  let lo = -6, hi = 6;
  for (let i = 0; i < 60; i++) {
    const mid = (lo + hi) / 2;
    const cdf = 0.5 * (1 + erf(mid / Math.SQRT2));
    if (cdf < p) lo = mid; else hi = mid;
  }
  return (lo + hi) / 2;
}

function erf(x: number): number {
  const t = 1 / (1 + 0.3275911 * Math.abs(x));
  const y = 1 - (((((1.061405429 * t - 1.453152027) * t) + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * Math.exp(-x * x);
  return x >= 0 ? y : -y;
}

const options = { iterations: 20, candidateFactor: 2, importance: 'signed' as const };

test('the residual energy falls as the support grows and beats random supports of the same size', () => {
  const { h, w2, b2 } = teacherBlock({ samples: 512, inputs: 24, hidden: 128, outputs: 10, sparsity: 0.7, seed: 3 });
  const second = (x: tf.Tensor) => x.matMul(w2).add(b2);
  const random = seededRandom(7);
  const sizes = [4, 8, 16, 32, 64, 96, 120];
  const residuals: number[] = [];
  for (const size of sizes) {
    const result = searchSupport([h], second, { ...options, size });
    assert.equal(result.support.length, size);
    assert.equal(new Set(result.support).size, size);
    residuals.push(result.residual);
    let randomTotal = 0;
    const draws = 8;
    for (let d = 0; d < draws; d++) {
      const order = Array.from({ length: 128 }, (_, i) => i).sort(() => random() - 0.5);
      randomTotal += blockResidual([h], second, order.slice(0, size));
    }
    const randomMean = randomTotal / draws;
    assert.ok(result.residual < 0.9 * randomMean, `s=${size}: i-SpaSP ${result.residual.toFixed(3)} vs random ${randomMean.toFixed(3)}`);
  }
  for (let i = 1; i < residuals.length; i++) {
    assert.ok(residuals[i] <= residuals[i - 1] * 1.02, `residual should fall with s: ${residuals.map((r) => r.toFixed(3)).join(', ')}`);
  }
  assert.ok(residuals[residuals.length - 1] < 0.1 * residuals[0]);
  tf.dispose([h, w2, b2]);
});

test('over the iterations the residual falls from the empty support and ends at or below where it started', () => {
  const { h, w2, b2 } = teacherBlock({ samples: 512, inputs: 24, hidden: 128, outputs: 10, sparsity: 0.5, seed: 11 });
  const second = (x: tf.Tensor) => x.matMul(w2).add(b2);
  const seen: number[] = [];
  const result = searchSupport([h], second, { ...options, size: 24, onIteration: (i) => seen.push(i.relativeResidual) });
  assert.equal(seen.length, result.iterations);
  assert.ok(Math.abs(seen[0] - 1) < 1e-5, 'the first iteration starts from the empty support');
  const history = [...seen, result.residual / result.denseEnergy];
  for (let i = 1; i < history.length; i++) {
    assert.ok(history[i] <= history[i - 1] * 1.02, `residual per iteration: ${history.map((r) => r.toFixed(3)).join(', ')}`);
  }
  assert.ok(result.residual < 0.5 * result.denseEnergy);
  tf.dispose([h, w2, b2]);
});

test('sparser hidden activations leave a smaller relative residual at the same support size', () => {
  const relative: number[] = [];
  for (const sparsity of [0.3, 0.9]) {
    const { h, w2, b2 } = teacherBlock({ samples: 512, inputs: 24, hidden: 128, outputs: 10, sparsity, seed: 5 });
    const result = searchSupport([h], (x) => x.matMul(w2).add(b2), { ...options, size: 32 });
    relative.push(result.residual / result.denseEnergy);
    tf.dispose([h, w2, b2]);
  }
  assert.ok(relative[1] < relative[0], `dense ${relative[0].toFixed(3)} vs sparse ${relative[1].toFixed(3)}`);
});

test('chunking the calibration data along the batch gives the same support and residual', () => {
  const { h, w2, b2 } = teacherBlock({ samples: 300, inputs: 16, hidden: 64, outputs: 8, sparsity: 0.6, seed: 21 });
  const second = (x: tf.Tensor) => x.matMul(w2).add(b2);
  const whole = searchSupport([h], second, { ...options, size: 12 });
  const chunks = [h.slice([0, 0], [100, 64]), h.slice([100, 0], [200, 64])];
  const split = searchSupport(chunks, second, { ...options, size: 12 });
  assert.deepEqual(split.support, whole.support);
  assert.ok(Math.abs(split.residual - whole.residual) <= 1e-4 * whole.residual);
  tf.dispose([h, w2, b2, ...chunks]);
});
