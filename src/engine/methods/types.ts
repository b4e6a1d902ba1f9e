import type * as tf from '@tensorflow/tfjs';
import type { MethodName, MethodSections, PruneConfig, Target, TargetKind, TrainConfig } from '../config/types.js';
import type { ChannelGraph, ChannelGroup } from '../graph/types.js';
import type { EngineEvent, Phase } from '../../protocol/events.js';
import type { Dataset, TrainHooks, EvalResult } from '../train/types.js';

/**
 * What a method decided. Most methods name channel units to remove and the session
 * removes them physically with the shared surgery. A method that changes the architecture
 * in its own way (DSP's per-group convolutions) returns the rebuilt model instead.
 */
export type PruningDecision =
  | { kind: 'units'; remove: number[]; notes?: string[] }
  | {
    kind: 'model';
    model: tf.LayersModel;
    channelsRemoved: number;
    /**
     * The layers of `model` that hold an original layer's channels, for each layer the method
     * split or renamed (DSP's per-group convolutions); every other layer keeps its name.
     */
    layerParts?: Record<string, string[]>;
    notes?: string[];
  };

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
  /** Work without training steps (i-SpaSP's support search): `fraction` of the method's phase done, and what runs, for the session's progress. */
  reportProgress: (fraction: number, activity: string) => void;
  /** Emits a `layers` event for the current weights (rate-limited unless forced). */
  reportLayers: (phase: Phase, step: number, force?: boolean) => void;
  /** Picks units with the lowest scores until the config's target is met. */
  selectUnits: (scores: ArrayLike<number>, target?: Target) => number[];
  /**
   * For a method that picks the channels within each group itself (i-SpaSP, OCSPruner): how many
   * channels each of `groups` loses (by group id) under the config's `"allocation"`: `uniform` the
   * same fraction of each, `sensitivity` from the dense model's curves (on the current model, before
   * any pruning); undefined for `global`, where the method allocates its own way. Only `groups` lose channels.
   */
  allocateGroups: (groups: readonly ChannelGroup[], target?: Target) => Map<number, number> | undefined;
}

/** Whether a method runs the config's `train` phase: never, when configured, or only with `train.epochs` > 0. */
export type TrainingNeed = 'none' | 'optional' | 'required';

/**
 * Everything the session knows about a method: what it needs, which targets it prunes to,
 * its options (defaults from the schema, one validator) and how to run it.
 */
export interface MethodDescriptor<Options extends object = object, Name extends MethodName = MethodName> {
  name: Name;
  /** Whether the method needs `data` in the config (from the protocol's method list). */
  needsData: boolean;
  training: TrainingNeed;
  /** Target kinds the method prunes to. */
  targets: readonly TargetKind[];
  /**
   * Whether the method prunes each group to a count the config's `"allocation"` (global, uniform,
   * sensitivity) sets: through `ctx.selectUnits` (a ranking of units) or `ctx.allocateGroups`.
   */
  takesGroupCounts: boolean;
  /** Options under which the method does not read the target (i-SpaSP's fixed keep ratio): any kind is then accepted. */
  ignoresTarget?(options: Options): boolean;
  /** The options of an empty section: the schema's defaults, settled. */
  defaults: Readonly<Options>;
  /** The config's section over the defaults; throws a UserError naming the file and the field. */
  options(config: OptionsSource): Options;
  run(ctx: MethodContext): Promise<PruningDecision>;
}

/** What a method's options are read from: the config's sections and its path, for messages. */
export type OptionsSource = Pick<PruneConfig, 'configPath'> & MethodSections;
