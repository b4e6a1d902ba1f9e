import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import type { TensorInfo } from '@tensorflow/tfjs';
import { backendInfo, initBackend } from '../../src/engine/backend/index.js';
import { createKernelPool, defaultThreads, kernelsPath, type KernelPool, type SharedHeap } from '../../src/engine/backend/simd/pool.js';
import { sharedHeap } from '../../src/engine/backend/simd/index.js';
import { SimdKernels, forwardGeometry, useWinograd } from '../../src/engine/backend/simd/tfjs-kernels.js';
import { buildDemoCnn } from '../../src/engine/demo/model.js';
import { trainModel } from '../../src/engine/train/index.js';
import { Optimizer } from '../../src/engine/train/optimizer.js';
import { loadDataset } from '../../src/engine/data/index.js';
import { randomArray } from '../helpers/seeded.js';
import { setSwitches, switches } from '../../src/engine/util/switches.js';
import { runtimeHasRelaxedSimd } from '../../src/engine/util/relaxed-simd.js';

type Pad = 'same' | 'valid' | [[number, number], [number, number], [number, number], [number, number]];

// These tests run on the kernel build this runtime loads (relaxed SIMD where it has it, else plain);
// simd-kernel-builds.test.ts runs them again in a child on the other build. The tolerances hold for
// both: relaxed SIMD fuses each multiply-add (one rounding where plain SIMD rounds the product and the
// sum), which can only lower the float32 error bound of a K-term dot product, about K·2⁻²⁴ of Σ|a·b|;
// the results differ from plain SIMD's in the last bits, not in size of error.
function relativeError(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  assert.equal(actual.length, expected.length);
  let diff = 0, scale = 1e-12;
  for (let i = 0; i < expected.length; i++) {
    diff = Math.max(diff, Math.abs(actual[i] - expected[i]));
    scale = Math.max(scale, Math.abs(expected[i]));
  }
  return diff / scale;
}

/** Runs `f` on the cpu backend (tfjs' reference kernels) and returns the values. */
async function onCpu(f: () => tf.Tensor[]): Promise<Float32Array[]> {
  const previous = tf.getBackend();
  await tf.setBackend('cpu');
  const out = tf.tidy(f).map((t) => { const v = t.dataSync() as Float32Array; t.dispose(); return v.slice(); });
  await tf.setBackend(previous);
  return out;
}

const asTensor = (info: TensorInfo) => tf.engine().makeTensorFromTensorInfo(info);

interface ConvCase { x: number[]; k: [number, number]; co: number; stride: [number, number]; pad: Pad; dilation: [number, number] }

// Odd channel counts (not multiples of the 4-lane vectors or the 8-column register tile), batch 1
// (fewer images than threads), stride and dilation per axis, explicit pads, 1×1, and enough pixels for several tiles.
const CONV_CASES: ConvCase[] = [
  { x: [2, 9, 8, 3], k: [3, 3], co: 5, stride: [1, 1], pad: 'same', dilation: [1, 1] },
  { x: [3, 11, 7, 5], k: [3, 2], co: 13, stride: [2, 1], pad: 'valid', dilation: [1, 1] },
  { x: [1, 12, 12, 16], k: [3, 3], co: 16, stride: [2, 2], pad: 'same', dilation: [1, 1] },
  { x: [2, 10, 9, 6], k: [1, 1], co: 9, stride: [1, 1], pad: 'valid', dilation: [1, 1] },
  { x: [2, 10, 9, 6], k: [1, 1], co: 7, stride: [2, 2], pad: 'same', dilation: [1, 1] },
  { x: [2, 13, 11, 4], k: [5, 5], co: 3, stride: [1, 2], pad: [[0, 0], [2, 1], [0, 3], [0, 0]], dilation: [1, 1] },
  { x: [2, 14, 13, 7], k: [3, 3], co: 10, stride: [1, 1], pad: 'same', dilation: [2, 3] },
  { x: [4, 20, 20, 32], k: [3, 3], co: 24, stride: [1, 1], pad: 'same', dilation: [1, 1] },
];

const caseName = (c: ConvCase) => `x=${c.x} k=${c.k} co=${c.co} stride=${c.stride} pad=${JSON.stringify(c.pad)} dilation=${c.dilation}`;

