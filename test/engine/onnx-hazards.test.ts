// ONNX hazards, one tiny graph each, with ONNX Runtime as the oracle: the imported NHWC model
// computes what ORT computes on the NCHW graph; written back unpruned, every initializer is the
// file's own bytes; planted all-zero channels removed and written back leave ORT's outputs as
// they were, with the initializers of the same graph built narrower; an l1 session writes a file
// ORT runs. Also: an op PruneLens does not know imports as an opaque layer that blocks its channels.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig } from '../../src/engine/config/index.js';
import { UserError } from '../../src/engine/errors.js';
import { analyzeModel } from '../../src/engine/graph/analyze.js';
import type { ChannelGraph } from '../../src/engine/graph/types.js';
import { loadModel } from '../../src/engine/io/index.js';
import { decodeModel, encodeModel, tensorDims, tensorValues, type OnnxModel } from '../../src/engine/io/onnx/proto.js';
import { onnxRuntime, runOnnx } from '../../src/engine/io/onnx/runtime.js';
import { encodeOnnxModel } from '../../src/engine/io/onnx/write.js';
import { layerWeights } from '../../src/engine/layers/index.js';
import { unitNorms } from '../../src/engine/metrics/index.js';
import { selectUnits } from '../../src/engine/prune/select.js';
import { analyzeModelFile } from '../../src/engine/session/analyze.js';
import { executeSession } from '../../src/engine/session/session.js';
import { removeUnits } from '../../src/engine/surgery/index.js';
import type { DoneEvent } from '../../src/protocol/events.js';
import { makeTempDir } from '../helpers/io.js';
import { initializerElements, OnnxGraphBuilder, valueInfo } from '../helpers/onnx-graph.js';
import { randomArray } from '../helpers/seeded.js';

let temp: { dir: string; remove: () => void };
let hasOrt = false;
before(async () => {
  await tf.setBackend('cpu');
  temp = makeTempDir('prunelens-onnx-hazards-');
  hasOrt = (await onnxRuntime()) !== undefined;
});
after(() => temp.remove());

const PADS1 = [1, 1, 1, 1];
const BATCH = 2;

interface Hazard {
  name: string;
  /** [C, H, W] or [F] of the graph input. */
  input: number[];
  inputScale?: number;
  /** The prunable widths `build` takes, and which producer channels to plant as zeros for each (same order). */
  widths: number[];
  plant: { layer: string; channels: number[] }[];
  build(widths: number[]): Uint8Array;
}

function io(g: OnnxGraphBuilder, output: string, input = [3, 8, 8], opset = 13): Uint8Array {
  return g.bytes({ name: 'x', dims: input }, [{ name: output }], opset);
}

function depthwise(multiplier: number): Hazard {
  return {
    name: `depthwise Conv (group = channels, depth multiplier ${multiplier})`,
    input: [3, 8, 8],
    widths: [6, 4],
    plant: [{ layer: 'conv1', channels: [1, 4] }, { layer: 'pw', channels: [2] }],
    build([c1, c2]) {
      const g = new OnnxGraphBuilder(1);
      let y = g.add('Relu', [g.conv('conv1', 'x', 3, c1, { pads: PADS1 })], 'relu1');
      y = g.add('Relu', [g.conv('dw', y, c1, c1 * multiplier, { group: c1, pads: PADS1 })], 'relu2');
      y = g.add('Relu', [g.conv('pw', y, c1 * multiplier, c2, { kernel: 1 })], 'relu3');
      y = g.add('Flatten', [g.add('GlobalAveragePool', [y], 'gap')], 'flat');
      return io(g, g.linear('fc', y, c2, 5));
    },
  };
}

function relu6(kind: 'inputs' | 'attributes'): Hazard {
  return {
    name: kind === 'inputs' ? 'Clip with min and max as inputs (ReLU6, opset 13)' : 'Clip with min and max as attributes (ReLU6, opset 9)',
    input: [3, 8, 8],
    inputScale: 30,
    widths: [6],
    plant: [{ layer: 'conv1', channels: [0, 3] }],
    build([c1]) {
      const g = new OnnxGraphBuilder(2);
      const y = g.conv('conv1', 'x', 3, c1, { pads: PADS1 });
      const clipped = kind === 'inputs'
        ? g.add('Clip', [y, g.floats('clip_min', [], [0]), g.floats('clip_max', [], [6])], 'relu6')
        : g.add('Clip', [y], 'relu6', { min: 0, max: 6 });
      return io(g, g.conv('head', clipped, c1, 4), [3, 8, 8], kind === 'inputs' ? 13 : 9);
    },
  };
}

