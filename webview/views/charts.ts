/**
 * Chart.js wrappers for the panel. Animations are off and every update is `update('none')`:
 * live series redraw once per animation frame without transitions.
 */
import {
  BarController,
  BarElement,
  CategoryScale,
  Chart,
  Legend,
  LinearScale,
  LineController,
  LineElement,
  PointElement,
  ScatterController,
  Tooltip,
  type ChartDataset,
  type ChartOptions,
} from 'chart.js';
import {
  fitAxisTitle,
  layerBars,
  withAlpha,
  type ComparisonData,
  type CurveData,
  type Histogram,
  type Palette,
  type ScatterPoint,
  type SensitivityChartData,
} from '../charts-data.js';
import type { LayerStat } from '../../src/protocol/events.js';
import type { Point } from '../state.js';
import { formatCount } from '../../src/protocol/format.js';

Chart.register(BarController, BarElement, CategoryScale, LinearScale, LineController, LineElement, PointElement, ScatterController, Tooltip, Legend);

export function applyChartTheme(palette: Palette, fontFamily: string): void {
  Chart.defaults.color = palette.foreground;
  Chart.defaults.borderColor = palette.grid;
  Chart.defaults.font.family = fontFamily;
  Chart.defaults.font.size = 11;
  Chart.defaults.animation = false;
}

function baseOptions(): ChartOptions {
  return {
    animation: false,
    responsive: true,
    maintainAspectRatio: false,
    normalized: true,
    plugins: { legend: { display: false } },
  };
}

type Axis = { grid?: object; ticks?: object; title?: object } & Record<string, unknown>;

/** Recolours every axis of a chart, keeping each axis's own tick and grid settings. */
function themeAxes(chart: Chart, palette: Palette): void {
  const scales = (chart.options.scales ?? {}) as Record<string, Axis>;
  for (const [id, axis] of Object.entries(scales)) {
    scales[id] = {
      ...axis,
      grid: { ...axis.grid, color: palette.grid },
      ticks: { ...axis.ticks, color: palette.foreground },
      title: { ...axis.title, color: palette.foreground },
    };
  }
}

/**
 * Live data redraws with update('none'). Chart.js keeps options shared by all elements of a
 * dataset (scalar colours) from the first draw in that mode, so a theme change redraws fully;
 * with animations off that is just as immediate.
 */
function redraw(chart: Chart, palette: Palette, last: { key?: string }): void {
  const key = JSON.stringify(palette);
  themeAxes(chart, palette);
  if (key === last.key) chart.update('none');
  else {
    last.key = key;
    chart.update();
  }
}

export class HistogramChart {
  readonly chart: Chart<'bar'>;
  private readonly drawn: { key?: string } = {};

  constructor(canvas: HTMLCanvasElement) {
    this.chart = new Chart(canvas, {
      type: 'bar',
      data: { labels: [], datasets: [{ label: 'channels', data: [], barPercentage: 1, categoryPercentage: 1 }] },
      options: {
        ...(baseOptions() as ChartOptions<'bar'>),
        scales: {
          x: { title: { display: true, text: 'group L2 norm' }, ticks: { maxRotation: 0, autoSkip: true } },
          y: { beginAtZero: true, title: { display: true, text: 'channels' }, ticks: { precision: 0 } },
        },
      },
    });
  }

  update(histogram: Histogram | undefined, colour: string, palette: Palette): void {
    const chart = this.chart;
    chart.data.labels = histogram?.labels ?? [];
    chart.data.datasets[0].data = histogram?.counts ?? [];
    // One colour per bar: per-element options follow every update, shared ones would not.
    chart.data.datasets[0].backgroundColor = (histogram?.counts ?? []).map(() => colour);
    redraw(chart, palette, this.drawn);
  }
}

/** Loss (left axis) with accuracies and FLOPs as percentages (right axis), over epochs. */
export class CurvesChart {
  readonly chart: Chart<'line', Point[]>;
  private readonly drawn: { key?: string } = {};

  constructor(canvas: HTMLCanvasElement) {
    const line = (label: string, yAxisID: string): ChartDataset<'line', Point[]> => ({
      label,
      data: [],
      yAxisID,
      pointRadius: 0,
      pointHitRadius: 6,
      borderWidth: 1.5,
      tension: 0,
      parsing: false,
    });
    this.chart = new Chart(canvas, {
      type: 'line',
      data: {
        datasets: [
          { ...line('step loss', 'loss'), borderWidth: 1 },
          { ...line('loss', 'loss'), pointRadius: 2 },
          { ...line('accuracy', 'pct'), pointRadius: 2 },
          { ...line('val accuracy', 'pct'), pointRadius: 2 },
          { ...line('FLOPs', 'pct'), borderDash: [4, 3] },
          { ...line('val metric', 'metric'), pointRadius: 2 },
        ],
      },
      options: {
        ...(baseOptions() as ChartOptions<'line'>),
        interaction: { mode: 'nearest', axis: 'x', intersect: false },
        scales: {
          x: { type: 'linear', title: { display: true, text: 'epoch' }, ticks: { precision: 0 } },
          loss: { type: 'linear', position: 'left', beginAtZero: true, title: { display: true, text: 'loss' } },
          pct: { type: 'linear', position: 'right', suggestedMax: 100, title: { display: true, text: '%' }, grid: { drawOnChartArea: false } },
          // A metric that is not a fraction (MAE, R², relative error); shown only while such a curve is.
          metric: { type: 'linear', position: 'right', display: 'auto', title: { display: true, text: 'metric' }, grid: { drawOnChartArea: false } },
        },
        // Curves the run does not have (accuracy of a distilled run, a metric of a top-1 run) stay out of the legend.
        plugins: { legend: { display: true, position: 'bottom', labels: { boxWidth: 10, boxHeight: 2, filter: (item, data) => (data.datasets[item.datasetIndex ?? 0]?.data.length ?? 0) > 0 } } },
      },
    });
  }

