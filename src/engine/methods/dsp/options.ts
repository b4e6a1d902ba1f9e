import { UserError } from '../../errors.js';

/** DSP hyperparameters (config section `dsp`); defaults follow the official CIFAR code (algorithms.md §4.6). */
export interface DspOptions {
  /** Filter groups per regrouped conv layer. */
  groups: number;
  /** Gumbel-softmax temperature at the start of group learning. */
  temperature: number;
  /** Temperature at the end (exponential schedule); equal to `temperature` keeps it constant as the official code does. */
  finalTemperature: number;
  /** λ_reg: strength of the group regulariser's decoupled weight step, ramped linearly from 0. */
  regularization: number;
  /** Adam learning rate of the assignment logits θ. */
  thetaLearningRate: number;
  /** Adam epsilon of the θ optimiser. */
  thetaEpsilon: number;
  /** Update θ every this many steps (each update costs one extra forward and backward pass). */
  thetaUpdateEvery: number;
  /** Epochs of group learning before θ starts to move (the regulariser applies from the first step). */
  warmupEpochs: number;
  /** Also prune whole filters of convs whose output is added into a residual stream. */
  filterPruning: boolean;
  /** Leave the first conv (it reads the model input) ungrouped. */
  skipStem: boolean;
  /** Leave convs on a residual shortcut (projection shortcuts) ungrouped, as the official code does. */
  skipShortcut: boolean;
  /** Leave every 1×1 conv ungrouped (MobileNet-style expand and project convs included). */
  skipPointwise: boolean;
  /**
   * FLOPs one extra layer is worth when packing: groups merge, and selection convs are skipped,
   * where their extra layers would cost more time than the FLOPs they save. 0 keeps every group.
   */
  layerCostFlops: number;
}

export const DSP_DEFAULTS: DspOptions = {
  groups: 4,
  temperature: 0.5,
  finalTemperature: 0.5,
  regularization: 2e-3,
  thetaLearningRate: 1e-3,
  thetaEpsilon: 1e-12,
  thetaUpdateEvery: 1,
  warmupEpochs: 0,
  filterPruning: true,
  skipStem: true,
  skipShortcut: true,
  skipPointwise: false,
  layerCostFlops: 0,
};

/** Merges a validated `dsp` config section over the defaults. */
export function dspOptions(section: Record<string, unknown> | undefined, configPath?: string): DspOptions {
  const options: DspOptions = { ...DSP_DEFAULTS, ...(section ?? {}) } as DspOptions;
  if (section && section.finalTemperature === undefined) options.finalTemperature = options.temperature;
  if (!Number.isInteger(options.groups) || options.groups < 1) {
    throw new UserError('dsp.groups must be a positive integer', { file: configPath, field: 'dsp.groups', fix: 'Use 2, 3 or 4.' });
  }
  return options;
}
