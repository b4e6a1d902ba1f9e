import * as tf from '@tensorflow/tfjs';
import { TARGET_KINDS, type TrainConfig } from '../config/types.js';
import type { TrainHooks } from '../train/types.js';
import type { MethodContext, PruningDecision } from './types.js';
import { UnitWeightLayout, disposeWeightSet, proximityPenalty, squaredDistance, type WeightSet } from './group-tensors.js';
import { proxFactors } from './prox.js';
import { decideFromAuxiliary, layoutRoles, perLayerGroupStats, type GroupSlices } from './shared/auxiliary.js';
import { defineMethod } from './shared/descriptor.js';
import { SparsityStream } from './shared/sparsity.js';
import { stepsPerEpochOf } from './shared/relative.js';

/**
 * SSR (Lin et al., TNNLS 2020): structured sparsity regularisation, min L(W) + λ Σ R(W_g),
 * with R the group l2,1 norm or the l2,0 count of non-zero groups, solved by AULM
 * (alternating updates with Lagrange multipliers) on the split W = F:
 *
 *   ℒ(W, F, Y) = L(W) + λ R(F) + ⟨Y, W − F⟩ + (ρ/2)‖W − F‖²
 *
 * - every K steps: F ← prox_{(λ/ρ)R}(W + Y/ρ) group by group, then Y ← Y + ρ(W − F);
 * - every step: SGD on L(W) + (ρ/2)‖W − F + Y/ρ‖² with F and Y fixed.
 *
 * Groups are the graph's channel units. `global` regularises every group at once; `layer`
 * treats one producer group at a time in network order, as the released LeNet code does,
 * and keeps the groups whose F ended at zero masked in later phases.
 */

export type SsrRegularizer = 'l21' | 'l20';

/** The `ssr` section; defaults and limits are the schema's. */
export interface SsrOptions {
  regularizer: SsrRegularizer;
  lambda: number;
  /** λ for the groups produced by a given layer, overriding `lambda`. */
  layerLambda: Record<string, number>;
  rho: number;
  /** ρ is multiplied by this at every F/Y update (1 keeps it constant), capped at rhoMax. */
  rhoGrowth: number;
  rhoMax: number;
  /** SGD steps between F/Y updates (K); absent: about half an epoch (`defaultUpdateEvery`). */
  updateEvery?: number;
  schedule: 'global' | 'layer';
  groupSlices: GroupSlices;
  adoptAuxiliary: boolean;
}

/** ρ never ends below its start; K is a whole number of steps. */
function settleSsrOptions(options: SsrOptions): SsrOptions {
  options.rhoMax = Math.max(options.rhoMax, options.rho);
  if (options.updateEvery !== undefined) options.updateEvery = Math.max(1, Math.round(options.updateEvery));
  return options;
}

/**
 * K when the config sets none: the official K = 200 is about half an epoch of its CIFAR-10 runs
 * (391 steps at batch 128), so the same share of an epoch here. A fixed 200 would never update F
 * and Y inside the phase on a small data set (15 steps an epoch on 960 samples).
 */
export function defaultUpdateEvery(stepsPerEpoch: number): number {
  return Math.max(1, Math.round(stepsPerEpoch * (200 / 391)));
}

/** Per-unit F-update multipliers for a group norm ‖T_g‖: group soft (l2,1) or hard (l2,0) thresholding at λ_g/ρ. */
export function ssrFactors(norms: ArrayLike<number>, lambdas: ArrayLike<number>, rho: number, regularizer: SsrRegularizer): Float64Array {
  const taus = Float64Array.from(lambdas, (l) => l / rho);
  return proxFactors(norms, taus, regularizer === 'l21' ? 1 : 0);
}

export interface AulmUpdate {
  zeroGroups: number;
  /** ‖W − F‖ after the update (the primal residual). */
  residual: number;
}

/**
 * The AULM variables F (sparse copy) and Y (multipliers) over one unit layout. The W-step
 * penalty (ρ/2)‖W − F + Y/ρ‖² is a pull towards `centre` = F − Y/ρ.
 */
export class AulmSplitting {
  readonly layout: UnitWeightLayout;
  readonly lambdas: Float64Array;
  readonly regularizer: SsrRegularizer;
  rho: number;
  f: WeightSet;
  y: WeightSet;
  centre: WeightSet;
  fNorms: Float64Array;

