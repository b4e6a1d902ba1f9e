/**
 * Gradient kernels that tfjs-backend-wasm 4.22 lacks (without them no conv net can train on it),
 * plus a faster Conv2DBackpropInput. The convolution gradients are rewritten as forward
 * convolutions so they run on XNNPACK; the rest are typed-array loops over the wasm heap.
 */
import * as tf from '@tensorflow/tfjs';
import type { KernelConfig, KernelFunc, NamedAttrMap, NamedTensorInfoMap, TensorInfo } from '@tensorflow/tfjs';
import { depthwiseFilterGradient, depthwiseInputGradient, maxPoolInputGradient, unsortedSegmentSum, type ConvGeometry, type PoolGeometry } from './conv-loops.js';

type Shape = number[];
type Pad = 'valid' | 'same' | number | [[number, number], [number, number], [number, number], [number, number]];

/** The parts of the wasm backend the kernels use. */
interface WasmBackend {
  incRef(dataId: object): void;
  typedArrayFromHeap(t: TensorInfo): Float32Array | Int32Array | Uint8Array;
  makeOutput(shape: Shape, dtype: string, memoryOffset?: number, values?: ArrayLike<number>): TensorInfo;
  disposeData(dataId: object): boolean;
}

const WASM = 'wasm';

function callKernel(name: string, backend: WasmBackend, inputs: NamedTensorInfoMap, attrs: NamedAttrMap): TensorInfo {
  const kernel = tf.getKernel(name, WASM);
  if (!kernel) throw new Error(`Kernel ${name} is not registered for the wasm backend`);
  return kernel.kernelFunc({ inputs, backend: backend as never, attrs }) as TensorInfo;
}

function disposeAll(backend: WasmBackend, infos: TensorInfo[]): void {
  for (const t of infos) backend.disposeData(t.dataId);
}

export function convGeometry(xShape: Shape, filterShape: Shape, strides: number | [number, number], dilations: number | [number, number],
  pad: Pad, dimRoundingMode: 'floor' | 'round' | 'ceil' | undefined, depthwise: boolean, dataFormat: 'NHWC' | 'NCHW' = 'NHWC'): ConvGeometry & { filterShape: Shape; dataFormat: string } {
  return tf.backend_util.computeConv2DInfo(xShape as [number, number, number, number], filterShape as [number, number, number, number],
    strides, dilations, pad as never, dimRoundingMode, depthwise, tf.backend_util.convertConv2DDataFormat(dataFormat)) as never;
}

/**
 * dW as a forward convolution: treat input channels as the batch and the batch as channels,
 * dilate by the stride and use dy as the filter: dW[r,s,i,o] = Σ_{b,y,x} x[b, y·s+r, x·s+s', i] · dy[b,y,x,o].
 */
const conv2dBackpropFilter: KernelFunc = ({ inputs, backend, attrs }) => {
  const be = backend as unknown as WasmBackend;
  const { x, dy } = inputs as { x: TensorInfo; dy: TensorInfo };
  const { strides, pad, dataFormat, dimRoundingMode, filterShape } = attrs as never as {
    strides: [number, number] | number; pad: Pad; dataFormat: 'NHWC' | 'NCHW'; dimRoundingMode?: 'floor'; filterShape: Shape };
  const g = convGeometry(x.shape, filterShape, strides, 1, pad, dimRoundingMode, false, dataFormat);
  if (g.dataFormat !== 'channelsLast') throw new Error('Conv2DBackpropFilter: only channels-last (NHWC) data is supported');
  const { inHeight: h, inWidth: w, outHeight: ho, outWidth: wo, filterHeight: kh, filterWidth: kw, strideHeight: sh, strideWidth: sw, padInfo } = g;
  const temps: TensorInfo[] = [];
  let xt = callKernel('Transpose', be, { x }, { perm: [3, 1, 2, 0] }); // [Ci,H,W,N]
  temps.push(xt);
  const needH = kh + (ho - 1) * sh, needW = kw + (wo - 1) * sw;
  const bottom = needH - h - padInfo.top, right = needW - w - padInfo.left;
  if (padInfo.top > 0 || padInfo.left > 0 || bottom > 0 || right > 0) {
    xt = callKernel('PadV2', be, { x: xt }, {
      paddings: [[0, 0], [padInfo.top, Math.max(0, bottom)], [padInfo.left, Math.max(0, right)], [0, 0]], constantValue: 0 } as never);
    temps.push(xt);
  }
  if (bottom < 0 || right < 0) {
    xt = callKernel('Slice', be, { x: xt }, { begin: [0, 0, 0, 0], size: [xt.shape[0], needH, needW, xt.shape[3]] });
    temps.push(xt);
  }
  const dyt = callKernel('Transpose', be, { x: dy }, { perm: [1, 2, 0, 3] }); // [Ho,Wo,N,Co]
  temps.push(dyt);
  const conv = callKernel('Conv2D', be, { x: xt, filter: dyt }, {
    strides: [1, 1], pad: 'valid', dilations: [sh, sw], dataFormat: 'NHWC', dimRoundingMode: undefined } as never); // [Ci,kh,kw,Co]
  temps.push(conv);
  const dw = callKernel('Transpose', be, { x: conv }, { perm: [1, 2, 0, 3] });
  disposeAll(be, temps);
  return dw;
};

