import * as tf from '@tensorflow/tfjs';
import { randomBytes } from 'node:crypto';
import { join, relative } from 'node:path';
import { targetKind, type PruneConfig } from '../config/types.js';
import { ONNX_RUNTIME, type DoneEvent, type EngineEvent, type ErrorEvent, type InferenceFormLatency, type LatencyComparison, type LatencySummary, type LayerStat, type MemorySummary, type ModelSummary, type OnnxRuntimeCheck, type OutputAgreement } from '../../protocol/events.js';
import { formatMiB, peakTensorMemory, resetPeakTensorMemory, tensorMemoryLimit } from '../backend/heap.js';
import type { MemoryPlan } from '../train/memory.js';
import { CancelledError, UserError } from '../errors.js';
import { errorEvent } from './error-event.js';
import { formatLatencyRange } from '../../protocol/format.js';
import { switches } from '../util/switches.js';
import { backendCacheDir, backendInfo, describeBackendChoice, initBackend } from '../backend/index.js';
import { loadModel, writeFolderAtomic, assertOutputSafe, type LoadedModel } from '../io/index.js';
import { measureOnnxLatency, onnxRuntime } from '../io/onnx/runtime.js';
import { compareWithOnnxRuntime, randomRuntimeInput } from '../io/onnx/check.js';
import { channelsFirstShape } from '../data/layout.js';
import { encodeSessionOutput, type SessionOutput } from './output.js';
import { analyzeModel } from '../graph/analyze.js';
import { removeUnits } from '../surgery/index.js';
import { countCost, CostTracker, latencyWithinNoise, layerStats, measureLatency, unitNorms } from '../metrics/index.js';
import { roundKeptChannels } from '../prune/round.js';
import { measureAutoRound } from '../prune/round-auto.js';
import { LANDING_TOLERANCE, maxReachable, nearestReachable } from '../prune/select.js';
import { loadDataset, summarizeData } from '../data/index.js';
import type { Dataset, EvalResult } from '../train/types.js';
import { evaluateModel, hasBatchNorm, MIN_RECALIBRATION_SAMPLES, recalibrateBatchNorm } from '../train/index.js';
import { buildObjective, describeObjective, frozenTeacher, objectiveKind, type ObjectiveOptions } from '../train/objective.js';
import { checkMethodFits, getMethod, magnitudePlan } from '../methods/index.js';
import { createMethodContext } from './context.js';
import { analyzeSensitivity, type SensitivityReport } from '../sensitivity/index.js';
import { defaultCacheDir } from '../sensitivity/run.js';
import { describeAllocation, type Allocation } from '../prune/allocate.js';
import { SessionProgress, plannedSteps, type ProgressPlan } from './progress.js';
import { methodLabel } from '../../protocol/methods.js';
import { MAX_TIMED_LAYERS } from '../metrics/layer-latency.js';
import { toInferenceForm, type InferenceForm } from '../surgery/inference-form.js';
import { buildReport } from './report.js';
import { efficiency, layerLatencySummary, sessionSpeed, speedHeadline } from './speed.js';
import { measureLayerLatency, type LayerLatencyResult } from '../metrics/layer-latency.js';
import { assertInsideWorkspace } from './confine.js';
import { calibrateLatencyTarget, calibratedReduction, compareLatencyTarget, describeLatencyCalibration, describeLatencyTable, latencyTargetNote, prepareLatencyTarget, wantsLatencyTable } from './latency-target.js';
import type { ChannelGraph } from '../graph/types.js';
import { summarizeModel } from './summary.js';

export interface SessionOptions {
  signal?: AbortSignal;
  /** Validate and plan without training or writing anything. */
  dryRun?: boolean;
  /** When given (sessions started from an editor), every path the config names must lie inside one of these folders. */
  workspaceRoots?: readonly string[];
  sessionId?: string;
}

/** Runs a config end to end and never throws: the last event emitted is `done` or `error`. */
export async function executeSession(config: PruneConfig, emit: (event: EngineEvent) => void, options: SessionOptions = {}): Promise<DoneEvent | ErrorEvent> {
  try {
    const done = await runSession(config, emit, options);
    emit(done);
    return done;
  } catch (err) {
    if (switches().debug) console.error(err);
    const error = errorEvent(err);
    emit(error);
    return error;
  }
}

