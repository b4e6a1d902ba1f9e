import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { buildDemoCnn } from '../../src/engine/demo/model.js';
import { analyzeModel } from '../../src/engine/graph/analyze.js';
import { CostTracker, useLatencyTable } from '../../src/engine/metrics/cost.js';
import {
  clearLatencyTableMemoryCache, extendToZero, interpolateNode, LATENCY_GRID, latencyCacheDir, measureLatencyTable, monotoneGrid, predictLatencyOf, timingKey, type LatencyTable,
} from '../../src/engine/metrics/latency-table.js';
import { LANDING_TOLERANCE, maxReachable, nearestReachable, selectUnits } from '../../src/engine/prune/select.js';
import { unitNorms } from '../../src/engine/metrics/norms.js';
import { removeUnits } from '../../src/engine/surgery/index.js';
import { loadConfig } from '../../src/engine/config/index.js';
import { checkMethodFits, getMethod } from '../../src/engine/methods/index.js';
import { UserError } from '../../src/engine/errors.js';
import { executeSession } from '../../src/engine/session/session.js';
import type { DoneEvent, EngineEvent } from '../../src/protocol/events.js';
import type { PruningReport } from '../../src/engine/session/report.js';
import { analyzeModelFile } from '../../src/engine/session/analyze.js';
import { calibratedReduction, fitLatencyCalibration } from '../../src/engine/session/latency-target.js';
import { buildConcatDepthwise, buildResidualChain, everyOtherUnit } from '../helpers/models.js';
import { makeWorkspace, tinyTrainingConfig } from '../helpers/fixtures.js';

const grid = { in: [...LATENCY_GRID], out: [...LATENCY_GRID] };
/** A made-up producer: 0.2 ms overhead plus work in proportion to in × out, with a noisy (slow) reading at (½, ½). */
const measured = LATENCY_GRID.map((fin) => LATENCY_GRID.map((fout) => 0.2 + 3 * fin * fout));
measured[1][1] = 9;

test('interpolation reproduces the grid points and is monotone in both widths, below the grid too', () => {
  const clean = LATENCY_GRID.map((fin) => LATENCY_GRID.map((fout) => 0.2 + 3 * fin * fout));
  const entry = extendToZero(grid, monotoneGrid(clean));
  for (const [i, fin] of LATENCY_GRID.entries()) {
    for (const [j, fout] of LATENCY_GRID.entries()) assert.equal(interpolateNode(entry, fin, fout), clean[i][j], `at ${fin}, ${fout}`);
  }
  // A reading above a wider one's is noise, lowered to it: the stored grid is monotone and is what interpolation returns.
  const noisy = extendToZero(grid, monotoneGrid(measured));
  assert.equal(interpolateNode(noisy, 0.5, 0.5), Math.min(measured[1][2], measured[2][1]));
  assert.equal(interpolateNode(noisy, 0.25, 0.25), measured[0][0], 'narrower readings below it stay');
  for (const e of [entry, noisy]) {
    const steps = Array.from({ length: 41 }, (_, k) => k / 40);
    for (const fin of steps) {
      for (let k = 1; k < steps.length; k++) {
        assert.ok(interpolateNode(e, fin, steps[k]) >= interpolateNode(e, fin, steps[k - 1]) - 1e-12, `out-monotone at ${fin}, ${steps[k]}`);
        assert.ok(interpolateNode(e, steps[k], fin) >= interpolateNode(e, steps[k - 1], fin) - 1e-12, `in-monotone at ${steps[k]}, ${fin}`);
      }
    }
    assert.ok(interpolateNode(e, 0, 0) >= 0);
  }
  // Between grid points the surface a + b·in·out is bilinear: reproduced exactly.
  assert.ok(Math.abs(interpolateNode(entry, 0.6, 0.9) - (0.2 + 3 * 0.6 * 0.9)) < 1e-12);
});

