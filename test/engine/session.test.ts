import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import type { EngineEvent } from '../../src/protocol/events.js';
import { loadConfig } from '../../src/engine/config/index.js';
import { executeSession } from '../../src/engine/session/session.js';
import { loadModel } from '../../src/engine/io/index.js';
import { makeWorkspace, tinyTrainingConfig, leftovers } from '../helpers/fixtures.js';

function digest(dir: string): string {
  const hash = createHash('sha256');
  for (const name of readdirSync(dir).sort()) hash.update(name).update(readFileSync(join(dir, name)));
  return hash.digest('hex');
}

test('a session prunes physically, fine-tunes, and writes model, shards and report atomically', async () => {
  const ws = await makeWorkspace();
  const before = digest(join(ws.dir, 'model'));
  const events: EngineEvent[] = [];
  const result = await executeSession(loadConfig(ws.writeConfig(tinyTrainingConfig)), (e) => events.push(e));
  assert.equal(result.type, 'done', result.type === 'error' ? result.message : '');
  if (result.type !== 'done') return;

  const types = events.map((e) => e.type);
  assert.equal(types[types.length - 1], 'done');
  assert.ok(types.includes('start') && types.includes('layers') && types.includes('epoch') && types.includes('phase'));
  assert.ok(result.after.flops < result.before.flops && result.after.params < result.before.params);
  assert.ok(Math.abs(1 - result.after.flops / result.before.flops - 0.4) <= 0.02 + 0.1, 'near the FLOPs target');
  assert.ok(result.accuracy && result.accuracy.before >= 0 && result.accuracy.after >= 0);
  assert.ok(result.latency && result.latency.before.medianMs > 0 && result.latency.after.backend === 'cpu');
  assert.equal(result.physicallyRemoved, true);
  assert.ok(result.channelsRemoved > 0);

  const out = join(ws.dir, 'pruned');
  assert.equal(result.output, join(out, 'model.json'));
  assert.ok(existsSync(join(out, 'pruning-report.json')));
  const report = JSON.parse(readFileSync(join(out, 'pruning-report.json'), 'utf8'));
  assert.equal(report.method, 'l1');
  assert.equal(report.after.params, result.after.params);
  assert.ok(report.layers.some((l: { channelsAfter: number; channelsBefore: number }) => l.channelsAfter < l.channelsBefore));

  const reloaded = await loadModel(result.output!);
  assert.equal(reloaded.model.countParams(), result.after.params, 'the saved model is the smaller one');
  reloaded.model.dispose();
  assert.equal(digest(join(ws.dir, 'model')), before, 'the input model is never modified');
  assert.deepEqual(leftovers(ws.dir, ['model', 'pruned', 'tiny.prune.json']), [], 'no temporary folders left');
});

test('a cancelled session stops within a step and leaves no output behind', async () => {
  const ws = await makeWorkspace();
  const config = loadConfig(ws.writeConfig({ ...tinyTrainingConfig, method: 'l1', finetune: { epochs: 3, batchSize: 8 } }));
  const abort = new AbortController();
  let stepsAfterCancel = 0;
  const result = await executeSession(config, (e) => {
    if (e.type === 'step' && e.phase === 'finetune') {
      if (abort.signal.aborted) stepsAfterCancel++;
      else abort.abort();
    }
  }, { signal: abort.signal });
  assert.equal(result.type, 'error');
  assert.equal(result.type === 'error' && result.cancelled, true);
  assert.ok(stepsAfterCancel <= 1, `stopped within one step (ran ${stepsAfterCancel} more)`);
  assert.equal(existsSync(join(ws.dir, 'pruned')), false);
  assert.deepEqual(leftovers(ws.dir, ['model', 'tiny.prune.json']), []);
});

test('a dry run plans the target and writes nothing', async () => {
  const ws = await makeWorkspace();
  const config = loadConfig(ws.writeConfig({ ...tinyTrainingConfig, target: { channelRatio: 0.5 } }));
  const result = await executeSession(config, () => undefined, { dryRun: true });
  assert.equal(result.type, 'done');
  if (result.type !== 'done') return;
  assert.equal(result.dryRun, true);
  assert.equal(result.physicallyRemoved, false);
  assert.ok(result.channelsRemoved > 0 && result.after.flops < result.before.flops);
  assert.equal(existsSync(join(ws.dir, 'pruned')), false);
});

test('a method that trains without data is refused with the field and the fix', async () => {
  const ws = await makeWorkspace();
  const { data: _data, ...noData } = tinyTrainingConfig;
  void _data;
  const config = loadConfig(ws.writeConfig({ ...noData, method: 'l1' }));
  const result = await executeSession(config, () => undefined);
  // l1 needs no data: it prunes and saves without fine-tuning.
  assert.equal(result.type, 'done');
  if (result.type === 'done') assert.equal(result.accuracy, undefined);
});

test('bad data is reported as one error event naming the file', async () => {
  const ws = await makeWorkspace();
  const config = loadConfig(ws.writeConfig({ ...tinyTrainingConfig, data: { format: 'npy', x: 'missing-x.npy', y: 'missing-y.npy' } }));
  const result = await executeSession(config, () => undefined);
  assert.equal(result.type, 'error');
  if (result.type === 'error') {
    assert.match(result.message, /missing-x\.npy/);
    assert.doesNotMatch(result.message, /\n\s+at /);
  }
  assert.equal(existsSync(join(ws.dir, 'pruned')), false);
});

test('a session confined to the workspace refuses paths outside it, naming the field', async () => {
  const ws = await makeWorkspace();
  const outside = await makeWorkspace();
  const escaping = loadConfig(ws.writeConfig({ ...tinyTrainingConfig, output: join(outside.dir, 'pruned') }));
  const refused = await executeSession(escaping, () => undefined, { workspaceRoots: [ws.dir] });
  assert.equal(refused.type, 'error');
  if (refused.type === 'error') {
    assert.equal(refused.field, 'output');
    assert.match(refused.message, /outside the workspace/);
  }
  assert.equal(existsSync(join(outside.dir, 'pruned')), false);

  const foreignModel = loadConfig(ws.writeConfig({ ...tinyTrainingConfig, model: outside.modelPath }, 'foreign.prune.json'));
  const refusedModel = await executeSession(foreignModel, () => undefined, { workspaceRoots: [ws.dir] });
  assert.equal(refusedModel.type === 'error' && refusedModel.field, 'model');

  const inside = await executeSession(loadConfig(ws.writeConfig({ ...tinyTrainingConfig, finetune: { epochs: 0 } }, 'inside.prune.json')), () => undefined, { workspaceRoots: [ws.dir] });
  assert.equal(inside.type, 'done');
});
