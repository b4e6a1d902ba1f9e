import * as tf from '@tensorflow/tfjs';
import { appliedActivation } from '../layers/index.js';

const EPSILON = 1e-7;

/** True when the model ends in a softmax (it outputs probabilities rather than logits). */
export function outputsProbabilities(model: tf.LayersModel): boolean {
  const last = model.outputLayers[model.outputLayers.length - 1];
  if (!last) return false;
  return appliedActivation(last) === 'softmax';
}

/**
 * Per-sample sparse categorical cross-entropy [n]. For softmax outputs it is the log of the
 * clipped probability (as Keras does); for logits a log-softmax.
 */
export function crossEntropyPerSample(output: tf.Tensor, labels: tf.Tensor1D, probabilities: boolean): tf.Tensor1D {
  return tf.tidy(() => {
    const classes = output.shape[output.shape.length - 1] as number;
    const oneHot = tf.oneHot(labels, classes);
    const logProbabilities = probabilities ? tf.log(tf.clipByValue(output, EPSILON, 1 - EPSILON)) : tf.logSoftmax(output);
    return tf.neg(tf.sum(tf.mul(oneHot, logProbabilities), -1)) as tf.Tensor1D;
  });
}

/** Number of samples whose arg-max prediction equals the label, as an int32 scalar. */
export function correctCount(output: tf.Tensor, labels: tf.Tensor1D): tf.Scalar {
  return tf.tidy(() => tf.sum(tf.cast(tf.equal(tf.argMax(output, -1), labels), 'int32')));
}
