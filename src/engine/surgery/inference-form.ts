import * as tf from '@tensorflow/tfjs';
import '../io/serialization-fixes.js';
import { appliedActivation, layerSpec, layerWeights, resolveAxis, weightShortName } from '../layers/index.js';

/**
 * The inference form of a model, as deployment runtimes (TFLite, ONNX Runtime, TensorRT) run it:
 * every batch norm that follows a conv or dense layer alone is folded into that layer's kernel and
 * bias, and a ReLU that follows such a layer alone becomes the layer's own activation (TF.js runs
 * Conv2D and Dense with their bias and ReLU in one fused kernel). The outputs at inference are
 * unchanged up to float rounding; the model loses what training needs (batch statistics), so it is
 * written only where asked for. Pruning narrows convolutions, not the per-element passes of batch
 * norms and activations, so folding is what lets the time fall with the FLOPs.
 */

interface LayerEntry {
  name: string;
  className: string;
  config: Record<string, unknown> & { name: string };
  /** Functional models: [[[layer, node, tensor, kwargs], …], …]; absent in Sequential models. */
  inboundNodes?: [string, number, number, Record<string, unknown>?][][];
}

interface ModelConfig {
  name: string;
  layers: LayerEntry[];
  inputLayers?: [string, number, number][];
  outputLayers?: [string, number, number][];
}

/** Activations TF.js layers accept by name; `relu` (and `linear`) also run fused in Conv2D and Dense. */
const FUSABLE_ACTIVATIONS = new Set(['relu', 'relu6']);

export interface InferenceForm {
  model: tf.LayersModel;
  /** Batch norms folded, as "bn → conv". */
  folded: string[];
  /** Activation layers that became their producer's activation, as "relu → conv". */
  fused: string[];
}

/**
 * Returns a new model in inference form (the input model is not touched). Layers that are shared,
 * feed more than one layer, or are model outputs are left as they are (outputs keep their names).
 */
