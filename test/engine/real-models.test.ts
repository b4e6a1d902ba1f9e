// Real pretrained models that no one on the project wrote: nsfwjs' Keras-made MobileNetV2
// (224×224×3, 5 classes, uint8 weights) and InceptionV3 (299×299×3, 22.4 M params). Every method
// runs a short session on MobileNetV2 at its real input size, with batches split into
// micro-batches; the pruned files load in vanilla tfjs and are smaller than the original.
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { PNG } from 'pngjs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { nsfwjsAvailable, nsfwjsModel } from '../helpers/real-models.js';
import { loadConfig } from '../../src/engine/config/index.js';
import { executeSession } from '../../src/engine/session/session.js';
import { analyzeModelFile } from '../../src/engine/session/analyze.js';
import type { DoneEvent, EngineEvent } from '../../src/protocol/events.js';

const skip = nsfwjsAvailable() ? false : 'nsfwjs (a devDependency) is not installed';
let workspace: string;

before(() => {
  if (skip) return;
  workspace = mkdtempSync(join(tmpdir(), 'prunelens-real-'));
  cpSync(join(nsfwjsModel('mobilenet_v2'), '..'), join(workspace, 'mobilenet_v2'), { recursive: true });
});

/** Bytes of model.json and its shards in a folder. */
function folderBytes(dir: string): number {
  return readdirSync(dir).filter((f) => f === 'model.json' || f.endsWith('.bin')).reduce((n, f) => n + statSync(join(dir, f)).size, 0);
}

/** Loads a saved model with tfjs alone (no PruneLens code): model.json plus its shards, as a browser would. */
async function loadWithVanillaTfjs(dir: string): Promise<tf.LayersModel> {
  const json = JSON.parse(readFileSync(join(dir, 'model.json'), 'utf8'));
  const shards = json.weightsManifest.flatMap((g: { paths: string[] }) => g.paths.map((p) => readFileSync(join(dir, p))));
  const weightData = new Uint8Array(Buffer.concat(shards)).buffer;
  return tf.loadLayersModel(tf.io.fromMemory({
    modelTopology: json.modelTopology, weightSpecs: json.weightsManifest.flatMap((g: { weights: unknown[] }) => g.weights), weightData,
  }));
}

const METHODS: Record<string, Record<string, unknown>> = {
  l1: {},
  goprune: {},
  ssr: {},
  dsp: { dsp: { thetaUpdateEvery: 1 } },
  ispasp: { ispasp: { calibrationSamples: 4, iterations: 2, blockFinetuneEpochs: 0 } },
  ocspruner: { ocspruner: { monitorStartEpoch: 0, slStartEpoch: 0, slEndEpoch: 1 } },
};

for (const [method, settings] of Object.entries(METHODS)) {
  test(`${method} prunes the real MobileNetV2 at 224×224 in micro-batches; the file shrinks and loads in vanilla tfjs`, { skip, timeout: 240_000 }, async () => {
    const configPath = join(workspace, `${method}.prune.json`);
    writeFileSync(configPath, JSON.stringify({
      model: 'mobilenet_v2/model.json', method, target: { flopsReduction: 0.3 }, output: `pruned-${method}`,
      data: { format: 'synthetic', samples: 12, classes: 5, validationSplit: 1 / 3 },
      // Batches of 8 in micro-batches of 4: the path a batch of 32 takes on the 2 GiB heap, at a test's cost.
      train: { epochs: 1, batchSize: 8, microBatchSize: 4 }, finetune: { epochs: 1, batchSize: 8, microBatchSize: 4 },
      latency: { runs: 2, batchSize: 1 }, backend: 'wasm', ...settings,
    }));
    const events: EngineEvent[] = [];
    const result = await executeSession(loadConfig(configPath), (e) => events.push(e));
    assert.equal(result.type, 'done', result.type === 'error' ? result.message : '');
    const done = result as DoneEvent;
    const reduction = 1 - done.after.flops / done.before.flops;
    assert.ok(done.channelsRemoved > 0 && reduction > 0.25, `FLOPs −${(reduction * 100).toFixed(1)}%`);
    assert.ok(done.memory && done.memory.peakBytes > 0 && done.memory.peakBytes <= done.memory.limitBytes, JSON.stringify(done.memory));
    const trained = done.memory.phases.filter((p) => p.microBatchSize === 4 && p.batchSize === 8);
    assert.ok(trained.length >= 1, `micro-batches used: ${JSON.stringify(done.memory.phases)}`);
    assert.equal(done.data?.synthetic, true);

    const out = join(workspace, `pruned-${method}`);
    const original = folderBytes(join(workspace, 'mobilenet_v2'));
    assert.equal(done.size?.after, folderBytes(out), 'the reported size is the size on disk');
    assert.ok(folderBytes(out) < original, `${folderBytes(out)} bytes, original ${original}`);
    const model = await loadWithVanillaTfjs(out);
    try {
      assert.equal(model.countParams(), done.after.params);
      const y = tf.tidy(() => model.predict(tf.ones([1, 224, 224, 3])) as tf.Tensor);
      assert.deepEqual(y.shape, [1, 5]);
      const values = Array.from(y.dataSync());
      assert.ok(Math.abs(values.reduce((a, b) => a + b, 0) - 1) < 1e-4, 'softmax output');
      y.dispose();
    } finally {
      model.dispose();
    }
  });
}

