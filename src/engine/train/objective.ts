/**
 * What training minimises and what evaluation reports, per model output: a task loss against the
 * batch's targets (sparse / one-hot / binary cross-entropy, mse, mae, huber), distillation from a
 * frozen teacher (the dense model: KL at a temperature on classifier outputs, mse otherwise), or a
 * mix; and the metric that fits (top-1, multi-label F1, MAE and R², fidelity to the teacher).
 * The one training loop builds it once per phase; trainStep, the micro-batched gradients and
 * evaluation all call `objectiveLoss`, so they agree.
 */
import * as tf from '@tensorflow/tfjs';
import type { DistillLoss, ObjectiveConfig, ObjectiveKind, TaskLoss, TaskLossSpec } from '../config/types.js';
import { UserError } from '../errors.js';
import { appliedActivation } from '../layers/index.js';
import type { Dataset, DatasetTargets, Metric } from './types.js';

export type { Metric } from './types.js';

export type { DistillLoss, ObjectiveConfig, ObjectiveKind, TaskLoss } from '../config/types.js';

const EPSILON = 1e-7;
const HUBER_DELTA = 1;
export const DEFAULT_TEMPERATURE = 4;
const F1_THRESHOLD = 0.5;

/** What a training phase or an evaluation is given beyond the model and data: the config's objective and the teacher. */
export interface ObjectiveOptions {
  config?: ObjectiveConfig;
  /** The frozen dense model; required for distillation and for fidelity on unlabelled data. */
  teacher?: tf.LayersModel;
}

/** How the model's outputs end: probabilities from a softmax or a sigmoid, or raw values (logits, regression). */
export type OutputActivation = 'softmax' | 'sigmoid' | 'none';

export interface OutputObjective {
  index: number;
  name: string;
  activation: OutputActivation;
  /** The task loss against this output's targets, with its weight; absent when the data has no targets. */
  task?: { loss: TaskLoss; weight: number };
  /** The distance to the teacher's output; absent for the task objective. */
  distill?: DistillLoss;
  /** A class-score output (softmax, or logits trained by a cross-entropy or KL): top-1 and agreement apply. */
  classifier: boolean;
}

export interface Objective {
  kind: ObjectiveKind;
  targets: DatasetTargets;
  outputs: OutputObjective[];
  /** α: loss = α·distill + (1−α)·task with labels; 1 without. */
  distillWeight: number;
  temperature: number;
  teacher?: tf.LayersModel;
}


export function activationOfOutput(model: tf.LayersModel, index: number): OutputActivation {
  const layer = model.outputLayers[index];
  const activation = layer ? appliedActivation(layer) : 'linear';
  return activation === 'softmax' || activation === 'sigmoid' ? activation : 'none';
}

export function outputNames(model: tf.LayersModel): string[] {
  return model.outputs.map((_, i) => model.outputLayers[i]?.name ?? `output ${i}`);
}

const TASK_LOSSES: readonly TaskLoss[] = ['sparse-categorical-crossentropy', 'categorical-crossentropy', 'binary-crossentropy', 'mse', 'mae', 'huber'];

/** The task loss "auto" picks: int labels → sparse CE; float targets on softmax → categorical, on sigmoid → binary, else mse. */
function autoTaskLoss(targets: DatasetTargets, activation: OutputActivation): TaskLoss {
  if (targets === 'labels') return 'sparse-categorical-crossentropy';
  if (activation === 'softmax') return 'categorical-crossentropy';
  if (activation === 'sigmoid') return 'binary-crossentropy';
  return 'mse';
}

/** The objective kind a config asks for, or the default: distillation when the data has no targets. */
export function objectiveKind(config: ObjectiveConfig | undefined, targets: DatasetTargets): ObjectiveKind {
  return config?.objective ?? (targets === 'none' ? 'distill' : 'task');
}

/**
 * Resolves the objective of `model` on `data`: per output, its task loss (config `loss`) and its
 * distillation distance (config `distill.loss`). Throws a UserError naming the field when the
 * config asks for what the data or the session cannot give.
 */
