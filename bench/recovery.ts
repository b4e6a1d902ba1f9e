/**
 * What fine-tuning buys back, and whether labels are needed for it: the demo CNN trained on
 * built-in MNIST (as `npm run demo` does), then every method at −50% FLOPs, fine-tuned
 * (a) with labels (task loss), (b) by distillation from the dense model alone (labels are not
 * used in training, only to measure top-1 on the validation split), (c) with labels plus
 * distillation (weight 0.5). Top-1 of the dense model, right after pruning and after
 * fine-tuning, for each. One run; wasm backend. Writes bench/results/recovery.json.
 *   npm run bench:recovery [-- --methods l1,goprune] [--quick]
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { MethodName } from '../src/engine/config/types.js';
import { initBackend } from '../src/engine/backend/index.js';
import { loadDataset } from '../src/engine/data/index.js';
import { evaluateModel, trainModel } from '../src/engine/train/index.js';
import { saveModelAtomic } from '../src/engine/io/index.js';
import { loadConfig } from '../src/engine/config/index.js';
import { executeSession } from '../src/engine/session/session.js';
import { availableMethods } from '../src/engine/methods/index.js';
import { buildDemoCnn } from '../src/engine/demo/model.js';
import { demoTrainingSettings } from '../src/engine/demo/demo.js';
import { DEMO_METHOD_SETTINGS } from '../src/engine/demo/presets.js';
import { formatAccuracy, table } from '../src/protocol/format.js';

const arg = (name: string) => { const i = process.argv.indexOf(`--${name}`); return i > 0 ? process.argv[i + 1] : undefined; };
const quick = process.argv.includes('--quick');
const METHODS = (arg('methods')?.split(',') ?? availableMethods()) as MethodName[];

const MODES = {
  labels: { objective: 'task' },
  distill: { objective: 'distill', distill: { weight: 1 } },
  'labels+distill': { objective: 'distill', distill: { weight: 0.5 } },
} as const;
type Mode = keyof typeof MODES;

interface Row { method: string; mode: Mode; metric?: string; before?: number; afterPruning?: number; after?: number; flopsReduction?: number; wallS?: number; error?: string }

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'prunelens-recovery-'));
  const backend = await initBackend('auto');
  const { data, pretrain, methodTrain, finetune } = demoTrainingSettings(quick);
  const dataset = await loadDataset(data, join(dir, 'x.prune.json'), { inputShape: [28, 28, 1], classes: 10 }, 1);
  const model = buildDemoCnn({ seed: 1 });
  await trainModel(model, dataset, pretrain, {}, { seed: 1 });
  const dense = await evaluateModel(model, dataset);
  await saveModelAtomic(model, join(dir, 'dense'));
  model.dispose();
  console.log(`Dense demo CNN: top-1 ${formatAccuracy(dense.accuracy)} on ${dataset.description}; backend ${backend}`);

  const rows: Row[] = [];
  mkdirSync(join(dir, 'configs'), { recursive: true });
  for (const method of METHODS) for (const mode of Object.keys(MODES) as Mode[]) {
    const settings = DEMO_METHOD_SETTINGS[method];
    const configPath = join(dir, 'configs', `${method}-${mode}.prune.json`);
    writeFileSync(configPath, JSON.stringify({
      model: '../dense/model.json', method, target: { flopsReduction: 0.5 }, output: `../pruned/${method}-${mode}`,
      data, train: { ...methodTrain, ...settings?.train }, finetune, latency: { runs: 3, batchSize: 32 },
      ...MODES[mode], ...(settings?.options ? { [method]: settings.options } : {}),
    }, null, 2));
    const started = performance.now();
    const result = await executeSession(loadConfig(configPath), () => undefined);
    const wallS = (performance.now() - started) / 1000;
    if (result.type !== 'done') {
      rows.push({ method, mode, error: result.message, wallS });
      console.log(`${method} ${mode}: failed: ${result.message}`);
      continue;
    }
    const metric = result.metric;
    rows.push({
      method, mode, metric: metric?.name, before: metric?.before, afterPruning: metric?.afterPruning, after: metric?.after,
      flopsReduction: 1 - result.after.flops / result.before.flops, wallS,
    });
    console.log(`${method} ${mode}: ${metric?.name} ${formatAccuracy(metric?.before)} → ${formatAccuracy(metric?.afterPruning)} pruned → ${formatAccuracy(metric?.after)} fine-tuned (${wallS.toFixed(0)} s)`);
  }
  const header = ['method', 'fine-tuned with', 'FLOPs ↓', 'top-1 dense', 'after pruning', 'after fine-tuning'];
  const body = rows.map((r) => r.error
    ? [r.method, r.mode, '—', '—', '—', `failed: ${r.error}`]
    : [r.method, r.mode, `${((r.flopsReduction ?? 0) * 100).toFixed(1)}%`, formatAccuracy(r.before), formatAccuracy(r.afterPruning), formatAccuracy(r.after)]);
  console.log(`\n${table(header, body)}`);
  writeFileSync('bench/results/recovery.json', JSON.stringify({
    about: 'demo CNN on built-in MNIST, every method at −50% FLOPs; fine-tuned with labels, by distillation without labels (labels only measure top-1), and with both (distillation weight 0.5)',
    backend, data: dataset.description, dense: dense.accuracy, rows,
  }, null, 2) + '\n');
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
