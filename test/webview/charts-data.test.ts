import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { LayerStat } from '../../src/protocol/events.js';
import type { RunInfo } from '../../src/protocol/webview.js';
import { METHOD_NAMES } from '../../src/protocol/methods.js';
import {
  comparisonData,
  curveData,
  DEFAULT_PALETTE,
  formatSignalValue,
  heatmapRows,
  signalLines,
  signalMeta,
  sparsityScale,
  layerBars,
  methodColor,
  normHistogram,
  parseColor,
  sensitivityCurves,
  sparsityColor,
  STRONG_CURVES,
  type Palette,
} from '../../webview/charts-data.js';
import { activeView, appendPoint, appendSparsityColumn, emptySeries, initialState, reduce, sensitivityRows } from '../../webview/state.js';
import { DENSE_METRIC, SENSITIVITY_CONFIG, SENSITIVITY_RATIOS, sensitivityPoints, sensitivityStart } from './fixtures/sensitivity.js';
import { DONE, fullSession, layersEvent } from './fixtures/session.js';

const palette: Palette = { ...DEFAULT_PALETTE, blue: '#0000ff', yellow: '#ffff00', red: '#ff0000', muted: '#808080', foreground: '#ffffff' };

function layer(partial: Partial<LayerStat>): LayerStat {
  return { name: 'l', type: 'Conv2D', status: 'prunable', channels: 10, kept: 10, sparsity: 0, params: 0, flops: 0, ...partial };
}

test('parseColor reads the colour forms VS Code themes use', () => {
  assert.deepEqual(parseColor('#3794ff'), { r: 0x37, g: 0x94, b: 0xff, a: 1 });
  assert.deepEqual(parseColor('#fff'), { r: 255, g: 255, b: 255, a: 1 });
  assert.deepEqual(parseColor('#ff000080'), { r: 255, g: 0, b: 0, a: 128 / 255 });
  assert.deepEqual(parseColor(' rgba(1, 2, 3, 0.5) '), { r: 1, g: 2, b: 3, a: 0.5 });
  assert.deepEqual(parseColor('rgb(10 20 30 / 40%)'), { r: 10, g: 20, b: 30, a: 0.4 });
  assert.equal(parseColor('var(--x)'), undefined);
  assert.equal(parseColor('#12345'), undefined);
});

test('sparsity colours run blue → yellow → red through the theme palette, clamped', () => {
  assert.equal(sparsityColor(0, palette), 'rgb(0, 0, 255)');
  assert.equal(sparsityColor(0.5, palette), 'rgb(255, 255, 0)');
  assert.equal(sparsityColor(1, palette), 'rgb(255, 0, 0)');
  assert.equal(sparsityColor(0.25, palette), 'rgb(128, 128, 128)');
  assert.equal(sparsityColor(0.75, palette), 'rgb(255, 128, 0)');
  assert.equal(sparsityColor(-3, palette), sparsityColor(0, palette));
  assert.equal(sparsityColor(7, palette), sparsityColor(1, palette));
  assert.equal(sparsityColor(Number.NaN, palette), sparsityColor(0, palette));
  // An unreadable theme colour falls back to the default scale instead of breaking the chart.
  assert.equal(sparsityColor(0, { ...palette, blue: 'var(--missing)' }), sparsityColor(0, DEFAULT_PALETTE));
});

test('layer bars split channels into kept and removed, coloured by sparsity; blocked layers are muted', () => {
  const bars = layerBars([
    layer({ name: 'conv', channels: 32, kept: 20, sparsity: 0.5 }),
    layer({ name: 'dense', type: 'Dense', channels: 128, kept: 128, sparsity: 0 }),
    layer({ name: 'out', type: 'Dense', status: 'blocked', channels: 10, kept: 10, reason: 'output layer' }),
    layer({ name: 'odd', channels: 4, kept: 6 }),
  ], palette);
  assert.deepEqual(bars.labels, ['conv', 'dense', 'out', 'odd']);
  assert.deepEqual(bars.kept, [20, 128, 10, 6]);
  assert.deepEqual(bars.removed, [12, 0, 0, 0], 'never a negative removed count');
  assert.deepEqual(bars.keptColors, ['rgb(255, 255, 0)', 'rgb(0, 0, 255)', '#808080', 'rgb(0, 0, 255)']);
  assert.deepEqual(bars.status, ['prunable', 'prunable', 'blocked', 'prunable']);
  assert.equal(bars.details[0], '20 of 32 channels kept, 50.0% sparse');
  assert.equal(bars.details[2], 'blocked: output layer');
});

