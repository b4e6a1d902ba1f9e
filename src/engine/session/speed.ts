import { formatChange, formatMs, formatPercent } from '../../protocol/format.js';
import type { LayerLatencyResult, LayerLatencyTable } from '../metrics/layer-latency.js';
import { summarizeLayerLatency, type LayerLatencySummary, type LayerTiming } from '../../protocol/events.js';

/**
 * "Why not faster": each layer's measured time before and after pruning against its FLOPs, the
 * speedup ÷ FLOPs-ratio efficiency, and a short note naming the layers whose time did not fall
 * with their FLOPs and the time of layers the method added. Pure: the timings come in as maps.
 */

export interface LayerLatencyRow {
  /** The dense model's layer, or an added layer of the pruned model. */
  name: string;
  type: string;
  /** same: present in both models by name; split: replaced by `parts` (a rebuilt layer); removed: gone; added: only in the pruned model. */
  change: 'same' | 'split' | 'removed' | 'added';
  parts?: string[];
  /** Median ms of the layer alone at its input shapes; absent where it does not exist (or was not timed). */
  msBefore?: number;
  msAfter?: number;
  flopsBefore: number;
  flopsAfter: number;
  /** msAfter / msBefore and flopsAfter / flopsBefore, when the denominators are positive. */
  timeRatio?: number;
  flopsRatio?: number;
}

export interface SpeedExplanation {
  /** Whole-model speedup ÷ (FLOPs before / FLOPs after): 1 when time fell in proportion to FLOPs. */
  efficiency: number;
  speedup: number;
  flopsRatio: number;
  layers: LayerLatencyRow[];
  /** Layers whose time ratio exceeded `timeRatio` while their FLOPs ratio was below `flopsRatio`, most excess time first. */
  slowLayers: string[];
  /** Summed time of the added layers. */
  addedMs: number;
  note: string;
}

export interface LayerFacts {
  name: string;
  type: string;
  flops: number;
}

export const SLOW_LAYER_THRESHOLDS = { timeRatio: 0.9, flopsRatio: 0.7 };
/** Below this efficiency the note says "but": the model is not as fast as its FLOPs promise. */
const EFFICIENT = 0.8;
const NAMED = 3;
const MIN_NAMED_SHARE = 0.01;

export function efficiency(speedup: number, flopsBefore: number, flopsAfter: number): number {
  const flopsRatio = flopsAfter > 0 ? flopsBefore / flopsAfter : 1;
  return speedup / flopsRatio;
}

