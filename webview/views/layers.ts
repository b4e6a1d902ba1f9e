/**
 * The layer view: a sortable, filterable table of every layer with a relative bar (% of its channels
 * kept, counts in the title), live sparsity while the method forms it, params, FLOPs and (where measured)
 * latency. Rows are virtualised: only those in the viewport exist in the DOM, so 400+ layers stay fast.
 * Below it, the run's sparsity over time as a heat map (layers × steps) and the selected layer's norm histogram.
 */
import type { LayerStat } from '../../src/protocol/events.js';
import { formatChange, formatCount, formatMs, formatPercent } from '../../src/protocol/format.js';
import { describeLayer, heatmapRows, layerColor, normHistogram, sparsityColor, sparsityScale, statusColor, type HeatmapRow, type Palette } from '../charts-data.js';
import {
  activeView,
  layerFilterOf,
  layerRows,
  layerSortOf,
  liveLayerSparsity,
  selectedLayerStat,
  shownLayers,
  visibleRange,
  type LayerColumn,
  type LayerRow,
  type LayerStatusFilter,
  type LiveSparsity,
  type PanelState,
  type SparsityHistory,
  type UiAction,
} from '../state.js';
import { HistogramChart } from './charts.js';
import { h, setAttr, setChildren, setText, show } from './dom.js';

/** Fixed row height (px) the virtual list positions rows by; media/panel.css gives `.layer` the same. */
export const LAYER_ROW_HEIGHT = 26;
/** Up to this many rows all are in the DOM (cheap, and every row findable); beyond it only the viewport's. */
export const VIRTUALISE_ABOVE = 80;
/** Viewport height used before the list has been laid out (hidden section). */
const FALLBACK_VIEWPORT = 420;

const COLUMNS: { column: LayerColumn; label: string; title: string }[] = [
  { column: 'name', label: 'Layer', title: 'Sort by name' },
  { column: 'kept', label: 'Kept', title: 'Sort by the share of channels kept' },
  { column: 'sparsity', label: 'Sparse', title: 'Sort by sparsity' },
  { column: 'params', label: 'Params', title: 'Sort by parameters' },
  { column: 'flops', label: 'FLOPs', title: 'Sort by FLOPs' },
  { column: 'latency', label: 'Latency', title: 'Sort by measured latency' },
];

const SORT_LABELS: Record<LayerColumn, string> = {
  order: 'model order', name: 'name', kept: '% kept', sparsity: 'sparsity', params: 'params', flops: 'FLOPs', latency: 'latency',
};

export interface LayersViewContext {
  dispatch(action: UiAction): void;
}

type ColourBy = 'sparsity' | 'status';

export class LayersView {
  readonly el: HTMLElement;
  private readonly totals = h('p', { class: 'totals', 'data-testid': 'layer-totals' });
  private readonly search = h('input', {
    type: 'search', class: 'layer-search', placeholder: 'Search layers', 'aria-label': 'Search layers by name', 'data-testid': 'layer-search',
  }) as HTMLInputElement;
  private readonly filter = h('select', { class: 'layer-filter', 'aria-label': 'Show layers by status', 'data-testid': 'layer-filter' },
    h('option', { value: 'all' }, 'All layers'), h('option', { value: 'prunable' }, 'Prunable'),
    h('option', { value: 'coupled' }, 'Coupled'), h('option', { value: 'blocked' }, 'Blocked')) as HTMLSelectElement;
  private readonly sortSelect = h('select', { class: 'layer-sort', 'aria-label': 'Sort layers by', 'data-testid': 'layer-sort' },
    ...(Object.keys(SORT_LABELS) as LayerColumn[]).map((c) => h('option', { value: c }, `Sort: ${SORT_LABELS[c]}`))) as HTMLSelectElement;
  private readonly sortDirection = h('button', { class: 'icon-button layer-sort-direction', type: 'button', 'data-testid': 'layer-sort-direction' });
  private readonly count = h('span', { class: 'layer-count note', 'data-testid': 'layer-count', 'aria-live': 'polite' });
  private readonly toolbar = h('div', { class: 'layer-toolbar', role: 'toolbar', 'aria-label': 'Sort and filter layers' });
  private readonly header = h('div', { class: 'layer-header', role: 'row' });
  private readonly headerCells = new Map<LayerColumn, HTMLElement>();
  private readonly viewport = h('div', { class: 'layer-viewport', 'data-testid': 'layer-viewport' });
  private readonly list = h('ul', { class: 'layer-list', role: 'listbox', 'aria-label': 'Layers', 'data-testid': 'layer-list' });
  private readonly table = h('div', { class: 'layer-table', 'data-testid': 'layer-chart', 'data-bars': '[]' });
  private readonly legend = h('div', { class: 'sparsity-legend', 'aria-hidden': 'true' });
  private readonly heatmap = new SparsityHeatmap();
  private readonly histogramTitle = h('p', { class: 'chart-title', 'data-testid': 'histogram-title' });
  private readonly histogramBox = h('div', { class: 'chart-box histogram', 'data-testid': 'histogram-chart' });
  private readonly placeholder = h('p', { class: 'placeholder' }, 'Layer statistics appear once the session has analysed the model.');
  private readonly histogram: HistogramChart;

