/** One evaluation: `removed` of the entry's channels masked (`ratio` of them, rounded), the rest intact. */
export interface SensitivityPoint {
  ratio: number;
  removed: number;
  metric: number;
  loss: number;
}

/** One curve: a channel group (or, layer at a time, one producer layer's own output channels). */
export interface SensitivityEntry {
  /** The channel group's id, or the layer's name layer at a time. */
  id: number | string;
  producers: string[];
  channels: number;
  /** Fraction of the model's FLOPs that removing every channel of the entry would take away. */
  flopsShare: number;
  /** Layer at a time: the group the layer's output channels belong to (its coupled partners share it). */
  group?: number;
  points: SensitivityPoint[];
}

export interface SensitivityReport {
  model: string;
  /** What the curves measure: 'group' (every coupled member together) or 'layer' (one producer alone, for comparison). */
  mode: 'group' | 'layer';
  metric: { name: string; higherIsBetter: boolean };
  samples: number;
  ratios: number[];
  /** The intact model on the same samples. */
  dense: { metric: number; loss: number };
  groups: SensitivityEntry[];
  /** The cache key's model hash (sha256). */
  modelHash: string;
}
