// Training objectives beyond class labels: distillation from the frozen dense model on unlabelled
// data (a model with a softmax head and a regression head), multi-label (sigmoid + binary
// cross-entropy) and regression losses, each pruned to −50% FLOPs and fine-tuned with its own
// loss and measured by its own named metric; micro-batches give the same steps; config errors
// in one line.
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/engine/backend/index.js';
import { trainModel, evaluateModel } from '../../src/engine/train/index.js';
import { buildObjective, frozenTeacher, type ObjectiveOptions } from '../../src/engine/train/objective.js';
import { planMemory } from '../../src/engine/train/memory.js';
import { analyzeModel } from '../../src/engine/graph/analyze.js';
import { unitNorms } from '../../src/engine/metrics/norms.js';
import { countCost } from '../../src/engine/metrics/index.js';
import { selectUnits } from '../../src/engine/prune/select.js';
import { removeUnits } from '../../src/engine/surgery/index.js';
import { saveModelAtomic } from '../../src/engine/io/index.js';
import { loadConfig } from '../../src/engine/config/load.js';
import { UserError } from '../../src/engine/errors.js';
import { seededRandom } from '../../src/engine/util/random.js';
import { encodeNpy } from '../../src/engine/data/npy.js';
import { loadDataset } from '../../src/engine/data/index.js';
import { executeSession } from '../../src/engine/session/session.js';
import type { EngineEvent } from '../../src/protocol/events.js';
import type { TrainConfig } from '../../src/engine/config/types.js';
import type { Batch, Dataset, DatasetTargets, EvalResult } from '../../src/engine/train/types.js';

const FEATURES = 8;

before(async () => {
  await initBackend('cpu');
});

/** Samples and per-output targets held in memory, served as a Dataset (seeded shuffles per epoch). */
function memoryDataset(x: Float32Array, targets: { values: Float32Array | Int32Array; shape: number[] }[], targetKind: DatasetTargets, validation: number): Dataset {
  const n = x.length / FEATURES;
  const trainSize = n - validation;
  const batchOf = (indices: number[]): Batch => {
    const xs = new Float32Array(indices.length * FEATURES);
    indices.forEach((index, i) => xs.set(x.subarray(index * FEATURES, (index + 1) * FEATURES), i * FEATURES));
    const y = targets.map(({ values, shape }) => {
      const size = shape.reduce((a, b) => a * b, 1);
      const out = values instanceof Int32Array ? new Int32Array(indices.length * size) : new Float32Array(indices.length * size);
      indices.forEach((index, i) => out.set(values.subarray(index * size, (index + 1) * size), i * size));
      return tf.tensor(out, [indices.length, ...shape], values instanceof Int32Array ? 'int32' : 'float32');
    });
    return { x: tf.tensor(xs, [indices.length, FEATURES]), y: targetKind === 'none' ? undefined : y };
  };
  async function* batches(order: number[], batchSize: number): AsyncGenerator<Batch> {
    for (let start = 0; start < order.length; start += batchSize) yield batchOf(order.slice(start, start + batchSize));
  }
  const trainOrder = Array.from({ length: trainSize }, (_, i) => i);
  return {
    sampleShape: [FEATURES], classes: 0, targets: targetKind, trainSize, validationSize: validation, description: 'in memory',
    trainBatches(batchSize, epoch) {
      const random = seededRandom(100 + epoch);
      const order = [...trainOrder];
      for (let i = order.length - 1; i > 0; i--) { const j = Math.floor(random() * (i + 1)); [order[i], order[j]] = [order[j], order[i]]; }
      return batches(order, batchSize);
    },
    validationBatches: (batchSize) => batches(Array.from({ length: validation }, (_, i) => trainSize + i), batchSize),
    calibration: async (count) => batchOf(trainOrder.slice(0, Math.min(count, trainSize))),
  };
}

function randomInputs(n: number, seed: number): Float32Array {
  const random = seededRandom(seed);
  return Float32Array.from({ length: n * FEATURES }, () => random() * 2 - 1);
}

