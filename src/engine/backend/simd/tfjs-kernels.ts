/**
 * Registers the kernel pool's convolutions and matrix products as the wasm backend's kernels for
 * Conv2D, FusedConv2D, both Conv2D backprops, BatchMatMul and _FusedMatMul, so every model and
 * every method trains on them without knowing. On a shared heap the kernels work on tensors where
 * they lie; otherwise operands are copied into the pool's memory and the result back (workspace.ts).
 * A case the kernels do not cover (NCHW, an activation other than linear/relu/relu6, an unusual
 * bias) goes to the kernel registered before.
 */
import * as tf from '@tensorflow/tfjs';
import type { KernelFunc, TensorInfo } from '@tensorflow/tfjs';
import type { KernelPool } from './pool.js';
import type { HeapBackend } from './inplace.js';
import { workspace, type Workspace } from './workspace.js';
import { switches } from '../../util/switches.js';
import { argInts, writeArgs, type KernelArgs } from './kernel-args.js';

type Shape = number[];
type Pad = 'valid' | 'same' | number | [[number, number], [number, number], [number, number], [number, number]];

interface ConvAttrs {
  strides: [number, number] | number; pad: Pad; dataFormat?: 'NHWC' | 'NCHW'; dilations?: [number, number] | number;
  dimRoundingMode?: 'floor' | 'round' | 'ceil'; activation?: string; inputShape?: Shape; filterShape?: Shape;
}

export const ACTIVATIONS: Record<string, number> = { linear: 0, relu: 1, relu6: 2 };

interface Panels { k: number; n: number; count: number; stride: number; at: number; args: number }
// Work below this many multiply-adds runs on the calling thread alone: waking workers costs more.
const PARALLEL_MIN_MACS = 200_000;

const size = (shape: Shape) => shape.reduce((a, b) => a * b, 1);

function geometry(xShape: Shape, filterShape: Shape, attrs: ConvAttrs) {
  return tf.backend_util.computeConv2DInfo(xShape as [number, number, number, number], filterShape as [number, number, number, number],
    attrs.strides, attrs.dilations ?? 1, attrs.pad as never, attrs.dimRoundingMode, false,
    tf.backend_util.convertConv2DDataFormat(attrs.dataFormat ?? 'NHWC'));
}
type Geometry = ReturnType<typeof geometry>;

/** Pixels per im2col tile: a multiple of the 4-row register tile, with the tile's patches near 96 KiB. */
function tileRows(k: number): number {
  return Math.max(4, Math.min(384, Math.floor(24576 / Math.max(1, k) / 4) * 4));
}

/** dW tiles are longer: each tile adds its product into the [K × co] partial, which costs a load and store of it. */
function filterTileRows(k: number): number {
  return Math.max(4, Math.min(512, Math.floor(65536 / Math.max(1, k) / 4) * 4));
}

/** A convolution's geometry as kernels.c's Conv holds it (dX runs as the forward convolution of dy). */
type ForwardGeometry = Pick<KernelArgs<'Conv'>, 'n' | 'h' | 'w' | 'ci' | 'ho' | 'wo' | 'co' | 'kh' | 'kw' | 'sh' | 'sw' | 'dh' | 'dw' | 'padTop' | 'padLeft'>;

/** A tfjs convolution's geometry in kernels.c's terms. */
export function forwardGeometry(g: Geometry): ForwardGeometry {
  return {
    n: g.batchSize, h: g.inHeight, w: g.inWidth, ci: g.inChannels, ho: g.outHeight, wo: g.outWidth, co: g.outChannels,
    kh: g.filterHeight, kw: g.filterWidth, sh: g.strideHeight, sw: g.strideWidth, dh: g.dilationHeight, dw: g.dilationWidth,
    padTop: g.padInfo.top, padLeft: g.padInfo.left,
  };
}

/**
 * Winograd F(4×4, 3×3) for 3×3, stride-1, undilated convolutions: 4× fewer multiplies. It measured
 * faster than im2col at every channel count tried, 1 to 64 (bench:conv), RGB and grey inputs included.
 * PRUNELENS_WINOGRAD=0 turns it off.
 */
export function useWinograd(g: ForwardGeometry): boolean {
  return switches().winograd && g.kh === 3 && g.kw === 3 && g.sh === 1 && g.sw === 1 && g.dh === 1 && g.dw === 1 &&
    g.ho >= 4 && g.wo >= 4;
}

/** Output tiles per Winograd chunk: the chunk's transformed input and products stay near 192 KiB. */
function winogradChunk(ci4: number, co4: number): number {
  return Math.max(4, Math.min(256, Math.floor(49152 / (36 * (ci4 + co4)) / 4) * 4));
}

