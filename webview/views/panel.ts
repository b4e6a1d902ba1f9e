/**
 * The side panel's views. Each section builds its DOM once and updates it in place from the
 * state; lists are rebuilt only when what they show changed.
 */
import type { DoneEvent, LayerStat } from '../../src/protocol/events.js';
import type { RunInfo, WebviewMessage } from '../../src/protocol/webview.js';
import {
  comparisonData,
  curveData,
  describeLayer,
  layerColor,
  methodColor,
  normHistogram,
  signalLines,
  sparsityColor,
  statusColor,
  type Palette,
} from '../charts-data.js';
import {
  formatAccuracy, formatBytes, formatChange, formatCount, formatDuration, formatEta, formatMetricChange, formatMetricValue, formatMs, formatOnnxCheck,
  formatPointChange, formatRecovery,
} from '../../src/protocol/format.js';
import {
  activeRun,
  activeSummary,
  activeView,
  onSyntheticData,
  runsOfConfig,
  selectedLayerStat,
  sessionContext,
  shownLayers,
  type PanelState,
  type RunError,
  type UiAction,
} from '../state.js';
import { ComparisonChart, CurvesChart, HistogramChart, LayerChart, SignalChart } from './charts.js';
import { h, setAttr, setChildren, setText, show } from './dom.js';
import { SensitivitySection } from './sensitivity.js';

export interface PanelContext {
  dispatch(action: UiAction): void;
  post(message: WebviewMessage): void;
}

const PHASE_LABELS: Record<string, string> = {
  load: 'Loading',
  evaluate: 'Evaluating',
  train: 'Training',
  prune: 'Pruning',
  finetune: 'Fine-tuning',
  save: 'Saving',
  report: 'Writing report',
};

export class PanelView {
  private readonly header: HeaderView;
  private readonly banner = new BannerView();
  private readonly summary = new SummaryView();
  private readonly analysis = new AnalysisCardView();
  private readonly layers: LayersView;
  private readonly training = new TrainingView();
  private readonly comparison: ComparisonView;
  private readonly runs: RunsView;
  private readonly sensitivity: SensitivitySection;
  private readonly empty = h('p', { class: 'empty', 'data-testid': 'empty-state' },
    'No pruning runs yet. Run \u201cPruneLens: Prune\u201d on a *.prune.json file, or analyse a model.json to see which layers can be pruned.');

  constructor(root: HTMLElement, ctx: PanelContext) {
    this.header = new HeaderView(ctx);
    this.layers = new LayersView(ctx);
    this.comparison = new ComparisonView(ctx);
    this.runs = new RunsView(ctx);
    this.sensitivity = new SensitivitySection((action) => ctx.dispatch(action));
    setChildren(root,
      this.header.el, this.banner.el, this.empty, this.summary.el, this.analysis.el, this.sensitivity.el,
      this.layers.el, this.training.el, this.comparison.el, this.runs.el);
  }

  render(state: PanelState, palette: Palette): void {
    const sensing = state.focus === 'sensitivity' && state.sensitivity !== undefined;
    const analysing = state.focus === 'analysis' && state.analysis !== undefined;
    const hasContent = state.runs.length > 0 || state.analysis !== undefined || state.sensitivity !== undefined || Object.keys(state.views).length > 0;
    show(this.empty, !hasContent);
    this.header.render(state, analysing, sensing);
    this.sensitivity.render(state, palette, sensing);
    // The sensitivity view stands alone: the run's sections come back with the run's focus.
    for (const el of [this.banner.el, this.summary.el, this.analysis.el, this.layers.el, this.training.el, this.comparison.el]) if (sensing) show(el, false);
    if (!sensing) {
      this.banner.render(state, analysing);
      this.summary.render(analysing ? undefined : activeSummary(state));
      this.analysis.render(analysing ? state : undefined);
      this.layers.render(state, palette);
      this.training.render(analysing ? undefined : state, palette);
      this.comparison.render(state, palette);
    }
    this.runs.render(state);
  }
}

class HeaderView {
  readonly el: HTMLElement;
  private readonly title = h('span', { class: 'run-title', 'data-testid': 'run-title' });
  private readonly status = h('vscode-badge', { 'data-testid': 'run-status' });
  private readonly phase = h('span', { class: 'phase', 'data-testid': 'phase' });
  private readonly eta = h('span', { class: 'eta', 'data-testid': 'eta' });
  /** What the run trains on and how: "Data: … · Objective: …". */
  private readonly context = h('div', { class: 'context-line note', 'data-testid': 'run-context' });
  private readonly progress = h('vscode-progress-bar', { 'data-testid': 'progress', max: 100, 'aria-label': 'Session progress' }) as HTMLElement & { value?: number };
  private readonly cancel = h('vscode-button', { 'data-testid': 'cancel-button', title: 'Stop this run' }, 'Cancel');
  private readonly rerun = h('vscode-button', { 'data-testid': 'rerun-button', secondary: true, title: 'Run the same config again' }, 'Rerun');
  private readonly report = h('vscode-button', { 'data-testid': 'report-button', secondary: true }, 'Open report');
  private readonly switchFocus = h('vscode-button', { 'data-testid': 'focus-button', secondary: true });
  private readonly sensitivityFocus = h('vscode-button', { 'data-testid': 'sensitivity-focus-button', secondary: true }, 'Show sensitivity');
  private runId: string | undefined;
  private target: 'run' | 'analysis' = 'run';

