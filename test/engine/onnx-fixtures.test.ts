import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { loadModel } from '../../src/engine/io/index.js';
import { decodeModel, ONNX_DTYPE, tensorDims, type OnnxModel, type OnnxTensor } from '../../src/engine/io/onnx/proto.js';
import { encodeOnnxModel } from '../../src/engine/io/onnx/write.js';
import { onnxRuntime, runOnnx } from '../../src/engine/io/onnx/runtime.js';
import { readNpy } from '../../src/engine/data/npy.js';
import { analyzeModel } from '../../src/engine/graph/analyze.js';
import { unitNorms } from '../../src/engine/metrics/index.js';
import { selectUnits } from '../../src/engine/prune/select.js';
import { removeUnits } from '../../src/engine/surgery/index.js';
import { everyOtherUnit, maskThenRemove } from '../helpers/models.js';

/**
 * Real PyTorch exports of torchvision architectures (scripts/onnx-fixtures): import, write back,
 * remove planted zero channels and prune, each checked against ONNX Runtime, the runtime users deploy with.
 */

const DIR = 'test/fixtures/onnx';
const listing = JSON.parse(readFileSync(join(DIR, 'fixtures.json'), 'utf8')) as { fixtures: { name: string; file: string; input: string; output: string }[] };

before(async () => {
  await tf.setBackend('cpu');
});

function nchwInput(name: string): { data: Float32Array; shape: number[] } {
  const x = readNpy(join(DIR, `${name}.input.npy`));
  return { data: Float32Array.from(x.data as Float32Array), shape: x.shape };
}

function predictNchw(model: tf.LayersModel, input: { data: Float32Array; shape: number[] }): Float32Array {
  return tf.tidy(() => {
    const x = tf.transpose(tf.tensor(input.data, input.shape), [0, 2, 3, 1]);
    return (model.predict(x) as tf.Tensor).dataSync() as Float32Array;
  });
}

/** max |a − b| over max |b|: relative to the outputs' scale (some random-init logits are tiny). */
function relativeDifference(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  assert.equal(actual.length, expected.length);
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < expected.length; i++) {
    diff = Math.max(diff, Math.abs(actual[i] - expected[i]));
    scale = Math.max(scale, Math.abs(expected[i]));
  }
  return diff / Math.max(scale, 1e-12);
}

function floatParams(model: OnnxModel): number {
  return model.graph!.initializer.filter((t) => t.data_type === ONNX_DTYPE.FLOAT).reduce((n, t) => n + tensorDims(t).reduce((m, d) => m * d, 1), 0);
}

function storedBytes(t: OnnxTensor): string {
  return JSON.stringify({ dims: tensorDims(t), type: t.data_type, raw: Buffer.from(t.raw_data ?? []).toString('base64'), floats: t.float_data ?? [] });
}

let hasRuntime = false;
before(async () => {
  hasRuntime = Boolean(await onnxRuntime());
});

for (const fixture of listing.fixtures) {
  const path = join(DIR, fixture.file);
  describe(`ONNX fixture ${fixture.name}`, () => {
    it('imports with outputs equal to ONNX Runtime\'s (relative 1e-4)', async () => {
      const loaded = await loadModel(path);
      const expected = readNpy(join(DIR, fixture.output)).data as Float32Array;
      const diff = relativeDifference(predictNchw(loaded.model, nchwInput(fixture.name)), expected);
      assert.ok(diff < 1e-4, `relative difference ${diff}`);
      assert.equal(loaded.format, 'onnx');
      loaded.model.dispose();
    });

    it('writes back unchanged when nothing is pruned: same nodes, byte-for-byte initializers', async () => {
      const loaded = await loadModel(path);
      const original = decodeModel(readFileSync(path), path);
      const bytes = await encodeOnnxModel(loaded.model, loaded.onnx!, path);
      const written = decodeModel(bytes, 'written');
      assert.deepEqual(written.graph!.node.map((n) => `${n.name}:${n.op_type}:${n.input.join(',')}`), original.graph!.node.map((n) => `${n.name}:${n.op_type}:${n.input.join(',')}`));
      assert.deepEqual(written.opset_import.map((o) => Number(o.version)), original.opset_import.map((o) => Number(o.version)));
      assert.equal(written.producer_name, original.producer_name);
      assert.deepEqual(written.graph!.initializer.map(storedBytes), original.graph!.initializer.map(storedBytes));
      if (hasRuntime) {
        const [out] = await runOnnx(bytes, nchwInput(fixture.name));
        assert.deepEqual(Array.from(out.data), Array.from(readNpy(join(DIR, fixture.output)).data as Float32Array));
      }
      loaded.model.dispose();
    });

    it('removing planted all-zero channels keeps the outputs and counts the narrower parameters exactly', async () => {
      const loaded = await loadModel(path);
      const graph = analyzeModel(loaded.model);
      const units = everyOtherUnit(graph, 3, 1);
      assert.ok(units.length > 0, 'some channels are prunable');
      const { pruned, removal } = await maskThenRemove(loaded.model, graph, units);
      assert.ok(removal < 1e-4, `removal changed the outputs by ${removal}`);
      const bytes = await encodeOnnxModel(pruned, loaded.onnx!, path);
      const written = decodeModel(bytes, 'written');
      assert.equal(floatParams(written), pruned.countParams());
      assert.ok(floatParams(written) < floatParams(decodeModel(readFileSync(path), path)));
      if (hasRuntime) {
        const input = nchwInput(fixture.name);
        const [out] = await runOnnx(bytes, input);
        const diff = relativeDifference(out.data, predictNchw(loaded.model, input));
        assert.ok(diff < 1e-4, `ONNX Runtime on the narrowed file differs from the masked model by ${diff}`);
      }
      pruned.dispose();
      loaded.model.dispose();
    });

    it('l1 at −30% FLOPs writes a file ONNX Runtime runs, with the pruned model\'s outputs', async (t) => {
      if (!hasRuntime) return t.skip('onnxruntime-node is not installed');
      const loaded = await loadModel(path);
      const graph = analyzeModel(loaded.model);
      const units = selectUnits(graph, loaded.model, unitNorms(loaded.model, graph, 'l1'), { flopsReduction: 0.3 }, { scope: 'global' });
      const pruned = await removeUnits(loaded.model, graph, units);
      const bytes = await encodeOnnxModel(pruned, loaded.onnx!, path);
      assert.ok(bytes.byteLength < readFileSync(path).byteLength, 'the pruned file is smaller');
      const input = nchwInput(fixture.name);
      const [out] = await runOnnx(bytes, input);
      assert.deepEqual(out.shape, [input.shape[0], 10]);
      const diff = relativeDifference(out.data, predictNchw(pruned, input));
      assert.ok(diff < 1e-4, `ONNX Runtime differs from the pruned runtime model by ${diff}`);
      pruned.dispose();
      loaded.model.dispose();
    });
  });
}
