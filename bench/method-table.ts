/**
 * Accuracy and wall time at 30 / 50 / 70 % FLOPs reduction for every method on the demo CNN:
 * one dense model pretrained briefly on built-in MNIST, then, per method and target, a full
 * session (method phase, physical removal, the same fine-tuning budget for every method,
 * evaluation). Methods that rank channels use `scope: layer` (the same fraction from each
 * group), so those rows compare importance criteria; DSP, i-SpaSP and OCSPruner allocate
 * widths their own way. Prints a markdown table and writes bench/results/method-table.json.
 *
 *   node --import tsx bench/method-table.ts [--train 3000] [--test 1000]     (from the repository root)
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { DataConfig, TrainConfig } from '../src/engine/config/types.js';
import type { EngineEvent } from '../src/protocol/events.js';
import { initBackend } from '../src/engine/backend/index.js';
import { loadDataset } from '../src/engine/data/index.js';
import { trainModel, evaluateModel } from '../src/engine/train/index.js';
import { saveModelAtomic } from '../src/engine/io/index.js';
import { countCost } from '../src/engine/metrics/index.js';
import { loadConfig } from '../src/engine/config/index.js';
import { executeSession } from '../src/engine/session/session.js';
import { buildDemoCnn } from '../src/engine/demo/model.js';
import { DEMO_METHOD_SETTINGS } from '../src/engine/demo/presets.js';
import { METHOD_NAMES } from '../src/protocol/methods.js';

const TARGETS = [0.3, 0.5, 0.7];
/** The method sections the demo uses (OCSPruner's cycle gets one more epoch than the others' method phase). */
const METHOD_OPTIONS = Object.fromEntries(METHOD_NAMES.flatMap((m) => (DEMO_METHOD_SETTINGS[m]?.options ? [[m, DEMO_METHOD_SETTINGS[m].options]] : [])));

function argument(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

async function main(): Promise<void> {
  const started = Date.now();
  const root = resolve('.');
  const work = mkdtempSync(join(tmpdir(), 'prunelens-method-table-'));
  const backend = await initBackend('auto');
  const data: DataConfig = { format: 'builtin', name: 'mnist', trainLimit: argument('train', 3000), testLimit: argument('test', 1000) };
  const pretrain: TrainConfig = { epochs: 2, batchSize: 64, learningRate: 0.05, momentum: 0.9, weightDecay: 5e-4, optimizer: 'sgd', schedule: 'cosine' };
  const methodTrain: TrainConfig = { ...pretrain, epochs: 2, learningRate: 0.01, schedule: 'constant' };
  const finetune: TrainConfig = { ...pretrain, epochs: 1, learningRate: 0.01 };

  const dataset = await loadDataset(data, join(work, 'bench.prune.json'), { inputShape: [28, 28, 1], classes: 10 }, 1);
  const model = buildDemoCnn({ seed: 1 });
  await trainModel(model, dataset, pretrain, {}, { seed: 1 });
  const dense = await evaluateModel(model, dataset);
  const denseFlops = countCost(model).flops;
  await saveModelAtomic(model, join(work, 'dense'));
  model.dispose();
  console.log(`backend ${backend}; ${dataset.description}; dense top-1 ${(dense.accuracy! * 100).toFixed(2)}%`);

  const rows: { method: string; target: number; flopsReduction: number; accuracy: number; wallTimeMs: number; notes?: string[] }[] = [];
  for (const method of METHOD_NAMES) {
    for (const target of TARGETS) {
      const configPath = join(work, `${method}-${target}.prune.json`);
      writeFileSync(configPath, JSON.stringify({
        model: './dense/model.json', method, target: { flopsReduction: target }, scope: 'layer', output: `./out/${method}-${target}`,
        data, train: { ...methodTrain, ...DEMO_METHOD_SETTINGS[method]?.train }, finetune, latency: { runs: 1, batchSize: 1 }, backend: 'auto',
        ...(METHOD_OPTIONS[method] ? { [method]: METHOD_OPTIONS[method] } : {}),
      }));
      const notes: string[] = [];
      const result = await executeSession(loadConfig(configPath), (e: EngineEvent) => {
        if (e.type === 'warning') notes.push(e.message);
      });
      if (result.type !== 'done') throw new Error(`${method} at ${target}: ${result.message}`);
      const row = { method, target, flopsReduction: 1 - result.after.flops / denseFlops, accuracy: result.accuracy?.after ?? NaN, wallTimeMs: result.wallTimeMs, notes: notes.length ? notes : undefined };
      rows.push(row);
      console.log(`${method} −${target * 100}%: FLOPs −${(row.flopsReduction * 100).toFixed(1)}%, top-1 ${(row.accuracy * 100).toFixed(2)}% (${(row.wallTimeMs / 1000).toFixed(0)} s)`);
    }
  }

  const header = `| method | ${TARGETS.map((t) => `−${t * 100}% FLOPs`).join(' | ')} |`;
  const rule = `|---|${TARGETS.map(() => '---').join('|')}|`;
  const body = METHOD_NAMES.map((method) => `| ${method} | ${TARGETS.map((t) => {
    const r = rows.find((x) => x.method === method && x.target === t)!;
    return `${(r.accuracy * 100).toFixed(2)}% (−${(r.flopsReduction * 100).toFixed(1)}%, ${(r.wallTimeMs / 1000).toFixed(0)} s)`;
  }).join(' | ')} |`);
  const table = [header, rule, ...body].join('\n');
  console.log(`\nDense top-1 ${(dense.accuracy! * 100).toFixed(2)}%. Cells: top-1 after fine-tuning (measured FLOPs reduction, session wall time).\n\n${table}\n`);
  mkdirSync(join(root, 'bench', 'results'), { recursive: true });
  writeFileSync(join(root, 'bench', 'results', 'method-table.json'), JSON.stringify({
    backend, data: dataset.description, dense: { accuracy: dense.accuracy, flops: denseFlops },
    pretrain, methodTrain, finetune, methodOptions: METHOD_OPTIONS, rows, table, wallTimeMs: Date.now() - started,
  }, null, 2) + '\n');
  rmSync(work, { recursive: true, force: true });
  console.log(`Total ${((Date.now() - started) / 60000).toFixed(1)} min; results in bench/results/method-table.json`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