  private rows: LayerRow[] = [];
  private selected: string | undefined;
  private palette: Palette | undefined;
  private colourBy: ColourBy = 'sparsity';
  /** The row keyboard focus sits on (roving tabindex), as an index into `rows`. */
  private cursor = 0;
  private windowKey = '';
  private legendKey = '';
  private rowsInputs: unknown[] = [];
  private snapshotDrawn: unknown;
  private scrollScheduled = false;
  private histogramKey = '';
  private histogramPalette: Palette | undefined;
  private histogramDrawn = false;
  /** The viewport's height, kept by a ResizeObserver: reading clientHeight mid-render would force a layout. */
  private viewportHeight = 0;

  constructor(private readonly ctx: LayersViewContext) {
    const s = section('Layers', 'layers');
    this.el = s.el;
    for (const c of COLUMNS) {
      const button = h('button', { type: 'button', class: 'sort-button', 'data-sort': c.column, title: c.title }, c.label);
      const cell = h('span', { class: `layer-head layer-head-${c.column}`, role: 'columnheader', 'aria-sort': 'none' }, button);
      this.headerCells.set(c.column, cell);
      button.addEventListener('click', () => ctx.dispatch({ type: 'ui/sortLayers', column: c.column }));
    }
    setChildren(this.header, h('span', { class: 'layer-head layer-head-swatch', 'aria-hidden': 'true' }), ...this.headerCells.values());
    this.viewport.append(this.list);
    this.table.append(this.header, this.viewport);
    const histCanvas = h('canvas', { role: 'img', 'aria-label': 'Histogram of channel group norms' });
    this.histogramBox.append(histCanvas);
    this.toolbar.append(this.search, this.filter, this.sortSelect, this.sortDirection, this.count);
    s.body.append(this.placeholder, this.totals, this.toolbar, this.table, this.legend, this.heatmap.el, this.histogramTitle, this.histogramBox);
    this.histogram = new HistogramChart(histCanvas);

    this.search.addEventListener('input', () => ctx.dispatch({ type: 'ui/filterLayers', query: this.search.value }));
    this.filter.addEventListener('change', () => ctx.dispatch({ type: 'ui/filterLayers', status: this.filter.value as LayerStatusFilter }));
    this.sortSelect.addEventListener('change', () => ctx.dispatch({ type: 'ui/sortLayers', column: this.sortSelect.value as LayerColumn }));
    this.sortDirection.addEventListener('click', () => ctx.dispatch({ type: 'ui/sortLayers', column: this.sortSelect.value as LayerColumn }));

    const select = (name: string) => ctx.dispatch({ type: 'ui/selectLayer', name });
    this.list.addEventListener('click', (e) => {
      const item = (e.target as Element).closest<HTMLElement>('[data-layer]');
      if (!item?.dataset.layer) return;
      this.cursor = Number(item.dataset.index ?? this.cursor);
      select(item.dataset.layer);
    });
    this.list.addEventListener('keydown', (e) => this.onKey(e, select));
    new ResizeObserver((entries) => {
      const height = entries[entries.length - 1].contentRect.height;
      if (height === this.viewportHeight) return;
      this.viewportHeight = height;
      this.windowKey = '';
      this.renderWindow();
    }).observe(this.viewport);
    this.viewport.addEventListener('scroll', () => {
      if (this.scrollScheduled) return;
      this.scrollScheduled = true;
      requestAnimationFrame(() => {
        this.scrollScheduled = false;
        this.renderWindow();
      });
    });
  }

