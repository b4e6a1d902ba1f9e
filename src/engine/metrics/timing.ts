import * as tf from '@tensorflow/tfjs';
import type { LatencySummary } from '../../protocol/events.js';

/**
 * Times `forward` with its outputs read back (so the work is done): `warmup` untimed runs, then
 * `runs` timed ones, yielding to the event loop between them (cancellation, IPC).
 */
export async function timeForward(forward: () => tf.Tensor | tf.Tensor[], warmup: number, runs: number, onRun?: (done: number, runs: number) => void): Promise<{ medianMs: number; p25Ms: number; p75Ms: number }> {
  const once = () => timeOnce(forward);
  for (let i = 0; i < warmup; i++) once();
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    times.push(once());
    onRun?.(i + 1, runs);
    await new Promise((resolve) => setImmediate(resolve));
  }
  return timingSummary(times);
}

/** One timed run of `forward`, its outputs read back. */
export function timeOnce(forward: () => tf.Tensor | tf.Tensor[]): number {
  const start = performance.now();
  // Inside tidy: a layer applied alone can leave tensors a model run would dispose (tfjs ReLU with maxValue leaks one per call).
  const out = tf.tidy(forward);
  for (const t of Array.isArray(out) ? out : [out]) t.dataSync();
  const elapsed = performance.now() - start;
  tf.dispose(out);
  return elapsed;
}

/**
 * The median and interquartile range of timed runs (quantiles interpolated linearly between
 * sorted runs, so the median of an even count is the mean of the middle two).
 */
export function timingSummary(times: readonly number[]): { medianMs: number; p25Ms: number; p75Ms: number } {
  if (times.length === 0) throw new Error('no timed runs');
  const sorted = [...times].sort((a, b) => a - b);
  return { medianMs: quantile(sorted, 0.5), p25Ms: quantile(sorted, 0.25), p75Ms: quantile(sorted, 0.75) };
}

function quantile(sorted: readonly number[], q: number): number {
  const at = q * (sorted.length - 1);
  const below = Math.floor(at);
  const above = Math.min(sorted.length - 1, below + 1);
  return sorted[below] + (sorted[above] - sorted[below]) * (at - below);
}

/**
 * Whether two latencies differ by less than the noise of their measurement: their interquartile
 * ranges overlap. False when either lacks one (a summary from before they were recorded).
 */
export function latencyWithinNoise(a: LatencySummary, b: LatencySummary): boolean {
  if (a.p25Ms === undefined || a.p75Ms === undefined || b.p25Ms === undefined || b.p75Ms === undefined) return false;
  return a.p25Ms <= b.p75Ms && b.p25Ms <= a.p75Ms;
}