/**
 * dX as a forward convolution of the zero-upsampled dy with the spatially flipped,
 * in/out-swapped filter. The stock wasm kernel is about 10× slower than forward conv.
 */
function conv2dBackpropInput(stock: KernelFunc): KernelFunc {
  return (args) => {
    const { inputs, backend, attrs } = args;
    const be = backend as unknown as WasmBackend;
    const { dy, filter } = inputs as { dy: TensorInfo; filter: TensorInfo };
    const { strides, pad, dataFormat, dimRoundingMode, inputShape } = attrs as never as {
      strides: [number, number] | number; pad: Pad; dataFormat: 'NHWC' | 'NCHW'; dimRoundingMode?: 'floor'; inputShape: Shape };
    const g = convGeometry(inputShape, filter.shape, strides, 1, pad, dimRoundingMode, false, dataFormat);
    if (g.dataFormat !== 'channelsLast') return stock(args);
    const { batchSize: n, inHeight: h, inWidth: w, outHeight: ho, outWidth: wo, outChannels: co,
      filterHeight: kh, filterWidth: kw, strideHeight: sh, strideWidth: sw, padInfo } = g;
    const padTop = kh - 1 - padInfo.top, padLeft = kw - 1 - padInfo.left;
    let upH = ho * sh, upW = wo * sw; // includes (stride-1) trailing zero rows/cols
    let padBottom = h + kh - 1 - upH - padTop, padRight = w + kw - 1 - upW - padLeft;
    // Negative bottom/right pads only ever cut trailing zeros of the upsampled dy (≤ stride-1 of them).
    if (padTop < 0 || padLeft < 0 || padBottom < -(sh - 1) || padRight < -(sw - 1)) return stock(args);
    const temps: TensorInfo[] = [];
    let d = dy;
    if (sh > 1 || sw > 1) {
      const r = callKernel('Reshape', be, { x: d }, { shape: [n, ho, 1, wo, 1, co] });
      const p = callKernel('PadV2', be, { x: r }, {
        paddings: [[0, 0], [0, 0], [0, sh - 1], [0, 0], [0, sw - 1], [0, 0]], constantValue: 0 } as never);
      d = callKernel('Reshape', be, { x: p }, { shape: [n, upH, upW, co] });
      temps.push(r, p, d);
      if (padBottom < 0 || padRight < 0) {
        upH += Math.min(0, padBottom);
        upW += Math.min(0, padRight);
        d = callKernel('Slice', be, { x: d }, { begin: [0, 0, 0, 0], size: [n, upH, upW, co] });
        temps.push(d);
        padBottom = Math.max(0, padBottom);
        padRight = Math.max(0, padRight);
      }
    }
    const flipped = callKernel('Reverse', be, { x: filter }, { dims: [0, 1] });
    const swapped = callKernel('Transpose', be, { x: flipped }, { perm: [0, 1, 3, 2] }); // [kh,kw,Co,Ci]
    temps.push(flipped, swapped);
    const dx = callKernel('Conv2D', be, { x: d, filter: swapped }, {
      strides: [1, 1], pad: [[0, 0], [padTop, padBottom], [padLeft, padRight], [0, 0]], dilations: [1, 1],
      dataFormat: 'NHWC', dimRoundingMode: undefined } as never);
    disposeAll(be, temps);
    return dx;
  };
}

const depthwiseBackpropFilter: KernelFunc = ({ inputs, backend, attrs }) => {
  const be = backend as unknown as WasmBackend;
  const { x, dy } = inputs as { x: TensorInfo; dy: TensorInfo };
  const { strides, dilations, pad, dimRoundingMode, filterShape } = attrs as never as {
    strides: [number, number]; dilations: [number, number]; pad: Pad; dimRoundingMode?: 'floor'; filterShape: Shape };
  const g = convGeometry(x.shape, filterShape, strides, dilations ?? 1, pad, dimRoundingMode, true);
  return be.makeOutput(g.filterShape, 'float32', undefined, depthwiseFilterGradient(be.typedArrayFromHeap(x), be.typedArrayFromHeap(dy), g));
};

