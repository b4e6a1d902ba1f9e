/**
 * One SGD-with-momentum update of a variable as one kernel on wasm: tfjs ops take five or six
 * kernels a variable (decay, momentum, step), each with its own dispatch, which adds up to
 * milliseconds a step over a network's few hundred variables.
 */
import * as tf from '@tensorflow/tfjs';
import type { KernelFunc, Tensor, TensorInfo } from '@tensorflow/tfjs';
import { heapOffset as at, type HeapBackend, type InPlaceKernels } from './inplace.js';

export const SGD_MOMENTUM = 'PruneLensSgdMomentum';

export function installSgdMomentum(kernels: InPlaceKernels): void {
  if (tf.getKernel(SGD_MOMENTUM, 'wasm')) return;
  const kernelFunc: KernelFunc = ({ inputs, backend: b, attrs }) => {
    const be = b as unknown as HeapBackend;
    const { w, g, buffer } = inputs as { w: TensorInfo; g: TensorInfo; buffer: TensorInfo };
    const { learningRate, momentum, decay } = attrs as unknown as { learningRate: number; momentum: number; decay: number };
    const outW = be.makeOutput(w.shape, 'float32'), outBuffer = be.makeOutput(w.shape, 'float32');
    kernels.sgd_momentum(w.shape.reduce((n, d) => n * d, 1), at(be, w), at(be, g), at(be, buffer), learningRate, momentum, decay, at(be, outW), at(be, outBuffer));
    return [outW, outBuffer];
  };
  tf.registerKernel({ kernelName: SGD_MOMENTUM, backendName: 'wasm', kernelFunc });
}

/**
 * [new weights, new momentum buffer] for one step, from one kernel when the current backend has it;
 * undefined otherwise (the caller composes tfjs ops).
 */
export function fusedSgdMomentum(w: Tensor, g: Tensor, buffer: Tensor, learningRate: number, momentum: number, decay: number): [Tensor, Tensor] | undefined {
  if (!tf.getKernel(SGD_MOMENTUM, tf.getBackend()) || w.dtype !== 'float32' || g.dtype !== 'float32' || !tf.util.arraysEqual(w.shape, g.shape)) return undefined;
  return tf.engine().runKernel(SGD_MOMENTUM, { w, g, buffer }, { learningRate, momentum, decay }) as unknown as [Tensor, Tensor];
}
