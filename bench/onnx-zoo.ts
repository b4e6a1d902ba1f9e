/**
 * torchvision models exported to ONNX by real PyTorch (random init, 3×64×64 inputs, 1000 classes,
 * opset 13; built once into .cache/onnx-zoo/ by `scripts/onnx-fixtures/make_fixtures.py --zoo`):
 * import time in PruneLens, max output difference vs ONNX Runtime, then `l1` at −30% and −50%
 * FLOPs (no data: l1 needs none) written back into the original graph, with ONNX Runtime latency
 * of the original and the pruned file measured side by side (interleaved rounds, batch 1 and 8),
 * file sizes, and a check that ONNX Runtime's outputs on the pruned file equal the pruned runtime model's.
 * Each target also runs with every group's kept channels rounded up to a multiple of 8 (the removed
 * channels with the largest norms go back: the engine's `roundKeptChannels`, a config's `roundTo`),
 * since ONNX Runtime's CPU convolutions work in blocks of 8 channels and odd widths can cost more
 * than the FLOPs save. Writes bench/results/onnx-zoo.json.
 *   npm run bench:onnx [-- --models resnet18,squeezenet1_1] [--rounds 5] [--runs 10]
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join, resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { loadModel } from '../src/engine/io/index.js';
import { readNpy } from '../src/engine/data/npy.js';
import { analyzeModel } from '../src/engine/graph/analyze.js';
import { countCost, unitNorms } from '../src/engine/metrics/index.js';
import { selectUnits } from '../src/engine/prune/select.js';
import { roundKeptChannels } from '../src/engine/prune/round.js';
import { removeUnits } from '../src/engine/surgery/index.js';
import { encodeOnnxModel } from '../src/engine/io/onnx/write.js';
import { measureOnnxLatency, onnxRuntime, runOnnx } from '../src/engine/io/onnx/runtime.js';
import { initBackend } from '../src/engine/backend/index.js';

const arg = (name: string) => { const i = process.argv.indexOf(`--${name}`); return i > 0 ? process.argv[i + 1] : undefined; };
const MODELS = (arg('models') ?? 'resnet18,mobilenet_v3_small,squeezenet1_1,densenet121,efficientnet_b0').split(',');
const ROUNDS = Number(arg('rounds') ?? 5);
const RUNS = Number(arg('runs') ?? 10);
const TARGETS = [0.3, 0.5];
const ROUNDINGS = [1, 8];
const BATCHES = [1, 8];
const ZOO = resolve('.cache/onnx-zoo');

interface Latency { batch: number; originalMs: number; prunedMs: number; speedup: number; spreadPct: number }
interface Pruned {
  target: number; roundTo: number; flops: [number, number]; params: [number, number]; fileBytes: [number, number];
  pruneS: number; runtimeVsPrunedModel: number; latency: Latency[];
}
interface Row { model: string; status: string; importS?: number; layers?: number; maxAbsDiff?: number; maxRelDiff?: number; blockedLayers?: number; pruned?: Pruned[] }

function ensureZoo(): void {
  if (MODELS.every((m) => existsSync(join(ZOO, `${m}.onnx`)))) return;
  const setup = spawnSync('bash', ['scripts/onnx-fixtures/setup.sh'], { stdio: 'inherit' });
  if (setup.status !== 0) throw new Error('scripts/onnx-fixtures/setup.sh failed');
  const made = spawnSync('.cache/onnx-venv/bin/python', ['scripts/onnx-fixtures/make_fixtures.py', '--zoo', ZOO], { stdio: 'inherit' });
  if (made.status !== 0) throw new Error('make_fixtures.py --zoo failed');
}

function difference(actual: ArrayLike<number>, expected: ArrayLike<number>): { abs: number; rel: number } {
  let abs = 0, scale = 0;
  for (let i = 0; i < expected.length; i++) {
    abs = Math.max(abs, Math.abs(actual[i] - expected[i]));
    scale = Math.max(scale, Math.abs(expected[i]));
  }
  return { abs, rel: abs / Math.max(scale, 1e-12) };
}

function predictNchw(model: tf.LayersModel, x: { data: Float32Array; shape: number[] }): Float32Array {
  return tf.tidy(() => (model.predict(tf.transpose(tf.tensor(x.data, x.shape), [0, 2, 3, 1])) as tf.Tensor).dataSync() as Float32Array);
}

const median = (xs: number[]) => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };

/** Interleaved rounds (original, pruned, original, …) so both see the same machine state; medians of the per-round medians. */
async function sideBySide(original: string, pruned: Uint8Array, inputShape: number[], batch: number): Promise<Latency> {
  const a: number[] = [], b: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    a.push((await measureOnnxLatency(original, inputShape, { runs: RUNS, batchSize: batch, warmup: 2 }))!.medianMs);
    b.push((await measureOnnxLatency(pruned, inputShape, { runs: RUNS, batchSize: batch, warmup: 2 }))!.medianMs);
  }
  const ratios = a.map((x, i) => x / b[i]);
  const speedup = median(ratios);
  const spreadPct = 100 * (Math.max(...ratios) - Math.min(...ratios)) / speedup;
  return { batch, originalMs: median(a), prunedMs: median(b), speedup, spreadPct };
}

