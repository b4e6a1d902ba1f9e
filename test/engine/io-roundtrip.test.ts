import * as tf from '@tensorflow/tfjs';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { UserError } from '../../src/engine/errors.js';
import {
  assertOutputSafe, loadModel, modelFileSize, removeStaleTemporaries, saveModelAtomic, writeFileAtomic, SHARD_BYTES,
} from '../../src/engine/io/index.js';
import { buildSmallCnn, editModelJson, makeTempDir, predict, readJson, weightValues } from '../helpers/io.js';

let temp: { dir: string; remove: () => void };
before(async () => {
  await tf.setBackend('cpu');
  temp = makeTempDir();
});
after(() => temp.remove());

function freshDir(name: string): string {
  const dir = join(temp.dir, name);
  mkdirSync(dir, { recursive: true });
  return dir;
}

/** A pid that belonged to a process which has exited. */
function deadPid(): number {
  const child = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']);
  return Number(child.stdout.toString());
}

function assertSameWeights(actual: tf.LayersModel, expected: tf.LayersModel): void {
  const a = weightValues(actual);
  const e = weightValues(expected);
  assert.deepEqual([...a.keys()].sort(), [...e.keys()].sort());
  for (const [name, values] of e) assert.deepEqual(a.get(name), values, `weight ${name} differs`);
}