function convGeometry(c: ConvCase) {
  return tf.backend_util.computeConv2DInfo(c.x as [number, number, number, number], [...c.k, c.x[3], c.co] as [number, number, number, number],
    c.stride, c.dilation, c.pad as never, undefined, false, 'channelsLast');
}

/** Pools of 1, 2 and 3 threads with memories of their own (operands copied), and of 1 and 2 threads on the backend's shared heap. */
function pools(): KernelPool[] {
  const heap = sharedHeap();
  assert.ok(heap, 'the wasm backend runs on a shared heap');
  return [[1], [2], [3], [1, heap], [2, heap]].map(([threads, shared]) => {
    const started = createKernelPool(threads as number, shared as SharedHeap | undefined);
    assert.ok('pool' in started, 'reason' in started ? started.reason : '');
    return started.pool;
  });
}

const poolName = (pool: KernelPool) => `${pool.threads} threads${pool.sharesHeap ? ' on the shared heap' : ''}`;

test('the kernels are built and the wasm backend uses them on every core, the relaxed-SIMD build where the runtime has it', async () => {
  await initBackend('wasm');
  const info = backendInfo();
  assert.equal(info.kernels, 'simd', info.kernelsReason);
  const relaxed = runtimeHasRelaxedSimd() && switches().relaxedSimd && Boolean(kernelsPath('simd', 'relaxed'));
  assert.equal(info.kernelBuild, relaxed ? 'relaxed' : 'plain');
  assert.equal(info.threads, defaultThreads());
  assert.equal(info.sharedHeap, true);
});

test('conv2d forward, dX and dW match tfjs\' cpu kernels on 1, 2 and 3 threads, with Winograd and with im2col only', async (t) => {
  await initBackend('wasm');
  const be = tf.backend() as never;
  const restore = setSwitches({});
  t.after(restore);
  for (const [pool, winograd] of pools().flatMap((p) => [[p, '1'], [p, '0']] as const)) {
    setSwitches({ PRUNELENS_WINOGRAD: winograd });
    const kernels = new SimdKernels(pool);
    for (const [i, c] of CONV_CASES.entries()) {
      const g = convGeometry(c);
      const x = randomArray(c.x, 3 * i + 1), w = randomArray([...c.k, c.x[3], c.co], 3 * i + 2);
      const dy = randomArray([g.batchSize, g.outHeight, g.outWidth, g.outChannels], 3 * i + 3);
      const [xt, wt, dyt] = [x, w, dy].map((a) => tf.tensor(a.values, a.shape));
      const y = asTensor(kernels.conv2d(be, xt, wt, undefined, 0, g));
      const got = [y.dataSync()];
      if (c.dilation[0] === 1 && c.dilation[1] === 1) {
        got.push(asTensor(kernels.conv2dBackpropInput(be, dyt, wt, g)).dataSync(), asTensor(kernels.conv2dBackpropFilter(be, xt, dyt, g)).dataSync());
      }
      const expected = await onCpu(() => {
        const [a, b, d] = [x, w, dy].map((v) => tf.tensor4d(v.values, v.shape as [number, number, number, number]));
        const out: tf.Tensor[] = [tf.conv2d(a, b, c.stride, c.pad as never, 'NHWC', c.dilation)];
        if (got.length > 1) out.push(...tf.grads((p, q) => tf.conv2d(p as tf.Tensor4D, q as tf.Tensor4D, c.stride, c.pad as never).mul(d).sum())([a, b]));
        return out;
      });
      ['y', 'dx', 'dw'].slice(0, got.length).forEach((name, j) =>
        assert.ok(relativeError(got[j], expected[j]) < 1e-5, `${poolName(pool)}, Winograd ${winograd}, ${caseName(c)}: ${name} relative error ${relativeError(got[j], expected[j])}`));
      tf.dispose([xt, wt, dyt, y]);
    }
  }
});

