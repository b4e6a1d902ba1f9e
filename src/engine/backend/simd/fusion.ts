/**
 * ReLUs fused into the layer before them while a tf.layers model trains on wasm. A BatchNormalization
 * whose output goes only to a ReLU or a ReLU6 (MobileNet's), or a two-input Add whose output goes only
 * to a ReLU, computes max(·, 0) (and min(·, 6)) in its own pass over the activation, and its gradient
 * masks dy in the same pass; the ReLU layer then hands the tensor on.
 * In a ResNet that removes a read and a write of every ReLU'd activation forward and a separate
 * gradient pass backward.
 *
 * Whether a layer's output goes only to a ReLU is a property of the model's graph, not of the layer
 * (tf.model can wire the same layers differently), so each training-mode call of a model looks up
 * the plan of that model (worked out once, kept per model) and the layers consult it.
 * PRUNELENS_FUSE_RELU=0 turns it off.
 */
import * as tf from '@tensorflow/tfjs';
import type { Tensor } from '@tensorflow/tfjs';
import { elementwiseKernel, type InPlaceKernels } from './inplace.js';
import { RELU_GRAD } from './relu.js';
import { switches } from '../../util/switches.js';
import { layerClassPrototype } from '../../util/layer-classes.js';
import { appliedActivation, classNameOf, isOp } from '../../layers/index.js';

export const ADD_RELU = 'PruneLensAddRelu';

/** The parts of tf.layers' graph the plan reads: a layer's call sites (nodes) and the tensors between them. */
interface SymbolicRef { id: number }
interface GraphNode { outboundLayer: GraphLayer; inputTensors: SymbolicRef[]; outputTensors: SymbolicRef[] }
interface GraphLayer {
  name: string;
  inboundNodes: GraphNode[];
  getClassName(): string;
  getConfig(): object;
}
interface GraphModel { layers: GraphLayer[]; containerNodes: Set<string>; outputs: SymbolicRef[] }

/** Which ReLU a layer applies: 1 a plain ReLU, 2 ReLU6 (a ReLU layer capped at 6, or Activation relu6), 0 neither. */
export type ReluKind = 0 | 1 | 2;

/** Whether a layer can compute this ReLU after it: batch norm (batchnorm.ts) either kind, Add (here) the plain one. */
function canApplyRelu(layer: GraphLayer, kind: ReluKind): boolean {
  return isOp(layer, 'batch-norm') || (isOp(layer, 'add') && kind === 1);
}

/** A ReLU layer (without a cap: 1, capped at 6: 2), or an Activation layer applying relu (1) or relu6 (2). */
function reluKind(layer: GraphLayer): ReluKind {
  if (!isOp(layer, 'relu') && !isOp(layer, 'activation')) return 0;
  const activation = appliedActivation(layer);
  return activation === 'relu' ? 1 : activation === 'relu6' ? 2 : 0;
}

/**
 * The producers in this model (batch norms, Adds of two tensors) whose every call feeds only a ReLU they
 * can apply and is not an output of the model, with the kind of that ReLU.
 */
export function planReluFusion(model: tf.LayersModel): Map<object, ReluKind> {
  const graph = model as unknown as GraphModel;
  const ownNodes = (layer: GraphLayer) => (layer.inboundNodes ?? []).filter((_, i) => graph.containerNodes.has(`${layer.name}_ib-${i}`));
  const consumers = new Map<number, GraphLayer[]>();
  for (const layer of graph.layers) {
    for (const node of ownNodes(layer)) {
      for (const input of node.inputTensors) consumers.set(input.id, [...(consumers.get(input.id) ?? []), layer]);
    }
  }
  const outputs = new Set(graph.outputs.map((t) => t.id));
  const fused = new Map<object, ReluKind>();
  for (const layer of graph.layers) {
    if (!isOp(layer, 'batch-norm') && !isOp(layer, 'add')) continue;
    const nodes = ownNodes(layer);
    // The kind of ReLU a call's output goes to alone, or 0.
    const reluAfter = (node: GraphNode): ReluKind => {
      if (isOp(layer, 'add') && node.inputTensors.length !== 2) return 0;
      if (node.outputTensors.length !== 1 || outputs.has(node.outputTensors[0].id)) return 0;
      const readers = consumers.get(node.outputTensors[0].id) ?? [];
      return readers.length === 1 ? reluKind(readers[0]) : 0;
    };
    const kinds = new Set(nodes.map(reluAfter));
    const [kind] = kinds;
    if (nodes.length > 0 && kinds.size === 1 && kind && canApplyRelu(layer, kind)) fused.set(layer, kind);
  }
  return fused;
}

