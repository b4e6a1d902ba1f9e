/**
 * Two measurements, printed as markdown tables and written to bench/results/analyze.json:
 * 1. `prunelens analyze` on a generated 100-layer residual CNN: wall time of the whole CLI process
 *    (Node start, tfjs load, model validation and load, graph analysis, output) and of the
 *    in-process analysis alone.
 * 2. Analysis and a 50% L1 prune of CIFAR ResNet-20/56/110 and DenseNet-121 (32×32 input), in
 *    process, medians of fresh runs after warm-up runs (ANALYZE_WARMUP, default 3: the JIT's first
 *    compiles; the first, cold run is reported too): load (saved files), graph (`analyzeModel`), prune (L1 norms,
 *    `selectUnits` to half of every group's channels, `removeUnits`). When Python with torch and
 *    a Torch-Pruning checkout (`TORCH_PRUNING_DIR`, default .cache/torch-pruning) are present,
 *    bench/torch-pruning.py times Torch-Pruning on the same architectures, in turns with
 *    PruneLens (ANALYZE_ROUNDS rounds, default 3; ANALYZE_RUNS runs each, default 7; PyTorch on
 *    TORCH_THREADS threads, default 1), and the ratios are printed: per round, then over every
 *    round's runs together. The 1-minute load average is printed and kept beside each round (a
 *    shared machine's other processes slow both sides).
 *   node --import tsx bench/analyze.ts [network...]
 */
import * as tf from '@tensorflow/tfjs';
import { mkdtempSync, writeFileSync, mkdirSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { spawnSync } from 'node:child_process';
import { saveModelAtomic, loadModel } from '../src/engine/io/index.js';
import { analyzeModel } from '../src/engine/graph/analyze.js';
import { unitNorms } from '../src/engine/metrics/norms.js';
import { selectUnits } from '../src/engine/prune/select.js';
import { removeUnits } from '../src/engine/surgery/index.js';

type ST = tf.SymbolicTensor;
const apply = (layer: tf.layers.Layer, x: ST | ST[]) => layer.apply(x) as ST;

/** Stem conv, then residual blocks (conv-bn-relu-conv-bn-add-relu) until `layers` layers exist. */
function buildResidualCnn(layers: number): tf.LayersModel {
  const input = tf.input({ shape: [32, 32, 3], name: 'input' });
  let x = tf.layers.conv2d({ name: 'stem', filters: 32, kernelSize: 3, padding: 'same' }).apply(input) as tf.SymbolicTensor;
  let count = 2;
  let block = 0;
  while (count + 7 <= layers - 2) {
    const shortcut = x;
    let y = tf.layers.conv2d({ name: `b${block}_conv_a`, filters: 32, kernelSize: 3, padding: 'same' }).apply(x) as tf.SymbolicTensor;
    y = tf.layers.batchNormalization({ name: `b${block}_bn_a` }).apply(y) as tf.SymbolicTensor;
    y = tf.layers.reLU({ name: `b${block}_relu_a` }).apply(y) as tf.SymbolicTensor;
    y = tf.layers.conv2d({ name: `b${block}_conv_b`, filters: 32, kernelSize: 3, padding: 'same' }).apply(y) as tf.SymbolicTensor;
    y = tf.layers.batchNormalization({ name: `b${block}_bn_b` }).apply(y) as tf.SymbolicTensor;
    y = tf.layers.add({ name: `b${block}_add` }).apply([y, shortcut]) as tf.SymbolicTensor;
    x = tf.layers.reLU({ name: `b${block}_relu_b` }).apply(y) as tf.SymbolicTensor;
    count += 7;
    block++;
  }
  while (count < layers - 2) {
    x = tf.layers.conv2d({ name: `extra_${count}`, filters: 32, kernelSize: 1 }).apply(x) as tf.SymbolicTensor;
    count++;
  }
  x = tf.layers.globalAveragePooling2d({ name: 'gap' }).apply(x) as tf.SymbolicTensor;
  const out = tf.layers.dense({ name: 'logits', units: 10 }).apply(x) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: out, name: 'residual_cnn_100' });
}

