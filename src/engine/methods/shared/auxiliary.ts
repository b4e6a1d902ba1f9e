import type { MethodContext, PruningDecision } from '../types.js';
import { PRODUCING_ROLES, ALL_ROLES, UnitWeightLayout, disposeWeightSet, type WeightSet } from '../group-tensors.js';

/**
 * What the auxiliary-variable methods (GoPrune's U, SSR's F) share: which weight slices make a
 * group, per-layer group statistics, and the decision from the auxiliary variable's group norms.
 */

/** Which slices of a channel unit form its group vector: the producers' only, or every slice it owns. */
export type GroupSlices = 'producer' | 'all';

export function layoutRoles(groupSlices: GroupSlices) {
  return groupSlices === 'all' ? ALL_ROLES : PRODUCING_ROLES;
}

/** Per-layer zero-group counts and mean group norms, keyed by each group's first producer. */
export function perLayerGroupStats(ctx: MethodContext, unitIds: readonly number[], norms: ArrayLike<number>): Record<string, { zeroGroups: number; groups: number; meanNorm: number }> {
  const stats: Record<string, { zeroGroups: number; groups: number; meanNorm: number }> = {};
  unitIds.forEach((unitId, i) => {
    const group = ctx.graph.groups[ctx.graph.units[unitId].group];
    const name = group.producers[0] ?? group.members[0];
    const entry = (stats[name] ??= { zeroGroups: 0, groups: 0, meanNorm: 0 });
    entry.groups++;
    if (norms[i] === 0) entry.zeroGroups++;
    entry.meanNorm += norms[i];
  });
  for (const entry of Object.values(stats)) entry.meanNorm /= Math.max(entry.groups, 1);
  return stats;
}

/**
 * Scores for the shared selection from the auxiliary (sparse) variable's group norms:
 * non-zero groups score their norm; zero groups score below every non-zero one, ordered by
 * the current weights' norms so ties break by magnitude. A norm-threshold target sees the
 * auxiliary norms unchanged.
 */
export function auxiliaryScores(auxiliaryNorms: ArrayLike<number>, liveNorms: ArrayLike<number>, keepZerosExact: boolean): Float64Array {
  const scores = Float64Array.from(auxiliaryNorms);
  if (keepZerosExact) return scores;
  let minPositive = Infinity;
  let maxLive = 0;
  for (let i = 0; i < scores.length; i++) {
    if (scores[i] > 0) minPositive = Math.min(minPositive, scores[i]);
    maxLive = Math.max(maxLive, liveNorms[i]);
  }
  const ceiling = Number.isFinite(minPositive) ? minPositive / 2 : 1;
  const scale = maxLive > 0 ? ceiling / maxLive : 0;
  for (let i = 0; i < scores.length; i++) if (scores[i] === 0) scores[i] = liveNorms[i] * scale;
  return scores;
}

/**
 * Picks the units to remove from the auxiliary variable (U or F) and, when asked, copies
 * the auxiliary values into the kept non-zero groups of W. `layout` covers every unit id in
 * `auxiliaryNorms` order; units of the graph outside the layout are never removed.
 */
export function decideFromAuxiliary(
  ctx: MethodContext,
  methodName: string,
  layout: UnitWeightLayout,
  auxiliary: WeightSet | undefined,
  auxiliaryNormsByUnit: Float64Array,
  adoptAuxiliary: boolean,
  notes: string[],
): PruningDecision {
  const liveNormsLayout = layout.norms();
  const liveNorms = new Float64Array(ctx.graph.units.length).fill(Infinity);
  layout.unitIds.forEach((id, i) => { liveNorms[id] = liveNormsLayout[i]; });
  const keepZerosExact = 'normThreshold' in ctx.config.target;
  const scores = auxiliaryScores(auxiliaryNormsByUnit, liveNorms, keepZerosExact);
  // Units outside the layout keep an infinite score: the selection never takes them first.
  const covered = new Set(layout.unitIds);
  for (let id = 0; id < scores.length; id++) if (!covered.has(id)) scores[id] = Number.MAX_VALUE;
  const remove = ctx.selectUnits(scores);
  const removed = new Set(remove);
  const zeroGroups = layout.unitIds.filter((id) => auxiliaryNormsByUnit[id] === 0).length;
  const keptZero = layout.unitIds.filter((id) => auxiliaryNormsByUnit[id] === 0 && !removed.has(id)).length;
  const removedNonZero = remove.filter((id) => auxiliaryNormsByUnit[id] > 0).length;
  if (adoptAuxiliary && auxiliary) {
    const adopt = layout.unitIds.map((id) => !removed.has(id) && auxiliaryNormsByUnit[id] > 0);
    const live = layout.live();
    const merged = layout.select(live, auxiliary, adopt);
    layout.write(merged);
    disposeWeightSet(merged);
  }
  notes.push(`${methodName}: ${zeroGroups} of ${layout.unitCount} channel groups reached exactly zero; removed ${remove.length} (${removedNonZero} non-zero, by norm, to meet the target; ${keptZero} zero groups kept to land on the target).`);
  ctx.emit({ type: 'signal', method: methodName, name: 'removedGroups', step: 0, value: remove.length, detail: { zeroGroups, keptZero, removedNonZero } });
  return { kind: 'units', remove, notes };
}
