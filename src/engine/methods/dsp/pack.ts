import * as tf from '@tensorflow/tfjs';
import type { GroupedConvPlan } from './plan.js';
import { followingBatchNorm } from './topology.js';

/**
 * Physical realisation of DSP's intra-channel pruning with built-in TF.js layers only, so the
 * result saves and loads as an ordinary layers model.
 *
 * tfjs has no "gather channels" layer. A contiguous channel range, however, is a zero-FLOP
 * memory operation: Permute([3, 2, 1]) turns [H, W, C] into [C, W, H], where Cropping2D's
 * row cropping selects channels; Permute back restores NHWC. So each group reads its kept
 * input channels as the union of their contiguous runs (Cropping2D per run, Concatenate along
 * the channel-as-row axis), runs a Conv2D with only those input slices and only its filters,
 * and the group outputs are concatenated. The concatenation is in group order, so a second
 * permute/crop/concat puts every filter back at its original index; removed filters read rows
 * of a ZeroPadding2D, which makes them exact zero channels. Downstream layers (batch norm,
 * residual adds, consumers) therefore see the original width and order and are copied as is.
 * A 1×1 selection convolution would do the same gather but cost C_in·|S_g| multiply-adds per
 * position; zeroing weights inside a full-width kernel would save nothing. The conv's own
 * activation moves after the reordering so that removed filters stay exactly zero before it.
 */

type LayerJson = { name: string; class_name: string; config: Record<string, unknown>; inbound_nodes: unknown[] };
type TensorRef = [string, number, number, Record<string, unknown>];

/** Maximal runs [start, end) of consecutive values in an ascending list. */
export function contiguousRuns(sorted: number[]): [number, number][] {
  const runs: [number, number][] = [];
  for (const v of sorted) {
    const last = runs[runs.length - 1];
    if (last && last[1] === v) last[1] = v + 1;
    else runs.push([v, v + 1]);
  }
  return runs;
}

/** Runs [start, end) of source rows so that reading them in order yields `sources` (each source[i+1] = source[i] + 1 inside a run). */
function sourceRuns(sources: number[]): [number, number][] {
  const runs: [number, number][] = [];
  for (const s of sources) {
    const last = runs[runs.length - 1];
    if (last && last[1] === s) last[1] = s + 1;
    else runs.push([s, s + 1]);
  }
  return runs;
}

/** Layers that rebuild one conv; the last one produces the conv's replacement output. */
function packedLayers(conv: LayerJson, plan: GroupedConvPlan, inChannels: number): LayerJson[] {
  const base = conv.name;
  const layers: LayerJson[] = [];
  const node = (refs: string[]) => [refs.map((r): TensorRef => [r, 0, 0, {}])];
  const add = (name: string, className: string, config: Record<string, unknown>, inputs: string[]) => {
    layers.push({ name, class_name: className, config: { ...config, name, trainable: true }, inbound_nodes: node(inputs) });
    return name;
  };
  const inputRef = ((conv.inbound_nodes[0] as TensorRef[])[0])[0];
  const permute = (name: string, input: string) => add(name, 'Permute', { dims: [3, 2, 1] }, [input]);
  const crop = (name: string, input: string, size: number, [start, end]: [number, number]) =>
    add(name, 'Cropping2D', { cropping: [[start, size - end], [0, 0]], data_format: 'channels_last' }, [input]);

  const groups = plan.inputsOfGroup.length;
  const filtersOf: number[][] = Array.from({ length: groups }, () => []);
  plan.groupOfFilter.forEach((g, j) => {
    if (g >= 0) filtersOf[g].push(j);
  });
  const live = filtersOf.map((f, g) => g).filter((g) => filtersOf[g].length > 0);

  let transposedInput: string | undefined;
  const groupOutputs: string[] = [];
  for (const g of live) {
    const inputs = plan.inputsOfGroup[g];
    let groupInput = inputRef;
    if (inputs.length < inChannels) {
      transposedInput ??= permute(`${base}_dsp_in_t`, inputRef);
      const runs = contiguousRuns(inputs);
      const crops = runs.map((run, i) => crop(`${base}_dsp_g${g}_in${i}`, transposedInput!, inChannels, run));
      const selected = crops.length === 1 ? crops[0] : add(`${base}_dsp_g${g}_in_cat`, 'Concatenate', { axis: 1 }, crops);
      groupInput = permute(`${base}_dsp_g${g}_in`, selected);
    }
    groupOutputs.push(add(`${base}_g${g}`, 'Conv2D', { ...conv.config, filters: filtersOf[g].length, activation: 'linear' }, [groupInput]));
  }

  // Position of each original filter in the concatenation of the group outputs.
  const order = live.flatMap((g) => filtersOf[g]);
  const kept = order.length;
  const position = new Map(order.map((j, i) => [j, i]));
  const filters = plan.groupOfFilter.length;
  let out = groupOutputs.length === 1 ? groupOutputs[0] : add(`${base}_dsp_cat`, 'Concatenate', { axis: -1 }, groupOutputs);
  const identity = kept === filters && order.every((j, i) => j === i);
  if (!identity) {
    const transposed = permute(`${base}_dsp_out_t`, out);
    // Consecutive removed filters read consecutive zero rows, so each run of them is one crop.
    let longestGap = 0;
    for (let j = 0, gap = 0; j < filters; j++) {
      gap = position.has(j) ? 0 : gap + 1;
      longestGap = Math.max(longestGap, gap);
    }
    let source = transposed;
    if (longestGap > 0) source = add(`${base}_dsp_zeros`, 'ZeroPadding2D', { padding: [[0, longestGap], [0, 0]], data_format: 'channels_last' }, [transposed]);
    const rows = kept + longestGap;
    const sources: number[] = [];
    for (let j = 0, gap = 0; j < filters; j++) {
      if (position.has(j)) {
        gap = 0;
        sources.push(position.get(j)!);
      } else {
        sources.push(kept + gap);
        gap++;
      }
    }
    const crops = sourceRuns(sources).map((run, i) => crop(`${base}_dsp_out${i}`, source, rows, run));
    const restored = crops.length === 1 ? crops[0] : add(`${base}_dsp_out_cat`, 'Concatenate', { axis: 1 }, crops);
    out = permute(`${base}_dsp_out`, restored);
  }
  const activation = conv.config.activation;
  if (activation && activation !== 'linear') out = add(`${base}_dsp_act`, 'Activation', { activation }, [out]);
  return layers;
}

