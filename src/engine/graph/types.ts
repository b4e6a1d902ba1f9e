/**
 * The channel-group graph: which output channels of which layers are tied together, so that
 * removing one means removing a slice from every member. Built from a tf.LayersModel's
 * topology by union-find over channel "atoms" (tensor, channel).
 */

import type { SliceRole } from '../layers/types.js';

/** One slice of one weight that belongs to a channel unit. */
export interface WeightSlice {
  layer: string;
  /** Weight name inside the layer: kernel, bias, gamma, beta, moving_mean, moving_variance, depthwise_kernel, pointwise_kernel. */
  weight: string;
  /** Axis of the weight tensor the indices address. */
  axis: number;
  indices: number[];
  role: SliceRole;
}

/** The smallest prunable thing: one channel carried by several tensors, plus every weight slice tied to it. */
export interface ChannelUnit {
  /** Index in ChannelGraph.units. */
  id: number;
  group: number;
  /** Position of this unit inside its group (0..group.channels-1). */
  index: number;
  slices: WeightSlice[];
}

export interface ChannelGroup {
  id: number;
  /** Names of every layer that has a slice in this group (producers first). */
  members: string[];
  producers: string[];
  consumers: string[];
  /** Number of units (channels) in the group. */
  channels: number;
  units: number[];
  /** True when producers come from more than one layer (residual add) or the group passes a concat. */
  coupled: boolean;
}

export type LayerStatus = 'prunable' | 'coupled' | 'blocked';

export interface LayerInfo {
  name: string;
  type: string;
  status: LayerStatus;
  /** Group of the layer's output channels, when they are prunable. */
  group?: number;
  reason?: string;
  /** Output channels (last axis of the output shape). */
  outChannels: number;
  inChannels: number;
  params: number;
  flops: number;
  /** Whether the layer owns an output-channel dimension that pruning can change (conv/dense). */
  ownsChannels: boolean;
  /**
   * For layers that record their width in their config alone (a reshape's target shape): the unit
   * of each output channel (-1 where blocked), since after a concat they span several groups.
   */
  outputUnits?: number[];
}

/**
 * Every unit's weight slices without an object per slice: what `ChannelUnit.slices` lists, in its
 * order. Unit u's entries are `entries[offsets[u] .. offsets[u + 1])`, each `rank · span + index`:
 * index `index` along the axis of slice key `keys[rank]`.
 */
export interface SliceTable {
  keys: { layer: string; weight: string; axis: number; role: SliceRole }[];
  span: number;
  offsets: Int32Array;
  entries: Int32Array | Float64Array;
}

export interface ChannelGraph {
  layers: LayerInfo[];
  groups: ChannelGroup[];
  units: ChannelUnit[];
  /** The units' slices in compact form (analyzeModel's graphs; `sliceTableOf` builds one for any graph). */
  sliceTable?: SliceTable;
}
