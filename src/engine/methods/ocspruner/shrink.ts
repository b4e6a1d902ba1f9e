import * as tf from '@tensorflow/tfjs';
import type { ChannelGraph } from '../../graph/types.js';
import { layerWeight, weightKind } from '../../layers/index.js';

/** The weights OCSPruner's shrink touches: kernels (producer, consumer and depthwise slices) and norm scales (γ). */
function isShrunk(weight: string): boolean {
  const kind = weightKind(weight);
  return kind === 'kernel' || kind === 'scale';
}

/**
 * The regulariser the official OCSPruner code effectively applies (§7.3): after every optimiser
 * step, each member slice of each channel selected for removal is multiplied by (1 − reg·lr).
 * A decoupled weight decay that only hits the channels about to go, so removing them later
 * costs little accuracy. Masks are built once per selection and reused every step.
 */
export class SelectedChannelShrink {
  private readonly masks: { variable: tf.layers.Layer['weights'][number]; mask: tf.Tensor }[] = [];

  constructor(model: tf.LayersModel, graph: ChannelGraph, removed: readonly number[]) {
    const perWeight = new Map<string, { layer: string; weight: string; axes: Map<number, Set<number>> }>();
    for (const id of removed) {
      for (const slice of graph.units[id].slices) {
        if (!isShrunk(slice.weight)) continue;
        const key = `${slice.layer}\u0000${slice.weight}`;
        let entry = perWeight.get(key);
        if (!entry) perWeight.set(key, (entry = { layer: slice.layer, weight: slice.weight, axes: new Map() }));
        let indices = entry.axes.get(slice.axis);
        if (!indices) entry.axes.set(slice.axis, (indices = new Set()));
        for (const i of slice.indices) indices.add(i);
      }
    }
    for (const { layer, weight, axes } of perWeight.values()) {
      const variable = layerWeight(model.getLayer(layer), weight);
      if (!variable) continue;
      const shape = variable.shape as number[];
      // 1 where any selected slice covers the element, else 0.
      const mask = tf.tidy(() => {
        let covered: tf.Tensor = tf.zeros(shape);
        for (const [axis, indices] of axes) {
          const line = new Float32Array(shape[axis]);
          for (const i of indices) if (i < line.length) line[i] = 1;
          covered = tf.maximum(covered, tf.tensor(line, shape.map((d, a) => (a === axis ? d : 1))));
        }
        return covered;
      });
      this.masks.push({ variable, mask });
    }
  }

  /** Multiplies every selected slice by `factor` (1 − reg·lr). */
  apply(factor: number): void {
    if (factor === 1) return;
    tf.tidy(() => {
      for (const { variable, mask } of this.masks) {
        const scale = tf.sub(1, tf.mul(mask, 1 - factor));
        variable.write(tf.mul(variable.read(), scale));
      }
    });
  }

  dispose(): void {
    for (const { mask } of this.masks) mask.dispose();
    this.masks.length = 0;
  }
}
