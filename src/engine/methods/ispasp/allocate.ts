/**
 * Per-block widths for a model-level target. Every block keeps about the same fraction r of
 * its channels (the paper prunes whole stages with one keep ratio); r is found by bisection
 * and the rounding is then corrected one channel at a time, so the achieved reduction lands
 * as close to the target as channel granularity allows.
 */
export interface AllocationResult {
  /** Channels kept per block, in the order of `widths`. */
  keep: number[];
  /** The reduction `measure` reports for `keep`. */
  achieved: number;
  /** The largest reduction possible (every block at `minKeep`). */
  maximum: number;
}

/**
 * @param widths dense width of each block
 * @param measure reduction (0..1) the model gets when block b keeps keep[b] channels; must not increase when any keep grows
 */
export function allocateWidths(widths: readonly number[], target: number, measure: (keep: readonly number[]) => number, minKeep = 1): AllocationResult {
  const floor = widths.map((m) => Math.min(m, minKeep));
  const atRatio = (r: number) => widths.map((m, b) => Math.min(m, Math.max(floor[b], Math.round(r * m))));
  const maximum = measure(floor);
  if (widths.length === 0) return { keep: [], achieved: 0, maximum: 0 };
  if (target >= maximum) return { keep: floor, achieved: maximum, maximum };

  let lo = 0; // reduction(lo) ≥ target
  let hi = 1; // reduction(hi) < target
  for (let i = 0; i < 40; i++) {
    const mid = (lo + hi) / 2;
    if (measure(atRatio(mid)) >= target) lo = mid;
    else hi = mid;
  }
  let keep = atRatio(lo);
  let achieved = measure(keep);
  const other = atRatio(hi);
  const otherAchieved = measure(other);
  if (Math.abs(otherAchieved - target) < Math.abs(achieved - target)) {
    keep = other;
    achieved = otherAchieved;
  }

  // Greedy one-channel corrections while they bring the reduction closer to the target.
  for (let round = 0; round < 4 * widths.length + 16; round++) {
    let best: { keep: number[]; achieved: number } | null = null;
    for (let b = 0; b < widths.length; b++) {
      for (const delta of [-1, 1]) {
        const k = keep[b] + delta;
        if (k < floor[b] || k > widths[b]) continue;
        const candidate = keep.slice();
        candidate[b] = k;
        const value = measure(candidate);
        if (Math.abs(value - target) < Math.abs((best?.achieved ?? achieved) - target) - 1e-12) best = { keep: candidate, achieved: value };
      }
    }
    if (!best) break;
    keep = best.keep;
    achieved = best.achieved;
  }
  return { keep, achieved, maximum };
}