// 3×3 stride-1 convolutions that take the Winograd path: output sizes that leave ragged 4×4 tiles,
// channel counts that are not whole vectors, valid and asymmetric padding, batch 1, several chunks.
const WINOGRAD_CASES: { x: number[]; co: number; pad: Pad }[] = [
  { x: [2, 9, 7, 9], co: 13, pad: 'same' },
  { x: [1, 10, 11, 8], co: 8, pad: 'valid' },
  { x: [3, 6, 13, 12], co: 10, pad: [[0, 0], [2, 0], [0, 1], [0, 0]] },
  { x: [4, 16, 16, 16], co: 16, pad: 'same' },
  { x: [8, 8, 8, 64], co: 64, pad: 'same' },
  // More tiles than one dW chunk per thread (576 tiles, chunks of 256): the partial accumulates across chunks.
  { x: [4, 48, 48, 4], co: 5, pad: 'same' },
];

test('Winograd F(4×4, 3×3): forward with bias and relu6, dX and dW match tfjs\' cpu kernels on 1 and 2 threads', async () => {
  await initBackend('wasm');
  const be = tf.backend() as never;
  for (const pool of pools().filter((p) => p.threads < 3)) {
    const kernels = new SimdKernels(pool);
    for (const [i, c] of WINOGRAD_CASES.entries()) {
      const name = `${poolName(pool)}, x=${c.x} co=${c.co} pad=${JSON.stringify(c.pad)}`;
      const wShape = [3, 3, c.x[3], c.co];
      const g = tf.backend_util.computeConv2DInfo(c.x as [number, number, number, number], wShape as [number, number, number, number], 1, 1, c.pad as never, undefined, false, 'channelsLast');
      assert.ok(useWinograd(forwardGeometry(g)), `${name} takes the Winograd path`);
      const x = randomArray(c.x, 5 * i + 1), w = randomArray(wShape, 5 * i + 2), bias = randomArray([c.co], 5 * i + 3);
      const dy = randomArray([g.batchSize, g.outHeight, g.outWidth, c.co], 5 * i + 4);
      const [xt, wt, bt, dyt] = [x, w, bias, dy].map((a) => tf.tensor(a.values, a.shape));
      const outs = [kernels.conv2d(be, xt, wt, bt, 2, g), kernels.conv2dBackpropInput(be, dyt, wt, g), kernels.conv2dBackpropFilter(be, xt, dyt, g)].map(asTensor);
      const got = outs.map((t) => t.dataSync());
      const expected = await onCpu(() => {
        const [a, b, d] = [x, w, dy].map((v) => tf.tensor4d(v.values, v.shape as [number, number, number, number]));
        return [tf.relu6(tf.conv2d(a, b, 1, c.pad as never).add(tf.tensor(bias.values))),
          ...tf.grads((p, q) => tf.conv2d(p as tf.Tensor4D, q as tf.Tensor4D, 1, c.pad as never).mul(d).sum())([a, b])];
      });
      ['y', 'dx', 'dw'].forEach((part, j) =>
        assert.ok(relativeError(got[j], expected[j]) < 1e-5, `${name}: ${part} relative error ${relativeError(got[j], expected[j])}`));
      tf.dispose([xt, wt, bt, dyt, ...outs]);
    }
  }
});

test('dilated dX and dW are the adjoints of the dilated forward conv: <conv(x,w), dy> = <x, dX(dy)> = <w, dW(x, dy)>', async () => {
  await initBackend('wasm');
  const be = tf.backend() as never;
  const kernels = new SimdKernels(pools()[4]);
  for (const c of CONV_CASES.filter((k) => k.dilation[0] > 1 || k.dilation[1] > 1)) {
    const g = convGeometry(c);
    const x = tf.tensor(randomArray(c.x, 7).values, c.x), w = tf.tensor(randomArray([...c.k, c.x[3], c.co], 8).values, [...c.k, c.x[3], c.co]);
    const dyShape = [g.batchSize, g.outHeight, g.outWidth, g.outChannels];
    const dy = tf.tensor(randomArray(dyShape, 9).values, dyShape);
    const forward = tf.sum(tf.mul(asTensor(kernels.conv2d(be, x, w, undefined, 0, g)), dy)).dataSync()[0];
    const viaInput = tf.sum(tf.mul(x, asTensor(kernels.conv2dBackpropInput(be, dy, w, g)))).dataSync()[0];
    const viaFilter = tf.sum(tf.mul(w, asTensor(kernels.conv2dBackpropFilter(be, x, dy, g)))).dataSync()[0];
    assert.ok(Math.abs(viaInput - forward) < 1e-4 * Math.abs(forward), `${caseName(c)}: ${viaInput} vs ${forward}`);
    assert.ok(Math.abs(viaFilter - forward) < 1e-4 * Math.abs(forward), `${caseName(c)}: ${viaFilter} vs ${forward}`);
  }
});