/** Dense layers with seeded initialisers; `heads` become the model's outputs in order. */
function mlp(name: string, heads: { name: string; units: number; activation: 'softmax' | 'sigmoid' | 'linear' }[], seed: number): tf.LayersModel {
  const input = tf.input({ shape: [FEATURES] });
  let h = tf.layers.dense({ name: 'hidden1', units: 32, activation: 'relu', kernelInitializer: tf.initializers.heNormal({ seed }) }).apply(input) as tf.SymbolicTensor;
  h = tf.layers.dense({ name: 'hidden2', units: 32, activation: 'relu', kernelInitializer: tf.initializers.heNormal({ seed: seed + 1 }) }).apply(h) as tf.SymbolicTensor;
  const outputs = heads.map((head, i) => tf.layers.dense({ name: head.name, units: head.units, activation: head.activation, kernelInitializer: tf.initializers.glorotUniform({ seed: seed + 2 + i }) }).apply(h) as tf.SymbolicTensor);
  return tf.model({ inputs: input, outputs, name });
}

/** The l1 channels that remove half the FLOPs, physically removed. */
async function pruneHalfFlops(model: tf.LayersModel): Promise<tf.LayersModel> {
  const graph = analyzeModel(model);
  const remove = selectUnits(graph, model, unitNorms(model, graph, 'l1'), { flopsReduction: 0.5 }, { scope: 'global' });
  const pruned = await removeUnits(model, graph, remove);
  const reduction = 1 - countCost(pruned).flops / countCost(model).flops;
  assert.ok(Math.abs(reduction - 0.5) <= 0.02, `FLOPs −${(reduction * 100).toFixed(1)}%`);
  return pruned;
}

const settings = (over: Partial<TrainConfig> = {}): TrainConfig => ({
  epochs: 20, batchSize: 32, learningRate: 0.01, momentum: 0.9, weightDecay: 0, optimizer: 'adam', schedule: 'constant', ...over });

const metric = (result: EvalResult, name: string) => {
  const found = result.metrics.find((m) => m.name === name);
  assert.ok(found, `metric "${name}" among ${result.metrics.map((m) => m.name).join(', ')}`);
  return found.value;
};

test('distillation on an unlabelled .npy: a softmax head and a regression head pruned to −50% FLOPs recover at least half their relative error vs the teacher', async () => {
  const dense = mlp('two_heads', [{ name: 'classes', units: 4, activation: 'softmax' }, { name: 'box', units: 2, activation: 'linear' }], 11);
  // Inputs only, as a user without labels has them: an x.npy and no y.
  const dir = mkdtempSync(join(tmpdir(), 'prunelens-distill-npy-'));
  writeFileSync(join(dir, 'x.npy'), encodeNpy(randomInputs(640, 3), [640, FEATURES]));
  const data = await loadDataset({ format: 'npy', x: join(dir, 'x.npy'), validationSplit: 0.2 }, join(dir, 'distill.prune.json'),
    { inputShape: [FEATURES], classes: 0, outputShapes: [[4], [2]] }, 1);
  assert.equal(data.targets, 'none');
  const teacher = await frozenTeacher(dense);
  const objective: ObjectiveOptions = { teacher };
  const built = buildObjective(dense, data, objective);
  assert.equal(built.kind, 'distill', 'unlabelled data trains by distillation');
  assert.deepEqual(built.outputs.map((o) => o.distill), ['kl', 'mse']);

  const denseEval = await evaluateModel(dense, data, 256, undefined, objective);
  assert.equal(metric(denseEval, 'relative error vs the dense model (box)'), 0, 'the teacher is the dense model');
  const pruned = await pruneHalfFlops(dense);
  const afterPruning = await evaluateModel(pruned, data, 256, undefined, objective);
  assert.equal(afterPruning.metric.name, 'top-1 agreement with the dense model (classes)');
  const epochs: number[] = [];
  await trainModel(pruned, data, settings(), {}, { seed: 1, objective, onEpoch: (e) => epochs.push(e.loss) });
  const afterFinetune = await evaluateModel(pruned, data, 256, undefined, objective);
  for (const head of ['classes', 'box']) {
    const name = `relative error vs the dense model (${head})`;
    const before = metric(afterPruning, name), after = metric(afterFinetune, name);
    console.log(`${head}: relative error ${before.toFixed(4)} after pruning → ${after.toFixed(4)} after distillation`);
    assert.ok(before > 0.05, `pruning moved ${head} (${before})`);
    assert.ok(after <= before / 2, `${head}: ${after} ≤ ${before} / 2`);
  }
  const agreement = [afterPruning, afterFinetune].map((r) => metric(r, 'top-1 agreement with the dense model (classes)'));
  console.log(`top-1 agreement ${agreement.map((a) => a.toFixed(3)).join(' → ')}; distillation loss ${epochs[0].toFixed(4)} → ${epochs[epochs.length - 1].toFixed(4)}`);
  assert.ok(agreement[1] >= agreement[0], `agreement ${agreement.join(' → ')}`);
  const dense0 = dense.getWeights()[0].dataSync()[0];
  assert.equal(teacher.getWeights()[0].dataSync()[0], dense0, 'the teacher is a frozen copy');
  pruned.dispose(); dense.dispose(); teacher.dispose();
});

