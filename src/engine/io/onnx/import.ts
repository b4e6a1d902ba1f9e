import { UserError } from '../../errors.js';
import { REEXPORT, tensorDims, tensorValues, toNumber, type ExternalData, type OnnxAttribute, type OnnxModel, type OnnxNode, type OnnxTensor, type OnnxValueInfo } from './proto.js';
import type { OnnxSerialization, OnnxShapeConstant, OnnxWeightLayout, OnnxWeightLocation } from './record.js';
import { HARD_SILU_ACTIVATION, KERAS3_HARD_SIGMOID_ACTIVATION } from '../keras/layers.js';

/**
 * An ONNX CNN graph as a TF.js layers topology the engine trains and prunes, plus the record a
 * writer needs to put the result back into the original graph. ONNX is NCHW and TF.js NHWC:
 * the runtime model takes NHWC input and every weight is transposed once here; flatten order is
 * carried into the dense kernel after it. Shapes are tracked in ONNX order ([C, H, W] or [F]).
 */

type Json = Record<string, unknown>;

/** Activations in the graph: a runtime layer's output. `shape` excludes the batch axis, in ONNX order. */
interface TensorValue {
  kind: 'tensor';
  layer: string;
  shape: number[];
  /** Set on the output of a flatten of [C, H, W] with H·W > 1. */
  flattened?: { channels: number; height: number; width: number };
}

/** Initializers and Constant outputs. */
interface ConstValue {
  kind: 'const';
  /** The initializer or Constant output it comes from, behind Identity nodes. */
  source: string;
  tensor: OnnxTensor;
}

type Value = TensorValue | ConstValue;

export interface ImportedOnnx {
  /** `{class_name, config}` for `tf.models.modelFromJSON`. */
  topology: Json;
  /** Runtime weight values by layer name and weight short name, already in TF.js layout. */
  weights: Map<string, Map<string, { shape: number[]; values: Float32Array }>>;
  record: OnnxSerialization;
}

/** The ops this importer maps onto runtime layers. */
export const SUPPORTED_ONNX_OPS = [
  'Conv', 'BatchNormalization', 'Relu', 'LeakyRelu', 'Clip', 'Sigmoid', 'Tanh', 'HardSigmoid', 'HardSwish', 'Mul', 'Add', 'Sub', 'Div',
  'Concat', 'MaxPool', 'AveragePool', 'GlobalAveragePool', 'GlobalMaxPool', 'Gemm', 'MatMul', 'Flatten', 'Reshape', 'Pad',
  'Constant', 'Identity', 'Dropout', 'Softmax',
] as const;

/**
 * Ops whose output has their input's shape (element-wise, or per-channel parameters). One this
 * importer does not map still imports, as an opaque layer, without value_info for its output.
 */
const SHAPE_KEEPING_OPS = new Set([
  'Abs', 'Neg', 'Floor', 'Ceil', 'Round', 'Sign', 'Exp', 'Log', 'Sqrt', 'Reciprocal', 'Erf', 'Sin', 'Cos', 'Tan', 'Asin', 'Acos', 'Atan',
  'Sinh', 'Cosh', 'Asinh', 'Acosh', 'Atanh', 'Softplus', 'Softsign', 'Elu', 'Selu', 'Celu', 'ThresholdedRelu', 'Mish', 'Gelu', 'Shrink',
  'IsNaN', 'IsInf', 'PRelu', 'LRN', 'InstanceNormalization', 'LpNormalization', 'MeanVarianceNormalization',
]);

const MIN_OPSET = 7;
const MAX_OPSET = 21;

class Importer {
  private readonly values = new Map<string, Value>();
  private readonly layers: Json[] = [];
  private readonly usedNames = new Set<string>();
  /** How many nodes each PyTorch module path names. */
  private readonly moduleNodes = new Map<string, number>();
  private readonly weights = new Map<string, Map<string, { shape: number[]; values: Float32Array }>>();
  private readonly locations: OnnxWeightLocation[] = [];
  private readonly depthwiseGroups: { node: number; layer: string }[] = [];
  private readonly shapeConstants: OnnxShapeConstant[] = [];
  private readonly tensorLayers: Record<string, string> = {};
  private readonly identitySources = new Map<string, string>();
  private readonly unsupportedNodes: { node: string; opType: string }[] = [];
  private nodeIndex = -1;
  private node!: OnnxNode;

  constructor(private readonly model: OnnxModel, private readonly file: string, private readonly external: ExternalData | undefined, private readonly opset: number) {}

  // ---- errors ----

  private fail(message: string, fix = REEXPORT): never {
    throw new UserError(message, { file: this.file, fix });
  }

  private nodeLabel(): string {
    return `node "${this.node.name || `#${this.nodeIndex}`}" (${this.node.op_type})`;
  }

  private unsupported(what: string): never {
    this.fail(`${this.nodeLabel()}: ${what}, which PruneLens cannot import`, 'Export the model without it, or open an issue with the op and its attributes');
  }

  // ---- attributes ----

  private attr(name: string): OnnxAttribute | undefined {
    return this.node.attribute.find((a) => a.name === name);
  }

  private int(name: string, fallback: number): number {
    const a = this.attr(name);
    return a ? toNumber(a.i) : fallback;
  }

  private float(name: string, fallback: number): number {
    const a = this.attr(name);
    return a && a.f !== undefined ? a.f : fallback;
  }

  private ints(name: string): number[] | undefined {
    const a = this.attr(name);
    return a?.ints && a.ints.length > 0 ? a.ints.map(toNumber) : undefined;
  }

