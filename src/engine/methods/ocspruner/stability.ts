/**
 * OCSPruner's pruning-stability indicator (§7.4 of the algorithm notes). Each monitored epoch
 * contributes the sub-network it chose (retained channels per group). The raw similarity of
 * an epoch is the mean over groups of the Jaccard index between the structure chosen two
 * epochs earlier and now (0 until three structures exist); the indicator is the mean of the
 * last `window` raw values, early zeros included, as in the official code.
 */
export type Structure = ReadonlyMap<number, readonly number[]>;

export function jaccard(a: readonly number[], b: readonly number[]): number {
  if (a.length === 0 && b.length === 0) return 1;
  const setA = new Set(a);
  let both = 0;
  for (const x of b) if (setA.has(x)) both++;
  return both / (a.length + b.length - both);
}

/** Mean Jaccard index of the retained sets over the groups of `newer`. */
export function structureSimilarity(older: Structure, newer: Structure): number {
  let total = 0;
  let count = 0;
  for (const [group, retained] of newer) {
    total += jaccard(older.get(group) ?? [], retained);
    count++;
  }
  return count > 0 ? total / count : 1;
}

export class StabilityTracker {
  private readonly structures: Structure[] = [];
  private readonly raw: number[] = [];

  constructor(private readonly window = 3) {}

  /** An epoch before monitoring starts: contributes a zero to the running mean. */
  skip(): number {
    this.raw.push(0);
    return this.indicator();
  }

  /** Records the structure chosen this epoch and returns the updated indicator. */
  push(structure: Structure): number {
    this.structures.push(structure);
    if (this.structures.length > this.window) this.structures.shift();
    const full = this.structures.length === this.window;
    this.raw.push(full ? structureSimilarity(this.structures[0], this.structures[this.window - 1]) : 0);
    return this.indicator();
  }

  indicator(): number {
    const recent = this.raw.slice(-this.window);
    return recent.length > 0 ? recent.reduce((a, b) => a + b, 0) / recent.length : 0;
  }

  lastRaw(): number {
    return this.raw.length > 0 ? this.raw[this.raw.length - 1] : 0;
  }
}
