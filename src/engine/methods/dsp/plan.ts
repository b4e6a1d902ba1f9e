/**
 * DSP pruning plans (algorithms.md §4.5): which input channels each learned filter group
 * keeps, which filters go, and the bisection on the global cumulative-share threshold β
 * that meets a FLOPs target.
 */

import type { ChannelReader } from './topology.js';

/** How one conv layer is rebuilt as per-group convolutions. */
export interface GroupedConvPlan {
  layer: string;
  /** Group of each filter; -1 when the filter is removed (its output becomes an exact zero channel). */
  groupOfFilter: number[];
  /** Input channels each group reads, ascending. Empty for groups without filters. */
  inputsOfGroup: number[][];
  /**
   * Emit only the kept filters, group after group, and reindex the layer reading them (and the
   * batch norms between) instead of restoring the original channel order. Otherwise a 1×1
   * scatter convolution puts every filter back at its index, removed ones as zeros.
   */
  packedOutput?: boolean;
  /**
   * FLOPs a layer's fixed dispatch cost is worth: a 1×1 selection conv is only built when it
   * saves more than this, and groups are merged when that costs fewer FLOPs than the layers it saves.
   */
  layerCostFlops?: number;
  /**
   * Build the layer as one conv over the union of its live groups' inputs instead of one conv per
   * group: the kernel slices a group dropped stay in it as zeros (exact), every filter of the union
   * is paid for, and no selection convs or concatenation are needed. The session picks this by
   * measured time (`methods/dsp/realise.ts`); the planner prices it like any other realisation.
   */
  realisedAsOne?: boolean;
  /** Read every physical input with zero kernel rows, never through a 1×1 selection conv. */
  readsAllInputs?: boolean;
}

/**
 * How one regrouped conv is built: one conv per learned group (`perGroup`, 1×1 selections and a
 * concatenation as `realiseGroups` decides), one conv over the union of the groups' inputs
 * (`oneConv`, a selection conv in front when that saves FLOPs), or one conv reading every input
 * (`oneConvAllInputs`). What DSP learned and masks is the same in all three.
 */
export type LayerRealisation = 'perGroup' | 'oneConv' | 'oneConvAllInputs';

/** The plan flags that build `realisation`. */
export function withRealisation(plan: GroupedConvPlan, realisation: LayerRealisation): GroupedConvPlan {
  return { ...plan, realisedAsOne: realisation !== 'perGroup', readsAllInputs: realisation === 'oneConvAllInputs' };
}

/** One live group as built: its filters, its inputs, and whether a 1×1 selection conv gathers them. */
export interface GroupRealisation {
  group: number;
  filters: number[];
  inputs: number[];
  /**
   * Gather the inputs with a 1×1 selection conv (width·|inputs| multiply-adds per input
   * position) when that costs less than letting the group conv read all `width` inputs with
   * zero kernel rows; slicing channels is a copy loop on wasm and far slower than either.
   */
  selection: boolean;
}

/**
 * The groups of a plan as built, for a conv reading `width` physical input channels.
 * `pairFlops` is the conv's cost per (filter, input), `selectionPairFlops` a 1×1 conv's cost
 * per (input, output) at the conv's input resolution.
 */
export function realiseGroups(plan: GroupedConvPlan, width: number, pairFlops: number, selectionPairFlops: number): GroupRealisation[] {
  if (plan.realisedAsOne) return [realiseAsOne(plan, width, pairFlops, selectionPairFlops)];
  const groups: GroupRealisation[] = [];
  plan.inputsOfGroup.forEach((inputs, group) => {
    const filters = plan.groupOfFilter.flatMap((g, j) => (g === group ? [j] : []));
    if (!filters.length) return;
    const full = filters.length * width * pairFlops;
    const selected = inputs.length * width * selectionPairFlops + filters.length * inputs.length * pairFlops;
    groups.push({ group, filters, inputs, selection: !plan.readsAllInputs && inputs.length < width && selected + (plan.layerCostFlops ?? 0) < full });
  });
  return groups;
}

