/**
 * Whether the paper methods beat one-shot L1 at equal FLOPs and an equal training budget, on a task
 * harder than MNIST: Fashion-MNIST (Debian's dataset-fashion-mnist, installed with apt-get when
 * missing), a CIFAR-style ResNet-20 adapted to 28×28×1 and a small MobileNetV2-style net. Each dense
 * model is trained once and cached under .cache/bench-methods/. Then every method at −50% and −70%
 * FLOPs, over several seeds, as full sessions (method phase, removal, fine-tuning, evaluation on the
 * Fashion-MNIST test images; nothing is tuned on them).
 *
 * The same training budget for every method: a method phase of `methodEpochs` plus `finetuneEpochs`
 * of fine-tuning. L1 has no phase, so it fine-tunes for both. i-SpaSP spends its phase in per-block
 * training: `methodEpochs` split evenly over its blocks. Options are the schema's defaults (what a
 * user gets), the training sections the same for all.
 *
 * Per cell: mean ± standard deviation of top-1 over the seeds, measured FLOPs reduction, TF.js
 * latency (batch 32) and speedup, wall time per session. Writes bench/results/methods.json
 * (`--quick`: bench/results/methods-quick.json).
 *
 *   npm run bench:methods [-- --quick] [--seeds 3] [--archs resnet20,mobilenetv2] [--methods l1,dsp] [--targets 0.5,0.7]
 *     [--options '{"dsp": {"regularization": 0.05}}'] [--out file.json]
 *
 * Sizes. Full: 4000 training images (a fixed subsample of the 60000), 2000 test images, dense models
 * trained 15 epochs, method phase 2 epochs + 1 of fine-tuning, 3 seeds, both architectures (6 methods
 * × 2 targets × 3 seeds × 2 architectures = 72 sessions). Quick: 800 training and 500 test images,
 * dense 4 epochs, 1 + 1 epochs, 1 seed, ResNet-20 only: proves the bench runs, says little about methods.
 */
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { buildMobileNetV2 } from './mobilenetv2.js';
import type { DataConfig, MethodName, TrainConfig } from '../src/engine/config/types.js';
import type { EngineEvent } from '../src/protocol/events.js';
import { initBackend } from '../src/engine/backend/index.js';
import { loadDataset } from '../src/engine/data/index.js';
import { evaluateModel, trainModel } from '../src/engine/train/index.js';
import { loadModel, saveModelAtomic } from '../src/engine/io/index.js';
import { analyzeModel } from '../src/engine/graph/analyze.js';
import { countCost } from '../src/engine/metrics/index.js';
import { loadConfig } from '../src/engine/config/index.js';
import { executeSession } from '../src/engine/session/session.js';
import { findBlocks } from '../src/engine/methods/ispasp/blocks.js';
import { METHOD_NAMES } from '../src/protocol/methods.js';
import { buildResNet20 } from './resnet20.js';

const FASHION_DIR = '/usr/share/datasets/fashion-mnist';
const INPUT = [28, 28, 1];
const CLASSES = 10;

interface Size {
  trainLimit: number; testLimit: number; denseEpochs: number; methodEpochs: number; finetuneEpochs: number;
  seeds: number; archs: string[]; latencyRuns: number;
}
const SIZES: Record<'full' | 'quick', Size> = {
  full: { trainLimit: 4000, testLimit: 2000, denseEpochs: 15, methodEpochs: 2, finetuneEpochs: 1, seeds: 3, archs: ['resnet20', 'mobilenetv2'], latencyRuns: 10 },
  quick: { trainLimit: 800, testLimit: 500, denseEpochs: 4, methodEpochs: 1, finetuneEpochs: 1, seeds: 1, archs: ['resnet20'], latencyRuns: 5 },
};

const arg = (name: string) => { const i = process.argv.indexOf(`--${name}`); return i > 0 ? process.argv[i + 1] : undefined; };

/**
 * A small MobileNetV2-style net for 28×28×1: conv3×3 (16) + inverted residual blocks (1×1 expansion
 * ×t, 3×3 depthwise, 1×1 linear projection, an Add where stride is 1 and widths match) + conv1×1
 * (256), BatchNorm and ReLU6 after every conv but the projections, global average pooling, dense head.
 */
export function buildSmallMobileNetV2(options: { seed?: number } = {}): tf.LayersModel {
  return buildMobileNetV2({
    inputShape: INPUT, classes: CLASSES, seed: options.seed, name: 'mobilenetv2_small',
    stem: { channels: 16, stride: 1 }, stages: [[1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 2, 2], [6, 64, 2, 1]], headChannels: 256,
  });
}

