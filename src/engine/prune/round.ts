import type { ChannelGraph } from '../graph/types.js';

export interface RoundOptions {
  /**
   * The reduction a removal set gives (FLOPs or params, from `CostTracker`). With it, the rounding
   * keeps the method's reduction: groups go down to the multiple below, least important channels
   * first, until the rounded removal reduces at least as much as the method's did.
   */
  reduction?: (units: readonly number[]) => number;
}

/**
 * Every group's kept channel count made a multiple of `roundTo`, since odd widths can cost more time
 * than their FLOPs save (runtimes work in blocks of channels). Kept counts round up first: removed
 * units go back, highest score first (the session passes L2 norms of the current weights). With
 * `options.reduction`, groups then round down instead, the group whose extra channels score lowest
 * first, until the reduction is back where the method put it, so a FLOPs target stays met. A group
 * never keeps more channels than it has (a group that cannot reach the next multiple keeps all of
 * them), a group that keeps all its channels is untouched, and a group keeps at least one channel
 * (rounded up like the rest, never down to nothing). `roundTo` 1 returns the removal as given.
 * Returns unit ids in ascending order.
 */
export function roundKeptChannels(graph: ChannelGraph, scores: ArrayLike<number>, units: readonly number[], roundTo: number, options: RoundOptions = {}): number[] {
  if (!Number.isInteger(roundTo) || roundTo < 1) throw new Error(`roundTo must be an integer ≥ 1, got ${roundTo}`);
  const removed = new Set(units);
  if (roundTo === 1) return [...removed].sort((a, b) => a - b);
  const rounded: { keptAsc: number[] }[] = [];
  for (const group of graph.groups) {
    // Highest score first; a NaN score counts as the most important, as in selection.
    const gone = group.units.filter((u) => removed.has(u)).sort((a, b) => (score(scores, b) - score(scores, a)) || 0);
    if (gone.length === 0) continue;
    const kept = group.channels - gone.length;
    const up = Math.min(group.channels, Math.ceil(Math.max(1, kept) / roundTo) * roundTo);
    for (const u of gone.slice(0, up - kept)) removed.delete(u);
    const keptAsc = group.units.filter((u) => !removed.has(u)).sort((a, b) => (score(scores, a) - score(scores, b)) || 0);
    rounded.push({ keptAsc });
  }
  if (options.reduction) {
    const goal = options.reduction(units);
    // One step = a group down by one multiple (never below one multiple); the cheapest step by mean score goes first.
    const step = (g: { keptAsc: number[] }) => {
      const k = g.keptAsc.length;
      const down = k % roundTo === 0 ? k - roundTo : Math.floor(k / roundTo) * roundTo;
      if (down < roundTo) return undefined;
      const units = g.keptAsc.slice(0, k - down);
      return { units, cost: units.reduce((sum, u) => sum + score(scores, u), 0) / units.length };
    };
    while (options.reduction([...removed]) < goal - 1e-12) {
      let best: { group: { keptAsc: number[] }; units: number[]; cost: number } | undefined;
      for (const group of rounded) {
        const next = step(group);
        if (next && (!best || next.cost < best.cost)) best = { group, ...next };
      }
      if (!best) break;
      for (const u of best.units) removed.add(u);
      best.group.keptAsc = best.group.keptAsc.slice(best.units.length);
    }
  }
  return [...removed].sort((a, b) => a - b);
}

function score(scores: ArrayLike<number>, unit: number): number {
  return Number.isNaN(scores[unit]) ? Infinity : scores[unit];
}