  constructor(ctx: PanelContext) {
    this.el = h('header', { class: 'header', 'data-testid': 'header' },
      h('div', { class: 'title-line' }, this.title, this.status),
      h('div', { class: 'phase-line' }, this.phase, this.eta),
      this.context,
      this.progress,
      h('div', { class: 'actions' }, this.cancel, this.rerun, this.report, this.switchFocus, this.sensitivityFocus));
    this.sensitivityFocus.addEventListener('click', () => ctx.dispatch({ type: 'ui/focus', focus: 'sensitivity' }));
    this.cancel.addEventListener('click', () => this.runId && ctx.post({ type: 'cancelRun', runId: this.runId }));
    this.rerun.addEventListener('click', () => this.runId && ctx.post({ type: 'rerun', runId: this.runId }));
    this.report.addEventListener('click', () => this.runId && ctx.post({ type: 'openReport', runId: this.runId }));
    this.switchFocus.addEventListener('click', () => ctx.dispatch({ type: 'ui/focus', focus: this.target }));
  }

  render(state: PanelState, analysing: boolean, sensing = false): void {
    const run = activeRun(state);
    const view = activeView(state);
    this.runId = run?.runId ?? view?.runId;
    const hasRun = this.runId !== undefined;
    show(this.el, hasRun || state.analysis !== undefined || state.sensitivity !== undefined);

    this.target = analysing || sensing ? (hasRun ? 'run' : 'analysis') : 'analysis';
    show(this.switchFocus, sensing ? hasRun || state.analysis !== undefined : hasRun && state.analysis !== undefined);
    setText(this.switchFocus, this.target === 'run' ? 'Show run' : 'Show analysis');
    show(this.sensitivityFocus, !sensing && state.sensitivity !== undefined);

    if (sensing) {
      const s = state.sensitivity!;
      const done = s.file !== undefined;
      setText(this.title, `Sensitivity \u00b7 ${basename(s.configPath)}`);
      setText(this.status, s.error ? (s.error.cancelled ? 'cancelled' : 'error') : done ? 'done' : 'running');
      setAttr(this.status, 'class', `status status-${s.error ? (s.error.cancelled ? 'cancelled' : 'error') : done ? 'done' : 'running'}`);
      setText(this.phase, s.metric ? `${s.mode === 'layer' ? 'Each producer layer alone' : 'Each channel group'}: its lowest-L2 channels removed, ${s.metric.name} on ${s.samples} samples${s.backend ? ` \u00b7 backend ${s.backend}` : ''}` : 'Loading the model and data\u2026');
      setText(this.eta, '');
      show(this.context, false);
      const measured = s.entries.reduce((n, e) => n + e.points.length, 0);
      const total = s.entries.length * (s.ratios?.length ?? 0);
      show(this.progress, !done && !s.error);
      if (total > 0) {
        this.progress.removeAttribute('indeterminate');
        this.progress.value = Math.round((measured / total) * 100);
      } else this.progress.setAttribute('indeterminate', '');
      for (const b of [this.cancel, this.rerun, this.report]) show(b, false);
      return;
    }

    if (analysing) {
      const a = state.analysis!;
      setText(this.title, `Analysis \u00b7 ${basename(a.modelPath)}`);
      const status = a.error ? 'error' : a.done ? 'analysed' : 'analysing';
      setText(this.status, status);
      setAttr(this.status, 'class', `status status-${a.error ? 'error' : a.done ? 'done' : 'running'}`);
      setText(this.phase, a.model ? `${a.model.name} \u00b7 ${a.model.layers} layers \u00b7 backend ${a.backend ?? '?'}` : 'Reading the model\u2026');
      setText(this.eta, '');
      show(this.context, false);
      show(this.progress, !a.done && !a.error);
      this.progress.setAttribute('indeterminate', '');
      for (const b of [this.cancel, this.rerun, this.report]) show(b, false);
      return;
    }

    this.progress.removeAttribute('indeterminate');
    const status = run?.status ?? (view?.done ? 'done' : view?.error ? (view.error.cancelled ? 'cancelled' : 'error') : 'running');
    const method = view?.method ?? run?.method ?? '';
    const config = view?.configPath ?? run?.configPath;
    setText(this.title, [method, config ? basename(config) : ''].filter(Boolean).join(' \u00b7 '));
    setText(this.status, view?.dryRun && status === 'done' ? 'dry run' : status);
    setAttr(this.status, 'class', `status status-${status}`);

    const running = status === 'running';
    if (running && view) {
      const parts = [PHASE_LABELS[view.phase ?? 'load'] ?? view.phase ?? ''];
      if (view.epoch && (view.phase === 'train' || view.phase === 'finetune') && view.epoch.phase === view.phase) {
        parts.push(`epoch ${view.epoch.epoch}/${view.epoch.epochs}`);
      }
      if (view.phaseMessage) parts.push(view.phaseMessage);
      setText(this.phase, parts.filter(Boolean).join(' \u00b7 '));
      setText(this.eta, view.etaMs ? `${formatEta(view.etaMs)} left` : '');
      this.progress.value = Math.round(view.progress * 100);
    } else {
      const done = view?.done ?? run?.summary;
      setText(this.phase, done ? `Finished in ${formatDuration(done.wallTimeMs)} on ${done.backend}` : '');
      setText(this.eta, '');
    }
    const context = sessionContext(view, view?.done ?? run?.summary);
    const contextText = [context.data && `Data: ${context.data}`, context.objective && `Objective: ${context.objective}`].filter(Boolean).join(' \u00b7 ');
    setText(this.context, contextText);
    show(this.context, contextText !== '');
    show(this.progress, running);
    show(this.cancel, running);
    show(this.rerun, !running && hasRun);
    show(this.report, status === 'done' && !view?.dryRun);
  }
}

