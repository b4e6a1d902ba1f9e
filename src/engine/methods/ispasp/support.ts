import * as tf from '@tensorflow/tfjs';

/**
 * i-SpaSP support selection for one two-layer block (CoSaMP-like, §5.2 of the algorithm notes).
 *
 * The block is H = φ₁(X) (hidden channels on the last axis) followed by a second layer φ₂.
 * Each iteration compares the dense output φ₂(H) with the pruned output φ₂(H ⊙ mask_S),
 * takes the gradient of ½‖residual‖² with respect to H, sums it per channel, merges the
 * `candidateFactor·s` best channels with the current support and keeps the `s` channels of
 * that union that matter most: by default the energy each channel alone sends through φ₂
 * (‖φ₂(H ⊙ e_c) − φ₂(0)‖²), or, as the official code does, the activation mass Σ|H|.
 * Mass cannot tell a channel that reaches the output from an idle one. Both outputs go through the very same
 * φ₂ (callers keep any batch norm in inference mode), so a full support gives a zero residual.
 */
export interface SupportSearchOptions {
  /** Channels to keep (s). */
  size: number;
  iterations: number;
  /** Candidates merged per iteration, as a multiple of s (2 in CoSaMP and the paper). */
  candidateFactor: number;
  /** `signed`: rank the per-channel gradient sums as they are (official code); `magnitude`: by |sum|. */
  importance: 'signed' | 'magnitude';
  /** How the merged candidates are cut back to s: `contribution` (default) or `mass` (official code). */
  threshold?: 'contribution' | 'mass';
  /** Called after each iteration with the residual energy of the support that iteration started from. */
  onIteration?: (info: { iteration: number; residual: number; relativeResidual: number; support: number[] }) => void;
}

export interface SupportSearchResult {
  /** Kept channel indices, ascending. */
  support: number[];
  /** ‖φ₂(H) − φ₂(H ⊙ mask_S)‖² of the final support. */
  residual: number;
  /** Residual energy of the support at the start of each iteration. */
  residualHistory: number[];
  /** Residual energy of the empty support, ‖φ₂(H) − φ₂(0)‖²: what the hidden channels carry (for normalisation). */
  denseEnergy: number;
  iterations: number;
}

/** The hidden representation, possibly split into chunks along the batch axis to bound memory. */
export type HiddenChunks = readonly tf.Tensor[];

function channelCount(hidden: HiddenChunks): number {
  const shape = hidden[0].shape;
  return shape[shape.length - 1];
}

function maskTensor(support: Iterable<number>, channels: number): tf.Tensor1D {
  const values = new Float32Array(channels);
  for (const c of support) values[c] = 1;
  return tf.tensor1d(values);
}

/** Σ over every axis but the last, as a plain array. */
function perChannelSum(t: tf.Tensor): Float64Array {
  const summed = tf.tidy(() => t.reshape([-1, t.shape[t.shape.length - 1]]).sum(0));
  const out = Float64Array.from(summed.dataSync());
  summed.dispose();
  return out;
}

/**
 * Energy each channel alone sends through the second layer, ‖φ₂(H ⊙ e_c) − φ₂(0)‖² summed over
 * the chunks: what keeping that channel adds to the pruned output. One pass per channel.
 */
export function contributionEnergy(hidden: HiddenChunks, secondLayer: (h: tf.Tensor) => tf.Tensor): Float64Array {
  const channels = channelCount(hidden);
  const energy = new Float64Array(channels);
  for (const chunk of hidden) {
    const base = tf.tidy(() => secondLayer(tf.zerosLike(chunk)));
    for (let c = 0; c < channels; c++) {
      const value = tf.tidy(() => {
        const only = tf.mul(chunk, tf.oneHot(tf.tensor1d([c], 'int32'), channels).reshape([channels]));
        return tf.sum(tf.square(tf.sub(secondLayer(only), base)));
      });
      energy[c] += value.dataSync()[0];
      value.dispose();
    }
    base.dispose();
  }
  return energy;
}

