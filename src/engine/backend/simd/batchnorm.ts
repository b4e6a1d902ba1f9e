/**
 * Training-mode batch normalisation as one kernel forward and one backward, working in place on
 * the wasm backend's heap. tf.layers computes it as tf.moments plus tf.batchNorm, about a dozen
 * full passes over the activation with their gradients; that was a third of a ResNet-20 step once
 * the convolutions were fast. BatchNormalization layers use it when training on wasm with the
 * channels last; everything else keeps tf.layers' own code.
 */
import * as tf from '@tensorflow/tfjs';
import type { KernelFunc, NamedAttrMap, Tensor, TensorInfo } from '@tensorflow/tfjs';
import { heapOffset as at, type HeapBackend, type InPlaceKernels } from './inplace.js';
import type { KernelPool } from './pool.js';
import { HeapScratch } from './workspace.js';
import { argInts, writeArgs } from './kernel-args.js';
import { markActivated, reluFollows } from './fusion.js';
import { layerClassPrototype } from '../../util/layer-classes.js';
import { classNameOf } from '../../layers/index.js';

export const BATCHNORM_TRAINING = 'PruneLensBatchNormTraining';
export const BATCHNORM_TRAINING_GRAD = 'PruneLensBatchNormTrainingGrad';
export const MOVING_AVERAGE = 'PruneLensMovingAverage';

let installed = false;

// Below this many elements a batch norm runs on the calling thread alone: waking workers costs more.
const PARALLEL_MIN_ELEMENTS = 65536;

/**
 * Registers the kernels and routes BatchNormalization's training path to them. With a pool on the
 * shared heap, large batch norms are split across its threads; otherwise the in-place kernels run on one.
 */
export function installTrainingBatchNorm(kernels: InPlaceKernels, pool?: KernelPool): void {
  if (installed) return;
  installed = true;
  const threadedPool = pool?.sharesHeap && pool.threads > 1 ? pool : undefined;

  // Outputs y (with attrs.relu 1 ReLU'd, 2 ReLU6'd), the batch mean and variance, and scale = γ/σ: the backward
  // pass of a fused ReLU recomputes y from x with exactly this scale to find where y was positive.
  const forward: KernelFunc = ({ inputs, backend: b, attrs }) => {
    const be = b as unknown as HeapBackend;
    const { x, gamma, beta } = inputs as { x: TensorInfo; gamma: TensorInfo; beta: TensorInfo };
    const channels = x.shape[x.shape.length - 1], rows = x.shape.reduce((a, d) => a * d, 1) / channels;
    const { epsilon, relu = 0 } = attrs as { epsilon: number; relu?: number };
    const y = be.makeOutput(x.shape, 'float32');
    const [mean, variance, scale] = [0, 1, 2].map(() => be.makeOutput([channels], 'float32'));
    if (threadedPool && rows * channels >= PARALLEL_MIN_ELEMENTS) {
      threadedForward(threadedPool, be, rows, channels, { x, gamma, beta, y, mean, variance, scale }, epsilon, relu);
      return [y, mean, variance, scale];
    }
    const temp = be.makeOutput([2 * channels], 'float32');
    kernels.batchnorm_forward(rows, channels, at(be, x), at(be, gamma), at(be, beta), at(be, y), at(be, mean), at(be, variance),
      at(be, scale), relu, at(be, temp), epsilon);
    be.disposeData(temp.dataId);
    return [y, mean, variance, scale];
  };
  // With attrs.relu, dy is the gradient of the ReLU's output and inputs also hold beta and the forward's scale.
  const backward: KernelFunc = ({ inputs, backend: b, attrs }) => {
    const be = b as unknown as HeapBackend;
    const { dy, x, gamma, mean, variance, beta, scale } = inputs as Record<string, TensorInfo>;
    const channels = x.shape[x.shape.length - 1], rows = x.shape.reduce((a, d) => a * d, 1) / channels;
    const { epsilon, relu = 0 } = attrs as { epsilon: number; relu?: number };
    const mask = relu ? { scale: at(be, scale), beta: at(be, beta), cap: relu } : { scale: 0, beta: 0, cap: 0 };
    const dx = be.makeOutput(x.shape, 'float32'), dgamma = be.makeOutput([channels], 'float32'), dbeta = be.makeOutput([channels], 'float32');
    if (threadedPool && rows * channels >= PARALLEL_MIN_ELEMENTS) {
      threadedBackward(threadedPool, be, rows, channels, { dy, x, gamma, mean, variance, dx, dgamma, dbeta }, mask, epsilon);
      return [dx, dgamma, dbeta];
    }
    const temp = be.makeOutput([3 * channels], 'float32');
    kernels.batchnorm_backward(rows, channels, at(be, dy), at(be, x), at(be, gamma), at(be, mean), at(be, variance), mask.scale, mask.beta,
      at(be, dx), at(be, dgamma), at(be, dbeta), at(be, temp), epsilon, mask.cap);
    be.disposeData(temp.dataId);
    return [dx, dgamma, dbeta];
  };
  tf.registerKernel({ kernelName: BATCHNORM_TRAINING, backendName: 'wasm', kernelFunc: forward });
  tf.registerKernel({ kernelName: BATCHNORM_TRAINING_GRAD, backendName: 'wasm', kernelFunc: backward });
  // Both moving statistics in one kernel (a few hundred floats), with tfjs' float32 rounding step by step:
  // tf.layers takes three ops for each, six kernel calls a layer a step.
  tf.registerKernel({
    kernelName: MOVING_AVERAGE, backendName: 'wasm', kernelFunc: (({ inputs, backend: b, attrs }) => {
      const be = b as unknown as HeapBackend;
      const decay = Math.fround((attrs as { decay: number }).decay);
      const { movingMean, movingVariance, mean, variance } = inputs as Record<string, TensorInfo>;
      return [[movingMean, mean], [movingVariance, variance]].map(([moving, batch]) => {
        const out = be.makeOutput(moving.shape, 'float32');
        const current = be.typedArrayFromHeap(moving), value = be.typedArrayFromHeap(batch), next = be.typedArrayFromHeap(out);
        for (let c = 0; c < next.length; c++) next[c] = Math.fround(current[c] - Math.fround(Math.fround(current[c] - value[c]) * decay));
        return out;
      });
    }) as KernelFunc,
  });
  tf.registerGradient({
    kernelName: BATCHNORM_TRAINING,
    inputsToSave: ['x', 'gamma', 'beta'],
    outputsToSave: [false, true, true, true],
    gradFunc: (dys: Tensor | Tensor[], saved: Tensor[], attrs: NamedAttrMap) => {
      const dy = Array.isArray(dys) ? dys[0] : dys;
      const [x, gamma, beta, mean, variance, scale] = saved;
      const [dx, dgamma, dbeta] = tf.engine().runKernel(BATCHNORM_TRAINING_GRAD, { dy, x, gamma, mean, variance, beta, scale }, attrs) as Tensor[];
      return { x: () => dx, gamma: () => dgamma, beta: () => dbeta };
    },
  });
  routeBatchNormalization();
}