class BannerView {
  readonly el = h('section', { class: 'banner', role: 'alert', 'data-testid': 'error-banner' });
  private readonly warnings = h('details', { class: 'warnings', 'data-testid': 'warnings' });

  constructor() {
    this.el.hidden = true;
    this.warnings.hidden = true;
  }

  render(state: PanelState, analysing: boolean): void {
    const error = analysing ? state.analysis?.error : activeView(state)?.error ?? runError(activeRun(state));
    const warnings = (analysing ? state.analysis?.warnings : activeView(state)?.warnings) ?? [];
    show(this.el, error !== undefined || warnings.length > 0);
    const key = JSON.stringify([error, warnings]);
    if (this.el.dataset.key === key) return;
    this.el.dataset.key = key;
    const children: Node[] = [];
    if (error) {
      this.el.className = error.cancelled ? 'banner banner-info' : 'banner banner-error';
      const where = [error.file ? basename(error.file) : '', error.field ?? ''].filter(Boolean).join(' \u203a ');
      children.push(h('p', { class: 'banner-message', 'data-testid': 'error-message' },
        error.cancelled ? 'Cancelled. ' : 'Error: ', error.message));
      if (where) children.push(h('p', { class: 'banner-where' }, where));
    } else {
      this.el.className = 'banner banner-warning';
    }
    if (warnings.length > 0) {
      setChildren(this.warnings,
        h('summary', {}, `${warnings.length} warning${warnings.length === 1 ? '' : 's'}`),
        h('ul', {}, ...warnings.map((w) => h('li', {}, w))));
      this.warnings.hidden = false;
      children.push(this.warnings);
    }
    setChildren(this.el, ...children);
  }
}

function runError(run: RunInfo | undefined): RunError | undefined {
  if (!run || (run.status !== 'error' && run.status !== 'cancelled')) return undefined;
  return { message: run.error ?? '', cancelled: run.status === 'cancelled' };
}

/** Before → after of everything that was measured, as readable text. */
class SummaryView {
  readonly el = h('section', { class: 'card summary-card', 'data-testid': 'summary-card', 'aria-label': 'Result' });
  private key = '';

  constructor() {
    this.el.hidden = true;
  }

