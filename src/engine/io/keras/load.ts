import * as tf from '@tensorflow/tfjs';
import { promises as fs } from 'node:fs';
import { extname, resolve } from 'node:path';
import { unzipSync } from 'fflate';
import { UserError } from '../../errors.js';
import { checkLayerGraph } from '../check-graph.js';
import { checkFiniteWeights } from '../check-values.js';
import type { StoredDtype, WeightEntryJson } from '../format.js';
import { formatShape } from '../../../protocol/format.js';
import { toTfjsTopology, type KerasLayerRef, type KerasStyle } from './config.js';
import { Hdf5File, type Hdf5Group } from './hdf5.js';
import type { KerasFileKind, KerasSerialization, KerasWeightLocation } from './record.js';

export const KERAS_EXTENSIONS: readonly string[] = ['.keras', '.h5', '.hdf5'];

const HDF5_SIGNATURE = Buffer.from([0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a]);
const ZIP_SIGNATURE = Buffer.from('PK\x03\x04', 'latin1');
const RESAVE = 'Save the model again with Keras (model.save)';
const CONFIG_JSON = 'config.json';
const METADATA_JSON = 'metadata.json';
const WEIGHTS_H5 = 'model.weights.h5';

/** A Keras model as the runtime and as the file describes it. */
export interface LoadedKerasModel {
  model: tf.LayersModel;
  /** Bytes of the weight values the model holds (float32). */
  weightBytes: number;
  fileBytes: number;
  quantization: Map<string, StoredDtype>;
  keras: KerasSerialization;
}

type Json = Record<string, unknown>;

function isRecord(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function firstLine(err: unknown): string {
  return String((err as Error)?.message ?? err).split('\n')[0];
}

/** Keras' snake_case of a class name (keras.src.utils.naming.to_snake_case): ReLU → re_lu, Conv2D → conv2d. */
export function kerasSnakeCase(className: string): string {
  return className
    .replace(/\W+/g, '')
    .replace(/(.)([A-Z][a-z]+)/g, '$1_$2')
    .replace(/([a-z])([A-Z])/g, '$1_$2')
    .toLowerCase();
}

/**
 * The group of each layer in a `.keras` weights file: `layers/<snake_case class>`, then `_1`,
 * `_2`, … for later layers of the same class, in `model.layers` order (not by layer name).
 */
export function kerasLayerGroups(layers: readonly KerasLayerRef[]): Map<string, string> {
  const used = new Map<string, number>();
  const groups = new Map<string, string>();
  for (const layer of layers) {
    const base = kerasSnakeCase(layer.className);
    const seen = used.get(base);
    used.set(base, seen === undefined ? 0 : seen + 1);
    groups.set(layer.name, `layers/${seen === undefined ? base : `${base}_${seen + 1}`}`);
  }
  return groups;
}

function styleOf(version: string, kind: KerasFileKind): KerasStyle {
  if (/^[12]\./.test(version)) return 'keras2';
  if (/^\d/.test(version)) return 'keras3';
  // Only Keras 3 writes .keras archives; an .h5 without a version is older Keras.
  return kind === 'keras' ? 'keras3' : 'keras2';
}

function parseJson(text: string, what: string, file: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new UserError(`${what} is not valid JSON; the file is corrupt or was not written by Keras`, { file, fix: RESAVE });
  }
}

// ---- the two containers ----

interface KerasContainer {
  kind: KerasFileKind;
  modelConfig: Json;
  kerasVersion: string;
  backend?: string;
  metadata?: Json;
  archiveEntries?: string[];
  rootAttributes?: Record<string, string>;
  /** The HDF5 file holding the weights (model.weights.h5 or the .h5 itself). */
  weights: Hdf5File;
}

