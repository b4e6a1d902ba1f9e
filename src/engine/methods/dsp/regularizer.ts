import * as tf from '@tensorflow/tfjs';

/**
 * DSP's group-level regulariser for one conv layer (algorithms.md §4.2).
 *
 * With Q ∈ R^{G×N} an assignment of the N filters to G groups and E[c, j] the energy of
 * kernel slice (input c, filter j) summed over the spatial taps:
 *   L[g, c] = sqrt(Σ_j Q[g,j]² E[c,j])          norm of group channel (g, c)
 *   s[g]    = (Σ_j sqrt(Q[g,j]))²               group-size weight
 *   R       = scale · Σ_g s[g] · Σ_c L[g, c]
 * The kernel is tfjs HWIO: [kh, kw, Cin, N].
 */

/** Added under the square root so that the gradient of an all-zero group channel stays finite. */
const NORM_EPS = 1e-16;

/** Per-layer strength: sqrt(inSize) · k · (G / N)^1.5, inSize relative to the first pruned layer's input. */
export function regularizerScale(relativeInputSize: number, kernelHeight: number, groups: number, filters: number): number {
  return Math.sqrt(relativeInputSize) * kernelHeight * Math.pow(groups / filters, 1.5);
}

/** R(Q, K) as a differentiable scalar (pass scale = 1 for the unscaled R̃ the θ update uses). */
export function groupRegularizer(assignment: tf.Tensor2D, kernel: tf.Tensor4D, scale = 1): tf.Scalar {
  return tf.tidy(() => {
    const energy = tf.sum(tf.square(kernel), [0, 1]) as tf.Tensor2D; // [Cin, N]
    const groupChannelSq = tf.matMul(tf.square(assignment), energy, false, true); // [G, Cin]
    const groupChannelNorm = tf.sqrt(tf.add(groupChannelSq, NORM_EPS));
    const groupSize = tf.square(tf.sum(tf.sqrt(assignment), 1)); // [G]
    const perGroup = tf.sum(groupChannelNorm, 1); // [G]
    return tf.mul(tf.sum(tf.mul(groupSize, perGroup)), scale) as tf.Scalar;
  });
}

/** ∂R/∂W at (Q, K). */
export function regularizerWeightGrad(assignment: tf.Tensor2D, kernel: tf.Tensor4D, scale = 1): tf.Tensor4D {
  return tf.tidy(() => tf.grad((k: tf.Tensor) => groupRegularizer(assignment, k as tf.Tensor4D, scale))(kernel) as tf.Tensor4D);
}

/** ∂R/∂Q at (Q, K). */
export function regularizerAssignmentGrad(assignment: tf.Tensor2D, kernel: tf.Tensor4D, scale = 1): tf.Tensor2D {
  return tf.tidy(() => tf.grad((q: tf.Tensor) => groupRegularizer(q as tf.Tensor2D, kernel, scale))(assignment) as tf.Tensor2D);
}

/**
 * The mixed second-order term ∇_Q ⟨∇_W R(Q, K), Δ⟩ for a fixed displacement Δ.
 * R is data-free, so the nested gradient only passes through elementwise ops, reductions and
 * matMul, all of which tfjs can differentiate twice (it cannot through conv2d).
 */
export function regularizerMixedGrad(assignment: tf.Tensor2D, kernel: tf.Tensor4D, displacement: tf.Tensor4D, scale = 1): tf.Tensor2D {
  return tf.tidy(() =>
    tf.grad((q: tf.Tensor) => {
      const weightGrad = tf.grad((k: tf.Tensor) => groupRegularizer(q as tf.Tensor2D, k as tf.Tensor4D, scale))(kernel);
      return tf.sum(tf.mul(weightGrad, displacement));
    })(assignment) as tf.Tensor2D,
  );
}

/** Gumbel-softmax over the group axis: softmax_g(θ/T + noise). */
export function gumbelSoftmax(logits: tf.Tensor2D, noise: tf.Tensor2D, temperature: number): tf.Tensor2D {
  return tf.tidy(() => tf.softmax(tf.transpose(tf.add(tf.div(logits, temperature), noise))).transpose() as tf.Tensor2D);
}

/** Standard Gumbel(0, 1) noise of the given shape from a seeded uniform source. */
export function gumbelNoise(rows: number, cols: number, random: () => number): tf.Tensor2D {
  const values = new Float32Array(rows * cols);
  for (let i = 0; i < values.length; i++) {
    const u = Math.min(Math.max(random(), 1e-12), 1 - 1e-12);
    values[i] = -Math.log(-Math.log(u));
  }
  return tf.tensor2d(values, [rows, cols]);
}

/** Hard assignment: the group of each filter is argmax_g θ[g, j]. */
export function hardGroups(logits: Float32Array | number[], groups: number, filters: number): number[] {
  const out = new Array<number>(filters);
  for (let j = 0; j < filters; j++) {
    let best = 0;
    for (let g = 1; g < groups; g++) if (logits[g * filters + j] > logits[best * filters + j]) best = g;
    out[j] = best;
  }
  return out;
}

/** One-hot matrix [G, N] of a hard assignment. */
export function oneHotAssignment(groupOf: number[], groups: number): tf.Tensor2D {
  const n = groupOf.length;
  const values = new Float32Array(groups * n);
  groupOf.forEach((g, j) => {
    values[g * n + j] = 1;
  });
  return tf.tensor2d(values, [groups, n]);
}
