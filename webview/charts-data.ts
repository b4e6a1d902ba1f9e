/**
 * Pure mappings from panel state to chart data: no DOM, no Chart.js. Colours come in as a
 * palette read from the VS Code theme, so the charts follow light, dark and high-contrast themes.
 */
import type { LayerStat } from '../src/protocol/events.js';
import type { RunInfo } from '../src/protocol/webview.js';
import { METHOD_NAMES } from '../src/protocol/methods.js';
import { paretoFront, seriesPoints, sensitivityRows, type Curves, type Point, type Series, type SensitivityView } from './state.js';
import { formatCount, formatPercent, isFractionMetric } from '../src/protocol/format.js';
import { signalInfo } from '../src/protocol/signals.js';
import type { SparsityHistory } from './state.js';

export interface Palette {
  foreground: string;
  /** Axis grid lines and other quiet strokes. */
  grid: string;
  blue: string;
  green: string;
  yellow: string;
  orange: string;
  red: string;
  purple: string;
  /** Removed channels and blocked layers. */
  muted: string;
}

/** Fallbacks when a theme variable is missing (VS Code's dark theme chart colours). */
export const DEFAULT_PALETTE: Palette = {
  foreground: '#cccccc',
  grid: 'rgba(204, 204, 204, 0.15)',
  blue: '#3794ff',
  green: '#89d185',
  yellow: '#cca700',
  orange: '#d18616',
  red: '#f14c4c',
  purple: '#b180d7',
  muted: 'rgba(204, 204, 204, 0.35)',
};

export interface Rgba {
  r: number;
  g: number;
  b: number;
  a: number;
}

/** Parses `#rgb`, `#rrggbb`, `#rrggbbaa`, `rgb(…)` and `rgba(…)`; undefined for anything else. */
export function parseColor(css: string): Rgba | undefined {
  const s = css.trim().toLowerCase();
  let m = /^#([0-9a-f]{3,8})$/.exec(s);
  if (m) {
    const hex = m[1];
    if (hex.length === 3 || hex.length === 4) {
      const [r, g, b, a] = [...hex].map((c) => parseInt(c + c, 16));
      return { r, g, b, a: hex.length === 4 ? a / 255 : 1 };
    }
    if (hex.length === 6 || hex.length === 8) {
      const n = (i: number) => parseInt(hex.slice(i, i + 2), 16);
      return { r: n(0), g: n(2), b: n(4), a: hex.length === 8 ? n(6) / 255 : 1 };
    }
    return undefined;
  }
  m = /^rgba?\(\s*([\d.]+)[\s,]+([\d.]+)[\s,]+([\d.]+)(?:\s*[,/]\s*([\d.]+%?))?\s*\)$/.exec(s);
  if (m) {
    const alpha = m[4] === undefined ? 1 : m[4].endsWith('%') ? parseFloat(m[4]) / 100 : parseFloat(m[4]);
    return { r: +m[1], g: +m[2], b: +m[3], a: alpha };
  }
  return undefined;
}

export function toCss(c: Rgba): string {
  const r = Math.round(c.r);
  const g = Math.round(c.g);
  const b = Math.round(c.b);
  return c.a >= 1 ? `rgb(${r}, ${g}, ${b})` : `rgba(${r}, ${g}, ${b}, ${Number(c.a.toFixed(3))})`;
}

export function withAlpha(css: string, alpha: number): string {
  const c = parseColor(css);
  return c ? toCss({ ...c, a: alpha }) : css;
}

function mix(a: Rgba, b: Rgba, t: number): Rgba {
  return { r: a.r + (b.r - a.r) * t, g: a.g + (b.g - a.g) * t, b: a.b + (b.b - a.b) * t, a: a.a + (b.a - a.a) * t };
}

/**
 * Colour of a layer by its sparsity: the theme's blue at 0, yellow at 0.5, red at 1,
 * interpolated in between. Out-of-range and NaN sparsities are clamped.
 */
