import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { analyzeModel } from '../../src/engine/graph/analyze.js';
import type { ChannelGraph } from '../../src/engine/graph/types.js';
import { allZeroUnits, countCost, layerStats, unitNorms } from '../../src/engine/metrics/index.js';
import { selectUnits } from '../../src/engine/prune/select.js';
import { removeUnits, zeroUnits } from '../../src/engine/surgery/index.js';
import { buildResidualChain, maskThenRemove } from '../helpers/models.js';

before(async () => {
  await tf.setBackend('cpu');
});

/** Zeroes output channel `c` of one producer (kernel column, bias) and of the BN right after it, nowhere else. */
function zeroInOneProducer(model: tf.LayersModel, conv: string, bn: string, c: number): void {
  const zeroAt = (layer: string, weight: string) => {
    const v = model.getLayer(layer).weights.find((w) => w.originalName.endsWith(`/${weight}`))!;
    const value = v.read();
    const size = value.shape[value.shape.length - 1]!;
    const mask = tf.tensor(Array.from({ length: size }, (_, i) => (i === c ? 0 : 1)));
    const masked = tf.mul(value, mask);
    v.write(masked);
    tf.dispose([mask, masked]);
  };
  zeroAt(conv, 'kernel');
  zeroAt(conv, 'bias');
  zeroAt(bn, 'gamma');
  zeroAt(bn, 'beta');
}

function residualGroup(graph: ChannelGraph) {
  return graph.groups.find((g) => g.producers.includes('stem'))!;
}

describe('chain of residual Adds', () => {
  it('ties the stem, every conv_b and their BNs into one coupled group; conv_a groups stay private', () => {
    const graph = analyzeModel(buildResidualChain());
    const residual = residualGroup(graph);
    assert.deepEqual(residual.producers, ['stem', 'b0_convb', 'b1_convb', 'b2_convb']);
    assert.equal(residual.coupled, true);
    assert.equal(residual.channels, 6);
    for (const m of ['stem_bn', 'b0_bn', 'b1_bn', 'b2_bn', 'b0_conva', 'b1_conva', 'b2_conva', 'logits']) assert.ok(residual.members.includes(m), m);
    const unit = graph.units[residual.units[4]];
    const consumerInputs = unit.slices.filter((s) => s.role === 'consumer').map((s) => `${s.layer}:${s.axis}:${s.indices}`);
    assert.deepEqual(consumerInputs, ['b0_conva:2:4', 'b1_conva:2:4', 'b2_conva:2:4', 'logits:0:4']);

    const privates = graph.groups.filter((g) => g !== residual);
    assert.deepEqual(privates.map((g) => g.members), [['b0_conva', 'b0_convb'], ['b1_conva', 'b1_convb'], ['b2_conva', 'b2_convb']]);
    assert.ok(privates.every((g) => !g.coupled));

    const status = new Map(graph.layers.map((l) => [l.name, l]));
    for (const name of ['stem', 'b1_convb', 'b1_bn', 'b1_add', 'b2_relu', 'gap']) {
      assert.equal(status.get(name)?.status, 'coupled', name);
      assert.equal(status.get(name)?.group, residual.id, name);
    }
    assert.equal(status.get('b1_conva')?.status, 'prunable');
  });

  it('a channel zero in only some producers is not a zero group and is kept by normThreshold 0', () => {
    const model = buildResidualChain();
    const graph = analyzeModel(model);
    const residual = residualGroup(graph);
    const c = 2;
    const unit = residual.units[c];
    zeroInOneProducer(model, 'stem', 'stem_bn', c);
    zeroInOneProducer(model, 'b1_convb', 'b1_bn', c);

    assert.ok(unitNorms(model, graph, 'l2')[unit] > 0);
    assert.ok(!allZeroUnits(model, graph).includes(unit));
    assert.ok(!selectUnits(graph, model, new Float64Array(graph.units.length), { normThreshold: 0 }, { scope: 'global' }).includes(unit));
    const stats = layerStats(model, graph);
    assert.equal(stats.layers.find((l) => l.name === 'stem')?.zeroGroups, 0);
    assert.equal(stats.totals.zeroGroups, 0);

    // Once every member is zero the unit is a zero group and normThreshold 0 picks it.
    zeroUnits(model, graph, [unit]);
    assert.deepEqual(allZeroUnits(model, graph), [unit]);
    assert.deepEqual(selectUnits(graph, model, new Float64Array(graph.units.length), { normThreshold: 0 }, { scope: 'global' }), [unit]);
    assert.equal(layerStats(model, graph).layers.find((l) => l.name === 'b2_convb')?.zeroGroups, 1);
  });

  it('removing a channel zero in only some producers does change the outputs', async () => {
    const model = buildResidualChain();
    const graph = analyzeModel(model);
    const unit = residualGroup(graph).units[1];
    zeroInOneProducer(model, 'stem', 'stem_bn', 1);
    const pruned = await removeUnits(model, graph, [unit]);
    const x = tf.randomNormal([2, 8, 8, 3], 0, 1, 'float32', 5);
    const diff = tf.tidy(() => tf.max(tf.abs(tf.sub(model.predict(x) as tf.Tensor, pruned.predict(x) as tf.Tensor))).dataSync()[0]);
    assert.ok(diff > 1e-3, `other producers still feed the channel, so removing it must matter (diff ${diff})`);
    x.dispose();
    pruned.dispose();
  });

  it('removing all-zero residual and private units leaves outputs unchanged', async () => {
    const model = buildResidualChain();
    const graph = analyzeModel(model);
    const residual = residualGroup(graph);
    const privates = graph.groups.filter((g) => g !== residual);
    const remove = [residual.units[0], residual.units[3], privates[0].units[2], privates[2].units[0], privates[2].units[1]];
    const { pruned, masking, removal } = await maskThenRemove(model, graph, remove);
    assert.ok(masking > 1e-3, `masking should move the outputs (moved ${masking})`);
    assert.ok(removal <= 1e-5, `pruned outputs differ by ${removal}`);
    const residualWidth = pruned.getLayer('b1_add').outputShape as number[];
    assert.equal(residualWidth[3], 4);
    pruned.dispose();
  });

  it('pruned params and FLOPs equal the chain built narrower', async () => {
    const model = buildResidualChain();
    const graph = analyzeModel(model);
    const residual = residualGroup(graph);
    const privates = graph.groups.filter((g) => g !== residual);
    const remove = [residual.units[5], privates[0].units[1], privates[2].units[0], privates[2].units[3]];
    const pruned = await removeUnits(model, graph, remove);
    const narrow = buildResidualChain({ width: 5, inner: [3, 4, 2] });
    assert.equal(pruned.countParams(), narrow.countParams());
    assert.equal(countCost(pruned).flops, countCost(narrow).flops);
    pruned.dispose();
    narrow.dispose();
  });

  it('never removes the last channel of a group', async () => {
    const model = buildResidualChain();
    const graph = analyzeModel(model);
    const residual = residualGroup(graph);
    await assert.rejects(removeUnits(model, graph, residual.units), /all 6 channels of group/);
  });
});
