// Writing Keras files back: every fixture written by Keras 3.15.1 (test/fixtures/keras/), .keras and
// .h5, saved unpruned (our loader and real Keras read it back with the same outputs) and pruned with
// l1 through a whole session (real Keras loads the pruned file; its parameter count is the report's).
import * as tf from '@tensorflow/tfjs';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { unzipSync } from 'fflate';
import { loadConfig } from '../../src/engine/config/index.js';
import { UserError } from '../../src/engine/errors.js';
import { readNpy } from '../../src/engine/data/npy.js';
import { loadModel, writeFolderAtomic, type LoadedModel } from '../../src/engine/io/index.js';
import { encodeKerasModel } from '../../src/engine/io/keras/write.js';
import { executeSession } from '../../src/engine/session/session.js';
import { encodeSessionOutput } from '../../src/engine/session/output.js';
import type { DoneEvent } from '../../src/protocol/events.js';
import { makeTempDir } from '../helpers/io.js';
import { h5wasm, keras2File } from '../helpers/keras2.js';

const FIXTURES = resolve('test/fixtures/keras');
const NAMES = ['tiny_cnn', 'mobilenet_block', 'squeeze_excite', 'concat_dense', 'sequential_cnn', 'two_heads'];
const KINDS = ['keras', 'h5'] as const;
const PYTHON = resolve('.cache/keras-venv/bin/python');
const CHECKER = resolve('scripts/keras-fixtures');

let temp: { dir: string; remove: () => void };
before(async () => {
  await tf.setBackend('cpu');
  temp = makeTempDir('prunelens-keras-write-');
});
after(() => temp.remove());

function outputFiles(name: string): string[] {
  const single = join(FIXTURES, `${name}.outputs.npy`);
  return existsSync(single) ? [single] : [0, 1, 2, 3].map((i) => join(FIXTURES, `${name}.outputs.${i}.npy`)).filter(existsSync);
}

function predict(loaded: LoadedModel, name: string): Float32Array[] {
  const input = readNpy(join(FIXTURES, `${name}.inputs.npy`));
  return tf.tidy(() => {
    const out = loaded.model.predict(tf.tensor(input.data as Float32Array, input.shape)) as tf.Tensor | tf.Tensor[];
    return (Array.isArray(out) ? out : [out]).map((t) => t.dataSync() as Float32Array);
  });
}

/** Files real Keras is asked to load, with what it must give: the fixture's outputs, or a parameter count. */
const kerasChecks: { file: string; name: string; maxDifference?: number; params?: number }[] = [];

