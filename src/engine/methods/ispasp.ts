import * as tf from '@tensorflow/tfjs';
import type { Target, TrainConfig } from '../config/types.js';
import type { WeightSlice } from '../graph/types.js';
import type { MethodContext, PruningDecision } from './types.js';
import { disposeBatch } from '../train/types.js';
import { DEFAULT_TRAIN } from '../config/index.js';
import { defineMethod } from './shared/descriptor.js';
import { findBlocks, hiddenActivations, secondLayerOf, zeroSlices, type IspaspBlock } from './ispasp/blocks.js';
import { searchSupport } from './ispasp/support.js';
import { allocateWidths } from './ispasp/allocate.js';
import { CostTracker } from '../metrics/cost.js';
import { tensorMemoryLimit } from '../backend/heap.js';
import { fittingEvalBatch } from '../train/memory.js';
import { SparsityStream } from './shared/sparsity.js';

/** i-SpaSP settings (`ispasp` section of the config); the schema's defaults follow the official code. */
export interface IspaspOptions {
  iterations: number;
  candidateFactor: number;
  calibrationSamples: number;
  batchSize: number;
  importance: 'signed' | 'magnitude';
  threshold: 'contribution' | 'mass';
  includeNorm: boolean;
  blockFinetuneEpochs: number;
  blockFinetuneLearningRate: number;
  /** Keep this fraction of every block instead of deriving widths from the target. */
  keepRatio?: number;
}

/** The model-level measure a size target refers to, as a function of the units removed. */
function targetMeasure(ctx: MethodContext, target: Exclude<Target, { normThreshold: number }>): { value: number; measure: (removed: number[]) => number } {
  const cost = new CostTracker(ctx.model, ctx.graph);
  if ('flopsReduction' in target) return { value: target.flopsReduction, measure: (r) => cost.reductionWithout(r).flops };
  if ('paramsReduction' in target) return { value: target.paramsReduction, measure: (r) => cost.reductionWithout(r).params };
  if ('latencyReduction' in target) return { value: target.latencyReduction, measure: (r) => cost.reductionWithout(r).latency ?? 0 };
  return { value: target.channelRatio, measure: (r) => r.length / Math.max(1, ctx.graph.units.length) };
}

/** Units of each block beyond its first `keep[b]` channels: which ones does not change the cost. */
function removedForCounts(blocks: readonly IspaspBlock[], keep: readonly number[]): number[] {
  return blocks.flatMap((block, b) => block.group.units.slice(keep[b]));
}

/** Calibration samples whose inputs and hidden activations (the largest block's, all kept at once) fit a quarter of the tensor memory. */
function calibrationThatFits(model: tf.LayersModel, blocks: readonly IspaspBlock[], wanted: number): number {
  const elements = (t: tf.SymbolicTensor) => t.shape.slice(1).reduce<number>((n, d) => n * (d ?? 1), 1);
  const perSample = 4 * (model.inputs.reduce((n, i) => n + elements(i), 0) + Math.max(0, ...blocks.map((b) => elements(b.hidden))));
  return Math.max(1, Math.min(wanted, Math.floor(tensorMemoryLimit().bytes / 4 / perSample)));
}

