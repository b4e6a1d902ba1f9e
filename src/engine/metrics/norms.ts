import type * as tf from '@tensorflow/tfjs';
import { isStatisticWeight, layerWeights } from '../layers/index.js';
import { sliceTableOf } from '../graph/slice-table.js';
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
 * weight's values: much faster than transposing reductions on the CPU backend. Without `squares`
 * only the L1 sums are added (l2sq stays zero).
 */
function sumsAlong(data: Float32Array, dims: readonly number[], axis: number, squares: boolean): AxisSums {
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
    const end = i + inner;
    if (squares) {
      for (; i < end; i++) {
        const v = data[i];
        a1 += Math.abs(v);
        a2 += v * v;
      }
    } else for (; i < end; i++) a1 += Math.abs(data[i]);
    l1[index] = a1;
    l2sq[index] = a2;
  }
  return { l1, l2sq, perIndex: size > 0 ? data.length / size : 0 };
}

/**
 * Sums along the last two axes at once (a kernel's input and output channels): one pass over
 * the values instead of two, each index's sums still added in storage order, as `sumsAlong` does.
 */
function sumsAlongLastTwo(data: Float32Array, dims: readonly number[], squares: boolean): [AxisSums, AxisSums] {
  const rows = dims[dims.length - 2];
  const cols = dims[dims.length - 1];
  const rowL1 = new Float64Array(rows);
  const rowL2 = new Float64Array(rows);
  const colL1 = new Float64Array(cols);
  const colL2 = new Float64Array(cols);
  for (let i = 0; i < data.length; ) {
    for (let r = 0; r < rows; r++) {
      let a1 = rowL1[r];
      if (squares) {
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
        rowL2[r] = a2;
      } else {
        for (let c = 0; c < cols; c++, i++) {
          const abs = Math.abs(data[i]);
          a1 += abs;
          colL1[c] += abs;
        }
      }
      rowL1[r] = a1;
    }
  }
  return [
    { l1: rowL1, l2sq: rowL2, perIndex: rows > 0 ? data.length / rows : 0 },
    { l1: colL1, l2sq: colL2, perIndex: cols > 0 ? data.length / cols : 0 },
  ];
}

/** Sums along each of `axes` of one weight (undefined when the layer has no such weight). */
function weightSums(variable: tf.LayerVariable, axes: readonly number[], squares: boolean): Map<number, AxisSums> {
  const value = variable.read();
  const data = value.dataSync() as Float32Array;
  const dims = value.shape;
  const out = new Map<number, AxisSums>();
  const rank = dims.length;
  if (rank >= 2 && data.length > 0 && axes.includes(rank - 2) && axes.includes(rank - 1)) {
    const [rows, cols] = sumsAlongLastTwo(data, dims, squares);
    out.set(rank - 2, rows).set(rank - 1, cols);
  }
  for (const axis of axes) if (!out.has(axis)) out.set(axis, sumsAlong(data, dims, axis, squares));
  return out;
}

/**
 * Every unit's sums over its slices, read from the graph's slice table: each weight is read once
 * for all the axes its slices address, and each unit adds its entries in the order of its slices
 * and their indices. Without `squares` only l1 and count are filled.
 */
function sumsOfUnits(model: tf.LayersModel, graph: ChannelGraph, squares: boolean): UnitSums {
  const n = graph.units.length;
  const sums: UnitSums = { l1: new Float64Array(n), l2sq: new Float64Array(n), count: new Float64Array(n) };
  const table = sliceTableOf(graph);
  // layer → weight → the axes its counted keys address.
  const wanted = new Map<string, Map<string, number[]>>();
  for (const k of table.keys) {
    if (isStatisticWeight(k.weight)) continue;
    let byWeight = wanted.get(k.layer);
    if (!byWeight) wanted.set(k.layer, (byWeight = new Map()));
    const axes = byWeight.get(k.weight);
    if (!axes) byWeight.set(k.weight, [k.axis]);
    else if (!axes.includes(k.axis)) axes.push(k.axis);
  }
  const computed = new Map<string, Map<string, Map<number, AxisSums>>>();
  for (const [layer, byWeight] of wanted) {
    const weights = layerWeights(model.getLayer(layer));
    const m = new Map<string, Map<number, AxisSums>>();
    for (const [weight, axes] of byWeight) {
      const variable = weights.get(weight);
      if (variable) m.set(weight, weightSums(variable, axes, squares));
    }
    computed.set(layer, m);
  }
  const byRank = table.keys.map((k) => (isStatisticWeight(k.weight) ? undefined : computed.get(k.layer)?.get(k.weight)?.get(k.axis)));
  const { entries, offsets, span } = table;
  for (let u = 0; u < n; u++) {
    let l1 = 0;
    let l2 = 0;
    let count = 0;
    for (let j = offsets[u], end = offsets[u + 1]; j < end; j++) {
      const rank = Math.floor(entries[j] / span);
      const a = byRank[rank];
      if (!a) continue;
      const i = entries[j] - rank * span;
      l1 += a.l1[i];
      if (squares) l2 += a.l2sq[i];
      count += a.perIndex;
    }
    sums.l1[u] = l1;
    sums.l2sq[u] = l2;
    sums.count[u] = count;
  }
  return sums;
}

export function unitSums(model: tf.LayersModel, graph: ChannelGraph): UnitSums {
  return sumsOfUnits(model, graph, true);
}

/**
 * Norm of every unit over all its slices. With `normalize`, L1 is divided by the number of
 * elements (mean |w|) and L2 by its square root (root mean square), so units of groups with
 * different fan-in compare fairly.
 */
export function unitNorms(model: tf.LayersModel, graph: ChannelGraph, kind: 'l1' | 'l2', normalize = false): Float64Array {
  const s = sumsOfUnits(model, graph, kind === 'l2');
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
