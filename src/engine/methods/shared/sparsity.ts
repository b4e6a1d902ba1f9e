import type { Phase, SparsityEvent } from '../../../protocol/events.js';
import type { ChannelGraph } from '../../graph/types.js';
import type { MethodContext } from '../types.js';

/** Sparsity events per training run of a method phase, at most (epoch ends and forced reports come on top). */
export const SPARSITY_EVENTS_PER_RUN = 50;

type Groups = SparsityEvent['groups'];

/** Zero channels per graph group, from the set of zero unit ids. */
export function groupsFromZeroUnits(graph: ChannelGraph, zeroUnits: Iterable<number>): Groups {
  const zero = new Int32Array(graph.groups.length);
  for (const unit of zeroUnits) zero[graph.units[unit].group]++;
  return graph.groups.map((g) => ({ group: g.id, channels: g.channels, zero: Math.min(g.channels, zero[g.id]) }));
}

/** Unit ids whose norm (in `unitIds` order) is exactly zero. */
export function zeroNormUnits(unitIds: readonly number[], norms: ArrayLike<number>): number[] {
  return unitIds.filter((_, i) => norms[i] === 0);
}

/**
 * Streams a method's `sparsity` events while it trains: about `SPARSITY_EVENTS_PER_RUN` per
 * training run (`step`), and whenever the method asks (`report`: epoch ends, a new selection).
 * Steps count on across the method's training runs, so they only grow within the phase. Reading
 * the state never draws random numbers or touches the weights.
 */
export class SparsityStream {
  private base = 0;
  private lastStep = 0;
  private epoch = 0;

  constructor(
    private readonly ctx: Pick<MethodContext, 'emit' | 'graph'>,
    private readonly method: string,
    private readonly criterion: string,
    private readonly phase: Phase = 'train',
  ) {}

  /** After a training step: reports when due. `zero` is read only then. */
  step(info: { epoch: number; globalStep: number; totalSteps: number }, zero: () => Groups | Iterable<number> | undefined): void {
    this.lastStep = this.base + info.globalStep + 1;
    this.epoch = info.epoch;
    const every = Math.max(1, Math.ceil(info.totalSteps / SPARSITY_EVENTS_PER_RUN));
    if ((info.globalStep + 1) % every === 0) this.report(zero());
  }

  /** Reports now: `zero` as per-group counts or as the zero unit ids (undefined: nothing to report). */
  report(zero: Groups | Iterable<number> | undefined, at: { epoch?: number } = {}): void {
    if (at.epoch !== undefined) this.epoch = at.epoch;
    if (zero === undefined) return;
    const groups = isGroups(zero) ? zero : groupsFromZeroUnits(this.ctx.graph, zero);
    this.ctx.emit({ type: 'sparsity', phase: this.phase, method: this.method, step: this.lastStep, epoch: this.epoch, criterion: this.criterion, groups });
  }

  /** Before a training run: its steps count on from the current step (SSR's layer phases). */
  nextRun(): void {
    this.base = this.lastStep;
  }

  /** Moves the step on without training (i-SpaSP's support iterations). */
  advance(): void {
    this.lastStep++;
  }
}

function isGroups(zero: Groups | Iterable<number>): zero is Groups {
  return Array.isArray(zero) && zero.length > 0 && typeof zero[0] === 'object';
}
