import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/engine/backend/index.js';
import { loadDataset } from '../../src/engine/data/index.js';
import { evaluateModel, snapshotBatchNorm, trainModel, type StepProgress } from '../../src/engine/train/index.js';
import { learningRateAt } from '../../src/engine/train/optimizer.js';
import type { TrainConfig } from '../../src/engine/config/types.js';
import type { Dataset, EpochInfo, TrainHooks } from '../../src/engine/train/types.js';
import { CancelledError } from '../../src/engine/errors.js';

const INPUT = [8, 8, 2];
const CLASSES = 4;

function smallCnn(options: { seed?: number; dropout?: number; softmax?: boolean } = {}): tf.LayersModel {
  const seed = options.seed ?? 1;
  const input = tf.input({ shape: INPUT });
  let h = tf.layers.conv2d({ name: 'conv', filters: 6, kernelSize: 3, padding: 'same', kernelInitializer: tf.initializers.heNormal({ seed }) }).apply(input) as tf.SymbolicTensor;
  h = tf.layers.batchNormalization({ name: 'bn' }).apply(h) as tf.SymbolicTensor;
  h = tf.layers.reLU().apply(h) as tf.SymbolicTensor;
  h = tf.layers.maxPooling2d({ poolSize: 2 }).apply(h) as tf.SymbolicTensor;
  h = tf.layers.flatten().apply(h) as tf.SymbolicTensor;
  if (options.dropout) h = tf.layers.dropout({ rate: options.dropout }).apply(h) as tf.SymbolicTensor;
  const out = tf.layers.dense({ name: 'head', units: CLASSES, activation: options.softmax === false ? 'linear' : 'softmax',
    kernelInitializer: tf.initializers.glorotUniform({ seed: seed + 1 }) }).apply(h) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: out });
}

const settings = (over: Partial<TrainConfig> = {}): TrainConfig => ({
  epochs: 3, batchSize: 32, learningRate: 0.05, momentum: 0.9, weightDecay: 0.0005, optimizer: 'sgd', schedule: 'cosine', ...over });

let data: Dataset;

before(async () => {
  await initBackend('wasm');
  data = await loadDataset({ format: 'synthetic', samples: 320, classes: CLASSES, noise: 1.0 }, '/tmp', { inputShape: INPUT, classes: CLASSES }, 7);
});

test('loss falls and validation accuracy rises on a learnable synthetic task (softmax and logits outputs)', async () => {
  for (const softmax of [true, false]) {
    const model = smallCnn({ softmax });
    const before = await evaluateModel(model, data);
    const epochs: EpochInfo[] = [];
    const result = await trainModel(model, data, settings(), {}, { seed: 1, onEpoch: (e) => epochs.push(e) });
    assert.equal(epochs.length, 3);
    assert.ok(epochs[2].loss < 0.6 * epochs[0].loss, `softmax=${softmax}: loss ${epochs.map((e) => e.loss.toFixed(3))}`);
    assert.ok(result && result.accuracy! > 0.8 && result.accuracy! > before.accuracy! + 0.3, `accuracy ${before.accuracy} → ${result?.accuracy}`);
    assert.equal(result.samples, data.validationSize);
    model.dispose();
  }
});

test('the loss matches tfjs cross-entropy for softmax outputs and for logits', async () => {
  const batch = await data.calibration(16);
  for (const softmax of [true, false]) {
    const model = smallCnn({ softmax, seed: 3 });
    const expected = tf.tidy(() => {
      const out = model.predict(batch.x) as tf.Tensor;
      const oneHot = tf.oneHot(batch.y![0] as tf.Tensor1D, CLASSES);
      return (softmax ? tf.metrics.categoricalCrossentropy(oneHot, out).mean() : tf.losses.softmaxCrossEntropy(oneHot, out)).dataSync()[0];
    });
    const oneBatch: Dataset = { ...data, validationSize: 16, validationBatches: async function* () { yield { x: batch.x.clone(), y: [batch.y![0].clone()] }; } };
    const result = await evaluateModel(model, oneBatch);
    assert.ok(Math.abs(result.loss - expected) < 1e-5, `softmax=${softmax}: ${result.loss} vs ${expected}`);
    model.dispose();
  }
  tf.dispose([batch.x, batch.y]);
});

test('two runs with one seed give identical metrics, dropout included', async () => {
  const run = async (seed: number) => {
    const model = smallCnn({ dropout: 0.5 });
    const losses: number[] = [];
    const result = await trainModel(model, data, settings({ epochs: 1 }), {}, { seed, onStep: (s) => losses.push(s.loss) });
    model.dispose();
    return { losses, result };
  };
  const first = await run(5), second = await run(5), other = await run(6);
  assert.deepEqual(second, first);
  assert.notDeepEqual(other.losses, first.losses, 'the seed drives the dropout masks');
});

