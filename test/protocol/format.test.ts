import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import {
  formatAccuracy, formatBytes, formatChange, formatCount, formatDuration, formatEta, formatMetricChange, formatMetricValue, formatMs,
  formatPercent, formatPointChange, formatRecovery, formatShape, table,
} from '../../src/protocol/format.js';

test('compact counts read as the demo table prints them', () => {
  assert.deepEqual([5773, 35_600, 115_412, 1_550_000, 3_140_000, 2.5e9, NaN].map(formatCount),
    ['5773', '35.6k', '115.4k', '1.55M', '3.14M', '2.50G', 'NaN']);
});

test('percentages: one decimal, two for accuracy, a dash when unknown', () => {
  assert.equal(formatPercent(0.5071), '50.7%');
  assert.equal(formatPercent(0.5071, 0), '51%');
  assert.equal(formatPercent(undefined), '—');
  assert.equal(formatPercent(NaN), '—');
  assert.equal(formatAccuracy(0.9798), '97.98%');
  assert.equal(formatAccuracy(undefined), '—');
});

test('changes carry a true minus sign, none when nothing changed, and a dash without a base', () => {
  assert.equal(formatChange(210_000, 95_000), '\u221254.8%');
  assert.equal(formatChange(100, 150), '+50.0%');
  assert.equal(formatChange(100, 100), '0.0%');
  assert.equal(formatChange(100_000, 99_999.99), '0.0%', 'a change that rounds to zero has no sign');
  assert.equal(formatChange(0, 5), '—');
  assert.equal(formatPointChange(0.9912, 0.9874), '\u22120.38 pp');
  assert.equal(formatPointChange(0.9, 0.95), '+5.00 pp');
  assert.equal(formatPointChange(0.9, 0.9), '0.00 pp');
});

test('durations and time left', () => {
  assert.deepEqual([850, 13_600, 89_940, 125_000].map(formatDuration), ['850 ms', '13.6 s', '89.9 s', '2 min 5 s']);
  assert.deepEqual([45_000, 65_000, 3_725_000].map(formatEta), ['45 s', '1 min 05 s', '1 h 02 min']);
  assert.equal(formatEta(undefined), '');
  assert.equal(formatEta(-1), '');
  assert.equal(formatEta(Infinity), '');
  assert.deepEqual([4.2, 123.4].map(formatMs), ['4.20 ms', '123 ms']);
});

test('bytes and shapes', () => {
  assert.deepEqual([512, 820 * 1024, 12.5 * 2 ** 20, 150 * 2 ** 20, 1.52 * 2 ** 30].map(formatBytes),
    ['512 B', '820 KiB', '12.5 MiB', '150 MiB', '1.52 GiB']);
  assert.equal(formatShape([null, 28, 28, 1]), '[?, 28, 28, 1]');
  assert.equal(formatShape([]), '[]');
});

test('the demo table is laid out exactly as the README shows it', () => {
  const readme = readFileSync(resolve('README.md'), 'utf8');
  const shown = /```\n(method {2,}params.*?)\n```/s.exec(readme)?.[1];
  assert.ok(shown, 'the README shows the demo table');
  // The README leaves out the rule under the header.
  const [header, ...rows] = shown.split('\n').map((line) => line.trim().split(/ {2,}/));
  const [headerLine, , ...rowLines] = table(header, rows).split('\n');
  assert.equal([headerLine, ...rowLines].join('\n'), shown);
  assert.equal(table([' ', 'before', 'after', 'change'], [['file size', '820 KiB', '371 KiB', '\u221254.8%'], ['top-1', '99.12%', '98.74%', '\u22120.38 pp']]),
    [
      '            before    after    change',
      '─────────  ───────  ───────  ────────',
      'file size  820 KiB  371 KiB    −54.8%',
      'top-1       99.12%   98.74%  −0.38 pp',
    ].join('\n'));
});

test('metrics read by kind: fractions in percent and points, other values to four digits', () => {
  assert.equal(formatMetricValue({ name: 'top-1', value: 0.98765 }), '98.77%');
  assert.equal(formatMetricValue({ name: 'multi-label F1', value: 0.5 }), '50.00%');
  assert.equal(formatMetricValue({ name: 'top-1 agreement with the dense model (classes)', value: 0.8 }), '80.00%');
  assert.equal(formatMetricValue({ name: 'MAE', value: 0.112534 }), '0.1125');
  assert.equal(formatMetricValue({ name: 'relative error vs the dense model', value: NaN }), '—');
  assert.equal(formatMetricChange('top-1', 0.9912, 0.9874), '\u22120.38 pp');
  assert.equal(formatMetricChange('MAE', 0.5334, 0.1125), '\u22120.421');
  assert.equal(formatMetricChange('R²', 0.5, 0.5), '0.00');
});

test('recovery reads dense, right after pruning and after fine-tuning, in the metric\'s own units', () => {
  assert.equal(formatRecovery({ name: 'top-1', before: 0.9912, afterPruning: 0.624, after: 0.9874 }),
    '99.12% dense \u2192 62.40% right after pruning \u2192 98.74% after fine-tuning');
  assert.equal(formatRecovery({ name: 'relative error vs the dense model', before: 0, afterPruning: 0.41234, after: 0.0987 }),
    '0.000 dense \u2192 0.4123 right after pruning \u2192 0.09870 after fine-tuning');
  assert.equal(formatRecovery({ name: 'top-1', before: 0.9912, after: 0.624 }), '99.12% dense \u2192 62.40% pruned (not fine-tuned)');
});
