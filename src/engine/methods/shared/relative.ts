import type { TrainConfig } from '../../config/types.js';
import type { Dataset } from '../../train/types.js';

/** Steps in one epoch of `train` on `data`, as the training loop counts them (at least 1). */
export function stepsPerEpochOf(data: Pick<Dataset, 'trainSize'> | undefined, train: Pick<TrainConfig, 'batchSize' | 'maxStepsPerEpoch'> | undefined): number {
  if (!data || !train) return 1;
  const full = Math.ceil(data.trainSize / Math.max(1, Math.floor(train.batchSize)));
  return Math.max(1, Math.min(full, train.maxStepsPerEpoch ?? Infinity));
}

/**
 * An epoch of a run of `epochs` at the same share of the run as `officialEpoch` of the official
 * `officialEpochs`-epoch schedule (rounded down): a 300-epoch recipe's epoch 30 is epoch 3 of 30.
 */
export function scaledEpoch(officialEpoch: number, officialEpochs: number, epochs: number): number {
  return Math.max(0, Math.floor((officialEpoch / officialEpochs) * epochs + 1e-9));
}
