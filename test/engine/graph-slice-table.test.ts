import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { analyzeModel } from '../../src/engine/graph/analyze.js';
import { sliceTableOf, tableSlices } from '../../src/engine/graph/slice-table.js';
import type { ChannelGraph } from '../../src/engine/graph/types.js';
import { unitNorms, unitSums } from '../../src/engine/metrics/norms.js';
import { removeUnits } from '../../src/engine/surgery/index.js';
import { buildConcatDepthwise, buildConvFlattenDense, buildResidualChain, everyOtherUnit, randomizeBatchNorms } from '../helpers/models.js';

before(async () => {
  await tf.setBackend('cpu');
});

/** The same graph as plain objects, each unit's slices a field: a graph made by hand, without a table. */
function plainCopy(graph: ChannelGraph): ChannelGraph {
  const units = graph.units.map((u) => ({ id: u.id, group: u.group, index: u.index, slices: u.slices.map((s) => ({ ...s, indices: [...s.indices] })) }));
  return { layers: graph.layers, groups: graph.groups, units };
}

const MODELS = {
  concatDepthwise: () => buildConcatDepthwise({ multiplier: 2 }),
  convFlattenDense: () => buildConvFlattenDense(),
  residualChain: () => buildResidualChain(),
};

describe('the slice table: each unit\'s slices without an object per slice', () => {
  for (const [name, build] of Object.entries(MODELS)) {
    it(`${name}: the table lists every unit's slices, sorted by key and index, and the units read theirs from it`, () => {
      const model = build();
      const graph = analyzeModel(model);
      const table = graph.sliceTable;
      assert.ok(table, 'analyzeModel returns its table');
      for (const unit of graph.units) {
        assert.deepEqual(unit.slices, tableSlices(table, unit.id));
        const entries = [...table.entries.subarray(table.offsets[unit.id], table.offsets[unit.id + 1])];
        assert.ok(entries.every((e, i) => i === 0 || e > entries[i - 1]), 'strictly ascending: no entry twice');
        // JSON (the layer-facts pin hashes it) has the slices as a field.
        assert.deepEqual(JSON.parse(JSON.stringify(unit)), JSON.parse(JSON.stringify({ id: unit.id, group: unit.group, index: unit.index, slices: unit.slices })));
      }
      model.dispose();
    });

    it(`${name}: norms and surgery read the same from the table as from a hand-made graph's slices`, async () => {
      const model = build();
      randomizeBatchNorms(model);
      const graph = analyzeModel(model);
      const plain = plainCopy(graph);
      assert.equal(plain.sliceTable, undefined);
      assert.equal(sliceTableOf(plain), sliceTableOf(plain), 'a built table is kept per graph');
      for (const kind of ['l1', 'l2'] as const) {
        for (const normalize of [false, true]) assert.deepEqual(unitNorms(model, graph, kind, normalize), unitNorms(model, plain, kind, normalize), `${kind}${normalize ? ' normalized' : ''}`);
      }
      assert.deepEqual(unitSums(model, graph), unitSums(model, plain));
      const removed = everyOtherUnit(graph);
      const [a, b] = [await removeUnits(model, graph, removed), await removeUnits(model, plain, removed)];
      assert.deepEqual(a.layers.map((l) => l.getConfig()), b.layers.map((l) => l.getConfig()));
      assert.deepEqual(a.weights.map((w) => [w.shape, [...w.read().dataSync()]]), b.weights.map((w) => [w.shape, [...w.read().dataSync()]]));
      a.dispose();
      b.dispose();
      model.dispose();
    });
  }

  it('L1 norms alone (no squares) are the same numbers as those read with the squares', () => {
    const model = buildResidualChain();
    randomizeBatchNorms(model);
    const graph = analyzeModel(model);
    const l1 = unitNorms(model, graph, 'l1');
    assert.deepEqual(l1, unitSums(model, graph).l1);
    model.dispose();
  });
});
