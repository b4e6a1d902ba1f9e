import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { checkConfigText } from '../../src/extension/configChecks.js';
import { METHOD_INFO } from '../../src/protocol/methods.js';
import { readModelInputShape, readModelOutputUnits } from '../../src/engine/config/index.js';
import { configPathFor, dataIsUnlabelled, dataOptions, describeDataSection, newConfigText, NO_LABELS_NOTE, syntheticClasses, updateConfigText, type DataChoice } from '../../src/extension/newConfig.js';
import { loadConfig } from '../../src/engine/config/index.js';
import { encodeNpy } from '../../src/engine/data/index.js';
import { getMethod } from '../../src/engine/methods/index.js';
import { makeWorkspace } from '../helpers/fixtures.js';
import { nsfwjsAvailable, nsfwjsModel } from '../helpers/real-models.js';

const choices = { method: 'goprune', target: { flopsReduction: 0.5 } };
const kinds = (options: { kind: string }[]) => options.map((o) => o.kind);

/** A model.json with only the topology the editor reads: its input shape and output units. */
function writeTopologyOnlyModel(dir: string, inputShape: number[], classes: number): string {
  mkdirSync(dir, { recursive: true });
  const file = join(dir, 'model.json');
  writeFileSync(file, JSON.stringify({
    format: 'layers-model',
    modelTopology: { class_name: 'Sequential', config: { name: 'm', layers: [
      { class_name: 'Flatten', config: { name: 'flatten', batch_input_shape: [null, ...inputShape] } },
      { class_name: 'Dense', config: { name: 'out', units: classes, activation: 'softmax' } },
    ] } },
    weightsManifest: [],
  }));
  return file;
}

test('the data step offers the built-in set first only when the model takes 28×28×1 images in 10 classes', () => {
  const installed = { fashionMnist: true };
  assert.deepEqual(kinds(dataOptions({ inputShape: [28, 28, 1], classes: 10 }, 'goprune', installed)), ['builtin', 'builtin', 'imagefolder', 'npy', 'npy-unlabelled', 'synthetic']);
  assert.deepEqual(dataOptions({ inputShape: [784], classes: 10 }, 'goprune', { fashionMnist: false }).map((o) => o.label),
    ['MNIST (built in)', 'Pick .npy files…', 'Pick an .npy file without labels…', 'Synthetic data (pipeline check only; accuracy is meaningless)']);
  // 28×28×1 with fewer than 10 outputs: MNIST's labels would not fit.
  assert.deepEqual(kinds(dataOptions({ inputShape: [28, 28, 1], classes: 5 }, 'goprune', installed)), ['imagefolder', 'npy', 'npy-unlabelled', 'synthetic']);
  // Pruning without data is offered only to methods that need none; synthetic data is always last.
  assert.deepEqual(kinds(dataOptions({ inputShape: [32, 32, 3], classes: 10 }, 'l1', installed)), ['imagefolder', 'npy', 'npy-unlabelled', 'none', 'synthetic']);
  assert.deepEqual(kinds(dataOptions({ inputShape: [20], classes: 2 }, 'ssr', installed)), ['npy', 'npy-unlabelled', 'synthetic']);
  for (const option of dataOptions({ inputShape: [28, 28, 1], classes: 10 }, 'l1', installed)) assert.ok(option.description.length > 10, `${option.label} says what it does`);
});

test('the real nsfwjs MobileNetV2 (224×224×3, 5 classes) gets its own data or an explicit choice, never MNIST', { skip: !nsfwjsAvailable() && 'nsfwjs is not installed' }, async () => {
  const model = nsfwjsModel('mobilenet_v2');
  const shape = { inputShape: await readModelInputShape(model), classes: await readModelOutputUnits(model) };
  assert.deepEqual(shape, { inputShape: [224, 224, 3], classes: 5 });
  const options = dataOptions(shape, 'goprune', { fashionMnist: true });
  assert.equal(options[0].label, 'Pick a data folder…');
  assert.equal(options.at(-1)!.kind, 'synthetic');
  assert.ok(!options.some((o) => o.kind === 'builtin'));
  assert.equal(kinds(dataOptions(shape, 'l1')).at(-2), 'none');
});

