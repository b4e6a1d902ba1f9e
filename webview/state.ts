/**
 * The side panel's state and its pure reducer. Everything here is plain JSON so the webview can
 * hand it to `vscode.setState` and get it back after the view was hidden, moved or reloaded.
 * Series are bounded: a run of any length keeps at most a few hundred points per curve.
 */
import { sensitivityScore, type DataSummary, type DoneEvent, type EngineEvent, type LayerLatencySummary, type LayerStat, type LayersEvent, type ModelSummary, type Phase, type SensitivityEntry, type SparsityEvent, type SensitivityLatency, type SensitivityReport } from '../src/protocol/events.js';
import type { HostMessage, LayerComparisonRow, ReportComparison, RunInfo } from '../src/protocol/webview.js';
import { progressDisplay } from '../src/protocol/format.js';

export const STATE_VERSION = 1;
/** Points kept per curve; beyond this a series halves its density. */
export const MAX_SERIES_POINTS = 400;
/** Warnings kept per run. */
export const MAX_WARNINGS = 20;
/** Run views kept (the active one is never dropped). */
export const MAX_RUN_VIEWS = 12;
/** Columns (steps) of the sparsity heat map kept per run; beyond this every other column goes and the stride doubles. */
export const MAX_HEATMAP_STEPS = 120;

export interface Point {
  x: number;
  y: number;
}

/**
 * A bounded series: it keeps every `stride`-th sample and doubles the stride (dropping every
 * other kept point) when full, so density stays uniform over the whole run. `latest` is always
 * the newest sample, so the curve ends at the current value.
 */
export interface Series {
  points: Point[];
  stride: number;
  seen: number;
  latest?: Point;
}

export interface Curves {
  /** Per-epoch training loss. */
  loss: Series;
  accuracy: Series;
  valLoss: Series;
  valAccuracy: Series;
  /** The validation metric when it is not top-1 (F1, MAE, agreement with the dense model, ...), named by `valMetricName`. Absent in states saved before it existed. */
  valMetric?: Series;
  /** Model FLOPs at the end of each epoch. */
  flops: Series;
  /** Per-step training loss (x in fractional epochs). */
  stepLoss: Series;
}

export interface LayerSnapshot {
  phase: Phase;
  step: number;
  layers: LayerStat[];
  totals: LayersEvent['totals'];
}

/** The method's latest per-group sparsity (zero channels under its criterion), from `sparsity` events. */
export interface LiveSparsity {
  phase: Phase;
  method: string;
  step: number;
  epoch: number;
  criterion: string;
  /** By group id: zero channels of the group's channels. */
  groups: Record<string, { channels: number; zero: number }>;
}

/**
 * Sparsity over the whole run for the heat map: one column per kept `sparsity` event (bounded like a
 * series: every `stride`-th event, the newest always last), one row per group, fractions rounded to 0.1%.
 */
export interface SparsityHistory {
  steps: number[];
  /** null where the group had no value yet (JSON keeps it, unlike NaN). */
  groups: Record<string, (number | null)[]>;
  stride: number;
  seen: number;
  /** The last column is off the stride: the next event replaces it. */
  provisional?: boolean;
}

export interface RunError {
  message: string;
  file?: string;
  field?: string;
  cancelled?: boolean;
}

/** What the panel knows about one run, built from its engine events. */
export interface RunView {
  runId: string;
  sessionId?: string;
  method?: string;
  backend?: string;
  configPath?: string;
  model?: ModelSummary;
  target?: Record<string, number>;
  /** The data the run trains and evaluates on: its format from the start event, its description once loaded. */
  data?: DataSummary;
  /** The training objective in words, once the data is loaded. */
  objective?: string;
  dryRun?: boolean;
  phase?: Phase;
  phaseMessage?: string;
  /** Overall progress in [0, 1]. */
  progress: number;
  /** Until the session ends; from `progress` events once the engine sends them, else the step's per-phase estimate. */
  etaMs?: number;
  /** What the session is doing, in words, from the latest `progress` event. */
  activity?: string;
  /** Set once a `progress` event arrived: from then on only those move progress and ETA (step ETAs are per phase). */
  sessionProgress?: boolean;
  /** Latest per-group sparsity while the method forms it. */
  sparsity?: LiveSparsity;
  /** Per-group sparsity over the run (the heat map). */
  sparsityHistory?: SparsityHistory;
  epoch?: { phase: Phase; epoch: number; epochs: number };
  /** Name of the validation metric in `curves.valMetric`, from the epochs that reported it. */
  valMetricName?: string;
  /** Epoch events seen; the x axis of the curves (continues across train and fine-tune). */
  epochCount: number;
  /** The latest `layers` event. */
  layers?: LayerSnapshot;
  curves: Curves;
  /** Method signals by name (stability, residual, ...), x = the signal's step. */
  signals: Record<string, Series>;
  done?: DoneEvent;
  error?: RunError;
  warnings: string[];
}

/** A model analysis (no training): prunability per layer. */
export interface AnalysisView {
  modelPath: string;
  sessionId?: string;
  model?: ModelSummary;
  backend?: string;
  layers?: LayerSnapshot;
  done?: DoneEvent;
  error?: RunError;
  warnings: string[];
}

/** A sensitivity analysis of a config's model: its curves as they stream in. */
export interface SensitivityView {
  analysisId: string;
  configPath: string;
  model?: string;
  mode?: SensitivityReport['mode'];
  metric?: SensitivityReport['metric'];
  samples?: number;
  ratios?: number[];
  dense?: SensitivityReport['dense'];
  latency?: SensitivityLatency;
  backend?: string;
  cached?: boolean;
  /** One per channel group (or layer), in the engine's order; points arrive one by one. */
  entries: SensitivityEntry[];
  /** The report file, once written. */
  file?: string;
  wallTimeMs?: number;
  error?: RunError;
}

