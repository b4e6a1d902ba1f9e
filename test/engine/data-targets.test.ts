/**
 * Data without class labels and data for models beyond one classifier head: unlabelled npy,
 * image folders and globs; float and per-output targets checked against the model's outputs;
 * seeded augmentation of training batches.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { PNG } from 'pngjs';
import * as jpeg from 'jpeg-js';
import { encodeNpy, loadDataset, makeDataset, type ModelIO } from '../../src/engine/data/index.js';
import { ArraySource } from '../../src/engine/data/dataset.js';
import { augmentImages, withAugmentation } from '../../src/engine/data/augment.js';
import { checkConfigFiles, loadConfig } from '../../src/engine/config/index.js';
import { assertInsideWorkspace } from '../../src/engine/session/confine.js';
import { UserError } from '../../src/engine/errors.js';
import type { Batch, Dataset } from '../../src/engine/train/types.js';

let dir: string;
before(async () => {
  await tf.setBackend('cpu');
  dir = mkdtempSync(join(tmpdir(), 'prunelens-targets-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

function npy(name: string, data: Float32Array | Uint8Array | Int32Array, shape: number[]): string {
  const file = join(dir, name);
  writeFileSync(file, encodeNpy(data, shape));
  return file;
}

async function all(batches: AsyncIterable<Batch>): Promise<Batch[]> {
  const out: Batch[] = [];
  for await (const b of batches) out.push(b);
  return out;
}

async function rejectsWith(promise: Promise<unknown>, expected: { file?: string; field?: string }, pattern: RegExp): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof UserError, `a UserError, got ${String(err)}`);
    if (expected.file) assert.equal(err.file, expected.file);
    if (expected.field) assert.equal(err.field, expected.field);
    assert.match(err.message, pattern);
    assert.doesNotMatch(err.message, /\n/);
    return true;
  });
}

/** Inputs [n, 2, 2, 1] whose sample i holds the value i, so targets can be matched to their samples after shuffling. */
function indexedInputs(name: string, n: number): string {
  return npy(name, Float32Array.from({ length: n * 4 }, (_, k) => Math.floor(k / 4)), [n, 2, 2, 1]);
}
const sampleIds = (b: Batch) => (b.x.reshape([b.x.shape[0], -1]).arraySync() as number[][]).map((r) => r[0]);

test('npy with only x: targets none, classes 0, and batches without y', async () => {
  indexedInputs('x-only.npy', 10);
  const data = await loadDataset({ format: 'npy', x: 'x-only.npy', validationSplit: 0.2 }, dir, { inputShape: [2, 2, 1], classes: 10 }, 1);
  assert.equal(data.targets, 'none');
  assert.equal(data.classes, 0);
  assert.deepEqual([data.trainSize, data.validationSize], [8, 2]);
  const train = await all(data.trainBatches(3, 0));
  assert.deepEqual(train.map((b) => b.x.shape[0]), [3, 3, 2]);
  for (const b of [...train, ...(await all(data.validationBatches(4))), await data.calibration(5)]) {
    assert.equal(b.y, undefined);
    b.x.dispose();
  }
  await rejectsWith(loadDataset({ format: 'npy', x: 'x-only.npy', xVal: 'x-only.npy', yVal: 'y.npy' }, dir, { inputShape: [2, 2, 1], classes: 10 }, 1),
    { field: 'data.yVal' }, /yVal is given but y is not/);
});