async function runSession(config: PruneConfig, emit: (event: EngineEvent) => void, options: SessionOptions): Promise<DoneEvent> {
  const startedAt = Date.now();
  const signal = options.signal ?? new AbortController().signal;
  const sessionId = options.sessionId ?? randomBytes(6).toString('hex');
  const checkCancelled = () => {
    if (signal.aborted) throw new CancelledError();
  };
  const method = getMethod(config.method, config.configPath);
  const trainEpochs = method.training === 'none' ? 0 : config.train?.epochs ?? 0;
  const finetuneEpochs = config.finetune?.epochs ?? 0;
  const memory = memoryRecorder(emit);
  const progressPlan = (model?: tf.LayersModel, data?: Dataset): ProgressPlan => {
    const layers = model ? model.layers.filter((l) => l.getClassName() !== 'InputLayer').length : 0;
    return {
      methodSteps: options.dryRun || trainEpochs === 0 ? 0 : plannedSteps(config.train, data?.trainSize ?? 0),
      methodBatchSize: config.train?.batchSize ?? 0,
      methodEpochs: trainEpochs,
      finetuneSteps: options.dryRun || finetuneEpochs === 0 ? 0 : plannedSteps(config.finetune, data?.trainSize ?? 0),
      finetuneBatchSize: config.finetune?.batchSize ?? 0,
      finetuneEpochs,
      validationSamples: data?.validationSize ?? 0,
      latencyRuns: config.latency.runs,
      latencyBatchSize: config.latency.batchSize,
      timedLayers: model && model.layers.length <= MAX_TIMED_LAYERS ? layers : 0,
    };
  };
  const progress = new SessionProgress(progressPlan(), emit);
  const timing = (what: string, from: number, to: number) => ({
    onRun: (done: number, runs: number) => progress.update(from + (to - from) * done / runs, `${what}, ${done} of ${runs} runs`),
  });
  const layerTiming = (from: number, to: number) => ({
    onLayer: (done: number, layers: number) => progress.update(from + (to - from) * done / layers, `timing layers, ${done + 1} of ${layers}`),
  });

  emit({ type: 'phase', phase: 'load', message: `Loading ${relative(process.cwd(), config.model) || config.model}` });
  if (options.workspaceRoots?.length) assertInsideWorkspace(config, options.workspaceRoots);
  const backend = await initBackend(config.backend, { cacheDir: backendCacheDir(config.configPath) });
  const backendChoice = { ...(backendInfo().choice ?? { by: 'config' as const }), summary: describeBackendChoice(backendInfo()) };
  resetPeakTensorMemory();
  assertOutputSafe(config.model, config.output);
  const loaded = await loadModel(config.model);
  const model = loaded.model;
  const disposables: tf.LayersModel[] = [model];
  let onnxCheck: OnnxRuntimeSession | undefined;
  try {
    const graph = analyzeModel(model, { exclude: config.exclude });
    const costBefore = countCost(model);
    emit({
      type: 'start',
      sessionId,
      method: config.method,
      configPath: config.configPath,
      backend,
      model: summarizeModel(model, graph, costBefore),
      target: { ...config.target },
      data: summarizeData(config.data),
      dryRun: options.dryRun,
    });
    emit({ type: 'log', level: 'info', message: backendChoice.summary });
    progress.enter('load', loadActivity(config));
    if (graph.units.length === 0) {
      throw new UserError('no prunable channels: every layer is blocked', { file: config.model, fix: 'Run `prunelens analyze` on the model to see why each layer is blocked' });
    }

    checkMethodFits(method, config);
    let data: Dataset | undefined;
    if (config.data) {
      const inputShape = (model.inputs[0].shape.slice(1) as number[]);
      const outputShape = model.outputs[0].shape;
      const classes = outputShape[outputShape.length - 1] as number;
      // Data for an ONNX model holds samples as the ONNX graph takes them, [C, H, W]: transposed once at load.
      data = await loadDataset(config.data, config.configPath, {
        inputShape, classes, channelsFirst: Boolean(loaded.onnx), outputShapes: model.outputs.map((o) => o.shape.slice(1)),
      }, config.seed);
    }
    checkCancelled();
    progress.replan(progressPlan(model, data));
    // Distillation's teacher: the dense model as loaded, frozen before the method touches a weight.
    const teacher = data && objectiveKind(config, data.targets) === 'distill' ? await frozenTeacher(model) : undefined;
    if (teacher) disposables.push(teacher);
    const objective: ObjectiveOptions = { config, teacher };
    // The objective's one-line errors (a task loss without targets, an unknown output in "loss") before anything runs.
    const objectiveDescription = data ? describeObjective(buildObjective(model, data, objective)) : undefined;
    if (objectiveDescription) emit({ type: 'log', level: 'info', message: `Training objective: ${objectiveDescription}` });
    const dataSummary = summarizeData(config.data, data);
    if (dataSummary) emit({ type: 'data', data: dataSummary, objective: objectiveDescription });

    const initialStats = layerStats(model, graph);
    emit({ type: 'layers', phase: 'load', step: 0, layers: initialStats.layers, totals: initialStats.totals });

    if (options.dryRun) {
      // A latency target plans with the latency table (cached beside the config, so the run then reads it).
      if (wantsLatencyTable(config)) emit({ type: 'log', level: 'info', message: describeLatencyTable(await prepareLatencyTarget(config, model, graph, signal)) });
      const done = await dryRun(config, model, graph, costBefore, backend, sessionId, startedAt, emit);
      progress.finish();
      return done;
    }

    emit({ type: 'phase', phase: 'evaluate', message: data ? `Evaluating the dense model on ${data.validationSize} validation samples` : 'Measuring the dense model' });
    progress.enter('timeDense', 'measuring the dense model');
    const latencyBefore = await measureLatency(model, { ...config.latency, ...timing('measuring the dense model', 0, 0.3) });
    checkCancelled();
    // Each layer alone, before the method touches the model: the "why not faster" note compares them with the pruned model's.
    const layerTimesBefore = await measureLayerLatency(model, { batchSize: config.latency.batchSize, signal, ...layerTiming(0.3, 1) });
    checkCancelled();
    // A latency target: each layer timed at several widths, so the cost model predicts latency for the method's selection.
    if (wantsLatencyTable(config)) progress.update(1, 'timing each layer at several widths (latency table)');
    const latencyTable = wantsLatencyTable(config) ? await prepareLatencyTarget(config, model, graph, signal) : undefined;
    if (latencyTable) emit({ type: 'log', level: 'info', message: describeLatencyTable(latencyTable) });
    checkCancelled();
    // The goal is on the whole model's time: the method gets the table reduction a whole-model calibration says meets it.
    const calibrated = latencyTable ? await calibrateLatencyTarget(config, model, graph, latencyTable) : undefined;
    if (calibrated) emit({ type: 'log', level: 'info', message: describeLatencyCalibration(calibrated) });
    const calibration = calibrated && !('skipped' in calibrated) ? calibrated : undefined;
    const methodConfig: PruneConfig = calibration ? { ...config, target: { latencyReduction: calibration.tableGoal } } : config;
    checkCancelled();
    // Before the method touches the weights: the imported runtime model against the original file in ONNX Runtime.
    onnxCheck = loaded.onnx ? await OnnxRuntimeSession.start(config, loaded, data, emit) : undefined;
    checkCancelled();
    progress.enter('evaluateDense', data ? `evaluating the dense model on ${data.validationSize} samples` : 'no data to evaluate');
    const accuracyBefore = data ? await evaluateModel(model, data, undefined, signal, objective) : undefined;

    progress.enter('method', `running ${methodLabel(config.method)}`);
    emit({ type: 'phase', phase: 'train', message: `Running ${config.method}` });
    if (config.allocation === 'sensitivity' && data) progress.update(0, 'measuring each channel group\'s sensitivity (10%…90% removed)');
    const sensitivity = config.allocation === 'sensitivity' && data ? await measureSensitivity(config, model, data, loaded, objective, emit, signal) : undefined;
    let allocation: Allocation | undefined;
    const context = createMethodContext({ config: methodConfig, model, graph, data, emit, signal, progress, onMemoryPlan: memory.onPlan, objective, sensitivity, onAllocation: (a) => { allocation = a; } });
    const decision = await method.run(context);
    checkCancelled();
    if (context.model !== model) disposables.push(context.model);

    progress.enter('prune', 'removing channels');
    emit({ type: 'phase', phase: 'prune', message: 'Removing channels physically' });
    let pruned: tf.LayersModel;
    let channelsRemoved: number;
    const notes = [...(decision.notes ?? [])];
    if (allocation && sensitivity) notes.push(`${describeAllocation(allocation, sensitivity.metric.name)}.`);
    let roundTo = config.roundTo ?? 1;
    let rounded = false;
    if (decision.kind === 'units') {
      if (roundTo === 'auto') roundTo = await chooseAutoRound(context.model, graph, decision.remove, config.latency.batchSize, notes, emit);
      const remove = roundTo > 1 ? roundRemoval(context.model, graph, decision.remove, roundTo, methodConfig.target, notes, emit) : decision.remove;
      rounded = remove.length !== decision.remove.length;
      pruned = await removeUnits(context.model, graph, remove);
      channelsRemoved = remove.length;
    } else {
      pruned = decision.model;
      channelsRemoved = decision.channelsRemoved;
      if (roundTo === 'auto' || roundTo > 1) notes.push(`"roundTo": ${JSON.stringify(roundTo)} was not applied: ${config.method} rebuilds the model rather than removing channels, so its widths are as it chose them.`);
    }
    disposables.push(pruned);
    const prunedGraph = analyzeModel(pruned, { exclude: config.exclude });
    const afterStats = layerStats(pruned, prunedGraph);
    const merged = mergeKept(initialStats.layers, afterStats.layers, decision.kind === 'model' ? decision.layerParts : undefined);
    const keptChannels = decision.kind === 'units'
      ? initialStats.totals.prunableChannels - channelsRemoved
      : merged.filter((l) => l.status !== 'blocked').reduce((sum, l) => sum + Math.min(l.kept, l.channels), 0);
    emit({ type: 'layers', phase: 'prune', step: 0, layers: merged, totals: { ...afterStats.totals, keptChannels, prunableChannels: initialStats.totals.prunableChannels } });
    // Fine-tuning changes weights, not shapes: this is the pruned model's final cost.
    const costAfter = countCost(pruned);
    for (const [kind, metric, label] of [['flopsReduction', 'flops', 'FLOPs'], ['paramsReduction', 'params', 'Parameters']] as const) {
      const goal = (config.target as Partial<Record<typeof kind, number>>)[kind];
      const reached = 1 - costAfter[metric] / costBefore[metric];
      // Rounding kept channels up lands below the goal on purpose; its note gives both reductions.
      if (goal === undefined || Math.abs(reached - goal) <= LANDING_TOLERANCE || (rounded && reached < goal)) continue;
      const reachable = maxReachable(graph, model, kind);
      const nearest = nearestReachable(graph, model, kind, goal);
      const percent = (x: number) => `${(x * 100).toFixed(1)}%`;
      const why = Math.abs(nearest - goal) <= LANDING_TOLERANCE
        ? `whole channels can land at ${percent(nearest)}, but ${config.method} removed others`
        : reachable < goal
          ? `at most ${percent(reachable)} is reachable: the rest of the model is blocked or must keep a channel per group`
          : `no removal set of whole channels lands within ${LANDING_TOLERANCE * 100} points; the nearest is ${percent(nearest)}`;
      emit({ type: 'warning', message: `${label} reduced by ${percent(reached)}, target ${percent(goal)}: ${why}` });
    }

    const history: EvalResult[] = [];
    const finetunes = Boolean(data && config.finetune && config.finetune.epochs > 0);
    // The dense model's batch-norm statistics no longer fit the layers after a cut: re-estimated on training samples first.
    if (data) notes.push(...await recalibrationNotes(config, pruned, data, signal));
    // Right after pruning, before fine-tuning: what fine-tuning then buys is measured, not assumed.
    if (data && finetunes) progress.update(0.5, 'evaluating the pruned model before fine-tuning');
    const accuracyPruned = data && finetunes ? await evaluateModel(pruned, data, undefined, signal, objective) : undefined;
    checkCancelled();
    if (data && config.finetune && finetunes) {
      emit({ type: 'phase', phase: 'finetune', message: `Fine-tuning for ${config.finetune.epochs} epoch(s)` });
      const finetuneContext = createMethodContext({ config, model: pruned, graph: prunedGraph, data, emit, signal, progress, onMemoryPlan: memory.onPlan, objective });
      const result = await finetuneContext.train(config.finetune, {}, 'finetune');
      if (result) history.push(result);
    }
    checkCancelled();

    progress.enter('evaluate', data ? `evaluating the pruned model on ${data.validationSize} samples` : 'measuring the pruned model');
    const accuracyAfter = data ? await evaluateModel(pruned, data, undefined, signal, objective) : undefined;
    const latencyAfter = await measureLatency(pruned, { ...config.latency, ...timing('measuring the pruned model', 0.4, 0.6) });
    const layerTimesAfter: LayerLatencyResult = 'skipped' in layerTimesBefore ? layerTimesBefore : await measureLayerLatency(pruned, { batchSize: config.latency.batchSize, signal, ...layerTiming(0.6, 1) });
    checkCancelled();

    progress.enter('save', `writing ${config.output}`);
    emit({ type: 'phase', phase: 'save', message: `Writing ${config.output}` });
    checkCancelled();
    // Encoded before the report is built, so the report can give the bytes that will be on disk.
    // The inference form is built once: written by the export and timed here.
    const prunedForm = config.export?.includes('inference') ? toInferenceForm(pruned) : undefined;
    let encoded: SessionOutput;
    let inferenceLatency: InferenceFormLatency | undefined;
    try {
      encoded = await encodeSessionOutput(pruned, loaded, config.model, config.export ?? [], prunedForm?.model);
      if (prunedForm) inferenceLatency = await timeInferenceForm(model, pruned, prunedForm, config.latency, notes);
    } finally {
      prunedForm?.model.dispose();
    }
    notes.push(...encoded.notes);
    const tfjsLatency: LatencyComparison = { before: latencyBefore, after: latencyAfter, speedup: speedup(latencyBefore, latencyAfter) };
    checkCancelled();
    const onnxResult = onnxCheck ? await onnxCheck.finish(pruned, encoded.onnxBytes) : undefined;
    checkCancelled();
    if (loaded.onnx && !onnxCheck) notes.push(`Latency was timed in TF.js (${latencyBefore.backend}), not in ONNX Runtime: install onnxruntime-node to time the .onnx files where they run and check the import against ONNX Runtime.`);
    if (onnxResult?.notes) notes.push(...onnxResult.notes);
    const latency = onnxResult?.latency
      ? { ...onnxResult.latency, runtime: ONNX_RUNTIME, tfjs: tfjsLatency }
      : { ...tfjsLatency, runtime: latencyBefore.backend };
    if (inferenceLatency) Object.assign(latency, { inferenceForm: inferenceLatency });
    if (latencyWithinNoise(latency.before, latency.after)) {
      notes.push(`The pruned model's latency is within the measurement noise of the dense model's on ${latency.runtime}: interquartile ranges ${formatLatencyRange(latency.before)} dense and ${formatLatencyRange(latency.after)} pruned overlap (${latency.after.runs} runs of batch ${latency.after.batchSize}); more "latency.runs" or a larger "latency.batchSize" can separate them.`);
    }
    const latencyTarget = latencyTable && 'latencyReduction' in config.target
      ? compareLatencyTarget(model, pruned, latencyTable, config.target.latencyReduction, latencyBefore, latencyAfter, calibration)
      : undefined;
    if (latencyTarget) {
      const note = latencyTargetNote(latencyTarget);
      notes.push(note);
      emit({ type: 'log', level: latencyTarget.withinNoise ? 'info' : 'warn', message: note });
      // The method aims at the table's goal; it missed when its selection lands off that (the line can stretch the gap).
      const missedBy = calibration ? latencyTarget.tablePredicted - calibration.tableGoal : latencyTarget.predicted - latencyTarget.goal;
      if (Math.abs(missedBy) > LANDING_TOLERANCE && !rounded) {
        const tableReachable = maxReachable(graph, model, 'latencyReduction');
        const reachable = calibration ? calibratedReduction(calibration, tableReachable) : tableReachable;
        emit({ type: 'warning', message: `Latency reduced by ${(latencyTarget.predicted * 100).toFixed(1)}% as predicted, target ${(latencyTarget.goal * 100).toFixed(1)}%: ${reachable < latencyTarget.goal ? `at most ${(reachable * 100).toFixed(1)}% is reachable: layers pruning does not narrow keep their time` : `${config.method} removed other channels`}` });
      }
    }
    if (latency.speedup < 0.95) {
      emit({ type: 'warning', message: `The pruned model measured ${latency.after.medianMs.toFixed(2)} ms against ${latency.before.medianMs.toFixed(2)} ms dense on ${latency.runtime} (batch ${latency.after.batchSize}): fewer FLOPs, but ${pruned.layers.length > model.layers.length ? `${pruned.layers.length - model.layers.length} more layers to run` : 'no faster here'}. Try a larger latency batch or another method.` });
    }
    const speed = sessionSpeed({
      speedup: latency.speedup,
      before: { model, cost: costBefore, times: layerTimesBefore },
      after: { model: pruned, cost: costAfter, times: layerTimesAfter },
      layerParts: decision.kind === 'model' ? decision.layerParts : undefined,
      method: config.method,
    });
    const speedNote = 'skipped' in speed ? `${speedHeadline(latency.speedup, costBefore.flops, costAfter.flops)}. ${speed.skipped}` : speed.explanation.note;
    notes.push(speedNote);
    const untimed = [layerTimesBefore, layerTimesAfter].flatMap((t) => ('failed' in t ? t.failed : []));
    const done: DoneEvent = {
      type: 'done',
      sessionId,
      method: config.method,
      output: join(config.output, encoded.modelFile),
      report: join(config.output, 'pruning-report.json'),
      before: { params: costBefore.params, flops: costBefore.flops },
      after: { params: costAfter.params, flops: costAfter.flops },
      accuracy: accuracyBefore?.accuracy !== undefined && accuracyAfter?.accuracy !== undefined ? { before: accuracyBefore.accuracy, after: accuracyAfter.accuracy } : undefined,
      metric: accuracyBefore && accuracyAfter ? {
        name: accuracyBefore.metric.name,
        higherIsBetter: accuracyBefore.metric.higherIsBetter,
        before: accuracyBefore.metric.value,
        ...(accuracyPruned ? { afterPruning: accuracyPruned.metric.value } : {}),
        after: accuracyAfter.metric.value,
        objective: objectiveDescription,
      } : undefined,
      data: summarizeData(config.data, data),
      latency,
      speed: { efficiency: efficiency(latency.speedup, costBefore.flops, costAfter.flops), note: speedNote },
      ...('skipped' in speed ? {} : { layerLatency: layerLatencySummary(speed.explanation, speed.timing) }),
      onnx: onnxResult?.check,
      size: { before: loaded.fileBytes, after: encoded.modelBytes },
      channelsRemoved,
      physicallyRemoved: true,
      backend,
      wallTimeMs: Date.now() - startedAt,
      memory: memory.summary(),
    };
    const storedAs = [...new Set(loaded.quantization.values())].filter((d) => d !== 'float32').join(', ');
    if (storedAs) notes.push(`Weights stored quantized in the input model (${storedAs}) are saved the same way, requantized from the pruned values.`);
    progress.enter('report', 'writing the report');
    const report = buildReport({ config, allocation, latencyTarget, backendChoice, done, costBefore, costAfter, layersBefore: initialStats.layers, graphAfter: prunedGraph, modelAfter: pruned, notes, history, speed: 'skipped' in speed ? speed : { ...speed, failed: [...new Set(untimed)] } });
    // The report is part of the same atomic write as the model: the folder is complete or absent.
    await writeFolderAtomic(config.output, encoded.modelFile, { ...encoded.files, 'pruning-report.json': JSON.stringify(report, null, 2) + '\n' });
    progress.finish();
    return done;
  } finally {
    onnxCheck?.dispose();
    for (const m of new Set(disposables)) {
      try { m.dispose(); } catch { /* already disposed */ }
    }
  }
}

