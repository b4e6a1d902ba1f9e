import * as path from 'node:path';
import { parse } from 'jsonc-parser/lib/esm/main.js';
import * as vscode from 'vscode';
import type { DoneEvent, EngineEvent, ErrorEvent, LayersEvent, SensitivityDoneEvent, StartEvent } from '../protocol/events.js';
import type { HostMessage } from '../protocol/webview.js';
import { Commands } from './constants.js';
import { methodLabel } from '../protocol/methods.js';
import { startEngine, type EngineRun } from '../engine/process/client.js';
import { formatAccuracy, formatChange, formatDuration, formatMetricValue } from '../protocol/format.js';
import { newRunId, type RunRecord, type RunStore } from './runStore.js';
import { runRowOf, SessionProgress, variantFolderNote } from './results.js';

export interface SessionOverrides {
  method?: string;
  /** Absolute output folder (variants write next to the configured one). */
  output?: string;
  dryRun?: boolean;
}

export interface SessionHost {
  enginePath: string;
  log: vscode.LogOutputChannel;
  store: RunStore;
  post(message: HostMessage): void;
  revealPanel(): Promise<void>;
  memoryLimitMb(): number;
}

type EngineOutcome = Awaited<EngineRun['result']>;

/** An engine child process whose events can be watched by several listeners. */
interface WatchedEngine extends EngineRun {
  onEvent(listener: (event: EngineEvent) => void): () => void;
}

interface ActiveSession {
  run: RunRecord;
  engine: WatchedEngine;
  finished: Promise<RunRecord>;
  /** One session-wide percentage and ETA, shown alike by the notification and the status bar. */
  progress: SessionProgress;
  /** The target the session ran to (from its start event), for the runs table. */
  target?: Record<string, number>;
}

export interface AnalysisResult {
  modelPath: string;
  start?: StartEvent;
  layers?: LayersEvent;
  outcome: EngineOutcome;
}

/**
 * Starts, tracks and stops pruning sessions. One engine process per session, one session
 * per config at a time; every event is logged, stored for the panel and forwarded to it.
 */
export class SessionManager implements vscode.Disposable {
  private readonly active = new Map<string, ActiveSession>();
  private readonly statusItem: vscode.StatusBarItem;
  private readonly eventEmitter = new vscode.EventEmitter<{ runId: string; event: EngineEvent }>();
  private readonly activeChanged = new vscode.EventEmitter<void>();
  /** Fires for every engine event of every session (used by code lenses and the test API). */
  readonly onDidEvent = this.eventEmitter.event;
  readonly onDidChangeActive = this.activeChanged.event;
  private lastAnalysis: HostMessage[] = [];
  /** The latest sensitivity analysis' messages, replayed to a reloaded panel. */
  private lastSensitivity: HostMessage[] = [];
  /** Running sensitivity analyses by config. */
  private readonly sensitivityRuns = new Map<string, WatchedEngine>();

  constructor(private readonly host: SessionHost) {
    this.statusItem = vscode.window.createStatusBarItem('prunelens.session', vscode.StatusBarAlignment.Left, 50);
    this.statusItem.name = 'PruneLens session';
    this.statusItem.command = Commands.showPanel;
  }

  isRunning(configPath: string): boolean {
    return this.active.has(configKey(configPath));
  }

  activeRuns(): RunRecord[] {
    return [...this.active.values()].map((s) => s.run);
  }

