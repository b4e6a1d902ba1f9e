import * as tf from '@tensorflow/tfjs';
import { walkModel, type TopoNode } from '../graph/topology.js';
import { timeForward } from './timing.js';

/**
 * Each layer of a model timed alone, at the input shapes it is called with in the model: its
 * `apply` on a random batch of those shapes (forced with dataSync), after warm-up, over a few runs.
 * The time of a layer called several times (a shared layer) is the sum over its calls.
 */

export interface LayerTiming {
  medianMs: number;
  p25Ms: number;
  p75Ms: number;
}

export interface LayerLatencyTable {
  backend: string;
  batchSize: number;
  runs: number;
  /** Layer name → its time; a layer whose apply failed on a random input is absent (named in `failed`). */
  layers: Record<string, LayerTiming>;
  failed: string[];
}

export type LayerLatencyResult = LayerLatencyTable | { skipped: string };

/** Models with more layers are not timed layer by layer: it would cost more than the session's own latency runs. */
export const MAX_TIMED_LAYERS = 300;
export const LAYER_LATENCY_RUNS = 5;

/** Timings within the process by class, config (less the name), input shapes, batch and backend: identical layers are timed once. */
const cache = new Map<string, LayerTiming>();

export function clearLayerLatencyCache(): void {
  cache.clear();
}

export async function measureLayerLatency(
  model: tf.LayersModel,
  options: { batchSize: number; runs?: number; warmup?: number; maxLayers?: number; signal?: AbortSignal; onLayer?: (done: number, layers: number) => void },
): Promise<LayerLatencyResult> {
  const maxLayers = options.maxLayers ?? MAX_TIMED_LAYERS;
  if (model.layers.length > maxLayers) {
    return { skipped: `Per-layer latency was not measured: the model has ${model.layers.length} layers, more than ${maxLayers}.` };
  }
  const batchSize = Math.max(1, Math.floor(options.batchSize));
  const runs = Math.max(1, Math.floor(options.runs ?? LAYER_LATENCY_RUNS));
  const warmup = Math.max(0, Math.floor(options.warmup ?? 1));
  const backend = tf.getBackend();
  const intInputs = new Set(model.inputs.filter((t) => t.dtype === 'int32').map((t) => t.sourceLayer.name));
  const layers: Record<string, LayerTiming> = {};
  const failed: string[] = [];
  const nodes = walkModel(model).nodes.filter((node) => node.className !== 'InputLayer');
  let timed = 0;
  for (const node of nodes) {
    if (options.signal?.aborted) break;
    options.onLayer?.(timed++, nodes.length);
    const key = cacheKey(node, batchSize, backend);
    let timing = cache.get(key);
    if (!timing) {
      try {
        timing = await timeNode(node, batchSize, runs, warmup, intInputs);
      } catch {
        if (!failed.includes(node.name)) failed.push(node.name);
        continue;
      }
      // timeForward yields to the event loop between runs (cancellation, IPC).
      cache.set(key, timing);
    }
    const sum = layers[node.name];
    layers[node.name] = sum
      ? { medianMs: sum.medianMs + timing.medianMs, p25Ms: sum.p25Ms + timing.p25Ms, p75Ms: sum.p75Ms + timing.p75Ms }
      : timing;
  }
  return { backend, batchSize, runs, layers, failed };
}

function cacheKey(node: TopoNode, batchSize: number, backend: string): string {
  const { name: _name, ...config } = node.layer.getConfig() as Record<string, unknown>;
  const shapes = node.inputs.map((t) => t.shape.slice(1).join('x')).join(',');
  return `${node.className}\u0000${JSON.stringify(config)}\u0000${batchSize}x[${shapes}]\u0000${backend}`;
}

async function timeNode(node: TopoNode, batchSize: number, runs: number, warmup: number, intInputs: ReadonlySet<string>): Promise<LayerTiming> {
  const inputs = node.inputs.map((t, i) => {
    const shape = [batchSize, ...t.shape.slice(1).map((d) => d ?? 1)];
    return intInputs.has(t.layer) ? tf.zeros(shape, 'int32') : tf.randomNormal(shape, 0, 1, 'float32', 29 + i);
  });
  const feed = inputs.length === 1 ? inputs[0] : inputs;
  try {
    return await timeForward(() => node.layer.apply(feed) as tf.Tensor | tf.Tensor[], warmup, runs);
  } finally {
    tf.dispose(inputs);
  }
}
