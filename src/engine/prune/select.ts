import type * as tf from '@tensorflow/tfjs';
import type { Target } from '../config/types.js';
import type { ChannelGraph } from '../graph/types.js';
import { walkModel } from '../graph/topology.js';
import { CostTracker } from '../metrics/cost.js';
import { unitNorms } from '../metrics/norms.js';

/**
 * Which units to remove for a target: lowest scores first until the target is met, never
 * the last unit of a group. FLOPs and parameter targets use the exact incremental cost
 * (removing a unit shrinks its producers' outputs and its consumers' inputs).
 */

export type TargetKind = 'flopsReduction' | 'paramsReduction' | 'channelRatio' | 'normThreshold';

export interface SelectOptions {
  /** `global` ranks all units together; `layer` removes the same fraction from every group. */
  scope: 'global' | 'layer';
  /**
   * Largest fraction of any one group removed while the target can be met otherwise (global
   * ranking compares layers of different weight scales and could empty one). Beyond it the
   * selection goes on down to one unit per group: the target wins. Default 1: no floor.
   */
  maxGroupReduction?: number;
}

/** Units each group keeps while the target can be met otherwise: at least one, and (1 − maxGroupReduction) of its channels. */
function minimumKept(graph: ChannelGraph, maxGroupReduction = 1): number[] {
  return graph.groups.map((g) => Math.max(1, g.channels - Math.floor(Math.min(1, Math.max(0, maxGroupReduction)) * g.channels + 1e-9)));
}

export function targetKind(target: Target): TargetKind {
  if ('flopsReduction' in target) return 'flopsReduction';
  if ('paramsReduction' in target) return 'paramsReduction';
  if ('channelRatio' in target) return 'channelRatio';
  return 'normThreshold';
}

function targetValue(target: Target): number {
  return (target as Record<string, number>)[targetKind(target)];
}

/** Unit ids of each group, lowest score first (NaN scores count as most important). */
function rankedGroups(graph: ChannelGraph, scores: ArrayLike<number>): number[][] {
  return graph.groups.map((g) => [...g.units].sort((a, b) => compareScores(scores, a, b)));
}

function compareScores(scores: ArrayLike<number>, a: number, b: number): number {
  const sa = Number.isNaN(scores[a]) ? Infinity : scores[a];
  const sb = Number.isNaN(scores[b]) ? Infinity : scores[b];
  return sa - sb || a - b;
}

function reduction(tracker: CostTracker, metric: 'flops' | 'params'): number {
  const base = tracker.baseline[metric];
  return base > 0 ? 1 - tracker.cost()[metric] / base : 0;
}

function perGroupCount(channels: number, fraction: number, round: (x: number) => number): number {
  return Math.max(0, Math.min(channels - 1, round(fraction * channels + 1e-9)));
}

export function selectUnits(
  graph: ChannelGraph,
  model: tf.LayersModel,
  scores: ArrayLike<number>,
  target: Target,
  options: SelectOptions,
): number[] {
  if (scores.length !== graph.units.length) {
    throw new Error(`Expected one score per unit (${graph.units.length}), got ${scores.length}`);
  }
  const kind = targetKind(target);
  const value = targetValue(target);
  if (!(value > 0) && kind !== 'normThreshold') return [];
  let selected: number[];
  switch (kind) {
    case 'normThreshold':
      selected = selectByNorm(graph, model, value);
      break;
    case 'channelRatio':
      selected = options.scope === 'layer' ? selectLayerFraction(graph, scores, value, Math.round) : selectGlobalCount(graph, scores, Math.round(value * graph.units.length), minimumKept(graph, options.maxGroupReduction));
      break;
    default: {
      const metric = kind === 'flopsReduction' ? 'flops' : 'params';
      selected = options.scope === 'layer' ? selectLayerCost(graph, model, scores, metric, value) : selectGlobalCost(graph, model, scores, metric, value, minimumKept(graph, options.maxGroupReduction));
    }
  }
  return selected.sort((a, b) => a - b);
}

