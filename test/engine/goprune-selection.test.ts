import { test } from 'node:test';
import assert from 'node:assert/strict';
import { auxiliaryScores } from '../../src/engine/methods/shared/auxiliary.js';
import { gopruneMethod } from '../../src/engine/methods/goprune.js';
import { UserError } from '../../src/engine/errors.js';

test('zero groups of the auxiliary variable score below every non-zero group, ordered by the weights\u2019 norms', () => {
  const auxiliary = [0, 0.5, 0, 2];
  const live = [3, 0.6, 1, 2.1];
  const scores = auxiliaryScores(auxiliary, live, false);
  assert.ok(scores[2] < scores[0], 'the zero group with the smaller weights goes first');
  assert.ok(scores[0] < scores[1] && scores[1] < scores[3]);
  assert.deepEqual(Array.from(auxiliaryScores(auxiliary, live, true)), auxiliary, 'a norm-threshold target sees exact zeros');
});

test('method options take the schema defaults for missing keys and refuse mistyped or unknown ones', () => {
  const options = gopruneMethod.options({ configPath: 'run.prune.json', goprune: { p: 0.5 } });
  assert.equal(options.p, 0.5);
  assert.equal(options.lambda, gopruneMethod.defaults.lambda);
  assert.throws(() => gopruneMethod.options({ configPath: 'run.prune.json', goprune: { lambda: 'big' } }), (err: unknown) => err instanceof UserError && err.field === 'goprune.lambda');
  assert.throws(() => gopruneMethod.options({ configPath: 'run.prune.json', goprune: { unknown: 1 } }), /unknown field "goprune.unknown"/);
});
