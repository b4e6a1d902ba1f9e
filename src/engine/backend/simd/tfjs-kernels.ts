/**
 * Registers the kernel pool's convolutions and matrix products as the wasm backend's kernels for
 * Conv2D, FusedConv2D, both Conv2D backprops, BatchMatMul and _FusedMatMul, so every model and
 * every method trains on them without knowing. Operands are copied from the wasm backend's heap
 * into the pool's shared memory and the result back; a case the kernels do not cover (NCHW,
 * an activation other than linear/relu/relu6, an unusual bias) goes to the kernel registered before.
 */
import * as tf from '@tensorflow/tfjs';
import type { KernelFunc, TensorInfo } from '@tensorflow/tfjs';
import type { KernelPool } from './pool.js';

type Shape = number[];
type Pad = 'valid' | 'same' | number | [[number, number], [number, number], [number, number], [number, number]];

interface WasmBackend {
  typedArrayFromHeap(t: TensorInfo): Float32Array | Int32Array | Uint8Array;
  makeOutput(shape: Shape, dtype: string): TensorInfo;
}

interface ConvAttrs {
  strides: [number, number] | number; pad: Pad; dataFormat?: 'NHWC' | 'NCHW'; dilations?: [number, number] | number;
  dimRoundingMode?: 'floor' | 'round' | 'ceil'; activation?: string; inputShape?: Shape; filterShape?: Shape;
}

export const ACTIVATIONS: Record<string, number> = { linear: 0, relu: 1, relu6: 2 };
const CONV_INTS = 24;
// Work below this many multiply-adds runs on the calling thread alone: waking workers costs more.
const PARALLEL_MIN_MACS = 200_000;

const size = (shape: Shape) => shape.reduce((a, b) => a * b, 1);

/** Bump allocation in the pool's memory for one kernel call; offsets are bytes, 64-aligned. */
class Arena {
  private top: number;
  constructor(start: number) { this.top = start; }
  alloc(floats: number): number {
    const at = Math.ceil(this.top / 64) * 64;
    this.top = at + Math.max(1, floats) * 4;
    return at;
  }
  get end(): number { return this.top; }
}

function geometry(xShape: Shape, filterShape: Shape, attrs: ConvAttrs) {
  return tf.backend_util.computeConv2DInfo(xShape as [number, number, number, number], filterShape as [number, number, number, number],
    attrs.strides, attrs.dilations ?? 1, attrs.pad as never, attrs.dimRoundingMode, false,
    tf.backend_util.convertConv2DDataFormat(attrs.dataFormat ?? 'NHWC'));
}
type Geometry = ReturnType<typeof geometry>;

/** Pixels per packed tile: a multiple of the 6-row register tile, with the tile's patches near 96 KiB. */
function tileRows(k: number): number {
  return Math.max(6, Math.min(384, Math.floor(24576 / Math.max(1, k) / 6) * 6));
}

export class SimdKernels {
  constructor(private readonly pool: KernelPool) {}

  private threadsFor(macs: number): number {
    return macs < PARALLEL_MIN_MACS ? 1 : this.pool.threads;
  }

  private writeConv(ints: Int32Array, at: number, g: Geometry, fields: { x: number; filter: number; y: number; bias: number; activation: number; scratch: number; scratchBytes: number; tile: number; aux: number }): void {
    ints.set([g.batchSize, g.inHeight, g.inWidth, g.inChannels, g.outHeight, g.outWidth, g.outChannels, g.filterHeight, g.filterWidth,
      g.strideHeight, g.strideWidth, g.dilationHeight, g.dilationWidth, g.padInfo.top, g.padInfo.left,
      fields.x, fields.filter, fields.y, fields.bias, fields.activation, fields.scratch, fields.scratchBytes, fields.tile, fields.aux], at / 4);
  }

