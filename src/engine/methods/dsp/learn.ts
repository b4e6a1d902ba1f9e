import * as tf from '@tensorflow/tfjs';
import type { TrainConfig } from '../../config/types.js';
import type { Dataset } from '../../train/types.js';
import { crossEntropyPerSample, outputsProbabilities } from '../../train/loss.js';
import { learningRateAt } from '../../train/optimizer.js';
import { batchGradients, planMemory, withMicroBatchRetry } from '../../train/index.js';
import type { DspOptions } from './options.js';
import {
  groupRegularizer, gumbelNoise, gumbelSoftmax, hardGroups, oneHotAssignment, regularizerAssignmentGrad,
  regularizerMixedGrad, regularizerWeightGrad,
} from './regularizer.js';

/**
 * DSP's differentiable group learning (algorithms.md §4.3–4.4). It runs its own SGD loop
 * because every step needs the minibatch and a copy of the optimiser state for the look-ahead.
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

export interface StepReport {
  epoch: number;
  step: number;
  stepsPerEpoch: number;
  globalStep: number;
  totalSteps: number;
  loss: number;
  learningRate: number;
}

export interface LearnCallbacks {
  random: () => number;
  checkCancelled: () => void;
  onStep?: (report: StepReport) => void;
  onEpoch?: (epoch: number, epochs: number, loss: number) => void | Promise<void>;
}

/** Cross-entropy of the model's output on integer labels, in training mode (batch norm uses and updates batch statistics). */
function taskLoss(model: tf.LayersModel, x: tf.Tensor, y: tf.Tensor1D, probabilities: boolean): tf.Scalar {
  return tf.mean(crossEntropyPerSample(model.apply(x, { training: true }) as tf.Tensor, y, probabilities)) as tf.Scalar;
}

/** SGD with momentum and decoupled-from-bias weight decay, PyTorch style: buf = m·buf + g + wd·w; w -= lr·buf. */
class MomentumSgd {
  buffers: tf.Tensor[];

  constructor(private readonly variables: LayerVariable[], private readonly momentum: number, private readonly weightDecay: number) {
    this.buffers = variables.map((v) => tf.zerosLike(v.read()));
  }

  step(grads: tf.NamedTensorMap, learningRate: number): void {
    this.variables.forEach((v, i) => {
      const value = v.read() as tf.Variable;
      const grad = grads[value.name];
      if (!grad) return;
      const next = tf.tidy(() => {
        const decay = v.originalName.endsWith('kernel') ? this.weightDecay : 0;
        const buffer = tf.add(tf.mul(this.buffers[i], this.momentum), tf.add(grad, tf.mul(value, decay)));
        return [buffer, tf.sub(value, tf.mul(buffer, learningRate))];
      });
      this.buffers[i].dispose();
      this.buffers[i] = next[0];
      v.write(next[1]);
      next[1].dispose();
    });
  }

  snapshot(): tf.Tensor[] {
    return this.buffers.map((b) => b.clone());
  }

  restore(saved: tf.Tensor[]): void {
    tf.dispose(this.buffers);
    this.buffers = saved;
  }

  dispose(): void {
    tf.dispose(this.buffers);
  }
}

/** One SGD step on the batch; a batch that does not fit the tensor memory runs in micro-batches (see planMemory). */
function trainingStep(model: tf.LayersModel, optimizer: MomentumSgd, x: tf.Tensor, y: tf.Tensor1D, learningRate: number, probabilities: boolean, microBatchSize: number, seed: number): number {
  const variables = model.trainableWeights.map((w) => w.read() as tf.Variable);
  if (microBatchSize < y.shape[0]) {
    const { grads, stats } = batchGradients(model, { x, y }, variables, probabilities, microBatchSize, seed);
    optimizer.step(grads, learningRate);
    const loss = stats.dataSync()[0];
    tf.dispose([stats, grads]);
    return loss;
  }
  const { value, grads } = tf.variableGrads(() => taskLoss(model, x, y, probabilities), variables);
  optimizer.step(grads, learningRate);
  const loss = value.dataSync()[0];
  tf.dispose([value, grads]);
  return loss;
}

