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
}

/** Host → webview. */
export type HostMessage =
  | { type: 'engineEvent'; runId: string; event: EngineEvent }
  | { type: 'runs'; runs: RunInfo[]; activeRunId?: string }
  /** Full replay for a (re)loaded webview: the active run's events so far, bounded. */
  | { type: 'snapshot'; runs: RunInfo[]; activeRunId?: string; events: { runId: string; event: EngineEvent }[] }
  | { type: 'analysis'; modelPath: string; event: EngineEvent }
  /** A sensitivity analysis of a config's model (one id per analysis): its `sensitivityStart`, points, `sensitivityDone` or `error`. */
  | { type: 'sensitivity'; analysisId: string; configPath: string; event: EngineEvent };

/** Webview → host. */
export type WebviewMessage =
  | { type: 'ready' }
  | { type: 'selectRun'; runId: string }
  | { type: 'openReport'; runId: string }
  | { type: 'cancelRun'; runId: string }
  | { type: 'rerun'; runId: string };

const HOST_TYPES = new Set(['engineEvent', 'runs', 'snapshot', 'analysis', 'sensitivity']);
const WEBVIEW_TYPES = new Set(['ready', 'selectRun', 'openReport', 'cancelRun', 'rerun']);

export function isHostMessage(value: unknown): value is HostMessage {
  return typeof value === 'object' && value !== null && HOST_TYPES.has((value as { type?: unknown }).type as string);
}

export function isWebviewMessage(value: unknown): value is WebviewMessage {
  if (typeof value !== 'object' || value === null) return false;
  const msg = value as { type?: unknown; runId?: unknown };
  if (!WEBVIEW_TYPES.has(msg.type as string)) return false;
  return msg.type === 'ready' || typeof msg.runId === 'string';
}
