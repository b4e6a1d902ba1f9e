import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import {
  proxBranchStart,
  proxFactors,
  proxFactorsTensor,
  proxObjective,
  proxScale,
  proxScaleTensor,
  proxThreshold,
} from '../../src/engine/methods/prox.js';

const P_VALUES = [0, 0.25, 0.5, 2 / 3, 0.8, 1];
const TAUS = [1e-3, 0.01, 0.3, 1, 5 / 3, 10];

/**
 * Brute-force minimiser of ½(x − a)² + τ x^p over x ≥ 0: a dense grid on [0, a], then
 * golden-section refinement around the best grid point, then a comparison with x = 0.
 * Independent of the closed forms and of Newton.
 */
function bruteForceProx(a: number, tau: number, p: number): number {
  if (a === 0) return 0;
  // The objective minus its constant ½a², which keeps rounding small near tiny minimisers.
  const f = (x: number) => (x === 0 ? 0 : x * (0.5 * x - a) + tau * (p === 0 ? 1 : Math.pow(x, p)));
  const n = 20000;
  let best = 1;
  for (let i = 1; i <= n; i++) if (f((a * i) / n) < f((a * best) / n)) best = i;
  let lo = (a * Math.max(best - 1, 0)) / n + 1e-300;
  let hi = (a * Math.min(best + 1, n)) / n;
  const ratio = (Math.sqrt(5) - 1) / 2;
  let c = hi - ratio * (hi - lo);
  let d = lo + ratio * (hi - lo);
  for (let i = 0; i < 200 && hi - lo > 1e-15 * a; i++) {
    if (f(c) < f(d)) { hi = d; d = c; c = hi - ratio * (hi - lo); }
    else { lo = c; c = d; d = lo + ratio * (hi - lo); }
  }
  const x = (lo + hi) / 2;
  return f(x) < 0 ? x : 0;
}

function sampleNorms(tau: number, p: number): number[] {
  const threshold = proxThreshold(tau, p);
  const span = 4 * Math.max(threshold, 0.1);
  const grid = Array.from({ length: 41 }, (_, i) => (span * i) / 40);
  const nearThreshold = [1 - 1e-3, 1 - 1e-6, 1 + 1e-6, 1 + 1e-4, 1 + 1e-3, 1.01, 1.1].map((r) => threshold * r);
  return [...grid, ...nearThreshold].filter((a) => a >= 0);
}

test('proxScale matches brute-force 1-D minimisation within 1e-6 relative error, at and around the thresholds', () => {
  let worst = 0;
  let checked = 0;
  for (const p of P_VALUES) {
    for (const tau of TAUS) {
      for (const a of sampleNorms(tau, p)) {
        const exact = proxScale(a, tau, p);
        const brute = bruteForceProx(a, tau, p);
        const tie = Math.abs(proxObjective(brute, a, tau, p) - proxObjective(0, a, tau, p)) <= 1e-13 * Math.max(1, a * a);
        if (brute === 0 || (tie && exact === 0)) {
          // A tie between 0 and the branch start (a = a* up to rounding) is resolved to 0.
          assert.equal(exact, 0, `p=${p} tau=${tau} a=${a}: brute force gives 0, prox gives ${exact}`);
        } else {
          // Relative to the prox value; a value far below a (p = 1 just above τ) is only
          // resolved by the brute force to a fraction of a, so there the scale is a/100.
          const relative = Math.abs(exact - brute) / Math.max(brute, a / 100);
          worst = Math.max(worst, relative);
          assert.ok(relative <= 1e-6, `p=${p} tau=${tau} a=${a}: prox ${exact} vs brute ${brute} (rel ${relative})`);
        }
        checked++;
      }
    }
  }
  assert.ok(checked > 1500);
  assert.ok(worst <= 1e-6);
});

test('at the threshold both 0 and the branch start minimise, and the prox picks 0', () => {
  for (const p of [0.25, 0.5, 2 / 3, 0.8]) {
    for (const tau of TAUS) {
      const threshold = proxThreshold(tau, p);
      const beta = proxBranchStart(tau, p);
      assert.equal(proxScale(threshold, tau, p), 0);
      const gap = proxObjective(beta, threshold, tau, p) - proxObjective(0, threshold, tau, p);
      assert.ok(Math.abs(gap) <= 1e-12 * Math.max(1, threshold * threshold), `p=${p} tau=${tau}: objective gap ${gap}`);
      // Just above the threshold the prox jumps to (about) β*, never to a small value.
      const jumped = proxScale(threshold * (1 + 1e-9), tau, p);
      assert.ok(Math.abs(jumped - beta) / beta < 1e-3, `p=${p} tau=${tau}: ${jumped} vs β* ${beta}`);
    }
  }
  assert.equal(proxScale(Math.sqrt(2 * 0.7), 0.7, 0), 0);
  assert.equal(proxScale(0.7, 0.7, 1), 0);
});