test('registered kernels: fused conv with bias and relu6, and batched, transposed, fused matMul match the cpu backend', async () => {
  await initBackend('wasm');
  const x = randomArray([3, 10, 9, 6], 21), w = randomArray([3, 3, 6, 11], 22), bias = randomArray([11], 23);
  const a = randomArray([4, 7, 5], 24), b = randomArray([4, 6, 7], 25), b1 = randomArray([1, 6, 7], 26), mb = randomArray([6], 27);
  const run = () => {
    const t = (v: { values: Float32Array; shape: number[] }) => tf.tensor(v.values, v.shape);
    return [
      tf.fused.conv2d({ x: t(x) as tf.Tensor4D, filter: t(w) as tf.Tensor4D, strides: 2, pad: 'same', bias: t(bias), activation: 'relu6' }),
      tf.matMul(t(a), t(b), true, true),
      tf.matMul(t(a), t(b1), true, true),
      tf.fused.matMul({ a: t(a).reshape([28, 5]), b: t(b).reshape([24, 7]).slice([0, 0], [5, 6]), bias: t(mb), activation: 'relu' }),
    ];
  };
  const got = tf.tidy(run).map((t) => t.dataSync());
  const expected = await onCpu(run);
  got.forEach((g, i) => assert.ok(relativeError(g, expected[i]) < 1e-5, `output ${i}: ${relativeError(g, expected[i])}`));
});

// A small batch runs on the calling thread; a large one is split across the pool's threads on the shared heap.
// The last case's mean is 200 standard deviations from 0: a sum of squares would lose every digit of the
// variance, and float32 x itself carries relative errors near 1e-5 of the spread (in y, two passes gave 8e-5 and one 3e-5).
for (const [shape, spread, offset, tolerance] of [[[6, 5, 4, 7], 3, 1, 2e-5], [[16, 16, 16, 24], 3, 1, 2e-5], [[16, 16, 16, 24], 0.5, 100, 2e-4]] as const) test(`training batch norm of ${shape.join('×')} around ${offset}: outputs, moving statistics and gradients match tf.layers on the cpu backend`, async () => {
  const x = randomArray([...shape], 31), upstream = randomArray([...shape], 32);
  const run = () => {
    const layer = tf.layers.batchNormalization({ momentum: 0.9, epsilon: 1e-3, gammaInitializer: tf.initializers.constant({ value: 1.5 }), betaInitializer: tf.initializers.constant({ value: 0.25 }) });
    layer.build([null, ...shape.slice(1)]);
    const input = tf.tensor(x.values, x.shape).mul(spread).add(offset);
    const [gamma, beta] = layer.trainableWeights.map((v) => v.read());
    const f = (xi: tf.Tensor, _g: tf.Tensor, _b: tf.Tensor) => (layer.apply(xi, { training: true }) as tf.Tensor).mul(tf.tensor(upstream.values, upstream.shape)).sum();
    const y = layer.apply(input, { training: true }) as tf.Tensor;
    const { grads } = tf.variableGrads(() => f(input, gamma, beta) as tf.Scalar, layer.trainableWeights.map((v) => (v as unknown as { val: tf.Variable }).val));
    const dx = tf.grad((xi) => f(xi, gamma, beta))(input);
    return [y, dx, ...Object.values(grads), ...layer.nonTrainableWeights.map((v) => v.read())];
  };
  await initBackend('wasm');
  const got = tf.tidy(run).map((t) => t.dataSync());
  const expected = await onCpu(run);
  assert.equal(got.length, 6);
  ['y', 'dx', 'dgamma', 'dbeta', 'moving mean', 'moving variance'].forEach((name, i) =>
    assert.ok(relativeError(got[i], expected[i]) < tolerance, `${name}: relative error ${relativeError(got[i], expected[i])}`));
});