async function runIspasp(ctx: MethodContext, options: IspaspOptions): Promise<PruningDecision> {
  // The session admits only configs with data.
  if (!ctx.data) throw new Error('i-SpaSP runs on calibration data');
  const { blocks, skipped } = findBlocks(ctx.model, ctx.graph, ctx.config.exclude);
  const notes: string[] = [];
  if (skipped.length > 0) notes.push(`i-SpaSP prunes private producer→consumer blocks only; ${skipped.length} channel group(s) kept whole (${[...new Set(skipped.map((s) => s.reason))].join('; ')}).`);
  if (blocks.length === 0) {
    ctx.emit({ type: 'warning', message: 'i-SpaSP found no prunable two-layer block (every channel group is coupled or excluded)' });
    return { kind: 'units', remove: [], notes };
  }

  const widths = blocks.map((b) => b.group.units.length);
  let keep: number[];
  if (options.keepRatio !== undefined) {
    keep = widths.map((m) => Math.max(1, Math.min(m, Math.floor(options.keepRatio! * m))));
  } else {
    // The session admits only the descriptor's target kinds unless keepRatio fixes the widths.
    const { value, measure } = targetMeasure(ctx, ctx.config.target as Exclude<Target, { normThreshold: number }>);
    const reductionAt = (k: readonly number[]) => measure(removedForCounts(blocks, k));
    // "uniform" and "sensitivity" set each block's width; "global" is i-SpaSP's own allocation.
    const allocated = ctx.allocateGroups(blocks.map((b) => b.group));
    const allocation = allocated
      ? { keep: blocks.map((b, i) => widths[i] - (allocated.get(b.group.id) ?? 0)), maximum: reductionAt(widths.map(() => 1)) }
      : allocateWidths(widths, value, reductionAt);
    keep = allocation.keep;
    if (allocation.maximum < value - 0.02) {
      ctx.emit({ type: 'warning', message: `i-SpaSP can reach at most ${(allocation.maximum * 100).toFixed(1)}% of the ${(value * 100).toFixed(1)}% target by pruning its ${blocks.length} block(s); the rest of the model is coupled or excluded` });
    }
    const how = allocated ? ` (allocation ${ctx.config.allocation})` : '';
    notes.push(`i-SpaSP widths${how}: ${blocks.map((b, i) => `${b.producer} ${keep[i]}/${widths[i]}`).join(', ')} (planned reduction ${(reductionAt(keep) * 100).toFixed(2)}%).`);
  }

  const samples = calibrationThatFits(ctx.model, blocks, options.calibrationSamples);
  if (samples < options.calibrationSamples) {
    notes.push(`i-SpaSP used ${samples} calibration samples, not ${options.calibrationSamples}: the inputs and the largest block's activations of more do not fit a quarter of ${tensorMemoryLimit().where}.`);
  }
  const calibration = await ctx.data.calibration(samples);
  const chunk = fittingEvalBatch(ctx.model, options.batchSize);
  const removedConsumerSlices: WeightSlice[] = [];
  const remove: number[] = [];
  let globalIteration = 0;
  const sparsity = new SparsityStream(ctx, ispaspMethod.name, 'outside the support: channels of pruned blocks, and of the block being searched, that its current support leaves out');
  try {
    for (let b = 0; b < blocks.length; b++) {
      ctx.checkCancelled();
      const block = blocks[b];
      ctx.reportProgress(b / blocks.length, `i-SpaSP: searching the support of block ${b + 1} of ${blocks.length} (${block.producer})`);
      if (keep[b] >= widths[b]) continue;
      // Earlier blocks are already masked, so the block sees the partly pruned network (§5.3).
      const hidden = hiddenActivations(ctx.model, block, calibration.x, chunk);
      const secondLayer = options.includeNorm ? secondLayerOf(block) : secondLayerOf({ ...block, norms: block.norms.map(() => null) });
      let result;
      try {
        result = searchSupport(hidden, secondLayer, {
          size: keep[b],
          iterations: options.iterations,
          candidateFactor: options.candidateFactor,
          importance: options.importance,
          threshold: options.threshold,
          onIteration: (info) => {
            const inSupport = new Set(info.support);
            sparsity.advance();
            sparsity.report([...remove, ...block.group.units.filter((_, index) => !inSupport.has(index))]);
            ctx.emit({
              type: 'signal', method: ispaspMethod.name, name: 'residual', step: globalIteration++, value: info.relativeResidual,
              detail: { layer: block.producer, block: b, iteration: info.iteration, residual: info.residual, kept: keep[b], channels: widths[b] },
            });
          },
        });
      } finally {
        tf.dispose(hidden);
      }
      const kept = new Set(result.support);
      const removedHere = block.group.units.filter((_, index) => !kept.has(index));
      remove.push(...removedHere);
      const slices = removedHere.flatMap((id) => ctx.graph.units[id].slices.filter((s) => s.role === 'consumer'));
      removedConsumerSlices.push(...slices);
      zeroSlices(ctx.model, slices);
      sparsity.report(remove);
      ctx.emit({
        type: 'signal', method: ispaspMethod.name, name: 'blockResidual', step: b, value: result.denseEnergy > 0 ? result.residual / result.denseEnergy : 0,
        detail: { layer: block.producer, kept: keep[b], channels: widths[b], iterations: result.iterations, residual: result.residual },
      });

      if (options.blockFinetuneEpochs > 0) {
        const base = ctx.config.train ?? DEFAULT_TRAIN;
        const settings: TrainConfig = { ...base, epochs: options.blockFinetuneEpochs, learningRate: options.blockFinetuneLearningRate, schedule: 'constant' };
        // Removed channels stay removed while the rest of the network adapts.
        await ctx.train(settings, { afterStep: () => zeroSlices(ctx.model, removedConsumerSlices) }, 'train');
      }
      ctx.reportLayers('train', b + 1, b === blocks.length - 1);
    }
  } finally {
    disposeBatch(calibration);
  }
  return { kind: 'units', remove: remove.sort((a, c) => a - c), notes };
}

export const ispaspMethod = defineMethod({
  name: 'ispasp',
  training: 'optional',
  targets: ['flopsReduction', 'paramsReduction', 'latencyReduction', 'channelRatio'],
  takesGroupCounts: true,
  ignoresTarget: (options) => options.keepRatio !== undefined,
  run: runIspasp,
});