  render(summary: DoneEvent | undefined): void {
    show(this.el, summary !== undefined);
    const key = summary ? JSON.stringify(summary) : '';
    if (!summary || key === this.key) return;
    this.key = key;
    const s = summary;
    const rows: HTMLElement[] = [
      metricRow('params', 'Params', formatCount(s.before.params), formatCount(s.after.params), formatChange(s.before.params, s.after.params)),
      metricRow('flops', 'FLOPs', formatCount(s.before.flops), formatCount(s.after.flops), formatChange(s.before.flops, s.after.flops)),
    ];
    const synthetic = s.data?.synthetic === true;
    const metric = s.metric;
    if (metric) {
      // The metric by the name the engine gave it (top-1, F1, MAE, agreement with the dense model, ...); the row keeps
    // its `summary-accuracy` hook, the one row that says how good the model is.
      const value = (v: number) => formatMetricValue({ name: metric.name, value: v });
      rows.push(metricRow('accuracy', synthetic ? `${metric.name} (synthetic)` : metric.name, value(metric.before), value(metric.after),
        formatMetricChange(metric.name, metric.before, metric.after)));
    } else if (s.accuracy) {
      rows.push(metricRow('accuracy', synthetic ? 'Accuracy (synthetic)' : 'Accuracy', formatAccuracy(s.accuracy.before), formatAccuracy(s.accuracy.after),
        formatPointChange(s.accuracy.before, s.accuracy.after)));
    }
    if (s.latency) {
      rows.push(metricRow('latency', 'Latency', formatMs(s.latency.before.medianMs), formatMs(s.latency.after.medianMs),
        `${s.latency.speedup.toFixed(2)}\u00d7 faster`));
    }
    if (s.size) rows.push(metricRow('size', 'File size', formatBytes(s.size.before), formatBytes(s.size.after), formatChange(s.size.before, s.size.after)));

    const channels = s.dryRun
      ? `Dry run: ${formatCount(s.channelsRemoved)} channels would be removed`
      : s.physicallyRemoved
        ? `${formatCount(s.channelsRemoved)} channels physically removed`
        : `${formatCount(s.channelsRemoved)} channels masked (zeroed, not removed)`;
    const headline = s.latency ? `${s.latency.speedup.toFixed(2)}\u00d7 faster` : `${formatChange(s.before.flops, s.after.flops)} FLOPs`;
    const notes: string[] = [];
    // What fine-tuning bought; the metric's name is on the row above, the data and objective in the header.
    const recovery = metric && !s.dryRun
      ? [h('p', { class: 'recovery', 'data-testid': 'summary-recovery' }, h('span', { class: 'metric-label' }, 'Recovery'), ' ', formatRecovery(metric))]
      : [];
    if (s.latency) notes.push(`latency: median of ${s.latency.after.runs} runs, batch ${s.latency.after.batchSize}, ${s.latency.runtime ?? s.latency.after.backend}`);
    if (s.onnx) notes.push(`checked in ${formatOnnxCheck(s.onnx)}`);
    if (s.output) notes.push(`saved to ${basename(s.output)}`);

    this.el.dataset.summary = JSON.stringify({
      params: s.before.params !== undefined ? { before: s.before.params, after: s.after.params } : undefined,
      flops: { before: s.before.flops, after: s.after.flops },
      accuracy: s.accuracy,
      metric: s.metric,
      syntheticData: synthetic,
      latencyMs: s.latency ? { before: s.latency.before.medianMs, after: s.latency.after.medianMs } : undefined,
      speedup: s.latency?.speedup,
      size: s.size,
      channelsRemoved: s.channelsRemoved,
      physicallyRemoved: s.physicallyRemoved,
    });
    setChildren(this.el,
      h('div', { class: 'card-title' },
        h('span', {}, s.dryRun ? 'Dry run' : `Pruned with ${s.method}`),
        h('vscode-badge', { class: 'speedup', 'data-testid': 'speedup' }, headline)),
      h('div', { class: 'metrics' }, ...rows),
      ...recovery,
      ...(synthetic ? [h('p', { class: 'note synthetic-note', 'data-testid': 'summary-synthetic' }, SYNTHETIC_SUMMARY_NOTE)] : []),
      h('p', { class: s.physicallyRemoved ? 'channels removed' : 'channels masked', 'data-testid': 'channels-removed' }, channels),
      ...(notes.length ? [h('p', { class: 'note' }, notes.join(' \u00b7 '))] : []));
  }
}

const SYNTHETIC_SUMMARY_NOTE = 'Accuracy on synthetic data (meaningless): a pipeline check only. Point "data" in the config at real data.';

function metricRow(id: string, label: string, before: string, after: string, change: string): HTMLElement {
  // Spaces between the spans keep textContent readable: "Params 210,000 → 95,000 −54.8%".
  return h('div', { class: 'metric', 'data-metric': id, 'data-testid': `summary-${id}` },
    h('span', { class: 'metric-label' }, label), ' ',
    h('span', { class: 'metric-before' }, before), ' ',
    h('span', { class: 'metric-arrow', 'aria-label': 'to' }, '\u2192'), ' ',
    h('span', { class: 'metric-after' }, after), ' ',
    h('span', { class: 'metric-change' }, change));
}

/** What an analysis found: how much of the model can be pruned, and what blocks the rest. */
class AnalysisCardView {
  readonly el = h('section', { class: 'card analysis-card', 'data-testid': 'analysis-card' });
  private key = '';

