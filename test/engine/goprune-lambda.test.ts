import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import type { PruneConfig, TrainConfig } from '../../src/engine/config/types.js';
import type { EngineEvent, MethodSignalEvent } from '../../src/protocol/events.js';
import { analyzeModel } from '../../src/engine/graph/analyze.js';
import { loadDataset } from '../../src/engine/data/index.js';
import { createMethodContext } from '../../src/engine/session/context.js';
import { gopruneMethod } from '../../src/engine/methods/goprune.js';
import { ssrMethod } from '../../src/engine/methods/ssr.js';
import { buildMlp } from '../helpers/models.js';

const TRAIN: TrainConfig = { epochs: 3, batchSize: 32, learningRate: 0.05, momentum: 0.9, weightDecay: 0, optimizer: 'sgd', schedule: 'constant' };

function config(section: Partial<PruneConfig>): PruneConfig {
  return {
    configPath: '/tmp/goprune-lambda.prune.json',
    model: '/tmp/model.json',
    method: 'goprune',
    target: { channelRatio: 0.1 },
    output: '/tmp/out',
    scope: 'global',
    exclude: [],
    backend: 'cpu',
    seed: 1,
    latency: { runs: 1, batchSize: 1 },
    train: TRAIN,
    ...section,
  };
}

async function zeroGroupsAfter(method: 'goprune' | 'ssr', options: Record<string, unknown>): Promise<{ zeroGroups: number; units: number; signals: MethodSignalEvent[] }> {
  const model = buildMlp();
  const graph = analyzeModel(model);
  const data = await loadDataset({ format: 'synthetic', samples: 320, classes: 4, seed: 3 }, '/tmp/x.prune.json', { inputShape: [16], classes: 4 }, 1);
  const events: EngineEvent[] = [];
  const cfg = config(method === 'goprune' ? { method, goprune: options } : { method, ssr: options });
  const ctx = createMethodContext({ config: cfg, model, graph, data, emit: (e) => events.push(e) });
  const decision = await (method === 'goprune' ? gopruneMethod : ssrMethod).run(ctx);
  assert.equal(decision.kind, 'units');
  const signals = events.filter((e): e is MethodSignalEvent => e.type === 'signal' && e.name === 'zeroGroups');
  model.dispose();
  return { zeroGroups: signals[signals.length - 1].value, units: graph.units.length, signals };
}

test('GoPrune: zero groups of U grow with lambda, and per-layer stats stream every epoch', async () => {
  await tf.setBackend('cpu');
  const counts: number[] = [];
  for (const lambda of [0.03, 0.05, 0.07]) {
    const result = await zeroGroupsAfter('goprune', { lambda, beta: 0.05, rho1: 0.05, rho2: 0.05, p: 2 / 3 });
    counts.push(result.zeroGroups);
    assert.equal(result.signals.length, TRAIN.epochs, 'one zeroGroups signal per PAM epoch');
    const layers = (result.signals[0].detail as { layers: Record<string, { groups: number }> }).layers;
    assert.deepEqual(Object.keys(layers).sort(), ['fc1', 'fc2']);
    assert.equal(layers.fc1.groups + layers.fc2.groups, result.units);
  }
  assert.ok(counts[1] > counts[0] && counts[2] > counts[1], `zero groups by lambda: ${counts}`);
});

test('SSR: zero groups of F grow with lambda for both regularisers', async () => {
  await tf.setBackend('cpu');
  for (const regularizer of ['l21', 'l20']) {
    const counts: number[] = [];
    for (const lambda of regularizer === 'l21' ? [0.1, 0.2, 0.25] : [0.4, 0.6, 0.8]) {
      const result = await zeroGroupsAfter('ssr', { lambda, regularizer, rho: 1, updateEvery: 5 });
      counts.push(result.zeroGroups);
    }
    assert.ok(counts[1] > counts[0] && counts[2] > counts[1], `${regularizer}: zero groups by lambda: ${counts}`);
  }
});
