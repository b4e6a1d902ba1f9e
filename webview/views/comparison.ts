/**
 * "Compare with original": the pruned model's layers beside the original's in a sortable table (layer, type,
 * channels, params, FLOPs and, where the session timed each layer alone, latency; each as before → after with
 * the change). Shown in the editor area, for a report opened there or alone for Compare with original.
 * Above VIRTUALISE_ABOVE layers the rows are virtualised as in the layer view: only those in (and just
 * around) the viewport exist, between two spacer rows that keep the table's height. The table scrolls in
 * its own box below a report's layer view, and with the page when it stands alone (Compare with original).
 */
import type { LayerComparisonRow } from '../../src/protocol/webview.js';
import { formatChange, formatCount, formatMs } from '../../src/protocol/format.js';
import { comparisonRows, comparisonSortOf, visibleRange, type ComparisonColumn, type PanelState, type UiAction } from '../state.js';
import { h, setAttr, setChildren, setText, show } from './dom.js';
import { VIRTUALISE_ABOVE } from './layers.js';

/** Fixed row height (px) the virtual window positions rows by; media/panel.css gives `.layer-comparison tbody tr` the same. */
export const COMPARISON_ROW_HEIGHT = 24;


const COLUMNS: { column: ComparisonColumn; label: string; title: string; numeric?: boolean; className?: string }[] = [
  { column: 'name', label: 'Layer', title: 'Sort by layer name (click again to reverse)' },
  { column: 'type', label: 'Type', title: 'Sort by layer type', className: 'comparison-type' },
  { column: 'channels', label: 'Channels', title: 'Output channels, original \u2192 pruned; sorts by the pruned count', numeric: true },
  { column: 'params', label: 'Params', title: 'Parameters, original \u2192 pruned; sorts by the pruned count', numeric: true },
  { column: 'flops', label: 'FLOPs', title: 'FLOPs per sample, original \u2192 pruned; sorts by the pruned count', numeric: true },
  { column: 'latency', label: 'Latency', title: 'The layer timed alone, original \u2192 pruned (where measured); sorts by the pruned time', numeric: true },
];

export interface ComparisonTableContext {
  dispatch(action: UiAction): void;
}

export class ComparisonTableView {
  readonly el: HTMLElement;
  private readonly note = h('p', { class: 'note', 'data-testid': 'layer-comparison-note' });
  private readonly body = h('div', { class: 'table-scroll layer-comparison-scroll' });
  private key = '';
  private rows: LayerComparisonRow[] = [];
  private tbody: HTMLTableSectionElement | undefined;
  private windowKey = '';
  private scrollScheduled = false;

  constructor(ctx: ComparisonTableContext) {
    this.el = h('vscode-collapsible', { heading: 'Compared with the original', open: true, 'data-testid': 'layer-comparison-section', class: 'section' });
    this.el.append(h('div', { class: 'section-body' }, this.note, this.body));
    this.el.hidden = true;
    this.body.addEventListener('click', (e) => {
      const sort = (e.target as Element).closest<HTMLElement>('[data-sort]')?.dataset.sort;
      if (sort) ctx.dispatch({ type: 'ui/sortComparison', column: sort as ComparisonColumn });
    });
    const onScroll = () => {
      if (this.scrollScheduled || this.rows.length <= VIRTUALISE_ABOVE) return;
      this.scrollScheduled = true;
      requestAnimationFrame(() => {
        this.scrollScheduled = false;
        this.renderWindow();
      });
    };
    this.body.addEventListener('scroll', onScroll, { passive: true });
    window.addEventListener('scroll', onScroll, { passive: true });
    window.addEventListener('resize', onScroll);
  }

