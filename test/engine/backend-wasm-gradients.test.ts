import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend, backendInfo } from '../../src/engine/backend/index.js';
import { buildDemoCnn } from '../../src/engine/demo/model.js';
import { randomArray } from '../helpers/seeded.js';

type Stride = number | [number, number];
type Pad = 'same' | 'valid';

/** `reference`, when given, is how the stock cpu backend computes the expected values instead of `run`. */
interface Case { name: string; run: () => tf.Tensor[]; reference?: () => tf.Tensor[] }

const tensorOf = (a: { shape: number[]; values: Float32Array }) => tf.tensor(a.values, a.shape);

function convCases(): Case[] {
  const cases: Case[] = [];
  const kernels: Array<[number, number]> = [[1, 1], [3, 3], [5, 5], [3, 2]];
  const strides: Stride[] = [1, 2, [2, 1]];
  const pads: Pad[] = ['same', 'valid'];
  const inputs: Array<[number, number, number, number, number]> = [[2, 9, 8, 3, 4], [3, 11, 7, 5, 6]];
  let seed = 1;
  for (const [kh, kw] of kernels) for (const stride of strides) for (const pad of pads) for (const [n, h, w, ci, co] of inputs) {
    const x = randomArray([n, h, w, ci], seed++);
    const filter = randomArray([kh, kw, ci, co], seed++);
    const probeShape = tf.tidy(() => tf.conv2d(tensorOf(x) as tf.Tensor4D, tf.zeros([kh, kw, ci, co]) as tf.Tensor4D, stride, pad).shape);
    const weights = randomArray(probeShape, seed++);
    cases.push({
      name: `conv2d x=${[n, h, w, ci]} k=${kh}x${kw} co=${co} stride=${stride} pad=${pad}`,
      run: () => tf.grads((a, b) => tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, stride, pad).mul(tensorOf(weights)).sum())(
        [tensorOf(x), tensorOf(filter)]),
    });
  }
  // A ResNet-sized layer, where the fast paths matter.
  const x = randomArray([8, 32, 32, 16], 900), f = randomArray([3, 3, 16, 32], 901), r = randomArray([8, 16, 16, 32], 902);
  cases.push({ name: 'conv2d resnet-size stride 2', run: () => tf.grads((a, b) => tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 2, 'same').mul(tensorOf(r)).sum())([tensorOf(x), tensorOf(f)]) });
  // Fused conv (bias + relu), as tf.layers conv2d uses.
  const fx = randomArray([2, 8, 8, 3], 910), fw = randomArray([3, 3, 3, 4], 911), fb = randomArray([4], 912);
  cases.push({
    name: 'fused conv2d bias+relu',
    run: () => tf.grads((a, b, c) => tf.fused.conv2d({ x: a as tf.Tensor4D, filter: b as tf.Tensor4D, bias: c, strides: 1, pad: 'same', activation: 'relu' }).sum())(
      [tensorOf(fx), tensorOf(fw), tensorOf(fb)]),
  });
  return cases;
}

