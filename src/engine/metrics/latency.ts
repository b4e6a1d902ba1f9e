import * as tf from '@tensorflow/tfjs';
import type { LatencySummary } from '../../protocol/events.js';
import { timeForward } from './timing.js';

/**
 * Median wall time of `model.predict` on one random batch, forcing completion with dataSync, and
 * the interquartile range of the runs (how far apart two medians must be to mean something).
 * Warm-up runs (default 1) are not counted: the first call compiles kernels and allocates.
 */
export async function measureLatency(
  model: tf.LayersModel,
  options: { runs: number; batchSize: number; warmup?: number; onRun?: (done: number, runs: number) => void },
): Promise<LatencySummary> {
  const runs = Math.max(1, Math.floor(options.runs));
  const batchSize = Math.max(1, Math.floor(options.batchSize));
  const warmup = Math.max(0, Math.floor(options.warmup ?? 1));
  const inputs = model.inputs.map((input, i) => {
    const shape = [batchSize, ...input.shape.slice(1).map((d) => d ?? 1)];
    return input.dtype === 'int32' ? tf.zeros(shape, 'int32') : tf.randomNormal(shape, 0, 1, 'float32', 17 + i);
  });
  const feed = inputs.length === 1 ? inputs[0] : inputs;
  try {
    return { ...(await timeForward(() => model.predict(feed), warmup, runs, options.onRun)), batchSize, runs, backend: tf.getBackend() };
  } finally {
    tf.dispose(inputs);
  }
}