const HAZARDS: Hazard[] = [
  depthwise(1),
  depthwise(2),
  relu6('inputs'),
  relu6('attributes'),
  {
    name: 'squeeze-excite (GlobalAveragePool → Conv → Relu → Conv → HardSigmoid → Mul with the block input)',
    input: [3, 8, 8],
    widths: [8, 4],
    plant: [{ layer: 'conv1', channels: [2, 5] }, { layer: 'se_reduce', channels: [1] }],
    build([c1, c2]) {
      const g = new OnnxGraphBuilder(3);
      const x1 = g.add('Relu', [g.conv('conv1', 'x', 3, c1, { pads: PADS1 })], 'relu1');
      let s = g.add('GlobalAveragePool', [x1], 'se_pool');
      s = g.add('Relu', [g.conv('se_reduce', s, c1, c2, { kernel: 1 })], 'se_relu');
      s = g.add('HardSigmoid', [g.conv('se_expand', s, c2, c1, { kernel: 1 })], 'se_gate', { alpha: 1 / 6, beta: 0.5 });
      const y = g.add('Mul', [x1, s], 'se_mul');
      return io(g, g.conv('head', y, c1, 4, { kernel: 1 }));
    },
  },
  {
    name: 'Concat of two convs into a Conv',
    input: [3, 8, 8],
    widths: [6, 4],
    plant: [{ layer: 'conv_a', channels: [1] }, { layer: 'conv_b', channels: [0, 2] }],
    build([c1, c2]) {
      const g = new OnnxGraphBuilder(4);
      const a = g.add('Relu', [g.conv('conv_a', 'x', 3, c1, { pads: PADS1 })], 'relu_a');
      const b = g.add('Relu', [g.conv('conv_b', 'x', 3, c2, { pads: PADS1 })], 'relu_b');
      const cat = g.add('Concat', [a, b], 'cat', { axis: 1 });
      return io(g, g.conv('head', cat, c1 + c2, 4, { pads: PADS1 }));
    },
  },
  {
    name: 'Flatten of a 2×2 map → Gemm (transB = 1)',
    input: [3, 8, 8],
    widths: [6],
    plant: [{ layer: 'conv1', channels: [1, 3] }],
    build([c1]) {
      const g = new OnnxGraphBuilder(5);
      let y = g.add('Relu', [g.conv('conv1', 'x', 3, c1, { strides: 2, pads: PADS1 })], 'relu1');
      y = g.add('MaxPool', [y], 'pool', { kernel_shape: [2, 2], strides: [2, 2] });
      y = g.add('Flatten', [y], 'flat', { axis: 1 });
      return io(g, g.linear('fc', y, c1 * 4, 5));
    },
  },
  {
    name: 'Pad (asymmetric) before AveragePool',
    input: [3, 8, 8],
    widths: [6],
    plant: [{ layer: 'conv1', channels: [0, 2] }],
    build([c1]) {
      const g = new OnnxGraphBuilder(6);
      let y = g.add('Relu', [g.conv('conv1', 'x', 3, c1, { pads: PADS1 })], 'relu1');
      y = g.add('Pad', [y, g.int64s('pad_amounts', [0, 0, 1, 0, 0, 0, 1, 2])], 'pad');
      y = g.add('AveragePool', [y], 'pool', { kernel_shape: [3, 3], strides: [2, 2] });
      return io(g, g.conv('head', y, c1, 4, { kernel: 1 }));
    },
  },
  {
    name: 'MaxPool with ceil_mode = 1 and pads',
    input: [3, 8, 8],
    widths: [6],
    plant: [{ layer: 'conv1', channels: [2, 5] }],
    build([c1]) {
      const g = new OnnxGraphBuilder(7);
      let y = g.conv('conv1', 'x', 3, c1, { pads: PADS1 });
      y = g.add('MaxPool', [y], 'pool', { kernel_shape: [3, 3], strides: [2, 2], pads: PADS1, ceil_mode: 1 });
      return io(g, g.conv('head', y, c1, 4, { kernel: 1 }));
    },
  },
  {
    name: 'AveragePool with count_include_pad = 0 and pads',
    input: [3, 8, 8],
    widths: [6],
    plant: [{ layer: 'conv1', channels: [0, 1] }],
    build([c1]) {
      const g = new OnnxGraphBuilder(8);
      let y = g.conv('conv1', 'x', 3, c1, { pads: PADS1 });
      y = g.add('AveragePool', [y], 'pool', { kernel_shape: [3, 3], strides: [2, 2], pads: PADS1, count_include_pad: 0 });
      return io(g, g.conv('head', y, c1, 4, { kernel: 1 }));
    },
  },
  {
    // ONNX Runtime leaves ceil_mode's extra rows out of the divisor even when it counts the pads.
    name: 'AveragePool with ceil_mode = 1 and count_include_pad = 1',
    input: [3, 8, 8],
    widths: [6],
    plant: [{ layer: 'conv1', channels: [3] }],
    build([c1]) {
      const g = new OnnxGraphBuilder(13);
      let y = g.conv('conv1', 'x', 3, c1, { pads: PADS1 });
      y = g.add('AveragePool', [y], 'pool', { kernel_shape: [3, 3], strides: [2, 2], pads: PADS1, ceil_mode: 1, count_include_pad: 1 });
      return io(g, g.conv('head', y, c1, 4, { kernel: 1 }));
    },
  },
  {
    // Pads that are TF.js' "same" for this size: "same" averages leave the padding out of the count.
    name: 'AveragePool with count_include_pad = 1 and pads [0, 0, 1, 1]',
    input: [3, 8, 8],
    widths: [6],
    plant: [{ layer: 'conv1', channels: [0, 4] }],
    build([c1]) {
      const g = new OnnxGraphBuilder(14);
      let y = g.conv('conv1', 'x', 3, c1, { pads: PADS1 });
      y = g.add('AveragePool', [y], 'pool', { kernel_shape: [3, 3], strides: [2, 2], pads: [0, 0, 1, 1], count_include_pad: 1 });
      return io(g, g.conv('head', y, c1, 4, { kernel: 1 }));
    },
  },
  {
    name: 'Sub of two convs',
    input: [3, 8, 8],
    widths: [6],
    plant: [{ layer: 'conv_a', channels: [1, 3] }],
    build([c1]) {
      const g = new OnnxGraphBuilder(15);
      const a = g.add('Relu', [g.conv('conv_a', 'x', 3, c1, { pads: PADS1 })], 'relu_a');
      const b = g.conv('conv_b', 'x', 3, c1, { pads: PADS1 });
      return io(g, g.conv('head', g.add('Sub', [a, b], 'sub'), c1, 4, { kernel: 1 }));
    },
  },
  {
    name: 'Sub, Mul, Div and Add with scalar constants (Rescaling)',
    input: [3, 8, 8],
    widths: [6],
    plant: [{ layer: 'conv1', channels: [1, 2] }],
    build([c1]) {
      const g = new OnnxGraphBuilder(17);
      let y = g.add('Mul', [g.add('Sub', ['x', g.floats('mean', [], [0.5])], 'norm_sub'), g.floats('scale', [1], [2])], 'norm_mul');
      y = g.add('Relu', [g.conv('conv1', y, 3, c1, { pads: PADS1 })], 'relu1');
      y = g.add('Div', [g.add('Mul', [g.floats('half', [1, 1, 1, 1], [0.5]), y], 'half_mul'), g.floats('four', [], [4])], 'quarter');
      y = g.add('Add', [g.conv('head', y, c1, 4, { kernel: 1 }), g.floats('shift', [], [1])], 'shifted');
      return io(g, g.add('Sub', [g.floats('ten', [], [10]), y], 'flipped'));
    },
  },
  {
    name: 'an unfolded BatchNormalization',
    input: [3, 8, 8],
    widths: [6, 5],
    plant: [{ layer: 'conv1', channels: [1, 2] }, { layer: 'conv2', channels: [4] }],
    build([c1, c2]) {
      const g = new OnnxGraphBuilder(9);
      let y = g.add('Relu', [g.batchNorm('bn1', g.conv('conv1', 'x', 3, c1, { pads: PADS1, bias: false }), c1)], 'relu1');
      y = g.add('Relu', [g.batchNorm('bn2', g.conv('conv2', y, c1, c2, { pads: PADS1, bias: false }), c2)], 'relu2');
      y = g.add('Flatten', [g.add('GlobalAveragePool', [y], 'gap')], 'flat');
      return io(g, g.linear('fc', y, c2, 5));
    },
  },
  {
    name: 'Reshape to [N, C·H·W] with an int64 shape constant',
    input: [3, 8, 8],
    widths: [6],
    plant: [{ layer: 'conv1', channels: [0, 5] }],
    build([c1]) {
      const g = new OnnxGraphBuilder(10);
      let y = g.add('Relu', [g.conv('conv1', 'x', 3, c1, { strides: 2, pads: PADS1 })], 'relu1');
      y = g.add('Reshape', [y, g.int64s('flat_shape', [-1, c1 * 16])], 'reshape');
      return io(g, g.linear('fc', y, c1 * 16, 5));
    },
  },
  {
    name: 'stride-2 Conv with symmetric pads (ZeroPadding2D, not "same")',
    input: [3, 8, 8],
    widths: [6, 5],
    plant: [{ layer: 'conv1', channels: [0, 3] }, { layer: 'conv2', channels: [1] }],
    build([c1, c2]) {
      const g = new OnnxGraphBuilder(11);
      let y = g.add('Relu', [g.conv('conv1', 'x', 3, c1, { strides: 2, pads: PADS1 })], 'relu1');
      y = g.add('Relu', [g.conv('conv2', y, c1, c2, { strides: 2, pads: PADS1 })], 'relu2');
      y = g.add('Flatten', [g.add('GlobalAveragePool', [y], 'gap')], 'flat');
      return io(g, g.linear('fc', y, c2, 5));
    },
  },
];

