import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend, backendInfo } from '../../src/engine/backend/index.js';
import { defaultThreads } from '../../src/engine/backend/simd/pool.js';
import { UserError } from '../../src/engine/errors.js';

function filterGradients(): Float32Array[] {
  const shapes: Array<[number[], number[], number | [number, number], 'same' | 'valid']> = [
    [[2, 9, 8, 3], [3, 3, 3, 4], 1, 'same'], [[2, 9, 9, 5], [3, 2, 5, 6], 2, 'valid'], [[3, 8, 7, 4], [5, 5, 4, 2], [2, 1], 'same'],
  ];
  return shapes.map(([xs, fs, stride, pad], i) => {
    const g = tf.tidy(() => {
      const x = tf.randomNormal(xs, 0, 1, 'float32', i + 1);
      const w = tf.randomNormal(fs, 0, 1, 'float32', i + 11);
      const depthwise = tf.randomNormal([3, 3, xs[3], 2], 0, 1, 'float32', i + 21);
      const dw = tf.grad((f) => tf.conv2d(x as tf.Tensor4D, f as tf.Tensor4D, stride, pad).square().sum())(w);
      const [ddx, ddw] = tf.grads((a, f) => tf.depthwiseConv2d(a as tf.Tensor4D, f as tf.Tensor4D, 1, pad).square().sum())([x, depthwise]);
      return tf.concat([dw.flatten(), ddx.flatten(), ddw.flatten()]);
    });
    const values = g.dataSync() as Float32Array;
    g.dispose();
    return values;
  });
}

/** tfjs-node is usable here: its package and its native binding load (the package alone may be present without the binding). */
function tfjsNodeLoads(): boolean {
  try { require('@tensorflow/tfjs-node'); return true; } catch { return false; }
}

test('cpu backend: the fast filter-gradient kernels agree with the stock ones', async () => {
  await tf.setBackend('cpu');
  const stock = filterGradients();
  assert.equal(await initBackend('cpu'), 'cpu');
  assert.equal(backendInfo().patchedKernels, true);
  const patched = filterGradients();
  stock.forEach((ref, i) => {
    let maxDiff = 0, maxRef = 0;
    ref.forEach((v, j) => { maxDiff = Math.max(maxDiff, Math.abs(v - patched[i][j])); maxRef = Math.max(maxRef, Math.abs(v)); });
    assert.ok(maxDiff / maxRef < 1e-5, `case ${i}: relative error ${maxDiff / maxRef}`);
  });
});

test('auto runs the fastest backend it measured (wasm with SIMD where tfjs-node does not load), and says why', async () => {
  const name = await initBackend('auto');
  assert.equal(name, tf.getBackend());
  const info = backendInfo();
  assert.equal(info.choice?.by, 'measured');
  const stepMs = info.choice!.stepMs!;
  assert.equal(name, Object.keys(stepMs).sort((a, b) => stepMs[a] - stepMs[b])[0], JSON.stringify(stepMs));
  if (!tfjsNodeLoads()) {
    assert.equal(name, 'wasm');
    assert.equal(info.simd, true);
    assert.equal(info.kernels, 'simd', info.kernelsReason);
    assert.equal(info.threads, defaultThreads());
    assert.match(info.fallbackReason ?? '', /tfjs-node/);
  }
  assert.equal(await initBackend('auto'), name, 'a second call keeps the backend');
});

test('an explicit backend is forced, and a missing tfjs-node is a UserError on the backend field', async () => {
  assert.equal(await initBackend('cpu'), 'cpu');
  assert.equal(tf.getBackend(), 'cpu');
  assert.equal(await initBackend('wasm'), 'wasm');
  assert.equal(tf.getBackend(), 'wasm');
  if (tfjsNodeLoads()) return;
  await assert.rejects(initBackend('tensorflow'), (err: unknown) => {
    assert.ok(err instanceof UserError);
    assert.equal(err.field, 'backend');
    assert.match(err.message, /@tensorflow\/tfjs-node/);
    assert.match(err.message, /npm install @tensorflow\/tfjs-node.*"auto"/);
    return true;
  });
  assert.equal(tf.getBackend(), 'wasm', 'a failed request leaves the working backend in place');
});

test('wasm clones share their buffer safely: each copy outlives the other', async () => {
  await initBackend('wasm');
  const before = tf.memory().numTensors;
  const a = tf.tensor([1, 2, 3]);
  const b = tf.clone(a);
  a.dispose();
  assert.deepEqual(Array.from(b.dataSync()), [1, 2, 3]);
  const v = tf.variable(b);
  b.dispose();
  const doubled = tf.tidy(() => v.mul(2));
  v.assign(doubled);
  doubled.dispose();
  assert.deepEqual(Array.from(v.dataSync()), [2, 4, 6]);
  v.dispose();
  assert.equal(tf.memory().numTensors, before);
});
