import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { analyzeModel } from '../../src/engine/graph/analyze.js';
import { unitNorms } from '../../src/engine/metrics/index.js';
import { analyzeSensitivity, sensitivityScore, type SensitivityReport } from '../../src/engine/sensitivity/index.js';
import { removeUnits } from '../../src/engine/surgery/index.js';
import { evaluateModel } from '../../src/engine/train/index.js';
import type { Dataset } from '../../src/engine/train/types.js';
import { CancelledError } from '../../src/engine/errors.js';
import { loadConfig } from '../../src/engine/config/index.js';
import { runSensitivity, sensitivityReportPath } from '../../src/engine/sensitivity/run.js';
import { makeWorkspace, tinyTrainingConfig } from '../helpers/fixtures.js';
import { buildFragileAndRobust, FRAGILE_ROBUST_SAMPLE, labelledBy } from '../helpers/fragile-robust.js';

before(async () => {
  await tf.setBackend('cpu');
});

const SAMPLE = FRAGILE_ROBUST_SAMPLE;
const WIDTH = 8;
const CLASSES = 4;
const COUNT = 256;

function entry(report: SensitivityReport, id: number | string) {
  const found = report.groups.find((g) => g.id === id);
  assert.ok(found, `no entry ${id} in ${report.groups.map((g) => g.id).join(', ')}`);
  return found;
}