export function sparsityColor(sparsity: number, palette: Palette = DEFAULT_PALETTE): string {
  const t = Number.isFinite(sparsity) ? Math.min(1, Math.max(0, sparsity)) : 0;
  const low = parseColor(palette.blue) ?? parseColor(DEFAULT_PALETTE.blue)!;
  const mid = parseColor(palette.yellow) ?? parseColor(DEFAULT_PALETTE.yellow)!;
  const high = parseColor(palette.red) ?? parseColor(DEFAULT_PALETTE.red)!;
  return toCss(t <= 0.5 ? mix(low, mid, t / 0.5) : mix(mid, high, (t - 0.5) / 0.5));
}

export interface LayerBars {
  labels: string[];
  kept: number[];
  removed: number[];
  /** One colour per kept bar: by sparsity, muted for blocked layers. */
  keptColors: string[];
  removedColor: string;
  status: LayerStat['status'][];
  /** One line per layer for tooltips and the layer list. */
  details: string[];
}

/** Colour of a layer by prunability: prunable green, coupled yellow, blocked muted. */
export function statusColor(status: LayerStat['status'], palette: Palette = DEFAULT_PALETTE): string {
  return status === 'prunable' ? palette.green : status === 'coupled' ? palette.yellow : palette.muted;
}

/**
 * Stacked bars per layer: channels kept and channels removed (or that would be). Kept bars are
 * coloured by sparsity during and after a run, by prunability for an analysis.
 */
export function layerBars(layers: LayerStat[], palette: Palette = DEFAULT_PALETTE, colourBy: 'sparsity' | 'status' = 'sparsity'): LayerBars {
  return {
    labels: layers.map((l) => l.name),
    kept: layers.map((l) => l.kept),
    removed: layers.map((l) => Math.max(0, l.channels - l.kept)),
    keptColors: layers.map((l) => layerColor(l, palette, colourBy)),
    removedColor: withAlpha(palette.foreground, 0.18),
    status: layers.map((l) => l.status),
    details: layers.map((l) => describeLayer(l)),
  };
}

export function layerColor(l: LayerStat, palette: Palette = DEFAULT_PALETTE, colourBy: 'sparsity' | 'status' = 'sparsity'): string {
  if (colourBy === 'status' || l.status === 'blocked') return statusColor(l.status, palette);
  return sparsityColor(l.sparsity, palette);
}

/** A layer in one line; `liveSparsity` (its group's zero channels now) replaces the kernel's zero weights while a method forms it. */
export function describeLayer(l: LayerStat, liveSparsity?: number): string {
  const channels = `${formatCount(l.kept)} of ${formatCount(l.channels)} channels kept, ${formatPercent(liveSparsity ?? l.sparsity)} ${liveSparsity !== undefined ? 'of channels at zero' : 'sparse'}`;
  if (l.status === 'blocked') return `blocked: ${l.reason ?? 'not prunable'}`;
  if (l.status === 'coupled') return `coupled${l.group !== undefined ? ` (group ${l.group})` : ''}: ${channels}`;
  return channels;
}

export interface Histogram {
  layer: string;
  labels: string[];
  counts: number[];
}

/** The layer's group-norm histogram as bar labels ("0.10–0.20") and counts. */
export function normHistogram(layer: LayerStat | undefined): Histogram | undefined {
  const h = layer?.normHistogram;
  if (!layer || !h || h.counts.length === 0 || h.edges.length < h.counts.length + 1) return undefined;
  return {
    layer: layer.name,
    labels: h.counts.map((_, i) => `${shortNumber(h.edges[i])}\u2013${shortNumber(h.edges[i + 1])}`),
    counts: h.counts.slice(),
  };
}

function shortNumber(v: number): string {
  if (v === 0) return '0';
  return Math.abs(v) >= 1000 || Math.abs(v) < 0.01 ? v.toExponential(1) : String(Number(v.toPrecision(3)));
}

export interface CurveData {
  loss: Point[];
  stepLoss: Point[];
  /** Accuracies in percent. */
  accuracy: Point[];
  valAccuracy: Point[];
  /**
   * The validation metric when it is not top-1, by name: fractions (F1, agreement) in percent on the
   * accuracies' axis, other values (MAE, R², relative error) as they are on an axis of their own.
   */
  valMetric?: { name: string; percent: boolean; points: Point[] };
  /** FLOPs as a percentage of the dense model's. */
  flopsPercent: Point[];
}

