import * as tf from '@tensorflow/tfjs';
import '../io/serialization-fixes.js';
import { isStatisticWeight, layerSpec, layerWeight, layerWeights, resolveAxis, weightShortName } from '../layers/index.js';
import type { ChannelGraph } from '../graph/types.js';

/**
 * Structured surgery on channel units. `removeUnits` builds a new, physically smaller model
 * (topology with fewer filters/units, surviving weight slices gathered); `zeroUnits` masks the
 * same slices in place. Removing units that are zero in every slice leaves outputs unchanged.
 */

/** layer → weight → axis → indices to drop (may repeat). */
type Plan = Map<string, Map<string, Map<number, number[]>>>;

function validUnitIds(graph: ChannelGraph, unitIds: readonly number[]): number[] {
  const ids = [...new Set(unitIds)];
  for (const id of ids) {
    if (!Number.isInteger(id) || id < 0 || id >= graph.units.length) {
      throw new Error(`Unit ${id} does not exist: the graph has ${graph.units.length} units`);
    }
  }
  return ids;
}

function planFor(graph: ChannelGraph, unitIds: readonly number[], skip?: (weight: string) => boolean): Plan {
  const plan: Plan = new Map();
  for (const id of unitIds) {
    for (const s of graph.units[id].slices) {
      if (skip?.(s.weight)) continue;
      let byWeight = plan.get(s.layer);
      if (!byWeight) plan.set(s.layer, (byWeight = new Map()));
      let byAxis = byWeight.get(s.weight);
      if (!byAxis) byWeight.set(s.weight, (byAxis = new Map()));
      const list = byAxis.get(s.axis);
      if (!list) byAxis.set(s.axis, s.indices.slice());
      else for (const i of s.indices) list.push(i);
    }
  }
  return plan;
}

/** Indices where `dropped` is 0, ascending. */
function keptIndices(dropped: Uint8Array): Int32Array {
  let count = 0;
  for (let i = 0; i < dropped.length; i++) count += dropped[i];
  const kept = new Int32Array(dropped.length - count);
  for (let i = 0, k = 0; i < dropped.length; i++) if (!dropped[i]) kept[k++] = i;
  return kept;
}

/**
 * The sub-array of row-major `data` (shape `dims`) that keeps, along each axis, the indices in
 * `kept[axis]` (every index where it is undefined): one pass over the output.
 */
function gatherAxes<T extends Float32Array | Int32Array | Uint8Array>(data: T, dims: readonly number[], kept: readonly (Int32Array | undefined)[]): { values: T; shape: number[] } {
  const rank = dims.length;
  // Per axis, the source offsets of the kept indices (index × stride).
  const offsets: Int32Array[] = new Array(rank);
  for (let a = rank - 1, stride = 1; a >= 0; a--) {
    const k = kept[a];
    const o = new Int32Array(k ? k.length : dims[a]);
    for (let i = 0; i < o.length; i++) o[i] = (k ? k[i] : i) * stride;
    offsets[a] = o;
    stride *= dims[a];
  }
  const shape = offsets.map((o) => o.length);
  const size = shape.reduce((a, b) => a * b, 1);
  const values = new (data.constructor as new (n: number) => T)(size);
  if (size === 0) return { values, shape };
  const inner = offsets[rank - 1];
  const position = new Int32Array(rank);
  let out = 0;
  for (;;) {
    let base = 0;
    for (let a = 0; a < rank - 1; a++) base += offsets[a][position[a]];
    for (let k = 0; k < inner.length; k++) values[out++] = data[base + inner[k]];
    let a = rank - 2;
    while (a >= 0 && ++position[a] === shape[a]) position[a--] = 0;
    if (a < 0) break;
  }
  return { values, shape };
}

/**
 * Returns a new model without the given units: producers lose output filters, batch norms
 * and depthwise convs lose channels, consumers lose input slices (every flattened position
 * for dense layers after a flatten). Layer names are kept; the input model is not touched.
 * The returned model is not compiled.
 *
 * One pass over the model's config narrows the widths, the model is built once (with zero
 * initial weights: random initialisation of weights about to be replaced is most of a build's
 * time) and every weight is set from one slice of the source buffer.
 */