/**
 * dW chunks are four times longer: each chunk's 36 GEMMs run along its tiles and add into the whole
 * [36 × ci × co] partial, so short chunks spend their time loading and storing it
 * (8×8×64: 1.18 → 0.90 ms, 16×16×32: 1.08 → 0.96 ms; no longer lost to cache conflicts, see WINOGRAD_PAD).
 */
function winogradFilterChunk(ci4: number, co4: number): number {
  return Math.min(256, 4 * winogradChunk(ci4, co4));
}

/** kernels.c's WINOGRAD_PAD: floats added between the 36 matrices of a Winograd transform. */
const WINOGRAD_PAD = 16;

/** Floats that pack_panels writes for a k × n matrix: panels of 8 columns, zero-padded. */
const panelFloats = (k: number, n: number) => Math.ceil(n / 8) * 8 * k;

export class SimdKernels {
  constructor(private readonly pool: KernelPool) {}

  private threadsFor(macs: number): number {
    return macs < PARALLEL_MIN_MACS ? 1 : this.pool.threads;
  }

  /** Runs one kernel call in a workspace, which is released whether it succeeds or throws. */
  private call(be: HeapBackend, body: (ws: Workspace) => void): TensorInfo {
    const ws = workspace(this.pool, be);
    try {
      body(ws);
      return ws.finish();
    } catch (err) {
      ws.abandon();
      throw err;
    }
  }

  private writeConvGeometry(at: number, g: ForwardGeometry, fields: Omit<KernelArgs<'Conv'>, keyof ForwardGeometry | 'next'>): void {
    writeArgs(this.pool.ints(), at, 'Conv', {
      n: g.n, h: g.h, w: g.w, ci: g.ci, ho: g.ho, wo: g.wo, co: g.co, kh: g.kh, kw: g.kw, sh: g.sh, sw: g.sw, dh: g.dh, dw: g.dw,
      padTop: g.padTop, padLeft: g.padLeft, ...fields, next: 0,
    });
  }

  /** Room for `count` k × n matrices packed into GEMM panels; fill it with pack() once the workspace is ready. */
  private panels(ws: Workspace, k: number, n: number, count = 1): Panels {
    const stride = panelFloats(k, n);
    return { k, n, count, stride, at: ws.alloc(stride * count), args: ws.alloc(argInts('PackPanelsArgs')) };
  }

  /** Packs matrices whose element (p, j) is at src + p·sp + j·sj floats, successive matrices srcStride floats apart. */
  private pack(panels: Panels, src: number, sp: number, sj: number, srcStride: number, threads: number): void {
    writeArgs(this.pool.ints(), panels.args, 'PackPanelsArgs',
      { src, k: panels.k, n: panels.n, sp, sj, dst: panels.at, batch: panels.count, srcStride, dstStride: panels.stride });
    this.pool.run('pack_matrix_panels', panels.args, threads);
  }

  /** Per-thread scratch of `floats` floats each, at a 64-byte stride. */
  private scratch(ws: Workspace, floats: number, threads: number): { scratch: number; scratchBytes: number } {
    const scratchBytes = Math.ceil(floats * 4 / 64) * 64;
    return { scratch: ws.alloc(scratchBytes / 4 * threads), scratchBytes };
  }

  conv2d(be: HeapBackend, x: TensorInfo, filter: TensorInfo, bias: TensorInfo | undefined, activation: number, g: Geometry): TensorInfo {
    return this.forward(be, x, forwardGeometry(g), filter, false, bias, activation);
  }

  conv2dBackpropInput(be: HeapBackend, dy: TensorInfo, filter: TensorInfo, g: Geometry): TensorInfo {
    const { filterHeight: kh, filterWidth: kw, inChannels: ci, outChannels: co, dilationHeight: dh, dilationWidth: dw } = g;
    const padTop = (kh - 1) * dh - g.padInfo.top, padLeft = (kw - 1) * dw - g.padInfo.left;
    // dX of a stride-1 convolution is a forward convolution of dy with the filter turned 180° and its
    // channels swapped, with pad (k−1)·d − pad: a gather (im2col or Winograd) and long GEMMs instead of
    // a short GEMM and a scatter-add. Strided (or 1×1, or over-padded) convolutions scatter.
    if (g.strideHeight !== 1 || g.strideWidth !== 1 || kh * kw === 1 || padTop < 0 || padLeft < 0) return this.scatterBackpropInput(be, dy, filter, g);
    return this.forward(be, dy, {
      n: g.batchSize, h: g.outHeight, w: g.outWidth, ci: co, ho: g.inHeight, wo: g.inWidth, co: ci, kh, kw, sh: 1, sw: 1, dh, dw, padTop, padLeft,
    }, filter, true, undefined, 0);
  }