describe('saveModelAtomic + loadModel', () => {
  it('round-trips a conv/BN/dense model with identical weights and predictions', async () => {
    const parent = freshDir('roundtrip');
    const model = buildSmallCnn();
    const saved = await saveModelAtomic(model, join(parent, 'out'), { 'report.json': '{"ok":true}\n' });

    assert.equal(saved.modelJson, join(parent, 'out', 'model.json'));
    assert.equal(saved.weightBytes, model.countParams() * 4);
    assert.deepEqual(saved.files.map((f) => f.slice(join(parent, 'out').length + 1)).sort(), ['group1-shard1of1.bin', 'model.json', 'report.json']);
    assert.equal(readFileSync(join(parent, 'out', 'report.json'), 'utf8'), '{"ok":true}\n');
    assert.deepEqual(readdirSync(parent), ['out'], 'no temporary folder is left next to the output');

    const loaded = await loadModel(saved.modelJson);
    assert.equal(loaded.path, saved.modelJson);
    assert.equal(loaded.dir, join(parent, 'out'));
    assert.equal(loaded.format, 'layers-model');
    assert.match(loaded.generatedBy ?? '', /TensorFlow\.js/);
    assert.equal(loaded.weightBytes, saved.weightBytes);
    assertSameWeights(loaded.model, model);

    const input = tf.randomNormal([4, 8, 8, 3], 0, 1, 'float32', 3);
    assert.deepEqual(predict(loaded.model, input), predict(model, input));
    input.dispose();
    loaded.model.dispose();
    model.dispose();
  });

  it('splits large weights into 4 MiB shards that TF.js itself loads back', async () => {
    const parent = freshDir('sharded');
    const input = tf.input({ shape: [1024] });
    const output = tf.layers.dense({ name: 'wide', units: 2100 }).apply(input) as tf.SymbolicTensor;
    const model = tf.model({ inputs: input, outputs: output });
    const saved = await saveModelAtomic(model, join(parent, 'out'));

    const totalBytes = (1024 * 2100 + 2100) * 4;
    assert.equal(saved.weightBytes, totalBytes);
    const shards = ['group1-shard1of3.bin', 'group1-shard2of3.bin', 'group1-shard3of3.bin'];
    assert.deepEqual(readJson(saved.modelJson).weightsManifest[0].paths, shards);
    assert.deepEqual(shards.map((s) => statSync(join(parent, 'out', s)).size), [SHARD_BYTES, SHARD_BYTES, totalBytes - 2 * SHARD_BYTES]);

    // TF.js's own reader, fed the raw files, agrees with the format.
    const json = readJson(saved.modelJson) as tf.io.ModelJSON;
    const artifacts = await tf.io.getModelArtifactsForJSON(json, async (manifest) => [
      manifest.flatMap((g) => g.weights),
      manifest[0].paths.map((p) => new Uint8Array(readFileSync(join(parent, 'out', p))).buffer),
    ]);
    const viaTfjs = await tf.loadLayersModel(tf.io.fromMemory(artifacts));
    assertSameWeights(viaTfjs, model);

    const loaded = await loadModel(saved.modelJson);
    assertSameWeights(loaded.model, model);
    assert.equal(await modelFileSize(saved.modelJson), statSync(saved.modelJson).size + totalBytes);
    viaTfjs.dispose();
    loaded.model.dispose();
    model.dispose();
  });

  it('replaces an existing output as a whole, leaving no backup or temporary behind', async () => {
    const parent = freshDir('replace');
    const out = join(parent, 'out');
    const first = buildSmallCnn({ seed: 1 });
    const second = buildSmallCnn({ seed: 2, conv2Filters: 8 });
    await saveModelAtomic(first, out, { 'old-notes.txt': 'first run' });
    await saveModelAtomic(second, out);

    assert.deepEqual(readdirSync(parent), ['out']);
    assert.equal(existsSync(join(out, 'old-notes.txt')), false, 'files of the previous output do not survive');
    const loaded = await loadModel(join(out, 'model.json'));
    assertSameWeights(loaded.model, second);
    [first, second, loaded.model].forEach((m) => m.dispose());
  });

  it('leaves the previous output intact and no temporary folder when writing fails midway', async () => {
    const parent = freshDir('failing');
    const out = join(parent, 'out');
    const original = buildSmallCnn({ seed: 3 });
    await saveModelAtomic(original, out, { 'notes.txt': 'keep me' });
    const replacement = buildSmallCnn({ seed: 4 });

    // "notes" is written as a file, then "notes/today.txt" needs it to be a folder: the
    // file system refuses after model.json and the shard were already written.
    await assert.rejects(
      saveModelAtomic(replacement, out, { notes: 'a file', 'notes/today.txt': 'needs a folder' }),
      (err: unknown) => err instanceof UserError && err.message.startsWith(out) && /could not write/.test(err.message),
    );
    assert.deepEqual(readdirSync(parent), ['out'], 'the temporary folder was removed');
    assert.equal(readFileSync(join(out, 'notes.txt'), 'utf8'), 'keep me');
    const loaded = await loadModel(join(out, 'model.json'));
    assertSameWeights(loaded.model, original);
    [original, replacement, loaded.model].forEach((m) => m.dispose());
  });

  it('rejects extra file names that escape the folder or shadow the model before writing anything', async () => {
    const parent = freshDir('bad-extra');
    const model = buildSmallCnn();
    for (const name of ['../escape.txt', '/abs.txt', 'model.json', 'group1-shard1of1.bin', 'a//b']) {
      await assert.rejects(saveModelAtomic(model, join(parent, 'out'), { [name]: 'x' }), (err: unknown) =>
        err instanceof UserError && err.message.includes(`"${name}"`) && err.message.includes(join(parent, 'out')));
    }
    assert.deepEqual(readdirSync(parent), []);
    model.dispose();
  });

  it('refuses to replace a folder holding other files, a file or a symbolic link', async () => {
    const parent = freshDir('unrelated');
    const out = join(parent, 'docs');
    mkdirSync(out);
    writeFileSync(join(out, 'thesis.tex'), 'precious');
    const model = buildSmallCnn();
    await assert.rejects(saveModelAtomic(model, out), /docs: output folder already holds files that are not a model/);
    assert.equal(readFileSync(join(out, 'thesis.tex'), 'utf8'), 'precious');
    writeFileSync(join(parent, 'a-file'), 'x');
    await assert.rejects(saveModelAtomic(model, join(parent, 'a-file')), /a-file: output path exists and is not a folder/);
    symlinkSync(out, join(parent, 'link'));
    await assert.rejects(saveModelAtomic(model, join(parent, 'link')), /link: output path is a symbolic link/);
    assert.deepEqual(readdirSync(parent).sort(), ['a-file', 'docs', 'link']);
    model.dispose();
  });

  it('loads a 100-layer model quickly (no per-weight initialisers on the load path)', async () => {
    const parent = freshDir('deep');
    const input = tf.input({ shape: [16, 16, 8] });
    let x = input;
    for (let i = 0; i < 50; i++) {
      x = tf.layers.conv2d({ name: `c${i}`, filters: 8, kernelSize: 3, padding: 'same' }).apply(x) as tf.SymbolicTensor;
      x = tf.layers.batchNormalization({ name: `b${i}` }).apply(x) as tf.SymbolicTensor;
    }
    const model = tf.model({ inputs: input, outputs: x });
    assert.ok(model.layers.length > 100);
    const modelJson = (await saveModelAtomic(model, join(parent, 'out'))).modelJson;
    // Orthogonal initialisers are costly (a QR per kernel); loading must not run them.
    editModelJson(modelJson, (json) => {
      for (const layer of json.modelTopology.config.layers) {
        if (layer.class_name === 'Conv2D') layer.config.kernel_initializer = { class_name: 'Orthogonal', config: { gain: 1, seed: null } };
      }
    });

    const start = performance.now();
    const loaded = await loadModel(modelJson);
    const loadMs = performance.now() - start;
    const slowStart = performance.now();
    const initialised = await tf.models.modelFromJSON({ modelTopology: readJson(modelJson).modelTopology });
    const initialiseMs = performance.now() - slowStart;
    assertSameWeights(loaded.model, model);
    assert.ok(loadMs < 1500, `loading took ${loadMs.toFixed(0)} ms`);
    assert.ok(loadMs * 3 < initialiseMs, `loading (${loadMs.toFixed(0)} ms) should be far cheaper than running the initialisers (${initialiseMs.toFixed(0)} ms)`);
    [model, loaded.model, initialised].forEach((m) => m.dispose());
  });
});