// ---- helpers ----

function inputFor(hazard: { input: number[]; inputScale?: number }, seed = 5): { data: Float32Array; shape: number[] } {
  const { values } = randomArray([BATCH, ...hazard.input], seed);
  const scale = hazard.inputScale ?? 2;
  return { data: values.map((v) => v * scale), shape: [BATCH, ...hazard.input] };
}

/** The runtime model on an NCHW input: transposed to NHWC in, rank-4 outputs back to NCHW. */
function runtimeOutputs(model: tf.LayersModel, input: { data: Float32Array; shape: number[] }): { data: Float32Array; shape: number[] }[] {
  return tf.tidy(() => {
    let x = tf.tensor(input.data, input.shape);
    if (input.shape.length === 4) x = tf.transpose(x, [0, 2, 3, 1]);
    const out = model.predict(x) as tf.Tensor | tf.Tensor[];
    return (Array.isArray(out) ? out : [out]).map((t) => {
      const y = t.rank === 4 ? tf.transpose(t, [0, 3, 1, 2]) : t;
      return { data: y.dataSync() as Float32Array, shape: y.shape };
    });
  });
}

function assertClose(actual: { data: Float32Array; shape: number[] }[], expected: { data: Float32Array; shape: number[] }[], tolerance: number, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: output count`);
  expected.forEach((e, k) => {
    assert.deepEqual(actual[k].shape, e.shape, `${what}: output ${k} shape`);
    let diff = 0;
    let scale = 1e-6;
    for (let i = 0; i < e.data.length; i++) {
      diff = Math.max(diff, Math.abs(actual[k].data[i] - e.data[i]));
      scale = Math.max(scale, Math.abs(e.data[i]));
    }
    assert.ok(diff / scale <= tolerance, `${what}: output ${k} differs by ${diff} (relative ${(diff / scale).toExponential(2)}, outputs up to ${scale})`);
  });
}

function save(name: string, bytes: Uint8Array): string {
  const path = join(temp.dir, `${name}.onnx`);
  writeFileSync(path, bytes);
  return path;
}

function slug(name: string): string {
  return name.replace(/[^A-Za-z0-9]+/g, '-').replace(/^-|-$/g, '').slice(0, 40);
}

/** The unit that holds output channel `channel` of producer `layer`. */
function unitOf(graph: ChannelGraph, layer: string, channel: number): number {
  const unit = graph.units.find((u) => u.slices.some((s) => s.layer === layer && s.role === 'producer' && s.indices.includes(channel)));
  assert.ok(unit, `no unit holds channel ${channel} of ${layer} (${graph.layers.find((l) => l.name === layer)?.reason ?? 'not in a group'})`);
  return unit.id;
}

/** Zeroes every slice of the units but the consumers' inputs, so each channel is exactly zero where it flows. */
function plantZeros(model: tf.LayersModel, graph: ChannelGraph, units: number[]): void {
  for (const id of units) {
    for (const s of graph.units[id].slices) {
      if (s.role === 'consumer') continue;
      const variable = layerWeights(model.getLayer(s.layer)).get(s.weight)!;
      const shape = variable.shape as number[];
      const values = variable.read().dataSync().slice() as Float32Array;
      const inner = shape.slice(s.axis + 1).reduce((n, d) => n * d, 1);
      const size = shape[s.axis];
      for (let i = 0; i < values.length; i++) if (s.indices.includes(Math.floor(i / inner) % size)) values[i] = 0;
      variable.write(tf.tensor(values, shape));
    }
  }
}

function initializerShapes(model: OnnxModel): Record<string, number[]> {
  return Object.fromEntries(model.graph!.initializer.map((t) => [t.name!, tensorDims(t)]));
}

function decode(bytes: Uint8Array): OnnxModel {
  return decodeModel(bytes, 'test.onnx');
}

// ---- the hazards ----

for (const hazard of HAZARDS) {
  describe(`ONNX hazard: ${hazard.name}`, () => {
    const id = slug(hazard.name);
    const x = inputFor(hazard);

    it('imports: the runtime model computes what ONNX Runtime computes', async (t) => {
      if (!hasOrt) return t.skip('onnxruntime-node is not installed');
      const path = save(id, hazard.build(hazard.widths));
      const loaded = await loadModel(path);
      assertClose(runtimeOutputs(loaded.model, x), await runOnnx(path, x), 1e-4, 'imported vs ORT');
      loaded.model.dispose();
    });

    it('written back unpruned: every initializer byte for byte, the same nodes, the same outputs', async (t) => {
      if (!hasOrt) return t.skip('onnxruntime-node is not installed');
      const path = save(id, hazard.build(hazard.widths));
      const loaded = await loadModel(path);
      const bytes = await encodeOnnxModel(loaded.model, loaded.onnx!, path);
      const original = decode(readFileSync(path));
      const written = decode(bytes);
      assert.equal(written.graph!.initializer.length, original.graph!.initializer.length);
      original.graph!.initializer.forEach((o, i) => {
        const w = written.graph!.initializer[i];
        assert.equal(w.name, o.name);
        assert.deepEqual(tensorDims(w), tensorDims(o), `${o.name} dims`);
        assert.equal(w.data_type, o.data_type);
        assert.ok(Buffer.from(w.raw_data ?? []).equals(Buffer.from(o.raw_data ?? [])), `${o.name}: bytes changed`);
      });
      assert.deepEqual(written.graph!.node, original.graph!.node);
      assertClose(await runOnnx(bytes, x), await runOnnx(path, x), 1e-6, 'written vs original (ORT)');
      loaded.model.dispose();
    });

    it('planted zero channels removed and written back: ORT\'s outputs unchanged, the narrower graph\'s initializers', async (t) => {
      if (!hasOrt) return t.skip('onnxruntime-node is not installed');
      const path = save(id, hazard.build(hazard.widths));
      const full = await loadModel(path);
      const units = (graph: ChannelGraph) => hazard.plant.flatMap((p) => p.channels.map((c) => unitOf(graph, p.layer, c)));
      const fullGraph = analyzeModel(full.model);
      plantZeros(full.model, fullGraph, units(fullGraph));
      const plantedPath = save(`${id}-planted`, await encodeOnnxModel(full.model, full.onnx!, path));
      full.model.dispose();

      const planted = await loadModel(plantedPath);
      const graph = analyzeModel(planted.model);
      const pruned = await removeUnits(planted.model, graph, units(graph));
      const bytes = await encodeOnnxModel(pruned, planted.onnx!, plantedPath);
      const expected = await runOnnx(plantedPath, x);
      assertClose(await runOnnx(bytes, x), expected, 1e-4, 'pruned vs planted (ORT)');
      assertClose(runtimeOutputs(pruned, x), expected, 1e-4, 'pruned runtime model vs planted (ORT)');

      const narrow = decode(hazard.build(hazard.widths.map((w, i) => w - hazard.plant[i].channels.length)));
      const written = decode(bytes);
      assert.deepEqual(initializerShapes(written), initializerShapes(narrow), 'initializer shapes of the graph built narrower');
      assert.equal(initializerElements(written), initializerElements(narrow));
      for (const t of narrow.graph!.initializer.filter((i) => i.data_type === 7)) {
        const got = written.graph!.initializer.find((i) => i.name === t.name)!;
        assert.deepEqual(tensorValues(got, 'written'), tensorValues(t, 'narrow'), `int64 constant ${t.name} of the narrower graph`);
      }
      assert.deepEqual(written.graph!.node.map((n) => n.attribute), narrow.graph!.node.map((n) => n.attribute), 'attributes (depthwise group) of the narrower graph');
      planted.model.dispose();
      pruned.dispose();
    });

    it('l1-pruned through a session: ORT loads and runs the written file', async (t) => {
      if (!hasOrt) return t.skip('onnxruntime-node is not installed');
      const dir = join(temp.dir, `session-${id}`);
      mkdirSync(dir, { recursive: true });
      const model = join(dir, 'model.onnx');
      writeFileSync(model, hazard.build(hazard.widths));
      const configPath = join(dir, 'l1.prune.json');
      writeFileSync(configPath, JSON.stringify({ model, method: 'l1', target: { channelRatio: 0.3 }, output: 'pruned', latency: { runs: 1, batchSize: 1 }, backend: 'cpu' }));
      const result = await executeSession(loadConfig(configPath), () => undefined);
      assert.equal(result.type, 'done', result.type === 'error' ? result.message : undefined);
      const done = result as DoneEvent;
      assert.equal(done.output, join(dir, 'pruned', 'model.onnx'));
      assert.ok(done.after.params < done.before.params, `${done.after.params} < ${done.before.params} params`);
      const written = decode(readFileSync(done.output!));
      assert.ok(initializerElements(written) < initializerElements(decode(readFileSync(model))));
      const outputs = await runOnnx(done.output!, x);
      const reference = await runOnnx(model, x);
      assert.deepEqual(outputs.map((o) => o.shape), reference.map((o) => o.shape));
      assert.ok(outputs.every((o) => o.data.every(Number.isFinite)));
      // The written file computes what the session's pruned runtime model computes.
      const reread = await loadModel(done.output!);
      assertClose(runtimeOutputs(reread.model, x), outputs, 1e-4, 'written file reimported vs ORT');
      reread.model.dispose();
    });
  });
}

describe('l1 through selectUnits and removeUnits, every hazard at once', () => {
  it('ORT runs each pruned file and it matches the pruned runtime model', async (t) => {
    if (!hasOrt) return t.skip('onnxruntime-node is not installed');
    for (const hazard of HAZARDS) {
      const path = save(`${slug(hazard.name)}-select`, hazard.build(hazard.widths));
      const loaded = await loadModel(path);
      const graph = analyzeModel(loaded.model);
      const units = selectUnits(graph, loaded.model, unitNorms(loaded.model, graph, 'l1'), { flopsReduction: 0.3 }, { scope: 'global' });
      assert.ok(units.length > 0, `${hazard.name}: something to remove`);
      const pruned = await removeUnits(loaded.model, graph, units);
      const bytes = await encodeOnnxModel(pruned, loaded.onnx!, path);
      const x = inputFor(hazard, 9);
      assertClose(runtimeOutputs(pruned, x), await runOnnx(bytes, x), 1e-4, `${hazard.name}: pruned runtime vs ORT on the written file`);
      loaded.model.dispose();
      pruned.dispose();
    }
  });
});

// ---- how the file keeps its initializers ----

/** conv → conv → GAP → Gemm at opset 9, its initializers rewritten by `keep`. */
function storedGraph(keep: (model: OnnxModel, dir: string) => void, dir: string): string {
  const g = new OnnxGraphBuilder(16);
  const y = g.add('Relu', [g.conv('conv2', g.add('Relu', [g.conv('conv1', 'x', 3, 6, { pads: PADS1 })], 'relu1'), 6, 5, { pads: PADS1 })], 'relu2');
  const model = g.model({ name: 'x', dims: [3, 8, 8] }, [{ name: g.linear('fc', g.add('Flatten', [g.add('GlobalAveragePool', [y], 'gap')], 'flat'), 5, 3) }], 9);
  mkdirSync(dir, { recursive: true });
  keep(model, dir);
  const path = join(dir, 'model.onnx');
  writeFileSync(path, encodeModel(model));
  return path;
}

/** Prunes two channels of each conv, writes the file into `out/` and checks it in ORT against the pruned runtime model. */
async function pruneIntoOtherFolder(path: string): Promise<OnnxModel> {
  const loaded = await loadModel(path);
  const graph = analyzeModel(loaded.model);
  const pruned = await removeUnits(loaded.model, graph, [unitOf(graph, 'conv1', 0), unitOf(graph, 'conv1', 4), unitOf(graph, 'conv2', 2)]);
  const bytes = await encodeOnnxModel(pruned, loaded.onnx!, path);
  const out = join(path, '..', 'out');
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, 'model.onnx'), bytes);
  const x = inputFor({ input: [3, 8, 8] });
  assertClose(runtimeOutputs(pruned, x), await runOnnx(join(out, 'model.onnx'), x), 1e-4, 'pruned runtime model vs ORT on the written file');
  loaded.model.dispose();
  pruned.dispose();
  return decode(bytes);
}

describe('initializers as the file keeps them', () => {
  it('IR version 3 lists initializers among the graph inputs: their declared shapes follow the pruned tensors', async (t) => {
    if (!hasOrt) return t.skip('onnxruntime-node is not installed');
    const path = storedGraph((model) => {
      model.ir_version = 3;
      for (const i of model.graph!.initializer) model.graph!.input.push(valueInfo(i.name!, tensorDims(i)));
    }, join(temp.dir, 'ir3'));
    const written = await pruneIntoOtherFolder(path);
    const declared = written.graph!.input.find((i) => i.name === 'conv1.weight')!.type!.tensor_type!.shape!.dim!.map((d) => Number(d.dim_value));
    assert.deepEqual(declared, [4, 3, 3, 3]);
  });

  it('external data: the pruned file written into another folder holds every initializer itself', async (t) => {
    if (!hasOrt) return t.skip('onnxruntime-node is not installed');
    const path = storedGraph((model, dir) => {
      const chunks: Buffer[] = [];
      let offset = 0;
      for (const i of model.graph!.initializer) {
        const raw = Buffer.from(i.raw_data!);
        i.data_location = 1;
        i.external_data = [{ key: 'location', value: 'model.onnx.data' }, { key: 'offset', value: String(offset) }, { key: 'length', value: String(raw.length) }];
        i.raw_data = new Uint8Array(0);
        chunks.push(raw);
        offset += raw.length;
      }
      writeFileSync(join(dir, 'model.onnx.data'), Buffer.concat(chunks));
    }, join(temp.dir, 'external'));
    const written = await pruneIntoOtherFolder(path);
    assert.ok(written.graph!.initializer.every((i) => !i.data_location && (i.raw_data?.byteLength ?? 0) > 0));
    // fc's bias did not change: the file's own bytes, now inline.
    const fc = written.graph!.initializer.find((i) => i.name === 'fc.bias')!;
    const data = readFileSync(join(temp.dir, 'external', 'model.onnx.data'));
    const original = decode(readFileSync(path)).graph!.initializer.find((i) => i.name === 'fc.bias')!;
    const offset = Number(original.external_data!.find((e) => e.key === 'offset')!.value);
    assert.ok(Buffer.from(fc.raw_data!).equals(data.subarray(offset, offset + fc.raw_data!.byteLength)));
  });
});

// ---- an op PruneLens does not know ----

/** conv1 → Erf → conv2 → GAP → Flatten → Gemm; Erf's output shape from value_info or from Erf keeping shapes. */
function withUnsupported(op: string, shapeKnown: 'value_info' | 'op'): Uint8Array {
  const g = new OnnxGraphBuilder(12);
  const y = g.conv('conv1', 'x', 3, 6, { pads: PADS1 });
  const odd = g.add(op, [y], 'odd');
  if (shapeKnown === 'value_info') g.valueInfos.push(valueInfo(odd, ['N', 6, 8, 8]));
  let z = g.add('Relu', [g.conv('conv2', odd, 6, 5, { pads: PADS1 })], 'relu2');
  z = g.add('Flatten', [g.add('GlobalAveragePool', [z], 'gap')], 'flat');
  return io(g, g.linear('fc', z, 5, 3));
}

describe('an op PruneLens does not know (Erf between two convs)', () => {
  it('imports as an opaque layer that blocks the channels it touches, naming the node and the op', async () => {
    const path = save('erf', withUnsupported('Erf', 'op'));
    const loaded = await loadModel(path);
    assert.deepEqual(loaded.onnx!.unsupported, [{ node: 'odd', opType: 'Erf' }]);
    const graph = analyzeModel(loaded.model);
    const odd = graph.layers.find((l) => l.name === 'odd')!;
    assert.equal(odd.status, 'blocked');
    assert.equal(odd.reason, 'node "odd" (Erf) is not supported, so the channels it touches are kept');
    const conv1 = graph.layers.find((l) => l.name === 'conv1')!;
    assert.equal(conv1.status, 'blocked', 'conv1 feeds only the opaque node');
    assert.match(conv1.reason ?? '', /node "odd" \(Erf\)/);
    assert.equal(graph.layers.find((l) => l.name === 'conv2')!.status, 'prunable', 'channels past it still prune');
    loaded.model.dispose();
  });

  it('channels past it prune, and ONNX Runtime runs the written file with the node kept', async (t) => {
    if (!hasOrt) return t.skip('onnxruntime-node is not installed');
    const path = save('erf-pruned', withUnsupported('Erf', 'op'));
    const loaded = await loadModel(path);
    const graph = analyzeModel(loaded.model);
    const pruned = await removeUnits(loaded.model, graph, [unitOf(graph, 'conv2', 1), unitOf(graph, 'conv2', 3)]);
    assert.equal(analyzeModel(pruned).layers.find((l) => l.name === 'odd')!.reason, 'node "odd" (Erf) is not supported, so the channels it touches are kept', 'the rebuilt model still names the node');
    const bytes = await encodeOnnxModel(pruned, loaded.onnx!, path);
    const written = decode(bytes);
    assert.deepEqual(tensorDims(written.graph!.initializer.find((i) => i.name === 'conv2.weight')!), [3, 6, 3, 3]);
    assert.deepEqual(written.graph!.node.find((n) => n.name === 'odd')?.op_type, 'Erf');
    const outputs = await runOnnx(bytes, inputFor({ input: [3, 8, 8] }));
    assert.deepEqual(outputs[0].shape, [BATCH, 3]);
    loaded.model.dispose();
  });

  it('per-channel constant operands (input normalization) stay opaque: the model loads and the channels after them prune', async () => {
    const g = new OnnxGraphBuilder(18);
    let y = g.add('Sub', ['x', g.floats('mean', [1, 3, 1, 1], [0.4, 0.5, 0.6])], 'norm_sub');
    y = g.add('Div', [y, g.floats('std', [3, 1, 1], [0.2, 0.3, 0.25])], 'norm_div');
    y = g.add('Relu', [g.conv('conv1', y, 3, 6, { pads: PADS1 })], 'relu1');
    const path = save('per-channel-normalization', io(g, g.conv('head', y, 6, 4, { kernel: 1 })));
    const loaded = await loadModel(path);
    assert.deepEqual(loaded.onnx!.unsupported, [{ node: 'norm_sub', opType: 'Sub' }, { node: 'norm_div', opType: 'Div' }]);
    const graph = analyzeModel(loaded.model);
    assert.equal(graph.layers.find((l) => l.name === 'norm_div')!.reason, 'node "norm_div" (Div) is not supported, so the channels it touches are kept');
    assert.equal(graph.layers.find((l) => l.name === 'conv1')!.status, 'prunable');
    // Rebuilt from its JSON (as surgery does), the node and op names arrive unchanged.
    const rebuilt = await tf.models.modelFromJSON({ modelTopology: loaded.model.toJSON(undefined, false) } as never);
    assert.equal(analyzeModel(rebuilt).layers.find((l) => l.name === 'norm_sub')!.reason, 'node "norm_sub" (Sub) is not supported, so the channels it touches are kept');
    rebuilt.dispose();
    loaded.model.dispose();
  });

  it('takes its output shape from value_info when the op is not known to keep shapes', async () => {
    const path = save('mystery', withUnsupported('Mystery', 'value_info'));
    const loaded = await loadModel(path);
    assert.deepEqual(loaded.onnx!.unsupported, [{ node: 'odd', opType: 'Mystery' }]);
    assert.deepEqual(loaded.model.getLayer('odd').outputShape, [null, 8, 8, 6]);
    loaded.model.dispose();
  });

  it('without a known output shape it still fails at import, naming the node and the op', async () => {
    const path = save('mystery-no-shape', withUnsupported('Mystery', 'op'));
    await assert.rejects(loadModel(path), (err: Error) => {
      assert.ok(err instanceof UserError);
      assert.match(err.message, /node "odd" \(Mystery\)/);
      assert.doesNotMatch(err.message, /\n/);
      return true;
    });
  });

  it('analyze works on the model and reports the blocked layers', async () => {
    const path = save('erf-analyze', withUnsupported('Floor', 'op'));
    const result = await analyzeModelFile(path, 'cpu');
    const odd = result.layers.find((l) => l.name === 'odd')!;
    assert.equal(odd.status, 'blocked');
    assert.equal(odd.reason, 'node "odd" (Floor) is not supported, so the channels it touches are kept');
    assert.ok(result.groups.length > 0);
    assert.equal(result.onnx, undefined, 'nothing to compare: the opaque node cannot run here');
    assert.equal(result.onnxProblem, 'The import was not checked against ONNX Runtime: node "odd" (Floor) cannot run in PruneLens');
  });

  it('a pruning session on it fails in one line naming the node and the op', async () => {
    const dir = join(temp.dir, 'session-erf');
    mkdirSync(dir, { recursive: true });
    const model = join(dir, 'model.onnx');
    writeFileSync(model, withUnsupported('Erf', 'op'));
    const configPath = join(dir, 'l1.prune.json');
    writeFileSync(configPath, JSON.stringify({ model, method: 'l1', target: { channelRatio: 0.3 }, output: 'pruned', latency: { runs: 1, batchSize: 1 }, backend: 'cpu' }));
    const events: string[] = [];
    const result = await executeSession(loadConfig(configPath), (e) => events.push(e.type));
    assert.ok(events.includes('start'), 'the model loaded and was analysed before the run failed');
    assert.equal(result.type, 'error');
    const message = (result as { message: string }).message;
    assert.match(message, /node "odd" \(Erf\)/);
    assert.doesNotMatch(message, /\n|Internal error|    at /);
    assert.ok(!existsSync(join(dir, 'pruned')), 'nothing written');
  });
});
