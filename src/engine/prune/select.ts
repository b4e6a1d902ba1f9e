import type * as tf from '@tensorflow/tfjs';
import type { Target } from '../config/types.js';
import type { ChannelGraph } from '../graph/types.js';
import { walkModel, type Topology } from '../graph/topology.js';
import { CostTracker, type CostMetric } from '../metrics/cost.js';
import { unitNorms } from '../metrics/norms.js';

/**
 * Which units to remove for a target: lowest scores first until the target is met, never
 * the last unit of a group. FLOPs and parameter targets use the exact incremental cost
 * (removing a unit shrinks its producers' outputs and its consumers' inputs); when taking
 * units in rank order would overshoot one by more than LANDING_TOLERANCE, a search over the
 * ranking finds a set that lands within it, lower-ranked units first.
 */

export type TargetKind = 'flopsReduction' | 'paramsReduction' | 'latencyReduction' | 'channelRatio' | 'normThreshold';
/** Targets met by a cost the CostTracker counts (latency: predicted from the latency table it holds). */
export type CostTargetKind = 'flopsReduction' | 'paramsReduction' | 'latencyReduction';

/** The CostTracker measure a cost target refers to. */
export function costMetricOf(kind: CostTargetKind): CostMetric {
  return kind === 'flopsReduction' ? 'flops' : kind === 'paramsReduction' ? 'params' : 'latency';
}

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
  if ('latencyReduction' in target) return 'latencyReduction';
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