/** CIFAR ResNet of depth 6n+2, bench/torch-pruning.py's CifarResNet: 3×3 stem, 3 stages of n basic blocks (16/32/64), 1×1 projections where the shape changes. */
function buildCifarResNet(depth: number): tf.LayersModel {
  const n = (depth - 2) / 6;
  let seed = 1;
  const conv = (x: ST, filters: number, kernelSize: number, strides: number, name: string) =>
    apply(tf.layers.conv2d({ name, filters, kernelSize, strides, padding: 'same', useBias: false, kernelInitializer: tf.initializers.heNormal({ seed: seed++ }) }), x);
  const bn = (x: ST, name: string) => apply(tf.layers.batchNormalization({ name }), x);
  const relu = (x: ST, name: string) => apply(tf.layers.reLU({ name }), x);
  const input = tf.input({ shape: [32, 32, 3], name: 'image' });
  let h = relu(bn(conv(input, 16, 3, 1, 'stem_conv'), 'stem_bn'), 'stem_relu');
  let channels = 16;
  [16, 32, 64].forEach((width, stage) => {
    for (let block = 0; block < n; block++) {
      const stride = stage > 0 && block === 0 ? 2 : 1;
      const name = `s${stage + 1}b${block + 1}`;
      let o = relu(bn(conv(h, width, 3, stride, `${name}_conv1`), `${name}_bn1`), `${name}_relu1`);
      o = bn(conv(o, width, 3, 1, `${name}_conv2`), `${name}_bn2`);
      const shortcut = stride !== 1 || channels !== width ? bn(conv(h, width, 1, stride, `${name}_proj`), `${name}_proj_bn`) : h;
      h = relu(apply(tf.layers.add({ name: `${name}_add` }), [o, shortcut]), `${name}_out`);
      channels = width;
    }
  });
  const pooled = apply(tf.layers.globalAveragePooling2d({ name: 'gap' }), h);
  const out = apply(tf.layers.dense({ name: 'fc', units: 10, kernelInitializer: tf.initializers.glorotNormal({ seed: seed++ }) }), pooled);
  return tf.model({ inputs: input, outputs: out, name: `resnet${depth}` });
}

/**
 * DenseNet-121 (torchvision's layout: dense blocks of 6/12/24/16 layers, growth 32, 4× bottleneck,
 * transitions halving the channels) on a 32×32 input: 427 layers, 58 concatenations.
 */
function buildDenseNet121(): tf.LayersModel {
  let seed = 1;
  const conv = (x: ST, filters: number, kernelSize: number, strides: number, name: string) =>
    apply(tf.layers.conv2d({ name, filters, kernelSize, strides, padding: 'same', useBias: false, kernelInitializer: tf.initializers.heNormal({ seed: seed++ }) }), x);
  const bnRelu = (x: ST, name: string) => apply(tf.layers.reLU({ name: `${name}_relu` }), apply(tf.layers.batchNormalization({ name: `${name}_bn` }), x));
  const input = tf.input({ shape: [32, 32, 3], name: 'image' });
  let x = bnRelu(conv(input, 64, 7, 2, 'stem_conv'), 'stem');
  x = apply(tf.layers.maxPooling2d({ name: 'stem_pool', poolSize: 3, strides: 2, padding: 'same' }), x);
  let channels = 64;
  [6, 12, 24, 16].forEach((layers, b) => {
    for (let l = 0; l < layers; l++) {
      const name = `b${b + 1}l${l + 1}`;
      let y = conv(bnRelu(x, `${name}_a`), 128, 1, 1, `${name}_conv1`);
      y = conv(bnRelu(y, `${name}_b`), 32, 3, 1, `${name}_conv2`);
      x = apply(tf.layers.concatenate({ name: `${name}_concat` }), [x, y]);
      channels += 32;
    }
    if (b < 3) {
      channels /= 2;
      x = conv(bnRelu(x, `t${b + 1}`), channels, 1, 1, `t${b + 1}_conv`);
      x = apply(tf.layers.averagePooling2d({ name: `t${b + 1}_pool`, poolSize: 2, strides: 2 }), x);
    }
  });
  x = apply(tf.layers.globalAveragePooling2d({ name: 'gap' }), bnRelu(x, 'final'));
  const out = apply(tf.layers.dense({ name: 'fc', units: 1000, kernelInitializer: tf.initializers.glorotNormal({ seed: seed++ }) }), x);
  return tf.model({ inputs: input, outputs: out, name: 'densenet121' });
}

const NETWORKS: Record<string, () => tf.LayersModel> = {
  resnet20: () => buildCifarResNet(20),
  resnet56: () => buildCifarResNet(56),
  resnet110: () => buildCifarResNet(110),
  densenet121: buildDenseNet121,
};

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

interface PhaseTimes {
  load: number[];
  graph: number[];
  /** Selection (L1 norms + selectUnits) and surgery (removeUnits) apart; prune is their sum. */
  select: number[];
  remove: number[];
  prune: number[];
}

/**
 * `runs` fresh loads of the saved model, each analysed, selected and pruned once, after `warmup`
 * untimed runs (the JIT compiles the hot code in the first few), as bench/torch-pruning.py does;
 * the first run's wall times are kept as `first`.
 */