/**
 * The one conv of a plan realised as one: the union of the live groups' inputs, and its filters in
 * ascending order: the live ones when the output is packed, otherwise every filter (a removed one
 * has a zero kernel and bias, so it gives what the masked layer gives, and no scatter is needed).
 */
function realiseAsOne(plan: GroupedConvPlan, width: number, pairFlops: number, selectionPairFlops: number): GroupRealisation {
  const live = liveGroups(plan);
  const union = new Set<number>();
  for (const g of live) for (const c of plan.inputsOfGroup[g]) union.add(c);
  const inputs = [...union].sort((a, b) => a - b);
  const filters = plan.groupOfFilter.flatMap((g, j) => (g >= 0 || !plan.packedOutput ? [j] : []));
  const full = filters.length * width * pairFlops;
  const selected = inputs.length * width * selectionPairFlops + filters.length * inputs.length * pairFlops;
  return { group: live[0] ?? 0, filters, inputs, selection: !plan.readsAllInputs && inputs.length < width && selected + (plan.layerCostFlops ?? 0) < full };
}

/** Groups with kept filters, ascending. */
export function liveGroups(plan: GroupedConvPlan): number[] {
  return [...new Set(plan.groupOfFilter.filter((g) => g >= 0))].sort((a, b) => a - b);
}

/** FLOPs of the realised groups. */
export function realisedGroupFlops(groups: GroupRealisation[], width: number, pairFlops: number, selectionPairFlops: number): number {
  return groups.reduce((sum, g) => sum + (g.selection
    ? g.inputs.length * width * selectionPairFlops + g.filters.length * g.inputs.length * pairFlops
    : g.filters.length * width * pairFlops), 0);
}

/** Original filter index of each output channel in packed order (live groups in turn, filters ascending). */
export function packedOrder(plan: GroupedConvPlan): number[] {
  if (plan.realisedAsOne) return plan.groupOfFilter.flatMap((g, j) => (g >= 0 ? [j] : []));
  const order: number[] = [];
  plan.inputsOfGroup.forEach((_, group) => plan.groupOfFilter.forEach((g, j) => {
    if (g === group) order.push(j);
  }));
  return order;
}

/** Whether the concatenated group outputs already are the original filters in order. */
export function keepsFilterOrder(plan: GroupedConvPlan): boolean {
  const order = packedOrder(plan);
  return order.length === plan.groupOfFilter.length && order.every((j, i) => j === i);
}

/** Whether a 1×1 scatter conv must put the built filters back at their original indices. */
export function needsScatter(plan: GroupedConvPlan): boolean {
  return !plan.realisedAsOne && !plan.packedOutput && !keepsFilterOrder(plan);
}

/** What the planner knows about one conv layer. */
export interface PlanLayer {
  name: string;
  inChannels: number;
  filters: number;
  /** 2 · kh · kw · Hout · Wout: FLOPs of one (filter, input channel) pair. */
  pairFlops: number;
  /** Kernel energy Σ_{kh,kw} W² per (input c, filter j), at c · filters + j. */
  energy: Float64Array;
  /** Learned hard group of each filter; undefined for layers DSP does not regroup (they only lose dead filters). */
  groupOf?: number[];
  groups: number;
  /** Whether whole filters may be pruned by energy (DSP's "fp" layers: outputs added into a residual stream). */
  filterPruning: boolean;
  /** Layer whose output channels are this layer's input channels and reach nothing else. */
  privateProducer?: string;
  /** 2 · Hin · Win: FLOPs of one (input, output) pair of a 1×1 selection conv on this layer's input. */
  selectionPairFlops: number;
  /** 2 · Hout · Wout: FLOPs of one (input, output) pair of a 1×1 conv on this layer's output. */
  scatterPairFlops: number;
  /** The layer reading this conv's channels, when it can be reindexed. */
  reader?: ChannelReader;
  /**
   * FLOPs per channel of the depthwise convs between this conv and its reader: they lose the
   * channels the conv stops emitting when its output is packed.
   */
  depthwiseChannelFlops?: number;
}

