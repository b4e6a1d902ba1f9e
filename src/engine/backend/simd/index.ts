import * as tf from '@tensorflow/tfjs';
import { installTrainingBatchNorm } from './batchnorm.js';
import { installDepthwiseKernels } from './depthwise.js';
import { installClipGradient, installReluGradient } from './relu.js';
import { installReluFusion } from './fusion.js';
import { installSgdMomentum } from './optimizer.js';
import { instantiateOnHeap, type HeapBackend, type InPlaceKernels } from './inplace.js';
import { defaultThreads, loadInPlaceKernels, startKernelPool, type KernelBuild, type SharedHeap } from './pool.js';
import { installSimdKernels } from './tfjs-kernels.js';

type SimdPath = { threads: number; sharedHeap: boolean; build: KernelBuild } | { reason: string; build?: KernelBuild };
let outcome: SimdPath | undefined;

/** The wasm backend's heap when it is shared (see shared-heap.ts), so kernel threads can work on it directly. */
export function sharedHeap(): SharedHeap | undefined {
  const backend = tf.findBackend('wasm') as unknown as HeapBackend | null;
  const memory = backend?.wasm?.asm?.memory;
  if (!backend || !(memory instanceof WebAssembly.Memory) || !(memory.buffer instanceof SharedArrayBuffer)) return undefined;
  return { memory, malloc: (bytes) => backend.wasm._malloc(bytes) };
}

/**
 * Loads and registers every PruneLens SIMD kernel over the initialised wasm backend, once per
 * process (the modules are read, compiled and instantiated only the first time). Returns the
 * threads the pool computes with, whether it shares the backend's heap and which build (plain or
 * relaxed SIMD) runs, or why the threaded kernels are not in use.
 */
export function installSimdPath(): SimdPath {
  if (outcome) return outcome;
  const heap = sharedHeap();
  const started = startKernelPool(defaultThreads(), heap);
  const pool = 'pool' in started ? started.pool : undefined;
  // Batch norm, depthwise, ReLU's gradient and the SGD update work in place on the calling thread (batch
  // norm also splits large activations across a shared-heap pool): through the pool's own instance on a
  // shared heap, else through a second build of the kernels that imports the backend's memory.
  let inPlace: InPlaceKernels | undefined = pool?.sharesHeap ? pool.direct as unknown as InPlaceKernels : undefined;
  let build = inPlace ? pool?.build : undefined;
  if (!inPlace && !heap) {
    const loaded = loadInPlaceKernels();
    inPlace = loaded && instantiateOnHeap(loaded.module);
    if (inPlace) build = loaded?.build;
  }
  if (inPlace) {
    installTrainingBatchNorm(inPlace, pool);
    installDepthwiseKernels(inPlace);
    installReluGradient(inPlace);
    installClipGradient(inPlace);
    installReluFusion(inPlace);
    installSgdMomentum(inPlace);
  }
  if (!pool) return (outcome = { reason: (started as { reason: string }).reason, build });
  installSimdKernels(pool);
  return (outcome = { threads: pool.threads, sharedHeap: pool.sharesHeap, build: pool.build });
}
