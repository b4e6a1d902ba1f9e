import type * as tf from '@tensorflow/tfjs';
import type * as H5 from 'h5wasm';
import { promises as fs } from 'node:fs';
import { unzipSync, zipSync, type Zippable } from 'fflate';
import { UserError } from '../../errors.js';
import { Hdf5File, hdf5Library } from './hdf5.js';
import type { KerasSerialization } from './record.js';

type Json = Record<string, unknown>;

const CONFIG_JSON = 'config.json';
const WEIGHTS_H5 = 'model.weights.h5';

let nextFileId = 0;

function isRecord(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The config's layer entries (functional and Sequential models both list them under `config.layers`). */
function configLayers(modelConfig: Json): Json[] {
  const layers = isRecord(modelConfig.config) ? modelConfig.config.layers : undefined;
  return Array.isArray(layers) ? layers.filter(isRecord) : [];
}

function layerName(entry: Json): string | undefined {
  const c = entry.config;
  return isRecord(c) && typeof c.name === 'string' ? c.name : typeof entry.name === 'string' ? entry.name : undefined;
}

/**
 * Why the pruned model cannot be written in the Keras file's layout, or undefined when it can:
 * every layer of the Keras config must still exist under its name with as many weights, and no
 * layer may have been added (DSP rebuilds split layers as per-group layers that Keras does not have).
 */
export function kerasWriteProblem(pruned: tf.LayersModel, keras: KerasSerialization): string | undefined {
  const names = new Set(configLayers(keras.modelConfig).map(layerName));
  const added = pruned.layers.filter((l) => !names.has(l.name)).map((l) => l.name);
  if (added.length > 0) return `the pruned model has layers the Keras file does not (${added.slice(0, 3).join(', ')}${added.length > 3 ? ', …' : ''})`;
  const byLayer = new Map<string, number>();
  for (const w of keras.weights) byLayer.set(w.layer, (byLayer.get(w.layer) ?? 0) + 1);
  for (const [name, count] of byLayer) {
    const layer = pruned.layers.find((l) => l.name === name);
    if (!layer) return `layer "${name}" is gone from the pruned model`;
    if (layer.weights.length !== count) return `layer "${name}" has ${layer.weights.length} weights, the Keras file ${count}`;
  }
  return undefined;
}

/** `original` with every number replaced by the number at the same place in `fresh` (null in `fresh` keeps the original: batch sizes). */
function withShape(original: unknown, fresh: unknown): unknown {
  if (Array.isArray(original) && Array.isArray(fresh) && original.length === fresh.length) {
    return original.map((o, i) => withShape(o, fresh[i]));
  }
  return typeof original === 'number' && typeof fresh === 'number' ? fresh : original;
}

type Shape = (number | null)[];

function inputShapes(layer: tf.layers.Layer): Shape[] {
  const node = (layer as unknown as { inboundNodes: { inputShapes: Shape | Shape[] }[] }).inboundNodes[0];
  if (!node) return [];
  const shapes = node.inputShapes;
  return Array.isArray(shapes[0]) ? shapes as Shape[] : [shapes as Shape];
}

/** A `__keras_tensor__`'s shape: the output `tensor` of `layer`'s call `node` in the pruned model. */
function tensorShape(model: tf.LayersModel, history: unknown): Shape | undefined {
  if (!Array.isArray(history) || typeof history[0] !== 'string') return undefined;
  const layer = model.layers.find((l) => l.name === history[0]);
  const node = (layer as unknown as { inboundNodes?: { outputTensors: tf.SymbolicTensor[] }[] } | undefined)?.inboundNodes?.[Number(history[1] ?? 0)];
  return node?.outputTensors[Number(history[2] ?? 0)]?.shape as Shape | undefined;
}

/** Rewrites the shapes recorded in `__keras_tensor__` references (Keras 3 calls) to the pruned tensors'. */
function rewriteTensorShapes(value: unknown, model: tf.LayersModel): void {
  if (Array.isArray(value)) {
    for (const v of value) rewriteTensorShapes(v, model);
    return;
  }
  if (!isRecord(value)) return;
  if (value.class_name === '__keras_tensor__' && isRecord(value.config)) {
    const shape = tensorShape(model, value.config.keras_history);
    if (shape && Array.isArray(value.config.shape)) value.config.shape = withShape(value.config.shape, shape);
    return;
  }
  for (const v of Object.values(value)) rewriteTensorShapes(v, model);
}

/**
 * The Keras config with only what carries a channel count changed to the pruned model's: Conv2D
 * `filters`, Dense `units`, Reshape `target_shape`, each layer's `build_config.input_shape` (Keras
 * builds weights from it) and the shapes of Keras 3's recorded call tensors. Names and every other
 * field stay as the file had them.
 */
export function prunedKerasConfig(pruned: tf.LayersModel, keras: KerasSerialization): Json {
  const modelConfig = structuredClone(keras.modelConfig);
  for (const entry of configLayers(modelConfig)) {
    const name = layerName(entry);
    const layer = pruned.layers.find((l) => l.name === name);
    if (!layer || !isRecord(entry.config)) continue;
    const c = entry.config;
    const fresh = layer.getConfig() as Json;
    if (typeof c.filters === 'number' && typeof fresh.filters === 'number') c.filters = fresh.filters;
    if (typeof c.units === 'number' && typeof fresh.units === 'number') c.units = fresh.units;
    if (Array.isArray(c.target_shape) && Array.isArray(fresh.targetShape)) c.target_shape = withShape(c.target_shape, fresh.targetShape);
    if (isRecord(entry.build_config) && Array.isArray(entry.build_config.input_shape)) {
      const shapes = inputShapes(layer);
      const nested = Array.isArray(entry.build_config.input_shape[0]);
      entry.build_config.input_shape = withShape(entry.build_config.input_shape, nested ? shapes : shapes[0]);
    }
    if (entry.inbound_nodes !== undefined) rewriteTensorShapes(entry.inbound_nodes, pruned);
  }
  return modelConfig;
}

/** The pruned values of every weight the Keras file holds, by HDF5 path (matched by layer name and weight order). */
function prunedWeights(pruned: tf.LayersModel, keras: KerasSerialization): Map<string, { shape: number[]; values: Float32Array }> {
  const out = new Map<string, { shape: number[]; values: Float32Array }>();
  const seen = new Map<string, number>();
  for (const location of keras.weights) {
    const index = seen.get(location.layer) ?? 0;
    seen.set(location.layer, index + 1);
    const variable = pruned.getLayer(location.layer).weights[index];
    out.set(location.path, { shape: variable.shape as number[], values: variable.read().dataSync() as Float32Array });
  }
  return out;
}

function typedFor(dtype: string, values: Float32Array): ArrayLike<number> {
  switch (dtype) {
    case '<i': return Int32Array.from(values);
    case '<h': return Int16Array.from(values);
    case '<q': return BigInt64Array.from(values, (v) => BigInt(Math.round(v))) as unknown as ArrayLike<number>;
    case '<d': return Float64Array.from(values);
    default: return values;
  }
}

/** Copies `from`'s attributes onto `to`; `replace` gives new values for some (strings). */
function copyAttributes(from: H5.Group | H5.Dataset, to: H5.Group | H5.Dataset, replace: Record<string, string> = {}): void {
  for (const [name, attribute] of Object.entries(from.attrs)) {
    if (name in replace) continue;
    const value = attribute.value as never;
    const shape = attribute.shape ?? undefined;
    if (ArrayBuffer.isView(value) && (value as ArrayLike<unknown>).length === 0) {
      // Keras writes an empty weight_names as an empty float64 array.
      to.create_attribute(name, new Float64Array(0) as never, [0], attribute.dtype as never);
    } else {
      to.create_attribute(name, value, shape as never, attribute.dtype as never);
    }
  }
  for (const [name, value] of Object.entries(replace)) to.create_attribute(name, value);
}

/** Copies the group tree `from` → `to`, writing pruned values (and shapes) at the paths `weights` names. */
function copyTree(from: H5.Group, to: H5.Group, weights: Map<string, { shape: number[]; values: Float32Array }>, path: string): void {
  for (const key of from.keys()) {
    const child = from.get(key) as H5.Group | H5.Dataset | null;
    const childPath = path ? `${path}/${key}` : key;
    if (child?.type === 'Group') {
      const group = to.create_group(key);
      copyAttributes(child, group);
      copyTree(child as H5.Group, group, weights, childPath);
    } else if (child?.type === 'Dataset') {
      const dataset = child as H5.Dataset;
      const dtype = String(dataset.dtype);
      const pruned = weights.get(childPath);
      const data = pruned ? typedFor(dtype, pruned.values) : dataset.value;
      const written = to.create_dataset({ name: key, data: data as never, shape: pruned ? pruned.shape : dataset.shape ?? [], dtype: dtype as never });
      copyAttributes(dataset, written);
    }
  }
}

/** The original HDF5 bytes rewritten: same groups, datasets and attributes, pruned weights, `rootReplace` attributes replaced. */
async function rewriteHdf5(original: Uint8Array, file: string, inner: string | undefined, weights: Map<string, { shape: number[]; values: Float32Array }>, rootReplace: Record<string, string>): Promise<Uint8Array> {
  const source = await Hdf5File.open(original, file, inner);
  const h5 = await hdf5Library();
  const memPath = `/prunelens-write-${process.pid}-${nextFileId++}.h5`;
  try {
    const target = new h5.File(memPath, 'w');
    try {
      copyAttributes(source.root as H5.Group, target, rootReplace);
      copyTree(source.root, target, weights, '');
    } finally {
      target.close();
    }
    return h5.Module.FS.readFile(memPath) as Uint8Array;
  } catch (err) {
    if (err instanceof UserError) throw err;
    throw new UserError(`the pruned model could not be written as Keras HDF5 (${String((err as Error)?.message ?? err).split('\n')[0]})`, { file, fix: 'Report this with the model file; meanwhile prune the model converted to TF.js (tensorflowjs_converter)' });
  } finally {
    source.close();
    try { h5.Module.FS.unlink(memPath); } catch { /* never created */ }
  }
}

/**
 * The pruned model as the bytes of a Keras file of the same kind and version style as the one it
 * was loaded from (`originalPath`, reread for everything the pruning does not change): the
 * original config with only widths changed, metadata and attributes untouched, every weight at
 * its original path. Throws a UserError where `kerasWriteProblem` finds the layout changed.
 */
export async function encodeKerasModel(pruned: tf.LayersModel, keras: KerasSerialization, originalPath: string): Promise<Uint8Array> {
  const problem = kerasWriteProblem(pruned, keras);
  if (problem) throw new UserError(`cannot be written back as a Keras file: ${problem}`, { file: originalPath, fix: 'Save this model as TF.js, or prune with a method that keeps the model\'s layers' });
  const config = JSON.stringify(prunedKerasConfig(pruned, keras));
  const weights = prunedWeights(pruned, keras);
  const original = new Uint8Array(await fs.readFile(originalPath));
  if (keras.kind === 'h5') return rewriteHdf5(original, originalPath, undefined, weights, { model_config: config });
  const entries = unzipSync(original);
  const out: Zippable = {};
  for (const name of keras.archiveEntries ?? Object.keys(entries)) {
    const data = name === CONFIG_JSON ? new TextEncoder().encode(config)
      : name === WEIGHTS_H5 ? await rewriteHdf5(entries[name], originalPath, WEIGHTS_H5, weights, {})
      : entries[name];
    // Stored, not deflated, as Keras writes its archives.
    out[name] = [data, { level: 0 }];
  }
  return zipSync(out);
}