  /**
   * Starts a session for a config file and resolves with the finished run record
   * (undefined when the start was refused).
   */
  async start(configPath: string, overrides: SessionOverrides = {}): Promise<RunRecord | undefined> {
    if (!this.ensureTrusted()) return undefined;
    const key = configKey(configPath);
    const existing = this.active.get(key);
    if (existing) {
      const restart = 'Stop It and Start Again';
      const choice = await vscode.window.showWarningMessage(
        `A PruneLens session for ${path.basename(configPath)} is already running (${methodLabel(existing.run.method)}).`,
        { modal: true },
        restart,
      );
      if (choice !== restart) return undefined;
      existing.engine.cancel();
      await existing.finished;
    }

    this.markStarted();
    const run: RunRecord = {
      runId: newRunId(),
      configPath,
      method: overrides.method ?? (await readConfiguredMethod(configPath)) ?? 'unknown',
      status: 'running',
      startedAt: Date.now(),
      ...(overrides.dryRun ? { dryRun: true } : {}),
      overrides: Object.keys(overrides).length ? overrides : undefined,
    };
    const engine = this.startEngine({ type: 'run', configPath, overrides: stripUndefined(overrides), workspaceRoots: workspaceRootsFor(configPath) }, path.dirname(configPath));
    const log = this.host.log;
    log.info(`Session ${run.runId}: ${path.basename(configPath)} with ${methodLabel(run.method)}${overrides.dryRun ? ' (dry run)' : ''}, engine pid ${engine.pid}`);

    let resolveFinished!: (run: RunRecord) => void;
    const session: ActiveSession = { run, engine, progress: new SessionProgress(), finished: new Promise((r) => (resolveFinished = r)) };
    this.active.set(key, session);
    engine.onEvent((event) => this.onEngineEvent(session, event));
    void this.showProgress(session);
    await this.host.store.upsert(run);
    this.host.post({ type: 'runs', runs: this.host.store.all(), activeRunId: run.runId });
    this.activeChanged.fire();
    this.updateStatus();
    void this.host.revealPanel();

    void engine.result.then(async (outcome) => {
      const finished = this.finish(session, outcome);
      this.active.delete(key);
      await this.host.store.upsert(finished);
      this.host.post({ type: 'runs', runs: this.host.store.all(), activeRunId: finished.runId });
      this.activeChanged.fire();
      this.updateStatus();
      this.announce(finished);
      resolveFinished(finished);
    });
    return session.finished;
  }

  /** Sessions train models and write files, so they only run in trusted workspaces. */
  ensureTrusted(): boolean {
    if (vscode.workspace.isTrusted) return true;
    void vscode.window
      .showErrorMessage(
        'PruneLens runs pruning sessions only in trusted workspaces: a session trains the model and writes files. Analyze Model works without trust.',
        'Manage Workspace Trust',
      )
      .then((choice) => choice && vscode.commands.executeCommand('workbench.trust.manage'));
    return false;
  }

  /** Stops the session of a config (or the only/most recent one when none is given). */
  stop(configPath?: string): boolean {
    const session = configPath ? this.active.get(configKey(configPath)) : [...this.active.values()].pop();
    if (!session) return false;
    this.host.log.info(`Session ${session.run.runId}: cancel requested`);
    session.engine.cancel();
    return true;
  }

  stopRun(runId: string): boolean {
    const session = [...this.active.values()].find((s) => s.run.runId === runId);
    return session ? this.stop(session.run.configPath) : false;
  }

  /** Per-layer analysis of a model; allowed in untrusted workspaces (it only reads the model). */
  async analyze(modelPath: string, options: { showInPanel: boolean }): Promise<AnalysisResult> {
    if (options.showInPanel) this.markStarted();
    const started = Date.now();
    const engine = this.startEngine({ type: 'analyze', modelPath }, path.dirname(modelPath));
    const result: Partial<AnalysisResult> = { modelPath };
    const messages: HostMessage[] = [];
    engine.onEvent((event) => {
      if (event.type === 'start') result.start = event;
      if (event.type === 'layers') result.layers = event;
      if (options.showInPanel) {
        const message: HostMessage = { type: 'analysis', modelPath, event };
        messages.push(message);
        this.host.post(message);
      }
    });
    if (options.showInPanel) {
      this.lastAnalysis = messages;
      void this.host.revealPanel();
    }
    result.outcome = await engine.result;
    if (result.outcome.type === 'error') this.host.log.warn(`Analysis of ${modelPath} failed: ${result.outcome.message}`);
    // The first-use cost the end-to-end suites record: engine start, model load and analysis.
    else this.host.log.info(`Analysis of ${path.basename(modelPath)}: ${result.layers?.layers.length ?? 0} layers in ${Date.now() - started} ms (engine pid ${engine.pid}${options.showInPanel ? '' : ', for config diagnostics'})`);
    return result as AnalysisResult;
  }

