import * as tf from '@tensorflow/tfjs';

/**
 * Keras 3 computations TF.js layers lacks, registered with TF.js' serialization so the models
 * that use them build, run, train and round-trip through the TF.js topology like built-ins.
 * The Keras config converter (config.ts) maps Keras names onto these.
 */

/** Keras 3's hard_silu (alias hard_swish): x · relu6(x + 3) / 6. */
class HardSilu extends tf.serialization.Serializable {
  static readonly className = 'hardSilu';
  apply(x: tf.Tensor): tf.Tensor {
    return tf.tidy(() => tf.mul(x, tf.div(tf.relu6(tf.add(x, 3)), 6)));
  }
  getConfig(): tf.serialization.ConfigDict {
    return {};
  }
}

/** Keras 3's hard_sigmoid, relu6(x + 3) / 6; TF.js' hardSigmoid is Keras 2's clip(0.2·x + 0.5, 0, 1). */
class Relu6HardSigmoid extends tf.serialization.Serializable {
  static readonly className = 'relu6HardSigmoid';
  apply(x: tf.Tensor): tf.Tensor {
    return tf.tidy(() => tf.div(tf.relu6(tf.add(x, 3)), 6));
  }
  getConfig(): tf.serialization.ConfigDict {
    return {};
  }
}

/** Runtime activation names (as Keras configs spell them) of the classes above. */
export const HARD_SILU_ACTIVATION = 'hard_silu';
export const KERAS3_HARD_SIGMOID_ACTIVATION = 'relu6_hard_sigmoid';

/** Keras' smallest standard deviation in Normalization (backend.epsilon()). */
const NORMALIZATION_EPSILON = 1e-7;

interface NormalizationArgs extends tf.serialization.ConfigDict {
  axis: number;
}

/**
 * Keras 3's Normalization over the channel axis: (x − mean) / max(√variance, 1e-7), with the
 * adapted mean, variance and sample count as non-trainable weights (Keras' `mean`, `variance`,
 * `count`). Unlike a batch norm it keeps its statistics in training.
 */
export class KerasNormalization extends tf.layers.Layer {
  static readonly className = 'Normalization';
  private mean?: tf.LayerVariable;
  private variance?: tf.LayerVariable;
  private readonly axis: number;

  constructor(args: NormalizationArgs) {
    super(args as unknown as ConstructorParameters<typeof tf.layers.Layer>[0]);
    this.axis = args.axis ?? -1;
  }

  override build(inputShape: tf.Shape | tf.Shape[]): void {
    const shape = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tf.Shape;
    if (this.axis !== -1 && this.axis !== shape.length - 1) {
      throw new Error(`layer "${this.name}" (Normalization): normalization over axis ${this.axis} of a rank-${shape.length} input; PruneLens runs it over the channel axis only`);
    }
    const channels = shape[shape.length - 1] as number;
    this.mean = this.addWeight('mean', [channels], 'float32', tf.initializers.zeros(), undefined, false);
    this.variance = this.addWeight('variance', [channels], 'float32', tf.initializers.ones(), undefined, false);
    this.addWeight('count', [], 'int32', tf.initializers.zeros(), undefined, false);
    this.built = true;
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      const x = Array.isArray(inputs) ? inputs[0] : inputs;
      const std = tf.maximum(tf.sqrt(this.variance!.read()), NORMALIZATION_EPSILON);
      return tf.div(tf.sub(x, this.mean!.read()), std);
    });
  }

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape | tf.Shape[] {
    return inputShape;
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), axis: this.axis };
  }
}

tf.serialization.registerClass(HardSilu);
tf.serialization.registerClass(Relu6HardSigmoid);
tf.serialization.registerClass(KerasNormalization);