async function timePruneLens(modelPath: string, runs: number, warmup: number): Promise<PhaseTimes & { cpu: PhaseTimes; first: Record<keyof PhaseTimes, number>; layers: number; units: number; removed: number; prunedParams: number }> {
  const empty = (): PhaseTimes => ({ load: [], graph: [], select: [], remove: [], prune: [] });
  let times = empty();
  let cpu = empty();
  let layers = 0;
  let units = 0;
  let removed = 0;
  let prunedParams = 0;
  // Wall and process CPU ms of a phase: CPU time is what the phase costs when other processes share the cores.
  let wall0 = 0;
  let cpu0 = process.cpuUsage();
  const start = () => {
    wall0 = performance.now();
    cpu0 = process.cpuUsage();
  };
  const stop = (phase: keyof PhaseTimes) => {
    const c = process.cpuUsage(cpu0);
    times[phase].push(performance.now() - wall0);
    cpu[phase].push((c.user + c.system) / 1000);
  };
  let first: Record<keyof PhaseTimes, number> | undefined;
  for (let i = -warmup; i < runs; i++) {
    if (i === 0) {
      times = empty();
      cpu = empty();
    }
    start();
    const { model } = await loadModel(modelPath);
    stop('load');
    start();
    const graph = analyzeModel(model);
    stop('graph');
    start();
    const scores = unitNorms(model, graph, 'l1');
    const selected = selectUnits(graph, model, scores, { channelRatio: 0.5 }, { scope: 'layer' });
    stop('select');
    const [wallSelect, cpuSelect] = [times.select.at(-1)!, cpu.select.at(-1)!];
    start();
    const pruned = await removeUnits(model, graph, selected);
    stop('remove');
    times.prune.push(wallSelect + times.remove.at(-1)!);
    cpu.prune.push(cpuSelect + cpu.remove.at(-1)!);
    layers = model.layers.length;
    units = graph.units.length;
    removed = selected.length;
    prunedParams = pruned.countParams();
    pruned.dispose();
    model.dispose();
    first ??= { load: times.load[0], graph: times.graph[0], select: times.select[0], remove: times.remove[0], prune: times.prune[0] };
  }
  return { ...times, cpu, first: first!, layers, units, removed, prunedParams };
}

interface TorchTimes {
  torch: string;
  threads: number;
  torch_pruning: string;
  warmup: number;
  networks: Record<string, { load: number[]; graph: number[]; prune: number[]; cpu: { load: number[]; graph: number[]; prune: number[] }; first: { load: number; graph: number; prune: number } }>;
}

function torchPruningDir(): string | undefined {
  const dir = resolve(process.env.TORCH_PRUNING_DIR ?? '.cache/torch-pruning');
  const python = process.env.PYTHON ?? '/usr/bin/python3';
  const r = spawnSync(python, ['-c', 'import sys; sys.path.insert(0, sys.argv[1]); import torch, torch_pruning', dir], { encoding: 'utf8' });
  return r.status === 0 ? dir : undefined;
}