function selectByNorm(graph: ChannelGraph, model: tf.LayersModel, threshold: number): number[] {
  const norms = unitNorms(model, graph, 'l2');
  const out: number[] = [];
  for (const g of graph.groups) {
    const below = g.units.filter((u) => norms[u] <= threshold);
    if (below.length === g.units.length) {
      // Keep the strongest unit of a group that is entirely below the threshold.
      const keep = g.units.reduce((best, u) => (norms[u] > norms[best] ? u : best), g.units[0]);
      out.push(...below.filter((u) => u !== keep));
    } else out.push(...below);
  }
  return out;
}

function selectGlobalCount(graph: ChannelGraph, scores: ArrayLike<number>, count: number, keep: number[]): number[] {
  const left = graph.groups.map((g) => g.channels);
  const order = graph.units.map((u) => u.id).sort((a, b) => compareScores(scores, a, b));
  const taken = new Set<number>();
  // First within the floor, then, if the count needs more, down to one unit per group.
  for (const floor of [keep, keep.map(() => 1)]) {
    for (const u of order) {
      if (taken.size >= count) break;
      const g = graph.units[u].group;
      if (taken.has(u) || left[g] <= floor[g]) continue;
      left[g]--;
      taken.add(u);
    }
  }
  return [...taken];
}

function selectLayerFraction(graph: ChannelGraph, scores: ArrayLike<number>, fraction: number, round: (x: number) => number): number[] {
  return rankedGroups(graph, scores).flatMap((ranked) => ranked.slice(0, perGroupCount(ranked.length, fraction, round)));
}

/**
 * Lowest scores first. Near the goal, a unit whose removal would overshoot by more than
 * `FINISH_TOLERANCE` may be passed over for the next few low-score units (a window of ~5% of
 * the units), so one expensive coupled group does not overshoot the target by several percent.
 */
const FINISH_TOLERANCE = 0.002;
/** Overshoot accepted to finish a layer-scope selection with one unit instead of several. */
const LAYER_FINISH_TOLERANCE = 0.01;

function selectGlobalCost(graph: ChannelGraph, model: tf.LayersModel, scores: ArrayLike<number>, metric: 'flops' | 'params', goal: number, keep: number[]): number[] {
  const tracker = new CostTracker(model, graph);
  const base = tracker.baseline[metric];
  if (base <= 0) return [];
  const left = graph.groups.map((g) => g.channels);
  const ranked = graph.units.map((u) => u.id).sort((a, b) => compareScores(scores, a, b));
  const windowSize = Math.max(4, Math.ceil(0.05 * graph.units.length));
  const out: number[] = [];
  const taken = new Set<number>();
  // First within the floor; if the goal needs more, again down to one unit per group.
  for (const floor of [keep, keep.map(() => 1)]) {
    const pending = ranked.filter((u) => !taken.has(u));
    const take = (at: number) => {
      const u = pending.splice(at, 1)[0];
      left[graph.units[u].group]--;
      tracker.remove(u);
      taken.add(u);
      out.push(u);
    };
    while (reduction(tracker, metric) < goal) {
      // Drop units whose group is down to the units it keeps.
      for (let i = pending.length - 1; i >= 0; i--) if (left[graph.units[pending[i]].group] <= floor[graph.units[pending[i]].group]) pending.splice(i, 1);
      if (pending.length === 0) break;
      const needed = (goal - reduction(tracker, metric)) * base;
      const window = pending.slice(0, windowSize).map((u, at) => ({ at, delta: tracker.removalDelta(u)[metric] }));
      const overshoot = (d: number) => (d - needed) / base;
      if (window[0].delta < needed || overshoot(window[0].delta) <= FINISH_TOLERANCE) {
        take(0);
        continue;
      }
      const smaller = window.find((w) => w.delta < needed);
      if (smaller) {
        take(smaller.at);
        continue;
      }
      const best = window.reduce((b, w) => (w.delta < b.delta ? w : b), window[0]);
      take(best.at);
    }
  }
  return out;
}

