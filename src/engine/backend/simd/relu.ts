/**
 * ReLU's gradient as one pass over the activation on wasm. tfjs computes it as step(x), a cast and
 * a multiply: three full passes and two temporaries for every ReLU of every step.
 */
import * as tf from '@tensorflow/tfjs';
import type { KernelFunc, Tensor, TensorInfo } from '@tensorflow/tfjs';
import { heapOffset as at, type HeapBackend, type InPlaceKernels } from './inplace.js';

export const RELU_GRAD = 'PruneLensReluGrad';

let installed = false;

/** Registers the kernel and makes it Relu's gradient on wasm (other backends keep tfjs' own). */
export function installReluGradient(kernels: InPlaceKernels): void {
  if (installed) return;
  installed = true;
  const kernelFunc: KernelFunc = ({ inputs, backend: b }) => {
    const be = b as unknown as HeapBackend;
    const { dy, x } = inputs as { dy: TensorInfo; x: TensorInfo };
    const dx = be.makeOutput(x.shape, 'float32');
    kernels.relu_backward(x.shape.reduce((n, d) => n * d, 1), at(be, dy), at(be, x), at(be, dx));
    return dx;
  };
  tf.registerKernel({ kernelName: RELU_GRAD, backendName: 'wasm', kernelFunc });
  const original = tf.getGradient('Relu');
  if (!original) return;
  tf.registerGradient({
    ...original,
    gradFunc: (dy, saved, attrs) => {
      const [x] = saved;
      const upstream = Array.isArray(dy) ? dy[0] : dy;
      if (tf.getBackend() !== 'wasm' || x.dtype !== 'float32' || upstream.dtype !== 'float32' || !tf.util.arraysEqual(x.shape, upstream.shape)) {
        return original.gradFunc(dy, saved, attrs);
      }
      return { x: () => tf.engine().runKernel(RELU_GRAD, { dy: upstream, x }) as Tensor };
    },
  });
}