  render(state: PanelState, palette: Palette): void {
    const started = performance.now();
    const snapshot = shownLayers(state);
    const layers = snapshot?.layers ?? [];
    const hasLayers = layers.length > 0;
    const analysing = state.focus === 'analysis' && state.analysis !== undefined;
    const view = analysing ? undefined : activeView(state);
    show(this.el, hasLayers || (analysing ? !state.analysis!.error : isLive(state)));
    show(this.placeholder, !hasLayers);
    for (const el of [this.totals, this.toolbar, this.table, this.legend]) show(el, hasLayers);
    this.el.setAttribute('description', hasLayers ? `${layers.length} layers` : '');
    if (!hasLayers) {
      show(this.histogramTitle, false);
      show(this.histogramBox, false);
      this.heatmap.render(undefined, [], palette);
      return;
    }
    const colourBy: ColourBy = analysing ? 'status' : 'sparsity';
    const live = view?.sparsity;
    const sort = layerSortOf(state);
    const filter = layerFilterOf(state);

    if (snapshot !== this.snapshotDrawn) {
      this.snapshotDrawn = snapshot;
      const t = snapshot!.totals;
      setText(this.totals, analysing
        ? `${formatCount(t.prunableChannels)} prunable channels \u00b7 ${formatCount(t.params)} params \u00b7 ${formatCount(t.flops)} FLOPs`
        : `${formatCount(t.keptChannels)} of ${formatCount(t.prunableChannels)} prunable channels kept \u00b7 ${formatCount(t.params)} params \u00b7 ${formatCount(t.flops)} FLOPs` +
          (t.zeroGroups ? ` \u00b7 ${formatCount(t.zeroGroups)} zero groups` : ''));
      setAttr(this.table, 'data-bars', JSON.stringify(layers.map((l) => l.kept)));
      setAttr(this.table, 'data-removed', JSON.stringify(layers.map((l) => l.channels - l.kept)));
      setAttr(this.table, 'data-step', `${snapshot!.phase}:${snapshot!.step}`);
    }

    // Rows are recomputed only when what they are made of changed (step events re-render the panel too).
    const inputs = [layers, live, sort, filter];
    if (inputs.some((v, i) => v !== this.rowsInputs[i])) {
      this.rowsInputs = inputs;
      this.rows = layerRows(layers, live, sort, filter);
      this.cursor = Math.min(this.cursor, Math.max(0, this.rows.length - 1));
      setAttr(this.table, 'data-sparsity', JSON.stringify(layers.map((l) => Math.round((liveLayerSparsity(l, live) ?? l.sparsity) * 1000) / 1000)));
      setAttr(this.table, 'data-sparsity-step', live ? `${live.phase}:${live.step}` : undefined);
      setAttr(this.table, 'data-order', JSON.stringify(this.rows.map((r) => r.layer.name)));
      setText(this.count, this.rows.length === layers.length ? `${layers.length} layers` : `${this.rows.length} of ${layers.length} layers`);
      this.windowKey = '';
    }
    for (const [column, cell] of this.headerCells) {
      setAttr(cell, 'aria-sort', sort.column === column ? (sort.descending ? 'descending' : 'ascending') : 'none');
    }
    if (this.sortSelect.value !== sort.column) this.sortSelect.value = sort.column;
    setText(this.sortDirection, sort.descending ? '\u2193' : '\u2191');
    setAttr(this.sortDirection, 'aria-label', `Sorted ${sort.descending ? 'descending' : 'ascending'}; reverse the order`);
    setAttr(this.sortDirection, 'title', `Sorted ${sort.descending ? 'descending' : 'ascending'}; click to reverse`);
    if (this.filter.value !== filter.status) this.filter.value = filter.status;
    if (document.activeElement !== this.search && this.search.value !== filter.query) this.search.value = filter.query;

    const selected = selectedLayerStat(state);
    if (selected?.name !== this.selected || palette !== this.palette || colourBy !== this.colourBy) this.windowKey = '';
    this.selected = selected?.name;
    this.palette = palette;
    this.colourBy = colourBy;
    this.list.style.height = `${this.rows.length * LAYER_ROW_HEIGHT}px`;
    this.renderWindow();
    this.renderLegend(palette, colourBy, live);
    this.heatmap.render(analysing ? undefined : view?.sparsityHistory, layers, palette, live);

    const histogram = normHistogram(selected);
    show(this.histogramTitle, selected !== undefined);
    setText(this.histogramTitle, histogram ? `Channel group norms \u00b7 ${histogram.layer}` : `No norm histogram for ${selected?.name ?? 'this layer'}`);
    show(this.histogramBox, histogram !== undefined);
    setAttr(this.histogramBox, 'data-layer', histogram?.layer);
    setAttr(this.histogramBox, 'data-counts', histogram ? JSON.stringify(histogram.counts) : undefined);
    const selectedRow = selected ? this.rows.find((r) => r.layer === selected) : undefined;
    const selectedColour = selected ? (colourBy === 'status' || selected.status === 'blocked' ? statusColor(selected.status, palette) : sparsityColor(selectedRow?.sparsity ?? selected.sparsity, palette)) : palette.blue;
    // Chart.js redraws cost milliseconds: only when the histogram, its colour or the theme changed.
    const histogramKey = JSON.stringify([histogram, selectedColour]);
    if (histogramKey !== this.histogramKey || palette !== this.histogramPalette) {
      this.histogramKey = histogramKey;
      this.histogramPalette = palette;
      if (histogram || this.histogramDrawn) this.histogram.update(histogram, selectedColour, palette);
      this.histogramDrawn = histogram !== undefined;
    }
    setAttr(this.el, 'data-render-ms', (performance.now() - started).toFixed(1));
  }

