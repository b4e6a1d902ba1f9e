import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { DoneEvent, EngineEvent } from '../../protocol/events.js';
import type { DataConfig, MethodName, TrainConfig } from '../config/types.js';
import { initBackend } from '../backend/index.js';
import { loadDataset } from '../data/index.js';
import { trainModel, evaluateModel } from '../train/index.js';
import { saveModelAtomic } from '../io/index.js';
import { countCost, measureLatency } from '../metrics/index.js';
import { loadConfig } from '../config/index.js';
import { executeSession } from '../session/session.js';
import { availableMethods } from '../methods/index.js';
import { buildDemoCnn } from './model.js';
import { DEMO_METHOD_SETTINGS } from './presets.js';
import { formatAccuracy, formatCount, formatDuration, formatPercent, table } from '../../protocol/format.js';

export interface DemoOptions {
  outDir?: string;
  methods?: string[];
  /** A much smaller run (for tests and a first look): fewer images and epochs. */
  quick?: boolean;
  flopsReduction?: number;
  log?: (line: string) => void;
}

export interface DemoRow {
  method: string;
  params: number;
  flops: number;
  accuracy?: number;
  latencyMs: number;
  wallTimeMs: number;
  output?: string;
  error?: string;
}

/** The demo's data and training phases (`quick`: fewer images and epochs), shared with bench/recovery.ts. */
export function demoTrainingSettings(quick: boolean): { data: DataConfig; pretrain: TrainConfig; methodTrain: TrainConfig; finetune: TrainConfig } {
  const data: DataConfig = quick
    ? { format: 'builtin', name: 'mnist', trainLimit: 2000, testLimit: 1000 }
    : { format: 'builtin', name: 'mnist', trainLimit: 12000, testLimit: 5000 };
  const pretrain: TrainConfig = { epochs: quick ? 1 : 3, batchSize: 64, learningRate: 0.05, momentum: 0.9, weightDecay: 0.0005, optimizer: 'sgd', schedule: 'cosine' };
  return { data, pretrain, methodTrain: { ...pretrain, epochs: 1, learningRate: 0.01 }, finetune: { ...pretrain, epochs: 1, learningRate: 0.01 } };
}

/**
 * The main job: train the demo CNN on built-in MNIST, prune it with every available method
 * to the same FLOPs target, fine-tune, and compare. Reports land under `outDir`.
 */
