import * as tf from '@tensorflow/tfjs';
import { needsScatter, packedOrder, realiseGroups, type GroupRealisation, type GroupedConvPlan } from './plan.js';
import { channelReader, followingBatchNorm, spatialShapes, type ChannelReader } from './topology.js';
import { classNameOf, weightKind } from '../../layers/index.js';

/**
 * Physical realisation of DSP's intra-channel pruning with built-in TF.js layers only, so the
 * result saves and loads as an ordinary layers model and countCost sees every multiply-add.
 *
 * tfjs has no "gather channels" layer, and the permute/crop/concatenate way of slicing channels
 * runs as per-row copy loops on wasm (5× a dense conv at batch 32). So each group reads its
 * kept inputs through a 1×1 selection convolution when that is cheaper than reading all inputs
 * with zero kernel rows (`realiseGroups`), and the group outputs are concatenated in group order.
 * That order stays when the one layer reading the channels can be reindexed (`packedOutput`):
 * its kernel rows and the batch norms and depthwise convs on the way are gathered to match, and
 * removed filters simply vanish. Otherwise a 1×1 scatter convolution puts every filter back at its index, removed
 * ones as exact zeros, and the conv's activation moves onto it. A plan realised as one conv
 * (`realisedAsOne`) becomes a single conv over the union of its groups' inputs instead, the
 * slices its groups dropped left as zeros in the kernel.
 */

type LayerJson = { name: string; class_name: string; config: Record<string, unknown>; inbound_nodes: unknown[] };
type TensorRef = [string, number, number, Record<string, unknown>];

/** What one planned conv looks like once built. */
interface BuiltConv {
  plan: GroupedConvPlan;
  /** Original input channel at each physical input position. */
  inputOrder: number[];
  groups: GroupRealisation[];
  scatter: boolean;
}

function pairCosts(layer: tf.layers.Layer): { pairFlops: number; selectionPairFlops: number } {
  const [kh, kw] = layer.getWeights()[0].shape;
  const { input, output } = spatialShapes(layer);
  return { pairFlops: 2 * kh * kw * output[0] * output[1], selectionPairFlops: 2 * input[0] * input[1] };
}

/** The per-group convolution that replaces group `group` of a regrouped conv. */
export function groupLayerName(conv: string, group: number): string {
  return `${conv}_g${group}`;
}

const CONV2D = classNameOf('conv', 2);

/** Layers that rebuild one conv; the last one produces the conv's replacement output. */
function packedLayers(conv: LayerJson, built: BuiltConv): LayerJson[] {
  const base = conv.name;
  const layers: LayerJson[] = [];
  const add = (name: string, className: string, config: Record<string, unknown>, inputs: string[]) => {
    layers.push({ name, class_name: className, config: { ...config, name, trainable: true }, inbound_nodes: [inputs.map((r): TensorRef => [r, 0, 0, {}])] });
    return name;
  };
  const pointwise = (filters: number, activation: unknown) => ({
    ...conv.config, filters, kernel_size: [1, 1], strides: [1, 1], dilation_rate: [1, 1], padding: 'valid', use_bias: false, activation,
    kernel_regularizer: null, bias_regularizer: null, activity_regularizer: null, kernel_constraint: null, bias_constraint: null,
  });
  const inputRef = ((conv.inbound_nodes[0] as TensorRef[])[0])[0];
  const activation = conv.config.activation ?? 'linear';
  const groupOutputs = built.groups.map(({ group, filters, inputs, selection }) => {
    const groupInput = selection ? add(`${groupLayerName(base, group)}_select`, CONV2D, pointwise(inputs.length, 'linear'), [inputRef]) : inputRef;
    return add(groupLayerName(base, group), CONV2D, { ...conv.config, filters: filters.length, activation: built.scatter ? 'linear' : activation }, [groupInput]);
  });
  const out = groupOutputs.length === 1 ? groupOutputs[0] : add(`${base}_dsp_cat`, classNameOf('concat'), { axis: -1 }, groupOutputs);
  if (built.scatter) add(`${base}_dsp_scatter`, CONV2D, pointwise(built.plan.groupOfFilter.length, activation), [out]);
  return layers;
}

function replaceRefs(value: unknown, from: string, to: string): unknown {
  if (Array.isArray(value)) {
    if (value.length >= 3 && value[0] === from && typeof value[1] === 'number') return [to, ...value.slice(1)];
    return value.map((v) => replaceRefs(v, from, to));
  }
  return value;
}

function oneHot(rows: number, columns: number, entries: [number, number][]): tf.Tensor4D {
  const values = new Float32Array(rows * columns);
  for (const [r, c] of entries) values[r * columns + c] = 1;
  return tf.tensor4d(values, [1, 1, rows, columns]);
}

type ModelJson = { class_name: string; config: { name: string; layers: LayerJson[]; input_layers?: unknown[]; output_layers: unknown[] } };

