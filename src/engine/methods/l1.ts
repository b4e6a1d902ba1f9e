import { unitNorms } from '../metrics/norms.js';
import { TARGET_KINDS } from '../config/types.js';
import type { MethodContext, PruningDecision } from './types.js';
import { defineMethod } from './shared/descriptor.js';
import { SparsityStream } from './shared/sparsity.js';

/**
 * The L1 baseline: a unit's importance is the mean absolute weight over every slice it owns
 * (L1 divided by the slice size, so groups with different fan-in compare fairly). One shot,
 * no data, no training.
 */
export async function magnitudePlan(ctx: MethodContext): Promise<PruningDecision> {
  ctx.checkCancelled();
  const scores = unitNorms(ctx.model, ctx.graph, 'l1', true);
  const remove = ctx.selectUnits(scores);
  // No training phase: one report, at selection.
  new SparsityStream(ctx, l1Method.name, 'selected for removal: the lowest mean |w| channels that meet the target').report(remove);
  return { kind: 'units', remove, notes: [`L1 baseline: removed ${remove.length} of ${ctx.graph.units.length} channels with the smallest mean |w|`] };
}

export const l1Method = defineMethod({
  name: 'l1',
  takesGroupCounts: true,
  training: 'none',
  targets: TARGET_KINDS,
  run: magnitudePlan,
});