test('float targets: one-hot, multi-label and regression values become one float tensor shaped like the output', async () => {
  const n = 6;
  indexedInputs('x6.npy', n);
  const oneHot = Float32Array.from({ length: n * 3 }, (_, k) => (k % 3 === Math.floor(k / 3) % 3 ? 1 : 0));
  npy('onehot.npy', oneHot, [n, 3]);
  const data = await loadDataset({ format: 'npy', x: 'x6.npy', y: 'onehot.npy', validationSplit: 0.5 }, dir, { inputShape: [2, 2, 1], classes: 3 }, 2);
  assert.equal(data.targets, 'values');
  assert.equal(data.classes, 0);
  for (const b of await all(data.trainBatches(2, 1))) {
    assert.equal(b.y!.length, 1);
    assert.equal(b.y![0].dtype, 'float32');
    assert.deepEqual(b.y![0].shape, [b.x.shape[0], 3]);
    const rows = b.y![0].arraySync() as number[][];
    sampleIds(b).forEach((id, i) => assert.deepEqual(rows[i], [0, 1, 2].map((c) => (c === id % 3 ? 1 : 0)), 'targets follow their samples through the shuffle'));
  }

  npy('multilabel.npy', Uint8Array.from({ length: n * 3 }, (_, k) => k % 2), [n, 3]);
  const multi = await loadDataset({ format: 'npy', x: 'x6.npy', y: 'multilabel.npy' }, dir, { inputShape: [2, 2, 1], classes: 3 }, 2);
  assert.equal(multi.targets, 'values');
  const cal = await multi.calibration(n);
  assert.equal(cal.y![0].dtype, 'float32');
  assert.deepEqual(cal.y![0].shape, [multi.trainSize, 3], "calibration samples come from the training split");

  npy('regression.npy', Float32Array.from({ length: n }, (_, i) => i * 0.5), [n]);
  const model: ModelIO = { inputShape: [2, 2, 1], classes: 1, outputShapes: [[1]] };
  const reg = await loadDataset({ format: 'npy', x: 'x6.npy', y: 'regression.npy', validationSplit: 0.5 }, dir, model, 3);
  assert.equal(reg.targets, 'values');
  for (const b of await all(reg.validationBatches(10))) {
    assert.deepEqual(b.y![0].shape, [3, 1]);
    assert.deepEqual((b.y![0].arraySync() as number[][]).map((r) => r[0]), sampleIds(b).map((id) => id * 0.5));
  }

  // Integer class indices for a single classifier output stay labels.
  npy('labels6.npy', Int32Array.from({ length: n }, (_, i) => i % 3), [n]);
  const labelled = await loadDataset({ format: 'npy', x: 'x6.npy', y: 'labels6.npy' }, dir, { inputShape: [2, 2, 1], classes: 3, outputShapes: [[3]] }, 3);
  assert.equal(labelled.targets, 'labels');
  assert.equal(labelled.classes, 3);
  assert.equal((await labelled.calibration(2)).y![0].dtype, 'int32');
});