async function openKerasArchive(bytes: Buffer, file: string): Promise<KerasContainer> {
  if (!bytes.subarray(0, ZIP_SIGNATURE.length).equals(ZIP_SIGNATURE)) {
    const hdf5 = bytes.subarray(0, HDF5_SIGNATURE.length).equals(HDF5_SIGNATURE);
    throw new UserError(hdf5 ? 'is an HDF5 file named .keras; a .keras file is a zip archive' : 'is not a .keras file (a zip of config.json, model.weights.h5 and metadata.json)', {
      file, fix: hdf5 ? 'Rename it to .h5' : RESAVE,
    });
  }
  let entries: Record<string, Uint8Array>;
  try {
    entries = unzipSync(bytes);
  } catch (err) {
    throw new UserError(`the .keras archive is truncated or corrupt (${firstLine(err)})`, { file, fix: RESAVE });
  }
  const names = Object.keys(entries);
  for (const needed of [CONFIG_JSON, WEIGHTS_H5]) {
    if (!(needed in entries)) {
      const sharded = needed === WEIGHTS_H5 && names.some((n) => /^model\.weights.*\.json$/.test(n));
      throw new UserError(sharded ? 'holds sharded weights (model.weights.json and shards), which PruneLens does not read yet'
        : `the .keras archive has no ${needed} (it holds ${names.join(', ') || 'nothing'})`, {
        file, fix: sharded ? 'Save the model without max_shard_size' : RESAVE,
      });
    }
  }
  const modelConfig = parseJson(Buffer.from(entries[CONFIG_JSON]).toString('utf8'), CONFIG_JSON, file);
  if (!isRecord(modelConfig)) throw new UserError(`${CONFIG_JSON} is not a Keras model config`, { file, fix: RESAVE });
  const metadata = METADATA_JSON in entries ? parseJson(Buffer.from(entries[METADATA_JSON]).toString('utf8'), METADATA_JSON, file) : undefined;
  const kerasVersion = isRecord(metadata) && typeof metadata.keras_version === 'string' ? metadata.keras_version : '';
  const weights = await Hdf5File.open(entries[WEIGHTS_H5], file, WEIGHTS_H5);
  return { kind: 'keras', modelConfig, kerasVersion, metadata: isRecord(metadata) ? metadata : undefined, archiveEntries: names, weights };
}

async function openKerasHdf5(bytes: Buffer, file: string): Promise<KerasContainer> {
  if (!bytes.subarray(0, HDF5_SIGNATURE.length).equals(HDF5_SIGNATURE)) {
    const zip = bytes.subarray(0, ZIP_SIGNATURE.length).equals(ZIP_SIGNATURE);
    throw new UserError(zip ? 'is a zip archive (a .keras file?) named .h5' : 'is not an HDF5 file', { file, fix: zip ? 'Rename it to .keras' : RESAVE });
  }
  const h5 = await Hdf5File.open(bytes, file);
  try {
    const root = h5.root;
    const configText = h5.stringAttribute(root, 'model_config');
    if (configText === undefined) {
      const weightsOnly = h5.stringListAttribute(root, 'layer_names') !== undefined || h5.group('layers') !== undefined;
      throw new UserError(weightsOnly ? 'holds Keras weights only (model.save_weights), without the model config'
        : 'is an HDF5 file but not a Keras model: it has no model_config attribute', {
        file, fix: weightsOnly ? 'Save the whole model with model.save("model.h5") or model.save("model.keras")' : 'Open a model saved by Keras (model.save)',
      });
    }
    const modelConfig = parseJson(configText, 'the model_config attribute', file);
    if (!isRecord(modelConfig)) throw new UserError('the model_config attribute is not a Keras model config', { file, fix: RESAVE });
    const rootAttributes: Record<string, string> = {};
    for (const name of h5.attributeNames(root)) {
      const value = name === 'model_config' ? undefined : h5.stringAttribute(root, name);
      if (value !== undefined) rootAttributes[name] = value;
    }
    return {
      kind: 'h5', modelConfig, kerasVersion: rootAttributes.keras_version ?? '', backend: rootAttributes.backend, rootAttributes, weights: h5,
    };
  } catch (err) {
    h5.close();
    throw err;
  }
}

// ---- weights ----

