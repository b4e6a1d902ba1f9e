import * as tf from '@tensorflow/tfjs';

/**
 * CIFAR-style ResNet-20 as a tf.layers functional model: conv3×3(16) + 3 stages × 3 basic blocks
 * (16/32/64 channels, stride 2 at the start of stages 2 and 3, 1×1 projection shortcuts there),
 * BatchNorm, ReLU, global average pooling and a dense softmax head. About 0.27 M parameters.
 */
export function buildResNet20(options: { inputShape?: number[]; classes?: number; seed?: number } = {}): tf.LayersModel {
  const inputShape = options.inputShape ?? [32, 32, 3];
  const classes = options.classes ?? 10;
  let seed = options.seed ?? 1;
  const init = () => tf.initializers.heNormal({ seed: seed++ });
  const conv = (x: tf.SymbolicTensor, filters: number, kernelSize: number, strides: number, name: string) =>
    tf.layers.conv2d({ name, filters, kernelSize, strides, padding: 'same', useBias: false, kernelInitializer: init() }).apply(x) as tf.SymbolicTensor;
  const bn = (x: tf.SymbolicTensor, name: string) => tf.layers.batchNormalization({ name }).apply(x) as tf.SymbolicTensor;
  const relu = (x: tf.SymbolicTensor, name: string) => tf.layers.reLU({ name }).apply(x) as tf.SymbolicTensor;

  const input = tf.input({ shape: inputShape, name: 'image' });
  let h = relu(bn(conv(input, 16, 3, 1, 'stem_conv'), 'stem_bn'), 'stem_relu');
  let channels = 16;
  [16, 32, 64].forEach((width, stage) => {
    for (let block = 0; block < 3; block++) {
      const stride = stage > 0 && block === 0 ? 2 : 1;
      const name = `s${stage + 1}b${block + 1}`;
      let o = relu(bn(conv(h, width, 3, stride, `${name}_conv1`), `${name}_bn1`), `${name}_relu1`);
      o = bn(conv(o, width, 3, 1, `${name}_conv2`), `${name}_bn2`);
      const shortcut = stride !== 1 || channels !== width ? bn(conv(h, width, 1, stride, `${name}_proj`), `${name}_proj_bn`) : h;
      h = relu(tf.layers.add({ name: `${name}_add` }).apply([o, shortcut]) as tf.SymbolicTensor, `${name}_out`);
      channels = width;
    }
  });
  h = tf.layers.globalAveragePooling2d({ name: 'gap' }).apply(h) as tf.SymbolicTensor;
  const output = tf.layers.dense({ name: 'logits', units: classes, activation: 'softmax', kernelInitializer: tf.initializers.glorotUniform({ seed: seed++ }) }).apply(h) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: output, name: 'resnet20' });
}
