/**
 * ReLU's gradient as one pass over the activation on wasm. tfjs computes it as step(x), a cast and
 * a multiply: three full passes and two temporaries for every ReLU of every step.
 */
import * as tf from '@tensorflow/tfjs';
import type { Tensor } from '@tensorflow/tfjs';
import { elementwiseKernel, type InPlaceKernels } from './inplace.js';

export const RELU_GRAD = 'PruneLensReluGrad';

let installed = false;

/** Registers the kernel and makes it Relu's gradient on wasm (other backends keep tfjs' own). */
export function installReluGradient(kernels: InPlaceKernels): void {
  if (installed) return;
  installed = true;
  tf.registerKernel({ kernelName: RELU_GRAD, backendName: 'wasm', kernelFunc: elementwiseKernel(['dy', 'x'], kernels.relu_backward) });
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
