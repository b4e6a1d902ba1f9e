import * as tf from '@tensorflow/tfjs';
import type { ChannelGraph } from '../graph/types.js';
import { CostTracker } from '../metrics/cost.js';
import { timeForward } from '../metrics/timing.js';
import { roundKeptChannels } from './round.js';

/** The multiples `"roundTo": "auto"` considers. */
export const AUTO_ROUND_MULTIPLES = [1, 2, 4, 8, 16, 32] as const;
/** A multiple is a candidate only if rounding costs at most this much of the FLOPs reduction (5 points). */
export const AUTO_ROUND_MAX_FLOPS_LOSS = 0.05;
const AUTO_ROUND_RUNS = 5;

/** The width a kept count rounds up to with multiple `m`, never above the group size. */
export function roundedWidth(kept: number, multiple: number, groupChannels: number): number {
  return Math.min(groupChannels, Math.ceil(Math.max(1, kept) / multiple) * multiple);
}

/** The widths worth timing for a kept count: it and its round-ups to every multiple, deduplicated, ascending. */
export function autoRoundWidths(kept: number, groupChannels: number): number[] {
  return [...new Set(AUTO_ROUND_MULTIPLES.map((m) => roundedWidth(kept, m, groupChannels)))].sort((a, b) => a - b);
}

/**
 * The multiple with the least time per kept channel at the probed layer. `timesMs` maps width → median
 * time; `flopsLoss` maps multiple → FLOPs-reduction points lost by rounding the whole model to it
 * (absent: 0). Multiples losing more than 5 points are not candidates; ties go to the smaller multiple,
 * so 1 wins when no rounded width is faster per channel.
 */
export function chooseRoundMultiple(input: { kept: number; groupChannels: number; timesMs: ReadonlyMap<number, number>; flopsLoss?: ReadonlyMap<number, number> }): number {
  let best = 1;
  let bestPerChannel = Infinity;
  for (const m of AUTO_ROUND_MULTIPLES) {
    if ((input.flopsLoss?.get(m) ?? 0) > AUTO_ROUND_MAX_FLOPS_LOSS + 1e-12) continue;
    const width = roundedWidth(input.kept, m, input.groupChannels);
    const time = input.timesMs.get(width);
    if (time === undefined || !Number.isFinite(time)) continue;
    const perChannel = time / width;
    if (perChannel < bestPerChannel) {
      best = m;
      bestPerChannel = perChannel;
    }
  }
  return best;
}

export interface AutoRoundResult {
  multiple: number;
  /** The probed layer, its kept count as planned and its group's size; absent when nothing could be probed. */
  layer?: string;
  kept?: number;
  groupChannels?: number;
  timesMs: Map<number, number>;
  note: string;
}

/**
 * Times the model's largest prunable Conv2D (by FLOPs) alone at widths around its planned kept count,
 * on the current backend, and picks the multiple with chooseRoundMultiple.
 */
export async function measureAutoRound(model: tf.LayersModel, graph: ChannelGraph, remove: readonly number[], scores: ArrayLike<number>, batchSize: number): Promise<AutoRoundResult> {
  const backend = tf.getBackend();
  const removed = new Set(remove);
  const probe = graph.layers
    .filter((l) => l.type === 'Conv2D' && l.group !== undefined && l.status !== 'blocked')
    .sort((a, b) => b.flops - a.flops)[0];
  const group = probe && graph.groups[probe.group!];
  if (!probe || !group) {
    return { multiple: 1, timesMs: new Map(), note: `roundTo auto chose 1 on ${backend}: no prunable Conv2D layer to time.` };
  }
  const kept = group.channels - group.units.filter((u) => removed.has(u)).length;
  const layer = model.getLayer(probe.name);
  const cfg = layer.getConfig() as { kernelSize: number | number[]; strides?: number | number[]; padding?: string; dilationRate?: number | number[]; dataFormat?: string };
  const pair = (v: number | number[] | undefined, d: number): [number, number] => (v === undefined ? [d, d] : Array.isArray(v) ? [v[0], v[1] ?? v[0]] : [v, v]);
  const [kh, kw] = pair(cfg.kernelSize, 1);
  const strides = pair(cfg.strides, 1);
  const dilations = pair(cfg.dilationRate, 1);
  const inShape = (layer.getInputAt(0) as tf.SymbolicTensor).shape;
  const channelsFirst = cfg.dataFormat === 'channelsFirst';
  const [h, w, cin] = channelsFirst ? [inShape[2], inShape[3], inShape[1]] : [inShape[1], inShape[2], inShape[3]];
  const input = tf.randomNormal([Math.max(1, Math.floor(batchSize)), h ?? 1, w ?? 1, cin ?? 1], 0, 1, 'float32', 31);
  const timesMs = new Map<number, number>();
  try {
    for (const width of autoRoundWidths(kept, group.channels)) {
      const filter = tf.randomNormal([kh, kw, cin ?? 1, width], 0, 1, 'float32', 37);
      try {
        const padding = cfg.padding === 'same' ? 'same' : 'valid';
        const { medianMs } = await timeForward(() => tf.conv2d(input as tf.Tensor4D, filter as tf.Tensor4D, strides, padding, 'NHWC', dilations), 1, AUTO_ROUND_RUNS);
        timesMs.set(width, medianMs);
      } finally {
        filter.dispose();
      }
    }
  } finally {
    input.dispose();
  }
  const tracker = new CostTracker(model, graph);
  const selected = tracker.reductionWithout(remove).flops;
  const flops = (units: readonly number[]) => tracker.reductionWithout(units).flops;
  // Rounded as the session rounds: down where needed to keep the reduction, so a multiple loses FLOPs only where groups are too small to go down.
  const flopsLoss = new Map(AUTO_ROUND_MULTIPLES.map((m) => [m, m === 1 ? 0 : selected - flops(roundKeptChannels(graph, scores, remove, m, { reduction: flops }))] as const));
  const multiple = chooseRoundMultiple({ kept, groupChannels: group.channels, timesMs, flopsLoss });
  const chosen = roundedWidth(kept, multiple, group.channels);
  const times = [...timesMs].map(([width, ms]) => `${width} channels ${ms.toFixed(2)} ms`).join(', ');
  const note = `roundTo auto chose ${multiple} on ${backend}: ${probe.name} at ${times} (kept ${kept} of ${group.channels} as planned${multiple > 1 ? `, ${chosen} after rounding` : ''}; least time per kept channel within ${AUTO_ROUND_MAX_FLOPS_LOSS * 100} FLOPs points).`;
  return { multiple, layer: probe.name, kept, groupChannels: group.channels, timesMs, note };
}