function timeTorchPruning(dir: string, network: string, runs: number, warmup: number): TorchTimes {
  const python = process.env.PYTHON ?? '/usr/bin/python3';
  const r = spawnSync(python, ['bench/torch-pruning.py', String(runs), network], { encoding: 'utf8', env: { ...process.env, TORCH_PRUNING_DIR: dir, ANALYZE_WARMUP: String(warmup) }, maxBuffer: 1 << 24 });
  if (r.status !== 0) throw new Error(`bench/torch-pruning.py failed: ${r.stderr.trim().split('\n').pop()}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as TorchTimes;
}

const ms = (x: number) => (x < 10 ? x.toFixed(1) : x.toFixed(0));

/** Every network in turns: PruneLens' fresh runs, then Torch-Pruning's, `rounds` times. */
async function networksMeasurement(names: string[]): Promise<Record<string, unknown>> {
  const runs = Number(process.env.ANALYZE_RUNS ?? 7);
  const rounds = Number(process.env.ANALYZE_ROUNDS ?? 3);
  const warmup = Number(process.env.ANALYZE_WARMUP ?? 3);
  const dir = mkdtempSync(join(tmpdir(), 'prunelens-bench-networks-'));
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  const paths: Record<string, string> = {};
  for (const name of names) {
    const model = NETWORKS[name]();
    await saveModelAtomic(model, join(dir, name));
    model.dispose();
    paths[name] = join(dir, name, 'model.json');
  }
  const tpDir = torchPruningDir();
  if (!tpDir) console.log('(Torch-Pruning not timed: no Python with torch and torch_pruning; set TORCH_PRUNING_DIR to a checkout)\n');
  const results: Record<string, { prunelens: unknown[]; torchPruning: unknown[] }> = {};
  let versions = '';
  const medians = <T extends object>(t: T) => Object.fromEntries(Object.entries(t).map(([k, v]) => [k, median(v as number[])])) as Record<keyof T, number>;
  console.log('| network | round | load avg | clock | PruneLens load | graph | prune (select + remove) | Torch-Pruning load | graph | prune | graph ratio | prune ratio |');
  console.log('|---|---|---|---|---|---|---|---|---|---|---|---|');
  // Every round's runs together, per network and side: the summary table.
  const pooled: Record<string, { pl: PhaseTimes & { cpu: PhaseTimes }; tp?: { graph: number[]; prune: number[]; cpu: { graph: number[]; prune: number[] } }; loads: number[] }> = {};
  for (const name of names) {
    results[name] = { prunelens: [], torchPruning: [] };
    const pool = (pooled[name] = { pl: { load: [], graph: [], select: [], remove: [], prune: [], cpu: { load: [], graph: [], select: [], remove: [], prune: [] } }, loads: [] as number[] } as (typeof pooled)[string]);
    for (let round = 1; round <= rounds; round++) {
      const loadAverage = loadavg()[0];
      pool.loads.push(loadAverage);
      const p = await timePruneLens(paths[name], runs, warmup);
      for (const phase of ['load', 'graph', 'select', 'remove', 'prune'] as const) {
        pool.pl[phase].push(...p[phase]);
        pool.pl.cpu[phase].push(...p.cpu[phase]);
      }
      const wall = { load: p.load, graph: p.graph, select: p.select, remove: p.remove, prune: p.prune };
      const pl = { round, loadAverage, layers: p.layers, units: p.units, removed: p.removed, prunedParams: p.prunedParams, first: p.first, times: wall, cpuTimes: p.cpu, medians: medians(wall), cpuMedians: medians(p.cpu) };
      results[name].prunelens.push(pl);
      const t = tpDir ? timeTorchPruning(tpDir, name, runs, warmup) : undefined;
      const times = t?.networks[name];
      if (t && times) {
        versions = `torch ${t.torch} on ${t.threads} thread(s), Torch-Pruning ${t.torch_pruning}`;
        const { cpu, first, ...w } = times;
        results[name].torchPruning.push({ round, first, times: w, cpuTimes: cpu, medians: medians(w), cpuMedians: medians(cpu) });
        pool.tp ??= { graph: [], prune: [], cpu: { graph: [], prune: [] } };
        pool.tp.graph.push(...times.graph);
        pool.tp.prune.push(...times.prune);
        pool.tp.cpu.graph.push(...cpu.graph);
        pool.tp.cpu.prune.push(...cpu.prune);
      }
      for (const clock of ['wall', 'cpu', 'first run'] as const) {
        const m = clock === 'wall' ? pl.medians : clock === 'cpu' ? pl.cpuMedians : pl.first;
        const tm = times && (clock === 'wall' ? medians({ load: times.load, graph: times.graph, prune: times.prune }) : clock === 'cpu' ? medians(times.cpu) : times.first);
        const tpCells = tm ? [ms(tm.load), ms(tm.graph), ms(tm.prune), (m.graph / tm.graph).toFixed(2), (m.prune / tm.prune).toFixed(2)] : ['–', '–', '–', '–', '–'];
        console.log(`| ${name} (${p.layers} layers) | ${round} | ${loadAverage.toFixed(1)} | ${clock} | ${ms(m.load)} | ${ms(m.graph)} | ${ms(m.select)} + ${ms(m.remove)} → ${ms(m.prune)} | ${tpCells.join(' | ')} |`);
      }
    }
  }
  console.log(`\nms, medians of ${runs} fresh runs per round after ${warmup} warm-up runs (prune: the median of select + remove per run): wall clock and process CPU time; 'first run': the wall times of each side's first, cold run; load avg: the 1-minute load average as the round began; ratio = PruneLens ÷ Torch-Pruning (below 1: PruneLens faster)${versions ? `; ${versions}` : ''}.`);

  // Over every round's runs: the medians the acceptance reads.
  const summary: Record<string, unknown> = {};
  console.log(`\n| network | load avg | clock | PruneLens graph | Torch-Pruning graph | graph ratio | PruneLens prune | Torch-Pruning prune | prune ratio |`);
  console.log('|---|---|---|---|---|---|---|---|---|');
  for (const [name, pool] of Object.entries(pooled)) {
    const loads = `${Math.min(...pool.loads).toFixed(1)}–${Math.max(...pool.loads).toFixed(1)}`;
    const row: Record<string, unknown> = { loadAverages: pool.loads };
    for (const clock of ['wall', 'cpu'] as const) {
      const pl = clock === 'wall' ? pool.pl : pool.pl.cpu;
      const tp = pool.tp && (clock === 'wall' ? pool.tp : pool.tp.cpu);
      const [g, p] = [median(pl.graph), median(pl.prune)];
      const [tg, tpr] = tp ? [median(tp.graph), median(tp.prune)] : [NaN, NaN];
      row[clock] = { prunelens: { graph: g, prune: p }, torchPruning: tp ? { graph: tg, prune: tpr } : null, graphRatio: tp ? g / tg : null, pruneRatio: tp ? p / tpr : null };
      const cells = tp ? [ms(tg), (g / tg).toFixed(2), ms(p), ms(tpr), (p / tpr).toFixed(2)] : ['–', '–', ms(p), '–', '–'];
      console.log(`| ${name} | ${loads} | ${clock} | ${ms(g)} | ${cells.join(' | ')} |`);
    }
    summary[name] = row;
  }
  console.log(`\nms, medians over all ${rounds} rounds' ${rounds * runs} runs per side.`);
  return { runs, warmup, rounds, torchPruning: versions || null, summary, networks: results };
}

async function cliMeasurement(): Promise<Record<string, unknown>> {
  const dir = mkdtempSync(join(tmpdir(), 'prunelens-bench-analyze-'));
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  const model = buildResidualCnn(100);
  await saveModelAtomic(model, join(dir, 'model'));
  const layerCount = model.layers.length;
  model.dispose();
  const modelPath = join(dir, 'model', 'model.json');
  const cli = resolve('dist/cli.js');

  const runs = 7;
  const cliTimes: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    const r = spawnSync(process.execPath, [cli, 'analyze', modelPath, '--json'], { encoding: 'utf8' });
    cliTimes.push(performance.now() - t0);
    if (r.status !== 0) throw new Error(r.stderr);
  }
  const nodeStart: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    spawnSync(process.execPath, ['-e', 'require("@tensorflow/tfjs")'], { encoding: 'utf8' });
    nodeStart.push(performance.now() - t0);
  }
  const loadTimes: number[] = [];
  const analyzeTimes: number[] = [];
  for (let i = 0; i < runs; i++) {
    let t0 = performance.now();
    const loaded = await loadModel(modelPath);
    loadTimes.push(performance.now() - t0);
    t0 = performance.now();
    const graph = analyzeModel(loaded.model);
    analyzeTimes.push(performance.now() - t0);
    if (graph.layers.length !== layerCount) throw new Error('layer count mismatch');
    loaded.model.dispose();
  }
  const result = {
    layers: layerCount,
    runs,
    cliMedianMs: median(cliTimes),
    nodeWithTfjsStartMedianMs: median(nodeStart),
    loadMedianMs: median(loadTimes),
    analyzeMedianMs: median(analyzeTimes),
  };
  console.log(`| measurement (${layerCount}-layer model, median of ${runs}) | ms | share of CLI time |`);
  console.log('|---|---|---|');
  console.log(`| \`prunelens analyze --json\`, whole process | ${result.cliMedianMs.toFixed(0)} | 1.00 |`);
  console.log(`| of which: Node start + require tfjs | ${result.nodeWithTfjsStartMedianMs.toFixed(0)} | ${(result.nodeWithTfjsStartMedianMs / result.cliMedianMs).toFixed(2)} |`);
  console.log(`| load + validate model (in process) | ${result.loadMedianMs.toFixed(0)} | ${(result.loadMedianMs / result.cliMedianMs).toFixed(2)} |`);
  console.log(`| channel-group analysis (in process) | ${result.analyzeMedianMs.toFixed(1)} | ${(result.analyzeMedianMs / result.cliMedianMs).toFixed(3)} |`);
  return result;
}

async function main(): Promise<void> {
  await tf.setBackend('cpu');
  const names = process.argv.slice(2);
  for (const name of names) if (!NETWORKS[name]) throw new Error(`Unknown network ${name}: one of ${Object.keys(NETWORKS).join(', ')}`);
  const cli = names.length ? undefined : await cliMeasurement();
  console.log('');
  const networks = await networksMeasurement(names.length ? names : Object.keys(NETWORKS));
  mkdirSync('bench/results', { recursive: true });
  writeFileSync('bench/results/analyze.json', JSON.stringify({ cli, ...networks }, null, 2) + '\n');
}

void main();