test('one y file per output: labels of a softmax head become one-hot, values keep their shape, all aligned with the samples', async () => {
  const n = 8;
  indexedInputs('x8.npy', n);
  npy('cls.npy', Int32Array.from({ length: n }, (_, i) => i % 4), [n]);
  npy('box.npy', Float32Array.from({ length: n * 2 * 2 }, (_, k) => Math.floor(k / 4) + (k % 4) / 10), [n, 2, 2]);
  const model: ModelIO = { inputShape: [2, 2, 1], classes: 4, outputShapes: [[4], [2, 2]] };
  const data = await loadDataset({ format: 'npy', x: 'x8.npy', y: ['cls.npy', 'box.npy'], validationSplit: 0.25 }, dir, model, 4);
  assert.equal(data.targets, 'values');
  assert.equal(data.classes, 0);
  assert.match(data.description, /float targets \[\[4\], \[2, 2\]\]/);
  for (const b of await all(data.trainBatches(4, 2))) {
    const [cls, box] = b.y!;
    assert.deepEqual([cls.dtype, box.dtype], ['float32', 'float32']);
    assert.deepEqual(box.shape, [b.x.shape[0], 2, 2]);
    const ids = sampleIds(b);
    (cls.arraySync() as number[][]).forEach((row, i) => assert.deepEqual(row, [0, 1, 2, 3].map((c) => (c === ids[i] % 4 ? 1 : 0))));
    (box.arraySync() as number[][][]).forEach((m, i) => assert.ok(Math.abs(m[1][1] - (ids[i] + 0.3)) < 1e-6));
  }

  // Shape and count checks name the file and the field.
  const boxFile = npy('box-wrong.npy', new Float32Array(n * 5), [n, 5]);
  await rejectsWith(loadDataset({ format: 'npy', x: 'x8.npy', y: ['cls.npy', 'box-wrong.npy'] }, dir, model, 1),
    { file: boxFile, field: 'data.y[1]' }, /targets have shape \[8, 5\], i\.e\. samples of \[5\], but output 1 is \[2, 2\]/);
  await rejectsWith(loadDataset({ format: 'npy', x: 'x8.npy', y: 'cls.npy' }, dir, model, 1),
    { field: 'data.y' }, /"y" names 1 file but the model has 2 outputs/);
  const shortFile = npy('box-short.npy', new Float32Array(3 * 4), [3, 2, 2]);
  await rejectsWith(loadDataset({ format: 'npy', x: 'x8.npy', y: ['cls.npy', 'box-short.npy'] }, dir, model, 1),
    { file: shortFile, field: 'data.y[1]' }, /there are 3 targets for 8 inputs/);
  const bigClass = npy('cls9.npy', Int32Array.from({ length: n }, () => 9), [n]);
  await rejectsWith(loadDataset({ format: 'npy', x: 'x8.npy', y: ['cls9.npy', 'box.npy'] }, dir, model, 1),
    { file: bigClass }, /labels go up to 9 but the model has 4 output classes/);
  const floatLabels = npy('float-cls.npy', new Float32Array(n), [n]);
  await rejectsWith(loadDataset({ format: 'npy', x: 'x8.npy', y: 'float-cls.npy' }, dir, { inputShape: [2, 2, 1], classes: 4, outputShapes: [[4]] }, 1),
    { file: floatLabels }, /labels have dtype float32; expected integer class indices \(or float targets shaped \[N, 4\]\)/);
  // Validation targets must be of the same kind as the training targets.
  await rejectsWith(loadDataset({ format: 'npy', x: 'x8.npy', y: ['cls.npy', 'box.npy'], xVal: 'x8.npy', yVal: ['cls.npy', 'box-wrong.npy'] }, dir,
    { ...model, outputShapes: [[4], [5]] }, 1), { file: join(dir, 'box.npy') }, /output 1 is \[5\]/);
  const val = await loadDataset({ format: 'npy', x: 'x8.npy', y: ['cls.npy', 'box.npy'], xVal: 'x8.npy', yVal: ['cls.npy', 'box.npy'] }, dir, model, 1);
  assert.deepEqual([val.trainSize, val.validationSize], [8, 8]);
});

function writePng(file: string, size: number, value: number): void {
  const png = new PNG({ width: size, height: size });
  for (let p = 0; p < size * size; p++) png.data.set([value, value, value, 255], p * 4);
  writeFileSync(file, PNG.sync.write(png));
}

function writeJpeg(file: string, size: number, value: number): void {
  const data = Buffer.alloc(size * size * 4);
  for (let p = 0; p < size * size; p++) data.set([value, value, value, 255], p * 4);
  writeFileSync(file, jpeg.encode({ data, width: size, height: size }, 95).data);
}

