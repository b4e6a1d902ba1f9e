/**
 * Training-step time (forward + backward + SGD-momentum update, through PruneLens' trainModel) of a
 * CIFAR-style ResNet-20 at batch 64 on 32×32×3 synthetic input, on every available backend, and of
 * MobileNetV2 at 96×96 (batch 32) and 224×224 (batch 8), in one run:
 *   npm run bench:train [-- --steps N] [-- --pairs P] [-- --mobilenet-pairs P] [-- --nets resnet20,mobilenetv2-96,mobilenetv2-224] [-- --skip-cpu] [-- --lockstep-only]
 * Each backend runs in a child process of its own (kernel registrations are per process). Per network,
 * PruneLens' wasm kernels in their relaxed-SIMD (fused multiply-add) and plain-SIMD builds and PyTorch
 * (when python3-torch is installed) take steps in turns (see lockstep()). The same run measures the
 * machine's SGEMM peak (OpenBLAS through numpy, when a python3 has it) and that of PruneLens' wasm kernels.
 * Prints `train <network> …` lines and the ratios, and writes bench/results/train-step.json.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { backendInfo, initBackend, tfjsNodeNotInstalled } from '../src/engine/backend/index.js';
import { sharedHeap } from '../src/engine/backend/simd/index.js';
import { createKernelPool, defaultThreads, type KernelBuild } from '../src/engine/backend/simd/pool.js';
import { SimdKernels } from '../src/engine/backend/simd/tfjs-kernels.js';
import { loadDataset } from '../src/engine/data/index.js';
import { encodeNpy } from '../src/engine/data/npy.js';
import type { Dataset } from '../src/engine/train/types.js';
import { countCost } from '../src/engine/metrics/index.js';
import { trainModel } from '../src/engine/train/index.js';
import type { BackendName } from '../src/engine/config/types.js';
import { relaxedSimdExecArgv } from '../src/engine/util/relaxed-simd.js';
import { buildMobileNetV2 } from './mobilenetv2.js';
import { buildResNet20 } from './resnet20.js';

/** The networks timed: input size and batch, and how each side builds it. */
const NETWORKS = {
  'resnet20': { size: 32, batch: 64, build: () => buildResNet20(), torch: ['--net', 'resnet20'] },
  'mobilenetv2-96': { size: 96, batch: 32, build: () => buildMobileNetV2({ inputShape: [96, 96, 3] }), torch: ['--net', 'mobilenetv2'] },
  'mobilenetv2-224': { size: 224, batch: 8, build: () => buildMobileNetV2({ inputShape: [224, 224, 3] }), torch: ['--net', 'mobilenetv2'] },
} as const;
type NetworkName = keyof typeof NETWORKS;
const BATCH: number = NETWORKS.resnet20.batch;
/** Node flags for a child that should have relaxed SIMD (Node 20–21 need one; see util/relaxed-simd.ts). */
const RELAXED_FLAGS = relaxedSimdExecArgv([]);
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
  /** The network (default resnet20). */
  net?: NetworkName;
  /** Run each step when the parent says so (a "go" line on stdin) and report it (a "STEP ms" line): see lockstep(). */
  lockstep?: boolean;
}

