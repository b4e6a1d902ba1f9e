/**
 * The runs view: finished runs of the active config as a sortable table (method, target, params, FLOPs,
 * latency with its interquartile spread, file size, the metric dense → right after pruning → after
 * fine-tuning, wall time), and apart from them the runs in progress, the dry runs and the failures.
 * Runs of other configs follow in a list of their own.
 */
import type { RunInfo, WebviewMessage } from '../../src/protocol/webview.js';
import { formatBytes, formatCount, formatDuration, formatMetricValue, formatMs } from '../../src/protocol/format.js';
import { methodColor } from '../charts-data.js';
import { activeRun, activeView, runsSortOf, runsTable, type PanelState, type RunsColumn, type RunsTableRow, type UiAction } from '../state.js';
import { h, setChildren } from './dom.js';

export interface RunsViewContext {
  dispatch(action: UiAction): void;
  post(message: WebviewMessage): void;
}

const COLUMNS: { column: RunsColumn; label: string; title: string; className?: string }[] = [
  { column: 'method', label: 'Method', title: 'The pruning method' },
  { column: 'target', label: 'Target', title: 'What the config asked for', className: 'wide-only' },
  { column: 'params', label: 'Params', title: 'Parameters after pruning', className: 'wide-only' },
  { column: 'flops', label: 'FLOPs', title: 'FLOPs after pruning (change from dense)' },
  { column: 'latency', label: 'Latency', title: 'Median latency after pruning, with its interquartile range (the measurement\u2019s spread)' },
  { column: 'size', label: 'Size', title: 'The pruned model\u2019s files on disk', className: 'wide-only' },
  { column: 'metricBefore', label: 'Dense', title: 'The metric of the dense model', className: 'wide-only' },
  { column: 'metricAfterPruning', label: 'Pruned', title: 'The metric right after pruning, before fine-tuning', className: 'wide-only' },
  { column: 'metricAfter', label: 'Tuned', title: 'The metric after fine-tuning' },
  { column: 'wallTime', label: 'Time', title: 'Wall time of the session', className: 'wide-only' },
];

export class RunsView {
  readonly el: HTMLElement;
  private readonly body = h('div', { class: 'runs-list', 'data-testid': 'runs-list', 'aria-label': 'Runs' });
  private key = '';

  constructor(private readonly ctx: RunsViewContext) {
    this.el = h('vscode-collapsible', { heading: 'Runs', open: true, 'data-testid': 'runs-section', class: 'section' });
    const sectionBody = h('div', { class: 'section-body' }, this.body);
    this.el.append(sectionBody);
    const select = (runId: string) => {
      ctx.dispatch({ type: 'ui/selectRun', runId });
      ctx.post({ type: 'selectRun', runId });
    };
    this.body.addEventListener('click', (e) => {
      const target = e.target as Element;
      const sort = target.closest<HTMLElement>('[data-sort]');
      if (sort?.dataset.sort) {
        ctx.dispatch({ type: 'ui/sortRuns', column: sort.dataset.sort as RunsColumn });
        return;
      }
      const row = target.closest<HTMLElement>('[data-run-id]');
      const runId = row?.dataset.runId;
      if (!runId) return;
      if (target.closest('[data-action="open-report"]')) ctx.post({ type: 'openReport', runId });
      else if (target.closest('.run-main, .run-method')) select(runId);
    });
    this.body.addEventListener('keydown', (e) => {
      const main = (e.target as Element).closest<HTMLElement>('.run-main');
      const runId = main?.closest<HTMLElement>('[data-run-id]')?.dataset.runId;
      if (runId && (e.key === 'Enter' || e.key === ' ')) {
        e.preventDefault();
        select(runId);
      }
    });
  }

