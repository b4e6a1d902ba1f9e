/**
 * Keras applications written by real Keras (the venv from scripts/keras-fixtures/setup.sh; random
 * init, 64×64×3 inputs, 10 classes, batch norms perturbed and calibrated so outputs depend on the
 * input), as .keras and .h5: load time in PruneLens, max output difference vs Keras, `l1` at −30%
 * FLOPs through the CLI (no data), the pruned file reloaded in real Keras (its parameter count vs the
 * report's), params, FLOPs and file size before/after. One model at a time. Models are built once
 * into .cache/keras-zoo/ (scripts/keras-fixtures/make_zoo.py). Writes bench/results/keras-zoo.json.
 *   npm run bench:keras [-- --models MobileNetV2,ResNet50] [--formats keras,h5]
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { pruneWithCli } from './cli-events.js';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { loadModel } from '../src/engine/io/index.js';
import { readNpy } from '../src/engine/data/npy.js';
import type { DoneEvent, LayerStat } from '../src/protocol/events.js';

const arg = (name: string) => { const i = process.argv.indexOf(`--${name}`); return i > 0 ? process.argv[i + 1] : undefined; };
const MODELS = (arg('models') ?? 'MobileNetV2,ResNet50,EfficientNetB0,DenseNet121').split(',');
const FORMATS = (arg('formats') ?? 'keras,h5').split(',');
const ZOO = resolve('.cache/keras-zoo');
const PYTHON = resolve('.cache/keras-venv/bin/python');
const pythonEnv = { ...process.env, KERAS_BACKEND: 'jax' };

interface Row {
  model: string; format: string; status: string;
  loadS?: number; maxAbsDiff?: number; maxRelDiff?: number;
  flops?: [number, number]; params?: [number, number]; fileBytes?: [number, number];
  kerasParams?: number; kerasReload?: string; blocked?: string; pruneS?: number;
}

function firstLine(text: string): string { return text.trim().split('\n').filter(Boolean).pop() ?? ''; }

function buildZoo(name: string): string | undefined {
  if (existsSync(join(ZOO, `${name}.h5`)) && existsSync(join(ZOO, `${name}.outputs.npy`))) return undefined;
  const made = spawnSync(PYTHON, ['scripts/keras-fixtures/make_zoo.py', ZOO, name], { env: pythonEnv, encoding: 'utf8' });
  return made.status === 0 ? undefined : `Keras could not build it: ${firstLine(made.stderr)}`;
}

/** Loads the pruned file in real Keras; returns its parameter count or why it failed. */
function reloadInKeras(path: string, name: string): { params?: number; message: string } {
  const checked = spawnSync(PYTHON, ['scripts/keras-fixtures/check_fixture.py', path, join(ZOO, `${name}.inputs.npy`), join(ZOO, `${name}.outputs.npy`)],
    { env: pythonEnv, encoding: 'utf8' });
  const match = /params (\d+)/.exec(checked.stdout);
  return match ? { params: Number(match[1]), message: 'loads and runs' } : { message: firstLine(checked.stderr) };
}

async function prune(model: string, workDir: string, output: string): Promise<{ done?: DoneEvent; error?: string; blocked: LayerStat[] }> {
  const config = { model, method: 'l1', target: { flopsReduction: 0.3 }, output, latency: { runs: 1, batchSize: 1 }, backend: 'cpu' };
  const configPath = join(workDir, `${output}.prune.json`);
  writeFileSync(configPath, JSON.stringify(config, null, 2));
  let finished: DoneEvent | undefined, error: string | undefined, blocked: LayerStat[] = [];
  const { stderr } = await pruneWithCli(configPath, (e) => {
    if (e.type === 'done') finished = e;
    else if (e.type === 'error') error = e.message;
    else if (e.type === 'layers' && blocked.length === 0) blocked = e.layers.filter((l) => l.status === 'blocked');
  });
  return { done: finished, error: finished ? undefined : (error ?? firstLine(stderr)), blocked };
}

function describeBlocked(blocked: LayerStat[]): string | undefined {
  if (blocked.length === 0) return undefined;
  const reasons = [...new Set(blocked.map((l) => l.reason ?? 'no reason given'))];
  return `${blocked.length} layers blocked: ${reasons.slice(0, 2).join('; ')}${reasons.length > 2 ? ` (+${reasons.length - 2} more reasons)` : ''}`;
}

