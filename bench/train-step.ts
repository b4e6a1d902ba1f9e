/**
 * Training-step time (forward + backward + SGD-momentum update, through PruneLens' trainModel) of a
 * CIFAR-style ResNet-20 at batch 64 on 32×32×3 synthetic input, on every available backend, in one run:
 *   npm run bench:train [-- --steps N] [-- --pairs P] [-- --skip-cpu]
 * Each backend runs in a child process of its own (kernel registrations are per process). The same
 * run measures the machine's SGEMM peak (OpenBLAS through numpy, when a python3 has it) and that of
 * PruneLens' wasm kernels, and times the same network in PyTorch when python3-torch is installed.
 * Prints one `train resnet20 …` line per backend and writes bench/results/train-step.json.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { backendInfo, initBackend } from '../src/engine/backend/index.js';
import { startKernelPool } from '../src/engine/backend/simd/pool.js';
import { SimdKernels } from '../src/engine/backend/simd/tfjs-kernels.js';
import { loadDataset } from '../src/engine/data/index.js';
import { encodeNpy } from '../src/engine/data/npy.js';
import type { Dataset } from '../src/engine/train/types.js';
import { countCost } from '../src/engine/metrics/index.js';
import { trainModel } from '../src/engine/train/index.js';
import type { BackendName } from '../src/engine/config/types.js';
import { buildResNet20 } from './resnet20.js';

const BATCH = 64;
const arg = (name: string, fallback: number) => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
};
const median = (values: number[]) => {
  const s = [...values].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

interface Config {
  name: string; backend: BackendName; env: Record<string, string>; warmup: number; steps: number;
  /** Run each step when the parent says so (a "go" line on stdin) and report it (a "STEP ms" line): see lockstep(). */
  lockstep?: boolean;
}

interface Result {
  name: string;
  status: 'ok' | 'not installed' | 'failed';
  detail?: string;
  kernels?: string;
  threads?: number;
  stepMs?: number[];
  medianMs?: number;
  imagesPerSecond?: number;
  effectiveGflops?: number;
  /** tf.memory().numTensors after each measured step: constant when nothing leaks. */
  tensorsAfterStep?: number[];
  peakTensorBytes?: number;
  peakRssMiB?: number;
}

/**
 * CIFAR-shaped data as a user has it: float32 images and labels in .npy files (PruneLens' synthetic
 * patterns, written once), so a step's batch is assembled from memory as from any dataset on disk,
 * not generated: PyTorch's side times a fixed tensor.
 */
