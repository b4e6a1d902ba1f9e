import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import type { EngineEvent, MethodSignalEvent } from '../../src/protocol/events.js';
import type { PruneConfig, TrainConfig } from '../../src/engine/config/types.js';
import { loadConfig } from '../../src/engine/config/index.js';
import { loadDataset } from '../../src/engine/data/index.js';
import { analyzeModel } from '../../src/engine/graph/analyze.js';
import { loadModel } from '../../src/engine/io/index.js';
import { countCost } from '../../src/engine/metrics/index.js';
import { dspMethod, dspLayers } from '../../src/engine/methods/dsp.js';
import { learnGroups, type GroupedLayer } from '../../src/engine/methods/dsp/learn.js';
import type { DspOptions } from '../../src/engine/methods/dsp/options.js';
import { regularizerScale } from '../../src/engine/methods/dsp/regularizer.js';
import { createMethodContext } from '../../src/engine/session/context.js';
import { executeSession } from '../../src/engine/session/session.js';
import { seededRandom } from '../../src/engine/util/random.js';
import { trainModel } from '../../src/engine/train/index.js';
import { makeWorkspace, tinyTrainingConfig } from '../helpers/fixtures.js';

const DSP_DEFAULTS = dspMethod.defaults;

before(async () => {
  await tf.setBackend('cpu');
});

/** conv stem + one residual block, 8 channels, BN everywhere, 8×8×1 inputs, 3 classes. */
function residualNet(seed: number): tf.LayersModel {
  const init = (k: number) => tf.initializers.heNormal({ seed: seed * 10 + k });
  const input = tf.input({ shape: [8, 8, 1] });
  const ap = (l: tf.layers.Layer, x: tf.SymbolicTensor | tf.SymbolicTensor[]) => l.apply(x) as tf.SymbolicTensor;
  const conv = (name: string, s: number) => tf.layers.conv2d({ name, filters: 8, kernelSize: 3, padding: 'same', useBias: false, kernelInitializer: init(s) });
  let x = ap(tf.layers.reLU(), ap(tf.layers.batchNormalization({ name: 'stem_bn' }), ap(conv('stem', 1), input)));
  let y = ap(tf.layers.reLU(), ap(tf.layers.batchNormalization({ name: 'bn1' }), ap(conv('conv1', 2), x)));
  y = ap(tf.layers.batchNormalization({ name: 'bn2' }), ap(conv('conv2', 3), y));
  x = ap(tf.layers.reLU(), ap(tf.layers.add(), [x, y]));
  x = ap(tf.layers.globalAveragePooling2d({}), x);
  return tf.model({ inputs: input, outputs: ap(tf.layers.dense({ units: 3, activation: 'softmax', kernelInitializer: init(4) }), x) });
}

const train: TrainConfig = { epochs: 1, batchSize: 8, learningRate: 0.05, momentum: 0.9, weightDecay: 1e-3, optimizer: 'sgd', schedule: 'cosine', maxStepsPerEpoch: 3 };

function groupedLayers(model: tf.LayersModel, options: DspOptions): GroupedLayer[] {
  return dspLayers(model, options, []).map((layer, i) => ({
    name: layer.name,
    kernel: layer.weights.find((w) => w.originalName.endsWith('kernel'))!,
    filters: 8,
    scale: regularizerScale(1, 3, options.groups, 8),
    theta: tf.variable(tf.zeros([options.groups, 8]), true, `test_theta_${i}_${options.thetaUpdateEvery}_${options.regularization}`) as tf.Variable<tf.Rank.R2>,
  }));
}