export async function removeUnits(model: tf.LayersModel, graph: ChannelGraph, unitIds: readonly number[]): Promise<tf.LayersModel> {
  const ids = validUnitIds(graph, unitIds);
  const removedPerGroup = new Map<number, number>();
  for (const id of ids) {
    const g = graph.units[id].group;
    removedPerGroup.set(g, (removedPerGroup.get(g) ?? 0) + 1);
  }
  for (const [g, n] of removedPerGroup) {
    const group = graph.groups[g];
    if (n >= group.channels) {
      throw new Error(`Cannot remove all ${group.channels} channels of group ${g} (${group.producers.join(', ')}): every tensor keeps at least one channel`);
    }
  }
  const removedUnits = new Set(ids);
  const oldLayers = new Map(model.layers.map((l) => [l.name, l]));
  const layerInfo = new Map(graph.layers.map((l) => [l.name, l]));
  // Kept indices per layer → weight → axis: a mask of the dropped indices per weight axis, then its complement.
  const dropMasks = new Map<string, Map<string, Map<number, Uint8Array>>>();
  for (const id of ids) {
    for (const s of graph.units[id].slices) {
      let byWeight = dropMasks.get(s.layer);
      if (!byWeight) dropMasks.set(s.layer, (byWeight = new Map()));
      let byAxis = byWeight.get(s.weight);
      if (!byAxis) byWeight.set(s.weight, (byAxis = new Map()));
      let mask = byAxis.get(s.axis);
      if (!mask) {
        const size = layerWeight(oldLayers.get(s.layer)!, s.weight)?.shape[s.axis];
        if (size === undefined || size === null) continue;
        byAxis.set(s.axis, (mask = new Uint8Array(size)));
      }
      for (const i of s.indices) mask[i] = 1;
    }
  }
  const keptByLayer = new Map<string, Map<string, Map<number, Int32Array>>>();
  for (const [layerName, byWeight] of dropMasks) {
    const keptByWeight = new Map<string, Map<number, Int32Array>>();
    for (const [name, byAxis] of byWeight) {
      const keptByAxis = new Map<number, Int32Array>();
      for (const [axis, mask] of byAxis) keptByAxis.set(axis, keptIndices(mask));
      keptByWeight.set(name, keptByAxis);
    }
    keptByLayer.set(layerName, keptByWeight);
  }

  // The model's own (camelCase) config, edited and built once; building with `fastWeightInit`
  // gives every weight zeros instead of random values about to be replaced.
  const config = model.getConfig() as unknown as { layers: { className: string; config: Record<string, unknown> & { name: string } }[] };
  for (const layerConfig of config.layers) {
    const name = layerConfig.config.name;
    const spec = layerSpec(layerConfig.className);
    // The registry's width field shrinks by the channels removed along the weight axis that carries it.
    const output = spec?.outputChannels;
    const keptByAxis = output && keptByLayer.get(name)?.get(output.weight);
    if (spec?.widthField && output && keptByAxis) {
      const variable = layerWeight(oldLayers.get(name)!, output.weight)!;
      const axis = resolveAxis(output, variable.shape.length).axis;
      const kept = keptByAxis.get(axis);
      if (kept) layerConfig.config = { ...layerConfig.config, [spec.widthField]: kept.length };
    }
    // Layers that record their width in their config alone (a reshape's target shape) lose the removed units among their channels.
    const narrow = spec?.narrowConfig;
    const info = narrow && layerInfo.get(name);
    const removed = info?.outputUnits?.filter((u) => removedUnits.has(u)).length ?? 0;
    if (narrow && info && removed > 0) layerConfig.config = narrow(layerConfig.config, info.outChannels - removed) as typeof layerConfig.config;
  }
  const modelClass = model.constructor as unknown as typeof tf.LayersModel;
  const pruned = modelClass.fromConfig(modelClass, config as unknown as tf.serialization.ConfigDict, {}, true) as tf.LayersModel;

  try {
    for (const newLayer of pruned.layers) {
      const oldLayer = oldLayers.get(newLayer.name)!;
      if (newLayer.weights.length === 0) continue;
      const oldWeights = layerWeights(oldLayer);
      const layerKept = keptByLayer.get(oldLayer.name);
      for (const target of newLayer.weights) {
        const name = weightShortName(target);
        const source = oldWeights.get(name);
        if (!source) throw new Error(`Weight ${oldLayer.name}/${name} is missing from the source model`);
        const byAxis = layerKept?.get(name);
        let value: tf.Tensor;
        if (!byAxis) value = tf.clone(source.read());
        else {
          const t = source.read();
          const dims = t.shape;
          const { values, shape } = gatherAxes(t.dataSync() as Float32Array | Int32Array | Uint8Array, dims, dims.map((_, a) => byAxis.get(a)));
          value = tf.tensor(values, shape, t.dtype);
        }
        if (value.shape.join('x') !== target.shape.join('x')) {
          value.dispose();
          throw new Error(`Surgery produced ${oldLayer.name}/${name} of shape [${value.shape}] but the pruned layer expects [${target.shape}]`);
        }
        // As setWeights does per weight (constraint included), without reading every old value first.
        target.write(value);
        value.dispose();
      }
    }
  } catch (err) {
    pruned.dispose();
    throw err;
  }
  return pruned;
}

/**
 * Masks the given units in place: multiplies every slice by zero (producer filters and biases,
 * batch-norm gamma and beta, depthwise channels, consumer input slices). Batch-norm moving
 * statistics are left alone; with gamma and beta at zero the channel is exactly zero.
 */
export function zeroUnits(model: tf.LayersModel, graph: ChannelGraph, unitIds: readonly number[]): void {
  const plan = planFor(graph, validUnitIds(graph, unitIds), isStatisticWeight);
  for (const [layerName, byWeight] of plan) {
    const weights = layerWeights(model.getLayer(layerName));
    for (const [name, byAxis] of byWeight) {
      const variable = weights.get(name);
      if (!variable) continue;
      const masked = tf.tidy(() => {
        let t: tf.Tensor = variable.read();
        for (const [axis, drop] of byAxis) {
          const size = t.shape[axis];
          const mask = new Float32Array(size).fill(1);
          for (const i of drop) mask[i] = 0;
          const shape = t.shape.map((d, i) => (i === axis ? size : 1));
          t = tf.mul(t, tf.tensor(mask, shape));
        }
        // Adding 0 turns the -0 of negative weights into +0.
        return tf.add(t, 0);
      });
      variable.write(masked);
      masked.dispose();
    }
  }
}