  constructor() {
    this.el.hidden = true;
  }

  render(state: PanelState | undefined): void {
    const a = state?.analysis;
    show(this.el, a !== undefined && (a.model !== undefined || a.layers !== undefined));
    if (!a) return;
    const key = JSON.stringify([a.model, a.layers?.totals, a.layers?.layers.length]);
    if (key === this.key) return;
    this.key = key;
    const layers = a.layers?.layers ?? [];
    const count = (status: LayerStat['status']) => layers.filter((l) => l.status === status).length;
    const children: Node[] = [h('div', { class: 'card-title' }, h('span', {}, a.model?.name ?? basename(a.modelPath)))];
    if (a.model) {
      children.push(h('div', { class: 'metrics' },
        statRow('params', 'Params', formatCount(a.model.params)),
        statRow('flops', 'FLOPs', formatCount(a.model.flops)),
        statRow('groups', 'Prunable groups', formatCount(a.model.prunableGroups)),
        statRow('channels', 'Prunable channels', formatCount(a.model.prunableChannels))));
    }
    if (layers.length) {
      children.push(h('p', { class: 'note', 'data-testid': 'prunability' },
        `${count('prunable')} prunable \u00b7 ${count('coupled')} coupled \u00b7 ${count('blocked')} blocked`));
    }
    setChildren(this.el, ...children);
  }
}

function statRow(id: string, label: string, value: string): HTMLElement {
  return h('div', { class: 'metric', 'data-metric': id }, h('span', { class: 'metric-label' }, label), ' ', h('span', { class: 'metric-after' }, value));
}

/** The active run is still going (so empty sections are about to fill). */
function isLive(state: PanelState): boolean {
  const view = activeView(state);
  const run = activeRun(state);
  if (run) return run.status === 'running';
  return view !== undefined && !view.done && !view.error;
}

function section(heading: string, testId: string): { el: HTMLElement; body: HTMLElement } {
  const el = h('vscode-collapsible', { heading, open: true, 'data-testid': `${testId}-section`, class: 'section' });
  const body = h('div', { class: 'section-body' });
  el.append(body);
  return { el, body };
}

class LayersView {
  readonly el: HTMLElement;
  private readonly totals = h('p', { class: 'totals', 'data-testid': 'layer-totals' });
  private readonly chartBox = h('div', { class: 'chart-box', 'data-testid': 'layer-chart', 'data-bars': '[]' });
  private readonly legend = h('div', { class: 'sparsity-legend', 'aria-hidden': 'true' });
  private readonly list = h('ul', { class: 'layer-list', role: 'listbox', 'aria-label': 'Layers', 'data-testid': 'layer-list' });
  private readonly histogramTitle = h('p', { class: 'chart-title', 'data-testid': 'histogram-title' });
  private readonly histogramBox = h('div', { class: 'chart-box histogram', 'data-testid': 'histogram-chart' });
  private readonly placeholder = h('p', { class: 'placeholder' }, 'Layer statistics appear once the session has analysed the model.');
  private readonly chart: LayerChart;
  private readonly histogram: HistogramChart;
  private listKey = '';
  private legendKey = '';
  /** What the charts were last drawn from: step events re-render the panel, but leave the layers as they were. */
  private drawn: { snapshot?: unknown; selected?: string; palette?: Palette; colourBy?: string } = {};

  constructor(ctx: PanelContext) {
    const s = section('Layers', 'layers');
    this.el = s.el;
    const canvas = h('canvas', { role: 'img', 'aria-label': 'Channels kept and removed per layer' });
    const histCanvas = h('canvas', { role: 'img', 'aria-label': 'Histogram of channel group norms' });
    this.chartBox.append(canvas);
    this.histogramBox.append(histCanvas);
    s.body.append(this.placeholder, this.totals, this.chartBox, this.legend, this.list, this.histogramTitle, this.histogramBox);
    const select = (name: string) => ctx.dispatch({ type: 'ui/selectLayer', name });
    this.chart = new LayerChart(canvas, select);
    this.histogram = new HistogramChart(histCanvas);
    this.list.addEventListener('click', (e) => {
      const item = (e.target as Element).closest<HTMLElement>('[data-layer]');
      if (item?.dataset.layer) select(item.dataset.layer);
    });
    this.list.addEventListener('keydown', (e) => {
      const item = (e.target as Element).closest<HTMLElement>('[data-layer]');
      if (item?.dataset.layer && (e.key === 'Enter' || e.key === ' ')) {
        e.preventDefault();
        select(item.dataset.layer);
      }
    });
  }