test('the look-ahead restores weights, batch-norm statistics and momentum: with λ = 0 training is unchanged while θ moves', async () => {
  const data = await loadDataset({ format: 'synthetic', samples: 48, classes: 3 }, process.cwd(), { inputShape: [8, 8, 1], classes: 3 }, 1);
  const run = async (thetaUpdateEvery: number) => {
    const model = residualNet(5);
    const options = { ...DSP_DEFAULTS, groups: 2, regularization: 0, thetaUpdateEvery };
    const layers = groupedLayers(model, options);
    await learnGroups((hooks) => trainModel(model, data, train, hooks, { seed: 1 }), options, layers, seededRandom(9));
    const weights = model.weights.map((w) => Array.from(w.read().dataSync()));
    const theta = layers.map((l) => Array.from(l.theta.dataSync()));
    layers.forEach((l) => l.theta.dispose());
    model.dispose();
    return { weights, theta };
  };
  const withLookahead = await run(1);
  const without = await run(1000);
  // Step 0 always updates θ; afterwards only the look-ahead run does.
  assert.deepEqual(withLookahead.weights, without.weights);
  assert.ok(withLookahead.theta.flat().some((v) => v !== 0), 'θ learned something');
  assert.notDeepEqual(withLookahead.theta, without.theta);
});

test('the decoupled regulariser step drives group-channel norms down compared with λ = 0', async () => {
  const data = await loadDataset({ format: 'synthetic', samples: 48, classes: 3 }, process.cwd(), { inputShape: [8, 8, 1], classes: 3 }, 2);
  const energyAfter = async (regularization: number) => {
    const model = residualNet(6);
    const options = { ...DSP_DEFAULTS, groups: 2, regularization };
    const layers = groupedLayers(model, options);
    await learnGroups((hooks) => trainModel(model, data, { ...train, weightDecay: 0, maxStepsPerEpoch: 4 }, hooks, { seed: 1 }), options, layers, seededRandom(3));
    const energy = layers.map((l) => tf.tidy(() => tf.sum(tf.sqrt(tf.sum(tf.square(l.kernel.read()), [0, 1]))).dataSync()[0]));
    layers.forEach((l) => l.theta.dispose());
    model.dispose();
    return energy;
  };
  const plain = await energyAfter(0);
  const regularised = await energyAfter(0.3);
  assert.ok(regularised.every((v, i) => v < 0.95 * plain[i]), `Σ slice norms ${plain} → ${regularised}`);
  // A λ far past the step's stable range (a user's, or a tuning run's): each slice stops at zero instead of
  // swinging past it, which would multiply it by 1 − c·k ≪ −1 every step.
  const huge = await energyAfter(1e4);
  assert.ok(huge.every((v) => v === 0), `Σ slice norms at λ = 1e4: ${huge}`);
});

test('DSP end to end on a residual net with synthetic data: smaller packed model, target met, signals streamed', async () => {
  const model = residualNet(7);
  const data = await loadDataset({ format: 'synthetic', samples: 48, classes: 3 }, process.cwd(), { inputShape: [8, 8, 1], classes: 3 }, 3);
  const config = {
    configPath: join(process.cwd(), 'dsp.prune.json'), model: 'model.json', method: 'dsp', target: { flopsReduction: 0.4 }, output: 'out', scope: 'global',
    exclude: [], train, backend: 'cpu', seed: 1, dsp: { groups: 2 }, latency: { runs: 1, batchSize: 1 },
  } satisfies PruneConfig;
  const events: EngineEvent[] = [];
  const ctx = createMethodContext({ config, model, graph: analyzeModel(model), data, emit: (e) => events.push(e), layerStatsIntervalMs: 0 });
  const dense = countCost(model).flops;
  const decision = await dspMethod.run(ctx);
  assert.equal(decision.kind, 'model');
  if (decision.kind !== 'model') return;
  const flops = countCost(decision.model).flops;
  assert.ok(flops < dense);
  // Within 2 percentage points of the 40% reduction, the acceptance rule for every method.
  assert.ok(Math.abs(1 - flops / dense - 0.4) <= 0.02, `FLOPs reduced by ${((1 - flops / dense) * 100).toFixed(2)}%, target 40%`);
  assert.ok(decision.channelsRemoved > 0);

  const signals = events.filter((e): e is MethodSignalEvent => e.type === 'signal');
  const assignment = signals.find((s) => s.name === 'groupAssignment');
  assert.ok(assignment?.detail && 'conv1' in assignment.detail && 'conv2' in assignment.detail);
  const kept = signals.find((s) => s.name === 'keptChannels');
  assert.ok(kept?.detail && typeof kept.detail.layers === 'object');
  assert.ok(events.some((e) => e.type === 'layers'));
  assert.ok(events.some((e) => e.type === 'step' && e.phase === 'train'));

  // ctx.model holds the masked weights; the packed model equals it.
  const x = tf.randomNormal([4, 8, 8, 1], 0, 1, 'float32', 8);
  const diff = tf.tidy(() => tf.max(tf.abs(tf.sub(model.predict(x) as tf.Tensor, decision.model.predict(x) as tf.Tensor))).dataSync()[0]);
  assert.ok(diff <= 1e-5, `packed differs by ${diff}`);
  tf.dispose(x);
});

