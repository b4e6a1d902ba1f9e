import * as tf from '@tensorflow/tfjs';
import type { Batch, Dataset, DatasetTargets } from '../train/types.js';
import { mixSeed, permutation } from '../util/random.js';

/**
 * Samples addressable by index; `fill` writes one float sample at `offset`. A source gives the
 * targets its dataset declares: `label` for 'labels', `fillTarget` (one call per model output) for 'values'.
 */
export interface SampleSource {
  readonly count: number;
  fill(index: number, out: Float32Array, offset: number): void;
  label?(index: number): number;
  fillTarget?(index: number, output: number, out: Float32Array, offset: number): void;
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
  /** Default 'labels'. */
  targets?: DatasetTargets;
  /** One target shape per model output (without the batch dimension); needed for 'values'. */
  targetShapes?: number[][];
  description: string;
  train: Split;
  validation: Split;
  seed: number;
}): Dataset {
  const { sampleShape, description, train, validation, seed } = options;
  const targets = options.targets ?? 'labels';
  const targetShapes = (options.targetShapes ?? []).map((s) => [...s]);
  if (targets === 'values' && targetShapes.length === 0) throw new Error("'values' targets need their shapes");
  const size = (shape: number[]) => shape.reduce((a, b) => a * b, 1);
  const sampleSize = size(sampleShape);
  const targetSizes = targetShapes.map(size);

  function targetsOf(split: Split, positions: ArrayLike<number>, start: number, n: number): tf.Tensor[] | undefined {
    const indexAt = (i: number) => split.indices[positions[start + i]];
    if (targets === 'labels') {
      const y = new Int32Array(n);
      for (let i = 0; i < n; i++) y[i] = split.source.label!(indexAt(i));
      return [tf.tensor1d(y, 'int32')];
    }
    if (targets === 'values') {
      return targetShapes.map((shape, k) => {
        const out = new Float32Array(n * targetSizes[k]);
        for (let i = 0; i < n; i++) split.source.fillTarget!(indexAt(i), k, out, i * targetSizes[k]);
        return tf.tensor(out, [n, ...shape], 'float32');
      });
    }
    return undefined;
  }

  function batchOf(split: Split, positions: ArrayLike<number>, start: number, end: number): Batch {
    const n = end - start;
    const x = new Float32Array(n * sampleSize);
    for (let i = 0; i < n; i++) split.source.fill(split.indices[positions[start + i]], x, i * sampleSize);
    const y = targetsOf(split, positions, start, n);
    const batch: Batch = { x: tf.tensor(x, [n, ...sampleShape], 'float32') };
    if (y) batch.y = y;
    return batch;
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
    classes: targets === 'labels' ? options.classes : 0,
    targets,
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

/** Per-output float targets held in memory: `data` holds `size` values per sample. */
export interface TargetArray { data: Float32Array; size: number }

/**
 * Samples stored as one flat array, uint8 values scaled to [0, 1], with class labels, per-output
 * float targets, or neither (unlabelled).
 */
export class ArraySource implements SampleSource {
  readonly count: number;

  constructor(
    private readonly values: Float32Array | Uint8Array,
    private readonly labels: ArrayLike<number> | undefined,
    private readonly sampleSize: number,
    private readonly targetArrays: TargetArray[] = [],
  ) {
    this.count = Math.floor(values.length / sampleSize);
  }

  label(index: number): number {
    if (!this.labels) throw new Error('these samples have no labels');
    return this.labels[index];
  }

  fillTarget(index: number, output: number, out: Float32Array, offset: number): void {
    const { data, size } = this.targetArrays[output];
    out.set(data.subarray(index * size, (index + 1) * size), offset);
  }

  fill(index: number, out: Float32Array, offset: number): void {
    const start = index * this.sampleSize;
    if (this.values instanceof Float32Array) {
      out.set(this.values.subarray(start, start + this.sampleSize), offset);
    } else {
      for (let k = 0; k < this.sampleSize; k++) out[offset + k] = this.values[start + k] / 255;
    }
  }
}
