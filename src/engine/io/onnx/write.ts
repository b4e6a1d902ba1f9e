import type * as tf from '@tensorflow/tfjs';
import { promises as fs } from 'node:fs';
import { UserError } from '../../errors.js';
import {
  decodeModel, encodeModel, ExternalData, floatTensor, int64Tensor, sameTensorData, tensorDims, tensorValues, toNumber,
  type OnnxModel, type OnnxNode, type OnnxTensor,
} from './proto.js';
import { toOnnxLayout } from './import.js';
import type { OnnxSerialization } from './record.js';

/**
 * Writes a pruned runtime model back into the ONNX graph it came from: the same nodes, names,
 * opset and metadata, with narrowed initializers (transposed back to ONNX layout), depthwise
 * `group` attributes, shape constants and value_info widths following the pruned layers.
 * An initializer whose values did not change is left exactly as the file held it.
 */

function shortName(weight: tf.LayerVariable): string {
  return weight.originalName.slice(weight.originalName.lastIndexOf('/') + 1);
}

/** Why the pruned model cannot be written into the original graph, or undefined when it can. */
export function onnxWriteProblem(pruned: tf.LayersModel, onnx: OnnxSerialization): string | undefined {
  const names = new Set(pruned.layers.map((l) => l.name));
  const imported = new Set(onnx.layers);
  const added = pruned.layers.filter((l) => !imported.has(l.name)).map((l) => l.name);
  for (const w of onnx.weights) {
    if (!names.has(w.layer)) return `layer "${w.layer}" is gone from the pruned model`;
    if (!pruned.getLayer(w.layer).weights.some((v) => shortName(v) === w.weight)) return `layer "${w.layer}" no longer has its ${w.weight}`;
  }
  if (added.length > 0) return `the pruned model has layers the ONNX graph does not (${added.slice(0, 3).join(', ')}${added.length > 3 ? ', …' : ''})`;
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
      let name = `${source}_pruned`;
      for (let k = 1; this.names.has(name); k++) name = `${source}_pruned_${k}`;
      this.names.add(name);
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
  // Every rewritten initializer is written inline; external ones that keep their values stay external.
  const sources = new Sources(model, originalPath, external);
  for (const w of onnx.weights) {
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
    values[c.index] = lastDim(pruned.getLayer(c.layer).outputShape) * c.positions;
    sources.write(c.node, 1, c.source, int64Tensor(c.source, tensorDims(original), values));
  }
  for (const info of graph.value_info) {
    const layer = onnx.tensorLayers[info.name];
    const dims = info.type?.tensor_type?.shape?.dim;
    if (!layer || !dims || dims.length < 2 || dims[1].dim_value === undefined || toNumber(dims[1].dim_value) === 0) continue;
    dims[1].dim_value = lastDim(pruned.getLayer(layer).outputShape);
  }
  return encodeModel(model);
}