  render(state: PanelState, palette: Palette): void {
    const snapshot = shownLayers(state);
    const layers = snapshot?.layers ?? [];
    const hasLayers = layers.length > 0;
    const analysing = state.focus === 'analysis' && state.analysis !== undefined;
    show(this.el, hasLayers || (analysing ? !state.analysis!.error : isLive(state)));
    show(this.placeholder, !hasLayers);
    for (const el of [this.totals, this.chartBox, this.legend, this.list]) show(el, hasLayers);
    this.el.setAttribute('description', hasLayers ? `${layers.length} layers` : '');
    if (!hasLayers) {
      show(this.histogramTitle, false);
      show(this.histogramBox, false);
      return;
    }
    const colourBy = analysing ? 'status' : 'sparsity';
    const selected = selectedLayerStat(state);
    const drawn = this.drawn;
    if (drawn.snapshot === snapshot && drawn.selected === selected?.name && drawn.palette === palette && drawn.colourBy === colourBy) return;
    this.drawn = { snapshot, selected: selected?.name, palette, colourBy };
    const t = snapshot!.totals;
    setText(this.totals, analysing
      ? `${formatCount(t.prunableChannels)} prunable channels \u00b7 ${formatCount(t.params)} params \u00b7 ${formatCount(t.flops)} FLOPs`
      : `${formatCount(t.keptChannels)} of ${formatCount(t.prunableChannels)} prunable channels kept \u00b7 ${formatCount(t.params)} params \u00b7 ${formatCount(t.flops)} FLOPs` +
        (t.zeroGroups ? ` \u00b7 ${formatCount(t.zeroGroups)} zero groups` : ''));

    this.chartBox.style.height = `${Math.max(120, layers.length * 18 + 48)}px`;
    this.chart.update(layers, selected?.name, palette, colourBy);
    setAttr(this.chartBox, 'data-bars', JSON.stringify(layers.map((l) => l.kept)));
    setAttr(this.chartBox, 'data-removed', JSON.stringify(layers.map((l) => l.channels - l.kept)));
    setAttr(this.chartBox, 'data-step', `${snapshot!.phase}:${snapshot!.step}`);

    this.renderLegend(palette, colourBy);
    this.renderList(layers, selected?.name, palette, colourBy);

    const histogram = normHistogram(selected);
    show(this.histogramTitle, selected !== undefined);
    setText(this.histogramTitle, histogram ? `Channel group norms \u00b7 ${histogram.layer}` : `No norm histogram for ${selected?.name ?? 'this layer'}`);
    show(this.histogramBox, histogram !== undefined);
    setAttr(this.histogramBox, 'data-layer', histogram?.layer);
    setAttr(this.histogramBox, 'data-counts', histogram ? JSON.stringify(histogram.counts) : undefined);
    this.histogram.update(histogram, selected ? layerColor(selected, palette, colourBy) : palette.blue, palette);
  }

  private renderLegend(palette: Palette, colourBy: 'sparsity' | 'status'): void {
    const key = JSON.stringify([palette, colourBy]);
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
    const removed = h('span', { class: 'swatch removed-swatch' });
    setChildren(this.legend, h('span', {}, 'sparsity 0%'), ...stops, h('span', {}, '100%'), removed, h('span', {}, 'removed'));
  }

  private renderList(layers: LayerStat[], selected: string | undefined, palette: Palette, colourBy: 'sparsity' | 'status'): void {
    const key = JSON.stringify([layers.map((l) => [l.name, l.status, l.kept, l.channels, Math.round(l.sparsity * 1000), l.reason, l.group]), selected, palette, colourBy]);
    if (key === this.listKey) return;
    this.listKey = key;
    setChildren(this.list, ...layers.map((l) => {
      const swatch = h('span', { class: 'swatch' });
      swatch.style.background = layerColor(l, palette, colourBy);
      return h('li', {
        class: `layer layer-${l.status}`,
        role: 'option',
        tabindex: 0,
        'aria-selected': l.name === selected ? 'true' : 'false',
        'data-layer': l.name,
        'data-status': l.status,
        title: l.reason ?? '',
      },
      swatch,
      h('span', { class: 'layer-name' }, l.name),
      h('span', { class: 'layer-type' }, l.type),
      h('vscode-badge', { class: `status status-${l.status}` }, l.status),
      h('span', { class: 'layer-detail' }, describeLayer(l)));
    }));
  }
}

class TrainingView {
  readonly el: HTMLElement;
  private readonly chartBox = h('div', { class: 'chart-box curves', 'data-testid': 'curves-chart' });
  private readonly signalsBox = h('div', { class: 'signals', 'data-testid': 'signals' });
  private readonly placeholder = h('p', { class: 'placeholder' }, 'Training curves appear once the first epoch ends.');
  private readonly syntheticNote = h('p', { class: 'note synthetic-note', 'data-testid': 'synthetic-note' },
    'Synthetic data: a pipeline check. Accuracy and metrics here are meaningless.');
  private readonly chart: CurvesChart;
  private readonly signalCharts = new Map<string, { box: HTMLElement; value: HTMLElement; chart: SignalChart }>();

