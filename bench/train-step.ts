/**
 * Training-step time (forward + backward + SGD-momentum update, through PruneLens' trainModel)
 * of a CIFAR-style ResNet-20 at batch 64 on 32×32×3 synthetic input, per backend, in one run.
 *   node --import tsx bench/train-step.ts [--cpu-steps N] [--wasm-steps N]
 * Prints a markdown table and writes bench/results/train-step.json.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import { dirname, join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { backendInfo, initBackend } from '../src/engine/backend/index.js';
import { loadDataset } from '../src/engine/data/index.js';
import { trainModel } from '../src/engine/train/index.js';
import type { BackendName } from '../src/engine/config/types.js';
import { buildResNet20 } from './resnet20.js';

const BATCH = 64;
const arg = (name: string, fallback: number) => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
};

interface Row {
  backend: string;
  kernels: string;
  status: 'ok' | 'not installed' | 'failed';
  detail?: string;
  simd?: boolean;
  threads?: number;
  warmupSteps?: number;
  measuredSteps?: number;
  stepMs?: number[];
  medianMs?: number;
  imagesPerSecond?: number;
  tensorsPerStep?: number;
}

const median = (values: number[]) => {
  const s = [...values].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

async function measure(preference: BackendName, kernels: string, warmup: number, steps: number): Promise<Row> {
  try {
    await initBackend(preference);
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    return { backend: preference, kernels, status: /tfjs-node/.test(message) ? 'not installed' : 'failed', detail: message };
  }
  const info = backendInfo();
  const model = buildResNet20();
  const data = await loadDataset({ format: 'synthetic', samples: BATCH * (warmup + steps), classes: 10, validationSplit: 0 }, process.cwd(),
    { inputShape: [32, 32, 3], classes: 10 }, 1);
  const stamps: number[] = [];
  const tensors: number[] = [];
  let last = performance.now();
  await trainModel(model, data, { epochs: 1, batchSize: BATCH, learningRate: 0.05, momentum: 0.9, weightDecay: 5e-4, optimizer: 'sgd', schedule: 'constant' }, {}, {
    seed: 1,
    onStep: () => {
      const now = performance.now();
      stamps.push(now - last);
      tensors.push(tf.memory().numTensors);
      last = now;
      process.stderr.write(`  ${info.name}: step ${stamps.length}/${warmup + steps} ${(stamps[stamps.length - 1] / 1000).toFixed(2)} s\n`);
    },
  });
  model.dispose();
  const measured = stamps.slice(warmup);
  const med = median(measured);
  return {
    backend: info.name, kernels, status: 'ok', simd: info.simd, threads: info.threads, warmupSteps: warmup, measuredSteps: measured.length,
    stepMs: measured.map((v) => +v.toFixed(1)), medianMs: +med.toFixed(1), imagesPerSecond: +(BATCH / med * 1000).toFixed(1),
    tensorsPerStep: (tensors[tensors.length - 1] - tensors[warmup]) / Math.max(1, measured.length - 1),
  };
}

async function main(): Promise<void> {
  const loadBefore = os.loadavg()[0];
  const rows: Row[] = [];
  rows.push(await measure('tensorflow', 'stock (libtensorflow)', 2, 5));
  rows.push(await measure('wasm', 'PruneLens: XNNPACK conv-trick dW and dX, JS depthwise', arg('--wasm-warmup', 2), arg('--wasm-steps', 5)));
  rows.push(await measure('cpu', 'PruneLens: typed-array dW', arg('--cpu-warmup', 1), arg('--cpu-steps', 2)));
  const cpu = rows.find((r) => r.backend === 'cpu' && r.status === 'ok');
  const lines = [
    `ResNet-20 (tf.layers, 1×1 projection shortcuts, BN, ReLU, GAP, dense), batch ${BATCH}, 32×32×3 synthetic input, SGD-momentum step via trainModel.`,
    `Machine: ${os.cpus().length}× ${os.cpus()[0]?.model ?? 'cpu'}, Node ${process.version}, tfjs ${tf.version.tfjs}; 1-min load average ${loadBefore.toFixed(1)} before, ${os.loadavg()[0].toFixed(1)} after (other processes share the cores).`,
    '',
    '| backend | gradient kernels | SIMD | threads | ms/step (median) | images/s | speed vs cpu | steps (warm-up + measured) |',
    '|---|---|---|---|---|---|---|---|',
    ...rows.map((r) => r.status !== 'ok'
      ? `| ${r.backend} | ${r.kernels} | | | ${r.status} | | | |`
      : `| ${r.backend} | ${r.kernels} | ${r.simd ? 'yes' : 'no'} | ${r.threads} | ${r.medianMs!.toFixed(0)} | ${r.imagesPerSecond} | ${cpu ? (cpu.medianMs! / r.medianMs!).toFixed(1) + '×' : 'n/a'} | ${r.warmupSteps} + ${r.measuredSteps} |`),
  ];
  console.log(lines.join('\n'));
  const out = join(process.cwd(), 'bench', 'results', 'train-step.json');
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, JSON.stringify({ date: new Date().toISOString(), machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model, node: process.version, loadAverageBefore: loadBefore, loadAverageAfter: os.loadavg()[0] }, tfjs: tf.version.tfjs, batch: BATCH, rows, table: lines.join('\n') }, null, 2) + '\n');
}

main().catch((err) => { console.error(err); process.exit(1); });