function reduction(tracker: CostTracker, metric: CostMetric): number {
  const base = tracker.baseline[metric] ?? 0;
  return base > 0 ? 1 - (tracker.cost()[metric] ?? 0) / base : 0;
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
      const metric = costMetricOf(kind);
      if (metric === 'latency' && !new CostTracker(model, graph).predictsLatency) throw new Error('a latencyReduction target needs a latency table for the model (useLatencyTable)');
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

function selectGlobalCost(graph: ChannelGraph, model: tf.LayersModel, scores: ArrayLike<number>, metric: CostMetric, goal: number, keep: number[]): number[] {
  const ranked = graph.units.map((u) => u.id).sort((a, b) => compareScores(scores, a, b));
  const greedy = greedyCost(graph, model, ranked, metric, goal, keep);
  const reached = reductionAfter(graph, model, greedy, metric);
  // Below the goal only when the goal is out of reach: the greedy pass took all it could.
  if (reached < goal || reached - goal <= LANDING_TOLERANCE) return greedy;
  const landing = landCost(graph, model, ranked, metric, goal, keep);
  return landing.landed || Math.abs(landing.reached - goal) < reached - goal ? landing.units : greedy;
}

function reductionAfter(graph: ChannelGraph, model: tf.LayersModel, units: readonly number[], metric: CostMetric): number {
  const tracker = new CostTracker(model, graph);
  for (const u of units) tracker.remove(u);
  return reduction(tracker, metric);
}

function greedyCost(graph: ChannelGraph, model: tf.LayersModel, ranked: readonly number[], metric: CostMetric, goal: number, keep: number[]): number[] {
  const tracker = new CostTracker(model, graph);
  const base = tracker.baseline[metric] ?? 0;
  if (base <= 0) return [];
  const left = graph.groups.map((g) => g.channels);
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
      const window = pending.slice(0, windowSize).map((u, at) => ({ at, delta: tracker.removalDelta(u)[metric] ?? 0 }));
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

/** How far from a FLOPs or params goal a removal set may land and still count as meeting it. */
export const LANDING_TOLERANCE = 0.02;

/** Bands (offsets from the goal) a landing search tries in turn: just over the goal, wider over, then under. */
const OVER_BANDS: ReadonlyArray<readonly [number, number]> = [[0, FINISH_TOLERANCE], [0, 0.01], [0, LANDING_TOLERANCE]];
const UNDER_BAND = [-LANDING_TOLERANCE, 0] as const;
/** Groups that may each give back one channel when first fit alone cannot land (bounds the search). */
const MAX_GIVE_BACK = 16;
/** Reductions are sums of many float deltas: compare them with this slack. */
const REDUCTION_EPSILON = 1e-9;

interface Landing {
  units: number[];
  reached: number;
  landed: boolean;
  /** How many of `units` (from the start) first fit took, before any finishing units. */
  fitted: number;
}

/**
 * A removal set for a FLOPs or params goal when taking units strictly in rank order overshoots
 * it by more than the landing tolerance (e.g. the units a regulariser zeroed are few but each
 * costly). First fit in rank order: a unit is taken when the reduction stays under the band's
 * top, so lower-ranked units still go first and a costly unit near the goal is passed over for
 * cheaper ones further down the ranking. When that cannot reach the band, one group at a time
 * gives back one removed channel (its highest-ranked one), which frees room for a mid-sized unit
 * passed over. Bands go from just over the goal to 2 points under it, within the keep floor
 * first. Returns the first set that lands, else the nearest one tried.
 */
function landCost(graph: ChannelGraph, model: tf.LayersModel, ranked: readonly number[], metric: CostMetric, goal: number, keep: number[]): Landing {
  const topo = walkModel(model);
  const ones = keep.map(() => 1);
  const floors = keep.some((k, g) => k !== ones[g]) ? [keep, ones] : [ones];
  const attempts = [
    ...floors.flatMap((floor) => OVER_BANDS.map((band) => ({ floor, band }))),
    ...floors.map((floor) => ({ floor, band: UNDER_BAND })),
  ];
  let nearest: Landing = { units: [], reached: 0, landed: false, fitted: 0 };
  const consider = (tried: Landing) => {
    if (Math.abs(tried.reached - goal) < Math.abs(nearest.reached - goal)) nearest = tried;
  };
  for (const { floor, band } of attempts) {
    const lo = goal + band[0];
    const hi = goal + band[1];
    const caps = graph.groups.map((g) => g.channels);
    const over = band !== UNDER_BAND;
    const first = firstFit(graph, model, topo, ranked, metric, floor, caps, lo, hi, over);
    if (first.landed) return first;
    consider(first);
    const fitted = first.units.slice(0, first.fitted);
    const removedPerGroup = graph.groups.map(() => 0);
    for (const u of fitted) removedPerGroup[graph.units[u].group]++;
    // Groups whose removed channels rank highest give back first.
    const givers = [...new Set(fitted.reverse().map((u) => graph.units[u].group))].slice(0, MAX_GIVE_BACK);
    for (const g of givers) {
      const capped = caps.slice();
      capped[g] = removedPerGroup[g] - 1;
      const tried = firstFit(graph, model, topo, ranked, metric, floor, capped, lo, hi, over);
      if (tried.landed) return tried;
      consider(tried);
    }
  }
  return nearest;
}

/**
 * Takes units in rank order while the reduction stays at most `hi`: over the goal (`over`),
 * until it reaches `lo`, and a scan that falls short then adds the cheapest units left until
 * it does (the smallest overshoot from there, a candidate for the nearest set when none lands);
 * under the goal, as close to `hi` as the ranking fills.
 */
function firstFit(graph: ChannelGraph, model: tf.LayersModel, topo: Topology, ranked: readonly number[], metric: CostMetric, floor: number[], caps: number[], lo: number, hi: number, over: boolean): Landing {
  const tracker = new CostTracker(model, graph, topo);
  const base = tracker.baseline[metric] ?? 0;
  const left = graph.groups.map((g) => g.channels);
  const removed = graph.groups.map(() => 0);
  const units: number[] = [];
  let reached = 0;
  for (const u of ranked) {
    if (reached >= (over ? lo : hi) - REDUCTION_EPSILON) break;
    const g = graph.units[u].group;
    if (left[g] <= floor[g] || removed[g] >= caps[g]) continue;
    const after = reached + (tracker.removalDelta(u)[metric] ?? 0) / base;
    if (after > hi + REDUCTION_EPSILON) continue;
    tracker.remove(u);
    left[g]--;
    removed[g]++;
    units.push(u);
    reached = reduction(tracker, metric);
  }
  const fitted = units.length;
  while (over && reached < lo - REDUCTION_EPSILON) {
    let cheapest = -1;
    let cheapestDelta = Infinity;
    for (const u of ranked) {
      const g = graph.units[u].group;
      if (tracker.isRemoved(u) || left[g] <= floor[g] || removed[g] >= caps[g]) continue;
      const delta = tracker.removalDelta(u)[metric] ?? 0;
      if (delta < cheapestDelta) {
        cheapest = u;
        cheapestDelta = delta;
      }
    }
    if (cheapest < 0) break;
    const g = graph.units[cheapest].group;
    tracker.remove(cheapest);
    left[g]--;
    removed[g]++;
    units.push(cheapest);
    reached = reduction(tracker, metric);
  }
  return { units, reached, fitted, landed: reached >= lo - REDUCTION_EPSILON && reached <= hi + REDUCTION_EPSILON };
}

/**
 * The reduction nearest to `goal` that some removal set of whole channels reaches (every group
 * keeping one), whatever the ranking: the landing search over units from the costliest to
 * remove down, so large units come first and small ones fill the rest. Within
 * LANDING_TOLERANCE of the goal when the search finds a set that lands; callers warn with it.
 */
export function nearestReachable(graph: ChannelGraph, model: tf.LayersModel, kind: CostTargetKind, goal: number): number {
  // Every set reaches at most what removing all it can does: the nearest, when the goal lies beyond.
  const reachable = maxReachable(graph, model, kind);
  if (reachable <= goal) return reachable;
  const metric = costMetricOf(kind);
  const tracker = new CostTracker(model, graph);
  if ((tracker.baseline[metric] ?? 0) <= 0 || graph.units.length === 0) return 0;
  const delta = graph.units.map((u) => tracker.removalDelta(u.id)[metric] ?? 0);
  const costliestFirst = graph.units.map((u) => u.id).sort((a, b) => delta[b] - delta[a] || a - b);
  return landCost(graph, model, costliestFirst, metric, goal, graph.groups.map(() => 1)).reached;
}

/** Same fraction from every group: the smallest fraction whose removal meets the goal. */
function selectLayerCost(graph: ChannelGraph, model: tf.LayersModel, scores: ArrayLike<number>, metric: CostMetric, goal: number): number[] {
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
  const base = tracker.baseline[metric] ?? 0;
  while (reduction(tracker, metric) < goal) {
    const needed = (goal - reduction(tracker, metric)) * base;
    const candidates = ranked
      .map((r, g) => ({ g, u: r[taken[g]] }))
      .filter((c) => taken[c.g] < cap[c.g])
      .map((c) => ({ ...c, delta: tracker.removalDelta(c.u)[metric] ?? 0 }));
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
  return new CostTracker(model, graph).reductionWithout(allButOnePerGroup(graph))[costMetricOf(kind)] ?? 0;
}

/** Every unit but each group's first: what whole-channel pruning can remove at most. */
function allButOnePerGroup(graph: ChannelGraph): number[] {
  return graph.groups.flatMap((g) => g.units.slice(1));
}

/** maxReachable's FLOPs, params and channel fractions at once, from one cost model (analysis reports all three). */
export function maxReductions(graph: ChannelGraph, model: tf.LayersModel): { flops: number; params: number; channels: number } {
  const reduced = new CostTracker(model, graph).reductionWithout(allButOnePerGroup(graph));
  return { flops: reduced.flops, params: reduced.params, channels: maxReachable(graph, model, 'channelRatio') };
}
