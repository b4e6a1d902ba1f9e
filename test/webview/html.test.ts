import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createNonce, panelCsp, renderPanelHtml } from '../../src/extension/panel/html.js';

const opts = {
  cspSource: 'https://file+.vscode-resource.vscode-cdn.net',
  scriptUri: 'https://file+.vscode-resource.vscode-cdn.net/ext/dist/webview.js',
  styleUri: 'https://file+.vscode-resource.vscode-cdn.net/ext/media/panel.css?v=1&t=2',
  nonce: 'abc123XYZ',
};

test('the CSP allows only local resources and the nonce\'d script', () => {
  const html = renderPanelHtml(opts);
  const csp = /http-equiv="Content-Security-Policy" content="([^"]+)"/.exec(html)?.[1];
  assert.equal(csp, panelCsp(opts.cspSource, opts.nonce));
  assert.equal(csp,
    "default-src 'none'; img-src https://file+.vscode-resource.vscode-cdn.net data:; " +
    "style-src https://file+.vscode-resource.vscode-cdn.net 'nonce-abc123XYZ'; script-src 'nonce-abc123XYZ'; " +
    'font-src https://file+.vscode-resource.vscode-cdn.net');
  assert.doesNotMatch(csp!, /unsafe-inline|unsafe-eval|\*/);
});

test('every script carries the nonce and there are no inline handlers or inline styles', () => {
  const html = renderPanelHtml(opts);
  const scripts = html.match(/<script[^>]*>/g) ?? [];
  assert.equal(scripts.length, 1);
  assert.equal(scripts[0], `<script nonce="abc123XYZ" src="${opts.scriptUri}">`);
  assert.doesNotMatch(html, /\son[a-z]+=/i);
  assert.doesNotMatch(html, /style="/);
  // Attribute values are escaped.
  assert.match(html, /href="https:\/\/file\+\.vscode-resource\.vscode-cdn\.net\/ext\/media\/panel\.css\?v=1&amp;t=2"/);
});

test('codicons are linked only when given', () => {
  assert.doesNotMatch(renderPanelHtml(opts), /codicon/);
  assert.match(renderPanelHtml({ ...opts, codiconsUri: 'https://x/codicon.css' }), /<link rel="stylesheet" id="vscode-codicon-stylesheet" href="https:\/\/x\/codicon.css">/);
});

test('a nonce that could break out of the attribute is refused', () => {
  assert.throws(() => renderPanelHtml({ ...opts, nonce: 'a" onload="x' }), /nonce/);
});

test('nonces are fresh, long and attribute-safe', () => {
  const nonces = new Set(Array.from({ length: 200 }, createNonce));
  assert.equal(nonces.size, 200);
  for (const n of nonces) {
    assert.match(n, /^[A-Za-z0-9+/]{22}$/);
    assert.doesNotThrow(() => renderPanelHtml({ ...opts, nonce: n }));
  }
});
