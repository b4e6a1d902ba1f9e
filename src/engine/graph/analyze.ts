import type * as tf from '@tensorflow/tfjs';
import { UserError } from '../errors.js';
import { layerSpec, layerWeights, unsupportedReason, type ChannelTensor, type ChannelWiring } from '../layers/index.js';
import { layerCosts } from './layer-cost.js';
import { walkModel, type TopoNode, type TopoTensor, type Topology } from './topology.js';
import { UnionFind } from './union-find.js';
import type { ChannelGraph, ChannelGroup, ChannelUnit, LayerInfo, LayerStatus, WeightSlice } from './types.js';

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
 * Frozen one-index arrays shared by every slice of one channel (most slices): a graph holds
 * hundreds of thousands of slices, and half as many objects to allocate halves the time the
 * garbage collector spends copying them. Nothing writes to a slice's indices.
 */
const SINGLE_INDEX: (readonly number[])[] = [];

function singleIndex(i: number): number[] {
  while (SINGLE_INDEX.length <= i) SINGLE_INDEX.push(Object.freeze([SINGLE_INDEX.length]));
  return SINGLE_INDEX[i] as number[];
}

class AtomSpace {
  readonly base: number[] = [];
  readonly tensorOfAtom: Int32Array;
  readonly uf: UnionFind;
  readonly total: number;
  readonly sliceKeys: SliceKey[] = [];
  /** Parallel arrays of `sliceCount` entries: atom, slice key, index along the key's axis. */
  sliceAtom = new Int32Array(1024);
  sliceKey = new Int32Array(1024);
  sliceIndex = new Int32Array(1024);
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
    this.tensorOfAtom = new Int32Array(total);
    for (const t of tensors) this.tensorOfAtom.fill(t.id, this.base[t.id], this.base[t.id] + t.channels);
    this.uf = new UnionFind(total);
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
  const producerKey = new Uint8Array(space.sliceKeys.length);
  space.sliceKeys.forEach((k, i) => (producerKey[i] = k.role === 'producer' ? 1 : 0));
  const hasProducer = new Uint8Array(space.total);
  for (let i = 0; i < space.sliceCount; i++) {
    if (producerKey[space.sliceKey[i]]) hasProducer[uf.find(space.sliceAtom[i])] = 1;
  }
  const blocked = new Uint8Array(space.total);
  for (const r of blockedReason.keys()) blocked[r] = 1;

  // Each unit class: the tensors it spans and its first atom (lowest channel of its earliest tensor).
  const classInfo = new Map<number, { tensors: number[]; firstAtom: number }>();
  const rootOfAtom = new Int32Array(space.total);
  for (let a = 0; a < space.total; a++) {
    const r = uf.find(a);
    rootOfAtom[a] = r;
    if (!hasProducer[r] || blocked[r]) continue;
    const t = space.tensorOfAtom[a];
    const info = classInfo.get(r);
    if (!info) classInfo.set(r, { tensors: [t], firstAtom: a });
    else if (info.tensors[info.tensors.length - 1] !== t) info.tensors.push(t);
  }

  // Groups: unit classes that span the same set of tensors (candidates found by their first tensor, then compared).
  const byFirstTensor = new Map<number, { tensors: number[]; roots: number[] }[]>();
  const sameTensors = (a: number[], b: number[]) => a.length === b.length && a.every((t, i) => t === b[i]);
  for (const [root, info] of classInfo) {
    let candidates = byFirstTensor.get(info.tensors[0]);
    if (!candidates) byFirstTensor.set(info.tensors[0], (candidates = []));
    const match = candidates.find((c) => sameTensors(c.tensors, info.tensors));
    if (match) match.roots.push(root); else candidates.push({ tensors: info.tensors, roots: [root] });
  }
  const firstAtom = (root: number) => classInfo.get(root)!.firstAtom;
  const groupRoots = [...byFirstTensor.values()].flatMap((candidates) => candidates.map((c) => c.roots))
    .map((roots) => roots.sort((a, b) => firstAtom(a) - firstAtom(b)))
    .sort((a, b) => firstAtom(a[0]) - firstAtom(b[0]));

