/**
 * Start-up of `prunelens analyze` on a small model: the 100-layer residual CNN of bench/analyze.ts's CLI line, saved
 * once, then the built CLI (`node dist/cli.js analyze model.json --json`) run as users run it, against `node -e 0`
 * (the floor: Node's own start) and `node dist/cli.js --version` (Node + reading and compiling the bundle). Wall-clock
 * medians of STARTUP_RUNS (default 10) processes each, taken in turns, plus the mean CPU time per process (user + sys,
 * from /proc) and the load average, since a shared machine's timings move with it.
 * STARTUP_BASELINE=<dir>: also time the CLI built there (`node scripts/build.mjs --outdir <dir>` at an older commit),
 * in the same turns, for a before/after comparison.
 *   node --import tsx bench/startup.ts        (npm run bench -- startup)
 */
import * as tf from '@tensorflow/tfjs';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { saveModelAtomic } from '../src/engine/io/index.js';

type ST = tf.SymbolicTensor;

/** bench/analyze.ts's network: stem conv, residual blocks (conv-bn-relu-conv-bn-add-relu), 1×1 convs up to `layers` layers. */
function buildResidualCnn(layers: number): tf.LayersModel {
  const input = tf.input({ shape: [32, 32, 3], name: 'input' });
  let x = tf.layers.conv2d({ name: 'stem', filters: 32, kernelSize: 3, padding: 'same' }).apply(input) as ST;
  let count = 2;
  let block = 0;
  while (count + 7 <= layers - 2) {
    const shortcut = x;
    let y = tf.layers.conv2d({ name: `b${block}_conv_a`, filters: 32, kernelSize: 3, padding: 'same' }).apply(x) as ST;
    y = tf.layers.batchNormalization({ name: `b${block}_bn_a` }).apply(y) as ST;
    y = tf.layers.reLU({ name: `b${block}_relu_a` }).apply(y) as ST;
    y = tf.layers.conv2d({ name: `b${block}_conv_b`, filters: 32, kernelSize: 3, padding: 'same' }).apply(y) as ST;
    y = tf.layers.batchNormalization({ name: `b${block}_bn_b` }).apply(y) as ST;
    y = tf.layers.add({ name: `b${block}_add` }).apply([y, shortcut]) as ST;
    x = tf.layers.reLU({ name: `b${block}_relu_b` }).apply(y) as ST;
    count += 7;
    block++;
  }
  while (count < layers - 2) {
    x = tf.layers.conv2d({ name: `extra_${count}`, filters: 32, kernelSize: 1 }).apply(x) as ST;
    count++;
  }
  x = tf.layers.globalAveragePooling2d({ name: 'gap' }).apply(x) as ST;
  const out = tf.layers.dense({ name: 'logits', units: 10 }).apply(x) as ST;
  return tf.model({ inputs: input, outputs: out, name: 'residual_cnn_100' });
}

const median = (xs: number[]) => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };

/** CPU seconds (user + sys) of this process' waited-for children, from /proc (Linux); undefined elsewhere. */
function childrenCpuMs(): number | undefined {
  try {
    const fields = readFileSync('/proc/self/stat', 'utf8').replace(/^.*\) /, '').split(' ');
    // After the command name: state is field 3, cutime and cstime are fields 16 and 17, in clock ticks (100 per second).
    return (Number(fields[13]) + Number(fields[14])) * 10;
  } catch {
    return undefined;
  }
}

interface Row { label: string; args: string[]; wall: number[]; cpu: number[] }

async function main(): Promise<void> {
  await tf.setBackend('cpu');
  const runs = Number(process.env.STARTUP_RUNS ?? 10);
  const dir = mkdtempSync(join(tmpdir(), 'prunelens-bench-startup-'));
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  const model = buildResidualCnn(100);
  const layers = model.layers.length;
  await saveModelAtomic(model, join(dir, 'model'));
  model.dispose();
  const modelPath = join(dir, 'model', 'model.json');
  const cli = resolve('dist/cli.js');
  if (!existsSync(cli)) throw new Error('dist/cli.js is missing: run node scripts/build.mjs');

  const rows: Row[] = [
    { label: '`node -e 0` (floor)', args: ['-e', '0'], wall: [], cpu: [] },
    { label: '`prunelens --version` (bundle load)', args: [cli, '--version'], wall: [], cpu: [] },
    { label: '`prunelens analyze --json --no-timing`', args: [cli, 'analyze', modelPath, '--json', '--no-timing'], wall: [], cpu: [] },
    { label: '`prunelens analyze --json` (each layer timed)', args: [cli, 'analyze', modelPath, '--json'], wall: [], cpu: [] },
  ];
  const baseline = process.env.STARTUP_BASELINE;
  if (baseline) {
    const old = resolve(baseline, 'cli.js');
    rows.push({ label: 'baseline `--version`', args: [old, '--version'], wall: [], cpu: [] });
    rows.push({ label: 'baseline `analyze --json --no-timing`', args: [old, 'analyze', modelPath, '--json', '--no-timing'], wall: [], cpu: [] });
    rows.push({ label: 'baseline `analyze --json`', args: [old, 'analyze', modelPath, '--json'], wall: [], cpu: [] });
  }
  const loadBefore = loadavg()[0];
  for (let i = 0; i < runs; i++) {
    for (const row of rows) {
      const cpu0 = childrenCpuMs();
      const t0 = performance.now();
      const r = spawnSync(process.execPath, row.args, { encoding: 'utf8' });
      row.wall.push(performance.now() - t0);
      const cpu1 = childrenCpuMs();
      if (cpu0 !== undefined && cpu1 !== undefined) row.cpu.push(cpu1 - cpu0);
      if (r.status !== 0) throw new Error(`${row.label} failed: ${r.stderr}`);
    }
  }
  const floor = median(rows[0].wall);
  const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN);
  console.log(`| ${layers}-layer model, ${runs} runs each in turns | wall median ms | above the floor | CPU ms per run (mean) |`);
  console.log('|---|---|---|---|');
  for (const row of rows) {
    const wall = median(row.wall);
    console.log(`| ${row.label} | ${wall.toFixed(0)} | ${row === rows[0] ? '–' : (wall - floor).toFixed(0)} | ${mean(row.cpu).toFixed(0)} |`);
  }
  const loadAfter = loadavg()[0];
  console.log(`\nLoad average (1 min) ${loadBefore.toFixed(2)} before, ${loadAfter.toFixed(2)} after; Node ${process.version}.`);
  mkdirSync('bench/results', { recursive: true });
  writeFileSync('bench/results/startup.json', JSON.stringify({
    layers, runs, node: process.version, loadAverage: [loadBefore, loadAfter],
    rows: rows.map((r) => ({ label: r.label, wallMedianMs: median(r.wall), cpuMeanMs: mean(r.cpu), wallMs: r.wall })),
  }, null, 2) + '\n');
}

void main();
