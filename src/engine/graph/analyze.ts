import type * as tf from '@tensorflow/tfjs';
import { UserError } from '../errors.js';
import { layerSpec, layerWeights, unsupportedReason, type ChannelTensor, type ChannelWiring } from '../layers/index.js';
import { layerCosts } from './layer-cost.js';
import { walkModel, type TopoNode, type TopoTensor, type Topology } from './topology.js';
import { UnionFind } from './union-find.js';
import { TableUnit } from './slice-table.js';
import type { ChannelGraph, ChannelGroup, ChannelUnit, LayerInfo, LayerStatus, SliceTable, WeightSlice } from './types.js';

/**
 * Channel-group analysis (DepGraph-style, by union-find over channel atoms). Every channel
 * of every tensor in the model is an atom; layers tie atoms together (pass-through layers,
 * element-wise merges, concat and flatten index maps) and attach weight slices to them
 * (producers' output filters, consumers' input slices, batch-norm vectors, depthwise channels),
 * each by the channel rule of its entry in the layer registry (engine/layers/).
 * A class of tied atoms with a producer and no blocked atom is one prunable unit.
 */

type SliceRole = WeightSlice['role'];

const ROLE_ORDER: Record<SliceRole, number> = { producer: 0, depthwise: 1, norm: 2, consumer: 3 };

interface SliceKey {
  layer: string;
  weight: string;
  axis: number;
  role: SliceRole;
}

/**
 * Scratch arrays kept from one analysis to the next (an analysis runs to its end synchronously,
 * and nothing it returns points into them): a DenseNet-121 needs several of 130,000 to 260,000
 * entries, and allocating them anew for every analysis keeps the garbage collector busy.
 */
const scratch = new Map<string, Int32Array>();

function scratchInt32(slot: string, length: number, fill?: number): Int32Array {
  let buffer = scratch.get(slot);
  if (!buffer || buffer.length < length) scratch.set(slot, (buffer = new Int32Array(Math.max(length, 1024))));
  const view = buffer.subarray(0, length);
  if (fill !== undefined) view.fill(fill);
  return view;
}

class AtomSpace {
  readonly base: number[] = [];
  readonly uf: UnionFind;
  readonly total: number;
  readonly sliceKeys: SliceKey[] = [];
  /** Parallel arrays of `sliceCount` entries: atom, slice key, index along the key's axis. */
  sliceAtom: Int32Array;
  sliceKey: Int32Array;
  sliceIndex: Int32Array;
  sliceCount = 0;
  readonly blocks: { atom: number; reason: string }[] = [];
  /** Tensors that couple the groups passing through them (channel concats). */
  readonly coupling = new Set<number>();

  constructor(tensors: TopoTensor[]) {
    let total = 0;
    for (const t of tensors) {
      this.base.push(total);
      total += t.channels;
    }
    this.total = total;
    // Most layers slice each channel of a tensor once or a few times (a batch norm four times):
    // room for two slices per atom spares most of the copies of growing the arrays.
    const capacity = Math.max(1024, 2 * total);
    this.sliceAtom = scratchInt32('sliceAtom', capacity);
    this.sliceKey = scratchInt32('sliceKey', capacity);
    this.sliceIndex = scratchInt32('sliceIndex', capacity);
    this.uf = new UnionFind(total, { parent: scratchInt32('parent', total), size: scratchInt32('size', total) });
  }

  atom(t: TopoTensor, c: number): number {
    return this.base[t.id] + c;
  }

  union(a: TopoTensor, ca: number, b: TopoTensor, cb: number): void {
    this.uf.union(this.atom(a, ca), this.atom(b, cb));
  }

  block(t: TopoTensor, reason: string): void {
    for (let c = 0; c < t.channels; c++) this.blocks.push({ atom: this.atom(t, c), reason });
  }

  /** Slice key ids by layer, then weight, then axis·4 + role: no string built per slice. */
  private readonly keysByLayer = new Map<string, Map<string, Map<number, number>>>();