  // Slices per unit class, aggregated by (layer, weight, axis, role).
  const unitOfRoot = new Map<number, number>();
  const unitOfRootAtom = new Int32Array(space.total).fill(-1);
  const groups: ChannelGroup[] = [];
  const units: ChannelUnit[] = [];
  const concatTensors = space.coupling;
  for (const roots of groupRoots) {
    const groupId = groups.length;
    const ids: number[] = [];
    roots.forEach((root, index) => {
      unitOfRoot.set(root, units.length);
      unitOfRootAtom[root] = units.length;
      ids.push(units.length);
      units.push({ id: units.length, group: groupId, index, slices: [] });
    });
    const spans = classInfo.get(roots[0])!.tensors;
    groups.push({ id: groupId, members: [], producers: [], consumers: [], channels: roots.length, units: ids, coupled: spans.some((t) => concatTensors.has(t)) });
  }
  const layerOrder = new Map<string, number>();
  topo.nodes.forEach((n, i) => { if (!layerOrder.has(n.name)) layerOrder.set(n.name, i); });
  // A unit's slices come by role, then layer order, then key: one rank per key, sorted once.
  const keyRank = new Float64Array(space.sliceKeys.length);
  space.sliceKeys
    .map((k, id) => ({ id, role: ROLE_ORDER[k.role], layer: layerOrder.get(k.layer)! }))
    .sort((a, b) => a.role - b.role || a.layer - b.layer || a.id - b.id)
    .forEach((k, rank) => (keyRank[k.id] = rank));
  // Each unit's slice entries as rank·span + index (one number sorts by key rank, then index), bucketed by unit.
  let span = 1;
  for (let i = 0; i < space.sliceCount; i++) span = Math.max(span, space.sliceIndex[i] + 1);
  const entryUnit = new Int32Array(space.sliceCount);
  const perUnit = new Int32Array(units.length + 1);
  for (let i = 0; i < space.sliceCount; i++) {
    const u = unitOfRootAtom[rootOfAtom[space.sliceAtom[i]]];
    entryUnit[i] = u;
    if (u >= 0) perUnit[u + 1]++;
  }
  for (let u = 0; u < units.length; u++) perUnit[u + 1] += perUnit[u];
  const fill = perUnit.slice(0, units.length);
  // Small integers sort in place without boxing (a Float64Array's sort boxes every element).
  const entries = space.sliceKeys.length * span < 2 ** 31 ? new Int32Array(perUnit[units.length]) : new Float64Array(perUnit[units.length]);
  for (let i = 0; i < space.sliceCount; i++) {
    const u = entryUnit[i];
    if (u >= 0) entries[fill[u]++] = keyRank[space.sliceKey[i]] * span + space.sliceIndex[i];
  }
  const keyOfRank = new Int32Array(space.sliceKeys.length);
  keyRank.forEach((rank, id) => (keyOfRank[rank] = id));
  for (const unit of units) {
    const list = entries.subarray(perUnit[unit.id], perUnit[unit.id + 1]).sort();
    const slices: WeightSlice[] = [];
    for (let j = 0; j < list.length; ) {
      const rank = Math.floor(list[j] / span);
      const end = rank * span + span;
      let stop = j + 1;
      let distinct = 1;
      for (; stop < list.length && list[stop] < end; stop++) if (list[stop] !== list[stop - 1]) distinct++;
      let indices: number[];
      if (distinct === 1) indices = singleIndex(list[j] - rank * span);
      else {
        indices = new Array<number>(distinct);
        for (let k = j, n = 0; k < stop; k++) if (k === j || list[k] !== list[k - 1]) indices[n++] = list[k] - rank * span;
      }
      const k = space.sliceKeys[keyOfRank[rank]];
      slices.push({ layer: k.layer, weight: k.weight, axis: k.axis, role: k.role, indices });
      j = stop;
    }
    unit.slices = slices;
  }
  for (const group of groups) {
    const producers = new Set<string>();
    const consumers = new Set<string>();
    const others = new Set<string>();
    for (const s of units[group.units[0]].slices) {
      if (s.role === 'producer') producers.add(s.layer);
      else if (s.role === 'consumer') consumers.add(s.layer);
      else others.add(s.layer);
    }
    group.producers = [...producers];
    group.consumers = [...consumers];
    const rest = [...new Set([...others, ...consumers])].filter((l) => !producers.has(l)).sort((a, b) => layerOrder.get(a)! - layerOrder.get(b)!);
    group.members = [...group.producers, ...rest];
    if (producers.size > 1) group.coupled = true;
  }

  const layers = describeLayers(model, topo, space, rootOfAtom, blockedReason, unitOfRoot, units, groups);
  return { layers, groups, units };
}

function describeLayers(
  model: tf.LayersModel,
  topo: Topology,
  space: AtomSpace,
  rootOfAtom: Int32Array,
  blockedReason: Map<number, string>,
  unitOfRoot: Map<number, number>,
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
      (base as LayerInfo).outputUnits = Array.from({ length: out.channels }, (_, ch) => unitOfRoot.get(rootOfAtom[space.atom(out, ch)]) ?? -1);
    }
    let firstReason: string | undefined;
    for (let ch = 0; ch < out.channels; ch++) {
      const root = rootOfAtom[space.atom(out, ch)];
      const unit = unitOfRoot.get(root);
      if (unit !== undefined) {
        const group = groups[units[unit].group];
        return { ...base, status: (group.coupled ? 'coupled' : 'prunable') as LayerStatus, group: group.id };
      }
      firstReason ??= blockedReason.get(root);
    }
    return { ...base, status: 'blocked' as LayerStatus, reason: firstReason ?? 'no layer creates these channels' };
  });
}