  private string(name: string): string | undefined {
    const a = this.attr(name);
    return a?.s ? Buffer.from(a.s).toString('utf8') : undefined;
  }

  // ---- values ----

  private input(i: number): Value | undefined {
    const name = this.node.input[i];
    if (name === undefined || name === '') return undefined;
    const value = this.values.get(name);
    if (!value) this.fail(`${this.nodeLabel()} reads "${name}", which no earlier node produces (the graph is not in topological order)`);
    return value;
  }

  private tensorInput(i: number): TensorValue {
    const value = this.input(i);
    if (!value) this.fail(`${this.nodeLabel()} lacks input ${i}`);
    if (value.kind !== 'tensor') this.unsupported(`input ${i} is a constant where PruneLens expects an activation`);
    return value;
  }

  private constInput(i: number, what: string): ConstValue {
    const value = this.input(i);
    if (!value || value.kind !== 'const') this.unsupported(`its ${what} (input ${i}) is computed in the graph, not an initializer`);
    return value;
  }

  private numbers(value: ConstValue): Float32Array | number[] {
    return tensorValues(value.tensor, this.file, this.external);
  }

  private floats(value: ConstValue): Float32Array {
    const v = this.numbers(value);
    return v instanceof Float32Array ? v : Float32Array.from(v);
  }

  private setOutput(i: number, value: Value): void {
    const name = this.node.output[i];
    if (name === undefined || name === '') return;
    this.values.set(name, value);
    if (value.kind === 'tensor') this.tensorLayers[name] = value.layer;
  }

  // ---- layers ----

  private layerName(suffix = ''): string {
    const path = modulePath(this.node.name ?? '');
    // A module path several nodes share (a block's own Add) gets the op type after it.
    const readable = path && (this.moduleNodes.get(path) === 1 ? path : `${path}.${this.node.op_type}`);
    const raw = (readable || this.node.name || `${this.node.op_type}_${this.nodeIndex}`) + suffix;
    let base = raw.replace(/^[/:]+/, '').replace(/[^A-Za-z0-9_.-]+/g, '_') || `node_${this.nodeIndex}`;
    if (!/^[A-Za-z]/.test(base)) base = `n${base}`;
    let name = base;
    for (let k = 1; this.usedNames.has(name); k++) name = `${base}_${k}`;
    this.usedNames.add(name);
    return name;
  }

  private addLayer(className: string, config: Json, inputs: TensorValue[], shape: number[], suffix = ''): TensorValue {
    const name = this.layerName(suffix);
    this.layers.push({
      class_name: className,
      name,
      config: { name, trainable: true, dtype: 'float32', ...config },
      inbound_nodes: inputs.length ? [inputs.map((t) => [t.layer, 0, 0, {}])] : [],
    });
    return { kind: 'tensor', layer: name, shape };
  }

  private setWeight(layer: string, weight: string, shape: number[], values: Float32Array, location?: Omit<OnnxWeightLocation, 'layer' | 'weight' | 'node'>): void {
    if (!this.weights.has(layer)) this.weights.set(layer, new Map());
    this.weights.get(layer)!.set(weight, { shape, values });
    if (location) this.locations.push({ layer, weight, node: this.nodeIndex, ...location });
  }

  private location(input: number, value: ConstValue, layout: OnnxWeightLayout, extra: Partial<OnnxWeightLocation> = {}) {
    return { input, source: value.source, layout, ...extra };
  }

  // ---- graph ----

  run(): ImportedOnnx {
    const graph = this.model.graph!;
    for (const t of graph.initializer) {
      if (!t.name) this.fail('the graph has an initializer without a name');
      this.values.set(t.name, { kind: 'const', source: t.name, tensor: t });
    }
    const input = this.graphInput(graph.input);
    for (const node of graph.node) {
      const path = modulePath(node.name ?? '');
      if (path) this.moduleNodes.set(path, (this.moduleNodes.get(path) ?? 0) + 1);
    }
    graph.node.forEach((node, i) => {
      this.node = node;
      this.nodeIndex = i;
      if (node.domain && node.domain !== 'ai.onnx') this.unsupported(`it is in the custom domain "${node.domain}"`);
      this.convert();
    });
    const outputs = graph.output.map((o) => {
      const value = this.values.get(o.name);
      if (!value) this.fail(`graph output "${o.name}" is produced by no node`);
      if (value.kind !== 'tensor') this.fail(`graph output "${o.name}" is a constant`);
      return { name: o.name, value };
    });
    if (outputs.length === 0) this.fail('the graph has no outputs');
    const topology = {
      class_name: 'Model',
      config: {
        name: graph.name || 'onnx_model',
        layers: this.layers,
        input_layers: [[input, 0, 0]],
        output_layers: outputs.map((o) => [o.value.layer, 0, 0]),
      },
    };
    const record: OnnxSerialization = {
      opset: this.opset,
      producer: [this.model.producer_name, this.model.producer_version].filter(Boolean).join(' '),
      depthwiseGroups: this.depthwiseGroups,
      weights: this.locations,
      shapeConstants: this.shapeConstants,
      layers: this.layers.map((l) => l.name as string),
      tensorLayers: this.tensorLayers,
      input: graph.input.find((i) => !this.isInitializer(i.name))!.name,
      outputs: outputs.map((o) => ({ name: o.name, rank: o.value.shape.length + 1 })),
      unsupported: this.unsupportedNodes,
    };
    return { topology, weights: this.weights, record };
  }

  private isInitializer(name: string): boolean {
    return this.values.get(name)?.kind === 'const';
  }