/**
 * Batch-norm moving averages with PyTorch's momentum (0.1 of each batch) instead of Keras' 0.01: with
 * 0.99 a few hundred steps leave the statistics mostly at their initial values and the model in
 * inference mode near chance (ResNet-20 after 39 steps: 10.6% top-1 at a training loss of 0.81).
 * Saved in the model's config, so the sessions' phases use it too.
 */
function withBatchNormMomentum(model: tf.LayersModel, momentum = 0.9): tf.LayersModel {
  for (const layer of model.layers) if (layer.getClassName() === 'BatchNormalization') (layer as unknown as { momentum: number }).momentum = momentum;
  return model;
}

const ARCHS: Record<string, { label: string; build: () => tf.LayersModel }> = {
  resnet20: { label: 'ResNet-20 (28×28×1)', build: () => withBatchNormMomentum(buildResNet20({ inputShape: INPUT, classes: CLASSES, seed: 1 })) },
  mobilenetv2: { label: 'MobileNetV2-style (28×28×1)', build: () => withBatchNormMomentum(buildSmallMobileNetV2({ seed: 1 })) },
};

/** Installs Debian's dataset-fashion-mnist when its files are missing, and says so. */
function ensureFashionMnist(): void {
  if (existsSync(join(FASHION_DIR, 'train-images-idx3-ubyte.gz'))) return;
  console.log(`Fashion-MNIST is missing (${FASHION_DIR}); installing Debian's dataset-fashion-mnist with apt-get…`);
  const asRoot = process.getuid?.() === 0 ? [] : ['sudo'];
  const run = spawnSync(asRoot.length ? 'sudo' : 'apt-get', [...(asRoot.length ? ['apt-get'] : []), 'install', '-y', 'dataset-fashion-mnist'],
    { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  if (run.status !== 0 || !existsSync(join(FASHION_DIR, 'train-images-idx3-ubyte.gz'))) {
    throw new Error('could not install dataset-fashion-mnist: run `sudo apt-get install dataset-fashion-mnist` (Debian/Ubuntu) and rerun');
  }
  console.log('Installed dataset-fashion-mnist.');
}

interface DenseModel { path: string; accuracy: number; flops: number; params: number; trainMs: number; cached: boolean }

/** The dense model of `arch`, trained once per size and cached under .cache/bench-methods/. */
async function denseModel(arch: string, data: DataConfig, train: TrainConfig, root: string): Promise<DenseModel> {
  const key = createHash('sha256').update(JSON.stringify({ arch, data, train, version: 2 })).digest('hex').slice(0, 12);
  const dir = join(root, '.cache', 'bench-methods', `${arch}-${key}`);
  const metaPath = join(dir, 'meta.json');
  if (existsSync(metaPath) && existsSync(join(dir, 'model.json'))) {
    return { ...(JSON.parse(readFileSync(metaPath, 'utf8')) as Omit<DenseModel, 'path' | 'cached'>), path: join(dir, 'model.json'), cached: true };
  }
  const dataset = await loadDataset(data, join(dir, 'x.prune.json'), { inputShape: INPUT, classes: CLASSES }, 1);
  const model = ARCHS[arch].build();
  const started = Date.now();
  await trainModel(model, dataset, train, {}, {
    seed: 1, onEpoch: (e) => console.log(`  ${arch} dense epoch ${e.epoch + 1}/${e.epochs}: loss ${e.loss.toFixed(3)}, test top-1 ${((e.valAccuracy ?? NaN) * 100).toFixed(2)}%`),
  });
  const trainMs = Date.now() - started;
  const evaluation = await evaluateModel(model, dataset);
  const cost = countCost(model);
  await saveModelAtomic(model, dir);
  model.dispose();
  const meta = { accuracy: evaluation.accuracy!, flops: cost.flops, params: cost.params, trainMs };
  writeFileSync(metaPath, JSON.stringify(meta, null, 2) + '\n');
  return { ...meta, path: join(dir, 'model.json'), cached: false };
}

/** i-SpaSP's blocks in the dense model: its phase budget is split over them. */
async function ispaspBlockCount(modelPath: string): Promise<number> {
  const { model } = await loadModel(modelPath);
  try {
    return Math.max(1, findBlocks(model, analyzeModel(model, { exclude: [] })).blocks.length);
  } finally {
    model.dispose();
  }
}

interface Cell {
  arch: string; method: string; target: number; seed: number;
  top1?: number; top1AfterPruning?: number; flopsReduction?: number; paramsReduction?: number;
  latencyMs?: { before: number; after: number }; speedup?: number; wallTimeMs: number;
  trainEpochs: number; finetuneEpochs: number; notes?: string[]; error?: string;
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
/** Sample standard deviation (n − 1); 0 for a single value. */
const sd = (xs: number[]) => xs.length < 2 ? 0 : Math.sqrt(xs.reduce((a, x) => a + (x - mean(xs)) ** 2, 0) / (xs.length - 1));
const pct = (x: number) => (100 * x).toFixed(2);

async function main(): Promise<void> {
  const quick = process.argv.includes('--quick');
  const size: Size = { ...SIZES[quick ? 'quick' : 'full'] };
  if (arg('seeds')) size.seeds = Number(arg('seeds'));
  if (arg('archs')) size.archs = arg('archs')!.split(',');
  const methods = (arg('methods')?.split(',') ?? [...METHOD_NAMES]) as MethodName[];
  const targets = arg('targets')?.split(',').map(Number) ?? [0.5, 0.7];
  const methodOptions = JSON.parse(arg('options') ?? '{}') as Record<string, Record<string, unknown>>;
  for (const a of size.archs) if (!ARCHS[a]) throw new Error(`unknown architecture ${a}: use ${Object.keys(ARCHS).join(', ')}`);

  const started = Date.now();
  const root = resolve('.');
  ensureFashionMnist();
  const backend = await initBackend('auto');
  const data: DataConfig = { format: 'builtin', name: 'fashion-mnist', trainLimit: size.trainLimit, testLimit: size.testLimit };
  const denseTrain: TrainConfig = { epochs: size.denseEpochs, batchSize: 64, learningRate: 0.05, momentum: 0.9, weightDecay: 5e-4, optimizer: 'sgd', schedule: 'cosine' };
  const phase: TrainConfig = { epochs: size.methodEpochs, batchSize: 64, learningRate: 0.01, momentum: 0.9, weightDecay: 5e-4, optimizer: 'sgd', schedule: 'auto' };
  const finetune: TrainConfig = { ...phase, epochs: size.finetuneEpochs };
  const latency = { runs: size.latencyRuns, batchSize: 32 };
  console.log(`bench:methods (${quick ? 'quick' : 'full'}) — backend ${backend}; Fashion-MNIST ${size.trainLimit} train (seeded subsample) + ${size.testLimit} test; load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);

  const work = mkdtempSync(join(tmpdir(), 'prunelens-bench-methods-'));
  const cells: Cell[] = [];
  const dense: Record<string, DenseModel & { label: string }> = {};
  try {
    for (const arch of size.archs) {
      const model = await denseModel(arch, data, denseTrain, root);
      dense[arch] = { ...model, label: ARCHS[arch].label };
      console.log(`${ARCHS[arch].label}: dense top-1 ${pct(model.accuracy)}%, ${(model.flops / 1e6).toFixed(1)} MFLOPs, ${model.params} params${model.cached ? ' (cached)' : `, trained in ${(model.trainMs / 1000).toFixed(0)} s`}`);
      const blocks = methods.includes('ispasp') ? await ispaspBlockCount(model.path) : 1;
      for (const method of methods) {
        for (const target of targets) {
          for (let seed = 1; seed <= size.seeds; seed++) {
            // The same budget: L1 has no phase and fine-tunes for both; i-SpaSP splits its phase over its blocks.
            const trains = method !== 'l1';
            const cellFinetune = trains ? finetune : { ...finetune, epochs: size.methodEpochs + size.finetuneEpochs };
            const sections: Record<string, unknown> = method === 'ispasp' ? { ispasp: { blockFinetuneEpochs: size.methodEpochs / blocks } } : {};
            // --options '{"dsp": {"regularization": 0.05}}': a method's section over the schema's defaults (for tuning runs).
            if (methodOptions[method]) sections[method] = { ...(sections[method] as object), ...methodOptions[method] };
            const name = `${arch}-${method}-${target}-${seed}`;
            const configPath = join(work, `${name}.prune.json`);
            writeFileSync(configPath, JSON.stringify({
              model: model.path, method, target: { flopsReduction: target }, output: join(work, 'out', name), seed,
              data, ...(trains ? { train: phase } : {}), finetune: cellFinetune, latency, backend: 'auto', ...sections,
            }));
            const notes: string[] = [];
            const cell: Cell = { arch, method, target, seed, wallTimeMs: 0, trainEpochs: trains ? size.methodEpochs : 0, finetuneEpochs: cellFinetune.epochs };
            const cellStarted = Date.now();
            try {
              const result = await executeSession(loadConfig(configPath), (e: EngineEvent) => { if (e.type === 'warning') notes.push(e.message); });
              if (result.type !== 'done') throw new Error(result.message);
              Object.assign(cell, {
                top1: result.accuracy?.after, top1AfterPruning: result.metric?.afterPruning,
                flopsReduction: 1 - result.after.flops / result.before.flops, paramsReduction: 1 - result.after.params / result.before.params,
                latencyMs: result.latency ? { before: result.latency.before.medianMs, after: result.latency.after.medianMs } : undefined,
                speedup: result.latency?.speedup, wallTimeMs: result.wallTimeMs,
              });
            } catch (err) {
              cell.error = err instanceof Error ? err.message.split('\n')[0] : String(err);
              cell.wallTimeMs = Date.now() - cellStarted;
            }
            if (notes.length) cell.notes = notes;
            cells.push(cell);
            console.log(`  ${method} −${target * 100}% seed ${seed}: ${cell.error ? `failed: ${cell.error}` : `top-1 ${pct(cell.top1 ?? NaN)}% (FLOPs −${pct(cell.flopsReduction!)}%, speedup ${cell.speedup?.toFixed(2)}×)`}, ${(cell.wallTimeMs / 1000).toFixed(0)} s; load ${loadavg()[0].toFixed(2)}`);
          }
        }
      }
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }

  const summary = size.archs.flatMap((arch) => methods.flatMap((method) => targets.map((target) => {
    const runs = cells.filter((c) => c.arch === arch && c.method === method && c.target === target);
    const ok = runs.filter((c) => c.top1 !== undefined);
    const top1 = ok.map((c) => c.top1!);
    return {
      arch, method, target, runs: runs.length, failed: runs.length - ok.length,
      top1Mean: mean(top1), top1Sd: sd(top1), flopsReduction: mean(ok.map((c) => c.flopsReduction!)),
      speedup: mean(ok.filter((c) => c.speedup !== undefined).map((c) => c.speedup!)), wallTimeS: mean(runs.map((c) => c.wallTimeMs)) / 1000,
    };
  })));
  const tables = size.archs.map((arch) => {
    const header = `| ${dense[arch].label}, dense ${pct(dense[arch].accuracy)}% | ${targets.map((t) => `−${t * 100}% FLOPs: top-1 (FLOPs, speedup)`).join(' | ')} | wall time per session |`;
    const rule = `|---|${targets.map(() => '---').join('|')}|---|`;
    const body = methods.map((method) => {
      const rows = targets.map((t) => summary.find((s) => s.arch === arch && s.method === method && s.target === t)!);
      const cellText = (s: (typeof summary)[number]) => s.runs === s.failed ? 'failed'
        : `${pct(s.top1Mean)} ± ${pct(s.top1Sd)}% (−${pct(s.flopsReduction)}%, ${s.speedup.toFixed(2)}×)${s.failed ? `, ${s.failed} failed` : ''}`;
      return `| ${method} | ${rows.map(cellText).join(' | ')} | ${rows.map((s) => `${s.wallTimeS.toFixed(0)} s`).join(' / ')} |`;
    });
    return [header, rule, ...body].join('\n');
  });
  const table = tables.join('\n\n');
  console.log(`\nTop-1 on ${size.testLimit} Fashion-MNIST test images, mean ± sd over ${size.seeds} seed(s); measured FLOPs reduction and TF.js speedup (batch 32).\n\n${table}\n`);
  mkdirSync(join(root, 'bench', 'results'), { recursive: true });
  const out = arg('out') ? resolve(arg('out')!) : join(root, 'bench', 'results', quick ? 'methods-quick.json' : 'methods.json');
  writeFileSync(out, JSON.stringify({
    size: quick ? 'quick' : 'full', commit: spawnSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).stdout.trim(), backend, loadAverage: loadavg(), data, denseTrain, methodPhase: phase, finetune, latency,
    budget: 'every method: method phase + fine-tuning epochs; l1 fine-tunes for both; i-SpaSP splits its phase over its blocks', options: methodOptions,
    dense, summary, cells, table, wallTimeMs: Date.now() - started,
  }, null, 2) + '\n');
  console.log(`Total ${((Date.now() - started) / 60000).toFixed(1)} min; results in ${out}`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
