import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import {
  groupRegularizer, gumbelSoftmax, gumbelNoise, hardGroups, oneHotAssignment, regularizerAssignmentGrad,
  regularizerMixedGrad, regularizerScale, regularizerWeightGrad,
} from '../../src/engine/methods/dsp/regularizer.js';
import { seededRandom } from '../../src/engine/util/random.js';

before(async () => {
  await tf.setBackend('cpu');
});

const G = 3;
const KH = 3;
const KW = 3;
const C = 4;
const N = 6;

/** Kernel [kh, kw, C, N] flattened in HWIO order, float64. */
function randomKernel(random: () => number): Float64Array {
  return Float64Array.from({ length: KH * KW * C * N }, () => random() * 2 - 1);
}

function randomAssignment(random: () => number): Float64Array {
  const q = new Float64Array(G * N);
  for (let j = 0; j < N; j++) {
    let total = 0;
    for (let g = 0; g < G; g++) total += q[g * N + j] = 0.1 + random();
    for (let g = 0; g < G; g++) q[g * N + j] /= total;
  }
  return q;
}

const idx = (h: number, w: number, c: number, j: number) => ((h * KW + w) * C + c) * N + j;

/** R̃ in float64, written straight from the definition in algorithms.md §4.2. */
function referenceR(q: Float64Array, k: Float64Array): number {
  let r = 0;
  for (let g = 0; g < G; g++) {
    let sizeRoot = 0;
    for (let j = 0; j < N; j++) sizeRoot += Math.sqrt(q[g * N + j]);
    let norms = 0;
    for (let c = 0; c < C; c++) {
      let sq = 0;
      for (let j = 0; j < N; j++) for (let h = 0; h < KH; h++) for (let w = 0; w < KW; w++) sq += (q[g * N + j] * k[idx(h, w, c, j)]) ** 2;
      norms += Math.sqrt(sq);
    }
    r += sizeRoot * sizeRoot * norms;
  }
  return r;
}

/** ∂R̃/∂W with the closed form of §4.3 (soft assignment), float64. */
function referenceWeightGrad(q: Float64Array, k: Float64Array): Float64Array {
  const out = new Float64Array(k.length);
  for (let g = 0; g < G; g++) {
    let sizeRoot = 0;
    for (let j = 0; j < N; j++) sizeRoot += Math.sqrt(q[g * N + j]);
    for (let c = 0; c < C; c++) {
      let sq = 0;
      for (let j = 0; j < N; j++) for (let h = 0; h < KH; h++) for (let w = 0; w < KW; w++) sq += (q[g * N + j] * k[idx(h, w, c, j)]) ** 2;
      const norm = Math.sqrt(sq);
      for (let j = 0; j < N; j++) for (let h = 0; h < KH; h++) for (let w = 0; w < KW; w++) {
        out[idx(h, w, c, j)] += sizeRoot * sizeRoot * q[g * N + j] ** 2 * k[idx(h, w, c, j)] / norm;
      }
    }
  }
  return out;
}

function maxRelErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let worst = 0;
  let scale = 0;
  for (let i = 0; i < a.length; i++) scale = Math.max(scale, Math.abs(b[i]));
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]) / scale);
  return worst;
}

test('regulariser value matches its definition', () => {
  const random = seededRandom(1);
  const q = randomAssignment(random);
  const k = randomKernel(random);
  const value = tf.tidy(() => groupRegularizer(tf.tensor2d(Float32Array.from(q), [G, N]), tf.tensor4d(Float32Array.from(k), [KH, KW, C, N]), 2.5).dataSync()[0]);
  const expected = 2.5 * referenceR(q, k);
  assert.ok(Math.abs(value - expected) / expected < 1e-5, `${value} vs ${expected}`);
});

test('∂R/∂P agrees with central finite differences', () => {
  const random = seededRandom(2);
  const q = randomAssignment(random);
  const k = randomKernel(random);
  const grad = tf.tidy(() => regularizerAssignmentGrad(tf.tensor2d(Float32Array.from(q), [G, N]), tf.tensor4d(Float32Array.from(k), [KH, KW, C, N])).dataSync());
  const h = 1e-6;
  const fd = Array.from({ length: G * N }, (_, i) => {
    const plus = Float64Array.from(q);
    const minus = Float64Array.from(q);
    plus[i] += h;
    minus[i] -= h;
    return (referenceR(plus, k) - referenceR(minus, k)) / (2 * h);
  });
  const err = maxRelErr(grad, fd);
  assert.ok(err < 1e-4, `relative error ${err}`);
});

