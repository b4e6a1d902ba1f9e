import * as tf from '@tensorflow/tfjs';
import { promises as fs } from 'node:fs';
import { dirname, extname, isAbsolute, join, resolve } from 'node:path';
import { parse as parseJsonc, printParseErrorCode, type ParseError } from 'jsonc-parser';
import { firstLine, UserError } from '../errors.js';
import {
  LAYERS_MODEL_FORMAT, MODEL_JSON, QUANTIZED_DTYPE_BYTES, WEIGHT_DTYPE_BYTES,
  storedWeightBytes,
  type LayersModelJson, type QuantizationMap, type StoredDtype, type WeightEntryJson, type WeightGroupJson,
} from './format.js';
import { formatShape } from '../../protocol/format.js';
import { isInside } from './paths.js';
import { checkLayerGraph } from './check-graph.js';
import { checkFiniteWeights } from './check-values.js';
import { isKerasModelFile as isKerasPath } from './keras/path.js';
import type { KerasSerialization } from './keras/record.js';
import { isOnnxPath } from './onnx/path.js';
// The layers PruneLens registers (Keras 3 activations, ONNX pads and opaque nodes) can appear in any saved model.json;
// the Keras and ONNX readers themselves are loaded only for their files.
import './keras/layers.js';
import './onnx/layers.js';
import type { OnnxSerialization } from './onnx/record.js';

export interface LoadedModel {
  model: tf.LayersModel;
  /** Absolute path of model.json, or of the Keras file. */
  path: string;
  /** Folder holding model.json and its shards (or the Keras file). */
  dir: string;
  /** Bytes of all weight shards on disk (Keras: of the float32 weight values). */
  weightBytes: number;
  /** Bytes on disk of model.json plus its weight shards, or of the Keras file. */
  fileBytes: number;
  /** Storage dtype of each weight that came quantized (the model itself holds them dequantized to float32). */
  quantization: QuantizationMap;
  /** 'layers-model' (TF.js), 'keras' (a .keras archive), 'h5' (Keras HDF5) or 'onnx'. */
  format: string;
  generatedBy?: string;
  convertedBy?: string;
  /** For a Keras file: what writing it back in its own format needs (kept apart from the runtime model). */
  keras?: KerasSerialization;
  /** For an ONNX file: where each runtime weight lives in the graph, for writing the pruned graph. */
  onnx?: OnnxSerialization;
}

/** A validated shard: where it is and how many bytes it has. */
interface ShardFile {
  path: string;
  bytes: number;
}

const SAVE_WHOLE_KERAS_MODEL = 'Save the whole model with model.save("model.keras") and open that file';
const CONVERT_GRAPH = 'PruneLens needs a layers model: convert the Keras or SavedModel source with `tensorflowjs_converter --output_format=tfjs_layers_model`';
const HDF5_SIGNATURE = Buffer.from([0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a]);
const ZIP_SIGNATURE = Buffer.from('PK\x03\x04', 'latin1');

function errnoCode(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | null)?.code;
}

function readFailure(file: string, err: unknown, what = 'file'): UserError {
  const code = errnoCode(err);
  if (code === 'ENOENT') return new UserError(`${what} not found`, { file, fix: 'Check the path' });
  if (code === 'EACCES' || code === 'EPERM') return new UserError(`${what} cannot be read (permission denied)`, { file, fix: 'Check the file permissions' });
  if (code === 'EISDIR') return new UserError(`${what} is a folder, not a file`, { file, fix: 'Point to the model.json inside it' });
  return new UserError(`${what} cannot be read (${code ?? String(err).split('\n')[0]})`, { file });
}