/** Activation mass Σ|H| per channel (equal to Σ H after a ReLU, as in the official code). */
export function activationMass(hidden: HiddenChunks): Float64Array {
  const total = new Float64Array(channelCount(hidden));
  for (const h of hidden) {
    const abs = tf.abs(h);
    const part = perChannelSum(abs);
    abs.dispose();
    for (let c = 0; c < total.length; c++) total[c] += part[c];
  }
  return total;
}

/** ‖φ₂(H) − φ₂(H ⊙ mask)‖² summed over chunks. */
export function blockResidual(hidden: HiddenChunks, secondLayer: (h: tf.Tensor) => tf.Tensor, support: Iterable<number>): number {
  const mask = maskTensor(support, channelCount(hidden));
  let total = 0;
  for (const h of hidden) {
    const r = tf.tidy(() => tf.sum(tf.square(tf.sub(secondLayer(h), secondLayer(tf.mul(h, mask))))));
    total += r.dataSync()[0];
    r.dispose();
  }
  mask.dispose();
  return total;
}

/**
 * One pass over the chunks: residual energy of `support` and the per-channel sums of the
 * gradient of ½‖φ₂(H) − φ₂(H ⊙ mask)‖² with respect to H (the pruned output held constant).
 */
function residualAndProxy(hidden: HiddenChunks, secondLayer: (h: tf.Tensor) => tf.Tensor, support: Iterable<number>): { residual: number; proxy: Float64Array } {
  const channels = channelCount(hidden);
  const mask = maskTensor(support, channels);
  const proxy = new Float64Array(channels);
  let residual = 0;
  for (const h of hidden) {
    const [energy, gradSum] = tf.tidy(() => {
      const pruned = secondLayer(tf.mul(h, mask));
      const lossOf = (x: tf.Tensor) => tf.mul(0.5, tf.sum(tf.square(tf.sub(secondLayer(x), pruned))));
      const { value, grad } = tf.valueAndGrad(lossOf)(h);
      return [tf.mul(2, value), grad.reshape([-1, channels]).sum(0)];
    });
    residual += energy.dataSync()[0];
    const g = gradSum.dataSync();
    for (let c = 0; c < channels; c++) proxy[c] += g[c];
    energy.dispose();
    gradSum.dispose();
  }
  mask.dispose();
  return { residual, proxy };
}

function topIndices(values: ArrayLike<number>, k: number, among?: Iterable<number>): number[] {
  const pool = among ? [...among] : Array.from({ length: values.length }, (_, i) => i);
  // Ties go to the lower index so results are reproducible.
  pool.sort((a, b) => values[b] - values[a] || a - b);
  return pool.slice(0, Math.max(0, k));
}

export function searchSupport(hidden: HiddenChunks, secondLayer: (h: tf.Tensor) => tf.Tensor, options: SupportSearchOptions): SupportSearchResult {
  const channels = channelCount(hidden);
  const size = Math.min(channels, Math.max(0, Math.round(options.size)));
  const all = Array.from({ length: channels }, (_, i) => i);
  const denseEnergy = blockResidual(hidden, secondLayer, []);
  if (size >= channels) return { support: all, residual: 0, residualHistory: [], denseEnergy, iterations: 0 };

  const keepScore = options.threshold === 'mass' ? activationMass(hidden) : contributionEnergy(hidden, secondLayer);
  let support: number[] = [];
  const history: number[] = [];
  let iterations = 0;
  for (let it = 0; it < options.iterations; it++) {
    const { residual, proxy } = residualAndProxy(hidden, secondLayer, support);
    history.push(residual);
    iterations = it + 1;
    const ranked = options.importance === 'magnitude' ? proxy.map(Math.abs) : proxy;
    const candidates = topIndices(ranked, Math.ceil(options.candidateFactor * size));
    const merged = new Set([...candidates, ...support]);
    const next = topIndices(keepScore, size, merged).sort((a, b) => a - b);
    options.onIteration?.({ iteration: it, residual, relativeResidual: denseEnergy > 0 ? residual / denseEnergy : 0, support: next });
    const unchanged = next.length === support.length && next.every((c, i) => c === support[i]);
    support = next;
    // The update depends only on the support, so an unchanged support is a fixed point.
    if (unchanged) break;
  }
  const residual = blockResidual(hidden, secondLayer, support);
  return { support, residual, residualHistory: history, denseEnergy, iterations };
}
