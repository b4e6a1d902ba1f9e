import type * as tf from '@tensorflow/tfjs';
import type { Target, TrainConfig } from '../config/types.js';
import type { MethodContext, PruningDecision } from './types.js';
import { defineMethod } from './shared/descriptor.js';
import { removeUnits } from '../surgery/index.js';
import { SubnetworkSelector, type Subnetwork } from './ocspruner/subnetwork.js';
import { StabilityTracker } from './ocspruner/stability.js';
import { SelectedChannelShrink } from './ocspruner/shrink.js';
import { continueSchedule } from './ocspruner/schedule.js';
import { formatMetricValue } from '../../protocol/format.js';
import { SparsityStream } from './shared/sparsity.js';
import { scaledEpoch } from './shared/relative.js';

/**
 * OCSPruner settings (`ocspruner` section of the config); the schema's defaults follow the official
 * CIFAR scripts. The three epochs, when absent, sit at the official scripts' share of `train.epochs`
 * (`searchEpochs`).
 */
export interface OcsprunerOptions {
  /** First epoch (0-based) at which a sub-network is chosen and the stability monitored. */
  monitorStartEpoch?: number;
  /** The shrink starts after this epoch (active from `slStartEpoch + 2`). */
  slStartEpoch?: number;
  /** Prune at the end of this epoch at the latest, stable or not. */
  slEndEpoch?: number;
  reg: number;
  regDelta: number;
  regInterval: number;
  stabilityThreshold: number;
  /** Epochs in the stability window (structures compared this many − 1 epochs apart; indicator averaged over as many). */
  stabilityWindow: number;
  layerPruneLimit: number;
  layerLimitFactor: number;
  flopsAware: boolean;
}

/** The official CIFAR schedule: 300 epochs, monitoring from epoch 2, shrink after 30, search until 110. */
const OFFICIAL_EPOCHS = 300, OFFICIAL_MONITOR_START = 2, OFFICIAL_SL_START = 30, OFFICIAL_SL_END = 110;

/**
 * The search's epochs for a run of `epochs`: each one the config sets, else the official epoch's
 * share of the run (2, 30 and 110 of 300): a fixed 30 and 110 never start the shrink nor end the
 * search inside a run of a few epochs.
 */
export function searchEpochs(options: Pick<OcsprunerOptions, 'monitorStartEpoch' | 'slStartEpoch' | 'slEndEpoch'>, epochs: number): Required<Pick<OcsprunerOptions, 'monitorStartEpoch' | 'slStartEpoch' | 'slEndEpoch'>> {
  return {
    monitorStartEpoch: options.monitorStartEpoch ?? scaledEpoch(OFFICIAL_MONITOR_START, OFFICIAL_EPOCHS, epochs),
    slStartEpoch: options.slStartEpoch ?? scaledEpoch(OFFICIAL_SL_START, OFFICIAL_EPOCHS, epochs),
    slEndEpoch: options.slEndEpoch ?? scaledEpoch(OFFICIAL_SL_END, OFFICIAL_EPOCHS, epochs),
  };
}

