import type * as tf from '@tensorflow/tfjs';
import type { LatencySummary } from '../../protocol/events.js';
import type { PruneConfig } from '../config/types.js';
import type { ChannelGraph } from '../graph/types.js';
import { useLatencyTable } from '../metrics/cost.js';
import { latencyCacheDir, measureLatencyTable, predictLatencyOf, type LatencyTable } from '../metrics/latency-table.js';

/**
 * A `latencyReduction` target: the latency table measured on the dense model before the method
 * runs (so every CostTracker of the model predicts latency), and after pruning the predicted
 * reduction against the measured one.
 */

export interface LatencyTargetReport {
  goal: number;
  /** Reduction the table predicts for the units removed. */
  predicted: number;
  /** 1 − after ÷ before of the measured medians, and its range from the interquartile ranges. */
  measured: number;
  measuredRange: [number, number];
  /** Whether the predicted reduction lies inside the measured range. */
  withinNoise: boolean;
  table: { backend: string; batchSize: number; layers: number; timedPoints: number; cachedPoints: number; seconds: number };
}

export function wantsLatencyTable(config: PruneConfig): boolean {
  return 'latencyReduction' in config.target;
}

/** Times the table (disk cache beside the config) and makes it the latency part of the model's cost model. */
export async function prepareLatencyTarget(config: PruneConfig, model: tf.LayersModel, graph: ChannelGraph, signal: AbortSignal): Promise<LatencyTable> {
  const table = await measureLatencyTable(model, graph, { batchSize: config.latency.batchSize, cacheDir: latencyCacheDir(config.configPath), signal });
  useLatencyTable(model, graph, table);
  return table;
}

export function describeLatencyTable(table: LatencyTable): string {
  const scaled = table.nodes.filter((n) => n.how === 'scaled').length;
  return `Latency table: ${table.nodes.length} layers on ${table.backend} at batch ${table.batchSize}, ${table.timedPoints} widths timed and ${table.cachedPoints} cached, in ${(table.wallMs / 1000).toFixed(1)} s${scaled ? ` (${scaled} layer(s) could not be built narrower and scale with their channels)` : ''}`;
}

/** `pruned`: the pruned model, whatever way the method made it (its layers keep the dense model's names). */
export function compareLatencyTarget(model: tf.LayersModel, pruned: tf.LayersModel, table: LatencyTable, goal: number, before: LatencySummary, after: LatencySummary): LatencyTargetReport {
  const prediction = predictLatencyOf(table, model, pruned);
  const predicted = prediction.denseMs > 0 ? 1 - prediction.prunedMs / prediction.denseMs : 0;
  const measured = before.medianMs > 0 ? 1 - after.medianMs / before.medianMs : 0;
  const low = before.p75Ms !== undefined && after.p75Ms !== undefined && before.p25Ms ? 1 - after.p75Ms / before.p25Ms : measured;
  const high = before.p25Ms !== undefined && after.p25Ms !== undefined && before.p75Ms ? 1 - after.p25Ms / before.p75Ms : measured;
  const measuredRange: [number, number] = [Math.min(low, measured), Math.max(high, measured)];
  return {
    goal,
    predicted,
    measured,
    measuredRange,
    withinNoise: predicted >= measuredRange[0] && predicted <= measuredRange[1],
    table: { backend: table.backend, batchSize: table.batchSize, layers: table.nodes.length, timedPoints: table.timedPoints, cachedPoints: table.cachedPoints, seconds: table.wallMs / 1000 },
  };
}

export function latencyTargetNote(report: LatencyTargetReport): string {
  const percent = (x: number) => `${(x * 100).toFixed(1)}%`;
  const head = `Latency target ${percent(report.goal)}: the per-layer table (${report.table.backend}, batch ${report.table.batchSize}) predicted ${percent(report.predicted)} less time, measured ${percent(report.measured)} (range ${percent(report.measuredRange[0])} to ${percent(report.measuredRange[1])} from the runs' interquartile ranges).`;
  if (report.withinNoise) return head;
  return `${head} They differ by more than the measurement noise: the table adds up layers timed alone, while the whole model also pays for what passes between layers; more "latency.runs" narrow the measured range.`;
}
