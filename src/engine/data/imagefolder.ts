import { readdirSync, readFileSync, statSync } from 'node:fs';
import { extname, join } from 'node:path';
import { PNG } from 'pngjs';
import * as jpeg from 'jpeg-js';
import type { Dataset } from '../train/types.js';
import { UserError } from '../errors.js';
import { makeDataset, type SampleSource } from './dataset.js';
import { splitIndices } from '../util/random.js';
import { globFiles } from './glob.js';

const IMAGE_EXTENSIONS = new Set(['.png', '.jpg', '.jpeg']);
/** Decoded, resized samples are kept up to this many bytes so later epochs skip decoding. */
const CACHE_BYTES = 512 * 1024 * 1024;

interface RgbaImage { width: number; height: number; data: Uint8Array }

export function decodeImage(file: string): RgbaImage {
  let buf: Buffer;
  try {
    buf = readFileSync(file);
  } catch (err) {
    throw new UserError(`cannot read the image (${(err as NodeJS.ErrnoException).code ?? String(err)})`, { file, fix: 'Check the file permissions or remove it' });
  }
  try {
    if (buf.length >= 8 && buf.readUInt32BE(0) === 0x89504e47) {
      const png = PNG.sync.read(buf);
      return { width: png.width, height: png.height, data: png.data };
    }
    if (buf.length >= 3 && buf[0] === 0xff && buf[1] === 0xd8) {
      const img = jpeg.decode(buf, { useTArray: true, formatAsRGBA: true, maxMemoryUsageInMB: 1024 });
      return { width: img.width, height: img.height, data: img.data };
    }
  } catch (err) {
    throw new UserError(`unreadable or corrupt image (${err instanceof Error ? err.message : String(err)})`, { file, fix: 'Re-save it as PNG or JPEG, or remove it' });
  }
  throw new UserError('unreadable or corrupt image (neither a PNG nor a JPEG signature)', { file, fix: 'Re-save it as PNG or JPEG, or remove it' });
}

/**
 * Bilinear resize (half-pixel centres) of an RGBA image to height×width with 1 (luma) or 3 (RGB) channels.
 * Alpha is ignored.
 */
export function resizeToSample(img: RgbaImage, height: number, width: number, channels: 1 | 3): Uint8Array {
  const { width: w0, height: h0, data } = img;
  const plane = new Float32Array(w0 * h0 * channels);
  for (let p = 0; p < w0 * h0; p++) {
    const r = data[4 * p], g = data[4 * p + 1], b = data[4 * p + 2];
    if (channels === 1) plane[p] = 0.299 * r + 0.587 * g + 0.114 * b;
    else { plane[3 * p] = r; plane[3 * p + 1] = g; plane[3 * p + 2] = b; }
  }
  const out = new Uint8Array(height * width * channels);
  const sy = h0 / height, sx = w0 / width;
  for (let y = 0; y < height; y++) {
    const fy = Math.min(Math.max((y + 0.5) * sy - 0.5, 0), h0 - 1);
    const y0 = Math.floor(fy), y1 = Math.min(y0 + 1, h0 - 1), wy = fy - y0;
    for (let x = 0; x < width; x++) {
      const fx = Math.min(Math.max((x + 0.5) * sx - 0.5, 0), w0 - 1);
      const x0 = Math.floor(fx), x1 = Math.min(x0 + 1, w0 - 1), wx = fx - x0;
      for (let c = 0; c < channels; c++) {
        const v00 = plane[(y0 * w0 + x0) * channels + c], v01 = plane[(y0 * w0 + x1) * channels + c];
        const v10 = plane[(y1 * w0 + x0) * channels + c], v11 = plane[(y1 * w0 + x1) * channels + c];
        const v = (v00 * (1 - wx) + v01 * wx) * (1 - wy) + (v10 * (1 - wx) + v11 * wx) * wy;
        out[(y * width + x) * channels + c] = Math.round(v);
      }
    }
  }
  return out;
}

function listDirectory(dir: string, field: string): string[] {
  try {
    return readdirSync(dir).filter((n) => !n.startsWith('.')).sort();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new UserError(code === 'ENOENT' ? 'folder not found' : `cannot read the folder (${code ?? String(err)})`, {
      file: dir, field, fix: 'Point it at a folder of images, or one with a subfolder of images per class' });
  }
}

/** Image files with their class labels; no `labels` for unlabelled images. */
interface FolderListing { classNames: string[]; files: string[]; labels?: Int32Array }

const isImageFile = (name: string) => IMAGE_EXTENSIONS.has(extname(name).toLowerCase());

/**
 * A folder with one subfolder of images per class (labelled), or with the images directly in it
 * (unlabelled). `classNames` comes from the training folder when listing its validation folder.
 */
