import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { EngineEvent } from '../../src/protocol/events.js';
import type { HostMessage, RunInfo } from '../../src/protocol/webview.js';
import {
  activeSummary,
  activeView,
  appendPoint,
  appendSparsityColumn,
  DEFAULT_LAYER_SORT,
  emptyRunView,
  headerProgress,
  layerFilterOf,
  layerRows,
  layerSortOf,
  MAX_HEATMAP_STEPS,
  paretoFront,
  reduceRunView,
  runRow,
  runsSortOf,
  runsTable,
  targetText,
  visibleRange,
  type LayerColumn,
  type LayerRow,
  type RunsColumn,
  type SparsityHistory,
  emptySeries,
  initialState,
  MAX_RUN_VIEWS,
  onSyntheticData,
  reduce,
  restoreState,
  runsOfConfig,
  selectedLayerStat,
  sensitivityRows,
  sensitivitySortOf,
  seriesPoints,
  sessionContext,
  shownLayers,
  type PanelAction,
  type PanelState,
} from '../../webview/state.js';
import { DENSE_METRIC, fragility, SENSITIVITY_CONFIG, SENSITIVITY_RATIOS, sensitivityDone, sensitivityPoints, sensitivityStart } from './fixtures/sensitivity.js';
import { analysisEvents, bigLayersEvent, bigSparsityEvent, CONFIG_PATH, DISTILL_OBJECTIVE, distillSession, DONE, fullSession, layersEvent, sessionUntilFinetune, sparsityStream, syntheticSession, UNLABELLED_DATA } from './fixtures/session.js';
import { formatEta } from '../../src/protocol/format.js';

function feed(state: PanelState, runId: string, events: EngineEvent[]): PanelState {
  return events.reduce((s, event) => reduce(s, { type: 'engineEvent', runId, event }), state);
}

function run(runId: string, startedAt: number, extra: Partial<RunInfo> = {}): RunInfo {
  return { runId, configPath: CONFIG_PATH, method: 'goprune', status: 'running', startedAt, ...extra };
}

test('a session stream builds the run view: model, latest layers, curves, signals, summary', () => {
  const state = feed(initialState(), 'r1', fullSession());
  const view = activeView(state)!;
  assert.equal(state.activeRunId, 'r1');
  assert.equal(view.method, 'goprune');
  assert.equal(view.model?.params, 210_000);
  // Latest layers event wins: the one taken after pruning.
  assert.equal(view.layers?.phase, 'prune');
  assert.deepEqual(view.layers?.layers.map((l) => l.kept), layersEvent('prune', 0, 0.8, 0.6).layers.map((l) => l.kept));
  // 3 training epochs + 2 fine-tuning epochs continue one x axis.
  assert.deepEqual(seriesPoints(view.curves.loss).map((p) => p.x), [1, 2, 3, 4, 5]);
  assert.equal(seriesPoints(view.curves.flops).at(-1)?.y, DONE.after.flops);
  // Step losses sit inside their epoch: the last step of epoch 1 lands on x = 1.
  const steps = seriesPoints(view.curves.stepLoss);
  assert.equal(steps.length, 12);
  assert.deepEqual(steps.slice(0, 4).map((p) => p.x), [0.25, 0.5, 0.75, 1]);
  assert.deepEqual(seriesPoints(view.signals.stability).map((p) => Math.round(p.y * 100)), [65, 80, 95]);
  assert.equal(view.done, DONE);
  assert.equal(view.progress, 1);
  assert.equal(activeSummary(state), DONE);
  // The runs list learnt the run from its start event and its outcome from done.
  assert.equal(state.runs.length, 1);
  assert.equal(state.runs[0].status, 'done');
  assert.equal(state.runs[0].report, DONE.report);
});

test('a run on synthetic data is known as such from its start event, before any result', () => {
  const stream = syntheticSession();
  const running = activeView(feed(initialState(), 'r1', stream.slice(0, 3)))!;
  assert.deepEqual(running.data, { format: 'synthetic', synthetic: true });
  assert.equal(onSyntheticData(running, undefined), true);
  const finished = feed(initialState(), 'r1', stream);
  assert.equal(onSyntheticData(activeView(finished), activeSummary(finished)), true);
  // After a reload only the runs list's summary may be left: it carries the flag too.
  assert.equal(onSyntheticData(undefined, finished.runs[0].summary), true);
  const real = feed(initialState(), 'r2', fullSession());
  assert.equal(onSyntheticData(activeView(real), activeSummary(real)), false);
});

test('accuracy curves hold the values the epochs reported', () => {
  const view = activeView(feed(initialState(), 'r1', fullSession()))!;
  const acc = seriesPoints(view.curves.valAccuracy).map((p) => Math.round(p.y * 1000));
  assert.deepEqual(acc, [910, 930, 950, 982, 986]);
});