test('an image folder without class subfolders is unlabelled; class subfolders keep their labels', async () => {
  const flat = join(dir, 'flat');
  mkdirSync(flat);
  for (let i = 0; i < 5; i++) writePng(join(flat, `img${i}.png`), 6, i * 40);
  writeJpeg(join(flat, 'photo.jpg'), 8, 200);
  writeFileSync(join(flat, 'notes.txt'), 'not an image');
  const data = await loadDataset({ format: 'imagefolder', path: 'flat', validationSplit: 0.5 }, dir, { inputShape: [4, 4, 3], classes: 10 }, 1);
  assert.equal(data.targets, 'none');
  assert.equal(data.classes, 0);
  assert.deepEqual([data.trainSize, data.validationSize], [3, 3]);
  assert.match(data.description, /unlabelled/);
  const [batch] = await all(data.trainBatches(8, 0));
  assert.deepEqual(batch.x.shape, [3, 4, 4, 3]);
  assert.equal(batch.y, undefined);

  const classes = join(dir, 'classes');
  for (const c of ['cat', 'dog']) {
    mkdirSync(join(classes, c), { recursive: true });
    writePng(join(classes, c, 'a.png'), 4, 10);
  }
  const labelled = await loadDataset({ format: 'imagefolder', path: 'classes', validationSplit: 0.5 }, dir, { inputShape: [4, 4, 3], classes: 2 }, 1);
  assert.equal(labelled.targets, 'labels');
  assert.equal(labelled.classes, 2);

  const empty = join(dir, 'empty');
  mkdirSync(empty);
  await rejectsWith(loadDataset({ format: 'imagefolder', path: 'empty' }, dir, { inputShape: [4, 4, 3], classes: 2 }, 1),
    { file: empty, field: 'data.path' }, /no PNG or JPEG images and no class subfolders found/);
});

test('an images glob matches files across folders relative to the config, unlabelled', async () => {
  const photos = join(dir, 'photos');
  mkdirSync(join(photos, 'a', 'b'), { recursive: true });
  writeJpeg(join(photos, 'top.jpg'), 8, 30);
  writeJpeg(join(photos, 'a', 'one.jpg'), 8, 60);
  writeJpeg(join(photos, 'a', 'b', 'two.JPG'), 8, 90);
  writePng(join(photos, 'a', 'three.png'), 8, 120);
  writeFileSync(join(photos, 'a', 'x.jpg.txt'), 'no');
  const config = join(dir, 'run.prune.json');
  const model = { inputShape: [4, 4, 1], classes: 3 };
  const jpgs = await loadDataset({ format: 'images', glob: 'photos/**/*.jpg', validationSplit: 0.34 }, config, model, 1);
  assert.equal(jpgs.targets, 'none');
  assert.equal(jpgs.trainSize + jpgs.validationSize, 2, 'top.jpg and a/one.jpg (matching is case-sensitive)');
  const both = await loadDataset({ format: 'images', glob: 'photos/**/*.{jpg,JPG,png}', validationSplit: 0.25 }, config, model, 1);
  assert.deepEqual([both.trainSize, both.validationSize], [3, 1]);
  const cal = await both.calibration(10);
  assert.deepEqual(cal.x.shape, [3, 4, 4, 1]);
  assert.equal(cal.y, undefined);
  const shallow = await loadDataset({ format: 'images', glob: 'photos/*/*', validationSplit: 0.5 }, config, model, 1);
  assert.equal(shallow.trainSize + shallow.validationSize, 2, 'a/one.jpg and a/three.png; the .txt is not an image');

  await rejectsWith(loadDataset({ format: 'images', glob: 'photos/**/*.gif' }, config, model, 1), { field: 'data.glob' }, /no PNG or JPEG images match "photos\/\*\*\/\*\.gif"/);
  await rejectsWith(loadDataset({ format: 'images', glob: 'photos/*/../../*.jpg' }, config, model, 1), { field: 'data.glob' }, /has "\.\." after a wildcard/);
  await rejectsWith(loadDataset({ format: 'images', glob: 'missing/*.jpg' }, config, model, 1), { field: 'data.glob' }, /folder not found/);
  await rejectsWith(loadDataset({ format: 'images', glob: 'photos/*.jpg' }, config, { inputShape: [16], classes: 3 }, 1), { field: 'data.format' }, /image data needs a model input of \[height, width, 1 or 3\]/);
});