describe('sensitivity analysis', () => {
  const model = buildFragileAndRobust();
  const data = labelledBy(model);
  const graph = analyzeModel(model);
  const coupled = graph.groups.find((g) => g.producers.includes('stem'))!;
  const innerGroup = graph.groups.find((g) => g.producers.includes('inner'))!;
  let grouped: SensitivityReport;
  let layered: SensitivityReport;

  it('the test model: stem and tail share one coupled group, inner has its own', () => {
    assert.deepEqual([...coupled.producers].sort(), ['stem', 'tail']);
    assert.ok(coupled.coupled);
    assert.deepEqual(innerGroup.producers, ['inner']);
  });

  it('group-aware curves rank the coupled group fragile and the inner group robust', async () => {
    const points: string[] = [];
    const started = Date.now();
    grouped = await analyzeSensitivity(model, data, { onPoint: (e, p) => points.push(`${e.id}@${p.ratio}`) });
    assert.equal(grouped.mode, 'group');
    assert.equal(grouped.metric.name, 'top-1');
    assert.equal(grouped.samples, COUNT);
    assert.equal(grouped.dense.metric, 1);
    assert.equal(points.length, grouped.groups.length * 9, 'every point streamed');
    const fragile = sensitivityScore(grouped, entry(grouped, coupled.id));
    const robust = sensitivityScore(grouped, entry(grouped, innerGroup.id));
    console.log(`group-aware: coupled group drop ${fragile.toFixed(3)}, inner group drop ${robust.toFixed(3)} (${Date.now() - started} ms)`);
    assert.ok(fragile > 0.3, `the coupled group loses ${fragile} top-1 on average`);
    assert.ok(robust < 0.05, `the inner group loses ${robust} top-1 on average`);
    // Every conv and the head read or write the coupled channels; inner's reach inner and tail alone.
    assert.equal(entry(grouped, coupled.id).flopsShare, 1);
    assert.ok(Math.abs(entry(grouped, innerGroup.id).flopsShare - 2 / 3) < 0.05, `inner share ${entry(grouped, innerGroup.id).flopsShare}`);
  });

  it('layer at a time reports the coupled residual member (tail) as robust as the inner group: it cannot rank them', async () => {
    layered = await analyzeSensitivity(model, data, { layerAtATime: true });
    assert.equal(layered.mode, 'layer');
    assert.deepEqual(layered.groups.map((g) => g.id).sort(), ['inner', 'stem', 'tail']);
    assert.equal(entry(layered, 'tail').group, coupled.id);
    const tail = sensitivityScore(layered, entry(layered, 'tail'));
    const inner = sensitivityScore(layered, entry(layered, 'inner'));
    const groupOfTail = sensitivityScore(grouped, entry(grouped, coupled.id));
    console.log(`layer at a time: tail drop ${tail.toFixed(3)}, inner drop ${inner.toFixed(3)}; tail's group drop ${groupOfTail.toFixed(3)}`);
    assert.ok(tail < 0.05, `tail alone loses ${tail}: robust`);
    assert.ok(tail <= inner + 0.02, 'tail is not ranked above the robust inner layer');
    assert.ok(groupOfTail - tail > 0.25, 'while removing its channels, which the add ties to the stem, is costly');
  });

  it('a masked point equals the physically pruned model, and the model comes back intact', async () => {
    const half = entry(grouped, coupled.id).points.find((p) => p.ratio === 0.5)!;
    const norms = unitNorms(model, graph, 'l2');
    const lowest = [...coupled.units].sort((a, b) => norms[a] - norms[b] || a - b).slice(0, half.removed);
    const pruned = await removeUnits(model, graph, lowest);
    const result = await evaluateModel(pruned, data);
    pruned.dispose();
    assert.equal(result.metric.value, half.metric);
    assert.ok(Math.abs(result.loss - half.loss) < 1e-5, `removed ${result.loss} vs masked ${half.loss}`);
    const again = await evaluateModel(model, data);
    assert.equal(again.metric.value, 1);
    assert.ok(Math.abs(again.loss - grouped.dense.loss) < 1e-6);
  });

  it('unlabelled data: fidelity to the dense model, from a teacher it freezes itself', async () => {
    const unlabelled: Dataset = { ...data, targets: 'none', classes: 0,
      validationBatches: async function* (n) { for await (const b of data.validationBatches(n)) { tf.dispose(b.y ?? []); yield { x: b.x }; } } };
    const report = await analyzeSensitivity(model, unlabelled, { ratios: [0.5], samples: 64 });
    assert.equal(report.samples, 64);
    assert.match(report.metric.name, /agreement/);
    assert.ok(sensitivityScore(report, entry(report, coupled.id)) > sensitivityScore(report, entry(report, innerGroup.id)));
  });

  it('caches by model hash, ratios and samples; cancels; refuses ratios outside (0, 1)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'prunelens-sensitivity-'));
    try {
      const first = await analyzeSensitivity(model, data, { ratios: [0.3, 0.6], samples: 100, cacheDir: dir });
      assert.equal(readdirSync(dir).filter((f) => f.endsWith('.json')).length, 1);
      // The cached answer reads no data at all.
      const noData: Dataset = { ...data, validationBatches: () => { throw new Error('evaluated instead of reading the cache'); } };
      let streamed = 0;
      const second = await analyzeSensitivity(model, noData, { ratios: [0.6, 0.3], samples: 100, cacheDir: dir, onPoint: () => streamed++ });
      assert.deepEqual(second, first);
      assert.equal(streamed, first.groups.length * 2);
      await analyzeSensitivity(model, data, { ratios: [0.3], samples: 100, cacheDir: dir });
      assert.equal(readdirSync(dir).filter((f) => f.endsWith('.json')).length, 2, 'other ratios, another entry');

      const abort = new AbortController();
      await assert.rejects(analyzeSensitivity(model, data, { samples: 32, signal: abort.signal, onPoint: () => abort.abort() }), CancelledError);
      const again = await evaluateModel(model, data);
      assert.equal(again.metric.value, 1, 'weights restored after a cancelled point');

      await assert.rejects(analyzeSensitivity(model, data, { ratios: [0.5, 1] }), /ratio 1 is not a fraction between 0 and 1/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('masking equals removal where the activation does not keep zero (sigmoid): the consumers\' inputs are masked too', async () => {
    const input = tf.input({ shape: SAMPLE });
    const squashed = tf.layers.conv2d({ name: 'squash', filters: WIDTH, kernelSize: 1, activation: 'sigmoid', kernelInitializer: tf.initializers.glorotUniform({ seed: 3 }) }).apply(input) as tf.SymbolicTensor;
    const pooled = tf.layers.globalAveragePooling2d({}).apply(squashed) as tf.SymbolicTensor;
    const out = tf.layers.dense({ name: 'out', units: CLASSES, activation: 'softmax', kernelInitializer: tf.initializers.glorotUniform({ seed: 4 }) }).apply(pooled) as tf.SymbolicTensor;
    const squash = tf.model({ inputs: input, outputs: out });
    const report = await analyzeSensitivity(squash, data, { ratios: [0.5] });
    const squashGraph = analyzeModel(squash);
    const group = squashGraph.groups.find((g) => g.producers.includes('squash'))!;
    const point = entry(report, group.id).points[0];
    const norms = unitNorms(squash, squashGraph, 'l2');
    const pruned = await removeUnits(squash, squashGraph, [...group.units].sort((a, b) => norms[a] - norms[b] || a - b).slice(0, point.removed));
    const removed = await evaluateModel(pruned, data);
    pruned.dispose();
    squash.dispose();
    assert.ok(Math.abs(removed.loss - point.loss) < 1e-6, `removed ${removed.loss} vs reported ${point.loss}`);
  });

  it('from a config: its model and data, the report written beside the config', async () => {
    const ws = await makeWorkspace('prunelens-sensitivity-');
    try {
      const config = loadConfig(ws.writeConfig({ ...tinyTrainingConfig }));
      const run = await runSensitivity(config, { ratios: [0.5], samples: 16, cacheDir: join(ws.dir, 'cache') });
      assert.equal(run.file, join(ws.dir, 'tiny.sensitivity.json'));
      assert.equal(sensitivityReportPath(config.configPath), run.file);
      const written = JSON.parse(readFileSync(run.file, 'utf8')) as SensitivityReport;
      assert.deepEqual(written.groups.map((g) => g.producers), [['conv1'], ['conv2'], ['fc1']]);
      assert.equal(written.samples, 16);
      const { data: _data, ...withoutData } = tinyTrainingConfig;
      void _data;
      const noData = loadConfig(ws.writeConfig({ ...withoutData }, 'nodata.prune.json'));
      await assert.rejects(runSensitivity(noData, {}), /nodata\.prune\.json.*has no "data"/);
    } finally {
      rmSync(ws.dir, { recursive: true, force: true });
    }
  });
});
