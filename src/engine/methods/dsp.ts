import * as tf from '@tensorflow/tfjs';
import type { Target } from '../config/types.js';
import type { MethodContext, PruningDecision } from './types.js';
import { UserError } from '../errors.js';
import { countCost } from '../metrics/index.js';
import { kernelElementFlops, layerWeight } from '../layers/index.js';
import { defineMethod } from './shared/descriptor.js';
import { settleDspOptions, type DspOptions } from './dsp/options.js';
import { currentGroups, learnGroups, regularizerValue, type GroupedLayer } from './dsp/learn.js';
import { regularizerScale } from './dsp/regularizer.js';
import { DspPlanner, groupedPairs, liveGroups, type GroupedConvPlan, type PlanLayer } from './dsp/plan.js';
import { applyPlanMasks, buildPackedModel, groupLayerName } from './dsp/pack.js';
import { describeTiming, planRealisation } from './dsp/realise.js';
import { DSP_SPARSITY_CRITERION, previewSparsity } from './dsp/sparsity.js';
import { SparsityStream } from './shared/sparsity.js';
import { channelReader, feedsResidualAdd, isPlainConv2D, isShortcutConv, privateProducer, readsModelInput, spatialShapes } from './dsp/topology.js';

/**
 * DSP: dynamic structure pruning (Park et al., AAAI 2023; algorithms.md §4). The filters of
 * every regrouped conv are assigned to G learned groups; a group regulariser drives whole
 * (group, input channel) kernel slices to zero; each group then keeps its own input channels.
 * How the layer is rebuilt is an engineering choice (`dsp/realise.ts`): per-group convolutions, or
 * one conv over the union of the groups' inputs with the dropped slices kept as zeros, whichever
 * costs least when timed on the session's backend; the outputs are the same.
 */

type Layer = tf.layers.Layer;

/**
 * Convs DSP regroups: plain 2-D convs of any kernel size with at least `groups` filters, minus
 * excluded layers and (by default) the stem and shortcut projections. Depthwise convs are never
 * regrouped: they follow the channels of the conv that feeds them.
 */
export function dspLayers(model: tf.LayersModel, options: DspOptions, exclude: string[]): Layer[] {
  return model.layers.filter((layer) => {
    if (!isPlainConv2D(layer) || exclude.includes(layer.name)) return false;
    const [kh, kw, , filters] = layer.getWeights()[0].shape;
    if (options.skipPointwise && kh * kw === 1) return false;
    if (options.skipStem && readsModelInput(layer)) return false;
    if (options.skipShortcut && isShortcutConv(layer)) return false;
    return filters >= options.groups;
  });
}

/** Kernel energy Σ_{kh,kw} W² at [c · N + j]. */
function kernelEnergy(layer: Layer): Float64Array {
  return Float64Array.from(tf.tidy(() => tf.sum(tf.square(layer.getWeights()[0]), [0, 1]).dataSync()));
}

/** What the planner needs about the regrouped layers and the convs that feed them privately. */
export function planLayers(model: tf.LayersModel, grouped: Layer[], groupOf: number[][], options: DspOptions, exclude: string[]): PlanLayer[] {
  const cost = countCost(model);
  const describe = (layer: Layer, assignment?: number[]): PlanLayer => {
    const [, , inChannels, filters] = layer.getWeights()[0].shape;
    const producer = privateProducer(layer);
    const shapes = spatialShapes(layer);
    const reader = channelReader(layer);
    const readable = reader && ![reader.layer, ...reader.depthwise].some((name) => exclude.includes(name)) ? reader : undefined;
    return {
      name: layer.name,
      inChannels,
      filters,
      pairFlops: cost.layers[layer.name].flops / (inChannels * filters),
      energy: kernelEnergy(layer),
      groupOf: assignment,
      groups: options.groups,
      filterPruning: Boolean(assignment) && options.filterPruning && feedsResidualAdd(layer),
      privateProducer: producer && !exclude.includes(producer.name) ? producer.name : undefined,
      // A 1×1 conv's FLOPs per (input, output) pair, at this layer's input and output resolution.
      selectionPairFlops: kernelElementFlops([null, ...shapes.input]),
      scatterPairFlops: kernelElementFlops([null, ...shapes.output]),
      reader: readable,
      depthwiseChannelFlops: readable?.depthwise.reduce((sum, name) => sum + cost.layers[name].flops / filters, 0),
    };
  };
  const layers = grouped.map((layer, i) => describe(layer, groupOf[i]));
  const names = new Set(layers.map((l) => l.name));
  // Producers that are not regrouped can still lose filters nobody reads.
  for (const layer of [...layers]) {
    if (layer.privateProducer && !names.has(layer.privateProducer)) {
      names.add(layer.privateProducer);
      layers.push(describe(model.getLayer(layer.privateProducer)));
    }
  }
  return layers;
}