/** Resolves a folder to its model.json and recognises formats PruneLens cannot read by their name. */
async function locateModelJson(modelJsonPath: string): Promise<string> {
  const path = resolve(modelJsonPath);
  let stat;
  try {
    stat = await fs.stat(path);
  } catch (err) {
    throw readFailure(modelJsonPath, err, 'model file');
  }
  if (stat.isDirectory()) {
    const entries = await fs.readdir(path).catch(() => [] as string[]);
    if (entries.includes(MODEL_JSON)) return join(path, MODEL_JSON);
    if (entries.includes('saved_model.pb')) {
      throw new UserError('is a TensorFlow SavedModel folder, not a TF.js layers model', { file: modelJsonPath, fix: CONVERT_GRAPH });
    }
    throw new UserError('folder holds no model.json', { file: modelJsonPath, fix: 'Point to the model.json of a TF.js layers model' });
  }
  const ext = extname(path).toLowerCase();
  if (ext === '.pb' || ext === '.tflite') {
    throw new UserError(`is a ${ext.slice(1)} file; PruneLens reads TF.js layers models (model.json + weight shards)`, { file: modelJsonPath, fix: CONVERT_GRAPH });
  }
  return path;
}

/** 1-based line and column of a character offset. */
function lineAndColumn(text: string, offset: number): { line: number; column: number } {
  const before = text.slice(0, offset);
  const line = before.split('\n').length;
  return { line, column: offset - before.lastIndexOf('\n') };
}

/** Where and why JSON.parse failed; V8 does not always report a position, jsonc-parser does. */
function describeJsonError(text: string, err: unknown): string {
  const errors: ParseError[] = [];
  parseJsonc(text, errors, { allowTrailingComma: false, disallowComments: true });
  if (errors.length > 0) {
    const { line, column } = lineAndColumn(text, errors[0].offset);
    const reason = printParseErrorCode(errors[0].error).replace(/([a-z])([A-Z])/g, '$1 $2').toLowerCase();
    return `at line ${line}, column ${column} (${reason})`;
  }
  return `(${firstLine(err).replace(/\s+/g, ' ').slice(0, 120)})`;
}

function parseJson(text: string, file: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new UserError(`is not valid JSON ${describeJsonError(text, err)}`, { file, fix: 'Fix the JSON syntax or re-export the model' });
  }
}

