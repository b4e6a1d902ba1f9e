import * as tf from '@tensorflow/tfjs';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { unzipSync, zipSync } from 'fflate';
import { UserError } from '../../src/engine/errors.js';
import { loadModel, type LoadedModel } from '../../src/engine/io/index.js';
import { kerasSnakeCase } from '../../src/engine/io/keras/load.js';
import { readNpy } from '../../src/engine/data/npy.js';
import { makeTempDir } from '../helpers/io.js';
import { h5wasm, keras2File, writeHdf5 } from '../helpers/keras2.js';

/** Golden files written by Keras 3.15.1 (test/fixtures/keras/README.md), with Keras' parameter counts. */
const FIXTURES = 'test/fixtures/keras';
const KERAS_PARAMS: Record<string, number> = {
  tiny_cnn: 1197, mobilenet_block: 1108, squeeze_excite: 1121, concat_dense: 9187, sequential_cnn: 899, two_heads: 450,
};
const RTOL = 1e-4;
const ATOL = 1e-6;

let temp: { dir: string; remove: () => void };
before(async () => {
  await tf.setBackend('cpu');
  temp = makeTempDir('prunelens-keras-');
});
after(() => temp.remove());

/** Keras' outputs of a fixture, one array per model output. */
function expectedOutputs(name: string): { data: Float32Array; shape: number[] }[] {
  const single = join(FIXTURES, `${name}.outputs.npy`);
  const files = existsSync(single) ? [single] : [0, 1, 2, 3].map((i) => join(FIXTURES, `${name}.outputs.${i}.npy`)).filter(existsSync);
  return files.map((f) => {
    const npy = readNpy(f);
    return { data: npy.data as Float32Array, shape: npy.shape };
  });
}

/** The largest |got − want| over all outputs; asserts each within RTOL·|want| + ATOL. */
function compareWithKeras(loaded: LoadedModel, name: string): number {
  const input = readNpy(join(FIXTURES, `${name}.inputs.npy`));
  const x = tf.tensor(input.data as Float32Array, input.shape);
  const predicted = loaded.model.predict(x) as tf.Tensor | tf.Tensor[];
  const outputs = Array.isArray(predicted) ? predicted : [predicted];
  const expected = expectedOutputs(name);
  assert.equal(outputs.length, expected.length, 'one output per Keras output');
  let maxDiff = 0;
  outputs.forEach((out, o) => {
    assert.deepEqual(out.shape, expected[o].shape);
    const got = out.dataSync();
    const want = expected[o].data;
    for (let i = 0; i < want.length; i++) {
      const diff = Math.abs(got[i] - want[i]);
      maxDiff = Math.max(maxDiff, diff);
      assert.ok(diff <= RTOL * Math.abs(want[i]) + ATOL, `${name} output ${o}[${i}]: ${got[i]} vs Keras ${want[i]}`);
    }
  });
  tf.dispose([x, ...outputs]);
  return maxDiff;
}

describe('Keras files written by Keras 3.15.1 load and compute what Keras computed', () => {
  for (const name of Object.keys(KERAS_PARAMS)) {
    for (const ext of ['.keras', '.h5']) {
      it(`${name}${ext}`, async (t) => {
        const loaded = await loadModel(join(FIXTURES, `${name}${ext}`));
        try {
          const maxDiff = compareWithKeras(loaded, name);
          t.diagnostic(`max |difference| ${maxDiff.toExponential(2)}`);
          assert.equal(loaded.model.countParams(), KERAS_PARAMS[name], 'parameter count as Keras counts it');
          const keras = loaded.keras!;
          assert.equal(loaded.format, ext.slice(1));
          assert.equal(keras.kind, ext.slice(1));
          assert.equal(keras.style, 'keras3');
          assert.equal(keras.kerasVersion, '3.15.1');
          assert.deepEqual(keras.weights.map((w) => w.weight), loaded.model.layers.flatMap((l) => l.weights.map((w) => w.originalName)), 'a file location for every weight, in layer order');
        } finally {
          loaded.model.dispose();
        }
      });
    }
  }
});

