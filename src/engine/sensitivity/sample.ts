import * as tf from '@tensorflow/tfjs';
import type { Batch, Dataset } from '../train/types.js';
import { disposeBatch, samplesIn } from '../train/types.js';

/**
 * The first `limit` samples of the validation split (the training split, unaugmented, when there
 * is none), held in memory so every one of the analysis' evaluations reads the same samples
 * without loading them again. Dispose it when done.
 */
export interface BoundedSample {
  data: Dataset;
  samples: number;
  dispose(): void;
}

export async function boundedSample(data: Dataset, limit: number, batchSize = 256): Promise<BoundedSample> {
  const source = data.validationSize > 0 ? data.validationBatches(batchSize) : (data.unaugmented ?? data).trainBatches(batchSize, 0);
  const xs: tf.Tensor[] = [];
  const ys: tf.Tensor[][] = [];
  let taken = 0;
  for await (const batch of source) {
    const n = Math.min(samplesIn(batch), limit - taken);
    xs.push(sliceFirst(batch.x, 0, n));
    if (batch.y) ys.push(batch.y.map((t) => sliceFirst(t, 0, n)));
    disposeBatch(batch);
    taken += n;
    if (taken >= limit) break;
  }
  const x = xs.length ? tf.concat(xs) : undefined;
  const y = ys.length ? ys[0].map((_, output) => tf.concat(ys.map((parts) => parts[output]))) : undefined;
  tf.dispose([...xs, ...ys.flat()]);
  const batches = async function* (size: number): AsyncIterable<Batch> {
    for (let start = 0; x && start < taken; start += size) {
      const n = Math.min(size, taken - start);
      // evaluateModel disposes every batch it reads: hand out slices, keep the whole.
      yield { x: sliceFirst(x, start, n), y: y?.map((t) => sliceFirst(t, start, n)) };
    }
  };
  const sample: Dataset = {
    sampleShape: data.sampleShape,
    classes: data.classes,
    targets: data.targets,
    trainSize: 0,
    validationSize: taken,
    description: `${taken} samples of ${data.description}`,
    trainBatches: batches,
    validationBatches: batches,
    calibration: async (n: number) => ({ x: sliceFirst(x!, 0, Math.min(n, taken)), y: y?.map((t) => sliceFirst(t, 0, Math.min(n, taken))) }),
  };
  return { data: sample, samples: taken, dispose: () => tf.dispose([...(x ? [x] : []), ...(y ?? [])]) };
}

function sliceFirst(t: tf.Tensor, start: number, n: number): tf.Tensor {
  return tf.slice(t, [start, ...t.shape.slice(1).map(() => 0)], [n, ...t.shape.slice(1)]);
}
