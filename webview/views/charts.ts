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
  layerBars,
  withAlpha,
  type ComparisonData,
  type CurveData,
  type Histogram,
  type Palette,
  type ScatterPoint,
} from '../charts-data.js';
import type { LayerStat } from '../../src/protocol/events.js';
import type { Point } from '../state.js';
import { formatFlops, formatSi } from '../format.js';

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

function axisColours(palette: Palette) {
  return { grid: { color: palette.grid }, ticks: { color: palette.foreground } };
}

/** Stacked horizontal bars: channels kept (coloured by sparsity) and removed, one row per layer. */
export class LayerChart {
  readonly chart: Chart<'bar'>;
  private details: string[] = [];
  private selected = -1;

  constructor(canvas: HTMLCanvasElement, onSelect: (layer: string) => void) {
    this.chart = new Chart(canvas, {
      type: 'bar',
      data: { labels: [], datasets: [{ label: 'Kept', data: [] }, { label: 'Removed', data: [] }] },
      options: {
        ...(baseOptions() as ChartOptions<'bar'>),
        indexAxis: 'y',
        scales: { x: { stacked: true, beginAtZero: true, title: { display: true, text: 'channels' } }, y: { stacked: true } },
        plugins: {
          legend: { display: false },
          tooltip: { callbacks: { afterBody: (items) => (items[0] ? this.details[items[0].dataIndex] ?? '' : '') } },
        },
        onClick: (_event, elements) => {
          const index = elements[0]?.index;
          const label = index === undefined ? undefined : this.chart.data.labels?.[index];
          if (typeof label === 'string') onSelect(label);
        },
      },
    });
  }

  update(layers: LayerStat[], selectedName: string | undefined, palette: Palette): void {
    const bars = layerBars(layers, palette);
    this.details = bars.details;
    this.selected = selectedName === undefined ? -1 : bars.labels.indexOf(selectedName);
    const chart = this.chart;
    chart.data.labels = bars.labels;
    const [kept, removed] = chart.data.datasets;
    kept.data = bars.kept;
    kept.backgroundColor = bars.keptColors;
    kept.borderColor = bars.labels.map((_, i) => (i === this.selected ? palette.foreground : 'transparent'));
    kept.borderWidth = bars.labels.map((_, i) => (i === this.selected ? 2 : 0));
    removed.data = bars.removed;
    removed.backgroundColor = bars.removedColor;
    chart.options.scales!.x = { ...chart.options.scales!.x, ...axisColours(palette), stacked: true };
    chart.options.scales!.y = { ...chart.options.scales!.y, ...axisColours(palette), stacked: true };
    chart.update('none');
  }
}

export class HistogramChart {
  readonly chart: Chart<'bar'>;

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
    chart.data.datasets[0].backgroundColor = colour;
    chart.options.scales!.x = { ...chart.options.scales!.x, ...axisColours(palette) };
    chart.options.scales!.y = { ...chart.options.scales!.y, ...axisColours(palette) };
    chart.update('none');
  }
}

/** Loss (left axis) with accuracies and FLOPs as percentages (right axis), over epochs. */
export class CurvesChart {
  readonly chart: Chart<'line', Point[]>;

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
        ],
      },
      options: {
        ...(baseOptions() as ChartOptions<'line'>),
        interaction: { mode: 'nearest', axis: 'x', intersect: false },
        scales: {
          x: { type: 'linear', title: { display: true, text: 'epoch' }, ticks: { precision: 0 } },
          loss: { type: 'linear', position: 'left', beginAtZero: true, title: { display: true, text: 'loss' } },
          pct: { type: 'linear', position: 'right', min: 0, max: 100, title: { display: true, text: '%' }, grid: { drawOnChartArea: false } },
        },
        plugins: { legend: { display: true, position: 'bottom', labels: { boxWidth: 10, boxHeight: 2 } } },
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
    ];
    series.forEach(([points, colour], i) => {
      const ds = this.chart.data.datasets[i];
      ds.data = points;
      ds.borderColor = colour;
      ds.backgroundColor = colour;
      ds.hidden = points.length === 0;
    });
    const scales = this.chart.options.scales!;
    for (const id of ['x', 'loss', 'pct']) scales[id] = { ...scales[id], ...axisColours(palette) } as never;
    (scales.pct as { grid: object }).grid = { drawOnChartArea: false };
    this.chart.update('none');
  }
}

/** One small line chart per method signal. */
export class SignalChart {
  readonly chart: Chart<'line', Point[]>;

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
    const scales = this.chart.options.scales!;
    scales.x = { ...scales.x, ...axisColours(palette) } as never;
    scales.y = { ...scales.y, ...axisColours(palette) } as never;
    this.chart.update('none');
  }

  destroy(): void {
    this.chart.destroy();
  }
}

type ScatterDatum = { x: number; y: number; runId?: string };

/** Accuracy against FLOPs, one colour per method; clicking a run's point opens its report. */
export class ComparisonChart {
  readonly chart: Chart<'scatter', ScatterDatum[]>;

  constructor(canvas: HTMLCanvasElement, onOpen: (runId: string) => void) {
    this.chart = new Chart(canvas, {
      type: 'scatter',
      data: { datasets: [] },
      options: {
        ...(baseOptions() as ChartOptions<'scatter'>),
        scales: {
          x: { type: 'linear', title: { display: true, text: 'FLOPs after pruning' }, ticks: { callback: (v) => formatSi(Number(v)).trim() } },
          y: { type: 'linear', title: { display: true, text: 'accuracy (%)' } },
        },
        plugins: {
          legend: { display: true, position: 'bottom', labels: { boxWidth: 8, boxHeight: 8 } },
          tooltip: {
            callbacks: {
              label: (item) => {
                const p = item.raw as ScatterDatum;
                return `${item.dataset.label}: ${p.y.toFixed(2)}% at ${formatFlops(p.x)}${p.runId ? ' (click for report)' : ''}`;
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
    const datasets: ChartDataset<'scatter', ScatterDatum[]>[] = data.groups.map((g) => ({
      label: g.method,
      data: g.points.map((p: ScatterPoint) => ({ x: p.x, y: p.y, runId: p.runId })),
      backgroundColor: g.color,
      borderColor: g.points.map((p) => (p.runId === activeRunId ? palette.foreground : g.color)),
      borderWidth: g.points.map((p) => (p.runId === activeRunId ? 2 : 1)),
      pointRadius: g.points.map((p) => (p.runId === activeRunId ? 6 : 4)),
      pointHoverRadius: 7,
    }));
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
    const scales = this.chart.options.scales!;
    scales.x = { ...scales.x, ...axisColours(palette) } as never;
    scales.y = { ...scales.y, ...axisColours(palette) } as never;
    this.chart.update('none');
  }
}
