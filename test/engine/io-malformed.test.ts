import * as tf from '@tensorflow/tfjs';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, rmSync, symlinkSync, truncateSync, writeFileSync, appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Worker } from 'node:worker_threads';
import type { LoadOutcome } from '../helpers/load-model-worker.js';
import { UserError, describeError } from '../../src/engine/errors.js';
import { loadModel, modelFileSize, saveModelAtomic } from '../../src/engine/io/index.js';
import { buildSmallCnn, editModelJson, makeTempDir, readJson } from '../helpers/io.js';

let temp: { dir: string; remove: () => void };
let cnn: tf.LayersModel;
before(async () => {
  await tf.setBackend('cpu');
  temp = makeTempDir();
  cnn = buildSmallCnn();
});
after(() => {
  cnn.dispose();
  temp.remove();
});

let fixtureCount = 0;
/** A valid saved model in its own folder; returns the path of its model.json. */
async function validModel(model: tf.LayersModel = cnn): Promise<string> {
  const saved = await saveModelAtomic(model, join(temp.dir, `model-${++fixtureCount}`));
  return saved.modelJson;
}

function shardOf(modelJson: string): string {
  return join(modelJson, '..', 'group1-shard1of1.bin');
}

/** Loading rejects with one line that starts with `file` and matches every pattern; no stack trace. */
async function rejectsWith(file: string, ...patterns: (RegExp | string)[]): Promise<void> {
  await assert.rejects(loadModel(file), (err: unknown) => {
    assert.ok(err instanceof UserError, `expected a UserError, got ${String(err)}`);
    assert.ok(err.message.startsWith(`${file}: `), `message should name ${file}: ${err.message}`);
    assert.doesNotMatch(err.message, /\n/, 'one line');
    assert.doesNotMatch(err.message, /\bat .+:\d+:\d+/, 'no stack frames');
    assert.equal(describeError(err), err.message);
    for (const p of patterns) {
      if (typeof p === 'string') assert.ok(err.message.includes(p), `"${err.message}" should contain "${p}"`);
      else assert.match(err.message, p);
    }
    return true;
  });
}

/** Byte offset of each weight in the single shard of a saved model. */
function weightOffsets(modelJson: string): Map<string, { offset: number; bytes: number }> {
  const out = new Map<string, { offset: number; bytes: number }>();
  let offset = 0;
  for (const w of readJson(modelJson).weightsManifest[0].weights) {
    const bytes = w.shape.reduce((n: number, d: number) => n * d, 1) * 4;
    out.set(w.name, { offset, bytes });
    offset += bytes;
  }
  return out;
}

describe('loadModel rejects unreadable files', () => {
  it('a missing file', async () => {
    await rejectsWith(join(temp.dir, 'nowhere', 'model.json'), 'model file not found');
  });

  it('a folder without model.json', async () => {
    const dir = join(temp.dir, 'empty-folder');
    mkdirSync(dir);
    await rejectsWith(dir, 'folder holds no model.json');
  });

  it('an empty file', async () => {
    const file = join(temp.dir, 'empty.json');
    writeFileSync(file, '');
    await rejectsWith(file, 'is empty');
  });

  it('invalid JSON, with the line and column of the error', async () => {
    const file = join(temp.dir, 'broken.json');
    writeFileSync(file, '{\n  "format": "layers-model",\n  "modelTopology": ,\n}\n');
    await rejectsWith(file, 'is not valid JSON at line 3, column 20 (value expected)');
  });
});

describe('loadModel rejects files that are not TF.js layers models', () => {
  it('a TF.js graph model', async () => {
    const file = join(temp.dir, 'graph.json');
    writeFileSync(file, JSON.stringify({ format: 'graph-model', modelTopology: { node: [] }, weightsManifest: [] }));
    await rejectsWith(file, 'is a TF.js graph model', 'PruneLens needs a layers model', 'tensorflowjs_converter --output_format=tfjs_layers_model');
  });

  it('a Keras .h5 file: a broken one by name, a valid signature under another name by content', async () => {
    const hdf5 = Buffer.concat([Buffer.from([0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a]), Buffer.alloc(64)]);
    const h5 = join(temp.dir, 'classifier.h5');
    writeFileSync(h5, hdf5);
    await rejectsWith(h5, 'cannot be opened as HDF5', 'the file is corrupt');
    const renamed = join(temp.dir, 'renamed-h5.json');
    writeFileSync(renamed, hdf5);
    await rejectsWith(renamed, 'is a Keras HDF5 file', 'Give it the .h5 extension');
  });

  it('a Keras architecture without weights (model.to_json())', async () => {
    const file = join(temp.dir, 'keras-arch.json');
    writeFileSync(file, JSON.stringify({ class_name: 'Sequential', config: { layers: [] } }));
    await rejectsWith(file, 'holds only a Keras architecture', 'model.save("model.keras")');
  });

  it('a model.json without modelTopology', async () => {
    const file = await validModel();
    editModelJson(file, (json) => delete json.modelTopology);
    await rejectsWith(file, '"modelTopology" is missing');
  });

  it('a model.json without weightsManifest', async () => {
    const file = await validModel();
    editModelJson(file, (json) => delete json.weightsManifest);
    await rejectsWith(file, '"weightsManifest" is missing');
  });
});

