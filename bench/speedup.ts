/**
 * Is the pruned model as fast as its FLOPs promise? Every method at −50% FLOPs on three models, each
 * (a) as the method leaves it, (b) with `"roundTo": "auto"` (kept widths rounded to a multiple the
 * backend runs fast, measured), and (c) with `"target": {"latencyReduction": 0.5}` instead of the
 * FLOPs target. Per row: the FLOPs ratio (before ÷ after), the measured latency speedup (median of
 * the session's timed runs, dense and pruned timed in the same session, interquartile ranges
 * shown), and efficiency = speedup ÷ FLOPs ratio. Goal: efficiency ≥ 0.8. (d) `inference`: the FLOPs target,
 * with the dense and the pruned model both timed in inference form (batch norms folded into the
 * convolutions, ReLUs fused), as the `inference` export writes them.
 *
 * Models: the demo CNN (trained briefly on built-in MNIST, as the demo does), a CIFAR ResNet-20
 * (random init, trained one short epoch on synthetic 32×32×3 data) and nsfwjs' MobileNetV2
 * (224×224×3, pretrained; synthetic data). Speed does not depend on what the data means; the
 * method phases are short (sized for speed, not accuracy), there is no fine-tuning, and no
 * accuracy is reported. One process, the session's backend (wasm unless tfjs-node is installed).
 * Writes bench/results/speedup.json.
 *
 *   npm run bench:speedup [-- --models demo,resnet20,mobilenetv2] [--methods l1,dsp] [--variants flops,roundTo,latency,inference] [--quick]
 */
import { cpSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DataConfig, MethodName, TrainConfig } from '../src/engine/config/types.js';
import type { DoneEvent, LatencySummary } from '../src/protocol/events.js';
import { initBackend } from '../src/engine/backend/index.js';
import { latencyWithinNoise } from '../src/engine/metrics/index.js';
import { loadDataset } from '../src/engine/data/index.js';
import { trainModel } from '../src/engine/train/index.js';
import { saveModelAtomic } from '../src/engine/io/index.js';
import { loadConfig } from '../src/engine/config/index.js';
import { executeSession } from '../src/engine/session/session.js';
import { availableMethods } from '../src/engine/methods/index.js';
import { buildDemoCnn } from '../src/engine/demo/model.js';
import { demoTrainingSettings } from '../src/engine/demo/demo.js';
import { DEMO_METHOD_SETTINGS } from '../src/engine/demo/presets.js';
import { table } from '../src/protocol/format.js';
import { buildResNet20 } from '../test/helpers/models.js';
import { nsfwjsModel } from '../test/helpers/real-models.js';

const arg = (name: string) => { const i = process.argv.indexOf(`--${name}`); return i > 0 ? process.argv[i + 1] : undefined; };
const quick = process.argv.includes('--quick');
const MODELS = (arg('models') ?? 'demo,resnet20,mobilenetv2').split(',');
const METHODS = (arg('methods')?.split(',') ?? availableMethods()) as MethodName[];
const VARIANTS = (arg('variants') ?? 'flops,roundTo,latency,inference').split(',') as Variant[];

type Variant = 'flops' | 'roundTo' | 'latency' | 'inference';
const VARIANT_SETTINGS: Record<Variant, Record<string, unknown>> = {
  flops: { target: { flopsReduction: 0.5 } },
  roundTo: { target: { flopsReduction: 0.5 }, roundTo: 'auto' },
  latency: { target: { latencyReduction: 0.5 } },
  // Both models timed in inference form (batch norms folded, ReLUs fused), as the `inference` export writes them.
  inference: { target: { flopsReduction: 0.5 }, export: ['inference'] },
};

/** What a model's sessions share: its file, data, training phase and how latency is timed. */
interface Bench {
  name: string;
  modelPath: string;
  data: DataConfig;
  train: TrainConfig;
  latency: { runs: number; batchSize: number };
  /** Options per method beyond the demo's presets. */
  options?: Partial<Record<MethodName, Record<string, unknown>>>;
}

interface Row {
  model: string; method: string; variant: Variant;
  flopsRatio?: number; speedup?: number; efficiency?: number;
  before?: LatencySummary; after?: LatencySummary; withinNoise?: boolean;
  /** The session's "why not faster" note. */
  speedNote?: string; error?: string; wallS: number;
}

async function demoBench(dir: string): Promise<Bench> {
  const { data, pretrain, methodTrain } = demoTrainingSettings(quick);
  const dataset = await loadDataset(data, join(dir, 'x.prune.json'), { inputShape: [28, 28, 1], classes: 10 }, 1);
  const model = buildDemoCnn({ seed: 1 });
  await trainModel(model, dataset, pretrain, {}, { seed: 1 });
  await saveModelAtomic(model, join(dir, 'demo'));
  model.dispose();
  return { name: 'demo CNN (MNIST 28×28)', modelPath: 'demo/model.json', data, train: methodTrain, latency: { runs: 20, batchSize: 32 } };
}

async function resnet20Bench(dir: string): Promise<Bench> {
  const data: DataConfig = { format: 'synthetic', samples: quick ? 256 : 1024, classes: 10, validationSplit: 0.25 };
  const train: TrainConfig = { epochs: 1, batchSize: 64, learningRate: 0.05, momentum: 0.9, weightDecay: 5e-4, optimizer: 'sgd', schedule: 'constant' };
  const dataset = await loadDataset(data, join(dir, 'x.prune.json'), { inputShape: [32, 32, 3], classes: 10 }, 1);
  const model = buildResNet20({ seed: 1 });
  await trainModel(model, dataset, train, {}, { seed: 1 });
  await saveModelAtomic(model, join(dir, 'resnet20'));
  model.dispose();
  return { name: 'ResNet-20 (CIFAR 32×32×3, synthetic data)', modelPath: 'resnet20/model.json', data, train: { ...train, learningRate: 0.01 }, latency: { runs: 20, batchSize: 32 } };
}

