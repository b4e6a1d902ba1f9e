import type * as tf from '@tensorflow/tfjs';
import type { ChannelGraph } from '../graph/types.js';
import { layerSpec, layerWeights, resolveAxis, weightKind } from '../layers/index.js';
import type { LayersEvent, LayerStat } from '../../protocol/events.js';
import { CostTracker } from './cost.js';
import { unitSums } from './norms.js';

function histogram(values: number[], bins: number): { edges: number[]; counts: number[] } {
  const max = values.reduce((m, v) => Math.max(m, v), 0);
  const hi = max > 0 ? max : 1;
  const edges = Array.from({ length: bins + 1 }, (_, i) => (hi * i) / bins);
  const counts = new Array<number>(bins).fill(0);
  for (const v of values) counts[Math.min(bins - 1, Math.floor((v / hi) * bins))]++;
  return { edges, counts };
}

/**
 * Statistics of every layer that owns output channels (conv, dense, depthwise, separable):
 * channels kept (after removing `removed` units, when given), kernel sparsity, params and
 * FLOPs in that state, a histogram of the L2 norms of its group's units, and all-zero units.
 */
export function layerStats(
  model: tf.LayersModel,
  graph: ChannelGraph,
  opts: { removed?: Iterable<number>; bins?: number } = {},
): { layers: LayerStat[]; totals: LayersEvent['totals'] } {
  const bins = Math.max(1, opts.bins ?? 10);
  const tracker = new CostTracker(model, graph);
  const removed = new Set<number>();
  for (const u of opts.removed ?? []) {
    if (u >= 0 && u < graph.units.length && !removed.has(u)) {
      removed.add(u);
      tracker.remove(u);
    }
  }
  const sums = unitSums(model, graph);
  const norms = Array.from(sums.l2sq, Math.sqrt);
  const isZero = Array.from(sums.l1, (v) => v === 0);
  const zeroInGroup = graph.groups.map((g) => g.units.filter((u) => isZero[u]).length);

  const layers: LayerStat[] = [];
  for (const info of graph.layers) {
    const output = layerSpec(info.type)?.outputChannels;
    if (!output) continue;
    const weights = layerWeights(model.getLayer(info.name));
    let zeros = 0;
    let total = 0;
    for (const [name, v] of weights) {
      if (weightKind(name) !== 'kernel') continue;
      const data = v.read().dataSync();
      for (let i = 0; i < data.length; i++) if (data[i] === 0) zeros++;
      total += data.length;
    }
    // The tracker's current size of the weight axis that carries the output channels.
    const keptAlong = (axis: { weight: string; axis: number }) => {
      const rank = weights.get(axis.weight)?.shape.length;
      return rank === undefined ? undefined : tracker.dim(info.name, axis.weight, resolveAxis(axis, rank).axis);
    };
    const keptDim = keptAlong(output) ?? info.outChannels;
    const kept = output.times ? keptDim * (keptAlong(output.times) ?? 1) : keptDim;
    const cost = tracker.layerCost(info.name);
    const stat: LayerStat = {
      name: info.name,
      type: info.type,
      status: info.status,
      channels: info.outChannels,
      kept,
      sparsity: total > 0 ? zeros / total : 0,
      params: cost.params,
      flops: cost.flops,
    };
    if (info.group !== undefined) {
      stat.group = info.group;
      const group = graph.groups[info.group];
      stat.normHistogram = histogram(group.units.map((u) => norms[u]), bins);
      stat.zeroGroups = zeroInGroup[info.group];
    }
    if (info.reason) stat.reason = info.reason;
    layers.push(stat);
  }
  const cost = tracker.cost();
  return {
    layers,
    totals: {
      params: cost.params,
      flops: cost.flops,
      keptChannels: graph.units.length - removed.size,
      prunableChannels: graph.units.length,
      zeroGroups: isZero.filter(Boolean).length,
    },
  };
}
