import type * as tf from '@tensorflow/tfjs';
import type { ChannelGraph } from '../graph/types.js';
import { layerWeights, product, walkModel, weightShortName, type Topology } from '../graph/topology.js';

/**
 * Parameters and FLOPs. FLOPs are per sample with a multiply-add counted as 2; convolutions
 * (plain, depthwise, separable, transposed) and dense layers are counted, bias additions,
 * batch norm, activations, pooling and merges are not. Every counted weight costs
 * `numel × factor` FLOPs, so the cost after removing channels follows from the kept weight shapes.
 */

export interface LayerCost {
  params: number;
  flops: number;
  inChannels: number;
  outChannels: number;
}

export interface ModelCost {
  params: number;
  flops: number;
  layers: Record<string, LayerCost>;
}

/** FLOPs per element of each compute weight: layer → weight short name → factor. */
export function weightFlopFactors(topo: Topology): Map<string, Map<string, number>> {
  const factors = new Map<string, Map<string, number>>();
  const add = (layer: string, weight: string, value: number) => {
    let m = factors.get(layer);
    if (!m) factors.set(layer, (m = new Map()));
    m.set(weight, (m.get(weight) ?? 0) + value);
  };
  for (const node of topo.nodes) {
    const out = node.outputs[0]?.shape;
    const inp = node.inputs[0]?.shape;
    if (!out) continue;
    const outPositions = product(out.slice(1, -1));
    switch (node.className) {
      case 'Conv1D':
      case 'Conv2D':
      case 'Conv3D':
      case 'Dense':
        add(node.name, 'kernel', 2 * outPositions);
        break;
      case 'DepthwiseConv2D':
        add(node.name, 'depthwise_kernel', 2 * outPositions);
        break;
      case 'SeparableConv1D':
      case 'SeparableConv2D':
        add(node.name, 'depthwise_kernel', 2 * outPositions);
        add(node.name, 'pointwise_kernel', 2 * outPositions);
        break;
      case 'Conv2DTranspose':
      case 'Conv3DTranspose':
        if (inp) add(node.name, 'kernel', 2 * product(inp.slice(1, -1)));
        break;
      default:
        break;
    }
  }
  return factors;
}

export function countCost(model: tf.LayersModel, topo: Topology = walkModel(model)): ModelCost {
  const factors = weightFlopFactors(topo);
  const layers: Record<string, LayerCost> = {};
  let flops = 0;
  for (const layer of model.layers) {
    const f = factors.get(layer.name);
    let layerFlops = 0;
    if (f) {
      for (const w of layer.weights) {
        const factor = f.get(weightShortName(w as unknown as { originalName?: string; name: string }));
        if (factor) layerFlops += product(w.shape) * factor;
      }
    }
    flops += layerFlops;
    const node = topo.nodesByLayer.get(layer.name)?.[0];
    const outChannels = node?.outputs[0]?.channels ?? 0;
    const inChannels = node?.inputs[0]?.channels ?? outChannels;
    layers[layer.name] = { params: layer.countParams(), flops: layerFlops, inChannels, outChannels };
  }
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
    return this.apply(unit, -1, false);
  }

  remove(unit: number): void {
    if (this.removed.has(unit)) return;
    this.apply(unit, -1, true);
    this.removed.add(unit);
  }

  restore(unit: number): void {
    if (!this.removed.has(unit)) return;
    this.apply(unit, +1, true);
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

  private apply(unit: number, sign: number, commit: boolean): { params: number; flops: number } {
    const t = this.unitShrinks[unit];
    const touched = new Map<number, number[]>();
    for (let i = 0; i < t.length; i += 3) {
      const w = t[i];
      const dims = touched.get(w) ?? [...this.weights[w].dims];
      dims[t[i + 1]] += sign * t[i + 2];
      touched.set(w, dims);
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