/** Per-layer summary of a plan for the `signal` stream. */
export function planDetail(plans: GroupedConvPlan[], planner: DspPlanner): Record<string, unknown> {
  const detail: Record<string, unknown> = {};
  for (const plan of plans) {
    const groups = plan.inputsOfGroup.map((inputs, g) => ({ filters: plan.groupOfFilter.flatMap((grp, j) => (grp === g ? [j] : [])), inputs }))
      .filter((g) => g.filters.length > 0);
    detail[plan.layer] = {
      groups,
      removedFilters: plan.groupOfFilter.flatMap((g, j) => (g < 0 ? [j] : [])),
      flops: planner.layerFlops(plan.layer, plans),
      packedOutput: Boolean(plan.packedOutput),
      denseFlops: planner.layerFlops(plan.layer),
    };
  }
  return detail;
}

/** Removed (group, input channel) kernel slices of live groups, plus removed filters. */
function removedStructures(model: tf.LayersModel, plans: GroupedConvPlan[]): number {
  return plans.reduce((sum, plan) => {
    const inChannels = model.getLayer(plan.layer).getWeights()[0].shape[2] as number;
    const live = new Set(plan.groupOfFilter.filter((g) => g >= 0));
    let slices = 0;
    for (const g of live) slices += inChannels - plan.inputsOfGroup[g].length;
    return sum + slices + plan.groupOfFilter.filter((g) => g < 0).length;
  }, 0);
}

/** The layers of the packed model that hold each regrouped conv's channels: its per-group convolutions. */
function groupLayers(packed: tf.LayersModel, plans: GroupedConvPlan[]): Record<string, string[]> {
  const names = new Set(packed.layers.map((layer) => layer.name));
  return Object.fromEntries(plans.map((plan) => [plan.layer, plan.inputsOfGroup.map((_, g) => groupLayerName(plan.layer, g)).filter((name) => names.has(name))]));
}