  keyOf(layer: string, weight: string, axis: number, role: SliceRole): number {
    let byWeight = this.keysByLayer.get(layer);
    if (!byWeight) this.keysByLayer.set(layer, (byWeight = new Map()));
    let byAxisRole = byWeight.get(weight);
    if (!byAxisRole) byWeight.set(weight, (byAxisRole = new Map()));
    const code = axis * 4 + ROLE_ORDER[role];
    let key = byAxisRole.get(code);
    if (key === undefined) {
      key = this.sliceKeys.length;
      this.sliceKeys.push({ layer, weight, axis, role });
      byAxisRole.set(code, key);
    }
    return key;
  }

  slice(t: TopoTensor, c: number, key: number, index: number): void {
    if (this.sliceCount === this.sliceAtom.length) {
      const grow = (a: Int32Array) => {
        const b = new Int32Array(a.length * 2);
        b.set(a);
        return b;
      };
      this.sliceAtom = grow(this.sliceAtom);
      this.sliceKey = grow(this.sliceKey);
      this.sliceIndex = grow(this.sliceIndex);
    }
    const i = this.sliceCount++;
    this.sliceAtom[i] = this.atom(t, c);
    this.sliceKey[i] = key;
    this.sliceIndex[i] = index;
  }

  /** The channel-graph operations a layer's registry entry applies for one call of `layer`. */
  wiring(layer: string): ChannelWiring {
    const topo = (t: ChannelTensor) => t as TopoTensor;
    // Rules slice one weight channel after channel: the last key found is the next one's.
    let last = { weight: '', axis: -1, role: '' as SliceRole | '', key: -1 };
    return {
      tie: (a, ca, b, cb) => this.union(topo(a), ca, topo(b), cb),
      slice: (t, c, weight, axis, role, index) => {
        if (weight !== last.weight || axis !== last.axis || role !== last.role) last = { weight, axis, role, key: this.keyOf(layer, weight, axis, role) };
        this.slice(topo(t), c, last.key, index);
      },
      block: (t, reason) => this.block(topo(t), reason),
      couple: (t) => this.coupling.add(topo(t).id),
    };
  }
}

function isChannelsFirst(config: Record<string, unknown>): boolean {
  return config.dataFormat === 'channelsFirst';
}

/** Applies one node's channel rule (the registry entry of its layer class): unions, weight slices, or blocks. */
function applyNodeRule(space: AtomSpace, node: TopoNode): void {
  const spec = layerSpec(node.className);
  const config = node.layer.getConfig() as Record<string, unknown>;
  const [input] = node.inputs;
  const [output] = node.outputs;
  const wiring = space.wiring(node.name);
  const call = { name: node.name, className: node.className, inputs: node.inputs, outputs: node.outputs, config, weights: layerWeights(node.layer) };
  const blockAll = (reason: string) => {
    for (const t of node.inputs) space.block(t, reason);
    for (const t of node.outputs) space.block(t, reason);
  };

  if (spec?.role === 'input') return spec.wire(call, wiring);
  if (!input || !output || node.outputs.length !== 1 || output.channels === 0 || node.inputs.some((t) => t.channels === 0)) {
    return blockAll(unsupportedReason(node.name, node.className));
  }
  if (isChannelsFirst(config)) return blockAll(`${node.name} (${node.className}) uses channels-first data, which is not supported`);
  if (!spec) return blockAll(unsupportedReason(node.name, node.className));
  spec.wire(call, wiring);
}

