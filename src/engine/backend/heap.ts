/**
 * Where tensors live and how much of it there is. tfjs' wasm backend keeps every tensor in one
 * WebAssembly heap. The heap may grow to 4 GiB, but the backend's JavaScript glue reads the
 * pointers malloc returns as signed 32-bit numbers: an allocation past 2 GiB comes back negative
 * and a later copy faults ("offset is out of bounds", "memory access out of bounds"). So 2 GiB is
 * the wasm backend's real limit, and an allocation beyond it is refused here, by name, instead.
 */
import * as os from 'node:os';
import * as tf from '@tensorflow/tfjs';
import { UserError } from '../errors.js';

export const WASM_HEAP_LIMIT_BYTES = 2 ** 31;
/** Bytes the guard lets tensors hold at once: WASM_HEAP_LIMIT_BYTES, lower only where a test makes memory scarce. */
let wasmHeapLimit = WASM_HEAP_LIMIT_BYTES;
/** Bytes the wasm backend's malloc has handed out and not had back, and the most since the last reset. */
let liveBytes = 0;
let peakLiveBytes = 0;

/** Makes the wasm heap refuse allocations once `bytes` are held (at most 2 GiB); for tests of running out. */
export function limitWasmHeap(bytes: number): void {
  wasmHeapLimit = Math.min(WASM_HEAP_LIMIT_BYTES, bytes);
}

/** Bytes allocated on the wasm heap now (0 on other backends). */
export function wasmHeapInUse(): number {
  return liveBytes;
}

/**
 * An allocation the tensor memory cannot hold: one line for the user, with what to lower. The
 * training loop rethrows it naming the model, its input size and the micro-batch.
 */
export class HeapExhaustedError extends UserError {
  /** The problem alone, without the fix. */
  readonly problem: string;

  constructor(readonly requestedBytes: number, readonly heapBytes: number, readonly limitBytes: number) {
    const problem = `the ${formatMiB(limitBytes)} tensor heap cannot hold ${formatMiB(requestedBytes)} more (it holds ${formatMiB(heapBytes)})`;
    super(`out of tensor memory: ${problem}`, {
      fix: 'Lower "batchSize" or set a smaller "microBatchSize" in "train" and "finetune" (and "calibrationSamples" for i-SpaSP), use smaller inputs, or "backend": "tensorflow" with @tensorflow/tfjs-node' });
    this.name = 'HeapExhaustedError';
    this.problem = problem;
  }
}

export function formatMiB(bytes: number): string {
  return bytes >= 2 ** 30 ? `${(bytes / 2 ** 30).toFixed(2)} GiB` : `${Math.ceil(bytes / 2 ** 20)} MiB`;
}

interface WasmModule {
  _malloc(bytes: number): number;
  _free(at: number): void;
  asm?: { memory?: WebAssembly.Memory };
}

function wasmModule(): WasmModule | undefined {
  if (tf.getBackend() !== 'wasm') return undefined;
  const module = (tf.backend() as unknown as { wasm?: WasmModule }).wasm;
  return module?.asm?.memory instanceof WebAssembly.Memory ? module : undefined;
}

const guarded = new Set<object>();

/**
 * Makes the wasm backend's malloc refuse, with HeapExhaustedError, what would land past the
 * heap's usable limit or fail outright (a null pointer), so no kernel ever sees a bad offset.
 */
export function guardWasmHeap(): void {
  const module = wasmModule();
  if (!module || guarded.has(module)) return;
  // Emscripten's exported _malloc replaces itself with the raw export on its first call: call it
  // once so the wrapper below is not overwritten.
  module._free(module._malloc(16));
  const malloc = module._malloc;
  const free = module._free;
  const memory = module.asm!.memory!;
  const sizes = new Map<number, number>();
  module._malloc = (bytes: number) => {
    const at = malloc(bytes);
    if (at <= 0 || at + bytes > WASM_HEAP_LIMIT_BYTES || liveBytes + bytes > wasmHeapLimit) {
      if (at > 0) free(at);
      throw new HeapExhaustedError(bytes, memory.buffer.byteLength, wasmHeapLimit);
    }
    sizes.set(at, bytes);
    liveBytes += bytes;
    peakLiveBytes = Math.max(peakLiveBytes, liveBytes);
    return at;
  };
  module._free = (at: number) => {
    liveBytes -= sizes.get(at) ?? 0;
    sizes.delete(at);
    free(at);
  };
  guarded.add(module);
}

/**
 * Bytes of tensor memory a session may plan to use: the wasm heap's limit, or on the other
 * backends (tensors in the process's own memory) half of the machine's memory.
 */
export function tensorMemoryLimit(): { bytes: number; where: string } {
  if (wasmModule()) return { bytes: wasmHeapLimit, where: 'the WebAssembly heap' };
  return { bytes: Math.floor(os.totalmem() / 2), where: 'half of the machine\'s memory' };
}

/** Bytes of tensor memory already taken when a plan is made (weights, optimizer state). */
export function tensorMemoryInUse(): number {
  return tf.memory().numBytes;
}

/**
 * The most memory tensors have needed since `resetPeakTensorMemory`: on wasm the most bytes the
 * heap held at once (its size, which only grows, also counts what the allocator set aside), else
 * the process's peak resident memory.
 */
export function peakTensorMemory(): { bytes: number; measure: 'wasm heap' | 'process peak RSS' } {
  if (wasmModule() && guarded.size > 0) return { bytes: peakLiveBytes, measure: 'wasm heap' };
  return { bytes: process.resourceUsage().maxRSS * 1024, measure: 'process peak RSS' };
}

/** Starts a new peak (a session's own) from what the wasm heap holds now. */
export function resetPeakTensorMemory(): void {
  peakLiveBytes = liveBytes;
}