/** Targets a model of the task can learn: 3 labels of x (multi-label), or 2 smooth functions of x (regression). */
function multiLabelTargets(x: Float32Array, n: number): Float32Array {
  const y = new Float32Array(n * 3);
  for (let i = 0; i < n; i++) {
    const s = x.subarray(i * FEATURES, (i + 1) * FEATURES);
    y[i * 3] = s[0] + s[1] > 0 ? 1 : 0;
    y[i * 3 + 1] = s[2] - s[3] > 0.2 ? 1 : 0;
    y[i * 3 + 2] = s[4] * s[5] > 0 ? 1 : 0;
  }
  return y;
}

function regressionTargets(x: Float32Array, n: number): Float32Array {
  const y = new Float32Array(n * 2);
  for (let i = 0; i < n; i++) {
    const s = x.subarray(i * FEATURES, (i + 1) * FEATURES);
    y[i * 2] = 2 * s[0] - s[1] + 0.5 * s[2] * s[3];
    y[i * 2 + 1] = Math.sin(2 * s[4]) + s[5];
  }
  return y;
}

for (const task of [
  { kind: 'multi-label', activation: 'sigmoid' as const, units: 3, targets: multiLabelTargets, loss: 'binary-crossentropy', metric: 'multi-label F1', better: 1 },
  { kind: 'regression', activation: 'linear' as const, units: 2, targets: regressionTargets, loss: 'mse', metric: 'MAE', better: -1 },
]) {
  test(`a ${task.kind} model prunes to −50% FLOPs and fine-tunes with ${task.loss}, measured by ${task.metric}`, async () => {
    const n = 640;
    const x = randomInputs(n, 7);
    const data = memoryDataset(x, [{ values: task.targets(x, n), shape: [task.units] }], 'values', 128);
    const model = mlp(task.kind, [{ name: 'out', units: task.units, activation: task.activation }], 21);
    assert.deepEqual(buildObjective(model, data).outputs.map((o) => o.task?.loss), [task.loss], '"auto" picks the loss from the output');
    await trainModel(model, data, settings({ epochs: 15 }), {}, { seed: 2 });
    const dense = await evaluateModel(model, data);
    const pruned = await pruneHalfFlops(model);
    const afterPruning = await evaluateModel(pruned, data);
    const losses: number[] = [];
    await trainModel(pruned, data, settings({ epochs: 10, learningRate: 0.005 }), {}, { seed: 3, onEpoch: (e) => losses.push(e.loss) });
    const after = await evaluateModel(pruned, data);
    console.log(`${task.kind}: ${task.metric} dense ${dense.metric.value.toFixed(4)}, pruned ${afterPruning.metric.value.toFixed(4)}, fine-tuned ${after.metric.value.toFixed(4)}; loss ${afterPruning.loss.toFixed(4)} → ${after.loss.toFixed(4)}`);
    assert.equal(after.metric.name, task.metric);
    assert.equal(after.metric.higherIsBetter, task.better > 0);
    assert.equal(after.accuracy, undefined, 'no top-1 for this task');
    assert.ok(after.loss < afterPruning.loss, `validation loss falls: ${afterPruning.loss} → ${after.loss}`);
    assert.ok(losses[losses.length - 1] < losses[0], `training loss falls: ${losses.join(', ')}`);
    assert.ok(task.better * (after.metric.value - afterPruning.metric.value) > 0, `${task.metric} improves: ${afterPruning.metric.value} → ${after.metric.value}`);
    if (task.kind === 'regression') assert.ok(metric(after, 'R²') > 0.5, `R² ${metric(after, 'R²')}`);
    model.dispose(); pruned.dispose();
  });
}