function depthwiseCases(): Case[] {
  const cases: Case[] = [];
  let seed = 5000;
  for (const [kh, kw] of [[1, 1], [3, 3], [5, 5], [3, 2]] as Array<[number, number]>) for (const stride of [1, 2] as Stride[])
    for (const pad of ['same', 'valid'] as Pad[]) for (const multiplier of [1, 2]) {
      const x = randomArray([2, 9, 8, 3], seed++);
      const filter = randomArray([kh, kw, 3, multiplier], seed++);
      const outShape = tf.tidy(() => tf.depthwiseConv2d(tensorOf(x) as tf.Tensor4D, tf.zeros([kh, kw, 3, multiplier]) as tf.Tensor4D, stride, pad).shape);
      const weights = randomArray(outShape, seed++);
      cases.push({
        name: `depthwise k=${kh}x${kw} m=${multiplier} stride=${stride} pad=${pad}`,
        run: () => tf.grads((a, b) => tf.depthwiseConv2d(a as tf.Tensor4D, b as tf.Tensor4D, stride, pad).mul(tensorOf(weights)).sum())(
          [tensorOf(x), tensorOf(filter)]),
      });
    }
  // Dilated depthwise: tfjs has no gradient for it (and the stock cpu kernels ignore the dilation), so the
  // kernels are called directly and compared with the gradients of an undilated conv with a zero-dilated filter.
  for (const dilation of [2, 3]) {
    const x = randomArray([2, 12, 11, 3], seed++);
    const filterShape = [3, 3, 3, 2];
    const dyShape = tf.tidy(() => tf.depthwiseConv2d(tensorOf(x) as tf.Tensor4D, tf.zeros<tf.Rank>(filterShape) as tf.Tensor4D, 1, 'same', 'NHWC', [dilation, dilation]).shape);
    const dy = randomArray(dyShape, seed++), filter = randomArray(filterShape, seed++);
    const attrs = { strides: [1, 1], dilations: [dilation, dilation], pad: 'same', dimRoundingMode: undefined };
    const span = 2 * dilation + 1;
    const dilated = { shape: [span, span, 3, 2], values: new Float32Array(span * span * 6) };
    for (let r = 0; r < 3; r++) for (let c = 0; c < 3; c++) for (let k = 0; k < 6; k++) {
      dilated.values[((r * dilation) * span + c * dilation) * 6 + k] = filter.values[(r * 3 + c) * 6 + k];
    }
    cases.push({
      name: `depthwise backprop kernels, dilation ${dilation}`,
      run: () => [
        tf.engine().runKernel('DepthwiseConv2dNativeBackpropInput', { dy: tensorOf(dy), filter: tensorOf(filter) }, { ...attrs, inputShape: x.shape } as never) as tf.Tensor,
        tf.engine().runKernel('DepthwiseConv2dNativeBackpropFilter', { x: tensorOf(x), dy: tensorOf(dy) }, { ...attrs, filterShape } as never) as tf.Tensor,
      ],
      reference: () => {
        const [dx, dDilated] = tf.grads((a, b) => tf.depthwiseConv2d(a as tf.Tensor4D, b as tf.Tensor4D, 1, 'same').mul(tensorOf(dy)).sum())(
          [tensorOf(x), tensorOf(dilated)]);
        return [dx, tf.stridedSlice(dDilated, [0, 0, 0, 0], [span, span, 3, 2], [dilation, dilation, 1, 1])];
      },
    });
  }
  const sx = randomArray([2, 8, 8, 3], 7000), sd = randomArray([3, 3, 3, 2], 7001), sp = randomArray([1, 1, 6, 5], 7002);
  cases.push({
    name: 'separableConv2d',
    run: () => tf.grads((a, b, c) => tf.separableConv2d(a as tf.Tensor4D, b as tf.Tensor4D, c as tf.Tensor4D, 1, 'same').square().sum())(
      [tensorOf(sx), tensorOf(sd), tensorOf(sp)]),
  });
  return cases;
}

/**
 * Shapes real networks have at 224×224 (nsfwjs' MobileNetV2): the stem's 3×3 stride-2 convolution
 * after an asymmetric ZeroPadding ((0,1),(0,1)), a depthwise 3×3 stride 2 on 112×112×96, and 1×1
 * convolutions with 960 input channels at the micro-batch sizes the memory plan picks (11).
 */
function realNetworkCases(): Case[] {
  const cases: Case[] = [];
  const stem = randomArray([2, 224, 224, 3], 9700), stemFilter = randomArray([3, 3, 3, 32], 9701), stemDy = randomArray([2, 112, 112, 32], 9702);
  cases.push({
    name: 'stem conv 3×3 stride 2 valid after ZeroPadding((0,1),(0,1)), 224×224×3',
    run: () => tf.grads((a, b) => tf.conv2d(tf.pad(a as tf.Tensor4D, [[0, 0], [0, 1], [0, 1], [0, 0]]), b as tf.Tensor4D, 2, 'valid').mul(tensorOf(stemDy)).sum())(
      [tensorOf(stem), tensorOf(stemFilter)]),
  });
  const dx = randomArray([2, 112, 112, 96], 9710), dwFilter = randomArray([3, 3, 96, 1], 9711), dwDy = randomArray([2, 56, 56, 96], 9712);
  cases.push({
    name: 'depthwise 3×3 stride 2 valid after ZeroPadding((0,1),(0,1)), 112×112×96',
    run: () => tf.grads((a, b) => tf.depthwiseConv2d(tf.pad(a as tf.Tensor4D, [[0, 0], [0, 1], [0, 1], [0, 0]]), b as tf.Tensor4D, 2, 'valid').mul(tensorOf(dwDy)).sum())(
      [tensorOf(dx), tensorOf(dwFilter)]),
  });
  for (const [ci, co] of [[960, 160], [960, 320]]) {
    const x = randomArray([11, 7, 7, ci], 9720 + co), f = randomArray([1, 1, ci, co], 9721 + co), dy = randomArray([11, 7, 7, co], 9722 + co);
    cases.push({
      name: `1×1 conv ${ci}→${co} on 11×7×7`,
      run: () => tf.grads((a, b) => tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 1, 'same').mul(tensorOf(dy)).sum())([tensorOf(x), tensorOf(f)]),
    });
  }
  return cases;
}

