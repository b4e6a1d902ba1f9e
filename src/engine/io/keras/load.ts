import * as tf from '@tensorflow/tfjs';
import { extname, resolve } from 'node:path';
import { firstLine, UserError } from '../../errors.js';
import { checkLayerGraph } from '../check-graph.js';
import { checkFiniteArrays } from '../check-values.js';
import type { StoredDtype } from '../format.js';
import { formatShape } from '../../../protocol/format.js';
import { readModelFile } from '../paths.js';
import { toTfjsTopology, type KerasLayerRef, type KerasStyle } from './config.js';
import { Hdf5File, type Hdf5Group } from './hdf5.js';
import { archiveModelConfig, checkKerasSignature, hdf5ModelConfig, isKerasModelFile, parseKerasJson, RESAVE, unzipKerasArchive } from './model-config.js';
import type { KerasFileKind, KerasSerialization, KerasWeightLocation } from './record.js';

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
  const entries = unzipKerasArchive(bytes, file);
  const names = Object.keys(entries);
  const modelConfig = archiveModelConfig(entries, file);
  if (!(WEIGHTS_H5 in entries)) {
    const sharded = names.some((n) => /^model\.weights.*\.json$/.test(n));
    throw new UserError(sharded ? 'holds sharded weights (model.weights.json and shards), which PruneLens does not read yet'
      : `the .keras archive has no ${WEIGHTS_H5} (it holds ${names.join(', ') || 'nothing'})`, {
      file, fix: sharded ? 'Save the model without max_shard_size' : RESAVE,
    });
  }
  const metadata = METADATA_JSON in entries ? parseKerasJson(Buffer.from(entries[METADATA_JSON]).toString('utf8'), METADATA_JSON, file) : undefined;
  const kerasVersion = isRecord(metadata) && typeof metadata.keras_version === 'string' ? metadata.keras_version : '';
  const weights = await Hdf5File.open(entries[WEIGHTS_H5], file, WEIGHTS_H5);
  return { kind: 'keras', modelConfig, kerasVersion, metadata: isRecord(metadata) ? metadata : undefined, archiveEntries: names, weights };
}

async function openKerasHdf5(bytes: Buffer, file: string): Promise<KerasContainer> {
  checkKerasSignature(bytes, 'h5', file);
  const h5 = await Hdf5File.open(bytes, file);
  try {
    const modelConfig = hdf5ModelConfig(h5, file);
    const rootAttributes: Record<string, string> = {};
    for (const name of h5.attributeNames(h5.root)) {
      const value = name === 'model_config' ? undefined : h5.stringAttribute(h5.root, name);
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
  checkFiniteArrays(assignments.flatMap((a) => a.layer.weights.map((w, i) => ({ name: w.originalName, shape: a.values[i].shape, values: a.values[i].values }))), file);
}

/** Builds the runtime model from the converted topology, sets the file's weights and returns what a writer needs. */
export async function loadKerasModel(modelPath: string): Promise<LoadedKerasModel> {
  const path = resolve(modelPath);
  const file = modelPath;
  const bytes = await readModelFile(modelPath, RESAVE);
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
  return isKerasModelFile(path);
}
