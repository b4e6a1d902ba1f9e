/**
 * What a finished run gives the user, vscode-free: the runs table's row of a `done` event, a
 * report file read back as a run (its `done` event and layers, for the report editor), the
 * layer-by-layer comparison with the original, progress as one percentage and ETA, and how a
 * method lens's `<output>-<method>` folder reads.
 */
import { readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { summarizeLayerLatency, type DoneEvent, type EngineEvent, type LayerLatencySummary, type LayersEvent, type LayerStat } from '../protocol/events.js';
import { progressDisplay } from '../protocol/format.js';
import { methodLabel } from '../protocol/methods.js';
import type { HostMessage, LayerComparisonRow, ReportComparison, RunInfo, RunRow } from '../protocol/webview.js';

/** The runs table's row of a finished run. */
export function runRowOf(done: DoneEvent, target?: Record<string, number>): RunRow {
  const latency = done.latency;
  return {
    method: done.method,
    ...(target ? { target } : {}),
    params: { before: done.before.params, after: done.after.params },
    flops: { before: done.before.flops, after: done.after.flops },
    ...(latency ? {
      latency: {
        runtime: latency.runtime,
        before: { medianMs: latency.before.medianMs, p25Ms: latency.before.p25Ms, p75Ms: latency.before.p75Ms },
        after: { medianMs: latency.after.medianMs, p25Ms: latency.after.p25Ms, p75Ms: latency.after.p75Ms },
        speedup: latency.speedup,
      },
    } : {}),
    ...(done.size ? { sizeBytes: { ...done.size } } : {}),
    ...(done.metric ? {
      metric: {
        name: done.metric.name,
        higherIsBetter: done.metric.higherIsBetter,
        before: done.metric.before,
        ...(done.metric.afterPruning !== undefined ? { afterPruning: done.metric.afterPruning } : {}),
        after: done.metric.after,
      },
    } : {}),
    wallTimeMs: done.wallTimeMs,
    ...(done.output ? { output: done.output } : {}),
  };
}

/** Which list a run belongs in: results (done, written), dry runs, failures (errors and cancellations), or running. */
export type RunKind = 'result' | 'dryRun' | 'failure' | 'running';

export function runKind(run: Pick<RunInfo, 'status' | 'dryRun' | 'summary'>): RunKind {
  if (run.status === 'running') return 'running';
  if (run.status !== 'done') return 'failure';
  return run.dryRun || run.summary?.dryRun ? 'dryRun' : 'result';
}

/** How many runs of each kind are remembered: dry runs and failures never push results out. */
export const REMEMBERED_RUNS: Record<Exclude<RunKind, 'running'>, number> = { result: 50, dryRun: 10, failure: 10 };

/** The newest runs of each kind within `REMEMBERED_RUNS` (running ones always), in their order. */
export function keepRuns<T extends RunInfo>(runs: T[]): T[] {
  const left = { ...REMEMBERED_RUNS };
  const kept = new Set<T>();
  for (let i = runs.length - 1; i >= 0; i--) {
    const kind = runKind(runs[i]);
    if (kind === 'running') kept.add(runs[i]);
    else if (left[kind]-- > 0) kept.add(runs[i]);
  }
  return runs.filter((r) => kept.has(r));
}

/** A run with its dry-run flag and runs-table row filled in from its summary (runs stored before they had them). */
export function withRow<T extends RunInfo>(run: T): T {
  if (run.status !== 'done' || !run.summary) return run;
  if (run.summary.dryRun) return run.dryRun ? run : { ...run, dryRun: true };
  return run.row ? run : { ...run, row: runRowOf(run.summary) };
}

/** A pruning-report.json as the extension reads it: only the fields it shows (the engine writes more). */
export interface ReportFile {
  config?: string;
  method: string;
  target?: Record<string, number>;
  backend?: string;
  before: { params: number; flops: number; accuracy?: number; latencyMs?: number; weightBytes?: number };
  after: { params: number; flops: number; accuracy?: number; latencyMs?: number; weightBytes?: number };
  metric?: DoneEvent['metric'];
  latency?: DoneEvent['latency'];
  data?: string;
  syntheticData?: boolean;
  channelsRemoved?: number;
  physicallyRemoved?: boolean;
  wallTimeMs?: number;
  /** Each layer timed alone before and after (rows by the dense model's layer names), or why not. */
  layerLatency?: { backend: string; batchSize: number; layers: { name: string; change?: string; msBefore?: number; msAfter?: number }[] } | { skipped: string };
  layers?: {
    name: string; type: string; status: LayerStat['status']; group?: number; reason?: string;
    channelsBefore: number; channelsAfter: number; paramsBefore: number; paramsAfter: number; flopsBefore: number; flopsAfter: number;
  }[];
}

/** Parses a report's text; one line saying what is wrong when it is not a PruneLens report. */
export function parseReport(text: string, file: string): ReportFile {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new Error(`${path.basename(file)} is not valid JSON (${(err as Error).message}); open it as JSON to fix it.`);
  }
  const r = value as Partial<ReportFile> & { tool?: unknown };
  if (typeof r !== 'object' || r === null || typeof r.method !== 'string' || typeof r.before?.flops !== 'number' || typeof r.after?.flops !== 'number') {
    throw new Error(`${path.basename(file)} is not a PruneLens pruning report (no method, before and after); open it as JSON instead.`);
  }
  return r as ReportFile;
}

