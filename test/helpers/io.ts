import * as tf from '@tensorflow/tfjs';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A fresh folder under the OS temp dir; call `remove()` when done. */
export function makeTempDir(prefix = 'prunelens-io-'): { dir: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/**
 * A small conv → BN → ReLU → conv → BN → ReLU → pool → dense network on 8×8×3 inputs.
 * Batch-norm statistics are set to non-trivial values so a lost weight changes predictions.
 */
export function buildSmallCnn(options: { conv2Filters?: number; seed?: number } = {}): tf.LayersModel {
  const seed = options.seed ?? 7;
  const init = (k: number) => tf.initializers.glorotUniform({ seed: seed * 10 + k });
  const input = tf.input({ shape: [8, 8, 3], name: 'image' });
  let x = tf.layers.conv2d({ name: 'conv1', filters: 16, kernelSize: 3, padding: 'same', kernelInitializer: init(1) }).apply(input) as tf.SymbolicTensor;
  x = tf.layers.batchNormalization({ name: 'bn1' }).apply(x) as tf.SymbolicTensor;
  x = tf.layers.reLU({ name: 'relu1' }).apply(x) as tf.SymbolicTensor;
  x = tf.layers.conv2d({ name: 'conv2', filters: options.conv2Filters ?? 32, kernelSize: 3, padding: 'same', kernelInitializer: init(2) }).apply(x) as tf.SymbolicTensor;
  x = tf.layers.batchNormalization({ name: 'bn2' }).apply(x) as tf.SymbolicTensor;
  x = tf.layers.reLU({ name: 'relu2' }).apply(x) as tf.SymbolicTensor;
  x = tf.layers.globalAveragePooling2d({ name: 'pool' }).apply(x) as tf.SymbolicTensor;
  const output = tf.layers.dense({ name: 'logits', units: 10, kernelInitializer: init(3) }).apply(x) as tf.SymbolicTensor;
  const model = tf.model({ inputs: input, outputs: output, name: 'small_cnn' });
  randomiseBatchNorm(model, seed);
  return model;
}

function randomiseBatchNorm(model: tf.LayersModel, seed: number): void {
  for (const layer of model.layers) {
    if (layer.getClassName() !== 'BatchNormalization') continue;
    const values = layer.getWeights().map((w, i) => {
      const r = tf.randomUniform(w.shape, 0.5, 1.5, 'float32', seed + i);
      return i === 1 || i === 2 ? tf.sub(r, 1) : r; // beta and moving mean around 0
    });
    layer.setWeights(values);
    tf.dispose(values);
  }
}

/** Weight values by name, for exact comparisons. */
export function weightValues(model: tf.LayersModel): Map<string, Float32Array | Int32Array | Uint8Array> {
  const out = new Map<string, Float32Array | Int32Array | Uint8Array>();
  for (const w of model.weights) out.set(w.originalName, w.read().dataSync() as Float32Array);
  return out;
}

export function predict(model: tf.LayersModel, input: tf.Tensor): Float32Array {
  return tf.tidy(() => (model.predict(input) as tf.Tensor).dataSync() as Float32Array);
}

export function readJson(path: string): Record<string, any> {
  return JSON.parse(readFileSync(path, 'utf8'));
}

/** Rewrites model.json in place through `edit`. */
export function editModelJson(modelJsonPath: string, edit: (json: Record<string, any>) => void): void {
  const json = readJson(modelJsonPath);
  edit(json);
  writeFileSync(modelJsonPath, JSON.stringify(json));
}