interface FileWeight {
  path: string;
  shape: number[];
  values: Float32Array;
}

/** A `.keras` layer's variables: `<group>/vars/0`, `1`, … */
function archiveLayerWeights(h5: Hdf5File, group: string, file: string): FileWeight[] {
  const vars = h5.group(`${group}/vars`);
  if (!vars) return [];
  const count = h5.keys(vars).filter((n) => /^\d+$/.test(n)).length;
  const out: FileWeight[] = [];
  for (let i = 0; i < count; i++) {
    const path = `${group}/vars/${i}`;
    const dataset = h5.dataset(path);
    if (!dataset) throw new UserError(`${h5.prefix}${path} is missing or not a dataset`, { file, fix: RESAVE });
    out.push({ path, ...h5.values(dataset) });
  }
  return out;
}

/** An `.h5` layer's weights, in the order of its group's `weight_names` attribute. */
function hdf5LayerWeights(h5: Hdf5File, weightsRoot: Hdf5Group, rootPath: string, layer: string, file: string): FileWeight[] | undefined {
  const group = h5.group(layer, weightsRoot);
  if (!group) return undefined;
  const names = h5.stringListAttribute(group, 'weight_names') ?? [];
  return names.map((name) => {
    const path = `${rootPath}${layer}/${name}`;
    const dataset = h5.dataset(name, group);
    if (!dataset) throw new UserError(`${h5.prefix}weight ${path} listed in weight_names is missing`, { file, fix: RESAVE });
    return { path, ...h5.values(dataset) };
  });
}

interface Assignment {
  layer: tf.layers.Layer;
  values: FileWeight[];
}

/** Pairs every runtime layer that has weights with the file's weights for it, checking count and shapes. */
function collectWeights(model: tf.LayersModel, container: KerasContainer, layers: KerasLayerRef[], file: string): { assignments: Assignment[]; layerGroups?: Map<string, string> } {
  const h5 = container.weights;
  const layerGroups = container.kind === 'keras' ? kerasLayerGroups(layers) : undefined;
  const modelWeights = container.kind === 'h5' ? h5.group('model_weights') : undefined;
  // Keras writes `model_weights/`; weights saved at the root come from save_weights-style files.
  const weightsRoot: Hdf5Group = modelWeights ?? h5.root;
  const rootPath = weightsRoot === h5.root ? '' : 'model_weights/';
  const assignments: Assignment[] = [];
  for (const layer of model.layers) {
    if (layer.weights.length === 0) continue;
    let values: FileWeight[] | undefined;
    let where: string;
    if (layerGroups) {
      const group = layerGroups.get(layer.name);
      if (!group) throw new UserError(`layer "${layer.name}" is not in the model config's layer list`, { file, fix: RESAVE });
      const vars = h5.group(`${group}/vars`);
      const named = vars ? h5.stringAttribute(vars, 'name') : undefined;
      if (named !== undefined && named !== layer.name) {
        throw new UserError(`${h5.prefix}${group} holds the weights of layer "${named}", but layer "${layer.name}" is keyed there; the weights belong to another model`, { file, fix: RESAVE });
      }
      values = archiveLayerWeights(h5, group, file);
      where = `${group}/vars`;
    } else {
      values = hdf5LayerWeights(h5, weightsRoot, rootPath, layer.name, file);
      where = `${rootPath}${layer.name}`;
    }
    if (!values || values.length === 0) {
      throw new UserError(`${h5.prefix}layer "${layer.name}" has no weights at ${where}, but needs ${layer.weights.length}`, { file, fix: RESAVE });
    }
    if (values.length !== layer.weights.length) {
      throw new UserError(`${h5.prefix}layer "${layer.name}" has ${values.length} weights at ${where}, but needs ${layer.weights.length} (${layer.weights.map((w) => w.originalName.split('/').pop()).join(', ')})`, {
        file, fix: RESAVE,
      });
    }
    layer.weights.forEach((w, i) => {
      if (formatShape(w.shape as number[]) !== formatShape(values![i].shape)) {
        throw new UserError(`${h5.prefix}${values![i].path} has shape ${formatShape(values![i].shape)}, but layer "${layer.name}"'s ${w.originalName.split('/').pop()} needs ${formatShape(w.shape as number[])}`, {
          file, fix: RESAVE,
        });
      }
    });
    assignments.push({ layer, values });
  }
  return { assignments, layerGroups };
}

