import { before, describe, it, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import type { Target } from '../../src/engine/config/types.js';
import type { ChannelGraph } from '../../src/engine/graph/types.js';
import type { DoneEvent, EngineEvent } from '../../src/protocol/events.js';
import { analyzeModel } from '../../src/engine/graph/analyze.js';
import { CostTracker } from '../../src/engine/metrics/index.js';
import { nearestReachable, selectUnits } from '../../src/engine/prune/select.js';
import { saveModelAtomic } from '../../src/engine/io/index.js';
import { loadConfig } from '../../src/engine/config/index.js';
import { executeSession } from '../../src/engine/session/session.js';

/**
 * A regulariser zeroes a few costly channels: taking every zeroed channel in rank order
 * overshoots the target by several points. The selection must instead find a removal set
 * within 2 points, and the session warns only when none exists.
 */

before(async () => {
  await tf.setBackend('cpu');
});

/** conv 12 → conv 16 → max-pool → flatten → dense 24 → dense 4 on 10×10×1 inputs. */
function buildSequentialCnn(): tf.Sequential {
  const init = (k: number) => tf.initializers.glorotUniform({ seed: 30 + k });
  const model = tf.sequential({ name: 'sequential_cnn' });
  model.add(tf.layers.conv2d({ inputShape: [10, 10, 1], filters: 12, kernelSize: 3, activation: 'relu', name: 'conv1', kernelInitializer: init(1) }));
  model.add(tf.layers.conv2d({ filters: 16, kernelSize: 3, activation: 'relu', name: 'conv2', kernelInitializer: init(2) }));
  model.add(tf.layers.maxPooling2d({ poolSize: 2, name: 'pool' }));
  model.add(tf.layers.flatten({ name: 'flatten' }));
  model.add(tf.layers.dense({ units: 24, activation: 'relu', name: 'fc1', kernelInitializer: init(3) }));
  model.add(tf.layers.dense({ units: 4, activation: 'softmax', name: 'out', kernelInitializer: init(4) }));
  return model;
}

/** One conv group of 4 channels, each a quarter of the FLOPs: reductions step 0, 25, 50, 75%. */
function buildOneBigGroup(): tf.Sequential {
  const model = tf.sequential({ name: 'one_big_group' });
  model.add(tf.layers.conv2d({ inputShape: [8, 8, 1], filters: 4, kernelSize: 3, padding: 'same', useBias: false, name: 'conv', kernelInitializer: tf.initializers.glorotUniform({ seed: 5 }) }));
  model.add(tf.layers.flatten({ name: 'flatten' }));
  model.add(tf.layers.dense({ units: 2, useBias: false, activation: 'softmax', name: 'out', kernelInitializer: tf.initializers.glorotUniform({ seed: 6 }) }));
  return model;
}

function reductionOf(model: tf.LayersModel, graph: ChannelGraph, units: readonly number[], metric: 'flops' | 'params'): number {
  const tracker = new CostTracker(model, graph);
  for (const u of units) tracker.remove(u);
  return 1 - tracker.cost()[metric] / tracker.baseline[metric];
}

/** Units of the named producer layers. */
function unitsOf(graph: ChannelGraph, layers: string[]): number[] {
  return graph.groups.filter((g) => g.producers.some((p) => layers.includes(p))).flatMap((g) => g.units);
}

/** What taking units strictly in rank order reaches: the zeroed ones first, until the goal is met. */
function rankOrderReduction(model: tf.LayersModel, graph: ChannelGraph, scores: Float64Array, metric: 'flops' | 'params', goal: number): number {
  const tracker = new CostTracker(model, graph);
  const left = graph.groups.map((g) => g.channels);
  const ranked = graph.units.map((u) => u.id).sort((a, b) => scores[a] - scores[b] || a - b);
  for (const u of ranked) {
    if (1 - tracker.cost()[metric] / tracker.baseline[metric] >= goal) break;
    if (left[graph.units[u].group] <= 1) continue;
    left[graph.units[u].group]--;
    tracker.remove(u);
  }
  return 1 - tracker.cost()[metric] / tracker.baseline[metric];
}

/** Scores with the given units zeroed and every other unit ranked by id (1, 2, …). */
function zeroedScores(graph: ChannelGraph, zeroed: number[]): Float64Array {
  const scores = Float64Array.from(graph.units, (u) => u.id + 1);
  for (const u of zeroed) scores[u] = 0;
  return scores;
}

/** Every removed unit that was not zeroed scores below every kept unit that was not: lower ranks go first. */
function assertLowerRanksFirst(graph: ChannelGraph, scores: Float64Array, removed: number[]): void {
  const taken = new Set(removed);
  const removedNonZero = removed.filter((u) => scores[u] > 0).map((u) => scores[u]);
  const keptNonZero = graph.units.filter((u) => !taken.has(u.id) && scores[u.id] > 0).map((u) => scores[u.id]);
  if (removedNonZero.length > 0) assert.ok(Math.max(...removedNonZero) < Math.min(...keptNonZero), 'the non-zero units removed are the lowest-scored ones');
}

describe('the shared selection lands within 2 points when taking every zeroed unit overshoots', () => {
  const model = buildSequentialCnn();
  const graph = analyzeModel(model);

  for (const maxGroupReduction of [undefined, 0.9]) {
    it(`FLOPs −40% with the convolutions' channels zeroed (maxGroupReduction ${maxGroupReduction ?? 'none'})`, () => {
      const scores = zeroedScores(graph, unitsOf(graph, ['conv1', 'conv2']));
      const target: Target = { flopsReduction: 0.4 };
      assert.ok(rankOrderReduction(model, graph, scores, 'flops', 0.4) > 0.42, 'rank order alone overshoots by more than 2 points');
      const removed = selectUnits(graph, model, scores, target, { scope: 'global', maxGroupReduction });
      const reached = reductionOf(model, graph, removed, 'flops');
      assert.ok(reached >= 0.4 - 1e-9 && reached <= 0.42, `FLOPs reduction ${reached.toFixed(4)}`);
      assertLowerRanksFirst(graph, scores, removed);
      assert.ok(removed.filter((u) => scores[u] === 0).length >= 4, 'zeroed units still make up most of the removal');
    });
  }

  it('params −45% with the second convolution zeroed', () => {
    const scores = zeroedScores(graph, unitsOf(graph, ['conv2']));
    assert.ok(rankOrderReduction(model, graph, scores, 'params', 0.45) > 0.47, 'rank order alone overshoots by more than 2 points');
    const removed = selectUnits(graph, model, scores, { paramsReduction: 0.45 }, { scope: 'global' });
    const reached = reductionOf(model, graph, removed, 'params');
    assert.ok(reached >= 0.45 - 1e-9 && reached <= 0.47, `params reduction ${reached.toFixed(4)}`);
    assertLowerRanksFirst(graph, scores, removed);
  });

  it('a set that lands exists for every FLOPs target up to what is reachable, whatever the ranking', () => {
    for (const goal of [0.1, 0.25, 0.4, 0.55, 0.7]) {
      assert.ok(Math.abs(nearestReachable(graph, model, 'flopsReduction', goal) - goal) <= 0.02, `goal ${goal}`);
    }
  });
});

describe('when no removal set lands within 2 points', () => {
  it('the selection gives the nearest set, under the goal if that is nearer', () => {
    const model = buildOneBigGroup();
    const graph = analyzeModel(model);
    assert.equal(graph.groups.length, 1);
    const scores = zeroedScores(graph, graph.units.map((u) => u.id));
    const flopsOf = (goal: number) => reductionOf(model, graph, selectUnits(graph, model, scores, { flopsReduction: goal }, { scope: 'global' }), 'flops');
    assert.ok(Math.abs(flopsOf(0.3) - 0.25) < 1e-9, `30% gives ${flopsOf(0.3)}`);
    assert.ok(Math.abs(flopsOf(0.4) - 0.5) < 1e-9, `40% gives ${flopsOf(0.4)}`);
    assert.ok(Math.abs(nearestReachable(graph, model, 'flopsReduction', 0.3) - 0.25) < 1e-9);
    assert.ok(Math.abs(nearestReachable(graph, model, 'flopsReduction', 0.4) - 0.5) < 1e-9);
  });

  it('the session warns and says that no set lands, with the nearest', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'prunelens-landing-'));
    await saveModelAtomic(buildOneBigGroup(), join(dir, 'model'));
    const configPath = join(dir, 'big.prune.json');
    writeFileSync(configPath, JSON.stringify({ model: 'model/model.json', method: 'l1', target: { flopsReduction: 0.3 }, output: 'pruned', latency: { runs: 1, batchSize: 1 }, backend: 'cpu' }));
    const events: EngineEvent[] = [];
    const result = await executeSession(loadConfig(configPath), (e) => events.push(e));
    assert.equal(result.type, 'done', result.type === 'error' ? result.message : '');
    const done = result as DoneEvent;
    assert.ok(Math.abs(1 - done.after.flops / done.before.flops - 0.25) < 1e-9);
    const warnings = events.filter((e) => e.type === 'warning').map((e) => (e as { message: string }).message);
    assert.ok(
      warnings.some((m) => m.startsWith('FLOPs reduced by 25.0%, target 30.0%: no removal set of whole channels lands within 2 points; the nearest is 25.0%')),
      JSON.stringify(warnings),
    );
  });
});