export function explainSpeed(input: {
  speedup: number;
  flopsBefore: number;
  flopsAfter: number;
  /** Every layer of each model, in model order, with its FLOPs. */
  layersBefore: readonly LayerFacts[];
  layersAfter: readonly LayerFacts[];
  /** Layer name → median ms of the layer alone. */
  timesBefore: Readonly<Record<string, number>>;
  timesAfter: Readonly<Record<string, number>>;
  /** A rebuilt layer's replacement layers in the pruned model (DSP's per-group convolutions). */
  layerParts?: Readonly<Record<string, readonly string[]>>;
  method?: string;
  /** Where the layers were timed, e.g. "TF.js wasm, batch 32". */
  timedOn?: string;
  thresholds?: { timeRatio: number; flopsRatio: number };
}): SpeedExplanation {
  const thresholds = input.thresholds ?? SLOW_LAYER_THRESHOLDS;
  const after = new Map(input.layersAfter.map((l) => [l.name, l]));
  const dense = new Set(input.layersBefore.map((l) => l.name));
  const partOf = new Set(Object.values(input.layerParts ?? {}).flat());
  const timed = (l: LayerFacts, times: Readonly<Record<string, number>>) => times[l.name] !== undefined || l.flops > 0;
  const rows: LayerLatencyRow[] = [];
  for (const l of input.layersBefore) {
    if (!timed(l, input.timesBefore)) continue;
    const same = after.get(l.name);
    const parts = (input.layerParts?.[l.name] ?? []).filter((p) => after.has(p));
    let row: LayerLatencyRow;
    if (same) {
      row = { name: l.name, type: l.type, change: 'same', msBefore: input.timesBefore[l.name], msAfter: input.timesAfter[same.name], flopsBefore: l.flops, flopsAfter: same.flops };
    } else if (parts.length > 0) {
      const partTimes = parts.map((p) => input.timesAfter[p]);
      row = {
        name: l.name, type: l.type, change: 'split', parts, msBefore: input.timesBefore[l.name],
        msAfter: partTimes.every((t) => t !== undefined) ? partTimes.reduce((s, t) => s + t, 0) : undefined,
        flopsBefore: l.flops, flopsAfter: parts.reduce((s, p) => s + after.get(p)!.flops, 0),
      };
    } else {
      row = { name: l.name, type: l.type, change: 'removed', msBefore: input.timesBefore[l.name], msAfter: 0, flopsBefore: l.flops, flopsAfter: 0 };
    }
    rows.push(withRatios(row));
  }
  const added = input.layersAfter.filter((l) => !dense.has(l.name) && !partOf.has(l.name) && timed(l, input.timesAfter));
  for (const l of added) rows.push({ name: l.name, type: l.type, change: 'added', msAfter: input.timesAfter[l.name], flopsBefore: 0, flopsAfter: l.flops });
  const addedMs = added.reduce((s, l) => s + (input.timesAfter[l.name] ?? 0), 0);

  // A layer under 1% of the dense model's layer time is within the noise of timing it alone: not named.
  const denseMs = rows.reduce((s, r) => s + (r.msBefore ?? 0), 0);
  const slow = rows
    .filter((r) => r.timeRatio !== undefined && r.flopsRatio !== undefined && r.timeRatio > thresholds.timeRatio && r.flopsRatio < thresholds.flopsRatio)
    .filter((r) => (r.msBefore ?? 0) >= MIN_NAMED_SHARE * denseMs)
    .sort((a, b) => excessMs(b) - excessMs(a));
  const flopsRatio = input.flopsAfter > 0 ? input.flopsBefore / input.flopsAfter : 1;
  const eff = efficiency(input.speedup, input.flopsBefore, input.flopsAfter);

  const head = speedHeadline(input.speedup, input.flopsBefore, input.flopsAfter);
  const reasons: string[] = [];
  if (slow.length > 0) {
    const named = slow.slice(0, NAMED).map((r) => `${r.name} ${r.timeRatio! > 1 ? 'took' : 'kept'} ${formatPercent(r.timeRatio, 0)} of its time at ${formatPercent(r.flopsRatio, 0)} of its FLOPs`);
    reasons.push(named.join(', ') + (slow.length > NAMED ? ` (${slow.length - NAMED} more such layers in the report)` : ''));
  }
  if (added.length > 0) reasons.push(`${input.method ? `${input.method}'s ` : ''}${describeAdded(added)} add ${formatMs(addedMs)}`);
  if (reasons.length === 0 && eff < EFFICIENT) {
    // No layer stands out: say where the time goes instead.
    const free = rows.filter((r) => r.flopsBefore === 0 && r.change !== 'added').reduce((s, r) => s + (r.msAfter ?? 0), 0);
    const total = rows.reduce((s, r) => s + (r.msAfter ?? 0), 0);
    reasons.push(total > 0 && free / total >= 0.25
      ? `layers without FLOPs (batch norm, activations, pooling, merges) take ${formatPercent(free / total, 0)} of the pruned model's layer time`
      : 'no single layer kept its time while losing FLOPs: the whole-model overheads (per-layer dispatch, memory traffic) did not shrink with them');
  }
  const note = `${head}${reasons.length ? `: ${reasons.join('; ')}` : ''}${input.timedOn ? ` (layers timed alone on ${input.timedOn})` : ''}.`;
  return { efficiency: eff, speedup: input.speedup, flopsRatio, layers: rows, slowLayers: slow.map((r) => r.name), addedMs, note };
}

/** "FLOPs −50.0% but 1.20× faster (efficiency 0.60)". */
export function speedHeadline(speedup: number, flopsBefore: number, flopsAfter: number): string {
  const eff = efficiency(speedup, flopsBefore, flopsAfter);
  return `FLOPs ${formatChange(flopsBefore, flopsAfter)} ${eff < EFFICIENT ? 'but' : 'and'} ${speedup.toFixed(2)}× ${speedup >= 1 ? 'faster' : 'the speed (slower)'} (efficiency ${eff.toFixed(2)})`;
}

function withRatios(row: LayerLatencyRow): LayerLatencyRow {
  const timeRatio = row.msBefore !== undefined && row.msAfter !== undefined && row.msBefore > 0 ? row.msAfter / row.msBefore : undefined;
  const flopsRatio = row.flopsBefore > 0 ? row.flopsAfter / row.flopsBefore : undefined;
  return { ...row, ...(timeRatio !== undefined ? { timeRatio } : {}), ...(flopsRatio !== undefined ? { flopsRatio } : {}) };
}

/** Time a layer kept beyond what its FLOPs ratio would predict. */
function excessMs(r: LayerLatencyRow): number {
  return (r.msAfter ?? 0) - (r.msBefore ?? 0) * (r.flopsRatio ?? 1);
}

/** "the 3 added layers (2 Conv2D: conv2_g0_select, conv2_g1_select; 1 Concatenate: conv2_dsp_cat)". */
function describeAdded(added: readonly LayerFacts[]): string {
  const byType = new Map<string, string[]>();
  for (const l of added) byType.set(l.type, [...(byType.get(l.type) ?? []), l.name]);
  const kinds = [...byType].map(([type, names]) => `${names.length} ${type}: ${names.slice(0, 2).join(', ')}${names.length > 2 ? ', …' : ''}`);
  return `${added.length} added layer${added.length === 1 ? '' : 's'} (${kinds.join('; ')})`;
}

/** The session's explanation from the two per-layer timings (or why there is none) and each model's layers and FLOPs. */
export function sessionSpeed(input: {
  speedup: number;
  before: { model: LayersOf; cost: CostOf; times: LayerLatencyResult };
  after: { model: LayersOf; cost: CostOf; times: LayerLatencyResult };
  layerParts?: Readonly<Record<string, readonly string[]>>;
  method: string;
}): { explanation: SpeedExplanation; timing: LayerLatencyTable } | { skipped: string } {
  const { before, after } = input;
  if ('skipped' in before.times) return { skipped: before.times.skipped };
  if ('skipped' in after.times) return { skipped: after.times.skipped };
  const facts = (m: LayersOf, cost: CostOf): LayerFacts[] => m.layers.map((l) => ({ name: l.name, type: l.getClassName(), flops: cost.layers[l.name]?.flops ?? 0 }));
  const ms = (t: LayerLatencyTable) => Object.fromEntries(Object.entries(t.layers).map(([name, timing]) => [name, timing.medianMs]));
  const explanation = explainSpeed({
    speedup: input.speedup,
    flopsBefore: before.cost.flops,
    flopsAfter: after.cost.flops,
    layersBefore: facts(before.model, before.cost),
    layersAfter: facts(after.model, after.cost),
    timesBefore: ms(before.times),
    timesAfter: ms(after.times),
    layerParts: input.layerParts,
    method: input.method,
    timedOn: `TF.js ${after.times.backend}, batch ${after.times.batchSize}, median of ${after.times.runs} runs`,
  });
  return { explanation, timing: after.times };
}

type LayersOf = { layers: readonly { name: string; getClassName(): string }[] };
type CostOf = { flops: number; layers: Readonly<Record<string, { flops: number }>> };

/**
 * The done event's per-layer timing, by the dense model's layer names (a rebuilt layer's time after is its
 * parts' sum, as the explanation matched them); ms to 4 significant digits. Added layers have no dense name and stay out.
 */
export function layerLatencySummary(explanation: SpeedExplanation, timing: Pick<LayerLatencyTable, 'backend' | 'batchSize'>): LayerLatencySummary {
  return summarizeLayerLatency(explanation.layers, timing.backend, timing.batchSize);
}