/** Columns of the sensitivity table, sortable by a click on their header. */
export type SensitivityColumn = 'group' | 'producers' | 'channels' | 'flops' | 'latency' | 'score';

export interface SensitivitySort {
  column: SensitivityColumn;
  descending: boolean;
}

/** Columns of the layer table. */
export type LayerColumn = 'order' | 'name' | 'params' | 'flops' | 'latency' | 'sparsity' | 'kept';
export interface LayerSort {
  column: LayerColumn;
  descending: boolean;
}
export type LayerStatusFilter = 'all' | LayerStat['status'];
export interface LayerFilter {
  status: LayerStatusFilter;
  /** Case-insensitive substring of the layer's name. */
  query: string;
}

/** Columns of the runs table. */
export type RunsColumn = 'method' | 'target' | 'params' | 'flops' | 'latency' | 'size' | 'metricBefore' | 'metricAfterPruning' | 'metricAfter' | 'wallTime' | 'started';
export interface RunsSort {
  column: RunsColumn;
  descending: boolean;
}

/** Columns of the comparison with the original (numbers sort by the pruned model's value). */
export type ComparisonColumn = 'order' | 'name' | 'type' | 'channels' | 'params' | 'flops' | 'latency';
export interface ComparisonSort {
  column: ComparisonColumn;
  descending: boolean;
}

/** Which the panel shows: the active run, the latest analysis or the latest sensitivity analysis. */
export type Focus = 'run' | 'analysis' | 'sensitivity';

export interface PanelState {
  version: typeof STATE_VERSION;
  runs: RunInfo[];
  activeRunId?: string;
  views: Record<string, RunView>;
  analysis?: AnalysisView;
  focus: Focus;
  /** Layer whose norm histogram is shown. */
  selectedLayer?: string;
  sensitivity?: SensitivityView;
  /** How the sensitivity table is sorted (most sensitive first unless the user chose otherwise). */
  sensitivitySort?: SensitivitySort;
  /** The sensitivity entry whose curve is highlighted (the table row under the pointer). */
  highlightedEntry?: string;
  /** How the layer table is sorted and filtered (model order, everything, when unset). */
  layerSort?: LayerSort;
  layerFilter?: LayerFilter;
  /** How the runs table is sorted (newest first when unset). */
  runsSort?: RunsSort;
  /** A report in the editor area: its layer-by-layer comparison with the original. */
  report?: ReportComparison;
  /** `comparison`: only the run's summary and its comparison (Compare with original). */
  showOnly?: 'comparison';
  /** How the comparison is sorted (model order when unset). */
  comparisonSort?: ComparisonSort;
}

/** Actions that come from the panel itself rather than the host. */
export type UiAction =
  | { type: 'ui/selectRun'; runId: string }
  | { type: 'ui/selectLayer'; name: string }
  | { type: 'ui/focus'; focus: Focus }
  /** A click on a sensitivity column header: sort by it, or flip the order when it already sorts. */
  | { type: 'ui/sortSensitivity'; column: SensitivityColumn }
  | { type: 'ui/highlightEntry'; id?: string }
  /** A click on a layer column header: sort by it, or flip the order when it already sorts. */
  | { type: 'ui/sortLayers'; column: LayerColumn }
  | { type: 'ui/filterLayers'; status?: LayerStatusFilter; query?: string }
  | { type: 'ui/sortRuns'; column: RunsColumn }
  | { type: 'ui/sortComparison'; column: ComparisonColumn };

export type PanelAction = HostMessage | UiAction;

export function initialState(): PanelState {
  return { version: STATE_VERSION, runs: [], views: {}, focus: 'run' };
}

/** Accepts whatever `getState()` returned; anything unrecognised starts fresh. */
export function restoreState(saved: unknown): PanelState {
  if (typeof saved !== 'object' || saved === null) return initialState();
  const s = saved as Partial<PanelState>;
  if (s.version !== STATE_VERSION || !Array.isArray(s.runs) || typeof s.views !== 'object' || s.views === null) {
    return initialState();
  }
  return { ...initialState(), ...s } as PanelState;
}

export function emptySeries(): Series {
  return { points: [], stride: 1, seen: 0 };
}

export function appendPoint(series: Series, point: Point, max = MAX_SERIES_POINTS): Series {
  const index = series.seen;
  let { points, stride } = series;
  if (index % stride === 0) {
    points = [...points, point];
    if (points.length > max) {
      points = points.filter((_, i) => i % 2 === 0);
      stride *= 2;
    }
  }
  return { points, stride, seen: index + 1, latest: point };
}

/** The points to draw: the kept samples plus the newest one. */
export function seriesPoints(series: Series): Point[] {
  const last = series.points[series.points.length - 1];
  if (series.latest && (!last || last.x !== series.latest.x)) return [...series.points, series.latest];
  return series.points;
}

export function emptyRunView(runId: string): RunView {
  return {
    runId,
    progress: 0,
    epochCount: 0,
    curves: {
      loss: emptySeries(),
      accuracy: emptySeries(),
      valLoss: emptySeries(),
      valAccuracy: emptySeries(),
      valMetric: emptySeries(),
      flops: emptySeries(),
      stepLoss: emptySeries(),
    },
    signals: {},
    warnings: [],
  };
}

