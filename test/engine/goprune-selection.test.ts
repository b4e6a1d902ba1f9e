import { test } from 'node:test';
import assert from 'node:assert/strict';
import { auxiliaryScores, readMethodOptions, GOPRUNE_DEFAULTS } from '../../src/engine/methods/goprune.js';

test('zero groups of the auxiliary variable score below every non-zero group, ordered by the weights\u2019 norms', () => {
  const auxiliary = [0, 0.5, 0, 2];
  const live = [3, 0.6, 1, 2.1];
  const scores = auxiliaryScores(auxiliary, live, false);
  assert.ok(scores[2] < scores[0], 'the zero group with the smaller weights goes first');
  assert.ok(scores[0] < scores[1] && scores[1] < scores[3]);
  assert.deepEqual(Array.from(auxiliaryScores(auxiliary, live, true)), auxiliary, 'a norm-threshold target sees exact zeros');
});

test('method options keep defaults for missing or mistyped keys', () => {
  const options = readMethodOptions({ p: 0.5, lambda: 'big', unknown: 1 }, GOPRUNE_DEFAULTS);
  assert.equal(options.p, 0.5);
  assert.equal(options.lambda, GOPRUNE_DEFAULTS.lambda);
  assert.equal((options as unknown as Record<string, unknown>).unknown, undefined);
});