export function curveData(curves: Curves, denseFlops?: number, valMetricName?: string): CurveData {
  const percent = (s: Series) => seriesPoints(s).map((p) => ({ x: p.x, y: p.y * 100 }));
  const metricPercent = valMetricName !== undefined && isFractionMetric(valMetricName);
  const valMetric = valMetricName !== undefined && curves.valMetric && curves.valMetric.seen > 0
    ? { name: valMetricName, percent: metricPercent, points: metricPercent ? percent(curves.valMetric) : seriesPoints(curves.valMetric) }
    : undefined;
  return {
    loss: seriesPoints(curves.loss),
    stepLoss: seriesPoints(curves.stepLoss),
    accuracy: percent(curves.accuracy),
    valAccuracy: percent(curves.valAccuracy),
    ...(valMetric ? { valMetric } : {}),
    flopsPercent: denseFlops && denseFlops > 0 ? seriesPoints(curves.flops).map((p) => ({ x: p.x, y: (p.y / denseFlops) * 100 })) : [],
  };
}

export interface SignalLine {
  name: string;
  /** Human label, unit and one-line explanation (the protocol's signal table; the name spelt out for unknown ones). */
  label: string;
  unit: string;
  explanation: string;
  points: Point[];
  latest?: number;
}

/** "zeroGroups" → "Zero groups": a signal the protocol's table does not know still reads as words. */
function spellOut(name: string): string {
  const words = name.replace(/([a-z0-9])([A-Z])/g, '$1 $2').replace(/[_-]+/g, ' ').toLowerCase().trim();
  return words.charAt(0).toUpperCase() + words.slice(1);
}

/** The one place the panel asks what a method signal means. */
export function signalMeta(method: string | undefined, name: string): { label: string; unit: string; explanation: string } {
  const info = method ? signalInfo(method, name) : undefined;
  return info ?? { label: spellOut(name), unit: '', explanation: '' };
}

/** A signal's value in its unit: fractions as percent, channel counts as counts. */
export function formatSignalValue(value: number, unit: string): string {
  if (!Number.isFinite(value)) return String(value);
  if (unit === 'fraction') return formatPercent(value);
  if (unit === 'channels' || Number.isInteger(value)) return formatCount(value);
  return Math.abs(value) >= 1e4 || Math.abs(value) < 1e-3 ? value.toExponential(2) : String(Number(value.toPrecision(4)));
}

export function signalLines(signals: Record<string, Series>, method?: string): SignalLine[] {
  return Object.keys(signals)
    .map((name) => ({ name, ...signalMeta(method, name), points: seriesPoints(signals[name]), latest: signals[name].latest?.y }))
    .sort((a, b) => a.label.localeCompare(b.label));
}

/** One row of the sparsity heat map: a layer with a channel group, its sparsity per column (null: not yet known). */
export interface HeatmapRow {
  layer: string;
  group: number;
  values: (number | null)[];
}

/** Layers × steps from the run's sparsity history: layers in model order, those without a group (blocked) left out. */
export function heatmapRows(layers: LayerStat[], history: SparsityHistory | undefined): HeatmapRow[] {
  if (!history || history.steps.length === 0) return [];
  const rows: HeatmapRow[] = [];
  for (const l of layers) {
    if (l.group === undefined) continue;
    const values = history.groups[String(l.group)];
    if (values) rows.push({ layer: l.name, group: l.group, values });
  }
  return rows;
}

/** 101 colours from 0% to 100% sparsity: the heat map looks a value up instead of mixing per cell. */
export function sparsityScale(palette: Palette = DEFAULT_PALETTE): Rgba[] {
  return Array.from({ length: 101 }, (_, i) => parseColor(sparsityColor(i / 100, palette))!);
}