export function reduce(state: PanelState, action: PanelAction): PanelState {
  switch (action.type) {
    case 'runs':
      return pruneViews({ ...state, runs: action.runs, activeRunId: pickActive(action.runs, action.activeRunId, state.activeRunId) });
    case 'snapshot':
      return applySnapshot(state, action);
    case 'engineEvent':
      return applyRunEvent(state, action.runId, action.event, true);
    case 'analysis':
      return applyAnalysisEvent(state, action.modelPath, action.event, action.replay === true);
    case 'ui/selectRun':
      return { ...state, activeRunId: action.runId, focus: 'run' };
    case 'ui/selectLayer':
      return { ...state, selectedLayer: action.name };
    case 'ui/focus':
      return { ...state, focus: action.focus };
    case 'sensitivity':
      return applySensitivityEvent(state, action.analysisId, action.configPath, action.event, action.replay === true);
    case 'ui/sortSensitivity': {
      const current = sensitivitySortOf(state);
      // Numbers read most-first, names alphabetically, on the first click.
      const descending = current.column === action.column ? !current.descending : action.column !== 'group' && action.column !== 'producers';
      return { ...state, sensitivitySort: { column: action.column, descending } };
    }
    case 'ui/highlightEntry':
      return state.highlightedEntry === action.id ? state : { ...state, highlightedEntry: action.id };
    case 'ui/sortLayers': {
      const current = layerSortOf(state);
      const descending = current.column === action.column ? !current.descending : action.column !== 'name' && action.column !== 'order';
      return { ...state, layerSort: { column: action.column, descending } };
    }
    case 'ui/filterLayers': {
      const current = layerFilterOf(state);
      return { ...state, layerFilter: { status: action.status ?? current.status, query: action.query ?? current.query } };
    }
    case 'ui/sortRuns': {
      const current = runsSortOf(state);
      const descending = current.column === action.column ? !current.descending : action.column !== 'method' && action.column !== 'target';
      return { ...state, runsSort: { column: action.column, descending } };
    }
    case 'ui/sortComparison': {
      const current = comparisonSortOf(state);
      const descending = current.column === action.column ? !current.descending : action.column !== 'name' && action.column !== 'type' && action.column !== 'order';
      return { ...state, comparisonSort: { column: action.column, descending } };
    }
    default:
      return state;
  }
}

function pickActive(runs: RunInfo[], requested: string | undefined, current: string | undefined): string | undefined {
  if (requested !== undefined && runs.some((r) => r.runId === requested)) return requested;
  if (current !== undefined && runs.some((r) => r.runId === current)) return current;
  return newestRun(runs)?.runId;
}

function newestRun(runs: RunInfo[]): RunInfo | undefined {
  let best: RunInfo | undefined;
  for (const r of runs) if (!best || r.startedAt >= best.startedAt) best = r;
  return best;
}

/** Drops views of runs the host no longer lists, and the oldest beyond MAX_RUN_VIEWS. */
function pruneViews(state: PanelState): PanelState {
  const listed = new Map(state.runs.map((r) => [r.runId, r]));
  let ids = Object.keys(state.views).filter((id) => listed.has(id) || id === state.activeRunId);
  if (ids.length > MAX_RUN_VIEWS) {
    ids.sort((a, b) => (listed.get(b)?.startedAt ?? 0) - (listed.get(a)?.startedAt ?? 0));
    const keep = ids.slice(0, MAX_RUN_VIEWS);
    if (state.activeRunId && state.views[state.activeRunId] && !keep.includes(state.activeRunId)) {
      keep[keep.length - 1] = state.activeRunId;
    }
    ids = keep;
  }
  if (ids.length === Object.keys(state.views).length) return state;
  const views: Record<string, RunView> = {};
  for (const id of ids) views[id] = state.views[id];
  return { ...state, views };
}

function applySnapshot(state: PanelState, msg: Extract<HostMessage, { type: 'snapshot' }>): PanelState {
  // Runs whose events are replayed start from scratch; other runs keep what the panel restored.
  const replayed = new Set(msg.events.map((e) => e.runId));
  const views: Record<string, RunView> = {};
  for (const [id, view] of Object.entries(state.views)) if (!replayed.has(id)) views[id] = view;
  let next: PanelState = {
    ...state,
    runs: msg.runs,
    views,
    activeRunId: pickActive(msg.runs, msg.activeRunId, state.activeRunId),
    report: msg.report,
    showOnly: msg.show,
  };
  for (const { runId, event } of msg.events) next = applyRunEvent(next, runId, event, false);
  return pruneViews(next);
}

function applyRunEvent(state: PanelState, runId: string, event: EngineEvent, follow: boolean): PanelState {
  const view = reduceRunView(state.views[runId] ?? emptyRunView(runId), event);
  let next: PanelState = { ...state, views: { ...state.views, [runId]: view }, runs: updateRunInfo(state.runs, runId, event) };
  if (event.type === 'start' && follow) next = { ...next, activeRunId: runId, focus: 'run' };
  else if (next.activeRunId === undefined) next = { ...next, activeRunId: runId };
  return event.type === 'start' ? pruneViews(next) : next;
}

/** Keeps the runs list's status in step with the events, before the host's next `runs`. */
function updateRunInfo(runs: RunInfo[], runId: string, event: EngineEvent): RunInfo[] {
  const index = runs.findIndex((r) => r.runId === runId);
  if (index < 0) {
    if (event.type !== 'start') return runs;
    const added: RunInfo = { runId, configPath: event.configPath ?? '', method: event.method, status: 'running', startedAt: 0 };
    return [...runs, added];
  }
  const run = runs[index];
  let updated: RunInfo | undefined;
  if (event.type === 'done') {
    updated = { ...run, status: 'done', summary: event, output: event.output ?? run.output, report: event.report ?? run.report };
  } else if (event.type === 'error') {
    updated = { ...run, status: event.cancelled ? 'cancelled' : 'error', error: event.message };
  } else if (event.type === 'start' && run.status !== 'running') {
    updated = { ...run, status: 'running', method: event.method };
  }
  if (!updated) return runs;
  const copy = runs.slice();
  copy[index] = updated;
  return copy;
}

