import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { EngineEvent } from '../../src/protocol/events.js';
import { startEngine } from '../../src/engine/process/client.js';
import { makeWorkspace, tinyTrainingConfig, ensureBuilt, leftovers } from '../helpers/fixtures.js';

const enginePath = resolve('dist/engine.js');
before(() => ensureBuilt());

test('the engine process runs a config and streams typed events ending in done', async () => {
  const ws = await makeWorkspace();
  const events: EngineEvent[] = [];
  const run = startEngine({ type: 'run', configPath: ws.writeConfig(tinyTrainingConfig) }, { enginePath, onEvent: (e) => events.push(e) });
  const result = await run.result;
  assert.equal(result.type, 'done', result.type === 'error' ? result.message : '');
  assert.equal(events[0].type === 'phase' || events[0].type === 'start', true);
  assert.ok(events.some((e) => e.type === 'layers'));
  assert.ok(existsSync(join(ws.dir, 'pruned', 'model.json')));
});

test('a killed engine becomes an error event and the parent keeps working', async () => {
  const ws = await makeWorkspace();
  const config = ws.writeConfig({ ...tinyTrainingConfig, finetune: { epochs: 5, batchSize: 8 } });
  const run = startEngine({ type: 'run', configPath: config }, {
    enginePath,
    onEvent: (e) => { if (e.type === 'step') run.kill(); },
  });
  const result = await run.result;
  assert.equal(result.type, 'error');
  assert.match(result.type === 'error' ? result.message : '', /engine was killed \(SIGKILL\)/);

  // The parent is unaffected: the next session runs to completion.
  const second = startEngine({ type: 'run', configPath: ws.writeConfig(tinyTrainingConfig, 'again.prune.json') }, { enginePath });
  const next = await second.result;
  assert.equal(next.type, 'done', next.type === 'error' ? next.message : '');
});

test('cancel stops the engine and leaves no output folder', async () => {
  const ws = await makeWorkspace();
  const config = ws.writeConfig({ ...tinyTrainingConfig, finetune: { epochs: 5, batchSize: 8 } });
  let sentCancel = false;
  const run = startEngine({ type: 'run', configPath: config }, {
    enginePath,
    onEvent: (e) => { if (e.type === 'step' && !sentCancel) { sentCancel = true; run.cancel(); } },
  });
  const result = await run.result;
  assert.equal(result.type, 'error');
  assert.equal(result.type === 'error' && result.cancelled, true);
  assert.equal(existsSync(join(ws.dir, 'pruned')), false);
  assert.deepEqual(leftovers(ws.dir, ['model', 'tiny.prune.json']), []);
});

test('an engine out of memory is reported as such', async () => {
  const ws = await makeWorkspace();
  // A heap too small for the engine's own code fails fast and every time; a limit near the
  // working set would leave V8 collecting garbage for minutes before giving up.
  const run = startEngine({ type: 'run', configPath: ws.writeConfig(tinyTrainingConfig) }, {
    enginePath,
    execArgv: ['--max-old-space-size=16'],
  });
  const result = await run.result;
  assert.equal(result.type, 'error');
  assert.match(result.type === 'error' ? result.message : '', /ran out of memory/);
});
