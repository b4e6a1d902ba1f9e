import * as tf from '@tensorflow/tfjs';
import { analyzeModel } from '../graph/analyze.js';
import type { ChannelGraph, ChannelUnit } from '../graph/types.js';
import { layerWeights } from '../layers/index.js';
import { CostTracker, unitNorms } from '../metrics/index.js';
import { measureLayerLatency } from '../metrics/layer-latency.js';
import { zeroUnits } from '../surgery/index.js';
import { evaluateModel } from '../train/index.js';
import { frozenTeacher, objectiveKind, type ObjectiveOptions } from '../train/objective.js';
import type { Dataset } from '../train/types.js';
import { CancelledError, UserError } from '../errors.js';
import { boundedSample } from './sample.js';
import { rememberingTeacher } from './teacher.js';
import { cacheFile, hashModelFile, hashModelInMemory, readCached, writeCached } from './cache.js';
import type { SensitivityEntry, SensitivityLatency, SensitivityPoint, SensitivityReport } from './types.js';
import { sensitivityScore } from '../../protocol/events.js';

export type { SensitivityEntry, SensitivityLatency, SensitivityPoint, SensitivityReport } from './types.js';
export { hashModelFile } from './cache.js';
export { sensitivityScore };

/**
 * Sensitivity analysis: for each channel group, the validation metric and loss with the group's
 * lowest-L2-norm channels removed at several ratios, the rest of the network intact.
 *
 * Removal is masking (`zeroUnits`, every slice of the unit in every coupled member, undone after
 * each evaluation): the consumers' input slices are masked too, so a masked channel contributes
 * nothing downstream whatever it carries on the way (a sigmoid's 0.5, a batch norm's shift), which is
 * what physical removal gives (`maskThenRemove` in test/helpers/models.ts checks that on every graph
 * hazard), without rebuilding the model per point.
 *
 * `layerAtATime` is the comparison the usual per-layer analyses make: each producer layer alone,
 * masking only its own output channels (kernel columns and bias), not its coupled partners. A
 * residual branch's last convolution then looks robust, since the skip path still carries its
 * channels; removing them for real removes them from every member of the group.
 */
export const DEFAULT_RATIOS: readonly number[] = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9];
export const DEFAULT_SAMPLES = 512;

export interface SensitivityOptions {
  ratios?: readonly number[];
  /** How many validation samples every evaluation reads (the first ones, the same each time). */
  samples?: number;
  layerAtATime?: boolean;
  /** Layers kept whole, as the config's "exclude". */
  exclude?: string[];
  /** The config's objective, and the frozen dense model where it distils; a teacher is made when the data has no targets. */
  objective?: ObjectiveOptions;
  batchSize?: number;
  signal?: AbortSignal;
  /** Once the dense model is measured (or the cache read): everything but the points, before the first one. */
  onStart?: (report: Omit<SensitivityReport, 'groups'> & { groups: SensitivityEntry[]; cached: boolean }) => void;
  /** Each point as soon as it is measured (cached points too, in order). */
  onPoint?: (entry: SensitivityEntry, point: SensitivityPoint) => void;
  /** Folder for cached reports; no caching without it. */
  cacheDir?: string;
  /** The model's file, hashed for the cache key (a model without one is hashed in memory). */
  modelPath?: string;
  modelName?: string;
}

interface Target {
  entry: SensitivityEntry;
  graph: ChannelGraph;
  /** Unit ids in `graph`, lowest norm first. */
  order: number[];
}

