import * as tf from '@tensorflow/tfjs';
import type { TrainConfig } from '../config/types.js';
import type { TrainHooks } from '../train/types.js';
import type { MethodContext, PruningDecision, PruningMethod } from './types.js';
import { PRODUCING_ROLES, ALL_ROLES, UnitWeightLayout, disposeWeightSet, proximityPenalty, squaredDistance, type WeightSet } from './group-tensors.js';
import { proxFactors } from './prox.js';

/**
 * GoPrune (Xu & Xiu): l2,p group sparsity, p ∈ [0, 1), solved by proximal alternating
 * minimisation on the split Φ(W, U) = f(W) + λ Σ‖u_g‖^p + (β/2)‖W − U‖²:
 *
 * - W-step: one epoch of SGD on f(W) + (β/2)‖W − U‖² + (ρ₁/2)‖W − A‖² (A = W at the epoch start);
 * - U-step: N = (βW + ρ₂U)/(β + ρ₂), then the exact group prox of τ‖·‖^p with τ = λ/(β + ρ₂)
 *   on each channel unit of N.
 *
 * A group is a channel unit of the engine's graph, so coupled (residual) channels share one
 * vector. After PAM the groups of U rank zero first, then by norm, and the shared selection
 * picks the removal set that lands on the configured target (optionally the kept groups take U's values).
 */

export type GroupSlices = 'producer' | 'all';

export interface GoPruneOptions {
  p: number;
  lambda: number;
  beta: number;
  rho1: number;
  rho2: number;
  /** β is multiplied by this after every epoch (1 keeps it constant), capped at betaMax. */
  betaGrowth: number;
  betaMax: number;
  /** λ ramps linearly from λ/warmup to λ over this many epochs (0: full λ from the start). */
  lambdaWarmupEpochs: number;
  /** Stop PAM early once ‖W − U‖ / ‖W‖ falls below this (0 never stops early). */
  tolerance: number;
  groupSlices: GroupSlices;
  /**
   * Copy U into the kept groups of W at the end (the paper's W = U). Off by default: unless
   * PAM has converged (W ≈ U) this moves W away from what the batch-norm statistics and the
   * other layers were trained with.
   */
  adoptAuxiliary: boolean;
}

export const GOPRUNE_DEFAULTS: GoPruneOptions = {
  p: 2 / 3,
  lambda: 5e-3,
  beta: 1.5e-3,
  rho1: 1.5e-3,
  rho2: 1.5e-3,
  betaGrowth: 1,
  betaMax: 1,
  lambdaWarmupEpochs: 0,
  tolerance: 0,
  groupSlices: 'producer',
  adoptAuxiliary: false,
};

/** Reads a method section of the config over defaults, keeping only keys of the right type. */
export function readMethodOptions<T extends object>(section: Record<string, unknown> | undefined, defaults: T): T {
  const out = { ...defaults } as Record<string, unknown>;
  for (const [key, value] of Object.entries(section ?? {})) {
    if (!(key in out)) continue;
    const fallback = out[key];
    if (typeof fallback === typeof value || (typeof fallback === 'object' && value !== null && typeof value === 'object')) out[key] = value;
  }
  return out as T;
}

export function gopruneOptions(ctx: Pick<MethodContext, 'config'>): GoPruneOptions {
  const options = readMethodOptions(ctx.config.goprune, GOPRUNE_DEFAULTS);
  if (!(options.p >= 0 && options.p <= 1)) throw new RangeError(`goprune.p must lie in [0, 1], got ${options.p}`);
  return options;
}

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

/** State of the PAM iteration: the auxiliary U and the anchor A, over one unit layout. */
export class PamState {
  readonly layout: UnitWeightLayout;
  u: WeightSet;
  anchor: WeightSet;
  /** (βU + ρ₁A)/(β + ρ₁): the single point the W-step's two quadratic pulls amount to. */
  centre: WeightSet;
  beta: number;
  readonly rho1: number;
  readonly rho2: number;
  readonly p: number;
  uNorms: Float64Array;

  constructor(layout: UnitWeightLayout, options: Pick<GoPruneOptions, 'beta' | 'rho1' | 'rho2' | 'p'>) {
    this.layout = layout;
    this.beta = options.beta;
    this.rho1 = options.rho1;
    this.rho2 = options.rho2;
    this.p = options.p;
    this.u = layout.read();
    this.anchor = layout.read();
    this.centre = layout.read();
    this.uNorms = layout.norms(this.u);
  }

  /** The W-step's differentiable pull (β + ρ₁)/2 ‖W − centre‖². */
  penalty(): tf.Scalar {
    return proximityPenalty(this.layout, this.centre, this.beta + this.rho1);
  }

