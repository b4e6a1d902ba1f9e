import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { EngineEvent, EpochEvent } from '../../src/protocol/events.js';
import { loadConfig } from '../../src/engine/config/index.js';
import { executeSession } from '../../src/engine/session/session.js';
import { makeWorkspace, tinyTrainingConfig } from '../helpers/fixtures.js';

/** finetune.augment reaches the fine-tuning batches of a real session, and nothing else. */
async function finetuneLosses(augment: unknown): Promise<{ losses: number[]; before?: number; after?: number }> {
  const ws = await makeWorkspace('prunelens-augment-');
  const config = loadConfig(ws.writeConfig({ ...tinyTrainingConfig, backend: 'cpu', finetune: { ...tinyTrainingConfig.finetune, ...(augment ? { augment } : {}) } }));
  const events: EngineEvent[] = [];
  const done = await executeSession(config, (e) => events.push(e));
  assert.equal(done.type, 'done', done.type === 'error' ? done.message : '');
  const losses = events.filter((e): e is EpochEvent => e.type === 'epoch' && e.phase === 'finetune').map((e) => e.loss);
  return { losses, before: done.type === 'done' ? done.metric?.before : undefined, after: done.type === 'done' ? done.metric?.after : undefined };
}

test('finetune.augment changes what fine-tuning trains on; the dense model is measured on the same data', async () => {
  const plain = await finetuneLosses(undefined);
  const again = await finetuneLosses(undefined);
  const augmented = await finetuneLosses({ crop: { padding: 2 }, flip: true });
  assert.deepEqual(again.losses, plain.losses, 'without augmentation the session repeats exactly');
  assert.equal(augmented.losses.length, plain.losses.length);
  assert.notDeepEqual(augmented.losses, plain.losses, 'augmented batches train differently');
  assert.equal(augmented.before, plain.before, 'evaluation data is never augmented');
});
