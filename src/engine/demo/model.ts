import * as tf from '@tensorflow/tfjs';

/**
 * The built-in demo network: a small MNIST CNN with batch norm, pooling and a
 * flatten→dense head, so every kind of channel coupling PruneLens handles on
 * a plain CNN is exercised. About 3.1 MFLOPs per image.
 */
export function buildDemoCnn(options: { inputShape?: number[]; classes?: number; seed?: number } = {}): tf.LayersModel {
  const inputShape = options.inputShape ?? [28, 28, 1];
  const classes = options.classes ?? 10;
  const seed = options.seed ?? 1;
  const init = (k: number) => tf.initializers.heNormal({ seed: seed * 100 + k });
  const input = tf.input({ shape: inputShape, name: 'image' });
  let x = tf.layers.conv2d({ name: 'conv1', filters: 16, kernelSize: 3, padding: 'same', kernelInitializer: init(1) }).apply(input) as tf.SymbolicTensor;
  x = tf.layers.batchNormalization({ name: 'bn1' }).apply(x) as tf.SymbolicTensor;
  x = tf.layers.reLU({ name: 'relu1' }).apply(x) as tf.SymbolicTensor;
  x = tf.layers.maxPooling2d({ name: 'pool1', poolSize: 2 }).apply(x) as tf.SymbolicTensor;
  x = tf.layers.conv2d({ name: 'conv2', filters: 32, kernelSize: 3, padding: 'same', kernelInitializer: init(2) }).apply(x) as tf.SymbolicTensor;
  x = tf.layers.batchNormalization({ name: 'bn2' }).apply(x) as tf.SymbolicTensor;
  x = tf.layers.reLU({ name: 'relu2' }).apply(x) as tf.SymbolicTensor;
  x = tf.layers.maxPooling2d({ name: 'pool2', poolSize: 2 }).apply(x) as tf.SymbolicTensor;
  x = tf.layers.conv2d({ name: 'conv3', filters: 32, kernelSize: 3, padding: 'same', kernelInitializer: init(3) }).apply(x) as tf.SymbolicTensor;
  x = tf.layers.batchNormalization({ name: 'bn3' }).apply(x) as tf.SymbolicTensor;
  x = tf.layers.reLU({ name: 'relu3' }).apply(x) as tf.SymbolicTensor;
  x = tf.layers.flatten({ name: 'flatten' }).apply(x) as tf.SymbolicTensor;
  x = tf.layers.dense({ name: 'fc1', units: 64, activation: 'relu', kernelInitializer: init(4) }).apply(x) as tf.SymbolicTensor;
  const output = tf.layers.dense({ name: 'logits', units: classes, activation: 'softmax', kernelInitializer: init(5) }).apply(x) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: output, name: 'prunelens_demo_cnn' });
}
