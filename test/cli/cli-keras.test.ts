import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ensureBuilt, runBuiltCli } from '../helpers/fixtures.js';
import { makeTempDir } from '../helpers/io.js';

/** The built CLI on Keras files: h5wasm must load from the bundle (it stays outside it, in node_modules). */
const FIXTURES = resolve('test/fixtures/keras');
let temp: { dir: string; remove: () => void };
before(() => {
  ensureBuilt();
  temp = makeTempDir('prunelens-cli-keras-');
});
after(() => temp.remove());

const prunelens = runBuiltCli;

test('analyze reads a .keras file: its layers, classes and Keras\' parameter count', () => {
  const r = prunelens(['analyze', join(FIXTURES, 'tiny_cnn.keras'), '--json']);
  assert.equal(r.code, 0, r.stderr);
  const result = JSON.parse(r.stdout);
  assert.equal(result.params, 1197);
  const byName = new Map<string, { type: string; status: string }>(result.layers.map((l: { name: string; type: string; status: string }) => [l.name, l]));
  assert.equal(byName.get('re_lu')?.type, 'ReLU');
  assert.equal(byName.get('re_lu')?.status, 'prunable');
  assert.equal(byName.get('conv2d')?.type, 'Conv2D');
  assert.ok(result.groups.length >= 2);
});

test('analyze reads a Keras .h5 file and prints the table', () => {
  const r = prunelens(['analyze', join(FIXTURES, 'mobilenet_block.h5')]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /block_1_depthwise\s+DepthwiseConv2D/);
  assert.match(r.stdout, /mobilenet_block: 1108 params/);
  assert.equal(r.stderr.includes('HDF5'), false, r.stderr);
});

test('a truncated .h5 is one line on stderr, without the HDF5 library\'s error stack', () => {
  const bytes = readFileSync(join(FIXTURES, 'tiny_cnn.h5'));
  const file = join(temp.dir, 'cut.h5');
  writeFileSync(file, bytes.subarray(0, 20000));
  const r = prunelens(['analyze', file]);
  assert.equal(r.code, 1);
  assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  assert.match(r.stderr, new RegExp(`^prunelens: ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: cannot be opened as HDF5: the file is truncated \\(20000 of ${bytes.length} bytes\\)`));
});
