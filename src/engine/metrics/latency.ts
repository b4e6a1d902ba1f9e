import * as tf from '@tensorflow/tfjs';
import type { LatencySummary } from '../../protocol/events.js';
import { timingSummary } from './timing.js';

/**
 * Median wall time of `model.predict` on one random batch, forcing completion with dataSync, and
 * the interquartile range of the runs (how far apart two medians must be to mean something).
 * Warm-up runs (default 1) are not counted: the first call compiles kernels and allocates.
 */
export async function measureLatency(
  model: tf.LayersModel,
  options: { runs: number; batchSize: number; warmup?: number },
): Promise<LatencySummary> {
  const runs = Math.max(1, Math.floor(options.runs));
  const batchSize = Math.max(1, Math.floor(options.batchSize));
  const warmup = Math.max(0, Math.floor(options.warmup ?? 1));
  const inputs = model.inputs.map((input, i) => {
    const shape = [batchSize, ...input.shape.slice(1).map((d) => d ?? 1)];
    return input.dtype === 'int32' ? tf.zeros(shape, 'int32') : tf.randomNormal(shape, 0, 1, 'float32', 17 + i);
  });
  const feed = inputs.length === 1 ? inputs[0] : inputs;
  const once = () => {
    const start = performance.now();
    const out = model.predict(feed);
    for (const t of Array.isArray(out) ? out : [out]) t.dataSync();
    const elapsed = performance.now() - start;
    tf.dispose(out);
    return elapsed;
  };
  try {
    for (let i = 0; i < warmup; i++) once();
    const times: number[] = [];
    for (let i = 0; i < runs; i++) {
      times.push(once());
      // Let the event loop breathe between runs (cancellation, IPC).
      await new Promise((resolve) => setImmediate(resolve));
    }
    return { ...timingSummary(times), batchSize, runs, backend: tf.getBackend() };
  } finally {
    tf.dispose(inputs);
  }
}