/** Cumulative share of the ascending-sorted, normalised values; `order[i]` is the index with share `cumulative[i]`. */
export function cumulativeShares(values: ArrayLike<number>): { order: number[]; cumulative: number[] } {
  const order = Array.from({ length: values.length }, (_, i) => i).sort((a, b) => values[a] - values[b] || a - b);
  const total = order.reduce((sum, i) => sum + values[i], 0);
  const cumulative: number[] = [];
  let running = 0;
  for (const i of order) {
    running += values[i];
    cumulative.push(total > 0 ? running / total : 0);
  }
  return { order, cumulative };
}

/**
 * Indices dropped by the cumulative-share rule: the longest ascending prefix whose share is
 * below β, never all of them (the official code drops everything when nothing is below β).
 */
export function droppedByShare(shares: { order: number[]; cumulative: number[] }, beta: number): number[] {
  let count = 0;
  while (count < shares.order.length - 1 && shares.cumulative[count] < beta) count++;
  return shares.order.slice(0, count);
}

interface PreparedLayer {
  layer: PlanLayer;
  groupShares: { order: number[]; cumulative: number[] }[];
  filterShares?: { order: number[]; cumulative: number[] };
}

/** The per-layer rankings a plan at any β is read from. */
export class DspPlanner {
  private readonly prepared: PreparedLayer[];
  private readonly byName: Map<string, PreparedLayer>;

  /** FLOPs one extra layer is worth (see `layerCostFlops`). */
  private readonly layerCostFlops: number;

  /** How each layer is built; absent ones per group. */
  private realisations: ReadonlyMap<string, LayerRealisation> = new Map();

  constructor(layers: PlanLayer[], options: { layerCostFlops?: number } = {}) {
    this.layerCostFlops = options.layerCostFlops ?? 0;
    this.prepared = layers.map((layer) => {
      const groupShares: PreparedLayer['groupShares'] = [];
      if (layer.groupOf) {
        for (let g = 0; g < layer.groups; g++) {
          const importance = new Float64Array(layer.inChannels);
          layer.groupOf.forEach((group, j) => {
            if (group !== g) return;
            for (let c = 0; c < layer.inChannels; c++) importance[c] += layer.energy[c * layer.filters + j];
          });
          groupShares.push(cumulativeShares(importance));
        }
      }
      let filterShares: PreparedLayer['filterShares'];
      if (layer.filterPruning) {
        const filterEnergy = new Float64Array(layer.filters);
        for (let c = 0; c < layer.inChannels; c++) for (let j = 0; j < layer.filters; j++) filterEnergy[j] += layer.energy[c * layer.filters + j];
        filterShares = cumulativeShares(filterEnergy);
      }
      return { layer, groupShares, filterShares };
    });
    this.byName = new Map(this.prepared.map((p) => [p.layer.name, p]));
  }

  /** Builds the layers as given from now on (the others per group); plans and their FLOPs follow. */
  setRealisations(realisations: ReadonlyMap<string, LayerRealisation>): void {
    this.realisations = new Map(realisations);
  }

  /** Every β at which some plan changes, ascending, starting with one that drops nothing. */
  breakpoints(): number[] {
    const values = new Set<number>([0]);
    for (const p of this.prepared) {
      for (const s of p.groupShares) s.cumulative.forEach((v) => values.add(v));
      p.filterShares?.cumulative.forEach((v) => values.add(v));
    }
    const sorted = [...values].sort((a, b) => a - b);
    sorted.push(sorted[sorted.length - 1] + 1e-9);
    return sorted;
  }

