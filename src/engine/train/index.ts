import * as tf from '@tensorflow/tfjs';
import type { TrainConfig } from '../config/types.js';
import type { StepEvent } from '../../protocol/events.js';
import { CancelledError, UserError } from '../errors.js';
import { mixSeed, seededRandom } from '../util/random.js';
import { MetricAccumulator, asOutputs, buildObjective, countsTopOne, objectiveLossPerSample, sliceSamples, teacherOutputs, topOneCorrect, type Objective, type ObjectiveOptions } from './objective.js';
import { Optimizer, isDecayed, learningRateAt, type Parameter } from './optimizer.js';
import { disposeBatch, samplesIn, type Batch, type BatchStep, type Dataset, type EpochInfo, type EvalResult, type StepInfo, type TrainHooks, type TrainingSnapshot } from './types.js';
import { HeapExhaustedError, formatMiB, peakTensorMemory } from '../backend/heap.js';
import { fittingEvalBatch, planMemory, type MemoryPlan } from './memory.js';

export type { Batch, BatchStep, Dataset, EpochInfo, EvalResult, StepInfo, TrainHooks, TrainingSnapshot, TrainConfig } from './types.js';
export { snapshotBatchNorm, recalibrateBatchNorm, hasBatchNorm, MIN_RECALIBRATION_SAMPLES } from './batchnorm.js';
import { BatchNormCheckpoint, installScaleFreeBatchNormTraining } from './batchnorm.js';

installScaleFreeBatchNormTraining();
export { buildObjective, describeObjective, type Objective, type ObjectiveOptions } from './objective.js';
export { planMemory, type MemoryPlan } from './memory.js';

/** What a step reports: the fields of the protocol's step event that training knows. */
export type StepProgress = Pick<StepEvent, 'epoch' | 'step' | 'stepsPerEpoch' | 'loss' | 'learningRate' | 'etaMs'>;

export interface TrainControl {
  /** Seeds dropout and any other random layer; with the dataset's seed, runs are reproducible. */
  seed: number;
  /** Checked after every step: an aborted signal ends training with CancelledError. */
  signal?: AbortSignal;
  /** Label of the phase (train, finetune, …), for progress reports. */
  phase?: string;
  onStep?: (s: StepProgress) => void;
  onEpoch?: (e: EpochInfo & { etaMs: number }) => void;
  /** The memory plan, once, before the first step. */
  onMemoryPlan?: (plan: MemoryPlan) => void;
  /** The config's objective and the teacher (the frozen dense model); the task loss on the data's targets when absent. */
  objective?: ObjectiveOptions;
}

/** Runs a hook in a tensor scope that frees what it leaves behind (hooks may be async, which tf.tidy does not allow). */
async function inTensorScope(hook: () => void | Promise<void>): Promise<void> {
  tf.engine().startScope();
  try {
    await hook();
  } finally {
    tf.engine().endScope();
  }
}

/** Copies every weight of `model` (batch-norm statistics included) and the optimizer's state. */
function snapshotTraining(model: tf.LayersModel, optimizer: Optimizer): TrainingSnapshot {
  const weights = model.weights.map((weight) => ({ weight, copy: tf.keep(tf.clone(weight.read())) }));
  const optimizerState = optimizer.snapshot();
  let released = false;
  const dispose = () => {
    if (released) return;
    released = true;
    tf.dispose(weights.map((w) => w.copy));
    optimizerState.dispose();
  };
  return {
    restore: () => {
      if (released) return;
      for (const { weight, copy } of weights) weight.write(copy);
      optimizerState.restore();
      dispose();
    },
    dispose,
  };
}

/** Lets pending I/O (an IPC cancel message) run between steps; a resolved promise would not. */
const yieldToEventLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * Runs unseeded tfjs randomness (dropout masks, noise layers: they seed themselves from
 * Math.random) from a stream derived from `seed`, so a run is reproducible.
 */
function withSeededMathRandom<T>(seed: number, fn: () => T): T {
  const original = Math.random;
  Math.random = seededRandom(seed);
  try {
    return fn();
  } finally {
    Math.random = original;
  }
}