test('config: an images glob resolves against the config and must stay in the workspace; y lists resolve each file', () => {
  const ws = mkdtempSync(join(tmpdir(), 'prunelens-targets-ws-'));
  try {
    mkdirSync(join(ws, 'model'));
    writeFileSync(join(ws, 'model', 'model.json'), '{}');
    const write = (data: unknown) => {
      const file = join(ws, 'run.prune.json');
      writeFileSync(file, JSON.stringify({ model: 'model/model.json', method: 'l1', target: { flopsReduction: 0.5 }, output: 'pruned', data }));
      return file;
    };
    const images = loadConfig(write({ format: 'images', glob: 'photos/**/*.jpg' }));
    assert.deepEqual(images.data, { format: 'images', glob: `${ws}/photos/**/*.jpg` });
    assertInsideWorkspace(images, [ws]);
    const outside = loadConfig(write({ format: 'images', glob: '../elsewhere/*.png' }));
    assert.throws(() => assertInsideWorkspace(outside, [ws]), (err: unknown) => err instanceof UserError && err.field === 'data.glob' && /outside the workspace/.test(err.message));
    const npyConfig = loadConfig(write({ format: 'npy', x: 'x.npy', y: ['a.npy', '../b.npy'] }));
    assert.deepEqual(npyConfig.data, { format: 'npy', x: join(ws, 'x.npy'), y: [join(ws, 'a.npy'), join(ws, '..', 'b.npy')], xVal: undefined, yVal: undefined });
    assert.throws(() => assertInsideWorkspace(npyConfig, [ws]), (err: unknown) => err instanceof UserError && err.field === 'data.y[1]');
  } finally {
    rmSync(ws, { recursive: true, force: true });
  }
});

test('config: augment accepts true or crop/flip/colorJitter, and a wrong value is one line on its field', () => {
  const ws = mkdtempSync(join(tmpdir(), 'prunelens-targets-aug-'));
  try {
    mkdirSync(join(ws, 'model'));
    writeFileSync(join(ws, 'model', 'model.json'), '{}');
    const load = (augment: unknown) => {
      const file = join(ws, 'run.prune.json');
      writeFileSync(file, JSON.stringify({ model: 'model/model.json', method: 'l1', target: { flopsReduction: 0.5 }, output: 'pruned',
        data: { format: 'synthetic', samples: 10, classes: 2 }, finetune: { epochs: 1, augment } }));
      return loadConfig(file);
    };
    assert.equal(load(true).finetune?.augment, true);
    const full = { crop: { padding: 2 }, flip: true, colorJitter: { brightness: 0.2, contrast: 0.2, saturation: 0.2 } };
    assert.deepEqual(load(full).finetune?.augment, full);
    const message = (augment: unknown) => {
      try { load(augment); } catch (err) { assert.ok(err instanceof UserError); assert.doesNotMatch(err.message, /\n/); return `${err.field}: ${err.message.split(': ').slice(-1)[0]}`; }
      return 'accepted';
    };
    assert.match(message({ crop: { padding: 0 } }), /^finetune\.augment\.crop\.padding: .*must be ≥ 1/);
    assert.match(message({ flip: 'yes' }), /^finetune\.augment\.flip: .*boolean/);
    assert.match(message({ colorJitter: { hue: 0.1 } }), /^finetune\.augment\.colorJitter/);
    assert.match(message({ colorJitter: { brightness: 2 } }), /^finetune\.augment\.colorJitter\.brightness: .*≤ 1/);
  } finally {
    rmSync(ws, { recursive: true, force: true });
  }
});

/** Eight 4×4×3 images whose values encode (sample, row, column, channel). */
function imageDataset(): Dataset {
  const n = 8, size = 4 * 4 * 3;
  const values = Float32Array.from({ length: n * size }, (_, k) => 1 + (k % size) / size + Math.floor(k / size));
  const source = new ArraySource(values, Int32Array.from({ length: n }, (_, i) => i % 2), size);
  return makeDataset({ sampleShape: [4, 4, 3], classes: 2, description: 'images', train: { source, indices: Int32Array.from([0, 1, 2, 3, 4, 5]) },
    validation: { source, indices: Int32Array.from([6, 7]) }, seed: 5 });
}

async function arrays(batches: AsyncIterable<Batch>): Promise<number[][]> {
  const out: number[][] = [];
  for await (const b of batches) {
    out.push(Array.from(b.x.dataSync()), ...(b.y ?? []).map((t) => Array.from(t.dataSync())));
    tf.dispose([b.x, ...(b.y ?? [])]);
  }
  return out;
}