  /** Builds the rows in (and just around) the viewport; nothing else of the list is in the DOM. */
  private renderWindow(): void {
    const palette = this.palette;
    if (!palette) return;
    const height = this.viewportHeight || FALLBACK_VIEWPORT;
    const { start, end } = this.rows.length <= VIRTUALISE_ABOVE
      ? { start: 0, end: this.rows.length }
      : visibleRange(this.rows.length, this.viewport.scrollTop, height, LAYER_ROW_HEIGHT);
    const key = `${start}:${end}:${this.cursor}`;
    if (key === this.windowKey) return;
    this.windowKey = key;
    const items: HTMLElement[] = [];
    for (let i = start; i < end; i++) items.push(this.row(this.rows[i], i, palette));
    // Rebuilding the window must not drop keyboard focus (a selection re-renders the rows).
    const hadFocus = this.list.contains(document.activeElement);
    setChildren(this.list, ...items);
    if (hadFocus) this.list.querySelector<HTMLElement>(`[data-index="${this.cursor}"]`)?.focus({ preventScroll: true });
    setAttr(this.list, 'data-window', `${start}-${end}`);
    setAttr(this.list, 'aria-rowcount', String(this.rows.length));
  }

  private row(r: LayerRow, index: number, palette: Palette): HTMLElement {
    const l = r.layer;
    const swatch = h('span', { class: 'swatch', 'aria-hidden': 'true' });
    swatch.style.background = this.colourBy === 'status' || l.status === 'blocked' ? statusColor(l.status, palette) : sparsityColor(r.sparsity, palette);
    const removed = Math.max(0, l.channels - l.kept);
    const countsTitle = `${l.name}: ${formatCount(l.kept)} of ${formatCount(l.channels)} channels kept (${formatPercent(r.keptFraction)})` +
      (removed ? `, ${formatCount(removed)} removed` : '');
    const detail = describeLayer(l, r.live ? r.sparsity : undefined);
    let barCell: HTMLElement;
    if (l.status === 'blocked') {
      // Expected blocking (the output layer, an unsupported op) is information, not an error.
      barCell = h('span', { class: 'layer-bar layer-detail blocked-reason', title: `${l.name} is not pruned: ${l.reason ?? 'not prunable'}` }, detail);
    } else {
      const kept = h('span', { class: 'bar-kept' });
      kept.style.width = `${(r.keptFraction * 100).toFixed(1)}%`;
      kept.style.background = layerColor({ ...l, sparsity: r.sparsity }, palette, this.colourBy);
      // The percentage beside the track, not over it: over a full bar it was unreadable.
      barCell = h('span', { class: 'layer-bar-cell' },
        h('span', { class: 'layer-bar', title: countsTitle, role: 'meter', 'aria-valuemin': 0, 'aria-valuemax': 100, 'aria-valuenow': Math.round(r.keptFraction * 100), 'aria-label': `${formatPercent(r.keptFraction)} kept` }, kept),
        h('span', { class: 'bar-label', 'aria-hidden': 'true' }, formatPercent(r.keptFraction, 0)));
    }
    const li = h('li', {
      class: `layer layer-${l.status}${r.live ? ' layer-live' : ''}`,
      role: 'option',
      tabindex: index === this.cursor ? 0 : -1,
      'aria-selected': l.name === this.selected ? 'true' : 'false',
      'aria-posinset': index + 1,
      'aria-setsize': this.rows.length,
      'aria-label': `${l.name}, ${l.type}, ${detail}`,
      'data-layer': l.name,
      'data-status': l.status,
      'data-index': index,
      'data-sparsity': r.sparsity.toFixed(3),
      title: `${l.name} (${l.type})\n${detail}\n${formatCount(l.params)} params \u00b7 ${formatCount(l.flops)} FLOPs${r.latencyMs !== undefined ? ` \u00b7 ${formatMs(r.latencyMs)}` : ''}`,
    },
    swatch,
    h('span', { class: 'layer-name' }, h('span', { class: 'layer-name-text' }, l.name), ' ', h('span', { class: 'layer-type' }, l.type)),
    barCell,
    // A blocked layer's reason spans the bar and sparsity columns.
    ...(l.status === 'blocked' ? [] : [h('span', { class: `layer-sparsity${r.live ? ' live' : ''}`, title: r.live ? 'Channels at zero under the method\u2019s criterion, now' : 'Zero weights in the kernel' },
      formatPercent(r.sparsity))]),
    h('span', { class: 'layer-num layer-params' }, formatCount(l.params)),
    h('span', { class: 'layer-num layer-flops' }, formatCount(l.flops)),
    h('span', { class: 'layer-num layer-latency', title: latencyTitle(l) }, r.latencyMs !== undefined ? formatMs(r.latencyMs) : '\u2014'),
    ...(l.status === 'blocked' ? [] : [h('span', { class: 'layer-detail visually-hidden' }, detail)]));
    li.style.top = `${index * LAYER_ROW_HEIGHT}px`;
    return li;
  }

