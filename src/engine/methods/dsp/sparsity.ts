import type { SparsityEvent } from '../../../protocol/events.js';
import type { ChannelGraph } from '../../graph/types.js';
import type { DspPlanner, GroupedConvPlan } from './plan.js';

/** What DSP's live sparsity counts, for the `sparsity` event's `criterion`. */
export const DSP_SPARSITY_CRITERION = 'kernel slices (learned group × input channel) the FLOPs target drops at the current weights, per-group plan, in whole filters: dropped filter·input pairs ÷ input channels';

/**
 * Per graph group, the filters' worth of (group, input) kernel slices `plans` drop: a removed
 * filter counts whole, a kept one by the share of inputs its group no longer reads. A group fed
 * by several regrouped convs (coupled) counts the largest of them.
 */
export function dspSparsityGroups(graph: ChannelGraph, plans: readonly GroupedConvPlan[], inChannelsOf: (layer: string) => number): SparsityEvent['groups'] {
  const droppedFilters = new Map<string, number>();
  for (const plan of plans) {
    const inChannels = Math.max(1, inChannelsOf(plan.layer));
    let dropped = 0;
    for (const g of plan.groupOfFilter) dropped += g < 0 ? 1 : 1 - plan.inputsOfGroup[g].length / inChannels;
    droppedFilters.set(plan.layer, dropped);
  }
  return graph.groups.map((group) => {
    const zero = Math.max(0, ...group.producers.map((name) => droppedFilters.get(name) ?? 0));
    return { group: group.id, channels: group.channels, zero: Math.min(group.channels, Math.round(zero)) };
  });
}

/** The sparsity of the plan `planner` gives at `targetFlops`; undefined when no plan can be made at these weights. */
export function previewSparsity(graph: ChannelGraph, planner: () => DspPlanner, denseFlops: number, targetFlops: number, inChannelsOf: (layer: string) => number): SparsityEvent['groups'] | undefined {
  try {
    return dspSparsityGroups(graph, planner().bisect(denseFlops, targetFlops).plans, inChannelsOf);
  } catch {
    return undefined;
  }
}
