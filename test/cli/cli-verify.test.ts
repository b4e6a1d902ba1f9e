import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ensureBuilt, runBuiltCli } from '../helpers/fixtures.js';
import { makeTempDir } from '../helpers/io.js';
import { encodeNpy, readNpy } from '../../src/engine/data/npy.js';

/** `prunelens analyze --verify`: the built CLI runs each Keras fixture's inputs and compares with Keras' outputs. */
const FIXTURES = resolve('test/fixtures/keras');
let temp: { dir: string; remove: () => void };
before(() => {
  ensureBuilt();
  temp = makeTempDir('prunelens-cli-verify-');
});
after(() => temp.remove());

const prunelens = runBuiltCli;

/** `<name>.outputs.npy`, or `<name>.outputs.0.npy`, `.1.npy`, … for a model with several outputs. */
function expectedOutputs(name: string): string[] {
  const single = join(FIXTURES, `${name}.outputs.npy`);
  if (existsSync(single)) return [single];
  const files: string[] = [];
  for (let i = 0; existsSync(join(FIXTURES, `${name}.outputs.${i}.npy`)); i++) files.push(join(FIXTURES, `${name}.outputs.${i}.npy`));
  return files;
}

const models = readdirSync(FIXTURES).filter((f) => /\.(keras|h5)$/.test(f)).sort();

test('the Keras fixtures are all here (.keras and .h5 of six models)', () => {
  assert.equal(models.length, 12, models.join(', '));
});

for (const model of models) {
  test(`${model} reproduces Keras' outputs within 1e-4 (--verify --json)`, () => {
    const name = model.replace(/\.(keras|h5)$/, '');
    const outputs = expectedOutputs(name);
    assert.ok(outputs.length > 0, `no expected outputs for ${name}`);
    const r = prunelens(['analyze', join(FIXTURES, model), '--json', '--verify', [join(FIXTURES, `${name}.inputs.npy`), ...outputs].join(',')]);
    assert.equal(r.code, 0, r.stderr + r.stdout.slice(-500));
    const { verify } = JSON.parse(r.stdout);
    assert.equal(verify.passed, true);
    assert.equal(verify.tolerance, 1e-4);
    assert.equal(verify.outputs.length, outputs.length);
    for (const o of verify.outputs) {
      assert.ok(o.maxAbs < 1e-4 && o.maxRel < 1e-4, JSON.stringify(o));
      assert.equal(o.passed, true);
    }
  });
}

test('a wrong outputs file reports the large difference and exits with code 3', () => {
  const expected = readNpy(join(FIXTURES, 'tiny_cnn.outputs.npy'));
  const wrong = Float32Array.from(expected.data as Float32Array, (v, i) => (i === 1 ? v + 0.5 : v));
  const file = join(temp.dir, 'wrong.outputs.npy');
  writeFileSync(file, encodeNpy(wrong, expected.shape));
  const args = ['analyze', join(FIXTURES, 'tiny_cnn.keras'), '--verify', `${join(FIXTURES, 'tiny_cnn.inputs.npy')},${file}`];
  const human = prunelens(args);
  assert.equal(human.code, 3, human.stderr);
  assert.match(human.stdout, /dense\s+wrong\.outputs\.npy\s+5\.00e-1\s+\S+\s+DIFFERS/);
  assert.match(human.stdout, /Outputs differ beyond the tolerance \(exit code 3\)/);
  const json = prunelens([...args, '--json']);
  assert.equal(json.code, 3, json.stderr);
  const { verify } = JSON.parse(json.stdout);
  assert.equal(verify.passed, false);
  assert.ok(Math.abs(verify.outputs[0].maxAbs - 0.5) < 1e-3, JSON.stringify(verify));
  // A looser tolerance accepts it.
  assert.equal(prunelens([...args, '--tolerance', '10']).code, 0);
});

test('outputs of the wrong shape are one line naming the file and the fix', () => {
  const file = join(FIXTURES, 'two_heads.outputs.1.npy');
  const r = prunelens(['analyze', join(FIXTURES, 'tiny_cnn.h5'), '--verify', `${join(FIXTURES, 'tiny_cnn.inputs.npy')},${file}`]);
  assert.equal(r.code, 1);
  assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  assert.match(r.stderr, new RegExp(`^prunelens: ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: expected outputs have shape \\[.*\\], but output dense computes \\[.*\\] for these inputs\\. Give the outputs of dense`));
});

test('inputs of the wrong shape, and a missing outputs file for a second head, are one line each', () => {
  const inputs = join(FIXTURES, 'two_heads.outputs.0.npy');
  const badInputs = prunelens(['analyze', join(FIXTURES, 'tiny_cnn.keras'), '--verify', `${inputs},${join(FIXTURES, 'tiny_cnn.outputs.npy')}`]);
  assert.equal(badInputs.code, 1);
  assert.equal(badInputs.stderr.trim().split('\n').length, 1, badInputs.stderr);
  assert.match(badInputs.stderr, /two_heads\.outputs\.0\.npy: inputs have shape \[.*\], but the model takes \[\?, .*\]/);
  const oneHead = prunelens(['analyze', join(FIXTURES, 'two_heads.keras'), '--verify', `${join(FIXTURES, 'two_heads.inputs.npy')},${join(FIXTURES, 'two_heads.outputs.0.npy')}`]);
  assert.equal(oneHead.code, 1);
  assert.match(oneHead.stderr, /the model has 2 outputs \(class_scores, box\) but 1 expected-outputs file was given/);
  const usage = prunelens(['analyze', join(FIXTURES, 'tiny_cnn.keras'), '--verify', join(FIXTURES, 'tiny_cnn.inputs.npy')]);
  assert.equal(usage.code, 2);
  assert.match(usage.stderr, /--verify needs the inputs and the expected outputs/);
});
