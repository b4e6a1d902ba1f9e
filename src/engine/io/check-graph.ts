import { UserError } from '../errors.js';

/**
 * Checks the layer graph of a model topology before TF.js builds it. TF.js' functional
 * deserialisation re-queues every layer call whose input does not exist yet and loops until
 * all calls are made, so a cycle, a reference to a missing layer or a node index past a
 * layer's calls spins forever. This check replays that queue on call counts alone (no tensors),
 * which is cheap and terminates, and names the layer at fault.
 */

const FUNCTIONAL_CLASSES = new Set(['Model', 'Functional']);
const MODEL_CLASSES = new Set([...FUNCTIONAL_CLASSES, 'Sequential']);

const REF_FORM = 'each input is [layer name, node index, tensor index, kwargs]';
const REEXPORT = 're-export the model';

type Json = Record<string, unknown>;

function isRecord(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** One call of a layer in inbound_nodes: the (layer, node) outputs it needs. */
interface LayerCall {
  layer: string;
  inputs: { layer: string; node: number }[];
  /** Index of the first input not yet available. */
  next: number;
}

interface LayerEntry {
  name: string;
  className: string;
  data: Json;
}

/** Validates `modelConfig` ({class_name, config}) and every model nested in it; throws a UserError naming the layer. */
export function checkLayerGraph(modelConfig: Json, file: string): void {
  checkModel(modelConfig, file, '');
}

function checkModel(model: Json, file: string, scope: string): void {
  const className = model.class_name;
  if (className === 'Sequential') checkSequential(model.config, file, scope);
  else if (typeof className === 'string' && FUNCTIONAL_CLASSES.has(className)) checkFunctional(model.config, file, scope);
}

function fail(message: string, file: string, fix: string): never {
  throw new UserError(message, { file, fix });
}

/** Nested models are named in messages so a layer name is unambiguous. */
function nestedScope(scope: string, entry: LayerEntry): string {
  return `${scope}model ${entry.name} › `;
}

function checkSequential(config: unknown, file: string, scope: string): void {
  const layers = Array.isArray(config) ? config : isRecord(config) ? config.layers : undefined;
  if (!Array.isArray(layers)) fail(`${scope}the Sequential model's config has no "layers" list`, file, `Re-export the model with TF.js or tensorflowjs_converter`);
  const seen = new Map<string, number>();
  layers.forEach((layer, i) => {
    if (!isRecord(layer)) fail(`${scope}layers[${i}] is not a layer object`, file, `Re-export the model`);
    const config = isRecord(layer.config) ? layer.config : {};
    const name = typeof config.name === 'string' ? config.name : typeof layer.name === 'string' ? layer.name : undefined;
    if (name === undefined) return; // TF.js names unnamed Sequential layers itself
    checkUnique(seen, name, i, file, scope);
    const entry = { name, className: String(layer.class_name), data: layer };
    if (MODEL_CLASSES.has(entry.className)) checkModel(layer, file, nestedScope(scope, entry));
  });
}

function checkUnique(seen: Map<string, number>, name: string, index: number, file: string, scope: string): void {
  const first = seen.get(name);
  if (first !== undefined) {
    fail(`${scope}layer name "${name}" is used twice (layers[${first}] and layers[${index}])`, file, 'Give every layer a unique name and re-export the model');
  }
  seen.set(name, index);
}

function checkFunctional(config: unknown, file: string, scope: string): void {
  if (!isRecord(config) || !Array.isArray(config.layers)) {
    fail(`${scope}the functional model's config has no "layers" list`, file, 'Re-export the model with TF.js or tensorflowjs_converter');
  }
  const entries = layerEntries(config.layers, file, scope);
  const byName = new Map(entries.map((e) => [e.name, e]));
  const calls = entries.flatMap((entry) => layerCalls(entry, byName, file, scope));
  const counts = new Map(entries.map((e) => [e.name, initialNodes(e)]));
  const stuck = replayCalls(calls, counts);
  if (stuck.length > 0) explainStuck(stuck, entries, counts, file, scope);
  checkEndpoints(config, 'input_layers', byName, counts, file, scope);
  checkEndpoints(config, 'output_layers', byName, counts, file, scope);
  for (const entry of entries) {
    if (MODEL_CLASSES.has(entry.className)) checkModel(entry.data, file, nestedScope(scope, entry));
  }
}

function layerEntries(layers: unknown[], file: string, scope: string): LayerEntry[] {
  const names = new Map<string, number>();
  const queueNames = new Map<string, number>();
  return layers.map((layer, i) => {
    if (!isRecord(layer)) fail(`${scope}layers[${i}] is not a layer object`, file, 'Re-export the model');
    const config = isRecord(layer.config) ? layer.config : {};
    const name = typeof layer.name === 'string' ? layer.name : typeof config.name === 'string' ? config.name : undefined;
    if (name === undefined) fail(`${scope}layers[${i}] has no name`, file, 'Every layer of a functional model needs a "name"; re-export the model');
    // TF.js looks layers up by the entry's name and queues their calls by the config's name: both must be unique.
    checkUnique(names, name, i, file, scope);
    if (typeof config.name === 'string') checkUnique(queueNames, config.name, i, file, scope);
    return { name, className: String(layer.class_name), data: layer };
  });
}

/** Nodes a layer has before any call: TF.js creates one for an InputLayer and for a model when it is built. */
function initialNodes(entry: LayerEntry): number {
  return entry.className === 'InputLayer' || MODEL_CLASSES.has(entry.className) ? 1 : 0;
}

function layerCalls(entry: LayerEntry, byName: Map<string, LayerEntry>, file: string, scope: string): LayerCall[] {
  const nodes = entry.data.inbound_nodes;
  if (nodes === undefined) return [];
  if (!Array.isArray(nodes)) fail(`${scope}layer ${entry.name}: "inbound_nodes" must be a list`, file, `Re-export the model`);
  const calls: LayerCall[] = [];
  nodes.forEach((node, n) => {
    if (!Array.isArray(node)) return; // TF.js rejects a non-list node itself, before it starts queueing
    const inputs = node.map((ref, r) => {
      const where = `${scope}layer ${entry.name}: inbound_nodes[${n}][${r}]`;
      if (!Array.isArray(ref) || typeof ref[0] !== 'string') fail(`${where} is ${JSON.stringify(ref)}; ${REF_FORM}`, file, `Correct it or ${REEXPORT}`);
      if (!isIndex(ref[1]) || !isIndex(ref[2])) fail(`${where} has node and tensor indices ${JSON.stringify(ref.slice(1, 3))}; ${REF_FORM}`, file, `Correct it or ${REEXPORT}`);
      const source = ref[0];
      if (!byName.has(source)) {
        fail(`${scope}layer ${entry.name} takes its input from layer "${source}", which is not in the model`, file, `Correct the name in inbound_nodes or ${REEXPORT}`);
      }
      return { layer: source, node: ref[1] as number };
    });
    // TF.js makes no call (and no node) for an empty input list.
    if (inputs.length > 0) calls.push({ layer: entry.name, inputs, next: 0 });
  });
  return calls;
}

function isIndex(value: unknown): boolean {
  return Number.isInteger(value) && (value as number) >= 0;
}

/**
 * Makes every call whose inputs exist, as TF.js' queue does, counting the nodes each call adds.
 * A call waits on one layer at a time and is retried only when that layer gains a node, so the
 * work is linear in the calls and their inputs. Returns the calls that can never be made.
 */
function replayCalls(calls: LayerCall[], counts: Map<string, number>): LayerCall[] {
  const waitingOn = new Map<string, LayerCall[]>();
  const queue = [...calls].reverse();
  const made = new Set<LayerCall>();
  while (queue.length > 0) {
    const call = queue.pop()!;
    while (call.next < call.inputs.length && (counts.get(call.inputs[call.next].layer) ?? 0) > call.inputs[call.next].node) call.next++;
    if (call.next < call.inputs.length) {
      const blocker = call.inputs[call.next].layer;
      const list = waitingOn.get(blocker);
      if (list) list.push(call); else waitingOn.set(blocker, [call]);
      continue;
    }
    made.add(call);
    counts.set(call.layer, (counts.get(call.layer) ?? 0) + 1);
    const woken = waitingOn.get(call.layer);
    if (woken) {
      waitingOn.delete(call.layer);
      queue.push(...woken);
    }
  }
  return calls.filter((c) => !made.has(c));
}

/** Names the cycle the stuck calls are caught in, or the node index no call can create. */
function explainStuck(stuck: LayerCall[], entries: LayerEntry[], counts: Map<string, number>, file: string, scope: string): never {
  const stuckByLayer = new Map<string, LayerCall>();
  for (const call of stuck) if (!stuckByLayer.has(call.layer)) stuckByLayer.set(call.layer, call);
  const start = entries.find((e) => stuckByLayer.has(e.name))!.name;
  const path: string[] = [];
  const position = new Map<string, number>();
  let current = start;
  for (;;) {
    position.set(current, path.length);
    path.push(current);
    const call = stuckByLayer.get(current)!;
    const needed = call.inputs[call.next];
    const at = position.get(needed.layer);
    if (at !== undefined) {
      const cycle = [...path.slice(at), needed.layer];
      const shown = cycle.length > 9 ? [...cycle.slice(0, 4), '…', ...cycle.slice(-4)] : cycle;
      fail(`${scope}inbound_nodes form a cycle: ${shown.join(' ← ')} (each layer takes its input from the next)`, file, `A layers model must be acyclic; correct inbound_nodes or ${REEXPORT}`);
    }
    if (!stuckByLayer.has(needed.layer)) {
      const nodes = counts.get(needed.layer) ?? 0;
      fail(`${scope}layer ${current} takes its input from node ${needed.node} of layer ${needed.layer}, which has ${nodes === 1 ? 'only 1 node' : `${nodes} nodes`}`, file, `Correct the node index in inbound_nodes or ${REEXPORT}`);
    }
    current = needed.layer;
  }
}

/** input_layers / output_layers name existing layers and nodes, or TF.js fails with an assertion. */
function checkEndpoints(config: Json, key: 'input_layers' | 'output_layers', byName: Map<string, LayerEntry>, counts: Map<string, number>, file: string, scope: string): void {
  const refs = config[key];
  if (!Array.isArray(refs)) return;
  for (const ref of refs) {
    if (!Array.isArray(ref) || typeof ref[0] !== 'string') continue;
    const name = ref[0];
    if (!byName.has(name)) fail(`${scope}${key} names layer "${name}", which is not in the model`, file, `Correct the name in ${key} or ${REEXPORT}`);
    const nodes = counts.get(name) ?? 0;
    if (isIndex(ref[1]) && (ref[1] as number) >= nodes) {
      fail(`${scope}${key} names node ${ref[1] as number} of layer ${name}, which has ${nodes === 1 ? 'only 1 node' : `${nodes} nodes`}`, file, `Correct the node index in ${key} or ${REEXPORT}`);
    }
  }
}
