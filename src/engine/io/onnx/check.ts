import * as tf from '@tensorflow/tfjs';
import type { OutputAgreement } from '../../../protocol/events.js';
import { channelsFirstShape, nhwcToNchw } from '../../data/layout.js';
import { formatShape } from '../../../protocol/format.js';
import { onnxRuntime, runOnnx } from './runtime.js';
import { outputAgreement } from '../../metrics/agreement.js';

/**
 * The runtime model against ONNX Runtime on the same inputs: the runtime model takes [N, H, W, C]
 * and gives rank-4 outputs as [N, H, W, C]; ONNX Runtime gets the inputs transposed to
 * [N, C, H, W], and the runtime model's outputs are transposed to ONNX layout before comparing.
 */

/** `count` seeded standard-normal inputs in the runtime model's layout. */
export function randomRuntimeInput(model: tf.LayersModel, count: number, seed = 17): tf.Tensor {
  const shape = [count, ...model.inputs[0].shape.slice(1).map((d) => d ?? 1)];
  return tf.randomNormal(shape, 0, 1, 'float32', seed);
}

/** The worst of several outputs' agreements. */
export function worstAgreement(agreements: readonly OutputAgreement[]): OutputAgreement {
  return {
    maxAbsDifference: Math.max(0, ...agreements.map((a) => a.maxAbsDifference)),
    maxRelDifference: Math.max(0, ...agreements.map((a) => a.maxRelDifference)),
  };
}

/**
 * Runs `input` (runtime layout) through the runtime model and through the .onnx file or bytes in
 * ONNX Runtime; the worst difference over the outputs. Undefined when onnxruntime-node is absent.
 */
export async function compareWithOnnxRuntime(model: tf.LayersModel, onnxModel: string | Uint8Array, input: tf.Tensor): Promise<OutputAgreement | undefined> {
  if (!(await onnxRuntime())) return undefined;
  const values = (await input.data()) as Float32Array;
  const feed = input.rank === 4 ? { data: nhwcToNchw(values, input.shape), shape: channelsFirstShape(input.shape) } : { data: values, shape: [...input.shape] };
  const expected = await runOnnx(onnxModel, feed);
  const predicted = model.predict(input);
  const actual = Array.isArray(predicted) ? predicted : [predicted];
  try {
    if (actual.length !== expected.length) throw new Error(`the runtime model has ${actual.length} outputs, ONNX Runtime computed ${expected.length}`);
    return worstAgreement(actual.map((tensor, i) => {
      const data = tensor.dataSync() as Float32Array;
      const onnxLayout = tensor.rank === 4 ? nhwcToNchw(data, tensor.shape) : data;
      const shape = channelsFirstShape(tensor.shape);
      if (formatShape(shape) !== formatShape(expected[i].shape)) {
        throw new Error(`output ${i} is ${formatShape(shape)} in ONNX layout from the runtime model, but ${formatShape(expected[i].shape)} from ONNX Runtime`);
      }
      return outputAgreement(onnxLayout, expected[i].data);
    }));
  } finally {
    tf.dispose(actual);
  }
}
