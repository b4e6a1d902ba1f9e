import type * as tf from '@tensorflow/tfjs';
import type { Target } from '../config/types.js';
import type { ChannelGraph } from '../graph/types.js';
import { CostTracker } from '../metrics/cost.js';
import type { SensitivityEntry, SensitivityReport } from '../sensitivity/types.js';
import { LANDING_TOLERANCE, targetKind } from './select.js';

/**
 * Allocation from sensitivity: how many channels each group loses, chosen from the groups'
 * sensitivity curves so the target is met at the least predicted fall of the metric.
 *
 * A greedy over the curves, one channel at a time: each step takes the group whose next channel
 * costs the least predicted metric per unit of the target it saves (FLOPs or params from the
 * CostTracker, which prices a channel given everything already removed; channels for a channel
 * ratio), ties broken by the predicted loss. A step that would overshoot the goal by more than
 * LANDING_TOLERANCE gives way to the cheapest one that does not, so the target lands within it as
 * the global selection's does (one expensive coupled channel can be worth several points). Between measured ratios the curve is interpolated
 * linearly from the dense model (0 removed); past the last measured ratio it goes on with the last
 * segment's slope, so a group is emptied only when nothing cheaper is left. Which channels a group
 * loses is the method's ranking: its lowest scores.
 */

export interface GroupAllocation {
  group: number;
  producers: string[];
  channels: number;
  removed: number;
  /** The curve's metric at that many channels removed (interpolated). */
  predictedMetric: number;
}

export interface Allocation {
  groups: GroupAllocation[];
  /** Unit ids to remove, ascending. */
  remove: number[];
  /** Reduction reached for the target's kind (FLOPs, params or channel fraction). */
  reached: number;
}

/** Target kinds an allocation can meet: a fraction of something removed. */
export const ALLOCATABLE_TARGETS = ['flopsReduction', 'paramsReduction', 'channelRatio'] as const;

interface CurvePoint { removed: number; metric: number; loss: number }

/** A group's curve as points by channels removed, the dense model at 0 (a group without an entry stays dense). */
function curveOf(report: SensitivityReport, entry: SensitivityEntry | undefined): CurvePoint[] {
  const dense = { removed: 0, metric: report.dense.metric, loss: report.dense.loss };
  return [dense, ...(entry?.points ?? []).map((p) => ({ removed: p.removed, metric: p.metric, loss: p.loss }))]
    .filter((p, i, all) => all.findIndex((q) => q.removed === p.removed) === i)
    .sort((a, b) => a.removed - b.removed);
}

/** Metric and loss after removing `removed` channels, interpolated on the curve. */
function predicted(points: CurvePoint[], removed: number): { metric: number; loss: number } {
  if (points.length === 1) return points[0];
  let right = points.findIndex((p) => p.removed >= removed);
  if (right === 0) return points[0];
  if (right < 0) right = points.length - 1; // past the last point: the last segment's slope goes on
  const a = points[right - 1];
  const b = points[right];
  const t = (removed - a.removed) / (b.removed - a.removed);
  return { metric: a.metric + t * (b.metric - a.metric), loss: a.loss + t * (b.loss - a.loss) };
}

