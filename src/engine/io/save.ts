import * as tf from '@tensorflow/tfjs';
import './serialization-fixes.js';
import { promises as fs } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { UserError } from '../errors.js';
import { fsyncDir, removeStaleTemporaries, temporarySibling, writeDurable, writeFailure } from './atomic.js';
import { LAYERS_MODEL_FORMAT, MODEL_JSON, SHARD_BYTES, shardName, type LayersModelJson, type WeightEntryJson } from './format.js';

export interface SavedModel {
  /** Absolute path of the written model.json. */
  modelJson: string;
  /** Bytes of all weight shards. */
  weightBytes: number;
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

function splitShards(weights: Uint8Array): Uint8Array[] {
  const count = Math.max(1, Math.ceil(weights.byteLength / SHARD_BYTES));
  return Array.from({ length: count }, (_, i) => weights.subarray(i * SHARD_BYTES, (i + 1) * SHARD_BYTES));
}

/** Refuses to replace something that is not a folder or a folder holding unrelated files. */
async function checkReplaceable(target: string): Promise<boolean> {
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
  if (entries.length > 0 && !entries.includes(MODEL_JSON)) {
    throw new UserError('output folder already holds files that are not a model; saving replaces the whole folder', {
      file: target,
      fix: 'Choose an empty or new folder, or one holding a previous output',
    });
  }
  return true;
}

/**
 * Saves `model` as a TF.js layers model (model.json + 4 MiB shards) plus `extraFiles`
 * into `outDir`. Everything is written to a temporary sibling folder and flushed first; an
 * existing `outDir` is swapped out only once the new one is complete, so it is never left
 * half-overwritten.
 */
export async function saveModelAtomic(
  model: tf.LayersModel,
  outDir: string,
  extraFiles: Record<string, string | Uint8Array> = {},
): Promise<SavedModel> {
  const target = resolve(outDir);
  for (const name of Object.keys(extraFiles)) checkExtraFileName(name, outDir);
  const replacing = await checkReplaceable(target);

  const artifacts = await serialize(model);
  const weights = new Uint8Array(artifacts.weightData ? tf.io.CompositeArrayBuffer.join(artifacts.weightData) : new ArrayBuffer(0));
  const shards = splitShards(weights);
  const paths = shards.map((_, i) => shardName(i, shards.length));
  const modelJson: LayersModelJson = {
    format: artifacts.format ?? LAYERS_MODEL_FORMAT,
    generatedBy: artifacts.generatedBy,
    convertedBy: artifacts.convertedBy ?? null,
    modelTopology: artifacts.modelTopology as Record<string, unknown>,
    weightsManifest: [{ paths, weights: (artifacts.weightSpecs ?? []) as WeightEntryJson[] }],
  };
  if (artifacts.trainingConfig) modelJson.trainingConfig = artifacts.trainingConfig as unknown as Record<string, unknown>;
  if (artifacts.userDefinedMetadata) modelJson.userDefinedMetadata = artifacts.userDefinedMetadata;

  const parent = dirname(target);
  try {
    await fs.mkdir(parent, { recursive: true });
  } catch (err) {
    throw writeFailure(parent, err);
  }
  await removeStaleTemporaries(parent);

  const staging = temporarySibling(target, 'tmp');
  const relativeFiles = [MODEL_JSON, ...paths, ...Object.keys(extraFiles)];
  try {
    await fs.mkdir(staging);
    await writeDurable(join(staging, MODEL_JSON), JSON.stringify(modelJson));
    for (let i = 0; i < shards.length; i++) await writeDurable(join(staging, paths[i]), shards[i]);
    for (const [name, data] of Object.entries(extraFiles)) {
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
  return {
    modelJson: join(target, MODEL_JSON),
    weightBytes: weights.byteLength,
    files: relativeFiles.map((name) => join(target, name)),
  };
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
