import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { UserError } from '../../src/engine/errors.js';
import { loadModel } from '../../src/engine/io/index.js';
import { decodeModel, encodeModel, ONNX_DTYPE, tensorDims, type OnnxModel } from '../../src/engine/io/onnx/proto.js';
import { encodeOnnxModel } from '../../src/engine/io/onnx/write.js';
import { readNpy } from '../../src/engine/data/npy.js';
import { onnxSchemaJson } from '../../scripts/onnx-schema.mjs';

/** How initializers are stored (raw, typed fields, float16, external files) and the one line each malformed file gets. */

const FIXTURE = 'test/fixtures/onnx/resnet_tiny.onnx';
let dir: string;

before(async () => {
  await tf.setBackend('cpu');
  dir = mkdtempSync(join(tmpdir(), 'prunelens-onnx-io-'));
});

function original(): OnnxModel {
  return decodeModel(readFileSync(FIXTURE), FIXTURE);
}

function save(name: string, model: OnnxModel): string {
  const path = join(dir, name);
  writeFileSync(path, encodeModel(model));
  return path;
}

function outputs(model: tf.LayersModel): Float32Array {
  const x = readNpy('test/fixtures/onnx/resnet_tiny.input.npy');
  return tf.tidy(() => (model.predict(tf.transpose(tf.tensor(Float32Array.from(x.data as Float32Array), x.shape), [0, 2, 3, 1])) as tf.Tensor).dataSync() as Float32Array);
}

function floats(raw: Uint8Array): Float32Array {
  return new Float32Array(new Uint8Array(raw).buffer);
}

async function rejectsWith(file: string, ...patterns: RegExp[]): Promise<void> {
  await assert.rejects(loadModel(file), (err: unknown) => {
    assert.ok(err instanceof UserError, `expected a UserError, got ${String(err)}`);
    assert.ok(err.message.startsWith(`${file}: `), err.message);
    assert.doesNotMatch(err.message, /\n/);
    for (const p of patterns) assert.match(err.message, p);
    return true;
  });
}

describe('ONNX initializer storage', () => {
  it('the committed schema is the one scripts/onnx-schema.mjs makes from the vendored onnx.proto', () => {
    assert.equal(readFileSync('src/engine/io/onnx/onnx-schema.json', 'utf8'), onnxSchemaJson());
  });

  it('typed float_data, float16 and external data files load to the same model', async () => {
    const reference = await loadModel(FIXTURE);
    const expected = outputs(reference.model);

    const typed = original();
    for (const t of typed.graph!.initializer) {
      t.float_data = Array.from(floats(t.raw_data!));
      t.raw_data = new Uint8Array(0);
    }
    const fromTyped = await loadModel(save('typed.onnx', typed));
    assert.deepEqual(Array.from(outputs(fromTyped.model)), Array.from(expected));

    const external = original();
    const chunks: Buffer[] = [];
    let offset = 0;
    for (const t of external.graph!.initializer) {
      const raw = Buffer.from(t.raw_data!);
      t.external_data = [{ key: 'location', value: 'weights.bin' }, { key: 'offset', value: String(offset) }, { key: 'length', value: String(raw.length) }];
      t.data_location = 1;
      t.raw_data = new Uint8Array(0);
      chunks.push(raw);
      offset += raw.length;
    }
    writeFileSync(join(dir, 'weights.bin'), Buffer.concat(chunks));
    const externalPath = save('external.onnx', external);
    const fromExternal = await loadModel(externalPath);
    assert.deepEqual(Array.from(outputs(fromExternal.model)), Array.from(expected));
    assert.equal(fromExternal.fileBytes, readFileSync(externalPath).length + offset, 'the data file counts toward the model size');
    // Written back, the file stands alone (the output folder has no data file): every initializer inline, same values.
    const written = decodeModel(await encodeOnnxModel(fromExternal.model, fromExternal.onnx!, externalPath), 'written');
    assert.ok(written.graph!.initializer.every((t) => t.data_location !== 1 && t.raw_data!.length > 0));
    assert.deepEqual(written.graph!.initializer.map((t) => Buffer.from(t.raw_data!).toString('base64')), original().graph!.initializer.map((t) => Buffer.from(t.raw_data!).toString('base64')));

    const half = original();
    for (const t of half.graph!.initializer) {
      const values = floats(t.raw_data!);
      t.data_type = ONNX_DTYPE.FLOAT16;
      const bits = new Uint16Array(values.length);
      // Values representable in float16 survive exactly: round the originals to 8 mantissa bits first.
      values.forEach((v, i) => { bits[i] = toHalf(v); });
      t.raw_data = new Uint8Array(bits.buffer);
    }
    const fromHalf = await loadModel(save('half.onnx', half));
    const diff = Math.max(...Array.from(outputs(fromHalf.model), (v, i) => Math.abs(v - expected[i])));
    assert.ok(diff < 0.05 * Math.max(...Array.from(expected, Math.abs)), `float16 weights give close outputs (${diff})`);
    for (const m of [reference, fromTyped, fromExternal, fromHalf]) m.model.dispose();
  });
});