async function readModelJson(path: string, shownPath: string): Promise<unknown> {
  let bytes: Buffer;
  try {
    bytes = await fs.readFile(path);
  } catch (err) {
    throw readFailure(shownPath, err, 'model file');
  }
  if (bytes.subarray(0, HDF5_SIGNATURE.length).equals(HDF5_SIGNATURE)) {
    throw new UserError('is a Keras HDF5 file, not a TF.js model.json', { file: shownPath, fix: 'Give it the .h5 extension and open it' });
  }
  if (bytes.subarray(0, ZIP_SIGNATURE.length).equals(ZIP_SIGNATURE)) {
    throw new UserError('is a zip archive (a Keras .keras file?), not a TF.js model.json', { file: shownPath, fix: 'Give it the .keras extension and open it' });
  }
  const text = bytes.toString('utf8').replace(/^\uFEFF/, '');
  if (text.trim() === '') throw new UserError('is empty', { file: shownPath, fix: 'Re-export the model' });
  return parseJson(text, shownPath);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Checks the structure of model.json and returns it typed; rejects graph models and Keras-only JSON. */
function checkModelJson(json: unknown, file: string): LayersModelJson {
  if (Array.isArray(json)) {
    throw new UserError('is a weights manifest only, not a TF.js layers model (no "modelTopology")', { file, fix: 'Open the model.json next to it' });
  }
  if (!isRecord(json)) throw new UserError('is not a TF.js model (the JSON is not an object)', { file, fix: 'Open the model.json of a TF.js layers model' });
  const topology = json.modelTopology;
  if (json.format === 'graph-model' || (isRecord(topology) && Array.isArray(topology.node))) {
    throw new UserError('is a TF.js graph model; PruneLens needs a layers model, whose layers it can prune', { file, fix: CONVERT_GRAPH });
  }
  if (json.format !== undefined && json.format !== LAYERS_MODEL_FORMAT) {
    throw new UserError(`format "${String(json.format)}" is not a TF.js layers model`, { file, fix: CONVERT_GRAPH });
  }
  if (topology === undefined) {
    if (typeof json.class_name === 'string' && isRecord(json.config)) {
      throw new UserError('holds only a Keras architecture (model.to_json()), without weights', { file, fix: SAVE_WHOLE_KERAS_MODEL });
    }
    throw new UserError('is not a TF.js layers model: "modelTopology" is missing', { file, fix: CONVERT_GRAPH });
  }
  const config = isRecord(topology) && isRecord(topology.model_config) ? topology.model_config : topology;
  if (!isRecord(topology) || !isRecord(config) || typeof config.class_name !== 'string') {
    throw new UserError('"modelTopology" is not a Keras model topology (no "class_name")', { file, fix: 'Re-export the model with TF.js or tensorflowjs_converter' });
  }
  if (json.weightsManifest === undefined) {
    throw new UserError('is not a complete TF.js layers model: "weightsManifest" is missing', { file, fix: 'Re-export the model with its weights' });
  }
  if (!Array.isArray(json.weightsManifest)) {
    throw new UserError('"weightsManifest" must be a list of weight groups', { file, fix: 'Re-export the model' });
  }
  json.weightsManifest.forEach((group, g) => checkWeightGroup(group, g, file));
  checkLayerGraph(config, file);
  return json as unknown as LayersModelJson;
}

function checkWeightGroup(group: unknown, g: number, file: string): asserts group is WeightGroupJson {
  const where = `weightsManifest[${g}]`;
  if (!isRecord(group) || !Array.isArray(group.paths) || !Array.isArray(group.weights)) {
    throw new UserError(`${where} needs "paths" and "weights" lists`, { file, fix: 'Re-export the model' });
  }
  if (group.paths.some((p) => typeof p !== 'string' || p === '')) {
    throw new UserError(`${where}.paths must hold file names`, { file, fix: 'Re-export the model' });
  }
  group.weights.forEach((entry, w) => checkWeightEntry(entry, `${where}.weights[${w}]`, file));
}

function checkWeightEntry(entry: unknown, where: string, file: string): asserts entry is WeightEntryJson {
  if (!isRecord(entry) || typeof entry.name !== 'string' || entry.name === '') {
    throw new UserError(`${where} has no weight name`, { file, fix: 'Re-export the model' });
  }
  const name = entry.name;
  if (!Array.isArray(entry.shape) || entry.shape.some((d) => !Number.isInteger(d) || (d as number) < 0)) {
    throw new UserError(`weight ${name}: shape ${JSON.stringify(entry.shape)} is not a list of non-negative integers`, { file, fix: 'Re-export the model' });
  }
  if (!(typeof entry.dtype === 'string' && entry.dtype in WEIGHT_DTYPE_BYTES)) {
    throw new UserError(`weight ${name}: dtype ${JSON.stringify(entry.dtype)} is not supported (supported: ${Object.keys(WEIGHT_DTYPE_BYTES).join(', ')})`, {
      file, fix: 'Re-export the model with float32 weights',
    });
  }
  if (entry.quantization !== undefined) checkQuantization(entry.quantization, name, entry.dtype as string, file);
}

/** Quantized weights are dequantized on load (uint8/uint16 affine, float16); the checks mirror what TF.js can decode. */
function checkQuantization(q: unknown, name: string, dtype: string, file: string): void {
  const fix = 'Re-export the model without quantization (omit --quantize_* in tensorflowjs_converter)';
  if (!isRecord(q) || !(typeof q.dtype === 'string' && q.dtype in QUANTIZED_DTYPE_BYTES)) {
    const shown = isRecord(q) ? JSON.stringify(q.dtype) : JSON.stringify(q);
    throw new UserError(`weight ${name}: quantization dtype ${shown} is not supported (supported: uint8, uint16, float16)`, { file, fix });
  }
  if (q.dtype === 'float16') {
    if (dtype !== 'float32') throw new UserError(`weight ${name}: float16 quantization needs a float32 weight, not ${dtype}`, { file, fix });
    return;
  }
  if (!Number.isFinite(q.scale) || !Number.isFinite(q.min)) {
    throw new UserError(`weight ${name}: ${q.dtype} quantization needs numeric "scale" and "min"`, { file, fix });
  }
  if (dtype !== 'float32' && dtype !== 'int32') {
    throw new UserError(`weight ${name}: ${q.dtype} quantization needs a float32 or int32 weight, not ${dtype}`, { file, fix });
  }
}

/** Resolves every shard inside the model folder (no `..`, absolute paths or escaping symlinks) and checks sizes. */
async function checkShards(manifest: WeightGroupJson[], dir: string, file: string): Promise<ShardFile[]> {
  const realDir = await fs.realpath(dir);
  const shards: ShardFile[] = [];
  const seen = new Set<string>();
  for (const [g, group] of manifest.entries()) {
    const groupShards: ShardFile[] = [];
    for (const relPath of group.paths) {
      if (/^[a-z][a-z0-9+.-]*:/i.test(relPath) && !/^[a-z]:[\\/]/i.test(relPath)) {
        throw new UserError(`weight file "${relPath}" is a URL; PruneLens reads weight files from the model's folder only`, { file, fix: 'Download the weight files next to model.json and list them by name' });
      }
      if (isAbsolute(relPath) || /^[a-z]:/i.test(relPath) || relPath.startsWith('\\')) {
        throw new UserError(`weight file "${relPath}" is an absolute path; weight files must be in the model's folder`, { file, fix: 'List weight files relative to model.json' });
      }
      const path = resolve(dir, relPath);
      if (!isInside(path, dir)) {
        throw new UserError(`weight file "${relPath}" is outside the model's folder`, { file, fix: 'Keep weight files next to model.json and list them by name' });
      }
      let real: string;
      try {
        real = await fs.realpath(path);
      } catch (err) {
        if (errnoCode(err) === 'ENOENT') {
          throw new UserError(`weight file "${relPath}" is missing (expected at ${path})`, { file, fix: 'Copy all weight shards next to model.json' });
        }
        throw readFailure(path, err, 'weight file');
      }
      if (!isInside(real, realDir)) {
        throw new UserError(`weight file "${relPath}" links outside the model's folder (to ${real})`, { file, fix: 'Copy the weight file into the model folder instead of linking it' });
      }
      const stat = await fs.stat(real);
      if (!stat.isFile()) throw new UserError(`weight file "${relPath}" is not a file`, { file, fix: 'Copy all weight shards next to model.json' });
      if (seen.has(real)) throw new UserError(`weight file "${relPath}" is listed twice`, { file, fix: 'Re-export the model' });
      seen.add(real);
      groupShards.push({ path: real, bytes: stat.size });
    }
    const expected = group.weights.reduce((sum, w) => sum + storedWeightBytes(w), 0);
    const actual = groupShards.reduce((sum, s) => sum + s.bytes, 0);
    if (expected !== actual) {
      const names = group.paths.join(', ');
      throw new UserError(`weight file${group.paths.length === 1 ? '' : 's'} ${names} (group ${g + 1}) hold${group.paths.length === 1 ? 's' : ''} ${actual} bytes but the manifest's weights need ${expected}; the shards are truncated or belong to another model`, {
        file, fix: 'Re-export the model or copy its complete weight files',
      });
    }
    shards.push(...groupShards);
  }
  return shards;
}

function checkUniqueNames(manifest: WeightGroupJson[], file: string): void {
  const names = new Set<string>();
  for (const group of manifest) {
    for (const w of group.weights) {
      if (names.has(w.name)) throw new UserError(`weight ${w.name} is listed twice in the manifest`, { file, fix: 'Re-export the model' });
      names.add(w.name);
    }
  }
}

/** Reads all shards, in manifest order, into one buffer. */
async function readShards(shards: ShardFile[], total: number): Promise<ArrayBuffer> {
  const buffer = new ArrayBuffer(total);
  let offset = 0;
  for (const shard of shards) {
    const handle = await fs.open(shard.path, 'r');
    try {
      let done = 0;
      while (done < shard.bytes) {
        const { bytesRead } = await handle.read(new Uint8Array(buffer, offset + done, shard.bytes - done), 0, shard.bytes - done);
        if (bytesRead === 0) throw new UserError('weight file shrank while it was read', { file: shard.path, fix: 'Try again' });
        done += bytesRead;
      }
    } finally {
      await handle.close();
    }
    offset += shard.bytes;
  }
  return buffer;
}

/** The model's weights as the topology declares them, matched to manifest names the way TF.js does. */
function compareWithTopology(model: tf.LayersModel, specs: WeightEntryJson[]): string[] {
  const expected = new Map<string, { shape: number[]; dtype: string }>();
  for (const w of model.weights) expected.set(w.originalName, { shape: w.shape as number[], dtype: w.dtype });
  const problems: string[] = [];
  const matched = new Set<string>();
  for (const spec of specs) {
    if (spec.group === 'optimizer') continue;
    // TF 2.2+ writes RNN weights as layer/cell/weight; TF.js also accepts them as layer/weight.
    const tokens = spec.name.split('/');
    const name = expected.has(spec.name) ? spec.name : [...tokens.slice(0, -2), tokens[tokens.length - 1]].join('/');
    const want = expected.get(name);
    if (!want) {
      problems.push(`weight ${spec.name} is in the manifest but no layer of the topology has it`);
      continue;
    }
    matched.add(name);
    if (formatShape(want.shape) !== formatShape(spec.shape)) {
      problems.push(`layer ${spec.name}: manifest shape ${formatShape(spec.shape)}, topology expects ${formatShape(want.shape)}`);
    } else if (want.dtype !== spec.dtype) {
      problems.push(`layer ${spec.name}: manifest dtype ${spec.dtype}, topology expects ${want.dtype}`);
    }
  }
  const missing = [...expected.keys()].filter((name) => !matched.has(name))
    .map((name) => `weight ${name} is required by the topology but missing from the manifest`);
  return [...missing, ...problems];
}

/**
 * Explains why TF.js refused the weights. Only runs after a failed load, so the slower
 * topology instantiation (random initialisers) is not paid on the normal path.
 */
async function explainWeightMismatch(json: LayersModelJson, specs: WeightEntryJson[]): Promise<string[]> {
  let model: tf.LayersModel | undefined;
  try {
    model = await tf.models.modelFromJSON({ modelTopology: structuredClone(json.modelTopology) as never });
    return compareWithTopology(model, specs);
  } catch {
    return [];
  } finally {
    model?.dispose();
  }
}

function unknownClassError(err: unknown, file: string): UserError | undefined {
  const match = /^Unknown (\w+): ([^\s.]+)/.exec(firstLine(err));
  if (!match) return undefined;
  const [, kind, name] = match;
  if (kind === 'layer') {
    return new UserError(`unknown layer class "${name}" in the topology; custom layers are not supported`, {
      file, fix: 'Use built-in Keras layers (Conv2D, DepthwiseConv2D, SeparableConv2D, Dense, BatchNormalization, activations, pooling, Add, Concatenate, Flatten, ...) and re-export',
    });
  }
  return new UserError(`unknown ${kind} "${name}" in the topology; custom ${kind}s are not supported`, { file, fix: `Use a built-in ${kind} and re-export the model` });
}

/**
 * Loads a TF.js layers model from model.json and its weight shards, validating the JSON,
 * weight paths, shard sizes, dtypes and the topology before the weights are trusted. Every
 * failure is a one-line `UserError` naming the file. Quantized weights are dequantized to
 * float32 and their storage dtype is kept in `quantization`, for saving them the same way.
 * The training configuration in model.json is not applied (PruneLens compiles models with its
 * own training settings). A `.keras` or `.h5` path is read as a Keras model (keras/load.ts).
 */
export async function loadModel(modelJsonPath: string): Promise<LoadedModel> {
  if (isKerasPath(modelJsonPath)) return loadKeras(modelJsonPath);
  if (isOnnxPath(modelJsonPath)) return loadOnnx(modelJsonPath);
  const path = await locateModelJson(modelJsonPath);
  const file = path === resolve(modelJsonPath) ? modelJsonPath : path;
  const dir = dirname(path);
  const json = checkModelJson(await readModelJson(path, file), file);
  checkUniqueNames(json.weightsManifest, file);
  const shards = await checkShards(json.weightsManifest, dir, file);
  const weightBytes = shards.reduce((sum, s) => sum + s.bytes, 0);
  const modelJsonBytes = (await fs.stat(path)).size;
  const weightSpecs = json.weightsManifest.flatMap((g) => g.weights);
  const quantization = new Map<string, StoredDtype>();
  for (const spec of weightSpecs) {
    if (spec.quantization) quantization.set(spec.name, spec.quantization.dtype);
    else if (spec.dtype === 'float32') quantization.set(spec.name, 'float32');
  }
  const weightData = await readShards(shards, weightBytes);
  checkFiniteWeights(weightData, weightSpecs, file);

  const artifacts: tf.io.ModelArtifacts = {
    modelTopology: json.modelTopology,
    weightSpecs: weightSpecs as tf.io.WeightsManifestEntry[],
    weightData,
    format: json.format ?? LAYERS_MODEL_FORMAT,
    generatedBy: json.generatedBy,
    convertedBy: json.convertedBy ?? null,
  };
  if (isRecord(json.userDefinedMetadata)) artifacts.userDefinedMetadata = json.userDefinedMetadata as Record<string, object>;

  let model: tf.LayersModel;
  try {
    model = await tf.loadLayersModel(tf.io.fromMemory(artifacts), { strict: true });
  } catch (err) {
    const unknown = unknownClassError(err, file);
    if (unknown) throw unknown;
    const problems = await explainWeightMismatch(json, weightSpecs);
    if (problems.length > 0) {
      const more = problems.length > 1 ? ` (and ${problems.length - 1} more)` : '';
      throw new UserError(`${problems[0]}${more}`, { file, fix: 'The weights do not belong to this topology; re-export model.json and its shards together' });
    }
    throw new UserError(`the topology could not be built: ${firstLine(err)}`, { file, fix: 'Re-export the model with TF.js or tensorflowjs_converter' });
  }
  return {
    model,
    path,
    dir,
    weightBytes,
    fileBytes: modelJsonBytes + weightBytes,
    quantization,
    format: json.format ?? LAYERS_MODEL_FORMAT,
    generatedBy: json.generatedBy,
    convertedBy: json.convertedBy ?? undefined,
  };
}

/** A single-file model read by its format's loader (keras/load.ts, onnx/load.ts), with where it lies. */
function fromFile(file: string, loaded: Pick<LoadedModel, 'model' | 'weightBytes' | 'fileBytes' | 'quantization' | 'format' | 'generatedBy' | 'keras' | 'onnx'>): LoadedModel {
  const path = resolve(file);
  return { ...loaded, path, dir: dirname(path) };
}

/** A Keras `.keras` or `.h5` file. */
async function loadKeras(file: string): Promise<LoadedModel> {
  const { loadKerasModel } = await import('./keras/load.js');
  const loaded = await loadKerasModel(file);
  return fromFile(file, { ...loaded, format: loaded.keras.kind });
}

/** An ONNX file, imported as an NHWC runtime model. */
async function loadOnnx(file: string): Promise<LoadedModel> {
  const { loadOnnxModel } = await import('./onnx/load.js');
  const loaded = await loadOnnxModel(file);
  return fromFile(file, { ...loaded, format: 'onnx', generatedBy: loaded.onnx.producer || undefined });
}

/** Bytes of model.json plus the weight shards it lists (`path` is model.json or its folder), or of a Keras file. */
export async function modelFileSize(path: string): Promise<number> {
  if (isKerasPath(path) || isOnnxPath(path)) {
    try {
      return (await fs.stat(path)).size;
    } catch (err) {
      throw readFailure(path, err, 'model file');
    }
  }
  const modelJson = await locateModelJson(path);
  const file = modelJson === resolve(path) ? path : modelJson;
  const json = checkModelJson(await readModelJson(modelJson, file), file);
  const shards = await checkShards(json.weightsManifest, dirname(modelJson), file);
  const jsonBytes = (await fs.stat(modelJson)).size;
  return jsonBytes + shards.reduce((sum, s) => sum + s.bytes, 0);
}