  constructor(layout: UnitWeightLayout, lambdas: ArrayLike<number>, rho: number, regularizer: SsrRegularizer) {
    if (lambdas.length !== layout.unitCount) throw new Error(`expected ${layout.unitCount} lambdas, got ${lambdas.length}`);
    this.layout = layout;
    this.lambdas = Float64Array.from(lambdas);
    this.rho = rho;
    this.regularizer = regularizer;
    this.f = layout.read();
    this.y = layout.mapKeys((key) => tf.zerosLike(layout.variables.get(key)!.read()));
    this.centre = layout.read();
    this.fNorms = layout.norms(this.f);
  }

  /** F ← prox(W + Y/ρ), Y ← Y + ρ(W − F), with the current weights W. */
  update(): AulmUpdate {
    const { layout, rho } = this;
    const live = layout.live();
    const shifted = layout.mapKeys((key) => tf.add(live.get(key)!, tf.div(this.y.get(key)!, rho)));
    const shiftedNorms = layout.norms(shifted);
    const factors = ssrFactors(shiftedNorms, this.lambdas, rho, this.regularizer);
    disposeWeightSet(this.f);
    this.f = layout.scale(shifted, factors);
    this.fNorms = Float64Array.from(shiftedNorms, (a, i) => a * factors[i]);
    disposeWeightSet(shifted);
    const nextY = layout.mapKeys((key) => tf.add(this.y.get(key)!, tf.mul(tf.sub(live.get(key)!, this.f.get(key)!), rho)));
    disposeWeightSet(this.y);
    this.y = nextY;
    this.refreshCentre();
    const gap = squaredDistance(live, this.f);
    const residual = Math.sqrt(gap.dataSync()[0]);
    gap.dispose();
    return { zeroGroups: this.fNorms.reduce((n, v) => n + (v === 0 ? 1 : 0), 0), residual };
  }

  /** Changes ρ; Y is the unscaled multiplier and carries over unchanged. */
  setRho(rho: number): void {
    this.rho = rho;
    this.refreshCentre();
  }

  /** The W-step's differentiable pull (ρ/2)‖W − (F − Y/ρ)‖². */
  penalty(): tf.Scalar {
    return proximityPenalty(this.layout, this.centre, this.rho);
  }

  dispose(): void {
    for (const set of [this.f, this.y, this.centre]) disposeWeightSet(set);
  }

  private refreshCentre(): void {
    const next = this.layout.mapKeys((key) => tf.sub(this.f.get(key)!, tf.div(this.y.get(key)!, this.rho)));
    disposeWeightSet(this.centre);
    this.centre = next;
  }
}

/** λ of every unit in `unitIds`, from `layerLambda` of its group's producers or the global λ. */
export function unitLambdas(ctx: Pick<MethodContext, 'graph'>, unitIds: readonly number[], options: Pick<SsrOptions, 'lambda' | 'layerLambda'>): Float64Array {
  return Float64Array.from(unitIds, (id) => {
    const group = ctx.graph.groups[ctx.graph.units[id].group];
    const named = group.producers.find((name) => typeof options.layerLambda[name] === 'number');
    return named ? options.layerLambda[named] : options.lambda;
  });
}

/** Splits a training config into `parts` phases of equal length. */
function phaseConfig(train: TrainConfig, parts: number): TrainConfig {
  return { ...train, epochs: train.epochs / parts };
}

