import * as tf from '@tensorflow/tfjs';
import { countCost } from '../../metrics/index.js';
import { timeForward } from '../../metrics/timing.js';
import { buildRealisationProbe } from './pack.js';
import { liveGroups, withRealisation, type DspPlanner, type GroupedConvPlan, type LayerRealisation } from './plan.js';

/**
 * How DSP builds its regrouped convs (an engineering choice; what DSP learns and masks is the same):
 * `grouped`: one conv per learned group (1×1 selection convs and a concatenation join them);
 * `merged`: one conv over the union of the groups' inputs, the dropped kernel slices kept as zeros;
 * `measured`: per conv, the form that costs least when timed on the session's backend.
 */
export type DspRealisation = 'measured' | 'grouped' | 'merged';

/** One form of one conv, timed alone at the session's latency batch size. */
export interface CandidateTiming {
  realisation: LayerRealisation;
  ms: number;
  flops: number;
}

/** A conv's forms as timed, and the one with the least cost (time plus its FLOPs at the plain-conv rate). */
export interface RealisationTiming {
  layer: string;
  candidates: CandidateTiming[];
  /**
   * What a FLOP the threshold cuts elsewhere gives back: the marginal time per FLOP of a plain conv
   * (its kept filters over every input against over half of them), the median over the timed convs.
   */
  plainMsPerFlop: number;
  best: LayerRealisation;
}

export interface RealisedPlan {
  beta: number;
  plans: GroupedConvPlan[];
  flops: number;
  /** The last round of timings (empty unless `measured`). */
  timings: RealisationTiming[];
}

/** Choosing changes the FLOPs, so the threshold is bisected again; choices settle in a round or two. */
const MAX_ROUNDS = 3;
const PROBE_RUNS = 5;
/** Relative FLOPs error the target is met within (the rule DSP warns on). */
const TARGET_TOLERANCE = 0.02;

/**
 * A form's cost: its time, plus its FLOPs priced at the plain conv's marginal rate. Under a FLOPs
 * target a form that spends more FLOPs makes the threshold cut that many elsewhere, which gives
 * back about that much time; comparing FLOPs alone ignores that per-group convs, selections and
 * concatenations run far slower per FLOP than one conv (each layer has a fixed cost, so the
 * marginal rate, not the average, is what a cut buys).
 */
export function realisationCost(candidate: CandidateTiming, plainMsPerFlop: number): number {
  return candidate.ms + plainMsPerFlop * candidate.flops;
}

/**
 * The FLOPs-targeted plan with each regrouped conv's form chosen. The planner prices the chosen
 * forms (a conv built as one pays for every pair of the union), and the threshold is bisected
 * again, so the target holds for the model as built.
 */
export async function planRealisation(
  model: tf.LayersModel,
  planner: DspPlanner,
  regrouped: string[],
  denseFlops: number,
  targetFlops: number,
  options: { mode: DspRealisation; batchSize: number; checkCancelled?: () => void },
): Promise<RealisedPlan> {
  let chosen = new Map<string, LayerRealisation>(options.mode === 'merged' ? regrouped.map((name) => [name, 'oneConv']) : []);
  planner.setRealisations(chosen);
  let result = planner.bisect(denseFlops, targetFlops);
  let timings: RealisationTiming[] = [];
  if (options.mode !== 'measured') return { ...result, timings };
  const candidates = new Set(regrouped);
  for (let round = 0; round < MAX_ROUNDS; round++) {
    timings = [];
    const next = new Map<string, LayerRealisation>();
    const measured: { timing: Omit<RealisationTiming, 'plainMsPerFlop' | 'best'>; marginal: number }[] = [];
    for (const plan of result.plans) {
      options.checkCancelled?.();
      if (!candidates.has(plan.layer) || liveGroups(plan).length < 2) {
        if (chosen.has(plan.layer)) next.set(plan.layer, chosen.get(plan.layer)!);
        continue;
      }
      measured.push(await timeRealisations(model, plan, planner.inputWidth(plan.layer, result.plans), options.batchSize));
    }
    // One price for the whole model: the cut lands elsewhere, and a median is steady against a noisy probe.
    const marginals = measured.map((m) => m.marginal).sort((a, b) => a - b);
    const plainMsPerFlop = marginals.length ? marginals[marginals.length >> 1] : 0;
    for (const { timing } of measured) {
      const best = timing.candidates.reduce((a, b) => (realisationCost(b, plainMsPerFlop) < realisationCost(a, plainMsPerFlop) ? b : a)).realisation;
      timings.push({ ...timing, plainMsPerFlop, best });
      if (best !== 'perGroup') next.set(timing.layer, best);
    }
    const same = next.size === chosen.size && [...next].every(([name, r]) => chosen.get(name) === r);
    if (same) break;
    chosen = next;
    planner.setRealisations(chosen);
    result = planner.bisect(denseFlops, targetFlops);
  }
  return { ...meetTarget(planner, chosen, result, timings, denseFlops, targetFlops), timings };
}

/**
 * A conv built as one moves the FLOPs in coarser steps (an input goes only when every group drops
 * it), so on small nets the threshold may find no plan near the target. Then convs go back to the
 * per-group form, the smallest measured gain first, until the target holds; the per-group plans
 * meet it as before. The nearest plan is kept if none does.
 */
