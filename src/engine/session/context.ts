import type * as tf from '@tensorflow/tfjs';
import type { PruneConfig, Target, TrainConfig } from '../config/types.js';
import type { ChannelGraph, ChannelGroup } from '../graph/types.js';
import type { EngineEvent, Phase } from '../../protocol/events.js';
import type { Dataset, EvalResult, TrainHooks } from '../train/types.js';
import type { ObjectiveOptions } from '../train/objective.js';
import type { MemoryPlan } from '../train/memory.js';
import type { MethodContext } from '../methods/types.js';
import { CancelledError } from '../errors.js';
import { trainModel, evaluateModel } from '../train/index.js';
import { withAugmentation } from '../data/augment.js';
import { layerStats } from '../metrics/index.js';
import { selectUnits } from '../prune/select.js';
import { allocateFromSensitivity, describeAllocation, type Allocation } from '../prune/allocate.js';
import type { SensitivityReport } from '../sensitivity/types.js';
import { analyzeModel } from '../graph/analyze.js';
import { seededRandom } from '../util/random.js';
import type { SessionProgress } from './progress.js';
import { methodLabel } from '../../protocol/methods.js';

export interface MethodContextOptions {
  config: PruneConfig;
  model: tf.LayersModel;
  graph: ChannelGraph;
  data?: Dataset;
  emit?: (event: EngineEvent) => void;
  signal?: AbortSignal;
  progress?: SessionProgress;
  /** Minimum milliseconds between unforced `layers` events. */
  layerStatsIntervalMs?: number;
  /** Called with each training phase's memory plan. */
  onMemoryPlan?: (plan: MemoryPlan, phase: Phase) => void;
  /** The config's objective and the teacher (the frozen dense model) every training phase and evaluation uses. */
  objective?: ObjectiveOptions;
  /** With `"allocation": "sensitivity"`: the dense model's curves the selection allocates from (the session measures them). */
  sensitivity?: SensitivityReport;
  /** Each allocation from sensitivity as it is made, for the report. */
  onAllocation?: (allocation: Allocation) => void;
}

/** Builds the context a pruning method runs in; the session and the tests use the same one. */
export function createMethodContext(options: MethodContextOptions): MethodContext {
  const { config, graph, data } = options;
  const emit = options.emit ?? (() => undefined);
  const signal = options.signal ?? new AbortController().signal;
  const interval = options.layerStatsIntervalMs ?? 250;
  let lastLayersAt = 0;
  let graphModel = options.model;
  let currentGraph = graph;

  const checkCancelled = () => {
    if (signal.aborted) throw new CancelledError();
  };

  const context: MethodContext = {
    config,
    model: options.model,
    graph,
    data,
    random: seededRandom(config.seed),
    emit,
    checkCancelled,
    signal,
    async train(settings: TrainConfig, hooks: TrainHooks = {}, phase: Phase = 'train'): Promise<EvalResult | undefined> {
      if (!data) return undefined;
      checkCancelled();
      const doing = phase === 'finetune' ? 'fine-tuning' : `${methodLabel(config.method)}`;
      options.progress?.enter(phase === 'finetune' ? 'finetune' : 'method', `${doing}: training`);
      // Augmentation applies to this phase's training batches only (train.augment, finetune.augment).
      const phaseData = withAugmentation(data, settings.augment, config.seed, phase === 'finetune' ? 'finetune.augment' : 'train.augment');
      return trainModel(context.model, phaseData, settings, hooks, {
        seed: config.seed,
        signal,
        phase,
        objective: options.objective ?? { config },
        onMemoryPlan: (plan) => options.onMemoryPlan?.(plan, phase),
        onStep: (s) => {
          const fraction = (s.epoch + (s.step + 1) / s.stepsPerEpoch) / Math.max(settings.epochs, 1e-9);
          // The session's one progress (the same number its progress events carry); a context without one reports the phase's.
          const progress = options.progress?.step(`${doing}: epoch ${s.epoch + 1} of ${Math.ceil(settings.epochs)}, step ${s.step + 1} of ${s.stepsPerEpoch}`) ?? fraction;
          emit({ type: 'step', phase, epoch: s.epoch, step: s.step, stepsPerEpoch: s.stepsPerEpoch, loss: s.loss, learningRate: s.learningRate, etaMs: s.etaMs, progress });
        },
        onEpoch: (e) => {
          emit({ type: 'epoch', phase, epoch: e.epoch, epochs: e.epochs, loss: e.loss, accuracy: e.accuracy, valLoss: e.valLoss, valAccuracy: e.valAccuracy, valMetric: e.valMetric, etaMs: e.etaMs, progress: options.progress?.value() ?? 0 });
        },
      });
    },
    async evaluate(): Promise<EvalResult | undefined> {
      if (!data) return undefined;
      checkCancelled();
      return evaluateModel(context.model, data, undefined, signal, options.objective ?? { config });
    },
    reportProgress(fraction: number, activity: string): void {
      options.progress?.update(fraction, activity);
    },
    reportLayers(phase: Phase, step: number, force = false): void {
      const now = Date.now();
      if (!force && now - lastLayersAt < interval) return;
      lastLayersAt = now;
      // Methods that prune inside training swap ctx.model; statistics follow the current model.
      if (context.model !== graphModel) {
        graphModel = context.model;
        currentGraph = analyzeModel(graphModel, { exclude: config.exclude });
      }
      const stats = layerStats(context.model, currentGraph);
      emit({ type: 'layers', phase, step, layers: stats.layers, totals: stats.totals });
    },
    selectUnits(scores: ArrayLike<number>, target?: Target): number[] {
      if (config.allocation === 'sensitivity') {
        // Sessions measure the curves before the method runs; a context made without them is a caller's bug.
        if (!options.sensitivity) throw new Error('"allocation": "sensitivity" needs the sensitivity report in the method context');
        const allocation = allocateFromSensitivity(graph, context.model, options.sensitivity, scores, target ?? config.target);
        emit({ type: 'log', level: 'info', message: describeAllocation(allocation, options.sensitivity.metric.name) });
        options.onAllocation?.(allocation);
        return allocation.remove;
      }
      return selectUnits(graph, context.model, scores, target ?? config.target, { scope: config.scope, maxGroupReduction: config.maxGroupReduction });
    },
    allocateGroups(groups: readonly ChannelGroup[], target?: Target): Map<number, number> | undefined {
      if (config.allocation !== 'sensitivity' && config.allocation !== 'uniform') return undefined;
      // Which channels go is the method's choice; any ranking prices a group's channels alike.
      const unranked = new Float64Array(graph.units.length);
      let remove: number[];
      if (config.allocation === 'sensitivity') {
        if (!options.sensitivity) throw new Error('"allocation": "sensitivity" needs the sensitivity report in the method context');
        const allocation = allocateFromSensitivity(graph, context.model, options.sensitivity, unranked, target ?? config.target, { groups: groups.map((g) => g.id) });
        emit({ type: 'log', level: 'info', message: describeAllocation(allocation, options.sensitivity.metric.name) });
        options.onAllocation?.(allocation);
        remove = allocation.remove;
      } else {
        // The uniform selection over the given groups only: it reads groups from the graph, costs from its units.
        remove = selectUnits({ ...graph, groups: [...groups] }, context.model, unranked, target ?? config.target, { scope: 'layer' });
      }
      const counts = new Map(groups.map((g) => [g.id, 0]));
      for (const unit of remove) counts.set(graph.units[unit].group, (counts.get(graph.units[unit].group) ?? 0) + 1);
      return counts;
    },
  };
  return context;
}
