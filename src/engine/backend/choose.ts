/**
 * How 'auto' picks a backend: by measurement, not by assumption. One training step of a fixed small CNN (the probe) is
 * timed on each backend that starts here (tfjs-node when it loads, wasm with PruneLens' kernels, cpu) and the fastest
 * wins. The result is cached per machine (CPU model, cores, Node, the tfjs, tfjs-node and PruneLens versions) in the
 * caller's cache folder, inside the workspace (`.prunelens/cache/backend.json` beside the config), so a later session
 * on the same machine starts the winner without measuring again.
 */
import * as os from 'node:os';
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';

/** File, in a cache folder, of the measured choice per machine. */
export const BACKEND_CACHE_FILE = 'backend.json';
const CACHE_VERSION = 1;

/** Probe: batch 8 of 16×16×3 through three 3×3 convolutions with batch norm and ReLU, pooled into 10 classes. */
const PROBE_BATCH = 8;
const PROBE_SIZE = 16;
/** Steps run before timing (the first one compiles and allocates), then timed; the median counts. */
const PROBE_WARMUP = 1;
const PROBE_STEPS = 3;
/** A backend whose warm-up step already took this many times the best median so far is not timed further. */
const HOPELESS_FACTOR = 4;

export interface MeasuredChoice {
  backend: string;
  /** Median ms of one probe training step, by backend. */
  stepMs: Record<string, number>;
  measuredAt: string;
}

interface CacheFile {
  version: number;
  machines: Record<string, MeasuredChoice>;
}

/** What makes a measurement valid elsewhere: the same CPU, cores, Node and package versions. */
export function machineKey(tfjsNodeVersion: string | undefined): string {
  const cpus = os.cpus();
  return [
    cpus[0]?.model?.trim() ?? 'unknown cpu', `${os.availableParallelism?.() ?? cpus.length} cores`, `node ${process.version}`,
    `tfjs ${tf.version_core}`, `tfjs-node ${tfjsNodeVersion ?? 'absent'}`, `prunelens ${prunelensVersion()}`,
  ].join(' | ');
}

function prunelensVersion(): string {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return (require('../../../package.json') as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

/** The cached choice for this machine, if the cache holds one for the key. A cache that cannot be read counts as empty. */
export function readCachedChoice(cacheDir: string, key: string): MeasuredChoice | undefined {
  try {
    const cache = JSON.parse(readFileSync(join(cacheDir, BACKEND_CACHE_FILE), 'utf8')) as CacheFile;
    const entry = cache.version === CACHE_VERSION ? cache.machines?.[key] : undefined;
    return entry && typeof entry.backend === 'string' && typeof entry.stepMs === 'object' ? entry : undefined;
  } catch {
    return undefined;
  }
}

/** Records the choice for this machine beside the others (written whole, then renamed into place). */
export function writeCachedChoice(cacheDir: string, key: string, choice: MeasuredChoice): string {
  const file = join(cacheDir, BACKEND_CACHE_FILE);
  let cache: CacheFile = { version: CACHE_VERSION, machines: {} };
  try {
    const old = JSON.parse(readFileSync(file, 'utf8')) as CacheFile;
    if (old.version === CACHE_VERSION && old.machines) cache = old;
  } catch { /* no cache yet, or an unreadable one: start afresh */ }
  cache.machines[key] = choice;
  mkdirSync(cacheDir, { recursive: true });
  const temp = `${file}.${process.pid}.tmp`;
  try {
    writeFileSync(temp, JSON.stringify(cache, null, 2) + '\n');
    renameSync(temp, file);
  } finally {
    rmSync(temp, { force: true });
  }
  return file;
}

function buildProbe(): tf.LayersModel {
  let seed = 7;
  const input = tf.input({ shape: [PROBE_SIZE, PROBE_SIZE, 3] });
  let x: tf.SymbolicTensor = input;
  for (const [filters, strides] of [[16, 1], [32, 2], [32, 1]] as const) {
    x = tf.layers.conv2d({ filters, kernelSize: 3, strides, padding: 'same', useBias: false, kernelInitializer: tf.initializers.heNormal({ seed: seed++ }) }).apply(x) as tf.SymbolicTensor;
    x = tf.layers.batchNormalization().apply(x) as tf.SymbolicTensor;
    x = tf.layers.reLU().apply(x) as tf.SymbolicTensor;
  }
  x = tf.layers.globalAveragePooling2d({}).apply(x) as tf.SymbolicTensor;
  const output = tf.layers.dense({ units: 10, kernelInitializer: tf.initializers.glorotNormal({ seed: seed++ }) }).apply(x) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: output });
}

/**
 * Median ms of one probe training step (forward, gradients, SGD update) on the active backend; `bestMs`, the
 * best median so far, lets a backend far behind stop after its warm-up step (its warm-up time is then its figure).
 */
export async function probeStepMs(bestMs = Infinity): Promise<number> {
  const model = buildProbe();
  // Plain SGD: tfjs' momentum optimizer keeps a scalar past its dispose().
  const optimizer = tf.train.sgd(0.01);
  const x = tf.randomNormal([PROBE_BATCH, PROBE_SIZE, PROBE_SIZE, 3], 0, 1, 'float32', 1);
  const y = tf.tidy(() => tf.oneHot(tf.tensor1d(Array.from({ length: PROBE_BATCH }, (_, i) => i % 10), 'int32'), 10).toFloat());
  const step = async (): Promise<number> => {
    const start = performance.now();
    const cost = optimizer.minimize(() => tf.losses.softmaxCrossEntropy(y, model.apply(x, { training: true }) as tf.Tensor), true);
    await cost?.data();
    cost?.dispose();
    return performance.now() - start;
  };
  try {
    let warmupMs = 0;
    for (let i = 0; i < PROBE_WARMUP; i++) warmupMs = await step();
    if (warmupMs > HOPELESS_FACTOR * bestMs) return warmupMs;
    const times: number[] = [];
    for (let i = 0; i < PROBE_STEPS; i++) times.push(await step());
    times.sort((a, b) => a - b);
    return times[times.length >> 1];
  } finally {
    optimizer.dispose();
    tf.dispose([x, y]);
    model.dispose();
  }
}
