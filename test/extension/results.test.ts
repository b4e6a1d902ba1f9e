import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { DoneEvent, EngineEvent, LayersEvent } from '../../src/protocol/events.js';
import type { RunInfo } from '../../src/protocol/webview.js';
import { loadConfig } from '../../src/engine/config/index.js';
import { executeSession } from '../../src/engine/session/session.js';
import { checkConfigText } from '../../src/extension/configChecks.js';
import { renderPanelHtml } from '../../src/extension/panel/html.js';
import {
  comparisonReportOf, keepRuns, layerComparison, reportComparison, parseReport, prunedModelBeside, REMEMBERED_RUNS, reportSnapshot, runFromReport, runKind, runRowOf,
  SessionProgress, variantFolder, variantFolderNote, withRow,
} from '../../src/extension/results.js';
import { initialState, reduce, restoreState } from '../../webview/state.js';
import { formatEta, progressDisplay } from '../../src/protocol/format.js';
import { makeWorkspace, tinyTrainingConfig } from '../helpers/fixtures.js';

/** One real session (L1 on the tiny CNN with synthetic data, fine-tuned): its done event and report file. */
const session = (async () => {
  const ws = await makeWorkspace('prunelens-results-');
  const configPath = ws.writeConfig({ ...tinyTrainingConfig, target: { flopsReduction: 0.4 } });
  const done = (await executeSession(loadConfig(configPath), () => undefined)) as DoneEvent;
  assert.equal(done.type, 'done');
  return { ws, configPath, done, reportFile: done.report! };
})();

test('the runs table row of a finished run carries every column from its done event', async () => {
  const { done } = await session;
  const row = runRowOf(done, { flopsReduction: 0.4 });
  assert.equal(row.method, 'l1');
  assert.deepEqual(row.target, { flopsReduction: 0.4 });
  assert.deepEqual(row.params, { before: done.before.params, after: done.after.params });
  assert.ok(row.flops.after < row.flops.before);
  assert.ok(row.latency && row.latency.before.medianMs > 0 && row.latency.before.p25Ms! <= row.latency.before.medianMs && row.latency.before.medianMs <= row.latency.before.p75Ms!);
  assert.ok(row.sizeBytes && row.sizeBytes.after < row.sizeBytes.before);
  assert.ok(row.metric && row.metric.afterPruning !== undefined, 'fine-tuned: the metric right after pruning too');
  assert.equal(row.wallTimeMs, done.wallTimeMs);
  assert.equal(row.output, done.output);
});

test('a report file reads back as the run that wrote it, with both layer lists and the comparison', async () => {
  const { done, reportFile } = await session;
  const report = parseReport(readFileSync(reportFile, 'utf8'), reportFile);
  const model = prunedModelBeside(reportFile, readdirSync(join(reportFile, '..')));
  assert.equal(model, done.output);
  const { run, events } = runFromReport(report, reportFile, model);
  assert.equal(run.status, 'done');
  assert.equal(runKind(run), 'result');
  const summary = run.summary!;
  assert.deepEqual([summary.before, summary.after, summary.metric?.after], [done.before, done.after, done.metric?.after]);
  assert.deepEqual(run.row!.flops, { before: done.before.flops, after: done.after.flops });
  const [before, after] = events.filter((e): e is LayersEvent => e.type === 'layers');
  assert.equal(before.totals.keptChannels, before.totals.prunableChannels);
  const groups = new Map(before.layers.filter((l) => l.status !== 'blocked' && l.group !== undefined).map((l) => [l.group, l.channels]));
  assert.equal(before.totals.prunableChannels, [...groups.values()].reduce((a, b) => a + b, 0), 'coupled layers count their group once');
  assert.ok(after.totals.keptChannels < before.totals.keptChannels);
  assert.equal(events.at(-1)!.type, 'done');

  const rows = layerComparison(report);
  const conv = rows.find((r) => r.status === 'prunable' && r.channels.after < r.channels.before);
  assert.ok(conv, 'some prunable layer lost channels');
  assert.ok(conv.params.after < conv.params.before);
  // Each layer's time alone, dense and pruned, from the session's per-layer timing.
  assert.ok(conv.latencyMs && conv.latencyMs.before! > 0 && conv.latencyMs.after! > 0, `${conv.name} timed before and after: ${JSON.stringify(conv.latencyMs)}`);
  const shown = reportComparison(report, reportFile);
  assert.equal(shown.file, reportFile);
  assert.deepEqual(shown.layerTiming, { backend: done.backend, batchSize: done.layerLatency!.batchSize });
});