test('thresholds have the closed forms of the specification', () => {
  for (const tau of TAUS) {
    assert.ok(Math.abs(proxThreshold(tau, 0.5) - 1.5 * Math.pow(tau, 2 / 3)) <= 1e-12 * Math.max(1, tau));
    assert.ok(Math.abs(proxThreshold(tau, 2 / 3) - 2 * Math.pow((2 * tau) / 3, 0.75)) <= 1e-12 * Math.max(1, tau));
    assert.equal(proxThreshold(tau, 0), Math.sqrt(2 * tau));
    assert.equal(proxThreshold(tau, 1), tau);
  }
});

test('above the threshold the prox satisfies the stationarity equation x + τ p x^(p−1) = a', () => {
  for (const p of [0.25, 0.5, 2 / 3, 0.8]) {
    for (const tau of TAUS) {
      for (const r of [1.001, 1.3, 2, 10]) {
        const a = proxThreshold(tau, p) * r;
        const x = proxScale(a, tau, p);
        const residual = x + tau * p * Math.pow(x, p - 1) - a;
        assert.ok(Math.abs(residual) <= 1e-9 * a, `p=${p} tau=${tau} a=${a}: residual ${residual}`);
      }
    }
  }
});

test('the group lasso prox equals max(0, 1 − τ/‖v‖)·v', () => {
  const norms = [0, 0.2, 0.5, 0.50001, 3];
  const factors = proxFactors(norms, 0.5, 1);
  const expected = norms.map((a) => (a > 0 ? Math.max(0, 1 - 0.5 / a) : 0));
  factors.forEach((f, i) => assert.ok(Math.abs(f - expected[i]) < 1e-12));
});

test('prox is monotone in a and never exceeds a', () => {
  for (const p of P_VALUES) {
    let previous = 0;
    for (let i = 0; i <= 400; i++) {
      const a = i * 0.01;
      const x = proxScale(a, 0.4, p);
      assert.ok(x >= previous - 1e-12 && x <= a + 1e-12, `p=${p} a=${a}`);
      previous = x;
    }
  }
});

test('invalid arguments are refused', () => {
  assert.throws(() => proxScale(1, 0.1, 1.5), RangeError);
  assert.throws(() => proxScale(1, -0.1, 0.5), RangeError);
  assert.throws(() => proxScale(-1, 0.1, 0.5), RangeError);
  assert.equal(proxScale(1.7, 0, 0.5), 1.7);
});

test('the tensor prox agrees with the scalar prox in float32 and leaks no tensors', async () => {
  await tf.setBackend('cpu');
  for (const p of P_VALUES) {
    for (const tau of [0.01, 0.3, 5 / 3]) {
      const norms = sampleNorms(tau, p).filter((a) => Math.abs(a / proxThreshold(tau, p) - 1) > 1e-4);
      const before = tf.memory().numTensors;
      const input = tf.tensor1d(norms);
      const scaled = proxScaleTensor(input, tau, p);
      const factors = proxFactorsTensor(input, tau, p);
      const got = scaled.dataSync();
      const gotFactors = factors.dataSync();
      tf.dispose([input, scaled, factors]);
      assert.equal(tf.memory().numTensors, before);
      const want = norms.map((a) => proxScale(a, tau, p));
      const wantFactors = proxFactors(norms, tau, p);
      for (let i = 0; i < norms.length; i++) {
        const scale = Math.max(norms[i], 1e-3);
        assert.ok(Math.abs(got[i] - want[i]) <= 2e-5 * scale, `p=${p} tau=${tau} a=${norms[i]}: ${got[i]} vs ${want[i]}`);
        assert.ok(Math.abs(gotFactors[i] - wantFactors[i]) <= 2e-5, `factor p=${p} a=${norms[i]}`);
      }
    }
  }
});
