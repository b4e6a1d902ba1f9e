/**
 * What writing a pruned model back as ONNX needs besides the runtime model: where each runtime
 * weight came from in the ONNX graph and in which layout, and which attributes and shape
 * constants carry channel counts. Plain data, kept apart from the runtime objects.
 */

/**
 * How a runtime weight is laid out relative to its ONNX initializer:
 * - `conv`: ONNX [O, I, kh, kw] ↔ TF.js [kh, kw, I, O]
 * - `depthwise`: ONNX [C·m, 1, kh, kw] ↔ TF.js [kh, kw, C, m]
 * - `gemm`: ONNX [O, F] (transB = 1) ↔ TF.js [F, O]
 * - `matmul`: ONNX [F, O] ↔ TF.js [F, O]
 * - `vector`: the same 1-D values (biases, batch-norm vectors); a Gemm bias may be [1, O] in ONNX.
 */
export type OnnxWeightLayout = 'conv' | 'depthwise' | 'gemm' | 'matmul' | 'vector';

export interface OnnxWeightLocation {
  /** Runtime layer and its weight's short name (`kernel`, `bias`, `gamma`, …). */
  layer: string;
  weight: string;
  /** The node (index in graph.node) and which of its inputs reads the weight. */
  node: number;
  input: number;
  /** The initializer (or Constant output) the input reads, behind any Identity nodes. */
  source: string;
  layout: OnnxWeightLayout;
  /** Gemm's alpha or beta, folded into the runtime weight (runtime = scale × ONNX). */
  scale?: number;
  /** A dense kernel after a flatten of [C, H, W]: its ONNX rows are c·H·W + s, the runtime's s·C + c. */
  flattened?: { height: number; width: number };
}

/** A Reshape whose shape constant holds a channel count (a flatten to [N, C·H·W], or [N, C] → [N, C, 1, 1]). */
export interface OnnxShapeConstant {
  node: number;
  /** The initializer or Constant output holding the shape. */
  source: string;
  /** The runtime layer whose output width sets the constant. */
  layer: string;
  /** The shape's index that holds the width (as channels × positions). */
  index: number;
  positions: number;
}

export interface OnnxSerialization {
  opset: number;
  producer: string;
  /** Depthwise Conv nodes, whose `group` attribute is the runtime layer's input channel count. */
  depthwiseGroups: { node: number; layer: string }[];
  weights: OnnxWeightLocation[];
  shapeConstants: OnnxShapeConstant[];
  /** Every runtime layer the import created; a pruned model with others cannot be written into the graph. */
  layers: string[];
  /** ONNX tensor → runtime layer whose output it is (value_info shapes follow the layer's width). */
  tensorLayers: Record<string, string>;
  /** The graph input's name; ONNX feeds it NCHW, the runtime model NHWC. */
  input: string;
  /** Graph outputs in order, with the rank of each (rank 4 is NCHW in ONNX, NHWC at run time). */
  outputs: { name: string; rank: number }[];
  /** Nodes whose op the importer does not map, kept as opaque layers (OnnxOpaque): analysis works around them, running the model fails. */
  unsupported: { node: string; opType: string }[];
}
