/**
 * Every method on a real pretrained model that no one on the project wrote: nsfwjs' MobileNetV2
 * (224×224×3, 5 classes, uint8 weights) at the configured batch of 32, each session in its own
 * engine process (so each peak is its own). Data: synthetic 224×224×3 patterns, chosen and
 * labelled as such (no labelled images ship offline); the accuracies mean nothing, the memory,
 * speed and sizes do. Writes bench/results/real-models.json.
 *   npm run bench:real [-- --methods l1,goprune] [--samples 96]
 */
import { mkdirSync, mkdtempSync, writeFileSync, cpSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { nsfwjsModel } from '../test/helpers/real-models.js';
import { pruneWithCli } from './cli-events.js';
import type { DoneEvent } from '../src/protocol/events.js';
import { METHOD_NAMES } from '../src/protocol/methods.js';

const arg = (name: string) => { const i = process.argv.indexOf(`--${name}`); return i > 0 ? process.argv[i + 1] : undefined; };
const methods = (arg('methods') ?? METHOD_NAMES.join(',')).split(',');
const samples = Number(arg('samples') ?? 96);
const BATCH = 32;

const dir = mkdtempSync(join(tmpdir(), 'prunelens-real-'));
cpSync(join(nsfwjsModel('mobilenet_v2'), '..'), join(dir, 'model'), { recursive: true });

interface Row {
  method: string; status: string; stepMs?: number; steps?: number; microBatch?: string; peakMiB?: number; peakMeasure?: string;
  flops?: [number, number]; params?: [number, number]; fileBytes?: [number, number]; latencyMs?: [number, number]; wallS?: number;
}

async function run(method: string): Promise<Row> {
  const config = {
    model: 'model/model.json', method, target: { flopsReduction: 0.3 }, output: `pruned-${method}`,
    data: { format: 'synthetic', samples, classes: 5, validationSplit: 1 / 3 },
    train: { epochs: 1, batchSize: BATCH }, finetune: { epochs: 1, batchSize: BATCH },
    latency: { runs: 10, batchSize: 1 }, backend: 'wasm',
    ispasp: { calibrationSamples: 32 },
  };
  const path = join(dir, `${method}.prune.json`);
  writeFileSync(path, JSON.stringify(config, null, 2));
  const stepTimes: number[] = [];
  let lastStep: number | undefined;
  let done: DoneEvent | undefined, error: string | undefined;
  const { stderr } = await pruneWithCli(path, (e, now) => {
    if (e.type === 'step') {
      // A step's time: from the previous step event of the same phase (the first of a phase has none).
      if (lastStep !== undefined && e.step > 0) stepTimes.push(now - lastStep);
      lastStep = now;
    } else if (e.type === 'phase') lastStep = undefined;
    else if (e.type === 'done') done = e;
    else if (e.type === 'error') error = e.message;
  });
  if (!done) return { method, status: `failed: ${error ?? stderr.trim().split('\n').pop()}` };
  const sorted = [...stepTimes].sort((x, y) => x - y);
  const mem = done.memory;
  return {
    method, status: 'completed',
    stepMs: sorted.length ? sorted[sorted.length >> 1] : undefined, steps: stepTimes.length,
    microBatch: mem?.phases.map((p) => `${p.phase} ${p.batchSize}→${p.microBatchSize}`).join(', '),
    peakMiB: mem ? Math.round(mem.peakBytes / 2 ** 20) : undefined, peakMeasure: mem?.measure,
    flops: [done.before.flops, done.after.flops], params: [done.before.params, done.after.params],
    fileBytes: done.size ? [done.size.before, done.size.after] : undefined,
    latencyMs: done.latency ? [done.latency.before.medianMs, done.latency.after.medianMs] : undefined,
    wallS: done.wallTimeMs / 1000,
  };
}

const m = (n: number) => `${(n / 1e6).toFixed(2)}M`;

async function main(): Promise<void> {
const rows: Row[] = [];
console.log(`nsfwjs MobileNetV2 224×224×3, batch ${BATCH}, −30% FLOPs target, wasm backend, data: synthetic (${samples} samples; accuracies meaningless)`);
console.log('| method | result | step (median) | micro-batches | peak memory | FLOPs | params | file size | latency b=1 | wall |');
console.log('|---|---|---|---|---|---|---|---|---|---|');
for (const method of methods) {
  const r = await run(method);
  rows.push(r);
  console.log(`| ${r.method} | ${r.status} | ${r.stepMs ? `${(r.stepMs / 1000).toFixed(2)} s (${r.steps} steps)` : '—'} | ${r.microBatch ?? '—'} | ${r.peakMiB ? `${r.peakMiB} MiB (${r.peakMeasure})` : '—'} | ${r.flops ? `${m(r.flops[0])} → ${m(r.flops[1])}` : '—'} | ${r.params ? `${m(r.params[0])} → ${m(r.params[1])}` : '—'} | ${r.fileBytes ? `${(r.fileBytes[0] / 1e6).toFixed(2)} MB → ${(r.fileBytes[1] / 1e6).toFixed(2)} MB` : '—'} | ${r.latencyMs ? `${r.latencyMs[0].toFixed(1)} → ${r.latencyMs[1].toFixed(1)} ms` : '—'} | ${r.wallS ? `${r.wallS.toFixed(0)} s` : '—'} |`);
}
mkdirSync('bench/results', { recursive: true });
writeFileSync('bench/results/real-models.json', JSON.stringify({ model: 'nsfwjs@4.4.0 mobilenet_v2', batch: BATCH, data: `synthetic, ${samples} samples`, backend: 'wasm', rows }, null, 2) + '\n');
process.exit(rows.every((r) => r.status === 'completed') ? 0 : 1);
}

void main();