async function runSsr(ctx: MethodContext, options: SsrOptions): Promise<PruningDecision> {
  const roles = layoutRoles(options.groupSlices);
  const fullLayout = UnitWeightLayout.build(ctx.model, ctx.graph, { roles });
  const notes: string[] = [];
  const fNormsByUnit = new Float64Array(ctx.graph.units.length);
  const train: TrainConfig | undefined = ctx.config.train;
  const updateEvery = options.updateEvery ?? defaultUpdateEvery(stepsPerEpochOf(ctx.data, train));
  const phases = options.schedule === 'layer'
    ? ctx.graph.groups.filter((g) => g.units.length > 0).map((g) => ({ name: g.producers.join('+') || `group ${g.id}`, units: g.units }))
    : [{ name: 'all groups', units: [...fullLayout.unitIds] }];
  const masked: number[] = [];
  let maskLayout: UnitWeightLayout | undefined;
  let auxiliary: WeightSet | undefined;
  let updates = 0;
  const sparsity = new SparsityStream(ctx, ssrMethod.name, 'auxiliary F: the channel\'s group vector exactly zero after the F update (channels masked by earlier layer phases count too)');
  try {
    for (let phaseIndex = 0; phaseIndex < phases.length; phaseIndex++) {
      const phase = phases[phaseIndex];
      const layout = phases.length === 1 ? fullLayout : UnitWeightLayout.build(ctx.model, ctx.graph, { roles, units: phase.units });
      const aulm = new AulmSplitting(layout, unitLambdas(ctx, layout.unitIds, options), options.rho, options.regularizer);
      try {
        const update = (step: number) => {
          const result = aulm.update();
          updates++;
          ctx.emit({ type: 'signal', method: ssrMethod.name, name: 'zeroGroups', step: updates, value: result.zeroGroups, detail: { phase: phase.name, step, residual: result.residual, rho: aulm.rho, layers: perLayerGroupStats(ctx, layout.unitIds, aulm.fNorms) } });
          ctx.emit({ type: 'signal', method: ssrMethod.name, name: 'residual', step: updates, value: result.residual });
          aulm.setRho(Math.min(options.rhoMax, aulm.rho * options.rhoGrowth));
        };
        const zeroOfF = () => [...masked, ...layout.unitIds.filter((_, i) => aulm.fNorms[i] === 0)];
        const keepMasked = () => maskLayout?.scaleWeights(new Float32Array(maskLayout.unitCount));
        update(0);
        sparsity.report(zeroOfF());
        if (ctx.data && train && train.epochs > 0) {
          const hooks: TrainHooks = {
            regularizer: () => aulm.penalty(),
            afterStep: (info) => {
              const { globalStep } = info;
              keepMasked();
              if ((globalStep + 1) % updateEvery === 0) update(globalStep + 1);
              sparsity.step(info, zeroOfF);
            },
            afterEpoch: ({ epoch }) => {
              sparsity.report(zeroOfF(), { epoch });
              ctx.reportLayers('train', phaseIndex * 1000 + epoch, true);
              ctx.checkCancelled();
            },
          };
          sparsity.nextRun();
          await ctx.train(phases.length === 1 ? train : phaseConfig(train, phases.length), hooks, 'train');
          update(-1);
          sparsity.report(zeroOfF());
        }
        layout.unitIds.forEach((id, i) => { fNormsByUnit[id] = aulm.fNorms[i]; });
        if (phases.length === 1) {
          auxiliary = aulm.f;
          aulm.f = new Map();
        } else {
          // Layer-wise: the groups whose F is zero stay zero for the rest of the schedule.
          const zero = layout.unitIds.filter((_, i) => aulm.fNorms[i] === 0);
          if (zero.length > 0) {
            layout.scaleWeights(layout.unitIds.map((id) => (fNormsByUnit[id] === 0 ? 0 : 1)));
            masked.push(...zero);
            maskLayout?.dispose();
            maskLayout = UnitWeightLayout.build(ctx.model, ctx.graph, { roles, units: masked });
          }
          notes.push(`ssr: phase ${phase.name}: ${zero.length} of ${layout.unitCount} groups reached zero.`);
        }
      } finally {
        aulm.dispose();
        if (layout !== fullLayout) layout.dispose();
      }
    }
    notes.push(`ssr: ${options.regularizer === 'l21' ? 'l2,1' : 'l2,0'} regulariser, ${options.schedule} schedule, ${updates} F/Y update(s) every ${updateEvery} steps, ρ = ${options.rho}.`);
    // Layer-wise phases already left W equal to its masked state; only global mode adopts F.
    return decideFromAuxiliary(ctx, ssrMethod.name, fullLayout, auxiliary, fNormsByUnit, options.adoptAuxiliary && auxiliary !== undefined, notes);
  } finally {
    disposeWeightSet(auxiliary);
    maskLayout?.dispose();
    fullLayout.dispose();
  }
}

export const ssrMethod = defineMethod({
  name: 'ssr',
  takesGroupCounts: true,
  training: 'optional',
  targets: TARGET_KINDS,
  settle: settleSsrOptions,
  run: runSsr,
});