function checkInputShape(model: tf.LayersModel, data: Dataset): void {
  const expected = model.inputs[0].shape.slice(1);
  const ok = expected.length === data.sampleShape.length && expected.every((d, i) => d == null || d === data.sampleShape[i]);
  if (!ok) {
    throw new UserError(`the data's samples are [${data.sampleShape.join(', ')}] but the model input is [${expected.join(', ')}]`, {
      field: 'data', fix: 'Use data shaped like the model input' });
  }
}

function trainableParameters(model: tf.LayersModel): Parameter[] {
  return model.trainableWeights.map((w) => ({ variable: w.read() as tf.Variable, decay: isDecayed(w.originalName) }));
}

/** Regularisation losses declared on the model's layers (kernelRegularizer …), as model.fit adds them. */
function layerLosses(model: tf.LayersModel): tf.Scalar[] {
  return model.calculateLosses();
}

/**
 * Trains `model` in place with a custom loop (BatchNormalization in training mode), evaluating on the
 * validation split after every epoch. Returns the last evaluation, or undefined without validation data.
 */
export async function trainModel(model: tf.LayersModel, data: Dataset, settings: TrainConfig, hooks: TrainHooks = {},
  control: TrainControl = { seed: 0 }): Promise<EvalResult | undefined> {
  checkInputShape(model, data);
  const { signal } = control;
  const checkCancelled = () => { if (signal?.aborted) throw new CancelledError(); };
  checkCancelled();

  const batchSize = Math.max(1, Math.floor(settings.batchSize));
  const fullEpochSteps = Math.ceil(data.trainSize / batchSize);
  const stepsPerEpoch = Math.min(fullEpochSteps, settings.maxStepsPerEpoch ?? Infinity);
  const totalSteps = Math.round(Math.max(0, settings.epochs) * stepsPerEpoch);
  const epochs = Math.ceil(totalSteps / Math.max(1, stepsPerEpoch));
  const objective = buildObjective(model, data, control.objective);
  const plan = planMemory(model, batchSize, { microBatchSize: settings.microBatchSize, teacher: objective.teacher });
  control.onMemoryPlan?.(plan);
  let microBatchSize = plan.microBatchSize;
  const evalBatchSize = Math.max(batchSize, 128);
  const optimizer = new Optimizer(settings);
  const evaluate = data.validationSize > 0;

  const startEpoch = Math.min(Math.max(0, Math.floor(settings.startEpoch ?? 0)), epochs);
  let globalStep = startEpoch * stepsPerEpoch;
  let stepMsAverage: number | undefined;
  let evalMs = 0;
  let lastEval: EvalResult | undefined;
  const etaMs = () => (stepMsAverage ?? 0) * (totalSteps - globalStep) + evalMs * Math.max(0, epochs - Math.ceil(globalStep / Math.max(1, stepsPerEpoch)));
  /** One optimizer step on `batch`, in the micro-batches that fit; returns [objective loss, correct top-1 predictions]. */
  const optimizerStep = async (batch: TeacherBatch, learningRate: number, stepSeed: number): Promise<Float32Array | Int32Array | Uint8Array> => {
    const parameters = trainableParameters(model);
    const run = await withMicroBatchRetry(model, plan, microBatchSize, (size) => size < samplesIn(batch)
      ? trainStepInMicroBatches(model, batch, parameters, optimizer, learningRate, objective, hooks, stepSeed, size)
      : trainStep(model, batch, parameters, optimizer, learningRate, objective, hooks, stepSeed));
    if (run.microBatchSize !== microBatchSize) {
      microBatchSize = run.microBatchSize;
      control.onMemoryPlan?.({ ...plan, microBatchSize, microBatches: Math.ceil(batchSize / microBatchSize) });
    }
    return run.result;
  };

  try {
    for (let epoch = startEpoch; epoch < epochs; epoch++) {
      await hooks.beforeEpoch?.({ epoch, epochs });
      const stepsThisEpoch = Math.min(stepsPerEpoch, totalSteps - epoch * stepsPerEpoch);
      let lossSum = 0, correctSum = 0, seen = 0, step = 0;
      for await (const dataBatch of data.trainBatches(batchSize, epoch)) {
        const started = performance.now();
        // The teacher's forward pass: once per batch, outside the gradient tape, shared by the look-ahead's extra steps.
        const batch: TeacherBatch = { ...dataBatch, teacher: teacherOutputs(objective, dataBatch.x, microBatchSize) };
        const learningRate = learningRateAt(settings, globalStep, stepsPerEpoch, totalSteps);
        const stepSeed = mixSeed(control.seed, 0xd0, globalStep);
        let stats: Float32Array | Int32Array | Uint8Array;
        let info: StepInfo;
        try {
          stats = await optimizerStep(batch, learningRate, stepSeed);
          info = { epoch, step, globalStep, totalSteps, learningRate, loss: stats[0] };
          const { afterBatch } = hooks;
          if (afterBatch) {
            const batchStep: BatchStep = {
              info, batch,
              step: async () => (await optimizerStep(batch, learningRate, stepSeed))[0],
              snapshot: () => snapshotTraining(model, optimizer),
            };
            await inTensorScope(() => afterBatch(batchStep));
          }
        } finally {
          disposeBatch(batch);
          tf.dispose(batch.teacher ?? []);
        }
        const n = samplesIn(batch);
        const loss = stats[0];
        lossSum += loss * n; correctSum += stats[1]; seen += n;
        const { afterStep } = hooks;
        if (afterStep) await inTensorScope(() => afterStep(info));
        const elapsed = performance.now() - started;
        stepMsAverage = stepMsAverage === undefined ? elapsed : 0.9 * stepMsAverage + 0.1 * elapsed;
        globalStep++;
        control.onStep?.({ epoch, step, stepsPerEpoch, loss, learningRate, etaMs: etaMs() });
        step++;
        await yieldToEventLoop();
        checkCancelled();
        if (step >= stepsThisEpoch) break; // before the next batch is assembled (image folders decode it)
      }
      const info: EpochInfo = { epoch, epochs, loss: seen ? lossSum / seen : NaN, accuracy: seen && countsTopOne(objective) ? correctSum / seen : undefined };
      if (evaluate) {
        const started = performance.now();
        lastEval = await evaluateModel(model, data, evalBatchSize, signal, control.objective);
        evalMs = performance.now() - started;
        info.valLoss = lastEval.loss;
        info.valAccuracy = lastEval.accuracy;
        info.valMetric = lastEval.metric;
      }
      control.onEpoch?.({ ...info, etaMs: etaMs() });
      if ((await hooks.afterEpoch?.(info)) === 'stop') break;
    }
    if (startEpoch >= epochs && evaluate) lastEval = await evaluateModel(model, data, evalBatchSize, signal, control.objective);
  } finally {
    optimizer.dispose();
  }
  return lastEval;
}

