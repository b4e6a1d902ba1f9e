import type { LatencySummary } from '../../protocol/events.js';
import type { PruneConfig } from '../config/types.js';
import type { ChannelGraph } from '../graph/types.js';
import { useLatencyTable } from '../metrics/cost.js';
import type * as tf from '@tensorflow/tfjs';
import { latencyWithinNoise, measureLatencyInTurns } from '../metrics/index.js';
import { latencyCacheDir, measureLatencyTable, predictLatencyOf, type LatencyTable } from '../metrics/latency-table.js';
import { selectUnits } from '../prune/select.js';
import { removeUnits } from '../surgery/index.js';

/**
 * A `latencyReduction` target: the latency table measured on the dense model before the method
 * runs (so every CostTracker of the model predicts latency), and after pruning the predicted
 * reduction against the measured one.
 */

export interface LatencyTargetReport {
  goal: number;
  /** Reduction predicted for the whole model: the table's, through the calibration when there is one. */
  predicted: number;
  /** Reduction of the table's sum of layers timed alone, for the units removed. */
  tablePredicted: number;
  calibration?: LatencyCalibration;
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

/**
 * The table adds up layers timed alone; the whole model also pays for what does not shrink with
 * width (dispatch, memory traffic between layers) and layers run faster or slower in sequence than
 * alone. So the goal is set on the whole model: two whole-model timings (dense, and a copy with half
 * of every group's channels removed) against the table's sums for the same two models fit
 * `whole ≈ offsetMs + slope × table sum`, and the method is given the table reduction that this line
 * says meets the goal.
 */
export interface LatencyCalibration {
  /** Whole-model medians, ms. */
  denseMs: number;
  halfMs: number;
  /** The table's sums for the same two models, ms. */
  tableDenseMs: number;
  tableHalfMs: number;
  offsetMs: number;
  slope: number;
  /** The goal on the whole model, and the reduction of the table's sum the method is given for it. */
  goal: number;
  tableGoal: number;
}

/**
 * Fits the line through the two points and turns a whole-model goal into a table goal; a reason
 * instead when the points cannot carry a line, or when the line asks for a table cut so far from
 * the goal (the time it leaves cut to under a third, or doubled) that two noisy timings, rather than the
 * model, are the likelier cause: the table's own goal is then the safer aim.
 */
export function fitLatencyCalibration(goal: number, dense: { measuredMs: number; tableMs: number }, half: { measuredMs: number; tableMs: number }): LatencyCalibration | { skipped: string } {
  const tableDrop = dense.tableMs - half.tableMs;
  const measuredDrop = dense.measuredMs - half.measuredMs;
  if (!(tableDrop > 0)) return { skipped: 'the table predicts no time saved by removing half of every group\'s channels' };
  if (!(measuredDrop > 0)) return { skipped: `removing half of every group's channels measured no faster (${dense.measuredMs.toFixed(2)} → ${half.measuredMs.toFixed(2)} ms)` };
  const slope = measuredDrop / tableDrop;
  const offsetMs = dense.measuredMs - slope * dense.tableMs;
  // The table sum whose line value is (1 − goal) of the dense time.
  const tableGoal = 1 - ((1 - goal) * dense.measuredMs - offsetMs) / slope / dense.tableMs;
  const [lowest, highest] = [1 - 2 * (1 - goal), 1 - (1 - goal) / 3];
  if (!(tableGoal >= lowest && tableGoal <= highest)) {
    const percent = (x: number) => `${(x * 100).toFixed(1)}%`;
    return { skipped: `the whole-model timings (dense ${dense.measuredMs.toFixed(2)} ms, half of every group's channels ${half.measuredMs.toFixed(2)} ms) would ask ${tableGoal >= 1 ? 'more than all' : percent(tableGoal)} of the table's sum for ${percent(goal)} of the model's time, too far from the table to trust` };
  }
  return { denseMs: dense.measuredMs, halfMs: half.measuredMs, tableDenseMs: dense.tableMs, tableHalfMs: half.tableMs, offsetMs, slope, goal, tableGoal };
}

/** The whole-model reduction the calibration line predicts for a table reduction. */
export function calibratedReduction(calibration: LatencyCalibration, tableReduction: number): number {
  return 1 - (calibration.offsetMs + calibration.slope * calibration.tableDenseMs * (1 - tableReduction)) / calibration.denseMs;
}

/**
 * Times the dense model and a copy with half of every group's channels removed, whole, in turns (so
 * a load that comes and goes weighs on both alike), as the session times latency, and fits the
 * calibration. A reason instead when the two are within each other's noise or do not fall.
 */
export async function calibrateLatencyTarget(config: PruneConfig, model: tf.LayersModel, graph: ChannelGraph, table: LatencyTable): Promise<LatencyCalibration | { skipped: string }> {
  const goal = (config.target as { latencyReduction: number }).latencyReduction;
  const half = await removeUnits(model, graph, selectUnits(graph, model, new Float32Array(graph.units.length), { channelRatio: 0.5 }, { scope: 'layer' }));
  try {
    const [dense, halved] = await measureLatencyInTurns([model, half], { runs: Math.max(3, config.latency.runs), batchSize: config.latency.batchSize });
    if (latencyWithinNoise(dense, halved)) return { skipped: `the dense model and a copy with half of every group's channels removed time within each other's noise (${dense.medianMs.toFixed(2)} and ${halved.medianMs.toFixed(2)} ms)` };
    const tables = predictLatencyOf(table, model, half);
    return fitLatencyCalibration(goal, { measuredMs: dense.medianMs, tableMs: tables.denseMs }, { measuredMs: halved.medianMs, tableMs: tables.prunedMs });
  } finally {
    half.dispose();
  }
}

export function describeLatencyCalibration(calibration: LatencyCalibration | { skipped: string }): string {
  if ('skipped' in calibration) return `Latency target: not calibrated against the whole model, the table's own sum is the goal: ${calibration.skipped}.`;
  const percent = (x: number) => `${(x * 100).toFixed(1)}%`;
  return `Latency target calibrated on the whole model: dense ${calibration.denseMs.toFixed(2)} ms, half of every group's channels ${calibration.halfMs.toFixed(2)} ms, against the table's ${calibration.tableDenseMs.toFixed(2)} and ${calibration.tableHalfMs.toFixed(2)} ms; ${percent(calibration.goal)} less time on the whole model asks ${percent(calibration.tableGoal)} less of the table's sum.`;
}

/** `pruned`: the pruned model, whatever way the method made it (its layers keep the dense model's names). */
export function compareLatencyTarget(model: tf.LayersModel, pruned: tf.LayersModel, table: LatencyTable, goal: number, before: LatencySummary, after: LatencySummary, calibration?: LatencyCalibration): LatencyTargetReport {
  const prediction = predictLatencyOf(table, model, pruned);
  const tablePredicted = prediction.denseMs > 0 ? 1 - prediction.prunedMs / prediction.denseMs : 0;
  const predicted = calibration ? calibratedReduction(calibration, tablePredicted) : tablePredicted;
  const measured = before.medianMs > 0 ? 1 - after.medianMs / before.medianMs : 0;
  const low = before.p75Ms !== undefined && after.p75Ms !== undefined && before.p25Ms ? 1 - after.p75Ms / before.p25Ms : measured;
  const high = before.p25Ms !== undefined && after.p25Ms !== undefined && before.p75Ms ? 1 - after.p25Ms / before.p75Ms : measured;
  const measuredRange: [number, number] = [Math.min(low, measured), Math.max(high, measured)];
  return {
    goal,
    predicted,
    tablePredicted,
    ...(calibration ? { calibration } : {}),
    measured,
    measuredRange,
    withinNoise: predicted >= measuredRange[0] && predicted <= measuredRange[1],
    table: { backend: table.backend, batchSize: table.batchSize, layers: table.nodes.length, timedPoints: table.timedPoints, cachedPoints: table.cachedPoints, seconds: table.wallMs / 1000 },
  };
}

export function latencyTargetNote(report: LatencyTargetReport): string {
  const percent = (x: number) => `${(x * 100).toFixed(1)}%`;
  const head = `Latency target ${percent(report.goal)}: the per-layer table (${report.table.backend}, batch ${report.table.batchSize})${report.calibration ? ', calibrated on the whole model,' : ''} predicted ${percent(report.predicted)} less time, measured ${percent(report.measured)} (range ${percent(report.measuredRange[0])} to ${percent(report.measuredRange[1])} from the runs' interquartile ranges).`;
  if (report.withinNoise) return head;
  return `${head} They differ by more than the measurement noise: the table adds up layers timed alone${report.calibration ? ' and its line through two whole-model timings is not exact' : ', while the whole model also pays for what passes between layers'}; more "latency.runs" narrow the measured range.`;
}
