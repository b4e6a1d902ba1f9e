import * as tf from '@tensorflow/tfjs';
import '../io/serialization-fixes.js';
import { isStatisticWeight, layerSpec, layerWeights, resolveAxis, weightShortName } from '../layers/index.js';
import { sliceTableOf } from '../graph/slice-table.js';
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

const EMPTY = new Int32Array(0);

/** An array of `data`'s type (float32 weights by name: the gather below then sees one array type). */
function allocateLike<T extends Float32Array | Int32Array | Uint8Array>(data: T, size: number): T {
  return (data instanceof Float32Array ? new Float32Array(size) : new (data.constructor as new (n: number) => T)(size)) as T;
}

/**
 * The sub-array of row-major `data` (shape `dims`) that keeps, along each axis, the indices in
 * `kept[axis]` (every index where it is undefined): one pass over the output.
 */
function gatherAxes<T extends Float32Array | Int32Array | Uint8Array>(data: T, dims: readonly number[], kept: readonly (Int32Array | undefined)[]): { values: T; shape: number[] } {
  const rank = dims.length;
  // A vector (biases, batch-norm parameters: most weights) keeps its kept indices.
  if (rank === 1 && kept[0]) {
    const k = kept[0];
    const values = allocateLike(data, k.length);
    for (let i = 0; i < k.length; i++) values[i] = data[k[i]];
    return { values, shape: [k.length] };
  }
  // Per axis, the source offsets of the kept indices (index × stride).
  const offsets: Int32Array[] = [];
  for (let a = 0; a < rank; a++) offsets.push(EMPTY);
  for (let a = rank - 1, stride = 1; a >= 0; a--) {
    const k = kept[a];
    const o = new Int32Array(k ? k.length : dims[a]);
    if (k) for (let i = 0; i < o.length; i++) o[i] = k[i] * stride;
    else for (let i = 0; i < o.length; i++) o[i] = i * stride;
    offsets[a] = o;
    stride *= dims[a];
  }
  const shape: number[] = [];
  let size = 1;
  for (let a = 0; a < rank; a++) {
    shape.push(offsets[a].length);
    size *= offsets[a].length;
  }
  const values = allocateLike(data, size);
  if (size === 0) return { values, shape };
  // Trailing axes that keep every index are copied as contiguous blocks (a consumer's kept input
  // rows, a dense kernel's rows); otherwise the last axis is gathered index by index. Either way,
  // first the source offset of every kept position of the leading axes.
  let whole = rank;
  while (whole > 0 && !kept[whole - 1]) whole--;
  const leading = whole < rank ? whole : rank - 1;
  let rows = Int32Array.of(0);
  for (let a = 0; a < leading; a++) {
    const o = offsets[a];
    const next = new Int32Array(rows.length * o.length);
    for (let r = 0, n = 0; r < rows.length; r++) for (let i = 0; i < o.length; i++) next[n++] = rows[r] + o[i];
    rows = next;
  }
  if (whole < rank) {
    let block = 1;
    for (let a = whole; a < rank; a++) block *= dims[a];
    for (let r = 0, out = 0; r < rows.length; r++, out += block) {
      const base = rows[r];
      if (block >= 64) values.set(data.subarray(base, base + block), out);
      else for (let k = 0; k < block; k++) values[out + k] = data[base + k];
    }
    return { values, shape };
  }
  const inner = offsets[rank - 1];
  const width = inner.length;
  for (let r = 0, out = 0; r < rows.length; r++, out += width) {
    const base = rows[r];
    for (let k = 0; k < width; k++) values[out + k] = data[base + inner[k]];
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
  const oldWeightsOf = new Map<string, Map<string, tf.LayerVariable>>();
  const weightsOf = (layer: string) => {
    let weights = oldWeightsOf.get(layer);
    if (!weights) oldWeightsOf.set(layer, (weights = layerWeights(oldLayers.get(layer)!)));
    return weights;
  };
  const layerInfo = new Map(graph.layers.map((l) => [l.name, l]));
  // Kept indices per layer → weight → axis: a mask of the dropped indices per weight axis (read
  // from the graph's slice table, one mask per key), then its complement.
  const table = sliceTableOf(graph);
  const dropMasks = new Map<string, Map<string, Map<number, Uint8Array>>>();
  const maskOfRank = table.keys.map((k) => {
    let byWeight = dropMasks.get(k.layer);
    if (!byWeight) dropMasks.set(k.layer, (byWeight = new Map()));
    let byAxis = byWeight.get(k.weight);
    if (!byAxis) byWeight.set(k.weight, (byAxis = new Map()));
    let mask = byAxis.get(k.axis);
    if (!mask) {
      const size = weightsOf(k.layer).get(k.weight)?.shape[k.axis];
      if (size === undefined || size === null) return undefined;
      byAxis.set(k.axis, (mask = new Uint8Array(size)));
    }
    return mask;
  });
  const { entries, offsets, span } = table;
  for (const id of ids) {
    for (let j = offsets[id], end = offsets[id + 1]; j < end; j++) {
      const rank = Math.floor(entries[j] / span);
      const mask = maskOfRank[rank];
      if (mask) mask[entries[j] - rank * span] = 1;
    }
  }
  // Only the axes that lose indices are gathered.
  const keptByLayer = new Map<string, Map<string, Map<number, Int32Array>>>();
  for (const [layerName, byWeight] of dropMasks) {
    const keptByWeight = new Map<string, Map<number, Int32Array>>();
    for (const [name, byAxis] of byWeight) {
      const keptByAxis = new Map<number, Int32Array>();
      for (const [axis, mask] of byAxis) {
        const kept = keptIndices(mask);
        if (kept.length < mask.length) keptByAxis.set(axis, kept);
      }
      if (keptByAxis.size > 0) keptByWeight.set(name, keptByAxis);
    }
    if (keptByWeight.size > 0) keptByLayer.set(layerName, keptByWeight);
  }

  // The model's own (camelCase) config, edited and built once; building with `fastWeightInit`
  // gives every weight zeros instead of random values about to be replaced.
  const config = model.getConfig() as unknown as FunctionalConfig;
  for (const layerConfig of config.layers) {
    const name = layerConfig.config.name;
    const spec = layerSpec(layerConfig.className);
    // The registry's width field shrinks by the channels removed along the weight axis that carries it.
    const output = spec?.outputChannels;
    const keptByAxis = output && keptByLayer.get(name)?.get(output.weight);
    if (spec?.widthField && output && keptByAxis) {
      const variable = weightsOf(name).get(output.weight)!;
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
  // Each weight of the pruned model: one slice of its source buffer (a copy where nothing is dropped).
  const prunedValue = (layer: string, name: string): tf.Tensor | undefined => {
    const source = weightsOf(layer).get(name);
    if (!source) return undefined;
    const byAxis = keptByLayer.get(layer)?.get(name);
    if (!byAxis) return tf.clone(source.read());
    const t = source.read();
    const dims = t.shape;
    // Arguments of one shape every time (plain number and Int32Array-or-undefined arrays), so the
    // gather stays compiled for them instead of being deoptimised by each new array kind.
    const sizes: number[] = [];
    const kept: (Int32Array | undefined)[] = [];
    for (let a = 0; a < dims.length; a++) {
      sizes.push(dims[a] | 0);
      kept.push(byAxis.get(a));
    }
    const { values, shape } = gatherAxes(t.dataSync() as Float32Array | Int32Array | Uint8Array, sizes, kept);
    return tf.tensor(values, shape, t.dtype);
  };
  const mismatch = (layer: string, name: string, value: tf.Tensor, expected: readonly (number | null)[]) =>
    new Error(`Surgery produced ${layer}/${name} of shape [${value.shape}] but the pruned layer expects [${expected}]`);
  const initialised = new Set<tf.LayerVariable>();
  const pruned = buildFunctional(model, config, prunedValue, mismatch, initialised) ?? buildFromConfig(model, config);

  try {
    for (const newLayer of pruned.layers) {
      if (newLayer.weights.length === 0) continue;
      // A wrapper's inner layers repeat short names (a Bidirectional's two "kernel"s): surgery never narrows
      // such a layer (recurrent layers keep their channels), so its weights are copied in order.
      const oldLayer = oldLayers.get(newLayer.name)!;
      if (new Set(oldLayer.weights.map((w) => weightShortName(w))).size < oldLayer.weights.length && !keptByLayer.has(newLayer.name)) {
        newLayer.weights.forEach((target, i) => {
          const value = tf.clone(oldLayer.weights[i].read());
          target.write(value);
          value.dispose();
        });
        continue;
      }
      for (const target of newLayer.weights) {
        const name = weightShortName(target);
        if (initialised.has(target)) {
          // Built with its value; a constraint applies as setWeights would apply it.
          if (target.constraint) {
            const value = tf.clone(target.read());
            target.write(value);
            value.dispose();
          }
          continue;
        }
        const value = prunedValue(newLayer.name, name);
        if (!value) throw new Error(`Weight ${newLayer.name}/${name} is missing from the source model`);
        if (value.shape.join('x') !== target.shape.join('x')) {
          const err = mismatch(newLayer.name, name, value, target.shape);
          value.dispose();
          throw err;
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

/** A weight's initial value, given: the initializer a hooked `addWeight` passes on. */
class GivenValue {
  constructor(private readonly value: tf.Tensor) {}

  apply(): tf.Tensor {
    return this.value;
  }
}

interface FunctionalConfig {
  name: string;
  layers: { className: string; name?: string; config: Record<string, unknown> & { name: string }; inboundNodes?: unknown[][] }[];
  inputLayers?: [string, number, number][];
  outputLayers?: [string, number, number][];
}

/** tfjs' own build from the config (any model: Sequential, shared layers, nested models), weights initialised to zeros. */
function buildFromConfig(model: tf.LayersModel, config: FunctionalConfig): tf.LayersModel {
  const modelClass = model.constructor as unknown as typeof tf.LayersModel;
  return modelClass.fromConfig(modelClass, config as unknown as tf.serialization.ConfigDict, {}, true) as tf.LayersModel;
}

/**
 * What `fromConfig` builds for a functional model whose layers are each called once, in
 * topological order (tf.model's own order): each layer made by its class from its config (no
 * deserialisation of the whole config) and called on its inputs, each weight created with its
 * pruned value (`valueOf`) instead of zeros to be overwritten; those weights go in `initialised`.
 * Undefined for any other model, before anything is built.
 */
function buildFunctional(
  model: tf.LayersModel,
  config: FunctionalConfig,
  valueOf: (layer: string, weight: string) => tf.Tensor | undefined,
  mismatch: (layer: string, weight: string, value: tf.Tensor, expected: readonly (number | null)[]) => Error,
  initialised: Set<tf.LayerVariable>,
): tf.LayersModel | undefined {
  if (model.constructor !== tf.LayersModel || !config.inputLayers || !config.outputLayers) return undefined;
  const classes = new Map<string, new (args: unknown) => tf.layers.Layer>();
  for (const layer of model.layers) {
    if (layer instanceof tf.LayersModel) return undefined;
    classes.set(layer.name, layer.constructor as new (args: unknown) => tf.layers.Layer);
  }
  const seen = new Set<string>();
  for (const layerData of config.layers) {
    const nodes = layerData.inboundNodes ?? [];
    if (nodes.length > 1 || !classes.has(layerData.config.name)) return undefined;
    for (const input of (nodes[0] ?? []) as [string, number, number][]) if (!seen.has(input[0]) || input[1] !== 0) return undefined;
    if (nodes.length === 0 && layerData.className !== 'InputLayer') return undefined;
    seen.add(layerData.config.name);
  }
  type AddWeight = (name: string, shape: number[], dtype?: tf.DataType, initializer?: unknown, ...rest: unknown[]) => tf.LayerVariable;
  const outputsOf = new Map<string, tf.SymbolicTensor[]>();
  const built: tf.layers.Layer[] = [];
  try {
    for (const layerData of config.layers) {
      const layerName = layerData.config.name;
      // The class's own fromConfig: wrappers (Bidirectional, TimeDistributed) deserialise the layer they wrap there.
      const cls = classes.get(layerName)! as unknown as { fromConfig(cls: unknown, config: unknown): tf.layers.Layer };
      const layer = cls.fromConfig(cls, layerData.config);
      built.push(layer);
      // The layer's build asks for each weight by name and shape: it gets the pruned value.
      const hooked = layer as unknown as { addWeight: AddWeight };
      const addWeight = hooked.addWeight;
      hooked.addWeight = function (this: tf.layers.Layer, name, shape, dtype, initializer, ...rest) {
        const value = valueOf(layerName, name);
        if (!value) return addWeight.call(this, name, shape, dtype, initializer, ...rest);
        if (value.shape.join('x') !== shape.join('x')) {
          const err = mismatch(layerName, name, value, shape);
          value.dispose();
          throw err;
        }
        const variable = addWeight.call(this, name, shape, dtype, new GivenValue(value), ...rest);
        initialised.add(variable);
        return variable;
      };
      const node = (layerData.inboundNodes ?? [])[0] as [string, number, number, Record<string, unknown>?][] | undefined;
      if (!node) {
        // An input layer makes its own node and tensor.
        outputsOf.set(layerName, (layer as unknown as { inboundNodes: { outputTensors: tf.SymbolicTensor[] }[] }).inboundNodes[0].outputTensors);
        delete (hooked as Partial<typeof hooked>).addWeight;
        continue;
      }
      const inputs = node.map(([name, , tensorIndex]) => outputsOf.get(name)![tensorIndex]);
      const kwargs = node.length > 0 ? node[node.length - 1][3] ?? {} : {};
      const output = layer.apply(inputs.length === 1 ? inputs[0] : inputs, kwargs) as tf.SymbolicTensor | tf.SymbolicTensor[];
      delete (hooked as Partial<typeof hooked>).addWeight;
      outputsOf.set(layerName, Array.isArray(output) ? output : [output]);
    }
    const pick = ([name, , tensorIndex]: [string, number, number]) => outputsOf.get(name)![tensorIndex];
    return tf.model({ inputs: config.inputLayers.map(pick), outputs: config.outputLayers.map(pick), name: config.name });
  } catch (err) {
    for (const layer of built) for (const weight of layer.weights) weight.dispose();
    throw err;
  }
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
