import * as tf from '@tensorflow/tfjs';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadModel, modelFileSize, saveModelAtomic, type LoadedModel, type QuantizedDtype, type StoredDtype } from '../../src/engine/io/index.js';
import { storedWeightBytes, type LayersModelJson, type WeightEntryJson } from '../../src/engine/io/format.js';
import { storageDtypeOf, toFloat16Bits } from '../../src/engine/io/quantize.js';
import { analyzeModel } from '../../src/engine/graph/analyze.js';
import { removeUnits } from '../../src/engine/surgery/index.js';
import { loadConfig } from '../../src/engine/config/index.js';
import { executeSession } from '../../src/engine/session/session.js';
import { buildTinyCnn } from '../helpers/fixtures.js';
import { buildSmallCnn, makeTempDir, weightValues } from '../helpers/io.js';
import { nsfwjsAvailable, nsfwjsModel } from '../helpers/real-models.js';

let temp: { dir: string; remove: () => void };
let count = 0;
before(async () => {
  await tf.setBackend('cpu');
  temp = makeTempDir('prunelens-quantized-');
});
after(() => temp.remove());

function freshPath(name: string): string {
  return join(temp.dir, `${name}-${++count}`);
}

function manifestOf(modelJsonPath: string): WeightEntryJson[] {
  return (JSON.parse(readFileSync(modelJsonPath, 'utf8')) as LayersModelJson).weightsManifest.flatMap((g) => g.weights);
}

function shardBytes(modelJsonPath: string): number {
  const json = JSON.parse(readFileSync(modelJsonPath, 'utf8')) as LayersModelJson;
  return json.weightsManifest.flatMap((g) => g.paths).reduce((n, p) => n + statSync(join(modelJsonPath, '..', p)).size, 0);
}

/**
 * Writes `model` the way `tensorflowjs_converter --quantize_<dtype>` lays it out: one shard of
 * quantized values, `quantization` in each float32 entry. uint8 uses the plain min/max range.
 */
async function writeConverterLayout(model: tf.LayersModel, dtype: 'uint8' | 'float16'): Promise<string> {
  const saved = await saveModelAtomic(model, freshPath(`converter-${dtype}`));
  const json = JSON.parse(readFileSync(saved.modelJson, 'utf8')) as LayersModelJson;
  const shardPath = join(saved.modelJson, '..', json.weightsManifest[0].paths[0]);
  const shard = readFileSync(shardPath);
  const parts: Buffer[] = [];
  let offset = 0;
  for (const entry of json.weightsManifest[0].weights) {
    const bytes = storedWeightBytes(entry);
    const values = new Float32Array(shard.buffer.slice(shard.byteOffset + offset, shard.byteOffset + offset + bytes));
    offset += bytes;
    if (dtype === 'float16') {
      parts.push(Buffer.from(Uint16Array.from(values, toFloat16Bits).buffer));
      entry.quantization = { dtype };
      continue;
    }
    const min = Math.min(...values);
    const scale = (Math.max(...values) - min) / 255 || 1;
    parts.push(Buffer.from(Uint8Array.from(values, (v) => Math.round((v - min) / scale))));
    entry.quantization = { dtype, scale, min };
  }
  writeFileSync(shardPath, Buffer.concat(parts));
  writeFileSync(saved.modelJson, JSON.stringify(json));
  return saved.modelJson;
}

/** One quantization step of a saved weight: its scale (uint8/uint16) or half an ulp of float16 at `value`. */
function stepOf(entry: WeightEntryJson, value: number): number {
  if (entry.quantization?.dtype === 'float16') return Math.max(Math.abs(value) * 2 ** -11, 2 ** -25);
  if (entry.quantization) return entry.quantization.scale!;
  return 0;
}