  /**
   * y = conv(input, filter) (+ bias, activation) by Winograd or im2col. `turned`: the filter is the
   * [kh, kw, co, ci] filter of the convolution whose dX this is, used turned 180° with channels swapped.
   */
  private forward(be: HeapBackend, input: TensorInfo, g: ForwardGeometry, filter: TensorInfo, turned: boolean,
    bias: TensorInfo | undefined, activation: number): TensorInfo {
    return this.call(be, (ws) => {
      const winograd = useWinograd(g);
      const taps = g.kh * g.kw, k = taps * g.ci, pixels = g.n * g.ho * g.wo, ci4 = Math.ceil(g.ci / 4) * 4, co4 = Math.ceil(g.co / 4) * 4;
      const threads = this.threadsFor(pixels * k * g.co);
      const args = ws.alloc(argInts('Conv')), xAt = ws.input(input), bAt = bias ? ws.input(bias) : 0, yAt = ws.output([g.n, g.ho, g.wo, g.co]);
      // Winograd: 36 transformed filters [ci4 × co4] written straight into GEMM panels, turned on the way
      // when asked. im2col: the filter [K × co] packed as it stands (a turned one is turned first).
      const fArgs = winograd ? ws.alloc(argInts('WinogradFilterArgs')) : 0, wAt = turned && !winograd ? ws.alloc(taps * g.ci * g.co) : ws.input(filter);
      const packed = winograd ? undefined : this.panels(ws, k, g.co), panels = packed?.at ?? ws.alloc(36 * (panelFloats(ci4, co4) + WINOGRAD_PAD));
      const tile = winograd ? winogradChunk(ci4, co4) : tileRows(k);
      const { scratch, scratchBytes } = this.scratch(ws, winograd ? 36 * (tile * (ci4 + co4) + 2 * WINOGRAD_PAD) : tile * k, threads);
      const mem = ws.ready();
      // The filter's own work is small: it runs on the calling thread, without waking the others.
      if (packed) {
        if (turned) {
          // turned[tap, o, c] = W[taps − 1 − tap, c, o]: reversing the flat tap index turns both axes.
          const w = be.typedArrayFromHeap(filter) as Float32Array, at = wAt / 4, { ci: co, co: ci } = g;
          for (let tap = 0; tap < taps; tap++) {
            const from = (taps - 1 - tap) * ci * co, to = at + tap * co * ci;
            for (let c = 0; c < ci; c++) for (let o = 0; o < co; o++) mem[to + o * ci + c] = w[from + c * co + o];
          }
        }
        this.pack(packed, wAt, g.co, 1, 0, 1);
      } else {
        writeArgs(this.pool.ints(), fArgs, 'WinogradFilterArgs', { filter: wAt, ci: g.ci, co: g.co, panels, turned: turned ? 1 : 0 });
        this.pool.run('winograd_filter', fArgs, 1);
      }
      this.writeConvGeometry(args, g, { x: xAt, y: yAt, bias: bAt, activation, scratch, scratchBytes, tile, aux: panels });
      this.pool.run(winograd ? 'winograd_conv' : 'conv2d_forward', args, threads);
    });
  }

  /** dX as dy·Wᵀ per pixel, scattered back onto the input (col2im): any stride. */
  private scatterBackpropInput(be: HeapBackend, dy: TensorInfo, filter: TensorInfo, g: Geometry): TensorInfo {
    return this.call(be, (ws) => {
      const k = g.filterHeight * g.filterWidth * g.inChannels, co = g.outChannels, pixels = g.batchSize * g.outHeight * g.outWidth;
      const threads = Math.min(this.threadsFor(pixels * k * co), g.batchSize);
      const tile = tileRows(k);
      const args = ws.alloc(argInts('Conv')), dyAt = ws.input(dy), wAt = ws.input(filter);
      const panels = this.panels(ws, co, k), dxAt = ws.output([g.batchSize, g.inHeight, g.inWidth, g.inChannels]);
      const { scratch, scratchBytes } = this.scratch(ws, tile * k, threads);
      ws.ready();
      // B = Wᵀ [co × K]: element (o, j) is W[j·co + o].
      this.pack(panels, wAt, 1, co, 0, threads);
      this.writeConvGeometry(args, forwardGeometry(g), { x: dyAt, y: dxAt, bias: 0, activation: 0, scratch, scratchBytes, tile, aux: panels.at });
      this.pool.run('conv2d_backprop_input', args, threads);
    });
  }

