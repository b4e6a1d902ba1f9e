/**
 * A pool of threads that run PruneLens' WebAssembly kernels over one shared memory.
 * The calling thread is thread 0 and takes its share of every job; the other threads are
 * worker_threads, each with its own instance of the same module on the same memory. A job is
 * handed over through a small control block in that memory (Atomics), not through messages,
 * so starting one costs microseconds.
 */
import { existsSync, readFileSync } from 'node:fs';
import * as os from 'node:os';
import { dirname, join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { HeapExhaustedError } from '../heap.js';
import { switches } from '../../util/switches.js';
import { runtimeHasRelaxedSimd } from '../../util/relaxed-simd.js';

/** The jobs kernels.c exports; every one is (args, thread, threads) => void. */
export const JOBS = [
  'conv2d_forward', 'conv2d_backprop_input', 'conv2d_backprop_filter', 'reduce_filter_partials', 'pack_matrix_panels', 'matmul',
  'winograd_filter', 'winograd_conv', 'winograd_filter_grad', 'winograd_filter_grad_finish',
  'moments_job', 'normalize_rows_job', 'gradient_sums_job', 'gradient_rows_job',
] as const;
export type Job = typeof JOBS[number];

const PAGE = 65536;
const MAX_PAGES = 65536; // 4 GiB, the most wasm32 can address
// Control block, in int32 slots.
const SEQ = 0, JOB = 1, ARGS = 2, THREADS = 3, QUIT = 4, DONE = 5, FAILED = 6, READY = 7;
// How long the first job waits for the worker threads to start before running on one thread.
const START_TIMEOUT_MS = 10_000;
const CONTROL_BYTES = 64;
// Shadow stack of each thread.
const STACK_BYTES = 65536;

const WORKER_SOURCE = `
const { workerData } = require('node:worker_threads');
const { module, memory, control, thread, jobs, stackTop } = workerData;
const c = new Int32Array(memory.buffer, control, 16);
const exports = new WebAssembly.Instance(module, { env: { memory } }).exports;
exports.__stack_pointer.value = stackTop;
let seen = 0;
Atomics.add(c, ${READY}, 1);
Atomics.notify(c, ${READY});
for (;;) {
  let seq = Atomics.load(c, ${SEQ});
  for (let spin = 0; seq === seen && spin < 20000; spin++) seq = Atomics.load(c, ${SEQ});
  while (seq === seen) { Atomics.wait(c, ${SEQ}, seen); seq = Atomics.load(c, ${SEQ}); }
  seen = seq;
  if (Atomics.load(c, ${QUIT})) break;
  const threads = Atomics.load(c, ${THREADS});
  if (thread < threads) {
    try { exports[jobs[Atomics.load(c, ${JOB})]](Atomics.load(c, ${ARGS}), thread, threads); }
    catch (err) { Atomics.store(c, ${FAILED}, 1); }
    Atomics.add(c, ${DONE}, 1);
    Atomics.notify(c, ${DONE});
  }
}
`;

/** Which compilation of kernels.c: plain SIMD, or relaxed SIMD (fused multiply-add), `-relaxed` in the file name. */
export type KernelBuild = 'plain' | 'relaxed';

/**
 * The build to load: relaxed where the runtime has relaxed SIMD, PRUNELENS_RELAXED_SIMD is not 0 and the
 * relaxed files were built (clang 16+), else plain.
 */
export function preferredKernelBuild(): KernelBuild {
  return switches().relaxedSimd && runtimeHasRelaxedSimd() && kernelsPath('simd', 'relaxed') ? 'relaxed' : 'plain';
}

/** Where the build put the kernels: dist/ beside the bundle, or the repository's dist/ when run from source. */
export function kernelsPath(variant: 'simd' | 'inplace', build: KernelBuild = 'plain'): string | undefined {
  const file = `prunelens-kernels-${variant}${build === 'relaxed' ? '-relaxed' : ''}.wasm`;
  let dir = __dirname;
  for (let i = 0; i < 6; i++) {
    for (const candidate of [join(dir, file), join(dir, 'dist', file)]) if (existsSync(candidate)) return candidate;
    const parent = dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  return undefined;
}

/** The wasm backend's heap, when it is a shared memory the pool's threads can work on directly. */
export interface SharedHeap {
  memory: WebAssembly.Memory;
  malloc(bytes: number): number;
}

export class KernelPool {
  threads: number;
  /** Whether the pool computes on the wasm backend's own (shared) heap rather than a memory of its own. */
  readonly sharesHeap: boolean;
  private readonly memory: WebAssembly.Memory;
  private readonly exports: Record<string, (args: number, thread: number, threads: number) => void>;
  private readonly control: Int32Array;
  private readonly workers: Worker[] = [];
  /** First byte of the pool's own memory its callers may use (unused on a shared heap). */
  readonly heapStart: number;

  constructor(module: WebAssembly.Module, threads: number, heap?: SharedHeap, readonly build: KernelBuild = 'plain') {
    this.sharesHeap = Boolean(heap);
    this.memory = heap?.memory ?? new WebAssembly.Memory({ initial: 64, maximum: MAX_PAGES, shared: true });
    const instance = new WebAssembly.Instance(module, { env: { memory: this.memory } });
    this.exports = instance.exports as never;
    this.threads = Math.max(1, threads);
    // The control block, then one shadow stack per thread: in the backend's heap when shared (the
    // module's own stack region would overlap the backend's data), else above the module's __heap_base.
    const blockBytes = CONTROL_BYTES + this.threads * STACK_BYTES;
    const heapBase = (instance.exports.__heap_base as WebAssembly.Global).value as number;
    const control = Math.ceil((heap ? heap.malloc(blockBytes + 64) : heapBase) / 64) * 64;
    this.control = new Int32Array(this.memory.buffer, control, 16);
    this.control.fill(0); // malloc'ed memory may hold old data
    const stacks = control + CONTROL_BYTES;
    this.heapStart = heap ? 0 : stacks + this.threads * STACK_BYTES;
    if (!heap) this.reserve(this.heapStart);
    (instance.exports.__stack_pointer as WebAssembly.Global).value = stacks + STACK_BYTES;
    for (let thread = 1; thread < this.threads; thread++) {
      const stackTop = stacks + (thread + 1) * STACK_BYTES;
      const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { module, memory: this.memory, control, thread, jobs: JOBS, stackTop } });
      worker.unref(); // idle kernel threads must not keep a finished CLI alive
      this.workers.push(worker);
    }
  }

  /** The module's exports on the calling thread (single-thread jobs that take their own arguments). */
  get direct(): Record<string, (...args: number[]) => void> {
    return this.exports as never;
  }

  /** Grows the memory so that [0, bytes) is addressable and returns a fresh float view of it. */
  reserve(bytes: number): Float32Array {
    if (this.sharesHeap) return this.floats();
    const have = this.memory.buffer.byteLength;
    if (bytes > have) {
      const pages = Math.ceil((bytes - have) / PAGE);
      if (have / PAGE + pages > MAX_PAGES) throw new HeapExhaustedError(bytes - have, have, MAX_PAGES * PAGE);
      this.memory.grow(pages);
    }
    return this.floats();
  }

  floats(): Float32Array {
    return new Float32Array(this.memory.buffer);
  }

  ints(): Int32Array {
    return new Int32Array(this.memory.buffer);
  }

  /** Runs one job on every thread and returns when all are done. */
  run(job: Job, args: number, threads = this.threads): void {
    const fn = this.exports[job];
    if (this.threads > 1 && !this.started) this.awaitWorkers();
    const n = Math.min(threads, this.threads);
    if (n === 1) {
      fn(args, 0, 1);
      return;
    }
    const c = this.control;
    Atomics.store(c, DONE, 0);
    Atomics.store(c, FAILED, 0);
    Atomics.store(c, JOB, JOBS.indexOf(job));
    Atomics.store(c, ARGS, args);
    Atomics.store(c, THREADS, n);
    Atomics.add(c, SEQ, 1);
    Atomics.notify(c, SEQ);
    let failure: unknown;
    try {
      fn(args, 0, n);
    } catch (err) {
      failure = err;
    }
    for (let spin = 0; ; spin++) {
      const done = Atomics.load(c, DONE);
      if (done >= n - 1) break;
      if (spin > 20000) Atomics.wait(c, DONE, done, 1);
    }
    if (failure) throw failure;
    if (Atomics.load(c, FAILED)) throw new Error(`kernel ${job} failed in a worker thread`);
  }

  private started = false;

  /** Waits (once) for every worker to instantiate the module; a pool whose workers do not start runs on one thread. */
  private awaitWorkers(): void {
    const deadline = Date.now() + START_TIMEOUT_MS;
    for (let ready = Atomics.load(this.control, READY); ready < this.workers.length; ready = Atomics.load(this.control, READY)) {
      const left = deadline - Date.now();
      if (left <= 0) {
        this.threads = 1;
        break;
      }
      Atomics.wait(this.control, READY, ready, left);
    }
    this.started = true;
  }

  dispose(): void {
    Atomics.store(this.control, QUIT, 1);
    Atomics.add(this.control, SEQ, 1);
    Atomics.notify(this.control, SEQ);
    for (const w of this.workers) void w.terminate();
    this.workers.length = 0;
  }
}