test('InceptionV3 (22.4 M params, 299×299): analysis finds its groups and l1 prunes it one-shot, smaller on disk', { skip, timeout: 240_000 }, async () => {
  const dir = join(workspace, 'inception_v3');
  cpSync(join(nsfwjsModel('inception_v3'), '..'), dir, { recursive: true });
  const analysis = await analyzeModelFile(join(dir, 'model.json'), 'wasm');
  assert.ok(analysis.groups.length > 50, `${analysis.groups.length} groups`);
  const configPath = join(workspace, 'inception.prune.json');
  writeFileSync(configPath, JSON.stringify({
    model: 'inception_v3/model.json', method: 'l1', target: { flopsReduction: 0.3 }, output: 'pruned-inception', latency: { runs: 1, batchSize: 1 }, backend: 'wasm',
  }));
  const result = await executeSession(loadConfig(configPath), () => undefined);
  assert.equal(result.type, 'done', result.type === 'error' ? result.message : '');
  const done = result as DoneEvent;
  assert.ok(Math.abs(1 - done.after.flops / done.before.flops - 0.3) <= 0.02);
  assert.ok(folderBytes(join(workspace, 'pruned-inception')) < folderBytes(dir));
});

test('MobileNetV2 with unlabelled images: a folder of photos-to-be prunes it by distillation, reporting agreement with the dense model before and after fine-tuning', { skip, timeout: 240_000 }, async () => {
  // 12 unlabelled images, directly in the folder (no class subfolders): smooth random colour fields.
  const folder = join(workspace, 'unlabelled-images');
  mkdirSync(folder, { recursive: true });
  let seed = 7;
  const next = () => (seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32;
  for (let k = 0; k < 12; k++) {
    const png = new PNG({ width: 32, height: 32 });
    const [r, g, b, dx, dy] = [next(), next(), next(), next(), next()];
    for (let y = 0; y < 32; y++) for (let x = 0; x < 32; x++) {
      const i = (y * 32 + x) * 4;
      const wave = 0.5 + 0.5 * Math.sin((x * dx + y * dy) / 3);
      png.data[i] = 255 * r * wave; png.data[i + 1] = 255 * g * (1 - wave); png.data[i + 2] = 255 * b; png.data[i + 3] = 255;
    }
    writeFileSync(join(folder, `image-${k}.png`), PNG.sync.write(png));
  }
  const configPath = join(workspace, 'distill.prune.json');
  writeFileSync(configPath, JSON.stringify({
    model: 'mobilenet_v2/model.json', method: 'l1', target: { flopsReduction: 0.3 }, output: 'pruned-distilled',
    // No validation split: the agreement is measured on the images the fine-tuning learns from.
    data: { format: 'imagefolder', path: 'unlabelled-images', validationSplit: 0 },
    finetune: { epochs: 6, batchSize: 4, learningRate: 0.01, optimizer: 'adam' },
    latency: { runs: 2, batchSize: 1 }, backend: 'wasm',
  }));
  const config = loadConfig(configPath);
  assert.equal(config.objective, undefined, 'the config does not name an objective; unlabelled data chooses distillation');
  const events: EngineEvent[] = [];
  const result = await executeSession(config, (e) => events.push(e));
  assert.equal(result.type, 'done', result.type === 'error' ? result.message : '');
  const done = result as DoneEvent;
  const metric = done.metric!;
  assert.ok(metric.afterPruning !== undefined, 'measured right after pruning, since fine-tuning follows');
  const afterPruning = metric.afterPruning;
  assert.match(metric.name, /^top-1 agreement with the dense model/);
  assert.equal(metric.before, 1, 'the dense model agrees with itself');
  assert.ok(afterPruning >= 0 && afterPruning <= 1 && metric.after >= 0 && metric.after <= 1, JSON.stringify(metric));
  assert.equal(done.data?.synthetic, false);
  assert.match(metric.objective ?? '', /distillation/);
  console.log(`nsfwjs MobileNetV2, 12 unlabelled images, l1 −30% FLOPs: ${metric.name} ${metric.before} dense → ${afterPruning.toFixed(3)} right after pruning → ${metric.after.toFixed(3)} after 6 epochs of distillation`);
  assert.ok(metric.after > afterPruning, 'distillation brings the pruned model back towards the dense one');
});
