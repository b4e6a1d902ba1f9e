/**
 * The side panel's views. Each section builds its DOM once and updates it in place from the
 * state; lists are rebuilt only when what they show changed.
 */
import type { DoneEvent, LayerStat } from '../../src/protocol/events.js';
import type { RunInfo, WebviewMessage } from '../../src/protocol/webview.js';
import { comparisonData, curveData, formatSignalValue, signalLines, type Palette } from '../charts-data.js';
import {
  formatAccuracy, formatBytes, formatChange, formatCount, formatDuration, formatEta, formatMetricChange, formatMetricValue, formatMs, formatOnnxCheck,
  formatPointChange, formatRecovery,
} from '../../src/protocol/format.js';
import {
  activeRun,
  activeSummary,
  activeView,
  headerProgress,
  onSyntheticData,
  runsOfConfig,
  sessionContext,
  type PanelState,
  type RunError,
  type UiAction,
} from '../state.js';
import { ComparisonChart, CurvesChart, SignalChart } from './charts.js';
import { ComparisonTableView } from './comparison.js';
import { LayersView } from './layers.js';
import { RunsView } from './runs.js';
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
  private readonly summary: SummaryView;
  private readonly analysis = new AnalysisCardView();
  private readonly layers: LayersView;
  private readonly training = new TrainingView();
  private readonly comparison: ComparisonView;
  private readonly layerComparison: ComparisonTableView;
  private readonly runs: RunsView;
  private readonly sensitivity: SensitivitySection;
  private readonly empty = h('p', { class: 'empty', 'data-testid': 'empty-state' },
    'No pruning runs yet. Run \u201cPruneLens: Prune Model\u2026\u201d or \u201cPruneLens: Run Pruning Config\u201d on a *.prune.json file, or \u201cPruneLens: Analyze Model\u201d to see which layers can be pruned.');

  constructor(root: HTMLElement, ctx: PanelContext) {
    this.header = new HeaderView(ctx);
    this.summary = new SummaryView(ctx);
    this.layers = new LayersView(ctx);
    this.comparison = new ComparisonView(ctx);
    this.layerComparison = new ComparisonTableView(ctx);
    this.runs = new RunsView(ctx);
    this.sensitivity = new SensitivitySection((action) => ctx.dispatch(action));
    setChildren(root,
      this.header.el, this.banner.el, this.empty, this.summary.el, this.analysis.el, this.sensitivity.el,
      this.layers.el, this.layerComparison.el, this.training.el, this.comparison.el, this.runs.el);
  }

  render(state: PanelState, palette: Palette): void {
    // Compare with original: the run's summary and its layer-by-layer comparison, nothing else.
    const comparing = state.showOnly === 'comparison' && state.report !== undefined;
    const sensing = !comparing && state.focus === 'sensitivity' && state.sensitivity !== undefined;
    const analysing = !comparing && state.focus === 'analysis' && state.analysis !== undefined;
    const hasContent = state.runs.length > 0 || state.analysis !== undefined || state.sensitivity !== undefined || Object.keys(state.views).length > 0;
    show(this.empty, !hasContent);
    this.header.render(state, analysing, sensing);
    this.sensitivity.render(state, palette, sensing);
    this.layerComparison.render(state, !sensing && !analysing);
    document.body.dataset.view = comparing ? 'comparison' : '';
    // The sensitivity view stands alone: the run's sections come back with the run's focus.
    for (const el of [this.banner.el, this.summary.el, this.analysis.el, this.layers.el, this.training.el, this.comparison.el]) if (sensing) show(el, false);
    if (!sensing) {
      this.banner.render(state, analysing);
      this.summary.render(analysing ? undefined : activeSummary(state), state.activeRunId);
      this.analysis.render(analysing ? state : undefined);
      this.layers.render(state, palette);
      this.training.render(analysing ? undefined : state, palette);
      this.comparison.render(state, palette);
    }
    this.runs.render(state);
    if (comparing) for (const el of [this.analysis.el, this.layers.el, this.training.el, this.comparison.el, this.runs.el]) show(el, false);
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
  private readonly cancel = h('vscode-button', { 'data-testid': 'cancel-button', title: 'Stop this run' }, 'Stop');
  private readonly rerun = h('vscode-button', { 'data-testid': 'rerun-button', secondary: true, title: 'Run the same config again' }, 'Rerun');
  private readonly report = h('vscode-button', { 'data-testid': 'report-button', secondary: true }, 'Open report');
  private readonly switchFocus = h('vscode-button', { 'data-testid': 'focus-button', secondary: true });
  private readonly sensitivityFocus = h('vscode-button', { 'data-testid': 'sensitivity-focus-button', secondary: true }, 'Show sensitivity');
  private readonly openInEditor = h('vscode-button', { 'data-testid': 'open-in-editor-button', secondary: true, title: 'Show this session full width in the editor area' }, 'Open in editor');
  private runId: string | undefined;
  private target: 'run' | 'analysis' = 'run';

  constructor(ctx: PanelContext) {
    this.el = h('header', { class: 'header', 'data-testid': 'header' },
      h('div', { class: 'title-line' }, this.title, this.status),
      h('div', { class: 'phase-line' }, this.phase, this.eta),
      this.context,
      this.progress,
      h('div', { class: 'actions' }, this.cancel, this.rerun, this.report, this.openInEditor, this.switchFocus, this.sensitivityFocus));
    this.openInEditor.addEventListener('click', () => this.runId && ctx.post({ type: 'openInEditor', runId: this.runId }));
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
      for (const b of [this.cancel, this.rerun, this.report, this.openInEditor]) show(b, false);
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
      for (const b of [this.cancel, this.rerun, this.report, this.openInEditor]) show(b, false);
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
      const progress = headerProgress(view, formatEta);
      // The engine's activity words say more than the phase name while it measures or loads.
      if (progress?.activity) parts.push(progress.activity);
      setText(this.phase, parts.filter(Boolean).join(' \u00b7 '));
      setText(this.eta, progress ? [progress.indeterminate ? '' : `${progress.percent}%`, progress.eta].filter(Boolean).join(' \u00b7 ') : '');
      if (progress?.indeterminate) this.progress.setAttribute('indeterminate', '');
      else this.progress.value = progress?.percent ?? 0;
      setAttr(this.progress, 'data-percent', progress && !progress.indeterminate ? String(progress.percent) : undefined);
      setAttr(this.progress, 'aria-valuetext', progress ? `${progress.indeterminate ? 'working' : `${progress.percent}%`}${progress.eta ? `, ${progress.eta}` : ''}${progress.activity ? `, ${progress.activity}` : ''}` : undefined);
    } else {
      const done = view?.done ?? run?.summary;
      setText(this.phase, done ? `Finished in ${formatDuration(done.wallTimeMs)} on ${done.backend}` : '');
      setText(this.eta, '');
    }
    const context = sessionContext(view, view?.done ?? run?.summary);
    const contextText = [context.data && `Data: ${context.data}`, context.objective && `Objective: ${context.objective}`].filter(Boolean).join(' \u00b7 ');
    setText(this.context, contextText);
    show(this.context, contextText !== '');
    show(this.progress, running && view !== undefined && !view.done && !view.error);
    show(this.cancel, running);
    show(this.rerun, !running && hasRun);
    show(this.report, status === 'done' && !view?.dryRun);
    // Only the sidebar offers the editor tab (the host marks where the page shows on its body).
    show(this.openInEditor, hasRun && document.body.dataset.placement !== 'editor');
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
  private runId: string | undefined;

  constructor(ctx: PanelContext) {
    this.el.hidden = true;
    // The result's actions: the host reveals the output, analyses the pruned model, compares it, opens the config.
    this.el.addEventListener('click', (e) => {
      const action = (e.target as Element).closest<HTMLElement>('[data-result-action]')?.dataset.resultAction;
      if (!action || !this.runId) return;
      e.preventDefault();
      const type = action as 'revealOutput' | 'openPrunedModel' | 'compareWithOriginal' | 'openConfig';
      ctx.post({ type, runId: this.runId });
    });
  }

  render(summary: DoneEvent | undefined, runId?: string): void {
    show(this.el, summary !== undefined);
    this.runId = runId;
    const key = summary ? JSON.stringify([summary, runId]) : '';
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
      ...(s.output && !s.dryRun ? [h('p', { class: 'output-line' }, 'Saved to ',
        h('a', { href: '#', class: 'output-link', 'data-result-action': 'revealOutput', 'data-testid': 'output-link', title: `Reveal ${s.output} in the explorer` }, s.output))] : []),
      ...(notes.length ? [h('p', { class: 'note' }, notes.join(' \u00b7 '))] : []),
      h('div', { class: 'actions result-actions' },
        ...(s.output && !s.dryRun ? [
          h('vscode-button', { secondary: true, 'data-result-action': 'openPrunedModel', 'data-testid': 'open-pruned-model', title: 'Analyse the pruned model' }, 'Open pruned model'),
          h('vscode-button', { secondary: true, 'data-result-action': 'compareWithOriginal', 'data-testid': 'compare-with-original', title: 'The pruned model\u2019s layers beside the original\u2019s' }, 'Compare with original'),
        ] : []),
        h('vscode-button', { secondary: true, 'data-result-action': 'openConfig', 'data-testid': 'open-config', title: 'Open the config this run used' }, 'Open config')));
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

class TrainingView {
  readonly el: HTMLElement;
  private readonly chartBox = h('div', { class: 'chart-box curves', 'data-testid': 'curves-chart' });
  private readonly signalsBox = h('div', { class: 'signals', 'data-testid': 'signals' });
  private readonly placeholder = h('p', { class: 'placeholder' }, 'Training curves appear once the first epoch ends.');
  private readonly syntheticNote = h('p', { class: 'note synthetic-note', 'data-testid': 'synthetic-note' },
    'Synthetic data: a pipeline check. Accuracy and metrics here are meaningless.');
  private readonly chart: CurvesChart;
  private readonly signalCharts = new Map<string, {
    box: HTMLElement; value: HTMLElement; label: HTMLElement; explanation: HTMLElement; chartBox: HTMLElement; canvas: HTMLElement; chart: SignalChart;
  }>();

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
    show(this.el, hasCurves || Object.keys(view.signals).length > 0 || isLive(state!));
    show(this.placeholder, !hasCurves && isLive(state!));
    show(this.syntheticNote, onSyntheticData(view, view.done));
    show(this.chartBox, hasCurves);
    setAttr(this.chartBox, 'data-epochs', String(view.epochCount));
    setAttr(this.chartBox, 'data-points', String(data.loss.length));
    setAttr(this.chartBox, 'data-steps', String(view.curves.stepLoss.seen));
    this.chart.update(data, palette);
    this.renderSignals(view.signals, view.method ?? view.done?.method, palette);
  }

  private renderSignals(signals: Parameters<typeof signalLines>[0], method: string | undefined, palette: Palette): void {
    const lines = signalLines(signals, method);
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
        const canvas = h('canvas', { role: 'img' });
        const value = h('span', { class: 'signal-value' });
        const label = h('span', { class: 'signal-label' });
        const explanation = h('p', { class: 'note signal-explanation' });
        const chartBox = h('div', { class: 'chart-box signal-chart' }, canvas);
        const box = h('div', { class: 'signal', 'data-signal': line.name },
          h('p', { class: 'chart-title' }, label, ' ', value), explanation, chartBox);
        this.signalsBox.append(box);
        entry = { box, value, label, explanation, chartBox, canvas, chart: new SignalChart(canvas) };
        this.signalCharts.set(line.name, entry);
      }
      const valueText = line.latest === undefined ? '' : formatSignalValue(line.latest, line.unit);
      setText(entry.label, line.label);
      setText(entry.value, valueText + (line.unit && line.unit !== 'fraction' && line.unit !== 'channels' ? ` ${line.unit}` : line.unit === 'channels' ? ' channels' : ''));
      setText(entry.explanation, line.explanation);
      show(entry.explanation, line.explanation !== '');
      setAttr(entry.box, 'title', line.explanation || undefined);
      setAttr(entry.canvas, 'aria-label', `${line.label} over ${line.points.length} steps, now ${valueText}${line.unit ? ` (${line.unit})` : ''}`);
      // One point is a value, not a chart.
      const charted = line.points.length > 1;
      show(entry.chartBox, charted);
      setAttr(entry.box, 'data-points', String(line.points.length));
      if (charted) entry.chart.update(line.label, line.points, colours[i % colours.length], palette);
    });
  }
}

