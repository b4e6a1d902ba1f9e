import * as path from 'node:path';
import * as vscode from 'vscode';
import { isWebviewMessage, type HostMessage, type WebviewMessage } from '../../protocol/webview.js';
import { comparisonReportOf, reportSnapshot } from '../results.js';
import { createNonce, renderPanelHtml } from './html.js';

/** The panel's HTML in a webview: the same bundle and CSP as the sidebar, local resources only. */
export function setPanelHtml(webview: vscode.Webview, extensionUri: vscode.Uri, placement: 'sidebar' | 'editor', title?: string): void {
  const dist = vscode.Uri.joinPath(extensionUri, 'dist');
  const media = vscode.Uri.joinPath(extensionUri, 'media');
  webview.options = { enableScripts: true, localResourceRoots: [dist, media] };
  webview.html = renderPanelHtml({
    cspSource: webview.cspSource,
    scriptUri: webview.asWebviewUri(vscode.Uri.joinPath(dist, 'webview.js')).toString(),
    styleUri: webview.asWebviewUri(vscode.Uri.joinPath(media, 'panel.css')).toString(),
    codiconsUri: webview.asWebviewUri(vscode.Uri.joinPath(dist, 'codicons', 'codicon.css')).toString(),
    nonce: createNonce(),
    placement,
    title,
  });
}

export interface PanelSource {
  /** The state a freshly loaded webview needs. */
  snapshot(): HostMessage[];
  handle(message: WebviewMessage): unknown;
}

/** Wires one webview to a source: `ready` brings a snapshot, other messages go to the source. */
function connect(webview: vscode.Webview, source: PanelSource, log: vscode.LogOutputChannel, onReady: () => void): vscode.Disposable {
  return webview.onDidReceiveMessage((message: unknown) => {
    if (!isWebviewMessage(message)) {
      log.warn('Ignored an unknown message from a PruneLens editor', message);
      return;
    }
    if (message.type === 'ready') {
      onReady();
      for (const m of source.snapshot()) void webview.postMessage(m);
      return;
    }
    void Promise.resolve(source.handle(message)).catch((err) => log.error('Panel action failed', err));
  });
}

/**
 * The session in the editor area, full width: one WebviewPanel following the sessions as the sidebar
 * does (the sidebar stays the compact live summary). Restored after a reload by its serializer.
 */
export class SessionEditorPanel implements vscode.Disposable {
  static readonly viewType = 'prunelens.sessionEditor';
  private panel: vscode.WebviewPanel | undefined;
  private ready = false;
  private readonly disposables: vscode.Disposable[] = [];

  constructor(private readonly extensionUri: vscode.Uri, private readonly source: PanelSource, private readonly log: vscode.LogOutputChannel) {
    this.disposables.push(vscode.window.registerWebviewPanelSerializer(SessionEditorPanel.viewType, {
      deserializeWebviewPanel: async (panel) => this.adopt(panel),
    }));
  }

  get isOpen(): boolean {
    return this.panel !== undefined;
  }

  /** Opens (or reveals) the panel; with a run id, the panel selects that run once loaded. */
  show(runId?: string): void {
    if (this.panel) {
      this.panel.reveal(undefined, false);
    } else {
      this.adopt(vscode.window.createWebviewPanel(SessionEditorPanel.viewType, 'PruneLens Session', vscode.ViewColumn.Active, { retainContextWhenHidden: true }));
    }
    if (runId) this.pendingRun = runId;
    if (this.ready && runId) void this.source.handle({ type: 'selectRun', runId });
  }

  private pendingRun: string | undefined;

  private adopt(panel: vscode.WebviewPanel): void {
    this.panel?.dispose();
    this.panel = panel;
    this.ready = false;
    panel.iconPath = vscode.Uri.joinPath(this.extensionUri, 'media', 'icon.svg');
    setPanelHtml(panel.webview, this.extensionUri, 'editor', 'PruneLens Session');
    const subscriptions = [
      connect(panel.webview, this.source, this.log, () => {
        this.ready = true;
        const runId = this.pendingRun;
        this.pendingRun = undefined;
        if (runId) queueMicrotask(() => void this.source.handle({ type: 'selectRun', runId }));
      }),
    ];
    panel.onDidDispose(() => {
      for (const s of subscriptions) s.dispose();
      if (this.panel === panel) {
        this.panel = undefined;
        this.ready = false;
      }
    });
  }

  /** Posts to the panel when it is loaded (a hidden panel keeps its context; its `ready` brings a snapshot otherwise). */
  post(message: HostMessage): void {
    if (this.panel && this.ready) void this.panel.webview.postMessage(message);
  }

  dispose(): void {
    this.panel?.dispose();
    for (const d of this.disposables.splice(0)) d.dispose();
  }
}

class ReportDocument implements vscode.CustomDocument {
  constructor(readonly uri: vscode.Uri) {}
  dispose(): void {}
}

/**
 * `pruning-report.json` opens rendered: the run's summary, layers and the layer-by-layer comparison
 * in the panel's bundle. "Open as JSON" (the panel's Open report, or Reopen Editor With…) goes back to the text.
 */