  private graphInput(inputs: OnnxValueInfo[]): string {
    const real = inputs.filter((i) => !this.isInitializer(i.name));
    if (real.length !== 1) {
      this.fail(`the graph has ${real.length} inputs (${real.map((i) => i.name).join(', ')}); PruneLens prunes models with one image or feature input`);
    }
    const info = real[0];
    const dims = info.type?.tensor_type?.shape?.dim ?? [];
    const shape = dims.slice(1).map((d) => (d.dim_value !== undefined && toNumber(d.dim_value) > 0 ? toNumber(d.dim_value) : NaN));
    if (dims.length !== 4 && dims.length !== 2) {
      this.fail(`input "${info.name}" has rank ${dims.length}; PruneLens imports NCHW image inputs (rank 4) and feature vectors (rank 2)`);
    }
    if (shape.some((d) => Number.isNaN(d))) {
      const shown = dims.map((d) => (d.dim_param ? d.dim_param : toNumber(d.dim_value) || '?')).join(', ');
      this.fail(`input "${info.name}" has shape [${shown}]; every axis but the batch needs a fixed size`, 'Export with a fixed input size (only the batch axis in dynamic_axes)');
    }
    const runtimeShape = shape.length === 3 ? [shape[1], shape[2], shape[0]] : shape;
    const name = this.uniqueName(info.name.replace(/[^A-Za-z0-9_.-]+/g, '_') || 'input');
    this.layers.push({
      class_name: 'InputLayer',
      name,
      config: { name, batch_input_shape: [null, ...runtimeShape], dtype: 'float32', sparse: false },
      inbound_nodes: [],
    });
    this.values.set(info.name, { kind: 'tensor', layer: name, shape });
    this.tensorLayers[info.name] = name;
    return name;
  }

  private uniqueName(base: string): string {
    let name = /^[A-Za-z]/.test(base) ? base : `n${base}`;
    for (let k = 1; this.usedNames.has(name); k++) name = `${base}_${k}`;
    this.usedNames.add(name);
    return name;
  }

  private convert(): void {
    switch (this.node.op_type) {
      case 'Constant': return this.constant();
      case 'Identity': case 'Dropout': return this.alias();
      case 'Conv': return this.conv();
      case 'BatchNormalization': return this.batchNorm();
      case 'Relu': return this.activationLayer('ReLU', {});
      case 'LeakyRelu': return this.activationLayer('LeakyReLU', { alpha: this.float('alpha', 0.01) });
      case 'Clip': return this.clip();
      case 'Sigmoid': return this.activationLayer('Activation', { activation: 'sigmoid' });
      case 'Tanh': return this.activationLayer('Activation', { activation: 'tanh' });
      case 'HardSigmoid': return this.hardSigmoid();
      case 'HardSwish': return this.activationLayer('Activation', { activation: HARD_SILU_ACTIVATION });
      case 'Softmax': return this.softmax();
      case 'Add': return this.merge('Add');
      case 'Sub': return this.merge('Subtract');
      case 'Mul': return this.merge('Multiply');
      case 'Div': return this.merge('Divide');
      case 'Concat': return this.concat();
      case 'MaxPool': return this.pool('max');
      case 'AveragePool': return this.pool('avg');
      case 'GlobalAveragePool': return this.globalPool('GlobalAveragePooling2D');
      case 'GlobalMaxPool': return this.globalPool('GlobalMaxPooling2D');
      case 'Flatten': return this.flatten();
      case 'Reshape': return this.reshape();
      case 'Gemm': return this.gemm();
      case 'MatMul': return this.matmul();
      case 'Pad': return this.pad();
      default: return this.opaque();
    }
  }

  /**
   * An op this importer cannot map. With one activation input, one output and that output's shape
   * known (value_info or the graph's outputs, or an op that keeps its input's shape), it becomes an
   * OnnxOpaque layer: the model loads, the layer registry blocks the channels it touches, and running
   * it fails naming the node. Otherwise the import fails here.
   */
  private opaque(why = `the op type is not supported (PruneLens imports ${SUPPORTED_ONNX_OPS.join(', ')})`, keepsShape = SHAPE_KEEPING_OPS.has(this.node.op_type)): void {
    const opType = this.node.op_type;
    const inputs = this.node.input.map((name) => (name === '' ? undefined : this.values.get(name)));
    const activations = inputs.filter((v): v is TensorValue => v?.kind === 'tensor');
    const outputs = this.node.output.filter(Boolean);
    if (activations.length !== 1 || outputs.length !== 1 || inputs.some((v, i) => v === undefined && this.node.input[i] !== '')) {
      this.unsupported(`${why}, and with ${activations.length} activation inputs and ${outputs.length} outputs it cannot be kept as an opaque step`);
    }
    const [x] = activations;
    const shape = this.knownShape(outputs[0]) ?? (keepsShape ? x.shape : undefined);
    if (!shape) this.unsupported(`${why}, and the graph does not give its output's shape (value_info), so it cannot be kept as an opaque step`);
    if (shape.length !== 3 && shape.length !== 1) this.unsupported(`${why}, and its output has rank ${shape.length + 1} (opaque steps keep rank 2 or 4)`);
    const node = this.node.name || `#${this.nodeIndex}`;
    const outputShape = shape.length === 3 ? [shape[1], shape[2], shape[0]] : shape;
    const y = this.addLayer('OnnxOpaque', { op_type: { name: opType }, node: { name: node }, output_shape: outputShape }, [x], shape);
    // A shape-keeping step after a flatten keeps its feature order for the dense layer after it.
    if (x.flattened && shape.join(',') === x.shape.join(',')) y.flattened = x.flattened;
    this.unsupportedNodes.push({ node, opType });
    this.setOutput(0, y);
  }

