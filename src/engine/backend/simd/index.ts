import { installTrainingBatchNorm } from './batchnorm.js';
import { installDepthwiseKernels } from './depthwise.js';
import { instantiateOnHeap } from './inplace.js';
import { loadInPlaceKernels, startKernelPool } from './pool.js';
import { installSimdKernels } from './tfjs-kernels.js';

let outcome: { threads: number } | { reason: string } | undefined;

/**
 * Loads and registers every PruneLens SIMD kernel over the initialised wasm backend, once per
 * process (the modules are read, compiled and instantiated only the first time). Returns the
 * threads the pool computes with, or why the threaded kernels are not in use.
 */
export function installSimdPath(): { threads: number } | { reason: string } {
  if (outcome) return outcome;
  const inPlaceModule = loadInPlaceKernels();
  const inPlace = inPlaceModule && instantiateOnHeap(inPlaceModule);
  if (inPlace) {
    installTrainingBatchNorm(inPlace);
    installDepthwiseKernels(inPlace);
  }
  const started = startKernelPool();
  if ('reason' in started) return (outcome = { reason: started.reason });
  installSimdKernels(started.pool);
  return (outcome = { threads: started.pool.threads });
}