test('each data choice writes a config the engine loads, with paths relative to the config', async () => {
  const ws = await makeWorkspace();
  const configPath = configPathFor(ws.modelPath);
  assert.equal(configPath, join(ws.dir, 'model', 'model.prune.json'));
  mkdirSync(join(ws.dir, 'data', 'train', 'cat'), { recursive: true });
  mkdirSync(join(ws.dir, 'data', 'train', 'dog'), { recursive: true });
  writeFileSync(join(ws.dir, 'data', 'x.npy'), encodeNpy(new Float32Array(4 * 64), [4, 8, 8, 1]));
  writeFileSync(join(ws.dir, 'data', 'y.npy'), encodeNpy(Int32Array.from([0, 1, 2, 0]), [4]));

  const write = (data: DataChoice) => {
    const text = newConfigText(ws.modelPath, { ...choices, data });
    writeFileSync(configPath, text);
    return { json: JSON.parse(text), config: loadConfig(configPath), text };
  };

  const folder = write({ kind: 'imagefolder', path: join(ws.dir, 'data', 'train') });
  assert.deepEqual(folder.json.data, { format: 'imagefolder', path: '../data/train' });
  assert.equal(folder.config.data?.format === 'imagefolder' && folder.config.data.path, join(ws.dir, 'data', 'train'));
  assert.deepEqual(folder.json.train, { epochs: 1 });

  const npy = write({ kind: 'npy', x: join(ws.dir, 'data', 'x.npy'), y: join(ws.dir, 'data', 'y.npy') });
  assert.deepEqual(npy.json.data, { format: 'npy', x: '../data/x.npy', y: '../data/y.npy' });
  assert.deepEqual(await checkConfigText(npy.text, configPath), [], 'the editor finds the files and their shapes fit the model');

  const builtin = write({ kind: 'builtin', name: 'mnist' });
  assert.deepEqual(builtin.json.data, { format: 'builtin', name: 'mnist', trainLimit: 10000, testLimit: 2000 });

  const synthetic = write({ kind: 'synthetic', classes: 3 });
  assert.deepEqual(synthetic.json.data, { format: 'synthetic', samples: 512, classes: 3 });

  // One-shot: no data, and nothing to train or fine-tune.
  const oneShot = write({ kind: 'none' });
  assert.deepEqual(Object.keys(oneShot.json), ['model', 'method', 'target', 'output']);
  assert.equal(oneShot.config.data, undefined);
  assert.deepEqual(JSON.parse(newConfigText(ws.modelPath, { ...choices, data: { kind: 'none' } })).model, './model.json');
});

test('a config is synthetic only when synthetic data was chosen', async () => {
  const ws = await makeWorkspace();
  const mnistModel = writeTopologyOnlyModel(join(ws.dir, 'digits'), [28, 28, 1], 10);
  const rgbModel = writeTopologyOnlyModel(join(ws.dir, 'photos'), [96, 96, 3], 5);
  for (const model of [mnistModel, rgbModel, ws.modelPath]) {
    const shape = { inputShape: await readModelInputShape(model), classes: await readModelOutputUnits(model) };
    for (const method of METHOD_INFO.map((m) => m.id)) {
      const first = dataOptions(shape, method, { fashionMnist: false })[0];
      assert.notEqual(first.kind, 'synthetic', `${model} ${method}: synthetic data is never the default`);
      const data: DataChoice = first.kind === 'builtin' ? { kind: 'builtin', name: first.name } : { kind: 'none' };
      const written = JSON.parse(newConfigText(model, { method, target: { flopsReduction: 0.3 }, data }));
      assert.notEqual(written.data?.format, 'synthetic');
    }
  }
});

test('updating an existing config replaces method, target and data and keeps the rest', () => {
  const configPath = '/work/models/cnn/cnn.prune.json';
  const text = '{\n  // mine\n  "model": "./model.json",\n  "method": "l1",\n  "target": { "flopsReduction": 0.3 },\n  "output": "out",\n  "data": { "format": "synthetic", "samples": 64, "classes": 3 },\n  "seed": 7\n}\n';
  const kept = updateConfigText(text, choices, configPath);
  assert.match(kept, /\/\/ mine/);
  assert.match(kept, /"format": "synthetic"/, 'no data choice: the data is kept');
  assert.match(kept, /"method": "goprune"/);
  const npy = updateConfigText(text, { ...choices, data: { kind: 'npy', x: '/work/models/data/x.npy', y: '/work/models/data/y.npy' } }, configPath);
  assert.doesNotMatch(npy, /synthetic/);
  assert.match(npy, /"x": "\.\.\/data\/x\.npy"/);
  assert.match(npy, /"seed": 7/);
  const none = updateConfigText(text, { ...choices, data: { kind: 'none' } }, configPath);
  assert.doesNotMatch(none, /"data"/);
});