describe('writeFileAtomic', () => {
  it('creates missing folders, replaces existing content and leaves no temporary file', async () => {
    const dir = join(freshDir('atomic-file'), 'nested');
    const path = join(dir, 'report.json');
    await writeFileAtomic(path, 'first');
    await writeFileAtomic(path, new Uint8Array([115, 101, 99, 111, 110, 100]));
    assert.equal(readFileSync(path, 'utf8'), 'second');
    assert.deepEqual(readdirSync(dir), ['report.json']);
  });
});

describe('removeStaleTemporaries', () => {
  it('removes leftovers of dead sessions, restores an orphaned previous output and keeps live ones', async () => {
    const parent = freshDir('stale');
    const dead = deadPid();
    const staleTmp = join(parent, `.out.prunelens-tmp-${dead}-0a1b2c3d`);
    const staleFile = join(parent, `.report.json.prunelens-tmp-${dead}-0a1b2c3e`);
    const orphanedOld = join(parent, `.pruned.prunelens-old-${dead}-0a1b2c3f`);
    const liveTmp = join(parent, `.out.prunelens-tmp-${process.pid}-0a1b2c40`);
    mkdirSync(staleTmp);
    writeFileSync(join(staleTmp, 'model.json'), '{');
    writeFileSync(staleFile, 'partial');
    mkdirSync(orphanedOld);
    writeFileSync(join(orphanedOld, 'model.json'), '{}');
    mkdirSync(liveTmp);

    const cleaned = await removeStaleTemporaries(parent);
    assert.deepEqual(cleaned.sort(), [orphanedOld, staleFile, staleTmp].sort());
    assert.deepEqual(readdirSync(parent).sort(), [`.out.prunelens-tmp-${process.pid}-0a1b2c40`, 'pruned'].sort());
    assert.equal(readFileSync(join(parent, 'pruned', 'model.json'), 'utf8'), '{}');
  });
});

describe('assertOutputSafe', () => {
  it('refuses the model folder, a folder containing it, the workspace root and folders outside the workspace', () => {
    const workspace = freshDir('workspace');
    const modelDir = join(workspace, 'models', 'cnn');
    mkdirSync(modelDir, { recursive: true });
    writeFileSync(join(modelDir, 'model.json'), '{}');
    const modelJson = join(modelDir, 'model.json');
    symlinkSync(modelDir, join(workspace, 'link-to-cnn'));

    const refuses = (out: string, pattern: RegExp, root?: string) =>
      assert.throws(() => assertOutputSafe(modelJson, out, root), (err: unknown) =>
        err instanceof UserError && err.message.startsWith(out) && pattern.test(err.message));

    refuses(modelDir, /input model's own folder/);
    refuses(join(workspace, 'link-to-cnn'), /input model's own folder/);
    refuses(join(workspace, 'models'), /contains the input model/);
    const externalModel = join(freshDir('external-model'), 'model.json');
    writeFileSync(externalModel, '{}');
    assert.throws(() => assertOutputSafe(externalModel, workspace, workspace), /workspace: output folder is the workspace root/);
    refuses(join(temp.dir, 'elsewhere'), /outside the workspace/, workspace);

    assert.doesNotThrow(() => assertOutputSafe(modelJson, join(workspace, 'pruned', 'cnn'), workspace));
    assert.doesNotThrow(() => assertOutputSafe(modelJson, join(modelDir, 'pruned')));
  });
});
