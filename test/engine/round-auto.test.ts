import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { autoRoundWidths, chooseRoundMultiple } from '../../src/engine/prune/round-auto.js';
import { loadConfig } from '../../src/engine/config/index.js';
import { executeSession } from '../../src/engine/session/session.js';
import { makeWorkspace, tinyTrainingConfig } from '../helpers/fixtures.js';

before(async () => {
  await tf.setBackend('cpu');
});

test('the widths timed are the kept count and its round-ups, deduplicated and never above the group', () => {
  assert.deepEqual(autoRoundWidths(37, 64), [37, 38, 40, 48, 64]);
  assert.deepEqual(autoRoundWidths(37, 44), [37, 38, 40, 44]);
});

test('auto picks 8 when the multiple of 8 runs faster per kept channel', () => {
  // 37 → 2: 38, 4: 40, 8: 40, 16: 48, 32: 64. Width 40 is fastest overall; 4 and 8 share it, so the smaller wins.
  const timesMs = new Map([[37, 1.9], [38, 1.9], [40, 1.2], [48, 1.9], [64, 2.6]]);
  assert.equal(chooseRoundMultiple({ kept: 37, groupChannels: 64, timesMs }), 4);
  // 33 → 2: 34, 4: 36, 8: 40, 16: 48, 32: 64: only the multiple of 8 is fast.
  const times33 = new Map([[33, 1.8], [34, 1.9], [36, 2.0], [40, 1.2], [48, 1.9], [64, 2.6]]);
  assert.equal(chooseRoundMultiple({ kept: 33, groupChannels: 64, timesMs: times33 }), 8);
  // Unless rounding to 8 would cost more than 5 points of FLOPs reduction.
  assert.equal(chooseRoundMultiple({ kept: 33, groupChannels: 64, timesMs: times33, flopsLoss: new Map([[8, 0.06], [16, 0.1], [32, 0.2]]) }), 1);
});

test('auto picks 1 when no rounded width is faster per kept channel', () => {
  // Time proportional to width: every candidate ties, and ties go to the smaller multiple.
  const proportional = new Map([37, 38, 40, 48, 64].map((w) => [w, w * 0.05]));
  assert.equal(chooseRoundMultiple({ kept: 37, groupChannels: 64, timesMs: proportional }), 1);
  const worse = new Map([[37, 1.0], [38, 1.5], [40, 1.6], [48, 2.0], [64, 3.0]]);
  assert.equal(chooseRoundMultiple({ kept: 37, groupChannels: 64, timesMs: worse }), 1);
});

test('auto respects the group size: a multiple beyond it means keeping the whole group', () => {
  // Group of 20 keeping 13: 16 → 16, 32 → 20 (capped, the whole group). Width 20 is fastest per channel.
  assert.deepEqual(autoRoundWidths(13, 20), [13, 14, 16, 20]);
  const timesMs = new Map([[13, 1.3], [14, 1.4], [16, 1.6], [20, 1.0]]);
  assert.equal(chooseRoundMultiple({ kept: 13, groupChannels: 20, timesMs }), 32);
  // No timing for a width above the group is ever asked for.
  assert.equal(chooseRoundMultiple({ kept: 13, groupChannels: 20, timesMs: new Map([[13, 1.3], [32, 0.1]]) }), 1);
});

test('a session with "roundTo": "auto" completes and its report names the chosen multiple', async () => {
  const ws = await makeWorkspace('prunelens-round-auto-');
  const config = loadConfig(ws.writeConfig({ ...tinyTrainingConfig, roundTo: 'auto' }));
  assert.equal(config.roundTo, 'auto');
  const result = await executeSession(config, () => {});
  assert.equal(result.type, 'done', result.type === 'error' ? result.message : '');
  const report = JSON.parse(readFileSync(join(ws.dir, 'pruned', 'pruning-report.json'), 'utf8')) as { notes: string[] };
  const note = report.notes.find((n) => n.startsWith('roundTo auto chose '));
  assert.ok(note, report.notes.join('\n'));
  assert.match(note, /^roundTo auto chose (1|2|4|8|16|32) on cpu: \w+ at \d+ channels \d+\.\d+ ms/);
  console.log(note);
});

test('roundTo accepts "auto" and integers ≥ 1, nothing else', async () => {
  const ws = await makeWorkspace('prunelens-round-auto-schema-');
  assert.equal(loadConfig(ws.writeConfig({ ...tinyTrainingConfig, roundTo: 8 })).roundTo, 8);
  assert.throws(() => loadConfig(ws.writeConfig({ ...tinyTrainingConfig, roundTo: 'fast' })), /roundTo/);
  assert.throws(() => loadConfig(ws.writeConfig({ ...tinyTrainingConfig, roundTo: 0 })), /roundTo/);
});
