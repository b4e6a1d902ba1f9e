import type { ChannelTensor, ChannelWiring, LayerCall, LayerOp, LayerSpec } from './types.js';

/**
 * The layer registry: one entry per tf.layers class the engine knows. Each entry says how the
 * layer moves channels (its channel rule), which weight axes carry its output and input channels,
 * the config field that holds its width, and its FLOPs. A class that is not here blocks the
 * channels it touches. To add a layer type: one entry here and one hazard test
 * (test/engine/graph-<layer>.test.ts).
 */

/** Product of the spatial dimensions (all but batch and channels); unknown sizes count as 1. */
export function spatialPositions(shape: readonly (number | null)[] | undefined): number {
  let p = 1;
  if (shape) for (let i = 1; i < shape.length - 1; i++) p *= shape[i] ?? 1;
  return p;
}

/** FLOPs per kernel element of a convolution or dense layer applied at `shape`'s positions. */
export function kernelElementFlops(shape: readonly (number | null)[] | undefined): number {
  return 2 * spatialPositions(shape);
}

export function unsupportedReason(name: string, className: string): string {
  return `${name} (${className}) is not supported, so the channels it touches are kept`;
}

function softmaxReason(call: LayerCall): string {
  return `${call.name} (${call.className}) applies softmax across channels, so its channels cannot be removed`;
}

function blockCall(call: LayerCall, wiring: ChannelWiring, reason: string): void {
  for (const t of call.inputs) wiring.block(t, reason);
  for (const t of call.outputs) wiring.block(t, reason);
}

/** Ties channel c of `from` to channel c of `to`; false when their widths differ. */
function passThrough(wiring: ChannelWiring, from: ChannelTensor, to: ChannelTensor): boolean {
  if (from.channels !== to.channels || from.channels === 0) return false;
  for (let c = 0; c < from.channels; c++) wiring.tie(from, c, to, c);
  return true;
}

/** Activations that map 0 to 0 (`hardSilu`: Keras 3's hard_silu as io/keras registers it). */
const ZERO_PRESERVING_ACTIVATIONS = new Set(['linear', 'relu', 'relu6', 'elu', 'selu', 'tanh', 'swish', 'gelu', 'hardSilu']);

export function activationPreservesZero(activation: string): boolean {
  return ZERO_PRESERVING_ACTIVATIONS.has(activation);
}

const configuredActivation = (config: Record<string, unknown>) => (typeof config.activation === 'string' ? config.activation : 'linear');
const always = () => true;
const never = () => false;

function channelAxis(config: Record<string, unknown>, rank: number): boolean {
  const axis = Number(config.axis ?? -1);
  return axis === -1 || axis === rank - 1;
}

// ---- channel rules ----

/** A conv or dense kernel: input channels on one axis, output channels (filters, units) on another, plus the bias. */
function wireKernel(output: number, input: number) {
  return (call: LayerCall, wiring: ChannelWiring): void => {
    const kernel = call.weights.get('kernel');
    if (!kernel || call.inputs.length !== 1) return blockCall(call, wiring, unsupportedReason(call.name, call.className));
    const [x] = call.inputs;
    const [y] = call.outputs;
    const rank = kernel.shape.length;
    for (let c = 0; c < x.channels; c++) wiring.slice(x, c, 'kernel', rank + input, 'consumer', c);
    for (let o = 0; o < y.channels; o++) {
      wiring.slice(y, o, 'kernel', rank + output, 'producer', o);
      if (call.weights.has('bias')) wiring.slice(y, o, 'bias', 0, 'producer', o);
    }
    if (call.config.activation === 'softmax') wiring.block(y, softmaxReason(call));
  };
}

/** Depthwise kernel [.., in, m] then pointwise kernel [.., in·m, out]. */
function wireSeparable(call: LayerCall, wiring: ChannelWiring): void {
  const dw = call.weights.get('depthwise_kernel');
  const pw = call.weights.get('pointwise_kernel');
  if (!dw || !pw || call.inputs.length !== 1) return blockCall(call, wiring, unsupportedReason(call.name, call.className));
  const [x] = call.inputs;
  const [y] = call.outputs;
  const m = dw.shape[dw.shape.length - 1] as number;
  for (let c = 0; c < x.channels; c++) {
    wiring.slice(x, c, 'depthwise_kernel', dw.shape.length - 2, 'consumer', c);
    for (let j = 0; j < m; j++) wiring.slice(x, c, 'pointwise_kernel', pw.shape.length - 2, 'consumer', c * m + j);
  }
  for (let o = 0; o < y.channels; o++) {
    wiring.slice(y, o, 'pointwise_kernel', pw.shape.length - 1, 'producer', o);
    if (call.weights.has('bias')) wiring.slice(y, o, 'bias', 0, 'producer', o);
  }
  if (call.config.activation === 'softmax') wiring.block(y, softmaxReason(call));
}