describe('Keras files written back', () => {
  for (const name of NAMES) {
    for (const kind of KINDS) {
      const fixture = join(FIXTURES, `${name}.${kind}`);

      it(`${name}.${kind}: saved unpruned, reads back with identical weights and outputs, in the same layout`, async () => {
        const loaded = await loadModel(fixture);
        const bytes = await encodeKerasModel(loaded.model, loaded.keras!, fixture);
        const written = join(temp.dir, `unpruned-${name}.${kind}`);
        writeFileSync(written, bytes);
        const reread = await loadModel(written);
        assert.equal(reread.format, kind);
        assert.deepEqual(reread.keras!.modelConfig, loaded.keras!.modelConfig, 'the config is untouched where nothing was pruned');
        assert.deepEqual(reread.keras!.weights, loaded.keras!.weights, 'every weight at its original path');
        assert.equal(reread.keras!.kerasVersion, loaded.keras!.kerasVersion);
        if (kind === 'keras') {
          assert.deepEqual(reread.keras!.metadata, loaded.keras!.metadata);
          assert.deepEqual(reread.keras!.archiveEntries, loaded.keras!.archiveEntries);
        } else {
          assert.deepEqual(reread.keras!.rootAttributes, loaded.keras!.rootAttributes);
        }
        const before = loaded.model.getWeights().map((w) => w.dataSync());
        const afterWeights = reread.model.getWeights().map((w) => w.dataSync());
        assert.deepEqual(afterWeights, before);
        assert.deepEqual(predict(reread, name), predict(loaded, name));
        loaded.model.dispose();
        reread.model.dispose();
        kerasChecks.push({ file: written, name, maxDifference: 1e-5 });
      });

      it(`${name}.${kind}: an l1 session writes a smaller ${kind} file with the config's widths changed and the report beside it`, async (t) => {
        const configPath = join(temp.dir, `${name}-${kind}.prune.json`);
        writeFileSync(configPath, JSON.stringify({
          model: fixture, method: 'l1', target: { flopsReduction: 0.3 }, output: `pruned-${name}-${kind}`,
          latency: { runs: 1, batchSize: 1 }, backend: 'cpu', export: ['tfjs'],
        }));
        const result = await executeSession(loadConfig(configPath), () => undefined);
        if (result.type === 'error' && /no prunable channels/.test(result.message)) {
          // The layer registry blocks every channel of this model (two_heads: LayerNormalization); nothing to write.
          assert.ok(!existsSync(join(temp.dir, `pruned-${name}-${kind}`)), 'a refused session writes no output');
          t.skip(`${name}: no prunable channels yet (${result.message.split(': ').slice(1).join(': ')})`);
          return;
        }
        assert.equal(result.type, 'done', result.type === 'error' ? result.message : undefined);
        const done = result as DoneEvent;
        const out = join(temp.dir, `pruned-${name}-${kind}`);
        assert.equal(done.output, join(out, `${name}.${kind}`));
        assert.deepEqual(readdirSync(out).sort(), [`${name}.${kind}`, 'pruning-report.json', 'tfjs'].sort());
        assert.equal(done.size?.after, statSync(done.output).size, "the done event gives the Keras file's bytes on disk");
        assert.ok(done.after.params < done.before.params, `${done.after.params} < ${done.before.params} params`);
        const report = JSON.parse(readFileSync(join(out, 'pruning-report.json'), 'utf8'));
        assert.equal(report.after?.params ?? done.after.params, done.after.params);

        const pruned = await loadModel(done.output);
        assert.equal(pruned.model.countParams(), done.after.params);
        const original = await loadModel(fixture);
        const layersBefore = (original.keras!.modelConfig.config as { layers: { config: { name: string } }[] }).layers;
        const layersAfter = (pruned.keras!.modelConfig.config as { layers: { config: Record<string, unknown> }[] }).layers;
        assert.deepEqual(layersAfter.map((l) => l.config.name), layersBefore.map((l) => l.config.name), 'layer names and order kept');
        // Only widths move: a config without filters, units, shapes and the volatile object ids is unchanged.
        const widthless = (v: unknown): unknown => JSON.parse(JSON.stringify(v, (k, x) => ['filters', 'units', 'shape', 'input_shape', 'target_shape', 'shared_object_id'].includes(k) ? undefined : x));
        assert.deepEqual(widthless(pruned.keras!.modelConfig), widthless(original.keras!.modelConfig));
        const narrowed = layersAfter.filter((l, i) => typeof l.config.filters === 'number' && l.config.filters !== (layersBefore[i].config as Record<string, unknown>).filters);
        assert.ok(narrowed.length > 0 || layersAfter.some((l, i) => l.config.units !== (layersBefore[i].config as Record<string, unknown>).units), 'some width changed');
        assert.equal(pruned.keras!.kerasVersion, original.keras!.kerasVersion);

        const tfjsCopy = await loadModel(join(out, 'tfjs', 'model.json'));
        assert.equal(tfjsCopy.model.countParams(), done.after.params);
        assert.deepEqual(predict(tfjsCopy, name), predict(pruned, name), 'the TF.js copy computes what the Keras file does');
        if (kind === 'keras') assert.ok('metadata.json' in unzipSync(readFileSync(done.output)));
        for (const m of [pruned, original, tfjsCopy]) m.model.dispose();
        kerasChecks.push({ file: done.output, name, params: done.after.params });
      });
    }
  }

  for (const name of ['tiny_cnn', 'mobilenet_block']) {
    it(`${name}, Keras 2-style .h5 (made here, no real Keras 2): pruned with l1, written back in Keras 2's style`, async () => {
      const h5 = await h5wasm();
      const fixture = join(temp.dir, `${name}-keras2.h5`);
      writeFileSync(fixture, keras2File(h5, name));
      const configPath = join(temp.dir, `${name}-keras2.prune.json`);
      writeFileSync(configPath, JSON.stringify({
        model: fixture, method: 'l1', target: { flopsReduction: 0.3 }, output: `pruned-${name}-keras2`, latency: { runs: 1, batchSize: 1 }, backend: 'cpu',
      }));
      const result = await executeSession(loadConfig(configPath), () => undefined);
      assert.equal(result.type, 'done', result.type === 'error' ? result.message : undefined);
      const done = result as DoneEvent;
      assert.equal(done.output, join(temp.dir, `pruned-${name}-keras2`, `${name}-keras2.h5`));
      const pruned = await loadModel(done.output);
      assert.equal(pruned.keras!.style, 'keras2');
      assert.equal(pruned.keras!.kerasVersion, '2.15.0');
      assert.match(JSON.stringify(pruned.keras!.modelConfig), /"batch_input_shape"/);
      assert.ok(pruned.keras!.weights.every((w) => w.path.endsWith(':0')), 'Keras 2 weight names kept');
      assert.equal(pruned.model.countParams(), done.after.params);
      pruned.model.dispose();
      kerasChecks.push({ file: done.output, name, params: done.after.params });
    });
  }

  it('real Keras loads every written file: unpruned ones compute the fixture outputs, pruned ones have the report\'s parameter count', (t) => {
    if (!existsSync(PYTHON)) {
      t.skip(`no Keras at ${PYTHON} (scripts/keras-fixtures/setup.sh creates it)`);
      return;
    }
    assert.ok(kerasChecks.length >= NAMES.length * KINDS.length + 2, 'every unpruned file and some pruned ones were written');
    // One Python process for all files: importing Keras takes seconds.
    const jobs = kerasChecks.map((c) => [c.file, join(FIXTURES, `${c.name}.inputs.npy`), outputFiles(c.name)]);
    const script = [
      'import json, sys',
      `sys.path.insert(0, ${JSON.stringify(CHECKER)})`,
      'from check_fixture import check_fixture',
      'for model, inputs, outputs in json.loads(sys.argv[1]):',
      '    try:',
      '        difference, params = check_fixture(model, inputs, outputs)',
      '        print(json.dumps({"difference": difference, "params": params}))',
      '    except Exception as error:',
      '        print(json.dumps({"error": f"{type(error).__name__}: {error}"}))',
    ].join('\n');
    const lines = execFileSync(PYTHON, ['-c', script, JSON.stringify(jobs)], {
      env: { ...process.env, KERAS_BACKEND: 'jax' }, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'],
    }).trim().split('\n').filter((l) => l.startsWith('{'));
    assert.equal(lines.length, kerasChecks.length);
    kerasChecks.forEach((check, i) => {
      const got = JSON.parse(lines[i]) as { difference?: number; params?: number; error?: string };
      assert.equal(got.error, undefined, `Keras on ${check.file}: ${got.error}`);
      if (check.maxDifference !== undefined) assert.ok(got.difference! <= check.maxDifference, `${check.file}: Keras differs by ${got.difference}`);
      if (check.params !== undefined) assert.equal(got.params, check.params, `${check.file}: Keras counts ${got.params} params, the report ${check.params}`);
    });
  });
});

