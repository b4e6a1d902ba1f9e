/**
 * ReLU's gradient as one pass over the activation on wasm. tfjs computes it as step(x), a cast and
 * a multiply: three full passes and two temporaries for every ReLU of every step. Likewise clip_by_value's
 * (the cap of tf.layers' ReLU with maxValue, MobileNet's ReLU6): tfjs' greaterEqual, lessEqual,
 * logicalAnd, zerosLike and where took 40% of a MobileNetV2 training step.
 */
import * as tf from '@tensorflow/tfjs';
import type { KernelFunc, Tensor, TensorInfo } from '@tensorflow/tfjs';
import { elementwiseKernel, heapOffset, type HeapBackend, type InPlaceKernels } from './inplace.js';

export const RELU_GRAD = 'PruneLensReluGrad';
export const CLIP_GRAD = 'PruneLensClipGrad';

let installed = false;

/**
 * Makes `opName`'s gradient run `kernelName` (dy and the saved input x, with the op's attributes) on
 * wasm for float32 tensors of one shape; tfjs' own gradient everywhere else.
 */
function replaceGradientOnWasm(opName: string, kernelName: string): void {
  const original = tf.getGradient(opName);
  if (!original) return;
  tf.registerGradient({
    ...original,
    gradFunc: (dy, saved, attrs) => {
      const [x] = saved;
      const upstream = Array.isArray(dy) ? dy[0] : dy;
      if (tf.getBackend() !== 'wasm' || x.dtype !== 'float32' || upstream.dtype !== 'float32' || !tf.util.arraysEqual(x.shape, upstream.shape)) {
        return original.gradFunc(dy, saved, attrs);
      }
      return { x: () => tf.engine().runKernel(kernelName, { dy: upstream, x }, attrs as never) as Tensor };
    },
  });
}

/** Registers the kernel and makes it Relu's gradient on wasm (other backends keep tfjs' own). */
export function installReluGradient(kernels: InPlaceKernels): void {
  if (installed) return;
  installed = true;
  tf.registerKernel({ kernelName: RELU_GRAD, backendName: 'wasm', kernelFunc: elementwiseKernel(['dy', 'x'], kernels.relu_backward) });
  replaceGradientOnWasm('Relu', RELU_GRAD);
}

let clipInstalled = false;

/** Registers the kernel and makes it ClipByValue's gradient on wasm (other backends keep tfjs' own). */
export function installClipGradient(kernels: InPlaceKernels): void {
  if (clipInstalled) return;
  clipInstalled = true;
  const clipGrad: KernelFunc = ({ inputs, backend, attrs }) => {
    const be = backend as unknown as HeapBackend;
    const { dy, x } = inputs as { dy: TensorInfo; x: TensorInfo };
    const { clipValueMin, clipValueMax } = attrs as { clipValueMin: number; clipValueMax: number };
    const out = be.makeOutput(x.shape, 'float32');
    kernels.clip_backward(tf.util.sizeFromShape(x.shape), heapOffset(be, dy), heapOffset(be, x), clipValueMin, clipValueMax, heapOffset(be, out));
    return out;
  };
  tf.registerKernel({ kernelName: CLIP_GRAD, backendName: 'wasm', kernelFunc: clipGrad });
  replaceGradientOnWasm('ClipByValue', CLIP_GRAD);
}
