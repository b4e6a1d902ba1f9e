import * as tf from '@tensorflow/tfjs';
import type { ChannelGraph, WeightSlice } from '../graph/types.js';
import { layerWeight } from '../layers/index.js';

/**
 * Channel units as tensors. A channel unit owns slices of several weights (a producer's
 * filter and bias, a batch-norm channel, consumers' input slices, ...); its "group vector"
 * is the concatenation of all those slices. This module computes per-unit norms of that
 * vector and applies per-unit factors to it with a handful of vectorised tf ops per weight,
 * whatever the number of units:
 *
 * - every (weight, axis) pair that units address becomes one entry with an owner map
 *   position → unit (positions owned by no selected unit map to a spare bucket);
 * - norms: square, sum over the other axes, then `unsortedSegmentSum` by owner;
 * - factors: `gather` the per-unit factors by owner and broadcast-multiply along the axis.
 *
 * Operations work either on the model's variables or on a `WeightSet`: tensors keyed like
 * the layout's weights (auxiliary copies such as GoPrune's U or SSR's F and Y).
 */

export type SliceRole = WeightSlice['role'];

/** Roles that create a channel (the unit's own filters, biases, batch-norm and depthwise slices). */
export const PRODUCING_ROLES: readonly SliceRole[] = ['producer', 'norm', 'depthwise'];
export const ALL_ROLES: readonly SliceRole[] = ['producer', 'norm', 'depthwise', 'consumer'];

/** Tensors keyed by `layer/weight`, shaped like the model weights. */
export type WeightSet = Map<string, tf.Tensor>;

export interface UnitLayoutOptions {
  /** Units to cover, by id, in the order of the per-unit vectors. Default: every unit of the graph. */
  units?: readonly number[];
  /**
   * Slice roles that make up a unit's vector. Default: all roles. With consumer slices the
   * vectors of units in consecutive layers share kernel entries, so the groups overlap.
   */
  roles?: readonly SliceRole[];
  /** Skip non-trainable weights (batch-norm moving statistics, frozen layers). Default true. */
  trainableOnly?: boolean;
}

interface LayoutEntry {
  key: string;
  axis: number;
  rank: number;
  /** Position along `axis` → local unit index, or `unitCount` when no selected unit owns it. */
  owner: Int32Array;
  ownerTensor: tf.Tensor1D;
  /** Shape that broadcasts a per-position vector along `axis`. */
  broadcastShape: number[];
}

export function weightKey(layer: string, weight: string): string {
  return `${layer}/${weight}`;
}

export class UnitWeightLayout {
  /** Unit ids in the order used by every per-unit vector. */
  readonly unitIds: readonly number[];
  /** Distinct weights the selected units touch, keyed `layer/weight`. */
  readonly variables: ReadonlyMap<string, tf.LayerVariable>;
  private readonly entries: LayoutEntry[];
  private disposed = false;

  private constructor(unitIds: number[], variables: Map<string, tf.LayerVariable>, entries: LayoutEntry[]) {
    this.unitIds = unitIds;
    this.variables = variables;
    this.entries = entries;
  }

