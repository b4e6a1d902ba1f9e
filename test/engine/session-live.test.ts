import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { EngineEvent, ProgressEvent, SparsityEvent } from '../../src/protocol/events.js';
import { METHOD_NAMES } from '../../src/protocol/methods.js';
import { signalInfo } from '../../src/protocol/signals.js';
import { loadConfig } from '../../src/engine/config/index.js';
import { executeSession } from '../../src/engine/session/session.js';
import { makeWorkspace, tinyTrainingConfig } from '../helpers/fixtures.js';

/**
 * What a session streams while it runs: each method's sparsity as it forms (before anything is
 * removed), one session-wide progress that step and epoch events agree with, and signals the
 * protocol's table explains.
 */

const TRAIN = { epochs: 3, batchSize: 16, learningRate: 0.02, maxStepsPerEpoch: 4 };

/** Settings under which each method runs in a few steps on the tiny CNN; GoPrune's and SSR's strong enough for zeros to form. */
const SETTINGS: Record<string, Record<string, unknown>> = {
  l1: {},
  goprune: { train: TRAIN, goprune: { lambda: 0.45, beta: 0.5, rho1: 0.01, rho2: 0.01 } },
  ssr: { train: TRAIN, ssr: { lambda: 3, rho: 4, rhoMax: 4, updateEvery: 1 } },
  dsp: { train: TRAIN, dsp: { groups: 2 } },
  ispasp: { train: { ...TRAIN, epochs: 1 }, ispasp: { calibrationSamples: 48, iterations: 4, blockFinetuneEpochs: 0 } },
  ocspruner: { train: { ...TRAIN, epochs: 4 }, ocspruner: { monitorStartEpoch: 0, slStartEpoch: 0, slEndEpoch: 2, reg: 0.05, regDelta: 0.05 } },
};

async function run(method: string): Promise<EngineEvent[]> {
  const ws = await makeWorkspace(`prunelens-live-${method}-`);
  const config = loadConfig(ws.writeConfig({ ...tinyTrainingConfig, method, target: { flopsReduction: 0.4 }, ...SETTINGS[method] }));
  const events: EngineEvent[] = [];
  const result = await executeSession(config, (e) => events.push(e));
  assert.equal(result.type, 'done', result.type === 'error' ? result.message : '');
  return events;
}

const sessions = new Map<string, EngineEvent[]>();
async function eventsOf(method: string): Promise<EngineEvent[]> {
  if (!sessions.has(method)) sessions.set(method, await run(method));
  return sessions.get(method)!;
}

/** Sparsity events streamed before the prune phase began. */
function sparsityBeforePrune(events: EngineEvent[]): SparsityEvent[] {
  const prune = events.findIndex((e) => e.type === 'phase' && e.phase === 'prune');
  return events.slice(0, prune < 0 ? events.length : prune).filter((e): e is SparsityEvent => e.type === 'sparsity');
}

const totalZero = (e: SparsityEvent) => e.groups.reduce((n, g) => n + g.zero, 0);

for (const method of ['goprune', 'ssr']) {
  test(`${method}: sparsity streams during training, nonzero and changing before the prune step`, async () => {
    const events = await eventsOf(method);
    const sparsity = sparsityBeforePrune(events);
    assert.ok(sparsity.length >= 3, `${sparsity.length} sparsity events before pruning`);
    const totals = sparsity.map(totalZero);
    assert.ok(totals.some((n) => n > 0), `zero counts ${totals}`);
    assert.ok(new Set(totals).size > 1, `zero counts change: ${totals}`);
    const start = events.find((e) => e.type === 'start')!;
    for (const e of sparsity) {
      assert.equal(e.method, method);
      assert.equal(e.groups.length, start.type === 'start' ? start.model.prunableGroups : -1, 'every channel group, by graph id');
      assert.ok(e.groups.every((g) => g.zero >= 0 && g.zero <= g.channels));
      assert.ok(e.criterion.length > 10);
    }
    for (let i = 1; i < sparsity.length; i++) assert.ok(sparsity[i].step >= sparsity[i - 1].step, 'steps never go back');
    assert.ok(sparsity.length <= 50 + 2 * TRAIN.epochs + 2, `at most about 50 per phase (${sparsity.length})`);
  });
}

test('every method streams sparsity, one progress that steps agree with, and explained signals', async () => {
  for (const method of METHOD_NAMES) {
    const events = await eventsOf(method);
    assert.ok(sparsityBeforePrune(events).length >= 1, `${method} streams sparsity before pruning`);

    // One progress: the progress, step and epoch events' numbers, in emission order, never fall.
    const series = events.flatMap((e) => (e.type === 'progress' || e.type === 'step' || e.type === 'epoch' ? [e.progress] : []));
    for (let i = 1; i < series.length; i++) assert.ok(series[i] >= series[i - 1] - 1e-12, `${method}: progress fell from ${series[i - 1]} to ${series[i]}`);
    const progress = events.filter((e): e is ProgressEvent => e.type === 'progress');
    assert.equal(progress[progress.length - 1].progress, 1, `${method} ends at 1`);
    assert.ok(progress.every((p) => p.activity.length > 0));
    const firstStep = events.findIndex((e) => e.type === 'step');
    if (firstStep >= 0) {
      const later = events.slice(firstStep + 1).filter((e): e is ProgressEvent => e.type === 'progress');
      assert.ok(later.length > 0 && later.every((p) => p.etaMs !== undefined && p.etaMs >= 0), `${method}: a session ETA once training started`);
    }
    assert.ok(progress.some((p) => /measuring the dense model, \d+ of \d+ runs/.test(p.activity)), `${method}: the dense model's timing in words`);

    for (const e of events) {
      if (e.type === 'signal') assert.ok(signalInfo(e.method, e.name), `${e.method} signal ${e.name} has an entry in protocol/signals.ts`);
    }
  }
});