/** The pruned model a report sits beside: the model file in the report's folder named like the original. */
export function prunedModelBeside(reportFile: string, files: string[]): string | undefined {
  const models = files.filter((f) => f === 'model.json' || /\.(keras|h5|hdf5|onnx)$/i.test(f));
  return models.length ? path.join(path.dirname(reportFile), models.includes('model.json') ? 'model.json' : models[0]) : undefined;
}

/** A report read back as a run: the `done` event and the layers before and after, as a session would have sent them. */
export function runFromReport(report: ReportFile, file: string, modelFile?: string): { run: RunInfo; events: EngineEvent[] } {
  const layerLatency = reportLayerLatency(report);
  const done: DoneEvent = {
    type: 'done',
    sessionId: `report:${file}`,
    method: report.method,
    output: modelFile,
    report: file,
    before: { params: report.before.params, flops: report.before.flops },
    after: { params: report.after.params, flops: report.after.flops },
    ...(report.before.accuracy !== undefined && report.after.accuracy !== undefined ? { accuracy: { before: report.before.accuracy, after: report.after.accuracy } } : {}),
    ...(report.metric ? { metric: report.metric } : {}),
    ...(report.data !== undefined || report.syntheticData ? { data: { format: report.syntheticData ? 'synthetic' : 'npy', synthetic: !!report.syntheticData, description: report.data } } : {}),
    ...(report.latency ? { latency: report.latency } : {}),
    ...(report.before.weightBytes !== undefined && report.after.weightBytes !== undefined ? { size: { before: report.before.weightBytes, after: report.after.weightBytes } } : {}),
    channelsRemoved: report.channelsRemoved ?? 0,
    physicallyRemoved: report.physicallyRemoved ?? true,
    backend: report.backend ?? 'unknown',
    wallTimeMs: report.wallTimeMs ?? 0,
    ...(layerLatency ? { layerLatency } : {}),
  };
  const events: EngineEvent[] = [];
  if (report.layers?.length) {
    events.push(layersEventOf(report, 'before'), layersEventOf(report, 'after'));
  }
  events.push(done);
  const run: RunInfo = {
    runId: `report:${file}`,
    configPath: report.config ?? file,
    method: report.method,
    status: 'done',
    startedAt: 0,
    output: modelFile,
    report: file,
    summary: done,
    row: runRowOf(done, report.target),
  };
  return { run, events };
}

function layersEventOf(report: ReportFile, side: 'before' | 'after'): LayersEvent {
  const layers: LayerStat[] = (report.layers ?? []).map((l) => ({
    name: l.name,
    type: l.type,
    status: l.status,
    ...(l.group !== undefined ? { group: l.group } : {}),
    ...(l.reason ? { reason: l.reason } : {}),
    channels: l.channelsBefore,
    kept: side === 'before' ? l.channelsBefore : l.channelsAfter,
    sparsity: 0,
    params: side === 'before' ? l.paramsBefore : l.paramsAfter,
    flops: side === 'before' ? l.flopsBefore : l.flopsAfter,
  }));
  // A channel group's coupled layers share their channels: each group counts once, by its first layer.
  const seenGroups = new Set<number>();
  const prunable = layers.filter((l) => l.status !== 'blocked' && (l.group === undefined || (!seenGroups.has(l.group) && !!seenGroups.add(l.group))));
  return {
    type: 'layers',
    phase: side === 'before' ? 'load' : 'prune',
    step: side === 'before' ? 0 : 1,
    layers,
    totals: {
      params: report[side].params,
      flops: report[side].flops,
      keptChannels: prunable.reduce((n, l) => n + l.kept, 0),
      prunableChannels: prunable.reduce((n, l) => n + l.channels, 0),
      zeroGroups: 0,
    },
  };
}

/** The report's per-layer timing as a done event carries it (by layer name, ms to 4 significant digits); absent when it was skipped. */
export function reportLayerLatency(report: ReportFile): LayerLatencySummary | undefined {
  const timing = report.layerLatency;
  if (!timing || 'skipped' in timing || !Array.isArray(timing.layers)) return undefined;
  return summarizeLayerLatency(timing.layers, timing.backend, timing.batchSize);
}

/** The pruned model's layers beside the original's, in the original's order, with each layer's time alone where it was measured. */
export function layerComparison(report: ReportFile): LayerComparisonRow[] {
  const timing = reportLayerLatency(report)?.layers ?? {};
  return (report.layers ?? []).map((l) => {
    const t = timing[l.name];
    return {
      name: l.name,
      type: l.type,
      status: l.status,
      channels: { before: l.channelsBefore, after: l.channelsAfter },
      params: { before: l.paramsBefore, after: l.paramsAfter },
      flops: { before: l.flopsBefore, after: l.flopsAfter },
      ...(t ? { latencyMs: { ...(t.beforeMs !== undefined ? { before: t.beforeMs } : {}), ...(t.afterMs !== undefined ? { after: t.afterMs } : {}) } } : {}),
    };
  });
}