function modelJson(model: tf.LayersModel): ModelJson {
  // A Sequential model's JSON lists its layers without their connections; its functional view has them.
  const functional = model instanceof tf.Sequential ? tf.model({ inputs: model.inputs, outputs: model.outputs, name: model.name }) : model;
  return functional.toJSON(null, false) as unknown as ModelJson;
}

/**
 * One planned conv's replacement alone, as `buildPackedModel` would build it, reading `width`
 * channels at the conv's input size: what the realisation choice times. Its weights stay as
 * initialised (the time does not depend on them).
 */
export async function buildRealisationProbe(model: tf.LayersModel, plan: GroupedConvPlan, width: number): Promise<tf.LayersModel> {
  const json = modelJson(model);
  const conv = json.config.layers.find((l) => l.name === plan.layer);
  if (!conv) throw new Error(`no layer ${plan.layer} to probe`);
  const layer = model.getLayer(plan.layer);
  const { pairFlops, selectionPairFlops } = pairCosts(layer);
  const [height, breadth] = spatialShapes(layer).input;
  const inputName = `${plan.layer}_probe_input`;
  const built: BuiltConv = { plan, inputOrder: [], groups: realiseGroups(plan, width, pairFlops, selectionPairFlops), scatter: needsScatter(plan) };
  const layers: LayerJson[] = [
    { name: inputName, class_name: 'InputLayer', config: { batch_input_shape: [null, height, breadth, width], dtype: 'float32', sparse: false, name: inputName }, inbound_nodes: [] },
    ...packedLayers({ ...conv, inbound_nodes: [[[inputName, 0, 0, {}]]] }, built),
  ];
  const probeJson = { ...json, config: { name: `${plan.layer}_probe`, layers, input_layers: [[inputName, 0, 0]], output_layers: [[layers[layers.length - 1].name, 0, 0]] } };
  return (await tf.models.modelFromJSON(probeJson as unknown as Parameters<typeof tf.models.modelFromJSON>[0])) as tf.LayersModel;
}

/**
 * A new model in which every planned conv is replaced by per-group convolutions that read
 * only their kept input channels. Layers reading a packed output, and the batch norms on the
 * way, get reindexed weights; every other layer is copied unchanged.
 * Exact for a model whose weights were masked with `applyPlanMasks`.
 */
