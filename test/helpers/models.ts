import * as tf from '@tensorflow/tfjs';
import type { ChannelGraph } from '../../src/engine/graph/types.js';
import { removeUnits, zeroUnits } from '../../src/engine/surgery/index.js';

/**
 * Small models that exercise each channel-coupling hazard, for tests and benches.
 * Every builder takes widths so the "same architecture built narrower" can be compared
 * with a pruned model, and a seed so weights are reproducible.
 */

type ST = tf.SymbolicTensor;
const apply = (layer: tf.layers.Layer, x: ST | ST[]) => layer.apply(x) as ST;
const init = (seed: number) => tf.initializers.glorotNormal({ seed });

/** MLP 16-32-24-4 (dense, relu, softmax head): small enough to run several regularised trainings in a test. */
export function buildMlp(): tf.LayersModel {
  const input = tf.input({ shape: [16] });
  let x = tf.layers.dense({ name: 'fc1', units: 32, activation: 'relu', kernelInitializer: tf.initializers.heNormal({ seed: 1 }) }).apply(input) as tf.SymbolicTensor;
  x = tf.layers.dense({ name: 'fc2', units: 24, activation: 'relu', kernelInitializer: tf.initializers.heNormal({ seed: 2 }) }).apply(x) as tf.SymbolicTensor;
  const out = tf.layers.dense({ name: 'out', units: 4, activation: 'softmax', kernelInitializer: tf.initializers.heNormal({ seed: 3 }) }).apply(x) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: out });
}

/** Gives every batch-norm layer non-trivial moving statistics and affine terms, so equality tests mean something. */
export function randomizeBatchNorms(model: tf.LayersModel, seed = 7): void {
  let s = seed;
  for (const layer of model.layers) {
    if (layer.getClassName() !== 'BatchNormalization') continue;
    const values = layer.getWeights().map((w, i) => {
      s += 1;
      const name = layer.weights[i].name;
      if (name.includes('moving_variance')) return tf.randomUniform(w.shape, 0.5, 1.5, 'float32', s);
      return tf.randomNormal(w.shape, name.includes('gamma') ? 1 : 0, 0.3, 'float32', s);
    });
    layer.setWeights(values);
    tf.dispose(values);
  }
}

/** conv → BN → ReLU → pool → conv → ReLU → flatten → dense → dense (output). */
export function buildConvFlattenDense(options: { widths?: [number, number, number]; inputShape?: number[]; seed?: number } = {}): tf.LayersModel {
  const [w1, w2, w3] = options.widths ?? [6, 8, 10];
  const seed = options.seed ?? 1;
  const input = tf.input({ shape: options.inputShape ?? [8, 8, 3], name: 'image' });
  let x = apply(tf.layers.conv2d({ name: 'conv1', filters: w1, kernelSize: 3, padding: 'same', kernelInitializer: init(seed) }), input);
  x = apply(tf.layers.batchNormalization({ name: 'bn1' }), x);
  x = apply(tf.layers.reLU({ name: 'relu1' }), x);
  x = apply(tf.layers.maxPooling2d({ name: 'pool1', poolSize: 2 }), x);
  x = apply(tf.layers.conv2d({ name: 'conv2', filters: w2, kernelSize: 3, padding: 'same', activation: 'relu', kernelInitializer: init(seed + 1) }), x);
  x = apply(tf.layers.flatten({ name: 'flatten' }), x);
  x = apply(tf.layers.dense({ name: 'fc1', units: w3, activation: 'relu', kernelInitializer: init(seed + 2) }), x);
  const out = apply(tf.layers.dense({ name: 'logits', units: 4, kernelInitializer: init(seed + 3) }), x);
  const model = tf.model({ inputs: input, outputs: out, name: 'conv_flatten_dense' });
  randomizeBatchNorms(model, seed);
  return model;
}

/** The same conv → flatten → dense idea as a Sequential model. */
export function buildSequentialCnn(options: { widths?: [number, number]; seed?: number } = {}): tf.LayersModel {
  const [w1, w2] = options.widths ?? [5, 7];
  const seed = options.seed ?? 3;
  const model = tf.sequential({
    name: 'sequential_cnn',
    layers: [
      tf.layers.conv2d({ name: 'conv1', inputShape: [6, 6, 2], filters: w1, kernelSize: 3, activation: 'relu', kernelInitializer: init(seed) }),
      tf.layers.batchNormalization({ name: 'bn1' }),
      tf.layers.flatten({ name: 'flatten' }),
      tf.layers.dense({ name: 'fc1', units: w2, activation: 'relu', kernelInitializer: init(seed + 1) }),
      tf.layers.dense({ name: 'logits', units: 3, kernelInitializer: init(seed + 2) }),
    ],
  });
  randomizeBatchNorms(model, seed);
  return model;
}

