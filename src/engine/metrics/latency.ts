import * as tf from '@tensorflow/tfjs';
import type { LatencySummary } from '../../protocol/events.js';
import { timeForward, timeOnce, timingSummary } from './timing.js';

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
  const inputs = randomBatch(model, batchSize);
  const feed = inputs.length === 1 ? inputs[0] : inputs;
  try {
    return { ...(await timeForward(() => model.predict(feed), warmup, runs, options.onRun)), batchSize, runs, backend: tf.getBackend() };
  } finally {
    tf.dispose(inputs);
  }
}

/**
 * `measureLatency` for models with the same inputs (a model and a narrower copy), timed in turns run
 * by run, so a load that comes and goes weighs on each alike: one warm-up each, then `runs` rounds.
 */
export async function measureLatencyInTurns(models: readonly tf.LayersModel[], options: { runs: number; batchSize: number }): Promise<LatencySummary[]> {
  const runs = Math.max(1, Math.floor(options.runs));
  const batchSize = Math.max(1, Math.floor(options.batchSize));
  const inputs = randomBatch(models[0], batchSize);
  const feed = inputs.length === 1 ? inputs[0] : inputs;
  try {
    const forwards = models.map((model) => () => model.predict(feed));
    forwards.forEach(timeOnce);
    const times = models.map((): number[] => []);
    for (let run = 0; run < runs; run++) {
      forwards.forEach((forward, m) => times[m].push(timeOnce(forward)));
      await new Promise((resolve) => setImmediate(resolve));
    }
    return times.map((t) => ({ ...timingSummary(t), batchSize, runs, backend: tf.getBackend() }));
  } finally {
    tf.dispose(inputs);
  }
}

/** One random batch for each of the model's inputs (zeros for integer inputs), seeded. */
function randomBatch(model: tf.LayersModel, batchSize: number): tf.Tensor[] {
  return model.inputs.map((input, i) => {
    const shape = [batchSize, ...input.shape.slice(1).map((d) => d ?? 1)];
    return input.dtype === 'int32' ? tf.zeros(shape, 'int32') : tf.randomNormal(shape, 0, 1, 'float32', 17 + i);
  });
}
