import type * as tf from '@tensorflow/tfjs';
import type { ChannelGraph } from '../graph/types.js';
import { product, walkModel, type Topology } from '../graph/topology.js';
import { layerCosts, weightFlopFactors, type LayerCost } from '../graph/layer-cost.js';
import { layerWeights } from '../layers/index.js';
import { LatencyPredictor, type LatencyTable } from './latency-table.js';

/**
 * Parameters and FLOPs. FLOPs are per sample with a multiply-add counted as 2; each layer's rule
 * is its entry's in the layer registry: convolutions (plain, depthwise, separable, transposed)
 * and dense layers are counted, bias additions, batch norm, activations, pooling and merges are
 * not. Every counted weight costs `numel × factor` FLOPs, so the cost after removing channels
 * follows from the kept weight shapes.
 */

export { weightFlopFactors, type LayerCost };

export interface ModelCost {
  params: number;
  flops: number;
  layers: Record<string, LayerCost>;
}

export function countCost(model: tf.LayersModel, topo: Topology = walkModel(model)): ModelCost {
  const layers = layerCosts(model, topo);
  let flops = 0;
  for (const layer of model.layers) flops += layers[layer.name].flops;
  return { params: model.countParams(), flops, layers };
}

/** What the cost model measures: params, FLOPs, and, with a latency table, predicted latency in ms. */
export type CostMetric = 'params' | 'flops' | 'latency';
/** `latency` only when the tracker holds a latency table. */
export interface Costs {
  params: number;
  flops: number;
  latency?: number;
}

/**
 * Latency tables by model, so every tracker of the session's model predicts latency (selection,
 * i-SpaSP's widths) without each caller carrying the table.
 */
const latencyTables = new WeakMap<tf.LayersModel, { graph: ChannelGraph; table: LatencyTable }>();

/** Makes `table` the latency part of every CostTracker built on `model` and `graph` from now on. */
export function useLatencyTable(model: tf.LayersModel, graph: ChannelGraph, table: LatencyTable): void {
  latencyTables.set(model, { graph, table });
}

export function latencyTableOf(model: tf.LayersModel): LatencyTable | undefined {
  return latencyTables.get(model)?.table;
}

interface TrackedWeight {
  layer: string;
  weight: string;
  dims: number[];
  factor: number;
}

/**
 * Exact params and FLOPs of the model as channel units are removed, without rebuilding it:
 * every removal shrinks the weight axes its slices address (producers' output axes,
 * consumers' input axes, batch-norm vectors, depthwise channels). With a latency table (given,
 * or set for the model by `useLatencyTable`), also the predicted latency (`latency-table.ts`).
 */
export class CostTracker {
  readonly baseline: Costs;
  private readonly weights: TrackedWeight[] = [];
  /** Per unit: [weight index, axis, count] triples. */
  private readonly unitShrinks: Int32Array[];
  private readonly removed = new Set<number>();
  private params: number;
  private flops: number;
  private readonly latency?: LatencyPredictor;

  constructor(model: tf.LayersModel, graph: ChannelGraph, topo: Topology = walkModel(model), latencyTable?: LatencyTable) {
    const factors = weightFlopFactors(topo);
    const index = new Map<string, number>();
    for (const layer of model.layers) {
      for (const [name, v] of layerWeights(layer)) {
        index.set(`${layer.name}\u0000${name}`, this.weights.length);
        this.weights.push({ layer: layer.name, weight: name, dims: v.shape.map((d) => d ?? 1), factor: factors.get(layer.name)?.get(name) ?? 0 });
      }
    }
    this.unitShrinks = graph.units.map((unit) => {
      const seen = new Map<string, number>();
      const triples: number[] = [];
      for (const s of unit.slices) {
        const w = index.get(`${s.layer}\u0000${s.weight}`);
        if (w === undefined) continue;
        const key = `${w}:${s.axis}`;
        const at = seen.get(key);
        if (at !== undefined) triples[at + 2] += s.indices.length;
        else {
          seen.set(key, triples.length);
          triples.push(w, s.axis, s.indices.length);
        }
      }
      return Int32Array.from(triples);
    });
    this.params = 0;
    this.flops = 0;
    for (const w of this.weights) {
      const n = product(w.dims);
      this.params += n;
      this.flops += n * w.factor;
    }
    const registered = latencyTables.get(model);
    const table = latencyTable ?? (registered?.graph === graph ? registered.table : undefined);
    if (table) this.latency = new LatencyPredictor(model, graph, table, topo);
    this.baseline = this.latency ? { params: this.params, flops: this.flops, latency: this.latency.baselineMs } : { params: this.params, flops: this.flops };
  }