test('the cache key names backend, shapes, widths and batch; the disk cache round-trips beside the config', async () => {
  const config = { filters: 8, kernelSize: [3, 3], name: 'a' };
  const key = timingKey('Conv2D', config, [[8, 8, 4]], 2, 'cpu');
  assert.equal(timingKey('Conv2D', { ...config, name: 'b' }, [[8, 8, 4]], 2, 'cpu'), key, 'the name is not part of it');
  assert.notEqual(timingKey('Conv2D', config, [[8, 8, 4]], 2, 'wasm'), key);
  assert.notEqual(timingKey('Conv2D', config, [[8, 8, 2]], 2, 'cpu'), key);
  assert.notEqual(timingKey('Conv2D', { ...config, filters: 4 }, [[8, 8, 4]], 2, 'cpu'), key);
  assert.notEqual(timingKey('Conv2D', config, [[8, 8, 4]], 1, 'cpu'), key);

  await tf.setBackend('cpu');
  const dir = mkdtempSync(join(tmpdir(), 'prunelens-latency-'));
  const cacheDir = latencyCacheDir(join(dir, 'run.prune.json'));
  assert.equal(cacheDir, join(dir, '.prunelens', 'cache', 'latency'));
  const model = buildDemoCnn({ inputShape: [12, 12, 1] });
  const graph = analyzeModel(model);
  clearLatencyTableMemoryCache();
  const first = await measureLatencyTable(model, graph, { batchSize: 1, runs: 1, warmup: 0, cacheDir });
  assert.ok(first.timedPoints > 0);
  assert.deepEqual(first.nodes.map((n) => n.layer), model.layers.filter((l) => l.getClassName() !== 'InputLayer').map((l) => l.name));
  const byName = new Map(first.nodes.map((n) => [n.layer, n]));
  // conv1 reads the fixed input: its output width alone varies; conv2 both; logits its input alone; bn1 follows its input.
  assert.deepEqual([byName.get('conv1')!.inFractions, byName.get('conv1')!.outFractions.length], [[1], 5]);
  assert.deepEqual([byName.get('conv2')!.inFractions.length, byName.get('conv2')!.outFractions.length], [5, 5]);
  assert.deepEqual([byName.get('logits')!.inFractions.length, byName.get('logits')!.outFractions], [5, [1]]);
  assert.deepEqual([byName.get('bn1')!.producer, byName.get('bn1')!.inFractions.length, byName.get('bn1')!.outFractions], [false, 5, [1]]);
  assert.ok(first.nodes.every((n) => n.how === 'timed'), first.nodes.filter((n) => n.how !== 'timed').map((n) => n.layer).join());
  assert.deepEqual(readdirSync(cacheDir), ['latency-cpu-b1.json']);

  // A fresh process (no memory cache) reads every point from disk and builds the same table.
  clearLatencyTableMemoryCache();
  const again = await measureLatencyTable(model, graph, { batchSize: 1, runs: 1, warmup: 0, cacheDir });
  assert.equal(again.timedPoints, 0);
  assert.equal(again.cachedPoints, first.timedPoints + first.cachedPoints);
  assert.deepEqual(again.nodes, first.nodes);
  // Another batch is another file, timed anew.
  const batch2 = await measureLatencyTable(model, graph, { batchSize: 2, runs: 1, warmup: 0, cacheDir });
  assert.ok(batch2.timedPoints > 0);
  assert.ok(existsSync(join(cacheDir, 'latency-cpu-b2.json')));
  const file = JSON.parse(readFileSync(join(cacheDir, 'latency-cpu-b1.json'), 'utf8')) as { backend: string; timings: Record<string, unknown> };
  assert.equal(file.backend, 'cpu');
  assert.equal(Object.keys(file.timings).length, first.timedPoints);
  model.dispose();
});

/** A table whose every layer costs in proportion to its kept widths (no timing): predictions are exact arithmetic. */
function proportionalTable(model: tf.LayersModel, measuredTable: LatencyTable): LatencyTable {
  return {
    ...measuredTable,
    nodes: measuredTable.nodes.map((n) => ({ ...n, ms: n.inFractions.map((fin) => n.outFractions.map((fout) => 1 + fin * fout * (n.producer ? 10 : 1))) })),
  };
}