/** W ← W − c · ∂R_l/∂W(Q, W) for every grouped layer; Q per layer. */
function penaltyStep(layers: GroupedLayer[], assignments: tf.Tensor2D[], strength: number): void {
  layers.forEach((layer, i) => {
    const next = tf.tidy(() => {
      const kernel = layer.kernel.read() as tf.Tensor4D;
      return tf.sub(kernel, tf.mul(regularizerWeightGrad(assignments[i], kernel, layer.scale), strength));
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
 * One group-learning phase: after every ordinary SGD step, (every `thetaUpdateEvery` steps)
 * a look-ahead on the same minibatch gives the hypergradient of R̃ w.r.t. the soft assignment,
 * θ takes an Adam step through the Gumbel-softmax, and the weights take the decoupled
 * regulariser step with the hard assignment. Weights, batch-norm statistics and momentum
 * are restored after the look-ahead.
 */
export async function learnGroups(model: tf.LayersModel, data: Dataset, settings: TrainConfig, options: DspOptions, layers: GroupedLayer[], callbacks: LearnCallbacks): Promise<void> {
  const G = options.groups;
  const probabilities = outputsProbabilities(model);
  const optimizer = new MomentumSgd(model.trainableWeights, settings.momentum, settings.weightDecay);
  const thetaOptimizer = tf.train.adam(options.thetaLearningRate, 0.9, 0.999, options.thetaEpsilon);
  const plan = planMemory(model, settings.batchSize, { microBatchSize: settings.microBatchSize });
  let microBatchSize = plan.microBatchSize;
  const sgdStep = async (x: tf.Tensor, y: tf.Tensor1D, learningRate: number, seed: number): Promise<number> => {
    const run = await withMicroBatchRetry(model, plan, microBatchSize, (size) => trainingStep(model, optimizer, x, y, learningRate, probabilities, size, seed));
    microBatchSize = run.microBatchSize;
    return run.result;
  };
  const fullSteps = Math.ceil(data.trainSize / settings.batchSize);
  const stepsPerEpoch = Math.max(1, Math.min(fullSteps, settings.maxStepsPerEpoch ?? fullSteps));
  const totalSteps = Math.max(1, Math.round(settings.epochs * stepsPerEpoch));
  const epochs = Math.ceil(totalSteps / stepsPerEpoch);
  let globalStep = 0;
  try {
    for (let epoch = 0; epoch < epochs && globalStep < totalSteps; epoch++) {
      let step = 0;
      let lossSum = 0;
      for await (const batch of data.trainBatches(settings.batchSize, epoch)) {
        if (step >= stepsPerEpoch || globalStep >= totalSteps) {
          tf.dispose([batch.x, batch.y]);
          break;
        }
        callbacks.checkCancelled();
        const learningRate = learningRateAt(settings, globalStep, stepsPerEpoch, totalSteps);
        const strength = options.regularization * learningRate * (globalStep + 1) / totalSteps;
        const progress = globalStep / totalSteps;
        const temperature = options.temperature * Math.pow(options.finalTemperature / options.temperature, progress);
        const noise = layers.map((l) => gumbelNoise(G, l.filters, callbacks.random));
        const soft = layers.map((l, i) => gumbelSoftmax(l.theta, noise[i], temperature));

        const loss = await sgdStep(batch.x, batch.y, learningRate, globalStep);
        lossSum += loss;

        if (epoch >= options.warmupEpochs && globalStep % options.thetaUpdateEvery === 0) {
          const saved = model.weights.map((w) => w.read().clone());
          const savedMomentum = optimizer.snapshot();
          const start = layers.map((l) => l.kernel.read().clone() as tf.Tensor4D);
          penaltyStep(layers, soft, strength);
          const first = layers.map((l) => l.kernel.read().clone() as tf.Tensor4D);
          await sgdStep(batch.x, batch.y, learningRate, globalStep);
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
          model.weights.forEach((w, i) => w.write(saved[i]));
          optimizer.restore(savedMomentum);
          tf.dispose([saved, start, first]);

          const thetaGrads = layers.map((l, i) => ({
            name: l.theta.name,
            tensor: tf.tidy(() => tf.grad((theta: tf.Tensor) => tf.sum(tf.mul(gumbelSoftmax(theta as tf.Tensor2D, noise[i], temperature), hypergrads[i])))(l.theta)),
          }));
          thetaOptimizer.applyGradients(thetaGrads);
          tf.dispose([hypergrads, thetaGrads.map((g) => g.tensor)]);
        }

        const hard = currentGroups(layers, G).map((groupOf) => oneHotAssignment(groupOf, G));
        penaltyStep(layers, hard, strength);
        tf.dispose([hard, noise, soft, batch.x, batch.y]);
        callbacks.onStep?.({ epoch, step, stepsPerEpoch, globalStep, totalSteps, loss, learningRate });
        step++;
        globalStep++;
        await new Promise((resolve) => setImmediate(resolve));
      }
      await callbacks.onEpoch?.(epoch, epochs, lossSum / Math.max(step, 1));
    }
  } finally {
    optimizer.dispose();
    thetaOptimizer.dispose();
  }
}
