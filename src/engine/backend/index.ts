import * as os from 'node:os';
import { dirname, join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import type { BackendName } from '../config/types.js';
import { UserError } from '../errors.js';
import { installBatchNormGradient } from './batchnorm-gradient.js';
import { guardWasmHeap } from './heap.js';
import { machineKey, probeStepMs, readCachedChoice, writeCachedChoice } from './choose.js';

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
  /** Why the SIMD kernels are not in use, when kernels is 'stock'. */
  kernelsReason?: string;
  /** The SIMD kernels' threads work on the backend's heap itself (no operand copies). */
  sharedHeap?: boolean;
  /** Which build of PruneLens' kernels runs: 'relaxed' (relaxed SIMD: fused multiply-add) or 'plain' SIMD. */
  kernelBuild?: 'plain' | 'relaxed';
  /** Why a faster backend was not used, when 'auto' fell back. */
  fallbackReason?: string;
  /** Why this backend runs: named by the config, or picked by 'auto' from a measurement (made now or cached for this machine). */
  choice?: BackendChoice;
}

export interface BackendChoice {
  by: 'config' | 'measured' | 'cached';
  /** Median ms of one probe training step per backend that ran it (choose.ts), when 'auto' measured or read the cache. */
  stepMs?: Record<string, number>;
  /** Backends that could not run here, and why (tfjs-node not installed, a backend that failed to start). */
  unavailable?: Record<string, string>;
  /** The cache of measured choices it was read from or written to. */
  cacheFile?: string;
}

/** One line for logs and reports: which backend runs and why. */
export function describeBackendChoice(info: BackendInfo): string {
  const choice = info.choice;
  if (!choice || choice.by === 'config') return `Backend ${info.name}: set by the config.`;
  const times = Object.entries(choice.stepMs ?? {}).sort((a, b) => a[1] - b[1]).map(([name, ms]) => `${name} ${ms.toFixed(1)} ms`).join(', ');
  const missing = Object.entries(choice.unavailable ?? {}).map(([name, why]) => `${name}: ${why}`).join('; ');
  const how = choice.by === 'cached' ? `fastest when this machine was measured (${choice.cacheFile ?? 'cache'})` : 'fastest, measured now';
  return `Backend ${info.name}: ${how}; one probe training step took ${times}${missing ? ` (not available: ${missing})` : ''}.`;
}

/** Where 'auto' caches its measured choice for a session: beside the config, with PruneLens' other caches. */
export function backendCacheDir(configPath: string): string {
  return join(dirname(configPath), '.prunelens', 'cache');
}

let current: BackendInfo | undefined;
let currentPreference: BackendName | undefined;

interface WasmModule { getThreadsCount(): number }

function loadTfjsNode(): { ok: true; version?: string } | { ok: false; reason: string } {
  try {
    // Kept as a runtime require: it is an optional dependency that often cannot install.
    const node = require('@tensorflow/tfjs-node') as { version?: Record<string, string> };
    return { ok: true, version: node.version?.['tfjs-node'] };
  } catch (err) {
    const message = err instanceof Error ? err.message.split('\n')[0] : String(err);
    return { ok: false, reason: `@tensorflow/tfjs-node could not be loaded (${message})` };
  }
}

/** Whether tfjs-node failed to load because it is not installed: no package, or a package whose native binding never downloaded. */
export function tfjsNodeNotInstalled(reason: string): boolean {
  return /Cannot find module '@tensorflow\/tfjs-node'|tfjs_binding\.node\) can not be found/.test(reason);
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
 * 'auto': every backend that starts here (tfjs-node when it loads, wasm with PruneLens' kernels, cpu) runs one probe
 * training step and the fastest wins; with a cache folder the result is kept for this machine and a later session
 * starts the cached winner without measuring. A cached winner that no longer starts is measured afresh.
 */
async function chooseByMeasurement(cacheDir: string | undefined): Promise<BackendInfo> {
  const starters: Record<string, () => Promise<BackendInfo>> = {};
  const unavailable: Record<string, string> = {};
  const node = loadTfjsNode();
  if (node.ok) starters.tensorflow = useTensorflow;
  else unavailable.tensorflow = tfjsNodeNotInstalled(node.reason) ? 'tfjs-node not installed' : node.reason;
  starters.wasm = useWasm;
  starters.cpu = useCpu;
  const key = machineKey(node.ok ? node.version ?? 'installed' : undefined);
  const cached = cacheDir ? readCachedChoice(cacheDir, key) : undefined;
  if (cached && starters[cached.backend]) {
    try {
      const info = await starters[cached.backend]();
      return { ...info, choice: { by: 'cached', stepMs: cached.stepMs, unavailable, cacheFile: join(cacheDir!, 'backend.json') } };
    } catch { /* it no longer starts: measure again */ }
  }
  const started: Record<string, BackendInfo> = {};
  const stepMs: Record<string, number> = {};
  for (const [name, start] of Object.entries(starters)) {
    try {
      started[name] = await start();
      stepMs[name] = await probeStepMs(Math.min(...Object.values(stepMs)));
    } catch (err) {
      unavailable[name] = err instanceof Error ? err.message.split('\n')[0] : String(err);
    }
  }
  const [fastest] = Object.keys(stepMs).sort((a, b) => stepMs[a] - stepMs[b]);
  if (!fastest) throw new Error(`no backend could run a training step (${Object.entries(unavailable).map(([n, why]) => `${n}: ${why}`).join('; ')})`);
  if (!(await tf.setBackend(fastest))) throw new Error(`the ${fastest} backend failed to initialise`);
  await tf.ready();
  let cacheFile: string | undefined;
  try {
    cacheFile = cacheDir ? writeCachedChoice(cacheDir, key, { backend: fastest, stepMs, measuredAt: new Date().toISOString() }) : undefined;
  } catch {
    // A read-only folder or a full disk: the choice stands, measured again next time.
  }
  return { ...started[fastest], choice: { by: 'measured', stepMs, unavailable, cacheFile } };
}

/**
 * Initialises the tensor backend and returns the name of the backend in use. A named backend is used as named;
 * 'auto' measures which one is fastest here (chooseByMeasurement), cached per machine in `options.cacheDir`.
 * Calling it again is cheap.
 */
export async function initBackend(preference: BackendName = 'auto', options: { cacheDir?: string } = {}): Promise<string> {
  silenceCpuBanner();
  installBatchNormGradient();
  if (current && tf.getBackend() === current.name && (preference === currentPreference || preference === current.name)) {
    if (preference !== currentPreference) {
      current.choice = { by: 'config' };
      currentPreference = preference;
    }
    return current.name;
  }
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
      current = await chooseByMeasurement(options.cacheDir);
      const missing = Object.entries(current.choice?.unavailable ?? {});
      if (missing.length) current.fallbackReason = missing.map(([name, why]) => `${name}: ${why}`).join('; ');
      break;
    }
    default:
      throw new UserError(`unknown backend '${String(preference)}'`, { field: 'backend', fix: 'Use "auto", "tensorflow", "wasm" or "cpu"' });
  }
  if (preference !== 'auto') current.choice = { by: 'config' };
  currentPreference = preference;
  return current.name;
}

/** Describes the backend initialised by initBackend (or the active tfjs backend, before that). */
export function backendInfo(): BackendInfo {
  if (current && tf.getBackend() === current.name) return { ...current };
  return { name: tf.getBackend(), simd: false, threads: 1, patchedKernels: false };
}