  /**
   * Sensitivity analysis of a config's model on its data, in the engine process: the points stream
   * into the panel, a notification shows progress and cancels. Resolves with the terminal event
   * (undefined when refused). It evaluates the model and writes the report, so it needs trust.
   */
  async sensitivity(configPath: string, options: { ratios?: number[]; samples?: number; layerAtATime?: boolean } = {}): Promise<SensitivityDoneEvent | ErrorEvent | undefined> {
    if (!this.ensureTrusted()) return undefined;
    const key = configKey(configPath);
    if (this.sensitivityRuns.has(key)) {
      void vscode.window.showInformationMessage(`PruneLens: sensitivity analysis of ${path.basename(configPath)} is already running.`);
      return undefined;
    }
    const engine = this.startEngine({ type: 'sensitivity', configPath, ...stripUndefined(options), workspaceRoots: workspaceRootsFor(configPath) }, path.dirname(configPath));
    this.sensitivityRuns.set(key, engine);
    this.activeChanged.fire();
    const log = this.host.log;
    log.info(`Sensitivity of ${path.basename(configPath)}: engine pid ${engine.pid}`);
    const messages: HostMessage[] = [];
    this.lastSensitivity = messages;
    const analysisId = newRunId();
    engine.onEvent((event) => {
      const message: HostMessage = { type: 'sensitivity', analysisId, configPath, event };
      messages.push(message);
      this.host.post(message);
      if (event.type === 'sensitivityStart') log.info(`Sensitivity of ${path.basename(configPath)}: ${event.entries.length} ${event.mode === 'layer' ? 'layers' : 'groups'} × ${event.ratios.length} ratios on ${event.samples} samples, dense ${event.metric.name} ${formatMetricValue({ name: event.metric.name, value: event.dense.metric })}${event.cached ? ' (cached)' : ''}`);
      if (event.type === 'warning') log.warn(event.message);
    });
    void this.host.revealPanel();
    void vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: `PruneLens: sensitivity of ${path.basename(configPath)}`, cancellable: true },
      async (progress, token) => {
        token.onCancellationRequested(() => engine.cancel());
        let total = 0;
        let measured = 0;
        const dispose = engine.onEvent((event) => {
          if (event.type === 'sensitivityStart') {
            total = event.entries.length * event.ratios.length;
            progress.report({ message: `${event.entries.length} ${event.mode === 'layer' ? 'layers' : 'groups'}, measuring…` });
          } else if (event.type === 'sensitivityPoint' && total > 0) {
            measured++;
            progress.report({ increment: 100 / total, message: `${measured}/${total} points · ${event.entry.producers[0] ?? event.entry.id}` });
          }
        });
        await engine.result;
        dispose();
      },
    );
    const outcome = await engine.result;
    this.sensitivityRuns.delete(key);
    this.activeChanged.fire();
    if (outcome.type === 'sensitivityDone') {
      log.info(`Sensitivity of ${path.basename(configPath)}: done in ${formatDuration(outcome.wallTimeMs)}, wrote ${outcome.file}`);
      const open = 'Open Report';
      void vscode.window
        .showInformationMessage(`PruneLens: sensitivity of ${outcome.report.groups.length} ${outcome.report.mode === 'layer' ? 'layers' : 'groups'} written to ${vscode.workspace.asRelativePath(outcome.file)}.`, open)
        .then((choice) => { if (choice === open) void vscode.window.showTextDocument(vscode.Uri.file(outcome.file), { preview: false }); });
      return outcome;
    }
    if (outcome.type === 'error') {
      if (outcome.cancelled) {
        log.info(`Sensitivity of ${path.basename(configPath)}: cancelled`);
        void vscode.window.showInformationMessage(`PruneLens: sensitivity analysis of ${path.basename(configPath)} cancelled; nothing was written.`);
      } else {
        log.error(`Sensitivity of ${path.basename(configPath)}: ${outcome.message}`);
        void vscode.window.showErrorMessage(`PruneLens: ${outcome.message}`);
      }
      return outcome;
    }
    return undefined;
  }

  isAnalysingSensitivity(configPath: string): boolean {
    return this.sensitivityRuns.has(configKey(configPath));
  }

  /** Forks the engine (never computing on the extension host's event loop). */
  private startEngine(request: Parameters<typeof startEngine>[0], cwd: string): WatchedEngine {
    const listeners = new Set<(event: EngineEvent) => void>();
    const run = startEngine(request, {
      enginePath: this.host.enginePath,
      cwd,
      execArgv: [`--max-old-space-size=${this.host.memoryLimitMb()}`],
      // In desktop VS Code process.execPath is Electron; this makes the child plain Node.
      env: { ELECTRON_RUN_AS_NODE: '1' },
      onStderr: (text) => {
        for (const line of text.split('\n')) if (line.trim()) this.host.log.info(`engine: ${line}`);
      },
      onEvent: (event) => {
        for (const listener of listeners) listener(event);
      },
    });
    return Object.assign(run, {
      onEvent(listener: (event: EngineEvent) => void) {
        listeners.add(listener);
        return () => listeners.delete(listener);
      },
    }) as WatchedEngine;
  }

  /** Everything a freshly loaded panel needs. */
  snapshot(): HostMessage[] {
    const runs = this.host.store.all();
    const current = this.activeRuns().pop() ?? [...runs].sort((a, b) => b.startedAt - a.startedAt)[0];
    const events = current ? this.host.store.eventsOf(current.runId).map((event) => ({ runId: current.runId, event })) : [];
    return [{ type: 'snapshot', runs, activeRunId: current?.runId, events }, ...[...this.lastAnalysis, ...this.lastSensitivity].map((m) => ({ ...m, replay: true }) as HostMessage)];
  }

  private onEngineEvent(session: ActiveSession, event: EngineEvent): void {
    const { run } = session;
    this.host.store.appendEvent(run.runId, event);
    this.host.post({ type: 'engineEvent', runId: run.runId, event });
    this.eventEmitter.fire({ runId: run.runId, event });
    const log = this.host.log;
    session.progress.apply(event);
    switch (event.type) {
      case 'start':
        run.method = event.method;
        session.target = event.target;
        log.info(`Session ${run.runId}: ${event.model.name}, ${event.model.params} params, ${event.model.flops} FLOPs, backend ${event.backend}`);
        break;
      case 'phase':
        log.info(`Session ${run.runId}: ${event.phase}${event.message ? ` — ${event.message}` : ''}`);
        break;
      case 'epoch':
        log.info(`Session ${run.runId}: ${event.phase} epoch ${event.epoch}/${event.epochs} loss ${event.loss.toFixed(4)}${event.valAccuracy !== undefined ? ` val acc ${formatAccuracy(event.valAccuracy)}` : event.valMetric ? ` val ${event.valMetric.name} ${formatMetricValue(event.valMetric)}` : ''}`);
        break;
      case 'step':
        log.trace(`Session ${run.runId}: ${event.phase} step ${event.step}/${event.stepsPerEpoch} loss ${event.loss.toFixed(4)}`);
        break;
      case 'layers':
        log.debug(`Session ${run.runId}: ${event.phase} step ${event.step}: ${event.totals.keptChannels}/${event.totals.prunableChannels} channels kept, ${event.totals.flops} FLOPs`);
        break;
      case 'signal':
        log.debug(`Session ${run.runId}: ${event.method} ${event.name} = ${event.value}`);
        break;
      case 'warning':
        log.warn(`Session ${run.runId}: ${event.message}`);
        break;
      case 'log':
        if (event.level === 'warn') log.warn(event.message);
        else if (event.level === 'info') log.info(event.message);
        else log.debug(event.message);
        break;
      case 'done':
        log.info(`Session ${run.runId}: done in ${formatDuration(event.wallTimeMs)}, FLOPs ${formatChange(event.before.flops, event.after.flops)}, params ${formatChange(event.before.params, event.after.params)}${event.output ? `, wrote ${event.output}` : ''}`);
        break;
      case 'error':
        if (event.cancelled) log.info(`Session ${run.runId}: cancelled`);
        else log.error(`Session ${run.runId}: ${event.message}`);
        break;
    }
    this.updateStatus();
  }

  private finish(session: ActiveSession, outcome: EngineOutcome): RunRecord {
    const run = session.run;
    if (outcome.type === 'done') {
      return {
        ...run,
        status: 'done',
        method: outcome.method || run.method,
        output: outcome.output,
        report: outcome.report,
        summary: outcome,
        ...(outcome.dryRun ? { dryRun: true } : { row: runRowOf(outcome, session.target) }),
      };
    }
    if (outcome.type === 'sensitivityDone') return { ...run, status: 'error', error: 'the engine answered a pruning run with a sensitivity report' };
    if (outcome.cancelled) return { ...run, status: 'cancelled' };
    return { ...run, status: 'error', error: outcome.message };
  }

  private showProgress(session: ActiveSession): Thenable<void> {
    const { run, engine } = session;
    const title = `PruneLens: ${methodLabel(run.method)} on ${path.basename(run.configPath)}${run.overrides?.dryRun ? ' (dry run)' : ''}`;
    return vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title, cancellable: true },
      async (progress, token) => {
        token.onCancellationRequested(() => this.stop(run.configPath));
        let reported = 0;
        // After onEngineEvent (registered first) has folded the event into session.progress.
        const dispose = engine.onEvent((event) => {
          if (event.type !== 'phase' && event.type !== 'progress' && event.type !== 'step' && event.type !== 'epoch') return;
          const percent = session.progress.fraction * 100;
          progress.report({ increment: Math.max(0, percent - reported), message: session.progress.describe() });
          reported = Math.max(reported, percent);
        });
        await engine.result;
        dispose();
      },
    );
  }

  private announce(run: RunRecord): void {
    const file = path.basename(run.configPath);
    if (run.status === 'done' && run.summary) {
      const s: DoneEvent = run.summary;
      const synthetic = s.data?.synthetic ? ' on synthetic data (meaningless)' : '';
      const value = (v: number) => formatMetricValue({ name: s.metric!.name, value: v });
      // The metric by its name; what fine-tuning bought when the model was measured right after pruning too.
      const accuracy = s.metric
        ? `, ${s.metric.name}${synthetic} ${value(s.metric.before)} → ${value(s.metric.after)}${s.metric.afterPruning !== undefined ? ` (${value(s.metric.afterPruning)} right after pruning)` : ''}`
        : s.accuracy
          ? `, ${synthetic ? 'accuracy on synthetic data (meaningless)' : 'accuracy'} ${formatAccuracy(s.accuracy.before)} → ${formatAccuracy(s.accuracy.after)}`
          : '';
      const what = s.dryRun ? 'Dry run of' : 'Pruned';
      const written = s.output ? ` Saved to ${vscode.workspace.asRelativePath(s.output)}.` : '';
      // A method lens writes to `<output>-<method>`: say why the result is not in the config's own folder.
      const variant = run.overrides?.output && run.overrides.method && s.output ? ` ${variantFolderNote(run.overrides.output.replace(new RegExp(`-${run.overrides.method}$`), ''), run.overrides.method)}` : '';
      const actions: [string, string][] = s.dryRun
        ? []
        : [['Open Report', Commands.openReport], ['Reveal in Explorer', Commands.revealOutput], ['Open Pruned Model', Commands.openPrunedModel], ['Compare with Original', Commands.compareWithOriginal]];
      const available = actions.filter(([, command]) => (command === Commands.openReport ? !!run.report : !!s.output));
      void vscode.window
        .showInformationMessage(`${what} ${file} with ${methodLabel(s.method)}: FLOPs ${formatChange(s.before.flops, s.after.flops)}, params ${formatChange(s.before.params, s.after.params)}${accuracy}.${written}${variant}`, ...available.map(([title]) => title))
        .then((choice) => {
          const command = available.find(([title]) => title === choice)?.[1];
          if (command) void vscode.commands.executeCommand(command, run.runId);
        });
    } else if (run.status === 'cancelled') {
      void vscode.window.showInformationMessage(`PruneLens session for ${file} cancelled; nothing was written.`);
    } else if (run.status === 'error') {
      const showLog = 'Show Log';
      void vscode.window
        .showErrorMessage(`PruneLens: ${run.error ?? 'the session failed'}`, showLog)
        .then((choice) => choice === showLog && this.host.log.show(true));
    }
  }

  private updateStatus(): void {
    const sessions = [...this.active.values()];
    this.setContextKeys(sessions.length > 0);
    if (sessions.length === 0) {
      // Cleared at the end: no "78% · ETA 0s" left behind.
      this.statusItem.text = '';
      this.statusItem.tooltip = undefined;
      this.statusItem.hide();
      return;
    }
    const s = sessions[sessions.length - 1];
    const more = sessions.length > 1 ? ` (+${sessions.length - 1})` : '';
    // The engine's session-wide progress, worded as the panel's header and the notification word it.
    this.statusItem.text = `$(sync~spin) PruneLens ${methodLabel(s.run.method)} ${s.progress.statusText()}${more}`;
    this.statusItem.tooltip = `${path.basename(s.run.configPath)}: ${describePhase(s)}. Click to show the PruneLens panel.`;
    this.statusItem.show();
  }

  /** Context keys for `when` clauses: Stop shows while a session runs, Rerun once there is a run to repeat. */
  private lastContext: string | undefined;
  private setContextKeys(running: boolean): void {
    const hasRuns = this.host.store.all().length > 0;
    const key = `${running}/${hasRuns}`;
    if (key === this.lastContext) return;
    this.lastContext = key;
    void vscode.commands.executeCommand('setContext', 'prunelens.sessionRunning', running);
    void vscode.commands.executeCommand('setContext', 'prunelens.hasRuns', hasRuns);
  }

  /** Once something was analysed or run, the Get Started view gives the panel its room. */
  private markStarted(): void {
    void vscode.commands.executeCommand('setContext', 'prunelens.started', true);
  }

  /** Sets the context keys once at activation (the store may hold runs of an earlier window). */
  initContext(): void {
    this.updateStatus();
  }

  /** The sidebar's status-bar text, for tests: empty when no session runs. */
  statusText(): string {
    return this.statusItem.text;
  }

  dispose(): void {
    for (const session of this.active.values()) session.engine.kill();
    for (const engine of this.sensitivityRuns.values()) engine.kill();
    this.sensitivityRuns.clear();
    this.active.clear();
    this.statusItem.dispose();
    this.eventEmitter.dispose();
    this.activeChanged.dispose();
  }
}

function describePhase(session: ActiveSession): string {
  return session.progress.describe();
}

export function configKey(configPath: string): string {
  return path.resolve(configPath);
}

function stripUndefined<T extends object>(value: T): T | undefined {
  const entries = Object.entries(value).filter(([, v]) => v !== undefined);
  return entries.length ? (Object.fromEntries(entries) as T) : undefined;
}

async function readConfiguredMethod(configPath: string): Promise<string | undefined> {
  try {
    const bytes = await vscode.workspace.fs.readFile(vscode.Uri.file(configPath));
    const value = parse(Buffer.from(bytes).toString('utf8')) as { method?: unknown } | undefined;
    return typeof value?.method === 'string' ? value.method : undefined;
  } catch {
    return undefined;
  }
}

/** The folders a session may use: the workspace's, or the config's own folder when none is open. */
function workspaceRootsFor(configPath: string): string[] {
  const folders = vscode.workspace.workspaceFolders?.filter((f) => f.uri.scheme === 'file').map((f) => f.uri.fsPath) ?? [];
  return folders.length ? folders : [path.dirname(configPath)];
}