/** A stable colour per method, so the same method looks the same in every chart. */
export function methodColor(method: string, palette: Palette = DEFAULT_PALETTE): string {
  const colours = [palette.blue, palette.orange, palette.green, palette.purple, palette.red, palette.yellow];
  let index = (METHOD_NAMES as readonly string[]).indexOf(method);
  if (index < 0) index = [...method].reduce((h, c) => (h * 31 + c.charCodeAt(0)) >>> 0, 7);
  return colours[index % colours.length];
}

export interface ScatterPoint {
  /** FLOPs after pruning. */
  x: number;
  /** The metric after fine-tuning: in percent for fractions (top-1, F1, agreement), as it is otherwise. */
  y: number;
  runId: string;
  method: string;
}

export interface ComparisonData {
  /** One group per method, in first-seen order. */
  groups: { method: string; color: string; points: ScatterPoint[] }[];
  /** The dense model (before pruning), from the first finished run that measured it. */
  dense?: { x: number; y: number };
  /** What y is: the metric's name, "(%)" for fractions; "top-1 (%)" for reports that gave only accuracy. */
  axisTitle: string;
  /** What x is: FLOPs after pruning, or the median latency after pruning (ms). */
  xAxis: 'flops' | 'latency';
  /** The runs no other run beats on both cost and metric, by cost ascending. */
  front: { x: number; y: number }[];
}

/** A run's metric, or top-1 from a report that gave only `accuracy`. */
function runMetric(s: NonNullable<RunInfo['summary']>): { name: string; before: number; after: number; higherIsBetter: boolean } | undefined {
  if (s.metric) return s.metric;
  return s.accuracy ? { name: 'top-1', higherIsBetter: true, ...s.accuracy } : undefined;
}

/**
 * The metric against FLOPs for every finished run of one config that measured it. Runs are compared
 * on one metric only: the newest run's (the data or objective may have changed since older runs).
 */
export function comparisonData(runs: RunInfo[], palette: Palette = DEFAULT_PALETTE, xAxis: 'flops' | 'latency' = 'flops'): ComparisonData {
  // Dry runs measure nothing after pruning: they stay out of the comparison.
  const measured = runs.filter((r) => r.status === 'done' && r.summary && !r.summary.dryRun && !r.dryRun && runMetric(r.summary) &&
    (xAxis === 'flops' || r.summary.latency !== undefined));
  const newest = [...measured].sort((a, b) => b.startedAt - a.startedAt)[0];
  const name = newest ? runMetric(newest.summary!)!.name : 'top-1';
  const scale = isFractionMetric(name) ? 100 : 1;
  const groups = new Map<string, ScatterPoint[]>();
  let dense: ComparisonData['dense'];
  let higherIsBetter = true;
  for (const run of measured) {
    const s = run.summary!;
    const metric = runMetric(s)!;
    if (metric.name !== name) continue;
    const method = s.method || run.method;
    const list = groups.get(method) ?? [];
    const x = xAxis === 'flops' ? s.after.flops : s.latency!.after.medianMs;
    list.push({ x, y: metric.after * scale, runId: run.runId, method });
    groups.set(method, list);
    dense ??= { x: xAxis === 'flops' ? s.before.flops : s.latency!.before.medianMs, y: metric.before * scale };
    higherIsBetter = metric.higherIsBetter;
  }
  const all = [...groups.values()].flat();
  return {
    groups: [...groups].map(([method, points]) => ({ method, color: methodColor(method, palette), points })),
    dense,
    axisTitle: scale === 100 ? `${name} (%)` : name,
    xAxis,
    front: all.length > 1 ? paretoFront(all, higherIsBetter).map((p) => ({ x: p.x, y: p.y })) : [],
  };
}

/** Approximate width of one character of an axis title (Chart.js' 11 px font), and what the plot's height loses to the x axis and legend. */
const AXIS_TITLE_CHAR_PX = 6.2;
const AXIS_TITLE_RESERVED_PX = 70;

/**
 * A y-axis title that fits beside a plot `heightPx` tall: the title when it fits, else "metric (%)" or
 * "metric" (the chart's heading names the metric in full). A longer title runs into the x axis' labels.
 */
