import type * as tf from '@tensorflow/tfjs';
import { layerSpec, layerWeights } from '../layers/index.js';
import { product, type Topology } from './topology.js';

/**
 * Params and FLOPs of every layer, from the registry's FLOPs rules: every counted weight costs
 * `numel × factor` FLOPs, so the cost after removing channels follows from the kept weight shapes.
 */

export interface LayerCost {
  params: number;
  flops: number;
  inChannels: number;
  outChannels: number;
}

/** FLOPs per element of each compute weight: layer → weight short name → factor (summed over the layer's calls). */
export function weightFlopFactors(topo: Topology): Map<string, Map<string, number>> {
  const factors = new Map<string, Map<string, number>>();
  for (const node of topo.nodes) {
    if (!node.outputs[0]?.shape) continue;
    const rule = layerSpec(node.className)?.flops;
    if (!rule) continue;
    let m = factors.get(node.name);
    if (!m) factors.set(node.name, (m = new Map()));
    for (const [weight, factor] of rule(node)) m.set(weight, (m.get(weight) ?? 0) + factor);
  }
  return factors;
}

/** Params, FLOPs and channel counts of every layer of the model. */
export function layerCosts(model: tf.LayersModel, topo: Topology): Record<string, LayerCost> {
  const factors = weightFlopFactors(topo);
  const layers: Record<string, LayerCost> = {};
  for (const layer of model.layers) {
    const f = factors.get(layer.name);
    let flops = 0;
    if (f) {
      for (const [name, w] of layerWeights(layer)) {
        const factor = f.get(name);
        if (factor) flops += product(w.shape) * factor;
      }
    }
    const node = topo.nodesByLayer.get(layer.name)?.[0];
    const outChannels = node?.outputs[0]?.channels ?? 0;
    const inChannels = node?.inputs[0]?.channels ?? outChannels;
    layers[layer.name] = { params: layer.countParams(), flops, inChannels, outChannels };
  }
  return layers;
}