const depthwiseBackpropInput: KernelFunc = ({ inputs, backend, attrs }) => {
  const be = backend as unknown as WasmBackend;
  const { dy, filter } = inputs as { dy: TensorInfo; filter: TensorInfo };
  const { strides, dilations, pad, dimRoundingMode, inputShape } = attrs as never as {
    strides: [number, number]; dilations: [number, number]; pad: Pad; dimRoundingMode?: 'floor'; inputShape: Shape };
  const g = convGeometry(inputShape, filter.shape, strides, dilations ?? 1, pad, dimRoundingMode, true);
  return be.makeOutput(inputShape, 'float32', undefined, depthwiseInputGradient(be.typedArrayFromHeap(dy), be.typedArrayFromHeap(filter), g));
};

/** Max-pool dX; the stock wasm kernel is slower and routes ties (common after ReLU) unlike TensorFlow and cpu. */
const maxPoolGrad: KernelFunc = ({ inputs, backend, attrs }) => {
  const be = backend as unknown as WasmBackend;
  const { dy, input } = inputs as { dy: TensorInfo; input: TensorInfo };
  const { filterSize, strides, pad, dimRoundingMode } = attrs as never as {
    filterSize: [number, number] | number; strides: [number, number] | number; pad: Pad; dimRoundingMode?: 'floor' };
  const g = tf.backend_util.computePool2DInfo(input.shape as [number, number, number, number], filterSize, strides, 1, pad as never, dimRoundingMode) as unknown as PoolGeometry;
  return be.makeOutput(input.shape, 'float32', undefined, maxPoolInputGradient(be.typedArrayFromHeap(input), be.typedArrayFromHeap(dy), g));
};

/**
 * Identity shares the buffer (reference-counted) instead of copying it, as the cpu backend does.
 * The gradient tape clones every tensor it saves, so the stock copy cost ~3% of a ResNet step.
 * The wasm backend records a shape per buffer and some kernels (FusedConv2D's bias check) read
 * that record, so a buffer first made under another shape (a reshape shares buffers) is copied:
 * the copy is how a weight assigned from a reshaped tensor gets its own, correct shape.
 */
function sharingIdentity(stock: KernelFunc): KernelFunc {
  return (args) => {
    const x = (args.inputs as { x: TensorInfo }).x;
    if (x.dtype === 'string') return stock(args);
    const backend = args.backend as unknown as WasmBackend & { dataIdMap: { get(id: object): { shape?: number[] } | undefined } };
    const recorded = backend.dataIdMap.get(x.dataId)?.shape;
    if (!recorded || recorded.length !== x.shape.length || recorded.some((d, i) => d !== x.shape[i])) return stock(args);
    backend.incRef(x.dataId);
    return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
  };
}

/**
 * The stock fused kernels check a bias's rank against the shape recorded for its buffer, not the
 * tensor's own shape; a bias that shares a buffer with a tensor of another shape (a reshape, a
 * weight written from one) is refused. Such a bias gets a buffer of its own before the stock kernel runs.
 */
function freshBias(stock: KernelFunc): KernelFunc {
  return (args) => {
    const inputs = args.inputs as { bias?: TensorInfo };
    const bias = inputs.bias;
    const backend = args.backend as unknown as WasmBackend & { dataIdMap: { get(id: object): { shape?: number[] } | undefined }; disposeData(id: object): void };
    if (!bias) return stock(args);
    const recorded = backend.dataIdMap.get(bias.dataId)?.shape;
    if (recorded && recorded.length === bias.shape.length) return stock(args);
    const copy = backend.makeOutput(bias.shape, bias.dtype, undefined, backend.typedArrayFromHeap(bias).slice());
    try {
      return stock({ ...args, inputs: { ...args.inputs, bias: copy } });
    } finally {
      backend.disposeData(copy.dataId);
    }
  };
}

/** The gradient of gather (embeddings, tf.gather in custom layers). */
const unsortedSegmentSumKernel: KernelFunc = ({ inputs, backend, attrs }) => {
  const be = backend as unknown as WasmBackend;
  const { x, segmentIds } = inputs as { x: TensorInfo; segmentIds: TensorInfo };
  const { numSegments } = attrs as { numSegments: number };
  const idCount = segmentIds.shape.reduce((a, b) => a * b, 1);
  const rest = x.shape.slice(segmentIds.shape.length);
  const inner = rest.reduce((a, b) => a * b, 1);
  const out = x.dtype === 'int32' ? new Int32Array(numSegments * inner) : new Float32Array(numSegments * inner);
  if (idCount > 0) unsortedSegmentSum(be.typedArrayFromHeap(x), be.typedArrayFromHeap(segmentIds), numSegments, inner, out);
  return be.makeOutput([numSegments, ...rest], x.dtype, undefined, out);
};