export function fitAxisTitle(title: string, heightPx: number): string {
  const room = Math.floor((heightPx - AXIS_TITLE_RESERVED_PX) / AXIS_TITLE_CHAR_PX);
  if (title.length <= room) return title;
  return title.endsWith('(%)') ? 'metric (%)' : 'metric';
}

/** How many of the most sensitive curves are drawn strongly, in their own colours; the rest are faint. */
export const STRONG_CURVES = 5;

export interface SensitivityCurve {
  /** The entry's id as a string. */
  key: string;
  label: string;
  /** (fraction removed, metric) from the dense model at 0 through the measured ratios; the metric in % for fractions. */
  points: Point[];
  color: string;
  width: number;
  /** Drawn strongly: among the most sensitive, or highlighted. */
  strong: boolean;
  highlighted: boolean;
}

export interface SensitivityChartData {
  curves: SensitivityCurve[];
  /** The dense model's metric as a reference line across the measured range; undefined before it is known. */
  dense?: Point[];
  axisTitle: string;
  percent: boolean;
}

/**
 * One curve per channel group: the `STRONG_CURVES` most sensitive (highest mean metric fall) in
 * distinct colours, the others faint so that forty of them still read; the highlighted one (the table
 * row under the pointer) in the foreground colour, drawn last so it sits on top.
 */
export function sensitivityCurves(view: SensitivityView | undefined, palette: Palette = DEFAULT_PALETTE, highlighted?: string): SensitivityChartData {
  const name = view?.metric?.name ?? 'metric';
  const percent = isFractionMetric(name);
  const scale = (v: number) => (percent ? v * 100 : v);
  // The axis has little room: "top-1 agreement with the dense model" reads "top-1 agreement".
  const short = name.replace(/ with the dense model$/, '');
  const axisTitle = percent ? `${short} (%)` : short;
  if (!view) return { curves: [], axisTitle, percent };
  const ranked = sensitivityRows(view).filter((r) => r.score !== undefined).map((r) => r.key);
  const strongKeys = new Set(ranked.slice(0, STRONG_CURVES));
  const colours = [palette.red, palette.orange, palette.yellow, palette.purple, palette.blue];
  const faint = withAlpha(palette.foreground, 0.22);
  const curves = view.entries.map((entry): SensitivityCurve => {
    const key = String(entry.id);
    const strong = strongKeys.has(key);
    const isHighlighted = key === highlighted;
    const rank = ranked.indexOf(key);
    const origin = view.dense ? [{ x: 0, y: scale(view.dense.metric) }] : [];
    return {
      key,
      label: entryLabel(entry, view.mode),
      points: [...origin, ...entry.points.map((p) => ({ x: p.ratio, y: scale(p.metric) }))],
      color: isHighlighted ? palette.foreground : strong ? colours[rank % colours.length] : faint,
      width: isHighlighted ? 3 : strong ? 2 : 1,
      strong: strong || isHighlighted,
      highlighted: isHighlighted,
    };
  });
  // Faint curves first, strong over them, the highlighted one on top.
  const order = (c: SensitivityCurve) => (c.highlighted ? 2 : c.strong ? 1 : 0);
  curves.sort((a, b) => order(a) - order(b));
  const xMax = Math.max(0, ...(view.ratios ?? []), ...view.entries.flatMap((e) => e.points.map((p) => p.ratio)));
  const dense = view.dense ? [{ x: 0, y: scale(view.dense.metric) }, { x: xMax || 1, y: scale(view.dense.metric) }] : undefined;
  return { curves, dense, axisTitle, percent };
}

/** "group 3 · conv_2, conv_5" (the first producers), or the layer's name layer at a time. */
export function entryLabel(entry: { id: number | string; producers: string[] }, mode?: 'group' | 'layer'): string {
  if (mode === 'layer' || typeof entry.id === 'string') return String(entry.id);
  const shown = entry.producers.slice(0, 2).join(', ') + (entry.producers.length > 2 ? ` +${entry.producers.length - 2}` : '');
  return `group ${entry.id} \u00b7 ${shown}`;
}
