import type * as tf from '@tensorflow/tfjs';
import type { PruneConfig } from '../config/types.js';
import type { DoneEvent, LayerStat } from '../../protocol/events.js';
import type { ChannelGraph } from '../graph/types.js';
import type { EvalResult } from '../train/types.js';
import { countCost } from '../metrics/index.js';

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
  backend: string;
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
  speedup: number;
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
  conventions: { flops: string; params: string; latency: string };
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

export function buildReport(input: {
  config: PruneConfig;
  done: DoneEvent;
  costBefore: ReturnType<typeof countCost>;
  costAfter: ReturnType<typeof countCost>;
  layersBefore: LayerStat[];
  graphAfter: ChannelGraph;
  modelAfter: tf.LayersModel;
  notes: string[];
  history: EvalResult[];
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
    backend: done.backend,
    data: done.data?.description,
    syntheticData: done.data?.synthetic,
    before: { params: done.before.params, flops: done.before.flops, accuracy: done.accuracy?.before, latencyMs: done.latency?.before.medianMs ?? 0, weightBytes: done.size?.before },
    after: { params: done.after.params, flops: done.after.flops, accuracy: done.accuracy?.after, latencyMs: done.latency?.after.medianMs ?? 0, weightBytes: done.size?.after },
    metric: done.metric,
    reduction: { params: 1 - done.after.params / done.before.params, flops: 1 - done.after.flops / done.before.flops },
    speedup: done.latency?.speedup ?? 1,
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
    },
  };
}
