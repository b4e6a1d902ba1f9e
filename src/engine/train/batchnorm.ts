import * as tf from '@tensorflow/tfjs';
import { layerClassPrototype } from '../util/layer-classes.js';
import { classNameOf, isOp } from '../layers/index.js';
import { disposeBatch, samplesIn, type Dataset } from './types.js';
import { fittingEvalBatch } from './memory.js';

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

/** Whether the model has a batch norm, in nested models too. */
export function hasBatchNorm(model: tf.LayersModel): boolean {
  return batchNormLayers(model.layers as AnyLayer[]).length > 0;
}

/** Fewer training samples than this give statistics noisier than the dense model's: the session keeps those. */
export const MIN_RECALIBRATION_SAMPLES = 128;

/**
 * Re-estimates every BatchNormalization layer's moving mean and variance on up to `samples`
 * training samples (never augmented): forward passes in training mode with the momentum set so
 * the statistics become the average over the batches, then the layers' momentum back. Removing
 * channels changes what the layers after a cut see; the dense model's statistics no longer fit
 * (ResNet-20 on Fashion-MNIST at −50% FLOPs: 12.8% top-1 right after pruning, 46.2% recalibrated).
 * Returns the samples used (0 when the model has no batch norm or there is no data).
 */
export async function recalibrateBatchNorm(model: tf.LayersModel, data: Dataset, options: { samples?: number; batchSize?: number; signal?: AbortSignal } = {}): Promise<number> {
  const layers = batchNormLayers(model.layers as AnyLayer[]) as unknown as { momentum: number }[];
  if (layers.length === 0 || data.trainSize === 0) return 0;
  const samples = Math.min(options.samples ?? 1024, data.trainSize);
  // Batches that fit the tensor memory, as evaluation plans them (a training-mode pass keeps every activation of the batch).
  const batchSize = Math.max(1, Math.min(fittingEvalBatch(model, options.batchSize ?? 128), samples));
  const momenta = layers.map((layer) => layer.momentum);
  const source = data.unaugmented ?? data;
  let seen = 0, batches = 0;
  try {
    for await (const batch of source.trainBatches(batchSize, 0)) {
      try {
        // Batch k weighs 1/k: after n batches each statistic is the mean of the n batches' statistics.
        for (const layer of layers) layer.momentum = batches / (batches + 1);
        tf.tidy(() => { model.apply(batch.x, { training: true }); });
      } finally {
        disposeBatch(batch);
      }
      batches++;
      seen += samplesIn(batch);
      if (seen >= samples || options.signal?.aborted) break;
    }
  } finally {
    layers.forEach((layer, i) => { layer.momentum = momenta[i]; });
  }
  return seen;
}