function loadActivity(config: PruneConfig): string {
  return config.data ? 'loading the data' : 'analysing the model';
}

/** `"roundTo": "auto"`: times the largest prunable conv at widths around its planned kept count and notes the multiple chosen. */
async function chooseAutoRound(model: tf.LayersModel, graph: ChannelGraph, remove: readonly number[], batchSize: number, notes: string[], emit: (event: EngineEvent) => void): Promise<number> {
  const choice = await measureAutoRound(model, graph, remove, unitNorms(model, graph, 'l2'), batchSize);
  notes.push(choice.note);
  emit({ type: 'log', level: 'info', message: choice.note });
  return choice.multiple;
}

/**
 * The method's removal with every group's kept channels rounded to a multiple of `roundTo`
 * (`roundKeptChannels`, scored by L2 norms of the current, trained weights): up first, then down
 * where needed to keep the method's reduction of what the target counts (params for a params
 * target, FLOPs otherwise). Notes the reduction before and after.
 */
function roundRemoval(model: tf.LayersModel, graph: ChannelGraph, remove: readonly number[], roundTo: number, target: PruneConfig['target'], notes: string[], emit: (event: EngineEvent) => void): number[] {
  const tracker = new CostTracker(model, graph);
  const counted = targetKind(target) === 'paramsReduction' ? 'params' : 'flops';
  const rounded = roundKeptChannels(graph, unitNorms(model, graph, 'l2'), remove, roundTo, { reduction: (units) => tracker.reductionWithout(units)[counted] });
  const selected = new Set(remove);
  const givenBack = remove.filter((u) => !rounded.includes(u)).length;
  const added = rounded.filter((u) => !selected.has(u)).length;
  if (givenBack === 0 && added === 0) return rounded;
  const percent = (x: number) => `${(x * 100).toFixed(1)}%`;
  const label = counted === 'flops' ? 'FLOPs' : 'Parameter';
  const note = `Kept channels rounded to multiples of ${roundTo} ("roundTo"): ${givenBack} removed channel(s) given back (largest L2 norms first) and ${added} more removed (smallest first); ${label} reduction ${percent(tracker.reductionWithout(remove)[counted])} as selected, ${percent(tracker.reductionWithout(rounded)[counted])} after rounding.`;
  notes.push(note);
  emit({ type: 'log', level: 'info', message: note });
  return rounded;
}

