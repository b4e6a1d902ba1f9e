import type { DspRealisation } from './realise.js';

/** DSP hyperparameters (config section `dsp`); the schema's defaults follow the official CIFAR code (algorithms.md §4.6). */
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
  /** How each regrouped conv is built (`realise.ts`): per group, as one conv, or whichever is faster per FLOP when timed. */
  realisation: DspRealisation;
}

/** `finalTemperature` defaults to `temperature` (constant, as the official code keeps it). */
export function settleDspOptions(options: DspOptions, section: Record<string, unknown>): DspOptions {
  if (section.finalTemperature === undefined) options.finalTemperature = options.temperature;
  return options;
}