export function analyzeModel(model: tf.LayersModel, options: { exclude?: string[] } = {}): ChannelGraph {
  const topo = walkModel(model);
  const space = new AtomSpace(topo.tensors);

  for (const node of topo.nodes) applyNodeRule(space, node);
  // Layers reused at several call sites share weights: tie their call sites channel by channel.
  for (const [, nodes] of topo.nodesByLayer) {
    if (nodes.length < 2 || nodes[0].layer.weights.length === 0) continue;
    for (const n of nodes.slice(1)) {
      [...n.inputs, ...n.outputs].forEach((t, i) => {
        const first = [...nodes[0].inputs, ...nodes[0].outputs][i];
        if (first && first.channels === t.channels) for (let c = 0; c < t.channels; c++) space.union(first, c, t, c);
      });
    }
  }
  for (const t of topo.inputs) space.block(t, 'model input');
  for (const name of options.exclude ?? []) {
    const nodes = topo.nodesByLayer.get(name);
    if (!nodes) {
      throw new UserError(`layer "${name}" is not in the model`, { field: 'exclude', fix: 'Use layer names as listed by `prunelens analyze`' });
    }
    for (const n of nodes) for (const t of n.outputs) space.block(t, 'excluded in config');
  }
  for (const t of topo.outputs) space.block(t, 'model outputs are never narrowed');

  const { uf } = space;
  const blockedReason = new Map<number, string>();
  for (const b of space.blocks) {
    const r = uf.find(b.atom);
    if (!blockedReason.has(r)) blockedReason.set(r, b.reason);
  }
  // Per root: 1 when a producer slices it, 2 when blocked.
  const PRODUCER = 1;
  const BLOCKED = 2;
  const flags = new Uint8Array(space.total);
  const producerKey = new Uint8Array(space.sliceKeys.length);
  space.sliceKeys.forEach((k, i) => (producerKey[i] = k.role === 'producer' ? 1 : 0));
  for (let i = 0; i < space.sliceCount; i++) {
    if (producerKey[space.sliceKey[i]]) flags[uf.find(space.sliceAtom[i])] |= PRODUCER;
  }
  for (const r of blockedReason.keys()) flags[r] |= BLOCKED;
  // Each atom's root, in place of the union-find's parents (no union follows).
  const rootOfAtom = uf.roots();

  // Each unit class (a root with a producer and no block): the tensors it spans and its first atom
  // (lowest channel of its earliest tensor). Atoms run tensor by tensor, so a class's tensors come in order.
  // `unitOfRoot` holds each class's index here, its unit's id once the groups are known (-1: no unit).
  const unitOfRoot = scratchInt32('unitOfRoot', space.total, -1);
  const classRoots: number[] = [];
  const classFirstAtom: number[] = [];
  const classTensors: number[][] = [];
  for (const tensor of topo.tensors) {
    const t = tensor.id;
    for (let a = space.base[t], end = a + tensor.channels; a < end; a++) {
      const r = rootOfAtom[a];
      if (flags[r] !== PRODUCER) continue;
      const c = unitOfRoot[r];
      if (c < 0) {
        unitOfRoot[r] = classRoots.length;
        classRoots.push(r);
        classFirstAtom.push(a);
        classTensors.push([t]);
      } else {
        const tensors = classTensors[c];
        if (tensors[tensors.length - 1] !== t) tensors.push(t);
      }
    }
  }

  // Groups: unit classes that span the same set of tensors (candidates found by their first tensor, then compared).
  const byFirstTensor = new Map<number, { tensors: number[]; classes: number[] }[]>();
  const sameTensors = (a: number[], b: number[]) => a.length === b.length && a.every((t, i) => t === b[i]);
  for (let c = 0; c < classRoots.length; c++) {
    const tensors = classTensors[c];
    let candidates = byFirstTensor.get(tensors[0]);
    if (!candidates) byFirstTensor.set(tensors[0], (candidates = []));
    const match = candidates.find((k) => sameTensors(k.tensors, tensors));
    if (match) match.classes.push(c); else candidates.push({ tensors, classes: [c] });
  }
  // Classes are numbered by first atom already: a group's classes are in order, groups sort by their first.
  const groupClasses = [...byFirstTensor.values()].flatMap((candidates) => candidates.map((k) => k.classes))
    .sort((a, b) => classFirstAtom[a[0]] - classFirstAtom[b[0]]);

  const groups: ChannelGroup[] = [];
  const units: ChannelUnit[] = [];
  const concatTensors = space.coupling;
  const table: SliceTable = { keys: [], span: 1, offsets: new Int32Array(0), entries: new Int32Array(0) };
  for (const classes of groupClasses) {
    const groupId = groups.length;
    const ids: number[] = [];
    classes.forEach((c, index) => {
      unitOfRoot[classRoots[c]] = units.length;
      ids.push(units.length);
      units.push(new TableUnit(units.length, groupId, index, table));
    });
    const spans = classTensors[classes[0]];
    groups.push({ id: groupId, members: [], producers: [], consumers: [], channels: classes.length, units: ids, coupled: spans.some((t) => concatTensors.has(t)) });
  }
  const layerOrder = new Map<string, number>();
  topo.nodes.forEach((n, i) => { if (!layerOrder.has(n.name)) layerOrder.set(n.name, i); });
  fillSliceTable(table, space, layerOrder, units.length, rootOfAtom, unitOfRoot);

  // Members from the keys of each group's first unit (every unit of a group has the same keys).
  for (const group of groups) {
    const producers = new Set<string>();
    const consumers = new Set<string>();
    const others = new Set<string>();
    const first = group.units[0];
    let lastRank = -1;
    for (let j = table.offsets[first]; j < table.offsets[first + 1]; j++) {
      const rank = Math.floor(table.entries[j] / table.span);
      if (rank === lastRank) continue;
      lastRank = rank;
      const k = table.keys[rank];
      if (k.role === 'producer') producers.add(k.layer);
      else if (k.role === 'consumer') consumers.add(k.layer);
      else others.add(k.layer);
    }
    group.producers = [...producers];
    group.consumers = [...consumers];
    const rest = [...new Set([...others, ...consumers])].filter((l) => !producers.has(l)).sort((a, b) => layerOrder.get(a)! - layerOrder.get(b)!);
    group.members = [...group.producers, ...rest];
    if (producers.size > 1) group.coupled = true;
  }

  const layers = describeLayers(model, topo, space, rootOfAtom, blockedReason, unitOfRoot, units, groups);
  return { layers, groups, units, sliceTable: table };
}