/**
 * Collects each training phase's memory plan (the micro-batch it used last: a phase that runs
 * again, or a step retried in smaller micro-batches, keeps one entry) and says when batches split.
 */
function memoryRecorder(emit: (event: EngineEvent) => void): { onPlan: (plan: MemoryPlan, phase: string) => void; summary: () => MemorySummary } {
  const phases: MemorySummary['phases'] = [];
  return {
    onPlan(plan, phase) {
      const entry = { phase, batchSize: plan.batchSize, microBatchSize: plan.microBatchSize, plannedBytes: plan.trainingBytes };
      const at = phases.findIndex((p) => p.phase === phase && p.batchSize === plan.batchSize);
      if (at >= 0 && phases[at].microBatchSize === plan.microBatchSize) return;
      if (at >= 0) phases[at] = entry;
      else phases.push(entry);
      if (plan.microBatches > 1) {
        emit({ type: 'log', level: 'info', message: `${phase}: batches of ${plan.batchSize} run as ${plan.microBatches} micro-batches of ${plan.microBatchSize} (about ${formatMiB(plan.trainingBytes)} of ${formatMiB(plan.limitBytes)} in ${plan.limitWhere}); the optimiser steps on their summed gradients, batch norm normalises each micro-batch` });
      }
    },
    summary() {
      const peak = peakTensorMemory();
      return { peakBytes: peak.bytes, measure: peak.measure, limitBytes: tensorMemoryLimit().bytes, phases };
    },
  };
}

