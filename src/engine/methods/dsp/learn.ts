import * as tf from '@tensorflow/tfjs';
import type { BatchStep, TrainHooks } from '../../train/types.js';
import type { DspOptions } from './options.js';
import {
  groupRegularizer, gumbelNoise, gumbelSoftmax, hardGroups, oneHotAssignment, regularizerAssignmentGrad,
  regularizerMixedGrad, regularizerWeightGrad,
} from './regularizer.js';

/**
 * DSP's differentiable group learning (algorithms.md §4.3–4.4), run by the shared training loop
 * through its hooks: after every step, a look-ahead on the same minibatch (from a snapshot of the
 * weights and the optimizer's state) moves the group assignment, then the regulariser steps.
 */

type LayerVariable = tf.LayersModel['weights'][number];

export interface GroupedLayer {
  name: string;
  kernel: LayerVariable;
  filters: number;
  /** scale_l of the regulariser. */
  scale: number;
  /** Assignment logits θ [G, N], initialised to 0. */
  theta: tf.Variable<tf.Rank.R2>;
}

/**
 * W ← W − c · ∂R_l/∂W(Q, W) for every grouped layer; Q per layer. ∂R/∂W is k·W elementwise with
 * k > 0 (a group norm's gradient), so the step is W · (1 − c·k); it stops at zero rather than
 * overshooting past it (group soft-thresholding), which only matters when c·k > 1: a λ_reg far above
 * the official values, never the official schedule's small steps.
 */
function penaltyStep(layers: GroupedLayer[], assignments: tf.Tensor2D[], strength: number): void {
  layers.forEach((layer, i) => {
    const next = tf.tidy(() => {
      const kernel = layer.kernel.read() as tf.Tensor4D;
      const step = tf.mul(regularizerWeightGrad(assignments[i], kernel, layer.scale), strength);
      const stepped = tf.sub(kernel, step);
      // Past zero: the step was larger than the weight (same sign), so the weight stops at 0.
      return tf.where(tf.greater(tf.mul(stepped, kernel), 0), stepped, tf.zerosLike(kernel));
    });
    layer.kernel.write(next);
    next.dispose();
  });
}

/** Current hard assignment of every layer (argmax of θ). */
export function currentGroups(layers: GroupedLayer[], groups: number): number[][] {
  return layers.map((l) => hardGroups(l.theta.dataSync() as Float32Array, groups, l.filters));
}

/** Σ_l R_l(A_hard, W): the regulariser the weights are driven by. */
export function regularizerValue(layers: GroupedLayer[], groups: number): number {
  const hard = currentGroups(layers, groups);
  return tf.tidy(() => layers.reduce((sum, l, i) => sum + groupRegularizer(oneHotAssignment(hard[i], groups), l.kernel.read() as tf.Tensor4D, l.scale).dataSync()[0], 0));
}

/**
 * One group-learning phase, run by `train` (the shared training loop) with the hooks given to it:
 * after every ordinary step, (every `thetaUpdateEvery` steps) a look-ahead on the same minibatch
 * gives the hypergradient of R̃ w.r.t. the soft assignment, θ takes an Adam step through the
 * Gumbel-softmax, and the weights take the decoupled regulariser step with the hard assignment.
 * Weights, batch-norm statistics and the optimizer's state are restored after the look-ahead.
 */
export async function learnGroups(train: (hooks: TrainHooks) => Promise<unknown>, options: DspOptions, layers: GroupedLayer[],
  random: () => number, afterEpoch?: TrainHooks['afterEpoch']): Promise<void> {
  const G = options.groups;
  const thetaOptimizer = tf.train.adam(options.thetaLearningRate, 0.9, 0.999, options.thetaEpsilon);

  /** The look-ahead: hypergradients of R̃ w.r.t. each layer's soft assignment, then θ's Adam step. */
  const updateAssignment = async (step: BatchStep, soft: tf.Tensor2D[], noise: tf.Tensor2D[], temperature: number, strength: number) => {
    const saved = step.snapshot();
    const start = layers.map((l) => l.kernel.read().clone() as tf.Tensor4D);
    penaltyStep(layers, soft, strength);
    const first = layers.map((l) => l.kernel.read().clone() as tf.Tensor4D);
    await step.step();
    const hypergrads = layers.map((l, i) => regularizerAssignmentGrad(soft[i], l.kernel.read() as tf.Tensor4D));
    penaltyStep(layers, soft, strength);
    layers.forEach((l, i) => {
      const total = tf.tidy(() => {
        const displacement = tf.sub(l.kernel.read(), first[i]) as tf.Tensor4D;
        return tf.add(hypergrads[i], regularizerMixedGrad(soft[i], start[i], displacement));
      });
      hypergrads[i].dispose();
      hypergrads[i] = total as tf.Tensor2D;
    });
    saved.restore();
    tf.dispose([start, first]);

    const thetaGrads = layers.map((l, i) => ({
      name: l.theta.name,
      tensor: tf.tidy(() => tf.grad((theta: tf.Tensor) => tf.sum(tf.mul(gumbelSoftmax(theta as tf.Tensor2D, noise[i], temperature), hypergrads[i])))(l.theta)),
    }));
    thetaOptimizer.applyGradients(thetaGrads);
    tf.dispose([hypergrads, thetaGrads.map((g) => g.tensor)]);
  };

  const afterBatch = async (step: BatchStep) => {
    const { epoch, globalStep, totalSteps, learningRate } = step.info;
    const strength = options.regularization * learningRate * (globalStep + 1) / totalSteps;
    const temperature = options.temperature * Math.pow(options.finalTemperature / options.temperature, globalStep / totalSteps);
    const noise = layers.map((l) => gumbelNoise(G, l.filters, random));
    const soft = layers.map((l, i) => gumbelSoftmax(l.theta, noise[i], temperature));
    if (epoch >= options.warmupEpochs && globalStep % options.thetaUpdateEvery === 0) await updateAssignment(step, soft, noise, temperature, strength);
    const hard = currentGroups(layers, G).map((groupOf) => oneHotAssignment(groupOf, G));
    penaltyStep(layers, hard, strength);
    tf.dispose([hard, noise, soft]);
  };

  try {
    await train({ afterBatch, afterEpoch });
  } finally {
    thetaOptimizer.dispose();
  }
}