export function reduceRunView(view: RunView, event: EngineEvent): RunView {
  switch (event.type) {
    case 'start':
      return {
        ...emptyRunView(view.runId),
        sessionId: event.sessionId,
        method: event.method,
        backend: event.backend,
        configPath: event.configPath,
        model: event.model,
        target: event.target,
        data: event.data,
        dryRun: event.dryRun,
        phase: 'load',
      };
    case 'data':
      return { ...view, data: event.data, objective: event.objective };
    case 'phase':
      return { ...view, phase: event.phase, phaseMessage: event.message };
    case 'layers':
      return { ...view, layers: { phase: event.phase, step: event.step, layers: event.layers, totals: event.totals } };
    case 'step': {
      const fraction = event.stepsPerEpoch > 0 ? Math.min(1, Math.max(0, (event.step + 1) / event.stepsPerEpoch)) : 0;
      const x = view.epochCount + fraction;
      return {
        ...view,
        phase: event.phase,
        ...stepProgress(view, event.progress, event.etaMs),
        curves: { ...view.curves, stepLoss: appendPoint(view.curves.stepLoss, { x, y: event.loss }) },
      };
    }
    case 'epoch': {
      const x = view.epochCount + 1;
      const c = view.curves;
      // Top-1 is already the val accuracy curve; any other metric gets its own, by name.
      const otherMetric = event.valAccuracy === undefined ? event.valMetric : undefined;
      return {
        ...view,
        valMetricName: otherMetric?.name ?? view.valMetricName,
        phase: event.phase,
        ...stepProgress(view, event.progress, event.etaMs),
        epoch: { phase: event.phase, epoch: event.epoch, epochs: event.epochs },
        epochCount: x,
        curves: {
          ...c,
          loss: appendPoint(c.loss, { x, y: event.loss }),
          accuracy: event.accuracy === undefined ? c.accuracy : appendPoint(c.accuracy, { x, y: event.accuracy }),
          valLoss: event.valLoss === undefined ? c.valLoss : appendPoint(c.valLoss, { x, y: event.valLoss }),
          valAccuracy: event.valAccuracy === undefined ? c.valAccuracy : appendPoint(c.valAccuracy, { x, y: event.valAccuracy }),
          valMetric: otherMetric ? appendPoint(c.valMetric ?? emptySeries(), { x, y: otherMetric.value }) : c.valMetric,
          flops: event.flops === undefined ? c.flops : appendPoint(c.flops, { x, y: event.flops }),
        },
      };
    }
    case 'signal': {
      const series = view.signals[event.name] ?? emptySeries();
      return { ...view, signals: { ...view.signals, [event.name]: appendPoint(series, { x: event.step, y: event.value }) } };
    }
    case 'sparsity':
      return foldSparsity(view, event);
    case 'progress':
      return {
        ...view,
        sessionProgress: true,
        progress: Number.isFinite(event.progress) ? Math.min(1, Math.max(0, event.progress)) : view.progress,
        etaMs: event.etaMs !== undefined && Number.isFinite(event.etaMs) ? Math.max(0, event.etaMs) : undefined,
        activity: event.activity || undefined,
      };
    case 'warning':
      return { ...view, warnings: [...view.warnings, event.message].slice(-MAX_WARNINGS) };
    case 'log':
      return event.level === 'warn' ? { ...view, warnings: [...view.warnings, event.message].slice(-MAX_WARNINGS) } : view;
    case 'done':
      return { ...view, done: event, layers: withLayerLatency(view.layers, event.layerLatency), progress: 1, etaMs: undefined, activity: undefined, method: view.method ?? event.method, backend: view.backend ?? event.backend };
    case 'error':
      return { ...view, error: { message: event.message, file: event.file, field: event.field, cancelled: event.cancelled }, etaMs: undefined, activity: undefined };
    default:
      return view;
  }
}

/** Steps and epochs move progress only until the engine sends its session-wide `progress` events. */
function stepProgress(view: RunView, progress: number, etaMs: number): Pick<RunView, 'progress' | 'etaMs'> {
  return view.sessionProgress ? { progress: view.progress, etaMs: view.etaMs } : { progress, etaMs };
}

function foldSparsity(view: RunView, event: SparsityEvent): RunView {
  const groups: LiveSparsity['groups'] = {};
  for (const g of event.groups) if (g.channels > 0) groups[String(g.group)] = { channels: g.channels, zero: Math.min(g.channels, Math.max(0, g.zero)) };
  const sparsity: LiveSparsity = { phase: event.phase, method: event.method, step: event.step, epoch: event.epoch, criterion: event.criterion, groups };
  return { ...view, sparsity, sparsityHistory: appendSparsityColumn(view.sparsityHistory, event.step, groups) };
}

/**
 * Adds one heat map column: every `stride`-th event is kept, any other one only until the next arrives
 * (so the newest always shows); when full, every other column goes (the newest stays) and the stride doubles.
 */
export function appendSparsityColumn(history: SparsityHistory | undefined, step: number, groups: LiveSparsity['groups'], max = MAX_HEATMAP_STEPS): SparsityHistory {
  const h = history ?? { steps: [], groups: {}, stride: 1, seen: 0 };
  const index = h.seen;
  const replace = h.provisional === true && h.steps.length > 0;
  const width = replace ? h.steps.length - 1 : h.steps.length;
  let steps = [...h.steps.slice(0, width), step];
  let rows: Record<string, (number | null)[]> = {};
  for (const id of new Set([...Object.keys(h.groups), ...Object.keys(groups)])) {
    const old = h.groups[id] ?? [];
    const row = old.slice(0, width);
    while (row.length < width) row.push(null);
    const g = groups[id];
    // A group this event does not mention keeps its last value.
    row.push(g ? Math.round((g.zero / g.channels) * 1000) / 1000 : (row.at(-1) ?? null));
    rows[id] = row;
  }
  let stride = h.stride;
  if (steps.length > max) {
    const halve = <T>(list: T[]) => list.filter((_, i) => i % 2 === 0 || i === list.length - 1);
    steps = halve(steps);
    rows = Object.fromEntries(Object.entries(rows).map(([id, row]) => [id, halve(row)]));
    stride *= 2;
  }
  return { steps, groups: rows, stride, seen: index + 1, provisional: index % h.stride !== 0 };
}

