import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig, validateConfigText } from '../../src/engine/config/index.js';
import { UserError } from '../../src/engine/errors.js';

function workspace(): string {
  const dir = mkdtempSync(join(tmpdir(), 'prunelens-config-'));
  mkdirSync(join(dir, 'model'));
  writeFileSync(join(dir, 'model', 'model.json'), '{}');
  return dir;
}

function writeConfig(dir: string, config: unknown, name = 'run.prune.json'): string {
  const path = join(dir, name);
  writeFileSync(path, typeof config === 'string' ? config : JSON.stringify(config, null, 2));
  return path;
}

const minimal = { model: 'model/model.json', method: 'l1', target: { flopsReduction: 0.5 }, output: 'pruned' };

test('a minimal config resolves paths relative to the config file and applies defaults', () => {
  const dir = workspace();
  const config = loadConfig(writeConfig(dir, minimal));
  assert.equal(config.model, join(dir, 'model', 'model.json'));
  assert.equal(config.output, join(dir, 'pruned'));
  assert.equal(config.scope, 'global');
  assert.equal(config.backend, 'auto');
  assert.deepEqual(config.target, { flopsReduction: 0.5 });
  assert.equal(config.train, undefined, 'no training without data');
});

test('training sections get defaults when data is given', () => {
  const dir = workspace();
  const config = loadConfig(writeConfig(dir, { ...minimal, data: { format: 'synthetic', samples: 10, classes: 2 }, finetune: { epochs: 3 } }));
  assert.equal(config.finetune?.epochs, 3);
  assert.equal(config.finetune?.optimizer, 'sgd');
  assert.equal(config.train?.epochs, 1);
});

function expectUserError(fn: () => unknown, ...fragments: string[]): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof UserError, `expected a UserError, got ${String(err)}`);
    for (const f of fragments) assert.ok(err.message.includes(f), `"${err.message}" should mention "${f}"`);
    assert.ok(!/\n\s+at /.test(err.message), 'no stack trace in the message');
    return true;
  });
}

test('bad configs give one line naming the file, the field and the fix', () => {
  const dir = workspace();
  expectUserError(() => loadConfig(writeConfig(dir, { ...minimal, method: 'magic' })), 'run.prune.json', 'method', 'goprune');
  expectUserError(() => loadConfig(writeConfig(dir, { ...minimal, target: { flopsReduction: 1.5 } })), 'target.flopsReduction', '1.5', 'between 0 and 1');
  expectUserError(() => loadConfig(writeConfig(dir, { ...minimal, target: { flopsReduction: 0.5, channelRatio: 0.2 } })), 'exactly one of');
  expectUserError(() => loadConfig(writeConfig(dir, { ...minimal, outptu: 'x' })), 'outptu', 'did you mean "output"');
  expectUserError(() => loadConfig(writeConfig(dir, { ...minimal, model: 'nope/model.json' })), 'model', 'model file not found: nope/model.json', 'Point "model" at a TF.js model.json');
  expectUserError(() => loadConfig(writeConfig(dir, { ...minimal, output: 'model' })), 'output', 'would overwrite the input model');
  expectUserError(() => loadConfig(writeConfig(dir, { ...minimal, output: '.' })), 'output', 'contains the input model');
  expectUserError(() => loadConfig(writeConfig(dir, '{ "model": ')), 'run.prune.json', 'invalid JSON at line 1');
  expectUserError(() => loadConfig(join(dir, 'missing.prune.json')), 'missing.prune.json', 'not found');
  expectUserError(() => loadConfig(writeConfig(dir, { ...minimal, data: { format: 'tfrecord' } })), 'data.format');
  const { model: _model, ...noModel } = minimal;
  void _model;
  expectUserError(() => loadConfig(writeConfig(dir, noModel)), 'missing required field "model"');
});

test('overrides replace method and output (method variants)', () => {
  const dir = workspace();
  const config = loadConfig(writeConfig(dir, minimal), { method: 'goprune', output: join(dir, 'pruned-goprune') });
  assert.equal(config.method, 'goprune');
  assert.equal(config.output, join(dir, 'pruned-goprune'));
});