test('a metric other than top-1 gets its own curve by name; top-1 stays the val accuracy curve', () => {
  const distilled = activeView(feed(initialState(), 'r1', distillSession()))!;
  assert.equal(distilled.valMetricName, 'top-1 agreement with the dense model');
  assert.deepEqual(seriesPoints(distilled.curves.valMetric!).map((p) => Math.round(p.y * 1000)), [910, 930, 950, 982, 986]);
  assert.equal(distilled.curves.valAccuracy.seen, 0);
  const labelled = activeView(feed(initialState(), 'r2', fullSession()))!;
  assert.equal(labelled.valMetricName, undefined);
  assert.equal(labelled.curves.valMetric!.seen, 0);
  // A view saved before the metric curve existed takes its first metric epoch without failing.
  const old = { ...labelled, curves: { ...labelled.curves, valMetric: undefined } };
  const epoch: EngineEvent = { type: 'epoch', phase: 'finetune', epoch: 1, epochs: 1, loss: 0.2, valMetric: { name: 'MAE', value: 0.12, higherIsBetter: false }, etaMs: 0, progress: 0.9 };
  const next = reduce({ ...initialState(), views: { old } , activeRunId: 'old' }, { type: 'engineEvent', runId: 'old', event: epoch });
  assert.deepEqual(seriesPoints(next.views.old.curves.valMetric!).map((p) => p.y), [0.12]);
  assert.equal(next.views.old.valMetricName, 'MAE');
});

test('the session context names the data and the objective: the format at the start, the description and objective once the data is loaded and when done', () => {
  const stream = distillSession();
  const started = activeView(feed(initialState(), 'r1', stream.slice(0, 1)))!;
  assert.deepEqual(sessionContext(started, undefined), { data: '.npy arrays', objective: undefined });
  const running = activeView(feed(initialState(), 'r1', stream.slice(0, 3)))!;
  assert.deepEqual(sessionContext(running, undefined), { data: UNLABELLED_DATA, objective: DISTILL_OBJECTIVE });
  const finished = feed(initialState(), 'r1', stream);
  assert.deepEqual(sessionContext(activeView(finished), activeSummary(finished)), { data: UNLABELLED_DATA, objective: DISTILL_OBJECTIVE });
  // After a reload only the runs list's summary may be left.
  assert.deepEqual(sessionContext(undefined, finished.runs[0].summary), { data: UNLABELLED_DATA, objective: DISTILL_OBJECTIVE });
  const withoutData = activeView(feed(initialState(), 'r2', [{ ...sessionUntilFinetune()[0], data: undefined } as EngineEvent]))!;
  assert.equal(sessionContext(withoutData, undefined).data, 'none: pruned without fine-tuning');
  assert.deepEqual(sessionContext(undefined, undefined), { data: undefined, objective: undefined });
  assert.match(sessionContext(activeView(feed(initialState(), 'r3', syntheticSession().slice(0, 1))), undefined).data!, /synthetic.*meaningless/);
});

test('curves stay bounded and uniformly spaced however long the run', () => {
  let series = emptySeries();
  for (let i = 0; i < 10_000; i++) series = appendPoint(series, { x: i, y: i * 2 }, 100);
  assert.ok(series.points.length <= 100, `kept ${series.points.length} points`);
  assert.ok(series.points.length >= 50);
  const gaps = new Set(series.points.slice(1).map((p, i) => p.x - series.points[i].x));
  assert.deepEqual([...gaps], [series.stride], 'every kept point is one stride apart');
  // The newest sample is always drawn.
  assert.deepEqual(seriesPoints(series).at(-1), { x: 9999, y: 19998 });

  // The same holds through the reducer for step losses of a long run.
  let state = feed(initialState(), 'r1', sessionUntilFinetune().slice(0, 1));
  for (let i = 0; i < 5000; i++) {
    state = reduce(state, { type: 'engineEvent', runId: 'r1', event: { type: 'step', phase: 'train', epoch: 1, step: i, stepsPerEpoch: 5000, loss: 1 / (i + 1), learningRate: 0.1, etaMs: 1, progress: i / 5000 } });
  }
  assert.ok(activeView(state)!.curves.stepLoss.points.length <= 400);
  assert.ok(JSON.stringify(state).length < 60_000, 'the saved state stays small');
});

test('a new run becomes active; selecting another switches and keeps both views', () => {
  let state = feed(initialState(), 'r1', fullSession());
  state = feed(state, 'r2', sessionUntilFinetune().slice(0, 4));
  assert.equal(state.activeRunId, 'r2');
  assert.equal(activeView(state)!.done, undefined);
  assert.equal(shownLayers(state)?.phase, 'train');

  state = reduce(state, { type: 'ui/selectRun', runId: 'r1' });
  assert.equal(state.activeRunId, 'r1');
  assert.equal(activeSummary(state), DONE);
  assert.equal(shownLayers(state)?.phase, 'prune');
  // Events of a background run update it without stealing the focus.
  state = reduce(state, { type: 'engineEvent', runId: 'r2', event: layersEvent('train', 1, 0, 0.2) });
  assert.equal(state.activeRunId, 'r1');
  assert.equal(state.views.r2.layers?.step, 1);
});