/** The last part of a path, from either platform. */
function basename(path: string): string {
  const parts = path.split(/[\\/]/);
  return parts[parts.length - 1] || path;
}

class ComparisonView {
  readonly el: HTMLElement;
  private readonly chartBox = h('div', { class: 'chart-box comparison', 'data-testid': 'comparison-chart' });
  private readonly flopsTitle = h('p', { class: 'chart-title', 'data-testid': 'comparison-chart-title' }, 'Metric against FLOPs');
  private readonly latencyTitle = h('p', { class: 'chart-title' }, 'Metric against latency');
  private readonly latencyBox = h('div', { class: 'chart-box comparison', 'data-testid': 'comparison-latency-chart' });
  private readonly placeholder = h('p', { class: 'placeholder' }, 'Finished runs of this config appear here as their metric against FLOPs and latency, with the Pareto front. Click a point to open its report.');
  private readonly syntheticNote = h('p', { class: 'note synthetic-note', 'data-testid': 'comparison-synthetic-note' },
    'Some of these runs measured accuracy on synthetic data: their accuracy is meaningless.');
  private readonly chart: ComparisonChart;
  private readonly latencyChart: ComparisonChart;
  private readonly canvas: HTMLElement;
  private readonly latencyCanvas: HTMLElement;
  private key = '';