function replaceRefs(value: unknown, from: string, to: string): unknown {
  if (Array.isArray(value)) {
    if (value.length >= 3 && value[0] === from && typeof value[1] === 'number') return [to, ...value.slice(1)];
    return value.map((v) => replaceRefs(v, from, to));
  }
  return value;
}

/**
 * A new model in which every planned conv is replaced by per-group convolutions that read
 * only their kept input channels. Every other layer, and its weights, is copied unchanged.
 * Exact for a model whose weights were masked with `applyPlanMasks`.
 */
export async function buildPackedModel(model: tf.LayersModel, plans: GroupedConvPlan[]): Promise<tf.LayersModel> {
  const json = model.toJSON(null, false) as unknown as { class_name: string; config: { name: string; layers: LayerJson[]; output_layers: unknown[] } };
  const byLayer = new Map(plans.map((p) => [p.layer, p]));
  const layers: LayerJson[] = [];
  let outputLayers = json.config.output_layers;
  const renamed: [string, string][] = [];
  for (const layer of json.config.layers) {
    const plan = byLayer.get(layer.name);
    if (!plan) {
      layers.push(layer);
      continue;
    }
    if (layer.class_name !== 'Conv2D' || layer.inbound_nodes.length !== 1) throw new Error(`DSP can only regroup a Conv2D used once; ${layer.name} is a ${layer.class_name}`);
    const inChannels = (model.getLayer(layer.name).getWeights()[0].shape as number[])[2];
    const replacement = packedLayers(layer, plan, inChannels);
    layers.push(...replacement);
    renamed.push([layer.name, replacement[replacement.length - 1].name]);
  }
  for (const [from, to] of renamed) {
    for (const layer of layers) layer.inbound_nodes = replaceRefs(layer.inbound_nodes, from, to) as unknown[];
    outputLayers = replaceRefs(outputLayers, from, to) as unknown[];
  }
  const packedJson = { ...json, config: { ...json.config, name: `${json.config.name}_dsp`, layers, output_layers: outputLayers } };
  const packed = (await tf.models.modelFromJSON(packedJson as unknown as Parameters<typeof tf.models.modelFromJSON>[0])) as tf.LayersModel;

  for (const layer of model.layers) {
    const plan = byLayer.get(layer.name);
    if (!plan) {
      if (layer.weights.length) packed.getLayer(layer.name).setWeights(layer.getWeights());
      continue;
    }
    const [kernel, bias] = layer.getWeights();
    plan.inputsOfGroup.forEach((inputs, g) => {
      const filters = plan.groupOfFilter.map((grp, j) => (grp === g ? j : -1)).filter((j) => j >= 0);
      if (!filters.length) return;
      const weights = tf.tidy(() => {
        const k = tf.gather(tf.gather(kernel, inputs, 2), filters, 3);
        return bias ? [k, tf.gather(bias, filters)] : [k];
      });
      packed.getLayer(`${layer.name}_g${g}`).setWeights(weights);
      tf.dispose(weights);
    });
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
      const names = bn.weights.map((w) => w.originalName.split('/').pop());
      const updated = tf.tidy(() => bnWeights.map((w, i) => (names[i] === 'gamma' || names[i] === 'beta' ? tf.mul(w, tf.tensor1d(filterMask)) : w.clone())));
      bn.setWeights(updated);
      tf.dispose(updated);
    }
  }
}