/** A 1-D convolutional net on sequences: conv1d → BN → conv1d → global pool → dense. */
export function buildConv1dModel(options: { widths?: [number, number]; seed?: number } = {}): tf.LayersModel {
  const [w1, w2] = options.widths ?? [6, 5];
  const seed = options.seed ?? 5;
  const input = tf.input({ shape: [12, 3], name: 'sequence' });
  let x = apply(tf.layers.conv1d({ name: 'conv1', filters: w1, kernelSize: 3, padding: 'same', activation: 'relu', kernelInitializer: init(seed) }), input);
  x = apply(tf.layers.batchNormalization({ name: 'bn1' }), x);
  x = apply(tf.layers.maxPooling1d({ name: 'pool1', poolSize: 2 }), x);
  x = apply(tf.layers.conv1d({ name: 'conv2', filters: w2, kernelSize: 3, activation: 'relu', kernelInitializer: init(seed + 1) }), x);
  x = apply(tf.layers.globalAveragePooling1d({ name: 'gap' }), x);
  const out = apply(tf.layers.dense({ name: 'logits', units: 2, kernelInitializer: init(seed + 2) }), x);
  const model = tf.model({ inputs: input, outputs: out, name: 'conv1d_net' });
  randomizeBatchNorms(model, seed);
  return model;
}

/**
 * A chain of residual blocks: stem conv → BN → ReLU, then `blocks` times
 * conv_a → ReLU → conv_b → BN → Add(stream, ·) → ReLU, then GAP → dense.
 * The residual stream (stem, every conv_b, every BN on it) is one coupled group;
 * each conv_a is private.
 */
export function buildResidualChain(options: { width?: number; inner?: number[]; blocks?: number; seed?: number } = {}): tf.LayersModel {
  const width = options.width ?? 6;
  const blocks = options.blocks ?? 3;
  const inner = options.inner ?? Array.from({ length: blocks }, () => 4);
  const seed = options.seed ?? 11;
  const input = tf.input({ shape: [8, 8, 3], name: 'image' });
  let x = apply(tf.layers.conv2d({ name: 'stem', filters: width, kernelSize: 3, padding: 'same', kernelInitializer: init(seed) }), input);
  x = apply(tf.layers.batchNormalization({ name: 'stem_bn' }), x);
  x = apply(tf.layers.reLU({ name: 'stem_relu' }), x);
  for (let b = 0; b < blocks; b++) {
    let y = apply(tf.layers.conv2d({ name: `b${b}_conva`, filters: inner[b], kernelSize: 3, padding: 'same', activation: 'relu', kernelInitializer: init(seed + 10 * b + 1) }), x);
    y = apply(tf.layers.conv2d({ name: `b${b}_convb`, filters: width, kernelSize: 3, padding: 'same', kernelInitializer: init(seed + 10 * b + 2) }), y);
    y = apply(tf.layers.batchNormalization({ name: `b${b}_bn` }), y);
    x = apply(tf.layers.add({ name: `b${b}_add` }), [x, y]);
    x = apply(tf.layers.reLU({ name: `b${b}_relu` }), x);
  }
  x = apply(tf.layers.globalAveragePooling2d({ name: 'gap' }), x);
  const out = apply(tf.layers.dense({ name: 'logits', units: 3, kernelInitializer: init(seed + 99) }), x);
  const model = tf.model({ inputs: input, outputs: out, name: 'residual_chain' });
  randomizeBatchNorms(model, seed);
  return model;
}

/**
 * Two convs concatenated on channels, then a depthwise conv (multiplier 2), BN, ReLU,
 * a 1×1 conv, global pooling and a dense output.
 */
export function buildConcatDepthwise(options: { widths?: [number, number, number]; multiplier?: number; seed?: number } = {}): tf.LayersModel {
  const [wa, wb, wc] = options.widths ?? [4, 5, 6];
  const m = options.multiplier ?? 2;
  const seed = options.seed ?? 21;
  const input = tf.input({ shape: [8, 8, 3], name: 'image' });
  const a = apply(tf.layers.conv2d({ name: 'branch_a', filters: wa, kernelSize: 3, padding: 'same', activation: 'relu', kernelInitializer: init(seed) }), input);
  const b = apply(tf.layers.conv2d({ name: 'branch_b', filters: wb, kernelSize: 1, activation: 'relu', kernelInitializer: init(seed + 1) }), input);
  let x = apply(tf.layers.concatenate({ name: 'concat' }), [a, b]);
  x = apply(tf.layers.depthwiseConv2d({ name: 'depthwise', kernelSize: 3, depthMultiplier: m, padding: 'same', depthwiseInitializer: init(seed + 2), biasInitializer: 'glorotNormal' }), x);
  x = apply(tf.layers.batchNormalization({ name: 'dw_bn' }), x);
  x = apply(tf.layers.reLU({ name: 'dw_relu' }), x);
  x = apply(tf.layers.conv2d({ name: 'pointwise', filters: wc, kernelSize: 1, activation: 'relu', kernelInitializer: init(seed + 3) }), x);
  x = apply(tf.layers.globalAveragePooling2d({ name: 'gap' }), x);
  const out = apply(tf.layers.dense({ name: 'logits', units: 3, kernelInitializer: init(seed + 4) }), x);
  const model = tf.model({ inputs: input, outputs: out, name: 'concat_depthwise' });
  randomizeBatchNorms(model, seed);
  return model;
}

