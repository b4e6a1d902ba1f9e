import type * as tf from '@tensorflow/tfjs';
import { isStatisticWeight, layerWeight } from '../layers/index.js';
import type { ChannelGraph } from '../graph/types.js';

/**
 * Per-unit magnitudes over every slice a unit owns: producer filters and biases, batch-norm
 * gamma/beta, depthwise channels, consumer input slices. Batch-norm moving statistics are left
 * out: they say nothing about importance and the variance is never zero.
 */

export interface UnitSums {
  /** Σ|w| over the unit's slices. */
  l1: Float64Array;
  /** Σw² over the unit's slices. */
  l2sq: Float64Array;
  /** Number of weight elements in the unit's slices. */
  count: Float64Array;
}

interface AxisSums {
  l1: Float64Array;
  l2sq: Float64Array;
  /** Elements per index along the axis. */
  perIndex: number;
}

/**
 * Sums along one axis of one weight, reduced over all other axes. A plain loop over the
 * weight's values: much faster than transposing reductions on the CPU backend.
 */
function axisSums(model: tf.LayersModel, layer: string, weight: string, axis: number): AxisSums | undefined {
  const variable = layerWeight(model.getLayer(layer), weight);
  if (!variable) return undefined;
  const value = variable.read();
  const data = value.dataSync() as Float32Array;
  const dims = value.shape;
  const size = dims[axis];
  let inner = 1;
  for (let i = axis + 1; i < dims.length; i++) inner *= dims[i];
  const l1 = new Float64Array(size);
  const l2sq = new Float64Array(size);
  // Index-major blocks of `inner` values; each index's sums add its values in storage order.
  for (let block = 0, i = 0; i < data.length; block++) {
    const index = block % size;
    let a1 = l1[index];
    let a2 = l2sq[index];
    for (const end = i + inner; i < end; i++) {
      const v = data[i];
      a1 += Math.abs(v);
      a2 += v * v;
    }
    l1[index] = a1;
    l2sq[index] = a2;
  }
  return { l1, l2sq, perIndex: size > 0 ? data.length / size : 0 };
}

export function unitSums(model: tf.LayersModel, graph: ChannelGraph): UnitSums {
  const n = graph.units.length;
  const sums: UnitSums = { l1: new Float64Array(n), l2sq: new Float64Array(n), count: new Float64Array(n) };
  // layer → weight → axis → sums: slices share their strings, so no key is built per slice.
  const cache = new Map<string, Map<string, Map<number, AxisSums | undefined>>>();
  const statistic = new Map<string, boolean>();
  for (const unit of graph.units) {
    for (const s of unit.slices) {
      let skip = statistic.get(s.weight);
      if (skip === undefined) statistic.set(s.weight, (skip = isStatisticWeight(s.weight)));
      if (skip) continue;
      let byWeight = cache.get(s.layer);
      if (!byWeight) cache.set(s.layer, (byWeight = new Map()));
      let byAxis = byWeight.get(s.weight);
      if (!byAxis) byWeight.set(s.weight, (byAxis = new Map()));
      if (!byAxis.has(s.axis)) byAxis.set(s.axis, axisSums(model, s.layer, s.weight, s.axis));
      const a = byAxis.get(s.axis);
      if (!a) continue;
      for (const i of s.indices) {
        sums.l1[unit.id] += a.l1[i];
        sums.l2sq[unit.id] += a.l2sq[i];
      }
      sums.count[unit.id] += a.perIndex * s.indices.length;
    }
  }
  return sums;
}

/**
 * Norm of every unit over all its slices. With `normalize`, L1 is divided by the number of
 * elements (mean |w|) and L2 by its square root (root mean square), so units of groups with
 * different fan-in compare fairly.
 */
export function unitNorms(model: tf.LayersModel, graph: ChannelGraph, kind: 'l1' | 'l2', normalize = false): Float64Array {
  const s = unitSums(model, graph);
  const out = new Float64Array(graph.units.length);
  for (let u = 0; u < out.length; u++) {
    const count = Math.max(1, s.count[u]);
    out[u] = kind === 'l1' ? (normalize ? s.l1[u] / count : s.l1[u]) : normalize ? Math.sqrt(s.l2sq[u] / count) : Math.sqrt(s.l2sq[u]);
  }
  return out;
}

/** Units whose every slice is exactly zero (removing them changes no output). */
export function allZeroUnits(model: tf.LayersModel, graph: ChannelGraph): number[] {
  const s = unitSums(model, graph);
  const out: number[] = [];
  for (let u = 0; u < s.l1.length; u++) if (s.l1[u] === 0) out.push(u);
  return out;
}