  /** A tensor's shape without the batch axis, when value_info or the graph's outputs fix every axis but the first. */
  private knownShape(name: string): number[] | undefined {
    const graph = this.model.graph!;
    const info = [...graph.value_info, ...graph.output].find((v) => v.name === name);
    const dims = info?.type?.tensor_type?.shape?.dim;
    if (!dims || dims.length < 2) return undefined;
    const shape = dims.slice(1).map((d) => toNumber(d.dim_value));
    return shape.every((d) => d > 0) ? shape : undefined;
  }

  private constant(): void {
    const value = this.attr('value')?.t;
    if (!value) this.unsupported('only a tensor "value" is supported');
    this.setOutput(0, { kind: 'const', source: this.node.output[0], tensor: value });
  }

  private alias(): void {
    const value = this.input(0);
    if (!value) this.fail(`${this.nodeLabel()} lacks its input`);
    if (value.kind === 'const') this.identitySources.set(this.node.output[0], value.source);
    this.setOutput(0, value);
  }

  private activationLayer(className: string, config: Json): void {
    const x = this.tensorInput(0);
    this.setOutput(0, this.addLayer(className, config, [x], x.shape));
  }

  private clip(): void {
    let min: number | undefined;
    let max: number | undefined;
    if (this.opset < 11) {
      min = this.float('min', -Infinity);
      max = this.float('max', Infinity);
    } else {
      min = this.input(1) ? this.scalar(1, 'min') : -Infinity;
      max = this.input(2) ? this.scalar(2, 'max') : Infinity;
    }
    if (min !== 0) this.unsupported(`Clip(min ${min}, max ${max}) is not a ReLU or ReLU6`);
    this.activationLayer('ReLU', Number.isFinite(max) ? { max_value: max } : {});
  }

  private scalar(i: number, what: string): number {
    const v = this.numbers(this.constInput(i, what));
    if (v.length !== 1) this.unsupported(`its ${what} has ${v.length} values, not one`);
    return Number(v[0]);
  }

  private hardSigmoid(): void {
    const alpha = this.float('alpha', 0.2);
    const beta = this.float('beta', 0.5);
    if (Math.abs(alpha - 1 / 6) < 1e-6 && beta === 0.5) return this.activationLayer('Activation', { activation: KERAS3_HARD_SIGMOID_ACTIVATION });
    if (Math.abs(alpha - 0.2) < 1e-6 && beta === 0.5) return this.activationLayer('Activation', { activation: 'hard_sigmoid' });
    this.unsupported(`HardSigmoid with alpha ${alpha} and beta ${beta} (PyTorch's 1/6, 0.5 and Keras' 0.2, 0.5 are supported)`);
  }

  private softmax(): void {
    const x = this.tensorInput(0);
    const rank = x.shape.length + 1;
    const axis = this.int('axis', this.opset >= 13 ? -1 : 1);
    if (rank !== 2 || (axis !== 1 && axis !== -1)) this.unsupported(`softmax over axis ${axis} of a rank-${rank} tensor`);
    this.setOutput(0, this.addLayer('Softmax', { axis: -1 }, [x], x.shape));
  }

  private merge(className: string): void {
    const a = this.input(0);
    const b = this.input(1);
    if (!a || !b) this.fail(`${this.nodeLabel()} lacks an operand`);
    if (a.kind !== b.kind) return this.constantOperand(a.kind === 'const' ? a : (b as ConstValue), a.kind === 'tensor' ? a : (b as TensorValue), a.kind === 'const');
    if (a.kind !== 'tensor' || b.kind !== 'tensor') this.unsupported('an element-wise op on two constants');
    // TF.js has no layer that divides two activations.
    if (className === 'Divide') return this.opaque('a division of two activations is not supported', a.shape.join(',') === b.shape.join(','));
    const shape = a.shape.map((d, i) => Math.max(d, b.shape[i] ?? 1));
    if (a.shape.length !== b.shape.length) this.unsupported(`operands of rank ${a.shape.length + 1} and ${b.shape.length + 1}`);
    this.setOutput(0, this.addLayer(className, {}, [a, b], shape));
  }

  /**
   * Add, Sub, Mul or Div of an activation and a constant. A scalar is a Rescaling layer
   * (x·scale + offset, channel-wise); other constants (per-channel ones) stay opaque.
   */
  private constantOperand(c: ConstValue, x: TensorValue, constantFirst: boolean): void {
    const op = this.node.op_type;
    const dims = tensorDims(c.tensor);
    const values = this.numbers(c);
    if (values.length === 1 && dims.length <= x.shape.length + 1) {
      const v = Number(values[0]);
      const affine: Record<string, [number, number] | undefined> = {
        Add: [1, v], Sub: constantFirst ? [-1, v] : [1, -v], Mul: [v, 0], Div: constantFirst ? undefined : [1 / v, 0],
      };
      const rescale = affine[op];
      if (rescale) return this.setOutput(0, this.addLayer('Rescaling', { scale: rescale[0], offset: rescale[1] }, [x], x.shape));
    }
    // A constant that broadcasts into the activation (a scalar, [C, 1, 1], [1, C, 1, 1]) keeps its shape.
    const aligned = dims.slice(-x.shape.length);
    const keepsShape = dims.length <= x.shape.length + 1 && dims.slice(0, dims.length - aligned.length).every((d) => d === 1)
      && aligned.every((d, i) => d === 1 || d === x.shape[x.shape.length - aligned.length + i]);
    this.opaque(`${op} with a constant operand of shape [${dims.join(', ')}] is not supported (scalar constants are)`, keepsShape);
  }