export const dspMethod = defineMethod({
  name: 'dsp',
  training: 'optional',
  targets: ['flopsReduction'],
  settle: settleDspOptions,
  async run(ctx: MethodContext, options: DspOptions): Promise<PruningDecision> {
    const { config, model } = ctx;
    // The session admits only the descriptor's target kinds.
    const target = config.target as Extract<Target, { flopsReduction: number }>;
    const grouped = dspLayers(model, options, config.exclude);
    if (!grouped.length) {
      throw new UserError(`no conv layer DSP can regroup into ${options.groups} groups`, { file: config.configPath, field: 'dsp.groups',
        fix: 'DSP regroups Conv2D layers (1×1 included) with at least `groups` filters, other than the stem and shortcut projections; lower dsp.groups or check "exclude"' });
    }

    // Input size relative to the first regrouped layer's input, as the official scale uses.
    const inputSize = (layer: Layer) => spatialShapes(layer).input.reduce((a, b) => a * b, 1);
    const reference = inputSize(grouped[0]);
    const layers: GroupedLayer[] = grouped.map((layer) => {
      const [kh, , , filters] = layer.getWeights()[0].shape;
      return {
        name: layer.name,
        kernel: layerWeight(layer, 'kernel')!,
        filters,
        scale: regularizerScale(inputSize(layer) / reference, kh, options.groups, filters),
        theta: tf.variable(tf.zeros([options.groups, filters]), true, `dsp_theta_${layer.name}_${Date.now()}_${Math.floor(ctx.random() * 1e9)}`) as tf.Variable<tf.Rank.R2>,
      };
    });
    const notes: string[] = [];

    try {
      const settings = config.train;
      if (ctx.data && settings && settings.epochs > 0) {
        ctx.emit({ type: 'phase', phase: 'train', message: `DSP group learning: ${layers.length} conv layers, ${options.groups} groups each` });
        // Live sparsity: the plan the FLOPs target gives at the current weights and assignment (no timing, no random draws).
        const sparsity = new SparsityStream(ctx, dspMethod.name, DSP_SPARSITY_CRITERION);
        const denseFlops = countCost(model).flops;
        const planned = () => previewSparsity(ctx.graph, () => new DspPlanner(planLayers(model, grouped, currentGroups(layers, options.groups), options, config.exclude), { layerCostFlops: options.layerCostFlops }),
          denseFlops, denseFlops * (1 - target.flopsReduction), (name) => model.getLayer(name).getWeights()[0].shape[2] as number);
        await learnGroups((hooks) => ctx.train(settings, { ...hooks, afterStep: (info) => sparsity.step(info, planned) }, 'train'), options, layers, ctx.random, ({ epoch }) => {
          sparsity.report(planned(), { epoch });
          const assignment = currentGroups(layers, options.groups);
          const detail: Record<string, unknown> = {};
          layers.forEach((l, i) => {
            const sizes = new Array<number>(options.groups).fill(0);
            assignment[i].forEach((g) => sizes[g]++);
            detail[l.name] = { groupSizes: sizes, groupOfFilter: assignment[i] };
          });
          ctx.emit({ type: 'signal', method: dspMethod.name, name: 'groupAssignment', step: epoch, value: regularizerValue(layers, options.groups), detail });
          ctx.reportLayers('train', epoch);
        });
      } else {
        notes.push('no group learning ran (no data or train.epochs is 0): every filter stays in group 0, so DSP prunes input channels per layer');
      }

      ctx.checkCancelled();
      ctx.emit({ type: 'phase', phase: 'prune', message: 'DSP: choosing kept input channels per group' });
      const groupOf = currentGroups(layers, options.groups);
      const planner = new DspPlanner(planLayers(model, grouped, groupOf, options, config.exclude), { layerCostFlops: options.layerCostFlops });
      const denseFlops = countCost(model).flops;
      const targetFlops = denseFlops * (1 - target.flopsReduction);
      const { beta, plans, flops, timings } = await planRealisation(model, planner, grouped.map((l) => l.name), denseFlops, targetFlops,
        { mode: options.realisation, batchSize: config.latency.batchSize, checkCancelled: () => ctx.checkCancelled() });
      if (Math.abs(flops - targetFlops) > 0.02 * targetFlops) {
        notes.push(`closest FLOPs DSP can reach is ${flops} for a target of ${Math.round(targetFlops)}`);
        ctx.emit({ type: 'warning', message: `DSP reached ${(100 * (1 - flops / denseFlops)).toFixed(1)}% FLOPs reduction, target ${(100 * target.flopsReduction).toFixed(1)}%` });
      }
      ctx.emit({ type: 'signal', method: dspMethod.name, name: 'keptChannels', step: 0, value: beta, detail: { beta, flops, denseFlops, layers: planDetail(plans, planner) } });

      applyPlanMasks(model, plans);
      ctx.reportLayers('prune', 0, true);
      const packed = await buildPackedModel(model, plans);
      const packedFlops = countCost(packed).flops;
      const asOne = plans.filter((p) => p.realisedAsOne && liveGroups(p).length > 1).length;
      notes.push(`DSP threshold β = ${beta.toPrecision(4)}; FLOPs ${denseFlops} → ${packedFlops}; ${plans.length} conv layers rebuilt, `
        + `${asOne} of them as one conv over the union of their groups' inputs (realisation "${options.realisation}")`);
      for (const plan of plans) {
        const inChannels = model.getLayer(plan.layer).getWeights()[0].shape[2] as number;
        notes.push(`${plan.layer}: ${liveGroups(plan).length} groups, ${groupedPairs(plan)} of ${plan.groupOfFilter.length * inChannels} filter·input pairs kept`
          + (plan.realisedAsOne && liveGroups(plan).length > 1 ? ', built as one conv' : ''));
      }
      const where = `timed alone on ${tf.getBackend()}, batch ${config.latency.batchSize}`;
      for (const timing of timings) {
        const plan = plans.find((p) => p.layer === timing.layer);
        if (plan) notes.push(describeTiming(timing, plan, where));
      }
      return { kind: 'model', model: packed, channelsRemoved: removedStructures(model, plans), layerParts: groupLayers(packed, plans), notes };
    } finally {
      for (const layer of layers) layer.theta.dispose();
    }
  },
});
