import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildDemoCnn } from '../../src/engine/demo/model.js';
import { analyzeModel } from '../../src/engine/graph/analyze.js';
import { unitNorms } from '../../src/engine/metrics/index.js';
import { selectUnits, maxReachable } from '../../src/engine/prune/select.js';

test('maxGroupReduction keeps a share of every group under global ranking', () => {
  const model = buildDemoCnn({ seed: 3 });
  const graph = analyzeModel(model);
  const scores = unitNorms(model, graph, 'l1', true);
  const removedPerGroup = (remove: number[]) => graph.groups.map((g) => remove.filter((u) => graph.units[u].group === g.id).length / g.channels);

  const uncapped = removedPerGroup(selectUnits(graph, model, scores, { channelRatio: 0.6 }, { scope: 'global' }));
  assert.ok(Math.max(...uncapped) > 0.9, 'global magnitude ranking empties some layer when uncapped');
  const capped = removedPerGroup(selectUnits(graph, model, scores, { channelRatio: 0.6 }, { scope: 'global', maxGroupReduction: 0.75 }));
  assert.ok(Math.max(...capped) <= 0.75, `no group loses more than 75% (${capped.map((r) => r.toFixed(2)).join(', ')})`);

  const flops = selectUnits(graph, model, scores, { flopsReduction: 0.5 }, { scope: 'global', maxGroupReduction: 0.75 });
  assert.ok(Math.max(...removedPerGroup(flops)) <= 0.75);
  assert.ok(maxReachable(graph, model, 'flopsReduction', 0.5) < maxReachable(graph, model, 'flopsReduction'), 'the cap lowers what is reachable');
  model.dispose();
});
