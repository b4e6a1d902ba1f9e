import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import type { PruneConfig } from '../../src/engine/config/types.js';
import type { EngineEvent, LayersEvent } from '../../src/protocol/events.js';
import { initBackend } from '../../src/engine/backend/index.js';
import { buildDemoCnn } from '../../src/engine/demo/model.js';
import { analyzeModel } from '../../src/engine/graph/analyze.js';
import { loadDataset } from '../../src/engine/data/index.js';
import { createMethodContext } from '../../src/engine/session/context.js';
import { removeUnits } from '../../src/engine/surgery/index.js';
import { countCost } from '../../src/engine/metrics/index.js';
import { getMethod } from '../../src/engine/methods/index.js';

/**
 * Both methods on the demo MNIST CNN: a short regularised phase on a few MNIST images, then
 * the decision is removed physically and must meet the FLOPs target within 2 points.
 */

const TARGET = 0.5;

function config(method: 'goprune' | 'ssr'): PruneConfig {
  return {
    configPath: '/tmp/demo.prune.json',
    model: '/tmp/model.json',
    method,
    target: { flopsReduction: TARGET },
    output: '/tmp/out',
    scope: 'global',
    exclude: [],
    backend: 'auto',
    seed: 1,
    latency: { runs: 1, batchSize: 1 },
    train: { epochs: 2, batchSize: 32, learningRate: 0.02, momentum: 0.9, weightDecay: 5e-4, optimizer: 'sgd', schedule: 'constant', maxStepsPerEpoch: 3 },
    // Strong settings so that some groups reach zero within six steps.
    goprune: { lambda: 0.45, beta: 0.5, rho1: 0.01, rho2: 0.01 },
    ssr: { lambda: 3, rho: 4, rhoMax: 4, updateEvery: 1 },
  };
}

for (const method of ['goprune', 'ssr'] as const) {
  test(`${method} meets a 50% FLOPs target on the demo CNN within 2%`, async () => {
    await initBackend('auto');
    const model = buildDemoCnn({ seed: 1 });
    const graph = analyzeModel(model);
    const data = await loadDataset({ format: 'builtin', name: 'mnist', trainLimit: 256, testLimit: 64 }, '/tmp/demo.prune.json', { inputShape: [28, 28, 1], classes: 10 }, 1);
    const events: EngineEvent[] = [];
    const ctx = createMethodContext({ config: config(method), model, graph, data, emit: (e) => events.push(e) });
    const decision = await getMethod(method).run(ctx);
    assert.equal(decision.kind, 'units');
    if (decision.kind !== 'units') return;

    const pruned = await removeUnits(model, graph, decision.remove);
    const reduction = 1 - countCost(pruned).flops / countCost(model).flops;
    assert.ok(Math.abs(reduction - TARGET) <= 0.02, `FLOPs reduction ${reduction}`);
    const logits = pruned.predict(tf.zeros([2, 28, 28, 1])) as tf.Tensor;
    assert.deepEqual(logits.shape, [2, 10]);
    assert.ok(logits.dataSync().every(Number.isFinite));
    logits.dispose();

    const layerEvents = events.filter((e): e is LayersEvent => e.type === 'layers' && e.phase === 'train');
    assert.ok(layerEvents.length >= 2, 'per-layer statistics stream every epoch');
    const signals = events.filter((e) => e.type === 'signal' && e.method === method);
    assert.ok(signals.some((e) => e.type === 'signal' && e.name === 'zeroGroups' && e.value > 0), 'some groups reached zero');
    assert.ok(decision.notes?.some((n) => n.startsWith(method)));
    pruned.dispose();
    model.dispose();
  });
}