describe('loadModel keeps weight files inside the model folder', () => {
  it('a ../ path', async () => {
    const file = await validModel();
    writeFileSync(join(temp.dir, 'outside.bin'), readFileSync(shardOf(file)));
    editModelJson(file, (json) => { json.weightsManifest[0].paths = ['../outside.bin']; });
    await rejectsWith(file, 'weight file "../outside.bin" is outside the model\'s folder');
  });

  it('an absolute path', async () => {
    const file = await validModel();
    const absolute = join(temp.dir, 'absolute.bin');
    writeFileSync(absolute, readFileSync(shardOf(file)));
    editModelJson(file, (json) => { json.weightsManifest[0].paths = [absolute]; });
    await rejectsWith(file, `weight file "${absolute}" is an absolute path`);
  });

  it('a URL', async () => {
    const file = await validModel();
    editModelJson(file, (json) => { json.weightsManifest[0].paths = ['https://example.com/group1-shard1of1.bin']; });
    await rejectsWith(file, 'is a URL');
  });

  it('a symlink that escapes the folder (one that stays inside is fine)', async () => {
    const file = await validModel();
    const elsewhere = join(temp.dir, 'stolen.bin');
    writeFileSync(elsewhere, readFileSync(shardOf(file)));
    rmSync(shardOf(file));
    symlinkSync(elsewhere, shardOf(file));
    await rejectsWith(file, 'weight file "group1-shard1of1.bin" links outside the model\'s folder');

    const inside = await validModel();
    const realShard = join(inside, '..', 'weights.bin');
    writeFileSync(realShard, readFileSync(shardOf(inside)));
    rmSync(shardOf(inside));
    symlinkSync('weights.bin', shardOf(inside));
    const loaded = await loadModel(inside);
    loaded.model.dispose();
  });
});

describe('loadModel checks shards against the manifest', () => {
  it('a missing shard', async () => {
    const file = await validModel();
    rmSync(shardOf(file));
    await rejectsWith(file, 'weight file "group1-shard1of1.bin" is missing');
  });

  it('a truncated shard', async () => {
    const file = await validModel();
    const expected = readFileSync(shardOf(file)).length;
    truncateSync(shardOf(file), expected - 4);
    await rejectsWith(file, `group1-shard1of1.bin (group 1) holds ${expected - 4} bytes but the manifest's weights need ${expected}`);
  });

  it('shard sizes are summed across a group in order', async () => {
    const file = await validModel();
    const bytes = readFileSync(shardOf(file));
    rmSync(shardOf(file));
    writeFileSync(join(file, '..', 'part-a.bin'), bytes.subarray(0, 1000));
    writeFileSync(join(file, '..', 'part-b.bin'), bytes.subarray(1000));
    editModelJson(file, (json) => { json.weightsManifest[0].paths = ['part-a.bin', 'part-b.bin']; });
    const loaded = await loadModel(file);
    assert.deepEqual(loaded.model.getWeights()[0].dataSync(), cnn.getWeights()[0].dataSync());
    loaded.model.dispose();
    appendFileSync(join(file, '..', 'part-b.bin'), Buffer.alloc(8));
    await rejectsWith(file, `part-a.bin, part-b.bin (group 1) hold ${bytes.length + 8} bytes but the manifest's weights need ${bytes.length}`);
  });

  it('an unsupported dtype', async () => {
    const file = await validModel();
    editModelJson(file, (json) => { json.weightsManifest[0].weights[1].dtype = 'complex64'; });
    await rejectsWith(file, 'weight conv1/bias: dtype "complex64" is not supported', 'float32');
  });

  it('a weight listed twice', async () => {
    const file = await validModel();
    editModelJson(file, (json) => { json.weightsManifest[0].weights[1].name = 'conv1/kernel'; });
    await rejectsWith(file, 'weight conv1/kernel is listed twice');
  });
});