test('augmentation: deterministic under a seed, changes training batches only, labels untouched', async () => {
  const plain = imageDataset();
  const augment = { crop: { padding: 1 }, flip: true, colorJitter: { brightness: 0.2, contrast: 0.2, saturation: 0.2 } };
  const a = withAugmentation(imageDataset(), augment, 7, 'finetune.augment');
  const b = withAugmentation(imageDataset(), augment, 7, 'finetune.augment');
  const first = await arrays(a.trainBatches(3, 0));
  assert.deepEqual(first, await arrays(b.trainBatches(3, 0)), 'same seed, epoch and step: same batches');
  const unaugmented = await arrays(plain.trainBatches(3, 0));
  assert.notDeepEqual(first[0], unaugmented[0], 'the images change');
  assert.deepEqual(first[1], unaugmented[1], 'the labels do not');
  assert.notDeepEqual(first, await arrays(a.trainBatches(3, 1)), 'another epoch draws again');
  assert.notDeepEqual(first, await arrays(withAugmentation(imageDataset(), augment, 8).trainBatches(3, 0)), 'another seed draws again');
  assert.deepEqual(await arrays(a.validationBatches(4)), await arrays(plain.validationBatches(4)), 'validation is never augmented');
  const cal = await a.calibration(4), plainCal = await plain.calibration(4);
  assert.deepEqual(Array.from(cal.x.dataSync()), Array.from(plainCal.x.dataSync()), 'calibration is never augmented');
  assert.match(a.description, /augmented \(crop padding 1, flip, colour jitter brightness 0\.2, contrast 0\.2, saturation 0\.2\)/);

  assert.equal(withAugmentation(plain, undefined, 1), plain, 'off by default');
  assert.equal(withAugmentation(plain, false, 1), plain);
  const flat = makeDataset({ sampleShape: [6], classes: 2, description: 'flat', train: { source: new ArraySource(new Float32Array(12), Int32Array.from([0, 1]), 6), indices: Int32Array.from([0, 1]) },
    validation: { source: new ArraySource(new Float32Array(12), Int32Array.from([0, 1]), 6), indices: Int32Array.from([0]) }, seed: 1 });
  assert.throws(() => withAugmentation(flat, true, 1, 'train.augment'), (err: unknown) =>
    err instanceof UserError && err.field === 'train.augment' && /augmentation needs image samples \[height, width, channels\], but the samples are \[6\]/.test(err.message));
});

test('augmentation: a flip mirrors the columns and a crop shifts in zeros, per sample', () => {
  const image = [[1, 2, 3], [4, 5, 6], [7, 8, 9]];
  const x = tf.tensor4d(image.flat(), [1, 3, 3, 1]);
  // Find seeds that flip and shift, and check the pixels move as they should.
  let flipped = 0, shifted = 0;
  for (let seed = 0; seed < 40; seed++) {
    const flipOnly = (augmentImages(x, { flip: true }, seed).arraySync() as number[][][][])[0].map((r) => r.map((p) => p[0]));
    if (flipOnly[0][0] === 3) { assert.deepEqual(flipOnly, image.map((r) => [...r].reverse())); flipped++; } else assert.deepEqual(flipOnly, image);
    const crop = (augmentImages(x, { crop: { padding: 1 } }, seed).arraySync() as number[][][][])[0].map((r) => r.map((p) => p[0]));
    const zeros = crop.flat().filter((v) => v === 0).length;
    assert.ok([0, 3, 5].includes(zeros), `a shift by at most one pixel zeroes a row and/or a column, got ${zeros} zeros`);
    if (zeros > 0) shifted++;
  }
  assert.ok(flipped > 5 && flipped < 35, `about half the draws flip (${flipped}/40)`);
  assert.ok(shifted > 20, `most draws shift (${shifted}/40)`);
  x.dispose();
});