/**
 * Fills `table` with every unit's slice entries, sorted by key rank (role, then layer order, then
 * key) and index, without duplicates: counting sorts by rank, then by unit, both stable, so only
 * a unit whose entries for one key came out of index order is sorted again.
 */
function fillSliceTable(table: SliceTable, space: AtomSpace, layerOrder: ReadonlyMap<string, number>, unitCount: number, rootOfAtom: Int32Array, unitOfRoot: Int32Array): void {
  const keyCount = space.sliceKeys.length;
  const keyRank = new Int32Array(keyCount);
  const byRank = space.sliceKeys
    .map((k, id) => ({ id, role: ROLE_ORDER[k.role], layer: layerOrder.get(k.layer)! }))
    .sort((a, b) => a.role - b.role || a.layer - b.layer || a.id - b.id);
  byRank.forEach((k, rank) => (keyRank[k.id] = rank));
  table.keys = byRank.map((k) => space.sliceKeys[k.id]);

  // The slices that belong to a unit, by rank (stable: creation order within a rank).
  const { sliceCount: n, sliceAtom, sliceKey, sliceIndex } = space;
  const rankStart = new Int32Array(keyCount + 1);
  const unitStart = new Int32Array(unitCount + 1);
  let span = 1;
  for (let i = 0; i < n; i++) {
    const u = unitOfRoot[rootOfAtom[sliceAtom[i]]];
    if (u < 0) continue;
    if (sliceIndex[i] >= span) span = sliceIndex[i] + 1;
    rankStart[keyRank[sliceKey[i]] + 1]++;
    unitStart[u + 1]++;
  }
  table.span = span;
  for (let r = 0; r < keyCount; r++) rankStart[r + 1] += rankStart[r];
  for (let u = 0; u < unitCount; u++) unitStart[u + 1] += unitStart[u];
  const total = unitStart[unitCount];
  const inRankOrder = scratchInt32('inRankOrder', total);
  for (let i = 0; i < n; i++) if (unitOfRoot[rootOfAtom[sliceAtom[i]]] >= 0) inRankOrder[rankStart[keyRank[sliceKey[i]]]++] = i;
  // Small integers sort in place without boxing (a Float64Array's sort boxes every element).
  let entries: Int32Array | Float64Array = keyCount * span < 2 ** 31 ? new Int32Array(total) : new Float64Array(total);
  const fill = unitStart.slice(0, unitCount);
  for (let j = 0; j < total; j++) {
    const i = inRankOrder[j];
    entries[fill[unitOfRoot[rootOfAtom[sliceAtom[i]]]]++] = keyRank[sliceKey[i]] * span + sliceIndex[i];
  }
  // Strictly ascending within each unit: sort the few that are not; drop repeated entries (a
  // shared layer's call sites slice the same index) only where there are any.
  let repeated = false;
  for (let u = 0; u < unitCount; u++) {
    const begin = unitStart[u];
    const end = unitStart[u + 1];
    let j = begin + 1;
    while (j < end && entries[j] > entries[j - 1]) j++;
    if (j >= end) continue;
    entries.subarray(begin, end).sort();
    for (j = begin + 1; j < end && !repeated; j++) repeated = entries[j] === entries[j - 1];
  }
  if (!repeated) {
    table.offsets = unitStart;
    table.entries = entries;
    return;
  }
  const offsets = new Int32Array(unitCount + 1);
  let out = 0;
  for (let u = 0; u < unitCount; u++) {
    for (let j = unitStart[u]; j < unitStart[u + 1]; j++) if (j === unitStart[u] || entries[j] !== entries[j - 1]) entries[out++] = entries[j];
    offsets[u + 1] = out;
  }
  table.offsets = offsets;
  table.entries = entries.slice(0, out);
}