test('data without labels writes "objective": "distill" and the flow says so; labelled data leaves the objective to the engine', async () => {
  const ws = await makeWorkspace();
  const configPath = configPathFor(ws.modelPath);
  mkdirSync(join(ws.dir, 'data', 'classes', 'cat'), { recursive: true });
  mkdirSync(join(ws.dir, 'data', 'classes', 'dog'), { recursive: true });
  mkdirSync(join(ws.dir, 'data', 'photos'), { recursive: true });
  writeFileSync(join(ws.dir, 'data', 'photos', 'a.png'), '');
  writeFileSync(join(ws.dir, 'data', 'x.npy'), encodeNpy(new Float32Array(4 * 64), [4, 8, 8, 1]));
  writeFileSync(join(ws.dir, 'data', 'y.npy'), encodeNpy(Int32Array.from([0, 1, 2, 0]), [4]));
  const write = (data: DataChoice) => {
    const text = newConfigText(ws.modelPath, { ...choices, data });
    writeFileSync(configPath, text);
    return { json: JSON.parse(text), config: loadConfig(configPath), text };
  };

  const npy = write({ kind: 'npy', x: join(ws.dir, 'data', 'x.npy') });
  assert.deepEqual(npy.json.data, { format: 'npy', x: '../data/x.npy' }, 'no y written');
  assert.equal(npy.json.objective, 'distill');
  assert.equal(npy.config.objective, 'distill', 'the engine reads it');
  assert.deepEqual(await checkConfigText(npy.text, configPath), [], 'the editor finds nothing to fix');
  assert.ok(dataIsUnlabelled(npy.json.data, configPath));

  const folder = write({ kind: 'imagefolder', path: join(ws.dir, 'data', 'photos') });
  assert.equal(folder.json.objective, 'distill', 'images directly in the folder have no labels');
  const classes = write({ kind: 'imagefolder', path: join(ws.dir, 'data', 'classes') });
  assert.equal(classes.json.objective, undefined, 'class subfolders are labels: the engine picks the task loss');
  const labelled = write({ kind: 'npy', x: join(ws.dir, 'data', 'x.npy'), y: join(ws.dir, 'data', 'y.npy') });
  assert.equal(labelled.json.objective, undefined);
  assert.equal(write({ kind: 'builtin', name: 'mnist' }).json.objective, undefined);
  assert.ok(dataIsUnlabelled({ format: 'images', glob: 'photos/**/*.jpg' }, configPath), 'an images glob has no labels');
  assert.ok(!dataIsUnlabelled(undefined, configPath));

  // Updating a config to unlabelled data (or keeping unlabelled data) replaces a task objective; labelled data keeps what is there.
  const text = '{\n  "model": "./model.json",\n  "method": "l1",\n  "target": { "flopsReduction": 0.3 },\n  "objective": "task",\n  "data": { "format": "images", "glob": "../data/photos/*.png" }\n}\n';
  assert.match(updateConfigText(text, choices, configPath), /"objective": "distill"/, 'kept glob data');
  assert.match(updateConfigText(text, { ...choices, data: { kind: 'npy', x: join(ws.dir, 'data', 'x.npy') } }, configPath), /"objective": "distill"/);
  assert.match(updateConfigText(text, { ...choices, data: { kind: 'builtin', name: 'mnist' } }, configPath), /"objective": "task"/);
  const noObjective = '{\n  "model": "./model.json",\n  "method": "l1",\n  "target": { "flopsReduction": 0.3 }\n}\n';
  const updated = updateConfigText(noObjective, { ...choices, data: { kind: 'imagefolder', path: join(ws.dir, 'data', 'photos') } }, configPath);
  assert.equal(JSON.parse(updated).objective, 'distill');

  assert.match(NO_LABELS_NOTE, /^No labels: the pruned model learns from the dense model \(distillation\)/);
  assert.equal(describeDataSection(npy.json.data), '../data/x.npy, no labels (distillation)');
  assert.equal(describeDataSection({ format: 'images', glob: 'p/*.jpg' }), 'images p/*.jpg, no labels (distillation)');
  const unlabelledOption = dataOptions({ inputShape: [8, 8, 1], classes: 3 }, 'l1', { fashionMnist: false }).find((o) => o.kind === 'npy-unlabelled');
  assert.match(unlabelledOption!.description, /distillation/, 'the data step says what no labels means before the user picks');
});