  private onKey(e: KeyboardEvent, select: (name: string) => void): void {
    const item = (e.target as Element).closest<HTMLElement>('[data-layer]');
    if (!item) return;
    const page = Math.max(1, Math.floor((this.viewportHeight || FALLBACK_VIEWPORT) / LAYER_ROW_HEIGHT) - 1);
    const index = Number(item.dataset.index ?? 0);
    let next = index;
    switch (e.key) {
      case 'Enter':
      case ' ':
        e.preventDefault();
        if (item.dataset.layer) select(item.dataset.layer);
        return;
      case 'ArrowDown': next = index + 1; break;
      case 'ArrowUp': next = index - 1; break;
      case 'PageDown': next = index + page; break;
      case 'PageUp': next = index - page; break;
      case 'Home': next = 0; break;
      case 'End': next = this.rows.length - 1; break;
      default: return;
    }
    e.preventDefault();
    this.focusRow(Math.max(0, Math.min(this.rows.length - 1, next)));
  }

  /** Moves keyboard focus to a row, scrolling it into the viewport (and so into the DOM) first. */
  private focusRow(index: number): void {
    this.cursor = index;
    const top = index * LAYER_ROW_HEIGHT;
    const height = this.viewportHeight || FALLBACK_VIEWPORT;
    if (top < this.viewport.scrollTop) this.viewport.scrollTop = top;
    else if (top + LAYER_ROW_HEIGHT > this.viewport.scrollTop + height) this.viewport.scrollTop = top + LAYER_ROW_HEIGHT - height;
    this.windowKey = '';
    this.renderWindow();
    this.list.querySelector<HTMLElement>(`[data-index="${index}"]`)?.focus();
  }