function describeLayers(
  model: tf.LayersModel,
  topo: Topology,
  space: AtomSpace,
  rootOfAtom: Int32Array,
  blockedReason: Map<number, string>,
  unitOfRoot: Int32Array,
  units: ChannelUnit[],
  groups: ChannelGroup[],
): LayerInfo[] {
  const cost = layerCosts(model, topo);
  return model.layers.map((layer) => {
    const type = layer.getClassName();
    const role = layerSpec(type)?.role;
    const c = cost[layer.name];
    const base = {
      name: layer.name,
      type,
      outChannels: c.outChannels,
      inChannels: c.inChannels,
      params: c.params,
      flops: c.flops,
      ownsChannels: role === 'producer',
    };
    const node = topo.nodesByLayer.get(layer.name)?.[0];
    if (role === 'input') return { ...base, status: 'blocked' as LayerStatus, reason: 'model input' };
    const out = node?.outputs[0];
    if (!out || out.channels === 0) return { ...base, status: 'blocked' as LayerStatus, reason: unsupportedReason(layer.name, type) };
    if (layerSpec(type)?.narrowConfig) {
      (base as LayerInfo).outputUnits = Array.from({ length: out.channels }, (_, ch) => unitOfRoot[rootOfAtom[space.atom(out, ch)]]);
    }
    let firstReason: string | undefined;
    for (let ch = 0; ch < out.channels; ch++) {
      const root = rootOfAtom[space.atom(out, ch)];
      const unit = unitOfRoot[root];
      if (unit >= 0) {
        const group = groups[units[unit].group];
        return { ...base, status: (group.coupled ? 'coupled' : 'prunable') as LayerStatus, group: group.id };
      }
      firstReason ??= blockedReason.get(root);
    }
    return { ...base, status: 'blocked' as LayerStatus, reason: firstReason ?? 'no layer creates these channels' };
  });
}