  /** U-step with the current W, then A ← W. Returns the zero-group count of U. */
  uStep(lambda: number): number {
    const { beta, rho2 } = this;
    const previous = this.u;
    const blended = this.layout.mapKeys((key) => tf.div(tf.add(tf.mul(this.layout.variables.get(key)!.read(), beta), tf.mul(previous.get(key)!, rho2)), beta + rho2));
    const blendedNorms = this.layout.norms(blended);
    const factors = proxFactors(blendedNorms, lambda / (beta + rho2), this.p);
    this.u = this.layout.scale(blended, factors);
    this.uNorms = Float64Array.from(blendedNorms, (a, i) => a * factors[i]);
    disposeWeightSet(previous);
    disposeWeightSet(blended);
    disposeWeightSet(this.anchor);
    this.anchor = this.layout.read();
    this.refreshCentre();
    return this.uNorms.reduce((n, v) => n + (v === 0 ? 1 : 0), 0);
  }

  setBeta(beta: number): void {
    this.beta = beta;
    this.refreshCentre();
  }

  /** ‖W − U‖ / ‖W‖ over the layout's weights. */
  relativeGap(): number {
    const live = this.layout.live();
    const gap = squaredDistance(live, this.u);
    const zero = this.layout.mapKeys((key) => tf.zerosLike(live.get(key)!));
    const size = squaredDistance(live, zero);
    const value = Math.sqrt(gap.dataSync()[0] / Math.max(size.dataSync()[0], 1e-30));
    tf.dispose([gap, size]);
    disposeWeightSet(zero);
    return value;
  }

  dispose(): void {
    for (const set of [this.u, this.anchor, this.centre]) disposeWeightSet(set);
  }

  private refreshCentre(): void {
    const { beta, rho1 } = this;
    const next = this.layout.mapKeys((key) => tf.div(tf.add(tf.mul(this.u.get(key)!, beta), tf.mul(this.anchor.get(key)!, rho1)), beta + rho1));
    disposeWeightSet(this.centre);
    this.centre = next;
  }
}

function lambdaAt(options: GoPruneOptions, epoch: number): number {
  if (options.lambdaWarmupEpochs <= 0) return options.lambda;
  return options.lambda * Math.min(1, (epoch + 1) / options.lambdaWarmupEpochs);
}

export async function runGoPrune(ctx: MethodContext): Promise<PruningDecision> {
  const options = gopruneOptions(ctx);
  const layout = UnitWeightLayout.build(ctx.model, ctx.graph, { roles: layoutRoles(options.groupSlices) });
  const state = new PamState(layout, options);
  const notes: string[] = [];
  const train: TrainConfig | undefined = ctx.config.train;
  let iterations = 0;
  try {
    const report = (epoch: number, zeroGroups: number, gap: number, lambda: number) => {
      ctx.emit({ type: 'signal', method: 'goprune', name: 'zeroGroups', step: epoch, value: zeroGroups, detail: { layers: perLayerGroupStats(ctx, layout.unitIds, state.uNorms), gap, beta: state.beta, lambda } });
      ctx.emit({ type: 'signal', method: 'goprune', name: 'gap', step: epoch, value: gap });
      ctx.reportLayers('train', epoch, true);
    };

    if (ctx.data && train && train.epochs > 0) {
      const hooks: TrainHooks = {
        regularizer: () => state.penalty(),
        afterEpoch: ({ epoch }) => {
          iterations = epoch + 1;
          const lambda = lambdaAt(options, epoch);
          const zeroGroups = state.uStep(lambda);
          const gap = state.relativeGap();
          report(epoch, zeroGroups, gap, lambda);
          state.setBeta(Math.min(options.betaMax, state.beta * options.betaGrowth));
          ctx.checkCancelled();
          return options.tolerance > 0 && gap < options.tolerance ? 'stop' : undefined;
        },
      };
      await ctx.train(train, hooks, 'train');
    } else {
      // No training phase: one U-step from the current weights (a single group prox).
      const zeroGroups = state.uStep(options.lambda);
      report(0, zeroGroups, state.relativeGap(), options.lambda);
      notes.push('goprune: no training phase configured, so U is a single group prox of the trained weights.');
    }
    if (iterations > 0) notes.push(`goprune: ${iterations} PAM iteration(s), p = ${options.p.toFixed(3)}, λ = ${options.lambda}, final β = ${state.beta}.`);

    const normsByUnit = new Float64Array(ctx.graph.units.length);
    layout.unitIds.forEach((id, i) => { normsByUnit[id] = state.uNorms[i]; });
    return decideFromAuxiliary(ctx, 'goprune', layout, state.u, normsByUnit, options.adoptAuxiliary, notes);
  } finally {
    state.dispose();
    layout.dispose();
  }
}

export const gopruneMethod: PruningMethod = {
  name: 'goprune',
  needsData: true,
  run: runGoPrune,
};