export function buildObjective(model: tf.LayersModel, data: Pick<Dataset, 'targets'>, options: ObjectiveOptions = {}): Objective {
  const config = options.config ?? {};
  const targets = data.targets;
  const kind = objectiveKind(config, targets);
  if (kind === 'task' && targets === 'none') {
    throw new UserError('"objective": "task" needs targets, but the data has none (unlabelled samples)', {
      field: 'objective', fix: 'Remove "objective" or set it to "distill" (the dense model teaches the pruned one), or point "data" at labelled data' });
  }
  if (kind === 'distill' && !options.teacher) {
    throw new UserError('distillation needs the dense model as a teacher, and none was given', {
      field: 'objective', fix: 'Run distillation through a pruning session, which keeps the dense model as the teacher' });
  }
  const names = outputNames(model);
  const perOutput = typeof config.loss === 'object' ? config.loss : undefined;
  if (perOutput) {
    for (const name of Object.keys(perOutput)) {
      if (!names.includes(name)) throw new UserError(`"loss" names output "${name}", which the model does not have (its outputs: ${names.join(', ')})`, { field: 'loss', fix: 'Name the model\'s output layers in "loss"' });
    }
  }
  const distillLosses = config.distill?.loss ?? {};
  for (const name of Object.keys(distillLosses)) {
    if (!names.includes(name)) throw new UserError(`"distill.loss" names output "${name}", which the model does not have (its outputs: ${names.join(', ')})`, { field: 'distill.loss', fix: 'Name the model\'s output layers in "distill.loss"' });
  }
  if (targets === 'labels' && model.outputs.length > 1) {
    throw new UserError(`class labels give one target, but the model has ${model.outputs.length} outputs (${names.join(', ')})`, {
      field: 'data', fix: 'Give one target array per output (npy "y" as a list), or train by distillation without labels' });
  }
  const outputs = model.outputs.map((_, index): OutputObjective => {
    const name = names[index];
    const activation = activationOfOutput(model, index);
    let task: OutputObjective['task'];
    if (targets !== 'none') {
      const chosen: TaskLossSpec | undefined = perOutput ? perOutput[name] : config.loss as TaskLoss | 'auto' | undefined;
      const spec = typeof chosen === 'object' ? chosen : { type: chosen ?? 'auto', weight: 1 };
      const loss = !spec.type || spec.type === 'auto' ? autoTaskLoss(targets, activation) : spec.type as TaskLoss;
      if (!TASK_LOSSES.includes(loss)) throw new UserError(`unknown loss "${loss}" for output "${name}"`, { field: 'loss', fix: `Use one of auto, ${TASK_LOSSES.join(', ')}` });
      if (targets === 'labels' && loss !== 'sparse-categorical-crossentropy') {
        throw new UserError(`output "${name}" has integer class labels, which only "sparse-categorical-crossentropy" takes, not "${loss}"`, { field: 'loss', fix: 'Set "loss" to "auto", or give one-hot / float targets' });
      }
      if (targets === 'values' && loss === 'sparse-categorical-crossentropy') {
        throw new UserError(`output "${name}" has float targets, which "sparse-categorical-crossentropy" does not take`, { field: 'loss', fix: 'Use "categorical-crossentropy" for one-hot targets, or "auto"' });
      }
      task = { loss, weight: spec.weight ?? 1 };
    }
    const taskClassifies = task?.loss === 'sparse-categorical-crossentropy' || task?.loss === 'categorical-crossentropy';
    const distill: DistillLoss | undefined = kind === 'distill' ? distillLosses[name] ?? (activation === 'softmax' || taskClassifies ? 'kl' : 'mse') : undefined;
    const classifier = activation === 'softmax' || taskClassifies || distill === 'kl';
    return { index, name, activation, task, distill, classifier };
  });
  const alpha = kind === 'distill' && targets !== 'none' ? config.distill?.weight ?? 1 : 1;
  return {
    kind, targets, outputs,
    distillWeight: kind === 'distill' ? alpha : 0,
    temperature: config.distill?.temperature ?? DEFAULT_TEMPERATURE,
    teacher: kind === 'distill' || targets === 'none' ? options.teacher : undefined,
  };
}

