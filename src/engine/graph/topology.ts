import type * as tf from '@tensorflow/tfjs';

/**
 * A read-only view of a tf.LayersModel's call graph: every node (one call of a layer) in
 * topological order with its input and output tensors. Reused layers give several nodes.
 * Built from the runtime model (`inboundNodes`), so it works for Functional and Sequential models.
 */

export interface TopoTensor {
  /** Index in Topology.tensors; tensors are numbered in topological order. */
  id: number;
  /** The layer that produced it and the node (call) of that layer. */
  layer: string;
  nodeIndex: number;
  tensorIndex: number;
  shape: (number | null)[];
  /** Size of the last (channel) axis; 0 when unknown. */
  channels: number;
}

export interface TopoNode {
  layer: tf.layers.Layer;
  name: string;
  className: string;
  nodeIndex: number;
  inputs: TopoTensor[];
  outputs: TopoTensor[];
}

export interface Topology {
  nodes: TopoNode[];
  tensors: TopoTensor[];
  inputs: TopoTensor[];
  outputs: TopoTensor[];
  /** Nodes of each layer, in order of appearance. */
  nodesByLayer: Map<string, TopoNode[]>;
}

/** The parts of tfjs-layers' internal Node and SymbolicTensor that the walk reads. */
interface RuntimeNode {
  inboundLayers: tf.layers.Layer[];
  nodeIndices: number[];
  tensorIndices: number[];
  outputTensors: { shape: (number | null)[] }[];
}
interface RuntimeSymbolicTensor {
  sourceLayer: tf.layers.Layer;
  nodeIndex: number;
  tensorIndex: number;
  shape: (number | null)[];
}

function runtimeNodes(layer: tf.layers.Layer): RuntimeNode[] {
  return (layer as unknown as { inboundNodes: RuntimeNode[] }).inboundNodes;
}

export function walkModel(model: tf.LayersModel): Topology {
  const nodes: TopoNode[] = [];
  const tensors: TopoTensor[] = [];
  const nodeByKey = new Map<string, TopoNode>();
  const nodesByLayer = new Map<string, TopoNode[]>();
  const nodeKey = (layer: tf.layers.Layer, nodeIndex: number) => `${layer.name}\u0000${nodeIndex}`;

  // Iterative post-order DFS from the model outputs: a node is emitted after all its inputs.
  const visit = (rootLayer: tf.layers.Layer, rootNode: number) => {
    const stack: { layer: tf.layers.Layer; nodeIndex: number; expanded: boolean }[] = [{ layer: rootLayer, nodeIndex: rootNode, expanded: false }];
    const onStack = new Set<string>();
    while (stack.length > 0) {
      const top = stack[stack.length - 1];
      const key = nodeKey(top.layer, top.nodeIndex);
      if (nodeByKey.has(key)) { stack.pop(); continue; }
      const rn = runtimeNodes(top.layer)[top.nodeIndex];
      if (!top.expanded) {
        top.expanded = true;
        onStack.add(key);
        for (let i = rn.inboundLayers.length - 1; i >= 0; i--) {
          const inKey = nodeKey(rn.inboundLayers[i], rn.nodeIndices[i]);
          if (!nodeByKey.has(inKey) && !onStack.has(inKey)) {
            stack.push({ layer: rn.inboundLayers[i], nodeIndex: rn.nodeIndices[i], expanded: false });
          }
        }
        continue;
      }
      stack.pop();
      onStack.delete(key);
      const inputs = rn.inboundLayers.map((l, i) => {
        const producer = nodeByKey.get(nodeKey(l, rn.nodeIndices[i]));
        if (!producer) throw new Error(`Model graph is not acyclic at layer ${top.layer.name}`);
        return producer.outputs[rn.tensorIndices[i]];
      });
      const outputs = rn.outputTensors.map((t, tensorIndex) => {
        const shape = [...t.shape];
        const last = shape.length >= 2 ? shape[shape.length - 1] : null;
        const tensor: TopoTensor = { id: tensors.length, layer: top.layer.name, nodeIndex: top.nodeIndex, tensorIndex, shape, channels: last ?? 0 };
        tensors.push(tensor);
        return tensor;
      });
      const node: TopoNode = { layer: top.layer, name: top.layer.name, className: top.layer.getClassName(), nodeIndex: top.nodeIndex, inputs, outputs };
      nodes.push(node);
      nodeByKey.set(key, node);
      const list = nodesByLayer.get(node.name);
      if (list) list.push(node); else nodesByLayer.set(node.name, [node]);
    }
  };

  const symbolic = (t: tf.SymbolicTensor) => t as unknown as RuntimeSymbolicTensor;
  for (const t of model.inputs) visit(symbolic(t).sourceLayer, symbolic(t).nodeIndex);
  for (const t of model.outputs) visit(symbolic(t).sourceLayer, symbolic(t).nodeIndex);
  const find = (t: tf.SymbolicTensor) => {
    const s = symbolic(t);
    return nodeByKey.get(nodeKey(s.sourceLayer, s.nodeIndex))!.outputs[s.tensorIndex];
  };
  return { nodes, tensors, inputs: model.inputs.map(find), outputs: model.outputs.map(find), nodesByLayer };
}

export function product(values: readonly (number | null)[]): number {
  let p = 1;
  for (const v of values) p *= v ?? 1;
  return p;
}