/**
 * Runs a training step in passes of `microBatchSize`. When the plan underestimated the model
 * (per-group layers whose gradients outgrow their outputs) and a pass runs out of tensor memory,
 * the step is retried from the batch-norm statistics it started with, in passes half as large,
 * until it fits: the optimiser has not stepped yet. Returns the result and the size that fitted.
 */
async function withMicroBatchRetry<T>(model: tf.LayersModel, plan: MemoryPlan, microBatchSize: number,
  step: (microBatchSize: number) => T | Promise<T>): Promise<{ result: T; microBatchSize: number }> {
  // Copies of the statistics cost a few clones a step; worth it only where memory is tight.
  const checkpoint = plan.trainingBytes > plan.limitBytes / 4 ? new BatchNormCheckpoint(model) : undefined;
  try {
    for (let size = microBatchSize; ; size = Math.max(1, Math.floor(size / 2))) {
      try {
        return { result: await step(size), microBatchSize: size };
      } catch (err) {
        if (!(err instanceof HeapExhaustedError)) throw err;
        discardFailedTape();
        if (!checkpoint || size <= 1) throw stepDoesNotFit(model, { ...plan, microBatchSize: size }, err);
        checkpoint.restore();
      }
    }
  } finally {
    checkpoint?.dispose();
  }
}

/**
 * Frees what a gradient computation that threw left behind: tfjs disposes the tensors its tape
 * saved for the backward pass (every activation) only when the backward pass completes.
 */
function discardFailedTape(): void {
  const state = (tf.engine() as unknown as { state: { gradientDepth: number; activeTape: { saved?: tf.Tensor[] }[] | null } }).state;
  if (state.gradientDepth !== 0 || !state.activeTape) return;
  for (const node of state.activeTape) tf.dispose(node.saved ?? []);
  state.activeTape = null;
}