/** One line: what the objective trains ("distillation from the dense model (KL at T=4 on probs, mse on box)"). */
export function describeObjective(objective: Objective): string {
  const task = objective.outputs.filter((o) => o.task).map((o) => `${o.task!.loss} on ${o.name}`).join(', ');
  const distill = objective.outputs.map((o) => `${o.distill === 'kl' ? `KL at T=${objective.temperature}` : 'mse'} on ${o.name}`).join(', ');
  if (objective.kind === 'task') return task;
  if (objective.targets === 'none' || objective.distillWeight === 1) return `distillation from the dense model (${distill})`;
  return `${objective.distillWeight} × distillation (${distill}) + ${1 - objective.distillWeight} × task (${task})`;
}

/**
 * A frozen copy of `model` (its own weights, copied, so in-place optimizer updates of the student
 * never reach it), for distillation: the dense model as it was before pruning.
 */
export async function frozenTeacher(model: tf.LayersModel): Promise<tf.LayersModel> {
  const topology = model.toJSON(undefined, false) as unknown;
  const teacher = await tf.models.modelFromJSON({ modelTopology: topology } as unknown as Parameters<typeof tf.models.modelFromJSON>[0]);
  const copies = model.weights.map((w) => {
    const value = w.read();
    return tf.tensor(value.dataSync().slice(), value.shape, value.dtype);
  });
  try {
    teacher.setWeights(copies);
  } finally {
    tf.dispose(copies);
  }
  teacher.trainable = false;
  return teacher;
}

/** The model's outputs as a list, whatever apply returned. */
export function asOutputs(result: tf.Tensor | tf.Tensor[]): tf.Tensor[] {
  return Array.isArray(result) ? result : [result];
}

/** The per-sample mean over every axis but the first: [n, ...] → [n]. */
function perSampleMean(t: tf.Tensor): tf.Tensor1D {
  return (t.rank <= 1 ? t : tf.mean(t, Array.from({ length: t.rank - 1 }, (_, i) => i + 1))) as tf.Tensor1D;
}

/** Log-probabilities over the last axis, from probabilities (clipped, as Keras does) or from logits. */
function logProbabilities(output: tf.Tensor, probabilities: boolean): tf.Tensor {
  return probabilities ? tf.log(tf.clipByValue(output, EPSILON, 1 - EPSILON)) : tf.logSoftmax(output);
}

/** Per-sample task loss [n] of one output against its target. */
export function taskLossPerSample(loss: TaskLoss, output: tf.Tensor, target: tf.Tensor, activation: OutputActivation): tf.Tensor1D {
  return tf.tidy(() => {
    switch (loss) {
      case 'sparse-categorical-crossentropy': {
        const classes = output.shape[output.shape.length - 1] as number;
        const oneHot = tf.oneHot(tf.cast(target, 'int32') as tf.Tensor1D, classes);
        return perSampleMean(tf.neg(tf.sum(tf.mul(oneHot, logProbabilities(output, activation === 'softmax')), -1)));
      }
      case 'categorical-crossentropy':
        return perSampleMean(tf.neg(tf.sum(tf.mul(target, logProbabilities(output, activation === 'softmax')), -1)));
      case 'binary-crossentropy': {
        if (activation === 'sigmoid') {
          const p = tf.clipByValue(output, EPSILON, 1 - EPSILON);
          return perSampleMean(tf.neg(tf.add(tf.mul(target, tf.log(p)), tf.mul(tf.sub(1, target), tf.log(tf.sub(1, p))))));
        }
        // From logits, stably: max(z, 0) − z·y + log(1 + e^−|z|).
        return perSampleMean(tf.add(tf.sub(tf.relu(output), tf.mul(output, target)), tf.log1p(tf.exp(tf.neg(tf.abs(output))))));
      }
      case 'mse':
        return perSampleMean(tf.square(tf.sub(output, target)));
      case 'mae':
        return perSampleMean(tf.abs(tf.sub(output, target)));
      case 'huber': {
        const error = tf.abs(tf.sub(output, target));
        const quadratic = tf.minimum(error, HUBER_DELTA);
        return perSampleMean(tf.add(tf.mul(0.5, tf.square(quadratic)), tf.mul(HUBER_DELTA, tf.sub(error, quadratic))));
      }
    }
  });
}