  private concat(): void {
    const inputs = this.node.input.map((_, i) => this.tensorInput(i));
    const rank = inputs[0].shape.length + 1;
    const axis = this.int('axis', 1);
    if (axis !== 1 && axis !== 1 - rank) this.unsupported(`concatenation along axis ${axis}, not channels`);
    // torch.cat of one tensor (DenseNet's first layer of each block) is that tensor.
    if (inputs.length === 1) return this.setOutput(0, inputs[0]);
    const channels = inputs.reduce((n, t) => n + t.shape[0], 0);
    this.setOutput(0, this.addLayer('Concatenate', { axis: -1 }, inputs, [channels, ...inputs[0].shape.slice(1)]));
  }

  private spatialInput(): TensorValue & { shape: [number, number, number] } {
    const x = this.tensorInput(0);
    if (x.shape.length !== 3) this.unsupported(`a rank-${x.shape.length + 1} input (PruneLens imports 2-D convolutions and pooling on NCHW tensors)`);
    return x as TensorValue & { shape: [number, number, number] };
  }

  /** [top, left, bottom, right] of a conv or pool, from pads or auto_pad. */
  private padsOf(size: [number, number], kernel: [number, number], strides: [number, number], dilations: [number, number]): [number, number, number, number] {
    const autoPad = this.string('auto_pad') ?? 'NOTSET';
    if (autoPad === 'NOTSET') {
      const p = this.ints('pads') ?? [0, 0, 0, 0];
      if (p.length !== 4) this.unsupported(`pads ${JSON.stringify(p)} are not 2-D`);
      return [p[0], p[1], p[2], p[3]];
    }
    if (autoPad === 'VALID') return [0, 0, 0, 0];
    const total = [0, 1].map((i) => Math.max((Math.ceil(size[i] / strides[i]) - 1) * strides[i] + (kernel[i] - 1) * dilations[i] + 1 - size[i], 0));
    const small = total.map((t) => Math.floor(t / 2));
    if (autoPad === 'SAME_UPPER') return [small[0], small[1], total[0] - small[0], total[1] - small[1]];
    return [total[0] - small[0], total[1] - small[1], small[0], small[1]];
  }

  /** 'valid', 'same' (when the pads are exactly TF.js' same padding) or a ZeroPadding2D layer then 'valid'. */
  private padded(x: TensorValue & { shape: [number, number, number] }, pads: [number, number, number, number], kernel: [number, number], strides: [number, number], dilations: [number, number]):
    { input: TensorValue; padding: 'valid' | 'same'; size: [number, number] } {
    const size: [number, number] = [x.shape[1], x.shape[2]];
    if (pads.every((p) => p === 0)) return { input: x, padding: 'valid', size };
    const total = [0, 1].map((i) => Math.max((Math.ceil(size[i] / strides[i]) - 1) * strides[i] + (kernel[i] - 1) * dilations[i] + 1 - size[i], 0));
    const same = [0, 1].every((i) => pads[i] === Math.floor(total[i] / 2) && pads[i + 2] === total[i] - Math.floor(total[i] / 2));
    if (same) return { input: x, padding: 'same', size };
    if (pads.some((p) => p < 0)) this.unsupported('negative pads');
    const paddedShape = [x.shape[0], size[0] + pads[0] + pads[2], size[1] + pads[1] + pads[3]];
    const layer = this.addLayer('ZeroPadding2D', { padding: [[pads[0], pads[2]], [pads[1], pads[3]]], data_format: 'channels_last' }, [x], paddedShape, '_pad');
    return { input: layer, padding: 'valid', size: [paddedShape[1], paddedShape[2]] };
  }

  private conv(): void {
    const x = this.spatialInput();
    const w = this.constInput(1, 'weight');
    const b = this.input(2) ? this.constInput(2, 'bias') : undefined;
    const wDims = tensorDims(w.tensor);
    if (wDims.length !== 4) this.unsupported(`a ${wDims.length - 2}-D convolution (2-D only)`);
    const [out, inPerGroup, kh, kw] = wDims;
    const group = this.int('group', 1);
    const channels = x.shape[0];
    const kernel: [number, number] = [kh, kw];
    const strides = (this.ints('strides') ?? [1, 1]) as [number, number];
    const dilations = (this.ints('dilations') ?? [1, 1]) as [number, number];
    const pads = this.padsOf([x.shape[1], x.shape[2]], kernel, strides, dilations);
    if (inPerGroup * group !== channels) this.fail(`${this.nodeLabel()}: its weight takes ${inPerGroup * group} input channels, but its input has ${channels}`);
    const depthwise = group > 1 && group === channels && inPerGroup === 1;
    if (group > 1 && !depthwise) this.unsupported(`a grouped convolution (group ${group} of ${channels} channels; PruneLens runs group 1 and depthwise)`);
    const { input, padding, size } = this.padded(x, pads, kernel, strides, dilations);
    const outSize = (i: 0 | 1) => (padding === 'same' ? Math.ceil(size[i] / strides[i]) : Math.floor((size[i] - dilations[i] * (kernel[i] - 1) - 1) / strides[i]) + 1);
    const shape = [out, outSize(0), outSize(1)];
    const common = { kernel_size: kernel, strides, padding, dilation_rate: dilations, use_bias: b !== undefined, activation: 'linear', data_format: 'channels_last' };
    const weightValues = this.floats(w);
    if (depthwise) {
      const multiplier = out / channels;
      const y = this.addLayer('DepthwiseConv2D', { ...common, depth_multiplier: multiplier }, [input], shape);
      this.setWeight(y.layer, 'depthwise_kernel', [kh, kw, channels, multiplier], fromOnnxLayout(weightValues, wDims, 'depthwise'), this.location(1, w, 'depthwise'));
      this.depthwiseGroups.push({ node: this.nodeIndex, layer: y.layer });
      if (b) this.setWeight(y.layer, 'bias', [out], this.floats(b), this.location(2, b, 'vector'));
      return this.setOutput(0, y);
    }
    const y = this.addLayer('Conv2D', { ...common, filters: out }, [input], shape);
    this.setWeight(y.layer, 'kernel', [kh, kw, inPerGroup, out], fromOnnxLayout(weightValues, wDims, 'conv'), this.location(1, w, 'conv'));
    if (b) this.setWeight(y.layer, 'bias', [out], this.floats(b), this.location(2, b, 'vector'));
    this.setOutput(0, y);
  }