  conv2d(be: WasmBackend, x: TensorInfo, filter: TensorInfo, bias: TensorInfo | undefined, activation: number, g: Geometry): TensorInfo {
    const k = g.filterHeight * g.filterWidth * g.inChannels, pixels = g.batchSize * g.outHeight * g.outWidth;
    const threads = this.threadsFor(pixels * k * g.outChannels);
    const tile = tileRows(k);
    const arena = new Arena(this.pool.heapStart);
    const args = arena.alloc(CONV_INTS), xAt = arena.alloc(size(x.shape)), wAt = arena.alloc(size(filter.shape));
    const bAt = bias ? arena.alloc(g.outChannels) : 0, yAt = arena.alloc(pixels * g.outChannels);
    const scratchBytes = Math.ceil(tile * k * 4 / 64) * 64, scratch = arena.alloc(scratchBytes / 4 * threads);
    const mem = this.pool.reserve(arena.end);
    mem.set(be.typedArrayFromHeap(x) as Float32Array, xAt / 4);
    mem.set(be.typedArrayFromHeap(filter) as Float32Array, wAt / 4);
    if (bias) mem.set(be.typedArrayFromHeap(bias) as Float32Array, bAt / 4);
    this.writeConv(this.pool.ints(), args, g, { x: xAt, filter: wAt, y: yAt, bias: bAt, activation, scratch, scratchBytes, tile, aux: 0 });
    this.pool.run('conv2d_forward', args, threads);
    return this.output(be, [g.batchSize, g.outHeight, g.outWidth, g.outChannels], yAt);
  }

  conv2dBackpropInput(be: WasmBackend, dy: TensorInfo, filter: TensorInfo, g: Geometry): TensorInfo {
    const k = g.filterHeight * g.filterWidth * g.inChannels, pixels = g.batchSize * g.outHeight * g.outWidth;
    const threads = Math.min(this.threadsFor(pixels * k * g.outChannels), g.batchSize);
    const tile = tileRows(k);
    const arena = new Arena(this.pool.heapStart);
    const args = arena.alloc(CONV_INTS), tArgs = arena.alloc(4), dyAt = arena.alloc(size(dy.shape)), wAt = arena.alloc(size(filter.shape));
    const wtAt = arena.alloc(size(filter.shape)), dxAt = arena.alloc(g.batchSize * g.inHeight * g.inWidth * g.inChannels);
    const scratchBytes = Math.ceil(tile * k * 4 / 64) * 64, scratch = arena.alloc(scratchBytes / 4 * threads);
    const mem = this.pool.reserve(arena.end);
    mem.set(be.typedArrayFromHeap(dy) as Float32Array, dyAt / 4);
    mem.set(be.typedArrayFromHeap(filter) as Float32Array, wAt / 4);
    const ints = this.pool.ints();
    ints.set([k, g.outChannels, wAt, wtAt], tArgs / 4);
    this.writeConv(ints, args, g, { x: dyAt, filter: wAt, y: dxAt, bias: 0, activation: 0, scratch, scratchBytes, tile, aux: wtAt });
    this.pool.run('transpose', tArgs, 1);
    this.pool.run('conv2d_backprop_input', args, threads);
    return this.output(be, [g.batchSize, g.inHeight, g.inWidth, g.inChannels], dxAt);
  }

  conv2dBackpropFilter(be: WasmBackend, x: TensorInfo, dy: TensorInfo, g: Geometry): TensorInfo {
    const k = g.filterHeight * g.filterWidth * g.inChannels, co = g.outChannels, pixels = g.batchSize * g.outHeight * g.outWidth;
    const threads = this.threadsFor(pixels * k * co);
    const tile = tileRows(k);
    const arena = new Arena(this.pool.heapStart);
    const args = arena.alloc(CONV_INTS), rArgs = arena.alloc(5), xAt = arena.alloc(size(x.shape)), dyAt = arena.alloc(size(dy.shape));
    const partials = arena.alloc(threads * co * k), dwAt = arena.alloc(k * co);
    const scratchBytes = Math.ceil(tile * (k + co) * 4 / 64) * 64, scratch = arena.alloc(scratchBytes / 4 * threads);
    const mem = this.pool.reserve(arena.end);
    mem.set(be.typedArrayFromHeap(x) as Float32Array, xAt / 4);
    mem.set(be.typedArrayFromHeap(dy) as Float32Array, dyAt / 4);
    const ints = this.pool.ints();
    ints.set([k, co, partials, threads, dwAt], rArgs / 4);
    this.writeConv(ints, args, g, { x: xAt, filter: 0, y: dyAt, bias: 0, activation: 0, scratch, scratchBytes, tile, aux: partials });
    this.pool.run('conv2d_backprop_filter', args, threads);
    this.pool.run('reduce_filter_partials', rArgs, threads);
    return this.output(be, [g.filterHeight, g.filterWidth, g.inChannels, co], dwAt);
  }