describe('loadModel handles quantized weights', () => {
  it('dequantizes uint8 weights (value × scale + min)', async () => {
    const file = await validModel();
    const { offset, bytes } = weightOffsets(file).get('logits/kernel')!;
    const shard = readFileSync(shardOf(file));
    const original = new Float32Array(shard.buffer.slice(shard.byteOffset + offset, shard.byteOffset + offset + bytes));
    const min = Math.min(...original);
    const scale = (Math.max(...original) - min) / 255;
    const quantized = Uint8Array.from(original, (v) => Math.round((v - min) / scale));
    writeFileSync(shardOf(file), Buffer.concat([shard.subarray(0, offset), quantized, shard.subarray(offset + bytes)]));
    editModelJson(file, (json) => {
      const entry = json.weightsManifest[0].weights.find((w: { name: string }) => w.name === 'logits/kernel');
      entry.quantization = { dtype: 'uint8', scale, min };
    });

    const loaded = await loadModel(file);
    const kernel = loaded.model.getLayer('logits').getWeights()[0];
    assert.equal(kernel.dtype, 'float32');
    assert.deepEqual(kernel.dataSync(), Float32Array.from(quantized, (q) => q * scale + min));
    assert.equal(loaded.weightBytes, shard.length - bytes + quantized.length);
    loaded.model.dispose();
  });

  it('rejects an unknown quantization dtype', async () => {
    const file = await validModel();
    editModelJson(file, (json) => { json.weightsManifest[0].weights[0].quantization = { dtype: 'int4', scale: 1, min: 0 }; });
    await rejectsWith(file, 'weight conv1/kernel: quantization dtype "int4" is not supported');
  });

  it('rejects uint8 quantization without scale and min', async () => {
    const file = await validModel();
    editModelJson(file, (json) => { json.weightsManifest[0].weights[0].quantization = { dtype: 'uint8' }; });
    await rejectsWith(file, 'weight conv1/kernel: uint8 quantization needs numeric "scale" and "min"');
  });
});

describe('loadModel checks the weights against the topology', () => {
  it('a weight the topology needs is missing from the manifest', async () => {
    const file = await validModel();
    const { bytes } = weightOffsets(file).get('logits/bias')!;
    editModelJson(file, (json) => { json.weightsManifest[0].weights = json.weightsManifest[0].weights.filter((w: { name: string }) => w.name !== 'logits/bias'); });
    truncateSync(shardOf(file), readFileSync(shardOf(file)).length - bytes);
    await rejectsWith(file, 'weight logits/bias is required by the topology but missing from the manifest');
  });

  it('an extra weight no layer has', async () => {
    const file = await validModel();
    editModelJson(file, (json) => { json.weightsManifest[0].weights.push({ name: 'extra/scale', shape: [2], dtype: 'float32' }); });
    appendFileSync(shardOf(file), Buffer.alloc(8));
    await rejectsWith(file, 'weight extra/scale is in the manifest but no layer of the topology has it');
  });

  it('a weight whose shape differs from the topology', async () => {
    const narrow = buildSmallCnn({ conv2Filters: 8 });
    const file = await validModel(narrow);
    narrow.dispose();
    const wideTopology = readJson(await validModel()).modelTopology;
    editModelJson(file, (json) => { json.modelTopology = wideTopology; });
    await rejectsWith(file, 'layer conv2/kernel: manifest shape [3, 3, 16, 8], topology expects [3, 3, 16, 32]', 'more)');
  });

  it('an unknown layer class', async () => {
    const file = await validModel();
    editModelJson(file, (json) => {
      const relu = json.modelTopology.config.layers.find((l: { name: string }) => l.name === 'relu1');
      relu.class_name = 'Swish';
    });
    await rejectsWith(file, 'unknown layer class "Swish"', 'custom layers are not supported', 'Conv2D');
  });
});

/** Overwrites values of one weight in the single shard of a saved model. */
function writeWeightValues(modelJson: string, weight: string, values: Map<number, number>): void {
  const { offset } = weightOffsets(modelJson).get(weight)!;
  const shard = readFileSync(shardOf(modelJson));
  for (const [index, value] of values) shard.writeFloatLE(value, offset + index * 4);
  writeFileSync(shardOf(modelJson), shard);
}

