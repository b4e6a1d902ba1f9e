import type * as tf from '@tensorflow/tfjs';
import type { PruneConfig } from '../config/types.js';
import type { DoneEvent, LayerStat } from '../../protocol/events.js';
import type { ChannelGraph } from '../graph/types.js';
import type { EvalResult } from '../train/types.js';
import { countCost } from '../metrics/index.js';
import type { Allocation, GroupAllocation } from '../prune/allocate.js';
import type { LayerLatencyRow, SpeedExplanation } from './speed.js';
import type { LayerLatencyTable } from '../metrics/layer-latency.js';
import type { LatencyTargetReport } from './latency-target.js';
import type { BackendChoice } from '../backend/index.js';

export const REPORT_VERSION = 1;

export const SYNTHETIC_ACCURACY_NOTE = 'Accuracy was measured on synthetic data: it checks that the pipeline runs and says nothing about the model. Point "data" at real data for a meaningful accuracy.';

export interface PruningReport {
  version: number;
  tool: 'prunelens';
  createdAt: string;
  config: string;
  method: string;
  target: Record<string, number>;
  scope: string;
  /** How the target was shared between channel groups: global, uniform or sensitivity. */
  allocation: string;
  /** With `"allocation": "sensitivity"`: each group's channels removed and the metric its curve predicted for that. */
  sensitivityAllocation?: GroupAllocation[];
  backend: string;
  /** Why that backend ran: set by the config, or the fastest of a probe training step, measured now or cached for this machine. */
  backendChoice?: BackendChoice & { summary: string };
  /** Description of the data accuracy was measured on. */
  data?: string;
  /** True when that data was synthetic: the accuracies then say nothing about the model. */
  syntheticData?: boolean;
  /** `weightBytes`: bytes on disk of model.json plus its weight shards (the input as loaded, the output as written). */
  before: { params: number; flops: number; accuracy?: number; latencyMs: number; weightBytes?: number };
  after: { params: number; flops: number; accuracy?: number; latencyMs: number; weightBytes?: number };
  /** The metric that fits the task: dense, right after pruning (before fine-tuning), and at the end. */
  metric?: DoneEvent['metric'];
  reduction: { params: number; flops: number };
  /** With a `latencyReduction` target: the reduction the latency table predicted for the removal and the measured one (TF.js). */
  latencyTarget?: LatencyTargetReport;
  speedup: number;
  /** speedup ÷ (FLOPs before / FLOPs after): 1 when the time fell in proportion to the FLOPs. */
  efficiency: number;
  /** Each layer timed alone before and after (TF.js, the session's latency batch): where the time did not fall with the FLOPs; or why it was not measured. */
  layerLatency?: ReportLayerLatency | { skipped: string };
  /** `runtime` names what timed before/after (ONNX Runtime for an ONNX model when onnxruntime-node is installed); `tfjs` keeps TF.js' timing then. */
  latency: DoneEvent['latency'];
  /** An ONNX model checked in ONNX Runtime: the imported graph against the original file, the pruned runtime model against the written file. */
  onnx?: DoneEvent['onnx'];
  /** Peak tensor memory and how each training phase fitted its batches (micro-batches). */
  memory?: DoneEvent['memory'];
  channelsRemoved: number;
  physicallyRemoved: boolean;
  wallTimeMs: number;
  output?: string;
  layers: ReportLayer[];
  finetune: EvalResult[];
  notes: string[];
  conventions: { flops: string; params: string; latency: string; layerLatency: string };
}

export interface ReportLayer {
  name: string;
  type: string;
  status: LayerStat['status'];
  group?: number;
  reason?: string;
  channelsBefore: number;
  channelsAfter: number;
  paramsBefore: number;
  paramsAfter: number;
  flopsBefore: number;
  flopsAfter: number;
}

export interface ReportLayerLatency {
  backend: string;
  batchSize: number;
  runs: number;
  /** The "why not faster" note, also in `notes`. */
  note: string;
  /** Every timed layer of the dense model (matched by name, or by its parts when the method rebuilt it), then the layers the method added. */
  layers: LayerLatencyRow[];
  /** Layers whose time ratio stayed above 0.9 while their FLOPs ratio fell below 0.7, most excess time first. */
  slowLayers: string[];
  addedMs: number;
  /** Layers whose apply failed on random inputs, so untimed. */
  failed?: string[];
}