test('validateConfigText reports JSON paths for editor diagnostics', () => {
  const { problems } = validateConfigText(JSON.stringify({ ...minimal, target: { paramsReduction: -1 }, scope: 'everywhere' }));
  const paths = problems.map((p) => p.path.join('.')).sort();
  assert.deepEqual(paths, ['scope', 'target.paramsReduction']);
});

/** The editor's diagnostics for `data`: one message per mistake, with its field. */
function dataProblems(data: unknown): { field: string; message: string }[] {
  return validateConfigText(JSON.stringify({ ...minimal, data })).problems.map((p) => ({ field: p.path.join('.'), message: p.message }));
}

test('a oneOf failure is reported on the field of the branch the value meant, with the allowed values', () => {
  const dir = workspace();
  expectUserError(() => loadConfig(writeConfig(dir, { ...minimal, data: { format: 'builtin', name: 'cifar-1000' } })),
    'run.prune.json: data.name: data.name is "cifar-1000"; it must be one of "mnist", "fashion-mnist"');
  assert.deepEqual(dataProblems({ format: 'builtin', name: 'cifar-1000' }), [
    { field: 'data.name', message: 'data.name is "cifar-1000"; it must be one of "mnist", "fashion-mnist"' },
  ]);
  assert.deepEqual(dataProblems({ format: 'builtin', name: 'fashion_mnist', trainLimit: 0 }), [
    { field: 'data.name', message: 'data.name is "fashion_mnist"; it must be one of "mnist", "fashion-mnist" (did you mean "fashion-mnist"?)' },
    { field: 'data.trainLimit', message: 'data.trainLimit is 0; it must be ≥ 1' },
  ]);
  assert.deepEqual(dataProblems({ format: 'npy', y: 'y.npy' }), [{ field: 'data', message: 'data: missing required field "x"' }]);
  assert.deepEqual(dataProblems({ format: 'npy', x: 'x.npy' }), [], 'y is optional: unlabelled data');
  assert.deepEqual(dataProblems({ format: 'npy', x: 'x.npy', y: ['a.npy', 'b.npy'] }), [], 'one y file per model output');
  assert.deepEqual(dataProblems({ format: 'images' }), [{ field: 'data', message: 'data: missing required field "glob"' }]);
  assert.deepEqual(dataProblems({ format: 'synthetic', samples: 10, classes: 2, task: 'regression' }), [
    { field: 'data.task', message: 'data.task is "regression"; it must be "classification"' },
  ]);
  assert.deepEqual(dataProblems({ format: 'builtin', name: 'mnist', path: 'digits' }), [
    { field: 'data.path', message: 'unknown field "data.path"; remove it or check its spelling (fields here: format, name, trainLimit, testLimit, seed)' },
  ]);
});

test('a oneOf discriminator that matches no branch, or is missing, lists its allowed values once', () => {
  const formats = '"npy", "imagefolder", "images", "builtin", "synthetic"';
  assert.deepEqual(dataProblems({ format: 'tfrecord', path: 'x' }), [{ field: 'data.format', message: `data.format is "tfrecord"; it must be one of ${formats}` }]);
  assert.deepEqual(dataProblems({ name: 'mnist' }), [{ field: 'data', message: `data: missing required field "format" (one of ${formats})` }]);
  assert.deepEqual(dataProblems('mnist'), [{ field: 'data', message: 'data is "mnist"; it must be an object' }]);
});

test('a config pointing at a Keras .keras or .h5 model loads, with the model path resolved beside the config', () => {
  const dir = mkdtempSync(join(tmpdir(), 'prunelens-config-keras-'));
  for (const file of ['tiny_cnn.keras', 'tiny_cnn.h5']) {
    copyFileSync(join('test', 'fixtures', 'keras', file), join(dir, file));
    const config = loadConfig(writeConfig(dir, { ...minimal, model: `./${file}` }, 'tiny_cnn.prune.json'));
    assert.equal(config.model, join(dir, file));
    assert.equal(config.output, join(dir, 'pruned'));
  }
});