export async function runDemo(options: DemoOptions = {}): Promise<{ rows: DemoRow[]; failures: number; outDir: string }> {
  const log = options.log ?? (() => undefined);
  const outDir = resolve(options.outDir ?? 'prunelens-demo');
  const quick = options.quick ?? false;
  const flopsReduction = options.flopsReduction ?? 0.5;
  const methods = (options.methods ?? availableMethods()) as MethodName[];
  const started = Date.now();
  mkdirSync(outDir, { recursive: true });

  const backend = await initBackend('auto');
  const { data, pretrain, methodTrain, finetune } = demoTrainingSettings(quick);
  // A batch of 32 measures compute; one 28×28 image mostly measures per-layer dispatch.
  const latency = { runs: 20, batchSize: 32 };

  log(`PruneLens demo — backend ${backend}, reports under ${outDir}`);
  const dataset = await loadDataset(data, join(outDir, 'demo.prune.json'), { inputShape: [28, 28, 1], classes: 10 }, 1);
  log(`Data: ${dataset.description}`);
  const model = buildDemoCnn({ seed: 1 });
  log(`Training the dense CNN (${formatCount(countCost(model).flops)} FLOPs per image) for ${pretrain.epochs} epoch(s)…`);
  await trainModel(model, dataset, pretrain, {}, {
    seed: 1,
    onEpoch: (e) => log(`  epoch ${e.epoch + 1}/${e.epochs}: loss ${e.loss.toFixed(4)}, val top-1 ${formatAccuracy(e.valAccuracy)}`),
  });
  const denseEval = await evaluateModel(model, dataset);
  const denseLatency = await measureLatency(model, latency);
  const denseCost = countCost(model);
  await saveModelAtomic(model, join(outDir, 'dense'));
  model.dispose();

  const rows: DemoRow[] = [{ method: 'dense', params: denseCost.params, flops: denseCost.flops, accuracy: denseEval.accuracy, latencyMs: denseLatency.medianMs, wallTimeMs: Date.now() - started }];
  let failures = 0;
  mkdirSync(join(outDir, 'configs'), { recursive: true });
  for (const method of methods) {
    const settings = DEMO_METHOD_SETTINGS[method];
    const configPath = join(outDir, 'configs', `${method}.prune.json`);
    writeFileSync(configPath, JSON.stringify({
      $schema: '../../schemas/prune-config.schema.json',
      model: '../dense/model.json',
      method,
      target: { flopsReduction },
      output: `../pruned/${method}`,
      data,
      train: { ...methodTrain, ...settings?.train },
      finetune,
      latency,
      ...(settings?.options ? { [method]: settings.options } : {}),
    }, null, 2) + '\n');
    log(`\n▶ ${method}: prune to −${Math.round(flopsReduction * 100)}% FLOPs, then fine-tune`);
    const config = loadConfig(configPath);
    const events: EngineEvent[] = [];
    const result = await executeSession(config, (e) => {
      events.push(e);
      if (e.type === 'epoch') log(`  ${e.phase} epoch ${e.epoch + 1}/${Math.ceil(e.epochs)}: loss ${e.loss.toFixed(4)}, val top-1 ${formatAccuracy(e.valAccuracy)}`);
      if (e.type === 'warning') log(`  warning: ${e.message}`);
    });
    if (result.type === 'done') {
      rows.push(rowFromDone(result));
      log(`  done in ${formatDuration(result.wallTimeMs)}: FLOPs −${formatPercent(1 - result.after.flops / result.before.flops)}, top-1 ${formatAccuracy(result.accuracy?.after)}`);
    } else {
      failures++;
      rows.push({ method, params: NaN, flops: NaN, latencyMs: NaN, wallTimeMs: 0, error: result.message });
      log(`  failed: ${result.message}`);
    }
  }

  const header = ['method', 'params', 'FLOPs', 'FLOPs ↓', 'top-1', 'latency', 'speedup', 'wall time'];
  const body = rows.map((r) => r.error
    ? [r.method, '—', '—', '—', '—', '—', '—', `failed: ${r.error}`]
    : [r.method, formatCount(r.params), formatCount(r.flops), r.method === 'dense' ? '—' : formatPercent(1 - r.flops / denseCost.flops), formatAccuracy(r.accuracy), `${r.latencyMs.toFixed(2)} ms`, r.method === 'dense' ? '—' : `${(denseLatency.medianMs / r.latencyMs).toFixed(2)}×`, formatDuration(r.wallTimeMs)]);
  const text = table(header, body);
  log(`\n${text}\n`);
  log(`Latency: median of ${latency.runs} forward passes of a batch of ${latency.batchSize} on ${backend}. Total wall time ${formatDuration(Date.now() - started)}.`);
  writeFileSync(join(outDir, 'comparison.md'), `# PruneLens demo\n\nBackend ${backend}; ${dataset.description}; FLOPs target −${Math.round(flopsReduction * 100)}%.\n\n\`\`\`\n${text}\n\`\`\`\n`);
  writeFileSync(join(outDir, 'comparison.json'), JSON.stringify({ backend, data: dataset.description, flopsReduction, rows, wallTimeMs: Date.now() - started }, null, 2) + '\n');
  log(`Comparison written to ${join(outDir, 'comparison.md')}`);
  return { rows, failures, outDir };
}

function rowFromDone(done: DoneEvent): DemoRow {
  return { method: done.method, params: done.after.params, flops: done.after.flops, accuracy: done.accuracy?.after, latencyMs: done.latency?.after.medianMs ?? NaN, wallTimeMs: done.wallTimeMs, output: done.output };
}
