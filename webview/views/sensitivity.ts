/**
 * The panel's sensitivity view: one curve per channel group (metric against the fraction of its
 * channels removed, the dense model's metric as a reference line) filling in as points stream, and a
 * table of the groups sortable by any column; hovering a row highlights its curve.
 */
import { entryLabel, sensitivityCurves, STRONG_CURVES, type Palette } from '../charts-data.js';
import { formatCount, formatDuration, formatMetricChange, formatMetricValue, formatPercent } from '../../src/protocol/format.js';
import { sensitivityRows, sensitivitySortOf, type PanelState, type SensitivityColumn, type SensitivityRow, type SensitivityView, type UiAction } from '../state.js';
import { SensitivityChart } from './charts.js';
import { h, setAttr, setChildren, setText, show } from './dom.js';

const COLUMNS: { column: SensitivityColumn; label: string; numeric: boolean; title: string }[] = [
  { column: 'group', label: 'Group', numeric: false, title: 'The channel group (layer at a time: the layer)' },
  { column: 'producers', label: 'Producers', numeric: false, title: 'The layers whose output channels the group holds' },
  { column: 'channels', label: 'Channels', numeric: true, title: 'Channels in the group' },
  { column: 'flops', label: 'FLOPs share', numeric: true, title: 'Fraction of the model\'s FLOPs that removing every channel of the group takes away' },
  { column: 'latency', label: 'Latency share', numeric: true, title: 'Fraction of the model\'s summed per-layer time that the group\'s layers take (each layer timed alone)' },
  { column: 'score', label: 'Sensitivity', numeric: true, title: 'Mean fall of the metric from the dense model\'s over the measured ratios: higher is more sensitive' },
];

export class SensitivitySection {
  readonly el: HTMLElement;
  private readonly summary = h('p', { class: 'totals', 'data-testid': 'sensitivity-summary' });
  private readonly note = h('p', { class: 'note', 'data-testid': 'sensitivity-note' });
  private readonly placeholder = h('p', { class: 'placeholder' }, 'Curves appear as the first points are measured.');
  private readonly chartBox = h('div', { class: 'chart-box sensitivity-chart', 'data-testid': 'sensitivity-chart' });
  private readonly table = h('table', { class: 'sensitivity-table', 'data-testid': 'sensitivity-table' });
  private readonly head = h('thead');
  private readonly body = h('tbody');
  private readonly chart: SensitivityChart;
  private chartKey = '';
  private tableKey = '';

  constructor(private readonly dispatch: (action: UiAction) => void) {
    this.el = h('vscode-collapsible', { heading: 'Sensitivity', open: true, 'data-testid': 'sensitivity-section', class: 'section' });
    const body = h('div', { class: 'section-body' });
    this.el.append(body);
    const canvas = h('canvas', { role: 'img', 'aria-label': 'Metric against the fraction of each channel group removed' });
    this.chartBox.append(canvas);
    this.table.append(this.head, this.body);
    body.append(this.summary, this.placeholder, this.chartBox, this.note, h('div', { class: 'table-scroll' }, this.table));
    this.chart = new SensitivityChart(canvas);
    this.head.addEventListener('click', (e) => {
      const column = (e.target as Element).closest<HTMLElement>('[data-sort]')?.dataset.sort as SensitivityColumn | undefined;
      if (column) dispatch({ type: 'ui/sortSensitivity', column });
    });
    this.head.addEventListener('keydown', (e) => {
      const column = (e.target as Element).closest<HTMLElement>('[data-sort]')?.dataset.sort as SensitivityColumn | undefined;
      if (column && (e.key === 'Enter' || e.key === ' ')) {
        e.preventDefault();
        dispatch({ type: 'ui/sortSensitivity', column });
      }
    });
    this.body.addEventListener('mouseover', (e) => {
      const id = (e.target as Element).closest<HTMLElement>('[data-entry]')?.dataset.entry;
      if (id !== undefined) dispatch({ type: 'ui/highlightEntry', id });
    });
    this.table.addEventListener('mouseleave', () => dispatch({ type: 'ui/highlightEntry', id: undefined }));
    this.body.addEventListener('focusin', (e) => {
      const id = (e.target as Element).closest<HTMLElement>('[data-entry]')?.dataset.entry;
      if (id !== undefined) dispatch({ type: 'ui/highlightEntry', id });
    });
  }

