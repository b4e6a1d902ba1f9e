import * as tf from '@tensorflow/tfjs';
import './serialization-fixes.js';
import { promises as fs } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { UserError } from '../errors.js';
import { fsyncDir, removeStaleTemporaries, temporarySibling, writeDurable, writeFailure } from './atomic.js';
import {
  LAYERS_MODEL_FORMAT, MODEL_JSON, SHARD_BYTES, shardName, storedWeightBytes,
  type LayersModelJson, type QuantizationMap, type WeightEntryJson,
} from './format.js';
import { quantizeWeight, storageDtypeOf } from './quantize.js';

export interface SaveOptions {
  /**
   * Storage dtype per weight name (as `LoadedModel.quantization` records it). Weights stored
   * quantized are written quantized, requantized from their current values; a per-group layer
   * `<layer>_g<N>` takes its source layer's dtype, and a weight the input did not have the
   * dtype most of its weights had. Other weights are written as they are.
   */
  quantization?: QuantizationMap;
}

/** A model serialised to the exact bytes `saveModelAtomic` writes. */
export interface EncodedModel {
  modelJsonText: string;
  /** Shard files in order, with their names. */
  shards: { name: string; data: Uint8Array }[];
  /** Bytes of all weight shards. */
  weightBytes: number;
  /** Bytes on disk of model.json plus its weight shards. */
  fileBytes: number;
}

export interface SavedModel {
  /** Absolute path of the written model.json. */
  modelJson: string;
  /** Bytes of all weight shards. */
  weightBytes: number;
  /** Bytes on disk of model.json plus its weight shards. */
  fileBytes: number;
  /** Absolute paths of every file written (model.json, shards, extra files). */
  files: string[];
}

const SHARD_FILE = /^group\d+-shard\d+of\d+\.bin$/;

/** Extra files are plain relative names inside the output folder that do not shadow the model's own files. */
function checkExtraFileName(name: string, outDir: string): void {
  const segments = name.split(/[\\/]/);
  const problem =
    name.length === 0 ? 'is empty'
    : name.includes('\0') ? 'contains a NUL character'
    : isAbsolute(name) || /^[a-zA-Z]:/.test(name) ? 'is an absolute path'
    : segments.some((s) => s === '' || s === '.' || s === '..') ? 'must stay inside the output folder (no empty, "." or ".." parts)'
    : segments[0] === MODEL_JSON || SHARD_FILE.test(segments[0]) ? 'would overwrite the model\'s own files'
    : undefined;
  if (problem) {
    throw new UserError(`extra file name "${name}" ${problem}`, { file: outDir, fix: 'Use a relative name such as report.html' });
  }
}

/** The model as TF.js serialises it (topology JSON, weight specs, one weight buffer). */
async function serialize(model: tf.LayersModel): Promise<tf.io.ModelArtifacts> {
  let captured: tf.io.ModelArtifacts | undefined;
  await model.save(tf.io.withSaveHandler(async (artifacts) => {
    captured = artifacts;
    return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
  }));
  if (!captured || captured.modelTopology instanceof ArrayBuffer || !captured.modelTopology) {
    throw new Error('TF.js produced no JSON topology for the model');
  }
  return captured;
}

/** The weight buffer with the chosen weights quantized; specs gain their `quantization`. */
function quantizeWeights(specs: WeightEntryJson[], weights: Uint8Array, quantization: QuantizationMap): Uint8Array {
  const parts: Uint8Array[] = [];
  let offset = 0;
  for (const spec of specs) {
    const bytes = storedWeightBytes(spec);
    const raw = weights.subarray(offset, offset + bytes);
    offset += bytes;
    const dtype = spec.dtype === 'float32' ? storageDtypeOf(spec.name, quantization) : undefined;
    // Copied: a weight after a bool weight need not be 4-byte aligned.
    const quantized = dtype ? quantizeWeight(new Float32Array(raw.slice().buffer), dtype) : undefined;
    if (quantized) {
      spec.quantization = quantized.quantization;
      parts.push(quantized.bytes);
    } else {
      parts.push(raw);
    }
  }
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.byteLength;
  }
  return out;
}

/** Serialises `model` to model.json text and shards, quantizing weights as `options` asks. */
export async function encodeModel(model: tf.LayersModel, options: SaveOptions = {}): Promise<EncodedModel> {
  const artifacts = await serialize(model);
  const specs = structuredClone(artifacts.weightSpecs ?? []) as WeightEntryJson[];
  let weights: Uint8Array = new Uint8Array(artifacts.weightData ? tf.io.CompositeArrayBuffer.join(artifacts.weightData) : new ArrayBuffer(0));
  if (options.quantization && options.quantization.size > 0) weights = quantizeWeights(specs, weights, options.quantization);
  const data = splitShards(weights);
  const shards = data.map((d, i) => ({ name: shardName(i, data.length), data: d }));
  const modelJson: LayersModelJson = {
    format: artifacts.format ?? LAYERS_MODEL_FORMAT,
    generatedBy: artifacts.generatedBy,
    convertedBy: artifacts.convertedBy ?? null,
    modelTopology: artifacts.modelTopology as Record<string, unknown>,
    weightsManifest: [{ paths: shards.map((s) => s.name), weights: specs }],
  };
  if (artifacts.trainingConfig) modelJson.trainingConfig = artifacts.trainingConfig as unknown as Record<string, unknown>;
  if (artifacts.userDefinedMetadata) modelJson.userDefinedMetadata = artifacts.userDefinedMetadata;
  const modelJsonText = JSON.stringify(modelJson);
  return { modelJsonText, shards, weightBytes: weights.byteLength, fileBytes: Buffer.byteLength(modelJsonText) + weights.byteLength };
}