/**
 * Per-sample distillation distance [n] of one output from the teacher's: KL(teacher‖student) of the
 * distributions softened at `temperature`, scaled by T² (so gradients keep their size), or mse.
 */
export function distillLossPerSample(loss: DistillLoss, output: tf.Tensor, teacherOutput: tf.Tensor, activation: OutputActivation, temperature: number): tf.Tensor1D {
  return tf.tidy(() => {
    if (loss === 'mse') return perSampleMean(tf.square(tf.sub(output, teacherOutput)));
    // Logits: softmax outputs give theirs back as log-probabilities (softmax(log p / T) = p^(1/T), normalised).
    const studentLogits = activation === 'softmax' ? logProbabilities(output, true) : output;
    const teacherLogits = activation === 'softmax' ? logProbabilities(teacherOutput, true) : teacherOutput;
    const studentLog = tf.logSoftmax(tf.div(studentLogits, temperature));
    const teacherLog = tf.logSoftmax(tf.div(teacherLogits, temperature));
    const kl = tf.sum(tf.mul(tf.exp(teacherLog), tf.sub(teacherLog, studentLog)), -1);
    return tf.mul(perSampleMean(kl), temperature * temperature) as tf.Tensor1D;
  });
}

/**
 * The objective's loss, per sample [n]: Σ weightᵢ·taskᵢ, Σ distillᵢ, or α·distill + (1−α)·task.
 * `targets` and `teacherOutputs` are sliced like `outputs`.
 */
export function objectiveLossPerSample(objective: Objective, outputs: tf.Tensor[], targets: tf.Tensor[] | undefined, teacherOutputs: tf.Tensor[] | undefined): tf.Tensor1D {
  return tf.tidy(() => {
    let task: tf.Tensor1D | undefined;
    let distill: tf.Tensor1D | undefined;
    const wantTask = objective.kind === 'task' || (objective.targets !== 'none' && objective.distillWeight < 1);
    for (const o of objective.outputs) {
      if (wantTask && o.task) {
        const target = targets?.[o.index];
        if (!target) throw new Error(`the batch has no target for output ${o.name}`);
        const term = tf.mul(taskLossPerSample(o.task.loss, outputs[o.index], target, o.activation), o.task.weight) as tf.Tensor1D;
        task = task ? tf.add(task, term) as tf.Tensor1D : term;
      }
      if (objective.kind === 'distill' && o.distill) {
        const teacher = teacherOutputs?.[o.index];
        if (!teacher) throw new Error(`no teacher output for ${o.name}`);
        const term = distillLossPerSample(o.distill, outputs[o.index], teacher, o.activation, objective.temperature);
        distill = distill ? tf.add(distill, term) as tf.Tensor1D : term;
      }
    }
    if (objective.kind === 'task') return task!;
    if (!task) return distill!;
    const alpha = objective.distillWeight;
    return tf.add(tf.mul(distill!, alpha), tf.mul(task, 1 - alpha)) as tf.Tensor1D;
  });
}

/** Whether the objective reads the teacher's outputs (distillation, or fidelity on unlabelled data). */
export function needsTeacher(objective: Objective): boolean {
  return objective.teacher !== undefined;
}

/**
 * The teacher's outputs on `x`, in inference mode and outside any gradient tape, in chunks of
 * `chunk` samples (the micro-batch that fits); the caller disposes them.
 */
export function teacherOutputs(objective: Objective, x: tf.Tensor, chunk = x.shape[0]): tf.Tensor[] | undefined {
  const teacher = objective.teacher;
  if (!teacher) return undefined;
  const n = x.shape[0];
  if (chunk >= n) return tf.tidy(() => asOutputs(teacher.apply(x, { training: false }) as tf.Tensor | tf.Tensor[]));
  const parts: tf.Tensor[][] = [];
  for (let start = 0; start < n; start += chunk) {
    const size = Math.min(chunk, n - start);
    parts.push(tf.tidy(() => asOutputs(teacher.apply(sliceSamples(x, start, size), { training: false }) as tf.Tensor | tf.Tensor[])));
  }
  const joined = parts[0].map((_, i) => tf.concat(parts.map((p) => p[i]), 0));
  tf.dispose(parts.flat());
  return joined;
}