function applyAnalysisEvent(state: PanelState, modelPath: string, event: EngineEvent, replayed: boolean): PanelState {
  const fresh = event.type === 'start' || !state.analysis || state.analysis.modelPath !== modelPath;
  // The host replays the last analysis to a (re)loaded panel, a new editor-area panel too: that must not take the focus from a run.
  const replay = replayed || (event.type === 'start' && state.analysis?.sessionId === event.sessionId && state.analysis.modelPath === modelPath);
  const current: AnalysisView = fresh ? { modelPath, warnings: [] } : state.analysis!;
  let analysis: AnalysisView = current;
  switch (event.type) {
    case 'start':
      analysis = { ...current, sessionId: event.sessionId, model: event.model, backend: event.backend };
      break;
    case 'layers':
      analysis = { ...current, layers: { phase: event.phase, step: event.step, layers: event.layers, totals: event.totals } };
      break;
    case 'done':
      analysis = { ...current, done: event };
      break;
    case 'error':
      analysis = { ...current, error: { message: event.message, file: event.file, field: event.field, cancelled: event.cancelled } };
      break;
    case 'warning':
      analysis = { ...current, warnings: [...current.warnings, event.message].slice(-MAX_WARNINGS) };
      break;
    default:
      break;
  }
  return { ...state, analysis, focus: fresh && (!replay || state.runs.length === 0) ? 'analysis' : state.focus };
}

function applySensitivityEvent(state: PanelState, analysisId: string, configPath: string, event: EngineEvent, replayed: boolean): PanelState {
  const current = state.sensitivity?.analysisId === analysisId ? state.sensitivity : undefined;
  // The host replays the last analysis to a (re)loaded panel: that must not take the focus from a run.
  const replay = replayed || (event.type === 'sensitivityStart' && current !== undefined);
  let view: SensitivityView;
  switch (event.type) {
    case 'sensitivityStart':
      view = {
        analysisId, configPath, model: event.model, mode: event.mode, metric: event.metric, samples: event.samples, ratios: event.ratios,
        dense: event.dense, latency: event.latency, backend: event.backend, cached: event.cached,
        entries: event.entries.map((e) => ({ ...e, points: [] })),
      };
      break;
    case 'sensitivityPoint': {
      const base = current ?? { analysisId, configPath, entries: [] };
      const index = base.entries.findIndex((e) => e.id === event.entry.id);
      const old = index >= 0 ? base.entries[index] : { ...event.entry, points: [] };
      const points = [...old.points.filter((p) => p.ratio !== event.point.ratio), event.point].sort((a, b) => a.ratio - b.ratio);
      const entries = base.entries.slice();
      entries.splice(index >= 0 ? index : entries.length, index >= 0 ? 1 : 0, { ...old, ...event.entry, points });
      view = { ...base, entries };
      break;
    }
    case 'sensitivityDone': {
      const r = event.report;
      view = {
        ...(current ?? { analysisId, configPath, entries: [] }),
        model: r.model, mode: r.mode, metric: r.metric, samples: r.samples, ratios: r.ratios, dense: r.dense, latency: r.latency,
        entries: r.groups, file: event.file, wallTimeMs: event.wallTimeMs,
      };
      break;
    }
    case 'error':
      view = { ...(current ?? { analysisId, configPath, entries: [] }), error: { message: event.message, file: event.file, field: event.field, cancelled: event.cancelled } };
      break;
    default:
      return state;
  }
  // A new analysis takes the panel's focus; its later events leave it where the user put it.
  const fresh = current === undefined || (event.type === 'sensitivityStart' && !replay);
  return { ...state, sensitivity: view, focus: fresh && (!replay || state.runs.length === 0) ? 'sensitivity' : state.focus };
}

// ---- selectors ----

export const DEFAULT_SENSITIVITY_SORT: SensitivitySort = { column: 'score', descending: true };

export function sensitivitySortOf(state: PanelState): SensitivitySort {
  return state.sensitivitySort ?? DEFAULT_SENSITIVITY_SORT;
}

/** One row of the sensitivity table: an entry, its shares and its score (mean metric fall over its points). */
export interface SensitivityRow {
  /** The entry's id as a string (data attributes, highlighting). */
  key: string;
  entry: SensitivityEntry;
  /** `sensitivityScore`: mean fall of the metric from the dense model's over the measured ratios; undefined before any point. */
  score?: number;
}

/** The table's rows in the chosen order; entries without a value in the sorted column go last. */
export function sensitivityRows(view: SensitivityView | undefined, sort: SensitivitySort = DEFAULT_SENSITIVITY_SORT): SensitivityRow[] {
  if (!view) return [];
  const rows: SensitivityRow[] = view.entries.map((entry) => ({
    key: String(entry.id),
    entry,
    score: view.metric && view.dense && entry.points.length > 0 ? sensitivityScore({ metric: view.metric, dense: view.dense }, entry) : undefined,
  }));
  const value = (row: SensitivityRow): number | string | undefined => {
    switch (sort.column) {
      case 'group': return typeof row.entry.id === 'number' ? row.entry.id : row.key;
      case 'producers': return row.entry.producers.join(', ');
      case 'channels': return row.entry.channels;
      case 'flops': return row.entry.flopsShare;
      case 'latency': return row.entry.latencyShare;
      case 'score': return row.score;
    }
  };
  const sign = sort.descending ? -1 : 1;
  return rows
    .map((row, index) => ({ row, index, v: value(row) }))
    .sort((a, b) => {
      if (a.v === undefined || b.v === undefined) return a.v === b.v ? a.index - b.index : a.v === undefined ? 1 : -1;
      const order = typeof a.v === 'number' && typeof b.v === 'number' ? a.v - b.v : String(a.v).localeCompare(String(b.v), 'en', { numeric: true });
      return sign * order || a.index - b.index;
    })
    .map(({ row }) => row);
}

