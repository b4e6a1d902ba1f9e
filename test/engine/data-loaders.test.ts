import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { PNG } from 'pngjs';
import * as jpeg from 'jpeg-js';
import { encodeNpy, loadDataset, readNpy } from '../../src/engine/data/index.js';
import { UserError } from '../../src/engine/errors.js';
import type { Batch, Dataset } from '../../src/engine/train/types.js';

let dir: string;
before(async () => {
  await tf.setBackend('cpu');
  dir = mkdtempSync(join(tmpdir(), 'prunelens-data-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

/** A .npy file as numpy.save writes it (header written here by hand, not by the loader's encoder). */
function npy(name: string, descr: string, shape: number[], data: ArrayBufferView, version = 1): string {
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`;
  const prefix = version === 1 ? 10 : 12;
  header += ' '.repeat(63 - ((prefix + header.length) % 64)) + '\n';
  const head = Buffer.alloc(prefix);
  Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, version, 0]).copy(head);
  if (version === 1) head.writeUInt16LE(header.length, 8); else head.writeUInt32LE(header.length, 8);
  const file = join(dir, name);
  writeFileSync(file, Buffer.concat([head, Buffer.from(header, 'latin1'), Buffer.from(data.buffer, data.byteOffset, data.byteLength)]));
  return file;
}

async function collect(batches: AsyncIterable<Batch>): Promise<{ x: number[][]; y: number[] }> {
  const x: number[][] = [], y: number[] = [];
  for await (const b of batches) {
    const rows = b.x.reshape([b.x.shape[0], -1]).arraySync() as number[][];
    x.push(...rows);
    y.push(...(b.y![0].arraySync() as number[]));
    tf.dispose([b.x, ...b.y!]);
  }
  return { x, y };
}

async function rejectsWith(promise: Promise<unknown>, file: string | undefined, pattern: RegExp): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof UserError, `a UserError, got ${String(err)}`);
    if (file) assert.equal(err.file, file);
    assert.match(err.message, pattern);
    return true;
  });
}

test('npy: float32 inputs in NHWC and int64 labels, with a seeded validation split', async () => {
  const n = 20;
  const x = Float32Array.from({ length: n * 4 * 4 * 1 }, (_, i) => i / 1000);
  const y = BigInt64Array.from({ length: n }, (_, i) => BigInt(i % 3));
  const xFile = npy('x.npy', '<f4', [n, 4, 4, 1], x), yFile = npy('y.npy', '<i8', [n], y);
  const cfg = { format: 'npy' as const, x: 'x.npy', y: 'y.npy', validationSplit: 0.25 };
  const data = await loadDataset(cfg, join(dir, 'a.prune.json'), { inputShape: [4, 4, 1], classes: 3 }, 3);
  assert.deepEqual([data.trainSize, data.validationSize], [15, 5]);
  const train = await collect(data.trainBatches(4, 0)), val = await collect(data.validationBatches(4));
  const seen = [...train.x, ...val.x].map((row) => Math.round(row[0] * 1000 / 16)).sort((a, b) => a - b);
  assert.deepEqual(seen, Array.from({ length: n }, (_, i) => i), 'every sample exactly once');
  for (const [row, label] of [...train.x.map((r, i) => [r, train.y[i]] as const)]) {
    const index = Math.round(row[0] * 1000 / 16);
    assert.equal(label, index % 3);
    assert.ok(Math.abs(row[15] - (index * 16 + 15) / 1000) < 1e-7);
  }
  const again = await loadDataset(cfg, join(dir, 'a.prune.json'), { inputShape: [4, 4, 1], classes: 3 }, 3);
  assert.deepEqual(await collect(again.validationBatches(5)), val, 'same seed, same split');
  const otherSeed = await loadDataset({ ...cfg, seed: 99 }, dir, { inputShape: [4, 4, 1], classes: 3 }, 3);
  assert.notDeepEqual((await collect(otherSeed.validationBatches(5))).x, val.x);
  assert.notDeepEqual((await collect(data.trainBatches(15, 1))).x, (await collect(data.trainBatches(15, 0))).x, 'each epoch reshuffles');
  assert.ok(xFile && yFile);
});

test('npy: uint8 inputs are scaled to [0, 1], flat features fit an image model, and xVal/yVal are used', async () => {
  const x = Uint8Array.from({ length: 6 * 8 }, (_, i) => (i * 5) % 256);
  npy('xu8.npy', '|u1', [6, 8], x, 2);
  npy('yu8.npy', '|u1', [6], Uint8Array.from([0, 1, 0, 1, 0, 1]));
  npy('xv.npy', '<f4', [2, 2, 4], Float32Array.from({ length: 16 }, () => 0.5));
  npy('yv.npy', '<i4', [2], Int32Array.from([1, 0]));
  const data = await loadDataset({ format: 'npy', x: join(dir, 'xu8.npy'), y: join(dir, 'yu8.npy'), xVal: 'xv.npy', yVal: 'yv.npy' }, dir,
    { inputShape: [2, 4, 1], classes: 2 }, 1);
  assert.deepEqual([data.trainSize, data.validationSize], [6, 2]);
  const cal = await data.calibration(100);
  assert.deepEqual(cal.x.shape, [6, 2, 4, 1]);
  const rows = (cal.x.reshape([6, 8]).arraySync() as number[][]).sort((a, b) => a[0] - b[0]);
  assert.deepEqual(rows[0].map((v) => Math.round(v * 255)), Array.from(x.subarray(0, 8)));
  assert.ok(rows.flat().every((v) => v >= 0 && v <= 1));
  tf.dispose([cal.x, cal.y]);
  const val = await collect(data.validationBatches(8));
  assert.deepEqual(val.y, [1, 0]);
  assert.ok(val.x.flat().every((v) => v === 0.5));
  // NHWC images also feed a model that takes flat features (C-order flattening).
  const flatModel = await loadDataset({ format: 'npy', x: 'xv.npy', y: 'yv.npy', validationSplit: 0.5 }, dir, { inputShape: [8], classes: 2 }, 1);
  const flatBatch = await flatModel.calibration(1);
  assert.deepEqual(flatBatch.x.shape, [1, 8]);
  tf.dispose([flatBatch.x, flatBatch.y]);
});

test('npy: arrays written by encodeNpy read back unchanged', () => {
  const file = join(dir, 'roundtrip.npy');
  writeFileSync(file, encodeNpy(Int32Array.from([3, -1, 7]), [3]));
  assert.deepEqual(readNpy(file), { dtype: 'int32', shape: [3], data: Int32Array.from([3, -1, 7]) });
  writeFileSync(file, encodeNpy(Float32Array.from([0.5, 1.5, 2.5, 3.5, 4.5, 5.5]), [2, 3]));
  assert.deepEqual(readNpy(file), { dtype: 'float32', shape: [2, 3], data: Float32Array.from([0.5, 1.5, 2.5, 3.5, 4.5, 5.5]) });
});

test('npy: bad data gives one UserError naming the file and the fix', async () => {
  const model = { inputShape: [4, 4, 1], classes: 3 };
  const x = npy('good-x.npy', '<f4', [5, 4, 4, 1], new Float32Array(80));
  const y = npy('good-y.npy', '<i4', [5], Int32Array.from([0, 1, 2, 0, 1]));
  const load = (xf: string, yf: string) => loadDataset({ format: 'npy', x: xf, y: yf }, dir, model, 1);
  const wrongShape = npy('rgb.npy', '<f4', [5, 4, 4, 3], new Float32Array(240));
  await rejectsWith(load(wrongShape, y), wrongShape, /samples of \[4, 4, 3\], but the model input is \[4, 4, 1\]/);
  const bigLabels = npy('labels7.npy', '<i8', [5], BigInt64Array.from([0n, 7n, 1n, 2n, 0n]));
  await rejectsWith(load(x, bigLabels), bigLabels, /labels go up to 7 but the model has 3 output classes/);
  const short = npy('short-y.npy', '<i4', [4], Int32Array.from([0, 1, 2, 0]));
  await rejectsWith(load(x, short), short, /4 labels for 5 inputs/);
  const floatLabels = npy('float-y.npy', '<f4', [5], new Float32Array(5));
  await rejectsWith(load(x, floatLabels), floatLabels, /labels have dtype float32.*astype\('int64'\)/);
  const intInputs = npy('int-x.npy', '<i2', [5, 16], new Int16Array(80));
  await rejectsWith(load(intInputs, y), intInputs, /inputs have dtype int16; expected float32 or uint8/);
  const notNpy = join(dir, 'not.npy');
  writeFileSync(notNpy, 'hello');
  await rejectsWith(load(notNpy, y), notNpy, /not a valid \.npy file.*numpy\.save/);
  await rejectsWith(load(join(dir, 'missing.npy'), y), join(dir, 'missing.npy'), /file not found/);
});

function writePng(file: string, width: number, height: number, pixel: (x: number, y: number) => [number, number, number]): void {
  const png = new PNG({ width, height });
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) {
    const [r, g, b] = pixel(x, y);
    png.data.set([r, g, b, 255], (y * width + x) * 4);
  }
  writeFileSync(file, PNG.sync.write(png));
}

function writeJpeg(file: string, width: number, height: number, rgb: [number, number, number]): void {
  const data = Buffer.alloc(width * height * 4);
  for (let i = 0; i < width * height; i++) data.set([...rgb, 255], i * 4);
  writeFileSync(file, jpeg.encode({ data, width, height }, 95).data);
}

function imageFolder(name: string): string {
  const root = join(dir, name);
  for (const c of ['blue', 'red', 'ramp']) mkdirSync(join(root, c), { recursive: true });
  writePng(join(root, 'red', 'a.png'), 10, 8, () => [255, 0, 0]);
  writeJpeg(join(root, 'red', 'b.jpg'), 16, 16, [255, 0, 0]);
  writePng(join(root, 'blue', 'a.png'), 3, 5, () => [0, 0, 255]);
  writeJpeg(join(root, 'blue', 'b.JPEG'), 9, 7, [0, 0, 255]);
  writePng(join(root, 'ramp', 'a.png'), 4, 2, (x) => [x * 85, x * 85, x * 85]);
  writeFileSync(join(root, 'ramp', 'notes.txt'), 'ignored');
  return root;
}

test('image folder: PNG and JPEG, RGB and grayscale, resized bilinearly to the model input', async () => {
  const root = imageFolder('images');
  const rgb = await loadDataset({ format: 'imagefolder', path: root, validationSplit: 0 }, dir, { inputShape: [2, 2, 3], classes: 3 }, 1);
  assert.deepEqual([rgb.trainSize, rgb.validationSize], [5, 0]);
  const all = await collect(rgb.trainBatches(2, 0));
  const byLabel = (label: number) => all.x.filter((_, i) => all.y[i] === label);
  // Classes are the sorted folder names: blue 0, ramp 1, red 2.
  for (const row of byLabel(0)) row.forEach((v, i) => assert.ok(Math.abs(v - (i % 3 === 2 ? 1 : 0)) < 4 / 255, `blue ${row}`));
  for (const row of byLabel(2)) row.forEach((v, i) => assert.ok(Math.abs(v - (i % 3 === 0 ? 1 : 0)) < 4 / 255, `red ${row}`));
  // Width 4 → 2 with half-pixel centres samples x = 0.5 and 2.5: (0+85)/2 and (170+255)/2.
  assert.deepEqual(byLabel(1)[0].map((v) => Math.round(v * 255)), [43, 43, 43, 213, 213, 213, 43, 43, 43, 213, 213, 213]);
  const gray = await loadDataset({ format: 'imagefolder', path: root, validationSplit: 0 }, dir, { inputShape: [3, 3, 1], classes: 3 }, 1);
  const g = await collect(gray.trainBatches(8, 0));
  const red = g.x.filter((_, i) => g.y[i] === 2);
  for (const row of red) row.forEach((v) => assert.ok(Math.abs(v * 255 - 0.299 * 255) < 4, `luma of red ${v * 255}`));
});

test('image folder: validationPath, and class folders that do not fit the model', async () => {
  const root = imageFolder('train-images');
  const val = join(dir, 'val-images');
  mkdirSync(join(val, 'red'), { recursive: true });
  writePng(join(val, 'red', 'v.png'), 4, 4, () => [250, 0, 0]);
  const data = await loadDataset({ format: 'imagefolder', path: root, validationPath: val }, dir, { inputShape: [4, 4, 3], classes: 3 }, 1);
  assert.deepEqual([data.trainSize, data.validationSize], [5, 1]);
  assert.deepEqual((await collect(data.validationBatches(4))).y, [2]);
  await rejectsWith(loadDataset({ format: 'imagefolder', path: root }, dir, { inputShape: [4, 4, 3], classes: 2 }, 1), root,
    /found 3 class folders \(labels 0\.\.2: blue, ramp, red\) but the model has 2 output classes/);
  await rejectsWith(loadDataset({ format: 'imagefolder', path: root }, dir, { inputShape: [48], classes: 3 }, 1), root, /model input is \[48\]/);
});

test('image folder: images are decoded lazily, and a corrupt one is named when it is reached', async () => {
  const root = imageFolder('with-corrupt');
  const corrupt = join(root, 'red', 'c.png');
  writeFileSync(corrupt, Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), Buffer.from('truncated')]));
  const data = await loadDataset({ format: 'imagefolder', path: root, validationSplit: 0 }, dir, { inputShape: [4, 4, 3], classes: 3 }, 1);
  assert.equal(data.trainSize, 6, 'loading did not decode every image');
  await rejectsWith(collect(data.trainBatches(2, 0)), corrupt, /unreadable or corrupt image.*Re-save it as PNG or JPEG/);
  const notAnImage = join(root, 'blue', 'z.jpg');
  rmSync(corrupt);
  writeFileSync(notAnImage, 'plain text');
  const again = await loadDataset({ format: 'imagefolder', path: root, validationSplit: 0 }, dir, { inputShape: [4, 4, 3], classes: 3 }, 1);
  await rejectsWith(collect(again.trainBatches(2, 0)), notAnImage, /neither a PNG nor a JPEG/);
});

test('builtin MNIST: 60000 + 10000 images with labels 0..9, limits and a wrong model input', async () => {
  const model = { inputShape: [28, 28, 1], classes: 10 };
  const data = await loadDataset({ format: 'builtin', name: 'mnist' }, dir, model, 1);
  assert.deepEqual([data.trainSize, data.validationSize], [60000, 10000]);
  const labels = new Set<number>();
  let pixelsOk = true;
  for await (const b of data.validationBatches(2500)) {
    b.y![0].dataSync().forEach((l: number) => labels.add(l));
    const [min, max] = [b.x.min().dataSync()[0], b.x.max().dataSync()[0]];
    pixelsOk &&= min === 0 && max === 1;
    tf.dispose([b.x, b.y]);
  }
  assert.deepEqual([...labels].sort((a, b) => a - b), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  assert.ok(pixelsOk, 'pixels scaled to [0, 1]');
  const limited = await loadDataset({ format: 'builtin', name: 'mnist', trainLimit: 500, testLimit: 100 }, dir, { inputShape: [784], classes: 10 }, 1);
  assert.deepEqual([limited.trainSize, limited.validationSize], [500, 100]);
  const batch = await limited.calibration(8);
  assert.deepEqual(batch.x.shape, [8, 784]);
  tf.dispose([batch.x, batch.y]);
  await rejectsWith(loadDataset({ format: 'builtin', name: 'mnist' }, dir, { inputShape: [32, 32, 3], classes: 10 }, 1), undefined,
    /MNIST images are 28×28×1 but the model input is \[32, 32, 3\]/);
  await rejectsWith(loadDataset({ format: 'builtin', name: 'mnist' }, dir, { inputShape: [28, 28, 1], classes: 5 }, 1), undefined,
    /labels go up to 9 \(10 classes\) but the model has 5 output classes/);
});

test('builtin Fashion-MNIST loads when the Debian package is installed, else says how to install it', async () => {
  const promise = loadDataset({ format: 'builtin', name: 'fashion-mnist', trainLimit: 100, testLimit: 50 }, dir, { inputShape: [28, 28, 1], classes: 10 }, 1);
  if (existsSync('/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz')) {
    const data = await promise;
    assert.deepEqual([data.trainSize, data.validationSize], [100, 50]);
  } else {
    await rejectsWith(promise, undefined, /Fashion-MNIST is not installed.*apt-get install dataset-fashion-mnist/);
  }
});

test('synthetic: seeded, shaped to the model, and class counts are checked', async () => {
  const model = { inputShape: [6, 6, 3], classes: 4 };
  const cfg = { format: 'synthetic' as const, samples: 40, classes: 4 };
  const a: Dataset = await loadDataset(cfg, dir, model, 5);
  const b: Dataset = await loadDataset(cfg, dir, model, 5);
  assert.deepEqual([a.trainSize, a.validationSize], [32, 8]);
  const first = await collect(a.trainBatches(16, 0));
  assert.deepEqual(await collect(b.trainBatches(16, 0)), first);
  assert.equal(first.x[0].length, 108);
  assert.deepEqual([...new Set(first.y)].sort(), [0, 1, 2, 3]);
  await rejectsWith(loadDataset({ ...cfg, classes: 6 }, dir, model, 5), undefined, /labels go up to 5 \(6 classes\) but the model has 4 output classes/);
});
