import * as tf from '@tensorflow/tfjs';
import type { Batch, Dataset } from '../train/types.js';
import { mixSeed, permutation } from '../util/random.js';

/** Samples addressable by index; `fill` writes one float sample at `offset`. */
export interface SampleSource {
  readonly count: number;
  label(index: number): number;
  fill(index: number, out: Float32Array, offset: number): void;
}

export interface Split {
  source: SampleSource;
  /** Which samples of the source belong to this split. */
  indices: Int32Array;
}

/** A Dataset over in-memory or lazily decoded samples, with seeded per-epoch shuffles. */
export function makeDataset(options: {
  sampleShape: number[];
  classes: number;
  description: string;
  train: Split;
  validation: Split;
  seed: number;
}): Dataset {
  const { sampleShape, classes, description, train, validation, seed } = options;
  const sampleSize = sampleShape.reduce((a, b) => a * b, 1);

  function batchOf(split: Split, positions: ArrayLike<number>, start: number, end: number): Batch {
    const n = end - start;
    const x = new Float32Array(n * sampleSize);
    const y = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      const index = split.indices[positions[start + i]];
      split.source.fill(index, x, i * sampleSize);
      y[i] = split.source.label(index);
    }
    return { x: tf.tensor(x, [n, ...sampleShape], 'float32'), y: [tf.tensor1d(y, 'int32')] };
  }

  async function* batches(split: Split, positions: ArrayLike<number>, batchSize: number): AsyncGenerator<Batch> {
    if (!(batchSize >= 1)) throw new RangeError(`batch size must be at least 1, got ${batchSize}`);
    for (let start = 0; start < positions.length; start += batchSize) {
      yield batchOf(split, positions, start, Math.min(positions.length, start + batchSize));
    }
  }

  const identity = (n: number) => Int32Array.from({ length: n }, (_, i) => i);

  return {
    sampleShape: [...sampleShape],
    classes,
    targets: 'labels',
    trainSize: train.indices.length,
    validationSize: validation.indices.length,
    description,
    trainBatches: (batchSize, epoch) => batches(train, permutation(train.indices.length, mixSeed(seed, 0xe90c, epoch)), batchSize),
    validationBatches: (batchSize) => batches(validation, identity(validation.indices.length), batchSize),
    calibration: async (n) => {
      const order = permutation(train.indices.length, mixSeed(seed, 0xca1b));
      return batchOf(train, order, 0, Math.min(Math.max(1, Math.floor(n)), order.length));
    },
  };
}

/** Samples stored as one flat array, uint8 values scaled to [0, 1]. */
export class ArraySource implements SampleSource {
  constructor(
    private readonly values: Float32Array | Uint8Array,
    private readonly labels: ArrayLike<number>,
    private readonly sampleSize: number,
  ) {}

  get count(): number { return this.labels.length; }

  label(index: number): number { return this.labels[index]; }

  fill(index: number, out: Float32Array, offset: number): void {
    const start = index * this.sampleSize;
    if (this.values instanceof Float32Array) {
      out.set(this.values.subarray(start, start + this.sampleSize), offset);
    } else {
      for (let k = 0; k < this.sampleSize; k++) out[offset + k] = this.values[start + k] / 255;
    }
  }
}
