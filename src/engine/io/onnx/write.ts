import type * as tf from '@tensorflow/tfjs';
import { promises as fs } from 'node:fs';
import { UserError } from '../../errors.js';
import {
  decodeModel, encodeModel, ExternalData, floatTensor, int64Tensor, sameTensorData, tensorDims, tensorValues, toNumber,
  type OnnxAttribute, type OnnxGraph, type OnnxModel, type OnnxNode, type OnnxTensor,
} from './proto.js';
import { toOnnxLayout } from './import.js';
import type { OnnxSerialization } from './record.js';

/**
 * Writes a pruned runtime model back into the ONNX graph it came from: the same nodes, names,
 * opset and metadata, with narrowed initializers (transposed back to ONNX layout), depthwise
 * `group` attributes, shape constants and value_info widths following the pruned layers.
 * An initializer whose values did not change keeps the file's bytes (moved inline when they were in
 * an external data file, so the written file stands alone).
 */

function shortName(weight: tf.LayerVariable): string {
  return weight.originalName.slice(weight.originalName.lastIndexOf('/') + 1);
}

/**
 * A runtime layer a method replaced by several (DSP's per-group convolutions: optional 1×1
 * selections, the group convolutions, their concatenation and an optional 1×1 scatter). The
 * replacement's layers are named after the layer they replace (`<layer>_…`) and read what it read.
 */
interface Replacement {
  /** The replaced runtime layer and the Conv node it came from. */
  layer: string;
  node: number;
  /** The new layers, in the pruned model's (topological) order; the last one gives the replaced output. */
  members: tf.layers.Layer[];
  sink: string;
}

const CONV2D = 'Conv2D';
const CONCAT = 'Concatenate';

function inboundNames(layer: tf.layers.Layer): string[] {
  return layer.inboundNodes[0]?.inboundLayers.map((l) => l.name) ?? [];
}

/** The replacements in the pruned model, or why it cannot be written into the graph. */
function findReplacements(pruned: tf.LayersModel, onnx: OnnxSerialization): { replacements: Replacement[]; problem?: string } {
  const names = new Set(pruned.layers.map((l) => l.name));
  const imported = new Set(onnx.layers);
  const missing = onnx.layers.filter((n) => !names.has(n));
  const added = pruned.layers.filter((l) => !imported.has(l.name));
  const replacements: Replacement[] = [];
  const owner = new Map<string, string>();
  for (const layer of added) {
    // The longest replaced name that prefixes it (conv1_x_g0 belongs to conv1_x, not conv1).
    const match = missing.filter((m) => layer.name.startsWith(`${m}_`)).sort((a, b) => b.length - a.length)[0];
    if (!match) return { replacements, problem: `the pruned model has a layer the ONNX graph does not (${layer.name})` };
    owner.set(layer.name, match);
  }
  for (const layer of missing) {
    const kernel = onnx.weights.find((w) => w.layer === layer && w.weight === 'kernel' && w.layout === 'conv');
    const members = added.filter((l) => owner.get(l.name) === layer);
    if (!kernel || members.length === 0) return { replacements, problem: `layer "${layer}" is gone from the pruned model` };
    const inside = new Set(members.map((m) => m.name));
    const sinks = members.filter((m) => m.outboundNodes.length === 0 || m.outboundNodes.some((n) => !inside.has(n.outboundLayer.name)));
    const outside = new Set(members.flatMap((m) => inboundNames(m).filter((n) => !inside.has(n))));
    if (sinks.length !== 1 || outside.size !== 1) return { replacements, problem: `the layers replacing "${layer}" do not read one input and give one output` };
    const odd = members.find((m) => ![CONV2D, CONCAT].includes(m.getClassName()) || (m.getConfig().activation ?? 'linear') !== 'linear');
    if (odd) return { replacements, problem: `layer "${odd.name}" (${odd.getClassName()}) has no ONNX node PruneLens writes` };
    replacements.push({ layer, node: kernel.node, members, sink: sinks[0].name });
  }
  return { replacements };
}

/** Why the pruned model cannot be written into the original graph, or undefined when it can. */
export function onnxWriteProblem(pruned: tf.LayersModel, onnx: OnnxSerialization): string | undefined {
  const { replacements, problem } = findReplacements(pruned, onnx);
  if (problem) return problem;
  const replaced = new Set(replacements.map((r) => r.layer));
  for (const w of onnx.weights) {
    if (replaced.has(w.layer)) continue;
    if (!pruned.getLayer(w.layer).weights.some((v) => shortName(v) === w.weight)) return `layer "${w.layer}" no longer has its ${w.weight}`;
  }
  return undefined;
}

/** The tensor a node input reads, wherever it is kept: an initializer or a Constant node's value. */
class Sources {
  private readonly initializers = new Map<string, number>();
  private readonly constants = new Map<string, OnnxNode>();
  /** What each source holds now, after earlier writes. */
  private readonly current = new Map<string, OnnxTensor>();
  private readonly written = new Set<string>();
  private readonly names = new Set<string>();