  /**
   * Plans at threshold β, with dead structure removed: a filter whose output channel no
   * group of its private consumer reads is dropped, repeatedly, until nothing changes.
   * Layers whose plan equals the dense layer are left out.
   */
  plan(beta: number, layerCostFlops = this.layerCostFlops): GroupedConvPlan[] {
    const plans = new Map<string, GroupedConvPlan>();
    for (const { layer, groupShares, filterShares } of this.prepared) {
      const groupOfFilter = layer.groupOf ? [...layer.groupOf] : new Array<number>(layer.filters).fill(0);
      const groups = layer.groupOf ? layer.groups : 1;
      if (filterShares) for (const j of droppedByShare(filterShares, beta)) groupOfFilter[j] = -1;
      const inputsOfGroup: number[][] = [];
      for (let g = 0; g < groups; g++) {
        const dropped = new Set(layer.groupOf ? droppedByShare(groupShares[g], beta) : []);
        inputsOfGroup.push(Array.from({ length: layer.inChannels }, (_, c) => c).filter((c) => !dropped.has(c)));
      }
      const plan: GroupedConvPlan = { layer: layer.name, groupOfFilter, inputsOfGroup, layerCostFlops };
      const realisation = this.realisations.get(layer.name) ?? 'perGroup';
      if (realisation !== 'perGroup') Object.assign(plan, withRealisation(plan, realisation));
      else if (groups > 1) mergeGroups(plan, layer, layerCostFlops);
      plans.set(layer.name, plan);
    }
    this.removeDeadFilters(plans);
    this.packOutputs(plans);
    for (const [name, plan] of [...plans]) {
      if (isDense(plan, this.byName.get(name)!.layer)) plans.delete(name);
    }
    return [...plans.values()];
  }

  private removeDeadFilters(plans: Map<string, GroupedConvPlan>): void {
    for (let changed = true; changed; ) {
      changed = false;
      for (const { layer } of this.prepared) {
        if (!layer.privateProducer) continue;
        const producer = plans.get(layer.privateProducer);
        if (!producer) continue;
        const read = readChannels(plans.get(layer.name)!, layer.inChannels);
        producer.groupOfFilter.forEach((g, j) => {
          if (g >= 0 && !read[j]) {
            producer.groupOfFilter[j] = -1;
            changed = true;
          }
        });
        // Never leave a producer with no filters: its consumer must still read something.
        if (producer.groupOfFilter.every((g) => g < 0)) throw new Error(`plan removed every filter of ${producer.layer}`);
      }
    }
  }

  /**
   * Lets a conv emit its channels in packed order where the reader can be reindexed. With
   * removed filters that needs a regrouped reader whose groups stop reading those channels:
   * at once when no live group reads them (dead filters), otherwise only when the reader gets
   * exact zeros there, and never when a group would be left with no input.
   */
  private packOutputs(plans: Map<string, GroupedConvPlan>): void {
    for (const { layer } of this.prepared) {
      const plan = plans.get(layer.name)!;
      const reader = layer.reader;
      if (!reader) continue;
      if (plan.groupOfFilter.every((g) => g >= 0)) {
        plan.packedOutput = true;
        continue;
      }
      const consumer = reader.kind === 'conv' ? plans.get(reader.layer) : undefined;
      if (!consumer) continue;
      const trimmed = consumer.inputsOfGroup.map((inputs) => inputs.filter((c) => plan.groupOfFilter[c] >= 0));
      const live = (g: number) => consumer.groupOfFilter.includes(g);
      const readsRemoved = trimmed.some((inputs, g) => live(g) && inputs.length < consumer.inputsOfGroup[g].length);
      if (readsRemoved && !reader.zeroPreserving) continue;
      if (consumer.groupOfFilter.some((g) => g >= 0 && trimmed[g].length === 0)) continue;
      consumer.inputsOfGroup = trimmed;
      plan.packedOutput = true;
    }
  }

