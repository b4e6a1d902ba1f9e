/**
 * Messages between the extension host and the PruneLens side panel (webview).
 * The host forwards engine events (already summaries: no weights cross this boundary)
 * and run bookkeeping; the webview asks for snapshots and actions.
 */
import type { EngineEvent, DoneEvent } from './events.js';

export interface RunInfo {
  runId: string;
  configPath: string;
  method: string;
  status: 'running' | 'done' | 'error' | 'cancelled';
  startedAt: number;
  output?: string;
  report?: string;
  summary?: DoneEvent;
  error?: string;
  /** A dry run analyses and writes nothing: listed apart from results (absent in older runs). */
  dryRun?: boolean;
  /** What the runs table shows of a finished run (absent for runs that wrote no result). */
  row?: RunRow;
}

/** One finished run as the runs table lists it; every number from the run's `done` event. */
export interface RunRow {
  method: string;
  /** The config's target, e.g. { flopsReduction: 0.5 }. */
  target?: Record<string, number>;
  params: { before: number; after: number };
  flops: { before: number; after: number };
  /** Median latency with its interquartile range (p25, p75), dense and pruned. */
  latency?: { runtime: string; before: LatencySpread; after: LatencySpread; speedup: number };
  /** Bytes on disk of the model, dense and pruned. */
  sizeBytes?: { before: number; after: number };
  /** The task's metric: dense, right after pruning (when fine-tuning followed) and after fine-tuning. */
  metric?: { name: string; higherIsBetter: boolean; before: number; afterPruning?: number; after: number };
  wallTimeMs: number;
  /** Where the pruned model was written. */
  output?: string;
}

export interface LatencySpread {
  medianMs: number;
  p25Ms?: number;
  p75Ms?: number;
}

/** One layer of a pruned model beside the original's ("Compare with original"). */
export interface LayerComparisonRow {
  name: string;
  type: string;
  status: 'prunable' | 'coupled' | 'blocked';
  channels: { before: number; after: number };
  params: { before: number; after: number };
  flops: { before: number; after: number };
  /** The layer timed alone (median ms), dense and pruned, where the session measured it. */
  latencyMs?: { before?: number; after?: number };
}

/** A report's layer-by-layer comparison with the original, as the editor-area table shows it. */
export interface ReportComparison {
  file: string;
  comparison: LayerComparisonRow[];
  /** Where the layers were timed alone (absent when they were not). */
  layerTiming?: { backend: string; batchSize: number };
}

/** Where a webview shows: the compact live sidebar, or a full-width editor (session panel, report editor). */
export type WebviewPlacement = 'sidebar' | 'editor';

/** Host → webview. */
export type HostMessage =
  | { type: 'engineEvent'; runId: string; event: EngineEvent }
  | { type: 'runs'; runs: RunInfo[]; activeRunId?: string }
  /** Full replay for a (re)loaded webview: the active run's events so far, bounded. */
  | {
    type: 'snapshot'; runs: RunInfo[]; activeRunId?: string; events: { runId: string; event: EngineEvent }[];
    /** Where this webview shows (also `data-placement` on its body); absent: the sidebar. */
    placement?: WebviewPlacement;
    /** A report opened in the editor area: its file, and the pruned model's layers beside the original's. */
    report?: ReportComparison;
    /** `comparison`: the panel shows the run's layer-by-layer comparison alone (Compare with original). */
    show?: 'comparison';
  }
  /** `replay`: sent again to a (re)loaded panel after the snapshot; it fills the view without taking the focus from a run. */
  | { type: 'analysis'; modelPath: string; event: EngineEvent; replay?: boolean }
  /** A sensitivity analysis of a config's model (one id per analysis): its `sensitivityStart`, points, `sensitivityDone` or `error`. */
  | { type: 'sensitivity'; analysisId: string; configPath: string; event: EngineEvent; replay?: boolean };

/** Webview → host. */
export type WebviewMessage =
  | { type: 'ready' }
  | { type: 'selectRun'; runId: string }
  | { type: 'openReport'; runId: string }
  | { type: 'cancelRun'; runId: string }
  | { type: 'rerun'; runId: string }
  /** The run (or the sidebar's current session) full width in the editor area. */
  | { type: 'openInEditor'; runId: string }
  /** Results of a finished run: its output in the explorer, the pruned model analysed, its layers beside the original's, its config. */
  | { type: 'revealOutput'; runId: string }
  | { type: 'openPrunedModel'; runId: string }
  | { type: 'compareWithOriginal'; runId: string }
  | { type: 'openConfig'; runId: string };

const HOST_TYPES = new Set(['engineEvent', 'runs', 'snapshot', 'analysis', 'sensitivity']);
const WEBVIEW_TYPES = new Set(['ready', 'selectRun', 'openReport', 'cancelRun', 'rerun', 'openInEditor', 'revealOutput', 'openPrunedModel', 'compareWithOriginal', 'openConfig']);

export function isHostMessage(value: unknown): value is HostMessage {
  return typeof value === 'object' && value !== null && HOST_TYPES.has((value as { type?: unknown }).type as string);
}

export function isWebviewMessage(value: unknown): value is WebviewMessage {
  if (typeof value !== 'object' || value === null) return false;
  const msg = value as { type?: unknown; runId?: unknown };
  if (!WEBVIEW_TYPES.has(msg.type as string)) return false;
  return msg.type === 'ready' || typeof msg.runId === 'string';
}