  private batchNorm(): void {
    const x = this.tensorInput(0);
    if (this.int('training_mode', 0) !== 0 || this.node.output.filter(Boolean).length > 1) this.unsupported('a batch norm exported in training mode');
    const epsilon = this.float('epsilon', 1e-5);
    const momentum = this.float('momentum', 0.9);
    const y = this.addLayer('BatchNormalization', { axis: -1, epsilon, momentum, center: true, scale: true }, [x], x.shape);
    const channels = x.shape[0];
    (['gamma', 'beta', 'moving_mean', 'moving_variance'] as const).forEach((weight, k) => {
      const value = this.constInput(k + 1, weight);
      this.setWeight(y.layer, weight, [channels], this.floats(value), this.location(k + 1, value, 'vector'));
    });
    this.setOutput(0, y);
  }

  private pool(mode: 'max' | 'avg'): void {
    const x = this.spatialInput();
    const kernel = this.ints('kernel_shape') as [number, number] | undefined;
    if (!kernel || kernel.length !== 2) this.unsupported('a pooling window that is not 2-D');
    const strides = (this.ints('strides') ?? [1, 1]) as [number, number];
    const dilations = (this.ints('dilations') ?? [1, 1]) as [number, number];
    if (dilations.some((d) => d !== 1)) this.unsupported('dilated pooling');
    const pads = this.padsOf([x.shape[1], x.shape[2]], kernel, strides, dilations);
    const countIncludePad = this.int('count_include_pad', 0) === 1;
    // ceil_mode adds the rows and columns a last, partial window reaches (which must start inside the input or its left pad).
    // ONNX Runtime never counts them in an average's divisor, not even with count_include_pad.
    const ceilExtra: [number, number] = [0, 0];
    if (this.int('ceil_mode', 0) === 1) {
      for (const i of [0, 1] as const) {
        const span = x.shape[i + 1] + pads[i] + pads[i + 2] - kernel[i];
        let out = Math.ceil(span / strides[i]) + 1;
        if ((out - 1) * strides[i] >= x.shape[i + 1] + pads[i]) out--;
        ceilExtra[i] = Math.max((out - 1) * strides[i] + kernel[i] - (x.shape[i + 1] + pads[i] + pads[i + 2]), 0);
        pads[i + 2] += ceilExtra[i];
      }
    }
    const outSize = (i: 0 | 1) => Math.floor((x.shape[i + 1] + pads[i] + pads[i + 2] - kernel[i]) / strides[i]) + 1;
    const shape = [x.shape[0], outSize(0), outSize(1)];
    const builtIn = mode === 'max' ? 'MaxPooling2D' : 'AveragePooling2D';
    const options = { pool_size: kernel, strides, data_format: 'channels_last' };
    if (pads.every((p) => p === 0)) return this.setOutput(0, this.addLayer(builtIn, { ...options, padding: 'valid' }, [x], shape));
    if (mode === 'avg' && countIncludePad && ceilExtra.every((e) => e === 0)) {
      // Zeros counted in the divisor: explicit zero padding, then a valid average ('same' would leave the padding out of the count).
      const paddedShape = [x.shape[0], x.shape[1] + pads[0] + pads[2], x.shape[2] + pads[1] + pads[3]];
      const input = this.addLayer('ZeroPadding2D', { padding: [[pads[0], pads[2]], [pads[1], pads[3]]], data_format: 'channels_last' }, [x], paddedShape, '_pad');
      return this.setOutput(0, this.addLayer(builtIn, { ...options, padding: 'valid' }, [input], shape));
    }
    const config = { mode, pool_size: kernel, strides, pads, count_include_pad: countIncludePad, ...(ceilExtra.some((e) => e > 0) ? { ceil_extra: ceilExtra } : {}) };
    this.setOutput(0, this.addLayer('OnnxPool2D', config, [x], shape));
  }

  /** ONNX keeps [C, 1, 1]; TF.js' global pooling drops the unit axes, so a Reshape puts them back. */
  private globalPool(className: string): void {
    const x = this.spatialInput();
    const pooled = this.addLayer(className, { data_format: 'channels_last' }, [x], [x.shape[0]]);
    this.setOutput(0, this.addLayer('Reshape', { target_shape: [1, 1, x.shape[0]] }, [pooled], [x.shape[0], 1, 1], '_keepdims'));
  }