test('micro-batches take the same steps as whole batches with distillation, binary cross-entropy, huber and a per-output mix', async () => {
  const n = 96;
  const x = randomInputs(n, 5);
  const heads = [{ name: 'tags', units: 3, activation: 'sigmoid' as const }, { name: 'value', units: 2, activation: 'linear' as const }];
  const labelled = memoryDataset(x, [{ values: multiLabelTargets(x, n), shape: [3] }, { values: regressionTargets(x, n), shape: [2] }], 'values', 0);
  const teacherModel = mlp('teacher', heads, 41);
  const teacher = await frozenTeacher(teacherModel);
  const cases: { label: string; data: Dataset; objective: ObjectiveOptions }[] = [
    { label: 'distillation without labels', data: memoryDataset(x, [], 'none', 0), objective: { teacher } },
    { label: 'task losses per output', data: labelled, objective: { config: { loss: { tags: 'binary-crossentropy', value: { type: 'huber', weight: 0.5 } } } } },
    { label: 'distillation mixed with the task', data: labelled, objective: { teacher, config: { objective: 'distill', distill: { weight: 0.5, temperature: 2, loss: { tags: 'kl' } } } } },
  ];
  for (const { label, data, objective } of cases) {
    const weights = async (microBatchSize?: number) => {
      const model = mlp('student', heads, 51);
      const plans: number[] = [];
      await trainModel(model, data, settings({ epochs: 1, maxStepsPerEpoch: 3, batchSize: 24, optimizer: 'sgd', learningRate: 0.05, microBatchSize }), {}, { seed: 1, objective, onMemoryPlan: (p) => plans.push(p.microBatches) });
      assert.deepEqual(plans, [microBatchSize ? Math.ceil(24 / microBatchSize) : 1]);
      const values = model.getWeights().map((w) => w.dataSync().slice());
      model.dispose();
      return values;
    };
    const whole = await weights();
    const split = await weights(7);
    const untrained = mlp('student', heads, 51).getWeights().map((w) => w.dataSync());
    let moved = 0, differs = 0;
    whole.forEach((w, i) => w.forEach((v, j) => {
      moved = Math.max(moved, Math.abs(v - untrained[i][j]));
      differs = Math.max(differs, Math.abs(v - split[i][j]));
    }));
    assert.ok(moved > 1e-3, `${label}: training moved the weights (${moved})`);
    assert.ok(differs < 1e-5, `${label}: micro-batches of 7 differ from whole batches by ${differs}`);
  }
  teacher.dispose(); teacherModel.dispose();
});

test('the memory plan counts the teacher', () => {
  const model = mlp('student', [{ name: 'out', units: 4, activation: 'softmax' }], 3);
  const plain = planMemory(model, 32, { limitBytes: 2 ** 30 });
  const distilled = planMemory(model, 32, { limitBytes: 2 ** 30, teacher: model });
  assert.ok(distilled.trainingBytes > plain.trainingBytes, `${distilled.trainingBytes} > ${plain.trainingBytes}`);
  model.dispose();
});