/** Every reloaded weight lies within one step of the weight the model held when it was saved. */
function assertWithinOneStep(saved: string, original: LoadedModel['model'], reloaded: LoadedModel['model']): void {
  const entries = new Map(manifestOf(saved).map((e) => [e.name, e]));
  const reloadedValues = weightValues(reloaded);
  for (const [name, values] of weightValues(original)) {
    const entry = entries.get(name)!;
    const got = reloadedValues.get(name)!;
    assert.equal(got.length, values.length, name);
    for (let i = 0; i < values.length; i++) {
      const error = Math.abs(got[i] - values[i]);
      // A float32 rounding of the decoder's q × scale + min on top of the step.
      assert.ok(error <= stepOf(entry, values[i]) * 1.0001 + Math.abs(values[i]) * 2 ** -23, `${name}[${i}]: ${got[i]} vs ${values[i]} (${JSON.stringify(entry.quantization)})`);
    }
  }
}

function paramsOf(modelJsonPath: string): number {
  return manifestOf(modelJsonPath).reduce((n, e) => n + e.shape.reduce((a, d) => a * d, 1), 0);
}

describe('float16 encoding', () => {
  it('rounds to the nearest half, ties to even, with subnormals, overflow and NaN', () => {
    const cases: [number, number][] = [
      [0, 0x0000], [-0, 0x8000], [1, 0x3c00], [-2, 0xc000], [0.1, 0x2e66], [65504, 0x7bff],
      [65519, 0x7bff], [65520, 0x7c00], [Infinity, 0x7c00], [-Infinity, 0xfc00],
      [1 + 2 ** -11, 0x3c00], [1 + 3 * 2 ** -11, 0x3c02], [2 ** -14, 0x0400],
      [2 ** -24, 0x0001], [2 ** -25, 0x0000], [1.5 * 2 ** -25, 0x0001], [3 * 2 ** -25, 0x0002], [2 ** -26, 0x0000],
      [(1023 + 0.5) * 2 ** -24, 0x0400],
    ];
    for (const [value, bits] of cases) assert.equal(toFloat16Bits(value), bits, `${value}`);
    assert.equal(toFloat16Bits(NaN) & 0x7c00, 0x7c00);
    assert.notEqual(toFloat16Bits(NaN) & 0x3ff, 0);
  });
});

describe('storage dtype of a rebuilt layer', () => {
  it('a per-group layer <layer>_g<N> takes its source layer\'s dtype, a weight the input did not have the most common one, float32 stays float32', () => {
    const map = new Map<string, StoredDtype>([['conv2/kernel', 'uint8'], ['conv2/bias', 'float16'], ['conv1/kernel', 'uint8'], ['dense/kernel', 'float32']]);
    assert.equal(storageDtypeOf('conv2/kernel', map), 'uint8');
    assert.equal(storageDtypeOf('conv2_g3/kernel', map), 'uint8');
    assert.equal(storageDtypeOf('conv2_g0/bias', map), 'float16');
    assert.equal(storageDtypeOf('dense/kernel', map), undefined);
    assert.equal(storageDtypeOf('dense_g1/kernel', map), undefined);
    // DSP's channel selections: new weights of a mostly uint8 model are stored uint8.
    assert.equal(storageDtypeOf('conv2_g3_select/kernel', map), 'uint8');
    assert.equal(storageDtypeOf('conv3_g0/kernel', map), 'uint8');
    assert.equal(storageDtypeOf('conv3_g0/kernel', new Map<string, StoredDtype>([['a', 'float32'], ['b', 'float32'], ['c', 'uint8']])), undefined);
  });
});

