import * as tf from '@tensorflow/tfjs';
import '../io/serialization-fixes.js';
import { isStatisticWeight, layerSpec, layerWeight, layerWeights, resolveAxis, weightShortName } from '../layers/index.js';
import type { ChannelGraph } from '../graph/types.js';

/**
 * Structured surgery on channel units. `removeUnits` builds a new, physically smaller model
 * (topology with fewer filters/units, surviving weight slices gathered); `zeroUnits` masks the
 * same slices in place. Removing units that are zero in every slice leaves outputs unchanged.
 */

/** layer → weight → axis → indices to drop. */
type Plan = Map<string, Map<string, Map<number, Set<number>>>>;

function validUnitIds(graph: ChannelGraph, unitIds: readonly number[]): number[] {
  const ids = [...new Set(unitIds)];
  for (const id of ids) {
    if (!Number.isInteger(id) || id < 0 || id >= graph.units.length) {
      throw new Error(`Unit ${id} does not exist: the graph has ${graph.units.length} units`);
    }
  }
  return ids;
}

function planFor(graph: ChannelGraph, unitIds: readonly number[], skip?: (weight: string) => boolean): Plan {
  const plan: Plan = new Map();
  for (const id of unitIds) {
    for (const s of graph.units[id].slices) {
      if (skip?.(s.weight)) continue;
      let byWeight = plan.get(s.layer);
      if (!byWeight) plan.set(s.layer, (byWeight = new Map()));
      let byAxis = byWeight.get(s.weight);
      if (!byAxis) byWeight.set(s.weight, (byAxis = new Map()));
      let set = byAxis.get(s.axis);
      if (!set) byAxis.set(s.axis, (set = new Set()));
      for (const i of s.indices) set.add(i);
    }
  }
  return plan;
}

function keptIndices(size: number, drop: Set<number>): number[] {
  const kept: number[] = [];
  for (let i = 0; i < size; i++) if (!drop.has(i)) kept.push(i);
  return kept;
}

interface LayerJson {
  class_name: string;
  config: Record<string, unknown> & { name: string };
}

/**
 * Returns a new model without the given units: producers lose output filters, batch norms
 * and depthwise convs lose channels, consumers lose input slices (every flattened position
 * for dense layers after a flatten). Layer names are kept; the input model is not touched.
 * The returned model is not compiled.
 */
export async function removeUnits(model: tf.LayersModel, graph: ChannelGraph, unitIds: readonly number[]): Promise<tf.LayersModel> {
  const ids = validUnitIds(graph, unitIds);
  const removedPerGroup = new Map<number, number>();
  for (const id of ids) {
    const g = graph.units[id].group;
    removedPerGroup.set(g, (removedPerGroup.get(g) ?? 0) + 1);
  }
  for (const [g, n] of removedPerGroup) {
    const group = graph.groups[g];
    if (n >= group.channels) {
      throw new Error(`Cannot remove all ${group.channels} channels of group ${g} (${group.producers.join(', ')}): every tensor keeps at least one channel`);
    }
  }
  const plan = planFor(graph, ids);
  const removedUnits = new Set(ids);

  const json = model.toJSON(undefined, false) as unknown as { class_name: string; config: { layers: LayerJson[] } };
  const topology = structuredClone(json);
  for (const layerJson of topology.config.layers) {
    // The registry's width field shrinks by the channels removed along the weight axis that carries it.
    const spec = layerSpec(layerJson.class_name);
    const output = spec?.outputChannels;
    const drop = plan.get(layerJson.config.name)?.get(output?.weight ?? '');
    if (!spec?.widthField || !output || !drop) continue;
    const variable = layerWeight(model.getLayer(layerJson.config.name), output.weight)!;
    const removed = drop.get(resolveAxis(output, variable.shape.length).axis);
    if (removed) layerJson.config[spec.widthField] = (layerJson.config[spec.widthField] as number) - removed.size;
  }
  for (const layerJson of topology.config.layers) {
    // Layers that record their width in their config alone (a reshape's target shape) lose the removed units among their channels.
    const narrow = layerSpec(layerJson.class_name)?.narrowConfig;
    const info = narrow && graph.layers.find((l) => l.name === layerJson.config.name);
    const removed = info?.outputUnits?.filter((u) => removedUnits.has(u)).length ?? 0;
    if (narrow && info && removed > 0) layerJson.config = narrow(layerJson.config, info.outChannels - removed) as LayerJson['config'];
  }
  const pruned = await tf.models.modelFromJSON({ modelTopology: topology } as unknown as Parameters<typeof tf.models.modelFromJSON>[0]);

  try {
    for (const oldLayer of model.layers) {
      if (oldLayer.weights.length === 0) continue;
      const newLayer = pruned.getLayer(oldLayer.name);
      const oldWeights = layerWeights(oldLayer);
      const layerPlan = plan.get(oldLayer.name);
      const values = newLayer.weights.map((target) => {
        const name = weightShortName(target);
        const source = oldWeights.get(name);
        if (!source) throw new Error(`Weight ${oldLayer.name}/${name} is missing from the source model`);
        const value = tf.tidy(() => {
          let t: tf.Tensor = source.read();
          for (const [axis, drop] of layerPlan?.get(name) ?? []) {
            t = tf.gather(t, keptIndices(t.shape[axis], drop), axis);
          }
          return tf.clone(t);
        });
        if (value.shape.join('x') !== target.shape.join('x')) {
          value.dispose();
          throw new Error(`Surgery produced ${oldLayer.name}/${name} of shape [${value.shape}] but the pruned layer expects [${target.shape}]`);
        }
        return value;
      });
      newLayer.setWeights(values);
      tf.dispose(values);
    }
  } catch (err) {
    pruned.dispose();
    throw err;
  }
  return pruned;
}

/**
 * Masks the given units in place: multiplies every slice by zero (producer filters and biases,
 * batch-norm gamma and beta, depthwise channels, consumer input slices). Batch-norm moving
 * statistics are left alone; with gamma and beta at zero the channel is exactly zero.
 */
export function zeroUnits(model: tf.LayersModel, graph: ChannelGraph, unitIds: readonly number[]): void {
  const plan = planFor(graph, validUnitIds(graph, unitIds), isStatisticWeight);
  for (const [layerName, byWeight] of plan) {
    const weights = layerWeights(model.getLayer(layerName));
    for (const [name, byAxis] of byWeight) {
      const variable = weights.get(name);
      if (!variable) continue;
      const masked = tf.tidy(() => {
        let t: tf.Tensor = variable.read();
        for (const [axis, drop] of byAxis) {
          const size = t.shape[axis];
          const mask = new Float32Array(size).fill(1);
          for (const i of drop) mask[i] = 0;
          const shape = t.shape.map((d, i) => (i === axis ? size : 1));
          t = tf.mul(t, tf.tensor(mask, shape));
        }
        // Adding 0 turns the -0 of negative weights into +0.
        return tf.add(t, 0);
      });
      variable.write(masked);
      masked.dispose();
    }
  }
}
