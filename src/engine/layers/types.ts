import type * as tf from '@tensorflow/tfjs';

/**
 * What one layer class means to channel pruning. Like Torch-Pruning's per-layer pruners
 * (`ConvPruner`, `LinearPruner`, `BatchnormPruner`), an entry is the only code that knows its
 * layer's channel axes; the graph analysis, costs, statistics, surgery and the methods ask it.
 */

/** A layer's part in the channel graph. */
export type ChannelRole =
  /** The model input: its channels are fixed. */
  | 'input'
  /** Creates its output channels with a weight (one filter or unit each) and reads its input channels through one axis. */
  | 'producer'
  /** Input channel c gives output channels c·m … c·m+m−1, through per-channel filters (depthwise conv). */
  | 'depthwise'
  /** Input channel c is output channel c (activations, pooling, padding, dropout, batch norm and other per-channel layers). */
  | 'channelwise'
  /** Element-wise merge of equal-width inputs: channel c of every input is output channel c. */
  | 'merge'
  /** Joins its inputs' channels side by side (on the channel axis). */
  | 'concat'
  /** NHWC flatten: feature f comes from channel f mod C. */
  | 'flatten'
  /** Channels through it are kept. */
  | 'blocked';

/** The family of a layer class, for code that treats kinds of layers alike (1-D, 2-D and 3-D variants share one). */
export type LayerOp =
  | 'input' | 'conv' | 'separable-conv' | 'depthwise-conv' | 'transposed-conv' | 'dense'
  | 'batch-norm' | 'layer-norm' | 'prelu' | 'relu' | 'activation' | 'softmax' | 'elementwise-activation'
  | 'pooling' | 'global-pooling' | 'padding' | 'cropping' | 'upsampling' | 'dropout' | 'noise' | 'preprocessing'
  | 'add' | 'multiply' | 'average' | 'maximum' | 'minimum' | 'subtract' | 'concat' | 'flatten' | 'reshape' | 'embedding' | 'recurrent' | 'opaque';

/** A symbolic tensor between layers, as the channel graph sees it. */
export interface ChannelTensor {
  shape: readonly (number | null)[];
  /** Size of the last (channel) axis; 0 when unknown. */
  channels: number;
}

/** One call of a layer: its tensors, config and weights by short name. */
export interface LayerCall {
  name: string;
  className: string;
  inputs: readonly ChannelTensor[];
  outputs: readonly ChannelTensor[];
  config: Record<string, unknown>;
  weights: ReadonlyMap<string, tf.LayerVariable>;
}

/** The role a weight slice plays for the channel it belongs to. */
export type SliceRole = 'producer' | 'consumer' | 'norm' | 'depthwise';

/** What a layer's channel rule may do to the channel graph, for one call of the layer. */
export interface ChannelWiring {
  /** Channel `ca` of `a` and channel `cb` of `b` are the same channel. */
  tie(a: ChannelTensor, ca: number, b: ChannelTensor, cb: number): void;
  /** Index `index` along `axis` of this layer's `weight` belongs to channel `c` of `t`. */
  slice(t: ChannelTensor, c: number, weight: string, axis: number, role: SliceRole, index: number): void;
  /** Every channel of `t` is kept, for `reason`. */
  block(t: ChannelTensor, reason: string): void;
  /** Groups whose channels pass through `t` are coupled (a channel concat). */
  couple(t: ChannelTensor): void;
}

/** A weight axis; negative axes count from the end (−1 is the last). */
export interface WeightAxis {
  weight: string;
  axis: number;
}

export interface LayerSpec {
  className: string;
  op: LayerOp;
  /** Spatial dimensions of its input (1, 2 or 3) where the class fixes them. */
  spatialRank?: number;
  role: ChannelRole;
  /** For blocked layers: why channels cannot pass (documentation; the analysis reports the layer as not supported). */
  blockedBecause?: string;
  /** The weight axis that indexes its output channels; depthwise: input channel axis `times` the multiplier axis. */
  outputChannels?: WeightAxis & { times?: WeightAxis };
  /** The weight axis that indexes its input channels. */
  inputChannels?: WeightAxis;
  /** The config field that holds its output width; surgery lowers it by the channels removed along `outputChannels`. */
  widthField?: 'filters' | 'units';
  /** Config fields that record its channel width without a weight (a reshape's target shape): the config narrowed to `channels`. */
  narrowConfig?(config: Record<string, unknown>, channels: number): Record<string, unknown>;
  /** FLOPs per element of each compute weight, for one call with these tensors (a multiply-add counts as 2). */
  flops?(call: Pick<LayerCall, 'inputs' | 'outputs'>): [weight: string, factor: number][];
  /** Applies the layer's channel rule to one call (after the checks every layer gets: one output, known channels, channels-last). */
  wire(call: LayerCall, wiring: ChannelWiring): void;
  /** Whether its output keeps the input's channels at every position, given its config (role channelwise). */
  keepsChannels?(config: Record<string, unknown>, rank: number): boolean;
  /** Whether an all-zero channel comes out all zero, in training and at inference, given its config. */
  zeroPreserving?(config: Record<string, unknown>): boolean;
  /** The element-wise activation it ends with ('linear' for none), given its config. */
  activation?(config: Record<string, unknown>): string;
}