test('the cost model predicts latency from the table: remove and restore, and a latencyReduction target lands within 2 points of its prediction', async () => {
  await tf.setBackend('cpu');
  const model = buildDemoCnn({ inputShape: [12, 12, 1] });
  const graph = analyzeModel(model);
  const measuredTable = await measureLatencyTable(model, graph, { batchSize: 1, runs: 1, warmup: 0 });
  for (const table of [measuredTable, proportionalTable(model, measuredTable)]) {
    const tracker = new CostTracker(model, graph, undefined, table);
    const full = table.nodes.reduce((sum, n) => sum + n.ms[n.ms.length - 1][n.ms[0].length - 1], 0);
    assert.ok(Math.abs((tracker.baseline.latency ?? 0) - full) < 1e-9);
    const some = graph.groups.flatMap((g) => g.units.slice(0, Math.floor(g.channels / 2)));
    const predicted = tracker.costWithout(some).latency!;
    assert.ok(predicted < full);
    assert.deepEqual(tracker.cost(), tracker.baseline, 'asking does not remove');
    for (const u of some) tracker.remove(u);
    assert.ok(Math.abs(tracker.cost().latency! - predicted) < 1e-9);
    for (const u of some) tracker.restore(u);
    assert.ok(Math.abs(tracker.cost().latency! - full) < 1e-9);

    useLatencyTable(model, graph, table);
    const scores = unitNorms(model, graph, 'l1');
    // Goals the table says are reachable: layers that pruning does not narrow bound the reduction.
    const reachable = maxReachable(graph, model, 'latencyReduction');
    for (const goal of [0.5 * reachable, 0.8 * reachable]) {
      for (const scope of ['global', 'layer'] as const) {
        const selected = selectUnits(graph, model, scores, { latencyReduction: goal }, { scope, maxGroupReduction: 0.9 });
        const reached = new CostTracker(model, graph).reductionWithout(selected).latency!;
        // The widths the cost model propagates are the pruned model's: the table predicts the same for it.
        const pruned = await removeUnits(model, graph, selected);
        const ofPruned = predictLatencyOf(table, model, pruned);
        assert.ok(Math.abs(1 - ofPruned.prunedMs / ofPruned.denseMs - reached) < 1e-9, `${scope} ${goal}: ${1 - ofPruned.prunedMs / ofPruned.denseMs} vs ${reached}`);
        pruned.dispose();
        // The timed table may make one channel of a small layer worth several points; the made-up one never does.
        const landable = table !== measuredTable || Math.abs(nearestReachable(graph, model, 'latencyReduction', goal) - goal) <= LANDING_TOLERANCE;
        if (scope === 'global' && landable) assert.ok(Math.abs(reached - goal) <= LANDING_TOLERANCE, `${scope} ${goal}: predicted ${reached.toFixed(4)}`);
        else assert.ok(reached >= goal - LANDING_TOLERANCE || !landable, `${scope} ${goal}: predicted ${reached.toFixed(4)}`);
      }
    }
  }
  model.dispose();
});

function expectUserError(fn: () => unknown, ...fragments: string[]): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof UserError, `expected a UserError, got ${String(err)}`);
    assert.equal(err.message.includes('\n'), false, 'one line');
    for (const f of fragments) assert.ok(err.message.includes(f), `"${err.message}" lacks "${f}"`);
    return true;
  });
}

test('a latencyReduction outside (0, 1) is one line naming the field; methods that cannot meet it refuse in one line', async () => {
  const ws = await makeWorkspace('prunelens-latency-config-');
  for (const bad of [0, 1, 1.5, -0.2]) {
    expectUserError(() => loadConfig(ws.writeConfig({ ...tinyTrainingConfig, target: { latencyReduction: bad } })), 'target.latencyReduction', 'between 0 and 1');
  }
  const config = loadConfig(ws.writeConfig({ ...tinyTrainingConfig, target: { latencyReduction: 0.3 } }));
  for (const accepts of ['l1', 'goprune', 'ssr', 'ispasp', 'ocspruner'] as const) checkMethodFits(getMethod(accepts), { ...config, method: accepts });
  // DSP's planner bisects on FLOPs: one line naming the target and the fix.
  expectUserError(() => checkMethodFits(getMethod('dsp'), { ...config, method: 'dsp' }), 'DSP', 'not latencyReduction', '"flopsReduction": 0.5');
});