test('runs from the host set status and active run; unlisted views are dropped', () => {
  let state = feed(initialState(), 'r1', fullSession());
  state = feed(state, 'gone', sessionUntilFinetune().slice(0, 2));
  const runs = [run('r1', 100, { status: 'done', summary: DONE }), run('r3', 300, { status: 'error', error: 'Field "target" is missing' })];
  state = reduce(state, { type: 'runs', runs });
  assert.deepEqual(Object.keys(state.views), ['r1']);
  // The previous active run is gone, so the newest listed run is shown.
  assert.equal(state.activeRunId, 'r3');
  state = reduce(state, { type: 'runs', runs, activeRunId: 'r1' });
  assert.equal(state.activeRunId, 'r1');
  assert.equal(runsOfConfig(state).length, 2);
});

test('the number of run views is bounded and never drops the active one', () => {
  let state = initialState();
  const runs: RunInfo[] = [];
  for (let i = 0; i < MAX_RUN_VIEWS + 5; i++) {
    runs.push(run(`r${i}`, i));
    state = feed(state, `r${i}`, sessionUntilFinetune().slice(0, 4));
  }
  state = reduce(state, { type: 'ui/selectRun', runId: 'r0' });
  state = reduce(state, { type: 'runs', runs });
  assert.equal(Object.keys(state.views).length, MAX_RUN_VIEWS);
  assert.ok(state.views.r0, 'the active (oldest) run keeps its view');
  assert.ok(state.views[`r${MAX_RUN_VIEWS + 4}`], 'the newest run keeps its view');
});

test('errors and cancellations are recorded on the view and the runs list', () => {
  let state = feed(initialState(), 'r1', sessionUntilFinetune().slice(0, 4));
  state = reduce(state, { type: 'engineEvent', runId: 'r1', event: { type: 'warning', message: 'Learning rate is high' } });
  state = reduce(state, { type: 'engineEvent', runId: 'r1', event: { type: 'error', message: 'Dataset folder not found', file: '/w/a.prune.json', field: 'data.path' } });
  assert.deepEqual(activeView(state)!.error, { message: 'Dataset folder not found', file: '/w/a.prune.json', field: 'data.path', cancelled: undefined });
  assert.deepEqual(activeView(state)!.warnings, ['Learning rate is high']);
  assert.equal(state.runs[0].status, 'error');

  state = feed(state, 'r2', sessionUntilFinetune().slice(0, 2));
  state = reduce(state, { type: 'engineEvent', runId: 'r2', event: { type: 'error', message: 'Cancelled', cancelled: true } });
  assert.equal(state.runs.find((r) => r.runId === 'r2')!.status, 'cancelled');
});

test('a snapshot replays the active run from scratch and keeps restored views of others', () => {
  // What a hidden and re-shown view restores from setState, then the host's snapshot.
  let saved = feed(initialState(), 'r1', fullSession());
  saved = feed(saved, 'r2', sessionUntilFinetune());
  saved = reduce(saved, { type: 'ui/selectLayer', name: 'dense_1' });
  const restored = restoreState(JSON.parse(JSON.stringify(saved)));

  const events = sessionUntilFinetune().map((event) => ({ runId: 'r2', event }));
  const snapshot: HostMessage = {
    type: 'snapshot',
    runs: [run('r1', 1, { status: 'done', summary: DONE }), run('r2', 2)],
    activeRunId: 'r2',
    events,
  };
  const state = reduce(restored, snapshot);
  // Replaying the same events does not duplicate curve points.
  assert.deepEqual(seriesPoints(state.views.r2.curves.loss).map((p) => p.x), [1, 2, 3]);
  assert.equal(state.views.r2.curves.stepLoss.seen, 12);
  assert.equal(state.views.r1.done?.channelsRemoved, DONE.channelsRemoved);
  assert.equal(state.activeRunId, 'r2');
  assert.equal(state.selectedLayer, 'dense_1');
  assert.equal(selectedLayerStat(state)?.name, 'dense_1');
});

test('a snapshot alone (fresh webview) restores the run list and the summary of a finished run', () => {
  const state = reduce(initialState(), {
    type: 'snapshot',
    runs: [run('r1', 1, { status: 'done', summary: DONE })],
    events: [],
  });
  assert.equal(state.activeRunId, 'r1');
  assert.equal(activeView(state), undefined);
  assert.equal(activeSummary(state), DONE);
});

