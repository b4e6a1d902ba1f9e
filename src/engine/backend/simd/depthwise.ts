/**
 * Depthwise convolution (channel multiplier 1) forward, fused bias/activation and both gradients
 * on the wasm backend, in place on its heap. Other multipliers and layouts keep the kernels
 * registered before (XNNPACK forward, typed-array gradients).
 */
import * as tf from '@tensorflow/tfjs';
import type { TensorInfo } from '@tensorflow/tfjs';
import { heapOffset as at, type HeapBackend, type InPlaceKernels } from './inplace.js';
import { ACTIVATIONS, override } from './tfjs-kernels.js';
import { argInts, writeArgs } from './kernel-args.js';

interface DepthwiseAttrs {
  strides: [number, number] | number; pad: 'valid' | 'same' | number; dilations?: [number, number] | number;
  dimRoundingMode?: 'floor' | 'round' | 'ceil'; dataFormat?: 'NHWC' | 'NCHW'; activation?: string; inputShape?: number[]; filterShape?: number[];
}

let installed = false;

export function installDepthwiseKernels(kernels: InPlaceKernels): void {
  if (installed) return;
  installed = true;
  const geometry = (xShape: number[], filterShape: number[], a: DepthwiseAttrs) =>
    tf.backend_util.computeConv2DInfo(xShape as [number, number, number, number], filterShape as [number, number, number, number],
      a.strides, a.dilations ?? 1, a.pad as never, a.dimRoundingMode, true);
  /** Runs `body` with the geometry written into a temporary int32 buffer on the heap. */
  const withGeometry = (be: HeapBackend, g: ReturnType<typeof geometry>, body: (geometry: number) => void) => {
    const info = be.makeOutput([argInts('Depthwise')], 'int32');
    writeArgs(be.typedArrayFromHeap(info) as Int32Array, 0, 'Depthwise', {
      n: g.batchSize, h: g.inHeight, w: g.inWidth, c: g.inChannels, ho: g.outHeight, wo: g.outWidth, kh: g.filterHeight, kw: g.filterWidth,
      sh: g.strideHeight, sw: g.strideWidth, dh: g.dilationHeight, dw: g.dilationWidth, padTop: g.padInfo.top, padLeft: g.padInfo.left,
    });
    try { body(at(be, info)); } finally { be.disposeData(info.dataId); }
  };
  const supported = (filterShape: number[] | undefined, a: DepthwiseAttrs, ...ts: (TensorInfo | undefined)[]) =>
    filterShape?.length === 4 && filterShape[3] === 1 && (a.dataFormat ?? 'NHWC') === 'NHWC' && ts.every((t) => !t || t.dtype === 'float32');

  const forward = (be: HeapBackend, x: TensorInfo, filter: TensorInfo, bias: TensorInfo | undefined, activation: number, a: DepthwiseAttrs) => {
    const g = geometry(x.shape, filter.shape, a);
    const y = be.makeOutput([g.batchSize, g.outHeight, g.outWidth, g.outChannels], 'float32');
    withGeometry(be, g, (geometryAt) =>
      kernels.depthwise_forward(geometryAt, at(be, x), at(be, filter), at(be, y), bias ? at(be, bias) : 0, activation));
    return y;
  };
  override('DepthwiseConv2dNative', ({ inputs, backend, attrs }) => {
    const { x, filter } = inputs as { x: TensorInfo; filter: TensorInfo };
    const a = attrs as unknown as DepthwiseAttrs;
    return supported(filter.shape, a, x, filter) ? forward(backend as never, x, filter, undefined, 0, a) : undefined;
  });
  override('FusedDepthwiseConv2D', ({ inputs, backend, attrs }) => {
    const { x, filter, bias, preluActivationWeights } = inputs as { x: TensorInfo; filter: TensorInfo; bias?: TensorInfo; preluActivationWeights?: TensorInfo };
    const a = attrs as unknown as DepthwiseAttrs;
    const activation = ACTIVATIONS[a.activation ?? 'linear'];
    if (activation === undefined || preluActivationWeights || !supported(filter.shape, a, x, filter, bias)) return undefined;
    if (bias && bias.shape.reduce((p, d) => p * d, 1) !== filter.shape[2]) return undefined;
    return forward(backend as never, x, filter, bias, activation, a);
  });
  override('DepthwiseConv2dNativeBackpropInput', ({ inputs, backend, attrs }) => {
    const { dy, filter } = inputs as { dy: TensorInfo; filter: TensorInfo };
    const a = attrs as unknown as DepthwiseAttrs;
    if (!a.inputShape || !supported(filter.shape, a, dy, filter)) return undefined;
    const be = backend as unknown as HeapBackend;
    const dx = be.makeOutput(a.inputShape, 'float32');
    withGeometry(be, geometry(a.inputShape, filter.shape, a), (geometryAt) => kernels.depthwise_backprop_input(geometryAt, at(be, dy), at(be, filter), at(be, dx)));
    return dx;
  });
  override('DepthwiseConv2dNativeBackpropFilter', ({ inputs, backend, attrs }) => {
    const { x, dy } = inputs as { x: TensorInfo; dy: TensorInfo };
    const a = attrs as unknown as DepthwiseAttrs;
    if (!supported(a.filterShape, a, x, dy)) return undefined;
    const be = backend as unknown as HeapBackend;
    const dw = be.makeOutput(a.filterShape!, 'float32');
    withGeometry(be, geometry(x.shape, a.filterShape!, a), (geometryAt) => kernels.depthwise_backprop_filter(geometryAt, at(be, x), at(be, dy), at(be, dw)));
    return dw;
  });
}