  render(state: PanelState): void {
    this.el.hidden = state.runs.length === 0;
    const config = activeRun(state)?.configPath ?? activeView(state)?.configPath;
    const ofConfig = config === undefined ? state.runs : state.runs.filter((r) => r.configPath === config);
    const others = state.runs.filter((r) => !ofConfig.includes(r)).sort((a, b) => b.startedAt - a.startedAt);
    const sort = runsSortOf(state);
    const key = JSON.stringify([ofConfig, others.map((r) => [r.runId, r.status, r.method, r.configPath]), state.activeRunId, sort,
      ofConfig.map((r) => state.views[r.runId]?.done !== undefined)]);
    if (key === this.key) return;
    this.key = key;
    const table = runsTable(ofConfig, state.views, sort);
    this.el.setAttribute('description', String(state.runs.length));
    const active = state.activeRunId;
    const parts: Node[] = [];
    if (table.results.length) {
      const metrics = [...new Set(table.results.map((r) => r.metricName).filter((n): n is string => n !== undefined))];
      if (metrics.length) parts.push(h('p', { class: 'note runs-metric', 'data-testid': 'runs-metric' }, `Dense, Pruned, Tuned: ${metrics.join(', ')}`));
      parts.push(h('div', { class: 'table-scroll' }, h('table', { class: 'data-table runs-table', 'data-testid': 'runs-table', 'aria-label': 'Finished runs of this config' },
        h('thead', {}, h('tr', {}, ...COLUMNS.map((c) => h('th', {
          scope: 'col', class: c.className, 'aria-sort': sort.column === c.column ? (sort.descending ? 'descending' : 'ascending') : 'none',
        }, h('button', { type: 'button', class: 'sort-button', 'data-sort': c.column, title: `${c.title}; click to sort` }, c.label))), h('th', { scope: 'col' }, h('span', { class: 'visually-hidden' }, 'Report')))),
        h('tbody', {}, ...table.results.map((r) => resultRow(r, r.run.runId === active))))));
    } else if (!table.running.length) {
      parts.push(h('p', { class: 'placeholder' }, 'Finished runs of this config appear here as a table.'));
    }
    if (table.running.length) parts.push(runList('In progress', 'runs-running', table.running, active));
    if (table.dryRuns.length) parts.push(runList('Dry runs (nothing written)', 'runs-dry', table.dryRuns, active));
    if (table.failures.length) parts.push(runList('Failed or cancelled', 'runs-failed', table.failures, active));
    if (others.length) parts.push(runList('Other configs', 'runs-other', others, active, true));
    // Keep keyboard focus on the sort button or run it was on across the rebuild.
    const focused = this.body.contains(document.activeElement) ? document.activeElement as HTMLElement : undefined;
    const sortKey = focused?.dataset.sort;
    const runKey = focused?.closest<HTMLElement>('[data-run-id]')?.dataset.runId;
    setChildren(this.body, ...parts);
    if (sortKey) this.body.querySelector<HTMLElement>(`[data-sort="${sortKey}"]`)?.focus();
    else if (runKey) this.body.querySelector<HTMLElement>(`[data-run-id="${runKey}"] .run-main`)?.focus();
  }
}

function metricText(name: string | undefined, value: number | undefined): string {
  return name === undefined || value === undefined ? '\u2014' : formatMetricValue({ name, value });
}