interface BatchNormLayer {
  axis: number; epsilon: number; momentum: number;
  gamma: { read(): Tensor } | null; beta: { read(): Tensor } | null;
  movingMean: { read(): Tensor; write(t: Tensor): void }; movingVariance: { read(): Tensor; write(t: Tensor): void };
}

/** The training path of tf.layers' BatchNormalization.call, with the moments and normalisation in one kernel. */
function routeBatchNormalization(): void {
  const prototype = layerClassPrototype<{ call(inputs: Tensor | Tensor[], kwargs: Record<string, unknown>): Tensor }>(classNameOf('batch-norm'));
  if (!prototype) return;
  const original = prototype.call;
  prototype.call = function (this: BatchNormLayer, inputs: Tensor | Tensor[], kwargs: Record<string, unknown>) {
    const input = Array.isArray(inputs) ? inputs[0] : inputs;
    const axis = this.axis >= 0 ? this.axis : this.axis + input.rank;
    if (!kwargs?.training || tf.getBackend() !== 'wasm' || !this.gamma || !this.beta || input.dtype !== 'float32' || axis !== input.rank - 1) {
      return original.call(this, inputs, kwargs);
    }
    const relu = reluFollows(this);
    const normed = tf.tidy(() => {
      const [normed, mean, variance] = tf.engine().runKernel(BATCHNORM_TRAINING,
        { x: input, gamma: this.gamma!.read(), beta: this.beta!.read() }, { epsilon: this.epsilon, relu }) as Tensor[];
      // Moving statistics exactly as tf.layers updates them: m − (m − batch)·(1 − momentum).
      const [movingMean, movingVariance] = tf.engine().runKernel(MOVING_AVERAGE,
        { movingMean: this.movingMean.read(), movingVariance: this.movingVariance.read(), mean, variance }, { decay: 1 - this.momentum }) as Tensor[];
      this.movingMean.write(movingMean);
      this.movingVariance.write(movingVariance);
      return normed;
    });
    return relu ? markActivated(normed, relu) : normed;
  };
}

/** Per channel, the sum over threads of their partials (`stride` floats apart from `partials`, plus `offset`), over rows. */
function combine(mem: Float32Array, partials: number, threads: number, channels: number, stride: number, rows: number, offset = 0): Float64Array {
  const out = new Float64Array(channels);
  for (let t = 0; t < threads; t++) {
    const base = partials / 4 + t * stride + offset;
    for (let c = 0; c < channels; c++) out[c] += mem[base + c];
  }
  for (let c = 0; c < channels; c++) out[c] /= rows;
  return out;
}

