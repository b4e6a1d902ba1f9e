import * as tf from '@tensorflow/tfjs';
import type { ChannelGraph, ChannelGroup } from '../../graph/types.js';
import { CostTracker } from '../../metrics/cost.js';
import { layerWeight, weightKind } from '../../layers/index.js';

/**
 * OCSPruner's per-epoch sub-network choice (§7.2 of the algorithm notes): group saliency
 * averaged over every member slice, a FLOPs-aware scale per group, per-group protection of
 * the strongest channels, and one global score threshold searched to hit the FLOPs target.
 */

/**
 * Saliency of every unit (indexed like graph.units): the mean over its member slices of
 * Σw²/√(slice length) for kernel slices and γ² for batch-norm slices (β and biases unused).
 */
export function unitSaliency(model: tf.LayersModel, graph: ChannelGraph): Float64Array {
  // Σw² along every axis but one, per (layer, weight, axis), read once.
  const sums = new Map<string, { perIndex: Float32Array; sliceLength: number }>();
  const sumsOf = (layerName: string, weight: string, axis: number) => {
    const key = `${layerName}\u0000${weight}\u0000${axis}`;
    let entry = sums.get(key);
    if (entry) return entry;
    const variable = layerWeight(model.getLayer(layerName), weight);
    if (!variable) return null;
    const shape = variable.shape as number[];
    const t = tf.tidy(() => {
      const sq = tf.square(variable.read());
      const axes = shape.map((_, a) => a).filter((a) => a !== axis);
      return axes.length > 0 ? tf.sum(sq, axes) : sq;
    });
    const numel = shape.reduce((a, b) => a * b, 1);
    entry = { perIndex: t.dataSync() as Float32Array, sliceLength: numel / shape[axis] };
    t.dispose();
    sums.set(key, entry);
    return entry;
  };

  const saliency = new Float64Array(graph.units.length);
  for (const unit of graph.units) {
    let total = 0;
    let members = 0;
    for (const slice of unit.slices) {
      const kind = weightKind(slice.weight);
      const isKernel = kind === 'kernel';
      const isGamma = kind === 'scale';
      if (!isKernel && !isGamma) continue;
      const entry = sumsOf(slice.layer, slice.weight, slice.axis);
      if (!entry) continue;
      let s = 0;
      for (const i of slice.indices) s += entry.perIndex[i];
      total += isKernel ? s / Math.sqrt(entry.sliceLength * slice.indices.length) : s;
      members++;
    }
    saliency[unit.id] = members > 0 ? total / members : 0;
  }
  return saliency;
}

/**
 * Per-group FLOPs weight c_g: a softmax over groups of the MFLOPs one channel of the group
 * costs, measured on the dense model. Scores are multiplied by (1 − c_g), so channels of
 * expensive groups look a little less important.
 */
export function groupCostWeights(cost: CostTracker, groups: readonly ChannelGroup[]): Map<number, number> {
  const perChannel = groups.map((g) => {
    if (g.units.length < 2) return 0;
    const saved = cost.baseline.flops - cost.costWithout(g.units.slice(1)).flops;
    return saved / (g.units.length - 1) / 1e6;
  });
  const max = Math.max(...perChannel, 0);
  const exps = perChannel.map((v) => Math.exp(v - max));
  const sum = exps.reduce((a, b) => a + b, 0) || 1;
  return new Map(groups.map((g, i) => [g.id, exps[i] / sum]));
}

/** Channels of a group of `channels` that stay protected: C − ⌊C·L·(1 − e^(−k·C))⌋. */
export function protectedCount(channels: number, layerLimit: number, limitFactor: number): number {
  return channels - Math.floor(channels * layerLimit * (1 - Math.exp(-limitFactor * channels)));
}

