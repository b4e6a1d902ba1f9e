import * as tf from '@tensorflow/tfjs';

/**
 * MobileNetV2 (Sandler et al. 2018, width 1.0) as a tf.layers functional model, laid out as Keras'
 * and torchvision's: conv3×3/2 (32) + 17 inverted residual blocks (1×1 expansion ×6 except the first,
 * 3×3 depthwise, 1×1 linear projection; an Add where stride is 1 and widths match) + conv1×1 (1280),
 * BatchNorm and ReLU6 after every conv but the projections, global average pooling and a dense softmax
 * head. bench/torch-resnet20.py builds the same network in PyTorch.
 */
export function buildMobileNetV2(options: {
  inputShape?: number[]; classes?: number; seed?: number;
  /** A smaller variant: the stem's width and stride, the blocks as (expansion t, channels c, repeats n, first stride s), the head's width. */
  stem?: { channels: number; stride: number }; stages?: number[][]; headChannels?: number; name?: string;
} = {}): tf.LayersModel {
  const inputShape = options.inputShape ?? [224, 224, 3];
  const stem = options.stem ?? { channels: 32, stride: 2 };
  const stages = options.stages ?? [[1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 3, 2], [6, 64, 4, 2], [6, 96, 3, 1], [6, 160, 3, 2], [6, 320, 1, 1]];
  const classes = options.classes ?? 10;
  let seed = options.seed ?? 1;
  const init = () => tf.initializers.heNormal({ seed: seed++ });
  const conv = (x: tf.SymbolicTensor, filters: number, kernelSize: number, strides: number, name: string) =>
    tf.layers.conv2d({ name, filters, kernelSize, strides, padding: 'same', useBias: false, kernelInitializer: init() }).apply(x) as tf.SymbolicTensor;
  const depthwise = (x: tf.SymbolicTensor, strides: number, name: string) =>
    tf.layers.depthwiseConv2d({ name, kernelSize: 3, strides, padding: 'same', useBias: false, depthwiseInitializer: init() }).apply(x) as tf.SymbolicTensor;
  const bn = (x: tf.SymbolicTensor, name: string) => tf.layers.batchNormalization({ name }).apply(x) as tf.SymbolicTensor;
  const relu6 = (x: tf.SymbolicTensor, name: string) => tf.layers.reLU({ name, maxValue: 6 }).apply(x) as tf.SymbolicTensor;

  const input = tf.input({ shape: inputShape, name: 'image' });
  let h = relu6(bn(conv(input, stem.channels, 3, stem.stride, 'stem_conv'), 'stem_bn'), 'stem_relu');
  let channels = stem.channels, index = 0;
  // (expansion t, output channels c, repeats n, first stride s)
  for (const [t, c, n, s] of stages) {
    for (let i = 0; i < n; i++) {
      const stride = i === 0 ? s : 1, name = `block${index++}`;
      let o = h;
      if (t !== 1) o = relu6(bn(conv(o, channels * t, 1, 1, `${name}_expand`), `${name}_expand_bn`), `${name}_expand_relu`);
      o = relu6(bn(depthwise(o, stride, `${name}_dw`), `${name}_dw_bn`), `${name}_dw_relu`);
      o = bn(conv(o, c, 1, 1, `${name}_project`), `${name}_project_bn`);
      h = stride === 1 && channels === c ? tf.layers.add({ name: `${name}_add` }).apply([h, o]) as tf.SymbolicTensor : o;
      channels = c;
    }
  }
  h = relu6(bn(conv(h, options.headChannels ?? 1280, 1, 1, 'head_conv'), 'head_bn'), 'head_relu');
  h = tf.layers.globalAveragePooling2d({ name: 'gap' }).apply(h) as tf.SymbolicTensor;
  const output = tf.layers.dense({ name: 'logits', units: classes, activation: 'softmax', kernelInitializer: tf.initializers.glorotUniform({ seed: seed++ }) }).apply(h) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: output, name: options.name ?? 'mobilenetv2' });
}
