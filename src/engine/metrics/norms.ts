import type * as tf from '@tensorflow/tfjs';
import { isStatisticWeight, layerWeight } from '../layers/index.js';
import type { ChannelGraph, WeightSlice } from '../graph/types.js';

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
function sumsAlong(data: Float32Array, dims: readonly number[], axis: number): AxisSums {
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

/**
 * Sums along the last two axes at once (a kernel's input and output channels): one pass over
 * the values instead of two, each index's sums still added in storage order, as `sumsAlong` does.
 */
function sumsAlongLastTwo(data: Float32Array, dims: readonly number[]): [AxisSums, AxisSums] {
  const rows = dims[dims.length - 2];
  const cols = dims[dims.length - 1];
  const rowL1 = new Float64Array(rows);
  const rowL2 = new Float64Array(rows);
  const colL1 = new Float64Array(cols);
  const colL2 = new Float64Array(cols);
  for (let i = 0; i < data.length; ) {
    for (let r = 0; r < rows; r++) {
      let a1 = rowL1[r];
      let a2 = rowL2[r];
      for (let c = 0; c < cols; c++, i++) {
        const v = data[i];
        const abs = Math.abs(v);
        const sq = v * v;
        a1 += abs;
        a2 += sq;
        colL1[c] += abs;
        colL2[c] += sq;
      }
      rowL1[r] = a1;
      rowL2[r] = a2;
    }
  }
  return [
    { l1: rowL1, l2sq: rowL2, perIndex: rows > 0 ? data.length / rows : 0 },
    { l1: colL1, l2sq: colL2, perIndex: cols > 0 ? data.length / cols : 0 },
  ];
}

/** Sums along each of `axes` of one weight (undefined when the layer has no such weight). */
function weightSums(model: tf.LayersModel, layer: string, weight: string, axes: readonly number[]): Map<number, AxisSums> | undefined {
  const variable = layerWeight(model.getLayer(layer), weight);
  if (!variable) return undefined;
  const value = variable.read();
  const data = value.dataSync() as Float32Array;
  const dims = value.shape;
  const out = new Map<number, AxisSums>();
  const rank = dims.length;
  if (rank >= 2 && data.length > 0 && axes.includes(rank - 2) && axes.includes(rank - 1)) {
    const [rows, cols] = sumsAlongLastTwo(data, dims);
    out.set(rank - 2, rows).set(rank - 1, cols);
  }
  for (const axis of axes) if (!out.has(axis)) out.set(axis, sumsAlong(data, dims, axis));
  return out;
}

export function unitSums(model: tf.LayersModel, graph: ChannelGraph): UnitSums {
  const n = graph.units.length;
  const sums: UnitSums = { l1: new Float64Array(n), l2sq: new Float64Array(n), count: new Float64Array(n) };
  const statistic = new Map<string, boolean>();
  const counted = (s: WeightSlice) => {
    let skip = statistic.get(s.weight);
    if (skip === undefined) statistic.set(s.weight, (skip = isStatisticWeight(s.weight)));
    return !skip;
  };
  // layer → weight → the axes its slices address; slices share their strings, so no key is built per slice.
  const wanted = new Map<string, Map<string, number[]>>();
  for (const unit of graph.units) {
    for (const s of unit.slices) {
      if (!counted(s)) continue;
      let byWeight = wanted.get(s.layer);
      if (!byWeight) wanted.set(s.layer, (byWeight = new Map()));
      const axes = byWeight.get(s.weight);
      if (!axes) byWeight.set(s.weight, [s.axis]);
      else if (!axes.includes(s.axis)) axes.push(s.axis);
    }
  }
  const computed = new Map<string, Map<string, Map<number, AxisSums> | undefined>>();
  for (const [layer, byWeight] of wanted) {
    const m = new Map<string, Map<number, AxisSums> | undefined>();
    for (const [weight, axes] of byWeight) m.set(weight, weightSums(model, layer, weight, axes));
    computed.set(layer, m);
  }
  for (const unit of graph.units) {
    for (const s of unit.slices) {
      if (!counted(s)) continue;
      const a = computed.get(s.layer)!.get(s.weight)?.get(s.axis);
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