  update(data: CurveData, palette: Palette): void {
    const series: [Point[], string][] = [
      [data.stepLoss, withAlpha(palette.blue, 0.35)],
      [data.loss, palette.blue],
      [data.accuracy, palette.green],
      [data.valAccuracy, palette.orange],
      [data.flopsPercent, palette.purple],
      [data.valMetric?.points ?? [], palette.yellow],
    ];
    series.forEach(([points, colour], i) => {
      const ds = this.chart.data.datasets[i];
      ds.data = points;
      ds.borderColor = colour;
      ds.backgroundColor = colour;
      ds.hidden = points.length === 0;
    });
    // The metric's curve by its name, on the % axis for fractions and on its own axis otherwise.
    const metricSet = this.chart.data.datasets[5];
    metricSet.label = data.valMetric ? `val ${data.valMetric.name}` : 'val metric';
    metricSet.yAxisID = data.valMetric?.percent ? 'pct' : 'metric';
    const metricAxis = this.chart.options.scales!.metric as { title: { text: string } };
    metricAxis.title.text = data.valMetric?.name ?? 'metric';
    redraw(this.chart, palette, this.drawn);
  }
}

/** One small line chart per method signal. */
export class SignalChart {
  readonly chart: Chart<'line', Point[]>;
  private readonly drawn: { key?: string } = {};

  constructor(canvas: HTMLCanvasElement) {
    this.chart = new Chart(canvas, {
      type: 'line',
      data: { datasets: [{ label: '', data: [], parsing: false, pointRadius: 0, borderWidth: 1.5 }] },
      options: {
        ...(baseOptions() as ChartOptions<'line'>),
        scales: { x: { type: 'linear', ticks: { maxTicksLimit: 4 } }, y: { type: 'linear', ticks: { maxTicksLimit: 3 } } },
      },
    });
  }

  update(name: string, points: Point[], colour: string, palette: Palette): void {
    const ds = this.chart.data.datasets[0];
    ds.label = name;
    ds.data = points;
    ds.borderColor = colour;
    redraw(this.chart, palette, this.drawn);
  }

  destroy(): void {
    this.chart.destroy();
  }
}

type ScatterDatum = { x: number; y: number; runId?: string };

/** The metric (top-1, or what the runs measured) against FLOPs, one colour per method; clicking a run's point opens its report. */
export class ComparisonChart {
  readonly chart: Chart<'scatter', ScatterDatum[]>;
  private readonly drawn: { key?: string } = {};
  private percent = true;

  constructor(canvas: HTMLCanvasElement, onOpen: (runId: string) => void, xAxis: 'flops' | 'latency' = 'flops') {
    const xTitle = xAxis === 'flops' ? 'FLOPs after pruning' : 'latency after pruning (ms, median)';
    const xText = (v: number) => (xAxis === 'flops' ? `${formatCount(v)} FLOPs` : `${v.toPrecision(3)} ms`);
    this.chart = new Chart(canvas, {
      type: 'scatter',
      data: { datasets: [] },
      options: {
        ...(baseOptions() as ChartOptions<'scatter'>),
        scales: {
          x: { type: 'linear', title: { display: true, text: xTitle }, ticks: { callback: (v) => (xAxis === 'flops' ? formatCount(Number(v)) : Number(v).toPrecision(3)) } },
          y: { type: 'linear', title: { display: true, text: 'top-1 (%)' } },
        },
        plugins: {
          legend: { display: true, position: 'bottom', labels: { boxWidth: 8, boxHeight: 8 } },
          tooltip: {
            callbacks: {
              label: (item) => {
                const p = item.raw as ScatterDatum;
                const percent = this.percent;
                return `${item.dataset.label}: ${percent ? `${p.y.toFixed(2)}%` : p.y.toPrecision(4)} at ${xText(p.x)}${p.runId ? ' (click for report)' : ''}`;
              },
            },
          },
        },
        onHover: (event, elements) => {
          const target = event.native?.target as HTMLElement | undefined;
          if (target) target.style.cursor = elements.some((e) => this.runIdAt(e.datasetIndex, e.index)) ? 'pointer' : 'default';
        },
        onClick: (_event, elements) => {
          for (const e of elements) {
            const runId = this.runIdAt(e.datasetIndex, e.index);
            if (runId) return onOpen(runId);
          }
        },
      },
    });
  }

