import type * as tf from '@tensorflow/tfjs';
import type { ChannelGraph } from '../../graph/types.js';
import { weightShortName } from '../../graph/topology.js';

/**
 * Analytic cost of the model after removing a set of channel units, without building it.
 * Every weight's size scales with the kept fraction along each axis the units slice, so
 * parameters are exact; FLOPs count 2 × kernel size × output positions per kernel, which is
 * what a multiply-add costs (bias adds and norms are not counted). Used inside searches that
 * try many candidate prune sets (bisection, OCSPruner's global threshold).
 */
export interface UnitCostModel {
  denseFlops: number;
  denseParams: number;
  /** FLOPs and params of the model with the given units removed. */
  cost(removed: Iterable<number>): { flops: number; params: number };
  /** 1 − FLOPs(removed) / FLOPs(dense). */
  flopsReduction(removed: Iterable<number>): number;
  paramsReduction(removed: Iterable<number>): number;
}

interface WeightEntry {
  numel: number;
  /** Output positions the kernel is applied at; 0 for weights that cost no multiply-adds. */
  positions: number;
  shape: number[];
}

const KERNEL_WEIGHTS = new Set(['kernel', 'depthwise_kernel', 'pointwise_kernel']);

export function createUnitCostModel(model: tf.LayersModel, graph: ChannelGraph): UnitCostModel {
  const weights = new Map<string, WeightEntry>();
  for (const layer of model.layers) {
    const outShape = (Array.isArray(layer.outputShape[0]) ? layer.outputShape[0] : layer.outputShape) as (number | null)[];
    let positions = 1;
    for (let i = 1; i < outShape.length - 1; i++) positions *= outShape[i] ?? 1;
    const calls = Math.max(1, layer.inboundNodes.length);
    for (const v of layer.weights) {
      const name = weightShortName(v);
      const numel = v.shape.reduce((a: number, b) => a * (b ?? 1), 1);
      weights.set(`${layer.name}/${name}`, {
        numel,
        positions: KERNEL_WEIGHTS.has(name) ? positions * calls : 0,
        shape: v.shape.map((d) => d ?? 1),
      });
    }
  }

  // Per unit: (weight key, axis, number of indices) for every slice it owns.
  const unitSlices: { key: string; axis: number; count: number }[][] = graph.units.map((unit) =>
    unit.slices
      .filter((s) => weights.has(`${s.layer}/${s.weight}`))
      .map((s) => ({ key: `${s.layer}/${s.weight}`, axis: s.axis, count: s.indices.length })),
  );

  let denseFlops = 0;
  let denseParams = 0;
  for (const w of weights.values()) {
    denseFlops += 2 * w.numel * w.positions;
    denseParams += w.numel;
  }

  const cost = (removed: Iterable<number>) => {
    const removedAlong = new Map<string, Map<number, number>>();
    for (const id of removed) {
      for (const s of unitSlices[id] ?? []) {
        let axes = removedAlong.get(s.key);
        if (!axes) removedAlong.set(s.key, (axes = new Map()));
        axes.set(s.axis, (axes.get(s.axis) ?? 0) + s.count);
      }
    }
    let flops = denseFlops;
    let params = denseParams;
    for (const [key, axes] of removedAlong) {
      const w = weights.get(key)!;
      let keep = 1;
      for (const [axis, count] of axes) keep *= Math.max(0, 1 - count / w.shape[axis]);
      params -= w.numel * (1 - keep);
      flops -= 2 * w.numel * w.positions * (1 - keep);
    }
    return { flops, params };
  };

  return {
    denseFlops,
    denseParams,
    cost,
    flopsReduction: (removed) => (denseFlops > 0 ? 1 - cost(removed).flops / denseFlops : 0),
    paramsReduction: (removed) => (denseParams > 0 ? 1 - cost(removed).params / denseParams : 0),
  };
}
