import * as tf from '@tensorflow/tfjs';
import { UserError } from '../errors.js';
import { readNpy, type NpyArray } from '../data/npy.js';
import { formatShape } from '../../protocol/format.js';
import { channelsFirstShape, nchwToNhwc, nhwcToNchw } from '../data/layout.js';
import type { OnnxSerialization } from '../io/onnx/record.js';
import { outputAgreement } from '../metrics/agreement.js';

/** What `--verify` compares: one inputs file, one expected-outputs file per model output. */
export interface VerifyFiles {
  inputs: string;
  outputs: string[];
  /** Largest relative difference that passes (default VERIFY_TOLERANCE). */
  tolerance?: number;
}

export interface OutputDifference {
  /** The expected-outputs file. */
  file: string;
  /** The model output it was compared with. */
  output: string;
  shape: number[];
  maxAbs: number;
  /** max |actual − expected| / max |expected|: relative to the output's scale, so values near zero do not blow it up. */
  maxRel: number;
  passed: boolean;
}

export interface VerifyResult {
  samples: number;
  tolerance: number;
  passed: boolean;
  outputs: OutputDifference[];
}

/** Default relative tolerance: float32 inference on another runtime reorders sums, nothing more. */
export const VERIFY_TOLERANCE = 1e-4;

function asFloat32(array: NpyArray): Float32Array {
  return array.data instanceof Float32Array ? array.data : Float32Array.from(array.data);
}

/**
 * Runs the inputs through the model in inference mode and compares each output with its expected file.
 * For an ONNX model (`onnx`, its record) inputs and outputs are in the ONNX graph's own layout: images
 * [N, C, H, W], transposed to the runtime model's [N, H, W, C] and its rank-4 outputs back.
 */
export function verifyOutputs(model: tf.LayersModel, files: VerifyFiles, onnx?: OnnxSerialization): VerifyResult {
  const tolerance = files.tolerance ?? VERIFY_TOLERANCE;
  if (model.inputs.length !== 1) {
    throw new UserError(`the model has ${model.inputs.length} inputs; --verify takes one inputs file`, { file: files.inputs, fix: 'Verify a model with a single input' });
  }
  const outputNames = onnx ? onnx.outputs.map((o) => o.name) : model.outputNames;
  if (files.outputs.length !== model.outputs.length) {
    throw new UserError(`the model has ${model.outputs.length} outputs (${outputNames.join(', ')}) but ${files.outputs.length} expected-outputs file${files.outputs.length === 1 ? ' was' : 's were'} given`, {
      file: files.outputs.join(','), fix: `Give one .npy per output, in order: --verify inputs.npy,${outputNames.map((n) => `${n}.npy`).join(',')}`,
    });
  }
  const inputs = readNpy(files.inputs);
  const runtimeInput = model.inputs[0].shape;
  // An ONNX image model's inputs are [N, C, H, W], as the graph takes them.
  const channelsFirst = Boolean(onnx) && runtimeInput.length === 4;
  const want = (channelsFirst ? [runtimeInput[0], runtimeInput[3], runtimeInput[1], runtimeInput[2]] : runtimeInput).slice(1);
  const got = inputs.shape.slice(1);
  const fits = got.length === want.length && want.every((d, i) => d === null || d === got[i]);
  if (!fits || inputs.shape.length === 0) {
    throw new UserError(`inputs have shape ${formatShape(inputs.shape)}, but the model takes ${formatShape([null, ...want])} (samples first)`, {
      file: files.inputs, fix: `Save the inputs with the model's input shape, the sample count first${channelsFirst ? ' (NCHW, as the ONNX graph takes them)' : ''}`,
    });
  }
  const expected = files.outputs.map((file) => ({ file, array: readNpy(file) }));
  const samples = inputs.shape[0];
  let result: VerifyResult | undefined;
  tf.tidy(() => {
    const values = asFloat32(inputs);
    const x = channelsFirst
      ? tf.tensor(nchwToNhwc(values, inputs.shape), [inputs.shape[0], inputs.shape[2], inputs.shape[3], inputs.shape[1]], 'float32')
      : tf.tensor(values, inputs.shape, 'float32');
    const predicted = model.predict(x, { batchSize: 32 });
    const actual = Array.isArray(predicted) ? predicted : [predicted];
    const outputs = expected.map(({ file, array }, i): OutputDifference => {
      // Compared in the model file's layout: an ONNX model's rank-4 outputs are [N, C, H, W].
      const toFileLayout = Boolean(onnx) && actual[i].rank === 4;
      const shape = toFileLayout ? channelsFirstShape(actual[i].shape) : (actual[i].shape as number[]);
      if (formatShape(array.shape) !== formatShape(shape)) {
        throw new UserError(`expected outputs have shape ${formatShape(array.shape)}, but output ${outputNames[i]} computes ${formatShape(shape)} for these inputs`, {
          file, fix: `Give the outputs of ${outputNames[i]} for the same inputs (model outputs in order)`,
        });
      }
      const computed = actual[i].dataSync() as Float32Array;
      const values = toFileLayout ? nhwcToNchw(computed, actual[i].shape) : computed;
      const { maxAbsDifference: maxAbs, maxRelDifference: maxRel } = outputAgreement(values, asFloat32(array));
      return { file, output: outputNames[i], shape, maxAbs, maxRel, passed: maxRel <= tolerance };
    });
    result = { samples, tolerance, passed: outputs.every((o) => o.passed), outputs };
  });
  return result!;
}