function batchNormCases(): Case[] {
  // Training-mode batch norm as tf.layers computes it: moments of the batch, then tf.batchNorm.
  const cases: Case[] = [];
  let seed = 9000;
  // (Without a scale tfjs 4.22 cannot differentiate batchNorm at all: it saves the missing input.)
  for (const shape of [[4, 5, 5, 6], [8, 6]]) {
    const x = randomArray(shape, seed++), gamma = randomArray([6], seed++), beta = randomArray([6], seed++), weights = randomArray(shape, seed++);
    cases.push({
      name: `batchNorm over ${shape} (PruneLens gradient vs stock)`,
      run: () => tf.grads((a, g, b) => {
        const { mean, variance } = tf.moments(a, Array.from({ length: shape.length - 1 }, (_, i) => i));
        return tf.batchNorm(a, mean, variance, b, g, 1e-3).mul(tensorOf(weights)).sum();
      })([tensorOf(x), tensorOf(gamma), tensorOf(beta)]),
    });
  }
  return cases;
}

function poolCases(): Case[] {
  const cases: Case[] = [];
  let seed = 9500;
  for (const [size, stride, pad] of [[2, 2, 'valid'], [3, 2, 'same'], [3, 1, 'same'], [2, 1, 'valid']] as Array<[number, number, Pad]>) {
    // Few distinct values (like uint8 pixels): tied windows must send their gradient to the first maximum, as cpu and TensorFlow do.
    const x = randomArray([3, 9, 8, 4], seed++);
    x.values.forEach((v, i) => { x.values[i] = Math.round(v * 4) / 4; });
    const outShape = tf.tidy(() => tf.maxPool(tensorOf(x) as tf.Tensor4D, size, stride, pad).shape);
    const weights = randomArray(outShape, seed++);
    cases.push({
      name: `maxPool ${size}x${size} stride ${stride} ${pad} with ties`,
      run: () => [tf.grad((a) => tf.maxPool(a as tf.Tensor4D, size, stride, pad).mul(tensorOf(weights)).sum())(tensorOf(x))],
    });
  }
  return cases;
}

function otherCases(): Case[] {
  const table = randomArray([6, 5], 8000);
  return [{
    name: 'gather (UnsortedSegmentSum)',
    run: () => [tf.grad((t) => tf.gather(t, tf.tensor1d([0, 3, 3, 5, 0], 'int32')).mul(tf.range(1, 26).reshape([5, 5])).sum())(tensorOf(table))],
  }];
}

function relativeError(actual: Float32Array, expected: Float32Array): number {
  let maxDiff = 0, maxRef = 1e-12;
  for (let i = 0; i < expected.length; i++) {
    maxDiff = Math.max(maxDiff, Math.abs(actual[i] - expected[i]));
    maxRef = Math.max(maxRef, Math.abs(expected[i]));
  }
  return maxDiff / maxRef;
}

function evaluate(cases: Case[], asReference = false): Float32Array[][] {
  return cases.map((c) => {
    const grads = tf.tidy(() => (asReference && c.reference ? c.reference() : c.run())); // inputs and intermediates freed here
    const values = grads.map((g) => g.dataSync() as Float32Array);
    tf.dispose(grads);
    return values;
  });
}

/** Gradients of every trainable weight of the demo CNN (conv, BN, pooling, dense) for one training-mode batch. */
function demoCnnGradients(weights: Float32Array[] | undefined): { weights: Float32Array[]; grads: Float32Array[] } {
  const model = buildDemoCnn({ seed: 3 });
  if (weights) model.setWeights(weights.map((w, i) => tf.tensor(w, model.getWeights()[i].shape)));
  const x = tensorOf(randomArray([8, 28, 28, 1], 77)).abs();
  const y = tf.oneHot(tf.tensor1d([0, 1, 2, 3, 4, 5, 6, 7], 'int32'), 10);
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const { value, grads } = tf.variableGrads(() => tf.losses.softmaxCrossEntropy(y, tf.log(model.apply(x, { training: true }) as tf.Tensor)) as tf.Scalar, vars);
  const result = { weights: model.getWeights().map((w) => w.dataSync() as Float32Array), grads: vars.map((v) => grads[v.name].dataSync() as Float32Array) };
  tf.dispose([x, y, value, ...Object.values(grads)]);
  model.dispose();
  return result;
}

test('every PruneLens wasm gradient kernel (and the batch-norm gradient) matches the stock cpu backend', async () => {
  const cases = [...convCases(), ...depthwiseCases(), ...realNetworkCases(), ...batchNormCases(), ...poolCases(), ...otherCases()];
  await tf.setBackend('cpu'); // stock kernels: nothing is patched before initBackend
  const reference = evaluate(cases, true);
  assert.equal(await initBackend('wasm'), 'wasm');
  assert.equal(backendInfo().simd, true);
  const before = tf.memory().numTensors;
  const actual = evaluate(cases);
  assert.equal(tf.memory().numTensors, before, 'kernels leak no tensors');
  const failures: string[] = [];
  cases.forEach((c, i) => {
    reference[i].forEach((ref, j) => {
      assert.equal(actual[i][j].length, ref.length, `${c.name}: gradient ${j} size`);
      const err = relativeError(actual[i][j], ref);
      if (!(err <= 1e-4)) failures.push(`${c.name} gradient ${j}: relative error ${err.toExponential(2)}`);
    });
  });
  assert.deepEqual(failures, []);
});