export function activeRun(state: PanelState): RunInfo | undefined {
  return state.runs.find((r) => r.runId === state.activeRunId);
}

export function activeView(state: PanelState): RunView | undefined {
  return state.activeRunId === undefined ? undefined : state.views[state.activeRunId];
}

/** The finished run's summary, from its events or, after a reload, from the runs list. */
export function activeSummary(state: PanelState): DoneEvent | undefined {
  return activeView(state)?.done ?? activeRun(state)?.summary;
}

/** Whether a run's accuracy was measured on synthetic data (and so means nothing). */
export function onSyntheticData(view: RunView | undefined, summary: DoneEvent | undefined): boolean {
  return (summary?.data ?? view?.data)?.synthetic === true;
}

/** What a run trains on and how, in words: the data's description (its format until loaded) and the training objective. */
export interface SessionContext {
  data?: string;
  objective?: string;
}

const DATA_FORMATS: Record<DataSummary['format'], string> = {
  npy: '.npy arrays',
  imagefolder: 'image folder',
  images: 'images matched by a glob',
  builtin: 'built-in data set',
  synthetic: 'synthetic data (accuracy is meaningless)',
};

/**
 * The run's data and objective as the session reported them: the data event names both once the data is
 * loaded, the finished session's summary again; before that, the start event's data format.
 */
export function sessionContext(view: RunView | undefined, summary: DoneEvent | undefined): SessionContext {
  const data = summary?.data ?? view?.data;
  const started = summary !== undefined || view?.sessionId !== undefined;
  const described = data ? data.description ?? DATA_FORMATS[data.format] ?? `${data.format} data`
    : started && !summary?.dryRun ? 'none: pruned without fine-tuning' : undefined;
  return { data: described, objective: summary?.metric?.objective ?? view?.objective };
}

/** The layer statistics the panel shows: the analysis or the active run's latest. */
export function shownLayers(state: PanelState): LayerSnapshot | undefined {
  if (state.focus === 'analysis' && state.analysis) return state.analysis.layers;
  return activeView(state)?.layers;
}

/** The selected layer, or the first one with a norm histogram. */
export function selectedLayerStat(state: PanelState): LayerStat | undefined {
  const layers = shownLayers(state)?.layers ?? [];
  return layers.find((l) => l.name === state.selectedLayer) ?? layers.find((l) => l.normHistogram) ?? layers[0];
}

/** Every run of the active run's config (the comparison set). */
export function runsOfConfig(state: PanelState, configPath = activeRun(state)?.configPath ?? activeView(state)?.configPath): RunInfo[] {
  if (configPath === undefined) return [];
  return state.runs.filter((r) => r.configPath === configPath);
}

// ---- the layer table ----

export const DEFAULT_LAYER_SORT: LayerSort = { column: 'order', descending: false };
export const DEFAULT_LAYER_FILTER: LayerFilter = { status: 'all', query: '' };

export function layerSortOf(state: PanelState): LayerSort {
  return state.layerSort ?? DEFAULT_LAYER_SORT;
}

export function layerFilterOf(state: PanelState): LayerFilter {
  return state.layerFilter ?? DEFAULT_LAYER_FILTER;
}

/** The layer's measured time alone: in the pruned model once it was timed (0 for a layer pruning removed), else in the dense one. */
export function layerLatencyMs(layer: LayerStat): number | undefined {
  const t = layer.latency;
  const ms = t?.afterMs ?? t?.beforeMs;
  return typeof ms === 'number' && Number.isFinite(ms) ? ms : undefined;
}

/**
 * The session's per-layer timing (its done event's, at the end) put on the layers it measured, so the
 * layer view's latency column and sort read it; the snapshot is unchanged when nothing was timed.
 */
export function withLayerLatency(snapshot: LayerSnapshot | undefined, timing: LayerLatencySummary | undefined): LayerSnapshot | undefined {
  if (!snapshot || !timing) return snapshot;
  let changed = false;
  const layers = snapshot.layers.map((l) => {
    const t = timing.layers[l.name];
    if (!t) return l;
    changed = true;
    return { ...l, latency: { ...t, backend: timing.backend, batchSize: timing.batchSize } };
  });
  return changed ? { ...snapshot, layers } : snapshot;
}

/** One row of the layer table. */
export interface LayerRow {
  layer: LayerStat;
  /** Position in the model (the layers event's order). */
  index: number;
  /** Kept channels over the layer's channels, in [0, 1]. */
  keptFraction: number;
  /**
   * The layer's sparsity: while the method forms it, its group's zero channels over its channels
   * (`live` true); otherwise the fraction of zero weights in its kernel the layers event gave.
   */
  sparsity: number;
  live: boolean;
  latencyMs?: number;
}

/** Live sparsity of a layer: its group's `zero / channels` from the latest sparsity event. */
export function liveLayerSparsity(layer: LayerStat, live: LiveSparsity | undefined): number | undefined {
  if (!live || layer.group === undefined) return undefined;
  const g = live.groups[String(layer.group)];
  return g ? g.zero / g.channels : undefined;
}