test('a comparison tab saves its report file in the webview state, and a reload restores the tab from it', async () => {
  const { ws, reportFile } = await session;
  // What the comparison webview holds after its snapshot, through setState's JSON and getState after a reload.
  const saved = (snapshot: ReturnType<typeof reportSnapshot>) => restoreState(JSON.parse(JSON.stringify(reduce(initialState(), snapshot))));
  const state = saved(reportSnapshot(reportFile, 'comparison'));
  assert.equal(state.showOnly, 'comparison');
  assert.ok(state.report && state.report.comparison.length > 0);
  assert.equal(comparisonReportOf(state), reportFile);
  // A report that could not be read is tried again after the reload, not dropped.
  const missing = join(ws.dir, 'gone', 'pruning-report.json');
  const failed = saved(reportSnapshot(missing, 'comparison'));
  assert.equal(failed.report, undefined);
  assert.equal(comparisonReportOf(failed), missing);
  for (const nothing of [undefined, null, 42, {}, initialState(), { report: { file: 7 } }]) assert.equal(comparisonReportOf(nothing), undefined);
});

test('a session\'s done event carries each layer\'s time alone before and after, as its report read back does', async () => {
  const { done, reportFile } = await session;
  const timing = done.layerLatency;
  assert.ok(timing, 'the done event has per-layer timing');
  assert.equal(timing.backend, done.backend);
  const report = parseReport(readFileSync(reportFile, 'utf8'), reportFile);
  const conv = report.layers!.find((l) => l.type === 'Conv2D' && l.channelsAfter < l.channelsBefore)!;
  const t = timing.layers[conv.name];
  assert.ok(t && t.beforeMs! > 0 && t.afterMs! > 0, `${conv.name}: ${JSON.stringify(t)}`);
  // The report's rows give the same numbers (rounded the same way) to a report opened in the editor.
  const { events } = runFromReport(report, reportFile);
  const readBack = events.find((e): e is DoneEvent => e.type === 'done')!;
  assert.deepEqual(readBack.layerLatency, timing);
});

test('a file that is not a report says so in one line', () => {
  assert.throws(() => parseReport('{ nope', '/x/pruning-report.json'), /^Error: pruning-report\.json is not valid JSON .*open it as JSON to fix it\.$/);
  assert.throws(() => parseReport('{"a": 1}', '/x/pruning-report.json'), /not a PruneLens pruning report/);
});

test('dry runs and failures are kept apart from results and never push them out', async () => {
  const { done } = await session;
  const result = (i: number): RunInfo => ({ runId: `r${i}`, configPath: 'c', method: 'l1', status: 'done', startedAt: i, summary: done });
  const dry = (i: number): RunInfo => ({ runId: `d${i}`, configPath: 'c', method: 'l1', status: 'done', startedAt: i, summary: { ...done, dryRun: true } });
  const failed = (i: number): RunInfo => ({ runId: `f${i}`, configPath: 'c', method: 'l1', status: i % 2 ? 'error' : 'cancelled', startedAt: i });
  assert.deepEqual([runKind(result(1)), runKind(dry(1)), runKind(failed(1)), runKind(failed(2))], ['result', 'dryRun', 'failure', 'failure']);
  const runs = [result(0), ...Array.from({ length: 40 }, (_, i) => (i % 2 ? dry(i + 1) : failed(i + 1))), result(41)];
  const kept = keepRuns(runs);
  assert.deepEqual(kept.filter((r) => runKind(r) === 'result').map((r) => r.runId), ['r0', 'r41']);
  assert.equal(kept.filter((r) => runKind(r) === 'dryRun').length, REMEMBERED_RUNS.dryRun);
  assert.equal(kept.filter((r) => runKind(r) === 'failure').length, REMEMBERED_RUNS.failure);
  assert.equal(kept.at(-2)!.runId, runs.at(-2)!.runId, 'the newest of each kind stay');
  // Runs stored before rows existed get theirs; dry runs get their flag and no row.
  assert.deepEqual(withRow(result(1)).row, runRowOf(done));
  assert.deepEqual([withRow(dry(1)).dryRun, withRow(dry(1)).row], [true, undefined]);
});