test('depthwise conv (forward, fused relu, dX, dW; stride, dilation) matches the cpu backend', async () => {
  const x = randomArray([2, 11, 10, 6], 41), w = randomArray([3, 3, 6, 1], 42), bias = randomArray([6], 43);
  const run = () => {
    const xt = tf.tensor4d(x.values, x.shape as [number, number, number, number]), wt = tf.tensor4d(w.values, w.shape as [number, number, number, number]);
    const out: tf.Tensor[] = [
      tf.depthwiseConv2d(xt, wt, 1, 'same', 'NHWC', [2, 2]),
      tf.fused.depthwiseConv2d({ x: xt, filter: wt, strides: 2, pad: 'valid', bias: tf.tensor(bias.values), activation: 'relu' }),
    ];
    for (const [stride, pad] of [[1, 'same'], [2, 'valid'], [2, 'same']] as const) {
      out.push(...tf.grads((a, b) => tf.depthwiseConv2d(a as tf.Tensor4D, b as tf.Tensor4D, stride, pad).square().sum())([xt, wt]));
    }
    return out;
  };
  await initBackend('wasm');
  const got = tf.tidy(run).map((t) => t.dataSync());
  const expected = await onCpu(run);
  got.forEach((g, i) => assert.ok(relativeError(g, expected[i]) < 1e-5, `output ${i}: ${relativeError(g, expected[i])}`));
});

test('ReLU\'s gradient is one kernel on wasm and matches the cpu backend, zeros included', async () => {
  const x = randomArray([4, 9, 7, 6], 51), upstream = randomArray([4, 9, 7, 6], 52);
  // Exact zeros in x: the gradient there is 0, as tfjs' step(0) = 0.
  for (let i = 0; i < x.values.length; i += 7) x.values[i] = 0;
  const run = () => [tf.grad((a) => tf.relu(a).mul(tf.tensor(upstream.values, upstream.shape)).sum())(tf.tensor(x.values, x.shape))];
  await initBackend('wasm');
  const profile = await tf.profile(() => { tf.dispose(run()); });
  const kernels = profile.kernels.map((k) => k.name);
  assert.ok(kernels.includes('PruneLensReluGrad') && !kernels.includes('Step'), kernels.join(' '));
  const got = tf.tidy(run).map((t) => t.dataSync());
  const expected = await onCpu(run);
  // Exactly equal (tfjs' multiply by a zero mask can give −0 where this gives 0; they are equal numbers).
  expected[0].forEach((v, i) => assert.ok(got[0][i] === v, `element ${i}: ${got[0][i]} vs ${v}`));
});

test('clip_by_value\'s gradient (ReLU6\'s cap) is one kernel on wasm and matches the cpu backend exactly, both bounds included', async () => {
  const x = randomArray([4, 9, 7, 6], 53), upstream = randomArray([4, 9, 7, 6], 54);
  // Values spread over [-12, 12], with exact 0s and 6s: the gradient passes at both bounds, as tfjs' greaterEqual and lessEqual.
  for (let i = 0; i < x.values.length; i++) x.values[i] = i % 11 === 0 ? 0 : i % 13 === 0 ? 6 : x.values[i] * 12;
  const run = () => [tf.grad((a) => tf.clipByValue(tf.relu(a), 0, 6).mul(tf.tensor(upstream.values, upstream.shape)).sum())(tf.tensor(x.values, x.shape)),
    tf.grad((a) => tf.clipByValue(a, -1.5, 2).mul(tf.tensor(upstream.values, upstream.shape)).sum())(tf.tensor(x.values, x.shape))];
  await initBackend('wasm');
  const profile = await tf.profile(() => { tf.dispose(run()); });
  const kernels = profile.kernels.map((k) => k.name);
  assert.ok(kernels.includes('PruneLensClipGrad') && !kernels.includes('LogicalAnd') && !kernels.includes('Select'), kernels.join(' '));
  const got = tf.tidy(run).map((t) => t.dataSync());
  const expected = await onCpu(run);
  expected.forEach((e, k) => e.forEach((v, i) => assert.ok(got[k][i] === v, `output ${k}, element ${i}: ${got[k][i]} vs ${v}`)));
});

