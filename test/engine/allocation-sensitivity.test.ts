import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { analyzeModel } from '../../src/engine/graph/analyze.js';
import { countCost, unitNorms } from '../../src/engine/metrics/index.js';
import { analyzeSensitivity, type SensitivityReport } from '../../src/engine/sensitivity/index.js';
import { removeUnits } from '../../src/engine/surgery/index.js';
import { evaluateModel } from '../../src/engine/train/index.js';
import { loadConfig } from '../../src/engine/config/index.js';
import type { PruneConfig } from '../../src/engine/config/types.js';
import { allocatingMethods, checkMethodFits, getMethod } from '../../src/engine/methods/index.js';
import { selectUnits } from '../../src/engine/prune/select.js';
import { allocateFromSensitivity, type Allocation } from '../../src/engine/prune/allocate.js';
import { createMethodContext } from '../../src/engine/session/context.js';
import { executeSession } from '../../src/engine/session/session.js';
import type { DoneEvent, EngineEvent } from '../../src/protocol/events.js';
import type { Dataset } from '../../src/engine/train/types.js';
import { buildFragileAndRobust, labelledBy } from '../helpers/fragile-robust.js';
import { makeWorkspace, tinyTrainingConfig } from '../helpers/fixtures.js';

before(async () => {
  await tf.setBackend('cpu');
});

function baseConfig(overrides: Partial<PruneConfig>): PruneConfig {
  return {
    configPath: '/virtual/fragile.prune.json', model: '/virtual/model.json', method: 'l1', target: { flopsReduction: 0.3 }, output: '/virtual/out',
    scope: 'global', allocation: 'global', exclude: [], maxGroupReduction: 0.9, backend: 'cpu', seed: 1, latency: { runs: 1, batchSize: 1 }, export: [],
    ...overrides,
  };
}

/** l1 through the method context the session builds, then physical removal; the metric measured right after pruning, no fine-tuning. */
async function pruneWithL1(model: tf.LayersModel, data: Dataset, config: PruneConfig, sensitivity?: SensitivityReport) {
  const graph = analyzeModel(model);
  let allocation: Allocation | undefined;
  const logs: string[] = [];
  const context = createMethodContext({ config, model, graph, data, sensitivity, onAllocation: (a) => { allocation = a; }, emit: (e) => { if (e.type === 'log') logs.push(e.message); } });
  const decision = await getMethod('l1').run(context);
  assert.equal(decision.kind, 'units');
  const remove = decision.kind === 'units' ? decision.remove : [];
  const pruned = await removeUnits(model, graph, remove);
  const flopsReduction = 1 - countCost(pruned).flops / countCost(model).flops;
  const result = await evaluateModel(pruned, data);
  pruned.dispose();
  return { remove, flopsReduction, metric: result.metric.value, allocation, logs };
}

/** Global L1 and l1 with allocation from sensitivity at one FLOPs goal: both land within 2 points of each other. */
async function compare(model: tf.LayersModel, data: Dataset, report: SensitivityReport, goal: number) {
  const graph = analyzeModel(model);
  const coupled = graph.groups.find((g) => g.producers.includes('stem'))!;
  const inner = graph.groups.find((g) => g.producers.includes('inner'))!;
  const global = await pruneWithL1(model, data, baseConfig({ target: { flopsReduction: goal } }));
  const allocated = await pruneWithL1(model, data, baseConfig({ target: { flopsReduction: goal }, allocation: 'sensitivity' }), report);
  console.log(`${model.name}: −${Math.round(goal * 100)}% FLOPs: global L1 ${global.flopsReduction.toFixed(3)} FLOPs, top-1 ${global.metric.toFixed(3)}; sensitivity ${allocated.flopsReduction.toFixed(3)} FLOPs, top-1 ${allocated.metric.toFixed(3)}; ${allocated.logs.at(-1)}`);
  assert.ok(Math.abs(allocated.flopsReduction - global.flopsReduction) <= 0.02, `equal FLOPs: sensitivity ${allocated.flopsReduction}, global ${global.flopsReduction}`);
  // The allocation is reported: per group, what it removed, and the log line names it.
  assert.ok(allocated.allocation);
  const byGroup = new Map(allocated.allocation.groups.map((g) => [g.group, g]));
  assert.ok(byGroup.get(inner.id)!.removed >= byGroup.get(coupled.id)!.removed, 'the robust group gives at least as many channels');
  assert.match(allocated.logs.join('\n'), /^Allocation from sensitivity \(top-1 curves\): /m);
  return { global, allocated };
}