test("the editor's needsData matches every engine method's", () => {
  for (const info of METHOD_INFO) assert.equal(info.needsData, getMethod(info.id).needsData, info.id);
});

test('Prune Model… on a Keras file writes <name>.prune.json beside it, and its data step reads the Keras input shape', async () => {
  const ws = await makeWorkspace();
  for (const file of ['tiny_cnn.keras', 'tiny_cnn.h5']) {
    const modelPath = join(ws.dir, 'keras', file);
    mkdirSync(join(ws.dir, 'keras'), { recursive: true });
    copyFileSync(join('test', 'fixtures', 'keras', file), modelPath);
    const configPath = configPathFor(modelPath);
    assert.equal(configPath, join(ws.dir, 'keras', 'tiny_cnn.prune.json'), file);
    const shape = { inputShape: await readModelInputShape(modelPath), classes: await readModelOutputUnits(modelPath) };
    assert.deepEqual(shape, { inputShape: [16, 16, 3], classes: 5 }, file);
    assert.deepEqual(kinds(dataOptions(shape, 'l1', { fashionMnist: false })), ['imagefolder', 'npy', 'npy-unlabelled', 'none', 'synthetic'], 'no MNIST for a 16×16×3 model');
    const text = newConfigText(modelPath, { method: 'l1', target: { flopsReduction: 0.3 }, data: { kind: 'synthetic', classes: syntheticClasses(shape) } });
    assert.deepEqual(JSON.parse(text), {
      model: `./${file}`, method: 'l1', target: { flopsReduction: 0.3 }, output: 'pruned',
      data: { format: 'synthetic', samples: 512, classes: 5 }, train: { epochs: 1 }, finetune: { epochs: 1 },
    });
    writeFileSync(configPath, text);
    assert.equal(loadConfig(configPath).model, modelPath);
    assert.deepEqual(await checkConfigText(text, configPath), [], 'the editor reads the Keras model the config points at');
  }
});

test('Prune Model… on an ONNX file writes <name>.prune.json beside it, and its data step reads the runtime input shape from the graph', async () => {
  const ws = await makeWorkspace();
  const modelPath = join(ws.dir, 'onnx', 'resnet_tiny.onnx');
  mkdirSync(join(ws.dir, 'onnx'), { recursive: true });
  copyFileSync(join('test', 'fixtures', 'onnx', 'resnet_tiny.onnx'), modelPath);
  const configPath = configPathFor(modelPath);
  assert.equal(configPath, join(ws.dir, 'onnx', 'resnet_tiny.prune.json'));
  const shape = { inputShape: await readModelInputShape(modelPath), classes: await readModelOutputUnits(modelPath) };
  assert.deepEqual(shape, { inputShape: [32, 32, 3], classes: 10 }, 'the graph input [batch, 3, 32, 32] as the NHWC runtime model takes it; output [batch, 10]');
  assert.deepEqual(kinds(dataOptions(shape, 'l1', { fashionMnist: false })), ['imagefolder', 'npy', 'npy-unlabelled', 'none', 'synthetic'], 'no MNIST for a 32×32×3 model');
  const text = newConfigText(modelPath, { method: 'l1', target: { flopsReduction: 0.3 }, data: { kind: 'synthetic', classes: syntheticClasses(shape) } });
  assert.equal(JSON.parse(text).model, './resnet_tiny.onnx');
  writeFileSync(configPath, text);
  assert.equal(loadConfig(configPath).model, modelPath);
  assert.deepEqual(await checkConfigText(text, configPath), [], 'the editor reads the ONNX model the config points at');
});
