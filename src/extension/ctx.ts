import * as vscode from 'vscode';
import { LOG_CHANNEL_NAME } from './constants.js';
import { CapacityCache, ConfigDiagnostics } from './configDiagnostics.js';
import { PruneConfigCodeLensProvider } from './codeLens.js';
import { SessionViewProvider } from './panel/sessionView.js';
import { ComparisonPanels, ReportEditorProvider, SessionEditorPanel } from './panel/editorPanel.js';
import { MethodCompletionProvider } from './methodCompletion.js';
import { RunStore } from './runStore.js';
import { SessionManager } from './sessions.js';
import type { WebviewMessage } from '../protocol/webview.js';

export type Cmd = (...args: any[]) => unknown;

/**
 * Everything the commands share: the log, the runs, the sessions, the panel and the
 * diagnostics. Built once in activate(); commands are factories `(ctx) => Cmd`.
 */
export class Ctx implements vscode.Disposable {
  readonly log: vscode.LogOutputChannel;
  readonly store: RunStore;
  readonly sessions: SessionManager;
  readonly panel: SessionViewProvider;
  /** The session full width in the editor area (the sidebar stays the compact summary). */
  readonly editorPanel: SessionEditorPanel;
  /** Compare with original: a report's layers beside the original's, in the editor area. */
  readonly comparisons: ComparisonPanels;
  readonly diagnostics: ConfigDiagnostics;
  readonly codeLenses: PruneConfigCodeLensProvider;
  private readonly disposables: vscode.Disposable[] = [];

  constructor(
    readonly extension: vscode.ExtensionContext,
    private readonly onPanelMessage: (ctx: Ctx, message: WebviewMessage) => unknown,
    onReportMessage: (ctx: Ctx, message: WebviewMessage, reportFile: string) => unknown,
  ) {
    this.log = vscode.window.createOutputChannel(LOG_CHANNEL_NAME, { log: true });
    this.store = new RunStore(extension.workspaceState);
    this.panel = new SessionViewProvider(extension.extensionUri, {
      snapshot: () => this.sessions.snapshot(),
      handle: (message) => this.onPanelMessage(this, message) as void,
    }, this.log);
    this.editorPanel = new SessionEditorPanel(extension.extensionUri, {
      snapshot: () => this.sessions.snapshot().map((m) => (m.type === 'snapshot' ? { ...m, placement: 'editor' as const } : m)),
      handle: (message) => this.onPanelMessage(this, message),
    }, this.log);
    this.sessions = new SessionManager({
      enginePath: vscode.Uri.joinPath(extension.extensionUri, 'dist', 'engine.js').fsPath,
      log: this.log,
      store: this.store,
      post: (message) => {
        this.panel.post(message);
        this.editorPanel.post(message);
      },
      revealPanel: () => this.panel.reveal(),
      memoryLimitMb: () => vscode.workspace.getConfiguration('prunelens').get<number>('engine.memoryLimitMb', 4096),
    });
    this.comparisons = new ComparisonPanels(extension.extensionUri, this.log, (message, reportFile) => onReportMessage(this, message, reportFile));
    const capacities = new CapacityCache((modelPath) => this.sessions.analyze(modelPath, { showInPanel: false }));
    this.diagnostics = new ConfigDiagnostics(capacities, this.log);
    this.codeLenses = new PruneConfigCodeLensProvider(this.sessions);
    this.disposables.push(
      this.log,
      this.store,
      this.sessions,
      this.panel,
      this.editorPanel,
      this.comparisons,
      this.diagnostics,
      this.codeLenses,
      vscode.window.registerWebviewViewProvider(SessionViewProvider.viewType, this.panel, { webviewOptions: { retainContextWhenHidden: true } }),
      vscode.languages.registerCodeLensProvider({ scheme: 'file', pattern: '**/*.prune.json' }, this.codeLenses),
      ReportEditorProvider.register(extension.extensionUri, this.log, (message, reportFile) => onReportMessage(this, message, reportFile)),
      vscode.languages.registerCompletionItemProvider({ scheme: 'file', pattern: '**/*.prune.json' }, new MethodCompletionProvider(), '"'),
    );
  }

  registerCommand(name: string, factory: (ctx: Ctx) => Cmd): void {
    const cmd = factory(this);
    this.disposables.push(vscode.commands.registerCommand(name, async (...args: unknown[]) => {
      try {
        return await cmd(...args);
      } catch (err) {
        this.log.error(`${name} failed`, err);
        void vscode.window.showErrorMessage(`PruneLens: ${(err as Error).message ?? String(err)}`);
        return undefined;
      }
    }));
  }

  dispose(): void {
    for (const d of this.disposables.splice(0).reverse()) d.dispose();
  }
}