  private flattenLayer(x: TensorValue): TensorValue {
    if (x.shape.length === 1) return x;
    if (x.shape.length !== 3) this.unsupported(`flattening a rank-${x.shape.length + 1} tensor`);
    const [channels, height, width] = x.shape;
    const y = this.addLayer('Flatten', { data_format: 'channels_last' }, [x], [channels * height * width]);
    if (height * width > 1) y.flattened = { channels, height, width };
    return y;
  }

  private flatten(): void {
    const x = this.tensorInput(0);
    const axis = this.int('axis', 1);
    if (axis !== 1) this.unsupported(`flattening from axis ${axis} (PruneLens flattens from axis 1)`);
    this.setOutput(0, this.flattenLayer(x));
  }

  private reshape(): void {
    const x = this.tensorInput(0);
    const shapeValue = this.constInput(1, 'shape');
    const target = Array.from(this.numbers(shapeValue), Number);
    const count = x.shape.reduce((n, d) => n * d, 1);
    const batchAxis = (d: number) => d === 0 || d === -1 || d > 0;
    if (target.length === 2 && x.shape.length === 3 && batchAxis(target[0]) && (target[1] === -1 || target[1] === count)) {
      const y = this.flattenLayer(x);
      if (target[1] !== -1) this.shapeConstants.push({ node: this.nodeIndex, source: shapeValue.source, layer: x.layer, index: 1, positions: x.shape[1] * x.shape[2] });
      return this.setOutput(0, y);
    }
    if (target.length === 4 && x.shape.length === 1 && (target[1] === x.shape[0] || target[1] === -1) && target[2] === 1 && target[3] === 1) {
      const y = this.addLayer('Reshape', { target_shape: [1, 1, x.shape[0]] }, [x], [x.shape[0], 1, 1]);
      if (target[1] !== -1) this.shapeConstants.push({ node: this.nodeIndex, source: shapeValue.source, layer: x.layer, index: 1, positions: 1 });
      return this.setOutput(0, y);
    }
    this.unsupported(`a reshape of [N, ${x.shape.join(', ')}] to [${target.join(', ')}] (PruneLens imports flattens and [N, C] ↔ [N, C, 1, 1])`);
  }

  private denseInput(): TensorValue {
    const x = this.tensorInput(0);
    if (x.shape.length !== 1) this.unsupported(`a rank-${x.shape.length + 1} input (dense layers take [N, features])`);
    return x;
  }

  private gemm(): void {
    const x = this.denseInput();
    if (this.int('transA', 0) !== 0) this.unsupported('transA = 1');
    const transB = this.int('transB', 0) === 1;
    const alpha = this.float('alpha', 1);
    const beta = this.float('beta', 1);
    const w = this.constInput(1, 'weight');
    const dims = tensorDims(w.tensor);
    const [features, units] = transB ? [dims[1], dims[0]] : dims;
    if (dims.length !== 2 || features !== x.shape[0]) this.fail(`${this.nodeLabel()}: its weight [${dims.join(', ')}] does not take ${x.shape[0]} features`);
    const y = this.addLayer('Dense', { units, use_bias: this.input(2) !== undefined, activation: 'linear' }, [x], [units]);
    const layout: OnnxWeightLayout = transB ? 'gemm' : 'matmul';
    const extra: Partial<OnnxWeightLocation> = { ...(alpha !== 1 ? { scale: alpha } : {}), ...(x.flattened ? { flattened: { height: x.flattened.height, width: x.flattened.width } } : {}) };
    const kernel = fromOnnxLayout(this.floats(w), dims, layout, extra.flattened, alpha);
    this.setWeight(y.layer, 'kernel', [features, units], kernel, this.location(1, w, layout, extra));
    if (this.input(2)) {
      const b = this.constInput(2, 'bias');
      const bias = this.floats(b);
      if (bias.length !== units) this.unsupported(`a bias of ${bias.length} values for ${units} units (broadcast biases are not supported)`);
      this.setWeight(y.layer, 'bias', [units], beta === 1 ? bias : bias.map((v) => v * beta), this.location(2, b, 'vector', beta !== 1 ? { scale: beta } : {}));
    }
    this.setOutput(0, y);
  }

  private matmul(): void {
    const x = this.denseInput();
    const w = this.constInput(1, 'weight');
    const dims = tensorDims(w.tensor);
    if (dims.length !== 2 || dims[0] !== x.shape[0]) this.unsupported(`a matrix product with a [${dims.join(', ')}] weight`);
    const flattened = x.flattened ? { height: x.flattened.height, width: x.flattened.width } : undefined;
    const y = this.addLayer('Dense', { units: dims[1], use_bias: false, activation: 'linear' }, [x], [dims[1]]);
    this.setWeight(y.layer, 'kernel', dims, fromOnnxLayout(this.floats(w), dims, 'matmul', flattened), this.location(1, w, 'matmul', flattened ? { flattened } : {}));
    this.setOutput(0, y);
  }