async function benchModel(name: string): Promise<Row> {
  const path = join(ZOO, `${name}.onnx`);
  const input = readNpy(join(ZOO, `${name}.input.npy`));
  const x = { data: Float32Array.from(input.data as Float32Array), shape: input.shape };
  const expected = readNpy(join(ZOO, `${name}.output.npy`)).data as Float32Array;
  const start = performance.now();
  let loaded;
  try {
    loaded = await loadModel(path);
  } catch (err) {
    return { model: name, status: `import failed: ${(err as Error).message}` };
  }
  const importS = (performance.now() - start) / 1000;
  const diff = difference(predictNchw(loaded.model, x), expected);
  const graph = analyzeModel(loaded.model);
  const row: Row = { model: name, status: 'completed', importS, layers: loaded.model.layers.length, maxAbsDiff: diff.abs, maxRelDiff: diff.rel, blockedLayers: graph.layers.filter((l) => l.status === 'blocked').length, pruned: [] };
  const dense = countCost(loaded.model);
  const norms = unitNorms(loaded.model, graph, 'l1');
  for (const target of TARGETS) for (const roundTo of ROUNDINGS) {
    const t0 = performance.now();
    const units = roundKeptChannels(graph, norms, selectUnits(graph, loaded.model, norms, { flopsReduction: target }, { scope: 'global' }), roundTo);
    const pruned = await removeUnits(loaded.model, graph, units);
    const bytes = await encodeOnnxModel(pruned, loaded.onnx!, path);
    const pruneS = (performance.now() - t0) / 1000;
    const cost = countCost(pruned);
    const [ortOut] = await runOnnx(bytes, x);
    const check = difference(ortOut.data, predictNchw(pruned, x));
    const latency: Latency[] = [];
    for (const batch of BATCHES) latency.push(await sideBySide(path, bytes, x.shape.slice(1), batch));
    row.pruned!.push({
      target, roundTo, flops: [dense.flops, cost.flops], params: [dense.params, cost.params], fileBytes: [statSync(path).size, bytes.byteLength],
      pruneS, runtimeVsPrunedModel: check.rel, latency,
    });
    pruned.dispose();
  }
  loaded.model.dispose();
  return row;
}

async function main(): Promise<void> {
  if (!(await onnxRuntime())) throw new Error('onnxruntime-node is not installed (npm ci installs it as an optional dependency)');
  ensureZoo();
  const backend = await initBackend('auto');
  const rows: Row[] = [];
  const mb = (n: number) => `${(n / 1e6).toFixed(1)} MB`;
  const g = (n: number) => (n >= 1e9 ? `${(n / 1e9).toFixed(2)}G` : `${(n / 1e6).toFixed(1)}M`);
  console.log(`| model | import | max diff vs ORT (abs / rel) | target | kept channels | FLOPs | params | file | ORT batch 1: original → pruned (speedup, spread) | ORT batch 8 | ORT on pruned file vs pruned model |`);
  console.log('|---|---|---|---|---|---|---|---|---|---|---|');
  for (const name of MODELS) {
    const row = await benchModel(name);
    rows.push(row);
    if (!row.pruned) { console.log(`| ${name} | ${row.status} |`); continue; }
    for (const p of row.pruned) {
      const lat = p.latency.map((l) => `${l.originalMs.toFixed(2)} → ${l.prunedMs.toFixed(2)} ms (${l.speedup.toFixed(2)}×, ±${(l.spreadPct / 2).toFixed(0)}%)`);
      console.log(`| ${name} | ${row.importS!.toFixed(2)} s | ${row.maxAbsDiff!.toExponential(1)} / ${row.maxRelDiff!.toExponential(1)} | −${p.target * 100}% | ${p.roundTo > 1 ? `×${p.roundTo}` : 'as selected'} | ${g(p.flops[0])} → ${g(p.flops[1])} | ${g(p.params[0])} → ${g(p.params[1])} | ${mb(p.fileBytes[0])} → ${mb(p.fileBytes[1])} | ${lat[0]} | ${lat[1]} | ${p.runtimeVsPrunedModel.toExponential(1)} |`);
    }
  }
  const zoo = JSON.parse(readFileSync(join(ZOO, 'zoo.json'), 'utf8'));
  writeFileSync('bench/results/onnx-zoo.json', JSON.stringify({
    about: 'torchvision models (random init, 3×64×64, 1000 classes) exported by PyTorch to ONNX opset 13; l1 pruning with no data; latency in ONNX Runtime (CPU execution provider), original and pruned interleaved',
    exporter: zoo.versions, tfjsBackend: backend, cpus: cpus().length, rounds: ROUNDS, runsPerRound: RUNS, rows,
  }, null, 2) + '\n');
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
