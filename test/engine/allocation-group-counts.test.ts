import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { analyzeModel } from '../../src/engine/graph/analyze.js';
import type { ChannelGraph } from '../../src/engine/graph/types.js';
import { countCost } from '../../src/engine/metrics/index.js';
import { analyzeSensitivity } from '../../src/engine/sensitivity/index.js';
import { removeUnits } from '../../src/engine/surgery/index.js';
import type { PruneConfig, Target } from '../../src/engine/config/types.js';
import { checkMethodFits, getMethod } from '../../src/engine/methods/index.js';
import { selectUnits } from '../../src/engine/prune/select.js';
import type { Allocation } from '../../src/engine/prune/allocate.js';
import { createMethodContext } from '../../src/engine/session/context.js';
import type { Dataset } from '../../src/engine/train/types.js';
import { buildFragileAndRobust, buildFragileAndRobustBlocks, labelledBy } from '../helpers/fragile-robust.js';

/**
 * `"allocation"` for the methods that choose channels themselves within the counts it sets:
 * i-SpaSP (its CoSaMP-like search within each block) and OCSPruner (its per-epoch sub-network).
 */

before(async () => {
  await tf.setBackend('cpu');
});

function config(method: 'ispasp' | 'ocspruner', allocation: 'uniform' | 'sensitivity', target: Target): PruneConfig {
  return {
    configPath: `/virtual/${method}.prune.json`, model: '/virtual/model.json', method, target, output: '/virtual/out',
    scope: allocation === 'uniform' ? 'layer' : 'global', allocation, exclude: [], backend: 'cpu', seed: 1, latency: { runs: 1, batchSize: 1 }, export: [],
    data: { format: 'synthetic', samples: 256, classes: 4 },
    train: { epochs: 3, batchSize: 64, learningRate: 0.01, momentum: 0.9, weightDecay: 0, optimizer: 'sgd', schedule: 'constant', maxStepsPerEpoch: 2 },
    ispasp: { calibrationSamples: 64, batchSize: 64, blockFinetuneEpochs: 0 },
    ocspruner: { monitorStartEpoch: 0, slStartEpoch: 0, slEndEpoch: 1 },
  };
}

/** Channels removed per group, by the group's first producer. */
function removedPerGroup(graph: ChannelGraph, remove: readonly number[]): Record<string, number> {
  return Object.fromEntries(graph.groups.map((g) => [g.producers[0], remove.filter((u) => graph.units[u].group === g.id).length]));
}

/** What `"uniform"` means for the whole graph: the same fraction of every group (the l1 selection at scope layer). */
function uniformCounts(graph: ChannelGraph, model: tf.LayersModel, target: Target): Record<string, number> {
  return removedPerGroup(graph, selectUnits(graph, model, new Float64Array(graph.units.length), target, { scope: 'layer' }));
}

/** Runs the method through the context the session builds; the pruned model, its FLOPs reduction and the channels each group lost. */
async function prune(model: tf.LayersModel, data: Dataset, cfg: PruneConfig) {
  const graph = analyzeModel(model);
  const dense = countCost(model).flops;
  const report = cfg.allocation === 'sensitivity' ? await analyzeSensitivity(model, data) : undefined;
  let allocation: Allocation | undefined;
  const context = createMethodContext({ config: cfg, model, graph, data, sensitivity: report, onAllocation: (a) => { allocation = a; } });
  const decision = await getMethod(cfg.method).run(context);
  let pruned: tf.LayersModel;
  let removed: Record<string, number>;
  if (decision.kind === 'units') {
    pruned = await removeUnits(context.model, graph, decision.remove);
    removed = removedPerGroup(graph, decision.remove);
  } else {
    // OCSPruner returns the pruned model: each group's loss is its producer's width lost.
    pruned = decision.model;
    removed = Object.fromEntries(graph.groups.map((g) => [g.producers[0], g.channels - (pruned.getLayer(g.producers[0]).getConfig() as { filters: number }).filters]));
  }
  const flopsReduction = 1 - countCost(pruned).flops / dense;
  pruned.dispose();
  return { graph, removed, flopsReduction, allocation };
}

describe('i-SpaSP at the counts "allocation" sets', () => {
  it('"uniform": every block loses the uniform selection\'s count', async () => {
    for (const target of [{ flopsReduction: 0.25 }, { channelRatio: 0.5 }]) {
      const model = buildFragileAndRobustBlocks();
      const graph = analyzeModel(model);
      const expected = uniformCounts(graph, model, target);
      const { removed } = await prune(model, labelledBy(model), config('ispasp', 'uniform', target));
      assert.deepEqual(removed, expected, JSON.stringify(target));
      assert.equal(removed.fragile, removed.robust, 'both blocks are 8 wide: the same count');
      assert.ok(removed.fragile > 0);
    }
  });

  it('"sensitivity": the fragile block keeps more channels and the FLOPs target is met within 2 points', async () => {
    const model = buildFragileAndRobustBlocks();
    const { removed, flopsReduction, allocation } = await prune(model, labelledBy(model), config('ispasp', 'sensitivity', { flopsReduction: 0.25 }));
    assert.ok(removed.fragile < removed.robust, `removed ${JSON.stringify(removed)}`);
    assert.ok(Math.abs(flopsReduction - 0.25) <= 0.02, `FLOPs reduction ${flopsReduction}`);
    assert.deepEqual(Object.fromEntries(allocation!.groups.map((g) => [g.producers[0], g.removed])), removed, 'the reported allocation is what was pruned');
  });

  it('"sensitivity" with a keepRatio that fixes every width is one line', () => {
    const cfg = { ...config('ispasp', 'sensitivity', { flopsReduction: 0.25 }), ispasp: { keepRatio: 0.5 } };
    assert.throws(() => checkMethodFits(getMethod('ispasp'), cfg), (err: Error) => /ispasp\.prune\.json.*"allocation": "sensitivity".*keepRatio/.test(err.message) && !err.message.includes('\n'));
  });
});

describe('OCSPruner at the counts "allocation" sets', () => {
  it('"uniform": every group loses the uniform selection\'s count', async () => {
    const target = { flopsReduction: 0.3 };
    const model = buildFragileAndRobust();
    const expected = uniformCounts(analyzeModel(model), model, target);
    const { removed } = await prune(model, labelledBy(model), config('ocspruner', 'uniform', target));
    assert.deepEqual(removed, expected);
    assert.ok(Object.values(removed).every((n) => n > 0));
  });

  it('"sensitivity": the fragile group keeps more channels and the FLOPs target is met within 2 points', async () => {
    const model = buildFragileAndRobust();
    // A goal whole channels can land within 2 points (a coupled stem+tail channel is 12.5% of the FLOPs, an inner one 8%).
    const { removed, flopsReduction, allocation } = await prune(model, labelledBy(model), config('ocspruner', 'sensitivity', { flopsReduction: 0.4 }));
    assert.ok(removed.stem < removed.inner, `removed ${JSON.stringify(removed)}`);
    assert.ok(Math.abs(flopsReduction - 0.4) <= 0.02, `FLOPs reduction ${flopsReduction}`);
    assert.deepEqual(Object.fromEntries(allocation!.groups.map((g) => [g.producers[0], g.removed])), removed, 'the reported allocation is what was pruned');
  });
});
