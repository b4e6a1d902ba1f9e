import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { EngineEvent, EpochEvent } from '../../src/protocol/events.js';
import { loadConfig } from '../../src/engine/config/index.js';
import { executeSession } from '../../src/engine/session/session.js';
import { makeWorkspace, tinyTrainingConfig } from '../helpers/fixtures.js';

/** What a session does with its data: augmentation in fine-tuning only, and the data and objective it names. */

/** The fine-tuning epochs' losses and the metric, of a session with `augment` in `finetune`. */
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

test('once the data is loaded the session names it and the objective; without fine-tuning there is no "right after pruning"', async () => {
  const ws = await makeWorkspace('prunelens-data-event-');
  const config = loadConfig(ws.writeConfig({ ...tinyTrainingConfig, backend: 'cpu', finetune: { ...tinyTrainingConfig.finetune, epochs: 0 } }));
  const events: EngineEvent[] = [];
  const done = await executeSession(config, (e) => events.push(e));
  assert.equal(done.type, 'done', done.type === 'error' ? done.message : '');
  const dataEvent = events.find((e) => e.type === 'data');
  assert.ok(dataEvent && dataEvent.type === 'data');
  assert.match(dataEvent.data.description ?? '', /synthetic/i);
  assert.match(dataEvent.objective ?? '', /sparse-categorical-crossentropy/);
  assert.ok(events.indexOf(dataEvent) < events.findIndex((e) => e.type === 'phase' && e.phase === 'evaluate'), 'named before the dense model is evaluated');
  assert.ok(done.type === 'done' && done.metric && done.metric.afterPruning === undefined, JSON.stringify(done.type === 'done' && done.metric));
});