/** Same fraction from every group: the smallest fraction whose removal meets the goal. */
function selectLayerCost(graph: ChannelGraph, model: tf.LayersModel, scores: ArrayLike<number>, metric: 'flops' | 'params', goal: number): number[] {
  const ranked = rankedGroups(graph, scores);
  const topo = walkModel(model);
  const pick = (fraction: number) => ranked.flatMap((r) => r.slice(0, perGroupCount(r.length, fraction, Math.floor)));
  const reached = (units: number[]) => {
    const tracker = new CostTracker(model, graph, topo);
    for (const u of units) tracker.remove(u);
    return reduction(tracker, metric);
  };
  // Fractions where some group's count steps up, in increasing order.
  const steps = [...new Set(graph.groups.flatMap((g) => Array.from({ length: g.channels - 1 }, (_, k) => (k + 1) / g.channels)))].sort((a, b) => a - b);
  if (steps.length === 0) return [];
  if (reached(pick(steps[steps.length - 1])) < goal) return pick(steps[steps.length - 1]);
  let lo = 0;
  let hi = steps.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (reached(pick(steps[mid])) >= goal) hi = mid;
    else lo = mid + 1;
  }
  // One fraction step can move the cost by several percent (a small group loses a whole
  // channel), so start from the step below the goal and let each group give at most one more
  // unit (its lowest-scored remaining one): the largest that still fits under the goal, or the
  // smallest that meets it once the overshoot is small. Consecutive steps differ by at most one
  // unit per group, so the goal stays reachable.
  const taken = lo > 0 ? ranked.map((r) => perGroupCount(r.length, steps[lo - 1], Math.floor)) : ranked.map(() => 0);
  const cap = taken.map((n, g) => Math.min(n + 1, ranked[g].length - 1));
  const tracker = new CostTracker(model, graph, topo);
  ranked.forEach((r, g) => r.slice(0, taken[g]).forEach((u) => tracker.remove(u)));
  const base = tracker.baseline[metric];
  while (reduction(tracker, metric) < goal) {
    const needed = (goal - reduction(tracker, metric)) * base;
    const candidates = ranked
      .map((r, g) => ({ g, u: r[taken[g]] }))
      .filter((c) => taken[c.g] < cap[c.g])
      .map((c) => ({ ...c, delta: tracker.removalDelta(c.u)[metric] }));
    if (candidates.length === 0) break;
    let finisher: (typeof candidates)[number] | undefined;
    let filler: (typeof candidates)[number] | undefined;
    for (const c of candidates) {
      if (c.delta >= needed) {
        if (!finisher || c.delta < finisher.delta) finisher = c;
      } else if (!filler || c.delta > filler.delta) filler = c;
    }
    const choice = finisher && (!filler || (finisher.delta - needed) / base <= LAYER_FINISH_TOLERANCE) ? finisher : (filler ?? finisher)!;
    tracker.remove(choice.u);
    taken[choice.g]++;
  }
  return ranked.flatMap((r, g) => r.slice(0, taken[g]));
}

/**
 * The most a target can achieve when every group keeps one unit: a reduction fraction for
 * flopsReduction / paramsReduction, the fraction of removable units for channelRatio and
 * normThreshold. Callers compare it with the requested target to warn with numbers.
 */
export function maxReachable(graph: ChannelGraph, model: tf.LayersModel, kind: TargetKind): number {
  if (kind === 'channelRatio' || kind === 'normThreshold') {
    return graph.units.length === 0 ? 0 : (graph.units.length - graph.groups.length) / graph.units.length;
  }
  const metric = kind === 'flopsReduction' ? 'flops' : 'params';
  const tracker = new CostTracker(model, graph);
  for (const g of graph.groups) for (const u of g.units.slice(1)) tracker.remove(u);
  return reduction(tracker, metric);
}
