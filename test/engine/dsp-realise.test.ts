import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { buildDemoCnn } from '../../src/engine/demo/model.js';
import { dspLayers, dspMethod, planLayers } from '../../src/engine/methods/dsp.js';
import { applyPlanMasks, buildPackedModel, buildRealisationProbe } from '../../src/engine/methods/dsp/pack.js';
import { DspPlanner, liveGroups, type GroupedConvPlan, type LayerRealisation } from '../../src/engine/methods/dsp/plan.js';
import { planRealisation, realisationCost, type DspRealisation } from '../../src/engine/methods/dsp/realise.js';
import { countCost } from '../../src/engine/metrics/index.js';
import { seededRandom } from '../../src/engine/util/random.js';
import { buildResNet20, maxOutputDiff, randomInput } from '../helpers/models.js';

const DSP_DEFAULTS = dspMethod.defaults;

before(async () => {
  await tf.setBackend('cpu');
});

const MODELS: [string, () => tf.LayersModel][] = [
  ['the demo CNN', () => buildDemoCnn({ inputShape: [12, 12, 1], classes: 4, seed: 4 })],
  ['a CIFAR ResNet-20', () => buildResNet20({ inputShape: [12, 12, 3], width: 8, classes: 4, seed: 9 })],
];

/** A planner over random learned groups (4 per layer), as group learning would leave them. */
function plannerFor(model: tf.LayersModel, seed: number): { planner: DspPlanner; regrouped: string[] } {
  const random = seededRandom(seed);
  const layers = dspLayers(model, DSP_DEFAULTS, []);
  const groupOf = layers.map((l) => Array.from({ length: l.getWeights()[0].shape[3] as number }, () => Math.floor(random() * DSP_DEFAULTS.groups)));
  return { planner: new DspPlanner(planLayers(model, layers, groupOf, DSP_DEFAULTS, [])), regrouped: layers.map((l) => l.name) };
}

/** Plans, packs and checks: FLOPs counted on the packed model within 2 points of a 50% cut, outputs equal to the masked model's. */
async function realise(model: tf.LayersModel, mode: DspRealisation, seed: number) {
  const { planner, regrouped } = plannerFor(model, seed);
  const dense = countCost(model).flops;
  const result = await planRealisation(model, planner, regrouped, dense, dense * 0.5, { mode, batchSize: 2 });
  applyPlanMasks(model, result.plans);
  const packed = await buildPackedModel(model, result.plans);
  const flops = countCost(packed).flops;
  assert.equal(flops, result.flops, 'the planner prices the realisation it builds');
  assert.ok(Math.abs(1 - flops / dense - 0.5) <= 0.02, `${mode}: FLOPs reduced by ${(100 * (1 - flops / dense)).toFixed(2)}%, target 50%`);
  const x = randomInput(model, 3, seed);
  const diff = maxOutputDiff(model, packed, x);
  x.dispose();
  assert.ok(diff <= 1e-5, `${mode}: packed differs from masked by ${diff}`);
  return { ...result, packed, planner };
}

const replacing = (packed: tf.LayersModel, plan: GroupedConvPlan) => packed.layers.filter((l) => l.name.startsWith(`${plan.layer}_`));