/** Samples [start, start + size) of a batch tensor. */
export function sliceSamples(t: tf.Tensor, start: number, size: number): tf.Tensor {
  if (start === 0 && size === t.shape[0]) return t;
  return tf.slice(t, [start, ...t.shape.slice(1).map(() => 0)], [size, ...t.shape.slice(1).map(() => -1)]);
}

/** Whether the training loop's per-step accuracy (top-1 on output 0 against labels or one-hot targets) applies. */
export function countsTopOne(objective: Objective): boolean {
  const first = objective.outputs[0];
  return first?.task?.loss === 'sparse-categorical-crossentropy' || first?.task?.loss === 'categorical-crossentropy';
}

/** Samples whose arg-max on output 0 matches the label (or the one-hot target's arg-max); a float32 scalar. */
export function topOneCorrect(objective: Objective, outputs: tf.Tensor[], targets: tf.Tensor[] | undefined): tf.Scalar {
  return tf.tidy(() => {
    const target = targets?.[0];
    if (!countsTopOne(objective) || !target) return tf.scalar(0);
    const predicted = tf.argMax(outputs[0], -1);
    const truth = target.dtype === 'int32' && target.rank === outputs[0].rank - 1 ? target : tf.argMax(target, -1);
    return tf.sum(tf.cast(tf.equal(predicted, truth), 'float32'));
  });
}

/** Sums over an evaluation, per output, from which every metric is read at the end. */
interface OutputSums {
  correct: number;
  truePositives: number; falsePositives: number; falseNegatives: number;
  absoluteError: number; squaredError: number; elements: number;
  /** Per feature (every axis but the first), for R²: Σy and Σy². */
  targetSum?: Float64Array; targetSquareSum?: Float64Array;
  agreement: number;
  teacherDistance: number; teacherNorm: number;
}

const emptySums = (): OutputSums => ({ correct: 0, truePositives: 0, falsePositives: 0, falseNegatives: 0, absoluteError: 0, squaredError: 0, elements: 0, agreement: 0, teacherDistance: 0, teacherNorm: 0 });

/** Accumulates an evaluation's metrics batch by batch. */
export class MetricAccumulator {
  private readonly sums: OutputSums[];
  private samples = 0;

  constructor(private readonly objective: Objective) {
    this.sums = objective.outputs.map(emptySums);
  }

