// Training fits the tensor memory: a batch that does not fit runs as micro-batches whose summed
// gradients give the same step, one that cannot fit at all says so in one line, and an
// allocation past the wasm heap's usable 2 GiB is refused by name instead of corrupting memory.
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/engine/backend/index.js';
import { HeapExhaustedError, WASM_HEAP_LIMIT_BYTES, limitWasmHeap, peakTensorMemory, wasmHeapInUse } from '../../src/engine/backend/heap.js';
import { loadDataset } from '../../src/engine/data/index.js';
import { trainModel } from '../../src/engine/train/index.js';
import { activationFootprint, fittingEvalBatch, planMemory } from '../../src/engine/train/memory.js';
import { UserError } from '../../src/engine/errors.js';
import type { TrainConfig } from '../../src/engine/config/types.js';
import type { Dataset } from '../../src/engine/train/types.js';

const INPUT = [8, 8, 2];
const CLASSES = 3;

/** No batch norm and no dropout: a step's gradient is the mean over samples, however they are split. */
function cnnWithoutBatchStatistics(seed = 3): tf.LayersModel {
  const input = tf.input({ shape: INPUT });
  let h = tf.layers.conv2d({ name: 'conv', filters: 5, kernelSize: 3, padding: 'same', activation: 'relu', kernelInitializer: tf.initializers.heNormal({ seed }) }).apply(input) as tf.SymbolicTensor;
  h = tf.layers.depthwiseConv2d({ name: 'dw', kernelSize: 3, padding: 'same', depthwiseInitializer: tf.initializers.heNormal({ seed: seed + 1 }) }).apply(h) as tf.SymbolicTensor;
  h = tf.layers.flatten().apply(h) as tf.SymbolicTensor;
  const out = tf.layers.dense({ name: 'head', units: CLASSES, activation: 'softmax', kernelInitializer: tf.initializers.glorotUniform({ seed: seed + 2 }) }).apply(h) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: out, name: 'small_cnn' });
}

const settings = (over: Partial<TrainConfig> = {}): TrainConfig => ({
  epochs: 1, batchSize: 12, learningRate: 0.05, momentum: 0.9, weightDecay: 0.0005, optimizer: 'sgd', schedule: 'constant', maxStepsPerEpoch: 3, ...over });

let data: Dataset;

before(async () => {
  await initBackend('wasm');
  data = await loadDataset({ format: 'synthetic', samples: 48, classes: CLASSES, noise: 0.5, validationSplit: 0 }, '/tmp', { inputShape: INPUT, classes: CLASSES }, 5);
});

async function weightsAfterTraining(microBatchSize?: number, optimizer: TrainConfig['optimizer'] = 'sgd'): Promise<Float32Array[]> {
  const model = cnnWithoutBatchStatistics();
  const plans: number[] = [];
  await trainModel(model, data, settings({ microBatchSize, optimizer }), {
    regularizer: (m) => tf.mul(tf.sum(tf.abs(m.getLayer('conv').getWeights()[0])), 1e-3) as tf.Scalar,
  }, { seed: 1, onMemoryPlan: (p) => plans.push(p.microBatches) });
  assert.deepEqual(plans, [microBatchSize ? Math.ceil(12 / microBatchSize) : 1]);
  const weights = model.getWeights().map((w) => w.dataSync() as Float32Array);
  model.dispose();
  return weights;
}

test('micro-batches of 5, 5 and 2 take the same steps as whole batches of 12 (SGD and Adam, with a regulariser)', async () => {
  for (const optimizer of ['sgd', 'adam'] as const) {
    const whole = await weightsAfterTraining(undefined, optimizer);
    const split = await weightsAfterTraining(5, optimizer);
    const untrained = cnnWithoutBatchStatistics().getWeights().map((w) => w.dataSync());
    whole.forEach((w, i) => {
      let moved = 0, differs = 0;
      for (let j = 0; j < w.length; j++) {
        moved = Math.max(moved, Math.abs(w[j] - untrained[i][j]));
        differs = Math.max(differs, Math.abs(w[j] - split[i][j]));
      }
      assert.ok(moved > 1e-3, `${optimizer}: weight ${i} was trained`);
      assert.ok(differs < 2e-5 * Math.max(1, moved) + 1e-6, `${optimizer}: weight ${i} differs by ${differs} (moved ${moved})`);
    });
  }
});

