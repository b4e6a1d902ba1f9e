import * as vscode from 'vscode';
import type { EngineEvent } from '../protocol/events.js';
import type { RunInfo } from '../protocol/webview.js';
import { StorageKeys } from './constants.js';
import { keepRuns, runKind, withRow, type RunKind } from './results.js';

/** Events kept per run for replay into a (re)loaded panel. */
const MAX_EVENTS_PER_RUN = 400;

/** A run's id: time-ordered, unique within a workspace. */
export function newRunId(): string {
  return `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
}

export interface RunRecord extends RunInfo {
  /** What the run was started with, so it can be run again. */
  overrides?: { method?: string; output?: string; dryRun?: boolean };
}

/**
 * Runs remembered per workspace (workspaceState) for the runs list and comparisons,
 * plus a bounded in-memory event log per run for the panel's snapshot.
 */
export class RunStore implements vscode.Disposable {
  private readonly eventLog = new Map<string, EngineEvent[]>();

  constructor(private readonly state: vscode.Memento) {
    // Runs that were still marked running belong to an earlier window: they did not finish.
    const stale = this.all().filter((r) => r.status === 'running');
    if (stale.length) {
      void this.save(this.all().map((r) => (r.status === 'running' ? { ...r, status: 'error', error: 'Interrupted: the window was closed during the run' } : r)));
    }
  }

  /** Every remembered run, oldest first, each with its runs-table row (runs of older versions get theirs here). */
  all(): RunRecord[] {
    return this.state.get<RunRecord[]>(StorageKeys.runs, []).map(withRow);
  }

  /** A config's runs of one kind, oldest first: results apart from dry runs and failures. */
  runsOf(configPath: string, kind: RunKind): RunRecord[] {
    return this.all().filter((r) => r.configPath === configPath && runKind(r) === kind);
  }

  get(runId: string): RunRecord | undefined {
    return this.all().find((r) => r.runId === runId);
  }

  /** The newest run of a config that satisfies `predicate` (runs are kept oldest first). */
  latestFor(configPath: string, predicate: (r: RunRecord) => boolean = () => true): RunRecord | undefined {
    const runs = this.all();
    for (let i = runs.length - 1; i >= 0; i--) if (runs[i].configPath === configPath && predicate(runs[i])) return runs[i];
    return undefined;
  }

  async upsert(run: RunRecord): Promise<void> {
    const others = this.all().filter((r) => r.runId !== run.runId);
    const runs = keepRuns([...others, run].sort((a, b) => a.startedAt - b.startedAt));
    await this.save(runs);
  }

  appendEvent(runId: string, event: EngineEvent): void {
    let log = this.eventLog.get(runId);
    if (!log) this.eventLog.set(runId, (log = []));
    log.push(event);
    if (log.length > MAX_EVENTS_PER_RUN) {
      // Keep the run's opening events (start, first layers) and the most recent ones.
      log.splice(20, log.length - MAX_EVENTS_PER_RUN);
    }
  }

  eventsOf(runId: string): EngineEvent[] {
    return this.eventLog.get(runId) ?? [];
  }

  private async save(runs: RunRecord[]): Promise<void> {
    await this.state.update(StorageKeys.runs, runs);
  }

  dispose(): void {
    this.eventLog.clear();
  }
}