  render(state: PanelState, palette: Palette, visible: boolean): void {
    const view = state.sensitivity;
    show(this.el, visible && view !== undefined);
    if (!visible || !view) return;
    const measured = view.entries.reduce((n, e) => n + e.points.length, 0);
    const total = view.entries.length * (view.ratios?.length ?? 0);
    const kind = view.mode === 'layer' ? 'layers' : 'groups';
    this.el.setAttribute('description', `${view.entries.length} ${kind}`);
    setText(this.summary, summaryText(view, measured, total));
    show(this.placeholder, measured === 0 && !view.error);
    show(this.chartBox, measured > 0);
    setText(this.note, noteText(view));
    show(this.note, noteText(view) !== '');

    const highlighted = state.highlightedEntry;
    const chartKey = JSON.stringify([view.analysisId, measured, view.dense, view.metric, highlighted, palette]);
    if (chartKey !== this.chartKey && measured > 0) {
      this.chartKey = chartKey;
      const data = sensitivityCurves(view, palette, highlighted);
      setAttr(this.chartBox, 'data-curves', String(data.curves.length));
      setAttr(this.chartBox, 'data-points', String(measured));
      setAttr(this.chartBox, 'data-strong', JSON.stringify(data.curves.filter((c) => c.strong && !c.highlighted).map((c) => c.key)));
      setAttr(this.chartBox, 'data-highlighted', highlighted ?? '');
      setAttr(this.chartBox, 'data-dense', data.dense ? String(data.dense[0].y) : undefined);
      this.chart.update(data, palette);
    }

    const sort = sensitivitySortOf(state);
    const rows = sensitivityRows(view, sort);
    const tableKey = JSON.stringify([view.analysisId, measured, sort, highlighted, view.entries.map((e) => e.latencyShare)]);
    if (tableKey === this.tableKey) return;
    this.tableKey = tableKey;
    setChildren(this.head, h('tr', {}, ...COLUMNS.map(({ column, label, numeric, title }) => {
      const sorted = sort.column === column;
      return h('th', {
        'data-sort': column,
        class: numeric ? 'numeric' : '',
        tabindex: 0,
        role: 'columnheader button',
        title: `${title}. Click to sort.`,
        'aria-sort': sorted ? (sort.descending ? 'descending' : 'ascending') : 'none',
      }, label, sorted ? (sort.descending ? ' \u25be' : ' \u25b4') : '');
    })));
    setChildren(this.body, ...rows.map((row) => this.row(view, row, row.key === highlighted)));
  }

  private row(view: SensitivityView, row: SensitivityRow, highlighted: boolean): HTMLElement {
    const e = row.entry;
    const metricName = view.metric?.name ?? '';
    // The score in the metric's own terms: points for fractions ("−2.31 pp" read as a fall), a difference otherwise.
    const score = row.score === undefined || !view.dense ? '\u2014'
      : formatMetricChange(metricName, 0, row.score).replace(/^\+/, '');
    return h('tr', { 'data-entry': row.key, tabindex: 0, class: highlighted ? 'highlighted' : '', title: entryLabel(e, view.mode) },
      h('td', {}, String(e.id)),
      h('td', { class: 'producers' }, e.producers.join(', ')),
      h('td', { class: 'numeric' }, formatCount(e.channels)),
      h('td', { class: 'numeric' }, formatPercent(e.flopsShare)),
      h('td', { class: 'numeric', 'data-column': 'latency' }, formatPercent(e.latencyShare)),
      h('td', { class: 'numeric', 'data-column': 'score', 'data-score': row.score === undefined ? undefined : String(row.score) }, score));
  }
}

function summaryText(view: SensitivityView, measured: number, total: number): string {
  const kind = view.mode === 'layer' ? 'layers' : 'groups';
  const parts = [`${view.model ?? ''}`.trim(), `${view.entries.length} ${kind}`];
  if (view.samples !== undefined) parts.push(`${formatCount(view.samples)} samples`);
  if (view.metric && view.dense) parts.push(`dense ${view.metric.name} ${formatMetricValue({ name: view.metric.name, value: view.dense.metric })}`);
  if (view.file) parts.push(view.wallTimeMs !== undefined ? `done in ${formatDuration(view.wallTimeMs)}${view.cached ? ' (cached)' : ''}` : 'done');
  else if (view.error) parts.push(view.error.cancelled ? 'cancelled' : 'failed');
  else if (total > 0) parts.push(`${measured}/${total} points`);
  return parts.filter(Boolean).join(' \u00b7 ');
}

function noteText(view: SensitivityView): string {
  const notes: string[] = [];
  if (view.error) notes.push(view.error.cancelled ? 'Cancelled; nothing was written.' : `Error: ${view.error.message}`);
  if (view.entries.length > STRONG_CURVES) notes.push(`The ${STRONG_CURVES} most sensitive curves are drawn in colour; hover a row to pick out its curve.`);
  if (view.latency && 'skipped' in view.latency) notes.push(view.latency.skipped);
  if (view.file) notes.push(`Report: ${basename(view.file)}`);
  return notes.join(' ');
}

function basename(path: string): string {
  const parts = path.split(/[\\/]/);
  return parts[parts.length - 1] || path;
}
