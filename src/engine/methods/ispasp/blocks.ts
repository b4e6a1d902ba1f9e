import * as tf from '@tensorflow/tfjs';
import type { ChannelGraph, ChannelGroup, WeightSlice } from '../../graph/types.js';
import { appliedActivation, isOp, layerWeight, specOf } from '../../layers/index.js';

/**
 * A two-layer block as i-SpaSP sees it: one producer layer whose output channels are private
 * to it (no residual add or concat), the hidden tensor those channels reach the consumers
 * through, and the consumers (the second layer). Pruning a hidden channel removes the
 * producer's filter, its norm slices and every consumer's input slice, so masking the
 * hidden tensor is exactly what physical removal does to the consumers' outputs.
 */
export interface IspaspBlock {
  group: ChannelGroup;
  producer: string;
  consumers: tf.layers.Layer[];
  /** The tensor carrying the group's channels on its last axis, read by every consumer. */
  hidden: tf.SymbolicTensor;
  /** Whether the consumers read the hidden tensor through a Flatten. */
  flattened: boolean;
  /** Per consumer: the batch norm applied right after it (part of the second layer), if any. */
  norms: (tf.layers.Layer | null)[];
}

export interface BlockScan {
  blocks: IspaspBlock[];
  /** Groups left alone, with the reason (shown to the user). */
  skipped: { group: number; reason: string }[];
}

function layerIndex(model: tf.LayersModel): Map<string, number> {
  return new Map(model.layers.map((l, i) => [l.name, i]));
}

/** The batch norm that alone reads a linear layer's output; it belongs to the second layer. */
function followingNorm(layer: tf.layers.Layer): tf.layers.Layer | null {
  if (appliedActivation(layer) !== 'linear' || layer.outboundNodes.length !== 1) return null;
  const next = layer.outboundNodes[0].outboundLayer;
  return isOp(next, 'batch-norm') ? next : null;
}

/** Finds the private producer→consumer blocks in network order. */
export function findBlocks(model: tf.LayersModel, graph: ChannelGraph, exclude: readonly string[] = []): BlockScan {
  const order = layerIndex(model);
  const blocks: IspaspBlock[] = [];
  const skipped: { group: number; reason: string }[] = [];
  const excluded = new Set(exclude);
  for (const group of graph.groups) {
    const skip = (reason: string) => skipped.push({ group: group.id, reason });
    if (group.units.length === 0) continue;
    if (group.coupled || group.producers.length !== 1) { skip('coupled channels (residual add or concat)'); continue; }
    const producer = group.producers[0];
    if (excluded.has(producer)) { skip(`layer ${producer} is excluded`); continue; }
    if (group.consumers.length === 0) { skip('no consumer layer'); continue; }
    const consumers = group.consumers.map((name) => model.getLayer(name));
    let hidden: tf.SymbolicTensor | null = null;
    let flattened = false;
    let consistent = true;
    for (const consumer of consumers) {
      if (consumer.inboundNodes.length !== 1 || consumer.inboundNodes[0].inputTensors.length !== 1) { consistent = false; break; }
      let input = consumer.inboundNodes[0].inputTensors[0];
      let viaFlatten = false;
      if (specOf(input.sourceLayer)?.role === 'flatten') {
        input = input.sourceLayer.inboundNodes[0].inputTensors[0];
        viaFlatten = true;
      }
      if (hidden && (hidden.id !== input.id || viaFlatten !== flattened)) { consistent = false; break; }
      hidden = input;
      flattened = viaFlatten;
    }
    if (!consistent || !hidden) { skip('consumers read the channels through different paths'); continue; }
    if (hidden.shape[hidden.shape.length - 1] !== group.channels) { skip('hidden tensor does not carry the group on its last axis'); continue; }
    blocks.push({ group, producer, consumers, hidden, flattened, norms: consumers.map(followingNorm) });
  }
  blocks.sort((a, b) => (order.get(a.producer) ?? 0) - (order.get(b.producer) ?? 0));
  return { blocks, skipped };
}