describe('quantized models are saved as they came', () => {
  for (const dtype of ['uint8', 'float16'] as const) {
    it(`${dtype}: load → save quantized → reload keeps ${dtype === 'uint8' ? 1 : 2} byte(s) a value and the values within one step`, async () => {
      const model = buildSmallCnn();
      const input = await writeConverterLayout(model, dtype);
      model.dispose();
      const loaded = await loadModel(input);
      assert.equal(loaded.quantization.size, loaded.model.weights.length);
      assert.ok([...loaded.quantization.values()].every((d) => d === dtype));
      assert.equal(loaded.fileBytes, await modelFileSize(input));

      const saved = await saveModelAtomic(loaded.model, freshPath(`resaved-${dtype}`), {}, { quantization: loaded.quantization });
      const params = loaded.model.countParams();
      assert.equal(saved.weightBytes, params * (dtype === 'uint8' ? 1 : 2));
      assert.equal(shardBytes(saved.modelJson), saved.weightBytes);
      assert.equal(saved.fileBytes, await modelFileSize(saved.modelJson));
      assert.ok(manifestOf(saved.modelJson).every((e) => e.dtype === 'float32' && e.quantization?.dtype === dtype));

      const reloaded = await loadModel(saved.modelJson);
      assertWithinOneStep(saved.modelJson, loaded.model, reloaded.model);
      if (dtype === 'float16') {
        // Values that came as halves are halves already: stored again exactly.
        const before = weightValues(loaded.model);
        for (const [name, values] of weightValues(reloaded.model)) assert.deepEqual(values, before.get(name), name);
      }
      loaded.model.dispose();
      reloaded.model.dispose();
    });
  }

  it('uint8 keeps 0.0 exact (the converter\'s nudged range) and a constant weight exact', async () => {
    const model = buildSmallCnn();
    const [kernel, bias] = model.getLayer('conv2').getWeights();
    const zeroed = tf.tidy(() => kernel.mul(tf.randomUniform(kernel.shape, 0, 1, 'float32', 3).greater(0.5).cast('float32')));
    model.getLayer('conv2').setWeights([zeroed, tf.fill(bias.shape, 0.25)]);
    const stored = new Map<string, StoredDtype>(model.weights.map((w) => [w.originalName, 'float32']));
    stored.set('conv2/kernel', 'uint8').set('conv2/bias', 'uint8');
    const saved = await saveModelAtomic(model, freshPath('zeros'), {}, { quantization: stored });
    const entries = manifestOf(saved.modelJson);
    assert.deepEqual(entries.find((e) => e.name === 'conv2/bias')!.quantization, { dtype: 'uint8', scale: 1, min: 0.25 });
    assert.equal(entries.find((e) => e.name === 'conv1/kernel')!.quantization, undefined, 'weights stored as float32 stay float32');
    const reloaded = await loadModel(saved.modelJson);
    const [kernelBack, biasBack] = reloaded.model.getLayer('conv2').getWeights();
    const original = zeroed.dataSync();
    const back = kernelBack.dataSync();
    let zeros = 0;
    for (let i = 0; i < original.length; i++) if (original[i] === 0) { zeros++; assert.equal(back[i], 0, `kernel[${i}]`); }
    assert.ok(zeros > original.length / 4);
    assert.deepEqual(biasBack.dataSync(), new Float32Array(bias.size).fill(0.25));
    zeroed.dispose();
    model.dispose();
    reloaded.model.dispose();
  });

  it('a weight no scale can hold (NaN) or beyond float16\'s range is saved as float32', async () => {
    const model = buildSmallCnn();
    const [kernel, bias] = model.getLayer('logits').getWeights();
    const values = bias.dataSync().slice();
    values[0] = NaN;
    const [kernel1, bias1] = model.getLayer('conv1').getWeights();
    const large = bias1.dataSync().slice();
    large[0] = 1e6;
    model.getLayer('logits').setWeights([kernel, tf.tensor(values)]);
    model.getLayer('conv1').setWeights([kernel1, tf.tensor(large)]);
    const quantization = new Map<string, QuantizedDtype>([['logits/bias', 'uint8'], ['logits/kernel', 'uint8'], ['conv1/bias', 'float16']]);
    const saved = await saveModelAtomic(model, freshPath('unrepresentable'), {}, { quantization });
    const entries = new Map(manifestOf(saved.modelJson).map((e) => [e.name, e]));
    assert.equal(entries.get('logits/bias')!.quantization, undefined);
    assert.equal(entries.get('conv1/bias')!.quantization, undefined);
    assert.equal(entries.get('logits/kernel')!.quantization?.dtype, 'uint8');
    // Written faithfully, and refused by name when loaded again: NaN weights mean a diverged model.
    await assert.rejects(loadModel(saved.modelJson), /weight logits\/bias holds NaN values \(1 of 10\)/);
    model.dispose();
  });

  it('a session saves the pruned model quantized and reports the bytes on disk', async () => {
    const dir = freshPath('session');
    mkdirSync(dir);
    const model = buildTinyCnn();
    const input = await writeConverterLayout(model, 'uint8');
    model.dispose();
    const configPath = join(dir, 'tiny.prune.json');
    writeFileSync(configPath, JSON.stringify({
      model: input, method: 'l1', target: { flopsReduction: 0.4 }, output: join(dir, 'pruned'), latency: { runs: 2, batchSize: 1 }, backend: 'cpu',
    }));
    const done = await executeSession(loadConfig(configPath), () => undefined);
    assert.equal(done.type, 'done', done.type === 'error' ? done.message : '');
    if (done.type !== 'done') return;
    assert.deepEqual(done.size, { before: await modelFileSize(input), after: await modelFileSize(done.output!) });
    assert.ok(manifestOf(done.output!).every((e) => e.quantization?.dtype === 'uint8'));
    assert.equal(shardBytes(done.output!), done.after.params);
    const report = JSON.parse(readFileSync(done.report!, 'utf8'));
    assert.equal(report.before.weightBytes, done.size!.before);
    assert.equal(report.after.weightBytes, done.size!.after);
  });
});