/** What the editor-area comparison shows of a report. */
export function reportComparison(report: ReportFile, file: string): ReportComparison {
  const timing = reportLayerLatency(report);
  return { file, comparison: layerComparison(report), ...(timing ? { layerTiming: { backend: timing.backend, batchSize: timing.batchSize } } : {}) };
}

/** The folder a method lens writes: the config's output with the method's id appended, so runs of several methods sit side by side. */
export function variantFolder(output: string, method: string): string {
  return `${output.replace(/[\\/]+$/, '')}-${method}`;
}

export function variantFolderNote(output: string, method: string): string {
  return `${methodLabel(method)} writes to ${path.basename(variantFolder(output, method))}/ (the config's "output" + "-${method}"), so each method's result sits beside the others and the config's own output is left as it is.`;
}

/**
 * The one progress the notification and the status bar show: the engine's session-wide `progress`
 * event once one has arrived, the phase's step/epoch progress before that.
 */
export class SessionProgress {
  fraction = 0;
  etaMs?: number;
  activity?: string;
  phase?: string;
  private sessionWide = false;

  /** Folds an event in; true when what is shown changed. */
  apply(event: EngineEvent): boolean {
    switch (event.type) {
      case 'progress':
        this.sessionWide = true;
        this.fraction = clamp01(event.progress);
        this.etaMs = event.etaMs;
        this.activity = event.activity;
        return true;
      case 'phase':
        this.phase = event.phase;
        if (!this.sessionWide) this.activity = undefined;
        return true;
      case 'step':
      case 'epoch':
        if (this.sessionWide) return false;
        this.fraction = Math.max(this.fraction, clamp01(event.progress));
        this.etaMs = undefined; // the phase's ETA is not the session's: none until the engine says
        return true;
      default:
        return false;
    }
  }

  /** Percent and ETA as the panel's header shows them (`progressDisplay`): "43%" and "1 min 10 s", none while nothing is known. */
  get display(): { percent: number; indeterminate: boolean; eta: string } {
    return progressDisplay(this.fraction, this.etaMs);
  }

  /** "43% · ETA 1 min 10 s · fine-tuning"; only the activity while nothing is known yet (the panel's spinner with words). */
  describe(): string {
    const { percent, indeterminate, eta } = this.display;
    const parts = indeterminate ? [] : [`${percent}%`];
    if (eta) parts.push(`ETA ${eta}`);
    const activity = this.activity ?? this.phase;
    if (activity) parts.push(activity);
    return parts.join(' · ') || 'starting';
  }

  /** The status bar's percent and ETA: "43% · ETA 1 min 10 s", or "…" while nothing is known yet. */
  statusText(): string {
    const { percent, indeterminate, eta } = this.display;
    return indeterminate ? '\u2026' : `${percent}%${eta ? ` · ETA ${eta}` : ''}`;
  }
}

function clamp01(value: number): number {
  return Number.isFinite(value) ? Math.max(0, Math.min(1, value)) : 0;
}

/** A report as a finished run, read fresh each time (the session may have rewritten the folder); `show` narrows the panel to its comparison. */
export function reportSnapshot(file: string, show?: 'comparison'): HostMessage {
  try {
    const report = parseReport(readFileSync(file, 'utf8'), file);
    const model = prunedModelBeside(file, readdirSync(path.dirname(file)));
    const { run, events } = runFromReport(report, file, model);
    return {
      type: 'snapshot', runs: [run], activeRunId: run.runId, events: events.map((event) => ({ runId: run.runId, event })), placement: 'editor',
      report: reportComparison(report, file), ...(show ? { show } : {}),
    };
  } catch (err) {
    const message = (err as Error).message;
    const runId = `${UNREADABLE_REPORT}${file}`;
    return { type: 'snapshot', runs: [{ runId, configPath: file, method: 'unknown', status: 'error', startedAt: 0, error: message }], activeRunId: runId, events: [{ runId, event: { type: 'error', message, file } }], placement: 'editor', ...(show ? { show } : {}) };
  }
}

/** The run id of a report that could not be read: the file follows it. */
const UNREADABLE_REPORT = 'report:';

/**
 * The report a comparison tab shows, from the state its webview saved: its snapshot's `report.file`,
 * or the file of a report that could not be read (so a reload tries it again); undefined when neither.
 */
export function comparisonReportOf(saved: unknown): string | undefined {
  const state = (typeof saved === 'object' && saved !== null ? saved : {}) as { report?: { file?: unknown }; activeRunId?: unknown };
  const file = state.report?.file ?? (typeof state.activeRunId === 'string' && state.activeRunId.startsWith(UNREADABLE_REPORT) ? state.activeRunId.slice(UNREADABLE_REPORT.length) : undefined);
  return typeof file === 'string' && file.endsWith('.json') ? file : undefined;
}
