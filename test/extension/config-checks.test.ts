import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { checkConfigText, checkTargetAgainstCapacity } from '../../src/extension/configChecks.js';
import { makeWorkspace } from '../helpers/fixtures.js';

/** A version-1 .npy file of float32 zeros with the given shape. */
function writeNpy(path: string, shape: number[]): void {
  const dict = `{'descr': '<f4', 'fortran_order': False, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`;
  const unpadded = 10 + dict.length + 1;
  const header = dict + ' '.repeat((64 - (unpadded % 64)) % 64) + '\n';
  const prefix = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0, header.length & 0xff, header.length >> 8]);
  writeFileSync(path, Buffer.concat([prefix, Buffer.from(header, 'latin1'), Buffer.alloc(4 * shape.reduce((a, b) => a * b, 1))]));
}

const base = { model: 'model/model.json', method: 'l1', target: { flopsReduction: 0.5 }, output: 'pruned' };

test('a valid config has no findings', async () => {
  const ws = await makeWorkspace();
  const path = ws.writeConfig(base);
  assert.deepEqual(await checkConfigText(JSON.stringify(base), path), []);
});

test('a missing model and an output over the model folder are reported on their fields', async () => {
  const ws = await makeWorkspace();
  const path = join(ws.dir, 'x.prune.json');
  const missing = await checkConfigText(JSON.stringify({ ...base, model: 'nope/model.json' }), path);
  assert.deepEqual(missing.map((c) => c.path.join('.')), ['model']);
  assert.match(missing[0].message, /not found: nope\/model\.json/);
  const overwrite = await checkConfigText(JSON.stringify({ ...base, output: 'model' }), path);
  assert.deepEqual(overwrite.map((c) => c.path.join('.')), ['output']);
  assert.match(overwrite[0].message, /overwrite the input model/);
  const containing = await checkConfigText(JSON.stringify({ ...base, output: '.' }), path);
  assert.deepEqual(containing.map((c) => c.path.join('.')), ['output'], 'a folder that contains the model would be replaced');
});

test('data whose samples do not fit the model input is reported with both shapes', async () => {
  const ws = await makeWorkspace();
  writeNpy(join(ws.dir, 'x.npy'), [10, 28, 28, 1]);
  writeNpy(join(ws.dir, 'y.npy'), [10]);
  const path = join(ws.dir, 'x.prune.json');
  const npy = await checkConfigText(JSON.stringify({ ...base, data: { format: 'npy', x: 'x.npy', y: 'y.npy' } }), path);
  assert.equal(npy.length, 1);
  assert.deepEqual(npy[0].path, ['data', 'x']);
  assert.match(npy[0].message, /28×28×1.*8×8×1|28, 28, 1.*8, 8, 1/);
  writeNpy(join(ws.dir, 'x.npy'), [10, 8, 8, 1]);
  assert.deepEqual(await checkConfigText(JSON.stringify({ ...base, data: { format: 'npy', x: 'x.npy', y: 'y.npy' } }), path), []);
  const mnist = await checkConfigText(JSON.stringify({ ...base, data: { format: 'builtin', name: 'mnist' } }), path);
  assert.deepEqual(mnist.map((c) => c.path.join('.')), ['data.name']);
});

test('targets beyond what whole-channel pruning can reach are impossible', () => {
  const capacity = { prunableChannels: 36, groups: 3, maxFlopsReduction: 0.9, maxParamsReduction: 0.8 };
  assert.equal(checkTargetAgainstCapacity({ flopsReduction: 0.5 }, capacity).length, 0);
  assert.match(checkTargetAgainstCapacity({ flopsReduction: 0.95 }, capacity)[0].message, /largest reachable 0\.900/);
  assert.match(checkTargetAgainstCapacity({ channelRatio: 0.95 }, capacity)[0].message, /largest reachable 0\.917/);
  assert.match(checkTargetAgainstCapacity({ channelRatio: 0.5 }, { ...capacity, prunableChannels: 0 })[0].message, /no prunable channels/);
});

