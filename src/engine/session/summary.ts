import type * as tf from '@tensorflow/tfjs';
import type { ModelSummary } from '../../protocol/events.js';
import type { ChannelGraph } from '../graph/types.js';

/** The model as the `start` event names it; apart from session.ts so that analysis loads no session code. */
export function summarizeModel(model: tf.LayersModel, graph: ChannelGraph, cost: { params: number; flops: number }): ModelSummary {
  const input = model.inputs[0]?.shape ?? [];
  const output = model.outputs[0]?.shape ?? [];
  return {
    name: model.name,
    layers: model.layers.length,
    params: cost.params,
    flops: cost.flops,
    prunableGroups: graph.groups.length,
    prunableChannels: graph.units.length,
    inputShape: [...input],
    outputShape: [...output],
  };
}