test('coupled layers name their group in the details', () => {
  const bars = layerBars([layer({ name: 'a', status: 'coupled', group: 3, channels: 8, kept: 4 })], palette);
  assert.equal(bars.details[0], 'coupled (group 3): 4 of 8 channels kept, 0.0% sparse');
});

test('the norm histogram maps edges to bin labels and keeps the counts', () => {
  const h = normHistogram(layer({ name: 'conv', normHistogram: { edges: [0, 0.05, 0.1, 1.5, 2000], counts: [3, 0, 5, 1] } }))!;
  assert.equal(h.layer, 'conv');
  assert.deepEqual(h.counts, [3, 0, 5, 1]);
  assert.deepEqual(h.labels, ['0\u20130.05', '0.05\u20130.1', '0.1\u20131.5', '1.5\u20132.0e+3']);
  assert.equal(normHistogram(layer({})), undefined);
  assert.equal(normHistogram(undefined), undefined);
  // Malformed (too few edges) is not drawn rather than drawn wrong.
  assert.equal(normHistogram(layer({ normHistogram: { edges: [0, 1], counts: [1, 2] } })), undefined);
});

test('training curves: accuracy and FLOPs in percent of the dense model', () => {
  const view = activeView(fullSession().reduce((s, event) => reduce(s, { type: 'engineEvent', runId: 'r', event }), initialState()))!;
  const data = curveData(view.curves, view.model!.flops);
  assert.deepEqual(data.loss.map((p) => p.x), [1, 2, 3, 4, 5]);
  assert.deepEqual(data.valAccuracy.map((p) => Math.round(p.y * 10)), [910, 930, 950, 982, 986]);
  assert.deepEqual(data.flopsPercent.map((p) => Math.round(p.y)), [100, 100, 100, 40, 40]);
  assert.equal(data.stepLoss.length, 12);
  assert.deepEqual(curveData(view.curves).flopsPercent, [], 'no dense FLOPs, no FLOPs curve');
});

function doneRun(runId: string, method: string, flops: number, accuracy: number | undefined, status: RunInfo['status'] = 'done'): RunInfo {
  return {
    runId,
    method,
    configPath: '/w/a.prune.json',
    status,
    startedAt: 1,
    // Reports that gave only accuracy (before metrics had names) still compare as top-1.
    summary: { ...DONE, method, after: { ...DONE.after, flops }, accuracy: accuracy === undefined ? undefined : { before: 0.99, after: accuracy }, metric: undefined },
  };
}

test('the comparison has one point per finished run with an accuracy, grouped by method', () => {
  const data = comparisonData([
    doneRun('a', 'goprune', 1_900_000, 0.987),
    doneRun('b', 'l1', 2_000_000, 0.97),
    doneRun('c', 'goprune', 1_200_000, 0.975),
    doneRun('d', 'dsp', 1_000_000, undefined),
    doneRun('e', 'ssr', 900_000, 0.9, 'error'),
    { runId: 'f', method: 'l1', configPath: '/w/a.prune.json', status: 'running', startedAt: 2 },
  ], palette);
  assert.deepEqual(data.groups.map((g) => g.method), ['goprune', 'l1']);
  assert.deepEqual(data.groups[0].points.map((p) => [p.runId, p.x, Math.round(p.y * 10)]), [['a', 1_900_000, 987], ['c', 1_200_000, 975]]);
  assert.deepEqual(data.groups[1].points.map((p) => p.runId), ['b']);
  assert.deepEqual(data.dense, { x: DONE.before.flops, y: 99 });
  assert.equal(data.groups[0].color, methodColor('goprune', palette));
  assert.notEqual(data.groups[0].color, data.groups[1].color);
  assert.equal(data.axisTitle, 'top-1 (%)');
  assert.deepEqual(comparisonData([], palette), { groups: [], dense: undefined, axisTitle: 'top-1 (%)', xAxis: 'flops', front: [] });
  // The Pareto front: c (fewest FLOPs) and a (best top-1); b has more FLOPs and a lower top-1 than a.
  assert.deepEqual(data.front.map((p) => [p.x, Math.round(p.y * 10)]), [[1_200_000, 975], [1_900_000, 987]]);
});