  async add(outputs: tf.Tensor[], targets: tf.Tensor[] | undefined, teacher: tf.Tensor[] | undefined): Promise<void> {
    this.samples += outputs[0].shape[0];
    for (const o of this.objective.outputs) {
      const sums = this.sums[o.index];
      const output = outputs[o.index];
      const target = targets?.[o.index];
      const reads: tf.Tensor[] = [];
      const scalars = tf.tidy(() => {
        const values: tf.Scalar[] = [];
        const loss = o.task?.loss;
        if (target && (loss === 'sparse-categorical-crossentropy' || loss === 'categorical-crossentropy')) {
          const truth = loss === 'sparse-categorical-crossentropy' ? tf.cast(target, 'int32') : tf.argMax(target, -1);
          values.push(tf.sum(tf.cast(tf.equal(tf.argMax(output, -1), truth), 'float32')));
        } else values.push(tf.scalar(0));
        if (target && loss === 'binary-crossentropy') {
          const predicted = tf.cast(o.activation === 'sigmoid' ? tf.greaterEqual(output, F1_THRESHOLD) : tf.greaterEqual(output, 0), 'float32');
          const truth = tf.cast(tf.greaterEqual(target, 0.5), 'float32');
          values.push(tf.sum(tf.mul(predicted, truth)), tf.sum(tf.mul(predicted, tf.sub(1, truth))), tf.sum(tf.mul(tf.sub(1, predicted), truth)));
        } else values.push(tf.scalar(0), tf.scalar(0), tf.scalar(0));
        const regression = target && (loss === 'mse' || loss === 'mae' || loss === 'huber');
        if (regression) {
          const error = tf.sub(output, target);
          values.push(tf.sum(tf.abs(error)), tf.sum(tf.square(error)));
          const flat = tf.reshape(target, [target.shape[0], -1]);
          reads.push(tf.keep(tf.sum(flat, 0)), tf.keep(tf.sum(tf.square(flat), 0)));
        } else values.push(tf.scalar(0), tf.scalar(0));
        const teacherOutput = teacher?.[o.index];
        if (teacherOutput) {
          values.push(o.classifier ? tf.sum(tf.cast(tf.equal(tf.argMax(output, -1), tf.argMax(teacherOutput, -1)), 'float32')) : tf.scalar(0));
          values.push(tf.sum(tf.square(tf.sub(output, teacherOutput))), tf.sum(tf.square(teacherOutput)));
        } else values.push(tf.scalar(0), tf.scalar(0), tf.scalar(0));
        return tf.stack(values);
      });
      const [correct, tp, fp, fn, absoluteError, squaredError, agreement, distance, norm] = await scalars.data();
      scalars.dispose();
      sums.correct += correct; sums.truePositives += tp; sums.falsePositives += fp; sums.falseNegatives += fn;
      sums.absoluteError += absoluteError; sums.squaredError += squaredError;
      sums.agreement += agreement; sums.teacherDistance += distance; sums.teacherNorm += norm;
      if (reads.length) {
        const [sum, squares] = await Promise.all(reads.map((t) => t.data()));
        tf.dispose(reads);
        sums.elements += output.size;
        sums.targetSum ??= new Float64Array(sum.length);
        sums.targetSquareSum ??= new Float64Array(sum.length);
        for (let i = 0; i < sum.length; i++) { sums.targetSum[i] += sum[i]; sums.targetSquareSum[i] += squares[i]; }
      }
    }
  }

  /** Every metric that applies, the primary one first (output 0's task metric, else fidelity to the teacher). */
  metrics(): Metric[] {
    const n = this.samples;
    const several = this.objective.outputs.length > 1;
    const named = (name: string, o: OutputObjective) => several ? `${name} (${o.name})` : name;
    const task: Metric[] = [];
    const fidelity: Metric[] = [];
    for (const o of this.objective.outputs) {
      const s = this.sums[o.index];
      const loss = o.task?.loss;
      if (loss === 'sparse-categorical-crossentropy' || loss === 'categorical-crossentropy') task.push({ name: named('top-1', o), value: n ? s.correct / n : NaN, higherIsBetter: true });
      if (loss === 'binary-crossentropy') {
        const denominator = 2 * s.truePositives + s.falsePositives + s.falseNegatives;
        task.push({ name: named('multi-label F1', o), value: denominator ? 2 * s.truePositives / denominator : 1, higherIsBetter: true });
      }
      if ((loss === 'mse' || loss === 'mae' || loss === 'huber') && s.elements > 0 && s.targetSum && s.targetSquareSum) {
        task.push({ name: named('MAE', o), value: s.absoluteError / s.elements, higherIsBetter: false });
        let total = 0;
        for (let i = 0; i < s.targetSum.length; i++) total += s.targetSquareSum[i] - s.targetSum[i] * s.targetSum[i] / n;
        task.push({ name: named('R²', o), value: total > 0 ? 1 - s.squaredError / total : NaN, higherIsBetter: true });
      }
      if (this.objective.teacher) {
        if (o.classifier) fidelity.push({ name: named('top-1 agreement with the dense model', o), value: n ? s.agreement / n : NaN, higherIsBetter: true });
        fidelity.push({ name: named('relative error vs the dense model', o), value: s.teacherNorm > 0 ? Math.sqrt(s.teacherDistance / s.teacherNorm) : Math.sqrt(s.teacherDistance), higherIsBetter: false });
      }
    }
    return [...task, ...fidelity];
  }
}