test('a DSP session on the tiny CNN saves a smaller per-group model that loads back', async () => {
  const ws = await makeWorkspace('prunelens-dsp-');
  const config = loadConfig(ws.writeConfig({ ...tinyTrainingConfig, method: 'dsp', dsp: { groups: 2 }, train: { epochs: 1, batchSize: 16, learningRate: 0.05, maxStepsPerEpoch: 2 } }));
  const result = await executeSession(config, () => undefined);
  assert.equal(result.type, 'done', result.type === 'error' ? result.message : '');
  if (result.type !== 'done') return;
  assert.ok(result.after.flops < result.before.flops);
  const reloaded = await loadModel(result.output!);
  assert.ok(reloaded.model.layers.some((l) => /^conv2_g\d$/.test(l.name)), 'conv2 was rebuilt as per-group convolutions');
  assert.equal(countCost(reloaded.model).flops, result.after.flops);
  reloaded.model.dispose();
});

test('DSP learning with λ = 0 trains exactly as the shared loop, SGD and Adam: the look-ahead restores the optimizer state too', async () => {
  const data = await loadDataset({ format: 'synthetic', samples: 48, classes: 3 }, process.cwd(), { inputShape: [8, 8, 1], classes: 3 }, 4);
  for (const optimizer of ['sgd', 'adam'] as const) {
    const settings: TrainConfig = { ...train, optimizer, learningRate: optimizer === 'adam' ? 0.01 : 0.05 };
    const plain = residualNet(8);
    await trainModel(plain, data, settings, {}, { seed: 1 });
    const expected = plain.weights.map((w) => Array.from(w.read().dataSync()));
    plain.dispose();

    const model = residualNet(8);
    const options = { ...DSP_DEFAULTS, groups: 2, regularization: 0 };
    const layers = groupedLayers(model, options);
    await learnGroups((hooks) => trainModel(model, data, settings, hooks, { seed: 1 }), options, layers, seededRandom(5));
    assert.ok(layers.some((l) => Array.from(l.theta.dataSync()).some((v) => v !== 0)), 'θ learned something');
    assert.deepEqual(model.weights.map((w) => Array.from(w.read().dataSync())), expected, `${optimizer}: weights equal the shared loop's`);
    layers.forEach((l) => l.theta.dispose());
    model.dispose();
  }
});

test('DSP reports session progress: monotone from the train phase through fine-tuning, equal to another method\'s', async () => {
  const progressOf = async (method: string, settings: Record<string, unknown>) => {
    const ws = await makeWorkspace(`prunelens-${method}-progress-`);
    const config = loadConfig(ws.writeConfig({ ...tinyTrainingConfig, method, train: { epochs: 2, batchSize: 16, learningRate: 0.01, maxStepsPerEpoch: 3 }, ...settings }));
    const events: EngineEvent[] = [];
    const result = await executeSession(config, (e) => events.push(e));
    assert.equal(result.type, 'done', result.type === 'error' ? result.message : '');
    return events.flatMap((e) => e.type === 'step' || e.type === 'epoch' ? [{ type: e.type, phase: e.phase, progress: e.progress }] : []);
  };
  const dsp = await progressOf('dsp', { dsp: { groups: 2 } });
  const goprune = await progressOf('goprune', {});
  const values = dsp.map((e) => e.progress);
  assert.ok(values.every((p, i) => i === 0 || p >= values[i - 1]), `monotone: ${values.map((p) => p.toFixed(3))}`);
  assert.ok(dsp.some((e) => e.phase === 'finetune') && values[values.length - 1] < 1);
  const trainPhase = (events: typeof dsp) => events.filter((e) => e.phase === 'train');
  assert.deepEqual(trainPhase(dsp), trainPhase(goprune));
});