export async function buildPackedModel(model: tf.LayersModel, plans: GroupedConvPlan[]): Promise<tf.LayersModel> {
  const json = modelJson(model);
  const byLayer = new Map(plans.map((p) => [p.layer, p]));
  // Packed producers: the reader's physical input order and the batch norms to reindex.
  const readOrder = new Map<string, { order: number[]; reader: ChannelReader }>();
  const channelOrder = new Map<string, number[]>();
  const depthwiseOrder = new Map<string, number[]>();
  for (const plan of plans) {
    if (!plan.packedOutput) continue;
    const reader = channelReader(model.getLayer(plan.layer));
    if (!reader) throw new Error(`${plan.layer} has no single reindexable reader, so its output cannot stay packed`);
    const order = packedOrder(plan);
    readOrder.set(reader.layer, { order, reader });
    for (const bn of reader.batchNorms) channelOrder.set(bn, order);
    for (const depthwise of reader.depthwise) depthwiseOrder.set(depthwise, order);
  }
  const builtConvs = new Map<string, BuiltConv>();
  for (const plan of plans) {
    const layer = model.getLayer(plan.layer);
    const inChannels = layer.getWeights()[0].shape[2] as number;
    const inputOrder = readOrder.get(plan.layer)?.order ?? Array.from({ length: inChannels }, (_, c) => c);
    const position = new Map(inputOrder.map((c, p) => [c, p]));
    const { pairFlops, selectionPairFlops } = pairCosts(layer);
    for (const inputs of plan.inputsOfGroup) {
      if (inputs.some((c) => !position.has(c))) throw new Error(`${plan.layer} reads a channel its producer removed`);
    }
    const groups = realiseGroups(plan, inputOrder.length, pairFlops, selectionPairFlops);
    builtConvs.set(plan.layer, { plan, inputOrder, groups, scatter: needsScatter(plan) });
  }

  const layers: LayerJson[] = [];
  let outputLayers = json.config.output_layers;
  const renamed: [string, string][] = [];
  for (const layer of json.config.layers) {
    const built = builtConvs.get(layer.name);
    if (!built) {
      layers.push(layer);
      continue;
    }
    if (layer.class_name !== CONV2D || layer.inbound_nodes.length !== 1) throw new Error(`DSP can only regroup a Conv2D used once; ${layer.name} is a ${layer.class_name}`);
    const replacement = packedLayers(layer, built);
    layers.push(...replacement);
    renamed.push([layer.name, replacement[replacement.length - 1].name]);
  }
  for (const [from, to] of renamed) {
    for (const layer of layers) layer.inbound_nodes = replaceRefs(layer.inbound_nodes, from, to) as unknown[];
    outputLayers = replaceRefs(outputLayers, from, to) as unknown[];
  }
  const packedJson = { ...json, config: { ...json.config, name: `${json.config.name}_dsp`, layers, output_layers: outputLayers } };
  const packed = (await tf.models.modelFromJSON(packedJson as unknown as Parameters<typeof tf.models.modelFromJSON>[0])) as tf.LayersModel;

  const setWeights = (name: string, weights: tf.Tensor[]) => {
    packed.getLayer(name).setWeights(weights);
    tf.dispose(weights);
  };
  for (const layer of model.layers) {
    const built = builtConvs.get(layer.name);
    const weights = layer.getWeights();
    if (built) {
      const [kernel, bias] = weights;
      const width = built.inputOrder.length;
      const position = new Map(built.inputOrder.map((c, p) => [c, p]));
      for (const { group, filters, inputs, selection } of built.groups) {
        if (selection) setWeights(`${groupLayerName(layer.name, group)}_select`, [oneHot(width, inputs.length, inputs.map((c, i) => [position.get(c)!, i]))]);
        setWeights(groupLayerName(layer.name, group), tf.tidy(() => {
          const k = tf.gather(tf.gather(kernel, selection ? inputs : built.inputOrder, 2), filters, 3);
          return bias ? [k, tf.gather(bias, filters)] : [k];
        }));
      }
      if (built.scatter) {
        const order = packedOrder(built.plan);
        setWeights(`${layer.name}_dsp_scatter`, [oneHot(order.length, built.plan.groupOfFilter.length, order.map((j, i) => [i, j]))]);
      }
      continue;
    }
    if (!weights.length) continue;
    const read = readOrder.get(layer.name);
    const order = channelOrder.get(layer.name);
    if (read) {
      const { order: inputOrder, reader } = read;
      // Unplanned reader: same weights, input rows in the producer's packed order.
      setWeights(layer.name, tf.tidy(() => {
        if (reader.kind === 'conv') return [tf.gather(weights[0], inputOrder, 2), ...weights.slice(1).map((w) => w.clone())];
        const channels = (weights[0].shape[0] as number) / reader.positions;
        const rows: number[] = [];
        for (let p = 0; p < reader.positions; p++) for (const c of inputOrder) rows.push(p * channels + c);
        return [tf.gather(weights[0], rows, 0), ...weights.slice(1).map((w) => w.clone())];
      }));
    } else if (order) {
      setWeights(layer.name, tf.tidy(() => weights.map((w) => tf.gather(w, order))));
    } else if (depthwiseOrder.has(layer.name)) {
      const channels = depthwiseOrder.get(layer.name)!;
      // Kernel [kh, kw, channels, 1] and bias [channels]: each kept channel keeps its own filter.
      setWeights(layer.name, tf.tidy(() => weights.map((w) => tf.gather(w, channels, w.rank === 4 ? 2 : 0))));
    } else {
      packed.getLayer(layer.name).setWeights(weights);
    }
  }
  return packed;
}

/**
 * Masks the model in place to what the plans keep: kernel slices of dropped (group, input)
 * pairs and removed filters become 0, so does a removed filter's bias and, when a batch norm
 * follows directly, its gamma and beta (the channel then carries exact zeros, as DSP does).
 */
export function applyPlanMasks(model: tf.LayersModel, plans: GroupedConvPlan[]): void {
  for (const plan of plans) {
    const layer = model.getLayer(plan.layer);
    const weights = layer.getWeights();
    const [kh, kw, inChannels, filters] = weights[0].shape;
    const mask = new Float32Array(inChannels * filters);
    plan.groupOfFilter.forEach((g, j) => {
      if (g < 0) return;
      for (const c of plan.inputsOfGroup[g]) mask[c * filters + j] = 1;
    });
    const filterMask = new Float32Array(plan.groupOfFilter.map((g) => (g >= 0 ? 1 : 0)));
    const masked = tf.tidy(() => {
      const out = [tf.mul(weights[0], tf.tensor4d(mask, [1, 1, inChannels, filters]))];
      if (weights[1]) out.push(tf.mul(weights[1], tf.tensor1d(filterMask)));
      return out;
    });
    void kh;
    void kw;
    layer.setWeights(masked);
    tf.dispose(masked);
    const bn = followingBatchNorm(layer);
    if (bn && filterMask.some((v) => v === 0)) {
      const bnWeights = bn.getWeights();
      const kinds = bn.weights.map((w) => weightKind(w.originalName));
      const updated = tf.tidy(() => bnWeights.map((w, i) => (kinds[i] === 'scale' || kinds[i] === 'offset' ? tf.mul(w, tf.tensor1d(filterMask)) : w.clone())));
      bn.setWeights(updated);
      tf.dispose(updated);
    }
  }
}
