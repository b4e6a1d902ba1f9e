/**
 * How much tensor memory a training step and an evaluation pass need, planned from the model
 * before they run. A training step keeps every layer's output for the backward pass; measured on
 * the wasm backend, a step's heap grows by 1.47× (CIFAR ResNet-20, 32×32), 1.48× (nsfwjs
 * MobileNetV2, 224×224) and 1.60× (the demo CNN) the sum of the layers' output sizes per sample.
 * Inference frees outputs as it goes: 1.5–5.4× the largest layer output per sample.
 * The factors below keep a margin over those measurements, and the headroom leaves a quarter of
 * the heap to fragmentation: the wasm heap never shrinks or compacts, so after a few phases a
 * large allocation may find no contiguous room although enough is free in total (DSP's packed
 * MobileNetV2 failed at 85% of the heap planned).
 */
import type * as tf from '@tensorflow/tfjs';
import { UserError } from '../errors.js';
import { formatMiB, tensorMemoryInUse, tensorMemoryLimit } from '../backend/heap.js';

const TRAIN_BYTES_PER_OUTPUT_BYTE = 2;
const EVAL_BYTES_PER_LARGEST_OUTPUT = 6;
const EVAL_BYTES_PER_OUTPUT_BYTE = 0.3;
const EVAL_SHARE = 0.25;
/** Gradients, optimizer slots and a copy in flight: bytes per weight byte on top of the weights. */
const TRAINING_STATE_PER_WEIGHT_BYTE = 4;
/** Fraction of the limit planned for; the rest is kept for the data batch, kernel scratch and fragmentation. */
const HEADROOM = 0.75;

export interface ActivationFootprint {
  /** Bytes of every layer output for one sample (float32). */
  outputBytes: number;
  /** Bytes of the largest layer output for one sample. */
  largestOutputBytes: number;
}

export function activationFootprint(model: tf.LayersModel): ActivationFootprint {
  let outputBytes = 0, largestOutputBytes = 0;
  for (const layer of model.layers) {
    for (const node of (layer as unknown as { inboundNodes: { outputTensors: tf.SymbolicTensor[] }[] }).inboundNodes) {
      for (const t of node.outputTensors) {
        const bytes = 4 * t.shape.slice(1).reduce<number>((n, d) => n * (d ?? 1), 1);
        outputBytes += bytes;
        largestOutputBytes = Math.max(largestOutputBytes, bytes);
      }
    }
  }
  return { outputBytes, largestOutputBytes };
}

export interface MemoryPlan {
  /** Samples the optimiser sees per step (the configured batch). */
  batchSize: number;
  /** Samples per forward/backward pass; gradients of ceil(batchSize / microBatchSize) passes are summed. */
  microBatchSize: number;
  /** Forward/backward passes per step. */
  microBatches: number;
  /** Planned bytes of one training pass at microBatchSize, weights and training state included. */
  trainingBytes: number;
  limitBytes: number;
  /** What the limit is ("the WebAssembly heap", …). */
  limitWhere: string;
}

function inputDescription(model: tf.LayersModel): string {
  return model.inputs.map((i) => i.shape.slice(1).join('×')).join(' + ');
}

/**
 * The micro-batch a training step at `batchSize` runs in and the evaluation batch that fit the
 * tensor memory. `microBatchSize` forces a micro-batch (config `train.microBatchSize`). Throws a
 * UserError naming the model, its input size and the memory needed when one sample does not fit.
 */
export function planMemory(model: tf.LayersModel, batchSize: number, options: { microBatchSize?: number; limitBytes?: number; teacher?: tf.LayersModel } = {}): MemoryPlan {
  const footprint = activationFootprint(model);
  const limit = tensorMemoryLimit();
  const limitBytes = options.limitBytes ?? limit.bytes;
  const weightBytes = modelWeightBytes(model);
  // Distillation's teacher: its weights (already in use when it exists, counted again in case it is made later),
  // its outputs kept for the batch, and one inference pass per micro-batch (before the student's pass, so the larger counts).
  const teacher = options.teacher ? teacherFootprint(options.teacher) : undefined;
  const fixed = Math.max(tensorMemoryInUse(), weightBytes + (teacher?.weightBytes ?? 0)) + TRAINING_STATE_PER_WEIGHT_BYTE * weightBytes
    + (teacher ? teacher.outputBytes * batchSize : 0);
  const usable = limitBytes * HEADROOM - fixed;
  const perSample = Math.max(TRAIN_BYTES_PER_OUTPUT_BYTE * footprint.outputBytes, teacher?.forwardBytes ?? 0);
  const fitting = perSample > 0 ? Math.floor(usable / perSample) : batchSize;
  if (fitting < 1) {
    throw new UserError(
      `training ${model.name} on ${inputDescription(model)} inputs needs about ${formatMiB(fixed + perSample)} for one sample, more than ${limit.where} holds (${formatMiB(limitBytes)})`,
      { field: 'train', fix: 'Use smaller inputs (resize the images and the model input), or a backend with more memory ("backend": "tensorflow" with @tensorflow/tfjs-node)' });
  }
  const microBatchSize = Math.max(1, Math.min(batchSize, options.microBatchSize ?? fitting));
  return {
    batchSize,
    microBatchSize,
    microBatches: Math.ceil(batchSize / microBatchSize),
    trainingBytes: Math.round(fixed + perSample * microBatchSize),
    limitBytes,
    limitWhere: limit.where,
  };
}

/**
 * The largest inference batch up to `requested` whose pass fits a quarter of the tensor memory
 * (at least 1): larger batches gain no speed, and large blocks fragment the heap for the phases after.
 */
export function fittingEvalBatch(model: tf.LayersModel, requested: number, limitBytes = tensorMemoryLimit().bytes): number {
  const footprint = activationFootprint(model);
  const perSample = Math.max(EVAL_BYTES_PER_LARGEST_OUTPUT * footprint.largestOutputBytes, EVAL_BYTES_PER_OUTPUT_BYTE * footprint.outputBytes);
  if (!(perSample > 0)) return requested;
  const fitting = Math.floor(limitBytes * EVAL_SHARE / perSample);
  return Math.max(1, Math.min(requested, fitting));
}

/** What a distillation teacher holds: weights, its final outputs per sample, and an inference pass per sample. */
function teacherFootprint(teacher: tf.LayersModel): { weightBytes: number; outputBytes: number; forwardBytes: number } {
  const footprint = activationFootprint(teacher);
  const outputBytes = teacher.outputs.reduce((n, o) => n + 4 * o.shape.slice(1).reduce<number>((a, d) => a * (d ?? 1), 1), 0);
  return {
    weightBytes: modelWeightBytes(teacher),
    outputBytes,
    forwardBytes: Math.max(EVAL_BYTES_PER_LARGEST_OUTPUT * footprint.largestOutputBytes, EVAL_BYTES_PER_OUTPUT_BYTE * footprint.outputBytes),
  };
}

function modelWeightBytes(model: tf.LayersModel): number {
  return model.weights.reduce((n, w) => n + 4 * w.shape.reduce<number>((a, d) => a * (d ?? 1), 1), 0);
}