/**
 * An ONNX model measured where it runs, when onnxruntime-node is installed: the original file's
 * latency and the imported runtime model's outputs against it (`start`, before any weight changes),
 * then the written pruned file's latency and outputs against the pruned runtime model (`finish`).
 */
class OnnxRuntimeSession {
  private constructor(
    private readonly config: PruneConfig,
    private readonly inputs: tf.Tensor,
    private readonly inputsText: string,
    private readonly before: LatencySummary | undefined,
    private readonly imported: OutputAgreement | undefined,
    /** What ONNX Runtime could not do, for the report's notes (each also emitted as a warning). */
    private readonly problems: string[],
    private readonly emit: (event: EngineEvent) => void,
  ) {}

  /** Undefined when onnxruntime-node is not installed (or does not load here). */
  static async start(config: PruneConfig, loaded: LoadedModel, data: Dataset | undefined, emit: (event: EngineEvent) => void): Promise<OnnxRuntimeSession | undefined> {
    if (!(await onnxRuntime())) return undefined;
    const model = loaded.model;
    // Real samples when there are some: random ones can miss what real inputs exercise.
    const batch = data ? (data.validationSize > 0 ? await firstBatch(data.validationBatches(8)) : await data.calibration(8)) : undefined;
    if (batch) for (const t of batch.y ?? []) t.dispose();
    const inputs = batch?.x ?? randomRuntimeInput(model, 4);
    const inputsText = batch ? `${inputs.shape[0]} ${data!.validationSize > 0 ? 'validation' : 'training'} samples` : `${inputs.shape[0]} random inputs`;
    const problems: string[] = [];
    const before = await attempt(problems, emit, 'time the original file', () => measureOnnxLatency(config.model, onnxInputShape(model), config.latency));
    const imported = await attempt(problems, emit, 'run the original file', () => compareWithOnnxRuntime(model, config.model, inputs));
    return new OnnxRuntimeSession(config, inputs, inputsText, before, imported, problems, emit);
  }