  private renderLegend(palette: Palette, colourBy: ColourBy, live: LiveSparsity | undefined): void {
    const key = JSON.stringify([palette, colourBy, live?.criterion]);
    if (key === this.legendKey) return;
    this.legendKey = key;
    const swatch = (colour: string) => {
      const el = h('span', { class: 'swatch' });
      el.style.background = colour;
      return el;
    };
    if (colourBy === 'status') {
      setChildren(this.legend,
        swatch(statusColor('prunable', palette)), h('span', {}, 'prunable'),
        swatch(statusColor('coupled', palette)), h('span', {}, 'coupled'),
        swatch(statusColor('blocked', palette)), h('span', {}, 'blocked'));
      return;
    }
    const stops = [0, 0.25, 0.5, 0.75, 1].map((s) => swatch(sparsityColor(s, palette)));
    setChildren(this.legend, h('span', {}, 'sparsity 0%'), ...stops, h('span', {}, '100%'),
      ...(live ? [h('span', { class: 'note' }, `zero: ${live.criterion}`)] : []),
      h('span', { class: 'note' }, 'bar: % of channels kept'));
  }
}

/**
 * Per-layer sparsity over the run: layers top to bottom in model order, steps left to right, one cell per
 * kept sparsity event. Drawn at one pixel per cell and scaled (no smoothing); the title under the pointer
 * names the layer, the step and the value. A table of the same numbers stands beside it for screen readers.
 */
class SparsityHeatmap {
  readonly el = h('div', { class: 'heatmap', 'data-testid': 'sparsity-heatmap' });
  private readonly title = h('p', { class: 'chart-title' });
  private readonly canvas = h('canvas', { class: 'heatmap-canvas', role: 'img' }) as HTMLCanvasElement;
  private readonly fallback = h('details', { class: 'chart-fallback' }, h('summary', {}, 'Sparsity over time as a table'));
  private readonly fallbackBody = h('div', { class: 'fallback-body' });
  private rows: HeatmapRow[] = [];
  private steps: number[] = [];
  private key: unknown[] = [];
  private scale: { palette?: Palette; colours: ReturnType<typeof sparsityScale> } = { colours: [] };
  /** The box's width, kept by a ResizeObserver (no forced layout while rendering); the picture is redrawn when it changes. */
  private width = 0;
  private palette: Palette | undefined;

  constructor() {
    this.el.hidden = true;
    this.fallback.append(this.fallbackBody);
    const box = h('div', { class: 'heatmap-box' }, this.canvas);
    this.el.append(this.title, box, this.fallback);
    new ResizeObserver((entries) => {
      const width = Math.round(entries[entries.length - 1].contentRect.width);
      if (width === this.width || width === 0) return;
      this.width = width;
      if (this.rows.length && this.palette) this.draw(this.palette);
    }).observe(box);
    this.canvas.addEventListener('mousemove', (e) => {
      const rect = this.canvas.getBoundingClientRect();
      if (!this.rows.length || !this.steps.length || rect.width === 0 || rect.height === 0) return;
      const col = Math.min(this.steps.length - 1, Math.floor(((e.clientX - rect.left) / rect.width) * this.steps.length));
      const row = Math.min(this.rows.length - 1, Math.floor(((e.clientY - rect.top) / rect.height) * this.rows.length));
      const value = this.rows[row].values[col];
      this.canvas.title = `${this.rows[row].layer} \u00b7 step ${this.steps[col]}: ${value === null || value === undefined ? 'not yet measured' : formatPercent(value)}`;
    });
    this.fallback.addEventListener('toggle', () => this.renderFallback());
  }

  render(history: SparsityHistory | undefined, layers: LayerStat[], palette: Palette, live?: LiveSparsity): void {
    const key = [history, layers, palette];
    if (key.every((v, i) => v === this.key[i])) return;
    this.key = key;
    this.palette = palette;
    this.rows = heatmapRows(layers, history);
    this.steps = history?.steps ?? [];
    show(this.el, this.rows.length > 0);
    if (!this.rows.length) return;
    const first = this.steps[0];
    const last = this.steps[this.steps.length - 1];
    const latest = this.rows.map((r) => r.values[r.values.length - 1]).filter((v): v is number => typeof v === 'number');
    const mean = latest.length ? latest.reduce((a, b) => a + b, 0) / latest.length : 0;
    setText(this.title, `Sparsity over time \u00b7 ${this.rows.length} layers \u00d7 ${this.steps.length} steps (${first}\u2013${last})`);
    setAttr(this.canvas, 'aria-label', `Heat map of channel sparsity per layer over training steps ${first} to ${last}` +
      `${live ? ` (zero: ${live.criterion})` : ''}; latest mean ${formatPercent(mean)}. The table below holds the numbers.`);
    setAttr(this.el, 'data-steps', String(this.steps.length));
    setAttr(this.el, 'data-layers', String(this.rows.length));
    this.draw(palette);
    if (this.fallback.open) this.renderFallback();
  }

