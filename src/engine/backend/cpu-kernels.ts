/**
 * Faster gradient kernels for tfjs-backend-cpu: its stock filter gradients read every
 * element through TensorBuffer.get, about 60× slower than its own forward convolution.
 */
import * as tf from '@tensorflow/tfjs';
import type { KernelFunc, TensorInfo } from '@tensorflow/tfjs';
import { convFilterGradient, depthwiseFilterGradient, depthwiseInputGradient } from './conv-loops.js';
import { convGeometry } from './wasm-kernels.js';

interface CpuBackend {
  data: { get(dataId: object): { values: ArrayLike<number> } };
  makeTensorInfo(shape: number[], dtype: string, values: Float32Array): TensorInfo;
}

const valuesOf = (be: CpuBackend, t: TensorInfo) => be.data.get(t.dataId).values;

const conv2dBackpropFilter: KernelFunc = ({ inputs, backend, attrs }) => {
  const be = backend as unknown as CpuBackend;
  const { x, dy } = inputs as { x: TensorInfo; dy: TensorInfo };
  const { strides, pad, dataFormat, dimRoundingMode, filterShape } = attrs as never as {
    strides: [number, number]; pad: 'same'; dataFormat: 'NHWC' | 'NCHW'; dimRoundingMode?: 'floor'; filterShape: number[] };
  const g = convGeometry(x.shape, filterShape, strides, 1, pad, dimRoundingMode, false, dataFormat);
  if (g.dataFormat !== 'channelsLast') throw new Error('Conv2DBackpropFilter: only channels-last (NHWC) data is supported');
  return be.makeTensorInfo(g.filterShape, 'float32', convFilterGradient(valuesOf(be, x), valuesOf(be, dy), g));
};

interface DepthwiseAttrs {
  strides: [number, number]; dilations: [number, number]; pad: 'same'; dimRoundingMode?: 'floor'; filterShape: number[]; inputShape: number[];
}

/** Depthwise dW (from x and dy; the filter's shape is an attribute) or dX (from dy and the filter; the input's shape is one). */
function depthwiseGradient(of: 'filter' | 'input'): KernelFunc {
  return ({ inputs, backend, attrs }) => {
    const be = backend as unknown as CpuBackend;
    const { x, dy, filter } = inputs as { x?: TensorInfo; dy: TensorInfo; filter?: TensorInfo };
    const a = attrs as never as DepthwiseAttrs;
    const [xShape, filterShape] = of === 'filter' ? [x!.shape, a.filterShape] : [a.inputShape, filter!.shape];
    const g = convGeometry(xShape, filterShape, a.strides, a.dilations ?? 1, a.pad, a.dimRoundingMode, true);
    return of === 'filter'
      ? be.makeTensorInfo(g.filterShape, 'float32', depthwiseFilterGradient(valuesOf(be, x!), valuesOf(be, dy), g))
      : be.makeTensorInfo(a.inputShape, 'float32', depthwiseInputGradient(valuesOf(be, dy), valuesOf(be, filter!), g));
  };
}

let cpuKernelsInstalled = false;

/** Replaces the cpu backend's filter-gradient kernels with typed-array loops (once per process). */
export function installCpuKernels(): void {
  if (cpuKernelsInstalled) return;
  cpuKernelsInstalled = true;
  const kernels: Array<[string, KernelFunc]> = [
    ['Conv2DBackpropFilter', conv2dBackpropFilter],
    ['DepthwiseConv2dNativeBackpropFilter', depthwiseGradient('filter')],
    ['DepthwiseConv2dNativeBackpropInput', depthwiseGradient('input')],
  ];
  for (const [kernelName, kernelFunc] of kernels) {
    if (tf.getKernel(kernelName, 'cpu')) tf.unregisterKernel(kernelName, 'cpu');
    tf.registerKernel({ kernelName, backendName: 'cpu', kernelFunc });
  }
}