/** Refuses NaN and infinite weights with the same message as TF.js models. */
function checkFinite(assignments: Assignment[], file: string): void {
  const specs: WeightEntryJson[] = [];
  const all = assignments.flatMap((a) => a.layer.weights.map((w, i) => {
    specs.push({ name: w.originalName, shape: a.values[i].shape, dtype: 'float32' });
    return a.values[i].values;
  }));
  const buffer = new Float32Array(all.reduce((n, v) => n + v.length, 0));
  let offset = 0;
  for (const v of all) {
    buffer.set(v, offset);
    offset += v.length;
  }
  checkFiniteWeights(buffer.buffer, specs, file);
}

/** Builds the runtime model from the converted topology, sets the file's weights and returns what a writer needs. */
export async function loadKerasModel(modelPath: string): Promise<LoadedKerasModel> {
  const path = resolve(modelPath);
  const file = modelPath;
  let bytes: Buffer;
  try {
    bytes = await fs.readFile(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new UserError(code === 'ENOENT' ? 'model file not found' : `model file cannot be read (${code ?? firstLine(err)})`, { file, fix: 'Check the path' });
  }
  if (bytes.length === 0) throw new UserError('is empty', { file, fix: RESAVE });
  const kind: KerasFileKind = extname(path).toLowerCase() === '.keras' ? 'keras' : 'h5';
  const container = kind === 'keras' ? await openKerasArchive(bytes, file) : await openKerasHdf5(bytes, file);
  try {
    const style = styleOf(container.kerasVersion, kind);
    const { topology, layers } = toTfjsTopology(container.modelConfig, file, style);
    checkLayerGraph(topology, file);
    let model: tf.LayersModel;
    try {
      model = await tf.models.modelFromJSON({ modelTopology: topology } as never);
    } catch (err) {
      if (err instanceof UserError) throw err;
      throw new UserError(`the model could not be built: ${firstLine(err)}`, { file, fix: RESAVE });
    }
    try {
      const { assignments, layerGroups } = collectWeights(model, container, layers, file);
      checkFinite(assignments, file);
      const weights: KerasWeightLocation[] = [];
      const quantization = new Map<string, StoredDtype>();
      let weightBytes = 0;
      for (const { layer, values } of assignments) {
        const tensors = layer.weights.map((w, i) => tf.tensor(values[i].values, values[i].shape, w.dtype));
        layer.setWeights(tensors);
        tf.dispose(tensors);
        layer.weights.forEach((w, i) => {
          weights.push({ layer: layer.name, weight: w.originalName, path: values[i].path });
          if (w.dtype === 'float32') quantization.set(w.originalName, 'float32');
          weightBytes += values[i].values.length * 4;
        });
      }
      const keras: KerasSerialization = {
        kind, style, kerasVersion: container.kerasVersion, modelConfig: container.modelConfig, weights,
      };
      if (container.backend !== undefined) keras.backend = container.backend;
      if (container.metadata) keras.metadata = container.metadata;
      if (container.archiveEntries) keras.archiveEntries = container.archiveEntries;
      if (container.rootAttributes) keras.rootAttributes = container.rootAttributes;
      if (layerGroups) keras.layerGroups = Object.fromEntries(layerGroups);
      return { model, weightBytes, fileBytes: bytes.length, quantization, keras };
    } catch (err) {
      model.dispose();
      throw err;
    }
  } finally {
    container.weights.close();
  }
}

export function isKerasPath(path: string): boolean {
  return KERAS_EXTENSIONS.includes(extname(path).toLowerCase());
}