describe('a pruned model whose layers Keras does not have', () => {
  it('is refused as a Keras file with one line naming the file and the first unknown layer', async () => {
    const fixture = join(FIXTURES, 'tiny_cnn.keras');
    const loaded = await loadModel(fixture);
    // What DSP's rebuilt models look like to the writer: layers the Keras config does not name.
    const rebuilt = tf.sequential({ layers: [tf.layers.dense({ units: 2, inputShape: [3], name: 'conv2d_g0' })] });
    await assert.rejects(encodeKerasModel(rebuilt, loaded.keras!, fixture), (err: Error) => {
      assert.ok(err instanceof UserError);
      assert.match(err.message, /tiny_cnn\.keras.*cannot be written back as a Keras file: the pruned model has layers the Keras file does not \(conv2d_g0\)/);
      assert.doesNotMatch(err.message, /\n/);
      return true;
    });
    rebuilt.dispose();
    loaded.model.dispose();
  });
});

describe('session output of a rebuilt Keras model', () => {
  it('is a TF.js model with a note saying why, not a Keras file', async () => {
    const fixture = join(FIXTURES, 'tiny_cnn.h5');
    const loaded = await loadModel(fixture);
    const rebuilt = tf.sequential({ layers: [tf.layers.dense({ units: 2, inputShape: [3], name: 'conv2d_g0' })] });
    const output = await encodeSessionOutput(rebuilt, loaded, fixture, ['tfjs']);
    assert.equal(output.modelFile, 'model.json');
    assert.deepEqual(Object.keys(output.files), ['model.json', 'group1-shard1of1.bin']);
    assert.match(output.notes.join(' '), /Saved as a TF\.js layers model \(model\.json\), not as tiny_cnn\.h5: the pruned model has layers the Keras file does not \(conv2d_g0\)/);
    rebuilt.dispose();
    loaded.model.dispose();
  });
});

describe('the Keras output folder', () => {
  it('replaces a previous output that holds the Keras file, and refuses a folder of unrelated files', async () => {
    const dir = join(temp.dir, 'folder-rules');
    await writeFolderAtomic(dir, 'model.keras', { 'model.keras': new Uint8Array([1]), 'pruning-report.json': '{}' });
    await writeFolderAtomic(dir, 'model.keras', { 'model.keras': new Uint8Array([2, 2]) });
    assert.deepEqual(readdirSync(dir), ['model.keras']);
    assert.equal(statSync(join(dir, 'model.keras')).size, 2);
    const unrelated = join(temp.dir, 'unrelated');
    await writeFolderAtomic(unrelated, 'notes.txt', { 'notes.txt': 'mine' });
    await assert.rejects(writeFolderAtomic(unrelated, 'model.keras', { 'model.keras': new Uint8Array([1]) }),
      /output folder already holds files that are not a model/);
    assert.deepEqual(readdirSync(unrelated), ['notes.txt']);
  });
});