test('a whole training-mode backward pass of the demo CNN on wasm matches the cpu backend', async () => {
  await tf.setBackend('cpu'); // stock cpu kernels; the batch-norm gradient (checked above) is shared
  const reference = demoCnnGradients(undefined);
  await initBackend('wasm');
  const actual = demoCnnGradients(reference.weights);
  assert.equal(actual.grads.length, reference.grads.length);
  // A conv bias right before batch norm has a gradient of zero up to rounding: it is held to an absolute bound.
  const scale = Math.max(...reference.grads.map((g) => g.reduce((m, v) => Math.max(m, Math.abs(v)), 0)));
  actual.grads.forEach((g, i) => {
    let maxDiff = 0, maxRef = 0;
    g.forEach((v, j) => { maxDiff = Math.max(maxDiff, Math.abs(v - reference.grads[i][j])); maxRef = Math.max(maxRef, Math.abs(reference.grads[i][j])); });
    if (maxRef < 1e-3 * scale) assert.ok(maxDiff < 1e-5 * scale, `weight ${i} (≈0): error ${(maxDiff / scale).toExponential(2)} of the gradient scale`);
    else assert.ok(maxDiff / maxRef < 1e-4, `weight ${i}: relative error ${(maxDiff / maxRef).toExponential(2)}`);
  });
});

test('a small layers CNN with batch norm, pooling, dropout and depthwise convs trains on wasm', async () => {
  await initBackend('wasm');
  const input = tf.input({ shape: [12, 12, 1] });
  let h = tf.layers.conv2d({ filters: 8, kernelSize: 3, padding: 'same', kernelInitializer: tf.initializers.heNormal({ seed: 1 }) }).apply(input) as tf.SymbolicTensor;
  h = tf.layers.batchNormalization().apply(h) as tf.SymbolicTensor;
  h = tf.layers.reLU().apply(h) as tf.SymbolicTensor;
  h = tf.layers.maxPooling2d({ poolSize: 2 }).apply(h) as tf.SymbolicTensor;
  h = tf.layers.depthwiseConv2d({ kernelSize: 3, padding: 'same', depthwiseInitializer: tf.initializers.heNormal({ seed: 2 }) }).apply(h) as tf.SymbolicTensor;
  h = tf.layers.conv2d({ filters: 8, kernelSize: 3, strides: 2, padding: 'same', activation: 'relu', kernelInitializer: tf.initializers.heNormal({ seed: 3 }) }).apply(h) as tf.SymbolicTensor;
  h = tf.layers.averagePooling2d({ poolSize: 3 }).apply(h) as tf.SymbolicTensor;
  h = tf.layers.flatten().apply(h) as tf.SymbolicTensor;
  h = tf.layers.dropout({ rate: 0.2 }).apply(h) as tf.SymbolicTensor;
  const out = tf.layers.dense({ units: 2, activation: 'softmax', kernelInitializer: tf.initializers.glorotUniform({ seed: 4 }) }).apply(h) as tf.SymbolicTensor;
  const model = tf.model({ inputs: input, outputs: out });
  // Class 1 has a bright square in the top-left corner.
  const labels = Array.from({ length: 32 }, (_, i) => i % 2);
  const xs = tf.tidy(() => {
    const noise = tensorOf(randomArray([32, 12, 12, 1], 42)).mul(0.2);
    const square = tf.pad(tf.ones([4, 4, 1]), [[1, 7], [1, 7], [0, 0]]);
    return noise.add(tf.stack(labels.map((l) => square.mul(l))));
  });
  const ys = tf.oneHot(tf.tensor1d(labels, 'int32'), 2);
  const optimizer = tf.train.adam(0.02);
  const losses: number[] = [];
  for (let step = 0; step < 25; step++) {
    const loss = optimizer.minimize(() => tf.losses.softmaxCrossEntropy(ys, tf.log((model.apply(xs, { training: true }) as tf.Tensor).add(1e-7))), true) as tf.Scalar;
    losses.push(loss.dataSync()[0]);
    loss.dispose();
  }
  assert.ok(losses[losses.length - 1] < 0.5 * losses[0], `loss fell: ${losses[0].toFixed(3)} → ${losses[losses.length - 1].toFixed(3)}`);
  tf.dispose([xs, ys]);
  optimizer.dispose();
  model.dispose();
});