  constructor(private readonly model: OnnxModel, private readonly file: string, private readonly external: ExternalData) {
    const graph = model.graph!;
    graph.initializer.forEach((t, i) => {
      this.initializers.set(t.name!, i);
      this.current.set(t.name!, t);
      this.names.add(t.name!);
    });
    for (const node of graph.node) {
      for (const out of node.output) this.names.add(out);
      for (const inp of node.input) this.names.add(inp);
      const value = node.op_type === 'Constant' ? node.attribute.find((a) => a.name === 'value')?.t : undefined;
      if (value) {
        this.constants.set(node.output[0], node);
        this.current.set(node.output[0], value);
      }
    }
  }

  /** A tensor name the graph does not use yet. */
  freshName(base: string): string {
    let name = base;
    for (let k = 1; this.names.has(name); k++) name = `${base}_${k}`;
    this.names.add(name);
    return name;
  }

  original(source: string): OnnxTensor {
    const t = this.current.get(source);
    if (!t) throw new UserError(`the graph no longer holds "${source}"`, { file: this.file, fix: 'Prune the original model file, not a modified copy' });
    return t;
  }

  values(t: OnnxTensor): Float32Array | number[] {
    return tensorValues(t, this.file, this.external);
  }

  /**
   * Makes node `nodeIndex`'s input `input` read `tensor`. The source is rewritten in place unless
   * another writer already gave it different contents; then the node gets an initializer of its own.
   */
  write(nodeIndex: number, input: number, source: string, tensor: OnnxTensor): void {
    const now = this.original(source);
    if (sameTensorData(now, tensor, this.file, this.external)) {
      this.written.add(source);
      return;
    }
    const graph = this.model.graph!;
    if (this.written.has(source)) {
      const name = this.freshName(`${source}_pruned`);
      tensor.name = name;
      graph.initializer.push(tensor);
      graph.node[nodeIndex].input[input] = name;
      return;
    }
    this.written.add(source);
    this.current.set(source, tensor);
    const constant = this.constants.get(source);
    if (constant) {
      delete tensor.name;
      constant.attribute.find((a) => a.name === 'value')!.t = tensor;
      return;
    }
    tensor.name = source;
    graph.initializer[this.initializers.get(source)!] = tensor;
  }
}

function lastDim(shape: tf.Shape | tf.Shape[]): number {
  const s = (Array.isArray(shape[0]) ? shape[0] : shape) as tf.Shape;
  return s[s.length - 1] as number;
}

/** The pruned model as the bytes of an .onnx file, built from the original file at `originalPath`. */
export async function encodeOnnxModel(pruned: tf.LayersModel, onnx: OnnxSerialization, originalPath: string): Promise<Uint8Array> {
  const bytes = await fs.readFile(originalPath);
  const model = decodeModel(bytes, originalPath);
  const external = new ExternalData(originalPath, originalPath);
  await external.preload(model.graph!.initializer);
  const initializerNames = new Set(model.graph!.initializer.map((t) => t.name!));
  const sources = new Sources(model, originalPath, external);
  const { replacements } = findReplacements(pruned, onnx);
  const replacedBy = new Map(replacements.map((r) => [r.layer, r.sink]));
  // A layer a method replaced gives its output through the replacement's last layer.
  const outputLayer = (name: string) => pruned.getLayer(replacedBy.get(name) ?? name);
  for (const w of onnx.weights) {
    if (replacedBy.has(w.layer)) continue;
    const variable = pruned.getLayer(w.layer).weights.find((v) => shortName(v) === w.weight)!;
    const values = variable.read().dataSync() as Float32Array;
    const converted = toOnnxLayout(values, variable.shape as number[], w.layout, w.flattened, w.scale);
    const originalDims = tensorDims(sources.original(w.source));
    // A Gemm bias kept as [1, O] stays two-dimensional.
    const dims = w.layout === 'vector' && originalDims.length === 2 ? [1, converted.values.length] : converted.dims;
    sources.write(w.node, w.input, w.source, floatTensor(w.source, dims, converted.values));
  }
  const graph = model.graph!;
  for (const { node, layer } of onnx.depthwiseGroups) {
    const channels = (pruned.getLayer(layer).weights[0].shape as number[])[2];
    const group = graph.node[node].attribute.find((a) => a.name === 'group');
    if (group) group.i = channels;
  }
  for (const c of onnx.shapeConstants) {
    const original = sources.original(c.source);
    const values = Array.from(sources.values(original), Number);
    values[c.index] = lastDim(outputLayer(c.layer).outputShape) * c.positions;
    sources.write(c.node, 1, c.source, int64Tensor(c.source, tensorDims(original), values));
  }
  for (const info of graph.value_info) {
    const layer = onnx.tensorLayers[info.name];
    const dims = info.type?.tensor_type?.shape?.dim;
    if (!layer || !dims || dims.length < 2 || dims[1].dim_value === undefined || toNumber(dims[1].dim_value) === 0) continue;
    dims[1].dim_value = lastDim(outputLayer(layer).outputShape);
  }
  // Last, as it changes node indices: from the highest node down.
  for (const r of [...replacements].sort((a, b) => b.node - a.node)) writeReplacement(model, r, sources);
  inlineExternalData(graph, external);
  listInitializersAsInputs(graph, initializerNames);
  return encodeModel(model);
}