for (const [name, build] of MODELS) {
  test(`${name}: every regrouped conv built as one conv equals the masked model and meets the FLOPs target`, async () => {
    const model = build();
    const { plans, packed, timings } = await realise(model, 'merged', 3);
    assert.deepEqual(timings, [], 'nothing is timed when the realisation is fixed');
    const regrouped = plans.filter((p) => liveGroups(p).length > 1);
    assert.ok(regrouped.length > 0, 'some conv keeps several groups');
    for (const plan of regrouped) {
      assert.ok(plan.realisedAsOne, plan.layer);
      const layers = replacing(packed, plan);
      // One conv (behind a 1×1 selection when the union leaves inputs out and that is cheaper), no concatenation, no scatter.
      assert.ok(layers.every((l) => l.getClassName() === 'Conv2D'), layers.map((l) => l.name).join(', '));
      assert.equal(layers.filter((l) => !l.name.endsWith('_select')).length, 1, plan.layer);
      // Removed filters stay as zero channels where the output is not packed: the layer keeps its width.
      const conv = layers.find((l) => !l.name.endsWith('_select'))!;
      const expected = plan.packedOutput ? plan.groupOfFilter.filter((g) => g >= 0).length : plan.groupOfFilter.length;
      assert.equal(conv.getWeights()[0].shape[3], expected, plan.layer);
    }
  });

  test(`${name}: per-group and measured realisations equal the masked model and meet the FLOPs target`, async () => {
    const grouped = await realise(build(), 'grouped', 5);
    assert.ok(grouped.plans.every((p) => !p.realisedAsOne));
    assert.ok(grouped.packed.layers.some((l) => l.getClassName() === 'Concatenate'), 'per-group convs are concatenated');
    const measured = await realise(build(), 'measured', 5);
    assert.ok(measured.timings.length > 0, 'the regrouped convs were timed');
    for (const t of measured.timings) {
      assert.deepEqual(t.candidates.slice(0, 2).map((c) => c.realisation), ['perGroup', 'oneConv'], t.layer);
      assert.ok(t.plainMsPerFlop >= 0 && t.candidates.every((c) => c.ms > 0 && c.flops > 0), t.layer);
      const least = Math.min(...t.candidates.map((c) => realisationCost(c, t.plainMsPerFlop)));
      assert.equal(realisationCost(t.candidates.find((c) => c.realisation === t.best)!, t.plainMsPerFlop), least, `${t.layer}: the least cost wins`);
    }
  });
}

test('the timed probe is the replacement the packed model gets: same layers, same FLOPs', async () => {
  const model = buildResNet20({ inputShape: [12, 12, 3], width: 8, classes: 4, seed: 9 });
  const { planner, regrouped } = plannerFor(model, 7);
  const dense = countCost(model).flops;
  const { plans } = await planRealisation(model, planner, regrouped, dense, dense * 0.6, { mode: 'grouped', batchSize: 1 });
  applyPlanMasks(model, plans);
  const packed = await buildPackedModel(model, plans);
  const packedCost = countCost(packed);
  for (const plan of plans.filter((p) => liveGroups(p).length > 1)) {
    for (const realisedAsOne of [false, true]) {
      const variant = { ...plan, realisedAsOne };
      const probe = await buildRealisationProbe(model, variant, planner.inputWidth(plan.layer, plans));
      const probeLayers = probe.layers.filter((l) => l.getClassName() !== 'InputLayer');
      if (!realisedAsOne) {
        assert.deepEqual(probeLayers.map((l) => l.name), replacing(packed, plan).map((l) => l.name));
        const flops = replacing(packed, plan).reduce((sum, l) => sum + packedCost.layers[l.name].flops, 0);
        assert.equal(countCost(probe).flops, flops, plan.layer);
      } else {
        assert.ok(!probeLayers.some((l) => l.getClassName() === 'Concatenate'), plan.layer);
      }
      probe.dispose();
    }
  }
});

test('one conv reading every input (zero kernel rows, no selection conv) equals the masked ResNet-20 and is priced as built', async () => {
  const model = buildResNet20({ inputShape: [12, 12, 3], width: 8, classes: 4, seed: 9 });
  const { planner, regrouped } = plannerFor(model, 11);
  planner.setRealisations(new Map(regrouped.map((name): [string, LayerRealisation] => [name, 'oneConvAllInputs'])));
  const dense = countCost(model).flops;
  const { plans, flops } = planner.bisect(dense, dense * 0.6);
  applyPlanMasks(model, plans);
  const packed = await buildPackedModel(model, plans);
  assert.equal(countCost(packed).flops, flops);
  assert.ok(!packed.layers.some((l) => l.name.endsWith('_select') || l.getClassName() === 'Concatenate'), 'no selection, no concatenation');
  // Convs reading the residual stream keep every input: some of those rows are zero.
  const reader = plans.find((p) => p.layer === 's1b1_conva')!;
  assert.equal(packed.getLayer(`s1b1_conva_g${liveGroups(reader)[0]}`).getWeights()[0].shape[2], 8);
  const x = randomInput(model, 3, 2);
  const diff = maxOutputDiff(model, packed, x);
  x.dispose();
  assert.ok(diff <= 1e-5, `packed differs from masked by ${diff}`);
});