function resultRow(r: RunsTableRow, active: boolean): HTMLElement {
  const swatch = h('span', { class: 'swatch', 'aria-hidden': 'true' });
  swatch.style.background = methodColor(r.method);
  const flopsChange = r.flopsBefore > 0 ? ` (${((r.flops / r.flopsBefore - 1) * 100).toFixed(1).replace('-', '\u2212')}%)` : '';
  const spread = r.latencyIqr ? `IQR ${formatMs(r.latencyIqr[0])}\u2013${formatMs(r.latencyIqr[1])}` : '';
  const synthetic = r.synthetic ? ' (synthetic data)' : '';
  const metricName = r.metricName ?? '';
  return h('tr', { class: `run-row${active ? ' active' : ''}`, 'data-run-id': r.run.runId, 'data-status': r.run.status, 'aria-current': active ? 'true' : undefined },
    h('th', { scope: 'row', class: 'run-main', tabindex: 0, role: 'button', title: `${r.run.configPath}\nShow this run` },
      swatch, h('span', { class: 'run-method' }, r.method)),
    h('td', { class: 'wide-only', 'data-column': 'target' }, r.target || '\u2014'),
    h('td', { class: 'wide-only num', 'data-column': 'params' }, formatCount(r.params)),
    h('td', { class: 'num', 'data-column': 'flops', title: `${formatCount(r.flopsBefore)} dense` }, formatCount(r.flops), h('span', { class: 'note' }, flopsChange)),
    h('td', { class: 'num', 'data-column': 'latency', title: spread ? `median, ${spread}` : 'median' },
      r.latencyMs !== undefined ? formatMs(r.latencyMs) : '\u2014',
      ...(r.latencyIqr ? [h('span', { class: 'spread note' }, ` \u00b1${formatMs((r.latencyIqr[1] - r.latencyIqr[0]) / 2)}`)] : [])),
    h('td', { class: 'wide-only num', 'data-column': 'size' }, r.sizeBytes !== undefined ? formatBytes(r.sizeBytes) : '\u2014'),
    h('td', { class: 'wide-only num', 'data-column': 'metricBefore' }, metricText(r.metricName, r.metricBefore)),
    h('td', { class: 'wide-only num', 'data-column': 'metricAfterPruning' }, metricText(r.metricName, r.metricAfterPruning)),
    // The metric's name is said once, above the table: the cell holds the value.
    h('td', { class: 'num run-metrics', 'data-column': 'metricAfter', title: `${metricName}${synthetic}` }, r.metricAfter !== undefined ? `${metricText(r.metricName, r.metricAfter)}${synthetic}` : '\u2014'),
    h('td', { class: 'wide-only num', 'data-column': 'wallTime' }, formatDuration(r.wallTimeMs)),
    h('td', {}, h('vscode-button', { secondary: true, 'data-action': 'open-report', title: 'Open the report', 'aria-label': `Open the report of the ${r.method} run` }, 'Report')));
}

function runList(heading: string, testId: string, runs: RunInfo[], active: string | undefined, showConfig = false): HTMLElement {
  return h('div', { class: 'run-group', 'data-testid': testId },
    h('p', { class: 'run-group-title' }, `${heading} \u00b7 ${runs.length}`),
    h('ul', { class: 'run-items' }, ...runs.map((run) => {
      const swatch = h('span', { class: 'swatch', 'aria-hidden': 'true' });
      swatch.style.background = methodColor(run.method);
      const status = run.status === 'running'
        ? h('vscode-progress-ring', { class: 'run-spinner', 'aria-label': 'running' })
        : h('vscode-badge', { class: `status status-${run.status}` }, run.status);
      const when = run.startedAt > 0 ? new Date(run.startedAt).toLocaleTimeString('en-US', { hour: '2-digit', minute: '2-digit' }) : '';
      const detail = run.status === 'error' || run.status === 'cancelled' ? run.error ?? run.status
        : run.summary?.dryRun || run.dryRun ? `would remove ${formatCount(run.summary?.channelsRemoved ?? 0)} channels` : '';
      return h('li', { class: `run${run.runId === active ? ' active' : ''}`, 'data-run-id': run.runId, 'data-status': run.status, 'aria-current': run.runId === active ? 'true' : undefined },
        h('div', { class: 'run-main', role: 'button', tabindex: 0, title: run.configPath },
          status, swatch,
          h('span', { class: 'run-method' }, run.method),
          ...(showConfig ? [h('span', { class: 'run-config' }, basename(run.configPath || ''))] : []),
          h('span', { class: 'run-time' }, when),
          h('span', { class: 'run-metrics', title: detail }, detail)));
    })));
}

function basename(path: string): string {
  const parts = path.split(/[\\/]/);
  return parts[parts.length - 1] || path;
}