/** The written file goes to another folder than the original's external data files: it holds every initializer itself. */
function inlineExternalData(graph: OnnxGraph, external: ExternalData): void {
  for (const t of graph.initializer) {
    if (t.data_location !== EXTERNAL_DATA) continue;
    t.raw_data = new Uint8Array(external.bytes(t));
    t.data_location = 0;
    t.external_data = [];
  }
}

/**
 * Exporters of IR version 3 list every initializer among the graph inputs, with its shape: the
 * entries follow the written initializers (ONNX Runtime refuses a declared shape that differs),
 * initializers a writer added are listed too, and ones it dropped are no longer listed.
 */
function listInitializersAsInputs(graph: OnnxGraph, originalInitializers: ReadonlySet<string>): void {
  const byName = new Map(graph.initializer.map((t) => [t.name!, t]));
  if (!graph.input.some((i) => originalInitializers.has(i.name))) return;
  graph.input = graph.input.filter((i) => !originalInitializers.has(i.name) || byName.has(i.name));
  const listed = new Set(graph.input.map((i) => i.name));
  const shapeOf = (t: OnnxTensor) => ({ dim: tensorDims(t).map((d) => ({ dim_value: d })) });
  for (const info of graph.input) {
    const t = byName.get(info.name);
    if (t && info.type?.tensor_type?.shape) info.type.tensor_type.shape = shapeOf(t);
  }
  for (const t of graph.initializer) {
    if (!listed.has(t.name!)) graph.input.push({ name: t.name!, type: { tensor_type: { elem_type: t.data_type, shape: shapeOf(t) } } });
  }
}

/** TensorProto.DataLocation EXTERNAL. */
const EXTERNAL_DATA = 1;

function intsAttribute(name: string, values: number[]): OnnxAttribute {
  return { name, type: ATTRIBUTE_INTS, ints: values };
}

const ATTRIBUTE_INT = 2;
const ATTRIBUTE_INTS = 7;

/**
 * Replaces a Conv node by the nodes of its replacement: 1×1 convolutions for the channel
 * selections and scatter, convolutions with the node's own geometry (kernel, strides, pads,
 * dilations) for the groups, a Concat for their outputs. The last node writes the node's output
 * tensor, so everything downstream reads it as before; the node's own weights go when unused.
 */
function writeReplacement(model: OnnxModel, r: Replacement, sources: Sources): void {
  const graph = model.graph!;
  const original = graph.node[r.node];
  const [input, weightName, biasName] = original.input;
  const base = original.name || `${original.op_type}_${r.node}`;
  const suffix = (layer: tf.layers.Layer) => layer.name.slice(r.layer.length);
  const tensorOf = new Map<string, string>();
  const nodes: OnnxNode[] = [];
  const [, , kh, kw] = tensorDims(sources.original(weightName));
  const nodeStrides = original.attribute.find((a) => a.name === 'strides')?.ints?.map(toNumber) ?? [1, 1];
  for (const member of r.members) {
    const output = member.name === r.sink ? original.output[0] : sources.freshName(`${original.output[0]}${suffix(member)}`);
    tensorOf.set(member.name, output);
    const inputs = inboundNames(member).map((n) => tensorOf.get(n) ?? input);
    const name = `${base}${suffix(member)}`;
    if (member.getClassName() === CONCAT) {
      nodes.push({ name, op_type: 'Concat', input: inputs, output: [output], attribute: [{ name: 'axis', type: ATTRIBUTE_INT, i: 1 }] });
      continue;
    }
    const [kernel, bias] = member.weights;
    const shape = kernel.shape as number[];
    const converted = toOnnxLayout(kernel.read().dataSync() as Float32Array, shape, 'conv');
    const weight = sources.freshName(`${weightName}${suffix(member)}`);
    graph.initializer.push(floatTensor(weight, converted.dims, converted.values));
    const nodeInputs = [inputs[0], weight];
    if (bias) {
      const biasTensor = sources.freshName(`${biasName ?? weightName}${suffix(member)}`);
      graph.initializer.push(floatTensor(biasTensor, [shape[3]], bias.read().dataSync() as Float32Array));
      nodeInputs.push(biasTensor);
    }
    // A group convolution keeps the node's geometry; selections and the scatter are plain 1×1 convolutions.
    const strides = (member.getConfig().strides as number[] | undefined) ?? [1, 1];
    const geometry = shape[0] === kh && shape[1] === kw && strides.join() === nodeStrides.join();
    const attribute = geometry ? original.attribute.filter((a) => a.name !== 'group') : [intsAttribute('kernel_shape', [1, 1])];
    nodes.push({ name, op_type: 'Conv', input: nodeInputs, output: [output], attribute });
  }
  graph.node.splice(r.node, 1, ...nodes);
  const used = new Set(graph.node.flatMap((n) => n.input));
  graph.initializer = graph.initializer.filter((t) => used.has(t.name!) || graph.output.some((o) => o.name === t.name));
}