test('progress: the engine\'s session-wide percentage and ETA win over step progress, which fills in before it', () => {
  const p = new SessionProgress();
  const step = (progress: number, etaMs: number): EngineEvent => ({ type: 'step', phase: 'train', epoch: 1, step: 1, stepsPerEpoch: 10, loss: 1, learningRate: 0.1, etaMs, progress });
  p.apply({ type: 'phase', phase: 'train' });
  p.apply(step(0.2, 0));
  assert.equal(p.describe(), '20% · train', 'a phase ETA is not the session\'s: none shown');
  p.apply({ type: 'progress', progress: 0.43, etaMs: 70_000, activity: 'GoPrune sparsity training, epoch 2 of 3' });
  assert.equal(p.fraction, 0.43);
  assert.match(p.describe(), /^43% · ETA .+ · GoPrune sparsity training, epoch 2 of 3$/);
  assert.equal(p.apply(step(0.9, 0)), false, 'step progress is ignored once the engine gives one');
  assert.equal(p.fraction, 0.43);
  p.apply({ type: 'progress', progress: 1.2, activity: 'writing' });
  assert.equal(p.describe(), '100% · writing');
});

test('progress: the status bar and the notification word it as the panel\'s header does, from the same event', () => {
  const p = new SessionProgress();
  const panel = (fraction: number, etaMs?: number) => {
    // The panel's header: the webview reducer's view of the same progress event.
    const { percent, indeterminate, eta } = progressDisplay(fraction, etaMs);
    return indeterminate ? '\u2026' : [`${percent}%`, eta].filter(Boolean).join(' · ');
  };
  // Nothing known yet: words, no "0%", in all three.
  p.apply({ type: 'progress', progress: 0, activity: 'measuring the dense model, 3 of 20 runs' });
  assert.equal(p.statusText(), '\u2026');
  assert.equal(p.describe(), 'measuring the dense model, 3 of 20 runs');
  assert.equal(panel(0), '\u2026');
  for (const [progress, etaMs] of [[0.004, undefined], [0.426, undefined], [0.5, 65_000], [0.995, 0]] as const) {
    p.apply({ type: 'progress', progress, ...(etaMs !== undefined ? { etaMs } : {}), activity: 'GoPrune: epoch 1 of 3' });
    const shown = panel(progress, etaMs);
    assert.equal(p.statusText().replace(' · ETA ', ' · '), shown, `at ${progress}`);
    assert.ok(p.display.indeterminate ? !/%/.test(p.describe()) : p.describe().startsWith(p.statusText()), p.describe());
  }
  assert.equal(p.statusText(), '100%', 'no "ETA 0 s" at the end');
  assert.equal(progressDisplay(0.5, 65_000).eta, formatEta(65_000));
});

test('a method lens\'s folder is the output with the method appended, and its note says why', () => {
  assert.equal(variantFolder('out/pruned/', 'goprune'), 'out/pruned-goprune');
  assert.equal(variantFolderNote('out/pruned', 'dsp'), 'DSP writes to pruned-dsp/ (the config\'s "output" + "-dsp"), so each method\'s result sits beside the others and the config\'s own output is left as it is.');
});

test('an impossible target is one diagnostic: the schema\'s range, not repeated nor checked against the model', async () => {
  const { ws } = await session;
  const config = { model: 'model/model.json', method: 'l1', output: 'pruned' };
  let asked = 0;
  const capacity = async () => (asked++, { prunableChannels: 36, groups: 3, maxFlopsReduction: 0.9 });
  const path = join(ws.dir, 'x.prune.json');
  for (const amount of [1.5, 1, 0, -0.2]) {
    assert.deepEqual(await checkConfigText(JSON.stringify({ ...config, target: { flopsReduction: amount } }), path, capacity), [], `flopsReduction ${amount}`);
  }
  assert.equal(asked, 0);
  const beyond = await checkConfigText(JSON.stringify({ ...config, target: { flopsReduction: 0.95 } }), path, capacity);
  assert.deepEqual(beyond.map((c) => c.path.join('.')), ['target.flopsReduction']);
});

test('the panel HTML says where it shows', () => {
  const opts = { cspSource: 'vscode-resource:', scriptUri: 's.js', styleUri: 's.css', nonce: 'abc' };
  assert.match(renderPanelHtml(opts), /<body data-placement="sidebar">/);
  assert.match(renderPanelHtml({ ...opts, placement: 'editor' }), /<body data-placement="editor">/);
});
