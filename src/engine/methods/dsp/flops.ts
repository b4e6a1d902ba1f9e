import type * as tf from '@tensorflow/tfjs';

/**
 * Forward FLOPs of one sample with the project's convention (a multiply-add counts as 2;
 * convolutions and dense layers only). DSP's bisection needs the cost of candidate plans
 * before any model is built, so it counts with the same per-layer formulas here.
 */

function shapeOf(shape: tf.Shape | tf.Shape[]): number[] {
  return (Array.isArray(shape[0]) ? shape[0] : shape) as number[];
}

function product(values: number[]): number {
  return values.reduce((a, b) => a * b, 1);
}

export function layerFlops(layer: tf.layers.Layer): number {
  const type = layer.getClassName();
  if (!layer.inboundNodes.length) return 0;
  const node = layer.inboundNodes[0];
  const input = shapeOf(node.inputShapes).slice(1) as number[];
  const output = shapeOf(node.outputShapes).slice(1) as number[];
  const config = layer.getConfig() as { kernelSize?: number | number[]; depthMultiplier?: number };
  const kernelArea = () => {
    const k = config.kernelSize ?? 1;
    return Array.isArray(k) ? product(k) : k * k;
  };
  const inChannels = input[input.length - 1];
  const outChannels = output[output.length - 1];
  const outPositions = product(output.slice(0, -1));
  switch (type) {
    case 'Conv1D':
    case 'Conv2D':
    case 'Conv3D':
      return 2 * kernelArea() * inChannels * outChannels * outPositions;
    case 'DepthwiseConv2D':
      return 2 * kernelArea() * outChannels * outPositions;
    case 'SeparableConv2D': {
      const multiplier = config.depthMultiplier ?? 1;
      return 2 * kernelArea() * inChannels * multiplier * outPositions + 2 * inChannels * multiplier * outChannels * outPositions;
    }
    case 'Dense':
      return 2 * inChannels * outChannels * product(input.slice(0, -1));
    default:
      return 0;
  }
}

export function modelFlops(model: tf.LayersModel): number {
  return model.layers.reduce((sum, layer) => sum + layerFlops(layer), 0);
}
