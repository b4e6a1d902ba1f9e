// 'auto' picks its backend by measurement: every backend that starts here runs one probe training step, the fastest
// wins and is cached per machine; a later session (a new process) starts the cached winner without measuring. Real
// backends, real processes: wasm with PruneLens' kernels against cpu (tfjs-node joins in where it is installed).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { BackendInfo } from '../../src/engine/backend/index.js';
import type { DoneEvent, EngineEvent } from '../../src/protocol/events.js';
import { ensureBuilt, makeWorkspace, tinyTrainingConfig } from '../helpers/fixtures.js';

const backendModule = resolve('src/engine/backend/index.ts');

/** A fresh engine process (as each session is) that initialises `preference` with `cacheDir` and reports the backend. */
function initInFreshProcess(preference: string, cacheDir: string): BackendInfo {
  const script = `const b = require(${JSON.stringify(backendModule)});
    b.initBackend(${JSON.stringify(preference)}, { cacheDir: ${JSON.stringify(cacheDir)} }).then(() => console.log(JSON.stringify(b.backendInfo())));`;
  const r = spawnSync(process.execPath, ['--import', 'tsx', '-e', script], { encoding: 'utf8', timeout: 120_000 });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as BackendInfo;
}

function tfjsNodeLoads(): boolean {
  try { require('@tensorflow/tfjs-node'); return true; } catch { return false; }
}

test('auto measures every backend, picks the fastest (wasm over cpu) and caches it; a second session reuses the cache', { timeout: 300_000 }, () => {
  const cacheDir = join(mkdtempSync(join(tmpdir(), 'prunelens-backend-choice-')), '.prunelens', 'cache');
  const first = initInFreshProcess('auto', cacheDir);
  assert.equal(first.choice?.by, 'measured');
  const stepMs = first.choice!.stepMs!;
  assert.ok(stepMs.wasm > 0 && stepMs.cpu > 0, JSON.stringify(stepMs));
  const fastest = Object.keys(stepMs).sort((a, b) => stepMs[a] - stepMs[b])[0];
  assert.equal(first.name, fastest);
  if (!tfjsNodeLoads()) {
    assert.equal(first.name, 'wasm', `wasm with PruneLens' kernels beats cpu: ${JSON.stringify(stepMs)}`);
    assert.equal(first.choice!.unavailable?.tensorflow, 'tfjs-node not installed');
  } else {
    assert.ok(stepMs.tensorflow > 0, 'tfjs-node, installed, is measured too');
  }
  const file = join(cacheDir, 'backend.json');
  assert.equal(first.choice!.cacheFile, file);
  const cache = JSON.parse(readFileSync(file, 'utf8'));
  const entries = Object.entries(cache.machines) as [string, { backend: string; stepMs: Record<string, number> }][];
  assert.equal(entries.length, 1);
  assert.match(entries[0][0], /cores \| node v\d+.* \| tfjs \d/);
  assert.equal(entries[0][1].backend, first.name);

  const second = initInFreshProcess('auto', cacheDir);
  assert.equal(second.name, first.name);
  assert.equal(second.choice?.by, 'cached');
  assert.deepEqual(second.choice!.stepMs, stepMs, 'the cached timings, not new ones');
});

test('the cached choice is what the next session starts, and the config\'s explicit backend still wins over it', { timeout: 300_000 }, () => {
  const cacheDir = join(mkdtempSync(join(tmpdir(), 'prunelens-backend-choice-')), 'cache');
  const measured = initInFreshProcess('auto', cacheDir);
  const file = join(cacheDir, 'backend.json');
  // Another backend recorded as this machine's winner: a session starts it without measuring.
  const cache = JSON.parse(readFileSync(file, 'utf8'));
  const other = measured.name === 'cpu' ? 'wasm' : 'cpu';
  for (const entry of Object.values(cache.machines) as { backend: string }[]) entry.backend = other;
  writeFileSync(file, JSON.stringify(cache));
  const cached = initInFreshProcess('auto', cacheDir);
  assert.equal(cached.name, other);
  assert.equal(cached.choice?.by, 'cached');

  const explicit = initInFreshProcess(measured.name, cacheDir);
  assert.equal(explicit.name, measured.name);
  assert.equal(explicit.choice?.by, 'config');
});

test('an unreadable cache is measured afresh and rewritten', { timeout: 300_000 }, () => {
  const cacheDir = mkdtempSync(join(tmpdir(), 'prunelens-backend-choice-'));
  writeFileSync(join(cacheDir, 'backend.json'), '{ not json');
  const info = initInFreshProcess('auto', cacheDir);
  assert.equal(info.choice?.by, 'measured');
  assert.ok(existsSync(join(cacheDir, 'backend.json')));
  assert.equal(JSON.parse(readFileSync(join(cacheDir, 'backend.json'), 'utf8')).version, 1);
});

test('sessions say which backend ran and why: the first measures and caches beside the config, the next reads the cache; the report keeps it', { timeout: 600_000 }, async () => {
  ensureBuilt();
  const ws = await makeWorkspace('prunelens-backend-session-');
  const config = ws.writeConfig({ ...tinyTrainingConfig, backend: 'auto', train: { epochs: 0, batchSize: 16 }, finetune: { epochs: 0, batchSize: 16 } });
  const session = () => {
    const r = spawnSync(process.execPath, [resolve('dist/cli.js'), 'prune', config, '--json'], { encoding: 'utf8', timeout: 300_000 });
    assert.equal(r.status, 0, r.stderr + r.stdout.slice(-500));
    const events = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as EngineEvent);
    const done = events.at(-1) as DoneEvent;
    const report = JSON.parse(readFileSync(done.report!, 'utf8'));
    const log = events.find((e) => e.type === 'log' && /^Backend /.test(e.message));
    return { backend: done.backend, report, log: log?.type === 'log' ? log.message : '' };
  };
  const first = session();
  assert.equal(first.report.backendChoice.by, 'measured');
  assert.equal(first.report.backendChoice.cacheFile, join(ws.dir, '.prunelens', 'cache', 'backend.json'));
  assert.match(first.log, new RegExp(`^Backend ${first.backend}: fastest, measured now; one probe training step took `));
  const second = session();
  assert.equal(second.backend, first.backend);
  assert.equal(second.report.backendChoice.by, 'cached');
  assert.deepEqual(second.report.backendChoice.stepMs, first.report.backendChoice.stepMs);
  assert.match(second.log, /fastest when this machine was measured/);
});
