import type { ChannelGraph, SliceTable, WeightSlice } from './types.js';

/**
 * The compact form of the units' weight slices (`SliceTable`): analyzeModel builds it instead of
 * an object per slice (a DenseNet-121 has over 200,000), and each unit's `slices` are made from
 * it when first read. Surgery and norms read the table directly.
 */

/**
 * Frozen one-index arrays shared by every slice of one channel (most slices): half as many
 * objects for the garbage collector to copy. Nothing writes to a slice's indices.
 */
const SINGLE_INDEX: (readonly number[])[] = [];

function singleIndex(i: number): number[] {
  while (SINGLE_INDEX.length <= i) SINGLE_INDEX.push(Object.freeze([SINGLE_INDEX.length]));
  return SINGLE_INDEX[i] as number[];
}

/** Unit `unit`'s slices: one per run of entries with the same key, in table order. */
export function tableSlices(table: SliceTable, unit: number): WeightSlice[] {
  const { entries, offsets, span, keys } = table;
  const slices: WeightSlice[] = [];
  const end = offsets[unit + 1];
  for (let j = offsets[unit]; j < end; ) {
    const rank = Math.floor(entries[j] / span);
    const base = rank * span;
    let stop = j + 1;
    while (stop < end && entries[stop] >= base && entries[stop] < base + span) stop++;
    let indices: number[];
    if (stop === j + 1) indices = singleIndex(entries[j] - base);
    else {
      indices = new Array<number>(stop - j);
      for (let k = j; k < stop; k++) indices[k - j] = entries[k] - base;
    }
    const k = keys[rank];
    slices.push({ layer: k.layer, weight: k.weight, axis: k.axis, role: k.role, indices });
    j = stop;
  }
  return slices;
}

/** A unit whose slices are read from the table on first use (then kept). */
export class TableUnit {
  readonly #table: SliceTable;
  #slices: WeightSlice[] | undefined;

  constructor(
    public id: number,
    public group: number,
    public index: number,
    table: SliceTable,
  ) {
    this.#table = table;
  }

  get slices(): WeightSlice[] {
    return (this.#slices ??= tableSlices(this.#table, this.id));
  }

  /** The same JSON as a unit with its slices as a field. */
  toJSON(): { id: number; group: number; index: number; slices: WeightSlice[] } {
    return { id: this.id, group: this.group, index: this.index, slices: this.slices };
  }
}

const builtTables = new WeakMap<ChannelGraph, SliceTable>();

/**
 * The graph's slice table: analyzeModel's own, or one built from the units' slices (a graph made
 * by hand), entries in the order of each unit's slices and their indices.
 */
export function sliceTableOf(graph: ChannelGraph): SliceTable {
  if (graph.sliceTable) return graph.sliceTable;
  const cached = builtTables.get(graph);
  if (cached) return cached;
  const keys: SliceTable['keys'] = [];
  const rankOf = new Map<string, number>();
  let span = 1;
  for (const unit of graph.units) for (const s of unit.slices) for (const i of s.indices) span = Math.max(span, i + 1);
  const values: number[] = [];
  const offsets = new Int32Array(graph.units.length + 1);
  graph.units.forEach((unit, u) => {
    for (const s of unit.slices) {
      const id = `${s.layer}\u0000${s.weight}\u0000${s.axis}\u0000${s.role}`;
      let rank = rankOf.get(id);
      if (rank === undefined) {
        rankOf.set(id, (rank = keys.length));
        keys.push({ layer: s.layer, weight: s.weight, axis: s.axis, role: s.role });
      }
      for (const i of s.indices) values.push(rank * span + i);
    }
    offsets[u + 1] = values.length;
  });
  const entries = keys.length * span < 2 ** 31 ? Int32Array.from(values) : Float64Array.from(values);
  const table = { keys, span, offsets, entries };
  builtTables.set(graph, table);
  return table;
}