describe('allocation from sensitivity', () => {
  const model = buildFragileAndRobust();
  const data = labelledBy(model);
  const graph = analyzeModel(model);
  const coupled = graph.groups.find((g) => g.producers.includes('stem'))!;
  const inner = graph.groups.find((g) => g.producers.includes('inner'))!;
  let report: SensitivityReport;

  before(async () => {
    report = await analyzeSensitivity(model, data);
  });

  // As built, global L1 already ranks the robust group's channels lowest (the head's large weights
  // sit on the coupled channels): allocation from sensitivity must do at least as well (it picks the
  // same channels here). Goals where both land within 2 points of each other with whole channels.
  for (const goal of [0.2, 0.4, 0.5]) {
    it(`as built: at least as good as global L1 at equal FLOPs (−${Math.round(goal * 100)}%)`, async () => {
      const { global, allocated } = await compare(model, data, report, goal);
      assert.ok(allocated.metric >= global.metric, `sensitivity top-1 ${allocated.metric} vs global ${global.metric}`);
    });
  }

  // The same function with the robust group's weights 100× larger (inner ×100, tail ÷100): global L1
  // now ranks the fragile coupled channels lowest; the curves, measured, are unchanged.
  const rescaled = buildFragileAndRobust({ robustScale: 100 });
  for (const goal of [0.3, 0.5, 0.55]) {
    it(`same function, robust weights ×100: beats global L1 at equal FLOPs (−${Math.round(goal * 100)}%)`, async () => {
      const input = tf.randomNormal([16, 4, 4, 8], 0, 1, 'float32', 3);
      const difference = tf.tidy(() => tf.max(tf.abs(tf.sub(model.predict(input) as tf.Tensor, rescaled.predict(input) as tf.Tensor))).dataSync()[0]);
      input.dispose();
      assert.ok(difference < 1e-4, `outputs differ by ${difference}`);
      const rescaledReport = await analyzeSensitivity(rescaled, data);
      const { global, allocated } = await compare(rescaled, data, rescaledReport, goal);
      assert.ok(allocated.metric - global.metric >= 0.1, `sensitivity top-1 ${allocated.metric} vs global ${global.metric}`);
    });
  }

  it('within each group the method\'s lowest scores go, and a channel ratio is met exactly', () => {
    const scores = unitNorms(model, graph, 'l1', true);
    const allocation = allocateFromSensitivity(graph, model, report, scores, { channelRatio: 0.25 });
    assert.equal(allocation.remove.length, Math.round(0.25 * graph.units.length));
    for (const g of graph.groups) {
      const ranked = [...g.units].sort((a, b) => scores[a] - scores[b] || a - b);
      const count = allocation.groups.find((a) => a.group === g.id)!.removed;
      assert.deepEqual(allocation.remove.filter((u) => g.units.includes(u)), ranked.slice(0, count).sort((a, b) => a - b));
    }
  });

  it('"global" and "uniform" select exactly as scope global and scope layer did', async () => {
    const scores = unitNorms(model, graph, 'l1', true);
    for (const [allocation, scope] of [['global', 'global'], ['uniform', 'layer']] as const) {
      for (const target of [{ flopsReduction: 0.4 }, { channelRatio: 0.5 }]) {
        const config = baseConfig({ allocation, scope, target });
        const viaContext = createMethodContext({ config, model, graph }).selectUnits(scores);
        assert.deepEqual(viaContext, selectUnits(graph, model, scores, target, { scope, maxGroupReduction: 0.9 }), `${allocation} ${JSON.stringify(target)}`);
      }
    }
  });

  it('config: "allocation" or the older "scope"; a contradiction, a method that sets its widths otherwise, no data or a norm target is one line', async () => {
    const ws = await makeWorkspace('prunelens-allocation-');
    try {
      const load = (extra: Record<string, unknown>, name = 'a.prune.json') => loadConfig(ws.writeConfig({ ...tinyTrainingConfig, ...extra }, name));
      assert.deepEqual([load({}).allocation, load({}).scope], ['global', 'global']);
      assert.deepEqual([load({ scope: 'layer' }).allocation, load({ scope: 'layer' }).scope], ['uniform', 'layer']);
      assert.deepEqual([load({ allocation: 'uniform' }).allocation, load({ allocation: 'uniform' }).scope], ['uniform', 'layer']);
      assert.equal(load({ allocation: 'sensitivity' }).scope, 'global');
      const oneLine = (fn: () => unknown, pattern: RegExp) => assert.throws(fn, (err: Error) => pattern.test(err.message) && !err.message.includes('\n'));
      oneLine(() => load({ allocation: 'sensitivity', scope: 'layer' }, 'clash.prune.json'), /clash\.prune\.json.*"scope": "layer" contradicts "allocation": "sensitivity"/);
      oneLine(() => load({ allocation: 'by-feel' }, 'bad.prune.json'), /bad\.prune\.json.*allocation/);
      const dsp = load({ allocation: 'sensitivity', method: 'dsp', dsp: {} }, 'dsp.prune.json');
      oneLine(() => checkMethodFits(getMethod('dsp'), dsp), /dsp\.prune\.json.*"allocation": "sensitivity" sets how many channels each group keeps.*l1, goprune, ssr, ispasp or ocspruner, or "global" with dsp/);
      const { data: _data, train: _train, finetune: _finetune, ...noData } = tinyTrainingConfig;
      void _data; void _train; void _finetune;
      const dataless = loadConfig(ws.writeConfig({ ...noData, allocation: 'sensitivity' }, 'nodata.prune.json'));
      oneLine(() => checkMethodFits(getMethod('l1'), dataless), /nodata\.prune\.json.*has no "data"/);
      const norm = load({ allocation: 'sensitivity', target: { normThreshold: 0.1 } }, 'norm.prune.json');
      oneLine(() => checkMethodFits(getMethod('l1'), norm), /norm\.prune\.json.*not normThreshold/);
      assert.deepEqual(allocatingMethods(), ['l1', 'goprune', 'ssr', 'ispasp', 'ocspruner']);
    } finally {
      rmSync(ws.dir, { recursive: true, force: true });
    }
  });

  it('a session measures the curves (cached beside the config), logs the allocation and records it in the report', async () => {
    const ws = await makeWorkspace('prunelens-allocation-session-');
    try {
      const config = loadConfig(ws.writeConfig({ ...tinyTrainingConfig, allocation: 'sensitivity', finetune: { epochs: 0 } }));
      const events: EngineEvent[] = [];
      const result = await executeSession(config, (e) => events.push(e));
      assert.equal(result.type, 'done', result.type === 'error' ? result.message : '');
      const done = result as DoneEvent;
      const reduction = 1 - done.after.flops / done.before.flops;
      assert.ok(Math.abs(reduction - 0.4) <= 0.02, `FLOPs reduction ${reduction}`);
      assert.ok(events.some((e) => e.type === 'log' && /^Allocation from sensitivity \(top-1 curves\): /.test(e.message)));
      const cache = join(ws.dir, '.prunelens', 'cache', 'sensitivity');
      assert.ok(existsSync(cache) && readdirSync(cache).some((f) => f.endsWith('.json')), 'curves cached beside the config');
      const written = JSON.parse(readFileSync(done.report!, 'utf8')) as { allocation: string; sensitivityAllocation: { producers: string[]; removed: number; channels: number }[]; notes: string[] };
      assert.equal(written.allocation, 'sensitivity');
      assert.deepEqual(written.sensitivityAllocation.map((g) => g.producers), [['conv1'], ['conv2'], ['fc1']]);
      assert.equal(written.sensitivityAllocation.reduce((sum, g) => sum + g.removed, 0), done.channelsRemoved);
      assert.ok(written.notes.some((n) => n.startsWith('Allocation from sensitivity')));
    } finally {
      rmSync(ws.dir, { recursive: true, force: true });
    }
  });
});