/**
 * Two branches: one goes conv → Reshape (unsupported for channel pruning) → dense; the other
 * is a plain conv → conv → GAP path. The Reshape must block only the channels it touches.
 */
export function buildBlockedModel(options: { widths?: [number, number, number]; seed?: number } = {}): tf.LayersModel {
  const [w1, w2, w3] = options.widths ?? [6, 4, 5];
  const seed = options.seed ?? 31;
  const input = tf.input({ shape: [6, 6, 3], name: 'image' });
  const r = apply(tf.layers.conv2d({ name: 'reshaped_conv', filters: w1, kernelSize: 3, activation: 'relu', kernelInitializer: init(seed) }), input);
  let rx = apply(tf.layers.reshape({ name: 'reshape', targetShape: [16 * w1] }), r);
  rx = apply(tf.layers.dense({ name: 'reshape_fc', units: 4, activation: 'relu', kernelInitializer: init(seed + 1) }), rx);
  let p = apply(tf.layers.conv2d({ name: 'conv_a', filters: w2, kernelSize: 3, padding: 'same', activation: 'relu', kernelInitializer: init(seed + 2) }), input);
  p = apply(tf.layers.batchNormalization({ name: 'bn_a' }), p);
  p = apply(tf.layers.conv2d({ name: 'conv_b', filters: w3, kernelSize: 3, activation: 'relu', kernelInitializer: init(seed + 3) }), p);
  p = apply(tf.layers.globalMaxPooling2d({ name: 'gmp' }), p);
  const merged = apply(tf.layers.concatenate({ name: 'merge' }), [rx, p]);
  const out = apply(tf.layers.dense({ name: 'logits', units: 3, kernelInitializer: init(seed + 4) }), merged);
  const model = tf.model({ inputs: input, outputs: out, name: 'blocked' });
  randomizeBatchNorms(model, seed);
  return model;
}

/**
 * CIFAR-style ResNet-20 (3 stages × 3 basic blocks, widths w, 2w, 4w) with 1×1 conv + BN
 * projection shortcuts where the shape changes (option B). Layer names: stem, stem_bn,
 * s{stage}b{block}_{conva,bna,convb,bnb,add,relu}, s{stage}b0_proj / _projbn, gap, logits.
 */
export function buildResNet20(options: { inputShape?: number[]; width?: number; classes?: number; seed?: number } = {}): tf.LayersModel {
  const width = options.width ?? 16;
  const seed = options.seed ?? 41;
  let k = 0;
  const conv = (name: string, filters: number, kernelSize: number, strides = 1) =>
    tf.layers.conv2d({ name, filters, kernelSize, strides, padding: 'same', useBias: false, kernelInitializer: tf.initializers.heNormal({ seed: seed * 1000 + k++ }) });
  const input = tf.input({ shape: options.inputShape ?? [32, 32, 3], name: 'image' });
  let x = apply(conv('stem', width, 3), input);
  x = apply(tf.layers.batchNormalization({ name: 'stem_bn' }), x);
  x = apply(tf.layers.reLU({ name: 'stem_relu' }), x);
  let channels = width;
  for (let s = 1; s <= 3; s++) {
    const w = width * 2 ** (s - 1);
    for (let b = 0; b < 3; b++) {
      const stride = s > 1 && b === 0 ? 2 : 1;
      const p = `s${s}b${b}`;
      let y = apply(conv(`${p}_conva`, w, 3, stride), x);
      y = apply(tf.layers.batchNormalization({ name: `${p}_bna` }), y);
      y = apply(tf.layers.reLU({ name: `${p}_relua` }), y);
      y = apply(conv(`${p}_convb`, w, 3), y);
      y = apply(tf.layers.batchNormalization({ name: `${p}_bnb` }), y);
      let shortcut = x;
      if (stride !== 1 || channels !== w) {
        shortcut = apply(conv(`${p}_proj`, w, 1, stride), x);
        shortcut = apply(tf.layers.batchNormalization({ name: `${p}_projbn` }), shortcut);
      }
      x = apply(tf.layers.add({ name: `${p}_add` }), [shortcut, y]);
      x = apply(tf.layers.reLU({ name: `${p}_relu` }), x);
      channels = w;
    }
  }
  x = apply(tf.layers.globalAveragePooling2d({ name: 'gap' }), x);
  const out = apply(tf.layers.dense({ name: 'logits', units: options.classes ?? 10, activation: 'softmax', kernelInitializer: init(seed + 7) }), x);
  const model = tf.model({ inputs: input, outputs: out, name: 'resnet20' });
  randomizeBatchNorms(model, seed);
  return model;
}