export class ReportEditorProvider implements vscode.CustomReadonlyEditorProvider<ReportDocument> {
  static readonly viewType = 'prunelens.report';

  constructor(private readonly extensionUri: vscode.Uri, private readonly log: vscode.LogOutputChannel, private readonly handle: (message: WebviewMessage, reportFile: string) => unknown) {}

  static register(extensionUri: vscode.Uri, log: vscode.LogOutputChannel, handle: (message: WebviewMessage, reportFile: string) => unknown): vscode.Disposable {
    return vscode.window.registerCustomEditorProvider(ReportEditorProvider.viewType, new ReportEditorProvider(extensionUri, log, handle), {
      webviewOptions: { retainContextWhenHidden: true },
      supportsMultipleEditorsPerDocument: true,
    });
  }

  openCustomDocument(uri: vscode.Uri): ReportDocument {
    return new ReportDocument(uri);
  }

  async resolveCustomEditor(document: ReportDocument, panel: vscode.WebviewPanel): Promise<void> {
    const file = document.uri.fsPath;
    setPanelHtml(panel.webview, this.extensionUri, 'editor', `PruneLens report: ${path.basename(path.dirname(file))}`);
    let ready = false;
    const source: PanelSource = {
      snapshot: () => [this.snapshotOf(file)],
      handle: (message) => (message.type === 'openReport' ? openReportAsJson(document.uri) : this.handle(message, file)),
    };
    const watcher = vscode.workspace.createFileSystemWatcher(new vscode.RelativePattern(vscode.Uri.file(path.dirname(file)), path.basename(file)));
    const refresh = () => ready && void panel.webview.postMessage(this.snapshotOf(file));
    const subscriptions = [connect(panel.webview, source, this.log, () => (ready = true)), watcher, watcher.onDidChange(refresh), watcher.onDidCreate(refresh)];
    panel.onDidDispose(() => subscriptions.forEach((s) => s.dispose()));
  }

  private snapshotOf(file: string): HostMessage {
    return reportSnapshot(file);
  }
}

/**
 * Compare with original: a report's layers beside the original's in a sortable table, one editor-area
 * panel per report (shown again when asked twice). Its actions are the report editor's.
 */
export class ComparisonPanels implements vscode.Disposable {
  static readonly viewType = 'prunelens.comparison';
  private readonly panels = new Map<string, vscode.WebviewPanel>();
  private readonly serializer: vscode.Disposable;

  constructor(private readonly extensionUri: vscode.Uri, private readonly log: vscode.LogOutputChannel, private readonly handle: (message: WebviewMessage, reportFile: string) => unknown) {
    // After a reload the tab comes back from the report file its webview saved (the snapshot's `report.file`).
    this.serializer = vscode.window.registerWebviewPanelSerializer(ComparisonPanels.viewType, {
      deserializeWebviewPanel: async (panel, state) => {
        const reportFile = comparisonReportOf(state);
        if (!reportFile || this.panels.has(reportFile)) {
          if (!reportFile) this.log.warn('A PruneLens comparison tab saved no report file; closed after the reload');
          panel.dispose();
          return;
        }
        this.adopt(panel, reportFile);
      },
    });
  }

  /** Opens (or reveals) the comparison of `reportFile`; its title, e.g. "pruned against the original". */
  show(reportFile: string): string {
    const title = comparisonTitle(reportFile);
    const open = this.panels.get(reportFile);
    if (open) {
      open.reveal(undefined, false);
      return title;
    }
    this.adopt(vscode.window.createWebviewPanel(ComparisonPanels.viewType, title, vscode.ViewColumn.Active, { retainContextWhenHidden: true }), reportFile);
    return title;
  }

  private adopt(panel: vscode.WebviewPanel, reportFile: string): void {
    const title = comparisonTitle(reportFile);
    panel.title = title;
    panel.iconPath = vscode.Uri.joinPath(this.extensionUri, 'media', 'icon.svg');
    setPanelHtml(panel.webview, this.extensionUri, 'editor', title);
    this.panels.set(reportFile, panel);
    const source: PanelSource = {
      snapshot: () => [reportSnapshot(reportFile, 'comparison')],
      handle: (message) => this.handle(message, reportFile),
    };
    const subscription = connect(panel.webview, source, this.log, () => undefined);
    panel.onDidDispose(() => {
      subscription.dispose();
      if (this.panels.get(reportFile) === panel) this.panels.delete(reportFile);
    });
  }

  dispose(): void {
    this.serializer.dispose();
    for (const panel of [...this.panels.values()]) panel.dispose();
    this.panels.clear();
  }
}

function comparisonTitle(reportFile: string): string {
  return `${path.basename(path.dirname(reportFile))} against the original`;
}

/** The report's text in the default JSON editor. */
export function openReportAsJson(uri: vscode.Uri): Thenable<unknown> {
  return vscode.commands.executeCommand('vscode.openWith', uri, 'default');
}
