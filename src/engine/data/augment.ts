/**
 * Augmentation of image training batches, as the seed models' own recipes train: random crop
 * with zero padding, horizontal flip, colour jitter. Each sample's draw comes from (seed, epoch,
 * step, sample), so a run repeats exactly. Only `trainBatches` is augmented; validation and
 * calibration batches pass through untouched.
 */
import * as tf from '@tensorflow/tfjs';
import type { AugmentConfig } from '../config/types.js';
import type { Batch, Dataset } from '../train/types.js';
import { UserError } from '../errors.js';
import { mixSeed, seededRandom } from '../util/random.js';

/** The config's `augment` as what to do; undefined when off. `true` is crop padding 4 + flip. */
export function augmentationOf(augment: boolean | AugmentConfig | undefined): AugmentConfig | undefined {
  if (augment === undefined || augment === false) return undefined;
  if (augment === true) return { crop: { padding: 4 }, flip: true };
  const jitter = augment.colorJitter;
  const jitters = Boolean(jitter && (jitter.brightness || jitter.contrast || jitter.saturation));
  return augment.crop || augment.flip || jitters ? augment : undefined;
}

/**
 * The dataset with its training batches augmented. Returns `dataset` itself when augmentation is
 * off; refuses samples that are not images ([height, width, channels]). `field` names the config
 * section in the error ("train.augment" or "finetune.augment").
 */
export function withAugmentation(dataset: Dataset, augment: boolean | AugmentConfig | undefined, seed: number, field = 'train.augment'): Dataset {
  const config = augmentationOf(augment);
  if (!config) return dataset;
  if (dataset.sampleShape.length !== 3) {
    throw new UserError(`augmentation needs image samples [height, width, channels], but the samples are [${dataset.sampleShape.join(', ')}]`, {
      field, fix: 'Remove "augment" for non-image inputs' });
  }
  async function* augmented(batchSize: number, epoch: number): AsyncGenerator<Batch> {
    let step = 0;
    for await (const batch of dataset.trainBatches(batchSize, epoch)) {
      const x = augmentImages(batch.x, config!, mixSeed(seed, 0xa06e, epoch, step++));
      batch.x.dispose();
      yield { ...batch, x };
    }
  }
  return {
    ...dataset,
    description: `${dataset.description}, augmented (${describeAugmentation(config)})`,
    trainBatches: augmented,
    unaugmented: dataset,
    validationBatches: (batchSize) => dataset.validationBatches(batchSize),
    calibration: (n) => dataset.calibration(n),
  };
}

export function describeAugmentation(config: AugmentConfig): string {
  const parts: string[] = [];
  if (config.crop) parts.push(`crop padding ${config.crop.padding}`);
  if (config.flip) parts.push('flip');
  const j = config.colorJitter;
  if (j) {
    const factors = (['brightness', 'contrast', 'saturation'] as const).filter((k) => j[k]).map((k) => `${k} ${j[k]}`);
    if (factors.length) parts.push(`colour jitter ${factors.join(', ')}`);
  }
  return parts.join(', ');
}

/**
 * A new float32 [n, h, w, c] tensor: each image shifted by up to `padding` pixels (zeros fill the
 * edge, like a crop of the zero-padded image), flipped with probability ½, then its brightness,
 * contrast and saturation scaled by factors from [1 − v, 1 + v]. Values are not clipped, since inputs may be standardised.
 */
export function augmentImages(x: tf.Tensor, config: AugmentConfig, seed: number): tf.Tensor {
  const [n, h, w, c] = x.shape;
  const input = x.dataSync() as Float32Array;
  const out = new Float32Array(input.length);
  const padding = config.crop?.padding ?? 0;
  const jitter = config.colorJitter ?? {};
  const image = h * w * c;
  for (let s = 0; s < n; s++) {
    const random = seededRandom(mixSeed(seed, s));
    const shift = () => Math.floor(random() * (2 * padding + 1)) - padding;
    const dy = shift(), dx = shift();
    const flip = config.flip ? random() < 0.5 : false;
    const factor = (v: number | undefined) => (v ? 1 - v + 2 * v * random() : 1);
    const brightness = factor(jitter.brightness), contrast = factor(jitter.contrast), saturation = factor(jitter.saturation);
    const base = s * image;
    for (let y = 0; y < h; y++) {
      const sy = y + dy;
      if (sy < 0 || sy >= h) continue;
      for (let xx = 0; xx < w; xx++) {
        const sx = (flip ? w - 1 - xx : xx) + dx;
        if (sx < 0 || sx >= w) continue;
        const to = base + (y * w + xx) * c, from = base + (sy * w + sx) * c;
        for (let ch = 0; ch < c; ch++) out[to + ch] = input[from + ch];
      }
    }
    if (brightness !== 1 || contrast !== 1 || saturation !== 1) jitterImage(out, base, h * w, c, brightness, contrast, saturation);
  }
  return tf.tensor(out, [n, h, w, c], 'float32');
}

const grey = (v: Float32Array, at: number) => 0.299 * v[at] + 0.587 * v[at + 1] + 0.114 * v[at + 2];

/** Brightness, contrast, saturation in that order, as torchvision's ColorJitter defines each. */
function jitterImage(v: Float32Array, base: number, pixels: number, c: number, brightness: number, contrast: number, saturation: number): void {
  const end = base + pixels * c;
  if (brightness !== 1) for (let k = base; k < end; k++) v[k] *= brightness;
  if (contrast !== 1) {
    let mean = 0;
    if (c === 3) for (let k = base; k < end; k += 3) mean += grey(v, k);
    else for (let k = base; k < end; k++) mean += v[k];
    mean /= c === 3 ? pixels : pixels * c;
    for (let k = base; k < end; k++) v[k] = mean + contrast * (v[k] - mean);
  }
  if (saturation !== 1 && c === 3) {
    for (let k = base; k < end; k += 3) {
      const g = grey(v, k);
      for (let ch = 0; ch < 3; ch++) v[k + ch] = g + saturation * (v[k + ch] - g);
    }
  }
}
