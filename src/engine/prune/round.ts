import type { ChannelGraph } from '../graph/types.js';

/**
 * Gives removed units back until every group's kept channel count is a multiple of `roundTo`,
 * highest score first (the session passes L2 norms of the current weights). Odd widths can cost
 * more time than their FLOPs save (runtimes work in blocks of channels), so kept counts round up,
 * never down: a FLOPs target is then approached from below. A group never keeps more channels
 * than it has (a group that cannot reach the next multiple keeps all of them), a group that keeps
 * all its channels is untouched, and a group keeps at least one channel (rounded up like the rest).
 * `roundTo` 1 returns the removal as given. Returns unit ids in ascending order.
 */
export function roundKeptChannels(graph: ChannelGraph, scores: ArrayLike<number>, units: readonly number[], roundTo: number): number[] {
  if (!Number.isInteger(roundTo) || roundTo < 1) throw new Error(`roundTo must be an integer ≥ 1, got ${roundTo}`);
  const removed = new Set(units);
  if (roundTo > 1) {
    for (const group of graph.groups) {
      // Highest score first; a NaN score counts as the most important, as in selection.
      const gone = group.units.filter((u) => removed.has(u)).sort((a, b) => (score(scores, b) - score(scores, a)) || 0);
      if (gone.length === 0) continue;
      const kept = group.channels - gone.length;
      const goal = Math.min(group.channels, Math.ceil(Math.max(1, kept) / roundTo) * roundTo);
      for (const u of gone.slice(0, goal - kept)) removed.delete(u);
    }
  }
  return [...removed].sort((a, b) => a - b);
}

function score(scores: ArrayLike<number>, unit: number): number {
  return Number.isNaN(scores[unit]) ? Infinity : scores[unit];
}