test('the latency comparison plots the runs that timed their model, and its own Pareto front', () => {
  const timed = (runId: string, ms: number, after: number): RunInfo => ({
    runId, method: 'l1', configPath: '/w/a.prune.json', status: 'done', startedAt: 1,
    summary: { ...DONE, method: 'l1', metric: { ...DONE.metric!, after }, latency: { ...DONE.latency!, after: { ...DONE.latency!.after, medianMs: ms } } },
  });
  const untimed: RunInfo = { ...timed('u', 1, 0.99), summary: { ...timed('u', 1, 0.99).summary!, latency: undefined } };
  const dry: RunInfo = { ...timed('d', 0.5, 0.99), dryRun: true };
  const data = comparisonData([timed('a', 2.0, 0.98), timed('b', 1.5, 0.97), timed('c', 2.5, 0.975), untimed, dry], palette, 'latency');
  assert.equal(data.xAxis, 'latency');
  assert.deepEqual(data.groups.flatMap((g) => g.points.map((p) => [p.runId, p.x])), [['a', 2.0], ['b', 1.5], ['c', 2.5]], 'untimed and dry runs left out');
  assert.deepEqual(data.front.map((p) => p.x), [1.5, 2.0], 'c is slower and worse than a');
  assert.equal(data.dense?.x, DONE.latency!.before.medianMs);
});

test('method signals read by their label and unit; one point reads as a value; unknown names are spelt out', () => {
  const lines = signalLines({ zeroGroups: appendPoint(emptySeries(), { x: 1, y: 144 }), gap: appendPoint(appendPoint(emptySeries(), { x: 1, y: 0.5 }), { x: 2, y: 0.25 }) }, 'goprune');
  const zero = lines.find((l) => l.name === 'zeroGroups')!;
  assert.equal(zero.label, 'Channels at zero');
  assert.equal(zero.unit, 'channels');
  assert.match(zero.explanation, /can exceed or fall short of the channels removed/);
  assert.equal(zero.points.length, 1);
  assert.equal(formatSignalValue(144, 'channels'), '144');
  assert.equal(formatSignalValue(0.4231, 'fraction'), '42.3%');
  assert.deepEqual(signalMeta('nomethod', 'removedGroups'), { label: 'Removed groups', unit: '', explanation: '' });
});

test('the heat map has one row per layer with a group, in model order, from the sparsity history', () => {
  const layers = layersEvent('train', 0, 0, 0).layers;
  let history = appendSparsityColumn(undefined, 0, { 0: { channels: 32, zero: 0 } });
  history = appendSparsityColumn(history, 10, { 0: { channels: 32, zero: 8 }, 1: { channels: 64, zero: 32 } });
  const rows = heatmapRows(layers, history);
  const grouped = layers.filter((l) => l.group === 0 || l.group === 1);
  assert.deepEqual(rows.map((r) => r.layer), grouped.map((l) => l.name));
  const first = rows.find((r) => r.group === 0)!;
  assert.deepEqual(first.values, [0, 0.25]);
  assert.deepEqual(rows.find((r) => r.group === 1)!.values, [null, 0.5], 'a group first seen later has no value before');
  assert.equal(sparsityScale(palette).length, 101);
  assert.deepEqual(heatmapRows(layers, undefined), []);
});

test('the comparison plots the metric the newest run measured, by its name, and leaves out runs that measured another', () => {
  const withMetric = (runId: string, startedAt: number, name: string, after: number): RunInfo => ({
    runId, method: 'l1', configPath: '/w/a.prune.json', status: 'done', startedAt,
    summary: { ...DONE, method: 'l1', accuracy: undefined, metric: { name, higherIsBetter: name !== 'MAE', before: name === 'MAE' ? 0.1 : 1, afterPruning: 0.5, after } },
  });
  const agreement = comparisonData([withMetric('a', 1, 'top-1 agreement with the dense model', 0.97), withMetric('b', 2, 'top-1 agreement with the dense model', 0.95), doneRun('c', 'l1', 1_000_000, 0.9)], palette);
  assert.equal(agreement.axisTitle, 'top-1 agreement with the dense model (%)');
  assert.deepEqual(agreement.groups[0].points.map((p) => [p.runId, Math.round(p.y)]), [['a', 97], ['b', 95]], 'the top-1 run is another metric: left out');
  assert.deepEqual(agreement.dense?.y, 100);
  const regression = comparisonData([withMetric('a', 1, 'top-1', 0.97), withMetric('r', 5, 'MAE', 0.1234)], palette);
  assert.equal(regression.axisTitle, 'MAE', 'a value, not a percentage');
  assert.deepEqual(regression.groups.flatMap((g) => g.points.map((p) => [p.runId, p.y])), [['r', 0.1234]]);
});