/** Cores to use: PRUNELENS_THREADS when set, else every core the process may run on. */
export function defaultThreads(): number {
  const threads = switches().threads;
  if (threads !== undefined) return threads;
  return typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
}

/**
 * Starts a pool, or returns why it cannot: kernels not built (no clang at build time),
 * no shared WebAssembly memory, or PRUNELENS_SIMD_KERNELS=0.
 */
export function startKernelPool(threads = defaultThreads(), heap?: SharedHeap): { pool: KernelPool } | { reason: string } {
  shared ??= createKernelPool(threads, heap);
  return shared;
}

let shared: { pool: KernelPool } | { reason: string } | undefined;

/** A pool of its own (tests compare thread counts and builds); startKernelPool shares one per process. */
export function createKernelPool(threads = defaultThreads(), heap?: SharedHeap, build = preferredKernelBuild()): { pool: KernelPool } | { reason: string } {
  if (!switches().simdKernels) return { reason: 'PRUNELENS_SIMD_KERNELS=0' };
  const path = kernelsPath('simd', build);
  if (!path) return { reason: `the ${build === 'relaxed' ? 'relaxed-SIMD' : 'SIMD'} kernels were not built (the build needs clang${build === 'relaxed' ? ' 16+' : ''} and lld)` };
  try {
    return { pool: new KernelPool(new WebAssembly.Module(new Uint8Array(readFileSync(path))), threads, heap, build) };
  } catch (err) {
    return { reason: `the SIMD kernels could not start (${err instanceof Error ? err.message : String(err)})` };
  }
}

/** The single-thread kernels that work in place on the wasm backend's heap, when built, and which build they are. */
export function loadInPlaceKernels(build = preferredKernelBuild()): { module: WebAssembly.Module; build: KernelBuild } | undefined {
  if (!switches().simdKernels) return undefined;
  const path = kernelsPath('inplace', build);
  return path ? { module: new WebAssembly.Module(new Uint8Array(readFileSync(path))), build } : undefined;
}
