/**
 * The single-thread kernels that work in place on the wasm backend's own heap (batch norm,
 * depthwise convolution, ReLU's gradient, the SGD update): memory-bound work, where copying to the threads' shared memory
 * would cost more than the second core gains.
 */
import * as tf from '@tensorflow/tfjs';
import type { KernelFunc, TensorInfo } from '@tensorflow/tfjs';

export interface HeapBackend {
  makeOutput(shape: number[], dtype: string): TensorInfo;
  disposeData(dataId: object): void;
  typedArrayFromHeap(t: TensorInfo): Float32Array | Int32Array | Uint8Array;
  dataIdMap: { get(dataId: object): { memoryOffset: number } | undefined };
  wasm: { asm: { memory: WebAssembly.Memory }; _malloc(bytes: number): number; _free(at: number): void };
}

export interface InPlaceKernels {
  batchnorm_forward(rows: number, channels: number, x: number, gamma: number, beta: number, y: number, mean: number, variance: number,
    scale: number, relu: number, temp: number, epsilon: number): void;
  batchnorm_backward(rows: number, channels: number, dy: number, x: number, gamma: number, mean: number, variance: number,
    scale: number, beta: number, dx: number, dgamma: number, dbeta: number, temp: number, epsilon: number, cap: number): void;
  depthwise_forward(geometry: number, x: number, filter: number, y: number, bias: number, activation: number): void;
  depthwise_backprop_input(geometry: number, dy: number, filter: number, dx: number): void;
  depthwise_backprop_filter(geometry: number, x: number, dy: number, dfilter: number): void;
  relu_backward(n: number, dy: number, x: number, dx: number): void;
  clip_backward(n: number, dy: number, x: number, lo: number, hi: number, dx: number): void;
  add_relu(n: number, a: number, b: number, out: number): void;
  sgd_momentum(n: number, w: number, g: number, buffer: number, lr: number, momentum: number, decay: number, outW: number, outBuffer: number): void;
}

/** Byte offset of a tensor's data in the wasm backend's heap. */
export const heapOffset = (be: HeapBackend, t: TensorInfo): number => be.dataIdMap.get(t.dataId)!.memoryOffset;

/**
 * A kernel of one in-place pass `(elements, first, second, out)` over two float tensors of one
 * shape, named `inputs`, into a new tensor of that shape.
 */
export function elementwiseKernel(inputs: [string, string], pass: (elements: number, first: number, second: number, out: number) => void): KernelFunc {
  return ({ inputs: given, backend }) => {
    const be = backend as unknown as HeapBackend;
    const [first, second] = inputs.map((name) => (given as Record<string, TensorInfo>)[name]);
    const out = be.makeOutput(first.shape, 'float32');
    pass(first.shape.reduce((n, d) => n * d, 1), heapOffset(be, first), heapOffset(be, second), heapOffset(be, out));
    return out;
  };
}

/** Instantiates the module on the initialised wasm backend's memory; undefined when that memory is not reachable. */
export function instantiateOnHeap(module: WebAssembly.Module): InPlaceKernels | undefined {
  const backend = tf.findBackend('wasm') as unknown as HeapBackend | null;
  const memory = backend?.wasm?.asm?.memory;
  if (!backend || !(memory instanceof WebAssembly.Memory)) return undefined;
  return new WebAssembly.Instance(module, { env: { memory } }).exports as unknown as InPlaceKernels;
}