describe('loadModel refuses weights that are not finite', () => {
  it('NaN values, with the weight and how many', async () => {
    const file = await validModel();
    writeWeightValues(file, 'conv1/kernel', new Map([[0, NaN], [17, NaN], [431, NaN]]));
    await rejectsWith(file, 'weight conv1/kernel holds NaN values (3 of 432)', 'finite');
  });

  it('infinite values, in manifest order, naming the other weights that hold them', async () => {
    const file = await validModel();
    writeWeightValues(file, 'bn2/moving_variance', new Map([[3, Infinity]]));
    writeWeightValues(file, 'logits/bias', new Map([[0, -Infinity], [1, NaN]]));
    await rejectsWith(file, 'weight logits/bias holds NaN and infinite values (2 of 10); 1 more weight too (bn2/moving_variance)');
  });

  it('values that overflow float32 once dequantized', async () => {
    const file = await validModel();
    const { offset, bytes } = weightOffsets(file).get('logits/bias')!;
    const shard = readFileSync(shardOf(file));
    const codes = Uint8Array.from({ length: bytes / 4 }, (_, i) => (i === 9 ? 255 : 0));
    writeFileSync(shardOf(file), Buffer.concat([shard.subarray(0, offset), codes, shard.subarray(offset + bytes)]));
    editModelJson(file, (json) => {
      const entry = json.weightsManifest[0].weights.find((w: { name: string }) => w.name === 'logits/bias');
      entry.quantization = { dtype: 'uint8', scale: 1e37, min: 0 };
    });
    await rejectsWith(file, 'weight logits/bias holds infinite values (1 of 10)');
  });
});

/**
 * Loads in a worker thread, so a load that spins forever fails the test after `hangMs`
 * instead of hanging it; the outcome says how long loadModel itself ran.
 */
function loadInWorker(file: string, hangMs = 20_000): Promise<LoadOutcome> {
  const source = `require('tsx/cjs/api').register(); require(${JSON.stringify(join(__dirname, '../helpers/load-model-worker.ts'))});`;
  const worker = new Worker(source, { eval: true, workerData: file });
  return new Promise<LoadOutcome>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`loading ${file} did not finish in ${hangMs} ms`)), hangMs);
    worker.once('message', (outcome: LoadOutcome) => { clearTimeout(timer); resolve(outcome); });
    worker.once('error', (err) => { clearTimeout(timer); reject(err); });
  }).finally(() => worker.terminate());
}

/** The load rejects within a second with a one-line UserError naming the file and containing every fragment. */
async function rejectsPromptly(file: string, ...fragments: string[]): Promise<void> {
  const outcome = await loadInWorker(file);
  assert.equal(outcome.loaded, false, `${file} should not load`);
  assert.ok(outcome.userError, `expected a UserError, got ${outcome.message}`);
  assert.ok(outcome.message!.startsWith(`${file}: `), `message should name ${file}: ${outcome.message}`);
  assert.doesNotMatch(outcome.message!, /\n/, 'one line');
  for (const f of fragments) assert.ok(outcome.message!.includes(f), `"${outcome.message}" should contain "${f}"`);
  assert.ok(outcome.ms < 1000, `rejected after ${outcome.ms.toFixed(0)} ms`);
}

type LayerJson = { name: string; class_name: string; config: Record<string, any>; inbound_nodes: unknown[][] };
function layerOf(json: Record<string, any>, name: string): LayerJson {
  return json.modelTopology.config.layers.find((l: LayerJson) => l.name === name);
}