  /** Times and checks the written file; the latency pair only when both files were timed in ONNX Runtime. */
  async finish(pruned: tf.LayersModel, written: Uint8Array | undefined): Promise<{ latency?: LatencyComparison; check?: OnnxRuntimeCheck; notes: string[] }> {
    const notes = this.problems;
    try {
      let after: LatencySummary | undefined;
      let prunedAgreement: OutputAgreement | undefined;
      if (written) {
        after = await attempt(notes, this.emit, 'time the written file', () => measureOnnxLatency(written, onnxInputShape(pruned), this.config.latency));
        prunedAgreement = await attempt(notes, this.emit, 'run the written file', () => compareWithOnnxRuntime(pruned, written, this.inputs));
      }
      const check: OnnxRuntimeCheck | undefined = this.imported && {
        ...this.imported, runtime: ONNX_RUNTIME, samples: this.inputs.shape[0], inputs: this.inputsText, ...(prunedAgreement ? { pruned: prunedAgreement } : {}),
      };
      const latency = this.before && after ? { before: this.before, after, speedup: speedup(this.before, after) } : undefined;
      return { latency, check, notes };
    } finally {
      this.dispose();
    }
  }

  dispose(): void {
    if (!this.inputs.isDisposed) this.inputs.dispose();
  }
}