  constructor() {
    const s = section('Training', 'training');
    this.el = s.el;
    const canvas = h('canvas', { role: 'img', 'aria-label': 'Loss, accuracy and FLOPs over epochs' });
    this.chartBox.append(canvas);
    s.body.append(this.syntheticNote, this.placeholder, this.chartBox, this.signalsBox);
    this.chart = new CurvesChart(canvas);
  }

  render(state: PanelState | undefined, palette: Palette): void {
    const view = state ? activeView(state) : undefined;
    show(this.el, view !== undefined);
    if (!view) return;
    const data = curveData(view.curves, view.model?.flops ?? view.done?.before.flops, view.valMetricName);
    const hasCurves = data.loss.length + data.stepLoss.length > 0;
    setAttr(this.chartBox, 'data-val-metric', data.valMetric ? `${data.valMetric.name}:${data.valMetric.points.length}` : undefined);
    show(this.el, hasCurves || isLive(state!));
    show(this.placeholder, !hasCurves);
    show(this.syntheticNote, onSyntheticData(view, view.done));
    show(this.chartBox, hasCurves);
    setAttr(this.chartBox, 'data-epochs', String(view.epochCount));
    setAttr(this.chartBox, 'data-points', String(data.loss.length));
    setAttr(this.chartBox, 'data-steps', String(view.curves.stepLoss.seen));
    this.chart.update(data, palette);
    this.renderSignals(view.signals, palette);
  }

  private renderSignals(signals: Parameters<typeof signalLines>[0], palette: Palette): void {
    const lines = signalLines(signals);
    const names = new Set(lines.map((l) => l.name));
    for (const [name, entry] of this.signalCharts) {
      if (!names.has(name)) {
        entry.chart.destroy();
        entry.box.remove();
        this.signalCharts.delete(name);
      }
    }
    show(this.signalsBox, lines.length > 0);
    const colours = [palette.purple, palette.orange, palette.green, palette.red];
    lines.forEach((line, i) => {
      let entry = this.signalCharts.get(line.name);
      if (!entry) {
        const canvas = h('canvas', { role: 'img', 'aria-label': `Method signal ${line.name}` });
        const value = h('span', { class: 'signal-value' });
        const box = h('div', { class: 'signal', 'data-signal': line.name },
          h('p', { class: 'chart-title' }, h('span', {}, line.name), ' ', value),
          h('div', { class: 'chart-box signal-chart' }, canvas));
        this.signalsBox.append(box);
        entry = { box, value, chart: new SignalChart(canvas) };
        this.signalCharts.set(line.name, entry);
      }
      setText(entry.value, line.latest === undefined ? '' : formatSignal(line.latest));
      entry.chart.update(line.name, line.points, colours[i % colours.length], palette);
    });
  }
}

/** The last part of a path, from either platform. */
function basename(path: string): string {
  const parts = path.split(/[\\/]/);
  return parts[parts.length - 1] || path;
}

function formatSignal(v: number): string {
  if (Number.isInteger(v)) return formatCount(v);
  return Math.abs(v) >= 1e4 || Math.abs(v) < 1e-3 ? v.toExponential(2) : String(Number(v.toPrecision(4)));
}

class ComparisonView {
  readonly el: HTMLElement;
  private readonly chartBox = h('div', { class: 'chart-box comparison', 'data-testid': 'comparison-chart' });
  private readonly placeholder = h('p', { class: 'placeholder' }, 'Finished runs of this config appear here as accuracy against FLOPs. Click a point to open its report.');
  private readonly syntheticNote = h('p', { class: 'note synthetic-note', 'data-testid': 'comparison-synthetic-note' },
    'Some of these runs measured accuracy on synthetic data: their accuracy is meaningless.');
  private readonly chart: ComparisonChart;
  private key = '';

  constructor(ctx: PanelContext) {
    const s = section('Compare runs', 'comparison');
    this.el = s.el;
    const canvas = h('canvas', { role: 'img', 'aria-label': 'Accuracy against FLOPs for every run of this config' });
    this.chartBox.append(canvas);
    s.body.append(this.syntheticNote, this.placeholder, this.chartBox);
    this.chart = new ComparisonChart(canvas, (runId) => ctx.post({ type: 'openReport', runId }));
  }

