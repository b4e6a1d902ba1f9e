import * as tf from '@tensorflow/tfjs';
import { UserError } from '../../errors.js';
import { HARD_SILU_ACTIVATION, KERAS3_HARD_SIGMOID_ACTIVATION } from './layers.js';

/**
 * Keras model configs (Keras 3 and Keras 2 style) converted to the TF.js layers topology that
 * `tf.models.modelFromJSON` builds. Keras 3 writes `batch_shape`, `DTypePolicy` objects,
 * `__keras_tensor__` call records and Keras 3 activation names; TF.js reads the Keras 2 forms.
 * Where TF.js has no faithful equivalent (a layer class, an activation, an option such as grouped
 * convolutions) the conversion stops with one line naming the layer.
 */

export type KerasStyle = 'keras3' | 'keras2';

type Json = Record<string, unknown>;

/** A layer as Keras lists it in `model.layers`: its `.keras` weights are keyed by class in this order. */
export interface KerasLayerRef {
  name: string;
  className: string;
}

export interface ConvertedTopology {
  /** `{class_name, config}` for `tf.models.modelFromJSON`. */
  topology: Json;
  /** The model's layers in Keras' `model.layers` order. */
  layers: KerasLayerRef[];
}

interface Where {
  file: string;
  style: KerasStyle;
}

const FUNCTIONAL_CLASSES = new Set(['Functional', 'Model']);
const RESAVE = 'Save the model again with Keras (model.save)';