  render(state: PanelState, visible: boolean): void {
    const report = state.report;
    show(this.el, visible && report !== undefined);
    if (!visible || !report) return;
    const sort = comparisonSortOf(state);
    const key = JSON.stringify([report.file, report.comparison.length, sort, report.layerTiming]);
    // The rows of one report do not change; a new report or sort rebuilds the table.
    if (key === this.key && this.body.firstChild) return;
    this.key = key;
    const started = performance.now();
    const rows = comparisonRows(report.comparison, sort);
    this.rows = rows;
    const timed = report.comparison.some((r) => r.latencyMs);
    setText(this.note, `${report.comparison.length} layers with output channels, original \u2192 pruned` +
      (report.layerTiming ? ` \u00b7 latency: each layer alone on ${report.layerTiming.backend}, batch ${report.layerTiming.batchSize}` : timed ? '' : ' \u00b7 latency: not measured layer by layer'));
    this.el.setAttribute('description', `${report.comparison.length} layers`);
    const table = h('table', { class: 'data-table layer-comparison', 'data-testid': 'layer-comparison', 'aria-label': 'Layers of the pruned model beside the original', 'aria-rowcount': rows.length + 1 },
      h('thead', {}, h('tr', {}, ...COLUMNS.map((c) => h('th', {
        scope: 'col', class: [c.numeric ? 'num' : '', c.className ?? ''].join(' ').trim() || undefined, 'data-column': c.column,
        'aria-sort': sort.column === c.column ? (sort.descending ? 'descending' : 'ascending') : 'none',
      }, h('button', { type: 'button', class: 'sort-button', 'data-sort': c.column, title: c.title }, c.label))))),
      this.tbody = h('tbody', {}));
    setAttr(table, 'data-order', JSON.stringify(rows.map((r) => r.name)));
    setAttr(table, 'data-timed', String(rows.filter((r) => r.latencyMs?.after !== undefined || r.latencyMs?.before !== undefined).length));
    // Keyboard focus stays on the header it sorted by.
    const focused = this.body.contains(document.activeElement) ? (document.activeElement as HTMLElement).dataset.sort : undefined;
    setChildren(this.body, table);
    // A new order starts at its top.
    this.body.scrollTop = 0;
    this.windowKey = '';
    this.renderWindow();
    if (focused) this.body.querySelector<HTMLElement>(`[data-sort="${focused}"]`)?.focus();
    // How long the table took to build: tests hold 400 layers to the render budget.
    setAttr(this.el, 'data-render-ms', (performance.now() - started).toFixed(1));
  }

  /** The rows in (and just around) the viewport, between spacers as tall as the rows left out; all of them up to VIRTUALISE_ABOVE. */
  private renderWindow(): void {
    const tbody = this.tbody;
    if (!tbody) return;
    const total = this.rows.length;
    // Where the rows start against the visible part of the scroll box (or of the window, when the page scrolls):
    // the rows scrolled past are those above it; no more than a window's height of rows can show.
    const { start, end } = total <= VIRTUALISE_ABOVE
      ? { start: 0, end: total }
      : visibleRange(total, Math.max(0, Math.max(this.body.getBoundingClientRect().top, 0) - tbody.getBoundingClientRect().top), window.innerHeight, COMPARISON_ROW_HEIGHT);
    const key = `${start}:${end}`;
    if (key === this.windowKey && tbody.firstChild) return;
    this.windowKey = key;
    const items: HTMLElement[] = [];
    if (start > 0) items.push(spacer(start));
    for (let i = start; i < end; i++) items.push(comparisonRow(this.rows[i], i));
    if (end < total) items.push(spacer(total - end));
    setChildren(tbody, ...items);
    setAttr(tbody, 'data-window', `${start}-${end}`);
  }
}

/** Stands in for `count` rows left out of the DOM. */
function spacer(count: number): HTMLElement {
  const cell = h('td', { colspan: COLUMNS.length });
  cell.style.height = `${count * COMPARISON_ROW_HEIGHT}px`;
  return h('tr', { class: 'comparison-spacer', 'aria-hidden': 'true' }, cell);
}

function comparisonRow(r: LayerComparisonRow, index: number): HTMLElement {
  const t = r.latencyMs;
  // aria-rowindex counts the header row: a screen reader hears the place in the whole table, not the window.
  return h('tr', { 'data-layer': r.name, 'data-status': r.status, 'aria-rowindex': index + 2 },
    h('th', { scope: 'row', class: 'comparison-name', title: `${r.name} (${r.type}, ${r.status})` }, r.name),
    h('td', { class: 'comparison-type', 'data-column': 'type' }, r.type),
    change('channels', r.channels.before, r.channels.after, String),
    change('params', r.params.before, r.params.after, formatCount),
    change('flops', r.flops.before, r.flops.after, formatCount),
    t && t.before !== undefined && t.after !== undefined ? change('latency', t.before, t.after, formatMs)
      : h('td', { class: 'num', 'data-column': 'latency' }, t?.after !== undefined ? formatMs(t.after) : t?.before !== undefined ? formatMs(t.before) : '\u2014'));
}

/** "8 → 5 −37.5%": the change only where there was one. */
function change(column: string, before: number, after: number, format: (n: number) => string): HTMLElement {
  const same = before === after;
  return h('td', { class: 'num', 'data-column': column, 'data-before': before, 'data-after': after },
    same ? format(before) : `${format(before)} \u2192 ${format(after)}`,
    ...(same || before === 0 ? [] : [h('span', { class: `note change ${after < before ? 'down' : 'up'}` }, ` ${formatChange(before, after)}`)]));
}