async function npyDataset(samples: number): Promise<Dataset> {
  const model = { inputShape: [32, 32, 3], classes: 10 };
  const synthetic = await loadDataset({ format: 'synthetic', samples, classes: 10, validationSplit: 0 }, process.cwd(), model, 1);
  const x = new Float32Array(samples * 32 * 32 * 3), y = new Int32Array(samples);
  let at = 0;
  for await (const batch of synthetic.trainBatches(BATCH, 0)) {
    x.set(batch.x.dataSync(), at * 3072);
    y.set(batch.y![0].dataSync(), at);
    at += batch.x.shape[0];
    tf.dispose([batch.x, ...batch.y!]);
  }
  const dir = mkdtempSync(join(os.tmpdir(), 'prunelens-bench-'));
  writeFileSync(join(dir, 'x.npy'), encodeNpy(x, [samples, 32, 32, 3]));
  writeFileSync(join(dir, 'y.npy'), encodeNpy(y, [samples]));
  try {
    return await loadDataset({ format: 'npy', x: 'x.npy', y: 'y.npy', validationSplit: 0 }, dir, model, 1);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Child: trains the network on one backend and prints a JSON result as its last line. */
async function child(config: Config): Promise<Result> {
  try {
    await initBackend(config.backend);
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    return { name: config.name, status: /tfjs-node/.test(message) ? 'not installed' : 'failed', detail: message };
  }
  const info = backendInfo();
  const model = buildResNet20();
  // A multiply-add is 2 FLOPs; a training step does the forward pass, dX and dW: 3× the forward FLOPs.
  const stepFlops = 3 * countCost(model).flops * BATCH;
  const data = await npyDataset(BATCH * (config.warmup + config.steps));
  const stamps: number[] = [], tensors: number[] = [];
  let peakBytes = 0;
  let last = performance.now();
  // In lockstep a step's time runs from its "go" to its end, and the wait for the next "go" is not counted.
  const lines = config.lockstep ? createInterface({ input: process.stdin })[Symbol.asyncIterator]() : undefined;
  const go = async () => { await lines?.next(); last = performance.now(); };
  let stepMs = 0;
  const hooks = lines ? {
    afterStep: async () => {
      stepMs = performance.now() - last;
      process.stdout.write(`STEP ${stepMs.toFixed(2)}\n`);
      await go();
    },
  } : {};
  await go();
  await trainModel(model, data, { epochs: 1, batchSize: BATCH, learningRate: 0.05, momentum: 0.9, weightDecay: 5e-4, optimizer: 'sgd', schedule: 'constant' }, hooks, {
    seed: 1,
    onStep: () => {
      const now = performance.now();
      stamps.push(lines ? stepMs : now - last);
      if (!lines) last = now;
      const m = tf.memory();
      tensors.push(m.numTensors);
      peakBytes = Math.max(peakBytes, m.numBytes);
      process.stderr.write(`  ${config.name}: step ${stamps.length}/${config.warmup + config.steps} ${stamps[stamps.length - 1].toFixed(0)} ms\n`);
    },
  });
  model.dispose();
  const measured = stamps.slice(config.warmup);
  const med = median(measured);
  return {
    name: config.name, status: 'ok', kernels: info.name === 'wasm' ? info.kernels : undefined, threads: info.threads,
    stepMs: measured.map((v) => +v.toFixed(1)), medianMs: +med.toFixed(1), imagesPerSecond: +(BATCH / med * 1000).toFixed(1),
    effectiveGflops: +(stepFlops / (med / 1000) / 1e9).toFixed(1), tensorsAfterStep: tensors.slice(config.warmup),
    peakTensorBytes: peakBytes, peakRssMiB: +(process.resourceUsage().maxRSS / 1024).toFixed(0),
  };
}

/** GFLOP/s of PruneLens' wasm GEMM on every core: a 1024×1024 by 1024×1024 product, best of 5. */
async function wasmSgemmPeak(): Promise<{ gflops: number; threads: number } | undefined> {
  await initBackend('wasm');
  const started = startKernelPool();
  if (!('pool' in started)) return undefined;
  const kernels = new SimdKernels(started.pool);
  const a = tf.randomNormal([1024, 1024]), b = tf.randomNormal([1024, 1024]);
  let best = Infinity;
  for (let i = 0; i < 5; i++) {
    const t = performance.now();
    const c = kernels.matmul(tf.backend() as never, a, b, false, false, undefined, 0)!;
    best = Math.min(best, performance.now() - t);
    tf.backend().disposeData(c.dataId);
  }
  tf.dispose([a, b]);
  return { gflops: +(2 * 1024 ** 3 / (best / 1000) / 1e9).toFixed(1), threads: started.pool.threads };
}

/** The first python3 that imports `module`. */
function python(module: string): string | undefined {
  for (const candidate of ['/usr/bin/python3', 'python3']) {
    if (spawnSync(candidate, ['-c', `import ${module}`], { stdio: 'ignore' }).status === 0) return candidate;
  }
  return undefined;
}

/** SGEMM peak of every python3 with numpy (Debian's, a user's), best first: numpy calls its BLAS, usually OpenBLAS. */
function numpySgemmPeak(): { gflops: number; library: string } | undefined {
  const script = [
    'import numpy as np, time',
    'a = np.random.rand(2048, 2048).astype(np.float32); b = a.copy(); best = 1e9',
    'for _ in range(5):\n    t = time.perf_counter(); a @ b; best = min(best, time.perf_counter() - t)',
    'try:\n    blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]["name"]\nexcept Exception:\n    blas = "numpy-blas"',
    'print(2 * 2048 ** 3 / best / 1e9, blas)',
  ].join('\n');
  const found: { gflops: number; library: string }[] = [];
  for (const candidate of ['/usr/bin/python3', 'python3']) {
    const r = spawnSync(candidate, ['-c', script], { encoding: 'utf8' });
    if (r.status !== 0) continue;
    const [gflops, library] = r.stdout.trim().split(' ');
    found.push({ gflops: +Number(gflops).toFixed(1), library });
  }
  return found.sort((x, y) => y.gflops - x.gflops)[0];
}

type TorchResult = { stepMs: number[]; threads: number; version: string } | { status: string };

/** A child process read line by line, with a way to wait for the next line that matches. */
function lineReader(proc: ChildProcess): (match: RegExp) => Promise<string> {
  const queue: string[] = [], waiting: ((line: string | undefined) => void)[] = [];
  let ended = false;
  createInterface({ input: proc.stdout! }).on('line', (l) => (waiting.length ? waiting.shift()!(l) : queue.push(l))).on('close', () => {
    ended = true;
    while (waiting.length) waiting.shift()!(undefined);
  });
  const next = () => new Promise<string | undefined>((resolve) => (queue.length ? resolve(queue.shift()) : ended ? resolve(undefined) : waiting.push(resolve)));
  return async (match) => {
    for (let l = await next(); l !== undefined; l = await next()) if (match.test(l)) return l;
    throw new Error('the process ended early');
  };
}

/**
 * PruneLens (`config`) and PyTorch train side by side, taking turns step by step: each waits while the
 * other runs one step, and the order flips every pair. The machine's speed drifts within seconds, so
 * each pair of steps sees the same machine; the ratio is of the medians over all pairs.
 */
async function lockstep(config: Config, torchPython: string, pairs: number): Promise<{ ours: Result; torch: { stepMs: number[]; threads: number; version: string } }> {
  const warmup = 3;
  const ours = spawn(process.execPath, ['--import', 'tsx', __filename, '--child', JSON.stringify({ ...config, warmup, steps: pairs, lockstep: true })], {
    env: { ...process.env, ...config.env }, stdio: ['pipe', 'pipe', 'inherit'] });
  const torch = spawn(torchPython, [join('bench', 'torch-resnet20.py'), String(warmup), String(pairs), '--lockstep'], { stdio: ['pipe', 'pipe', 'inherit'] });
  const [readOurs, readTorch] = [ours, torch].map(lineReader);
  const step = async (proc: ChildProcess, read: (m: RegExp) => Promise<string>) => {
    proc.stdin!.write('go\n');
    return Number((await read(/^STEP /)).split(' ')[1]);
  };
  for (let i = 0; i < warmup + pairs; i++) {
    const first = i % 2 === 0;
    const a = await step(first ? ours : torch, first ? readOurs : readTorch);
    const b = await step(first ? torch : ours, first ? readTorch : readOurs);
    process.stderr.write(`  lockstep ${i + 1}/${warmup + pairs}: ${config.name} ${(first ? a : b).toFixed(0)} ms, pytorch ${(first ? b : a).toFixed(0)} ms\n`);
  }
  ours.stdin!.write('go\n'); // lets the last step's hook return
  const [oursResult, torchResult] = await Promise.all([readOurs(/^\{/), readTorch(/^\{/)]);
  const out = JSON.parse(torchResult);
  return { ours: JSON.parse(oursResult) as Result, torch: { stepMs: (out.step_times as number[]).map((v) => +v.toFixed(1)), threads: out.threads, version: out.torch } };
}

const line = (name: string, ms: number, gflops: number) =>
  `train resnet20 batch=${BATCH} backend=${name} step_ms=${ms.toFixed(1)} img_per_s=${(BATCH / ms * 1000).toFixed(1)} gflops=${gflops.toFixed(1)}`;

async function main(): Promise<void> {
  const childIndex = process.argv.indexOf('--child');
  if (childIndex >= 0) {
    const result = await child(JSON.parse(process.argv[childIndex + 1]) as Config);
    console.log(JSON.stringify(result));
    process.exit(0);
  }
  const steps = arg('--steps', 8);
  const cores = os.availableParallelism?.() ?? os.cpus().length;
  const configs: Config[] = [
    { name: 'tensorflow', backend: 'tensorflow', env: {}, warmup: 2, steps },
    { name: `wasm-prunelens-simd-${cores}t`, backend: 'wasm', env: {}, warmup: 2, steps },
    { name: 'wasm-prunelens-simd-1t', backend: 'wasm', env: { PRUNELENS_THREADS: '1' }, warmup: 2, steps },
    { name: `wasm-prunelens-simd-${cores}t-copying`, backend: 'wasm', env: { PRUNELENS_SHARED_HEAP: '0' }, warmup: 2, steps },
    { name: 'wasm-stock-kernels', backend: 'wasm', env: { PRUNELENS_SIMD_KERNELS: '0' }, warmup: 2, steps },
  ];
  if (!process.argv.includes('--skip-cpu')) configs.push({ name: 'cpu', backend: 'cpu', env: {}, warmup: 1, steps: 2 });
  const loadBefore = os.loadavg()[0];
  const runChild = (config: Config): Result => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', __filename, '--child', JSON.stringify(config)], {
      encoding: 'utf8', env: { ...process.env, ...config.env }, stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 1 << 24 });
    const last = r.stdout.trim().split('\n').pop() ?? '';
    return last.startsWith('{') ? JSON.parse(last) as Result : { name: config.name, status: 'failed', detail: `exit ${r.status}` };
  };
  // The ratio's two numbers come from lockstep() when PyTorch is installed: pairs of steps, taken in turns.
  const pairs = arg('--pairs', 24);
  const results: Result[] = [];
  let torch: TorchResult = { status: 'not run' };
  const torchPython = python('torch');
  for (const config of configs) {
    if (config !== configs[1] || !torchPython) {
      results.push(runChild(config));
      if (config === configs[1]) torch = { status: 'not installed (apt-get install python3-torch)' };
      continue;
    }
    try {
      const paired = await lockstep(config, torchPython, pairs);
      results.push(paired.ours);
      torch = paired.torch;
    } catch (err) {
      results.push({ name: config.name, status: 'failed', detail: err instanceof Error ? err.message : String(err) });
      torch = { status: `failed: ${err instanceof Error ? err.message : String(err)}` };
    }
  }
  const blas = numpySgemmPeak();
  const wasmPeak = await wasmSgemmPeak();

  const out: string[] = [];
  for (const r of results) {
    out.push(r.status === 'ok' ? line(r.name, r.medianMs!, r.effectiveGflops!) : `train resnet20 batch=${BATCH} backend=${r.name} ${r.status}${r.detail && r.status === 'failed' ? ` (${r.detail})` : ''}`);
  }
  const ours = results.find((r) => r.name === configs[1].name && r.status === 'ok');
  if ('stepMs' in torch) {
    const torchMs = median(torch.stepMs);
    const gflops = ours ? ours.effectiveGflops! * ours.medianMs! / torchMs : 0;
    out.push(line(`pytorch-${torch.version}-${torch.threads}t`, torchMs, gflops));
    if (ours) out.push(`ratio step_ms ${ours.name}/pytorch = ${(ours.medianMs! / torchMs).toFixed(2)} (medians over ${torch.stepMs.length} pairs of steps taken in turns)`);
  } else {
    out.push(`train resnet20 batch=${BATCH} backend=pytorch ${torch.status}`);
  }
  out.push(blas ? `sgemm 2048 library=${blas.library} gflops=${blas.gflops}` : 'sgemm library=openblas not available (no python3 with numpy)');
  if (wasmPeak) out.push(`sgemm 1024 library=prunelens-wasm-simd threads=${wasmPeak.threads} gflops=${wasmPeak.gflops}`);
  for (const r of results.filter((x) => x.status === 'ok')) {
    const flat = new Set(r.tensorsAfterStep).size === 1;
    out.push(`memory backend=${r.name} tensors_per_step=${flat ? 'constant' : 'growing'} (${r.tensorsAfterStep![0]}→${r.tensorsAfterStep!.at(-1)}) tensor_mib_between_steps=${(r.peakTensorBytes! / 2 ** 20).toFixed(1)} peak_rss_mib=${r.peakRssMiB}`);
  }
  console.log(out.join('\n'));
  const file = join(process.cwd(), 'bench', 'results', 'train-step.json');
  mkdirSync(join(process.cwd(), 'bench', 'results'), { recursive: true });
  writeFileSync(file, JSON.stringify({
    date: new Date().toISOString(),
    machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model, node: process.version, loadAverageBefore: loadBefore, loadAverageAfter: os.loadavg()[0] },
    tfjs: tf.version.tfjs, batch: BATCH, results, pytorch: torch, sgemm: { blas, wasm: wasmPeak }, lines: out,
  }, null, 2) + '\n');
  process.exit(0);
}

main().catch((err) => { console.error(err); process.exit(1); });
