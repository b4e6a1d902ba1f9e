import * as vscode from 'vscode';
import { isWebviewMessage, type HostMessage, type WebviewMessage } from '../../protocol/webview.js';
import { Views } from '../constants.js';
import { createNonce, renderPanelHtml } from './html.js';

const MAX_BUFFERED = 500;

export interface SessionViewSource {
  /** The full state a freshly loaded panel needs (runs, the active run's events so far). */
  snapshot(): HostMessage[];
  handle(message: WebviewMessage): void | Promise<void>;
}

/**
 * The PruneLens side panel (a WebviewView in its own activity-bar container). Its context is
 * retained while hidden, but VS Code drops postMessage to hidden webviews, so messages are
 * buffered while hidden and flushed in order when it is shown again (a snapshot replaces the
 * buffer when it grows too long). A (re)loaded panel sends `ready` and receives a snapshot.
 */
export class SessionViewProvider implements vscode.WebviewViewProvider, vscode.Disposable {
  static readonly viewType = Views.session;
  private view: vscode.WebviewView | undefined;
  private ready = false;
  private buffer: HostMessage[] = [];
  private bufferOverflowed = false;
  private readonly disposables: vscode.Disposable[] = [];

  constructor(private readonly extensionUri: vscode.Uri, private readonly source: SessionViewSource, private readonly log: vscode.LogOutputChannel) {}

  resolveWebviewView(view: vscode.WebviewView): void {
    this.view = view;
    this.ready = false;
    const dist = vscode.Uri.joinPath(this.extensionUri, 'dist');
    const media = vscode.Uri.joinPath(this.extensionUri, 'media');
    // The build copies the codicons font beside the bundles (the package ships no node_modules).
    const codicons = vscode.Uri.joinPath(dist, 'codicons');
    view.webview.options = { enableScripts: true, localResourceRoots: [dist, media] };
    const webview = view.webview;
    webview.html = renderPanelHtml({
      cspSource: webview.cspSource,
      scriptUri: webview.asWebviewUri(vscode.Uri.joinPath(dist, 'webview.js')).toString(),
      styleUri: webview.asWebviewUri(vscode.Uri.joinPath(media, 'panel.css')).toString(),
      codiconsUri: webview.asWebviewUri(vscode.Uri.joinPath(codicons, 'codicon.css')).toString(),
      nonce: createNonce(),
    });
    this.disposables.push(
      webview.onDidReceiveMessage((message: unknown) => {
        if (!isWebviewMessage(message)) {
          this.log.warn('Ignored an unknown message from the panel', message);
          return;
        }
        if (message.type === 'ready') {
          this.ready = true;
          this.buffer = [];
          this.bufferOverflowed = false;
          this.sendSnapshot();
          return;
        }
        void Promise.resolve(this.source.handle(message)).catch((err) => this.log.error('Panel action failed', err));
      }),
      view.onDidChangeVisibility(() => {
        if (view.visible && this.ready) this.flush();
      }),
      view.onDidDispose(() => {
        if (this.view === view) this.view = undefined;
        this.ready = false;
      }),
    );
  }

  /** Posts a message now if the panel is visible, else keeps it for when it is shown. */
  post(message: HostMessage): void {
    if (!this.view || !this.ready) return; // the panel's `ready` brings a snapshot
    if (this.view.visible) {
      void this.view.webview.postMessage(message);
      return;
    }
    if (this.buffer.length >= MAX_BUFFERED) {
      this.buffer = [];
      this.bufferOverflowed = true;
    }
    if (!this.bufferOverflowed) this.buffer.push(message);
  }

  /** Opens the panel (its container in the activity bar) and focuses it. */
  async reveal(): Promise<void> {
    if (this.view) {
      this.view.show(true);
      return;
    }
    await vscode.commands.executeCommand(`${Views.session}.focus`);
  }

  private flush(): void {
    if (!this.view) return;
    if (this.bufferOverflowed) {
      this.bufferOverflowed = false;
      this.sendSnapshot();
    } else {
      for (const message of this.buffer) void this.view.webview.postMessage(message);
    }
    this.buffer = [];
  }

  private sendSnapshot(): void {
    if (!this.view) return;
    for (const message of this.source.snapshot()) void this.view.webview.postMessage(message);
  }

  dispose(): void {
    for (const d of this.disposables.splice(0)) d.dispose();
  }
}