function threadedForward(pool: KernelPool, be: HeapBackend, rows: number, channels: number,
  t: { x: TensorInfo; gamma: TensorInfo; beta: TensorInfo; y: TensorInfo; mean: TensorInfo; variance: TensorInfo; scale: TensorInfo },
  epsilon: number, relu: number): void {
  const threads = pool.threads;
  const s = new HeapScratch(be);
  const args = s.alloc(Math.max(argInts('MomentsArgs'), argInts('NormalizeRowsArgs'))), partials = s.alloc(threads * 4 * channels), scale = at(be, t.scale);
  try {
    writeArgs(pool.ints(), args, 'MomentsArgs', { rows, channels, src: at(be, t.x), partials });
    pool.run('moments_job', args, threads);
    // Each thread's mean and m2 over its share of the rows (split() in kernels.c), merged in order as moments() merges blocks.
    const mem = pool.floats(), mean = new Float64Array(channels), m2 = new Float64Array(channels);
    for (let thread = 0, seen = 0; thread < threads; thread++) {
      const n = Math.floor(rows / threads) + (thread < rows % threads ? 1 : 0), base = partials / 4 + thread * 4 * channels;
      if (n === 0) continue;
      const weight = n / (seen + n);
      for (let c = 0; c < channels; c++) {
        const delta = mem[base + c] - mean[c];
        mean[c] += delta * weight;
        m2[c] += mem[base + channels + c] + delta * delta * seen * weight;
      }
      seen += n;
    }
    const gamma = at(be, t.gamma) / 4;
    mem.set(mean, at(be, t.mean) / 4);
    for (let c = 0; c < channels; c++) {
      const variance = m2[c] / rows;
      mem[at(be, t.variance) / 4 + c] = variance;
      mem[scale / 4 + c] = mem[gamma + c] / Math.sqrt(variance + epsilon);
    }
    writeArgs(pool.ints(), args, 'NormalizeRowsArgs',
      { rows, channels, x: at(be, t.x), mean: at(be, t.mean), scale, beta: at(be, t.beta), y: at(be, t.y), next: 0, relu });
    pool.run('normalize_rows_job', args, threads);
  } finally {
    s.release();
  }
}

function threadedBackward(pool: KernelPool, be: HeapBackend, rows: number, channels: number,
  t: { dy: TensorInfo; x: TensorInfo; gamma: TensorInfo; mean: TensorInfo; variance: TensorInfo; dx: TensorInfo; dgamma: TensorInfo; dbeta: TensorInfo },
  mask: { scale: number; beta: number; cap: number }, epsilon: number): void {
  const threads = pool.threads;
  const s = new HeapScratch(be);
  const args = s.alloc(Math.max(argInts('GradientSumsArgs'), argInts('GradientRowsArgs'))), partials = s.alloc(threads * 2 * channels);
  const k1 = s.alloc(channels), k3 = s.alloc(channels), shift = s.alloc(channels);
  try {
    writeArgs(pool.ints(), args, 'GradientSumsArgs',
      { rows, channels, dy: at(be, t.dy), x: at(be, t.x), mean: at(be, t.mean), partials, scale: mask.scale, beta: mask.beta, cap: mask.cap });
    pool.run('gradient_sums_job', args, threads);
    const mem = pool.floats();
    // Per-row means of dy and dy·(x − μ): dβ and dγ·σ are rows times them (batchnorm_backward in kernels.c).
    const dyMean = combine(mem, partials, threads, channels, 2 * channels, rows);
    const dyxMean = combine(mem, partials, threads, channels, 2 * channels, rows, channels);
    const gamma = at(be, t.gamma) / 4, variance = at(be, t.variance) / 4;
    for (let c = 0; c < channels; c++) {
      const invStd = 1 / Math.sqrt(mem[variance + c] + epsilon);
      const dgamma = dyxMean[c] * rows * invStd;
      mem[at(be, t.dbeta) / 4 + c] = dyMean[c] * rows;
      mem[at(be, t.dgamma) / 4 + c] = dgamma;
      mem[k1 / 4 + c] = mem[gamma + c] * invStd;
      mem[k3 / 4 + c] = mem[gamma + c] * invStd * dgamma * invStd / rows;
      mem[shift / 4 + c] = dyMean[c];
    }
    writeArgs(pool.ints(), args, 'GradientRowsArgs', {
      rows, channels, dy: at(be, t.dy), x: at(be, t.x), mean: at(be, t.mean), k1, k3, shift, dx: at(be, t.dx), next: 0, scale: mask.scale, beta: mask.beta, cap: mask.cap,
    });
    pool.run('gradient_rows_job', args, threads);
  } finally {
    s.release();
  }
}