  static build(model: tf.LayersModel, graph: ChannelGraph, options: UnitLayoutOptions = {}): UnitWeightLayout {
    const unitIds = [...(options.units ?? graph.units.map((u) => u.id))];
    const roles = new Set(options.roles ?? ALL_ROLES);
    const trainableOnly = options.trainableOnly ?? true;
    const variables = new Map<string, tf.LayerVariable>();
    const owners = new Map<string, { key: string; axis: number; owner: Int32Array }>();
    const unitCount = unitIds.length;

    unitIds.forEach((unitId, local) => {
      const unit = graph.units[unitId];
      if (!unit || unit.id !== unitId) throw new Error(`unit ${unitId} is not in the channel graph`);
      for (const slice of unit.slices) {
        if (!roles.has(slice.role)) continue;
        const key = weightKey(slice.layer, slice.weight);
        let variable = variables.get(key);
        if (!variable) {
          variable = layerWeight(model.getLayer(slice.layer), slice.weight);
          if (!variable) throw new Error(`layer ${slice.layer} has no weight ${slice.weight}`);
          if (trainableOnly && !variable.trainable) continue;
          variables.set(key, variable);
        }
        const entryKey = `${key}\u0000${slice.axis}`;
        let entry = owners.get(entryKey);
        if (!entry) {
          entry = { key, axis: slice.axis, owner: new Int32Array(variable.shape[slice.axis] as number).fill(unitCount) };
          owners.set(entryKey, entry);
        }
        for (const index of slice.indices) {
          if (entry.owner[index] !== unitCount && entry.owner[index] !== local) {
            throw new Error(`${key} position ${index} on axis ${slice.axis} belongs to two units`);
          }
          entry.owner[index] = local;
        }
      }
    });

    const entries: LayoutEntry[] = [...owners.values()].map(({ key, axis, owner }) => {
      const rank = (variables.get(key) as tf.LayerVariable).shape.length;
      const broadcastShape = new Array<number>(rank).fill(1);
      broadcastShape[axis] = owner.length;
      return { key, axis, rank, owner, ownerTensor: tf.tensor1d(owner, 'int32'), broadcastShape };
    });
    return new UnitWeightLayout(unitIds, variables, entries);
  }

  get unitCount(): number {
    return this.unitIds.length;
  }

  /** Current values of the layout's weights (copies; the caller disposes them). */
  read(): WeightSet {
    const set: WeightSet = new Map();
    for (const [key, variable] of this.variables) set.set(key, tf.keep(variable.read().clone()));
    return set;
  }

  /** The live variable values as a WeightSet (not copies: do not dispose). */
  live(): WeightSet {
    const set: WeightSet = new Map();
    for (const [key, variable] of this.variables) set.set(key, variable.read());
    return set;
  }

  /** Per-unit squared norms of the group vectors, float32 [unitCount]. Caller owns the result. */
  squaredNorms(weights: WeightSet = this.live()): tf.Tensor1D {
    this.assertAlive();
    return tf.tidy(() => {
      let total: tf.Tensor = tf.zeros([this.unitCount + 1]);
      for (const entry of this.entries) {
        const value = this.valueOf(weights, entry.key);
        const otherAxes = [...Array(entry.rank).keys()].filter((a) => a !== entry.axis);
        const perPosition = otherAxes.length > 0 ? tf.sum(tf.square(value), otherAxes) : tf.square(value);
        total = tf.add(total, tf.unsortedSegmentSum(perPosition, entry.ownerTensor, this.unitCount + 1));
      }
      return tf.slice(total, [0], [this.unitCount]) as tf.Tensor1D;
    });
  }

  /** Per-unit L2 norms of the group vectors, read back in double precision. */
  norms(weights?: WeightSet): Float64Array {
    const squared = this.squaredNorms(weights);
    const values = squared.dataSync();
    squared.dispose();
    return Float64Array.from(values, (v) => Math.sqrt(Math.max(0, v)));
  }

  /**
   * `weights` with every unit's slices multiplied by its factor (positions of unselected units
   * unchanged). Returns new tensors for every key of the layout; the caller disposes them.
   */
  scale(weights: WeightSet, factors: tf.Tensor1D | ArrayLike<number>): WeightSet {
    this.assertAlive();
    return this.mapWeights(weights, (value, entry, perUnit) => tf.mul(value, this.alongAxis(entry, perUnit, 1)), factors);
  }

  /** Multiplies each unit's slices of the model weights by its factor, in place. */
  scaleWeights(factors: tf.Tensor1D | ArrayLike<number>): void {
    const scaled = this.scale(this.live(), factors);
    this.write(scaled);
    disposeWeightSet(scaled);
  }

  /**
   * Per-unit choice between two weight sets: positions owned by a unit with `useSecond[u]`
   * truthy come from `second`, everything else from `first`. New tensors; the caller disposes them.
   */
  select(first: WeightSet, second: WeightSet, useSecond: ArrayLike<number | boolean>): WeightSet {
    this.assertAlive();
    const mask = Float32Array.from({ length: this.unitCount }, (_, i) => (useSecond[i] ? 1 : 0));
    return this.mapWeights(first, (value, entry, perUnit) => {
      const m = this.alongAxis(entry, perUnit, 0);
      return tf.add(value, tf.mul(m, tf.sub(this.valueOf(second, entry.key), value)));
    }, mask);
  }