/**
 * A deep residual chain with about `layers` layers (7 per block: conv, BN, ReLU, conv, BN, Add, ReLU),
 * for timing graph analysis on large models.
 */
export function buildDeepModel(layers = 100, options: { width?: number; seed?: number } = {}): tf.LayersModel {
  const width = options.width ?? 8;
  const seed = options.seed ?? 51;
  const blocks = Math.max(1, Math.ceil((layers - 5) / 7));
  const input = tf.input({ shape: [8, 8, 3], name: 'image' });
  let x = apply(tf.layers.conv2d({ name: 'stem', filters: width, kernelSize: 3, padding: 'same', kernelInitializer: init(seed) }), input);
  x = apply(tf.layers.reLU({ name: 'stem_relu' }), x);
  for (let b = 0; b < blocks; b++) {
    let y = apply(tf.layers.conv2d({ name: `d${b}_conva`, filters: width, kernelSize: 3, padding: 'same', kernelInitializer: init(seed + 2 * b + 1) }), x);
    y = apply(tf.layers.batchNormalization({ name: `d${b}_bna` }), y);
    y = apply(tf.layers.reLU({ name: `d${b}_relua` }), y);
    y = apply(tf.layers.conv2d({ name: `d${b}_convb`, filters: width, kernelSize: 3, padding: 'same', kernelInitializer: init(seed + 2 * b + 2) }), y);
    y = apply(tf.layers.batchNormalization({ name: `d${b}_bnb` }), y);
    x = apply(tf.layers.add({ name: `d${b}_add` }), [x, y]);
    x = apply(tf.layers.reLU({ name: `d${b}_relu` }), x);
  }
  x = apply(tf.layers.globalAveragePooling2d({ name: 'gap' }), x);
  const out = apply(tf.layers.dense({ name: 'logits', units: 10, kernelInitializer: init(seed + 999) }), x);
  return tf.model({ inputs: input, outputs: out, name: `deep_${layers}` });
}

/** Deterministic random input batch for a single-input model. */
export function randomInput(model: tf.LayersModel, batch = 2, seed = 123): tf.Tensor {
  const shape = model.inputs[0].shape.slice(1) as number[];
  return tf.randomNormal([batch, ...shape], 0, 1, 'float32', seed);
}

/** Largest absolute difference between two models' outputs on the same input (inference mode). */
export function maxOutputDiff(a: tf.LayersModel, b: tf.LayersModel, x: tf.Tensor): number {
  return tf.tidy(() => {
    const ya = a.predict(x) as tf.Tensor;
    const yb = b.predict(x) as tf.Tensor;
    return tf.max(tf.abs(tf.sub(ya, yb))).dataSync()[0];
  });
}

/**
 * Masks `units` in `model` (in place), removes them physically, and returns how far the
 * outputs moved: `masking` = original vs masked (shows the units mattered),
 * `removal` = masked vs physically pruned (must be ~0).
 */
export async function maskThenRemove(
  model: tf.LayersModel,
  graph: ChannelGraph,
  units: number[],
  batch = 3,
): Promise<{ pruned: tf.LayersModel; masking: number; removal: number }> {
  const x = randomInput(model, batch);
  const before = model.predict(x) as tf.Tensor;
  zeroUnits(model, graph, units);
  const masked = model.predict(x) as tf.Tensor;
  const masking = tf.tidy(() => tf.max(tf.abs(tf.sub(before, masked))).dataSync()[0]);
  const pruned = await removeUnits(model, graph, units);
  const removal = maxOutputDiff(model, pruned, x);
  tf.dispose([x, before, masked]);
  return { pruned, masking, removal };
}

/** Every `step`-th unit of every group, starting at `offset` (never the whole group). */
export function everyOtherUnit(graph: ChannelGraph, step = 2, offset = 1): number[] {
  return graph.groups.flatMap((g) => g.units.filter((_, i) => i % step === offset));
}