function listImageFolder(root: string, field: string, classNames?: string[]): FolderListing {
  const entries = listDirectory(root, field);
  const subfolders = entries.filter((n) => statSync(join(root, n)).isDirectory());
  if (subfolders.length === 0 || classNames?.length === 0) {
    if (classNames && classNames.length > 0) {
      throw new UserError('no class subfolders found', { file: root, field, fix: `Use the training folder's class subfolders (${classNames.join(', ')})` });
    }
    const files = entries.filter(isImageFile).map((n) => join(root, n));
    if (files.length === 0) {
      throw new UserError('no PNG or JPEG images and no class subfolders found', { file: root, field, fix: 'Put the images in the folder (unlabelled) or one subfolder per class, e.g. cat/ and dog/' });
    }
    return { classNames: [], files };
  }
  const names = classNames ?? subfolders;
  const files: string[] = [];
  const labels: number[] = [];
  for (const sub of subfolders) {
    const label = names.indexOf(sub);
    if (label < 0) {
      throw new UserError(`class folder '${sub}' does not exist in the training folder (classes: ${names.join(', ')})`, {
        file: join(root, sub), field, fix: 'Use the same class subfolders for training and validation' });
    }
    for (const name of listDirectory(join(root, sub), field)) {
      if (!isImageFile(name)) continue;
      files.push(join(root, sub, name));
      labels.push(label);
    }
  }
  if (files.length === 0) throw new UserError('no PNG or JPEG images found in the class subfolders', { file: root, field, fix: 'Add .png/.jpg images' });
  return { classNames: names, files, labels: Int32Array.from(labels) };
}

/** Images decoded on demand (a large folder is never decoded at once), with a bounded cache. */
class ImageFolderSource implements SampleSource {
  private readonly cache = new Map<number, Uint8Array>();
  private cachedBytes = 0;

  constructor(private readonly listing: FolderListing, private readonly shape: [number, number, 1 | 3]) {}

  get count(): number { return this.listing.files.length; }

  label(index: number): number {
    if (!this.listing.labels) throw new Error('these images have no labels');
    return this.listing.labels[index];
  }

  sample(index: number): Uint8Array {
    const hit = this.cache.get(index);
    if (hit) return hit;
    const [h, w, c] = this.shape;
    const pixels = resizeToSample(decodeImage(this.listing.files[index]), h, w, c);
    if (this.cachedBytes + pixels.length <= CACHE_BYTES) {
      this.cache.set(index, pixels);
      this.cachedBytes += pixels.length;
    }
    return pixels;
  }

  fill(index: number, out: Float32Array, offset: number): void {
    const pixels = this.sample(index);
    for (let k = 0; k < pixels.length; k++) out[offset + k] = pixels[k] / 255;
  }
}

type ImageShape = [number, number, 1 | 3];

function imageShapeOf(inputShape: number[], file: string, field: string): ImageShape {
  if (inputShape.length !== 3 || (inputShape[2] !== 1 && inputShape[2] !== 3)) {
    throw new UserError(`image data needs a model input of [height, width, 1 or 3], but the model input is [${inputShape.join(', ')}]`, {
      file, field, fix: 'Use the npy format for non-image inputs' });
  }
  return inputShape as ImageShape;
}

export function loadImageFolder(cfg: { path: string; validationPath?: string; validationSplit?: number },
  model: { inputShape: number[]; classes: number }, seed: number): Dataset {
  const { inputShape, classes } = model;
  const shape = imageShapeOf(inputShape, cfg.path, 'data.format');
  const train = listImageFolder(cfg.path, 'data.path');
  const labelled = train.labels !== undefined;
  if (labelled && train.classNames.length > classes) {
    throw new UserError(`found ${train.classNames.length} class folders (labels 0..${train.classNames.length - 1}: ${train.classNames.join(', ')}) but the model has ${classes} output classes`, {
      file: cfg.path, field: 'data.path', fix: `Give the model ${train.classNames.length} outputs or remove class folders` });
  }
  const trainSource = new ImageFolderSource(train, shape);
  trainSource.sample(0); // fail early on an unreadable first image
  const validation = cfg.validationPath ? new ImageFolderSource(listImageFolder(cfg.validationPath, 'data.validationPath', train.classNames), shape) : undefined;
  const what = labelled ? `${train.classNames.length} classes` : 'unlabelled';
  return imageDataset(trainSource, validation, cfg.validationSplit, { inputShape, classes: labelled ? classes : 0, seed, origin: `image folder ${cfg.path} (${what})` });
}

/** Unlabelled images matched by a glob (absolute, or relative to `baseDir`). */
export function loadImageGlob(cfg: { glob: string; validationSplit?: number }, baseDir: string,
  model: { inputShape: number[] }, seed: number): Dataset {
  const shape = imageShapeOf(model.inputShape, cfg.glob, 'data.format');
  const files = globFiles(cfg.glob, baseDir).filter(isImageFile);
  if (files.length === 0) throw new UserError(`no PNG or JPEG images match "${cfg.glob}"`, { field: 'data.glob', fix: 'Check the pattern (relative to the config), e.g. "photos/**/*.jpg"' });
  const source = new ImageFolderSource({ classNames: [], files }, shape);
  source.sample(0);
  return imageDataset(source, undefined, cfg.validationSplit, { inputShape: model.inputShape, classes: 0, seed, origin: `images ${cfg.glob} (unlabelled)` });
}

function imageDataset(trainSource: ImageFolderSource, validationSource: ImageFolderSource | undefined, validationSplit: number | undefined,
  info: { inputShape: number[]; classes: number; seed: number; origin: string }): Dataset {
  const all = (n: number) => Int32Array.from({ length: n }, (_, i) => i);
  const split = validationSource
    ? { train: all(trainSource.count), validation: all(validationSource.count) }
    : splitIndices(trainSource.count, validationSplit ?? 0.2, info.seed);
  return makeDataset({
    sampleShape: [...info.inputShape],
    classes: info.classes,
    targets: info.classes > 0 ? 'labels' : 'none',
    description: `${info.origin}, ${split.train.length} train + ${split.validation.length} validation`,
    train: { source: trainSource, indices: split.train },
    validation: { source: validationSource ?? trainSource, indices: split.validation },
    seed: info.seed,
  });
}