function mobilenetBench(dir: string): Bench {
  cpSync(join(nsfwjsModel('mobilenet_v2'), '..'), join(dir, 'mobilenetv2'), { recursive: true });
  return {
    name: 'nsfwjs MobileNetV2 (224×224×3, pretrained; synthetic data)',
    modelPath: 'mobilenetv2/model.json',
    data: { format: 'synthetic', samples: quick ? 48 : 96, classes: 5, validationSplit: 1 / 3 },
    train: { epochs: 1, batchSize: 16, learningRate: 0.001, momentum: 0.9, weightDecay: 5e-4, optimizer: 'sgd', schedule: 'constant' },
    latency: { runs: 10, batchSize: 8 },
    options: { ispasp: { calibrationSamples: 32 } },
  };
}

async function runOne(dir: string, bench: Bench, method: MethodName, variant: Variant): Promise<Row> {
  const settings = DEMO_METHOD_SETTINGS[method];
  const options = { ...settings?.options, ...bench.options?.[method] };
  const name = `${bench.modelPath.split('/')[0]}-${method}-${variant}`;
  const configPath = join(dir, `${name}.prune.json`);
  writeFileSync(configPath, JSON.stringify({
    model: bench.modelPath, method, output: `pruned/${name}`, data: bench.data,
    train: { ...bench.train, ...settings?.train }, latency: bench.latency,
    ...VARIANT_SETTINGS[variant], ...(Object.keys(options).length ? { [method]: options } : {}),
  }, null, 2));
  const started = performance.now();
  let result: DoneEvent | { type: 'error'; message: string };
  try {
    result = await executeSession(loadConfig(configPath), () => undefined);
  } catch (err) {
    result = { type: 'error', message: err instanceof Error ? err.message.split('\n')[0] : String(err) };
  }
  const wallS = (performance.now() - started) / 1000;
  const row: Row = { model: bench.name, method, variant, wallS };
  if (result.type !== 'done') return { ...row, error: result.message };
  const latency = variant === 'inference' ? result.latency?.inferenceForm : result.latency;
  const flopsRatio = result.before.flops / result.after.flops;
  const speedup = latency?.speedup;
  return {
    ...row, flopsRatio, speedup, efficiency: speedup !== undefined ? speedup / flopsRatio : undefined,
    before: latency?.before, after: latency?.after, withinNoise: latency ? latencyWithinNoise(latency.before, latency.after) : undefined,
    speedNote: result.speed?.note,
  };
}

const ms = (l?: LatencySummary) => (l ? `${l.medianMs.toFixed(1)}${l.p25Ms !== undefined && l.p75Ms !== undefined ? ` [${l.p25Ms.toFixed(1)}–${l.p75Ms.toFixed(1)}]` : ''}` : '—');

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'prunelens-speedup-'));
  const backend = await initBackend('auto');
  const builders: Record<string, (d: string) => Bench | Promise<Bench>> = { demo: demoBench, resnet20: resnet20Bench, mobilenetv2: mobilenetBench };
  const rows: Row[] = [];
  console.log(`Speedup at −50% FLOPs, backend ${backend}; latency = median ms per batch [interquartile range]`);
  for (const key of MODELS) {
    const build = builders[key];
    if (!build) throw new Error(`unknown model ${key}: use ${Object.keys(builders).join(', ')}`);
    const bench = await build(dir);
    console.log(`\n${bench.name}: batch ${bench.latency.batchSize}, ${bench.latency.runs} timed runs`);
    for (const method of METHODS) for (const variant of VARIANTS) {
      const row = await runOne(dir, bench, method, variant);
      rows.push(row);
      console.log(row.error
        ? `  ${method} ${variant}: failed: ${row.error}`
        : `  ${method} ${variant}: FLOPs ÷${row.flopsRatio?.toFixed(2)}, ${ms(row.before)} → ${ms(row.after)} ms, speedup ${row.speedup?.toFixed(2)}×, efficiency ${row.efficiency?.toFixed(2)}${row.withinNoise ? ' (within noise)' : ''} (${row.wallS.toFixed(0)} s)`);
    }
  }
  const header = ['model', 'method', 'variant', 'FLOPs ratio', 'latency before → after (ms)', 'speedup', 'efficiency'];
  const body = rows.map((r) => r.error
    ? [r.model.split(' (')[0], r.method, r.variant, '—', `failed: ${r.error}`, '—', '—']
    : [r.model.split(' (')[0], r.method, r.variant, `${r.flopsRatio?.toFixed(2)}×`, `${ms(r.before)} → ${ms(r.after)}`, `${r.speedup?.toFixed(2)}×`,
      `${r.efficiency?.toFixed(2)}${(r.efficiency ?? 0) >= 0.8 ? '' : ' ✗'}`]);
  console.log(`\n${table(header, body)}`);
  const met = rows.filter((r) => (r.efficiency ?? 0) >= 0.8).length;
  console.log(`\nEfficiency ≥ 0.8 in ${met} of ${rows.length} rows.`);
  mkdirSync('bench/results', { recursive: true });
  writeFileSync('bench/results/speedup.json', JSON.stringify({ backend, quick, date: new Date().toISOString(), rows }, null, 2) + '\n');
}

void main();