test('the fused SGD-momentum update matches the same update composed of tfjs ops on the cpu backend', async () => {
  const w0 = randomArray([3, 3, 5, 7], 61), grads = [62, 63, 64].map((seed) => randomArray([3, 3, 5, 7], seed));
  const run = () => {
    const variable = tf.variable(tf.tensor(w0.values, w0.shape), true, 'conv/kernel');
    const optimizer = new Optimizer({ optimizer: 'sgd', momentum: 0.9, weightDecay: 5e-4 });
    for (const g of grads) optimizer.apply([{ variable, decay: true }], { 'conv/kernel': tf.tensor(g.values, g.shape) }, 0.05);
    const out = variable.clone();
    variable.dispose();
    optimizer.dispose();
    return [out];
  };
  await initBackend('wasm');
  assert.ok(tf.getKernel('PruneLensSgdMomentum', 'wasm'), 'the fused kernel is registered on wasm');
  const got = run().map((t) => t.dataSync());
  const expected = await onCpu(run);
  assert.ok(relativeError(got[0], expected[0]) < 1e-6, `relative error ${relativeError(got[0], expected[0])}`);
});

test('training on every core repeats exactly: the same seed gives bit-identical weights', async () => {
  await initBackend('wasm');
  assert.ok(backendInfo().threads > 1 || defaultThreads() === 1);
  // Large enough that convolutions, their gradients and batch norm run on every thread of the pool.
  const build = () => {
    const input = tf.input({ shape: [16, 16, 16] });
    let h = input as tf.SymbolicTensor;
    for (let i = 0; i < 2; i++) {
      h = tf.layers.conv2d({ filters: 16, kernelSize: 3, padding: 'same', useBias: false, kernelInitializer: tf.initializers.heNormal({ seed: 10 + i }) }).apply(h) as tf.SymbolicTensor;
      h = tf.layers.batchNormalization().apply(h) as tf.SymbolicTensor;
      h = tf.layers.reLU().apply(h) as tf.SymbolicTensor;
    }
    h = tf.layers.globalAveragePooling2d({}).apply(h) as tf.SymbolicTensor;
    return tf.model({ inputs: input, outputs: tf.layers.dense({ units: 4, activation: 'softmax', kernelInitializer: tf.initializers.glorotUniform({ seed: 20 }) }).apply(h) as tf.SymbolicTensor });
  };
  const train = async () => {
    const model = build();
    const data = await loadDataset({ format: 'synthetic', samples: 32 * 4, classes: 4, validationSplit: 0 }, process.cwd(), { inputShape: [16, 16, 16], classes: 4 }, 3);
    await trainModel(model, data, { epochs: 1, batchSize: 32, learningRate: 0.05, momentum: 0.9, weightDecay: 5e-4, optimizer: 'sgd', schedule: 'constant' }, {}, { seed: 5 });
    const weights = model.getWeights().map((w) => Array.from(w.dataSync()));
    model.dispose();
    return weights;
  };
  const first = await train();
  for (let run = 0; run < 3; run++) {
    const again = await train();
    again.forEach((w, i) => w.forEach((v, j) => assert.ok(Object.is(v, first[i][j]), `run ${run + 2}, weight ${i}[${j}]: ${v} vs ${first[i][j]}`)));
  }
});

test('a training step on the SIMD kernels leaks no tensors and no wasm heap', async () => {
  await initBackend('wasm');
  const model = buildDemoCnn();
  const data = await loadDataset({ format: 'synthetic', samples: 32 * 5, classes: 10, validationSplit: 0 }, process.cwd(), { inputShape: [28, 28, 1], classes: 10 }, 1);
  const tensors: number[] = [], bytes: number[] = [];
  await trainModel(model, data, { epochs: 1, batchSize: 32, learningRate: 0.01, momentum: 0.9, weightDecay: 0, optimizer: 'sgd', schedule: 'constant' }, {}, {
    seed: 1, onStep: () => { const m = tf.memory(); tensors.push(m.numTensors); bytes.push(m.numBytes); },
  });
  model.dispose();
  assert.equal(tensors.length, 5);
  assert.deepEqual(tensors.slice(1), Array(4).fill(tensors[1]), `tensors per step: ${tensors}`);
  assert.deepEqual(bytes.slice(1), Array(4).fill(bytes[1]), `bytes per step: ${bytes}`);
});