/** Runs one ONNX Runtime step; a failure becomes a warning and a note, not the session's end. */
async function attempt<T>(problems: string[], emit: (event: EngineEvent) => void, what: string, run: () => Promise<T>): Promise<T | undefined> {
  try {
    return await run();
  } catch (err) {
    const message = `ONNX Runtime could not ${what}: ${String((err as Error).message ?? err).split('\n')[0]}`;
    problems.push(message);
    emit({ type: 'warning', message });
    return undefined;
  }
}

/** One sample's shape as the ONNX graph takes it: [C, H, W] for an image model. */
function onnxInputShape(model: tf.LayersModel): number[] {
  return channelsFirstShape([1, ...model.inputs[0].shape.slice(1).map((d) => d ?? 1)]).slice(1);
}

async function firstBatch<T extends { x: tf.Tensor }>(batches: AsyncIterable<T>): Promise<T | undefined> {
  for await (const batch of batches) return batch;
  return undefined;
}

function speedup(before: LatencySummary, after: LatencySummary): number {
  return after.medianMs > 0 ? before.medianMs / after.medianMs : 1;
}

/**
 * Live bars show dense channels against what remains, keyed by layer name. A layer the method
 * split into parts (its decision's `layerParts`) keeps the channels of its parts.
 */
function mergeKept(before: LayerStat[], after: LayerStat[], layerParts: Record<string, string[]> = {}): LayerStat[] {
  const afterByName = new Map(after.map((l) => [l.name, l]));
  return before.map((l) => {
    const same = afterByName.get(l.name);
    if (same) return { ...same, channels: l.channels, kept: same.channels };
    const groups = (layerParts[l.name] ?? []).flatMap((name) => afterByName.get(name) ?? []);
    if (groups.length === 0) return { ...l, kept: 0 };
    const kept = groups.reduce((sum, g) => sum + g.channels, 0);
    return { ...l, kept, params: groups.reduce((sum, g) => sum + g.params, 0), flops: groups.reduce((sum, g) => sum + g.flops, 0) };
  });
}

