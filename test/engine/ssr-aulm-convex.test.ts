import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import type { ChannelGraph } from '../../src/engine/graph/types.js';
import { UnitWeightLayout } from '../../src/engine/methods/group-tensors.js';
import { proxFactors } from '../../src/engine/methods/prox.js';
import { AulmSplitting, ssrFactors } from '../../src/engine/methods/ssr.js';
import { seededRandom } from '../../src/engine/util/random.js';

/**
 * Convex oracle: least squares with a group-lasso penalty on the rows of W (feature selection),
 *   min_W  1/(2n) ‖XW − Y‖² + λ Σ_r ‖W_r‖,
 * solved by AULM with exact W-steps and by proximal gradient descent. Both must reach the
 * same minimiser, including the same zero rows.
 */

const N = 60;
const D = 8;
const M = 3;
const LAMBDA = 0.12;

function problem() {
  const random = seededRandom(11);
  const gauss = () => Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
  const x = Array.from({ length: N }, () => Array.from({ length: D }, gauss));
  // Only the first three features matter; the others should be selected away.
  const truth = Array.from({ length: D }, (_, r) => Array.from({ length: M }, () => (r < 3 ? 1.5 * gauss() : 0)));
  const y = x.map((row) => Array.from({ length: M }, (_, k) => row.reduce((s, v, r) => s + v * truth[r][k], 0) + 0.3 * gauss()));
  const gram = Array.from({ length: D }, (_, i) => Array.from({ length: D }, (_, j) => x.reduce((s, row) => s + row[i] * row[j], 0) / N));
  const xty = Array.from({ length: D }, (_, i) => Array.from({ length: M }, (_, k) => x.reduce((s, row, n) => s + row[i] * y[n][k], 0) / N));
  return { gram, xty };
}

/** Solves A Z = B for symmetric positive definite A (Gaussian elimination, no pivoting needed). */
function solve(a: number[][], b: number[][]): number[][] {
  const n = a.length;
  const A = a.map((row) => [...row]);
  const B = b.map((row) => [...row]);
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      const f = A[j][i] / A[i][i];
      for (let k = i; k < n; k++) A[j][k] -= f * A[i][k];
      for (let k = 0; k < B[0].length; k++) B[j][k] -= f * B[i][k];
    }
  }
  const z = B.map((row) => row.map(() => 0));
  for (let i = n - 1; i >= 0; i--) {
    for (let k = 0; k < B[0].length; k++) {
      let s = B[i][k];
      for (let j = i + 1; j < n; j++) s -= A[i][j] * z[j][k];
      z[i][k] = s / A[i][i];
    }
  }
  return z;
}

function proximalGradient(gram: number[][], xty: number[][]): number[][] {
  // Step 1/L with L bounded by the Frobenius norm of the Gram matrix.
  const lipschitz = Math.sqrt(gram.flat().reduce((s, v) => s + v * v, 0));
  const step = 1 / lipschitz;
  let w = xty.map((row) => row.map(() => 0));
  for (let iteration = 0; iteration < 20000; iteration++) {
    const moved = w.map((row, r) => row.map((v, k) => v - step * (gram[r].reduce((s, g, j) => s + g * w[j][k], 0) - xty[r][k])));
    const factors = proxFactors(moved.map((row) => Math.hypot(...row)), step * LAMBDA, 1);
    w = moved.map((row, r) => row.map((v) => v * factors[r]));
  }
  return w;
}

function rowGraph(): ChannelGraph {
  return {
    layers: [],
    groups: [{ id: 0, members: ['linear'], producers: ['linear'], consumers: [], channels: D, units: [...Array(D).keys()], coupled: false }],
    units: Array.from({ length: D }, (_, r) => ({ id: r, group: 0, index: r, slices: [{ layer: 'linear', weight: 'kernel', axis: 0, indices: [r], role: 'producer' as const }] })),
  };
}

test('AULM with exact W-steps reaches the proximal-gradient solution of a group-lasso least-squares problem', async () => {
  await tf.setBackend('cpu');
  const { gram, xty } = problem();
  const reference = proximalGradient(gram, xty);

  const input = tf.input({ shape: [D] });
  const output = tf.layers.dense({ name: 'linear', units: M, useBias: false, kernelInitializer: 'zeros' }).apply(input) as tf.SymbolicTensor;
  const model = tf.model({ inputs: input, outputs: output });
  const layout = UnitWeightLayout.build(model, rowGraph());
  const rho = 1;
  const aulm = new AulmSplitting(layout, new Array(D).fill(LAMBDA), rho, 'l21');
  const system = gram.map((row, i) => row.map((v, j) => v + (i === j ? rho : 0)));
  const tensorsBefore = tf.memory().numTensors;
  for (let iteration = 0; iteration < 400; iteration++) {
    aulm.update();
    // Exact W-step: argmin 1/(2n)‖XW − Y‖² + (ρ/2)‖W − centre‖².
    const centre = aulm.centre.get('linear/kernel')!.arraySync() as number[][];
    const w = solve(system, xty.map((row, r) => row.map((v, k) => v + rho * centre[r][k])));
    const next = tf.tensor2d(w);
    model.getLayer('linear').setWeights([next]);
    next.dispose();
  }
  assert.equal(tf.memory().numTensors, tensorsBefore, 'no tensor leak per iteration');
  const f = aulm.f.get('linear/kernel')!.arraySync() as number[][];
  const w = model.getLayer('linear').getWeights()[0].arraySync() as number[][];

  const scale = Math.hypot(...reference.flat());
  const errorF = Math.hypot(...f.flat().map((v, i) => v - reference.flat()[i])) / scale;
  const errorW = Math.hypot(...w.flat().map((v, i) => v - reference.flat()[i])) / scale;
  assert.ok(errorF < 1e-4, `‖F − W_pg‖/‖W_pg‖ = ${errorF}`);
  assert.ok(errorW < 1e-4, `‖W − W_pg‖/‖W_pg‖ = ${errorW}`);
  const zeroRows = (m: number[][]) => m.map((row) => row.every((v) => v === 0));
  assert.deepEqual(zeroRows(f), zeroRows(reference));
  const zeros = zeroRows(reference).filter(Boolean).length;
  assert.ok(zeros >= 2 && zeros < D, `the penalty should select some but not all features (zero rows: ${zeros})`);
  aulm.dispose();
  layout.dispose();
  model.dispose();
});

test('the SSR F-update is group soft-thresholding for l2,1 and hard-thresholding at √(2λ/ρ) for l2,0', () => {
  const norms = [0.1, 0.5, 0.63, 0.64, 2];
  const lambda = 0.2;
  const rho = 1;
  const soft = ssrFactors(norms, norms.map(() => lambda), rho, 'l21');
  norms.forEach((a, i) => assert.ok(Math.abs(soft[i] - Math.max(0, 1 - lambda / rho / a)) < 1e-12));
  const hard = ssrFactors(norms, norms.map(() => lambda), rho, 'l20');
  const threshold = Math.sqrt((2 * lambda) / rho);
  norms.forEach((a, i) => assert.equal(hard[i], a > threshold ? 1 : 0));
});
