/**
 * The side panel's HTML shell. Pure string functions (no `vscode` import): the extension host
 * passes `webview.cspSource` and `asWebviewUri(...)` strings in, so this is unit-testable.
 */
import { randomBytes } from 'node:crypto';

export interface PanelHtmlOptions {
  /** `webview.cspSource`. */
  cspSource: string;
  /** Webview URI of dist/webview.js. */
  scriptUri: string;
  /** Webview URI of media/panel.css. */
  styleUri: string;
  /** Webview URI of codicon.css, when icons are shipped. */
  codiconsUri?: string;
  nonce: string;
  /** Document title, read by screen readers. */
  title?: string;
  /** Where the webview shows, as `data-placement` on the body: the compact sidebar (default) or a full-width editor. */
  placement?: 'sidebar' | 'editor';
}

/** A fresh CSP nonce: 128 bits of randomness, base64 without padding. */
export function createNonce(): string {
  return randomBytes(16).toString('base64').replace(/=+$/, '');
}

/**
 * The Content-Security-Policy for the panel: nothing but local resources and the one nonce'd
 * script. Web components style themselves with constructable stylesheets, which CSP does not
 * gate, and Chart.js sets canvas sizes through the CSSOM, so neither needs 'unsafe-inline'.
 */
export function panelCsp(cspSource: string, nonce: string): string {
  return [
    `default-src 'none'`,
    `img-src ${cspSource} data:`,
    `style-src ${cspSource} 'nonce-${nonce}'`,
    `script-src 'nonce-${nonce}'`,
    `font-src ${cspSource}`,
  ].join('; ');
}

export function renderPanelHtml(opts: PanelHtmlOptions): string {
  if (!/^[A-Za-z0-9+/_-]+$/.test(opts.nonce)) throw new Error('The CSP nonce must be base64 characters only.');
  const attr = escapeAttribute;
  const codicons = opts.codiconsUri
    ? `\n  <link rel="stylesheet" id="vscode-codicon-stylesheet" href="${attr(opts.codiconsUri)}">`
    : '';
  return `<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="UTF-8">
  <meta http-equiv="Content-Security-Policy" content="${attr(panelCsp(opts.cspSource, opts.nonce))}">
  <meta name="viewport" content="width=device-width, initial-scale=1.0">
  <link rel="stylesheet" href="${attr(opts.styleUri)}">${codicons}
  <title>${escapeText(opts.title ?? 'PruneLens')}</title>
</head>
<body data-placement="${opts.placement ?? 'sidebar'}">
  <main id="app" class="app" aria-live="polite">
    <p class="placeholder">Loading PruneLens\u2026</p>
  </main>
  <script nonce="${opts.nonce}" src="${attr(opts.scriptUri)}"></script>
</body>
</html>
`;
}

function escapeAttribute(value: string): string {
  return value.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function escapeText(value: string): string {
  return value.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}
