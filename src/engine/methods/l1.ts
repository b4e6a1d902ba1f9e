import { unitNorms } from '../metrics/norms.js';
import type { PruningMethod } from './types.js';

/**
 * The L1 baseline: a unit's importance is the mean absolute weight over every slice it owns
 * (L1 divided by the slice size, so groups with different fan-in compare fairly). One shot,
 * no data, no training.
 */
export const l1Method: PruningMethod = {
  name: 'l1',
  needsData: false,
  async run(ctx) {
    ctx.checkCancelled();
    const scores = unitNorms(ctx.model, ctx.graph, 'l1', true);
    const remove = ctx.selectUnits(scores);
    return { kind: 'units', remove, notes: [`L1 baseline: removed ${remove.length} of ${ctx.graph.units.length} channels with the smallest mean |w|`] };
  },
};
