import type * as tf from '@tensorflow/tfjs';
import type { ChannelGraph } from '../graph/types.js';
import { product, walkModel, type Topology } from '../graph/topology.js';
import { layerCosts, weightFlopFactors, type LayerCost } from '../graph/layer-cost.js';
import { layerWeights } from '../layers/index.js';

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

interface TrackedWeight {
  layer: string;
  weight: string;
  dims: number[];
  factor: number;
}

/**
 * Exact params and FLOPs of the model as channel units are removed, without rebuilding it:
 * every removal shrinks the weight axes its slices address (producers' output axes,
 * consumers' input axes, batch-norm vectors, depthwise channels).
 */
export class CostTracker {
  readonly baseline: { params: number; flops: number };
  private readonly weights: TrackedWeight[] = [];
  /** Per unit: [weight index, axis, count] triples. */
  private readonly unitShrinks: Int32Array[];
  private readonly removed = new Set<number>();
  private params: number;
  private flops: number;

  constructor(model: tf.LayersModel, graph: ChannelGraph, topo: Topology = walkModel(model)) {
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
    this.baseline = { params: this.params, flops: this.flops };
  }

  cost(): { params: number; flops: number } {
    return { params: this.params, flops: this.flops };
  }

  isRemoved(unit: number): boolean {
    return this.removed.has(unit);
  }

  /** How much params and FLOPs would drop if `unit` were removed now. */
  removalDelta(unit: number): { params: number; flops: number } {
    return this.apply([unit], -1, false);
  }

  /** The cost of removing `units` as well: params and FLOPs of the model without them (the tracker does not change). */
  costWithout(units: Iterable<number>): { params: number; flops: number } {
    const fresh = new Set<number>();
    for (const u of units) if (!this.removed.has(u)) fresh.add(u);
    const drop = this.apply(fresh, -1, false);
    return { params: this.params - drop.params, flops: this.flops - drop.flops };
  }

  /** Fractions of the baseline params and FLOPs gone once `units` are removed as well (0 where the baseline is 0). */
  reductionWithout(units: Iterable<number>): { params: number; flops: number } {
    const cost = this.costWithout(units);
    const fraction = (value: number, base: number) => (base > 0 ? 1 - value / base : 0);
    return { params: fraction(cost.params, this.baseline.params), flops: fraction(cost.flops, this.baseline.flops) };
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

  private apply(units: Iterable<number>, sign: number, commit: boolean): { params: number; flops: number } {
    const touched = new Map<number, number[]>();
    for (const unit of units) {
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
    return { params: dParams, flops: dFlops };
  }
}