  private runIdAt(datasetIndex: number, index: number): string | undefined {
    return this.chart.data.datasets[datasetIndex]?.data[index]?.runId;
  }

  update(data: ComparisonData, activeRunId: string | undefined, palette: Palette): void {
    // A long metric name would run past the plot's height into the x axis: the heading above the chart names it in full.
    const yAxis = this.chart.options.scales!.y as { title: { text: string } };
    yAxis.title.text = fitAxisTitle(data.axisTitle, this.chart.height || 180);
    this.chart.canvas.parentElement?.setAttribute('data-y-title', yAxis.title.text);
    this.percent = data.axisTitle.endsWith('(%)');
    const datasets: ChartDataset<'scatter', ScatterDatum[]>[] = data.groups.map((g) => ({
      label: g.method,
      data: g.points.map((p: ScatterPoint) => ({ x: p.x, y: p.y, runId: p.runId })),
      backgroundColor: g.color,
      borderColor: g.points.map((p) => (p.runId === activeRunId ? palette.foreground : g.color)),
      borderWidth: g.points.map((p) => (p.runId === activeRunId ? 2 : 1)),
      pointRadius: g.points.map((p) => (p.runId === activeRunId ? 6 : 4)),
      pointHoverRadius: 7,
    }));
    if (data.front.length > 1) {
      datasets.push({
        label: 'Pareto front',
        data: data.front,
        showLine: true,
        borderColor: withAlpha(palette.foreground, 0.55),
        borderDash: [4, 3],
        borderWidth: 1,
        pointRadius: 0,
        pointHoverRadius: 0,
        backgroundColor: 'transparent',
      });
    }
    if (data.dense) {
      datasets.push({
        label: 'dense model',
        data: [data.dense],
        backgroundColor: 'transparent',
        borderColor: palette.foreground,
        borderWidth: 1.5,
        pointRadius: 5,
        pointStyle: 'rectRot',
      });
    }
    this.chart.data.datasets = datasets;
    redraw(this.chart, palette, this.drawn);
  }
}

type CurveDatum = { x: number; y: number };

/**
 * Sensitivity curves: the metric against the fraction of each group's channels removed, one line per
 * group, and the dense model's metric as a dashed reference. Only the strong curves enter the legend.
 */
export class SensitivityChart {
  readonly chart: Chart<'line', CurveDatum[]>;
  private readonly drawn: { key?: string } = {};
  private percent = true;

  constructor(canvas: HTMLCanvasElement) {
    this.chart = new Chart(canvas, {
      type: 'line',
      data: { datasets: [] },
      options: {
        ...(baseOptions() as ChartOptions<'line'>),
        interaction: { mode: 'nearest', intersect: false },
        scales: {
          x: { type: 'linear', min: 0, title: { display: true, text: 'fraction of the group\'s channels removed' }, ticks: { callback: (v) => `${Math.round(Number(v) * 100)}%` } },
          y: { type: 'linear', title: { display: true, text: 'metric' } },
        },
        plugins: {
          legend: {
            display: true,
            position: 'bottom',
            labels: { boxWidth: 10, boxHeight: 2, filter: (item, data) => (data.datasets[item.datasetIndex ?? 0] as { strongCurve?: boolean }).strongCurve === true },
          },
          tooltip: {
            callbacks: {
              label: (item) => {
                const p = item.raw as CurveDatum;
                return `${item.dataset.label}: ${this.percent ? `${p.y.toFixed(2)}%` : p.y.toPrecision(4)} at ${Math.round(p.x * 100)}% removed`;
              },
            },
          },
        },
      },
    });
  }

  update(data: SensitivityChartData, palette: Palette): void {
    this.percent = data.percent;
    (this.chart.options.scales!.y as { title: { text: string } }).title.text = data.axisTitle;
    const datasets: (ChartDataset<'line', CurveDatum[]> & { curveKey?: string; strongCurve?: boolean })[] = data.curves.map((c) => ({
      label: c.label,
      data: c.points,
      parsing: false,
      borderColor: c.color,
      backgroundColor: c.color,
      borderWidth: c.width,
      pointRadius: c.strong ? 2.5 : 0,
      pointHoverRadius: 4,
      pointHitRadius: 5,
      tension: 0,
      curveKey: c.key,
      strongCurve: c.strong,
    }));
    if (data.dense) {
      datasets.unshift({
        label: 'dense model', data: data.dense, parsing: false, borderColor: palette.green, backgroundColor: palette.green,
        borderWidth: 1.5, borderDash: [5, 4], pointRadius: 0, pointHitRadius: 0, strongCurve: true,
      });
    }
    this.chart.data.datasets = datasets;
    redraw(this.chart, palette, this.drawn);
  }
}
