/**
 * Method defaults that follow the run instead of the official CIFAR recipe's absolute counts:
 * SSR's K (steps between F/Y updates) is a share of an epoch, OCSPruner's search epochs a share of
 * `train.epochs`. With the fixed values (K = 200; epochs 2, 30, 110) a short run on a small data
 * set never updated F and Y inside training, and never started OCSPruner's shrink.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { PruneConfig } from '../../src/engine/config/types.js';
import type { EngineEvent, MethodSignalEvent } from '../../src/protocol/events.js';
import { initBackend } from '../../src/engine/backend/index.js';
import { analyzeModel } from '../../src/engine/graph/analyze.js';
import { loadDataset } from '../../src/engine/data/index.js';
import { createMethodContext } from '../../src/engine/session/context.js';
import { buildDemoCnn } from '../../src/engine/demo/model.js';
import { defaultUpdateEvery, ssrMethod } from '../../src/engine/methods/ssr.js';
import { ocsprunerMethod, searchEpochs } from '../../src/engine/methods/ocspruner.js';
import { buildMlp } from '../helpers/models.js';

before(async () => { await initBackend('wasm'); });

const signalsOf = (events: EngineEvent[], name: string) => events.filter((e): e is MethodSignalEvent => e.type === 'signal' && e.name === name);

const base = (method: 'ssr' | 'ocspruner', epochs: number, sections: Record<string, unknown>): PruneConfig => ({
  configPath: `/tmp/${method}.prune.json`, model: '/tmp/model.json', method, target: { flopsReduction: 0.4 }, output: '/tmp/out',
  scope: 'global', exclude: [], backend: 'wasm', seed: 3, latency: { runs: 1, batchSize: 1 },
  train: { epochs, batchSize: 32, learningRate: 0.05, momentum: 0.9, weightDecay: 5e-4, optimizer: 'sgd', schedule: 'cosine', maxStepsPerEpoch: 8 },
  ...sections,
} as PruneConfig);

test("SSR's default K is about half an epoch: the official 200 on CIFAR-10's 391 steps, F/Y updates inside a short phase here", async () => {
  assert.equal(defaultUpdateEvery(391), 200);
  assert.equal(defaultUpdateEvery(8), 4);
  assert.equal(ssrMethod.options({ configPath: '' }).updateEvery, undefined, 'no fixed default');
  assert.equal(ssrMethod.options({ configPath: '', ssr: { updateEvery: 7 } }).updateEvery, 7);

  const model = buildMlp();
  const graph = analyzeModel(model);
  const data = await loadDataset({ format: 'synthetic', samples: 320, classes: 4, seed: 3 }, '/tmp/x.prune.json', { inputShape: [16], classes: 4 }, 1);
  const config = base('ssr', 2, { target: { channelRatio: 0.2 }, ssr: { lambda: 0.5 } });
  const events: EngineEvent[] = [];
  const decision = await ssrMethod.run(createMethodContext({ config, model, graph, data, emit: (e) => events.push(e) }));
  // One update before training, one every 4 of the 16 steps, one after: 6 (with K = 200: 2).
  const updates = signalsOf(events, 'zeroGroups');
  assert.equal(updates.length, 6, `F/Y updates: ${updates.map((u) => (u.detail as { step: number }).step)}`);
  assert.ok(decision.notes?.some((n) => n.includes('every 4 steps')), decision.notes?.join(' | '));
  model.dispose();
});

test("OCSPruner's search epochs default to the official schedule's shares of train.epochs: a 10-epoch run shrinks, prunes by epoch 4 and trains the smaller model", async () => {
  assert.deepEqual(searchEpochs({}, 300), { monitorStartEpoch: 2, slStartEpoch: 30, slEndEpoch: 110 });
  assert.deepEqual(searchEpochs({}, 10), { monitorStartEpoch: 0, slStartEpoch: 1, slEndEpoch: 3 });
  assert.deepEqual(searchEpochs({ slEndEpoch: 8 }, 10), { monitorStartEpoch: 0, slStartEpoch: 1, slEndEpoch: 8 }, 'a set value wins');

  const inputShape = [12, 12, 1];
  const model = buildDemoCnn({ inputShape, classes: 4, seed: 2 });
  const graph = analyzeModel(model, { exclude: [] });
  const config = base('ocspruner', 10, { target: { flopsReduction: 0.5 }, data: { format: 'synthetic', samples: 400, classes: 4, noise: 2 }, ocspruner: { reg: 0.05, regDelta: 0.05 } });
  const data = await loadDataset(config.data!, '/tmp', { inputShape, classes: 4 }, config.seed);
  const events: EngineEvent[] = [];
  const decision = await ocsprunerMethod.run(createMethodContext({ config, model, graph, data, emit: (e) => events.push(e) }));
  const shrinking = signalsOf(events, 'stability').filter((s) => (s.detail as { reg: number }).reg > 0);
  assert.ok(shrinking.length > 0, 'the shrink ran (with slStartEpoch 30 it never starts in 10 epochs)');
  const [pruned] = signalsOf(events, 'pruned');
  assert.ok(pruned.step <= 4, `pruned at epoch ${pruned.step} (the search ends after epoch 3 + 1 at the latest)`);
  assert.ok(decision.notes?.some((n) => n.includes('monitorStartEpoch 0, slStartEpoch 1, slEndEpoch 3')), decision.notes?.join(' | '));
  if (decision.kind === 'model') decision.model.dispose();
  model.dispose();
});