test('an aborted signal stops training within one step with CancelledError', async () => {
  const model = smallCnn();
  const controller = new AbortController();
  const steps: StepProgress[] = [];
  await assert.rejects(
    trainModel(model, data, settings(), {}, {
      seed: 1, signal: controller.signal,
      // Aborted from a later event-loop turn, as a cancel message arriving over IPC would be.
      onStep: (s) => { steps.push(s); if (s.step === 2) setImmediate(() => controller.abort()); },
    }),
    CancelledError);
  assert.equal(steps.length, 3);
  model.dispose();
});

test('snapshotBatchNorm restores moving statistics exactly', async () => {
  const model = smallCnn();
  await trainModel(model, data, settings({ epochs: 0.2 }), {}, { seed: 1 });
  const stats = () => model.getLayer('bn').getWeights().slice(2).map((w) => Array.from(w.dataSync()));
  const original = stats();
  const restore = snapshotBatchNorm(model);
  await trainModel(model, data, settings({ epochs: 0.2, learningRate: 1e-9 }), {}, { seed: 2 });
  tf.tidy(() => { model.apply(tf.randomNormal([8, ...INPUT], 0, 5), { training: true }); });
  assert.notDeepEqual(stats(), original, 'training-mode passes move the statistics');
  const tensors = tf.memory().numTensors;
  restore();
  assert.deepEqual(stats(), original);
  assert.equal(tf.memory().numTensors, tensors - 2, 'the two copies are released');
  restore();
  assert.deepEqual(stats(), original);
  model.dispose();
});

test('a regularizer enters the gradient and weight decay is L2 on kernels only', async () => {
  const oneStep = { epochs: 1, maxStepsPerEpoch: 1, momentum: 0, schedule: 'constant' as const, learningRate: 0.1 };
  const trainOnce = async (over: Partial<TrainConfig>, regularize: boolean) => {
    const model = smallCnn({ seed: 9 });
    const weightsOf = () => ['conv', 'head'].flatMap((name) => model.getLayer(name).getWeights().map((w) => Float32Array.from(w.dataSync())));
    const w0 = weightsOf();
    await trainModel(model, data, settings({ ...oneStep, weightDecay: 0, ...over }), regularize
      ? { regularizer: (m) => tf.mul(tf.sum(m.getLayer('head').getWeights()[0]), 2) }
      : {}, { seed: 1 });
    const w1 = weightsOf();
    model.dispose();
    return { w0, w1 };
  };
  const plain = await trainOnce({}, false);
  const regularized = await trainOnce({}, true);
  const decayed = await trainOnce({ weightDecay: 0.5 }, false);
  const convKernel = 0, convBias = 1, headKernel = 2; // as listed by weightsOf
  // d/dw of 2·Σw is 2, so the regularised step moves the head kernel by a further −lr·2 = −0.2.
  regularized.w1[headKernel].forEach((v, i) => assert.ok(Math.abs(v - (plain.w1[headKernel][i] - 0.2)) < 1e-5));
  assert.deepEqual(regularized.w1[convKernel], plain.w1[convKernel]);
  // L2 decay adds wd·w0 to the gradient of kernels: a further step of −lr·wd·w0.
  decayed.w1[convKernel].forEach((v, i) => assert.ok(Math.abs(v - (plain.w1[convKernel][i] - 0.1 * 0.5 * plain.w0[convKernel][i])) < 1e-5));
  assert.deepEqual(decayed.w1[convBias], plain.w1[convBias], 'biases are not decayed');
});

test('hooks are called in order and afterEpoch "stop" ends training early', async () => {
  const model = smallCnn();
  const calls: string[] = [];
  const result = await trainModel(model, data, settings({ epochs: 3, maxStepsPerEpoch: 2 }), {
    beforeEpoch: ({ epoch, epochs }) => { calls.push(`before ${epoch}/${epochs}`); },
    afterBatch: ({ info, batch }) => { calls.push(`batch #${info.globalStep}/${info.totalSteps} of ${batch.x.shape[0]}`); },
    afterStep: async (s) => {
      tf.zeros([4]); // created inside the hook's scope and freed after it
      await Promise.resolve();
      calls.push(`step ${s.epoch}.${s.step} #${s.globalStep}`);
    },
    afterEpoch: (e) => { calls.push(`after ${e.epoch}`); return e.epoch === 1 ? 'stop' : undefined; },
  }, { seed: 1 });
  assert.deepEqual(calls, ['before 0/3', 'batch #0/6 of 32', 'step 0.0 #0', 'batch #1/6 of 32', 'step 0.1 #1', 'after 0',
    'before 1/3', 'batch #2/6 of 32', 'step 1.0 #2', 'batch #3/6 of 32', 'step 1.1 #3', 'after 1']);
  assert.ok(result && result.samples === data.validationSize);
  model.dispose();
});