  render(state: PanelState, palette: Palette): void {
    const runs = runsOfConfig(state);
    const data = comparisonData(runs, palette);
    const points = data.groups.flatMap((g) => g.points);
    show(this.el, state.focus === 'run' && (points.length > 0 || isLive(state)));
    show(this.placeholder, points.length === 0);
    show(this.chartBox, points.length > 0);
    const plotted = new Set(points.map((p) => p.runId));
    show(this.syntheticNote, runs.some((r) => plotted.has(r.runId) && r.summary?.data?.synthetic));
    this.el.setAttribute('description', points.length ? `${points.length} run${points.length === 1 ? '' : 's'}` : '');
    const key = JSON.stringify([data, state.activeRunId, palette]);
    if (key === this.key) return; // rebuilding the datasets every live frame would reset hover
    this.key = key;
    setAttr(this.chartBox, 'data-points', JSON.stringify(points.map((p) => ({ runId: p.runId, method: p.method, flops: p.x, accuracy: p.y }))));
    this.chart.update(data, state.activeRunId, palette);
  }
}

/** A finished run's metric after fine-tuning, by name ("top-1 98.74%", "MAE 0.1234"); "acc" for reports that gave only accuracy. */
function runMetricText(s: DoneEvent): string {
  const synthetic = s.data?.synthetic ? ' (synthetic data)' : '';
  if (s.metric) return `${s.metric.name} ${formatMetricValue({ name: s.metric.name, value: s.metric.after })}${synthetic}`;
  return s.accuracy ? `acc ${formatAccuracy(s.accuracy.after)}${synthetic}` : '';
}

class RunsView {
  readonly el: HTMLElement;
  private readonly list = h('ul', { class: 'runs-list', 'data-testid': 'runs-list', 'aria-label': 'Runs' });
  private key = '';

  constructor(ctx: PanelContext) {
    const s = section('Runs', 'runs');
    this.el = s.el;
    s.body.append(this.list);
    const select = (runId: string) => {
      ctx.dispatch({ type: 'ui/selectRun', runId });
      ctx.post({ type: 'selectRun', runId });
    };
    this.list.addEventListener('click', (e) => {
      const target = e.target as Element;
      const row = target.closest<HTMLElement>('[data-run-id]');
      const runId = row?.dataset.runId;
      if (!runId) return;
      if (target.closest('[data-action="open-report"]')) ctx.post({ type: 'openReport', runId });
      else select(runId);
    });
    this.list.addEventListener('keydown', (e) => {
      const row = (e.target as Element).closest<HTMLElement>('.run-main');
      const runId = row?.closest<HTMLElement>('[data-run-id]')?.dataset.runId;
      if (runId && (e.key === 'Enter' || e.key === ' ')) {
        e.preventDefault();
        select(runId);
      }
    });
  }

  render(state: PanelState): void {
    show(this.el, state.runs.length > 0);
    const runs = [...state.runs].sort((a, b) => b.startedAt - a.startedAt);
    const key = JSON.stringify([runs.map((r) => [r.runId, r.status, r.method, r.configPath, r.summary?.after, r.summary?.accuracy, r.summary?.metric, r.summary?.data?.synthetic, r.report]), state.activeRunId]);
    if (key === this.key) return;
    this.key = key;
    this.el.setAttribute('description', String(runs.length));
    setChildren(this.list, ...runs.map((run) => this.row(run, run.runId === state.activeRunId)));
  }

  private row(run: RunInfo, active: boolean): HTMLElement {
    const s = run.summary;
    const metrics = s
      ? [`FLOPs ${formatChange(s.before.flops, s.after.flops)}`, runMetricText(s), s.latency ? `${s.latency.speedup.toFixed(2)}\u00d7` : '']
          .filter(Boolean).join(' \u00b7 ')
      : run.status === 'error' ? run.error ?? 'failed' : '';
    const swatch = h('span', { class: 'swatch' });
    swatch.style.background = methodColor(run.method);
    const status = run.status === 'running'
      ? h('vscode-progress-ring', { class: 'run-spinner', 'aria-label': 'running' })
      : h('vscode-badge', { class: `status status-${run.status}` }, run.status);
    const when = run.startedAt > 0 ? new Date(run.startedAt).toLocaleTimeString('en-US', { hour: '2-digit', minute: '2-digit' }) : '';
    return h('li', { class: `run${active ? ' active' : ''}`, 'data-run-id': run.runId, 'data-status': run.status, 'aria-current': active ? 'true' : undefined },
      h('div', { class: 'run-main', role: 'button', tabindex: 0, title: run.configPath },
        status, swatch,
        h('span', { class: 'run-method' }, run.method),
        h('span', { class: 'run-config' }, basename(run.configPath || '')),
        h('span', { class: 'run-time' }, when),
        h('span', { class: 'run-metrics' }, metrics)),
      ...(run.status === 'done' && !s?.dryRun ? [h('vscode-button', { secondary: true, 'data-action': 'open-report', title: 'Open the HTML report' }, 'Report')] : []));
  }
}
