import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { DoneEvent, EngineEvent } from '../../src/protocol/events.js';
import { loadConfig } from '../../src/engine/config/index.js';
import { executeSession } from '../../src/engine/session/session.js';
import { makeWorkspace, tinyTrainingConfig } from '../helpers/fixtures.js';

// The whole session: config file, analysis, method, removal, fine-tune, save.
test('an i-SpaSP session writes a physically smaller model at the FLOPs target', async () => {
  const ws = await makeWorkspace('prunelens-ispasp-');
  const config = loadConfig(ws.writeConfig({
    ...tinyTrainingConfig, method: 'ispasp', backend: 'auto', target: { flopsReduction: 0.4 },
    train: { epochs: 1, batchSize: 16, learningRate: 0.02, maxStepsPerEpoch: 3 },
    ispasp: { calibrationSamples: 48, iterations: 10, blockFinetuneEpochs: 0 },
  }));
  const events: EngineEvent[] = [];
  const result = await executeSession(config, (e) => events.push(e));
  assert.equal(result.type, 'done', result.type === 'error' ? result.message : '');
  const done = result as DoneEvent;
  assert.equal(done.physicallyRemoved, true);
  assert.ok(done.channelsRemoved > 0);
  const reduction = 1 - done.after.flops / done.before.flops;
  assert.ok(Math.abs(reduction - 0.4) <= 0.02, `FLOPs reduction ${reduction.toFixed(4)}`);
  assert.ok(events.some((e) => e.type === 'signal' && e.method === 'ispasp'), 'the method streams its signal');
  assert.ok(!events.some((e) => e.type === 'warning'), JSON.stringify(events.filter((e) => e.type === 'warning')));
});