test('the validation metric curve: fractions in percent, other values as they are, by name', () => {
  const series = (values: number[]) => values.reduce((s, y, i) => appendPoint(s, { x: i + 1, y }), emptySeries());
  const curves = { loss: emptySeries(), accuracy: emptySeries(), valLoss: emptySeries(), valAccuracy: emptySeries(), flops: emptySeries(), stepLoss: emptySeries() };
  const f1 = curveData({ ...curves, valMetric: series([0.5, 0.75]) }, undefined, 'multi-label F1');
  assert.deepEqual(f1.valMetric, { name: 'multi-label F1', percent: true, points: [{ x: 1, y: 50 }, { x: 2, y: 75 }] });
  const mae = curveData({ ...curves, valMetric: series([0.5, 0.25]) }, undefined, 'MAE');
  assert.deepEqual(mae.valMetric, { name: 'MAE', percent: false, points: [{ x: 1, y: 0.5 }, { x: 2, y: 0.25 }] });
  assert.equal(curveData(curves).valMetric, undefined, 'top-1 runs have no separate metric curve');
});

test('method colours are stable, also for methods the panel does not know', () => {
  assert.equal(methodColor('l1', palette), palette.blue);
  assert.equal(methodColor('custom-x', palette), methodColor('custom-x', palette));
  const known = METHOD_NAMES.map((m) => methodColor(m, palette));
  assert.equal(new Set(known).size, METHOD_NAMES.length, 'every shipped method gets its own colour');
});

test('an analysis colours layers by prunability instead of sparsity', () => {
  const layers = [
    layer({ name: 'a', status: 'prunable', sparsity: 0.9 }),
    layer({ name: 'b', status: 'coupled', sparsity: 0.9 }),
    layer({ name: 'c', status: 'blocked', reason: 'custom layer' }),
  ];
  assert.deepEqual(layerBars(layers, palette, 'status').keptColors, [palette.green, palette.yellow, palette.muted]);
  assert.deepEqual(layerBars(layers, palette).keptColors, [sparsityColor(0.9, palette), sparsityColor(0.9, palette), palette.muted]);
});

test('sensitivity curves: one per group from the dense metric at 0, the 5 most sensitive strong in their own colours, the rest faint, the hovered on top', () => {
  const messages = [sensitivityStart(40), ...sensitivityPoints(40)].map((event) => ({ type: 'sensitivity' as const, analysisId: 's1', configPath: SENSITIVITY_CONFIG, event }));
  const view = messages.reduce(reduce, initialState()).sensitivity!;
  const data = sensitivityCurves(view, palette);
  assert.equal(data.curves.length, 40);
  assert.equal(data.percent, true, 'agreement is a fraction: in %');
  assert.equal(data.axisTitle, 'top-1 agreement (%)');
  const strong = data.curves.filter((c) => c.strong);
  assert.equal(strong.length, STRONG_CURVES);
  // The strong ones are the highest scores, drawn after (over) the faint ones, each its own colour.
  const ranked = sensitivityRows(view).slice(0, STRONG_CURVES).map((r) => r.key);
  assert.deepEqual(strong.map((c) => c.key).sort(), [...ranked].sort());
  assert.deepEqual(data.curves.slice(-STRONG_CURVES).map((c) => c.strong), Array(STRONG_CURVES).fill(true));
  assert.equal(new Set(strong.map((c) => c.color)).size, STRONG_CURVES);
  const faint = data.curves.filter((c) => !c.strong);
  assert.ok(faint.every((c) => c.width === 1 && parseColor(c.color)!.a < 0.5), 'the other 35 are thin and translucent');
  // Each curve starts at the dense model (0 removed) and follows its points; the dense line spans the ratios.
  const first = data.curves.find((c) => c.key === '0')!;
  assert.deepEqual(first.points.map((p) => p.x), [0, ...SENSITIVITY_RATIOS]);
  assert.equal(first.points[0].y, DENSE_METRIC * 100);
  assert.deepEqual(data.dense, [{ x: 0, y: DENSE_METRIC * 100 }, { x: 0.75, y: DENSE_METRIC * 100 }]);
  assert.equal(first.label, 'group 0 · block_0_project, block_1_project');

  const hovered = sensitivityCurves(view, palette, '7');
  const last = hovered.curves.at(-1)!;
  assert.equal(last.key, '7', 'the hovered curve is drawn last, over the others');
  assert.equal(last.color, palette.foreground);
  assert.equal(last.width, 3);
});