export function allocateFromSensitivity(
  graph: ChannelGraph,
  model: tf.LayersModel,
  report: SensitivityReport,
  scores: ArrayLike<number>,
  target: Target,
  options: { groups?: readonly number[] } = {},
): Allocation {
  const kind = targetKind(target);
  if (kind === 'normThreshold') throw new Error('allocation from sensitivity needs a flopsReduction, paramsReduction or channelRatio target');
  const goal = (target as Record<string, number>)[kind];
  const entries = new Map(report.groups.map((e) => [e.id, e]));
  const curves = graph.groups.map((g) => curveOf(report, entries.get(g.id)));
  const sign = report.metric.higherIsBetter ? 1 : -1;
  const ranked = graph.groups.map((g) => [...g.units].sort((a, b) => (orderScore(scores[a]) - orderScore(scores[b])) || a - b));
  const removed = graph.groups.map(() => 0);
  const tracker = new CostTracker(model, graph);
  const metric = kind === 'paramsReduction' ? 'params' : 'flops';
  const totalUnits = graph.units.length;
  // Only these groups lose channels (a method that prunes some groups alone, e.g. i-SpaSP's blocks).
  const open = new Set(options.groups ?? graph.groups.map((g) => g.id));
  let taken = 0;
  const reached = () => (kind === 'channelRatio' ? taken / totalUnits : 1 - tracker.cost()[metric] / Math.max(tracker.baseline[metric], 1e-12));

  const base = kind === 'channelRatio' ? totalUnits : Math.max(tracker.baseline[metric], 1e-12);
  while (reached() < goal - 1e-9) {
    const now = reached();
    let best: { group: number; cost: number; tie: number } | undefined;
    let bestLanding: typeof best;
    const better = (a: typeof best, b: NonNullable<typeof best>) => !a || b.cost < a.cost - 1e-12 || (Math.abs(b.cost - a.cost) <= 1e-12 && b.tie < a.tie);
    for (const g of graph.groups) {
      const count = removed[g.id];
      if (count >= g.channels - 1 || !open.has(g.id)) continue; // every group keeps a channel
      const saved = kind === 'channelRatio' ? 1 : tracker.removalDelta(ranked[g.id][count])[metric];
      if (!(saved > 0)) continue;
      const before = predicted(curves[g.id], count);
      const after = predicted(curves[g.id], count + 1);
      const step = { group: g.id, cost: (sign * (before.metric - after.metric)) / saved, tie: (after.loss - before.loss) / saved };
      if (better(best, step)) best = step;
      if (now + saved / base <= goal + LANDING_TOLERANCE && better(bestLanding, step)) bestLanding = step;
    }
    // Within the tolerance below the goal, a step past it is not worth taking.
    if (!bestLanding && now >= goal - LANDING_TOLERANCE) break;
    const chosen = bestLanding ?? best;
    if (!chosen) break; // out of reach: every group is down to one channel
    tracker.remove(ranked[chosen.group][removed[chosen.group]]);
    removed[chosen.group]++;
    taken++;
  }

  landByExchange();

  /**
   * The greedy path can overshoot where another set lands: exchange one group's last channel for
   * another group's next (or just give it back) while that brings the reduction within the
   * tolerance, at the least predicted metric fall, or at least closer to the goal.
   */
  function landByExchange(): void {
    const predictedFall = () => graph.groups.reduce((sum, g) => sum + sign * (report.dense.metric - predicted(curves[g.id], removed[g.id]).metric), 0);
    const off = (r: number) => Math.abs(r - goal);
    for (let round = 0; round < graph.groups.length && off(reached()) > LANDING_TOLERANCE; round++) {
      let best: { give: number; take: number | undefined; off: number; fall: number } | undefined;
      for (const give of graph.groups) {
        if (removed[give.id] === 0) continue;
        const back = ranked[give.id][removed[give.id] - 1];
        tracker.restore(back); removed[give.id]--; taken--;
        for (const take of [undefined, ...graph.groups.filter((g) => g.id !== give.id && open.has(g.id) && removed[g.id] < g.channels - 1)]) {
          const unit = take && ranked[take.id][removed[take.id]];
          if (take) { tracker.remove(unit!); removed[take.id]++; taken++; }
          const option = { give: give.id, take: take?.id, off: off(reached()), fall: predictedFall() };
          const lands = (o: typeof option) => o.off <= LANDING_TOLERANCE;
          if (!best || (lands(option) && (!lands(best) || option.fall < best.fall)) || (!lands(option) && !lands(best) && option.off < best.off)) best = option;
          if (take) { tracker.restore(unit!); removed[take.id]--; taken--; }
        }
        tracker.remove(back); removed[give.id]++; taken++;
      }
      if (!best || best.off >= off(reached())) return;
      tracker.restore(ranked[best.give][removed[best.give] - 1]); removed[best.give]--; taken--;
      if (best.take !== undefined) { tracker.remove(ranked[best.take][removed[best.take]]); removed[best.take]++; taken++; }
    }
  }

  return {
    groups: graph.groups.map((g) => ({
      group: g.id,
      producers: [...g.producers],
      channels: g.channels,
      removed: removed[g.id],
      predictedMetric: predicted(curves[g.id], removed[g.id]).metric,
    })),
    remove: graph.groups.flatMap((g) => ranked[g.id].slice(0, removed[g.id])).sort((a, b) => a - b),
    reached: reached(),
  };
}

/** NaN scores count as most important, as in selectUnits. */
function orderScore(score: number): number {
  return Number.isNaN(score) ? Infinity : score;
}

/** One line per allocation: each group's share removed, largest first, for logs and the report's notes. */
export function describeAllocation(allocation: Allocation, metricName: string): string {
  const parts = [...allocation.groups]
    .sort((a, b) => b.removed / b.channels - a.removed / a.channels || a.group - b.group)
    .map((g) => `${g.producers.join('+') || `group ${g.group}`} ${g.removed}/${g.channels} (${Math.round((100 * g.removed) / g.channels)}%)`);
  return `Allocation from sensitivity (${metricName} curves): ${parts.join(', ')}`;
}
