import type * as tf from '@tensorflow/tfjs';
import { activationKeepsZero, isOp, keepsChannels, preservesZero, specOf } from '../../layers/index.js';

/**
 * Small walks over a tf.LayersModel's topology (Sequential ones too) that DSP needs: which conv
 * layers it may regroup, which conv produces a layer's input channels privately, and which
 * conv outputs are added into a residual stream.
 */

type Layer = tf.layers.Layer;

/** Layers of a 2-D net that map channel c to channel c and nothing else, at every position (the registry's channel-wise layers but global pooling). */
export function isPerChannel(layer: Layer): boolean {
  const rank = specOf(layer)?.spatialRank;
  return keepsChannels(layer) && !isOp(layer, 'global-pooling') && (rank === undefined || rank === 2);
}

export function inboundLayers(layer: Layer): Layer[] {
  return layer.inboundNodes.length ? (layer.inboundNodes[0].inboundLayers as Layer[]) : [];
}

export function outboundLayers(layer: Layer): Layer[] {
  return layer.outboundNodes.map((node) => node.outboundLayer as Layer);
}

/** Whether a 2-D convolution is a plain NHWC Conv2D that DSP's packing understands. */
export function isPlainConv2D(layer: Layer): boolean {
  if (!isOp(layer, 'conv', 2)) return false;
  const config = layer.getConfig() as { dataFormat?: string; groups?: number };
  return (config.dataFormat ?? 'channelsLast') === 'channelsLast' && (config.groups ?? 1) === 1 && layer.inboundNodes.length === 1;
}

/**
 * Whether a layer is a NHWC DepthwiseConv2D with one filter per channel: channel c in gives
 * channel c out, so it follows its producer's channels (it is reindexed, never regrouped).
 */
export function isChannelwiseDepthwise(layer: Layer): boolean {
  if (!isOp(layer, 'depthwise-conv', 2)) return false;
  const config = layer.getConfig() as { dataFormat?: string; depthMultiplier?: number };
  return (config.dataFormat ?? 'channelsLast') === 'channelsLast' && (config.depthMultiplier ?? 1) === 1 && layer.inboundNodes.length === 1;
}

/**
 * The conv whose output channels feed `layer` only through per-channel layers and channelwise
 * depthwise convs, and reach nothing else on the way, or undefined. Then input channel c of
 * `layer` is that conv's filter c, and a channel `layer` never reads is dead in the producer too.
 */
export function privateProducer(layer: Layer): Layer | undefined {
  let current = inboundLayers(layer);
  while (current.length === 1) {
    const prev = current[0];
    if (prev.outboundNodes.length !== 1 || prev.inboundNodes.length !== 1) return undefined;
    if (isOp(prev, 'conv', 2)) return isPlainConv2D(prev) ? prev : undefined;
    if (!isPerChannel(prev) && !isChannelwiseDepthwise(prev)) return undefined;
    current = inboundLayers(prev);
  }
  return undefined;
}

/** Whether a conv's output reaches an Add (a residual stream) through per-channel layers only. */
export function feedsResidualAdd(layer: Layer): boolean {
  let current = outboundLayers(layer);
  while (current.length === 1) {
    const next = current[0];
    if (isOp(next, 'add')) return true;
    if (!isPerChannel(next)) return false;
    current = outboundLayers(next);
  }
  return false;
}

/**
 * Whether a conv sits on a residual shortcut (a projection shortcut): the tensor it reads also
 * feeds another branch, and its output goes into an Add through per-channel layers only.
 */
export function isShortcutConv(layer: Layer): boolean {
  const source = inboundLayers(layer);
  return source.length === 1 && source[0].outboundNodes.length > 1 && feedsResidualAdd(layer);
}

/** Whether a layer's input comes from the model input through per-channel layers only (a stem). */
export function readsModelInput(layer: Layer): boolean {
  let current = inboundLayers(layer);
  while (current.length === 1) {
    const prev = current[0];
    if (specOf(prev)?.role === 'input') return true;
    if (!isPerChannel(prev)) return false;
    current = inboundLayers(prev);
  }
  return false;
}

/** The BatchNormalization directly after a layer when it is the layer's only consumer. */
export function followingBatchNorm(layer: Layer): Layer | undefined {
  const next = outboundLayers(layer);
  return next.length === 1 && isOp(next[0], 'batch-norm') ? next[0] : undefined;
}

/** [H, W, C] of a layer's (single) input and output. */
export function spatialShapes(layer: Layer): { input: number[]; output: number[] } {
  const node = layer.inboundNodes[0];
  const input = (Array.isArray(node.inputShapes[0]) ? node.inputShapes[0] : node.inputShapes) as number[];
  const output = (Array.isArray(node.outputShapes[0]) ? node.outputShapes[0] : node.outputShapes) as number[];
  return { input: input.slice(1), output: output.slice(1) };
}

/**
 * The one weight layer that reads a conv's output channels, reached through a single chain of
 * batch norms, per-channel layers and channelwise depthwise convs: a plain Conv2D, or a Dense
 * after Flatten or global pooling. Because that layer (and the batch norms and depthwise convs
 * on the way) can be reindexed, the conv may emit its channels in any order, and channels it
 * drops vanish from the depthwise convs too. `positions` is how many spatial positions a Dense
 * row block spans; `zeroPreserving` says whether an all-zero filter still reaches the reader as zeros.
 */
export interface ChannelReader {
  layer: string;
  kind: 'conv' | 'dense';
  batchNorms: string[];
  depthwise: string[];
  positions: number;
  zeroPreserving: boolean;
}

export function channelReader(conv: Layer): ChannelReader | undefined {
  let zeroPreserving = activationKeepsZero(conv);
  const batchNorms: string[] = [];
  const depthwise: string[] = [];
  let current = conv;
  for (;;) {
    const next = outboundLayers(current);
    if (current.outboundNodes.length !== 1 || next.length !== 1 || next[0].inboundNodes.length !== 1) return undefined;
    const layer = next[0];
    const flattens = specOf(layer)?.role === 'flatten';
    if (isOp(layer, 'conv', 2)) return isPlainConv2D(layer) ? { layer: layer.name, kind: 'conv', batchNorms, depthwise, positions: 1, zeroPreserving } : undefined;
    if (flattens || isOp(layer, 'global-pooling', 2)) {
      const dense = outboundLayers(layer);
      if (layer.outboundNodes.length !== 1 || dense.length !== 1 || !isOp(dense[0], 'dense') || dense[0].inboundNodes.length !== 1) return undefined;
      const positions = flattens ? spatialShapes(layer).input.slice(0, -1).reduce((a, b) => a * b, 1) : 1;
      return { layer: dense[0].name, kind: 'dense', batchNorms, depthwise, positions, zeroPreserving };
    }
    if (isOp(layer, 'batch-norm')) {
      // Only a batch norm right after the conv is masked with it (applyPlanMasks).
      zeroPreserving &&= current === conv;
      batchNorms.push(layer.name);
    } else if (isChannelwiseDepthwise(layer)) {
      zeroPreserving &&= !(layer.getConfig() as { useBias?: boolean }).useBias;
      depthwise.push(layer.name);
    } else if (isPerChannel(layer) && layer.weights.length === 0) {
      // Weightless, so nothing to reindex; it only decides whether removed channels still arrive as zeros.
      zeroPreserving &&= preservesZero(layer);
    } else {
      return undefined;
    }
    current = layer;
  }
}