  /** Physical input channels of a layer: its producer's kept filters when that emits them packed. */
  inputWidth(name: string, plans: GroupedConvPlan[]): number {
    for (const plan of plans) {
      const reader = this.byName.get(plan.layer)?.layer.reader;
      if (plan.packedOutput && reader?.kind === 'conv' && reader.layer === name) return packedOrder(plan).length;
    }
    return this.byName.get(name)!.layer.inChannels;
  }

  /** FLOPs of a layer, and of the depthwise convs it feeds, as built under the plans (dense FLOPs when they leave it out). */
  layerFlops(name: string, plans: GroupedConvPlan[] = []): number {
    const layer = this.byName.get(name)!.layer;
    const plan = plans.find((p) => p.layer === name);
    const depthwiseChannelFlops = layer.depthwiseChannelFlops ?? 0;
    if (!plan) return (layer.pairFlops * layer.inChannels + depthwiseChannelFlops) * layer.filters;
    const width = this.inputWidth(name, plans);
    const groups = realiseGroups(plan, width, layer.pairFlops, layer.selectionPairFlops);
    let flops = realisedGroupFlops(groups, width, layer.pairFlops, layer.selectionPairFlops);
    if (needsScatter(plan)) flops += packedOrder(plan).length * layer.filters * layer.scatterPairFlops;
    flops += depthwiseChannelFlops * (plan.packedOutput ? packedOrder(plan).length : layer.filters);
    return flops;
  }

  /** FLOPs the plans save against the dense layers. */
  savedFlops(plans: GroupedConvPlan[]): number {
    return plans.reduce((sum, plan) => sum + this.layerFlops(plan.layer) - this.layerFlops(plan.layer, plans), 0);
  }

  /**
   * Bisection over the breakpoints of β for the plan whose model FLOPs (dense FLOPs minus
   * savings) is nearest to `targetFlops`. FLOPs fall as β grows, apart from jumps where groups merge.
   */
  bisect(denseFlops: number, targetFlops: number): { beta: number; plans: GroupedConvPlan[]; flops: number } {
    const merged = this.bisectWith(denseFlops, targetFlops, this.layerCostFlops);
    if (this.layerCostFlops === 0 || Math.abs(merged.flops - targetFlops) <= BISECTION_TOLERANCE * targetFlops) return merged;
    // Merged groups move FLOPs in coarser steps; meeting the target comes first.
    const separate = this.bisectWith(denseFlops, targetFlops, 0);
    return Math.abs(separate.flops - targetFlops) < Math.abs(merged.flops - targetFlops) ? separate : merged;
  }

  private bisectWith(denseFlops: number, targetFlops: number, layerCostFlops: number): { beta: number; plans: GroupedConvPlan[]; flops: number } {
    const betas = this.breakpoints();
    const flopsAt = (i: number) => denseFlops - this.savedFlops(this.plan(betas[i], layerCostFlops));
    let lo = 0;
    let hi = betas.length - 1;
    if (flopsAt(hi) >= targetFlops) lo = hi;
    // Invariant: flopsAt(lo) >= target > flopsAt(hi).
    while (hi - lo > 1) {
      const mid = (lo + hi) >> 1;
      if (flopsAt(mid) >= targetFlops) lo = mid;
      else hi = mid;
    }
    // Merging groups makes FLOPs jump back up at some β, so the bracket may straddle a jump:
    // look at the nearby breakpoints too.
    let best = lo;
    for (let i = Math.max(0, lo - BISECTION_WINDOW); i <= Math.min(betas.length - 1, hi + BISECTION_WINDOW); i++) {
      if (Math.abs(flopsAt(i) - targetFlops) < Math.abs(flopsAt(best) - targetFlops)) best = i;
    }
    const plans = this.plan(betas[best], layerCostFlops);
    return { beta: betas[best], plans, flops: denseFlops - this.savedFlops(plans) };
  }
}

