import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { analyzeModel } from '../../src/engine/graph/analyze.js';
import type { ChannelGraph, ChannelGroup } from '../../src/engine/graph/types.js';
import { CostTracker, unitNorms } from '../../src/engine/metrics/index.js';
import { roundKeptChannels } from '../../src/engine/prune/round.js';
import { removeUnits } from '../../src/engine/surgery/index.js';
import { loadConfig } from '../../src/engine/config/index.js';
import { executeSession } from '../../src/engine/session/session.js';
import { loadModel } from '../../src/engine/io/index.js';
import type { EngineEvent } from '../../src/protocol/events.js';
import { buildResidualChain } from '../helpers/models.js';
import { makeWorkspace, tinyTrainingConfig } from '../helpers/fixtures.js';

before(async () => {
  await tf.setBackend('cpu');
});

/** A residual chain whose coupled group (stem + every conv_b) has 24 channels and whose private conv_a groups have 20. */
function residualModel() {
  const model = buildResidualChain({ width: 24, inner: [20, 20, 20] });
  const graph = analyzeModel(model);
  const residual = graph.groups.find((g) => g.producers.includes('stem'))!;
  const inner = graph.groups.filter((g) => g !== residual);
  return { model, graph, residual, inner, norms: unitNorms(model, graph, 'l2') };
}

/** The `count` units of a group with the lowest norms: what a magnitude method removes. */
function weakest(group: ChannelGroup, norms: ArrayLike<number>, count: number): number[] {
  return [...group.units].sort((a, b) => norms[a] - norms[b]).slice(0, count);
}

function keptIn(graph: ChannelGraph, group: ChannelGroup, removed: readonly number[]): number {
  return group.channels - removed.filter((u) => graph.units[u].group === group.id).length;
}

test('kept counts round up to multiples, the coupled residual group too, and the units given back are the largest-norm removed ones', () => {
  const { model, graph, residual, inner, norms } = residualModel();
  assert.equal(residual.coupled, true);
  const residualRemoved = weakest(residual, norms, 10); // keeps 14 → 16: two go back
  const innerRemoved = weakest(inner[0], norms, 15); // keeps 5 → 8: three go back
  const otherRemoved = weakest(inner[1], norms, 4); // keeps 16: already a multiple
  const remove = [...residualRemoved, ...innerRemoved, ...otherRemoved];
  const rounded = roundKeptChannels(graph, norms, remove, 8);

  assert.equal(keptIn(graph, residual, rounded), 16);
  assert.equal(keptIn(graph, inner[0], rounded), 8);
  assert.equal(keptIn(graph, inner[1], rounded), 16);
  assert.equal(keptIn(graph, inner[2], rounded), 20, 'a group that keeps all its channels is untouched');
  assert.deepEqual(rounded, [...rounded].sort((a, b) => a - b));
  for (const [removed, back] of [[residualRemoved, 2], [innerRemoved, 3]] as const) {
    const givenBack = removed.filter((u) => !rounded.includes(u));
    const stillRemoved = removed.filter((u) => rounded.includes(u));
    assert.equal(givenBack.length, back);
    assert.ok(Math.min(...givenBack.map((u) => norms[u])) >= Math.max(...stillRemoved.map((u) => norms[u])), 'the strongest removed channels go back first');
  }
  assert.ok(otherRemoved.every((u) => rounded.includes(u)));
  model.dispose();
});

test('with a reduction to keep, groups round down, lowest-scored extra channels first, until the reduction is back', () => {
  const { model, graph, residual, inner, norms } = residualModel();
  const tracker = new CostTracker(model, graph);
  const flops = (units: readonly number[]) => tracker.reductionWithout(units).flops;
  // Kept 14 of 24, 5 and 13 of 20: rounding up alone (to 16, 8, 16) gives back FLOPs the method removed.
  const remove = [...weakest(residual, norms, 10), ...weakest(inner[0], norms, 15), ...weakest(inner[1], norms, 7)];
  const up = roundKeptChannels(graph, norms, remove, 8);
  assert.ok(flops(up) < flops(remove));
  const kept = roundKeptChannels(graph, norms, remove, 8, { reduction: flops });
  assert.ok(flops(kept) >= flops(remove) - 1e-12, `${flops(kept)} vs ${flops(remove)}`);
  for (const group of [residual, ...inner]) {
    const k = keptIn(graph, group, kept);
    assert.ok(k % 8 === 0 || k === group.channels, `${group.producers.join('+')} keeps ${k}`);
    assert.ok(k >= 1);
  }
  // Every unit the method removed from a group that rounded down stays removed; the group's channels that go on top are its weakest kept ones.
  for (const group of [residual, ...inner]) {
    const before = remove.filter((u) => graph.units[u].group === group.id);
    const after = kept.filter((u) => graph.units[u].group === group.id);
    if (after.length > before.length) {
      assert.ok(before.every((u) => after.includes(u)));
      const added = after.filter((u) => !before.includes(u));
      const stays = group.units.filter((u) => !after.includes(u));
      assert.ok(Math.max(...added.map((u) => norms[u])) <= Math.min(...stays.map((u) => norms[u])));
    }
  }
  model.dispose();
});