/** The table's rows: filtered by status and name, sorted; ties (and the default) keep model order. */
export function layerRows(layers: LayerStat[], live: LiveSparsity | undefined, sort: LayerSort = DEFAULT_LAYER_SORT, filter: LayerFilter = DEFAULT_LAYER_FILTER): LayerRow[] {
  const query = filter.query.trim().toLowerCase();
  const rows: LayerRow[] = [];
  layers.forEach((layer, index) => {
    if (filter.status !== 'all' && layer.status !== filter.status) return;
    if (query && !layer.name.toLowerCase().includes(query)) return;
    const liveValue = liveLayerSparsity(layer, live);
    rows.push({
      layer, index,
      keptFraction: layer.channels > 0 ? layer.kept / layer.channels : 1,
      sparsity: liveValue ?? layer.sparsity,
      live: liveValue !== undefined,
      latencyMs: layerLatencyMs(layer),
    });
  });
  if (sort.column === 'order') return sort.descending ? rows.reverse() : rows;
  const value = (r: LayerRow): number | string | undefined => {
    switch (sort.column) {
      case 'name': return r.layer.name;
      case 'params': return r.layer.params;
      case 'flops': return r.layer.flops;
      case 'latency': return r.latencyMs;
      case 'sparsity': return r.sparsity;
      case 'kept': return r.keptFraction;
      default: return r.index;
    }
  };
  const sign = sort.descending ? -1 : 1;
  const keyed = rows.map((row) => ({ row, v: value(row) }));
  keyed.sort((a, b) => {
    // Rows without a value (no latency measured) go last either way.
    if (a.v === undefined || b.v === undefined) return a.v === b.v ? a.row.index - b.row.index : a.v === undefined ? 1 : -1;
    const order = typeof a.v === 'number' && typeof b.v === 'number' ? a.v - b.v : String(a.v).localeCompare(String(b.v), 'en', { numeric: true });
    return sign * order || a.row.index - b.row.index;
  });
  return keyed.map((k) => k.row);
}

/** Rows a virtualised list draws: those in the viewport plus `overscan` either side. */
export function visibleRange(total: number, scrollTop: number, viewportHeight: number, rowHeight: number, overscan = 6): { start: number; end: number } {
  if (total <= 0 || rowHeight <= 0) return { start: 0, end: 0 };
  const first = Math.floor(Math.max(0, scrollTop) / rowHeight);
  const count = Math.ceil(Math.max(viewportHeight, rowHeight) / rowHeight);
  const start = Math.max(0, Math.min(total - 1, first) - overscan);
  const end = Math.min(total, first + count + overscan);
  return { start, end: Math.max(start, end) };
}

// ---- progress ----

export interface HeaderProgress {
  /** Whole percent, 0–100. */
  percent: number;
  /** Nothing is known yet: a spinner with words, not a bar at 0%. */
  indeterminate: boolean;
  /** "2 min left", or '' when there is no estimate. */
  eta: string;
  /** What the session is doing, in words ('' when the engine said nothing). */
  activity: string;
}

/** The header's one progress: session-wide percent and ETA while running, nothing once finished or failed. */
export function headerProgress(view: RunView | undefined, formatEta: (ms: number) => string): HeaderProgress | undefined {
  if (!view || view.done || view.error) return undefined;
  // The same rule as the notification and the status bar (progressDisplay); `formatEta` words the time left.
  const { percent, indeterminate } = progressDisplay(view.progress, view.etaMs);
  const eta = view.etaMs !== undefined && view.etaMs > 0 ? `${formatEta(view.etaMs)} left` : '';
  return { percent, indeterminate, eta, activity: view.activity ?? '' };
}

// ---- the runs table ----

export const DEFAULT_RUNS_SORT: RunsSort = { column: 'started', descending: true };

export function runsSortOf(state: PanelState): RunsSort {
  return state.runsSort ?? DEFAULT_RUNS_SORT;
}

/** One finished run in the table: the numbers after pruning, the metric dense → right after pruning → after fine-tuning. */
export interface RunsTableRow {
  run: RunInfo;
  method: string;
  /** e.g. "flops 50%", from the start event or the runs list; '' when unknown. */
  target: string;
  params: number;
  flops: number;
  flopsBefore: number;
  latencyMs?: number;
  /** The interquartile range of the latency's timed runs. */
  latencyIqr?: [number, number];
  sizeBytes?: number;
  metricName?: string;
  metricBefore?: number;
  metricAfterPruning?: number;
  metricAfter?: number;
  higherIsBetter: boolean;
  wallTimeMs: number;
  startedAt: number;
  synthetic: boolean;
}

export interface RunsTable {
  /** Finished runs that pruned (not dry runs), sorted. */
  results: RunsTableRow[];
  /** Dry runs: what would be removed, nothing written. */
  dryRuns: RunInfo[];
  /** Failed and cancelled runs. */
  failures: RunInfo[];
  running: RunInfo[];
}

/** A target as words: `{flops: 0.5}` → "flops 50%". Fractions read as percent, other numbers as they are. */
export function targetText(target: Record<string, number> | undefined): string {
  if (!target) return '';
  return Object.entries(target)
    .map(([k, v]) => `${k} ${v > 0 && v <= 1 ? `${Number((v * 100).toFixed(1))}%` : String(v)}`)
    .join(', ');
}