describe('the real nsfwjs MobileNetV2 (uint8)', { skip: !nsfwjsAvailable() && 'nsfwjs is not installed' }, () => {
  let loaded: LoadedModel;
  let input: string;
  before(async () => {
    input = nsfwjsModel('mobilenet_v2');
    loaded = await loadModel(input);
  });
  after(() => loaded.model.dispose());

  it('saved unchanged with its quantization, it keeps its size and its weights within one step', async () => {
    assert.equal(loaded.weightBytes, 2_619_461);
    assert.ok([...loaded.quantization.values()].every((d) => d === 'uint8') && loaded.quantization.size === loaded.model.weights.length);
    const saved = await saveModelAtomic(loaded.model, freshPath('mobilenet-same'), {}, { quantization: loaded.quantization });
    assert.equal(saved.weightBytes, loaded.weightBytes);
    assert.equal(shardBytes(saved.modelJson), loaded.weightBytes);
    assert.ok(Math.abs(saved.fileBytes - loaded.fileBytes) <= 0.01 * loaded.fileBytes, `${saved.fileBytes} bytes against ${loaded.fileBytes}`);
    const reloaded = await loadModel(saved.modelJson);
    assertWithinOneStep(saved.modelJson, loaded.model, reloaded.model);
    reloaded.model.dispose();
  });

  it('pruned, its shards are at most the original\'s times params after / params before', async () => {
    const graph = analyzeModel(loaded.model);
    const remove = graph.groups.flatMap((g) => g.units.filter((_, i) => i % 2 === 1));
    const pruned = await removeUnits(loaded.model, graph, remove);
    const saved = await saveModelAtomic(pruned, freshPath('mobilenet-pruned'), {}, { quantization: loaded.quantization });
    const paramsBefore = paramsOf(input);
    const paramsAfter = pruned.countParams();
    assert.equal(paramsOf(saved.modelJson), paramsAfter);
    assert.ok(paramsAfter < paramsBefore * 0.5);
    const onDisk = await modelFileSize(saved.modelJson);
    const manifestBytes = statSync(saved.modelJson).size;
    assert.equal(onDisk, saved.fileBytes);
    // Integers: shards × params before ≤ original shards × params after.
    assert.ok((onDisk - manifestBytes) * paramsBefore <= loaded.weightBytes * paramsAfter,
      `${onDisk - manifestBytes} shard bytes for ${paramsAfter} of ${paramsBefore} params; the original has ${loaded.weightBytes}`);
    assert.ok(onDisk < loaded.fileBytes);
    const reloaded = await loadModel(saved.modelJson);
    assertWithinOneStep(saved.modelJson, pruned, reloaded.model);
    console.log(`MobileNetV2 on disk: original ${loaded.fileBytes} B (shard ${loaded.weightBytes}), pruned to ${(paramsAfter / paramsBefore * 100).toFixed(1)}% of params: ${onDisk} B (shard ${onDisk - manifestBytes}, model.json ${manifestBytes})`);
    pruned.dispose();
    reloaded.model.dispose();
  });
});