test('state survives a JSON round trip exactly (what setState/getState does)', () => {
  let state = feed(initialState(), 'r1', fullSession());
  for (const event of analysisEvents()) state = reduce(state, { type: 'analysis', modelPath: '/w/model.json', event });
  const json = JSON.stringify(state);
  const restored = restoreState(JSON.parse(json));
  // Same content (JSON has no undefined, NaN or Infinity that could silently change)...
  assert.equal(JSON.stringify(restored), json);
  assert.doesNotMatch(json, /":null[,}]/, 'no property value was lost to null');
  // ...and the restored state carries on exactly like the original.
  const next = (s: PanelState) => feed(s, 'r2', sessionUntilFinetune());
  assert.equal(JSON.stringify(next(restored)), JSON.stringify(next(state)));
});

test('restoreState starts fresh from anything it does not recognise', () => {
  assert.deepEqual(restoreState(undefined), initialState());
  assert.deepEqual(restoreState({ version: 0, runs: [] }), initialState());
  assert.deepEqual(restoreState('garbage'), initialState());
});

test('an analysis shows per-layer prunability and takes the focus until a run starts', () => {
  let state = feed(initialState(), 'r1', fullSession());
  for (const event of analysisEvents()) state = reduce(state, { type: 'analysis', modelPath: '/w/model.json', event });
  assert.equal(state.focus, 'analysis');
  const layers = shownLayers(state)!.layers;
  assert.deepEqual(layers.map((l) => l.status), ['prunable', 'coupled', 'coupled', 'prunable', 'blocked']);
  assert.match(layers[4].reason!, /output layer/);
  assert.ok(layers.every((l) => l.kept === l.channels), 'nothing is removed by an analysis');
  assert.equal(state.analysis?.done?.dryRun, true);

  state = reduce(state, { type: 'ui/focus', focus: 'run' });
  assert.equal(shownLayers(state)?.phase, 'prune');
  state = reduce(state, { type: 'ui/focus', focus: 'analysis' });
  state = feed(state, 'r2', sessionUntilFinetune().slice(0, 1));
  assert.equal(state.focus, 'run', 'a new run takes the focus back');
});

test('a second analysis of another model replaces the first', () => {
  let state = initialState();
  const analyse = (modelPath: string, event: EngineEvent): PanelAction => ({ type: 'analysis', modelPath, event });
  state = reduce(state, analyse('/w/a.json', analysisEvents()[1]));
  state = reduce(state, analyse('/w/b.json', { type: 'error', message: 'model.json has no weightsManifest', file: '/w/b.json' }));
  assert.equal(state.analysis?.modelPath, '/w/b.json');
  assert.equal(state.analysis?.layers, undefined);
  assert.equal(state.analysis?.error?.message, 'model.json has no weightsManifest');
});

test('the selected layer falls back to the first one with a histogram', () => {
  let state = feed(initialState(), 'r1', sessionUntilFinetune().slice(0, 4));
  assert.equal(selectedLayerStat(state)?.name, 'conv2d_1');
  state = reduce(state, { type: 'ui/selectLayer', name: 'conv2d_3' });
  assert.equal(selectedLayerStat(state)?.name, 'conv2d_3');
  state = reduce(state, { type: 'ui/selectLayer', name: 'no_such_layer' });
  assert.equal(selectedLayerStat(state)?.name, 'conv2d_1');
});

test('the host replaying the same analysis after a reload does not take the focus from a run', () => {
  let state = initialState();
  const analyse = (s: PanelState) => analysisEvents().reduce((acc, event) => reduce(acc, { type: 'analysis', modelPath: '/w/model.json', event }), s);
  state = analyse(state);
  state = reduce(feed(state, 'r1', fullSession()), { type: 'ui/focus', focus: 'run' });
  const restored = restoreState(JSON.parse(JSON.stringify(state)));
  const replayed = analyse(reduce(restored, { type: 'snapshot', runs: state.runs, activeRunId: 'r1', events: [] }));
  assert.equal(replayed.focus, 'run');
  assert.equal(replayed.analysis?.layers?.layers.length, 5);
  // A new analysis (another session) does take it.
  const again = reduce(replayed, { type: 'analysis', modelPath: '/w/model.json', event: { ...analysisEvents()[0], sessionId: 'a-2' } as EngineEvent });
  assert.equal(again.focus, 'analysis');
});

test('a new panel (an editor-area one too) fed the snapshot of a run and then the replayed last analysis keeps the run in focus; with no runs the analysis shows', () => {
  const runs = feed(initialState(), 'r1', fullSession()).runs;
  const replayAnalysis = (s: PanelState) => analysisEvents().reduce((acc, event) => reduce(acc, { type: 'analysis', modelPath: '/w/model.json', event, replay: true }), s);
  const withRun = replayAnalysis(reduce(initialState(), { type: 'snapshot', runs, activeRunId: 'r1', events: [] }));
  assert.equal(withRun.focus, 'run');
  assert.equal(withRun.analysis?.layers?.layers.length, 5, 'the analysis is there to switch to');
  const alone = replayAnalysis(reduce(initialState(), { type: 'snapshot', runs: [], events: [] }));
  assert.equal(alone.focus, 'analysis');
});

// ---- sensitivity ----

function sensitivityStream(analysisId: string, events: EngineEvent[]): PanelAction[] {
  return events.map((event) => ({ type: 'sensitivity', analysisId, configPath: SENSITIVITY_CONFIG, event }));
}

test('a sensitivity stream builds its curves point by point, takes the focus, and the done report completes it', () => {
  let state = feed(initialState(), 'r1', fullSession());
  state = sensitivityStream('s1', [sensitivityStart(40), ...sensitivityPoints(40, 10)]).reduce(reduce, state);
  assert.equal(state.focus, 'sensitivity');
  const view = state.sensitivity!;
  assert.equal(view.entries.length, 40);
  assert.equal(view.entries.reduce((n, e) => n + e.points.length, 0), 30, '10 groups × 3 ratios so far');
  assert.deepEqual(view.entries[3].points.map((p) => p.ratio), SENSITIVITY_RATIOS);
  assert.equal(view.file, undefined);
  // Rows of unmeasured groups have no score and go last, whatever the order.
  const rows = sensitivityRows(view);
  assert.equal(rows.filter((r) => r.score !== undefined).length, 10);
  assert.ok(rows.slice(10).every((r) => r.score === undefined));
  state = sensitivityStream('s1', [...sensitivityPoints(40).slice(30), sensitivityDone(40)]).reduce(reduce, state);
  assert.equal(state.sensitivity!.file, '/workspace/mobilenet.sensitivity.json');
  assert.equal(state.sensitivity!.entries.every((e) => e.points.length === 3), true);
  // The run is still there to go back to.
  assert.equal(reduce(state, { type: 'ui/selectRun', runId: 'r1' }).focus, 'run');
});

test('the sensitivity table sorts by score (mean metric fall) by default, by any column on a header click, the other way on a second', () => {
  const state = sensitivityStream('s1', [sensitivityStart(12), ...sensitivityPoints(12)]).reduce(reduce, initialState());
  const view = state.sensitivity!;
  const scores = sensitivityRows(view).map((r) => r.score!);
  assert.deepEqual(scores, [...scores].sort((a, b) => b - a), 'most sensitive first');
  // The score is the engine's: the mean over the ratios of dense − metric.
  const top = sensitivityRows(view)[0];
  const expected = top.entry.points.reduce((s, p) => s + (DENSE_METRIC - p.metric), 0) / top.entry.points.length;
  assert.ok(Math.abs(top.score! - expected) < 1e-12);
  assert.equal(top.key, String(fragilest(12)));

  let sorted = reduce(state, { type: 'ui/sortSensitivity', column: 'channels' });
  assert.deepEqual(sensitivitySortOf(sorted), { column: 'channels', descending: true });
  const channels = sensitivityRows(sorted.sensitivity, sensitivitySortOf(sorted)).map((r) => r.entry.channels);
  assert.deepEqual(channels, [...channels].sort((a, b) => b - a));
  sorted = reduce(sorted, { type: 'ui/sortSensitivity', column: 'channels' });
  assert.deepEqual(sensitivitySortOf(sorted), { column: 'channels', descending: false });
  sorted = reduce(sorted, { type: 'ui/sortSensitivity', column: 'group' });
  assert.deepEqual(sensitivityRows(sorted.sensitivity, sensitivitySortOf(sorted)).map((r) => r.entry.id), Array.from({ length: 12 }, (_, k) => k), 'names and ids read up on the first click');
  const latency = reduce(state, { type: 'ui/sortSensitivity', column: 'latency' });
  const shares = sensitivityRows(latency.sensitivity, sensitivitySortOf(latency)).map((r) => r.entry.latencyShare!);
  assert.deepEqual(shares, [...shares].sort((a, b) => b - a));
});

test('a replayed sensitivity analysis (a reloaded panel) does not take the focus from a run; a new one does', () => {
  const messages = sensitivityStream('s1', [sensitivityStart(5), ...sensitivityPoints(5), sensitivityDone(5)]);
  let state = messages.reduce(reduce, initialState());
  state = reduce(state, { type: 'ui/focus', focus: 'run' });
  const replayed = restoreState(JSON.parse(JSON.stringify(messages.reduce(reduce, state))));
  assert.equal(replayed.focus, 'run');
  assert.equal(replayed.sensitivity!.entries.every((e) => e.points.length === 3), true, 'the replay rebuilt the same curves');
  const next = sensitivityStream('s2', [sensitivityStart(5)]).reduce(reduce, replayed);
  assert.equal(next.focus, 'sensitivity');
  assert.equal(next.sensitivity!.analysisId, 's2');
  // Hovering a row highlights its entry; leaving clears it.
  const hovered = reduce(next, { type: 'ui/highlightEntry', id: '3' });
  assert.equal(hovered.highlightedEntry, '3');
  assert.equal(reduce(hovered, { type: 'ui/highlightEntry', id: undefined }).highlightedEntry, undefined);
});

test('a failed or cancelled sensitivity analysis keeps its error', () => {
  const state = sensitivityStream('s1', [sensitivityStart(3), { type: 'error', message: 'Session cancelled', cancelled: true }]).reduce(reduce, initialState());
  assert.deepEqual(state.sensitivity!.error, { message: 'Session cancelled', file: undefined, field: undefined, cancelled: true });
});

/** The fixture's most fragile of the first `count` groups. */
function fragilest(count: number): number {
  return Array.from({ length: count }, (_, k) => k).sort((a, b) => fragility(b) - fragility(a))[0];
}

test('sparsity events fold into per-layer sparsity through each layer\'s group, changing step by step, and into the heat map', () => {
  let state = feed(initialState(), 'r1', sessionUntilFinetune().slice(0, 4)); // start … first layers event
  const layers = activeView(state)!.layers!.layers;
  const stream = sparsityStream(6);
  const seen: number[][] = [];
  for (const event of stream) {
    state = feed(state, 'r1', [event]);
    if (event.type === 'sparsity') seen.push(layerRows(layers, activeView(state)!.sparsity).map((r) => r.sparsity));
  }
  const view = activeView(state)!;
  assert.equal(view.sparsity?.criterion, 'auxiliary group norm \u2264 1e-6');
  // conv2d_2 and conv2d_3 share group 1 (32 channels): both read its zero/channels.
  const rows = layerRows(layers, view.sparsity);
  const byName = Object.fromEntries(rows.map((r) => [r.layer.name, r]));
  assert.equal(byName.conv2d_2.sparsity, Math.round(32 * 0.5) / 32);
  assert.equal(byName.conv2d_3.sparsity, byName.conv2d_2.sparsity);
  assert.equal(byName.conv2d_1.sparsity, Math.round(16 * 0.3) / 16);
  assert.ok(byName.conv2d_1.live && !byName.logits.live, 'the blocked output layer has no group: its kernel sparsity stays');
  // Nonzero before the prune step and growing: every grouped layer's sparsity rises from event to event.
  for (let i = 1; i < seen.length; i++) for (const j of [0, 1, 2, 3]) assert.ok(seen[i][j] >= seen[i - 1][j], `layer ${j} at event ${i}`);
  assert.ok(seen[0][3] > 0 && seen.at(-1)![3] > seen[0][3]);
  // The heat map: one column per event, one row per group.
  assert.deepEqual(view.sparsityHistory?.steps, [0, 10, 20, 30, 40, 50]);
  assert.deepEqual(Object.keys(view.sparsityHistory!.groups).sort(), ['0', '1', '2']);
  assert.equal(view.sparsityHistory!.groups['1'].at(-1), 0.5);
  // It survives setState/getState (plain JSON).
  assert.deepEqual(restoreState(JSON.parse(JSON.stringify(state))).views.r1.sparsityHistory, view.sparsityHistory);
});

test('the heat map stays bounded over a long run and always ends at the newest step', () => {
  let history: SparsityHistory | undefined;
  for (let step = 0; step < 1000; step++) history = appendSparsityColumn(history, step, { 7: { channels: 10, zero: step % 11 } });
  assert.ok(history!.steps.length <= MAX_HEATMAP_STEPS, `${history!.steps.length} columns`);
  assert.ok(history!.steps.length >= MAX_HEATMAP_STEPS / 2);
  assert.equal(history!.steps.at(-1), 999);
  assert.equal(history!.groups['7'].length, history!.steps.length);
  assert.equal(history!.groups['7'].at(-1), (999 % 11) / 10);
  assert.deepEqual([...history!.steps].sort((a, b) => a - b), history!.steps, 'columns stay in step order');
});

test('progress events give one session-wide progress and ETA; step ETAs stop counting; done and error clear it', () => {
  const start = sessionUntilFinetune()[0];
  let state = feed(initialState(), 'r1', [start, { type: 'progress', progress: 0, activity: 'measuring the dense model, 3 of 20 runs' }]);
  let p = headerProgress(activeView(state), formatEta)!;
  assert.deepEqual(p, { percent: 0, indeterminate: true, eta: '', activity: 'measuring the dense model, 3 of 20 runs' }, 'nothing known: words, no 0%');
  state = feed(state, 'r1', [{ type: 'progress', progress: 0.434, etaMs: 90_000, activity: 'sparsity training, epoch 2 of 5' }]);
  // A step's per-phase estimate ("0 s left" at the end of a phase) no longer moves the header.
  state = feed(state, 'r1', [{ type: 'step', phase: 'train', epoch: 2, step: 3, stepsPerEpoch: 4, loss: 0.5, learningRate: 0.01, etaMs: 0, progress: 0.9 }]);
  p = headerProgress(activeView(state), formatEta)!;
  assert.equal(p.percent, 43);
  assert.equal(p.eta, `${formatEta(90_000)} left`);
  assert.equal(p.indeterminate, false);
  assert.equal(p.activity, 'sparsity training, epoch 2 of 5');
  // Out-of-range numbers are clamped; an ETA the engine dropped is gone, not stale.
  state = feed(state, 'r1', [{ type: 'progress', progress: 1.7, activity: 'saving' }]);
  assert.deepEqual(headerProgress(activeView(state), formatEta), { percent: 100, indeterminate: false, eta: '', activity: 'saving' });
  const done = feed(state, 'r1', [DONE]);
  assert.equal(headerProgress(activeView(done), formatEta), undefined, 'finished: no progress, no ETA');
  assert.equal(activeView(done)!.etaMs, undefined);
  assert.equal(activeView(done)!.activity, undefined);
  const failed = feed(state, 'r1', [{ type: 'error', message: 'boom' }]);
  assert.equal(headerProgress(activeView(failed), formatEta), undefined);
  // Without progress events (older engines) the steps still drive it.
  const old = feed(initialState(), 'r2', sessionUntilFinetune().slice(0, 8));
  assert.equal(activeView(old)!.sessionProgress, undefined);
  assert.ok(activeView(old)!.progress > 0);
});

test('400 layers: sort by every column, filter by status and name, and a virtual window of the visible rows', () => {
  const layers = bigLayersEvent(400).layers;
  const all = layerRows(layers, undefined);
  assert.equal(all.length, 400);
  assert.deepEqual(all.map((r) => r.index), layers.map((_, i) => i), 'model order by default');
  const check = (column: LayerColumn, value: (r: LayerRow) => number | string | undefined, descending: boolean) => {
    const rows = layerRows(layers, undefined, { column, descending });
    const values = rows.map(value).filter((v) => v !== undefined);
    const sorted = [...values].sort((a, b) => (typeof a === 'number' ? (a as number) - (b as number) : String(a).localeCompare(String(b), 'en', { numeric: true })));
    assert.deepEqual(values, descending ? sorted.reverse() : sorted, `${column} ${descending ? 'descending' : 'ascending'}`);
    return rows;
  };
  check('name', (r) => r.layer.name, false);
  check('params', (r) => r.layer.params, true);
  check('flops', (r) => r.layer.flops, true);
  check('sparsity', (r) => r.sparsity, true);
  check('kept', (r) => r.keptFraction, false);
  const byLatency = check('latency', (r) => r.latencyMs, true);
  assert.equal(byLatency.filter((r) => r.latencyMs !== undefined).length, 100);
  assert.ok(byLatency.slice(100).every((r) => r.latencyMs === undefined), 'unmeasured layers last');
  // Live sparsity sorts too: it replaces the kernel's.
  const live = reduceRunView(emptyRunView('x'), bigSparsityEvent(400, 3)).sparsity;
  const bySparsity = layerRows(layers, live, { column: 'sparsity', descending: true });
  assert.equal(bySparsity.filter((r) => r.live).length, 360, 'every grouped layer reads its group');
  assert.ok(bySparsity.every((r, i) => i === 0 || bySparsity[i - 1].sparsity >= r.sparsity));

  const blocked = layerRows(layers, undefined, DEFAULT_LAYER_SORT, { status: 'blocked', query: '' });
  assert.equal(blocked.length, 40);
  assert.ok(blocked.every((r) => r.layer.status === 'blocked'));
  const coupled = layerRows(layers, undefined, DEFAULT_LAYER_SORT, { status: 'coupled', query: '' });
  assert.ok(coupled.length > 0 && coupled.every((r) => r.layer.status === 'coupled'));
  const searched = layerRows(layers, undefined, DEFAULT_LAYER_SORT, { status: 'all', query: '  DEPTHWISE_39 ' });
  assert.deepEqual(searched.map((r) => r.index), [39, 390, 391, 392, 393, 394, 395, 396, 397, 398, 399], 'case-insensitive, trimmed, in model order');

  // The reducer keeps the choice; a second click on the same column flips it.
  let state = reduce(initialState(), { type: 'ui/sortLayers', column: 'flops' });
  assert.deepEqual(layerSortOf(state), { column: 'flops', descending: true });
  state = reduce(state, { type: 'ui/sortLayers', column: 'flops' });
  assert.deepEqual(layerSortOf(state), { column: 'flops', descending: false });
  state = reduce(state, { type: 'ui/sortLayers', column: 'name' });
  assert.deepEqual(layerSortOf(state), { column: 'name', descending: false });
  state = reduce(state, { type: 'ui/filterLayers', query: 'conv' });
  state = reduce(state, { type: 'ui/filterLayers', status: 'prunable' });
  assert.deepEqual(layerFilterOf(state), { status: 'prunable', query: 'conv' });

  // Virtualisation: 26 px rows in a 400 px viewport draw ~16 rows plus the overscan, never 400.
  assert.deepEqual(visibleRange(400, 0, 400, 26, 6), { start: 0, end: 22 });
  assert.deepEqual(visibleRange(400, 26 * 200, 400, 26, 6), { start: 194, end: 222 });
  assert.deepEqual(visibleRange(400, 26 * 400, 400, 26, 6), { start: 393, end: 400 }, 'scrolled past the end');
  assert.deepEqual(visibleRange(0, 0, 400, 26), { start: 0, end: 0 });
  assert.deepEqual(visibleRange(3, 0, 400, 26, 6), { start: 0, end: 3 });
});

test('the runs table: results sortable by every column, dry runs, failures and runs in progress apart', () => {
  const finished = (runId: string, method: string, flops: number, after: number, ms: number, startedAt: number, extra: Partial<RunInfo> = {}): RunInfo => run(runId, startedAt, {
    method, status: 'done',
    summary: {
      ...DONE, method, after: { params: flops / 20, flops }, wallTimeMs: startedAt * 1000,
      metric: { ...DONE.metric!, after },
      latency: { ...DONE.latency!, after: { ...DONE.latency!.after, medianMs: ms, p25Ms: ms - 0.1, p75Ms: ms + 0.2 } },
    },
    ...extra,
  });
  const runs: RunInfo[] = [
    finished('a', 'l1', 2_400_000, 0.981, 2.1, 1),
    finished('b', 'dsp', 1_500_000, 0.978, 1.6, 2),
    finished('c', 'goprune', 1_900_000, 0.9874, 1.9, 3),
    finished('dry', 'l1', 2_000_000, 0.99, 2, 4, { dryRun: true }),
    run('bad', 5, { status: 'error', error: 'Dataset folder not found' }),
    run('stop', 6, { status: 'cancelled' }),
    run('now', 7),
  ];
  const table = runsTable(runs, {});
  assert.deepEqual(table.results.map((r) => r.run.runId), ['c', 'b', 'a'], 'newest first by default');
  assert.deepEqual(table.dryRuns.map((r) => r.runId), ['dry']);
  assert.deepEqual(table.failures.map((r) => r.runId), ['stop', 'bad']);
  assert.deepEqual(table.running.map((r) => r.runId), ['now']);
  const c = table.results[0];
  assert.deepEqual([c.method, c.flops, c.params, c.latencyMs, c.latencyIqr, c.sizeBytes, c.metricName, c.metricBefore, c.metricAfterPruning, c.metricAfter, c.wallTimeMs],
    ['goprune', 1_900_000, 95_000, 1.9, [1.9 - 0.1, 1.9 + 0.2], DONE.size!.after, 'top-1', 0.9912, 0.624, 0.9874, 3000]);
  const order = (column: RunsColumn, descending: boolean) => runsTable(runs, {}, { column, descending }).results.map((r) => r.run.runId);
  assert.deepEqual(order('flops', false), ['b', 'c', 'a']);
  assert.deepEqual(order('latency', false), ['b', 'c', 'a']);
  assert.deepEqual(order('metricAfter', true), ['c', 'a', 'b']);
  assert.deepEqual(order('method', false), ['b', 'c', 'a']);
  assert.deepEqual(order('wallTime', true), ['c', 'b', 'a']);
  // The host's row wins where it sent one (target included); the start event's target otherwise.
  const withRow: RunInfo = { ...runs[0], row: { method: 'l1', target: { flopsReduction: 0.5 }, params: { before: 1, after: 2 }, flops: { before: 3, after: 4 }, wallTimeMs: 5 } };
  assert.deepEqual([runRow(withRow, undefined)!.target, runRow(withRow, undefined)!.flops], ['flopsReduction 50%', 4]);
  assert.equal(targetText({ flops: 0.4 }), 'flops 40%');
  let state = reduce(initialState(), { type: 'ui/sortRuns', column: 'latency' });
  assert.deepEqual(runsSortOf(state), { column: 'latency', descending: true });
  state = reduce(state, { type: 'ui/sortRuns', column: 'latency' });
  assert.deepEqual(runsSortOf(state), { column: 'latency', descending: false });
  // Pareto front: lower cost and better metric; MAE is better lower.
  assert.deepEqual(paretoFront([{ x: 3, y: 0.9 }, { x: 1, y: 0.8 }, { x: 2, y: 0.7 }, { x: 4, y: 0.95 }]), [{ x: 1, y: 0.8 }, { x: 3, y: 0.9 }, { x: 4, y: 0.95 }]);
  assert.deepEqual(paretoFront([{ x: 1, y: 0.3 }, { x: 2, y: 0.1 }, { x: 3, y: 0.2 }], false), [{ x: 1, y: 0.3 }, { x: 2, y: 0.1 }]);
});
