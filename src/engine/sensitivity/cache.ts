import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { writeFileAtomic } from '../io/atomic.js';
import type { SensitivityReport } from './types.js';

/**
 * sha256 of the model's file bytes: model.json and its weight shards in manifest order, or the
 * one .keras / .h5 / .onnx file.
 */
export async function hashModelFile(path: string): Promise<string> {
  const hash = createHash('sha256');
  const bytes = await fs.readFile(path);
  hash.update(bytes);
  if (path.toLowerCase().endsWith('.json')) {
    const manifest = (JSON.parse(bytes.toString('utf8')) as { weightsManifest?: { paths: string[] }[] }).weightsManifest ?? [];
    for (const shard of manifest.flatMap((group) => group.paths)) hash.update(await fs.readFile(join(dirname(path), shard)));
  }
  return hash.digest('hex');
}

/** sha256 of a model held in memory (topology and every weight's bytes), for a model with no file. */
export function hashModelInMemory(model: tf.LayersModel): string {
  const hash = createHash('sha256');
  hash.update(JSON.stringify(model.toJSON(undefined, false)));
  for (const w of model.weights) {
    const value = w.read();
    hash.update(w.name);
    hash.update(new Uint8Array((value.dataSync() as Float32Array).slice().buffer));
  }
  return hash.digest('hex');
}

/** The cache file of one analysis: the model's hash and every setting that changes the numbers. */
export function cacheFile(dir: string, modelHash: string, settings: unknown): string {
  const key = createHash('sha256').update(modelHash).update(JSON.stringify(settings)).digest('hex').slice(0, 32);
  return join(resolve(dir), `sensitivity-${key}.json`);
}

/** A cached report, or undefined when there is none or it cannot be read (the analysis then runs again). */
export async function readCached(file: string): Promise<SensitivityReport | undefined> {
  try {
    const report = JSON.parse(await fs.readFile(file, 'utf8')) as SensitivityReport;
    return Array.isArray(report.groups) ? report : undefined;
  } catch {
    return undefined;
  }
}

export async function writeCached(file: string, report: SensitivityReport): Promise<void> {
  await writeFileAtomic(file, JSON.stringify(report, null, 2) + '\n');
}