  conv2dBackpropFilter(be: HeapBackend, x: TensorInfo, dy: TensorInfo, g: Geometry): TensorInfo {
    const fg = forwardGeometry(g);
    return useWinograd(fg) ? this.winogradBackpropFilter(be, x, dy, fg) : this.im2colBackpropFilter(be, x, dy, fg);
  }

  /** dW of a Winograd-eligible convolution: see winograd_filter_grad in kernels.c. */
  private winogradBackpropFilter(be: HeapBackend, x: TensorInfo, dy: TensorInfo, g: ForwardGeometry): TensorInfo {
    return this.call(be, (ws) => {
      const ci4 = Math.ceil(g.ci / 4) * 4, co4 = Math.ceil(g.co / 4) * 4, cols = Math.ceil(co4 / 8) * 8;
      const threads = this.threadsFor(g.n * g.ho * g.wo * 9 * g.ci * g.co);
      const tile = winogradFilterChunk(ci4, cols);
      const args = ws.alloc(argInts('Conv')), fArgs = ws.alloc(argInts('WinogradFinishArgs')), xAt = ws.input(x), dyAt = ws.input(dy);
      const partials = ws.alloc(threads * 36 * (ci4 * co4 + WINOGRAD_PAD)), dwAt = ws.output([3, 3, g.ci, g.co]);
      const { scratch, scratchBytes } = this.scratch(ws, 36 * (tile * (ci4 + cols) + 2 * WINOGRAD_PAD), threads);
      ws.ready();
      writeArgs(this.pool.ints(), fArgs, 'WinogradFinishArgs', { partials, count: threads, ci: g.ci, co: g.co, dw: dwAt });
      this.writeConvGeometry(args, g, { x: xAt, y: dyAt, bias: 0, activation: 0, scratch, scratchBytes, tile, aux: partials });
      this.pool.run('winograd_filter_grad', args, threads);
      this.pool.run('winograd_filter_grad_finish', fArgs, threads);
    });
  }

  private im2colBackpropFilter(be: HeapBackend, x: TensorInfo, dy: TensorInfo, g: ForwardGeometry): TensorInfo {
    return this.call(be, (ws) => {
      const k = g.kh * g.kw * g.ci, co = g.co, pixels = g.n * g.ho * g.wo;
      const threads = this.threadsFor(pixels * k * co);
      const tile = filterTileRows(k);
      const args = ws.alloc(argInts('Conv')), rArgs = ws.alloc(argInts('ReduceFilterArgs')), xAt = ws.input(x), dyAt = ws.input(dy);
      const partials = ws.alloc(threads * k * co), dwAt = ws.output([g.kh, g.kw, g.ci, co]);
      // Per thread: the tile's patches, then its dy packed into panels.
      const { scratch, scratchBytes } = this.scratch(ws, tile * k + panelFloats(tile, co), threads);
      ws.ready();
      writeArgs(this.pool.ints(), rArgs, 'ReduceFilterArgs', { floats: k * co, partials, count: threads, dw: dwAt });
      this.writeConvGeometry(args, g, { x: xAt, y: dyAt, bias: 0, activation: 0, scratch, scratchBytes, tile, aux: partials });
      this.pool.run('conv2d_backprop_filter', args, threads);
      this.pool.run('reduce_filter_partials', rArgs, threads);
    });
  }

  /** [batch, m, k] · [batch, k, n] with either operand transposed, batch 1 broadcast. */
  matmul(be: HeapBackend, a: TensorInfo, b: TensorInfo, transposeA: boolean, transposeB: boolean, bias: TensorInfo | undefined, activation: number): TensorInfo | undefined {
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
    return this.call(be, (ws) => {
      const args = ws.alloc(argInts('MatmulArgs')), aAt = ws.input(a), bAt = ws.input(b);
      const panels = this.panels(ws, k, n, batchB), biasAt = bias ? ws.input(bias) : 0, cAt = ws.output([...batchShape, m, n]);
      ws.ready();
      // Transposes are strides: B's element (p, j) and A's element (i, p).
      this.pack(panels, bAt, transposeB ? 1 : n, transposeB ? k : 1, k * n, threads);
      const [rs, ks] = transposeA ? [1, m] : [k, 1];
      writeArgs(this.pool.ints(), args, 'MatmulArgs', {
        batch, m, n, k, a: aAt, panels: panels.at, c: cAt, bias: biasAt, activation,
        aStride: batchA === 1 ? 0 : m * k, panelStride: batchB === 1 ? 0 : panels.stride, rs, ks, next: 0,
      });
      this.pool.run('matmul', args, threads);
    });
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
