import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { PruneConfig } from '../../src/engine/config/types.js';
import type { EngineEvent, MethodSignalEvent } from '../../src/protocol/events.js';
import { initBackend } from '../../src/engine/backend/index.js';
import { analyzeModel } from '../../src/engine/graph/analyze.js';
import { countCost } from '../../src/engine/metrics/index.js';
import { loadDataset } from '../../src/engine/data/index.js';
import { evaluateModel } from '../../src/engine/train/index.js';
import { createMethodContext } from '../../src/engine/session/context.js';
import { buildDemoCnn } from '../../src/engine/demo/model.js';
import { ocsprunerMethod } from '../../src/engine/methods/ocspruner.js';
import { validateConfigText } from '../../src/engine/config/index.js';

before(async () => { await initBackend('auto'); });

const inputShape = [12, 12, 1];

function config(ocspruner: Record<string, unknown>, epochs: number): PruneConfig {
  return {
    configPath: '/tmp/ocspruner.prune.json', model: '/tmp/model.json', method: 'ocspruner', target: { flopsReduction: 0.5 }, output: '/tmp/out',
    scope: 'global', exclude: [], backend: 'auto', seed: 3, latency: { runs: 1, batchSize: 1 },
    data: { format: 'synthetic', samples: 400, classes: 4, noise: 2 },
    train: { epochs, batchSize: 32, learningRate: 0.05, momentum: 0.9, weightDecay: 5e-4, optimizer: 'sgd', schedule: 'cosine', maxStepsPerEpoch: 8 },
    ocspruner,
  };
}

async function run(cfg: PruneConfig) {
  const model = buildDemoCnn({ inputShape, classes: 4, seed: 2 });
  const graph = analyzeModel(model, { exclude: [] });
  const data = await loadDataset(cfg.data!, '/tmp', { inputShape, classes: 4 }, cfg.seed);
  const dense = countCost(model);
  const events: EngineEvent[] = [];
  const ctx = createMethodContext({ config: cfg, model, graph, data, emit: (e) => events.push(e) });
  const decision = await ocsprunerMethod.run(ctx);
  const signals = (name: string) => events.filter((e): e is MethodSignalEvent => e.type === 'signal' && e.name === name);
  return { model, graph, data, dense, events, decision, stability: signals('stability'), pruned: signals('pruned') };
}

test('one cycle: the stability indicator rises to the threshold, the model is pruned at that epoch, physically, and keeps its accuracy', async () => {
  const cfg = config({ monitorStartEpoch: 1, slStartEpoch: 2, slEndEpoch: 16, reg: 0.05, regDelta: 0.05 }, 24);
  const { graph, data, dense, events, decision, stability, pruned } = await run(cfg);
  assert.equal(decision.kind, 'model');
  if (decision.kind !== 'model') return;

  const values = stability.map((e) => e.value);
  assert.deepEqual(stability.map((e) => e.step), values.map((_, i) => i), 'one stability value per epoch of the search');
  assert.ok(values.every((v) => v >= 0 && v <= 1));
  const firstPassing = values.findIndex((v) => v >= 0.999);
  assert.ok(firstPassing >= 1 + 4, `cannot pass before monitor start + 4 (passed at ${firstPassing})`);
  assert.equal(firstPassing, values.length - 1, 'the search stops at the first epoch that passes');
  assert.ok(values[firstPassing - 3] < values[firstPassing], `the indicator rises: ${values.map((v) => v.toFixed(3)).join(', ')}`);

  assert.equal(pruned.length, 1);
  assert.equal(pruned[0].step, firstPassing, 'pruned at the stable epoch');
  const detail = pruned[0].detail as { stable: boolean; accuracyBeforePrune: number; accuracyAfterPrune: number };
  assert.equal(detail.stable, true);

  // The pruned model trains for the rest of the same budget: one cycle of epochs in all.
  const epochEvents = events.filter((e) => e.type === 'epoch');
  assert.equal(epochEvents.length, cfg.train!.epochs);

  const after = countCost(decision.model);
  const reduction = 1 - after.flops / dense.flops;
  assert.ok(Math.abs(reduction - 0.5) <= 0.02, `FLOPs reduction ${reduction.toFixed(4)}`);
  assert.ok(after.params < dense.params);
  const prunedGraph = analyzeModel(decision.model, { exclude: [] });
  assert.equal(graph.units.length - prunedGraph.units.length, decision.channelsRemoved);
  assert.ok((decision.model.getLayer('fc1').getConfig() as { units: number }).units < 64, 'layers are physically narrower');

  // The shrink made removal nearly free, and the rest of the cycle keeps (or improves) accuracy.
  const final = await evaluateModel(decision.model, data);
  assert.ok(detail.accuracyAfterPrune >= detail.accuracyBeforePrune - 0.1, `right after pruning ${detail.accuracyAfterPrune} vs before ${detail.accuracyBeforePrune}`);
  assert.ok(final.accuracy! >= detail.accuracyBeforePrune - 0.05, `after the cycle ${final.accuracy} vs before pruning ${detail.accuracyBeforePrune}`);
  assert.ok(final.accuracy! > 0.5, 'a learnable task is learnt (4 classes)');
  decision.model.dispose();
});

test('without a stable sub-network the search ends after slEndEpoch and prunes with the latest choice', async () => {
  const cfg = config({ monitorStartEpoch: 1, slStartEpoch: 0, slEndEpoch: 3, reg: 0.01, regDelta: 0.01 }, 7);
  const { dense, events, decision, stability, pruned } = await run(cfg);
  assert.equal(decision.kind, 'model');
  if (decision.kind !== 'model') return;
  assert.equal(stability.length, 5, 'epochs 0..4: the indicator cannot reach the threshold before epoch 5');
  assert.equal(pruned[0].step, 4);
  assert.equal((pruned[0].detail as { stable: boolean }).stable, false);
  assert.equal(events.filter((e) => e.type === 'epoch').length, 7);
  const reduction = 1 - countCost(decision.model).flops / dense.flops;
  assert.ok(Math.abs(reduction - 0.5) <= 0.02, `FLOPs reduction ${reduction.toFixed(4)}`);
  assert.ok(decision.notes?.some((n) => n.includes('stayed below')));
  decision.model.dispose();
});

test('the ocspruner and ispasp config sections validate, and a misspelt knob is reported', () => {
  const base = { model: 'm/model.json', method: 'ocspruner', target: { flopsReduction: 0.5 }, output: 'out' };
  assert.deepEqual(validateConfigText(JSON.stringify({ ...base, ocspruner: { monitorStartEpoch: 2, slStartEpoch: 6, slEndEpoch: 25, reg: 1e-4, regDelta: 1e-4, regInterval: 1, stabilityThreshold: 0.999, stabilityWindow: 3, layerPruneLimit: 0.75, layerLimitFactor: 1, flopsAware: true } })).problems, []);
  assert.deepEqual(validateConfigText(JSON.stringify({ ...base, method: 'ispasp', ispasp: { iterations: 20, candidateFactor: 2, calibrationSamples: 1280, batchSize: 256, importance: 'magnitude', includeNorm: true, blockFinetuneEpochs: 0, blockFinetuneLearningRate: 0.01, keepRatio: 0.4 } })).problems, []);
  const { problems } = validateConfigText(JSON.stringify({ ...base, ocspruner: { stabilityTreshold: 0.9 } }));
  assert.deepEqual(problems.map((p) => p.path.join('.')), ['ocspruner.stabilityTreshold']);
});