async function dryRun(config: PruneConfig, model: tf.LayersModel, graph: ChannelGraph, costBefore: { params: number; flops: number }, backend: string, sessionId: string, startedAt: number, emit: (e: EngineEvent) => void): Promise<DoneEvent> {
  // A dry run plans with the magnitude baseline: it shows what the target means for this model without training.
  // Without the curves (measuring them is the expensive part) a dry run plans sensitivity allocation globally.
  const planConfig: PruneConfig = config.allocation === 'sensitivity' ? { ...config, allocation: 'global', scope: 'global' } : config;
  const plan = await magnitudePlan(createMethodContext({ config: planConfig, model, graph }));
  // A dry run times nothing: "auto" previews unrounded widths.
  const roundTo = config.roundTo === 'auto' ? 1 : config.roundTo ?? 1;
  const remove = plan.kind !== 'units' ? [] : roundTo > 1 ? roundKeptChannels(graph, unitNorms(model, graph, 'l2'), plan.remove, roundTo) : plan.remove;
  const stats = layerStats(model, graph, { removed: remove });
  emit({ type: 'layers', phase: 'prune', step: 0, layers: stats.layers, totals: stats.totals });
  return {
    type: 'done',
    sessionId,
    method: config.method,
    before: { params: costBefore.params, flops: costBefore.flops },
    after: { params: stats.totals.params, flops: stats.totals.flops },
    channelsRemoved: remove.length,
    physicallyRemoved: false,
    backend,
    wallTimeMs: Date.now() - startedAt,
    dryRun: true,
  };
}

/**
 * The dense model's sensitivity curves for `"allocation": "sensitivity"`: default ratios, a bounded
 * sample of the validation data, the session's objective, cached beside the config.
 */
async function measureSensitivity(config: PruneConfig, model: tf.LayersModel, data: Dataset, loaded: LoadedModel, objective: ObjectiveOptions, emit: (event: EngineEvent) => void, signal: AbortSignal): Promise<SensitivityReport> {
  emit({ type: 'log', level: 'info', message: 'Allocation from sensitivity: measuring each channel group at 10%…90% removed' });
  const started = Date.now();
  const report = await analyzeSensitivity(model, data, { exclude: config.exclude, objective, signal, cacheDir: defaultCacheDir(config.configPath), modelPath: loaded.path });
  emit({ type: 'log', level: 'info', message: `Sensitivity of ${report.groups.length} groups on ${report.samples} samples (${report.metric.name}) in ${((Date.now() - started) / 1000).toFixed(1)} s` });
  return report;
}

/**
 * The dense and the pruned model timed in inference form (batch norms folded, ReLUs fused), as the
 * `inference` export writes it: what pruning buys where the model is deployed that way.
 */
async function timeInferenceForm(dense: tf.LayersModel, pruned: tf.LayersModel, prunedForm: InferenceForm, latency: { runs: number; batchSize: number }, notes: string[]): Promise<InferenceFormLatency> {
  const denseForm = toInferenceForm(dense);
  try {
    const before = await measureLatency(denseForm.model, latency);
    const after = await measureLatency(prunedForm.model, latency);
    const result = { before, after, speedup: speedup(before, after), folded: prunedForm.folded.length, fused: prunedForm.fused.length, layers: prunedForm.model.layers.length };
    notes.push(`In inference form (${result.folded} batch norms folded into the layers before them, ${result.fused} ReLUs fused into theirs: ${pruned.layers.length} → ${result.layers} layers, as written to inference/), the dense model runs in ${before.medianMs.toFixed(2)} ms and the pruned one in ${after.medianMs.toFixed(2)} ms on ${before.backend} (batch ${before.batchSize}): ${result.speedup.toFixed(2)}× faster.`);
    return result;
  } finally {
    denseForm.model.dispose();
  }
}

/**
 * Re-estimates the pruned model's batch-norm statistics where that helps, and says what was done:
 * not on synthetic data (its statistics would replace the real ones), not on fewer samples than
 * give a steadier estimate than the dense model's, not when the config turns it off.
 */
async function recalibrationNotes(config: PruneConfig, pruned: tf.LayersModel, data: Dataset, signal: AbortSignal): Promise<string[]> {
  if (!hasBatchNorm(pruned)) return [];
  const kept = 'The pruned model keeps the dense model\'s batch-norm statistics';
  if (config.recalibrateBatchNorm === false) return [`${kept} ("recalibrateBatchNorm": false).`];
  if (config.data?.format === 'synthetic') return [`${kept}: the data is synthetic, and statistics estimated on it would replace the real ones.`];
  if (data.trainSize < MIN_RECALIBRATION_SAMPLES) return [`${kept}: ${data.trainSize} training samples are too few to re-estimate them (at least ${MIN_RECALIBRATION_SAMPLES}).`];
  const used = await recalibrateBatchNorm(pruned, data, { signal });
  return [`Batch-norm statistics re-estimated on ${used} training samples after pruning, before the pruned model was measured or fine-tuned ("recalibrateBatchNorm": false keeps the dense model's).`];
}