test('config file checks: each y file, the glob folder, and augment on a non-image model are diagnosed on their fields', async () => {
  const ws = mkdtempSync(join(tmpdir(), 'prunelens-targets-files-'));
  try {
    mkdirSync(join(ws, 'model'));
    const topology = { class_name: 'Sequential', config: { layers: [{ class_name: 'Dense', config: { units: 3, batch_input_shape: [null, 8] } }] } };
    writeFileSync(join(ws, 'model', 'model.json'), JSON.stringify({ modelTopology: topology }));
    writeFileSync(join(ws, 'x.npy'), encodeNpy(new Float32Array(16), [2, 8]));
    writeFileSync(join(ws, 'a.npy'), encodeNpy(new Int32Array(2), [2]));
    mkdirSync(join(ws, 'photos'));
    const base = { model: 'model/model.json', method: 'l1', target: { flopsReduction: 0.5 }, output: 'pruned' };
    const problems = async (config: Record<string, unknown>) =>
      (await checkConfigFiles({ ...base, ...config }, join(ws, 'run.prune.json'))).map((p) => `${p.path.join('.')}: ${p.message}`);
    assert.deepEqual(await problems({ data: { format: 'npy', x: 'x.npy', y: ['a.npy', 'b.npy'] } }), ['data.y.1: data file not found: b.npy']);
    assert.deepEqual(await problems({ data: { format: 'npy', x: 'x.npy' } }), []);
    assert.deepEqual(await problems({ data: { format: 'images', glob: 'photos/**/*.jpg' } }), []);
    assert.deepEqual(await problems({ data: { format: 'images', glob: 'pics/*.jpg' } }), [`data.glob: folder not found: ${join(ws, 'pics')}`]);
    assert.deepEqual(await problems({ data: { format: 'images', glob: 'photos/*/../x.jpg' } }), ['data.glob: the glob "photos/*/../x.jpg" has ".." after a wildcard']);
    assert.deepEqual(await problems({ data: { format: 'npy', x: 'x.npy' }, finetune: { augment: true } }),
      ['finetune.augment: augmentation needs image samples [height, width, channels], but the model input is [8]']);
  } finally {
    rmSync(ws, { recursive: true, force: true });
  }
});

test('a channels-first model: image-shaped targets saved NCHW are transposed to the runtime output layout', async () => {
  const n = 2;
  npy('x-nchw.npy', new Float32Array(n * 4), [n, 4]);
  // Output runtime shape [1, 2, 3] (H, W, C); saved as [C, H, W] = [3, 1, 2]: value = 100·c + w.
  npy('seg-nchw.npy', Float32Array.from({ length: n * 6 }, (_, k) => 100 * Math.floor((k % 6) / 2) + (k % 2)), [n, 3, 1, 2]);
  const data = await loadDataset({ format: 'npy', x: 'x-nchw.npy', y: 'seg-nchw.npy', validationSplit: 0.5 }, dir,
    { inputShape: [4], classes: 0, channelsFirst: true, outputShapes: [[1, 2, 3]] }, 1);
  const cal = await data.calibration(1);
  assert.deepEqual(cal.y![0].arraySync(), [[[[0, 100, 200], [1, 101, 201]]]]);
});

test('a config outside the workspace is refused even when its model and output lie inside (its caches go beside it)', () => {
  const parent = mkdtempSync(join(tmpdir(), 'prunelens-config-outside-'));
  try {
    const ws = join(parent, 'ws');
    mkdirSync(join(ws, 'model'), { recursive: true });
    writeFileSync(join(ws, 'model', 'model.json'), '{}');
    const file = join(parent, 'run.prune.json');
    writeFileSync(file, JSON.stringify({ model: 'ws/model/model.json', method: 'l1', target: { flopsReduction: 0.5 }, output: 'ws/pruned' }));
    assert.throws(() => assertInsideWorkspace(loadConfig(file), [ws]), (err: unknown) => err instanceof UserError && /config file is outside the workspace/.test(err.message) && err.message.split('\n').length === 1);
    assertInsideWorkspace(loadConfig(file), [parent]);
  } finally {
    rmSync(parent, { recursive: true, force: true });
  }
});
