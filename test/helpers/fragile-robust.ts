import * as tf from '@tensorflow/tfjs';
import { makeDataset } from '../../src/engine/data/dataset.js';
import type { Dataset } from '../../src/engine/train/types.js';
import { randomArray } from './seeded.js';

export const FRAGILE_ROBUST_SAMPLE = [4, 4, 8];
const WIDTH = 8;
const CLASSES = 4;
const COUNT = 256;

/**
 * input → stem (1×1 conv, identity) ─────────────────┐
 *           └→ inner (1×1 conv, relu) → tail (1×1 conv, ×0.01) → add → average pool → head (softmax)
 * stem and tail are one coupled group (the add ties them): its channels carry the class. inner's
 * group only reaches the output through tail's tiny weights: near-redundant.
 * `robustScale` k multiplies inner's kernel by k and divides tail's by k: the same function (ReLU is
 * positively homogeneous and the biases are zero), but the robust group's weights k times larger.
 */
export function buildFragileAndRobust(options: { robustScale?: number } = {}): tf.LayersModel {
  const k = options.robustScale ?? 1;
  const input = tf.input({ shape: FRAGILE_ROBUST_SAMPLE });
  const conv = (name: string, activation: 'linear' | 'relu') => tf.layers.conv2d({ name, filters: WIDTH, kernelSize: 1, activation });
  const stem = conv('stem', 'linear').apply(input) as tf.SymbolicTensor;
  const inner = conv('inner', 'relu').apply(stem) as tf.SymbolicTensor;
  const tail = conv('tail', 'linear').apply(inner) as tf.SymbolicTensor;
  const sum = tf.layers.add({ name: 'add' }).apply([stem, tail]) as tf.SymbolicTensor;
  const pooled = tf.layers.globalAveragePooling2d({ name: 'pool' }).apply(sum) as tf.SymbolicTensor;
  const head = tf.layers.dense({ name: 'head', units: CLASSES, activation: 'softmax' }).apply(pooled) as tf.SymbolicTensor;
  const model = tf.model({ inputs: input, outputs: head, name: k === 1 ? 'fragile-and-robust' : `fragile-and-robust-x${k}` });
  const set = (layer: string, kernel: tf.Tensor) => model.getLayer(layer).setWeights([kernel, tf.zeros([kernel.shape[kernel.shape.length - 1]!])]);
  const random = (shape: number[], seed: number, scale: number) => tf.mul(tf.tensor(randomArray(shape, seed).values, shape), scale);
  set('stem', tf.eye(WIDTH).reshape([1, 1, WIDTH, WIDTH]));
  set('inner', random([1, 1, WIDTH, WIDTH], 11, 2 * k));
  set('tail', random([1, 1, WIDTH, WIDTH], 12, 0.01 / k));
  set('head', random([WIDTH, CLASSES], 13, 40));
  return model;
}

/** Samples labelled by the model itself: the dense model is right on every one, and the labels follow the stem's channels. */
export function labelledBy(model: tf.LayersModel): Dataset {
  const size = FRAGILE_ROBUST_SAMPLE.reduce((a, b) => a * b, 1);
  const x = randomArray([COUNT, ...FRAGILE_ROBUST_SAMPLE], 5).values;
  const labels = tf.tidy(() => (model.predict(tf.tensor(x, [COUNT, ...FRAGILE_ROBUST_SAMPLE])) as tf.Tensor).argMax(-1).dataSync() as Int32Array);
  const source = { count: COUNT, fill: (i: number, out: Float32Array, offset: number) => out.set(x.subarray(i * size, (i + 1) * size), offset), label: (i: number) => labels[i] };
  const all = Int32Array.from({ length: COUNT }, (_, i) => i);
  return makeDataset({ sampleShape: FRAGILE_ROBUST_SAMPLE, classes: CLASSES, description: 'planted', train: { source, indices: all }, validation: { source, indices: all }, seed: 1 });
}

/**
 * Two private blocks, for methods that prune only producer→consumer blocks (i-SpaSP):
 * input → fragile (1×1 conv, identity) → robust (1×1 conv) → average pool → head (softmax).
 * Every fragile channel carries an input channel the robust layer's first half mixes into the
 * class scores; the robust layer's second half has tiny weights in and out (its lowest-L2 channels,
 * near-redundant). Both groups are 8 wide; a fragile channel costs about twice a robust one's FLOPs.
 */
export function buildFragileAndRobustBlocks(): tf.LayersModel {
  const input = tf.input({ shape: FRAGILE_ROBUST_SAMPLE });
  const conv = (name: string) => tf.layers.conv2d({ name, filters: WIDTH, kernelSize: 1 });
  const fragile = conv('fragile').apply(input) as tf.SymbolicTensor;
  const robust = conv('robust').apply(fragile) as tf.SymbolicTensor;
  const pooled = tf.layers.globalAveragePooling2d({ name: 'pool' }).apply(robust) as tf.SymbolicTensor;
  const head = tf.layers.dense({ name: 'head', units: CLASSES, activation: 'softmax' }).apply(pooled) as tf.SymbolicTensor;
  const model = tf.model({ inputs: input, outputs: head, name: 'fragile-and-robust-blocks' });
  const half = WIDTH / 2;
  const random = (shape: number[], seed: number, scale: number) => tf.mul(tf.tensor(randomArray(shape, seed).values, shape), scale);
  // The second half of the robust layer's channels (last axis of its kernel, rows of the head's) scaled down 100×.
  const tiny = (axis: number, rank: number) => tf.concat([tf.ones([half]), tf.fill([half], 0.01)]).reshape(Array.from({ length: rank }, (_, a) => (a === axis ? WIDTH : 1)));
  model.getLayer('fragile').setWeights([tf.eye(WIDTH).reshape([1, 1, WIDTH, WIDTH]), tf.zeros([WIDTH])]);
  model.getLayer('robust').setWeights([tf.mul(random([1, 1, WIDTH, WIDTH], 21, 2), tiny(3, 4)), tf.zeros([WIDTH])]);
  model.getLayer('head').setWeights([tf.mul(random([WIDTH, CLASSES], 22, 40), tiny(0, 2)), tf.zeros([CLASSES])]);
  return model;
}