describe('the serialization record keeps what writing the file back needs', () => {
  it('.keras: weights keyed by class in model.layers order, repeated classes numbered (not by layer name)', async () => {
    const loaded = await loadModel(join(FIXTURES, 'concat_dense.keras'));
    const keras = loaded.keras!;
    // model.layers lists the 1×1 branch conv2d_1 before conv2d: the class key follows that order.
    assert.equal(keras.layerGroups!.conv2d_1, 'layers/conv2d');
    assert.equal(keras.layerGroups!.conv2d, 'layers/conv2d_1');
    assert.equal(keras.layerGroups!.conv2d_2, 'layers/conv2d_2');
    assert.equal(keras.layerGroups!.dense_1, 'layers/dense_1');
    const where = new Map(keras.weights.map((w) => [w.weight, w.path]));
    assert.equal(where.get('conv2d_1/kernel'), 'layers/conv2d/vars/0');
    assert.equal(where.get('conv2d/kernel'), 'layers/conv2d_1/vars/0');
    assert.equal(where.get('conv2d/bias'), 'layers/conv2d_1/vars/1');
    assert.deepEqual(loaded.model.getLayer('conv2d').getWeights()[0].shape, [3, 3, 3, 6]);
    assert.deepEqual(loaded.model.getLayer('conv2d_1').getWeights()[0].shape, [1, 1, 3, 4]);
    const archive = unzipSync(readFileSync(join(FIXTURES, 'concat_dense.keras')));
    assert.deepEqual(keras.modelConfig, JSON.parse(Buffer.from(archive['config.json']).toString('utf8')), 'config.json as the file holds it');
    assert.equal(keras.metadata!.keras_version, '3.15.1');
    assert.deepEqual([...keras.archiveEntries!].sort(), ['config.json', 'metadata.json', 'model.weights.h5']);
    loaded.model.dispose();
  });

  it('.h5: weights at model_weights/<layer>/<weight_names entry>, root attributes kept', async () => {
    const loaded = await loadModel(join(FIXTURES, 'mobilenet_block.h5'));
    const keras = loaded.keras!;
    const where = new Map(keras.weights.map((w) => [w.weight, w.path]));
    assert.equal(where.get('Conv1/kernel'), 'model_weights/Conv1/Conv1/kernel');
    assert.equal(where.get('bn_Conv1/moving_variance'), 'model_weights/bn_Conv1/bn_Conv1/moving_variance');
    // Keras 3 names the depthwise weight `kernel`; the runtime model calls it depthwise_kernel.
    assert.equal(where.get('block_1_depthwise/depthwise_kernel'), 'model_weights/block_1_depthwise/block_1_depthwise/kernel');
    assert.equal(keras.rootAttributes!.keras_version, '3.15.1');
    assert.equal(keras.rootAttributes!.backend, 'jax');
    assert.equal(keras.backend, 'jax');
    assert.equal((keras.modelConfig as { class_name: string }).class_name, 'Functional');
    loaded.model.dispose();
  });

  it("Keras' snake_case of class names", () => {
    assert.equal(kerasSnakeCase('ReLU'), 're_lu');
    assert.equal(kerasSnakeCase('Conv2D'), 'conv2d');
    assert.equal(kerasSnakeCase('DepthwiseConv2D'), 'depthwise_conv2d');
    assert.equal(kerasSnakeCase('BatchNormalization'), 'batch_normalization');
    assert.equal(kerasSnakeCase('GlobalAveragePooling2D'), 'global_average_pooling2d');
    assert.equal(kerasSnakeCase('InputLayer'), 'input_layer');
  });
});

type Json = Record<string, any>;

describe('Keras 2-style .h5 (written here with h5wasm in Keras 2\'s layout; no real Keras 2 is available)', () => {
  for (const name of ['tiny_cnn', 'mobilenet_block']) {
    it(`${name}: batch_input_shape, nested-list inbound_nodes, weight names with :0`, async (t) => {
      const h5 = await h5wasm();
      const file = join(temp.dir, `${name}-keras2.h5`);
      writeFileSync(file, keras2File(h5, name));
      const loaded = await loadModel(file);
      try {
        assert.equal(loaded.keras!.style, 'keras2');
        assert.equal(loaded.keras!.kerasVersion, '2.15.0');
        t.diagnostic(`max |difference| ${compareWithKeras(loaded, name).toExponential(2)}`);
        assert.equal(loaded.model.countParams(), KERAS_PARAMS[name]);
      } finally {
        loaded.model.dispose();
      }
    });
  }
});