  private pad(): void {
    const x = this.spatialInput();
    const mode = this.string('mode') ?? 'constant';
    let pads: number[];
    let value = 0;
    if (this.opset < 11) {
      pads = this.ints('pads') ?? [];
      value = this.float('value', 0);
    } else {
      pads = Array.from(this.numbers(this.constInput(1, 'pads')), Number);
      if (this.input(2)) value = this.scalar(2, 'constant value');
    }
    if (this.input(3)) this.unsupported('padding selected axes');
    if (mode !== 'constant' || value !== 0) this.unsupported(`${mode} padding with value ${value} (zero padding only)`);
    // [n, c, h, w] begins then ends.
    if (pads.length !== 8 || pads[0] || pads[1] || pads[4] || pads[5]) this.unsupported(`pads [${pads.join(', ')}] that are not spatial`);
    if (pads.some((p) => p < 0)) this.unsupported('negative pads (cropping)');
    const shape = [x.shape[0], x.shape[1] + pads[2] + pads[6], x.shape[2] + pads[3] + pads[7]];
    this.setOutput(0, this.addLayer('ZeroPadding2D', { padding: [[pads[2], pads[6]], [pads[3], pads[7]]], data_format: 'channels_last' }, [x], shape));
  }
}

/**
 * The PyTorch module a node belongs to, from the scope name torch.onnx.export gives it:
 * "/layer1/layer1.0/conv1/Conv" → "layer1.0.conv1", "/features/features.1/block/block.0/block.0.0/Conv" →
 * "features.1.block.0.0" — the names users know their layers by (`model.named_modules()`). Undefined for other exporters' names.
 */
export function modulePath(nodeName: string): string | undefined {
  if (!nodeName.startsWith('/')) return undefined;
  const scopes = nodeName.slice(1).split('/').slice(0, -1);
  let path: string[] = [];
  for (const scope of scopes) {
    // A scope repeats the end of its parent's path ("features.1/block/block.0"): join them where they overlap.
    const parts = scope.split('.');
    let overlap = Math.min(path.length, parts.length);
    while (overlap > 0 && path.slice(-overlap).join('.') !== parts.slice(0, overlap).join('.')) overlap--;
    path = [...path, ...parts.slice(overlap)];
  }
  return path.length ? path.join('.') : undefined;
}

/**
 * For each element of a runtime weight, the index of the same value in the ONNX tensor of shape
 * `onnxDims`. Conv [O, I, kh, kw] ↔ [kh, kw, I, O]; depthwise is the same map read with I = 1 and
 * O = C·m ([C·m, 1, kh, kw] ↔ [kh, kw, C, m]); dense rows after a flatten of [C, H, W] go from ONNX's
 * c·H·W + s to the runtime's s·C + c, with Gemm's [units, features] or MatMul's [features, units].
 */
function onnxIndexOf(layout: OnnxWeightLayout, onnxDims: readonly number[], flattened?: { height: number; width: number }): Int32Array {
  const count = onnxDims.reduce((n, d) => n * d, 1);
  const index = new Int32Array(count);
  if (layout === 'vector') return index.map((_, r) => r);
  if (layout === 'conv' || layout === 'depthwise') {
    const [o, i, kh, kw] = onnxDims;
    let r = 0;
    for (let y = 0; y < kh; y++) for (let x = 0; x < kw; x++) for (let b = 0; b < i; b++) for (let a = 0; a < o; a++) index[r++] = ((a * i + b) * kh + y) * kw + x;
    return index;
  }
  const [features, units] = layout === 'gemm' ? [onnxDims[1], onnxDims[0]] : onnxDims;
  const positions = flattened ? flattened.height * flattened.width : 1;
  const channels = features / positions;
  for (let f = 0; f < features; f++) {
    const row = (f % positions) * channels + Math.floor(f / positions);
    for (let u = 0; u < units; u++) index[row * units + u] = layout === 'gemm' ? u * features + f : f * units + u;
  }
  return index;
}

/** ONNX weight values in the runtime layout (see onnxIndexOf); `scale` multiplies them. */
export function fromOnnxLayout(values: Float32Array, dims: readonly number[], layout: OnnxWeightLayout, flattened?: { height: number; width: number }, scale = 1): Float32Array {
  if (layout === 'vector' && scale === 1) return values;
  const index = onnxIndexOf(layout, dims, flattened);
  return Float32Array.from(index, (source) => values[source] * scale);
}

/** Runtime weight values back in ONNX layout: the inverse of fromOnnxLayout, for the runtime shape given. */
export function toOnnxLayout(values: Float32Array, runtimeShape: readonly number[], layout: OnnxWeightLayout, flattened?: { height: number; width: number }, scale = 1): { dims: number[]; values: Float32Array } {
  const [a, b, c, d] = runtimeShape;
  const dims = layout === 'conv' ? [d, c, a, b]
    : layout === 'depthwise' ? [c * d, 1, a, b]
      : layout === 'gemm' ? [b, a]
        : layout === 'matmul' ? [a, b] : [values.length];
  if (layout === 'vector' && scale === 1) return { dims, values };
  const index = onnxIndexOf(layout, dims, flattened);
  const out = new Float32Array(values.length);
  index.forEach((target, r) => { out[target] = values[r] / scale; });
  return { dims, values: out };
}

/** Converts a decoded ONNX model; fails in one line on the first node it cannot map. */
export function importOnnxGraph(model: OnnxModel, file: string, external?: ExternalData): ImportedOnnx {
  const opset = toNumber(model.opset_import.find((o) => !o.domain || o.domain === 'ai.onnx')?.version);
  if (opset === 0) throw new UserError('does not say which ONNX opset it uses (no opset_import for the default domain)', { file, fix: REEXPORT });
  if (opset < MIN_OPSET || opset > MAX_OPSET + 3) {
    throw new UserError(`uses ONNX opset ${opset}; PruneLens reads opsets ${MIN_OPSET}–${MAX_OPSET}`, { file, fix: `Export with opset_version between 11 and ${MAX_OPSET}` });
  }
  return new Importer(model, file, external, opset).run();
}