describe('loadModel checks the layer graph before building it', () => {
  it('a cycle in inbound_nodes', async () => {
    const file = await validModel();
    editModelJson(file, (json) => { layerOf(json, 'conv1').inbound_nodes = [[['relu1', 0, 0, {}]]]; });
    await rejectsPromptly(file, 'inbound_nodes form a cycle: conv1 ← relu1 ← bn1 ← conv1', 'acyclic');
  });

  it('a layer that takes its own output', async () => {
    const file = await validModel();
    editModelJson(file, (json) => { layerOf(json, 'conv2').inbound_nodes = [[['conv2', 0, 0, {}]]]; });
    await rejectsPromptly(file, 'inbound_nodes form a cycle: conv2 ← conv2');
  });

  it('an input from a layer that does not exist', async () => {
    const file = await validModel();
    editModelJson(file, (json) => { layerOf(json, 'conv2').inbound_nodes = [[['relu_1', 0, 0, {}]]]; });
    await rejectsPromptly(file, 'layer conv2 takes its input from layer "relu_1", which is not in the model', 'Correct the name in inbound_nodes');
  });

  it('an input from a node the layer never makes', async () => {
    const file = await validModel();
    editModelJson(file, (json) => { layerOf(json, 'conv2').inbound_nodes = [[['relu1', 1, 0, {}]]]; });
    await rejectsPromptly(file, 'layer conv2 takes its input from node 1 of layer relu1, which has only 1 node');
  });

  it('an input that is not [layer, node, tensor, kwargs]', async () => {
    const file = await validModel();
    editModelJson(file, (json) => { layerOf(json, 'conv2').inbound_nodes = [['relu1', 0, 0, {}]]; });
    await rejectsPromptly(file, 'layer conv2: inbound_nodes[0][0] is "relu1"; each input is [layer name, node index, tensor index, kwargs]');
  });

  it('two layers with the same name', async () => {
    const file = await validModel();
    editModelJson(file, (json) => {
      const relu2 = layerOf(json, 'relu2');
      relu2.name = 'relu1';
      relu2.config.name = 'relu1';
    });
    await rejectsPromptly(file, 'layer name "relu1" is used twice (layers[3] and layers[6])', 'unique name');
  });

  it('an output layer that does not exist', async () => {
    const file = await validModel();
    editModelJson(file, (json) => { json.modelTopology.config.output_layers = [['logit', 0, 0]]; });
    await rejectsPromptly(file, 'output_layers names layer "logit", which is not in the model');
  });

  it('Keras 2 topologies (class Functional, inputs without kwargs): valid loads, a cycle is refused', async () => {
    const file = await validModel();
    editModelJson(file, (json) => {
      json.modelTopology.class_name = 'Functional';
      for (const layer of json.modelTopology.config.layers as LayerJson[]) {
        layer.inbound_nodes = layer.inbound_nodes.map((node) => node.map((ref) => (ref as unknown[]).slice(0, 3)));
      }
    });
    const outcome = await loadInWorker(file);
    assert.ok(outcome.loaded, outcome.message);
    editModelJson(file, (json) => { layerOf(json, 'bn2').inbound_nodes = [[['pool', 0, 0]]]; });
    await rejectsPromptly(file, 'inbound_nodes form a cycle: bn2 ← pool ← relu2 ← bn2');
  });

  it('a layer shared at two depths still loads', async () => {
    const input = tf.input({ shape: [4], name: 'x' });
    const shared = tf.layers.dense({ units: 4, name: 'shared' });
    const middle = tf.layers.dense({ units: 4, name: 'middle' });
    const twice = shared.apply(middle.apply(shared.apply(input))) as tf.SymbolicTensor;
    const model = tf.model({ inputs: input, outputs: tf.layers.dense({ units: 2, name: 'head' }).apply(twice) as tf.SymbolicTensor });
    const file = await validModel(model);
    const loaded = await loadModel(file);
    assert.deepEqual(predict(loaded.model), predict(model));
    loaded.model.dispose();
    model.dispose();
  });

  it('Sequential models: two layers with the same name', async () => {
    const model = tf.sequential({ layers: [
      tf.layers.dense({ inputShape: [4], units: 8, name: 'hidden' }),
      tf.layers.dense({ units: 8, name: 'hidden2' }),
      tf.layers.dense({ units: 2, name: 'out' }),
    ] });
    const file = await validModel(model);
    model.dispose();
    editModelJson(file, (json) => {
      const layers = json.modelTopology.config.layers;
      layers[1].config.name = 'hidden';
    });
    await rejectsPromptly(file, 'layer name "hidden" is used twice (layers[0] and layers[1])');
  });
});

function predict(model: tf.LayersModel): number[] {
  return tf.tidy(() => Array.from((model.predict(tf.ones([1, 4])) as tf.Tensor).dataSync()));
}

describe('modelFileSize', () => {
  it('counts model.json and its shards, and validates like loadModel', async () => {
    const file = await validModel();
    const expected = readFileSync(file).length + readFileSync(shardOf(file)).length;
    assert.equal(await modelFileSize(file), expected);
    assert.equal(await modelFileSize(join(file, '..')), expected);
    rmSync(shardOf(file));
    await assert.rejects(modelFileSize(file), /is missing/);
  });
});
