// Sensitivity analysis through the engine process, as the editor runs it: a `sensitivity` request
// streams the start, every point and the report, writes the report beside the config, and cancels.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { isEngineRequest, isTerminalEvent, sensitivityScore, type EngineEvent, type SensitivityPointEvent, type SensitivityStartEvent } from '../../src/protocol/events.js';
import { startEngine } from '../../src/engine/process/client.js';
import { makeWorkspace, tinyTrainingConfig, ensureBuilt } from '../helpers/fixtures.js';

const enginePath = resolve('dist/engine.js');
before(() => ensureBuilt());

test('a sensitivity request streams the dense metric, every point with FLOPs and latency shares, and the written report', async () => {
  const ws = await makeWorkspace('prunelens-sensitivity-process-');
  const configPath = ws.writeConfig(tinyTrainingConfig);
  const request = { type: 'sensitivity', configPath, ratios: [0.25, 0.5], samples: 16, workspaceRoots: [ws.dir] } as const;
  assert.ok(isEngineRequest(request));
  const events: EngineEvent[] = [];
  const result = await startEngine(request, { enginePath, onEvent: (e) => events.push(e) }).result;
  assert.equal(result.type, 'sensitivityDone', result.type === 'error' ? result.message : '');
  if (result.type !== 'sensitivityDone') return;
  assert.ok(isTerminalEvent(result));
  const start = events[0] as SensitivityStartEvent;
  assert.equal(start.type, 'sensitivityStart');
  assert.equal(start.configPath, configPath);
  assert.deepEqual(start.ratios, [0.25, 0.5]);
  assert.equal(start.samples, 16);
  assert.equal(start.backend, 'cpu');
  const points = events.filter((e): e is SensitivityPointEvent => e.type === 'sensitivityPoint');
  const report = result.report;
  assert.equal(points.length, report.groups.reduce((n, g) => n + g.points.length, 0), 'every point streamed once');
  assert.deepEqual(start.entries.map((e) => e.id), report.groups.map((g) => g.id));
  // The model's layers were timed: each group holds a share of the summed per-layer time, the
  // shares of groups with disjoint layers adding to at most the whole.
  assert.ok(report.latency && 'totalMs' in report.latency && report.latency.totalMs > 0, JSON.stringify(report.latency));
  for (const g of report.groups) {
    assert.ok(g.latencyShare !== undefined && g.latencyShare > 0 && g.latencyShare <= 1, `group ${g.id}: ${g.latencyShare}`);
    assert.equal(points.find((p) => p.entry.id === g.id)?.entry.latencyShare, g.latencyShare, 'the points carry the same share');
  }
  assert.equal(result.file, join(ws.dir, 'tiny.sensitivity.json'));
  const written = JSON.parse(readFileSync(result.file, 'utf8'));
  assert.deepEqual(written.groups.map((g: { latencyShare: number }) => g.latencyShare), report.groups.map((g) => g.latencyShare));
  console.log(`sensitivity via the engine process: ${report.groups.map((g) => `group ${g.id} FLOPs ${(g.flopsShare * 100).toFixed(1)}% latency ${((g.latencyShare ?? 0) * 100).toFixed(1)}% score ${sensitivityScore(report, g).toFixed(3)}`).join('; ')} (${result.wallTimeMs} ms)`);

  // Again: from the cache, the same points at once.
  const again: EngineEvent[] = [];
  const cached = await startEngine(request, { enginePath, onEvent: (e) => again.push(e) }).result;
  assert.equal(cached.type, 'sensitivityDone');
  assert.equal((again[0] as SensitivityStartEvent).cached, true);
  assert.equal(again.filter((e) => e.type === 'sensitivityPoint').length, points.length);
});

test('a cancelled sensitivity request ends in a cancelled error and writes no report', async () => {
  const ws = await makeWorkspace('prunelens-sensitivity-cancel-');
  const configPath = ws.writeConfig(tinyTrainingConfig);
  let sent = false;
  const run = startEngine({ type: 'sensitivity', configPath, samples: 16 }, {
    enginePath,
    onEvent: (e) => { if (e.type === 'sensitivityPoint' && !sent) { sent = true; run.cancel(); } },
  });
  const result = await run.result;
  assert.equal(result.type, 'error');
  assert.equal(result.type === 'error' && result.cancelled, true);
  assert.equal(existsSync(join(ws.dir, 'tiny.sensitivity.json')), false);
});

test('a sensitivity request outside the workspace is refused in one line', async () => {
  const ws = await makeWorkspace('prunelens-sensitivity-confine-');
  const configPath = ws.writeConfig(tinyTrainingConfig);
  const result = await startEngine({ type: 'sensitivity', configPath, workspaceRoots: [join(ws.dir, 'elsewhere')] }, { enginePath }).result;
  assert.equal(result.type, 'error');
  assert.match(result.type === 'error' ? result.message : '', /outside the workspace/);
});
