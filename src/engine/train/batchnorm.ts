import * as tf from '@tensorflow/tfjs';
import { layerClassPrototype } from '../util/layer-classes.js';
import { classNameOf, isOp } from '../layers/index.js';

type AnyLayer = tf.layers.Layer & { layers?: AnyLayer[] };

function batchNormLayers(layers: AnyLayer[], out: AnyLayer[] = []): AnyLayer[] {
  for (const layer of layers) {
    if (isOp(layer, 'batch-norm')) out.push(layer);
    if (Array.isArray(layer.layers)) batchNormLayers(layer.layers, out); // nested models
  }
  return out;
}

/**
 * Every BatchNormalization layer's moving mean and variance, kept to be written back any number
 * of times: a training step that ran out of memory part-way is retried in smaller passes from
 * the statistics it started with.
 */
export class BatchNormCheckpoint {
  private readonly saved: { weight: tf.LayerVariable; copy: tf.Tensor }[];

  constructor(model: tf.LayersModel) {
    this.saved = batchNormLayers(model.layers as AnyLayer[]).flatMap((layer) =>
      layer.weights.filter((w) => /moving_(mean|variance)$/.test(w.originalName)).map((w) => ({ weight: w, copy: tf.keep(tf.clone(w.read())) })));
  }

  restore(): void {
    for (const { weight, copy } of this.saved) weight.write(copy);
  }

  dispose(): void {
    for (const { copy } of this.saved) copy.dispose();
  }
}

/**
 * Copies every BatchNormalization layer's moving mean and variance (training-mode passes update
 * them as a side effect). The returned function writes the copies back exactly and frees them;
 * calling it again does nothing.
 */
export function snapshotBatchNorm(model: tf.LayersModel): () => void {
  const checkpoint = new BatchNormCheckpoint(model);
  let restored = false;
  return () => {
    if (restored) return;
    restored = true;
    checkpoint.restore();
    checkpoint.dispose();
  };
}

type Tensor = tf.Tensor;
interface ScalableBatchNorm {
  axis: number;
  gamma: { read(): Tensor } | null;
  beta: { read(): Tensor } | null;
}

let scaleFreeTrainingInstalled = false;

/**
 * tf.layers' BatchNormalization reads gamma and beta in training mode even when the layer has
 * none (`scale: false` or `center: false`, as in Keras' InceptionV3), and throws. While such a
 * layer trains, a scale of ones and an offset of zeros stand in: what the missing weight means.
 */
export function installScaleFreeBatchNormTraining(): void {
  if (scaleFreeTrainingInstalled) return;
  const prototype = layerClassPrototype<{ call(inputs: Tensor | Tensor[], kwargs: Record<string, unknown>): Tensor }>(classNameOf('batch-norm'));
  if (!prototype) return;
  scaleFreeTrainingInstalled = true;
  const original = prototype.call;
  prototype.call = function (this: ScalableBatchNorm, inputs: Tensor | Tensor[], kwargs: Record<string, unknown>) {
    if (!kwargs?.training || (this.gamma && this.beta)) return original.call(this, inputs, kwargs);
    const input = Array.isArray(inputs) ? inputs[0] : inputs;
    const channels = input.shape[this.axis >= 0 ? this.axis : this.axis + input.rank];
    const { gamma, beta } = this;
    return tf.tidy(() => {
      const ones = tf.ones([channels]), zeros = tf.zeros([channels]);
      this.gamma = gamma ?? { read: () => ones };
      this.beta = beta ?? { read: () => zeros };
      try {
        return original.call(this, inputs, kwargs);
      } finally {
        this.gamma = gamma;
        this.beta = beta;
      }
    });
  };
}