test('a look-ahead in afterBatch (a step on the same batch between a snapshot and its restore) leaves training exactly as without it', async () => {
  const variants: Partial<TrainConfig>[] = [{}, { optimizer: 'adam', learningRate: 0.01 }, { microBatchSize: 12 }];
  for (const over of variants) {
    const run = async (hooks: TrainHooks) => {
      const model = smallCnn({ seed: 4, dropout: 0.2 });
      await trainModel(model, data, settings({ epochs: 1, maxStepsPerEpoch: 4, ...over }), hooks, { seed: 3 });
      const weights = model.weights.map((w) => Array.from(w.read().dataSync())); // batch-norm statistics included
      model.dispose();
      return weights;
    };
    const plain = await run({});
    const lookAheadLosses: number[] = [];
    const tensors = tf.memory().numTensors;
    const lookedAhead = await run({
      afterBatch: async (s) => {
        const saved = s.snapshot();
        lookAheadLosses.push(await s.step());
        saved.restore();
      },
    });
    assert.equal(tf.memory().numTensors, tensors, `${JSON.stringify(over)}: no tensor left behind`);
    const kept = await run({ afterBatch: async (s) => { await s.step(); } });
    assert.deepEqual(lookedAhead, plain, `${JSON.stringify(over)}: restored exactly`);
    assert.notDeepEqual(kept, plain, 'the extra step changes training when it is not undone');
    assert.equal(lookAheadLosses.length, 4);
    assert.ok(lookAheadLosses.every(Number.isFinite));
  }
});

test('fractional epochs, step caps and schedules', async () => {
  const model = smallCnn();
  const steps: StepProgress[] = [];
  const epochs: EpochInfo[] = [];
  await trainModel(model, data, settings({ epochs: 1.5, maxStepsPerEpoch: 4, schedule: 'step', stepEpochs: 1, gamma: 0.1, learningRate: 0.1 }), {},
    { seed: 1, onStep: (s) => steps.push(s), onEpoch: (e) => epochs.push(e) });
  assert.deepEqual(steps.map((s) => `${s.epoch}.${s.step}`), ['0.0', '0.1', '0.2', '0.3', '1.0', '1.1']);
  assert.deepEqual(steps.map((s) => s.stepsPerEpoch), [4, 4, 4, 4, 4, 4]);
  assert.deepEqual(steps.map((s) => +s.learningRate.toPrecision(6)), [0.1, 0.1, 0.1, 0.1, 0.01, 0.01]);
  assert.ok(steps[0].etaMs > 0, 'ETA from the step-time average');
  assert.equal(steps[steps.length - 1].etaMs, 0, 'nothing left after the last step');
  assert.equal(epochs.length, 2);
  model.dispose();
  const cosine = { learningRate: 1, schedule: 'cosine' as const };
  assert.equal(learningRateAt(cosine, 0, 10, 100), 1);
  assert.ok(Math.abs(learningRateAt(cosine, 50, 10, 100) - 0.5) < 1e-12);
  assert.ok(learningRateAt(cosine, 100, 10, 100) < 1e-12);
  assert.equal(learningRateAt({ learningRate: 1, schedule: 'step', stepEpochs: 0.5, gamma: 0.5 }, 15, 10, 100), 0.125);
});

test('no tensor leaks per step or per run', async () => {
  const model = smallCnn({ dropout: 0.2 });
  const counts: number[] = [];
  const start = tf.memory().numTensors;
  await trainModel(model, data, settings({ epochs: 1, optimizer: 'adam', learningRate: 0.01 }), {
    regularizer: (m) => tf.mul(tf.sum(tf.abs(m.getLayer('conv').getWeights()[0])), 1e-4),
    afterStep: () => { tf.zeros([2]); },
  }, { seed: 1, onStep: () => counts.push(tf.memory().numTensors) });
  assert.ok(counts.length >= 8);
  assert.deepEqual(counts.slice(1), counts.slice(1).map(() => counts[1]), `tensors per step: ${counts}`);
  assert.equal(tf.memory().numTensors, start, 'optimizer state is released after the run');
  model.dispose();
});