function isRecord(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function fail(message: string, where: Where, fix = RESAVE): never {
  throw new UserError(message, { file: where.file, fix });
}

function unsupported(layer: string, className: string, what: string, where: Where): never {
  fail(`layer "${layer}" (${className}): ${what}, which TF.js layers cannot run`, where,
    'Replace it with a supported layer or option in Keras and save again');
}

function knownTfjsClass(className: string): boolean {
  return className in tf.serialization.SerializationMap.getMap().classNameMap;
}

// ---- activations ----

/** Activation names TF.js runs exactly as Keras does (TF.js camel-cases snake_case names itself). */
const SHARED_ACTIVATIONS = new Set(['linear', 'relu', 'relu6', 'elu', 'selu', 'sigmoid', 'tanh', 'softmax', 'softplus', 'softsign', 'swish', 'gelu', 'mish', 'log_softmax']);

/**
 * The TF.js name of a Keras activation. Keras 3 calls swish `silu`; its `hard_sigmoid` is
 * relu6(x + 3) / 6 where Keras 2's and TF.js' is clip(0.2·x + 0.5), and its `hard_silu` is not
 * in TF.js: both run as PruneLens' registered activations (layers.ts).
 */
function tfjsActivation(value: unknown, layer: string, className: string, where: Where): unknown {
  if (value === null || value === undefined) return value;
  // Keras 3 may serialise a built-in activation as a function reference.
  const name = typeof value === 'string' ? value : isRecord(value) && value.class_name === 'function' && typeof value.config === 'string' ? value.config : undefined;
  if (name === undefined) unsupported(layer, className, `activation ${JSON.stringify(value).slice(0, 80)} is not a built-in activation`, where);
  if (name === 'silu') return 'swish';
  if (SHARED_ACTIVATIONS.has(name)) return name;
  if (name === 'hard_sigmoid') return where.style === 'keras2' ? name : KERAS3_HARD_SIGMOID_ACTIVATION;
  if (name === 'hard_silu' || name === 'hard_swish') return HARD_SILU_ACTIVATION;
  return unsupported(layer, className, `activation "${name}" has no TF.js equivalent`, where);
}

// ---- serialised objects inside layer configs ----

/** Keras 3 wraps dtypes in a `DTypePolicy`; a mixed policy keeps float32 variables, which TF.js computes in. */
function dtypeName(value: unknown): unknown {
  if (!isRecord(value)) return value;
  const config = isRecord(value.config) ? value.config : {};
  const name = typeof config.name === 'string' ? config.name : 'float32';
  return name.startsWith('mixed_') ? 'float32' : name;
}

/** Keras 3 serialises initializers, regularizers and constraints with extra `module` and `registered_name` fields. */
function plainObject(value: Json): Json {
  return { class_name: value.class_name, config: isRecord(value.config) ? { ...value.config } : {} };
}

/**
 * Initializers only shape weights that are then replaced by the file's; one TF.js lacks (or
 * spells differently, such as `LecunNormal`) falls back to TF.js' default.
 */
function initializer(value: unknown): unknown {
  if (typeof value === 'string' || !isRecord(value)) return value;
  const className = String(value.class_name);
  const renamed = className === 'LecunNormal' ? 'LeCunNormal' : className === 'LecunUniform' ? 'LeCunUniform' : className;
  if (!knownTfjsClass(renamed)) return undefined;
  const plain = plainObject(value);
  plain.class_name = renamed;
  if (isRecord(plain.config)) {
    delete plain.config.input_axes;
    delete plain.config.output_axes;
  }
  return plain;
}

/** Keras 3's L1 and L2 regularizers are TF.js' L1L2 with one term. */
function regularizer(value: unknown): unknown {
  if (!isRecord(value)) return value;
  const config = isRecord(value.config) ? value.config : {};
  switch (value.class_name) {
    case 'L1': return { class_name: 'L1L2', config: { l1: Number(config.l1 ?? 0), l2: 0 } };
    case 'L2': return { class_name: 'L1L2', config: { l1: 0, l2: Number(config.l2 ?? 0) } };
    case 'L1L2': return { class_name: 'L1L2', config: { l1: Number(config.l1 ?? 0), l2: Number(config.l2 ?? 0) } };
    default: return undefined;
  }
}

function constraint(value: unknown): unknown {
  if (!isRecord(value)) return value;
  return knownTfjsClass(String(value.class_name)) ? plainObject(value) : undefined;
}

function convertFields(config: Json, layer: string, className: string, where: Where): Json {
  const out: Json = {};
  for (const [key, value] of Object.entries(config)) {
    let converted: unknown = value;
    if (key === 'dtype') converted = dtypeName(value);
    else if (key.endsWith('_initializer')) converted = initializer(value);
    else if (key.endsWith('_regularizer')) converted = regularizer(value);
    else if (key.endsWith('_constraint')) converted = constraint(value);
    else if (key === 'activation' || key === 'recurrent_activation') converted = tfjsActivation(value, layer, className, where);
    if (converted !== undefined) out[key] = converted;
  }
  return out;
}

// ---- layer classes ----

const GLOBAL_POOLING = new Set(['GlobalAveragePooling1D', 'GlobalAveragePooling2D', 'GlobalAveragePooling3D', 'GlobalMaxPooling1D', 'GlobalMaxPooling2D', 'GlobalMaxPooling3D']);
const CONVOLUTIONS = new Set(['Conv1D', 'Conv2D', 'Conv3D', 'Conv2DTranspose', 'Conv3DTranspose']);

/** The class-specific differences between Keras' and TF.js' layer configs. */
function convertClassOptions(className: string, config: Json, layer: string, where: Where): { className: string; config: Json } {
  const c = { ...config };
  if (className === 'InputLayer') {
    if (c.batch_shape !== undefined && c.batch_input_shape === undefined) c.batch_input_shape = c.batch_shape;
    delete c.batch_shape;
    if (c.sparse === true) unsupported(layer, className, 'a sparse input', where);
    if (c.ragged === true) unsupported(layer, className, 'a ragged input', where);
    delete c.sparse;
    delete c.ragged;
    delete c.optional;
    return { className, config: c };
  }
  if (CONVOLUTIONS.has(className)) {
    if (c.groups !== undefined && c.groups !== 1) unsupported(layer, className, `grouped convolution (groups=${String(c.groups)})`, where);
    delete c.groups;
  }
  if (GLOBAL_POOLING.has(className)) {
    if (c.keepdims === true) unsupported(layer, className, 'keepdims=True', where);
    delete c.keepdims;
  }
  if (className === 'Dense' || CONVOLUTIONS.has(className) || className === 'DepthwiseConv2D' || className === 'SeparableConv2D') {
    if (typeof c.lora_rank === 'number' && c.lora_rank > 0) unsupported(layer, className, `LoRA weights (lora_rank=${c.lora_rank})`, where);
    if (c.quantization_config != null || (typeof c.quantization_mode === 'string')) unsupported(layer, className, 'quantized weights', where);
    delete c.lora_rank;
    delete c.lora_alpha;
    delete c.quantization_config;
  }
  if (className === 'BatchNormalization') {
    if (c.renorm === true) unsupported(layer, className, 'batch renormalization (renorm=True)', where);
    for (const key of ['renorm', 'renorm_clipping', 'renorm_momentum', 'synchronized']) delete c[key];
  }
  if (className === 'LayerNormalization' && c.rms_scaling === true) unsupported(layer, className, 'RMS scaling (rms_scaling=True)', where);
  if (className === 'LeakyReLU' && c.negative_slope !== undefined) {
    c.alpha = c.negative_slope;
    delete c.negative_slope;
  }
  if (className === 'ReLU') return convertRelu(c, layer, where);
  if (className === 'Normalization') checkNormalization(c, layer, where);
  return { className, config: c };
}

/**
 * Keras' ReLU(max_value, negative_slope, threshold): TF.js' ReLU takes only max_value; a leaky
 * ReLU without cap or threshold is TF.js' LeakyReLU.
 */
function convertRelu(c: Json, layer: string, where: Where): { className: string; config: Json } {
  const slope = Number(c.negative_slope ?? 0);
  const threshold = Number(c.threshold ?? 0);
  delete c.negative_slope;
  delete c.threshold;
  if (threshold !== 0) unsupported(layer, 'ReLU', `threshold=${threshold}`, where);
  if (slope === 0) return { className: 'ReLU', config: c };
  if (c.max_value != null) unsupported(layer, 'ReLU', `negative_slope=${slope} with max_value=${String(c.max_value)}`, where);
  delete c.max_value;
  return { className: 'LeakyReLU', config: { ...c, alpha: slope } };
}

/** PruneLens runs Keras' Normalization over the channel axis with adapted (weight) statistics. */
function checkNormalization(c: Json, layer: string, where: Where): void {
  const axis = Array.isArray(c.axis) && c.axis.length === 1 ? c.axis[0] : c.axis;
  // Keras writes the channel axis as -1 or by index (EfficientNet: [3] on NHWC); the layer checks the index against its input.
  if (!Number.isInteger(axis) || (axis < 1 && axis !== -1)) unsupported(layer, 'Normalization', `normalization over axis ${JSON.stringify(c.axis)} (PruneLens runs it over the channel axis, -1)`, where);
  c.axis = axis;
  if (c.invert === true) unsupported(layer, 'Normalization', 'invert=True', where);
  if (c.mean != null || c.variance != null) unsupported(layer, 'Normalization', 'mean and variance given in the config instead of adapted', where);
}

function convertLayer(className: string, config: unknown, layer: string, where: Where): { className: string; config: Json } {
  if (!isRecord(config)) fail(`layer "${layer}" (${className}) has no config`, where);
  if (FUNCTIONAL_CLASSES.has(className) || className === 'Sequential') {
    fail(`layer "${layer}" is a nested ${className} model; PruneLens reads Keras models whose layers are all plain layers`, where,
      'Rebuild the model with the nested model\'s layers inlined (a functional model over its layers) and save again');
  }
  const options = convertClassOptions(className, config, layer, where);
  if (!knownTfjsClass(options.className)) {
    fail(`layer "${layer}" is a ${className}, a layer class TF.js layers does not have`, where, 'Replace it with supported layers in Keras and save again');
  }
  return { className: options.className, config: convertFields(options.config, layer, className, where) };
}

// ---- call graph ----

/** Keras 3 records a layer call as `{args, kwargs}` with `__keras_tensor__` references; TF.js reads `[[layer, node, tensor, kwargs], ...]`. */
function convertInboundNodes(nodes: unknown, layer: string, className: string, where: Where): unknown {
  if (!Array.isArray(nodes)) return nodes;
  return nodes.map((node, n) => {
    if (!isRecord(node)) return node; // Keras 2: already TF.js' nested lists
    const args = Array.isArray(node.args) ? node.args : [];
    if (args.length > 1) unsupported(layer, className, `a call with ${args.length} positional arguments (call ${n})`, where);
    const refs: unknown[] = [];
    const kwargs: Json = {};
    for (const [key, value] of Object.entries(isRecord(node.kwargs) ? node.kwargs : {})) {
      if (value === null) continue;
      if (isRecord(value) || Array.isArray(value)) unsupported(layer, className, `a call with the tensor argument ${key} (call ${n})`, where);
      kwargs[key] = value;
    }
    const collect = (value: unknown): void => {
      if (Array.isArray(value)) return value.forEach(collect);
      const history = isRecord(value) && value.class_name === '__keras_tensor__' && isRecord(value.config) ? value.config.keras_history : undefined;
      if (!Array.isArray(history) || history.length !== 3) unsupported(layer, className, `a call with the non-tensor argument ${JSON.stringify(value)?.slice(0, 60)} (call ${n})`, where);
      refs.push([history[0], history[1], history[2], kwargs]);
    };
    if (args.length === 1) collect(args[0]);
    return refs;
  });
}

/** Keras 3 writes a single model input or output as one `[layer, node, tensor]` instead of a list of them. */
function endpointList(value: unknown): unknown {
  if (Array.isArray(value) && typeof value[0] === 'string') return [value];
  return value;
}

function layerName(entry: Json, config: unknown, i: number): string {
  if (typeof entry.name === 'string') return entry.name;
  if (isRecord(config) && typeof config.name === 'string') return config.name;
  return `layers[${i}]`;
}

/** One entry of a model config's layer list: the entry, its class, its name and the converted layer. */
function convertEntry(entry: unknown, i: number, where: Where): { entry: Json; className: string; name: string; layer: { className: string; config: Json } } {
  if (!isRecord(entry)) fail(`model config layers[${i}] is not a layer`, where);
  const className = String(entry.class_name);
  const name = layerName(entry, entry.config, i);
  return { entry, className, name, layer: convertLayer(className, entry.config, name, where) };
}

function convertFunctional(config: Json, where: Where): ConvertedTopology {
  if (!Array.isArray(config.layers)) fail('the model config has no "layers" list', where);
  const layers: KerasLayerRef[] = [];
  const converted = config.layers.map((raw, i) => {
    const { entry, className, name, layer } = convertEntry(raw, i, where);
    layers.push({ name, className });
    return { class_name: layer.className, config: layer.config, name, inbound_nodes: convertInboundNodes(entry.inbound_nodes, name, className, where) };
  });
  return {
    topology: {
      class_name: 'Functional',
      config: { name: config.name, layers: converted, input_layers: endpointList(config.input_layers), output_layers: endpointList(config.output_layers) },
    },
    layers,
  };
}

function convertSequential(config: Json, where: Where): ConvertedTopology {
  if (!Array.isArray(config.layers)) fail('the Sequential model config has no "layers" list', where);
  const layers: KerasLayerRef[] = [];
  const converted = config.layers.map((entry, i) => {
    const { className, name, layer } = convertEntry(entry, i, where);
    // Keras 3's Sequential lists its InputLayer in the config but not in model.layers.
    if (className !== 'InputLayer') layers.push({ name, className });
    return { class_name: layer.className, config: layer.config };
  });
  // A Sequential built with build(input_shape) records the shape only on the model.
  const first = converted[0];
  if (first && first.class_name !== 'InputLayer' && first.config.batch_input_shape === undefined && Array.isArray(config.build_input_shape)) {
    first.config.batch_input_shape = config.build_input_shape;
  }
  return { topology: { class_name: 'Sequential', config: { name: config.name, layers: converted } }, layers };
}

/** Converts a Keras model config (`{class_name, config}`) to a TF.js layers topology. */
export function toTfjsTopology(modelConfig: unknown, file: string, style: KerasStyle): ConvertedTopology {
  const where = { file, style };
  if (!isRecord(modelConfig) || typeof modelConfig.class_name !== 'string' || !isRecord(modelConfig.config)) {
    fail('the model config is not a Keras model ({"class_name", "config"})', where);
  }
  const className = modelConfig.class_name;
  if (className === 'Sequential') return convertSequential(modelConfig.config, where);
  if (FUNCTIONAL_CLASSES.has(className)) return convertFunctional(modelConfig.config, where);
  return fail(`the model is a subclassed Keras model (${className}), whose layer graph the file does not describe`, where,
    'Build the model with the functional API or Sequential and save again');
}