export async function analyzeSensitivity(model: tf.LayersModel, data: Dataset, options: SensitivityOptions = {}): Promise<SensitivityReport> {
  const ratios = checkRatios(options.ratios ?? DEFAULT_RATIOS);
  const samples = options.samples ?? DEFAULT_SAMPLES;
  if (!Number.isInteger(samples) || samples < 1) {
    throw new UserError(`samples must be a whole number ≥ 1, got ${samples}`, { field: 'samples', fix: 'Give e.g. --samples 512' });
  }
  const mode = options.layerAtATime ? 'layer' : 'group';
  const graph = analyzeModel(model, { exclude: options.exclude });
  const targets = mode === 'group' ? groupTargets(model, graph) : layerTargets(model, graph);

  const modelHash = options.modelPath ? await hashModelFile(options.modelPath) : hashModelInMemory(model);
  const objectiveConfig = options.objective?.config;
  const cache = options.cacheDir
    ? cacheFile(options.cacheDir, modelHash, {
      // Bumped when the report's shape changes (2: latencyShare and latency).
      version: REPORT_VERSION,
      mode, ratios, samples, exclude: options.exclude ?? [], data: data.description,
      objective: { objective: objectiveConfig?.objective, loss: objectiveConfig?.loss, distill: objectiveConfig?.distill },
    })
    : undefined;
  const cached = cache ? await readCached(cache) : undefined;
  if (cached) {
    options.onStart?.({ ...cached, groups: cached.groups.map((g) => ({ ...g, points: [] })), cached: true });
    for (const entry of cached.groups) for (const point of entry.points) options.onPoint?.(entry, point);
    return cached;
  }

  const needsTeacher = data.targets === 'none' || objectiveKind(options.objective?.config, data.targets) === 'distill';
  const ownTeacher = needsTeacher && !options.objective?.teacher ? await frozenTeacher(model) : undefined;
  const givenTeacher = options.objective?.teacher ?? ownTeacher;
  // Every evaluation reads the same samples: the teacher's outputs on them are computed once.
  const remembering = givenTeacher ? rememberingTeacher(givenTeacher) : undefined;
  const objective: ObjectiveOptions = { ...options.objective, teacher: remembering?.teacher };
  const sample = await boundedSample(data, samples, options.batchSize);
  try {
    const dense = await evaluateModel(model, sample.data, options.batchSize, options.signal, objective);
    const latency = await addLatencyShares(model, targets, options.signal);
    const head = {
      model: options.modelName ?? model.name,
      mode,
      metric: { name: dense.metric.name, higherIsBetter: dense.metric.higherIsBetter },
      samples: sample.samples,
      ratios: [...ratios],
      dense: { metric: dense.metric.value, loss: dense.loss },
      modelHash,
      latency,
    } satisfies Omit<SensitivityReport, 'groups'>;
    options.onStart?.({ ...head, groups: targets.map((t) => t.entry), cached: false });
    for (const target of targets) {
      const channels = target.entry.channels;
      for (const ratio of ratios) {
        if (options.signal?.aborted) throw new CancelledError();
        // Every tensor keeps at least one channel, as physical removal requires.
        const removed = Math.min(channels - 1, Math.max(1, Math.round(ratio * channels)));
        if (removed < 1) continue;
        // A small group rounds neighbouring ratios to the same channel count: measured once.
        const same = target.entry.points.find((p) => p.removed === removed);
        let measured = same && { metric: same.metric, loss: same.loss };
        if (!measured) {
          const result = await withMasked(model, target.graph, target.order.slice(0, removed),
            () => evaluateModel(model, sample.data, options.batchSize, options.signal, objective));
          measured = { metric: result.metric.value, loss: result.loss };
        }
        const point: SensitivityPoint = { ratio, removed, ...measured };
        target.entry.points.push(point);
        options.onPoint?.(target.entry, point);
      }
    }
    const report: SensitivityReport = { ...head, groups: targets.map((t) => t.entry) };
    if (cache) await writeCached(cache, report);
    return report;
  } finally {
    sample.dispose();
    remembering?.dispose();
    ownTeacher?.dispose();
  }
}

/** The cached report's shape; part of the cache key, so a report of another shape is never read back. */
const REPORT_VERSION = 2;

/**
 * Each entry's share of the model's time: every layer timed alone at batch 1 (`measureLayerLatency`),
 * an entry's share the summed time of the layers holding a weight slice of its channels (producers,
 * batch norms, depthwise convs and consumers, whose work shrinks with the channels; layer at a time,
 * the layer alone) over every layer's time.
 * Models too large to time layer by layer keep no share, and the report says why.
 */