function meetTarget(planner: DspPlanner, chosen: Map<string, LayerRealisation>, result: Omit<RealisedPlan, 'timings'>, timings: RealisationTiming[],
  denseFlops: number, targetFlops: number): Omit<RealisedPlan, 'timings'> {
  const miss = (r: { flops: number }) => Math.abs(r.flops - targetFlops);
  if (miss(result) <= TARGET_TOLERANCE * targetFlops) return result;
  const gain = (t: RealisationTiming) => {
    const cost = (r: LayerRealisation) => realisationCost(t.candidates.find((c) => c.realisation === r)!, t.plainMsPerFlop);
    return cost('perGroup') - cost(t.best);
  };
  const timed = new Map(timings.map((t) => [t.layer, t]));
  const order = [...chosen.keys()].sort((a, b) => (timed.has(a) ? gain(timed.get(a)!) : -Infinity) - (timed.has(b) ? gain(timed.get(b)!) : -Infinity));
  const remaining = new Map(chosen);
  let best = { result, chosen: new Map(chosen) };
  for (const name of order) {
    remaining.delete(name);
    planner.setRealisations(remaining);
    const next = planner.bisect(denseFlops, targetFlops);
    if (miss(next) < miss(best.result)) best = { result: next, chosen: new Map(remaining) };
    if (miss(next) <= TARGET_TOLERANCE * targetFlops) break;
  }
  planner.setRealisations(best.chosen);
  return best.result;
}

/**
 * A plan's forms timed alone, alternately, the faster median of two rounds each: per group, as one
 * conv, as one conv reading every input (only when the one conv would select its inputs), and the
 * plain convs that price a FLOP.
 */
async function timeRealisations(model: tf.LayersModel, plan: GroupedConvPlan, width: number, batchSize: number)
  : Promise<{ timing: Omit<RealisationTiming, 'plainMsPerFlop' | 'best'>; marginal: number }> {
  const forms: LayerRealisation[] = ['perGroup', 'oneConv', 'oneConvAllInputs'];
  const probes = await Promise.all(forms.map((r) => buildRealisationProbe(model, withRealisation(plan, r), width)));
  // Plain convs over every input and over the first half, read with zero rows: the marginal rate.
  const plain = (inputs: number): GroupedConvPlan => ({
    layer: plan.layer, groupOfFilter: plan.groupOfFilter.map((g) => (g >= 0 ? 0 : -1)), inputsOfGroup: [Array.from({ length: inputs }, (_, c) => c)],
    packedOutput: true, realisedAsOne: true,
  });
  const half = Math.max(1, Math.floor(width / 2));
  probes.push(await buildRealisationProbe(model, plain(width), width));
  probes.push(await buildRealisationProbe(model, plain(half), half));
  // Reading every input differs from the one conv only when that selects its inputs.
  const timed = probes[1].layers.some((l) => l.name.endsWith('_select')) ? [0, 1, 2, 3] : [0, 1, 3];
  const batch = Math.max(1, Math.floor(batchSize));
  const input = tf.randomNormal([batch, ...(probes[0].inputs[0].shape.slice(1) as number[])], 0, 1, 'float32', 5);
  const halfInput = tf.randomNormal([batch, ...(probes[4].inputs[0].shape.slice(1) as number[])], 0, 1, 'float32', 6);
  try {
    const ms = new Array<number>(probes.length).fill(Infinity);
    for (let round = 0; round < 2; round++) {
      for (const i of [...timed, 4]) {
        const x = i === 4 ? halfInput : input;
        ms[i] = Math.min(ms[i], (await timeForward(() => probes[i].predict(x) as tf.Tensor, 1, PROBE_RUNS)).medianMs);
      }
    }
    const flops = probes.map((p) => countCost(p).flops);
    const marginal = flops[3] > flops[4] ? Math.max(0, (ms[3] - ms[4]) / (flops[3] - flops[4])) : ms[3] / flops[3];
    const candidates = timed.filter((i) => i < 3).map((i) => ({ realisation: forms[i], ms: ms[i], flops: flops[i] }));
    return { timing: { layer: plan.layer, candidates }, marginal };
  } finally {
    input.dispose();
    halfInput.dispose();
    for (const probe of probes) probe.dispose();
  }
}

const FORM_NAMES: Record<LayerRealisation, string> = {
  perGroup: 'per-group convs',
  oneConv: 'one conv over the union of the groups\' inputs',
  oneConvAllInputs: 'one conv reading every input',
};

/**
 * "conv2: built as one conv over the union of the groups' inputs (4 groups); timed alone on wasm,
 * batch 32: per-group convs 8.1 ms for 0.71 MFLOPs, one conv … 0.9 ms for 1.0 MFLOPs; a plain conv 0.55 ms per MFLOP".
 */
export function describeTiming(timing: RealisationTiming, plan: GroupedConvPlan, where: string): string {
  const built: LayerRealisation = plan.realisedAsOne ? (plan.readsAllInputs ? 'oneConvAllInputs' : 'oneConv') : 'perGroup';
  const forms = timing.candidates.map((c) => `${FORM_NAMES[c.realisation]} ${c.ms.toPrecision(2)} ms for ${(c.flops / 1e6).toPrecision(2)} MFLOPs`).join(', ');
  const why = built === timing.best ? '' : ` (${FORM_NAMES[timing.best]} cost less, but the FLOPs target needed this form)`;
  return `${timing.layer}: built as ${FORM_NAMES[built]} (${liveGroups(plan).length} groups)${why}; ${where}: ${forms}; a FLOP cut elsewhere gives back ${(timing.plainMsPerFlop * 1e6).toPrecision(2)} ms per MFLOP`;
}