async function measure(name: string, format: string, workDir: string): Promise<Row> {
  const row: Row = { model: name, format, status: 'completed' };
  const source = join(ZOO, `${name}.${format}`);
  const started = performance.now();
  try {
    const loaded = await loadModel(source);
    row.loadS = (performance.now() - started) / 1000;
    const inputs = readNpy(join(ZOO, `${name}.inputs.npy`));
    const expected = readNpy(join(ZOO, `${name}.outputs.npy`)).data as Float32Array;
    const actual = tf.tidy(() => (loaded.model.predict(tf.tensor(inputs.data as Float32Array, inputs.shape)) as tf.Tensor).dataSync());
    let maxAbs = 0, scale = 0;
    expected.forEach((value, i) => { maxAbs = Math.max(maxAbs, Math.abs(actual[i] - value)); scale = Math.max(scale, Math.abs(value)); });
    row.maxAbsDiff = maxAbs;
    row.maxRelDiff = maxAbs / scale; // relative to the output's scale, as --verify measures it
    loaded.model.dispose();
  } catch (err) {
    row.status = `load failed: ${firstLine((err as Error).message)}`;
    return row;
  }
  const pruneStarted = performance.now();
  const result = await prune(source, workDir, `pruned-${name}-${format}`);
  row.pruneS = (performance.now() - pruneStarted) / 1000;
  row.blocked = describeBlocked(result.blocked);
  if (!result.done) {
    row.status = `l1 failed: ${result.error}`;
    return row;
  }
  const d = result.done;
  row.flops = [d.before.flops, d.after.flops];
  row.params = [d.before.params, d.after.params];
  if (d.size) row.fileBytes = [d.size.before, d.size.after];
  if (!d.output) { row.status = 'l1 wrote no output'; return row; }
  const reloaded = reloadInKeras(d.output, name);
  row.kerasParams = reloaded.params;
  row.kerasReload = reloaded.message;
  if (reloaded.params === undefined) row.status = `Keras cannot reload the pruned file: ${reloaded.message}`;
  else if (reloaded.params !== d.after.params) row.status = `Keras counts ${reloaded.params} params, the report ${d.after.params}`;
  return row;
}

const M = (n: number) => `${(n / 1e6).toFixed(2)}M`;
const pct = (pair: [number, number]) => `${(100 * (1 - pair[1] / pair[0])).toFixed(1)}%`;

function tableRow(r: Row): string {
  return `| ${r.model} | .${r.format} | ${r.loadS !== undefined ? `${r.loadS.toFixed(2)} s` : '—'} | ${r.maxAbsDiff !== undefined ? `${r.maxAbsDiff.toExponential(1)} (rel ${r.maxRelDiff!.toExponential(1)})` : '—'}`
    + ` | ${r.flops ? `${M(r.flops[0])} → ${M(r.flops[1])} (−${pct(r.flops)})` : '—'} | ${r.params ? `${M(r.params[0])} → ${M(r.params[1])}` : '—'}`
    + ` | ${r.kerasParams !== undefined ? `${r.kerasParams}${r.params && r.kerasParams === r.params[1] ? ' (= report)' : ` (report ${r.params?.[1]})`}` : '—'}`
    + ` | ${r.fileBytes ? `${(r.fileBytes[0] / 1e6).toFixed(2)} MB → ${(r.fileBytes[1] / 1e6).toFixed(2)} MB` : '—'}`
    + ` | ${r.pruneS !== undefined ? `${r.pruneS.toFixed(0)} s` : '—'} | ${r.status}${r.blocked ? `; ${r.blocked}` : ''} |`;
}

async function main(): Promise<void> {
  if (!existsSync(PYTHON)) {
    console.error(`${PYTHON} is missing: run scripts/keras-fixtures/setup.sh first`);
    process.exit(2);
  }
  await tf.setBackend('cpu');
  const workDir = mkdtempSync(join(tmpdir(), 'prunelens-keras-zoo-'));
  const rows: Row[] = [];
  console.log('Keras 3.15.1 applications, random init (batch norms perturbed and calibrated), 64×64×3, 10 classes; l1 at −30% FLOPs, no data, cpu backend');
  console.log('| model | format | load | max output diff vs Keras | FLOPs | params | pruned file in Keras: params | file size | prune wall | result |');
  console.log('|---|---|---|---|---|---|---|---|---|---|');
  for (const name of MODELS) {
    const buildError = buildZoo(name);
    for (const format of FORMATS) {
      const row = buildError ? { model: name, format, status: buildError } : await measure(name, format, workDir);
      rows.push(row);
      console.log(tableRow(row));
    }
  }
  mkdirSync('bench/results', { recursive: true });
  // A run of some models replaces their rows and keeps the others'.
  const resultsFile = 'bench/results/keras-zoo.json';
  const earlier = existsSync(resultsFile) ? (JSON.parse(readFileSync(resultsFile, 'utf8')) as { rows: typeof rows }).rows : [];
  const kept = earlier.filter((r) => !rows.some((n) => n.model === r.model && n.format === r.format));
  writeFileSync(resultsFile, JSON.stringify({
    keras: '3.15.1 (jax backend)', input: [64, 64, 3], classes: 10, method: 'l1', target: { flopsReduction: 0.3 }, backend: 'cpu', rows: [...kept, ...rows],
  }, null, 2) + '\n');
  process.exit(rows.every((r) => r.status === 'completed') ? 0 : 1);
}

void main();
