import * as tf from '@tensorflow/tfjs';
import { TARGET_KINDS, type TrainConfig } from '../config/types.js';
import type { TrainHooks } from '../train/types.js';
import type { MethodContext, PruningDecision } from './types.js';
import { UnitWeightLayout, disposeWeightSet, proximityPenalty, squaredDistance, type WeightSet } from './group-tensors.js';
import { proxFactors } from './prox.js';
import { decideFromAuxiliary, layoutRoles, perLayerGroupStats, type GroupSlices } from './shared/auxiliary.js';
import { defineMethod } from './shared/descriptor.js';
import { SparsityStream, zeroNormUnits } from './shared/sparsity.js';

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

/** The `goprune` section; defaults and limits are the schema's. */
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

  /**
   * Unit ids the U-step would set to zero with the current weights (the same group prox, U left as
   * it is): GoPrune's sparsity between its U-steps, which run once an epoch.
   */
  proxZeroUnits(lambda: number): number[] {
    const { beta, rho2 } = this;
    const blended = this.layout.mapKeys((key) => tf.tidy(() => tf.div(tf.add(tf.mul(this.layout.variables.get(key)!.read(), beta), tf.mul(this.u.get(key)!, rho2)), beta + rho2)));
    const factors = proxFactors(this.layout.norms(blended), lambda / (beta + rho2), this.p);
    disposeWeightSet(blended);
    return this.layout.unitIds.filter((_, i) => factors[i] === 0);
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

async function runGoPrune(ctx: MethodContext, options: GoPruneOptions): Promise<PruningDecision> {
  const layout = UnitWeightLayout.build(ctx.model, ctx.graph, { roles: layoutRoles(options.groupSlices) });
  const state = new PamState(layout, options);
  const notes: string[] = [];
  const train: TrainConfig | undefined = ctx.config.train;
  let iterations = 0;
  const sparsity = new SparsityStream(ctx, gopruneMethod.name, 'group prox of l2,p: channels U holds at exactly zero after each U-step (epoch ends), and between U-steps those the same prox of the current weights sets to zero');
  const zeroOfU = () => zeroNormUnits(layout.unitIds, state.uNorms);
  try {
    const report = (epoch: number, zeroGroups: number, gap: number, lambda: number) => {
      sparsity.report(zeroOfU(), { epoch });
      ctx.emit({ type: 'signal', method: gopruneMethod.name, name: 'zeroGroups', step: epoch, value: zeroGroups, detail: { layers: perLayerGroupStats(ctx, layout.unitIds, state.uNorms), gap, beta: state.beta, lambda } });
      ctx.emit({ type: 'signal', method: gopruneMethod.name, name: 'gap', step: epoch, value: gap });
      ctx.reportLayers('train', epoch, true);
    };

    if (ctx.data && train && train.epochs > 0) {
      const hooks: TrainHooks = {
        regularizer: () => state.penalty(),
        afterStep: (info) => sparsity.step(info, () => state.proxZeroUnits(lambdaAt(options, info.epoch))),
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
    return decideFromAuxiliary(ctx, gopruneMethod.name, layout, state.u, normsByUnit, options.adoptAuxiliary, notes);
  } finally {
    state.dispose();
    layout.dispose();
  }
}

export const gopruneMethod = defineMethod({
  name: 'goprune',
  takesGroupCounts: true,
  training: 'optional',
  targets: TARGET_KINDS,
  run: runGoPrune,
});