export function buildReport(input: {
  config: PruneConfig;
  /** The allocation from sensitivity the method's selection made, if it made one. */
  allocation?: Allocation;
  done: DoneEvent;
  costBefore: ReturnType<typeof countCost>;
  costAfter: ReturnType<typeof countCost>;
  layersBefore: LayerStat[];
  graphAfter: ChannelGraph;
  modelAfter: tf.LayersModel;
  notes: string[];
  history: EvalResult[];
  latencyTarget?: LatencyTargetReport;
  backendChoice?: PruningReport['backendChoice'];
  /** The per-layer timing and its explanation, or why it was skipped. */
  speed?: { explanation: SpeedExplanation; timing: LayerLatencyTable; failed: string[] } | { skipped: string };
}): PruningReport {
  const { config, done, costBefore, costAfter } = input;
  const layers: ReportLayer[] = input.layersBefore.map((l) => {
    const after = costAfter.layers[l.name];
    const before = costBefore.layers[l.name];
    return {
      name: l.name,
      type: l.type,
      status: l.status,
      group: l.group,
      reason: l.reason,
      channelsBefore: l.channels,
      channelsAfter: after ? after.outChannels : 0,
      paramsBefore: before ? before.params : l.params,
      paramsAfter: after ? after.params : 0,
      flopsBefore: before ? before.flops : l.flops,
      flopsAfter: after ? after.flops : 0,
    };
  });
  return {
    version: REPORT_VERSION,
    tool: 'prunelens',
    createdAt: new Date().toISOString(),
    config: config.configPath,
    method: config.method,
    target: { ...config.target },
    scope: config.scope,
    allocation: config.allocation ?? (config.scope === 'layer' ? 'uniform' : 'global'),
    ...(input.allocation ? { sensitivityAllocation: input.allocation.groups } : {}),
    backend: done.backend,
    ...(input.backendChoice ? { backendChoice: input.backendChoice } : {}),
    data: done.data?.description,
    syntheticData: done.data?.synthetic,
    before: { params: done.before.params, flops: done.before.flops, accuracy: done.accuracy?.before, latencyMs: done.latency?.before.medianMs ?? 0, weightBytes: done.size?.before },
    after: { params: done.after.params, flops: done.after.flops, accuracy: done.accuracy?.after, latencyMs: done.latency?.after.medianMs ?? 0, weightBytes: done.size?.after },
    metric: done.metric,
    reduction: { params: 1 - done.after.params / done.before.params, flops: 1 - done.after.flops / done.before.flops },
    ...(input.latencyTarget ? { latencyTarget: input.latencyTarget } : {}),
    speedup: done.latency?.speedup ?? 1,
    efficiency: done.speed?.efficiency ?? (done.latency?.speedup ?? 1) / (done.after.flops > 0 ? done.before.flops / done.after.flops : 1),
    layerLatency: reportLayerLatency(input.speed),
    latency: done.latency,
    onnx: done.onnx,
    memory: done.memory,
    channelsRemoved: done.channelsRemoved,
    physicallyRemoved: done.physicallyRemoved,
    wallTimeMs: done.wallTimeMs,
    output: done.output,
    layers,
    finetune: input.history,
    notes: done.data?.synthetic && (done.accuracy || done.metric) ? [...input.notes, SYNTHETIC_ACCURACY_NOTE] : input.notes,
    conventions: {
      flops: 'Forward FLOPs per sample; a multiply-add counts as 2; convolutions and dense layers only.',
      params: 'Every weight of the model, batch-norm statistics included.',
      latency: 'Median of repeated forward passes of one batch on latency.runtime (ONNX Runtime on the original and the written .onnx file, when installed; else the TF.js backend), after warm-up.',
      layerLatency: 'Each layer alone (its apply on a random batch of its input shapes in the model, TF.js backend, the latency batch size), median of a few runs after warm-up; identical layers are timed once. Efficiency = speedup ÷ (FLOPs before / FLOPs after).',
    },
  };
}

function reportLayerLatency(speed: Parameters<typeof buildReport>[0]['speed']): PruningReport['layerLatency'] {
  if (!speed) return undefined;
  if ('skipped' in speed) return { skipped: speed.skipped };
  const { explanation, timing, failed } = speed;
  return {
    backend: timing.backend, batchSize: timing.batchSize, runs: timing.runs, note: explanation.note,
    layers: explanation.layers, slowLayers: explanation.slowLayers, addedMs: explanation.addedMs,
    ...(failed.length ? { failed } : {}),
  };
}
