import * as tf from '@tensorflow/tfjs';
import { UserError } from '../../errors.js';

/**
 * ONNX pooling TF.js layers cannot express: explicit (also asymmetric) pads, `ceil_mode`, and an
 * average that leaves the padding out of its count. Registered with TF.js' serialization so the
 * imported model builds, trains and round-trips like a built-in layer.
 */

export interface OnnxPoolConfig extends tf.serialization.ConfigDict {
  mode: 'max' | 'avg';
  pool_size: [number, number];
  strides: [number, number];
  /** [top, left, bottom, right], ONNX order; ceil_mode's extra bottom/right rows are already added. */
  pads: [number, number, number, number];
  /** Average: whether padded positions count in the divisor (ONNX count_include_pad). */
  count_include_pad: boolean;
  /** ceil_mode's extra [bottom, right] rows and columns (part of `pads`), never counted in an average's divisor; [0, 0] when absent. */
  ceil_extra: [number, number];
}

export class OnnxPool2D extends tf.layers.Layer {
  static readonly className = 'OnnxPool2D';
  private readonly settings: OnnxPoolConfig;

  constructor(args: OnnxPoolConfig & { name?: string }) {
    super(args as unknown as ConstructorParameters<typeof tf.layers.Layer>[0]);
    const a = args as unknown as Record<string, unknown>;
    // TF.js hands the config back camel-cased when it rebuilds a layer from JSON.
    this.settings = {
      mode: args.mode,
      pool_size: (a.pool_size ?? a.poolSize) as [number, number],
      strides: args.strides,
      pads: args.pads,
      count_include_pad: Boolean(a.count_include_pad ?? a.countIncludePad),
      ceil_extra: (a.ceil_extra ?? a.ceilExtra ?? [0, 0]) as [number, number],
    };
  }

  private padded(x: tf.Tensor4D, value: number): tf.Tensor4D {
    const [top, left, bottom, right] = this.settings.pads;
    return tf.pad(x, [[0, 0], [top, bottom], [left, right], [0, 0]], value);
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      const x = (Array.isArray(inputs) ? inputs[0] : inputs) as tf.Tensor4D;
      const { mode, pool_size: size, strides, count_include_pad: countPad } = this.settings;
      if (mode === 'max') return tf.maxPool(this.padded(x, -Infinity), size, strides, 'valid');
      const sum = tf.mul(tf.avgPool(this.padded(x, 0), size, strides, 'valid'), size[0] * size[1]);
      const [top, left, bottom, right] = this.settings.pads;
      const [extraBottom, extraRight] = this.settings.ceil_extra;
      if (countPad && extraBottom === 0 && extraRight === 0) return tf.div(sum, size[0] * size[1]);
      // The divisor counts input positions, plus the explicit pads when count_include_pad is set; never ceil_mode's extra rows.
      const counted = countPad
        ? tf.pad(tf.ones([1, x.shape[1] + top + bottom - extraBottom, x.shape[2] + left + right - extraRight, 1]), [[0, 0], [0, extraBottom], [0, extraRight], [0, 0]])
        : this.padded(tf.ones([1, x.shape[1], x.shape[2], 1]) as tf.Tensor4D, 0);
      const counts = tf.mul(tf.avgPool(counted as tf.Tensor4D, size, strides, 'valid'), size[0] * size[1]);
      return tf.div(sum, counts);
    });
  }

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape {
    const [n, h, w, c] = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tf.Shape;
    const [top, left, bottom, right] = this.settings.pads;
    const out = (size: number | null, before: number, after: number, k: number, s: number) =>
      (size == null ? null : Math.floor((size + before + after - k) / s) + 1);
    return [n, out(h, top, bottom, this.settings.pool_size[0], this.settings.strides[0]), out(w, left, right, this.settings.pool_size[1], this.settings.strides[1]), c];
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), ...this.settings };
  }
}

tf.serialization.registerClass(OnnxPool2D);

/**
 * TF.js camel-cases every string of a layer config it reads (and snake-cases those it writes)
 * except under a `name` key: the node and op names travel as `{ name }` to arrive unchanged.
 */
export interface OnnxOpaqueConfig extends tf.serialization.ConfigDict {
  /** The ONNX node it stands for, and its op type. */
  node: { name: string };
  op_type: { name: string };
  /** Its output shape without the batch axis, in the runtime's layout (NHWC, or [F]). */
  output_shape: number[];
}

/**
 * An ONNX node PruneLens cannot compute, kept in the runtime graph with its output shape so the
 * model still loads and analysis works around it (the layer registry blocks the channels it
 * touches). Running it fails in one line naming the node and its op.
 */
export class OnnxOpaque extends tf.layers.Layer {
  static readonly className = 'OnnxOpaque';
  private readonly settings: OnnxOpaqueConfig;

  constructor(args: OnnxOpaqueConfig & { name?: string }) {
    super(args as unknown as ConstructorParameters<typeof tf.layers.Layer>[0]);
    const a = args as unknown as Record<string, unknown>;
    this.settings = {
      node: args.node,
      op_type: (a.op_type ?? a.opType) as { name: string },
      output_shape: (a.output_shape ?? a.outputShape) as number[],
    };
  }

  override call(): tf.Tensor {
    throw new UserError(`node "${this.settings.node.name}" (${this.settings.op_type.name}) is not supported, so this model cannot run in PruneLens`, {
      fix: 'Export the model without this op (or with it replaced by supported ones); analysis still works on it',
    });
  }

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape {
    const batch = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape)[0] as number | null;
    return [batch, ...this.settings.output_shape];
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), ...this.settings };
  }
}

tf.serialization.registerClass(OnnxOpaque);

/**
 * ONNX Sub of two activations (Keras' Subtract, which the layer registry names): TF.js has Add
 * and Multiply layers but no subtraction. Shapes broadcast as in ONNX.
 */
export class Subtract extends tf.layers.Layer {
  static readonly className = 'Subtract';

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      const [a, b] = inputs as tf.Tensor[];
      return tf.sub(a, b);
    });
  }

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape {
    const [a, b] = inputShape as tf.Shape[];
    return a.map((d, i) => (d === null || b[i] === null ? (d === 1 ? b[i] : d) : Math.max(d, b[i] as number)));
  }
}

tf.serialization.registerClass(Subtract);