/** Depthwise kernel [kh, kw, in, m]: input channel c becomes output channels c·m … c·m+m−1. */
function wireDepthwise(call: LayerCall, wiring: ChannelWiring): void {
  const dw = call.weights.get('depthwise_kernel');
  if (!dw) return blockCall(call, wiring, unsupportedReason(call.name, call.className));
  const [x] = call.inputs;
  const [y] = call.outputs;
  const m = dw.shape[3] as number;
  if (y.channels !== x.channels * m) return blockCall(call, wiring, unsupportedReason(call.name, call.className));
  for (let c = 0; c < x.channels; c++) {
    wiring.slice(x, c, 'depthwise_kernel', 2, 'depthwise', c);
    for (let j = 0; j < m; j++) {
      wiring.tie(x, c, y, c * m + j);
      if (call.weights.has('bias')) wiring.slice(y, c * m + j, 'bias', 0, 'depthwise', c * m + j);
    }
  }
  if (call.config.activation === 'softmax') wiring.block(y, softmaxReason(call));
}

const BATCH_NORM_VECTORS = ['gamma', 'beta', 'moving_mean', 'moving_variance'];

function wireBatchNorm(call: LayerCall, wiring: ChannelWiring): void {
  const [x] = call.inputs;
  const [y] = call.outputs;
  if (!channelAxis(call.config, y.shape.length)) {
    return blockCall(call, wiring, `${call.name} (${call.className}) normalizes axis ${Number(call.config.axis ?? -1)}, not the channel axis`);
  }
  if (!passThrough(wiring, x, y)) return blockCall(call, wiring, unsupportedReason(call.name, call.className));
  for (const name of BATCH_NORM_VECTORS) {
    if (!call.weights.has(name)) continue;
    for (let c = 0; c < y.channels; c++) wiring.slice(y, c, name, 0, 'norm', c);
  }
}

/** Keras' Normalization: its adapted per-channel mean and variance are sliced with the channel. */
function wireNormalization(call: LayerCall, wiring: ChannelWiring): void {
  const [x] = call.inputs;
  const [y] = call.outputs;
  if (!channelAxis(call.config, y.shape.length)) {
    return blockCall(call, wiring, `${call.name} (${call.className}) normalizes axis ${Number(call.config.axis ?? -1)}, not the channel axis`);
  }
  if (call.inputs.length !== 1 || !passThrough(wiring, x, y)) return blockCall(call, wiring, unsupportedReason(call.name, call.className));
  for (const name of ['mean', 'variance']) {
    const w = call.weights.get(name);
    if (w?.shape.length !== 1 || w.shape[0] !== y.channels) return blockCall(call, wiring, unsupportedReason(call.name, call.className));
  }
  for (const name of ['mean', 'variance']) for (let c = 0; c < y.channels; c++) wiring.slice(y, c, name, 0, 'norm', c);
}

function wirePrelu(call: LayerCall, wiring: ChannelWiring): void {
  const [x] = call.inputs;
  const [y] = call.outputs;
  if (!passThrough(wiring, x, y)) return blockCall(call, wiring, unsupportedReason(call.name, call.className));
  const alpha = call.weights.get('alpha');
  // A per-channel alpha is a member; an alpha shared across channels is not.
  if (alpha && alpha.shape[alpha.shape.length - 1] === y.channels && y.channels > 1) {
    for (let c = 0; c < y.channels; c++) wiring.slice(y, c, 'alpha', alpha.shape.length - 1, 'norm', c);
  }
}

/** Activation and Softmax layers: channel-wise unless they take a softmax across channels. */
function wireActivation(call: LayerCall, wiring: ChannelWiring): void {
  const spec = layerSpec(call.className);
  if (spec?.keepsChannels && !spec.keepsChannels(call.config, call.outputs[0].shape.length)) return blockCall(call, wiring, softmaxReason(call));
  if (!passThrough(wiring, call.inputs[0], call.outputs[0])) blockCall(call, wiring, unsupportedReason(call.name, call.className));
}

function wireChannelwise(call: LayerCall, wiring: ChannelWiring): void {
  if (call.inputs.length !== 1 || !passThrough(wiring, call.inputs[0], call.outputs[0])) blockCall(call, wiring, unsupportedReason(call.name, call.className));
}