/** Runs `body`; if it throws, disposes the tensors `kept` names (tf.keep'd inside it, so no scope frees them). */
function keptUntilFailure<T>(kept: () => (tf.Tensor | undefined)[], body: () => T): T {
  try {
    return body();
  } catch (err) {
    tf.dispose(kept().filter((t): t is tf.Tensor => t !== undefined));
    throw err;
  }
}

/** The one line a step that ran out of tensor memory ends with, despite the plan. */
function stepDoesNotFit(model: tf.LayersModel, plan: MemoryPlan, err: HeapExhaustedError): UserError {
  const input = model.inputs.map((i) => i.shape.slice(1).join('×')).join(' + ');
  return new UserError(`training ${model.name} on ${input} inputs in micro-batches of ${plan.microBatchSize} ran out of tensor memory: ${err.problem}; planned ${formatMiB(plan.trainingBytes)}, peak ${formatMiB(peakTensorMemory().bytes)}`, {
    field: 'train.microBatchSize',
    fix: plan.microBatchSize > 1 ? `Set "microBatchSize" below ${plan.microBatchSize} in "train" and "finetune"` : 'Use smaller inputs (resize the images and the model input), or "backend": "tensorflow" with @tensorflow/tfjs-node' });
}

/** A training batch with the teacher's outputs on it (for distillation), computed once per batch. */
interface TeacherBatch extends Batch {
  teacher?: tf.Tensor[];
}

/** One forward/backward/update; returns [objective loss, correct top-1 predictions]. */
async function trainStep(model: tf.LayersModel, batch: TeacherBatch, parameters: Parameter[], optimizer: Optimizer, learningRate: number,
  objective: Objective, hooks: TrainHooks, stepSeed: number): Promise<Float32Array> {
  const statsTensor = tf.tidy(() => {
    let taskLoss: tf.Scalar | undefined;
    let outputs: tf.Tensor[] = [];
    const { grads } = keptUntilFailure(() => [...outputs, taskLoss], () => withSeededMathRandom(stepSeed, () => tf.variableGrads(() => {
      outputs = asOutputs(model.apply(batch.x, { training: true }) as tf.Tensor | tf.Tensor[]).map((o) => tf.keep(o));
      taskLoss = tf.keep(tf.mean(objectiveLossPerSample(objective, outputs, batch.y, batch.teacher)) as tf.Scalar);
      let total: tf.Scalar = taskLoss;
      for (const extra of layerLosses(model)) total = tf.add(total, extra);
      if (hooks.regularizer) total = tf.add(total, hooks.regularizer(model));
      return total;
    }, parameters.map((p) => p.variable))));
    optimizer.apply(parameters, grads, learningRate);
    const stats = tf.stack([taskLoss as tf.Scalar, topOneCorrect(objective, outputs, batch.y)]);
    tf.dispose([...outputs, taskLoss as tf.Scalar]); // kept past the gradient tape only for the stats
    return stats;
  });
  try {
    return (await statsTensor.data()) as Float32Array;
  } finally {
    statsTensor.dispose();
  }
}

/**
 * One step whose batch does not fit the tensor memory at once: the optimiser takes one step on
 * the gradients summed over micro-batches, as it would on the whole batch.
 * Returns [task loss, correct predictions] of the whole batch.
 */
async function trainStepInMicroBatches(model: tf.LayersModel, batch: TeacherBatch, parameters: Parameter[], optimizer: Optimizer, learningRate: number,
  objective: Objective, hooks: TrainHooks, stepSeed: number, microBatchSize: number): Promise<Float32Array> {
  const { grads, stats } = batchGradients(model, batch, parameters.map((p) => p.variable), objective, microBatchSize, stepSeed, hooks.regularizer);
  try {
    optimizer.apply(parameters, grads, learningRate);
    return (await stats.data()) as Float32Array;
  } finally {
    tf.dispose([...Object.values(grads), stats]);
  }
}

/**
 * Gradients of the batch's mean task loss (plus the model's layer losses and `regularizer`),
 * computed in passes of `microBatchSize` samples, each weighted by its share of the batch, and
 * summed: the whole batch's gradients, in the memory of one micro-batch. Batch-norm layers
 * normalise each pass by its own statistics. `stats` is [task loss, correct predictions]; the
 * caller disposes what is returned.
 */