test('a config pointing at a Keras .keras or .h5 model passes the checks; data of another shape is reported against the Keras input', async () => {
  const ws = await makeWorkspace();
  writeNpy(join(ws.dir, 'y.npy'), [10]);
  for (const file of ['tiny_cnn.keras', 'tiny_cnn.h5']) {
    copyFileSync(join('test', 'fixtures', 'keras', file), join(ws.dir, file));
    const config = { ...base, model: `./${file}`, data: { format: 'npy', x: 'x.npy', y: 'y.npy' } };
    const path = join(ws.dir, 'tiny_cnn.prune.json');
    writeNpy(join(ws.dir, 'x.npy'), [10, 16, 16, 3]);
    assert.deepEqual(await checkConfigText(JSON.stringify(config), path), [], `${file}: 16×16×3 samples fit its input`);
    writeNpy(join(ws.dir, 'x.npy'), [10, 28, 28, 1]);
    const wrong = await checkConfigText(JSON.stringify(config), path);
    assert.deepEqual(wrong.map((c) => c.path.join('.')), ['data.x'], file);
    assert.match(wrong[0].message, /28×28×1.*16×16×3|28, 28, 1.*16, 16, 3/);
    const mnist = await checkConfigText(JSON.stringify({ ...config, data: { format: 'builtin', name: 'mnist' } }), path);
    assert.deepEqual(mnist.map((c) => c.path.join('.')), ['data.name'], `${file}: MNIST does not fit a 16×16×3 input`);
  }
});

test('a Keras file that is not a model is one line on the model field', async () => {
  const ws = await makeWorkspace();
  writeFileSync(join(ws.dir, 'broken.keras'), 'not a zip');
  writeFileSync(join(ws.dir, 'broken.h5'), 'not hdf5');
  for (const file of ['broken.keras', 'broken.h5']) {
    const problems = await checkConfigText(JSON.stringify({ ...base, model: file }), join(ws.dir, 'x.prune.json'));
    assert.deepEqual(problems.map((c) => c.path.join('.')), ['model'], file);
    assert.match(problems[0].message, /not a readable Keras model/);
    assert.doesNotMatch(problems[0].message, /\n/);
  }
});

test('a config pointing at an ONNX model checks .npy samples against its NCHW input; a wrong size is one line on data.x', async () => {
  const ws = await makeWorkspace();
  copyFileSync(join('test', 'fixtures', 'onnx', 'resnet_tiny.onnx'), join(ws.dir, 'resnet_tiny.onnx'));
  writeNpy(join(ws.dir, 'y.npy'), [8]);
  const config = { ...base, model: './resnet_tiny.onnx', data: { format: 'npy', x: 'x.npy', y: 'y.npy' } };
  const path = join(ws.dir, 'resnet_tiny.prune.json');
  writeNpy(join(ws.dir, 'x.npy'), [8, 3, 32, 32]);
  assert.deepEqual(await checkConfigText(JSON.stringify(config), path), [], 'NCHW [N, 3, 32, 32] samples fit the graph input [batch, 3, 32, 32]');
  writeNpy(join(ws.dir, 'x.npy'), [8, 3, 28, 28]);
  const wrong = await checkConfigText(JSON.stringify(config), path);
  assert.deepEqual(wrong.map((c) => c.path.join('.')), ['data.x']);
  assert.equal(wrong[0].message, 'The samples in x.npy are shaped [3, 28, 28] (array [8, 3, 28, 28]) but the model input is [3, 32, 32] (NCHW, as the ONNX graph takes it).');
  const mnist = await checkConfigText(JSON.stringify({ ...config, data: { format: 'builtin', name: 'mnist' } }), path);
  assert.deepEqual(mnist.map((c) => c.path.join('.')), ['data.name'], 'MNIST does not fit a 3×32×32 input');
});

test('an .onnx file that is not an ONNX model is one line on the model field', async () => {
  const ws = await makeWorkspace();
  writeFileSync(join(ws.dir, 'broken.onnx'), 'not a protobuf message at all');
  const problems = await checkConfigText(JSON.stringify({ ...base, model: 'broken.onnx' }), join(ws.dir, 'x.prune.json'));
  assert.deepEqual(problems.map((c) => c.path.join('.')), ['model']);
  assert.match(problems[0].message, /^The model file is not a readable ONNX model: is not an ONNX model .*torch\.onnx\.export/);
  assert.doesNotMatch(problems[0].message, /\n/);
});