/** The second layer's linear part (bias included, activation left out), then its batch norm in inference mode. */
function linearPart(layer: tf.layers.Layer, x: tf.Tensor): tf.Tensor {
  const kernel = layerWeight(layer, 'kernel')?.read();
  const bias = layerWeight(layer, 'bias')?.read();
  const config = layer.getConfig() as { strides?: number[]; padding?: string; dilationRate?: number[] | number; dataFormat?: string };
  let y: tf.Tensor | null = null;
  if (isOp(layer, 'dense') && kernel && x.rank === 2) {
    y = tf.matMul(x as tf.Tensor2D, kernel as tf.Tensor2D);
  } else if (isOp(layer, 'conv', 2) && kernel && x.rank === 4 && (config.dataFormat ?? 'channelsLast') === 'channelsLast' && (config.padding === 'same' || config.padding === 'valid')) {
    const dilation = config.dilationRate ?? [1, 1];
    y = tf.conv2d(x as tf.Tensor4D, kernel as tf.Tensor4D, (config.strides ?? [1, 1]) as [number, number], config.padding, 'NHWC', (typeof dilation === 'number' ? [dilation, dilation] : dilation) as [number, number]);
  }
  if (!y) return layer.apply(x, { training: false }) as tf.Tensor;
  return bias ? tf.add(y, bias) : y;
}

/**
 * φ₂ of a block as a function of the hidden tensor: every consumer's linear output followed
 * by its batch norm in inference mode, flattened per sample and concatenated. The dense and
 * the pruned path call this same function, so both see identical normalisation (the
 * official code lets the pruned copy run its batch norm in training mode instead).
 */
export function secondLayerOf(block: IspaspBlock): (h: tf.Tensor) => tf.Tensor {
  return (h: tf.Tensor) => {
    const x = block.flattened ? tf.reshape(h, [h.shape[0], -1]) : h;
    const outputs = block.consumers.map((consumer, i) => {
      let y = linearPart(consumer, x);
      const norm = block.norms[i];
      if (norm) y = norm.apply(y, { training: false }) as tf.Tensor;
      return tf.reshape(y, [y.shape[0], -1]);
    });
    return outputs.length === 1 ? outputs[0] : tf.concat(outputs, 1);
  };
}

/** Runs the (partly masked) network up to the block's hidden tensor, in inference mode, chunk by chunk. */
export function hiddenActivations(model: tf.LayersModel, block: IspaspBlock, x: tf.Tensor, chunkSize: number): tf.Tensor[] {
  // A view sharing the model's layers; it is never disposed because that would dispose them.
  const upToHidden = tf.model({ inputs: model.inputs, outputs: block.hidden });
  const chunks: tf.Tensor[] = [];
  const n = x.shape[0];
  for (let start = 0; start < n; start += chunkSize) {
    const size = Math.min(chunkSize, n - start);
    chunks.push(tf.tidy(() => upToHidden.apply(tf.slice(x, start, size), { training: false }) as tf.Tensor));
  }
  return chunks;
}

/**
 * Sets the given weight slices to zero. Zeroing the consumer slices of removed channels
 * makes the model compute exactly what the physically pruned model computes.
 */
export function zeroSlices(model: tf.LayersModel, slices: readonly WeightSlice[]): void {
  const byWeight = new Map<string, { slice: WeightSlice; indices: Set<number> }[]>();
  for (const slice of slices) {
    const key = `${slice.layer}\u0000${slice.weight}`;
    const list = byWeight.get(key) ?? [];
    let entry = list.find((e) => e.slice.axis === slice.axis);
    if (!entry) list.push((entry = { slice, indices: new Set() }));
    for (const i of slice.indices) entry.indices.add(i);
    byWeight.set(key, list);
  }
  for (const list of byWeight.values()) {
    const { layer: layerName, weight } = list[0].slice;
    const variable = layerWeight(model.getLayer(layerName), weight);
    if (!variable) continue;
    tf.tidy(() => {
      let value = variable.read() as tf.Tensor;
      for (const { slice, indices } of list) {
        const size = variable.shape[slice.axis] as number;
        const keep = new Float32Array(size).fill(1);
        for (const i of indices) if (i < size) keep[i] = 0;
        const shape = variable.shape.map((_, a) => (a === slice.axis ? size : 1)) as number[];
        value = tf.mul(value, tf.tensor(keep, shape));
      }
      variable.write(value);
    });
  }
}