async function addLatencyShares(model: tf.LayersModel, targets: Target[], signal?: AbortSignal): Promise<SensitivityLatency> {
  const timed = await measureLayerLatency(model, { batchSize: 1, signal });
  if (signal?.aborted) throw new CancelledError();
  if ('skipped' in timed) return { skipped: timed.skipped };
  const times = timed.layers;
  const totalMs = Object.values(times).reduce((sum, t) => sum + t.medianMs, 0);
  if (!(totalMs > 0)) return { skipped: 'Per-layer latency was not measured: no layer could be timed.' };
  for (const target of targets) {
    const layers = new Set<string>();
    for (const unit of target.order) for (const s of target.graph.units[unit].slices) layers.add(s.layer);
    const ms = [...layers].reduce((sum, name) => sum + (times[name]?.medianMs ?? 0), 0);
    target.entry.latencyShare = ms / totalMs;
  }
  return { backend: timed.backend, batchSize: timed.batchSize, totalMs };
}

function checkRatios(ratios: readonly number[]): number[] {
  if (ratios.length === 0) throw new UserError('no ratios given', { field: 'ratios', fix: 'Give fractions between 0 and 1, e.g. --ratios 0.1,0.3,0.5' });
  for (const r of ratios) {
    if (!Number.isFinite(r) || r <= 0 || r >= 1) {
      throw new UserError(`ratio ${r} is not a fraction between 0 and 1 (exclusive)`, { field: 'ratios', fix: 'Give fractions between 0 and 1, e.g. --ratios 0.1,0.3,0.5' });
    }
  }
  return [...new Set(ratios)].sort((a, b) => a - b);
}

function lowestFirst(model: tf.LayersModel, graph: ChannelGraph, units: number[]): number[] {
  const norms = unitNorms(model, graph, 'l2');
  return [...units].sort((a, b) => norms[a] - norms[b] || a - b);
}

function groupTargets(model: tf.LayersModel, graph: ChannelGraph): Target[] {
  const tracker = new CostTracker(model, graph);
  return graph.groups.map((group) => ({
    entry: { id: group.id, producers: [...group.producers], channels: group.channels, flopsShare: tracker.reductionWithout(group.units).flops, points: [] },
    graph,
    order: lowestFirst(model, graph, group.units),
  }));
}

/** Per producer layer, a graph of its own output channels: each unit holds only that layer's producer slices. */
function layerTargets(model: tf.LayersModel, graph: ChannelGraph): Target[] {
  const byLayer = new Map<string, { group: number; units: ChannelUnit[] }>();
  for (const unit of graph.units) {
    const own = new Map<string, ChannelUnit['slices']>();
    for (const s of unit.slices) {
      if (s.role !== 'producer') continue;
      own.set(s.layer, [...(own.get(s.layer) ?? []), s]);
    }
    for (const [layer, slices] of own) {
      let entry = byLayer.get(layer);
      if (!entry) byLayer.set(layer, (entry = { group: unit.group, units: [] }));
      entry.units.push({ id: entry.units.length, group: 0, index: entry.units.length, slices });
    }
  }
  return [...byLayer].map(([layer, { group, units }]) => {
    const own: ChannelGraph = { layers: graph.layers, groups: [{ id: 0, members: [layer], producers: [layer], consumers: [], channels: units.length, units: units.map((u) => u.id), coupled: false }], units };
    const ids = units.map((u) => u.id);
    return {
      entry: { id: layer, producers: [layer], channels: units.length, flopsShare: new CostTracker(model, own).reductionWithout(ids).flops, group, points: [] },
      graph: own,
      order: lowestFirst(model, own, ids),
    };
  });
}

/** Runs `evaluate` with `units` masked, then puts every weight the mask touched back as it was. */
async function withMasked<T>(model: tf.LayersModel, graph: ChannelGraph, units: number[], evaluate: () => Promise<T>): Promise<T> {
  const layers = new Set(units.flatMap((u) => graph.units[u].slices.map((s) => s.layer)));
  const saved = [...layers].flatMap((name) => [...layerWeights(model.getLayer(name)).values()].map((variable) => ({ variable, value: tf.clone(variable.read()) })));
  try {
    zeroUnits(model, graph, units);
    return await evaluate();
  } finally {
    for (const { variable, value } of saved) {
      variable.write(value);
      value.dispose();
    }
  }
}