export function batchGradients(model: tf.LayersModel, batch: TeacherBatch, variables: tf.Variable[], objective: Objective, microBatchSize: number,
  seed: number, regularizer?: (model: tf.LayersModel) => tf.Scalar): { grads: Record<string, tf.Tensor>; stats: tf.Tensor1D } {
  const n = samplesIn(batch);
  let grads: Record<string, tf.Tensor> = {};
  let stats: tf.Tensor1D = tf.zeros([2]);
  try {
    for (let start = 0, pass = 0; start < n; start += microBatchSize, pass++) {
      const size = Math.min(microBatchSize, n - start);
      const share = size / n;
      const next = tf.tidy(() => {
        const x = sliceSamples(batch.x, start, size);
        const y = batch.y?.map((t) => sliceSamples(t, start, size));
        const teacher = batch.teacher?.map((t) => sliceSamples(t, start, size));
        let taskLoss: tf.Scalar | undefined;
        let outputs: tf.Tensor[] = [];
        const pass_ = keptUntilFailure(() => [...outputs, taskLoss], () => withSeededMathRandom(mixSeed(seed, 0x3b, pass), () => tf.variableGrads(() => {
          outputs = asOutputs(model.apply(x, { training: true }) as tf.Tensor | tf.Tensor[]).map((o) => tf.keep(o));
          taskLoss = tf.keep(tf.mean(objectiveLossPerSample(objective, outputs, y, teacher)) as tf.Scalar);
          // Terms that do not depend on the data count once per step: a share in every pass.
          let total: tf.Scalar = tf.mul(taskLoss, share);
          for (const extra of layerLosses(model)) total = tf.add(total, tf.mul(extra, share));
          if (regularizer) total = tf.add(total, tf.mul(regularizer(model), share));
          return total;
        }, variables)));
        const summed: Record<string, tf.Tensor> = {};
        for (const [name, g] of Object.entries(pass_.grads)) summed[name] = grads[name] ? tf.add(grads[name], g) : g;
        const passStats = tf.add(stats, tf.stack([tf.mul(taskLoss as tf.Scalar, share), topOneCorrect(objective, outputs, y)])) as tf.Tensor1D;
        tf.dispose([...outputs, taskLoss as tf.Scalar]);
        return { summed, passStats };
      });
      tf.dispose([...Object.values(grads), stats]);
      grads = next.summed;
      stats = next.passStats;
    }
    return { grads, stats };
  } catch (err) {
    tf.dispose([...Object.values(grads), stats]);
    throw err;
  }
}

/**
 * The objective's loss and the metrics that fit the task (top-1, multi-label F1, MAE and R², or
 * fidelity to the teacher) in inference mode over the validation split (the training split when
 * there is none). `objective` is the config's objective and the teacher, as training takes them.
 */
export async function evaluateModel(model: tf.LayersModel, data: Dataset, batchSize = 256, signal?: AbortSignal, objectiveOptions?: ObjectiveOptions): Promise<EvalResult> {
  checkInputShape(model, data);
  batchSize = fittingEvalBatch(model, batchSize);
  const objective = buildObjective(model, data, objectiveOptions);
  const accumulator = new MetricAccumulator(objective);
  let lossSum = 0, samples = 0;
  // Without a validation split, the training samples as they are, never augmented.
  const batches = data.validationSize > 0 ? data.validationBatches(batchSize) : (data.unaugmented ?? data).trainBatches(batchSize, 0);
  for await (const batch of batches) {
    const teacher = teacherOutputs(objective, batch.x);
    try {
      const outputs = tf.tidy(() => asOutputs(model.apply(batch.x, { training: false }) as tf.Tensor | tf.Tensor[]));
      const lossTensor = tf.tidy(() => tf.sum(objectiveLossPerSample(objective, outputs, batch.y, teacher)));
      lossSum += (await lossTensor.data())[0];
      lossTensor.dispose();
      await accumulator.add(outputs, batch.y, teacher);
      tf.dispose(outputs);
      samples += samplesIn(batch);
    } finally {
      disposeBatch(batch);
      tf.dispose(teacher ?? []);
    }
    await yieldToEventLoop();
    if (signal?.aborted) throw new CancelledError();
  }
  const metrics = accumulator.metrics();
  const metric = metrics[0] ?? { name: 'loss', value: samples ? lossSum / samples : NaN, higherIsBetter: false };
  return { loss: samples ? lossSum / samples : NaN, metric, metrics, accuracy: metric.name === 'top-1' ? metric.value : undefined, samples };
}