  constructor(ctx: PanelContext) {
    const s = section('Compare runs', 'comparison');
    this.el = s.el;
    this.canvas = h('canvas', { role: 'img', 'aria-label': 'The metric against FLOPs for every run of this config; the runs table holds the numbers' });
    this.latencyCanvas = h('canvas', { role: 'img', 'aria-label': 'The metric against latency for every run of this config; the runs table holds the numbers' });
    this.chartBox.append(this.canvas);
    this.latencyBox.append(this.latencyCanvas);
    s.body.append(this.syntheticNote, this.placeholder, h('div', { class: 'comparison-charts' },
      h('div', {}, this.flopsTitle, this.chartBox),
      h('div', { class: 'latency-comparison' }, this.latencyTitle, this.latencyBox)));
    const open = (runId: string) => ctx.post({ type: 'openReport', runId });
    this.chart = new ComparisonChart(this.canvas as HTMLCanvasElement, open, 'flops');
    this.latencyChart = new ComparisonChart(this.latencyCanvas as HTMLCanvasElement, open, 'latency');
  }

  render(state: PanelState, palette: Palette): void {
    const runs = runsOfConfig(state);
    const data = comparisonData(runs, palette, 'flops');
    const latency = comparisonData(runs, palette, 'latency');
    const points = data.groups.flatMap((g) => g.points);
    const latencyPoints = latency.groups.flatMap((g) => g.points);
    show(this.el, state.focus === 'run' && (points.length > 0 || isLive(state)));
    show(this.placeholder, points.length === 0);
    show(this.chartBox.parentElement!, points.length > 0);
    show(this.latencyBox.parentElement!, latencyPoints.length > 0);
    const plotted = new Set(points.map((p) => p.runId));
    show(this.syntheticNote, runs.some((r) => plotted.has(r.runId) && r.summary?.data?.synthetic));
    this.el.setAttribute('description', points.length ? `${points.length} run${points.length === 1 ? '' : 's'}` : '');
    const key = JSON.stringify([data, latency, state.activeRunId, palette]);
    if (key === this.key) return; // rebuilding the datasets every live frame would reset hover
    this.key = key;
    setAttr(this.chartBox, 'data-points', JSON.stringify(points.map((p) => ({ runId: p.runId, method: p.method, flops: p.x, accuracy: p.y }))));
    setAttr(this.chartBox, 'data-front', JSON.stringify(data.front));
    setAttr(this.latencyBox, 'data-points', JSON.stringify(latencyPoints.map((p) => ({ runId: p.runId, method: p.method, latencyMs: p.x, accuracy: p.y }))));
    setAttr(this.latencyBox, 'data-front', JSON.stringify(latency.front));
    const describe = (what: string, d: typeof data, n: number) =>
      `${d.axisTitle} against ${what} for ${n} run${n === 1 ? '' : 's'} of this config; ${d.front.length} on the Pareto front. The runs table holds the numbers.`;
    // The metric in full above each chart: its y axis may only have room for "metric (%)".
    setText(this.flopsTitle, `${data.axisTitle} against FLOPs`);
    setText(this.latencyTitle, `${latency.axisTitle} against latency`);
    setAttr(this.canvas, 'aria-label', describe('FLOPs', data, points.length));
    setAttr(this.latencyCanvas, 'aria-label', describe('latency', latency, latencyPoints.length));
    this.chart.update(data, state.activeRunId, palette);
    this.latencyChart.update(latency, state.activeRunId, palette);
  }
}