test('∂R/∂W agrees with finite differences and with the closed form for hard assignments', () => {
  const random = seededRandom(3);
  const q = randomAssignment(random);
  const k = randomKernel(random);
  const grad = tf.tidy(() => regularizerWeightGrad(tf.tensor2d(Float32Array.from(q), [G, N]), tf.tensor4d(Float32Array.from(k), [KH, KW, C, N])).dataSync());
  const h = 1e-6;
  const probes = [0, 7, 33, 100, k.length - 1];
  for (const i of probes) {
    const plus = Float64Array.from(k);
    const minus = Float64Array.from(k);
    plus[i] += h;
    minus[i] -= h;
    const fd = (referenceR(q, plus) - referenceR(q, minus)) / (2 * h);
    assert.ok(Math.abs(grad[i] - fd) < 1e-4 * Math.max(1, Math.abs(fd)), `entry ${i}: ${grad[i]} vs ${fd}`);
  }
  assert.ok(maxRelErr(grad, referenceWeightGrad(q, k)) < 1e-5);

  // Hard assignment: ∂R/∂W_{j,c} = s_g(j) · W_{j,c} / L_{g(j),c} with s_g = n_g².
  const groupOf = [0, 2, 2, 1, 0, 2];
  const hardGrad = tf.tidy(() => regularizerWeightGrad(oneHotAssignment(groupOf, G), tf.tensor4d(Float32Array.from(k), [KH, KW, C, N])).dataSync());
  const sizes = [0, 0, 0];
  groupOf.forEach((g) => sizes[g]++);
  for (const [c, j] of [[0, 1], [3, 4], [2, 3]]) {
    const g = groupOf[j];
    let sq = 0;
    for (let jj = 0; jj < N; jj++) if (groupOf[jj] === g) for (let hh = 0; hh < KH; hh++) for (let w = 0; w < KW; w++) sq += k[idx(hh, w, c, jj)] ** 2;
    const expected = sizes[g] ** 2 * k[idx(1, 2, c, j)] / Math.sqrt(sq);
    assert.ok(Math.abs(hardGrad[idx(1, 2, c, j)] - expected) < 1e-5 * Math.max(1, Math.abs(expected)));
  }
});

test('mixed term ∇_P⟨∇_W R(P, W), Δ⟩ agrees with finite differences of the closed-form ∇_W R', () => {
  const random = seededRandom(4);
  const q = randomAssignment(random);
  const k = randomKernel(random);
  const delta = Float64Array.from({ length: k.length }, () => (random() - 0.5) * 0.1);
  const mixed = tf.tidy(() =>
    regularizerMixedGrad(tf.tensor2d(Float32Array.from(q), [G, N]), tf.tensor4d(Float32Array.from(k), [KH, KW, C, N]), tf.tensor4d(Float32Array.from(delta), [KH, KW, C, N])).dataSync(),
  );
  const inner = (qq: Float64Array) => referenceWeightGrad(qq, k).reduce((s, v, i) => s + v * delta[i], 0);
  const h = 1e-6;
  const fd = Array.from({ length: G * N }, (_, i) => {
    const plus = Float64Array.from(q);
    const minus = Float64Array.from(q);
    plus[i] += h;
    minus[i] -= h;
    return (inner(plus) - inner(minus)) / (2 * h);
  });
  const err = maxRelErr(mixed, fd);
  assert.ok(err < 1e-3, `relative error ${err}`);
});

test('Gumbel-softmax columns sum to one, sharpen as the temperature falls, and hard groups take the argmax', () => {
  const random = seededRandom(5);
  const logits = tf.tensor2d([[2, 0, -1, 0.5], [0, 1, -1, 0.4], [0.5, 0.2, 3, 0.3]]);
  const noise = gumbelNoise(3, 4, random);
  const warm = gumbelSoftmax(logits, noise, 5);
  const cold = gumbelSoftmax(logits, noise, 0.05);
  const sums = warm.sum(0).dataSync();
  for (const s of sums) assert.ok(Math.abs(s - 1) < 1e-6);
  const maxWarm = warm.max(0).mean().dataSync()[0];
  const maxCold = cold.max(0).mean().dataSync()[0];
  assert.ok(maxCold > maxWarm && maxCold > 0.9);
  assert.deepEqual(hardGroups(logits.dataSync() as Float32Array, 3, 4), [0, 1, 2, 0]);
  tf.dispose([logits, noise, warm, cold]);
});

test('regulariser scale follows sqrt(inSize)·k·(G/N)^1.5', () => {
  assert.equal(regularizerScale(1, 3, 4, 16), 3 * Math.pow(0.25, 1.5));
  assert.ok(Math.abs(regularizerScale(0.25, 3, 2, 32) - 0.5 * 3 * Math.pow(1 / 16, 1.5)) < 1e-15);
});