/** Loading rejects with one UserError line that names `file` and matches every pattern. */
async function rejectsWith(file: string, ...patterns: (RegExp | string)[]): Promise<void> {
  await assert.rejects(loadModel(file), (err: unknown) => {
    assert.ok(err instanceof UserError, `expected a UserError, got ${String(err)}`);
    assert.ok(err.message.startsWith(`${file}: `), `message should name ${file}: ${err.message}`);
    assert.doesNotMatch(err.message, /\n/, 'one line');
    for (const p of patterns) assert.match(err.message, typeof p === 'string' ? new RegExp(p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')) : p);
    return true;
  });
}

describe('broken Keras files give one line naming the file', () => {
  it('a truncated .keras archive', async () => {
    const bytes = readFileSync(join(FIXTURES, 'tiny_cnn.keras'));
    const file = join(temp.dir, 'cut.keras');
    writeFileSync(file, bytes.subarray(0, bytes.length >> 1));
    await rejectsWith(file, 'the .keras archive is truncated or corrupt');
  });

  it('a .keras archive whose model.weights.h5 is truncated', async () => {
    const archive = unzipSync(readFileSync(join(FIXTURES, 'tiny_cnn.keras')));
    const weights = archive['model.weights.h5'];
    archive['model.weights.h5'] = weights.subarray(0, weights.length - 4000);
    const file = join(temp.dir, 'cut-weights.keras');
    writeFileSync(file, zipSync(archive));
    await rejectsWith(file, `model.weights.h5 cannot be opened as HDF5: the file is truncated (${weights.length - 4000} of ${weights.length} bytes)`);
  });

  it('a truncated .h5', async () => {
    const bytes = readFileSync(join(FIXTURES, 'tiny_cnn.h5'));
    const file = join(temp.dir, 'cut.h5');
    writeFileSync(file, bytes.subarray(0, 20000));
    await rejectsWith(file, `cannot be opened as HDF5: the file is truncated (20000 of ${bytes.length} bytes)`);
  });

  it('an HDF5 file that is not a Keras model', async () => {
    const h5 = await h5wasm();
    const file = join(temp.dir, 'measurements.h5');
    writeFileSync(file, writeHdf5(h5, (root) => {
      root.create_dataset({ name: 'temperature', data: new Float32Array([20.5, 21, 19.75]), shape: [3], dtype: '<f' });
      root.create_attribute('instrument', 'thermometer');
    }));
    await rejectsWith(file, 'is an HDF5 file but not a Keras model: it has no model_config attribute');
  });

  it('a Keras weights-only file (save_weights)', async () => {
    const h5 = await h5wasm();
    const file = join(temp.dir, 'only.weights.h5');
    writeFileSync(file, writeHdf5(h5, (root) => {
      root.create_group('layers');
      root.create_group('vars');
    }));
    await rejectsWith(file, 'holds Keras weights only', 'model.save');
  });

  it('a zip that is not a .keras archive, and files under the wrong extension', async () => {
    const zip = join(temp.dir, 'notes.keras');
    writeFileSync(zip, zipSync({ 'readme.txt': Buffer.from('hello') }));
    await rejectsWith(zip, 'the .keras archive has no config.json');
    const h5named = join(temp.dir, 'model-h5.keras');
    writeFileSync(h5named, readFileSync(join(FIXTURES, 'tiny_cnn.h5')));
    await rejectsWith(h5named, 'is an HDF5 file named .keras', 'Rename it to .h5');
    const zipNamed = join(temp.dir, 'model-zip.h5');
    writeFileSync(zipNamed, readFileSync(join(FIXTURES, 'tiny_cnn.keras')));
    await rejectsWith(zipNamed, 'is a zip archive (a .keras file?) named .h5', 'Rename it to .keras');
  });

  it('an unsupported layer option names the layer and class', async () => {
    const archive = unzipSync(readFileSync(join(FIXTURES, 'tiny_cnn.keras')));
    const config = JSON.parse(Buffer.from(archive['config.json']).toString('utf8'));
    const conv = config.config.layers.find((l: Json) => l.class_name === 'Conv2D');
    conv.config.groups = 2;
    archive['config.json'] = Buffer.from(JSON.stringify(config));
    const file = join(temp.dir, 'grouped.keras');
    writeFileSync(file, zipSync(archive));
    await rejectsWith(file, `layer "${conv.name}" (Conv2D): grouped convolution (groups=2)`);
    conv.config.groups = 1;
    conv.class_name = 'RandomFlip';
    archive['config.json'] = Buffer.from(JSON.stringify(config));
    writeFileSync(file, zipSync(archive));
    await rejectsWith(file, `layer "${conv.name}" is a RandomFlip, a layer class TF.js layers does not have`);
  });
});