  /** Assigns a WeightSet to the model's variables (only keys the layout covers). */
  write(weights: WeightSet): void {
    this.assertAlive();
    tf.tidy(() => {
      for (const [key, variable] of this.variables) {
        const value = weights.get(key);
        if (value) (variable.read() as tf.Variable).assign(value);
      }
    });
  }

  /** A WeightSet computed key by key (e.g. W + Y/ρ); `fn` runs inside tf.tidy. */
  mapKeys(fn: (key: string) => tf.Tensor): WeightSet {
    const out: WeightSet = new Map();
    for (const key of this.variables.keys()) out.set(key, tf.keep(tf.tidy(() => fn(key))));
    return out;
  }

  dispose(): void {
    if (this.disposed) return;
    for (const entry of this.entries) entry.ownerTensor.dispose();
    this.disposed = true;
  }

  private mapWeights(
    weights: WeightSet,
    apply: (value: tf.Tensor, entry: LayoutEntry, perUnit: tf.Tensor1D) => tf.Tensor,
    perUnitValues: tf.Tensor1D | ArrayLike<number>,
  ): WeightSet {
    const out: WeightSet = new Map();
    tf.tidy(() => {
      const perUnit = perUnitValues instanceof tf.Tensor
        ? perUnitValues.toFloat()
        : tf.tensor1d(Float32Array.from(perUnitValues as ArrayLike<number>));
      if (perUnit.shape[0] !== this.unitCount) throw new Error(`expected ${this.unitCount} per-unit values, got ${perUnit.shape[0]}`);
      const current = new Map<string, tf.Tensor>();
      for (const key of this.variables.keys()) current.set(key, this.valueOf(weights, key));
      for (const entry of this.entries) current.set(entry.key, apply(current.get(entry.key) as tf.Tensor, entry, perUnit as tf.Tensor1D));
      for (const [key, value] of current) out.set(key, tf.keep(value === weights.get(key) ? value.clone() : value));
    });
    return out;
  }

  /** A per-unit vector spread along an entry's axis, with `spare` at positions no selected unit owns. */
  private alongAxis(entry: LayoutEntry, perUnit: tf.Tensor1D, spare: number): tf.Tensor {
    const padded = tf.concat([perUnit, tf.tensor1d([spare])]);
    return tf.reshape(tf.gather(padded, entry.ownerTensor), entry.broadcastShape);
  }

  private valueOf(weights: WeightSet, key: string): tf.Tensor {
    const value = weights.get(key);
    if (!value) throw new Error(`weight set has no tensor for ${key}`);
    return value;
  }

  private assertAlive(): void {
    if (this.disposed) throw new Error('UnitWeightLayout used after dispose()');
  }
}

export function disposeWeightSet(set: WeightSet | undefined): void {
  if (!set) return;
  for (const tensor of set.values()) tensor.dispose();
  set.clear();
}

/** Σ over keys of ‖a − b‖², as a scalar tensor (for monitoring ‖W − U‖). Caller owns the result. */
export function squaredDistance(a: WeightSet, b: WeightSet): tf.Scalar {
  return tf.tidy(() => {
    let total: tf.Scalar = tf.scalar(0);
    for (const [key, value] of a) {
      const other = b.get(key);
      if (other) total = tf.add(total, tf.sum(tf.squaredDifference(value, other)));
    }
    return total;
  });
}

/**
 * The differentiable pull (c/2)·Σ‖W − centre‖² of the layout's live weights towards fixed
 * centres, to add to the loss inside a gradient tape (the W-steps of GoPrune and SSR).
 */
export function proximityPenalty(layout: UnitWeightLayout, centres: WeightSet, coefficient: number): tf.Scalar {
  let total: tf.Scalar = tf.scalar(0);
  for (const [key, variable] of layout.variables) {
    const centre = centres.get(key);
    if (centre) total = tf.add(total, tf.sum(tf.squaredDifference(variable.read(), centre)));
  }
  return tf.mul(total, coefficient / 2);
}
