import type * as tf from '@tensorflow/tfjs';
import { activationOf, activationPreservesZero, layerSpec } from './registry.js';
import type { LayerOp, LayerSpec, WeightAxis } from './types.js';

export { layerSpec, layerSpecs, classNameOf, activationOf, unsupportedReason, spatialPositions, kernelElementFlops, activationPreservesZero } from './registry.js';
export { weightShortName, layerWeights, layerWeight, weightKind, isDecayedWeight, isStatisticWeight, type WeightKind } from './weights.js';
export type { ChannelRole, ChannelTensor, ChannelWiring, LayerCall, LayerOp, LayerSpec, SliceRole, WeightAxis } from './types.js';

/** A tf.layers layer's registry entry. */
export function specOf(layer: { getClassName(): string }): LayerSpec | undefined {
  return layerSpec(layer.getClassName());
}

/** Whether a layer belongs to a family (and, when given, has that many spatial dimensions). */
export function isOp(layer: { getClassName(): string }, op: LayerOp, spatialRank?: number): boolean {
  const spec = specOf(layer);
  return spec?.op === op && (spatialRank === undefined || spec.spatialRank === spatialRank);
}

type ConfiguredLayer = { getClassName(): string; getConfig(): object };

function config(layer: ConfiguredLayer): Record<string, unknown> {
  return layer.getConfig() as Record<string, unknown>;
}

/** Rank of the layer's (first) output at its first call; 0 before it is called. */
function outputRank(layer: tf.layers.Layer): number {
  const shapes = layer.inboundNodes[0]?.outputShapes;
  if (!shapes) return 0;
  return (Array.isArray(shapes[0]) ? shapes[0] : shapes).length;
}

/** Whether a layer maps channel c to channel c and nothing else, as configured. */
export function keepsChannels(layer: tf.layers.Layer): boolean {
  const spec = specOf(layer);
  return spec?.role === 'channelwise' && (spec.keepsChannels?.(config(layer), outputRank(layer)) ?? false);
}

/** Whether an all-zero channel comes out of the layer all zero, in training and at inference. */
export function preservesZero(layer: ConfiguredLayer): boolean {
  return specOf(layer)?.zeroPreserving?.(config(layer)) ?? false;
}

/** The element-wise activation a layer ends with ('linear' when it has none). */
export function appliedActivation(layer: ConfiguredLayer): string {
  return activationOf(layer.getClassName(), config(layer));
}

/** Whether the activation a layer ends with maps 0 to 0. */
export function activationKeepsZero(layer: ConfiguredLayer): boolean {
  return activationPreservesZero(appliedActivation(layer));
}

/** A weight axis with negative axes resolved against the weight's rank. */
export function resolveAxis(axis: WeightAxis, rank: number): WeightAxis {
  return { weight: axis.weight, axis: axis.axis < 0 ? rank + axis.axis : axis.axis };
}
