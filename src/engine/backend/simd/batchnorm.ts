/**
 * Training-mode batch normalisation as one kernel forward and one backward, working in place on
 * the wasm backend's heap. tf.layers computes it as tf.moments plus tf.batchNorm, about a dozen
 * full passes over the activation with their gradients; that was a third of a ResNet-20 step once
 * the convolutions were fast. BatchNormalization layers use it when training on wasm with the
 * channels last; everything else keeps tf.layers' own code.
 */
import * as tf from '@tensorflow/tfjs';
import type { KernelFunc, NamedAttrMap, Tensor, TensorInfo } from '@tensorflow/tfjs';
import { heapOffset as at, type HeapBackend, type InPlaceKernels } from './inplace.js';

export const BATCHNORM_TRAINING = 'PruneLensBatchNormTraining';
export const BATCHNORM_TRAINING_GRAD = 'PruneLensBatchNormTrainingGrad';

let installed = false;

/** Registers the kernels and routes BatchNormalization's training path to them. */
export function installTrainingBatchNorm(kernels: InPlaceKernels): void {
  if (installed) return;
  installed = true;

  const forward: KernelFunc = ({ inputs, backend: b, attrs }) => {
    const be = b as unknown as HeapBackend;
    const { x, gamma, beta } = inputs as { x: TensorInfo; gamma: TensorInfo; beta: TensorInfo };
    const channels = x.shape[x.shape.length - 1], rows = x.shape.reduce((a, d) => a * d, 1) / channels;
    const y = be.makeOutput(x.shape, 'float32'), mean = be.makeOutput([channels], 'float32'), variance = be.makeOutput([channels], 'float32');
    const temp = be.makeOutput([2 * channels], 'float32');
    kernels.batchnorm_forward(rows, channels, at(be, x), at(be, gamma), at(be, beta), at(be, y), at(be, mean), at(be, variance), at(be, temp),
      (attrs as { epsilon: number }).epsilon);
    be.disposeData(temp.dataId);
    return [y, mean, variance];
  };
  const backward: KernelFunc = ({ inputs, backend: b, attrs }) => {
    const be = b as unknown as HeapBackend;
    const { dy, x, gamma, mean, variance } = inputs as Record<string, TensorInfo>;
    const channels = x.shape[x.shape.length - 1], rows = x.shape.reduce((a, d) => a * d, 1) / channels;
    const dx = be.makeOutput(x.shape, 'float32'), dgamma = be.makeOutput([channels], 'float32'), dbeta = be.makeOutput([channels], 'float32');
    const temp = be.makeOutput([3 * channels], 'float32');
    kernels.batchnorm_backward(rows, channels, at(be, dy), at(be, x), at(be, gamma), at(be, mean), at(be, variance),
      at(be, dx), at(be, dgamma), at(be, dbeta), at(be, temp), (attrs as { epsilon: number }).epsilon);
    be.disposeData(temp.dataId);
    return [dx, dgamma, dbeta];
  };
  tf.registerKernel({ kernelName: BATCHNORM_TRAINING, backendName: 'wasm', kernelFunc: forward });
  tf.registerKernel({ kernelName: BATCHNORM_TRAINING_GRAD, backendName: 'wasm', kernelFunc: backward });
  tf.registerGradient({
    kernelName: BATCHNORM_TRAINING,
    inputsToSave: ['x', 'gamma'],
    outputsToSave: [false, true, true],
    gradFunc: (dys: Tensor | Tensor[], saved: Tensor[], attrs: NamedAttrMap) => {
      const dy = Array.isArray(dys) ? dys[0] : dys;
      const [x, gamma, mean, variance] = saved;
      const [dx, dgamma, dbeta] = tf.engine().runKernel(BATCHNORM_TRAINING_GRAD, { dy, x, gamma, mean, variance }, attrs) as Tensor[];
      return { x: () => dx, gamma: () => dgamma, beta: () => dbeta };
    },
  });
  routeBatchNormalization();
}

interface BatchNormLayer {
  axis: number; epsilon: number; momentum: number;
  gamma: { read(): Tensor } | null; beta: { read(): Tensor } | null;
  movingMean: { read(): Tensor; write(t: Tensor): void }; movingVariance: { read(): Tensor; write(t: Tensor): void };
}

/** The training path of tf.layers' BatchNormalization.call, with the moments and normalisation in one kernel. */
function routeBatchNormalization(): void {
  const registered = tf.serialization.SerializationMap.getMap().classNameMap.BatchNormalization;
  if (!registered) return;
  const prototype = (registered[0] as unknown as { prototype: { call(inputs: Tensor | Tensor[], kwargs: Record<string, unknown>): Tensor } }).prototype;
  const original = prototype.call;
  prototype.call = function (this: BatchNormLayer, inputs: Tensor | Tensor[], kwargs: Record<string, unknown>) {
    const input = Array.isArray(inputs) ? inputs[0] : inputs;
    const axis = this.axis >= 0 ? this.axis : this.axis + input.rank;
    if (!kwargs?.training || tf.getBackend() !== 'wasm' || !this.gamma || !this.beta || input.dtype !== 'float32' || axis !== input.rank - 1) {
      return original.call(this, inputs, kwargs);
    }
    return tf.tidy(() => {
      const [normed, mean, variance] = tf.engine().runKernel(BATCHNORM_TRAINING,
        { x: input, gamma: this.gamma!.read(), beta: this.beta!.read() }, { epsilon: this.epsilon }) as Tensor[];
      // Moving statistics exactly as tf.layers updates them.
      for (const [variable, value] of [[this.movingMean, mean], [this.movingVariance, variance]] as const) {
        tf.tidy(() => {
          const current = variable.read();
          variable.write(tf.sub(current, tf.mul(tf.sub(current, value), 1 - this.momentum)));
        });
      }
      return normed;
    });
  };
}
