import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ChannelGraph } from '../../src/engine/graph/types.js';
import { auxiliaryScores, protectStrongest, readMethodOptions, GOPRUNE_DEFAULTS } from '../../src/engine/methods/goprune.js';

function twoGroups(): ChannelGraph {
  const units = Array.from({ length: 10 }, (_, id) => ({ id, group: id < 4 ? 0 : 1, index: id < 4 ? id : id - 4, slices: [] }));
  return {
    layers: [],
    groups: [
      { id: 0, members: ['a'], producers: ['a'], consumers: [], channels: 4, units: [0, 1, 2, 3], coupled: false },
      { id: 1, members: ['b'], producers: ['b'], consumers: [], channels: 6, units: [4, 5, 6, 7, 8, 9], coupled: false },
    ],
    units,
  };
}

test('zero groups of the auxiliary variable score below every non-zero group, ordered by the weights\u2019 norms', () => {
  const auxiliary = [0, 0.5, 0, 2];
  const live = [3, 0.6, 1, 2.1];
  const scores = auxiliaryScores(auxiliary, live, false);
  assert.ok(scores[2] < scores[0], 'the zero group with the smaller weights goes first');
  assert.ok(scores[0] < scores[1] && scores[1] < scores[3]);
  assert.deepEqual(Array.from(auxiliaryScores(auxiliary, live, true)), auxiliary, 'a norm-threshold target sees exact zeros');
});

test('the keep floor lifts the strongest units of every group above all others, preserving order', () => {
  const scores = Float64Array.from([0, 0, 0.1, 0.2, 5, 6, 7, 8, 9, 10]);
  protectStrongest({ graph: twoGroups() }, scores, 0.25);
  // Group a keeps ⌈0.25·4⌉ = 1 unit (id 3), group b keeps ⌈0.25·6⌉ = 2 units (ids 8, 9).
  const order = [...scores.keys()].sort((a, b) => scores[a] - scores[b]);
  assert.deepEqual(order.slice(-3), [3, 8, 9]);
  assert.deepEqual(order.slice(0, 7), [0, 1, 2, 4, 5, 6, 7]);
});

test('method options keep defaults for missing or mistyped keys', () => {
  const options = readMethodOptions({ p: 0.5, lambda: 'big', unknown: 1 }, GOPRUNE_DEFAULTS);
  assert.equal(options.p, 0.5);
  assert.equal(options.lambda, GOPRUNE_DEFAULTS.lambda);
  assert.equal((options as unknown as Record<string, unknown>).unknown, undefined);
});