test('the plan splits a batch that does not fit and keeps one that does', () => {
  const model = cnnWithoutBatchStatistics();
  const perSample = activationFootprint(model).outputBytes;
  const roomy = planMemory(model, 64, { limitBytes: 2 ** 30 });
  assert.equal(roomy.microBatches, 1);
  assert.equal(roomy.microBatchSize, 64);
  // A limit that holds the whole batch's planned bytes only once: a quarter is kept free, so the batch splits.
  const tight = planMemory(model, 64, { limitBytes: roomy.trainingBytes });
  assert.ok(tight.microBatchSize < 64 && tight.microBatchSize >= 32, `micro-batch ${tight.microBatchSize}`);
  assert.ok(perSample > 0);
  assert.equal(tight.microBatches, Math.ceil(64 / tight.microBatchSize));
  assert.ok(tight.trainingBytes <= tight.limitBytes, 'planned within the limit');
  assert.equal(planMemory(model, 64, { microBatchSize: 16 }).microBatchSize, 16, 'a configured micro-batch wins');
  assert.ok(fittingEvalBatch(model, 256, 2 ** 16) < 256, 'evaluation batches shrink too');
  model.dispose();
});

test('a sample that cannot fit is one line naming the model, its input size and the memory needed', () => {
  const model = cnnWithoutBatchStatistics();
  assert.throws(() => planMemory(model, 32, { limitBytes: 4096 }), (err: unknown) => {
    assert.ok(err instanceof UserError);
    assert.match(err.message, /training small_cnn on 8×8×2 inputs needs about \d+ MiB for one sample, more than the WebAssembly heap holds/);
    assert.doesNotMatch(err.message, /\n/);
    return true;
  });
  model.dispose();
});

test('an allocation past the usable 2 GiB of the wasm heap is refused by name, and the backend keeps working', () => {
  const wasm = (tf.backend() as unknown as { wasm: { _malloc(n: number): number } }).wasm;
  assert.throws(() => wasm._malloc(WASM_HEAP_LIMIT_BYTES), (err: unknown) => err instanceof HeapExhaustedError && /tensor heap cannot hold/.test(err.message));
  const sum = tf.tidy(() => tf.sum(tf.ones([1000])).dataSync()[0]);
  assert.equal(sum, 1000);
  assert.equal(peakTensorMemory().measure, 'wasm heap');
});

/** Wider activations (64×64×16 a layer): a batch of 32 needs tens of MiB. */
function wideCnn(): tf.LayersModel {
  const input = tf.input({ shape: [64, 64, 4] });
  let h = tf.layers.conv2d({ name: 'wide1', filters: 16, kernelSize: 3, padding: 'same', activation: 'relu', kernelInitializer: tf.initializers.heNormal({ seed: 11 }) }).apply(input) as tf.SymbolicTensor;
  h = tf.layers.conv2d({ name: 'wide2', filters: 16, kernelSize: 3, padding: 'same', activation: 'relu', kernelInitializer: tf.initializers.heNormal({ seed: 12 }) }).apply(h) as tf.SymbolicTensor;
  h = tf.layers.globalAveragePooling2d({}).apply(h) as tf.SymbolicTensor;
  const out = tf.layers.dense({ units: CLASSES, activation: 'softmax', kernelInitializer: tf.initializers.glorotUniform({ seed: 13 }) }).apply(h) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: out, name: 'wide_cnn' });
}

test('a step the plan underestimated is retried in halved micro-batches, from where it started, and trains as that micro-batch would', async () => {
  const wide = await loadDataset({ format: 'synthetic', samples: 64, classes: CLASSES, noise: 0.5, validationSplit: 0 }, '/tmp', { inputShape: [64, 64, 4], classes: CLASSES }, 9);
  const train = async (microBatchSize: number) => {
    const model = wideCnn();
    const sizes: number[] = [];
    await trainModel(model, wide, settings({ batchSize: 32, microBatchSize, maxStepsPerEpoch: 2 }), {}, { seed: 2, onMemoryPlan: (p) => sizes.push(p.microBatchSize) });
    const weights = model.getWeights().map((w) => Array.from(w.dataSync()));
    model.dispose();
    return { weights, sizes };
  };
  // Room for 12 MiB beyond what the heap holds now: a whole batch of 32 (about 50 MiB) cannot fit.
  limitWasmHeap(wasmHeapInUse() + 12 * 2 ** 20);
  const tensorsBefore = tf.memory().numTensors;
  let retried;
  try {
    retried = await train(32);
  } finally {
    limitWasmHeap(WASM_HEAP_LIMIT_BYTES);
  }
  assert.equal(tf.memory().numTensors, tensorsBefore, 'the failed attempts\' activations were freed');
  assert.equal(retried.sizes[0], 32);
  const fitted = retried.sizes[retried.sizes.length - 1];
  assert.ok(fitted < 32, `micro-batches ${retried.sizes.join(' → ')}`);
  const direct = await train(fitted);
  assert.deepEqual(retried.weights, direct.weights, 'the failed attempts left no trace');
});