interface Result {
  name: string;
  status: 'ok' | 'not installed' | 'failed';
  detail?: string;
  kernels?: string;
  /** The kernels' build: relaxed SIMD (fused multiply-add) or plain SIMD. */
  kernelBuild?: string;
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
async function npyDataset(samples: number, size = 32, batchSize = BATCH): Promise<Dataset> {
  const model = { inputShape: [size, size, 3], classes: 10 };
  const synthetic = await loadDataset({ format: 'synthetic', samples, classes: 10, validationSplit: 0 }, process.cwd(), model, 1);
  const pixels = size * size * 3;
  const x = new Float32Array(samples * pixels), y = new Int32Array(samples);
  let at = 0;
  for await (const batch of synthetic.trainBatches(batchSize, 0)) {
    x.set(batch.x.dataSync(), at * pixels);
    y.set(batch.y![0].dataSync(), at);
    at += batch.x.shape[0];
    tf.dispose([batch.x, ...batch.y!]);
  }
  const dir = mkdtempSync(join(os.tmpdir(), 'prunelens-bench-'));
  writeFileSync(join(dir, 'x.npy'), encodeNpy(x, [samples, size, size, 3]));
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
  const network = NETWORKS[config.net ?? 'resnet20'], batch = network.batch;
  const model = network.build();
  // A multiply-add is 2 FLOPs; a training step does the forward pass, dX and dW: 3× the forward FLOPs.
  const stepFlops = 3 * countCost(model).flops * batch;
  const data = await npyDataset(batch * (config.warmup + config.steps), network.size, batch);
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
  await trainModel(model, data, { epochs: 1, batchSize: batch, learningRate: 0.05, momentum: 0.9, weightDecay: 5e-4, optimizer: 'sgd', schedule: 'constant' }, hooks, {
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
    name: config.name, status: 'ok', kernels: info.name === 'wasm' ? info.kernels : undefined, kernelBuild: info.kernelBuild, threads: info.threads,
    stepMs: measured.map((v) => +v.toFixed(1)), medianMs: +med.toFixed(1), imagesPerSecond: +(batch / med * 1000).toFixed(1),
    effectiveGflops: +(stepFlops / (med / 1000) / 1e9).toFixed(1), tensorsAfterStep: tensors.slice(config.warmup),
    peakTensorBytes: peakBytes, peakRssMiB: +(process.resourceUsage().maxRSS / 1024).toFixed(0),
  };
}

interface KernelPeak { build: KernelBuild; threads: number; sgemmGflops: number; winogradGflops: number }

/**
 * GFLOP/s of PruneLens' wasm kernels on every core, each build (plain and relaxed SIMD) in turn in one
 * process, best of 15: a 1024×1024 by 1024×1024 GEMM and a 3×3 convolution of 64×16×16×64 by 64 filters
 * on the Winograd path (FLOPs of the direct convolution). Run in a child with relaxed SIMD on.
 */
async function kernelPeaks(): Promise<KernelPeak[]> {
  await initBackend('wasm');
  const builds = (['plain', 'relaxed'] as const).flatMap((build) => {
    const started = createKernelPool(defaultThreads(), sharedHeap(), build);
    return 'pool' in started ? [{ build, threads: started.pool.threads, kernels: new SimdKernels(started.pool), sgemm: Infinity, winograd: Infinity }] : [];
  });
  const be = tf.backend() as never;
  const a = tf.randomNormal([1024, 1024]), b = tf.randomNormal([1024, 1024]);
  const x = tf.randomNormal([64, 16, 16, 64]), w = tf.randomNormal([3, 3, 64, 64]);
  const g = tf.backend_util.computeConv2DInfo([64, 16, 16, 64], [3, 3, 64, 64], 1, 1, 'same', undefined, false, 'channelsLast');
  for (let i = 0; i < 15; i++) {
    for (const k of builds) {
      let t = performance.now();
      const c = k.kernels.matmul(be, a, b, false, false, undefined, 0)!;
      k.sgemm = Math.min(k.sgemm, performance.now() - t);
      tf.backend().disposeData(c.dataId);
      t = performance.now();
      const y = k.kernels.conv2d(be, x, w, undefined, 0, g);
      k.winograd = Math.min(k.winograd, performance.now() - t);
      tf.backend().disposeData(y.dataId);
    }
  }
  tf.dispose([a, b, x, w]);
  const gflops = (flops: number, ms: number) => +(flops / (ms / 1000) / 1e9).toFixed(1);
  return builds.map((k) => ({ build: k.build, threads: k.threads, sgemmGflops: gflops(2 * 1024 ** 3, k.sgemm), winogradGflops: gflops(2 * 64 * 16 * 16 * 64 * 64 * 9, k.winograd) }));
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

/** One side of a turn-taking run: a PruneLens child (`config`) or PyTorch. */
interface Turn { name: string; proc: ChildProcess; read: (match: RegExp) => Promise<string>; ms: number[] }

/**
 * PruneLens' children (`configs`: the relaxed- and plain-SIMD builds) and PyTorch train side by side,
 * taking turns step by step: each waits while another runs one step, and the order rotates every round.
 * The machine's speed drifts within seconds, so each round of steps sees the same machine; the ratios
 * are of the medians over all rounds.
 */
async function lockstep(net: NetworkName, configs: Config[], torchPython: string | undefined, pairs: number):
  Promise<{ ours: Result[]; torch?: { stepMs: number[]; threads: number; version: string } }> {
  const warmup = 3, network = NETWORKS[net];
  const turns: Turn[] = configs.map((config) => {
    const flags = config.env.PRUNELENS_RELAXED_SIMD === '0' ? [] : RELAXED_FLAGS;
    const proc = spawn(process.execPath, [...flags, '--import', 'tsx', __filename, '--child', JSON.stringify({ ...config, net, warmup, steps: pairs, lockstep: true })], {
      env: { ...process.env, ...config.env }, stdio: ['pipe', 'pipe', 'inherit'] });
    return { name: config.name, proc, read: lineReader(proc), ms: [] };
  });
  if (torchPython) {
    const proc = spawn(torchPython, [join('bench', 'torch-resnet20.py'), String(warmup), String(pairs), '--lockstep', ...network.torch,
      '--size', String(network.size), '--batch', String(network.batch)], { stdio: ['pipe', 'pipe', 'inherit'] });
    turns.push({ name: 'pytorch', proc, read: lineReader(proc), ms: [] });
  }
  const step = async (turn: Turn) => {
    turn.proc.stdin!.write('go\n');
    return Number((await turn.read(/^STEP /)).split(' ')[1]);
  };
  for (let i = 0; i < warmup + pairs; i++) {
    const order = turns.map((_, k) => turns[(i + k) % turns.length]);
    for (const turn of order) turn.ms.push(await step(turn));
    process.stderr.write(`  ${net} round ${i + 1}/${warmup + pairs}: ${turns.map((t) => `${t.name} ${t.ms.at(-1)!.toFixed(0)} ms`).join(', ')}\n`);
  }
  for (const turn of turns.slice(0, configs.length)) turn.proc.stdin!.write('go\n'); // lets the last step's hook return
  const outs = await Promise.all(turns.map((t) => t.read(/^\{/)));
  const ours = outs.slice(0, configs.length).map((o) => JSON.parse(o) as Result);
  if (!torchPython) return { ours };
  const out = JSON.parse(outs[configs.length]);
  return { ours, torch: { stepMs: (out.step_times as number[]).map((v) => +v.toFixed(1)), threads: out.threads, version: out.torch } };
}

const line = (net: string, batch: number, name: string, ms: number, gflops: number) =>
  `train ${net} batch=${batch} backend=${name} step_ms=${ms.toFixed(1)} img_per_s=${(batch / ms * 1000).toFixed(1)} gflops=${gflops.toFixed(1)}`;

interface NetworkRun { net: NetworkName; batch: number; size: number; loadAverageBefore: number; loadAverageAfter: number; ours: Result[]; pytorch: TorchResult }

async function main(): Promise<void> {
  if (process.argv.includes('--kernel-peaks')) {
    console.log(JSON.stringify(await kernelPeaks()));
    process.exit(0);
  }
  const childIndex = process.argv.indexOf('--child');
  if (childIndex >= 0) {
    const result = await child(JSON.parse(process.argv[childIndex + 1]) as Config);
    console.log(JSON.stringify(result));
    process.exit(0);
  }
  const steps = arg('--steps', 8);
  const cores = os.availableParallelism?.() ?? os.cpus().length;
  const nets = (process.argv.includes('--nets') ? process.argv[process.argv.indexOf('--nets') + 1].split(',') : Object.keys(NETWORKS)) as NetworkName[];
  for (const net of nets) if (!(net in NETWORKS)) throw new Error(`--nets: unknown network ${net}; known: ${Object.keys(NETWORKS).join(', ')}`);
  // The two builds of PruneLens' kernels, in turns with PyTorch on every network.
  const paired: Config[] = [
    { name: `wasm-prunelens-relaxed-${cores}t`, backend: 'wasm', env: { PRUNELENS_RELAXED_SIMD: '1' }, warmup: 2, steps },
    { name: `wasm-prunelens-plain-${cores}t`, backend: 'wasm', env: { PRUNELENS_RELAXED_SIMD: '0' }, warmup: 2, steps },
  ];
  // ResNet-20 alone, one after another: threads, operand copies, stock kernels, tfjs-node and cpu.
  const others: Config[] = process.argv.includes('--lockstep-only') ? [] : [
    { name: 'tensorflow', backend: 'tensorflow', env: {}, warmup: 2, steps },
    { name: 'wasm-prunelens-simd-1t', backend: 'wasm', env: { PRUNELENS_THREADS: '1' }, warmup: 2, steps },
    { name: `wasm-prunelens-simd-${cores}t-copying`, backend: 'wasm', env: { PRUNELENS_SHARED_HEAP: '0' }, warmup: 2, steps },
    { name: 'wasm-stock-kernels', backend: 'wasm', env: { PRUNELENS_SIMD_KERNELS: '0' }, warmup: 2, steps },
  ];
  if (!process.argv.includes('--skip-cpu') && !process.argv.includes('--lockstep-only')) others.push({ name: 'cpu', backend: 'cpu', env: {}, warmup: 1, steps: 2 });
  const loadBefore = os.loadavg()[0];
  const runChild = (config: Config): Result => {
    // Every wasm child runs as the engine does: with relaxed SIMD where Node has it behind a flag.
    const r = spawnSync(process.execPath, [...(config.backend === 'wasm' ? RELAXED_FLAGS : []), '--import', 'tsx', __filename, '--child', JSON.stringify(config)], {
      encoding: 'utf8', env: { ...process.env, ...config.env }, stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 1 << 24 });
    const last = r.stdout.trim().split('\n').pop() ?? '';
    return last.startsWith('{') ? JSON.parse(last) as Result : { name: config.name, status: 'failed', detail: `exit ${r.status}` };
  };
  const torchPython = python('torch');
  const runs: NetworkRun[] = [];
  for (const net of nets) {
    // ResNet-20 takes 24 rounds by default; a MobileNetV2 step is longer, so fewer.
    const pairs = net === 'resnet20' ? arg('--pairs', 24) : arg('--mobilenet-pairs', 8);
    const before = os.loadavg()[0];
    let ours: Result[], pytorch: TorchResult = { status: 'not installed (apt-get install python3-torch)' };
    try {
      const result = await lockstep(net, paired, torchPython, pairs);
      ours = result.ours;
      if (result.torch) pytorch = result.torch;
    } catch (err) {
      const detail = err instanceof Error ? err.message : String(err);
      ours = paired.map((c) => ({ name: c.name, status: 'failed', detail }));
      pytorch = { status: `failed: ${detail}` };
    }
    runs.push({ net, batch: NETWORKS[net].batch, size: NETWORKS[net].size, loadAverageBefore: before, loadAverageAfter: os.loadavg()[0], ours, pytorch });
  }
  const results = others.map(runChild);
  const blas = numpySgemmPeak();
  const peaks = spawnSync(process.execPath, [...RELAXED_FLAGS, '--import', 'tsx', __filename, '--kernel-peaks'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  const wasmPeaks = peaks.status === 0 ? JSON.parse(peaks.stdout.trim().split('\n').pop()!) as KernelPeak[] : [];

  const out: string[] = [];
  const failed = (net: string, batch: number, r: Result) => r.name === 'tensorflow' && r.status === 'not installed'
    ? `train ${net} batch=${batch} backend=tensorflow tfjs-node not installed (npm install @tensorflow/tfjs-node; ${tfjsNodeNotInstalled(r.detail ?? '') ? 'its package or native binding is missing' : r.detail})`
    : `train ${net} batch=${batch} backend=${r.name} ${r.status}${r.detail && r.status === 'failed' ? ` (${r.detail})` : ''}`;
  for (const run of runs) {
    out.push(`${run.net} ${run.size}×${run.size}×3 batch=${run.batch}: load average ${run.loadAverageBefore.toFixed(2)} before, ${run.loadAverageAfter.toFixed(2)} after`);
    for (const r of run.ours) {
      if (r.status === 'ok' && r.kernelBuild && !r.name.includes(r.kernelBuild)) r.detail = `asked for ${r.name}, ran the ${r.kernelBuild} build`;
      out.push(r.status === 'ok' ? line(run.net, run.batch, `${r.name}${r.detail ? ` (${r.detail})` : ''}`, r.medianMs!, r.effectiveGflops!) : failed(run.net, run.batch, r));
    }
    const [relaxedRun, plainRun] = run.ours;
    const rounds = relaxedRun.stepMs?.length ?? 0;
    if ('stepMs' in run.pytorch) {
      const torchMs = median(run.pytorch.stepMs);
      const flops = relaxedRun.status === 'ok' ? relaxedRun.effectiveGflops! * relaxedRun.medianMs! / torchMs : 0;
      out.push(line(run.net, run.batch, `pytorch-${run.pytorch.version}-${run.pytorch.threads}t`, torchMs, flops));
      for (const r of run.ours.filter((x) => x.status === 'ok')) {
        out.push(`ratio ${run.net} step_ms ${r.name}/pytorch = ${(r.medianMs! / torchMs).toFixed(2)} (medians over ${rounds} rounds of steps taken in turns)`);
      }
    } else {
      out.push(`train ${run.net} batch=${run.batch} backend=pytorch ${run.pytorch.status}`);
    }
    if (relaxedRun.status === 'ok' && plainRun.status === 'ok') {
      out.push(`ratio ${run.net} step_ms relaxed/plain = ${(relaxedRun.medianMs! / plainRun.medianMs!).toFixed(3)} (same rounds)`);
    }
  }
  for (const r of results) out.push(r.status === 'ok' ? line('resnet20', BATCH, r.name, r.medianMs!, r.effectiveGflops!) : failed('resnet20', BATCH, r));
  out.push(blas ? `sgemm 2048 library=${blas.library} gflops=${blas.gflops}` : 'sgemm library=openblas not available (no python3 with numpy)');
  for (const p of wasmPeaks) out.push(`sgemm 1024 library=prunelens-wasm-simd build=${p.build} threads=${p.threads} gflops=${p.sgemmGflops}`);
  for (const p of wasmPeaks) out.push(`conv3x3 64x16x16x64→64 winograd build=${p.build} threads=${p.threads} gflops=${p.winogradGflops} (direct-convolution FLOPs)`);
  if (wasmPeaks.length === 2) out.push(`ratio kernels relaxed/plain: sgemm ${(wasmPeaks[1].sgemmGflops / wasmPeaks[0].sgemmGflops).toFixed(2)}× the GFLOP/s, winograd ${(wasmPeaks[1].winogradGflops / wasmPeaks[0].winogradGflops).toFixed(2)}× (best of 15, builds in turns)`);
  for (const [net, r] of [...runs.flatMap((run) => run.ours.map((x) => [run.net, x] as const)), ...results.map((x) => ['resnet20', x] as const)]) {
    if (r.status !== 'ok') continue;
    const flat = new Set(r.tensorsAfterStep).size === 1;
    out.push(`memory ${net} backend=${r.name} tensors_per_step=${flat ? 'constant' : 'growing'} (${r.tensorsAfterStep![0]}→${r.tensorsAfterStep!.at(-1)}) tensor_mib_between_steps=${(r.peakTensorBytes! / 2 ** 20).toFixed(1)} peak_rss_mib=${r.peakRssMiB}`);
  }
  out.push(autoChoiceLine());
  out.push(`load average ${loadBefore.toFixed(2)} before the run, ${os.loadavg()[0].toFixed(2)} after`);
  console.log(out.join('\n'));
  const file = join(process.cwd(), 'bench', 'results', 'train-step.json');
  mkdirSync(join(process.cwd(), 'bench', 'results'), { recursive: true });
  writeFileSync(file, JSON.stringify({
    date: new Date().toISOString(),
    machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model, node: process.version, relaxedSimdFlags: RELAXED_FLAGS, loadAverageBefore: loadBefore, loadAverageAfter: os.loadavg()[0] },
    tfjs: tf.version.tfjs, networks: runs, results, sgemm: { blas, wasm: wasmPeaks }, lines: out,
  }, null, 2) + '\n');
  process.exit(0);
}

/**
 * What the engine's 'auto' picks on this machine, measured now in a fresh process without the cache: each backend that
 * starts (tfjs-node when it loads) runs the chooser's probe training step and the fastest wins (backend/choose.ts).
 */
function autoChoiceLine(): string {
  const script = `const b = require(${JSON.stringify(join(__dirname, '../src/engine/backend/index.ts'))});
    b.initBackend('auto').then(() => console.log(JSON.stringify(b.backendInfo())));`;
  const r = spawnSync(process.execPath, [...RELAXED_FLAGS, '--import', 'tsx', '-e', script], { encoding: 'utf8', maxBuffer: 1 << 24 });
  const last = r.stdout?.trim().split('\n').pop() ?? '';
  if (r.status !== 0 || !last.startsWith('{')) return `backend choice auto: failed (${r.stderr?.trim().split('\n').pop() ?? `exit ${r.status}`})`;
  const info = JSON.parse(last) as { name: string; choice?: { stepMs?: Record<string, number>; unavailable?: Record<string, string> } };
  const times = Object.entries(info.choice?.stepMs ?? {}).map(([name, ms]) => `${name}=${ms.toFixed(1)}`).join(' ');
  const missing = Object.entries(info.choice?.unavailable ?? {}).map(([name, why]) => `${name}: ${why}`).join('; ');
  return `backend choice auto=${info.name} (measured, probe step_ms ${times}${missing ? `; ${missing}` : ''})`;
}

main().catch((err) => { console.error(err); process.exit(1); });
