import { encodeModel, floatTensor, int64Tensor, toNumber, type OnnxAttribute, type OnnxModel, type OnnxNode, type OnnxTensor, type OnnxValueInfo } from '../../src/engine/io/onnx/proto.js';
import { randomArray } from './seeded.js';

/**
 * Tiny ONNX graphs built in TypeScript for hazard tests: nodes, seeded random initializers and
 * the ModelProto bytes, through the same protobuf schema the importer reads.
 */

/** AttributeProto.AttributeType values. */
export const ATTRIBUTE_TYPE = { FLOAT: 1, INT: 2, STRING: 3, TENSOR: 4, FLOATS: 6, INTS: 7 } as const;

/** Attribute names whose numbers ONNX keeps as floats (everything else numeric is an int). */
const FLOAT_ATTRIBUTES = new Set(['alpha', 'beta', 'epsilon', 'momentum', 'min', 'max', 'value', 'gamma', 'ratio', 'lambd', 'bias']);

export type AttributeValue = number | string | number[] | OnnxTensor;

function attribute(name: string, value: AttributeValue): OnnxAttribute {
  if (typeof value === 'string') return { name, type: ATTRIBUTE_TYPE.STRING, s: new TextEncoder().encode(value) };
  if (Array.isArray(value)) {
    return FLOAT_ATTRIBUTES.has(name) ? { name, type: ATTRIBUTE_TYPE.FLOATS, floats: value } : { name, type: ATTRIBUTE_TYPE.INTS, ints: value };
  }
  if (typeof value === 'number') {
    return FLOAT_ATTRIBUTES.has(name) || !Number.isInteger(value) ? { name, type: ATTRIBUTE_TYPE.FLOAT, f: value } : { name, type: ATTRIBUTE_TYPE.INT, i: value };
  }
  return { name, type: ATTRIBUTE_TYPE.TENSOR, t: value };
}

/** A NodeProto named after its first output. */
export function node(op: string, inputs: string[], outputs: string[], attrs: Record<string, AttributeValue> = {}): OnnxNode {
  return { name: outputs[0], op_type: op, input: inputs, output: outputs, attribute: Object.entries(attrs).map(([k, v]) => attribute(k, v)) };
}

/** A float tensor's ValueInfo; string dims are symbolic (the batch axis), -1 leaves the shape out. */
export function valueInfo(name: string, dims?: (number | string)[]): OnnxValueInfo {
  const shape = dims ? { dim: dims.map((d) => (typeof d === 'string' ? { dim_param: d } : { dim_value: d })) } : undefined;
  return { name, type: { tensor_type: { elem_type: 1, ...(shape ? { shape } : {}) } } };
}

export interface ConvOptions {
  kernel?: number;
  strides?: number;
  pads?: number[];
  group?: number;
  bias?: boolean;
}

export class OnnxGraphBuilder {
  readonly nodes: OnnxNode[] = [];
  readonly initializers: OnnxTensor[] = [];
  readonly valueInfos: OnnxValueInfo[] = [];
  private seed: number;

  constructor(seed = 1) {
    this.seed = seed * 7919;
  }

  /** Seeded values in [-scale/2, scale/2) (`offset` added), as an initializer. */
  weight(name: string, dims: number[], scale = 1, offset = 0): string {
    const { values } = randomArray(dims, this.seed++);
    for (let i = 0; i < values.length; i++) values[i] = values[i] * scale + offset;
    this.initializers.push(floatTensor(name, dims, values));
    return name;
  }

  floats(name: string, dims: number[], values: number[]): string {
    this.initializers.push(floatTensor(name, dims, Float32Array.from(values)));
    return name;
  }

  int64s(name: string, values: number[]): string {
    this.initializers.push(int64Tensor(name, [values.length], values));
    return name;
  }

  add(op: string, inputs: string[], output: string, attrs: Record<string, AttributeValue> = {}): string {
    this.nodes.push(node(op, inputs, [output], attrs));
    return output;
  }

  /** A 2-D Conv named `name` from `inChannels / group` to `out` channels, weights scaled by 1/√fan-in. */
  conv(name: string, x: string, inChannels: number, out: number, options: ConvOptions = {}): string {
    const k = options.kernel ?? 3;
    const group = options.group ?? 1;
    const perGroup = inChannels / group;
    const inputs = [x, this.weight(`${name}.weight`, [out, perGroup, k, k], 2 / Math.sqrt(perGroup * k * k))];
    if (options.bias ?? true) inputs.push(this.weight(`${name}.bias`, [out], 0.2));
    const attrs: Record<string, AttributeValue> = { kernel_shape: [k, k], strides: [options.strides ?? 1, options.strides ?? 1], pads: options.pads ?? [0, 0, 0, 0] };
    if (group !== 1) attrs.group = group;
    return this.add('Conv', inputs, name, attrs);
  }

  batchNorm(name: string, x: string, channels: number): string {
    return this.add('BatchNormalization', [
      x, this.weight(`${name}.weight`, [channels], 0.5, 1), this.weight(`${name}.bias`, [channels], 0.4),
      this.weight(`${name}.running_mean`, [channels], 0.4), this.weight(`${name}.running_var`, [channels], 0.5, 1),
    ], name, { epsilon: 1e-5 });
  }

  /** Gemm with transB = 1 (PyTorch's Linear): weight [units, features]. */
  linear(name: string, x: string, features: number, units: number): string {
    return this.add('Gemm', [x, this.weight(`${name}.weight`, [units, features], 2 / Math.sqrt(features)), this.weight(`${name}.bias`, [units], 0.2)], name, { transB: 1 });
  }

  /** The ModelProto (ir_version 7), one NCHW (or [N, F]) input with a symbolic batch axis. */
  model(input: { name: string; dims: number[] }, outputs: { name: string; dims?: (number | string)[] }[], opset = 13): OnnxModel {
    return {
      ir_version: 7,
      opset_import: [{ domain: '', version: opset }],
      producer_name: 'prunelens-tests',
      graph: {
        name: 'hazard',
        node: this.nodes,
        initializer: this.initializers,
        input: [valueInfo(input.name, ['N', ...input.dims])],
        output: outputs.map((o) => valueInfo(o.name, o.dims)),
        value_info: this.valueInfos,
      },
    };
  }

  bytes(input: { name: string; dims: number[] }, outputs: { name: string; dims?: (number | string)[] }[], opset = 13): Uint8Array {
    return encodeModel(this.model(input, outputs, opset));
  }
}

/** Elements of every initializer of a decoded model (its parameter count). */
export function initializerElements(model: OnnxModel): number {
  return model.graph!.initializer.reduce((n, t) => n + t.dims.reduce<number>((p, d) => p * toNumber(d), 1), 0);
}
