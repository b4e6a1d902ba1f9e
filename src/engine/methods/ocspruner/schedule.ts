import type { TrainConfig } from '../../config/types.js';

/** Settings that train the epochs from `startEpoch` to the end of `settings`: the same schedule, one cycle. */
export function continueSchedule(settings: TrainConfig, startEpoch: number): TrainConfig {
  return { ...settings, startEpoch };
}
