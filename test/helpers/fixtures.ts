import * as tf from '@tensorflow/tfjs';
import { mkdtempSync, writeFileSync, readdirSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import assert from 'node:assert/strict';
import { saveModelAtomic } from '../../src/engine/io/index.js';
import { loadConfig } from '../../src/engine/config/index.js';
import { executeSession } from '../../src/engine/session/session.js';
import type { DoneEvent, EngineEvent } from '../../src/protocol/events.js';

/** A small CNN on 8×8×1 inputs: conv→bn→relu→pool→conv→relu→flatten→dense→dense(softmax). */
export function buildTinyCnn(seed = 7, classes = 3): tf.LayersModel {
  const init = (k: number) => tf.initializers.glorotUniform({ seed: seed * 10 + k });
  const input = tf.input({ shape: [8, 8, 1], name: 'input' });
  let x = tf.layers.conv2d({ name: 'conv1', filters: 8, kernelSize: 3, padding: 'same', kernelInitializer: init(1) }).apply(input) as tf.SymbolicTensor;
  x = tf.layers.batchNormalization({ name: 'bn1' }).apply(x) as tf.SymbolicTensor;
  x = tf.layers.reLU({ name: 'relu1' }).apply(x) as tf.SymbolicTensor;
  x = tf.layers.maxPooling2d({ name: 'pool1', poolSize: 2 }).apply(x) as tf.SymbolicTensor;
  x = tf.layers.conv2d({ name: 'conv2', filters: 12, kernelSize: 3, padding: 'same', activation: 'relu', kernelInitializer: init(2) }).apply(x) as tf.SymbolicTensor;
  x = tf.layers.flatten({ name: 'flatten' }).apply(x) as tf.SymbolicTensor;
  x = tf.layers.dense({ name: 'fc1', units: 16, activation: 'relu', kernelInitializer: init(3) }).apply(x) as tf.SymbolicTensor;
  const out = tf.layers.dense({ name: 'out', units: classes, activation: 'softmax', kernelInitializer: init(4) }).apply(x) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: out, name: 'tiny_cnn' });
}

export interface Workspace {
  dir: string;
  modelPath: string;
  writeConfig(config: Record<string, unknown>, name?: string): string;
}

/** A temp workspace with a tiny model in `model/` and a helper to write configs beside it. */
export async function makeWorkspace(prefix = 'prunelens-ws-'): Promise<Workspace> {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const model = buildTinyCnn();
  await saveModelAtomic(model, join(dir, 'model'));
  model.dispose();
  return {
    dir,
    modelPath: join(dir, 'model', 'model.json'),
    writeConfig(config, name = 'tiny.prune.json') {
      const path = join(dir, name);
      writeFileSync(path, JSON.stringify(config, null, 2));
      return path;
    },
  };
}

export const tinyTrainingConfig = {
  model: 'model/model.json',
  method: 'l1',
  target: { flopsReduction: 0.4 },
  output: 'pruned',
  data: { format: 'synthetic', samples: 96, classes: 3, validationSplit: 0.25 },
  train: { epochs: 1, batchSize: 16, learningRate: 0.01 },
  finetune: { epochs: 1, batchSize: 16, learningRate: 0.01 },
  latency: { runs: 3, batchSize: 1 },
  backend: 'cpu',
};

/**
 * Runs a whole session of `method` on the tiny CNN (config file, analysis, method, removal, fine-tune,
 * save) at −40% FLOPs and checks what every method's session must show: done, channels physically
 * removed, the target met within 2 points, the method's signal streamed, no warnings (but the timing one).
 */
export async function checkSessionAtFlopsTarget(method: string, settings: Record<string, unknown>): Promise<DoneEvent> {
  const ws = await makeWorkspace(`prunelens-${method}-`);
  const config = loadConfig(ws.writeConfig({ ...tinyTrainingConfig, method, backend: 'auto', target: { flopsReduction: 0.4 }, ...settings }));
  const events: EngineEvent[] = [];
  const result = await executeSession(config, (e) => events.push(e));
  assert.equal(result.type, 'done', result.type === 'error' ? result.message : '');
  const done = result as DoneEvent;
  assert.equal(done.physicallyRemoved, true);
  assert.ok(done.channelsRemoved > 0);
  const reduction = 1 - done.after.flops / done.before.flops;
  assert.ok(Math.abs(reduction - 0.4) <= 0.02, `FLOPs reduction ${reduction.toFixed(4)}`);
  assert.ok(events.some((e) => e.type === 'signal' && e.method === method), 'the method streams its signal');
  // The slower-than-dense latency warning depends on machine noise at these sizes; any other warning is a failure.
  const warnings = events.filter((e) => e.type === 'warning' && !/^The pruned model measured /.test(e.message));
  assert.deepEqual(warnings, []);
  return done;
}

/** Entries in `dir` other than the given ones: leftovers such as temp folders. */
export function leftovers(dir: string, expected: string[]): string[] {
  return existsSync(dir) ? readdirSync(dir).filter((n) => !expected.includes(n)) : [];
}

/** Builds dist/ once if a test needs the bundled engine or CLI. */
export function ensureBuilt(): void {
  if (existsSync('dist/engine.js') && existsSync('dist/cli.js')) return;
  const r = spawnSync(process.execPath, ['scripts/build.mjs'], { stdio: 'inherit' });
  if (r.status !== 0) throw new Error('build failed');
}

/** Runs the built `prunelens` CLI (dist/cli.js) with these arguments. */
export function runBuiltCli(args: string[], timeout = 120_000): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [join('dist', 'cli.js'), ...args], { encoding: 'utf8', timeout });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}