const plans = new WeakMap<object, Map<object, ReluKind>>();
let active: Map<object, ReluKind> | undefined;
/** Tensors a producer returned with a ReLU already applied, and which. */
const activated = new WeakMap<Tensor, ReluKind>();

/** Which ReLU this layer is to apply after it in the model call now running (training on wasm only); 0 none. */
export function reluFollows(layer: object): ReluKind {
  return active?.get(layer) ?? 0;
}

/** Records that a producer's output is already ReLU'd (kind 1) or ReLU6'd (2), so the ReLU layer after it passes it on. */
export function markActivated(t: Tensor, kind: ReluKind = 1): Tensor {
  activated.set(t, kind);
  return t;
}

type CallFn = (this: unknown, inputs: Tensor | Tensor[], kwargs: Record<string, unknown>) => Tensor | Tensor[];

type LayerPrototype = { call: CallFn; mergeFunction?: (inputs: Tensor[]) => Tensor };

let installed = false;

/**
 * Registers the fused residual kernel and routes models, Add and the ReLU layers through the plan.
 * BatchNormalization's own route (batchnorm.ts) asks reluFollows() itself.
 */
export function installReluFusion(kernels: InPlaceKernels): void {
  if (installed) return;
  installed = true;
  tf.registerKernel({ kernelName: ADD_RELU, backendName: 'wasm', kernelFunc: elementwiseKernel(['a', 'b'], kernels.add_relu) });
  tf.registerGradient({
    kernelName: ADD_RELU,
    outputsToSave: [true],
    gradFunc: (dy: Tensor | Tensor[], saved: Tensor[]) => {
      const masked = tf.engine().runKernel(RELU_GRAD, { dy: Array.isArray(dy) ? dy[0] : dy, x: saved[0] }) as Tensor;
      // Each input gets a tensor of its own (sharing the buffer): the tape disposes them separately.
      return { a: () => masked, b: () => tf.clone(masked) };
    },
  });

  const model = tf.LayersModel.prototype as unknown as { call: CallFn };
  const modelCall = model.call;
  model.call = function (this: tf.LayersModel, inputs, kwargs) {
    if (!kwargs?.training || tf.getBackend() !== 'wasm' || !switches().fuseRelu) return modelCall.call(this, inputs, kwargs);
    let plan = plans.get(this);
    if (!plan) plans.set(this, (plan = planReluFusion(this)));
    const outer = active;
    active = plan;
    try {
      return modelCall.call(this, inputs, kwargs);
    } finally {
      active = outer;
    }
  } as CallFn;

  const add = layerClassPrototype<LayerPrototype>(classNameOf('add'));
  if (add?.mergeFunction) {
    const merge = add.mergeFunction;
    add.mergeFunction = function (this: object, inputs: Tensor[]) {
      const [a, b] = inputs;
      if (inputs.length !== 2 || !reluFollows(this) || a.dtype !== 'float32' || b.dtype !== 'float32' || !tf.util.arraysEqual(a.shape, b.shape)) {
        return merge.call(this, inputs);
      }
      return markActivated(tf.engine().runKernel(ADD_RELU, { a, b }) as Tensor);
    };
  }
  for (const name of [classNameOf('relu'), classNameOf('activation')]) {
    const prototype = layerClassPrototype<LayerPrototype>(name);
    if (!prototype) continue;
    const call = prototype.call;
    prototype.call = function (this: GraphLayer, inputs, kwargs) {
      const input = Array.isArray(inputs) && inputs.length === 1 ? inputs[0] : inputs;
      // A ReLU'd tensor is its own ReLU (Layer.apply clones a returned input, sharing its buffer).
      if (!Array.isArray(input) && activated.has(input) && activated.get(input) === reluKind(this)) return input;
      return call.call(this, inputs, kwargs);
    } as CallFn;
  }
}