function wireMerge(call: LayerCall, wiring: ChannelWiring): void {
  const [y] = call.outputs;
  if (call.inputs.some((t) => t.channels !== y.channels)) {
    return blockCall(call, wiring, `${call.name} (${call.className}) broadcasts inputs of different widths`);
  }
  for (const t of call.inputs) passThrough(wiring, t, y);
}

function wireConcat(call: LayerCall, wiring: ChannelWiring): void {
  const [y] = call.outputs;
  if (channelAxis(call.config, y.shape.length)) {
    if (call.inputs.length > 1) wiring.couple(y);
    let offset = 0;
    for (const t of call.inputs) {
      for (let c = 0; c < t.channels; c++) wiring.tie(t, c, y, offset + c);
      offset += t.channels;
    }
    if (offset !== y.channels) blockCall(call, wiring, unsupportedReason(call.name, call.className));
  } else {
    for (const t of call.inputs) if (!passThrough(wiring, t, y)) return blockCall(call, wiring, unsupportedReason(call.name, call.className));
  }
}

function wireFlatten(call: LayerCall, wiring: ChannelWiring): void {
  const [x] = call.inputs;
  const [y] = call.outputs;
  const c = x.channels;
  if (y.channels % c !== 0) return blockCall(call, wiring, unsupportedReason(call.name, call.className));
  // NHWC flatten: feature f comes from channel f mod C.
  for (let f = 0; f < y.channels; f++) wiring.tie(x, f % c, y, f);
}

/** Whether every axis but batch and channels has size 1 (a squeezed or pooled tensor). */
function onlyUnitPositions(shape: readonly (number | null)[]): boolean {
  return shape.slice(1, -1).every((d) => d === 1);
}

/** A reshape that only adds or drops unit axes before the channel axis ((C) → (1, 1, C), as squeeze-and-excite does) keeps channel c as channel c. */
function wireReshape(call: LayerCall, wiring: ChannelWiring): void {
  const [x] = call.inputs;
  const [y] = call.outputs;
  if (call.inputs.length === 1 && onlyUnitPositions(x.shape) && onlyUnitPositions(y.shape) && passThrough(wiring, x, y)) return;
  // Any other reshape moves values between channels and positions.
  blockCall(call, wiring, unsupportedReason(call.name, call.className));
}

const reshapeTarget = (config: Record<string, unknown>): number[] | undefined => {
  const target = config.targetShape ?? config.target_shape;
  return Array.isArray(target) ? (target as number[]) : undefined;
};

/** An ONNX node imported without its computation (io/onnx's OnnxOpaque): the reason names the node and its op type. */
function wireOpaque(call: LayerCall, wiring: ChannelWiring): void {
  const named = (value: unknown) => (value as { name?: string } | undefined)?.name;
  const node = named(call.config.node) ?? call.name;
  const opType = named(call.config.op_type ?? call.config.opType) ?? 'an unknown op';
  blockCall(call, wiring, `node "${node}" (${opType}) is not supported, so the channels it touches are kept`);
}

function wireBlocked(call: LayerCall, wiring: ChannelWiring): void {
  blockCall(call, wiring, unsupportedReason(call.name, call.className));
}

// ---- FLOPs rules ----

/** Every kernel element is applied once per output position. */
const perOutputPosition = (...weights: string[]): LayerSpec['flops'] => (call) => {
  const factor = kernelElementFlops(call.outputs[0]?.shape);
  return weights.map((w) => [w, factor]);
};

/** A transposed conv applies every kernel element once per input position. */
const perInputPosition = (weight: string): LayerSpec['flops'] => (call) =>
  (call.inputs[0] ? [[weight, kernelElementFlops(call.inputs[0].shape)]] : []);

// ---- entries ----

function conv(className: string, spatialRank: number): LayerSpec {
  return {
    className, op: 'conv', spatialRank, role: 'producer',
    outputChannels: { weight: 'kernel', axis: -1 }, inputChannels: { weight: 'kernel', axis: -2 }, widthField: 'filters',
    flops: perOutputPosition('kernel'), wire: wireKernel(-1, -2), activation: configuredActivation,
  };
}

function separableConv(className: string, spatialRank: number): LayerSpec {
  return {
    className, op: 'separable-conv', spatialRank, role: 'producer',
    outputChannels: { weight: 'pointwise_kernel', axis: -1 }, inputChannels: { weight: 'depthwise_kernel', axis: -2 }, widthField: 'filters',
    flops: perOutputPosition('depthwise_kernel', 'pointwise_kernel'), wire: wireSeparable, activation: configuredActivation,
  };
}