/**
 * Price of one extra layer in FLOPs that suits small models served at batch 1 on wasm: each added
 * layer costs about 12 µs there, what about 150 kFLOPs of convolution take. The default price is 0
 * (every learned group is kept, as the method defines); `dsp.layerCostFlops` sets another.
 */
export const BATCH1_WASM_LAYER_COST_FLOPS = 150_000;

/** FLOPs of the plan's live groups as built at the layer's full input width, plus `layerCostFlops` per layer. */
function effectiveCost(plan: GroupedConvPlan, layer: PlanLayer, layerCostFlops: number): number {
  const groups = realiseGroups(plan, layer.inChannels, layer.pairFlops, layer.selectionPairFlops);
  const layers = groups.reduce((n, g) => n + (g.selection ? 2 : 1), groups.length > 1 ? 1 : 0);
  return realisedGroupFlops(groups, layer.inChannels, layer.pairFlops, layer.selectionPairFlops) + layers * layerCostFlops;
}

/**
 * Merges groups, greedily, while one conv reading the union of their inputs costs less than
 * the layers it saves (selection, conv and concatenation), FLOPs and per-layer cost together.
 * The merged group reads the union, so its FLOPs are counted in full.
 */
export function mergeGroups(plan: GroupedConvPlan, layer: PlanLayer, layerCostFlops: number): void {
  const merged = (a: number, b: number): GroupedConvPlan => {
    const union = new Set([...plan.inputsOfGroup[a], ...plan.inputsOfGroup[b]]);
    const inputsOfGroup = plan.inputsOfGroup.map((inputs, g) => (g === a ? [...union].sort((x, y) => x - y) : g === b ? [] : inputs));
    return { ...plan, groupOfFilter: plan.groupOfFilter.map((g) => (g === b ? a : g)), inputsOfGroup };
  };
  for (;;) {
    const live = [...new Set(plan.groupOfFilter.filter((g) => g >= 0))].sort((x, y) => x - y);
    const current = effectiveCost(plan, layer, layerCostFlops);
    let best: GroupedConvPlan | undefined;
    let bestCost = current;
    for (let i = 0; i < live.length; i++) {
      for (let k = i + 1; k < live.length; k++) {
        const candidate = merged(live[i], live[k]);
        const cost = effectiveCost(candidate, layer, layerCostFlops);
        if (cost < bestCost) {
          best = candidate;
          bestCost = cost;
        }
      }
    }
    if (!best) return;
    plan.groupOfFilter = best.groupOfFilter;
    plan.inputsOfGroup = best.inputsOfGroup;
  }
}

/** Breakpoints on either side of the bisection's bracket that are also tried. */
const BISECTION_WINDOW = 32;
/** Relative FLOPs error within which the merged plans are kept (the target rule DSP warns on). */
const BISECTION_TOLERANCE = 0.02;

/** Σ_g (kept filters of g) · (inputs of g). */
export function groupedPairs(plan: GroupedConvPlan): number {
  const sizes = new Array<number>(plan.inputsOfGroup.length).fill(0);
  for (const g of plan.groupOfFilter) if (g >= 0) sizes[g]++;
  return sizes.reduce((sum, n, g) => sum + n * plan.inputsOfGroup[g].length, 0);
}

/** Which input channels some group with kept filters reads. */
export function readChannels(plan: GroupedConvPlan, inChannels: number): boolean[] {
  const read = new Array<boolean>(inChannels).fill(false);
  const live = new Set(plan.groupOfFilter.filter((g) => g >= 0));
  plan.inputsOfGroup.forEach((inputs, g) => {
    if (live.has(g)) for (const c of inputs) read[c] = true;
  });
  return read;
}

function isDense(plan: GroupedConvPlan, layer: PlanLayer): boolean {
  return plan.groupOfFilter.every((g) => g >= 0) && groupedPairs(plan) === layer.inChannels * layer.filters;
}
