import { randomBytes } from 'node:crypto';
import type { BackendName } from '../config/types.js';
import type { DoneEvent, EngineEvent, ErrorEvent } from '../../protocol/events.js';
import type * as tf from '@tensorflow/tfjs';
import { errorEvent } from './error-event.js';
import { initBackend } from '../backend/index.js';
import { loadModel } from '../io/index.js';
import { analyzeModel } from '../graph/analyze.js';
import { countCost, layerStats } from '../metrics/index.js';
import { maxReductions } from '../prune/select.js';
import type { ChannelGraph } from '../graph/types.js';
import { summarizeModel } from './summary.js';
import type { VerifyFiles, VerifyResult } from './verify.js';
import { ONNX_RUNTIME, type OnnxRuntimeCheck } from '../../protocol/events.js';
import type { OnnxSerialization } from '../io/onnx/record.js';

export interface AnalysisResult {
  params: number;
  flops: number;
  /** `ms` and `share`: the layer's measured time alone and its share of the summed layer times, when timed (`timeLayers`). */
  layers: { name: string; type: string; params: number; flops: number; status: string; group?: number; reason?: string; channels: number; ms?: number; share?: number }[];
  /** Where the layers were timed, or why they were not. */
  layerLatency?: { backend: string; batchSize: number; totalMs: number; failed: string[] } | { skipped: string };
  groups: { id: number; members: string[]; channels: number; coupled: boolean }[];
  /** Largest reductions whole-channel pruning can reach on this model (every group keeps one channel). */
  maxReduction: { flops: number; params: number; channels: number };
  graph: ChannelGraph;
  backend: string;
  modelName: string;
  /** The model's outputs on the given inputs against the expected ones, when asked. */
  verify?: VerifyResult;
  /** An ONNX model when onnxruntime-node is installed: the imported graph against the file in ONNX Runtime on random inputs. */
  onnx?: OnnxRuntimeCheck;
  /** Why that check could not run, when ONNX Runtime failed on the file. */
  onnxProblem?: string;
}

/** Inputs of the import check in `analyze`: a few, to stay quick on large models. */
const IMPORT_CHECK_SAMPLES = 4;

/** The imported runtime model against the ONNX file in ONNX Runtime; nothing when the model is not ONNX or the package is absent. */
async function importCheck(model: tf.LayersModel, modelPath: string, onnx: OnnxSerialization | undefined): Promise<Pick<AnalysisResult, 'onnx' | 'onnxProblem'>> {
  if (!onnx) return {};
  // Nodes imported as opaque layers cannot run here, so there is nothing to compare.
  if (onnx.unsupported.length > 0) {
    const [first] = onnx.unsupported;
    return { onnxProblem: `The import was not checked against ONNX Runtime: node "${first.node}" (${first.opType})${onnx.unsupported.length > 1 ? ` and ${onnx.unsupported.length - 1} more` : ''} cannot run in PruneLens` };
  }
  // Loaded only for an ONNX model: analysis of the others never loads ONNX Runtime's glue.
  const { compareWithOnnxRuntime, randomRuntimeInput } = await import('../io/onnx/check.js');
  const inputs = randomRuntimeInput(model, IMPORT_CHECK_SAMPLES);
  try {
    const agreement = await compareWithOnnxRuntime(model, modelPath, inputs);
    return agreement ? { onnx: { ...agreement, runtime: ONNX_RUNTIME, samples: IMPORT_CHECK_SAMPLES, inputs: `${IMPORT_CHECK_SAMPLES} random inputs` } } : {};
  } catch (err) {
    return { onnxProblem: `ONNX Runtime could not run the file: ${String((err as Error).message ?? err).split('\n')[0]}` };
  } finally {
    inputs.dispose();
  }
}

/** Loads and analyses a model: prunability of every layer and its channel groups. No training. */
export async function analyzeModelFile(modelPath: string, backend: BackendName = 'auto', exclude: string[] = [], verify?: VerifyFiles, options: { timeLayers?: boolean } = {}): Promise<AnalysisResult> {
  const usedBackend = await initBackend(backend);
  const { model, onnx } = await loadModel(modelPath);
  try {
    const graph = analyzeModel(model, { exclude });
    const cost = countCost(model);
    // Each layer alone at batch 1, beside its FLOPs: where the time goes is not always where the FLOPs are.
    const timing = options.timeLayers ? await (await import('../metrics/layer-latency.js')).measureLayerLatency(model, { batchSize: 1 }) : undefined;
    const times = timing && !('skipped' in timing) ? timing.layers : undefined;
    const totalMs = times ? Object.values(times).reduce((sum, t) => sum + t.medianMs, 0) : 0;
    const timed = (name: string) => {
      const ms = times?.[name]?.medianMs;
      return ms === undefined ? {} : { ms, share: totalMs > 0 ? ms / totalMs : 0 };
    };
    return {
      params: cost.params,
      flops: cost.flops,
      layers: graph.layers.map((l) => ({ name: l.name, type: l.type, params: l.params, flops: l.flops, status: l.status, group: l.group, reason: l.reason, channels: l.outChannels, ...timed(l.name) })),
      ...(timing ? { layerLatency: 'skipped' in timing ? { skipped: timing.skipped } : { backend: timing.backend, batchSize: timing.batchSize, totalMs, failed: timing.failed } } : {}),
      groups: graph.groups.map((g) => ({ id: g.id, members: g.members, channels: g.channels, coupled: g.coupled })),
      maxReduction: maxReductions(graph, model),
      graph,
      backend: usedBackend,
      modelName: model.name,
      ...(verify ? { verify: (await import('./verify.js')).verifyOutputs(model, verify, onnx) } : {}),
      ...(await importCheck(model, modelPath, onnx)),
    };
  } finally {
    model.dispose();
  }
}

/** The analysis as protocol events (for the panel): start, layers, and a dry-run done. */
export async function analyzeToEvents(modelPath: string, emit: (e: EngineEvent) => void): Promise<DoneEvent | ErrorEvent> {
  const startedAt = Date.now();
  try {
    // The cpu backend: analysis runs no model, so the wasm backend and its kernels are not worth starting.
    const backend = await initBackend('cpu');
    const { model } = await loadModel(modelPath);
    try {
      const graph = analyzeModel(model);
      const cost = countCost(model);
      const sessionId = randomBytes(6).toString('hex');
      emit({ type: 'start', sessionId, method: 'analyze', backend, model: { ...summarizeModel(model, graph, cost), maxReduction: maxReductions(graph, model) }, target: {}, dryRun: true });
      const stats = layerStats(model, graph);
      emit({ type: 'layers', phase: 'load', step: 0, layers: stats.layers, totals: stats.totals });
      const done: DoneEvent = { type: 'done', sessionId, method: 'analyze', before: { params: cost.params, flops: cost.flops }, after: { params: cost.params, flops: cost.flops }, channelsRemoved: 0, physicallyRemoved: false, backend, wallTimeMs: Date.now() - startedAt, dryRun: true };
      emit(done);
      return done;
    } finally {
      model.dispose();
    }
  } catch (err) {
    const error = errorEvent(err);
    emit(error);
    return error;
  }
}
