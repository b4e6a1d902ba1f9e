/**
 * Where one kernel call's operands, result and scratch live. With a shared heap the kernel threads
 * read and write tensors where they lie and scratch comes from the backend's allocator; otherwise
 * the pool has a memory of its own, operands are copied into it and the result back out.
 */
import type { TensorInfo } from '@tensorflow/tfjs';
import { heapOffset, type HeapBackend } from './inplace.js';
import type { KernelPool } from './pool.js';

export interface Workspace {
  /** Byte offset of a tensor's data for the kernels. */
  input(t: TensorInfo): number;
  /** Byte offset of the (single) float32 result of this shape. */
  output(shape: number[]): number;
  /** Byte offset of `floats` floats of scratch, 64-aligned. */
  alloc(floats: number): number;
  /** Makes every offset valid (inputs copied in where needed); a float view of the memory. */
  ready(): Float32Array;
  /** The result tensor; scratch is released. */
  finish(): TensorInfo;
  /** Releases everything after a failure. */
  abandon(): void;
}

const size = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

/** Copies operands into the pool's own memory: a bump arena from its heapStart, reused by every call. */
class CopyingWorkspace implements Workspace {
  private top: number;
  private readonly inputs: { t: TensorInfo; at: number }[] = [];
  private result?: { shape: number[]; at: number };

  constructor(private readonly pool: KernelPool, private readonly be: HeapBackend) {
    this.top = pool.heapStart;
  }

  alloc(floats: number): number {
    const at = Math.ceil(this.top / 64) * 64;
    this.top = at + Math.max(1, floats) * 4;
    return at;
  }

  input(t: TensorInfo): number {
    const at = this.alloc(size(t.shape));
    this.inputs.push({ t, at });
    return at;
  }

  output(shape: number[]): number {
    this.result = { shape, at: this.alloc(size(shape)) };
    return this.result.at;
  }

  ready(): Float32Array {
    const mem = this.pool.reserve(this.top);
    for (const { t, at } of this.inputs) mem.set(this.be.typedArrayFromHeap(t) as Float32Array, at / 4);
    return mem;
  }

  finish(): TensorInfo {
    const { shape, at } = this.result!;
    const out = this.be.makeOutput(shape, 'float32');
    (this.be.typedArrayFromHeap(out) as Float32Array).set(this.pool.floats().subarray(at / 4, at / 4 + size(shape)));
    return out;
  }

  abandon(): void {}
}

/** Scratch from the wasm backend's own allocator, 64-byte aligned, released together. */
export class HeapScratch {
  private readonly allocations: number[] = [];

  constructor(private readonly be: HeapBackend) {}

  /** Byte offset of `floats` floats. */
  alloc(floats: number): number {
    const raw = this.be.wasm._malloc(Math.max(1, floats) * 4 + 64);
    this.allocations.push(raw);
    return Math.ceil(raw / 64) * 64;
  }

  release(): void {
    for (const raw of this.allocations) this.be.wasm._free(raw);
    this.allocations.length = 0;
  }
}

/** Works on the backend's heap itself: inputs in place, the result made by the backend, scratch from its malloc. */
class SharedHeapWorkspace implements Workspace {
  private readonly scratch: HeapScratch;
  private result?: TensorInfo;

  constructor(private readonly pool: KernelPool, private readonly be: HeapBackend) {
    this.scratch = new HeapScratch(be);
  }

  input(t: TensorInfo): number {
    const at = heapOffset(this.be, t);
    const bytes = 4 * size(t.shape);
    // A bad offset would make the kernel threads read or write someone else's memory.
    if (!(at > 0 && at + bytes <= this.pool.floats().byteLength)) {
      throw new Error(`a kernel operand [${t.shape.join(', ')}] at byte ${at} lies outside the ${this.pool.floats().byteLength}-byte heap`);
    }
    return at;
  }

  output(shape: number[]): number {
    this.result = this.be.makeOutput(shape, 'float32');
    return this.input(this.result);
  }

  alloc(floats: number): number {
    return this.scratch.alloc(floats);
  }

  ready(): Float32Array {
    return this.pool.floats();
  }

  finish(): TensorInfo {
    this.scratch.release();
    return this.result!;
  }

  abandon(): void {
    this.scratch.release();
    if (this.result) this.be.disposeData(this.result.dataId);
  }
}

export function workspace(pool: KernelPool, be: HeapBackend): Workspace {
  return pool.sharesHeap ? new SharedHeapWorkspace(pool, be) : new CopyingWorkspace(pool, be);
}
