import * as os from 'node:os';
import * as tf from '@tensorflow/tfjs';
import type { BackendName } from '../config/types.js';
import { UserError } from '../errors.js';
import { installBatchNormGradient } from './batchnorm-gradient.js';
import { guardWasmHeap } from './heap.js';

export interface BackendInfo {
  /** tfjs backend name: 'tensorflow', 'wasm' or 'cpu'. */
  name: string;
  /** WebAssembly SIMD in use (wasm only). */
  simd: boolean;
  /** Threads the backend computes with. */
  threads: number;
  /** PruneLens' own gradient kernels are registered for this backend. */
  patchedKernels: boolean;
  /**
   * Which kernels run convolutions, matrix products and training batch norm on wasm:
   * PruneLens' multithreaded SIMD kernels ('simd') or tfjs' own with PruneLens' gradients ('stock').
   */
  kernels?: 'simd' | 'stock';
  /** Which build of PruneLens' kernels runs: 'relaxed' (relaxed SIMD: fused multiply-add) or 'plain' SIMD. */
  kernelBuild?: 'plain' | 'relaxed';
  /** Why the SIMD kernels are not in use, when kernels is 'stock'. */
  kernelsReason?: string;
  /** The SIMD kernels' threads work on the backend's heap itself (no operand copies). */
  sharedHeap?: boolean;
  /** Why a faster backend was not used, when 'auto' fell back. */
  fallbackReason?: string;
}

let current: BackendInfo | undefined;
let currentPreference: BackendName | undefined;

interface WasmModule { getThreadsCount(): number }

function loadTfjsNode(): { ok: true } | { ok: false; reason: string } {
  try {
    // Kept as a runtime require: it is an optional dependency that often cannot install.
    require('@tensorflow/tfjs-node');
    return { ok: true };
  } catch (err) {
    const message = err instanceof Error ? err.message.split('\n')[0] : String(err);
    return { ok: false, reason: `@tensorflow/tfjs-node could not be loaded (${message})` };
  }
}

async function useTensorflow(): Promise<BackendInfo> {
  if (!(await tf.setBackend('tensorflow'))) throw new Error('the tensorflow backend failed to initialise');
  await tf.ready();
  return { name: 'tensorflow', simd: false, threads: os.cpus().length, patchedKernels: false };
}

async function useWasm(): Promise<BackendInfo> {
  // Loaded here, not at start-up: a command that runs no model (analyze) never pays for the wasm backend or its kernels.
  const [wasmModule, { installWasmKernels }, { withSharedHeap }, { installSimdPath }] = await Promise.all([
    import('@tensorflow/tfjs-backend-wasm'), import('./wasm-kernels.js'), import('./simd/shared-heap.js'), import('./simd/index.js')]);
  const wasm = ('getThreadsCount' in wasmModule ? wasmModule : (wasmModule as { default: unknown }).default) as WasmModule;
  installWasmKernels();
  await withSharedHeap(async () => {
    if (!(await tf.setBackend('wasm'))) throw new Error('the wasm backend failed to initialise');
  });
  await tf.ready();
  guardWasmHeap();
  const simd = Boolean(await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT'));
  const simdPath = installSimdPath();
  if ('reason' in simdPath) {
    return { name: 'wasm', simd, threads: wasm.getThreadsCount(), patchedKernels: true, kernels: 'stock', kernelsReason: simdPath.reason, kernelBuild: simdPath.build };
  }
  return { name: 'wasm', simd, threads: simdPath.threads, patchedKernels: true, kernels: 'simd', sharedHeap: simdPath.sharedHeap, kernelBuild: simdPath.build };
}

async function useCpu(): Promise<BackendInfo> {
  const { installCpuKernels } = await import('./cpu-kernels.js');
  installCpuKernels();
  if (!(await tf.setBackend('cpu'))) throw new Error('the cpu backend failed to initialise');
  await tf.ready();
  return { name: 'cpu', simd: false, threads: 1, patchedKernels: true };
}

/**
 * tfjs' cpu backend prints a three-line "install our node backend" banner on stderr when it
 * first stores a tensor in Node. PruneLens chooses and reports its backend itself, and the cpu
 * backend also runs the wasm backend's rare kernels, so the banner is silenced for every backend.
 */
function silenceCpuBanner(): void {
  const cpu = tf.findBackend('cpu') as unknown as { firstUse?: boolean } | null;
  if (cpu && 'firstUse' in cpu) cpu.firstUse = false;
}

/**
 * Initialises the tensor backend and returns the name of the backend in use.
 * 'auto' prefers tfjs-node, then WebAssembly (SIMD) with PruneLens' gradient kernels,
 * then the pure-JS cpu backend with a fast filter-gradient kernel. Calling it again is cheap.
 */
export async function initBackend(preference: BackendName = 'auto'): Promise<string> {
  silenceCpuBanner();
  installBatchNormGradient();
  if (current && tf.getBackend() === current.name && (preference === currentPreference || preference === current.name)) return current.name;
  switch (preference) {
    case 'tensorflow': {
      const loaded = loadTfjsNode();
      if (!loaded.ok) {
        throw new UserError(`the 'tensorflow' backend needs ${loaded.reason.replace(' could not be loaded', ', which could not be loaded')}`, {
          field: 'backend', fix: 'Install it with `npm install @tensorflow/tfjs-node`, or set "backend" to "auto"' });
      }
      current = await useTensorflow();
      break;
    }
    case 'wasm':
      try {
        current = await useWasm();
      } catch (err) {
        throw new UserError(`the 'wasm' backend could not start (${err instanceof Error ? err.message : String(err)})`, {
          field: 'backend', fix: 'Set "backend" to "cpu" or "auto"' });
      }
      break;
    case 'cpu':
      current = await useCpu();
      break;
    case 'auto': {
      const reasons: string[] = [];
      const node = loadTfjsNode();
      if (node.ok) {
        try { current = await useTensorflow(); break; } catch (err) { reasons.push(String(err)); }
      } else {
        reasons.push(node.reason);
      }
      try {
        current = await useWasm();
      } catch (err) {
        reasons.push(`wasm: ${err instanceof Error ? err.message : String(err)}`);
        current = await useCpu();
      }
      current.fallbackReason = reasons.join('; ');
      break;
    }
    default:
      throw new UserError(`unknown backend '${String(preference)}'`, { field: 'backend', fix: 'Use "auto", "tensorflow", "wasm" or "cpu"' });
  }
  currentPreference = preference;
  return current.name;
}

/** Describes the backend initialised by initBackend (or the active tfjs backend, before that). */
export function backendInfo(): BackendInfo {
  if (current && tf.getBackend() === current.name) return { ...current };
  return { name: tf.getBackend(), simd: false, threads: 1, patchedKernels: false };
}