  private draw(palette: Palette): void {
    const cols = this.steps.length;
    const rows = this.rows.length;
    if (this.scale.palette !== palette) this.scale = { palette, colours: sparsityScale(palette) };
    const scale = this.scale.colours;
    const image = new ImageData(cols, rows);
    for (let r = 0; r < rows; r++) {
      const values = this.rows[r].values;
      for (let c = 0; c < cols; c++) {
        const v = values[c];
        const at = (r * cols + c) * 4;
        if (typeof v !== 'number') continue; // transparent: not measured yet
        const colour = scale[Math.round(Math.min(1, Math.max(0, v)) * 100)];
        image.data[at] = colour.r;
        image.data[at + 1] = colour.g;
        image.data[at + 2] = colour.b;
        image.data[at + 3] = 255;
      }
    }
    const cells = document.createElement('canvas');
    cells.width = cols;
    cells.height = rows;
    cells.getContext('2d')!.putImageData(image, 0, 0);
    const width = Math.max(120, this.width || 280);
    const height = Math.min(320, Math.max(64, rows * 3));
    const dpr = window.devicePixelRatio || 1;
    this.canvas.width = Math.round(width * dpr);
    this.canvas.height = Math.round(height * dpr);
    this.canvas.style.height = `${height}px`;
    const ctx = this.canvas.getContext('2d')!;
    ctx.imageSmoothingEnabled = false;
    ctx.clearRect(0, 0, this.canvas.width, this.canvas.height);
    ctx.drawImage(cells, 0, 0, this.canvas.width, this.canvas.height);
  }

  /** The numbers behind the picture: each layer at the first, middle and latest step (built only when opened). */
  private renderFallback(): void {
    if (!this.fallback.open) return;
    const n = this.steps.length;
    const picks = [...new Set([0, Math.floor((n - 1) / 2), n - 1])].filter((i) => i >= 0);
    const cell = (v: number | null | undefined) => h('td', {}, typeof v === 'number' ? formatPercent(v) : '\u2014');
    setChildren(this.fallbackBody, h('table', { class: 'data-table' },
      h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Layer'), ...picks.map((i) => h('th', { scope: 'col' }, `step ${this.steps[i]}`)))),
      h('tbody', {}, ...this.rows.map((r) => h('tr', {}, h('th', { scope: 'row' }, r.layer), ...picks.map((i) => cell(r.values[i])))))));
  }
}

function section(heading: string, testId: string): { el: HTMLElement; body: HTMLElement } {
  const el = h('vscode-collapsible', { heading, open: true, 'data-testid': `${testId}-section`, class: 'section' });
  const body = h('div', { class: 'section-body' });
  el.append(body);
  return { el, body };
}

/** The active run is still going (so an empty section is about to fill). */
function isLive(state: PanelState): boolean {
  const view = activeView(state);
  const run = state.runs.find((r) => r.runId === state.activeRunId);
  if (run) return run.status === 'running';
  return view !== undefined && !view.done && !view.error;
}

/** "1.20 ms dense → 0.61 ms pruned (−49.2%), the layer alone on wasm, batch 8", or why there is no number. */
export function latencyTitle(layer: LayerStat): string {
  const t = layer.latency;
  if (!t) return 'Not measured: each layer is timed alone at the end of a pruning session';
  const where = `the layer alone on ${t.backend}, batch ${t.batchSize}`;
  if (t.beforeMs !== undefined && t.afterMs !== undefined) return `${formatMs(t.beforeMs)} dense \u2192 ${formatMs(t.afterMs)} pruned (${formatChange(t.beforeMs, t.afterMs)}), ${where}`;
  return t.afterMs !== undefined ? `${formatMs(t.afterMs)} pruned, ${where}` : `${formatMs(t.beforeMs!)} dense, ${where}`;
}