/** Runs a cpu kernel on copies of the data; for rarely used kernels (Einsum) where speed does not matter. */
function viaCpu(kernelName: string): KernelFunc | undefined {
  const cpuKernel = tf.getKernel(kernelName, 'cpu');
  if (!cpuKernel) return undefined;
  return ({ inputs, backend, attrs }) => {
    const be = backend as unknown as WasmBackend & { readSync(id: object): ArrayLike<number> };
    const cpu = tf.engine().findBackend('cpu') as unknown as {
      makeTensorInfo(shape: Shape, dtype: string, values: ArrayLike<number>): TensorInfo;
      readSync(id: object): ArrayLike<number>;
      disposeIntermediateTensorInfo(t: TensorInfo): void;
    };
    const cpuInputs: NamedTensorInfoMap = {};
    const temps: TensorInfo[] = [];
    for (const [k, t] of Object.entries(inputs)) {
      if (t == null) continue;
      const info = cpu.makeTensorInfo(t.shape, t.dtype, be.readSync(t.dataId));
      cpuInputs[k] = info;
      temps.push(info);
    }
    const out = cpuKernel.kernelFunc({ inputs: cpuInputs, backend: cpu as never, attrs });
    const outs = Array.isArray(out) ? out : [out];
    const results = outs.map((o) => {
      const r = be.makeOutput(o.shape, o.dtype, undefined, cpu.readSync(o.dataId));
      cpu.disposeIntermediateTensorInfo(o);
      return r;
    });
    for (const t of temps) cpu.disposeIntermediateTensorInfo(t);
    return Array.isArray(out) ? results : results[0];
  };
}

function register(config: KernelConfig): void {
  if (tf.getKernel(config.kernelName, config.backendName)) tf.unregisterKernel(config.kernelName, config.backendName);
  tf.registerKernel(config);
}

let wasmKernelsInstalled = false;

/** Registers PruneLens' gradient kernels for the wasm backend (once per process). */
export function installWasmKernels(): void {
  if (wasmKernelsInstalled) return;
  wasmKernelsInstalled = true;
  const stockBackpropInput = tf.getKernel('Conv2DBackpropInput', WASM);
  register({ kernelName: 'Conv2DBackpropFilter', backendName: WASM, kernelFunc: conv2dBackpropFilter });
  if (stockBackpropInput) register({ kernelName: 'Conv2DBackpropInput', backendName: WASM, kernelFunc: conv2dBackpropInput(stockBackpropInput.kernelFunc) });
  register({ kernelName: 'DepthwiseConv2dNativeBackpropFilter', backendName: WASM, kernelFunc: depthwiseBackpropFilter });
  register({ kernelName: 'DepthwiseConv2dNativeBackpropInput', backendName: WASM, kernelFunc: depthwiseBackpropInput });
  register({ kernelName: 'UnsortedSegmentSum', backendName: WASM, kernelFunc: unsortedSegmentSumKernel });
  register({ kernelName: 'MaxPoolGrad', backendName: WASM, kernelFunc: maxPoolGrad });
  for (const name of ['FusedConv2D', 'FusedDepthwiseConv2D', '_FusedMatMul']) {
    const stock = tf.getKernel(name, WASM);
    if (stock) register({ kernelName: name, backendName: WASM, kernelFunc: freshBias(stock.kernelFunc), setupFunc: stock.setupFunc });
  }
  const stockIdentity = tf.getKernel('Identity', WASM);
  if (stockIdentity) {
    const identity = sharingIdentity(stockIdentity.kernelFunc);
    register({ kernelName: 'Identity', backendName: WASM, kernelFunc: identity, setupFunc: stockIdentity.setupFunc });
    // A cast to the tensor's own dtype is an identity: Identity's gradient is one, on every residual Add.
    const stockCast = tf.getKernel('Cast', WASM);
    if (stockCast) {
      register({ kernelName: 'Cast', backendName: WASM, setupFunc: stockCast.setupFunc, kernelFunc: (args) =>
        (args.attrs as { dtype: string }).dtype === (args.inputs as { x: TensorInfo }).x.dtype ? identity(args) : stockCast.kernelFunc(args) });
    }
  }
  if (!tf.getKernel('Einsum', WASM)) {
    const einsum = viaCpu('Einsum');
    if (einsum) register({ kernelName: 'Einsum', backendName: WASM, kernelFunc: einsum });
  }
}
