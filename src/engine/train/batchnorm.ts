import * as tf from '@tensorflow/tfjs';

type AnyLayer = tf.layers.Layer & { layers?: AnyLayer[] };

function batchNormLayers(layers: AnyLayer[], out: AnyLayer[] = []): AnyLayer[] {
  for (const layer of layers) {
    if (layer.getClassName() === 'BatchNormalization') out.push(layer);
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
  const saved = batchNormLayers(model.layers as AnyLayer[]).flatMap((layer) =>
    layer.weights.filter((w) => /moving_(mean|variance)$/.test(w.originalName)).map((w) => ({ weight: w, copy: tf.keep(tf.clone(w.read())) })));
  let restored = false;
  return () => {
    if (restored) return;
    restored = true;
    for (const { weight, copy } of saved) {
      weight.write(copy);
      copy.dispose();
    }
  };
}