test('roundTo 1 returns the removal unchanged; a group never keeps more than it has', () => {
  const { model, graph, inner, norms } = residualModel();
  const remove = [...weakest(inner[0], norms, 3), ...weakest(inner[1], norms, 7)].sort((a, b) => a - b);
  assert.deepEqual(roundKeptChannels(graph, norms, remove, 1), remove);
  // 17 and 13 kept of 20: the next multiples of 8 are 24 and 16 — the first group keeps all 20.
  const rounded = roundKeptChannels(graph, norms, remove, 8);
  assert.equal(keptIn(graph, inner[0], rounded), 20);
  assert.equal(keptIn(graph, inner[1], rounded), 16);
  assert.throws(() => roundKeptChannels(graph, norms, remove, 0), /roundTo/);
  model.dispose();
});

test('a group never loses all its channels: an emptied group keeps one multiple', async () => {
  const { model, graph, inner, norms } = residualModel();
  const rounded = roundKeptChannels(graph, norms, [...inner[0].units], 8);
  assert.equal(keptIn(graph, inner[0], rounded), 8);
  assert.deepEqual(inner[0].units.filter((u) => !rounded.includes(u)), weakest(inner[0], norms, 20).slice(12).sort((a, b) => a - b), 'the eight strongest stay');
  // A multiple larger than the group: it keeps every channel rather than none.
  assert.equal(keptIn(graph, inner[0], roundKeptChannels(graph, norms, [...inner[0].units], 32)), 20);
  const pruned = await removeUnits(model, graph, rounded);
  assert.equal((pruned.getLayer('b0_conva').getConfig() as { filters: number }).filters, 8);
  pruned.dispose();
  model.dispose();
});

test('a session with "roundTo": 8 writes a model whose every conv and dense width is a multiple of 8 or unchanged', async () => {
  const ws = await makeWorkspace('prunelens-round-to-');
  const config = loadConfig(ws.writeConfig({ ...tinyTrainingConfig, roundTo: 8 }));
  assert.equal(config.roundTo, 8);
  const events: EngineEvent[] = [];
  const result = await executeSession(config, (e) => events.push(e));
  assert.equal(result.type, 'done', result.type === 'error' ? result.message : '');
  if (result.type !== 'done') return;

  const dense = await loadModel(ws.modelPath);
  const pruned = await loadModel(result.output!);
  const widths = (m: tf.LayersModel) => new Map(m.layers.flatMap((l) => {
    const c = l.getConfig() as { filters?: number; units?: number };
    return c.filters !== undefined ? [[l.name, c.filters]] : c.units !== undefined && l.name !== 'out' ? [[l.name, c.units]] : [];
  }));
  const before = widths(dense.model);
  const after = widths(pruned.model);
  assert.deepEqual([...after.keys()], ['conv1', 'conv2', 'fc1']);
  for (const [name, width] of after) assert.ok(width % 8 === 0 || width === before.get(name), `${name}: ${before.get(name)} → ${width}`);
  assert.ok([...after].some(([name, width]) => width < before.get(name)!), 'something was still removed');

  const report = JSON.parse(readFileSync(join(ws.dir, 'pruned', 'pruning-report.json'), 'utf8')) as { notes: string[] };
  const note = report.notes.find((n) => n.startsWith('Kept channels rounded to multiples of 8'));
  assert.ok(note, report.notes.join('\n'));
  const [selected, afterRounding] = [...note.matchAll(/(\d+\.\d)%/g)].map((m) => Number(m[1]) / 100);
  // Rounding keeps the method's FLOPs reduction unless every pruned group is down to one multiple already.
  assert.ok(afterRounding >= selected - 0.001 || [...after].every(([name, width]) => width === 8 || width === before.get(name)), note);
  assert.ok(Math.abs(1 - result.after.flops / result.before.flops - afterRounding) < 0.001, 'the note gives the written model\'s reduction');
  assert.deepEqual(events.filter((e) => e.type === 'warning' && /^FLOPs reduced/.test(e.message)), []);
  dense.model.dispose();
  pruned.model.dispose();
});
