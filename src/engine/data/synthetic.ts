import type { Dataset } from '../train/types.js';
import { makeDataset, type SampleSource } from './dataset.js';
import { gaussian, mixSeed, seededRandom, splitIndices } from '../util/random.js';

/**
 * A learnable task: each class has a smooth random prototype pattern shaped like the model
 * input; a sample is its class prototype plus Gaussian noise. Samples are generated on demand
 * from (seed, index), so any size costs no memory.
 */
class SyntheticSource implements SampleSource {
  private readonly prototypes: Float32Array[];
  private readonly sampleSize: number;

  constructor(readonly count: number, private readonly classes: number, shape: number[], private readonly noise: number, private readonly seed: number) {
    this.sampleSize = shape.reduce((a, b) => a * b, 1);
    this.prototypes = Array.from({ length: classes }, (_, c) => prototype(shape, mixSeed(seed, 0x7070, c)));
  }

  label(index: number): number { return index % this.classes; }

  fill(index: number, out: Float32Array, offset: number): void {
    const proto = this.prototypes[this.label(index)];
    const normal = gaussian(seededRandom(mixSeed(this.seed, 0x5a5a, index)));
    for (let k = 0; k < this.sampleSize; k++) out[offset + k] = proto[k] + this.noise * normal();
  }
}

/** Images get a bilinearly upsampled 4×4 random field per channel; flat inputs an i.i.d. vector. */
function prototype(shape: number[], seed: number): Float32Array {
  const normal = gaussian(seededRandom(seed));
  const size = shape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(size);
  if (shape.length !== 3) {
    for (let k = 0; k < size; k++) out[k] = normal();
    return out;
  }
  const [h, w, c] = shape;
  const grid = 4;
  const coarse = Float32Array.from({ length: grid * grid * c }, () => normal());
  for (let y = 0; y < h; y++) {
    const fy = h > 1 ? (y / (h - 1)) * (grid - 1) : 0;
    const y0 = Math.min(Math.floor(fy), grid - 2), wy = fy - y0;
    for (let x = 0; x < w; x++) {
      const fx = w > 1 ? (x / (w - 1)) * (grid - 1) : 0;
      const x0 = Math.min(Math.floor(fx), grid - 2), wx = fx - x0;
      for (let ch = 0; ch < c; ch++) {
        const at = (yy: number, xx: number) => coarse[(yy * grid + xx) * c + ch];
        out[(y * w + x) * c + ch] = (at(y0, x0) * (1 - wx) + at(y0, x0 + 1) * wx) * (1 - wy) + (at(y0 + 1, x0) * (1 - wx) + at(y0 + 1, x0 + 1) * wx) * wy;
      }
    }
  }
  return out;
}

export function loadSynthetic(cfg: { samples: number; classes: number; validationSplit?: number; noise?: number },
  model: { inputShape: number[]; classes: number }, seed: number): Dataset {
  const source = new SyntheticSource(cfg.samples, cfg.classes, model.inputShape, cfg.noise ?? 0.1, seed);
  const split = splitIndices(cfg.samples, cfg.validationSplit ?? 0.2, seed);
  return makeDataset({
    sampleShape: [...model.inputShape],
    classes: model.classes,
    description: `synthetic ${cfg.classes}-class patterns (noise ${cfg.noise ?? 0.1}), ${split.train.length} train + ${split.validation.length} validation`,
    train: { source, indices: split.train },
    validation: { source, indices: split.validation },
    seed,
  });
}
