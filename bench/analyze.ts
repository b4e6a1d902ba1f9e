/**
 * `prunelens analyze` on a generated 100-layer residual CNN: wall time of the whole CLI process
 * (Node start, tfjs load, model validation and load, graph analysis, output) and of the
 * in-process analysis alone. Goal: under 1 s end to end.
 *   node --import tsx bench/analyze.ts
 */
import * as tf from '@tensorflow/tfjs';
import { mkdtempSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { spawnSync } from 'node:child_process';
import { saveModelAtomic, loadModel } from '../src/engine/io/index.js';
import { analyzeModel } from '../src/engine/graph/analyze.js';

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

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

async function main(): Promise<void> {
  await tf.setBackend('cpu');
  const dir = mkdtempSync(join(tmpdir(), 'prunelens-bench-analyze-'));
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
  mkdirSync('bench/results', { recursive: true });
  writeFileSync('bench/results/analyze.json', JSON.stringify(result, null, 2) + '\n');
}

void main();