/** A finished run's row: the host's `row` where it sent one, else read from the run's summary. */
export function runRow(run: RunInfo, view: RunView | undefined): RunsTableRow | undefined {
  const s = run.summary ?? view?.done;
  const r = run.row;
  if (!s && !r) return undefined;
  const metric = r?.metric ?? s?.metric ?? (s?.accuracy ? { name: 'top-1', higherIsBetter: true, before: s.accuracy.before, after: s.accuracy.after, afterPruning: undefined } : undefined);
  const after = r?.latency?.after ?? s?.latency?.after;
  return {
    run,
    method: r?.method || s?.method || run.method,
    target: targetText(r?.target ?? view?.target),
    params: r?.params.after ?? s!.after.params,
    flops: r?.flops.after ?? s!.after.flops,
    flopsBefore: r?.flops.before ?? s!.before.flops,
    latencyMs: after?.medianMs,
    latencyIqr: after && after.p25Ms !== undefined && after.p75Ms !== undefined ? [after.p25Ms, after.p75Ms] : undefined,
    sizeBytes: r?.sizeBytes?.after ?? s?.size?.after,
    metricName: metric?.name,
    metricBefore: metric?.before,
    metricAfterPruning: metric?.afterPruning,
    metricAfter: metric?.after,
    higherIsBetter: metric?.higherIsBetter ?? true,
    wallTimeMs: r?.wallTimeMs ?? s?.wallTimeMs ?? 0,
    startedAt: run.startedAt,
    synthetic: s?.data?.synthetic === true,
  };
}

/** The runs split into results (sortable), dry runs, failures and runs in progress. */
export function runsTable(runs: RunInfo[], views: Record<string, RunView>, sort: RunsSort = DEFAULT_RUNS_SORT): RunsTable {
  const table: RunsTable = { results: [], dryRuns: [], failures: [], running: [] };
  for (const run of runs) {
    const view = views[run.runId];
    if (run.status === 'running') table.running.push(run);
    else if (run.status === 'error' || run.status === 'cancelled') table.failures.push(run);
    else if (run.dryRun || (run.summary ?? view?.done)?.dryRun || view?.dryRun) table.dryRuns.push(run);
    else {
      const row = runRow(run, view);
      if (row) table.results.push(row);
    }
  }
  const value = (r: RunsTableRow): number | string | undefined => {
    switch (sort.column) {
      case 'method': return r.method;
      case 'target': return r.target || undefined;
      case 'params': return r.params;
      case 'flops': return r.flops;
      case 'latency': return r.latencyMs;
      case 'size': return r.sizeBytes;
      case 'metricBefore': return r.metricBefore;
      case 'metricAfterPruning': return r.metricAfterPruning;
      case 'metricAfter': return r.metricAfter;
      case 'wallTime': return r.wallTimeMs;
      case 'started': return r.startedAt;
    }
  };
  const sign = sort.descending ? -1 : 1;
  table.results = table.results
    .map((row, index) => ({ row, index, v: value(row) }))
    .sort((a, b) => {
      if (a.v === undefined || b.v === undefined) return a.v === b.v ? a.index - b.index : a.v === undefined ? 1 : -1;
      const order = typeof a.v === 'number' && typeof b.v === 'number' ? a.v - b.v : String(a.v).localeCompare(String(b.v), 'en', { numeric: true });
      return sign * order || a.index - b.index;
    })
    .map(({ row }) => row);
  const newestFirst = (a: RunInfo, b: RunInfo) => b.startedAt - a.startedAt;
  table.dryRuns.sort(newestFirst);
  table.failures.sort(newestFirst);
  table.running.sort(newestFirst);
  return table;
}

/**
 * The Pareto front of (cost, metric) points: those no other point beats on both (lower cost, better metric),
 * by cost ascending. Equal points are all on the front.
 */
export function paretoFront<T extends { x: number; y: number }>(points: T[], higherIsBetter = true): T[] {
  const better = (a: number, b: number) => (higherIsBetter ? a > b : a < b);
  const sorted = [...points].sort((a, b) => a.x - b.x || (better(a.y, b.y) ? -1 : better(b.y, a.y) ? 1 : 0));
  const front: T[] = [];
  let best: number | undefined;
  for (const p of sorted) {
    if (best === undefined || better(p.y, best) || (p.y === best && front.at(-1)?.x === p.x)) {
      front.push(p);
      if (best === undefined || better(p.y, best)) best = p.y;
    }
  }
  return front;
}

// ---- the comparison with the original ----

export const DEFAULT_COMPARISON_SORT: ComparisonSort = { column: 'order', descending: false };

export function comparisonSortOf(state: PanelState): ComparisonSort {
  return state.comparisonSort ?? DEFAULT_COMPARISON_SORT;
}

/** The comparison's rows sorted: numbers by the pruned model's value (a layer's latency after, else before), ties in model order; rows without a value last. */
export function comparisonRows(rows: readonly LayerComparisonRow[], sort: ComparisonSort = DEFAULT_COMPARISON_SORT): LayerComparisonRow[] {
  const indexed = rows.map((row, index) => ({ row, index }));
  if (sort.column === 'order') return (sort.descending ? indexed.reverse() : indexed).map((r) => r.row);
  const value = (r: LayerComparisonRow): number | string | undefined => {
    switch (sort.column) {
      case 'name': return r.name;
      case 'type': return r.type;
      case 'channels': return r.channels.after;
      case 'params': return r.params.after;
      case 'flops': return r.flops.after;
      case 'latency': return r.latencyMs?.after ?? r.latencyMs?.before;
      default: return undefined;
    }
  };
  const sign = sort.descending ? -1 : 1;
  return indexed
    .map((r) => ({ ...r, v: value(r.row) }))
    .sort((a, b) => {
      if (a.v === undefined || b.v === undefined) return a.v === b.v ? a.index - b.index : a.v === undefined ? 1 : -1;
      const order = typeof a.v === 'number' && typeof b.v === 'number' ? a.v - b.v : String(a.v).localeCompare(String(b.v), 'en', { numeric: true });
      return sign * order || a.index - b.index;
    })
    .map((r) => r.row);
}