  /** Whether the tracker predicts latency (it holds a latency table). */
  get predictsLatency(): boolean {
    return this.latency !== undefined;
  }

  cost(): Costs {
    return this.latency ? { params: this.params, flops: this.flops, latency: this.latency.ms } : { params: this.params, flops: this.flops };
  }

  /** Predicted ms of each timed layer with the units removed so far (empty without a latency table). */
  layerLatency(): Record<string, number> {
    return this.latency?.layerMs() ?? {};
  }

  isRemoved(unit: number): boolean {
    return this.removed.has(unit);
  }

  /** How much params and FLOPs (and predicted ms) would drop if `unit` were removed now. */
  removalDelta(unit: number): Costs {
    return this.apply([unit], -1, false);
  }

  /** The cost of removing `units` as well: params and FLOPs of the model without them (the tracker does not change). */
  costWithout(units: Iterable<number>): Costs {
    const fresh = new Set<number>();
    for (const u of units) if (!this.removed.has(u)) fresh.add(u);
    const drop = this.apply(fresh, -1, false);
    const cost: Costs = { params: this.params - drop.params, flops: this.flops - drop.flops };
    if (this.latency) cost.latency = this.latency.ms - (drop.latency ?? 0);
    return cost;
  }

  /** Fractions of the baseline params and FLOPs (and predicted latency) gone once `units` are removed as well (0 where the baseline is 0). */
  reductionWithout(units: Iterable<number>): Costs {
    const cost = this.costWithout(units);
    const fraction = (value: number, base: number) => (base > 0 ? 1 - value / base : 0);
    const out: Costs = { params: fraction(cost.params, this.baseline.params), flops: fraction(cost.flops, this.baseline.flops) };
    if (cost.latency !== undefined) out.latency = fraction(cost.latency, this.baseline.latency ?? 0);
    return out;
  }

  remove(unit: number): void {
    if (this.removed.has(unit)) return;
    this.apply([unit], -1, true);
    this.removed.add(unit);
  }

  restore(unit: number): void {
    if (!this.removed.has(unit)) return;
    this.apply([unit], +1, true);
    this.removed.delete(unit);
  }

  /** Current size of a weight axis (e.g. kept output channels of a conv kernel). */
  dim(layer: string, weight: string, axis: number): number | undefined {
    const w = this.weights.find((x) => x.layer === layer && x.weight === weight);
    return w?.dims[axis];
  }

  /** Params and FLOPs of one layer in its current (shrunk) state. */
  layerCost(layer: string): { params: number; flops: number } {
    let params = 0;
    let flops = 0;
    for (const w of this.weights) {
      if (w.layer !== layer) continue;
      const n = product(w.dims);
      params += n;
      flops += n * w.factor;
    }
    return { params, flops };
  }

  private apply(units: Iterable<number>, sign: number, commit: boolean): Costs {
    const list = [...units];
    const touched = new Map<number, number[]>();
    for (const unit of list) {
      const t = this.unitShrinks[unit];
      for (let i = 0; i < t.length; i += 3) {
        const w = t[i];
        const dims = touched.get(w) ?? [...this.weights[w].dims];
        dims[t[i + 1]] += sign * t[i + 2];
        touched.set(w, dims);
      }
    }
    let dParams = 0;
    let dFlops = 0;
    for (const [w, dims] of touched) {
      const before = product(this.weights[w].dims);
      const after = product(dims);
      dParams += before - after;
      dFlops += (before - after) * this.weights[w].factor;
      if (commit) this.weights[w].dims = dims;
    }
    if (commit) {
      this.params -= dParams;
      this.flops -= dFlops;
    }
    if (!this.latency) return { params: dParams, flops: dFlops };
    return { params: dParams, flops: dFlops, latency: this.latency.apply(list, sign, commit) };
  }
}