for (const [method, settings] of [
  // Strong settings so that groups reach zero within six steps.
  ['goprune', { goprune: { lambda: 0.45, beta: 0.5, rho1: 0.01, rho2: 0.01 } }],
  ['ssr', { ssr: { lambda: 3, rho: 4, rhoMax: 4, updateEvery: 1 } }],
] as const) {
  test(`a ${method} session on the Sequential CNN lands within 2 points of −40% FLOPs without a target warning`, async () => {
    const dir = mkdtempSync(join(tmpdir(), `prunelens-${method}-landing-`));
    await saveModelAtomic(buildSequentialCnn(), join(dir, 'model'));
    const configPath = join(dir, `${method}.prune.json`);
    writeFileSync(configPath, JSON.stringify({
      model: 'model/model.json',
      method,
      target: { flopsReduction: 0.4 },
      output: 'pruned',
      data: { format: 'synthetic', samples: 64, classes: 4, validationSplit: 0.25 },
      train: { epochs: 2, batchSize: 16, learningRate: 0.02, maxStepsPerEpoch: 3 },
      latency: { runs: 1, batchSize: 1 },
      backend: 'cpu',
      ...settings,
    }));
    const events: EngineEvent[] = [];
    const result = await executeSession(loadConfig(configPath), (e) => events.push(e));
    assert.equal(result.type, 'done', result.type === 'error' ? result.message : '');
    const done = result as DoneEvent;
    const reduction = 1 - done.after.flops / done.before.flops;
    assert.ok(Math.abs(reduction - 0.4) <= 0.02, `FLOPs reduction ${reduction.toFixed(4)}`);
    const removed = events.find((e) => e.type === 'signal' && e.name === 'removedGroups');
    assert.ok(removed && removed.type === 'signal' && (removed.detail as { zeroGroups: number }).zeroGroups > 0, 'the regulariser zeroed some groups');
    const targetWarnings = events.filter((e) => e.type === 'warning' && e.message.includes('target'));
    assert.deepEqual(targetWarnings, []);
  });
}