  /** [batch, m, k] · [batch, k, n] with either operand transposed, batch 1 broadcast. */
  matmul(be: WasmBackend, a: TensorInfo, b: TensorInfo, transposeA: boolean, transposeB: boolean, bias: TensorInfo | undefined, activation: number): TensorInfo | undefined {
    const ra = a.shape.length, rb = b.shape.length;
    if (ra < 2 || rb < 2) return undefined;
    const m = transposeA ? a.shape[ra - 1] : a.shape[ra - 2], k = transposeA ? a.shape[ra - 2] : a.shape[ra - 1];
    const n = transposeB ? b.shape[rb - 2] : b.shape[rb - 1], kb = transposeB ? b.shape[rb - 1] : b.shape[rb - 2];
    const batchA = size(a.shape.slice(0, -2)), batchB = size(b.shape.slice(0, -2));
    if (k !== kb || (batchA !== batchB && batchA !== 1 && batchB !== 1)) return undefined;
    const batchShape = (batchA >= batchB ? a.shape : b.shape).slice(0, -2);
    if (batchA !== batchB && a.shape.length !== b.shape.length) return undefined;
    const batch = Math.max(batchA, batchB);
    const threads = this.threadsFor(batch * m * n * k);
    const arena = new Arena(this.pool.heapStart);
    const args = arena.alloc(11), tArgs = arena.alloc(4 * Math.max(batchA, batchB) * 2);
    const aRaw = arena.alloc(batchA * m * k), bRaw = arena.alloc(batchB * k * n);
    const aAt = transposeA ? arena.alloc(batchA * m * k) : aRaw, bAt = transposeB ? arena.alloc(batchB * k * n) : bRaw;
    const biasAt = bias ? arena.alloc(n) : 0, cAt = arena.alloc(batch * m * n);
    const mem = this.pool.reserve(arena.end);
    mem.set(be.typedArrayFromHeap(a) as Float32Array, aRaw / 4);
    mem.set(be.typedArrayFromHeap(b) as Float32Array, bRaw / 4);
    if (bias) mem.set(be.typedArrayFromHeap(bias) as Float32Array, biasAt / 4);
    const ints = this.pool.ints();
    let slot = tArgs;
    const transposeEach = (count: number, rows: number, cols: number, src: number, dst: number) => {
      for (let i = 0; i < count; i++, slot += 16) {
        ints.set([rows, cols, src + i * rows * cols * 4, dst + i * rows * cols * 4], slot / 4);
        this.pool.run('transpose', slot, 1);
      }
    };
    if (transposeA) transposeEach(batchA, k, m, aRaw, aAt);
    if (transposeB) transposeEach(batchB, n, k, bRaw, bAt);
    ints.set([batch, m, n, k, aAt, bAt, cAt, biasAt, activation, batchA === 1 ? 0 : m * k, batchB === 1 ? 0 : k * n], args / 4);
    this.pool.run('matmul', args, threads);
    return this.output(be, [...batchShape, m, n], cAt);
  }

  private output(be: WasmBackend, shape: Shape, at: number): TensorInfo {
    const out = be.makeOutput(shape, 'float32');
    const view = this.pool.floats().subarray(at / 4, at / 4 + size(shape));
    (be.typedArrayFromHeap(out) as Float32Array).set(view);
    return out;
  }
}

const isFloat = (...ts: (TensorInfo | undefined)[]) => ts.every((t) => !t || t.dtype === 'float32');

/** Wraps the kernel registered now for `name` on wasm; `fast` returns undefined to hand a case back to it. */
export function override(name: string, fast: (args: Parameters<KernelFunc>[0]) => TensorInfo | undefined): void {
  const previous = tf.getKernel(name, 'wasm');
  if (!previous) return;
  const fallback = previous.kernelFunc;
  tf.unregisterKernel(name, 'wasm');
  tf.registerKernel({
    kernelName: name, backendName: 'wasm', setupFunc: previous.setupFunc, disposeFunc: previous.disposeFunc,
    kernelFunc: (args) => fast(args) ?? fallback(args),
  });
}

