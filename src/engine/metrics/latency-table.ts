import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { join, resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import type { ChannelGraph } from '../graph/types.js';
import { walkModel, type TopoNode, type Topology } from '../graph/topology.js';
import { specOf } from '../layers/index.js';
import { writeFileAtomic } from '../io/atomic.js';
import { timeForward } from './timing.js';

/**
 * A per-layer latency table: each layer whose widths pruning changes timed alone at a grid of
 * kept fractions of those widths, on the session's backend and batch; the model's time with a
 * set of units removed is the sum of its layers' times interpolated at their kept widths.
 *
 * The grid: a producer (conv, dense) is timed at every pair of kept input and output fractions in
 * LATENCY_GRID, other layers (batch norm, activations, pooling, depthwise, merges) at each kept
 * fraction of their input, their output following it. A GEMM-based layer's time is close to
 * a + b·in + c·out + d·in·out (per-channel work plus the product), which bilinear interpolation
 * over an (in, out) grid reproduces exactly; four points per axis catch the kernels' tiling steps
 * coarsely, and cost 16 timings per producer. The grid gets a point at width 0, the first segment
 * extended (at least 0), so narrower widths than the grid's interpolate too. Timings are made
 * monotone before use: a narrower layer does not do more work, and timing noise only adds time
 * (a collection, a first call's allocations), so a reading above a wider one's is lowered to it.
 */

/** Kept fractions of a width the table times, increasing, ending at 1. */
export const LATENCY_GRID: readonly number[] = [0.25, 0.5, 0.75, 1];
export const LATENCY_TABLE_RUNS = 5;

export interface NodeLatency {
  layer: string;
  nodeIndex: number;
  className: string;
  /** Whether input and output widths vary independently (a producer); otherwise the output follows the input. */
  producer: boolean;
  /** Kept fractions of the input and output widths (0, then LATENCY_GRID's; [1] where pruning leaves that width as it is). */
  inFractions: number[];
  outFractions: number[];
  /** ms[i][j]: median ms at inFractions[i], outFractions[j], monotone in both. */
  ms: number[][];
  /** `scaled`: a narrower layer could not be built, so narrower widths scale the full-width time by the kept fraction. */
  how: 'timed' | 'scaled';
}

export interface LatencyTable {
  backend: string;
  batchSize: number;
  runs: number;
  nodes: NodeLatency[];
  /** Grid points timed now, and read from the caches (identical shapes within the model, the process or the disk). */
  timedPoints: number;
  cachedPoints: number;
  wallMs: number;
}

type Timing = { medianMs: number; p25Ms: number; p75Ms: number };

/** Within the process, by the same key as the disk cache. */
const memoryCache = new Map<string, Timing>();

export function clearLatencyTableMemoryCache(): void {
  memoryCache.clear();
}

/** The disk cache: one JSON file of timings by key, beside the config. */
export function latencyCacheDir(configPath: string): string {
  return join(resolve(configPath, '..'), '.prunelens', 'cache', 'latency');
}

function cacheFile(dir: string, backend: string, batchSize: number): string {
  return join(resolve(dir), `latency-${backend.replace(/[^A-Za-z0-9_-]/g, '_')}-b${batchSize}.json`);
}

async function readDiskCache(file: string): Promise<Record<string, Timing>> {
  try {
    const parsed = JSON.parse(await fs.readFile(file, 'utf8')) as { timings?: Record<string, Timing> };
    return parsed.timings && typeof parsed.timings === 'object' ? parsed.timings : {};
  } catch {
    return {};
  }
}

/**
 * The key of one timing: class, config less the name (widths included), input shapes, batch and
 * backend. sha256 so the file holds short keys.
 */
export function timingKey(className: string, config: Record<string, unknown>, inputShapes: readonly (readonly number[])[], batchSize: number, backend: string): string {
  const { name: _name, ...rest } = config;
  const text = `${className}\u0000${JSON.stringify(rest)}\u0000${batchSize}x[${inputShapes.map((s) => s.join('x')).join(',')}]\u0000${backend}`;
  return createHash('sha256').update(text).digest('hex').slice(0, 32);
}

/**
 * Which tensor widths each unit's removal narrows, by how much: producers of the unit lose one
 * output channel, and the loss flows through every layer that does not create its channels
 * (proportionally: a flatten loses H·W features per channel, a concat the sum of its inputs').
 */
export interface WidthModel {
  topo: Topology;
  /** Per topology tensor, its full width. */
  baseWidth: Float64Array;
  /** Per unit: tensor ids and the width each loses. */
  unitDrops: { tensors: Int32Array; drops: Float64Array }[];
  /** Whether some unit narrows the tensor. */
  varies: Uint8Array;
  /** Per node of `topo.nodes`: the tensors read for its input width (a merge's first input, else all). */
  nodeInputs: number[][];
}

const widthModels = new WeakMap<ChannelGraph, WeakMap<tf.LayersModel, WidthModel>>();

export function widthModel(model: tf.LayersModel, graph: ChannelGraph, topo: Topology = walkModel(model)): WidthModel {
  let byModel = widthModels.get(graph);
  if (!byModel) widthModels.set(graph, (byModel = new WeakMap()));
  const cached = byModel.get(model);
  if (cached) return cached;
  const baseWidth = Float64Array.from(topo.tensors, (t) => t.channels);
  const nodeInputs = topo.nodes.map((node) => (specOf(node.layer)?.role === 'merge' ? node.inputs.slice(0, 1) : node.inputs).map((t) => t.id));
  const varies = new Uint8Array(topo.tensors.length);
  // Units with the same producers narrow the same tensors: one walk per set of producers.
  const byProducers = new Map<string, { tensors: Int32Array; drops: Float64Array }>();
  const unitDrops = graph.units.map((unit) => {
    const producers = new Set<string>();
    for (const s of unit.slices) {
      if (s.role !== 'producer') continue;
      const out = specOf(layerByName(topo, s.layer))?.outputChannels;
      if (out && out.weight === s.weight) producers.add(s.layer);
    }
    const key = [...producers].sort().join('\u0000');
    let drops = byProducers.get(key);
    if (!drops) {
      drops = propagateDrop(topo, producers, nodeInputs, baseWidth);
      for (const t of drops.tensors) varies[t] = 1;
      byProducers.set(key, drops);
    }
    return drops;
  });
  const built: WidthModel = { topo, baseWidth, unitDrops, varies, nodeInputs };
  byModel.set(model, built);
  return built;
}

function layerByName(topo: Topology, name: string): tf.layers.Layer {
  const node = topo.nodesByLayer.get(name)?.[0];
  if (!node) throw new Error(`layer ${name} is not in the model's graph`);
  return node.layer;
}

function propagateDrop(topo: Topology, producers: ReadonlySet<string>, nodeInputs: number[][], baseWidth: Float64Array): { tensors: Int32Array; drops: Float64Array } {
  const drop = new Float64Array(topo.tensors.length);
  topo.nodes.forEach((node, n) => {
    const role = specOf(node.layer)?.role;
    if (role === 'producer') {
      if (producers.has(node.name)) for (const t of node.outputs) drop[t.id] = 1;
      return;
    }
    if (role === undefined || role === 'input' || role === 'blocked') return;
    let lost = 0;
    let base = 0;
    for (const t of nodeInputs[n]) {
      lost += drop[t];
      base += baseWidth[t];
    }
    if (lost === 0 || base <= 0) return;
    for (const t of node.outputs) drop[t.id] = (baseWidth[t.id] * lost) / base;
  });
  const tensors: number[] = [];
  const drops: number[] = [];
  drop.forEach((d, t) => {
    if (d > 0) {
      tensors.push(t);
      drops.push(d);
    }
  });
  return { tensors: Int32Array.from(tensors), drops: Float64Array.from(drops) };
}

/** Time of one node at kept fractions of its input and output widths: bilinear in the grid, monotone. */
export function interpolateNode(entry: Pick<NodeLatency, 'inFractions' | 'outFractions' | 'ms'>, inFraction: number, outFraction: number): number {
  const [i0, i1, ti] = bracket(entry.inFractions, inFraction);
  const [j0, j1, tj] = bracket(entry.outFractions, outFraction);
  const m = entry.ms;
  const low = m[i0][j0] + (m[i0][j1] - m[i0][j0]) * tj;
  const high = m[i1][j0] + (m[i1][j1] - m[i1][j0]) * tj;
  return Math.max(0, low + (high - low) * ti);
}

/** The grid cell around `x` (clamped to the grid) and its position within it. */
function bracket(points: readonly number[], x: number): [number, number, number] {
  if (points.length === 1) return [0, 0, 0];
  const clamped = Math.min(Math.max(x, points[0]), points[points.length - 1]);
  let k = 0;
  while (k < points.length - 2 && clamped > points[k + 1]) k++;
  return [k, k + 1, (clamped - points[k]) / (points[k + 1] - points[k])];
}

/**
 * A point at width 0 on every varying axis: the first segment extended, at least 0 (at most the
 * first reading, since the grid is monotone), so interpolation below the grid stays monotone.
 */
export function extendToZero(fractions: { in: number[]; out: number[] }, ms: readonly (readonly number[])[]): { inFractions: number[]; outFractions: number[]; ms: number[][] } {
  const extend = (f: number[], a: number, b: number) => Math.max(0, a - ((b - a) * f[0]) / (f[1] - f[0]));
  let grid = ms.map((row) => [...row]);
  let inFractions = fractions.in;
  let outFractions = fractions.out;
  if (inFractions.length > 1) {
    grid = [grid[0].map((v, j) => extend(inFractions, v, grid[1][j])), ...grid];
    inFractions = [0, ...inFractions];
  }
  if (outFractions.length > 1) {
    grid = grid.map((row) => [extend(outFractions, row[0], row[1]), ...row]);
    outFractions = [0, ...outFractions];
  }
  return { inFractions, outFractions, ms: monotoneGrid(grid) };
}

/** Each reading lowered to the smallest at wider widths in both directions (a running minimum from the full width down). */
export function monotoneGrid(ms: readonly (readonly number[])[]): number[][] {
  const out = ms.map((row) => [...row]);
  for (let i = out.length - 1; i >= 0; i--) {
    for (let j = out[i].length - 1; j >= 0; j--) {
      if (i < out.length - 1) out[i][j] = Math.min(out[i][j], out[i + 1][j]);
      if (j < out[i].length - 1) out[i][j] = Math.min(out[i][j], out[i][j + 1]);
    }
  }
  return out;
}

export interface LatencyTableOptions {
  batchSize: number;
  runs?: number;
  warmup?: number;
  /** Folder of the disk cache (`latencyCacheDir(configPath)`); none: the process cache alone. */
  cacheDir?: string;
  signal?: AbortSignal;
  topo?: Topology;
}

/**
 * Times every layer of `model` at the grid of its widths that `graph`'s units change (the full
 * width alone where none does). Identical (class, config, shapes) points are timed once and
 * cached in the process and, with `cacheDir`, on disk.
 */
export async function measureLatencyTable(model: tf.LayersModel, graph: ChannelGraph, options: LatencyTableOptions): Promise<LatencyTable> {
  const started = performance.now();
  const topo = options.topo ?? walkModel(model);
  const widths = widthModel(model, graph, topo);
  const batchSize = Math.max(1, Math.floor(options.batchSize));
  const runs = Math.max(1, Math.floor(options.runs ?? LATENCY_TABLE_RUNS));
  // Two warm-up runs: a fresh layer's first call builds its weights and the backend's kernels for the shape.
  const warmup = Math.max(0, Math.floor(options.warmup ?? 2));
  const backend = tf.getBackend();
  const file = options.cacheDir ? cacheFile(options.cacheDir, backend, batchSize) : undefined;
  const disk = file ? await readDiskCache(file) : {};
  const fresh: Record<string, Timing> = {};
  const intInputs = new Set(model.inputs.filter((t) => t.dtype === 'int32').map((t) => t.sourceLayer.name));
  let timedPoints = 0;
  let cachedPoints = 0;
  const nodes: NodeLatency[] = [];
  try {
    for (const [n, node] of topo.nodes.entries()) {
      if (options.signal?.aborted) break;
      if (node.className === 'InputLayer') continue;
      const spec = specOf(node.layer);
      const producer = spec?.role === 'producer';
      const inVaries = widths.nodeInputs[n].some((t) => widths.varies[t]);
      const outVaries = producer && node.outputs.some((t) => widths.varies[t.id]);
      const inFractions = inVaries ? [...LATENCY_GRID] : [1];
      const outFractions = outVaries ? [...LATENCY_GRID] : [1];
      const ms: number[][] = [];
      let how: NodeLatency['how'] = 'timed';
      for (const fin of inFractions) {
        const row: number[] = [];
        for (const fout of outFractions) {
          const point = narrowedCall(node, widths, fin, fout, producer);
          const key = timingKey(node.className, point.config, point.inputShapes, batchSize, backend);
          let timing: Timing | undefined = memoryCache.get(key) ?? disk[key];
          if (timing) cachedPoints++;
          else {
            try {
              timing = await timePoint(node, point, batchSize, runs, warmup, intInputs, fin === 1 && fout === 1);
            } catch {
              timing = undefined;
            }
            if (timing) {
              timedPoints++;
              fresh[key] = timing;
            }
          }
          if (timing) memoryCache.set(key, timing);
          row.push(timing?.medianMs ?? NaN);
        }
        ms.push(row);
      }
      const full = ms[ms.length - 1][ms[0].length - 1];
      if (!Number.isFinite(full)) continue;
      if (ms.some((row) => row.some((v) => !Number.isFinite(v)))) {
        // A narrower copy of the layer could not be built or run: time in proportion to its channels.
        how = 'scaled';
        for (const [i, row] of ms.entries()) for (const j of row.keys()) row[j] = full * inFractions[i] * (producer ? outFractions[j] : 1);
      }
      const grid = extendToZero({ in: inFractions, out: outFractions }, monotoneGrid(ms));
      nodes.push({ layer: node.name, nodeIndex: node.nodeIndex, className: node.className, producer, ...grid, how });
    }
  } finally {
    if (file && Object.keys(fresh).length > 0) {
      await fs.mkdir(resolve(file, '..'), { recursive: true });
      // Read again before writing: another session may have added timings meanwhile.
      const merged = { ...(await readDiskCache(file)), ...fresh };
      await writeFileAtomic(file, JSON.stringify({ backend, batchSize, timings: merged }) + '\n');
    }
  }
  return { backend, batchSize, runs, nodes, timedPoints, cachedPoints, wallMs: performance.now() - started };
}

interface NarrowedCall {
  config: Record<string, unknown>;
  /** Per input, its shape without the batch axis. */
  inputShapes: number[][];
}

/** The node's config and input shapes with its varying input channels kept at `fin` and a producer's outputs at `fout`. */
function narrowedCall(node: TopoNode, widths: WidthModel, fin: number, fout: number, producer: boolean): NarrowedCall {
  const config = { ...(node.layer.getConfig() as Record<string, unknown>) };
  delete config.batchInputShape;
  delete config.inputShape;
  const inputShapes = node.inputs.map((t) => {
    const shape = t.shape.slice(1).map((d) => d ?? 1);
    if (widths.varies[t.id] && shape.length > 0) shape[shape.length - 1] = Math.max(1, Math.round(shape[shape.length - 1] * fin));
    return shape;
  });
  const spec = specOf(node.layer);
  if (producer && fout !== 1 && spec?.widthField) {
    const width = config[spec.widthField];
    if (typeof width === 'number') config[spec.widthField] = Math.max(1, Math.round(width * fout));
  } else if (!producer && fin !== 1 && spec?.narrowConfig) {
    const out = node.outputs[0];
    Object.assign(config, spec.narrowConfig(config, Math.max(1, Math.round(out.channels * fin))));
  }
  return { config, inputShapes };
}

/** The layer itself at full width; a fresh copy of its class from the narrowed config otherwise (weights from its initializers). */
async function timePoint(node: TopoNode, point: NarrowedCall, batchSize: number, runs: number, warmup: number, intInputs: ReadonlySet<string>, full: boolean): Promise<Timing> {
  const layer = full ? node.layer : freshLayer(node.layer, point.config);
  const inputs = node.inputs.map((t, i) => {
    const shape = [batchSize, ...point.inputShapes[i]];
    return intInputs.has(t.layer) ? tf.zeros(shape, 'int32') : tf.randomNormal(shape, 0, 1, 'float32', 31 + i);
  });
  const feed = inputs.length === 1 ? inputs[0] : inputs;
  try {
    return await timeForward(() => layer.apply(feed) as tf.Tensor | tf.Tensor[], warmup, runs);
  } finally {
    tf.dispose(inputs);
    if (layer !== node.layer) layer.dispose();
  }
}

function freshLayer(layer: tf.layers.Layer, config: Record<string, unknown>): tf.layers.Layer {
  const { name: _name, ...rest } = config;
  const cls = layer.constructor as unknown as { fromConfig?: (cls: unknown, config: object) => tf.layers.Layer; new (config: object): tf.layers.Layer };
  return cls.fromConfig ? cls.fromConfig(cls, rest) : new cls(rest);
}

/**
 * The table's prediction for a narrower copy of the model it was timed on (same layer names, as
 * surgery and methods that prune during training leave them): each entry at the kept fractions
 * of its node's widths in `pruned`. A layer absent from `pruned` costs nothing.
 */
export function predictLatencyOf(table: LatencyTable, dense: tf.LayersModel, pruned: tf.LayersModel): { denseMs: number; prunedMs: number } {
  const nodeOf = (topo: Topology) => new Map(topo.nodes.map((node) => [`${node.name}\u0000${node.nodeIndex}`, node]));
  const denseNodes = nodeOf(walkModel(dense));
  const prunedNodes = nodeOf(walkModel(pruned));
  const inWidth = (node: TopoNode) => (specOf(node.layer)?.role === 'merge' ? node.inputs.slice(0, 1) : node.inputs).reduce((sum, t) => sum + t.channels, 0);
  let denseMs = 0;
  let prunedMs = 0;
  for (const entry of table.nodes) {
    const key = `${entry.layer}\u0000${entry.nodeIndex}`;
    const before = denseNodes.get(key);
    const after = prunedNodes.get(key);
    denseMs += interpolateNode(entry, 1, 1);
    if (!before || !after) continue;
    const fin = inWidth(before) > 0 ? inWidth(after) / inWidth(before) : 1;
    const fout = entry.producer && before.outputs[0]?.channels ? (after.outputs[0]?.channels ?? 0) / before.outputs[0].channels : 1;
    prunedMs += interpolateNode(entry, fin, fout);
  }
  return { denseMs, prunedMs };
}

/**
 * The model's predicted time as units are removed: per node, its table entry at the kept
 * fractions of its widths. Held by CostTracker, which asks it for the latency part of a removal.
 */
export class LatencyPredictor {
  readonly baselineMs: number;
  private readonly widths: WidthModel;
  private readonly kept: Float64Array;
  /** Per table entry: its topology node index; per tensor: the entries that read or write it. */
  private readonly entries: { entry: NodeLatency; node: TopoNode; inputs: number[] }[] = [];
  private readonly entriesOfTensor: number[][];
  private readonly entryMs: Float64Array;
  private totalMs = 0;

  constructor(model: tf.LayersModel, graph: ChannelGraph, table: LatencyTable, topo: Topology = walkModel(model)) {
    this.widths = widthModel(model, graph, topo);
    this.kept = Float64Array.from(this.widths.baseWidth);
    const nodeAt = new Map(topo.nodes.map((node, n) => [`${node.name}\u0000${node.nodeIndex}`, n]));
    this.entriesOfTensor = topo.tensors.map(() => []);
    for (const entry of table.nodes) {
      const n = nodeAt.get(`${entry.layer}\u0000${entry.nodeIndex}`);
      if (n === undefined) continue;
      const node = topo.nodes[n];
      const at = this.entries.length;
      this.entries.push({ entry, node, inputs: this.widths.nodeInputs[n] });
      for (const t of new Set([...this.widths.nodeInputs[n], ...node.outputs.map((o) => o.id)])) this.entriesOfTensor[t].push(at);
    }
    this.entryMs = Float64Array.from(this.entries, (_, e) => this.entryTime(e, this.kept));
    for (const ms of this.entryMs) this.totalMs += ms;
    this.baselineMs = this.totalMs;
  }

  get ms(): number {
    return this.totalMs;
  }

  /** Milliseconds saved by removing (sign −1) or restoring (+1) `units`; `commit` keeps the change. */
  apply(units: Iterable<number>, sign: number, commit: boolean): number {
    const changed = new Map<number, number>();
    for (const u of units) {
      const { tensors, drops } = this.widths.unitDrops[u];
      for (let k = 0; k < tensors.length; k++) changed.set(tensors[k], (changed.get(tensors[k]) ?? this.kept[tensors[k]]) + sign * drops[k]);
    }
    if (changed.size === 0) return 0;
    const touched = new Set<number>();
    for (const t of changed.keys()) for (const e of this.entriesOfTensor[t]) touched.add(e);
    const view = (t: number) => changed.get(t) ?? this.kept[t];
    let saved = 0;
    const after = new Map<number, number>();
    for (const e of touched) {
      const ms = this.entryTime(e, view);
      saved += this.entryMs[e] - ms;
      after.set(e, ms);
    }
    if (commit) {
      for (const [t, w] of changed) this.kept[t] = w;
      for (const [e, ms] of after) this.entryMs[e] = ms;
      this.totalMs -= saved;
    }
    return saved;
  }

  /** Predicted ms of each timed layer at the current widths, by layer name (calls summed). */
  layerMs(): Record<string, number> {
    const out: Record<string, number> = {};
    this.entries.forEach(({ entry }, e) => { out[entry.layer] = (out[entry.layer] ?? 0) + this.entryMs[e]; });
    return out;
  }

  private entryTime(e: number, width: ArrayLike<number> | ((t: number) => number)): number {
    const read = typeof width === 'function' ? width : (t: number) => width[t];
    const { entry, node, inputs } = this.entries[e];
    let kept = 0;
    let base = 0;
    for (const t of inputs) {
      kept += read(t);
      base += this.widths.baseWidth[t];
    }
    const fin = base > 0 ? kept / base : 1;
    const out = node.outputs[0];
    const fout = entry.producer && out && this.widths.baseWidth[out.id] > 0 ? read(out.id) / this.widths.baseWidth[out.id] : 1;
    return interpolateNode(entry, fin, fout);
  }
}