function toHalf(value: number): number {
  const f = new Float32Array([value]);
  const x = new Uint32Array(f.buffer)[0];
  const sign = (x >>> 16) & 0x8000;
  const exponent = ((x >>> 23) & 0xff) - 127 + 15;
  const mantissa = (x >>> 13) & 0x3ff;
  if (exponent <= 0) return sign;
  if (exponent >= 31) return sign | 0x7c00;
  return sign | (exponent << 10) | mantissa;
}

describe('malformed ONNX files fail in one line naming the file', () => {
  it('bytes that are not a ModelProto', async () => {
    const path = join(dir, 'text.onnx');
    writeFileSync(path, 'this is not protobuf at all, just text');
    await rejectsWith(path, /not an ONNX model/);
  });

  it('an empty file', async () => {
    const path = join(dir, 'empty.onnx');
    writeFileSync(path, '');
    await rejectsWith(path, /is empty/);
  });

  it('an opset outside what PruneLens reads', async () => {
    const model = original();
    model.opset_import[0].version = 3;
    await rejectsWith(save('opset3.onnx', model), /opset 3/, /opset_version/);
  });

  it('an input with a dynamic height', async () => {
    const model = original();
    const dims = model.graph!.input[0].type!.tensor_type!.shape!.dim!;
    dims[2] = { dim_param: 'height' };
    await rejectsWith(save('dynamic.onnx', model), /input "input" has shape \[batch, 3, height, 32\]/, /fixed input size/);
  });

  it('external data outside the model folder, and a missing data file', async () => {
    const outside = original();
    const t = outside.graph!.initializer[0];
    t.external_data = [{ key: 'location', value: '../elsewhere.bin' }];
    t.data_location = 1;
    await rejectsWith(save('outside.onnx', outside), /outside the model's folder/);
    const missing = original();
    missing.graph!.initializer[0].external_data = [{ key: 'location', value: 'gone.bin' }];
    missing.graph!.initializer[0].data_location = 1;
    await rejectsWith(save('missing.onnx', missing), /"gone\.bin"/, /cannot be read/);
  });

  it('an initializer with fewer values than its shape', async () => {
    const model = original();
    const t = model.graph!.initializer.find((i) => tensorDims(i).length === 4)!;
    t.raw_data = t.raw_data!.slice(0, 16);
    await rejectsWith(save('short.onnx', model), new RegExp(`initializer "${t.name!.replace(/\./g, '\\.')}" has 4 values`));
  });

  it('a grouped (not depthwise) convolution names the node', async () => {
    const model = original();
    // The second conv reads 16 channels; group 2 makes it two convs of 8.
    const conv = model.graph!.node.filter((n) => n.op_type === 'Conv')[1];
    conv.attribute = [...conv.attribute.filter((a) => a.name !== 'group'), { name: 'group', type: 2, i: 2 }];
    const weight = model.graph!.initializer.find((t) => t.name === conv.input[1])!;
    const dims = tensorDims(weight);
    weight.dims = [dims[0], dims[1] / 2, dims[2], dims[3]];
    weight.raw_data = weight.raw_data!.slice(0, weight.raw_data!.length / 2);
    await rejectsWith(save('grouped.onnx', model), new RegExp(`node "${conv.name!.replace(/[./]/g, '.')}" \\(Conv\\)`));
  });
});