export interface SubnetworkOptions {
  /** Reduction of `metric` to reach, 0..1. */
  target: number;
  /** What the target counts: FLOPs (default), or latency predicted from the model's latency table. */
  metric?: 'flops' | 'latency';
  layerPruneLimit: number;
  layerLimitFactor: number;
  /** Multiply scores by (1 − c_g). */
  flopsAware: boolean;
  /**
   * Channels each group loses (by group id), set by the config's allocation: the selection then takes
   * that many lowest-saliency channels of each group instead of searching one global threshold.
   */
  removedPerGroup?: ReadonlyMap<number, number>;
}

export interface Subnetwork {
  /** Per group id: the retained channel positions (ascending). */
  retained: Map<number, number[]>;
  /** Units selected for removal (ids into graph.units). */
  removed: number[];
  /** FLOPs reduction of that removal, from the cost tracker. */
  flopsReduction: number;
}

export class SubnetworkSelector {
  readonly cost: CostTracker;
  private readonly costWeights: Map<number, number>;

  constructor(model: tf.LayersModel, readonly graph: ChannelGraph, readonly groups: readonly ChannelGroup[], readonly options: SubnetworkOptions) {
    this.cost = new CostTracker(model, graph);
    this.costWeights = groupCostWeights(this.cost, groups);
  }

  /** Scores every unit of the selector's groups; protected channels get +∞. */
  scores(model: tf.LayersModel): Float64Array {
    const saliency = unitSaliency(model, this.graph);
    const scores = new Float64Array(this.graph.units.length).fill(Infinity);
    for (const group of this.groups) {
      const scale = this.options.flopsAware ? 1 - (this.costWeights.get(group.id) ?? 0) : 1;
      const keep = protectedCount(group.units.length, this.options.layerPruneLimit, this.options.layerLimitFactor);
      const order = group.units.slice().sort((a, b) => saliency[b] - saliency[a] || a - b);
      order.forEach((id, rank) => { scores[id] = rank < keep ? Infinity : saliency[id] * scale; });
    }
    return scores;
  }

  /** The sub-network for the current weights: the global threshold whose removal is closest to the target. */
  select(model: tf.LayersModel): Subnetwork {
    if (this.options.removedPerGroup) return this.selectAtCounts(model, this.options.removedPerGroup);
    const scores = this.scores(model);
    const candidates = this.groups.flatMap((g) => g.units).filter((id) => Number.isFinite(scores[id]));
    candidates.sort((a, b) => scores[a] - scores[b] || a - b);
    // Removing the k lowest-scoring candidates; reduction grows with k, so bisect on k.
    const metric = this.options.metric ?? 'flops';
    const reductionAt = (k: number) => this.cost.reductionWithout(candidates.slice(0, k))[metric] ?? 0;
    let lo = 0;
    let hi = candidates.length;
    if (reductionAt(hi) <= this.options.target) lo = hi;
    else {
      while (hi - lo > 1) {
        const mid = (lo + hi) >> 1;
        if (reductionAt(mid) <= this.options.target) lo = mid;
        else hi = mid;
      }
      if (Math.abs(reductionAt(hi) - this.options.target) < Math.abs(reductionAt(lo) - this.options.target)) lo = hi;
    }
    return this.subnetwork(candidates.slice(0, lo));
  }

  /** The sub-network that drops each group's `counts` least salient channels (the group's cost scale orders none of them differently). */
  private selectAtCounts(model: tf.LayersModel, counts: ReadonlyMap<number, number>): Subnetwork {
    const saliency = unitSaliency(model, this.graph);
    return this.subnetwork(this.groups.flatMap((group) => {
      const count = Math.min(counts.get(group.id) ?? 0, group.units.length - 1);
      return group.units.slice().sort((a, b) => saliency[a] - saliency[b] || a - b).slice(0, count);
    }));
  }

  private subnetwork(units: readonly number[]): Subnetwork {
    const removed = [...units].sort((a, b) => a - b);
    const removedSet = new Set(removed);
    const retained = new Map<number, number[]>();
    for (const group of this.groups) retained.set(group.id, group.units.flatMap((id, index) => (removedSet.has(id) ? [] : [index])));
    return { retained, removed, flopsReduction: this.cost.reductionWithout(removed).flops };
  }
}
