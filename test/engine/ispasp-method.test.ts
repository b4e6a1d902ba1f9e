import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import type { PruneConfig } from '../../src/engine/config/types.js';
import type { EngineEvent, MethodSignalEvent } from '../../src/protocol/events.js';
import { analyzeModel } from '../../src/engine/graph/analyze.js';
import { countCost } from '../../src/engine/metrics/index.js';
import { removeUnits } from '../../src/engine/surgery/index.js';
import { loadDataset } from '../../src/engine/data/index.js';
import { createMethodContext } from '../../src/engine/session/context.js';
import { buildDemoCnn } from '../../src/engine/demo/model.js';
import { ispaspMethod } from '../../src/engine/methods/ispasp.js';
import { checkMethodFits } from '../../src/engine/methods/index.js';
import { randomizeBatchNorms } from '../helpers/models.js';
import { initBackend } from '../../src/engine/backend/index.js';

before(async () => { await initBackend('auto'); });

const inputShape = [12, 12, 1];

function config(overrides: Partial<PruneConfig> = {}): PruneConfig {
  return {
    configPath: '/tmp/ispasp.prune.json', model: '/tmp/model.json', method: 'ispasp', target: { flopsReduction: 0.5 }, output: '/tmp/out',
    scope: 'global', exclude: [], backend: 'cpu', seed: 3, latency: { runs: 1, batchSize: 1 },
    data: { format: 'synthetic', samples: 160, classes: 4 },
    train: { epochs: 1, batchSize: 32, learningRate: 0.01, momentum: 0.9, weightDecay: 0, optimizer: 'sgd', schedule: 'constant', maxStepsPerEpoch: 2 },
    ispasp: { calibrationSamples: 96, batchSize: 48, blockFinetuneEpochs: 0 },
    ...overrides,
  };
}

async function setup(cfg: PruneConfig) {
  const model = buildDemoCnn({ inputShape, classes: 4, seed: 2 });
  randomizeBatchNorms(model, 3);
  const graph = analyzeModel(model, { exclude: cfg.exclude });
  const data = await loadDataset(cfg.data!, '/tmp', { inputShape, classes: 4 }, cfg.seed);
  const events: EngineEvent[] = [];
  const ctx = createMethodContext({ config: cfg, model, graph, data, emit: (e) => events.push(e) });
  return { model, graph, data, events, ctx };
}

test('i-SpaSP meets the FLOPs target within 2% and the pruned model computes what the masked search saw', async () => {
  for (const target of [0.3, 0.6]) {
    const cfg = config({ target: { flopsReduction: target } });
    const { model, graph, data, events, ctx } = await setup(cfg);
    const dense = countCost(model).flops;
    const decision = await ispaspMethod.run(ctx);
    assert.equal(decision.kind, 'units');
    if (decision.kind !== 'units') return;
    const pruned = await removeUnits(ctx.model, graph, decision.remove);
    const achieved = 1 - countCost(pruned).flops / dense;
    assert.ok(Math.abs(achieved - target) <= 0.02, `target ${target}: achieved ${achieved.toFixed(4)}`);

    // The search masks removed channels at their consumers; physical removal must give the same outputs.
    const batch = await data.calibration(16);
    const masked = ctx.model.predict(batch.x) as tf.Tensor;
    const small = pruned.predict(batch.x) as tf.Tensor;
    const gap = tf.max(tf.abs(tf.sub(masked, small))).dataSync()[0];
    assert.ok(gap < 1e-4, `masked and pruned outputs differ by ${gap}`);

    const residuals = events.filter((e): e is MethodSignalEvent => e.type === 'signal' && e.name === 'residual');
    assert.ok(residuals.length >= 4, 'one residual per iteration is streamed');
    assert.deepEqual(residuals.map((e) => e.step), residuals.map((_, i) => i), 'steps count the iterations across blocks');
    const blocks = new Set(residuals.map((e) => (e.detail as { layer: string }).layer));
    assert.deepEqual([...blocks], ['conv1', 'conv2', 'conv3', 'fc1']);
    for (const layer of blocks) {
      const series = residuals.filter((e) => (e.detail as { layer: string }).layer === layer).map((e) => e.value);
      assert.ok(Math.abs(series[0] - 1) < 1e-4, `${layer} starts from the empty support`);
      assert.ok(series[series.length - 1] < series[0], `${layer}: the residual falls over the iterations (${series.map((v) => v.toFixed(3)).join(', ')})`);
    }
    tf.dispose([masked, small, batch.x, batch.y]);
    pruned.dispose();
    model.dispose();
  }
});

test('with per-block training the removed channels stay removed', async () => {
  const cfg = config({ ispasp: { calibrationSamples: 64, batchSize: 32, blockFinetuneEpochs: 1, iterations: 5 } });
  const { model, graph, ctx } = await setup(cfg);
  const decision = await ispaspMethod.run(ctx);
  assert.equal(decision.kind, 'units');
  if (decision.kind !== 'units') return;
  // Every consumer slice of a removed unit is exactly zero after the last block's training.
  for (const id of decision.remove) {
    for (const slice of graph.units[id].slices.filter((s) => s.role === 'consumer')) {
      const kernel = model.getLayer(slice.layer).getWeights()[0];
      const part = tf.gather(kernel, slice.indices, slice.axis);
      assert.equal(tf.max(tf.abs(part)).dataSync()[0], 0, `${slice.layer} input ${slice.indices[0]} was trained back`);
      tf.dispose([part]);
    }
  }
  model.dispose();
});

test('i-SpaSP rejects a norm threshold target with a one-line fix, unless keepRatio fixes the widths', () => {
  assert.throws(() => checkMethodFits(ispaspMethod, config({ target: { normThreshold: 0.1 } })), /target: i-SpaSP prunes to a flopsReduction, paramsReduction, latencyReduction or channelRatio target, not normThreshold\. Use e\.g\. "target": \{"flopsReduction": 0\.5\}/);
  checkMethodFits(ispaspMethod, config({ target: { normThreshold: 0.1 }, ispasp: { keepRatio: 0.5 } }));
});