export function toInferenceForm(model: tf.LayersModel): InferenceForm {
  const config = model.getConfig() as unknown as ModelConfig;
  const sequential = !config.layers.some((l) => l.inboundNodes);
  const byName = new Map(model.layers.map((l) => [l.name, l]));
  const entries = config.layers;
  const removed = new Set<string>();
  const live = () => entries.filter((e) => !removed.has(e.config.name));
  /** The layers that read `name`'s output (by entry index), and whether it is a model output. */
  const consumersOf = (name: string): LayerEntry[] => {
    const layers = live();
    if (sequential) {
      const i = layers.findIndex((e) => e.config.name === name);
      return i >= 0 && i + 1 < layers.length ? [layers[i + 1]] : [];
    }
    return layers.filter((e) => e.inboundNodes?.some((node) => node.some(([from]) => from === name)));
  };
  const isOutput = (name: string) => (sequential ? live().at(-1)?.config.name === name : config.outputLayers?.some(([n]) => n === name) ?? false);
  /** The single layer feeding `entry` through a single call, or undefined. */
  const soleProducer = (entry: LayerEntry): LayerEntry | undefined => {
    if (sequential) {
      const layers = live();
      const i = layers.indexOf(entry);
      return i > 0 ? layers[i - 1] : undefined;
    }
    if (entry.inboundNodes?.length !== 1 || entry.inboundNodes[0].length !== 1) return undefined;
    const [from, node] = entry.inboundNodes[0][0];
    const producer = entries.find((e) => e.config.name === from);
    return producer && node === 0 && producer.inboundNodes?.length === 1 ? producer : undefined;
  };
  const foldable = (producer: LayerEntry | undefined, follower: LayerEntry): producer is LayerEntry => {
    if (!producer) return false;
    const spec = layerSpec(producer.className);
    if (!spec?.outputChannels || (spec.role !== 'producer' && spec.role !== 'depthwise')) return false;
    // A model output keeps its layer (and so its name).
    if (isOutput(producer.config.name) || isOutput(follower.config.name)) return false;
    const consumers = consumersOf(producer.config.name);
    return consumers.length === 1 && consumers[0] === follower && (producer.config.activation ?? 'linear') === 'linear';
  };
  /** New weights by layer, replacing the source model's. */
  const replaced = new Map<string, Map<string, tf.Tensor>>();
  const folded: string[] = [];
  const fused: string[] = [];

  try {
    for (const entry of entries) {
      if (entry.className !== 'BatchNormalization') continue;
      const producer = soleProducer(entry);
      if (!foldable(producer, entry)) continue;
      const layer = byName.get(producer.config.name)!;
      // Keras 2 saves the channel axis as an index ([3] or 3 for NHWC), Keras 3 and TF.js as -1.
      const rank = (layer.outputShape as (number | null)[]).length;
      const axes = [entry.config.axis ?? -1].flat().map(Number);
      if (axes.length !== 1 || (axes[0] !== -1 && axes[0] !== rank - 1)) continue;
      const spec = layerSpec(producer.className)!;
      const weights = replaced.get(producer.config.name) ?? new Map([...layerWeights(layer)].map(([k, v]) => [k, v.read()]));
      const kernel = weights.get(spec.outputChannels!.weight);
      if (!kernel) continue;
      const bn = layerWeights(byName.get(entry.config.name)!);
      const epsilon = Number(entry.config.epsilon ?? 1e-3);
      const folding = tf.tidy(() => {
        const variance = bn.get('moving_variance')!.read();
        const mean = bn.get('moving_mean')!.read();
        const gamma = bn.get('gamma')?.read() ?? tf.onesLike(mean);
        const beta = bn.get('beta')?.read() ?? tf.zerosLike(mean);
        const scale = tf.mul(gamma, tf.rsqrt(tf.add(variance, epsilon)));
        // The output channel index runs along one kernel axis (depthwise: input channel × multiplier, the last two axes).
        const out = resolveAxis(spec.outputChannels!, kernel.rank).axis;
        const span = spec.outputChannels!.times ? 2 : 1;
        const shape = kernel.shape.map((d, i) => (i < out || i >= out + span ? 1 : d));
        const scaledKernel = tf.mul(kernel, tf.reshape(scale, shape));
        const bias = weights.get('bias') ?? tf.zerosLike(mean);
        const newBias = tf.add(tf.mul(tf.sub(bias, mean), scale), beta);
        return { kernel: scaledKernel, bias: newBias };
      });
      weights.set(spec.outputChannels!.weight, folding.kernel);
      weights.set('bias', folding.bias);
      replaced.set(producer.config.name, weights);
      producer.config = { ...producer.config, useBias: true };
      removed.add(entry.config.name);
      folded.push(`${entry.config.name} → ${producer.config.name}`);
      bypass(entry, producer);
    }
    for (const entry of entries) {
      if (removed.has(entry.config.name)) continue;
      const spec = layerSpec(entry.className);
      if (spec?.op !== 'relu' && spec?.op !== 'activation') continue;
      if (entry.className === 'ReLU' && (Number(entry.config.negativeSlope ?? 0) !== 0 || Number(entry.config.threshold ?? 0) !== 0)) continue;
      const activation = appliedActivation(byName.get(entry.config.name)!);
      const producer = soleProducer(entry);
      if (!FUSABLE_ACTIVATIONS.has(activation) || !foldable(producer, entry) || !('activation' in producer.config)) continue;
      producer.config = { ...producer.config, activation };
      removed.add(entry.config.name);
      fused.push(`${entry.config.name} → ${producer.config.name}`);
      bypass(entry, producer);
    }
  } catch (err) {
    disposeReplaced();
    throw err;
  }

  /** The folded kernels and biases (never the source model's own variables, which `replaced` also holds). */
  function disposeReplaced(): void {
    for (const [name, weights] of replaced) {
      const original = layerWeights(byName.get(name)!);
      for (const [w, t] of weights) if (original.get(w)?.read() !== t) t.dispose();
    }
  }

  /** Readers of `entry` read `producer` instead; `entry` leaves the model. */
  function bypass(entry: LayerEntry, producer: LayerEntry): void {
    const gone = entry.config.name;
    const to = producer.config.name;
    for (const e of entries) {
      if (!e.inboundNodes) continue;
      e.inboundNodes = e.inboundNodes.map((node) => node.map(([from, n, t, kw]) => (from === gone ? [to, n, t, kw] : [from, n, t, kw])));
    }
    if (config.outputLayers) config.outputLayers = config.outputLayers.map(([n, a, b]) => (n === gone ? [to, a, b] : [n, a, b]));
  }

  config.layers = live();
  const modelClass = model.constructor as unknown as typeof tf.LayersModel;
  const result = modelClass.fromConfig(modelClass, config as unknown as tf.serialization.ConfigDict, {}, true) as tf.LayersModel;
  try {
    for (const layer of result.layers) {
      const own = replaced.get(layer.name);
      const source = own ? undefined : layerWeights(byName.get(layer.name)!);
      for (const target of layer.weights) {
        const name = weightShortName(target);
        const value = own?.get(name) ?? source?.get(name)?.read();
        if (!value) throw new Error(`Weight ${layer.name}/${name} is missing from the source model`);
        // A write shares the value's buffer: a copy, so the source model's disposal does not reach the result.
        const copy = tf.clone(value);
        target.write(copy);
        copy.dispose();
      }
    }
  } catch (err) {
    result.dispose();
    throw err;
  } finally {
    disposeReplaced();
  }
  return { model: result, folded, fused };
}
