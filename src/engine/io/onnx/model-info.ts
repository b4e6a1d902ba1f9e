import { extname } from 'node:path';
import { UserError } from '../../errors.js';
import { decodeModel, REEXPORT, toNumber, type OnnxValueInfo } from './proto.js';
import { readModelFile } from '../paths.js';

/**
 * An ONNX file's graph input and outputs alone, without importing the graph and without tfjs: the
 * config checks and the editor read the input shape and output units from it. ONNX feeds images
 * NCHW; the runtime model the engine builds takes them NHWC.
 */

export interface OnnxModelInfo {
  /** The graph's one input (initializers listed as inputs by older exporters left out): name and shape in ONNX order without the batch axis; null for a symbolic axis. */
  input: { name: string; shape: (number | null)[] };
  /** The same input as the runtime model takes it: [H, W, C] for a rank-4 NCHW input, else as in ONNX. */
  runtimeInputShape: (number | null)[];
  /** Graph outputs in order, shapes without the batch axis (ONNX order). */
  outputs: { name: string; shape: (number | null)[] }[];
}

export function isOnnxModelFile(path: string): boolean {
  return extname(path).toLowerCase() === '.onnx';
}

function shapeOf(info: OnnxValueInfo): (number | null)[] | undefined {
  const dims = info.type?.tensor_type?.shape?.dim;
  if (!dims) return undefined;
  return dims.slice(1).map((d) => (d.dim_value !== undefined && toNumber(d.dim_value) > 0 ? toNumber(d.dim_value) : null));
}

/** Reads `modelPath`'s graph input and outputs; a file that is not an ONNX model fails in one line (UserError). */
export async function readOnnxModelInfo(modelPath: string): Promise<OnnxModelInfo> {
  const bytes = await readModelFile(modelPath, REEXPORT);
  const graph = decodeModel(bytes, modelPath).graph!;
  const initializers = new Set(graph.initializer.map((t) => t.name));
  const inputs = graph.input.filter((i) => !initializers.has(i.name));
  if (inputs.length !== 1) {
    throw new UserError(`the graph has ${inputs.length} inputs (${inputs.map((i) => i.name).join(', ')}); PruneLens prunes models with one image or feature input`, { file: modelPath, fix: 'Export the model with a single input tensor' });
  }
  const shape = shapeOf(inputs[0]);
  if (!shape) throw new UserError(`input "${inputs[0].name}" has no shape`, { file: modelPath, fix: 'Export the model with its input shape (torch.onnx.export records it)' });
  return {
    input: { name: inputs[0].name, shape },
    runtimeInputShape: shape.length === 3 ? [shape[1], shape[2], shape[0]] : shape,
    outputs: graph.output.map((o) => ({ name: o.name, shape: shapeOf(o) ?? [] })),
  };
}