function isEncoded(model: tf.LayersModel | EncodedModel): model is EncodedModel {
  return typeof (model as EncodedModel).modelJsonText === 'string';
}

function splitShards(weights: Uint8Array): Uint8Array[] {
  const count = Math.max(1, Math.ceil(weights.byteLength / SHARD_BYTES));
  return Array.from({ length: count }, (_, i) => weights.subarray(i * SHARD_BYTES, (i + 1) * SHARD_BYTES));
}

/** Refuses to replace something that is not a folder or a folder holding unrelated files (one without `ownFile`, the model's file). */
async function checkReplaceable(target: string, ownFile: string): Promise<boolean> {
  let stat;
  try {
    stat = await fs.lstat(target);
  } catch {
    return false;
  }
  if (stat.isSymbolicLink()) {
    throw new UserError('output path is a symbolic link; saving replaces the output folder as a whole', { file: target, fix: 'Give the real folder path instead of the link' });
  }
  if (!stat.isDirectory()) {
    throw new UserError('output path exists and is not a folder', { file: target, fix: 'Choose a folder name that is free or holds a previous output' });
  }
  const entries = await fs.readdir(target);
  // A previous output holds the model's file, or model.json where the same model was last saved as TF.js.
  if (entries.length > 0 && !entries.includes(ownFile) && !entries.includes(MODEL_JSON)) {
    throw new UserError('output folder already holds files that are not a model; saving replaces the whole folder', {
      file: target,
      fix: 'Choose an empty or new folder, or one holding a previous output',
    });
  }
  return true;
}

/**
 * Saves `model` as a TF.js layers model (model.json + 4 MiB shards) plus `extraFiles`
 * into `outDir`; `model` may already be encoded (then `options` was applied by `encodeModel`).
 * Everything is written to a temporary sibling folder and flushed first; an existing `outDir`
 * is swapped out only once the new one is complete, so it is never left half-overwritten.
 */
export async function saveModelAtomic(
  model: tf.LayersModel | EncodedModel,
  outDir: string,
  extraFiles: Record<string, string | Uint8Array> = {},
  options: SaveOptions = {},
): Promise<SavedModel> {
  for (const name of Object.keys(extraFiles)) checkExtraFileName(name, outDir);
  const target = resolve(outDir);
  await checkReplaceable(target, MODEL_JSON);
  const encoded = isEncoded(model) ? model : await encodeModel(model, options);
  const files: Record<string, string | Uint8Array> = { [MODEL_JSON]: encoded.modelJsonText };
  for (const shard of encoded.shards) files[shard.name] = shard.data;
  const written = await writeFolderAtomic(outDir, MODEL_JSON, { ...files, ...extraFiles });
  return {
    modelJson: join(target, MODEL_JSON),
    weightBytes: encoded.weightBytes,
    fileBytes: encoded.fileBytes,
    files: written,
  };
}

/**
 * Writes `files` (relative names, the model's own file `ownFile` among them) as the whole of
 * `outDir`: to a temporary sibling folder, flushed, then renamed into place. An existing `outDir`
 * is replaced only if it holds `ownFile` (a previous output), and only once the new one is
 * complete. Returns the absolute paths written.
 */
export async function writeFolderAtomic(outDir: string, ownFile: string, files: Record<string, string | Uint8Array>): Promise<string[]> {
  const target = resolve(outDir);
  const replacing = await checkReplaceable(target, ownFile);
  const parent = dirname(target);
  try {
    await fs.mkdir(parent, { recursive: true });
  } catch (err) {
    throw writeFailure(parent, err);
  }
  await removeStaleTemporaries(parent);

  const staging = temporarySibling(target, 'tmp');
  try {
    await fs.mkdir(staging);
    for (const [name, data] of Object.entries(files)) {
      const path = join(staging, name);
      await fs.mkdir(dirname(path), { recursive: true });
      await writeDurable(path, data);
    }
    await fsyncDir(staging);
  } catch (err) {
    await fs.rm(staging, { recursive: true, force: true }).catch(() => undefined);
    throw writeFailure(target, err);
  }

  await swapIntoPlace(staging, target, replacing);
  return Object.keys(files).map((name) => join(target, name));
}

/** Renames the finished staging folder onto `target`, keeping the previous output until it has. */
async function swapIntoPlace(staging: string, target: string, replacing: boolean): Promise<void> {
  const parent = dirname(target);
  if (!replacing) {
    try {
      await fs.rename(staging, target);
    } catch (err) {
      await fs.rm(staging, { recursive: true, force: true }).catch(() => undefined);
      throw writeFailure(target, err);
    }
    await fsyncDir(parent);
    return;
  }
  const backup = temporarySibling(target, 'old');
  try {
    await fs.rename(target, backup);
  } catch (err) {
    await fs.rm(staging, { recursive: true, force: true }).catch(() => undefined);
    throw writeFailure(target, err);
  }
  try {
    await fs.rename(staging, target);
  } catch (err) {
    await fs.rename(backup, target).catch(() => undefined);
    await fs.rm(staging, { recursive: true, force: true }).catch(() => undefined);
    throw writeFailure(target, err);
  }
  await fsyncDir(parent);
  await fs.rm(backup, { recursive: true, force: true }).catch(() => undefined);
}
