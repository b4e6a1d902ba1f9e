import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ProgressEvent } from '../../src/protocol/events.js';
import { SessionProgress, STAGES, plannedSteps, stageWeights, type ProgressPlan } from '../../src/engine/session/progress.js';

const PLAN: ProgressPlan = {
  methodSteps: 100, methodBatchSize: 32, methodEpochs: 2, finetuneSteps: 50, finetuneBatchSize: 32, finetuneEpochs: 1,
  validationSamples: 1000, latencyRuns: 20, latencyBatchSize: 1, timedLayers: 160,
};

test('stages weigh their expected cost: training dominates, every stage counts', () => {
  const weights = stageWeights(PLAN);
  const total = STAGES.reduce((sum, s) => sum + weights[s], 0);
  assert.ok(weights.method / total > 0.5, `method share ${weights.method / total}`);
  assert.ok(weights.method > weights.finetune && weights.finetune > weights.evaluateDense);
  for (const stage of STAGES) assert.ok(weights[stage] > 0, stage);
  assert.equal(plannedSteps({ epochs: 2, batchSize: 32, maxStepsPerEpoch: 10 }, 1000), 20);
  assert.equal(plannedSteps({ epochs: 1.5, batchSize: 100 }, 1000), 15);
  assert.equal(plannedSteps(undefined, 1000), 0);
});

test('progress only moves forward, agrees with what it returns, and the ETA follows the step rate', () => {
  let now = 0;
  const events: ProgressEvent[] = [];
  const progress = new SessionProgress(PLAN, (e) => events.push(e), () => now);
  progress.enter('load', 'loading');
  progress.enter('timeDense', 'measuring the dense model');
  for (let run = 1; run <= 20; run++) { now += 5; progress.update(run / 20 * 0.3, `measuring the dense model, ${run} of 20 runs`); }
  assert.ok(events.some((e) => e.activity === 'measuring the dense model, 1 of 20 runs'), 'a new activity is reported at once');
  assert.equal(events.at(-1)!.etaMs, undefined, 'no ETA before a rate is known');
  progress.enter('method', 'training');
  let last = 0;
  for (let step = 0; step < 100; step++) {
    now += 100;
    const value = progress.step(`epoch 1, step ${step + 1}`);
    assert.ok(value >= last);
    last = value;
  }
  // Entering the method stage again (a second training run) does not go back.
  assert.equal(progress.enter('method', 'training again'), last);
  assert.equal(progress.enter('timeDense', 'late'), last, 'an earlier stage is never entered again');
  const eta = progress.etaMs()!;
  const weights = stageWeights(PLAN);
  const total = STAGES.reduce((sum, s) => sum + weights[s], 0);
  const msPerWeight = 100 / (weights.method / 100);
  assert.ok(Math.abs(eta - (1 - last) * total * msPerWeight) < 1, `ETA ${eta} from 100 ms per step`);
  progress.finish();
  const values = events.map((e) => e.progress);
  for (let i = 1; i < values.length; i++) assert.ok(values[i] >= values[i - 1]);
  assert.deepEqual(events.at(-1), { type: 'progress', progress: 1, etaMs: 0, activity: 'done' });
});