/** A transposed conv's kernel holds output channels before input channels: [.., out, in]. */
function transposedConv(className: string, spatialRank: number): LayerSpec {
  return {
    className, op: 'transposed-conv', spatialRank, role: 'producer',
    outputChannels: { weight: 'kernel', axis: -2 }, inputChannels: { weight: 'kernel', axis: -1 }, widthField: 'filters',
    flops: perInputPosition('kernel'), wire: wireKernel(-2, -1), activation: configuredActivation,
  };
}

function channelwise(className: string, op: LayerOp, extra: Partial<LayerSpec> = {}): LayerSpec {
  return { className, op, role: 'channelwise', wire: wireChannelwise, keepsChannels: always, zeroPreserving: always, ...extra };
}

function merge(className: string, op: LayerOp): LayerSpec {
  return { className, op, role: 'merge', wire: wireMerge };
}

function blocked(className: string, op: LayerOp, because: string): LayerSpec {
  return { className, op, role: 'blocked', blockedBecause: because, wire: wireBlocked };
}

const ENTRIES: LayerSpec[] = [
  { className: 'InputLayer', op: 'input', role: 'input', wire: (call, wiring) => { for (const t of call.outputs) wiring.block(t, 'model input'); } },

  conv('Conv1D', 1), conv('Conv2D', 2), conv('Conv3D', 3),
  {
    className: 'Dense', op: 'dense', role: 'producer',
    outputChannels: { weight: 'kernel', axis: -1 }, inputChannels: { weight: 'kernel', axis: -2 }, widthField: 'units',
    flops: perOutputPosition('kernel'), wire: wireKernel(-1, -2), activation: configuredActivation,
  },
  separableConv('SeparableConv1D', 1), separableConv('SeparableConv2D', 2),
  {
    className: 'DepthwiseConv2D', op: 'depthwise-conv', spatialRank: 2, role: 'depthwise',
    outputChannels: { weight: 'depthwise_kernel', axis: -2, times: { weight: 'depthwise_kernel', axis: -1 } }, inputChannels: { weight: 'depthwise_kernel', axis: -2 },
    flops: perOutputPosition('depthwise_kernel'), wire: wireDepthwise, activation: configuredActivation,
  },
  transposedConv('Conv2DTranspose', 2),
  {
    className: 'Conv3DTranspose', op: 'transposed-conv', spatialRank: 3, role: 'blocked', blockedBecause: 'no hazard test covers it yet',
    flops: perInputPosition('kernel'), wire: wireBlocked, activation: configuredActivation,
  },

  {
    className: 'BatchNormalization', op: 'batch-norm', role: 'channelwise', wire: wireBatchNorm,
    keepsChannels: channelAxis, zeroPreserving: never,
  },
  // Keras' Normalization (registered by io/keras): (x − mean) / √variance per channel, so a zero channel comes out −mean/std.
  {
    className: 'Normalization', op: 'preprocessing', role: 'channelwise', wire: wireNormalization,
    keepsChannels: channelAxis, zeroPreserving: never,
  },
  channelwise('PReLU', 'prelu', { wire: wirePrelu, activation: () => 'prelu' }),
  channelwise('Activation', 'activation', {
    wire: wireActivation, keepsChannels: (c) => c.activation !== 'softmax', zeroPreserving: (c) => activationPreservesZero(configuredActivation(c)), activation: configuredActivation,
  }),
  // tfjs' Softmax layer takes axis 1 by default, not the channel axis.
  channelwise('Softmax', 'softmax', { wire: wireActivation, keepsChannels: (c, rank) => !channelAxis(c, rank), zeroPreserving: never, activation: () => 'softmax' }),
  channelwise('ReLU', 'relu', { activation: (c) => (c.maxValue == null ? 'relu' : c.maxValue === 6 ? 'relu6' : 'clipped_relu') }),
  channelwise('LeakyReLU', 'elementwise-activation', { activation: () => 'leaky_relu' }),
  channelwise('ELU', 'elementwise-activation', { activation: () => 'elu' }),
  channelwise('ThresholdedReLU', 'elementwise-activation', { activation: () => 'thresholded_relu' }),

  channelwise('Dropout', 'dropout'), channelwise('SpatialDropout1D', 'dropout', { spatialRank: 1 }), channelwise('SpatialDropout2D', 'dropout', { spatialRank: 2 }),
  channelwise('GaussianDropout', 'dropout'),
  channelwise('AlphaDropout', 'dropout', { zeroPreserving: never }),
  channelwise('GaussianNoise', 'noise', { zeroPreserving: never }),

  channelwise('MaxPooling1D', 'pooling', { spatialRank: 1 }), channelwise('MaxPooling2D', 'pooling', { spatialRank: 2 }), channelwise('MaxPooling3D', 'pooling', { spatialRank: 3 }),
  channelwise('AveragePooling1D', 'pooling', { spatialRank: 1 }), channelwise('AveragePooling2D', 'pooling', { spatialRank: 2 }), channelwise('AveragePooling3D', 'pooling', { spatialRank: 3 }),
  channelwise('GlobalAveragePooling1D', 'global-pooling', { spatialRank: 1 }), channelwise('GlobalAveragePooling2D', 'global-pooling', { spatialRank: 2 }),
  channelwise('GlobalMaxPooling1D', 'global-pooling', { spatialRank: 1 }), channelwise('GlobalMaxPooling2D', 'global-pooling', { spatialRank: 2 }),
  channelwise('ZeroPadding1D', 'padding', { spatialRank: 1 }), channelwise('ZeroPadding2D', 'padding', { spatialRank: 2 }),
  channelwise('Cropping1D', 'cropping', { spatialRank: 1 }), channelwise('Cropping2D', 'cropping', { spatialRank: 2 }),
  channelwise('UpSampling1D', 'upsampling', { spatialRank: 1 }), channelwise('UpSampling2D', 'upsampling', { spatialRank: 2 }),
  // ONNX pooling with explicit pads, ceil_mode or count_include_pad 0 (registered by io/onnx): max pads with −∞, so a zero channel stays zero.
  channelwise('OnnxPool2D', 'pooling', { spatialRank: 2 }),
  channelwise('Rescaling', 'preprocessing', { zeroPreserving: (c) => !c.offset }),
  channelwise('CenterCrop', 'preprocessing'), channelwise('Resizing', 'preprocessing'),

  merge('Add', 'add'), merge('Subtract', 'subtract'), merge('Multiply', 'multiply'),
  merge('Average', 'average'), merge('Maximum', 'maximum'), merge('Minimum', 'minimum'),
  { className: 'Concatenate', op: 'concat', role: 'concat', wire: wireConcat },
  { className: 'Flatten', op: 'flatten', role: 'flatten', wire: wireFlatten },

  {
    ...blocked('LayerNormalization', 'layer-norm', 'normalises across channels: every output channel depends on all input channels'),
    wire: (call, wiring) => blockCall(call, wiring, `${call.name} (${call.className}) normalises across channels (every output channel depends on all input channels), so the channels it touches are kept`),
  },
  channelwise('Reshape', 'reshape', {
    wire: wireReshape,
    // Its config alone cannot show that only unit axes change (the wiring checks the tensors).
    keepsChannels: never,
    narrowConfig: (c, channels) => {
      const target = reshapeTarget(c);
      return target ? { ...c, targetShape: [...target.slice(0, -1), channels] } : c;
    },
  }),
  blocked('Permute', 'reshape', 'moves the channel axis'),
  // An ONNX node PruneLens cannot compute, kept in the graph so analysis works around it (registered by io/onnx).
  { ...blocked('OnnxOpaque', 'opaque', 'its ONNX op is not supported'), wire: wireOpaque },
  blocked('Embedding', 'embedding', 'its output channels are table columns read by index'),
  blocked('LSTM', 'recurrent', 'its gates mix every unit'),
  blocked('GRU', 'recurrent', 'its gates mix every unit'),
  blocked('SimpleRNN', 'recurrent', 'its recurrence mixes every unit'),
];

const BY_CLASS = new Map(ENTRIES.map((spec) => [spec.className, spec]));

/** The entry of a layer class, or undefined (unknown classes block their channels). */
export function layerSpec(className: string): LayerSpec | undefined {
  return BY_CLASS.get(className);
}

/** Every entry, in registry order. */
export function layerSpecs(): readonly LayerSpec[] {
  return ENTRIES;
}

/** The element-wise activation a layer of this class ends with: its entry's rule, else the config's `activation` ('linear' when none). */
export function activationOf(className: string, config: Record<string, unknown>): string {
  return layerSpec(className)?.activation?.(config) ?? configuredActivation(config);
}

/** The one class of a family (and spatial rank), to build or patch a layer of that kind. */
export function classNameOf(op: LayerOp, spatialRank?: number): string {
  const found = ENTRIES.filter((s) => s.op === op && (spatialRank === undefined || s.spatialRank === spatialRank));
  if (found.length !== 1) throw new Error(`the layer registry has ${found.length} classes of ${op}${spatialRank ? ` in ${spatialRank}-D` : ''}`);
  return found[0].className;
}
