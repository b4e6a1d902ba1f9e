import type * as tf from '@tensorflow/tfjs';

/**
 * Small walks over a functional tf.LayersModel's topology that DSP needs: which conv
 * layers it may regroup, which conv produces a layer's input channels privately, and which
 * conv outputs are added into a residual stream.
 */

type Layer = tf.layers.Layer;

/** Layers that map channel c to channel c and nothing else. */
const PER_CHANNEL = new Set([
  'BatchNormalization', 'Activation', 'ReLU', 'LeakyReLU', 'ELU', 'PReLU', 'Softmax', 'ThresholdedReLU',
  'MaxPooling2D', 'AveragePooling2D', 'Dropout', 'SpatialDropout2D', 'GaussianNoise', 'GaussianDropout', 'ZeroPadding2D',
]);

export function isPerChannel(layer: Layer): boolean {
  return PER_CHANNEL.has(layer.getClassName());
}

export function inboundLayers(layer: Layer): Layer[] {
  return layer.inboundNodes.length ? (layer.inboundNodes[0].inboundLayers as Layer[]) : [];
}

export function outboundLayers(layer: Layer): Layer[] {
  return layer.outboundNodes.map((node) => node.outboundLayer as Layer);
}

/** Whether a 2-D convolution is a plain NHWC Conv2D that DSP's packing understands. */
export function isPlainConv2D(layer: Layer): boolean {
  if (layer.getClassName() !== 'Conv2D') return false;
  const config = layer.getConfig() as { dataFormat?: string; groups?: number };
  return (config.dataFormat ?? 'channelsLast') === 'channelsLast' && (config.groups ?? 1) === 1 && layer.inboundNodes.length === 1;
}

/**
 * The conv whose output channels feed `layer` only through per-channel layers and reach
 * nothing else on the way, or undefined. Then input channel c of `layer` is that conv's
 * filter c, and a channel `layer` never reads is dead in the producer too.
 */
export function privateProducer(layer: Layer): Layer | undefined {
  let current = inboundLayers(layer);
  while (current.length === 1) {
    const prev = current[0];
    if (prev.outboundNodes.length !== 1 || prev.inboundNodes.length !== 1) return undefined;
    if (prev.getClassName() === 'Conv2D') return isPlainConv2D(prev) ? prev : undefined;
    if (!isPerChannel(prev)) return undefined;
    current = inboundLayers(prev);
  }
  return undefined;
}

/** Whether a conv's output reaches an Add (a residual stream) through per-channel layers only. */
export function feedsResidualAdd(layer: Layer): boolean {
  let current = outboundLayers(layer);
  while (current.length === 1) {
    const next = current[0];
    if (next.getClassName() === 'Add') return true;
    if (!isPerChannel(next)) return false;
    current = outboundLayers(next);
  }
  return false;
}

/** Whether a layer's input comes from the model input through per-channel layers only (a stem). */
export function readsModelInput(layer: Layer): boolean {
  let current = inboundLayers(layer);
  while (current.length === 1) {
    const prev = current[0];
    if (prev.getClassName() === 'InputLayer') return true;
    if (!isPerChannel(prev)) return false;
    current = inboundLayers(prev);
  }
  return false;
}

/** The BatchNormalization directly after a layer when it is the layer's only consumer. */
export function followingBatchNorm(layer: Layer): Layer | undefined {
  const next = outboundLayers(layer);
  return next.length === 1 && next[0].getClassName() === 'BatchNormalization' ? next[0] : undefined;
}

/** [H, W, C] of a layer's (single) input and output. */
export function spatialShapes(layer: Layer): { input: number[]; output: number[] } {
  const node = layer.inboundNodes[0];
  const input = (Array.isArray(node.inputShapes[0]) ? node.inputShapes[0] : node.inputShapes) as number[];
  const output = (Array.isArray(node.outputShapes[0]) ? node.outputShapes[0] : node.outputShapes) as number[];
  return { input: input.slice(1), output: output.slice(1) };
}
