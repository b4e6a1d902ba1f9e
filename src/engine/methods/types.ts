import type * as tf from '@tensorflow/tfjs';
import type { PruneConfig, Target, TrainConfig } from '../config/types.js';
import type { ChannelGraph } from '../graph/types.js';
import type { EngineEvent, Phase } from '../../protocol/events.js';
import type { Dataset, TrainHooks, EvalResult } from '../train/types.js';

/**
 * What a method decided. Most methods name channel units to remove and the session
 * removes them physically with the shared surgery. A method that changes the architecture
 * in its own way (DSP's per-group convolutions) returns the rebuilt model instead.
 */
export type PruningDecision =
  | { kind: 'units'; remove: number[]; notes?: string[] }
  | { kind: 'model'; model: tf.LayersModel; channelsRemoved: number; notes?: string[] };

export interface MethodContext {
  config: PruneConfig;
  /** The working model; methods may train it in place. */
  model: tf.LayersModel;
  graph: ChannelGraph;
  data?: Dataset;
  /** Seeded random numbers in [0, 1). */
  random: () => number;
  emit: (event: EngineEvent) => void;
  /** Throws CancelledError when the session was cancelled; call between steps. */
  checkCancelled: () => void;
  signal: AbortSignal;
  /** Runs the shared training loop on ctx.model with events, ETA and cancellation. */
  train: (settings: TrainConfig, hooks?: TrainHooks, phase?: Phase) => Promise<EvalResult | undefined>;
  evaluate: () => Promise<EvalResult | undefined>;
  /** Emits a `layers` event for the current weights (rate-limited unless forced). */
  reportLayers: (phase: Phase, step: number, force?: boolean) => void;
  /** Picks units with the lowest scores until the config's target is met. */
  selectUnits: (scores: ArrayLike<number>, target?: Target) => number[];
}

export interface PruningMethod {
  name: PruneConfig['method'];
  /** Whether the method needs `data` in the config. */
  needsData: boolean;
  run(ctx: MethodContext): Promise<PruningDecision>;
}
