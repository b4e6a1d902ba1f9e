/**
 * The `*.prune.json` config as the engine sees it after validation against
 * schemas/prune-config.schema.json. Paths here are already resolved to absolute paths.
 */
import type { MethodName } from '../../protocol/methods.js';

export type { MethodName } from '../../protocol/methods.js';
export { METHOD_NAMES } from '../../protocol/methods.js';

export const TARGET_KINDS = ['flopsReduction', 'paramsReduction', 'latencyReduction', 'channelRatio', 'normThreshold'] as const;
export type TargetKind = (typeof TARGET_KINDS)[number];

/** Exactly one kind with its amount, e.g. { flopsReduction: 0.5 }. */
export type Target = { [K in TargetKind]: { [P in K]: number } }[TargetKind];

/** The kind of a target (the one key it has). */
export function targetKind(target: Target): TargetKind {
  return Object.keys(target)[0] as TargetKind;
}

export type BackendName = 'auto' | 'tensorflow' | 'wasm' | 'cpu';

export interface TrainConfig {
  epochs: number;
  batchSize: number;
  learningRate: number;
  momentum: number;
  weightDecay: number;
  optimizer: 'sgd' | 'adam';
  /** `auto`: constant for phases under `AUTO_CONSTANT_STEPS` steps, cosine over longer ones. */
  schedule: 'auto' | 'constant' | 'step' | 'cosine';
  /** For the step schedule: multiply the rate by `gamma` every `stepEpochs` epochs. */
  stepEpochs?: number;
  gamma?: number;
  /** Cap on batches per epoch, for quick runs. */
  maxStepsPerEpoch?: number;
  /**
   * Samples per forward/backward pass when a batch does not fit the tensor memory at once; the
   * gradients of the passes are summed into one step. Planned from the model when absent.
   */
  microBatchSize?: number;
  /**
   * Resume the phase at this epoch: the schedule, epoch numbers and ETA continue as if the
   * earlier epochs had run (used when a method prunes inside one training cycle). Not a config field.
   */
  startEpoch?: number;
  /** Augmentation of training batches of image data; `true` is crop padding 4 + flip. Off when absent. */
  augment?: boolean | AugmentConfig;
}

export interface AugmentConfig {
  /** Zero-pad by `padding` pixels, then crop back to the input size at a random offset. */
  crop?: { padding: number };
  /** Horizontal flip with probability ½. */
  flip?: boolean;
  /** Factors drawn uniformly from [1 − v, 1 + v] per image. */
  colorJitter?: { brightness?: number; contrast?: number; saturation?: number };
}

export type DataConfig =
  /** `y` absent: unlabelled; a list: one file per model output. */
  | { format: 'npy'; x: string; y?: string | string[]; validationSplit?: number; seed?: number; xVal?: string; yVal?: string | string[] }
  | { format: 'imagefolder'; path: string; validationSplit?: number; seed?: number; validationPath?: string }
  /** Unlabelled images; `glob` is relative to the config until resolved (then absolute, with forward slashes). */
  | { format: 'images'; glob: string; validationSplit?: number; seed?: number }
  | { format: 'builtin'; name: 'mnist' | 'fashion-mnist'; trainLimit?: number; testLimit?: number; seed?: number }
  | { format: 'synthetic'; task?: 'classification'; samples: number; classes: number; validationSplit?: number; seed?: number; noise?: number };

/** A task loss of one model output. */
export type TaskLoss = 'sparse-categorical-crossentropy' | 'categorical-crossentropy' | 'binary-crossentropy' | 'mse' | 'mae' | 'huber';
/** `"auto"` picks from the targets and the output's activation. */
export type TaskLossSpec = TaskLoss | 'auto' | { type: TaskLoss | 'auto'; weight?: number };
/** One loss for every output, or one per output layer name. */
export type LossConfig = TaskLoss | 'auto' | Record<string, TaskLossSpec>;
/** The distance of a student output from the teacher's: KL at a temperature, or mean squared error. */
export type DistillLoss = 'kl' | 'mse';
export type ObjectiveKind = 'task' | 'distill';

export interface DistillConfig {
  /** α: loss = α·distill + (1−α)·task when the data has targets (1: distillation alone). */
  weight?: number;
  /** Softening of the KL terms' distributions (T² scales them back). */
  temperature?: number;
  /** Per output layer name; default KL on classifier outputs, mse otherwise. */
  loss?: Record<string, DistillLoss>;
}

/** What training minimises: the config's `objective`, `distill` and `loss`. */
export interface ObjectiveConfig {
  /** Absent: `task` when the data has targets, `distill` when it has none. */
  objective?: ObjectiveKind;
  distill?: DistillConfig;
  loss?: LossConfig;
}

export type Allocation = 'global' | 'uniform' | 'sensitivity';

/** Method-specific sections, one per method, validated by the schema; each method reads its own. */
export type MethodSections = { [M in MethodName]?: Record<string, unknown> };

export interface PruneConfig extends MethodSections {
  /** Absolute path of the config file itself. */
  configPath: string;
  model: string;
  method: MethodName;
  target: Target;
  output: string;
  /** How selection ranks units: `global` all groups together; `layer` the same fraction from every group (`allocation` "uniform"). */
  scope: 'global' | 'layer';
  /**
   * How the target is shared between channel groups: `global` (scope global), `uniform` (scope layer) or
   * `sensitivity` (per-group ratios from the dense model's sensitivity curves). The loader sets it
   * from `allocation`, or from the older `scope`; absent: `global`.
   */
  allocation?: Allocation;
  /** Layer names never pruned (their output channels are kept). */
  exclude: string[];
  /** Largest fraction of any one channel group that may be removed (the loader defaults it to 0.9; absent: no cap). */
  maxGroupReduction?: number;
  /**
   * Every group's kept channel count rounds up to a multiple of this after the method's removal decision
   * (the loader defaults it to 1: off); `auto` times the largest prunable conv to pick the multiple.
   */
  roundTo?: number | 'auto';
  /** Re-estimate batch-norm statistics on training samples after removal (the loader defaults it to true). */
  recalibrateBatchNorm?: boolean;
  data?: DataConfig;
  /** Training objective (task loss, distillation from the dense model, or both); see ObjectiveConfig. */
  objective?: ObjectiveKind;
  distill?: DistillConfig;
  loss?: LossConfig;
  train?: TrainConfig;
  finetune?: TrainConfig;
  backend: BackendName;
  seed: number;
  /** Latency measurement: repeated runs whose median is reported. */
  latency: { runs: number; batchSize: number };
  /** Extra formats written beside the pruned model: `tfjs`, a TF.js layers copy in `<output>/tfjs/`; `inference`, a TF.js copy in inference form in `<output>/inference/`. */
  export?: ExportFormat[];
}

export const EXPORT_FORMATS = ['tfjs', 'inference'] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];
