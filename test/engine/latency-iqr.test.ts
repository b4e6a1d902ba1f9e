import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { latencyWithinNoise, timingSummary } from '../../src/engine/metrics/timing.js';
import { measureLatencyInTurns } from '../../src/engine/metrics/latency.js';
import { formatLatency, formatLatencyRange, table } from '../../src/protocol/format.js';
import type { LatencySummary } from '../../src/protocol/events.js';

const summary = (times: number[]): LatencySummary => ({ ...timingSummary(times), batchSize: 1, runs: times.length, backend: 'cpu' });

test('the median and interquartile range of timed runs, in any order', () => {
  assert.deepEqual(timingSummary([5, 1, 3, 2, 4]), { medianMs: 3, p25Ms: 2, p75Ms: 4 });
  // An even count: the median is the mean of the middle two, the quartiles interpolate.
  assert.deepEqual(timingSummary([4, 1, 3, 2]), { medianMs: 2.5, p25Ms: 1.75, p75Ms: 3.25 });
  assert.deepEqual(timingSummary([7]), { medianMs: 7, p25Ms: 7, p75Ms: 7 });
  // One slow outlier (a collection pause) moves neither the median nor the quartiles much.
  const withOutlier = timingSummary([10, 10.2, 9.9, 10.1, 10, 80, 10.05, 9.95]);
  assert.ok(withOutlier.p75Ms < 10.2 && withOutlier.medianMs < 10.1);
  assert.throws(() => timingSummary([]), /no timed runs/);
});

test('before and after are within the noise exactly when their interquartile ranges overlap', () => {
  const dense = summary([10, 10.5, 11, 11.5, 12]); // IQR 10.5–11.5
  assert.equal(latencyWithinNoise(dense, summary([9, 9.5, 10, 10.6, 11])), true, 'IQR 9.5–10.6 overlaps');
  assert.equal(latencyWithinNoise(dense, summary([8, 8.5, 9, 9.5, 10])), false, 'IQR 8.5–9.5 is clear of it');
  assert.equal(latencyWithinNoise(dense, summary([8, 8.5, 9, 10.5, 10.6])), true, 'touching ranges count as noise');
  assert.equal(latencyWithinNoise(summary([12, 13, 14]), dense), false, 'slower and clear of it: a real difference too');
  assert.equal(latencyWithinNoise(dense, summary([10.9, 11, 11.1])), true, 'symmetric: a narrow range inside a wide one');
  // A summary without quartiles (an older report) never claims noise.
  assert.equal(latencyWithinNoise({ medianMs: 11, batchSize: 1, runs: 5, backend: 'cpu' }, dense), false);
});

test('the CLI shows the interquartile range beside the median and keeps the column aligned as numbers', () => {
  const s = summary([4.1, 4.2, 4.3]);
  assert.equal(formatLatencyRange(s), '4.15–4.25 ms');
  assert.equal(formatLatency(s), '4.20 ms (IQR 4.15–4.25 ms)');
  assert.equal(formatLatency({ medianMs: 4.2 }), '4.20 ms');
  assert.equal(formatLatency(summary([120, 130, 150])), '130 ms (IQR 125–140 ms)');
  const rendered = table(['', 'before', 'after'], [['FLOPs', '1.2M', '0.6M'], ['latency', formatLatency(s), formatLatency({ medianMs: 12.5 })]]);
  assert.match(rendered.split('\n')[2], / {2,}1\.2M {2,}/, 'numbers still align right');
  assert.ok(rendered.split('\n')[3].endsWith('12.50 ms'));
});

test('models timed in turns: one summary per model, every run counted, no tensor left behind', async () => {
  const build = (filters: number) => {
    const input = tf.input({ shape: [16, 16, 3] });
    const output = tf.layers.conv2d({ filters, kernelSize: 3, padding: 'same' }).apply(input) as tf.SymbolicTensor;
    return tf.model({ inputs: input, outputs: output });
  };
  const [wide, narrow] = [build(64), build(2)];
  const tensors = tf.memory().numTensors;
  const [a, b] = await measureLatencyInTurns([wide, narrow], { runs: 5, batchSize: 4 });
  assert.equal(tf.memory().numTensors, tensors);
  for (const s of [a, b]) {
    assert.equal(s.runs, 5);
    assert.equal(s.batchSize, 4);
    assert.ok(s.p25Ms! <= s.medianMs && s.medianMs <= s.p75Ms! && s.medianMs > 0);
  }
  wide.dispose();
  narrow.dispose();
});