let installed: SimdKernels | undefined;

/** Registers the pool's kernels over the wasm backend's (once per process). */
export function installSimdKernels(pool: KernelPool): SimdKernels {
  if (installed) return installed;
  const kernels = installed = new SimdKernels(pool);
  const convCase = (x: TensorInfo, filter: TensorInfo, attrs: ConvAttrs) =>
    (attrs.dataFormat ?? 'NHWC') === 'NHWC' && x.shape.length === 4 && filter.shape.length === 4;
  override('Conv2D', ({ inputs, backend, attrs }) => {
    const { x, filter } = inputs as { x: TensorInfo; filter: TensorInfo };
    const a = attrs as unknown as ConvAttrs;
    if (!isFloat(x, filter) || !convCase(x, filter, a)) return undefined;
    return kernels.conv2d(backend as never, x, filter, undefined, 0, geometry(x.shape, filter.shape, a));
  });
  override('FusedConv2D', ({ inputs, backend, attrs }) => {
    const { x, filter, bias, preluActivationWeights } = inputs as { x: TensorInfo; filter: TensorInfo; bias?: TensorInfo; preluActivationWeights?: TensorInfo };
    const a = attrs as unknown as ConvAttrs;
    const activation = ACTIVATIONS[a.activation ?? 'linear'];
    if (activation === undefined || preluActivationWeights || !isFloat(x, filter, bias) || !convCase(x, filter, a)) return undefined;
    if (bias && size(bias.shape) !== filter.shape[3]) return undefined;
    return kernels.conv2d(backend as never, x, filter, bias, activation, geometry(x.shape, filter.shape, a));
  });
  override('Conv2DBackpropInput', ({ inputs, backend, attrs }) => {
    const { dy, filter } = inputs as { dy: TensorInfo; filter: TensorInfo };
    const a = attrs as unknown as ConvAttrs;
    if (!isFloat(dy, filter) || !a.inputShape || (a.dataFormat ?? 'NHWC') !== 'NHWC') return undefined;
    return kernels.conv2dBackpropInput(backend as never, dy, filter, geometry(a.inputShape, filter.shape, a));
  });
  override('Conv2DBackpropFilter', ({ inputs, backend, attrs }) => {
    const { x, dy } = inputs as { x: TensorInfo; dy: TensorInfo };
    const a = attrs as unknown as ConvAttrs;
    if (!isFloat(x, dy) || !a.filterShape || (a.dataFormat ?? 'NHWC') !== 'NHWC') return undefined;
    return kernels.conv2dBackpropFilter(backend as never, x, dy, geometry(x.shape, a.filterShape, a));
  });
  override('BatchMatMul', ({ inputs, backend, attrs }) => {
    const { a, b } = inputs as { a: TensorInfo; b: TensorInfo };
    const { transposeA, transposeB } = attrs as { transposeA: boolean; transposeB: boolean };
    if (!isFloat(a, b)) return undefined;
    return kernels.matmul(backend as never, a, b, transposeA, transposeB, undefined, 0);
  });
  override('_FusedMatMul', ({ inputs, backend, attrs }) => {
    const { a, b, bias, preluActivationWeights } = inputs as { a: TensorInfo; b: TensorInfo; bias?: TensorInfo; preluActivationWeights?: TensorInfo };
    const { transposeA, transposeB, activation: name } = attrs as { transposeA: boolean; transposeB: boolean; activation?: string };
    const activation = ACTIVATIONS[name ?? 'linear'];
    if (activation === undefined || preluActivationWeights || !isFloat(a, b, bias)) return undefined;
    const n = transposeB ? b.shape[b.shape.length - 2] : b.shape[b.shape.length - 1];
    if (bias && size(bias.shape) !== n) return undefined;
    return kernels.matmul(backend as never, a, b, transposeA, transposeB, bias, activation);
  });
  return kernels;
}