test('the whole-model calibration turns a latency goal into the table reduction that meets it, and says when it cannot', () => {
  // Whole = 3 ms that do not shrink + the table's sum: the dense 10 ms (table 7), half of every group 6.5 ms (table 3.5).
  const dense = { measuredMs: 10, tableMs: 7 };
  const halfOf = { measuredMs: 6.5, tableMs: 3.5 };
  const fit = fitLatencyCalibration(0.5, dense, halfOf);
  assert.ok(!('skipped' in fit));
  assert.ok(Math.abs(fit.slope - 1) < 1e-12 && Math.abs(fit.offsetMs - 3) < 1e-12);
  // 5 ms whole is 2 ms of table: the method must cut 5/7 of the table's sum, not half of it.
  assert.ok(Math.abs(fit.tableGoal - 5 / 7) < 1e-12, `${fit.tableGoal}`);
  assert.ok(Math.abs(calibratedReduction(fit, fit.tableGoal) - 0.5) < 1e-12);
  // Layers that run faster in sequence than alone (slope < 1): a smaller table cut suffices.
  const slopeHalf = fitLatencyCalibration(0.3, { measuredMs: 6, tableMs: 10 }, { measuredMs: 3.5, tableMs: 5 });
  assert.ok(!('skipped' in slopeHalf) && Math.abs(slopeHalf.tableGoal - 0.36) < 1e-12, JSON.stringify(slopeHalf));
  // Out of reach (3 ms whole is under the 4 that do not shrink), or a cut far from the goal (noisy timings are the
  // likelier cause): not calibrated, with the reason, so the method is not sent to empty the model.
  assert.match((fitLatencyCalibration(0.75, dense, halfOf) as { skipped: string }).skipped, /more than all of the table's sum for 75\.0% .* too far from the table to trust/);
  assert.match((fitLatencyCalibration(0.5, { measuredMs: 10, tableMs: 10 }, { measuredMs: 7.2, tableMs: 5 }) as { skipped: string }).skipped, /would ask 89\.3% of the table's sum for 50\.0%/);
  // A run under load measured dense 78 ms and half 60 ms against a table of 107 and 54: taken at its word, it emptied the model.
  assert.ok('skipped' in fitLatencyCalibration(0.5, { measuredMs: 78, tableMs: 107 }, { measuredMs: 60, tableMs: 54 }));
  // No line through points that do not fall.
  assert.match((fitLatencyCalibration(0.5, dense, { measuredMs: 10.5, tableMs: 3.5 }) as { skipped: string }).skipped, /measured no faster/);
  assert.match((fitLatencyCalibration(0.5, dense, { measuredMs: 6.5, tableMs: 7 }) as { skipped: string }).skipped, /table predicts no time saved/);
});

test('a session with a latency target reports the predicted and the measured reduction', async () => {
  const ws = await makeWorkspace('prunelens-latency-session-');
  const config = loadConfig(ws.writeConfig({ ...tinyTrainingConfig, target: { latencyReduction: 0.3 }, finetune: undefined, train: undefined, data: undefined }));
  const events: EngineEvent[] = [];
  const result = await executeSession(config, (e) => events.push(e));
  assert.equal(result.type, 'done', result.type === 'error' ? result.message : '');
  const done = result as DoneEvent;
  assert.ok(done.channelsRemoved > 0);
  const report = JSON.parse(readFileSync(join(config.output, 'pruning-report.json'), 'utf8')) as PruningReport;
  const target = report.latencyTarget!;
  assert.equal(target.goal, 0.3);
  // Within 2 points of its aim, or a warning that says where it landed and why. The table is timed on this
  // machine, and on a model of 36 channels one channel can move the prediction by more than the tolerance.
  const missed = events.find((e) => e.type === 'warning' && /^Latency reduced by \d+\.\d% as predicted, target 30\.0%: /.test(e.message));
  // Calibrated, the method aims at the table reduction the calibration asked for.
  const [landed, aim] = target.calibration ? [target.tablePredicted, target.calibration.tableGoal] : [target.predicted, 0.3];
  assert.ok(Math.abs(landed - aim) <= LANDING_TOLERANCE || missed, `predicted ${landed}, aimed at ${aim}`);
  if (missed) assert.match((missed as { message: string }).message, new RegExp(`^Latency reduced by ${(target.predicted * 100).toFixed(1)}%`));
  assert.ok(Number.isFinite(target.measured));
  assert.ok(target.measuredRange[0] <= target.measured && target.measured <= target.measuredRange[1]);
  assert.ok(report.notes.some((n) => n.startsWith('Latency target 30.0%: the per-layer table')));
  // The goal was calibrated on the whole model, or the log says why not; the report keeps the table's own prediction.
  const calibrationLog = events.find((e) => e.type === 'log' && /^Latency target( calibrated on the whole model|: not calibrated)/.test(e.message));
  assert.ok(calibrationLog, 'a calibration line');
  assert.ok(Number.isFinite(target.tablePredicted));
  if (target.calibration) {
    assert.equal(target.calibration.goal, 0.3);
    assert.ok(Math.abs(target.predicted - calibratedReduction(target.calibration, target.tablePredicted)) < 1e-12);
  } else {
    assert.equal(target.predicted, target.tablePredicted);
  }
  assert.ok(events.some((e) => e.type === 'log' && e.message.startsWith('Latency table: ')));
  assert.ok(existsSync(join(ws.dir, '.prunelens', 'cache', 'latency')));
  // A dry run plans with the same table, read from the disk cache.
  const planned: EngineEvent[] = [];
  const dry = await executeSession(config, (e) => planned.push(e), { dryRun: true });
  assert.equal(dry.type, 'done', dry.type === 'error' ? dry.message : '');
  assert.ok((dry as DoneEvent).channelsRemoved > 0);
  assert.ok(planned.some((e) => e.type === 'log' && / 0 widths timed and \d+ cached/.test(e.message)));
});

test('analyze gives each layer its measured time and share beside its FLOPs', async () => {
  const ws = await makeWorkspace('prunelens-latency-analyze-');
  const analysis = await analyzeModelFile(ws.modelPath, 'cpu', [], undefined, { timeLayers: true });
  assert.ok(analysis.layerLatency && !('skipped' in analysis.layerLatency));
  const timed = analysis.layers.filter((l) => l.type !== 'InputLayer');
  assert.ok(timed.every((l) => typeof l.ms === 'number' && l.ms >= 0 && typeof l.share === 'number'), JSON.stringify(timed));
  assert.ok(Math.abs(timed.reduce((sum, l) => sum + l.share!, 0) - 1) < 1e-9);
  const untimed = await analyzeModelFile(ws.modelPath, 'cpu');
  assert.equal(untimed.layerLatency, undefined);
  assert.ok(untimed.layers.every((l) => l.ms === undefined));
});

test('OCSPruner searches its threshold on predicted latency for a latency target', async () => {
  const ws = await makeWorkspace('prunelens-latency-ocs-');
  const config = loadConfig(ws.writeConfig({
    ...tinyTrainingConfig, method: 'ocspruner', target: { latencyReduction: 0.25 }, finetune: undefined,
    train: { epochs: 5, batchSize: 16, learningRate: 0.02, maxStepsPerEpoch: 3 },
    ocspruner: { monitorStartEpoch: 0, slStartEpoch: 0, slEndEpoch: 2, reg: 0.05, regDelta: 0.05, layerPruneLimit: 0.9 },
  }));
  const result = await executeSession(config, () => undefined);
  assert.equal(result.type, 'done', result.type === 'error' ? result.message : '');
  const report = JSON.parse(readFileSync(join(config.output, 'pruning-report.json'), 'utf8')) as PruningReport;
  const target = report.latencyTarget!;
  assert.ok(target.predicted > 0, `predicted ${target.predicted}`);
  // The threshold search bisects on whole channels of its candidates: near the goal, but unprotected channels bound it.
  assert.ok(Math.abs(target.predicted - 0.25) <= 0.1, `predicted ${target.predicted}`);
});

test('widths through residual adds, a concat and a depthwise conv: the cost model predicts what the table gives the pruned model', async () => {
  await tf.setBackend('cpu');
  for (const model of [buildResidualChain(), buildConcatDepthwise()]) {
    const graph = analyzeModel(model);
    const table = await measureLatencyTable(model, graph, { batchSize: 1, runs: 1, warmup: 0 });
    const remove = everyOtherUnit(graph);
    const predicted = new CostTracker(model, graph, undefined, table).reductionWithout(remove).latency!;
    const pruned = await removeUnits(model, graph, remove);
    const ofPruned = predictLatencyOf(table, model, pruned);
    assert.ok(predicted > 0);
    assert.ok(Math.abs(1 - ofPruned.prunedMs / ofPruned.denseMs - predicted) < 1e-9, `${model.name}: ${1 - ofPruned.prunedMs / ofPruned.denseMs} vs ${predicted}`);
    pruned.dispose();
    model.dispose();
  }
});
