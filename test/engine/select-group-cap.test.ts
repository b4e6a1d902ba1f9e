import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildDemoCnn } from '../../src/engine/demo/model.js';
import { analyzeModel } from '../../src/engine/graph/analyze.js';
import { countCost, unitNorms } from '../../src/engine/metrics/index.js';
import { removeUnits } from '../../src/engine/surgery/index.js';
import { selectUnits } from '../../src/engine/prune/select.js';

test('maxGroupReduction keeps a share of every layer under global ranking while the target allows', async () => {
  const model = buildDemoCnn({ seed: 3 });
  const graph = analyzeModel(model);
  const scores = unitNorms(model, graph, 'l1', true);
  const removedPerGroup = (remove: number[]) => graph.groups.map((g) => remove.filter((u) => graph.units[u].group === g.id).length / g.channels);

  const uncapped = removedPerGroup(selectUnits(graph, model, scores, { channelRatio: 0.6 }, { scope: 'global' }));
  assert.ok(Math.max(...uncapped) > 0.9, 'global magnitude ranking nearly empties some layer without a floor');
  const capped = removedPerGroup(selectUnits(graph, model, scores, { channelRatio: 0.6 }, { scope: 'global', maxGroupReduction: 0.75 }));
  assert.ok(Math.max(...capped) <= 0.75, `no group loses more than 75% (${capped.map((r) => r.toFixed(2)).join(', ')})`);

  const flops = selectUnits(graph, model, scores, { flopsReduction: 0.5 }, { scope: 'global', maxGroupReduction: 0.75 });
  assert.ok(Math.max(...removedPerGroup(flops)) <= 0.75);
  const pruned = await removeUnits(model, graph, flops);
  assert.ok(Math.abs(1 - countCost(pruned).flops / countCost(model).flops - 0.5) <= 0.02, 'the FLOPs target is still met');
  pruned.dispose();
  model.dispose();
});

test('the floor yields when the target needs more: the target wins', () => {
  const model = buildDemoCnn({ seed: 3 });
  const graph = analyzeModel(model);
  const scores = unitNorms(model, graph, 'l1', true);
  const remove = selectUnits(graph, model, scores, { channelRatio: 0.8 }, { scope: 'global', maxGroupReduction: 0.5 });
  assert.equal(remove.length, Math.round(0.8 * graph.units.length));
  for (const g of graph.groups) assert.ok(remove.filter((u) => graph.units[u].group === g.id).length < g.channels, 'every group keeps a channel');
  model.dispose();
});