test('objective errors are one line naming the field', async () => {
  const model = mlp('m', [{ name: 'out', units: 2, activation: 'linear' }], 1);
  const unlabelled = memoryDataset(randomInputs(8, 1), [], 'none', 0);
  const values = memoryDataset(randomInputs(8, 1), [{ values: new Float32Array(16), shape: [2] }], 'values', 0);
  const oneLine = (field: string, pattern: RegExp) => (err: unknown) => {
    assert.ok(err instanceof UserError, String(err));
    assert.equal(err.field, field);
    assert.match(err.message, pattern);
    assert.ok(!err.message.includes('\n'), err.message);
    return true;
  };
  assert.throws(() => buildObjective(model, unlabelled, { config: { objective: 'task' } }), oneLine('objective', /"objective": "task" needs targets.*"distill"/));
  assert.throws(() => buildObjective(model, unlabelled, {}), oneLine('objective', /teacher/));
  assert.throws(() => buildObjective(model, values, { config: { loss: { head: 'mse' } } }), oneLine('loss', /output "head".*its outputs: out/));
  assert.throws(() => buildObjective(model, values, { config: { loss: 'sparse-categorical-crossentropy' } }), oneLine('loss', /float targets/));

  const dir = mkdtempSync(join(tmpdir(), 'prunelens-objective-'));
  await saveModelAtomic(model, join(dir, 'model'));
  const configPath = join(dir, 'x.prune.json');
  for (const [extra, field] of [[{ objective: 'distill' }, 'objective'], [{ distill: { temperature: 2 } }, 'distill']] as const) {
    writeFileSync(configPath, JSON.stringify({ model: 'model/model.json', method: 'l1', target: { flopsReduction: 0.3 }, output: 'out', ...extra }));
    assert.throws(() => loadConfig(configPath), oneLine(field, /distillation.*no "data"/));
  }
  writeFileSync(configPath, JSON.stringify({ model: 'model/model.json', method: 'l1', target: { flopsReduction: 0.3 }, output: 'out', loss: 'cosine' }));
  assert.throws(() => loadConfig(configPath), (err: unknown) => err instanceof UserError && /loss/.test(err.message) && !err.message.includes('\n'));
  model.dispose();
});

test('a session on unlabelled .npy distils by default and reports its metric dense, right after pruning and after fine-tuning', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'prunelens-distill-session-'));
  const dense = mlp('two_heads', [{ name: 'classes', units: 4, activation: 'softmax' }, { name: 'box', units: 2, activation: 'linear' }], 11);
  await saveModelAtomic(dense, join(dir, 'model'));
  dense.dispose();
  writeFileSync(join(dir, 'x.npy'), encodeNpy(randomInputs(640, 3), [640, FEATURES]));
  const configPath = join(dir, 'distill.prune.json');
  writeFileSync(configPath, JSON.stringify({
    model: 'model/model.json', method: 'l1', target: { flopsReduction: 0.5 }, output: 'pruned', backend: 'cpu',
    data: { format: 'npy', x: 'x.npy', validationSplit: 0.2 },
    finetune: { epochs: 20, batchSize: 32, learningRate: 0.01, optimizer: 'adam', weightDecay: 0, schedule: 'constant' },
    latency: { runs: 2, batchSize: 1 },
  }));
  const events: EngineEvent[] = [];
  const result = await executeSession(loadConfig(configPath), (e) => events.push(e));
  assert.equal(result.type, 'done', result.type === 'error' ? result.message : '');
  if (result.type !== 'done') return;
  const m = result.metric;
  assert.ok(m, 'the done event carries the metric');
  console.log(`session: ${m.name} ${m.before} dense → ${m.afterPruning} after pruning → ${m.after} after fine-tuning (${m.objective})`);
  assert.equal(m.name, 'top-1 agreement with the dense model (classes)');
  assert.equal(m.before, 1, 'the dense model agrees with itself');
  assert.ok(m.afterPruning !== undefined && m.afterPruning < 1 && m.after > m.afterPruning, `${m.afterPruning} → ${m.after}`);
  assert.match(m.objective ?? '', /^distillation from the dense model \(KL at T=4 on classes, mse on box\)$/);
  assert.equal(result.accuracy, undefined, 'no top-1 without labels');
  assert.ok(events.some((e) => e.type === 'log' && /Training objective: distillation/.test(e.message)));
  const report = JSON.parse(readFileSync(join(dir, 'pruned', 'pruning-report.json'), 'utf8'));
  assert.deepEqual(report.metric, m);
  const errors = report.finetune[0].metrics.filter((x: { name: string }) => x.name.startsWith('relative error'));
  assert.equal(errors.length, 2, 'every output reports its relative error vs the dense model');
});
