import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { analyzeModel } from '../../src/engine/graph/analyze.js';
import type { ChannelGraph } from '../../src/engine/graph/types.js';
import { buildDemoCnn } from '../../src/engine/demo/model.js';
import { CostTracker, unitNorms } from '../../src/engine/metrics/index.js';
import { maxReachable, selectUnits } from '../../src/engine/prune/select.js';
import { zeroUnits } from '../../src/engine/surgery/index.js';
import { buildResidualChain } from '../helpers/models.js';

before(async () => {
  await tf.setBackend('cpu');
});

function reductionOf(model: tf.LayersModel, graph: ChannelGraph, units: number[]) {
  const tracker = new CostTracker(model, graph);
  for (const u of units) tracker.remove(u);
  const c = tracker.cost();
  return { flops: 1 - c.flops / tracker.baseline.flops, params: 1 - c.params / tracker.baseline.params };
}

function removedPerGroup(graph: ChannelGraph, units: number[]): number[] {
  const counts = graph.groups.map(() => 0);
  for (const u of units) counts[graph.units[u].group]++;
  return counts;
}

describe('selectUnits on the demo CNN', () => {
  const model = buildDemoCnn();
  const graph = analyzeModel(model);
  const scores = unitNorms(model, graph, 'l1', true);

  for (const scope of ['global', 'layer'] as const) {
    for (const goal of [0.3, 0.5, 0.7]) {
      it(`reaches flopsReduction ${goal} within 2% (${scope} scope)`, () => {
        const selected = selectUnits(graph, model, scores, { flopsReduction: goal }, { scope });
        const got = reductionOf(model, graph, selected).flops;
        assert.ok(got >= goal - 1e-9 && got - goal <= 0.02, `reached ${got.toFixed(4)} for ${goal}`);
      });
    }
  }

  it('reaches a paramsReduction target', () => {
    const selected = selectUnits(graph, model, scores, { paramsReduction: 0.4 }, { scope: 'global' });
    const got = reductionOf(model, graph, selected).params;
    assert.ok(got >= 0.4 && got - 0.4 <= 0.02, `reached ${got}`);
  });

  it('removes the lowest scores first', () => {
    const selected = new Set(selectUnits(graph, model, scores, { flopsReduction: 0.2 }, { scope: 'global' }));
    const maxSelected = Math.max(...[...selected].map((u) => scores[u]));
    const lowerKept = graph.units.filter((u) => !selected.has(u.id) && scores[u.id] < maxSelected);
    // Only units from groups down to one unit, or passed over near the goal, may score lower than a selected one.
    assert.ok(lowerKept.length <= Math.ceil(0.05 * graph.units.length), `${lowerKept.length} lower-scored units kept`);
  });

  it('layer scope removes the same fraction from every group', () => {
    const selected = selectUnits(graph, model, scores, { channelRatio: 0.25 }, { scope: 'layer' });
    assert.deepEqual(removedPerGroup(graph, selected), graph.groups.map((g) => Math.round(g.channels * 0.25)));
    const byFlops = selectUnits(graph, model, scores, { flopsReduction: 0.5 }, { scope: 'layer' });
    const fractions = removedPerGroup(graph, byFlops).map((n, g) => n / graph.groups[g].channels);
    // Equal up to one channel per group (the smallest group has 16).
    assert.ok(Math.max(...fractions) - Math.min(...fractions) <= 2 / 16 + 1e-9, `fractions ${fractions}`);
  });

  it('channelRatio in global scope removes that fraction of all units, lowest scores first', () => {
    const selected = selectUnits(graph, model, scores, { channelRatio: 0.5 }, { scope: 'global' });
    assert.equal(selected.length, Math.round(0.5 * graph.units.length));
  });

  it('always keeps at least one unit per group, and maxReachable says how far a target can go', () => {
    const flat = new Float64Array(graph.units.length);
    const all = selectUnits(graph, model, flat, { flopsReduction: 0.9999 }, { scope: 'global' });
    assert.deepEqual(removedPerGroup(graph, all), graph.groups.map((g) => g.channels - 1));
    const reachable = maxReachable(graph, model, 'flopsReduction');
    assert.ok(reachable < 0.9999 && reachable > 0.9);
    assert.ok(Math.abs(reductionOf(model, graph, all).flops - reachable) < 1e-3);
    const layer = selectUnits(graph, model, flat, { channelRatio: 1 }, { scope: 'layer' });
    assert.deepEqual(removedPerGroup(graph, layer), graph.groups.map((g) => g.channels - 1));
    assert.equal(maxReachable(graph, model, 'channelRatio'), (graph.units.length - graph.groups.length) / graph.units.length);
  });
});

describe('selectUnits with a blocked or coupled model', () => {
  it('selects as much as possible when the target is out of reach', () => {
    const model = buildResidualChain();
    const graph = analyzeModel(model, { exclude: ['stem'] });
    const reachable = maxReachable(graph, model, 'flopsReduction');
    const selected = selectUnits(graph, model, unitNorms(model, graph, 'l1', true), { flopsReduction: 0.95 }, { scope: 'global' });
    assert.ok(reachable < 0.95);
    assert.deepEqual(removedPerGroup(graph, selected), graph.groups.map((g) => g.channels - 1));
  });

  it('normThreshold picks every unit at or below the L2 threshold, keeping one per group', () => {
    const model = buildResidualChain();
    const graph = analyzeModel(model);
    const [residual, private0] = graph.groups;
    zeroUnits(model, graph, [residual.units[1], ...private0.units]);
    const selected = selectUnits(graph, model, new Float64Array(graph.units.length), { normThreshold: 0 }, { scope: 'global' });
    assert.equal(selected.length, 1 + private0.channels - 1);
    assert.ok(selected.includes(residual.units[1]));
    const norms = unitNorms(model, graph, 'l2');
    const median = [...norms].sort((a, b) => a - b)[norms.length >> 1];
    const byMedian = selectUnits(graph, model, new Float64Array(graph.units.length), { normThreshold: median }, { scope: 'layer' });
    assert.ok(byMedian.every((u) => norms[u] <= median));
  });
});
