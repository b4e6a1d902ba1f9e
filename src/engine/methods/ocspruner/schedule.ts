import type { TrainConfig } from '../../config/types.js';

/** Learning rate of a schedule at the start of `epoch` (0-based), epochs counted over the whole phase. */
export function learningRateAt(settings: TrainConfig, epoch: number): number {
  const lr = settings.learningRate;
  switch (settings.schedule) {
    case 'step':
      return lr * Math.pow(settings.gamma ?? 0.1, Math.floor(epoch / (settings.stepEpochs ?? 1)));
    case 'cosine':
      return settings.epochs > 0 ? 0.5 * lr * (1 + Math.cos((Math.PI * Math.min(epoch, settings.epochs)) / settings.epochs)) : lr;
    default:
      return lr;
  }
}

/**
 * Settings that train the epochs from `startEpoch` to the end of `settings` with the schedule
 * carrying on where it was: the same epoch budget in total, one cycle. The tail starts from the
 * rate reached at `startEpoch`; constant schedules and step schedules cut at a decay boundary
 * continue exactly, a cosine tail decays from there to 0 over the remaining epochs.
 */
export function continueSchedule(settings: TrainConfig, startEpoch: number): TrainConfig {
  return { ...settings, epochs: Math.max(0, settings.epochs - startEpoch), learningRate: learningRateAt(settings, startEpoch) };
}
