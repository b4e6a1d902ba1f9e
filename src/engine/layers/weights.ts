import type * as tf from '@tensorflow/tfjs';

/**
 * Weight names, resolved one way. tfjs names a layer's variables `<layer>/<weight>` (Keras' names:
 * kernel, bias, gamma, beta, moving_mean, …) and adds `_<n>` to the full name on a collision, so
 * every lookup goes through the short name of the original name.
 */

/** What a weight is to the channels it carries. */
export type WeightKind =
  /** Multiplies its input (conv, dense, depthwise, pointwise, recurrent kernels; embeddings): costs FLOPs, decays. */
  | 'kernel'
  | 'bias'
  /** A per-channel multiplier of a normalisation (γ). */
  | 'scale'
  /** A per-channel offset of a normalisation (β). */
  | 'offset'
  /** Running statistics (moving mean and variance): never decide importance or zero-ness. */
  | 'statistic'
  | 'other';

interface NamedVariable {
  originalName?: string;
  name: string;
}

/** The weight's name inside its layer ("kernel", "gamma", ...), independent of name-collision suffixes. */
export function weightShortName(variable: NamedVariable): string {
  const full = variable.originalName ?? variable.name;
  const cut = full.lastIndexOf('/');
  return cut >= 0 ? full.slice(cut + 1) : full;
}

/** Map from short weight name to the layer's variable. */
export function layerWeights(layer: tf.layers.Layer): Map<string, tf.LayerVariable> {
  const out = new Map<string, tf.LayerVariable>();
  for (const w of layer.weights) out.set(weightShortName(w as unknown as NamedVariable), w);
  return out;
}

/** The variable of `layer` whose short name is `weight`. */
export function layerWeight(layer: tf.layers.Layer, weight: string): tf.LayerVariable | undefined {
  return layerWeights(layer).get(weight);
}

/** The kind of a weight, from its short or full name. */
export function weightKind(name: string): WeightKind {
  const short = weightShortName({ name: name.replace(/_\d+$/, '') });
  if (/(kernel|embeddings)$/.test(short)) return 'kernel';
  switch (short) {
    case 'bias': return 'bias';
    case 'gamma': return 'scale';
    case 'beta': return 'offset';
    case 'moving_mean':
    case 'moving_variance':
    // Keras' Normalization: adapted, never trained.
    case 'mean':
    case 'variance': return 'statistic';
    default: return 'other';
  }
}

/** Weight decay applies to kernels (conv, dense, depthwise, pointwise) and embeddings, never to biases or norms. */
export function isDecayedWeight(name: string): boolean {
  return weightKind(name) === 'kernel';
}

/** Whether a weight is a running statistic (batch-norm moving mean and variance, Keras Normalization's mean and variance). */
export function isStatisticWeight(name: string): boolean {
  return weightKind(name) === 'statistic';
}
