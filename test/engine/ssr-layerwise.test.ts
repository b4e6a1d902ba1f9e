import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import type { PruneConfig } from '../../src/engine/config/types.js';
import type { EngineEvent, MethodSignalEvent } from '../../src/protocol/events.js';
import { analyzeModel } from '../../src/engine/graph/analyze.js';
import { loadDataset } from '../../src/engine/data/index.js';
import { createMethodContext } from '../../src/engine/session/context.js';
import { ssrMethod } from '../../src/engine/methods/ssr.js';
import { PRODUCING_ROLES, UnitWeightLayout } from '../../src/engine/methods/group-tensors.js';
import { buildMlp } from '../helpers/models.js';

test('layer-wise SSR regularises one layer per phase, keeps earlier zero groups masked and removes them first', async () => {
  await tf.setBackend('cpu');
  const model = buildMlp();
  const graph = analyzeModel(model);
  const data = await loadDataset({ format: 'synthetic', samples: 320, classes: 4, seed: 3 }, '/tmp/x.prune.json', { inputShape: [16], classes: 4 }, 1);
  const config: PruneConfig = {
    configPath: '/tmp/ssr.prune.json', model: '/tmp/model.json', method: 'ssr', target: { channelRatio: 0.2 }, output: '/tmp/out',
    scope: 'global', exclude: [], backend: 'cpu', seed: 1, latency: { runs: 1, batchSize: 1 },
    train: { epochs: 4, batchSize: 32, learningRate: 0.05, momentum: 0.9, weightDecay: 0, optimizer: 'sgd', schedule: 'constant' },
    ssr: { schedule: 'layer', regularizer: 'l20', lambda: 0.8, layerLambda: { fc2: 0.6 }, updateEvery: 4 },
  };
  const events: EngineEvent[] = [];
  const ctx = createMethodContext({ config, model, graph, data, emit: (e) => events.push(e) });
  const decision = await ssrMethod.run(ctx);
  assert.equal(decision.kind, 'units');
  if (decision.kind !== 'units') return;

  const signals = events.filter((e): e is MethodSignalEvent => e.type === 'signal' && e.name === 'zeroGroups');
  const phases = [...new Set(signals.map((s) => (s.detail as { phase: string }).phase))];
  assert.deepEqual(phases, ['fc1', 'fc2']);
  // Each phase's statistics cover only its own layer.
  for (const s of signals) assert.deepEqual(Object.keys((s.detail as { layers: object }).layers), [(s.detail as { phase: string }).phase]);

  const layout = UnitWeightLayout.build(model, graph, { roles: PRODUCING_ROLES });
  const norms = layout.norms();
  layout.dispose();
  const fc1Zero = graph.groups[0].units.filter((id) => norms[id] === 0);
  assert.ok(fc1Zero.length > 0, 'fc1 groups reached zero in the first phase');
  const lastFc1Signal = signals.filter((s) => (s.detail as { phase: string }).phase === 'fc1').pop()!;
  assert.equal(fc1Zero.length, lastFc1Signal.value, 'zeroed fc1 groups stayed exactly zero through the fc2 phase');
  const removed = new Set(decision.remove);
  const zeroUnits = graph.units.filter((u) => norms[u.id] === 0).map((u) => u.id);
  const removedFirst = zeroUnits.filter((id) => removed.has(id)).length;
  assert.equal(removedFirst, Math.min(zeroUnits.length, decision.remove.length), 'zero groups are removed before any non-zero one');
  model.dispose();
});