async function runOcspruner(ctx: MethodContext, given: OcsprunerOptions): Promise<PruningDecision> {
  // The session admits only configs with data, a training phase and a FLOPs or latency target.
  const settings = ctx.config.train;
  if (!ctx.data || !settings) throw new Error('OCSPruner prunes inside its training cycle');
  const options = { ...given, ...searchEpochs(given, Math.ceil(settings.epochs)) };
  const target = ctx.config.target as Extract<Target, { flopsReduction: number } | { latencyReduction: number }>;
  const excluded = new Set(ctx.config.exclude);
  const groups = ctx.graph.groups.filter((g) => g.units.length > 1 && !g.producers.some((p) => excluded.has(p)));
  const selector = new SubnetworkSelector(ctx.model, ctx.graph, groups, {
    target: 'latencyReduction' in target ? target.latencyReduction : target.flopsReduction,
    metric: 'latencyReduction' in target ? 'latency' : 'flops',
    layerPruneLimit: options.layerPruneLimit,
    layerLimitFactor: options.layerLimitFactor,
    flopsAware: options.flopsAware,
    // "uniform" and "sensitivity" set each group's count once, on the dense model; "global" searches a threshold each epoch.
    removedPerGroup: ctx.allocateGroups(groups),
  });
  const tracker = new StabilityTracker(options.stabilityWindow);
  const stability: number[] = [];
  let selected: Subnetwork | null = null;
  let shrink: SelectedChannelShrink | null = null;
  let reg = options.reg;
  let regActive = false;
  let indicator = 0;
  let pruneEpoch = -1;
  let stable = false;

  const searchModel = ctx.model;
  const sparsity = new SparsityStream(ctx, ocsprunerMethod.name, 'outside the epoch\'s sub-network: channels chosen for removal, shrinking under the regulariser once it is on (after the prune, the removed channels)');
  try {
    await ctx.train(settings, {
      beforeEpoch: ({ epoch }) => {
        regActive = epoch > options.slStartEpoch + 1;
        if (regActive && epoch % options.regInterval === 0) reg += options.regDelta;
        if (epoch >= options.monitorStartEpoch) {
          selected = selector.select(searchModel);
          indicator = tracker.push(selected.retained);
          shrink?.dispose();
          shrink = new SelectedChannelShrink(searchModel, ctx.graph, selected.removed);
          sparsity.report(selected.removed, { epoch });
        } else {
          indicator = tracker.skip();
        }
      },
      afterStep: (info) => {
        if (regActive && shrink) shrink.apply(1 - reg * info.learningRate);
        const current = selected as Subnetwork | null;
        if (current) sparsity.step(info, () => current.removed);
      },
      afterEpoch: ({ epoch }) => {
        stability.push(indicator);
        const current = selected as Subnetwork | null;
        ctx.emit({
          type: 'signal', method: ocsprunerMethod.name, name: 'stability', step: epoch, value: indicator,
          detail: { raw: tracker.lastRaw(), threshold: options.stabilityThreshold, reg: regActive ? reg : 0, selectedForRemoval: current?.removed.length ?? 0, plannedFlopsReduction: current?.flopsReduction ?? 0 },
        });
        ctx.reportLayers('train', epoch);
        if (!current) return;
        if (indicator >= options.stabilityThreshold) stable = true;
        if (stable || epoch > options.slEndEpoch) {
          pruneEpoch = epoch;
          return 'stop';
        }
        return undefined;
      },
    }, 'train');
  } finally {
    (shrink as SelectedChannelShrink | null)?.dispose();
  }
  ctx.checkCancelled();

  // Training ended before the search did (short schedule): prune with the latest choice, or choose now.
  if (pruneEpoch < 0) pruneEpoch = Math.ceil(settings.epochs) - 1;
  const chosen: Subnetwork = (selected as Subnetwork | null) ?? selector.select(searchModel);
  const beforePrune = await ctx.evaluate();
  const pruned = await removeUnits(searchModel, ctx.graph, chosen.removed);
  // The smaller model carries on with the rest of the same schedule: one training cycle.
  ctx.model = pruned;
  const afterPrune = await ctx.evaluate();
  sparsity.report(chosen.removed, { epoch: pruneEpoch });
  ctx.emit({
    type: 'signal', method: ocsprunerMethod.name, name: 'pruned', step: pruneEpoch, value: chosen.flopsReduction,
    detail: { stable, channelsRemoved: chosen.removed.length, accuracyBeforePrune: beforePrune?.accuracy, accuracyAfterPrune: afterPrune?.accuracy },
  });
  const tail: TrainConfig = continueSchedule(settings, pruneEpoch + 1);
  const remainingEpochs = Math.max(0, Math.ceil(settings.epochs) - (pruneEpoch + 1));
  let afterCycle;
  if (remainingEpochs > 0) afterCycle = await ctx.train(tail, {}, 'train');

  const scaled = (['monitorStartEpoch', 'slStartEpoch', 'slEndEpoch'] as const).filter((key) => given[key] === undefined);
  const notes = [
    ...(scaled.length > 0 ? [`OCSPruner: ${scaled.map((key) => `${key} ${options[key]}`).join(', ')} (the official 300-epoch schedule's share of ${Math.ceil(settings.epochs)} epochs).`] : []),
    stable
      ? `OCSPruner: the sub-network settled at epoch ${pruneEpoch} (stability ${stability[stability.length - 1]?.toFixed(4)} ≥ ${options.stabilityThreshold}); pruned there and trained ${remainingEpochs} more epoch(s).`
      : `OCSPruner: stability stayed below ${options.stabilityThreshold}; pruned at epoch ${pruneEpoch} (search limit) and trained ${remainingEpochs} more epoch(s).`,
  ];
  if (beforePrune && afterPrune) {
    const end = afterCycle ? `, after the cycle ${formatMetricValue(afterCycle.metric)}` : '';
    notes.push(`${beforePrune.metric.name} before pruning ${formatMetricValue(beforePrune.metric)}, right after pruning ${formatMetricValue(afterPrune.metric)}${end}.`);
  }
  return { kind: 'model', model: pruned as tf.LayersModel, channelsRemoved: chosen.removed.length, notes };
}

export const ocsprunerMethod = defineMethod({
  name: 'ocspruner',
  training: 'required',
  targets: ['flopsReduction', 'latencyReduction'],
  takesGroupCounts: true,
  run: runOcspruner,
});
