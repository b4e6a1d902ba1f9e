/**
 * Entry point of the PruneLens side panel. Host messages go through the pure reducer as they
 * arrive; the DOM and charts are redrawn at most once per animation frame, and the state is
 * saved with `setState` so a hidden, moved or reloaded view comes back as it was.
 */
import '@vscode-elements/elements/dist/vscode-badge/index.js';
import '@vscode-elements/elements/dist/vscode-button/index.js';
import '@vscode-elements/elements/dist/vscode-collapsible/index.js';
import '@vscode-elements/elements/dist/vscode-progress-bar/index.js';
import '@vscode-elements/elements/dist/vscode-progress-ring/index.js';
import { isHostMessage, type WebviewMessage } from '../src/protocol/webview.js';
import { reduce, restoreState, type PanelAction, type PanelState } from './state.js';
import { applyChartTheme } from './views/charts.js';
import { PanelView } from './views/panel.js';
import { readFontFamily, readPalette, watchTheme } from './views/theme.js';

interface VsCodeApi {
  postMessage(message: WebviewMessage): void;
  getState(): unknown;
  setState(state: PanelState): void;
}

declare function acquireVsCodeApi(): VsCodeApi;

const vscode = acquireVsCodeApi();
let state = restoreState(vscode.getState());
let palette = readPalette();
applyChartTheme(palette, readFontFamily());

const root = document.getElementById('app')!;
const view = new PanelView(root, {
  dispatch: (action) => apply(action),
  post: (message) => vscode.postMessage(message),
});

let scheduled = false;
/** Redraws so far, on the root as data-frame: UI tests can wait for the next one. */
let frames = 0;

function apply(action: PanelAction): void {
  state = reduce(state, action);
  schedule();
}

/** Coalesces any number of updates into one redraw per frame (or per 200 ms while hidden, when frames stop). */
function schedule(): void {
  if (scheduled) return;
  scheduled = true;
  if (document.hidden) setTimeout(flush, 200);
  else requestAnimationFrame(flush);
}

function flush(): void {
  scheduled = false;
  vscode.setState(state);
  const started = performance.now();
  view.render(state, palette);
  // How long the last redraw took: UI tests hold the 400-layer render to its budget.
  root.dataset.renderMs = (performance.now() - started).toFixed(1);
  root.dataset.frame = String(++frames);
}

window.addEventListener('message', (event: MessageEvent) => {
  if (isHostMessage(event.data)) apply(event.data);
});

watchTheme(() => {
  palette = readPalette();
  applyChartTheme(palette, readFontFamily());
  schedule();
});

view.render(state, palette);
vscode.postMessage({ type: 'ready' });
